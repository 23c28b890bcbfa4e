# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One SMTP submission session with TLS and SASL XOAUTH2, for send_mail and the relay's proxy.

Plain Python (no Ansible import). The API, in the order a caller uses it:

    session = SmtpSession(host, port=587, secure="starttls", ca_path=None, timeout=30, ehlohost=None,
                          mailbox="app@contoso.com", token_source=callable)
    session.connect()             # TCP, greeting, EHLO, STARTTLS (certificate and host name verified), EHLO
    session.authenticate()        # AUTH XOAUTH2 with token_source() (an AccessToken or a str); never before TLS;
                                  # the response after `334` unless the whole AUTH line fits in 512 octets
                                  # (RFC 4954); an error challenge `334 <base64 JSON>` is answered with an empty
                                  # line and its status / scope named in the error;
                                  # after `501 5.5.127` the next call is token_source(fresh=True): bypass caches
    result = session.send(envelope_from, recipients, data)   # -> SendResult, per-recipient answers
    session.quit()                # polite QUIT; close() drops the socket without a word

`open()` is connect() + authenticate(); `ensure_open(fresh_for)` opens only when needed: when closed, or when the
token expires within `fresh_for` seconds (QUIT first), before Exchange starts answering `501 5.5.127`.

Bounded waits: `deadline` (a time.monotonic() value, None = none) makes every command wait at most `timeout` and
never past it; no command starts after it, and after the server's 354 the data goes out only while `timeout`
stays in reserve for the final reply, which is then awaited until the deadline. `abort()` (from another thread)
stops before the next command or before the end-of-data mark. Either raises Stopped, before anything was committed,
with the connection closed.

Every refusal raises SessionError (an SmtpError) with `smtp_code`, `enhanced_code`, `server_reply`, `stage`
(connect, starttls, auth, mail, rcpt, data), a diagnosis (cause and fix) and what to do next (`temporary`,
`reconnect`, `fresh_token`), all read by _smtp.diagnosis. A lost connection raises SmtpDisconnected; its
`committed` flag is True when the end-of-data mark had left this host, i.e. the server may have accepted the
message: callers must not resend it blindly (see _smtp.sender).

Secrets: the token and the base64 XOAUTH2 string are never logged; `transcript` (when enabled) is redacted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import re
import smtplib
import socket
import ssl
import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError, SmtpError, redact, tls_failure

SECURE_MODES = ("starttls", "always", "never")
_ENHANCED_RE = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")
COMMAND_LINE_LIMIT = 512  # RFC 5321 4.5.3.1.4: a command line, CRLF included


def xoauth2_string(mailbox, token):
    """The SASL XOAUTH2 initial response, before base64: user=<mailbox>^Aauth=Bearer <token>^A^A."""
    if not mailbox or "\x01" in mailbox or "\r" in mailbox or "\n" in mailbox:
        raise ConfigError("the mailbox must be one address without control characters", option="mailbox")
    if not token or any(c in token for c in "\x01\r\n "):
        raise ConfigError("the access token is empty or malformed", option="access_token")
    return "user=%s\x01auth=Bearer %s\x01\x01" % (mailbox, token)


def xoauth2_base64(mailbox, token):
    """What goes on the wire after `AUTH XOAUTH2 `."""
    return base64.b64encode(xoauth2_string(mailbox, token).encode("utf-8")).decode("ascii")


