# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchange_smtp_access_info: the auditor's answer to "which app may send as which mailbox over SMTP, and why".

Reads only (Get-*/Test-* cmdlets, Graph GETs). Cost: one Test-ServicePrincipalAuthorization per (app, mailbox)
pair, so narrow the report with app_id or mailbox in large tenants. Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange_identity import has_smtp_consent
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange_principal import PrincipalForms, is_builtin
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange_read import (
    ExchangeReader, _lower, nullable_bool, primary_address)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange_verdict import (
    grant_via, smtp_auth_state, verdict)


def _apps(read, graph, app_id):
    """Registered SPs (filtered by app_id), each checked against Entra: is its ObjectId the SP's object id?"""
    apps, entras = [], []
    for row in read.service_principals(app_id):
        entra = graph.find_service_principal(row.get("AppId"))
        entras.append(entra)
        entra_id = (entra or {}).get("id")
        ok = entra_id is not None and _lower(entra_id) == _lower(row.get("ObjectId"))
        app = {"app_id": row.get("AppId"), "object_id": row.get("ObjectId"), "display_name": row.get("DisplayName"),
               "entra_service_principal_id": entra_id, "object_id_ok": ok,
               "smtp_send_as_app_consented": has_smtp_consent(graph, entra_id) if entra_id else None,
               "_forms": PrincipalForms(row.get("AppId"), row.get("ObjectId"), row.get("DisplayName"), [row])}
        if not ok:
            app["problem"] = ("registered with %s, which is not the app's service principal object id (%s): "
                              "Remove-ServicePrincipal and register it again with the right id"
                              % (row.get("ObjectId"), entra_id or "the app has no service principal in Entra ID"))
        apps.append(app)
    if app_id and not apps:
        entra = graph.find_service_principal(app_id)
        entras.append(entra)
        apps.append({"app_id": app_id, "object_id": None, "display_name": (entra or {}).get("displayName"),
                     "entra_service_principal_id": (entra or {}).get("id"), "object_id_ok": False,
                     "registered": False, "problem": "not registered in Exchange (New-ServicePrincipal)",
                     "smtp_send_as_app_consented": has_smtp_consent(graph, entra["id"]) if entra else None,
                     "_forms": PrincipalForms()})
    for app, entra in zip(apps, entras):
        app.setdefault("registered", True)
        _name_drift(app, entra)
    return apps


def _name_drift(app, entra):
    """Who may send, by name: Entra's display name of the app, and Exchange's copy when it differs (drift)."""
    exchange_name = app["display_name"] if app["registered"] else None
    entra_name = (entra or {}).get("displayName")
    app["entra_display_name"] = entra_name
    app["display_name_drift"] = bool(exchange_name and entra_name and exchange_name != entra_name)
    if app["display_name_drift"]:
        app["drift"] = ("Exchange registered the app as %r but Entra ID names it %r: Set-ServicePrincipal -Identity "
                        "%s -DisplayName '%s'" % (exchange_name, entra_name, app["object_id"],
                                                  entra_name.replace("'", "''")))


def _mailboxes(read, mailbox, tenant_disabled):
    if mailbox:
        cas = read.cas_mailbox(mailbox)
        if cas is None:
            raise ConfigError("Exchange Online has no mailbox %s" % mailbox, option="mailbox",
                              code="ManagementObjectNotFoundException", fix="check the address")
        rows = [cas]
    else:
        rows = read.client.invoke("Get-CASMailbox", {"ResultSize": "Unlimited"})
    boxes = []
    for row in rows:
        address = primary_address(row)
        permissions = read.client.invoke("Get-MailboxPermission", {"Identity": address})
        send_as = read.client.invoke("Get-RecipientPermission", {"Identity": address})
        boxes.append({
            "address": address,
            "smtp_auth": smtp_auth_state(nullable_bool(row.get("SmtpClientAuthenticationDisabled")), tenant_disabled),
            "full_access": sorted(_lower(p.get("User")) for p in permissions
                                  if "FullAccess" in str(p.get("AccessRights")) and not is_builtin(p.get("User"))),
            "send_as": sorted(_lower(p.get("Trustee")) for p in send_as if "SendAs" in str(p.get("AccessRights"))),
        })
    return sorted(boxes, key=lambda b: b["address"])


