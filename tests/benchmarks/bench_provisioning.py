"""Provisioning cost, printed (no timed assertions). Run: `. scripts/env.sh && python tests/benchmarks/bench_provisioning.py`.

One playbook declares an app (classic model, admin consent, one extra Graph permission), a rotated secret, a
certificate and a federated credential, then reads the audit report. It runs twice against the emulated tenant:
the first run provisions, the re-run must only read. Printed per run: Graph requests, of which writes, and the
wall-clock time of the ansible-playbook process (median of BENCH_REPEAT re-runs).
"""

import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/, for `import emulator`

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from emulator import Emulator  # noqa: E402

REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))


def certificate(folder):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    path = os.path.join(folder, "bench.crt")
    with open(path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    return path


def tasks(cert_path):
    app = {"unique_name": "bench-relay", "display_name": "Bench relay", "authorization_model": "classic",
           "admin_consent": True, "api_permissions": [{"api": "Microsoft Graph", "app_roles": ["User.Read.All"]}]}
    cred = {"unique_name": "bench-relay"}
    return [
        {"o365.smtp_oauth.entra_app": app},
        {"o365.smtp_oauth.entra_app_credential": dict(cred, type="secret", display_name="bench")},
        {"o365.smtp_oauth.entra_app_credential": dict(cred, type="certificate", public_certificate_path=cert_path)},
        {"o365.smtp_oauth.entra_app_credential": dict(cred, type="federated", name="github",
                                                      issuer="https://token.actions.githubusercontent.com",
                                                      subject="repo:org/repo:ref:refs/heads/main")},
        {"o365.smtp_oauth.entra_app_info": {"unique_name": "bench-relay"}},
    ]


def run(path, env, tenant):
    mark = tenant.log.mark()
    start = time.perf_counter()
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", path], env=env,
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit("playbook failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:]))
    graph = [e for e in tenant.log.since(mark) if e.get("part") == "graph"]
    return elapsed, len(graph), sum(1 for e in graph if e.get("write"))


def main():
    emulator = Emulator()
    emulator.start()
    try:
        folder = tempfile.mkdtemp(prefix="bench-provisioning-")
        path = os.path.join(folder, "play.yml")
        with open(path, "w") as handle:
            json.dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks(certificate(folder))}], handle)
        env = dict(os.environ, ANSIBLE_PYTHON_INTERPRETER=sys.executable)
        env.update(emulator.env())
        first = run(path, env, emulator.tenant)
        reruns = [run(path, env, emulator.tenant) for dummy in range(REPEAT)]
        print("provisioning playbook: 5 tasks (app + consent, secret, certificate, federated, info)")
        print("first run : %5.2f s  %3d Graph requests, %2d writes" % first)
        print("re-run    : %5.2f s  %3d Graph requests, %2d writes  (median of %d; writes must be 0)" % (
            statistics.median(r[0] for r in reruns), reruns[-1][1], max(r[2] for r in reruns), REPEAT))
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
