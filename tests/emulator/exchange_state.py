"""Exchange Online state of the emulated tenant: mailboxes, service principals registered in Exchange, permissions,
RBAC for Applications (management scopes + role assignments), SMTP AUTH settings, and the SMTP authorisation
decision the SMTP endpoint asks for.

Objects are kept in the shape Exchange's cmdlets print them (PascalCase keys), so the admin API (exchange_api.py)
returns them as they are. Microsoft facts modelled here:
- Exchange matches an app by its *service principal* object id. New-ServicePrincipal accepts any GUID, including
  the application object id, and then nothing works (535 5.7.3): a registration whose ObjectId is not the SP's
  object id in the directory is treated as not registered.
- Classic model: token `roles` has SMTP.SendAsApp and the SP has FullAccess on the mailbox. RBAC for
  Applications: a role assignment 'Application SMTP.SendAsApp' for the SP whose scope contains the mailbox
  (no scope = the whole organisation).
- SmtpClientAuthenticationDisabled on a mailbox is True / False / None; None follows the tenant's TransportConfig.
- Grants take effect after `propagation_delay` seconds (Exchange caches permissions; minutes in real tenants).
  Test-ServicePrincipalAuthorization answers from the directory, SMTP AUTH from a permission cache: SMTP honours
  a grant `smtp_cache_delay` seconds later still (Microsoft: changes to application access "can take longer than
  1 hour to take effect ... even when Test-ApplicationAccessPolicy shows positive results").
- Objects print with the documented property names: role assignments carry RoleAssignee / RoleAssigneeName /
  RoleAssigneeType (no App), management scopes RecipientFilter (written as -RecipientRestrictionFilter, and
  rewritten by Exchange: `filter_rewrite`). How a service principal is printed in User / Trustee / RoleAssignee
  is not documented: `principal_form` picks one of the forms ("name", "object_id", "app_id", "display_name",
  "sid") so tests prove the collection reads every one.
"""

import re
import threading
import time
import uuid

from emulator.device_flow import EXCHANGE_ADMINISTRATOR, GLOBAL_ADMINISTRATOR

EXCHANGE_ADMIN_ROLES = (EXCHANGE_ADMINISTRATOR, GLOBAL_ADMINISTRATOR)

SMTP_SEND_ROLE = "Application SMTP.SendAsApp"
SMTP_SEND_CLAIM = "SMTP.SendAsApp"

REPLY_UNSUCCESSFUL = (535, "5.7.3", "Authentication unsuccessful")
REPLY_DISABLED_TENANT = (535, "5.7.139", "Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
                         "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.")
REPLY_DISABLED_MAILBOX = (535, "5.7.139", "Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
                          "Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.")

SEED_MAILBOXES = (
    # alias, display name, extra addresses (local parts on the tenant domain)
    ("noreply", "No Reply", ("no-reply",)),
    ("alerts", "Alerts", ("monitoring",)),
    ("printer", "Printer Scans", ("scanner",)),
    ("reports", "Reports", ()),
    ("app", "Application Mail", ()),
    ("other", "Other Sender", ()),
    ("sales", "Sales", ("info",)),
)
SEED_GROUP = ("smtp-senders", "SMTP Senders", ("alerts", "reports"))


class FilterError(ValueError):
    """A RecipientRestrictionFilter that Exchange would refuse (message in Exchange's words)."""


