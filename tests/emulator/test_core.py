"""The emulator's core through real HTTPS clients: server and router, request log, faults, tokens and JWKS, state
isolation between tests, seeded tenant."""

import http.client as httplib
import socket
import ssl
import time

import jwt
import pytest
import requests

from emulator.clients import PinnedSession, token_form
from emulator.https_server import Response
from emulator.state import EXCHANGE_APP_ID, GRAPH_APP_ID, graph_view
from emulator.tokens import EXCHANGE_AUDIENCE, GRAPH_AUDIENCE, TokenInvalid

TOKEN_PATH = "/%s/oauth2/v2.0/token"


def admin_token(emulator, http, scope="https://graph.microsoft.com/.default"):
    form = token_form(emulator.admin.client_id, scope, client_secret=emulator.admin.client_secret)
    answer = http.post(emulator.url + TOKEN_PATH % emulator.tenant.tenant_id, data=form)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


# -- server ---------------------------------------------------------------------------------------------------------
def test_tls_is_verified_against_the_emulator_ca_only(emulator):
    context = ssl.create_default_context()  # the system store: must not trust the throw-away CA
    with pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as raw:
            context.wrap_socket(raw, server_hostname="127.0.0.1")
    for name in ("127.0.0.1", "localhost"):
        pinned = ssl.create_default_context(cafile=emulator.ca_path)
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as raw:
            with pinned.wrap_socket(raw, server_hostname=name) as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_keep_alive_serves_many_requests_on_one_connection(emulator, tenant):
    context = ssl.create_default_context(cafile=emulator.ca_path)
    conn = httplib.HTTPSConnection("127.0.0.1", emulator.port, context=context)
    path = "/%s/discovery/v2.0/keys" % tenant.tenant_id
    for _attempt in range(5):
        conn.request("GET", path)
        answer = conn.getresponse()
        assert answer.status == 200 and b"keys" in answer.read()
    sock = conn.sock
    conn.request("GET", path)
    conn.getresponse().read()
    assert conn.sock is sock  # not reconnected
    conn.close()
    assert tenant.log.count(path=path) == 6


def test_unknown_route_and_method_answer_json_errors(emulator, tenant, http):
    answer = http.get(emulator.url + "/nothing/here/at/all")
    assert answer.status_code == 404 and "error" in answer.json()
    answer = http.delete(emulator.url + TOKEN_PATH % tenant.tenant_id)
    assert answer.status_code == 405 and answer.json()["error"]


def test_router_handlers_get_match_groups_query_json_and_verified_bearer(emulator, tenant, http):
    seen = {}

    def handler(request):
        seen.update(match=request.match, query=request.query, json=request.json,
                    claims=request.bearer(GRAPH_AUDIENCE))
        request.write = True
        return Response(201, json={"ok": True}, headers={"X-Test": "1"})

    emulator.router.add("POST", r"^/v1\.0/emulatorTest/(?P<name>[^/]+)$", handler, first=True)
    try:
        token = admin_token(emulator, http)
        mark = tenant.log.mark()
        answer = http.post(emulator.url + "/v1.0/emulatorTest/abc?$top=3", json={"a": 1},
                           headers={"Authorization": "Bearer " + token})
        assert answer.status_code == 201 and answer.headers["X-Test"] == "1"
        assert seen["match"] == {"name": "abc"} and seen["query"] == {"$top": "3"} and seen["json"] == {"a": 1}
        assert seen["claims"]["appid"] == emulator.admin.client_id
        [entry] = tenant.log.since(mark)
        assert (entry["part"], entry["method"], entry["status"], entry["write"], entry["client_id"]) == (
            "graph", "POST", 201, True, emulator.admin.client_id)
        assert tenant.log.writes(part="graph", since=mark) == [entry]
    finally:
        emulator.router.routes = [r for r in emulator.router.routes if "emulatorTest" not in r[1].pattern]


def test_a_handler_bug_answers_500_and_the_server_keeps_serving(emulator, tenant, http):
    emulator.router.add("GET", r"^/v1\.0/emulatorBroken$", lambda request: 1 / 0, first=True)
    try:
        answer = http.get(emulator.url + "/v1.0/emulatorBroken")
        assert answer.status_code == 500 and "ZeroDivisionError" in answer.json()["error"]["message"]
        assert http.get(emulator.url + "/%s/discovery/v2.0/keys" % tenant.tenant_id).status_code == 200
    finally:
        emulator.router.routes = [r for r in emulator.router.routes if "emulatorBroken" not in r[1].pattern]


