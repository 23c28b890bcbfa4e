"""Every cmdlet call the collection can build, checked against Microsoft's cmdlet reference.

The emulated admin API binds each request with the contract generated from MicrosoftDocs/office-docs-powershell
(tests/emulator/contract/exchange_cmdlets.json) and logs the parameter set it bound to. This walk drives every
code path that builds a cmdlet call through ansible-playbook - both authorisation models, a group scope, a
changed declaration, purge, a wrong registration, lost answers of writes (the recovery reads), the info module in
all its forms, check mode and state absent - and asserts that every request bound to a documented set and that
every cmdlet the collection can send was seen.
"""

from helpers.playbook import run_playbook

DOMAIN = "contoso.onmicrosoft.com"


def box(local):
    return "%s@%s" % (local, DOMAIN)


def access(app_id, **args):
    return {"name": "access", "o365.smtp_oauth.exchange_smtp_access": dict(app_id=app_id, **args)}


def info(**args):
    return {"name": "info", "o365.smtp_oauth.exchange_smtp_access_info": args}


def test_every_cmdlet_call_binds_to_a_documented_parameter_set(emulator, tenant):
    from emulator.exchange_contract import cmdlet_names
    rbac, classic, wrong = emulator.create_app("walk-rbac"), emulator.create_app("walk-classic"), \
        emulator.create_app("walk-wrong")
    ex = tenant.exchange
    # A registration made with the application object id (the common mistake) and an undeclared grant to purge.
    ex.register_sp(wrong["client_id"], wrong["app"]["id"], "walk-wrong")
    ex.allow_send_as(rbac["client_id"], box("sales"))
    tenant.faults.add("exchange", match="New-ManagementRoleAssignment", kind="drop_after_commit", times=1)
    tenant.faults.add("exchange", match="New-ManagementScope", kind="drop_after_commit", times=1)
    mark = tenant.log.mark()
    plays = [
        ([access(rbac["client_id"], mailboxes=[{"address": box("alerts"), "send_as": True},
                                               {"address": box("printer"), "smtp_auth": "disabled"}])], True),
        ([access(rbac["client_id"], mailboxes=[{"address": box("alerts"), "send_as": True},
                                               {"address": box("printer"), "smtp_auth": "disabled"}]),
          access(classic["client_id"], authorization_model="classic", mailboxes=[{"address": box("reports")}]),
          access(wrong["client_id"], mailboxes=[{"address": box("noreply")}])], False),
        ([access(rbac["client_id"], mailboxes=[{"address": box("alerts"), "send_as": True}], purge=True,
                 wait_for_effect=True, wait_timeout=5),
          access(rbac["client_id"], group="smtp-senders", scope_name="walk group", mailboxes=[]),
          access(classic["client_id"], authorization_model="rbac", purge=True,
                 mailboxes=[{"address": box("reports"), "smtp_auth": "inherit"}]),
          info(), info(app_id=rbac["client_id"]), info(mailbox=box("alerts"))], False),
        ([access(rbac["client_id"], state="absent", purge=True, mailboxes=[{"address": box("alerts")}]),
          access(classic["client_id"], state="absent", mailboxes=[{"address": box("reports")}]),
          access(wrong["client_id"], state="absent", mailboxes=[])], False),
    ]
    for tasks, check in plays:
        run = run_playbook(emulator, tasks, check=check)
        assert run.rc == 0 and not any(r.get("failed") for r in run.results), run.output
    calls = [e for e in tenant.log.since(mark) if e.get("part") == "exchange"]
    unbound = [(e["cmdlet"], e["status"]) for e in calls if e.get("parameter_set") is None]
    assert unbound == [], unbound
    sent = {e["cmdlet"] for e in calls}
    # The contract lists what the collection can send; the walk must have sent each of them.
    assert sent == set(cmdlet_names()), sorted(set(cmdlet_names()) ^ sent)
