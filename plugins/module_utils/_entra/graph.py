# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Microsoft Graph calls used by the entra_* modules.

GraphClient sits on the shared HttpClient (which already retries 429/5xx and dropped connections) and adds
what is specific to Graph: paging, the uniqueName upsert, lookups that answer None instead of failing on 404,
and bounded waits for Entra's replication lag. Graph's errors (what each status means for Graph, which ones are
replication lag) are read here too: `GraphErrors`, the mapper every Graph request passes to the HttpClient.
Plain Python: no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time
from urllib.parse import quote

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import NotPropagatedError, ServiceError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._http import ServiceErrors
from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import poll

# Codes Entra answers while a just-written object has not replicated to the replica serving the read.
NOT_FOUND_CODES = ("Request_ResourceNotFound", "ResourceNotFound", "NotFound", "Request_BadRequest")
_LAG_TEXT = re.compile(r"(?i)does not exist|not present|does not reference a valid application|not found|"
                       r"no service principal|cannot be found")
# Graph's refusal of a URL outside its metadata ("Resource not found for the segment 'x'.") is a client error,
# never lag, although its text reads like one.
_CONTRACT_TEXT = re.compile(r"(?i)not found for the segment")

APP_SELECT = None  # full objects: the info module needs every credential field


def odata_quote(value):
    """A string literal for OData ($filter, key segments): single quotes doubled, never injected."""
    return "'%s'" % str(value).replace("'", "''")


def odata_key(value):
    """A key literal for a URL path segment: OData-quoted, then percent-encoded ('#', '?', '/', '%', spaces...)."""
    return quote(odata_quote(value), safe="'")


def is_not_found(error):
    return isinstance(error, ServiceError) and (error.status == 404 or error.code in ("Request_ResourceNotFound",
                                                                                      "ResourceNotFound"))


def is_replication_lag(error):
    """True when an error is what Entra says about an object that exists but is not replicated yet."""
    if not isinstance(error, ServiceError):
        return False
    if error.status == 404:
        return True
    message = error.message or ""
    return error.status == 400 and bool(_LAG_TEXT.search(message)) and not _CONTRACT_TEXT.search(message)


class GraphErrors(ServiceErrors):
    """Microsoft Graph's answers: what each error status means for Graph (429 and 5xx: the base's retry rule)."""

    name = "Microsoft Graph"
    endpoint_option = "graph_endpoint"
    ADVICE = {
        400: "check the values given to the module; Graph's message says which one it refused",
        401: "the token was refused: check tenant_id, the credential and that the app exists in this tenant",
        403: "grant the application permission named in the message to the identity running the module "
             "and give admin consent, then run again",
        404: "check the identifier; a just-created object can take a minute to be visible",
        409: "the object changed or already exists; run again",
    }

    def fix(self, status):
        return self.ADVICE.get(status) or super(GraphErrors, self).fix(status)


GRAPH_ERRORS = GraphErrors()


