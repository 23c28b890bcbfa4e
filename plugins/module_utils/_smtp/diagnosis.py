# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an SMTP answer means, in plain words and for the client: the one home of both.

`diagnose(smtp_code, reply, claims=None, stage=None, mailbox=None, address=None, challenge=None)` -> Diagnosis:
`code` (enhanced), `cause`, `fix`, `option`, and what a client does next, decided here only:
- `temporary`: the same message may go later (send_mail retries it, the relay answers Postfix 4xx);
- `reconnect`: this connection is done (421, 432, 503 out of step, any refusal before AUTH succeeded);
- `fresh_token`: authenticate again with a token asked past every cache (5.5.127: the token expires too soon);
- `limit`: a sending limit of the mailbox or the tenant, not the message's fault (the relay defers it).
The per-code table `TABLE` drives them, and scripts/gen_docs.py renders it as docs/troubleshooting.md.
`claims` are the access token's decoded claims (no signature check, _auth.jwt_claims): for `535 5.7.3` they let
us name the likely cause instead of listing every possibility. `challenge` is the JSON of an XOAUTH2 error
challenge (`334 <base64 JSON>`, sent before the final 535 by servers such as Dovecot and Google): its status and
scope are named in the cause.

Plain Python, no Ansible import (the relay's proxy reads replies with it too).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import EXCHANGE_APP_ID

SMTP_RESOURCES = ("https://outlook.office365.com", "https://outlook.office365.us", "https://partner.outlook.cn",
                  "https://outlook-dod.office365.us", "https://outlook.office.com")
# RFC 5321 421 (closing the channel), Exchange's 432 (too many connections), 503 (the session is out of step, never
# the message's fault): the next attempt needs a new connection.
_RECONNECT = {421: "temporary reconnect", 432: "temporary reconnect", 503: "temporary reconnect"}
_SETUP = ("connect", "starttls", "auth")  # before these succeed the connection carries no mail


class Diagnosis(object):
    __slots__ = ("code", "cause", "fix", "option", "temporary", "reconnect", "fresh_token", "limit")

    def __init__(self, code, cause, fix, option=None, does=""):
        self.code = code
        self.cause = cause
        self.fix = fix
        self.option = option
        for flag in self.__slots__[4:]:
            setattr(self, flag, flag in does.split())


def _enhanced(reply):
    match = re.search(r"\b([245]\.\d{1,3}\.\d{1,3})\b", reply or "")
    return match.group(1) if match else None


def _aud_ok(aud):
    auds = aud if isinstance(aud, list) else [aud]
    return any(str(a).rstrip("/") in SMTP_RESOURCES or a == EXCHANGE_APP_ID for a in auds if a)


def _diagnose_573(claims, mailbox):
    """535 5.7.3: Exchange rejected the token. Use the claims to say which cause is most likely."""
    generic = ("Exchange did not accept the app for this mailbox. In order: (1) the app's service principal is "
               "registered in Exchange (New-ServicePrincipal) with the object id of the ENTERPRISE APPLICATION, not "
               "of the app registration; (2) it has the right to send: RBAC for Applications (role assignment "
               "'Application SMTP.SendAsApp' whose scope contains %s) or classic (Entra SMTP.SendAsApp with admin "
               "consent plus FullAccess on the mailbox); (3) a new permission can take up to an hour to apply."
               % (mailbox or "the mailbox"))
    fix = ("run o365.smtp_oauth.exchange_smtp_access for this app and mailbox (and exchange_smtp_access_info to see "
           "what is missing), then retry")
    if not claims:
        return Diagnosis("5.7.3", "the token was rejected. " + generic, fix)
    if not _aud_ok(claims.get("aud")):
        return Diagnosis("5.7.3", "the token's audience is %r, not Exchange Online" % (claims.get("aud"),),
                         "request the token for https://outlook.office365.com/.default (or your cloud's Exchange "
                         "resource), not Graph", option="access_token")
    if claims.get("scp") and not claims.get("roles"):
        return Diagnosis("5.7.3", "the token is a delegated (user) token (scp=%s); app-only SMTP needs a client "
                         "credentials token" % claims.get("scp"),
                         "authenticate as the application (client secret, certificate, federated or managed identity)",
                         option="access_token")
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and exp < time.time():
        return Diagnosis("5.7.3", "the token expired at %s" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp)),
                         "get a new token (a ready access_token cannot be renewed by the module)", option="access_token")
    roles = claims.get("roles") or []
    appid = claims.get("appid") or claims.get("azp")
    tid = claims.get("tid")
    if "SMTP.SendAsApp" in roles:
        cause = ("the token carries the Entra permission SMTP.SendAsApp (classic model, app %s in tenant %s), so "
                 "Exchange requires FullAccess for the app's service principal on %s, and the service principal "
                 "registered in Exchange. One of them is missing, uses the application object id instead of the "
                 "service principal's, or has not propagated yet" % (appid, tid, mailbox or "the mailbox"))
        return Diagnosis("5.7.3", cause, "grant FullAccess (exchange_smtp_access with model classic) or remove the "
                         "SMTP.SendAsApp permission and use RBAC for Applications; then wait for propagation")
    cause = ("the token has no SMTP.SendAsApp role (app %s in tenant %s), so Exchange looks for RBAC for Applications: "
             "a service principal registered with the enterprise application's object id and a management role "
             "assignment 'Application SMTP.SendAsApp' whose scope contains %s. One of them is missing or has not "
             "propagated yet" % (appid, tid, mailbox or "the mailbox"))
    return Diagnosis("5.7.3", cause, fix)


