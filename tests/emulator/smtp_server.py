"""The emulated Exchange Online SMTP client-submission endpoint (smtp.office365.com:587), on aiosmtpd.

`start(emulator, **settings)` -> EmulatedSmtp with `host`, `port` (STARTTLS), `tls_port` (implicit TLS, which
Exchange Online does not offer; there for `secure: always` tests), `stop()`, `messages` (StoredMessage: raw
bytes, mail_from, rcpt_tos, app_id, mailbox, message_id), `settings` (SmtpSettings, changeable while running)
and `faults` (SMTP fault queue, see SmtpFaults).

What it checks, like Exchange does (reply texts are the ones Exchange Online sends, as seen in public reports):
- STARTTLS required: MAIL before authentication -> `530 5.7.57 Client not authenticated to send mail.`;
  AUTH is advertised only after TLS and refused before it with `504 5.7.4 Unrecognized authentication type`.
- AUTH XOAUTH2 only. AUTH LOGIN / PLAIN (Basic auth) are answered `550 5.7.30 Basic authentication is not
  supported for Client Submission.` -- the answer after Basic auth for SMTP AUTH is retired (our chosen default,
  settings.basic_auth="retired"); settings.basic_auth="disabled" gives the earlier tenant-switch answer
  `535 5.7.139 Authentication unsuccessful, basic authentication is disabled.`; settings.basic_auth="accept"
  (benchmark mode for community.general.mail) accepts any login whose password is settings.plain_password.
- The token: RS256 signature by the tenant, aud https://outlook.office365.com, tid, expiry (an invalid token
  -> `535 5.7.3 Authentication unsuccessful`; fewer than settings.expiry_margin seconds left ->
  `501 5.5.127 Invalid XOAUTH2 auth data - Token will expire soon`), then `tenant.exchange.authorize_smtp`.
- From header or envelope sender other than the mailbox without SendAs -> at end of data
  `550 5.7.60 SMTP; Client does not have permissions to send as this sender`.
- Quotas on demand: settings.rate_per_minute and settings.recipients_per_day ->
  `554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; ...`; settings.max_connections
  (3 in Exchange) -> `432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending
  for more information.` (Exchange Online answers 432, not 421, for this; seen in client reports).
- A session whose token expired after AUTH is closed at the next MAIL with `421 4.7.0` (emulator rule: it
  forces clients to renew during long runs; Exchange's exact behaviour is not documented).
- Refused recipients on demand (settings.refuse_recipients) -> `550 5.1.10 RESOLVER.ADR.RecipientNotFound`.
- The AUTH line is held to SMTP's 512 octets like a strict server (Dovecot) holds it: a token on the AUTH line
  (`AUTH XOAUTH2 <base64>`, 1-4 KB) -> `500 5.5.2 Line too long`; the response after `334` may be long (RFC 4954).
  Exchange Online accepts the long line today (nothing promises it): settings.auth_line_limit=None does too.
- SMTPUTF8 (RFC 6531) and 8BITMIME are offered after TLS, as Exchange Online offers them (Microsoft announced
  email address internationalization for Exchange Online; docs/development.md lists the SMTP submission side as an
  assumption); settings.smtputf8=False is a server without SMTPUTF8.
- settings.record_wire=True keeps what each session sent, byte for byte after TLS: `wire_lines(session_id)`.
- Counters since the last reset: `connections` (TCP connections accepted), `data_ends` (messages whose final dot
  arrived, stored or refused: 0 proves no data was committed).
- `stop()` closes the listeners and every open session (the endpoint is down); `start(port=N)` listens again on
  the same port (a restart: settings, faults and messages stay).
Each command is logged to the tenant's request log with part "smtp", the verb and the status of its last reply
(a command cut off by the client's leaving too: DATA 354 means the data never ended).
"""

import asyncio
import contextlib
import base64
import binascii
import email
import email.parser
import email.policy
import email.utils
import logging
import re
import threading
import time
from collections import defaultdict, deque

from aiosmtpd.smtp import SMTP, AuthResult

from emulator import clouds


