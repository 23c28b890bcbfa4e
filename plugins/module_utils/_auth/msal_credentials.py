# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client secret and certificate credentials, through msal's confidential client (client credentials flow).

msal keeps no token cache here: the TokenProvider is the one cache, so its renewal rule (10 minutes) applies.
msal gets our own HTTP client so that ca_path is passed with every request (requests lets REQUESTS_CA_BUNDLE
override a Session's verify) and so that 429 / 5xx answers are retried: msal alone only remembers a throttled
answer and returns it again until Retry-After passes. The certificate's client assertion is signed here (see
LoadedCertificate.assertion) and given to msal as a callable, so every msal version behaves the same.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import os
import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.checks import app_identity, is_guid
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.credential import AccessToken, Credential, identity_hash
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError, ConfigError, MissingLibraryError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import RETRY_STATUSES

_EXPIRY_WARNING_DAYS = 30


def _import_msal(purpose):
    """msal and requests cost ~0.3 s to import: only a task that really asks for a token pays it (a token from
    the file cache never does)."""
    try:
        import msal
    except ImportError as error:
        raise MissingLibraryError("msal", purpose, error=error)
    return msal


def _discovery_error(error, authority):
    """Tenant discovery failed. msal re-raises with its own text; the identity platform's answer (AADSTS90002,
    unknown tenant) is in the exception it was handling, so look down the chain for an AADSTS code."""
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.aadsts import aadsts_code, translate_aadsts
    seen = error
    while seen is not None:
        if aadsts_code(str(seen)) is not None:
            return translate_aadsts(str(seen), option_hint="tenant_id")
        seen = seen.__cause__ or seen.__context__
    return AuthError("the authority %s did not answer OpenID discovery: %s" % (authority, error), option="tenant_id",
                     code="discovery_failed", fix="check tenant_id, cloud and authority_host")


class _MsalCredential(Credential):
    """What the secret and the certificate kinds share: the msal app and the translation of its answers."""

    def __init__(self, **kwargs):
        super(_MsalCredential, self).__init__(**kwargs)
        self._app = None

    def _client_credential(self):
        raise NotImplementedError

    def _http(self):
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.msal_http import IdentityHttpClient
        self.http = IdentityHttpClient(self.ca_path, self.timeout)
        return self.http

    def _application(self):
        if self._app is None:
            msal = _import_msal("client secret and certificate credentials")

            class _NoTokenCache(msal.TokenCache):
                """Stores nothing: every acquire_token_for_client goes to the token endpoint."""

                def add(self, event, **kwargs):
                    return None

            try:
                self._app = msal.ConfidentialClientApplication(
                    self.client_id, client_credential=self._client_credential(), authority=self.authority,
                    http_client=self._http(), token_cache=_NoTokenCache(),
                    # Discovery stays on for Microsoft's clouds; a private / emulated authority cannot be discovered.
                    instance_discovery=False if self.cloud.authority_overridden else None,
                    app_name="o365.smtp_oauth")
            except ValueError as error:
                raise _discovery_error(error, self.authority)
        return self._app

    def _acquire(self, scope):
        # expires_in counts from the answer: counted from before the request, the expiry never passes the token's.
        started = int(time.time())
        result = self._application().acquire_token_for_client(scopes=[scope])
        if "access_token" in result:
            expires_in = int(result.get("expires_in") or 0)
            return AccessToken(result["access_token"], started + expires_in)
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.aadsts import translate_aadsts
        error = translate_aadsts(result, option_hint=self.option)
        status = self.http.last_status
        if status in RETRY_STATUSES:
            # Still throttled or unavailable after our retries: say so rather than blame an option.
            after = self.http.last_retry_after
            error.message = "the identity platform answered %d (%s) after %d retries%s: %s" % (
                status, "throttled" if status == 429 else "unavailable", self.http.retries,
                "; it asks to wait %d s" % after if after else "", error.message)
            error.option, error.status = None, status
            error.fix = ("retry later; many tasks asking at once should share tokens through token_cache_dir")
        raise error


