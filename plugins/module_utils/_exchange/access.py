# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""exchange_smtp_access: bring the Exchange side of one app's SMTP sending to the declared state.

describe (read cmdlets only) -> plan (a list of write cmdlets) -> apply unless check mode -> verdict per mailbox.
A run whose declaration already holds plans nothing, so it sends no write cmdlet. Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.client import ExchangeCmdletError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.filters import same_filter
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.principal import PrincipalForms
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.read import (
    ExchangeReader, addresses_of, names_of, nullable_bool, _lower)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._parallel import bounded_map
from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import poll
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.verdict import (
    SMTP_SEND_ROLE, smtp_auth_state, verdict)

ADMIN_API_ONLY = ("Exchange's admin API (Test-ServicePrincipalAuthorization) shows the grant in effect, but SMTP "
                  "AUTH answers from Exchange's permission cache, which can lag behind by more than an hour: until "
                  "it catches up SMTP answers 535 5.7.3. Prove it with o365.smtp_oauth.send_mail in check mode and "
                  "the sending app's own credential (see this module's examples)")
# SmtpClientAuthenticationDisabled for each word (the mailbox's own value; "inherit" follows the tenant).
SMTP_AUTH_VALUES = {"inherit": None, "disabled": True, "enabled": False}


def default_scope_name(app_id):
    return "SMTP OAuth %s" % app_id


def scope_filter(addresses, group_dn=None):
    """The RecipientRestrictionFilter of the declared mailboxes (or group), stable so re-runs compare equal."""
    if group_dn:
        return "MemberOfGroup -eq '%s'" % group_dn.replace("'", "''")
    return " -or ".join("PrimarySmtpAddress -eq '%s'" % a.replace("'", "''") for a in sorted(set(addresses)))


class Action(object):
    def __init__(self, cmdlet, parameters, what, address=None):
        self.cmdlet, self.parameters, self.what, self.address = cmdlet, parameters, what, address

    def describe(self):
        return "%s %s" % (self.cmdlet, " ".join("-%s %s" % (k, _ps(v)) for k, v in self.parameters.items()))


def _ps(value):
    if value is None:
        return "$null"
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, list):
        return ",".join(_ps(v) for v in value)
    return "'%s'" % str(value).replace("'", "''")


