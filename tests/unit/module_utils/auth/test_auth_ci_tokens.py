"""federated_token_source: a CI job's own OIDC token for workload identity (issue 28). Choosing the source and
rejecting missing CI variables offline, naming the option; then GitHub's token request endpoint as the emulator
serves it (the bearer request token, the cloud's audience, a token asked anew for each Entra token)."""

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import ci_tokens
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import options as _auth
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.jwt_claims import decode_claims
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError, ConfigError

TENANT = "8a6b7c1d-0000-4000-8000-000000000001"
CLIENT = "11111111-2222-4333-8444-555555555555"
GITHUB_ENV = {"GITHUB_ACTIONS": "true", "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.example/idtoken?api-version=2.0",
              "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token-value"}
SUBJECT = "repo:contoso/build:ref:refs/heads/main"
EXCHANGE = "https://outlook.office365.com/.default"


def opts(**kw):
    return dict(dict(tenant_id=TENANT, client_id=CLIENT), **kw)


def credential(options, environ):
    made = _auth.credential_from_options(options, environ=environ)
    made.validate()
    return made


def config_error(options, environ):
    with pytest.raises(ConfigError) as info:
        credential(options, environ)
    return info.value


# ---- choosing the source -----------------------------------------------------------------------------------

@pytest.mark.parametrize("environ, options, source", [
    (GITHUB_ENV, {}, "github"),                                                  # detected, nothing else set
    ({"GITLAB_CI": "true", "GITLAB_OIDC_TOKEN": "x.y.z"}, {}, "gitlab"),
    ({}, {"federated_token_source": "github"}, "github"),                        # chosen (errors: see below)
    (GITHUB_ENV, {"auth_method": "workload_identity"}, "github"),
    (GITHUB_ENV, {"federated_token_file": "/f"}, "file"),                        # the file step still works
    ({}, {"federated_token_source": "GitLab", "federated_token_variable": "AZURE_OIDC"}, "gitlab"),
])
def test_the_source_is_detected_or_chosen(environ, options, source):
    made = _auth.credential_from_options(opts(**options), environ=environ)
    assert made.kind == "workload_identity"
    assert (made.token_source.name if made.token_source else "file") == source


@pytest.mark.parametrize("options, kind", [
    (dict(client_secret="s3cr3t"), "client_secret"),
    (dict(managed_identity=True), "managed_identity"),
    (dict(azure_cli=True), "azure_cli"),
])
def test_a_detected_ci_never_overrides_a_credential_that_is_set(options, kind):
    made = _auth.credential_from_options(opts(**options), environ=GITHUB_ENV)
    assert made.kind == kind and made.notes == []


def test_no_ci_and_no_credential_is_still_no_credential():
    error = config_error(opts(), {"GITHUB_ACTIONS": "false"})
    assert error.option == "auth_method" and "federated_token_source" in error.fix


def test_a_chosen_source_with_a_file_warns_that_the_file_is_ignored():
    made = credential(opts(federated_token_source="github", federated_token_file="/f"), GITHUB_ENV)
    assert made.validate() == ["federated_token_file ignored: federated_token_source is github"]


def test_unknown_source_names_the_option():
    assert config_error(opts(federated_token_source="jenkins"), {}).option == "federated_token_source"


def test_github_without_id_token_permission_names_it():
    environ = dict(GITHUB_ENV)
    environ.pop("ACTIONS_ID_TOKEN_REQUEST_URL")
    error = config_error(opts(), environ)
    assert error.option == "federated_token_source"
    assert error.message.startswith("ACTIONS_ID_TOKEN_REQUEST_URL is not set")
    assert "permissions: id-token: write" in error.fix and "request-token-value" not in str(error)


def test_github_chosen_where_no_runner_set_the_variables():
    error = config_error(opts(federated_token_source="github"), {})
    assert "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set" in error.message
    assert "permissions: id-token: write" in error.fix


def test_github_request_url_must_be_https():
    error = config_error(opts(), dict(GITHUB_ENV, ACTIONS_ID_TOKEN_REQUEST_URL="http://pipelines.example/idtoken"))
    assert error.option == "federated_token_source" and "https://" in error.message


@pytest.mark.parametrize("environ, variable, text", [
    ({"GITLAB_CI": "true"}, None, "the variable GITLAB_OIDC_TOKEN is not set in the job's environment"),
    ({"GITLAB_CI": "true", "AZURE_OIDC": ""}, "AZURE_OIDC", "the variable AZURE_OIDC is empty"),
    ({"GITLAB_CI": "true", "AZURE_OIDC": "  \n"}, "AZURE_OIDC", "the variable AZURE_OIDC is empty"),
])
def test_gitlab_variable_missing_or_empty_names_it(environ, variable, text):
    error = config_error(opts(federated_token_variable=variable), environ)
    assert error.option == "federated_token_variable" and error.message == text
    assert "id_tokens:" in error.fix and "federated_token_variable" in error.fix


