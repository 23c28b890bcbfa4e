"""The emulated Microsoft Graph, driven over HTTPS by requests with tokens msal gets from the emulated tenant.

Each test checks one semantic real tenants hold clients to (upserts, secrets shown once, paging, filters, errors,
role checks, replication lag, throttling) and, for writes, what the request log recorded.
"""

import base64
import time

import pytest
import requests

from emulator.clients import Graph, PinnedSession, msal_app

GRAPH_APP = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP = "00000002-0000-0ff1-ce00-000000000000"
LAG = 2.0
NOT_THERE = "does not exist or one of its queried reference-property objects are not present."


@pytest.fixture
def graph(emulator, tenant):
    return Graph(emulator, emulator.admin.client_id, emulator.admin.client_secret)


def app_with_roles(emulator, name, *roles):
    made = emulator.create_app(name, graph_roles=roles)
    return Graph(emulator, made["client_id"], made["client_secret"])


def error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code
    inner = body["innerError"]
    assert inner["request-id"] == response.headers["request-id"] and inner["date"] and inner["client-request-id"]
    return body["message"]


def upsert(graph, unique_name, body, create=True):
    headers = {"Prefer": "create-if-missing"} if create else {}
    return graph.patch("applications(uniqueName='%s')" % unique_name, json=body, headers=headers)


def graph_writes(tenant, mark):
    return [(e["method"], e["path"]) for e in tenant.log.since(mark) if e["part"] == "graph" and e["write"]]


# -- applications ----------------------------------------------------------------------------------------------
def test_upsert_creates_once_then_updates_and_never_duplicates(graph, tenant):
    mark = tenant.log.mark()
    created = upsert(graph, "relay-prod", {"displayName": "Relay", "signInAudience": "AzureADMyOrg"})
    assert created.status_code == 201
    app = created.json()
    assert app["uniqueName"] == "relay-prod" and app["displayName"] == "Relay" and app["appId"] != app["id"]
    assert app["@odata.context"].endswith("/v1.0/$metadata#applications/$entity")
    again = upsert(graph, "relay-prod", {"displayName": "Relay 2"})
    assert (again.status_code, again.content) == (204, b"")
    assert [a for a in tenant.applications.values() if a.get("uniqueName") == "relay-prod"] == [
        tenant.applications[app["id"]]]
    assert graph.get("applications(uniqueName='relay-prod')").json()["displayName"] == "Relay 2"
    assert graph_writes(tenant, mark) == [("PATCH", "/v1.0/applications(uniqueName='relay-prod')")] * 2


def test_patch_by_unique_name_without_prefer_is_404(graph, tenant):
    message = error(upsert(graph, "missing-app", {"displayName": "x"}, create=False), 404, "Request_ResourceNotFound")
    assert message == "Resource 'missing-app' %s" % NOT_THERE
    assert not [a for a in tenant.applications.values() if a.get("uniqueName") == "missing-app"]
    assert tenant.log.since(0)[-1]["write"] is True  # a refused write still counts as a write request


def test_post_creates_duplicates_by_display_name(graph, tenant):
    first = graph.post("applications", json={"displayName": "namesake"})
    second = graph.post("applications", json={"displayName": "namesake"})
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    found = graph.get("applications", params={"$filter": "displayName eq 'namesake'"}).json()["value"]
    assert sorted(a["id"] for a in found) == sorted([first.json()["id"], second.json()["id"]])


def test_get_by_id_app_id_and_unique_name(graph, tenant):
    app = upsert(graph, "keys", {"displayName": "Keys", "tags": ["smtp"]}).json()
    for path in ("applications/%s" % app["id"], "applications(appId='%s')" % app["appId"],
                 "applications(uniqueName='keys')"):
        got = graph.get(path)
        assert got.status_code == 200 and got.json()["id"] == app["id"] and got.json()["tags"] == ["smtp"]
    assert got.json()["publisherDomain"] == tenant.domain and got.json()["createdDateTime"].endswith("Z")
    error(graph.get("applications(appId='%s')" % app["id"]), 404, "Request_ResourceNotFound")
    assert error(graph.get("applications/not-a-guid"), 400, "Request_BadRequest") == (
        "Invalid object identifier 'not-a-guid'.")
    assert graph.get("applications/%s" % app["id"], params={"$select": "appId,tags"}).json() == {
        "@odata.context": graph.base + "$metadata#applications(appId,tags)/$entity", "appId": app["appId"],
        "tags": ["smtp"]}


