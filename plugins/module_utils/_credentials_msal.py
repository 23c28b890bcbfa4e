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

import base64
import datetime
import hashlib
import json
import os
import re
import time
import uuid


from ansible_collections.o365.smtp_oauth.plugins.module_utils._aadsts import aadsts_code, translate_aadsts
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import (
    AccessToken, Credential, identity_hash, is_guid)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import (
    AuthError, ConfigError, MissingLibraryError)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import Backoff, parse_retry_after

_RETRY_STATUSES = (408, 429, 500, 502, 503, 504)  # as the Graph / Exchange client (_http)
_PEM_BLOCK_RE = re.compile(br"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.S)
_EXPIRY_WARNING_DAYS = 30


def _import_msal(purpose):
    """msal and requests cost ~0.3 s to import: only a task that really asks for a token pays it (a token from
    the file cache never does)."""
    try:
        import msal
    except ImportError as error:
        raise MissingLibraryError("msal", purpose, error=error)
    return msal


class IdentityHttpClient(object):
    """The HTTP client msal calls (get / post / close): TLS verified against ca_path on every request, and
    connection errors, 429 and 5xx retried honouring Retry-After, within max_wait seconds in total."""

    def __init__(self, ca_path=None, timeout=30, attempts=4, max_wait=30.0, sleep=time.sleep):
        import requests
        self._requests = requests
        self._session = requests.Session()
        # Per request, not on the Session: a Session's verify loses to REQUESTS_CA_BUNDLE.
        self._verify = ca_path or True
        self.timeout = timeout
        self._backoff = dict(base=1.0, max_delay=8.0, total=max_wait, max_attempts=attempts, sleep=sleep)
        self.retries = 0
        self.last_status = None
        self.last_retry_after = None

    def get(self, url, **kwargs):
        return self._send("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self._send("POST", url, **kwargs)

    def close(self):
        self._session.close()

    def _send(self, method, url, **kwargs):
        kwargs["verify"] = self._verify
        kwargs.setdefault("timeout", self.timeout)
        host = url.split("/")[2] if "//" in url else url
        backoff = Backoff(**self._backoff).start()
        while True:
            try:
                response = self._session.request(method, url, **kwargs)
            except self._requests.exceptions.SSLError as error:
                raise AuthError("TLS verification of %s failed: %s" % (host, error.__class__.__name__),
                                option="ca_path", code="tls_verify_failed",
                                fix="give ca_path (a PEM bundle with the CA that issued the server certificate), "
                                    "or check authority_host")
            except (self._requests.exceptions.ConnectionError, self._requests.exceptions.Timeout) as error:
                if not backoff.wait():
                    raise AuthError("cannot reach the identity platform at %s after %d attempts (%s)"
                                    % (host, backoff.attempt + 1, error.__class__.__name__), option="authority_host",
                                    code="connection_failed", fix="check the network, proxy and authority_host")
            else:
                self.last_status = response.status_code
                self.last_retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if response.status_code not in _RETRY_STATUSES or not backoff.wait(self.last_retry_after):
                    return response  # a throttled answer past our bounds goes to msal, which reports it
            self.retries += 1


def _discovery_error(error, authority):
    """Tenant discovery failed. msal re-raises with its own text; the identity platform's answer (AADSTS90002,
    unknown tenant) is in the exception it was handling, so look down the chain for an AADSTS code."""
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
        result = self._application().acquire_token_for_client(scopes=[scope])
        if "access_token" in result:
            expires_in = int(result.get("expires_in") or 0)
            return AccessToken(result["access_token"], int(time.time()) + expires_in)
        error = translate_aadsts(result, option_hint=self.option)
        status = self.http.last_status
        if status in _RETRY_STATUSES:
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
    option = "client_secret"

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


class LoadedCertificate(object):
    """The certificate and its private key from a PEM (certificate + key) or PFX / PKCS#12 file."""

    def __init__(self, certificate, key):
        self.certificate = certificate
        self.key = key

    def fingerprint(self, algorithm):
        from cryptography.hazmat.primitives import hashes
        return self.certificate.fingerprint(hashes.SHA1() if algorithm == "sha1" else hashes.SHA256()).hex()

    def assertion(self, client_id, audience, algorithm="sha256", lifetime=600):
        """A signed client assertion (RFC 7523): PS256 with x5t#S256, or RS256 with x5t for sha1.

        Built here rather than by msal: msal computes the SHA-256 thumbprint only from 1.35 on, while the relay
        runs on distribution packages that are older; the identity platform checks this exact shape.
        """
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        now = int(time.time())
        if algorithm == "sha1":
            header = {"alg": "RS256", "typ": "JWT", "x5t": _b64url(bytes.fromhex(self.fingerprint("sha1")))}
            pad = padding.PKCS1v15()
        else:
            header = {"alg": "PS256", "typ": "JWT", "x5t#S256": _b64url(bytes.fromhex(self.fingerprint("sha256")))}
            pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)  # RFC 7518: salt = hash size
        claims = {"aud": audience, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()),
                  "iat": now, "nbf": now, "exp": now + lifetime}
        signing_input = _b64url(_json(header)) + "." + _b64url(_json(claims))
        signature = self.key.sign(signing_input.encode("ascii"), pad, hashes.SHA256())
        return signing_input + "." + _b64url(signature)


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(value):
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _not_after(certificate):
    value = getattr(certificate, "not_valid_after_utc", None)
    return value if value is not None else certificate.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def _load_pem_key(serialization, data, password):
    # The RSA consistency check costs ~0.1 s per task; the key is checked against its certificate below and
    # the identity platform verifies every signature, so a broken key cannot pass unnoticed.
    try:
        return serialization.load_pem_private_key(data, password=password, unsafe_skip_rsa_key_validation=True)
    except TypeError as error:
        if "unsafe_skip_rsa_key_validation" not in str(error):
            raise
        return serialization.load_pem_private_key(data, password=password)  # cryptography < 39


