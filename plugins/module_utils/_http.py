# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One HTTPS client for Microsoft Graph, the Exchange admin API and (through _auth/msal_http) the identity
platform: TLS verified, bearer token per scope, bounded retries honouring Retry-After, service errors with the
request id, nothing secret in any message. `HttpClient.send` is the one place a request goes out.

Errors: each request names its service's error mapper (`errors=`, a `ServiceErrors`): Graph's is
_entra/graph.GraphErrors, the Exchange admin API's _exchange/errors.ExchangeErrors, the identity platform's
_auth/aadsts.IDENTITY (its answers go back to msal and are translated there, by AADSTS code). The mapper says which
answers failed, what they mean and which are worth repeating; the client alone turns a request that got no answer
(connection, timeout, TLS: `HttpClient.unreachable`) into an error naming the mapper's endpoint option. `read_body`
is the one reader of a body.

Retry policy and why:
- GET, HEAD, PUT, PATCH, DELETE are idempotent: retried on connection errors, timeouts and 408, 429, 500, 502,
  503, 504.
- POST is not: a lost answer may hide a created object, and a retry would create a second one. A POST is
  retried only when the failure proves nothing was done: the connection could not be opened, or the service
  answered 429 / 503 (throttled or unavailable before it did any work). Callers whose POST is safe to repeat
  (a read-only Exchange cmdlet, an upsert) pass idempotent=True.

Bodies are read whole and undecoded, then decoded here as their Content-Encoding says when they really are so
encoded: Exchange answers some refusals (403) with an empty or plain body that claims gzip, which requests would
report as a broken connection (ContentDecodingError), retried and blamed on DNS and firewalls, hiding the refusal.

Plain Python (no Ansible import); requests is imported guarded and reported as MissingLibraryError when used.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import json as _json
import time
import uuid
import zlib

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import (
    AuthError,
    MissingLibraryError,
    ServiceError,
    causes,
    redact,
    short_reason,
    tls_failure,
)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import (
    RETRY_STATUSES,
    Backoff,
    call_with_retries,
    parse_retry_after,
)

try:
    import requests
    from requests import exceptions as _rexc
    from urllib3 import exceptions as _u3exc  # requests' own transport
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as _error:  # pragma: no cover - depends on the host
    requests = None
    _rexc = None
    _u3exc = None
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = _error

# Answers that prove a request was refused before any work: safe to repeat even a POST.
NOTHING_DONE_STATUSES = frozenset((429, 503))
IDEMPOTENT_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"))
REQUEST_ID_HEADERS = ("request-id", "x-ms-request-id", "client-request-id")
USER_AGENT = "o365.smtp_oauth"
# The content codings offered (and decoded by _decoded): none that needs a library requests may lack.
ACCEPT_ENCODING = "gzip, deflate"


class HttpResponse(object):
    """status, headers (lower-case keys), body (bytes), the request's url and method; json() parses the body.

    wait_refused: (seconds the service asked to wait, seconds left of the retry budget) when the answer's
    Retry-After did not fit in the budget, so the request was not repeated; else None.
    """

    wait_refused = None

    def __init__(self, status, headers, body, url=None, method=None):
        self.status, self.headers, self.body = status, headers, body
        self.url, self.method = url, method

    @property
    def request_id(self):
        """The service's request id (headers, else a Graph error body's innerError)."""
        return request_id_of(self.headers, self.json() if self.status >= 400 else None)

    def json(self):
        return parse_json(self.body)


def read_body(body):
    """The one reader of a body: its JSON (dict / list), its text when it is not JSON, None when empty."""
    if body is None or isinstance(body, (dict, list)):
        return body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body.strip():
        return None
    try:
        return _json.loads(body)
    except ValueError:
        return body.strip()


def parse_json(body):
    """The JSON of a body (dict / list), else None (empty or not JSON)."""
    value = read_body(body)
    return value if isinstance(value, (dict, list)) else None


def request_id_of(headers, body=None):
    """The service's request id: from the headers, else from a Graph error's innerError."""
    for name in REQUEST_ID_HEADERS:
        value = (headers or {}).get(name)
        if value:
            return value
    if isinstance(body, dict):
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        inner = error.get("innerError") or error.get("innererror") or {}
        if isinstance(inner, dict):
            return inner.get("request-id") or inner.get("client-request-id")
    return None


