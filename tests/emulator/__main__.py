"""Run the emulated tenant as a server (README demo, users' offline CI):

    PYTHONPATH=tests python -m emulator serve [--port N] [--smtp-port N] [--state-dir D] [--credential KIND]

Prints how to point the collection at it, writes the same as `export` lines to D/emulator.env (the CA, the admin
app's secret and certificate sit next to it, mode 0600), and stops cleanly on SIGTERM / SIGINT.
"""

import argparse
import os
import signal
import socket
import sys
import tempfile
import threading

from emulator import Emulator


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m emulator", description="The emulated Microsoft 365 tenant.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start every part and wait for SIGTERM / SIGINT")
    serve.add_argument("--port", type=int, default=0, help="HTTPS port (identity, Graph, Exchange); 0 = any free")
    serve.add_argument("--smtp-port", type=int, default=0, help="SMTP (STARTTLS) port; 0 = any free")
    serve.add_argument("--msi-port", type=int, default=0, help="managed identity endpoint port (plain HTTP)")
    serve.add_argument("--state-dir", default=None, help="where the CA, credentials and env file go")
    serve.add_argument("--credential", choices=("secret", "certificate"), default="secret",
                       help="which admin credential the printed environment uses")
    serve.add_argument("--no-smtp", action="store_true", help="do not start the SMTP endpoint")
    return parser.parse_args(argv)


class PortForward(object):
    """A fixed SMTP port in front of the endpoint's own (it binds any free port): bytes are passed through, so
    STARTTLS and the TLS session are end to end."""

    def __init__(self, port, target_port, host="127.0.0.1"):
        self.target = (host, target_port)
        self.listener = socket.create_server((host, port))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client = self.listener.accept()[0]
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.listener.close()


def write_private(path, text):
    """Mode 0600 from the start, replaced atomically: scripts poll for the env file and source it at once."""
    partial = path + ".partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(partial, path)
    return path


def serve(args):
    state_dir = os.path.abspath(args.state_dir or tempfile.mkdtemp(prefix="o365-emulator-"))
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    emulator = Emulator(smtp=not args.no_smtp, port=args.port, msi_port=args.msi_port, state_dir=state_dir)
    try:
        emulator.start()
    except OSError as error:
        sys.stderr.write("cannot start the emulator: %s (is port %s or %s taken? choose others with --port / "
                         "--msi-port, or 0 for any free port)\n" % (error.strerror or error, args.port, args.msi_port))
        return 1
    forward = None
    env = emulator.env(args.credential)
    if emulator.smtp is not None and args.smtp_port:
        try:
            forward = PortForward(args.smtp_port, emulator.smtp.port)
        except OSError as error:
            emulator.stop()
            sys.stderr.write("cannot listen on SMTP port %d: %s\n" % (args.smtp_port, error.strerror or error))
            return 1
        env["O365_SMTP_PORT"] = str(forward.port)
    secret_file = write_private(os.path.join(state_dir, "admin-secret"), emulator.admin.client_secret + "\n")
    env_file = write_private(os.path.join(state_dir, "emulator.env"), "".join(exports(emulator, env)))
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    print_banner(emulator, env, state_dir, secret_file, env_file)
    sys.stdout.flush()
    while not stopping.wait(0.5):
        pass
    if forward is not None:
        forward.stop()
    emulator.stop()
    print("emulator stopped", flush=True)
    return 0


def quote(value):
    import shlex
    return shlex.quote(str(value))


def exports(emulator, env):
    """export lines; the managed identity variables commented out: set, they would make `auth_method: auto` pick
    managed identity instead of the admin app."""
    lines = ["export %s=%s\n" % (key, quote(value)) for key, value in sorted(env.items())]
    lines.append("# managed identity instead (auth_method: managed_identity):\n")
    lines += ["# export %s=%s\n" % (key, quote(value)) for key, value in sorted(emulator.msi_env().items())]
    return lines


def print_banner(emulator, env, state_dir, secret_file, env_file):
    admin, tenant = emulator.admin, emulator.tenant
    lines = [
        "Emulated Microsoft 365 tenant %s (%s) is running." % (tenant.tenant_id, tenant.domain),
        "  Identity platform, Microsoft Graph and Exchange admin API: %s" % emulator.url,
        "  Its certificates are signed by a throw-away CA: %s (pass it as ca_path / O365_CA_PATH)." % emulator.ca_path,
    ]
    if emulator.smtp is not None:
        lines.append("  SMTP with STARTTLS + XOAUTH2: %s port %s" % (env["O365_SMTP_HOST"], env["O365_SMTP_PORT"]))
    lines += [
        "  Managed identity endpoint (App Service form): %s" % emulator.msi_endpoint,
        "  Admin app %s (Graph Application.ReadWrite.All + AppRoleAssignment.ReadWrite.All, Exchange "
        "Exchange.ManageAsApp): client secret in %s, certificate with key in %s." % (
            admin.client_id, secret_file, admin.certificate_path),
        "Point the collection at it with these variables (also in %s; `. %s`):" % (env_file, env_file),
    ]
    lines += [line.rstrip("\n") for line in exports(emulator, env)]
    lines.append("State in %s. Stop with Ctrl-C or SIGTERM." % state_dir)
    print("\n".join(lines))


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.command == "serve":
        return serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
