"""Client secret and certificate credentials against the emulated identity platform, through the real msal code
(no mocking of msal): tokens, every AADSTS answer the emulator gives, TLS via ca_path only, retries on 429 / 503,
instance discovery off only for the overridden authority, and TokenProvider reuse proven by the request log."""

import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import options as _auth
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.jwt_claims import decode_claims
from emulator import certs

EXCHANGE = "https://outlook.office365.com/.default"
GRAPH = "https://graph.microsoft.com/.default"
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"  # Debian's bundle: public CAs only, never the emulator's


@pytest.fixture
def base(emulator, tenant, monkeypatch):
    # The machine's REQUESTS_CA_BUNDLE / SSL_CERT_FILE do not hold the emulator's CA: only ca_path can make it work.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_CA)
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_CA)
    return dict(tenant_id=tenant.tenant_id, authority_host=emulator.url, ca_path=emulator.ca_path)


def identity_requests(tenant, mark, path_part="/oauth2/v2.0/token"):
    return [e for e in tenant.log.since(mark) if e["part"] == "identity" and path_part in (e["path"] or "")]


def token_for(options, scope=EXCHANGE):
    return _auth.credential_from_options(options).get_token(scope)


def test_client_secret_gets_an_exchange_token(emulator, base):
    options = dict(base, client_id=emulator.admin.client_id, client_secret=emulator.admin.client_secret)
    token = token_for(options)
    claims = decode_claims(token.token)
    assert claims["aud"] == "https://outlook.office365.com" and claims["appid"] == emulator.admin.client_id
    assert claims["tid"] == emulator.tenant.tenant_id and "Exchange.ManageAsApp" in claims["roles"]
    # Counted from before the request: never after the token's own exp, at most a few seconds before it.
    assert claims["exp"] - 5 <= token.expires_on <= claims["exp"]


def test_tenant_given_by_domain(emulator, base):
    options = dict(base, tenant_id=emulator.tenant.domain, client_id=emulator.admin.client_id,
                   client_secret=emulator.admin.client_secret)
    assert decode_claims(token_for(options, GRAPH).token)["aud"] == "https://graph.microsoft.com"


@pytest.mark.parametrize("algorithm, header", [("sha256", "x5t#S256"), ("sha1", "x5t")])
def test_certificate_pem_signs_with_the_chosen_thumbprint(emulator, tenant, base, algorithm, header, monkeypatch):
    seen = []
    from emulator import identity
    import jwt
    original = identity.check_certificate_assertion

    def spy(tenant_, request, app, assertion, hdr, claims):
        seen.append(jwt.get_unverified_header(assertion))
        return original(tenant_, request, app, assertion, hdr, claims)
    monkeypatch.setattr(identity, "check_certificate_assertion", spy)  # observes; the emulator still decides
    options = dict(base, client_id=emulator.admin.client_id, certificate_path=emulator.admin.certificate_path,
                   certificate_thumbprint_algorithm=algorithm)
    assert decode_claims(token_for(options).token)["appid"] == emulator.admin.client_id
    assert header in seen[0] and ({"x5t#S256", "x5t"} - {header}).isdisjoint(seen[0])
    assert seen[0]["alg"] == ("PS256" if algorithm == "sha256" else "RS256")


def test_certificate_pfx_with_password(emulator, tenant, base, tmp_path):
    made = emulator.create_app("pfx-app", graph_roles=("Application.Read.All",), secret=False, certificate=True)
    cert = made["certificate"]
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(
        b"app", cert.private_key, cert.certificate, None, serialization.BestAvailableEncryption(b"pfx-pass")))
    options = dict(base, client_id=made["client_id"], certificate_path=str(pfx), certificate_password="pfx-pass")
    assert decode_claims(token_for(options, GRAPH).token)["appid"] == made["client_id"]


# ---- every AADSTS answer the emulator gives for these kinds, translated ----------------------------------------

def secret_options(emulator, base, **kw):
    options = dict(base, client_id=emulator.admin.client_id, client_secret=emulator.admin.client_secret)
    options.update(kw)
    return options


def refused(options, scope=EXCHANGE):
    with pytest.raises(AuthError) as info:
        token_for(options, scope)
    return info.value


