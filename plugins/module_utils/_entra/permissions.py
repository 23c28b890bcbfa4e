# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""API permissions by name: resolved against the resource service principal at run time.

Role and scope ids differ per resource and are never hard-coded: the resource's own service principal lists them
(`appRoles`, `oauth2PermissionScopes`). Plain Python: no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import EXCHANGE_APP_ID
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.checks import is_guid

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
SMTP_ROLE = "SMTP.SendAsApp"

# Short names people use for the two resources this collection cares about.
WELL_KNOWN_APIS = {
    "office 365 exchange online": EXCHANGE_APP_ID,
    "exchange": EXCHANGE_APP_ID,
    "exchange online": EXCHANGE_APP_ID,
    "microsoft graph": GRAPH_APP_ID,
    "graph": GRAPH_APP_ID,
}


class Permission(object):
    """One resolved permission: resource + role or scope, by name and id."""

    __slots__ = ("api_app_id", "api_name", "resource_sp_id", "kind", "name", "id")

    def __init__(self, api_app_id, api_name, resource_sp_id, kind, name, id):
        self.api_app_id = api_app_id
        self.api_name = api_name
        self.resource_sp_id = resource_sp_id
        self.kind = kind  # "Role" (application) or "Scope" (delegated), as in requiredResourceAccess
        self.name = name
        self.id = id

    def key(self):
        return (self.api_app_id, self.kind, self.id.lower())

    def as_dict(self):
        return {"api": self.api_name, "api_app_id": self.api_app_id, "type": "application" if self.kind == "Role"
                else "delegated", "permission": self.name, "id": self.id}


def smtp_permission_declared(smtp_send, authorization_model):
    """Whether smtp_send adds SMTP.SendAsApp to the app.

    classic: yes (Exchange checks the token's SMTP.SendAsApp role, then mailbox permissions).
    rbac: no. Microsoft's RBAC for Applications grants SMTP sending in Exchange (exchange_smtp_access); an Entra
    SMTP.SendAsApp claim would also trigger the classic mailbox-permission check, which Microsoft advises against.
    """
    return bool(smtp_send) and authorization_model == "classic"


