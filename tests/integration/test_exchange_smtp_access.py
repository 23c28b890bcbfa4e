"""exchange_smtp_access / exchange_smtp_access_info through ansible-playbook against the emulated tenant.

Everything real: ansible-playbook, the collection's token layer (msal, client secret of the seeded admin app), the
emulator's HTTPS server, Graph and Exchange admin API, and its SMTP endpoint (aiosmtpd) for the XOAUTH2 proof.
The sending app is created by entra_app in the same playbook. Its SMTP token is issued by the tenant's own signer
(smtp_server.app_token) with the roles the app holds in Entra, which is what the identity platform would put in it.
"""

import smtplib
import ssl
import threading

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.jwt_claims import decode_claims
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.diagnosis import diagnose
from emulator import smtp_server
from emulator.clients import smtp_xoauth2
from helpers.playbook import four_runs, results, run_playbook

DOMAIN = "contoso.onmicrosoft.com"
EXCHANGE = "00000002-0000-0ff1-ce00-000000000000"


def box(local):
    return "%s@%s" % (local, DOMAIN)


def access_task(app_id, **args):
    return {"name": "access", "o365.smtp_oauth.exchange_smtp_access": dict(app_id=app_id, **args)}


def sending_app(emulator, tenant, name, model):
    task = {"name": "app", "o365.smtp_oauth.entra_app": {"unique_name": name, "authorization_model": model,
                                                         "admin_consent": model == "classic"}}
    [created] = results(emulator, task)
    assert created["changed"], created
    return created["app_id"], created["service_principal_id"]


def entra_roles(tenant, sp_id):
    """The app roles an app-only token of this SP carries: the consented ones, by value."""
    names = {}
    for sp in tenant.service_principals.values():
        for role in sp.get("appRoles") or []:
            names[(sp["id"], role["id"])] = role["value"]
    return [names[(a["resourceId"], a["appRoleId"])] for a in tenant.app_role_assignments.values()
            if a.get("principalId") == sp_id and (a["resourceId"], a["appRoleId"]) in names]


def smtp_login(emulator, tenant, app_id, sp_id, mailbox):
    """A raw smtplib XOAUTH2 login: (code, reply text)."""
    endpoint = smtp_server.endpoint_for(emulator)
    token = endpoint.app_token(app_id, roles=entra_roles(tenant, sp_id))
    conn = smtplib.SMTP(endpoint.host, endpoint.port, timeout=10)
    try:
        conn.starttls(context=ssl.create_default_context(cafile=endpoint.ca_path))
        conn.ehlo("test")
        code, reply = smtp_xoauth2(conn, mailbox, token)
        return code, reply.decode()
    finally:
        conn.close()


@pytest.mark.parametrize("model", ["rbac", "classic"])
def test_create_check_create_again_again_and_smtp_works_only_after(emulator, tenant, model):
    app_id, sp_id = sending_app(emulator, tenant, "relay-" + model, model)
    task = access_task(app_id, authorization_model=model,
                       mailboxes=[{"address": box("noreply")}, {"address": box("alerts"), "send_as": True}])

    code, reply = smtp_login(emulator, tenant, app_id, sp_id, box("noreply"))
    assert code == 535 and "5.7.3" in reply
    token = smtp_server.endpoint_for(emulator).app_token(app_id, roles=entra_roles(tenant, sp_id))
    cause = diagnose(code, reply, claims=decode_claims(token), mailbox=box("noreply")).cause
    assert ("RBAC for Applications" if model == "rbac" else "FullAccess") in cause

    runs = [result for result, output in four_runs(emulator, tenant, task, "exchange")]
    assert not [result for result in runs if result.get("failed")], runs
    predicted, created, check_again, again = runs
    assert predicted["changed"] and predicted["actions"] == created["actions"]
    assert created["changed"] and created["service_principal_id"] == sp_id
    assert created["diff"]["before"]["service_principal"] is None
    assert created["diff"]["after"]["mailboxes"][box("alerts")]["send_as"] is True
    assert [m["verdict"]["status"] for m in created["mailboxes"]] == ["pending", "pending"]
    assert not check_again["changed"] and not again["changed"] and again["actions"] == []
    assert [m["verdict"]["status"] for m in again["mailboxes"]] == ["allowed", "allowed"]

    code, reply = smtp_login(emulator, tenant, app_id, sp_id, box("noreply"))
    assert code == 235, reply
    code, reply = smtp_login(emulator, tenant, app_id, sp_id, box("reports"))
    assert code == 535 and "5.7.3" in reply


