"""The emulated Microsoft identity platform: OpenID discovery, JWKS, the v2.0 token endpoint for client credentials
(secret, certificate assertion, federated assertion), the device code flow (device_flow.py) and a managed identity endpoint (App Service 2019-08-01 form,
what azure-identity's ManagedIdentityCredential calls when IDENTITY_ENDPOINT and IDENTITY_HEADER are set).

Failures answer with Entra ID's error bodies (error, error_description starting with the AADSTS code, error_codes,
timestamp, trace_id, correlation_id, error_uri) so the collection's translation is tested against the real shape.
"""

import base64
import hmac
import time
import uuid
from urllib.parse import unquote

import jwt

from emulator import certs, device_flow
from emulator.https_server import Response
from emulator.state import parse_iso

TENANT = r"(?P<tenant>[^/]+)"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW = 300  # seconds Entra ID tolerates on assertion nbf / exp
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
ANY_TENANT = ("common", "organizations", "consumers")

STATUS = {"invalid_client": 401}
TEXTS = {
    50027: "JWT token is invalid or malformed.",
    50059: "No tenant-identifying information found in either the request or implied by any provided credentials.",
    70003: "The app requested an unsupported grant type '{grant}'.",
    90002: "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the "
           "correct cloud. Check with your subscription administrator, this may happen if there are no active "
           "subscriptions for the tenant.",
    90014: "The required field '{field}' is missing from the credential. Ensure that you have all the necessary "
           "parameters for the login request.",
    500011: "The resource principal named {resource} was not found in the tenant named {tenant_name}. This can "
            "happen if the application has not been installed by the administrator of the tenant or consented to "
            "by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
    700016: "Application with identifier '{client_id}' was not found in the directory '{tenant_name}'. This can "
            "happen if the application has not been installed by the administrator of the tenant or consented to "
            "by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
    700024: "Client assertion is not within its valid time range. Current time: {now}, assertion valid from "
            "{nbf}, expiry time of assertion {exp}. Review the documentation at "
            "https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
    700027: "The certificate with identifier used to sign the client assertion is not registered on application. "
            "[Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', Please visit the "
            "Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'. "
            "Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the "
            "corresponding service endpoint and "
            "https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a "
            "query request URL, such as "
            "'https://graph.microsoft.com/beta/applications/{object_id}'].",
    7000271: "Client assertion failed signature validation. [Reason - The key was found but the signature of the "
             "assertion does not verify., Thumbprint of key used by client: '{thumbprint}']",
    7000274: "Client assertion audience claim does not match Realm issuer. Review the documentation at "
             "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
    70021: "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. "
           "Assertion Subject: '{sub}'. Assertion Audience: '{aud}'. "
           "https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
    700211: "No matching federated identity record found for presented assertion issuer '{iss}'. Please check your "
            "federated identity credential Subject, Audience and Issuer against the presented assertion. "
            "https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
    700213: "No matching federated identity record found for presented assertion subject '{sub}'. Check your "
            "federated identity credential Subject, Audience and Issuer against the presented assertion. "
            "https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
    50166: "Request to External OIDC endpoint failed. The signing key of issuer '{iss}' is unknown.",
    7000112: "Application '{client_id}'({name}) is disabled.",
    7000215: "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
             "value, not the client secret ID, for a secret added to app '{client_id}'.",
    7000218: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    7000222: "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create "
             "new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for "
             "added security: https://aka.ms/certCreds.",
    7000229: "The client application {client_id} is missing service principal in the tenant {tenant_id}. See "
             "instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
    70000: "{reason}",
    70015: "The client is polling too frequently. Poll at the interval the devicecode answer gave.",
    70016: "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
    70019: "Verification code expired.",
    900144: "The request body must contain the following parameter: '{field}'.",
    1002012: "The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
             "with /.default suffixed to the resource identifier (application ID URI).",
}
ERRORS = {50027: "invalid_request", 50059: "invalid_request", 70003: "unsupported_grant_type",
          90002: "invalid_request", 90014: "invalid_request", 500011: "invalid_resource",
          700016: "unauthorized_client", 700024: "invalid_client", 700027: "invalid_client",
          7000271: "invalid_client", 7000274: "invalid_client", 70021: "invalid_request", 700211: "invalid_client",
          700213: "invalid_client", 50166: "invalid_client", 7000112: "unauthorized_client",
          7000215: "invalid_client", 7000218: "invalid_client", 7000222: "invalid_client",
          7000229: "invalid_client", 1002012: "invalid_scope", 70000: "invalid_grant", 70015: "slow_down",
          70016: "authorization_pending", 70019: "expired_token", 900144: "invalid_request"}


