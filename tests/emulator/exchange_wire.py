"""The Exchange admin API's wire habits that no published reference covers: the routing hint, the shapes an error
can take, refusals whose body lies about its encoding, transient errors named in the body.

Witnesses (Microsoft does not document the endpoint): Microsoft's own ExchangeOnlineManagement module (3.x) and
public clients of the same endpoint (CIPP-API New-ExoRequest.ps1, cisagov ScubaGear EXORestHelper.psm1, GreyCorbel
ExoHelper). Where they disagree, Microsoft's module wins. Each setting below is listed in docs/development.md
("Emulator assumptions") with its witness.

Routing (`check_anchor`). Microsoft's module anchors app-only calls with
`X-AnchorMailbox: APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@<tenant id>` and uses the `UPN:` form only
with a domain (CIPP sends the APP form with the tenant id; ScubaGear the UPN form with the tenant's domain, and no
hint at all on InvokeCommand). A hint Exchange's routing cannot place in this tenant (the UPN form with a tenant
GUID, another tenant, an unknown mailbox) is refused: `tenant.exchange.anchor_check` (True).

Error shapes (`render`), `tenant.exchange.error_shape`, for cmdlet errors (not for the front door's 401 / 403):
- "details": {"error": {"code", "message", "details": [{"message": "ExId|type|text"}], "innererror": {...}}} at
  the error's HTTP status (Microsoft's module reads error.details[].message; every witness does);
- "internal_exception": no details; the type and text in error.innererror.internalException (CIPP and ExoHelper
  fall back to it);
- "details_string": error.details as a JSON string instead of a list;
- "adminapi_errors_200": HTTP 200 whose "@adminapi.errors" lists "ExId|type|text" strings beside an empty "value";
- "error_object_200": HTTP 200 carrying the "error" object (public clients report errors inside 200 answers).

Refusals (`forbidden`), `tenant.exchange.forbidden_body`: public clients report cmdlets refused with 403 whose body
is empty or not gzip while the answer claims `Content-Encoding: gzip`: "json" (a readable body), "empty" or
"plain" (both with the false claim). `tenant.exchange.refused_cmdlets`: cmdlets the admin app's Exchange role does
not include (403 although the app holds an admin role).

Transient errors (`inject`): `inject(tenant, "server_busy" | "maintenance" | "tenant_concurrency", match=None,
times=1, status=None, retry_after=None, in_200=False)` queues them as faults (nothing is done by the answered
request). Which names are transient is the collection's decision (issue 25), recorded in docs/development.md.
"""

import json
import uuid

SYSTEM_MAILBOX = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"
WRAPPER_TYPE = "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"
ERROR_SHAPES = ("details", "internal_exception", "details_string", "adminapi_errors_200", "error_object_200")
FORBIDDEN_BODIES = ("json", "empty", "plain")

# name -> (default status, ExId, exception type, text); tenant_concurrency is plain text (ExoHelper matches its words).
TRANSIENT = {
    "server_busy": (400, "ExC2A5D1", "Microsoft.Exchange.Data.Storage.ServerBusyException",
                    "The server is overloaded and cannot process the request now. Try again later."),
    "maintenance": (400, "Ex3B1E77", "Microsoft.Exchange.Data.Storage.ServerInMMException",
                    "The mailbox server is in maintenance mode. Try again later."),
    "tenant_concurrency": (400, None, None, "You have reached the maximum number of concurrent requests per tenant. "
                                            "Please wait and try again."),
}


def _refusal(status, code, text):
    return status, {"error": {"code": code, "message": text,
                              "innererror": {"message": text, "type": WRAPPER_TYPE}}}


def check_anchor(tenant, request):
    """None when Exchange's routing can place the X-AnchorMailbox hint in this tenant, else (status, body)."""
    ex = tenant.exchange
    value = (request.headers.get("X-AnchorMailbox") or "").strip()
    if not ex.anchor_check or not value:
        return None  # no hint: routed by the tenant in the URL (ScubaGear sends none on InvokeCommand)
    kind, unused, address = value.partition(":")
    local, unused, where = address.rpartition("@")
    kind, local, where = kind.upper(), local.lower(), where.lower()
    if kind == "APP" and local == SYSTEM_MAILBOX.lower() and where == str(tenant.tenant_id).lower():
        return None
    if kind == "UPN" and where == ex.domain and (local == SYSTEM_MAILBOX.lower() or ex.find_mailbox(address)):
        return None
    return _refusal(400, "BadRequest", "The request could not be routed: X-AnchorMailbox '%s' does not name a "
                                       "mailbox of this organization." % value)


def render(ex, error):
    """(status, body) of a CmdletError in the tenant's error shape."""
    shape = ex.error_shape
    if shape not in ERROR_SHAPES:
        raise ValueError("error_shape must be one of %s" % ", ".join(ERROR_SHAPES))
    body = error.body()
    line = "%s|%s|%s" % (error.ex_id, error.exception_type, error.text)
    if shape == "details":
        return error.status, body
    if shape == "internal_exception":
        del body["error"]["details"]
        body["error"]["innererror"]["internalException"] = {"message": error.text, "type": error.exception_type}
        return error.status, body
    if shape == "details_string":
        body["error"]["details"] = json.dumps(body["error"]["details"])
        return error.status, body
    if shape == "adminapi_errors_200":
        return 200, {"value": [], "@adminapi.errors": [line]}
    return 200, body  # error_object_200


def forbidden(ex, status, body, headers):
    """The body (bytes) and headers a refusal is answered with under `forbidden_body`."""
    if ex.forbidden_body not in FORBIDDEN_BODIES:
        raise ValueError("forbidden_body must be one of %s" % ", ".join(FORBIDDEN_BODIES))
    data = json.dumps(body).encode("utf-8")
    if status != 403 or ex.forbidden_body == "json":
        return data, headers
    return (b"" if ex.forbidden_body == "empty" else data), dict(headers, **{"Content-Encoding": "gzip"})


def inject(tenant, name, match=None, times=1, status=None, retry_after=None, in_200=False):
    """Answer matching Exchange requests with the transient error `name` (see TRANSIENT), without doing the work."""
    default_status, ex_id, exception_type, text = TRANSIENT[name]
    headers = {"request-id": str(uuid.uuid4())}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if exception_type is None:
        answer = (status or default_status, dict(headers, **{"Content-Type": "text/plain"}), text.encode("utf-8"))
    else:
        line = "%s|%s|%s" % (ex_id, exception_type, text)
        body = ({"value": [], "@adminapi.errors": [line]} if in_200 else
                {"error": {"code": "BadRequest", "message": "Error executing cmdlet",
                           "details": [{"code": "Client", "target": "", "message": line}],
                           "innererror": {"message": "Error executing cmdlet", "type": WRAPPER_TYPE}}})
        answer = (200 if in_200 else status or default_status,
                  dict(headers, **{"Content-Type": "application/json; odata.metadata=minimal"}),
                  json.dumps(body).encode("utf-8"))
    return tenant.faults.add("exchange", match=match, kind="answer", times=times, answer=answer)
