"""Shared fixtures: one emulated tenant per pytest worker, a fresh tenant state per test."""

import pytest

from emulator import Emulator
from emulator.clients import PinnedSession


def pytest_configure(config):
    config.addinivalue_line("markers", "real_tenant: runs only against a real Microsoft 365 tenant "
                                       "(O365_REAL_TENANT=1 and credentials in the environment)")


@pytest.fixture(scope="session")
def emulator():
    """The running emulator (HTTPS identity / Graph / Exchange, managed identity endpoint, SMTP), started once."""
    with Emulator() as running:
        yield running


@pytest.fixture
def tenant(emulator):
    """The emulator's tenant, reset to the seeded state before the test (isolation between tests)."""
    return emulator.reset()


@pytest.fixture
def http(emulator):
    """A requests session that trusts the emulator's CA on every request (REQUESTS_CA_BUNDLE cannot override it)."""
    session = PinnedSession(emulator.ca_path)
    yield session
    session.close()


@pytest.fixture
def module_side(monkeypatch):
    """A module run in this process behaves as it does on a managed host.

    Importing controller code (a Templar in another test) flags the whole process as the controller; warnings and
    tracebacks would then go to Display instead of the module's result. A module never runs in the controller.
    """
    from ansible.module_utils import _internal
    from ansible.module_utils._internal import _traceback
    monkeypatch.setattr(_internal, "is_controller", False)
    monkeypatch.setattr(_traceback, "_is_traceback_enabled", _traceback._is_module_traceback_enabled)


# A CI runner's own variables would make the collection take the job's OIDC token (federated_token_source: auto):
# the tests set them themselves, so the suite behaves the same on a laptop and on a GitHub or GitLab runner.
CI_RUNNER_VARIABLES = ("GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                       "GITLAB_CI", "GITLAB_OIDC_TOKEN")


@pytest.fixture(autouse=True)
def _no_ci_runner_variables(monkeypatch):
    for name in CI_RUNNER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
