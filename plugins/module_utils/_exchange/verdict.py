# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Would this app be allowed to send as this mailbox over SMTP, and if not, why: the rules Exchange applies at
SMTP AUTH (XOAUTH2), from facts read through the admin API and Graph. Shared by exchange_smtp_access and
exchange_smtp_access_info. Plain Python.

Exchange's order: the token's app must have its service principal registered in Exchange (by the SP's object
id); then classic (token role SMTP.SendAsApp + FullAccess on the mailbox) or, for a token without that role,
RBAC for Applications (a role assignment 'Application SMTP.SendAsApp' whose scope contains the mailbox); then
SMTP AUTH must be enabled for the mailbox (SmtpClientAuthenticationDisabled: true/false, or null = the tenant's
TransportConfig value).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

SMTP_SEND_ROLE = "Application SMTP.SendAsApp"


def smtp_auth_state(mailbox_value, tenant_disabled):
    """The three-state setting in words: {'mailbox': 'enabled'|'disabled'|'inherit', 'tenant': ..., 'effective'}."""
    mailbox = "inherit" if mailbox_value is None else ("disabled" if mailbox_value else "enabled")
    tenant = "disabled" if tenant_disabled else "enabled"
    return {"mailbox": mailbox, "tenant": tenant, "effective": tenant if mailbox == "inherit" else mailbox}


def rbac_grants(in_scope, claim):
    """A role assignment whose scope holds the mailbox lets the app in, unless its token carries the Entra
    SMTP.SendAsApp role (claim: consented True / False / None = unknown): Exchange then checks mailbox permissions."""
    return bool(in_scope) and claim is not True


def classic_grants(full_access, claim):
    """FullAccess lets the app in when its token carries the SMTP.SendAsApp role (or when that is unknown)."""
    return bool(full_access) and claim is not False


def grant_via(in_scope, full_access, claim):
    """The grant Exchange would use: 'rbac', 'classic' or None."""
    if rbac_grants(in_scope, claim):
        return "rbac"
    return "classic" if classic_grants(full_access, claim) else None


def verdict(facts):
    """facts: mailbox_exists, sp_registered, sp_object_id_ok, model ('rbac'|'classic'|None = either),
    in_scope (bool or None), full_access, entra_send_claim (bool or None = unknown), smtp_auth (smtp_auth_state),
    pending (bool: something changed just now). Returns {'status': allowed|pending|denied, 'allowed', 'reasons'}.
    """
    reasons = []
    if not facts.get("mailbox_exists", True):
        reasons.append("the mailbox does not exist in Exchange Online (535 5.7.3)")
    if not facts.get("sp_registered"):
        reasons.append("the app's service principal is not registered in Exchange (New-ServicePrincipal) (535 5.7.3)")
    elif not facts.get("sp_object_id_ok", True):
        reasons.append("the app is registered in Exchange with a wrong object id (the application object id instead "
                       "of the service principal's); Exchange cannot match its tokens (535 5.7.3)")
    claim = facts.get("entra_send_claim")
    rbac_ok = rbac_grants(facts.get("in_scope"), claim)
    classic_ok = classic_grants(facts.get("full_access"), claim)
    model = facts.get("model")
    if not (rbac_ok or classic_ok):
        if facts.get("in_scope") and claim is True:
            reasons.append("the app also holds the Entra permission SMTP.SendAsApp: its tokens carry that role, so "
                           "Exchange checks FullAccess on the mailbox and ignores the RBAC role assignment; remove "
                           "the permission (entra_app with authorization_model rbac and purge_permissions) (535 5.7.3)")
        elif model == "classic":
            if not facts.get("full_access"):
                reasons.append("the app has no FullAccess permission on the mailbox (classic model) (535 5.7.3)")
            if claim is False:
                reasons.append("the app has no admin-consented SMTP.SendAsApp permission in Entra ID, which the "
                               "classic model needs (535 5.7.3)")
        else:
            reasons.append("no role assignment '%s' with a scope containing the mailbox (535 5.7.3)" % SMTP_SEND_ROLE)
    elif model == "classic" and not classic_ok:
        reasons.append("the classic model is declared but only an RBAC role assignment lets the app send")
    auth = facts.get("smtp_auth") or {}
    if auth.get("effective") == "disabled":
        if auth.get("mailbox") == "inherit":
            reasons.append("SMTP AUTH is disabled for the tenant (TransportConfig SmtpClientAuthenticationDisabled) "
                           "and the mailbox inherits it (535 5.7.139)")
        else:
            reasons.append("SMTP AUTH is disabled for the mailbox (CASMailbox SmtpClientAuthenticationDisabled) "
                           "(535 5.7.139)")
    if reasons:
        return {"status": "denied", "allowed": False, "reasons": reasons}
    if facts.get("pending"):
        return {"status": "pending", "allowed": False,
                "reasons": ["configured just now; Exchange applies permission changes after a delay (often minutes, "
                            "up to about 2 hours): SMTP AUTH can fail with 535 5.7.3 until then"]}
    return {"status": "allowed", "allowed": True, "reasons": []}
