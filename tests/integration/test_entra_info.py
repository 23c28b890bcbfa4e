"""entra_app_info through ansible-playbook: the auditor's report, stable between runs, never a secret value."""

import datetime

from helpers.playbook import run_playbook

GITHUB = "https://token.actions.githubusercontent.com"


def play(emulator, tasks, check=False):
    return run_playbook(emulator, tasks, check=check).results


def test_report_names_permissions_credentials_and_expiry_warnings(emulator, tenant):
    setup = [
        {"o365.smtp_oauth.entra_app": {"unique_name": "audited", "display_name": "Audited", "tags": ["x"],
                                       "authorization_model": "classic", "admin_consent": True,
                                       "api_permissions": [{"api": "Microsoft Graph", "app_roles": ["User.Read.All"],
                                                            "scopes": ["User.Read"]}]}},
        {"o365.smtp_oauth.entra_app_credential": {"unique_name": "audited", "type": "secret", "display_name": "soon",
                                                  "lifetime_days": 10, "rotate_before_days": 5}},
        {"o365.smtp_oauth.entra_app_credential": {"unique_name": "audited", "type": "secret", "display_name": "later",
                                                  "lifetime_days": 300}},
        {"o365.smtp_oauth.entra_app_credential": {"unique_name": "audited", "type": "federated", "name": "gh",
                                                  "issuer": GITHUB, "subject": "repo:o/r:ref:refs/heads/main"}},
    ]
    results = play(emulator, setup)
    secrets = [r["secret"] for r in results[1:3]]
    [app] = [a for a in tenant.applications.values() if a.get("uniqueName") == "audited"]

    mark = tenant.log.mark()
    [first] = play(emulator, [{"o365.smtp_oauth.entra_app_info": {"unique_name": "audited"}}])
    [second] = play(emulator, [{"o365.smtp_oauth.entra_app_info": {"app_id": app["appId"]}}], check=True)
    assert not [e for e in tenant.log.since(mark) if e.get("part") == "graph" and e.get("write")]
    assert not first["changed"] and first["exists"]
    report = first["app"]
    assert report == second["app"], "two runs give the same report (stable order)"
    assert report["display_name"] == "Audited" and report["service_principal_id"]
    assert [(p["api"], p["permission"], p["type"]) for p in report["declared_permissions"]] == [
        ("Microsoft Graph", "User.Read.All", "application"), ("Microsoft Graph", "User.Read", "delegated"),
        ("Office 365 Exchange Online", "SMTP.SendAsApp", "application")]
    assert [(p["api"], p["permission"]) for p in report["consented_permissions"]] == [
        ("Microsoft Graph", "User.Read.All"), ("Office 365 Exchange Online", "SMTP.SendAsApp")]
    assert report["declared_not_consented"] == [] and report["consented_not_declared"] == []
    assert report["smtp_permission_in_entra"] is True
    creds = report["credentials"]
    assert [c["display_name"] for c in creds] == ["soon", "later"]
    assert creds[0]["days_left"] == 10 and creds[1]["days_left"] == 300
    assert report["expiring_credentials"] == [creds[0]["key_id"]]
    assert any("expires in" in w and "soon" in w for w in first["warnings"])
    assert report["federated_credentials"][0]["subject"] == "repo:o/r:ref:refs/heads/main"
    for secret in secrets:
        assert secret not in str(first)


def test_missing_app_is_reported_not_failed(emulator, tenant):
    [result] = play(emulator, [{"o365.smtp_oauth.entra_app_info": {"unique_name": "nobody"}}])
    assert not result.get("failed") and result["exists"] is False and result["app"] == {"exists": False}


def test_expired_credential_is_a_finding(emulator, tenant):
    play(emulator, [{"o365.smtp_oauth.entra_app": {"unique_name": "expired-app"}},
                    {"o365.smtp_oauth.entra_app_credential": {"unique_name": "expired-app", "type": "secret"}}])
    [app] = [a for a in tenant.applications.values() if a.get("uniqueName") == "expired-app"]
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
    app["passwordCredentials"][0]["endDateTime"] = past.strftime("%Y-%m-%dT%H:%M:%SZ")
    [result] = play(emulator, [{"o365.smtp_oauth.entra_app_info": {"unique_name": "expired-app", "warn_days": 5}}])
    assert result["app"]["credentials"][0]["days_left"] < 0
    assert any("expired on" in f for f in result["app"]["findings"])