def test_wrong_object_id_is_refused_with_the_right_one(emulator, tenant):
    app_id, sp_id = sending_app(emulator, tenant, "relay-trap", "rbac")
    app_object_id = next(a["id"] for a in tenant.applications.values() if a["appId"] == app_id)
    mark = tenant.log.mark()
    [result] = results(emulator, access_task(app_id, object_id=app_object_id, mailboxes=[{"address": box("noreply")}]))
    assert result["failed"] and "object_id" in result["msg"] and sp_id in result["msg"]
    assert "application object id" in result["msg"] and "Traceback" not in result["msg"]
    assert tenant.log.writes("exchange", since=mark) == []


def test_tenant_smtp_auth_disabled_with_mailbox_on_inherit(emulator, tenant):
    tenant.exchange.transport_config["SmtpClientAuthenticationDisabled"] = True
    app_id, sp_id = sending_app(emulator, tenant, "relay-inherit", "rbac")
    [result] = results(emulator, access_task(app_id, mailboxes=[{"address": box("printer"), "smtp_auth": "inherit"}]))
    mailbox = result["mailboxes"][0]
    assert mailbox["smtp_auth"] == {"mailbox": "inherit", "tenant": "disabled", "effective": "disabled"}
    assert mailbox["verdict"]["status"] == "denied"
    assert any("disabled for the tenant" in r for r in mailbox["verdict"]["reasons"])
    code, reply = smtp_login(emulator, tenant, app_id, sp_id, box("printer"))
    assert code == 535 and "5.7.139" in reply and "Tenant" in reply

    [fixed] = results(emulator, access_task(app_id, mailboxes=[{"address": box("printer"), "smtp_auth": "enabled"}]))
    assert fixed["changed"] and fixed["actions"] == [
        "Set-CASMailbox -Identity '%s' -SmtpClientAuthenticationDisabled $false" % box("printer")]
    assert smtp_login(emulator, tenant, app_id, sp_id, box("printer"))[0] == 235


def test_exchange_throttling_is_retried(emulator, tenant):
    app_id, sp_id = sending_app(emulator, tenant, "relay-429", "rbac")
    mark = tenant.log.mark()
    fault = tenant.faults.add("exchange", match="New-ManagementScope", kind="status", status=429, times=2,
                              retry_after=1)
    [result] = results(emulator, access_task(app_id, mailboxes=[{"address": box("reports")}]))
    assert result["changed"] and not result.get("failed"), result
    assert fault.hits == 2 and len(tenant.log.entries(since=mark, part="exchange", status=429)) == 2
    assert [e["cmdlet"] for e in tenant.log.writes(part="exchange", since=mark) if e["status"] == 200] == [
        "New-ServicePrincipal", "New-ManagementScope", "New-ManagementRoleAssignment"]


def test_exchange_throttling_that_lasts_is_a_clear_failure(emulator, tenant):
    app_id, sp_id = sending_app(emulator, tenant, "relay-429-long", "rbac")
    tenant.faults.add("exchange", match="Get-TransportConfig", kind="status", status=429, times=None, retry_after=1)
    [result] = results(emulator, access_task(app_id, mailboxes=[{"address": box("reports")}]))
    tenant.faults.clear()
    assert result["failed"] and "Get-TransportConfig" in result["msg"] and "429" in result["msg"]
    assert "again later" in result["msg"] and "Traceback" not in result["msg"]


def test_unknown_mailbox_fails_naming_it_before_any_write(emulator, tenant):
    app_id, sp_id = sending_app(emulator, tenant, "relay-ghost", "rbac")
    mark = tenant.log.mark()
    [result] = results(emulator, access_task(app_id, mailboxes=[{"address": box("noreply")},
                                                                {"address": box("ghost")}]))
    assert result["failed"] and "mailboxes[1].address" in result["msg"] and box("ghost") in result["msg"]
    assert tenant.log.writes("exchange", since=mark) == []