class _TenantApi(object):
    """The few tenant / emulator calls this endpoint makes, in one place (the emulator core owns them)."""

    @staticmethod
    def server_tls_context(emulator):
        import ssl
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # The national clouds' SMTP hosts too, for tests that resolve them to 127.0.0.1 (emulator/clouds.py).
        cert = emulator.ca.issue_cert("127.0.0.1", "localhost", *clouds.host_names())
        cert.configure_cert(context)
        return context

    @staticmethod
    def verify_token(tenant, token, audience):
        return tenant.tokens.verify(token, audience)

    @staticmethod
    def ca_path(emulator):
        return emulator.ca_path

    @staticmethod
    def tenant_id(tenant):
        return tenant.tenant_id

    @staticmethod
    def log(tenant, **entry):
        tenant.log.add(**entry)

    @staticmethod
    def take_fault(tenant, verb):
        faults = getattr(tenant, "faults", None)
        return faults.take("smtp", line=verb, name=verb) if faults is not None else None

    @staticmethod
    def issue_token(tenant, app_id, roles, lifetime, audience):
        return tenant.tokens.issue(app_id=app_id, roles=list(roles), lifetime=lifetime, audience=audience)

    @staticmethod
    def allow(tenant, app_id, mailbox, model):
        tenant.exchange.allow_smtp(app_id, mailbox, model=model)

    @staticmethod
    def allow_send_as(tenant, app_id, address):
        tenant.exchange.allow_send_as(app_id, address)


try:
    from emulator.tokens import TokenInvalid
except ImportError:  # the emulator core is not there yet
    class TokenInvalid(Exception):
        pass

tenant_api = _TenantApi
tenant_api.TokenInvalid = TokenInvalid

# aiosmtpd logs a deprecation notice on every successful AUTH (it sets Session.login_data itself) and every
# garbage line (community.general.mail tries TLS on the STARTTLS port first): noise on the tests' stderr.
logging.getLogger("mail.log").setLevel(logging.ERROR)

_HEADER_PARSER = email.parser.BytesParser(policy=email.policy.compat32)

EXCHANGE_AUDIENCE = "https://outlook.office365.com"
HOSTNAME = "EM1PR01MB0001.emulated.prod.outlook.com"
TOKEN_LINE_LIMIT = 16384  # XOAUTH2 initial responses carry 2-5 KB tokens (base64: up to ~7 KB)

R_GREETING = "Microsoft ESMTP MAIL Service ready"
R_NOT_AUTH = "530 5.7.57 Client not authenticated to send mail. [%s]" % HOSTNAME
R_AUTH_BEFORE_TLS = "504 5.7.4 Unrecognized authentication type [%s]" % HOSTNAME
R_AUTH_OK = "235 2.7.0 Authentication successful"
R_AUTH_FAILED = "535 5.7.3 Authentication unsuccessful [%s]" % HOSTNAME
R_XOAUTH2_BAD = "501 5.5.124 Invalid XOAUTH2 auth data"
R_EXPIRE_SOON = "501 5.5.127 Invalid XOAUTH2 auth data - Token will expire soon"
R_BASIC_RETIRED = "550 5.7.30 Basic authentication is not supported for Client Submission."
R_BASIC_DISABLED = "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [%s]" % HOSTNAME
R_SEND_AS = "550 5.7.60 SMTP; Client does not have permissions to send as this sender [%s]" % HOSTNAME
R_QUOTA = ("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message "
           "due to a permanent exception with message Cannot submit message. [%s]" % HOSTNAME)
R_CONCURRENT = ("432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more "
                "information. [Hostname=%s]" % HOSTNAME)
R_BUSY = "451 4.7.500 Server busy. Please try again later from [127.0.0.1]. (S77714) [%s]" % HOSTNAME
R_CLOSING = "421 4.3.2 Service not available, closing transmission channel"
R_TOKEN_EXPIRED = "421 4.7.0 Temporary server error. The session's access token expired; reconnect. [%s]" % HOSTNAME
R_NO_RECIPIENT = ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient %s not found by SMTP address lookup [%s]")
R_QUEUED = "250 2.0.0 OK <%s> [Hostname=%s]"
R_LINE_TOO_LONG = "500 5.5.2 Line too long"  # Dovecot's words; Exchange's are not known


