"""exchange_smtp_access / _info logic against the emulated Exchange cmdlets, in process.

What is real here: the module logic (_exchange_*.py), ExchangeAdminClient (paging, headers, error translation) and
the emulator's cmdlet implementation and Exchange state (exchange_api.answer / exchange_state). What is replaced:
the HTTPS transport and token layer (an in-process stand-in, FakeHttp below) and Graph (a two-object directory),
so these tests run without the emulator core. The same flows run over real HTTPS, real tokens and the real Graph
emulator in tests/integration/test_exchange_smtp_access.py.
"""

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import resolve_cloud
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.client import ExchangeAdminClient, ExchangeCmdletError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.tasks import (
    run_exchange_smtp_access, run_exchange_smtp_access_info)
from emulator import exchange_api
from emulator.exchange_state import ExchangeState
from helpers.scripted_http import as_the_client_answers, response
from helpers.spec import module_params

URL = "https://exchange.test"
DOMAIN = "contoso.onmicrosoft.com"
EXCHANGE_APP = "00000002-0000-0ff1-ce00-000000000000"


class Log(list):
    def add(self, **entry):
        self.append(entry)

    def writes(self):
        return [e for e in self if e.get("write")]


class Tokens(object):
    """Stand-in for the core's token verification: one opaque token per app."""

    def __init__(self, tenant_id):
        self.claims, self.tenant_id = {}, tenant_id

    def issue(self, app_id, roles):
        token = "tok-" + uuid.uuid4().hex
        self.claims[token] = {"appid": app_id, "roles": list(roles), "tid": self.tenant_id}
        return token

    def verify(self, token, audience):
        assert audience == "https://outlook.office365.com"
        if token not in self.claims:
            raise ValueError("unknown token")
        return self.claims[token]


class Tenant(object):
    def __init__(self):
        self.tenant_id = str(uuid.uuid4())
        self.url = URL
        self.log = Log()
        self.tokens = Tokens(self.tenant_id)
        self.applications, self.service_principals, self.assignments = {}, {}, []
        exchange_sp = self.add_sp(EXCHANGE_APP, "Office 365 Exchange Online")
        self.exchange_sp = exchange_sp
        exchange_sp["appRoles"] = [{"id": str(uuid.uuid4()), "value": "SMTP.SendAsApp",
                                    "allowedMemberTypes": ["Application"]}]
        self.exchange = ExchangeState(self, DOMAIN)

    def add_sp(self, app_id, name):
        sp = {"id": str(uuid.uuid4()), "appId": app_id, "displayName": name, "appRoles": []}
        self.service_principals[sp["id"]] = sp
        return sp

    def add_app(self, name):
        app_id = str(uuid.uuid4())
        self.applications[str(uuid.uuid4())] = {"appId": app_id, "displayName": name}
        for oid, app in self.applications.items():
            app["id"] = oid
        return app_id, self.add_sp(app_id, name)


class Request(object):
    def __init__(self, url, body, headers, token):
        parts = urlsplit(url)
        self.path = parts.path
        self.query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.headers = dict(headers or {}, Authorization="Bearer " + token)
        self.json = body
        self.match = {"tenant": parts.path.split("/")[3]}


