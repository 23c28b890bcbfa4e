"""The emulated Exchange Online admin REST endpoint (what ExchangeOnlineManagement v3 calls under the hood).

POST /adminapi/beta/{tenantId or domain}/InvokeCommand
    body {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {...}}}
    headers Authorization: Bearer <app-only token, aud https://outlook.office365.com>, X-ResponseFormat: json,
    X-AnchorMailbox: APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@<tenant id> (or the UPN: form with the
    tenant's domain; a hint routing cannot place is refused, see exchange_wire), Prefer: odata.maxpagesize=N
answer 200 {"@odata.context": ..., "value": [objects], "@odata.nextLink": <same URL + $skiptoken>} -- the client
POSTs the same body to the next link. Warnings ride along as "@adminapi.warnings" (Exchange prints them instead
of failing, e.g. "already present" on Add-MailboxPermission).

Errors, in the shape Exchange answers (public client reports; Microsoft does not document this endpoint):
    {"error": {"code": "NotFound" | "BadRequest" | ..., "message": "Error executing cmdlet",
               "details": [{"code": "Client", "target": "", "message": "<ExId>|<exception type>|<text>"}],
               "innererror": {"message": "Error executing cmdlet",
                              "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"}}}
Ex6F9304 (ManagementObjectNotFoundException) is the id seen in real answers; the other Ex ids here are emulator
stand-ins with the real exception type names. A token without Exchange.ManageAsApp gets 401; an app without an
Exchange admin role gets 403 with the text PowerShell users see ("The role assigned to application ... isn't
supported in this scenario").

Emulator settings on tenant.exchange: page_size (small by default so that paging is exercised); the wire habits
(anchor_check, error_shape, forbidden_body, refused_cmdlets) and transient-error injection are in exchange_wire.
Every call is logged with part="exchange", cmdlet=<name>, write = not Get-/Test-, max_page_size (the Prefer header's
odata.maxpagesize, or None).
"""

import base64
import re
import uuid

from emulator import clouds, exchange_wire
from emulator.exchange_contract import BindingError, bind, spec
from emulator.exchange_state import SMTP_SEND_ROLE, FilterError, parse_filter

EXCHANGE_AUDIENCE = "https://outlook.office365.com"
MANAGE_ROLE = "Exchange.ManageAsApp"
PATH = r"^/adminapi/beta/(?P<tenant>[^/?]+)/InvokeCommand$"
SERVER = "AM0PR01MB0001.EURPRD01.PROD.OUTLOOK.COM"
NOT_FOUND_TYPE = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
DUPLICATE_TYPE = "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"
INVALID_TYPE = "Microsoft.Exchange.Configuration.Tasks.TaskArgumentException"
PARAM_TYPE = "System.Management.Automation.ParameterBindingException"
IN_USE_TYPE = "Microsoft.Exchange.Management.RbacTasks.ScopeInUseException"


class CmdletError(Exception):
    def __init__(self, status, code, ex_id, exception_type, text):
        super(CmdletError, self).__init__(text)
        self.status, self.code, self.ex_id, self.exception_type, self.text = status, code, ex_id, exception_type, text

    def body(self):
        return {"error": {
            "code": self.code, "message": "Error executing cmdlet",
            "details": [{"code": "Client", "target": "",
                         "message": "%s|%s|%s" % (self.ex_id, self.exception_type, self.text)}],
            "innererror": {"message": "Error executing cmdlet",
                           "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"}}}


def not_found(identity):
    return CmdletError(404, "NotFound", "Ex6F9304", NOT_FOUND_TYPE,
                       "The operation couldn't be performed because object '%s' couldn't be found on '%s'."
                       % (identity, SERVER))


def user_not_found(identity):
    return CmdletError(404, "NotFound", "Ex6F9304", NOT_FOUND_TYPE,
                       "User or group \"%s\" wasn't found. Please make sure you've typed it correctly." % identity)


def duplicate(text):
    return CmdletError(400, "BadRequest", "ExB10E93", DUPLICATE_TYPE, text)


def invalid(text, exception_type=INVALID_TYPE):
    return CmdletError(400, "BadRequest", "Ex9F6D2C", exception_type, text)


def auth_error(status, text):
    return CmdletError(status, "Unauthorized" if status == 401 else "Forbidden", "ExA5C31B",
                       "Microsoft.Exchange.Configuration.Tasks.AuthorizationException", text)


