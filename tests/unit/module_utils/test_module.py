"""O365Module in-process: the real AnsibleModule (arguments patched in as Ansible would pass them), option
validation naming the option, environment fallbacks, one redacted fail_json per error kind, lazy clients."""

import json
import time

import jwt
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import MissingLibraryError, ServiceError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import AUTH_ARGUMENT_SPEC, O365Module

ENV_NAMES = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
             "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE", "O365_CLOUD", "AZURE_AUTHORITY_HOST",
             "O365_GRAPH_ENDPOINT", "O365_EXCHANGE_ENDPOINT", "O365_CA_PATH", "O365_TOKEN_CACHE_DIR")
SPEC = dict(name=dict(type="str", required=True), count=dict(type="int", default=1))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _module_side(module_side):
    return module_side


def run_module(capsys, args, fn=None, spec=None, **kw):
    """Build the module from args, run fn(module) through O365Module.run; the JSON the module printed."""
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module = O365Module(spec or SPEC, **kw)
            module.run(fn or (lambda module: {"changed": False}))
    return json.loads(capsys.readouterr().out)


def a_jwt(**claims):
    claims.setdefault("exp", int(time.time()) + 3600)
    claims.setdefault("aud", "https://graph.microsoft.com")
    return jwt.encode(claims, "k" * 32, algorithm="HS256")


def test_every_shared_option_is_declared_with_its_env_fallback():
    fallbacks = dict((name, spec["fallback"][1][0]) for name, spec in AUTH_ARGUMENT_SPEC.items() if "fallback" in spec)
    assert set(fallbacks.values()) == set(ENV_NAMES)
    assert set(n for n, s in AUTH_ARGUMENT_SPEC.items() if s.get("no_log")) == {
        "client_secret", "certificate_password", "access_token"}
    assert AUTH_ARGUMENT_SPEC["ca_path"]["type"] == "path"


def test_bad_choice_names_the_option(capsys):
    result = run_module(capsys, {"name": "x", "cloud": "mars"})
    assert result["failed"] and "cloud" in result["msg"] and "public" in result["msg"]


@pytest.mark.parametrize("value", ["", 3, "[oops", ["fine=1", 7]])
def test_a_value_that_is_no_dictionary_names_the_option(capsys, value):
    spec = dict(SPEC, items=dict(type="list", elements="dict", options=dict(key=dict(type="str"))))
    result = run_module(capsys, {"name": "x", "items": value}, spec=spec)
    assert result["failed"] and "items" in result["msg"], result["msg"]


def test_missing_required_option_is_named(capsys):
    result = run_module(capsys, {})
    assert result["failed"] and "name" in result["msg"]


def test_env_fallbacks_fill_options_and_secrets_stay_hidden(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("AZURE_TENANT_ID", "contoso.onmicrosoft.com")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "env-secret-value-1")
    monkeypatch.setenv("O365_CLOUD", "usgov")
    monkeypatch.setenv("O365_CA_PATH", str(tmp_path / "ca.pem"))
    seen = {}

    def body(module):
        seen.update(module.params)
        return {"changed": False, "echo": "env-secret-value-1"}

    result = run_module(capsys, {"name": "x"}, body)
    assert seen["tenant_id"] == "contoso.onmicrosoft.com" and seen["cloud"] == "usgov"
    assert seen["ca_path"] == str(tmp_path / "ca.pem")
    assert "env-secret-value-1" not in json.dumps(result), "a no_log value from the environment is censored too"


def test_o365_error_is_one_redacted_failure_with_option_code_fix_and_request_id(capsys):
    def body(module):
        raise ServiceError("denied for secret-in-msg-42", option="client_id", code="Authorization_RequestDenied",
                           fix="grant Application.ReadWrite.All", request_id="rid-123", status=403)

    result = run_module(capsys, {"name": "x", "client_secret": "secret-in-msg-42"}, body)
    assert result["failed"] and result["option"] == "client_id"
    assert result["error_code"] == "Authorization_RequestDenied" and result["error_request_id"] == "rid-123"
    assert result["msg"].startswith("client_id: denied for ********")
    assert "Fix: grant Application.ReadWrite.All" in result["msg"] and "rid-123" in result["msg"]
    assert "secret-in-msg-42" not in json.dumps(result)