class FakeHttp(object):
    """Routes Exchange calls to the emulator's InvokeCommand code and answers the few Graph reads."""

    def __init__(self, tenant, token):
        self.tenant, self.token, self.requests = tenant, token, []
        self.lose_answer_of = set()  # cmdlets whose first answer is lost: done, then retried by the client

    def request(self, method, url, scope=None, json=None, params=None, headers=None, errors=None, **options):
        return as_the_client_answers(self.answer(method, url, json, params, headers), errors)

    def answer(self, method, url, json, params, headers):
        self.requests.append((method, url, json, headers))
        if "/adminapi/" in url:
            cmdlet = json["CmdletInput"]["CmdletName"]
            if cmdlet in self.lose_answer_of:
                self.lose_answer_of.discard(cmdlet)
                exchange_api.answer(self.tenant, Request(url, json, headers, self.token))
            status, body, cmdlet, app_id = exchange_api.answer(self.tenant, Request(url, json, headers, self.token))
            self.tenant.log.add(cmdlet=cmdlet, status=status, write=ExchangeAdminClient.is_write(cmdlet))
            return response(status, body, url=url, method=method)
        if "(appId=" in url:  # GET servicePrincipals(appId='...')
            app_id = url.split("'")[1]
            found = [o for o in self.tenant.service_principals.values() if o["appId"] == app_id]
            return response(200, found[0], url=url) if found else response(
                404, {"error": {"code": "Request_ResourceNotFound", "message": "not found"}}, url=url)
        return response(200, {"value": self.graph(url, params or {})}, url=url)

    def graph(self, url, params):
        flt = params.get("$filter", "")
        if "appRoleAssignments" in url:
            sp_id = url.split("/")[-2]
            return [a for a in self.tenant.assignments if a["principalId"] == sp_id]
        app_id = flt.split("'")[1] if "'" in flt else None
        pool = self.tenant.applications if "/applications" in url else self.tenant.service_principals
        return [o for o in pool.values() if o["appId"] == app_id]


class Module(object):
    """What a module body uses of O365Module; params through the module's real argument spec."""

    def __init__(self, tenant, token, check_mode=False, module="exchange_smtp_access_info", **params):
        self.params = module_params(module, tenant_id=tenant.tenant_id, **params)
        self.check_mode = check_mode
        self.cloud = resolve_cloud("public", graph_endpoint=URL, exchange_endpoint=URL)
        self.http = FakeHttp(tenant, token)
        self.warnings, self.result = [], None

    def warn(self, message):
        self.warnings.append(message)


@pytest.fixture
def tenant():
    t = Tenant()
    admin_id, admin_sp = t.add_app("admin")
    t.exchange.admin_apps.add(admin_id)
    t.admin_token = t.tokens.issue(admin_id, ["Exchange.ManageAsApp"])
    t.app_id, t.sp = t.add_app("relay")
    return t


def access(tenant, check_mode=False, **params):
    params.setdefault("app_id", tenant.app_id)
    params.setdefault("wait_timeout", 5)
    lose = params.pop("lose_answer_of", ())
    module = Module(tenant, tenant.admin_token, check_mode=check_mode, module="exchange_smtp_access", **params)
    module.http.lose_answer_of.update(lose)
    mark = len(tenant.log)
    module.result = run_exchange_smtp_access(module)
    module.writes = [e for e in tenant.log[mark:] if e["write"]]
    return module


def consent(tenant):
    """The Entra half of the classic model: SMTP.SendAsApp consented to the app."""
    tenant.assignments.append({"principalId": tenant.sp["id"], "resourceId": tenant.exchange_sp["id"],
                               "appRoleId": tenant.exchange_sp["appRoles"][0]["id"]})


def claims(tenant, roles=()):
    return {"appid": tenant.app_id, "roles": list(roles)}


def box(local):
    return "%s@%s" % (local, DOMAIN)


@pytest.mark.parametrize("model,roles", [("rbac", ()), ("classic", ("SMTP.SendAsApp",))])
def test_create_check_create_again_again(tenant, model, roles):
    declared = dict(authorization_model=model, mailboxes=[{"address": box("noreply")}, {"address": box("alerts")}])
    if model == "classic":
        consent(tenant)
    assert tenant.exchange.authorize_smtp(claims(tenant, roles), box("noreply"))[1] == "5.7.3"

    first = access(tenant, check_mode=True, **declared)
    assert first.result["changed"] and first.writes == [] and first.result["actions"]
    assert tenant.exchange.authorize_smtp(claims(tenant, roles), box("noreply"))[1] == "5.7.3"

    second = access(tenant, **declared)
    assert second.result["changed"] and [a.split(" ")[0] for a in second.result["actions"]] == \
        [w["cmdlet"] for w in second.writes]
    assert {m["verdict"]["status"] for m in second.result["mailboxes"]} == {"pending"}
    assert tenant.exchange.authorize_smtp(claims(tenant, roles), box("noreply")) is None
    assert tenant.exchange.authorize_smtp(claims(tenant, roles), box("alerts")) is None
    assert tenant.exchange.authorize_smtp(claims(tenant, roles), box("reports"))[1] == "5.7.3"

    for check_mode in (True, False):
        again = access(tenant, check_mode=check_mode, **declared)
        assert not again.result["changed"] and again.writes == [] and again.result["actions"] == []
        assert "diff" not in again.result
        assert [m["verdict"]["status"] for m in again.result["mailboxes"]] == ["allowed", "allowed"]


