# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP client msal calls (get / post / close): an adapter over the collection's one HttpClient."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import Backoff


class IdentityHttpClient(object):
    """The HTTP client msal calls (get / post / close). HttpClient.send sends (TLS verified against ca_path on
    every request, the same Session handling and retry rule as Graph and Exchange); here only what differs for
    the identity platform: every request may be repeated (a token request creates nothing), within max_wait
    seconds in total, a throttled answer past those bounds goes back to msal, and failures name ca_path or
    authority_host."""

    def __init__(self, ca_path=None, timeout=30, attempts=4, max_wait=30.0, sleep=time.sleep):
        # Lazy: requests costs import time, and a token from the file cache never needs it.
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._http import HttpClient
        self._http = HttpClient(ca_path=ca_path)
        self.timeout = timeout
        self._backoff = dict(base=1.0, max_delay=8.0, total=max_wait, max_attempts=attempts, sleep=sleep)

    # What msal_credentials reads after msal gave up: the last answer and how often it was repeated.
    @property
    def retries(self):
        return self._http.retries

    @property
    def last_status(self):
        return self._http.last_status

    @property
    def last_retry_after(self):
        return self._http.last_retry_after

    def get(self, url, **kwargs):
        return self._send("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self._send("POST", url, **kwargs)

    def close(self):
        self._http.session.close()

    def _send(self, method, url, **kwargs):
        requests = self._http.requests
        kwargs.setdefault("timeout", self.timeout)
        host = url.split("/")[2] if "//" in url else url
        backoff = Backoff(**self._backoff).start()

        def unreachable(error):  # a TLS failure is not repeated: it will not verify the next time either
            return (isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout))
                    and not isinstance(error, requests.exceptions.SSLError))
        try:
            return self._http.send(method, url, backoff, retry_status=lambda status: True, retry_error=unreachable,
                                   **kwargs)
        except requests.exceptions.SSLError as error:
            raise AuthError("TLS verification of %s failed: %s" % (host, error.__class__.__name__),
                            option="ca_path", code="tls_verify_failed",
                            fix="give ca_path (a PEM bundle with the CA that issued the server certificate), "
                                "or check authority_host")
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
            raise AuthError("cannot reach the identity platform at %s after %d attempts (%s)"
                            % (host, backoff.attempt + 1, error.__class__.__name__), option="authority_host",
                            code="connection_failed", fix="check the network, proxy and authority_host")