# -- the endpoint ------------------------------------------------------------------------------------------------------
def register(router, tenant):
    router.add("POST", PATH, lambda request: handle(tenant, request))


def handle(tenant, request):
    from emulator.https_server import Response  # the core's response type
    request.parameter_set = None
    moved = admin_redirect(tenant, request)
    if moved:
        tenant.log.add(part="exchange", method="POST", path=request.path, status=302, write=False, redirect=moved)
        return Response(302, body=b"", headers={"Location": moved})
    status, body, cmdlet, app_id = answer(tenant, request)
    request.cmdlet, request.client_id = cmdlet or None, app_id
    request.write = bool(cmdlet) and not cmdlet.lower().startswith(("get-", "test-"))  # tried, even if refused
    # parameter_set: the set of Microsoft's cmdlet reference the request bound to (None: refused or not bound).
    tenant.log.add(part="exchange", method="POST", path=request.path, cmdlet=request.cmdlet, status=status,
                   write=request.write, client_id=app_id, parameter_set=request.parameter_set,
                   max_page_size=max_page_size(request))
    data, headers = exchange_wire.forbidden(tenant.exchange, status, body, {
        "Content-Type": "application/json; odata.metadata=minimal", "request-id": str(uuid.uuid4())})
    return Response(status, body=data, headers=headers)


def max_page_size(request):
    prefer = re.search(r"odata\.maxpagesize=(\d+)", request.headers.get("Prefer") or "")
    return int(prefer.group(1)) if prefer else None


def admin_redirect(tenant, request):
    """The URL on the cloud's admin host when the tenant sends clients there and this request came in elsewhere."""
    host = tenant.exchange.admin_redirect
    arrived = (request.headers.get("Host") or "").rsplit(":", 1)
    if not host or arrived[0].lower() == host.lower():
        return None
    port = arrived[1] if len(arrived) == 2 else "443"
    return "https://%s:%s%s" % (host, port, request.path)


def answer(tenant, request):
    """(status, body, cmdlet name, calling app id) for one InvokeCommand request."""
    payload = request.json if isinstance(getattr(request, "json", None), dict) else {}
    cmdlet_input = payload.get("CmdletInput") if isinstance(payload.get("CmdletInput"), dict) else {}
    cmdlet = str(cmdlet_input.get("CmdletName") or "")
    app_id = None
    try:
        claims = authenticate(tenant, request)
        app_id = claims.get("appid") or claims.get("azp")
        if request.match["tenant"].lower() not in (str(tenant.tenant_id).lower(), tenant.exchange.domain) or \
                str(claims.get("tid", tenant.tenant_id)).lower() != str(tenant.tenant_id).lower():
            raise auth_error(401, "The token was issued for another tenant than %s." % request.match["tenant"])
        refused = exchange_wire.check_anchor(tenant, request)
        if refused is not None:
            return refused + (cmdlet, app_id)
        if cmdlet.lower() in set(c.lower() for c in tenant.exchange.refused_cmdlets):
            raise auth_error(403, "The role assigned to application %s doesn't allow running '%s'." % (app_id, cmdlet))
    except CmdletError as error:  # the front door's answers keep their status and shape
        return error.status, error.body(), cmdlet, app_id
    try:
        if not cmdlet:
            raise invalid("CmdletInput.CmdletName is required.")
        params = cmdlet_input.get("Parameters") or {}
        if not isinstance(params, dict):
            raise invalid("CmdletInput.Parameters must be an object.")
        rows, warnings = run_cmdlet(tenant.exchange, cmdlet, params, request)
    except CmdletError as error:
        if error.status == 501:  # the emulator's own gap, never dressed as Exchange's answer
            return error.status, error.body(), cmdlet, app_id
        return exchange_wire.render(tenant.exchange, error) + (cmdlet, app_id)
    return 200, page(tenant, request, rows, warnings), cmdlet, app_id