def test_classic_without_entra_consent_is_denied_with_the_reason(tenant):
    module = access(tenant, authorization_model="classic", mailboxes=[{"address": box("printer")}])
    verdict = module.result["mailboxes"][0]["verdict"]
    assert verdict["status"] == "denied" and "SMTP.SendAsApp" in " ".join(verdict["reasons"])
    assert module.result["mailboxes"][0]["full_access"] is True


def test_diff_shows_declared_state(tenant):
    module = access(tenant, mailboxes=[{"address": box("reports"), "send_as": True}])
    diff = module.result["diff"]
    assert diff["before"]["service_principal"] is None
    assert diff["after"]["service_principal"]["object_id"] == tenant.sp["id"]
    assert diff["after"]["mailboxes"][box("reports")]["send_as"] is True
    assert "PrimarySmtpAddress -eq '%s'" % box("reports") == diff["after"]["scope"]["filter"]


def test_application_object_id_is_refused_with_the_right_id(tenant):
    app_object_id = [a["id"] for a in tenant.applications.values() if a["appId"] == tenant.app_id][0]
    with pytest.raises(ConfigError) as exc:
        access(tenant, object_id=app_object_id, mailboxes=[{"address": box("noreply")}])
    assert exc.value.option == "object_id" and tenant.sp["id"] in str(exc.value)
    assert tenant.log.writes() == []


def test_app_without_service_principal_is_refused_after_a_bounded_wait(tenant):
    with pytest.raises(ConfigError) as exc:
        access(tenant, app_id=str(uuid.uuid4()), wait_timeout=1, mailboxes=[{"address": box("noreply")}])
    assert exc.value.option == "app_id" and "no service principal" in str(exc.value)
    assert tenant.log.writes() == []


def test_registration_with_application_object_id_is_repaired(tenant):
    app_object_id = [a["id"] for a in tenant.applications.values() if a["appId"] == tenant.app_id][0]
    tenant.exchange.register_sp(tenant.app_id, app_object_id, "relay")  # the classic mistake, made by hand
    tenant.exchange.add_role_assignment("by hand", "Application SMTP.SendAsApp", tenant.exchange.find_sp(app_object_id))
    assert tenant.exchange.authorize_smtp(claims(tenant), box("noreply"))[1] == "5.7.3"
    module = access(tenant, mailboxes=[{"address": box("noreply")}])
    assert module.result["actions"][0].startswith("Remove-ServicePrincipal -Identity '%s'" % app_object_id)
    assert tenant.exchange.authorize_smtp(claims(tenant), box("noreply")) is None


def test_tenant_disabled_mailbox_inherit_is_denied_and_enabled_fixes_it(tenant):
    tenant.exchange.transport_config["SmtpClientAuthenticationDisabled"] = True
    module = access(tenant, mailboxes=[{"address": box("noreply"), "smtp_auth": "inherit"}])
    verdict = module.result["mailboxes"][0]["verdict"]
    assert verdict["status"] == "denied" and "disabled for the tenant" in " ".join(verdict["reasons"])
    assert tenant.exchange.authorize_smtp(claims(tenant), box("noreply"))[1] == "5.7.139"
    module = access(tenant, mailboxes=[{"address": box("noreply"), "smtp_auth": "enabled"}])
    assert [w["cmdlet"] for w in module.writes] == ["Set-CASMailbox"]
    assert module.result["mailboxes"][0]["smtp_auth"] == {"mailbox": "enabled", "tenant": "disabled",
                                                          "effective": "enabled"}
    assert tenant.exchange.authorize_smtp(claims(tenant), box("noreply")) is None


def test_enabled_on_an_enabled_tenant_leaves_inherit_alone(tenant):
    access(tenant, mailboxes=[{"address": box("noreply")}])
    assert tenant.exchange.find_mailbox(box("noreply"))["SmtpClientAuthenticationDisabled"] is None


