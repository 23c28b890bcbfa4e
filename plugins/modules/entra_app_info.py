#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: entra_app_info
short_description: Report Entra ID apps for auditors, with their permissions, consent and credential expiry
version_added: 0.1.0
description:
  - Reads an application registration, its service principal, owners, declared permissions and consented
    application permissions (by name), every secret and certificate with days left, and its federated
    credentials, through Microsoft Graph.
  - One app (O(unique_name), O(app_id) or O(display_name)) is reported in RV(app); several apps (O(app_ids),
    O(smtp_senders)) in RV(apps), with every credential of theirs that expires within O(warn_days) in
    RV(expiring). The collection's C(credential_expiry) playbook uses the latter.
  - Never returns a secret value (Graph cannot return one). Every list is sorted, so two runs can be compared.
  - Warns about credentials that expired or expire within O(warn_days).
author:
  - o365.smtp_oauth contributors (@o365-smtp-oauth)
extends_documentation_fragment: [o365.smtp_oauth.auth, o365.smtp_oauth.requirements, o365.smtp_oauth.attributes]
attributes:
  check_mode:
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
options:
  unique_name:
    description: The app, by its uniqueName.
    type: str
  app_id:
    description: The app, by its application (client) id.
    type: str
  display_name:
    description: The app, by display name; fails, listing them, when several apps share it.
    type: str
  app_ids:
    description:
      - Report several apps, by application (client) id. An id with no application is listed in
        RV(missing_app_ids) and warned about, not failed.
      - Cannot be combined with O(unique_name), O(app_id) or O(display_name).
    type: list
    elements: str
  smtp_senders:
    description:
      - Also report every app whose service principal holds the admin-consented Office 365 Exchange Online
        application permission C(SMTP.SendAsApp) (the classic model), read from that API's app role assignments.
      - Apps that send through RBAC for Applications hold no Entra permission; list them in O(app_ids) (the
        RV(o365.smtp_oauth.exchange_smtp_access_info#module:service_principals) of
        M(o365.smtp_oauth.exchange_smtp_access_info) name them).
      - Cannot be combined with O(unique_name), O(app_id) or O(display_name).
    type: bool
    default: false
  warn_days:
    description: Warn about credentials that expire within this many days.
    type: int
    default: 30
seealso:
  - module: o365.smtp_oauth.exchange_smtp_access_info
"""

EXAMPLES = r"""
- name: Audit the relay's app
  o365.smtp_oauth.entra_app_info:
    unique_name: smtp-relay-prod
    warn_days: 45
  register: audit

- name: Fail when a credential is about to expire
  ansible.builtin.assert:
    that: audit.app.expiring_credentials | length == 0
    fail_msg: "{{ audit.app.findings }}"

- name: Every app that may send over SMTP, by Entra consent or because Exchange has it registered
  o365.smtp_oauth.entra_app_info:
    smtp_senders: true
    app_ids: "{{ exchange_report.service_principals | map(attribute='app_id') | list }}"
    warn_days: 21
  register: senders

- name: Name each credential that expires within three weeks
  ansible.builtin.debug:
    msg: "{{ item.app_name }} ({{ item.app_id }}) {{ item.type }} {{ item.key_id }} ends {{ item.end }}"
  loop: "{{ senders.expiring }}"
"""

RETURN = r"""
exists:
  description: Whether the app exists.
  returned: when one app is named (O(unique_name), O(app_id), O(display_name))
  type: bool
app:
  description: The report; only C(exists) when the app does not exist.
  returned: when one app is named (O(unique_name), O(app_id), O(display_name))
  type: dict
  contains:
    exists:
      description: Whether the app exists.
      type: bool
    unique_name:
      description: The uniqueName.
      type: str
    app_id:
      description: The application (client) id.
      type: str
    object_id:
      description: The application object's id.
      type: str
    display_name:
      description: The display name.
      type: str
    description:
      description: The description.
      type: str
    notes:
      description: The notes.
      type: str
    sign_in_audience:
      description: The sign-in audience.
      type: str
    tags:
      description: The tags, sorted.
      type: list
      elements: str
    created:
      description: When the app was created.
      type: str
    owners:
      description: Owners (user principal names, or ids), sorted.
      type: list
      elements: str
    service_principal_id:
      description: The service principal's object id (the id Exchange needs); null when it has none.
      type: str
    service_principal_enabled:
      description: Whether the service principal may sign in.
      type: bool
    declared_permissions:
      description: Required permissions on the app, by API and name, with C(type) application or delegated.
      type: list
      elements: dict
    consented_permissions:
      description: Application permissions granted to the service principal (admin consent), by API and name.
      type: list
      elements: dict
    declared_not_consented:
      description: "Declared application permissions without consent, each as C(<api>: <permission>)."
      type: list
      elements: str
    consented_not_declared:
      description: "Consented application permissions the app does not declare, each as C(<api>: <permission>)."
      type: list
      elements: str
    smtp_permission_in_entra:
      description: Whether the app declares Office 365 Exchange Online C(SMTP.SendAsApp) (classic model).
      type: bool
    credentials:
      description:
        - Secrets and certificates with C(type), C(key_id), C(display_name), C(hint) or C(thumbprint),
          C(start), C(end), C(days_left), C(end_timestamp); sorted by type, end, key id.
        - C(end_timestamp) is C(end) in seconds since the Unix epoch (UTC), null without an end.
      type: list
      elements: dict
    federated_credentials:
      description: Federated identity credentials with C(name), C(issuer), C(subject), C(audiences).
      type: list
      elements: dict
    expiring_credentials:
      description: Key ids of credentials expired or expiring within O(warn_days).
      type: list
      elements: str
    findings:
      description: The warnings, in words (also emitted as task warnings).
      type: list
      elements: str
    warn_days:
      description: The threshold used.
      type: int
apps:
  description:
    - One report per app, shaped as RV(app), sorted by display name then app id, each with C(selected_by)
      (C(app_ids), C(smtp_senders) or both). Each warning in RV(findings) starts with its app's name and id.
  returned: when O(app_ids) or O(smtp_senders) is given
  type: list
  elements: dict
missing_app_ids:
  description: Ids in O(app_ids) that no application of the tenant has.
  returned: when O(app_ids) or O(smtp_senders) is given
  type: list
  elements: str
expiring:
  description: Every secret and certificate of RV(apps) expired or expiring within O(warn_days), soonest first.
  returned: when O(app_ids) or O(smtp_senders) is given
  type: list
  elements: dict
  contains:
    app_id:
      description: The app's client id.
      type: str
    app_name:
      description: The app's display name.
      type: str
    unique_name:
      description: The app's uniqueName (null when it has none).
      type: str
    type:
      description: C(secret) or C(certificate).
      type: str
    key_id:
      description: The credential's key id (never its value).
      type: str
    display_name:
      description: The credential's display name.
      type: str
    end:
      description: Its end date (UTC, ISO 8601).
      type: str
    end_timestamp:
      description: Its end in seconds since the Unix epoch.
      type: int
    days_left:
      description: Days left, negative once expired.
      type: int
findings:
  description: The warnings of every app in RV(apps), in words (also emitted as task warnings).
  returned: when O(app_ids) or O(smtp_senders) is given
  type: list
  elements: str
warn_days:
  description: The threshold used.
  returned: when O(app_ids) or O(smtp_senders) is given
  type: int
"""

from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import run_module
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.tasks import run_entra_app_info


def argument_spec():
    return dict(
        unique_name=dict(type="str"),
        app_id=dict(type="str"),
        display_name=dict(type="str"),
        app_ids=dict(type="list", elements="str"),
        smtp_senders=dict(type="bool", default=False),
        warn_days=dict(type="int", default=30),
    )


def main():
    run_module(argument_spec(), run_entra_app_info,
               required_one_of=[("unique_name", "app_id", "display_name", "app_ids", "smtp_senders")])


if __name__ == "__main__":
    main()