class ServiceErrors(object):
    """A service's error mapper: the base, for a service nobody described (the client's default), and what every
    service's mapper extends. name: the service in messages (else its host); endpoint_option: the option that
    sets its address; error_class: what its failures raise."""

    name = None
    endpoint_option = None
    error_class = ServiceError

    def failed(self, response):
        """True for an answer that is an error (Exchange also finds errors inside HTTP 200)."""
        return response.status >= 400

    def transient(self, status, body):
        """True for an answer whose body names an error worth repeating the request for (HttpClient.send's
        retry_answer); the retried statuses themselves are _retry.RETRY_STATUSES."""
        return False

    def read(self, body):
        """(code, message) of an error body: OData's {"error": {"code", "message"}} (message may be OData v3's
        {"value"}; the first of "details", which names the cause under a general message, is added), the identity
        platform's {"error", "error_description"}, or a flat {"code", "message"}."""
        if not isinstance(body, dict):
            return None, None
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error.get("Message")
            if isinstance(message, dict):
                message = message.get("value")
            details = error.get("details")
            detail = details[0].get("message") if isinstance(details, list) and details and isinstance(
                details[0], dict) else None
            if detail and detail != message:
                message = "%s: %s" % (message, detail) if message else detail
            return error.get("code") or error.get("Code"), message
        if isinstance(error, str):
            return error, body.get("error_description")
        return body.get("code") or body.get("Code"), body.get("message") or body.get("Message")

    def fix(self, status):
        """What to do about an error status; here only what the retry rule makes true of any service."""
        if status == 429:
            return "the service kept throttling within the retry budget; run again later or lower the request rate"
        if status >= 500:
            return "the service failed on its side; run again later, and quote the request id if it persists"
        return None

    def error(self, response):
        """The error an answer that failed raises: the service's code and message, the fix, the request id."""
        body = response.json()
        code, message = self.read(body)
        text = "%s answered HTTP %s to %s %s" % (self.name or _host_of(response.url), response.status,
                                                 response.method, _path_of(response.url))
        if message:
            text += ": %s" % message
        fix = self.fix(response.status)
        if response.wait_refused:
            text += "; %s" % wait_refused_text(response.wait_refused)
            fix = "run the task again later, once that time has passed, or lower the request rate"
        return self.error_class(text, code=code, status=response.status, fix=fix,
                                request_id=response.request_id or (response.headers or {}).get("client-request-id"),
                                details={"body": body} if isinstance(body, dict) else {})


def _is_expired_token(response, body):
    """A 401 that says the token expired (worth one refresh), not one that says the token is wrong."""
    text = " ".join([response.headers.get("www-authenticate", ""), _json.dumps(body) if body else ""]).lower()
    return "expired" in text or "lifetime validation failed" in text


