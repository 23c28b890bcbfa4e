"""The emulated Exchange Online SMTP endpoint, driven by Python's smtplib (the client most tools use)."""

import base64
import smtplib
import ssl
import time

import pytest

from emulator import smtp_server
from emulator.clients import smtp_xoauth2

MAILBOX = "app@contoso.onmicrosoft.com"
APP = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def smtp(emulator, tenant):
    with smtp_server.clean_endpoint(emulator, allow=()) as server:
        yield server


def client(server, tls=True):
    conn = smtplib.SMTP(server.host, server.port, timeout=10)
    conn.ehlo("test.client")
    if tls:
        conn.starttls(context=ssl.create_default_context(cafile=server.ca_path))
        conn.ehlo("test.client")
    return conn


def xoauth2(conn, token, mailbox=MAILBOX):
    return smtp_xoauth2(conn, mailbox, token)


def allowed(server, **kw):
    server.allow(APP, MAILBOX)
    return server.app_token(APP, **kw)


def message(sender=MAILBOX, to="bob@example.com", subject="hi"):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@contoso.onmicrosoft.com>\r\n\r\nbody\r\n"
            % (sender, to, subject, time.time_ns())).encode()


def send(conn, sender=MAILBOX, to="bob@example.com", data=None):
    code, reply = conn.mail(sender)
    if code != 250:
        return code
    conn.rcpt(to)
    conn.putcmd("data")
    code, reply = conn.getreply()
    assert code == 354
    conn.send(smtplib._quote_periods(data or message(sender, to)) + b"\r\n.\r\n")
    return conn.getreply()


def test_auth_is_offered_only_after_tls_and_refused_before(smtp):
    conn = client(smtp, tls=False)
    assert conn.has_extn("starttls") and not conn.has_extn("auth")
    assert conn.docmd("AUTH", "XOAUTH2 abc")[0] == 504
    code, reply = conn.mail(MAILBOX)
    assert (code, reply[:6]) == (530, b"5.7.57")
    conn.starttls(context=ssl.create_default_context(cafile=smtp.ca_path))
    conn.ehlo("x")
    assert conn.esmtp_features["auth"].split() == ["LOGIN", "XOAUTH2"]
    conn.close()


def test_token_on_the_auth_line_gets_a_strict_servers_answer_unless_long_lines_are_allowed(smtp):
    blob = base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (MAILBOX, allowed(smtp))).encode()).decode()
    conn = client(smtp)
    assert conn.docmd("AUTH", "XOAUTH2 " + blob) == (500, b"5.5.2 Line too long")
    assert conn.mail(MAILBOX)[0] == 530
    conn.close()
    smtp.settings.auth_line_limit = None  # what Exchange Online does today
    conn = client(smtp)
    assert conn.docmd("AUTH", "XOAUTH2 " + blob)[0] == 235
    conn.close()


def test_xoauth2_accepted_and_message_stored_with_app_and_mailbox(smtp, tenant):
    token = allowed(smtp)
    conn = client(smtp)
    assert xoauth2(conn, token)[0] == 235
    code, reply = send(conn)
    assert code == 250 and reply.startswith(b"2.0.0 OK")
    conn.quit()
    [stored] = smtp.messages
    assert (stored.app_id, stored.mailbox, stored.rcpt_tos) == (APP, MAILBOX, ["bob@example.com"])
    assert stored.parsed()["Subject"] == "hi"
    verbs = [e["verb"] for e in tenant.log.since(0) if e.get("part") == "smtp"] if hasattr(tenant.log, "since") else None
    if verbs is not None:
        assert {"EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA"} <= set(verbs)


def test_token_of_real_size_fits_the_command_line(smtp):
    # Real Exchange tokens are 2-5 KB; aiosmtpd's default 512-byte command limit would refuse them.
    smtp.allow(APP, MAILBOX)
    token = smtp.app_token(APP, roles=["Role.%04d.ReadWrite.All" % i for i in range(150)])
    assert len(token) > 4000
    conn = client(smtp)
    assert xoauth2(conn, token)[0] == 235
    conn.quit()


@pytest.mark.parametrize("mechanism, setting, expected", [
    ("LOGIN", "retired", (550, b"5.7.30 Basic authentication is not supported for Client Submission.")),
    ("LOGIN", "disabled", (535, b"5.7.139 Authentication unsuccessful, basic authentication is disabled.")),
])
def test_basic_auth_is_answered_as_exchange_does(smtp, mechanism, setting, expected):
    smtp.settings.basic_auth = setting
    conn = client(smtp)
    conn.user, conn.password = MAILBOX, "Passw0rd!"
    with pytest.raises(smtplib.SMTPAuthenticationError) as exc:
        conn.auth(mechanism, conn.auth_login)
    assert exc.value.smtp_code == expected[0] and exc.value.smtp_error.startswith(expected[1])
    conn.close()


