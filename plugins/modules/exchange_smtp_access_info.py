#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: exchange_smtp_access_info
short_description: Report which apps may send as which Exchange Online mailboxes over SMTP with OAuth, and why
version_added: 0.1.0
description:
  - Reads, for one app (O(app_id)), one mailbox (O(mailbox)) or the whole tenant, the Exchange Online side of
    app-only SMTP AUTH through the admin REST endpoint that the ExchangeOnlineManagement module uses.
  - Reports the service principals registered in Exchange (and whether each was registered with the service
    principal object id, checked against Microsoft Graph), management scopes and C(Application SMTP.SendAsApp) role
    assignments, FullAccess and SendAs permissions, SMTP AUTH for the tenant and each mailbox (three states and the
    effective value), and a verdict per (app, mailbox) pair with the reasons.
  - Lists only pairs where the app may send (a role assignment whose scope holds the mailbox, FullAccess read, SendAs)
    and pairs for the mailboxes asked about (O(mailbox), O(mailboxes)); O(all_mailboxes) lists every mailbox.
  - The cost follows the grants, not the tenant - RBAC grants through the app's role assignments and the members of
    their scopes (C(Get-Recipient -RecipientPreviewFilter), paged), SendAs through one paged
    C(Get-RecipientPermission -Trustee) per app, SMTP AUTH through batched C(Get-CASMailbox -Filter) reads, and one
    C(Test-ServicePrincipalAuthorization) per mailbox in an app's scope. Per-mailbox calls run four at a time,
    honouring C(Retry-After); at C(-v) the result's RV(progress) says how far each part went.
  - FullAccess (the classic model's grant) is answered by Exchange per mailbox only, so it is read for the asked
    mailboxes; O(full_access_scan) reads it for every mailbox of the tenant (one call per mailbox).
author:
  - o365.smtp_oauth contributors (@o365-smtp-oauth)
extends_documentation_fragment: [o365.smtp_oauth.auth, o365.smtp_oauth.requirements, o365.smtp_oauth.attributes]
attributes:
  check_mode:
    details: Reads only, in any mode.
  diff_mode:
    support: none
options:
  organization:
    description:
      - The tenant's initial domain (for example C(contoso.onmicrosoft.com)), as given to
        C(Connect-ExchangeOnline -Organization).
      - Used only when O(tenant_id) is a domain name, to route the admin calls (C(X-AnchorMailbox) header
        C(UPN:SystemMailbox{...}@<organization>)). With a tenant id (a GUID) in O(tenant_id) the calls are routed
        the way ExchangeOnlineManagement routes app-only calls (C(APP:SystemMailbox{...}@<tenant id>)) and this
        option is not needed.
      - Defaults to O(tenant_id).
    type: str
  app_id:
    description: Report only this app (its Application (client) id).
    type: str
  mailbox:
    description:
      - Also judge this mailbox (any of its addresses) for every app in the report, and read its FullAccess
        holders.
    type: str
  mailboxes:
    description:
      - Like O(mailbox), for several mailboxes (for example the ones a playbook declares).
    type: list
    elements: str
  full_access_scan:
    description:
      - Read FullAccess on every mailbox of the tenant (one C(Get-MailboxPermission) per mailbox), to find classic
        grants on mailboxes nobody asked about. Slow in large tenants.
    type: bool
    default: false
  all_mailboxes:
    description:
      - List a pair for every mailbox of the tenant, not only where the app may send or that was asked about
        (what earlier versions listed for O(app_id)). Reads every mailbox's SMTP AUTH setting (paged).
    type: bool
    default: false
seealso:
  - module: o365.smtp_oauth.exchange_smtp_access
"""

EXAMPLES = r"""
- name: Who may send as whom over SMTP
  o365.smtp_oauth.exchange_smtp_access_info:
  register: smtp_access

- name: Why can this app not send as noreply@?
  o365.smtp_oauth.exchange_smtp_access_info:
    app_id: "{{ app_id }}"
    mailbox: noreply@contoso.onmicrosoft.com
  register: why

- name: Show the reasons
  ansible.builtin.debug:
    msg: "{{ why.pairs[0].verdict.reasons }}"
"""

RETURN = r"""
tenant:
  description: The tenant-wide SMTP AUTH setting (Get-TransportConfig).
  returned: always
  type: dict
  contains:
    smtp_auth:
      description: C(enabled) or C(disabled).
      type: str
    smtp_client_authentication_disabled:
      description: The raw TransportConfig value.
      type: bool
    authorization_model_default:
      description:
        - The authorization model M(o365.smtp_oauth.exchange_smtp_access) chooses for O(cloud) when none is given -
          C(rbac) for the public cloud, C(classic) for the others.
      type: str
      sample: rbac
    rbac_smtp_role:
      description:
        - Whether the tenant has the management role C(Application SMTP.SendAsApp) (Get-ManagementRole), which the
          RBAC model needs. False on clouds and tenants Microsoft has not rolled it out to (use the classic model).
      type: bool
service_principals:
  description: Service principals registered in Exchange (for O(app_id), that app even when it is not registered).
  returned: always
  type: list
  elements: dict
  contains:
    app_id:
      description: The app's client id.
      type: str
    object_id:
      description: The ObjectId the app is registered with in Exchange (null when not registered).
      type: str
    display_name:
      description: The display name Exchange registered the app with (Entra's when the app is not registered).
      type: str
    entra_display_name:
      description: The app's display name in Entra ID (its service principal), null when Entra has none.
      type: str
    display_name_drift:
      description: Whether Exchange's display name differs from Entra's (the registration was made under an old
        name, or renamed on one side only).
      type: bool
    drift:
      description: The drift in words, with the cmdlet that aligns Exchange with Entra.
      type: str
      returned: when RV(service_principals[].display_name_drift) is true
    registered:
      description: Whether the app is registered in Exchange.
      type: bool
    entra_service_principal_id:
      description: The app's service principal object id in Entra ID.
      type: str
    object_id_ok:
      description: Whether the registration uses the service principal object id (false = every SMTP AUTH fails).
      type: bool
    smtp_send_as_app_consented:
      description: Whether the app holds the admin-consented Entra permission SMTP.SendAsApp (classic model).
      type: bool
    problem:
      description: What is wrong with the registration, when something is.
      type: str
      returned: when there is a problem
scopes:
  description: Management scopes (for O(app_id), those its role assignments use).
  returned: always
  type: list
  elements: dict
role_assignments:
  description:
    - C(Application SMTP.SendAsApp) role assignments (name, role, service_principal_id, role_assignee as Exchange
      prints it, scope, enabled).
    - service_principal_id is null for an assignment of an app that is not in the report.
  returned: always
  type: list
  elements: dict
mailboxes:
  description:
    - The mailboxes the report is about (in a scope, granted SendAs, asked about; every mailbox with
      O(all_mailboxes) or O(full_access_scan)) with their SMTP AUTH state (mailbox, tenant, effective), the SendAs
      holders among the reported apps and the FullAccess holders (null when not read, see O(full_access_scan)).
  returned: always
  type: list
  elements: dict
pairs:
  description: One verdict per (app, mailbox) pair.
  returned: always
  type: list
  elements: dict
  contains:
    app_id:
      description: The app.
      type: str
    service_principal_id:
      description: Its registered object id.
      type: str
    app_display_name:
      description: Who may send, by name (Entra's display name of the app, else Exchange's).
      type: str
    mailbox:
      description: The mailbox address.
      type: str
    via:
      description: C(rbac), C(classic) or null, the grant that lets the app authenticate.
      type: str
    send_as:
      description: Whether the app also holds SendAs on the mailbox.
      type: bool
    full_access:
      description: Whether the app holds FullAccess on the mailbox; null when it was not read (see O(full_access_scan)).
      type: bool
    verdict:
      description: C(status) (allowed or denied), C(allowed) and C(reasons).
      type: dict
progress:
  description: How far the per-mailbox reads went (C(-v) and more verbose only).
  returned: at -v, when there were per-mailbox reads
  type: list
  elements: str
"""

from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import run_module
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.tasks import run_exchange_smtp_access_info


def argument_spec():
    return dict(
        app_id=dict(type="str"),
        mailbox=dict(type="str"),
        mailboxes=dict(type="list", elements="str"),
        full_access_scan=dict(type="bool", default=False),
        all_mailboxes=dict(type="bool", default=False),
        organization=dict(type="str"),
    )


def main():
    run_module(argument_spec(), run_exchange_smtp_access_info)


if __name__ == "__main__":
    main()
