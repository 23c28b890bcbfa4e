"""send_mail against real Exchange Online: run only with O365_REAL_TENANT=1.

Needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) of an app allowed
to send as O365_REAL_SMTP_MAILBOX (exchange_smtp_access). Check mode proves TLS, the token and Exchange's
permission without sending; with O365_REAL_SMTP_RECIPIENT set, one message is really sent there.
"""

import os

import pytest

from helpers.playbook import run_playbook

pytestmark = [
    pytest.mark.real_tenant,
    pytest.mark.skipif(os.environ.get("O365_REAL_TENANT") != "1" or not os.environ.get("O365_REAL_SMTP_MAILBOX"),
                       reason="real-tenant test: set O365_REAL_TENANT=1, O365_REAL_SMTP_MAILBOX and AZURE_TENANT_ID / "
                              "AZURE_CLIENT_ID / AZURE_CLIENT_SECRET to run it"),
]


def send_task(to):
    return {"name": "send", "o365.smtp_oauth.send_mail": {
        "sender": os.environ["O365_REAL_SMTP_MAILBOX"], "to": [to], "subject": "o365.smtp_oauth real-tenant test",
        "body": "Sent by tests/integration/test_send_mail_real.py."}}


def test_check_mode_authenticates_against_exchange_online():
    run = run_playbook([send_task(os.environ["O365_REAL_SMTP_MAILBOX"])], None, check=True)
    result = run.task("send")
    assert run.rc == 0, run.output[-3000:]
    assert result["messages"][0]["status"] == "check_mode" and result["connections"] == 1


@pytest.mark.skipif(not os.environ.get("O365_REAL_SMTP_RECIPIENT"), reason="set O365_REAL_SMTP_RECIPIENT to send")
def test_one_message_is_accepted():
    run = run_playbook([send_task(os.environ["O365_REAL_SMTP_RECIPIENT"])], None)
    result = run.task("send")
    assert run.rc == 0, run.output[-3000:]
    assert result["sent_count"] == 1 and result["messages"][0]["reply"].startswith("2.0.0 OK")