class AadstsError(Exception):
    def __init__(self, code, error=None, **values):
        super(AadstsError, self).__init__(code)
        self.code, self.values, self.error = code, values, error

    def response(self):
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        error = self.error or ERRORS[self.code]
        description = "AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s" % (
            self.code, TEXTS[self.code].format(**self.values), trace, correlation, stamp)
        body = {"error": error, "error_description": description, "error_codes": [self.code], "timestamp": stamp,
                "trace_id": trace, "correlation_id": correlation,
                "error_uri": "https://login.microsoftonline.com/error?code=%d" % self.code}
        return Response(STATUS.get(error, 400), json=body, headers={"x-ms-request-id": trace})


def register(router, tenant):
    router.add("GET", r"^/%s/v2\.0/\.well-known/openid-configuration$" % TENANT, lambda r: discovery(tenant, r))
    router.add("GET", r"^/%s/\.well-known/openid-configuration$" % TENANT, lambda r: discovery(tenant, r))
    router.add("GET", r"^/%s/discovery(?:/v2\.0)?/keys$" % TENANT, lambda r: keys(tenant, r))
    router.add("POST", r"^/%s/oauth2/v2\.0/token$" % TENANT, lambda r: token(tenant, r))
    router.add("POST", r"^/%s/oauth2/v2\.0/devicecode$" % TENANT,
               lambda r: device_flow.devicecode(tenant, r, AadstsError, resolve_tenant))
    router.add("GET", r"^/msi/token$", lambda r: managed_identity(tenant, r))


def base_url(request):
    return "https://%s" % (request.headers.get("Host") or "127.0.0.1")


def resolve_tenant(tenant, name):
    name = unquote(name)
    if name.lower() in ANY_TENANT:
        raise AadstsError(50059)
    if not tenant.matches_tenant(name):
        raise AadstsError(90002, tenant=name)


def discovery(tenant, request):
    name = request.match["tenant"]
    try:
        if name.lower() not in ANY_TENANT:
            resolve_tenant(tenant, name)
    except AadstsError as error:
        return error.response()
    base, tid = base_url(request), tenant.tenant_id
    shown = name if name.lower() in ANY_TENANT else tid
    return Response(200, json={
        "token_endpoint": "%s/%s/oauth2/v2.0/token" % (base, shown),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": "%s/%s/discovery/v2.0/keys" % (base, shown),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"], "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": "%s/%s/v2.0" % (base, "{tenantid}" if shown != tid else tid),
        "request_uri_parameter_supported": False,
        "authorization_endpoint": "%s/%s/oauth2/v2.0/authorize" % (base, shown),
        "device_authorization_endpoint": "%s/%s/oauth2/v2.0/devicecode" % (base, shown),
        "end_session_endpoint": "%s/%s/oauth2/v2.0/logout" % (base, shown),
        "tenant_region_scope": "EU", "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net", "msgraph_host": "graph.microsoft.com",
    })


def keys(tenant, request):
    return Response(200, json=tenant.tokens.jwks())


# -- the token endpoint -----------------------------------------------------------------------------------------------
def token(tenant, request):
    form = request.form
    request.client_id = form.get("client_id")
    try:
        resolve_tenant(tenant, request.match["tenant"])
        if form.get("grant_type") == device_flow.DEVICE_GRANT:
            return device_flow.device_token(tenant, form, AadstsError)
        if form.get("grant_type") != "client_credentials":
            raise AadstsError(70003, grant=form.get("grant_type"))
        client_id, secret = client_authentication(request, form)
        request.client_id = client_id
        resource, audience = requested_resource(tenant, form.get("scope"))
        app = tenant.find_application(app_id=client_id)
        if app is None:
            raise AadstsError(700016, client_id=client_id, tenant_name=tenant.display_name)
        check_credential(tenant, request, app, secret, form)
        sp = tenant.find_service_principal(app_id=client_id)
        if sp is None:
            raise AadstsError(7000229, client_id=client_id, tenant_id=tenant.tenant_id)
        if not sp.get("accountEnabled", True):
            raise AadstsError(7000112, client_id=client_id, name=app.get("displayName"))
    except AadstsError as error:
        return error.response()
    return token_response(tenant, client_id, resource, audience)


