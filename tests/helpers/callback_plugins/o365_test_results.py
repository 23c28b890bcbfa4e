# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: every task result, in order, as JSON in the file named by O365_TEST_RESULTS.

A result censored by no_log (entra_app_credential with a new secret) is replaced by what the task registered,
as a playbook would see it: the harness registers every task, and the strategy stores the registered value
right after this callback, so it is read at the next event.

Works on ansible-core 2.17 to 2.21: the result's public `result` / `task` / `host` (2.19+) are preferred over the
underscored names 2.17 only has, and `task.register` is a name up to 2.20 but a mapping of names to register
projections on 2.21 (`register: name` becomes `{name: <the whole result>}`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: o365_test_results
type: aggregate
short_description: write task results as JSON for the test harness
description: Writes every task result, in order, to the file named by the O365_TEST_RESULTS environment variable.
"""

import json
import os

from ansible.plugins.callback import CallbackBase

try:
    from collections.abc import Mapping
except ImportError:  # pragma: no cover - Python 2 is not a controller any more
    Mapping = dict


def _part(result, name):
    """result.result / .task / .host (ansible-core 2.19+), else the underscored attribute (2.17)."""
    try:
        return getattr(result, name)
    except AttributeError:
        return getattr(result, "_" + name)


def _register_names(task):
    """The variables a task registers: one name (ansible-core <= 2.20) or a mapping's keys (2.21)."""
    register = getattr(task, "register", None)
    if not register:
        return []
    if isinstance(register, Mapping):
        return list(register)
    return [register]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "o365_test_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.results = []
        self._variables = None
        self._pending = []  # (entry, host, register names) of censored results

    def v2_playbook_on_play_start(self, play):
        self._resolve()
        self._variables = getattr(play, "_variable_manager", None)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._resolve()

    def _resolve(self):
        facts = getattr(self._variables, "_nonpersistent_fact_cache", None) or {}
        for entry, host, names in self._pending:
            for name in names:
                registered = facts.get(host, {}).get(name)
                if isinstance(registered, Mapping):
                    entry.pop("censored", None)
                    entry.update(registered)
                    break
        self._pending = []

    def _record(self, result, **status):
        self._resolve()
        task, host = _part(result, "task"), _part(result, "host").get_name()
        entry = dict(_part(result, "result"))
        names = _register_names(task)
        if "censored" in entry and names:
            self._pending.append((entry, host, names))
        entry.setdefault("changed", False)
        entry.update(status)
        entry["_task"] = task.get_name()
        entry["_host"] = host
        self.results.append(entry)

    def v2_runner_on_ok(self, result):
        self._record(result, failed=bool(_part(result, "result").get("failed", False)))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, failed=True, unreachable=True)

    def v2_playbook_on_stats(self, stats):
        self._resolve()
        path = os.environ.get("O365_TEST_RESULTS")
        if path:
            with open(path, "w") as handle:
                json.dump(self.results, handle, default=str)
