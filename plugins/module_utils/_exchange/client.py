# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exchange Online admin API: cmdlets over REST, the way ExchangeOnlineManagement v3 runs them.

Microsoft does not document this endpoint, so everything about it lives in this file behind one call,
`ExchangeAdminClient.invoke(cmdlet, parameters)` -> list of dicts:
    POST {exchange_endpoint}/adminapi/beta/{tenant}/InvokeCommand
    {"CmdletInput": {"CmdletName": ..., "Parameters": {...}}}, headers X-ResponseFormat: json, X-AnchorMailbox,
    results under "value", more pages by POSTing the same body to "@odata.nextLink".
Errors come back as {"error": {"code", "message": "Error executing cmdlet", "details": [{"message":
"<ExId>|<exception type>|<text>"}]}}; they are turned into ExchangeCmdletError with what to do.
Retries (429/5xx with Retry-After, dropped connections) are the shared HttpClient's job. Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json as _json
import threading

try:
    from urllib.parse import urljoin, urlsplit
except ImportError:  # Python 2 (sanity only)
    from urlparse import urljoin, urlsplit

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ServiceError

# The arbitration mailbox ExchangeOnlineManagement anchors admin calls on (routes the call to the tenant's forest).
ANCHOR = "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@%s"
BOOTSTRAP_DOC = "docs/exchange-bootstrap.md"
MAX_PAGES = 1000  # a runaway nextLink loop must end
MAX_REDIRECTS = 3
# Where Exchange Online may send a client (tenant-specific redirects, next pages): Microsoft's own hosts only, in
# every cloud, the cloud's own admin hosts (DoD: webmail.apps.mil, _clouds.py), or the configured endpoint's own
# host. Anything else never sees the token.
MICROSOFT_SUFFIXES = (".office365.com", ".outlook.com", ".office365.us", ".outlook.cn", ".partner.outlook.cn",
                      ".microsoft.com")


class ExchangeCmdletError(ServiceError):
    """A cmdlet failed. `exception_type` is Exchange's exception class name (ManagementObjectNotFoundException...)."""

    def __init__(self, message, cmdlet=None, exception_type=None, **kwargs):
        super(ExchangeCmdletError, self).__init__(message, **kwargs)
        self.cmdlet = cmdlet
        self.exception_type = exception_type or ""

    @property
    def not_found(self):
        return self.exception_type.endswith("ManagementObjectNotFoundException") or (
            self.status == 404 and not self.exception_type)

    @property
    def duplicate(self):
        return "AlreadyExists" in self.exception_type


def _loads(body):
    if body is None or isinstance(body, (dict, list)):
        return body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return _json.loads(body) if body else None
    except ValueError:
        return None


def parse_error(body):
    """(code, exception type, text) from an admin API error body (any of its known shapes)."""
    body = _loads(body)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, None
    text, exception_type = error.get("message"), None
    for detail in error.get("details") or []:
        parts = str(detail.get("message", "")).split("|", 2)
        if len(parts) == 3:
            exception_type, text = parts[1], parts[2]
            break
        if detail.get("message"):
            text = detail["message"]
    return error.get("code"), exception_type, text


def translate(cmdlet, status, body, request_id=None):
    """An ExchangeCmdletError that says what the user must do."""
    code, exception_type, text = parse_error(body)
    text = text or "the Exchange admin API answered HTTP %s" % status
    fix = None
    if status == 401:
        fix = ("give the admin app the Office 365 Exchange Online application permission Exchange.ManageAsApp with "
               "admin consent, and authenticate for the Exchange resource (see %s)" % BOOTSTRAP_DOC)
    elif status == 403:
        fix = ("assign an Exchange admin role (Exchange Administrator) to the admin app's service principal in "
               "Entra ID; it can take up to an hour to apply (see %s)" % BOOTSTRAP_DOC)
    elif exception_type and exception_type.endswith("ManagementObjectNotFoundException"):
        fix = "check the name or address: Exchange does not know it (a new mailbox can take minutes to appear)"
    elif exception_type and "AlreadyExists" in exception_type:
        fix = "another object already uses this name or id; rename it or remove the other one"
    elif exception_type and "ParameterBinding" in exception_type:
        fix = "this is a bug in the collection's call to %s; please report it with this message" % cmdlet
    elif status == 429:
        fix = ("Exchange Online kept throttling the admin API after the waits it asked for (Retry-After); run the "
               "task again later (it is idempotent), or run fewer Exchange tasks in parallel")
    elif status >= 500:
        fix = "Exchange Online is unavailable; run the task again later (it is idempotent)"
    if status == 429 or status >= 500:
        text = "HTTP %s: %s" % (status, text)
    return ExchangeCmdletError("%s failed: %s" % (cmdlet, text), cmdlet=cmdlet, exception_type=exception_type,
                               code=code or str(status), fix=fix, status=status, request_id=request_id)


class ExchangeAdminClient(object):
    """Runs cmdlets for one tenant. `http` is the shared HttpClient; `tenant_id` a GUID or the initial domain."""

    def __init__(self, http, cloud, tenant_id, anchor_domain=None):
        self.http = http
        self.scope = cloud.exchange_scope
        self.url = "%s/adminapi/beta/%s/InvokeCommand" % (cloud.exchange_endpoint, tenant_id)
        self.admin_hosts = tuple(h.lower() for h in getattr(cloud, "exchange_admin_hosts", ()))
        self.anchor = ANCHOR % (anchor_domain or tenant_id)
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
                   "X-CmdletName": cmdlet}
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
                                            idempotent=True, raise_errors=False)
            status = getattr(response, "status", 200)
            location = (getattr(response, "headers", None) or {}).get("location")
            if status not in (301, 302, 307, 308) or not location:
                break
            # A tenant-specific redirect (another forest): followed on the next turn, once trusted.
            url, redirected = urljoin(url, location), True
        else:
            raise ExchangeCmdletError("%s: more than %d redirects" % (cmdlet, MAX_REDIRECTS), cmdlet=cmdlet)
        page = _loads(getattr(response, "body", None))
        if status >= 400:
            raise translate(cmdlet, status, page, getattr(response, "request_id", None))
        if not isinstance(page, dict):
            raise ExchangeCmdletError("%s: the Exchange admin API answered something that is not JSON" % cmdlet,
                                      cmdlet=cmdlet, status=status, request_id=getattr(response, "request_id", None),
                                      fix="check exchange_endpoint: it must be the Exchange Online endpoint")
        return page
