"""_smtp.diagnosis: each Microsoft answer gets a cause, a fix and what a client does next; 5.7.3 is read against
the token's claims."""

import base64
import time

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.session import error_challenge
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.diagnosis import diagnose

HOST = "[AM0PR01MB0001.eurprd01.prod.outlook.com]"


def claims(**kw):
    base = {"aud": "https://outlook.office365.com", "tid": "t-1", "appid": "app-1", "roles": [],
            "exp": time.time() + 3600}
    base.update(kw)
    return base


def test_573_without_claims_lists_the_causes_in_order():
    d = diagnose(535, "5.7.3 Authentication unsuccessful " + HOST)
    assert d.code == "5.7.3"
    assert "New-ServicePrincipal" in d.cause and "ENTERPRISE APPLICATION" in d.cause
    assert "exchange_smtp_access" in d.fix


def test_573_wrong_audience_is_named():
    d = diagnose(535, "5.7.3 Authentication unsuccessful", claims=claims(aud="https://graph.microsoft.com"))
    assert "graph.microsoft.com" in d.cause and "outlook.office365.com/.default" in d.fix
    assert d.option == "access_token"


def test_573_classic_model_points_to_full_access():
    d = diagnose(535, "5.7.3 Authentication unsuccessful", claims=claims(roles=["SMTP.SendAsApp"]),
                 mailbox="app@contoso.com")
    assert "FullAccess" in d.cause and "app@contoso.com" in d.cause and "classic" in d.cause


def test_573_rbac_model_points_to_role_assignment():
    d = diagnose(535, "5.7.3 Authentication unsuccessful", claims=claims(), mailbox="app@contoso.com")
    assert "Application SMTP.SendAsApp" in d.cause and "app-1" in d.cause and "t-1" in d.cause


def test_573_delegated_and_expired_tokens():
    assert "delegated" in diagnose(535, "5.7.3 x", claims=claims(scp="SMTP.Send", roles=None)).cause
    assert "expired" in diagnose(535, "5.7.3 x", claims=claims(exp=time.time() - 5)).cause


@pytest.mark.parametrize("code, reply, expect_code, words", [
    (535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.", "5.7.139", "whole tenant"),
    (535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.", "5.7.139", "on this mailbox"),
    (535, "5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy.", "5.7.139", "security defaults"),
    (535, "5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully.", "5.7.139", "SMTP AUTH is off"),
    (530, "5.7.57 Client not authenticated to send mail.", "5.7.57", "not authenticated"),
    (550, "5.7.60 SMTP; Client does not have permissions to send as this sender", "5.7.60", "SendAsDenied"),
    (554, "5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied", "5.7.60", "SendAsDenied"),
    (554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException", "5.2.0", "quota"),
    (432, "4.3.2 Concurrent connections limit exceeded.", "4.3.2", "concurrent"),
    (501, "5.5.127 Invalid XOAUTH2 auth data - Token will expire soon", "5.5.127", "about to expire"),
    (550, "5.7.30 Basic authentication is not supported for Client Submission.", "5.7.30", "Basic authentication"),
    (451, "4.7.500 Server busy. Please try again later", "4.7.500", "busy"),
    (504, "5.7.4 Unrecognized authentication type", "5.7.4", "authentication type"),
])
def test_each_microsoft_answer_has_cause_and_fix(code, reply, expect_code, words):
    d = diagnose(code, reply)
    assert d.code == expect_code
    assert words.lower() in d.cause.lower()
    assert d.fix


def test_temporary_answers_are_marked():
    assert diagnose(432, "4.3.2 Concurrent connections limit exceeded.").temporary
    assert diagnose(421, "4.3.2 Service not available, closing transmission channel").temporary
    assert diagnose(450, "4.2.0 something new").temporary
    assert not diagnose(550, "5.7.60 SMTP; Client does not have permissions to send as this sender").temporary


def test_unknown_answer_never_raises():
    d = diagnose(599, "9.9.9 unheard of", stage="rcpt")
    assert "recipient" in d.cause and d.fix


def test_xoauth2_error_challenge_is_named_in_the_diagnosis():
    # Dovecot's error challenge, byte for byte, before its final 535 5.7.8.
    challenge = error_challenge(b"eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=")
    assert challenge == {"status": "401", "schemes": "bearer", "scope": "mail"}
    d = diagnose(535, "5.7.8 Authentication failed.", stage="auth", challenge=challenge)
    assert d.code == "5.7.8" and "status 401, scope mail" in d.cause and "5.7.3" in d.cause and d.option == "host"
    assert error_challenge(b"") is None and error_challenge(b"not base64!") is None
    assert error_challenge(base64.b64encode(b"[1, 2]")) is None


def test_line_too_long_names_the_servers_limit():
    d = diagnose(500, "5.5.2 Line too long", stage="auth")
    assert "too long" in d.cause and "334" in d.fix and d.option == "host"


@pytest.mark.parametrize("code, reply, stage, expected", [
    # (temporary, reconnect, fresh_token, limit): what send_mail and the relay's proxy both do next
    (421, "4.3.2 Service not available, closing transmission channel", "mail", (True, True, False, False)),
    (432, "4.3.2 Concurrent connections limit exceeded.", "connect", (True, True, False, False)),
    (503, "5.5.1 Bad sequence of commands", "mail", (True, True, False, False)),
    (501, "5.5.127 Invalid XOAUTH2 auth data - Token will expire soon", "auth", (True, True, True, False)),
    (451, "4.7.500 Server busy. Please try again later", "mail", (True, False, False, False)),
    (535, "5.7.3 Authentication unsuccessful", "auth", (False, True, False, False)),
    (550, "5.7.60 SMTP; Client does not have permissions to send as this sender", "data", (False, False, False, False)),
    (554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException", "data", (False, False, False, True)),
    (550, "5.2.0 Mailbox unavailable", "rcpt", (False, False, False, False)),
    (550, "5.1.90 Your message can't be sent because you've reached your daily limit", "rcpt", (False, False, False, True)),
    (550, "5.7.705 Your tenant has exceeded its threshold", "mail", (False, False, False, True)),
])
def test_what_a_client_does_next_is_read_from_the_reply(code, reply, stage, expected):
    d = diagnose(code, reply, stage=stage)
    assert (d.temporary, d.reconnect, d.fresh_token, d.limit) == expected
