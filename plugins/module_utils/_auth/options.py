# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared auth options -> the Credential they ask for (auth_method, or the first kind whose options are
set), and the TokenProvider around it.

Each kind's file is imported only when chosen: msal_credentials (secret, certificate; msal itself only when a
token is acquired), identity_credentials (managed identity, workload identity, Azure CLI: azure-identity), ci_tokens (a CI job's OIDC
token for workload identity, and detecting the CI platform when no credential option is set)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import cloud_from_options
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.checks import check_client_id, check_tenant
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.credential import SHARED_OPTIONS, AccessTokenCredential
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.provider import TokenProvider

# auth_method values; "auto" takes the first kind (in this order) whose options are set.
AUTO_ORDER = ("access_token", "certificate", "client_secret", "workload_identity", "managed_identity", "azure_cli")
AUTH_METHODS = ("auto",) + AUTO_ORDER
_ALIASES = {"secret": "client_secret", "federated_token_file": "workload_identity", "federated": "workload_identity",
            "cli": "azure_cli", "msi": "managed_identity", "token": "access_token"}

# The options whose presence selects each kind (bool options count only when true): kind selection's own table,
# so that choosing imports only the chosen kind's file.
_SIGNALS = {
    "access_token": ("access_token",),
    "certificate": ("certificate_path",),
    "client_secret": ("client_secret",),
    "workload_identity": ("federated_token_file",),
    "managed_identity": ("managed_identity", "managed_identity_client_id"),
    "azure_cli": ("azure_cli",),
}


def kind_classes():
    """kind -> its Credential class, each declaring the options it reads (OPTIONS, SECRET_OPTIONS)."""
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import identity_credentials, msal_credentials
    return dict((cls.kind, cls) for cls in (
        AccessTokenCredential, msal_credentials.CertificateCredential, msal_credentials.ClientSecretCredential,
        identity_credentials.WorkloadIdentityCredential, identity_credentials.ManagedIdentityCredential,
        identity_credentials.AzureCliCredential))


def credential_option_names(secrets=True):
    """Every option some credential kind reads (SHARED_OPTIONS first); secrets=False leaves out the secret ones."""
    names, classes = list(SHARED_OPTIONS), kind_classes()
    for kind in AUTO_ORDER:
        cls = classes[kind]
        names.extend(n for n in cls.OPTIONS if n not in names and (secrets or n not in cls.SECRET_OPTIONS))
    return tuple(names)


def kind_signal_names():
    """The options that choose a credential kind when set."""
    return tuple(name for kind in AUTO_ORDER for name in _SIGNALS[kind])


# Options that are an explicit request for one kind, not a value that happens to be in the environment.
_FLAGS = ("managed_identity", "azure_cli")


def _ci_tokens():
    # Imported only when workload identity or the CI detection is needed: every task compiles what it imports.
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import ci_tokens
    return ci_tokens


def _present(opts, kind):
    names = [name for name in _SIGNALS[kind] if opts.get(name) not in (None, "", False)]
    # federated_token_source is always set (default auto): only a chosen source asks for workload identity.
    if kind == "workload_identity" and (opts.get("federated_token_source") or "auto").strip().lower() != "auto":
        names.append("federated_token_source")
    return names


def _choose_kind(opts, environ):
    """(kind, warnings) from auth_method, the options that are set and, when none is, the CI environment."""
    method = (opts.get("auth_method") or "auto").strip().lower()
    method = _ALIASES.get(method, method)
    if method not in AUTH_METHODS:
        raise ConfigError("unknown auth_method %r" % opts.get("auth_method"), option="auth_method",
                          fix="use one of: %s" % ", ".join(AUTH_METHODS))
    present = [(kind, _present(opts, kind)) for kind in AUTO_ORDER]
    present = [(kind, names) for kind, names in present if names]
    if method != "auto":
        ignored = [names[0] for kind, names in present if kind != method]
        warnings = ["%s ignored: auth_method is %s" % (", ".join(ignored), method)] if ignored else []
        return method, warnings
    if not present and _ci_tokens().detect_platform(environ):
        # A GitHub Actions / GitLab CI job with no credential option: its own OIDC token (workload identity).
        return "workload_identity", []
    if not present:
        raise ConfigError("no credential is set", option="auth_method",
                          fix="set one of client_secret, certificate_path, federated_token_file, access_token, "
                              "managed_identity: true or azure_cli: true (or their AZURE_* variables), or "
                              "federated_token_source in a GitHub Actions / GitLab CI job")
    flagged = [names[0] for kind, names in present if names[0] in _FLAGS]
    if flagged and len(present) > 1:
        others = [names[0] for kind, names in present if names[0] != flagged[0]]
        raise ConfigError("%s and %s both choose a credential" % (flagged[0], others[0]), option=flagged[0],
                          fix="remove one of them, or set auth_method to the kind you want")
    kind = present[0][0]
    ignored = [names[0] for other, names in present[1:]]
    warnings = ["%s ignored: %s takes precedence (set auth_method to choose)" % (", ".join(ignored), present[0][1][0])
                ] if ignored else []
    return kind, warnings


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
    common = dict(cloud=cloud, ca_path=ca_path, timeout=opts.get("timeout") or 30)
    client_credential = kind in ("client_secret", "certificate", "workload_identity")
    tenant = check_tenant(opts.get("tenant_id"), required=client_credential)
    if kind == "access_token":
        credential = AccessTokenCredential(opts.get("access_token"), tenant_id=tenant, **common)
    elif kind in ("client_secret", "certificate"):
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import msal_credentials
        client_id = check_client_id(opts.get("client_id"))
        if kind == "client_secret":
            credential = msal_credentials.ClientSecretCredential(opts.get("client_secret"), tenant_id=tenant,
                                                                 client_id=client_id, **common)
        else:
            credential = msal_credentials.CertificateCredential(
                opts.get("certificate_path"), password=opts.get("certificate_password"),
                thumbprint_algorithm=opts.get("certificate_thumbprint_algorithm") or "sha256",
                tenant_id=tenant, client_id=client_id, **common)
    else:
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import identity_credentials
        if kind == "workload_identity":
            ci_tokens = _ci_tokens()
            source = ci_tokens.choose_source(opts.get("federated_token_source"), opts.get("federated_token_file"),
                                             environ)
            token_source = None
            if source in ("github", "gitlab"):
                token_source = ci_tokens.token_source(source, environ, cloud.federated_audience,
                                                      variable=opts.get("federated_token_variable"),
                                                      ca_path=ca_path, timeout=common["timeout"])
            if token_source is not None and opts.get("federated_token_file"):
                warnings.append("federated_token_file ignored: federated_token_source is %s" % source)
            credential = identity_credentials.WorkloadIdentityCredential(
                opts.get("federated_token_file") if source in ("file", None) else None, token_source=token_source,
                tenant_id=tenant, client_id=check_client_id(opts.get("client_id")), **common)
        elif kind == "managed_identity":
            credential = identity_credentials.ManagedIdentityCredential(
                tenant_id=tenant, client_id=check_client_id(opts.get("managed_identity_client_id"),
                                                            option="managed_identity_client_id", required=False),
                **common)
        else:
            credential = identity_credentials.AzureCliCredential(tenant_id=tenant, **common)
    credential.notes.extend(warnings)
    return credential


def token_provider_from_options(opts, cloud=None):
    """credential_from_options + TokenProvider with the token_cache_dir option."""
    credential = credential_from_options(opts, cloud=cloud)
    return TokenProvider(credential, cache_dir=(opts or {}).get("token_cache_dir") or None)
