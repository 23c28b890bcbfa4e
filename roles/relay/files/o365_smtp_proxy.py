# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The relay's OAuth submission proxy: Postfix delivers to it over LMTP on loopback, it forwards each message to
Exchange Online with STARTTLS + XOAUTH2 and answers Postfix with the upstream's own reply, one per recipient.

Rules it keeps (Postfix owns the queue; this process keeps no message: the sending budgets in memory, and what
Exchange accepted lately in its delivered journal, o365_smtp_proxy_delivered.py):
- never 250 for a recipient before the upstream accepted that recipient and said 250 for the data;
- a token failure, or any refusal before the upstream accepted our authentication (connect, TLS, AUTH), is a
  4xx to Postfix: the mail stays queued and is retried, a wrong credential never bounces mail;
- refusals of the sender, recipients or data are passed through as the upstream gave them; LMTP's reply per
  recipient lets Postfix bounce or retry a recipient Exchange refused while the others count as delivered;
- one reused upstream connection per worker, reconnected before its token expires;
- exactly once: each forward has one deadline (`forward_deadline`, below Postfix's `lmtp_data_done_timeout`); no
  upstream command starts and the data is never committed upstream unless the forward can finish in time, else
  451 and nothing was sent. While a forward runs, the listener's idle timer cannot close Postfix's connection
  (that would make Postfix retry a message Exchange may have accepted: "may be sent more than once").
  Postfix's retry of a recipient Exchange accepted (Postfix was killed or restarted before it heard the answer) is
  answered 250 from the delivered journal, never forwarded again.
- each SASL login (else each client address) has a budget of messages and recipients an hour and a day
  (`client_limits`, o365_smtp_proxy_limits.py); over it the message gets 451 and waits in Postfix's queue.

Tokens and SMTP sessions come from the collection's own module_utils (_auth, _smtp), shipped next to this file.

    o365_smtp_proxy.py --config /etc/o365-smtp-proxy/proxy.json            # serve
    o365_smtp_proxy.py --config /etc/o365-smtp-proxy/proxy.json --check    # token + upstream AUTH, then exit

Relative file names in the configuration are relative to the configuration's own folder.
"""

from __future__ import absolute_import, division, print_function

import argparse
import asyncio
import concurrent.futures
import datetime
import email.parser
import email.policy
import email.utils
import ipaddress
import json
import logging
import os
import re
import signal
import sys
import time

LOG = logging.getLogger("o365-smtp-proxy")
HERE = os.path.dirname(os.path.abspath(__file__))
# The role installs the collection's module_utils under <here>/lib/ansible_collections/...
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, HERE)  # o365_smtp_proxy_metrics.py, shipped next to this file

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.certificate import load_signing_certificate  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.options import credential_from_options, credential_option_names  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.provider import TokenProvider  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import cloud_from_options  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import O365Error, redact  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.diagnosis import diagnose  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.session import (  # noqa: E402
    SessionError, SmtpDisconnected, SmtpSession, Stopped, split_reply)
from o365_smtp_proxy_delivered import DeliveredMemory, delivery_key, message_digest, postfix_seconds  # noqa: E402
from o365_smtp_proxy_limits import LimitProblem, SendingBudgets, check_limits  # noqa: E402
from o365_smtp_proxy_metrics import Metrics, NoMetrics  # noqa: E402

# Options passed to _auth as they are; *_file options are read here so secrets never sit in the JSON.
AUTH_OPTIONS = credential_option_names(secrets=False)
SECRET_FILES = {"client_secret_file": "client_secret", "certificate_password_file": "certificate_password"}
# timeout: one upstream reply; forward_deadline: one whole forward (token, connect, commands, data);
# lmtp_data_done_timeout: Postfix's wait for our answer, the most the listener holds a connection for a forward;
# listen_timeout: Postfix's idle connection (default timeout + 30). listen_socket (a path) wins over host/port.
DEFAULTS = {"listen_host": "127.0.0.1", "listen_port": 10587, "listen_socket": "", "upstream_port": 587,
            "workers": 2, "renew_margin": 300, "idle_timeout": 60, "timeout": 60, "max_message_size": 36700160,
            "forward_deadline": 300, "lmtp_data_done_timeout": 600, "listen_timeout": None,
            "metrics_listen": "", "credential_expires": "", "sender_bindings": {}, "client_limits": {},
            "delivered_journal": "", "delivered_retention": "5d"}
PATH_KEYS = ("ca_path", "certificate_path", "federated_token_file")
_LISTEN = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$")
_QUEUE_ID = re.compile(r"\bid\s+([0-9A-Za-z]{6,})\b")


class ConfigProblem(Exception):
    pass


def load_config(path):
    """The proxy's JSON configuration with defaults, secrets read from their own files."""
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigProblem("cannot read the configuration %s: %s" % (path, exc))
    for key, value in DEFAULTS.items():
        config.setdefault(key, value)
    for key in ("mailbox",):
        if not config.get(key):
            raise ConfigProblem("%s: missing in %s" % (key, path))
    if not float(config["timeout"]) < float(config["forward_deadline"]) < float(config["lmtp_data_done_timeout"]):
        raise ConfigProblem("need timeout < forward_deadline < lmtp_data_done_timeout in %s (got %s, %s, %s)" % (
            path, config["timeout"], config["forward_deadline"], config["lmtp_data_done_timeout"]))
    if config["metrics_listen"] and not _LISTEN.match(str(config["metrics_listen"])):
        raise ConfigProblem("metrics_listen: want host:port ([v6]:port), got %r in %s" % (config["metrics_listen"], path))
    SenderBindings(config["sender_bindings"], where=path)  # refused here, before the service starts
    try:
        postfix_seconds(config["delivered_retention"])
    except ValueError as exc:
        raise ConfigProblem("delivered_retention: %s in %s" % (exc, path))
    try:
        check_limits(config["client_limits"])
    except LimitProblem as exc:
        raise ConfigProblem("client_limits: %s in %s" % (exc, path))
    here = os.path.dirname(os.path.abspath(path))
    for key in PATH_KEYS + tuple(SECRET_FILES):
        if config.get(key):
            config[key] = os.path.join(here, config[key])  # an absolute name stays as it is
            if not os.access(config[key], os.R_OK):
                # systemd's sandbox hides /home, /root and /tmp: the preflight runs in it to say so in time.
                raise ConfigProblem("%s: cannot read %s as this user in this sandbox" % (key, config[key]))
    auth = dict((k, config[k]) for k in AUTH_OPTIONS if config.get(k) not in (None, ""))
    for file_key, option in SECRET_FILES.items():
        if config.get(file_key):
            try:
                with open(config[file_key]) as handle:
                    auth[option] = handle.read().strip()
            except OSError as exc:
                raise ConfigProblem("%s: cannot read %s: %s" % (file_key, config[file_key], exc.strerror))
    config["auth"] = auth
    return config


def queue_id_of(data):
    """Postfix's queue id from the Received header it put on top ("... with ESMTP id 4Xb3...")."""
    head = data[:2048].decode("ascii", "replace")
    match = _QUEUE_ID.search(head.split("\r\n\r\n", 1)[0].replace("\r\n\t", " ").replace("\r\n ", " "))
    return match.group(1) if match else "-"


class WireMessage(object):
    """One message as Postfix sent it after DATA (dot-stuffed, CRLF line ends, without the final dot), in one
    buffer: memory follows the message's size, never its line count (aiosmtpd keeps one object a line: 30 MB of
    empty lines would be gigabytes). It goes upstream as it came, so it is never copied again."""

    HEADER_LIMIT = 262144  # Postfix's header_size_limit is 102400: anything later is the body

    _FIRST_HEADER = re.compile(br"Received:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*")
    _LOGIN_LINE = re.compile(br"\r\n[ \t]+\(Authenticated sender: [^\s()]+\)(?=\r\n)")

    def __init__(self, wire, bare_lf=False):
        self.wire = wire
        self.bare_lf = bare_lf  # Postfix writes CRLF only; another client's bare LF is normalized on the way out
        self.head = None  # (bytes of the wire it replaces, replacement)

    def drop_login(self):
        """Postfix names the client's SASL login in its Received header for the proxy
        (smtpd_sasl_authenticated_header); the name stays on this host, as Postfix's default would keep it."""
        match = self._FIRST_HEADER.match(bytes(self.wire[:8192]))
        if match:
            first = match.group(0)
            without = self._LOGIN_LINE.sub(b"", first, count=1)
            if without != first:
                self.head = (len(first), without)

    def __len__(self):
        return len(self.wire)

    def __getitem__(self, index):
        return self.wire[index]

    def chunks(self, size=1048576):
        """The bytes that follow the upstream's 354, without the final dot."""
        view = memoryview(self.wire)
        if self.head:
            yield self.head[1]
            view = view[self.head[0]:]
        if self.bare_lf:
            # A line that starts after a bare LF was not dot-stuffed by the client: stuff it before it becomes one.
            view = memoryview(re.sub(br"(?<!\r)\n(\.?)", lambda m: b"\r\n" + m.group(1) * 2, bytes(view)))
        for start in range(0, len(view), size):
            yield view[start:start + size]

    def header_section(self):
        """The header section's bytes as they came (dot-stuffed)."""
        head = bytes(self.wire[:self.HEADER_LIMIT])
        end = head.find(b"\r\n\r\n")
        return head[:end + 2] if end >= 0 else head

    def headers(self):
        """The header section, undone from dot-stuffing, as an email.message.Message (no body)."""
        head = re.sub(br"(?m)^\.", b"", self.header_section())
        return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)


