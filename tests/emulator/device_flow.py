"""The emulated device authorization grant (OAuth 2.0 device code flow) of the v2.0 endpoint, and the delegated
tokens it ends with.

Source: Microsoft identity platform, "OAuth 2.0 device authorization grant flow" (learn.microsoft.com,
v2-oauth2-device-code): POST /{tenant}/oauth2/v2.0/devicecode with client_id and scope answers device_code,
user_code, verification_uri, expires_in, interval and message; the client then polls the token endpoint with
grant_type urn:ietf:params:oauth:grant-type:device_code, client_id and device_code, and gets
authorization_pending (keep polling), authorization_declined (the user said no: stop), bad_verification_code
(device_code unknown) or expired_token (expires_in passed: stop) until the user signed in. slow_down (poll less
often) comes from RFC 8628 section 3.5, which the flow implements; Microsoft's page does not list it, so when the
emulator sends it is an assumption (a poll sooner than `interval` after the previous one). The AADSTS codes in the
descriptions: 70016 (pending) and 70019 (expired) are Entra's published codes for those states; the codes of
declined and slow_down answers are assumptions (docs/development.md).

Nobody signs in here: `tenant.device_flow` says what the "user" does with every code (the test hook), as
`tenant.faults` says what fails:
    answer      "approve" (default), "deny" or None (nobody signs in: pending until the code expires)
    user        the userPrincipalName of a `tenant.users` entry that signs in (default: megan, a Global Administrator)
    roles       None = that user's directory roles (`_wids` on the user); a tuple of role template ids overrides
    after_polls the number of polls answered authorization_pending before the answer applies (default 1)
    scopes      None = the token carries every scope asked for (consented at sign-in); a tuple grants only those
    slow_down_polls  the first N polls are answered slow_down (as a server under load would), default 0
    interval, expires_in  what the devicecode answer says (Microsoft: 5 and 900 seconds)
    public_clients  client ids that may start the flow: Microsoft's first-party public clients, present in every
                tenant (Microsoft Graph Command Line Tools), and the tenant's own apps marked isFallbackPublicClient.

Delegated tokens carry what Entra's v1 user tokens carry for this: aud, scp (the granted scopes, space separated),
wids (the user's directory role template ids), oid / sub (the user), upn, name, idtyp "user", appid / azp (the
public client), tid.
"""

import secrets
import string
import time
import uuid

from emulator.https_server import Response

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
VERIFICATION_URI = "https://microsoft.com/devicelogin"
GRAPH_CLI_CLIENT_ID = "14d82eec-204b-4c2f-b7e8-296a70dab67e"  # Microsoft Graph Command Line Tools
# Directory role template ids, as Microsoft's "Microsoft Entra built-in roles" page lists them.
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
APPLICATION_ADMINISTRATOR = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
CLOUD_APPLICATION_ADMINISTRATOR = "158c047a-c907-4556-b7ef-446551a6b5f7"
EXCHANGE_ADMINISTRATOR = "29232cdf-9323-42fd-ade2-1d097af3e4de"
ALWAYS_SCOPES = frozenset(("openid", "profile", "offline_access", "email"))


class DeviceFlow(object):
    """tenant.device_flow: the test hook (what the signing-in user does) and the codes handed out."""

    def __init__(self):
        self.answer = "approve"
        self.user = None
        self.roles = None
        self.after_polls = 1
        self.scopes = None
        self.slow_down_polls = 0
        self.interval = 5
        self.expires_in = 900
        self.public_clients = {GRAPH_CLI_CLIENT_ID: "Microsoft Graph Command Line Tools"}
        self.codes = {}  # device_code -> record

    def sign_in(self, answer="approve", user=None, roles=None, after_polls=1, scopes=None):
        self.answer, self.user, self.roles, self.after_polls, self.scopes = answer, user, roles, after_polls, scopes
        return self


def _user_code():
    # Entra's user codes are 8-9 letters and digits; ambiguous characters left out.
    alphabet = "".join(c for c in string.ascii_uppercase + string.digits if c not in "0O1IL")
    return "".join(secrets.choice(alphabet) for unused in range(9))


def public_client(tenant, client_id):
    """The display name of a client that may run the device flow, None otherwise."""
    flow = tenant.device_flow
    if client_id in flow.public_clients:
        return flow.public_clients[client_id]
    app = tenant.find_application(app_id=client_id)
    if app is not None and app.get("isFallbackPublicClient"):
        return app.get("displayName")
    return None


