#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: exchange_smtp_access
short_description: Let an Entra ID app send mail as Exchange Online mailboxes over SMTP with OAuth
version_added: 0.1.0
description:
  - Declares the Exchange Online side of app-only SMTP AUTH (SASL XOAUTH2) for one app, that is its service principal
    registered in Exchange, the permission to send as each declared mailbox, SendAs where the From address differs,
    and SMTP AUTH enabled for each mailbox.
  - Talks to the Exchange Online admin REST endpoint that the ExchangeOnlineManagement PowerShell module uses
    (C(/adminapi/beta/{tenant}/InvokeCommand)) with an app-only token for the Exchange resource; no PowerShell.
    The admin app needs a one-time bootstrap (C(Exchange.ManageAsApp) and an Exchange admin role), see
    C(docs/exchange-bootstrap.md).
  - Finds the app's service principal object id itself through Microsoft Graph. Exchange accepts the application
    object id too and then every SMTP AUTH fails with C(535 5.7.3); this module refuses that id in O(object_id)
    and repairs an existing registration made with it.
  - Two authorisation models. C(rbac) (default, Microsoft's current advice) creates a management scope over the
    declared mailboxes (or a group) and a role assignment C(Application SMTP.SendAsApp) scoped to it; the app must
    then not hold the Entra permission C(SMTP.SendAsApp). C(classic) grants FullAccess on each mailbox and needs the
    Entra permission C(SMTP.SendAsApp) with admin consent (see M(o365.smtp_oauth.entra_app)).
  - Returns, per mailbox, what changed and the verdict (allowed, pending, denied with reasons). Exchange applies
    permission changes after a delay (minutes, sometimes more than an hour); a mailbox changed in this run is
    C(pending), also when O(wait_for_effect) saw the grant in the admin API, because SMTP AUTH answers from
    Exchange's permission cache, which lags behind the admin API. The only proof that the app can send is an
    XOAUTH2 login with the sending app's own credential - M(o365.smtp_oauth.send_mail) in check mode, with
    C(retries)/C(until) (see the examples).
  - A second run with the same declaration sends only read cmdlets and reports C(changed=false). Its cost is a few
    batched reads for all declared mailboxes (C(Get-CASMailbox -Filter) over their addresses, one paged
    C(Get-RecipientPermission -Trustee)) plus one call per mailbox where Exchange answers only per mailbox
    (C(Test-ServicePrincipalAuthorization) in the RBAC model, C(Get-MailboxPermission) in the classic model), four
    at a time, honouring C(Retry-After). FullAccess is not read in the RBAC model unless O(purge), O(state=absent)
    or the app's Entra C(SMTP.SendAsApp) permission make it matter. At C(-v) the result's RV(progress) says how
    far the per-mailbox reads went.
author:
  - o365.smtp_oauth contributors (@o365-smtp-oauth)
extends_documentation_fragment: [o365.smtp_oauth.auth, o365.smtp_oauth.requirements, o365.smtp_oauth.attributes]
attributes:
  check_mode:
    details: Sends only read cmdlets (Get-*, Test-*); returns the cmdlets it would run in RV(actions) and the
      predicted verdicts.
  diff_mode:
    support: full
    details: Before and after of the declared state (registration, scope, role assignments, per-mailbox FullAccess,
      SendAs and SMTP AUTH).
options:
  app_id:
    description: The sending app's Application (client) id.
    type: str
    required: true
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
  object_id:
    description:
      - The object id of the app's service principal (Enterprise applications), if you want it checked.
      - Optional; the module looks it up. An application object id (App registrations) is refused with the right id
        in the message.
    type: str
  authorization_model:
    description:
      - C(rbac) RBAC for Applications (management scope + role assignment C(Application SMTP.SendAsApp)).
      - C(classic) FullAccess on each mailbox plus the Entra permission C(SMTP.SendAsApp).
      - The default depends on O(cloud) - V(rbac) for V(public), V(classic) for V(usgov), V(dod) and V(china).
        Microsoft announces SMTP over RBAC for Applications for Worldwide only (MC1158911); the classic model works
        in every cloud. V(rbac) given explicitly on another cloud is tried, with a warning.
      - With V(rbac) the module first checks that the tenant has the role C(Application SMTP.SendAsApp) (a GCC
        tenant on the public cloud, or one Microsoft has not reached yet, has none) and fails before any change,
        telling you to set V(classic).
    type: str
    choices: [rbac, classic]
  mailboxes:
    description: The mailboxes the app authenticates as (the C(user=) of XOAUTH2).
    type: list
    elements: dict
    default: []
    suboptions:
      address:
        description: The mailbox's primary SMTP address (or any of its addresses).
        type: str
        required: true
      send_as:
        description:
          - Grant the app SendAs on this recipient (C(Add-RecipientPermission)), needed when the app authenticates
            as another mailbox and uses this address as From. C(false) removes a SendAs this app has on it.
        type: bool
        default: false
      smtp_auth:
        description:
          - C(enabled) SMTP AUTH must be in effect for the mailbox; when the mailbox follows a tenant that disabled
            it, the mailbox is set to C(SmtpClientAuthenticationDisabled=false).
          - C(inherit) the mailbox follows the tenant setting (C(SmtpClientAuthenticationDisabled=$null)).
          - C(disabled) the mailbox refuses SMTP AUTH.
        type: str
        choices: [enabled, inherit, disabled]
        default: enabled
  scope_name:
    description:
      - Name of the management scope and of the role assignment (RBAC model).
      - Defaults to C(SMTP OAuth <app_id>).
    type: str
  group:
    description:
      - RBAC model only. Scope the role assignment to the members of this mail-enabled security group (name,
        address or distinguished name) instead of the declared mailboxes.
    type: str
  state:
    description:
      - C(present) grants what is declared.
      - C(absent) removes the app's role assignments, the scope, FullAccess and SendAs on the declared mailboxes and
        the app's registration in Exchange. SMTP AUTH settings of mailboxes are left as they are.
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - Also remove what this app holds and the task does not declare (other C(Application SMTP.SendAsApp) role
        assignments, FullAccess and SendAs on other recipients).
      - Finding FullAccess on undeclared mailboxes reads every mailbox's permissions; slow in large tenants.
    type: bool
    default: false
  wait_for_effect:
    description:
      - After a change, poll C(Test-ServicePrincipalAuthorization) until Exchange's admin API shows the role
        assignment in effect for every declared mailbox, for at most O(wait_timeout) seconds (RBAC model), and
        report it per mailbox in RV(mailboxes[].admin_api_in_effect). On timeout a warning says so.
      - This is not proof that SMTP AUTH accepts the app yet (Exchange's permission cache lags behind the admin
        API); the verdict of a changed mailbox stays C(pending). Prove it with M(o365.smtp_oauth.send_mail) in
        check mode (see the examples).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds O(wait_for_effect) waits at most.
      - Also bounds (to at most 60 seconds) the wait for a service principal created just before (for example by
        M(o365.smtp_oauth.entra_app)) to replicate in Entra ID.
    type: int
    default: 300
notes:
  - The admin API this module uses is the one the ExchangeOnlineManagement module uses; Microsoft does not document
    it as a public API.
  - Check mode and diff mode are supported; secrets never appear in the output.
seealso:
  - module: o365.smtp_oauth.exchange_smtp_access_info
  - module: o365.smtp_oauth.entra_app
"""

EXAMPLES = r"""
- name: Let the relay app send as two mailboxes (RBAC for Applications)
  o365.smtp_oauth.exchange_smtp_access:
    tenant_id: "{{ tenant_id }}"
    client_id: "{{ admin_client_id }}"
    certificate_path: /etc/o365/admin.pem
    app_id: "{{ relay_app.app_id }}"
    mailboxes:
      - address: noreply@contoso.onmicrosoft.com
      - address: alerts@contoso.onmicrosoft.com
        smtp_auth: enabled
  register: access

- name: Classic model, with SendAs on a second address, and wait until Exchange applies it
  o365.smtp_oauth.exchange_smtp_access:
    app_id: "{{ printer_app_id }}"
    authorization_model: classic
    mailboxes:
      - address: printer@contoso.onmicrosoft.com
      - address: reports@contoso.onmicrosoft.com
        send_as: true

- name: Members of a group, waiting (bounded) for the role assignment to apply
  o365.smtp_oauth.exchange_smtp_access:
    app_id: "{{ app_id }}"
    group: smtp-senders
    mailboxes:
      - address: alerts@contoso.onmicrosoft.com
    wait_for_effect: true
    wait_timeout: 600

# The proof: an XOAUTH2 login with the sending app's own credential, nothing sent. Exchange's permission cache can
# take more than an hour after a change, so retry for up to 90 minutes.
- name: Prove that the sending app can log in as the mailbox over SMTP
  o365.smtp_oauth.send_mail:
    client_id: "{{ app_id }}"
    client_secret: "{{ app_secret }}"
    sender: alerts@contoso.onmicrosoft.com
    to: alerts@contoso.onmicrosoft.com
  check_mode: true
  register: smtp_proof
  until: smtp_proof is succeeded
  retries: 45
  delay: 120

- name: Remove the app's Exchange access
  o365.smtp_oauth.exchange_smtp_access:
    app_id: "{{ app_id }}"
    mailboxes:
      - address: noreply@contoso.onmicrosoft.com
    state: absent
"""

RETURN = r"""
app_id:
  description: The app's client id.
  returned: always
  type: str
service_principal_id:
  description: The object id of the app's service principal, as registered in Exchange.
  returned: always
  type: str
authorization_model:
  description: The model applied, O(authorization_model) or the default for O(cloud) when it was not set.
  returned: always
  type: str
  sample: rbac
scope_name:
  description: The management scope and role assignment name (RBAC model), else null.
  returned: always
  type: str
actions:
  description: The write cmdlets run (or, in check mode, that would run), in order. Empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: ["New-ServicePrincipal -AppId '...' -ObjectId '...' -DisplayName 'relay'"]
mailboxes:
  description: Per declared mailbox, what changed and whether the app may send as it now (empty for state=absent).
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: The mailbox address as declared (lower case).
      type: str
    changes:
      description: What this run changed for this mailbox.
      type: list
      elements: str
    full_access:
      description:
        - Whether the app holds FullAccess on the mailbox (after the run).
        - Null in the RBAC model when it was not read (see the description).
      type: bool
    send_as:
      description: Whether the app holds SendAs on the mailbox (after the run).
      type: bool
    smtp_auth:
      description: SMTP AUTH in three states, C(mailbox) (enabled, disabled, inherit), C(tenant) and C(effective).
      type: dict
    in_scope:
      description: Whether an C(Application SMTP.SendAsApp) role assignment covers the mailbox (RBAC), else null.
      type: bool
    admin_api_in_effect:
      description:
        - For a mailbox this run changed with O(wait_for_effect), whether Exchange's admin API showed the grant in
          effect before O(wait_timeout); null for a mailbox this run did not change.
        - Not proof that SMTP AUTH accepts the app yet (see the description).
      type: bool
    verdict:
      description: C(status) (allowed, pending, denied), C(allowed) (bool) and C(reasons) (list of str).
      type: dict
diff:
  description: Before and after of the declared state, when something changed and diff mode is on.
  returned: changed
  type: dict
progress:
  description: How far the per-mailbox reads went (C(-v) and more verbose only).
  returned: at -v, when there were per-mailbox reads
  type: list
  elements: str
"""

from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import run_module
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.tasks import run_exchange_smtp_access


def argument_spec():
    return dict(
        app_id=dict(type="str", required=True),
        object_id=dict(type="str"),
        organization=dict(type="str"),
        authorization_model=dict(type="str", choices=["rbac", "classic"]),
        mailboxes=dict(type="list", elements="dict", default=[], options=dict(
            address=dict(type="str", required=True),
            send_as=dict(type="bool", default=False),
            smtp_auth=dict(type="str", choices=["enabled", "inherit", "disabled"], default="enabled"),
        )),
        scope_name=dict(type="str"),
        group=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        purge=dict(type="bool", default=False),
        wait_for_effect=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
    )


def main():
    run_module(argument_spec(), run_exchange_smtp_access)


if __name__ == "__main__":
    main()
