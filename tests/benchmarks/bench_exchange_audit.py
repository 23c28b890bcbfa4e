"""Exchange audit and re-run cost at tenant scale, printed (no timed assertions). Issue 18's scenario:

    . scripts/env.sh && python tests/benchmarks/bench_exchange_audit.py [--mailboxes 10000] [--latency 0.3]

A tenant of N mailboxes (default 10,000) and five sending apps, each granted 100 mailboxes: three in the RBAC model
(a management scope over its 100 mailboxes and a role assignment), two in the classic model (FullAccess on each),
every app also SendAs on 20 of its mailboxes. Figures for (a) exchange_smtp_access_info for one app, (b) the
whole-tenant report, (c) exchange_smtp_access re-run with the 100 declared mailboxes, RBAC and classic; with
`--only s`, (b) with full_access_scan (classic grants nobody asked about: one call per mailbox of the tenant).

The module bodies run in this process (the code ansible-playbook runs, without its start-up) against the emulator
over HTTPS; the admin app's tokens are issued by the emulated tenant's own signer. Printed per scenario: admin API
calls, Graph calls, writes, and the simulated wall time at `--latency` seconds per call.

How the latency is simulated without waiting for it: the emulator holds every Graph and admin API call a small
real time (`--latency * --scale`, 15 ms by default, so that calls the collection runs in parallel really overlap),
and the simulated wall time is computed from its request log (emulator.throttle.simulated_wall): each call takes
`--latency`, a call that started after another really ended starts after it, calls that overlapped run side by
side. Local processing is left out of it and printed apart (the real wall time of the run, on this machine).
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/, for `import emulator`

from emulator import Emulator  # noqa: E402
from emulator.throttle import simulated_wall  # noqa: E402

from ansible_collections.o365.smtp_oauth.plugins.module_utils._clouds import resolve_cloud  # noqa: E402
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.tasks import (  # noqa: E402
    run_exchange_smtp_access, run_exchange_smtp_access_info)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._http import HttpClient  # noqa: E402

EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
GRANTED, SEND_AS, APPS = 100, 20, (("rbac", 3), ("classic", 2))


class Tokens(object):
    """The admin app's app-only tokens, issued by the emulated tenant (its roles: Graph + Exchange.ManageAsApp)."""

    def __init__(self, emulator):
        self.emulator, self.cache = emulator, {}

    def get_token(self, scope):
        audience = scope.rsplit("/.default", 1)[0]
        if scope not in self.cache:
            self.cache[scope] = self.emulator.tenant.tokens.issue(self.emulator.admin.client_id, audience=audience)
        return self.cache[scope]


class Module(object):
    """What the module bodies use of O365Module: params, check_mode, cloud, http, warn."""

    def __init__(self, emulator, tokens, **params):
        self.params = dict(params, tenant_id=emulator.tenant.tenant_id)
        self.check_mode = False
        self.cloud = resolve_cloud("public", authority_host=emulator.url, graph_endpoint=emulator.url,
                                   exchange_endpoint=emulator.url)
        self.http = HttpClient(tokens, ca_path=emulator.ca_path)
        self.result, self.warnings = None, []

    def warn(self, message):
        self.warnings.append(message)


def access_params(app_id, model, addresses, send_as):
    return {"app_id": app_id, "object_id": None, "authorization_model": model, "state": "present",
            "scope_name": None, "group": None, "organization": None, "purge": False, "wait_for_effect": False,
            "wait_timeout": 0, "mailboxes": [{"address": a, "send_as": a in send_as} for a in addresses]}


def seed(emulator, count):
    """count mailboxes, five apps with 100 mailboxes each; returns [(model, app_id, addresses, send_as)]."""
    ex = emulator.tenant.exchange
    for n in range(count):
        ex.add_mailbox("user%05d" % n, "User %d" % n)
    apps = []
    number = 0
    for model, how_many in APPS:
        for unused in range(how_many):
            made = emulator.create_app("bench-%s-%d" % (model, number),
                                       exchange_roles=("SMTP.SendAsApp",) if model == "classic" else ())
            sp = ex.register_sp(made["client_id"], made["sp"]["id"], "bench-%d" % number)
            addresses = [ex.address("user%05d" % ((number * GRANTED + k) * 7 % count)) for k in range(GRANTED)]
            boxes = [ex.find_mailbox(a) for a in addresses]
            if model == "rbac":
                name = "SMTP OAuth %s" % made["client_id"]
                scope = ex.add_scope(name, " -or ".join("PrimarySmtpAddress -eq '%s'" % a for a in sorted(addresses)))
                ex.add_role_assignment(name, "Application SMTP.SendAsApp", sp, scope)
            else:
                for box in boxes:
                    ex.add_mailbox_permission(box, sp)
            for box in boxes[:SEND_AS]:
                ex.add_recipient_permission(box, sp)
            apps.append((model, made["client_id"], addresses, set(addresses[:SEND_AS])))
            number += 1
    return apps