def _assignments(read, apps, app_id):
    """SMTP role assignments, each with the service principal it belongs to (None: not one of the apps)."""
    if app_id:
        rows = []
        for app in apps:
            if app["registered"]:
                rows += [(a, app) for a in read.smtp_assignments(app["object_id"], app["_forms"])]
        return rows
    return [(a, next((app for app in apps if app["_forms"].assigned(a)), None)) for a in read.smtp_assignments()]


def access_report(client, graph, params):
    read = ExchangeReader(client)
    app_id, mailbox = params.get("app_id"), params.get("mailbox")
    tenant_disabled = read.tenant_smtp_disabled()
    apps = _apps(read, graph, app_id)
    boxes = _mailboxes(read, mailbox, tenant_disabled)
    assignments = _assignments(read, apps, app_id)
    used_scopes = {_lower(a.get("CustomResourceScope")) for a, unused in assignments}
    # Written as -RecipientRestrictionFilter, printed as RecipientFilter.
    scopes = [{"name": s.get("Name"), "filter": s.get("RecipientFilter")} for s in read.scopes()
              if not app_id or _lower(s.get("Name")) in used_scopes]

    def granted(values, app, filtered_read):
        """A principal printed in a form no app's forms know (a SID...) is asked about with Exchange's own filter."""
        if any(app["_forms"].names(v) for v in values):
            return True
        unknown = [v for v in values if not any(other["_forms"].names(v) for other in apps)]
        return bool(unknown) and app["registered"] and filtered_read()

    pairs = []
    for app in apps:
        has_assignment = any(owner is app for unused, owner in assignments)
        for box in boxes:
            full_access = granted(box["full_access"], app,
                                  lambda: read.has_full_access(box["address"], app["object_id"]))
            send_as = granted(box["send_as"], app, lambda: read.has_send_as(box["address"], app["object_id"]))
            in_scope = has_assignment and app["registered"] and read.in_scope(app["object_id"], box["address"])
            if not (app_id or mailbox or full_access or in_scope or send_as):
                continue  # whole-tenant report: only pairs where something is granted
            facts = {"mailbox_exists": True, "sp_registered": app["registered"], "sp_object_id_ok": app["object_id_ok"],
                     "model": None, "in_scope": in_scope, "full_access": full_access,
                     "entra_send_claim": app["smtp_send_as_app_consented"], "smtp_auth": box["smtp_auth"]}
            pairs.append({"app_id": app["app_id"], "service_principal_id": app["object_id"],
                          "app_display_name": app["entra_display_name"] or app["display_name"],
                          "mailbox": box["address"], "via": grant_via(in_scope, full_access, app["smtp_send_as_app_consented"]),
                          "send_as": send_as, "verdict": verdict(facts)})
    for app in apps:
        del app["_forms"]
    return {
        "tenant": {"smtp_auth": "disabled" if tenant_disabled else "enabled",
                   "smtp_client_authentication_disabled": tenant_disabled},
        # Sorted: two runs (and two tenants) compare line by line, whatever order Exchange answered in.
        "service_principals": sorted(apps, key=lambda a: (_lower(a["app_id"]) or "", _lower(a["object_id"]) or "")),
        "scopes": sorted(scopes, key=lambda s: _lower(s["name"]) or ""),
        "role_assignments": sorted(({"name": a.get("Name"), "role": a.get("Role"),
                                     "service_principal_id": owner["object_id"] if owner else None,
                                     "role_assignee": a.get("RoleAssignee"), "scope": a.get("CustomResourceScope"),
                                     "enabled": a.get("Enabled", True)}
                                    for a, owner in assignments), key=lambda a: _lower(a["name"]) or ""),
        "mailboxes": boxes,
        "pairs": sorted(pairs, key=lambda p: (p["mailbox"], _lower(p["app_id"]))),
    }
