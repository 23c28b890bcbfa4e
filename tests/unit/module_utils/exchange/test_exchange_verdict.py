"""_exchange_verdict: the rules Exchange applies at SMTP AUTH, from facts (the same rules the emulated Exchange
enforces, so a verdict and a real login agree)."""

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.verdict import smtp_auth_state, verdict

ON = smtp_auth_state(False, False)


def facts(**kw):
    base = {"mailbox_exists": True, "sp_registered": True, "sp_object_id_ok": True, "model": "rbac",
            "in_scope": True, "full_access": False, "entra_send_claim": False, "smtp_auth": ON, "pending": False}
    base.update(kw)
    return base


@pytest.mark.parametrize("kw, status, words", [
    ({}, "allowed", None),
    ({"pending": True}, "pending", "configured just now"),
    ({"in_scope": False}, "denied", "no role assignment"),
    ({"sp_registered": False}, "denied", "not registered"),
    ({"sp_object_id_ok": False}, "denied", "wrong object id"),
    ({"mailbox_exists": False}, "denied", "does not exist"),
    # The Entra claim switches Exchange to mailbox permissions: RBAC alone no longer lets the token in.
    ({"entra_send_claim": True}, "denied", "also holds the Entra permission SMTP.SendAsApp"),
    ({"entra_send_claim": True, "full_access": True}, "allowed", None),
    ({"model": "classic", "in_scope": False, "full_access": True, "entra_send_claim": True}, "allowed", None),
    ({"model": "classic", "in_scope": False, "full_access": True, "entra_send_claim": False}, "denied",
     "no admin-consented SMTP.SendAsApp"),
    ({"smtp_auth": smtp_auth_state(None, True)}, "denied", "disabled for the tenant"),
    ({"smtp_auth": smtp_auth_state(True, False)}, "denied", "disabled for the mailbox"),
])
def test_verdicts(kw, status, words):
    found = verdict(facts(**kw))
    assert found["status"] == status and found["allowed"] == (status == "allowed")
    if words:
        assert any(words in reason for reason in found["reasons"]), found["reasons"]
