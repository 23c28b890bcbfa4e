# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who the sending app is, from Entra ID (Graph): its service principal object id -- the id Exchange needs --
and whether it holds the admin-consented SMTP.SendAsApp permission (the classic model's Entra half).

The most common setup mistake is giving Exchange the *application* object id (App registrations) instead of the
*service principal* object id (Enterprise applications). Exchange accepts either and then fails every SMTP AUTH
with 535 5.7.3, so the id is looked up here and a wrong one is refused with the right one in the message.
Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError, NotPropagatedError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.permissions import (
    EXCHANGE_APP_ID, SMTP_ROLE)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.checks import is_guid
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.graph import odata_quote


# Check mode: stand-ins for the ids of an app / service principal that an earlier task (entra_app, itself in check
# mode) would create. They only ever appear in the predicted actions; no cmdlet is sent with them.
PLANNED_APP_ID = "(the app an earlier task creates)"
PLANNED_SP_ID = "(its service principal, not created yet)"


class AppIdentity(object):
    """The sending app as Entra ID knows it: app_id, service principal id and display name.

    `planned` is True in check mode for an app or service principal that does not exist yet: the run predicts
    creating everything for it instead of waiting for an object that check mode never creates.
    """

    def __init__(self, app_id, sp, planned=False):
        self.app_id = app_id
        self.sp = sp
        self.sp_id = sp["id"]
        self.display_name = sp.get("displayName") or app_id
        self.planned = planned


def planned_identity(app_id=None):
    return AppIdentity(app_id or PLANNED_APP_ID, {"id": PLANNED_SP_ID}, planned=True)


def service_principal_of(graph, app_id, wait=0):
    """GET /servicePrincipals(appId='...'); waits up to `wait` seconds for a just-created one to replicate."""
    def read():
        return graph.get_or_none("servicePrincipals(appId=%s)" % odata_quote(app_id))
    if not wait:
        return read()
    try:
        return graph.wait_for(read, "the service principal of app %s" % app_id, wait)
    except NotPropagatedError:
        return None


def resolve_app(graph, app_id, object_id=None, wait=0, check_mode=False):
    """The app's service principal; ConfigError when it has none or when object_id is not its SP id.

    In check mode a missing app id (an earlier entra_app task in check mode returns none) or a missing service
    principal is a predicted creation: a planned identity, at once, never a wait.
    """
    if check_mode and not app_id:
        return planned_identity()
    if not is_guid(app_id):
        raise ConfigError("must be the app's client id (a GUID), got %r" % app_id, option="app_id")
    if object_id is not None and not is_guid(object_id):
        raise ConfigError("must be a GUID, got %r" % object_id, option="object_id")
    sp = service_principal_of(graph, app_id, 0 if check_mode else wait)
    if sp is None and check_mode:
        return planned_identity(app_id)
    if sp is None:
        raise ConfigError("the app %s has no service principal (enterprise application) in this tenant, so Exchange "
                          "cannot register it" % app_id, option="app_id",
                          fix="create it (o365.smtp_oauth.entra_app does), or check that app_id is the "
                              "Application (client) ID of an app in this tenant")
    if object_id is not None and object_id.lower() != sp["id"].lower():
        app = graph.application_by_app_id(app_id)
        if app is not None and str(app.get("id", "")).lower() == object_id.lower():
            raise ConfigError("%s is the application object id (App registrations) of app %s; Exchange needs the "
                              "service principal object id (Enterprise applications), which is %s"
                              % (object_id, app_id, sp["id"]), option="object_id", code="application_object_id",
                              fix="set object_id to %s, or leave it out: the module finds it itself" % sp["id"])
        raise ConfigError("%s is not the service principal object id of app %s; that is %s"
                          % (object_id, app_id, sp["id"]), option="object_id",
                          fix="set object_id to %s, or leave it out: the module finds it itself" % sp["id"])
    return AppIdentity(app_id, sp)


def has_smtp_consent(graph, sp_id):
    """True when the SP holds the admin-consented Exchange application permission SMTP.SendAsApp."""
    exchange = graph.find_service_principal(EXCHANGE_APP_ID)
    if exchange is None:
        return False
    role_ids = {str(r.get("id", "")).lower() for r in exchange.get("appRoles") or [] if r.get("value") == SMTP_ROLE}
    for assignment in graph.list("servicePrincipals/%s/appRoleAssignments" % sp_id):
        if str(assignment.get("resourceId", "")).lower() == exchange["id"].lower() and \
                str(assignment.get("appRoleId", "")).lower() in role_ids:
            return True
    return False
