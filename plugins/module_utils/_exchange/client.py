# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exchange Online admin API: cmdlets over REST, the way ExchangeOnlineManagement v3 runs them.

Microsoft does not document this endpoint, so everything about it lives in this file (and its errors in
errors.py) behind one call, `ExchangeAdminClient.invoke(cmdlet, parameters)` -> list of dicts:
    POST {exchange_endpoint}/adminapi/beta/{tenant}/InvokeCommand
    {"CmdletInput": {"CmdletName": ..., "Parameters": {...}}}, headers X-ResponseFormat: json, X-AnchorMailbox (the
    routing hint, `anchor_for`) and Prefer: odata.maxpagesize=1000 (both as Microsoft's ExchangeOnlineManagement
    module sends them), results under "value", more pages by POSTing the same body to "@odata.nextLink".
Errors, in every shape they come in (HTTP errors, errors inside an HTTP 200, plain text), are read by errors.py
(`ExchangeErrors`, the mapper each call passes to the HttpClient) and turned into ExchangeCmdletError with what to
do. Retries (429/5xx with Retry-After, dropped connections, and transient errors named in the body) are the shared
HttpClient's job. Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading

try:
    from urllib.parse import urljoin, urlsplit
except ImportError:  # Python 2 (sanity only)
    from urlparse import urljoin, urlsplit

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.checks import is_guid
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.errors import (
    ExchangeCmdletError,
    ExchangeErrors,
)

# The arbitration mailbox ExchangeOnlineManagement anchors admin calls on (routes the call to the tenant's forest).
SYSTEM_MAILBOX = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"
PAGE_SIZE = 1000  # Prefer: odata.maxpagesize, as ExchangeOnlineManagement asks
MAX_PAGES = 1000  # a runaway nextLink loop must end
MAX_REDIRECTS = 3
# Where Exchange Online may send a client (tenant-specific redirects, next pages): Microsoft's own hosts only, in
# every cloud, the cloud's own admin hosts (DoD: webmail.apps.mil, _clouds.py), or the configured endpoint's own
# host. Anything else never sees the token.
MICROSOFT_SUFFIXES = (".office365.com", ".outlook.com", ".office365.us", ".outlook.cn", ".partner.outlook.cn",
                      ".microsoft.com")


def anchor_for(tenant_id, organization=None):
    """The X-AnchorMailbox routing hint for app-only calls, as ExchangeOnlineManagement sends it: the APP: form with
    the tenant id; the UPN: form only with a domain (organization, else tenant_id when it is one). Never UPN: with a
    GUID, which Exchange's routing refuses."""
    if is_guid(tenant_id):
        return "APP:%s@%s" % (SYSTEM_MAILBOX, tenant_id)
    return "UPN:%s@%s" % (SYSTEM_MAILBOX, organization or tenant_id)


class ExchangeAdminClient(object):
    """Runs cmdlets for one tenant. `http` is the shared HttpClient; `tenant_id` a GUID or the initial domain."""

    def __init__(self, http, cloud, tenant_id, anchor_domain=None):
        self.http = http
        self.scope = cloud.exchange_scope
        self.url = "%s/adminapi/beta/%s/InvokeCommand" % (cloud.exchange_endpoint, tenant_id)
        self.admin_hosts = tuple(h.lower() for h in getattr(cloud, "exchange_admin_hosts", ()))
        self.anchor = anchor_for(tenant_id, anchor_domain)
        self.calls = 0
        self.writes = 0   # write cmdlets sent (check mode must leave this at 0)
        self.warnings = []  # Exchange's warnings ("already present"...), for the module's warnings
        # Safe to call from a few threads (_parallel.bounded_map): counters under a lock, and each other thread
        # sends through its own fork of the HttpClient (its own connection pool).
        self._lock = threading.Lock()
        self._owner = threading.current_thread()
        self._local = threading.local()

    def _http(self):
        if threading.current_thread() is self._owner or not hasattr(self.http, "fork"):
            return self.http
        if getattr(self._local, "http", None) is None:
            self._local.http = self.http.fork()
        return self._local.http

    def _count(self, calls=0, writes=0, warnings=()):
        with self._lock:
            self.calls += calls
            self.writes += writes
            self.warnings.extend(w for w in warnings if w not in self.warnings)

    @staticmethod
    def is_write(cmdlet):
        return not cmdlet.lower().startswith(("get-", "test-"))

    def invoke(self, cmdlet, parameters=None):
        """Run one cmdlet; every page of its output as a list of dicts. Raises ExchangeCmdletError."""
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": dict(parameters or {})}}
        headers = {"X-ResponseFormat": "json", "X-AnchorMailbox": self.anchor, "Accept": "application/json",
                   "X-CmdletName": cmdlet, "Prefer": "odata.maxpagesize=%d" % PAGE_SIZE}
        if self.is_write(cmdlet):
            self._count(writes=1)
        rows, url = [], self.url
        for unused_page in range(MAX_PAGES):
            self._count(calls=1)
            page = self._post(cmdlet, url, body, headers)
            rows.extend(page.get("value") or [])
            self._count(warnings=page.get("@adminapi.warnings") or [])
            url = page.get("@odata.nextLink")
            if not url:
                return rows
        raise ExchangeCmdletError("%s returned more than %d pages" % (cmdlet, MAX_PAGES), cmdlet=cmdlet)

    def get_or_none(self, cmdlet, parameters=None):
        """Like invoke, but None when Exchange says the object does not exist."""
        try:
            return self.invoke(cmdlet, parameters)
        except ExchangeCmdletError as error:
            if error.not_found:
                return None
            raise

    def trusted(self, url):
        """True for an https URL on the configured endpoint's host, the cloud's admin hosts or Microsoft's hosts."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        own = (urlsplit(self.url).hostname or "").lower()
        return parts.scheme == "https" and bool(host) and (
            host == own or host in self.admin_hosts or host.endswith(MICROSOFT_SUFFIXES))

    def _post(self, cmdlet, url, body, headers):
        # Every cmdlet is sent as retryable: reads are, and a write whose answer was lost comes back as
        # "already present" (Add-*, Set-*), duplicate (New-*) or not found (Remove-*), which callers treat as done.
        redirected = False
        for unused in range(MAX_REDIRECTS + 1):
            if not self.trusted(url):
                raise ExchangeCmdletError(
                    "%s: the Exchange admin API sent the client to %s, which is not a Microsoft Exchange host; the "
                    "request (and its token) was not sent there" % (cmdlet, urlsplit(url).hostname), cmdlet=cmdlet,
                    fix="check exchange_endpoint and any proxy in between")
            if redirected and url.split("?", 1)[0].endswith("/InvokeCommand"):
                self.url = url.split("?", 1)[0]  # a trusted tenant-specific redirect: later calls go there directly
            response = self._http().request("POST", url, scope=self.scope, json=body, headers=headers,
                                            idempotent=True, errors=ExchangeErrors(cmdlet))
            location = response.headers.get("location")
            if response.status not in (301, 302, 307, 308) or not location:
                break
            # A tenant-specific redirect (another forest): followed on the next turn, once trusted.
            url, redirected = urljoin(url, location), True
        else:
            raise ExchangeCmdletError("%s: more than %d redirects" % (cmdlet, MAX_REDIRECTS), cmdlet=cmdlet)
        page = response.json()
        if not isinstance(page, dict):
            raise ExchangeCmdletError("%s: the Exchange admin API answered something that is not JSON" % cmdlet,
                                      cmdlet=cmdlet, status=response.status, request_id=response.request_id,
                                      fix="check exchange_endpoint: it must be the Exchange Online endpoint")
        return page