class HttpClient(object):
    """Requests with a bearer token for `scope`, retries and translated errors.

    token_provider: anything with get_token(scope) -> str (the collection's TokenProvider).
    ca_path: PEM bundle to trust instead of the system's; passed as verify= on every request because requests
      lets REQUESTS_CA_BUNDLE override a Session-level verify.
    debug: callable(line) receiving one redacted line per attempt (modules pass module.debug / a list append).
    secrets: extra values to redact from every message (besides tokens, which are always redacted).
    backoff: callable returning a fresh Backoff for each request (tests inject sleep and clock).
    """

    def __init__(self, token_provider=None, ca_path=None, timeout=30, connect_timeout=10, debug=None,
                 secrets=(), backoff=None, session=None, user_agent=USER_AGENT):
        if not HAS_REQUESTS:
            raise MissingLibraryError("requests", "calls to Microsoft Graph and the Exchange admin API",
                                      error=REQUESTS_IMPORT_ERROR)
        self.token_provider = token_provider
        self.ca_path = ca_path
        self.timeout = (connect_timeout, timeout)
        self.debug = debug
        self._secrets = list(secrets or ())
        self.backoff = backoff or Backoff
        self.requests = requests
        self.session = session or requests.Session()
        self.user_agent = user_agent
        self.attempts = 0  # HTTP attempts made (tests and benchmarks)
        self.retries = 0
        self.last_status = None  # of the last answer, and the Retry-After it asked for (seconds or None)
        self.last_retry_after = None

    def fork(self):
        """A client for another thread: same credential, CA, timeouts, logging and retry policy, its own Session
        (requests does not promise that one Session is safe to share between threads)."""
        twin = HttpClient(self.token_provider, ca_path=self.ca_path, debug=self.debug, secrets=self._secrets,
                          backoff=self.backoff, user_agent=self.user_agent)
        twin.timeout = self.timeout
        return twin

    # -- secrets ------------------------------------------------------------------------------------
    def secrets(self):
        values = list(self._secrets)
        provider_secrets = getattr(self.token_provider, "secrets", None)
        if callable(provider_secrets):
            try:
                values.extend(provider_secrets())
            except Exception:  # never let redaction itself fail a request
                pass
        return values

    def _redact(self, text):
        return redact(text, self.secrets())

    def _log(self, line):
        if self.debug is not None:
            self.debug(self._redact(line))

    # -- tokens -------------------------------------------------------------------------------------
    def _token(self, scope, fresh=False):
        provider = self.token_provider
        if provider is None:
            raise AuthError("no credential is configured for %s" % scope, option="auth_method",
                            fix="set client_id with client_secret or certificate_path, or another auth option")
        if not fresh:
            return provider.get_token(scope)
        # The service refused the cached token as expired: the provider asks its credential again.
        return provider.get_access_token(scope, fresh=True).token

    # -- sending ------------------------------------------------------------------------------------
    def send(self, method, url, backoff, retry_status, retry_error, on_answer=None, retry_answer=None, **kwargs):
        """One request through the Session, repeated within the backoff's bounds; the raw requests.Response.

        TLS is verified against ca_path on every attempt (requests lets REQUESTS_CA_BUNDLE override a
        Session-level verify), and a TLS failure is never repeated. An answer in RETRY_STATUSES for which
        retry_status(status) is true, or any answer for which retry_answer(status, body) is true (a service that
        names a transient error in its body), is repeated after its Retry-After (else the backoff's delay); an
        exception for which retry_error(exc) is true is repeated after the backoff's delay. When the bounds are
        reached the last answer is returned or the last exception raised. on_answer(raw, error, started) sees every attempt (logs). attempts, retries,
        last_status and last_retry_after count for tests and the callers' error messages. The body is read whole
        (raw.content), decoded by _read_body.
        """
        kwargs["verify"] = self.ca_path or True
        kwargs.setdefault("timeout", self.timeout)
        headers = dict(kwargs.get("headers") or {})
        if not any(name.lower() == "accept-encoding" for name in headers):
            headers["Accept-Encoding"] = ACCEPT_ENCODING
        kwargs["headers"] = headers

        def attempt():
            self.attempts += 1
            started = time.monotonic()
            try:
                raw = self.session.request(method, url, stream=True, **kwargs)
                self._read_body(raw)
            except _rexc.RequestException as error:
                if on_answer is not None:
                    on_answer(None, error, started)
                raise
            self.last_status = raw.status_code
            self.last_retry_after = parse_retry_after(raw.headers.get("Retry-After"))
            if on_answer is not None:
                on_answer(raw, None, started)
            return raw

        def retry_after(raw, error):
            if error is not None:  # a TLS failure is never repeated: it will not verify the next time either
                return (isinstance(error, _rexc.RequestException) and not isinstance(error, _rexc.SSLError)
                        and bool(retry_error(error)))
            if (raw.status_code in RETRY_STATUSES and retry_status(raw.status_code)) or (
                    retry_answer is not None and retry_answer(raw.status_code, raw.content)):
                return True if self.last_retry_after is None else self.last_retry_after
            return False

        def count(_raw, _error):
            self.retries += 1
        return call_with_retries(attempt, retry_after, backoff, on_retry=count)

    def _read_body(self, raw):
        """Read the whole body undecoded and keep it decoded as raw.content (see the module docstring)."""
        try:
            data = raw.raw.read(decode_content=False) if raw.raw is not None else b""
        except _u3exc.ReadTimeoutError as error:  # mapped as requests maps them when it reads a body itself
            raise _rexc.ReadTimeout(error)
        except _u3exc.SSLError as error:
            raise _rexc.SSLError(error)
        except (_u3exc.HTTPError, OSError) as error:
            raise _rexc.ChunkedEncodingError(error)
        coding = raw.headers.get("Content-Encoding") or ""
        body = _decoded(data or b"", coding)
        if body is None:
            self._log("%s %s: the body claims Content-Encoding %s but is not so encoded (%d bytes); read as it is"
                      % (raw.request.method if raw.request is not None else "", raw.url, coding, len(data or b"")))
            body = data or b""
        raw._content = body  # what requests' content / text / json() return (msal reads text)
        raw._content_consumed = True

    # -- the request --------------------------------------------------------------------------------
    def request(self, method, url, scope=None, json=None, params=None, headers=None, data=None,
                idempotent=None, raise_errors=True, errors=None):
        """Send with retries; HttpResponse on an answer that did not fail (and on one that did when raise_errors
        is False).

        errors: the service's ServiceErrors (default: the base). It says which answers failed and which name an
        error worth repeating the request for (repeating is then the caller's promise that it is safe), and
        builds the error raised for a failed answer after retries. A request that got no answer raises
        `unreachable`'s error (code connection_failed, timeout, tls_failed or tls_name_mismatch).
        """
        errors = errors or DEFAULT_ERRORS
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        send_headers = {"Accept": "application/json", "User-Agent": self.user_agent,
                        "client-request-id": str(uuid.uuid4())}
        if headers:
            send_headers.update(headers)
        backoff = self.backoff().start()
        answers = []

        def log(raw, error, started):
            if error is not None:
                self._log("%s %s -> %s" % (method, url, type(error).__name__))
                return
            answers.append(self._response(method, url, raw))
            self._log("%s %s -> %s (%d ms) request-id=%s" % (method, url, answers[-1].status,
                                                             (time.monotonic() - started) * 1000,
                                                             answers[-1].request_id))

        def retry_status(status):
            return idempotent or status in NOTHING_DONE_STATUSES

        def retry_error(error):
            return idempotent or _nothing_sent(error)

        fresh = False
        while True:
            if scope:
                send_headers["Authorization"] = "Bearer %s" % self._token(scope, fresh=fresh)
            try:
                self.send(method, url, backoff, retry_status, retry_error, on_answer=log, retry_answer=errors.transient,
                          json=json, params=params, data=data, headers=send_headers, allow_redirects=False)
            except _rexc.RequestException as error:  # anything else is a bug: the module wrapper reports it
                raise self.unreachable(errors, method, url, error, send_headers["client-request-id"],
                                       attempts=backoff.attempt + 1)
            response = answers[-1]
            if backoff.refused_wait is not None:
                response.wait_refused = (backoff.refused_wait, backoff.remaining())
            if not errors.failed(response):
                return response
            if response.status == 401 and scope and not fresh and _is_expired_token(response, response.json()):
                fresh = True  # once: a second refusal is not about expiry
                continue
            if not raise_errors:
                return response
            error = errors.error(response)
            error.message = self._redact(error.message)
            raise error

    def _response(self, method, url, raw):
        headers = dict((k.lower(), v) for k, v in raw.headers.items())
        return HttpResponse(raw.status_code, headers, raw.content, url=url, method=method)

    def unreachable(self, errors, method, url, error, request_id=None, attempts=1):
        """The error for a request that got no answer (the one translation of connection, timeout and TLS
        failures, for every service): it names the service (errors.name), the option that sets its address
        (errors.endpoint_option) and, for TLS, ca_path; raised as errors.error_class."""
        host = _host_of(url)
        where = "%s at %s" % (errors.name, host) if errors.name else host
        option, details = errors.endpoint_option, {"nothing_sent": _nothing_sent(error)}
        failure = tls_failure(error, where, errors.error_class, endpoint_option=option, request_id=request_id,
                              details=details)
        if failure is None:
            if isinstance(error, _rexc.Timeout):
                code, what = "timeout", "no answer from %s in time" % where
                fix = "check network access to %s; run again (the request may have been done)" % host
            else:
                code, what = "connection_failed", "the connection to %s failed" % where
                fix = "check DNS, proxy and firewall access to %s over HTTPS (port 443)" % host
            if option:
                fix += ", and %s" % option
            tries = " after %d attempts" % attempts if attempts > 1 else ""
            failure = errors.error_class("%s%s (%s)" % (what, tries, short_reason(error)), option=option, code=code,
                                         fix=fix, request_id=request_id, details=details)
        failure.message = self._redact("%s %s: %s" % (method, _path_of(url), failure.message))
        return failure


