# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Managed identity, workload identity federation (a federated token file) and the Azure CLI, via azure-identity.

azure-identity is heavy and optional: it is imported inside these classes, only when one of them gets a token.
A fresh azure-identity credential is built for each acquisition so that its own cache never hands back a token
the TokenProvider has decided to renew.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import logging
import os
import shutil
import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.aadsts import aadsts_code, translate_aadsts
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.checks import app_identity, check_client_id, check_tenant
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.credential import AccessToken, Credential, identity_hash
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import (
    AuthError, ConfigError, MissingLibraryError, tls_failure)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.jwt_claims import ClaimsError, decode_claims
from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import FEDERATED_AUDIENCES

# The audience Entra expects in a federated token, per cloud.
_EXCHANGE_AUDIENCES = tuple(sorted(set(FEDERATED_AUDIENCES.values())))
_FEDERATED_MISMATCH = (70021, 700211, 700212, 700213)


def _azure_identity(purpose):
    try:
        import azure.identity as azure_identity
        from azure.core import exceptions
    except ImportError as error:
        raise MissingLibraryError("azure-identity", purpose, error=error)
    # azure-identity logs each failure as a WARNING; without a handler Python prints it on stderr, next to the
    # translated error the user already gets.
    logging.getLogger("azure").addHandler(logging.NullHandler())
    return azure_identity, exceptions


def _transport_error(error, where, option):
    """azure-core's connection / TLS failures (they are not authentication answers); TLS as every client says it."""
    failure = tls_failure(error, where, AuthError, endpoint_option=option)
    if failure is not None:
        return failure
    return AuthError("cannot reach %s: %s" % (where, error.__class__.__name__), option=option,
                     code="connection_failed", fix="check the network, proxy and %s" % option)


class _IdentityCredential(Credential):
    purpose = None

    where_option = "authority_host"

    @property
    def where(self):
        return "the identity platform at %s" % self.cloud.authority_host

    def _library_kwargs(self):
        """Cloud and TLS settings every azure-identity credential takes."""
        kwargs = {"authority": self.cloud.authority_host}
        if self.cloud.authority_overridden:
            # Only a private or emulated authority: Microsoft's clouds keep instance discovery.
            kwargs["disable_instance_discovery"] = True
        if self.ca_path:
            kwargs["connection_verify"] = self.ca_path
        kwargs["connection_timeout"] = self.timeout
        return kwargs

    def _build(self, azure_identity):
        raise NotImplementedError

    def _acquire(self, scope):
        azure_identity, exceptions = _azure_identity(self.purpose)
        credential = self._build(azure_identity)
        try:
            token = credential.get_token(scope)
        except exceptions.ClientAuthenticationError as error:
            raise self._translate(error)
        except exceptions.AzureError as error:
            raise _transport_error(error, self.where, self.where_option)
        finally:
            close = getattr(credential, "close", None)
            if close:
                close()
        return AccessToken(token.token, int(token.expires_on))

    def _translate(self, error):
        text = str(getattr(error, "message", None) or error)
        if aadsts_code(text) is not None:
            return translate_aadsts(text, option_hint=self.option)
        return self._unavailable(text)

    def _unavailable(self, text):
        return AuthError(text, option=self.option, code="credential_unavailable")


class ManagedIdentityCredential(_IdentityCredential):
    """System-assigned, or user-assigned when client_id (managed_identity_client_id) is given."""

    kind = "managed_identity"
    purpose = "managed identity credentials"
    where = "the managed identity endpoint of this host"
    where_option = "managed_identity"

    @classmethod
    def from_options(cls, opts, environ, **common):
        return cls(tenant_id=check_tenant(opts.get("tenant_id"), required=False),
                   client_id=check_client_id(opts.get("managed_identity_client_id"),
                                             option="managed_identity_client_id", required=False), **common)

    def _build(self, azure_identity):
        kwargs = self._library_kwargs()
        # Managed identity endpoints are local to the host: authority settings do not apply.
        kwargs.pop("authority", None)
        kwargs.pop("disable_instance_discovery", None)
        if self.client_id:
            kwargs["client_id"] = self.client_id
        return azure_identity.ManagedIdentityCredential(**kwargs)

    def _unavailable(self, text):
        return AuthError("no managed identity token: %s" % text, code="managed_identity_unavailable",
                         option="managed_identity_client_id" if self.client_id else "managed_identity",
                         fix="run on an Azure host with a managed identity assigned (for a user-assigned one, give "
                             "its client ID in managed_identity_client_id), or choose another credential")

    def cache_identity(self):
        return identity_hash(self.kind, self.client_id or "system-assigned")


