"""playbooks/credential_expiry.yml as a user runs it: `ansible-playbook o365.smtp_oauth.credential_expiry`.

The emulated tenant holds SMTP senders of both kinds (RBAC for Applications: registered in Exchange, no Entra
permission; classic: admin-consented SMTP.SendAsApp), an app declared by id, and a bystander that may not send.
Credentials with chosen end dates are made through Graph's own requests (addPassword with endDateTime, a
keyCredentials PATCH with a certificate whose notAfter is chosen), as an admin would.
"""

import datetime
import os
import re
import stat

import pytest

from emulator import certs, smtp_server
from emulator.clients import Graph
from helpers.playbook import run_playbook

EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
METRIC = "o365_smtp_oauth_credential_expiry_timestamp_seconds"
PLAY = "- ansible.builtin.import_playbook: o365.smtp_oauth.credential_expiry\n"
NOTIFY_MAILBOX = "alerts@contoso.onmicrosoft.com"


def _utc(days):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)).replace(microsecond=0)


def _epoch(text):
    return int(datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp())


class Setup(object):
    """Apps made through the emulated Graph as an admin: each credential's key id, end and secret value."""

    def __init__(self, emulator, tenant):
        self.emulator, self.tenant = emulator, tenant
        self.graph = Graph(emulator, emulator.admin.client_id, emulator.admin.client_secret)
        self.secrets, self.credentials = [], []

    def app(self, name):
        """(application, service principal)"""
        answer = self.graph.post("applications", json={"displayName": name})
        assert answer.status_code == 201, answer.text
        app = answer.json()
        answer = self.graph.post("servicePrincipals", json={"appId": app["appId"]})
        assert answer.status_code == 201, answer.text
        return app, answer.json()

    def secret(self, app, days):
        end = _utc(days)
        answer = self.graph.post("applications/%s/addPassword" % app["id"], json={"passwordCredential": {
            "displayName": "expiry-test", "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ")}})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        self.secrets.append(body["secretText"])
        self.credentials.append((app, "secret", body["keyId"], body["endDateTime"]))
        return body["keyId"]

    def certificate(self, app, days):
        cert = certs.ClientCertificate(app["displayName"], days=days)
        current = self.graph.get("applications/%s" % app["id"]).json().get("keyCredentials") or []
        keys = [{"keyId": k["keyId"]} for k in current] + [
            {"type": "AsymmetricX509Cert", "usage": "Verify", "key": cert.key_b64}]
        answer = self.graph.patch("applications/%s" % app["id"], json={"keyCredentials": keys})
        assert answer.status_code == 204, answer.text
        added = [k for k in self.graph.get("applications/%s" % app["id"]).json()["keyCredentials"]
                 if k["keyId"] not in set(c["keyId"] for c in current)]
        [key] = added
        self.credentials.append((app, "certificate", key["keyId"], key["endDateTime"]))
        return key["keyId"]


@pytest.fixture
def senders(emulator, tenant):
    """rbac (secret in 10 days, certificate in 200), classic (secret in 90, certificate in 5), declared (secret in
    100), bystander (no SMTP right, secret in 3: never reported)."""
    made = Setup(emulator, tenant)
    rbac = made.app("Relay \"north\" \\ sender")[0]
    tenant.exchange.allow_smtp(rbac["appId"], "noreply@contoso.onmicrosoft.com")
    classic, classic_sp = made.app("Classic sender")
    tenant.grant_app_role(classic_sp["id"], EXCHANGE_APP_ID, "SMTP.SendAsApp")
    declared = made.app("Declared app")[0]
    bystander = made.app("Bystander")[0]
    made.keys = {
        "rbac_secret": made.secret(rbac, 10), "rbac_cert": made.certificate(rbac, 200),
        "classic_secret": made.secret(classic, 90), "classic_cert": made.certificate(classic, 5),
        "declared_secret": made.secret(declared, 100), "bystander_secret": made.secret(bystander, 3)}
    made.apps = {"rbac": rbac, "classic": classic, "declared": declared, "bystander": bystander}
    return made


