# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the entra_app_credential module and censors its result when it carries a new secret value.

Why an action plugin: ansible-core strips `_ansible_no_log` from what a module returns ("Removed unexpected
internal key"), but honours it on what an action returns. A result marked this way is replaced by
"censored: ... no_log ..." in every callback and log at any verbosity (-vvvv included) and in the diff, while
the registered variable keeps the full result, so the next task can store the value. Results without a new secret
stay visible as usual.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        result.update(self._execute_module(task_vars=task_vars))
        if result.get("secret"):
            result["_ansible_no_log"] = True
        return result
