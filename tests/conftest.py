"""Shared fixtures: one emulated tenant per pytest worker, a fresh tenant state per test."""

import pytest

from emulator import Emulator


@pytest.fixture(scope="session")
def emulator():
    """The running emulator (HTTPS identity / Graph / Exchange, managed identity endpoint, SMTP), started once."""
    with Emulator() as running:
        yield running


@pytest.fixture
def tenant(emulator):
    """The emulator's tenant, reset to the seeded state before the test (isolation between tests)."""
    return emulator.reset()
