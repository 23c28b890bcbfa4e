# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module wrapper: shared auth options, lazy cloud / token provider / HTTP client, and one place that turns
every error into a single redacted fail_json.

The only module_utils file that imports Ansible (the others run without it in the relay's proxy).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import sys
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback
from ansible.module_utils.errors import AnsibleFallbackNotFound
from ansible.module_utils.common.validation import check_type_dict, check_type_list
from ansible.module_utils.six import string_types

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import (
    MissingLibraryError,
    O365Error,
    redact,
)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.kinds import all_options

# azure.azcollection's AZURE_CLOUD_ENVIRONMENT values (as its users have them set) -> our cloud names.
AZCOLLECTION_CLOUDS = {"azurecloud": "public", "azureusgovernment": "usgov", "azurechinacloud": "china"}


def _cloud_fallback(*names):
    """O365_CLOUD, else azure.azcollection's AZURE_CLOUD_ENVIRONMENT mapped to our names (unknown: not used)."""
    for name in names:
        value = os.environ.get(name)
        if not value:
            continue
        if name == "AZURE_CLOUD_ENVIRONMENT":
            value = AZCOLLECTION_CLOUDS.get(value.strip().lower())
            if value is None:
                continue
        return value
    raise AnsibleFallbackNotFound


def _argument_spec(option):
    spec = dict(type=option.type, no_log=option.secret)
    if option.default is not None:
        spec["default"] = option.default
    if option.choices:
        spec["choices"] = list(option.choices)
    if option.env:
        # The azure.azcollection names (AZURE_TENANT, AZURE_SECRET, AZURE_CLOUD_ENVIRONMENT) come after ours.
        spec["fallback"] = (_cloud_fallback if option.name == "cloud" else env_fallback, list(option.env))
    return spec


# The shared auth options, from their one table (_auth/kinds.py; doc fragment o365.smtp_oauth.auth).
AUTH_ARGUMENT_SPEC = dict((option.name, _argument_spec(option)) for option in all_options())


def dict_shape_errors(argument_spec, params, context=()):
    """Messages naming each dict / list-of-dict option (and sub-option) whose value is not a dictionary.

    ansible-core reports such a value as "dictionary requested, could not parse JSON or key=value", naming no
    option; this finds which option it was.
    """
    errors = []
    for name, spec in (argument_spec or {}).items():
        sub_spec = spec.get("options")
        wanted = spec.get("type")
        if not (wanted == "dict" or (wanted == "list" and spec.get("elements") == "dict")):
            continue
        value = None
        for key in (name,) + tuple(spec.get("aliases") or ()):
            if isinstance(params, dict) and params.get(key) is not None:
                value = params[key]
                break
        if value is None:
            continue
        where = " -> ".join(context + (name,))
        if wanted == "list" and not isinstance(value, list):
            try:
                value = check_type_list(value)  # as ansible-core converts it: a string splits on commas
            except (TypeError, ValueError):
                continue  # ansible-core's own message names the option
        for item in (value if isinstance(value, list) else [value]):
            element = item
            if isinstance(element, string_types):
                try:
                    element = check_type_dict(element)
                except (TypeError, ValueError):
                    pass
            if not isinstance(element, dict):
                errors.append("option '%s' must be %s, got %s %r"
                              % (where, "a list of dictionaries" if wanted == "list" else "a dictionary",
                                 type(item).__name__, _short(item)))
            elif sub_spec:
                errors.extend(dict_shape_errors(sub_spec, element, context + (name,)))
    return errors


def _short(value):
    text = repr(value) if not isinstance(value, string_types) else value
    return text if len(text) <= 60 else text[:57] + "..."


# ansible-core's words for a value it could not turn into a dictionary ("dictionary requested, could not parse JSON
# or key=value"; "unable to evaluate string as dictionary" for a string that starts like JSON and is not).
_NOT_A_DICT = re.compile(r"dictionary requested|as dictionary")


class _AnsibleModule(AnsibleModule):
    """AnsibleModule whose argument-spec failure names the option when a dictionary was expected."""

    _o365_initialising = False
    _o365_shape_errors = ()

    def __init__(self, *args, **kwargs):
        self._o365_initialising = True
        try:
            super(_AnsibleModule, self).__init__(*args, **kwargs)
        finally:
            self._o365_initialising = False

    def _load_params(self):
        super(_AnsibleModule, self)._load_params()
        # Options the task set explicitly to null or '': in check mode, the id of an object an earlier task
        # (itself in check mode) would have created. The environment fallback never fills an explicit null.
        self.o365_given_empty = frozenset(k for k, v in self.params.items() if v is None or v == "")
        try:
            self._o365_shape_errors = dict_shape_errors(self.argument_spec, self.params)
        except Exception:  # never let this diagnosis hide ansible-core's own message
            self._o365_shape_errors = ()

    def fail_json(self, msg=None, **kwargs):
        if self._o365_initialising and self._o365_shape_errors and _NOT_A_DICT.search(msg or ""):
            # ansible-core's message names no option; ours names each one that is not a dictionary.
            msg = "; ".join(self._o365_shape_errors)
        super(_AnsibleModule, self).fail_json(msg=msg, **kwargs)


class O365Module(object):
    """AnsibleModule plus the shared options and clients.

    Composes (does not subclass) AnsibleModule: unknown attributes (warn, debug, exit_json, fail_json, ...)
    are delegated to it. `argument_spec` holds the module's own options; the auth options are added here.
    """

    def __init__(self, argument_spec, supports_check_mode=True, auth=True, **kwargs):
        spec = dict(AUTH_ARGUMENT_SPEC) if auth else {}
        spec.update(argument_spec or {})
        self.module = _AnsibleModule(argument_spec=spec, supports_check_mode=supports_check_mode, **kwargs)
        self._cloud = None
        self._token_provider = None
        self._http = None
        # ansible-core takes a boolean as a number (bool is an int in Python): wait_timeout: false would mean 0 s.
        booleans = sorted(name for name, option in spec.items() if option.get("type") in ("int", "float")
                          and isinstance(self.module.params.get(name), bool))
        if booleans:
            self.module.fail_json(msg="; ".join("%s: must be a number, got the boolean %s" % (
                name, self.module.params[name]) for name in booleans))

    def __getattr__(self, name):
        # Only reached for names this class does not define.
        if name == "module":
            raise AttributeError(name)
        return getattr(self.module, name)

    @property
    def params(self):
        return self.module.params

    @property
    def check_mode(self):
        return self.module.check_mode

    def given_empty(self, name):
        """True when the task set this option explicitly to null or '' (not merely left it out)."""
        return name in self.module.o365_given_empty

    # -- lazy pieces --------------------------------------------------------------------------------
    @property
    def cloud(self):
        if self._cloud is None:
            from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import cloud_from_options
            self._cloud = cloud_from_options(self.params)
        return self._cloud

    @property
    def token_provider(self):
        if self._token_provider is None:
            from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.options import token_provider_from_options
            provider = token_provider_from_options(self.params, cloud=self.cloud)
            for warning in provider.credential.validate():
                self.module.warn(self.redact(warning))
            self._token_provider = provider
        return self._token_provider

    @property
    def http(self):
        if self._http is None:
            from ansible_collections.o365.smtp_oauth.plugins.module_utils._http import HttpClient
            p = self.params
            self._http = HttpClient(self.token_provider, ca_path=p.get("ca_path"),
                                    timeout=p.get("timeout") or 30, debug=self._debug_line,
                                    secrets=self.secret_values())
        return self._http

    def _debug_line(self, line):
        # Logged when ANSIBLE_DEBUG is set; the client already redacted it.
        self.module.debug(line)

    # -- secrets ------------------------------------------------------------------------------------
    def secret_values(self):
        values = set(str(v) for v in self.module.no_log_values if v)
        if self._token_provider is not None:
            values.update(str(v) for v in self._token_provider.secrets() if v)
        # Longest first, so a secret containing another is replaced whole.
        return sorted(values, key=len, reverse=True)

    def redact(self, text):
        return redact(text, self.secret_values())

    # -- ending -------------------------------------------------------------------------------------
    def exit_json(self, **result):
        self._warn_cache_errors()
        self.module.exit_json(**result)

    def fail_json(self, **result):
        self._warn_cache_errors()
        self.module.fail_json(**result)

    def _warn_cache_errors(self):
        """Token cache writes that failed did not fail the task, but the user must know (the next task asks the
        identity platform again): one warning each, naming token_cache_dir."""
        errors = getattr(self._token_provider, "cache_errors", None) or []
        while errors:
            self.module.warn(self.redact(errors.pop(0)))

    # -- running ------------------------------------------------------------------------------------
    def run(self, body):
        """The one way a module body ends: body(module) returns a dict that goes to exit_json, or to fail_json
        when it says failed (a failure that keeps its result, e.g. a created secret); every error becomes one
        fail_json."""
        result = None
        try:
            result = body(self)
        except MissingLibraryError as error:
            self.fail_json(exception=self._traceback(), **self._missing_library_result(error))
        except O365Error as error:
            self.fail_json(exception=self._traceback(), **error.to_result(self.secret_values()))
        except Exception as error:  # a bug or an unexpected answer: report it plainly, never a raw traceback
            self.fail_json(msg=self.redact("unexpected error (%s): %s" % (type(error).__name__, error)),
                           exception=self._traceback())
        if not isinstance(result, dict):
            # The body neither exited nor returned a result: a bug, reported instead of a silent empty output.
            self.fail_json(msg="internal error: the module body returned %s instead of a result"
                           % type(result).__name__)
        if result.get("failed"):
            result = dict(result)
            result.pop("failed")
            self.fail_json(msg=self.redact(result.pop("msg", None) or "failed"), **result)
        self.exit_json(**result)

    def _traceback(self):
        # Shown only when tracebacks are enabled (-vvv); redacted like the message, since frames quote values.
        return self.redact(traceback.format_exc())

    def _missing_library_result(self, error):
        # Every missing library at once (not one per run), with one pip command for all of them.
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._requirements import (
            missing_libraries, missing_message, pip_command)
        result = error.to_result(self.secret_values())
        missing = missing_libraries(also=error.library)
        if not any(name == error.library for name, _purpose in missing):
            missing.insert(0, (error.library, error.purpose))
        result["msg"] = missing_message(missing, sys.executable)
        result["error_fix"] = pip_command([name for name, _purpose in missing])
        result["missing_libraries"] = [name for name, _purpose in missing]
        return result


def run_module(argument_spec, body, **kwargs):
    """A module's main(): its own options (the shared auth ones added), then body(module) through run."""
    O365Module(argument_spec, **kwargs).run(body)
