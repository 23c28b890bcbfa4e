"""The README demo's playbook, as a user runs it: provisioning, send, audit, and a re-run that changes nothing.

Also the cross-cutting secrecy proof: at -vvvv, with the admin's client secret, the admin's and the sending app's
private keys, and every access token the emulated tenant issued as sentinels, no byte of output, of the emulator's
request log, or of the token cache carries any of them.
"""

import os
import stat

import pytest
import yaml

from helpers.playbook import ROOT

PLAYBOOK = os.path.join(ROOT, "playbooks", "smtp_oauth_app.yml")


def _pem_body(path):
    """The base64 lines of a PEM private key: a leak of any long line of it counts."""
    with open(path) as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("-----") and len(line.strip()) > 40]


@pytest.fixture
def issued_tokens(tenant, monkeypatch):
    """Every access token the emulated identity platform hands out during the test."""
    tokens = []
    original = tenant.tokens.issue

    def recording(*args, **kwargs):
        token = original(*args, **kwargs)
        tokens.append(token)
        return token

    monkeypatch.setattr(tenant.tokens, "issue", recording)
    return tokens


def test_example_playbook_provisions_sends_and_reruns_without_writes(emulator, tenant, playbook, issued_tokens, tmp_path):
    with open(PLAYBOOK) as handle:
        text = handle.read()
    cache = tmp_path / "token-cache"
    work = tmp_path / "work"
    env = {"O365_TOKEN_CACHE_DIR": str(cache), "DEMO_RECIPIENT": "ops@contoso.onmicrosoft.com"}

    # -vvvv and --diff: every byte a user could see at the highest verbosity is scanned below.
    first = playbook(text, verbosity=4, diff=True, extra_vars={"demo_workdir": str(work)}, env=env)
    assert first.rc == 0, first.output[-4000:]
    app = first.task("The app registration and its service principal (RBAC for Applications model)")
    assert app["changed"] is True
    assert first.task("Exchange lets the app send as the mailbox over SMTP")["changed"] is True
    sent = first.task("Send a test mail as the app itself (certificate credential)")
    assert sent["changed"] is True and sent["sent_count"] == 1
    delivered = [m for m in emulator.smtp.messages if m.app_id == app["app_id"]]
    assert len(delivered) == 1 and delivered[0].mailbox == "noreply@contoso.onmicrosoft.com"
    summary = first.task("Summary")["msg"]
    assert any("noreply@contoso.onmicrosoft.com" in line for line in summary)

    mark = tenant.log.mark()
    second = playbook(text, verbosity=4, diff=True, extra_vars={"demo_workdir": str(work), "send_test_mail": False},
                      env=env)
    assert second.rc == 0, second.output[-4000:]
    changed = [r.get("_task") for r in second.results if r.get("changed")]
    assert changed == [], changed
    writes = tenant.log.writes(since=mark)
    assert writes == [], writes
    assert tenant.log.count(since=mark) > 0  # the re-run did read the tenant

    # Exactly one app and one service principal with that uniqueName: no duplicate however often it runs.
    apps = [a for a in tenant.applications.values() if a.get("uniqueName") == "smtp-oauth-demo"]
    assert len(apps) == 1

    # -- secrecy -------------------------------------------------------------------------------------------------
    sentinels = {"admin client secret": [emulator.admin.client_secret],
                 "admin private key": _pem_body(emulator.admin.certificate_path),
                 "sending app private key": _pem_body(str(work / "sender" / "01-key.pem")),
                 "access tokens": list(issued_tokens)}
    assert issued_tokens, "the emulator issued no token: the scan would prove nothing"
    haystacks = {"first run output": first.output, "second run output": second.output,
                 "emulator request log": repr(tenant.log.since(0))}
    for path in sorted(cache.rglob("*")):
        if path.is_file():
            haystacks["token cache " + path.name] = path.read_text(errors="replace")
    for where, text in haystacks.items():
        for kind, values in sentinels.items():
            if kind == "access tokens" and where.startswith("token cache"):
                continue  # a token cache holds tokens by design; it must hold nothing else secret
            for value in values:
                assert value not in text, "%s found in %s" % (kind, where)

    # The cache: a 0700 folder of 0600 files.
    assert cache.is_dir() and stat.S_IMODE(cache.stat().st_mode) == 0o700
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert files, "no token cache file was written"
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_example_playbook_is_valid_yaml_with_fqcn_only():
    with open(PLAYBOOK) as handle:
        plays = yaml.safe_load(handle)
    for task in plays[0]["tasks"]:
        module = [k for k in task if "." in k]
        assert module, "task %r does not use a fully qualified module name" % task.get("name")
