# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""entra_app_info: a read-only report for auditors, stable between runs so two runs can be diffed.

Every list is sorted; permissions are by name; credentials carry days left, never a value. One app
(`app_report`), or several at once (`apps_report`: given app ids and / or every app holding the admin-consented
Exchange SMTP.SendAsApp), for expiry monitoring across the tenant. Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.app import find_app
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.credential import (
    certificate_view, federated_view, secret_view)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.permissions import (
    EXCHANGE_APP_ID, SMTP_ROLE, PermissionResolver, normalize_rra)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.dates import EPOCH, parse_time, utcnow


def _credential_sort_key(view):
    return (view["type"], view.get("end") or "", view.get("key_id") or view.get("name") or "")


def _with_timestamp(view):
    # Seconds since the epoch, UTC: what a Prometheus textfile (or any arithmetic) needs, without date parsing.
    end = parse_time(view.get("end"))
    view["end_timestamp"] = int((end - EPOCH).total_seconds()) if end else None
    return view


def app_report(graph, params, now=None):
    """(found, report, warnings) for the app named by unique_name, app_id or display_name."""
    app = find_app(graph, params.get("unique_name"), params.get("app_id"), params.get("display_name"))
    if not app:
        return False, {"exists": False}, []
    report, warnings = _report_of(graph, app, PermissionResolver(graph), warn_days_of(params), now or utcnow())
    return True, report, warnings


def warn_days_of(params):
    warn_days = params.get("warn_days")
    return 30 if warn_days is None else warn_days


def smtp_sender_app_ids(graph):
    """App ids of every service principal holding the admin-consented Exchange SMTP.SendAsApp (classic model).

    One paged read of the Exchange resource's appRoleAssignedTo, then one read per holder for its appId.
    """
    exchange = graph.find_service_principal(EXCHANGE_APP_ID)
    if exchange is None:
        return []
    role_ids = set(str(r.get("id", "")).lower() for r in exchange.get("appRoles") or [] if r.get("value") == SMTP_ROLE)
    holders = set()
    for assignment in graph.list("servicePrincipals/%s/appRoleAssignedTo" % exchange["id"]):
        if str(assignment.get("appRoleId", "")).lower() in role_ids and assignment.get("principalId"):
            holders.add(assignment["principalId"])
    app_ids = set()
    for sp_id in holders:
        sp = graph.get_or_none("servicePrincipals/%s" % sp_id)
        if sp and sp.get("appId"):
            app_ids.add(sp["appId"])
    return sorted(app_ids)


def apps_report(graph, params, now=None):
    """(reports, missing app ids, expiring credentials, warnings) for params app_ids and / or smtp_senders.

    Apps are reported once each, sorted by display name then app id; `selected_by` says why each is listed.
    """
    now = now or utcnow()
    warn_days = warn_days_of(params)
    reasons = {}
    for app_id in params.get("app_ids") or []:
        reasons.setdefault(str(app_id).strip().lower(), set()).add("app_ids")
    if params.get("smtp_senders"):
        for app_id in smtp_sender_app_ids(graph):
            reasons.setdefault(app_id.lower(), set()).add("smtp_senders")
    resolver = PermissionResolver(graph)
    reports, missing, expiring, warnings = [], [], [], []
    for app_id in sorted(reasons):
        app = graph.application_by_app_id(app_id)
        if not app:
            missing.append(app_id)
            warnings.append("no application with appId %s in this tenant" % app_id)
            continue
        report, found = _report_of(graph, app, resolver, warn_days, now)
        report["selected_by"] = sorted(reasons[app_id])
        reports.append(report)
        warnings += ["%s (%s): %s" % (report["display_name"], report["app_id"], w) for w in found]
        for cred in report["credentials"]:
            if cred.get("key_id") in report["expiring_credentials"]:
                entry = {"app_id": report["app_id"], "app_name": report["display_name"],
                         "unique_name": report["unique_name"]}
                fields = ("type", "key_id", "display_name", "end", "end_timestamp", "days_left")
                entry.update((k, cred.get(k)) for k in fields)
                expiring.append(entry)
    reports.sort(key=lambda r: (str(r.get("display_name") or "").lower(), r["app_id"]))
    expiring.sort(key=lambda e: (e["end"] or "", e["app_id"], e["key_id"] or ""))
    return reports, missing, expiring, warnings


def _report_of(graph, app, resolver, warn_days, now):
    """(report, warnings) for one application object."""
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

    credentials = [_with_timestamp(secret_view(c, now)) for c in app.get("passwordCredentials") or []]
    credentials += [_with_timestamp(certificate_view(c, now)) for c in app.get("keyCredentials") or []]
    credentials.sort(key=_credential_sort_key)
    fics = graph.list("applications/%s/federatedIdentityCredentials" % app["id"])
    federated = sorted((federated_view(c) for c in fics), key=lambda v: v["name"] or "")
    owners = sorted(o.get("userPrincipalName") or o.get("appId") or o["id"]
                    for o in graph.list("applications/%s/owners" % app["id"]))

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
    return report, warnings