def split_reply(code, message):
    """(code, enhanced code or None, text) from smtplib's (int, bytes) reply."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message or "")
    text = " ".join(line.strip() for line in text.splitlines())
    match = _ENHANCED_RE.match(text)
    return code, (match.group(1) if match else None), text


class SessionError(SmtpError):
    """What a session raises: where (stage) and what a caller does next (_smtp.diagnosis decides for replies)."""

    def __init__(self, message, stage=None, diagnosis=None, **kwargs):
        super(SessionError, self).__init__(message, **kwargs)
        self.stage = stage
        self.diagnosis = diagnosis
        self.temporary = getattr(diagnosis, "temporary", False)
        self.reconnect = getattr(diagnosis, "reconnect", False)
        self.fresh_token = getattr(diagnosis, "fresh_token", False)


class SmtpDisconnected(SessionError):
    """The connection was lost. committed=True: the end-of-data mark was sent, acceptance is unknown."""

    def __init__(self, message, stage=None, committed=False, **kwargs):
        kwargs.setdefault("fix", "retry later; if it keeps happening check the network path to the SMTP host")
        super(SmtpDisconnected, self).__init__(message, stage=stage, **kwargs)
        self.committed = committed
        self.temporary = self.reconnect = True


class Stopped(Exception):
    """The caller's deadline left no time for `step`, or it aborted (reason "deadline" / "aborted"); nothing was
    committed and the connection is closed."""

    def __init__(self, reason, step):
        super(Stopped, self).__init__("%s before %s" % (reason, step))
        self.reason = reason
        self.step = step


class SendResult(object):
    """Outcome of one message: accepted / refused recipients and the final reply to the data; `later`: the refused
    recipients whose refusal is temporary (_smtp.diagnosis), worth another try."""

    __slots__ = ("message_id", "accepted", "refused", "code", "reply", "status", "later")

    def __init__(self, message_id=None, accepted=None, refused=None, code=None, reply=None, status=None, later=None):
        self.message_id = message_id
        self.accepted = accepted or []
        self.refused = refused or {}
        self.code = code
        self.reply = reply
        self.status = status
        self.later = later or []

    def as_dict(self):
        return {
            "message_id": self.message_id,
            "accepted": list(self.accepted),
            "refused": dict((addr, {"code": c, "reply": r}) for addr, (c, r) in self.refused.items()),
            "code": self.code,
            "reply": self.reply,
            "status": self.status,
        }


def error_challenge(message):
    """The JSON of a SASL error challenge (`334 <base64 JSON>`, e.g. {"status": "401", "scope": "mail"}) as a
    dict of short strings, or None. It is the server's words about the token, never the token itself."""
    text = message.decode("ascii", "replace") if isinstance(message, bytes) else str(message or "")
    try:
        decoded = json.loads(base64.b64decode(text.strip(), validate=True).decode("utf-8"))
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    if not isinstance(decoded, dict):
        return None
    return dict((str(k)[:40], str(v)[:200]) for k, v in decoded.items() if isinstance(v, (str, int, float)))


def smtp_error(stage, code, message, token=None, mailbox=None, address=None, challenge=None):
    """SessionError for a refused step, with the Microsoft-specific cause and fix (challenge: error_challenge();
    token: the one refused, whose claims name the likely cause)."""
    # The diagnosis table is read only when something failed: a task that sends pays nothing for it.
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.diagnosis import diagnose
    code, enhanced, text = split_reply(code, message)
    found = diagnose(code, text, claims=_claims(token), stage=stage, mailbox=mailbox, address=address,
                     challenge=challenge)
    return SessionError("%s refused at %s: %s %s. %s" % ("server", stage, code, text, found.cause),
                        smtp_code=code, enhanced_code=enhanced or found.code, server_reply="%s %s" % (code, text),
                        fix=found.fix, option=found.option, stage=stage, diagnosis=found)


def _claims(token):
    """The token's claims for a diagnosis only (no signature check); None when there is none to read."""
    if not token:
        return None
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.jwt_claims import ClaimsError, decode_claims
    try:
        return decode_claims(token)
    except ClaimsError:
        return None


class _RedactingSMTP(smtplib.SMTP):
    """smtplib with its debug output captured into a redacted transcript instead of stderr."""

    secrets = ()
    transcript = None

    def _print_debug(self, *args):
        if self.transcript is not None:
            self.transcript.append(redact(" ".join(str(a) for a in args), self.secrets))


class _RedactingSMTP_SSL(smtplib.SMTP_SSL):
    secrets = ()
    transcript = None
    _print_debug = _RedactingSMTP._print_debug


