"""The emulated identity platform through the clients the collection uses: msal (secret, certificate) and
azure-identity (federated assertion, workload identity file, managed identity), plus raw requests for the exact
AADSTS error bodies."""

import base64
import time
import uuid

import jwt
import pytest

from emulator import certs
from emulator.clients import msal_app, token_form
from emulator.state import EXCHANGE_APP_ID, GRAPH_APP_ID
from emulator.tokens import EXCHANGE_AUDIENCE, GRAPH_AUDIENCE

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
GITHUB = "https://token.actions.githubusercontent.com"
SUBJECT = "repo:contoso/relay:ref:refs/heads/main"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def relay(emulator, tenant):
    return emulator.create_app("relay", exchange_roles=["SMTP.SendAsApp"], certificate=True)


def token_url(emulator, tenant_name=None):
    return "%s/%s/oauth2/v2.0/token" % (emulator.url, tenant_name or emulator.tenant.tenant_id)


def post_token(emulator, http, tenant_name=None, **form):
    return http.post(token_url(emulator, tenant_name), data=form)


def assert_aadsts(answer, code, status, error, *texts):
    body = answer.json()
    assert answer.status_code == status, body
    assert body["error"] == error and body["error_codes"] == [code]
    assert body["error_description"].startswith("AADSTS%d: " % code)
    for key in ("timestamp", "trace_id", "correlation_id"):
        assert body[key]
    assert body["trace_id"] in body["error_description"]
    for text in texts:
        assert text in body["error_description"]


def assertion(client_id, key, audience, header=None, now=None, lifetime=600, **claims):
    now = int(time.time() if now is None else now)
    body = {"aud": audience, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()), "nbf": now,
            "iat": now, "exp": now + lifetime}
    body.update(claims)
    return jwt.encode(body, key, algorithm="RS256", headers=header or {})


def x5t(digest):
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# -- the three client-credential paths -----------------------------------------------------------------------------
@pytest.mark.parametrize("tenant_name", ["id", "contoso.onmicrosoft.com", "CONTOSO.onmicrosoft.com"])
def test_client_secret_through_msal_with_tenant_id_or_domain(emulator, tenant, relay, tenant_name):
    name = tenant.tenant_id if tenant_name == "id" else tenant_name
    result = msal_app(emulator, relay["client_id"], relay["client_secret"], tenant=name).acquire_token_for_client(
        [EXCHANGE_SCOPE])
    claims = tenant.tokens.verify(result["access_token"], EXCHANGE_AUDIENCE)
    assert claims["roles"] == ["SMTP.SendAsApp"] and claims["appid"] == relay["client_id"]
    assert result["token_type"] == "Bearer" and result["expires_in"] > 3500
    assert relay["client_secret"] not in str(tenant.log.since(0))


def test_certificate_sha256_through_msal_signs_ps256_with_x5t_s256(emulator, tenant, relay):
    cert = relay["certificate"]
    mark = tenant.log.mark()
    app = msal_app(emulator, relay["client_id"], {"private_key": cert.key_pem.decode(),
                                                  "public_certificate": cert.cert_pem.decode()})
    result = app.acquire_token_for_client([GRAPH_SCOPE])
    assert "access_token" in result, result.get("error_description")
    assert tenant.tokens.verify(result["access_token"], GRAPH_AUDIENCE)["appid"] == relay["client_id"]
    assert tenant.log.count(since=mark, part="identity", method="POST", status=200) == 1


def test_certificate_sha1_thumbprint_through_msal(emulator, tenant, relay):
    cert = relay["certificate"]
    app = msal_app(emulator, relay["client_id"], {"private_key": cert.key_pem.decode(), "thumbprint": cert.sha1})
    result = app.acquire_token_for_client([GRAPH_SCOPE])
    assert "access_token" in result, result.get("error_description")


def test_federated_assertion_through_azure_identity(emulator, tenant, relay):
    from azure.identity import ClientAssertionCredential
    tenant.add_federated_credential(relay["app"], "github-main", GITHUB, SUBJECT)
    credential = ClientAssertionCredential(
        tenant.tenant_id, relay["client_id"], lambda: emulator.issue_federated_token(GITHUB, SUBJECT),
        authority=emulator.url, disable_instance_discovery=True, connection_verify=emulator.ca_path)
    token = credential.get_token(EXCHANGE_SCOPE)
    assert tenant.tokens.verify(token.token, EXCHANGE_AUDIENCE)["roles"] == ["SMTP.SendAsApp"]