def wait_refused_text(wait_refused):
    """Says that a Retry-After was not waited for, and why (for HttpResponse.wait_refused)."""
    asked, left = wait_refused
    return ("it asked to wait %d s before trying again (Retry-After), more than the %d s left of this task's retry "
            "budget, so the request was not repeated" % (round(asked), int(left)))


def _decoded(data, coding):
    """data decoded as the Content-Encoding header `coding` says; None when it is not so encoded (empty, or a plain
    body under a false claim). A coding we did not offer is left as it is."""
    for name in reversed([c.strip().lower() for c in coding.split(",") if c.strip()]):
        if not data or name == "identity":
            continue
        try:
            if name in ("gzip", "x-gzip"):
                data = gzip.decompress(data)
            elif name == "deflate":
                try:
                    data = zlib.decompress(data)
                except zlib.error:  # deflate sent without its zlib wrapper, as some servers do
                    data = zlib.decompress(data, -zlib.MAX_WBITS)
            else:
                return data
        except (OSError, EOFError, zlib.error):
            return None
    return data


def _nothing_sent(error):
    """True when the failure proves the request never reached the service (safe to repeat even a POST)."""
    if _rexc is not None and isinstance(error, (_rexc.SSLError, _rexc.ConnectTimeout)):
        return True
    return _refused(error)


def _refused(error):
    """True when the TCP connection was never opened (refused / unreachable): nothing reached the service."""
    return any(isinstance(current, ConnectionRefusedError) or type(current).__name__ in (
        "NewConnectionError", "NameResolutionError") for current in causes(error))


def _host_of(url):
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0]


def _path_of(url):
    rest = url.split("://", 1)[-1]
    path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return path.split("?", 1)[0]


DEFAULT_ERRORS = ServiceErrors()

__all__ = ["HttpClient", "HttpResponse", "ServiceErrors", "read_body", "parse_json", "request_id_of",
           "wait_refused_text", "RETRY_STATUSES"]