def _now_iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class ExchangeState(object):
    def __init__(self, tenant, domain=None):
        self.tenant = tenant
        self.domain = (domain or getattr(tenant, "domain", None) or "contoso.onmicrosoft.com").lower()
        self.lock = threading.RLock()
        self.clock = time.time
        self.propagation_delay = 0.0  # seconds before a new grant is in effect (Test-ServicePrincipalAuthorization)
        self.smtp_cache_delay = 0.0   # further seconds before SMTP AUTH honours it (Exchange's permission cache)
        self.principal_form = "name"  # how a service principal is printed in User / Trustee / RoleAssignee
        self.filter_rewrite = True    # Exchange stores its own spelling of a RecipientRestrictionFilter
        self.role_assignee_resolves_sp = True  # Get-ManagementRoleAssignment -RoleAssignee <service principal>
        # The management role 'Application SMTP.SendAsApp' exists: Worldwide only (MC1158911); False = a GCC tenant
        # or one not yet rolled out (Get-ManagementRole does not find it). tenant.set_cloud sets it per cloud.
        self.smtp_role_exists = True
        self.admin_redirect = None  # a host name: InvokeCommand under another host is sent there (emulator/clouds.py)
        self.org_dn = "CN=Configuration,CN=%s,CN=ConfigurationUnits,DC=EURPR01A001,DC=PROD,DC=OUTLOOK,DC=COM" % self.domain
        self.transport_config = {"Identity": "Transport Settings", "SmtpClientAuthenticationDisabled": False}
        self.mailboxes = {}          # ExternalDirectoryObjectId -> mailbox dict
        self.groups = {}             # ExternalDirectoryObjectId -> group dict (members: set of mailbox ids)
        self.service_principals = {}  # ObjectId (as registered) -> dict
        self.mailbox_permissions = []   # {Identity (mailbox id), User (SP ObjectId), AccessRights, _effective}
        self.recipient_permissions = []  # {Identity (recipient id), Trustee (SP ObjectId), AccessRights, _effective}
        self.scopes = {}             # Name lower -> scope dict
        self.role_assignments = {}   # Name lower -> assignment dict
        self.admin_apps = set()      # appIds holding an Exchange admin role (needed for the admin API)
        self.role_propagation_delay = 0.0  # seconds before a directory role assignment reaches Exchange
        self.page_size = 5           # admin API results per page: small, so clients' paging is exercised
        # The admin API's wire habits (exchange_wire.py says what each models and its witness).
        self.anchor_check = True     # refuse an X-AnchorMailbox hint routing cannot place in this tenant
        self.error_shape = "details"  # how cmdlet errors are written (exchange_wire.ERROR_SHAPES)
        self.forbidden_body = "json"  # 403 bodies: "json", or "empty" / "plain" under a false Content-Encoding: gzip
        self.refused_cmdlets = set()  # cmdlets the admin app's Exchange role does not include (403)
        for alias, name, extra in SEED_MAILBOXES:
            self.add_mailbox(alias, name, aliases=extra)
        self.add_group(*SEED_GROUP)

    # -- seeding -------------------------------------------------------------------------------------------------
    def address(self, local):
        return "%s@%s" % (local, self.domain)

    def add_mailbox(self, alias, display_name=None, aliases=(), smtp_disabled=None):
        with self.lock:
            oid = str(uuid.uuid4())
            primary = self.address(alias) if "@" not in alias else alias.lower()
            alias = primary.split("@")[0]
            box = {
                "Name": alias, "Alias": alias, "DisplayName": display_name or alias,
                "Identity": alias, "Guid": str(uuid.uuid4()), "ExchangeGuid": str(uuid.uuid4()),
                "ExternalDirectoryObjectId": oid, "PrimarySmtpAddress": primary,
                "UserPrincipalName": primary, "RecipientTypeDetails": "SharedMailbox",
                "DistinguishedName": "CN=%s,OU=%s,OU=Microsoft Exchange Hosted Organizations,DC=EURPR01A001,DC=PROD,"
                                     "DC=OUTLOOK,DC=COM" % (alias, self.domain),
                "EmailAddresses": ["SMTP:" + primary] + ["smtp:" + (a if "@" in a else self.address(a)) for a in aliases],
                "SmtpClientAuthenticationDisabled": smtp_disabled,
            }
            self.mailboxes[oid] = box
            self._index = None
            return box

    def add_group(self, alias, display_name, member_aliases=()):
        with self.lock:
            oid = str(uuid.uuid4())
            group = {
                "Name": alias, "Alias": alias, "DisplayName": display_name, "Identity": alias,
                "ExternalDirectoryObjectId": oid, "PrimarySmtpAddress": self.address(alias),
                "RecipientTypeDetails": "MailUniversalSecurityGroup",
                "DistinguishedName": "CN=%s,OU=%s,OU=Microsoft Exchange Hosted Organizations,DC=EURPR01A001,"
                                     "DC=PROD,DC=OUTLOOK,DC=COM" % (alias, self.domain),
                "members": set(),
            }
            for member in member_aliases:
                group["members"].add(self.find_recipient(member)["ExternalDirectoryObjectId"])
            self.groups[oid] = group
            return group

    # -- lookups -------------------------------------------------------------------------------------------------
    def find_mailbox(self, identity):
        """A mailbox by any of its identities (address incl. aliases, alias, name, DN, GUIDs), or None."""
        if identity is None:
            return None
        key = str(identity).strip().lower()
        with self.lock:
            # An index of every identity, rebuilt when a mailbox is added (identities never change here): a
            # 10,000-mailbox benchmark tenant must not scan every mailbox per call.
            if getattr(self, "_index", None) is None or len(self._index[1]) != len(self.mailboxes):
                index = {}
                for box in self.mailboxes.values():
                    for name in _identities(box):
                        index.setdefault(name, box)
                self._index = (index, dict(self.mailboxes))
            box = self._index[0].get(key)
            return box if box is not None and box["ExternalDirectoryObjectId"] in self.mailboxes else None

    def find_group(self, identity):
        key = str(identity or "").strip().lower()
        with self.lock:
            for group in self.groups.values():
                if key in _identities(group):
                    return group
        return None

    def find_recipient(self, identity):
        return self.find_mailbox(identity) or self.find_group(identity)

    def find_sp(self, identity):
        """A registered service principal by AppId, ObjectId, DisplayName or Identity, or None."""
        key = str(identity or "").strip().lower()
        with self.lock:
            for sp in self.service_principals.values():
                if key in (sp["AppId"].lower(), sp["ObjectId"].lower(), sp["DisplayName"].lower(),
                           sp["Identity"].lower()):
                    return sp
        return None

    def directory_sp_id(self, app_id):
        """The SP object id of app_id in the directory (Graph state), or None when the directory does not know it."""
        for oid, sp in (getattr(self.tenant, "service_principals", None) or {}).items():
            if str(sp.get("appId", "")).lower() == str(app_id).lower():
                return sp.get("id") or oid
        return None

    def is_application_object_id(self, object_id):
        apps = getattr(self.tenant, "applications", None) or {}
        key = str(object_id).lower()
        return any(key == str(k).lower() or key == str(a.get("id", "")).lower() for k, a in apps.items())

    def registration_for(self, app_id):
        """(registered SP, valid) for app_id: valid only when registered with the SP object id."""
        with self.lock:
            found = [sp for sp in self.service_principals.values() if sp["AppId"].lower() == str(app_id).lower()]
        if not found:
            return None, False
        expected = self.directory_sp_id(app_id)
        for sp in found:
            if expected is not None and sp["ObjectId"].lower() == expected.lower():
                return sp, True
            if expected is None and not self.is_application_object_id(sp["ObjectId"]):
                return sp, True
        return found[0], False

    def is_admin(self, app_id):
        """True when app_id holds an Exchange admin role (Exchange Administrator / Organization Management): set
        directly (admin_apps), or a directory role assignment (Graph roleManagement) of Exchange Administrator or
        Global Administrator to its service principal, once role_propagation_delay seconds have passed (Microsoft:
        a new assignment can take up to an hour to reach Exchange)."""
        if str(app_id).lower() in {a.lower() for a in self.admin_apps}:
            return True
        # A bare Exchange stand-in (unit tests) has no directory: admin_apps alone decides there.
        find = getattr(self.tenant, "find_service_principal", None)
        sp = find(app_id=app_id) if find else None
        if sp is None:
            return False
        return any(a["principalId"] == sp["id"] and a["roleDefinitionId"] in EXCHANGE_ADMIN_ROLES
                   and a["directoryScopeId"] == "/" and a["_written"] + self.role_propagation_delay <= self.clock()
                   for a in getattr(self.tenant, "directory_role_assignments", {}).values())

    def effective(self, entry, smtp=False):
        """In effect for the admin API, or (smtp=True) for SMTP AUTH, whose permission cache lags behind."""
        return entry.get("_effective", 0) + (self.smtp_cache_delay if smtp else 0) <= self.clock()

    def principal_as_printed(self, sp):
        """A registered service principal as Exchange prints it in User / Trustee / RoleAssignee."""
        return {"object_id": sp["ObjectId"], "app_id": sp["AppId"], "display_name": sp["DisplayName"],
                "sid": sp["_sid"], "name": sp["Name"]}[self.principal_form]

    def show_assignment(self, assignment):
        shown = dict(assignment)
        sp = self.service_principals.get(assignment["_sp"].lower())
        if sp is not None:
            shown["RoleAssignee"] = self.principal_as_printed(sp)
            shown["RoleAssigneeName"] = sp["DisplayName"]
        return shown

    # -- mutations (used by the admin API and by test helpers) ---------------------------------------------------
    def register_sp(self, app_id, object_id, display_name):
        with self.lock:
            sp = {"AppId": app_id, "ObjectId": object_id, "DisplayName": display_name, "Identity": object_id,
                  "Name": object_id, "ServiceId": object_id, "WhenCreated": _now_iso(self.clock()),
                  "_effective": self.clock() + self.propagation_delay,
                  "_sid": "S-1-5-21-%d-%d-%d-%d" % tuple(uuid.uuid4().int >> s & 0x3FFFFFFF for s in (0, 30, 60, 90))}
            self.service_principals[object_id.lower()] = sp
            return sp

    def remove_sp(self, sp):
        with self.lock:
            self.service_principals.pop(sp["ObjectId"].lower(), None)
            oid = sp["ObjectId"].lower()
            self.mailbox_permissions = [p for p in self.mailbox_permissions if p["User"].lower() != oid]
            self.recipient_permissions = [p for p in self.recipient_permissions if p["Trustee"].lower() != oid]
            for name in [n for n, a in self.role_assignments.items() if a["_sp"].lower() == oid]:
                del self.role_assignments[name]

    def add_mailbox_permission(self, box, sp, rights="FullAccess"):
        with self.lock:
            entry = {"Identity": box["ExternalDirectoryObjectId"], "User": sp["ObjectId"], "AccessRights": [rights],
                     "IsInherited": False, "Deny": False, "InheritanceType": "All",
                     "_effective": self.clock() + self.propagation_delay}
            self.mailbox_permissions.append(entry)
            return entry

    def add_recipient_permission(self, recipient, sp, rights="SendAs"):
        with self.lock:
            entry = {"Identity": recipient["ExternalDirectoryObjectId"], "Trustee": sp["ObjectId"],
                     "AccessRights": [rights], "AccessControlType": "Allow", "IsInherited": False,
                     "InheritanceType": "None", "_effective": self.clock() + self.propagation_delay}
            self.recipient_permissions.append(entry)
            return entry

    def add_scope(self, name, restriction_filter):
        parse_filter(restriction_filter)  # refuse what Exchange would refuse
        with self.lock:
            scope = {"Name": name, "Identity": name, "RecipientRoot": None, "ScopeRestrictionType": "RecipientScope",
                     "Exclusive": False, "Guid": str(uuid.uuid4()), "WhenCreated": _now_iso(self.clock())}
            self.set_scope_filter(scope, restriction_filter)
            self.scopes[name.lower()] = scope
            return scope

    def set_scope_filter(self, scope, restriction_filter):
        tree = parse_filter(restriction_filter)
        scope["RecipientFilter"] = render_filter(tree) if self.filter_rewrite else restriction_filter

    def add_role_assignment(self, name, role, sp, scope=None):
        with self.lock:
            entry = {"Name": name, "Identity": name, "Role": role, "_sp": sp["ObjectId"],
                     "RoleAssigneeName": sp["DisplayName"], "RoleAssigneeType": "ServicePrincipal",
                     "CustomResourceScope": scope["Name"] if scope else None,
                     "RecipientWriteScope": "CustomRecipientScope" if scope else "Organization",
                     "Enabled": True, "Guid": str(uuid.uuid4()), "WhenCreated": _now_iso(self.clock()),
                     "_effective": self.clock() + self.propagation_delay}
            self.role_assignments[name.lower()] = entry
            return entry

    def allow_smtp(self, app_id, mailbox, model="rbac"):
        """Test helper: everything Exchange needs for app_id to send as mailbox (creates the mailbox if missing)."""
        with self.lock:
            box = self.find_mailbox(mailbox) or self.add_mailbox(mailbox)
            sp, valid = self.registration_for(app_id)
            if not valid:
                sp = self.register_sp(app_id, self.directory_sp_id(app_id) or str(uuid.uuid4()), "app " + app_id)
            if model == "classic":
                self.add_mailbox_permission(box, sp)
            else:
                name = "smtp-" + box["Alias"] + "-" + sp["ObjectId"][:8]
                scope = self.add_scope(name, "PrimarySmtpAddress -eq '%s'" % box["PrimarySmtpAddress"])
                self.add_role_assignment(name, SMTP_SEND_ROLE, sp, scope)
            return sp

    def allow_send_as(self, app_id, address):
        """Test helper: SendAs for app_id on the recipient of address (registers the SP when needed)."""
        with self.lock:
            recipient = self.find_recipient(address) or self.add_mailbox(address)
            sp, valid = self.registration_for(app_id)
            if not valid:
                sp = self.register_sp(app_id, self.directory_sp_id(app_id) or str(uuid.uuid4()), "app " + app_id)
            return self.add_recipient_permission(recipient, sp)

    # -- decisions -----------------------------------------------------------------------------------------------
    def in_scope(self, scope, box):
        return _evaluate(parse_filter(scope["RecipientFilter"]), box, self)

    def matcher(self, tree):
        """A parsed OPATH filter (parse_filter) as a predicate over recipients (mailboxes and groups)."""
        return compile_filter(tree, self)

    def smtp_auth(self, box):
        """(effective enabled?, 'Tenant' | 'Mailbox' that decided)."""
        value = box.get("SmtpClientAuthenticationDisabled")
        if value is None:
            return not self.transport_config["SmtpClientAuthenticationDisabled"], "Tenant"
        return not value, "Mailbox"

    def grants(self, app_id, box, roles=(), include_pending=False):
        """The grants that let app_id send as box over SMTP: list of (kind, entry, effective for SMTP?)."""
        sp, valid = self.registration_for(app_id)
        if sp is None or not valid:
            return []
        oid, mid, found = sp["ObjectId"].lower(), box["ExternalDirectoryObjectId"], []
        if SMTP_SEND_CLAIM in (roles or ()):
            # The Entra claim makes Exchange check mailbox permissions (classic) and nothing else: an RBAC role
            # assignment does not help a token that carries SMTP.SendAsApp.
            for perm in self.mailbox_permissions:
                if perm["User"].lower() == oid and perm["Identity"] == mid and "FullAccess" in perm["AccessRights"]:
                    found.append(("classic", perm, self.effective(perm, smtp=True)))
            return [g for g in found if g[2] or include_pending]
        for assignment in self.role_assignments.values():
            if assignment["_sp"].lower() != oid or assignment["Role"].lower() != SMTP_SEND_ROLE.lower():
                continue
            scope = self.scopes.get((assignment["CustomResourceScope"] or "").lower())
            if assignment["CustomResourceScope"] is None or (scope is not None and self.in_scope(scope, box)):
                found.append(("rbac", assignment, self.effective(assignment, smtp=True)))
        return [g for g in found if g[2] or include_pending]

    def explain(self, claims, mailbox):
        """(reply or None, reason): why this token may or may not authenticate as mailbox over SMTP."""
        app_id = claims.get("appid") or claims.get("azp")
        with self.lock:
            box = self.find_mailbox(mailbox)
            if box is None:
                return REPLY_UNSUCCESSFUL, "mailbox %s does not exist" % mailbox
            sp, valid = self.registration_for(app_id)
            if sp is None:
                return REPLY_UNSUCCESSFUL, "service principal of app %s is not registered in Exchange" % app_id
            if not valid:
                return REPLY_UNSUCCESSFUL, ("service principal of app %s is registered with object id %s, which is "
                                            "not its service principal object id" % (app_id, sp["ObjectId"]))
            if not self.effective(sp, smtp=True):
                return REPLY_UNSUCCESSFUL, "service principal registration has not propagated yet"
            roles = claims.get("roles") or ()
            if not self.grants(app_id, box, roles):
                if self.grants(app_id, box, roles, include_pending=True):
                    return REPLY_UNSUCCESSFUL, "permission granted but not propagated yet"
                return REPLY_UNSUCCESSFUL, "no FullAccess (with SMTP.SendAsApp) or role assignment covers the mailbox"
            enabled, source = self.smtp_auth(box)
            if not enabled:
                reply = REPLY_DISABLED_TENANT if source == "Tenant" else REPLY_DISABLED_MAILBOX
                return reply, "SMTP AUTH is disabled for the %s" % source.lower()
            return None, "allowed"

    def authorize_smtp(self, claims, mailbox):
        """None when this token may send as mailbox over SMTP, else (smtp_code, enhanced_code, text)."""
        return self.explain(claims, mailbox)[0]

    def may_send_as(self, claims, mailbox, address):
        """True when the authenticated mailbox may use address as sender (itself or SendAs on its recipient)."""
        box = self.find_mailbox(mailbox)
        target = self.find_recipient(address)
        if box is not None and target is box:
            return True
        if box is not None and str(address).strip().lower() == box["PrimarySmtpAddress"]:
            return True
        if target is None:
            return False
        sp, valid = self.registration_for(claims.get("appid") or claims.get("azp"))
        if sp is None or not valid:
            return False
        oid = sp["ObjectId"].lower()
        with self.lock:
            return any(p["Trustee"].lower() == oid and p["Identity"] == target["ExternalDirectoryObjectId"]
                       and "SendAs" in p["AccessRights"] and self.effective(p, smtp=True) for p in self.recipient_permissions)


