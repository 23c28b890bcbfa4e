# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the entra_app_credential module and hides a new secret's value, and only that, from every output.

Why an action plugin: ansible-core strips `_ansible_no_log` from what a module returns ("Removed unexpected
internal key"), but honours it on what an action returns. A result marked this way is replaced by
"censored: ... no_log ..." in every callback and log at any verbosity (-vvvv included) and in the diff, while
the registered variable keeps the full result, so the next task can store the value. Results without a new secret
stay visible as usual.

ansible-core can only censor a whole result, which would also hide what the user needs to see and is not
secret: the key id, the hint, the end date, the changes, the diff, the error of a failed verification. So the
result is censored and, at -v and above, shown once more as a copy with the secret value (and any text quoting
it) replaced by a placeholder.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

HIDDEN = "(hidden: only in the registered result)"


def visible_copy(result):
    """The result without the secret value: the value itself and any string containing it are replaced."""
    secret = result.get("secret")

    def clean(value):
        if isinstance(value, dict):
            return dict((k, clean(v)) for k, v in value.items() if not str(k).startswith("_ansible"))
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, str) and secret and secret in value:
            return value.replace(secret, HIDDEN)
        return value
    visible = clean(dict(result))
    visible["secret"] = HIDDEN
    visible.pop("invocation", None)
    return visible


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        result.update(self._execute_module(task_vars=task_vars))
        if result.get("secret"):
            result["_ansible_no_log"] = True
            host = (task_vars or {}).get("inventory_hostname")
            display.v("%s: the new secret's value is censored; the rest of the result => %s" % (
                self._task.get_name(), json.dumps(visible_copy(result), sort_keys=True, indent=4, default=str)),
                host=host)
        return result
