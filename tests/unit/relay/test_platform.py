"""The relay role's platform check through ansible-playbook: on a system it is not proven on it stops at
validation, before installing anything, naming what it supports and what it would need; on Debian 12 and 13 the
validation passes. The facts are faked (tests/helpers/library/o365_test_platform.py): the role reads nothing else
to decide, and no other system can run here."""

import os

import pytest
from helpers.playbook import HELPERS, run_playbook

VARS = {"relay_mailbox": "relay@contoso.onmicrosoft.com", "relay_tenant_id": "contoso.onmicrosoft.com",
        "relay_client_id": "00000000-0000-0000-0000-0000000000aa", "relay_client_secret": "test-only-secret",
        "relay_allowed_networks": ["192.0.2.0/24"]}
ENV = {"ANSIBLE_LIBRARY": os.path.join(HELPERS, "library")}
CHECK = "o365.smtp_oauth.relay : The host is a Debian release the role is tested on"


def play(distribution, release, version, tasks_from="main", **overrides):
    return [
        {"name": "Fake the platform", "o365_test_platform": {
            "distribution": distribution, "release": release, "version": version}},
        {"name": "The relay role", "ansible.builtin.include_role": {
            "name": "o365.smtp_oauth.relay", "tasks_from": tasks_from}, "vars": dict(VARS, **overrides)},
    ]


@pytest.mark.parametrize("distribution, release, version", [
    ("Ubuntu", "noble", "24.04"), ("Debian", "bullseye", "11.11"),
    ("Rocky", "Blue Onyx", "9.5"),
])
def test_another_platform_stops_at_validation_before_installing(distribution, release, version):
    run = run_playbook(play(distribution, release, version), env=ENV)
    assert run.rc != 0, run.output
    failed = run.results[-1]
    assert failed["_task"] == CHECK and failed["failed"], run.output
    msg = failed["msg"]
    assert "supports Debian 12 and Debian 13 (bookworm, trixie)" in msg, msg
    assert "this host is %s %s (%s)" % (distribution, version, release) in msg and "Nothing was installed" in msg
    for need in ("Postfix", "systemd", "Python 3 with msal, aiosmtpd, requests and cryptography"):
        assert need in msg, msg
    # Nothing after the check ran: no package task, no file written.
    assert [r["_task"] for r in run.results if r["_task"] == CHECK] == [failed["_task"]]
    assert not any("Install" in r["_task"] for r in run.results), [r["_task"] for r in run.results]


@pytest.mark.parametrize("release, version", [("bookworm", "12.12"), ("trixie", "13.2")])
def test_debian_12_and_13_pass_validation(release, version):
    run = run_playbook(play("Debian", release, version, tasks_from="validate"), env=ENV)
    assert run.rc == 0, run.output
    assert run.task(CHECK)["failed"] is False and not run.task(CHECK).get("skipped"), run.output


def test_no_network_and_no_login_stops_naming_both():
    # The default allows no network (loopback on all interfaces would let every local account relay): with no
    # login either, nobody could use the relay, and the role says so before it installs anything.
    run = run_playbook(play("Debian", "bookworm", "12.12", tasks_from="validate", relay_allowed_networks=[]), env=ENV)
    assert run.rc != 0, run.output
    msg = run.results[-1]["msg"]
    assert "relay_allowed_networks" in msg and "relay_sasl_users" in msg and "loopback" in msg, msg
    run = run_playbook(play("Debian", "bookworm", "12.12", tasks_from="validate", relay_allowed_networks=[],
                            relay_listen_addresses=["127.0.0.1"]), env=ENV)
    assert run.rc == 0, run.output
