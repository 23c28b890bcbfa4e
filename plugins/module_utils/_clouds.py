# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Endpoints of each national cloud, and the overrides for private or emulated endpoints.

A token's resource (the scope) never follows an endpoint override: tokens are always asked for the real
resource, only the address the request goes to changes. That keeps tests faithful to the real audiences.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError


class Cloud(object):
    """One national cloud. *_resource are token audiences; *_endpoint are where requests go."""

    __slots__ = ("name", "authority_host", "graph_resource", "graph_endpoint", "exchange_resource",
                 "exchange_endpoint", "exchange_admin_hosts", "smtp_host", "authority_overridden", "federated_audience")

    def __init__(self, name, authority_host, graph_resource, exchange_resource, smtp_host,
                 graph_endpoint=None, exchange_endpoint=None, authority_overridden=False, exchange_admin_hosts=()):
        self.name = name
        self.authority_host = authority_host.rstrip("/")
        self.graph_resource = graph_resource
        self.graph_endpoint = (graph_endpoint or graph_resource).rstrip("/")
        self.exchange_resource = exchange_resource
        self.exchange_endpoint = (exchange_endpoint or exchange_resource).rstrip("/")
        # Hosts Microsoft names for this cloud's Exchange admin endpoint: a redirect there is followed (and the
        # token sent), a redirect anywhere else is refused (_exchange/client.py).
        self.exchange_admin_hosts = tuple(exchange_admin_hosts)
        self.smtp_host = smtp_host
        # MSAL / azure-identity must skip instance discovery only for an authority they cannot know.
        self.authority_overridden = authority_overridden
        # What a federated identity credential's external token must carry in this cloud (Microsoft's workload
        # identity federation docs: one audience per cloud).
        self.federated_audience = FEDERATED_AUDIENCES.get(name, FEDERATED_AUDIENCES["public"])

    @property
    def graph_scope(self):
        return self.graph_resource + "/.default"

    @property
    def exchange_scope(self):
        """Scope of the Exchange admin API."""
        return self.exchange_resource + "/.default"

    @property
    def smtp_scope(self):
        """Scope of an SMTP XOAUTH2 token (app-only): the cloud's Exchange Online resource too, in every cloud
        (docs/development.md, National clouds; DoD's is an assumption there)."""
        return self.exchange_resource + "/.default"

    def authority(self, tenant_id):
        return "%s/%s" % (self.authority_host, tenant_id)

    def as_dict(self):
        return dict((key, getattr(self, key)) for key in self.__slots__)


# Office 365 Exchange Online's application ID, the same in every cloud: the resource of SMTP.SendAsApp.
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"

FEDERATED_AUDIENCES = {"public": "api://AzureADTokenExchange", "usgov": "api://AzureADTokenExchangeUSGov",
                       "dod": "api://AzureADTokenExchangeUSGov", "china": "api://AzureADTokenExchangeChina"}

# Sources (docs/development.md, "National clouds"): SMTP hosts from Microsoft's endpoint lists (Worldwide ID 2
# smtp.office365.com:587; GCC High ID 5 outlook.office365.us:587; DoD ID 4 outlook-dod.office365.us and
# webmail.apps.mil, 587); the admin host from Connect-ExchangeOnline's -ConnectionUri (DoD: webmail.apps.mil).
# What is unconfirmed is an assumption there, and every endpoint can be overridden.
_CLOUDS = {
    "public": dict(authority_host="https://login.microsoftonline.com", graph_resource="https://graph.microsoft.com",
                   exchange_resource="https://outlook.office365.com", smtp_host="smtp.office365.com",
                   exchange_admin_hosts=("outlook.office365.com",)),
    "usgov": dict(authority_host="https://login.microsoftonline.us", graph_resource="https://graph.microsoft.us",
                  exchange_resource="https://outlook.office365.us", smtp_host="outlook.office365.us",
                  exchange_admin_hosts=("outlook.office365.us",)),
    "dod": dict(authority_host="https://login.microsoftonline.us", graph_resource="https://dod-graph.microsoft.us",
                exchange_resource="https://outlook-dod.office365.us", exchange_endpoint="https://webmail.apps.mil",
                smtp_host="outlook-dod.office365.us",
                exchange_admin_hosts=("webmail.apps.mil", "outlook-dod.office365.us")),
    "china": dict(authority_host="https://login.chinacloudapi.cn", graph_resource="https://microsoftgraph.chinacloudapi.cn",
                  exchange_resource="https://partner.outlook.cn", smtp_host="smtp.partner.outlook.cn",
                  exchange_admin_hosts=("partner.outlook.cn",)),
}

