"""Where a one-message task's time goes: send_mail beside community.general.mail, part by part (figures only).

bench_send_mail.py times whole ansible-playbook runs; this splits the difference between the two modules into
the parts Ansible runs for any module:

1. The module payload, built on the controller for every task's first use in a run: ansible-core parses every
   module_utils file the module can import (lazy imports included) to find its dependencies and zips them.
   Printed: files and size, and the build time (ansible-core's own recursive_finder, called directly: an
   internal function, so the figure is "n/a" on an ansible-core where it changed).
2. The module run on the target: the AnsiballZ file kept from a real run (ANSIBLE_KEEP_REMOTE_FILES), executed
   directly, interleaved, median of BENCH_PARTS_RUNS (11): send_mail with a warm token cache, send_mail with a
   new token (default options: msal is imported and a token requested) and community.general.mail.
3. Of send_mail's run, the collection's own code: AnsiballZ ships source only, so every imported file is
   compiled in every task (`python -X importtime`, summed over ansible_collections.o365 modules).

    . scripts/env.sh && python tests/benchmarks/bench_send_mail_parts.py
"""

import base64
import glob
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/
sys.path.insert(0, HERE)

from bench_send_mail import MAILBOX, PLAIN_PASSWORD, ours, theirs  # noqa: E402
from emulator import Emulator  # noqa: E402
from helpers.playbook import VENV_BIN, base_env, run_playbook, smtp_env  # noqa: E402

RUNS = int(os.environ.get("BENCH_PARTS_RUNS", "11"))

# Run in the venv's Python, on the controller's side: build each module's payload as ansible-core does per run.
PAYLOAD_BUILD = r"""
import datetime, io, json, os, statistics, sys, time, zipfile
from ansible.plugins.loader import init_plugin_loader, module_loader
init_plugin_loader(os.environ["ANSIBLE_COLLECTIONS_PATH"].split(os.pathsep))
from ansible.executor import module_common
from ansible._internal._ansiballz import _builder
from ansible._internal._datatag._tags import Origin
out = {}
for fqcn in sys.argv[2:]:
    path = module_loader.find_plugin_with_context(fqcn).plugin_resolved_path
    with open(path, "rb") as handle:
        data = handle.read()
    name = fqcn.rsplit(".", 1)[1]
    fqn = "ansible_collections.%s.plugins.modules.%s" % (fqcn.rsplit(".", 1)[0], name)
    times = []
    for dummy in range(int(sys.argv[1])):
        zf = zipfile.ZipFile(io.BytesIO(), "w", compression=zipfile.ZIP_DEFLATED)
        started = time.perf_counter()
        module_common.recursive_finder(name, fqn, Origin(path=path).tag(data), zf, datetime.datetime.now(),
                                       _builder.ExtensionManager.create(task_vars={}))
        times.append(time.perf_counter() - started)
    out[fqcn] = statistics.median(times) * 1000
print(json.dumps(out))
"""


def payload_build_ms(env, modules, rounds=7):
    proc = subprocess.run([os.path.join(VENV_BIN, "python"), "-c", PAYLOAD_BUILD, str(rounds)] + modules,
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {}  # ansible-core's internals changed: printed as n/a
    return json.loads(proc.stdout)


def payload_of(ansiballz, collection):
    """(files, kilobytes of source) of the zip an AnsiballZ file carries, in all and of `collection`'s own."""
    with open(ansiballz) as handle:
        zip_data = re.search(r"zip_data='([A-Za-z0-9+/=]+)'", handle.read()).group(1)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(zip_data))) as archive:
        infos = [i for i in archive.infolist() if i.filename.endswith(".py")]
    own = [i for i in infos if i.filename.startswith("ansible_collections/%s/" % collection.replace(".", "/"))]
    return [(len(part), sum(i.file_size for i in part) / 1024.0) for part in (infos, own)]


def kept_module(remote_tmp, name):
    found = glob.glob(os.path.join(remote_tmp, "*", "AnsiballZ_%s.py" % name))
    if len(found) != 1:
        raise SystemExit("expected one kept AnsiballZ_%s.py in %s, found %s" % (name, remote_tmp, found))
    return found[0]


