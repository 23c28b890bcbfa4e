# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build and validate one mail message before any connection is made.

`build_message(spec, option_prefix="", max_size=35 MiB, domain=None)` takes a plain dict (the keys of the
send_mail options: sender, to, cc, bcc, subject, body, subtype, body_html, charset, attach, headers, reply_to)
and returns a `BuiltMessage` (the `email.message.EmailMessage`, envelope sender, envelope recipients, Message-ID
and the wire bytes). Every problem raises ConfigError naming the option (e.g. `messages[2].to`), so a bad
message never costs a connection and never half-sends a bulk run.

Plain Python (no Ansible import): the relay's proxy may use it too.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import mimetypes
import os
import re
from email import policy as email_policy
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError

DEFAULT_MAX_SIZE = 35 * 1024 * 1024  # Exchange Online's default message size limit (35 MB)


class _CachedHeaderRegistry(HeaderRegistry):
    """The standard registry, but each header class is made once (the stock one builds a new class per header
    set, about 0.1 ms each: the largest single cost when a bulk task builds hundreds of messages)."""

    def __init__(self):
        super(_CachedHeaderRegistry, self).__init__()
        self._classes = {}

    def __getitem__(self, name):
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super(_CachedHeaderRegistry, self).__getitem__(name)
        return cls


# The SMTP policy writes CRLF line ends; lines are folded at 78 so no line can exceed the 998 limit.
POLICY = email_policy.SMTP.clone(header_factory=_CachedHeaderRegistry())

# Headers that the module builds itself from dedicated options: setting them through `headers` would
# bypass validation (addresses) or break the MIME structure. Reply-To is the exception: community.general.mail's
# own example sets it through headers, so it is taken from there too and validated as reply_to.
_RESERVED_HEADERS = frozenset(h.lower() for h in (
    "From", "Sender", "To", "Cc", "Bcc", "Subject", "Date", "MIME-Version",
    "Content-Type", "Content-Transfer-Encoding", "Content-Disposition"))
_HEADER_NAME_RE = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")  # RFC 5322 ftext: printable ASCII except ':'
_ADDR_RE = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?$")


class BuiltMessage(object):
    """A validated message: `msg`, `envelope_from`, `recipients` (to + cc + bcc), `message_id`, `data`."""

    __slots__ = ("msg", "envelope_from", "recipients", "message_id", "data")

    def __init__(self, msg, envelope_from, recipients, message_id, data):
        self.msg = msg
        self.envelope_from = envelope_from
        self.recipients = recipients
        self.message_id = message_id
        self.data = data


def _opt(prefix, name):
    return "%s%s" % (prefix, name)


def _no_newlines(value, option):
    if value is not None and ("\r" in value or "\n" in value):
        raise ConfigError("must not contain a line break (CR or LF): header injection is refused", option=option,
                          fix="remove the line break from the value")
    return value


def _as_list(value, option):
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str):
        items = [value]
    else:
        raise ConfigError("must be an address or a list of addresses, got %s" % type(value).__name__, option=option)
    for item in items:
        if not isinstance(item, str):
            raise ConfigError("every address must be a string, got %s" % type(item).__name__, option=option)
        _no_newlines(item, option)
    return items


def parse_addresses(value, option):
    """Parse 'Name <a@b>' / 'a@b' strings (also comma-separated) into email.headerregistry.Address objects."""
    result = []
    for item in _as_list(value, option):
        pairs = getaddresses([item])
        if not pairs or (len(pairs) == 1 and not pairs[0][1]):
            raise ConfigError("%r is not a valid mail address" % item, option=option,
                              fix="use 'user@example.com' or 'Display Name <user@example.com>'")
        for name, addr in pairs:
            if not _ADDR_RE.match(addr or ""):
                raise ConfigError("%r is not a valid mail address" % item, option=option,
                                  fix="use 'user@example.com' or 'Display Name <user@example.com>'")
            if not addr.isascii():
                # Without SMTPUTF8 an envelope address is ASCII; the header would be mangled and smtplib refuses it.
                raise ConfigError("%r has characters outside ASCII in its address" % item, option=option,
                                  fix="use the mailbox's ASCII address (a display name may hold any characters)")
            local, domain = addr.rsplit("@", 1)
            try:
                result.append(Address(display_name=name or "", username=local, domain=domain))
            except (ValueError, TypeError) as exc:
                raise ConfigError("%r is not a valid mail address: %s" % (item, exc), option=option)
    return result


def addr_spec(value, option):
    """The bare address of one 'Name <a@b>' string, validated."""
    addresses = parse_addresses(value, option)
    if len(addresses) != 1:
        raise ConfigError("must be exactly one address", option=option)
    return addresses[0].addr_spec


def _headers(value, option):
    """`headers` as a dict, or a list of 'Name=value' / 'Name: value' strings (community.general.mail style)."""
    if not value:
        return []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)):
        pairs = []
        for item in value:
            if isinstance(item, dict) and len(item) == 1:
                pairs.extend(item.items())
                continue
            if not isinstance(item, str):
                raise ConfigError("each header must be 'Name=value', got %r" % (item,), option=option)
            sep = "=" if "=" in item and (":" not in item or item.index("=") < item.index(":")) else ":"
            name, found, val = item.partition(sep)
            if not found:
                raise ConfigError("header %r has no value: write 'Name=value'" % item, option=option)
            pairs.append((name.strip(), val.strip()))
    else:
        raise ConfigError("must be a dict of header names to values or a list of 'Name=value'", option=option)
    checked = []
    for name, val in pairs:
        name = str(name)
        val = "" if val is None else str(val)
        if not _HEADER_NAME_RE.match(name):
            raise ConfigError("%r is not a valid header name" % name, option=option,
                              fix="header names are printable ASCII without spaces or ':'")
        _no_newlines(val, "%s.%s" % (option, name))
        if name.lower() in _RESERVED_HEADERS:
            raise ConfigError("header %r is set by its own option, not through headers" % name, option=option,
                              fix="use the sender, to, cc, bcc, subject or reply_to option instead")
        checked.append((name, val))
    return checked


