"""The relay's OAuth submission proxy against the emulated Exchange Online SMTP endpoint (tests/emulator,
aiosmtpd over STARTTLS, tokens verified against the emulated tenant) and real smtplib clients in place of Postfix.
The credential is a token the tenant issued for an app allowed to send as the mailbox, given as it is (the token
layer's own tests cover the identity platform), or a client secret where a test is about renewal; what is checked
here is what the proxy answers Postfix in every upstream situation. Refusals are Exchange's own (the endpoint's
checks, settings and faults)."""

import asyncio
import importlib.util
import json
import logging
import os
import smtplib
import threading

import pytest

from emulator import smtp_server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PROXY_PATH = os.path.join(ROOT, "roles", "relay", "files", "o365_smtp_proxy.py")
MAILBOX = "relay@contoso.onmicrosoft.com"
APP = "5e3ad7b0-1b8e-4a43-9d0c-7c1f4f1f0a01"  # the relay's app: allowed to send as MAILBOX (RBAC for Applications)
OTHER_APP = "9d4c2e61-7a3b-4f0e-8c55-2b6e1f0d9a72"  # a real token of this tenant, for an app with no grant
GRAPH = "https://graph.microsoft.com"


def load_proxy():
    spec = importlib.util.spec_from_file_location("o365_smtp_proxy", PROXY_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


proxy = load_proxy()


@pytest.fixture
def upstream(emulator, tenant):
    """The emulated Exchange SMTP endpoint, clean (no messages, faults or changed settings); APP may send as
    MAILBOX."""
    with smtp_server.clean_endpoint(emulator, allow=[(APP, MAILBOX)]) as server:
        yield server


@pytest.fixture
def own_upstream(emulator, tenant):
    """An endpoint of its own, for a test that takes it down (the shared one stays up for the other tests)."""
    server = smtp_server.start(emulator)
    server.allow(APP, MAILBOX)
    yield server
    server.stop()


def auths(tenant, **filters):
    """AUTH commands the endpoint answered (status=235: accepted), from the tenant's request log."""
    return tenant.log.count(part="smtp", verb="AUTH", **filters)


def secret_auth(emulator, server):
    """A client secret of a new app allowed to send as MAILBOX: the proxy asks the emulated token endpoint."""
    app = emulator.create_app("relay-proxy")
    server.allow(app["client_id"], MAILBOX)
    return {"auth_method": "client_secret", "tenant_id": emulator.tenant.tenant_id, "client_id": app["client_id"],
            "client_secret": app["client_secret"], "authority_host": emulator.url, "ca_path": emulator.ca_path}


class RunningProxy(object):
    def __init__(self, config):
        self.config = config
        self.bound = None
        ready = threading.Event()

        def run():
            self.loop = asyncio.new_event_loop()
            self.task = self.loop.create_task(proxy.serve(config, ready=lambda b: (setattr(self, "bound", b),
                                                                                   ready.set())))
            try:
                self.loop.run_until_complete(self.task)
            except (asyncio.CancelledError, Exception) as exc:
                self.error = exc
                ready.set()

        self.error = None
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        if self.error:
            raise self.error

    def send(self, sender="device@lan.example", rcpts=("bob@example.com",), body="Subject: hi\r\n\r\nbody\r\n",
             xforward=None):
        """The first recipient's reply to the data; all of them (LMTP: one per recipient) in self.replies."""
        where = (self.bound,) if isinstance(self.bound, str) else self.bound  # a unix socket, or (host, port)
        with smtplib.LMTP(*where, timeout=60) as client:
            client.ehlo("postfix.test")  # LMTP: sent as LHLO
            self.lhlo = client.ehlo_resp
            if xforward:  # as Postfix sends it with lmtp_send_xforward_command
                assert client.docmd("XFORWARD", xforward)[0] == 250
            client.mail(sender)
            for rcpt in rcpts:
                assert client.rcpt(rcpt)[0] == 250
            client.putcmd("data")
            assert client.getreply()[0] == 354
            client.send(body.encode() + b".\r\n")
            self.replies = [client.getreply() for _rcpt in rcpts]
            return self.replies[0]

    def stop(self):
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)


