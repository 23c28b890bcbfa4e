# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared auth options -> the Credential they ask for (auth_method, or the first kind whose options are
set), and the TokenProvider around it. Which options each kind reads, and in what order auto tries the kinds:
kinds.py.

Only the chosen kind's file is imported: msal_credentials (secret, certificate; msal itself only when a token is
acquired), identity_credentials (managed identity, workload identity, Azure CLI: azure-identity); ci_tokens (a CI
job's OIDC token) when workload identity or the CI detection needs it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import cloud_from_options
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import kinds
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.provider import TokenProvider

# auth_method values; "auto" takes the first kind (in kinds.KINDS' order) whose options are set.
AUTH_METHODS = kinds.AUTH_METHODS


def credential_option_names(secrets=True):
    """Every option a credential reads (the shared ones first); secrets=False leaves out the secret ones."""
    return tuple(o.name for o in kinds.all_options()
                 if o.name not in kinds.NOT_CREDENTIAL and (secrets or not o.secret))


def kind_option_names():
    """The options of the kinds themselves (not tenant, client, cloud, ...)."""
    return tuple(o.name for kind in kinds.KINDS for o in kind.options)


def _is_set(option, value):
    if value in (None, "", False):
        return False
    # federated_token_source is always set (default auto): only another value asks for its kind.
    if option.default is not None and isinstance(value, str):
        return value.strip().lower() != option.default
    return True


def _present(opts, kind):
    return [o.name for o in kind.options if o.selects and _is_set(o, opts.get(o.name))]


def options_choosing_a_kind(opts):
    """The options set in opts that ask for some credential kind."""
    return [name for kind in kinds.KINDS for name in _present(opts, kind)]


def _ci_tokens():
    # Imported only when workload identity or the CI detection is needed: every task compiles what it imports.
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import ci_tokens
    return ci_tokens


def _selectors():
    """How the options that choose a kind are set, for the message that none is."""
    return ", ".join(("%s: true" % o.name) if o.type == "bool" else o.name
                     for kind in kinds.KINDS for o in kind.options if o.selects)


def _choose_kind(opts, environ):
    """(Kind, warnings) from auth_method, the options that are set and, when none is, the CI environment."""
    method = (opts.get("auth_method") or "auto").strip().lower()
    chosen = kinds.kind_named(method)
    if method != "auto" and chosen is None:
        raise ConfigError("unknown auth_method %r" % opts.get("auth_method"), option="auth_method",
                          fix="use one of: %s" % ", ".join(AUTH_METHODS))
    present = [(kind, _present(opts, kind)) for kind in kinds.KINDS]
    present = [(kind, names) for kind, names in present if names]
    if chosen is not None:
        ignored = [names[0] for kind, names in present if kind is not chosen]
        warnings = ["%s ignored: auth_method is %s" % (", ".join(ignored), chosen.name)] if ignored else []
        return chosen, warnings
    if not present and _ci_tokens().detect_platform(environ):
        # A GitHub Actions / GitLab CI job with no credential option: its own OIDC token (workload identity).
        return kinds.kind_named("workload_identity"), []
    if not present:
        raise ConfigError("no credential is set", option="auth_method",
                          fix="set one of %s (or their AZURE_* variables), or run in a GitHub Actions / GitLab CI "
                              "job (its own OIDC token)" % _selectors())
    # A true bool option (managed_identity, azure_cli) is an explicit request, not a value from the environment.
    flags = set(o.name for kind in kinds.KINDS for o in kind.options if o.type == "bool")
    flagged = [names[0] for kind, names in present if names[0] in flags]
    if flagged and len(present) > 1:
        others = [names[0] for kind, names in present if names[0] != flagged[0]]
        raise ConfigError("%s and %s both choose a credential" % (flagged[0], others[0]), option=flagged[0],
                          fix="remove one of them, or set auth_method to the kind you want")
    ignored = [names[0] for other, names in present[1:]]
    warnings = ["%s ignored: %s takes precedence (set auth_method to choose)" % (", ".join(ignored), present[0][1][0])
                ] if ignored else []
    return present[0][0], warnings


def credential_from_options(opts, cloud=None, environ=None):
    """The Credential the options ask for. ConfigError names the option; no network, no third-party import
    beyond what the chosen kind needs. Call validate() for the full offline check and the warnings.
    environ (default os.environ): where a CI job's OIDC token variables are read."""
    opts = dict(opts or {})
    environ = os.environ if environ is None else environ
    kind, warnings = _choose_kind(opts, environ)
    cloud = cloud or cloud_from_options(opts)
    ca_path = opts.get("ca_path") or None
    if ca_path is not None:
        if not os.path.isfile(ca_path):
            raise ConfigError("%s is not a readable file" % ca_path, option="ca_path",
                              fix="give the path of a PEM bundle of the CA certificates to trust")
    credential = kinds.credential_class(kind).from_options(opts, environ, cloud=cloud, ca_path=ca_path,
                                                           timeout=opts.get("timeout") or 30)
    credential.option = credential.option or kind.options[0].name
    credential.notes[:0] = warnings
    return credential


def token_provider_from_options(opts, cloud=None):
    """credential_from_options + TokenProvider with the token_cache_dir option."""
    credential = credential_from_options(opts, cloud=cloud)
    return TokenProvider(credential, cache_dir=(opts or {}).get("token_cache_dir") or None)
