"""Run the real ansible-playbook against the emulated tenant and return per-task results.

    run = run_playbook(emulator, [{"name": "app", "o365.smtp_oauth.entra_app": {...}}], check=True)
    run.rc, run.output, run.results (in order), run.tasks (name -> result), run.task("app")

The playbook may be a list of tasks, a list of plays, or playbook YAML text. One localhost inventory (the venv's
python as interpreter) and one callback are prepared once per process; each call is one ansible-playbook
process and nothing else (no bootstrap, no collection build).
"""

import copy
import glob
import json
import os
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELPERS = os.path.dirname(os.path.abspath(__file__))
# The venv whose ansible-playbook runs: the checkout's own, or O365_TEST_VENV (another ansible-core version, e.g.
# the oldest or newest supported one in scripts/test-stages/45-trixie.sh).
VENV = os.environ.get("O365_TEST_VENV") or os.path.join(ROOT, ".venv")
VENV_BIN = os.path.join(VENV, "bin")
# The environment must not choose the CA: tests pass the emulator's CA explicitly (O365_CA_PATH / ca_path).
# Nor may the CI runner the suite runs on choose the credential (federated_token_source: auto detects it).
DROPPED_ENV = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "ANSIBLE_CONFIG", "GITHUB_ACTIONS",
               "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "GITLAB_CI", "GITLAB_OIDC_TOKEN")

_workdir = None


def _prepare():
    """The inventory file (once per process)."""
    global _workdir
    if _workdir is None:
        _workdir = tempfile.mkdtemp(prefix="o365-playbook-")
        python = sys.executable if sys.executable.startswith(VENV + os.sep) else os.path.join(VENV_BIN, "python")
        with open(os.path.join(_workdir, "inventory.ini"), "w") as handle:
            handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % python)
    return _workdir


def base_env():
    """os.environ plus what scripts/env.sh sets, without the CA variables."""
    env = dict((k, v) for k, v in os.environ.items() if k not in DROPPED_ENV)
    collections = os.path.join(ROOT, ".build", "collections")
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    # The venv's site-packages holds the `ansible` package's collections (community.crypto), whichever Python built it.
    env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join(
        [collections] + sorted(glob.glob(os.path.join(VENV, "lib", "python3.*", "site-packages"))))
    env["PYTHONPATH"] = collections
    env.update({
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_NOCOLOR": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "ANSIBLE_CALLBACK_PLUGINS": os.path.join(HELPERS, "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "o365_test_results",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_GATHERING": "explicit",
        "ANSIBLE_DEPRECATION_WARNINGS": "false",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_FORCE_COLOR": "0",
    })
    return env


class PlaybookResult(object):
    """rc, stdout, stderr, output (both), results (list in task order), tasks (name -> last result)."""

    def __init__(self, rc, stdout, stderr, results):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.results = results
        self.tasks = dict((r.get("_task"), r) for r in results)

    @property
    def output(self):
        return self.stdout + self.stderr

    def task(self, name):
        if name not in self.tasks:
            raise KeyError("no result for task %r; ran: %s\n%s" % (name, list(self.tasks), self.output[-3000:]))
        return self.tasks[name]

    def __repr__(self):
        return "PlaybookResult(rc=%s, tasks=%s)" % (self.rc, list(self.tasks))


def _as_playbook(playbook):
    if isinstance(playbook, str):
        return playbook
    playbook = copy.deepcopy([playbook] if isinstance(playbook, dict) else list(playbook))
    if playbook and all(isinstance(p, dict) and "hosts" in p for p in playbook):
        plays = playbook
    else:
        plays = [{"name": "test", "hosts": "localhost", "gather_facts": False, "tasks": list(playbook)}]
    for play in plays:
        for index, task in enumerate(play.get("tasks") or []):
            # A registered result is what the callback reports for a result censored by no_log.
            if isinstance(task, dict) and "register" not in task and "block" not in task:
                task["register"] = "o365_test_result_%d" % index
    return yaml.safe_dump(plays, sort_keys=False)


def run_playbook(playbook, emulator=None, check=False, diff=False, extra_vars=None, env=None, verbosity=0,
                 credential="secret", timeout=300):
    """Run ansible-playbook on localhost with the emulator's environment; returns PlaybookResult.

    Accepts (playbook, emulator) or (emulator, playbook). credential: what emulator.env() sets (secret,
    certificate, none). env: extra variables, applied last (a value None removes the variable).
    """
    if hasattr(playbook, "env") and not hasattr(emulator, "env"):
        playbook, emulator = emulator, playbook
    workdir = _prepare()
    run_env = base_env()
    if emulator is not None:
        run_env.update(emulator.env(credential) if credential != "secret" else emulator.env())
    for key, value in (env or {}).items():
        if value is None:
            run_env.pop(key, None)
        else:
            run_env[key] = str(value)
    fd, play_path = tempfile.mkstemp(prefix="play-", suffix=".yml", dir=workdir)
    results_path = play_path[:-4] + ".json"
    run_env["O365_TEST_RESULTS"] = results_path
    with os.fdopen(fd, "w") as handle:
        handle.write(_as_playbook(playbook))
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", os.path.join(workdir, "inventory.ini"), play_path]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    try:
        proc = subprocess.run(cmd, env=run_env, cwd=workdir, capture_output=True, text=True, timeout=timeout,
                              check=False)
        results = []
        if os.path.exists(results_path):
            with open(results_path) as handle:
                results = json.load(handle)
        return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, results)
    finally:
        for path in (play_path, results_path):
            if os.path.exists(path):
                os.unlink(path)


def smtp_env(smtp, env=None):
    """env plus send_mail's host and port pointed at the emulator's SMTP endpoint `smtp`."""
    merged = {"O365_SMTP_HOST": smtp.host, "O365_SMTP_PORT": str(smtp.port)}
    merged.update(env or {})
    return merged


def play(emulator, tasks, check=False, diff=True, verbosity=0, env=None, smtp=None):
    """One playbook of these tasks (a task or a list) on localhost: (results in task order, output).
    With `smtp` (the emulator's SMTP endpoint), send_mail tasks send to it."""
    if smtp is not None:
        env = smtp_env(smtp, env)
    run = run_playbook(emulator, tasks, check=check, diff=diff, verbosity=verbosity, env=env)
    return run.results, run.output


def results(emulator, tasks, **options):
    """play(...) without the output: the results in task order."""
    return play(emulator, tasks, **options)[0]


def four_runs(emulator, tenant, task, part, env=None):
    """The idempotence proof every provisioning module gets: check -> apply -> check again -> apply again.
    Returns the four (result, output) pairs; asserts that no check-mode run and not the second real run sent a
    write request to `part` (graph or exchange) of the emulated tenant. env: as play's."""
    runs = []
    for check in (True, False, True, False):
        mark = tenant.log.mark()
        [result], output = play(emulator, task, check=check, env=env)
        runs.append((result, output))
        if check or len(runs) == 4:
            writes = tenant.log.writes(part, since=mark)
            assert writes == [], "run %d sent writes: %s" % (len(runs), writes)
    return runs
