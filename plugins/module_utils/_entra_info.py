# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""entra_app_info: a read-only report for auditors, stable between runs so two runs can be diffed.

Every list is sorted; permissions are by name; credentials carry days left, never a value. Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra_app import find_app
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra_credential import (
    certificate_view, federated_view, secret_view)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra_permissions import (
    EXCHANGE_APP_ID, SMTP_ROLE, PermissionResolver, normalize_rra)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra_time import utcnow


def _credential_sort_key(view):
    return (view["type"], view.get("end") or "", view.get("key_id") or view.get("name") or "")


def app_report(graph, params, now=None):
    """(found, report, warnings) for the app named by unique_name, app_id or display_name."""
    now = now or utcnow()
    app = find_app(graph, params.get("unique_name"), params.get("app_id"), params.get("display_name"))
    if not app:
        return False, {"exists": False}, []
    resolver = PermissionResolver(graph)
    sp = graph.find_service_principal(app["appId"])

    declared = []
    for app_id, kind, perm_id in normalize_rra(app.get("requiredResourceAccess")):
        api, name = resolver.name_of(app_id, kind, perm_id)
        declared.append({"api": api, "api_app_id": app_id, "permission": name,
                         "type": "application" if kind == "Role" else "delegated"})
    declared.sort(key=lambda d: (d["api"].lower(), d["type"], d["permission"]))

    consented = []
    if sp:
        for assignment in graph.list("servicePrincipals/%s/appRoleAssignments" % sp["id"]):
            api, name = resolver.role_name_by_sp(assignment["resourceId"], assignment["appRoleId"])
            consented.append({"api": api, "permission": name, "assignment_id": assignment.get("id"),
                              "created": assignment.get("createdDateTime")})
    consented.sort(key=lambda d: (str(d["api"]).lower(), str(d["permission"])))

    declared_roles = set((d["api"], d["permission"]) for d in declared if d["type"] == "application")
    consented_roles = set((d["api"], d["permission"]) for d in consented)

    credentials = [secret_view(c, now) for c in app.get("passwordCredentials") or []]
    credentials += [certificate_view(c, now) for c in app.get("keyCredentials") or []]
    credentials.sort(key=_credential_sort_key)
    fics = graph.list("applications/%s/federatedIdentityCredentials" % app["id"])
    federated = sorted((federated_view(c) for c in fics), key=lambda v: v["name"] or "")
    owners = sorted(o.get("userPrincipalName") or o.get("appId") or o["id"]
                    for o in graph.list("applications/%s/owners" % app["id"]))

    warn_days = params.get("warn_days")
    warn_days = 30 if warn_days is None else warn_days
    warnings = []
    expiring = []
    for cred in credentials:
        if cred["days_left"] is None:
            continue
        label = "%s %s (%s)" % (cred["type"], cred.get("key_id"), cred.get("display_name") or cred.get("thumbprint"))
        if cred["days_left"] < 0:
            warnings.append("%s expired on %s" % (label, cred["end"]))
        elif cred["days_left"] <= warn_days:
            warnings.append("%s expires in %d days (%s)" % (label, cred["days_left"], cred["end"]))
        else:
            continue
        expiring.append(cred.get("key_id"))
    if not sp:
        warnings.append("the app has no service principal: it cannot get tokens and Exchange cannot register it")
    smtp_in_entra = any(d["api_app_id"] == EXCHANGE_APP_ID and d["permission"] == SMTP_ROLE for d in declared)

    report = {
        "exists": True,
        "unique_name": app.get("uniqueName"),
        "app_id": app.get("appId"),
        "object_id": app.get("id"),
        "display_name": app.get("displayName"),
        "description": app.get("description"),
        "notes": app.get("notes"),
        "sign_in_audience": app.get("signInAudience"),
        "tags": sorted(app.get("tags") or []),
        "created": app.get("createdDateTime"),
        "owners": owners,
        "service_principal_id": (sp or {}).get("id"),
        "service_principal_enabled": (sp or {}).get("accountEnabled") if sp else None,
        "declared_permissions": declared,
        "consented_permissions": consented,
        "declared_not_consented": ["%s: %s" % k for k in sorted(declared_roles - consented_roles)],
        "consented_not_declared": ["%s: %s" % k for k in sorted(consented_roles - declared_roles)],
        "smtp_permission_in_entra": smtp_in_entra,
        "credentials": credentials,
        "federated_credentials": federated,
        "expiring_credentials": sorted(k for k in expiring if k),
        "warn_days": warn_days,
    }
    return True, report, warnings
