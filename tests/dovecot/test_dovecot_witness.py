"""send_mail and the relay's proxy against a mail server nobody here wrote: Dovecot's submission service checks
the emulated tenant's tokens itself (signature, issuer, expiry, login name) and refuses a token on the AUTH line
(`500 5.5.2 Line too long`). Each test reads what Dovecot logged and what reached its relay sink."""

import json
import os
import smtplib
import subprocess
import sys
import time

from conftest import MAILBOX
from helpers.playbook import ROOT, base_env, run_playbook

PROXY = os.path.join(ROOT, "roles", "relay", "files", "o365_smtp_proxy.py")


def send_task(**args):
    args.setdefault("sender", "Bot <%s>" % MAILBOX)
    args.setdefault("to", ["bob@example.com"])
    args.setdefault("subject", "through dovecot")
    return {"name": "send", "o365.smtp_oauth.send_mail": args}


def play(emulator, dovecot, tasks, verbosity=0):
    run = run_playbook(emulator, tasks, verbosity=verbosity,
                       env={"O365_SMTP_HOST": "127.0.0.1", "O365_SMTP_PORT": str(dovecot.port)})
    return run.results, run.output


def secrets(emulator):
    return [emulator.admin.client_secret]


def assert_no_secret(text, emulator, tokens=()):
    for secret in list(secrets(emulator)) + list(tokens):
        assert secret not in text
    assert "eyJ0eXAi" not in text and "eyJhbGci" not in text  # no JWT header


def test_send_mail_delivers_one_message_then_a_bulk_over_one_connection_through_dovecot(emulator, dovecot):
    bulk = [{"to": ["user%d@example.com" % i], "subject": "report %d" % i} for i in range(20)]
    [one, many], output = play(emulator, dovecot, [send_task(body="checked by Dovecot", debug=True),
                                                   send_task(messages=bulk, rate_limit=0)], verbosity=3)
    assert one["sent_count"] == 1 and many["sent_count"] == 20 and many["connections"] == 1, (one, many)
    first, rest = dovecot.sink.messages[0], dovecot.sink.messages[1:]
    assert first.mail_from == MAILBOX and first.rcpt_tos == ["bob@example.com"]
    assert b"checked by Dovecot" in first.original_content
    assert [m.rcpt_tos for m in rest] == [["user%d@example.com" % i] for i in range(20)]
    logins = dovecot.logins(dovecot.mark)
    assert len(logins) == 2 and all("user=<%s>" % MAILBOX in line and "TLS" in line for line in logins)
    log = dovecot.log()[dovecot.mark:]
    assert log.count("Successfully relayed message") == 21 and "Line too long" not in log
    assert_no_secret(output, emulator)
    assert_no_secret(dovecot.log(), emulator)


def test_wrong_token_gets_dovecots_failure_path_and_a_clear_diagnosis(emulator, dovecot, tenant):
    good = tenant.tokens.issue(emulator.admin.client_id, audience="https://outlook.office365.com")
    head, payload, signature = good.split(".")
    forged = ".".join([head, payload, signature[:-8] + ("A" * 8 if signature[-8:] != "A" * 8 else "B" * 8)])
    [result], output = play(emulator, dovecot, [send_task(access_token=forged, auth_method="access_token")],
                            verbosity=3)
    assert result["failed"] and dovecot.sink.messages == []
    message = result["msg"]
    # Dovecot: 334 <base64 {"status":"401","schemes":"bearer","scope":"mail"}>, empty line, 535 5.7.8.
    assert "535 5.7.8" in message and "status 401, scope mail" in message, message
    assert "Exchange Online answers 5.7.3" in message and "Line too long" not in message
    assert "Local validation failed" in dovecot.log()[dovecot.mark:] and dovecot.logins(dovecot.mark) == []
    assert_no_secret(output, emulator, tokens=[good, forged, signature])
    assert_no_secret(dovecot.log(), emulator, tokens=[good, forged])


class Proxy(object):
    """The relay's proxy as the role runs it: its own process, its JSON configuration, the secret in a file."""

    def __init__(self, emulator, dovecot, folder):
        secret_file = folder / "client-secret"
        secret_file.write_text(emulator.admin.client_secret)
        secret_file.chmod(0o600)
        self.config = folder / "proxy.json"
        self.config.write_text(json.dumps({
            "mailbox": MAILBOX, "tenant_id": emulator.tenant.tenant_id, "client_id": emulator.admin.client_id,
            "client_secret_file": str(secret_file), "authority_host": emulator.url, "ca_path": emulator.ca_path,
            "upstream_host": "127.0.0.1", "upstream_port": dovecot.port, "listen_port": 0, "workers": 1}))
        self.env = base_env()
        self.log = folder / "proxy.log"

    def check(self):
        return subprocess.run([sys.executable, PROXY, "--config", str(self.config), "--check"], env=self.env,
                              capture_output=True, text=True, timeout=60, check=False)

    def __enter__(self):
        self.handle = open(self.log, "w")
        self.process = subprocess.Popen([sys.executable, PROXY, "--config", str(self.config)], env=self.env,
                                        stdout=self.handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            for line in self.log.read_text().splitlines():
                if "listening on" in line:
                    host, port = line.split("listening on ", 1)[1].split(",", 1)[0].rsplit(":", 1)
                    self.bound = (host, int(port))
                    return self
            time.sleep(0.05)
        raise AssertionError("the proxy did not start: %s" % self.log.read_text())

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(10)
        self.handle.close()


def test_relay_proxy_delivers_through_dovecot(emulator, dovecot, tmp_path):
    proxy = Proxy(emulator, dovecot, tmp_path)
    checked = proxy.check()
    assert checked.returncode == 0 and "accepted it for %s" % MAILBOX in checked.stdout, checked
    with proxy:
        with smtplib.LMTP(*proxy.bound, timeout=30) as client:  # in place of Postfix
            client.ehlo("postfix.test")
            for i in range(2):
                client.mail("printer@lan.example")
                assert client.rcpt("bob@example.com")[0] == 250
                client.putcmd("data")
                assert client.getreply()[0] == 354
                client.send(b"From: %s\r\nSubject: via proxy %d\r\n\r\nscan\r\n.\r\n" % (MAILBOX.encode(), i))
                code, reply = client.getreply()
                assert code == 250 and b"stored by the sink" in reply, (code, reply)
    assert [m.mail_from for m in dovecot.sink.messages] == ["printer@lan.example"] * 2
    assert [b"via proxy %d" % i in m.original_content for i, m in enumerate(dovecot.sink.messages)] == [True] * 2
    assert len(dovecot.logins(dovecot.mark)) == 2  # the preflight's, then the proxy's one reused connection
    assert_no_secret(proxy.log.read_text() + checked.stdout + checked.stderr, emulator)
    assert_no_secret(dovecot.log(), emulator)
