"""ExchangeAdminClient over the shared HttpClient against the emulated admin API's wire habits (emulator.exchange_wire):
the routing hint, the page size asked for, refusals whose body lies about gzip, errors in every shape (inside HTTP 200
too), transient errors named in the body, and a Retry-After longer than the retry budget.

Everything is real (HTTPS, msal tokens, the emulator's cmdlets) except time: Backoff's sleep and clock are injected,
so the retries' waits are counted, not waited.
"""

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.options import token_provider_from_options
from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import resolve_cloud
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.client import (
    ExchangeAdminClient, ExchangeCmdletError)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.errors import parse_error
from ansible_collections.o365.smtp_oauth.plugins.module_utils._http import HttpClient
from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import Backoff
from emulator import exchange_wire
from helpers.clock import FakeTime

DOMAIN = "contoso.onmicrosoft.com"
NOT_FOUND = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"


@pytest.fixture
def fake_time():
    return FakeTime()


def admin_client(emulator, fake_time, tenant_id=None, organization=None, total=60):
    tenant_id = tenant_id or emulator.tenant.tenant_id
    provider = token_provider_from_options({
        "tenant_id": emulator.tenant.tenant_id, "client_id": emulator.admin.client_id,
        "client_secret": emulator.admin.client_secret, "authority_host": emulator.url, "ca_path": emulator.ca_path})

    def backoff():
        return Backoff(base=0.5, total=total, max_attempts=6, sleep=fake_time.sleep, clock=fake_time.clock)
    http = HttpClient(provider, ca_path=emulator.ca_path, backoff=backoff)
    cloud = resolve_cloud("public", exchange_endpoint=emulator.url)
    return ExchangeAdminClient(http, cloud, tenant_id, anchor_domain=organization)


def exchange_calls(tenant, mark, cmdlet=None):
    return [e for e in tenant.log.since(mark) if e["part"] == "exchange" and cmdlet in (None, e.get("cmdlet"))]


# -- 1. the routing hint, and the page size ------------------------------------------------------------------------
@pytest.mark.parametrize("tenant_in", ["id", "id with organization", "domain"])
def test_calls_are_routed_by_the_hint_microsofts_module_sends(emulator, tenant, fake_time, tenant_in):
    # Before: UPN:SystemMailbox{...}@<tenant GUID>, which Exchange's routing (and now the emulator) refuses.
    tenant_id = DOMAIN if tenant_in == "domain" else tenant.tenant_id
    client = admin_client(emulator, fake_time, tenant_id, DOMAIN if "organization" in tenant_in else None)
    mark = tenant.log.mark()
    assert client.invoke("Get-TransportConfig")[0]["SmtpClientAuthenticationDisabled"] is False
    assert client.anchor.startswith("UPN:" if tenant_in == "domain" else "APP:")
    assert [e["status"] for e in exchange_calls(tenant, mark)] == [200]


def test_a_refused_hint_says_what_to_set(emulator, tenant, fake_time):
    client = admin_client(emulator, fake_time)
    client.anchor = "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@" + tenant.tenant_id  # the old hint
    with pytest.raises(ExchangeCmdletError) as refused:
        client.invoke("Get-TransportConfig")
    assert refused.value.status == 400 and "X-AnchorMailbox" in str(refused.value)
    assert "tenant_id" in refused.value.fix and fake_time.sleeps == []


def test_pages_of_1000_are_asked_for(emulator, tenant, fake_time):
    mark = tenant.log.mark()
    admin_client(emulator, fake_time).invoke("Get-Mailbox")
    sizes = [e.get("max_page_size") for e in exchange_calls(tenant, mark)]
    assert sizes and set(sizes) == {1000}


# -- 2. a refusal whose body claims gzip ------------------------------------------------------------------------
@pytest.mark.parametrize("body", ["empty", "plain"])
@pytest.mark.parametrize("refused", ["no admin role", "cmdlet outside the role"])
def test_403_under_a_false_gzip_claim_gives_the_role_advice_at_once(emulator, tenant, fake_time, body, refused):
    # Before: requests raised ContentDecodingError, read as a lost connection: ~15 s of retries, then "check DNS".
    tenant.exchange.forbidden_body = body
    if refused == "no admin role":
        tenant.exchange.admin_apps.clear()
    else:
        tenant.exchange.refused_cmdlets = {"Get-Mailbox"}
    client = admin_client(emulator, fake_time)
    mark = tenant.log.mark()
    with pytest.raises(ExchangeCmdletError) as failed:
        client.invoke("Get-Mailbox")
    error = failed.value
    assert error.status == 403 and "Exchange Administrator" in error.fix and "Get-Mailbox" in error.fix
    assert "DNS" not in str(error) and fake_time.sleeps == [] and len(exchange_calls(tenant, mark)) == 1
    if body == "plain":
        assert "HTTP 403: " in error.message, "the plain body's text is read"


