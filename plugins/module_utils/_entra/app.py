# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""entra_app logic: describe -> ensure_present / ensure_absent, each returning (changed, result).

The app is keyed by uniqueName and written with the create-if-missing upsert, so neither a retried request nor a
re-run task can duplicate it. In check mode nothing is written and the result is the prediction. The diff shows
the declared fields only. Plain Python: no Ansible import.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from urllib.parse import quote

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError, ServiceError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.permissions import (
    PermissionResolver, merge_rra, normalize_rra, required_resource_access, smtp_permission_declared)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.checks import is_guid

SIGN_IN_AUDIENCES = ("AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount",
                     "PersonalMicrosoftAccount")
# module option -> Graph property, for the plain fields a task may declare.
FIELDS = (("display_name", "displayName"), ("description", "description"), ("notes", "notes"),
          ("sign_in_audience", "signInAudience"), ("tags", "tags"))


def find_app(graph, unique_name=None, app_id=None, display_name=None):
    """The existing app: by uniqueName, else by appId (adoption), else by a display name that matches once."""
    if unique_name:
        app = graph.application_by_unique_name(unique_name)
        if app:
            if app_id and app.get("appId") != app_id:
                # Two different apps named at once: acting on either could change the wrong one.
                raise ConfigError("unique_name %r is the application %s, not the given app_id %s" % (
                    unique_name, app.get("appId"), app_id), option="app_id",
                    fix="give only unique_name, or the app_id of that same application")
            return app
    if app_id:
        app = graph.application_by_app_id(app_id)
        if not app:
            raise ConfigError("no application with appId %s in this tenant" % app_id, option="app_id",
                              fix="check the application (client) id, or leave app_id out to create the app")
        if unique_name and app.get("uniqueName") and app["uniqueName"] != unique_name:
            raise ConfigError("the application %s already has uniqueName %r, not %r" % (
                app_id, app["uniqueName"], unique_name), option="unique_name",
                fix="uniqueName cannot change once set: use %r" % app["uniqueName"])
        return app
    if display_name and not unique_name:
        found = graph.applications_by_display_name(display_name)
        if len(found) > 1:
            raise ConfigError("%d applications are named %r: %s" % (len(found), display_name, "; ".join(
                sorted("appId %s (uniqueName %s)" % (a.get("appId"), a.get("uniqueName")) for a in found))),
                option="display_name", fix="choose one with app_id (or unique_name); display names are not unique")
        return found[0] if found else None
    return None