# One row a code: (enhanced code, cause, fix, option, what a client does next (see the top), words the reply must
# contain, lower case without spaces, for the row to apply). Basic codes and stages add to it in diagnose().
TABLE = (
    ("5.7.57", "the server wanted authentication (or TLS) before accepting mail: the session was not authenticated",
     "use secure: starttls (or always) with OAuth credentials; never send unauthenticated to Exchange Online",
     "secure", "", ""),
    ("5.7.60", "SendAsDenied: the authenticated mailbox may not send as the From/sender address",
     "grant SendAs on that address to the app (exchange_smtp_access send_as), or send from the mailbox itself",
     "sender", "", ""),
    ("5.2.0", "the mailbox exceeded its submission quota (SubmissionQuotaExceeded: 10,000 recipients a day or the "
     "per-minute message rate)",
     "wait until the quota frees up (24 h for recipients), spread the sending over several mailboxes, or use "
     "Azure Communication Services / High Volume Email for bulk", "rate_limit", "limit", "quotaexceeded"),
    ("5.1.90", "the mailbox reached its daily limit of message recipients",
     "wait until the limit frees up (24 h) or spread the sending over several mailboxes", "rate_limit", "limit", ""),
    ("4.3.2", "too many concurrent connections for this mailbox (Exchange allows 3)",
     "run fewer parallel senders for this mailbox (Ansible forks, CI jobs); the module retries with backoff",
     None, "temporary reconnect", ""),
    ("5.5.127", "the token is about to expire; Exchange refuses tokens close to their expiry",
     "get a fresh token (the module renews automatically; a ready access_token must be renewed by you)",
     "access_token", "temporary reconnect fresh_token", ""),
    ("5.7.30", "Basic authentication (AUTH LOGIN / PLAIN with a password) is not supported any more for client submission",
     "use OAuth (XOAUTH2) credentials: this module does, check that nothing else is sending with a password", None,
     "", ""),
    ("4.7.500", "Exchange is busy and asked the client to come back later", "the module retries with backoff; if it "
     "persists, retry later", None, "temporary", ""),
    ("5.7.4", "the server does not offer this authentication type (AUTH before TLS, or XOAUTH2 unknown)",
     "use secure: starttls and the Exchange Online SMTP host", "secure", "", ""),
    ("5.7.8", "the server refused the token (authentication credentials invalid). Exchange Online answers 5.7.3; "
     "this server checks the token itself: its signature against the issuer's keys, its expiry, and that it was "
     "issued for this mailbox",
     "check that host and port are the server you mean; a server other than Exchange must trust your tenant's "
     "tokens (issuer, signing keys, the claim naming the mailbox); else get a new token", "host", "", ""),
    ("5.5.124", "the XOAUTH2 data was malformed", "check the mailbox value (one address) and the token", "mailbox",
     "", ""),
    ("5.1.8", "the sender address was refused by Exchange (access denied, bad outbound sender: often a mailbox that "
     "was blocked for sending spam or over a sending limit)",
     "check the mailbox in the Microsoft 365 Defender 'Restricted entities' page", "sender", "limit", ""),
    ("5.7.705", "the tenant exceeded its outbound sending threshold and is blocked from sending",
     "find what sent so much (a compromised account, a loop) in message trace; Microsoft lifts the block", None,
     "limit", ""),
    ("5.2.2", "the recipient's mailbox is full", "contact the recipient", None, "", ""),
    ("5.1.1", "the recipient address does not exist", "fix the address", "to", "", ""),
    ("5.1.10", "the recipient address does not exist", "fix the address", "to", "", ""),
    ("5.3.4", "the message is larger than the server's limit", "send a smaller message", "attach", "", ""),
    ("5.7.708", "the tenant is blocked from sending (new or suspicious tenant, usually a trial)",
     "contact Microsoft support", None, "", ""),
)