def test_bad_writes_name_the_property(graph, tenant):
    app = upsert(graph, "strict", {"displayName": "Strict"}).json()
    message = error(graph.patch("applications/%s" % app["id"], json={"displayNmae": "typo"}), 400,
                    "Request_BadRequest")
    assert message == "Invalid property 'displayNmae'."
    message = error(graph.patch("applications/%s" % app["id"], json={"uniqueName": "other"}), 400,
                    "Request_BadRequest")
    assert "uniqueName" in message
    message = error(graph.patch("applications/%s" % app["id"], json={"passwordCredentials": []}), 400,
                    "Request_BadRequest")
    assert "passwordCredentials" in message
    error(graph.post("applications", json={"description": "no name"}), 400, "Request_BadRequest")
    bad = graph.post("applications", data="{not json", headers={"Content-Type": "application/json"})
    assert "valid JSON" in error(bad, 400, "BadRequest")
    assert "valid JSON" in error(graph.post("applications/%s/removePassword" % app["id"], json=["x"]), 400,
                                 "BadRequest")


def test_add_password_shows_the_secret_once(graph, tenant):
    app = upsert(graph, "secretive", {"displayName": "Secretive"}).json()
    answer = graph.post("applications/%s/addPassword" % app["id"],
                        json={"passwordCredential": {"displayName": "relay", "endDateTime": "2030-01-01T00:00:00Z"}})
    assert answer.status_code == 200
    created = answer.json()
    secret = created["secretText"]
    assert len(secret) >= 40 and created["hint"] == secret[:3] and created["displayName"] == "relay"
    assert created["endDateTime"] == "2030-01-01T00:00:00Z" and created["keyId"]
    read = graph.get("applications/%s" % app["id"]).text
    assert secret not in read
    [listed] = graph.get("applications/%s" % app["id"]).json()["passwordCredentials"]
    assert listed["secretText"] is None and (listed["keyId"], listed["hint"]) == (created["keyId"], secret[:3])
    listing = graph.get("applications", params={"$select": "passwordCredentials"}).text
    assert secret not in listing
    # the secret works at the token endpoint (the stored credential is the one the identity part checks)
    assert graph.post("servicePrincipals", json={"appId": app["appId"]}).status_code == 201
    assert "access_token" in msal_app(graph.emulator, app["appId"], secret).acquire_token_for_client(
        scopes=["https://graph.microsoft.com/.default"])
    assert graph.post("applications/%s/removePassword" % app["id"],
                      json={"keyId": created["keyId"]}).status_code == 204
    assert graph.get("applications/%s" % app["id"]).json()["passwordCredentials"] == []
    error(graph.post("applications/%s/removePassword" % app["id"], json={"keyId": created["keyId"]}), 404,
          "Request_ResourceNotFound")
    error(graph.post("applications/%s/addPassword" % app["id"],
                     json={"passwordCredential": {"endDateTime": "2001-01-01T00:00:00Z"}}), 400, "Request_BadRequest")


