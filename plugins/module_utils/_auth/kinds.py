# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one table of the shared auth options: each option once (type, environment variables, default, choices,
secret or not, offered by the relay role or not) and each credential kind, in the order auth_method auto tries
them, with the options it reads, the auth_method aliases that name it and the file of its Credential class.

Derived from here: the modules' argument spec (_module.py), choosing and building the credential (options.py), the
proxy's option names; tests hold the doc fragment (doc_fragments/auth.py) and the relay role to it. Plain data,
nothing imported until a kind is chosen: msal and azure-identity stay with the kind that needs them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections

# selects: setting it (to anything but empty, false or its default) asks for its kind. relay: the relay's proxy
# configuration (roles/relay/templates/proxy.json.j2) carries it, a secret one as <name>_file (a file of its own).
Option = collections.namedtuple("Option", "name type env default choices secret selects relay")


def option(name, type="str", env=(), default=None, choices=None, secret=False, selects=False, relay=False):
    return Option(name, type, tuple(env), default, tuple(choices) if choices else None, secret, selects, relay)


# load() imports the file that holds the kind's class, written out so that Ansible ships it with the module.
Kind = collections.namedtuple("Kind", "name load class_name options aliases relay")


def _credential():
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import credential
    return credential


def _msal_credentials():
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import msal_credentials
    return msal_credentials


def _identity_credentials():
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import identity_credentials
    return identity_credentials


# Who and which cloud: read by every kind (client_id by the app kinds).
SHARED = (
    option("tenant_id", env=("AZURE_TENANT_ID", "AZURE_TENANT"), relay=True),
    option("client_id", env=("AZURE_CLIENT_ID",), relay=True),
)

# The credential kinds; auth_method auto takes the first whose options are set. relay=False: the relay cannot
# use it (a given token cannot be renewed; the Azure CLI needs a person's `az login`).
KINDS = (
    Kind("access_token", _credential, "AccessTokenCredential", aliases=("token",), relay=False, options=(
        option("access_token", secret=True, selects=True),)),
    Kind("certificate", _msal_credentials, "CertificateCredential", aliases=(), relay=True, options=(
        option("certificate_path", type="path", env=("AZURE_CLIENT_CERTIFICATE_PATH",), selects=True, relay=True),
        option("certificate_password", env=("AZURE_CLIENT_CERTIFICATE_PASSWORD",), secret=True, relay=True),
        option("certificate_thumbprint_algorithm", default="sha256", choices=("sha256", "sha1")))),
    Kind("client_secret", _msal_credentials, "ClientSecretCredential", aliases=("secret",), relay=True, options=(
        option("client_secret", env=("AZURE_CLIENT_SECRET", "AZURE_SECRET"), secret=True, selects=True, relay=True),)),
    Kind("workload_identity", _identity_credentials, "WorkloadIdentityCredential",
         aliases=("federated", "federated_token_file"), relay=True, options=(
             option("federated_token_file", type="path", env=("AZURE_FEDERATED_TOKEN_FILE",), selects=True,
                    relay=True),
             option("federated_token_source", default="auto", choices=("auto", "file", "github", "gitlab"),
                    selects=True),
             option("federated_token_variable", default="GITLAB_OIDC_TOKEN"))),
    Kind("managed_identity", _identity_credentials, "ManagedIdentityCredential", aliases=("msi",), relay=True,
         options=(option("managed_identity", type="bool", default=False, selects=True, relay=True),
                  option("managed_identity_client_id", selects=True, relay=True))),
    Kind("azure_cli", _identity_credentials, "AzureCliCredential", aliases=("cli",), relay=False, options=(
        option("azure_cli", type="bool", default=False, selects=True),)),
)

AUTH_METHODS = ("auto",) + tuple(kind.name for kind in KINDS)

# How to reach the cloud; the token cache. Read by the credential (authority_host, ca_path) or by the clients.
CONNECTION = (
    option("auth_method", default="auto", choices=AUTH_METHODS, relay=True),
    option("cloud", env=("O365_CLOUD", "AZURE_CLOUD_ENVIRONMENT"), default="public",
           choices=("public", "usgov", "dod", "china"), relay=True),
    option("authority_host", env=("AZURE_AUTHORITY_HOST",), relay=True),
    option("graph_endpoint", env=("O365_GRAPH_ENDPOINT",)),
    option("exchange_endpoint", env=("O365_EXCHANGE_ENDPOINT",)),
    option("ca_path", type="path", env=("O365_CA_PATH",), relay=True),
    option("token_cache_dir", type="path", env=("O365_TOKEN_CACHE_DIR",)),
)

# Options no credential reads (the module's clients do).
NOT_CREDENTIAL = ("graph_endpoint", "exchange_endpoint", "token_cache_dir")


def all_options():
    """Every shared auth option, in the order the argument spec and the doc fragment list them."""
    return SHARED + tuple(o for kind in KINDS for o in kind.options) + CONNECTION


def kind_named(name):
    """The Kind for an auth_method value or alias; None for an unknown one."""
    for kind in KINDS:
        if name == kind.name or name in kind.aliases:
            return kind
    return None


def credential_class(kind):
    """The Credential class of a Kind, its file imported now."""
    return getattr(kind.load(), kind.class_name)
