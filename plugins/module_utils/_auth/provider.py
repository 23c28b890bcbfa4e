# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TokenProvider: tokens per scope, reused in the process and, optionally, across the tasks of a play through
a file cache (token_cache). The one way to a token: `get_access_token(scope, fresh=False)` (fresh after a
service refused the cached one), `token_source(scope)` for the SMTP session (its `prefetch()` starts the request early); `on_acquire` sees every request to
the credential (the relay's metrics)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.credential import MIN_VALIDITY, AccessToken


class TokenProvider(object):
    """Tokens per scope: reused from memory, then from the file cache, renewed when < min_validity remains."""

    def __init__(self, credential, cache_dir=None, min_validity=MIN_VALIDITY, clock=time.time, on_acquire=None):
        self.credential = credential
        # on_acquire(scope, token, error, seconds): after each request to the credential (never for a cached
        # token); token is None when it failed with error.
        self.on_acquire = on_acquire
        self.min_validity = min_validity
        self.clock = clock
        self._memory = {}
        self._lock = threading.Lock()
        self._prefetching = {}  # scope -> the thread of prefetch(scope), until get_access_token(scope) joins it
        self._prefetch_errors = {}
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

    def get_access_token(self, scope, fresh=False):
        """An AccessToken for scope: from memory, else the file cache, else the credential.

        fresh=True skips both caches (a service refused the cached token as expired) and stores the new token in
        both, so the next task of the play does not pick up the refused one. After prefetch(scope), the first call
        waits for it and returns its token or raises its error (one request either way).
        """
        started = self._prefetching.pop(scope, None)
        if started is not None:
            started.join()
            error = self._prefetch_errors.pop(scope, None)
            if error is not None and not fresh:
                raise error
        return self._get(scope, fresh)

    def prefetch(self, scope):
        """Start getting scope's token in a background thread, so that the wait for the identity platform overlaps
        other waiting (send_mail: the SMTP connection, EHLO and STARTTLS). Nothing is sent with the token until
        get_access_token(scope) hands it over."""
        if scope in self._prefetching:
            return

        def run():
            try:
                self._get(scope, False)
            except Exception as error:  # handed to the first get_access_token(scope), in the caller's thread
                self._prefetch_errors[scope] = error

        thread = threading.Thread(target=run, name="o365-token-prefetch")
        thread.daemon = True  # a task that fails before it needs the token does not wait for it
        self._prefetching[scope] = thread
        thread.start()

    def _get(self, scope, fresh):
        with self._lock:
            token = None if fresh else self._memory.get(scope)
            if not self._fresh(token):
                token = self._from_cache_or_source(scope, fresh)
                self._memory[scope] = token
            return token

    def get_token(self, scope):
        return self.get_access_token(scope).token

    def token_source(self, scope):
        """The callable an SmtpSession asks for its token: token_source(fresh=False) -> AccessToken."""
        def token_source(fresh=False):
            return self.get_access_token(scope, fresh=fresh)
        token_source.prefetch = lambda: self.prefetch(scope)
        return token_source

    def _acquire(self, scope):
        self.acquisitions += 1
        if self.on_acquire is None:
            return self.credential.get_token(scope)
        started = time.monotonic()
        try:
            token = self.credential.get_token(scope)
        except Exception as error:
            self.on_acquire(scope, None, error, time.monotonic() - started)
            raise
        self.on_acquire(scope, token, None, time.monotonic() - started)
        return token

    def _from_cache_or_source(self, scope, fresh=False):
        if self.cache is None or self.credential.kind == "access_token":
            return self._acquire(scope)
        key = self.cache_key(scope)
        # Holding the lock across read-acquire-write makes concurrent tasks wait for one request.
        with self.cache.lock(key):
            for problem in self.cache.problems:
                self.cache_errors.append("token_cache_dir: %s; the cache is used unlocked, so tasks started "
                                         "together may each ask for a token" % problem)
            del self.cache.problems[:]
            entry = None if fresh else self.cache.load(key)
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
                self.cache_errors.append("token_cache_dir: cannot write the token cache in %s (%s); this task "
                                         "has its token, the next one asks for a new one" % (
                                             self.cache.directory, error.strerror or error))
            return token

    def secrets(self):
        return self.credential.secrets() + [t.token for t in self._memory.values()]
