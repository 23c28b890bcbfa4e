"""A local STARTTLS + XOAUTH2 SMTP server (real aiosmtpd, throw-away CA from trustme) standing in for Exchange
Online in the proxy's unit tests: it checks the XOAUTH2 string, keeps what it received and can be told to
answer like Exchange does when it refuses (replies queued per verb)."""

import asyncio
import base64
import ssl
import threading
import uuid
from collections import defaultdict, deque

import jwt
import trustme
from aiosmtpd.smtp import SMTP, AuthResult

AUDIENCE = "https://outlook.office365.com"


def make_token(lifetime=3600, audience=AUDIENCE, appid="11111111-2222-3333-4444-555555555555"):
    """A JWT shaped like an Exchange app-only token (signature irrelevant: the proxy only decodes it)."""
    import time
    now = int(time.time())
    return jwt.encode({"jti": uuid.uuid4().hex, "aud": audience, "appid": appid, "roles": ["SMTP.SendAsApp"], "iat": now, "nbf": now,
                       "exp": now + lifetime}, "k" * 32, algorithm="HS256")


class _Handler(object):
    def __init__(self, server):
        self.server = server

    async def auth_XOAUTH2(self, smtp, args):
        try:
            if len(args) > 1:
                text = base64.b64decode(args[1]).decode()
            else:  # the response after 334 (RFC 4954), decoded by aiosmtpd
                answer = await smtp.challenge_auth("", encode_to_b64=False)
                text = answer.decode() if isinstance(answer, bytes) else ""
            user, auth = text.split("\x01")[:2]
            user, token = user[len("user="):], auth[len("auth=Bearer "):]
        except (ValueError, IndexError):
            return AuthResult(success=False, handled=False, message="501 5.5.124 Invalid XOAUTH2 auth data")
        self.server.auths.append((user, token))
        if self.server.pop_reply("AUTH") or token not in self.server.tokens:
            return AuthResult(success=False, handled=False, message="535 5.7.3 Authentication unsuccessful")
        return AuthResult(success=True, auth_data=user)

    async def handle_MAIL(self, smtp, session, envelope, address, options):
        reply = self.server.pop_reply("MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, smtp, session, envelope, address, options):
        await asyncio.sleep(self.server.delays.get("RCPT", 0))
        reply = self.server.pop_reply("RCPT") or "250 2.1.5 Recipient OK"
        if reply[:1] == "2":
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, smtp, session, envelope):
        self.server.data_ends += 1  # the whole message, final dot included, arrived
        await asyncio.sleep(self.server.delays.get("DATA", 0))
        reply = self.server.pop_reply("DATA")
        if reply:
            return reply
        self.server.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 OK <%d@upstream> [Hostname=upstream.test]" % len(self.server.messages)


class Upstream(object):
    """start() -> host, port, ca_path; messages, auths, connections, data_ends; reply(verb, text, times);
    delays[verb] = seconds before answering RCPT, or the final reply to the data (DATA): a slow Exchange."""

    def __init__(self, tmp_path, like=None):
        """like: an earlier Upstream whose CA, certificate and accepted tokens this one takes over."""
        if like is not None:
            self.ca, self.ca_path, self.context, self.tokens = like.ca, like.ca_path, like.context, like.tokens
        else:
            self.ca = trustme.CA()
            self.ca_path = str(tmp_path / "upstream-ca.pem")
            self.ca.cert_pem.write_to_path(self.ca_path)
            self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(self.context)
            self.tokens = set()
        self.messages, self.auths = [], []
        self.connections = 0
        self.data_ends = 0
        self.delays = {}
        self.host, self.port = "127.0.0.1", None
        self._replies = defaultdict(deque)
        self._loop = None
        self._server = None
        self._stopped = False

    def reply(self, verb, text, times=1):
        self._replies[verb].extend([text] * times)

    def pop_reply(self, verb):
        queue = self._replies[verb]
        return queue.popleft() if queue else None

    def _factory(self):
        self.connections += 1
        smtp = SMTP(_Handler(self), hostname="upstream.test", tls_context=self.context, require_starttls=True,
                    auth_require_tls=True, auth_required=True, auth_exclude_mechanism=["LOGIN", "PLAIN"])
        smtp.command_size_limits["AUTH"] = 16384  # XOAUTH2 lines carry 2-7 KB tokens
        return smtp

    def start(self, port=0):
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(self._loop.create_server(self._factory, self.host, port))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self

    def stop(self):
        """Stop listening (existing sessions are closed too): the upstream is down."""
        if self._loop is None or self._stopped:
            return
        self._stopped = True

        async def close():
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