def test_wrong_secret_7000215(emulator, base):
    error = refused(secret_options(emulator, base, client_secret="not-the-value"))
    assert error.code == "AADSTS7000215" and error.option == "client_secret" and "Secret ID" in error.fix
    assert error.request_id and "not-the-value" not in str(error)


def test_secret_id_instead_of_value_warns_then_7000215(emulator, tenant, base):
    app = tenant.find_application(app_id=emulator.admin.client_id)
    key_id = app["passwordCredentials"][0]["keyId"]
    credential = _auth.credential_from_options(secret_options(emulator, base, client_secret=key_id))
    assert "secret's ID" in credential.validate()[0]
    mark = tenant.log.mark()
    with pytest.raises(AuthError) as info:
        credential.get_token(EXCHANGE)
    assert info.value.code == "AADSTS7000215"
    assert len(identity_requests(tenant, mark)) == 1  # msal made one request; nothing retried a 401


def test_expired_secret_7000222(emulator, tenant, base):
    import time
    made = emulator.create_app("expired-secret", secret=False)
    secret = tenant.add_password(made["app"], "old", days=1, start=time.time() - 3 * 86400)
    made["app"]["passwordCredentials"][-1]["_created"] = 0
    error = refused(dict(base, client_id=made["client_id"], client_secret=secret))
    assert error.code == "AADSTS7000222" and error.option == "client_secret"


def test_unknown_app_700016(emulator, base):
    error = refused(secret_options(emulator, base, client_id="00000000-0000-4000-8000-00000000beef"))
    assert error.code == "AADSTS700016" and error.option == "client_id"


def test_unknown_tenant_90002(emulator, base):
    error = refused(secret_options(emulator, base, tenant_id="fabrikam.onmicrosoft.com"))
    assert error.code == "AADSTS90002" and error.option == "tenant_id"


def test_unregistered_certificate_700027(emulator, base, tmp_path):
    stranger = certs.ClientCertificate("not-registered")
    path = stranger.write(str(tmp_path / "stranger.pem"))
    error = refused(dict(base, client_id=emulator.admin.client_id, certificate_path=path))
    assert error.code == "AADSTS700027" and error.option == "certificate_path" and "upload" in error.fix


def test_unknown_resource_500011(emulator, base):
    error = refused(secret_options(emulator, base), scope="https://nothing.example/.default")
    assert error.code == "AADSTS500011" and error.option == "cloud"


def test_scope_without_default_1002012(emulator, base):
    error = refused(secret_options(emulator, base), scope="https://graph.microsoft.com/User.Read")
    assert error.code == "AADSTS1002012" and "/.default" in error.fix


def test_disabled_app_7000112(emulator, tenant, base):
    made = emulator.create_app("disabled-app")
    made["sp"]["accountEnabled"] = False
    error = refused(dict(base, client_id=made["client_id"], client_secret=made["client_secret"]))
    assert error.code == "AADSTS7000112" and error.option == "client_id"


def test_app_without_service_principal_7000229(emulator, tenant, base):
    made = emulator.create_app("no-sp-app")
    del tenant.service_principals[made["sp"]["id"]]
    error = refused(dict(base, client_id=made["client_id"], client_secret=made["client_secret"]))
    assert error.code == "AADSTS7000229" and "service principal" in error.message


# ---- TLS: ca_path is the only trust that counts --------------------------------------------------------------

def test_without_ca_path_the_emulator_is_not_trusted(emulator, base):
    options = secret_options(emulator, base)
    options.pop("ca_path")
    error = refused(options)
    assert error.code == "tls_failed" and error.option == "ca_path"


