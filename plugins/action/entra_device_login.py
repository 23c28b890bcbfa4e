# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An admin's interactive sign-in (device code flow), on the controller, for the bootstrap playbook.

Why an action plugin: a module cannot print while it runs, and the user must see the code and the page while the
task waits. This runs on the controller, prints Microsoft's sign-in message through Ansible's display at normal
verbosity the moment the code exists, then polls until the admin signed in (or declined, or the code expired, or
`timeout` passed). The delegated access token goes to the registered result only: the result is marked no_log, so
every callback and log shows it censored at any verbosity; what is not secret (who signed in, with which roles)
is printed once more on its own. The device code itself never leaves this process.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError, ConfigError, O365Error
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.device_login import DeviceLogin
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.directory_roles import (
    missing_for_bootstrap, role_names)

from ansible_collections.o365.smtp_oauth.plugins.modules.entra_device_login import argument_spec

display = Display()


def sign_in(args, show, clock=time.time):
    """The result of one sign-in: the token and who holds it; raises O365Error (nothing secret in it)."""
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import cloud_from_options
    if args["timeout"] <= 0:
        raise ConfigError("must be more than 0 seconds", option="timeout")
    cloud = cloud_from_options(args)
    login = DeviceLogin(args.get("tenant_id"), cloud, client_id=args["client_id"], ca_path=args.get("ca_path"),
                        scopes=args["scopes"])
    flow = login.start()
    show(flow["message"])
    token, claims = login.wait(flow, args["timeout"], clock=clock)
    user = claims.get("upn") or claims.get("preferred_username") or claims.get("oid") or "(unknown user)"
    roles = role_names(claims.get("wids"))
    granted = set(str(claims.get("scp") or "").split())
    missing = [s for s in args["scopes"] if s not in granted]
    if missing:
        raise AuthError("%s signed in, but the token lacks the delegated permission(s) %s" % (
            user, ", ".join(missing)), option="scopes", code="missing_permission",
            fix="accept the consent screen at sign-in as an admin, or grant those Microsoft Graph delegated "
                "permissions to the client %s (Enterprise applications, Permissions)" % args["client_id"])
    if args["check_roles"]:
        needed = missing_for_bootstrap(claims.get("wids"))
        if needed:
            raise AuthError("%s signed in, holding %s; bootstrapping the admin app needs %s" % (
                user, ", ".join(roles) or "no directory role", needed), code="not_an_admin",
                fix="sign in as an admin who holds those roles (activate them first if they are eligible in "
                    "Privileged Identity Management)")
    return dict(changed=False, access_token=token, expires_on=claims.get("exp"), user=user, roles=roles,
                tenant_id=claims.get("tid") or args.get("tenant_id"), client_id=args["client_id"],
                scopes=str(claims.get("scp") or "").split())


class ActionModule(ActionBase):

    _supports_check_mode = True  # a sign-in reads and writes nothing in the tenant
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=argument_spec())
        args = args or {}

        def show(message):
            display.display("%s: %s" % (self._task.get_name(), message), color="bright purple")
        try:
            outcome = sign_in(args, show)
        except O365Error as error:
            result.update(failed=True, **error.to_result())
            return result
        except Exception as error:  # a bug or an unexpected answer: plainly, never a traceback or a token
            result.update(failed=True, msg="unexpected error (%s): %s" % (type(error).__name__, error))
            return result
        display.display("%s: signed in as %s (%s)" % (self._task.get_name(), outcome["user"],
                                                      ", ".join(outcome["roles"]) or "no directory role"))
        result.update(outcome)
        result["_ansible_no_log"] = True
        return result
