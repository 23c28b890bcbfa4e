# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A public certificate for an app's keyCredentials: loaded from a path or content, known by its thumbprint.

Only the public part is ever read or sent; a private key in the same PEM file is ignored. Plain Python: no
Ansible import; cryptography is imported guarded and reported as a missing library when absent.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import datetime
import hashlib
import re

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError, MissingLibraryError

try:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as _error:  # pragma: no cover - reported when used
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = _error

_PEM_CERT = re.compile(br"-----BEGIN CERTIFICATE-----\s+.*?-----END CERTIFICATE-----", re.S)


class PublicCertificate(object):
    """thumbprint: SHA-1 hex, upper case (what the portal shows and Entra keys credentials by)."""

    def __init__(self, der, thumbprint, not_before, not_after, subject):
        self.der = der
        self.thumbprint = thumbprint
        self.not_before = not_before
        self.not_after = not_after
        self.subject = subject

    @property
    def key_b64(self):
        return base64.b64encode(self.der).decode("ascii")

    @property
    def custom_key_identifier(self):
        """Graph's customKeyIdentifier (Edm.Binary, base64) holding the SHA-1 thumbprint, as the portal sets it."""
        return base64.b64encode(binascii.unhexlify(self.thumbprint)).decode("ascii")


def _utc(value):
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def parse_certificate(data, option):
    """PEM (first CERTIFICATE block), DER, or base64 DER -> PublicCertificate; ConfigError names the option."""
    if not HAS_CRYPTOGRAPHY:
        raise MissingLibraryError("cryptography", "reading certificates", error=CRYPTOGRAPHY_IMPORT_ERROR)
    if isinstance(data, str):
        data = data.encode("utf-8")
    match = _PEM_CERT.search(data)
    try:
        if match:
            cert = x509.load_pem_x509_certificate(match.group(0))
        elif data[:1] == b"\x30":
            # Binary DER (a SEQUENCE) as it is: its last bytes may well be 0x0a or 0x20, which strip() would eat.
            cert = x509.load_der_x509_certificate(data)
        else:
            stripped = data.strip()
            try:
                der = base64.b64decode(stripped, validate=True)
            except (binascii.Error, ValueError):
                der = stripped
            cert = x509.load_der_x509_certificate(der)
    except (ValueError, TypeError) as error:
        if b"PRIVATE KEY" in data and not match:
            detail = "it holds a private key but no certificate"
        else:
            detail = "not an X.509 certificate in PEM, DER or base64 DER (%s)" % error.__class__.__name__
        raise ConfigError(detail, option=option, fix="give the public certificate (.cer/.crt/.pem)")
    der = cert.public_bytes(Encoding.DER)
    not_before = getattr(cert, "not_valid_before_utc", None) or _utc(cert.not_valid_before)
    not_after = getattr(cert, "not_valid_after_utc", None) or _utc(cert.not_valid_after)
    return PublicCertificate(der, hashlib.sha1(der).hexdigest().upper(), not_before, not_after,
                             cert.subject.rfc4514_string())


def load_certificate(path=None, content=None):
    if path:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except (IOError, OSError) as error:
            raise ConfigError("cannot read %s: %s" % (path, error.strerror or error),
                              option="public_certificate_path",
                              fix="give a readable certificate file on the host running the module")
        return parse_certificate(data, "public_certificate_path")
    return parse_certificate(content, "public_certificate_content")


def thumbprint_of(key_credential):
    """The SHA-1 thumbprint (hex, upper) of a keyCredential as Graph returns it; None when it cannot be told."""
    ident = key_credential.get("customKeyIdentifier")
    if ident:
        if re.match(r"^[0-9A-Fa-f]{40}$", ident):
            return ident.upper()
        try:
            raw = base64.b64decode(ident)
            if len(raw) == 20:
                return binascii.hexlify(raw).decode("ascii").upper()
        except (binascii.Error, ValueError):
            pass
    key = key_credential.get("key")
    if key:
        return hashlib.sha1(base64.b64decode(key)).hexdigest().upper()
    return None