def parse_textfile(text):
    """A strict reader of the Prometheus text format (0.0.4) for one gauge: HELP and TYPE once, before the samples;
    every sample `name{label="value",...} number`, label values with only \\\\, \\" and \\n escapes, no duplicate
    label set, a final newline. prometheus_client is not in the test venv."""
    assert text.endswith("\n"), "the format ends every line, the last one included, with a newline"
    lines = text[:-1].split("\n")
    assert lines[0].startswith("# HELP %s " % METRIC) and len(lines[0]) > len("# HELP %s " % METRIC)
    assert lines[1] == "# TYPE %s gauge" % METRIC
    sample = re.compile(r'^%s\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\} (\S+)$' % METRIC)
    label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
    samples = {}
    for line in lines[2:]:
        match = sample.match(line)
        assert match, "not a sample line: %r" % line
        labels = dict((k, v.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\"))
                      for k, v in label.findall(match.group(1)))
        key = tuple(sorted(labels.items()))
        assert key not in samples, "duplicate series %r" % (key,)
        samples[key] = float(match.group(2))
    return [(dict(k), v) for k, v in samples.items()]


def run(emulator, extra_vars=None, verbosity=0, env=None, check=False):
    return run_playbook(emulator, PLAY, extra_vars=extra_vars, verbosity=verbosity, env=env, check=check)


def test_expiring_credentials_fail_the_run_with_app_key_and_date_and_the_textfile_lists_every_one(
        emulator, tenant, senders, tmp_path):
    textfile = tmp_path / "o365_smtp_oauth.prom"
    mark = tenant.log.mark()
    first = run(emulator, {"warn_days": 30, "textfile": str(textfile), "app_ids": [senders.apps["declared"]["appId"]],
                           "exchange_organization": tenant.domain}, verbosity=3)
    assert first.rc == 2, first.output[-3000:]
    failure = first.task("Fail when a credential expires within warn_days")
    message = failure["msg"]
    assert message.startswith("2 SMTP app credential(s) expire within 30 days: ")
    for app_key, cred_key in (("rbac", "rbac_secret"), ("classic", "classic_cert")):
        app = senders.apps[app_key]
        [(kind, key_id, end)] = [c[1:] for c in senders.credentials if c[2] == senders.keys[cred_key]]
        assert "app '%s' (app id %s) %s key id %s expires on %s" % (
            app["displayName"], app["appId"], kind, key_id, end) in message
    for quiet in ("rbac_cert", "classic_secret", "declared_secret", "bystander_secret"):
        assert senders.keys[quiet] not in message
    assert senders.apps["bystander"]["appId"] not in first.output, "an app that may not send is not watched"
    assert not tenant.log.writes(since=mark), "watching writes nothing to the tenant"

    # Every credential of every watched app, with its end as a Unix timestamp; the bystander's is not there.
    samples = parse_textfile(textfile.read_text())
    want = dict((key_id, (app, kind, _epoch(end))) for app, kind, key_id, end in senders.credentials
                if app["displayName"] != "Bystander")
    assert len(samples) == len(want) == 5
    for labels, value in samples:
        app, kind, end = want[labels["key_id"]]
        assert labels == {"app_id": app["appId"], "app_name": app["displayName"], "key_id": labels["key_id"],
                          "type": kind}
        assert value == end
    assert stat.S_IMODE(os.stat(textfile).st_mode) == 0o644
    assert os.listdir(tmp_path) == [textfile.name], "no staging file left next to the textfile"

    # No secret value anywhere at -vvv, nor in the textfile.
    for secret in senders.secrets + [emulator.admin.client_secret]:
        assert secret not in first.output and secret not in textfile.read_text()

    # Nothing changed in the tenant: the same textfile is left alone (no rewrite), and the run still fails.
    before = os.stat(textfile).st_mtime_ns
    second = run(emulator, {"warn_days": 30, "textfile": str(textfile),
                            "app_ids": [senders.apps["declared"]["appId"]]})
    assert second.rc == 2
    assert "Put the new textfile in place (rename)" not in [r["_task"] for r in second.results if r.get("changed")]
    assert os.stat(textfile).st_mtime_ns == before


def test_nothing_within_warn_days_passes_and_a_new_credential_rewrites_the_textfile(
        emulator, tenant, senders, tmp_path):
    textfile = tmp_path / "expiry.prom"
    textfile.write_text("stale\n")
    quiet = run(emulator, {"warn_days": 4, "textfile": str(textfile)})
    assert quiet.rc == 0, quiet.output[-3000:]
    assert quiet.task("Put the new textfile in place (rename)")["changed"] is True
    lines = quiet.task("Days left per app and credential")["msg"]
    assert len(lines) == 4 and all(re.search(r": (secret|certificate) \S+ ends \S+Z, \d+ days left$", x) for x in lines)
    assert len(parse_textfile(textfile.read_text())) == 4, "declared app not listed: only the found senders"

    new_key = senders.secret(senders.apps["classic"], 2)
    failed = run(emulator, {"warn_days": 4, "textfile": str(textfile)})
    assert failed.rc == 2
    assert new_key in failed.task("Fail when a credential expires within warn_days")["msg"]
    assert new_key in [sample[0]["key_id"] for sample in parse_textfile(textfile.read_text())]


def test_declared_list_only_and_a_missing_app_is_named(emulator, tenant, senders):
    missing = "11111111-2222-3333-4444-555555555555"
    result = run(emulator, {"discover": False, "warn_days": 1,
                            "app_ids": [senders.apps["bystander"]["appId"], missing]})
    assert result.rc == 0, result.output[-3000:]
    lines = result.task("Days left per app and credential")["msg"]
    assert any(l.startswith("Bystander (%s): secret" % senders.apps["bystander"]["appId"]) for l in lines)
    assert "no application with app id %s" % missing in lines
    assert "Apps registered in Exchange Online (RBAC for Applications senders hold no Entra permission)" \
        not in [r["_task"] for r in result.results if not r.get("skipped")]


def test_notify_mails_the_findings_through_send_mail(emulator, tenant, senders):
    with smtp_server.clean_endpoint(emulator, allow=[(emulator.admin.client_id, NOTIFY_MAILBOX)]) as server:
        result = run(emulator, {"warn_days": 30, "notify_to": ["ops@contoso.onmicrosoft.com"],
                                "notify_sender": NOTIFY_MAILBOX},
                     env={"O365_SMTP_HOST": server.host, "O365_SMTP_PORT": str(server.port)}, verbosity=3)
        assert result.rc == 2, result.output[-3000:]
        assert result.task("Mail the credentials that expire within warn_days")["sent_count"] == 1
        [mail] = server.messages
        message = mail.parsed()
    assert mail.mailbox == NOTIFY_MAILBOX and message["To"] == "ops@contoso.onmicrosoft.com"
    assert message["Subject"] == "2 SMTP app credential(s) expire within 30 days"
    body = message.get_content()
    assert senders.keys["rbac_secret"] in body and senders.keys["classic_cert"] in body
    for secret in senders.secrets + [emulator.admin.client_secret]:
        assert secret not in body and secret not in result.output


def test_check_mode_reports_and_fails_but_writes_and_sends_nothing(emulator, tenant, senders, tmp_path):
    textfile = tmp_path / "expiry.prom"
    with smtp_server.clean_endpoint(emulator, allow=[(emulator.admin.client_id, NOTIFY_MAILBOX)]) as server:
        result = run(emulator, {"warn_days": 30, "textfile": str(textfile), "notify_to": ["ops@contoso.onmicrosoft.com"],
                                "notify_sender": NOTIFY_MAILBOX},
                     env={"O365_SMTP_HOST": server.host, "O365_SMTP_PORT": str(server.port)}, check=True)
        assert server.messages == [], "check mode proves the login, sends nothing"
    assert result.rc == 2 and senders.keys["classic_cert"] in result.task(
        "Fail when a credential expires within warn_days")["msg"]
    assert os.listdir(tmp_path) == []
