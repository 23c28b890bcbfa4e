"""TokenProvider.prefetch: the token request runs in the background while the caller does other waiting; the
first get_access_token hands over its token or its error, and the credential is asked once either way."""

import threading
import time

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.credential import AccessToken, Credential
from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.provider import TokenProvider
from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError

SCOPE = "https://outlook.office365.com/.default"


class SlowCredential(Credential):
    """A token endpoint that answers after `delay`, or refuses; records the thread of every request."""
    kind = "client_secret"

    def __init__(self, delay=0.3, refuse=False):
        super(SlowCredential, self).__init__(tenant_id="t.example", client_id="c")
        self.delay, self.refuse, self.threads = delay, refuse, []

    def _acquire(self, scope):
        self.threads.append(threading.current_thread().name)
        time.sleep(self.delay)
        if self.refuse:
            raise AuthError("AADSTS7000215: invalid client secret", option="client_secret", code="AADSTS7000215")
        return AccessToken("token-%d" % len(self.threads), int(time.time()) + 3600)


class GatedCredential(Credential):
    """A token endpoint that says when a request began and answers only when released."""
    kind = "client_secret"

    def __init__(self):
        super(GatedCredential, self).__init__(tenant_id="t.example", client_id="c")
        self.began, self.release, self.threads = threading.Event(), threading.Event(), []

    def _acquire(self, scope):
        self.threads.append(threading.current_thread().name)
        self.began.set()
        assert self.release.wait(10)
        return AccessToken("token", int(time.time()) + 3600)


def test_the_request_runs_while_the_caller_works_and_is_made_once():
    credential = GatedCredential()
    source = TokenProvider(credential).token_source(SCOPE)
    source.prefetch()
    # The request is under way before anyone asks for the token (the caller meanwhile connects and starts TLS).
    assert credential.began.wait(10)
    credential.release.set()
    assert source().token == "token" and credential.threads == ["o365-token-prefetch"]
    assert source().token == "token" and len(credential.threads) == 1


def test_the_first_get_waits_for_a_request_still_running():
    credential = SlowCredential(delay=0.2)
    provider = TokenProvider(credential)
    provider.prefetch(SCOPE)
    assert provider.get_access_token(SCOPE).token == "token-1"
    assert len(credential.threads) == 1


def test_a_refusal_reaches_the_caller_once_and_is_not_asked_twice():
    credential = SlowCredential(delay=0.05, refuse=True)
    provider = TokenProvider(credential)
    provider.prefetch(SCOPE)
    with pytest.raises(AuthError) as raised:
        provider.get_access_token(SCOPE)
    assert raised.value.option == "client_secret" and len(credential.threads) == 1
    # A later call asks again (in the caller's thread): the refusal is handed over once, not kept.
    with pytest.raises(AuthError):
        provider.get_access_token(SCOPE)
    assert credential.threads == ["o365-token-prefetch", threading.current_thread().name]


def test_fresh_after_a_prefetch_asks_again():
    credential = SlowCredential(delay=0.01)
    provider = TokenProvider(credential)
    provider.prefetch(SCOPE)
    assert provider.get_access_token(SCOPE).token == "token-1"
    assert provider.get_access_token(SCOPE, fresh=True).token == "token-2"


def test_a_second_prefetch_of_the_same_scope_starts_nothing():
    credential = SlowCredential(delay=0.1)
    provider = TokenProvider(credential)
    provider.prefetch(SCOPE)
    provider.prefetch(SCOPE)
    provider.get_access_token(SCOPE)
    assert len(credential.threads) == 1
