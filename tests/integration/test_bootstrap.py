"""playbooks/bootstrap.yml as an admin runs it: `ansible-playbook o365.smtp_oauth.bootstrap`, one device code
sign-in, against the emulated tenant. Nobody signs in here: `tenant.device_flow` answers for the user (approve as a
Global Administrator by default, deny, never, a user without the roles, fewer scopes), after one
authorization_pending poll.

The environment holds no credential (emulator.env("none")): the admin's delegated token is the only way in.
"""

import os
import stat

import pytest

from emulator.device_flow import APPLICATION_ADMINISTRATOR, EXCHANGE_ADMINISTRATOR
from helpers.playbook import run_playbook

PLAY = "- ansible.builtin.import_playbook: o365.smtp_oauth.bootstrap\n"
UNIQUE_NAME = "bootstrap-admin"
SEEDED_ADMIN = "o365-smtp-oauth-admin"  # the emulator's seeded admin app holds the playbook's default unique name
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
SIGN_IN = "Sign in as an admin (open the page and enter the code printed below)"
MESSAGE = "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code"


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path / "keys")


@pytest.fixture
def flow(tenant):
    tenant.device_flow.interval = 1
    return tenant.device_flow


def bootstrap(emulator, workdir, check=False, verbosity=0, **extra):
    extra_vars = {"bootstrap_certificate_dir": workdir, "bootstrap_wait_delay": 1, "bootstrap_wait_timeout": 40,
                  "bootstrap_app_unique_name": UNIQUE_NAME}
    extra_vars.update(extra)
    return run_playbook(emulator, PLAY, extra_vars=extra_vars, check=check, verbosity=verbosity,
                        credential="none", timeout=240)


def app_of(tenant):
    return tenant.find_application(unique_name=UNIQUE_NAME)


def test_bootstrap_check_then_twice(emulator, tenant, flow, workdir):
    tenant.exchange.role_propagation_delay = 6  # Exchange honours the new role later: the play must wait for it
    mark = tenant.log.mark()
    checked = bootstrap(emulator, workdir, check=True)
    assert checked.rc == 0, checked.output[-4000:]
    assert MESSAGE in checked.output
    assert tenant.log.writes(since=mark) == []
    assert not os.path.exists(workdir)
    assert checked.task("The admin app, its permissions and their admin consent")["changed"] is True
    assert checked.task("The Exchange admin role for the admin app's service principal")["changed"] is True

    first = bootstrap(emulator, workdir)
    assert first.rc == 0, first.output[-4000:]
    app = app_of(tenant)
    sp = tenant.find_service_principal(app_id=app["appId"])
    assert "Exchange.ManageAsApp" in tenant.roles_for(app["appId"], EXCHANGE_APP_ID)
    assert {"Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"} <= set(
        tenant.roles_for(app["appId"], "00000003-0000-0000-c000-000000000000"))
    assert [a for a in tenant.directory_role_assignments.values()
            if a["principalId"] == sp["id"] and a["roleDefinitionId"] == EXCHANGE_ADMINISTRATOR]
    assert len(app["keyCredentials"]) == 1
    pem = os.path.join(workdir, "admin.pem")
    for path in (pem, os.path.join(workdir, "admin-key.pem")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(workdir).st_mode) == 0o700
    waited = first.task("Wait until Exchange honours the role (a read with the app's own certificate)")
    assert waited.get("attempts", 1) > 1, waited  # refused (403) until the role reached Exchange, then read
    shown = first.task("The variables the other playbooks need")["msg"]
    assert "AZURE_CLIENT_ID=%s" % app["appId"] in shown and "AZURE_CLIENT_CERTIFICATE_PATH=%s" % pem in shown

    mark = tenant.log.mark()
    second = bootstrap(emulator, workdir, verbosity=3)
    assert second.rc == 0, second.output[-4000:]
    assert [r["_task"] for r in second.results if r.get("changed")] == []
    assert tenant.log.writes(since=mark) == []
    assert len(app_of(tenant)["keyCredentials"]) == 1
    with open(os.path.join(workdir, "admin-key.pem")) as handle:
        key_lines = [line for line in handle.read().splitlines() if line and not line.startswith("-----")]
    assert not [line for line in key_lines if line in second.output]
    assert "eyJ0eX" not in second.output and "eyJhbG" not in second.output  # no JWT at -vvv
    assert MESSAGE in second.output


