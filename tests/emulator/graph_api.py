"""The emulated tenant's Microsoft Graph v1.0: applications, service principals, credentials, app role
assignments, owners and users, under /v1.0/ on the emulator's HTTPS port.

What it holds to, because real tenants punish clients that get it wrong:
- POST /applications creates a new app every time (duplicates by displayName are allowed); the idempotent way is
  PATCH /applications(uniqueName='x') with `Prefer: create-if-missing` (201 + body when created, 204 when updated;
  without the header a missing key is 404). The same for /servicePrincipals(appId='x').
- A secret's text is in the addPassword answer only; reads show hint and keyId. keyCredentials are replaced by
  PATCHing the whole list (existing keys by keyId, without `key`); `key` is never read back.
- Tokens: audience https://graph.microsoft.com, this tenant, and the app role each call needs, else 401
  InvalidAuthenticationToken / 403 Authorization_RequestDenied.
- Replication lag (tenant.graph_replication_lag seconds): a new app, SP or secret is missing from reads and fails
  as a reference (404 / 400 with Graph's texts) until it has replicated. Writes through keys see the primary.
- Errors as Graph sends them: {"error": {"code", "message", "innerError": {"date", "request-id",
  "client-request-id"}}} and a request-id header. Every POST/PATCH/DELETE is logged with write=True.
"""

import re
import time
import uuid
from urllib.parse import unquote

from emulator import clouds
from emulator import graph_applications as apps
from emulator import graph_contract
from emulator import graph_principals as sps
from emulator import graph_roles as roles
from emulator.device_flow import GLOBAL_ADMINISTRATOR
from emulator.graph_call import Call, Count
from emulator.graph_contract import ContractError
from emulator.graph_objects import GraphError
from emulator.graph_odata import ODataError, parse_key_literal

_FIRST = re.compile(r"^(?P<coll>[A-Za-z]+)(?:\((?:(?P<key>\w+)=)?(?P<lit>'(?:[^']|'')*')\))?(?:/(?P<rest>.*))?$")
# (name, alias, directory role template ids): Megan is a Global Administrator (the device flow's default sign-in),
# Adele holds no directory role.
USERS_SEED = (("Adele Vance", "adele", ()), ("Megan Bowen", "megan", (GLOBAL_ADMINISTRATOR,)))


def register(router, tenant):
    ensure_users(tenant)
    for method in ("GET", "POST", "PATCH", "DELETE"):
        router.add(method, r"^/v1\.0/.+$", lambda request: handle(tenant, request))


def ensure_users(tenant):
    """Two users to own apps (the core seeds no users); kept across resets: users are not what tests change."""
    if getattr(tenant, "users", None) is None:
        tenant.users = {}
    if not tenant.users:
        for name, alias, wids in USERS_SEED:
            uid = str(uuid.uuid5(uuid.NAMESPACE_URL, "%s/%s" % (tenant.tenant_id, alias)))
            given, sur = name.split(" ")
            tenant.users[uid] = {"id": uid, "businessPhones": [], "displayName": name, "givenName": given,
                                 "jobTitle": None, "mail": "%s@%s" % (alias, tenant.domain), "mobilePhone": None,
                                 "officeLocation": None, "preferredLanguage": "en-US", "surname": sur,
                                 "userPrincipalName": "%s@%s" % (alias, tenant.domain), "_wids": list(wids)}


# -- the entry point --------------------------------------------------------------------------------------------
def handle(tenant, request):
    from emulator.https_server import Response  # the core's response type
    call = Call(tenant, request)
    request.write = request.method in ("POST", "PATCH", "DELETE")
    request_id = str(uuid.uuid4())
    client_request_id = request.headers.get("client-request-id") or request_id
    headers = {"request-id": request_id, "client-request-id": client_request_id,
               "x-ms-ags-diagnostic": '{"ServerInfo":{"DataCenter":"Emulated","Slice":"E","Ring":"1"}}'}
    try:
        checked(tenant, request)
        authenticate(call)
        with tenant.lock:
            status, body = route(call)
    except ContractError as error:
        status, body = error.status, error_body(error.code, error.message, request_id, client_request_id)
    except ODataError as error:
        status, body = 400, error_body(error.code, error.message, request_id, client_request_id)
    except GraphError as error:
        headers.update(error.headers)
        status, body = error.status, error_body(error.code, error.message, request_id, client_request_id)
    if body is None:
        return Response(status, headers=headers)
    if isinstance(body, Count):
        return Response(status, body=str(int(body)), headers=dict(headers, **{"Content-Type": "text/plain"}))
    if status < 400:
        headers["OData-Version"] = "4.0"
    return Response(status, json=body, headers=headers)


def checked(tenant, request):
    """Microsoft's v1.0 contract first (graph_contract): the verdict goes into this request's tenant.log entry, as
    `contract` ("ok" or "refused") and `graph_route` (e.g. "POST applications/{id}/addPassword")."""
    try:
        target = graph_contract.check(request)
    except ContractError as error:
        tenant.log.add(part="graph", contract="refused", contract_error=error.message)
        raise
    options = sorted(k for k in request.query or {} if k.startswith("$") and k != "$skiptoken")
    tenant.log.add(part="graph", contract="ok", graph_route="%s %s%s" % (
        request.method, target.shape, "?" + "&".join(options) if options else ""))
    return target


def error_body(code, message, request_id, client_request_id):
    return {"error": {"code": code, "message": message,
                      "innerError": {"date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
                                     "request-id": request_id, "client-request-id": client_request_id}}}