def _identities(recipient):
    keys = {recipient[k].lower() for k in ("Name", "Alias", "DisplayName", "Identity", "ExternalDirectoryObjectId",
                                           "PrimarySmtpAddress", "DistinguishedName") if recipient.get(k)}
    for k in ("Guid", "ExchangeGuid", "UserPrincipalName"):
        if recipient.get(k):
            keys.add(recipient[k].lower())
    for address in recipient.get("EmailAddresses", ()):
        keys.add(address.split(":", 1)[-1].lower())
    return keys


# -- RecipientRestrictionFilter (OPATH subset: -eq -ne -like, -and -or -not, parentheses) -----------------------------
_TOKEN = re.compile(r"\s*(?:(\()|(\))|(-and|-or|-not|-eq|-ne|-like)\b|'((?:[^']|'')*)'|\"([^\"]*)\"|([A-Za-z0-9_]+))",
                    re.I)
_NAMES = ("PrimarySmtpAddress", "MemberOfGroup", "Alias", "Name", "DisplayName", "EmailAddresses",
          "RecipientTypeDetails", "UserPrincipalName", "ExternalDirectoryObjectId")
_PROPERTIES = {n.lower(): n for n in _NAMES}


def _tokens(text):
    pos, out = 0, []
    text = (text or "").strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError("Invalid filter syntax near position %d: '%s'" % (pos, text[pos:pos + 20]))
        pos = m.end()
        if m.group(1):
            out.append(("(", None))
        elif m.group(2):
            out.append((")", None))
        elif m.group(3):
            out.append(("op", m.group(3).lower()))
        elif m.group(4) is not None:
            out.append(("value", m.group(4).replace("''", "'")))
        elif m.group(5) is not None:
            out.append(("value", m.group(5)))
        else:
            out.append(("word", m.group(6)))
    return out