def test_bootstrap_adopts_an_existing_admin_app(emulator, tenant, flow, workdir):
    existing = tenant.find_application(unique_name=SEEDED_ADMIN)
    keys = len(existing["keyCredentials"])
    count = len(tenant.applications)
    result = bootstrap(emulator, workdir, bootstrap_app_unique_name=SEEDED_ADMIN)
    assert result.rc == 0, result.output[-4000:]
    assert len(tenant.applications) == count
    assert result.task("The admin app, its permissions and their admin consent")["app_id"] == existing["appId"]
    assert len(existing["keyCredentials"]) == keys + 1  # its credentials kept, the new certificate added


def test_bootstrap_federated_credential_for_ci(emulator, tenant, flow, workdir):
    subject = "repo:contoso/mail-ops:ref:refs/heads/main"
    result = bootstrap(emulator, workdir, bootstrap_credential="federated", bootstrap_federated_subject=subject)
    assert result.rc == 0, result.output[-4000:]
    app = app_of(tenant)
    assert [(f["issuer"], f["subject"]) for f in app["federatedIdentityCredentials"]] == [
        ("https://token.actions.githubusercontent.com", subject)]
    assert app.get("keyCredentials") in (None, [])
    assert not os.path.exists(workdir)


def test_bootstrap_survives_slow_down(emulator, tenant, flow, workdir):
    flow.slow_down_polls = 1  # the identity platform asks to poll less often: msal adds 5 s and goes on
    result = bootstrap(emulator, workdir, bootstrap_credential="federated", bootstrap_federated_subject="repo:x/y")
    assert result.rc == 0, result.output[-4000:]
    assert app_of(tenant) is not None


def refused(emulator, tenant, workdir, **extra):
    mark = tenant.log.mark()
    result = bootstrap(emulator, workdir, **extra)
    assert result.rc != 0
    assert MESSAGE in result.output
    assert tenant.log.writes(since=mark) == []  # nothing half made
    assert app_of(tenant) is None and not tenant.directory_role_assignments
    assert not os.path.exists(workdir)
    failed = result.task(SIGN_IN)
    assert failed["failed"] and "Traceback" not in failed["msg"]
    return failed


def test_declined_sign_in(emulator, tenant, flow, workdir):
    flow.sign_in("deny")
    failed = refused(emulator, tenant, workdir)
    assert "the sign-in was declined" in failed["msg"] and failed["error_code"] == "sign_in_declined"


def test_expired_code(emulator, tenant, flow, workdir):
    flow.sign_in(answer=None)
    flow.expires_in = 3
    failed = refused(emulator, tenant, workdir)
    assert "the code expired before the sign-in was completed" in failed["msg"], failed


def test_nobody_signs_in_within_the_timeout(emulator, tenant, flow, workdir):
    flow.sign_in(answer=None)
    failed = refused(emulator, tenant, workdir, bootstrap_sign_in_timeout=3)
    assert failed["option"] == "timeout" and "nobody completed the sign-in within 3 seconds" in failed["msg"]


def test_non_admin_is_refused_naming_the_roles(emulator, tenant, flow, workdir):
    flow.sign_in(user="adele@contoso.onmicrosoft.com")
    failed = refused(emulator, tenant, workdir)
    assert "adele@contoso.onmicrosoft.com signed in, holding no directory role" in failed["msg"]
    assert "Global Administrator, or Privileged Role Administrator together with Application Administrator" \
        in failed["msg"]


def test_application_administrator_alone_is_refused(emulator, tenant, flow, workdir):
    flow.sign_in(roles=(APPLICATION_ADMINISTRATOR,))
    failed = refused(emulator, tenant, workdir)
    assert "holding Application Administrator; bootstrapping the admin app needs" in failed["msg"]


def test_missing_delegated_permission_is_refused(emulator, tenant, flow, workdir):
    flow.sign_in(scopes=("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"))
    failed = refused(emulator, tenant, workdir)
    assert failed["option"] == "scopes" and "RoleManagement.ReadWrite.Directory" in failed["msg"]


def test_bad_options_fail_before_any_request(emulator, tenant):
    mark = tenant.log.mark()
    result = run_playbook(emulator, [
        {"o365.smtp_oauth.entra_device_login": {"timeout": 0}, "ignore_errors": True},
        {"o365.smtp_oauth.entra_device_login": {"tenant_id": "common"}, "ignore_errors": True}],
        credential="none")
    zero, common = result.results
    assert zero["failed"] and zero["option"] == "timeout" and "more than 0 seconds" in zero["msg"]
    assert common["failed"] and common["option"] == "tenant_id" and "must name the tenant" in common["msg"]
    assert tenant.log.since(mark) == []
