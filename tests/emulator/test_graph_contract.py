"""The emulated Graph holds clients to Microsoft's published v1.0 metadata (tests/emulator/contract/graph_v1.json).

What Graph would refuse is refused here with Graph's 400 body and logged as contract "refused"; what Graph
accepts but the emulator does not model answers 501 EmulatorNotImplemented, never an invented refusal.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from emulator import graph_contract
from emulator.test_graph import Graph, error, upsert

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIRROR = os.environ.get("O365_GRAPH_METADATA_REPO", "/work/.mirror/microsoftgraph+msgraph-metadata/repo")
GUID = "0b1f9c11-2b4d-4a8e-9f0e-6a1d3c5e7f90"
SEGMENT = "Resource not found for the segment '%s'."


@pytest.fixture
def graph(emulator, tenant):
    return Graph(emulator, emulator.admin.client_id, emulator.admin.client_secret)


@pytest.fixture
def app(graph):
    return upsert(graph, "contract", {"displayName": "Contract"}).json()


def last_graph_entry(tenant):
    return [e for e in tenant.log.since(0) if e["part"] == "graph"][-1]


def refused(tenant, response, code, message):
    """Graph's error body, and the log says the contract refused it."""
    assert error(response, 400, code) == message
    entry = last_graph_entry(tenant)
    assert entry["contract"] == "refused" and entry["contract_error"] == message
    return entry


# -- the vendored file -----------------------------------------------------------------------------------------
def test_vendored_contract_names_its_source_and_is_closed():
    data = json.load(open(graph_contract.PATH))
    assert data["source"]["repository"] == "microsoftgraph/msgraph-metadata"
    assert data["source"]["path"] == "schemas/v1.0-Prod.csdl" and re.match(r"^[0-9a-f]{40}$", data["source"]["commit"])
    assert set(data["entity_sets"]) == {"applications", "servicePrincipals", "users", "directoryObjects",
                                        "roleManagement"}
    assert data["entity_sets"]["roleManagement"]["singleton"] is True
    contract = graph_contract.contract()
    assert contract.entities["application"]["alternate_keys"] == [["appId"], ["uniqueName"]]
    assert contract.entities["servicePrincipal"]["alternate_keys"] == [["appId"]]
    assert set(contract.operations["application"]) >= {"addPassword", "removePassword", "addKey", "removeKey"}
    # Every type a body can name resolves: the file is closed over what it vendors (users are kept shallow).
    for name, structure in list(contract.entities.items()) + list(contract.complexes.items()):
        if name == "user":
            continue
        for prop, spec in structure["properties"].items():
            element = spec["type"][len("Collection("):-1] if spec["type"].startswith("Collection(") else spec["type"]
            assert element.startswith("Edm.") or element in contract.complexes or element in contract.enums, (
                name, prop, element)
    for binding, operations in contract.operations.items():
        for op_name, op in operations.items():
            if "user" in binding:
                continue
            for param in op["parameters"].values():
                element = param["type"].replace("Collection(", "").rstrip(")")
                assert element.startswith("Edm.") or contract.structure(element) or element in contract.enums, (
                    binding, op_name, element)


@pytest.mark.skipif(not os.path.isdir(MIRROR), reason="no msgraph-metadata clone at %s (set "
                                                      "O365_GRAPH_METADATA_REPO)" % MIRROR)
def test_vendored_contract_is_what_the_script_extracts():
    commit = json.load(open(graph_contract.PATH))["source"]["commit"]
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "extract_graph_contract.py"), "--repo",
                           MIRROR, "--commit", commit, "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# -- paths -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path, shape", [
    ("applications(uniqueName='a%27%27b')", "applications(uniqueName)"),
    ("applications(appId='%s')" % GUID, "applications(appId)"),
    ("applications/%s" % GUID, "applications/{id}"),
    ("applications/%s/addPassword" % GUID, "applications/{id}/addPassword"),
    ("applications/%s/federatedIdentityCredentials(name='gh')" % GUID,
     "applications/{id}/federatedIdentityCredentials(name)"),
    ("applications/%s/owners/%s/$ref" % (GUID, GUID), "applications/{id}/owners/{id}/$ref"),
    ("servicePrincipals(appId='%s')/appRoleAssignedTo" % GUID, "servicePrincipals(appId)/appRoleAssignedTo"),
    ("applications/$count", "applications/$count"),
    ("directoryObjects/%s/microsoft.graph.user" % GUID, "directoryObjects/{id}/microsoft.graph.user"),
    ("applications/%s/extensionProperties/x" % GUID, "applications/{id}/extensionProperties/x"),  # not vendored
])
def test_paths_graph_accepts_resolve(path, shape):
    assert graph_contract.contract().resolve(path).shape == shape