async def read_message(reader, limit):
    """(WireMessage or None when it exceeded `limit` bytes) from an aiosmtpd stream after its 354: read up to the
    line that is a lone dot, in chunks of the stream's limit, into one buffer."""
    wire, bare_lf, too_big = bytearray(), False, False
    previous = b"\r\n"  # the DATA command's line end: the message starts at a line start
    while True:
        try:
            chunk = await reader.readuntil(b".\r\n")
            ends = (previous + chunk[:-3])[-2:] == b"\r\n"  # the dot alone on its line
        except asyncio.LimitOverrunError as exc:
            # No dot line yet: take what cannot be the start of one (readuntil keeps the rest).
            chunk = await reader.readexactly(exc.consumed)
            ends = False
        body = chunk[:-3] if ends else chunk
        bare = body.count(b"\n") - body.count(b"\r\n") - (body[:1] == b"\n" and previous[-1:] == b"\r")
        bare_lf = bare_lf or bare > 0
        if not too_big:
            wire += body
            if len(wire) > limit:
                too_big, wire = True, bytearray()
        previous = (previous + chunk)[-2:]
        if ends:
            return None if too_big else WireMessage(wire, bare_lf)


class SenderBindings(object):
    """Send-as addresses bound to the clients declared for them, the rule Postfix applies to the envelope sender
    (smtpd_sender_login_maps, reject_known_sender_login_mismatch, the network classes), applied here to the From:
    and Sender: headers. Configuration: {"address": {"logins": [SASL login as Postfix names it],
    "networks": [CIDR]}}. The login comes from the Received header Postfix put on top
    (smtpd_sasl_authenticated_header = yes), the client's address from XFORWARD; Postfix's own local submissions
    (XFORWARD SOURCE=LOCAL without a client address, root only) are not bound, as their envelope is not."""

    HEADERS = ("From", "Sender")
    _AUTHENTICATED = re.compile(r"\(Authenticated sender: ([^\s()]+)\)")

    def __init__(self, bindings, where="the configuration"):
        self.owners = {}
        if not isinstance(bindings, dict):
            raise ConfigProblem("sender_bindings: want an object address -> {logins, networks} in %s" % where)
        for address, owner in bindings.items():
            if not isinstance(owner, dict) or set(owner) - {"logins", "networks"}:
                raise ConfigProblem("sender_bindings: %s: want {\"logins\": [...], \"networks\": [...]} in %s"
                                    % (address, where))
            try:
                networks = [ipaddress.ip_network(str(n).replace("[", "").replace("]", ""), strict=False)
                            for n in owner.get("networks") or []]  # Postfix's [v6]/len form too
            except ValueError as exc:
                raise ConfigProblem("sender_bindings: %s: %s in %s" % (address, exc, where))
            logins = set(str(login).lower() for login in owner.get("logins") or [])
            self.owners[address.lower()] = (logins, networks)

    @classmethod
    def login_of(cls, message):
        """The SASL login of the client, from the first Received header (Postfix's own: a client cannot write
        above it, and its from-part has no spaces), before its "by"."""
        received = str((message.get_all("Received") or [""])[0])  # an email.header.Header when it has 8-bit text
        first = message.items()[0][0].lower() if message.items() else ""
        if first != "received":
            return None
        match = cls._AUTHENTICATED.search(re.sub(r"\s+", " ", received).split(" by ", 1)[0])
        return match.group(1).lower() if match else None

    @classmethod
    def local_submission(cls, xforward):
        """Root's sendmail / pickup: SOURCE=LOCAL and no client address. SOURCE alone is Postfix's header rewrite
        context, which the role grants to the allowed networks and to SASL clients too
        (local_header_rewrite_clients): it does not tell a device from root."""
        return (xforward or {}).get("SOURCE", "").upper() == "LOCAL" and cls.client_of(xforward) is None

    @staticmethod
    def client_of(xforward):
        addr = (xforward or {}).get("ADDR", "")
        addr = addr[5:] if addr.upper().startswith("IPV6:") else addr
        try:
            return ipaddress.ip_address(addr)
        except ValueError:
            return None

    def refusal(self, message, xforward):
        """None, or the 5xx that refuses a message whose From:/Sender: names an address its client may not use."""
        if not self.owners or self.local_submission(xforward):
            return None
        headers = message.headers()
        login, client = self.login_of(headers), self.client_of(xforward)
        for header in self.HEADERS:
            for _name, address in email.utils.getaddresses([str(v) for v in headers.get_all(header) or []]):
                owner = self.owners.get(address.lower())
                if owner is None:
                    continue
                logins, networks = owner
                if (login and login in logins) or (client and any(client in net for net in networks)):
                    continue
                who = ("login %s" % login) if login else ("client %s without a login" % (client or "unknown"))
                return ("550 5.7.1 %s: header address <%s> is bound to other clients; %s may not send as it"
                        % (header, address[:200], who))
        return None


