"""The relay's OAuth submission proxy, printed figures (no timed assertions).
Run: `. scripts/env.sh && python tests/benchmarks/bench_relay.py`.

1. Straight to the emulated Exchange SMTP endpoint: messages / s over one reused XOAUTH2 session (the
   collection's SmtpSession, token from the emulated identity platform).
2. Through the proxy (a real `o365_smtp_proxy.py` process, client secret credential): messages / s from an LMTP
   client that, like Postfix, waits for each message's final reply before the next; the ratio to 1 (goal >= 0.5).
3. The proxy process's resident memory after the run (goal <= 60 MB), from /proc; then 2 and 3 again with the
   Prometheus metrics on (metrics_listen): the throughput ratio metrics on / off (each twice, alternately,
   best of each).
4. `systemd-analyze security --offline=true` of the proxy's unit as the role renders it: the exposure score
   (0 = locked down, 10 = unprotected) and the settings it still counts against the unit.
Postfix itself is not in this measurement: it runs only in the molecule scenario's containers
(scripts/test-stages/40-relay.sh), where the same path delivers 200 queued messages exactly once (not timed).
"""

import json
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))  # tests/, for `import emulator`

from emulator import Emulator  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.session import SmtpSession  # noqa: E402

MAILBOX = "relay@contoso.onmicrosoft.com"
COUNT = int(os.environ.get("BENCH_RELAY_COUNT", "500"))
PROXY = os.path.join(ROOT, "roles", "relay", "files", "o365_smtp_proxy.py")
BODY = "From: %s\r\nTo: bob@example.com\r\nSubject: bench %%d\r\n\r\n%s" % (MAILBOX, ("x" * 70 + "\r\n") * 28)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def straight(emulator, app):
    token = emulator.smtp.app_token(app["client_id"], roles=["SMTP.SendAsApp"])
    session = SmtpSession(emulator.smtp.host, emulator.smtp.port, ca_path=emulator.ca_path, mailbox=MAILBOX,
                          token_source=lambda fresh=False: token)
    session.open()
    start = time.perf_counter()
    for n in range(COUNT):
        session.send(MAILBOX, ["bob@example.com"], (BODY % n).encode())
    elapsed = time.perf_counter() - start
    session.quit()
    return COUNT / elapsed


def through_proxy(emulator, app, workdir, metrics=False):
    secret = os.path.join(workdir, "secret")
    with open(secret, "w") as handle:
        handle.write(app["client_secret"])
    port = free_port()
    config = {"mailbox": MAILBOX, "tenant_id": emulator.tenant.tenant_id, "client_id": app["client_id"],
              "client_secret_file": secret, "authority_host": emulator.url, "ca_path": emulator.ca_path,
              "upstream_host": emulator.smtp.host, "upstream_port": emulator.smtp.port, "listen_port": port,
              "metrics_listen": "127.0.0.1:%d" % free_port() if metrics else ""}
    path = os.path.join(workdir, "proxy.json")
    with open(path, "w") as handle:
        json.dump(config, handle)
    env = dict(os.environ, PYTHONPATH=os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, PROXY, "--config", path], stdout=subprocess.DEVNULL, env=env)
    try:
        for dummy in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        client = smtplib.LMTP("127.0.0.1", port, timeout=60)  # Postfix speaks LMTP to the proxy
        client.sendmail(MAILBOX, ["bob@example.com"], BODY % -1)  # first message: token + upstream session
        start = time.perf_counter()
        for n in range(COUNT):
            client.sendmail(MAILBOX, ["bob@example.com"], BODY % n)  # Postfix has rewritten the sender
        elapsed = time.perf_counter() - start
        client.quit()
        with open("/proc/%d/status" % proc.pid) as handle:
            rss = [line for line in handle if line.startswith("VmRSS")][0].split()[1]
        return COUNT / elapsed, int(rss) / 1024.0
    finally:
        proc.terminate()
        proc.wait(10)


def unit_security(workdir):
    """(score line, the settings still flagged) of the rendered unit, or (why not, [])."""
    from helpers.relay_role import render
    path = os.path.join(workdir, "o365-smtp-proxy.service")
    with open(path, "w") as handle:
        handle.write(render("o365-smtp-proxy.service.j2"))
    try:
        done = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", path],
                              capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "systemd-analyze not available: %s" % exc, []
    lines = done.stdout.splitlines()
    score = [line.strip() for line in lines if "Overall exposure level" in line]
    flagged = [line.split()[1] for line in lines if line.startswith("\u2717 ") or line.startswith("x ")]
    return (score[0] if score else "no score (rc %d): %s" % (done.returncode, done.stderr.strip()[:200])), flagged


def main():
    with Emulator() as emulator, tempfile.TemporaryDirectory() as workdir:
        app = emulator.create_app("relay-bench", exchange_roles=["SMTP.SendAsApp"])
        emulator.tenant.exchange.propagation_delay = 0
        emulator.smtp.allow(app["client_id"], MAILBOX, model="classic")  # its tokens carry SMTP.SendAsApp
        direct = straight(emulator, app)
        # Off and on alternately, twice, best of each: the machine's other load weighs on both alike.
        runs = [through_proxy(emulator, app, workdir, metrics=on) for on in (False, True, False, True)]
        (proxied, rss), (metered, metered_rss) = max(runs[0::2]), max(runs[1::2])
        delivered = len(emulator.smtp.messages)
        score, flagged = unit_security(workdir)
    print("relay benchmark, %d messages of ~2 KB each" % COUNT)
    print("  straight to the emulated endpoint : %7.1f msgs/s" % direct)
    print("  through the proxy                 : %7.1f msgs/s  (%.2fx, goal >= 0.5x)" % (proxied, proxied / direct))
    print("  proxy resident memory after run   : %7.1f MB     (goal <= 60 MB)" % rss)
    print("  through the proxy, metrics on     : %7.1f msgs/s  (%.2fx of metrics off)" % (metered, metered / proxied))
    print("  its resident memory after run     : %7.1f MB     (goal <= 60 MB)" % metered_rss)
    print("  messages the endpoint stored      : %d (expected %d)" % (delivered, 5 * COUNT + 4))
    print("  unit (systemd-analyze security)   : %s" % score)
    print("  settings still counted against it : %s" % (", ".join(flagged) or "-"))


if __name__ == "__main__":
    main()