def token_response(tenant, client_id, resource, audience):
    lifetime = tenant.tokens.lifetime
    access = tenant.tokens.issue(client_id, roles=tenant.roles_for(client_id, resource["appId"]), audience=audience)
    return Response(200, json={"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                               "access_token": access}, headers={"Cache-Control": "no-store, no-cache"})


def client_authentication(request, form):
    """(client_id, secret or None) from the form or an HTTP Basic header (client_secret_basic)."""
    client_id, secret = form.get("client_id"), form.get("client_secret")
    header = request.headers.get("Authorization") or ""
    if header.lower().startswith("basic "):
        try:
            user, _sep, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
            client_id, secret = unquote(user), unquote(password)
        except ValueError:
            raise AadstsError(50027)
    if not client_id:
        raise AadstsError(90014, field="client_id")
    if not secret and not form.get("client_assertion"):
        raise AadstsError(7000218)
    return client_id, secret


def requested_resource(tenant, scope):
    """(resource SP, token audience) for a client-credentials scope '<resource>/.default'."""
    scope = (scope or "").strip()
    if not scope.endswith("/.default") or " " in scope:
        raise AadstsError(1002012, scope=scope or "(none)")
    name = scope[:-len("/.default")]
    resource = tenant.find_resource(name)
    if resource is None:
        raise AadstsError(500011, resource=name, tenant_name=tenant.domain)
    audience = next((n for n in resource.get("servicePrincipalNames") or () if str(n).startswith("https://")), name)
    return resource, audience.rstrip("/")


def replicated(tenant, credential):
    """False while a new credential has not reached every replica (tenant.credential_replication_lag)."""
    created = credential.get("_created")
    return created is None or time.time() >= created + (tenant.credential_replication_lag or 0)


def check_credential(tenant, request, app, secret, form):
    if secret is not None:
        return check_secret(tenant, app, secret)
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise AadstsError(7000218)
    assertion = form.get("client_assertion") or ""
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise AadstsError(50027)
    if claims.get("iss") == app["appId"] and claims.get("sub") == app["appId"]:
        return check_certificate_assertion(tenant, request, app, assertion, header, claims)
    return check_federated_assertion(tenant, app, assertion, claims)


def check_secret(tenant, app, secret):
    now = time.time()
    for credential in app.get("passwordCredentials") or ():
        stored = credential.get("_secretText")
        if stored and hmac.compare_digest(stored.encode(), secret.encode()):
            end = parse_iso(credential.get("endDateTime"))
            if end is not None and end <= now:
                raise AadstsError(7000222, client_id=app["appId"])
            if not replicated(tenant, credential):
                break  # a brand new secret is refused until it has replicated: the same answer as a wrong one
            return credential
    raise AadstsError(7000215, client_id=app["appId"])


def check_time_range(claims):
    now = time.time()
    nbf, exp = claims.get("nbf", claims.get("iat", now)), claims.get("exp")
    if exp is None or now > exp + CLOCK_SKEW or now + CLOCK_SKEW < nbf:
        raise AadstsError(700024, now=stamp(now), nbf=stamp(nbf), exp=stamp(exp or 0))


def stamp(ts):
    return time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(ts))


def check_certificate_assertion(tenant, request, app, assertion, header, claims):
    if header.get("x5t#S256"):
        wanted, index, shown = padded(header["x5t#S256"]), 1, header["x5t#S256"]
    elif header.get("x5t"):
        wanted, index, shown = padded(header["x5t"]), 0, header["x5t"]
    else:
        raise AadstsError(50027)
    shown = wanted.hex().upper() if wanted else shown
    found = None
    for credential in app.get("keyCredentials") or ():
        cert = certs.load_key_credential(credential.get("key"))
        if cert is not None and certs.thumbprints(cert)[index] == wanted and replicated(tenant, credential):
            found = cert
            break
    if found is None:
        raise AadstsError(700027, thumbprint=shown, client_id=app["appId"], object_id=app["id"])
    try:
        jwt.decode(assertion, found.public_key(), algorithms=["RS256", "PS256"],
                   options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False})
    except jwt.InvalidTokenError:
        raise AadstsError(7000271, thumbprint=shown)
    audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
    expected = {"https://%s%s" % (host, request.path) for host in hosts(request)}
    expected |= {u.replace("/%s/" % request.match["tenant"], "/%s/" % tenant.tenant_id, 1) for u in expected}
    if not any(str(a).rstrip("/") in expected for a in audiences if a):
        raise AadstsError(7000274)
    check_time_range(claims)