def _text_cte(text):
    # 7bit-clean output works with every server, with or without 8BITMIME.
    try:
        text.encode("ascii")
        return "7bit"
    except UnicodeEncodeError:
        return "quoted-printable"


def _attachments(paths, option):
    if not paths:
        return []
    if isinstance(paths, str):
        paths = [paths]
    found = []
    for path in paths:
        if not isinstance(path, str) or not path:
            raise ConfigError("each attachment must be a file path", option=option)
        if not os.path.isfile(path):
            raise ConfigError("attachment %r does not exist or is not a file" % path, option=option)
        try:
            with open(path, "rb") as handle:
                content = handle.read()
        except (IOError, OSError) as exc:
            raise ConfigError("attachment %r cannot be read: %s" % (path, exc.strerror or exc), option=option)
        ctype, encoding = mimetypes.guess_type(path)
        if ctype is None or encoding is not None:
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        found.append((os.path.basename(path), maintype, subtype, content))
    return found


def build_message(spec, option_prefix="", max_size=DEFAULT_MAX_SIZE, domain=None, message_id=None):
    """Validate `spec` and return a BuiltMessage; ConfigError names the offending option."""
    p = option_prefix
    sender = spec.get("sender") or spec.get("from")
    if not sender:
        raise ConfigError("a sender is required", option=_opt(p, "sender"), fix="set sender (or from)")
    _no_newlines(sender, _opt(p, "sender"))
    from_addrs = parse_addresses(sender, _opt(p, "sender"))
    if len(from_addrs) != 1:
        raise ConfigError("must be exactly one address", option=_opt(p, "sender"))
    to = parse_addresses(spec.get("to"), _opt(p, "to"))
    cc = parse_addresses(spec.get("cc"), _opt(p, "cc"))
    bcc = parse_addresses(spec.get("bcc"), _opt(p, "bcc"))
    if not (to or cc or bcc):
        raise ConfigError("at least one recipient is required", option=_opt(p, "to"), fix="set to, cc or bcc")
    reply_to = parse_addresses(spec.get("reply_to"), _opt(p, "reply_to"))
    subject = spec.get("subject") or ""
    _no_newlines(subject, _opt(p, "subject"))
    subtype = spec.get("subtype") or "plain"
    if subtype not in ("plain", "html"):
        raise ConfigError("must be plain or html, got %r" % subtype, option=_opt(p, "subtype"))
    charset = spec.get("charset") or "utf-8"
    body = spec.get("body")
    body = subject if body is None else body  # as community.general.mail: no body means the subject
    body_html = spec.get("body_html")
    try:
        "".encode(charset)
    except LookupError:
        raise ConfigError("unknown charset %r" % charset, option=_opt(p, "charset"), fix="use utf-8")
    headers = _headers(spec.get("headers"), _opt(p, "headers"))
    for name, value in headers:
        if name.lower() == "reply-to":
            for address in parse_addresses(value, "%s.%s" % (_opt(p, "headers"), name)):
                if address.addr_spec.lower() not in set(a.addr_spec.lower() for a in reply_to):
                    reply_to.append(address)
    headers = [(name, value) for name, value in headers if name.lower() != "reply-to"]
    attachments = _attachments(spec.get("attach"), _opt(p, "attach"))

    msg = EmailMessage(policy=POLICY)
    msg["From"] = from_addrs[0]
    if to:
        msg["To"] = to
    if cc:
        msg["Cc"] = cc
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    custom_id = None
    for name, value in headers:
        if name.lower() == "message-id":
            custom_id = value
            continue
        msg[name] = value
    message_id = custom_id or message_id or make_msgid(domain=domain or from_addrs[0].domain)
    msg["Message-ID"] = message_id
    try:
        # A body that cannot be encoded in the charset is an input error, reported as such.
        if body_html is not None:
            msg.set_content(body, subtype="plain", charset=charset, cte=_text_cte(body))
            msg.add_alternative(body_html, subtype="html", charset=charset, cte=_text_cte(body_html))
        else:
            msg.set_content(body, subtype=subtype, charset=charset, cte=_text_cte(body))
    except UnicodeEncodeError as exc:
        raise ConfigError("the body cannot be encoded in charset %s: %s" % (charset, exc.reason),
                          option=_opt(p, "charset"), fix="use utf-8")
    for filename, maintype, subtype_, content in attachments:
        msg.add_attachment(content, maintype=maintype, subtype=subtype_, filename=filename)
    data = msg.as_bytes(policy=POLICY)
    if max_size and len(data) > max_size:
        raise ConfigError("the message is %d bytes, over the limit of %d bytes" % (len(data), max_size),
                          option=_opt(p, "attach") if attachments else _opt(p, "body"),
                          fix="send smaller attachments or raise max_message_size if the server allows more")
    recipients = [a.addr_spec for a in to + cc + bcc]
    # Deduplicate, keeping order: a recipient listed twice gets one copy.
    seen = set()
    recipients = [r for r in recipients if not (r.lower() in seen or seen.add(r.lower()))]
    return BuiltMessage(msg, from_addrs[0].addr_spec, recipients, message_id, data)
