"""How fast the emulated tenant answers, so it is never the bottleneck of a test or benchmark.

Prints: start and reset time; Graph requests/s (HTTP/1.1 keep-alive, 2 client threads, a GET of an application;
the token endpoint when the Graph part is absent) against a goal of 200/s; token endpoint requests/s; SMTP
messages/s over one authenticated STARTTLS + XOAUTH2 connection, with a token from the token endpoint, against a goal
of 500/s. Figures only, no assertions.

    . scripts/env.sh && python tests/benchmarks/bench_emulator.py [--seconds 3]
"""

import argparse
import http.client
import json
import os
import smtplib
import ssl
import sys
import threading
import time
import urllib.parse
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from emulator import Emulator  # noqa: E402
from emulator.clients import smtp_xoauth2  # noqa: E402

GRAPH_GOAL, SMTP_GOAL = 200, 500
MAILBOX_ALIAS = "reports"


def keep_alive_rate(emulator, method, path, body, headers, threads, seconds):
    """Requests/s of `threads` clients, each on one kept-alive connection, for `seconds`."""
    counts, failures, stop = [0] * threads, [], threading.Event()

    def client(index):
        conn = http.client.HTTPSConnection(emulator.host, emulator.port,
                                           context=ssl.create_default_context(cafile=emulator.ca_path))
        while not stop.is_set():
            conn.request(method, path, body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status >= 400:
                failures.append(answer.status)
                break
            counts[index] += 1
        conn.close()

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    if failures:
        raise SystemExit("benchmark request failed with HTTP %s" % failures[0])
    return sum(counts) / (time.perf_counter() - start)


def token_request(emulator, scope):
    admin = emulator.admin
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": admin.client_id,
                                   "client_secret": admin.client_secret, "scope": scope})
    return ("POST", "/%s/oauth2/v2.0/token" % emulator.tenant.tenant_id, body,
            {"Content-Type": "application/x-www-form-urlencoded"})


def fetch_token(emulator, scope):
    method, path, body, headers = token_request(emulator, scope)
    conn = http.client.HTTPSConnection(emulator.host, emulator.port,
                                       context=ssl.create_default_context(cafile=emulator.ca_path))
    conn.request(method, path, body=body, headers=headers)
    token = json.loads(conn.getresponse().read())["access_token"]
    conn.close()
    return token


def smtp_rate(emulator, seconds):
    """Messages/s over one connection: STARTTLS, AUTH XOAUTH2 once, then MAIL / RCPT / DATA in a loop."""
    smtp = emulator.smtp
    mailbox = "%s@%s" % (MAILBOX_ALIAS, emulator.tenant.domain)
    smtp.allow(emulator.admin.client_id, mailbox)
    token = fetch_token(emulator, "https://outlook.office365.com/.default")
    message = ("From: %s\r\nTo: ops@example.com\r\nSubject: emulator benchmark\r\n\r\n%s\r\n"
               % (mailbox, "\r\n".join(["x" * 76] * 26))).encode()
    with smtplib.SMTP(smtp.host, smtp.port, timeout=30) as conn:
        conn.starttls(context=ssl.create_default_context(cafile=emulator.ca_path))
        conn.ehlo("bench")
        code, reply = smtp_xoauth2(conn, mailbox, token)
        if code != 235:
            raise SystemExit("AUTH refused: %s %s" % (code, reply))
        sent, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            conn.sendmail(mailbox, ["ops@example.com"], message)
            sent += 1
        return sent / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # aiosmtpd's own, not ours
    print("# emulated tenant benchmark (%d cores, %.0f s per figure)" % (os.cpu_count(), args.seconds))
    start = time.perf_counter()
    emulator = Emulator()
    emulator.start()
    print("start (HTTPS, managed identity, SMTP): %.0f ms (goal < 1000)" % ((time.perf_counter() - start) * 1000))
    try:
        start = time.perf_counter()
        for _round in range(20):
            emulator.reset()
        print("reset (fresh tenant state per test): %.1f ms" % ((time.perf_counter() - start) * 1000 / 20))
        rate = keep_alive_rate(emulator, *token_request(emulator, "https://graph.microsoft.com/.default"),
                               threads=2, seconds=args.seconds)
        print("token endpoint, 2 threads, keep-alive: %.0f requests/s" % rate)
        if "graph_api" in emulator.parts:
            token = fetch_token(emulator, "https://graph.microsoft.com/.default")
            path = "/v1.0/applications/%s" % emulator.admin.object_id
            rate = keep_alive_rate(emulator, "GET", path, None, {"Authorization": "Bearer " + token},
                                   threads=2, seconds=args.seconds)
            print("Graph GET /v1.0/applications/{id}, 2 threads, keep-alive: %.0f requests/s (goal >= %d)"
                  % (rate, GRAPH_GOAL))
        else:
            print("Graph part absent: the token endpoint figure above stands for it (goal >= %d)" % GRAPH_GOAL)
        if emulator.smtp is not None:
            print("SMTP, one XOAUTH2 connection, 2 KB messages: %.0f messages/s (goal >= %d)"
                  % (smtp_rate(emulator, args.seconds), SMTP_GOAL))
        else:
            print("SMTP part absent: no figure")
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
