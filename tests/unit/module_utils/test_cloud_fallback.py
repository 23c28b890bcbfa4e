"""azure.azcollection's AZURE_CLOUD_ENVIRONMENT as a lower-priority fallback of the cloud option (issue 12)."""

import pytest

from ansible.module_utils.errors import AnsibleFallbackNotFound
from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import _cloud_fallback


@pytest.mark.parametrize("value, cloud", [("AzureCloud", "public"), ("AzureUSGovernment", "usgov"),
                                          ("azurechinacloud", "china")])
def test_azcollection_names_map_to_ours(monkeypatch, value, cloud):
    monkeypatch.delenv("O365_CLOUD", raising=False)
    monkeypatch.setenv("AZURE_CLOUD_ENVIRONMENT", value)
    assert _cloud_fallback("O365_CLOUD", "AZURE_CLOUD_ENVIRONMENT") == cloud


def test_ours_first_and_unknown_names_ignored(monkeypatch):
    monkeypatch.setenv("O365_CLOUD", "usgov")
    monkeypatch.setenv("AZURE_CLOUD_ENVIRONMENT", "AzureChinaCloud")
    assert _cloud_fallback("O365_CLOUD", "AZURE_CLOUD_ENVIRONMENT") == "usgov"
    monkeypatch.delenv("O365_CLOUD")
    monkeypatch.setenv("AZURE_CLOUD_ENVIRONMENT", "AzureGermanCloud")
    with pytest.raises(AnsibleFallbackNotFound):
        _cloud_fallback("O365_CLOUD", "AZURE_CLOUD_ENVIRONMENT")
