"""The national cloud an emulated tenant lives in: `tenant.set_cloud(name)` (reset: public).

What changes per cloud, each from Microsoft's published pages (facts only; docs/development.md, "Emulator
assumptions: national clouds", lists them with what is unconfirmed):
- Token resources (the audience the token endpoint issues and Graph, the admin API and SMTP accept): Microsoft Graph
  national cloud deployments (graph.microsoft.us, dod-graph.microsoft.us, microsoftgraph.chinacloudapi.cn); Exchange
  Online outlook.office365.us (GCC High), outlook-dod.office365.us (DoD), partner.outlook.cn (21Vianet).
- The Exchange admin host: Connect-ExchangeOnline, -ConnectionUri (office-docs-powershell): GCC High
  outlook.office365.us, DoD webmail.apps.mil, 21Vianet partner.outlook.cn.
- The SMTP AUTH host: Microsoft 365 endpoint lists: Worldwide ID 2 smtp.office365.com TCP 587; GCC High ID 5
  outlook.office365.us TCP 587; DoD ID 4 outlook-dod.office365.us and webmail.apps.mil TCP 587. 21Vianet's list
  names no port 587 entry: smtp.partner.outlook.cn is an assumption.
- RBAC for Applications for SMTP (the management role 'Application SMTP.SendAsApp'): Worldwide only (message center
  MC1158911, roadmap RM498356). Elsewhere Get-ManagementRole does not find the role.

A tenant's admin API can also send clients to its cloud's admin host: `tenant.exchange.admin_redirect = host` answers
every InvokeCommand that arrives under another host name with 302 to the same path on that host (the emulator's
port). Its TLS certificate names every host below, so a test that resolves them to 127.0.0.1 reaches it.
"""

CLOUDS = {
    "public": {"graph": "https://graph.microsoft.com", "exchange": "https://outlook.office365.com",
               "admin_host": "outlook.office365.com", "smtp_host": "smtp.office365.com", "rbac_smtp": True},
    "usgov": {"graph": "https://graph.microsoft.us", "exchange": "https://outlook.office365.us",
              "admin_host": "outlook.office365.us", "smtp_host": "outlook.office365.us", "rbac_smtp": False},
    "dod": {"graph": "https://dod-graph.microsoft.us", "exchange": "https://outlook-dod.office365.us",
            "admin_host": "webmail.apps.mil", "smtp_host": "outlook-dod.office365.us", "rbac_smtp": False},
    "china": {"graph": "https://microsoftgraph.chinacloudapi.cn", "exchange": "https://partner.outlook.cn",
              "admin_host": "partner.outlook.cn", "smtp_host": "smtp.partner.outlook.cn", "rbac_smtp": False},
}
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"


def host_names():
    """Every host a cloud names, for the emulator's TLS certificate."""
    names = set()
    for cloud in CLOUDS.values():
        names.update((cloud["admin_host"], cloud["smtp_host"], cloud["exchange"].split("://", 1)[1]))
    return sorted(names)


def apply(tenant, name):
    """Point the tenant's resource service principals and Exchange settings at cloud `name`."""
    cloud = CLOUDS[name]
    with tenant.lock:
        tenant.cloud = name
        for app_id, resource in ((GRAPH_APP_ID, cloud["graph"]), (EXCHANGE_APP_ID, cloud["exchange"])):
            sp = tenant.find_service_principal(app_id=app_id)
            if sp is not None:
                # The cloud's resource first: the token endpoint issues the first https name as the audience.
                others = [n for n in sp["servicePrincipalNames"] if not str(n).startswith("https://")]
                sp["servicePrincipalNames"] = [resource, resource + "/"] + others
        if tenant.exchange is not None:
            tenant.exchange.smtp_role_exists = cloud["rbac_smtp"]


def audience(tenant, part):
    """The token audience `part` ("graph" or "exchange") accepts in the tenant's cloud."""
    return CLOUDS[getattr(tenant, "cloud", "public") or "public"][part]