def load_certificate(path, password=None):
    """Read and check a certificate file offline; ConfigError names certificate_path or certificate_password."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12
    except ImportError as error:
        raise MissingLibraryError("cryptography", "certificate credentials", error=error)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (IOError, OSError) as error:
        raise ConfigError("cannot read %s: %s" % (path, error.strerror), option="certificate_path")
    secret = password.encode("utf-8") if password else None
    wrong_password = ConfigError("cannot decrypt the private key in %s" % path, option="certificate_password",
                                 fix="give the password the key was exported with (or none if it is not encrypted)")
    if b"-----BEGIN" in data:
        blocks = [(m.group(1).decode("ascii"), m.group(0)) for m in _PEM_BLOCK_RE.finditer(data)]
        certs = [x509.load_pem_x509_certificate(b) for name, b in blocks if name == "CERTIFICATE"]
        keys = [b for name, b in blocks if name.endswith("PRIVATE KEY")]
        if not certs:
            raise ConfigError("%s holds no certificate" % path, option="certificate_path",
                              fix="give one PEM file with the certificate and its private key, or a PFX file")
        if not keys:
            raise ConfigError("%s holds no private key" % path, option="certificate_path",
                              fix="append the private key (-----BEGIN PRIVATE KEY-----) to the certificate file")
        try:
            key = _load_pem_key(serialization, keys[0], secret)
        except TypeError:
            # Encrypted key without password, or a password for a plain key.
            raise wrong_password
        except ValueError:
            raise wrong_password if secret else ConfigError("the private key in %s cannot be read" % path,
                                                            option="certificate_path")
        certificate = certs[0]
    else:
        try:
            key, certificate, _extra = pkcs12.load_key_and_certificates(data, secret)
        except ValueError:
            if not data.startswith(b"\x30"):  # not DER at all, so not a PFX
                raise ConfigError("%s is neither PEM nor a PFX file" % path, option="certificate_path",
                                  fix="give a PEM file (certificate + private key) or a PFX / PKCS#12 file")
            if secret:
                raise wrong_password
            raise ConfigError("%s cannot be read without a password" % path, option="certificate_password",
                              fix="give certificate_password for this PFX file")
        if key is None or certificate is None:
            raise ConfigError("%s lacks a %s" % (path, "private key" if key is None else "certificate"),
                              option="certificate_path", fix="export the PFX with its private key")
    public = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo) != public:
        raise ConfigError("the private key in %s does not belong to its certificate" % path,
                          option="certificate_path", fix="put the certificate and its own private key together")
    from cryptography.hazmat.primitives.asymmetric import rsa
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("the key in %s is not an RSA key" % path, option="certificate_path",
                          fix="Entra ID app certificates for client assertions use RSA keys (2048 bits or more)")
    return LoadedCertificate(certificate, key)


class CertificateCredential(_MsalCredential):
    kind = "certificate"
    option = "certificate_path"

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
        self._loaded = load_certificate(self.certificate_path, self.password)
        not_after = _not_after(self._loaded.certificate)
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