class ClientSecretCredential(_MsalCredential):
    kind = "client_secret"

    @classmethod
    def from_options(cls, opts, environ, **common):
        return cls(opts.get("client_secret"), **dict(common, **app_identity(opts)))

    def __init__(self, client_secret, **kwargs):
        super(ClientSecretCredential, self).__init__(**kwargs)
        self.client_secret = client_secret if isinstance(client_secret, str) else None

    def _check(self):
        if not self.client_secret or not self.client_secret.strip():
            raise ConfigError("is required for a client secret credential and is empty", option="client_secret",
                              fix="give the secret's value (or set AZURE_CLIENT_SECRET)")
        if self.client_secret != self.client_secret.strip():
            raise ConfigError("has leading or trailing whitespace (a copy-paste slip?)", option="client_secret",
                              fix="give the secret's value exactly")
        if is_guid(self.client_secret):
            return ["client_secret looks like a GUID: that is probably the secret's ID, not its value (the value "
                    "is shown only once, when the secret is created; Microsoft answers AADSTS7000215)"]
        return []

    def _client_credential(self):
        return self.client_secret

    def cache_identity(self):
        # A digest of the secret, so a rotated or mistyped secret never reuses another secret's token.
        return identity_hash(self.kind, self.client_id, hashlib.sha256(self.client_secret.encode("utf-8")).hexdigest())

    def secrets(self):
        return [self.client_secret] if self.client_secret else []


class CertificateCredential(_MsalCredential):
    kind = "certificate"

    @classmethod
    def from_options(cls, opts, environ, **common):
        return cls(opts.get("certificate_path"), password=opts.get("certificate_password"),
                   thumbprint_algorithm=opts.get("certificate_thumbprint_algorithm") or "sha256",
                   **dict(common, **app_identity(opts)))

    def __init__(self, certificate_path, password=None, thumbprint_algorithm="sha256", **kwargs):
        super(CertificateCredential, self).__init__(**kwargs)
        self.certificate_path = certificate_path
        self.password = password
        self.thumbprint_algorithm = (thumbprint_algorithm or "sha256").lower()
        self._loaded = None

    def _check(self):
        if self.thumbprint_algorithm not in ("sha256", "sha1"):
            raise ConfigError("unknown value %r" % self.thumbprint_algorithm, option="certificate_thumbprint_algorithm",
                              fix="use sha256 (x5t#S256, the default) or sha1 (x5t, for older setups)")
        if not self.certificate_path:
            raise ConfigError("is required for a certificate credential", option="certificate_path",
                              fix="give the path of a PEM (certificate + private key) or PFX file")
        if not os.path.isfile(self.certificate_path):
            raise ConfigError("%r is not a file" % self.certificate_path, option="certificate_path",
                              fix="give the path of a PEM (certificate + private key) or PFX file")
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.certificate import load_signing_certificate
        self._loaded = load_signing_certificate(self.certificate_path, self.password)
        not_after = self._loaded.not_after
        now = datetime.datetime.now(datetime.timezone.utc)
        if not_after <= now:
            raise ConfigError("the certificate in %s expired on %s" % (self.certificate_path, not_after.date()),
                              option="certificate_path",
                              fix="create a new certificate and add it to the app (o365.smtp_oauth.entra_app_credential)")
        if (not_after - now).days < _EXPIRY_WARNING_DAYS:
            return ["the certificate in %s expires on %s" % (self.certificate_path, not_after.date())]
        return []

    def _client_credential(self):
        loaded, algorithm = self._loaded, self.thumbprint_algorithm

        def assertion():
            # The audience is the token endpoint msal found by discovery, where the assertion is sent.
            return loaded.assertion(self.client_id, self._app.authority.token_endpoint, algorithm)
        return {"client_assertion": assertion}

    def cache_identity(self):
        self.validate()
        return identity_hash(self.kind, self.client_id, self._loaded.fingerprint("sha256"))

    def secrets(self):
        return [self.password] if self.password else []
