"""What community.general.mail users write, through ansible-playbook against the emulated tenant (issue 12).

The migration guide's table is checked against both modules' argument specs (community.general.mail's from
ansible-doc, as installed with the ansible package; send_mail's from the module itself), and its "after" task
is run as written (only the sender swapped for a mailbox of the emulated tenant).
"""

import json
import os
import re
import subprocess

import pytest
import yaml

from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import AUTH_ARGUMENT_SPEC
from ansible_collections.o365.smtp_oauth.plugins.modules.send_mail import argument_spec
from emulator import smtp_server
from helpers.playbook import ROOT, run_playbook, smtp_env

GUIDE = os.path.join(ROOT, "docs", "migrating-from-community-general-mail.md")
MAILBOX = "app@contoso.onmicrosoft.com"


@pytest.fixture
def smtp(emulator, tenant):
    with smtp_server.clean_endpoint(emulator, allow=[(emulator.admin.client_id, MAILBOX)]) as server:
        yield server


def mail_options():
    out = subprocess.run(["ansible-doc", "--json", "community.general.mail"], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)["community.general.mail"]["doc"]["options"]


def send_mail_spec():
    spec = dict(AUTH_ARGUMENT_SPEC)
    spec.update(argument_spec())
    return spec


def guide():
    with open(GUIDE) as handle:
        return handle.read()


def guide_table():
    rows = {}
    for line in guide().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.match(r"^`\w+`$", cells[0]):
            rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


def guide_tasks():
    blocks = re.findall(r"```yaml\n(.*?)```", guide(), re.S)
    before, after = [yaml.safe_load(b)[0] for b in blocks[:2]]
    return before, after


def test_the_table_names_every_option_of_both_modules_correctly():
    theirs, ours, rows = mail_options(), send_mail_spec(), guide_table()
    assert sorted(rows) == sorted(theirs), "the table must list every community.general.mail option"
    for name, (target, notes) in rows.items():
        if target == "—":
            continue
        target = target.strip("`")
        assert target in ours, (name, target)
        for alias in theirs[name].get("aliases") or []:
            assert alias in (ours[target].get("aliases") or []), (name, alias)
            assert "`%s`" % alias in notes, (name, alias)
        if theirs[name].get("choices"):
            assert set(theirs[name]["choices"]) <= set(ours[target].get("choices") or []), name


def test_before_and_after_use_only_real_options():
    before, after = guide_tasks()
    assert set(before["community.general.mail"]) <= set(mail_options())
    assert set(after["o365.smtp_oauth.send_mail"]) <= set(send_mail_spec())


def test_the_guides_after_task_runs_as_written(emulator, smtp):
    before, after = guide_tasks()
    args = dict(after["o365.smtp_oauth.send_mail"], sender="Deploy Bot <%s>" % MAILBOX)
    # The variables the guide leaves to the user, filled with the emulated tenant's admin app.
    run = run_playbook(emulator, [{"name": "after", "o365.smtp_oauth.send_mail": args}],
                       extra_vars={"tenant_id": emulator.tenant.tenant_id,
                                   "sending_app_client_id": emulator.admin.client_id,
                                   "sending_app_secret": emulator.admin.client_secret},
                       env=smtp_env(smtp))
    result = run.task("after")
    assert run.rc == 0 and result["sent_count"] == 1, run.output[-3000:]
    [stored] = smtp.messages
    assert stored.parsed()["Reply-To"] == "ops@contoso.com"


def test_what_mail_users_write_is_accepted(emulator, smtp):
    tasks = [
        {"name": "msg alias", "o365.smtp_oauth.send_mail": {
            "sender": MAILBOX, "to": ["bob@example.com"], "msg": "Subject via msg"}},
        {"name": "secure try", "o365.smtp_oauth.send_mail": {
            "sender": MAILBOX, "to": ["bob@example.com"], "subject": "try", "secure": "try"}},
        {"name": "reply-to header", "o365.smtp_oauth.send_mail": {
            "sender": MAILBOX, "to": ["bob@example.com"], "subject": "reply",
            "headers": ["Reply-To=Ops <ops@contoso.com>", "X-Special=yes"]}},
        {"name": "message id domain", "o365.smtp_oauth.send_mail": {
            "sender": MAILBOX, "to": ["bob@example.com"], "subject": "mid", "message_id_domain": "mail.example.org"}},
    ]
    run = run_playbook(emulator=emulator, env=smtp_env(smtp), playbook=tasks)
    assert run.rc == 0, run.output[-3000:]
    by_subject = dict((m.parsed()["Subject"], m.parsed()) for m in smtp.messages)
    assert set(by_subject) == {"Subject via msg", "try", "reply", "mid"}
    assert "secure: try" in run.output and "starttls" in run.output  # the warning
    assert by_subject["reply"]["Reply-To"] == "Ops <ops@contoso.com>" and by_subject["reply"]["X-Special"] == "yes"
    assert by_subject["mid"]["Message-ID"].endswith("@mail.example.org>")
    assert run.task("message id domain")["message_id"].endswith("@mail.example.org>")


@pytest.mark.parametrize("option", ["username", "password"])
def test_basic_auth_options_are_refused_with_what_to_write(emulator, smtp, tenant, option):
    mark = tenant.log.mark()
    run = run_playbook(emulator=emulator, env=smtp_env(smtp), playbook=[{"name": "basic", "o365.smtp_oauth.send_mail": {
        "sender": MAILBOX, "to": ["bob@example.com"], option: "deploy@contoso.com" if option == "username" else "pw"}}])
    result = run.task("basic")
    assert result["failed"] and result["option"] == option, result
    assert "send_mail authenticates with OAuth: set client_id and a credential" in result["msg"]
    assert "migrating-from-community-general-mail.md" in result["msg"] + result.get("error_fix", "")
    assert smtp.messages == [] and [e for e in tenant.log.since(mark) if e.get("part") == "smtp"] == []


def test_azure_azcollection_environment_variables_are_read_after_ours(emulator, smtp):
    env = {"AZURE_TENANT_ID": None, "AZURE_CLIENT_SECRET": None, "AZURE_TENANT": emulator.tenant.tenant_id,
           "AZURE_SECRET": emulator.admin.client_secret, "AZURE_CLOUD_ENVIRONMENT": "AzureCloud"}
    run = run_playbook(emulator=emulator, env=smtp_env(smtp, env), playbook=[{"name": "azenv", "o365.smtp_oauth.send_mail": {
        "sender": MAILBOX, "to": ["bob@example.com"], "subject": "azure env"}}])
    result = run.task("azenv")
    assert run.rc == 0 and result["sent_count"] == 1, run.output[-3000:]
    # Ours win when both are set: a wrong AZURE_SECRET next to the right AZURE_CLIENT_SECRET changes nothing.
    env = smtp_env(smtp, {"AZURE_SECRET": "not-the-secret", "AZURE_TENANT": "00000000-0000-0000-0000-000000000000"})
    run = run_playbook(emulator=emulator, env=env, playbook=[{"name": "both", "o365.smtp_oauth.send_mail": {
        "sender": MAILBOX, "to": ["bob@example.com"], "subject": "both"}}])
    assert run.rc == 0 and run.task("both")["sent_count"] == 1, run.output[-3000:]
