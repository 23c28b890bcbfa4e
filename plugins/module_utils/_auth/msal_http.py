# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP client msal calls (get / post / close)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import RETRY_STATUSES, Backoff, parse_retry_after


class IdentityHttpClient(object):
    """The HTTP client msal calls (get / post / close): TLS verified against ca_path on every request, and
    connection errors, 429 and 5xx retried honouring Retry-After, within max_wait seconds in total."""

    def __init__(self, ca_path=None, timeout=30, attempts=4, max_wait=30.0, sleep=time.sleep):
        import requests
        self._requests = requests
        self._session = requests.Session()
        # Per request, not on the Session: a Session's verify loses to REQUESTS_CA_BUNDLE.
        self._verify = ca_path or True
        self.timeout = timeout
        self._backoff = dict(base=1.0, max_delay=8.0, total=max_wait, max_attempts=attempts, sleep=sleep)
        self.retries = 0
        self.last_status = None
        self.last_retry_after = None

    def get(self, url, **kwargs):
        return self._send("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self._send("POST", url, **kwargs)

    def close(self):
        self._session.close()

    def _send(self, method, url, **kwargs):
        kwargs["verify"] = self._verify
        kwargs.setdefault("timeout", self.timeout)
        host = url.split("/")[2] if "//" in url else url
        backoff = Backoff(**self._backoff).start()
        while True:
            try:
                response = self._session.request(method, url, **kwargs)
            except self._requests.exceptions.SSLError as error:
                raise AuthError("TLS verification of %s failed: %s" % (host, error.__class__.__name__),
                                option="ca_path", code="tls_verify_failed",
                                fix="give ca_path (a PEM bundle with the CA that issued the server certificate), "
                                    "or check authority_host")
            except (self._requests.exceptions.ConnectionError, self._requests.exceptions.Timeout) as error:
                if not backoff.wait():
                    raise AuthError("cannot reach the identity platform at %s after %d attempts (%s)"
                                    % (host, backoff.attempt + 1, error.__class__.__name__), option="authority_host",
                                    code="connection_failed", fix="check the network, proxy and authority_host")
            else:
                self.last_status = response.status_code
                self.last_retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if response.status_code not in RETRY_STATUSES or not backoff.wait(self.last_retry_after):
                    return response  # a throttled answer past our bounds goes to msal, which reports it
            self.retries += 1
