# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The token layer: one Credential per kind behind one interface, chosen from the shared module options, and a
TokenProvider that reuses tokens in the process and, optionally, across the tasks of a play through a file cache.

Each kind lives in its own file and is imported only when chosen: msal (secret, certificate) in
_credentials_msal, azure-identity (managed identity, workload identity, Azure CLI) in _credentials_identity.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import hashlib
import re
import threading
import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import resolve_cloud
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError, ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._jwt_claims import ClaimsError, decode_claims

AccessToken = collections.namedtuple("AccessToken", ["token", "expires_on"])

# Renew when less than this remains: Exchange refuses tokens about to expire.
MIN_VALIDITY = 600

# auth_method values; "auto" takes the first kind (in this order) whose options are set.
AUTO_ORDER = ("access_token", "certificate", "client_secret", "workload_identity", "managed_identity", "azure_cli")
AUTH_METHODS = ("auto",) + AUTO_ORDER
_ALIASES = {"secret": "client_secret", "federated_token_file": "workload_identity", "federated": "workload_identity",
            "cli": "azure_cli", "msi": "managed_identity", "token": "access_token"}

# The option whose presence selects each kind (bool options count only when true).
_SIGNALS = {
    "access_token": ("access_token",),
    "certificate": ("certificate_path",),
    "client_secret": ("client_secret",),
    "workload_identity": ("federated_token_file",),
    "managed_identity": ("managed_identity", "managed_identity_client_id"),
    "azure_cli": ("azure_cli",),
}
# Options that are an explicit request for one kind, not a value that happens to be in the environment.
_FLAGS = ("managed_identity", "azure_cli")

_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN_RE = re.compile(r"^(?=.{3,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_MULTI_TENANT = {
    "common": "it means any work or personal account",
    "organizations": "it means any work account",
    "consumers": "it means personal Microsoft accounts",
}


def is_guid(value):
    return bool(_GUID_RE.match(str(value or "").strip()))


def check_tenant(value, required=True):
    """A tenant GUID or domain; the multi-tenant aliases cannot issue app-only tokens."""
    value = (value or "").strip() if isinstance(value, str) or value is None else str(value)
    if not value:
        if required:
            raise ConfigError("is required: client credentials are issued by one tenant", option="tenant_id",
                              fix="set tenant_id (or AZURE_TENANT_ID) to the tenant ID (GUID) or its "
                                  "domain, e.g. contoso.onmicrosoft.com")
        return None
    if value.lower() in _MULTI_TENANT:
        raise ConfigError("%r cannot be used: %s, but an app-only (client credentials) token is issued by one "
                          "specific tenant" % (value, _MULTI_TENANT[value.lower()]), option="tenant_id",
                          fix="give the tenant ID (GUID) or its domain, e.g. contoso.onmicrosoft.com")
    if not (is_guid(value) or _DOMAIN_RE.match(value)):
        raise ConfigError("%r is neither a tenant ID (GUID) nor a domain name" % value, option="tenant_id",
                          fix="give the Directory (tenant) ID shown in Entra ID, or e.g. contoso.onmicrosoft.com")
    return value


def check_client_id(value, option="client_id", required=True):
    value = (value or "").strip() if isinstance(value, str) or value is None else str(value)
    if not value:
        if required:
            raise ConfigError("is required for this credential", option=option,
                              fix="set %s to the Application (client) ID (a GUID)" % option)
        return None
    if not is_guid(value):
        raise ConfigError("%r is not an Application (client) ID; it must be a GUID" % value, option=option,
                          fix="copy the Application (client) ID from the app's Overview page")
    return value


def identity_hash(*values):
    """A one-way digest of a credential's identity for cache keys: the credential itself never reaches disk."""
    digest = hashlib.sha256(b"o365.smtp_oauth cache identity\0")
    for value in values:
        digest.update(str(value if value is not None else "").encode("utf-8") + b"\0")
    return digest.hexdigest()


def scope_resource(scope):
    return scope[:-len("/.default")] if scope.endswith("/.default") else scope


class Credential(object):
    """One way to obtain app-only tokens. Subclasses set kind and option, implement _check and _acquire."""

    kind = None
    option = None  # the option that holds the credential, for error messages

    def __init__(self, tenant_id=None, client_id=None, cloud=None, ca_path=None, timeout=30):
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.cloud = cloud or resolve_cloud()
        self.ca_path = ca_path
        self.timeout = timeout
        self.notes = []  # warnings found while choosing the credential
        self._warnings = None
        self._lock = threading.Lock()

    @property
    def authority(self):
        return self.cloud.authority(self.tenant_id) if self.tenant_id else self.cloud.authority_host

    def validate(self):
        """Check the options without any network; return warnings, raise ConfigError naming the option."""
        if self._warnings is None:
            self._warnings = list(self.notes) + list(self._check() or [])
        return list(self._warnings)

    def _check(self):
        return []

    def get_token(self, scope):
        """An AccessToken for scope (a ".default" scope), straight from the source: callers reuse it."""
        self.validate()
        with self._lock:
            return self._acquire(scope)

    def _acquire(self, scope):
        raise NotImplementedError

    def cache_identity(self):
        """What distinguishes this credential in a cache key, without any secret in clear."""
        return identity_hash(self.kind, self.client_id)

    def secrets(self):
        """Values to redact from any message."""
        return []


