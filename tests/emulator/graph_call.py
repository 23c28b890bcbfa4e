"""One request to the emulated Graph: verified claims, role checks, replication visibility, lookups, and the
OData answers (entities and paged collections). Shared by the graph_* handler modules."""

import time
import re
from urllib.parse import quote

from emulator import device_flow
from emulator import graph_objects as objs
from emulator.graph_objects import GraphError, bad_request, not_found
from emulator.graph_odata import (Filter, decode_skiptoken, encode_skiptoken, parse_select, parse_top, query_value,
                                  select)

GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
GRAPH_AUDIENCE = "https://graph.microsoft.com"
READ = frozenset(("Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All",
                  "Directory.ReadWrite.All"))
WRITE = frozenset(("Application.ReadWrite.All",))
ASSIGN = frozenset(("AppRoleAssignment.ReadWrite.All",))
# Delegated writes: the directory roles Graph's reference lists as least privileged (creating an app: Application
# / Cloud Application Administrator; granting an app role of Microsoft Graph: Privileged Role Administrator).
DELEGATED_ADMIN_ROLES = {
    WRITE: frozenset((device_flow.GLOBAL_ADMINISTRATOR, device_flow.APPLICATION_ADMINISTRATOR,
                      device_flow.CLOUD_APPLICATION_ADMINISTRATOR)),
    ASSIGN: frozenset((device_flow.GLOBAL_ADMINISTRATOR, device_flow.PRIVILEGED_ROLE_ADMINISTRATOR)),
}
# Reading users is not part of Application.*: an app that resolves owners by UPN needs one of these.
USER_READ = frozenset(("User.Read.All", "User.ReadBasic.All", "User.ReadWrite.All", "Directory.Read.All",
                       "Directory.ReadWrite.All"))
FILTERABLE = {"application": ("appId", "displayName", "uniqueName", "id", "signInAudience", "publisherDomain"),
              "servicePrincipal": ("appId", "displayName", "id", "servicePrincipalType", "accountEnabled",
                                   "appOwnerOrganizationId"),
              "user": ("id", "displayName", "userPrincipalName", "mail"),
              "unifiedRoleAssignment": ("id", "principalId", "roleDefinitionId", "directoryScopeId")}


