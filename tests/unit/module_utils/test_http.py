"""HttpClient against the emulator's real HTTPS server: retries (429 + Retry-After, 503, 408, 500, dropped and
refused connections, the total-wait bound), POST safety, per-request CA, error translation and redaction.

Only time is faked (sleep and clock injected into Backoff) so retries do not wait; every request is real.
"""

import socket
import time

import pytest
import requests

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.options import token_provider_from_options
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ServiceError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.graph import GRAPH_ERRORS
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.errors import ExchangeCmdletError, ExchangeErrors
from ansible_collections.o365.smtp_oauth.plugins.module_utils._http import HttpClient, ServiceErrors
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.credential import AccessToken
from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import Backoff

from helpers.clock import FakeTime

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"


@pytest.fixture
def fake_time():
    return FakeTime()


def options(emulator, **extra):
    opts = {"tenant_id": emulator.tenant.tenant_id, "client_id": emulator.admin.client_id,
            "client_secret": emulator.admin.client_secret, "authority_host": emulator.url,
            "graph_endpoint": emulator.url, "exchange_endpoint": emulator.url, "ca_path": emulator.ca_path}
    opts.update(extra)
    return opts


def make_client(emulator, fake_time, provider=None, total=60, max_attempts=6, **kw):
    provider = provider or token_provider_from_options(options(emulator))

    def backoff():
        return Backoff(base=0.5, total=total, max_attempts=max_attempts, sleep=fake_time.sleep, clock=fake_time.clock)

    kw.setdefault("ca_path", emulator.ca_path)
    return HttpClient(provider, backoff=backoff, **kw)


@pytest.fixture
def client(emulator, tenant, fake_time):
    return make_client(emulator, fake_time)


def graph_requests(tenant, mark, method=None):
    return [e for e in tenant.log.since(mark) if e.get("part") == "graph" and (method is None or e["method"] == method)]


def new_app(name):
    return {"displayName": name}


def apps_named(tenant, name):
    return [a for a in tenant.applications.values() if a.get("displayName") == name]


# -- retries ------------------------------------------------------------------------------------------------------
def test_429_waits_for_retry_after_then_succeeds(emulator, tenant, client, fake_time):
    client.request("GET", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE)  # token acquired beforehand
    tenant.faults.add("graph", match="GET /v1.0/applications", kind="status", status=429, retry_after=7)
    mark = tenant.log.mark()
    response = client.request("GET", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE)
    assert response.status == 200 and "value" in response.json()
    assert fake_time.sleeps == [7.0]
    assert [e["status"] for e in graph_requests(tenant, mark)] == [429, 200]


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_idempotent_request_is_retried_on_transient_status(emulator, tenant, client, fake_time, status):
    tenant.faults.add("graph", match="GET /v1.0/applications", kind="status", status=status, times=2)
    mark = tenant.log.mark()
    assert client.request("GET", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE).status == 200
    assert [e["status"] for e in graph_requests(tenant, mark)] == [status, status, 200]
    assert len(fake_time.sleeps) == 2 and all(0.25 <= s <= 1.0 for s in fake_time.sleeps), "jittered backoff"


def test_dropped_connection_on_get_is_retried(emulator, tenant, client):
    tenant.faults.add("graph", match="GET /v1.0/applications", kind="drop")
    assert client.request("GET", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE).status == 200
    assert client.retries == 1


def test_total_wait_bound_gives_up_with_the_service_error(emulator, tenant, fake_time):
    client = make_client(emulator, fake_time, total=20)
    tenant.faults.add("graph", match="GET /v1.0/applications", kind="status", status=429, retry_after=15, times=None)
    with pytest.raises(ServiceError) as caught:
        client.request("GET", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE)
    error = caught.value
    assert fake_time.sleeps == [15.0], "a second wait of 15 s would pass the 20 s budget"
    assert error.status == 429 and error.code == "TooManyRequests"
    assert error.request_id and error.request_id in str(error)
    assert "later" in error.fix