class Upstream(object):
    """Tokens and SMTP sessions toward Exchange Online for one mailbox."""

    def __init__(self, config, metrics=None):
        opts = config["auth"]
        self.metrics = metrics or NoMetrics()
        self.cloud = cloud_from_options(opts, smtp_host=config.get("upstream_host") or None)
        config["upstream_host"] = self.cloud.smtp_host  # the cloud's host unless one was given
        self.credential = credential_from_options(opts, cloud=self.cloud)
        # Tokens must outlive the connection renewal margin, or Exchange answers 501 5.5.127.
        self.tokens = TokenProvider(self.credential, min_validity=max(600, config["renew_margin"] + 60),
                                    on_acquire=self._counted)
        self.config = config

    def _counted(self, scope, token, error, seconds):
        """Every request to the token endpoint (not the cache's answers), counted by result and AADSTS code."""
        if error is not None:
            self.metrics.token_failed(error)
        else:
            self.metrics.token_acquired(getattr(token, "expires_on", None))

    def token(self, fresh=False):
        token = self.tokens.get_access_token(self.cloud.smtp_scope, fresh=fresh)
        self.metrics.token_seen(getattr(token, "expires_on", None))
        return token

    def session(self):
        c = self.config
        return SmtpSession(c["upstream_host"], port=c["upstream_port"], secure="starttls",
                           ca_path=c["auth"].get("ca_path"), timeout=c["timeout"],
                           ehlohost=c.get("ehlo_name"), mailbox=c["mailbox"], token_source=self.token)

    def secrets(self):
        return self.tokens.secrets()