class AccessTokenCredential(Credential):
    """A token obtained elsewhere (a pipeline step, another tool): used as it is, never renewed."""

    kind = "access_token"
    option = "access_token"

    def __init__(self, access_token, **kwargs):
        super(AccessTokenCredential, self).__init__(**kwargs)
        self.access_token = (access_token or "").strip()
        self._claims = None

    def _check(self):
        if not self.access_token:
            raise ConfigError("is empty", option="access_token")
        if self.access_token.lower().startswith("bearer "):
            raise ConfigError("must be the token alone, without the 'Bearer ' prefix", option="access_token")
        try:
            self._claims = decode_claims(self.access_token)
        except ClaimsError:
            return ["access_token is not a readable JWT; its audience and expiry cannot be checked beforehand"]
        exp = self._claims.get("exp")
        if isinstance(exp, (int, float)) and exp <= time.time():
            raise ConfigError("has expired (exp %s)" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp)),
                              option="access_token", fix="obtain a fresh token, or let the collection obtain one "
                                                         "(client_secret, certificate_path, managed identity...)")
        if isinstance(exp, (int, float)) and exp - time.time() < MIN_VALIDITY:
            return ["access_token expires in %d s; Exchange may refuse a token that is about to expire"
                    % int(exp - time.time())]
        return []

    def _acquire(self, scope):
        claims = self._claims or {}
        aud = str(claims.get("aud") or "").rstrip("/")
        wanted = scope_resource(scope).rstrip("/")
        if aud and wanted.startswith("https://") and aud.startswith("https://") and aud.lower() != wanted.lower():
            raise AuthError("the given token is for %s but this task needs a token for %s" % (aud, wanted),
                            option="access_token", code="wrong_audience",
                            fix="obtain the token for the scope %s" % scope)
        exp = claims.get("exp")
        return AccessToken(self.access_token, int(exp) if isinstance(exp, (int, float)) else int(time.time()) + 3600)

    def cache_identity(self):
        return identity_hash(self.kind, hashlib.sha256(self.access_token.encode("utf-8")).hexdigest())

    def secrets(self):
        return [self.access_token]


def _present(opts, kind):
    return [name for name in _SIGNALS[kind] if opts.get(name) not in (None, "", False)]


def _choose_kind(opts):
    """(kind, warnings) from auth_method and the options that are set."""
    method = (opts.get("auth_method") or "auto").strip().lower()
    method = _ALIASES.get(method, method)
    if method not in AUTH_METHODS:
        raise ConfigError("unknown auth_method %r" % opts.get("auth_method"), option="auth_method",
                          fix="use one of: %s" % ", ".join(AUTH_METHODS))
    present = [(kind, _present(opts, kind)) for kind in AUTO_ORDER]
    present = [(kind, names) for kind, names in present if names]
    if method != "auto":
        ignored = [names[0] for kind, names in present if kind != method]
        warnings = ["%s ignored: auth_method is %s" % (", ".join(ignored), method)] if ignored else []
        return method, warnings
    if not present:
        raise ConfigError("no credential is set", option="auth_method",
                          fix="set one of client_secret, certificate_path, federated_token_file, access_token, "
                              "managed_identity: true or azure_cli: true (or their AZURE_* variables)")
    flagged = [names[0] for kind, names in present if names[0] in _FLAGS]
    if flagged and len(present) > 1:
        others = [names[0] for kind, names in present if names[0] != flagged[0]]
        raise ConfigError("%s and %s both choose a credential" % (flagged[0], others[0]), option=flagged[0],
                          fix="remove one of them, or set auth_method to the kind you want")
    kind = present[0][0]
    ignored = [names[0] for other, names in present[1:]]
    warnings = ["%s ignored: %s takes precedence (set auth_method to choose)" % (", ".join(ignored), present[0][1][0])
                ] if ignored else []
    return kind, warnings


def _cloud_from_options(opts):
    return resolve_cloud(opts.get("cloud") or "public", authority_host=opts.get("authority_host"),
                         graph_endpoint=opts.get("graph_endpoint"), exchange_endpoint=opts.get("exchange_endpoint"),
                         smtp_host=opts.get("smtp_host"))


