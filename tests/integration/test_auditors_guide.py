"""docs/auditors.md, checked against real runs: every field and excerpt the guide explains comes from these runs.

Three ansible-playbook runs against the emulated tenant:
1. provision: two apps, one per authorization model (RBAC for Applications and classic), with the same modules as
   playbooks/smtp_oauth_app.yml, and a secret that expires within the warning window;
2. audit: entra_app_info and exchange_smtp_access_info, each report copied to an evidence file;
3. after changes made behind Ansible's back (SMTP AUTH disabled on a mailbox in Exchange, a Graph permission
   consented by hand, an app registered in Exchange with the wrong id), the declaration again with --check --diff,
   then the same audit into a second evidence file.
If a field the guide names is renamed or changes meaning, this test fails, and the guide must be updated with it.
"""

import datetime
import difflib
import json
import os

import pytest

from emulator.certs import ClientCertificate
from emulator.state import GRAPH_APP_ID

GUIDE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs",
                     "auditors.md")
DOMAIN = "contoso.onmicrosoft.com"
NOREPLY, ALERTS, PRINTER = ("%s@%s" % (local, DOMAIN) for local in ("noreply", "alerts", "printer"))

# The declaration: what the tenant must look like. The guide shows the same tasks.
DECLARATION = """
- name: Declared SMTP senders
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The relay app (RBAC for Applications)
      o365.smtp_oauth.entra_app:
        unique_name: smtp-relay-prod
        display_name: SMTP relay (prod)
        notes: Owner platform team
        tags: [smtp]
        admin_consent: true
        purge_permissions: true
      register: relay

    - name: The relay's certificate
      o365.smtp_oauth.entra_app_credential:
        unique_name: smtp-relay-prod
        type: certificate
        public_certificate_path: "{{ relay_certificate }}"

    - name: The relay's fallback secret
      o365.smtp_oauth.entra_app_credential:
        unique_name: smtp-relay-prod
        type: secret
        display_name: relay-fallback
        lifetime_days: 20
        rotate_before_days: 5
      register: relay_secret

    - name: The relay may send as noreply and alerts
      o365.smtp_oauth.exchange_smtp_access:
        app_id: "{{ relay.app_id }}"
        mailboxes:
          - address: noreply@contoso.onmicrosoft.com
          - address: alerts@contoso.onmicrosoft.com

    - name: The scanner app (classic model)
      o365.smtp_oauth.entra_app:
        unique_name: scanner-legacy
        authorization_model: classic
        admin_consent: true
      register: scanner

    - name: The scanner may send as printer
      o365.smtp_oauth.exchange_smtp_access:
        app_id: "{{ scanner.app_id }}"
        authorization_model: classic
        mailboxes:
          - address: printer@contoso.onmicrosoft.com
"""

# The audit: read-only, the same in check mode; the copies run even under --check (check_mode: false).
AUDIT = """
- name: SMTP OAuth audit
  hosts: localhost
  gather_facts: false
  tasks:
    - name: What Entra ID holds for the relay app
      o365.smtp_oauth.entra_app_info:
        unique_name: smtp-relay-prod
      register: relay_report

    - name: What Entra ID holds for the scanner app
      o365.smtp_oauth.entra_app_info:
        unique_name: scanner-legacy
      register: scanner_report

    - name: Who may send as whom (the relay app, every mailbox)
      o365.smtp_oauth.exchange_smtp_access_info:
        app_id: "{{ relay_report.app.app_id }}"
        all_mailboxes: true       # a verdict for every mailbox, also those it may not use
        full_access_scan: true    # FullAccess of every mailbox (one call per mailbox)
      register: relay_access

    - name: Who may send as whom (every grant in the tenant)
      o365.smtp_oauth.exchange_smtp_access_info:
        full_access_scan: true    # classic grants (FullAccess) are found only by reading every mailbox
      register: tenant_access

    - name: Keep the evidence
      ansible.builtin.copy:
        dest: "{{ evidence_dir }}/smtp-oauth-{{ evidence_run }}.json"
        content: "{{ {'relay': relay_report.app, 'scanner': scanner_report.app,
                      'relay_access': relay_access | dict2items
                                      | rejectattr('key', 'in', ['invocation', 'changed', 'failed']) | items2dict,
                      'tenant_pairs': tenant_access.pairs} | to_nice_json }}"
        mode: "0600"
      check_mode: false
"""


