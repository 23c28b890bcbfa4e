"""The emulated Graph's applications: create, upsert by uniqueName, update, delete, secrets (addPassword /
removePassword), certificates (keyCredentials), federated identity credentials and owners."""

import re
import time
import uuid
from urllib.parse import unquote

from emulator import graph_objects as objs
from emulator.graph_call import READ, WRITE, body_of, counting, listing, upsert_wanted
from emulator.graph_objects import GraphError, bad_request, not_found
from emulator.state import iso


def app_view(call, app):
    return objs.view(app, objs.APP_FIELDS, call.visible)


def get_application(call, ref):
    call.allow(READ)
    return call.entity("applications", app_view(call, call.application(ref)))


def create_application(call, fields=None):
    body = body_of(call) if fields is None else fields
    objs.check_application_body(body)
    if not body.get("displayName"):
        raise bad_request("Invalid value specified for property 'displayName' of resource 'Application'.")
    if body.get("uniqueName") and call.find(call.tenant.applications, ("uniqueName", body["uniqueName"])):
        raise objs.conflict("uniqueName")
    fields = dict(body)
    keys = fields.pop("keyCredentials", None)
    app = call.tenant.add_application(fields.pop("displayName"), uniqueName=fields.pop("uniqueName", None),
                                      **dict((k, v) for k, v in fields.items() if not k.startswith("@")))
    if keys:
        app["keyCredentials"] = objs.merge_key_credentials([], keys)
    app["_written"] = time.time()
    return app


def post_application(call):
    call.allow(WRITE)
    return call.entity("applications", app_view(call, create_application(call)), 201)


def patch_application(call, ref):
    call.allow(WRITE)
    body = body_of(call)
    if isinstance(ref, tuple) and ref[0] == "uniqueName":
        app = call.find(call.tenant.applications, ref)
        if app is None:
            if not upsert_wanted(call):
                raise not_found(ref[1])
            body = dict(body)
            if body.get("uniqueName", ref[1]) != ref[1]:
                raise bad_request("The uniqueName in the body does not match the uniqueName in the URL.")
            body["uniqueName"] = ref[1]
            return call.entity("applications", app_view(call, create_application(call, body)), 201)
    else:
        app = call.application(ref, replicated=False)
    update_application(app, body)
    return 204, None


def update_application(app, body):
    """All or nothing, as in Graph: every value is checked before the first is applied."""
    objs.check_application_body(body, existing=app)
    # uniqueName can be backfilled once on an app created without it, then never changes (Microsoft's Graph Bicep
    # guide, "reference existing resources"). The error text is an emulator assumption (docs/development.md).
    if app.get("uniqueName") and body.get("uniqueName") not in (None, app["uniqueName"]):
        raise bad_request("Property 'uniqueName' cannot be changed once it is set (it is %r)." % app["uniqueName"])
    changes = dict((k, v) for k, v in body.items() if not k.startswith("@odata."))
    if "keyCredentials" in changes:
        changes["keyCredentials"] = objs.merge_key_credentials(app.get("keyCredentials") or [],
                                                               changes["keyCredentials"])
    app.update(changes)


def delete_application(call, ref):
    call.allow(WRITE)
    app = call.application(ref, replicated=False)
    tenant = call.tenant
    for sp in [s for s in tenant.service_principals.values() if s.get("appId") == app["appId"]]:
        objs.drop_service_principal(tenant, sp)
    app["deletedDateTime"] = iso()
    deleted = tenant.__dict__.setdefault("deleted_items", {})
    deleted[app["id"]] = tenant.applications.pop(app["id"])
    return 204, None


def add_password(call, ref):
    call.allow(WRITE)
    app = call.application(ref)
    body = body_of(call)
    spec = body.get("passwordCredential") if isinstance(body, dict) else None
    if spec is not None and not isinstance(spec, dict):
        raise bad_request("Invalid value specified for property 'passwordCredential'.")
    credential = objs.new_password(spec)
    credential["_written"] = credential["_created"]
    app.setdefault("passwordCredentials", []).append(credential)
    answer = objs.password_view(credential)
    answer["secretText"] = credential["_secretText"]  # the only time the secret leaves the tenant
    answer["@odata.context"] = "%s/$metadata#microsoft.graph.passwordCredential" % call.base
    return 200, answer