@pytest.mark.parametrize("path, segment", [
    ("applicationz", "applicationz"),
    ("applications/%s/secrets" % GUID, "secrets"),
    ("applications/%s/addSecret" % GUID, "addSecret"),
    ("applications/%s/addPassword/more" % GUID, "more"),
    ("applications/%s/federatedIdentityCredentials/%s/$ref" % (GUID, GUID), "$ref"),  # contained: no references
    ("servicePrincipals/%s/microsoft.graph.application" % GUID, "microsoft.graph.application"),  # no such cast
])
def test_paths_graph_refuses(path, segment):
    with pytest.raises(graph_contract.ContractError) as refusal:
        graph_contract.contract().resolve(path)
    assert (refusal.value.code, refusal.value.message) == ("BadRequest", SEGMENT % segment)


def test_unknown_segment_and_action_are_refused_with_graphs_body(graph, tenant, app):
    refused(tenant, graph.get("applications/%s/secrets" % app["id"]), "BadRequest", SEGMENT % "secrets")
    before = list(tenant.applications[app["id"]].get("passwordCredentials") or [])
    refused(tenant, graph.post("applications/%s/addSecret" % app["id"], json={}), "BadRequest", SEGMENT % "addSecret")
    assert (tenant.applications[app["id"]].get("passwordCredentials") or []) == before
    refused(tenant, graph.get("aplications"), "BadRequest", SEGMENT % "aplications")
    message = error(graph.get("applications(displayName='Contract')"), 400, "BadRequest")
    assert "displayName" in message and last_graph_entry(tenant)["contract"] == "refused"


# -- bodies ----------------------------------------------------------------------------------------------------
def test_wrong_property_names_are_refused_top_level_and_nested(graph, tenant, app):
    path = "applications/%s" % app["id"]
    refused(tenant, graph.patch(path, json={"displayNmae": "x"}), "Request_BadRequest",
            "Invalid property 'displayNmae'.")
    access = {"id": GUID, "type": "Role"}
    body = {"requiredResourceAccess": [{"resourceAppId": GUID, "resourceAccess": [dict(access, kind="x")]}]}
    refused(tenant, graph.patch(path, json=body), "Request_BadRequest", "Invalid property 'kind'.")
    # Names are case-sensitive (Graph answered exactly this to 'ResourceAccess').
    body = {"requiredResourceAccess": [{"resourceAppId": GUID, "ResourceAccess": [access]}]}
    refused(tenant, graph.patch(path, json=body), "Request_BadRequest", "Invalid property 'ResourceAccess'.")
    refused(tenant, graph.patch(path, json={"web": {"redirectUri": ["https://x"]}}), "Request_BadRequest",
            "Invalid property 'redirectUri'.")
    refused(tenant, graph.patch(path, json={"tags": "smtp"}), "Request_BadRequest",
            "Invalid value specified for property 'tags' of resource 'Application'.")
    refused(tenant, graph.patch(path, json={"keyCredentials": [{"keyId": "not-a-guid"}]}), "Request_BadRequest",
            "Invalid value specified for property 'keyId' of resource 'KeyCredential'.")
    refused(tenant, graph.patch(path, json={"web": {"@odata.type": "#microsoft.graph.nope"}}), "BadRequest",
            "A type named 'microsoft.graph.nope' could not be resolved by the model.")
    assert tenant.applications[app["id"]]["displayName"] == "Contract"
    fic = {"name": "gh", "issuer": "https://x", "subject": "s", "audiences": ["api://AzureADTokenExchange"],
           "audience": "api://AzureADTokenExchange"}
    refused(tenant, graph.post("applications/%s/federatedIdentityCredentials" % app["id"], json=fic),
            "Request_BadRequest", "Invalid property 'audience'.")
    assignment = {"principalId": GUID, "resourceId": GUID, "appRoleId": GUID, "role": "SMTP.SendAsApp"}
    refused(tenant, graph.post("servicePrincipals/%s/appRoleAssignedTo" % GUID, json=assignment),
            "Request_BadRequest", "Invalid property 'role'.")


