"""docs/awx.md lists exactly the options every module takes: the ones safe in module_defaults for the group."""

import glob
import importlib
import os
import re

from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import AUTH_ARGUMENT_SPEC

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def module_options():
    """Per module: its argument spec names (the module's own spec plus the shared auth options)."""
    result = {}
    for path in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py")):
        name = os.path.basename(path)[:-3]
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
