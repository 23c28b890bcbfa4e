"""Certificates for the emulated tenant: a throw-away CA (trustme) for its TLS endpoints, and self-signed client
certificates that apps register as keyCredentials (what `New-SelfSignedCertificate` / openssl would make)."""

import base64
import datetime
import hashlib
import os

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


class ServerCA(object):
    """The CA every emulator endpoint's certificate chains to; its PEM is written to `ca_path` in `directory`."""

    def __init__(self, directory):
        self.ca = trustme.CA(organization_name="o365.smtp_oauth emulated tenant")
        self.ca_path = os.path.join(directory, "emulator-ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)

    def issue_cert(self, *names):
        return self.ca.issue_cert(*(names or ("127.0.0.1", "localhost")))

    def server_context(self):
        import ssl
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # The national clouds' Exchange hosts too, for tests that resolve them to 127.0.0.1 (emulator/clouds.py).
        from emulator.clouds import host_names
        self.issue_cert("127.0.0.1", "localhost", *host_names()).configure_cert(context)
        return context


class ClientCertificate(object):
    """A self-signed RSA certificate with its key: `pem` (cert + key, what certificate_path points at), `cert_pem`,
    `key_pem`, `der`, thumbprints `sha1` / `sha256` (hex, upper case) and `key_b64` (Graph's keyCredential.key)."""

    def __init__(self, common_name="o365-smtp-oauth", days=365, not_before=None, key_size=2048):
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        start = not_before or datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(start)
                .not_valid_after(start + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
        self.certificate, self.private_key = cert, key
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        self.pem = self.key_pem + self.cert_pem
        self.der = cert.public_bytes(serialization.Encoding.DER)
        self.sha1 = hashlib.sha1(self.der).hexdigest().upper()
        self.sha256 = hashlib.sha256(self.der).hexdigest().upper()
        self.key_b64 = base64.b64encode(self.der).decode()
        self.not_before, self.not_after = start, start + datetime.timedelta(days=days)

    def write(self, path, with_key=True):
        with open(path, "wb") as handle:
            handle.write(self.pem if with_key else self.cert_pem)
        os.chmod(path, 0o600)
        return path


def load_key_credential(key):
    """The x509 certificate of a Graph keyCredential `key` (base64 of DER, or of PEM), or None."""
    if not key:
        return None
    try:
        raw = base64.b64decode(key) if isinstance(key, str) else bytes(key)
    except ValueError:
        return None
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError:
        return None


def thumbprints(cert):
    der = cert.public_bytes(serialization.Encoding.DER)
    return hashlib.sha1(der).digest(), hashlib.sha256(der).digest()
