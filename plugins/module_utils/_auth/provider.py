# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TokenProvider: tokens per scope, reused in the process and, optionally, across the tasks of a play through
a file cache (token_cache)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.credential import MIN_VALIDITY, AccessToken


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
            from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.token_cache import FileTokenCache
            self.cache = FileTokenCache(cache_dir)
        self.acquisitions = 0  # token requests this provider made (for tests and benchmarks)
        self.cache_errors = []  # cache writes that failed (the token was still returned)

    def _fresh(self, token):
        # A ready access token cannot be renewed: use it while it is valid at all.
        margin = 0 if self.credential.kind == "access_token" else self.min_validity
        return token is not None and token.expires_on - self.clock() > margin

    def cache_key(self, scope):
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.token_cache import cache_key
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