def test_unknown_mailbox_fails_before_any_write(tenant):
    with pytest.raises(ConfigError) as exc:
        access(tenant, mailboxes=[{"address": box("noreply")}, {"address": box("ghost")}])
    assert exc.value.option == "mailboxes[1].address" and "ghost" in str(exc.value)
    assert tenant.log.writes() == []


def test_bad_input_names_the_option(tenant):
    for params, option in ((dict(mailboxes=[{"address": "not-an-address"}]), "mailboxes[0].address"),
                           (dict(mailboxes=[{"address": box("a")}, {"address": box("A")}]), "mailboxes[1].address"),
                           (dict(mailboxes=[]), "mailboxes"),
                           (dict(app_id="nope", mailboxes=[{"address": box("a")}]), "app_id"),
                           (dict(authorization_model="classic", group="g", mailboxes=[]), "group"),
                           (dict(organization="contoso", mailboxes=[{"address": box("a")}]), "organization")):
        with pytest.raises(ConfigError) as exc:
            access(tenant, **params)
        assert exc.value.option == option


def test_scope_follows_the_declared_mailboxes_and_purge_removes_extras(tenant):
    access(tenant, mailboxes=[{"address": box("noreply")}, {"address": box("alerts"), "send_as": True}])
    module = access(tenant, purge=True, mailboxes=[{"address": box("noreply")}])
    assert sorted(w["cmdlet"] for w in module.writes) == ["Remove-RecipientPermission", "Set-ManagementScope"]
    assert tenant.exchange.authorize_smtp(claims(tenant), box("alerts"))[1] == "5.7.3"
    assert access(tenant, purge=True, mailboxes=[{"address": box("noreply")}]).writes == []


def test_switch_to_classic_with_purge_removes_the_rbac_assignment_and_its_scope(tenant):
    declared = dict(mailboxes=[{"address": box("noreply")}])
    access(tenant, **declared)
    consent(tenant)
    module = access(tenant, authorization_model="classic", purge=True, **declared)
    assert sorted(w["cmdlet"] for w in module.writes) == [
        "Add-MailboxPermission", "Remove-ManagementRoleAssignment", "Remove-ManagementScope"]
    assert module.result["diff"]["after"]["scope"] is None
    assert access(tenant, authorization_model="classic", purge=True, **declared).writes == []
    # Without purge the classic switch leaves the RBAC objects alone (they still grant what they granted).
    access(tenant, **declared)
    kept = access(tenant, authorization_model="classic", **declared)
    assert "Remove-ManagementScope" not in [w["cmdlet"] for w in kept.writes]


def test_an_alias_address_is_scoped_by_its_primary_address(tenant):
    module = access(tenant, mailboxes=[{"address": "No-Reply@" + DOMAIN}])
    assert module.result["diff"]["after"]["scope"]["filter"] == "PrimarySmtpAddress -eq '%s'" % box("noreply")
    assert tenant.exchange.authorize_smtp(claims(tenant), box("noreply")) is None
    assert access(tenant, mailboxes=[{"address": "no-reply@" + DOMAIN}]).writes == []


def test_group_scope(tenant):
    module = access(tenant, group="smtp-senders", mailboxes=[{"address": box("alerts")}])
    assert "MemberOfGroup -eq 'CN=smtp-senders" in module.result["diff"]["after"]["scope"]["filter"]
    assert tenant.exchange.authorize_smtp(claims(tenant), box("reports")) is None  # a member, not declared
    assert tenant.exchange.authorize_smtp(claims(tenant), box("noreply"))[1] == "5.7.3"


def test_state_absent_removes_everything_and_is_idempotent(tenant):
    declared = dict(mailboxes=[{"address": box("noreply"), "send_as": True}])
    access(tenant, **declared)
    check = access(tenant, check_mode=True, state="absent", **declared)
    assert check.result["changed"] and check.writes == []
    gone = access(tenant, state="absent", **declared)
    assert gone.result["changed"] and tenant.exchange.service_principals == {} and tenant.exchange.scopes == {}
    assert tenant.exchange.authorize_smtp(claims(tenant), box("noreply"))[1] == "5.7.3"
    assert not access(tenant, state="absent", **declared).result["changed"]


