"""Fixtures for the ansible-playbook tests: `playbook` runs tasks against the session's emulator.

The `core_range` marker: the tests the oldest and the newest supported ansible-core run again
(scripts/test-stages/45-trixie.sh, `pytest -m core_range`). They cover what changes between ansible-core and
Python releases: each module through ansible-playbook (create, check mode, re-run without writes, diff, absent),
the result keys the controller reads (failed, changed, msg, warnings), no_log and -vvvv, the action plugin,
module_defaults and the action group, environment fallbacks, the AWX credential type, a missing library. The
rest (fault injection, the contract walks, the auditors' guide, token-cache counting, retries) tests the
collection's own Python against the emulator and runs once, on the pinned ansible-core (10-pytest).
"""

import functools

import pytest

from helpers.playbook import run_playbook

# file -> the tests in it that the range runs take ("*": all of them). A name that matches no test fails the
# collection, so a rename cannot drop a test from the range runs unnoticed.
CORE_RANGE = {
    "test_awx_credential_type.py": "*",
    "test_ci_oidc.py": ["test_github_actions_job_sends_with_only_the_runner_environment"],
    "test_check_mode_chain.py": ["test_check_mode_of_the_example_playbook_on_a_fresh_tenant"],
    "test_credential_expiry.py": ["test_check_mode_reports_and_fails_but_writes_and_sends_nothing"],
    "test_entra_app.py": ["test_classic_app_with_consent_create_check_create_again", "test_create_needs_unique_name",
                          "test_absent_removes_app_and_service_principal"],
    "test_entra_credential.py": ["test_secret_create_check_create_again_and_value_only_in_registered_result",
                                 "test_secret_value_never_in_vvvv_output",
                                 "test_federated_github_create_check_create_again_update",
                                 "test_certificate_idempotent_by_thumbprint_then_removed"],
    "test_entra_info.py": ["test_report_names_permissions_credentials_and_expiry_warnings"],
    "test_example_playbook.py": "*",
    "test_exchange_smtp_access.py": ["test_create_check_create_again_again_and_smtp_works_only_after",
                                     "test_info_reports_the_same_in_check_mode_and_never_writes"],
    "test_migration_from_mail.py": "*",
    "test_missing_libraries.py": "*",
    "test_playbook_harness.py": "*",
    "test_send_mail.py": ["test_plain_message", "test_html_with_text_alternative_attachments_cc_bcc",
                          "test_check_mode_sends_nothing", "test_each_failure_is_diagnosed",
                          "test_refused_recipient_fails_the_task_by_default", "test_secret_never_in_verbose_output",
                          "test_secure_never_sends_to_a_plain_relay_and_says_the_credential_is_not_used"],
    "test_token_cache_play.py": ["test_a_cache_that_cannot_be_written_warns_naming_token_cache_dir_and_the_tasks_succeed"],
}


def pytest_configure(config):
    config.addinivalue_line("markers", "core_range: run again on the oldest and newest supported ansible-core "
                                       "(tests/integration/conftest.py says which and why)")


def pytest_collection_modifyitems(config, items):
    seen = set()
    for item in items:
        chosen = CORE_RANGE.get(item.path.name)
        name = item.originalname if hasattr(item, "originalname") else item.name
        if chosen == "*" or (chosen and name in chosen):
            item.add_marker(pytest.mark.core_range)
            seen.add((item.path.name, name))
    # Only when a whole file is collected (not for `pytest file::test`) can a missing name be told from a rename.
    collected = set(item.path.name for item in items)
    whole = not any("::" in arg for arg in config.args)
    missing = ["%s::%s" % (path, name) for path, names in CORE_RANGE.items() if names != "*" and path in collected
               for name in names if (path, name) not in seen]
    if whole and missing:
        raise pytest.UsageError("CORE_RANGE names tests that do not exist: %s" % ", ".join(missing))


@pytest.fixture
def playbook(emulator, tenant):
    """run_playbook bound to the emulator, on a fresh tenant: playbook(tasks, check=..., diff=..., env=...)."""
    return functools.partial(run_playbook, emulator=emulator)
