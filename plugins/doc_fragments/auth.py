# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The shared authentication and endpoint options. Static text (ansible-doc reads it without the collection's
    # code); tests/unit/module_utils/auth/test_auth_table.py holds it to their one table, module_utils/_auth/kinds.py.
    DOCUMENTATION = r"""
options:
  tenant_id:
    description:
      - The directory (tenant) ID, a GUID, or a verified domain of the tenant such as C(contoso.onmicrosoft.com).
      - Required for client secret, certificate and workload identity credentials.
      - If not set, the environment variable E(AZURE_TENANT_ID) is used, else E(AZURE_TENANT) as C(azure.azcollection) names it.
    type: str
    version_added: 0.1.0
  client_id:
    description:
      - The application (client) ID of the app registration that authenticates.
      - If not set, the environment variable E(AZURE_CLIENT_ID) is used.
    type: str
    version_added: 0.1.0
  client_secret:
    description:
      - A client secret value (not its secret ID) of the app registration.
      - Prefer O(certificate_path) or a managed or workload identity where you can; secrets expire and leak.
      - If not set, the environment variable E(AZURE_CLIENT_SECRET) is used, else E(AZURE_SECRET) as C(azure.azcollection) names it.
    type: str
    version_added: 0.1.0
  certificate_path:
    description:
      - Path of a PEM file with the private key and the certificate whose public part is registered on the app.
      - A PKCS#12 (C(.pfx), C(.p12)) file is also accepted, with O(certificate_password) if it is encrypted.
      - If not set, the environment variable E(AZURE_CLIENT_CERTIFICATE_PATH) is used.
    type: path
    version_added: 0.1.0
  certificate_password:
    description:
      - Password of an encrypted private key in O(certificate_path).
      - If not set, the environment variable E(AZURE_CLIENT_CERTIFICATE_PASSWORD) is used.
    type: str
    version_added: 0.1.0
  certificate_thumbprint_algorithm:
    description:
      - Which thumbprint of the certificate identifies it to the identity platform.
      - V(sha1) only for clouds or tools that do not accept SHA-256 thumbprints yet.
    type: str
    choices: [sha256, sha1]
    default: sha256
    version_added: 0.1.0
  federated_token_file:
    description:
      - Path of a file holding a federated token (workload identity federation, for example Kubernetes or CI).
      - The file is read again for every token request, because the issuer rotates it.
      - If not set, the environment variable E(AZURE_FEDERATED_TOKEN_FILE) is used.
    type: path
    version_added: 0.1.0
  federated_token_source:
    description:
      - Where the federated (OIDC) token of workload identity federation comes from.
      - V(file) reads O(federated_token_file).
      - "V(github) asks GitHub Actions for the job's OIDC token, with the audience of O(cloud)
        (C(api://AzureADTokenExchange), C(...USGov), C(...China)), from E(ACTIONS_ID_TOKEN_REQUEST_URL) and
        E(ACTIONS_ID_TOKEN_REQUEST_TOKEN). GitHub sets them only when the workflow or job has
        C(permissions: id-token: write)."
      - V(gitlab) reads the GitLab CI C(id_tokens:) variable named by O(federated_token_variable).
      - V(auto) uses O(federated_token_file) when it is set, else V(github) when E(GITHUB_ACTIONS) is C(true), else
        V(gitlab) when E(GITLAB_CI) is C(true). When no other credential option is set, such a CI job
        authenticates with its own OIDC token and needs nothing but O(tenant_id) and O(client_id).
      - The token is fetched each time an access token is needed and is never written to disk or shown.
    type: str
    choices: [auto, file, github, gitlab]
    default: auto
    version_added: 0.1.0
  federated_token_variable:
    description:
      - The name of the GitLab CI C(id_tokens:) variable that holds the job's OIDC token, for
        O(federated_token_source=gitlab). Its C(aud) must be the federated credential's audience.
    type: str
    default: GITLAB_OIDC_TOKEN
    version_added: 0.1.0
  managed_identity:
    description:
      - Authenticate with the managed identity of the Azure resource running the module.
    type: bool
    default: false
    version_added: 0.1.0
  managed_identity_client_id:
    description:
      - Client ID of a user-assigned managed identity. Leave unset for the system-assigned identity.
    type: str
    version_added: 0.1.0
  azure_cli:
    description:
      - Use the account signed in with C(az login) on the host running the module.
      - Meant for interactive administration, not for unattended runs.
    type: bool
    default: false
    version_added: 0.1.0
  access_token:
    description:
      - A ready access token for the audience the task needs (Microsoft Graph or Exchange Online).
      - It cannot be renewed; a task fails once it expires.
    type: str
    version_added: 0.1.0
  auth_method:
    description:
      - Which credential to use.
      - V(auto) takes the first of O(access_token), O(certificate_path), O(client_secret), O(federated_token_file)
        (or O(federated_token_source) other than V(auto)), O(managed_identity) (or O(managed_identity_client_id)),
        O(azure_cli) that is set, and warns about the others. When none is set, a GitHub Actions or GitLab CI job uses workload identity with its own
        OIDC token (see O(federated_token_source)).
    type: str
    choices: [auto, client_secret, certificate, workload_identity, managed_identity, azure_cli, access_token]
    default: auto
    version_added: 0.1.0
  cloud:
    description:
      - The Microsoft 365 cloud (national cloud) of the tenant; it sets the sign-in, Graph and Exchange endpoints.
      - If not set, the environment variable E(O365_CLOUD) is used, else E(AZURE_CLOUD_ENVIRONMENT) as
        C(azure.azcollection) sets it (C(AzureCloud), C(AzureUSGovernment), C(AzureChinaCloud)).
    type: str
    choices: [public, usgov, dod, china]
    default: public
    version_added: 0.1.0
  authority_host:
    description:
      - Override of the sign-in endpoint of O(cloud), for example C(https://login.microsoftonline.us).
      - If not set, the environment variable E(AZURE_AUTHORITY_HOST) is used.
    type: str
    version_added: 0.1.0
  graph_endpoint:
    description:
      - Override of the Microsoft Graph endpoint of O(cloud). The token audience stays the cloud's Graph resource.
      - If not set, the environment variable E(O365_GRAPH_ENDPOINT) is used.
    type: str
    version_added: 0.1.0
  exchange_endpoint:
    description:
      - Override of the Exchange Online endpoint of O(cloud), used for the Exchange admin API (by default
        C(https://outlook.office365.com), C(https://outlook.office365.us), C(https://webmail.apps.mil) for V(dod) as
        C(Connect-ExchangeOnline) uses it, C(https://partner.outlook.cn)). The token audience stays the cloud's
        Exchange resource.
      - If not set, the environment variable E(O365_EXCHANGE_ENDPOINT) is used.
    type: str
    version_added: 0.1.0
  ca_path:
    description:
      - PEM bundle of the certificate authorities to trust for HTTPS, instead of the system's.
      - Use it behind a TLS-inspecting proxy. Certificate verification cannot be turned off.
      - If not set, the environment variable E(O365_CA_PATH) is used.
    type: path
    version_added: 0.1.0
  token_cache_dir:
    description:
      - Folder where access tokens are kept between tasks (mode 0700, files 0600), so a play asks for a token
        once per scope instead of once per task. Secrets are never written there.
      - A folder that does not exist is created with mode 0700. An existing folder must belong to the user the
        module runs as and be closed to others (0700); its mode is never changed (a shared folder such as C(/tmp)
        is refused, not closed).
      - Unset means tokens live only for the task.
      - If not set, the environment variable E(O365_TOKEN_CACHE_DIR) is used.
    type: path
    version_added: 0.1.0
notes:
  - The credential options are checked before any request; a wrong combination fails naming the option.
  - Secrets (O(client_secret), O(certificate_password), O(access_token)) and tokens never appear in results,
    diffs or error messages.
"""
