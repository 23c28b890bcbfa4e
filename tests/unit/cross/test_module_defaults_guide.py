"""docs/awx.md lists exactly the options every module takes: the ones safe in module_defaults for the group."""

import importlib
import os
import re

import yaml

from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import AUTH_ARGUMENT_SPEC

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def group_modules():
    """The modules of the action group (meta/runtime.yml): the ones module_defaults for the group reaches."""
    with open(os.path.join(ROOT, "meta", "runtime.yml")) as handle:
        return yaml.safe_load(handle)["action_groups"]["o365"]


def module_options():
    """Per module of the group: its argument spec names (the module's own spec plus the shared auth options)."""
    result = {}
    for name in group_modules():
        module = importlib.import_module("ansible_collections.o365.smtp_oauth.plugins.modules." + name)
        spec = module.argument_spec() if hasattr(module, "argument_spec") else module.ARGUMENT_SPEC
        result[name] = set(spec) | set(AUTH_ARGUMENT_SPEC)
    return result


def test_the_guide_lists_the_options_every_module_takes():
    with open(os.path.join(ROOT, "docs", "awx.md")) as handle:
        text = handle.read()
    section = text.split("## module_defaults", 1)[1].split("```", 1)[0]
    listed = set(re.findall(r"`(\w+)`", section.split("token_cache_dir`.", 1)[0] + "token_cache_dir`"))
    listed.discard("o365")
    common = set.intersection(*module_options().values())
    assert listed == common
