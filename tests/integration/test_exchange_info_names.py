"""exchange_smtp_access_info names who may send, and reports a display name Exchange and Entra disagree on
(issue 12, auditors' view). Through ansible-playbook against the emulated tenant (Graph and Exchange admin API)."""

from helpers.playbook import run_playbook

MAILBOX = "noreply@contoso.onmicrosoft.com"


def test_info_names_the_app_and_reports_display_name_drift(emulator, tenant):
    setup = run_playbook(emulator, [
        {"name": "app", "o365.smtp_oauth.entra_app": {"unique_name": "named-relay", "display_name": "Relay (prod)"},
         "register": "app"},
        {"name": "access", "o365.smtp_oauth.exchange_smtp_access": {"app_id": "{{ app.app_id }}",
                                                                    "mailboxes": [{"address": MAILBOX}]}}])
    assert setup.rc == 0, setup.output[-3000:]
    app_id, sp_id = setup.task("app")["app_id"], setup.task("app")["service_principal_id"]
    info = {"name": "info", "o365.smtp_oauth.exchange_smtp_access_info": {"app_id": app_id}}

    run = run_playbook(emulator, [info])
    report = run.task("info")
    [pair] = [p for p in report["pairs"] if p["mailbox"] == MAILBOX]
    assert pair["app_display_name"] == "Relay (prod)" and pair["app_id"] == app_id, pair
    [registered] = report["service_principals"]
    assert registered["entra_display_name"] == "Relay (prod)" and registered["display_name_drift"] is False
    assert "drift" not in registered

    # Renamed in Entra only (the portal, another tool): Exchange keeps the name it was registered with.
    tenant.service_principals[sp_id]["displayName"] = "Relay (production)"
    mark = tenant.log.mark()
    run = run_playbook(emulator, [info])
    report = run.task("info")
    [registered] = report["service_principals"]
    assert registered["display_name"] == "Relay (prod)" and registered["entra_display_name"] == "Relay (production)"
    assert registered["display_name_drift"] is True
    assert "Set-ServicePrincipal" in registered["drift"] and "Relay (production)" in registered["drift"]
    [pair] = [p for p in report["pairs"] if p["mailbox"] == MAILBOX]
    assert pair["app_display_name"] == "Relay (production)"
    assert tenant.log.writes(since=mark) == []
