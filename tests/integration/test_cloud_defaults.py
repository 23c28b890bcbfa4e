"""The SMTP authorization model's default per cloud, and the RBAC model where the tenant has no
'Application SMTP.SendAsApp' role (issue 25, item 5), through ansible-playbook against the emulated tenant.

Everything real: ansible-playbook, the token layer, the emulator's HTTPS server, Graph and Exchange admin API. The
emulated tenant lives in the cloud the test names (tenant.set_cloud: that cloud's token resources, and no RBAC for
Applications for SMTP outside Worldwide, as Microsoft announces it: MC1158911); the collection is pointed at it with
cloud plus the endpoint overrides every test uses.
"""

import pytest

from helpers.playbook import four_runs, play, results

DOMAIN = "contoso.onmicrosoft.com"
NO_ROLE_FIX = "authorization_model: classic"


def app_task(name, **args):
    return {"name": "app", "o365.smtp_oauth.entra_app": dict(unique_name=name, admin_consent=True, **args)}


def access_task(app_id, **args):
    return {"name": "access", "o365.smtp_oauth.exchange_smtp_access": dict(
        app_id=app_id, mailboxes=[{"address": "noreply@" + DOMAIN}], **args)}


def in_cloud(tenant, cloud):
    tenant.set_cloud(cloud)
    return {"O365_CLOUD": cloud}


@pytest.mark.parametrize("cloud, model", [("public", "rbac"), ("usgov", "classic"), ("dod", "classic"),
                                          ("china", "classic")])
def test_both_modules_take_the_clouds_default_and_return_it(emulator, tenant, cloud, model):
    env = in_cloud(tenant, cloud)
    [app] = results(emulator, app_task("cloud-default-" + cloud), env=env)
    assert app["changed"] and app["authorization_model"] == model, app
    assert app["smtp_permission_in_entra"] is (model == "classic")
    assert not app.get("warnings"), app
    mark = tenant.log.mark()
    runs = [result for result, unused in four_runs(emulator, tenant, access_task(app["app_id"]), "exchange", env)]
    assert not [r for r in runs if r.get("failed")], runs
    assert [r["changed"] for r in runs] == [True, True, False, False], runs
    assert all(r["authorization_model"] == model and not r.get("warnings") for r in runs), runs
    cmdlets = [e["cmdlet"] for e in tenant.log.writes("exchange", since=mark)]
    if model == "classic":
        assert "Add-MailboxPermission" in cmdlets and "New-ManagementRoleAssignment" not in cmdlets, cmdlets
    else:
        assert "New-ManagementRoleAssignment" in cmdlets and "Add-MailboxPermission" not in cmdlets, cmdlets


def test_rbac_asked_for_on_a_national_cloud_warns_in_the_output(emulator, tenant):
    env = in_cloud(tenant, "usgov")
    [app], output = play(emulator, app_task("gov-rbac", authorization_model="rbac"), env=env)
    assert app["authorization_model"] == "rbac" and app["smtp_permission_in_entra"] is False, app
    assert any("MC1158911" in w and NO_ROLE_FIX in w for w in app.get("warnings", [])), app
    assert "[WARNING]" in output and "MC1158911" in output


@pytest.mark.parametrize("check", [True, False])
def test_a_tenant_without_the_role_fails_before_any_write_naming_classic(emulator, tenant, check):
    """A GCC tenant on cloud: public (or one Microsoft has not reached yet): Get-ManagementRole finds no
    'Application SMTP.SendAsApp'. The default model is rbac there, so the task must stop in its describe step."""
    [app] = results(emulator, app_task("gcc-app"))
    assert app["authorization_model"] == "rbac"
    tenant.exchange.smtp_role_exists = False
    mark = tenant.log.mark()
    [access], output = play(emulator, access_task(app["app_id"]), check=check)
    assert access.get("failed") and NO_ROLE_FIX in access["msg"], access
    assert access.get("option") == "authorization_model", access
    assert tenant.log.writes("exchange", since=mark) == [], tenant.log.writes("exchange", since=mark)
    assert "Traceback" not in output
    # The classic model works in the same tenant.
    [classic] = results(emulator, access_task(app["app_id"], authorization_model="classic"), check=check)
    assert not classic.get("failed") and classic["changed"] and classic["authorization_model"] == "classic", classic


def test_rbac_on_a_national_cloud_without_the_role_fails_before_any_write(emulator, tenant):
    env = in_cloud(tenant, "dod")
    [app] = results(emulator, app_task("dod-app"), env=env)
    mark = tenant.log.mark()
    [access], unused = play(emulator, access_task(app["app_id"], authorization_model="rbac"), env=env)
    assert access.get("failed") and NO_ROLE_FIX in access["msg"], access
    assert any("MC1158911" in w for w in access.get("warnings", [])), access
    assert tenant.log.writes("exchange", since=mark) == []


@pytest.mark.parametrize("cloud, model, role", [("public", "rbac", True), ("china", "classic", False)])
def test_the_info_report_says_the_default_and_whether_the_role_exists(emulator, tenant, cloud, model, role):
    env = in_cloud(tenant, cloud)
    [report] = results(emulator, {"name": "info", "o365.smtp_oauth.exchange_smtp_access_info": {}}, env=env)
    assert not report.get("failed"), report
    assert report["tenant"]["authorization_model_default"] == model
    assert report["tenant"]["rbac_smtp_role"] is role