def test_info_answers_who_may_send_as_whom(emulator, tenant):
    app_id, sp_id = sending_app(emulator, tenant, "relay-info", "rbac")
    results(emulator, access_task(app_id, mailboxes=[{"address": box("noreply")}]))
    tenant.exchange.transport_config["SmtpClientAuthenticationDisabled"] = True
    mark = tenant.log.mark()
    report, whole, every = results(emulator, [
        {"o365.smtp_oauth.exchange_smtp_access_info": {"app_id": app_id}},
        {"o365.smtp_oauth.exchange_smtp_access_info": {}},
        {"o365.smtp_oauth.exchange_smtp_access_info": {"app_id": app_id, "all_mailboxes": True}}])
    assert not report["changed"] and not whole["changed"] and tenant.log.writes("exchange", since=mark) == []
    # By default only where the app may send (its scope holds noreply@); every mailbox only when asked for.
    assert [p["mailbox"] for p in report["pairs"]] == [box("noreply")]
    assert [b["address"] for b in report["mailboxes"]] == [box("noreply")]
    pairs = {p["mailbox"]: p for p in every["pairs"]}
    assert set(pairs) == {b["PrimarySmtpAddress"] for b in tenant.exchange.mailboxes.values()}
    assert pairs[box("noreply")] == report["pairs"][0]
    assert pairs[box("noreply")]["via"] == "rbac" and not pairs[box("noreply")]["verdict"]["allowed"]
    assert any("disabled for the tenant" in r for r in pairs[box("noreply")]["verdict"]["reasons"])
    assert any("role assignment" in r for r in pairs[box("alerts")]["verdict"]["reasons"])
    assert report["service_principals"][0]["object_id"] == sp_id and report["service_principals"][0]["object_id_ok"]
    assert report["tenant"] == {"smtp_auth": "disabled", "smtp_client_authentication_disabled": True,
                                "authorization_model_default": "rbac", "rbac_smtp_role": True}
    assert [(p["app_id"], p["mailbox"]) for p in whole["pairs"]] == [(app_id, box("noreply"))]


def test_propagation_wait_for_effect_then_absent_revokes(emulator, tenant):
    app_id, sp_id = sending_app(emulator, tenant, "relay-slow", "rbac")
    tenant.exchange.propagation_delay = 2.0
    declared = dict(mailboxes=[{"address": box("alerts")}], wait_for_effect=True, wait_timeout=30)
    [waited] = results(emulator, access_task(app_id, **declared))
    # Seen in the admin API, yet still 'pending': only an SMTP login proves it (next test).
    assert waited["changed"] and waited["mailboxes"][0]["admin_api_in_effect"] is True, waited
    assert waited["mailboxes"][0]["verdict"]["status"] == "pending"
    assert smtp_login(emulator, tenant, app_id, sp_id, box("alerts"))[0] == 235

    tenant.exchange.propagation_delay = 0
    mark = tenant.log.mark()
    [gone] = results(emulator, access_task(app_id, state="absent", **declared))
    assert gone["changed"] and [e["cmdlet"] for e in tenant.log.writes("exchange", since=mark)] == [
        "Remove-ManagementRoleAssignment", "Remove-ManagementScope", "Remove-ServicePrincipal"]
    code, reply = smtp_login(emulator, tenant, app_id, sp_id, box("alerts"))
    assert code == 535 and "5.7.3" in reply


def test_wait_for_effect_on_a_rerun_waits_for_what_the_last_run_configured(emulator, tenant):
    app_id, sp_id = sending_app(emulator, tenant, "relay-later", "rbac")
    tenant.exchange.propagation_delay = 6.0  # far beyond the first run's write-to-read time
    declared = dict(mailboxes=[{"address": box("alerts")}], wait_for_effect=True)
    [first] = results(emulator, access_task(app_id, wait_timeout=0, **declared))
    assert first["changed"] and first["mailboxes"][0]["verdict"]["status"] == "pending", first
    mark = tenant.log.mark()
    [again] = results(emulator, access_task(app_id, wait_timeout=30, **declared))
    assert not again["changed"] and again["mailboxes"][0]["verdict"]["status"] == "allowed", again
    assert tenant.log.writes("exchange", since=mark) == []
    assert smtp_login(emulator, tenant, app_id, sp_id, box("alerts"))[0] == 235


