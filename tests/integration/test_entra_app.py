"""entra_app through ansible-playbook against the emulated tenant's Graph API.

Each declaration runs create (check) -> create -> again (check) -> again; the emulator's request log proves the
re-runs sent no write.
"""

import pytest

from helpers.playbook import four_runs, play

EXCHANGE = "00000002-0000-0ff1-ce00-000000000000"
GRAPH = "00000003-0000-0000-c000-000000000000"


def app_task(**args):
    return {"name": "app", "o365.smtp_oauth.entra_app": args}


def apps_named(tenant, unique_name):
    return [a for a in tenant.applications.values() if a.get("uniqueName") == unique_name]


def sp_of(tenant, app_id):
    return [s for s in tenant.service_principals.values() if s.get("appId") == app_id]


def resource_sp(tenant, app_id):
    [sp] = sp_of(tenant, app_id)
    return sp


def role_id(tenant, app_id, value):
    return next(r["id"] for r in resource_sp(tenant, app_id)["appRoles"] if r["value"] == value)


def assignments_of(tenant, sp_id):
    return sorted((a["resourceId"], a["appRoleId"]) for a in tenant.app_role_assignments.values()
                  if a.get("principalId") == sp_id)


def test_classic_app_with_consent_create_check_create_again(emulator, tenant):
    task = app_task(unique_name="relay-classic", display_name="SMTP relay", notes="platform team", tags=["smtp", "b", "a"],
                    authorization_model="classic", admin_consent=True,
                    api_permissions=[{"api": "Microsoft Graph", "app_roles": ["User.Read.All"]}])
    predicted, created, check_again, again = [run[0] for run in four_runs(emulator, tenant, task, "graph")]

    assert predicted["changed"] and predicted["app_id"] is None and predicted["service_principal_id"] is None
    assert "create application" in predicted["changes"]
    assert predicted["diff"]["before"] == {}
    assert predicted["diff"]["after"]["display_name"] == "SMTP relay"
    assert predicted["diff"]["after"]["tags"] == ["a", "b", "smtp"]

    assert created["changed"]
    [app] = apps_named(tenant, "relay-classic")
    assert app["appId"] == created["app_id"] and app["displayName"] == "SMTP relay" and app["notes"] == "platform team"
    [sp] = sp_of(tenant, app["appId"])
    assert created["service_principal_id"] == sp["id"] != app["id"]
    expected = sorted([(resource_sp(tenant, EXCHANGE)["id"], role_id(tenant, EXCHANGE, "SMTP.SendAsApp")),
                       (resource_sp(tenant, GRAPH)["id"], role_id(tenant, GRAPH, "User.Read.All"))])
    assert assignments_of(tenant, sp["id"]) == expected
    assert sorted(created["consented"]) == ["Microsoft Graph: User.Read.All", "Office 365 Exchange Online: SMTP.SendAsApp"]
    # the diff shows declared fields only: no server-side noise
    assert set(created["diff"]["after"]) == {"display_name", "notes", "tags", "sign_in_audience", "api_permissions",
                                             "admin_consent"}
    assert predicted["diff"]["after"] == created["diff"]["after"]

    assert not check_again["changed"] and not again["changed"]
    assert again["app_id"] == created["app_id"] and again["service_principal_id"] == sp["id"]
    assert len(apps_named(tenant, "relay-classic")) == 1


def test_rbac_default_declares_no_smtp_permission_in_entra(emulator, tenant):
    [result], output = play(emulator, app_task(unique_name="relay-rbac"))
    [app] = apps_named(tenant, "relay-rbac")
    assert result["changed"] and result["authorization_model"] == "rbac"
    assert result["smtp_permission_in_entra"] is False and app.get("requiredResourceAccess", []) == []
    assert app["displayName"] == "relay-rbac" and app["signInAudience"] == "AzureADMyOrg"
    assert sp_of(tenant, app["appId"]), "the service principal is created with the app"


def test_switch_to_rbac_with_purge_revokes_smtp_consent(emulator, tenant):
    play(emulator, app_task(unique_name="relay-switch", authorization_model="classic", admin_consent=True))
    [app] = apps_named(tenant, "relay-switch")
    [sp] = sp_of(tenant, app["appId"])
    assert len(assignments_of(tenant, sp["id"])) == 1
    [kept], output = play(emulator, app_task(unique_name="relay-switch", admin_consent=True))
    assert not kept["changed"], "without purge_permissions nothing undeclared is removed"
    [purged], output = play(emulator, app_task(unique_name="relay-switch", admin_consent=True, purge_permissions=True))
    assert purged["changed"] and purged["consented"] == []
    assert assignments_of(tenant, sp["id"]) == []
    assert apps_named(tenant, "relay-switch")[0]["requiredResourceAccess"] == []
    assert purged["diff"]["before"]["admin_consent"] == ["Office 365 Exchange Online: SMTP.SendAsApp"]


