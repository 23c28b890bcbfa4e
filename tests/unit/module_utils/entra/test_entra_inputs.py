"""Bad input to the entra_* logic fails before any request, naming the option; dates and certificates parse."""

import datetime

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.public_certificate import (
    load_certificate, parse_certificate, thumbprint_of)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.credential import end_of_lifetime
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.permissions import (
    merge_rra, normalize_rra, smtp_permission_declared)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.dates import days_left, format_time, parse_time
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError

NOW = datetime.datetime(2026, 11, 25, 10, 0, tzinfo=datetime.timezone.utc)


def self_signed(days=365, start_offset=-1):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.contoso.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + datetime.timedelta(days=start_offset))
            .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
    return key, cert


def test_graph_times_parse_with_seven_fraction_digits_and_offsets():
    assert parse_time("2026-11-25T10:00:00.1234567Z") == NOW.replace(microsecond=123456)
    assert parse_time("2026-11-25T12:00:00+02:00") == NOW
    assert parse_time("2026-11-25") == NOW.replace(hour=0)
    assert format_time(NOW) == "2026-11-25T10:00:00Z"
    assert days_left(parse_time("2026-12-05T10:00:00Z"), NOW) == 10
    assert days_left(parse_time("2026-12-05T09:59:00Z"), NOW) == 10  # a started day counts
    assert days_left(parse_time("2026-11-24T10:00:00Z"), NOW) == -1
    assert days_left(parse_time("2026-11-25T09:00:00Z"), NOW) == -1  # expired an hour ago


@pytest.mark.parametrize("params, option, words", [
    ({"end_date": "2020-01-01"}, "end_date", "in the past"),
    ({"end_date": "2030-01-01"}, "end_date", "two years"),
    ({"end_date": "next tuesday"}, "end_date", "not a date"),
    ({"lifetime_days": 731}, "lifetime_days", "between 1 and 730"),
    ({"lifetime_days": 0}, "lifetime_days", "between 1 and 730"),
])
def test_bad_lifetimes_name_the_option(params, option, words):
    with pytest.raises(ConfigError) as caught:
        end_of_lifetime(params, NOW)
    assert caught.value.option == option and words in str(caught.value)


def test_lifetime_default_is_180_days():
    assert end_of_lifetime({}, NOW) == NOW + datetime.timedelta(days=180)
    assert end_of_lifetime({"end_date": "2027-05-31"}, NOW) == datetime.datetime(2027, 5, 31, tzinfo=datetime.timezone.utc)


def test_certificate_from_pem_with_private_key_der_and_base64(tmp_path):
    key, cert = self_signed()
    der = cert.public_bytes(serialization.Encoding.DER)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)
    path = tmp_path / "relay.pem"
    path.write_bytes(pem)
    loaded = load_certificate(path=str(path))
    assert loaded.der == der and loaded.thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()
    assert loaded.not_after == cert.not_valid_after_utc
    assert parse_certificate(der, "public_certificate_content").thumbprint == loaded.thumbprint
    assert load_certificate(content=loaded.key_b64).thumbprint == loaded.thumbprint
    # Graph's customKeyIdentifier (base64 SHA-1), a hex form, or only the key: the same thumbprint
    assert thumbprint_of({"customKeyIdentifier": loaded.custom_key_identifier}) == loaded.thumbprint
    assert thumbprint_of({"customKeyIdentifier": loaded.thumbprint.lower()}) == loaded.thumbprint
    assert thumbprint_of({"key": loaded.key_b64}) == loaded.thumbprint


def test_der_whose_last_byte_is_whitespace_is_read_as_it_is(tmp_path):
    # About one DER certificate in 40 ends in a byte strip() removes (0x09-0x0d, 0x20); find one (EC keys: fast).
    from cryptography.hazmat.primitives.asymmetric import ec
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.contoso.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    for dummy in range(5000):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now)
                .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
        der = cert.public_bytes(serialization.Encoding.DER)
        if der[-1:].isspace():
            break
    assert der[-1:].isspace()
    path = tmp_path / "relay.cer"
    path.write_bytes(der)
    assert load_certificate(path=str(path)).thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()


def test_unreadable_and_non_certificate_files_name_the_option(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_certificate(path=str(tmp_path / "missing.crt"))
    assert caught.value.option == "public_certificate_path" and "cannot read" in caught.value.message
    junk = tmp_path / "notes.txt"
    junk.write_text("hello, not a certificate")
    with pytest.raises(ConfigError) as caught:
        load_certificate(path=str(junk))
    assert caught.value.option == "public_certificate_path" and "not an X.509 certificate" in caught.value.message
    key_only = tmp_path / "key.pem"
    key_only.write_bytes(trustme.CA().private_key_pem.bytes())
    with pytest.raises(ConfigError) as caught:
        load_certificate(path=str(key_only))
    assert "private key but no certificate" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        load_certificate(content="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert caught.value.option == "public_certificate_content"


def test_smtp_permission_only_in_entra_for_classic():
    assert smtp_permission_declared(True, "classic") is True
    assert smtp_permission_declared(True, "rbac") is False
    assert smtp_permission_declared(False, "classic") is False


def test_required_resource_access_compare_ignores_order_and_case_and_merge_keeps_existing():
    current = [{"resourceAppId": "r1", "resourceAccess": [{"id": "B", "type": "Role"}, {"id": "a", "type": "Scope"}]}]
    same = [{"resourceAppId": "r1", "resourceAccess": [{"id": "a", "type": "Scope"}, {"id": "b", "type": "Role"}]}]
    assert normalize_rra(current) == normalize_rra(same)
    merged = merge_rra(current, [{"resourceAppId": "r2", "resourceAccess": [{"id": "c", "type": "Role"}]}])
    assert normalize_rra(merged) == [("r1", "Role", "b"), ("r1", "Scope", "a"), ("r2", "Role", "c")]
