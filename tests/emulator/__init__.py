"""The emulated Microsoft 365 tenant the tests run against (see docs/development.md, "The emulated tenant").

    with Emulator() as emulator:
        emulator.url          # https://127.0.0.1:PORT: authority host, Graph and Exchange endpoint at once
        emulator.ca_path      # PEM of the throw-away CA that signed every endpoint's certificate
        emulator.tenant       # the shared state (directory, Exchange, request log, faults)
        emulator.admin        # the seeded admin app: client_id, client_secret, certificate_path
        emulator.env()        # AZURE_* / O365_* variables that point the collection at it
"""

import importlib
import os
import secrets
import shutil
import tempfile

from emulator import certs, identity
from emulator.https_server import HttpFront, Router
from emulator.state import EXCHANGE_APP_ID, GRAPH_APP_ID, Tenant
from emulator.tokens import ExternalIssuer

ADMIN_NAME = "o365-smtp-oauth-admin"
ADMIN_GRAPH_ROLES = ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All")
ADMIN_EXCHANGE_ROLES = ("Exchange.ManageAsApp",)
OPTIONAL_PARTS = ("graph_api", "exchange_api", "github_oidc")  # each: register(router, tenant), loaded when present


class Admin(object):
    """The seeded admin app's credentials (the same across resets of one emulator)."""

    def __init__(self, directory, tenant_id):
        self.tenant_id = tenant_id
        self.display_name = ADMIN_NAME
        self.client_id = str(__import__("uuid").uuid4())
        self.client_secret = secrets.token_urlsafe(30)[:37] + "~Q"
        self.certificate = certs.ClientCertificate(ADMIN_NAME)
        self.certificate_path = self.certificate.write(os.path.join(directory, "admin-certificate.pem"))
        self.certificate_thumbprint = self.certificate.sha256
        self.object_id = self.sp_id = None

    def __repr__(self):  # never the secret
        return "Admin(client_id=%r)" % self.client_id


class ManagedIdentities(object):
    def __init__(self, system, user):
        self.system_client_id, self.user_client_id = system["appId"], user["appId"]
        self.system_principal_id, self.user_principal_id = system["id"], user["id"]
        self.user_resource_id = user["_resource_id"]