def test_ca_path_wins_over_requests_ca_bundle(emulator, base, monkeypatch, tmp_path):
    other = tmp_path / "other-ca.pem"
    other.write_bytes(open(SYSTEM_CA, "rb").read()[:4000].rsplit(
        b"-----END CERTIFICATE-----", 1)[0] + b"-----END CERTIFICATE-----\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    assert token_for(secret_options(emulator, base)).token
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    assert token_for(secret_options(emulator, base)).token


# ---- discovery, retries ----------------------------------------------------------------------------------------

def test_overridden_authority_skips_instance_discovery(emulator, tenant, base):
    mark = tenant.log.mark()
    token_for(secret_options(emulator, base))
    paths = [e["path"] for e in tenant.log.since(mark) if e["part"] == "identity"]
    assert not [p for p in paths if "discovery/instance" in p]
    assert paths[-1].endswith("/oauth2/v2.0/token")


def test_429_with_retry_after_is_retried(emulator, tenant, base):
    fault = tenant.faults.add("identity", match="/oauth2/v2.0/token", kind="status", status=429, retry_after=1,
                              times=1)
    mark = tenant.log.mark()
    credential = _auth.credential_from_options(secret_options(emulator, base))
    assert credential.get_token(EXCHANGE).token
    assert fault.hits == 1 and len(identity_requests(tenant, mark)) == 2
    assert credential.http.retries == 1


def test_503_twice_then_success(emulator, tenant, base):
    tenant.faults.add("identity", match="/oauth2/v2.0/token", kind="status", status=503, times=2)
    mark = tenant.log.mark()
    assert token_for(secret_options(emulator, base)).token
    assert [e["status"] for e in identity_requests(tenant, mark)] == [503, 503, 200]


def test_dropped_connection_is_retried(emulator, tenant, base):
    tenant.faults.add("identity", match="/oauth2/v2.0/token", kind="drop", times=1)
    assert token_for(secret_options(emulator, base)).token


def test_endless_throttling_ends_with_a_clear_error(emulator, tenant, base):
    tenant.faults.add("identity", match="/oauth2/v2.0/token", kind="status", status=429, retry_after=60, times=None)
    mark = tenant.log.mark()
    error = refused(secret_options(emulator, base))
    # Retry-After 60 s exceeds the bounded wait: one request, no sleeping, and an error that says so.
    assert len(identity_requests(tenant, mark)) == 1
    assert error.status == 429 and "throttled" in error.message and "wait 60 s" in error.message
    assert "token_cache_dir" in error.fix and error.option is None


# ---- TokenProvider: reuse in memory and across processes (file cache) ------------------------------------------

def test_provider_reuses_in_memory(emulator, tenant, base):
    provider = _auth.token_provider_from_options(secret_options(emulator, base))
    mark = tenant.log.mark()
    first = provider.get_token(EXCHANGE)
    assert all(provider.get_token(EXCHANGE) == first for _call in range(5))
    provider.get_token(GRAPH)
    assert len(identity_requests(tenant, mark)) == 2 and provider.acquisitions == 2


def test_provider_renews_when_less_than_ten_minutes_remain(emulator, tenant, base):
    tenant.tokens.lifetime = 500  # every token is already inside the renewal window
    provider = _auth.token_provider_from_options(secret_options(emulator, base))
    mark = tenant.log.mark()
    provider.get_token(EXCHANGE)
    provider.get_token(EXCHANGE)
    assert len(identity_requests(tenant, mark)) == 2


def test_file_cache_twenty_tasks_one_request(emulator, tenant, base, tmp_path):
    options = secret_options(emulator, base, token_cache_dir=str(tmp_path / "tokens"))
    mark = tenant.log.mark()
    tokens = {_auth.token_provider_from_options(options).get_token(EXCHANGE) for _task in range(20)}
    assert len(tokens) == 1 and len(identity_requests(tenant, mark)) == 1
    folder = tmp_path / "tokens"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    everything = b"".join(f.read_bytes() for f in files)
    assert emulator.admin.client_secret.encode() not in everything


def test_fresh_skips_both_caches_and_stores_the_new_token_in_both(emulator, tenant, base, tmp_path):
    options = secret_options(emulator, base, token_cache_dir=str(tmp_path / "tokens"))
    provider = _auth.token_provider_from_options(options)
    first = provider.get_token(EXCHANGE)
    mark = tenant.log.mark()
    renewed = provider.get_access_token(EXCHANGE, fresh=True).token
    assert renewed != first and len(identity_requests(tenant, mark)) == 1
    assert provider.get_token(EXCHANGE) == renewed  # memory holds the new one
    # Another task of the play (a new provider) finds the new token in the file, not the refused one.
    assert _auth.token_provider_from_options(options).get_token(EXCHANGE) == renewed
    assert len(identity_requests(tenant, mark)) == 1


def test_file_cache_keys_by_credential(emulator, tenant, base, tmp_path):
    cache = str(tmp_path / "tokens")
    made = emulator.create_app("second-app", exchange_roles=("Exchange.ManageAsApp",))
    made["app"]["passwordCredentials"][-1]["_created"] = 0
    mark = tenant.log.mark()
    admin = _auth.token_provider_from_options(secret_options(emulator, base, token_cache_dir=cache))
    other = _auth.token_provider_from_options(dict(base, client_id=made["client_id"],
                                                   client_secret=made["client_secret"], token_cache_dir=cache))
    cert = _auth.token_provider_from_options(dict(base, client_id=emulator.admin.client_id, token_cache_dir=cache,
                                                  certificate_path=emulator.admin.certificate_path))
    appids = {decode_claims(p.get_token(EXCHANGE))["appid"] for p in (admin, other)}
    assert appids == {emulator.admin.client_id, made["client_id"]}
    cert.get_token(EXCHANGE)
    assert len(identity_requests(tenant, mark)) == 3


def test_a_refused_token_is_never_cached(emulator, tenant, base, tmp_path):
    cache = tmp_path / "tokens"
    bad = _auth.token_provider_from_options(secret_options(emulator, base, client_secret="wrong",
                                                           token_cache_dir=str(cache)))
    with pytest.raises(AuthError):
        bad.get_token(EXCHANGE)
    assert not [f for f in cache.iterdir() if f.suffix == ".json"]


def test_a_task_served_from_the_file_cache_never_imports_msal(emulator, tenant, base, tmp_path):
    import json
    import subprocess
    import sys
    options = secret_options(emulator, base, token_cache_dir=str(tmp_path / "tokens"))
    first = _auth.token_provider_from_options(options).get_token(EXCHANGE)
    code = ("import json, sys\nfrom ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import options as _auth\n"
            "provider = _auth.token_provider_from_options(json.loads(sys.argv[1]))\n"
            "provider.credential.validate()\n"
            "print(provider.get_token(%r) == sys.argv[2], 'msal' in sys.modules, 'requests' in sys.modules)\n" % EXCHANGE)
    mark = tenant.log.mark()
    out = subprocess.run([sys.executable, "-c", code, json.dumps(options), first], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.stdout.split() == ["True", "False", "False"], out.stderr
    assert tenant.log.since(mark) == []


# ---- answers our own option checks prevent, driven straight at the emulator to check the translation --------

def raw_token_request(emulator, tenant_part, form):
    import requests
    return requests.post("%s/%s/oauth2/v2.0/token" % (emulator.url, tenant_part), data=form,
                         verify=emulator.ca_path, timeout=10).json()


def test_multi_tenant_authority_answer_50059(emulator, base):
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.aadsts import translate_aadsts
    answer = raw_token_request(emulator, "organizations", {
        "grant_type": "client_credentials", "client_id": emulator.admin.client_id,
        "client_secret": emulator.admin.client_secret, "scope": EXCHANGE})
    error = translate_aadsts(answer)
    assert error.code == "AADSTS50059" and error.option == "tenant_id" and error.request_id


def test_no_credential_answer_7000216_or_7000218(emulator, base):
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.aadsts import translate_aadsts
    answer = raw_token_request(emulator, emulator.tenant.tenant_id, {
        "grant_type": "client_credentials", "client_id": emulator.admin.client_id, "scope": EXCHANGE})
    error = translate_aadsts(answer, option_hint="client_secret")
    assert error.code in ("AADSTS7000216", "AADSTS7000218") and error.option == "client_secret"


def test_key_of_another_certificate_7000271(emulator, tenant, base):
    # Our validate() refuses a key that does not match its certificate, so drive msal directly: the registered
    # certificate's thumbprint with a foreign key, as a hand-built configuration would send it.
    import msal
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.aadsts import translate_aadsts
    from emulator.clients import PinnedSession
    foreign = certs.ClientCertificate("foreign")
    app = msal.ConfidentialClientApplication(
        emulator.admin.client_id, authority="%s/%s" % (emulator.url, tenant.tenant_id), instance_discovery=False,
        http_client=PinnedSession(emulator.ca_path),
        client_credential={"private_key": foreign.key_pem.decode(), "thumbprint": emulator.admin.certificate.sha1})
    error = translate_aadsts(app.acquire_token_for_client([EXCHANGE]), option_hint="certificate_path")
    assert error.code == "AADSTS7000271" and error.option == "certificate_path" and "private key" in error.fix