class PermissionResolver(object):
    """Finds resource service principals once per run and turns names into ids."""

    def __init__(self, graph):
        self.graph = graph
        self._by_app_id = {}

    def resource(self, api, option="api_permissions"):
        """The resource SP for an API given by appId, well-known short name or display name."""
        key = str(api).strip()
        app_id = key if is_guid(key) else WELL_KNOWN_APIS.get(key.lower())
        if app_id:
            if app_id not in self._by_app_id:
                self._by_app_id[app_id] = self.graph.find_service_principal(app_id)
            sp = self._by_app_id[app_id]
        else:
            found = self.graph.find_service_principals_by_name(key)
            if len(found) > 1:
                raise ConfigError("the API name %r matches %d service principals (%s)" % (
                    key, len(found), ", ".join(sorted(s.get("appId", "?") for s in found))), option=option,
                    fix="give the API by its appId instead of its name")
            sp = found[0] if found else None
            if sp:
                self._by_app_id[sp["appId"]] = sp
        if not sp:
            raise ConfigError("no API (service principal) named or with appId %r in this tenant" % key, option=option,
                              fix="use the API's display name as shown under Enterprise applications, or its appId "
                                  "(Microsoft Graph, Office 365 Exchange Online, ...)")
        return sp

    def resolve(self, api, app_roles=(), scopes=(), option="api_permissions"):
        sp = self.resource(api, option=option)
        api_name = sp.get("displayName") or sp["appId"]
        result = []
        roles = dict((r.get("value"), r) for r in sp.get("appRoles") or []
                     if "Application" in (r.get("allowedMemberTypes") or ["Application"]) and r.get("value"))
        for name in app_roles or ():
            if name not in roles:
                raise ConfigError("%s has no application permission (app role) %r" % (api_name, name), option=option,
                                  fix="use one of: %s" % ", ".join(sorted(roles)) if roles else "this API has none")
            result.append(Permission(sp["appId"], api_name, sp["id"], "Role", name, roles[name]["id"]))
        known_scopes = dict((s.get("value"), s) for s in sp.get("oauth2PermissionScopes") or [] if s.get("value"))
        for name in scopes or ():
            if name not in known_scopes:
                raise ConfigError("%s has no delegated permission (scope) %r" % (api_name, name), option=option,
                                  fix="use one of: %s" % ", ".join(sorted(known_scopes)) if known_scopes
                                  else "this API has none")
            result.append(Permission(sp["appId"], api_name, sp["id"], "Scope", name, known_scopes[name]["id"]))
        return result

    def declared(self, smtp_send, authorization_model, api_permissions):
        """Every permission the task declares, in a stable order, without duplicates."""
        perms = []
        if smtp_permission_declared(smtp_send, authorization_model):
            perms.extend(self.resolve(EXCHANGE_APP_ID, app_roles=[SMTP_ROLE], option="smtp_send"))
        for index, entry in enumerate(api_permissions or []):
            option = "api_permissions[%d]" % index
            if not entry.get("api"):
                raise ConfigError("each entry needs an api (name or appId)", option=option + ".api")
            perms.extend(self.resolve(entry["api"], entry.get("app_roles") or (), entry.get("scopes") or (),
                                      option=option))
        unique = {}
        for perm in perms:
            unique.setdefault(perm.key(), perm)
        return sorted(unique.values(), key=lambda p: (p.api_name.lower(), p.kind, p.name))

    def name_of(self, resource_app_id, kind, perm_id):
        """Name of a permission id already on the app (for reports); the id itself when unknown."""
        sp = self._by_app_id.get(resource_app_id)
        if resource_app_id not in self._by_app_id:
            sp = self._by_app_id[resource_app_id] = self.graph.find_service_principal(resource_app_id)
        api_name = (sp or {}).get("displayName") or resource_app_id
        pool = (sp or {}).get("appRoles" if kind == "Role" else "oauth2PermissionScopes") or []
        for item in pool:
            if str(item.get("id", "")).lower() == str(perm_id).lower():
                return api_name, item.get("value") or perm_id
        return api_name, perm_id

    def role_name_by_sp(self, resource_sp_id, app_role_id):
        """Name of a consented app role, from the resource SP's object id (appRoleAssignments carry that)."""
        for sp in self._by_app_id.values():
            if sp and sp.get("id") == resource_sp_id:
                break
        else:
            sp = self.graph.get_or_none("servicePrincipals/%s" % resource_sp_id)
            if sp:
                self._by_app_id[sp["appId"]] = sp
        for role in (sp or {}).get("appRoles") or []:
            if str(role.get("id", "")).lower() == str(app_role_id).lower():
                return (sp or {}).get("displayName"), role.get("value")
        return (sp or {}).get("displayName") or resource_sp_id, app_role_id


def required_resource_access(permissions):
    """Graph's requiredResourceAccess for a list of Permission, in a stable order."""
    by_api = {}
    for perm in permissions:
        by_api.setdefault(perm.api_app_id, []).append({"id": perm.id, "type": perm.kind})
    return [{"resourceAppId": app_id, "resourceAccess": sorted(access, key=lambda a: (a["type"], a["id"].lower()))}
            for app_id, access in sorted(by_api.items())]


def normalize_rra(rra):
    """A comparable form of requiredResourceAccess (order and case do not matter to Entra)."""
    return sorted((entry.get("resourceAppId"), access.get("type"), str(access.get("id")).lower())
                  for entry in rra or [] for access in entry.get("resourceAccess") or [])


def merge_rra(current, declared):
    """Declared permissions added to those already on the app (purge_permissions=false keeps the others)."""
    keys = set(normalize_rra(current)) | set(normalize_rra(declared))
    by_api = {}
    for app_id, kind, perm_id in sorted(keys):
        by_api.setdefault(app_id, []).append({"id": perm_id, "type": kind})
    return [{"resourceAppId": app_id, "resourceAccess": access} for app_id, access in sorted(by_api.items())]
