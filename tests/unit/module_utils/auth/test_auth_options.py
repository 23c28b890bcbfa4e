"""credential_from_options and validate(): choosing the kind and rejecting bad input offline, naming the option.

No network here (validate() must not need one): the emulator tests get the tokens.
"""

import datetime
import os
import stat
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import options as _auth
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError

TENANT = "8a6b7c1d-0000-4000-8000-000000000001"
CLIENT = "11111111-2222-4333-8444-555555555555"


def opts(**kw):
    base = dict(tenant_id=TENANT, client_id=CLIENT)
    base.update(kw)
    return base


def config_error(options):
    with pytest.raises(ConfigError) as info:
        _auth.credential_from_options(options).validate()
    return info.value


# ---- choosing the kind -------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, kind", [
    (dict(client_secret="s3cr3t-value"), "client_secret"),
    (dict(access_token="a.b.c", client_secret="s", certificate_path="/x"), "access_token"),
    (dict(certificate_path="/x", client_secret="s", federated_token_file="/f"), "certificate"),
    (dict(client_secret="s", federated_token_file="/f"), "client_secret"),
    (dict(federated_token_file="/f"), "workload_identity"),
    (dict(managed_identity=True), "managed_identity"),
    (dict(managed_identity_client_id=CLIENT), "managed_identity"),
    (dict(azure_cli=True), "azure_cli"),
    (dict(azure_cli=True, managed_identity=False, client_secret=""), "azure_cli"),
])
def test_auto_precedence(extra, kind):
    assert _auth.credential_from_options(opts(**extra)).kind == kind


def test_auto_precedence_warns_about_what_it_ignores():
    cred = _auth.credential_from_options(opts(certificate_path="/x", client_secret="s"))
    assert any("client_secret ignored" in w and "certificate_path" in w for w in cred.notes)


def test_explicit_auth_method_wins_and_says_what_it_ignores():
    cred = _auth.credential_from_options(opts(auth_method="client_secret", client_secret="s", federated_token_file="/f"))
    assert cred.kind == "client_secret"
    assert cred.validate() == ["federated_token_file ignored: auth_method is client_secret"]


@pytest.mark.parametrize("extra, named", [
    (dict(managed_identity=True, client_secret="s"), ("managed_identity", "client_secret")),
    (dict(azure_cli=True, certificate_path="/x"), ("azure_cli", "certificate_path")),
    (dict(managed_identity=True, azure_cli=True), ("managed_identity", "azure_cli")),
])
def test_conflicting_explicit_choices_fail_naming_both(extra, named):
    error = config_error(opts(**extra))
    assert all(name in str(error) for name in named)


def test_nothing_set_and_unknown_method():
    assert config_error(opts()).option == "auth_method"
    error = config_error(opts(auth_method="kerberos", client_secret="s"))
    assert error.option == "auth_method" and "client_secret" in error.fix


# ---- tenant and client ids ---------------------------------------------------------------------------------

@pytest.mark.parametrize("tenant", ["common", "Organizations", "consumers"])
def test_multi_tenant_aliases_are_refused_with_the_reason(tenant):
    error = config_error(opts(tenant_id=tenant, client_secret="s"))
    assert error.option == "tenant_id" and "one specific tenant" in error.message


@pytest.mark.parametrize("tenant, ok", [
    ("contoso.onmicrosoft.com", True), (TENANT, True), ("CONTOSO.COM", True),
    ("", False), (None, False), ("contoso", False), ("not a tenant!", False), ("8a6b7c1d-0000", False),
])
def test_tenant_must_be_guid_or_domain(tenant, ok):
    options = opts(tenant_id=tenant, client_secret="s")
    if ok:
        assert _auth.credential_from_options(options).tenant_id == tenant
    else:
        assert config_error(options).option == "tenant_id"


def test_tenant_optional_for_managed_identity_and_cli_but_checked_if_given():
    assert _auth.credential_from_options(dict(managed_identity=True)).tenant_id is None
    assert config_error(dict(managed_identity=True, tenant_id="common")).option == "tenant_id"


@pytest.mark.parametrize("client", [None, "", "my-app", "11111111222243338444555555555555"])
def test_client_id_required_and_a_guid(client):
    assert config_error(opts(client_id=client, client_secret="s")).option == "client_id"


def test_user_assigned_identity_client_id_is_checked():
    assert config_error(dict(managed_identity_client_id="nope")).option == "managed_identity_client_id"
    cred = _auth.credential_from_options(dict(managed_identity=True, managed_identity_client_id=CLIENT))
    assert cred.client_id == CLIENT and cred.validate() == []


