"""The emulated Exchange Online: the SMTP authorisation decision (exchange_state) and the admin API (exchange_api).

State tests drive ExchangeState directly on a bare directory; API tests go through requests over the emulator's
real HTTPS server with tokens from msal (see the second half of this file).
"""

import uuid

import pytest

from emulator.exchange_state import ExchangeState, FilterError, parse_filter

DOMAIN = "contoso.onmicrosoft.com"


def box(local):
    return "%s@%s" % (local, DOMAIN)


class Directory(object):
    """Just the directory objects ExchangeState reads (Graph's shape)."""

    def __init__(self):
        self.applications, self.service_principals = {}, {}

    def app(self):
        app_id, app_oid, sp_oid = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        self.applications[app_oid] = {"id": app_oid, "appId": app_id}
        self.service_principals[sp_oid] = {"id": sp_oid, "appId": app_id}
        return app_id, app_oid, sp_oid


@pytest.fixture
def state():
    directory = Directory()
    ex = ExchangeState(directory, DOMAIN)
    ex.directory = directory
    return ex


def rbac(ex, sp, address):
    scope = ex.add_scope("s-" + address, "PrimarySmtpAddress -eq '%s'" % address)
    return ex.add_role_assignment("a-" + address, "Application SMTP.SendAsApp", sp, scope)


def test_unknown_mailbox_and_unregistered_app_are_5_7_3(state):
    app_id, _, _ = state.directory.app()
    claims = {"appid": app_id, "roles": []}
    assert state.authorize_smtp(claims, box("nobody")) == (535, "5.7.3", "Authentication unsuccessful")
    assert state.authorize_smtp(claims, box("noreply")) == (535, "5.7.3", "Authentication unsuccessful")


def test_registration_with_the_application_object_id_does_not_count(state):
    app_id, app_oid, sp_oid = state.directory.app()
    wrong = state.register_sp(app_id, app_oid, "relay")
    rbac(state, wrong, box("noreply"))
    assert state.authorize_smtp({"appid": app_id}, box("noreply"))[1] == "5.7.3"
    assert "not its service principal object id" in state.explain({"appid": app_id}, box("noreply"))[1]
    state.remove_sp(wrong)
    rbac(state, state.register_sp(app_id, sp_oid, "relay"), box("noreply"))
    assert state.authorize_smtp({"appid": app_id}, box("noreply")) is None


def test_classic_needs_the_claim_and_full_access(state):
    app_id, _, sp_oid = state.directory.app()
    sp = state.register_sp(app_id, sp_oid, "relay")
    state.add_mailbox_permission(state.find_mailbox(box("printer")), sp)
    assert state.authorize_smtp({"appid": app_id, "roles": []}, box("printer"))[1] == "5.7.3"
    assert state.authorize_smtp({"appid": app_id, "roles": ["SMTP.SendAsApp"]}, box("printer")) is None
    assert state.authorize_smtp({"appid": app_id, "roles": ["SMTP.SendAsApp"]}, box("reports"))[1] == "5.7.3"


def test_rbac_scope_by_address_alias_and_group(state):
    app_id, _, sp_oid = state.directory.app()
    sp = state.register_sp(app_id, sp_oid, "relay")
    rbac(state, sp, box("noreply"))
    assert state.authorize_smtp({"appid": app_id}, "no-reply@" + DOMAIN) is None  # an alias of the same mailbox
    group = state.find_group("smtp-senders")
    scope = state.add_scope("group", "MemberOfGroup -eq '%s'" % group["DistinguishedName"])
    state.add_role_assignment("group", "Application SMTP.SendAsApp", sp, scope)
    assert state.authorize_smtp({"appid": app_id}, box("alerts")) is None
    assert state.authorize_smtp({"appid": app_id}, box("printer"))[1] == "5.7.3"
    state.add_role_assignment("org", "Application SMTP.SendAsApp", sp)  # no scope: the whole organisation
    assert state.authorize_smtp({"appid": app_id}, box("printer")) is None


@pytest.mark.parametrize("tenant_disabled, mailbox, expected", [
    (False, None, None), (True, None, "Tenant"), (True, False, None), (False, True, "Mailbox"), (True, True, "Mailbox"),
])
def test_smtp_auth_three_states(state, tenant_disabled, mailbox, expected):
    app_id, _, sp_oid = state.directory.app()
    rbac(state, state.register_sp(app_id, sp_oid, "relay"), box("alerts"))
    state.transport_config["SmtpClientAuthenticationDisabled"] = tenant_disabled
    state.find_mailbox(box("alerts"))["SmtpClientAuthenticationDisabled"] = mailbox
    verdict = state.authorize_smtp({"appid": app_id}, box("alerts"))
    if expected is None:
        assert verdict is None
    else:
        assert verdict[:2] == (535, "5.7.139") and ("for the %s." % expected) in verdict[2]
        assert "https://aka.ms/smtp_auth_disabled" in verdict[2]


def test_propagation_delay(state):
    now = [1000.0]
    state.clock = lambda: now[0]
    state.propagation_delay = 60
    app_id, _, sp_oid = state.directory.app()
    rbac(state, state.register_sp(app_id, sp_oid, "relay"), box("reports"))
    reply, reason = state.explain({"appid": app_id}, box("reports"))
    assert reply[1] == "5.7.3" and "propagated" in reason
    now[0] += 61
    assert state.authorize_smtp({"appid": app_id}, box("reports")) is None


def test_may_send_as_needs_send_as_on_the_address_recipient(state):
    app_id, _, sp_oid = state.directory.app()
    sp = state.register_sp(app_id, sp_oid, "relay")
    claims = {"appid": app_id}
    assert state.may_send_as(claims, box("app"), box("app"))
    assert not state.may_send_as(claims, box("app"), box("sales"))
    state.add_recipient_permission(state.find_recipient(box("sales")), sp)
    assert state.may_send_as(claims, box("app"), "info@" + DOMAIN)  # an alias of sales@
    assert not state.may_send_as(claims, box("app"), box("ghost"))


def test_helpers_for_other_parts_tests(state):
    app = str(uuid.uuid4())  # an app the directory does not know: any registration counts
    state.allow_smtp(app, box("app"))
    state.allow_smtp(app, box("other"), model="classic")
    assert state.authorize_smtp({"appid": app}, box("app")) is None
    assert state.authorize_smtp({"appid": app, "roles": ["SMTP.SendAsApp"]}, box("other")) is None
    state.allow_send_as(app, box("sales"))
    assert state.may_send_as({"appid": app}, box("app"), box("sales"))


@pytest.mark.parametrize("text", ["", "PrimarySmtpAddress", "Foo -eq 'x'", "(Alias -eq 'x'", "Alias -eq 'x' -or"])
def test_filters_exchange_would_refuse(text):
    with pytest.raises(FilterError):
        parse_filter(text)


def test_filter_precedence_and_quotes():
    assert parse_filter("Alias -eq 'a' -or Alias -eq 'b' -and -not Name -eq 'O''Brien'") == (
        "or", ("cmp", "alias", "-eq", "a"),
        ("and", ("cmp", "alias", "-eq", "b"), ("not", ("cmp", "name", "-eq", "O'Brien"))))