class Worker(object):
    """One upstream connection, used by one message at a time (the pool hands workers out). The session bounds the
    forward (`deadline`, `abort()`: see _smtp.session); what a refusal means comes from _smtp.diagnosis."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.session = upstream.session()
        self.last_used = 0.0

    def forward(self, mail_from, rcpt_tos, data, margin, idle_timeout, deadline=None, mail_options=()):
        """(reply for Postfix: one for all recipients, or a dict recipient -> reply; upstream reply for the log).
        deadline: time.monotonic() by which the forward must be over; mail_options: the LMTP client's MAIL
        parameters. Runs in a thread: smtplib blocks."""
        self.session.deadline = deadline
        try:
            if time.time() - self.last_used > idle_timeout:
                self.session.quit()  # Exchange may have dropped it meanwhile
            return self._forward(mail_from, rcpt_tos, data, margin, mail_options)
        except Stopped as exc:  # nothing was committed; the session closed the connection
            if exc.reason == "deadline":
                return DEADLINE_REPLY, "deadline: no time left for %s" % exc.step
            return ABORTED_REPLY, "aborted: the LMTP client left before %s" % exc.step
        except BaseException:
            # Whatever nobody foresaw left the session somewhere in a transaction: never reuse it (the next
            # message would get "503 nested MAIL").
            self.session.close()
            raise
        finally:
            self.session.deadline = None
            self.last_used = time.time()

    def _upstream_options(self, mail_from, rcpt_tos, mail_options):
        """The MAIL parameters to pass on: SMTPUTF8 when asked or when an address needs it, BODY=8BITMIME when
        asked and offered. None when the upstream cannot carry the message (RFC 6531: 5.6.7)."""
        asked = set(option.upper() for option in mail_options)
        wanted = []
        if "SMTPUTF8" in asked or any(ord(c) > 127 for c in mail_from + "".join(rcpt_tos)):
            if not self.session.has_extension("smtputf8"):
                return None
            wanted.append("SMTPUTF8")
        if "BODY=8BITMIME" in asked and self.session.has_extension("8bitmime"):
            wanted.append("BODY=8BITMIME")
        return wanted

    def _forward(self, mail_from, rcpt_tos, data, margin, mail_options):
        for attempt in (1, 2):
            try:
                if self.session.ensure_open(margin):
                    self.upstream.metrics.connection("opened")
                options = self._upstream_options(mail_from, rcpt_tos, mail_options)
                if options is None:
                    return NO_SMTPUTF8_REPLY, "upstream offers no SMTPUTF8"
                result = self.session.send(mail_from, rcpt_tos, data, mail_options=options)
            except SessionError as exc:
                lost = isinstance(exc, SmtpDisconnected)
                if lost and exc.stage != "connect":
                    self.upstream.metrics.connection("lost")
                if lost and exc.committed:
                    # The data left this host and no answer came: we cannot know, Postfix retries later.
                    return "451 4.4.2 upstream connection lost after the data; acceptance unknown", _describe(exc)
                if exc.reconnect:
                    self.session.close()
                    if exc.temporary and attempt == 1:
                        continue  # a reused connection the server closed, 5.5.127, 503: once more on a new one
                if exc.stage in ("mail", "rcpt", "data") and not exc.temporary:  # passed on, or deferred
                    return quota_deferred(exc.smtp_code, exc.server_reply[4:], exc.diagnosis), _describe(exc)
                return _deferred(exc), _describe(exc)
            except O365Error as exc:  # no token: the credential, the identity platform
                self.session.close()
                return _deferred(exc), _describe(exc)
            if result.status != "sent":
                code, text = sorted(result.refused.values())[0]
                return self._per_recipient(rcpt_tos, result.refused, None), "%s %s" % (code, text)
            reply = "%s %s" % (result.code, result.reply)
            if result.refused:
                LOG.warning("upstream refused %d of %d recipients: %s", len(result.refused), len(rcpt_tos),
                            "; ".join("%s: %s %s" % (a, c, r) for a, (c, r) in sorted(result.refused.items())))
                return self._per_recipient(rcpt_tos, result.refused, reply), reply
            return reply, reply

    @staticmethod
    def _per_recipient(rcpt_tos, refused, accepted_reply):
        """Each recipient's own answer: the upstream's refusal, or the reply to the data (None: nothing sent)."""
        replies = {}
        for rcpt in rcpt_tos:
            if rcpt in refused:
                replies[rcpt] = quota_deferred(*refused[rcpt])
            else:
                # Not refused yet not sent (all others refused and the upstream reset): let Postfix retry it.
                replies[rcpt] = accepted_reply or "451 4.3.0 not sent: the upstream refused every other recipient"
        return replies

    def close_if_idle(self, idle_timeout):
        if self.session.connected and time.time() - self.last_used > idle_timeout:
            self.session.quit()


XFORWARD_ATTRIBUTES = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")
_XTEXT = re.compile(r"\+([0-9A-F]{2})")
DEADLINE_REPLY = "451 4.4.1 upstream too slow: not sent within the relay's forward deadline, will retry"
ABORTED_REPLY = "451 4.4.2 forward stopped before the data was committed: the LMTP client left"
IN_FLIGHT_REPLY = "451 4.4.2 an earlier delivery of this message (queue id %s) is still under way upstream, will retry"
ALREADY_DELIVERED_REPLY = "250 2.0.0 delivered before (queue id %s): Exchange accepted it, not sent again"
NO_SMTPUTF8_REPLY = "554 5.6.7 the message needs SMTPUTF8 and the upstream does not offer it"


def quota_deferred(code, text, found=None):
    """An upstream 5xx as the answer for Postfix: a sending limit (the mailbox's or the tenant's, never the
    message's: `limit` in _smtp.diagnosis) as a 4xx with the same detail (X.Y.Z -> 4.Y.Z), so the mail waits in
    Postfix's queue until the limit frees up (within relay_queue_lifetime) instead of bouncing for everyone; any
    other reply as it is. found: the reply's Diagnosis when the caller has it."""
    found = found or diagnose(code, text)
    if not (found.limit and code >= 500):
        return "%s %s" % (code, text)
    enhanced = split_reply(code, text)[1] or ""
    return "451 4.%s %s (an Exchange sending limit: deferred by the relay, will retry)" % (
        found.code[2:], text[len(enhanced):].lstrip())


def _one_line(reply):
    return reply.replace("\r", " ").replace("\n", " ")


def lmtp_replies(rcpt_tos, reply):
    """LMTP answers the data once per recipient, in RCPT order: the lines of one push, CRLF between them."""
    if not isinstance(reply, dict):
        reply = dict((rcpt, reply) for rcpt in rcpt_tos)
    return [_one_line(reply[rcpt]) for rcpt in rcpt_tos]


def _describe(exc):
    """For the log: the upstream's reply and what it means, as send_mail says it (cause, fix)."""
    return _one_line(str(exc))


def _deferred(exc):
    """A 4xx for Postfix: keep the message, retry later. Upstream 4xx keep their own code."""
    reply = getattr(exc, "server_reply", None) or ""
    if reply[:1] == "4":
        return reply
    detail = _one_line(getattr(exc, "message", None) or str(exc))[:300]
    return "451 4.7.0 relay cannot deliver now, will retry: %s" % detail


async def _settled(future):
    """Wait for a thread's future even while this task is being cancelled (a thread cannot be)."""
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            continue


def budget_owner(message, xforward):
    """Whose sending budget a message spends: its SASL login (Postfix's Received header), else its client's
    address (XFORWARD); None for root's local submissions, which are not limited."""
    if SenderBindings.local_submission(xforward):
        return None
    login = SenderBindings.login_of(message.headers())
    if login:
        return "login %s" % login
    return "client %s" % (SenderBindings.client_of(xforward) or "unknown")


class ProxyHandler(object):
    """aiosmtpd handler: everything happens at the end of DATA, when the whole message is here."""

    def __init__(self, config, upstream):
        self.config = config
        self.upstream = upstream
        self.metrics = upstream.metrics
        self.workers = asyncio.Queue()
        self.all_workers = [Worker(upstream) for _index in range(int(config["workers"]))]
        for worker in self.all_workers:
            self.workers.put_nowait(worker)
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=len(self.all_workers))
        self.senders = SenderBindings(config.get("sender_bindings") or {})
        self.budgets = SendingBudgets(config.get("client_limits") or {})
        self.delivered = DeliveredMemory(config.get("delivered_journal") or "", config["delivered_retention"])
        self.flights = {}  # delivery key -> asyncio.Event of the forward under way
        self.connections = set()  # open LMTP connections (ProxyLMTP), for the drain

    async def handle_DATA(self, server, session, envelope):
        started = time.monotonic()
        # Postfix's lmtp_data_done_timeout started with its final dot; waiting for a free worker counts too.
        deadline = started + float(self.config["forward_deadline"])
        data = envelope.wire  # a WireMessage (ProxyLMTP.smtp_DATA)
        all_rcpts = list(envelope.rcpt_tos)
        queue_id = queue_id_of(data)
        keys = self.delivery_keys(queue_id, data, all_rcpts)
        client = getattr(session, "xforward", None) or {}
        hold = getattr(server, "hold_during_forward", None)
        if hold:
            hold(started)
        ticket, accepted, flight = None, 0, None
        try:
            # Postfix's retry of a delivery whose answer it never heard (restarted meanwhile): a forward of it still
            # under way is waited for, and what Exchange accepted is answered, not sent again.
            busy = not await self._flights_over(keys, deadline)
            done = dict((rcpt, ALREADY_DELIVERED_REPLY % queue_id) for rcpt in all_rcpts
                        if rcpt in keys and self.delivered.delivered(keys[rcpt]))
            rcpt_tos = [rcpt for rcpt in all_rcpts if rcpt not in done]
            refusal = (IN_FLIGHT_REPLY % queue_id if busy else self.senders.refusal(data, client)) if rcpt_tos else None
            if rcpt_tos and not refusal:
                ticket, refusal = self.budgets.reserve(budget_owner(data, client), len(rcpt_tos))
            data.drop_login()
            if not rcpt_tos:
                reply, upstream = done, "not sent: delivered before (a retry by Postfix)"
            elif refusal:
                reply = upstream = refusal
            else:
                flight = self._take_off(keys, rcpt_tos)
                self.metrics.in_flight(1)
                try:
                    reply, upstream = await self._forward(envelope.mail_from, rcpt_tos, data, deadline, started,
                                                          envelope.mail_options, keys, queue_id)
                finally:
                    self.metrics.in_flight(-1)
            secrets = self.upstream.secrets()
            replies = [redact(line, secrets) for line in lmtp_replies(rcpt_tos, reply)]
            accepted = sum(1 for line in replies if line.startswith("2"))
            if done:
                done.update(zip(rcpt_tos, replies))
                rcpt_tos, replies = all_rcpts, lmtp_replies(all_rcpts, done)
        finally:
            self._land(flight)
            if hold:
                hold(None)
            self.budgets.settle(ticket, accepted)  # only what the upstream took is spent
        codes = sorted(set(line[:3] for line in replies))
        self.metrics.message(replies)
        # One line a message, key=value: never a body, subject, secret or token.
        LOG.info("queue_id=%s client=%s helo=%s from=<%s> rcpts=%d size=%d codes=%s upstream=%r reply=%s secs=%.3f",
                 queue_id, client.get("ADDR", "-"), client.get("HELO", "-"), envelope.mail_from,
                 len(rcpt_tos), len(data), ",".join(line[:3] for line in replies),
                 redact(_one_line(upstream), secrets), ",".join(codes), time.monotonic() - started)
        return "\r\n".join(replies)

    async def _flights_over(self, keys, deadline):
        """Wait until no forward of these keys is under way (False: one still is at the deadline)."""
        flights = set(self.flights[key] for key in keys.values() if key in self.flights)
        if not flights:
            return True
        try:
            await asyncio.wait_for(asyncio.gather(*(flight.wait() for flight in flights)),
                                   max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            return False
        return True

    def _take_off(self, keys, rcpt_tos):
        """The forward's flight: retries of these recipients wait for it to land."""
        flight = asyncio.Event()
        flight.keys = [keys[rcpt] for rcpt in rcpt_tos if rcpt in keys]
        for key in flight.keys:
            self.flights[key] = flight
        return flight

    def _land(self, flight):
        if flight is not None:
            for key in flight.keys:
                if self.flights.get(key) is flight:
                    del self.flights[key]
            flight.set()

    @staticmethod
    def delivery_keys(queue_id, data, rcpt_tos):
        """recipient -> its key in the delivered memory; none without Postfix's queue id (nothing to know a
        retry by)."""
        if queue_id == "-":
            return {}
        digest = message_digest(data.header_section(), len(data))
        return dict((rcpt, delivery_key(queue_id, rcpt, digest)) for rcpt in rcpt_tos)

    def _forward_and_remember(self, worker, keys, queue_id, mail_from, rcpt_tos, *args):
        """In the worker's thread: the forward, then the recipients Exchange accepted are remembered (on disk)
        before Postfix can hear the answer - and even if it never does (it left meanwhile)."""
        reply, upstream = worker.forward(mail_from, rcpt_tos, *args)
        if keys:
            accepted = [keys[rcpt] for rcpt, line in zip(rcpt_tos, lmtp_replies(rcpt_tos, reply)) if line[:1] == "2"]
            self.delivered.remember(accepted, queue_id)
        return reply, upstream

    async def _forward(self, mail_from, rcpt_tos, data, deadline, started, mail_options, keys=None, queue_id="-"):
        """A worker's forward in its thread. If the LMTP client leaves meanwhile (this task is cancelled), the
        forward is told to stop before it commits the data, and the worker goes back to the pool only once its
        thread is done with the session."""
        worker = await self.workers.get()
        forwarding = time.monotonic()
        self.metrics.worker_wait(forwarding - started)
        worker.session.aborted = False
        future = asyncio.get_running_loop().run_in_executor(
            self.executor, self._forward_and_remember, worker, keys, queue_id, mail_from, rcpt_tos, data,
            self.config["renew_margin"], self.config["idle_timeout"], deadline, tuple(mail_options or ()))
        left = False
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            left = True
            worker.session.abort()
            raise
        except Exception as exc:  # a bug must defer the mail, never lose it
            LOG.exception("internal error")
            reply = "451 4.3.0 relay internal error: %s" % type(exc).__name__
            return reply, reply
        finally:
            await _settled(future)
            if left:  # nobody hears this answer: say what happened upstream (Postfix will send the message again)
                outcome = future.result()[1] if future.exception() is None else repr(future.exception())
                LOG.warning("queue_id=%s the LMTP client left during the forward; upstream=%r",
                            queue_id, _one_line(redact(outcome, self.upstream.secrets())))
            self.workers.put_nowait(worker)
            self.metrics.forward(time.monotonic() - forwarding)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        """LHLO: also offer XFORWARD, so that Postfix (lmtp_send_xforward_command) names the client it got the
        message from, for the log line."""
        session.host_name = hostname  # aiosmtpd leaves this to a 5-argument hook
        return responses[:-1] + ["250-XFORWARD " + " ".join(XFORWARD_ATTRIBUTES)] + responses[-1:]

    async def handle_exception(self, error):
        """aiosmtpd answers an unexpected error with "500 Error", which would bounce the mail: defer it."""
        LOG.error("internal error in the LMTP session: %s", type(error).__name__, exc_info=error)
        return "451 4.3.0 relay internal error, will retry"

    async def reap_idle(self):
        """Close upstream connections nobody used for idle_timeout: Exchange allows few per mailbox."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(5, self.config["idle_timeout"] / 2))
            for _index in range(len(self.all_workers)):
                worker = self.workers.get_nowait() if not self.workers.empty() else None
                if worker is None:
                    break
                try:
                    await loop.run_in_executor(self.executor, worker.close_if_idle, self.config["idle_timeout"])
                finally:
                    self.workers.put_nowait(worker)


def make_server_factory(config, handler):
    from aiosmtpd.lmtp import LMTP

    class ProxyLMTP(LMTP):
        """aiosmtpd's idle timer keeps running while handle_DATA awaits the forward; were it to close Postfix's
        connection then, Postfix would send again a message Exchange accepts a moment later. It waits instead,
        at most until Postfix itself gives up on the answer (lmtp_data_done_timeout)."""

        _forward_started = None

        def connection_made(self, transport):
            handler.connections.add(self)
            super(ProxyLMTP, self).connection_made(transport)

        def connection_lost(self, error):
            handler.connections.discard(self)
            super(ProxyLMTP, self).connection_lost(error)

        def idle(self):
            """No transaction under way: closing now loses nothing (Postfix sends the next one elsewhere)."""
            return self.envelope is None or (self.envelope.mail_from is None and self._forward_started is None)

        async def smtp_DATA(self, arg):
            """aiosmtpd's DATA keeps each line as an object of its own; here the message is one buffer."""
            if await self.check_helo_needed("LHLO"):
                return
            if not self.envelope.rcpt_tos:
                await self.push("503 5.5.1 Error: need RCPT command")
                return
            if arg:
                await self.push("501 5.5.4 Syntax: DATA")
                return
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            try:
                message = await read_message(self._reader, self.data_size_limit)
            except asyncio.CancelledError:
                self._writer.close()
                raise
            if message is None:  # LMTP: one reply per recipient
                status = "\r\n".join(["552 5.3.4 Error: too much mail data"] * len(self.envelope.rcpt_tos))
            else:
                self.envelope.wire = message
                status = await self._call_handler_hook("DATA")
            await self.push(status)
            self._set_post_data_state()

        def hold_during_forward(self, started):
            self._forward_started = started
            if started is None and self.transport is not None:
                self._reset_timeout()  # the answer is out: Postfix's idle time starts now

        async def smtp_XFORWARD(self, arg):
            """Postfix's XFORWARD (before MAIL): the original client's attributes, xtext-encoded. Kept for the
            log only; unknown attributes are refused as Postfix's own servers do."""
            if not arg:
                await self.push("501 5.5.4 Syntax: XFORWARD attribute=value...")
                return
            values = {}
            for item in arg.split():
                name, _sep, value = item.partition("=")
                if name.upper() not in XFORWARD_ATTRIBUTES:
                    await self.push("501 5.5.4 Bad XFORWARD attribute name: %s" % name[:20])
                    return
                value = _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)
                values[name.upper()] = re.sub(r"[^\x21-\x7e]", "?", value)[:255]
            self.session.xforward = dict(getattr(self.session, "xforward", None) or {}, **values)
            await self.push("250 2.0.0 Ok")

        def _timeout_cb(self):
            if self._forward_started is not None:
                left = self._forward_started + float(config["lmtp_data_done_timeout"]) - time.monotonic()
                if left > 0:
                    self._reset_timeout(min(left, self._timeout_duration))
                    return
            super(ProxyLMTP, self)._timeout_cb()

    listen_timeout = config.get("listen_timeout") or float(config["timeout"]) + 30

    def factory():
        # From Postfix only (a unix socket only it may open): no AUTH, no TLS. The size limit is Postfix's
        # plus headroom.
        return ProxyLMTP(handler, hostname=config.get("ehlo_name") or "o365-smtp-proxy",
                         data_size_limit=int(config["max_message_size"]) + 1048576, enable_SMTPUTF8=True,
                         decode_data=False, timeout=listen_timeout)
    return factory