# -- POST safety ------------------------------------------------------------------------------------------------
def test_post_is_retried_when_throttled_because_nothing_was_done(emulator, tenant, client):
    tenant.faults.add("graph", match="POST /v1.0/applications", kind="status", status=429, retry_after=1)
    client.request("POST", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE, json=new_app("throttled"))
    assert len(apps_named(tenant, "throttled")) == 1


@pytest.mark.parametrize("kind", ["drop", "drop_after_commit"])
def test_post_is_not_retried_after_a_lost_answer(emulator, tenant, client, kind):
    tenant.faults.add("graph", match="POST /v1.0/applications", kind=kind)
    mark = tenant.log.mark()
    with pytest.raises(ServiceError) as caught:
        client.request("POST", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE, json=new_app("lost-" + kind))
    assert caught.value.code == "connection_failed"
    assert len(graph_requests(tenant, mark, "POST")) == 1, "a repeat could create a second object"
    assert len(apps_named(tenant, "lost-" + kind)) == (1 if kind == "drop_after_commit" else 0)


@pytest.mark.parametrize("status", [408, 500, 502, 504])
def test_post_is_not_retried_on_answers_that_may_hide_work(emulator, tenant, client, status):
    tenant.faults.add("graph", match="POST /v1.0/applications", kind="status", status=status)
    mark = tenant.log.mark()
    with pytest.raises(ServiceError) as caught:
        client.request("POST", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE, json=new_app("x"))
    assert caught.value.status == status
    assert len(graph_requests(tenant, mark, "POST")) == 1


def test_post_declared_idempotent_is_retried(emulator, tenant, client):
    tenant.faults.add("exchange", match="Get-Mailbox", kind="drop")
    url = "%s/adminapi/beta/%s/InvokeCommand" % (emulator.url, tenant.tenant_id)
    body = {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {}}}
    response = client.request("POST", url, scope=EXCHANGE_SCOPE, json=body, idempotent=True)
    assert response.status == 200 and isinstance(response.json()["value"], list)
    assert client.retries == 1


def test_refused_connection_is_retried_even_for_post(emulator, fake_time):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(emulator, fake_time, provider=None, max_attempts=3)
    with pytest.raises(ServiceError) as caught:
        client.request("POST", "https://127.0.0.1:%d/v1.0/applications" % port, json={})
    assert caught.value.code == "connection_failed"
    assert client.attempts == 3 and len(fake_time.sleeps) == 2
    assert "127.0.0.1:%d" % port in caught.value.fix


# -- tokens -------------------------------------------------------------------------------------------------------
class TwoTokens(object):
    """A token provider whose cached token has expired (double of TokenProvider: only its caching is faked)."""

    def __init__(self, expired, valid):
        self.tokens = [expired, valid]
        self.invalidated = []  # scopes asked for fresh, past the cache

    def get_token(self, scope):
        return self.tokens[0]

    def get_access_token(self, scope, fresh=False):
        if fresh:
            self.invalidated.append(scope)
            self.tokens.pop(0)
        return AccessToken(self.tokens[0], int(time.time()) + 3600)

    def secrets(self):
        return list(self.tokens)


@pytest.mark.parametrize("service", ["graph", "exchange"])
def test_expired_token_is_refreshed_once(emulator, tenant, fake_time, service):
    app_id = emulator.admin.client_id
    if service == "graph":
        audience, scope, method, url, body = ("https://graph.microsoft.com", GRAPH_SCOPE, "GET",
                                              emulator.url + "/v1.0/applications", None)
    else:
        audience, scope, method, url, body = (
            "https://outlook.office365.com", EXCHANGE_SCOPE, "POST",
            "%s/adminapi/beta/%s/InvokeCommand" % (emulator.url, tenant.tenant_id),
            {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {}}})
    expired = tenant.tokens.issue(app_id, audience=audience, now=time.time() - 7200, lifetime=3600)
    provider = TwoTokens(expired, tenant.tokens.issue(app_id, audience=audience))
    client = make_client(emulator, fake_time, provider=provider)
    assert client.request(method, url, scope=scope, json=body).status == 200
    assert provider.invalidated == [scope] and client.attempts == 2