def test_propagation_delay_pending_then_wait_for_effect(tenant):
    tenant.exchange.propagation_delay = 1.5
    module = access(tenant, mailboxes=[{"address": box("noreply")}])
    assert module.result["mailboxes"][0]["verdict"]["status"] == "pending"
    assert tenant.exchange.authorize_smtp(claims(tenant), box("noreply"))[1] == "5.7.3"
    waited = access(tenant, wait_for_effect=True, wait_timeout=10, mailboxes=[{"address": box("alerts")}])
    # The admin API shows it, the verdict of a changed mailbox stays pending (SMTP's cache may lag behind).
    [alerts] = waited.result["mailboxes"]
    assert alerts["admin_api_in_effect"] is True and alerts["verdict"]["status"] == "pending"
    assert tenant.exchange.authorize_smtp(claims(tenant), box("alerts")) is None
    again = access(tenant, mailboxes=[{"address": box("alerts")}])
    assert again.result["mailboxes"][0]["verdict"]["status"] == "allowed"
    assert again.result["mailboxes"][0]["admin_api_in_effect"] is None


def test_lost_answers_of_writes_do_not_fail_the_run(tenant):
    lost = {"New-ServicePrincipal", "New-ManagementScope", "New-ManagementRoleAssignment"}
    module = access(tenant, lose_answer_of=lost, mailboxes=[{"address": box("noreply")}])
    assert module.result["changed"] and tenant.exchange.authorize_smtp(claims(tenant), box("noreply")) is None
    gone = access(tenant, state="absent", lose_answer_of={"Remove-ManagementRoleAssignment", "Remove-ServicePrincipal"},
                  mailboxes=[{"address": box("noreply")}])
    assert gone.result["changed"] and tenant.exchange.service_principals == {}


def test_role_assignment_name_of_another_app_is_a_clear_failure(tenant):
    other_id, other_sp = tenant.add_app("other")
    other = tenant.exchange.register_sp(other_id, other_sp["id"], "other")
    tenant.exchange.add_role_assignment("shared-name", "Application SMTP.SendAsApp", other)
    with pytest.raises(ExchangeCmdletError) as exc:
        access(tenant, scope_name="shared-name", mailboxes=[{"address": box("noreply")}])
    assert exc.value.duplicate and "shared-name" in str(exc.value) and exc.value.fix


def test_client_pages_and_translates_errors(tenant):
    tenant.exchange.page_size = 2
    module = Module(tenant, tenant.admin_token)
    client = ExchangeAdminClient(module.http, module.cloud, tenant.tenant_id)
    rows = client.invoke("Get-Mailbox")
    assert len(rows) == len(tenant.exchange.mailboxes) > 2 and client.calls == (len(rows) + 1) // 2
    headers = module.http.requests[0][3]
    # As ExchangeOnlineManagement anchors app-only calls: APP: with the tenant id, UPN: only with a domain.
    assert headers["X-ResponseFormat"] == "json" and headers["X-AnchorMailbox"] == (
        "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@" + tenant.tenant_id)
    assert headers["Prefer"] == "odata.maxpagesize=1000"
    ExchangeAdminClient(module.http, module.cloud, tenant.tenant_id, anchor_domain=DOMAIN).invoke("Get-TransportConfig")
    assert module.http.requests[-1][3]["X-AnchorMailbox"] == headers["X-AnchorMailbox"]
    ExchangeAdminClient(module.http, module.cloud, DOMAIN).invoke("Get-TransportConfig")
    assert module.http.requests[-1][3]["X-AnchorMailbox"] == (
        "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@" + DOMAIN)
    with pytest.raises(ExchangeCmdletError) as exc:
        client.invoke("Get-Mailbox", {"Identity": "ghost@" + DOMAIN})
    assert exc.value.not_found and "ghost@" in str(exc.value) and exc.value.fix
    assert client.get_or_none("Get-Mailbox", {"Identity": "ghost@" + DOMAIN}) is None
    client.invoke("New-ServicePrincipal", {"AppId": tenant.app_id, "ObjectId": tenant.sp["id"]})
    with pytest.raises(ExchangeCmdletError) as exc:
        client.invoke("New-ServicePrincipal", {"AppId": tenant.app_id, "ObjectId": tenant.sp["id"]})
    assert exc.value.duplicate


