# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recognising one service principal in what Exchange prints. Plain Python.

Microsoft does not document how a service principal appears in Get-MailboxPermission's `User`,
Get-RecipientPermission's `Trustee` or a role assignment's `RoleAssignee` / `RoleAssigneeName`: its object id,
its app id, its display name or name, or a SID are all seen in public clients. So a value names the principal when
it equals any of those forms (docs/development.md, "Emulator assumptions"). Reads that Exchange already filtered
by the principal (-User, -Trustee, -RoleAssignee) are trusted as they come: a grant is never made twice because
the printed form differs from the one we sent.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _lower(value):
    return str(value or "").strip().lower()


# Principals that Exchange lists on every mailbox and that are never an app (NT AUTHORITY\SELF and the like).
def is_builtin(value):
    return "\\" in str(value or "")


class PrincipalForms(object):
    """Every spelling of one service principal: from the directory (app id, SP object id, display name) and from
    its registration in Exchange (Get-ServicePrincipal's ObjectId, AppId, DisplayName, Name, Identity, Sid...)."""

    FIELDS = ("ObjectId", "AppId", "DisplayName", "Name", "Identity", "ServiceId", "Sid", "Guid")

    def __init__(self, app_id=None, sp_id=None, display_name=None, registrations=()):
        forms = {_lower(app_id), _lower(sp_id), _lower(display_name)}
        for row in registrations or ():
            forms.update(_lower(row.get(field)) for field in self.FIELDS)
        forms.discard("")
        self.forms = forms

    def exclude(self, registrations):
        """Forget the forms another registration shares (a wrong registration of the same app, same name)."""
        for row in registrations or ():
            self.forms -= {_lower(row.get(field)) for field in self.FIELDS}
        return self

    def names(self, value):
        return _lower(value) in self.forms

    def assigned(self, assignment):
        """True when a role assignment row is this principal's (RoleAssignee, else RoleAssigneeName)."""
        return self.names(assignment.get("RoleAssignee")) or self.names(assignment.get("RoleAssigneeName"))
