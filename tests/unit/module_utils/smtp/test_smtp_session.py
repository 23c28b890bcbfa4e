"""_smtp.session and _smtp.sender against the emulated Exchange SMTP endpoint (a real aiosmtpd server over TLS)."""

import collections
import socket
import threading
import time

import pytest
import trustme
from aiosmtpd.controller import Controller

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError, ConfigError, SmtpError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.message import build_message
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.session import (
    SmtpDisconnected, SmtpSession, xoauth2_base64, xoauth2_string)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.sender import BulkSender, RateLimiter
from emulator import smtp_server

MAILBOX = "app@contoso.onmicrosoft.com"
APP = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
Token = collections.namedtuple("Token", "token expires_on")


def test_xoauth2_golden_vector():
    # The example of the XOAUTH2 specification (Google's "OAuth 2.0 Mechanism" page), byte for byte.
    raw = xoauth2_string("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    assert raw == "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
    assert xoauth2_base64("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg") == (
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZ"
        "Mjl0Q2cBAQ==")


@pytest.mark.parametrize("mailbox, token, option", [
    ("a@b.com\x01x", "tok", "mailbox"), ("a@b.com\r\n", "tok", "mailbox"), ("a@b.com", "", "access_token"),
    ("a@b.com", "tok\x01en", "access_token"),
])
def test_xoauth2_refuses_control_characters(mailbox, token, option):
    with pytest.raises(ConfigError) as exc:
        xoauth2_string(mailbox, token)
    assert exc.value.option == option


@pytest.fixture
def smtp(emulator, tenant):
    with smtp_server.clean_endpoint(emulator, allow=[(APP, MAILBOX)]) as server:
        yield server


def token_source(server, lifetime=3600, calls=None):
    def source():
        if calls is not None:
            calls.append(time.time())
        return Token(server.app_token(APP, lifetime=lifetime), time.time() + lifetime)
    return source


def session(server, **kw):
    kw.setdefault("token_source", token_source(server))
    kw.setdefault("ca_path", server.ca_path)
    kw.setdefault("mailbox", MAILBOX)
    kw.setdefault("timeout", 10)
    return SmtpSession(server.host, kw.pop("port", server.port), **kw)


def msg(i=0, **kw):
    spec = {"sender": MAILBOX, "to": ["bob@example.com"], "subject": "n%d" % i}
    spec.update(kw)
    return build_message(spec)


def delivered_ids(server):
    return collections.Counter(m.message_id for m in server.messages)


def test_send_with_per_recipient_results(smtp):
    smtp.settings.refuse_recipients = {"ghost@contoso.onmicrosoft.com"}
    built = msg(to=["bob@example.com", "ghost@contoso.onmicrosoft.com"], bcc=["carol@example.com"])
    with session(smtp).open() as s:
        result = s.send(built.envelope_from, built.recipients, built.data, built.message_id)
    assert result.status == "sent" and result.code == 250
    assert result.accepted == ["bob@example.com", "carol@example.com"]
    assert list(result.refused) == ["ghost@contoso.onmicrosoft.com"]
    assert result.refused["ghost@contoso.onmicrosoft.com"][0] == 550
    [stored] = smtp.messages
    assert stored.rcpt_tos == ["bob@example.com", "carol@example.com"] and stored.message_id == built.message_id


def test_implicit_tls(smtp):
    built = msg()
    with session(smtp, port=smtp.tls_port, secure="always").open() as s:
        assert s.send(built.envelope_from, built.recipients, built.data).status == "sent"


def test_untrusted_certificate_is_refused_before_auth(smtp, tmp_path, tenant):
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    calls = []
    s = session(smtp, ca_path=str(other), token_source=token_source(smtp, calls=calls))
    with pytest.raises(SmtpError) as exc:
        s.open()
    assert exc.value.option == "ca_path" and "could not be verified" in exc.value.message and exc.value.code == "tls_failed"
    assert calls == []  # no token was even asked for


def test_certificate_for_another_name_names_host_not_ca_path(smtp):
    # "127.1" reaches the server (inet_aton's short form of 127.0.0.1), whose certificate, signed by the trusted
    # CA, names 127.0.0.1 and localhost only: host is what is wrong.
    calls = []
    s = SmtpSession("127.1", smtp.port, ca_path=smtp.ca_path, mailbox=MAILBOX, timeout=10,
                    token_source=token_source(smtp, calls=calls))
    with pytest.raises(SmtpError) as exc:
        s.open()
    assert exc.value.option == "host" and exc.value.code == "tls_name_mismatch"
    assert "127.1" in exc.value.message and "another name" in exc.value.message
    assert calls == []


def test_no_starttls_means_no_auth_and_no_clear_text(tmp_path):
    # A real aiosmtpd server without TLS: the session must stop before AUTH, never downgrade.
    seen = []

    class Handler:
        async def handle_AUTH(self, *args):
            seen.append("AUTH")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    try:
        s = SmtpSession("127.0.0.1", port, token_source=lambda: "tok", mailbox=MAILBOX, timeout=5)
        with pytest.raises(SmtpError) as exc:
            s.open()
        assert exc.value.code == "no_starttls" and exc.value.option == "secure"
        assert seen == [] and not s.connected
    finally:
        controller.stop()


def test_plain_connection_cannot_carry_a_token():
    with pytest.raises(ConfigError) as exc:
        SmtpSession("127.0.0.1", 25, secure="never", token_source=lambda: "tok")
    assert exc.value.option == "secure"


def test_on_the_wire_the_token_follows_334_on_a_line_of_its_own(smtp):
    # What the server received, line by line (the emulator records it), as curl's SMTP tests check it.
    smtp.settings.record_wire = True
    source = token_source(smtp)
    issued = []
    s = session(smtp, ehlohost="client.test", token_source=lambda: issued.append(source()) or issued[-1])
    s.open()
    built = msg()
    s.send(built.envelope_from, built.recipients, built.data)
    s.quit()
    lines = smtp.wire_lines()
    assert [command(line) for line in lines[:4]] == [("EHLO", "client.test"), ("STARTTLS", ""),
                                                     ("EHLO", "client.test"), ("AUTH", "XOAUTH2")]
    assert lines[4] == xoauth2_base64(MAILBOX, issued[0].token)  # data, not a command: exact
    assert command(lines[5])[0] == "MAIL FROM" and command(lines[5])[1].startswith("<%s>" % MAILBOX)
    assert [command(line) for line in lines[6:8]] == [("RCPT TO", "<bob@example.com>"), ("DATA", "")]
    assert lines[-2] == "." and command(lines[-1]) == ("QUIT", "") and len(smtp.messages) == 1


def command(line):
    """(verb, arguments) of an SMTP command line, the verb upper-cased: RFC 5321 (2.4) makes verbs
    case-insensitive, and smtplib's spelling differs between releases (Python 3.13: "mail from:", before:
    "mail FROM:"). Arguments keep their case (a mailbox's local part may be case-sensitive)."""
    head, sep, rest = line.partition(":")
    if sep and head.upper() in ("MAIL FROM", "RCPT TO"):
        return head.upper(), rest
    verb, rest = (line.split(" ", 1) + [""])[:2]
    return verb.upper(), rest


@pytest.mark.parametrize("raw_length, one_line", [(372, True), (373, False)])
def test_initial_response_rides_on_the_auth_line_only_when_the_line_fits_512_octets(smtp, raw_length, one_line):
    # 372 raw octets -> 496 base64 -> "AUTH XOAUTH2 " + 496 + CRLF = 511 octets; one more octet -> 500 -> 515.
    smtp.settings.record_wire = True
    token = "x" * (raw_length - len("user=%s\x01auth=Bearer \x01\x01" % MAILBOX))
    assert len(xoauth2_string(MAILBOX, token)) == raw_length
    s = session(smtp, token_source=lambda: token)
    with pytest.raises(SmtpError) as exc:
        s.open()  # not a token the tenant signed: refused, whichever way it was sent
    assert (exc.value.smtp_code, exc.value.enhanced_code) == (535, "5.7.3")
    blob = xoauth2_base64(MAILBOX, token)
    auth = [line for line in smtp.wire_lines() if line.startswith("AUTH")]
    if one_line:
        assert auth == ["AUTH XOAUTH2 " + blob] and len(auth[0]) + 2 <= 512
    else:
        assert auth == ["AUTH XOAUTH2"] and blob in smtp.wire_lines()


def test_auth_refusal_is_diagnosed_from_the_claims(smtp):
    s = session(smtp, mailbox="other@contoso.onmicrosoft.com")
    with pytest.raises(SmtpError) as exc:
        s.open()
    err = exc.value
    assert (err.smtp_code, err.enhanced_code, err.stage) == (535, "5.7.3", "auth")
    assert "Application SMTP.SendAsApp" in err.message and APP in err.message
    assert "exchange_smtp_access" in err.fix


def test_transcript_never_holds_the_token(smtp):
    source = token_source(smtp)
    tokens = []
    s = session(smtp, transcript=True, token_source=lambda: tokens.append(source()) or tokens[-1])
    s.open()
    built = msg()
    s.send(built.envelope_from, built.recipients, built.data)
    s.quit()
    text = "\n".join(s.transcript)
    # RFC 4954: the token is too long for the AUTH line, so it follows the 334 on a line of its own.
    sent = [line for line in s.transcript if line.startswith("send:")]
    assert sent[3:5] == ["send: 'AUTH XOAUTH2\\r\\n'", "send: '********\\r\\n'"] and "235" in text
    assert tokens[0].token not in text and xoauth2_base64(MAILBOX, tokens[0].token) not in text
    assert tokens[0].token.split(".")[1] not in text


def test_bulk_over_one_connection(smtp):
    messages = [msg(i) for i in range(40)]
    s = session(smtp)
    sender = BulkSender(s, rate_limit=0)
    results = sender.send_all(messages)
    s.quit()
    assert [r["status"] for r in results] == ["sent"] * 40
    assert s.connects == 1
    assert delivered_ids(smtp) == collections.Counter(m.message_id for m in messages)


def test_dropped_connection_mid_bulk_no_duplicate_no_loss(smtp):
    messages = [msg(i) for i in range(10)]
    smtp.faults.add("MAIL", "drop", times=1)       # lost before the message started
    smtp.faults.add("RCPT", "close", times=1)      # 421 then disconnect
    smtp.faults.add("DATA", "drop", times=1)       # lost at the DATA command
    sleeps = []
    s = session(smtp)
    sender = BulkSender(s, rate_limit=0, retries=3, retry_delay=0.01, sleep=sleeps.append)
    results = sender.send_all(messages)
    s.quit()
    assert [r["status"] for r in results] == ["sent"] * 10
    assert delivered_ids(smtp) == collections.Counter(m.message_id for m in messages)  # each exactly once
    assert s.connects == 4 and len(sleeps) == 3


def test_drop_in_the_middle_of_data_is_resent_once(smtp):
    # Large enough that the server resets the connection before the client handed over the final dot.
    small = msg(1)
    payload = build_message({"sender": MAILBOX, "to": ["bob@example.com"], "subject": "big",
                             "body": ("0123456789" * 7 + "\n") * 120000})
    smtp.faults.add("DATA", "drop_in_data", times=1)
    s = session(smtp)
    sender = BulkSender(s, rate_limit=0, retry_delay=0.01, sleep=lambda d: None)
    results = sender.send_all([payload, small])
    s.quit()
    assert [r["status"] for r in results] == ["sent", "sent"]
    assert results[0]["attempts"] == 2
    assert delivered_ids(smtp) == collections.Counter([payload.message_id, small.message_id])


def test_drop_after_commit_is_never_sent_twice(smtp):
    messages = [msg(i) for i in range(3)]
    smtp.faults.add("DATA_END", "drop_after_commit", times=1)
    s = session(smtp)
    results = BulkSender(s, rate_limit=0, retry_delay=0.01, sleep=lambda d: None).send_all(messages)
    s.quit()
    assert [r["status"] for r in results] == ["uncertain", "sent", "sent"]
    assert messages[0].message_id in results[0]["error"]
    assert delivered_ids(smtp) == collections.Counter(m.message_id for m in messages)  # the server has it once


def test_drop_after_commit_with_resend_uncertain_sends_again_with_same_id(smtp):
    messages = [msg(0)]
    smtp.faults.add("DATA_END", "drop_after_commit", times=1)
    s = session(smtp)
    results = BulkSender(s, rate_limit=0, retry_delay=0.01, sleep=lambda d: None, resend_uncertain=True).send_all(messages)
    s.quit()
    assert results[0]["status"] == "sent" and results[0]["attempts"] == 2
    assert delivered_ids(smtp) == collections.Counter({messages[0].message_id: 2})


def test_busy_is_retried_with_backoff_then_gives_up(smtp):
    smtp.faults.add("MAIL", "busy", times=2)
    sleeps = []
    s = session(smtp)
    sender = BulkSender(s, rate_limit=0, retries=3, retry_delay=1.0, sleep=sleeps.append)
    assert sender.send_one(msg(0))["status"] == "sent"
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0  # doubling, with jitter
    smtp.faults.add("MAIL", "busy", times=10)
    failed = sender.send_one(msg(1))
    s.quit()
    assert failed["status"] == "failed" and failed["attempts"] == 4 and failed["enhanced_code"] == "4.7.500"
    assert "retries with backoff" in failed["fix"] and "retry later" in failed["fix"]


def test_concurrent_connection_limit_backs_off_until_a_slot_frees(smtp):
    smtp.settings.max_connections = 1
    holder = session(smtp).open()
    built = msg(0)
    holder.send(built.envelope_from, built.recipients, built.data)  # the holder owns the only slot
    sleeps = []

    def sleep(delay):
        sleeps.append(delay)
        holder.quit()
        time.sleep(0.2)

    s = session(smtp)
    result = BulkSender(s, rate_limit=0, retry_delay=0.01, sleep=sleep).send_one(msg(1))
    s.quit()
    assert result["status"] == "sent" and result["attempts"] == 2 and len(sleeps) == 1


def test_permanent_refusal_fails_that_message_only(smtp):
    other = msg(0, sender="sales@contoso.onmicrosoft.com")
    s = session(smtp)
    results = BulkSender(s, rate_limit=0).send_all([other, msg(1)])
    s.quit()
    assert [r["status"] for r in results] == ["failed", "sent"]
    assert results[0]["enhanced_code"] == "5.7.60" and "SendAs" in results[0]["fix"]


def test_token_renewed_during_a_long_send(smtp):
    # A 6 s token is renewed 1.5 s (a quarter of its life) before it expires; a message every ~0.5 s leaves a
    # margin of three messages, so a loaded machine still renews before Exchange would close the session.
    smtp.settings.expiry_margin = 0
    calls = []
    s = session(smtp, token_source=token_source(smtp, lifetime=6, calls=calls))
    sender = BulkSender(s, rate_limit=0)
    results = []
    for i in range(14):
        results.append(sender.send_one(msg(i)))
        time.sleep(0.5)
    s.quit()
    assert [r["status"] for r in results] == ["sent"] * 14
    assert sender.stats["reconnects_for_token"] >= 1 and len(calls) >= 2
    assert len(smtp.messages) == 14


def test_auth_failure_stops_the_bulk_run(smtp):
    s = session(smtp, mailbox="nobody@contoso.onmicrosoft.com")
    with pytest.raises(SmtpError) as exc:
        BulkSender(s, rate_limit=0).send_all([msg(0), msg(1)])
    assert exc.value.enhanced_code == "5.7.3"
    assert smtp.messages == []


def test_token_lost_mid_bulk_keeps_the_results_of_the_messages_already_sent(smtp):
    """The third MAIL closes the connection (421) and the token cannot be had again: the two accepted messages
    stay 'sent' in the results (a re-run must not send them twice), the third failed, the fourth not sent."""
    good = token_source(smtp)
    calls = []

    def source():
        calls.append(1)
        if len(calls) > 1:
            raise AuthError("AADSTS7000222: the client secret expired", code="AADSTS7000222", fix="renew it")
        return good()
    smtp.faults.add("MAIL", "close", skip=2)
    s = session(smtp, token_source=source)
    results = BulkSender(s, rate_limit=0, retry_delay=0.01, sleep=lambda d: None).send_all([msg(i) for i in range(4)])
    s.close()
    assert [r["status"] for r in results] == ["sent", "sent", "failed", "not_sent"]
    assert "AADSTS7000222" in results[2]["error"] and results[2]["fix"] == "renew it"
    assert "earlier message" in results[3]["error"] and results[3]["attempts"] == 0
    assert sorted(delivered_ids(smtp)) == sorted(r["message_id"] for r in results[:2])


def test_recipient_refused_for_now_is_tried_again_alone(smtp):
    smtp.settings.refuse_recipients = {"ghost@contoso.onmicrosoft.com"}
    smtp.faults.add("RCPT", "busy", times=1)  # the first RCPT (bob) gets 451 4.7.500 once
    built = msg(to=["bob@example.com", "carol@example.com", "ghost@contoso.onmicrosoft.com"])
    s = session(smtp)
    sleeps = []
    result = BulkSender(s, rate_limit=0, retry_delay=0.01, sleep=sleeps.append).send_one(built)
    s.quit()
    assert result["status"] == "sent" and result["attempts"] == 2 and len(sleeps) == 1
    assert result["accepted"] == ["carol@example.com", "bob@example.com"]
    assert list(result["refused"]) == ["ghost@contoso.onmicrosoft.com"]
    assert result["refused"]["ghost@contoso.onmicrosoft.com"]["code"] == 550
    # One copy each: carol in the first transaction, bob alone in the second, same Message-ID.
    assert [m.rcpt_tos for m in smtp.messages] == [["carol@example.com"], ["bob@example.com"]]
    assert {m.message_id for m in smtp.messages} == {built.message_id}


def test_recipient_refused_for_now_every_time_is_reported_after_the_retries(smtp):
    smtp.faults.add("RCPT", "busy", times=10)
    s = session(smtp)
    result = BulkSender(s, rate_limit=0, retries=2, retry_delay=0.01, sleep=lambda d: None).send_one(msg(0))
    s.quit()
    assert result["status"] == "refused" and result["attempts"] == 3 and smtp.messages == []
    assert result["refused"]["bob@example.com"]["code"] == 451


def test_rate_limiter_spaces_a_minute_window():
    now = [0.0]
    slept = []

    def sleep(d):
        slept.append(d)
        now[0] += d

    limiter = RateLimiter(30, clock=lambda: now[0], sleep=sleep)
    for i in range(31):
        limiter.acquire()
        now[0] += 0.1
    assert slept == [pytest.approx(57.0)]  # the 31st waits until the first leaves the window
    assert RateLimiter(0, sleep=sleep).acquire() is None and len(slept) == 1


def test_concurrent_senders_share_nothing(smtp):
    # Two sessions in threads (the relay's proxy does this): each gets its own connection and results.
    out = {}

    def run(name):
        s = session(smtp)
        out[name] = BulkSender(s, rate_limit=0).send_all([msg(i) for i in range(20)])
        s.quit()

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(r["status"] == "sent" for rs in out.values() for r in rs) and len(smtp.messages) == 40


def test_reconnect_after_explicit_close(smtp):
    s = session(smtp).open()
    s.close()
    with pytest.raises(SmtpDisconnected):
        s.send(MAILBOX, ["bob@example.com"], b"Subject: x\r\n\r\nx\r\n")
    s.open()
    assert s.send(MAILBOX, ["bob@example.com"], b"Subject: x\r\n\r\nx\r\n").status == "sent"
    s.quit()


def test_token_about_to_expire_is_replaced_by_a_fresh_one(smtp):
    # The cache hands out a token with 5 minutes left; Exchange wants more: 501 5.5.127, then a fresh token.
    asked = []

    def source(fresh=False):
        asked.append(fresh)
        lifetime = 3600 if fresh else 300
        return Token(smtp.app_token(APP, lifetime=lifetime), time.time() + lifetime)

    s = session(smtp, token_source=source)
    result = BulkSender(s, rate_limit=0, retry_delay=0.01, sleep=lambda d: None).send_one(msg(0))
    s.quit()
    assert result["status"] == "sent" and result["attempts"] == 2 and asked == [False, True]


def test_a_session_out_of_step_is_retried_on_a_new_connection(smtp):
    # 503 to MAIL says the session, not the message, is wrong (the relay's proxy has always read it so): a new
    # connection, then the message goes.
    smtp.faults.add("MAIL", "reply", text="503 5.5.1 Bad sequence of commands")
    s = session(smtp)
    result = BulkSender(s, rate_limit=0, retry_delay=0.01, sleep=lambda d: None).send_one(msg(0))
    s.quit()
    assert result["status"] == "sent" and result["attempts"] == 2 and s.connects == 2
    assert len(smtp.messages) == 1