def authenticate(tenant, request):
    header = (request.headers.get("Authorization") or request.headers.get("authorization") or "")
    if not header.lower().startswith("bearer "):
        raise auth_error(401, "The request has no bearer token.")
    try:
        claims = tenant.tokens.verify(header[7:].strip(), clouds.audience(tenant, "exchange"))
    except Exception as error:  # TokenInvalid from the core, whatever its reason
        raise auth_error(401, "The access token is invalid: %s" % (getattr(error, "reason", None) or error))
    if MANAGE_ROLE not in (claims.get("roles") or ()):
        raise auth_error(401, "The access token has no %s role. Grant the application the Office 365 Exchange "
                              "Online application permission %s and admin consent." % (MANAGE_ROLE, MANAGE_ROLE))
    app_id = claims.get("appid") or claims.get("azp")
    if not tenant.exchange.is_admin(app_id):
        raise auth_error(403, "The role assigned to application %s isn't supported in this scenario. Please check "
                              "online documentation for assigning correct Directory Roles to Azure AD Application "
                              "for EXO App-Only Authentication." % app_id)
    return claims


def page(tenant, request, rows, warnings):
    size = tenant.exchange.page_size
    if max_page_size(request):
        size = max(1, min(size, max_page_size(request)))
    token = (getattr(request, "query", None) or {}).get("$skiptoken")
    if isinstance(token, list):
        token = token[0]
    start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    base = "%s/adminapi/beta/%s/InvokeCommand" % (getattr(tenant, "url", "") or "", request.match["tenant"])
    body = {"@odata.context": base.replace("InvokeCommand", "$metadata#Collection(Exchange.GenericHashTable)"),
            "value": [public(row) for row in rows[start:start + size]]}
    if start + size < len(rows):
        body["@odata.nextLink"] = "%s?$skiptoken=%s" % (
            base, base64.urlsafe_b64encode(str(start + size).encode()).decode())
    if warnings:
        body["@adminapi.warnings"] = warnings
    return body


def public(row):
    """A stored object as the cmdlet prints it: private bookkeeping removed, sets as lists."""
    return {k: sorted(v) if isinstance(v, set) else v for k, v in row.items() if not k.startswith("_")
            and k != "members"}


# -- parameters ----------------------------------------------------------------------------------------------------
class Params(object):
    """Cmdlet parameters bound as Exchange binds them (exchange_contract, from Microsoft's cmdlet reference), then
    limited to what this emulator models: a valid parameter it does not model fails loudly (501), never silently."""

    def __init__(self, cmdlet, values, modelled):
        try:
            self.values, self.parameter_set = bind(cmdlet, values)
        except BindingError as error:
            raise invalid(str(error), PARAM_TYPE)
        extra = sorted(set(self.values) - set(modelled) - {"Confirm", "WhatIf"})
        if extra:
            raise CmdletError(501, "NotImplemented", "EmulatorOnly", "NotImplementedByEmulator",
                              "The emulator does not model parameter(s) %s of %s (valid in Exchange Online)."
                              % (", ".join(extra), cmdlet))
        self.cmdlet = cmdlet

    def get(self, name, default=None):
        return self.values.get(name, default)

    def has(self, name):
        return name in self.values

    def require(self, name):
        value = self.values.get(name)
        if value in (None, "", []):
            raise invalid("Cannot process command because of one or more missing mandatory parameters: %s." % name,
                          PARAM_TYPE)
        return value

    def rights(self, allowed):
        value = self.require("AccessRights")
        values = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
        for right in values:
            if right not in allowed:
                raise invalid("Cannot bind parameter 'AccessRights'. '%s' is not a supported value here." % right,
                              PARAM_TYPE)
        return values


# -- cmdlets ---------------------------------------------------------------------------------------------------------
def run_cmdlet(ex, name, values, request=None):
    handler = CMDLETS.get(name.lower())
    if handler is None or spec(name)[1] is None:
        raise invalid("The term '%s' is not recognized as a name of a cmdlet, function, script file, or executable "
                      "program." % name, "System.Management.Automation.CommandNotFoundException")
    func, allowed = handler
    warnings = []
    params = Params(name, values, allowed)
    if request is not None:
        request.parameter_set = params.parameter_set
    with ex.lock:
        rows = func(ex, params, warnings)
    return rows or [], warnings


def _existing(found, identity, error=not_found):
    if found is None:
        raise error(identity)
    return found


def _sp(ex, identity):
    return _existing(ex.find_sp(identity), identity, user_not_found)


def _mailbox(ex, identity):
    return _existing(ex.find_mailbox(identity), identity)


def _recipient(ex, identity):
    return _existing(ex.find_recipient(identity), identity)