def remove_password(call, ref):
    call.allow(WRITE)
    app = call.application(ref)
    key_id = (body_of(call) or {}).get("keyId")
    if not key_id:
        raise bad_request("Invalid value specified for property 'keyId' of resource 'PasswordCredential'.")
    creds = app.get("passwordCredentials") or []
    kept = [c for c in creds if str(c.get("keyId")).lower() != str(key_id).lower()]
    if len(kept) == len(creds):
        raise not_found(key_id)
    app["passwordCredentials"] = kept
    return 204, None


# -- federated identity credentials ------------------------------------------------------------------------------
def fic_of(app, key):
    for fic in app.get("federatedIdentityCredentials") or []:
        if fic["id"] == key or fic["name"] == key:
            return fic
    raise not_found(key)


def fic_view(fic):
    return dict((k, fic.get(k)) for k in objs.FIC_FIELDS)


def list_fics(call, ref):
    call.allow(READ)
    app = call.application(ref)
    items = [fic_view(f) for f in app.get("federatedIdentityCredentials") or []]
    set_name = "applications('%s')/federatedIdentityCredentials" % app["id"]
    return call.collection(set_name, items, "federatedIdentityCredential")


def get_fic(call, ref, key):
    call.allow(READ)
    app = call.application(ref)
    fic = fic_of(app, key)
    return 200, dict(fic_view(fic), **{"@odata.context": "%s/$metadata#applications('%s')/"
                                                         "federatedIdentityCredentials/$entity" % (call.base, app["id"])})


def post_fic(call, ref):
    call.allow(WRITE)
    app = call.application(ref)
    siblings = app.setdefault("federatedIdentityCredentials", [])
    merged = objs.check_fic(body_of(call), siblings)
    fic = {"id": str(uuid.uuid4()), "name": merged["name"], "issuer": merged["issuer"],
           "subject": merged["subject"], "description": merged.get("description"),
           "audiences": list(merged["audiences"])}
    siblings.append(fic)
    return 201, dict(fic_view(fic), **{"@odata.context": "%s/$metadata#applications('%s')/"
                                                         "federatedIdentityCredentials/$entity" % (call.base, app["id"])})


def patch_fic(call, ref, key):
    call.allow(WRITE)
    app = call.application(ref)
    fic = fic_of(app, key)
    body = body_of(call)
    merged = objs.check_fic(body, app["federatedIdentityCredentials"], current=fic)
    fic.update((k, merged[k]) for k in body if k in objs.FIC_WRITABLE)
    return 204, None


def delete_fic(call, ref, key):
    call.allow(WRITE)
    app = call.application(ref)
    fic = fic_of(app, key)
    app["federatedIdentityCredentials"] = [f for f in app["federatedIdentityCredentials"] if f is not fic]
    return 204, None


# -- owners -----------------------------------------------------------------------------------------------------
def owner_view(call, oid):
    kind, obj = call.directory_object(oid)
    fields = {"user": objs.USER_FIELDS, "servicePrincipal": objs.SP_FIELDS}.get(kind, objs.APP_FIELDS)
    out = {"@odata.type": "#microsoft.graph.%s" % kind}
    out.update(objs.view(obj, fields))
    return out


def list_owners(call, ref):
    call.allow(READ)
    app = call.application(ref)
    items = []
    for oid in app.get("_owners") or []:
        try:
            items.append(owner_view(call, oid))
        except GraphError:
            continue  # an owner deleted since
    return call.collection("directoryObjects", items)


_REF = re.compile(r"/(?:directoryObjects|users|servicePrincipals)/(?P<id>[^/?]+)$")


def add_owner(call, ref):
    call.allow(WRITE)
    app = call.application(ref)
    link = (body_of(call) or {}).get("@odata.id")
    found = _REF.search(str(link or ""))
    if not found:
        raise bad_request("Invalid value specified for property '@odata.id': a directory object URL such as "
                          "https://graph.microsoft.com/v1.0/directoryObjects/{id} is expected.")
    kind, owner = call.directory_object(unquote(found.group("id")))
    if kind == "application":
        raise bad_request("An application cannot be an owner.")
    owners = app.setdefault("_owners", [])
    if owner["id"] in owners:
        raise bad_request("One or more added object references already exist for the following modified "
                          "properties: 'owners'.")
    owners.append(owner["id"])
    return 204, None


def remove_owner(call, ref, oid):
    call.allow(WRITE)
    app = call.application(ref)
    owners = app.get("_owners") or []
    if oid not in owners:
        raise not_found(oid)
    owners.remove(oid)
    return 204, None


def list_applications(call):
    return listing(call, call.tenant.applications, app_view, "applications", "application")


def count_applications(call):
    return counting(call, call.tenant.applications)
