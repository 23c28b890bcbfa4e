#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: entra_device_login
short_description: Sign an admin in interactively (device code flow) for a one-time bootstrap
version_added: 0.1.0
description:
  - Starts Microsoft's device code flow on the controller, prints the sign-in message (the page to open and the
    code to enter) where Ansible prints task output, at normal verbosity, and waits until the admin signed in,
    declined, the code expired, or O(timeout) passed.
  - Returns a delegated access token for Microsoft Graph in RV(access_token), for the following tasks'
    O(o365.smtp_oauth.entra_app#module:access_token) option. The whole result is marked no_log, so callbacks
    and logs show it censored at any verbosity; who signed in, with which roles, is printed once more on its own.
    The token is not cached anywhere.
  - With O(check_roles), refuses, before anything is written, a sign-in whose directory roles cannot bootstrap the
    admin app (Global Administrator, or Privileged Role Administrator together with Application Administrator or
    Cloud Application Administrator), naming the roles needed.
  - Runs on the controller (an action plugin); the target is not contacted. The C(bootstrap) playbook uses it.
author:
  - o365.smtp_oauth contributors (@o365-smtp-oauth)
requirements:
  - msal >= 1.24 and requests, on the controller (the sign-in runs there)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: A sign-in writes nothing; it runs the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  action:
    description: Runs on the controller as an action plugin.
    support: full
options:
  tenant_id:
    description:
      - The tenant to sign in to (its id or initial domain); C(common) and C(organizations) are refused.
      - If not set, the environment variable E(AZURE_TENANT_ID) is used.
    type: str
  client_id:
    description:
      - The public client that signs in. The default is Microsoft Graph Command Line Tools
        (C(14d82eec-204b-4c2f-b7e8-296a70dab67e)), the client Microsoft's Graph PowerShell SDK signs in with,
        present in every tenant; the admin consents to the O(scopes) at sign-in.
      - An app of your own must allow public client flows (C(isFallbackPublicClient)) and declare those delegated
        permissions.
    type: str
    default: 14d82eec-204b-4c2f-b7e8-296a70dab67e
  scopes:
    description: Delegated Microsoft Graph permissions asked for (names without the resource).
    type: list
    elements: str
    default: [Application.ReadWrite.All, AppRoleAssignment.ReadWrite.All, RoleManagement.ReadWrite.Directory]
  check_roles:
    description: Refuse a sign-in without the directory roles that bootstrapping needs.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the sign-in (Microsoft's codes expire after about 15 minutes).
    type: int
    default: 300
  cloud:
    description:
      - The Microsoft cloud.
      - If not set, the environment variable E(O365_CLOUD) is used.
    type: str
    choices: [public, usgov, dod, china]
    default: public
  authority_host:
    description:
      - The identity platform's URL, to override the cloud's.
      - If not set, the environment variable E(AZURE_AUTHORITY_HOST) is used.
    type: str
  graph_endpoint:
    description:
      - Microsoft Graph's URL, to override the cloud's (the token's resource follows the cloud).
      - If not set, the environment variable E(O365_GRAPH_ENDPOINT) is used.
    type: str
  ca_path:
    description:
      - A PEM bundle to verify TLS with.
      - If not set, the environment variable E(O365_CA_PATH) is used.
    type: path
notes:
  - Only the message Microsoft's identity platform returns is printed (page and code), never the device code
    or a token.
seealso:
  - module: o365.smtp_oauth.entra_app
  - module: o365.smtp_oauth.entra_directory_role
"""

EXAMPLES = r"""
- name: Sign in as an admin (open the page printed and enter the code)
  o365.smtp_oauth.entra_device_login:
    tenant_id: contoso.onmicrosoft.com
  register: login

- name: Create the admin app with the admin's token
  o365.smtp_oauth.entra_app:
    auth_method: access_token
    access_token: "{{ login.access_token }}"
    tenant_id: "{{ login.tenant_id }}"
    unique_name: o365-smtp-oauth-admin
    smtp_send: false
"""

RETURN = r"""
access_token:
  description: The delegated Microsoft Graph access token (censored in output; use it from the registered result).
  returned: success
  type: str
expires_on:
  description: When the token expires (Unix time).
  returned: success
  type: int
user:
  description: Who signed in (user principal name).
  returned: success
  type: str
roles:
  description: The signed-in user's directory roles, by name.
  returned: success
  type: list
  elements: str
scopes:
  description: The delegated permissions the token carries.
  returned: success
  type: list
  elements: str
tenant_id:
  description: The tenant id.
  returned: success
  type: str
client_id:
  description: The public client that signed in.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback

GRAPH_CLI_CLIENT_ID = "14d82eec-204b-4c2f-b7e8-296a70dab67e"  # Microsoft Graph Command Line Tools


def argument_spec():
    """The options, for the action plugin (plugins/action/entra_device_login.py) that runs them on the controller."""
    return dict(
        tenant_id=dict(type="str", fallback=(env_fallback, ["AZURE_TENANT_ID", "AZURE_TENANT"])),
        client_id=dict(type="str", default=GRAPH_CLI_CLIENT_ID),
        scopes=dict(type="list", elements="str", default=["Application.ReadWrite.All",
                                                          "AppRoleAssignment.ReadWrite.All",
                                                          "RoleManagement.ReadWrite.Directory"]),
        check_roles=dict(type="bool", default=True),
        timeout=dict(type="int", default=300),
        cloud=dict(type="str", default="public", choices=["public", "usgov", "dod", "china"],
                   fallback=(env_fallback, ["O365_CLOUD"])),
        authority_host=dict(type="str", fallback=(env_fallback, ["AZURE_AUTHORITY_HOST"])),
        graph_endpoint=dict(type="str", fallback=(env_fallback, ["O365_GRAPH_ENDPOINT"])),
        ca_path=dict(type="path", fallback=(env_fallback, ["O365_CA_PATH"])),
    )


def main():
    # Only reached when something runs this file as a module: the action plugin runs the sign-in itself.
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    module.fail_json(msg="entra_device_login runs on the controller as an action plugin; it cannot run as a module")


if __name__ == "__main__":
    main()
