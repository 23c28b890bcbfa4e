"""send_mail through ansible-playbook against the emulated tenant (token endpoint + Exchange SMTP endpoint)."""

import collections

import pytest

from emulator import smtp_server
from helpers.playbook import play, run_playbook

MAILBOX = "app@contoso.onmicrosoft.com"


@pytest.fixture
def smtp(emulator, tenant):
    with smtp_server.clean_endpoint(emulator, allow=[(emulator.admin.client_id, MAILBOX)]) as server:
        yield server


def task(**args):
    args.setdefault("sender", "Bot <%s>" % MAILBOX)
    args.setdefault("to", ["bob@example.com"])
    args.setdefault("subject", "hello")
    return {"name": "send", "o365.smtp_oauth.send_mail": args}


def smtp_writes(tenant, mark):
    return [e for e in tenant.log.since(mark) if e.get("part") == "smtp" and e.get("verb") == "DATA"]


def test_plain_message(emulator, smtp):
    [result], output = play(emulator, smtp=smtp, tasks=[task(body="All hosts updated.")])
    assert result["changed"] and result["sent_count"] == 1 and result["failed_count"] == 0
    [stored] = smtp.messages
    msg = stored.parsed()
    assert msg["From"] == "Bot <%s>" % MAILBOX and msg.get_content().strip() == "All hosts updated."
    assert stored.app_id == emulator.admin.client_id and stored.mailbox == MAILBOX
    assert result["message_id"] == msg["Message-ID"]


def test_html_with_text_alternative_attachments_cc_bcc(emulator, smtp, tmp_path):
    report = tmp_path / "report.csv"
    report.write_text("host,state\nweb1,ok\n")
    tasks = [task(body="text version", body_html="<h1>html version</h1>", cc=["Carol <carol@example.com>"],
                  bcc=["audit@example.com"], attach=[str(report)])]
    [result], output = play(emulator, smtp=smtp, tasks=tasks)
    assert result["sent_count"] == 1
    [stored] = smtp.messages
    msg = stored.parsed()
    assert stored.rcpt_tos == ["bob@example.com", "carol@example.com", "audit@example.com"]
    assert msg["Cc"] == "Carol <carol@example.com>" and "Bcc" not in msg and b"audit@example.com" not in stored.raw
    body = msg.get_body(("html",))
    assert "html version" in body.get_content()
    assert msg.get_body(("plain",)).get_content().strip() == "text version"
    assert [a.get_filename() for a in msg.iter_attachments()] == ["report.csv"]


def test_bulk_over_one_connection(emulator, smtp, tenant):
    mark = tenant.log.mark()
    messages = [{"to": ["user%d@example.com" % i], "subject": "report %d" % i} for i in range(25)]
    [result], output = play(emulator, smtp=smtp, tasks=[task(messages=messages, rate_limit=0)])
    assert result["sent_count"] == 25 and result["connections"] == 1
    assert [m.rcpt_tos[0] for m in smtp.messages] == ["user%d@example.com" % i for i in range(25)]
    assert sum(1 for e in tenant.log.since(mark) if e.get("part") == "smtp" and e.get("verb") == "AUTH") == 1


def test_check_mode_sends_nothing(emulator, smtp, tenant):
    mark = tenant.log.mark()
    [result], output = play(emulator, smtp=smtp, tasks=[task()], check=True)
    assert result["changed"] and result["messages"][0]["status"] == "check_mode"
    assert smtp.messages == [] and smtp_writes(tenant, mark) == []
    verbs = [e["verb"] for e in tenant.log.since(mark) if e.get("part") == "smtp"]
    assert "AUTH" in verbs and "QUIT" in verbs and "MAIL" not in verbs


@pytest.mark.parametrize("case, code, words", [
    ("no_permission", "5.7.3", "SMTP.SendAsApp"),
    ("send_as", "5.7.60", "SendAs"),
    ("quota", "5.2.0", "quota"),
    ("smtp_auth_off", "5.7.139", "SMTP AUTH"),
])
def test_each_failure_is_diagnosed(emulator, smtp, tenant, case, code, words):
    args = {}
    if case == "smtp_auth_off":
        # The tenant-wide switch (Set-TransportConfig -SmtpClientAuthenticationDisabled $true), mailbox inherits.
        tenant.exchange.transport_config["SmtpClientAuthenticationDisabled"] = True
    elif case == "no_permission":
        args["sender"] = "nobody@contoso.onmicrosoft.com"
    elif case == "send_as":
        args["sender"] = "sales@contoso.onmicrosoft.com"
        args["mailbox"] = MAILBOX
    elif case == "quota":
        smtp.settings.recipients_per_day = 1
        args["to"] = ["a@example.com", "b@example.com"]
    [result], output = play(emulator, smtp=smtp, tasks=[task(**args)])
    assert result["failed"], result
    text = str(result.get("msg")) + str(result.get("error_fix")) + str(result.get("messages"))
    assert code in text and words.lower() in text.lower()
    assert "Traceback" not in text
    if case == "no_permission":
        # Read from the token's claims (the module's claims decoder): which app, so the user knows whose rights.
        assert "app %s in tenant" % emulator.admin.client_id in text, text