def test_update_changes_only_what_changed(emulator, tenant):
    play(emulator, app_task(unique_name="relay-upd", display_name="Old", description="d"))
    mark = tenant.log.mark()
    [result], output = play(emulator, app_task(unique_name="relay-upd", display_name="New"))
    assert result["changed"] and result["diff"] == {"before": {"display_name": "Old", "api_permissions": []},
                                                    "after": {"display_name": "New", "api_permissions": []}}
    writes = tenant.log.writes("graph", since=mark)
    assert [w["method"] for w in writes] == ["PATCH"]
    assert apps_named(tenant, "relay-upd")[0]["description"] == "d"


@pytest.mark.parametrize("permissions, words", [
    ([{"api": "Microsoft Graph", "app_roles": ["Mial.Send"]}], "Mail.Send"),  # the valid name, not the input
    ([{"api": "Microsoft Graph", "scopes": ["User.Reed"]}], "User.Read"),
    ([{"api": "No Such API", "app_roles": ["X"]}], "No Such API"),
])
def test_unknown_names_fail_naming_the_option_and_listing_valid_ones(emulator, tenant, permissions, words):
    mark = tenant.log.mark()
    [result], output = play(emulator, app_task(unique_name="relay-bad", api_permissions=permissions))
    assert result["failed"] and "api_permissions[0]" in result["msg"] and words in result["msg"]
    assert "Traceback" not in result["msg"] and tenant.log.writes("graph", since=mark) == []


def test_create_needs_unique_name(emulator, tenant):
    [result], output = play(emulator, app_task(display_name="nameless"))
    assert result["failed"] and "unique_name" in result["msg"]
    assert tenant.applications and not [a for a in tenant.applications.values() if a.get("displayName") == "nameless"]


def test_ambiguous_display_name_fails_listing_the_apps(emulator, tenant):
    play(emulator, [app_task(unique_name="twin-a", display_name="Twin"), app_task(unique_name="twin-b",
                                                                                  display_name="Twin")])
    [result], output = play(emulator, app_task(display_name="Twin", notes="which one?"))
    assert result["failed"] and "2 applications are named 'Twin'" in result["msg"]
    for name in ("twin-a", "twin-b"):
        assert apps_named(tenant, name)[0]["appId"] in result["msg"]


def test_adopt_by_app_id_gives_the_app_its_unique_name(emulator, tenant):
    play(emulator, app_task(unique_name="adopt-me"))
    [app] = apps_named(tenant, "adopt-me")
    [result], output = play(emulator, app_task(app_id=app["appId"], notes="adopted"))
    assert result["changed"] and result["unique_name"] == "adopt-me"
    mark = tenant.log.mark()
    [again], output = play(emulator, app_task(app_id=app["appId"], unique_name="other-name"))
    assert again["failed"] and "unique_name" in again["msg"] and "adopt-me" in again["msg"]
    assert tenant.log.writes("graph", since=mark) == []  # refused before any write: uniqueName never changes once set
    # unique_name of one app and app_id of another: refused before any write, naming app_id.
    play(emulator, app_task(unique_name="adopt-other"))
    mark = tenant.log.mark()
    [mixed], output = play(emulator, app_task(app_id=app["appId"], unique_name="adopt-other", notes="which one?"))
    assert mixed["failed"] and "app_id" in mixed["msg"] and app["appId"] in mixed["msg"], mixed["msg"]
    assert tenant.log.writes("graph", since=mark) == []


def test_an_app_created_without_unique_name_is_backfilled_once(emulator, tenant):
    """Apps made in the portal or by POST have no uniqueName: adopting one by app_id sets it once, and from then on
    the emulated Graph refuses to change it, as Graph does (the collection refuses first, naming the option)."""
    legacy = tenant.add_application("Portal app")
    [adopted], output = play(emulator, app_task(app_id=legacy["appId"], unique_name="portal-app"))
    assert adopted["changed"] and tenant.applications[legacy["id"]]["uniqueName"] == "portal-app", adopted
    mark = tenant.log.mark()
    [again], output = play(emulator, app_task(app_id=legacy["appId"], unique_name="portal-app"))
    assert not again["changed"] and tenant.log.writes("graph", since=mark) == []
    [renamed], output = play(emulator, app_task(app_id=legacy["appId"], unique_name="portal-app-2"))
    assert renamed["failed"] and "unique_name" in renamed["msg"] and tenant.log.writes("graph", since=mark) == []
    assert tenant.applications[legacy["id"]]["uniqueName"] == "portal-app"


