# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Microsoft identity platform (AADSTS) errors, translated into what the user must change.

The identity platform answers a token request with `error`, `error_description` ("AADSTS7000215: ..."),
`error_codes`, `correlation_id` and `trace_id`. msal hands us that dict; azure-identity raises an exception
whose text carries the same description. Both end up here. Unknown codes keep Microsoft's own words.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError


class IdentityErrors(object):
    """The identity platform's error mapper for the HttpClient (the protocol of _http.ServiceErrors, not its class:
    this file stays free of requests). Its answers go back to msal and are translated by translate_aadsts; the
    client uses this for a request that got no answer."""

    name = "the identity platform"
    endpoint_option = "authority_host"
    error_class = AuthError


IDENTITY = IdentityErrors()

# In the table, CREDENTIAL means "the option that holds the credential in use" (client_secret,
# certificate_path, federated_token_file...), which only the caller knows: it passes it as option_hint.
CREDENTIAL = object()

_FEDERATED_FIX = ("make the app's federated identity credential match the token in federated_token_file exactly: "
                  "issuer (iss), subject (sub, e.g. repo:ORG/REPO:environment:NAME for GitHub Actions, "
                  "system:serviceaccount:NAMESPACE:NAME for Kubernetes) and audience api://AzureADTokenExchange")

# code: (meaning, option, fix)
_TABLE = {
    7000215: ("the client secret is wrong; a value that looks like a GUID is usually the secret's ID, not its value",
              "client_secret",
              "use the secret's Value (shown only once, when the secret is created), not its Secret ID; "
              "if the value is lost, add a new secret (o365.smtp_oauth.entra_app_credential)"),
    7000222: ("the client secret has expired", "client_secret",
              "add a new secret to the app (o365.smtp_oauth.entra_app_credential) and use its value"),
    700016: ("no application with this client_id exists in this tenant", "client_id",
             "use the app's Application (client) ID (not its object ID) and the tenant it is registered or consented "
             "in; a new app can take a minute to replicate, so retry shortly after creating it"),
    700027: ("the certificate's signature was not accepted: the certificate is not registered on the app, or the "
             "private key does not belong to it", "certificate_path",
             "upload this certificate's public part to the app (o365.smtp_oauth.entra_app_credential) and give the "
             "matching private key; a new certificate can take a few minutes to become usable"),
    700024: ("the signed assertion is outside its validity window: this host's clock is wrong, or the federated "
             "token has expired", CREDENTIAL,
             "synchronise this host's clock (NTP); for workload identity give a fresh token file (the platform "
             "rotates it)"),
    700023: ("the assertion's audience does not match the tenant's token endpoint", "tenant_id",
             "give the tenant ID or domain of the app's home tenant (never common or organizations) and the "
             "matching authority_host / cloud"),
    7000274: ("the certificate assertion's audience is not this tenant's token endpoint", "tenant_id",
              "give the tenant ID or domain of the app's home tenant and the matching authority_host / cloud"),
    7000271: ("the certificate assertion's signature does not verify: the private key is not the one of the "
              "registered certificate", "certificate_path",
              "give the private key that belongs to the certificate registered on the app"),
    50027: ("the signed assertion is not a valid JWT", CREDENTIAL,
            "check the certificate file, or that federated_token_file holds the raw token (no quotes, no prefix)"),
    50166: ("the identity platform cannot verify the federated token: its issuer's signing keys are unknown",
            "federated_token_file",
            "check the federated identity credential's issuer URL; its OpenID discovery must be reachable by Entra"),
    50059: ("the request names no tenant", "tenant_id",
            "set tenant_id to the tenant ID (GUID) or its domain (contoso.onmicrosoft.com)"),
    90002: ("this tenant does not exist in this cloud", "tenant_id",
            "check tenant_id; a national-cloud tenant needs cloud (usgov, dod, china)"),
    900023: ("the tenant is neither a valid tenant ID nor a known domain", "tenant_id",
             "set tenant_id to the tenant ID (GUID) or a verified domain of the tenant"),
    70021: ("no federated identity credential on the app matches the presented token", "federated_token_file",
            _FEDERATED_FIX),
    700211: ("no federated identity credential on the app matches the token's issuer", "federated_token_file",
             _FEDERATED_FIX),
    700212: ("no federated identity credential on the app matches the token's audience", "federated_token_file",
             _FEDERATED_FIX),
    700213: ("no federated identity credential on the app matches the token's subject", "federated_token_file",
             _FEDERATED_FIX),
    50034: ("the account does not exist in this tenant", "tenant_id",
            "check that tenant_id is the tenant where the identity lives"),
    500011: ("the resource (Microsoft Graph or Office 365 Exchange Online) has no service principal in this tenant",
             "cloud",
             "check that the tenant has Exchange Online, that cloud matches the tenant's national cloud, and that "
             "an administrator has consented to the app"),
    7000112: ("the application is disabled in this tenant", "client_id",
              "re-enable the app's service principal (Enterprise applications > Properties > Enabled for users to "
              "sign in), or ask the administrator who disabled it"),
    7000229: ("the application has no service principal in this tenant", "client_id",
              "create the service principal and grant admin consent (o365.smtp_oauth.entra_app does both)"),
    1002012: ("client credentials need a scope that ends in /.default", None,
              "ask for https://<resource>/.default (the collection does this; an endpoint override may be wrong)"),
    70011: ("the requested scope is not valid", None,
            "client credentials need https://<resource>/.default; check graph_endpoint / cloud"),
    65001: ("the application has not been granted admin consent for the permissions it needs", "client_id",
            "grant admin consent for the app's API permissions (o365.smtp_oauth.entra_app with admin_consent)"),
    7000216: ("the request carried no client credential", CREDENTIAL,
              "give client_secret, certificate_path or federated_token_file"),
    7000218: ("the request carried no client credential", CREDENTIAL,
              "give client_secret, certificate_path or federated_token_file"),
    53003: ("a Conditional Access policy blocked the sign-in", "client_id",
            "ask the tenant administrator to exclude this workload identity from the policy or allow this network"),
}