def test_key_credentials_are_replaced_by_the_full_list(graph, tenant):
    from emulator.certs import ClientCertificate
    first, second = ClientCertificate("one"), ClientCertificate("two", days=30)
    app = upsert(graph, "certs", {"displayName": "Certs"}).json()
    path = "applications/%s" % app["id"]
    new = {"type": "AsymmetricX509Cert", "usage": "Verify", "key": first.key_b64, "displayName": "CN=one"}
    assert graph.patch(path, json={"keyCredentials": [new]}).status_code == 204
    [held] = graph.get(path).json()["keyCredentials"]
    assert held["key"] is None and held["type"] == "AsymmetricX509Cert" and held["usage"] == "Verify"
    assert base64.b64decode(held["customKeyIdentifier"]).hex().upper() == first.sha1
    assert held["endDateTime"] == first.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    # keep the first by keyId (no key), add the second
    more = [{"keyId": held["keyId"], "type": "AsymmetricX509Cert", "usage": "Verify"},
            {"type": "AsymmetricX509Cert", "usage": "Verify", "key": second.key_b64}]
    assert graph.patch(path, json={"keyCredentials": more}).status_code == 204
    keys = graph.get(path).json()["keyCredentials"]
    assert [k["keyId"] for k in keys][0] == held["keyId"] and len(keys) == 2
    # omitting a key removes it
    assert graph.patch(path, json={"keyCredentials": [{"keyId": keys[1]["keyId"], "type": "AsymmetricX509Cert",
                                                       "usage": "Verify"}]}).status_code == 204
    assert [k["keyId"] for k in graph.get(path).json()["keyCredentials"]] == [keys[1]["keyId"]]
    assert first.key_b64 not in graph.get(path).text
    error(graph.patch(path, json={"displayName": "half-applied?", "keyCredentials": [dict(new, key="bm90IGEgY2VydA==")]}),
          400, "Request_BadRequest")
    assert graph.get(path).json()["displayName"] == "Certs"  # a refused PATCH changes nothing
    error(graph.patch(path, json={"keyCredentials": [{"keyId": "00000000-0000-0000-0000-000000000000"}]}), 400,
          "Request_BadRequest")


def test_federated_identity_credentials_by_id_and_name(graph, tenant):
    app = upsert(graph, "federated", {"displayName": "Federated"}).json()
    path = "applications/%s/federatedIdentityCredentials" % app["id"]
    body = {"name": "github-main", "issuer": "https://token.actions.githubusercontent.com",
            "subject": "repo:contoso/infra:ref:refs/heads/main", "audiences": ["api://AzureADTokenExchange"]}
    created = graph.post(path, json=body)
    assert created.status_code == 201 and created.json()["name"] == "github-main"
    fid = created.json()["id"]
    assert graph.get(path + "/github-main").json()["id"] == fid
    assert graph.get(path + "/" + fid).json()["subject"] == body["subject"]
    assert "federatedIdentityCredentials" not in graph.get("applications/%s" % app["id"]).json()
    message = error(graph.post(path, json=dict(body, subject="other")), 409, "Request_MultipleObjectsWithSameKeyValue")
    assert message == "FederatedIdentityCredential with name github-main already exists."
    error(graph.post(path, json=dict(body, name="again")), 400, "InvalidFederatedIdentityCredentialValue")
    no_audience = dict(body, name="no-audience", subject="s2")
    del no_audience["audiences"]
    assert "audiences" in error(graph.post(path, json=no_audience), 400, "Request_BadRequest")
    assert graph.patch(path + "/github-main", json={"subject": "repo:contoso/infra:environment:prod"}
                       ).status_code == 204
    [listed] = graph.get(path).json()["value"]
    assert listed["subject"] == "repo:contoso/infra:environment:prod"
    assert graph.delete(path + "/" + fid).status_code == 204
    assert graph.get(path).json()["value"] == []
    error(graph.delete(path + "/github-main"), 404, "Request_ResourceNotFound")


# -- service principals and app role assignments ----------------------------------------------------------------
def test_service_principal_create_upsert_and_duplicates(graph, tenant):
    app = upsert(graph, "with-sp", {"displayName": "With SP"}).json()
    created = graph.patch("servicePrincipals(appId='%s')" % app["appId"], json={},
                          headers={"Prefer": "create-if-missing"})
    assert created.status_code == 201
    sp = created.json()
    assert (sp["appId"], sp["displayName"], sp["servicePrincipalType"], sp["accountEnabled"]) == (
        app["appId"], "With SP", "Application", True)
    assert sp["appOwnerOrganizationId"] == tenant.tenant_id and sp["id"] != app["id"]
    again = graph.patch("servicePrincipals(appId='%s')" % app["appId"], json={"tags": ["x"]},
                        headers={"Prefer": "create-if-missing"})
    assert again.status_code == 204
    assert graph.get("servicePrincipals(appId='%s')" % app["appId"]).json()["tags"] == ["x"]
    message = error(graph.post("servicePrincipals", json={"appId": app["appId"]}), 409,
                    "Request_MultipleObjectsWithSameKeyValue")
    assert "servicePrincipalNames" in message
    ghost = "11111111-2222-3333-4444-555555555555"
    message = error(graph.post("servicePrincipals", json={"appId": ghost}), 400, "Request_BadRequest")
    assert "does not reference a valid application object" in message
    error(graph.patch("servicePrincipals(appId='%s')" % ghost, json={}), 404, "Request_ResourceNotFound")
    assert len([s for s in tenant.service_principals.values() if s["appId"] == app["appId"]]) == 1


