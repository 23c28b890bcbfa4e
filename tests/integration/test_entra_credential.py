"""entra_app_credential through ansible-playbook against the emulated tenant: secrets with rotation,
certificates by thumbprint, federated credentials by name; the secret value only in the registered result."""

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from helpers.playbook import four_runs, play

GITHUB = "https://token.actions.githubusercontent.com"


def cred_task(**args):
    args.setdefault("unique_name", "relay-cred")
    return {"name": "cred", "o365.smtp_oauth.entra_app_credential": args, "register": "cred"}


def app_task(unique_name="relay-cred"):
    return {"name": "app", "o365.smtp_oauth.entra_app": {"unique_name": unique_name}}


@pytest.fixture
def app(emulator, tenant):
    play(emulator, app_task())
    [found] = [a for a in tenant.applications.values() if a.get("uniqueName") == "relay-cred"]
    return found


def current(tenant, app, key):
    return tenant.applications[app["id"]].get(key) or []


def test_secret_create_check_create_again_and_value_only_in_registered_result(emulator, tenant, app):
    task = cred_task(type="secret", display_name="relay", lifetime_days=90)
    (predicted, output1), (created, created_out), (check_again, output2), (again, output3) = four_runs(emulator, tenant, task, "graph")
    assert predicted["changed"] and "secret" not in predicted
    assert created["changed"] and created["secret"] and created["key_id"]
    # Check mode predicts the diff the real run then shows (the key id and hint exist only once Graph made them).
    assert predicted["diff"]["before"] == created["diff"]["before"] == {"secrets": []}
    [guess], [made] = predicted["diff"]["after"]["secrets"], created["diff"]["after"]["secrets"]
    assert guess["key_id"] is None and made["key_id"] == created["key_id"]
    assert (guess["display_name"], guess["end"][:10]) == (made["display_name"], made["end"][:10]) == ("relay", made["end"][:10])
    [stored] = current(tenant, app, "passwordCredentials")
    assert stored["keyId"] == created["key_id"] and stored["displayName"] == "relay"
    assert created["secret"].startswith(stored["hint"])
    assert created["secret"] not in created_out, "the value leaked into the play output"
    assert created["secret"] not in str(created["diff"])
    assert not check_again["changed"] and not again["changed"] and "secret" not in again


def test_secret_value_never_in_vvvv_output(emulator, tenant, app):
    tasks = [cred_task(type="secret", display_name="sentinel"),
             {"name": "use", "ansible.builtin.debug": {"msg": "got {{ cred.secret | length }} characters"}}]
    results, output = play(emulator, tasks, verbosity=4)
    secret = results[0]["secret"]
    assert len(secret) > 20 and secret not in output
    assert "got %d characters" % len(secret) in output  # the registered variable holds the value


def token_status(http, emulator, tenant, app, secret):
    """What the emulated identity platform answers to a client-credentials request with this secret."""
    return http.post("%s/%s/oauth2/v2.0/token" % (emulator.url, tenant.tenant_id),
                     data={"grant_type": "client_credentials", "client_id": app["appId"], "client_secret": secret,
                           "scope": "https://graph.microsoft.com/.default"}).status_code