def test_absent_removes_app_and_service_principal(emulator, tenant):
    play(emulator, app_task(unique_name="relay-gone"))
    [app] = apps_named(tenant, "relay-gone")
    mark = tenant.log.mark()
    [predicted], output = play(emulator, app_task(unique_name="relay-gone", state="absent"), check=True)
    assert predicted["changed"] and tenant.log.writes("graph", since=mark) == []
    [removed], output = play(emulator, app_task(unique_name="relay-gone", state="absent"))
    assert removed["changed"] and not apps_named(tenant, "relay-gone") and not sp_of(tenant, app["appId"])
    mark = tenant.log.mark()
    [again], output = play(emulator, app_task(unique_name="relay-gone", state="absent"))
    assert not again["changed"] and tenant.log.writes("graph", since=mark) == []


def test_lost_create_answer_then_repeat_leaves_exactly_one_app(emulator, tenant):
    fault = tenant.faults.add("graph", match="PATCH /v1.0/applications(uniqueName=", kind="drop_after_commit",
                              times=1)
    first, output = play(emulator, app_task(unique_name="relay-lost"))
    assert fault.hits == 1, "the create's answer was lost"
    [second], output = play(emulator, app_task(unique_name="relay-lost"))
    assert not second.get("failed"), second.get("msg")
    assert len(apps_named(tenant, "relay-lost")) == 1
    assert len(sp_of(tenant, apps_named(tenant, "relay-lost")[0]["appId"])) == 1


def test_throttling_unavailability_and_replication_lag_are_survived(emulator, tenant):
    tenant.faults.add("graph", match="GET /v1.0/servicePrincipals", kind="status", status=429, times=1,
                      retry_after=1)
    tenant.faults.add("graph", match="PATCH /v1.0/servicePrincipals(appId=", kind="status", status=503, times=1)
    tenant.graph_replication_lag = 2.0
    [result], output = play(emulator, app_task(unique_name="relay-lag", authorization_model="classic", admin_consent=True))
    assert result["changed"] and not result.get("failed"), result.get("msg")
    [app] = apps_named(tenant, "relay-lag")
    [sp] = sp_of(tenant, app["appId"])
    assert len(assignments_of(tenant, sp["id"])) == 1
    statuses = [e["status"] for e in tenant.log.since(0) if e.get("part") == "graph"]
    assert 429 in statuses and 503 in statuses
    # Run again at once, inside the replication lag: the first run waited until its writes were readable.
    mark = tenant.log.mark()
    [again], output = play(emulator, app_task(unique_name="relay-lag", authorization_model="classic", admin_consent=True))
    assert not again["changed"] and not again.get("failed"), (again.get("msg"), again.get("diff"))
    assert [e for e in tenant.log.since(mark) if e.get("part") == "graph" and e.get("write")] == []


def test_owners_by_object_id_exact_list(emulator, tenant):
    adele, megan = sorted(tenant.users.values(), key=lambda u: u["userPrincipalName"])
    task = app_task(unique_name="relay-owned", owners=[adele["id"], megan["id"]])
    results = [run[0] for run in four_runs(emulator, tenant, task, "graph")]
    assert [r["changed"] for r in results] == [True, True, False, False]
    assert sorted(results[1]["owners"]) == sorted([adele["userPrincipalName"], megan["userPrincipalName"]])
    [app] = apps_named(tenant, "relay-owned")
    [dropped], output = play(emulator, app_task(unique_name="relay-owned", owners=[adele["id"]]))
    assert dropped["changed"] and dropped["owners"] == [adele["userPrincipalName"]]
    assert dropped["diff"]["before"]["owners"] == sorted([adele["userPrincipalName"], megan["userPrincipalName"]])


def test_owner_by_name_without_user_read_permission_says_what_to_do(emulator, tenant):
    [result], output = play(emulator, app_task(unique_name="relay-upn", owners=["adele@contoso.onmicrosoft.com"]))
    assert result["failed"] and "owners" in result["msg"] and "User.Read.All" in result["msg"]
    assert not apps_named(tenant, "relay-upn")


def test_rbac_with_explicit_smtp_permission_warns(emulator, tenant):
    task = app_task(unique_name="relay-rbac-warn",
                    api_permissions=[{"api": "Office 365 Exchange Online", "app_roles": ["SMTP.SendAsApp"]}])
    [result], output = play(emulator, task)
    assert result["changed"] and any("authorization_model=rbac" in w for w in result.get("warnings", []))
    assert [p["permission"] for p in result["permissions"]] == ["SMTP.SendAsApp"]
