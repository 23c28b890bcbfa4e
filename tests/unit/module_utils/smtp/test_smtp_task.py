"""_smtp_task: the send_mail task logic (options -> messages -> results) against the emulated SMTP endpoint."""

import collections
import time

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError, SmtpError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.task import send_mail_task
from emulator import smtp_server
from helpers.spec import module_params

MAILBOX = "app@contoso.onmicrosoft.com"
APP = "99999999-8888-7777-6666-555555555555"
Token = collections.namedtuple("Token", "token expires_on")


@pytest.fixture
def smtp(emulator, tenant):
    with smtp_server.clean_endpoint(emulator, allow=[(APP, MAILBOX)]) as server:
        yield server


def params(server, **kw):
    """send_mail's params through its real argument spec; a test overrides what it is about."""
    base = dict(host=server.host, port=server.port, secure="starttls", sender="Bot <%s>" % MAILBOX,
                to=["bob@example.com"], subject="s", rate_limit=0, retry_delay=0.01, timeout=10,
                ca_path=server.ca_path)
    base.update(kw)
    return module_params("send_mail", **base)


def tokens(server, asked=None):
    def source():
        if asked is not None:
            asked.append(1)
        return Token(server.app_token(APP), time.time() + 3600)
    return source


def test_check_mode_authenticates_and_sends_nothing(smtp):
    asked = []
    result = send_mail_task(params(smtp), True, tokens(smtp, asked), None)
    assert not result.get("failed") and result["changed"] and result["messages"][0]["status"] == "check_mode"
    assert asked == [1] and smtp.messages == []


def test_check_mode_fails_on_missing_permission(smtp):
    with pytest.raises(SmtpError) as exc:
        send_mail_task(params(smtp, sender="other@contoso.onmicrosoft.com"), True, tokens(smtp), None)
    assert exc.value.enhanced_code == "5.7.3"


def test_bulk_messages_inherit_top_level_options(smtp):
    entries = [{"to": ["u%d@example.com" % i], "subject": "for u%d" % i} for i in range(5)]
    entries[2]["from"] = MAILBOX
    result = send_mail_task(params(smtp, messages=entries, cc=["audit@example.com"]), False, tokens(smtp), None)
    assert not result.get("failed") and result["sent_count"] == 5 and result["connections"] == 1 and result["changed"]
    assert [m.rcpt_tos for m in smtp.messages] == [["u%d@example.com" % i, "audit@example.com"] for i in range(5)]
    assert [m.parsed()["Subject"] for m in smtp.messages] == ["for u%d" % i for i in range(5)]


def test_bad_message_fails_before_connecting(smtp):
    asked = []
    entries = [{"to": ["ok@example.com"]}, {"to": ["broken"]}]
    with pytest.raises(ConfigError) as exc:
        send_mail_task(params(smtp, messages=entries), False, tokens(smtp, asked), None)
    assert exc.value.option == "messages[1].to" and asked == [] and smtp.messages == []


def test_refused_recipient_fails_the_task_unless_told_otherwise(smtp):
    smtp.settings.refuse_recipients = {"ghost@contoso.onmicrosoft.com"}
    p = params(smtp, to=["bob@example.com", "ghost@contoso.onmicrosoft.com"])
    result = send_mail_task(p, False, tokens(smtp), None)
    assert result["failed"] and "ghost@contoso.onmicrosoft.com" in result["msg"] and "5.1.10" in result["msg"]
    assert result["sent_count"] == 1 and result["messages"][0]["accepted"] == ["bob@example.com"]
    p["fail_on_refused"] = False
    result = send_mail_task(p, False, tokens(smtp), None)
    assert not result.get("failed")


def test_every_recipient_refused_fails_the_task_unless_told_otherwise(smtp):
    smtp.settings.refuse_recipients = {"ghost@contoso.onmicrosoft.com"}
    p = params(smtp, messages=[{"to": ["ghost@contoso.onmicrosoft.com"]}, {"to": ["bob@example.com"]}])
    result = send_mail_task(p, False, tokens(smtp), None)
    assert result["failed"] and "every recipient was refused" in result["msg"]
    p["fail_on_refused"] = False
    result = send_mail_task(p, False, tokens(smtp), None)
    assert not result.get("failed") and [m["status"] for m in result["messages"]] == ["refused", "sent"]
    assert result["sent_count"] == 1 and result["failed_count"] == 1


@pytest.mark.parametrize("size", [0, -5])
def test_max_message_size_zero_or_less_names_the_option(smtp, size):
    with pytest.raises(ConfigError) as exc:
        send_mail_task(params(smtp, max_message_size=size), False, tokens(smtp), None)
    assert exc.value.option == "max_message_size"