def measure(emulator, tokens, body, params, latency, latency_of_a_call):
    tenant = emulator.tenant
    for part in ("exchange", "graph"):
        tenant.throttle.configure(part, latency=latency)
    mark = tenant.log.mark()
    module = Module(emulator, tokens, **params)
    started = time.monotonic()
    module.result = body(module)
    wall = time.monotonic() - started
    entries = tenant.log.since(mark)
    calls = [e for e in entries if e.get("part") in ("exchange", "graph")]
    return {"wall": wall, "simulated": simulated_wall(calls, latency_of_a_call),
            "exchange": sum(1 for e in entries if e.get("part") == "exchange"),
            "graph": sum(1 for e in entries if e.get("part") == "graph"),
            "writes": sum(1 for e in entries if e.get("write")), "result": module.result}


def scenario(emulator, tokens, label, body, params, args):
    run = measure(emulator, tokens, body, params, args.latency * args.scale, args.latency)
    result = run["result"] or {}
    extra = "pairs=%d" % len(result["pairs"]) if "pairs" in result else "changed=%s" % result.get("changed")
    print("%-40s admin_api_calls=%-6d graph_calls=%-3d writes=%d  simulated_wall=%7.1f s  real_wall_here=%5.1f s  %s"
          % (label, run["exchange"], run["graph"], run["writes"], run["simulated"], run["wall"], extra))
    sys.stdout.flush()
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--mailboxes", type=int, default=10000)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per Graph / admin API call")
    parser.add_argument("--scale", type=float, default=0.05, help="real seconds slept per simulated second")
    parser.add_argument("--only", default="abc", help="scenarios to run: any of a, b, c, s (b with full_access_scan)")
    args = parser.parse_args()
    with Emulator(smtp=False) as emulator:
        emulator.tenant.exchange.page_size = 1000  # assumed page size of the real admin API
        started = time.monotonic()
        apps = seed(emulator, args.mailboxes)
        tokens = Tokens(emulator)
        print("tenant: %d mailboxes, %d apps x %d granted (SendAs on %d each); %.0f ms per call, scale %.3f; "
              "seeded in %.1f s" % (len(emulator.tenant.exchange.mailboxes), len(apps), GRANTED, SEND_AS,
                                    args.latency * 1000, args.scale, time.monotonic() - started))
        rbac = next(a for a in apps if a[0] == "rbac")
        classic = next(a for a in apps if a[0] == "classic")
        if "a" in args.only:
            scenario(emulator, tokens, "(a) info, one RBAC app", run_exchange_smtp_access_info,
                     {"app_id": rbac[1], "mailbox": None}, args)
            scenario(emulator, tokens, "(a) info, one classic app, 100 asked", run_exchange_smtp_access_info,
                     {"app_id": classic[1], "mailbox": None, "mailboxes": classic[2]}, args)
        if "b" in args.only:
            scenario(emulator, tokens, "(b) info, whole tenant", run_exchange_smtp_access_info,
                     {"app_id": None, "mailbox": None}, args)
        if "s" in args.only:  # not by default: one call per mailbox of the tenant
            scenario(emulator, tokens, "(b) info, whole tenant, full_access_scan", run_exchange_smtp_access_info,
                     {"app_id": None, "mailbox": None, "full_access_scan": True}, args)
        if "c" in args.only:
            for model, app_id, addresses, send_as in (rbac, classic):
                done = scenario(emulator, tokens, "(c) re-run, 100 declared, %s" % model, run_exchange_smtp_access,
                                access_params(app_id, model, addresses, send_as), args)
                if done["writes"] or (done["result"] or {}).get("changed"):
                    print("    NOTE: the re-run wrote (%d writes): the seeded state is not what it declares"
                          % done["writes"])


if __name__ == "__main__":
    main()