def test_rotation_keeps_two_secrets_during_overlap_and_one_after(emulator, tenant, app, http):
    [first], output = play(emulator, cred_task(type="secret", display_name="rot", lifetime_days=10, rotate_before_days=5))
    [old] = current(tenant, app, "passwordCredentials")
    [rotated], output = play(emulator, cred_task(type="secret", display_name="rot", lifetime_days=180,
                                                 rotate_before_days=30, retire_old_after=2))
    assert rotated["changed"] and rotated["secret"]
    secrets = current(tenant, app, "passwordCredentials")
    assert len(secrets) == 2 and old["keyId"] in [s["keyId"] for s in secrets]
    # During the overlap both values work: consumers still holding the old one keep sending.
    assert token_status(http, emulator, tenant, app, first["secret"]) == 200
    assert token_status(http, emulator, tenant, app, rotated["secret"]) == 200
    mark = tenant.log.mark()
    [overlap], output = play(emulator, cred_task(type="secret", display_name="rot", lifetime_days=180, retire_old_after=2))
    assert not overlap["changed"] and tenant.log.writes("graph", since=mark) == []
    # three days later (moved in the emulated tenant: the overlap is over)
    for cred in current(tenant, app, "passwordCredentials"):
        if cred["keyId"] == rotated["key_id"]:
            start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)
            cred["startDateTime"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    [retired], output = play(emulator, cred_task(type="secret", display_name="rot", lifetime_days=180, retire_old_after=2))
    assert retired["changed"] and "secret" not in retired
    assert [s["keyId"] for s in current(tenant, app, "passwordCredentials")] == [rotated["key_id"]]
    assert token_status(http, emulator, tenant, app, first["secret"]) == 401  # retired: AADSTS7000215
    assert token_status(http, emulator, tenant, app, rotated["secret"]) == 200


def test_secret_end_date_in_the_past_fails_naming_the_option(emulator, tenant, app):
    mark = tenant.log.mark()
    [result], output = play(emulator, cred_task(type="secret", end_date="2020-01-01"))
    assert result["failed"] and "end_date" in result["msg"] and "past" in result["msg"]
    assert tenant.log.writes("graph", since=mark) == []


def test_verify_waits_until_the_new_secret_gets_a_token(emulator, tenant, app):
    # The token endpoint refuses the new secret (AADSTS7000215) for 3 s, as Entra does until it has replicated.
    tenant.credential_replication_lag = 3.0
    mark = tenant.log.mark()
    [result], output = play(emulator, cred_task(type="secret", display_name="verified", verify=True, wait_timeout=60))
    assert result["changed"] and result["verified"] is True, result.get("msg")
    token_answers = [e["status"] for e in tenant.log.since(mark) if e.get("part") == "identity"
                     and e.get("client_id") == app["appId"]]
    assert token_answers[0] == 401 and token_answers[-1] == 200, token_answers  # AADSTS7000215, then a token


def test_verify_gives_up_within_wait_timeout_and_keeps_the_value(emulator, tenant, app):
    tenant.credential_replication_lag = 30.0
    [result], output = play(emulator, cred_task(type="secret", display_name="slow", verify=True, wait_timeout=2))
    assert result["failed"] and result["secret"] and "wait_timeout" in result["msg"], result.get("msg")
    assert "replicated" in result["msg"] and "GUID" not in result["msg"]
    [stored] = [c for c in current(tenant, app, "passwordCredentials") if c.get("displayName") == "slow"]
    assert result["secret"].startswith(stored["hint"])


def make_certificate(tmp_path, days=365):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.contoso.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
    path = tmp_path / "relay.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert


def test_certificate_idempotent_by_thumbprint_then_removed(emulator, tenant, app, tmp_path):
    path, cert = make_certificate(tmp_path)
    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()
    runs = four_runs(emulator, tenant, cred_task(type="certificate", public_certificate_path=str(path)), "graph")
    created = runs[1][0]
    assert runs[0][0]["changed"] and created["changed"] and not runs[2][0]["changed"] and not runs[3][0]["changed"]
    assert created["thumbprint"] == thumbprint and created["diff"]["after"]["certificates"] == [thumbprint]
    assert runs[0][0]["diff"] == created["diff"]  # check mode predicted exactly this
    [stored] = current(tenant, app, "keyCredentials")
    assert stored["endDateTime"].startswith(cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M"))
    [removed], output = play(emulator, cred_task(type="certificate", thumbprint=thumbprint, state="absent"))
    assert removed["changed"] and current(tenant, app, "keyCredentials") == []


def test_unreadable_or_non_certificate_file_fails_naming_the_option(emulator, tenant, app, tmp_path):
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate")
    for path in (str(tmp_path / "missing.crt"), str(junk)):
        [result], output = play(emulator, cred_task(type="certificate", public_certificate_path=path))
        assert result["failed"] and "public_certificate_path" in result["msg"] and "Traceback" not in result["msg"]


def test_federated_github_create_check_create_again_update(emulator, tenant, app):
    task = cred_task(type="federated", name="github-main", issuer=GITHUB, subject="repo:org/repo:ref:refs/heads/main")
    runs = four_runs(emulator, tenant, task, "graph")
    assert [r[0]["changed"] for r in runs] == [True, True, False, False]
    created = runs[1][0]
    assert created["credential"]["audiences"] == ["api://AzureADTokenExchange"]
    assert created["diff"]["before"] == {} and created["diff"]["after"]["subject"].endswith("refs/heads/main")
    mark = tenant.log.mark()
    [updated], output = play(emulator, cred_task(type="federated", name="github-main", issuer=GITHUB,
                                                 subject="repo:org/repo:environment:prod"))
    assert updated["changed"] and [w["method"] for w in tenant.log.writes("graph", since=mark)] == ["PATCH"]
    [removed], output = play(emulator, cred_task(type="federated", name="github-main", state="absent"))
    assert removed["changed"]


def test_federated_subject_missing_fails_naming_the_option(emulator, tenant, app):
    [result], output = play(emulator, cred_task(type="federated", name="gitlab", issuer="https://gitlab.com"))
    assert result["failed"] and "subject" in result["msg"] and "Traceback" not in result["msg"]


def test_replication_lag_on_every_dependent_step(emulator, tenant, tmp_path):
    """A new app, then at once its secret, certificate and federated credential, with a replication lag: each step
    waits for the app it depends on instead of failing."""
    tenant.graph_replication_lag = 3.0
    path, key_path = make_certificate(tmp_path)
    tasks = [app_task("relay-lagged"),
             cred_task(unique_name="relay-lagged", type="secret", display_name="lagged"),
             cred_task(unique_name="relay-lagged", type="certificate", public_certificate_path=str(path)),
             cred_task(unique_name="relay-lagged", type="federated", name="gh", issuer=GITHUB, subject="repo:o/r:x")]
    results, output = play(emulator, tasks)
    assert [r.get("failed") for r in results] == [False] * 4, [r.get("msg") for r in results]
    assert all(r["changed"] for r in results)
    statuses = [e["status"] for e in tenant.log.since(0) if e.get("part") == "graph"]
    assert 404 in statuses, "the lag was felt (and waited out)"


def test_run_again_at_once_during_replication_lag_adds_nothing(emulator, tenant, app, tmp_path):
    """Graph's reads lag its writes: the run that adds a secret or a certificate waits until a read shows it, so
    the same tasks run again right away find them instead of adding a second secret or sending the key again."""
    path, key_path = make_certificate(tmp_path)
    tenant.graph_replication_lag = 3.0
    tasks = [cred_task(type="secret", display_name="lagged-again"),
             cred_task(type="certificate", public_certificate_path=str(path))]
    first, output = play(emulator, tasks)
    assert [r["changed"] for r in first] == [True, True], [r.get("msg") for r in first]
    mark = tenant.log.mark()
    again, output = play(emulator, tasks)
    assert [r["changed"] for r in again] == [False, False], [r.get("changes") for r in again]
    assert tenant.log.writes("graph", since=mark) == []
    assert len([c for c in current(tenant, app, "passwordCredentials") if c.get("displayName") == "lagged-again"]) == 1
    assert len(current(tenant, app, "keyCredentials")) == 1


def test_rotate_before_not_shorter_than_lifetime_fails_naming_the_option(emulator, tenant, app):
    [result], output = play(emulator, cred_task(type="secret", lifetime_days=20, rotate_before_days=30))
    assert result["failed"] and "rotate_before_days" in result["msg"]


def test_lost_add_password_answer_leaves_one_secret_whose_value_is_returned(emulator, tenant, app):
    fault = tenant.faults.add("graph", match="/addPassword", kind="drop_after_commit", times=1)
    [result], output = play(emulator, cred_task(type="secret", display_name="lost"))
    assert fault.hits == 1 and not result.get("failed"), result.get("msg")
    [stored] = current(tenant, app, "passwordCredentials")
    assert stored["keyId"] == result["key_id"] and result["secret"].startswith(stored["hint"])


@pytest.mark.parametrize("verbosity", [1, 4])
def test_new_secret_hides_the_value_alone(emulator, tenant, app, verbosity):
    # Issue 12, bug 5: the whole result was censored, so the key id and the end date were hidden at -v too.
    results, output = play(emulator, [cred_task(type="secret", display_name="visible")], verbosity=verbosity)
    [created] = results
    assert created["secret"] and created["secret"] not in output
    [stored] = current(tenant, app, "passwordCredentials")
    assert created["key_id"] == stored["keyId"] and created["key_id"] in output
    assert created["end"][:10] in output and stored["hint"] in output
    assert "(hidden: only in the registered result)" in output
