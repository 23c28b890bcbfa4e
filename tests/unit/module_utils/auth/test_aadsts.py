"""_aadsts: every identity-platform refusal becomes code + meaning + option + fix.

These feed the shapes each library produces (msal's dict, azure-identity's exception text, msal's tenant
discovery ValueError); test_auth_msal.py and test_auth_identity.py drive the same translations from the emulator's real answers.
"""

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.aadsts import (
    aadsts_code, known_codes, translate_aadsts)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError

CORRELATION = "aaaa0000-bb11-2222-33cc-444444dddddd"
TRACE = "0000aaaa-11bb-cccc-dd22-eeeeee333333"


def msal_answer(code, text, error="invalid_client"):
    return {"error": error, "error_codes": [code], "correlation_id": CORRELATION, "trace_id": TRACE,
            "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: 2026-11-25 10:00:00Z"
                                 % (code, text, TRACE, CORRELATION)}


@pytest.mark.parametrize("code, option, words", [
    (7000215, "client_secret", "Secret ID"),
    (7000222, "client_secret", "new secret"),
    (700016, "client_id", "Application (client) ID"),
    (700027, "certificate_path", "upload this certificate"),
    (50059, "tenant_id", "tenant ID"),
    (90002, "tenant_id", "national-cloud"),
    (70021, "federated_token_file", "subject"),
    (700213, "federated_token_file", "issuer"),
    (700023, "tenant_id", "never common"),
    (50034, "tenant_id", "tenant"),
    (500011, "cloud", "Exchange Online"),
    (7000112, "client_id", "re-enable"),
    (1002012, None, "/.default"),
    (65001, "client_id", "admin consent"),
])
def test_known_codes_name_option_and_fix(code, option, words):
    error = translate_aadsts(msal_answer(code, "Microsoft's own sentence."))
    assert isinstance(error, AuthError)
    assert error.code == "AADSTS%d" % code
    assert error.option == option
    assert words in error.fix
    assert error.request_id == CORRELATION
    assert error.details["trace_id"] == TRACE
    # Microsoft's first line is kept, its Trace/Correlation trailer is not repeated in the message.
    assert "Microsoft's own sentence." in error.message and "Timestamp" not in error.message


def test_every_required_code_is_in_the_table():
    required = {7000215, 7000222, 700016, 700027, 700024, 50059, 70021, 700213, 90002, 700023, 50034, 500011,
                7000112, 1002012, 65001}
    assert required <= set(known_codes())


def test_clock_skew_names_the_credential_in_use():
    text = msal_answer(700024, "Client assertion is not within its valid time range.")
    assert translate_aadsts(text, option_hint="certificate_path").option == "certificate_path"
    assert translate_aadsts(text, option_hint="federated_token_file").option == "federated_token_file"
    assert "clock" in translate_aadsts(text).fix


def test_azure_identity_exception_text():
    # azure-identity raises ClientAuthenticationError whose text embeds Microsoft's description.
    text = ("WorkloadIdentityCredential authentication failed: AADSTS700213: No matching federated identity record "
            "found for presented assertion subject 'repo:org/repo:ref:refs/heads/main'.\r\nTrace ID: %s\r\n"
            "Correlation ID: %s\r\nTimestamp: 2026-11-25 10:00:00Z" % (TRACE, CORRELATION))
    error = translate_aadsts(Exception(text), option_hint="federated_token_file")
    assert error.code == "AADSTS700213" and error.request_id == CORRELATION
    assert error.details["trace_id"] == TRACE
    assert "repo:org/repo" in error.message


def test_msal_tenant_discovery_value_error():
    # msal raises ValueError with the raw discovery answer when the tenant does not exist.
    text = ('OIDC Discovery failed on https://login.example/nope.example/v2.0/.well-known/openid-configuration. '
            'HTTP status: 400, Error: {"error":"invalid_tenant","error_description":"AADSTS90002: Tenant '
            '\'nope.example\' not found."}')
    error = translate_aadsts(text, option_hint="tenant_id")
    assert error.code == "AADSTS90002" and error.option == "tenant_id"


def test_unknown_code_keeps_microsofts_text_and_links_the_code():
    error = translate_aadsts(msal_answer(99999999, "Something new happened."), option_hint="client_secret")
    assert error.code == "AADSTS99999999"
    assert "Something new happened." in error.message
    assert "code=99999999" in error.fix
    assert error.option == "client_secret"


def test_answer_without_any_code():
    error = translate_aadsts({"error": "temporarily_unavailable", "error_description": "Try again."})
    assert error.code == "temporarily_unavailable" and "Try again." in error.message
    assert translate_aadsts("").message.endswith("refused the token request")
    assert aadsts_code("no code here") is None
    assert aadsts_code({"error_codes": ["7000215"]}) == 7000215


def test_to_result_keeps_code_fix_and_request_id():
    result = translate_aadsts(msal_answer(7000215, "Invalid client secret provided.")).to_result()
    assert result["error_code"] == "AADSTS7000215" and result["option"] == "client_secret"
    assert result["error_request_id"] == CORRELATION and "Secret ID" in result["error_fix"]