class Call(object):
    """One request being served: the tenant, the verified claims, and how to answer."""

    def __init__(self, tenant, request):
        self.tenant, self.request = tenant, request
        host = request.headers.get("Host") or "graph.microsoft.com"
        self.base = "https://%s/v1.0" % host
        self.claims = None

    def allow(self, roles, admin_roles=None):
        """App-only: one of `roles` among the token's roles. Delegated (a user's token, device_flow.py): one of
        them among its scopes (`scp`), and for writes the signed-in user must hold one of the directory roles the
        Graph reference names as least privileged for the call (`wids`)."""
        delegated = self.claims.get("idtyp") == "user" or "scp" in self.claims
        granted = set(str(self.claims.get("scp") or "").split()) if delegated else set(self.claims.get("roles") or ())
        if delegated and admin_roles is None:
            admin_roles = DELEGATED_ADMIN_ROLES.get(roles)
        if not granted & roles or (delegated and admin_roles and not set(self.claims.get("wids") or ()) & admin_roles):
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the "
                                                                 "operation.")

    # -- replication ---------------------------------------------------------------------------------------------
    def visible(self, obj):
        """Objects written through this API carry _written; seeded ones have replicated long ago."""
        written = obj.get("_written")
        if written is None:
            return True
        lag = getattr(self.tenant, "graph_replication_lag", 0) or 0
        return not lag or time.time() >= written + lag

    # -- lookups (reads see replicated objects only) -------------------------------------------------------------
    def application(self, ref, replicated=True):
        return self._object(self.tenant.applications, ref, replicated)

    def service_principal(self, ref, replicated=True):
        return self._object(self.tenant.service_principals, ref, replicated)

    def _object(self, store, ref, replicated):
        name, value = ref if isinstance(ref, tuple) else ("id", ref)
        if name in ("id", "appId") and not GUID.match(str(value)):
            raise bad_request("Invalid object identifier '%s'." % value)
        found = self.find(store, ref)
        if found is None or (replicated and not self.visible(found)):
            raise not_found(value)
        return found

    def find(self, store, ref):
        if not isinstance(ref, tuple):
            return store.get(ref)
        name, value = ref
        if name == "id":
            return store.get(value)
        for obj in store.values():
            held = obj.get(name)
            if held is not None and (held == value if name == "uniqueName" else str(held).lower() == value.lower()):
                return obj
        return None

    def user(self, key):
        users = self.tenant.users
        if key in users:
            return users[key]
        for user in users.values():
            if user["userPrincipalName"].lower() == str(key).lower():
                return user
        raise not_found(key)

    def directory_object(self, key):
        if key in self.tenant.users:
            return "user", self.tenant.users[key]
        if key in self.tenant.service_principals and self.visible(self.tenant.service_principals[key]):
            return "servicePrincipal", self.tenant.service_principals[key]
        if key in self.tenant.applications and self.visible(self.tenant.applications[key]):
            return "application", self.tenant.applications[key]
        raise not_found(key)

    # -- answers -------------------------------------------------------------------------------------------------
    def entity(self, set_name, obj, status=200):
        names = self.selected(set_name)
        context = set_name if names is None else "%s(%s)" % (set_name, ",".join(names))
        body = {"@odata.context": "%s/$metadata#%s/$entity" % (self.base, context)}
        body.update(select(obj, names))
        return status, body

    def selected(self, set_name):
        type_name, fields = TYPES.get(set_name.split("(")[0], (None, None))
        if type_name is None:
            return None
        return parse_select(query_value(self.request.query, "$select"), type_name, fields)

    def collection(self, set_name, items, type_name=None, view=None):
        """A page of items with $filter, $select, $top, $count and @odata.nextLink. Filters run on the stored
        objects (filterable properties print as stored); only the page is rendered through view()."""
        query = self.request.query
        advanced = (self.request.headers.get("ConsistencyLevel") or "").lower() == "eventual"
        count = (query_value(query, "$count") or "").lower() == "true"
        text = query_value(query, "$filter")
        if text:
            spec = Filter(text, FILTERABLE.get(type_name, ("id",)), type_name or "directoryObject")
            if spec.advanced and not (advanced and count):
                raise bad_request("Unsupported Query: operator '%s' needs ConsistencyLevel: eventual and "
                                  "$count=true." % spec.advanced[0], code="Request_UnsupportedQuery")
            items = [item for item in items if spec.matches(item)]
        if count and not advanced and query_value(query, "$search") is None:
            # Graph accepts $count=true on directory objects only as an advanced query.
            raise bad_request("$count is not currently supported without the ConsistencyLevel: eventual header.")
        names = parse_select(query_value(query, "$select"), type_name, TYPE_FIELDS[type_name]) if type_name else None
        token = query_value(query, "$skiptoken")
        start = decode_skiptoken(token) if token else 0
        size = parse_top(query_value(query, "$top")) or max(1, int(getattr(self.tenant, "graph_page_size", 100)))
        page = items[start:start + size]
        context = set_name if names is None else "%s(%s)" % (set_name, ",".join(names))
        body = {"@odata.context": "%s/$metadata#%s" % (self.base, context)}
        if count:
            body["@odata.count"] = len(items)
        body["value"] = [select(view(self, item) if view else item, names) for item in page]
        if start + size < len(items):
            keep = [(k, v) for k, v in sorted(query.items()) if k != "$skiptoken"]
            keep.append(("$skiptoken", encode_skiptoken(start + size)))
            body["@odata.nextLink"] = "%s%s?%s" % (self.base.rsplit("/v1.0", 1)[0], self.request.path, "&".join(
                "%s=%s" % (k, quote(str(v), safe="$,'()")) for k, v in keep))
        return 200, body


TYPE_FIELDS = {"application": objs.APP_FIELDS, "servicePrincipal": objs.SP_FIELDS, "user": objs.USER_FIELDS,
               "appRoleAssignment": objs.ASSIGNMENT_FIELDS, "federatedIdentityCredential": objs.FIC_FIELDS,
               "unifiedRoleAssignment": objs.ROLE_ASSIGNMENT_FIELDS}
TYPES = {"applications": ("application", objs.APP_FIELDS), "servicePrincipals": ("servicePrincipal", objs.SP_FIELDS),
         "users": ("user", objs.USER_FIELDS)}


def body_of(call):
    """The JSON object a write carries ({} when there is no body); anything else is Graph's 400."""
    request = call.request
    body = request.json if request.body else {}
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                                            "header is set and payload is of valid JSON format.")
    return body


def upsert_wanted(call):
    return "create-if-missing" in (call.request.headers.get("Prefer") or "").lower()


def count_of(call, items):
    """/$count: a bare number as text/plain, only as an advanced query."""
    if (call.request.headers.get("ConsistencyLevel") or "").lower() != "eventual":
        raise bad_request("Count is not currently supported without the ConsistencyLevel: eventual header.")
    return 200, Count(len(items))


class Count(int):
    """Marks a /$count answer."""


def listing(call, store, view, set_name, type_name):
    """GET on a directory collection: replicated objects only, as Graph prints them."""
    call.allow(READ)
    return call.collection(set_name, [o for o in store.values() if call.visible(o)], type_name, view)


def counting(call, store):
    call.allow(READ)
    return count_of(call, [o for o in store.values() if call.visible(o)])