def get_service_principal(ex, p, warnings):
    if p.has("Identity"):
        return [_existing(ex.find_sp(p.get("Identity")), p.get("Identity"))]
    return sorted(ex.service_principals.values(), key=lambda s: s["WhenCreated"])


def new_service_principal(ex, p, warnings):
    app_id = str(p.require("AppId"))
    object_id = str(p.get("ObjectId") or p.require("ServiceId"))
    for sp in ex.service_principals.values():
        if sp["AppId"].lower() == app_id.lower() or sp["ObjectId"].lower() == object_id.lower():
            raise duplicate("A service principal with AppId '%s' or ObjectId '%s' already exists." % (app_id, object_id))
    # Like the real cmdlet: any GUID is accepted as ObjectId, even the application's object id.
    return [ex.register_sp(app_id, object_id, str(p.get("DisplayName") or app_id))]


def remove_service_principal(ex, p, warnings):
    ex.remove_sp(_sp(ex, p.require("Identity")))


def _permission_rows(ex, rows, who_key):
    out = []
    for row in rows:
        sp = ex.service_principals.get(row[who_key].lower())
        box = ex.mailboxes.get(row["Identity"]) or ex.groups.get(row["Identity"])
        shown = dict(row, Identity=box["Identity"] if box else row["Identity"])
        if sp is not None:
            shown[who_key] = ex.principal_as_printed(sp)
        out.append(shown)
    return out


class _Kind(object):
    """FullAccess (mailbox permissions, -User) and SendAs (recipient permissions, -Trustee) work the same way."""

    def __init__(self, store, who, right, target, add):
        self.store, self.who, self.right, self.target, self.add = store, who, right, target, add

    def rows(self, ex):
        return getattr(ex, self.store)

    def matches(self, row, target, sp):
        return row["Identity"] == target["ExternalDirectoryObjectId"] and row[self.who].lower() == sp["ObjectId"].lower()


FULL_ACCESS = _Kind("mailbox_permissions", "User", "FullAccess", _mailbox, "add_mailbox_permission")
SEND_AS = _Kind("recipient_permissions", "Trustee", "SendAs", _recipient, "add_recipient_permission")


def _grant(kind):
    def add(ex, p, warnings):
        target, sp = kind.target(ex, p.require("Identity")), _sp(ex, p.require(kind.who))
        p.rights((kind.right,))
        for row in kind.rows(ex):
            if kind.matches(row, target, sp):
                warnings.append("The appropriate access control entry is already present on the object \"%s\" for "
                                "account \"%s\"." % (target["Identity"], sp["ObjectId"]))
                return _permission_rows(ex, [row], kind.who)
        return _permission_rows(ex, [getattr(ex, kind.add)(target, sp)], kind.who)
    return add


def _revoke(kind):
    def remove(ex, p, warnings):
        target, sp = kind.target(ex, p.require("Identity")), _sp(ex, p.require(kind.who))
        p.rights((kind.right,))
        keep = [r for r in kind.rows(ex) if not kind.matches(r, target, sp)]
        if len(keep) == len(kind.rows(ex)):
            warnings.append("Can't remove the access control entry on the object \"%s\" for account \"%s\" because "
                            "the ACE isn't present." % (target["Identity"], sp["ObjectId"]))
        setattr(ex, kind.store, keep)
    return remove


def get_mailbox_permission(ex, p, warnings):
    box = _mailbox(ex, p.require("Identity"))
    rows = [{"Identity": box["ExternalDirectoryObjectId"], "User": "NT AUTHORITY\\SELF",
             "AccessRights": ["FullAccess, ReadPermission"], "IsInherited": False, "Deny": False}]
    rows += [r for r in ex.mailbox_permissions if r["Identity"] == box["ExternalDirectoryObjectId"]]
    if p.has("User"):
        sp = _sp(ex, p.get("User"))
        rows = [r for r in rows if r["User"].lower() == sp["ObjectId"].lower()]
    return _permission_rows(ex, rows, "User")


def _result_size(p, rows):
    """-ResultSize as the reference documents it: a number, or Unlimited; 1000 when not given."""
    value = p.get("ResultSize", 1000)
    if str(value).strip().lower() == "unlimited":
        return rows
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise invalid("Cannot bind parameter 'ResultSize'. Cannot convert value \"%s\" to type "
                      "\"Microsoft.Exchange.Data.Unlimited`1[System.UInt32]\"." % value, PARAM_TYPE)
    if size < 1:
        raise invalid("The ResultSize value must be 1 or more.", PARAM_TYPE)
    return rows[:size]


