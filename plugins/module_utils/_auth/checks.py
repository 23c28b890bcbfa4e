# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline checks of the identity options every credential kind shares (tenant_id, client_id)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError

_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN_RE = re.compile(r"^(?=.{3,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_MULTI_TENANT = {
    "common": "it means any work or personal account",
    "organizations": "it means any work account",
    "consumers": "it means personal Microsoft accounts",
}


def is_guid(value):
    """A GUID exactly as written (callers strip what they accept with spaces)."""
    return bool(_GUID_RE.match(str(value or "")))


def check_tenant(value, required=True):
    """A tenant GUID or domain; the multi-tenant aliases cannot issue app-only tokens."""
    value = (value or "").strip() if isinstance(value, str) or value is None else str(value)
    if not value:
        if required:
            raise ConfigError("is required: client credentials are issued by one tenant", option="tenant_id",
                              fix="set tenant_id (or AZURE_TENANT_ID) to the tenant ID (GUID) or its "
                                  "domain, e.g. contoso.onmicrosoft.com")
        return None
    if value.lower() in _MULTI_TENANT:
        raise ConfigError("%r cannot be used: %s, but an app-only (client credentials) token is issued by one "
                          "specific tenant" % (value, _MULTI_TENANT[value.lower()]), option="tenant_id",
                          fix="give the tenant ID (GUID) or its domain, e.g. contoso.onmicrosoft.com")
    if not (is_guid(value) or _DOMAIN_RE.match(value)):
        raise ConfigError("%r is neither a tenant ID (GUID) nor a domain name" % value, option="tenant_id",
                          fix="give the Directory (tenant) ID shown in Entra ID, or e.g. contoso.onmicrosoft.com")
    return value


def check_client_id(value, option="client_id", required=True):
    value = (value or "").strip() if isinstance(value, str) or value is None else str(value)
    if not value:
        if required:
            raise ConfigError("is required for this credential", option=option,
                              fix="set %s to the Application (client) ID (a GUID)" % option)
        return None
    if not is_guid(value):
        raise ConfigError("%r is not an Application (client) ID; it must be a GUID" % value, option=option,
                          fix="copy the Application (client) ID from the app's Overview page")
    return value


def app_identity(opts):
    """tenant_id and client_id checked, for the kinds that sign in as an app registration (client credentials)."""
    return dict(tenant_id=check_tenant(opts.get("tenant_id")), client_id=check_client_id(opts.get("client_id")))
