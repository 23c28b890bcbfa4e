"""Check mode of a whole playbook that creates a new app (issue 12, bug 2).

entra_app in check mode creates nothing, so the tasks after it depend on an app that cannot appear. Each must
predict its change at once (changed: true, with what it would create), never wait for the app, never fail, and
write nothing. Everything real: ansible-playbook, the emulated tenant's Graph and Exchange admin API.
"""

import os

from helpers.playbook import ROOT, run_playbook

MAILBOX = "noreply@contoso.onmicrosoft.com"
WAIT = 240  # seconds; a task that waited for the app would outlast the playbook timeout (WAIT - 60)


def tasks(name):
    return [
        {"name": "app", "o365.smtp_oauth.entra_app": {"unique_name": name, "display_name": "Check mode chain"},
         "register": "app"},
        {"name": "secret", "o365.smtp_oauth.entra_app_credential": {
            "unique_name": name, "type": "secret", "display_name": "ci", "wait_timeout": WAIT}},
        {"name": "federated", "o365.smtp_oauth.entra_app_credential": {
            "unique_name": name, "type": "federated", "name": "github-main",
            "issuer": "https://token.actions.githubusercontent.com", "subject": "repo:contoso/x:ref:refs/heads/main",
            "wait_timeout": WAIT}},
        {"name": "access", "o365.smtp_oauth.exchange_smtp_access": {
            "app_id": "{{ app.app_id }}", "mailboxes": [{"address": MAILBOX, "smtp_auth": "enabled"}],
            "wait_timeout": WAIT}},
    ]


def test_check_mode_of_a_new_app_predicts_every_task_at_once(emulator, tenant):
    mark = tenant.log.mark()
    run = run_playbook(emulator, tasks("check-chain"), check=True, diff=True, timeout=WAIT - 60)
    assert run.rc == 0, run.output[-3000:]
    for name in ("app", "secret", "federated", "access"):
        result = run.task(name)
        assert result["changed"] is True and not result.get("failed"), (name, result)
    assert any("does not exist yet" in change for change in run.task("secret")["changes"])
    assert any("github-main" in change for change in run.task("federated")["changes"])
    access = run.task("access")
    cmdlets = [action.split()[0] for action in access["actions"]]
    assert cmdlets[:3] == ["New-ServicePrincipal", "New-ManagementScope", "New-ManagementRoleAssignment"], cmdlets
    assert access["service_principal_id"] is None
    assert [m["address"] for m in access["mailboxes"]] == [MAILBOX]
    # Nothing written, and no polling: each task looked the app up a bounded number of times.
    assert tenant.log.writes(since=mark) == []
    lookups = [e for e in tenant.log.since(mark) if e.get("part") == "graph" and "check-chain" in e.get("path", "")]
    assert len(lookups) <= 6, [e.get("path") for e in lookups]
    assert [a for a in tenant.applications.values() if a.get("uniqueName") == "check-chain"] == []


def test_check_mode_with_an_app_id_that_has_no_service_principal_yet(emulator, tenant):
    app = tenant.add_application("No SP yet", uniqueName="no-sp-yet")
    mark = tenant.log.mark()
    run = run_playbook(emulator, [{"name": "access", "o365.smtp_oauth.exchange_smtp_access": {
        "app_id": app["appId"], "mailboxes": [{"address": MAILBOX}], "wait_timeout": WAIT}}],
        check=True, timeout=WAIT - 60)
    access = run.task("access")
    assert run.rc == 0 and access["changed"] is True and access["app_id"] == app["appId"], run.output[-3000:]
    assert access["actions"][0].startswith("New-ServicePrincipal -AppId '%s'" % app["appId"])
    assert tenant.log.writes(since=mark) == []
    sp_reads = [e for e in tenant.log.since(mark) if e.get("part") == "graph" and "servicePrincipals" in e.get("path", "")]
    assert len(sp_reads) <= 2, [e.get("path") for e in sp_reads]


def test_without_check_mode_a_missing_service_principal_is_still_an_error(emulator, tenant):
    app = tenant.add_application("No SP", uniqueName="no-sp")
    run = run_playbook(emulator, [{"name": "access", "o365.smtp_oauth.exchange_smtp_access": {
        "app_id": app["appId"], "mailboxes": [{"address": MAILBOX}], "wait_timeout": 1}}])
    access = run.task("access")
    assert access["failed"] and "service principal" in access["msg"] and "Traceback" not in access["msg"]


def test_check_mode_of_the_example_playbook_on_a_fresh_tenant(emulator, tenant, tmp_path):
    with open(os.path.join(ROOT, "playbooks", "smtp_oauth_app.yml")) as handle:
        text = handle.read()
    mark = tenant.log.mark()
    run = run_playbook(emulator, text, check=True, extra_vars={"demo_workdir": str(tmp_path / "work")},
                       env={"O365_TOKEN_CACHE_DIR": str(tmp_path / "cache")}, timeout=WAIT - 60)
    assert run.rc == 0, run.output[-4000:]
    assert run.task("Exchange lets the app send as the mailbox over SMTP")["changed"] is True
    mail = run.task("Send a test mail as the app itself (certificate credential)")
    assert mail["changed"] is True and mail["messages"][0]["status"] == "check_mode" and mail["connections"] == 0
    assert "client_id is empty" in run.output
    assert tenant.log.writes(since=mark) == []