def test_workload_identity_token_file_through_azure_identity(emulator, tenant, relay, tmp_path):
    from azure.identity import WorkloadIdentityCredential
    tenant.add_federated_credential(relay["app"], "k8s", "https://kubernetes.default.svc", "system:sa:relay")
    path = tmp_path / "token"
    path.write_text(emulator.issue_federated_token("https://kubernetes.default.svc", "system:sa:relay"))
    credential = WorkloadIdentityCredential(tenant_id=tenant.tenant_id, client_id=relay["client_id"],
                                            token_file_path=str(path), authority=emulator.url,
                                            disable_instance_discovery=True, connection_verify=emulator.ca_path)
    assert tenant.tokens.verify(credential.get_token(GRAPH_SCOPE).token, GRAPH_AUDIENCE)["appid"] == relay["client_id"]


@pytest.mark.parametrize("which", ["system", "user"])
def test_managed_identity_through_azure_identity(emulator, tenant, monkeypatch, which):
    from azure.identity import ManagedIdentityCredential
    identities = emulator.managed_identities
    client_id = identities.system_client_id if which == "system" else identities.user_client_id
    sp = tenant.find_service_principal(app_id=client_id)
    assert sp["servicePrincipalType"] == "ManagedIdentity"
    tenant.grant_app_role(sp["id"], EXCHANGE_APP_ID, "SMTP.SendAsApp")
    for key, value in emulator.msi_env().items():
        monkeypatch.setenv(key, value)
    credential = ManagedIdentityCredential(client_id=None if which == "system" else client_id)
    claims = tenant.tokens.verify(credential.get_token(EXCHANGE_SCOPE).token, EXCHANGE_AUDIENCE)
    assert claims["appid"] == client_id and claims["oid"] == sp["id"] and claims["roles"] == ["SMTP.SendAsApp"]
    [entry] = tenant.log.entries(part="msi")
    assert entry["status"] == 200 and entry["client_id"] == client_id


def test_managed_identity_endpoint_refuses_wrong_header_and_unknown_identity(emulator, tenant):
    import requests
    params = {"api-version": "2019-08-01", "resource": "https://graph.microsoft.com"}
    answer = requests.get(emulator.msi_endpoint, params=params, headers={"X-IDENTITY-HEADER": "wrong"}, timeout=5)
    assert answer.status_code == 401 and "X-IDENTITY-HEADER" in answer.json()["message"]
    answer = requests.get(emulator.msi_endpoint, params=dict(params, client_id=str(uuid.uuid4())),
                          headers={"X-IDENTITY-HEADER": emulator.msi_header}, timeout=5)
    assert answer.status_code == 400 and "No managed identity" in answer.json()["message"]
    answer = requests.get(emulator.msi_endpoint.replace("/msi/token", "/%s/oauth2/v2.0/token" % tenant.tenant_id),
                          timeout=5)
    assert answer.status_code == 404  # the plain-HTTP listener serves the managed identity endpoint only


# -- AADSTS errors ---------------------------------------------------------------------------------------------------
def test_7000215_wrong_secret_or_secret_id_through_msal(emulator, tenant, relay):
    secret_id = relay["app"]["passwordCredentials"][0]["keyId"]  # the classic mistake: the ID, not the value
    result = msal_app(emulator, relay["client_id"], secret_id).acquire_token_for_client([GRAPH_SCOPE])
    assert result["error"] == "invalid_client" and result["error_codes"] == [7000215]
    assert "client secret value, not the client secret ID" in result["error_description"]
    assert relay["client_id"] in result["error_description"]


def test_7000222_expired_secret(emulator, tenant, http, relay):
    old = tenant.add_password(relay["app"], "old", days=1, start=time.time() - 3 * 86400)
    answer = post_token(emulator, http, **token_form(relay["client_id"], client_secret=old))
    assert_aadsts(answer, 7000222, 401, "invalid_client", "are expired", "https://aka.ms/NewClientSecret")


