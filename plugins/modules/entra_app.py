#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: entra_app
short_description: Declare the Entra ID application that sends mail, with its service principal and permissions
version_added: 0.1.0
description:
  - Creates, updates or deletes a Microsoft Entra ID application registration and its service principal
    (enterprise application), through Microsoft Graph.
  - The app is keyed by O(unique_name) (Graph C(uniqueName)) and written with
    C(PATCH /applications(uniqueName='...')) with the header C(Prefer) set to C(create-if-missing), so
    neither a retried request nor a re-run task can create a duplicate. An existing app can be adopted by
    O(app_id).
  - API permissions are given by name and resolved against the resource's service principal at run time
    (C(appRoles), C(oauth2PermissionScopes)); ids are never hard-coded.
  - After a write, dependent steps (service principal, owners, consent) wait for Entra's replication for at most
    O(wait_timeout) seconds; a timeout says the object was created but is not visible yet, apart from a failure.
  - A second run with the same declaration reads only and reports C(changed=false).
author:
  - o365.smtp_oauth contributors (@o365-smtp-oauth)
extends_documentation_fragment: [o365.smtp_oauth.auth, o365.smtp_oauth.requirements, o365.smtp_oauth.attributes]
attributes:
  check_mode:
    details: Sends no write request and returns the predicted result (ids of an app still to create are null).
  diff_mode:
    support: full
    details: Before and after of the declared fields only (plus permissions, owners and consent by name).
