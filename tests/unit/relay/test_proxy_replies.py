"""The relay reads the upstream's replies as send_mail does: one classification (_smtp.diagnosis) says which reply
is temporary, which wants a new connection or a fresh token, which is a sending limit, and what it means in plain
words. Real components: the emulated Exchange endpoint upstream (its own checks, settings and faults), the token
endpoint of the emulated tenant, smtplib's LMTP client in Postfix's place, send_mail's task body beside it."""

import logging

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import SmtpError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.task import send_mail_task
from helpers.spec import module_params
from test_proxy import MAILBOX, OTHER_APP, auths, secret_auth
from test_proxy_delivery import codes, lmtp_send


def test_a_refused_token_is_diagnosed_as_send_mail_diagnoses_it(run_proxy, upstream, caplog):
    # A real token of the tenant for an app without any grant on the mailbox: Exchange's 535 5.7.3 to both.
    caplog.set_level(logging.INFO, logger="o365-smtp-proxy")
    token = upstream.app_token(OTHER_APP)
    params = module_params("send_mail", host=upstream.host, port=upstream.port, sender=MAILBOX,
                           to=["bob@example.com"], subject="s", ca_path=upstream.ca_path, timeout=10)
    with pytest.raises(SmtpError) as send_mail:
        send_mail_task(params, True, lambda: token, None)
    cause = send_mail.value.diagnosis.cause
    assert OTHER_APP in cause and "Application SMTP.SendAsApp" in cause  # read from the token's claims
    running = run_proxy(token=token)
    [(code, _text)] = lmtp_send(running)
    assert code == 451  # a refused credential never bounces mail
    line = [r.getMessage() for r in caplog.records if "queue_id=" in r.getMessage()][0]
    assert cause in line and send_mail.value.fix in line and token not in caplog.text


def test_a_token_about_to_expire_is_replaced_at_once_with_a_fresh_one(run_proxy, upstream, emulator, tenant):
    # The proxy's cached token has 700 s left; Exchange then wants more (501 5.5.127). The proxy asks the token
    # endpoint past its cache and delivers on a new connection, instead of deferring the mail to Postfix's retry.
    tenant.tokens.lifetime = 700
    running = run_proxy(auth=secret_auth(emulator, upstream), idle_timeout=0)
    assert codes(lmtp_send(running)) == [250]
    tenant.tokens.lifetime = 3600
    upstream.settings.expiry_margin = 1000
    assert codes(lmtp_send(running)) == [250]
    assert [e["status"] for e in tenant.log.entries(part="smtp", verb="AUTH")] == [235, 501, 235]
    issued = [e for e in tenant.log.entries(part="identity", status=200) if e["path"].endswith("/oauth2/v2.0/token")]
    assert len(issued) == 2 and len(upstream.messages) == 2 and auths(tenant, status=235) == 2


@pytest.mark.parametrize("verb, refusal, expected", [
    ("RCPT", "550 5.7.705 Your tenant has exceeded its threshold", 451),  # the tenant's limit: waits in the queue
    ("MAIL", "550 5.1.8 Access denied, bad outbound sender", 451),        # the mailbox restricted after a limit
    ("RCPT", "550 5.2.0 Mailbox unavailable", 550),                       # 5.2.0 without the quota words
])
def test_sending_limits_wait_and_other_refusals_bounce(run_proxy, upstream, verb, refusal, expected):
    running = run_proxy()
    upstream.faults.add(verb, "reply", text=refusal)
    [(code, text)] = lmtp_send(running)
    assert code == expected and refusal[4:].split(" ", 1)[1].encode() in text