class Emulator(object):
    def __init__(self, graph_page_size=100, smtp=True, port=0, msi_port=0, state_dir=None):
        self.graph_page_size, self.want_smtp = graph_page_size, smtp
        self.port, self.msi_port, self.state_dir = port, msi_port, state_dir
        self.tenant = self.admin = self.smtp = self.url = None
        self.parts = []
        self._fronts = []
        self._issuers = {}

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def start(self):
        self.directory = self.state_dir or tempfile.mkdtemp(prefix="o365-emulator-")
        os.makedirs(self.directory, exist_ok=True)
        self.ca = certs.ServerCA(self.directory)
        self.ca_path = self.ca.ca_path
        self.tenant = Tenant(graph_page_size=self.graph_page_size)
        self.tenant.msi_secret = secrets.token_hex(16)
        self.admin = Admin(self.directory, self.tenant.tenant_id)
        self.router = Router()
        identity.register(self.router, self.tenant)
        for name in OPTIONAL_PARTS:
            try:
                module = importlib.import_module("emulator." + name)
            except ImportError as error:
                if error.name != "emulator." + name:
                    raise
                continue
            module.register(self.router, self.tenant)
            self.parts.append(name)
        self._fronts.append(HttpFront(self, self.router, self.ca.server_context(), port=self.port).start())
        try:
            self._fronts.append(HttpFront(self, self.router, None, port=self.msi_port).start())
        except OSError:
            self.stop()  # nothing half-started stays behind
            raise
        https, msi = self._fronts
        self.host, self.port = https.host, https.port
        self.url = "https://%s:%d" % (self.host, self.port)
        self.msi_endpoint = "http://%s:%d/msi/token" % (msi.host, msi.port)
        self.msi_header = self.tenant.msi_secret
        self.tenant.url = self.url
        self._seed()
        if self.want_smtp:
            try:
                self._start_smtp()
            except Exception:
                self.stop()
                raise
        return self

    def _start_smtp(self):
        try:
            from emulator import smtp_server
        except ImportError as error:
            if error.name != "emulator.smtp_server":
                raise
            return
        self.smtp = smtp_server.start(self)

    def stop(self):
        if self.smtp is not None:
            self.smtp.stop()
            self.smtp = None
        for front in self._fronts:
            front.stop()
        self._fronts = []
        if not self.state_dir and getattr(self, "directory", None):
            shutil.rmtree(self.directory, ignore_errors=True)

    def reset(self):
        """A fresh tenant state (same id, URL, CA and admin credentials): what the `tenant` fixture calls."""
        self.tenant.reset()
        self._seed()
        if self.smtp is not None and hasattr(self.smtp, "reset"):
            self.smtp.reset()
        return self.tenant

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- seeding ---------------------------------------------------------------------------------------------------
    def _seed(self):
        tenant, admin = self.tenant, self.admin
        app = tenant.add_application(ADMIN_NAME, app_id=admin.client_id, uniqueName=ADMIN_NAME)
        app["_created"] = 0  # seeded credentials have replicated long ago
        tenant.add_password(app, "seeded", secret=admin.client_secret)
        tenant.add_certificate(app, admin.certificate, "CN=" + ADMIN_NAME)
        for credential in app["passwordCredentials"] + app["keyCredentials"]:
            credential["_created"] = 0
        sp = tenant.add_service_principal(app)
        for value in ADMIN_GRAPH_ROLES:
            tenant.grant_app_role(sp["id"], GRAPH_APP_ID, value)
        for value in ADMIN_EXCHANGE_ROLES:
            tenant.grant_app_role(sp["id"], EXCHANGE_APP_ID, value)
        if tenant.exchange is not None:
            tenant.exchange.admin_apps.add(admin.client_id)
        admin.object_id, admin.sp_id = app["id"], sp["id"]
        system = tenant.add_managed_identity("emulated-host")
        user = tenant.add_managed_identity("relay-identity", user_assigned=True)
        self.managed_identities = ManagedIdentities(system, user)

    # -- helpers for tests -------------------------------------------------------------------------------------------
    def create_app(self, name, graph_roles=(), exchange_roles=(), secret=True, certificate=False):
        """An app with a service principal, granted roles, and optional secret / certificate (for tests).

        Returns a dict: app, sp, client_id, client_secret (or None), certificate (certs.ClientCertificate or None).
        """
        tenant = self.tenant
        app = tenant.add_application(name, uniqueName=name)
        sp = tenant.add_service_principal(app)
        for value in graph_roles:
            tenant.grant_app_role(sp["id"], GRAPH_APP_ID, value)
        for value in exchange_roles:
            tenant.grant_app_role(sp["id"], EXCHANGE_APP_ID, value)
        made = {"app": app, "sp": sp, "client_id": app["appId"], "client_secret": None, "certificate": None}
        if secret:
            made["client_secret"] = tenant.add_password(app, "test")
        if certificate:
            made["certificate"] = certs.ClientCertificate(name)
            tenant.add_certificate(app, made["certificate"])
        return made

    def _external_issuer(self, issuer):
        external = self._issuers.get(issuer)
        if external is None:
            external = self._issuers[issuer] = ExternalIssuer(issuer)
        self.tenant.external_issuers[issuer] = external
        return external

    def issue_federated_token(self, issuer, subject, audience=identity.FEDERATION_AUDIENCE, lifetime=600, **claims):
        """A token from an external OIDC issuer (e.g. GitHub Actions) that the tenant can verify."""
        return self._external_issuer(issuer).issue(subject, audience, lifetime=lifetime, **claims)

    def github_actions_env(self, subject, owner="contoso"):
        """What a GitHub Actions runner puts in a job's environment when the workflow has `permissions:
        id-token: write`: GITHUB_ACTIONS and the ID token request URL / token of this emulator's endpoint, whose
        tokens carry `subject` and are signed by the issuer the tenant trusts."""
        from emulator import github_oidc
        return github_oidc.new_job(self.tenant, self._external_issuer(github_oidc.ISSUER), subject, owner, self.url)

    def env(self, credential="secret"):
        """Variables that point the collection at this emulator; credential: secret | certificate | none."""
        env = {"AZURE_TENANT_ID": self.tenant.tenant_id, "AZURE_CLIENT_ID": self.admin.client_id,
               "AZURE_AUTHORITY_HOST": self.url, "O365_GRAPH_ENDPOINT": self.url,
               "O365_EXCHANGE_ENDPOINT": self.url, "O365_CA_PATH": self.ca_path}
        if credential == "secret":
            env["AZURE_CLIENT_SECRET"] = self.admin.client_secret
        elif credential == "certificate":
            env["AZURE_CLIENT_CERTIFICATE_PATH"] = self.admin.certificate_path
        if self.smtp is not None:
            env["O365_SMTP_HOST"] = self.smtp.host
            env["O365_SMTP_PORT"] = str(self.smtp.port)
        return env

    def msi_env(self):
        """IDENTITY_ENDPOINT / IDENTITY_HEADER as App Service sets them, for ManagedIdentityCredential."""
        return {"IDENTITY_ENDPOINT": self.msi_endpoint, "IDENTITY_HEADER": self.msi_header}