options:
  unique_name:
    description:
      - The app's immutable key (Graph C(uniqueName)), for example C(smtp-relay-prod).
      - Required to create an app. Cannot change once set.
    type: str
  app_id:
    description:
      - Adopt an existing app by its application (client) id. With O(unique_name), an app without a
        C(uniqueName) receives it.
    type: str
  display_name:
    description:
      - The display name. Defaults to O(unique_name) when the app is created.
      - Without O(unique_name) and O(app_id), finds an existing app by this name; fails, listing them, when several
        apps share it.
    type: str
  description:
    description: The app's description.
    type: str
  notes:
    description: Notes about the app (Graph C(notes)), for example who owns it and why.
    type: str
  sign_in_audience:
    description: Who may sign in. Only set on create when not given.
    type: str
    choices: [AzureADMyOrg, AzureADMultipleOrgs, AzureADandPersonalMicrosoftAccount, PersonalMicrosoftAccount]
  tags:
    description: Tags on the app (compared as a set). Not managed when omitted.
    type: list
    elements: str
  owners:
    description:
      - Owners, as user principal names or object ids. The list is exact (others are removed). Not managed when
        omitted.
    type: list
    elements: str
  authorization_model:
    description:
      - How Exchange Online authorises the app to send over SMTP.
      - V(rbac) (RBAC for Applications, Microsoft's current advice) grants sending inside Exchange
        (M(o365.smtp_oauth.exchange_smtp_access)); the Entra permission C(SMTP.SendAsApp) is then NOT added, because
        its claim would also trigger the classic mailbox-permission check.
      - V(classic) adds C(SMTP.SendAsApp) in Entra (with O(admin_consent)) and relies on mailbox permissions.
      - The default depends on O(cloud) - V(rbac) for V(public), V(classic) for V(usgov), V(dod) and V(china)
        (Microsoft announces SMTP over RBAC for Applications for Worldwide only, MC1158911), the same default
        M(o365.smtp_oauth.exchange_smtp_access) uses. V(rbac) given explicitly on another cloud warns.
    type: str
    choices: [rbac, classic]
  smtp_send:
    description:
      - The app sends mail over SMTP. With O(authorization_model=classic) this adds the Office 365 Exchange Online
        application permission C(SMTP.SendAsApp); with V(rbac) it adds nothing in Entra (see O(authorization_model)).
    type: bool
    default: true
  api_permissions:
    description: Further API permissions, by name.
    type: list
    elements: dict
    default: []
    suboptions:
      api:
        description: The API, by display name (C(Microsoft Graph), C(Office 365 Exchange Online)) or appId.
        type: str
        required: true
      app_roles:
        description: Application permissions (app role values), for example C(Mail.Send).
        type: list
        elements: str
        default: []
      scopes:
        description: Delegated permissions (scope values), for example C(User.Read).
        type: list
        elements: str
        default: []
  admin_consent:
    description:
      - Grant admin consent to the declared application permissions (app role assignments on the resource).
      - Needs C(AppRoleAssignment.ReadWrite.All) for the identity running the module.
    type: bool
    default: false
  purge_permissions:
    description:
      - Make the app's required permissions exactly the declared ones, and (with O(admin_consent)) revoke
        consented application permissions that are not declared. When false, undeclared ones are kept.
    type: bool
    default: false
  state:
    description: V(absent) deletes the service principal and the app.
    type: str
    choices: [present, absent]
    default: present
  wait_timeout:
    description: Seconds to wait for Entra replication before a dependent step.
    type: int
    default: 120
notes:
  - The identity running the module needs C(Application.ReadWrite.All) (or C(Application.ReadWrite.OwnedBy)).
  - Deleted apps stay restorable in Entra for 30 days; their uniqueName stays taken meanwhile.
"""

EXAMPLES = r"""
- name: The app that sends mail through Exchange RBAC for Applications (the default model)
  o365.smtp_oauth.entra_app:
    unique_name: smtp-relay-prod
    display_name: SMTP relay (prod)
    notes: Owned by the platform team
    tags: [smtp, prod]
  register: app

- name: Classic model, with admin consent to SMTP.SendAsApp and one Graph permission
  o365.smtp_oauth.entra_app:
    unique_name: ci-notifier
    authorization_model: classic
    admin_consent: true
    api_permissions:
      - api: Microsoft Graph
        app_roles: [User.Read.All]
    purge_permissions: true

- name: Adopt an app created in the portal
  o365.smtp_oauth.entra_app:
    app_id: 3f2a1a64-1111-2222-3333-444455556666
    unique_name: legacy-scanner

- name: Remove the app and its service principal
  o365.smtp_oauth.entra_app:
    unique_name: smtp-relay-test
    state: absent
"""

RETURN = r"""
unique_name:
  description: The app's uniqueName.
  returned: success
  type: str
  sample: smtp-relay-prod
app_id:
  description: The application (client) id; null in check mode for an app still to create.
  returned: success
  type: str
  sample: 3f2a1a64-1111-2222-3333-444455556666
object_id:
  description: The application object's id (not the one Exchange needs).
  returned: success
  type: str
service_principal_id:
  description: The service principal's object id, the id Exchange's New-ServicePrincipal needs.
  returned: success
  type: str
display_name:
  description: The display name.
  returned: when O(state=present)
  type: str
sign_in_audience:
  description: The sign-in audience.
  returned: when O(state=present)
  type: str
authorization_model:
  description: The authorization model the permissions were declared for, O(authorization_model) or the default
    for O(cloud) when it was not set.
  returned: when O(state=present)
  type: str
  sample: rbac
smtp_permission_in_entra:
  description: Whether C(SMTP.SendAsApp) is declared in Entra (true only for the classic model with O(smtp_send)).
  returned: when O(state=present)
  type: bool
permissions:
  description: The declared permissions, resolved.
  returned: when O(state=present)
  type: list
  elements: dict
  contains:
    api:
      description: The resource's display name.
      type: str
    api_app_id:
      description: The resource's appId.
      type: str
    type:
      description: V(application) or V(delegated).
      type: str
    permission:
      description: The role or scope value.
      type: str
    id:
      description: The role or scope id in this tenant.
      type: str
consented:
  description: "Application permissions consented for the app's service principal after the run, each as
    C(<api>: <role>)."
  returned: when O(state=present)
  type: list
  elements: str
owners:
  description: The owners after the run, when O(owners) is given.
  returned: when O(state=present)
  type: list
  elements: str
changes:
  description: What was (or in check mode would be) changed, in words.
  returned: when O(state=present)
  type: list
  elements: str
state:
  description: The state after the run.
  returned: success
  type: str
"""

from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import run_module
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.tasks import run_entra_app


def argument_spec():
    return dict(
        unique_name=dict(type="str"),
        app_id=dict(type="str"),
        display_name=dict(type="str"),
        description=dict(type="str"),
        notes=dict(type="str"),
        sign_in_audience=dict(type="str", choices=["AzureADMyOrg", "AzureADMultipleOrgs",
                                                   "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"]),
        tags=dict(type="list", elements="str"),
        owners=dict(type="list", elements="str"),
        authorization_model=dict(type="str", choices=["rbac", "classic"]),
        smtp_send=dict(type="bool", default=True),
        api_permissions=dict(type="list", elements="dict", default=[], options=dict(
            api=dict(type="str", required=True),
            app_roles=dict(type="list", elements="str", default=[]),
            scopes=dict(type="list", elements="str", default=[]),
        )),
        admin_consent=dict(type="bool", default=False),
        purge_permissions=dict(type="bool", default=False),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        wait_timeout=dict(type="int", default=120),
    )


def main():
    run_module(argument_spec(), run_entra_app, required_one_of=[("unique_name", "app_id", "display_name")])


if __name__ == "__main__":
    main()
