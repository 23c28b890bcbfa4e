#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: send_mail
short_description: Send mail through Exchange Online SMTP with OAuth 2.0 (SASL XOAUTH2)
version_added: 0.1.0
description:
  - Sends one message, or many over one authenticated connection, to Exchange Online SMTP client submission
    (C(smtp.office365.com:587)) with an app-only OAuth token (SASL XOAUTH2), after Basic authentication for
    SMTP AUTH is gone.
  - Options are named as in M(community.general.mail). Unlike it, the TLS certificate is always verified, the
    session never falls back to clear text, the task fails when a recipient is refused, and a message is never
    sent twice once the server accepted it.
  - Every refusal is explained with its likely cause and the fix (for example C(535 5.7.3) checked against the
    token's claims, C(5.7.139), C(5.7.60) SendAs, C(5.2.0) quota, C(4.3.2) connections).
  - "Sending mail is not idempotent: every run that is not in check mode sends the messages again."
author:
  - o365.smtp_oauth contributors (@o365-smtp-oauth)
extends_documentation_fragment: [o365.smtp_oauth.auth, o365.smtp_oauth.requirements, o365.smtp_oauth.attributes]
attributes:
  check_mode:
    details: Connects, starts TLS, authenticates and quits without sending anything; proves credentials and
      Exchange permissions.
  diff_mode:
    support: none
options:
  host:
    description:
      - The SMTP server. Defaults to the E(O365_SMTP_HOST) environment variable, else the Exchange Online SMTP host
        of O(cloud) as Microsoft's endpoint lists name it - C(smtp.office365.com) (V(public)), C(outlook.office365.us)
        (V(usgov)), C(outlook-dod.office365.us) (V(dod)), C(smtp.partner.outlook.cn) (V(china)).
    type: str
  port:
    description:
      - The SMTP port, or the E(O365_SMTP_PORT) environment variable; V(587) when neither is set.
    type: int
  secure:
    description:
      - C(starttls) upgrades the connection with STARTTLS and fails if the server does not offer it.
      - C(always) uses implicit TLS from the first byte (port 465 servers; Exchange Online does not offer it).
      - C(never) is a plain connection, allowed only without authentication (an internal relay); it can never
        carry a token.
      - C(try) is accepted for M(community.general.mail) playbooks (its default) and means C(starttls) with a
        warning. A token is never sent without TLS, so there is no plain-text fallback.
    type: str
    choices: [starttls, always, never, try]
    default: starttls
  sender:
    description:
      - The From address, C(user@example.com) or C(Display Name <user@example.com>). Also the envelope sender.
      - Required unless every entry of O(messages) has its own.
    type: str
    aliases: [from]
  mailbox:
    description:
      - The mailbox the app authenticates as (the XOAUTH2 C(user=)). Defaults to the address of O(sender).
      - A O(sender) other than the mailbox needs SendAs on that address.
    type: str
  to:
    description: Recipients, each C(user@example.com) or C(Name <user@example.com>).
    type: list
    elements: str
    default: []
    aliases: [recipients]
  cc:
    description: Carbon-copy recipients.
    type: list
    elements: str
    default: []
  bcc:
    description: Blind carbon-copy recipients; they receive the message but appear in no header.
    type: list
    elements: str
    default: []
  reply_to:
    description: Reply-To addresses.
    type: list
    elements: str
    default: []
  subject:
    description: The subject. Line breaks are refused (header injection).
    type: str
    default: ''
    aliases: [msg]
  body:
    description: The body. Defaults to the subject, as in M(community.general.mail).
    type: str
  subtype:
    description: Whether O(body) is plain text or HTML.
    type: str
    choices: [plain, html]
    default: plain
  body_html:
    description: An HTML body sent with O(body) as its plain-text alternative (multipart/alternative).
    type: str
  charset:
    description: The character set of the body.
    type: str
    default: utf-8
  attach:
    description: Paths of files to attach, on the host running the module; read before connecting.
    type: list
    elements: path
    default: []
  headers:
    description:
      - Extra headers, as a dictionary or as a list of C(Name=value) strings (as in M(community.general.mail)).
      - Headers that have their own option (From, To, Cc, Subject, Content-*) are refused. C(Reply-To) is
        accepted (as in M(community.general.mail)'s examples) and added to O(reply_to).
    type: raw
  message_id_domain:
    description:
      - The domain of the generated Message-ID headers, as in M(community.general.mail). Defaults to the domain
        of the sender's address.
    type: str
  username:
    description:
      - Not supported; accepted only to refuse it with what to write instead. send_mail authenticates with
        OAuth. Set O(client_id) and a credential; see the guide C(docs/migrating-from-community-general-mail.md).
    type: str
  password:
    description:
      - Not supported, as O(username).
    type: str
  messages:
    description:
      - Several messages sent over one authenticated connection, each with the keys below. Keys not given take
        the value of the top-level option of the same name.
    type: list
    elements: dict
    suboptions:
      sender:
        description: The From address.
        type: str
        aliases: [from]
      to:
        description: Recipients.
        type: list
        elements: str
      cc:
        description: Carbon-copy recipients.
        type: list
        elements: str
      bcc:
        description: Blind carbon-copy recipients.
        type: list
        elements: str
      reply_to:
        description: Reply-To addresses.
        type: list
        elements: str
      subject:
        description: The subject.
        type: str
      body:
        description: The body.
        type: str
      subtype:
        description: plain or html.
        type: str
        choices: [plain, html]
      body_html:
        description: An HTML alternative.
        type: str
      charset:
        description: The character set.
        type: str
      attach:
        description: Files to attach.
        type: list
        elements: path
      headers:
        description: Extra headers.
        type: raw
  timeout:
    description: Seconds to wait for the server on each step.
    type: int
    default: 30
  ehlohost:
    description: The name announced in EHLO. Defaults to this host's fully qualified name.
    type: str
  rate_limit:
    description:
      - At most this many messages per minute (Exchange Online allows 30 per mailbox). V(0) lifts the limit,
        for a relay or High Volume Email.
    type: int
    default: 30
  retries:
    description: How many times a message is tried again after a temporary failure (4xx, lost connection). A
      recipient refused with a 4xx is tried again alone; recipients already accepted never get a second copy.
    type: int
    default: 3
  retry_delay:
    description: The first wait before a retry, in seconds; it doubles with each retry (with jitter), at most 60.
    type: float
    default: 2.0
  fail_on_refused:
    description: Fail the task when any recipient was refused, including a message whose every recipient was
      refused (the accepted ones still get the message). With V(false) refusals are only reported in
      RV(messages).
    type: bool
    default: true
  resend_uncertain:
    description:
      - When the connection is lost after the whole message was sent but before the server answered, the
        server may or may not have accepted it. By default it is not sent again (no duplicates) and the task
        fails naming its Message-ID. V(true) sends it again with the same Message-ID (no loss, maybe twice).
    type: bool
    default: false
  max_message_size:
    description: Largest message accepted before connecting, in megabytes (Exchange Online's default is 35).
    type: int
    default: 35
  debug:
    description: Return the SMTP conversation in RV(transcript), with the token and secrets redacted.
    type: bool
    default: false
notes:
  - The app needs the right to send as the mailbox in Exchange Online; see M(o365.smtp_oauth.exchange_smtp_access).
  - Exchange Online refuses tokens that are about to expire; the module renews the token and reconnects during
    long runs.
seealso:
  - module: community.general.mail
  - module: o365.smtp_oauth.exchange_smtp_access
"""

EXAMPLES = r"""
- name: Tell the team the deployment is done
  o365.smtp_oauth.send_mail:
    tenant_id: "{{ tenant_id }}"
    client_id: "{{ client_id }}"
    client_secret: "{{ client_secret }}"
    sender: Deploy Bot <deploy@contoso.com>
    to:
      - Ops <ops@contoso.com>
    subject: Deployed {{ version }}
    body: All hosts run {{ version }}.

- name: Check that the app may send as the mailbox, without sending
  o365.smtp_oauth.send_mail:
    sender: deploy@contoso.com
    to: nobody@contoso.com
  check_mode: true

- name: HTML report with a text alternative and an attachment, workload identity in CI (no secret)
  o365.smtp_oauth.send_mail:
    # the job's own OIDC token (GitHub Actions with `permissions: id-token: write`, or GitLab's id_tokens:)
    federated_token_source: auto
    sender: ci@contoso.com
    to: dev@contoso.com
    subject: Nightly report
    body: See the HTML version.
    body_html: "<h1>Nightly report</h1><p>All green.</p>"
    attach:
      - /tmp/report.pdf

# owners: [{email: alice@contoso.com, hosts: [web1, web2]}, {email: bob@contoso.com, hosts: [db1]}]
- name: One message per owner
  ansible.builtin.set_fact:
    owner_messages: "{{ owner_messages | default([]) + [{'to': [item.email], 'body': 'Your hosts: ' ~ (item.hosts | join(', '))}] }}"
  loop: "{{ owners }}"

- name: Send them over one connection
  o365.smtp_oauth.send_mail:
    sender: inventory@contoso.com
    subject: Your hosts
    messages: "{{ owner_messages }}"
    rate_limit: 30
"""

RETURN = r"""
messages:
  description: One result per message, in order.
  returned: always
  type: list
  elements: dict
  contains:
    message_id:
      description: The Message-ID header of the message.
      type: str
      sample: <171234.5678@contoso.com>
    status:
      description: sent, refused (no recipient accepted), failed, uncertain (connection lost before the final
        answer; not resent), not_sent (the run stopped at an earlier message, for example its token could not
        be renewed), or check_mode.
      type: str
      sample: sent
    accepted:
      description: Recipients the server accepted.
      type: list
      elements: str
    refused:
      description: Refused recipients with the server's code and reply.
      type: dict
    code:
      description: The server's final reply code to the message.
      type: int
      sample: 250
    reply:
      description: The server's final reply text.
      type: str
    attempts:
      description: How many times the message was tried.
      type: int
sent_count:
  description:
    - How many messages the server accepted.
    - Renamed from C(sent) (a breaking change, see the changelog) together with RV(failed_count), so that no
      result key is one Ansible reads itself.
  returned: always
  type: int
  sample: 1
failed_count:
  description:
    - How many messages were not accepted (failed, refused, uncertain or not_sent).
    - Renamed from C(failed) (a breaking change) because Ansible read any non-zero C(failed) as a task failure,
      even with O(fail_on_refused=false).
  returned: always
  type: int
  sample: 0
retry_count:
  description:
    - How many retries the run needed in all (temporary failures, lost connections).
    - Renamed from C(retries) (a breaking change) because Ansible sets C(retries) itself in a task with C(until).
  returned: when messages were sent (not in check mode)
  type: int
  sample: 0
token_renewals:
  description: How many times the token was renewed and the session reconnected during the run.
  returned: when messages were sent (not in check mode)
  type: int
  sample: 0
message_id:
  description: The Message-ID of the first message (convenient for a single message).
  returned: success
  type: str
connections:
  description: How many SMTP connections were opened (reconnects after drops and token renewals included).
  returned: always
  type: int
  sample: 1
mailbox:
  description: The mailbox the app authenticated as.
  returned: always
  type: str
  sample: deploy@contoso.com
transcript:
  description: The SMTP conversation with the token and secrets redacted.
  returned: when O(debug=true)
  type: list
  elements: str
"""

from ansible.module_utils.basic import env_fallback
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.options import options_choosing_a_kind
from ansible_collections.o365.smtp_oauth.plugins.module_utils._module import run_module
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.task import send_mail_task


def argument_spec():
    message_options = dict(
        sender=dict(type="str", aliases=["from"]),
        to=dict(type="list", elements="str"),
        cc=dict(type="list", elements="str"),
        bcc=dict(type="list", elements="str"),
        reply_to=dict(type="list", elements="str"),
        subject=dict(type="str"),
        body=dict(type="str"),
        subtype=dict(type="str", choices=["plain", "html"]),
        body_html=dict(type="str"),
        charset=dict(type="str"),
        attach=dict(type="list", elements="path"),
        headers=dict(type="raw"),
    )
    return dict(
        host=dict(type="str", fallback=(env_fallback, ["O365_SMTP_HOST"])),
        port=dict(type="int", fallback=(env_fallback, ["O365_SMTP_PORT"])),
        secure=dict(type="str", choices=["starttls", "always", "never", "try"], default="starttls"),
        sender=dict(type="str", aliases=["from"]),
        mailbox=dict(type="str"),
        to=dict(type="list", elements="str", default=[], aliases=["recipients"]),
        cc=dict(type="list", elements="str", default=[]),
        bcc=dict(type="list", elements="str", default=[]),
        reply_to=dict(type="list", elements="str", default=[]),
        subject=dict(type="str", default="", aliases=["msg"]),
        body=dict(type="str"),
        subtype=dict(type="str", choices=["plain", "html"], default="plain"),
        body_html=dict(type="str"),
        charset=dict(type="str", default="utf-8"),
        attach=dict(type="list", elements="path", default=[]),
        headers=dict(type="raw"),
        message_id_domain=dict(type="str"),
        # community.general.mail's Basic-auth options, refused with what to write instead.
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        messages=dict(type="list", elements="dict", options=message_options),
        timeout=dict(type="int", default=30),
        ehlohost=dict(type="str"),
        rate_limit=dict(type="int", default=30),
        retries=dict(type="int", default=3),
        retry_delay=dict(type="float", default=2.0),
        fail_on_refused=dict(type="bool", default=True),
        resend_uncertain=dict(type="bool", default=False),
        max_message_size=dict(type="int", default=35),
        debug=dict(type="bool", default=False),
    )


def send_mail(module):
    """The module body: the messages through Exchange's SMTP AUTH (send_mail_task), what it says redacted."""
    params = module.params
    token_source = None
    if params["secure"] == "try":
        module.warn("secure: try (community.general.mail's default) is starttls here: a token is never sent "
                    "without TLS, so there is no fallback to a plain connection")
        params["secure"] = "starttls"
    if params["secure"] == "never" and options_choosing_a_kind(params):
        module.warn("secure is never: the mail goes without TLS and without authentication (a token is never "
                    "sent in clear), so the credential options are not used; only a relay that accepts "
                    "unauthenticated mail from this host will take it")
    # Check mode after an entra_app task that (in check mode) created nothing: client_id is null. Predict the
    # send from the validated messages instead of failing on an app that a real run would have created.
    unknown_app = module.check_mode and module.given_empty("client_id")
    if unknown_app:
        module.warn("check mode: client_id is empty (the app an earlier task would create), so the messages "
                    "were validated but no connection was opened")
    if params["secure"] != "never" and not unknown_app:
        # fresh=True when Exchange said the cached token expires too soon (5.5.127): past both caches.
        token_source = module.token_provider.token_source(module.cloud.smtp_scope)
    result = send_mail_task(params, module.check_mode, token_source, module.cloud.smtp_host,
                            connect=not unknown_app)
    # The session redacts its token; this also covers the secrets the module knows (no_log values).
    if "msg" in result:
        result["msg"] = module.redact(result["msg"])
    if "transcript" in result:
        result["transcript"] = [module.redact(line) for line in result["transcript"]]
    return result


def main():
    run_module(argument_spec(), send_mail)


if __name__ == "__main__":
    main()