class WorkloadIdentityCredential(_IdentityCredential):
    """An app's federated identity credential, proven by an OIDC token: from a file the platform (Kubernetes, a CI
    step) writes and rotates, or from the CI platform itself (token_source: ci_tokens.GithubActionsToken or
    GitlabIdToken), asked for at each acquisition and kept in memory only."""

    kind = "workload_identity"
    purpose = "workload identity (federated token) credentials"

    @classmethod
    def from_options(cls, opts, environ, **common):
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import ci_tokens
        identity = dict(tenant_id=check_tenant(opts.get("tenant_id")))
        path = opts.get("federated_token_file")
        source = ci_tokens.choose_source(opts.get("federated_token_source"), path, environ)
        token_source = None
        if source in ("github", "gitlab"):
            token_source = ci_tokens.token_source(source, environ, common["cloud"].federated_audience,
                                                  variable=opts.get("federated_token_variable"),
                                                  ca_path=common.get("ca_path"), timeout=common.get("timeout", 30))
        identity.update(app_identity(opts))
        credential = cls(path if source in ("file", None) else None, token_source=token_source,
                         **dict(common, **identity))
        if token_source is not None and path:
            credential.notes.append("federated_token_file ignored: federated_token_source is %s" % source)
        return credential

    def __init__(self, federated_token_file, token_source=None, **kwargs):
        super(WorkloadIdentityCredential, self).__init__(**kwargs)
        self.federated_token_file = federated_token_file
        self.token_source = token_source
        if token_source is not None:
            self.option = "federated_token_source"

    def _claims(self):
        try:
            if self.token_source is not None:
                return decode_claims(self.token_source.last) if self.token_source.last else None
            with open(self.federated_token_file, "r") as handle:
                return decode_claims(handle.read().strip())
        except (IOError, OSError, ClaimsError):
            return None

    def _check(self):
        if self.token_source is not None:
            self.token_source.check()
            if self.token_source.name == "gitlab":  # the pipeline chose the audience: check it beforehand
                self.token_source()
                return self._claim_warnings("the variable %s" % self.token_source.variable)
            return []
        path = self.federated_token_file
        if not path:
            raise ConfigError("is required for workload identity", option="federated_token_file",
                              fix="give the path of the OIDC token your platform writes (AZURE_FEDERATED_TOKEN_FILE), "
                                  "or set federated_token_source to github or gitlab in a CI job")
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise ConfigError("%r is not a readable file" % path, option="federated_token_file",
                              fix="give the path of the OIDC token your platform writes (AZURE_FEDERATED_TOKEN_FILE)")
        if os.path.getsize(path) == 0:
            raise ConfigError("%s is empty" % path, option="federated_token_file",
                              fix="the platform has not written the token yet; request an OIDC token first")
        return self._claim_warnings(path)

    def _claim_warnings(self, where):
        claims = self._claims()
        if claims is None:
            return ["%s does not hold a readable JWT; Entra will probably refuse it" % self.option]
        warnings = []
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not any(a in _EXCHANGE_AUDIENCES for a in auds):
            warnings.append("the federated token's audience is %r; Entra expects %s" % (aud, " or ".join(
                _EXCHANGE_AUDIENCES)))
        exp = claims.get("exp")
        if isinstance(exp, (int, float)) and exp <= time.time():
            warnings.append("the federated token in %s has expired; the platform should have replaced it" % where)
        return warnings

    def _build(self, azure_identity):
        if self.token_source is not None:
            return azure_identity.ClientAssertionCredential(self.tenant_id, self.client_id, self.token_source,
                                                            **self._library_kwargs())
        return azure_identity.WorkloadIdentityCredential(
            tenant_id=self.tenant_id, client_id=self.client_id, token_file_path=self.federated_token_file,
            **self._library_kwargs())

    def _translate(self, error):
        translated = super(WorkloadIdentityCredential, self)._translate(error)
        if self.token_source is not None and translated.option == "federated_token_file":
            # The AADSTS table speaks of the file; here the token came from the CI platform.
            translated.option = self.option
            translated.fix = (translated.fix or "").replace(
                "the token in federated_token_file", "the %s job's OIDC token" % self.token_source.title)
        claims = self._claims()
        if claims and aadsts_code(str(error)) in _FEDERATED_MISMATCH:
            # Issuer and subject are not secret and are exactly what the federated credential must match.
            seen = dict((k, claims.get(k)) for k in ("iss", "sub", "aud"))
            translated.details.update(("token_" + k, v) for k, v in seen.items())
            translated.message += " The token presents iss=%s, sub=%s, aud=%s." % (seen["iss"], seen["sub"], seen["aud"])
        return translated

    def cache_identity(self):
        if self.token_source is not None:
            return identity_hash(self.kind, self.client_id, *self.token_source.identity())
        return identity_hash(self.kind, self.client_id, os.path.abspath(self.federated_token_file or ""))

    def secrets(self):
        return self.token_source.secrets() if self.token_source is not None else []


class AzureCliCredential(_IdentityCredential):
    """The account logged in with `az login` on the controller (a person's or a pipeline's)."""

    kind = "azure_cli"
    purpose = "Azure CLI credentials"

    @classmethod
    def from_options(cls, opts, environ, **common):
        return cls(tenant_id=check_tenant(opts.get("tenant_id"), required=False), **common)

    def _check(self):
        if not shutil.which("az"):
            raise ConfigError("the Azure CLI (az) is not on PATH", option="azure_cli",
                              fix="install the Azure CLI and run `az login`, or choose another credential")
        return []

    def _build(self, azure_identity):
        kwargs = {"process_timeout": max(int(self.timeout), 10)}
        if self.tenant_id:
            kwargs["tenant_id"] = self.tenant_id
        return azure_identity.AzureCliCredential(**kwargs)

    def _unavailable(self, text):
        return AuthError("the Azure CLI gave no token: %s" % text, option="azure_cli", code="azure_cli_unavailable",
                         fix="run `az login` (for an app: az login --service-principal) as the user running Ansible")

    def cache_identity(self):
        return identity_hash(self.kind, self.tenant_id)