def test_action_parameters_and_nested_credential_are_checked(graph, tenant, app):
    path = "applications/%s/addPassword" % app["id"]
    refused(tenant, graph.post(path, json={"credential": {"displayName": "x"}}), "BadRequest",
            "The parameter 'credential' in the request payload is not a valid parameter for the operation "
            "'addPassword'.")
    refused(tenant, graph.post(path, json={"passwordCredential": {"displayName": "x", "value": "y"}}),
            "Request_BadRequest", "Invalid property 'value'.")
    refused(tenant, graph.post("applications/%s/removePassword" % app["id"], json={"keyId": "abc"}),
            "Request_BadRequest", "Invalid value specified for property 'keyId' of resource 'RemovePassword'.")
    assert not tenant.applications[app["id"]].get("passwordCredentials")
    created = graph.post(path, json={"passwordCredential": {"displayName": "ok"}})
    assert created.status_code == 200 and last_graph_entry(tenant)["graph_route"] == (
        "POST applications/{id}/addPassword")


def test_directory_extension_properties_pass_the_contract(graph, tenant, app):
    """application is an open type: extension_{appId}_{name} is Graph's; this emulator does not model it."""
    answer = graph.patch("applications/%s" % app["id"], json={"extension_%s_costCenter" % GUID.replace("-", ""): "x"})
    assert error(answer, 501, "EmulatorNotImplemented")
    assert last_graph_entry(tenant)["contract"] == "ok"


def test_valid_but_unmodelled_requests_are_501_not_refusals(graph, tenant, app):
    answer = graph.post("applications/%s/addKey" % app["id"], json={"keyCredential": {"type": "AsymmetricX509Cert"},
                                                                    "proof": "x"})
    assert "addKey" in error(answer, 501, "EmulatorNotImplemented")
    assert last_graph_entry(tenant)["contract"] == "ok"


# -- query options ---------------------------------------------------------------------------------------------
def test_unknown_select_filter_orderby_names_are_refused(graph, tenant, app):
    refused(tenant, graph.get("applications/%s" % app["id"], params={"$select": "appId,secret"}), "BadRequest",
            "Parsing OData Select and Expand failed: Could not find a property named 'secret' on type "
            "'microsoft.graph.application'.")
    refused(tenant, graph.get("servicePrincipals", params={"$filter": "applicationId eq '%s'" % GUID}), "BadRequest",
            "Invalid filter clause: Could not find a property named 'applicationId' on type "
            "'microsoft.graph.servicePrincipal'.")
    refused(tenant, graph.get("applications", params={"$orderby": "name desc"}), "BadRequest",
            "Could not find a property named 'name' on type 'microsoft.graph.application'.")
    refused(tenant, graph.get("applications", params={"$expand": "secrets"}), "BadRequest",
            "Parsing OData Select and Expand failed: Could not find a property named 'secrets' on type "
            "'microsoft.graph.application'.")
    refused(tenant, graph.get("applications", params={"$frobnicate": "1"}), "BadRequest",
            "The query parameter '$frobnicate' is not supported.")
    # A property of the type that the emulator does not model is selected as null, not refused.
    got = graph.get("applications/%s" % app["id"], params={"$select": "appId,addIns"})
    assert got.status_code == 200 and got.json()["addIns"] is None and last_graph_entry(tenant)["contract"] == "ok"
    # A property of the type that is not filterable by default stays Graph's Request_UnsupportedQuery.
    error(graph.get("applications", params={"$filter": "notes eq 'x'"}), 400, "Request_UnsupportedQuery")
    assert last_graph_entry(tenant)["contract"] == "ok"
