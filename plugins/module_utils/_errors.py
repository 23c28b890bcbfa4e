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
        self.message, self.option, self.code, self.fix = message, option, code, fix
        self.request_id, self.status, self.details = request_id, status, details or {}

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


def causes(error, limit=16):
    """error and the exceptions behind it (cause, context, urllib3's reason, azure-core's inner_exception, wrapped
    arguments), each once, at most `limit`."""
    stack, seen = [error], []
    while stack and len(seen) < limit:
        current = stack.pop()
        if any(current is known for known in seen):
            continue
        seen.append(current)
        for nested in (getattr(current, "reason", None), getattr(current, "inner_exception", None), current.__cause__,
                       current.__context__) + tuple(getattr(current, "args", ())):
            if isinstance(nested, BaseException):
                stack.append(nested)
    return seen


# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH / X509_V_ERR_IP_ADDRESS_MISMATCH: a trusted certificate for another name.
_NAME_MISMATCH = (62, 64)


def tls_failure(error, where, cls, endpoint_option=None, **kwargs):
    """The one translation of a failed TLS handshake (HTTPS to Graph, Exchange and the identity platform, through
    requests or azure-core; SMTP), or None when neither `error` nor its causes is one. A trusted certificate for
    another name is `tls_name_mismatch` and names endpoint_option (the option that chose the host); any other
    failure is `tls_failed` and names ca_path. Verification is never turned off."""
    import ssl
    found = [c for c in causes(error) if isinstance(c, ssl.SSLError) or type(c).__name__ == "SSLError"]
    if not found and "CERTIFICATE_VERIFY_FAILED" not in str(error):
        return None
    verify = next((c for c in found if getattr(c, "verify_code", None) is not None), None)
    if verify is not None and verify.verify_code in _NAME_MISMATCH and endpoint_option:
        return cls("the TLS certificate of %s is for another name: %s" % (where, verify.verify_message),
                   option=endpoint_option, code="tls_name_mismatch",
                   fix="set %s to a name the server's certificate carries; verification is never turned off"
                       % endpoint_option, **kwargs)
    if verify is not None:
        what = "the TLS certificate of %s could not be verified: %s" % (where, verify.verify_message)
    else:
        what = "the TLS handshake with %s failed: %s" % (where, short_reason(found[-1] if found else error))
    check = ", and check %s" % endpoint_option if endpoint_option else ""
    return cls(what, option="ca_path", code="tls_failed",
               fix="give in ca_path the CA bundle that signed the server's certificate (a private CA's, or a "
                   "TLS-inspecting proxy's)%s; verification is never turned off" % check, **kwargs)


def short_reason(error):
    """A transport failure's cause in a few words, without the URL noise urllib3 adds."""
    text = str(error)
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip(" ()'\"")[:200] or type(error).__name__


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