def _filtered(ex, p, name, rows):
    """Rows matching an OPATH filter parameter (-Filter, -RecipientPreviewFilter), evaluated as a scope is."""
    if not p.has(name):
        return rows
    try:
        tree = parse_filter(str(p.get(name)))
    except FilterError as error:
        raise invalid("Invalid filter syntax for %s: %s" % (name, error))
    matches = ex.matcher(tree)
    return [r for r in rows if matches(r)]


def get_recipient_permission(ex, p, warnings):
    rows = list(ex.recipient_permissions)
    if p.has("Identity"):
        recipient = _recipient(ex, p.get("Identity"))
        rows = [r for r in rows if r["Identity"] == recipient["ExternalDirectoryObjectId"]]
    if p.has("Trustee"):
        sp = _sp(ex, p.get("Trustee"))
        rows = [r for r in rows if r["Trustee"].lower() == sp["ObjectId"].lower()]
    return _result_size(p, _permission_rows(ex, rows, "Trustee"))


def _cas(box):
    return {"Identity": box["Identity"], "Name": box["Name"], "PrimarySmtpAddress": box["PrimarySmtpAddress"],
            "ExternalDirectoryObjectId": box["ExternalDirectoryObjectId"], "EmailAddresses": list(box["EmailAddresses"]),
            "SmtpClientAuthenticationDisabled": box["SmtpClientAuthenticationDisabled"]}


def get_cas_mailbox(ex, p, warnings):
    if p.has("Identity"):
        return [_cas(_mailbox(ex, p.get("Identity")))]
    boxes = sorted(ex.mailboxes.values(), key=lambda b: b["PrimarySmtpAddress"])
    return [_cas(b) for b in _result_size(p, _filtered(ex, p, "Filter", boxes))]


def set_cas_mailbox(ex, p, warnings):
    box = _mailbox(ex, p.require("Identity"))
    if p.has("SmtpClientAuthenticationDisabled"):
        box["SmtpClientAuthenticationDisabled"] = _nullable_bool(p.get("SmtpClientAuthenticationDisabled"))


def _nullable_bool(value):
    if value is None or value is True or value is False:
        return value
    text = str(value).strip().lower().lstrip("$")
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    if text in ("null", ""):
        return None
    raise invalid("Cannot process argument transformation on parameter 'SmtpClientAuthenticationDisabled'. "
                  "Cannot convert value \"%s\" to type \"System.Nullable[bool]\"." % value, PARAM_TYPE)


def get_transport_config(ex, p, warnings):
    return [dict(ex.transport_config)]


def get_mailbox(ex, p, warnings):
    if p.has("Identity"):
        return [_mailbox(ex, p.get("Identity"))]
    return _result_size(p, sorted(ex.mailboxes.values(), key=lambda b: b["PrimarySmtpAddress"]))


def get_management_scope(ex, p, warnings):
    if p.has("Identity"):
        scope = ex.scopes.get(str(p.get("Identity")).lower())
        if scope is None:
            raise not_found(p.get("Identity"))
        return [scope]
    return sorted(ex.scopes.values(), key=lambda s: s["Name"])


def new_management_scope(ex, p, warnings):
    name = str(p.require("Name"))
    if name.lower() in ex.scopes:
        raise duplicate("The management scope \"%s\" already exists." % name)
    try:
        return [ex.add_scope(name, str(p.require("RecipientRestrictionFilter")))]  # printed as RecipientFilter
    except FilterError as error:
        raise invalid("Invalid filter syntax for RecipientRestrictionFilter: %s" % error)


def set_management_scope(ex, p, warnings):
    identity = str(p.require("Identity"))
    scope = ex.scopes.get(identity.lower())
    if scope is None:
        raise not_found(identity)
    if p.has("RecipientRestrictionFilter"):
        text = str(p.get("RecipientRestrictionFilter"))
        try:
            parse_filter(text)
        except FilterError as error:
            raise invalid("Invalid filter syntax for RecipientRestrictionFilter: %s" % error)
        ex.set_scope_filter(scope, text)


