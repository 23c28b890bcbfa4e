"""exchange_smtp_access against a real Microsoft 365 tenant: run only with O365_REAL_TENANT=1.

Needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) of an admin app
bootstrapped as docs/exchange-bootstrap.md says, O365_TEST_APP_ID (an app with a service principal that may be
granted SMTP sending for the test) and O365_TEST_MAILBOX (an existing mailbox, e.g. a shared one). Grants with a
scope named o365-smtp-oauth-test-<random> and removes everything again at the end.
"""

import os
import uuid

import pytest

from helpers.playbook import run_playbook

pytestmark = [
    pytest.mark.real_tenant,
    pytest.mark.skipif(os.environ.get("O365_REAL_TENANT") != "1" or not os.environ.get("O365_TEST_APP_ID")
                       or not os.environ.get("O365_TEST_MAILBOX"),
                       reason="real-tenant test: set O365_REAL_TENANT=1, AZURE_TENANT_ID / AZURE_CLIENT_ID / "
                              "AZURE_CLIENT_SECRET of a bootstrapped admin app, O365_TEST_APP_ID and "
                              "O365_TEST_MAILBOX to run it"),
]


def run(tasks, check=False):
    """ansible-playbook with the real tenant's credentials from the environment (no emulator)."""
    return run_playbook(tasks, check=check, timeout=900).results


def test_rbac_grant_is_idempotent_and_removed_on_a_real_tenant():
    scope = "o365-smtp-oauth-test-%s" % uuid.uuid4().hex[:8]
    task = {"o365.smtp_oauth.exchange_smtp_access": {
        "app_id": os.environ["O365_TEST_APP_ID"], "scope_name": scope,
        "mailboxes": [{"address": os.environ["O365_TEST_MAILBOX"], "smtp_auth": "inherit"}]}}
    try:
        assert run([task], check=True)[0]["changed"]
        [created] = run([task])
        assert created["changed"] and not created.get("failed"), created
        # Findings 1-3 of "Faithful to Microsoft": a re-run reads role assignments with -Role/-RoleAssignee (no
        # -App), finds its own in RoleAssignee, and reads the scope's RecipientFilter: nothing to change.
        assert not run([task], check=True)[0]["changed"]
        [again] = run([task])
        assert not again["changed"] and again["actions"] == [], again
        [report] = run([{"o365.smtp_oauth.exchange_smtp_access_info": {
            "app_id": os.environ["O365_TEST_APP_ID"], "mailbox": os.environ["O365_TEST_MAILBOX"]}}])
        assert report["pairs"] and report["service_principals"][0]["object_id_ok"]
        ours = [a for a in report["role_assignments"] if a["scope"] == scope]
        assert ours and ours[0]["service_principal_id"] == created["service_principal_id"], report
        assert [s for s in report["scopes"] if s["name"] == scope][0]["filter"]
    finally:
        absent = dict(task["o365.smtp_oauth.exchange_smtp_access"], state="absent")
        run([{"o365.smtp_oauth.exchange_smtp_access": absent}])


def test_classic_grant_is_idempotent_and_removed_on_a_real_tenant():
    """Classic model (FullAccess): the re-run reads Get-MailboxPermission -User and must find its own grant
    whatever form Exchange prints the service principal in."""
    task = {"o365.smtp_oauth.exchange_smtp_access": {
        "app_id": os.environ["O365_TEST_APP_ID"], "authorization_model": "classic",
        "mailboxes": [{"address": os.environ["O365_TEST_MAILBOX"], "smtp_auth": "inherit"}]}}
    try:
        [created] = run([task])
        assert not created.get("failed"), created
        assert not run([task], check=True)[0]["changed"]
        [again] = run([task])
        assert not again["changed"] and again["actions"] == [], again
        assert again["mailboxes"][0]["full_access"] is True
    finally:
        absent = dict(task["o365.smtp_oauth.exchange_smtp_access"], state="absent")
        run([{"o365.smtp_oauth.exchange_smtp_access": absent}])