def resource(graph, app_id):
    return graph.get("servicePrincipals(appId='%s')" % app_id).json()


def role_id(sp, value):
    return next(r["id"] for r in sp["appRoles"] if r["value"] == value)


def test_app_role_assignment_grants_the_role_in_the_next_token(graph, emulator, tenant):
    app = upsert(graph, "sender", {"displayName": "Sender"}).json()
    client = graph.post("servicePrincipals", json={"appId": app["appId"]}).json()
    exchange = resource(graph, EXCHANGE_APP)
    body = {"principalId": client["id"], "resourceId": exchange["id"], "appRoleId": role_id(exchange, "SMTP.SendAsApp")}
    granted = graph.post("servicePrincipals/%s/appRoleAssignedTo" % exchange["id"], json=body)
    assert granted.status_code == 201
    assignment = granted.json()
    assert (assignment["principalId"], assignment["principalType"], assignment["resourceDisplayName"]) == (
        client["id"], "ServicePrincipal", "Office 365 Exchange Online")
    message = error(graph.post("servicePrincipals/%s/appRoleAssignedTo" % exchange["id"], json=body), 400,
                    "Request_BadRequest")
    assert message == "Permission being assigned already exists on the object"
    mine = graph.get("servicePrincipals/%s/appRoleAssignments" % client["id"]).json()["value"]
    assert [a["id"] for a in mine] == [assignment["id"]]
    secret = graph.post("applications/%s/addPassword" % app["id"], json={}).json()["secretText"]
    token = msal_app(emulator, app["appId"], secret).acquire_token_for_client(
        scopes=["https://outlook.office365.com/.default"])["access_token"]
    assert tenant.tokens.verify(token, "https://outlook.office365.com")["roles"] == ["SMTP.SendAsApp"]
    wrong_role = dict(body, appRoleId="00000000-0000-0000-0000-000000000001")
    assert "not found" in error(graph.post("servicePrincipals/%s/appRoleAssignedTo" % exchange["id"],
                                           json=wrong_role), 400, "Request_BadRequest")
    assert graph.delete("servicePrincipals/%s/appRoleAssignedTo/%s" % (exchange["id"], assignment["id"])
                        ).status_code == 204
    assert graph.get("servicePrincipals/%s/appRoleAssignments" % client["id"]).json()["value"] == []
    error(graph.delete("servicePrincipals/%s/appRoleAssignments/%s" % (client["id"], assignment["id"])), 404,
          "Request_ResourceNotFound")


def test_assignment_from_the_client_side_and_unknown_principal(graph, tenant):
    app = upsert(graph, "client-side", {"displayName": "Client side"}).json()
    client = graph.post("servicePrincipals", json={"appId": app["appId"]}).json()
    msgraph = resource(graph, GRAPH_APP)
    body = {"principalId": client["id"], "resourceId": msgraph["id"], "appRoleId": role_id(msgraph, "Mail.Send")}
    assert graph.post("servicePrincipals/%s/appRoleAssignments" % client["id"], json=body).status_code == 201
    assert [a["principalId"] for a in graph.get("servicePrincipals/%s/appRoleAssignedTo" % msgraph["id"]).json()[
        "value"] if a["principalId"] == client["id"]] == [client["id"]]
    ghost = dict(body, principalId="11111111-2222-3333-4444-555555555555")
    error(graph.post("servicePrincipals/%s/appRoleAssignedTo" % msgraph["id"], json=ghost), 404,
          "Request_ResourceNotFound")


