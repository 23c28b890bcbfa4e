"""The emulated Graph's directory role assignments (unified RBAC): /roleManagement/directory/roleAssignments.

Source: Graph v1.0 reference, "Create unifiedRoleAssignment" / "List unifiedRoleAssignments": POST with
principalId, roleDefinitionId (a built-in role's template id) and directoryScopeId ("/" = the whole tenant) answers
201 with the assignment; GET takes $filter on principalId / roleDefinitionId. Permissions: app-only
RoleManagement.ReadWrite.Directory; delegated the same scope, and the signed-in user must be a Privileged Role
Administrator or a Global Administrator (the page's least privileged roles). Exchange reads these assignments to
decide whether an app may use its admin API (exchange_state.is_admin), after `exchange.role_propagation_delay`.
"""

import time
import uuid

from emulator.device_flow import GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR
from emulator.graph_call import body_of
from emulator.graph_objects import ROLE_ASSIGNMENT_FIELDS, GraphError, bad_request, not_found

ROLE_READ = frozenset(("RoleManagement.Read.Directory", "RoleManagement.Read.All", "Directory.Read.All",
                       "RoleManagement.ReadWrite.Directory"))
ROLE_WRITE = frozenset(("RoleManagement.ReadWrite.Directory",))
ROLE_ADMINS = frozenset((GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR))


def view(unused_call, assignment):
    return dict((k, assignment.get(k)) for k in ROLE_ASSIGNMENT_FIELDS)


def list_role_assignments(call):
    call.allow(ROLE_READ)
    items = [a for a in call.tenant.directory_role_assignments.values() if call.visible(a)]
    return call.collection("roleManagement/directory/roleAssignments", items, "unifiedRoleAssignment", view)


def get_role_assignment(call, key):
    call.allow(ROLE_READ)
    found = call.tenant.directory_role_assignments.get(key)
    if found is None or not call.visible(found):
        raise not_found(key)
    return call.entity("roleManagement/directory/roleAssignments", view(call, found))


def post_role_assignment(call):
    call.allow(ROLE_WRITE, admin_roles=ROLE_ADMINS)
    body = body_of(call)
    for name in ("principalId", "roleDefinitionId"):
        if not body.get(name):
            raise bad_request("Invalid value specified for property '%s' of resource 'UnifiedRoleAssignment'."
                              % name)
    tenant = call.tenant
    principal = body["principalId"]
    if principal not in tenant.service_principals and principal not in tenant.users:
        raise not_found(principal)
    scope = body.get("directoryScopeId") or "/"
    for existing in tenant.directory_role_assignments.values():
        if (existing["principalId"], existing["roleDefinitionId"], existing["directoryScopeId"]) == (
                principal, body["roleDefinitionId"], scope):
            raise GraphError(409, "Request_BadRequest", "A conflicting object with one or more of the specified "
                                                        "property values is present in the directory.")
    assignment = {"id": uuid.uuid4().hex, "principalId": principal, "roleDefinitionId": body["roleDefinitionId"],
                  "directoryScopeId": scope, "appScopeId": None, "condition": None,
                  "principalOrganizationId": tenant.tenant_id, "_written": time.time()}
    tenant.directory_role_assignments[assignment["id"]] = assignment
    status, answer = call.entity("roleManagement/directory/roleAssignments", view(call, assignment), status=201)
    return status, answer


def delete_role_assignment(call, key):
    call.allow(ROLE_WRITE, admin_roles=ROLE_ADMINS)
    if call.tenant.directory_role_assignments.pop(key, None) is None:
        raise not_found(key)
    return 204, None