def test_refused_token_is_not_retried_and_not_shown(emulator, tenant, fake_time):
    bad = tenant.tokens.issue(emulator.admin.client_id, audience="https://outlook.office365.com")
    provider = TwoTokens(bad, bad)
    client = make_client(emulator, fake_time, provider=provider)
    mark = tenant.log.mark()
    with pytest.raises(ServiceError) as caught:
        client.request("GET", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE, errors=GRAPH_ERRORS)
    assert caught.value.status == 401 and caught.value.code == "InvalidAuthenticationToken"
    assert provider.invalidated == [] and len(graph_requests(tenant, mark)) == 1
    assert bad not in str(caught.value) and "tenant_id" in caught.value.fix


# -- TLS ------------------------------------------------------------------------------------------------------------
def test_ca_path_wins_over_requests_ca_bundle(emulator, tenant, client, monkeypatch):
    import certifi
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # a bundle without the emulator's CA
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    assert client.request("GET", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE).status == 200


def test_tls_verified_by_default(emulator, tenant, fake_time, monkeypatch):
    import certifi
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    client = make_client(emulator, fake_time, ca_path=None)
    mark = tenant.log.mark()
    with pytest.raises(ServiceError) as caught:
        client.request("GET", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE)
    assert caught.value.code == "tls_failed" and "ca_path" in caught.value.fix
    assert graph_requests(tenant, mark) == [], "no request reaches a server that is not trusted"
    assert client.attempts == 1 and fake_time.sleeps == [], "a certificate that did not verify will not next time"


# -- errors ---------------------------------------------------------------------------------------------------------
def test_graph_error_carries_code_status_request_id_and_body(emulator, tenant, client):
    with pytest.raises(ServiceError) as caught:
        client.request("GET", emulator.url + "/v1.0/applications/00000000-0000-0000-0000-000000000001",
                       scope=GRAPH_SCOPE, errors=GRAPH_ERRORS)
    error = caught.value
    assert error.status == 404 and error.code == "Request_ResourceNotFound"
    assert error.request_id and "Microsoft Graph answered HTTP 404 to GET /v1.0/applications/" in error.message
    assert error.details["body"]["error"]["code"] == "Request_ResourceNotFound"


def test_raise_errors_false_returns_the_answer(emulator, tenant, client):
    response = client.request("GET", emulator.url + "/v1.0/applications/00000000-0000-0000-0000-000000000001",
                              scope=GRAPH_SCOPE, raise_errors=False)
    assert response.status == 404 and response.request_id


def test_exchange_error_is_read_by_the_exchange_mapper(emulator, tenant, client):
    url = "%s/adminapi/beta/%s/InvokeCommand" % (emulator.url, tenant.tenant_id)
    with pytest.raises(ExchangeCmdletError) as caught:
        client.request("POST", url, scope=EXCHANGE_SCOPE, json={"CmdletInput": {"Parameters": {}}},
                       errors=ExchangeErrors("Get-Mailbox"))
    error = caught.value
    assert error.status == 400 and error.code == "BadRequest" and error.exception_type.endswith(".TaskArgumentException")
    assert error.message == "Get-Mailbox failed: CmdletInput.CmdletName is required."
    assert error.request_id


@pytest.mark.parametrize("body, expected", [
    ({"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges"}},
     ("Authorization_RequestDenied", "Insufficient privileges")),
    ({"error": {"code": "X", "message": {"lang": "en-US", "value": "odata v3"}}}, ("X", "odata v3")),
    ({"error": {"code": "Y", "details": [{"message": "from details"}]}}, ("Y", "from details")),
    ({"error": {"code": "Request_BadRequest", "message": "One or more properties contains invalid values.",
                "details": [{"code": "ObjectConflict", "message": "Another object uses this identifierUris."}]}},
     ("Request_BadRequest", "One or more properties contains invalid values.: Another object uses this "
                            "identifierUris.")),
    ({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret"},
     ("invalid_client", "AADSTS7000215: Invalid client secret")),
    ({"Code": "Z", "Message": "flat"}, ("Z", "flat")),
    ("not json", (None, None)),
])
def test_error_body_shapes(body, expected):
    assert ServiceErrors().read(body) == expected