def hosts(request):
    host = request.headers.get("Host") or "127.0.0.1"
    port = host.rpartition(":")[2] if ":" in host else "443"
    return {host, "127.0.0.1:" + port, "localhost:" + port}


def padded(value):
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        return b""


def check_federated_assertion(tenant, app, assertion, claims):
    iss, sub, aud = claims.get("iss"), claims.get("sub"), claims.get("aud")
    values = {"iss": iss, "sub": sub, "aud": aud if not isinstance(aud, list) else ",".join(aud)}
    records = [c for c in app.get("federatedIdentityCredentials") or () if c.get("issuer") == iss]
    if not records:
        raise AadstsError(700211, **values)
    issuer = tenant.external_issuers.get(iss)
    if issuer is None:
        raise AadstsError(50166, **values)
    try:
        jwt.decode(assertion, issuer.key.public_key(), algorithms=["RS256"],
                   options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False})
    except jwt.InvalidTokenError:
        raise AadstsError(50027)
    records = [c for c in records if c.get("subject") == sub]
    if not records:
        raise AadstsError(700213, **values)
    audiences = aud if isinstance(aud, list) else [aud]
    if not any(a in (c.get("audiences") or ()) for c in records for a in audiences):
        raise AadstsError(70021, **values)
    check_time_range(claims)


# -- managed identity (App Service / Functions form) ----------------------------------------------------------------
def managed_identity(tenant, request):
    q = request.query

    def fail(status, message):
        return Response(status, json={"statusCode": status, "message": message,
                                      "correlationId": str(uuid.uuid4())})

    if not tenant.msi_secret or not hmac.compare_digest(
            (request.headers.get("X-IDENTITY-HEADER") or "").encode(), tenant.msi_secret.encode()):
        return fail(401, "Missing or invalid X-IDENTITY-HEADER.")
    if q.get("api-version") != "2019-08-01":
        return fail(400, "Unsupported api-version %r; this endpoint serves 2019-08-01." % q.get("api-version"))
    sp = find_identity(tenant, q)
    if sp is None:
        return fail(400, "No managed identity matches the request (client_id, principal_id or mi_res_id) on "
                         "this host.")
    request.client_id = sp["appId"]
    try:
        resource, audience = requested_resource(tenant, (q.get("resource") or "").rstrip("/") + "/.default")
    except AadstsError:
        return fail(400, "The resource %r is unknown to the identity platform." % q.get("resource"))
    lifetime = tenant.tokens.lifetime
    access = tenant.tokens.issue(sp["appId"], roles=tenant.roles_for(sp["appId"], resource["appId"]),
                                 audience=audience)
    return Response(200, json={"access_token": access, "expires_on": str(int(time.time()) + lifetime),
                               "resource": q.get("resource"), "token_type": "Bearer", "client_id": sp["appId"]})


def find_identity(tenant, query):
    ids = tenant.managed_identities
    candidates = [tenant.service_principals.get(i) for i in ids["user"]]
    if query.get("client_id"):
        return next((s for s in candidates if s and s["appId"].lower() == query["client_id"].lower()), None)
    if query.get("principal_id") or query.get("object_id"):
        wanted = (query.get("principal_id") or query.get("object_id")).lower()
        return next((s for s in candidates if s and s["id"].lower() == wanted), None)
    if query.get("mi_res_id"):
        return next((s for s in candidates if s and s.get("_resource_id", "").lower() == query["mi_res_id"].lower()),
                    None)
    return tenant.service_principals.get(ids["system"]) if ids["system"] else None