def run_module(path, env, extra=()):
    started = time.perf_counter()
    proc = subprocess.run([os.path.join(VENV_BIN, "python")] + list(extra) + [path], env=env, capture_output=True,
                          text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 or '"failed": true' in proc.stdout:
        raise SystemExit("%s failed:\n%s\n%s" % (path, proc.stdout[-2000:], proc.stderr[-2000:]))
    return elapsed * 1000, proc.stderr


def collection_import_ms(stderr):
    """Summed self time of the collection's modules in a `python -X importtime` report."""
    total = 0
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match and match.group(2).startswith("ansible_collections.o365."):
            total += int(match.group(1))
    return total / 1000.0


def main():
    with Emulator() as emulator:
        run(emulator)


def run(emulator):
    smtp = emulator.smtp
    smtp.allow(emulator.admin.client_id, MAILBOX)
    smtp.settings.basic_auth = "accept"  # community.general.mail can only AUTH LOGIN / PLAIN
    smtp.settings.plain_password = PLAIN_PASSWORD
    work = tempfile.mkdtemp(prefix="bench-send-mail-parts-")
    remote_tmp = os.path.join(work, "remote")
    cache = {"O365_TOKEN_CACHE_DIR": os.path.join(work, "tokens")}

    # One real run of each keeps its AnsiballZ file (and fills the token cache for the warm runs).
    for task in (ours(), theirs(smtp)):
        kept = dict(cache, ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_REMOTE_TMP=remote_tmp)
        result = run_playbook(emulator, [task], env=smtp_env(smtp, kept))
        if result.rc != 0:
            raise SystemExit("playbook failed:\n%s" % result.output[-3000:])
    ours_file, theirs_file = kept_module(remote_tmp, "send_mail"), kept_module(remote_tmp, "mail")

    env = base_env()
    env.update(emulator.env())
    env.update(smtp_env(smtp))
    warm_env = dict(env, **cache)
    print("# send_mail beside community.general.mail, part by part (2 cores; medians)")

    built = payload_build_ms(env, ["o365.smtp_oauth.send_mail", "community.general.mail"])
    for name, path in (("o365.smtp_oauth.send_mail", ours_file), ("community.general.mail", theirs_file)):
        (files, kilobytes), (own_files, own_kilobytes) = payload_of(path, name.rsplit(".", 1)[0])
        ms = built.get(name)
        build = "%.0f ms to build" % ms if ms is not None else "build time n/a"
        print("controller, module payload (built once per run): %-25s %3d files, %3.0f KB of source (its "
              "collection's: %2d files, %3.0f KB), %s" % (name, files, kilobytes, own_files, own_kilobytes, build))

    times = {"warm": [], "default": [], "theirs": []}
    for dummy in range(RUNS):
        times["warm"].append(run_module(ours_file, warm_env)[0])
        times["default"].append(run_module(ours_file, env)[0])
        times["theirs"].append(run_module(theirs_file, env)[0])
    medians = dict((key, statistics.median(value)) for key, value in times.items())
    print("target, the module run alone (AnsiballZ file run directly, median of %d, interleaved): send_mail warm "
          "token cache %.0f ms, send_mail new token %.0f ms, community.general.mail %.0f ms"
          % (RUNS, medians["warm"], medians["default"], medians["theirs"]))
    if len(built) == 2:
        extra = built["o365.smtp_oauth.send_mail"] - built["community.general.mail"]
        print("send_mail's extra time, controller + target: warm token cache %+.0f ms, new token %+.0f ms"
              % (extra + medians["warm"] - medians["theirs"], extra + medians["default"] - medians["theirs"]))

    imports = sorted(collection_import_ms(run_module(ours_file, warm_env, ["-X", "importtime"])[1]) for dummy in range(5))
    print("of send_mail's run with a warm cache, importing (compiling) the collection's own code: %.0f ms "
          "(median of 5, -X importtime)" % statistics.median(imports))


if __name__ == "__main__":
    main()
