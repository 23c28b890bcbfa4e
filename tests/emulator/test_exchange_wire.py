"""The emulated admin API's wire habits (exchange_wire): routing hints refused as Exchange's routing would, error
shapes, refusals under a false gzip claim, injected transient errors. Raw HTTPS requests with msal tokens; bodies are
read undecoded (urllib3, decode_content=False) so the false claim itself is visible."""

import json

import pytest
import urllib3

from emulator import exchange_wire

SYSTEM_MAILBOX = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"
DOMAIN = "contoso.onmicrosoft.com"


@pytest.fixture
def admin(emulator, tenant):
    from emulator.clients import msal_app
    result = msal_app(emulator, emulator.admin.client_id, emulator.admin.client_secret).acquire_token_for_client(
        ["https://outlook.office365.com/.default"])
    return result["access_token"]


def raw_invoke(emulator, token, cmdlet, parameters=None, **headers):
    """(status, headers, undecoded body bytes)."""
    pool = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=emulator.ca_path)
    headers = dict({"Authorization": "Bearer " + token, "Content-Type": "application/json",
                    "Accept-Encoding": "gzip"}, **headers)
    body = json.dumps({"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters or {}}}).encode()
    answer = pool.request("POST", "%s/adminapi/beta/%s/InvokeCommand" % (emulator.url, emulator.tenant.tenant_id),
                          body=body, headers=headers, decode_content=False, preload_content=True)
    return answer.status, answer.headers, answer.data


@pytest.mark.parametrize("anchor, routed", [
    ("APP:%s@{tenant}" % SYSTEM_MAILBOX, True),                   # Microsoft's module, app-only
    ("UPN:%s@%s" % (SYSTEM_MAILBOX, DOMAIN), True),               # the UPN form with a domain
    ("UPN:noreply@%s" % DOMAIN, True),                            # a mailbox of the tenant
    (None, True),                                                 # ScubaGear sends none on InvokeCommand
    ("UPN:%s@{tenant}" % SYSTEM_MAILBOX, False),                  # the UPN form with a GUID: no witness uses it
    ("APP:%s@00000000-0000-0000-0000-000000000001" % SYSTEM_MAILBOX, False),  # another tenant
    ("UPN:%s@fabrikam.onmicrosoft.com" % SYSTEM_MAILBOX, False),  # another organization's domain
    ("UPN:ghost@%s" % DOMAIN, False),                             # no such mailbox
])
def test_routing_hint_is_refused_where_exchange_routing_would_refuse_it(emulator, tenant, admin, anchor, routed):
    headers = {"X-AnchorMailbox": anchor.replace("@{tenant}", "@" + tenant.tenant_id)} if anchor else {}
    mark = tenant.log.mark()
    status, unused, body = raw_invoke(emulator, admin, "Get-TransportConfig", **headers)
    if routed:
        assert status == 200, body
    else:
        assert status == 400 and "X-AnchorMailbox" in json.loads(body)["error"]["message"]
        assert [e.get("parameter_set") for e in tenant.log.since(mark) if e["part"] == "exchange"] == [None], "not run"
    tenant.exchange.anchor_check = False
    assert raw_invoke(emulator, admin, "Get-TransportConfig", **headers)[0] == 200


@pytest.mark.parametrize("kind", ["empty", "plain"])
def test_refusal_can_claim_gzip_for_a_body_that_is_not(emulator, tenant, admin, kind):
    tenant.exchange.forbidden_body = kind
    tenant.exchange.refused_cmdlets = {"New-ManagementScope"}
    status, headers, body = raw_invoke(emulator, admin, "New-ManagementScope",
                                       {"Name": "s", "RecipientRestrictionFilter": "Alias -eq 'x'"})
    assert status == 403 and headers["Content-Encoding"] == "gzip"
    assert body == b"" if kind == "empty" else json.loads(body)["error"]["code"] == "Forbidden"
    assert tenant.exchange.scopes == {}, "refused: nothing done"
    assert raw_invoke(emulator, admin, "Get-TransportConfig")[0] == 200, "only the refused cmdlet is refused"


def test_refusal_body_is_readable_json_by_default(emulator, tenant, admin):
    tenant.exchange.admin_apps.clear()
    status, headers, body = raw_invoke(emulator, admin, "Get-Mailbox")
    assert status == 403 and "Content-Encoding" not in headers
    assert "isn't supported in this scenario" in json.loads(body)["error"]["details"][0]["message"]


def ghost(emulator, admin):
    status, unused, body = raw_invoke(emulator, admin, "Get-Mailbox", {"Identity": "ghost@" + DOMAIN})
    return status, json.loads(body)


def test_error_shapes(emulator, tenant, admin):
    not_found = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
    status, body = ghost(emulator, admin)
    assert status == 404 and body["error"]["details"][0]["message"].split("|")[1] == not_found

    tenant.exchange.error_shape = "internal_exception"
    status, body = ghost(emulator, admin)
    assert status == 404 and "details" not in body["error"]
    assert body["error"]["innererror"]["internalException"]["type"] == not_found

    tenant.exchange.error_shape = "details_string"
    status, body = ghost(emulator, admin)
    assert status == 404 and json.loads(body["error"]["details"])[0]["message"].split("|")[1] == not_found

    tenant.exchange.error_shape = "adminapi_errors_200"
    status, body = ghost(emulator, admin)
    assert status == 200 and body["value"] == [] and body["@adminapi.errors"][0].split("|")[1] == not_found

    tenant.exchange.error_shape = "error_object_200"
    status, body = ghost(emulator, admin)
    assert status == 200 and body["error"]["details"][0]["message"].split("|")[1] == not_found

    tenant.exchange.admin_apps.clear()  # the front door's refusals keep their status, whatever the shape
    assert raw_invoke(emulator, admin, "Get-Mailbox")[0] == 403


@pytest.mark.parametrize("name", sorted(exchange_wire.TRANSIENT))
def test_injected_transient_errors_do_nothing_and_name_themselves(emulator, tenant, admin, name):
    fault = exchange_wire.inject(tenant, name, match="Set-CASMailbox", retry_after=3)
    box = tenant.exchange.find_mailbox("alerts@" + DOMAIN)
    status, headers, body = raw_invoke(emulator, admin, "Set-CASMailbox", {
        "Identity": "alerts@" + DOMAIN, "SmtpClientAuthenticationDisabled": True})
    assert status == 400 and headers["Retry-After"] == "3" and fault.hits == 1
    assert box["SmtpClientAuthenticationDisabled"] is None, "an injected error does not do the work"
    words = exchange_wire.TRANSIENT[name][3]
    assert (body.decode() if name == "tenant_concurrency" else json.loads(body)["error"]["details"][0]["message"]
            ).endswith(words)
    exchange_wire.inject(tenant, "server_busy", match="Get-Mailbox", in_200=True)
    status, unused, body = raw_invoke(emulator, admin, "Get-Mailbox")
    assert status == 200 and "ServerBusyException" in json.loads(body)["@adminapi.errors"][0]


def test_prefer_max_page_size_is_logged_and_honoured(emulator, tenant, admin):
    mark = tenant.log.mark()
    status, unused, body = raw_invoke(emulator, admin, "Get-Mailbox", Prefer="odata.maxpagesize=2")
    assert status == 200 and len(json.loads(body)["value"]) == 2
    raw_invoke(emulator, admin, "Get-Mailbox")
    assert [e.get("max_page_size") for e in tenant.log.since(mark) if e["part"] == "exchange"] == [2, None]