@pytest.fixture
def run_proxy(upstream):
    started = []

    def start(token=None, server=None, auth=None, **extra):
        """A proxy in front of server (default: upstream) with auth, else the given token, else a token for APP."""
        server = server or upstream
        if auth is None:
            token = token or server.app_token(APP)
            auth = {"auth_method": "access_token", "access_token": token, "ca_path": server.ca_path}
        config = proxy.DEFAULTS.copy()
        config.update({"mailbox": MAILBOX, "upstream_host": server.host, "upstream_port": server.port,
                       "listen_port": 0, "workers": 1, "auth": auth})
        config.update(extra)
        started.append(RunningProxy(config))
        started[-1].token = token
        return started[-1]

    yield start
    for running in started:
        running.stop()


RECEIVED = ("Received: from printer.lan (printer.lan [192.0.2.7])\r\n\tby relay1.lan (Postfix) with ESMTP id "
            "4XbQ2m0Jz9z9sWm\r\n\tfor <bob@example.com>; Wed, 25 Nov 2026 10:00:00 +0000\r\n")


def test_forwards_with_xoauth2_and_answers_with_the_upstream_reply(run_proxy, upstream, tenant, caplog):
    caplog.set_level(logging.INFO, logger="o365-smtp-proxy")
    running = run_proxy()
    code, text = running.send(sender=MAILBOX, rcpts=["bob@example.com", "eve@example.com"],
                              body=RECEIVED + "Subject: hi\r\n\r\nbody\r\n")
    assert code == 250 and ("Hostname=%s" % smtp_server.HOSTNAME).encode() in text
    assert auths(tenant, status=235) == 1
    [stored] = upstream.messages
    assert stored.mailbox == MAILBOX and stored.app_id == APP  # XOAUTH2 as the mailbox, with the app's token
    assert stored.mail_from == MAILBOX and stored.rcpt_tos == ["bob@example.com", "eve@example.com"]
    assert b"Subject: hi" in stored.raw
    line = [r.getMessage() for r in caplog.records if "queue_id=" in r.getMessage()][0]
    assert "queue_id=4XbQ2m0Jz9z9sWm" in line and "rcpts=2" in line and "reply=250" in line
    assert running.token not in caplog.text


def test_one_upstream_connection_is_reused_for_many_messages(run_proxy, upstream, tenant):
    running = run_proxy()
    for dummy in range(5):
        assert running.send(sender=MAILBOX)[0] == 250
    assert len(upstream.messages) == 5
    assert upstream.connections == 1 and auths(tenant) == 1


@pytest.mark.parametrize("credential", ["access_token", "client_secret"])
def test_reconnects_before_the_token_expires(run_proxy, upstream, emulator, tenant, credential):
    # Tokens live 700 s (Exchange takes them: more than its 600 s margin is left) and the proxy renews
    # connections 800 s before expiry: every message reconnects. With a client secret each new connection
    # authenticates with a token the token endpoint just issued.
    if credential == "access_token":
        running = run_proxy(token=upstream.app_token(APP, lifetime=700), renew_margin=800)
    else:
        tenant.tokens.lifetime = 700
        running = run_proxy(auth=secret_auth(emulator, upstream), renew_margin=800)
    for dummy in range(3):
        assert running.send(sender=MAILBOX)[0] == 250
    assert upstream.connections == 3 and auths(tenant, status=235) == 3 and len(upstream.messages) == 3
    issued = [e for e in tenant.log.entries(part="identity", status=200) if e["path"].endswith("/oauth2/v2.0/token")]
    assert len(issued) == (3 if credential == "client_secret" else 0)


def test_upstream_temporary_refusal_is_passed_through_so_postfix_retries(run_proxy, upstream):
    running = run_proxy()
    upstream.faults.add("DATA_END", "busy")  # Exchange's 451 4.7.500 to the data
    code, text = running.send(sender=MAILBOX)
    assert code == 451 and b"4.7.500" in text
    assert upstream.messages == [] and upstream.data_ends == 1


