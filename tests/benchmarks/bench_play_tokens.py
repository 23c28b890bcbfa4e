"""Token requests made by a play of 20 tasks, with and without the shared file cache (printed, not asserted).

Run: `. scripts/env.sh && python tests/benchmarks/bench_play_tokens.py`. Twenty read-only tasks (entra_app_info and
exchange_smtp_access_info, alternating) run in one ansible-playbook against the emulated tenant; the emulator's
request log counts the token requests it answered.
"""

import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/, for `import emulator` and `import helpers`

from emulator import Emulator  # noqa: E402
from helpers.playbook import run_playbook  # noqa: E402

TASKS = 20


def play():
    tasks = []
    for index in range(TASKS):
        if index % 2:
            tasks.append({"name": "exchange %d" % index, "o365.smtp_oauth.exchange_smtp_access_info": {}})
        else:
            tasks.append({"name": "entra %d" % index, "o365.smtp_oauth.entra_app_info": {"unique_name": "o365-smtp-oauth-admin"}})
    return tasks


def measure(emulator, cache_dir):
    emulator.reset()
    mark = emulator.tenant.log.mark()
    env = {"O365_TOKEN_CACHE_DIR": cache_dir} if cache_dir else {"O365_TOKEN_CACHE_DIR": None}
    start = time.perf_counter()
    result = run_playbook(play(), emulator, env=env)
    elapsed = time.perf_counter() - start
    if result.rc != 0:
        raise SystemExit("the play failed:\n" + result.output[-3000:])
    entries = emulator.tenant.log.since(mark)
    tokens = [e for e in entries if e.get("part") == "identity" and (e.get("path") or "").endswith("/token")]
    return len(tokens), len(entries), elapsed


def main():
    with Emulator() as emulator:
        print("# token requests for a play of %d tasks (Graph + Exchange reads)" % TASKS)
        count, total, elapsed = measure(emulator, None)
        print("without token_cache_dir : %3d token requests, %4d requests in all, %5.1f s" % (count, total, elapsed))
        with tempfile.TemporaryDirectory() as folder:
            count, total, elapsed = measure(emulator, os.path.join(folder, "cache"))
            print("with token_cache_dir    : %3d token requests, %4d requests in all, %5.1f s  "
                  "(one per scope: Graph and Exchange)" % (count, total, elapsed))


if __name__ == "__main__":
    main()
