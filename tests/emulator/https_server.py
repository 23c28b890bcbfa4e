"""The emulated tenant's HTTP front: one router, served over HTTPS (identity, Graph, Exchange) and over plain HTTP
on loopback (the managed identity endpoint, as on a real host).

Handlers take a Request and return a Response. The server logs every request in tenant.log (part, method, path,
status, cmdlet, write, client_id; a handler may set request.cmdlet / request.write / request.client_id) and
applies tenant.faults before or after the handler.
"""

import json as _json
import re
import socket
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from emulator.tokens import TokenInvalid

WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 412: "Precondition Failed",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


def part_of(path):
    if path.startswith(("/v1.0/", "/beta/")) or path in ("/v1.0", "/beta"):
        return "graph"
    if path.startswith("/adminapi/"):
        return "exchange"
    if path.startswith("/msi/"):
        return "msi"
    if path.startswith("/github-actions/"):
        return "github"
    return "identity"


class Request(object):
    def __init__(self, method, target, headers, body, tenant=None):
        parts = urlsplit(target)
        self.method = method
        self.target = target
        self.path = parts.path
        self.raw_query = parts.query
        self.query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = headers  # case-insensitive (email.message.Message)
        self.body = body or b""
        self.tenant = tenant
        self.match = {}
        self.part = part_of(self.path)
        self.cmdlet = None
        self.write = None
        self.client_id = None
        self._json = False

    @property
    def json(self):
        if self._json is False:
            try:
                self._json = _json.loads(self.body.decode("utf-8")) if self.body else None
            except (ValueError, UnicodeDecodeError):
                self._json = None
        return self._json

    @property
    def form(self):
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True).items()}

    def bearer(self, audience):
        """Verified claims of the Authorization bearer token for audience; TokenInvalid when missing or bad."""
        header = self.headers.get("Authorization") or ""
        if not header.lower().startswith("bearer "):
            raise TokenInvalid("no bearer token")
        claims = self.tenant.tokens.verify(header[7:].strip(), audience)
        self.client_id = claims.get("appid")
        return claims


class Response(object):
    def __init__(self, status=200, json=None, body=None, headers=None):
        self.status = int(status)
        self.headers = dict(headers or {})
        if json is not None:
            body = _json.dumps(json).encode("utf-8")
            self.headers.setdefault("Content-Type", "application/json; charset=utf-8")
        self.body = body.encode("utf-8") if isinstance(body, str) else (body or b"")


class Router(object):
    def __init__(self):
        self.routes = []

    def add(self, method, regex, handler, first=False):
        """Routes are tried in order; first=True puts this one before the catch-all routes of a part."""
        route = (method.upper(), re.compile(regex), handler)
        if first:
            self.routes.insert(0, route)
        else:
            self.routes.append(route)

    def resolve(self, method, path):
        """(handler, match groups) or (None, status 404 / 405)."""
        allowed = False
        for route_method, regex, handler in self.routes:
            found = regex.match(path)
            if found:
                if route_method == method:
                    return handler, found.groupdict()
                allowed = True
        return None, 405 if allowed else 404


def error_response(part, status, code, message, retry_after=None):
    """An error in the shape of the part that answers."""
    request_id = str(uuid.uuid4())
    headers = {"request-id": request_id, "client-request-id": request_id}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if part == "identity":
        aadsts, text = IDENTITY_FAULTS.get(status, (90033, message))
        stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        body = {"error": "temporarily_unavailable" if status >= 429 else "invalid_request",
                "error_description": "AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s" % (
                    aadsts, text, request_id, request_id, stamp),
                "error_codes": [aadsts], "trace_id": request_id, "correlation_id": request_id, "timestamp": stamp}
    elif part == "exchange":
        body = {"error": {"code": code, "message": message,
                          "innererror": {"message": message,
                                         "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"}}}
    else:
        body = {"error": {"code": code, "message": message,
                          "innerError": {"date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
                                         "request-id": request_id, "client-request-id": request_id}}}
    return Response(status, json=body, headers=headers)


IDENTITY_FAULTS = {429: (90055, "TenantThrottlingError - There are too many incoming requests. Retry after the time "
                                "in Retry-After."),
                   503: (90033, "A transient error has occurred. Please try again."),
                   500: (90033, "A transient error has occurred. Please try again.")}