def test_no_secret_or_token_in_errors_or_debug_lines(emulator, tenant, fake_time):
    lines = []
    provider = token_provider_from_options(options(emulator))
    client = make_client(emulator, fake_time, provider=provider, debug=lines.append, secrets=["hunter2-secret"])
    token = provider.get_token(GRAPH_SCOPE)
    tenant.faults.add("graph", match="GET /v1.0/applications", kind="status", status=503)
    with pytest.raises(ServiceError) as caught:
        client.request("GET", emulator.url + "/v1.0/applications/missing?x=hunter2-secret", scope=GRAPH_SCOPE)
    client.request("GET", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE)
    text = "\n".join(lines) + str(caught.value) + repr(caught.value.to_result())
    assert lines and "-> 503" in text and "-> 200" in text
    for secret in ("hunter2-secret", token, emulator.admin.client_secret, "Authorization"):
        assert secret not in text


def test_missing_requests_is_a_clear_error(monkeypatch):
    from ansible_collections.o365.smtp_oauth.plugins.module_utils import _http
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import MissingLibraryError
    monkeypatch.setattr(_http, "HAS_REQUESTS", False)
    with pytest.raises(MissingLibraryError) as caught:
        HttpClient(None)
    assert caught.value.library == "requests" and "pip install requests" in caught.value.fix


def test_session_keeps_connections_alive(emulator, tenant, client):
    for attempt in range(3):
        assert client.request("GET", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE).status == 200, attempt
    pool = client.session.get_adapter(emulator.url).poolmanager
    assert isinstance(client.session, requests.Session) and len(pool.pools) == 1


def test_connections_are_reused_although_bodies_are_read_by_the_client(emulator, tenant, client):
    for attempt in range(3):
        assert client.request("GET", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE).status == 200, attempt
    pools = client.session.get_adapter(emulator.url).poolmanager.pools
    assert [pools[key].num_connections for key in pools.keys()] == [1]


# -- Content-Encoding ---------------------------------------------------------------------------------------------
def graph_answer(tenant, status, body, encoding):
    return tenant.faults.add("graph", match="GET /v1.0/applications", kind="answer", answer=(
        status, {"Content-Type": "application/json", "Content-Encoding": encoding}, body))


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw"])
def test_a_body_that_really_is_compressed_is_decoded(emulator, tenant, client, encoding):
    import gzip
    import zlib
    data = b'{"value": [{"id": "x"}]}'
    if encoding == "gzip":
        packed = gzip.compress(data)
    else:
        squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS if encoding == "deflate-raw" else zlib.MAX_WBITS)
        packed = squeeze.compress(data) + squeeze.flush()
    graph_answer(tenant, 200, packed, encoding.split("-")[0])
    assert client.request("GET", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE).json() == {
        "value": [{"id": "x"}]}


@pytest.mark.parametrize("body", [b"", b'{"error": {"code": "Authorization_RequestDenied", "message": "No."}}'])
def test_an_error_whose_body_falsely_claims_gzip_is_the_error_not_a_lost_connection(
        emulator, tenant, client, fake_time, body):
    # Before: requests raised ContentDecodingError, retried as a lost connection, then "check DNS ... firewall".
    lines = []
    client.debug = lines.append
    graph_answer(tenant, 403, body, "gzip")
    with pytest.raises(ServiceError) as caught:
        client.request("GET", emulator.url + "/v1.0/applications", scope=GRAPH_SCOPE, errors=GRAPH_ERRORS)
    assert caught.value.status == 403 and "DNS" not in caught.value.fix and "admin consent" in caught.value.fix
    assert client.attempts == 1 and fake_time.sleeps == []
    if body:
        assert caught.value.code == "Authorization_RequestDenied" and "No." in caught.value.message
        assert any("claims Content-Encoding gzip but is not so encoded" in line for line in lines)
