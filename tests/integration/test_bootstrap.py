"""playbooks/bootstrap.yml as an admin runs it: `ansible-playbook o365.smtp_oauth.bootstrap`, one device code
sign-in, against the emulated tenant. Nobody signs in here: `tenant.device_flow` answers for the user (approve as a
Global Administrator by default, deny, never, or a user without the roles), after one authorization_pending poll.

The environment holds no credential (emulator.env("none")): the admin's delegated token is the only way in.
"""

import os
import stat

import pytest

from emulator.device_flow import APPLICATION_ADMINISTRATOR, EXCHANGE_ADMINISTRATOR
from helpers.playbook import run_playbook

PLAY = "- ansible.builtin.import_playbook: o365.smtp_oauth.bootstrap\n"
UNIQUE_NAME = "o365-smtp-oauth-admin"


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path / "keys")


def bootstrap(emulator, workdir, check=False, verbosity=0, **extra):
    extra_vars = {"bootstrap_certificate_dir": workdir, "bootstrap_wait_delay": 1, "bootstrap_wait_timeout": 30}
    extra_vars.update(extra)
    return run_playbook(emulator, PLAY, extra_vars=extra_vars, check=check, verbosity=verbosity,
                        credential="none", timeout=240)


@pytest.fixture
def fast_flow(tenant):
    tenant.device_flow.interval = 1
    return tenant.device_flow


def app_of(tenant):
    return tenant.find_application(unique_name=UNIQUE_NAME)


def test_bootstrap_check_then_twice(emulator, tenant, fast_flow, workdir):
    tenant.exchange.role_propagation_delay = 3  # Exchange honours the role a little later: the play waits
    mark = tenant.log.mark()
    checked = bootstrap(emulator, workdir, check=True)
    assert checked.rc == 0, checked.output[-4000:]
    assert "To sign in, use a web browser to open the page https://microsoft.com/devicelogin" in checked.output
    assert tenant.log.writes(since=mark) == []
    assert not os.path.exists(workdir)
    assert checked.task("The admin app, its permissions and their admin consent")["changed"] is True

    first = bootstrap(emulator, workdir)
    assert first.rc == 0, first.output[-4000:]
    app = app_of(tenant)
    sp = tenant.find_service_principal(app_id=app["appId"])
    assert {"Exchange.ManageAsApp"} <= set(tenant.roles_for(app["appId"], "00000002-0000-0ff1-ce00-000000000000"))
    assert [a for a in tenant.directory_role_assignments.values()
            if a["principalId"] == sp["id"] and a["roleDefinitionId"] == EXCHANGE_ADMINISTRATOR]
    assert len(app["keyCredentials"]) == 1
    pem = os.path.join(workdir, "admin.pem")
    for path in (pem, os.path.join(workdir, "admin-key.pem")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert tenant.exchange.is_admin(app["appId"])
    shown = first.task("The variables the other playbooks need")["msg"]
    assert "AZURE_CLIENT_ID=%s" % app["appId"] in shown and "AZURE_CLIENT_CERTIFICATE_PATH=%s" % pem in shown

    mark = tenant.log.mark()
    second = bootstrap(emulator, workdir, verbosity=3)
    assert second.rc == 0, second.output[-4000:]
    assert [r["_task"] for r in second.results if r.get("changed")] == []
    assert tenant.log.writes(since=mark) == []
    with open(os.path.join(workdir, "admin-key.pem")) as handle:
        key = handle.read()
    body = key.split("-----")[2].strip().splitlines()[1]
    assert body not in second.output
    assert "eyJ" not in second.output  # no JWT (header base64 of '{"') anywhere at -vvv
