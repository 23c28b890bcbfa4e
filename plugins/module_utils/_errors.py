# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's exceptions: every failure a user can see, with what to do about it.

Plain Python (no Ansible import): the relay's proxy uses these files on hosts without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

REDACTED = "********"

# A JWT (three base64url parts) or a Bearer value never leaves the process in a message.
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")
_BEARER_RE = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
_XOAUTH2_RE = re.compile(r"(?i)(auth=bearer\s*)[^\x01\s]+")


def redact(text, secrets=()):
    """Return text with the given secret values, JWTs and bearer tokens replaced."""
    if text is None:
        return text
    text = str(text)
    for secret in secrets or ():
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), REDACTED)
    text = _JWT_RE.sub(REDACTED, text)
    text = _XOAUTH2_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class O365Error(Exception):
    """Base of every error the collection raises on purpose.

    message: what happened, in plain words.
    option: the module option (or role variable) the user should look at, if any.
    code: the service's own code (AADSTS700016, Request_ResourceNotFound, 5.7.3, ...).
    fix: what the user must do.
    request_id / status: for support cases and logs.
    """

    def __init__(self, message, option=None, code=None, fix=None, request_id=None, status=None, details=None):
        super(O365Error, self).__init__(message)
        self.message = message
        self.option = option
        self.code = code
        self.fix = fix
        self.request_id = request_id
        self.status = status
        self.details = details or {}

    def __str__(self):
        parts = []
        if self.option:
            parts.append("%s: " % self.option)
        parts.append(self.message)
        if self.code and str(self.code) not in self.message:
            parts.append(" (%s)" % self.code)
        if self.fix:
            parts.append(" Fix: %s" % self.fix)
        if self.request_id:
            parts.append(" [request id %s]" % self.request_id)
        return "".join(parts)

    def to_result(self, secrets=()):
        """The keys a module passes to fail_json (all redacted)."""
        result = {"msg": redact(str(self), secrets)}
        for key in ("option", "code", "fix", "request_id", "status"):
            value = getattr(self, key)
            if value is not None:
                result["error_" + key if key != "option" else "option"] = redact(value, secrets) if isinstance(value, str) else value
        if self.details:
            result["error_details"] = self.details
        return result


class ConfigError(O365Error):
    """Bad or inconsistent input, found before any request: always names the option."""


class MissingLibraryError(O365Error):
    """A Python library the chosen feature needs is not installed."""

    def __init__(self, library, purpose, install="pip install %s", error=None):
        message = "the Python library %s is required for %s but is not installed on the host running the module" % (library, purpose)
        super(MissingLibraryError, self).__init__(message, code="missing_library", fix=install % library if "%s" in install else install)
        self.library = library
        self.purpose = purpose
        self.import_error = error


class AuthError(O365Error):
    """The identity platform refused to issue a token (AADSTS codes), or the token cannot be used."""


class ServiceError(O365Error):
    """Microsoft Graph or the Exchange admin API answered with an error after retries."""


class NotPropagatedError(O365Error):
    """The write succeeded but the object is not visible yet (Entra / Exchange replication)."""


class SmtpError(O365Error):
    """The SMTP server refused a step; code is the enhanced status code (5.7.3, ...) when there is one."""

    def __init__(self, message, smtp_code=None, enhanced_code=None, server_reply=None, **kwargs):
        kwargs.setdefault("code", enhanced_code or (str(smtp_code) if smtp_code else None))
        super(SmtpError, self).__init__(message, **kwargs)
        self.smtp_code = smtp_code
        self.enhanced_code = enhanced_code
        self.server_reply = server_reply
