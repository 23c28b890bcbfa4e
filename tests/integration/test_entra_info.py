"""entra_app_info through ansible-playbook: the auditor's report, stable between runs, never a secret value."""

import datetime

from helpers.playbook import results

GITHUB = "https://token.actions.githubusercontent.com"


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
    created = results(emulator, setup)
    secrets = [r["secret"] for r in created[1:3]]
    [app] = [a for a in tenant.applications.values() if a.get("uniqueName") == "audited"]

    mark = tenant.log.mark()
    [first] = results(emulator, [{"o365.smtp_oauth.entra_app_info": {"unique_name": "audited"}}])
    [second] = results(emulator, [{"o365.smtp_oauth.entra_app_info": {"app_id": app["appId"]}}], check=True)
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
    [result] = results(emulator, [{"o365.smtp_oauth.entra_app_info": {"unique_name": "nobody"}}])
    assert not result.get("failed") and result["exists"] is False and result["app"] == {"exists": False}


def test_expired_credential_is_a_finding(emulator, tenant):
    results(emulator, [{"o365.smtp_oauth.entra_app": {"unique_name": "expired-app"}},
                       {"o365.smtp_oauth.entra_app_credential": {"unique_name": "expired-app", "type": "secret"}}])
    [app] = [a for a in tenant.applications.values() if a.get("uniqueName") == "expired-app"]
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
    app["passwordCredentials"][0]["endDateTime"] = past.strftime("%Y-%m-%dT%H:%M:%SZ")
    [result] = results(emulator, [{"o365.smtp_oauth.entra_app_info": {"unique_name": "expired-app", "warn_days": 5}}])
    assert result["app"]["credentials"][0]["days_left"] < 0
    assert any("expired on" in f for f in result["app"]["findings"])


def test_several_apps_by_id_and_every_smtp_sender(emulator, tenant):
    """app_ids and smtp_senders: one report per app, the credentials expiring within warn_days across them."""
    classic = emulator.create_app("classic-sender", exchange_roles=["SMTP.SendAsApp"])
    declared = emulator.create_app("declared-app")
    emulator.create_app("bystander")
    soon = tenant.add_password(classic["app"], "soon", days=3)
    missing = "11111111-2222-3333-4444-555555555555"
    mark = tenant.log.mark()
    [result] = results(emulator, [{"o365.smtp_oauth.entra_app_info": {
        "smtp_senders": True, "app_ids": [declared["client_id"].upper(), missing], "warn_days": 7}}])
    assert not tenant.log.writes(since=mark) and not result["changed"]
    assert [(a["display_name"], a["selected_by"]) for a in result["apps"]] == [
        ("classic-sender", ["smtp_senders"]), ("declared-app", ["app_ids"])]
    assert result["missing_app_ids"] == [missing] and result["warn_days"] == 7
    classic_report = result["apps"][0]
    [expiring] = result["expiring"]
    [cred] = [c for c in classic_report["credentials"] if c["key_id"] == expiring["key_id"]]
    assert cred["display_name"] == "soon" and cred["days_left"] == 3
    assert expiring == {"app_id": classic["client_id"], "app_name": "classic-sender", "unique_name": "classic-sender",
                        "type": "secret", "key_id": cred["key_id"], "display_name": "soon", "end": cred["end"],
                        "end_timestamp": int(datetime.datetime.strptime(cred["end"], "%Y-%m-%dT%H:%M:%SZ").replace(
                            tzinfo=datetime.timezone.utc).timestamp()), "days_left": 3}
    assert any(f.startswith("classic-sender (%s): secret" % classic["client_id"]) for f in result["findings"])
    assert any(missing in w for w in result["warnings"])
    assert soon not in str(result) and classic["client_secret"] not in str(result)


def test_several_apps_options_are_checked(emulator, tenant):
    [bad_id, mixed] = results(emulator, [
        {"o365.smtp_oauth.entra_app_info": {"app_ids": ["relay-app"]}, "ignore_errors": True},
        {"o365.smtp_oauth.entra_app_info": {"unique_name": "x", "smtp_senders": True}, "ignore_errors": True}])
    assert bad_id["failed"] and "app_ids" in bad_id["msg"] and "relay-app" in bad_id["msg"]
    assert "Traceback" not in bad_id["msg"]
    assert mixed["failed"] and "unique_name" in mixed["msg"] and "app_ids" in mixed["msg"]