def test_gitlab_token_for_another_audience_warns(emulator):
    oidc = emulator.issue_federated_token("https://gitlab.example", "project_path:x", audience="https://gitlab.example")
    made = credential(opts(), {"GITLAB_CI": "true", "GITLAB_OIDC_TOKEN": oidc})
    [warning] = made.validate()
    assert "audience is 'https://gitlab.example'" in warning and oidc not in warning
    assert oidc in made.secrets()


@pytest.mark.parametrize("url, wanted", [
    ("https://h.example/idtoken?api-version=2.0", "https://h.example/idtoken?api-version=2.0&audience=api%3A%2F%2FAzureADTokenExchangeUSGov"),
    ("https://h.example/idtoken", "https://h.example/idtoken?audience=api%3A%2F%2FAzureADTokenExchangeUSGov"),
])
def test_github_request_url_carries_the_clouds_audience(url, wanted):
    made = _auth.credential_from_options(opts(cloud="usgov"), environ=dict(GITHUB_ENV, ACTIONS_ID_TOKEN_REQUEST_URL=url))
    assert made.token_source.request_url() == wanted


# ---- GitHub's token request endpoint (emulated) ----------------------------------------------------------------

@pytest.fixture
def ci_app(emulator, tenant):
    made = emulator.create_app("ci-notifications", exchange_roles=("Exchange.ManageAsApp",), secret=False)
    tenant.add_federated_credential(made["app"], "github-build-main", "https://token.actions.githubusercontent.com",
                                    SUBJECT)
    return made


@pytest.fixture
def base(emulator, tenant, monkeypatch):
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    return dict(tenant_id=tenant.tenant_id, authority_host=emulator.url, ca_path=emulator.ca_path)


def github_requests(tenant, mark):
    return [e["status"] for e in tenant.log.since(mark) if e["part"] == "github"]


def test_github_token_is_asked_for_each_entra_token(emulator, tenant, base, ci_app):
    runner = emulator.github_actions_env(SUBJECT)
    made = credential(dict(base, client_id=ci_app["client_id"]), runner)
    mark = tenant.log.mark()
    first, second = made.get_token(EXCHANGE), made.get_token(EXCHANGE)
    assert decode_claims(first.token)["appid"] == decode_claims(second.token)["appid"] == ci_app["client_id"]
    assert github_requests(tenant, mark) == [200, 200]
    [job] = tenant.github_jobs.values()
    assert [decode_claims(t)["aud"] for t in job["issued"]] == ["api://AzureADTokenExchange"] * 2
    assert set(made.secrets()) == {runner["ACTIONS_ID_TOKEN_REQUEST_TOKEN"], job["issued"][-1]}


def test_github_audience_follows_the_cloud(emulator, tenant, base, ci_app):
    made = credential(dict(base, client_id=ci_app["client_id"], cloud="china"), emulator.github_actions_env(SUBJECT))
    assert decode_claims(made.token_source())["aud"] == "api://AzureADTokenExchangeChina"


def test_github_refusing_the_request_token(emulator, tenant, base, ci_app):
    runner = dict(emulator.github_actions_env(SUBJECT), ACTIONS_ID_TOKEN_REQUEST_TOKEN="not-this-jobs-token")
    with pytest.raises(AuthError) as info:
        credential(dict(base, client_id=ci_app["client_id"]), runner).get_token(EXCHANGE)
    assert info.value.option == "federated_token_source" and info.value.code == "github_oidc_refused"
    assert "HTTP 401" in info.value.message and "not-this-jobs-token" not in str(info.value)


def test_github_endpoint_behind_an_unknown_ca_names_ca_path(emulator, base, ci_app):
    options = dict(base, client_id=ci_app["client_id"])
    options.pop("ca_path")
    made = credential(options, emulator.github_actions_env(SUBJECT))
    with pytest.raises(AuthError) as info:
        made.token_source()
    assert info.value.option == "ca_path" and info.value.code == "github_oidc_unreachable"


def test_subject_mismatch_names_the_source(emulator, base, ci_app):
    made = credential(dict(base, client_id=ci_app["client_id"]), emulator.github_actions_env("repo:contoso/fork:ref:x"))
    with pytest.raises(AuthError) as info:
        made.get_token(EXCHANGE)
    error = info.value
    assert error.code == "AADSTS700213" and error.option == "federated_token_source"
    assert "sub=repo:contoso/fork:ref:x" in error.message and "GitHub Actions job's OIDC token" in error.fix


def test_detect_platform():
    assert ci_tokens.detect_platform({"GITHUB_ACTIONS": "true", "GITLAB_CI": "true"}) == "github"
    assert ci_tokens.detect_platform({"GITLAB_CI": "TRUE"}) == "gitlab"
    assert ci_tokens.detect_platform({"GITHUB_ACTIONS": ""}) is None