def test_one_message_id_for_several_messages_is_refused_before_connecting(smtp):
    asked = []
    p = params(smtp, headers={"Message-ID": "<same@contoso.com>"}, messages=[{"subject": "a"}, {"subject": "b"}])
    with pytest.raises(ConfigError) as exc:
        send_mail_task(p, False, tokens(smtp, asked), None)
    assert exc.value.option == "messages[1].headers" and "<same@contoso.com>" in str(exc.value)
    assert asked == [] and smtp.messages == []
    # One message with its own Message-ID is fine.
    result = send_mail_task(params(smtp, headers={"Message-ID": "<own@contoso.com>"}), False, tokens(smtp), None)
    assert not result.get("failed") and result["message_id"] == "<own@contoso.com>"


def test_mailbox_defaults_to_sender_and_can_differ(smtp):
    smtp.allow_send_as(APP, "sales@contoso.onmicrosoft.com")
    result = send_mail_task(params(smtp, sender="sales@contoso.onmicrosoft.com", mailbox=MAILBOX), False,
                            tokens(smtp), None)
    assert not result.get("failed") and result["mailbox"] == MAILBOX
    assert smtp.messages[0].mailbox == MAILBOX and smtp.messages[0].mail_from == "sales@contoso.onmicrosoft.com"


def test_debug_transcript_is_redacted(smtp):
    source = tokens(smtp)
    issued = []
    result = send_mail_task(params(smtp, debug=True), False, lambda: issued.append(source()) or issued[-1], None)
    text = "\n".join(result["transcript"])
    assert "send: 'AUTH XOAUTH2\\r\\n'" in text and "send: '********\\r\\n'" in text and issued[0].token not in text


def test_negative_numbers_name_the_option(smtp):
    with pytest.raises(ConfigError) as exc:
        send_mail_task(params(smtp, rate_limit=-1), False, tokens(smtp), None)
    assert exc.value.option == "rate_limit"


def test_no_host_for_the_cloud_names_host(smtp):
    with pytest.raises(ConfigError) as exc:
        send_mail_task(params(smtp, host=None), False, tokens(smtp), None)
    assert exc.value.option == "host"


@pytest.mark.parametrize("option, value", [("ehlohost", "\x80box"), ("ehlohost", "my host"), ("host", "smtp\r\nx")])
def test_host_names_outside_ascii_or_with_spaces_name_the_option(smtp, option, value):
    with pytest.raises(ConfigError) as exc:
        send_mail_task(params(smtp, **{option: value}), False, tokens(smtp), None)
    assert exc.value.option == option and "ASCII" in str(exc.value)


def test_module_message_suboptions_are_the_task_keys():
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.task import MESSAGE_KEYS
    from ansible_collections.o365.smtp_oauth.plugins.modules import send_mail
    spec = send_mail.argument_spec()
    assert set(spec["messages"]["options"]) == set(MESSAGE_KEYS)
    assert all(key in spec for key in MESSAGE_KEYS)  # every per-message key has a top-level default


def _gated_provider(server):
    """A TokenProvider whose credential records how many SMTP connections the endpoint had accepted when the
    token was requested, and answers only once the endpoint has accepted one (the overlap, without timing)."""
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.credential import AccessToken, Credential
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.provider import TokenProvider

    class Gated(Credential):
        kind = "client_secret"
        seen = []

        def _acquire(self, scope):
            self.seen.append(server.connections)
            deadline = time.monotonic() + 10
            while server.connections == 0 and time.monotonic() < deadline:
                time.sleep(0.005)
            return AccessToken(server.app_token(APP), int(time.time()) + 3600)

    credential = Gated(tenant_id="t.example", client_id="c")
    return credential, TokenProvider(credential).token_source("https://outlook.office365.com/.default")


def test_the_token_is_requested_while_the_connection_is_made(smtp):
    credential, source = _gated_provider(smtp)
    result = send_mail_task(params(smtp), False, source, None)
    assert result["sent_count"] == 1 and result["connections"] == 1
    # Asked before the endpoint had a connection, answered only after it had one: the two waits overlapped.
    assert credential.seen == [0] and len(smtp.messages) == 1


def test_no_token_request_for_bad_input_or_a_check_mode_run_that_does_not_connect(smtp):
    credential, source = _gated_provider(smtp)
    with pytest.raises(ConfigError):
        send_mail_task(params(smtp, messages=[{"to": ["broken"]}]), False, source, None)
    result = send_mail_task(params(smtp, to=["bob@example.com"]), True, source, None, connect=False)
    assert result["messages"][0]["status"] == "check_mode" and credential.seen == []
