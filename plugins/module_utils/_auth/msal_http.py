# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP client msal calls (get / post / close): the collection's one HttpClient, with msal's verbs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._http import HttpClient
from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import Backoff


class IdentityHttpClient(HttpClient):
    """The HTTP client msal calls (get / post / close). HttpClient.send sends (TLS verified against ca_path on
    every request, the same Session handling and retry rule as Graph and Exchange); here only what differs for
    the identity platform: every request may be repeated (a token request creates nothing), within max_wait
    seconds in total, and a throttled answer past those bounds goes back to msal. A request that got no answer
    fails as HttpClient.unreachable says for the identity platform (naming ca_path or authority_host).
    msal_credentials reads last_status, last_retry_after and retries after msal gave up.

    Imported only when msal is about to ask for a token (requests costs import time; the file cache needs none).
    """

    def __init__(self, ca_path=None, timeout=30, attempts=4, max_wait=30.0, sleep=time.sleep):
        super(IdentityHttpClient, self).__init__(ca_path=ca_path, timeout=timeout)
        self._backoff = dict(base=1.0, max_delay=8.0, total=max_wait, max_attempts=attempts, sleep=sleep)

    def get(self, url, **kwargs):
        return self._send("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self._send("POST", url, **kwargs)

    def close(self):
        self.session.close()

    def _send(self, method, url, **kwargs):
        exceptions = self.requests.exceptions
        backoff = Backoff(**self._backoff).start()

        def unreachable(error):
            return isinstance(error, (exceptions.ConnectionError, exceptions.Timeout))
        try:
            return self.send(method, url, backoff, retry_status=lambda status: True, retry_error=unreachable, **kwargs)
        except exceptions.RequestException as error:
            # Lazy: a token that came without trouble never compiles the AADSTS table.
            from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.aadsts import IDENTITY
            raise self.unreachable(IDENTITY, method, url, error, attempts=backoff.attempt + 1)
