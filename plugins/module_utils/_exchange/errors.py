# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Exchange admin API's errors: every shape they come in, which are transient, and what the user must do.

Microsoft does not document the endpoint; the shapes are those Microsoft's ExchangeOnlineManagement module and
public clients of the same endpoint read (docs/development.md, "Emulator assumptions"):
- {"error": {"code", "message": "Error executing cmdlet", "details": [{"message": "<ExId>|<exception type>|<text>"}]}}
  (what Microsoft's module reads); `details` may also come as a JSON string;
- no details, the cause in error.innererror.internalException ({"message", "type"}; older answers name the type in
  innererror.type);
- inside an HTTP 200: an "error" object, or "@adminapi.errors" (strings or objects in the details' form);
- a plain-text body ("You have reached the maximum number of concurrent requests per tenant...").
The exception type (its class name) is what the callers key on: not found, already exists, transient.
`ExchangeErrors(cmdlet)` is the mapper the admin client passes to the HttpClient with each call. Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ServiceError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._http import ServiceErrors, read_body, wait_refused_text

BOOTSTRAP_DOC = "docs/exchange-bootstrap.md"
# Exchange's generic wrapper: never the cause itself.
WRAPPER_TYPES = ("ODataServiceException",)
# Errors that say "not now" rather than "no" (our choice, docs/development.md): the server is overloaded
# (ServerBusyException), the mailbox server is in maintenance (ServerInMMException), any *TransientException
# (Exchange's naming for errors worth repeating), and the tenant's concurrent-request limit, named in words only.
TRANSIENT_TYPES = ("ServerBusyException", "ServerInMMException")
TRANSIENT_WORDS = ("maximum number of concurrent requests per tenant", "server is overloaded",
                   "is in maintenance mode", "server is busy")


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


def _get(mapping, name):
    """mapping[name], whatever the key's case (the witnesses read these names case-blind: PowerShell)."""
    if not isinstance(mapping, dict):
        return None
    if name in mapping:
        return mapping[name]
    lowered = name.lower()
    for key, value in mapping.items():
        if str(key).lower() == lowered:
            return value
    return None


def _line(message):
    """(exception type, text) of one error line: "<ExId>|<type>|<text>", or (None, the line)."""
    parts = str(message).split("|", 2)
    if len(parts) == 3:
        return parts[1].strip() or None, parts[2]
    return None, str(message)


def _entries(value):
    """details / @adminapi.errors as a list of messages (a JSON string, a list, an object or a string)."""
    if isinstance(value, str):
        parsed = read_body(value)
        value = parsed if isinstance(parsed, (list, dict)) else [value]
    if isinstance(value, dict):
        value = [value]
    messages = []
    for entry in value or []:
        message = _get(entry, "message") if isinstance(entry, dict) else entry
        if message:
            messages.append(message)
    return messages


def _internal(error):
    """(exception type, text) from error.innererror: internalException (its chain, innermost cause first), else
    innererror's own type when it is not Exchange's generic wrapper."""
    inner = _get(error, "innererror")
    if not isinstance(inner, dict):
        return None, None
    found, current = (None, None), _get(inner, "internalException")
    for unused in range(8):  # a chain of causes; bounded
        if not isinstance(current, dict):
            break
        exception_type = _get(current, "type") or _get(current, "ClassName")
        line_type, text = _line(_get(current, "message") or "")
        exception_type = line_type or exception_type
        if exception_type or text:
            found = (exception_type or found[0], text or found[1])
        current = _get(current, "internalException") or _get(current, "InnerException")
    if found[0] is None:
        own = _get(inner, "type")
        if own and not str(own).endswith(WRAPPER_TYPES):
            found = (own, found[1] or _get(inner, "message"))
    return found


def error_in(body):
    """The error record an answer carries ("error" object, or "@adminapi.errors" of a 200), or None."""
    body = read_body(body)
    if not isinstance(body, dict):
        return None
    error = _get(body, "error")
    if isinstance(error, dict):
        return error
    errors = _get(body, "@adminapi.errors")
    if errors:
        return {"details": errors}
    return None


def parse_error(body):
    """(code, exception type, text) from an admin API answer's error, in any of its known shapes; text alone for a
    plain-text body; (None, None, None) when there is none."""
    parsed = read_body(body)
    if isinstance(parsed, str):
        return None, None, parsed[:500]
    error = error_in(parsed)
    if error is None:
        return None, None, None
    code, text, exception_type = _get(error, "code"), _get(error, "message"), None
    for message in _entries(_get(error, "details")):
        exception_type, text = _line(message)
        if exception_type:
            break
    if not exception_type:
        inner_type, inner_text = _internal(error)
        exception_type, text = inner_type, inner_text or text
    return code, exception_type, text


def is_transient(exception_type, text):
    """True when the error says "not now": worth repeating after a wait."""
    name = str(exception_type or "").rsplit(".", 1)[-1]
    if name in TRANSIENT_TYPES or name.endswith("TransientException"):
        return True
    text = str(text or "").lower()
    return any(words in text for words in TRANSIENT_WORDS)


class ExchangeErrors(ServiceErrors):
    """The admin API's answers for one cmdlet: an error inside an HTTP 200 fails too, transient errors are named in
    the body at any status, and what each error means is `translate`'s."""

    name = "the Exchange admin API"
    endpoint_option = "exchange_endpoint"

    def __init__(self, cmdlet):
        self.cmdlet = cmdlet

    def failed(self, response):
        # A failed write inside a 200 never counts as done. A page of results (no "error" in it) is parsed once.
        return response.status >= 400 or (b"error" in (response.body or b"") and error_in(response.body) is not None)

    def transient(self, status, body):
        if status < 400 and b"error" not in (body or b""):
            return False  # the common case, a page of results, is not parsed twice
        unused, exception_type, text = parse_error(body)
        return (status >= 400 or error_in(body) is not None) and is_transient(exception_type, text)

    def error(self, response):
        return translate(self.cmdlet, response.status, response.body, response.request_id, response.wait_refused)


def translate(cmdlet, status, body, request_id=None, wait_refused=None):
    """An ExchangeCmdletError that says what the user must do."""
    code, exception_type, text = parse_error(body)
    said = bool(text)  # an empty body (a refusal under a false gzip claim) says nothing but its status
    text = text or "the Exchange admin API answered HTTP %s without an error text" % status
    fix = None
    if wait_refused:
        text = "%s; %s" % (text, wait_refused_text(wait_refused))
        fix = ("run the task again once that time has passed (it is idempotent), or run fewer Exchange tasks in "
               "parallel")
    elif is_transient(exception_type, text):
        fix = ("Exchange Online stayed busy through the retries this task may make; run it again later (it is "
               "idempotent), or run fewer Exchange tasks in parallel")
    elif status == 401:
        fix = ("give the admin app the Office 365 Exchange Online application permission Exchange.ManageAsApp with "
               "admin consent, and authenticate for the Exchange resource (see %s)" % BOOTSTRAP_DOC)
    elif status == 403:
        fix = ("the admin app may not run %s: assign the Entra role Exchange Administrator to the admin app's "
               "service principal (Exchange admin roles come from it); it can take up to an hour to apply (see %s)"
               % (cmdlet, BOOTSTRAP_DOC))
    elif "anchormailbox" in text.lower():
        fix = ("set tenant_id to the tenant's id (a GUID): Exchange routes the call by it (with a domain in "
               "tenant_id, organization must be the tenant's initial domain)")
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
    if said and (status in (403, 429) or status >= 500):
        text = "HTTP %s: %s" % (status, text)
    elif status < 300:
        text = "%s (an error inside an HTTP %s answer: nothing is counted as done)" % (text, status)
    return ExchangeCmdletError("%s failed: %s" % (cmdlet, text), cmdlet=cmdlet, exception_type=exception_type,
                               code=code or str(status), fix=fix, status=status, request_id=request_id)
