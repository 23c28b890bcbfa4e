"""Managed identity, workload identity, Azure CLI and a ready access token against the emulated tenant, through
the real azure-identity code (imported by these kinds only): tokens, AADSTS answers, TLS via ca_path, file cache."""

import json
import os
import stat
import sys
import textwrap

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import options as _auth
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.jwt_claims import decode_claims

EXCHANGE = "https://outlook.office365.com/.default"
GRAPH = "https://graph.microsoft.com/.default"
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"  # public CAs only: never trusts the emulator
GITHUB = "https://token.actions.githubusercontent.com"
SUBJECT = "repo:contoso/mail-relay:environment:prod"


@pytest.fixture
def base(emulator, tenant, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_CA)
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_CA)
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "IMDS_ENDPOINT", "AZURE_CLIENT_ID",
                 "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    return dict(tenant_id=tenant.tenant_id, authority_host=emulator.url, ca_path=emulator.ca_path)


def requests_of(tenant, mark, part):
    return [e for e in tenant.log.since(mark) if e["part"] == part]


# ---- managed identity (App Service form: IDENTITY_ENDPOINT / IDENTITY_HEADER, as on Azure) ----------------------

@pytest.fixture
def msi(emulator, monkeypatch, base):
    for name, value in emulator.msi_env().items():
        monkeypatch.setenv(name, value)
    return emulator.managed_identities


def test_system_assigned_managed_identity(emulator, tenant, base, msi):
    mark = tenant.log.mark()
    token = _auth.credential_from_options(dict(base, managed_identity=True)).get_token(EXCHANGE)
    claims = decode_claims(token.token)
    assert claims["appid"] == msi.system_client_id and claims["aud"] == "https://outlook.office365.com"
    assert token.expires_on == claims["exp"]
    assert len(requests_of(tenant, mark, "msi")) == 1


def test_user_assigned_managed_identity(emulator, base, msi):
    options = dict(base, managed_identity_client_id=msi.user_client_id)
    assert decode_claims(_auth.credential_from_options(options).get_token(GRAPH).token)["appid"] == msi.user_client_id


def test_unknown_user_assigned_identity_names_its_option(base, msi):
    options = dict(base, managed_identity_client_id="00000000-0000-4000-8000-0000000000aa")
    with pytest.raises(AuthError) as info:
        _auth.credential_from_options(options).get_token(EXCHANGE)
    assert info.value.option == "managed_identity_client_id" and "managed identity" in info.value.message


def test_managed_identity_file_cache_one_request_for_twenty_tasks(tenant, base, msi, tmp_path):
    options = dict(base, managed_identity=True, token_cache_dir=str(tmp_path / "tokens"))
    mark = tenant.log.mark()
    tokens = {_auth.token_provider_from_options(options).get_token(EXCHANGE) for _task in range(20)}
    assert len(tokens) == 1 and len(requests_of(tenant, mark, "msi")) == 1


def test_managed_identity_retries_503(tenant, base, msi):
    tenant.faults.add("msi", kind="status", status=503, times=1)
    mark = tenant.log.mark()
    assert _auth.credential_from_options(dict(base, managed_identity=True)).get_token(EXCHANGE).token
    assert [e["status"] for e in requests_of(tenant, mark, "msi")] == [503, 200]


# ---- workload identity federation (a token file, as GitHub Actions / Kubernetes provide) ------------------------

@pytest.fixture
def federated_app(emulator, tenant):
    made = emulator.create_app("ci-relay", exchange_roles=("Exchange.ManageAsApp",), secret=False)
    tenant.add_federated_credential(made["app"], "github-prod", GITHUB, SUBJECT)
    return made


def token_file(tmp_path, emulator, issuer=GITHUB, subject=SUBJECT, **kw):
    path = tmp_path / "federated.jwt"
    path.write_text(emulator.issue_federated_token(issuer, subject, **kw))
    return str(path)


def test_workload_identity_gets_a_token(emulator, tenant, base, federated_app, tmp_path):
    options = dict(base, client_id=federated_app["client_id"], federated_token_file=token_file(tmp_path, emulator))
    credential = _auth.credential_from_options(options)
    assert credential.kind == "workload_identity" and credential.validate() == []
    mark = tenant.log.mark()
    claims = decode_claims(credential.get_token(EXCHANGE).token)
    assert claims["appid"] == federated_app["client_id"] and claims["roles"] == ["Exchange.ManageAsApp"]
    paths = [e["path"] for e in requests_of(tenant, mark, "identity")]
    assert paths[-1].endswith("/oauth2/v2.0/token") and not [p for p in paths if "discovery/instance" in p]


@pytest.mark.parametrize("case, code", [
    ("subject", "AADSTS700213"), ("issuer", "AADSTS700211"), ("audience", "AADSTS70021"), ("expired", "AADSTS700024"),
])
def test_workload_identity_mismatches_are_explained(emulator, base, federated_app, tmp_path, case, code):
    kw = {"subject": {"subject": "repo:contoso/mail-relay:ref:refs/heads/main"},
          "issuer": {"issuer": "https://kubernetes.example/oidc"},
          "audience": {"audience": "api://SomethingElse"},
          "expired": {"lifetime": -400}}[case]
    options = dict(base, client_id=federated_app["client_id"], federated_token_file=token_file(tmp_path, emulator, **kw))
    with pytest.raises(AuthError) as info:
        _auth.credential_from_options(options).get_token(EXCHANGE)
    error = info.value
    assert error.code == code and error.option == "federated_token_file"
    if case != "expired":
        # The token's own iss / sub are shown: exactly what the federated credential must match.
        assert "sub=%s" % kw.get("subject", SUBJECT) in error.message and error.details["token_iss"]
    else:
        assert "clock" in error.fix


