# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The three entra_* module bodies: options in, the result out (O365Module.run exits with it).

`module` is the O365Module wrapper (params, check_mode, cloud, http, warn); this file does not
import Ansible, it only calls those attributes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import resolve_authorization_model
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError, ConfigError, NotPropagatedError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.app import AppState, find_app
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.credential import CredentialState
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.checks import is_guid
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.info import (
    app_report, apps_report, warn_days_of)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.graph import GraphClient
from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import poll

# AADSTS codes a brand-new secret or app answers with until it has replicated.
_NEW_CREDENTIAL_CODES = ("AADSTS7000215", "AADSTS700016", "AADSTS7000222")


def graph_client(module):
    return GraphClient(module.http, module.cloud)


def _check_timeout(params):
    if params.get("wait_timeout") is not None and params["wait_timeout"] < 0:
        raise ConfigError("must be 0 or more seconds", option="wait_timeout")


def run_entra_app(module):
    params = module.params
    resolve_authorization_model(params, module.cloud.name, module.warn)
    _check_timeout(params)
    state = AppState(graph_client(module), params, module.check_mode)
    if params.get("state") == "absent":
        changed, result = state.ensure_absent()
    else:
        changed, result = state.ensure_present()
    for message in state.warnings:
        module.warn(message)
    result["changed"] = changed
    if not changed:
        result.pop("diff", None)
    return result


def find_app_waiting(graph, params, check_mode=False):
    """The app a credential belongs to; waits (bounded) when a just-created app has not replicated yet.

    In check mode an earlier entra_app task created nothing: None (the app is missing) at once, never a wait.
    """
    if check_mode and not params.get("unique_name") and not params.get("app_id"):
        return None  # the app_id of an app an earlier task in check mode would create
    if not params.get("unique_name") and not params.get("app_id"):
        raise ConfigError("one of unique_name or app_id is required", option="unique_name")
    if check_mode:
        try:
            return find_app(graph, params.get("unique_name"), params.get("app_id"))
        except ConfigError:
            if params.get("unique_name"):
                raise
            return None

    def read():
        try:
            return find_app(graph, params.get("unique_name"), params.get("app_id"))
        except ConfigError:
            if params.get("unique_name"):
                raise
            return None  # app_id not found (yet)
    try:
        return graph.wait_for(read, "application %s" % (params.get("unique_name") or params.get("app_id")),
                              params["wait_timeout"])
    except NotPropagatedError:
        raise ConfigError("no application %s in this tenant (waited %s s for replication)" % (
            params.get("unique_name") or params.get("app_id"), params["wait_timeout"]),
            option="unique_name" if params.get("unique_name") else "app_id",
            fix="create it first with o365.smtp_oauth.entra_app, or check the name")


def _replicating(error):
    return error is not None and str(error.code or "") in _NEW_CREDENTIAL_CODES


def secret_verifier(module, app, timeout, sleep=time.sleep, clock=time.monotonic):
    """A callable that waits until a new secret can obtain a Graph token (new secrets fail for seconds)."""
    def verify(secret):
        """None when the secret got a token; else why not (the secret exists: never lose its value)."""
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.options import (
            credential_from_options, kind_option_names)
        # Only the new secret signs in: every kind's own option off, the shared ones (tenant, cloud, endpoints,
        # CA) kept; no token cache (this token proves the secret and is thrown away).
        options = dict(module.params, token_cache_dir=None)
        for key in kind_option_names():
            options[key] = None
        options.update(client_id=app["appId"], client_secret=secret, auth_method="client_secret")
        credential = credential_from_options(options, cloud=module.cloud)

        def attempt():
            try:
                credential.get_token(module.cloud.graph_scope)
                return None
            except AuthError as error:
                return error
        # Keep asking while the identity platform answers "not replicated yet"; any other answer is final.
        outcome = poll(attempt, timeout, ready=lambda error: not _replicating(error), delay=1.0, max_delay=5.0,
                       sleep=sleep, clock=clock)
        error = outcome.value
        if error is None:
            return None
        if not outcome.ready:
            # Not "wrong secret": the identity platform has not got the brand-new one yet.
            return ("wait_timeout: the new secret of app %s was added but the identity platform still "
                    "refused it after %s s (%s): it has not replicated yet, which can take a few minutes. "
                    "Its value is in this result: keep it; it will work shortly (or raise wait_timeout)"
                    % (app["appId"], timeout, error.code))
        return "the new secret of app %s was added but could not obtain a token: %s" % (
            app["appId"], error.message)
    return verify