def parse_filter(text):
    """Parse a RecipientRestrictionFilter into a tree; FilterError on what Exchange would refuse."""
    tokens = _tokens(text)
    if not tokens:
        raise FilterError("The filter is empty.")
    tree, pos = _parse_or(tokens, 0)
    if pos != len(tokens):
        raise FilterError("Invalid filter syntax: unexpected '%s'." % (tokens[pos][1] or tokens[pos][0]))
    return tree


def _parse_or(tokens, pos):
    return _parse_chain(tokens, pos, "-or", _parse_and)


def _parse_and(tokens, pos):
    return _parse_chain(tokens, pos, "-and", _parse_term)


def _parse_chain(tokens, pos, op, operand):
    """operand (op operand)*, left-associative; -and binds tighter than -or as in OPATH."""
    left, pos = operand(tokens, pos)
    while pos < len(tokens) and tokens[pos] == ("op", op):
        right, pos = operand(tokens, pos + 1)
        left = (op[1:], left, right)
    return left, pos


def _parse_term(tokens, pos):
    if pos >= len(tokens):
        raise FilterError("Invalid filter syntax: the filter ends too early.")
    kind, value = tokens[pos]
    if kind == "(":
        tree, pos = _parse_or(tokens, pos + 1)
        if pos >= len(tokens) or tokens[pos][0] != ")":
            raise FilterError("Invalid filter syntax: missing ')'.")
        return tree, pos + 1
    if (kind, value) == ("op", "-not"):
        tree, pos = _parse_term(tokens, pos + 1)
        return ("not", tree), pos
    if kind != "word":
        raise FilterError("Invalid filter syntax: expected a property name at '%s'." % value)
    prop = value.lower()
    if prop not in _PROPERTIES:
        raise FilterError("'%s' is not a recognized filterable property." % value)
    if pos + 2 >= len(tokens) or tokens[pos + 1][0] != "op" or tokens[pos + 1][1] not in ("-eq", "-ne", "-like") \
            or tokens[pos + 2][0] not in ("value", "word"):
        raise FilterError("Invalid filter syntax: expected '%s -eq <value>'." % value)
    return ("cmp", prop, tokens[pos + 1][1], tokens[pos + 2][1]), pos + 3