def get_recipient(ex, p, warnings):
    if p.has("Identity"):
        return [_recipient(ex, p.get("Identity"))]
    rows = sorted(list(ex.mailboxes.values()) + list(ex.groups.values()), key=lambda r: r["PrimarySmtpAddress"])
    if p.has("RecipientTypeDetails"):
        wanted = {str(v).strip().lower() for v in (p.get("RecipientTypeDetails") if isinstance(
            p.get("RecipientTypeDetails"), list) else str(p.get("RecipientTypeDetails")).split(","))}
        rows = [r for r in rows if r["RecipientTypeDetails"].lower() in wanted]
    # -RecipientPreviewFilter: the recipients a filter selects (Microsoft's example passes a RecipientFilter as
    # printed, Get-DynamicDistributionGroup example 3); -Filter: OPATH over recipient properties.
    rows = _filtered(ex, p, "Filter", _filtered(ex, p, "RecipientPreviewFilter", rows))
    return _result_size(p, rows)


def remove_management_scope(ex, p, warnings):
    identity = str(p.require("Identity"))
    scope = ex.scopes.get(identity.lower())
    if scope is None:
        raise not_found(identity)
    users = [a["Name"] for a in ex.role_assignments.values()
             if (a["CustomResourceScope"] or "").lower() == scope["Name"].lower()]
    if users:
        raise CmdletError(400, "BadRequest", "Ex4C7A1E", IN_USE_TYPE,
                          "The management scope \"%s\" can't be removed because it's used by the role assignments "
                          "%s. Remove those role assignments first." % (scope["Name"], ", ".join(users)))
    del ex.scopes[scope["Name"].lower()]


def get_management_role_assignment(ex, p, warnings):
    rows = sorted(ex.role_assignments.values(), key=lambda a: a["WhenCreated"] + a["Name"])
    if p.has("Identity"):
        found = ex.role_assignments.get(str(p.get("Identity")).lower())
        if found is None:
            raise not_found(p.get("Identity"))
        rows = [found]
    if p.has("RoleAssignee"):
        # Emulator assumption (unverified): -RoleAssignee resolves a service principal like the other assignee
        # kinds. tenant.exchange.role_assignee_resolves_sp = False models the other answer (not found).
        sp = ex.find_sp(p.get("RoleAssignee")) if ex.role_assignee_resolves_sp else None
        if sp is None:
            raise not_found(p.get("RoleAssignee"))
        rows = [a for a in rows if a["_sp"].lower() == sp["ObjectId"].lower()]
    if p.has("Role"):
        rows = [a for a in rows if a["Role"].lower() == str(p.get("Role")).lower()]
    return [ex.show_assignment(a) for a in rows]


def get_management_role(ex, p, warnings):
    """Only the role SMTP uses is modelled; it is missing where Microsoft has not rolled it out (smtp_role_exists)."""
    roles = [{"Name": SMTP_SEND_ROLE, "Identity": SMTP_SEND_ROLE}] if ex.smtp_role_exists else []
    if not p.has("Identity"):
        return roles
    rows = [r for r in roles if r["Name"].lower() == str(p.get("Identity")).lower()]
    if not rows:
        raise not_found(p.get("Identity"))
    return rows


def new_management_role_assignment(ex, p, warnings):
    sp = _sp(ex, p.require("App"))
    role = str(p.require("Role"))
    if not role.lower().startswith("application "):
        raise invalid("The role \"%s\" can't be assigned to a service principal; use an 'Application ...' role."
                      % role)
    if role.lower() != SMTP_SEND_ROLE.lower() or not ex.smtp_role_exists:
        raise not_found(role)  # only the role this collection uses is modelled, where the tenant has it
    scope = None
    if p.has("CustomResourceScope"):
        scope = ex.scopes.get(str(p.get("CustomResourceScope")).lower())
        if scope is None:
            raise not_found(p.get("CustomResourceScope"))
    name = str(p.get("Name") or "%s-%s" % (role, sp["DisplayName"]))[:64]
    if name.lower() in ex.role_assignments:
        raise duplicate("The role assignment \"%s\" already exists." % name)
    for a in ex.role_assignments.values():
        if a["_sp"].lower() == sp["ObjectId"].lower() and a["Role"].lower() == role.lower() \
                and (a["CustomResourceScope"] or "").lower() == (scope["Name"].lower() if scope else ""):
            raise duplicate("The role assignment \"%s\" already grants role \"%s\" to \"%s\" with this scope."
                            % (a["Name"], role, sp["DisplayName"]))
    return [ex.show_assignment(ex.add_role_assignment(name, SMTP_SEND_ROLE, sp, scope))]