FAULT_CODES = {429: ("TooManyRequests", "Too many requests. Retry after the time in Retry-After."),
               503: ("ServiceUnavailable", "The service is temporarily unavailable. Retry later."),
               500: ("InternalServerError", "An internal server error occurred."),
               502: ("BadGateway", "Bad gateway."), 504: ("GatewayTimeout", "The gateway timed out.")}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()  # in this worker thread, never in the accepting one
            except (OSError, ssl.SSLError):
                self.handshake_failed = True
        self.request.settimeout(120)
        super().setup()

    def handle(self):
        if getattr(self, "handshake_failed", False):
            self.close_connection = True
            return
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, socket.timeout):
            self.close_connection = True

    def log_message(self, fmt, *args):  # the tenant log replaces the access log
        pass

    def _serve(self):
        front = self.server.front
        tenant = front.tenant
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            return self._send(Response(400, json={"error": "bad_request", "error_description": "unreadable body"}),
                              Request(self.command, self.path, self.headers, b"", tenant), tenant)
        request = Request(self.command, self.path, self.headers, body, tenant)
        if request.part == "exchange":
            payload = request.json if isinstance(request.json, dict) else {}
            request.cmdlet = ((payload.get("CmdletInput") or {}).get("CmdletName")
                              if isinstance(payload.get("CmdletInput"), dict) else None)
        if front.plain and request.part != "msi":
            return self._send(Response(404, json={"error": "not_found"}), request, tenant)
        tenant.log.begin(part=request.part, method=request.method, path=request.path, cmdlet=request.cmdlet)
        fault = tenant.faults.take(request.part, "%s %s" % (request.method, request.target), request.cmdlet)
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "drop":
            tenant.log.end(status=None, fault="drop", write=False)
            self.close_connection = True
            return
        if fault is not None and fault.kind == "status":
            code, message = FAULT_CODES.get(fault.status, ("Error", "Injected failure."))
            response = error_response(request.part, fault.status, code, message, fault.retry_after)
            return self._send(response, request, tenant, fault="status")
        if fault is not None and fault.kind == "answer":
            status, headers, body = fault.answer
            return self._send(Response(status, body=body, headers=headers), request, tenant, fault="answer")
        retry_after = tenant.throttle.admit(request.part)
        if retry_after is not None:
            code, message = FAULT_CODES[429]
            return self._send(error_response(request.part, 429, code, message, retry_after), request, tenant,
                              fault="throttled")
        try:
            response = self._answer(front, request)
        finally:
            tenant.throttle.done(request.part)
        if fault is not None and fault.kind == "drop_after_commit":
            self._log(request, tenant, response, fault="drop_after_commit")
            self.close_connection = True
            return
        return self._send(response, request, tenant, fault=fault.kind if fault else None)

    @staticmethod
    def _answer(front, request):
        handler, found = front.router.resolve(request.method, request.path)
        if handler is None:
            response = error_response(request.part, found, "NotFound" if found == 404 else "MethodNotAllowed",
                                      "No route for %s %s." % (request.method, request.path))
        else:
            request.match = found
            try:
                response = handler(request)
            except Exception as error:  # an emulator bug: answer 500 with the reason, keep serving
                response = error_response(request.part, 500, "EmulatorError", "%s: %s" % (
                    error.__class__.__name__, error))
        return response

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _log(self, request, tenant, response, fault=None):
        write = request.write
        if write is None:
            write = request.part in ("graph", "exchange") and request.method in WRITE_METHODS \
                and response.status < 400
        entry = dict(status=response.status, write=bool(write), client_id=request.client_id)
        if request.cmdlet:
            entry["cmdlet"] = request.cmdlet
        if fault:
            entry["fault"] = fault
        tenant.log.end(**entry)

    def _send(self, response, request, tenant, fault=None):
        self._log(request, tenant, response, fault)
        lines = ["HTTP/1.1 %d %s" % (response.status, REASONS.get(response.status, "Status")),
                 "Date: %s" % self.date_time_string(), "Content-Length: %d" % len(response.body)]
        lines += ["%s: %s" % item for item in response.headers.items()]
        if self.close_connection or (self.headers.get("Connection") or "").lower() == "close":
            lines.append("Connection: close")
            self.close_connection = True
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address):
        # A client that hangs up or fails the TLS handshake is not an emulator error worth a traceback.
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, socket.timeout, OSError)):
            super().handle_error(request, client_address)


class HttpFront(object):
    """One listener (HTTPS when tls_context is given, else plain HTTP restricted to the msi part)."""

    def __init__(self, emulator, router, tls_context=None, host="127.0.0.1", port=0):
        self.emulator, self.router, self.plain = emulator, router, tls_context is None
        self.server = _Server((host, port), _Handler)
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True,
                                                         do_handshake_on_connect=False)
        self.server.front = self
        self.host, self.port = self.server.server_address[:2]
        self._thread = None

    @property
    def tenant(self):
        return self.emulator.tenant

    def start(self):
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="emulator-http-%d" % self.port, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(5)
            self._thread = None
        self.server.server_close()