def credential_expiry(config):
    """Unix time the relay's credential expires: the certificate's notAfter, else the declared end date of the
    secret (credential_expires, ISO 8601), else None."""
    if config["auth"].get("certificate_path"):
        # The loader the certificate credential itself uses (PEM or PFX, with its password).
        loaded = load_signing_certificate(config["auth"]["certificate_path"], config["auth"].get("certificate_password"))
        return loaded.not_after.timestamp()
    if config.get("credential_expires"):
        when = datetime.datetime.fromisoformat(str(config["credential_expires"]).replace("Z", "+00:00"))
        return (when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)).timestamp()
    return None


def start_metrics(config):
    """Metrics on metrics_listen ("host:port"; "" = off, nothing listens and nothing is counted)."""
    listen = str(config.get("metrics_listen") or "")
    if not listen:
        return NoMetrics()
    host, _sep, port = listen.rpartition(":")
    metrics = Metrics()
    metrics.credential_expiry(credential_expiry(config))
    metrics.start(host.strip("[]") or "127.0.0.1", int(port))
    LOG.info("metrics on http://%s/metrics", listen)
    return metrics


async def serve(config, ready=None, stop=None):
    """Run until cancelled, or until `stop` (an asyncio.Event: SIGTERM) is set: then drain. ready: an optional
    callback with the bound (host, port)."""
    upstream = Upstream(config, metrics=start_metrics(config))
    upstream.credential.validate()
    try:
        handler = ProxyHandler(config, upstream)
    except OSError as exc:
        raise O365Error("delivered_journal: cannot keep %s: %s (the service's StateDirectory)" % (
            config["delivered_journal"], exc.strerror or exc))
    loop = asyncio.get_running_loop()
    factory = make_server_factory(config, handler)
    if config.get("listen_socket"):
        server = await listen_unix(loop, factory, config["listen_socket"])
        bound = config["listen_socket"]
        where = bound
    else:
        server = await loop.create_server(factory, config["listen_host"], int(config["listen_port"]))
        bound = server.sockets[0].getsockname()[:2]
        where = "%s:%s" % bound
    LOG.info("listening on %s, upstream %s:%s as %s", where, config["upstream_host"], config["upstream_port"],
             config["mailbox"])
    if ready:
        ready(bound)
    reaper = asyncio.ensure_future(handler.reap_idle())
    try:
        await (stop or asyncio.Event()).wait()
        await drain(server, handler, float(config["lmtp_data_done_timeout"]))
    finally:
        LOG.info("stopping")
        reaper.cancel()
        server.close()
        for worker in handler.all_workers:
            worker.session.quit()
        handler.executor.shutdown(wait=False)
        handler.delivered.close()


