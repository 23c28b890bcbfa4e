# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The relay's OAuth submission proxy: Postfix delivers to it over LMTP on loopback, it forwards each message to
Exchange Online with STARTTLS + XOAUTH2 and answers Postfix with the upstream's own reply, one per recipient.

Rules it keeps (Postfix owns the queue, this process keeps no state):
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
import json
import logging
import os
import re
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
from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import resolve_cloud  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import O365Error, redact  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.session import SmtpDisconnected, SmtpSession  # noqa: E402
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
            "metrics_listen": "", "credential_expires": ""}
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


class DeadlineExceeded(Exception):
    """The forward cannot finish before its deadline. Raised before the data was committed upstream."""


class DeadlineSession(SmtpSession):
    """An SmtpSession whose commands share one deadline while `deadline` (a time.monotonic() value) is set:
    no command is sent after it, no reply is awaited past it, and after the server's 354 the data goes out only
    if its upload (given what is left minus `timeout`) and the final reply (`timeout`) both fit before it. A
    failed upload is not a commitment (the end-of-data mark never left), so everything that goes wrong before
    the final reply is answered 451 safely. _smtp.SmtpSession has no hook between RCPT and the data, so the
    hook sits on its smtplib client's putcmd / getreply."""

    deadline = None
    _GUARDED = frozenset(("mail", "rcpt", "data", "auth", "starttls", "ehlo"))

    def left(self):
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _new_client(self):
        client = super(DeadlineSession, self)._new_client()
        putcmd, getreply = client.putcmd, client.getreply
        state = {"command": None}

        def guarded_putcmd(cmd, args=""):
            left = self.left()
            if left is not None and cmd.lower() in self._GUARDED and left <= 0:
                raise DeadlineExceeded("no time left for %s" % cmd.upper())
            state["command"] = cmd.lower()
            return putcmd(cmd, args)

        def bounded_getreply():
            left, command = self.left(), state["command"]
            state["command"] = None
            if client.sock is not None:
                client.sock.settimeout(self.timeout if left is None else max(0.01, min(self.timeout, left)))
            code, message = getreply()
            if command == "data" and code == 354 and left is not None:
                upload = self.left() - self.timeout  # what the final reply needs stays in reserve
                if upload <= 0:
                    raise DeadlineExceeded("no time left to send the data and wait for the reply")
                # Python's sendall() timeout bounds the whole call, not each chunk.
                client.sock.settimeout(upload)
            return code, message

        client.putcmd = guarded_putcmd
        client.getreply = bounded_getreply
        return client


class Upstream(object):
    """Tokens and SMTP sessions toward Exchange Online for one mailbox."""

    def __init__(self, config, metrics=None):
        opts = config["auth"]
        self.metrics = metrics or NoMetrics()
        self.cloud = resolve_cloud(opts.get("cloud") or "public", authority_host=opts.get("authority_host"),
                                   smtp_host=config.get("upstream_host") or None)
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
        return DeadlineSession(c["upstream_host"], port=c["upstream_port"], secure="starttls",
                               ca_path=c["auth"].get("ca_path"), timeout=c["timeout"],
                               ehlohost=c.get("ehlo_name"), mailbox=c["mailbox"], token_source=self.token)

    def secrets(self):
        return self.tokens.secrets()