def authenticate(call):
    from emulator.tokens import TokenInvalid
    header = call.request.headers.get("Authorization") or ""
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.",
                         {"WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline'
                                              '.com/common/oauth2/authorize"'})
    try:
        call.claims = call.request.bearer(clouds.audience(call.tenant, "graph"))
    except TokenInvalid as error:
        reason = error.reason or ""
        if reason.startswith("expired") or reason.startswith("not valid yet"):
            message = "Access token has expired or is not yet valid."
        elif reason.startswith("wrong audience"):
            message = "Access token validation failure. Invalid audience."
        elif reason.startswith("wrong tenant"):
            message = "Access token validation failure. Invalid issuer or tenant."
        else:
            message = "IDX14100: JWT is not well formed, or its signature is invalid."
        raise GraphError(401, "InvalidAuthenticationToken", message)
    call.request.client_id = call.claims.get("appid")


# -- routing ----------------------------------------------------------------------------------------------------
def route(call):
    path = unquote(call.request.path[len("/v1.0/"):]).rstrip("/")
    found = _FIRST.match(path)
    if not found:
        raise not_modelled("the URL form %s" % call.request.path)
    coll, rest = found.group("coll"), found.group("rest")
    segments = [s for s in (rest or "").split("/") if s]
    if found.group("lit") is not None:
        key = found.group("key") or "id"
        if (coll, key) not in KEYS:
            raise not_modelled("the key %s of %s" % (key, coll))
        segments.insert(0, (key, parse_key_literal(found.group("lit"))))
    method = call.request.method
    named = [isinstance(s, str) and s in NAMED for s in segments]
    handler = ROUTES.get((method, coll) + tuple(s if n else "{}" for s, n in zip(segments, named)))
    if handler is None:  # valid in Graph v1.0 (graph_contract passed it) but not modelled here
        raise not_modelled("%s %s" % (method, call.request.path))
    args = [s for s, n in zip(segments, named) if not n]
    return handler(call, *args)


def not_modelled(what):
    """A request Graph accepts that the emulator does not serve: 501, never an invented Graph refusal."""
    return GraphError(501, "EmulatorNotImplemented", "The emulated Graph does not implement %s (it is valid in "
                                                     "Graph v1.0)." % what)


KEYS = {("applications", "appId"), ("applications", "uniqueName"), ("applications", "id"),
        ("servicePrincipals", "appId"), ("servicePrincipals", "id")}
NAMED = frozenset(("addPassword", "removePassword", "federatedIdentityCredentials", "owners", "$ref",
                   "appRoleAssignedTo", "appRoleAssignments", "$count", "directory", "roleAssignments"))


ROUTES = {
    ("GET", "applications"): apps.list_applications,
    ("POST", "applications"): apps.post_application,
    ("GET", "applications", "$count"): apps.count_applications,
    ("GET", "applications", "{}"): apps.get_application,
    ("PATCH", "applications", "{}"): apps.patch_application,
    ("DELETE", "applications", "{}"): apps.delete_application,
    ("POST", "applications", "{}", "addPassword"): apps.add_password,
    ("POST", "applications", "{}", "removePassword"): apps.remove_password,
    ("GET", "applications", "{}", "federatedIdentityCredentials"): apps.list_fics,
    ("POST", "applications", "{}", "federatedIdentityCredentials"): apps.post_fic,
    ("GET", "applications", "{}", "federatedIdentityCredentials", "{}"): apps.get_fic,
    ("PATCH", "applications", "{}", "federatedIdentityCredentials", "{}"): apps.patch_fic,
    ("DELETE", "applications", "{}", "federatedIdentityCredentials", "{}"): apps.delete_fic,
    ("GET", "applications", "{}", "owners"): apps.list_owners,
    ("POST", "applications", "{}", "owners", "$ref"): apps.add_owner,
    ("DELETE", "applications", "{}", "owners", "{}", "$ref"): apps.remove_owner,
    ("GET", "servicePrincipals"): sps.list_service_principals,
    ("POST", "servicePrincipals"): sps.post_service_principal,
    ("GET", "servicePrincipals", "$count"): sps.count_service_principals,
    ("GET", "servicePrincipals", "{}"): sps.get_service_principal,
    ("PATCH", "servicePrincipals", "{}"): sps.patch_service_principal,
    ("DELETE", "servicePrincipals", "{}"): sps.delete_service_principal,
    ("GET", "users"): sps.list_users,
    ("GET", "users", "{}"): sps.get_user,
    ("GET", "directoryObjects", "{}"): sps.get_directory_object,
    ("GET", "roleManagement", "directory", "roleAssignments"): roles.list_role_assignments,
    ("POST", "roleManagement", "directory", "roleAssignments"): roles.post_role_assignment,
    ("GET", "roleManagement", "directory", "roleAssignments", "{}"): roles.get_role_assignment,
    ("DELETE", "roleManagement", "directory", "roleAssignments", "{}"): roles.delete_role_assignment,
}
for _name in ("appRoleAssignedTo", "appRoleAssignments"):
    ROUTES[("GET", "servicePrincipals", "{}", _name)] = sps.for_side(sps.list_assignments, _name)
    ROUTES[("POST", "servicePrincipals", "{}", _name)] = sps.for_side(sps.post_assignment, _name)
    ROUTES[("GET", "servicePrincipals", "{}", _name, "{}")] = sps.for_side(sps.get_assignment, _name)
    ROUTES[("DELETE", "servicePrincipals", "{}", _name, "{}")] = sps.for_side(sps.delete_assignment, _name)