def test_deleting_an_app_deletes_its_service_principal_and_assignments(graph, tenant):
    app = upsert(graph, "doomed", {"displayName": "Doomed"}).json()
    client = graph.post("servicePrincipals", json={"appId": app["appId"]}).json()
    exchange = resource(graph, EXCHANGE_APP)
    graph.post("servicePrincipals/%s/appRoleAssignedTo" % exchange["id"], json={
        "principalId": client["id"], "resourceId": exchange["id"], "appRoleId": role_id(exchange, "SMTP.SendAsApp")})
    assert graph.delete("applications/%s" % app["id"]).status_code == 204
    error(graph.get("applications/%s" % app["id"]), 404, "Request_ResourceNotFound")
    error(graph.get("servicePrincipals/%s" % client["id"]), 404, "Request_ResourceNotFound")
    assert not [a for a in tenant.app_role_assignments.values() if a["principalId"] == client["id"]]
    error(graph.delete("applications/%s" % app["id"]), 404, "Request_ResourceNotFound")


# -- owners and users -------------------------------------------------------------------------------------------
def test_owners_add_list_remove(graph, emulator, tenant):
    reader = app_with_roles(emulator, "user-reader", "User.Read.All")
    user = reader.get("users/adele@%s" % tenant.domain).json()
    assert user["userPrincipalName"] == "adele@%s" % tenant.domain
    error(graph.get("users/adele@%s" % tenant.domain), 403, "Authorization_RequestDenied")  # Application.* only
    app = upsert(graph, "owned", {"displayName": "Owned"}).json()
    ref = {"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/%s" % user["id"]}
    assert graph.post("applications/%s/owners/$ref" % app["id"], json=ref).status_code == 204
    message = error(graph.post("applications/%s/owners/$ref" % app["id"], json=ref), 400, "Request_BadRequest")
    assert "already exist" in message
    [owner] = graph.get("applications/%s/owners" % app["id"]).json()["value"]
    assert owner["@odata.type"] == "#microsoft.graph.user" and owner["id"] == user["id"]
    error(graph.post("applications/%s/owners/$ref" % app["id"],
                     json={"@odata.id": "https://graph.microsoft.com/v1.0/users/11111111-2222-3333-4444-555555555555"}),
          404, "Request_ResourceNotFound")
    assert graph.delete("applications/%s/owners/%s/$ref" % (app["id"], user["id"])).status_code == 204
    assert graph.get("applications/%s/owners" % app["id"]).json()["value"] == []
    error(graph.delete("applications/%s/owners/%s/$ref" % (app["id"], user["id"])), 404, "Request_ResourceNotFound")


# -- OData ------------------------------------------------------------------------------------------------------
def test_filters_eq_startswith_and(graph, tenant):
    for name in ("alpha-one", "alpha-two", "beta-one"):
        upsert(graph, name, {"displayName": name.upper()})

    def names(flt, **headers):
        answer = graph.get("applications", params={"$filter": flt}, headers=headers)
        assert answer.status_code == 200, answer.text
        return sorted(a["uniqueName"] for a in answer.json()["value"])
    assert names("startswith(displayName,'alpha')") == ["alpha-one", "alpha-two"]
    assert names("startswith(displayName,'ALPHA') and uniqueName eq 'alpha-two'") == ["alpha-two"]
    assert names("uniqueName eq 'beta-one' or uniqueName eq 'alpha-one'") == ["alpha-one", "beta-one"]
    one = tenant.find_application(unique_name="beta-one")
    assert names("appId eq '%s'" % one["appId"]) == names("id eq '%s'" % one["id"]) == ["beta-one"]
    assert names("displayName eq 'it''s'") == []
    message = error(graph.get("applications", params={"$filter": "notes eq 'x'"}), 400, "Request_UnsupportedQuery")
    assert "'notes'" in message
    error(graph.get("applications", params={"$filter": "uniqueName ne 'beta-one'"}), 400, "Request_UnsupportedQuery")
    advanced = graph.get("applications", params={"$filter": "startswith(uniqueName,'alpha') and uniqueName ne "
                                                            "'alpha-one'", "$count": "true"},
                         headers={"ConsistencyLevel": "eventual"}).json()
    assert [a["uniqueName"] for a in advanced["value"]] == ["alpha-two"] and advanced["@odata.count"] == 1
    count = graph.get("applications/$count", headers={"ConsistencyLevel": "eventual"})
    assert count.text == str(len(tenant.applications))
    error(graph.get("applications", params={"$filter": "displayName eq"}), 400, "BadRequest")
    sps = graph.get("servicePrincipals", params={"$filter": "servicePrincipalType eq 'ManagedIdentity'"}).json()
    assert sorted(s["displayName"] for s in sps["value"]) == ["emulated-host", "relay-identity"]


