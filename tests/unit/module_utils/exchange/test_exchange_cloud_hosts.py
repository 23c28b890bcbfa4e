"""National-cloud hosts against the emulated tenant (issue 25, item 6): the DoD admin host Connect-ExchangeOnline
names (webmail.apps.mil) is where the admin API goes by default and a redirect there is followed, a redirect to any
other host is refused before the token is sent; the SMTP host and token scope per cloud are the ones Microsoft's
pages name (the emulator's own table, emulator/clouds.py, with its sources).

Real: the collection's token layer (msal, client secret), HttpClient, ExchangeAdminClient, the emulator's HTTPS
server, identity and admin API, and its SMTP endpoint. Mocked: name resolution only (helpers/loopback.py).
"""

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.options import token_provider_from_options
from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import CLOUD_NAMES, resolve_cloud
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.client import (
    ExchangeAdminClient, ExchangeCmdletError)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._http import HttpClient
from emulator import clouds
from helpers.loopback import resolved_to_loopback

SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture(autouse=True)
def no_system_ca(monkeypatch):
    # Only ca_path may make the emulator's certificate trusted.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_CA)
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_CA)


def admin_client(emulator, tenant, cloud, exchange_endpoint=None):
    options = dict(tenant_id=tenant.tenant_id, authority_host=emulator.url, ca_path=emulator.ca_path,
                   client_id=emulator.admin.client_id, client_secret=emulator.admin.client_secret)
    resolved = resolve_cloud(cloud, authority_host=emulator.url, exchange_endpoint=exchange_endpoint)
    http = HttpClient(token_provider_from_options(options, cloud=resolved), ca_path=emulator.ca_path)
    return ExchangeAdminClient(http, resolved, tenant.tenant_id, anchor_domain=tenant.domain)


def on_port(emulator, host):
    return "https://%s:%s" % (host, emulator.port)


def test_dod_goes_to_webmail_apps_mil_by_default():
    assert resolve_cloud("dod").exchange_endpoint == "https://%s" % clouds.CLOUDS["dod"]["admin_host"]


def test_a_dod_tenant_redirect_to_webmail_apps_mil_is_followed(emulator, tenant):
    """The tenant answers the configured endpoint with 302 to its cloud's admin host, as a DoD tenant reached under
    another name would: the client follows (the token goes to a host Microsoft names for DoD) and keeps it."""
    tenant.set_cloud("dod")
    tenant.exchange.admin_redirect = clouds.CLOUDS["dod"]["admin_host"]
    exchange = admin_client(emulator, tenant, "dod", exchange_endpoint=emulator.url)
    mark = tenant.log.mark()
    with resolved_to_loopback("webmail.apps.mil") as asked:
        assert exchange.invoke("Get-TransportConfig")
        exchange.invoke("Get-ServicePrincipal")
    entries = [e for e in tenant.log.since(mark) if e["part"] == "exchange"]
    assert [e["status"] for e in entries] == [302, 200, 200], entries
    assert asked and exchange.url.startswith(on_port(emulator, "webmail.apps.mil") + "/adminapi/beta/")


@pytest.mark.parametrize("cloud", ["public", "dod"])
def test_a_redirect_to_another_host_is_refused_before_the_token_is_sent(emulator, tenant, cloud):
    """Resolvable and serving the same certificate, yet not a host of this cloud: nothing is sent there. On the
    public cloud even DoD's admin host counts as another host."""
    tenant.set_cloud(cloud)
    other = "webmail.apps.mil" if cloud == "public" else "collector.example.net"
    tenant.exchange.admin_redirect = other
    exchange = admin_client(emulator, tenant, cloud, exchange_endpoint=emulator.url)
    mark = tenant.log.mark()
    with resolved_to_loopback(other) as asked:
        with pytest.raises(ExchangeCmdletError) as refused:
            exchange.invoke("Get-TransportConfig")
    assert "not a Microsoft Exchange host" in str(refused.value) and other in str(refused.value)
    assert asked == [] and [e["status"] for e in tenant.log.since(mark) if e["part"] == "exchange"] == [302]


@pytest.mark.parametrize("cloud", CLOUD_NAMES)
def test_smtp_host_and_scope_are_the_ones_microsoft_names_per_cloud(cloud):
    resolved = resolve_cloud(cloud)
    assert resolved.smtp_host == clouds.CLOUDS[cloud]["smtp_host"]
    assert resolved.smtp_scope == clouds.CLOUDS[cloud]["exchange"] + "/.default"


@pytest.mark.parametrize("cloud", ["usgov", "dod"])
def test_send_mail_reaches_the_clouds_smtp_host_with_the_clouds_token(emulator, tenant, monkeypatch, cloud):
    """No host given: send_mail's body takes the cloud's SMTP host and asks for the cloud's SMTP scope; the emulated
    tenant, living in that cloud, answers under the host Microsoft's endpoint list names and accepts only a token
    for its own Exchange resource."""
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.task import send_mail_task
    from helpers.spec import module_params
    monkeypatch.delenv("O365_SMTP_HOST", raising=False)
    tenant.set_cloud(cloud)
    mailbox = "noreply@" + tenant.domain
    app = emulator.create_app("cloud-sender", exchange_roles=("SMTP.SendAsApp",))
    tenant.exchange.allow_smtp(app["client_id"], mailbox, model="classic")
    resolved = resolve_cloud(cloud, authority_host=emulator.url)
    provider = token_provider_from_options(dict(tenant_id=tenant.tenant_id, authority_host=emulator.url,
                                                ca_path=emulator.ca_path, client_id=app["client_id"],
                                                client_secret=app["client_secret"]), cloud=resolved)
    params = module_params("send_mail", port=emulator.smtp.port, secure="starttls", sender=mailbox,
                           to=["bob@example.com"], subject="s", rate_limit=0, timeout=10, ca_path=emulator.ca_path)
    with resolved_to_loopback(clouds.CLOUDS[cloud]["smtp_host"]) as asked:
        result = send_mail_task(params, False, provider.token_source(resolved.smtp_scope), resolved.smtp_host)
    assert asked and result["changed"], result