class SmtpSettings(object):
    """Behaviour switches; tests change them on a running server."""

    def __init__(self, **overrides):
        self.basic_auth = "retired"          # retired | disabled | accept (benchmark mode)
        self.plain_password = None           # the password accepted in benchmark mode
        self.expiry_margin = 600             # seconds of validity a token needs at AUTH
        self.rate_per_minute = None          # Exchange: 30 messages / minute / mailbox
        self.recipients_per_day = None       # Exchange: 10,000 recipients / day / mailbox
        self.max_connections = None          # Exchange: 3 concurrent connections / mailbox
        self.refuse_recipients = set()       # addresses answered 550 5.1.10
        self.data_size_limit = 36700160      # 35 MB, Exchange Online's default
        self.auth_line_limit = 512           # octets of an AUTH line with CRLF (RFC 5321); None: no limit
        self.record_wire = False             # keep each session's bytes (wire_lines)
        self.smtputf8 = True                 # SMTPUTF8 offered (Exchange Online supports EAI); False: a server without
        self.log_commands = True
        for key, value in overrides.items():
            if not hasattr(self, key):
                raise TypeError("unknown SMTP setting %r" % key)
            setattr(self, key, value)


class SmtpFaults(object):
    """Injected SMTP failures: add(verb, kind, times=1, **kw) -> the fault (a dict; "hits" counts its uses).

    verb: MAIL, RCPT, DATA (the DATA command), DATA_END (after the final dot), AUTH, EHLO, CONNECT.
    kind: "busy" (451 4.7.500), "close" (421 then disconnect), "drop" (close without a word),
    "drop_in_data" (DATA only: read part of the message, then reset the connection),
    "drop_after_commit" (DATA_END only: store the message, then close without answering),
    "reply" (answer Exchange's text for kw status: 451, 421 (then close), 432, 535, 554; or kw text, a whole reply
    such as "452 4.5.3 Too many recipients", for an answer this module does not model: the test names its source),
    "delay" (kw seconds, then the command is handled as usual).
    kw skip=N lets the first N matching commands past this fault (a fault on the third MAIL: skip=2), on to
    the faults queued after it; times=None: forever. One fault applies per command, the first queued.
    The tenant's own `tenant.faults.add("smtp", match=VERB, kind=status|drop|drop_after_commit|delay, ...)`
    works too (status 451/421/432/535/554 give Exchange's texts).
    """

    KINDS = ("busy", "close", "drop", "drop_in_data", "drop_after_commit", "reply", "delay")

    def __init__(self):
        self._lock = threading.Lock()
        self._queue = []

    def add(self, verb, kind, times=1, **kw):
        if kind not in self.KINDS:
            raise ValueError("unknown SMTP fault kind %r" % kind)
        text = kw.get("text")
        if text is not None and (kind != "reply" or not str(text)[:3].isdigit() or str(text)[3:4] not in (" ", "")):
            raise ValueError("text= is a whole SMTP reply (\"452 4.5.3 ...\") of a 'reply' fault, got %r" % (text,))
        fault = {"verb": verb.upper(), "kind": kind, "times": times, "kw": kw, "hits": 0}
        with self._lock:
            self._queue.append(fault)
        return fault

    def take(self, verb):
        with self._lock:
            for fault in self._queue:
                if fault["verb"] == verb and (fault["times"] is None or fault["times"] > 0):
                    if fault["kw"].get("skip", 0) > 0:
                        fault["kw"]["skip"] -= 1
                        continue  # let through by this fault, not by the ones queued after it
                    if fault["times"] is not None:
                        fault["times"] -= 1
                    fault["hits"] += 1
                    return fault
        return None

    def clear(self):
        with self._lock:
            self._queue = []


_STATUS_REPLIES = {451: R_BUSY, 421: R_CLOSING, 432: R_CONCURRENT, 535: R_AUTH_FAILED, 554: R_QUOTA}


def fault_reply(fault):
    if fault["kind"] == "busy":
        return R_BUSY
    if fault["kind"] == "close":
        return R_CLOSING
    if fault["kw"].get("text"):
        return fault["kw"]["text"]
    status = fault["kw"].get("status", 451)
    return _STATUS_REPLIES.get(status, "%d 4.3.2 Injected failure" % status if status < 500 else
                               "%d 5.3.0 Injected failure" % status)


