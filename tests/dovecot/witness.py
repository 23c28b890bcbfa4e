"""A second, independent XOAUTH2 server: Dovecot's submission service (Debian 12: 2.3.19), started on 127.0.0.1.

Dovecot validates the emulated tenant's RS256 tokens itself (oauth2 passdb, `introspection_mode = local`): the
tenant's signing public key is published in its key dictionary (`fs:posix`, one file per
`<azp>/<alg>/<kid>`, the path Dovecot 2.3.19 looks up), the issuer is pinned to the tenant's, and the login name
must equal the token's `email` claim, which the emulator adds only in this mode (tokens.mailbox_claims).
Accepted mail is relayed to an aiosmtpd sink (`submission_relay_host`), where tests read it.

Dovecot runs as root with its packaged users (dovecot, dovenull) or, started by anyone else, as that user; the
config, keys, log and sockets live in one temporary folder. `auth_failure_delay = 0`: a wrong token answers at
once; `auth_verbose = yes`: the log says why a token failed (never the token: auth_verbose_passwords stays off).
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
INSTALL_HINT = ("Dovecot is not installed: scripts/test-stages/15-dovecot.sh installs dovecot-core and "
                "dovecot-submissiond (apt) and runs these tests")

CONFIG = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
instance_name = o365-witness-{pid}
protocols = submission
listen = 127.0.0.1
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = {uid}
first_valid_gid = {gid}
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
auth_mechanisms = xoauth2
auth_failure_delay = 0
auth_verbose = yes
hostname = dovecot.witness.test
mail_location = maildir:~/Maildir
submission_relay_host = 127.0.0.1
submission_relay_port = {sink_port}
submission_relay_ssl = no
service submission-login {{
  inet_listener submission {{
    address = 127.0.0.1
    port = {port}
  }}
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2
  args = {d}/dovecot-oauth2.conf.ext
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%n
}}
"""

OAUTH2 = """\
introspection_mode = local
local_validation_key_dict = fs:posix:prefix={d}/keys/
issuers = {issuer}
username_attribute = email
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sink(object):
    """aiosmtpd handler: every message Dovecot relays."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 2.0.0 stored by the sink"


class DovecotWitness(object):
    """start(emulator) / stop(); `port`, `sink.messages`, `publish_key(app_id)`, `log()`, `logins()`."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.port = None
        self.sink = Sink()
        self.dir = None
        self._process = None
        self._controller = None

    def start(self, timeout=10):
        if not os.path.exists(DOVECOT):
            raise RuntimeError(INSTALL_HINT)
        self.dir = tempfile.mkdtemp(prefix="o365-dovecot-")
        os.chmod(self.dir, 0o755)  # Dovecot's unprivileged users read the config and keys
        sink_port = free_port()
        self._controller = Controller(self.sink, hostname="127.0.0.1", port=sink_port)
        self._controller.start()
        self.port = free_port()
        internal, login = ("dovecot", "dovenull") if os.geteuid() == 0 else (pwd.getpwuid(os.getuid()).pw_name,) * 2
        user = pwd.getpwnam(internal)
        home = os.path.join(self.dir, "home")
        os.makedirs(home)
        os.chown(home, user.pw_uid, user.pw_gid)
        cert = self.emulator.ca.issue_cert("127.0.0.1", "localhost")
        cert.cert_chain_pems[0].write_to_path(os.path.join(self.dir, "cert.pem"))
        cert.private_key_pem.write_to_path(os.path.join(self.dir, "key.pem"))
        os.chmod(os.path.join(self.dir, "key.pem"), 0o600)
        values = dict(d=self.dir, pid=os.getpid(), internal=internal, internal_group=internal, login=login,
                      uid=user.pw_uid, gid=user.pw_gid, port=self.port, sink_port=sink_port,
                      issuer=self.emulator.tenant.tokens.issuer)
        self._write("dovecot.conf", CONFIG.format(**values))
        self._write("dovecot-oauth2.conf.ext", OAUTH2.format(**values))
        self._process = subprocess.Popen([DOVECOT, "-F", "-c", os.path.join(self.dir, "dovecot.conf")],
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        output = self._process.stdout.read().decode() if self._process.poll() is not None else ""
        self.stop()
        raise RuntimeError("Dovecot did not start: %s %s" % (output, self.log()))

    def _write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as handle:
            handle.write(text)

    def publish_key(self, app_id):
        """Put the tenant's signing public key where Dovecot looks for tokens whose azp is app_id."""
        tokens = self.emulator.tenant.tokens
        folder = os.path.join(self.dir, "keys", app_id, "RS256")
        os.makedirs(folder, exist_ok=True)
        pem = tokens.public_key.public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        with open(os.path.join(folder, tokens.kid), "wb") as handle:
            handle.write(pem)

    def log(self):
        path = os.path.join(self.dir or "", "dovecot.log")
        if not self.dir or not os.path.exists(path):
            return ""
        with open(path, errors="replace") as handle:
            return handle.read()

    def logins(self, since=0):
        """Dovecot's successful XOAUTH2 logins, one per authenticated connection."""
        return [line for line in self.log()[since:].splitlines() if "submission-login: Info: Login:" in line
                and "method=XOAUTH2" in line]

    def stop(self):
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process.stdout.close()
            self._process = None
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
