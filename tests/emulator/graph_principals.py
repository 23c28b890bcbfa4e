"""The emulated Graph's service principals (create, upsert by appId, delete), app role assignments seen from
both sides (appRoleAssignedTo on the resource, appRoleAssignments on the client), users and directoryObjects."""

import time

from emulator import graph_objects as objs
from emulator.graph_applications import owner_view
from emulator.graph_call import ASSIGN, READ, USER_READ, WRITE, body_of, counting, listing, upsert_wanted
from emulator.graph_objects import bad_request, not_found
from emulator.state import iso


# -- users ------------------------------------------------------------------------------------------------------
def list_users(call):
    call.allow(USER_READ)
    return call.collection("users", list(call.tenant.users.values()), "user",
                           lambda unused, user: objs.view(user, objs.USER_FIELDS))


def get_user(call, key):
    call.allow(USER_READ)
    return call.entity("users", objs.view(call.user(key), objs.USER_FIELDS))


def get_directory_object(call, key):
    call.allow(READ)
    return 200, dict(owner_view(call, key), **{"@odata.context": "%s/$metadata#directoryObjects/$entity"
                                                                 % call.base})


# -- service principals -----------------------------------------------------------------------------------------
def sp_view(call, sp):
    out = objs.view(sp, objs.SP_FIELDS, call.visible)
    if out.get("appDisplayName") is None:
        out["appDisplayName"] = sp.get("displayName")
    return out


def get_service_principal(call, ref):
    call.allow(READ)
    return call.entity("servicePrincipals", sp_view(call, call.service_principal(ref)))


def create_service_principal(call, app_id, body):
    objs.check_properties(body, objs.SP_WRITABLE | {"appId"}, "servicePrincipal", read_only=("id",))
    app = call.find(call.tenant.applications, ("appId", str(app_id)))
    if app is None or not call.visible(app):  # the new app has not replicated to this replica yet
        raise bad_request("The appId '%s' of the service principal does not reference a valid application object."
                          % app_id)
    if call.tenant.find_service_principal(app_id=app_id) is not None:
        raise objs.conflict("servicePrincipalNames")
    fields = dict((k, v) for k, v in body.items() if k != "appId" and not k.startswith("@"))
    fields.setdefault("appDisplayName", app["displayName"])
    fields.setdefault("appRoles", [dict(r) for r in app.get("appRoles") or []])
    fields.setdefault("signInAudience", app.get("signInAudience"))
    return call.tenant.add_service_principal(app=app, _written=time.time(), **fields)


def post_service_principal(call):
    call.allow(WRITE)
    body = body_of(call)
    if not body.get("appId"):
        raise bad_request("Invalid value specified for property 'appId' of resource 'ServicePrincipal'.")
    return call.entity("servicePrincipals", sp_view(call, create_service_principal(call, body["appId"], body)), 201)


def patch_service_principal(call, ref):
    call.allow(WRITE)
    body = body_of(call)
    sp = call.find(call.tenant.service_principals, ref)
    if sp is None:
        if not (isinstance(ref, tuple) and ref[0] == "appId" and upsert_wanted(call)):
            raise not_found(ref[1] if isinstance(ref, tuple) else ref)
        return call.entity("servicePrincipals", sp_view(call, create_service_principal(call, ref[1], body)), 201)
    objs.check_properties(body, objs.SP_WRITABLE, "servicePrincipal", read_only=("id", "appId"))
    sp.update((k, v) for k, v in body.items() if not k.startswith("@"))
    return 204, None


def delete_service_principal(call, ref):
    call.allow(WRITE)
    objs.drop_service_principal(call.tenant, call.service_principal(ref, replicated=False))
    return 204, None


# -- app role assignments ---------------------------------------------------------------------------------------
def assignment_view(assignment):
    return dict((k, assignment.get(k)) for k in objs.ASSIGNMENT_FIELDS)


def list_assignments(call, ref, side):
    call.allow(READ)
    sp = call.service_principal(ref)
    key = "resourceId" if side == "appRoleAssignedTo" else "principalId"
    items = [assignment_view(a) for a in call.tenant.app_role_assignments.values() if a.get(key) == sp["id"]]
    return call.collection("servicePrincipals('%s')/%s" % (sp["id"], side), items, "appRoleAssignment")


def post_assignment(call, ref, side):
    call.allow(ASSIGN)
    sp = call.service_principal(ref)
    body = body_of(call)
    objs.check_properties(body, frozenset(("principalId", "resourceId", "appRoleId")), "appRoleAssignment")
    for name in ("principalId", "resourceId", "appRoleId"):
        if not body.get(name):
            raise bad_request("Invalid value specified for property '%s' of resource 'AppRoleAssignment'." % name)
    own = "resourceId" if side == "appRoleAssignedTo" else "principalId"
    if str(body[own]).lower() != sp["id"].lower():
        raise bad_request("The %s in the body must be the service principal in the URL (%s)." % (own, sp["id"]))
    principal = call.service_principal(body["principalId"])  # 404 while a fresh SP has not replicated
    resource = call.service_principal(body["resourceId"])
    role = next((r for r in resource.get("appRoles") or () if str(r.get("id")).lower()
                 == str(body["appRoleId"]).lower()), None)
    if role is None or not role.get("isEnabled", True):
        raise bad_request("Permission being assigned was not found on application '%s'." % resource["appId"])
    for existing in call.tenant.app_role_assignments.values():
        if (existing["principalId"], existing["resourceId"], existing["appRoleId"]) == (
                principal["id"], resource["id"], role["id"]):
            raise bad_request("Permission being assigned already exists on the object")
    assignment = {"id": objs.assignment_id(), "deletedDateTime": None, "appRoleId": role["id"],
                  "createdDateTime": iso(), "principalDisplayName": principal.get("displayName"),
                  "principalId": principal["id"], "principalType": "ServicePrincipal",
                  "resourceDisplayName": resource.get("displayName"), "resourceId": resource["id"]}
    call.tenant.app_role_assignments[assignment["id"]] = assignment
    body = {"@odata.context": "%s/$metadata#servicePrincipals('%s')/%s/$entity" % (call.base, sp["id"], side)}
    body.update(assignment_view(assignment))
    return 201, body


def assignment_of(call, ref, side, key):
    sp = call.service_principal(ref)
    assignment = call.tenant.app_role_assignments.get(key)
    own = "resourceId" if side == "appRoleAssignedTo" else "principalId"
    if assignment is None or assignment.get(own) != sp["id"]:
        raise not_found(key)
    return sp, assignment


def get_assignment(call, ref, side, key):
    call.allow(READ)
    sp, assignment = assignment_of(call, ref, side, key)
    body = {"@odata.context": "%s/$metadata#servicePrincipals('%s')/%s/$entity" % (call.base, sp["id"], side)}
    body.update(assignment_view(assignment))
    return 200, body


def delete_assignment(call, ref, side, key):
    call.allow(ASSIGN)
    assignment = assignment_of(call, ref, side, key)[1]
    del call.tenant.app_role_assignments[assignment["id"]]
    return 204, None


def for_side(handler, side):
    return lambda call, *args: handler(call, *(args[:1] + (side,) + args[1:]))


def list_service_principals(call):
    return listing(call, call.tenant.service_principals, sp_view, "servicePrincipals", "servicePrincipal")


def count_service_principals(call):
    return counting(call, call.tenant.service_principals)
