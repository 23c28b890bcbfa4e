#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: entra_directory_role
short_description: Assign a Microsoft Entra directory role to an app's service principal
version_added: 0.1.0
description:
  - Assigns a built-in directory role (tenant-wide) to the service principal of an app, or removes it, through
    Microsoft Graph's C(roleManagement/directory/roleAssignments).
  - The admin app that the C(exchange_*) modules use needs C(Exchange Administrator) this way (the C(bootstrap)
    playbook does it); Exchange can take up to an hour to honour a new assignment.
  - The caller needs C(RoleManagement.ReadWrite.Directory); signed in as a user (for example with
    M(o365.smtp_oauth.entra_device_login)), that user must be a Privileged Role Administrator or a Global
    Administrator.
author:
  - o365.smtp_oauth contributors (@o365-smtp-oauth)
extends_documentation_fragment: [o365.smtp_oauth.auth, o365.smtp_oauth.requirements, o365.smtp_oauth.attributes]
attributes:
  check_mode:
    details: Reads the assignment and reports what would change; in check mode an app that an earlier task would
      create counts as a predicted assignment.
options:
  app_id:
    description:
      - The app, by its application (client) id. Its service principal receives the role.
      - Needed, except in check mode after an M(o365.smtp_oauth.entra_app) task that would create the app (it
        returns no id then); the assignment is then predicted.
    type: str
  role:
    description:
      - The role, by name (C(Exchange Administrator), C(Exchange Recipient Administrator), C(Global Administrator),
        C(Privileged Role Administrator), C(Application Administrator), C(Cloud Application Administrator)) or by
        its template id (a GUID, as Microsoft's list of built-in roles gives it).
    type: str
    required: true
  state:
    description: Whether the role is assigned.
    type: str
    choices: [present, absent]
    default: present
  wait_timeout:
    description: Seconds to wait for a just-created service principal to replicate before assigning.
    type: int
    default: 120
seealso:
  - module: o365.smtp_oauth.entra_app
  - module: o365.smtp_oauth.entra_device_login
"""

EXAMPLES = r"""
- name: Let the admin app use Exchange's admin API
  o365.smtp_oauth.entra_directory_role:
    app_id: "{{ admin_app.app_id }}"
    role: Exchange Administrator
"""

RETURN = r"""
app_id:
  description: The app's client id.
  returned: always
  type: str
role:
  description: The role's name (its template id when the name is not known to the collection).
  returned: always
  type: str
role_template_id:
  description: The role's template id.
  returned: always
  type: str
service_principal_id:
  description: The service principal's object id; null in check mode for an app not created yet.
  returned: always
  type: str
assignment_id:
  description: The role assignment's id; null when there is none (or in check mode, not made yet).
  returned: always
  type: str
changes:
  description: What changed (or would, in check mode), in words.
  returned: always
  type: list
  elements: str
state:
  description: The requested state.
  returned: always
  type: str
"""

from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import run_module
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.tasks import run_entra_directory_role


def argument_spec():
    return dict(
        app_id=dict(type="str"),
        role=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        wait_timeout=dict(type="int", default=120),
    )


def main():
    run_module(argument_spec(), run_entra_directory_role)


if __name__ == "__main__":
    main()
