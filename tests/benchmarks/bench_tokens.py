"""Token layer speed, printed (no timed assertions). Run: `. scripts/env.sh && python tests/benchmarks/bench_tokens.py`.

1. One token acquisition against the emulated identity platform: cold (new credential: msal app, OpenID
   discovery, token request), from the provider's memory, and from the file cache (a new provider per
   "task", as each Ansible task is a new process), per credential kind.
2. A fresh interpreter: importing _auth and preparing a client-secret credential vs a managed-identity one
   (azure-identity must load only for the latter, and only when it asks for a token), and the first token.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/, for `import emulator`

from emulator import Emulator  # noqa: E402

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import options as _auth  # noqa: E402

SCOPE = "https://outlook.office365.com/.default"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))


def median_ms(fn, rounds=ROUNDS):
    times = []
    for _round in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def acquisition(name, options, cache_root, log):
    def cold():
        _auth.credential_from_options(options).get_token(SCOPE)

    provider = _auth.token_provider_from_options(options)
    provider.get_token(SCOPE)
    cache_options = dict(options, token_cache_dir=os.path.join(cache_root, name.replace(" ", "-")))
    _auth.token_provider_from_options(cache_options).get_token(SCOPE)  # the play's first task fills the cache

    def from_file():
        _auth.token_provider_from_options(cache_options).get_token(SCOPE)

    mark = log.mark()
    t_cold = median_ms(cold)
    cold_requests = len(log.since(mark))
    t_memory = median_ms(lambda: provider.get_token(SCOPE), rounds=ROUNDS * 100)
    mark = log.mark()
    t_file = median_ms(from_file)
    print("%-22s cold %7.2f ms (%d requests / %d)   memory %8.4f ms   file cache %6.2f ms (%d requests)"
          % (name, t_cold, cold_requests, ROUNDS, t_memory, t_file, len(log.since(mark))))


COLD_START = textwrap.dedent("""
    import json, sys, time
    options = json.loads(sys.argv[1])
    t0 = time.perf_counter()
    from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth import options as _auth
    credential = _auth.credential_from_options(options)
    credential.validate()
    t1 = time.perf_counter()
    loaded_before = ["azure.identity" in sys.modules, "msal" in sys.modules]
    credential.get_token(%r)
    t2 = time.perf_counter()
    print(json.dumps([(t1 - t0) * 1000, (t2 - t1) * 1000, loaded_before, "azure.identity" in sys.modules,
                      "msal" in sys.modules]))
""" % SCOPE)


def cold_start(name, options, env, rounds=5):
    import json
    rows = []
    for _round in range(rounds):
        proc = subprocess.run([sys.executable, "-c", COLD_START, json.dumps(options)], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise SystemExit("%s cold start failed:\n%s" % (name, proc.stderr[-2000:]))
        rows.append(json.loads(proc.stdout))
    prepare = statistics.median(r[0] for r in rows)
    first = statistics.median(r[1] for r in rows)
    (identity_before, msal_before), identity_after, msal_after = rows[-1][2:]
    print("%-22s import _auth + prepare %6.1f ms   first token %6.1f ms   loaded before / after the token: "
          "azure.identity %s / %s, msal %s / %s"
          % (name, prepare, first, identity_before, identity_after, msal_before, msal_after))


def main():
    emulator = Emulator(smtp=False).start()
    tenant = emulator.tenant
    work = tempfile.mkdtemp(prefix="bench-tokens-")
    base = {"tenant_id": tenant.tenant_id, "authority_host": emulator.url, "ca_path": emulator.ca_path}
    for name, value in emulator.msi_env().items():
        os.environ[name] = value
    app = emulator.create_app("bench-federated", exchange_roles=("Exchange.ManageAsApp",), secret=False)
    tenant.add_federated_credential(app["app"], "bench", "https://token.actions.githubusercontent.com", "repo:x/y:ref")
    federated = os.path.join(work, "federated.jwt")
    with open(federated, "w") as handle:
        handle.write(emulator.issue_federated_token("https://token.actions.githubusercontent.com", "repo:x/y:ref",
                                                    lifetime=3600))
    kinds = {
        "client secret": dict(base, client_id=emulator.admin.client_id, client_secret=emulator.admin.client_secret),
        "certificate": dict(base, client_id=emulator.admin.client_id, certificate_path=emulator.admin.certificate_path),
        "workload identity": dict(base, client_id=app["client_id"], federated_token_file=federated),
        "managed identity": dict(base, managed_identity=True),
    }
    print("# token acquisition (median of %d; memory: of %d), %d cores" % (ROUNDS, ROUNDS * 100, os.cpu_count()))
    for name, options in kinds.items():
        acquisition(name, options, work, tenant.log)
    print("# fresh interpreter (median of 5)")
    env = dict(os.environ)
    for name in ("client secret", "managed identity"):
        cold_start(name, kinds[name], env)
    emulator.stop()


if __name__ == "__main__":
    main()