def run_entra_app_credential(module):
    params = module.params
    _check_timeout(params)
    graph = graph_client(module)
    app = find_app_waiting(graph, params, check_mode=module.check_mode)
    if app is None:
        return _predicted_credential(params)
    verifier = None
    if params.get("verify"):
        if params["type"] == "secret":
            verifier = secret_verifier(module, app, params["wait_timeout"])
        else:
            module.warn("verify applies to secrets only: a %s credential is proven by its own sign-in"
                        % params["type"])
    state = CredentialState(graph, app, params, module.check_mode, verify=verifier)
    handler = {"secret": state.ensure_secret, "certificate": state.ensure_certificate,
               "federated": state.ensure_federated}[params["type"]]
    changed, result = handler()
    for message in state.warnings:
        module.warn(message)
    result.update(changed=changed, app_id=app.get("appId"), unique_name=app.get("uniqueName"),
                  changes=state.changes, state=params.get("state"))
    if not changed:
        result.pop("diff", None)
    # A result with `secret` is censored by the action plugin (plugins/action/entra_app_credential.py): hidden in
    # every callback and log, kept in the registered variable. A module cannot do it itself (ansible-core strips
    # `_ansible_no_log` from module returns).
    if result.get("verify_error"):
        # Fail, but with the value still in the registered result: a created secret must never be lost.
        message = result.pop("verify_error")
        return dict(result, failed=True, msg=message, option="verify")
    return result


def _predicted_credential(params):
    """Check mode, app not there: what a real run would do once an earlier task has created the app."""
    app = params.get("unique_name") or params.get("app_id") or "(the app an earlier task creates)"
    present = params["state"] != "absent"
    label = params.get("name") or params.get("display_name") or params.get("thumbprint") or params["type"]
    changes = ["add %s credential %s to application %s (it does not exist yet: an earlier task would create it)"
               % (params["type"], label, app)] if present else []
    result = dict(changed=present, app_id=params.get("app_id") or None, unique_name=params.get("unique_name"),
                  changes=changes, state=params.get("state"))
    if present:
        result["diff"] = {"before": {}, "after": {"type": params["type"], "name": label}}
    return result


def run_entra_app_info(module):
    params = module.params
    if params.get("warn_days") is not None and params["warn_days"] < 0:
        raise ConfigError("must be 0 or more days", option="warn_days")
    single = [name for name in ("unique_name", "app_id", "display_name") if params.get(name)]
    several = params.get("app_ids") is not None or params.get("smtp_senders")
    if single and several:
        raise ConfigError("%s names one app, app_ids / smtp_senders several: give one kind" % single[0],
                          option=single[0], fix="put the app's client id into app_ids instead")
    if not several:
        found, report, warnings = app_report(graph_client(module), params)
        for message in warnings:
            module.warn(message)
        if found:
            report["findings"] = warnings
        return dict(changed=False, app=report, exists=found)
    bad = [str(v) for v in params.get("app_ids") or [] if not is_guid(v)]
    if bad:
        raise ConfigError("not an application (client) id: %s" % ", ".join(bad), option="app_ids",
                          fix="give each app by its client id (a GUID), as Entra ID shows it")
    reports, missing, expiring, warnings = apps_report(graph_client(module), params)
    for message in warnings:
        module.warn(message)
    return dict(changed=False, apps=reports, missing_app_ids=missing, expiring=expiring, findings=warnings,
                warn_days=warn_days_of(params))


def run_entra_directory_role(module):
    """Assign (or remove) a tenant-wide directory role to an app's service principal."""
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra import directory_role as roles
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.exchange_identity import resolve_app
    params = module.params
    _check_timeout(params)
    template_id = roles.role_template_id(params["role"])
    label = roles.role_label(template_id)
    graph = graph_client(module)
    identity = resolve_app(graph, params.get("app_id"), wait=params["wait_timeout"], check_mode=module.check_mode)
    found = [] if identity.planned else roles.assignments_of(graph, identity.sp_id, template_id)
    present = params["state"] == "present"
    result = dict(app_id=identity.app_id if not identity.planned else params.get("app_id"), role=label,
                  role_template_id=template_id, service_principal_id=None if identity.planned else identity.sp_id,
                  state=params["state"], changes=[])
    if present == bool(found):
        result.update(changed=False, assignment_id=found[0]["id"] if found else None)
        return result
    what = "%s %s %s service principal of app %s" % ("assign" if present else "remove", label,
                                                     "to the" if present else "from the", result["app_id"])
    result.update(changed=True, changes=[what],
                  diff={"before": {"role": label if found else None}, "after": {"role": label if present else None}})
    if module.check_mode:
        result["assignment_id"] = found[0]["id"] if found else None
        return result
    if present:
        created = graph.retry_while_lagging(lambda: roles.assign(graph, identity.sp_id, template_id),
                                            "the service principal of app %s" % identity.app_id,
                                            params["wait_timeout"])
        result["assignment_id"] = (created or {}).get("id")
    else:
        for assignment in found:
            roles.unassign(graph, assignment["id"])
        result["assignment_id"] = None
    return result