def _diff_lines(before, after):
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


@pytest.fixture
def certificate(tmp_path):
    path = tmp_path / "relay.crt"
    ClientCertificate("smtp-relay-prod", days=365).write(str(path), with_key=False)
    return str(path)


def test_guide_fields_from_real_audit_and_drift_runs(emulator, tenant, playbook, certificate, tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    variables = {"relay_certificate": certificate, "evidence_dir": str(evidence)}

    # 1. provision -----------------------------------------------------------------------------------------------
    provision = playbook(DECLARATION, extra_vars=variables)
    assert provision.rc == 0, provision.output[-4000:]
    secret = provision.task("The relay's fallback secret")["secret"]
    relay_app = provision.task("The relay app (RBAC for Applications)")
    scanner_app = provision.task("The scanner app (classic model)")

    # 2. audit ---------------------------------------------------------------------------------------------------
    mark = tenant.log.mark()
    audit = playbook(AUDIT, extra_vars=dict(variables, evidence_run="1"))
    assert audit.rc == 0, audit.output[-4000:]
    assert tenant.log.writes(since=mark) == [], "the audit must only read"
    assert [r["_task"] for r in audit.results if r.get("changed")] == ["Keep the evidence"]

    relay = audit.task("What Entra ID holds for the relay app")["app"]
    assert relay["exists"] is True and relay["app_id"] == relay_app["app_id"]
    assert relay["service_principal_id"] == relay_app["service_principal_id"] != relay["object_id"]
    assert relay["service_principal_enabled"] is True
    assert relay["declared_permissions"] == [] and relay["consented_permissions"] == []
    assert relay["smtp_permission_in_entra"] is False  # RBAC model: nothing about SMTP in Entra
    certificate_entry, secret_entry = relay["credentials"]  # sorted by type, end, key id
    assert certificate_entry["type"] == "certificate" and len(certificate_entry["thumbprint"]) == 40
    assert certificate_entry["display_name"] == "CN=smtp-relay-prod" and certificate_entry["days_left"] in (364, 365)
    assert "hint" not in certificate_entry
    assert secret_entry["type"] == "secret" and secret_entry["display_name"] == "relay-fallback"
    assert secret_entry["hint"] == secret[:3] and secret_entry["days_left"] in (19, 20)
    assert set(secret_entry) == {"type", "key_id", "display_name", "hint", "start", "end", "end_timestamp", "days_left"}
    assert secret_entry["end_timestamp"] == int(datetime.datetime.strptime(secret_entry["end"], "%Y-%m-%dT%H:%M:%SZ")
                                                .replace(tzinfo=datetime.timezone.utc).timestamp())
    assert relay["warn_days"] == 30 and relay["expiring_credentials"] == [secret_entry["key_id"]]
    [finding] = relay["findings"]
    assert finding.startswith("secret %s (relay-fallback) expires in" % secret_entry["key_id"])
    # ansible-core before 2.19 wraps a warning at 80 columns: the same words, other line breaks.
    assert "[WARNING]: " + finding in " ".join(audit.output.split())

    scanner = audit.task("What Entra ID holds for the scanner app")["app"]
    assert scanner["smtp_permission_in_entra"] is True
    assert [(p["api"], p["permission"], p["type"]) for p in scanner["declared_permissions"]] == [
        ("Office 365 Exchange Online", "SMTP.SendAsApp", "application")]
    assert [(p["api"], p["permission"]) for p in scanner["consented_permissions"]] == [
        ("Office 365 Exchange Online", "SMTP.SendAsApp")]
    assert scanner["declared_not_consented"] == [] and scanner["consented_not_declared"] == []

    access = audit.task("Who may send as whom (the relay app, every mailbox)")
    assert access["tenant"] == {"smtp_auth": "enabled", "smtp_client_authentication_disabled": False,
                                "authorization_model_default": "rbac", "rbac_smtp_role": True}
    [registered] = access["service_principals"]
    assert registered["registered"] is True and registered["object_id_ok"] is True
    assert registered["object_id"] == registered["entra_service_principal_id"] == relay["service_principal_id"]
    assert registered["smtp_send_as_app_consented"] is False
    [scope] = access["scopes"]
    # Exchange prints the filter in its own spelling (RecipientFilter): the guide shows that form.
    assert scope["filter"] == "((PrimarySmtpAddress -eq '%s') -or (PrimarySmtpAddress -eq '%s'))" % (ALERTS, NOREPLY)
    [assignment] = access["role_assignments"]
    assert assignment.pop("role_assignee")  # as Exchange prints the service principal (any form)
    assert assignment == {"name": scope["name"], "role": "Application SMTP.SendAsApp", "enabled": True,
                          "service_principal_id": relay["service_principal_id"], "scope": scope["name"]}
    boxes = {m["address"]: m for m in access["mailboxes"]}
    assert [m["address"] for m in access["mailboxes"]] == sorted(boxes)
    assert boxes[NOREPLY]["smtp_auth"] == {"mailbox": "inherit", "tenant": "enabled", "effective": "enabled"}
    assert boxes[PRINTER]["full_access"] == [scanner_app["service_principal_id"]]
    pairs = {p["mailbox"]: p for p in access["pairs"]}
    assert set(pairs) == set(boxes), "with app_id, every mailbox gets a verdict"
    assert pairs[NOREPLY]["via"] == "rbac" and pairs[NOREPLY]["send_as"] is False
    assert pairs[NOREPLY]["verdict"] == {"status": "allowed", "allowed": True, "reasons": []}
    assert pairs[PRINTER]["via"] is None and pairs[PRINTER]["verdict"]["status"] == "denied"
    assert pairs[PRINTER]["verdict"]["reasons"] == [
        "no role assignment 'Application SMTP.SendAsApp' with a scope containing the mailbox (535 5.7.3)"]

    whole = audit.task("Who may send as whom (every grant in the tenant)")
    assert [(p["mailbox"], p["via"], p["verdict"]["status"]) for p in whole["pairs"]] == [
        (ALERTS, "rbac", "allowed"), (NOREPLY, "rbac", "allowed"), (PRINTER, "classic", "allowed")]
    classic = [s for s in whole["service_principals"] if s["app_id"] == scanner_app["app_id"]]
    assert classic[0]["smtp_send_as_app_consented"] is True

    # 3. drift behind Ansible's back, then the declaration in check mode with --diff, then the audit again ---------
    tenant.exchange.find_mailbox(NOREPLY)["SmtpClientAuthenticationDisabled"] = True
    tenant.grant_app_role(relay["service_principal_id"], GRAPH_APP_ID, "User.Read.All")
    # ... and an app registered in Exchange by hand with its application object id (the classic mistake).
    by_hand = tenant.add_application("Copier (by hand)")
    by_hand_sp = tenant.add_service_principal(by_hand)
    tenant.exchange.register_sp(by_hand["appId"], by_hand["id"], "Copier (by hand)")

    mark = tenant.log.mark()
    drift = playbook(DECLARATION, check=True, diff=True, extra_vars=variables)
    audit2 = playbook(AUDIT, check=True, diff=True, extra_vars=dict(variables, evidence_run="2"))
    assert drift.rc == 0 and audit2.rc == 0, drift.output[-3000:] + audit2.output[-3000:]
    assert tenant.log.writes(since=mark) == [], "check mode must not write"
    assert tenant.exchange.find_mailbox(NOREPLY)["SmtpClientAuthenticationDisabled"] is True

    assert sorted(r["_task"] for r in drift.results if r.get("changed")) == [
        "The relay app (RBAC for Applications)", "The relay may send as noreply and alerts"]
    entra_drift = drift.task("The relay app (RBAC for Applications)")
    assert entra_drift["diff"]["before"]["admin_consent"] == ["Microsoft Graph: User.Read.All"]
    assert entra_drift["diff"]["after"]["admin_consent"] == []
    assert entra_drift["changes"] == ["admin consent: grant 0, revoke 1"]
    exchange_drift = drift.task("The relay may send as noreply and alerts")
    assert exchange_drift["diff"]["before"]["mailboxes"][NOREPLY]["smtp_auth"] == "disabled"
    assert exchange_drift["diff"]["after"]["mailboxes"][NOREPLY]["smtp_auth"] == "enabled"
    assert exchange_drift["actions"] == [
        "Set-CASMailbox -Identity '%s' -SmtpClientAuthenticationDisabled $false" % NOREPLY]
    for line in ('-    "admin_consent": [', '+    "admin_consent": [],', '-            "smtp_auth": "disabled"',
                 '+            "smtp_auth": "enabled"', "changed=2"):
        assert line in drift.stdout, line

    relay2 = audit2.task("What Entra ID holds for the relay app")["app"]
    assert relay2["consented_not_declared"] == ["Microsoft Graph: User.Read.All"]
    access2 = audit2.task("Who may send as whom (the relay app, every mailbox)")
    pairs2 = {p["mailbox"]: p for p in access2["pairs"]}
    assert pairs2[NOREPLY]["via"] == "rbac" and pairs2[NOREPLY]["verdict"] == {
        "status": "denied", "allowed": False,
        "reasons": ["SMTP AUTH is disabled for the mailbox (CASMailbox SmtpClientAuthenticationDisabled) (535 5.7.139)"]}
    boxes2 = {m["address"]: m for m in access2["mailboxes"]}
    [wrong] = [sp for sp in audit2.task("Who may send as whom (every grant in the tenant)")["service_principals"]
               if sp["app_id"] == by_hand["appId"]]
    assert wrong["registered"] is True and wrong["object_id_ok"] is False
    assert (wrong["object_id"], wrong["entra_service_principal_id"]) == (by_hand["id"], by_hand_sp["id"])
    assert wrong["problem"] == ("registered with %s, which is not the app's service principal object id (%s): "
                                "Remove-ServicePrincipal and register it again with the right id"
                                % (by_hand["id"], by_hand_sp["id"]))
    assert boxes2[NOREPLY]["smtp_auth"] == {"mailbox": "disabled", "tenant": "enabled", "effective": "disabled"}

    # Evidence: stable order, so two files differ only where the tenant changed.
    first = (evidence / "smtp-oauth-1.json").read_text()
    second = (evidence / "smtp-oauth-2.json").read_text()
    before, after = json.loads(first), json.loads(second)
    assert after["relay"]["consented_not_declared"] == ["Microsoft Graph: User.Read.All"]
    assert [(p["api"], p["permission"]) for p in after["relay"]["consented_permissions"]] == [
        ("Microsoft Graph", "User.Read.All")]
    text_diff = _diff_lines(first, second)
    assert [line[0] + line[1:].strip(" ,") for line in text_diff if '"effective"' in line] == [
        '-"effective": "enabled"', '+"effective": "disabled"'], text_diff
    # Undo exactly the hand-made changes in the second file: what remains must equal the first file.
    after["relay"]["consented_not_declared"] = after["relay"]["consented_permissions"] = []
    for mailbox in after["relay_access"]["mailboxes"]:
        if mailbox["address"] == NOREPLY:
            mailbox["smtp_auth"] = {"mailbox": "inherit", "tenant": "enabled", "effective": "enabled"}
    for pair in after["relay_access"]["pairs"] + after["tenant_pairs"]:
        if pair["mailbox"] == NOREPLY:
            pair["verdict"] = {"status": "allowed", "allowed": True, "reasons": []}
    assert after == before, "evidence files of two runs differ only where the tenant changed"

    # No secret value anywhere an auditor looks.
    haystacks = {"audit output": audit.output, "drift output": drift.output, "second audit output": audit2.output,
                 "evidence 1": first, "evidence 2": second, "audit results": json.dumps(audit.results),
                 "drift results": json.dumps(drift.results)}
    for where, text in haystacks.items():
        assert secret not in text, "the secret value is in the %s" % where
        assert emulator.admin.client_secret not in text, "the admin secret is in the %s" % where


def test_guide_names_every_field_it_is_checked_against():
    """The guide explains each field asserted above; a renamed field must be renamed in the guide too."""
    with open(GUIDE) as handle:
        text = handle.read()
    for field in ("service_principal_id", "service_principal_enabled", "declared_permissions",
                  "consented_permissions", "declared_not_consented", "consented_not_declared",
                  "smtp_permission_in_entra", "credentials", "days_left", "hint", "thumbprint",
                  "expiring_credentials", "findings", "warn_days", "federated_credentials",
                  "smtp_client_authentication_disabled", "service_principals", "registered", "object_id_ok",
                  "entra_service_principal_id", "smtp_send_as_app_consented", "scopes", "role_assignments",
                  "mailboxes", "full_access", "send_as", "effective", "pairs", "via", "verdict", "reasons",
                  "actions", "changes"):
        assert "`%s`" % field in text or '"%s":' % field in text, field
    for words in ("--check --diff", "check_mode: false", "to_nice_json", "Set-CASMailbox", "535 5.7.3",
                  "535 5.7.139", "RBAC for Applications", "classic"):
        assert words in text, words