def test_paging_follows_next_links_with_filter_and_select(graph, tenant):
    tenant.graph_page_size = 2
    for i in range(5):
        upsert(graph, "paged-%d" % i, {"displayName": "paged %d" % i})
    params = {"$filter": "startswith(uniqueName,'paged-')", "$select": "uniqueName,id"}
    seen, url, pages = [], "applications", 0
    while url:
        body = graph.get(url, params=params).json()
        assert body["@odata.context"].endswith("$metadata#applications(uniqueName,id)")
        assert all(set(a) == {"uniqueName", "id"} for a in body["value"])
        seen += [a["uniqueName"] for a in body["value"]]
        url, params, pages = body.get("@odata.nextLink"), None, pages + 1
    assert sorted(seen) == ["paged-%d" % i for i in range(5)] and pages == 3
    top = graph.get("applications", params={"$top": "1"}).json()
    assert len(top["value"]) == 1 and "$top=1" in top["@odata.nextLink"]
    assert error(graph.get("applications", params={"$select": "secretText"}), 400, "BadRequest") == (
        "Parsing OData Select and Expand failed: Could not find a property named 'secretText' on type "
        "'microsoft.graph.application'.")
    error(graph.get("applications", params={"$skiptoken": "garbage"}), 400, "Directory_ExpiredPageToken")


# -- tokens and roles -------------------------------------------------------------------------------------------
def test_invalid_tokens_are_401(graph, emulator, tenant):
    session = PinnedSession(emulator.ca_path)
    url = emulator.url + "/v1.0/applications"
    assert error(session.get(url), 401, "InvalidAuthenticationToken") == "Access token is empty."
    expired = tenant.tokens.issue(emulator.admin.client_id, now=time.time() - 7200)
    assert "expired" in error(session.get(url, headers={"Authorization": "Bearer " + expired}), 401,
                              "InvalidAuthenticationToken")
    exchange = tenant.tokens.issue(emulator.admin.client_id, audience="https://outlook.office365.com")
    assert "audience" in error(session.get(url, headers={"Authorization": "Bearer " + exchange}), 401,
                               "InvalidAuthenticationToken")
    forged = graph.token[:-4] + ("AAAA" if not graph.token.endswith("AAAA") else "BBBB")
    error(session.get(url, headers={"Authorization": "Bearer " + forged}), 401, "InvalidAuthenticationToken")


def test_each_call_needs_its_role(emulator, tenant):
    nothing = app_with_roles(emulator, "no-roles")
    assert error(nothing.get("applications"), 403, "Authorization_RequestDenied") == (
        "Insufficient privileges to complete the operation.")
    reader = app_with_roles(emulator, "reader", "Application.Read.All")
    assert reader.get("applications").status_code == 200
    mark = tenant.log.mark()
    error(upsert(reader, "sneaky", {"displayName": "sneaky"}), 403, "Authorization_RequestDenied")
    assert not [a for a in tenant.applications.values() if a.get("uniqueName") == "sneaky"]
    writer = app_with_roles(emulator, "writer", "Application.ReadWrite.All")
    app = upsert(writer, "granted", {"displayName": "granted"}).json()
    client = writer.post("servicePrincipals", json={"appId": app["appId"]}).json()
    exchange = resource(writer, EXCHANGE_APP)
    error(writer.post("servicePrincipals/%s/appRoleAssignedTo" % exchange["id"], json={
        "principalId": client["id"], "resourceId": exchange["id"], "appRoleId": role_id(exchange, "SMTP.SendAsApp")}),
        403, "Authorization_RequestDenied")
    statuses = [(e["method"], e["status"], e["write"]) for e in tenant.log.since(mark) if e["part"] == "graph"]
    assert statuses[0] == ("PATCH", 403, True)