def from_tenant_fault(fault):
    """A tenant.faults entry (part "smtp") in this endpoint's terms: status -> that reply (421 also closes)."""
    if fault.kind == "status":
        return {"verb": None, "kind": "reply", "times": 0, "kw": {"status": fault.status, "close": fault.status == 421}}
    return {"verb": None, "kind": fault.kind, "times": 0, "kw": {"seconds": fault.seconds}}


class StoredMessage(object):
    __slots__ = ("raw", "mail_from", "rcpt_tos", "app_id", "mailbox", "message_id", "time", "session_id")

    def __init__(self, raw, mail_from, rcpt_tos, app_id, mailbox, message_id, session_id):
        self.raw = raw
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.app_id = app_id
        self.mailbox = mailbox
        self.message_id = message_id
        self.time = time.time()
        self.session_id = session_id

    def parsed(self):
        return email.message_from_bytes(self.raw, policy=email.policy.default)


class _Handler(object):
    """aiosmtpd hooks: the Exchange rules. One instance per server, shared by sessions."""

    def __init__(self, server):
        self.server = server

    async def handle_EHLO(self, smtp, session, envelope, hostname, responses):
        session.host_name = hostname
        out = ["250-%s Hello [%s]" % (HOSTNAME, session.peer[0] if session.peer else "127.0.0.1")]
        for line in responses[1:]:
            if line.startswith("250-AUTH"):
                if smtp.tls_active:
                    mechs = ["LOGIN", "XOAUTH2"] + (["PLAIN"] if self.server.settings.basic_auth == "accept" else [])
                    out.append("250-AUTH " + " ".join(mechs))
                continue
            if line.startswith("250 HELP"):
                continue
            out.append(line)
        out.extend(["250-PIPELINING", "250-DSN", "250-ENHANCEDSTATUSCODES", "250-8BITMIME"])
        out = [line for i, line in enumerate(out) if line not in out[:i]]
        out[-1] = "250 " + out[-1][4:]
        return out

    async def auth_XOAUTH2(self, smtp, args):
        if len(args) > 1:
            blob = args[1]
        else:
            blob = await smtp.challenge_auth("", encode_to_b64=False)
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
            blob = blob.decode("ascii", "replace")
            blob = base64.b64encode(blob.encode()).decode() if "\x01" in blob else blob
        try:
            decoded = base64.b64decode(blob, validate=True).decode("utf-8")
            fields = dict(part.split("=", 1) for part in decoded.split("\x01") if part)
            mailbox = fields["user"]
            scheme, space, token = fields["auth"].partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise ValueError("no bearer token")
        except (binascii.Error, ValueError, KeyError, UnicodeDecodeError):
            return AuthResult(success=False, handled=False, message=R_XOAUTH2_BAD)
        verdict, claims = self.server.check_token(token, mailbox)
        if verdict is not None:
            return AuthResult(success=False, handled=False, message=verdict)
        smtp.auth_claims = claims
        smtp.auth_mailbox = mailbox
        self.server.session_authenticated(smtp, mailbox)
        return AuthResult(success=True, auth_data=mailbox, message=R_AUTH_OK)

    async def handle_MAIL(self, smtp, session, envelope, address, mail_options):
        if not session.authenticated:
            return R_NOT_AUTH
        claims = smtp.auth_claims
        if claims is not None and claims.get("exp", 0) <= time.time():
            smtp.close_after(R_TOKEN_EXPIRED)
            return R_TOKEN_EXPIRED
        if not self.server.connection_allowed(smtp):
            return R_CONCURRENT
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        if address.lower() in {a.lower() for a in self.server.settings.refuse_recipients}:
            return R_NO_RECIPIENT % (address, HOSTNAME)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_QUIT(self, smtp, session, envelope):
        return "221 2.0.0 Service closing transmission channel"

    async def handle_DATA(self, smtp, session, envelope):
        self.server.data_ended()
        fault = self.server.take_fault("DATA_END")
        if fault is not None and fault["kind"] == "delay":
            await asyncio.sleep(fault["kw"].get("seconds", 0))
        return self.server.accept(smtp, envelope, fault)


