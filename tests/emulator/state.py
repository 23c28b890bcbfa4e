"""The emulated tenant's state: one object, one RLock, shared by identity, Graph, Exchange and SMTP.

Directory objects are dicts in Microsoft Graph's JSON shape (camelCase), keyed by object id. Keys starting with
"_" are the emulator's bookkeeping (a secret's text, when an object was created) and must never reach a client:
`graph_view(obj)` is the object as Graph prints it. An application's `federatedIdentityCredentials` is a list on the
application dict (Graph serves it as a navigation property, `graph_view` leaves it out).

Settings tests change on a live tenant: graph_page_size, graph_replication_lag (seconds a new object stays invisible
to Graph reads), credential_replication_lag (seconds a new secret / certificate is refused by the token endpoint,
as in real tenants), token_lifetime (seconds); the Exchange part keeps its own settings on `tenant.exchange`.
"""

import datetime
import threading
import time
import uuid

from emulator.device_flow import DeviceFlow
from emulator.faults import Faults
from emulator.throttle import Throttle
from emulator.request_log import RequestLog
from emulator.tokens import TokenService

try:
    from emulator.exchange_state import ExchangeState
except ImportError:  # the Exchange part is optional for the core
    ExchangeState = None

MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"  # appOwnerOrganizationId of Microsoft's first-party apps
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
RESOURCES = {
    GRAPH_APP_ID: {
        "displayName": "Microsoft Graph",
        "servicePrincipalNames": ["https://graph.microsoft.com", "https://graph.microsoft.com/",
                                  "https://canary.graph.microsoft.com", GRAPH_APP_ID],
        "appRoles": ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "Application.Read.All",
                     "Mail.Send", "User.Read.All", "Directory.Read.All", "RoleManagement.ReadWrite.Directory"),
        "scopes": ("User.Read", "Mail.Send", "offline_access", "openid", "Application.ReadWrite.All",
                   "AppRoleAssignment.ReadWrite.All", "RoleManagement.ReadWrite.Directory"),
    },
    EXCHANGE_APP_ID: {
        "displayName": "Office 365 Exchange Online",
        "servicePrincipalNames": ["https://outlook.office365.com", "https://outlook.office365.com/",
                                  "https://outlook.office.com", "outlook.office365.com", EXCHANGE_APP_ID],
        "appRoles": ("SMTP.SendAsApp", "Exchange.ManageAsApp", "full_access_as_app", "Mail.Send"),
        "scopes": ("SMTP.Send", "EWS.AccessAsUser.All", "IMAP.AccessAsUser.All"),
    },
}
NAVIGATION = ("federatedIdentityCredentials",)