def test_rbac_app_that_also_holds_the_entra_permission_is_denied_and_told_why(emulator, tenant):
    """The Entra SMTP.SendAsApp role in the token makes Exchange check FullAccess: the RBAC grant stops working.
    The module warns, the verdict says so, and a real XOAUTH2 login agrees (535 5.7.3)."""
    app_id, sp_id = sending_app(emulator, tenant, "relay-both", "classic")  # consented SMTP.SendAsApp in Entra
    [result] = results(emulator, access_task(app_id, authorization_model="rbac", mailboxes=[{"address": box("alerts")}]))
    assert any("also holds the Entra permission SMTP.SendAsApp" in w for w in result.get("warnings", [])), result
    [info] = results(emulator, {"name": "info", "o365.smtp_oauth.exchange_smtp_access_info": {"app_id": app_id}})
    pair = [p for p in info["pairs"] if p["mailbox"] == box("alerts")][0]
    assert pair["via"] is None and pair["verdict"]["status"] == "denied"
    assert any("ignores the RBAC role assignment" in r for r in pair["verdict"]["reasons"]), pair
    code, reply = smtp_login(emulator, tenant, app_id, sp_id, box("alerts"))
    assert code == 535 and "5.7.3" in reply


def test_info_reports_the_same_in_check_mode_and_never_writes(emulator, tenant):
    app_id, sp_id = sending_app(emulator, tenant, "relay-audit", "rbac")
    results(emulator, access_task(app_id, mailboxes=[{"address": box("alerts")}]))
    info = {"name": "info", "o365.smtp_oauth.exchange_smtp_access_info": {"app_id": app_id}}
    mark = tenant.log.mark()
    [normal] = results(emulator, info)
    [checked] = results(emulator, info, check=True)
    assert not normal["changed"] and not checked["changed"]
    assert checked["pairs"] == normal["pairs"] and checked["service_principals"] == normal["service_principals"]
    assert tenant.log.writes("exchange", since=mark) == []


def test_wait_for_effect_is_not_proof_and_send_mail_in_check_mode_is(emulator, tenant):
    """Exchange's SMTP front end answers from a permission cache that lags behind the admin API: the module must
    not call the grant proven when Test-ServicePrincipalAuthorization says yes. The documented proof (the
    module's EXAMPLES) is send_mail in check mode with the sending app's own credential, retried until it logs in."""
    made = emulator.create_app("proof")
    app_id, sp_id = made["client_id"], made["sp"]["id"]
    tenant.exchange.propagation_delay = 1.0
    tenant.exchange.smtp_cache_delay = 3600.0  # until two logins were refused (below): no race with wall time
    [waited] = results(emulator, access_task(app_id, mailboxes=[{"address": box("alerts")}], wait_for_effect=True,
                                             wait_timeout=30))
    mailbox = waited["mailboxes"][0]
    assert mailbox["admin_api_in_effect"] is True and mailbox["verdict"]["status"] == "pending", waited
    assert "permission cache" in mailbox["verdict"]["reasons"][0] and "send_mail" in mailbox["verdict"]["reasons"][0]
    code, reply = smtp_login(emulator, tenant, app_id, sp_id, box("alerts"))
    assert code == 535 and "5.7.3" in reply  # what the customer would see right after the task

    endpoint = smtp_server.endpoint_for(emulator)
    proof = {"name": "proof", "o365.smtp_oauth.send_mail": {
        "client_id": app_id, "client_secret": made["client_secret"], "sender": box("alerts"), "to": [box("alerts")],
        "host": endpoint.host, "port": endpoint.port},
        "check_mode": True, "register": "proof", "until": "proof is succeeded", "retries": 60, "delay": 1}
    mark = tenant.log.mark()
    stop = threading.Event()

    def cache_catches_up_after_two_refusals():
        while not stop.wait(0.05):
            if sum(1 for e in tenant.log.since(mark) if e.get("part") == "smtp" and e.get("verb") == "AUTH") >= 2:
                tenant.exchange.smtp_cache_delay = 0.0
                return
    watcher = threading.Thread(target=cache_catches_up_after_two_refusals, daemon=True)
    watcher.start()
    try:
        run = run_playbook(emulator, [proof])
    finally:
        stop.set()
        watcher.join()
    [result] = run.results
    assert run.rc == 0 and not result.get("failed") and result["attempts"] >= 2, run.output
    auths = [e for e in tenant.log.since(mark) if e.get("part") == "smtp" and e.get("verb") == "AUTH"]
    assert len(auths) >= result["attempts"] and [e for e in tenant.log.since(mark) if e.get("verb") == "DATA"] == []
    assert made["client_secret"] not in run.output


