"""The emulated Exchange Online: the SMTP authorisation decision (exchange_state) and the admin API (exchange_api).

State tests drive ExchangeState directly on a bare directory; API tests go through requests over the emulator's
real HTTPS server with tokens from msal (see the second half of this file).
"""

import time
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
    app_id, dummy_app_oid, dummy_sp_oid = state.directory.app()
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
    app_id, app_oid, sp_oid = state.directory.app()
    sp = state.register_sp(app_id, sp_oid, "relay")
    state.add_mailbox_permission(state.find_mailbox(box("printer")), sp)
    assert state.authorize_smtp({"appid": app_id, "roles": []}, box("printer"))[1] == "5.7.3"
    assert state.authorize_smtp({"appid": app_id, "roles": ["SMTP.SendAsApp"]}, box("printer")) is None
    assert state.authorize_smtp({"appid": app_id, "roles": ["SMTP.SendAsApp"]}, box("reports"))[1] == "5.7.3"


def test_the_entra_claim_makes_exchange_check_mailbox_permissions_not_rbac(state):
    # Why the RBAC model must not add the Entra SMTP.SendAsApp permission (entra_app warns about it).
    app_id, app_oid, sp_oid = state.directory.app()
    sp = state.register_sp(app_id, sp_oid, "relay")
    rbac(state, sp, box("noreply"))
    assert state.authorize_smtp({"appid": app_id, "roles": []}, box("noreply")) is None
    assert state.authorize_smtp({"appid": app_id, "roles": ["SMTP.SendAsApp"]}, box("noreply"))[1] == "5.7.3"
    state.add_mailbox_permission(state.find_mailbox(box("noreply")), sp)
    assert state.authorize_smtp({"appid": app_id, "roles": ["SMTP.SendAsApp"]}, box("noreply")) is None


def test_rbac_scope_by_address_alias_and_group(state):
    app_id, app_oid, sp_oid = state.directory.app()
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
    app_id, app_oid, sp_oid = state.directory.app()
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
    app_id, app_oid, sp_oid = state.directory.app()
    rbac(state, state.register_sp(app_id, sp_oid, "relay"), box("reports"))
    reply, reason = state.explain({"appid": app_id}, box("reports"))
    assert reply[1] == "5.7.3" and "propagated" in reason
    now[0] += 61
    assert state.authorize_smtp({"appid": app_id}, box("reports")) is None


def test_may_send_as_needs_send_as_on_the_address_recipient(state):
    app_id, app_oid, sp_oid = state.directory.app()
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


# -- the admin API over HTTPS, with msal tokens -------------------------------------------------------------------
ANCHOR = "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@" + DOMAIN
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"


def exchange_token(emulator, client_id, secret, scope=EXCHANGE_SCOPE):
    from emulator.clients import msal_app
    result = msal_app(emulator, client_id, secret).acquire_token_for_client([scope])
    assert "access_token" in result, result
    return result["access_token"]


@pytest.fixture
def admin(emulator, tenant):
    return exchange_token(emulator, emulator.admin.client_id, emulator.admin.client_secret)


