"""Fixtures for the Dovecot witness tests (scripts/test-stages/15-dovecot.sh): one Dovecot per pytest process."""

import pytest

from witness import DovecotWitness

MAILBOX = "app@contoso.onmicrosoft.com"


@pytest.fixture(scope="session")
def dovecot_server(emulator):
    witness = DovecotWitness(emulator)
    try:
        witness.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))  # never a skip: a missing witness is a failure of the stage
    yield witness
    witness.stop()


@pytest.fixture
def dovecot(emulator, tenant, dovecot_server):
    """Dovecot trusting the admin app's tokens for MAILBOX (its key published, the email claim on), empty sink."""
    app_id = emulator.admin.client_id
    tenant.tokens.mailbox_claims[app_id] = MAILBOX
    dovecot_server.publish_key(app_id)
    dovecot_server.sink.messages.clear()
    dovecot_server.mark = len(dovecot_server.log())
    return dovecot_server