_CODE_RE = re.compile(r"AADSTS(\d+)")
_CORRELATION_RE = re.compile(r"Correlation ID:\s*([0-9a-fA-F-]{36})")
_TRACE_RE = re.compile(r"Trace ID:\s*([0-9a-fA-F-]{36})")


def _first_line(text):
    # Microsoft appends Trace ID / Correlation ID / Timestamp lines; the first line is the message.
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""


def _parts(error):
    """(description, error name, codes, correlation id, trace id) from an msal dict, an exception or text."""
    if isinstance(error, dict):
        description = error.get("error_description") or ""
        codes = [int(c) for c in error.get("error_codes") or [] if str(c).isdigit()]
        return (description, error.get("error"), codes, error.get("correlation_id"), error.get("trace_id"))
    text = str(getattr(error, "message", None) or error or "")
    return (text, None, [], None, None)


def aadsts_code(error):
    """The first AADSTS number in an error dict, exception or text, else None."""
    description, _name, codes, _corr, _trace = _parts(error)
    if codes:
        return codes[0]
    match = _CODE_RE.search(description)
    return int(match.group(1)) if match else None


def translate_aadsts(error, option_hint=None):
    """Return an AuthError naming the AADSTS code, what it means, the option to fix and how."""
    description, name, codes, correlation, trace = _parts(error)
    number = aadsts_code(error)
    correlation = correlation or (_CORRELATION_RE.search(description).group(1) if _CORRELATION_RE.search(description) else None)
    trace = trace or (_TRACE_RE.search(description).group(1) if _TRACE_RE.search(description) else None)
    microsoft = _first_line(description) or name or "the identity platform refused the token request"
    code = "AADSTS%d" % number if number is not None else (name or None)
    details = dict((k, v) for k, v in (("error", name), ("trace_id", trace), ("description", microsoft)) if v)
    if number in _TABLE:
        meaning, option, fix = _TABLE[number]
        if option is CREDENTIAL:
            option = option_hint
        message = "%s: %s (Microsoft says: %s)" % (code, meaning, microsoft)
        return AuthError(message, option=option, code=code, fix=fix, request_id=correlation, details=details)
    # Unknown code: Microsoft's text is the best explanation we have.
    return AuthError("the identity platform refused the token request: %s" % microsoft, option=option_hint,
                     code=code, fix="see https://login.microsoftonline.com/error?code=%s" % number if number else None,
                     request_id=correlation, details=details)


def known_codes():
    """The AADSTS numbers this module explains (for tests and documentation)."""
    return sorted(_TABLE)
