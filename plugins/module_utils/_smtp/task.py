# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The send_mail task without Ansible: options -> validated messages -> one session -> result dict.

`send_mail_task(params, check_mode, token_source, cloud_smtp_host, sleep=time.sleep, connect=True)`
returns the task's result (with failed and msg, as Ansible reads them, when a message was not delivered).
`token_source` is None for an unauthenticated relay (secure: never) or a callable returning an AccessToken / str
for the Exchange scope. Every message is built and validated before the first connection, so bad input never
costs a connection or half a bulk run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.message import addr_spec, build_message
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.session import SmtpSession
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.sender import BulkSender

MESSAGE_KEYS = ("sender", "to", "cc", "bcc", "reply_to", "subject", "body", "subtype", "body_html", "charset",
                "attach", "headers")


def message_specs(params):
    """One spec per message: each `messages` entry over the top-level options, or the top level alone."""
    top = dict((key, params.get(key)) for key in MESSAGE_KEYS)
    entries = params.get("messages")
    if entries is None:
        return [("", top)]
    if not entries:
        raise ConfigError("is an empty list: nothing to send", option="messages")
    specs = []
    for index, entry in enumerate(entries):
        spec = dict(top)
        for key, value in (entry or {}).items():
            if key == "from":
                key = "sender"
            if value is not None:
                spec[key] = value
        specs.append(("messages[%d]." % index, spec))
    return specs


# RFC 5321 Domain or address-literal as smtplib sends it: ASCII letters, digits and these, no space or control.
_HOST_NAME = re.compile(r"^[A-Za-z0-9._:\[\]-]{1,253}$")


def _host_name(value, option):
    if value is not None and not _HOST_NAME.match(value):
        raise ConfigError("must be a host name or an [address literal] in ASCII, got %r" % value[:60], option=option,
                          fix="use the name in its ASCII (punycode) form, without spaces")
    return value


def _host_port(params, cloud_smtp_host):
    # host / port fall back to O365_SMTP_HOST / O365_SMTP_PORT in the argument spec.
    host = _host_name(params.get("host"), "host") or cloud_smtp_host
    port = params.get("port") or 587
    if not host:
        raise ConfigError("no SMTP host is known for this cloud", option="host", fix="set host (or O365_SMTP_HOST)")
    if not 0 < int(port) < 65536:
        raise ConfigError("must be between 1 and 65535, got %r" % port, option="port")
    return host, int(port)


MIGRATION_GUIDE = "docs/migrating-from-community-general-mail.md"


def refuse_password_options(params):
    """community.general.mail's username / password: Basic authentication, which Exchange Online retires."""
    given = [name for name in ("username", "password") if params.get(name)]
    if given:
        raise ConfigError("is not an option of send_mail: send_mail authenticates with OAuth: set client_id and a "
                          "credential (client_secret, certificate_path, federated_token_file or managed_identity)",
                          option=given[0], fix="remove %s and see %s in the collection" % (
                              " and ".join(given), MIGRATION_GUIDE))


def build_all(params):
    domain = _host_name(params.get("message_id_domain"), "message_id_domain")
    max_mb = params.get("max_message_size")
    max_size = int(35 if max_mb is None else max_mb) * 1024 * 1024
    if max_size <= 0:
        raise ConfigError("must be a positive number of megabytes", option="max_message_size")
    built, seen = [], {}
    for prefix, spec in message_specs(params):
        message = build_message(spec, option_prefix=prefix, max_size=max_size, domain=domain)
        if message.message_id in seen:
            # Message trace finds a message (an 'uncertain' one above all) by its Message-ID: it must be unique.
            raise ConfigError("Message-ID %s is also the Message-ID of %s" % (
                message.message_id, seen[message.message_id] or "the first message"), option=prefix + "headers",
                fix="leave Message-ID out (one is made for each message) or give each message its own")
        seen[message.message_id] = prefix.rstrip(".")
        built.append(message)
    return built


