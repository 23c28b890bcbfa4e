# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a workload identity's OIDC token comes from (federated_token_source): a file, GitHub Actions' ID token
request endpoint, or a GitLab CI `id_tokens:` variable, chosen explicitly or detected from the CI environment.

GitHub Actions gives a job ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN only with the
permission `id-token: write`; a GET of that URL with `&audience=...` and the request token as bearer answers
`{"value": "<jwt>"}`. GitLab CI puts each `id_tokens:` entry in an environment variable of that name, with the
audience the pipeline declared. The token is fetched each time an Entra token is needed (GitHub's live minutes)
and never written to disk.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import AuthError, ConfigError

SOURCES = ("auto", "file", "github", "gitlab")
GITHUB_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
# GitLab's own guides for cloud providers name the id_tokens variable GITLAB_OIDC_TOKEN.
DEFAULT_GITLAB_VARIABLE = "GITLAB_OIDC_TOKEN"
_PERMISSION_FIX = ("give the workflow or the job `permissions: id-token: write` (GitHub then sets %s and %s for "
                   "the job; pull requests from forks never get them)" % (GITHUB_URL, GITHUB_TOKEN))


def detect_platform(environ):
    """"github" or "gitlab" when the process runs in that CI (the runners' own markers), else None."""
    if (environ.get("GITHUB_ACTIONS") or "").lower() == "true":
        return "github"
    if (environ.get("GITLAB_CI") or "").lower() == "true":
        return "gitlab"
    return None


def choose_source(source, federated_token_file, environ):
    """The source to use: file, github, gitlab, or None when auto finds nothing. ConfigError on a bad name."""
    source = (source or "auto").strip().lower()
    if source not in SOURCES:
        raise ConfigError("unknown federated_token_source %r" % source, option="federated_token_source",
                          fix="use one of: %s" % ", ".join(SOURCES))
    if source != "auto":
        return source
    if federated_token_file:
        return "file"
    return detect_platform(environ)


class GithubActionsToken(object):
    """GitHub Actions' OIDC token for the cloud's federated audience, requested anew at each call."""

    name, title = "github", "GitHub Actions"

    def __init__(self, environ, audience, ca_path=None, timeout=30):
        self.url = (environ.get(GITHUB_URL) or "").strip()
        self.request_token = (environ.get(GITHUB_TOKEN) or "").strip()
        self.audience = audience
        self.ca_path = ca_path
        self.timeout = timeout
        self.last = None  # the last OIDC token, in memory only: its claims explain a federated mismatch

    def check(self):
        missing = [name for name, value in ((GITHUB_URL, self.url), (GITHUB_TOKEN, self.request_token)) if not value]
        if missing:
            raise ConfigError("%s %s not set in the job's environment, so GitHub Actions gives no OIDC token"
                              % (" and ".join(missing), "is" if len(missing) == 1 else "are"),
                              option="federated_token_source", fix=_PERMISSION_FIX)
        if not self.url.lower().startswith("https://"):
            raise ConfigError("%s is not an https:// URL" % GITHUB_URL, option="federated_token_source",
                              fix="leave %s as the runner sets it" % GITHUB_URL)

    def request_url(self):
        from urllib.parse import quote
        return "%s%saudience=%s" % (self.url, "&" if "?" in self.url else "?", quote(self.audience, safe=""))

    def __call__(self):
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ServiceError
        from ansible_collections.o365.smtp_oauth.plugins.module_utils._http import HttpClient
        client = HttpClient(ca_path=self.ca_path, timeout=self.timeout, secrets=[self.request_token])
        try:
            answer = client.request("GET", self.request_url(), raise_errors=False,
                                    headers={"Authorization": "Bearer %s" % self.request_token})
        except ServiceError as error:  # no answer at all (connection, TLS, timeout)
            raise AuthError("GitHub's ID token endpoint (%s): %s" % (GITHUB_URL, error.message),
                            option="ca_path" if error.code == "tls_failed" else "federated_token_source",
                            code="github_oidc_unreachable", fix=error.fix)
        if answer.status in (401, 403):
            raise AuthError("GitHub refused the ID token request (HTTP %d)" % answer.status,
                            option="federated_token_source", code="github_oidc_refused",
                            fix="%s is valid only inside the job GitHub gave it to; do not set it by hand. "
                                "If the job lacks the permission, %s" % (GITHUB_TOKEN, _PERMISSION_FIX))
        body = answer.json() if answer.status < 400 else None
        value = body.get("value") if isinstance(body, dict) else None
        if answer.status >= 400 or not isinstance(value, str) or not value.strip():
            raise AuthError("GitHub's ID token endpoint gave no token (HTTP %d)" % answer.status,
                            option="federated_token_source", code="github_oidc_no_token",
                            fix="retry the job; GitHub's answer must be JSON with the token in `value`")
        self.last = value.strip()
        return self.last

    def secrets(self):
        return [v for v in (self.request_token, self.last) if v]

    def identity(self):
        return (self.name, self.url.split("?", 1)[0])


class GitlabIdToken(object):
    """A GitLab CI `id_tokens:` variable (GitLab sets it when the job starts, with the audience declared there)."""

    name, title = "gitlab", "GitLab CI"

    def __init__(self, environ, variable):
        self.variable = (variable or DEFAULT_GITLAB_VARIABLE).strip()
        self.environ = environ
        self.last = None

    def _value(self):
        return (self.environ.get(self.variable) or "").strip()

    def check(self):
        declare = ("declare it under the job's id_tokens: (%s: {aud: <the federated credential's audience, "
                   "api://AzureADTokenExchange in the public cloud>}), or name your id_tokens variable in "
                   "federated_token_variable" % self.variable)
        if self.variable not in self.environ:
            raise ConfigError("the variable %s is not set in the job's environment" % self.variable,
                              option="federated_token_variable", fix=declare)
        if not self._value():
            raise ConfigError("the variable %s is empty" % self.variable, option="federated_token_variable",
                              fix=declare)

    def __call__(self):
        self.check()
        self.last = self._value()
        return self.last

    def secrets(self):
        return [v for v in (self._value(), self.last) if v]

    def identity(self):
        return (self.name, self.variable)


def token_source(source, environ, audience, variable=None, ca_path=None, timeout=30):
    """The callable that produces the OIDC token for a CI source (github, gitlab)."""
    if source == "github":
        return GithubActionsToken(environ, audience, ca_path=ca_path, timeout=timeout)
    return GitlabIdToken(environ, variable)
