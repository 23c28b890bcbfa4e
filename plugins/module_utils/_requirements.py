# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Python libraries the modules need on the host that runs them, and which of them are missing.

A module stops at the first import that fails; the user should learn every missing library from that one run,
with one pip command, not one per run. Listed in the modules' documentation by the doc fragment
o365.smtp_oauth.requirements (keep both in step). Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib

# (pip name, import name, what for), in the order they are reported.
REQUIRED = (
    ("msal", "msal", "client secret and certificate credentials"),
    ("requests", "requests", "calls to Microsoft Graph, the Exchange admin API and the identity platform"),
    ("cryptography", "cryptography", "certificate credentials and reading certificates"),
)
OPTIONAL = (
    ("azure-identity", "azure.identity", "managed identity, workload identity and Azure CLI credentials"),
)


def _importable(name):
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def missing_libraries(also=None):
    """[(pip name, purpose)] of the required libraries that cannot be imported, plus `also` (a pip name that
    failed, e.g. the optional azure-identity) when it is missing too."""
    missing = []
    for pip_name, module_name, purpose in REQUIRED + OPTIONAL:
        is_optional = (pip_name, module_name, purpose) in OPTIONAL
        if is_optional and pip_name != also:
            continue
        if pip_name == also or not _importable(module_name):
            missing.append((pip_name, purpose))
    return missing


def missing_message(missing, python):
    """One message naming every missing library and one pip command that installs them all."""
    names = [name for name, _purpose in missing]
    plural = "ies" if len(names) > 1 else "y"
    return ("Failed to import the required Python librar%s (%s) on the host running the module, with the Python "
            "interpreter %s: %s. Install %s with: %s" % (
                plural, ", ".join(names), python,
                "; ".join("%s is needed for %s" % (name, purpose) for name, purpose in missing),
                "them" if len(names) > 1 else "it", pip_command(names, python)))


def pip_command(names, python=None):
    return "%s -m pip install %s" % (python, " ".join(names)) if python else "pip install %s" % " ".join(names)
