"""The entra_* modules against a real Microsoft 365 tenant: run only with O365_REAL_TENANT=1.

Needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) of an app with
Application.ReadWrite.All and AppRoleAssignment.ReadWrite.All. Creates an app named o365-smtp-oauth-test-<random>
and deletes it at the end.
"""

import os
import uuid

import pytest

from helpers.playbook import run_playbook

pytestmark = [
    pytest.mark.real_tenant,
    pytest.mark.skipif(os.environ.get("O365_REAL_TENANT") != "1",
                       reason="real-tenant test: set O365_REAL_TENANT=1 and AZURE_TENANT_ID / AZURE_CLIENT_ID / "
                              "AZURE_CLIENT_SECRET to run it"),
]


def run(tmp_path, tasks, check=False):
    """ansible-playbook with the real tenant's credentials from the environment (no emulator): one result a task."""
    return run_playbook(tasks, check=check, timeout=900).results


def test_app_lifecycle_on_a_real_tenant(tmp_path):
    name = "o365-smtp-oauth-test-%s" % uuid.uuid4().hex[:8]
    app = {"o365.smtp_oauth.entra_app": {"unique_name": name, "authorization_model": "classic",
                                         "admin_consent": True}}
    try:
        assert run(tmp_path, [app], check=True)[0]["changed"]
        [created] = run(tmp_path, [app])
        assert created["changed"] and created["service_principal_id"], created
        assert not run(tmp_path, [app], check=True)[0]["changed"]
        assert not run(tmp_path, [app])[0]["changed"]
        [report] = run(tmp_path, [{"o365.smtp_oauth.entra_app_info": {"unique_name": name}}])
        assert report["app"]["consented_permissions"][0]["permission"] == "SMTP.SendAsApp"
    finally:
        run(tmp_path, [{"o365.smtp_oauth.entra_app": {"unique_name": name, "state": "absent"}}])


def _certificate(tmp_path):
    """A throw-away self-signed certificate (public part only is registered)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "o365-smtp-oauth-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path), cert.fingerprint(hashes.SHA1()).hex().upper()


def test_credentials_on_a_real_tenant(tmp_path):
    """Secret (with verify), certificate (the PATCH that sends existing keys back without `key`) and federated
    credential: each added once, and a re-run changes nothing."""
    name = "o365-smtp-oauth-test-%s" % uuid.uuid4().hex[:8]
    cert_path, thumbprint = _certificate(tmp_path)
    base = {"unique_name": name, "wait_timeout": 300}
    tasks = [
        {"o365.smtp_oauth.entra_app_credential": dict(base, type="secret", display_name="test", lifetime_days=2,
                                                      rotate_before_days=1, verify=True)},
        {"o365.smtp_oauth.entra_app_credential": dict(base, type="certificate", public_certificate_path=cert_path)},
        {"o365.smtp_oauth.entra_app_credential": dict(base, type="federated", name="gh",
                                                      issuer="https://token.actions.githubusercontent.com",
                                                      subject="repo:contoso/platform:ref:refs/heads/main")},
    ]
    try:
        assert run(tmp_path, [{"o365.smtp_oauth.entra_app": {"unique_name": name}}])[0]["changed"]
        results = run(tmp_path, tasks)
        assert len(results) == 3, results
        secret, cert, federated = results
        assert secret["changed"] and secret["verified"] is True, secret
        assert cert["changed"] and cert["thumbprint"] == thumbprint, cert
        assert federated["changed"], federated
        again = run(tmp_path, tasks)
        assert [r["changed"] for r in again] == [False, False, False], again
        [report] = run(tmp_path, [{"o365.smtp_oauth.entra_app_info": {"unique_name": name}}])
        kinds = sorted(c["type"] for c in report["app"]["credentials"])
        assert kinds == ["certificate", "secret"], report["app"]["credentials"]
    finally:
        run(tmp_path, [{"o365.smtp_oauth.entra_app": {"unique_name": name, "state": "absent"}}])
