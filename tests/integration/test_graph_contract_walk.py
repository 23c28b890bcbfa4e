"""Every Graph request the collection can build, sent through ansible-playbook, is one Microsoft's v1.0 metadata
allows: the emulator checks each against tests/emulator/contract/graph_v1.json and logs its verdict.

One tenant, one walk through every code path that builds a Graph request (entra_app create / update / adopt /
owners / consent / purge / absent, entra_app_credential secret / certificate / federated incl. removal,
entra_app_info, entra_directory_role assign / remove, exchange_smtp_access's reads of the service principal and its consent). The test asserts that each
Graph request in tenant.log passed the contract check, none was refused or answered "not implemented", and that
the walk reached every route the collection's code builds (ROUTES below, read off plugins/module_utils).
"""

from emulator.certs import ClientCertificate
from helpers.playbook import run_playbook

GRAPH_APP = "00000003-0000-0000-c000-000000000000"
GITHUB = "https://token.actions.githubusercontent.com"

# METHOD + route shape, as graph_contract names them: one per request form built in plugins/module_utils.
ROUTES = {
    "GET applications(uniqueName)",                             # graph.application_by_unique_name
    "PATCH applications(uniqueName)",                           # graph.upsert_application
    "GET applications?$filter",                                 # by appId (adoption) / by displayName
    "GET applications/{id}",                                    # _entra_app._write_app, credential reads
    "PATCH applications/{id}",                                  # adoption backfill, keyCredentials
    "DELETE applications/{id}",                                 # state=absent
    "POST applications/{id}/addPassword",
    "POST applications/{id}/removePassword",
    "GET applications/{id}/federatedIdentityCredentials",
    "POST applications/{id}/federatedIdentityCredentials",
    "PATCH applications/{id}/federatedIdentityCredentials/{id}",
    "DELETE applications/{id}/federatedIdentityCredentials/{id}",
    "GET applications/{id}/owners",
    "POST applications/{id}/owners/$ref",
    "DELETE applications/{id}/owners/{id}/$ref",
    "GET directoryObjects/{id}",                                # owner by object id
    "GET users/{id}",                                           # owner by user principal name
    "GET servicePrincipals?$filter",                            # SP by appId / resource API by name
    "PATCH servicePrincipals(appId)",                           # graph.upsert_service_principal
    "GET servicePrincipals(appId)",                             # _exchange_identity.service_principal_of
    "GET servicePrincipals/{id}",                               # resolver.role_name_by_sp
    "GET servicePrincipals/{id}/appRoleAssignments",            # consent read (entra_app, info, exchange)
    "GET servicePrincipals/{id}/appRoleAssignedTo",             # entra_app_info smtp_senders
    "POST servicePrincipals/{id}/appRoleAssignedTo",            # admin consent
    "DELETE servicePrincipals/{id}/appRoleAssignedTo/{id}",     # purge_permissions revokes
    "DELETE servicePrincipals/{id}",                            # state=absent
    "GET roleManagement/directory/roleAssignments?$filter",     # entra_directory_role read
    "POST roleManagement/directory/roleAssignments",            # entra_directory_role assign
    "DELETE roleManagement/directory/roleAssignments/{id}",     # entra_directory_role state=absent
}


def task(module, **args):
    return {"name": module, "o365.smtp_oauth.%s" % module: args, "register": "out"}


def play(emulator, *tasks):
    results = run_playbook(emulator, list(tasks)).results
    for spec, result in zip(tasks, results):
        assert spec.get("ignore_errors") or not result.get("failed"), result.get("msg")
    return results


def test_every_graph_request_of_the_collection_is_in_the_v1_contract(emulator, tenant, tmp_path):
    # Owners by user principal name need User.Read.All: grant it to the admin app for this walk.
    tenant.grant_app_role(emulator.admin.sp_id, GRAPH_APP, "User.Read.All")
    tenant.grant_app_role(emulator.admin.sp_id, GRAPH_APP, "RoleManagement.ReadWrite.Directory")
    adele, megan = sorted(tenant.users.values(), key=lambda u: u["displayName"])
    legacy = tenant.add_application("Walk legacy")  # created elsewhere without uniqueName: adopted by app_id
    path = ClientCertificate("walk.contoso.com", days=90).write(str(tmp_path / "walk.crt"), with_key=False)
    mark = tenant.log.mark()
    app = dict(unique_name="walk", authorization_model="classic", admin_consent=True)
    [created] = play(emulator, task("entra_app", owners=[adele["id"], megan["userPrincipalName"]], tags=["smtp"],
                                    api_permissions=[{"api": "Microsoft Graph", "app_roles": ["User.Read.All"]}],
                                    **app))
    assert created["changed"] and created["service_principal_id"]
    play(emulator, task("entra_app", owners=[adele["id"]], display_name="Walk", purge_permissions=True, **app),
         task("entra_app", app_id=legacy["appId"], unique_name="walk-legacy", notes="adopted"),
         task("entra_app_credential", unique_name="walk", type="secret", display_name="relay"),
         task("entra_app_credential", unique_name="walk", type="secret", display_name="relay", state="absent"),
         task("entra_app_credential", unique_name="walk", type="certificate", public_certificate_path=str(path)),
         task("entra_app_credential", unique_name="walk", type="certificate", state="absent",
              public_certificate_path=str(path)),
         task("entra_app_credential", unique_name="walk", type="federated", name="gh", issuer=GITHUB,
              subject="repo:org/repo:ref:refs/heads/main"),
         task("entra_app_credential", unique_name="walk", type="federated", name="gh", issuer=GITHUB,
              subject="repo:org/repo:environment:prod", description="prod"),
         task("entra_app_credential", unique_name="walk", type="federated", name="gh", state="absent"),
         task("entra_app_info", unique_name="walk"),
         task("entra_app_info", smtp_senders=True, app_ids=[created["app_id"]]),
         # Only its Graph reads matter here (Exchange has its own walk): its result is not this test's concern,
         # and ROUTES proves the reads happened.
         dict(task("exchange_smtp_access", app_id=created["app_id"], authorization_model="classic",
                   mailboxes=[{"address": "noreply@%s" % tenant.domain}]), ignore_errors=True),
         task("entra_directory_role", app_id=created["app_id"], role="Exchange Administrator"),
         task("entra_directory_role", app_id=created["app_id"], role="Exchange Administrator", state="absent"),
         task("entra_app", unique_name="walk", state="absent"),
         task("entra_app", unique_name="walk-legacy", state="absent"))

    graph = [e for e in tenant.log.since(mark) if e["part"] == "graph" and not e.get("fault")]
    refused = [(e["method"], e["path"], e.get("contract_error")) for e in graph if e.get("contract") != "ok"]
    assert refused == [], "requests outside Microsoft's v1.0 contract"
    unmodelled = [(e["method"], e["path"]) for e in graph if e["status"] == 501]
    assert unmodelled == []
    walked = set(e["graph_route"] for e in graph)
    assert ROUTES - walked == set(), "code paths this walk did not reach"
    assert walked - ROUTES == set(), "the collection sends a request form ROUTES does not list: add it above"
