"""What the shared HTTP client and the playbook harness cost.

Prints: HttpClient Graph GETs per second over one kept-alive session (token cached, TLS verified against the
emulator's CA) and the milliseconds per request; the cost of one answered 429 retry with Retry-After 0 (the
extra round trip, no sleep); and the wall-clock and CPU seconds of one ansible-playbook run of a one-task play
through tests/helpers/playbook.py. Figures only, no assertions.

    . scripts/env.sh && python tests/benchmarks/bench_http.py [--requests 200] [--playbooks 3]
"""

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.options import token_provider_from_options  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._http import HttpClient  # noqa: E402
from emulator import Emulator  # noqa: E402
from helpers.playbook import run_playbook  # noqa: E402

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def client_for(emulator):
    provider = token_provider_from_options({
        "tenant_id": emulator.tenant.tenant_id, "client_id": emulator.admin.client_id,
        "client_secret": emulator.admin.client_secret, "authority_host": emulator.url, "ca_path": emulator.ca_path})
    return HttpClient(provider, ca_path=emulator.ca_path)


def timed_gets(client, url, count):
    started = time.perf_counter()
    for index in range(count):
        if client.request("GET", url, scope=GRAPH_SCOPE).status != 200:
            raise SystemExit("request %d failed" % index)
    return time.perf_counter() - started


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--playbooks", type=int, default=3)
    args = parser.parse_args()
    with Emulator(smtp=False) as emulator:
        client = client_for(emulator)
        url = emulator.url + "/v1.0/applications"
        client.request("GET", url, scope=GRAPH_SCOPE)  # token and connection set up once
        elapsed = timed_gets(client, url, args.requests)
        print("HttpClient GET /v1.0/applications: %d requests, %.0f/s, %.2f ms each"
              % (args.requests, args.requests / elapsed, 1000 * elapsed / args.requests))

        plain = timed_gets(client, url, 20) / 20
        retried = 0.0
        for unused_round in range(20):  # one throttled answer per request
            emulator.tenant.faults.add("graph", match="GET /v1.0/applications", kind="status", status=429,
                                       retry_after=0)
            retried += timed_gets(client, url, 1) / 20
        print("one 429 + Retry-After: 0 retry adds %.2f ms per request (%.2f -> %.2f ms)"
              % (1000 * (retried - plain), 1000 * plain, 1000 * retried))

        walls, cpus = [], []
        for unused_round in range(args.playbooks):
            cpu, started = children_cpu(), time.perf_counter()
            run = run_playbook([{"name": "one", "ansible.builtin.debug": {"msg": "hi"}}], emulator)
            walls.append(time.perf_counter() - started)
            cpus.append(children_cpu() - cpu)
            if run.rc != 0:
                raise SystemExit(run.output)
        print("run_playbook, one debug task: %.2f s wall (best of %d, mean %.2f s), %.2f s CPU"
              % (min(walls), len(walls), sum(walls) / len(walls), min(cpus)))
        print("load average at the end: %.1f" % os.getloadavg()[0])


if __name__ == "__main__":
    main()
