#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: entra_app_credential
short_description: Client secrets (with rotation), certificates and federated credentials of an Entra ID app
version_added: 0.1.0
description:
  - Manages one credential of an application registration through Microsoft Graph.
  - V(secret) adds a client secret with C(addPassword) when none with O(display_name) exists or the newest one
    expires within O(rotate_before_days); older ones are kept for O(retire_old_after) days (overlap, no downtime),
    then removed with C(removePassword). The new value is returned once, in RV(secret).
  - V(certificate) registers a public certificate, idempotent by its SHA-1 thumbprint, with its validity taken from
    the certificate.
  - V(federated) manages a federated identity credential (workload identity federation for GitHub Actions, GitLab,
    Kubernetes), idempotent by O(name).
  - A second run with the same declaration reads only and reports C(changed=false).
author:
  - o365.smtp_oauth contributors (@o365-smtp-oauth)
extends_documentation_fragment: [o365.smtp_oauth.auth, o365.smtp_oauth.requirements, o365.smtp_oauth.attributes]
attributes:
  check_mode:
    details: Sends no write request; predicts additions, rotations and removals (a predicted secret has no value).
  diff_mode:
    support: full
    details: Key ids, hints, thumbprints and dates before and after; never a secret value.
options:
  unique_name:
    description: The app, by its uniqueName (see M(o365.smtp_oauth.entra_app)).
    type: str
  app_id:
    description: The app, by its application (client) id.
    type: str
  type:
    description: The kind of credential.
    type: str
    choices: [secret, certificate, federated]
    required: true
  state:
    description: V(absent) removes the credential(s) named by O(display_name), O(key_id), the certificate or O(name).
    type: str
    choices: [present, absent]
    default: present
  display_name:
    description:
      - For secrets, the name that groups a rotation (secrets with another name are never touched). Default
        C(o365.smtp_oauth).
      - For certificates, the credential's display name (default C(CN=) of the certificate).
    type: str
  lifetime_days:
    description: Lifetime of a new secret in days; at most 730 (two years). Ignored when O(end_date) is set.
    type: int
    default: 180
  end_date:
    description: End of a new secret, ISO 8601 (C(2027-05-31)); in the future and at most two years away.
    type: str
  rotate_before_days:
    description: Add a new secret when the newest one expires within this many days.
    type: int
    default: 30
  retire_old_after:
    description:
      - Days the previous secrets stay valid after a new one was added, so consumers can switch without downtime.
        Expired secrets of the same O(display_name) are always removed.
    type: int
    default: 7
  key_id:
    description: With O(state=absent) and O(type=secret), remove only this secret.
    type: str
  public_certificate_path:
    description:
      - Path of the public certificate to register (PEM, DER or base64 DER) on the host running the module.
      - Not O(certificate_path), which is the certificate the module itself authenticates with.
    type: path
  public_certificate_content:
    description: The public certificate itself (PEM or base64 DER).
    type: str
  thumbprint:
    description: With O(state=absent), the SHA-1 thumbprint of the certificate to remove.
    type: str
  name:
    description: The federated credential's name (unique per app, immutable).
    type: str
  issuer:
    description: The external identity provider, for example C(https://token.actions.githubusercontent.com).
    type: str
  subject:
    description: The subject the external token must carry, for example C(repo:org/repo:ref:refs/heads/main).
    type: str
  audiences:
    description:
      - Audiences the external token must carry.
      - Default the audience Microsoft documents for the O(cloud) - C(api://AzureADTokenExchange) (public),
        C(api://AzureADTokenExchangeUSGov) (usgov, dod), C(api://AzureADTokenExchangeChina) (china).
    type: list
    elements: str
  description:
    description: The federated credential's description.
    type: str
  verify:
    description:
      - After adding a secret, wait (at most O(wait_timeout)) until it can actually obtain a token; new secrets
        fail for seconds after creation. The task fails if it cannot, still returning the secret.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for Entra replication (the app, a new credential).
    type: int
    default: 120
notes:
  - The new secret value is in the registered result only. The collection's action plugin of the same name marks
    a result that carries a secret C(_ansible_no_log) (a module cannot, ansible-core strips that key from module
    returns), so Ansible censors the whole result in every callback and log at any verbosity, and hides the diff,
    while the registered variable keeps it. Store it at once (for example in a vault); it cannot be read again.
"""

EXAMPLES = r"""
- name: A client secret, rotated 30 days before it expires, old one kept 7 days
  o365.smtp_oauth.entra_app_credential:
    unique_name: smtp-relay-prod
    type: secret
    display_name: relay
    lifetime_days: 180
  register: cred

- name: Store a new secret (only present when one was created)
  ansible.builtin.copy:
    dest: /etc/relay/secret
    content: "{{ cred.secret }}"
    mode: "0600"
  no_log: true
  when: cred.secret is defined

- name: A certificate
  o365.smtp_oauth.entra_app_credential:
    unique_name: smtp-relay-prod
    type: certificate
    public_certificate_path: files/relay.crt

- name: GitHub Actions, main branch of org/repo
  o365.smtp_oauth.entra_app_credential:
    unique_name: ci-notifier
    type: federated
    name: github-main
    issuer: https://token.actions.githubusercontent.com
    subject: repo:org/repo:ref:refs/heads/main

- name: GitLab CI, protected branch main of group/project
  o365.smtp_oauth.entra_app_credential:
    unique_name: ci-notifier
    type: federated
    name: gitlab-main
    issuer: https://gitlab.com
    subject: project_path:group/project:ref_type:branch:ref:main
    audiences: [https://gitlab.com]
"""

RETURN = r"""
secret:
  description: The new secret's value. Only when a secret was created; censored in output, kept when registered.
  returned: when a secret was added
  type: str
key_id:
  description: The new secret's key id.
  returned: when a secret was added
  type: str
hint:
  description: The first characters of the new secret, as Entra shows them.
  returned: when a secret was added
  type: str
end:
  description: End of validity of the new secret or certificate.
  returned: when a secret or certificate was added
  type: str
verified:
  description: Whether the new secret obtained a token.
  returned: when O(verify=true) and a secret was added
  type: bool
credentials:
  description: The app's secrets of O(display_name), or its certificates, after the run (no values).
  returned: for secrets and certificates
  type: list
  elements: dict
thumbprint:
  description: The certificate's SHA-1 thumbprint.
  returned: for certificates
  type: str
credential:
  description: The federated credential after the run.
  returned: for federated credentials with O(state=present)
  type: dict
id:
  description: The federated credential's id.
  returned: for federated credentials with O(state=present)
  type: str
name:
  description: The federated credential's name.
  returned: for federated credentials
  type: str
type:
  description: The credential type.
  returned: always
  type: str
display_name:
  description: The secrets' display name.
  returned: for secrets
  type: str
app_id:
  description: The app's application (client) id.
  returned: always
  type: str
unique_name:
  description: The app's uniqueName.
  returned: always
  type: str
changes:
  description: What was (or in check mode would be) changed, in words.
  returned: always
  type: list
  elements: str
state:
  description: The requested state.
  returned: always
  type: str
"""

from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import run_module
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.tasks import run_entra_app_credential


def argument_spec():
    return dict(
        unique_name=dict(type="str"),
        app_id=dict(type="str"),
        type=dict(type="str", choices=["secret", "certificate", "federated"], required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        display_name=dict(type="str"),
        lifetime_days=dict(type="int", default=180),
        end_date=dict(type="str"),
        rotate_before_days=dict(type="int", default=30),
        retire_old_after=dict(type="int", default=7),
        key_id=dict(type="str", no_log=False),
        public_certificate_path=dict(type="path"),
        public_certificate_content=dict(type="str"),
        thumbprint=dict(type="str"),
        name=dict(type="str"),
        issuer=dict(type="str"),
        subject=dict(type="str"),
        audiences=dict(type="list", elements="str"),
        description=dict(type="str"),
        verify=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=120),
    )


def main():
    run_module(
        argument_spec(), run_entra_app_credential,
        required_one_of=[("unique_name", "app_id")],
        mutually_exclusive=[("public_certificate_path", "public_certificate_content")],
        required_if=[("type", "certificate", ("public_certificate_path", "public_certificate_content", "thumbprint"),
                      True)],
    )


if __name__ == "__main__":
    main()