def test_bad_cloud_and_authority_host_and_ca_path():
    assert config_error(opts(client_secret="s", cloud="mars")).option == "cloud"
    assert config_error(opts(client_secret="s", authority_host="http://plain")).option == "authority_host"
    assert config_error(opts(client_secret="s", ca_path="/nonexistent/ca.pem")).option == "ca_path"


@pytest.mark.parametrize("cloud, graph, exchange", [
    ("public", "https://graph.microsoft.com/.default", "https://outlook.office365.com/.default"),
    ("usgov", "https://graph.microsoft.us/.default", "https://outlook.office365.us/.default"),
    ("dod", "https://dod-graph.microsoft.us/.default", "https://outlook-dod.office365.us/.default"),
    ("china", "https://microsoftgraph.chinacloudapi.cn/.default", "https://partner.outlook.cn/.default"),
])
def test_each_cloud_asks_for_its_own_graph_and_exchange_scopes(cloud, graph, exchange):
    cred = _auth.credential_from_options(opts(client_secret="s", cloud=cloud))
    assert (cred.cloud.graph_scope, cred.cloud.exchange_scope) == (graph, exchange)


def test_authority_follows_cloud_and_override():
    cred = _auth.credential_from_options(opts(client_secret="s", cloud="usgov"))
    assert cred.authority == "https://login.microsoftonline.us/" + TENANT
    assert not cred.cloud.authority_overridden
    cred = _auth.credential_from_options(opts(client_secret="s", authority_host="https://127.0.0.1:8443/"))
    assert cred.authority == "https://127.0.0.1:8443/" + TENANT and cred.cloud.authority_overridden


# ---- secret ------------------------------------------------------------------------------------------------

def test_guid_looking_secret_warns_before_any_request():
    warnings = _auth.credential_from_options(opts(client_secret="2a1b3c4d-0000-4000-8000-00000000abcd")).validate()
    assert len(warnings) == 1 and "secret's ID" in warnings[0] and "AADSTS7000215" in warnings[0]
    assert _auth.credential_from_options(opts(client_secret="Abc8Q~realistic.value_123")).validate() == []


@pytest.mark.parametrize("secret", ["", "   ", " padded "])
def test_empty_or_padded_secret(secret):
    error = config_error(opts(auth_method="client_secret", client_secret=secret))
    assert error.option == "client_secret"
    if secret.strip():
        assert secret.strip() not in str(error)


# ---- access token ------------------------------------------------------------------------------------------

def test_access_token_checks():
    import time

    import jwt
    expired = jwt.encode({"aud": "https://outlook.office365.com", "exp": int(time.time()) - 10}, "k" * 32)
    error = config_error(dict(access_token=expired))
    assert error.option == "access_token" and "expired" in error.message and expired not in str(error)
    assert config_error(dict(access_token="Bearer " + expired)).option == "access_token"
    soon = jwt.encode({"aud": "https://outlook.office365.com", "exp": int(time.time()) + 120}, "k" * 32)
    assert "expires in" in _auth.credential_from_options(dict(access_token=soon)).validate()[0]
    assert "not a readable JWT" in _auth.credential_from_options(dict(access_token="opaque")).validate()[0]


def test_access_token_for_the_wrong_resource_is_refused_at_use():
    import time

    import jwt
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError
    token = jwt.encode({"aud": "https://graph.microsoft.com", "exp": int(time.time()) + 3600}, "k" * 32)
    cred = _auth.credential_from_options(dict(access_token=token))
    assert cred.get_token("https://graph.microsoft.com/.default").token == token
    with pytest.raises(AuthError) as info:
        cred.get_token("https://outlook.office365.com/.default")
    assert info.value.option == "access_token" and "outlook.office365.com" in info.value.message


# ---- certificate -------------------------------------------------------------------------------------------

def make_cert(days=365, key=None):
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "o365-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=400))
            .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
    return key, cert


def pem(key, cert, password=None):
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return (cert.public_bytes(serialization.Encoding.PEM) +
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))


@pytest.fixture(scope="module")
def keypair():
    return make_cert()


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def cert_opts(path, **kw):
    return opts(certificate_path=path, **kw)


def test_pem_and_pfx_load_and_fingerprints_match(tmp_path, keypair):
    key, cert = keypair
    pfx = pkcs12.serialize_key_and_certificates(b"x", key, cert, None, serialization.BestAvailableEncryption(b"pw"))
    for path, password in [(write(tmp_path, "c.pem", pem(key, cert)), None),
                           (write(tmp_path, "k.pem", pem(key, cert, b"pw")), "pw"),
                           (write(tmp_path, "c.pfx", pfx), "pw")]:
        cred = _auth.credential_from_options(cert_opts(path, certificate_password=password))
        assert cred.validate() == []
        assert cred._loaded.fingerprint("sha256") == cert.fingerprint(hashes.SHA256()).hex()