@pytest.mark.parametrize("form,resolves", [("display_name", True), ("sid", False), ("app_id", False)])
def test_reruns_write_nothing_whatever_form_exchange_prints_the_principal_in(emulator, tenant, form, resolves):
    """How Exchange prints a service principal in User / Trustee / RoleAssignee is not documented, nor whether
    -RoleAssignee resolves one: every form, both answers, both models, and re-runs still send no write."""
    tenant.exchange.principal_form = form
    tenant.exchange.role_assignee_resolves_sp = resolves
    rbac_app, unused = sending_app(emulator, tenant, "forms-rbac", "rbac")
    classic_app, unused = sending_app(emulator, tenant, "forms-classic", "classic")
    tasks = [access_task(rbac_app, mailboxes=[{"address": box("alerts"), "send_as": True}]),
             access_task(classic_app, authorization_model="classic",
                         mailboxes=[{"address": box("reports"), "send_as": True}]),
             {"name": "info", "o365.smtp_oauth.exchange_smtp_access_info": {"app_id": rbac_app}}]
    first = results(emulator, tasks)
    assert first[0]["changed"] and first[1]["changed"], first
    mark = tenant.log.mark()
    again = results(emulator, tasks)
    assert not again[0]["changed"] and not again[1]["changed"], again
    assert tenant.log.writes("exchange", since=mark) == []
    [assignment] = again[2]["role_assignments"]
    assert assignment["service_principal_id"] == again[0]["service_principal_id"]
    alerts = [p for p in again[2]["pairs"] if p["mailbox"] == box("alerts")]
    assert [(p["via"], p["send_as"]) for p in alerts] == [("rbac", True)]
    gone = results(emulator, [dict(t, **{t_key: dict(t[t_key], state="absent")})
                              for t in tasks[:2] for t_key in [next(k for k in t if k.startswith("o365"))]])
    assert gone[0]["changed"] and gone[1]["changed"]
    ex = tenant.exchange
    assert (ex.role_assignments, ex.scopes, ex.mailbox_permissions, ex.recipient_permissions,
            ex.service_principals) == ({}, {}, [], [], {})


def test_info_at_v_says_how_far_the_per_mailbox_reads_went(emulator, tenant):
    """-v: the per-mailbox reads (here one Test-ServicePrincipalAuthorization per mailbox of the app's scope, run a
    few at a time) report their progress in the result; without -v the result has no such key."""
    app_id, sp_id = sending_app(emulator, tenant, "relay-progress", "rbac")
    declared = access_task(app_id, mailboxes=[{"address": box("noreply")}, {"address": box("alerts")}])
    info = {"name": "info", "o365.smtp_oauth.exchange_smtp_access_info": {"app_id": app_id}}
    run = run_playbook(emulator, [declared, info], verbosity=1)
    created, report = run.results
    assert created["changed"] and not report["changed"], run.output[-3000:]
    assert report["progress"][-1] == "in scope: 2 of 2"
    assert [p["mailbox"] for p in report["pairs"]] == [box("alerts"), box("noreply")]
    assert "in scope: 2 of 2" in run.output