# SMTP over RBAC for Applications (the role 'Application SMTP.SendAsApp') is announced for Worldwide only
# (MC1158911, roadmap RM498356); the classic model (service principal + mailbox permissions) works in every cloud.
RBAC_SMTP_CLOUDS = ("public",)

# Names azure-identity and the Azure CLI use for the same clouds.
_ALIASES = {
    "azurepubliccloud": "public", "global": "public",
    "azureusgovernment": "usgov", "gcchigh": "usgov", "usgovernment": "usgov",
    "azureusgovernmentdod": "dod",
    "azurechinacloud": "china", "21vianet": "china",
}

CLOUD_NAMES = tuple(sorted(_CLOUDS))


def _check_url(value, option):
    if value is None:
        return None
    value = str(value).strip()
    if not value.startswith("https://"):
        raise ConfigError("must be an https:// URL, got %r" % value, option=option,
                          fix="give the full URL, for example https://login.microsoftonline.com")
    return value.rstrip("/")


def resolve_cloud(name="public", authority_host=None, graph_endpoint=None, exchange_endpoint=None, smtp_host=None):
    """Return the Cloud for a name plus optional overrides; ConfigError names the bad option."""
    key = (name or "public").strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _CLOUDS:
        raise ConfigError("unknown cloud %r" % name, option="cloud", fix="use one of: %s" % ", ".join(CLOUD_NAMES))
    base = dict(_CLOUDS[key])
    authority = _check_url(authority_host, "authority_host")
    overridden = bool(authority) and authority != base["authority_host"]
    if authority:
        base["authority_host"] = authority
    if smtp_host:
        base["smtp_host"] = smtp_host
    admin_endpoint = base.pop("exchange_endpoint", None)  # where the cloud's admin API is, when not the resource
    return Cloud(key, graph_endpoint=_check_url(graph_endpoint, "graph_endpoint"),
                 exchange_endpoint=_check_url(exchange_endpoint, "exchange_endpoint") or admin_endpoint,
                 authority_overridden=overridden, **base)


def cloud_from_options(options, smtp_host=None):
    """The Cloud the shared auth options name (cloud, authority_host, graph_endpoint, exchange_endpoint): the one
    way modules, the token layer, the device login and the relay's proxy resolve it. smtp_host: the relay's
    upstream host, when given (send_mail takes its own host option later)."""
    return resolve_cloud(options.get("cloud") or "public", authority_host=options.get("authority_host"),
                         graph_endpoint=options.get("graph_endpoint"),
                         exchange_endpoint=options.get("exchange_endpoint"), smtp_host=smtp_host)


def authorization_model_for(cloud_name, requested=None):
    """(model, warning or None): the one place the SMTP authorization model's default is chosen.

    Public cloud: rbac. Other clouds: classic, and rbac only when asked for, with a warning, because Microsoft
    has not announced RBAC for Applications for SMTP there.
    """
    rbac_available = (cloud_name or "public") in RBAC_SMTP_CLOUDS
    if not requested:
        return ("rbac" if rbac_available else "classic"), None
    if requested == "rbac" and not rbac_available:
        return requested, ("authorization_model rbac on cloud %s: Microsoft announces SMTP over RBAC for Applications "
                           "(role 'Application SMTP.SendAsApp') for Worldwide only (MC1158911); if the role does not "
                           "exist in this tenant, use authorization_model: classic" % cloud_name)
    return requested, None


def resolve_authorization_model(params, cloud_name, warn):
    """Sets params['authorization_model'] to the resolved model (modules call this first); warns through `warn`."""
    model, warning = authorization_model_for(cloud_name, params.get("authorization_model"))
    params["authorization_model"] = model
    if warning:
        warn(warning)