def _evaluate(tree, box, state):
    kind = tree[0]
    if kind == "or":
        return _evaluate(tree[1], box, state) or _evaluate(tree[2], box, state)
    if kind == "and":
        return _evaluate(tree[1], box, state) and _evaluate(tree[2], box, state)
    if kind == "not":
        return not _evaluate(tree[1], box, state)
    kind, prop, op, value = tree
    if prop == "memberofgroup":
        group = state.find_group(value)
        values = [value.lower()] if group and box["ExternalDirectoryObjectId"] in group["members"] else []
    else:
        values = _values(box, prop)
    value = value.lower()
    if op == "-like":
        pattern = re.compile("^" + ".*".join(re.escape(p) for p in value.split("*")) + "$")
        hit = any(pattern.match(v) for v in values)
    else:
        hit = value in values
    return hit if op != "-ne" else not hit


def _values(box, prop):
    """The lowercased values a recipient shows for a filterable property (not MemberOfGroup)."""
    if prop == "emailaddresses":
        addresses = box.get("EmailAddresses") or ()
        return [a.lower() for a in addresses] + [a.split(":", 1)[-1].lower() for a in addresses]
    return [str(box.get(_PROPERTIES[prop]) or "").lower()]


def _chain(tree, kind):
    if tree[0] != kind:
        return [tree]
    return _chain(tree[1], kind) + _chain(tree[2], kind)


