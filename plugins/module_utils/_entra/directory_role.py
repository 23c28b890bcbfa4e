# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A directory role assigned to an app's service principal, tenant-wide (Graph unified RBAC:
/roleManagement/directory/roleAssignments). The admin app needs Exchange Administrator this way: Exchange's admin
API takes an app's rights from its directory roles (docs/exchange-bootstrap.md)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.checks import is_guid
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.directory_roles import NAMES, ROLES
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.graph import odata_quote

ASSIGNMENTS = "roleManagement/directory/roleAssignments"
TENANT_WIDE = "/"


def role_template_id(value):
    """A role's template id from its name (the built-in roles Microsoft lists) or the id itself."""
    text = str(value or "").strip()
    if is_guid(text):
        return text.lower()
    for name, template_id in ROLES.items():
        if name.lower() == text.lower():
            return template_id
    raise ConfigError("unknown directory role %r" % value, option="role",
                      fix="give one of %s, or a role's template id (a GUID)" % ", ".join(sorted(ROLES)))


def role_label(template_id):
    return NAMES.get(template_id, template_id)


def assignments_of(graph, principal_id, template_id):
    """The tenant-wide assignments of one role to one principal (there is at most one; a list to be safe)."""
    found = graph.list(ASSIGNMENTS, params={"$filter": "principalId eq %s and roleDefinitionId eq %s" % (
        odata_quote(principal_id), odata_quote(template_id))})
    return [a for a in found if (a.get("directoryScopeId") or TENANT_WIDE) == TENANT_WIDE]


def assign(graph, principal_id, template_id):
    return graph.post(ASSIGNMENTS, json={"principalId": principal_id, "roleDefinitionId": template_id,
                                         "directoryScopeId": TENANT_WIDE})


def unassign(graph, assignment_id):
    graph.delete("%s/%s" % (ASSIGNMENTS, assignment_id))
