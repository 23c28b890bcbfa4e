"""Access tokens of the emulated tenant: RS256 JWTs signed with the tenant's key, published as JWKS.

Claims follow Entra ID v1 app-only tokens (what Graph and Exchange receive for client credentials): aud (the
resource URI, e.g. https://graph.microsoft.com), iss https://sts.windows.net/{tid}/, tid, appid, azp, oid (the
service principal's object id), roles (the SP's app role assignments on the resource), idtyp app, iat, nbf, exp.
"""

import base64
import hashlib
import threading
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

GRAPH_AUDIENCE = "https://graph.microsoft.com"
EXCHANGE_AUDIENCE = "https://outlook.office365.com"
DEFAULT_LIFETIME = 3599
_KEY_LOCK = threading.Lock()
_PROCESS_KEY = []


class TokenInvalid(Exception):
    """A token a resource would refuse; reason says why (bad signature, wrong audience, wrong tenant, expired)."""

    def __init__(self, reason):
        super(TokenInvalid, self).__init__(reason)
        self.reason = reason


def process_key():
    """One RSA key per process: generating it costs ~0.1 s and every reset would pay it again."""
    with _KEY_LOCK:
        if not _PROCESS_KEY:
            _PROCESS_KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _PROCESS_KEY[0]


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(public_key, kid):
    numbers = public_key.public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return {"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid, "n": _b64url(n), "e": _b64url(e)}


def normalise_audience(audience):
    return str(audience or "").rstrip("/")


class TokenService(object):
    """tenant.tokens: issue(...) and verify(token, audience); jwks() for /discovery/v2.0/keys."""

    def __init__(self, tenant, key=None):
        self.tenant = tenant
        self.key = key or process_key()
        self.public_key = self.key.public_key()
        self.kid = _b64url(hashlib.sha1(str(self.public_key.public_numbers().n).encode()).digest())
        self.lifetime = DEFAULT_LIFETIME
        # Dovecot witness mode only (tests/dovecot): app id -> mailbox, put in an `email` claim of the app's
        # Exchange tokens. Microsoft's app-only tokens name no mailbox; Dovecot's oauth2 passdb must find the login
        # name in a claim (username_attribute). Empty everywhere else, and emptied by every tenant reset.
        self.mailbox_claims = {}
        self._verified = {}  # token -> claims: a signature is checked once (SMTP benchmark reuses one token)

    @property
    def issuer(self):
        return "https://sts.windows.net/%s/" % self.tenant.tenant_id

    def jwks(self):
        return {"keys": [public_jwk(self.public_key, self.kid)]}

    def issue(self, app_id, roles=None, audience=GRAPH_AUDIENCE, lifetime=None, oid=None, now=None, **extra):
        """A signed access token for app_id. roles=None: the roles the tenant grants the app on the resource."""
        audience = normalise_audience(audience)
        resource = self.tenant.find_resource(audience)
        if roles is None:
            roles = self.tenant.roles_for(app_id, resource["appId"]) if resource else []
        if oid is None:
            sp = self.tenant.find_service_principal(app_id=app_id)
            oid = sp["id"] if sp else str(uuid.uuid5(uuid.NAMESPACE_URL, "sp:%s" % app_id))
        now = int(time.time() if now is None else now)
        lifetime = self.lifetime if lifetime is None else int(lifetime)
        claims = {"aud": audience, "iss": self.issuer, "iat": now, "nbf": now, "exp": now + lifetime,
                  "aio": _b64url(uuid.uuid4().bytes), "app_displayname": (sp_name(self.tenant, app_id)),
                  "appid": app_id, "appidacr": "1", "azp": app_id, "idp": self.issuer, "idtyp": "app",
                  "oid": oid, "rh": "0.emulated.", "sub": oid, "tid": self.tenant.tenant_id,
                  "uti": _b64url(uuid.uuid4().bytes), "ver": "1.0"}
        if roles:
            claims["roles"] = sorted(set(roles))
        if audience == EXCHANGE_AUDIENCE and app_id in self.mailbox_claims:
            claims["email"] = self.mailbox_claims[app_id]
        claims.update(extra)
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid, "x5t": self.kid})

    def verify(self, token, audience):
        """The claims of a token issued here for audience; TokenInvalid(reason) otherwise."""
        audience = normalise_audience(audience)
        claims = self._verified.get(token)
        if claims is None:
            try:
                claims = jwt.decode(token, self.public_key, algorithms=["RS256"],
                                    options={"verify_aud": False, "verify_exp": False, "verify_iat": False,
                                             "verify_nbf": False, "verify_iss": False})
            except jwt.InvalidTokenError as error:
                raise TokenInvalid("bad signature or malformed token (%s)" % error.__class__.__name__)
            if len(self._verified) > 10000:
                self._verified.clear()
            self._verified[token] = claims
        if normalise_audience(claims.get("aud")) != audience:
            raise TokenInvalid("wrong audience %r, expected %r" % (claims.get("aud"), audience))
        if claims.get("tid") != self.tenant.tenant_id or claims.get("iss") != self.issuer:
            raise TokenInvalid("wrong tenant %r" % claims.get("tid"))
        now = time.time()
        if claims.get("exp", 0) <= now:
            raise TokenInvalid("expired at %s" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims.get("exp", 0))))
        if claims.get("nbf", 0) > now + 300:
            raise TokenInvalid("not valid yet")
        return dict(claims)


def sp_name(tenant, app_id):
    sp = tenant.find_service_principal(app_id=app_id)
    return sp.get("displayName") if sp else None


class ExternalIssuer(object):
    """An OIDC issuer outside the tenant (GitHub Actions, Kubernetes...): signs federated tokens for tests."""

    def __init__(self, issuer):
        self.issuer = issuer
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex

    def issue(self, subject, audience, lifetime=600, now=None, **extra):
        now = int(time.time() if now is None else now)
        claims = {"iss": self.issuer, "sub": subject, "aud": audience, "iat": now, "nbf": now,
                  "exp": now + int(lifetime), "jti": uuid.uuid4().hex}
        claims.update(extra)
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
