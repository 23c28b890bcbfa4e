"""Clients the emulator's own tests use, pinned to the emulator's CA.

requests lets REQUESTS_CA_BUNDLE (set in this environment) override a Session's `verify`, so the CA is passed on
every request instead; msal takes the same session as its http_client.
"""

import requests


class PinnedSession(requests.Session):
    def __init__(self, ca_path):
        super(PinnedSession, self).__init__()
        self.ca_path = ca_path

    def request(self, method, url, **kwargs):
        kwargs["verify"] = self.ca_path
        kwargs.setdefault("timeout", 10)
        return super(PinnedSession, self).request(method, url, **kwargs)


def msal_app(emulator, client_id, credential, tenant=None):
    """An msal ConfidentialClientApplication on the emulator's authority (no instance discovery, as the collection)."""
    import msal
    return msal.ConfidentialClientApplication(
        client_id, client_credential=credential, authority="%s/%s" % (emulator.url, tenant or emulator.tenant.tenant_id),
        instance_discovery=False, http_client=PinnedSession(emulator.ca_path))


def token_form(client_id, scope="https://graph.microsoft.com/.default", **extra):
    form = {"grant_type": "client_credentials", "client_id": client_id, "scope": scope}
    form.update(extra)
    return form


def smtp_xoauth2(conn, mailbox, token):
    """AUTH XOAUTH2 on an smtplib connection the way RFC 4954 wants it for a token (too long for the AUTH line):
    `AUTH XOAUTH2`, then the response after `334`. Returns the final (code, reply)."""
    import base64
    blob = base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (mailbox, token)).encode()).decode()
    code, reply = conn.docmd("AUTH", "XOAUTH2")
    return conn.docmd(blob) if code == 334 else (code, reply)


class Graph(object):
    """requests against the emulator's /v1.0 with an app-only token from msal."""

    def __init__(self, emulator, client_id, secret):
        result = msal_app(emulator, client_id, secret).acquire_token_for_client(
            scopes=["https://graph.microsoft.com/.default"])
        assert "access_token" in result, result
        self.token = result["access_token"]
        self.emulator = emulator
        self.base = emulator.url + "/v1.0/"
        self.session = PinnedSession(emulator.ca_path)
        self.session.headers["Authorization"] = "Bearer " + self.token

    def __getattr__(self, verb):  # get / post / patch / delete relative to /v1.0/
        return lambda path, **kw: self.session.request(
            verb.upper(), path if path.startswith("https://") else self.base + path, **kw)