# -- request log -----------------------------------------------------------------------------------------------------
def test_log_marks_filters_and_counts(emulator, tenant, http):
    admin_token(emulator, http)
    mark = tenant.log.mark()
    admin_token(emulator, http)
    http.get(emulator.url + "/%s/discovery/v2.0/keys" % tenant.tenant_id)
    since = tenant.log.since(mark)
    assert [(e["part"], e["method"]) for e in since] == [("identity", "POST"), ("identity", "GET")]
    assert tenant.log.count(since=mark, method="POST", status=200) == 1
    assert tenant.log.writes(since=mark) == []
    assert all(e["time"] >= since[0]["time"] for e in since)


def test_reset_gives_each_test_a_fresh_state_and_keeps_marks_valid(emulator, tenant):
    tenant.add_application("leftover")
    tenant.faults.add("identity", kind="drop", times=None)
    old_role = tenant.find_role(GRAPH_APP_ID, "Mail.Send")["id"]
    mark = tenant.log.mark()
    tenant.log.add(part="smtp", verb="EHLO", status=250)
    emulator.reset()
    assert tenant.find_application(display_name="leftover") is None
    assert tenant.faults.pending() == []
    assert tenant.log.since(mark) == [] and len(tenant.log) == 0
    assert tenant.find_role(GRAPH_APP_ID, "Mail.Send")["id"] != old_role  # role ids are random per tenant state
    assert tenant.find_application(app_id=emulator.admin.client_id) is not None


# -- faults ----------------------------------------------------------------------------------------------------------
def test_status_fault_answers_429_with_retry_after_once(emulator, tenant, http):
    fault = tenant.faults.add("identity", match="POST /", kind="status", status=429, retry_after=3)
    url = emulator.url + TOKEN_PATH % tenant.tenant_id
    form = token_form(emulator.admin.client_id, client_secret=emulator.admin.client_secret)
    first = http.post(url, data=form)
    assert first.status_code == 429 and first.headers["Retry-After"] == "3"
    assert first.json()["error"] == "temporarily_unavailable" and first.json()["error_codes"] == [90055]
    assert http.post(url, data=form).status_code == 200 and fault.hits == 1
    assert [e["status"] for e in tenant.log.entries(part="identity")] == [429, 200]
    assert tenant.log.entries(part="identity")[0]["fault"] == "status"


def test_status_fault_503_in_graph_shape_and_match_by_cmdlet(emulator, tenant, http):
    tenant.faults.add("graph", kind="status", status=503, times=2)
    for _attempt in range(2):
        answer = http.get(emulator.url + "/v1.0/applications")
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "ServiceUnavailable"
        assert answer.json()["error"]["innerError"]["request-id"]
    assert "Retry-After" not in answer.headers
    tenant.faults.add("exchange", match="Get-Mailbox", kind="status", status=503)
    assert tenant.faults.take("exchange", "POST /adminapi/beta/x/InvokeCommand", "Get-User") is None
    assert tenant.faults.take("exchange", "POST /adminapi/beta/x/InvokeCommand", "get-mailbox").status == 503


def test_literal_match_with_regex_characters(tenant):
    tenant.faults.add("graph", match="PATCH /v1.0/applications(uniqueName=", kind="drop")
    assert tenant.faults.take("graph", "PATCH /v1.0/applications/abc") is None
    assert tenant.faults.take("graph", "PATCH /v1.0/applications(uniqueName='x')").kind == "drop"
    tenant.faults.add("graph", match=r"^GET /v1\.0/servicePrincipals\?", kind="delay", seconds=0)
    assert tenant.faults.take("graph", "GET /v1.0/servicePrincipals?$filter=x").kind == "delay"


def test_drop_closes_without_answer_and_does_no_work(emulator, tenant, http):
    tenant.faults.add("identity", match="oauth2", kind="drop")
    url = emulator.url + TOKEN_PATH % tenant.tenant_id
    with pytest.raises(requests.ConnectionError):
        http.post(url, data=token_form(emulator.admin.client_id, client_secret=emulator.admin.client_secret))
    [entry] = tenant.log.entries(part="identity")
    assert entry["fault"] == "drop" and entry["status"] is None