def test_700016_unknown_application(emulator, tenant, http):
    app_id = str(uuid.uuid4())
    answer = post_token(emulator, http, **token_form(app_id, client_secret="x"))
    assert_aadsts(answer, 700016, 400, "unauthorized_client", "Application with identifier '%s' was not found"
                  % app_id, "directory '%s'" % tenant.display_name)


def test_700027_certificate_not_registered(emulator, tenant, http, relay):
    stranger = certs.ClientCertificate("stranger")
    form = token_form(relay["client_id"], client_assertion_type=ASSERTION_TYPE, client_assertion=assertion(
        relay["client_id"], stranger.private_key, token_url(emulator),
        header={"x5t#S256": x5t(bytes.fromhex(stranger.sha256))}))
    assert_aadsts(post_token(emulator, http, **form), 700027, 401, "invalid_client", "not registered",
                  stranger.sha256, relay["client_id"])


def test_certificate_assertion_signature_and_audience_are_checked(emulator, tenant, http, relay):
    cert, stranger = relay["certificate"], certs.ClientCertificate("stranger")
    header = {"x5t": x5t(bytes.fromhex(cert.sha1))}
    forged = assertion(relay["client_id"], stranger.private_key, token_url(emulator), header=header)
    form = token_form(relay["client_id"], client_assertion_type=ASSERTION_TYPE, client_assertion=forged)
    assert_aadsts(post_token(emulator, http, **form), 7000271, 401, "invalid_client", "signature")
    elsewhere = assertion(relay["client_id"], cert.private_key, "https://login.example/other/token", header=header)
    form["client_assertion"] = elsewhere
    assert_aadsts(post_token(emulator, http, **form), 7000274, 401, "invalid_client", "audience")
    form["client_assertion"] = assertion(relay["client_id"], cert.private_key, token_url(emulator), header=header)
    assert post_token(emulator, http, **form).status_code == 200


def test_700024_assertion_outside_its_time_range(emulator, tenant, http, relay):
    cert = relay["certificate"]
    stale = assertion(relay["client_id"], cert.private_key, token_url(emulator),
                      header={"x5t#S256": x5t(bytes.fromhex(cert.sha256))}, now=time.time() - 7200)
    form = token_form(relay["client_id"], client_assertion_type=ASSERTION_TYPE, client_assertion=stale)
    assert_aadsts(post_token(emulator, http, **form), 700024, 401, "invalid_client", "not within its valid time range")


def test_50059_common_tenant_and_90002_unknown_tenant(emulator, tenant, http, relay):
    form = token_form(relay["client_id"], client_secret=relay["client_secret"])
    assert_aadsts(post_token(emulator, http, "common", **form), 50059, 400, "invalid_request",
                  "No tenant-identifying information")
    assert_aadsts(post_token(emulator, http, "fabrikam.onmicrosoft.com", **form), 90002, 400, "invalid_request",
                  "Tenant 'fabrikam.onmicrosoft.com' not found")
    discovery = http.get("%s/%s/v2.0/.well-known/openid-configuration" % (emulator.url, uuid.uuid4()))
    assert discovery.status_code == 400 and discovery.json()["error_codes"] == [90002]


def test_federated_subject_issuer_and_audience_mismatches(emulator, tenant, http, relay):
    tenant.add_federated_credential(relay["app"], "github-main", GITHUB, SUBJECT)

    def federated(token):
        return post_token(emulator, http, **token_form(relay["client_id"], client_assertion_type=ASSERTION_TYPE,
                                                       client_assertion=token))

    other_branch = "repo:contoso/relay:ref:refs/heads/dev"
    assert_aadsts(federated(emulator.issue_federated_token(GITHUB, other_branch)), 700213, 401,
                  "invalid_client", "assertion subject '%s'" % other_branch)
    assert_aadsts(federated(emulator.issue_federated_token(GITHUB, SUBJECT, audience="api://other")), 70021, 400,
                  "invalid_request", "Assertion Audience: 'api://other'", "Assertion Subject: '%s'" % SUBJECT)
    assert_aadsts(federated(emulator.issue_federated_token("https://gitlab.example", SUBJECT)), 700211, 401,
                  "invalid_client", "https://gitlab.example")
    assert_aadsts(federated(emulator.issue_federated_token(GITHUB, SUBJECT, now=time.time() - 7200)), 700024, 401,
                  "invalid_client")
    assert federated(emulator.issue_federated_token(GITHUB, SUBJECT)).status_code == 200