# A user principal name as Entra accepts it: one "@", a local part without spaces or URL delimiters ("#" stays:
# guests are "name_domain#EXT#@tenant"), a domain of DNS labels.
_UPN = re.compile(r"^[^@\s/\\?%]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def check_owner(owner):
    """Refuse, before any request, an owner that is neither an object id nor a user principal name."""
    if is_guid(owner):
        return
    if not _UPN.match(owner or ""):
        raise ConfigError("%r is neither a user principal name (name@domain) nor an object id" % owner,
                          option="owners", fix="give owners as user principal names or object ids")
    if owner.startswith("$"):
        # Graph reads users/$... as a system segment; its documented users('$name@domain') form is not used here.
        raise ConfigError("%r begins with '$', which Microsoft Graph reads as a system segment in users/{upn}"
                          % owner, option="owners", fix="give this owner's object id instead")


def declared_fields(params):
    """The plain Graph fields the task declares (None = not managed)."""
    fields = {}
    for option, prop in FIELDS:
        if params.get(option) is not None:
            fields[prop] = sorted(set(params[option])) if option == "tags" else params[option]
    return fields


def _current_fields(app, declared):
    current = {}
    for prop in declared:
        value = app.get(prop) if app else None
        current[prop] = sorted(set(value or [])) if prop == "tags" else value
    return current


class AppState(object):
    """One run of entra_app: what exists, what is declared, and how to get from one to the other."""

    def __init__(self, graph, params, check_mode=False):
        self.graph = graph
        self.params = params
        self.check_mode = check_mode
        self.timeout = params["wait_timeout"]
        self.resolver = PermissionResolver(graph)
        self.warnings = []
        self.changes = []
        self.sp_created = False

    # -- describe ----------------------------------------------------------------------------------
    def describe(self):
        p = self.params
        return find_app(self.graph, p.get("unique_name"), p.get("app_id"), p.get("display_name"))

    # -- present -----------------------------------------------------------------------------------
    def ensure_present(self):
        p = self.params
        app = self.describe()
        if not app and not p.get("unique_name"):
            raise ConfigError("required to create the app (no app matches app_id or display_name)",
                              option="unique_name",
                              fix="set unique_name (an immutable key such as 'smtp-relay-prod'); display names are "
                                  "not unique, so a re-run could otherwise create a duplicate")
        declared_perms = self.resolver.declared(p.get("smtp_send"), p.get("authorization_model"),
                                                p.get("api_permissions"))
        if p.get("authorization_model") == "rbac":
            if any(perm.name == "SMTP.SendAsApp" for perm in declared_perms):
                self.warnings.append("api_permissions declares SMTP.SendAsApp with authorization_model=rbac: Microsoft "
                                     "advises against it (the claim triggers the classic mailbox-permission check)")
        original = app
        owner_plan = self._plan_owners(app)
        fields = declared_fields(p)
        if not app and "displayName" not in fields:
            fields["displayName"] = p.get("unique_name")
        if not app:
            fields.setdefault("signInAudience", "AzureADMyOrg")
            self._warn_about_namesakes(fields["displayName"])
        rra = required_resource_access(declared_perms)
        target_rra = rra if p.get("purge_permissions") or not app else merge_rra(app.get("requiredResourceAccess"), rra)

        before = _current_fields(app, fields)
        patch = dict((k, v) for k, v in fields.items() if before.get(k) != v)
        if normalize_rra((app or {}).get("requiredResourceAccess")) != normalize_rra(target_rra):
            patch["requiredResourceAccess"] = target_rra
        if app and p.get("unique_name") and not app.get("uniqueName"):
            patch["uniqueName"] = p["unique_name"]  # adopting an app found by app_id: give it its key
        unique_name = p.get("unique_name") or (app or {}).get("uniqueName")

        created = app is None
        if patch:
            self.changes.append("create application" if created
                                else "update application: %s" % ", ".join(sorted(patch)))
            if not self.check_mode:
                app = self._write_app(app, unique_name, patch)
        if self.check_mode and created:
            app = {"id": None, "appId": None, "uniqueName": unique_name}
        sp = self._ensure_sp(app)
        owners = self._ensure_owners(app, owner_plan)
        consented = self._ensure_consent(sp, declared_perms)

        after_app = dict(app or {})
        after_app.update(patch)
        result = self._result(after_app, sp, declared_perms, consented, owners)
        result["diff"] = {"before": self._diff_view(original, fields, owners[0] if owners else None,
                                                    consented[0]),
                          "after": self._diff_view(after_app, fields, owners[1] if owners else None, consented[1])}
        return bool(self.changes), result

    def _warn_about_namesakes(self, display_name):
        namesakes = [a for a in self.graph.applications_by_display_name(display_name) if not a.get("uniqueName")]
        if namesakes:
            self.warnings.append("creating a new app although %d app(s) named %r exist without uniqueName (appId %s); "
                                 "to manage an existing one instead, set app_id" % (
                                     len(namesakes), display_name, ", ".join(sorted(a["appId"] for a in namesakes))))

    def _write_app(self, app, unique_name, patch):
        if app is None or app.get("uniqueName"):
            self.graph.upsert_application(unique_name, patch)
            return self.graph.wait_for(lambda: self.graph.application_by_unique_name(unique_name),
                                       "application %r" % unique_name, self.timeout)
        # Adopted by app_id and without uniqueName yet: an upsert by the new name would create a second app.
        self.graph.patch("applications/%s" % app["id"], json=patch)
        return self.graph.wait_for(lambda: self.graph.get_or_none("applications/%s" % app["id"]),
                                   "application %s" % app["appId"], self.timeout)

    def _ensure_sp(self, app):
        """The app's service principal, created if missing (Entra blocks token requests from apps without one)."""
        if not app.get("appId"):
            self.changes.append("create service principal")
            return None
        sp = self.graph.find_service_principal(app["appId"])
        if sp:
            return sp
        self.changes.append("create service principal")
        self.sp_created = True
        if self.check_mode:
            return None

        # An upsert keyed by appId: a repeat after a lost answer cannot create a second service principal.
        created = self.graph.retry_while_lagging(lambda: self.graph.upsert_service_principal(app["appId"]),
                                                 "the service principal of %s" % app["appId"], self.timeout)
        return created or self.graph.wait_for(lambda: self.graph.find_service_principal(app["appId"]),
                                              "the service principal of %s" % app["appId"], self.timeout)

    def _plan_owners(self, app):
        """(current, wanted) as {object id: label} when owners are declared, else None; resolved before any write
        so that an unknown owner fails the task without a half-done change."""
        declared = self.params.get("owners")
        if declared is None:
            return None
        for owner in declared:
            check_owner(owner)
        current = {}
        if app:
            for owner in self.graph.list("applications/%s/owners" % app["id"]):
                current[owner["id"].lower()] = owner.get("userPrincipalName") or owner.get("appId") or owner["id"]
        wanted = {}
        for owner in declared:
            if is_guid(owner) and owner.lower() in current:
                wanted[owner.lower()] = current[owner.lower()]
            else:
                found = self._lookup_owner(owner)
                wanted[found["id"].lower()] = found.get("userPrincipalName") or found.get("appId") or found["id"]
        return current, wanted

    def _lookup_owner(self, owner):
        path = "directoryObjects/%s" % owner if is_guid(owner) else "users/%s" % quote(owner, safe="@")
        try:
            found = self.graph.get_or_none(path)
        except ServiceError as error:
            if error.status != 403:
                raise
            raise ConfigError("cannot look up the user %r: reading users needs User.Read.All (or "
                              "Directory.Read.All), which the identity running the module lacks" % owner,
                              option="owners", code=error.code, request_id=error.request_id,
                              fix="give the owner's object id instead, or grant User.Read.All")
        if not found:
            raise ConfigError("no user or service principal %r in this tenant" % owner, option="owners",
                              fix="give owners as user principal names or object ids")
        return found

    def _ensure_owners(self, app, plan):
        """(before, after) owner labels when owners are declared; None when not managed."""
        if plan is None:
            return None
        current, wanted = plan
        add = sorted(set(wanted) - set(current))
        remove = sorted(set(current) - set(wanted))
        if add or remove:
            self.changes.append("owners: +%d -%d" % (len(add), len(remove)))
        if not self.check_mode and app.get("id"):
            for oid in add:
                ref = {"@odata.id": "%s/directoryObjects/%s" % (self.graph.base, oid)}
                self.graph.retry_while_lagging(lambda: self.graph.post("applications/%s/owners/$ref" % app["id"],
                                                                       json=ref), "owner %s" % oid, self.timeout)
            for oid in remove:
                self.graph.delete("applications/%s/owners/%s/$ref" % (app["id"], oid))
        return sorted(current.values()), sorted(wanted.values())

    def _ensure_consent(self, sp, declared_perms):
        """Admin consent = the app's SP holds an appRoleAssignment for each declared application permission."""
        p = self.params
        declared_roles = dict(((perm.resource_sp_id, perm.id.lower()), perm) for perm in declared_perms
                              if perm.kind == "Role")
        current = {}
        if sp and not self.sp_created:  # a new SP has no assignments (and reads of it may lag)
            for assignment in self.graph.list("servicePrincipals/%s/appRoleAssignments" % sp["id"]):
                current[(assignment["resourceId"], str(assignment["appRoleId"]).lower())] = assignment
        before = sorted(self._assignment_name(k) for k in current)
        if not p.get("admin_consent"):
            return before, before
        grant = [k for k in declared_roles if k not in current]
        revoke = [k for k in current if k not in declared_roles] if p.get("purge_permissions") else []
        if grant or revoke:
            self.changes.append("admin consent: grant %d, revoke %d" % (len(grant), len(revoke)))
        if not self.check_mode and sp:
            for key in sorted(grant):
                perm = declared_roles[key]
                body = {"principalId": sp["id"], "resourceId": perm.resource_sp_id, "appRoleId": perm.id}
                self.graph.retry_while_lagging(lambda: self._grant(perm.resource_sp_id, body),
                                               "consent to %s" % perm.name, self.timeout)
            for key in sorted(revoke):
                self.graph.delete("servicePrincipals/%s/appRoleAssignedTo/%s" % (key[0], current[key]["id"]))
        after = sorted(self._assignment_name(k) for k in (set(current) | set(grant)) - set(revoke))
        return before, after

    def _grant(self, resource_sp_id, body):
        try:
            return self.graph.post("servicePrincipals/%s/appRoleAssignedTo" % resource_sp_id, json=body)
        except ServiceError as error:
            if error.status in (400, 409) and "already exists" in (error.message or ""):
                return None  # the repeat of a grant whose answer was lost
            raise

    def _assignment_name(self, key):
        api, role = self.resolver.role_name_by_sp(key[0], key[1])
        return "%s: %s" % (api, role)

    # -- absent ------------------------------------------------------------------------------------
    def ensure_absent(self):
        app = self.describe()
        if not app:
            return False, {"changed": False, "state": "absent", "diff": {"before": {}, "after": {}}}
        sp = self.graph.find_service_principal(app["appId"]) if app.get("appId") else None
        if not self.check_mode:
            if sp:
                self.graph.delete("servicePrincipals/%s" % sp["id"])
            self.graph.delete("applications/%s" % app["id"])
        before = {"unique_name": app.get("uniqueName"), "app_id": app.get("appId"),
                  "display_name": app.get("displayName"), "service_principal_id": (sp or {}).get("id")}
        return True, {"changed": True, "state": "absent", "app_id": app.get("appId"), "object_id": app.get("id"),
                      "service_principal_id": (sp or {}).get("id"), "diff": {"before": before, "after": {}}}

    # -- output ------------------------------------------------------------------------------------
    def _diff_view(self, app, fields, owners, consented):
        if app is None:
            return {}
        view = {}
        for option, prop in FIELDS:
            if prop in fields:
                value = app.get(prop)
                view[option] = sorted(set(value or [])) if prop == "tags" else value
        names = []
        for app_id, kind, perm_id in normalize_rra(app.get("requiredResourceAccess")):
            api, name = self.resolver.name_of(app_id, kind, perm_id)
            names.append("%s: %s%s" % (api, name, "" if kind == "Role" else " (delegated)"))
        view["api_permissions"] = sorted(names)
        if owners is not None:
            view["owners"] = owners
        if self.params.get("admin_consent"):
            view["admin_consent"] = consented
        return view

    def _result(self, app, sp, declared_perms, consented, owners):
        p = self.params
        return {
            "state": "present",
            "unique_name": app.get("uniqueName"),
            "app_id": app.get("appId"),
            "object_id": app.get("id"),
            "display_name": app.get("displayName"),
            "sign_in_audience": app.get("signInAudience"),
            "service_principal_id": (sp or {}).get("id"),
            "authorization_model": p.get("authorization_model"),
            "smtp_permission_in_entra": smtp_permission_declared(p.get("smtp_send"), p.get("authorization_model")),
            "permissions": [perm.as_dict() for perm in declared_perms],
            "consented": consented[1],
            "owners": owners[1] if owners else None,
            "changes": list(self.changes),
        }