class Worker(object):
    """One upstream connection, used by one message at a time (the pool hands workers out)."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.session = upstream.session()
        self.last_used = 0.0
        self.connects = 0

    def _ready(self, margin, idle_timeout):
        s = self.session
        stale = s.connected and time.time() - self.last_used > idle_timeout
        if s.connected and (stale or not s.authenticated or s.token_expiring(margin)):
            s.quit()
        if not s.connected:
            s.open()
            self.connects += 1
            self.upstream.metrics.connection("opened")

    def forward(self, mail_from, rcpt_tos, data, margin, idle_timeout, deadline=None):
        """(reply for Postfix: one for all recipients, or a dict recipient -> reply; upstream reply for the log).
        deadline: time.monotonic() by which the forward must be over. Runs in a thread: smtplib blocks."""
        self.session.deadline = deadline
        try:
            return self._forward(mail_from, rcpt_tos, data, margin, idle_timeout)
        except DeadlineExceeded as exc:
            self.session.close()  # mid-transaction: dropping the connection discards it upstream
            return DEADLINE_REPLY, "deadline: %s" % exc
        finally:
            self.session.deadline = None
            self.last_used = time.time()

    def _forward(self, mail_from, rcpt_tos, data, margin, idle_timeout):
        for attempt in (1, 2):
            left = self.session.left()
            if left is not None and left <= 0:
                raise DeadlineExceeded("no time left to start")
            try:
                self._ready(margin, idle_timeout)
            except O365Error as exc:
                self.session.close()
                return _deferred(exc), _describe(exc)
            try:
                result = self.session.send(mail_from, rcpt_tos, data)
            except SmtpDisconnected as exc:
                self.upstream.metrics.connection("lost")
                if exc.committed:
                    # The data left this host and no answer came: we cannot know, Postfix retries later.
                    return "451 4.4.2 upstream connection lost after the data; acceptance unknown", _describe(exc)
                if attempt == 1:
                    continue  # a reused connection the server had closed: once more on a new one
                return _deferred(exc), _describe(exc)
            except O365Error as exc:
                code = getattr(exc, "smtp_code", None)
                if code in (421, 432) or getattr(exc, "enhanced_code", None) == "5.5.127":
                    self.session.close()
                    if attempt == 1:
                        continue
                if isinstance(code, int) and 400 <= code < 600:
                    return exc.server_reply, exc.server_reply
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
        return "451 4.4.1 upstream unavailable", "no attempt left"

    @staticmethod
    def _per_recipient(rcpt_tos, refused, accepted_reply):
        """Each recipient's own answer: the upstream's refusal, or the reply to the data (None: nothing sent)."""
        replies = {}
        for rcpt in rcpt_tos:
            if rcpt in refused:
                replies[rcpt] = "%s %s" % refused[rcpt]
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


def _one_line(reply):
    return reply.replace("\r", " ").replace("\n", " ")


def lmtp_replies(rcpt_tos, reply):
    """LMTP answers the data once per recipient, in RCPT order: the lines of one push, CRLF between them."""
    if not isinstance(reply, dict):
        reply = dict((rcpt, reply) for rcpt in rcpt_tos)
    return [_one_line(reply[rcpt]) for rcpt in rcpt_tos]


def _describe(exc):
    return (exc.server_reply if getattr(exc, "server_reply", None) else str(exc)).replace("\n", " ")


def _deferred(exc):
    """A 4xx for Postfix: keep the message, retry later. Upstream 4xx keep their own code."""
    reply = getattr(exc, "server_reply", None) or ""
    if reply[:1] == "4":
        return reply
    detail = _one_line(getattr(exc, "message", None) or str(exc))[:300]
    return "451 4.7.0 relay cannot deliver now, will retry: %s" % detail


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

    async def handle_DATA(self, server, session, envelope):
        started = time.monotonic()
        # Postfix's lmtp_data_done_timeout started with its final dot; waiting for a free worker counts too.
        deadline = started + float(self.config["forward_deadline"])
        data = envelope.original_content or envelope.content or b""
        rcpt_tos = list(envelope.rcpt_tos)
        hold = getattr(server, "hold_during_forward", None)
        if hold:
            hold(started)
        self.metrics.in_flight(1)
        try:
            worker = await self.workers.get()
            forwarding = time.monotonic()
            self.metrics.worker_wait(forwarding - started)
            try:
                reply, upstream = await asyncio.get_running_loop().run_in_executor(
                    self.executor, worker.forward, envelope.mail_from, rcpt_tos, data,
                    self.config["renew_margin"], self.config["idle_timeout"], deadline)
            except Exception as exc:  # a bug must defer the mail, never lose it
                LOG.exception("internal error")
                reply = upstream = "451 4.3.0 relay internal error: %s" % type(exc).__name__
            finally:
                self.workers.put_nowait(worker)
                self.metrics.forward(time.monotonic() - forwarding)
        finally:
            self.metrics.in_flight(-1)
            if hold:
                hold(None)
        secrets = self.upstream.secrets()
        replies = [redact(line, secrets) for line in lmtp_replies(rcpt_tos, reply)]
        codes = sorted(set(line[:3] for line in replies))
        self.metrics.message(replies)
        client = getattr(session, "xforward", None) or {}
        # One line a message, key=value: never a body, subject, secret or token.
        LOG.info("queue_id=%s client=%s helo=%s from=<%s> rcpts=%d size=%d codes=%s upstream=%r reply=%s secs=%.3f",
                 queue_id_of(data), client.get("ADDR", "-"), client.get("HELO", "-"), envelope.mail_from,
                 len(rcpt_tos), len(data), ",".join(line[:3] for line in replies),
                 redact(_one_line(upstream), secrets), ",".join(codes), time.monotonic() - started)
        return "\r\n".join(replies)

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


async def serve(config, ready=None):
    """Run until cancelled. ready: an optional callback with the bound (host, port)."""
    upstream = Upstream(config, metrics=start_metrics(config))
    upstream.credential.validate()
    handler = ProxyHandler(config, upstream)
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
        async with server:
            await server.serve_forever()
    finally:
        LOG.info("stopping")
        reaper.cancel()
        for worker in handler.all_workers:
            worker.session.quit()
        handler.executor.shutdown(wait=False)


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
        asyncio.run(serve(config))
    except O365Error as exc:
        print("o365-smtp-proxy: %s" % exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
