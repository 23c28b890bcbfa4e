# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A certificate credential's file (PEM certificate + key, or PFX) read and checked offline, and the client
assertion (RFC 7523) signed with its key. The relay's proxy reads a certificate's expiry through this too."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime
import json
import re
import time
import uuid

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError, MissingLibraryError

_PEM_BLOCK_RE = re.compile(br"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.S)


class LoadedCertificate(object):
    """The certificate and its private key from a PEM (certificate + key) or PFX / PKCS#12 file."""

    def __init__(self, certificate, key):
        self.certificate = certificate
        self.key = key

    @property
    def not_after(self):
        """The end of validity, timezone-aware (UTC)."""
        return _not_after(self.certificate)

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


def load_signing_certificate(path, password=None):
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
