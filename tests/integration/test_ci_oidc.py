"""A CI job sends mail with workload identity federation and no token step (issue 28): send_mail through
ansible-playbook with nothing but the runner's environment (GitHub Actions' ID token request variables, or a GitLab
`id_tokens:` variable) and the tenant and client id. The emulator serves GitHub's token request endpoint and trusts
its issuer in the app's federated credential; the emulated Exchange SMTP endpoint checks the resulting token."""

import os

import pytest

from emulator import github_oidc, smtp_server
from helpers.playbook import run_playbook, smtp_env

MAILBOX = "builds@contoso.onmicrosoft.com"
SUBJECT = "repo:contoso/build:ref:refs/heads/main"
GITLAB = "https://gitlab.example"
GITLAB_SUBJECT = "project_path:contoso/build:ref_type:branch:ref:main"
# What the runner environment must not hold for the test to prove anything: any other credential.
OTHER_CREDENTIALS = dict.fromkeys(("AZURE_CLIENT_SECRET", "AZURE_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
                                   "AZURE_FEDERATED_TOKEN_FILE", "GITHUB_ACTIONS", "GITLAB_CI", "GITLAB_OIDC_TOKEN",
                                   "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"))


@pytest.fixture
def ci_app(emulator, tenant):
    made = emulator.create_app("ci-notifications", secret=False)
    tenant.add_federated_credential(made["app"], "github-build-main", github_oidc.ISSUER, SUBJECT)
    tenant.add_federated_credential(made["app"], "gitlab-build-main", GITLAB, GITLAB_SUBJECT)
    return made


@pytest.fixture
def smtp(emulator, tenant, ci_app):
    with smtp_server.clean_endpoint(emulator, allow=[(ci_app["client_id"], MAILBOX)]) as server:
        yield server


def send(**args):
    args = dict(dict(sender=MAILBOX, to=["team@example.com"], subject="Build 42 finished", body="All green."), **args)
    return [{"name": "send", "o365.smtp_oauth.send_mail": args}]


def job(emulator, smtp, ci_app, runner_env, tasks, verbosity=0):
    """ansible-playbook as the CI job runs it: the runner's variables, tenant and client id, no credential."""
    env = dict(OTHER_CREDENTIALS, AZURE_CLIENT_ID=ci_app["client_id"], **runner_env)
    return run_playbook(emulator, tasks, credential="none", env=smtp_env(smtp, env), verbosity=verbosity)


def files_holding(text, *folders):
    found = []
    for folder in folders:
        for root, _dirs, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                try:
                    with open(path, "rb") as handle:
                        if text.encode() in handle.read():
                            found.append(path)
                except OSError:
                    pass
    return found


def test_github_actions_job_sends_with_only_the_runner_environment(emulator, tenant, smtp, ci_app, tmp_path):
    runner = emulator.github_actions_env(SUBJECT)
    cache = tmp_path / "tokens"
    mark = tenant.log.mark()
    run = job(emulator, smtp, ci_app, dict(runner, O365_TOKEN_CACHE_DIR=str(cache), TMPDIR=str(tmp_path)),
              send() + send(subject="second task"), verbosity=3)
    assert run.rc == 0, run.output[-3000:]
    assert [r["sent_count"] for r in run.results] == [1, 1]
    assert [m.app_id for m in smtp.messages] == [ci_app["client_id"]] * 2
    # One OIDC token asked for the one Entra token the two tasks share (the cache), with the cloud's audience.
    [issued] = tenant.github_jobs[runner["ACTIONS_ID_TOKEN_REQUEST_URL"].split("/")[-1].split("?")[0]]["issued"]
    assert [e["status"] for e in tenant.log.since(mark) if e["part"] == "github"] == [200]
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.jwt_claims import decode_claims
    assert decode_claims(issued)["aud"] == "api://AzureADTokenExchange"
    # Neither the request token nor the OIDC token shows at -vvv or reaches a file (the cache holds only the
    # Entra token; the module's temporary files are under TMPDIR).
    for secret in (runner["ACTIONS_ID_TOKEN_REQUEST_TOKEN"], issued):
        assert secret not in run.output
        assert files_holding(secret, str(tmp_path)) == []
    assert os.listdir(str(cache))


def test_gitlab_job_sends_with_its_id_tokens_variable(emulator, smtp, ci_app):
    oidc = emulator.issue_federated_token(GITLAB, GITLAB_SUBJECT)
    run = job(emulator, smtp, ci_app, {"GITLAB_CI": "true", "GITLAB_OIDC_TOKEN": oidc}, send(), verbosity=3)
    assert run.rc == 0, run.output[-3000:]
    assert run.results[0]["sent_count"] == 1 and oidc not in run.output


def failure(run):
    assert run.rc != 0
    [result] = run.results
    assert result.get("failed") and "Traceback" not in run.output
    return result


def test_github_job_without_id_token_permission_names_it(emulator, smtp, ci_app):
    runner = emulator.github_actions_env(SUBJECT)
    runner.pop("ACTIONS_ID_TOKEN_REQUEST_URL")
    result = failure(job(emulator, smtp, ci_app, runner, send()))
    assert result["option"] == "federated_token_source"
    assert "ACTIONS_ID_TOKEN_REQUEST_URL is not set" in result["msg"]
    assert "permissions: id-token: write" in result["msg"]
    assert runner["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] not in str(result)
    assert smtp.messages == []


def test_github_chosen_outside_github_names_the_missing_variables(emulator, smtp, ci_app):
    result = failure(job(emulator, smtp, ci_app, {}, send(federated_token_source="github")))
    assert result["option"] == "federated_token_source"
    assert "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set" in result["msg"]


def test_gitlab_variable_named_but_empty(emulator, smtp, ci_app):
    result = failure(job(emulator, smtp, ci_app, {"GITLAB_CI": "true", "AZURE_OIDC": ""},
                         send(federated_token_variable="AZURE_OIDC")))
    assert result["option"] == "federated_token_variable"
    assert "AZURE_OIDC is empty" in result["msg"] and "id_tokens:" in result["msg"]


def test_github_subject_mismatch_names_the_source_and_the_subject(emulator, smtp, ci_app):
    runner = emulator.github_actions_env("repo:contoso/build:pull_request")
    result = failure(job(emulator, smtp, ci_app, runner, send()))
    assert result["option"] == "federated_token_source" and result["error_code"] == "AADSTS700213"
    assert "sub=repo:contoso/build:pull_request" in result["msg"] and "GitHub Actions job's OIDC token" in result["msg"]