@pytest.mark.parametrize("option", ["client_secret", "certificate_password", "access_token"])
def test_every_secret_kind_is_redacted_from_unexpected_errors(capsys, monkeypatch, option):
    from ansible.module_utils._internal import _traceback
    # What -vvv asks for (the module caches the setting per process, so set it directly).
    monkeypatch.setattr(_traceback, "_module_tracebacks_enabled_events", frozenset([_traceback.TracebackEvent.ERROR]))
    value = a_jwt(sub="x") if option == "access_token" else "Sup3r-%s-value" % option
    bearer = "Bearer abc.def-not-a-jwt"

    def body(module):
        raise RuntimeError("boom with %s and header %s and token %s" % (value, bearer, a_jwt(sub="other")))

    result = run_module(capsys, {"name": "x", option: value}, body)
    text = json.dumps(result)
    assert result["failed"] and result["msg"].startswith("unexpected error (RuntimeError): boom")
    assert "Traceback" not in result["msg"] and "Traceback" in result["exception"]
    assert value not in text and "abc.def-not-a-jwt" not in text and "eyJ" not in text


def test_missing_library_uses_ansible_wording(capsys):
    def body(module):
        raise MissingLibraryError("msal", "client secret and certificate credentials")

    result = run_module(capsys, {"name": "x"}, body)
    assert result["failed"] and "Failed to import the required Python library (msal)" in result["msg"]
    assert "client secret and certificate credentials" in result["msg"] and result["error_fix"] == "pip install msal"


def test_config_error_from_credential_choice_names_the_option(capsys):
    result = run_module(capsys, {"name": "x"}, lambda module: module.token_provider)
    assert result["failed"] and result["option"] == "auth_method" and "no credential" in result["msg"]


def test_credential_warnings_are_surfaced(capsys):
    token = a_jwt(tid="00000000-0000-0000-0000-000000000001")
    result = run_module(capsys, {"name": "x", "access_token": token, "client_secret": "ignored-secret"},
                        lambda module: (module.token_provider, {"changed": False})[1])
    assert not result.get("failed"), result
    assert "client_secret ignored: access_token takes precedence" in json.dumps(result.get("warnings")), result
    assert token not in json.dumps(result)


def test_the_body_returns_the_result_and_run_exits_with_it(capsys):
    assert run_module(capsys, {"name": "x"}, lambda module: {"changed": True, "n": 1})["n"] == 1

    def body(module):
        return dict(changed=False, count=module.params["count"], check=module.check_mode)

    result = run_module(capsys, {"name": "x", "count": 3, "_ansible_check_mode": True}, body)
    assert result["count"] == 3 and result["check"] is True and not result.get("failed")


def test_a_failed_result_fails_the_task_and_keeps_its_keys(capsys):
    result = run_module(capsys, {"name": "x"}, lambda module: {"changed": True, "failed": True, "msg": "half done",
                                                               "created": "id-1"})
    assert result["failed"] is True and result["msg"] == "half done" and result["created"] == "id-1"
    assert result["changed"] is True


def test_a_body_without_result_is_reported(capsys):
    result = run_module(capsys, {"name": "x"}, lambda module: None)
    assert result["failed"] and "returned NoneType instead of a result" in result["msg"]


def test_module_options_validated_with_wrapper_constraints(capsys):
    result = run_module(capsys, {"name": "x", "azure_cli": True, "managed_identity": True},
                        mutually_exclusive=[("azure_cli", "managed_identity")])
    assert result["failed"] and "azure_cli" in result["msg"] and "managed_identity" in result["msg"]


def test_clients_are_lazy_and_reused(capsys, emulator, tenant, monkeypatch):
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    mark = tenant.log.mark()

    def body(module):
        assert module._http is None and module._token_provider is None
        http = module.http
        assert module.http is http and module.token_provider is http.token_provider
        response = http.request("GET", module.cloud.graph_endpoint + "/v1.0/applications",
                                scope=module.cloud.graph_scope)
        return {"changed": False, "status": response.status}

    result = run_module(capsys, {"name": "x"}, body)
    assert result["status"] == 200
    parts = [e["part"] for e in tenant.log.since(mark)]
    assert parts[-1] == "graph" and set(parts) == {"identity", "graph"}, "token, then one Graph request"
    assert emulator.admin.client_secret not in json.dumps(result)
