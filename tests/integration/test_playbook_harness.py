"""The test harness itself (tests/helpers/playbook.py) and the module wrapper seen through ansible-playbook:
per-task results, options named in failures, secrets absent from everything printed at -vvv."""


def test_failure_names_the_option_and_later_tasks_do_not_run(playbook):
    run = playbook([{"name": "bad cloud", "o365.smtp_oauth.entra_app_info": {"unique_name": "x", "cloud": "mars"}},
                    {"name": "never", "ansible.builtin.debug": {"msg": "not reached"}}])
    assert run.rc != 0 and list(run.tasks) == ["bad cloud"]
    result = run.task("bad cloud")
    assert result["failed"] and "cloud" in result["msg"] and "usgov" in result["msg"]


def test_refused_credential_fails_cleanly_without_the_secret(playbook, emulator):
    wrong = "Wr0ng-secret-value-for-the-test~"
    run = playbook([{"name": "info", "o365.smtp_oauth.entra_app_info": {"unique_name": "x"}}],
                   env={"AZURE_CLIENT_SECRET": wrong}, verbosity=3)
    result = run.task("info")
    assert result["failed"] and "client_secret" in result["msg"] and "Traceback" not in result["msg"]
    assert wrong not in run.output and wrong not in str(result)
    assert emulator.admin.client_secret not in run.output


def test_result_censored_by_no_log_is_the_registered_value(playbook):
    run = playbook([{"name": "hidden", "ansible.builtin.debug": {"msg": "kept for the test"}, "no_log": True}])
    assert "kept for the test" not in run.stdout, "the output stays censored"
    assert run.task("hidden")["msg"] == "kept for the test"
