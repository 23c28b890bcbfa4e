"""A scripted stand-in for HttpClient.request, for unit tests of the clients above it (Graph, Exchange) that drive
their logic through answers a test writes. An answer is a real HttpResponse, and what the client does with it is
the real error mapper's call: a failed answer raises the service's error, as HttpClient.request does after its
retries (the retries themselves are tested against the emulator in tests/unit/module_utils/test_http.py)."""

import json

from ansible_collections.o365.smtp_oauth.plugins.module_utils._http import DEFAULT_ERRORS, HttpResponse


def response(status=200, body=None, headers=None, url="https://graph.microsoft.com/v1.0/x", method="GET"):
    """An HttpResponse with a JSON body (None: empty)."""
    data = json.dumps(body).encode() if body is not None else b""
    return HttpResponse(status, dict({"request-id": "req-1"}, **(headers or {})), data, url=url, method=method)


def as_the_client_answers(answer, errors=None, raise_errors=True):
    """The answer, or the mapper's error for a failed one (HttpClient.request's last step)."""
    errors = errors or DEFAULT_ERRORS
    if raise_errors and errors.failed(answer):
        raise errors.error(answer)
    return answer
