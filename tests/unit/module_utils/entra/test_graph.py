"""GraphClient logic: paging, upsert headers, 404 handling, bounded replication waits.

The HTTP layer is replaced by a scripted transport here (unit level: it lets the wait logic run on an injected
clock); the same client runs against the emulator's real HTTPS server in tests/integration/test_entra_*.py.
"""

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import resolve_cloud
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import NotPropagatedError, ServiceError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.graph import GraphClient, odata_quote

from helpers.scripted_http import as_the_client_answers, response


class ScriptedHttp(object):
    """Answers requests from a list of (status, body) or exceptions, and records them."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def request(self, method, url, scope=None, json=None, params=None, headers=None, errors=None):
        self.calls.append(dict(method=method, url=url, scope=scope, json=json, params=params, headers=headers))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return as_the_client_answers(response(*answer, url=url, method=method), errors)


class Clock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def client(answers, clock=None):
    clock = clock or Clock()
    return GraphClient(ScriptedHttp(answers), resolve_cloud("public"), sleep=clock.sleep, clock=clock)


def not_found():
    return ServiceError("Resource 'x' does not exist or one of its queried reference-property objects are not "
                        "present.", code="Request_ResourceNotFound", status=404)


def test_list_follows_next_link_and_keeps_order():
    graph = client([(200, {"value": [{"id": 1}], "@odata.nextLink": "https://graph.microsoft.com/v1.0/x?$skiptoken=a"}),
                    (200, {"value": [{"id": 2}, {"id": 3}]})])
    assert [i["id"] for i in graph.list("applications", params={"$top": "1"})] == [1, 2, 3]
    first, second = graph.http.calls
    assert first["url"] == "https://graph.microsoft.com/v1.0/applications" and first["params"] == {"$top": "1"}
    assert second["url"].endswith("$skiptoken=a") and second["params"] is None
    assert first["scope"] == "https://graph.microsoft.com/.default"
    assert graph.writes == 0


def test_upsert_is_a_patch_with_create_if_missing_and_quoted_key():
    graph = client([(201, {"id": "o1", "appId": "a1"})])
    assert graph.upsert_application("it's-mine", {"displayName": "x"})["appId"] == "a1"
    [call] = graph.http.calls
    assert call["method"] == "PATCH" and call["headers"] == {"Prefer": "create-if-missing"}
    assert call["url"].endswith("/applications(uniqueName='it''s-mine')")
    assert graph.writes == 1


def test_odata_quote_doubles_quotes():
    assert odata_quote("a'b") == "'a''b'"


def test_get_or_none_on_404_raised_or_returned():
    graph = client([not_found(), (404, {"error": {"code": "Request_ResourceNotFound", "message": "gone"}})])
    assert graph.get_or_none("applications/x") is None
    assert graph.get_or_none("applications/y") is None


def test_other_errors_are_raised():
    graph = client([(403, {"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges"}})])
    with pytest.raises(ServiceError) as caught:
        graph.get_or_none("applications/x")
    assert caught.value.code == "Authorization_RequestDenied" and caught.value.status == 403


def test_delete_of_missing_object_is_not_an_error():
    graph = client([not_found()])
    assert graph.delete("applications/x") is False


def test_wait_for_survives_lag_then_returns():
    clock = Clock()
    graph = client([not_found(), (200, {"value": []}), (200, {"value": [{"id": "sp"}]})], clock)
    assert graph.wait_for(lambda: graph.find_service_principal("a1"), "sp", timeout=30)["id"] == "sp"
    assert 0 < clock.now < 30


def test_wait_for_timeout_says_not_yet_visible_not_failed():
    clock = Clock()
    graph = client([], clock)
    with pytest.raises(NotPropagatedError) as caught:
        graph.wait_for(lambda: None, "application 'relay'", timeout=10)
    assert "still not visible after 10 seconds" in caught.value.message and "nothing failed" in caught.value.message
    assert caught.value.option == "wait_timeout" and clock.now <= 10


def test_wait_for_raises_real_failures_at_once():
    clock = Clock()
    graph = client([], clock)

    def read():
        raise ServiceError("Insufficient privileges", code="Authorization_RequestDenied", status=403)
    with pytest.raises(ServiceError):
        graph.wait_for(read, "x", timeout=60)
    assert clock.now == 0


def test_retry_while_lagging_retries_the_write_until_replicated():
    clock = Clock()
    lag = ServiceError("The appId 'a1' of the service principal does not reference a valid application object.",
                       code="Request_BadRequest", status=400)
    graph = client([lag, lag, (201, {"id": "sp1"})], clock)
    created = graph.retry_while_lagging(lambda: graph.upsert_service_principal("a1"), "sp", 60)
    assert created == {"id": "sp1"} and graph.writes == 3
    assert graph.http.calls[-1]["url"].endswith("/servicePrincipals(appId='a1')")
    assert graph.http.calls[-1]["headers"] == {"Prefer": "create-if-missing"}


@pytest.mark.parametrize("message, code", [
    ("Resource not found for the segment 'addSecret'.", "BadRequest"),
    ("Invalid property 'ResourceAccess'.", "Request_BadRequest"),
    ("Parsing OData Select and Expand failed: Could not find a property named 'x' on type "
     "'microsoft.graph.application'.", "BadRequest"),
])
def test_a_request_graph_refuses_by_its_contract_is_no_replication_lag(message, code):
    """Graph's 400 for a URL or body outside its metadata fails at once: 'not found for the segment' and 'Could not
    find a property' read like lag to a text match, and waiting wait_timeout for them hid the real error."""
    clock = Clock()
    graph = client([], clock)

    def write():
        raise ServiceError(message, code=code, status=400)
    with pytest.raises(ServiceError) as caught:
        graph.retry_while_lagging(write, "x", 60)
    assert caught.value.message == message and clock.now == 0
