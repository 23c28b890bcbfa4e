# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the Exchange side of app-only SMTP through the admin API: read cmdlets only (Get-*, Test-*), shared by
exchange_smtp_access (to plan) and exchange_smtp_access_info (to report). Plain Python."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.client import ExchangeCmdletError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.principal import PrincipalForms, is_builtin
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.verdict import SMTP_SEND_ROLE


def _lower(value):
    return str(value or "").strip().lower()


def _is_true(value):
    return value is True or _lower(value) == "true"


def nullable_bool(value):
    """SmtpClientAuthenticationDisabled as Exchange prints it (true/false/null, or strings) -> True/False/None."""
    if value is None or _lower(value) in ("", "null", "$null"):
        return None
    return _is_true(value)


# Longest filter sent in one call. Microsoft documents 2048 characters as the maximum of a RecipientFilter
# (New-DynamicDistributionGroup); assumed to hold for -Filter too (docs/development.md, Emulator assumptions).
MAX_FILTER_CHARS = 2048
UNLIMITED = "Unlimited"


def _quoted(value):
    return "'%s'" % str(value).replace("'", "''")


def address_filters(addresses, limit=MAX_FILTER_CHARS):
    """OPATH filters selecting recipients by any of their addresses, each at most `limit` characters."""
    filters, current = [], ""
    for address in sorted(set(addresses)):
        clause = "EmailAddresses -eq %s" % _quoted(address)
        joined = clause if not current else "%s -or %s" % (current, clause)
        if current and len(joined) > limit:
            filters.append(current)
            joined = clause
        current = joined
    if current:
        filters.append(current)
    return filters


def addresses_of(row):
    """Every address a recipient row shows: primary, UPN and proxy addresses, lowercased, without prefixes."""
    found = {_lower(row.get("PrimarySmtpAddress")), _lower(row.get("UserPrincipalName"))}
    for value in row.get("EmailAddresses") or ():
        found.add(_lower(str(value).split(":", 1)[-1]))
    found.discard("")
    return found


def names_of(row):
    """Every name Exchange may print a recipient as in another cmdlet's Identity column."""
    keys = ("Identity", "Name", "Alias", "DistinguishedName", "Guid", "ExternalDirectoryObjectId", "ExchangeGuid")
    found = {_lower(row.get(k)) for k in keys}
    found.discard("")
    return found | addresses_of(row)


def primary_address(row):
    return _lower(row.get("PrimarySmtpAddress") or row.get("UserPrincipalName") or row.get("Identity"))


class ExchangeReader(object):
    """Read cmdlets with the answers turned into plain values. `client` is an ExchangeAdminClient."""

    def __init__(self, client):
        self.client = client
        self.role_assignee_works = True  # until Exchange refuses -RoleAssignee for a service principal

    def service_principals(self, app_id=None):
        rows = self.client.invoke("Get-ServicePrincipal")
        return [r for r in rows if app_id is None or _lower(r.get("AppId")) == _lower(app_id)]

    def smtp_role_exists(self):
        """True when the tenant has the management role 'Application SMTP.SendAsApp' (RBAC for Applications for
        SMTP): Microsoft rolls it out to Worldwide only (MC1158911), so a GCC tenant or one not yet reached lacks it."""
        return bool(self.client.get_or_none("Get-ManagementRole", {"Identity": SMTP_SEND_ROLE}))

    def tenant_smtp_disabled(self):
        rows = self.client.invoke("Get-TransportConfig")
        return _is_true((rows[0] if rows else {}).get("SmtpClientAuthenticationDisabled"))

    def cas_mailboxes(self, addresses):
        """{asked address: CAS row} for many mailboxes in few calls (address filters within Exchange's filter
        length, paged); an address Exchange has no mailbox for is missing from the answer."""
        wanted = {_lower(a) for a in addresses}
        found = {}
        for opath in address_filters(wanted):
            for row in self.client.invoke("Get-CASMailbox", {"Filter": opath, "ResultSize": UNLIMITED}):
                for address in addresses_of(row) & wanted:
                    found[address] = row
        return found

    def all_cas_mailboxes(self):
        """Every mailbox's CAS settings: one paged read."""
        return self.client.invoke("Get-CASMailbox", {"ResultSize": UNLIMITED})

    def scope_members(self, recipient_filter):
        """The recipients a management scope's filter selects (Get-Recipient -RecipientPreviewFilter, paged)."""
        return self.client.invoke("Get-Recipient", {"RecipientPreviewFilter": recipient_filter,
                                                    "ResultSize": UNLIMITED})

    def send_as_of(self, sp_id):
        """Every SendAs grant of one trustee in the tenant: one paged read (Exchange filters by -Trustee)."""
        rows = self.client.invoke("Get-RecipientPermission", {"Trustee": sp_id, "ResultSize": UNLIMITED})
        return [r for r in rows if "SendAs" in str(r.get("AccessRights")) and not _is_true(r.get("Deny"))]

    def mailboxes(self):
        return self.client.invoke("Get-Mailbox", {"ResultSize": "Unlimited"})

    def recipient(self, identity):
        rows = self.client.get_or_none("Get-Recipient", {"Identity": identity})
        return rows[0] if rows else None

    def has_full_access(self, address, sp_id):
        # Exchange filters by -User itself: whatever form it prints the principal in, these rows are its rows.
        rows = self.client.invoke("Get-MailboxPermission", {"Identity": address, "User": sp_id})
        return any(not is_builtin(r.get("User")) and "FullAccess" in str(r.get("AccessRights"))
                   and not _is_true(r.get("Deny")) for r in rows)

    def send_as(self, sp_id):
        """Recipients the SP may send as: {lowercased identity as Exchange prints it}."""
        return self.send_as_of(sp_id)

    def scope(self, name):
        rows = self.client.get_or_none("Get-ManagementScope", {"Identity": name})
        return rows[0] if rows else None

    def scopes(self):
        return self.client.invoke("Get-ManagementScope")

    def smtp_assignments(self, sp_id=None, forms=None):
        """Role assignments 'Application SMTP.SendAsApp': all of them, or those of one service principal.

        The cmdlet filters by -Role and -RoleAssignee (there is no -App). Whether -RoleAssignee resolves a service
        principal is not documented (its reference names role groups, policies, users and groups): when Exchange
        refuses it, the role's assignments are read and matched here by every form the principal is printed in.
        """
        params = {"Role": SMTP_SEND_ROLE}
        if sp_id and self.role_assignee_works:
            try:
                return self._smtp_rows(dict(params, RoleAssignee=sp_id))
            except ExchangeCmdletError as error:
                if error.status not in (400, 404):
                    raise
                self.role_assignee_works = False
        rows = self._smtp_rows(params)
        if sp_id:
            forms = forms or PrincipalForms(sp_id=sp_id)
            rows = [r for r in rows if forms.assigned(r)]
        return rows

    def _smtp_rows(self, params):
        rows = self.client.invoke("Get-ManagementRoleAssignment", params)
        return [r for r in rows if _lower(r.get("Role")) == _lower(SMTP_SEND_ROLE)]

    def in_scope(self, sp_id, address):
        """True when an SMTP.SendAsApp role assignment of the SP covers the mailbox and is in effect."""
        rows = self.client.invoke("Test-ServicePrincipalAuthorization", {"Identity": sp_id, "Resource": address})
        return any(_is_true(r.get("InScope")) and SMTP_SEND_ROLE.split(" ", 1)[1] in str(r.get("GrantedPermissions"))
                   for r in rows)
