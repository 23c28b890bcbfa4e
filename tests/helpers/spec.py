"""Module parameters as AnsibleModule hands them to a module body: the module's real argument spec (with the
shared auth options), defaults filled in, types and choices checked. Tests that call a body without
ansible-playbook build their params here, so the bodies never need defaults of their own."""

import importlib

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import AUTH_ARGUMENT_SPEC

_MODULES = "ansible_collections.o365.smtp_oauth.plugins.modules."


def module_params(module_name, **given):
    """The validated params of o365.smtp_oauth.<module_name> for the options given. Environment fallbacks
    (AZURE_*) are left out: a test says what it uses."""
    spec = dict(AUTH_ARGUMENT_SPEC)
    spec.update(importlib.import_module(_MODULES + module_name).argument_spec())
    spec = dict((name, dict((k, v) for k, v in option.items() if k != "fallback")) for name, option in spec.items())
    result = ArgumentSpecValidator(spec).validate(given)
    if result.error_messages:
        raise ValueError("%s: %s" % (module_name, "; ".join(result.error_messages)))
    return result.validated_parameters
