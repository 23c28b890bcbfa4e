"""A TLS failure reads the same whichever service the request was for (issue 27: four translations, three codes
before): code tls_failed, option ca_path, the fix naming the option that chose the host too; a trusted certificate
for another name is tls_name_mismatch, naming that option. Graph and the Exchange admin API go through their real
clients, the identity platform through msal and azure-identity, all against the emulator's real HTTPS server, whose
CA the machine's bundle does not hold. Only name resolution is mocked for the name-mismatch case (no DNS here).
"""

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.options import (
    credential_from_options,
    token_provider_from_options,
)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import resolve_cloud
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.graph import GraphClient
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import O365Error
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.client import ExchangeAdminClient
from ansible_collections.o365.smtp_oauth.plugins.module_utils._http import HttpClient
from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import Backoff

from helpers.loopback import resolved_to_loopback

SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"  # public CAs only, never the emulator's
EXCHANGE = "https://outlook.office365.com/.default"


@pytest.fixture
def untrusted(emulator, tenant, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_CA)
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_CA)
    return dict(tenant_id=tenant.tenant_id, client_id=emulator.admin.client_id,
                client_secret=emulator.admin.client_secret, authority_host=emulator.url, graph_endpoint=emulator.url,
                exchange_endpoint=emulator.url, ca_path=emulator.ca_path)


def clients(options, url=None):
    """Graph and Exchange clients whose HTTP client trusts only the system bundle; their tokens come with ca_path."""
    cloud = resolve_cloud("public", authority_host=options["authority_host"],
                          graph_endpoint=url or options["graph_endpoint"],
                          exchange_endpoint=url or options["exchange_endpoint"])
    http = HttpClient(token_provider_from_options(options, cloud=resolve_cloud(
        "public", authority_host=options["authority_host"])), ca_path=None)
    return GraphClient(http, cloud), ExchangeAdminClient(http, cloud, options["tenant_id"])


def failure(call):
    with pytest.raises(O365Error) as caught:
        call()
    return caught.value


def federated_token_file(emulator, tmp_path):
    path = tmp_path / "token"
    path.write_text(emulator.issue_federated_token("https://token.actions.githubusercontent.com", "repo:c/r:ref:x"))
    return str(path)


@pytest.mark.parametrize("service, endpoint_option", [
    ("graph", "graph_endpoint"), ("exchange", "exchange_endpoint"), ("identity_msal", "authority_host"),
    ("identity_azure", "authority_host")])
def test_an_untrusted_certificate_is_the_same_error_for_every_service(emulator, tenant, untrusted, tmp_path,
                                                                      service, endpoint_option):
    graph, exchange = clients(untrusted)
    calls = {
        "graph": lambda: graph.get("applications"),
        "exchange": lambda: exchange.invoke("Get-Mailbox"),
        "identity_msal": lambda: credential_from_options(dict(untrusted, ca_path=None)).get_token(EXCHANGE),
        "identity_azure": lambda: credential_from_options(dict(
            untrusted, ca_path=None, client_secret=None,
            federated_token_file=federated_token_file(emulator, tmp_path))).get_token(EXCHANGE),
    }
    mark = tenant.log.mark()
    error = failure(calls[service])
    assert (error.code, error.option) == ("tls_failed", "ca_path"), str(error)
    assert "could not be verified" in error.message and endpoint_option in error.fix
    assert "never turned off" in error.fix
    assert [e for e in tenant.log.since(mark) if e["part"] != "identity"] == [], "nothing reached the service"


@pytest.mark.parametrize("service, endpoint_option", [("graph", "graph_endpoint"), ("exchange", "exchange_endpoint")])
def test_a_certificate_for_another_name_names_the_endpoint_option(emulator, tenant, untrusted, monkeypatch, service,
                                                                  endpoint_option):
    # The emulator's certificate names 127.0.0.1, localhost and Microsoft's hosts, not this one.
    url = "https://o365-emulator.invalid:%d" % emulator.port
    graph, exchange = clients(untrusted, url=url)
    graph.http.ca_path = emulator.ca_path
    with resolved_to_loopback("o365-emulator.invalid"):
        error = failure(lambda: graph.get("applications") if service == "graph" else exchange.invoke("Get-Mailbox"))
    assert (error.code, error.option) == ("tls_name_mismatch", endpoint_option), str(error)
    assert "o365-emulator.invalid" in error.message and endpoint_option in error.fix


def test_a_refused_connection_names_the_service_and_its_endpoint_option(emulator, tenant, untrusted):
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    graph, exchange = clients(untrusted, url="https://127.0.0.1:%d" % port)
    graph.http.ca_path = emulator.ca_path
    graph.http.backoff = lambda: Backoff(max_attempts=1)
    error = failure(lambda: exchange.invoke("Get-Mailbox"))
    assert (error.code, error.option) == ("connection_failed", "exchange_endpoint"), str(error)
    assert "the Exchange admin API at 127.0.0.1:%d" % port in error.message