# -- 3. and 4. errors in every shape -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", exchange_wire.ERROR_SHAPES)
def test_not_found_and_duplicate_are_recognised_in_every_error_shape(emulator, tenant, fake_time, shape):
    # Before: internal_exception and details_string lost the exception type; the 200 shapes were read as success.
    tenant.exchange.error_shape = shape
    client = admin_client(emulator, fake_time)
    assert client.get_or_none("Get-Mailbox", {"Identity": "ghost@" + DOMAIN}) is None
    with pytest.raises(ExchangeCmdletError) as missing:
        client.invoke("Get-Mailbox", {"Identity": "ghost@" + DOMAIN})
    assert missing.value.not_found and missing.value.exception_type == NOT_FOUND and "ghost@" in str(missing.value)
    made = emulator.create_app("relay")
    new = {"AppId": made["client_id"], "ObjectId": made["sp"]["id"], "DisplayName": "relay"}
    client.invoke("New-ServicePrincipal", new)
    with pytest.raises(ExchangeCmdletError) as twice:
        client.invoke("New-ServicePrincipal", new)
    assert twice.value.duplicate and twice.value.fix


@pytest.mark.parametrize("shape", ["adminapi_errors_200", "error_object_200"])
def test_a_write_that_failed_inside_http_200_is_not_counted_as_done(emulator, tenant, fake_time, shape):
    tenant.exchange.error_shape = shape
    with pytest.raises(ExchangeCmdletError) as failed:
        admin_client(emulator, fake_time).invoke("Add-MailboxPermission", {
            "Identity": "ghost@" + DOMAIN, "User": "00000000-0000-0000-0000-000000000002",
            "AccessRights": ["FullAccess"]})
    assert failed.value.status == 200 and "nothing is counted as done" in str(failed.value)


@pytest.mark.parametrize("body, expected", [
    ({"error": {"code": "NotFound", "message": "Error executing cmdlet",
                "innererror": {"type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                               "internalException": {"Message": "gone", "ClassName": NOT_FOUND}}}},
     ("NotFound", NOT_FOUND, "gone")),
    ({"error": {"code": "X", "innererror": {"internalException": {"message": "Ex1|%s|deep" % NOT_FOUND}}}},
     ("X", NOT_FOUND, "deep")),
    ({"error": {"code": "X", "message": "m", "innererror": {"type": NOT_FOUND, "message": "older"}}},
     ("X", NOT_FOUND, "older")),
    ({"error": {"code": "X", "details": '{"message": "Ex1|T.AlreadyExistsException|dup"}'}},
     ("X", "T.AlreadyExistsException", "dup")),
    ({"value": [], "@adminapi.errors": [{"Message": "Ex1|T.ServerBusyException|busy"}]},
     (None, "T.ServerBusyException", "busy")),
    (b"You have reached the maximum number of concurrent requests per tenant.", (
        None, None, "You have reached the maximum number of concurrent requests per tenant.")),
    (b"", (None, None, None)),
    ({"value": [{"Name": "error"}]}, (None, None, None)),
])
def test_parse_error_reads_every_known_shape(body, expected):
    assert parse_error(body) == expected


@pytest.mark.parametrize("name, in_200", [("server_busy", False), ("maintenance", False),
                                          ("tenant_concurrency", False), ("server_busy", True)])
def test_transient_errors_named_in_the_body_are_retried(emulator, tenant, fake_time, name, in_200):
    # Before: a 400 (or 200) naming a transient error failed at once (or counted as done).
    client = admin_client(emulator, fake_time)
    client.invoke("Get-TransportConfig")  # the token first: only Exchange's answers count below
    fault = exchange_wire.inject(tenant, name, match="Set-CASMailbox", times=2, in_200=in_200)
    client.invoke("Set-CASMailbox", {"Identity": "alerts@" + DOMAIN, "SmtpClientAuthenticationDisabled": True})
    assert fault.hits == 2 and len(fake_time.sleeps) == 2
    assert tenant.exchange.find_mailbox("alerts@" + DOMAIN)["SmtpClientAuthenticationDisabled"] is True


def test_a_transient_error_that_lasts_says_to_run_again_later(emulator, tenant, fake_time):
    exchange_wire.inject(tenant, "maintenance", match="Get-Mailbox", times=None, retry_after=5)
    with pytest.raises(ExchangeCmdletError) as failed:
        admin_client(emulator, fake_time).invoke("Get-Mailbox")
    assert "ServerInMMException" in failed.value.exception_type and "later" in failed.value.fix
    assert fake_time.sleeps == [5.0] * 5


@pytest.mark.parametrize("kind", ["429", "transient"])
def test_a_retry_after_past_the_budget_is_not_waited_and_is_said(emulator, tenant, fake_time, kind):
    # Before: no wait, and a message saying Exchange "kept throttling ... after the waits it asked for".
    client = admin_client(emulator, fake_time, total=60)
    client.invoke("Get-TransportConfig")
    if kind == "429":
        tenant.faults.add("exchange", match="Get-Mailbox", kind="status", status=429, retry_after=90)
    else:
        exchange_wire.inject(tenant, "server_busy", match="Get-Mailbox", retry_after=90)
    mark = tenant.log.mark()
    with pytest.raises(ExchangeCmdletError) as failed:
        client.invoke("Get-Mailbox")
    message = str(failed.value)
    assert fake_time.sleeps == [] and len(exchange_calls(tenant, mark)) == 1
    assert "asked to wait 90 s" in message and "not repeated" in message and "waits it asked for" not in message
    assert "once that time has passed" in failed.value.fix