@pytest.mark.parametrize("algorithm, alg, header, digest", [("sha256", "PS256", "x5t#S256", hashes.SHA256()),
                                                            ("sha1", "RS256", "x5t", hashes.SHA1())])
def test_client_assertion_shape_and_signature(tmp_path, keypair, algorithm, alg, header, digest):
    import base64
    import time

    import jwt
    key, cert = keypair
    cred = _auth.credential_from_options(cert_opts(write(tmp_path, "c.pem", pem(key, cert)),
                                                   certificate_thumbprint_algorithm=algorithm))
    cred.validate()
    endpoint = "https://login.example.test/%s/oauth2/v2.0/token" % TENANT
    assertion = cred._loaded.assertion(CLIENT, endpoint, algorithm)
    head = jwt.get_unverified_header(assertion)
    assert head["alg"] == alg and set(head) == {"alg", "typ", header}
    assert base64.urlsafe_b64decode(head[header] + "==") == cert.fingerprint(digest)
    claims = jwt.decode(assertion, cert.public_key(), algorithms=[alg], audience=endpoint)
    assert claims["iss"] == claims["sub"] == CLIENT and 590 <= claims["exp"] - time.time() <= 600
    assert cred._loaded.assertion(CLIENT, endpoint, algorithm) != assertion  # fresh jti each time


def test_ec_keys_are_refused(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec
    key, cert = make_cert(key=ec.generate_private_key(ec.SECP256R1()))
    assert "not an RSA key" in config_error(cert_opts(write(tmp_path, "ec.pem", pem(key, cert)))).message


def test_key_first_then_certificate_also_loads(tmp_path, keypair):
    key, cert = keypair
    data = pem(key, cert)
    split = data.index(b"-----BEGIN PRIVATE KEY")
    path = write(tmp_path, "rev.pem", data[split:] + data[:split])
    assert _auth.credential_from_options(cert_opts(path)).validate() == []


@pytest.mark.parametrize("case, option, words", [
    ("missing", "certificate_path", "not a file"),
    ("no_key", "certificate_path", "no private key"),
    ("no_cert", "certificate_path", "no certificate"),
    ("wrong_pem_password", "certificate_password", "cannot decrypt"),
    ("pem_needs_password", "certificate_password", "cannot decrypt"),
    ("wrong_pfx_password", "certificate_password", "cannot decrypt"),
    ("pfx_needs_password", "certificate_password", "without a password"),
    ("mismatch", "certificate_path", "does not belong"),
    ("expired", "certificate_path", "expired"),
    ("garbage", "certificate_path", "neither PEM nor a PFX"),
    ("bad_algorithm", "certificate_thumbprint_algorithm", "unknown value"),
])
def test_certificate_problems_name_the_option(tmp_path, keypair, case, option, words):
    key, cert = keypair
    other = make_cert()[0]
    password = None
    extra = {}
    if case == "missing":
        path = str(tmp_path / "nope.pem")
    elif case == "no_key":
        path = write(tmp_path, "c.pem", cert.public_bytes(serialization.Encoding.PEM))
    elif case == "no_cert":
        path = write(tmp_path, "c.pem", pem(key, cert)[len(cert.public_bytes(serialization.Encoding.PEM)):])
    elif case == "wrong_pem_password":
        path, password = write(tmp_path, "c.pem", pem(key, cert, b"right")), "wrong"
    elif case == "pem_needs_password":
        path = write(tmp_path, "c.pem", pem(key, cert, b"right"))
    elif case == "wrong_pfx_password":
        path, password = write(tmp_path, "c.pfx", pkcs12.serialize_key_and_certificates(
            b"x", key, cert, None, serialization.BestAvailableEncryption(b"right"))), "wrong"
    elif case == "pfx_needs_password":
        path = write(tmp_path, "c.pfx", pkcs12.serialize_key_and_certificates(
            b"x", key, cert, None, serialization.BestAvailableEncryption(b"right")))
    elif case == "mismatch":
        path = write(tmp_path, "c.pem", cert.public_bytes(serialization.Encoding.PEM) + pem(other, cert)[
            len(cert.public_bytes(serialization.Encoding.PEM)):])
    elif case == "expired":
        k, c = make_cert(days=-1)
        path = write(tmp_path, "c.pem", pem(k, c))
    elif case == "garbage":
        path = write(tmp_path, "c.bin", b"\x00\x01 not a certificate")
    else:
        path, extra = write(tmp_path, "c.pem", pem(key, cert)), dict(certificate_thumbprint_algorithm="md5")
    error = config_error(cert_opts(path, certificate_password=password, **extra))
    assert error.option == option and words in str(error)
    if password:
        assert password not in str(error)


def test_certificate_expiring_soon_warns(tmp_path):
    key, cert = make_cert(days=10)
    warnings = _auth.credential_from_options(cert_opts(write(tmp_path, "c.pem", pem(key, cert)))).validate()
    assert len(warnings) == 1 and "expires on" in warnings[0]


# ---- workload identity and Azure CLI (offline checks) ------------------------------------------------------

def test_federated_token_file_checks(tmp_path):
    import time

    import jwt
    assert config_error(opts(federated_token_file=str(tmp_path / "none"))).option == "federated_token_file"
    empty = tmp_path / "empty"
    empty.write_text("")
    assert "empty" in config_error(opts(federated_token_file=str(empty))).message
    token = tmp_path / "token"
    token.write_text(jwt.encode({"aud": "api://AzureADTokenExchange", "iss": "https://issuer", "sub": "s",
                                 "exp": int(time.time()) + 600}, "k" * 32))
    assert _auth.credential_from_options(opts(federated_token_file=str(token))).validate() == []
    token.write_text(jwt.encode({"aud": "api://other", "exp": int(time.time()) - 5}, "k" * 32))
    warnings = _auth.credential_from_options(opts(federated_token_file=str(token))).validate()
    assert any("audience" in w for w in warnings) and any("expired" in w for w in warnings)
    assert config_error(dict(federated_token_file=str(token), client_id=CLIENT)).option == "tenant_id"


def test_azure_cli_must_be_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert config_error(dict(azure_cli=True)).option == "azure_cli"
    az = tmp_path / "az"
    az.write_text("#!/bin/sh\nexit 0\n")
    az.chmod(az.stat().st_mode | stat.S_IXUSR)
    assert _auth.credential_from_options(dict(azure_cli=True)).validate() == []


def test_choosing_a_secret_does_not_import_azure_identity():
    import subprocess
    code = ("import sys\nfrom ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import options as _auth\n"
            "_auth.credential_from_options(dict(tenant_id='t.example', client_id='%s', client_secret='s')).validate()\n"
            "print('azure.identity' in sys.modules, 'azure' in sys.modules)\n" % CLIENT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ),
                         check=False)
    assert out.stdout.split() == ["False", "False"], out.stderr