def test_drop_after_commit_does_the_work_then_closes(emulator, tenant, http):
    done = []
    emulator.router.add("POST", r"^/v1\.0/emulatorCommit$",
                        lambda request: done.append(1) or Response(201, json={}), first=True)
    try:
        tenant.faults.add("graph", match="emulatorCommit", kind="drop_after_commit")
        with pytest.raises(requests.ConnectionError):
            http.post(emulator.url + "/v1.0/emulatorCommit", json={})
        assert done == [1]
        [entry] = tenant.log.entries(part="graph")
        assert entry["status"] == 201 and entry["write"] and entry["fault"] == "drop_after_commit"
    finally:
        emulator.router.routes = [r for r in emulator.router.routes if "emulatorCommit" not in r[1].pattern]


def test_delay_fault_slows_one_answer(emulator, tenant, http):
    tenant.faults.add("identity", match="keys", kind="delay", seconds=0.4)
    url = emulator.url + "/%s/discovery/v2.0/keys" % tenant.tenant_id
    start = time.monotonic()
    assert http.get(url).status_code == 200
    assert time.monotonic() - start >= 0.4  # a lower bound the fault guarantees, not a speed claim
    http.get(url)
    assert [e.get("fault") for e in tenant.log.entries(part="identity")] == ["delay", None]


def test_fault_arguments_are_checked(tenant):
    with pytest.raises(ValueError, match="fault kind"):
        tenant.faults.add("graph", kind="explode")
    with pytest.raises(ValueError, match="unknown part"):
        tenant.faults.add("grahp")


# -- tokens and JWKS -------------------------------------------------------------------------------------------------
def test_issued_token_verifies_with_published_jwks_and_carries_the_claims(emulator, tenant, http):
    token = admin_token(emulator, http, "https://outlook.office365.com/.default")
    config = http.get(emulator.url + "/%s/v2.0/.well-known/openid-configuration" % tenant.tenant_id).json()
    jwks = http.get(config["jwks_uri"]).json()
    header = jwt.get_unverified_header(token)
    [key] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=EXCHANGE_AUDIENCE,
                        issuer="https://sts.windows.net/%s/" % tenant.tenant_id)
    sp = tenant.find_service_principal(app_id=emulator.admin.client_id)
    assert (claims["tid"], claims["appid"], claims["azp"], claims["oid"], claims["idtyp"]) == (
        tenant.tenant_id, emulator.admin.client_id, emulator.admin.client_id, sp["id"], "app")
    assert claims["roles"] == ["Exchange.ManageAsApp"]
    assert claims["exp"] - claims["iat"] == 3599 and claims["nbf"] <= time.time()