def _diagnose_5139(reply):
    low = (reply or "").lower()
    if "disabled for the tenant" in low:
        return Diagnosis("5.7.139", "SMTP AUTH is disabled for the whole tenant (Set-TransportConfig "
                         "SmtpClientAuthenticationDisabled $true) and not enabled on the mailbox",
                         "enable SMTP AUTH on the mailbox (exchange_smtp_access smtp_auth: enabled) or for the tenant")
    if "disabled for the mailbox" in low:
        return Diagnosis("5.7.139", "SMTP AUTH is disabled on this mailbox (Set-CASMailbox "
                         "SmtpClientAuthenticationDisabled $true)",
                         "enable it on the mailbox (exchange_smtp_access smtp_auth: enabled)")
    if "security defaults" in low:
        return Diagnosis("5.7.139", "the tenant's security defaults block SMTP AUTH for this account",
                         "exclude the account or move to Conditional Access policies; app-only tokens are not affected")
    if "basic authentication is disabled" in low:
        return Diagnosis("5.7.139", "Basic authentication is disabled for SMTP AUTH", "use OAuth (XOAUTH2)")
    return Diagnosis("5.7.139", "the request did not meet the criteria to authenticate: SMTP AUTH is off for the "
                     "mailbox or the tenant, or a policy (security defaults, Conditional Access) blocks it",
                     "check exchange_smtp_access_info: SMTP AUTH must be enabled for the mailbox (true/false/null "
                     "follows the tenant setting)")


def diagnose(smtp_code, reply, claims=None, stage=None, mailbox=None, address=None, challenge=None):
    """Cause, fix and what to do next for one reply. Unknown answers get a generic diagnosis, never an exception."""
    smtp_code = int(smtp_code or 0)
    found = _diagnose(smtp_code, reply, claims, stage, mailbox, address)
    if challenge:
        said = ", ".join("%s %s" % (key, challenge[key]) for key in ("status", "scope", "schemes") if key in challenge)
        found.cause = "%s (the server's XOAUTH2 error challenge said: %s)" % (found.cause, said or "nothing")
    found.temporary = found.temporary or 400 <= smtp_code < 500 or smtp_code in _RECONNECT
    found.reconnect = found.reconnect or smtp_code in _RECONNECT or stage in _SETUP
    return found


def _diagnose(smtp_code, reply, claims, stage, mailbox, address):
    enhanced = _enhanced(reply)
    low = (reply or "").lower()
    if enhanced == "5.7.3" or (smtp_code == 535 and enhanced is None):
        return _diagnose_573(claims, mailbox)
    if enhanced == "5.7.139":
        return _diagnose_5139(reply)
    if "line too long" in low:
        return Diagnosis(enhanced, "the server refused a line as too long: its limit is below the size of the XOAUTH2 "
                         "response (the token, 1-4 KB)", "raise the server's line limit for AUTH responses; this "
                         "module sends the token on its own line after 334, never on the AUTH line (RFC 4954)",
                         "host")
    if "sendasdenied" in low:
        enhanced = "5.7.60"
    if "submissionquotaexceeded" in low:
        enhanced = "5.2.0"
    for code, cause, fix, option, does, words in TABLE:
        if enhanced == code and words in low.replace(" ", ""):
            if code == "5.7.60" and address:
                cause = "SendAsDenied: the mailbox %s may not send as %s" % (mailbox or "?", address)
            return Diagnosis(code, cause, fix, option, does)
    if smtp_code in (421, 432):
        return Diagnosis(enhanced, "the server is closing the connection or limiting it (%s)" % (reply,),
                         "the module reconnects and retries with backoff")
    if smtp_code == 503:
        return Diagnosis(enhanced, "the server found the commands out of sequence (%s): the session was out of step"
                         % (reply,), "the module reconnects and retries; if it persists, check host and port")
    if 400 <= smtp_code < 500:
        return Diagnosis(enhanced, "a temporary failure (%s)" % reply, "retry later; the module retries with backoff")
    where = {"mail": "the sender", "rcpt": "a recipient", "data": "the message", "auth": "the authentication"}.get(stage, stage or "the request")
    return Diagnosis(enhanced, "the server refused %s" % where, "read the server's reply; it names the problem")