def send_mail_task(params, check_mode, token_source, cloud_smtp_host, sleep=time.sleep, connect=True):
    """Run the task; returns the result (failed + msg when a message was not delivered). Raises O365Error for
    errors that stop everything.

    connect=False (check mode only): validate the messages and predict the send without opening a session, for an
    app that an earlier task in check mode would have created (no credential exists to authenticate with).
    """
    refuse_password_options(params)
    for name in ("rate_limit", "retries", "timeout"):
        if params.get(name) is not None and params[name] < 0:
            raise ConfigError("must not be negative", option=name)
    messages = build_all(params)
    host, port = _host_port(params, cloud_smtp_host)
    secure = params.get("secure") or "starttls"
    mailbox = params.get("mailbox")
    mailbox = addr_spec(mailbox, "mailbox") if mailbox else messages[0].envelope_from
    if secure == "never":
        token_source = None
    session = SmtpSession(host, port, secure=secure, ca_path=params.get("ca_path"), timeout=params.get("timeout") or 30,
                          ehlohost=_host_name(params.get("ehlohost"), "ehlohost"), mailbox=mailbox, token_source=token_source,
                          transcript=bool(params.get("debug")))
    result = {"mailbox": mailbox, "changed": False}
    prefetch = getattr(token_source, "prefetch", None)
    if prefetch is not None and (connect or not check_mode):
        prefetch()  # the token request overlaps the connection, EHLO and STARTTLS; AUTH still waits for both
    try:
        if check_mode:
            if connect:
                session.open()
                session.quit()
            result.update(changed=True, connections=session.connects, sent_count=0, failed_count=0,
                          messages=[{"message_id": m.message_id, "status": "check_mode", "accepted": [], "refused": {},
                                     "recipients": m.recipients, "code": None, "reply": None, "attempts": 0}
                                    for m in messages])
            return _finish(result, session)
        sender = BulkSender(session, rate_limit=params["rate_limit"], retries=params["retries"],
                            retry_delay=params["retry_delay"],
                            resend_uncertain=bool(params.get("resend_uncertain")), sleep=sleep)
        try:
            results = sender.send_all(messages)
        finally:
            session.quit()
    finally:
        session.close()
    for item, message in zip(results, messages):
        item["recipients"] = message.recipients
    sent = sum(1 for r in results if r["status"] == "sent")
    # No result key may be one Ansible reads itself (failed, changed, skipped, rc, attempts, retries, ...): a
    # count named `failed` failed the task even with fail_on_refused false.
    result.update(messages=results, sent_count=sent, failed_count=len(results) - sent, connections=session.connects,
                  changed=sent > 0, message_id=messages[0].message_id, retry_count=sender.stats["retries"],
                  token_renewals=sender.stats["reconnects_for_token"])
    problems = [r for r in results if r["status"] in ("failed", "uncertain", "not_sent")]
    if params["fail_on_refused"]:
        # A message whose every recipient was refused counts too: with fail_on_refused false it is reported only.
        problems.extend(r for r in results if r["status"] == "refused" or (r["status"] == "sent" and r["refused"]))
    if problems:
        result.update(failed=True, msg=_summary(problems))
    return _finish(result, session)


def _summary(problems):
    first = problems[0]
    if first["status"] == "sent":
        detail = "recipients refused: %s" % ", ".join(
            "%s (%s %s)" % (addr, info["code"], info["reply"]) for addr, info in sorted(first["refused"].items()))
    elif first["status"] == "refused":
        detail = "every recipient was refused: %s" % ", ".join(
            "%s (%s %s)" % (addr, info["code"], info["reply"]) for addr, info in sorted(first["refused"].items()))
    else:
        detail = first.get("error") or first.get("reply")
        if first.get("fix"):
            detail += " Fix: %s" % first["fix"]
    return "%d message(s) not fully delivered to the server; first (%s, %s): %s" % (
        len(problems), first["message_id"], first["status"], detail)


def _finish(result, session):
    if session.transcript is not None:
        result["transcript"] = list(session.transcript)
    return result
