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
- one reused upstream connection per worker, reconnected before its token expires.

Tokens and SMTP sessions come from the collection's own module_utils (_auth, _smtp), shipped next to this file.

    o365_smtp_proxy.py --config /etc/o365-smtp-proxy/proxy.json            # serve
    o365_smtp_proxy.py --config /etc/o365-smtp-proxy/proxy.json --check    # token + upstream AUTH, then exit
"""

from __future__ import absolute_import, division, print_function

import argparse
import asyncio
import concurrent.futures
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

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import credential_from_options  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import TokenProvider  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import resolve_cloud  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import O365Error, redact  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp import SmtpDisconnected, SmtpSession  # noqa: E402

# Options passed to _auth as they are; *_file options are read here so secrets never sit in the JSON.
AUTH_OPTIONS = ("tenant_id", "client_id", "certificate_path", "certificate_thumbprint_algorithm",
                "federated_token_file", "managed_identity", "managed_identity_client_id", "auth_method",
                "cloud", "authority_host", "ca_path")
SECRET_FILES = {"client_secret_file": "client_secret", "certificate_password_file": "certificate_password"}
DEFAULTS = {"listen_host": "127.0.0.1", "listen_port": 10587, "upstream_port": 587, "workers": 2,
            "renew_margin": 300, "idle_timeout": 60, "timeout": 60, "max_message_size": 36700160}
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


class Upstream(object):
    """Tokens and SMTP sessions toward Exchange Online for one mailbox."""

    def __init__(self, config):
        opts = config["auth"]
        self.cloud = resolve_cloud(opts.get("cloud") or "public", authority_host=opts.get("authority_host"),
                                   smtp_host=config.get("upstream_host") or None)
        config["upstream_host"] = self.cloud.smtp_host  # the cloud's host unless one was given
        self.credential = credential_from_options(opts, cloud=self.cloud)
        # Tokens must outlive the connection renewal margin, or Exchange answers 501 5.5.127.
        self.tokens = TokenProvider(self.credential, min_validity=max(600, config["renew_margin"] + 60))
        self.config = config

    def token(self, fresh=False):
        scope = self.cloud.exchange_scope
        if fresh:
            return self.credential.get_token(scope)
        return self.tokens.get_access_token(scope)

    def session(self):
        c = self.config
        return SmtpSession(c["upstream_host"], port=c["upstream_port"], secure="starttls",
                           ca_path=c["auth"].get("ca_path"), timeout=c["timeout"], ehlohost=c.get("ehlo_name"),
                           mailbox=c["mailbox"], token_source=self.token)

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

    def forward(self, mail_from, rcpt_tos, data, margin, idle_timeout):
        """(reply for Postfix: one for all recipients, or a dict recipient -> reply; upstream reply for the log).
        Runs in a thread: smtplib blocks."""
        for attempt in (1, 2):
            try:
                self._ready(margin, idle_timeout)
            except O365Error as exc:
                self.session.close()
                return _deferred(exc), _describe(exc)
            try:
                result = self.session.send(mail_from, rcpt_tos, data)
            except SmtpDisconnected as exc:
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
            finally:
                self.last_used = time.time()
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
        self.workers = asyncio.Queue()
        self.all_workers = [Worker(upstream) for _index in range(int(config["workers"]))]
        for worker in self.all_workers:
            self.workers.put_nowait(worker)
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=len(self.all_workers))

    async def handle_DATA(self, server, session, envelope):
        started = time.monotonic()
        data = envelope.original_content or envelope.content or b""
        rcpt_tos = list(envelope.rcpt_tos)
        worker = await self.workers.get()
        try:
            reply, upstream = await asyncio.get_running_loop().run_in_executor(
                self.executor, worker.forward, envelope.mail_from, rcpt_tos, data,
                self.config["renew_margin"], self.config["idle_timeout"])
        except Exception as exc:  # a bug must defer the mail, never lose it
            LOG.exception("internal error")
            reply = upstream = "451 4.3.0 relay internal error: %s" % type(exc).__name__
        finally:
            self.workers.put_nowait(worker)
        secrets = self.upstream.secrets()
        replies = [redact(line, secrets) for line in lmtp_replies(rcpt_tos, reply)]
        codes = sorted(set(line[:3] for line in replies))
        LOG.info("queue_id=%s from=<%s> rcpts=%d size=%d upstream=%r reply=%s secs=%.3f",
                 queue_id_of(data), envelope.mail_from, len(rcpt_tos), len(data),
                 redact(_one_line(upstream), secrets), ",".join(codes), time.monotonic() - started)
        return "\r\n".join(replies)

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

    def factory():
        # Loopback from Postfix only: no AUTH, no TLS. The size limit is Postfix's plus headroom.
        return LMTP(handler, hostname=config.get("ehlo_name") or "o365-smtp-proxy",
                    data_size_limit=int(config["max_message_size"]) + 1048576, enable_SMTPUTF8=True,
                    decode_data=False, timeout=int(config["timeout"]) + 30)
    return factory


async def serve(config, ready=None):
    """Run until cancelled. ready: an optional callback with the bound (host, port)."""
    upstream = Upstream(config)
    upstream.credential.validate()
    handler = ProxyHandler(config, upstream)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(make_server_factory(config, handler), config["listen_host"],
                                      int(config["listen_port"]))
    bound = server.sockets[0].getsockname()[:2]
    LOG.info("listening on %s:%s, upstream %s:%s as %s", bound[0], bound[1], config["upstream_host"],
             config["upstream_port"], config["mailbox"])
    if ready:
        ready(bound)
    reaper = asyncio.ensure_future(handler.reap_idle())
    try:
        async with server:
            await server.serve_forever()
    finally:
        reaper.cancel()
        for worker in handler.all_workers:
            worker.session.quit()
        handler.executor.shutdown(wait=False)


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--config", default="/etc/o365-smtp-proxy/proxy.json")
    parser.add_argument("--check", action="store_true", help="prove the credential and upstream AUTH, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(message)s")
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