def test_7000112_disabled_application(emulator, tenant, http, relay):
    relay["sp"]["accountEnabled"] = False
    answer = post_token(emulator, http, **token_form(relay["client_id"], client_secret=relay["client_secret"]))
    assert_aadsts(answer, 7000112, 400, "unauthorized_client", "'%s'(relay) is disabled" % relay["client_id"])


def test_7000229_application_without_service_principal(emulator, tenant, http):
    app = tenant.add_application("no-sp")
    secret = tenant.add_password(app)
    answer = post_token(emulator, http, **token_form(app["appId"], client_secret=secret))
    assert_aadsts(answer, 7000229, 401, "invalid_client", "missing service principal")


def test_500011_resource_not_in_tenant_and_1002012_bad_scope(emulator, tenant, http, relay):
    base = dict(client_secret=relay["client_secret"])
    answer = post_token(emulator, http, **token_form(relay["client_id"], "https://vault.azure.net/.default", **base))
    assert_aadsts(answer, 500011, 400, "invalid_resource", "resource principal named https://vault.azure.net")
    answer = post_token(emulator, http, **token_form(relay["client_id"], "https://graph.microsoft.com/Mail.Send",
                                                     **base))
    assert_aadsts(answer, 1002012, 400, "invalid_scope", "/.default")
    answer = post_token(emulator, http, **token_form(relay["client_id"], GRAPH_APP_ID + "/.default", **base))
    assert answer.status_code == 200  # a resource named by its app id is fine


def test_new_secret_and_certificate_fail_until_replicated(emulator, tenant, http, relay):
    tenant.credential_replication_lag = 0.6
    fresh = tenant.add_password(relay["app"], "fresh")
    form = token_form(relay["client_id"], client_secret=fresh)
    assert_aadsts(post_token(emulator, http, **form), 7000215, 401, "invalid_client")
    cert = certs.ClientCertificate("fresh")
    tenant.add_certificate(relay["app"], cert)
    cert_form = token_form(relay["client_id"], client_assertion_type=ASSERTION_TYPE, client_assertion=assertion(
        relay["client_id"], cert.private_key, token_url(emulator), header={"x5t": x5t(bytes.fromhex(cert.sha1))}))
    assert_aadsts(post_token(emulator, http, **cert_form), 700027, 401, "invalid_client")
    time.sleep(0.7)
    assert post_token(emulator, http, **form).status_code == 200
    assert post_token(emulator, http, **cert_form).status_code == 200


def test_missing_credential_and_wrong_grant(emulator, tenant, http, relay):
    assert_aadsts(post_token(emulator, http, **token_form(relay["client_id"])), 7000218, 401, "invalid_client",
                  "'client_assertion' or 'client_secret'")
    answer = post_token(emulator, http, **token_form(relay["client_id"], client_secret="x", grant_type="password"))
    assert_aadsts(answer, 70003, 400, "unsupported_grant_type", "'password'")


def test_client_secret_basic_header(emulator, tenant, http, relay):
    basic = base64.b64encode(("%s:%s" % (relay["client_id"], relay["client_secret"])).encode()).decode()
    answer = http.post(token_url(emulator), data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE},
                       headers={"Authorization": "Basic " + basic})
    assert answer.status_code == 200 and answer.json()["token_type"] == "Bearer"


def test_discovery_document_points_at_the_emulator(emulator, tenant, http):
    for name in (tenant.tenant_id, tenant.domain):
        config = http.get("%s/%s/v2.0/.well-known/openid-configuration" % (emulator.url, name)).json()
        assert config["token_endpoint"] == token_url(emulator)
        assert config["issuer"] == "%s/%s/v2.0" % (emulator.url, tenant.tenant_id)
        assert http.get(config["jwks_uri"]).json()["keys"][0]["kty"] == "RSA"