class GraphClient(object):
    """Graph v1.0 for one cloud. `http` is an HttpClient; `sleep`/`clock` injectable for the wait logic."""

    def __init__(self, http, cloud, version="v1.0", sleep=time.sleep, clock=time.monotonic, poll_interval=2.0):
        self.http = http
        self.cloud = cloud
        self.base = "%s/%s" % (cloud.graph_endpoint, version)
        self.scope = cloud.graph_scope
        self.sleep = sleep
        self.clock = clock
        self.poll_interval = poll_interval
        self.writes = 0  # how many write requests this client sent (benchmarks and check-mode proofs)

    # -- plain verbs -------------------------------------------------------------------------------
    def url(self, path):
        return path if path.startswith("https://") else self.base + "/" + path.lstrip("/")

    def request(self, method, path, json=None, params=None, headers=None):
        if method != "GET":
            self.writes += 1
        return self.http.request(method, self.url(path), scope=self.scope, json=json, params=params,
                                 headers=headers, errors=GRAPH_ERRORS)

    def get(self, path, params=None):
        return self.request("GET", path, params=params).json()

    def get_or_none(self, path, params=None):
        try:
            return self.get(path, params=params)
        except ServiceError as error:
            if is_not_found(error):
                return None
            raise

    def list(self, path, params=None, headers=None):
        """Every item of a collection, following @odata.nextLink."""
        items = []
        url, query = path, params
        while url:
            body = self.request("GET", url, params=query, headers=headers).json() or {}
            items.extend(body.get("value", []))
            url, query = body.get("@odata.nextLink"), None
        return items

    def post(self, path, json=None, headers=None):
        return self.request("POST", path, json=json, headers=headers).json()

    def patch(self, path, json=None, headers=None):
        return self.request("PATCH", path, json=json, headers=headers).json()

    def delete(self, path):
        try:
            self.request("DELETE", path)
            return True
        except ServiceError as error:
            if is_not_found(error):  # already gone (a retried delete whose first answer was lost)
                return False
            raise

    # -- applications ------------------------------------------------------------------------------
    def upsert_application(self, unique_name, body):
        """PATCH /applications(uniqueName='x') with create-if-missing: a repeat can never duplicate the app.

        Returns the created object (201) or None (204, updated).
        """
        return self.patch("applications(uniqueName=%s)" % odata_key(unique_name), json=body,
                          headers={"Prefer": "create-if-missing"})

    def application_by_unique_name(self, unique_name):
        return self.get_or_none("applications(uniqueName=%s)" % odata_key(unique_name))

    def application_by_app_id(self, app_id):
        found = self.list("applications", params={"$filter": "appId eq %s" % odata_quote(app_id)})
        return found[0] if found else None

    def applications_by_display_name(self, display_name):
        return self.list("applications", params={"$filter": "displayName eq %s" % odata_quote(display_name)})

    # -- service principals ------------------------------------------------------------------------
    def find_service_principal(self, app_id):
        """The service principal (enterprise application) of an app, by the app's appId; None if missing.

        Its `id` is the object id Exchange's New-ServicePrincipal needs (not the application's id).
        """
        found = self.list("servicePrincipals", params={"$filter": "appId eq %s" % odata_quote(app_id)})
        return found[0] if found else None

    def upsert_service_principal(self, app_id, body=None):
        """PATCH /servicePrincipals(appId='x') with create-if-missing: the SP of an app, never two of them."""
        return self.patch("servicePrincipals(appId=%s)" % odata_key(app_id), json=body or {},
                          headers={"Prefer": "create-if-missing"})

    def find_service_principals_by_name(self, display_name):
        return self.list("servicePrincipals", params={"$filter": "displayName eq %s" % odata_quote(display_name)})

    # -- replication -------------------------------------------------------------------------------
    def wait_for(self, read, what, timeout, option="wait_timeout"):
        """Poll read() until it returns something, for at most timeout seconds.

        read() answering None or raising a replication-lag error means "not visible yet"; any other error is a
        real failure and is raised at once. On timeout: NotPropagatedError ("created, not yet visible").
        """
        lag = []

        def attempt():
            try:
                return read()
            except ServiceError as error:
                if not is_replication_lag(error):
                    raise
                lag.append(error)
                return None
        outcome = poll(attempt, timeout, delay=min(0.25, self.poll_interval), max_delay=self.poll_interval,
                       sleep=self.sleep, clock=self.clock)
        if outcome.ready:
            return outcome.value
        last = lag[-1] if lag else None
        raise NotPropagatedError(
            "%s was written but is still not visible after %s seconds (Entra replication lag); nothing failed"
            % (what, timeout), option=option, code=getattr(last, "code", None) or "not_yet_visible",
            fix="run the task again later (it is idempotent), or raise %s" % option,
            request_id=getattr(last, "request_id", None))

    def retry_while_lagging(self, write, what, timeout, option="wait_timeout"):
        """Run a write that depends on a just-created object until replication lets it succeed."""
        holder = []

        def attempt():
            holder.append(write())
            return True
        self.wait_for(attempt, what, timeout, option=option)
        return holder[-1]