class ExchangeAccess(object):
    """One task's run. `client`: ExchangeAdminClient; `identity`: AppIdentity (_exchange_identity)."""

    def __init__(self, client, identity, params, check_mode, smtp_consent=None, sleep=time.sleep,
                 clock=time.monotonic, progress=None):
        self.client = client
        self.read = ExchangeReader(client)
        self.identity = identity
        self.params = params
        self.check_mode = check_mode
        self.smtp_consent = smtp_consent  # callable -> bool: Entra SMTP.SendAsApp consented (classic model)
        self.sleep, self.clock = sleep, clock
        self.model = params["authorization_model"]  # resolved from the cloud (_clouds.resolve_authorization_model)
        self.scope_name = params.get("scope_name") or default_scope_name(identity.app_id)
        self.mailboxes = [dict(m, address=_lower(m["address"])) for m in params.get("mailboxes") or []]
        self.actions = []
        self.warnings = []
        self.primary = {}  # declared address -> the mailbox's primary SMTP address (what a scope filter matches)
        self.progress = progress  # callable(line): how far the per-mailbox reads are (the module's -v output)
        self._consent = None

    def consent(self):
        """Entra SMTP.SendAsApp consented (True/False, None = unknown), read once per run."""
        if self._consent is None and self.smtp_consent:
            self._consent = self.smtp_consent()
        return self._consent

    def _each(self, fn, addresses, label):
        """fn(address) for every address, a few at a time (Exchange answers these per mailbox only)."""
        return dict(zip(addresses, bounded_map(fn, addresses, progress=self.progress, label=label)))

    # -- describe --------------------------------------------------------------------------------------------------
    def describe(self):
        """The current state of everything the task declares, in the diff's shape."""
        self._check_rbac_role()
        sp_id = self.identity.sp_id
        regs = self.read.service_principals(self.identity.app_id)
        self.good_reg = [r for r in regs if _lower(r.get("ObjectId")) == _lower(sp_id)]
        self.wrong_regs = [r for r in regs if _lower(r.get("ObjectId")) != _lower(sp_id)]
        self.forms = PrincipalForms(self.identity.app_id, sp_id, self.identity.display_name,
                                    self.good_reg).exclude(self.wrong_regs)
        registered = bool(self.good_reg)
        self.tenant_disabled = self.read.tenant_smtp_disabled()
        state = {"service_principal": {"app_id": self.identity.app_id, "object_id": sp_id} if registered else None,
                 "wrong_registrations": sorted(r.get("ObjectId") for r in self.wrong_regs),
                 "authorization_model": self.model, "mailboxes": {}}
        # Cost per run: a few batched reads for all declared mailboxes, plus one read per mailbox only for what
        # Exchange answers per mailbox (FullAccess) and only when the model needs it.
        addresses = [m["address"] for m in self.mailboxes]
        cas_rows = self.read.cas_mailboxes(addresses) if addresses else {}
        for index, entry in enumerate(self.mailboxes):
            cas = cas_rows.get(entry["address"])
            if cas is None:
                raise ConfigError("Exchange Online has no mailbox %s" % entry["address"],
                                  option="mailboxes[%d].address" % index, code="ManagementObjectNotFoundException",
                                  fix="check the address; the mailbox (a shared mailbox is enough) must exist and may "
                                      "take minutes to appear after it is created")
            self.primary[entry["address"]] = _lower(cas.get("PrimarySmtpAddress")) or entry["address"]
        send_as = self._send_as(cas_rows) if registered and addresses else {}
        # FullAccess matters to the classic model, to removals (purge, absent) and to an RBAC app whose tokens
        # carry the Entra SMTP.SendAsApp role (Exchange then checks FullAccess); otherwise it is not read (null).
        need_full = registered and (self.model == "classic" or self.params.get("purge")
                                    or self.params.get("state") == "absent" or self.consent() is True)
        full = self._each(lambda a: self.read.has_full_access(a, sp_id), addresses, "FullAccess read") \
            if need_full else {}
        for entry in self.mailboxes:
            address, cas = entry["address"], cas_rows[entry["address"]]
            state["mailboxes"][address] = {
                "smtp_auth": smtp_auth_state(nullable_bool(cas.get("SmtpClientAuthenticationDisabled")),
                                             self.tenant_disabled)["mailbox"],
                "full_access": full.get(address, False) if need_full else (False if not registered else None),
                "send_as": send_as.get(address, False),
            }
        scope = self.read.scope(self.scope_name)
        # Written as -RecipientRestrictionFilter, read back as RecipientFilter (in Exchange's own spelling).
        state["scope"] = {"name": scope["Name"], "filter": scope.get("RecipientFilter")} if scope else None
        self.assignments = self.read.smtp_assignments(sp_id, self.forms) if registered else []
        state["role_assignments"] = sorted("%s (scope: %s)" % (a.get("Name"), a.get("CustomResourceScope") or
                                                               "organization") for a in self.assignments)
        return state

    def _check_rbac_role(self):
        """Before anything is planned: the RBAC model needs the role 'Application SMTP.SendAsApp' in the tenant."""
        if self.model != "rbac" or self.params.get("state") == "absent" or self.read.smtp_role_exists():
            return
        raise ConfigError("Exchange Online has no management role '%s' in this tenant, so the RBAC model cannot work "
                          "here: use authorization_model: classic (Microsoft announces SMTP over RBAC for Applications "
                          "for Worldwide only, MC1158911; GCC tenants and tenants it has not reached yet lack the role)"
                          % SMTP_SEND_ROLE, option="authorization_model", code="ManagementObjectNotFoundException",
                          fix="set authorization_model: classic (service principal + FullAccess on each mailbox)")

    def _send_as(self, cas_rows):
        """{declared address: SendAs held} from one paged read of the trustee's grants (filtered by Exchange with
        -Trustee, so trusted as they come). A grant naming its recipient in a form no declared mailbox shows is
        resolved with Get-Recipient (one call per such grant), so that a re-run never grants twice (nor misses a
        removal) for a difference of spelling."""
        names = {address: names_of(row) for address, row in cas_rows.items()}
        held, unmatched = {}, set()
        for row in self.read.send_as_of(self.identity.sp_id):
            identity = _lower(row.get("Identity"))
            owners = [a for a, known in names.items() if identity in known]
            for address in owners:
                held[address] = True
            if not owners and identity:
                unmatched.add(identity)
        unmatched = sorted(unmatched)
        for found in self._each(self.read.recipient, unmatched, "SendAs recipients resolved").values():
            if found is not None:
                shown = names_of(found)
                for address, known in names.items():
                    if known & shown & addresses_of(found) or address in shown:
                        held[address] = True
        return held

    # -- plan --------------------------------------------------------------------------------------------------------
    def plan_present(self, before):
        sp_id, after = self.identity.sp_id, copy.deepcopy(before)
        for reg in self.wrong_regs:
            self._act("Remove-ServicePrincipal", {"Identity": reg.get("ObjectId")},
                      "remove the registration with the wrong object id %s" % reg.get("ObjectId"))
        after["wrong_registrations"] = []
        if before["service_principal"] is None:
            self._act("New-ServicePrincipal", {"AppId": self.identity.app_id, "ObjectId": sp_id,
                                               "DisplayName": self.identity.display_name},
                      "register the app's service principal in Exchange")
            after["service_principal"] = {"app_id": self.identity.app_id, "object_id": sp_id}
        if self.model == "rbac":
            self._plan_rbac(before, after)
        elif self.params.get("purge"):
            self._remove_assignments(self.assignments, after)
            if before["scope"] is not None:
                # The RBAC model's scope is named after this app: unused in the classic model, so it goes too.
                self._act("Remove-ManagementScope", {"Identity": self.scope_name, "Confirm": False},
                          "remove the management scope the RBAC model used")
                after["scope"] = None
        for entry in self.mailboxes:
            self._plan_mailbox(entry, before["mailboxes"][entry["address"]], after["mailboxes"][entry["address"]])
        if self.params.get("purge"):
            self._plan_purge_permissions()
        return after

    def _plan_rbac(self, before, after):
        wanted = scope_filter([self.primary[m["address"]] for m in self.mailboxes], self.group_dn())
        if before["scope"] is None:
            self._act("New-ManagementScope", {"Name": self.scope_name, "RecipientRestrictionFilter": wanted},
                      "create the management scope over the declared mailboxes")
        elif not same_filter(before["scope"]["filter"], wanted):
            self._act("Set-ManagementScope", {"Identity": self.scope_name, "RecipientRestrictionFilter": wanted},
                      "update the management scope to the declared mailboxes")
        else:
            wanted = before["scope"]["filter"]  # the same filter in Exchange's spelling: no change to show
        after["scope"] = {"name": self.scope_name, "filter": wanted}
        ours = [a for a in self.assignments if _lower(a.get("CustomResourceScope")) == _lower(self.scope_name)]
        if not ours:
            self._act("New-ManagementRoleAssignment", {"Name": self.scope_name, "App": self.identity.sp_id,
                                                       "Role": SMTP_SEND_ROLE, "CustomResourceScope": self.scope_name},
                      "assign the role %s scoped to the declared mailboxes" % SMTP_SEND_ROLE)
            after["role_assignments"] = sorted(after["role_assignments"] + [
                "%s (scope: %s)" % (self.scope_name, self.scope_name)])
        if self.params.get("purge"):
            self._remove_assignments([a for a in self.assignments if a not in ours], after)

    def _remove_assignments(self, assignments, after):
        for assignment in assignments:
            self._act("Remove-ManagementRoleAssignment", {"Identity": assignment.get("Name"), "Confirm": False},
                      "remove the undeclared role assignment %s" % assignment.get("Name"))
            label = "%s (scope: %s)" % (assignment.get("Name"), assignment.get("CustomResourceScope") or "organization")
            after["role_assignments"] = [a for a in after["role_assignments"] if a != label]

    def group_dn(self):
        group = self.params.get("group")
        if not group:
            return None
        if not hasattr(self, "_group_dn"):
            found = self.read.recipient(group)
            if found is None:
                raise ConfigError("Exchange Online has no group %s" % group, option="group",
                                  fix="give the group's address, name or distinguished name")
            self._group_dn = found.get("DistinguishedName") or found.get("Identity")
        return self._group_dn

    def _plan_mailbox(self, entry, now, after):
        address, sp_id = entry["address"], self.identity.sp_id
        want_full = self.model == "classic"
        if want_full and not now["full_access"]:
            self._act("Add-MailboxPermission", {"Identity": address, "User": sp_id, "AccessRights": ["FullAccess"]},
                      "grant FullAccess (classic model)", address)
            after["full_access"] = True
        elif not want_full and now["full_access"] and self.params.get("purge"):
            self._act("Remove-MailboxPermission", {"Identity": address, "User": sp_id, "AccessRights": ["FullAccess"],
                                                   "Confirm": False}, "remove FullAccess (not declared)", address)
            after["full_access"] = False
        want_send_as = bool(entry.get("send_as"))
        if want_send_as != now["send_as"]:
            verb = "Add" if want_send_as else "Remove"
            params = {"Identity": address, "Trustee": sp_id, "AccessRights": ["SendAs"]}
            if not want_send_as:
                params["Confirm"] = False
            self._act("%s-RecipientPermission" % verb, params, "%s SendAs" % ("grant" if want_send_as else "remove"),
                      address)
            after["send_as"] = want_send_as
        wanted, current = entry.get("smtp_auth") or "enabled", now["smtp_auth"]
        effective = smtp_auth_state(SMTP_AUTH_VALUES[current], self.tenant_disabled)["effective"]
        if wanted == "enabled" and effective != "enabled":
            target = False  # explicit: "enabled" means effective, so it must not follow a disabled tenant
        elif wanted != "enabled" and current != wanted:
            target = SMTP_AUTH_VALUES[wanted]
        else:
            return
        self._act("Set-CASMailbox", {"Identity": address, "SmtpClientAuthenticationDisabled": target},
                  "set SMTP AUTH for the mailbox to %s" % wanted, address)
        after["smtp_auth"] = {None: "inherit", True: "disabled", False: "enabled"}[target]

    def _plan_purge_permissions(self):
        """Purge: SendAs and FullAccess of this app on recipients that are not declared."""
        if not self.good_reg:
            return
        declared, sp_id = {m["address"] for m in self.mailboxes}, self.identity.sp_id
        for row in self.read.send_as(sp_id):
            if not self._declared_recipient(row, declared):
                self._act("Remove-RecipientPermission", {"Identity": row.get("Identity"), "Trustee": sp_id,
                                                         "AccessRights": ["SendAs"], "Confirm": False},
                          "remove SendAs on %s (not declared)" % row.get("Identity"))
        # FullAccess is answered per mailbox only: purge is the one tenant-wide scan, a few mailboxes at a time.
        others = [a for a in (_lower(b.get("PrimarySmtpAddress")) for b in self.read.mailboxes()) if a not in declared]
        held = self._each(lambda a: self.read.has_full_access(a, sp_id), others, "FullAccess scan (purge)")
        for address in others:
            if held[address]:
                self._act("Remove-MailboxPermission", {"Identity": address, "User": sp_id,
                                                       "AccessRights": ["FullAccess"], "Confirm": False},
                          "remove FullAccess on %s (not declared)" % address)

    def _declared_recipient(self, row, declared):
        names = {_lower(row.get(k)) for k in ("Identity", "PrimarySmtpAddress") if row.get(k)}
        if names & declared:
            return True
        found = self.read.recipient(row.get("Identity"))
        return found is not None and _lower(found.get("PrimarySmtpAddress")) in declared

    def plan_absent(self, before):
        after = copy.deepcopy(before)
        regs = self.good_reg + self.wrong_regs
        if not regs:
            return after
        for reg in regs:
            forms = PrincipalForms(reg.get("AppId"), reg.get("ObjectId"), reg.get("DisplayName"), [reg])
            for assignment in self.read.smtp_assignments(reg.get("ObjectId"), forms):
                self._act("Remove-ManagementRoleAssignment", {"Identity": assignment.get("Name"), "Confirm": False},
                          "remove the role assignment %s" % assignment.get("Name"))
        after["role_assignments"] = []
        if before["scope"] is not None:
            self._act("Remove-ManagementScope", {"Identity": self.scope_name, "Confirm": False},
                      "remove the management scope")
            after["scope"] = None
        for entry in self.mailboxes:
            now, later = before["mailboxes"][entry["address"]], after["mailboxes"][entry["address"]]
            if now["full_access"]:
                self._act("Remove-MailboxPermission", {"Identity": entry["address"], "User": self.identity.sp_id,
                                                       "AccessRights": ["FullAccess"], "Confirm": False},
                          "remove FullAccess", entry["address"])
            if now["send_as"]:
                self._act("Remove-RecipientPermission", {"Identity": entry["address"], "Trustee": self.identity.sp_id,
                                                         "AccessRights": ["SendAs"], "Confirm": False},
                          "remove SendAs", entry["address"])
            later.update(full_access=False, send_as=False)
        if self.params.get("purge"):
            self._plan_purge_permissions()
        for reg in regs:
            self._act("Remove-ServicePrincipal", {"Identity": reg.get("ObjectId"), "Confirm": False},
                      "remove the app's registration in Exchange")
        after["service_principal"], after["wrong_registrations"] = None, []
        return after

    def _act(self, cmdlet, parameters, what, address=None):
        self.actions.append(Action(cmdlet, parameters, what, address))

    # -- apply and verdict -------------------------------------------------------------------------------------------
    def apply(self):
        for action in self.actions:
            try:
                self.client.invoke(action.cmdlet, action.parameters)
            except ExchangeCmdletError as error:
                if not self._already_done(action, error):
                    raise

    def _already_done(self, action, error):
        """A retried write whose first attempt went through (the answer was lost) fails as duplicate / not found."""
        verb = action.cmdlet.split("-", 1)[0]
        if verb == "Remove" and error.not_found:
            return True
        if verb != "New" or not error.duplicate:
            return False
        if action.cmdlet == "New-ManagementRoleAssignment":  # the name may belong to another app's assignment
            rows = self.read.smtp_assignments(self.identity.sp_id, self.forms)
            return any(_lower(r.get("Name")) == _lower(action.parameters["Name"]) for r in rows)
        if action.cmdlet == "New-ManagementScope":
            scope = self.read.scope(action.parameters["Name"])
            return scope is not None and same_filter(scope.get("RecipientFilter"),
                                                     action.parameters["RecipientRestrictionFilter"])
        regs = self.read.service_principals(self.identity.app_id)
        return any(_lower(r.get("ObjectId")) == _lower(self.identity.sp_id) for r in regs)

    def wait_for_effect(self, timeout):
        """Poll Test-ServicePrincipalAuthorization until every declared mailbox is in effect (RBAC); bounded."""
        if self.model != "rbac" or not self.mailboxes:
            self.warnings.append("wait_for_effect can only confirm RBAC role assignments; FullAccess (classic) "
                                 "cannot be observed through the admin API, the verdict stays 'pending'")
            return False
        pending = [m["address"] for m in self.mailboxes]

        def still_pending():
            nonlocal pending  # each round asks only for the mailboxes not yet in effect
            seen = self._each(lambda a: self.read.in_scope(self.identity.sp_id, a), pending, "in effect")
            pending = [a for a in pending if not seen[a]]
            return pending
        poll(still_pending, timeout, ready=lambda left: not left, delay=1.0, max_delay=15.0, sleep=self.sleep,
             clock=self.clock)
        if pending:
            self.warnings.append("after %s seconds Exchange does not apply the role assignment yet for: %s; it "
                                 "usually does within minutes (up to about 2 hours)" % (timeout, ", ".join(pending)))
        return not pending

    def verdicts(self, after, confirmed):
        """Per declared mailbox: what changed and whether the app may send as it now (allowed/pending/denied).

        A mailbox this run changed stays 'pending' even when wait_for_effect saw the grant in the admin API
        (confirmed): SMTP AUTH answers from Exchange's permission cache, which lags behind the admin API (by more
        than an hour, Microsoft says of the sister mechanism). Only an XOAUTH2 login with the sending app's own
        credential proves it: send_mail in check mode.
        """
        sp_ok = after["service_principal"] is not None
        # Read in both models: in RBAC a consented SMTP.SendAsApp makes Exchange ignore the role assignment.
        consent = self.consent()
        has_assignment = self.model == "rbac" and bool(after.get("role_assignments"))
        touched_by = {m["address"]: any(a.address in (None, m["address"]) for a in self.actions)
                      for m in self.mailboxes}
        asked = [a for a, touched in touched_by.items() if sp_ok and has_assignment and not touched]
        seen = self._each(lambda a: self.read.in_scope(self.identity.sp_id, a), asked, "in effect")
        results = []
        for entry in self.mailboxes:
            address, state = entry["address"], after["mailboxes"][entry["address"]]
            touched = touched_by[address]
            in_scope, pending = None, touched
            if sp_ok and has_assignment:
                if touched:
                    in_scope = True  # just configured (or about to be, in check mode): Exchange applies it later
                else:
                    in_scope = seen[address]
                    if not in_scope and not self.params.get("group"):
                        in_scope = pending = True  # our scope names this address: configured, not applied yet
            facts = {"mailbox_exists": True, "sp_registered": sp_ok, "sp_object_id_ok": True, "model": self.model,
                     "in_scope": in_scope, "full_access": state["full_access"], "entra_send_claim": consent,
                     "smtp_auth": smtp_auth_state(SMTP_AUTH_VALUES[state["smtp_auth"]], self.tenant_disabled),
                     "pending": pending}
            judged = verdict(facts)
            if confirmed and judged["status"] == "pending":
                judged["reasons"] = [ADMIN_API_ONLY]
            results.append({"address": address, "changes": [a.what for a in self.actions if a.address == address],
                            "full_access": state["full_access"], "send_as": state["send_as"],
                            "smtp_auth": facts["smtp_auth"], "in_scope": in_scope,
                            "admin_api_in_effect": bool(confirmed) if touched else None, "verdict": judged})
        if self.model == "rbac" and consent:
            self.warnings.append("the app also holds the Entra permission SMTP.SendAsApp: its tokens then carry that "
                                 "role and Exchange checks FullAccess instead of RBAC; remove it for the RBAC model")
        return results
