"""Property-based bad input for every module: never a traceback, always a message that names the option.

Each module's main() runs in-process (as ansible-test units does) with one option replaced by a random value of a
random type, the rest a valid minimal task. Authentication and endpoints point at the in-process emulated tenant,
so a value that happens to be valid reaches a real server and nothing leaves the machine.
"""

import importlib
import io
import json
import contextlib
import sys

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from ansible.module_utils import basic

# wait_timeout 0: an app that is not there (prop-app, a random but valid app_id) is looked up once, not again until
# replication would have ended; the wait only cost real seconds in each example (the answer is the same: no such app).
MODULES = {
    "entra_app": {"unique_name": "prop-app", "wait_timeout": 0},
    "entra_app_credential": {"unique_name": "prop-app", "type": "federated", "wait_timeout": 0, "name": "gh",
                             "issuer": "https://token.actions.githubusercontent.com", "subject": "repo:a/b:ref:refs/heads/main"},
    "entra_app_info": {"unique_name": "prop-app"},
    "exchange_smtp_access": {"app_id": "00000000-0000-0000-0000-00000000abcd", "wait_timeout": 0,
                             "mailboxes": [{"address": "noreply@contoso.onmicrosoft.com"}]},
    "exchange_smtp_access_info": {},
    "send_mail": {"sender": "noreply@contoso.onmicrosoft.com", "to": ["ops@contoso.onmicrosoft.com"],
                  "subject": "s", "body": "b"},
}
PREFIX = "ansible_collections.o365.smtp_oauth.plugins.modules."
# Options whose random values only change what is sent, not whether the input is valid.
FREE_TEXT = {"subject", "body", "body_html", "notes", "description", "display_name"}
# AnsibleModule logs every invocation (no_log values masked) before any module code runs, to the journal when
# python-systemd is there, else to syslog; syslog.syslog refuses a NUL character from Python 3.13 on
# (PyUnicode_AsUTF8), and AnsibleModule then fails with its own message, the same for every module and every
# ansible-core release. Before 3.13 (or through the journal) the NUL reaches the module, which names the option.
SYSLOG_REFUSES_NUL = sys.version_info >= (3, 13) and not basic.has_journal

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10 ** 12, max_value=10 ** 12),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.text(alphabet="\r\n\t\x00\x01'\"{}%$/\\@<>", max_size=12),
    st.lists(st.text(max_size=8), max_size=3), st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2),
    st.sampled_from(["common", "organizations", "-1", "http://insecure.example", "x" * 300, "", " ",
                     "not-a-guid", "2000-01-01", "../../etc/passwd", "a@b", "<script>"]),
)


def _options(name):
    module = importlib.import_module(PREFIX + name)
    doc = yaml.safe_load(module.DOCUMENTATION)
    return module, sorted(doc.get("options", {}))


def _run(module, args):
    """main() with args; returns the JSON the module printed."""
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode("utf-8")
    basic._ANSIBLE_PROFILE = "legacy"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        module.main()
    text = out.getvalue()
    assert text.strip(), "the module printed nothing"
    result = json.loads(text[text.index("{"):])
    if result.get("msg", "").startswith("Failed to log to syslog"):
        _syslog_refusal(args, result)
    return result


def _syslog_refusal(args, result):
    """ansible-core's own answer to a NUL it cannot log (SYSLOG_REFUSES_NUL), checked for what it must be.

    Its message names no option; the invocation line it returns (msg_to_log, shown with the failure) does, with
    the NUL. That option becomes the result's `option`, for the checks every answer gets (it must be the fuzzed one).
    """
    nul = [name for name, value in args.items() if isinstance(value, str) and "\x00" in value]
    assert SYSLOG_REFUSES_NUL and nul, "syslog refused a value without a NUL, or on a Python that logs it: %r" % result
    assert result.get("failed") and "embedded null character" in result["msg"], result
    logged = result.get("msg_to_log", "")
    assert logged.startswith("Invoked with ") and "\x00" in logged, result
    # "Invoked with a=1 b=<value with the NUL> c=...": the last " name=" of a given option before the first NUL.
    head = logged[:logged.index("\x00")]
    shown = max(args, key=lambda name: head.rfind(" %s=" % name))
    assert shown in nul, (shown, result)
    result.setdefault("option", shown)


@pytest.fixture
def emulated(emulator, tenant, monkeypatch, tmp_path, module_side):
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    for key in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return emulator


@pytest.mark.parametrize("name", sorted(MODULES))
def test_random_option_values_fail_cleanly(name, emulated):
    module, options = _options(name)
    # What the minimal task itself answers (entra_app_credential: its app does not exist): a fuzzed run that fails
    # the same way did not fail because of the fuzzed value.
    baseline = _run(module, dict(MODULES[name])).get("msg")

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(option=st.sampled_from([o for o in options if o not in FREE_TEXT]), value=ODD_VALUES)
    def check(option, value):
        # A valid long wait only makes the run wait (for an app that never appears): no more to learn from it.
        assume(not (option == "wait_timeout" and isinstance(value, (int, float)) and not isinstance(value, bool)
                    and value > 2))
        args = dict(MODULES[name])
        args[option] = value
        result = _run(module, args)
        text = json.dumps(result)
        assert "Traceback (most recent call last)" not in text, text
        assert "exception" not in result or "Traceback" not in result["exception"], result
        if result.get("failed") and result.get("msg") != baseline:
            msg = result.get("msg", "")
            assert "unexpected error" not in msg, "an unforeseen exception: %r (option %s = %r)" % (msg, option, value)
            # The option that was given the odd value, not merely any option name somewhere in the text.
            assert option in msg or result.get("option") == option, \
                "failure does not name %s: %r (value %r)" % (option, msg, value)

    check()


# Values the random search found on one Python and not another (its draws differ between versions): kept here so
# that every run asks them.
FOUND = [
    ("entra_app", "owners", "$"),  # reached Graph as users/$
    ("entra_app", "owners", ["../../etc/passwd"]),  # a path, not a user
    ("entra_app", "owners", ["a b@contoso.com"]),
    ("entra_app", "owners", ["$adele@contoso.com"]),  # Graph reads users/$... as a system segment
    ("exchange_smtp_access", "mailboxes", "{"),  # ansible-core: "unable to evaluate string as dictionary"
    ("send_mail", "port", None),  # connects to 587, where nothing listens here
]


@pytest.mark.parametrize("name,option,value", FOUND, ids=["%s-%s-%r" % case for case in FOUND])
def test_found_bad_values_name_their_option(name, option, value, emulated):
    module = _options(name)[0]
    args = dict(MODULES[name])
    args[option] = value
    result = _run(module, args)
    assert result.get("failed"), result
    assert "Traceback" not in json.dumps(result), result
    assert option in result["msg"], result["msg"]
