# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchange_smtp_access_info: the auditor's answer to "which app may send as which mailbox over SMTP, and why".

Reads only (Get-*/Test-* cmdlets, Graph GETs). The cost follows the grants, not the tenant: RBAC grants through the
apps' role assignments and their scopes' members (Get-Recipient -RecipientPreviewFilter), SendAs through one paged
read per app (-Trustee), SMTP AUTH through batched Get-CASMailbox filters; only FullAccess, which Exchange answers
per mailbox, needs a tenant-wide scan (full_access_scan). Per-mailbox calls run a few at a time. Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.exchange_identity import has_smtp_consent
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.principal import PrincipalForms, is_builtin
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.read import (
    ExchangeReader, _is_true, _lower, addresses_of, names_of, nullable_bool, primary_address)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._parallel import bounded_map
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.verdict import (
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


def _assignments(read, apps, app_id):
    """SMTP role assignments, each with the service principal it belongs to (None: not one of the apps)."""
    if app_id:
        rows = []
        for app in apps:
            if app["registered"]:
                rows += [(a, app) for a in read.smtp_assignments(app["object_id"], app["_forms"])]
        return rows
    return [(a, next((app for app in apps if app["_forms"].assigned(a)), None)) for a in read.smtp_assignments()]


class _Audit(object):
    """Everything one report reads, with the cost of each read stated where it is made."""

    def __init__(self, client, graph, params, progress=None):
        self.read = ExchangeReader(client)
        self.graph, self.params, self.progress = graph, params, progress
        self.asked = sorted({_lower(a) for a in [params.get("mailbox")] + list(params.get("mailboxes") or []) if a})
        self.full_scan = bool(params.get("full_access_scan"))
        self.all_pairs = bool(params.get("all_mailboxes"))

    def each(self, fn, items, label):
        return bounded_map(fn, items, progress=self.progress, label=label)

    def scope_members(self, assignments, scopes):
        """{scope name (lower): set of addresses} for the scopes the assignments use (one paged
        Get-Recipient -RecipientPreviewFilter per scope); None under the key "" for an organisation-wide one."""
        members = {}
        for assignment, owner in assignments:
            name = _lower(assignment.get("CustomResourceScope"))
            if name in members or owner is None:
                continue
            if not name:
                members[name] = None  # the whole organisation
                continue
            scope = scopes.get(name)
            rows = self.read.scope_members(scope["filter"]) if scope and scope.get("filter") else []
            members[name] = {primary_address(r) for r in rows if str(r.get("RecipientTypeDetails") or
                                                                     "Mailbox").endswith("Mailbox")}
        return members

    def resolve(self, identities, known):
        """{identity as printed: primary address} for SendAs targets; unknown ones asked one by one."""
        found, unknown = {}, []
        for identity in identities:
            owner = next((a for a, names in known.items() if identity in names), None)
            if owner:
                found[identity] = owner
            else:
                unknown.append(identity)
        for identity, row in zip(unknown, self.each(self.read.recipient, unknown, "SendAs targets resolved")):
            if row is not None and str(row.get("RecipientTypeDetails") or "Mailbox").endswith("Mailbox"):
                found[identity] = primary_address(row)
        return found


def access_report(client, graph, params, progress=None):
    """The report. Cost (admin API calls): a constant, plus pages of the grants' reads (scope members, SendAs per
    app), plus one Test-ServicePrincipalAuthorization per mailbox a scope holds; FullAccess (answered per mailbox
    only) is read for the asked mailboxes, or for every mailbox with full_access_scan."""
    audit = _Audit(client, graph, params, progress)
    read = audit.read
    app_id = params.get("app_id")
    tenant_disabled = read.tenant_smtp_disabled()
    apps = _apps(read, graph, app_id)
    assignments = _assignments(read, apps, app_id)
    used_scopes = {_lower(a.get("CustomResourceScope")) for a, unused in assignments}
    # Written as -RecipientRestrictionFilter, printed as RecipientFilter.
    scopes = [{"name": s.get("Name"), "filter": s.get("RecipientFilter")} for s in read.scopes()
              if not app_id or _lower(s.get("Name")) in used_scopes]
    members = audit.scope_members(assignments, {_lower(s["name"]): s for s in scopes})
    registered = [app for app in apps if app["registered"]]
    # SendAs: one paged read per app, filtered by Exchange (-Trustee), so every row is that app's.
    send_as_rows = dict(zip([a["object_id"] for a in registered],
                            audit.each(lambda a: read.send_as_of(a["object_id"]), registered, "SendAs read")))
    whole = audit.all_pairs or audit.full_scan or any(m is None for m in members.values())
    if whole:
        cas_rows = read.all_cas_mailboxes()
        cas = {primary_address(r): r for r in cas_rows}
    else:
        wanted = set(audit.asked)
        for addresses in members.values():
            wanted |= addresses
        rows = read.cas_mailboxes(wanted) if wanted else {}
        identities = {_lower(r.get("Identity")) for found in send_as_rows.values() for r in found}
        if identities:
            # SendAs rows name the recipient as Exchange prints it: match what is known, ask about the rest.
            resolved = audit.resolve(identities, {primary_address(r): names_of(r) for r in rows.values()})
            more = set(resolved.values()) - set(rows)
            rows.update(read.cas_mailboxes(more) if more else {})
        cas = {primary_address(r): r for r in rows.values()}
    for address in audit.asked:
        if address not in cas and not any(address in addresses_of(r) for r in cas.values()):
            raise ConfigError("Exchange Online has no mailbox %s" % address,
                              option="mailbox" if address == _lower(params.get("mailbox")) else "mailboxes",
                              code="ManagementObjectNotFoundException", fix="check the address")
    names = {address: names_of(row) for address, row in cas.items()}

    def target(row):
        identity = _lower(row.get("Identity"))
        return next((a for a, known in names.items() if identity in known), None)

    send_as_by_box = {}
    for app in registered:
        for row in send_as_rows[app["object_id"]]:
            address = target(row)
            if address:
                send_as_by_box.setdefault(address, {})[app["object_id"]] = _lower(row.get("Trustee"))
    # FullAccess: per mailbox only, for the asked mailboxes or (full_access_scan) every mailbox.
    asked = {a for a in cas if addresses_of(cas[a]) & set(audit.asked) or a in audit.asked}
    full_boxes = sorted(cas) if audit.full_scan else sorted(asked)

    def permissions(address):
        return read.client.invoke("Get-MailboxPermission", {"Identity": address})

    full_rows = dict(zip(full_boxes, audit.each(permissions, full_boxes, "FullAccess read")))
    boxes = []
    for address in sorted(cas):
        row = cas[address]
        full = None
        if address in full_rows:
            full = sorted(_lower(p.get("User")) for p in full_rows[address]
                          if "FullAccess" in str(p.get("AccessRights")) and not is_builtin(p.get("User"))
                          and not _is_true(p.get("Deny")))
        boxes.append({"address": address, "full_access": full,
                      "smtp_auth": smtp_auth_state(nullable_bool(row.get("SmtpClientAuthenticationDisabled")),
                                                   tenant_disabled),
                      "send_as": sorted(send_as_by_box.get(address, {}).values())})
    by_address = {b["address"]: b for b in boxes}

    def full_access_of(app, box):
        if box["full_access"] is None:
            return None  # not read: FullAccess is answered per mailbox (full_access_scan reads every one)
        if any(app["_forms"].names(v) for v in box["full_access"]):
            return True
        unknown = [v for v in box["full_access"] if not any(other["_forms"].names(v) for other in apps)]
        return bool(unknown) and app["registered"] and read.has_full_access(box["address"], app["object_id"])

    # Which (app, mailbox) pairs to judge, and the Test-ServicePrincipalAuthorization each needs.
    plan = []
    for app in apps:
        scoped = set()
        for assignment, owner in assignments:
            if owner is app:
                found = members.get(_lower(assignment.get("CustomResourceScope")))
                scoped |= set(by_address) if found is None else found
        granted = scoped | {a for a, holders in send_as_by_box.items() if app["registered"] and
                            app["object_id"] in holders}
        for box in boxes:
            full = full_access_of(app, box)
            if not (audit.all_pairs or box["address"] in asked or box["address"] in granted or full):
                continue
            plan.append((app, box, full, app["registered"] and box["address"] in scoped))
    checks = [(app, box) for app, box, unused, test in plan if test]
    effect = audit.each(lambda pair: read.in_scope(pair[0]["object_id"], pair[1]["address"]), checks, "in scope")
    in_effect = {(id(app), box["address"]): seen for (app, box), seen in zip(checks, effect)}
    pairs = []
    for app, box, full, unused in plan:
        in_scope = in_effect.get((id(app), box["address"]), False)
        send_as = app["registered"] and app["object_id"] in send_as_by_box.get(box["address"], {})
        facts = {"mailbox_exists": True, "sp_registered": app["registered"], "sp_object_id_ok": app["object_id_ok"],
                 "model": None, "in_scope": in_scope, "full_access": full,
                 "entra_send_claim": app["smtp_send_as_app_consented"], "smtp_auth": box["smtp_auth"]}
        pairs.append({"app_id": app["app_id"], "service_principal_id": app["object_id"], "mailbox": box["address"],
                      "app_display_name": app["entra_display_name"] or app["display_name"],
                      "via": grant_via(in_scope, full, app["smtp_send_as_app_consented"]),
                      "full_access": full, "send_as": send_as, "verdict": verdict(facts)})
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