def compile_filter(tree, state):
    """A predicate equal to _evaluate(tree, ., state), fast over many recipients: a long `-or` chain of `-eq`
    comparisons (a scope over many addresses) becomes one set lookup per property."""
    kind = tree[0]
    if kind == "not":
        inner = compile_filter(tree[1], state)
        return lambda box: not inner(box)
    if kind not in ("or", "and"):
        return lambda box: _evaluate(tree, box, state)
    checks, wanted = [], {}
    for part in _chain(tree, kind):
        if kind == "or" and part[0] == "cmp" and part[2] == "-eq" and part[1] != "memberofgroup":
            wanted.setdefault(part[1], set()).add(part[3].lower())
        else:
            checks.append(compile_filter(part, state))
    for prop, values in wanted.items():
        checks.append(lambda box, prop=prop, values=values: any(v in values for v in _values(box, prop)))
    if kind == "or":
        return lambda box: any(check(box) for check in checks)
    return lambda box: all(check(box) for check in checks)


def render_filter(tree):
    """The filter in Exchange's own spelling (each comparison and each -and/-or in parentheses, property names
    capitalised, values in single quotes): what Get-ManagementScope prints as RecipientFilter after a write."""
    kind = tree[0]
    if kind in ("or", "and"):
        return "(%s -%s %s)" % (render_filter(tree[1]), kind, render_filter(tree[2]))
    if kind == "not":
        return "(-not %s)" % render_filter(tree[1])
    unused, prop, op, value = tree
    return "(%s %s '%s')" % (_PROPERTIES[prop], op, value.replace("'", "''"))
