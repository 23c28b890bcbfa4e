"""The Exchange admin client follows a tenant-specific redirect or a next page only to Microsoft's hosts (or the
configured endpoint's own host), so the admin token is never sent elsewhere.

The HTTP layer is a recording stand-in: Microsoft's hosts cannot be reached from here, and what is under test is
which URLs the client would send the token to.
"""

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import resolve_cloud
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.client import ExchangeAdminClient, ExchangeCmdletError

from helpers.scripted_http import as_the_client_answers, response

TENANT = "contoso.onmicrosoft.com"
START = "https://outlook.office365.com/adminapi/beta/%s/InvokeCommand" % TENANT


class Recorder(object):
    def __init__(self, answers):
        self.answers, self.urls = list(answers), []

    def request(self, method, url, errors=None, **unused):
        self.urls.append(url)
        status, headers, body = self.answers.pop(0)
        return as_the_client_answers(response(status, body, headers, url=url, method=method), errors)


def client(answers):
    http = Recorder(answers)
    return ExchangeAdminClient(http, resolve_cloud("public"), TENANT, anchor_domain=TENANT), http


def test_a_redirect_to_another_exchange_forest_is_followed_and_kept():
    other = "https://outlook.office365.com/adminapi/beta/%s/InvokeCommand?forest=emea" % TENANT
    exchange, http = client([(307, {"location": other}, None), (200, {}, {"value": [{"Name": "a"}]}),
                             (200, {}, {"value": []})])
    assert exchange.invoke("Get-Mailbox") == [{"Name": "a"}]
    exchange.invoke("Get-TransportConfig")
    assert http.urls == [START, other, START]


@pytest.mark.parametrize("where", ["https://collector.example.net/InvokeCommand",
                                   "http://outlook.office365.com/adminapi/beta/x/InvokeCommand",
                                   "https://office365.com.example.net/InvokeCommand"])
def test_a_redirect_or_next_page_elsewhere_is_refused_before_sending(where):
    exchange, http = client([(302, {"location": where}, None)])
    with pytest.raises(ExchangeCmdletError) as failed:
        exchange.invoke("Get-Mailbox")
    assert "not a Microsoft Exchange host" in str(failed.value) and http.urls == [START]
    exchange, http = client([(200, {}, {"value": [{"Name": "a"}], "@odata.nextLink": where})])
    with pytest.raises(ExchangeCmdletError):
        exchange.invoke("Get-Mailbox")
    assert http.urls == [START]
