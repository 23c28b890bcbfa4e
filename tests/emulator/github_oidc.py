"""GitHub Actions' OIDC token request endpoint, as a job sees it: the URL in ACTIONS_ID_TOKEN_REQUEST_URL, asked
with GET, `Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN` and an optional `audience` query parameter,
answering `{"value": "<jwt>"}` (GitHub's documentation, "Configuring OpenID Connect in cloud providers":
requesting the token with curl, and the token's claims). Without `audience` the token's `aud` is the URL of the
repository owner, as GitHub documents. The JWT is signed by the emulated issuer
https://token.actions.githubusercontent.com, which the tenant's federated credential check trusts
(identity.check_federated_assertion). What GitHub answers to a wrong request token is not documented: assumed
401 (docs/development.md, "Emulator assumptions").
"""

import hmac
import secrets
import uuid

from emulator.https_server import Response

ISSUER = "https://token.actions.githubusercontent.com"
PATH = "/github-actions/idtoken/"
LIFETIME = 300  # seconds; GitHub's ID tokens live minutes


def register(router, tenant):
    router.add("GET", r"^%s(?P<job>[0-9a-f]{32})$" % PATH, lambda r: idtoken(tenant, r))


def new_job(tenant, issuer, subject, owner, url):
    """A job's runner variables (GITHUB_ACTIONS, ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN) for subject."""
    job, request_token = uuid.uuid4().hex, secrets.token_urlsafe(32)
    with tenant.lock:
        tenant.github_jobs[job] = {"request_token": request_token, "subject": subject, "owner": owner, "issued": []}
        tenant.external_issuers[ISSUER] = issuer
    return {"GITHUB_ACTIONS": "true", "ACTIONS_ID_TOKEN_REQUEST_URL": "%s%s%s?api-version=2.0" % (url, PATH, job),
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token}


def idtoken(tenant, request):
    job = tenant.github_jobs.get(request.match["job"])
    header = request.headers.get("Authorization") or ""
    given = header[len("bearer "):] if header.lower().startswith("bearer ") else ""
    if job is None or not given or not hmac.compare_digest(given.encode(), job["request_token"].encode()):
        return Response(401, json={"message": "Unauthorized"})
    audience = request.query.get("audience") or "https://github.com/%s" % job["owner"]
    issuer = tenant.external_issuers[ISSUER]
    token = issuer.issue(job["subject"], audience, lifetime=LIFETIME, repository_owner=job["owner"])
    job["issued"].append(token)  # tests look for it where it must never be (output, files)
    return Response(200, json={"value": token})
