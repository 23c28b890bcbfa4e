# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: every task result, in order, as JSON in the file named by O365_TEST_RESULTS.

A result censored by no_log (entra_app_credential with a new secret) is replaced by what the task registered,
as a playbook would see it: the harness registers every task, and the strategy stores the registered value
right after this callback, so it is read at the next event.
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


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "o365_test_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.results = []
        self._variables = None
        self._pending = []  # (entry, host, register name) of censored results

    def v2_playbook_on_play_start(self, play):
        self._resolve()
        self._variables = getattr(play, "_variable_manager", None)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._resolve()

    def _resolve(self):
        facts = getattr(self._variables, "_nonpersistent_fact_cache", None) or {}
        for entry, host, name in self._pending:
            registered = facts.get(host, {}).get(name)
            if isinstance(registered, dict):
                entry.pop("censored", None)
                entry.update(registered)
        self._pending = []

    def _record(self, result, **status):
        self._resolve()
        entry = dict(result._result)
        if "censored" in entry and result._task.register:
            self._pending.append((entry, result._host.get_name(), result._task.register))
        entry.setdefault("changed", False)
        entry.update(status)
        entry["_task"] = result._task.get_name()
        entry["_host"] = result._host.get_name()
        self.results.append(entry)

    def v2_runner_on_ok(self, result):
        self._record(result, failed=bool(result._result.get("failed", False)))

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