def remove_management_role_assignment(ex, p, warnings):
    identity = str(p.require("Identity"))
    if ex.role_assignments.pop(identity.lower(), None) is None:
        raise not_found(identity)


def test_service_principal_authorization(ex, p, warnings):
    sp = _sp(ex, p.require("Identity"))
    box = _mailbox(ex, p.get("Resource")) if p.has("Resource") else None
    rows = []
    for a in ex.role_assignments.values():
        if a["_sp"].lower() != sp["ObjectId"].lower():
            continue
        scope = ex.scopes.get((a["CustomResourceScope"] or "").lower())
        row = {"RoleName": a["Role"], "GrantedPermissions": a["Role"].split(" ", 1)[-1],
               "AllowedResourceScope": scope["Name"] if scope else "Organization",
               "ScopeType": "CustomRecipientScope" if scope else "Organization", "InScope": "Not Run"}
        if box is not None:
            # Emulator assumption: the cmdlet answers from the same permission cache as the SMTP front end, so an
            # assignment younger than the propagation delay is not in effect yet.
            row["InScope"] = (scope is None or ex.in_scope(scope, box)) and ex.effective(a) and ex.effective(sp)
        rows.append(row)
    return rows


# What the emulator models of each cmdlet (a subset of the contract; checked at import).
CMDLETS = {
    "get-serviceprincipal": (get_service_principal, ("Identity",)),
    "new-serviceprincipal": (new_service_principal, ("AppId", "ObjectId", "ServiceId", "DisplayName")),
    "remove-serviceprincipal": (remove_service_principal, ("Identity",)),
    "get-mailboxpermission": (get_mailbox_permission, ("Identity", "User", "ResultSize")),
    "add-mailboxpermission": (_grant(FULL_ACCESS), ("Identity", "User", "AccessRights", "InheritanceType",
                                                    "AutoMapping")),
    "remove-mailboxpermission": (_revoke(FULL_ACCESS), ("Identity", "User", "AccessRights", "InheritanceType",
                                                        "BypassMasterAccountSid")),
    "get-recipientpermission": (get_recipient_permission, ("Identity", "Trustee", "AccessRights", "ResultSize")),
    "add-recipientpermission": (_grant(SEND_AS), ("Identity", "Trustee", "AccessRights")),
    "remove-recipientpermission": (_revoke(SEND_AS), ("Identity", "Trustee", "AccessRights")),
    "get-casmailbox": (get_cas_mailbox, ("Identity", "Filter", "ResultSize")),
    "set-casmailbox": (set_cas_mailbox, ("Identity", "SmtpClientAuthenticationDisabled")),
    "get-transportconfig": (get_transport_config, ()),
    "get-mailbox": (get_mailbox, ("Identity", "RecipientTypeDetails", "ResultSize")),
    "get-managementscope": (get_management_scope, ("Identity",)),
    "new-managementscope": (new_management_scope, ("Name", "RecipientRestrictionFilter")),
    "set-managementscope": (set_management_scope, ("Identity", "RecipientRestrictionFilter")),
    "remove-managementscope": (remove_management_scope, ("Identity",)),
    "get-recipient": (get_recipient, ("Identity", "RecipientTypeDetails", "Filter", "RecipientPreviewFilter",
                                      "ResultSize")),
    "get-managementrole": (get_management_role, ("Identity",)),
    "get-managementroleassignment": (get_management_role_assignment, ("Identity", "RoleAssignee", "Role")),
    "new-managementroleassignment": (new_management_role_assignment, ("Name", "App", "Role",
                                                                      "CustomResourceScope")),
    "remove-managementroleassignment": (remove_management_role_assignment, ("Identity",)),
    "test-serviceprincipalauthorization": (test_service_principal_authorization, ("Identity", "Resource")),
}


def _check_modelled():
    """The emulator models nothing the reference does not document for Exchange Online."""
    for key, (unused, modelled) in CMDLETS.items():
        name, found = spec(key)
        assert found is not None, "%s is not in the cmdlet contract" % key
        unknown = set(modelled) - set(found["parameters"])
        assert not unknown, "%s: %s not in the cmdlet contract" % (name, sorted(unknown))


_check_modelled()
