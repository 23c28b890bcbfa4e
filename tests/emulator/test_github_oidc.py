"""The emulated GitHub Actions ID token request endpoint answers as GitHub documents it (emulator/github_oidc.py)."""

import jwt

from emulator import github_oidc

SUBJECT = "repo:contoso/build:ref:refs/heads/main"


def claims(emulator, token):
    issuer = emulator.tenant.external_issuers[github_oidc.ISSUER]
    return jwt.decode(token, issuer.key.public_key(), algorithms=["RS256"], options={"verify_aud": False})


def test_token_for_the_asked_audience_signed_by_the_trusted_issuer(emulator, tenant, http):
    runner = emulator.github_actions_env(SUBJECT)
    answer = http.get(runner["ACTIONS_ID_TOKEN_REQUEST_URL"] + "&audience=api://AzureADTokenExchange",
                      headers={"Authorization": "Bearer " + runner["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]})
    assert answer.status_code == 200 and set(answer.json()) == {"value"}
    seen = claims(emulator, answer.json()["value"])
    assert (seen["iss"], seen["sub"], seen["aud"]) == (github_oidc.ISSUER, SUBJECT, "api://AzureADTokenExchange")
    assert seen["exp"] - seen["iat"] == github_oidc.LIFETIME


def test_without_audience_the_token_is_for_the_repository_owner(emulator, tenant, http):
    runner = emulator.github_actions_env(SUBJECT, owner="contoso")
    answer = http.get(runner["ACTIONS_ID_TOKEN_REQUEST_URL"],
                      headers={"Authorization": "bearer " + runner["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]})
    assert claims(emulator, answer.json()["value"])["aud"] == "https://github.com/contoso"


def test_a_wrong_or_missing_request_token_is_refused(emulator, tenant, http):
    runner = emulator.github_actions_env(SUBJECT)
    other = emulator.github_actions_env(SUBJECT)
    url = runner["ACTIONS_ID_TOKEN_REQUEST_URL"]
    for headers in ({}, {"Authorization": "Bearer " + other["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]},
                    {"Authorization": runner["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]}):
        assert http.get(url, headers=headers).status_code == 401
    [job] = [j for j in tenant.github_jobs.values() if j["request_token"] == runner["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]]
    assert job["issued"] == []