# -- eventual consistency and faults ----------------------------------------------------------------------------
def test_replication_lag_hides_new_objects_and_fails_references(graph, tenant):
    """The invisible phase must be checked within LAG seconds: long enough for a loaded 2-core machine."""
    tenant.graph_replication_lag = LAG
    app = upsert(graph, "lagging", {"displayName": "Lagging"}).json()
    error(graph.get("applications/%s" % app["id"]), 404, "Request_ResourceNotFound")
    assert graph.get("applications", params={"$filter": "uniqueName eq 'lagging'"}).json()["value"] == []
    message = error(graph.post("servicePrincipals", json={"appId": app["appId"]}), 400, "Request_BadRequest")
    assert "does not reference a valid application object" in message
    assert upsert(graph, "lagging", {"notes": "written to the primary"}).status_code == 204  # never a duplicate
    time.sleep(LAG + 0.1)
    assert graph.get("applications/%s" % app["id"]).json()["notes"] == "written to the primary"
    client = graph.post("servicePrincipals", json={"appId": app["appId"]}).json()
    exchange = resource(graph, EXCHANGE_APP)
    body = {"principalId": client["id"], "resourceId": exchange["id"], "appRoleId": role_id(exchange, "SMTP.SendAsApp")}
    assert NOT_THERE in error(graph.post("servicePrincipals/%s/appRoleAssignedTo" % exchange["id"], json=body), 404,
                              "Request_ResourceNotFound")
    created = graph.post("applications/%s/addPassword" % app["id"], json={}).json()
    assert graph.get("applications/%s" % app["id"]).json()["passwordCredentials"] == []
    time.sleep(LAG + 0.1)
    assert graph.post("servicePrincipals/%s/appRoleAssignedTo" % exchange["id"], json=body).status_code == 201
    [cred] = graph.get("applications/%s" % app["id"]).json()["passwordCredentials"]
    assert cred["keyId"] == created["keyId"]


def test_a_lost_upsert_answer_repeated_updates_instead_of_duplicating(graph, tenant):
    tenant.faults.add("graph", match="PATCH /v1.0/applications(uniqueName='lost')", kind="drop_after_commit")
    with pytest.raises(requests.ConnectionError):
        upsert(graph, "lost", {"displayName": "Lost"})
    assert upsert(graph, "lost", {"displayName": "Lost"}).status_code == 204
    assert len([a for a in tenant.applications.values() if a.get("uniqueName") == "lost"]) == 1


def test_throttling_fault_answers_429_with_retry_after(graph, tenant):
    tenant.faults.add("graph", match="GET /v1.0/servicePrincipals", kind="status", status=429, retry_after=7, times=1)
    throttled = graph.get("servicePrincipals")
    assert throttled.headers["Retry-After"] == "7"
    error(throttled, 429, "TooManyRequests")
    assert graph.get("servicePrincipals").status_code == 200
    assert [e["status"] for e in tenant.log.since(0) if e["path"] == "/v1.0/servicePrincipals"][-2:] == [429, 200]


def test_unique_name_is_backfilled_once_then_immutable(graph, tenant):
    legacy = tenant.add_application("Made by POST")
    assert graph.patch("applications/%s" % legacy["id"], json={"uniqueName": "first"}).status_code == 204
    assert graph.patch("applications/%s" % legacy["id"], json={"uniqueName": "first"}).status_code == 204
    message = error(graph.patch("applications/%s" % legacy["id"], json={"uniqueName": "second"}), 400,
                    "Request_BadRequest")
    assert "uniqueName" in message and tenant.applications[legacy["id"]]["uniqueName"] == "first"
