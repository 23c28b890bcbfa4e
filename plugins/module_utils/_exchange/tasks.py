# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The exchange_* module bodies: options in, the result out (O365Module.run exits with it).

`module` is the O365Module wrapper (params, check_mode, cloud, http, warn); this file does not import
Ansible, it only calls those attributes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import (
    authorization_model_for, resolve_authorization_model)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.client import ExchangeAdminClient
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.access import ExchangeAccess
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.exchange_identity import (
    has_smtp_consent, resolve_app)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.info import access_report
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.read import ExchangeReader
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.graph import GraphClient

SMTP_AUTH_CHOICES = ("enabled", "inherit", "disabled")
SP_REPLICATION_WAIT = 60  # seconds, at most wait_timeout


def exchange_client(module):
    tenant = module.params.get("tenant_id")
    if not tenant:
        raise ConfigError("the Exchange admin API needs the tenant (its id or its initial domain)", option="tenant_id",
                          fix="set tenant_id or AZURE_TENANT_ID")
    organization = module.params.get("organization")
    if organization is not None and ("." not in organization or "/" in organization or " " in organization):
        raise ConfigError("must be the tenant's initial domain, like contoso.onmicrosoft.com, got %r" % organization,
                          option="organization")
    return ExchangeAdminClient(module.http, module.cloud, tenant, anchor_domain=organization)


def validate_access_params(params):
    """Checks that need no network, each naming its option."""
    seen = {}
    for index, entry in enumerate(params.get("mailboxes") or []):
        option = "mailboxes[%d]" % index
        address = str(entry.get("address") or "").strip().lower()
        if "@" not in address or address.startswith("@") or address.endswith("@") or " " in address:
            raise ConfigError("%r is not an email address" % entry.get("address"), option=option + ".address")
        if address in seen:
            raise ConfigError("%s is declared twice (also mailboxes[%d])" % (address, seen[address]),
                              option=option + ".address")
        seen[address] = index
        if (entry.get("smtp_auth") or "enabled") not in SMTP_AUTH_CHOICES:
            raise ConfigError("must be one of %s" % ", ".join(SMTP_AUTH_CHOICES), option=option + ".smtp_auth")
    if params["state"] == "present" and not params.get("mailboxes") and not params.get("group"):
        raise ConfigError("declare at least one mailbox the app may send as (or a group for the RBAC scope)",
                          option="mailboxes")
    if params.get("group") and params.get("authorization_model") != "rbac":
        raise ConfigError("a group scope exists only in the RBAC model", option="group",
                          fix="remove group, or set authorization_model: rbac")
    scope_name = params.get("scope_name")
    if scope_name is not None and (not scope_name.strip() or len(scope_name) > 64 or "'" in scope_name):
        raise ConfigError("must be 1 to 64 characters without quotes", option="scope_name")
    if (params.get("wait_timeout") or 0) < 0:
        raise ConfigError("must be 0 or more seconds", option="wait_timeout")


def run_exchange_smtp_access(module):
    params = module.params
    resolve_authorization_model(params, module.cloud.name, module.warn)
    validate_access_params(params)
    graph = GraphClient(module.http, module.cloud)
    # A service principal entra_app created just before may take seconds to replicate: wait a little for it.
    # In check mode nothing was created before this task, so a missing app / SP is a predicted creation at once.
    identity = resolve_app(graph, params["app_id"], params.get("object_id"),
                           wait=min(params.get("wait_timeout") or 0, SP_REPLICATION_WAIT),
                           check_mode=module.check_mode)
    consent = None if identity.planned else (lambda: has_smtp_consent(graph, identity.sp_id))
    progress = _progress(module)
    access = ExchangeAccess(exchange_client(module), identity, params, module.check_mode, smtp_consent=consent,
                            progress=progress)
    before = access.describe()
    if params.get("state") == "absent":
        after = access.plan_absent(before)
    else:
        after = access.plan_present(before)
    changed = bool(access.actions)
    confirmed = False
    if changed and not module.check_mode:
        access.apply()
    # Also when nothing changed (RBAC): a re-run after a 'pending' answer waits for what the last run configured.
    if (params.get("wait_for_effect") and params.get("state") != "absent" and not module.check_mode
            and (changed or access.model == "rbac")):
        confirmed = access.wait_for_effect(params.get("wait_timeout") or 0)
    result = {
        "changed": changed,
        "app_id": (params.get("app_id") or None) if identity.planned else identity.app_id,
        "service_principal_id": None if identity.planned else identity.sp_id,
        "authorization_model": access.model,
        "scope_name": access.scope_name if access.model == "rbac" else None,
        "actions": [a.describe() for a in access.actions],
        "mailboxes": access.verdicts(after, confirmed) if params.get("state") != "absent" else [],
    }
    if changed:
        result["diff"] = {"before": before, "after": after}
    if progress.lines:
        result["progress"] = progress.lines
    if identity.planned:
        module.warn("check mode: app %s has no service principal yet (an earlier task would create it), so "
                    "everything for it is predicted as created" % identity.app_id)
    for message in access.warnings + access.client.warnings:
        module.warn(message)
    return result


def run_exchange_smtp_access_info(module):
    params = module.params
    graph = GraphClient(module.http, module.cloud)
    progress = _progress(module)
    client = exchange_client(module)
    report = access_report(client, graph, params, progress=progress)
    # What exchange_smtp_access would choose here, and whether the RBAC model's role exists in this tenant.
    report["tenant"]["authorization_model_default"] = authorization_model_for(module.cloud.name)[0]
    report["tenant"]["rbac_smtp_role"] = ExchangeReader(client).smtp_role_exists()
    if progress.lines:
        report["progress"] = progress.lines
    return dict(report, changed=False)


class _Progress(object):
    """How far the per-mailbox reads are: logged as they happen (the target's syslog / journal), and returned
    as `progress` at -v (Ansible shows a module's result only when it ends)."""

    def __init__(self, log, keep):
        self.log, self.keep, self.lines = log, keep, []

    def __call__(self, line):
        if self.log:
            self.log(line)
        if self.keep:
            self.lines.append(line)


def _progress(module):
    inner = getattr(module, "module", module)
    return _Progress(getattr(inner, "log", None), (getattr(inner, "_verbosity", 0) or 0) >= 1)
