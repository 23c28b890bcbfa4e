"""Fixtures for the ansible-playbook tests: `playbook` runs tasks against the session's emulator."""

import functools

import pytest

from helpers.playbook import run_playbook


@pytest.fixture
def playbook(emulator, tenant):
    """run_playbook bound to the emulator, on a fresh tenant: playbook(tasks, check=..., diff=..., env=...)."""
    return functools.partial(run_playbook, emulator=emulator)