def devicecode(tenant, request, aadsts_error, resolve_tenant):
    """POST /{tenant}/oauth2/v2.0/devicecode."""
    form = request.form
    client_id = form.get("client_id")
    request.client_id = client_id
    try:
        resolve_tenant(tenant, request.match["tenant"])
        if not client_id:
            raise aadsts_error(900144, field="client_id")
        if public_client(tenant, client_id) is None:
            if tenant.find_application(app_id=client_id) is not None:
                raise aadsts_error(7000218)
            raise aadsts_error(700016, client_id=client_id, tenant_name=tenant.display_name)
        scopes = [s for s in (form.get("scope") or "").split() if s]
        if not [s for s in scopes if s not in ALWAYS_SCOPES]:
            raise aadsts_error(900144, field="scope")
    except aadsts_error as error:
        return error.response()
    flow = tenant.device_flow
    code, user_code = secrets.token_urlsafe(48), _user_code()
    with tenant.lock:
        flow.codes[code] = {"client_id": client_id, "scopes": scopes, "user_code": user_code, "polls": 0,
                            "expires": time.time() + flow.expires_in, "last_poll": 0.0}
    message = ("To sign in, use a web browser to open the page %s and enter the code %s to authenticate."
               % (VERIFICATION_URI, user_code))
    return Response(200, json={"user_code": user_code, "device_code": code, "verification_uri": VERIFICATION_URI,
                               "expires_in": flow.expires_in, "interval": flow.interval, "message": message})


def device_token(tenant, form, aadsts_error):
    """The token endpoint's device_code grant: a Response (tokens) or raises aadsts_error."""
    flow = tenant.device_flow
    with tenant.lock:
        record = flow.codes.get(form.get("device_code") or "")
        if record is None or record["client_id"] != form.get("client_id"):
            raise aadsts_error(70000, reason="The provided device code is not valid.", error="bad_verification_code")
        now = time.time()
        if now >= record["expires"]:
            flow.codes.pop(form.get("device_code"), None)
            raise aadsts_error(70019)
        too_soon = record["last_poll"] and now - record["last_poll"] < flow.interval - 0.5
        record["last_poll"] = now
        if too_soon:
            raise aadsts_error(70015)
        if record.get("slowed", 0) < flow.slow_down_polls:
            record["slowed"] = record.get("slowed", 0) + 1
            raise aadsts_error(70015)
        record["polls"] += 1
        if flow.answer is None or record["polls"] <= flow.after_polls:
            raise aadsts_error(70016)
        if flow.answer == "deny":
            flow.codes.pop(form.get("device_code"), None)
            raise aadsts_error(70000, reason="The user denied the authorization request.",
                               error="authorization_declined")
        flow.codes.pop(form.get("device_code"), None)
        user = signed_in_user(tenant, flow.user)
        roles = list(flow.roles if flow.roles is not None else user.get("_wids") or ())
    return delegated_tokens(tenant, record, user, roles)


def signed_in_user(tenant, upn):
    users = sorted(tenant.users.values(), key=lambda u: u["userPrincipalName"])
    if upn is None:
        return next(u for u in users if GLOBAL_ADMINISTRATOR in (u.get("_wids") or ()))
    return next(u for u in users if u["userPrincipalName"].lower() == upn.lower())


def delegated_tokens(tenant, record, user, roles):
    """The answer to a completed device flow: an access token for the first resource the scopes name."""
    resource_scopes = [s for s in record["scopes"] if s not in ALWAYS_SCOPES]
    resource = resource_scopes[0].rsplit("/", 1)[0] if "/" in resource_scopes[0] else "https://graph.microsoft.com"
    names = [s.rsplit("/", 1)[-1] for s in resource_scopes if s.startswith(resource + "/") or "/" not in s]
    if tenant.device_flow.scopes is not None:
        names = [n for n in names if n in tenant.device_flow.scopes]
    lifetime = tenant.tokens.lifetime
    access = tenant.tokens.issue(record["client_id"], roles=[], audience=resource, oid=user["id"],
                                 idtyp="user", scp=" ".join(names), wids=roles, upn=user["userPrincipalName"],
                                 name=user["displayName"], appidacr="0")
    body = {"token_type": "Bearer", "scope": " ".join("%s/%s" % (resource, n) for n in names),
            "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access}
    if "offline_access" in record["scopes"]:
        body["refresh_token"] = "emulated-rt-" + uuid.uuid4().hex
    return Response(200, json=body, headers={"Cache-Control": "no-store, no-cache"})