def test_benchmark_mode_accepts_plain_login(smtp):
    smtp.settings.basic_auth = "accept"
    smtp.settings.plain_password = "bench"
    conn = client(smtp)
    assert conn.login(MAILBOX, "bench")[0] == 235
    assert send(conn)[0] == 250
    conn.quit()


@pytest.mark.parametrize("case, expected", [
    ("wrong_audience", (535, b"5.7.3")),
    ("tampered", (535, b"5.7.3")),
    ("expired", (535, b"5.7.3")),
    ("expires_soon", (501, b"5.5.127 Invalid XOAUTH2 auth data - Token will expire soon")),
    ("no_grant", (535, b"5.7.3")),
    ("malformed", (501, b"5.5.124")),
])
def test_token_verdicts(smtp, case, expected):
    if case == "no_grant":
        token = smtp.app_token(APP)
    elif case == "wrong_audience":
        token = allowed(smtp, audience="https://graph.microsoft.com")
    elif case == "expired":
        token = allowed(smtp, lifetime=-60)
    elif case == "expires_soon":
        token = allowed(smtp, lifetime=300)
    else:
        token = allowed(smtp)
    conn = client(smtp)
    if case == "tampered":
        head, payload, sig = token.split(".")
        token = ".".join([head, payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB"), sig])
    if case == "malformed":
        code, reply = conn.docmd("AUTH", "XOAUTH2 " + base64.b64encode(b"user=x\x01\x01").decode())
    else:
        code, reply = xoauth2(conn, token)
    assert code == expected[0] and reply.startswith(expected[1]), (code, reply)
    assert conn.mail(MAILBOX)[0] == 530  # still not authenticated
    conn.close()


def test_send_as_is_checked_on_from_header_and_envelope(smtp):
    token = allowed(smtp)
    conn = client(smtp)
    xoauth2(conn, token)
    other = "sales@contoso.onmicrosoft.com"
    code, reply = send(conn, data=message(sender=other))
    assert code == 550 and reply.startswith(b"5.7.60 SMTP; Client does not have permissions to send as this sender")
    assert send(conn, sender=other, data=message())[0] == 550
    smtp.allow_send_as(APP, other)
    assert send(conn, sender=other, data=message(sender=other))[0] == 250
    conn.quit()
    assert len(smtp.messages) == 1


def test_rate_quota(smtp):
    smtp.settings.rate_per_minute = 2
    token = allowed(smtp)
    conn = client(smtp)
    xoauth2(conn, token)
    assert [send(conn)[0] for dummy in range(3)] == [250, 250, 554]
    conn.quit()


def test_recipient_quota(smtp):
    smtp.settings.recipients_per_day = 3
    token = allowed(smtp)
    conn = client(smtp)
    xoauth2(conn, token)
    assert send(conn)[0] == 250
    conn.mail(MAILBOX)
    for rcpt in ("a@example.com", "b@example.com", "c@example.com"):
        conn.rcpt(rcpt)
    code, reply = conn.data(message())
    assert code == 554 and b"SubmissionQuotaExceededException" in reply
    conn.quit()


def test_three_concurrent_connections_then_432(smtp):
    smtp.settings.max_connections = 3
    token = allowed(smtp)
    conns = []
    for dummy in range(4):
        conn = client(smtp)
        assert xoauth2(conn, token)[0] == 235
        conns.append(conn)
    assert [c.mail(MAILBOX)[0] for c in conns] == [250, 250, 250, 432]
    conns[0].quit()
    conns[3].rset()
    time.sleep(0.2)  # the server notices the closed connection
    assert conns[3].mail(MAILBOX)[0] == 250
    for conn in conns[1:]:
        conn.quit()


def test_refused_recipient(smtp):
    smtp.settings.refuse_recipients = {"ghost@contoso.onmicrosoft.com"}
    token = allowed(smtp)
    conn = client(smtp)
    xoauth2(conn, token)
    conn.mail(MAILBOX)
    code, reply = conn.rcpt("ghost@contoso.onmicrosoft.com")
    assert code == 550 and reply.startswith(b"5.1.10 RESOLVER.ADR.RecipientNotFound")
    conn.quit()


def test_fault_busy_then_ok(smtp):
    token = allowed(smtp)
    smtp.faults.add("MAIL", "busy", times=1)
    conn = client(smtp)
    xoauth2(conn, token)
    code, reply = conn.mail(MAILBOX)
    assert code == 451 and reply.startswith(b"4.7.500 Server busy")
    assert send(conn)[0] == 250
    conn.quit()


def test_fault_421_then_disconnect(smtp):
    token = allowed(smtp)
    smtp.faults.add("RCPT", "close")
    conn = client(smtp)
    xoauth2(conn, token)
    conn.mail(MAILBOX)
    assert conn.rcpt("bob@example.com")[0] == 421
    with pytest.raises(smtplib.SMTPServerDisconnected):
        conn.mail(MAILBOX)
    assert smtp.messages == []


def test_fault_drop_after_commit_stores_without_answer(smtp):
    token = allowed(smtp)
    smtp.faults.add("DATA_END", "drop_after_commit")
    conn = client(smtp)
    xoauth2(conn, token)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        send(conn)
    assert len(smtp.messages) == 1


def test_fault_drop_in_data_stores_nothing(smtp):
    token = allowed(smtp)
    smtp.faults.add("DATA", "drop_in_data")
    conn = client(smtp)
    xoauth2(conn, token)
    with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
        send(conn)
    assert smtp.messages == []


def test_session_with_expired_token_is_closed(smtp):
    smtp.settings.expiry_margin = 0
    token = allowed(smtp, lifetime=2)
    conn = client(smtp)
    assert xoauth2(conn, token)[0] == 235
    assert send(conn)[0] == 250
    time.sleep(2.1)
    code, reply = conn.mail(MAILBOX)
    assert code == 421 and b"token expired" in reply
    with pytest.raises(smtplib.SMTPServerDisconnected):
        conn.noop()


def test_implicit_tls_port(smtp):
    token = allowed(smtp)
    conn = smtplib.SMTP_SSL(smtp.host, smtp.tls_port, timeout=10,
                            context=ssl.create_default_context(cafile=smtp.ca_path))
    conn.ehlo("x")
    assert not conn.has_extn("starttls")
    assert xoauth2(conn, token)[0] == 235
    assert send(conn)[0] == 250
    conn.quit()


@pytest.mark.parametrize("model, roles, expected", [
    ("classic", ["SMTP.SendAsApp"], 235),
    ("classic", [], 535),            # FullAccess alone is not enough without the SMTP.SendAsApp claim
    ("rbac", [], 235),
])
def test_both_authorisation_models(smtp, model, roles, expected):
    smtp.allow(APP, MAILBOX, model=model)
    conn = client(smtp)
    assert xoauth2(conn, smtp.app_token(APP, roles=roles))[0] == expected
    conn.close()


def test_smtp_auth_disabled_for_the_tenant_or_mailbox(smtp, tenant):
    token = allowed(smtp)
    tenant.exchange.transport_config["SmtpClientAuthenticationDisabled"] = True
    conn = client(smtp)
    code, reply = xoauth2(conn, token)
    assert code == 535 and reply.startswith(b"5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
                                            b"disabled for the Tenant")
    conn.close()
    tenant.exchange.find_mailbox(MAILBOX)["SmtpClientAuthenticationDisabled"] = False  # the mailbox overrides
    conn = client(smtp)
    assert xoauth2(conn, token)[0] == 235
    conn.close()


@pytest.mark.parametrize("status, prefix, closes", [
    (451, b"4.7.500 Server busy", False),
    (432, b"4.3.2 Concurrent connections limit exceeded", False),
    (421, b"4.3.2 Service not available", True),
])
def test_tenant_faults_drive_the_smtp_part(smtp, tenant, status, prefix, closes):
    token = allowed(smtp)
    tenant.faults.add("smtp", match="MAIL", kind="status", status=status)
    conn = client(smtp)
    xoauth2(conn, token)
    code, reply = conn.mail(MAILBOX)
    assert code == status and reply.startswith(prefix)
    if closes:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            conn.noop()
    else:
        assert send(conn)[0] == 250
        conn.quit()


def test_tenant_fault_drop_after_commit_at_end_of_data(smtp, tenant):
    token = allowed(smtp)
    tenant.faults.add("smtp", match="DATA_END", kind="drop_after_commit")
    conn = client(smtp)
    xoauth2(conn, token)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        send(conn)
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("model, roles", [("rbac", []), ("classic", ["SMTP.SendAsApp"])])
@pytest.mark.parametrize("case, expected", [
    ("smtp_auth_off", (535, b"5.7.139")),
    ("expires_soon", (501, b"5.5.127")),
    ("foreign_tenant", (535, b"5.7.3")),
    ("registered_with_app_object_id", (535, b"5.7.3")),
    ("send_as_other", (550, b"5.7.60")),
])
def test_each_verdict_in_both_models_through_a_real_client(smtp, tenant, model, roles, case, expected):
    """What an smtplib client sees, for each reason Exchange refuses, in the RBAC and the classic model alike."""
    smtp.allow(APP, MAILBOX, model=model)
    kw = {}
    if case == "expires_soon":
        kw["lifetime"] = 300
    token = smtp.app_token(APP, roles=roles, **kw)
    if case == "smtp_auth_off":
        tenant.exchange.transport_config["SmtpClientAuthenticationDisabled"] = True
    elif case == "foreign_tenant":
        token = tenant.tokens.issue(app_id=APP, roles=roles, audience="https://outlook.office365.com",
                                    tid="72f988bf-86f1-41af-91ab-2d7cd011db47")
    elif case == "registered_with_app_object_id":
        sp, dummy_valid = tenant.exchange.registration_for(APP)
        sp["ObjectId"] = "0b6b1a9e-1111-4222-8333-944444444444"  # not the app's service principal object id
    conn = client(smtp)
    code, reply = xoauth2(conn, token)
    if case == "send_as_other":
        assert code == 235, (code, reply)
        code, reply = send(conn, sender="sales@contoso.onmicrosoft.com",
                           data=message(sender="sales@contoso.onmicrosoft.com"))
    assert code == expected[0] and reply.startswith(expected[1]), (code, reply)
    conn.close()


def test_fault_reply_text_delay_forever_and_535(smtp):
    # text=: a whole reply the test needs (here RFC 5321's 452 for one recipient too many, after two accepted);
    # times=None: a delay on every RCPT until cleared; 535 is Exchange's own refusal of the credential.
    token = allowed(smtp)
    smtp.faults.add("AUTH", "reply", status=535)
    conn = client(smtp)
    code, reply = xoauth2(conn, token)
    assert code == 535 and reply.startswith(b"5.7.3 Authentication unsuccessful")
    assert xoauth2(conn, token)[0] == 235
    smtp.faults.add("RCPT", "reply", text="452 4.5.3 Too many recipients", skip=2)
    delay = smtp.faults.add("RCPT", "delay", times=None, seconds=0.2)
    conn.mail(MAILBOX)
    started = time.monotonic()
    answers = [conn.rcpt(rcpt) for rcpt in ("a@example.com", "b@example.com", "c@example.com")]
    assert [code for code, dummy in answers] == [250, 250, 452] and answers[2][1] == b"4.5.3 Too many recipients"
    assert time.monotonic() - started >= 0.4  # the first two waited (the 452 fault came first for the third)
    assert delay["hits"] == 2
    smtp.faults.clear()
    conn.rset()
    assert send(conn)[0] == 250
    conn.quit()
    with pytest.raises(ValueError, match="whole SMTP reply"):
        smtp.faults.add("RCPT", "reply", text="Too many recipients")


def test_connections_and_data_ends_are_counted(smtp):
    # data_ends counts messages whose final dot arrived, refused ones too: zero proves nothing was committed.
    token = allowed(smtp)
    smtp.faults.add("DATA_END", "busy")
    smtp.faults.add("DATA", "drop_in_data", skip=2)
    conn = client(smtp)
    xoauth2(conn, token)
    assert send(conn)[0] == 451 and send(conn)[0] == 250
    with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
        send(conn)  # the server reset the connection in the middle of the data
    client(smtp).quit()
    assert smtp.connections == 2 and smtp.data_ends == 2 and len(smtp.messages) == 1


def test_a_client_leaving_during_the_data_is_logged_with_354_and_commits_nothing(smtp, tenant):
    token = allowed(smtp)
    conn = client(smtp)
    xoauth2(conn, token)
    conn.mail(MAILBOX)
    conn.rcpt("bob@example.com")
    assert conn.docmd("DATA")[0] == 354
    conn.send(b"Subject: half\r\n\r\nno final dot\r\n")
    conn.close()
    deadline = time.monotonic() + 10
    while not tenant.log.entries(part="smtp", verb="DATA") and time.monotonic() < deadline:
        time.sleep(0.05)
    [entry] = tenant.log.entries(part="smtp", verb="DATA")
    assert entry["status"] == 354 and not entry["write"]
    assert smtp.data_ends == 0 and smtp.messages == []


def test_stop_closes_open_sessions_and_start_listens_again_on_the_same_port(emulator, tenant):
    # Its own endpoint: this one goes down (the shared one stays up for the other tests).
    server = smtp_server.start(emulator)
    try:
        token = allowed(server)
        conn = client(server)
        xoauth2(conn, token)
        port = server.port
        server.stop()
        with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
            conn.noop()  # the open session was reset with the server
        with pytest.raises(OSError):
            client(server)
        server.start(port=port)
        assert server.port == port
        conn = client(server)
        xoauth2(conn, token)
        assert send(conn)[0] == 250 and len(server.messages) == 1
        conn.quit()
    finally:
        server.stop()