def test_upstream_permanent_refusal_is_passed_through(run_proxy, upstream):
    # The mailbox has no SendAs on this sender: the endpoint refuses at the end of the data, as Exchange does.
    running = run_proxy()
    code, text = running.send(sender="someone.else@contoso.onmicrosoft.com")
    assert code == 550 and b"5.7.60" in text
    assert upstream.messages == []


def test_refused_recipient_is_the_answer_when_no_recipient_was_accepted(run_proxy, upstream):
    running = run_proxy()
    upstream.settings.refuse_recipients = {"nobody@contoso.onmicrosoft.com"}
    code, text = running.send(sender=MAILBOX, rcpts=["nobody@contoso.onmicrosoft.com"])
    assert code == 550 and b"5.1.10" in text
    assert upstream.data_ends == 0


def test_each_recipient_gets_its_own_answer_when_exchange_refuses_some(run_proxy, upstream, caplog):
    caplog.set_level(logging.INFO, logger="o365-smtp-proxy")
    running = run_proxy()
    upstream.settings.refuse_recipients = {"nobody@contoso.onmicrosoft.com"}
    # The third recipient: RFC 5321's "452 too many recipients" with RFC 3463's X.5.3 (the first two pass).
    upstream.faults.add("RCPT", "reply", text="452 4.5.3 Too many recipients", skip=2)
    rcpts = ["bob@example.com", "nobody@contoso.onmicrosoft.com", "later@example.com"]
    running.send(sender=MAILBOX, rcpts=rcpts)
    codes = [code for code, _text in running.replies]
    assert codes == [250, 550, 452]
    assert b"5.1.10" in running.replies[1][1] and b"4.5.3" in running.replies[2][1]
    assert ("Hostname=%s" % smtp_server.HOSTNAME).encode() in running.replies[0][1]
    # Only the accepted recipient got the message; Postfix bounces the 550 and retries the 452 on its own.
    assert [m.rcpt_tos for m in upstream.messages] == [["bob@example.com"]]
    assert "reply=250,452,550" in caplog.text


def test_refused_authentication_defers_instead_of_bouncing(run_proxy, upstream, tenant):
    running = run_proxy()
    upstream.faults.add("AUTH", "reply", status=535)  # once: 535 5.7.3 Authentication unsuccessful
    code, text = running.send(sender=MAILBOX)
    assert 400 <= code < 500 and b"will retry" in text
    assert upstream.messages == [] and auths(tenant, status=535) == 1
    # Once the upstream accepts the credential again the same proxy delivers.
    assert running.send(sender=MAILBOX)[0] == 250


def test_token_failure_defers(run_proxy, upstream, tenant):
    # A real token of the tenant, for the wrong resource: the token layer refuses it before any AUTH.
    running = run_proxy(token=upstream.app_token(APP, audience=GRAPH))
    code, text = running.send(sender=MAILBOX)
    assert code == 451 and b"outlook.office365.com" in text
    assert auths(tenant) == 0


@pytest.mark.parametrize("down_while_sending", [True, False], ids=["down-while-sending", "dropped-while-idle"])
def test_upstream_outage_defers_then_a_new_connection_delivers(run_proxy, own_upstream, down_while_sending):
    running = run_proxy(server=own_upstream)
    assert running.send(sender=MAILBOX)[0] == 250
    port = own_upstream.port
    own_upstream.stop()  # also resets the proxy's idle upstream connection
    if down_while_sending:
        assert running.send(sender=MAILBOX)[0] == 451
    own_upstream.start(port=port)  # back on the same address
    assert running.send(sender=MAILBOX)[0] == 250
    before, after = own_upstream.messages
    assert own_upstream.connections == 2 and before.session_id != after.session_id