@pytest.mark.parametrize("refused", [["ghost@example.com"], ["ghost@example.com", "bob@example.com"]])
def test_refused_recipient_with_fail_on_refused_false_leaves_the_task_ok(emulator, smtp, refused):
    # Issue 12, bug 1: a count called `failed` in the result made Ansible fail the task ("Unknown error").
    smtp.settings.refuse_recipients = set(refused)
    run = run_playbook(emulator, [task(to=["bob@example.com", "ghost@example.com"], fail_on_refused=False),
                                  {"name": "after", "debug": {"msg": "still running"}}],
                       env={"O365_SMTP_HOST": smtp.host, "O365_SMTP_PORT": str(smtp.port)})
    result = run.task("send")
    assert run.rc == 0 and not result.get("failed") and run.task("after")["msg"] == "still running", run.output
    [message] = result["messages"]
    assert "ghost@example.com" in message["refused"] and "5.1.10" in str(message["refused"])
    everyone_refused = len(refused) == 2
    assert message["status"] == ("refused" if everyone_refused else "sent")
    assert result["sent_count"] == (0 if everyone_refused else 1)
    assert result["failed_count"] == (1 if everyone_refused else 0)
    assert result["changed"] is (not everyone_refused)
    assert "Unknown error" not in run.output


def test_refused_recipient_fails_the_task_by_default(emulator, smtp):
    smtp.settings.refuse_recipients = {"ghost@example.com"}
    [result], output = play(emulator, smtp=smtp, tasks=[task(to=["bob@example.com", "ghost@example.com"])])
    assert result["failed"] is True and "ghost@example.com" in result["msg"] and "5.1.10" in result["msg"]
    assert result["sent_count"] == 1 and len(smtp.messages) == 1


def test_header_injection_refused_before_connecting(emulator, smtp, tenant):
    mark = tenant.log.mark()
    [result], output = play(emulator, smtp=smtp, tasks=[task(subject="hi\nBcc: victim@example.com")])
    assert result["failed"] and result.get("option") == "subject" and "line break" in result["msg"]
    assert [e for e in tenant.log.since(mark) if e.get("part") == "smtp"] == []


def test_dropped_connection_mid_bulk_no_duplicate_no_loss(emulator, smtp):
    smtp.faults.add("MAIL", "drop", times=1)
    smtp.faults.add("DATA", "close", times=1)
    messages = [{"to": ["user%d@example.com" % i]} for i in range(8)]
    [result], output = play(emulator, smtp=smtp, tasks=[task(messages=messages, rate_limit=0, retry_delay=0.05)])
    assert result["sent_count"] == 8 and result["connections"] == 3
    counts = collections.Counter(m.message_id for m in smtp.messages)
    assert sorted(counts) == sorted(m["message_id"] for m in result["messages"]) and set(counts.values()) == {1}


def test_busy_server_is_retried(emulator, smtp):
    smtp.faults.add("MAIL", "busy", times=2)
    [result], output = play(emulator, smtp=smtp, tasks=[task(retry_delay=0.05)])
    assert result["sent_count"] == 1 and result["messages"][0]["attempts"] == 3 and result["retry_count"] == 2


def test_secret_never_in_verbose_output(emulator, smtp):
    sentinel_secret = emulator.admin.client_secret
    [result], output = play(emulator, smtp=smtp, tasks=[task(debug=True)], verbosity=4)
    assert result["sent_count"] == 1
    assert sentinel_secret not in output
    assert "eyJ" not in output  # no JWT (header of every token) at -vvvv, including the SMTP transcript
    assert "\"send: 'AUTH XOAUTH2\\\\r\\\\n'\"" in output and "\"send: '********\\\\r\\\\n'\"" in output


def test_concurrent_connections_4_3_2_backoff(emulator, smtp, tenant):
    tenant.faults.add("smtp", match="MAIL", kind="status", status=432, times=1)
    [result], output = play(emulator, smtp=smtp, tasks=[task(retry_delay=0.05)])
    assert result["sent_count"] == 1 and result["messages"][0]["attempts"] == 2 and result["connections"] == 2
    assert len(smtp.messages) == 1


def test_token_renewed_during_a_long_send(emulator, smtp, tenant):
    # Short-lived tokens (6 s, renewed 1.5 s before expiry) and a slow server (1 s per message): the module must
    # reconnect with a new token before the old one expires, without losing or repeating a message.
    tenant.tokens.lifetime = 6
    smtp.settings.expiry_margin = 0  # Exchange's margin is minutes; here the lifetime itself is seconds
    tenant.faults.add("smtp", match="DATA_END", kind="delay", seconds=1.0, times=None)
    mark = tenant.log.mark()
    messages = [{"to": ["user%d@example.com" % i]} for i in range(8)]
    [result], output = play(emulator, smtp=smtp, tasks=[task(messages=messages, rate_limit=0)])
    assert result["sent_count"] == 8 and result["token_renewals"] >= 1 and result["connections"] >= 2
    auths = [e for e in tenant.log.since(mark) if e.get("part") == "smtp" and e.get("verb") == "AUTH"]
    assert len(auths) >= 2 and all(e["status"] == 235 for e in auths)
    assert sorted(m.message_id for m in smtp.messages) == sorted(m["message_id"] for m in result["messages"])


def test_secure_never_sends_to_a_plain_relay_and_says_the_credential_is_not_used(emulator, smtp):
    """A real aiosmtpd relay without TLS or AUTH (an internal relay on the LAN): the mail goes, no AUTH is tried,
    and the task warns that the admin credential in the environment was not used."""
    import socket

    from aiosmtpd.controller import Controller

    received = []

    class Relay:
        async def handle_DATA(self, server, session, envelope):
            received.append((envelope.mail_from, list(envelope.rcpt_tos)))
            return "250 2.0.0 queued"

        async def handle_AUTH(self, *args):
            received.append("AUTH")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    relay = Controller(Relay(), hostname="127.0.0.1", port=port)
    relay.start()
    try:
        [result], output = play(emulator, smtp=smtp, tasks=[task(secure="never", host="127.0.0.1", port=port)])
    finally:
        relay.stop()
    assert result["changed"] and result["sent_count"] == 1, result.get("msg")
    assert received == [(MAILBOX, ["bob@example.com"])]
    assert any("secure is never" in w and "not used" in w for w in result.get("warnings", [])), result