def tls_context(ca_path=None):
    """A verifying client context: only ca_path's CAs when given (file or folder), else the system store."""
    if ca_path:
        import os
        if os.path.isdir(ca_path):
            context = ssl.create_default_context(capath=ca_path)
        elif os.path.isfile(ca_path):
            context = ssl.create_default_context(cafile=ca_path)
        else:
            raise ConfigError("CA bundle %r does not exist" % ca_path, option="ca_path")
    else:
        context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class SmtpSession(object):
    """One SMTP connection; see the module docstring for the call order."""

    def __init__(self, host, port=587, secure="starttls", ca_path=None, timeout=30, ehlohost=None, mailbox=None,
                 token_source=None, transcript=False):
        if secure not in SECURE_MODES:
            raise ConfigError("must be one of %s, got %r" % (", ".join(SECURE_MODES), secure), option="secure")
        if secure == "never" and token_source is not None:
            raise ConfigError("a plain connection cannot carry an OAuth token", option="secure",
                              fix="use starttls (port 587) or always (implicit TLS); never is only for an "
                                  "internal relay without authentication")
        if not host:
            raise ConfigError("no SMTP host: the cloud has no known SMTP host", option="host",
                              fix="set host (or O365_SMTP_HOST)")
        self.host = host
        self.port = int(port)
        self.secure = secure
        self.ca_path = ca_path
        self.timeout = timeout
        self.ehlohost = ehlohost
        self.mailbox = mailbox
        self.token_source = token_source
        self.transcript = [] if transcript else None
        self.token_expires_on = None
        self.authenticated_at = None
        self.deadline = None
        self.aborted = False
        self.authenticated = False
        self.max_size = None
        self.connects = 0
        self._smtp = None
        self._token = None
        self._fresh_token_next = False
        self._secrets = []

    # -- connection -------------------------------------------------------------------------------------
    @property
    def connected(self):
        return self._smtp is not None

    def abort(self):
        """Stop before the next command or the end-of-data mark (safe from another thread)."""
        self.aborted = True

    def _step(self, step, reserve=0.0):
        """Before a command or a write: Stopped when aborted or when the deadline leaves no more than `reserve`
        seconds; else the socket's wait: `timeout`, never past the deadline (less `reserve`). Returns that wait."""
        if self.aborted or (self.deadline is not None and self.deadline - time.monotonic() <= reserve):
            self.close()
            raise Stopped("aborted" if self.aborted else "deadline", step)
        return self._wait(reserve)

    def _wait(self, reserve=0.0):
        wait = self.timeout
        if self.deadline is not None:
            left = max(0.01, self.deadline - time.monotonic() - reserve)
            wait = left if reserve else min(wait, left)
        if self._smtp is not None and self._smtp.sock is not None:
            self._smtp.sock.settimeout(wait)
        return wait

    def _new_client(self):
        cls = _RedactingSMTP_SSL if self.secure == "always" else _RedactingSMTP
        kwargs = {"local_hostname": self.ehlohost, "timeout": self._step("connect")}
        if self.secure == "always":
            kwargs["context"] = tls_context(self.ca_path)
        client = cls(**kwargs)
        client.secrets = self._secrets
        client.transcript = self.transcript
        if self.transcript is not None:
            client.set_debuglevel(1)
        return client

    def connect(self):
        """TCP, greeting, EHLO and STARTTLS. Raises SmtpError / SmtpDisconnected / ConfigError."""
        self.close()
        client = self._new_client()
        client._host = self.host  # SMTP_SSL takes the TLS server name from here, set only by its constructor
        try:
            code, message = client.connect(self.host, self.port)
        except ssl.SSLCertVerificationError as exc:
            raise self._untrusted(exc)
        except (socket.timeout, OSError) as exc:
            raise SmtpDisconnected("cannot connect to %s:%s (host, port): %s" % (self.host, self.port, exc),
                                   stage="connect", code="connect", option="host")
        self._smtp = client
        self.connects += 1
        if code != 220:
            self.close()
            raise smtp_error("connect", code, message)
        self._ehlo("connect")
        if self.secure == "starttls":
            if not client.has_extn("starttls"):
                self.close()
                raise SessionError("%s:%s does not offer STARTTLS; the session is not continued in clear text"
                                   % (self.host, self.port), code="no_starttls", option="secure", stage="connect",
                                   fix="check host and port (Exchange Online: smtp.office365.com port 587)")
            self._starttls()
        return self

    def _ehlo(self, stage):
        self._step("EHLO")
        try:
            code, message = self._smtp.ehlo()
        except smtplib.SMTPServerDisconnected as exc:
            self._lost(stage, exc)
        if code != 250:
            raise smtp_error(stage, code, message)
        size = self._smtp.esmtp_features.get("size", "")
        self.max_size = int(size) if size.isdigit() and int(size) else None

    def _starttls(self):
        context = tls_context(self.ca_path)
        self._step("STARTTLS")
        try:
            code, message = self._smtp.docmd("STARTTLS")
            if code != 220:
                raise smtp_error("starttls", code, message)
            self._smtp.sock = context.wrap_socket(self._smtp.sock, server_hostname=self.host)
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise self._untrusted(exc)
        except (ssl.SSLError, OSError, smtplib.SMTPServerDisconnected) as exc:
            self._lost("starttls", exc)
        # RFC 3207: forget what the server said before TLS and ask again.
        self._smtp.file = None
        self._smtp.helo_resp = None
        self._smtp.ehlo_resp = None
        self._smtp.esmtp_features = {}
        self._smtp.does_esmtp = False
        self._ehlo("starttls")

    def _untrusted(self, exc):
        # The translation HTTPS uses too (_errors.tls_failure): another name -> host, an untrusted CA -> ca_path.
        return tls_failure(exc, "%s:%s" % (self.host, self.port), SessionError, endpoint_option="host",
                           stage="starttls")

    @property
    def tls_active(self):
        return self._smtp is not None and isinstance(self._smtp.sock, ssl.SSLSocket)

    # -- authentication ----------------------------------------------------------------------------------
    def authenticate(self):
        """AUTH XOAUTH2 with a token from token_source; never on a connection without TLS."""
        if self.token_source is None:
            return self
        offered = self._smtp.esmtp_features.get("auth", "") if self._smtp is not None else ""
        tls = self.tls_active
        if not tls or "xoauth2" not in offered.lower().split():
            self.close()  # this connection can carry no mail: a caller's next attempt starts afresh
        if not tls:
            raise SessionError("refusing to authenticate over a connection without TLS", code="no_tls", option="secure",
                               stage="auth")
        if "xoauth2" not in offered.lower().split():
            raise SessionError("%s:%s does not offer AUTH XOAUTH2 (it offers: %s)"
                               % (self.host, self.port, offered or "nothing"),
                               code="no_xoauth2", option="host", stage="auth",
                               fix="use the Exchange Online SMTP host of your cloud (smtp.office365.com for the public cloud)")
        # After "token will expire soon" a cached token would be refused again: ask for a new one.
        token = self.token_source(fresh=True) if self._fresh_token_next else self.token_source()
        self._fresh_token_next = False
        expires_on = getattr(token, "expires_on", None)
        token = getattr(token, "token", token)
        self._token = token
        self.token_expires_on = expires_on
        initial = xoauth2_base64(self.mailbox, token)
        self._secrets[:] = [token, initial]
        challenge = None
        self._step("AUTH")
        try:
            code, message = self._send_xoauth2(initial)
            if code == 334:
                # An error challenge (RFC 7628 3.2.2: base64 JSON status): an empty line gets the final reply.
                challenge = error_challenge(message)
                code, message = self._smtp.docmd("")
        except smtplib.SMTPServerDisconnected as exc:
            self._lost("auth", exc)
        if code != 235:
            error = smtp_error("auth", code, message, token=token, mailbox=self.mailbox, challenge=challenge)
            self._fresh_token_next = error.fresh_token
            raise error
        self.authenticated = True
        self.authenticated_at = time.time()
        return self

    def _send_xoauth2(self, initial):
        """RFC 4954 section 4: the initial response rides on the AUTH line only when the whole command fits in
        SMTP's 512 octets; a token never does, so the usual exchange is AUTH XOAUTH2, 334, then the response."""
        if len("AUTH XOAUTH2 ") + len(initial) + 2 <= COMMAND_LINE_LIMIT:
            return self._smtp.docmd("AUTH", "XOAUTH2 " + initial)
        code, message = self._smtp.docmd("AUTH", "XOAUTH2")
        if code != 334:
            return code, message
        return self._smtp.docmd(initial)

    def token_expiring(self, margin, now=None):
        """True when the token used for this session expires within `margin` seconds."""
        if not self.token_expires_on:
            return False
        return (self.token_expires_on - (now or time.time())) <= margin

    def open(self):
        return self.connect().authenticate()

    def ensure_open(self, fresh_for=0, now=None):
        """Open unless open, authenticated and its token good for more than `fresh_for` seconds (else QUIT and
        open again). Returns "renewed" (for the token), "opened", or None (it was ready)."""
        ready = self._smtp is not None and (self.authenticated or self.token_source is None)
        if ready and not self.token_expiring(fresh_for, now):
            return None
        renewed = ready and "renewed"
        self.quit()
        self.open()
        return renewed or "opened"

    # -- sending ------------------------------------------------------------------------------------------
    def has_extension(self, name):
        """True when the server offered this ESMTP extension (e.g. "smtputf8") after TLS."""
        return self._smtp is not None and self._smtp.has_extn(name)

    def send(self, envelope_from, recipients, data, message_id=None, mail_options=()):
        """MAIL, RCPT for each recipient, DATA. Returns SendResult; raises SmtpError / SmtpDisconnected.

        A refusal of the sender or of the data raises; refused recipients are reported in the result
        (status 'refused' when none was accepted, after RSET). mail_options: MAIL parameters such as SMTPUTF8
        or BODY=8BITMIME, sent as they are (the caller checks has_extension first).
        """
        if self._smtp is None:
            raise SmtpDisconnected("not connected", stage="mail")
        client = self._smtp
        client.command_encoding = "ascii"  # smtplib keeps SMTPUTF8's utf-8 after a transaction without RSET
        options = list(mail_options)
        if self.max_size:
            options.append("SIZE=%d" % len(data))
        try:
            self._step("MAIL")
            code, message = client.mail(envelope_from, options)
            if code != 250:
                self._rset()
                raise smtp_error("mail", code, message, mailbox=self.mailbox, address=envelope_from)
            accepted, refused, later = [], {}, []
            for rcpt in recipients:
                self._step("RCPT")
                code, message = client.rcpt(rcpt)
                if code in (250, 251):
                    accepted.append(rcpt)
                else:
                    error = smtp_error("rcpt", code, message, mailbox=self.mailbox, address=rcpt)
                    if error.reconnect:  # the session is over or out of step, not this recipient
                        raise error
                    refused[rcpt] = (code, split_reply(code, message)[2])
                    if error.temporary:
                        later.append(rcpt)
            if not accepted:
                self._rset()
                return SendResult(message_id, [], refused, None, None, "refused", later)
            self._step("DATA")
            code, message = client.docmd("DATA")
            if code != 354:
                self._rset()
                raise smtp_error("data", code, message, mailbox=self.mailbox, address=envelope_from)
        except smtplib.SMTPServerDisconnected as exc:
            self._lost("mail", exc)
        try:
            self._send_data(client, data)
        except (OSError, socket.timeout) as exc:
            # The end-of-data mark did not leave this host: the server cannot have accepted the message.
            self._lost("data", exc, committed=False)
        if self.deadline is not None and client.sock is not None:
            # Exchange may scan longer than one reply's timeout: giving up earlier would leave acceptance unknown.
            client.sock.settimeout(max(0.01, self.deadline - time.monotonic()))
        try:
            code, message = client.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._lost("data", exc, committed=True)
        if code != 250:
            raise smtp_error("data", code, message, mailbox=self.mailbox, address=envelope_from)
        return SendResult(message_id, accepted, refused, code, split_reply(code, message)[2], "sent", later)

    def _send_data(self, client, data):
        """The message after 354 with the end-of-data mark: bytes or text in one write, or an object whose
        chunks() yields its wire form without the mark (the relay's, streamed). Each write keeps `timeout` in
        reserve for the final reply; the mark goes only if nobody aborted."""
        if not hasattr(data, "chunks"):
            self._step("the end-of-data mark", reserve=self.timeout)
            client.sock.sendall(_wire_data(data))
            return
        last = b""
        for chunk in data.chunks():
            if len(last):
                self._step("the data", reserve=self.timeout)
                client.sock.sendall(last)
            last = chunk
        # The mark in the same write as the last chunk: a small write of its own waits for the server's delayed
        # ACK of the one before (Nagle), some 40 ms a message.
        self._step("the end-of-data mark", reserve=self.timeout)
        client.sock.sendall(bytes(last) + b".\r\n")

    def _rset(self):
        self._wait()
        try:
            self._smtp.rset()
        except (smtplib.SMTPServerDisconnected, OSError):
            self.close()

    def _lost(self, stage, exc, committed=False):
        self.close()
        raise SmtpDisconnected("the connection to %s:%s was lost during %s (%s)"
                               % (self.host, self.port, stage, redact(str(exc), self._secrets) or type(exc).__name__),
                               stage=stage, committed=committed, code="disconnected")

    def quit(self):
        if self._smtp is None:
            return
        self._wait()
        try:
            self._smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        self.close()

    def close(self):
        client, self._smtp = self._smtp, None
        self.authenticated = False
        if client is not None:
            try:
                client.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()


def _wire_data(data):
    """Message bytes as they go after 354: CRLF line ends, dot-stuffed, ending with CRLF.CRLF."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    data = re.sub(br"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
    data = re.sub(br"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"