def test_load_config_reads_the_secret_from_its_file_and_names_missing_keys(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-value\n")
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps({"mailbox": MAILBOX, "upstream_host": "smtp.office365.com",
                                "tenant_id": "t", "client_id": "c", "client_secret_file": str(secret)}))
    config = proxy.load_config(str(path))
    assert config["auth"]["client_secret"] == "s3cr3t-value"
    assert config["listen_host"] == "127.0.0.1" and config["upstream_port"] == 587
    assert "s3cr3t" not in path.read_text()
    path.write_text(json.dumps({"upstream_host": "x"}))
    with pytest.raises(proxy.ConfigProblem, match="mailbox"):
        proxy.load_config(str(path))


def test_check_mode_proves_the_credential_or_explains(upstream):
    token = upstream.app_token(APP)
    base = {"mailbox": MAILBOX, "upstream_host": "127.0.0.1", "upstream_port": upstream.port}
    base.update(proxy.DEFAULTS, upstream_port=upstream.port)
    good = dict(base, auth={"auth_method": "access_token", "access_token": token, "ca_path": upstream.ca_path})
    assert proxy.check(good)[0] == 0
    bad_token = upstream.app_token(OTHER_APP)  # signed by the tenant; the app may not send as the mailbox
    bad = dict(base, auth={"auth_method": "access_token", "access_token": bad_token, "ca_path": upstream.ca_path})
    code, message = proxy.check(bad)
    assert code == 1 and "535" in message and bad_token not in message
    untrusted = dict(base, auth={"auth_method": "access_token", "access_token": token})
    code, message = proxy.check(untrusted)
    assert code == 1 and "ca_path" in message


def test_a_slow_forward_keeps_postfixs_connection_and_is_delivered_once(run_proxy, upstream):
    # The reproduction: each upstream reply well within its 2 s timeout, but 42 recipients at 0.8 s make
    # a 33.6 s forward, longer than the listener's idle timer (timeout + 30 s). The listener used to close
    # Postfix's connection while the upstream went on to accept the message: Postfix would send it again.
    running = run_proxy(timeout=2)
    delay = upstream.faults.add("RCPT", "delay", times=None, seconds=0.8)
    rcpts = ["r%d@example.com" % n for n in range(42)]
    running.send(sender=MAILBOX, rcpts=rcpts)
    assert [code for code, _text in running.replies] == [250] * 42 and delay["hits"] == 42
    assert len(upstream.messages) == 1 and len(upstream.messages[0].rcpt_tos) == 42


@pytest.mark.parametrize("timeout, deadline, rcpts, delay", [(2, 3, 4, 1.0), (3, 4, 2, 0.6)],
                         ids=["deadline-passes-during-rcpt", "no-time-left-after-354"])
def test_a_forward_that_cannot_finish_in_time_is_deferred_before_the_data_is_committed(
        run_proxy, upstream, tenant, timeout, deadline, rcpts, delay):
    # In the first case the deadline passes while RCPTs are answered; in the second DATA is answered 354 with
    # less time left than the final reply may need (timeout), so the data is not sent either. Every way this
    # can go (even on a loaded machine) ends in 451 with nothing committed.
    running = run_proxy(timeout=timeout, forward_deadline=deadline, lmtp_data_done_timeout=deadline + 5)
    upstream.faults.add("RCPT", "delay", times=None, seconds=delay)
    running.send(sender=MAILBOX, rcpts=["r%d@example.com" % n for n in range(rcpts)])
    assert [code for code, _text in running.replies] == [451] * rcpts
    assert b"deadline" in running.replies[0][1]
    assert upstream.messages == [] and upstream.data_ends == 0
    # DATA, if it went out at all, got no further than its 354 (the endpoint logs a command cut off with its last
    # reply; the entry may come a moment after the proxy's answer, hence no demand that it is there).
    assert [e["status"] for e in tenant.log.entries(part="smtp", verb="DATA")] in ([], [354])
    # Postfix retries: with a prompt upstream the same proxy delivers it, once.
    upstream.faults.clear()
    running.send(sender=MAILBOX, rcpts=["r%d@example.com" % n for n in range(rcpts)])
    assert [code for code, _text in running.replies] == [250] * rcpts
    assert len(upstream.messages) == 1


@pytest.mark.parametrize("settings", [{"forward_deadline": 700}, {"timeout": 400}],
                         ids=["deadline-beyond-postfix-wait", "reply-timeout-beyond-deadline"])
