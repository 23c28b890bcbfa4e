# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An interactive admin sign-in with the OAuth 2.0 device code flow (msal's PublicClientApplication), for the
one-time bootstrap: start() hands out the code and the page to enter it on, wait() polls until the user signed in,
declined, the code expired or `timeout` passed. The token is delegated (the admin's own rights), never cached.

The default client is Microsoft Graph Command Line Tools (the public client Microsoft's Graph PowerShell SDK signs
in with): present in every tenant, it may ask for any Graph scope, and an admin consents at sign-in.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError, ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.jwt_claims import ClaimsError, decode_claims

GRAPH_CLI_CLIENT_ID = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
# What bootstrapping does with Graph: create the app, grant it app roles, assign it a directory role.
BOOTSTRAP_SCOPES = ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All",
                    "RoleManagement.ReadWrite.Directory")


class DeviceLogin(object):
    def __init__(self, tenant_id, cloud, client_id=GRAPH_CLI_CLIENT_ID, ca_path=None, timeout=30,
                 scopes=BOOTSTRAP_SCOPES):
        if not tenant_id or str(tenant_id).lower() in ("common", "organizations", "consumers"):
            raise ConfigError("must name the tenant (its id or initial domain)", option="tenant_id",
                              fix="set tenant_id or AZURE_TENANT_ID to the tenant being bootstrapped")
        self.tenant_id, self.cloud, self.client_id = tenant_id, cloud, client_id
        self.ca_path, self.http_timeout = ca_path, timeout
        self.scopes = ["%s/%s" % (cloud.graph_resource.rstrip("/"), s) for s in scopes]
        self._app = None

    def _application(self):
        if self._app is None:
            from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.msal_credentials import (
                _discovery_error, _import_msal)
            from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.msal_http import IdentityHttpClient
            msal = _import_msal("the device code sign-in")
            try:
                self._app = msal.PublicClientApplication(
                    self.client_id, authority=self.cloud.authority(self.tenant_id),
                    http_client=IdentityHttpClient(self.ca_path, self.http_timeout),
                    instance_discovery=False if self.cloud.authority_overridden else None,
                    app_name="o365.smtp_oauth")
            except ValueError as error:
                raise _discovery_error(error, self.cloud.authority(self.tenant_id))
        return self._app

    def start(self):
        """The flow (msal's dict, holding the device code: keep it to this process) and what to show the user."""
        flow = self._application().initiate_device_flow(scopes=self.scopes)
        if "user_code" not in flow:
            raise _translate(flow, "the device code sign-in could not start")
        return flow

    def wait(self, flow, timeout, clock=time.time):
        """The access token and its claims once the user signed in; AuthError otherwise."""
        deadline = clock() + timeout
        flow["expires_at"] = min(flow.get("expires_at", deadline), deadline)  # msal polls until then
        result = self._application().acquire_token_by_device_flow(flow)
        if "access_token" in result:
            try:
                claims = decode_claims(result["access_token"])
            except ClaimsError:
                claims = {}
            return result["access_token"], claims
        error = result.get("error")
        if error in ("authorization_pending", "slow_down"):
            raise AuthError("nobody completed the sign-in within %d seconds" % timeout, option="timeout",
                            code="sign_in_timeout", fix="run again and enter the code in time, or raise timeout")
        if error == "authorization_declined":
            raise AuthError("the sign-in was declined at the verification page", code="sign_in_declined",
                            fix="run again and accept the sign-in (the consent screen lists the permissions the "
                                "bootstrap needs)")
        if error == "expired_token":
            raise AuthError("the code expired before the sign-in was completed", code="sign_in_expired",
                            fix="run again and enter the new code within the time the message gives")
        raise _translate(result, "the device code sign-in failed")


def _translate(result, what):
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.aadsts import aadsts_code, translate_aadsts
    if aadsts_code(str(result.get("error_description") or "")) is not None:
        return translate_aadsts(result, option_hint="client_id")
    return AuthError("%s: %s" % (what, result.get("error") or "no answer"), option="client_id",
                     code="device_flow_failed", fix="check tenant_id, client_id and cloud")