def test_workload_identity_needs_ca_path(emulator, base, federated_app, tmp_path):
    options = dict(base, client_id=federated_app["client_id"], federated_token_file=token_file(tmp_path, emulator))
    options.pop("ca_path")
    with pytest.raises(AuthError) as info:
        _auth.credential_from_options(options).get_token(EXCHANGE)
    assert info.value.code == "tls_failed" and info.value.option == "ca_path"


# ---- Azure CLI: a stand-in `az` (the real CLI needs a real cloud login) that prints what
# `az account get-access-token` prints, with a token the emulator issued --------------------------------------------

AZ = textwrap.dedent("""\
    #!%s
    import json, sys
    with open(%r, "a") as log:
        log.write(json.dumps(sys.argv[1:]) + "\\n")
    answer = json.load(open(%r))
    if "error" in answer:
        sys.stderr.write(answer["error"])
        sys.exit(1)
    print(json.dumps(answer))
""")


@pytest.fixture
def fake_az(tmp_path, monkeypatch):
    folder = tmp_path / "bin"
    folder.mkdir()
    calls, answer = tmp_path / "az-calls", tmp_path / "az-answer.json"
    script = folder / "az"
    script.write_text(AZ % (sys.executable, str(calls), str(answer)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(folder) + os.pathsep + os.environ["PATH"])

    def answer_with(payload):
        answer.write_text(json.dumps(payload))
        return calls
    return answer_with


def test_azure_cli_token(emulator, tenant, base, fake_az):
    issued = tenant.tokens.issue(emulator.admin.client_id, audience="https://outlook.office365.com")
    exp = decode_claims(issued)["exp"]
    calls = fake_az({"accessToken": issued, "expiresOn": "2099-01-01 00:00:00.000000", "expires_on": exp,
                     "subscription": "00000000-0000-0000-0000-000000000000", "tenant": tenant.tenant_id,
                     "tokenType": "Bearer"})
    token = _auth.credential_from_options(dict(base, azure_cli=True)).get_token(EXCHANGE)
    assert token.token == issued and token.expires_on == exp
    argv = json.loads(calls.read_text().splitlines()[0])
    assert argv[:2] == ["account", "get-access-token"]
    assert argv[argv.index("--resource") + 1] == "https://outlook.office365.com"
    assert argv[argv.index("--tenant") + 1] == tenant.tenant_id


def test_azure_cli_not_logged_in(base, fake_az):
    fake_az({"error": "ERROR: Please run 'az login' to setup account."})
    with pytest.raises(AuthError) as info:
        _auth.credential_from_options(dict(base, azure_cli=True)).get_token(EXCHANGE)
    assert info.value.option == "azure_cli" and "az login" in info.value.fix


# ---- a ready access token --------------------------------------------------------------------------------------

def test_ready_access_token_is_used_without_any_request(emulator, tenant, base, tmp_path):
    issued = _auth.credential_from_options(dict(base, client_id=emulator.admin.client_id,
                                                client_secret=emulator.admin.client_secret)).get_token(EXCHANGE)
    mark = tenant.log.mark()
    provider = _auth.token_provider_from_options(dict(access_token=issued.token, token_cache_dir=str(tmp_path / "c")))
    assert provider.get_token(EXCHANGE) == issued.token
    # msal reports expires_in (counted from its clock), the ready token its own exp claim: a second apart at most.
    assert abs(provider.get_access_token(EXCHANGE).expires_on - issued.expires_on) <= 1
    assert tenant.log.since(mark) == []
    assert not (tmp_path / "c").exists()  # nothing to cache: the token is already in the play


def test_identity_kinds_load_azure_identity_only_when_asked(emulator, base):
    import subprocess
    code = textwrap.dedent("""
        import sys
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import options as _auth
        cred = _auth.credential_from_options(dict(managed_identity=True))
        cred.validate()
        before = 'azure.identity' in sys.modules
        token = cred.get_token('https://outlook.office365.com/.default')
        print(before, 'azure.identity' in sys.modules, bool(token.token))
    """)
    env = dict(os.environ, **emulator.msi_env())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert out.stdout.split() == ["False", "True", "True"], out.stderr


def test_workload_identity_unknown_issuer_keys_50166(emulator, tenant, base, tmp_path):
    from emulator.tokens import ExternalIssuer
    made = emulator.create_app("unknown-issuer", secret=False)
    issuer = ExternalIssuer("https://oidc.unknown.example")  # never published to the tenant
    tenant.add_federated_credential(made["app"], "unknown", issuer.issuer, SUBJECT)
    path = tmp_path / "federated.jwt"
    path.write_text(issuer.issue(SUBJECT, "api://AzureADTokenExchange"))
    with pytest.raises(AuthError) as info:
        _auth.credential_from_options(dict(base, client_id=made["client_id"], federated_token_file=str(path))
                                      ).get_token(EXCHANGE)
    assert info.value.code == "AADSTS50166" and info.value.option == "federated_token_file"


def test_workload_identity_429_is_retried_by_azure_identity(emulator, tenant, base, federated_app, tmp_path):
    tenant.faults.add("identity", match="/oauth2/v2.0/token", kind="status", status=429, retry_after=1, times=1)
    options = dict(base, client_id=federated_app["client_id"], federated_token_file=token_file(tmp_path, emulator))
    mark = tenant.log.mark()
    assert _auth.credential_from_options(options).get_token(EXCHANGE).token
    statuses = [e["status"] for e in requests_of(tenant, mark, "identity") if e["path"].endswith("/token")]
    assert statuses == [429, 200]