def test_deadline_settings_are_checked(tmp_path, settings):
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps(dict(settings, mailbox=MAILBOX)))
    with pytest.raises(proxy.ConfigProblem, match="timeout < forward_deadline < lmtp_data_done_timeout"):
        proxy.load_config(str(path))


def test_an_error_while_answering_defers_instead_of_bouncing(run_proxy, upstream, monkeypatch):
    # aiosmtpd answers an exception escaping the handler with "500 Error": Postfix would bounce the mail.
    running = run_proxy()

    def broken(*_args):
        raise RuntimeError("bug")
    monkeypatch.setattr(proxy, "lmtp_replies", broken)
    code, text = running.send(sender=MAILBOX)
    assert code == 451 and b"will retry" in text


def test_listens_on_a_unix_socket_only_its_group_may_open(run_proxy, upstream, tmp_path):
    path = str(tmp_path / "lmtp.sock")
    running = run_proxy(listen_socket=path)
    assert running.bound == path
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o660)
    assert running.send(sender=MAILBOX)[0] == 250 and len(upstream.messages) == 1


def test_relative_file_names_are_relative_to_the_configuration(tmp_path):
    (tmp_path / "client_secret").write_text("s3cr3t\n")
    (tmp_path / "upstream-ca.pem").write_text("not read here\n")
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps({"mailbox": MAILBOX, "tenant_id": "t", "client_id": "c",
                                "client_secret_file": "client_secret", "ca_path": "upstream-ca.pem"}))
    config = proxy.load_config(str(path))
    assert config["auth"]["client_secret"] == "s3cr3t"
    assert config["auth"]["ca_path"] == str(tmp_path / "upstream-ca.pem")


def test_a_file_the_proxy_cannot_read_is_named(tmp_path):
    # What the preflight prints when the service's sandbox hides a file (ProtectHome, PrivateTmp).
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps({"mailbox": MAILBOX, "tenant_id": "t", "client_id": "c",
                                "certificate_path": "/home/nowhere/relay.pem"}))
    with pytest.raises(proxy.ConfigProblem, match="certificate_path: cannot read /home/nowhere/relay.pem"):
        proxy.load_config(str(path))


def test_one_log_line_a_message_with_the_client_and_no_library_chatter(run_proxy, upstream):
    import io
    stream = io.StringIO()
    root = logging.getLogger()
    level, handler = root.level, proxy.configure_logging(stream)
    try:
        running = run_proxy()
        for n in range(5):
            running.send(sender=MAILBOX, rcpts=["bob@example.com", "eve@example.com"],
                         body=RECEIVED + "Subject: secret subject %d\r\n\r\nsecret body\r\n" % n,
                         xforward="NAME=printer.lan ADDR=192.0.2.7 PORT=40123 HELO=printer+2Elan PROTO=ESMTP")
        assert b"XFORWARD" in running.lhlo
        running.stop()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = stream.getvalue().splitlines()
    messages = [line for line in lines if "queue_id=" in line]
    assert len(messages) == 5, lines
    # Start, the five messages, stop: aiosmtpd's per-connection INFO lines and smtplib/msal chatter are gone.
    assert len(lines) == 7 and "listening on" in lines[0] and "stopping" in lines[-1], lines
    line = messages[0]
    for part in ("queue_id=4XbQ2m0Jz9z9sWm", "client=192.0.2.7", "helo=printer.lan", "from=<%s>" % MAILBOX,
                 "rcpts=2", "codes=250,250", "reply=250"):
        assert part in line, line
    assert "secret" not in stream.getvalue() and running.token not in stream.getvalue()


def test_xforward_with_an_unknown_attribute_is_refused(run_proxy, upstream):
    running = run_proxy()
    with smtplib.LMTP(*running.bound, timeout=30) as client:
        client.ehlo("postfix.test")
        assert client.docmd("XFORWARD", "EVIL=1")[0] == 501
        assert client.docmd("XFORWARD", "ADDR=192.0.2.7")[0] == 250