def invoke(emulator, token, cmdlet, parameters=None, url=None, tenant_in_url=None):
    from emulator.clients import PinnedSession
    url = url or "%s/adminapi/beta/%s/InvokeCommand" % (emulator.url, tenant_in_url or emulator.tenant.tenant_id)
    response = PinnedSession(emulator.ca_path).post(
        url, json={"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters or {}}},
        headers={"Authorization": "Bearer " + token, "X-ResponseFormat": "json", "X-AnchorMailbox": ANCHOR})
    return response.status_code, response.json()


def detail(body):
    """(exception type, text) of an Exchange error body."""
    status, exception_type, text = body["error"]["details"][0]["message"].split("|", 2)
    return exception_type, text


def test_reads_page_with_next_link_and_are_logged_as_reads(emulator, tenant, admin):
    tenant.exchange.page_size = 3
    mark = tenant.log.mark()
    status, body = invoke(emulator, admin, "Get-Mailbox")
    rows = list(body["value"])
    assert status == 200 and len(rows) == 3 and "$skiptoken=" in body["@odata.nextLink"]
    while "@odata.nextLink" in body:
        status, body = invoke(emulator, admin, "Get-Mailbox", url=body["@odata.nextLink"])
        rows += body["value"]
    assert sorted(r["PrimarySmtpAddress"] for r in rows) == sorted(
        b["PrimarySmtpAddress"] for b in tenant.exchange.mailboxes.values())
    entries = [e for e in tenant.log.since(mark) if e["part"] == "exchange"]
    assert [e["cmdlet"] for e in entries] == ["Get-Mailbox"] * len(entries) and not any(e["write"] for e in entries)
    assert all(e["client_id"] == emulator.admin.client_id for e in entries)


def test_every_cmdlet_round_trip(emulator, tenant, admin):
    made = emulator.create_app("relay")
    sp_id, app_id = made["sp"]["id"], made["client_id"]
    mark = tenant.log.mark()
    steps = [
        ("New-ServicePrincipal", {"AppId": app_id, "ObjectId": sp_id, "DisplayName": "relay"}),
        ("Get-ServicePrincipal", {"Identity": app_id}),
        ("Add-MailboxPermission", {"Identity": box("printer"), "User": sp_id, "AccessRights": ["FullAccess"]}),
        ("Get-MailboxPermission", {"Identity": box("printer"), "User": sp_id}),
        ("Add-RecipientPermission", {"Identity": box("sales"), "Trustee": sp_id, "AccessRights": ["SendAs"]}),
        ("Get-RecipientPermission", {"Trustee": sp_id}),
        ("Set-CASMailbox", {"Identity": box("alerts"), "SmtpClientAuthenticationDisabled": True}),
        ("Get-CASMailbox", {"Identity": box("alerts")}),
        ("Get-TransportConfig", {}),
        ("New-ManagementScope", {"Name": "relay", "RecipientRestrictionFilter":
                                 "PrimarySmtpAddress -eq '%s'" % box("reports")}),
        ("Get-ManagementScope", {"Identity": "relay"}),
        ("New-ManagementRoleAssignment", {"Name": "relay", "App": sp_id, "Role": "Application SMTP.SendAsApp",
                                          "CustomResourceScope": "relay"}),
        ("Get-ManagementRoleAssignment", {"RoleAssignee": sp_id}),
        ("Test-ServicePrincipalAuthorization", {"Identity": sp_id, "Resource": box("reports")}),
        ("Remove-ManagementRoleAssignment", {"Identity": "relay", "Confirm": False}),
        ("Remove-ManagementScope", {"Identity": "relay"}),
        ("Remove-RecipientPermission", {"Identity": box("sales"), "Trustee": sp_id, "AccessRights": ["SendAs"]}),
        ("Remove-MailboxPermission", {"Identity": box("printer"), "User": sp_id, "AccessRights": ["FullAccess"]}),
        ("Set-CASMailbox", {"Identity": box("alerts"), "SmtpClientAuthenticationDisabled": None}),
        ("Remove-ServicePrincipal", {"Identity": sp_id}),
    ]
    answers = {}
    for cmdlet, parameters in steps:
        status, body = invoke(emulator, admin, cmdlet, parameters)
        assert status == 200, (cmdlet, body)
        answers.setdefault(cmdlet, body["value"])
    assert answers["Get-ServicePrincipal"][0]["ObjectId"] == sp_id
    assert answers["Get-MailboxPermission"][0]["AccessRights"] == ["FullAccess"]
    assert answers["Get-RecipientPermission"][0]["Identity"] == "sales"
    assert answers["Get-CASMailbox"][0]["SmtpClientAuthenticationDisabled"] is True
    assert answers["Get-TransportConfig"][0]["SmtpClientAuthenticationDisabled"] is False
    assert answers["Get-ManagementRoleAssignment"][0]["CustomResourceScope"] == "relay"
    assert answers["Get-ManagementRoleAssignment"][0]["RoleAssigneeType"] == "ServicePrincipal"
    assert "App" not in answers["Get-ManagementRoleAssignment"][0]
    assert "RecipientFilter" in answers["Get-ManagementScope"][0]
    assert "RecipientRestrictionFilter" not in answers["Get-ManagementScope"][0]
    assert answers["Test-ServicePrincipalAuthorization"][0]["InScope"] is True
    assert tenant.exchange.find_mailbox(box("alerts"))["SmtpClientAuthenticationDisabled"] is None
    assert tenant.exchange.service_principals == {} and tenant.exchange.scopes == {}
    logged = [(e["cmdlet"], e["write"]) for e in tenant.log.since(mark) if e["part"] == "exchange"]
    assert logged == [(c, not c.startswith(("Get-", "Test-"))) for c, dummy in steps]
    assert len(tenant.log.writes(part="exchange", since=mark)) == 12


def test_application_object_id_is_accepted_silently_and_smtp_then_fails(emulator, tenant, admin):
    made = emulator.create_app("trap")
    status, body = invoke(emulator, admin, "New-ServicePrincipal", {"AppId": made["client_id"],
                                                                    "ObjectId": made["app"]["id"]})
    assert status == 200 and body["value"][0]["ObjectId"] == made["app"]["id"]
    tenant.exchange.add_role_assignment("trap", "Application SMTP.SendAsApp",
                                        tenant.exchange.find_sp(made["app"]["id"]))
    assert tenant.exchange.authorize_smtp({"appid": made["client_id"]}, box("noreply"))[1] == "5.7.3"


def test_exchange_style_errors(emulator, tenant, admin):
    made = emulator.create_app("dup")
    status, body = invoke(emulator, admin, "Get-Mailbox", {"Identity": box("ghost")})
    assert status == 404 and body["error"]["message"] == "Error executing cmdlet"
    assert detail(body) == ("Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
                            "The operation couldn't be performed because object '%s' couldn't be found on "
                            "'AM0PR01MB0001.EURPRD01.PROD.OUTLOOK.COM'." % box("ghost"))
    assert body["error"]["details"][0]["message"].startswith("Ex6F9304|")
    params = {"AppId": made["client_id"], "ObjectId": made["sp"]["id"]}
    assert invoke(emulator, admin, "New-ServicePrincipal", params)[0] == 200
    status, body = invoke(emulator, admin, "New-ServicePrincipal", params)
    assert status == 400 and "AlreadyExists" in detail(body)[0]
    status, body = invoke(emulator, admin, "Get-Mailbox", {"Identiti": "x"})
    assert status == 400 and "parameter name 'Identiti'" in detail(body)[1]
    status, body = invoke(emulator, admin, "Get-Nothing")
    assert status == 400 and "is not recognized" in detail(body)[1]
    status, body = invoke(emulator, admin, "New-ManagementScope", {"Name": "bad", "RecipientRestrictionFilter": "x"})
    assert status == 400 and "filter" in detail(body)[1].lower()
    status, body = invoke(emulator, admin, "Set-CASMailbox", {"Identity": box("alerts"),
                                                              "SmtpClientAuthenticationDisabled": "maybe"})
    assert status == 400 and "Nullable[bool]" in detail(body)[1]
    invoke(emulator, admin, "New-ManagementScope", {"Name": "used", "RecipientRestrictionFilter": "Alias -eq 'x'"})
    invoke(emulator, admin, "New-ManagementRoleAssignment", {"App": made["sp"]["id"], "CustomResourceScope": "used",
                                                             "Role": "Application SMTP.SendAsApp", "Name": "used"})
    status, body = invoke(emulator, admin, "Remove-ManagementScope", {"Identity": "used"})
    assert status == 400 and "Remove those role assignments first" in detail(body)[1]


def test_not_authorized_answers(emulator, tenant, admin):
    no_role = emulator.create_app("no-manage-role")
    no_admin = emulator.create_app("no-exchange-admin", exchange_roles=("Exchange.ManageAsApp",))
    status, body = invoke(emulator, exchange_token(emulator, no_role["client_id"], no_role["client_secret"]),
                          "Get-Mailbox")
    assert status == 401 and "Exchange.ManageAsApp" in detail(body)[1]
    status, body = invoke(emulator, exchange_token(emulator, no_admin["client_id"], no_admin["client_secret"]),
                          "Get-Mailbox")
    assert status == 403 and "isn't supported in this scenario" in detail(body)[1]
    graph_token = exchange_token(emulator, emulator.admin.client_id, emulator.admin.client_secret,
                                 scope="https://graph.microsoft.com/.default")
    assert invoke(emulator, graph_token, "Get-Mailbox")[0] == 401
    assert invoke(emulator, admin, "Get-Mailbox", tenant_in_url="fabrikam.onmicrosoft.com")[0] == 401
    assert invoke(emulator, admin, "Get-Mailbox", tenant_in_url=DOMAIN)[0] == 200
    assert tenant.log.writes(part="exchange") == []


def registered_with_an_organisation_wide_assignment(emulator, admin, name):
    """An app registered in Exchange with 'Application SMTP.SendAsApp' for the whole organisation: (app, sp id)."""
    made = emulator.create_app(name)
    sp_id = made["sp"]["id"]
    invoke(emulator, admin, "New-ServicePrincipal", {"AppId": made["client_id"], "ObjectId": sp_id})
    invoke(emulator, admin, "New-ManagementRoleAssignment", {"App": sp_id, "Role": "Application SMTP.SendAsApp"})
    return made, sp_id


def test_propagation_delay_shows_in_test_service_principal_authorization(emulator, tenant, admin):
    tenant.exchange.propagation_delay = 1.0
    made, sp_id = registered_with_an_organisation_wide_assignment(emulator, admin, "slow")

    def check():
        return invoke(emulator, admin, "Test-ServicePrincipalAuthorization",
                      {"Identity": sp_id, "Resource": box("noreply")})[1]["value"][0]["InScope"]
    assert check() is False
    assert tenant.exchange.authorize_smtp({"appid": made["client_id"]}, box("noreply"))[1] == "5.7.3"
    deadline = time.time() + 5
    while not check() and time.time() < deadline:
        time.sleep(0.2)
    assert check() is True and tenant.exchange.authorize_smtp({"appid": made["client_id"]}, box("noreply")) is None


def test_throttling_fault_answers_429_with_retry_after_in_exchange_shape(emulator, tenant, admin):
    fault = tenant.faults.add("exchange", match="Get-TransportConfig", kind="status", status=429, retry_after=3)
    status, body = invoke(emulator, admin, "Get-TransportConfig")
    assert status == 429 and body["error"]["code"] == "TooManyRequests" and fault.hits == 1
    assert invoke(emulator, admin, "Get-TransportConfig")[0] == 200


# -- the cmdlet contract (generated from Microsoft's cmdlet reference) -----------------------------------------------
def test_parameters_bind_as_the_cmdlet_reference_says(emulator, tenant, admin):
    made = emulator.create_app("binding")
    sp_id = made["sp"]["id"]
    assert invoke(emulator, admin, "New-ServicePrincipal", {"AppId": made["client_id"], "ObjectId": sp_id})[0] == 200
    # Get-ManagementRoleAssignment has no -App (only New-ManagementRoleAssignment takes it).
    status, body = invoke(emulator, admin, "Get-ManagementRoleAssignment", {"App": sp_id})
    assert status == 400 and detail(body) == ("System.Management.Automation.ParameterBindingException",
                                              "A parameter cannot be found that matches parameter name 'App'.")
    # -Identity and -RoleAssignee are in different parameter sets.
    status, body = invoke(emulator, admin, "Get-ManagementRoleAssignment", {"Identity": "x", "RoleAssignee": sp_id})
    assert status == 400 and "Parameter set cannot be resolved" in detail(body)[1]
    # A mandatory parameter of the only set that fits.
    status, body = invoke(emulator, admin, "New-ManagementRoleAssignment", {"App": sp_id})
    assert status == 400 and "missing mandatory parameters: Role" in detail(body)[1]
    # A parameter documented for on-premises Exchange only.
    status, body = invoke(emulator, admin, "Get-Mailbox", {"Server": "EX01"})
    assert status == 400 and "parameter name 'Server'" in detail(body)[1]
    # Names are case-insensitive, aliases bind, common parameters pass.
    assert invoke(emulator, admin, "get-managementroleassignment",
                  {"roleassignee": sp_id, "role": "Application SMTP.SendAsApp", "ErrorAction": "Stop"})[0] == 200
    # Valid in Exchange Online, not modelled here: the emulator says so instead of ignoring it.
    status, body = invoke(emulator, admin, "Get-Mailbox", {"Anr": "ali"})
    assert status == 501 and "does not model" in detail(body)[1]
    assert tenant.exchange.role_assignments == {}


def test_the_contract_comes_from_the_reference_and_covers_every_cmdlet():
    from emulator import exchange_api, exchange_contract
    source = exchange_contract.contract()["source"]
    assert source["repository"] == "MicrosoftDocs/office-docs-powershell" and len(source["commit"]) == 40
    assert {k.lower() for k in exchange_contract.cmdlet_names()} == set(exchange_api.CMDLETS)
    get_assignment = exchange_contract.spec("Get-ManagementRoleAssignment")[1]
    assert "App" not in get_assignment["parameters"] and "RoleAssignee" in get_assignment["parameters"]
    assert "App" in exchange_contract.spec("New-ManagementRoleAssignment")[1]["parameters"]


def test_regenerating_the_contract_gives_the_vendored_file():
    """Runs where a mirror of office-docs-powershell exists (O365_DOCS_MIRROR, a git dir); elsewhere the vendored
    file's well-formedness is all that is checked (the test above)."""
    import os
    import subprocess
    import sys
    mirror = os.environ.get("O365_DOCS_MIRROR")
    if not mirror or not os.path.isdir(mirror):
        pytest.skip("no mirror of office-docs-powershell (set O365_DOCS_MIRROR to a git dir to check regeneration)")
    from emulator import exchange_contract
    commit = exchange_contract.contract()["source"]["commit"]
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "extract_exchange_contract.py")
    done = subprocess.run([sys.executable, script, "--git-dir", mirror, "--commit", commit, "--check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_objects_print_with_documented_names_and_exchange_rewrites_filters(emulator, tenant, admin):
    made = emulator.create_app("printed")
    sp_id = made["sp"]["id"]
    invoke(emulator, admin, "New-ServicePrincipal", {"AppId": made["client_id"], "ObjectId": sp_id,
                                                     "DisplayName": "Printed App"})
    invoke(emulator, admin, "New-ManagementScope", {"Name": "p", "RecipientRestrictionFilter":
                                                    "PrimarySmtpAddress -eq 'a@x' -or primarysmtpaddress -eq 'b@x'"})
    scope = invoke(emulator, admin, "Get-ManagementScope", {"Identity": "p"})[1]["value"][0]
    assert scope["RecipientFilter"] == "((PrimarySmtpAddress -eq 'a@x') -or (PrimarySmtpAddress -eq 'b@x'))"
    invoke(emulator, admin, "New-ManagementRoleAssignment", {"Name": "p", "App": sp_id, "CustomResourceScope": "p",
                                                             "Role": "Application SMTP.SendAsApp"})
    invoke(emulator, admin, "Add-MailboxPermission", {"Identity": box("reports"), "User": sp_id,
                                                      "AccessRights": ["FullAccess"]})
    for form, expected in (("object_id", sp_id), ("app_id", made["client_id"]), ("display_name", "Printed App")):
        tenant.exchange.principal_form = form
        row = invoke(emulator, admin, "Get-ManagementRoleAssignment", {"RoleAssignee": sp_id})[1]["value"][0]
        assert (row["RoleAssignee"], row["RoleAssigneeName"], row["RoleAssigneeType"]) == (
            expected, "Printed App", "ServicePrincipal")
        perm = invoke(emulator, admin, "Get-MailboxPermission", {"Identity": box("reports"), "User": sp_id})
        assert perm[1]["value"][0]["User"] == expected
    tenant.exchange.principal_form = "sid"
    perm = invoke(emulator, admin, "Get-MailboxPermission", {"Identity": box("reports"), "User": sp_id})
    assert perm[1]["value"][0]["User"].startswith("S-1-5-21-")
    tenant.exchange.role_assignee_resolves_sp = False
    status, body = invoke(emulator, admin, "Get-ManagementRoleAssignment", {"RoleAssignee": sp_id})
    assert status == 404 and "ManagementObjectNotFound" in detail(body)[0]


def test_smtp_permission_cache_lags_behind_the_test_cmdlet(emulator, tenant, admin):
    tenant.exchange.smtp_cache_delay = 1.5
    made, sp_id = registered_with_an_organisation_wide_assignment(emulator, admin, "cached")
    row = invoke(emulator, admin, "Test-ServicePrincipalAuthorization",
                 {"Identity": sp_id, "Resource": box("noreply")})[1]["value"][0]
    assert row["InScope"] is True
    assert tenant.exchange.authorize_smtp({"appid": made["client_id"]}, box("noreply"))[1] == "5.7.3"
    time.sleep(1.6)
    assert tenant.exchange.authorize_smtp({"appid": made["client_id"]}, box("noreply")) is None
    status, body = invoke(emulator, admin, "Test-ServicePrincipalAuthorization", {"Identity": sp_id})
    assert body["value"][0]["InScope"] == "Not Run"