class ExchangeSMTP(SMTP):
    """aiosmtpd's SMTP with Exchange's limits, texts and request logging."""

    line_length_limit = TOKEN_LINE_LIMIT  # the stream limit; data lines are checked against 1001 below
    command_size_limit = TOKEN_LINE_LIMIT
    command_size_limits = defaultdict(lambda: TOKEN_LINE_LIMIT)

    def __init__(self, server, *args, **kwargs):
        self.emulator_server = server
        self.auth_claims = None
        self.auth_mailbox = None
        self.session_id = server.next_session_id()
        self._last_status = None
        self._pending_close = None
        self._swallow_reply = False
        super().__init__(*args, **kwargs)
        self.line_length_limit = 1001  # RFC 5321 limit for message lines (instance value; the stream keeps 16 KB)
        for verb, method in list(self._smtp_methods.items()):
            self._smtp_methods[verb] = self._logged(verb, method)

    @property
    def tls_active(self):
        return self._tls_protocol is not None

    def close_after(self, status):
        self._pending_close = status

    def _logged(self, verb, method):
        server = self.emulator_server

        async def wrapper(arg):
            self._last_status = None
            fault = server.take_fault(verb) if verb != "QUIT" else None
            try:
                if fault is not None and fault["kind"] == "delay":
                    await asyncio.sleep(fault["kw"].get("seconds", 0))
                    fault = None
                if fault is not None:
                    if fault["kind"] == "drop_in_data" and verb == "DATA":
                        await self._drop_in_data()
                    else:
                        await self._apply_fault(fault)
                    server.log_command(self, verb, self._last_status or 0)
                    return
                await method(arg)
            except asyncio.CancelledError:
                # The client went away in the middle of the command: logged with the last reply it got (DATA: 354
                # when it left without sending the data; 0 when it got none).
                server.log_command(self, verb, self._last_status or 0)
                raise
            server.log_command(self, verb, self._last_status or 0)
            if self._pending_close and self.transport is not None:
                self._pending_close = None
                self.transport.close()
        return wrapper

    async def _apply_fault(self, fault):
        kind = fault["kind"]
        if kind in ("drop", "drop_after_commit"):  # drop_after_commit outside DATA_END: nothing to commit
            self.transport.abort()
            return
        await self.push(fault_reply(fault))
        if kind == "close" or fault["kw"].get("close"):
            self.transport.close()

    async def _drop_in_data(self):
        """Answer 354, read part of the message, then reset: the message was not accepted."""
        await self.push("354 Start mail input; end with <CRLF>.<CRLF>")
        received = 0
        while received < 65536:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                break
            received += len(line)
            if line == b".\r\n":
                break
        self.transport.abort()

    async def push(self, status):
        if self._swallow_reply:
            # drop_after_commit: the message is stored, the client never hears about it.
            self._swallow_reply = False
            self.transport.abort()
            return
        text = status.decode("ascii", "replace") if isinstance(status, bytes) else status
        head = text[:3]
        if head.isdigit():
            self._last_status = int(head)  # the last reply of a command is the one that counts (DATA: 354, 250)
        await super().push(status)

    async def smtp_AUTH(self, arg):
        if not self.tls_active:
            await self.push(R_AUTH_BEFORE_TLS)
            return
        limit = self.emulator_server.settings.auth_line_limit
        if limit and len("AUTH %s\r\n" % (arg or "")) > limit:
            await self.push(R_LINE_TOO_LONG)
            return
        await super().smtp_AUTH(arg)

    async def smtp_DATA(self, arg):
        """aiosmtpd's DATA with its checks (RFC 5321's 1000-octet lines, the size limit), reading the message in
        blocks: aiosmtpd keeps one object a line, and Exchange takes 35 MB messages of empty lines too."""
        if not self.session.authenticated:
            await self.push(R_NOT_AUTH)
            return
        if not self.envelope.rcpt_tos or arg:
            await self.push("503 5.5.1 Error: need RCPT command" if arg is None else "501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = await self._read_dot_terminated()
        if len(data) > self.data_size_limit:
            await self.push("552 Error: Too much mail data")
        elif re.search(rb"[^\n]{%d}" % self.line_length_limit, data):
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
        else:
            if data.startswith(b"."):
                del data[0]
            self.envelope.original_content = self.envelope.content = bytes(data.replace(b"\r\n..", b"\r\n."))
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()
            await self.push(status)
            return
        self._set_post_data_state()

    async def _read_dot_terminated(self):
        """The bytes up to the line that is a lone dot (kept dot-stuffed), in blocks of the stream's limit."""
        data = bytearray()
        while True:
            try:
                block = await self._reader.readuntil(b".\r\n")
            except asyncio.LimitOverrunError as exc:
                data += await self._reader.readexactly(exc.consumed)
                continue
            if len(data) + len(block) == 3 or (bytes(data[-2:]) + block)[-5:-3] == b"\r\n":
                data += block[:-3]
                return data
            data += block

    def data_received(self, data):
        # After STARTTLS the TLS layer hands the decrypted bytes to this same method.
        if self.emulator_server.settings.record_wire:
            self.emulator_server.wire[self.session_id].extend(data)
        super().data_received(data)

    def connection_made(self, transport):
        if self.transport is None:  # not the second call STARTTLS makes with the TLS transport
            self.emulator_server.session_opened(self)
        super().connection_made(transport)

    def connection_lost(self, error):
        self.emulator_server.session_closed(self)
        super().connection_lost(error)


class EmulatedSmtp(object):
    """The running endpoint. See the module docstring."""

    def __init__(self, emulator, settings=None):
        self.emulator = emulator
        self.settings = settings or SmtpSettings()
        self.faults = SmtpFaults()
        self.messages = []
        self.connections = 0                   # TCP connections accepted since the last reset
        self.data_ends = 0                     # messages whose final dot arrived since the last reset
        self.wire = defaultdict(bytearray)     # session id -> bytes received (settings.record_wire)
        self.host = "127.0.0.1"
        self.port = None
        self.tls_port = None
        self._lock = threading.Lock()
        self._session_ids = 0
        self._active = defaultdict(list)       # mailbox -> sessions in authentication order
        self._open = set()                     # every connected session (stop() closes them)
        self._submissions = defaultdict(deque)  # mailbox -> submission times (rate quota)
        self._recipients = defaultdict(deque)   # mailbox -> (time, count) (daily quota)
        self._loop = None
        self._thread = None
        self._servers = []
        self._server_ctx = tenant_api.server_tls_context(emulator)

    @property
    def tenant(self):
        # Read each time: the test fixtures may give the emulator a fresh tenant per test.
        return self.emulator.tenant

    # -- lifecycle ------------------------------------------------------------------------------------------
    def _factory(self):
        return ExchangeSMTP(self, _Handler(self), hostname=HOSTNAME, ident=R_GREETING, tls_context=self._server_ctx,
                            require_starttls=False, auth_require_tls=True, auth_required=False,
                            data_size_limit=self.settings.data_size_limit, enable_SMTPUTF8=self.settings.smtputf8,
                            authenticator=self._basic_authenticator, loop=self._loop, timeout=300)

    def _implicit_factory(self):
        smtp = self._factory()
        smtp.tls_context = None  # already TLS: no STARTTLS offered
        smtp._tls_protocol = True  # AUTH is allowed on an implicit TLS connection
        return smtp

    def start(self, port=0, tls_port=0):
        """Listen (port 0: a free one); after stop(), start(port=old_port) is a restart on the same address."""
        ready = threading.Event()
        errors = []

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                plain = self._loop.run_until_complete(self._loop.create_server(self._factory, self.host, port))
                implicit = self._loop.run_until_complete(self._loop.create_server(
                    self._implicit_factory, self.host, tls_port, ssl=self._server_ctx))
            except Exception as exc:  # reported to the caller of start()
                errors.append(exc)
                ready.set()
                return
            self._servers = [plain, implicit]
            self.port = plain.sockets[0].getsockname()[1]
            self.tls_port = implicit.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            for server in self._servers:
                server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

        self._thread = threading.Thread(target=run, name="emulated-smtp", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self):
        """The endpoint goes down: listeners closed and every open session reset, as a crashed server's are."""
        if self._loop is not None and self._thread is not None:
            async def down():
                for server in self._servers:
                    server.close()
                with self._lock:
                    sessions = list(self._open)
                for smtp in sessions:
                    transport = smtp.transport
                    if transport is None or transport.is_closing():
                        continue
                    try:
                        transport.abort()
                    except AttributeError:
                        # A TLS session its client just closed (QUIT): asyncio has torn down the TLS layer under
                        # the transport already (Python 3.11 raises here); nothing is left to reset.
                        pass
                await asyncio.sleep(0)  # connection_lost runs

            asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def reset(self):
        """Forget messages, quotas and faults (a fresh tenant per test)."""
        self.messages = []
        self.connections = self.data_ends = 0
        self.wire.clear()
        self.faults.clear()
        self.settings = SmtpSettings()
        with self._lock:
            self._submissions.clear()
            self._recipients.clear()

    def take_fault(self, verb):
        """This endpoint's own fault queue first, then the tenant's (part "smtp", matched on the verb)."""
        fault = self.faults.take(verb)
        if fault is None:
            tenant_fault = tenant_api.take_fault(self.tenant, verb)
            if tenant_fault is not None:
                fault = from_tenant_fault(tenant_fault)
        return fault

    def wire_lines(self, session_id=None):
        """The lines a session sent (the last one by default), as text without CRLF."""
        session_id = session_id or max(self.wire)
        return bytes(self.wire[session_id]).decode("utf-8", "replace").split("\r\n")[:-1]

    # -- checks -----------------------------------------------------------------------------------------------
    def next_session_id(self):
        with self._lock:
            self._session_ids += 1
            return self._session_ids

    def check_token(self, token, mailbox):
        """(None, claims) when the token may send as mailbox, else (reply, claims)."""
        tenant = self.tenant
        try:
            claims = tenant_api.verify_token(tenant, token, clouds.audience(tenant, "exchange"))
        except tenant_api.TokenInvalid:
            return R_AUTH_FAILED, None
        if claims.get("tid") != tenant_api.tenant_id(tenant):
            return R_AUTH_FAILED, claims
        if claims.get("exp", 0) - time.time() < self.settings.expiry_margin:
            return R_EXPIRE_SOON, claims
        verdict = tenant.exchange.authorize_smtp(claims, mailbox)
        if verdict:
            code, enhanced, text = verdict
            return "%s %s %s" % (code, enhanced, text), claims
        return None, claims

    def _basic_authenticator(self, smtp, session, envelope, mechanism, auth_data):
        settings = self.settings
        if settings.basic_auth == "accept" and settings.plain_password is not None:
            login = auth_data.login.decode("utf-8", "replace")
            if auth_data.password.decode("utf-8", "replace") == settings.plain_password:
                smtp.auth_claims = None
                smtp.auth_mailbox = login
                self.session_authenticated(smtp, login)
                return AuthResult(success=True, auth_data=login, message=R_AUTH_OK)
            return AuthResult(success=False, handled=False, message=R_AUTH_FAILED)
        message = R_BASIC_DISABLED if settings.basic_auth == "disabled" else R_BASIC_RETIRED
        return AuthResult(success=False, handled=False, message=message)

    def session_opened(self, smtp):
        with self._lock:
            self.connections += 1
            self._open.add(smtp)

    def data_ended(self):
        with self._lock:
            self.data_ends += 1

    def session_authenticated(self, smtp, mailbox):
        with self._lock:
            self._active[mailbox.lower()].append(smtp)

    def session_closed(self, smtp):
        with self._lock:
            self._open.discard(smtp)
        if smtp.auth_mailbox:
            with self._lock:
                sessions = self._active.get(smtp.auth_mailbox.lower(), [])
                if smtp in sessions:
                    sessions.remove(smtp)

    def connection_allowed(self, smtp):
        limit = self.settings.max_connections
        if not limit:
            return True
        with self._lock:
            sessions = self._active.get(smtp.auth_mailbox.lower(), [])
            return smtp in sessions[:limit]

    def _over_quota(self, mailbox, recipients):
        now = time.time()
        key = mailbox.lower()
        with self._lock:
            rate = self.settings.rate_per_minute
            times = self._submissions[key]
            while times and now - times[0] >= 60:
                times.popleft()
            if rate and len(times) >= rate:
                return True
            per_day = self.settings.recipients_per_day
            sent = self._recipients[key]
            while sent and now - sent[0][0] >= 86400:
                sent.popleft()
            if per_day and sum(n for dummy, n in sent) + recipients > per_day:
                return True
            times.append(now)
            sent.append((now, recipients))
        return False

    def accept(self, smtp, envelope, fault=None):
        """End of data: SendAs, quotas, faults, then store."""
        raw = envelope.original_content or b""
        end = raw.find(b"\r\n\r\n")
        # Only From and Message-ID are needed: the header section alone (the parser splits what it gets in lines).
        parsed = _HEADER_PARSER.parsebytes(raw[:end + 2] if end >= 0 else raw, headersonly=True)
        mailbox = smtp.auth_mailbox or ""
        claims = smtp.auth_claims
        senders = {envelope.mail_from.lower()}
        from_header = email.utils.parseaddr(parsed.get("From", ""))[1]
        if from_header:
            senders.add(from_header.lower())
        for address in senders - {mailbox.lower()}:
            if claims is not None and not self.tenant.exchange.may_send_as(claims, mailbox, address):
                return R_SEND_AS
        if self._over_quota(mailbox, len(envelope.rcpt_tos)):
            return R_QUOTA
        message_id = (parsed.get("Message-ID") or "").strip()
        stored = StoredMessage(raw, envelope.mail_from, envelope.rcpt_tos, (claims or {}).get("appid"), mailbox,
                               message_id, smtp.session_id)
        if fault is not None and fault["kind"] != "delay":
            if fault["kind"] == "drop_after_commit":
                self.messages.append(stored)
                smtp._swallow_reply = True
                return R_QUEUED % (message_id.strip("<>") or "no-id", HOSTNAME)
            if fault["kind"] == "drop":
                smtp._swallow_reply = True
                return R_CLOSING
            if fault["kind"] == "close" or fault["kw"].get("close"):
                smtp.close_after(R_CLOSING)
            return fault_reply(fault)
        self.messages.append(stored)
        return R_QUEUED % (message_id.strip("<>") or "no-id", HOSTNAME)

    def log_command(self, smtp, verb, status):
        if not self.settings.log_commands:
            return
        claims = smtp.auth_claims or {}
        tenant_api.log(self.tenant, part="smtp", method="SMTP", path=verb, verb=verb, status=status,
                       write=(verb == "DATA" and status == 250), client_id=claims.get("appid"))

    @property
    def ca_path(self):
        """The CA bundle that verifies this endpoint's certificate (the emulator's CA)."""
        return tenant_api.ca_path(self.emulator)

    # -- helpers for tests: a sending app without going through Graph and the admin API ----------------------
    def app_token(self, app_id, roles=(), lifetime=3600, audience=EXCHANGE_AUDIENCE):
        """A token signed by the tenant, as the identity platform would issue it for the Exchange resource."""
        return tenant_api.issue_token(self.tenant, app_id, roles, lifetime, audience)

    def allow(self, app_id, mailbox, model="rbac"):
        """Let app_id send as mailbox (RBAC for Applications, or classic FullAccess)."""
        tenant_api.allow(self.tenant, app_id, mailbox, model)

    def allow_send_as(self, app_id, address):
        tenant_api.allow_send_as(self.tenant, app_id, address)


def start(emulator, **settings):
    """Start the endpoint for this emulator's tenant; settings: see SmtpSettings."""
    return EmulatedSmtp(emulator, SmtpSettings(**settings)).start()


@contextlib.contextmanager
def clean_endpoint(emulator, allow=()):
    """endpoint_for(emulator) with no messages, faults or changed settings; allow: (app_id, mailbox) pairs."""
    server = endpoint_for(emulator)
    server.reset()
    for app_id, mailbox in allow:
        server.allow(app_id, mailbox)
    try:
        yield server
    finally:
        server.reset()


def endpoint_for(emulator):
    """The emulator's SMTP endpoint: the one it started itself (emulator.smtp), else one started once here."""
    server = getattr(emulator, "smtp", None)
    if server is None:
        server = getattr(emulator, "_smtp_endpoint", None)
    if server is None:
        server = start(emulator)
        emulator._smtp_endpoint = server
    return server