# ---- instance discovery: off only for an overridden authority ----------------------------------------------
# Microsoft's clouds cannot be reached from the tests, so msal's constructor is replaced by a recorder here:
# this checks what we ask of msal / azure-identity, the emulator tests check that the override really works.

class _Recorded(Exception):
    pass


@pytest.mark.parametrize("authority_host, discovery", [(None, None), ("https://login.example.test", False)])
def test_msal_instance_discovery_stays_on_for_microsoft_clouds(monkeypatch, authority_host, discovery):
    import msal
    seen = {}

    def recorder(client_id, **kwargs):
        seen.update(kwargs, client_id=client_id)
        raise _Recorded()
    monkeypatch.setattr(msal, "ConfidentialClientApplication", recorder)
    cred = _auth.credential_from_options(opts(client_secret="s3cr3t-value", authority_host=authority_host))
    with pytest.raises(_Recorded):
        cred.get_token("https://outlook.office365.com/.default")
    assert seen["instance_discovery"] is discovery
    assert seen["authority"] == (authority_host or "https://login.microsoftonline.com") + "/" + TENANT


@pytest.mark.parametrize("cloud, authority_host", [("public", None), ("usgov", None), ("china", None),
                                                   ("public", "https://login.example.test")])
def test_azure_identity_discovery_and_authority(tmp_path, cloud, authority_host):
    token = tmp_path / "t"
    token.write_text("a.b.c")
    cred = _auth.credential_from_options(opts(federated_token_file=str(token), cloud=cloud,
                                              authority_host=authority_host, ca_path=None))
    kwargs = cred._library_kwargs()
    assert kwargs["authority"] == cred.cloud.authority_host
    assert kwargs.get("disable_instance_discovery", False) is bool(authority_host)
    assert "connection_verify" not in kwargs


@pytest.mark.parametrize("method, option", [("certificate", "certificate_path"), ("client_secret", "client_secret"),
                                            ("workload_identity", "federated_token_file"),
                                            ("federated_token_file", "federated_token_file")])
def test_explicit_method_without_its_option(method, option):
    error = config_error(opts(auth_method=method))
    assert error.option == option and "required" in error.message
