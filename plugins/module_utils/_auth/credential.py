# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The credential interface: one Credential per kind (subclasses in msal_credentials and
identity_credentials), and the simplest kind, a token given as it is."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import hashlib
import threading
import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import resolve_cloud
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError, ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.checks import check_tenant
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.jwt_claims import ClaimsError, decode_claims

AccessToken = collections.namedtuple("AccessToken", ["token", "expires_on"])

# Renew when less than this remains: Exchange refuses tokens about to expire.
MIN_VALIDITY = 600


def identity_hash(*values):
    """A one-way digest of a credential's identity for cache keys: the credential itself never reaches disk."""
    digest = hashlib.sha256(b"o365.smtp_oauth cache identity\0")
    for value in values:
        digest.update(str(value if value is not None else "").encode("utf-8") + b"\0")
    return digest.hexdigest()


def scope_resource(scope):
    return scope[:-len("/.default")] if scope.endswith("/.default") else scope


class Credential(object):
    """One way to obtain app-only tokens. Subclasses set kind (its row in kinds.KINDS names the options it
    reads), implement from_options, _check and _acquire."""

    kind = None
    # The option that holds the credential, for error messages: its kind's first option in kinds.py, set by
    # options.credential_from_options unless the class chose one.
    option = None

    @classmethod
    def from_options(cls, opts, environ, **common):
        """This kind from the module options (only those kinds.py gives it and the shared ones); common: cloud,
        ca_path, timeout. ConfigError names the option."""
        raise NotImplementedError

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

    @classmethod
    def from_options(cls, opts, environ, **common):
        return cls(opts.get("access_token"), tenant_id=check_tenant(opts.get("tenant_id"), required=False), **common)

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