def iso(ts=None):
    """Graph's timestamp format."""
    return datetime.datetime.fromtimestamp(time.time() if ts is None else ts, datetime.timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value):
    """Epoch seconds of a Graph timestamp, None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def graph_view(obj, navigation=NAVIGATION):
    """obj as Graph returns it: no emulator bookkeeping (at any depth), no navigation properties."""
    if isinstance(obj, dict):
        return {k: graph_view(v, ()) for k, v in obj.items() if not k.startswith("_") and k not in navigation}
    if isinstance(obj, list):
        return [graph_view(v, ()) for v in obj]
    return obj


def new_id():
    return str(uuid.uuid4())


class Tenant(object):
    def __init__(self, url="", graph_page_size=100, tenant_id=None, domain="contoso.onmicrosoft.com"):
        self.lock = threading.RLock()
        self.tenant_id = tenant_id or new_id()
        self.domain = domain
        self.display_name = "Contoso"
        self.url = url
        self.tokens = TokenService(self)
        self.log = RequestLog()
        self.faults = Faults()
        self.throttle = Throttle()
        self.default_graph_page_size = graph_page_size
        self.external_issuers = {}  # issuer URL -> tokens.ExternalIssuer (federated credentials)
        self.msi_secret = None      # X-IDENTITY-HEADER value of the managed identity endpoint
        self.managed_identities = {"system": None, "user": []}
        self.reset()

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def reset(self):
        """Empty directory with fresh resource role ids, empty log and faults, default settings."""
        with self.lock:
            self.applications = {}
            self.service_principals = {}
            self.app_role_assignments = {}
            self.directory_role_assignments = {}  # unifiedRoleAssignment id -> Graph shape (+ _written)
            self.device_flow = DeviceFlow()
            self.graph_page_size = self.default_graph_page_size
            self.graph_replication_lag = 0.0
            self.credential_replication_lag = 0.0
            self.tokens.lifetime = self.token_lifetime = 3599
            self.tokens.mailbox_claims.clear()
            self.log.clear()
            self.faults.clear()
            self.throttle.clear()
            self.managed_identities = {"system": None, "user": []}
            self.github_jobs = {}  # job id -> request token, subject, owner (emulator.github_oidc)
            for app_id, spec in RESOURCES.items():
                self._add_resource(app_id, spec)
            self.exchange = ExchangeState(self) if ExchangeState else None
            self.cloud = "public"

    def set_cloud(self, name):
        """Live in national cloud `name` (public, usgov, dod, china): its token resources, no RBAC for
        Applications for SMTP outside public (emulator/clouds.py)."""
        from emulator import clouds
        clouds.apply(self, name)

    def _add_resource(self, app_id, spec):
        roles = [{"allowedMemberTypes": ["Application"], "description": value, "displayName": value,
                  "id": new_id(), "isEnabled": True, "origin": "Application", "value": value}
                 for value in spec["appRoles"]]
        scopes = [{"adminConsentDescription": value, "adminConsentDisplayName": value, "id": new_id(),
                   "isEnabled": True, "type": "User", "userConsentDescription": value,
                   "userConsentDisplayName": value, "value": value} for value in spec["scopes"]]
        return self.add_service_principal(app_id=app_id, displayName=spec["displayName"], appRoles=roles,
                                          oauth2PermissionScopes=scopes, appOwnerOrganizationId=MICROSOFT_TENANT,
                                          servicePrincipalNames=list(spec["servicePrincipalNames"]))

    # -- directory objects ------------------------------------------------------------------------------------
    def add_application(self, displayName, app_id=None, uniqueName=None, **fields):
        with self.lock:
            now = time.time()
            app = {"id": new_id(), "appId": app_id or new_id(), "displayName": displayName,
                   "uniqueName": uniqueName, "createdDateTime": iso(now), "deletedDateTime": None,
                   "description": None, "identifierUris": [], "signInAudience": "AzureADMyOrg",
                   "publisherDomain": self.domain, "tags": [], "requiredResourceAccess": [],
                   "passwordCredentials": [], "keyCredentials": [], "federatedIdentityCredentials": [],
                   "_created": now}
            app.update(fields)
            self.applications[app["id"]] = app
            return app

    def add_service_principal(self, app=None, app_id=None, displayName=None, **fields):
        """A service principal for app (an application dict) or for app_id (a first-party / foreign app)."""
        with self.lock:
            now = time.time()
            app_id = app["appId"] if app else app_id
            sp = {"id": new_id(), "appId": app_id, "displayName": displayName or (app or {}).get("displayName"),
                  "accountEnabled": True, "appOwnerOrganizationId": self.tenant_id if app else None,
                  "appRoleAssignmentRequired": False, "appRoles": [], "oauth2PermissionScopes": [],
                  "servicePrincipalNames": [app_id], "servicePrincipalType": "Application", "tags": [],
                  "alternativeNames": [], "keyCredentials": [], "passwordCredentials": [],
                  "createdDateTime": iso(now), "deletedDateTime": None, "_created": now}
            sp.update(fields)
            self.service_principals[sp["id"]] = sp
            return sp

    def add_managed_identity(self, name, user_assigned=False):
        """A managed identity: a service principal of type ManagedIdentity (no application object)."""
        with self.lock:
            if user_assigned:
                resource = ("/subscriptions/%s/resourcegroups/emulated/providers/Microsoft.ManagedIdentity/"
                            "userAssignedIdentities/%s" % (self.tenant_id, name))
            else:
                resource = "/subscriptions/%s/resourcegroups/emulated/providers/Microsoft.Web/sites/%s" % (
                    self.tenant_id, name)
            app_id = new_id()
            sp = self.add_service_principal(app_id=app_id, displayName=name, servicePrincipalType="ManagedIdentity",
                                            appOwnerOrganizationId=MICROSOFT_TENANT,
                                            alternativeNames=["isExplicit=%s" % user_assigned, resource],
                                            servicePrincipalNames=[app_id, "https://identity.azure.net/emulated"],
                                            _resource_id=resource)
            if user_assigned:
                self.managed_identities["user"].append(sp["id"])
            else:
                self.managed_identities["system"] = sp["id"]
            return sp

    def grant_app_role(self, sp_id, resource_app_id, value):
        """Assign the resource's app role `value` to the service principal sp_id (admin consent)."""
        with self.lock:
            sp = self.service_principals[sp_id]
            resource = self.find_service_principal(app_id=resource_app_id)
            if resource is None:
                raise KeyError("no service principal for resource %s" % resource_app_id)
            role = next((r for r in resource["appRoles"] if r["value"] == value), None)
            if role is None:
                raise KeyError("resource %s has no app role %s" % (resource["displayName"], value))
            for existing in self.app_role_assignments.values():
                if (existing["principalId"], existing["resourceId"], existing["appRoleId"]) == (
                        sp_id, resource["id"], role["id"]):
                    return existing
            assignment = {"id": new_id(), "appRoleId": role["id"], "createdDateTime": iso(),
                          "deletedDateTime": None, "principalDisplayName": sp["displayName"],
                          "principalId": sp_id, "principalType": "ServicePrincipal",
                          "resourceDisplayName": resource["displayName"], "resourceId": resource["id"]}
            self.app_role_assignments[assignment["id"]] = assignment
            return assignment

    def add_password(self, app, display_name="secret", days=365, secret=None, start=None):
        """Add a client secret to app; returns the secret text (Graph shows it only once)."""
        import secrets as _secrets
        with self.lock:
            now = time.time()
            start = now if start is None else start
            secret = secret or (_secrets.token_urlsafe(30)[:37] + "~" + _secrets.token_hex(1))
            credential = {"customKeyIdentifier": None, "displayName": display_name,
                          "endDateTime": iso(start + days * 86400), "hint": secret[:3], "keyId": new_id(),
                          "secretText": None, "startDateTime": iso(start), "_secretText": secret, "_created": now}
            app.setdefault("passwordCredentials", []).append(credential)
            return secret

    def add_certificate(self, app, cert, display_name=None):
        """Register a certificate (certs.ClientCertificate) as a keyCredential of app; returns the credential."""
        with self.lock:
            credential = {"customKeyIdentifier": cert.sha1, "displayName": display_name or "CN=%s" % cert.sha1[:8],
                          "endDateTime": iso(cert.not_after.timestamp()), "key": cert.key_b64, "keyId": new_id(),
                          "startDateTime": iso(cert.not_before.timestamp()), "type": "AsymmetricX509Cert",
                          "usage": "Verify", "_created": time.time()}
            app.setdefault("keyCredentials", []).append(credential)
            return credential

    def add_federated_credential(self, app, name, issuer, subject, audiences=("api://AzureADTokenExchange",)):
        with self.lock:
            credential = {"id": new_id(), "name": name, "issuer": issuer, "subject": subject,
                          "audiences": list(audiences), "description": None}
            app.setdefault("federatedIdentityCredentials", []).append(credential)
            return credential

    # -- lookups ----------------------------------------------------------------------------------------------
    def find_application(self, app_id=None, object_id=None, unique_name=None, display_name=None):
        with self.lock:
            if object_id is not None:
                return self.applications.get(object_id)
            for app in self.applications.values():
                if app_id is not None and str(app.get("appId", "")).lower() == str(app_id).lower():
                    return app
                if unique_name is not None and app.get("uniqueName") == unique_name:
                    return app
                if display_name is not None and app.get("displayName") == display_name:
                    return app
        return None

    def find_service_principal(self, app_id=None, object_id=None):
        with self.lock:
            if object_id is not None:
                return self.service_principals.get(object_id)
            key = str(app_id).lower()
            for sp in self.service_principals.values():
                if str(sp.get("appId", "")).lower() == key:
                    return sp
        return None

    def find_resource(self, name):
        """The resource SP for an audience / scope resource: a servicePrincipalName or the app id."""
        key = str(name or "").rstrip("/").lower()
        with self.lock:
            for sp in self.service_principals.values():
                names = [str(n).rstrip("/").lower() for n in sp.get("servicePrincipalNames") or ()]
                if key in names or key == str(sp.get("appId", "")).lower():
                    return sp
        return None

    def find_role(self, resource_app_id, value):
        resource = self.find_service_principal(app_id=resource_app_id)
        return next((r for r in (resource or {}).get("appRoles") or () if r.get("value") == value), None)

    def roles_for(self, app_id, resource_app_id):
        """Values of the app roles the SP of app_id holds on the resource (what a token's roles claim lists)."""
        with self.lock:
            sp = self.find_service_principal(app_id=app_id)
            resource = self.find_service_principal(app_id=resource_app_id)
            if sp is None or resource is None:
                return []
            by_id = {r["id"]: r["value"] for r in resource.get("appRoles") or ()}
            return sorted({by_id[a["appRoleId"]] for a in self.app_role_assignments.values()
                           if a.get("principalId") == sp["id"] and a.get("resourceId") == resource["id"]
                           and a.get("appRoleId") in by_id})

    def matches_tenant(self, name):
        """True when name (from a URL) is this tenant's id or one of its domains."""
        return str(name).lower() in (self.tenant_id.lower(), self.domain.lower())