def test_verify_refuses_bad_signature_audience_tenant_and_expiry(tenant):
    tokens = tenant.tokens
    good = tokens.issue("app-1", roles=["Mail.Send"])
    assert tokens.verify(good, GRAPH_AUDIENCE + "/")["roles"] == ["Mail.Send"]
    head, body, sig = good.split(".")
    with pytest.raises(TokenInvalid, match="signature"):
        tokens.verify("%s.%s.%s" % (head, body, sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")),
                      GRAPH_AUDIENCE)
    with pytest.raises(TokenInvalid, match="audience"):
        tokens.verify(good, EXCHANGE_AUDIENCE)
    with pytest.raises(TokenInvalid, match="tenant"):
        tokens.verify(tokens.issue("app-1", tid="00000000-0000-0000-0000-000000000000"), GRAPH_AUDIENCE)
    with pytest.raises(TokenInvalid, match="expired"):
        tokens.verify(tokens.issue("app-1", now=time.time() - 4000), GRAPH_AUDIENCE)
    with pytest.raises(TokenInvalid):
        tokens.verify("not-a-jwt", GRAPH_AUDIENCE)


def test_token_lifetime_is_a_setting(emulator, tenant, http):
    tenant.tokens.lifetime = 120
    claims = tenant.tokens.verify(admin_token(emulator, http), GRAPH_AUDIENCE)
    assert claims["exp"] - claims["iat"] == 120


def test_roles_follow_app_role_assignments(tenant):
    app = tenant.add_application("relay")
    sp = tenant.add_service_principal(app)
    assert tenant.roles_for(app["appId"], EXCHANGE_APP_ID) == []
    tenant.grant_app_role(sp["id"], EXCHANGE_APP_ID, "SMTP.SendAsApp")
    tenant.grant_app_role(sp["id"], EXCHANGE_APP_ID, "SMTP.SendAsApp")  # idempotent
    assert len(tenant.app_role_assignments) == len({(a["principalId"], a["appRoleId"])
                                                    for a in tenant.app_role_assignments.values()})
    claims = tenant.tokens.verify(tenant.tokens.issue(app["appId"], audience=EXCHANGE_AUDIENCE), EXCHANGE_AUDIENCE)
    assert claims["roles"] == ["SMTP.SendAsApp"] and claims["oid"] == sp["id"]
    with pytest.raises(KeyError, match="no app role"):
        tenant.grant_app_role(sp["id"], EXCHANGE_APP_ID, "Nope.All")


# -- seeded state ----------------------------------------------------------------------------------------------------
def test_seeded_tenant_has_resources_admin_and_identities(emulator, tenant):
    graph = tenant.find_service_principal(app_id=GRAPH_APP_ID)
    exchange = tenant.find_service_principal(app_id=EXCHANGE_APP_ID)
    assert {"Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "Application.Read.All", "Mail.Send",
            "User.Read.All", "Directory.Read.All"} <= {r["value"] for r in graph["appRoles"]}
    assert "User.Read" in {s["value"] for s in graph["oauth2PermissionScopes"]}
    assert {"SMTP.SendAsApp", "Exchange.ManageAsApp", "full_access_as_app", "Mail.Send"} <= {
        r["value"] for r in exchange["appRoles"]}
    assert tenant.find_resource("https://outlook.office365.com/") is exchange
    admin = emulator.admin
    expected = ["AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All"]
    assert tenant.roles_for(admin.client_id, GRAPH_APP_ID) == expected
    assert tenant.exchange is None or tenant.exchange.is_admin(admin.client_id)
    assert emulator.managed_identities.system_client_id != emulator.managed_identities.user_client_id
    assert admin.client_secret not in repr(admin)


def test_graph_view_hides_bookkeeping_and_secret_text(tenant):
    app = tenant.add_application("relay")
    secret = tenant.add_password(app, "s1")
    tenant.add_federated_credential(app, "gh", "https://token.actions.githubusercontent.com", "repo:o/r:ref:x")
    shown = graph_view(app)
    assert secret not in repr(shown) and "_created" not in shown and "federatedIdentityCredentials" not in shown
    [credential] = shown["passwordCredentials"]
    assert credential["hint"] == secret[:3] and credential["secretText"] is None


def test_env_points_the_collection_at_the_emulator(emulator):
    env = emulator.env()
    assert env["AZURE_AUTHORITY_HOST"] == env["O365_GRAPH_ENDPOINT"] == env["O365_EXCHANGE_ENDPOINT"] == emulator.url
    assert env["AZURE_CLIENT_SECRET"] == emulator.admin.client_secret and env["O365_CA_PATH"] == emulator.ca_path
    certificate = emulator.env("certificate")
    assert "AZURE_CLIENT_SECRET" not in certificate
    assert certificate["AZURE_CLIENT_CERTIFICATE_PATH"] == emulator.admin.certificate_path
    if emulator.smtp is not None:
        assert int(env["O365_SMTP_PORT"]) == emulator.smtp.port


def test_emulator_starts_fast_and_stops_cleanly():
    from emulator import Emulator
    start = time.monotonic()
    with Emulator(smtp=False) as second:
        elapsed = time.monotonic() - start
        url, port = second.url, second.port
        session = PinnedSession(second.ca_path)
        assert session.get(url + "/common/discovery/keys").status_code == 200
        session.close()
    print("emulator start: %.3f s" % elapsed)  # figure, not an assertion: speed is a benchmark's job
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_chunked_and_unreadable_request_bodies(emulator, tenant, http):
    form = "grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s" % (
        emulator.admin.client_id, requests.utils.quote(emulator.admin.client_secret, safe=""),
        requests.utils.quote("https://graph.microsoft.com/.default", safe=""))
    url = emulator.url + TOKEN_PATH % tenant.tenant_id
    chunked = http.post(url, data=(part.encode() for part in (form[:20], form[20:])),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert chunked.status_code == 200, chunked.text
    conn = httplib.HTTPSConnection("127.0.0.1", emulator.port,
                                   context=ssl.create_default_context(cafile=emulator.ca_path))
    conn.putrequest("POST", TOKEN_PATH % tenant.tenant_id)
    conn.putheader("Content-Length", "nope")
    conn.endheaders()
    bad = conn.getresponse()
    assert bad.status == 400 and b"bad_request" in bad.read()
    conn.close()