async def drain(server, handler, grace):
    """SIGTERM: stop listening (Postfix's next connection fails: it keeps the mail and retries), close the LMTP
    connections between messages, let every message under way finish its forward and hear its answer. grace
    (Postfix's own wait for an answer) bounds it; systemd's TimeoutStopSec must be longer."""
    server.close()
    busy = len([conn for conn in handler.connections if not conn.idle()])
    LOG.info("draining: listener closed, %d message(s) under way", busy)
    end = time.monotonic() + grace
    while handler.connections and time.monotonic() < end:
        for conn in list(handler.connections):
            if conn.idle() and conn.transport is not None:
                conn.transport.close()
        await asyncio.sleep(0.05)


async def listen_unix(loop, factory, path):
    """A unix socket Postfix (group postfix, through the folder's setgid group) may open and other users not:
    the folder is the service's, mode 2750 root-made; the socket 0660 here."""
    try:
        os.unlink(path)  # left over from an earlier run
    except FileNotFoundError:
        pass
    server = await loop.create_unix_server(factory, path)
    os.chmod(path, 0o660)
    return server


def check(config):
    """Preflight: a token, then connect + STARTTLS + AUTH XOAUTH2 + QUIT. Returns (exit code, message)."""
    try:
        upstream = Upstream(config)
        upstream.credential.validate()
        session = upstream.session()
        session.open()
        session.quit()
    except O365Error as exc:
        secrets = []
        try:
            secrets = upstream.secrets()
        except NameError:
            pass
        return 1, redact(str(exc), secrets)
    return 0, "ok: a token was issued and %s:%s accepted it for %s" % (
        config["upstream_host"], config["upstream_port"], config["mailbox"])


async def serve_until_signalled(config):
    """serve() with SIGTERM (systemd's stop) and SIGINT turned into a drain."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(config, stop=stop)


def configure_logging(stream):
    """This proxy's lines at INFO (one a message, start and stop); libraries (aiosmtpd's per-connection lines,
    msal, urllib3) only from WARNING."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    LOG.setLevel(logging.INFO)
    return handler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--config", default="/etc/o365-smtp-proxy/proxy.json")
    parser.add_argument("--check", action="store_true", help="prove the credential and upstream AUTH, then exit")
    args = parser.parse_args(argv)
    configure_logging(sys.stdout)
    try:
        config = load_config(args.config)
    except ConfigProblem as exc:
        print("o365-smtp-proxy: %s" % exc, file=sys.stderr)
        return 2
    if args.check:
        code, message = check(config)
        print(message, file=sys.stderr if code else sys.stdout)
        return code
    try:
        asyncio.run(serve_until_signalled(config))
    except O365Error as exc:
        print("o365-smtp-proxy: %s" % exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