def credential_from_options(opts, cloud=None):
    """The Credential the options ask for. ConfigError names the option; no network, no third-party import
    beyond what the chosen kind needs. Call validate() for the full offline check and the warnings."""
    opts = dict(opts or {})
    kind, warnings = _choose_kind(opts)
    cloud = cloud or _cloud_from_options(opts)
    ca_path = opts.get("ca_path") or None
    if ca_path is not None:
        import os
        if not os.path.isfile(ca_path):
            raise ConfigError("%s is not a readable file" % ca_path, option="ca_path",
                              fix="give the path of a PEM bundle of the CA certificates to trust")
    common = dict(cloud=cloud, ca_path=ca_path, timeout=opts.get("timeout") or 30)
    client_credential = kind in ("client_secret", "certificate", "workload_identity")
    tenant = check_tenant(opts.get("tenant_id"), required=client_credential)
    if kind == "access_token":
        credential = AccessTokenCredential(opts.get("access_token"), tenant_id=tenant, **common)
    elif kind in ("client_secret", "certificate"):
        from ansible_collections.o365.smtp_oauth.plugins.module_utils import _credentials_msal as msal_kinds
        client_id = check_client_id(opts.get("client_id"))
        if kind == "client_secret":
            credential = msal_kinds.ClientSecretCredential(opts.get("client_secret"), tenant_id=tenant,
                                                           client_id=client_id, **common)
        else:
            credential = msal_kinds.CertificateCredential(
                opts.get("certificate_path"), password=opts.get("certificate_password"),
                thumbprint_algorithm=opts.get("certificate_thumbprint_algorithm") or "sha256",
                tenant_id=tenant, client_id=client_id, **common)
    else:
        from ansible_collections.o365.smtp_oauth.plugins.module_utils import _credentials_identity as identity_kinds
        if kind == "workload_identity":
            credential = identity_kinds.WorkloadIdentityCredential(
                opts.get("federated_token_file"), tenant_id=tenant, client_id=check_client_id(opts.get("client_id")),
                **common)
        elif kind == "managed_identity":
            credential = identity_kinds.ManagedIdentityCredential(
                tenant_id=tenant, client_id=check_client_id(opts.get("managed_identity_client_id"),
                                                            option="managed_identity_client_id", required=False),
                **common)
        else:
            credential = identity_kinds.AzureCliCredential(tenant_id=tenant, **common)
    credential.notes.extend(warnings)
    return credential


class TokenProvider(object):
    """Tokens per scope: reused from memory, then from the file cache, renewed when < min_validity remains."""

    def __init__(self, credential, cache_dir=None, min_validity=MIN_VALIDITY, clock=time.time):
        self.credential = credential
        self.min_validity = min_validity
        self.clock = clock
        self._memory = {}
        self._lock = threading.Lock()
        self.cache = None
        if cache_dir:
            from ansible_collections.o365.smtp_oauth.plugins.module_utils._token_cache import FileTokenCache
            self.cache = FileTokenCache(cache_dir)
        self.acquisitions = 0  # token requests this provider made (for tests and benchmarks)
        self.cache_errors = []  # cache writes that failed (the token was still returned)

    def _fresh(self, token):
        # A ready access token cannot be renewed: use it while it is valid at all.
        margin = 0 if self.credential.kind == "access_token" else self.min_validity
        return token is not None and token.expires_on - self.clock() > margin

    def cache_key(self, scope):
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._token_cache import cache_key
        cred = self.credential
        return cache_key({"tenant": cred.tenant_id, "client": cred.client_id, "scope": scope,
                          "authority": cred.cloud.authority_host, "kind": cred.kind,
                          "identity": cred.cache_identity()})

    def get_access_token(self, scope):
        with self._lock:
            token = self._memory.get(scope)
            if not self._fresh(token):
                token = self._from_cache_or_source(scope)
                self._memory[scope] = token
            return token

    def get_token(self, scope):
        return self.get_access_token(scope).token

    def forget(self, scope):
        """Drop the token for scope (memory and file cache), e.g. after a service refused it: the next call asks."""
        with self._lock:
            self._memory.pop(scope, None)
            if self.cache is not None and self.credential.kind != "access_token":
                key = self.cache_key(scope)
                with self.cache.lock(key):
                    self.cache.remove(key)

    def _acquire(self, scope):
        self.acquisitions += 1
        return self.credential.get_token(scope)

    def _from_cache_or_source(self, scope):
        if self.cache is None or self.credential.kind == "access_token":
            return self._acquire(scope)
        key = self.cache_key(scope)
        # Holding the lock across read-acquire-write makes concurrent tasks wait for one request.
        with self.cache.lock(key):
            entry = self.cache.load(key)
            if entry is not None:
                token = AccessToken(entry["token"], int(entry["expires_on"]))
                if self._fresh(token):
                    return token
            token = self._acquire(scope)
            try:
                self.cache.store(key, token.token, token.expires_on,
                                 info={"kind": self.credential.kind, "tenant": self.credential.tenant_id,
                                       "client": self.credential.client_id, "scope": scope})
            except (IOError, OSError) as error:
                # A full disk must not fail a task that has its token; the next task asks again.
                self.cache_errors.append("token_cache_dir: cannot write %s (%s)" % (self.cache.directory,
                                                                                    error.strerror or error))
            return token

    def secrets(self):
        return self.credential.secrets() + [t.token for t in self._memory.values()]


def token_provider_from_options(opts, cloud=None):
    """credential_from_options + TokenProvider with the token_cache_dir option."""
    credential = credential_from_options(opts, cloud=cloud)
    return TokenProvider(credential, cache_dir=(opts or {}).get("token_cache_dir") or None)