def test_admin_without_exchange_role_is_told_what_to_do(tenant):
    tenant.exchange.admin_apps.clear()
    with pytest.raises(ExchangeCmdletError) as exc:
        access(tenant, mailboxes=[{"address": box("noreply")}])
    assert exc.value.status == 403 and "Exchange Administrator" in exc.value.fix


def test_info_reports_pairs_with_reasons(tenant):
    access(tenant, mailboxes=[{"address": box("noreply")}, {"address": box("alerts"), "smtp_auth": "disabled"}])
    module = Module(tenant, tenant.admin_token, app_id=None, mailbox=None)
    before = len(tenant.log)
    module.result = run_exchange_smtp_access_info(module)
    report = module.result
    assert not report["changed"] and tenant.log.writes() and len(tenant.log) > before and all(
        not e["write"] for e in tenant.log[before:])
    pairs = {p["mailbox"]: p for p in report["pairs"]}
    assert set(pairs) == {box("noreply"), box("alerts")}
    assert pairs[box("noreply")]["verdict"]["allowed"] and pairs[box("noreply")]["via"] == "rbac"
    assert not pairs[box("alerts")]["verdict"]["allowed"]
    assert "disabled for the mailbox" in " ".join(pairs[box("alerts")]["verdict"]["reasons"])
    assert report["service_principals"][0]["object_id_ok"] is True

    one = Module(tenant, tenant.admin_token, app_id=tenant.app_id, mailbox=box("reports"))
    one.result = run_exchange_smtp_access_info(one)
    assert one.result["pairs"][0]["verdict"]["status"] == "denied"


def test_rerun_cost_is_batched_and_a_sendas_row_in_another_spelling_is_resolved(tenant, monkeypatch):
    """Re-run: SMTP AUTH of every declared mailbox in batched Get-CASMailbox -Filter reads, SendAs in one -Trustee
    read, one Test-ServicePrincipalAuthorization per mailbox (RBAC), no FullAccess read. A SendAs row that names
    its recipient in a form the CAS rows do not show (here the DN) is resolved, so the re-run neither grants again
    nor misses that it is held."""
    declared = dict(mailboxes=[{"address": box("noreply"), "send_as": True}, {"address": box("alerts")},
                               {"address": box("reports"), "send_as": True}])
    assert access(tenant, **declared).result["changed"]
    sp = tenant.exchange.find_sp(tenant.app_id)
    tenant.exchange.add_recipient_permission(tenant.exchange.find_mailbox(box("sales")), sp)  # undeclared
    mark = len(tenant.log)
    again = access(tenant, **declared)
    cmdlets = [e["cmdlet"] for e in tenant.log[mark:]]
    assert not again.result["changed"] and again.writes == []
    assert cmdlets.count("Get-CASMailbox") == 1 and cmdlets.count("Get-RecipientPermission") == 1
    assert cmdlets.count("Test-ServicePrincipalAuthorization") == 3 and "Get-MailboxPermission" not in cmdlets
    assert cmdlets.count("Get-Recipient") == 1  # the undeclared recipient, resolved once
    assert [m["full_access"] for m in again.result["mailboxes"]] == [None, None, None]

    printed = exchange_api._permission_rows

    def as_dn(ex, rows, who_key):  # Get-RecipientPermission printing the recipient as its distinguished name
        out = printed(ex, rows, who_key)
        for row in out:
            found = ex.find_recipient(row["Identity"])
            row["Identity"] = found["DistinguishedName"] if found else row["Identity"]
        return out
    monkeypatch.setattr(exchange_api, "_permission_rows", as_dn)
    mark = len(tenant.log)
    dn = access(tenant, **declared)
    assert not dn.result["changed"] and dn.writes == []
    assert [m["send_as"] for m in dn.result["mailboxes"]] == [True, False, True]
    assert [e["cmdlet"] for e in tenant.log[mark:]].count("Get-Recipient") == 3  # every grant's DN resolved
