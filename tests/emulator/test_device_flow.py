"""The emulated device code flow over raw HTTP (the exact answers), and the delegated token's use in Graph:
scopes and the signed-in user's directory roles decide, as Graph's reference says."""

import time

import jwt
from emulator.device_flow import (APPLICATION_ADMINISTRATOR, DEVICE_GRANT, EXCHANGE_ADMINISTRATOR,
                                  GLOBAL_ADMINISTRATOR, GRAPH_CLI_CLIENT_ID)

SCOPES = ("https://graph.microsoft.com/Application.ReadWrite.All "
          "https://graph.microsoft.com/RoleManagement.ReadWrite.Directory offline_access openid profile")


def start(emulator, http, client_id=GRAPH_CLI_CLIENT_ID, scope=SCOPES):
    return http.post("%s/%s/oauth2/v2.0/devicecode" % (emulator.url, emulator.tenant.tenant_id),
                     data={"client_id": client_id, "scope": scope})


def poll(emulator, http, code, client_id=GRAPH_CLI_CLIENT_ID):
    return http.post("%s/%s/oauth2/v2.0/token" % (emulator.url, emulator.tenant.tenant_id),
                     data={"grant_type": DEVICE_GRANT, "client_id": client_id, "device_code": code})


def error_of(answer):
    body = answer.json()
    assert answer.status_code == 400, body
    return body["error"], body["error_codes"][0]


def test_devicecode_answer_has_microsofts_fields(emulator, tenant, http):
    body = start(emulator, http).json()
    assert set(body) == {"user_code", "device_code", "verification_uri", "expires_in", "interval", "message"}
    assert body["interval"] == 5 and body["expires_in"] == 900
    assert body["user_code"] in body["message"] and body["verification_uri"] in body["message"]


def test_pending_slow_down_then_a_token_with_scopes_and_roles(emulator, tenant, http):
    tenant.device_flow.interval = 1
    code = start(emulator, http).json()["device_code"]
    assert error_of(poll(emulator, http, code)) == ("authorization_pending", 70016)
    assert error_of(poll(emulator, http, code)) == ("slow_down", 70015)  # polled sooner than the interval
    time.sleep(1)
    answer = poll(emulator, http, code)
    assert answer.status_code == 200, answer.text
    claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
    assert claims["scp"] == "Application.ReadWrite.All RoleManagement.ReadWrite.Directory"
    assert claims["wids"] == [GLOBAL_ADMINISTRATOR] and claims["idtyp"] == "user"
    assert claims["appid"] == GRAPH_CLI_CLIENT_ID and "roles" not in claims
    assert "refresh_token" in answer.json()


def test_declined_expired_and_unknown_codes(emulator, tenant, http):
    tenant.device_flow.interval = 0
    tenant.device_flow.sign_in("deny", after_polls=0)
    assert error_of(poll(emulator, http, start(emulator, http).json()["device_code"])) == (
        "authorization_declined", 70000)
    tenant.device_flow.sign_in(answer=None)
    tenant.device_flow.expires_in = 1
    code = start(emulator, http).json()["device_code"]
    assert error_of(poll(emulator, http, code))[0] == "authorization_pending"
    time.sleep(1.1)
    assert error_of(poll(emulator, http, code)) == ("expired_token", 70019)
    assert error_of(poll(emulator, http, "not-a-code"))[0] == "bad_verification_code"


def test_only_public_clients_start_the_flow(emulator, tenant, http):
    answer = start(emulator, http, client_id=emulator.admin.client_id)  # a confidential app of the tenant
    assert answer.status_code == 401 and answer.json()["error_codes"] == [7000218]
    answer = start(emulator, http, client_id="00000000-0000-0000-0000-00000000abcd")
    assert answer.json()["error_codes"] == [700016]


def delegated(emulator, tenant, http, roles):
    tenant.device_flow.interval = 0
    tenant.device_flow.sign_in(roles=roles, after_polls=0)
    answer = poll(emulator, http, start(emulator, http).json()["device_code"])
    return {"Authorization": "Bearer " + answer.json()["access_token"]}


def test_graph_takes_the_signed_in_users_roles(emulator, tenant, http):
    assignments = "%s/v1.0/roleManagement/directory/roleAssignments" % emulator.url
    body = {"principalId": emulator.admin.sp_id, "roleDefinitionId": EXCHANGE_ADMINISTRATOR, "directoryScopeId": "/"}
    app_admin = delegated(emulator, tenant, http, (APPLICATION_ADMINISTRATOR,))
    assert http.get(assignments, headers=app_admin).status_code == 200
    refused = http.post(assignments, json=body, headers=app_admin)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "Authorization_RequestDenied"
    assert tenant.directory_role_assignments == {}
    admin = delegated(emulator, tenant, http, (GLOBAL_ADMINISTRATOR,))
    assert http.post(assignments, json=body, headers=admin).status_code == 201
    again = http.post(assignments, json=body, headers=admin)
    assert again.status_code == 409
    wanted = "principalId eq '%s' and roleDefinitionId eq '%s'" % (emulator.admin.sp_id, EXCHANGE_ADMINISTRATOR)
    found = http.get(assignments, headers=admin, params={"$filter": wanted}).json()["value"]
    assert [a["directoryScopeId"] for a in found] == ["/"]


def test_exchange_honours_a_directory_role_after_the_delay(emulator, tenant):
    app = emulator.create_app("late admin", exchange_roles=["Exchange.ManageAsApp"])
    tenant.exchange.role_propagation_delay = 60
    assert not tenant.exchange.is_admin(app["client_id"])
    tenant.directory_role_assignments["x"] = {"principalId": app["sp"]["id"], "directoryScopeId": "/",
                                              "roleDefinitionId": EXCHANGE_ADMINISTRATOR, "_written": time.time()}
    assert not tenant.exchange.is_admin(app["client_id"])
    tenant.exchange.role_propagation_delay = 0
    assert tenant.exchange.is_admin(app["client_id"])
