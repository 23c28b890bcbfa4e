"""A federated credential's default audience follows the cloud (Microsoft's workload identity federation docs:
api://AzureADTokenExchange, ...USGov for US Government and DoD, ...China for 21Vianet).

Graph is a recording stand-in here: a national cloud's Graph cannot run on this machine (the emulator speaks the
public cloud's audiences), and only the body the module would send is under test.
"""

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import resolve_cloud
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.credential import CredentialState
from helpers.spec import module_params


class RecordingGraph(object):
    def __init__(self, cloud):
        self.cloud = cloud
        self.posted = []

    def list(self, path, **unused):
        return []

    def post(self, path, json=None, **unused):
        self.posted.append(json)
        return dict(json, id="fic-1")


@pytest.mark.parametrize("cloud,audience", [("public", "api://AzureADTokenExchange"),
                                            ("usgov", "api://AzureADTokenExchangeUSGov"),
                                            ("dod", "api://AzureADTokenExchangeUSGov"),
                                            ("china", "api://AzureADTokenExchangeChina")])
def test_default_audience_follows_the_cloud(cloud, audience):
    graph = RecordingGraph(resolve_cloud(cloud))
    params = module_params("entra_app_credential", unique_name="app", type="federated", name="ci",
                           issuer="https://token.actions.githubusercontent.com",
                           subject="repo:org/repo:ref:refs/heads/main")
    state = CredentialState(graph, {"id": "app-object", "appId": "app"}, params, check_mode=True)
    changed, result = state.ensure_federated()
    assert changed and result["diff"]["after"]["audiences"] == [audience]
    explicit = CredentialState(graph, {"id": "app-object", "appId": "app"}, dict(params, audiences=["custom"]),
                               check_mode=True)
    assert explicit.ensure_federated()[1]["diff"]["after"]["audiences"] == ["custom"]
