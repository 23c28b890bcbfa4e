"""Missing Python libraries on the host that runs the module, through ansible-playbook (issue 12, bug 4).

The module runs with a bare Python (a venv of the same interpreter without site packages, so without msal,
requests or cryptography): one run must name every missing library and give one pip command, in plain words.
"""

import subprocess
import sys

import pytest

from helpers.playbook import run_playbook

MODULES = {
    "o365.smtp_oauth.entra_app_info": {"unique_name": "x"},
    "o365.smtp_oauth.exchange_smtp_access_info": {},
    "o365.smtp_oauth.send_mail": {"sender": "app@contoso.onmicrosoft.com", "to": ["bob@example.com"]},
}


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory):
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    for name in ("msal", "requests", "cryptography"):
        # The proof is only as good as the interpreter: each library must really be absent from it.
        assert subprocess.run([python, "-c", "import %s" % name], capture_output=True, check=False).returncode != 0, name
    return python


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_missing_library_in_one_message(emulator, tenant, bare_python, module):
    run = run_playbook(emulator, [{"name": "task", module: MODULES[module]}],
                       extra_vars={"ansible_python_interpreter": bare_python})
    result = run.task("task")
    assert result["failed"] and "Traceback" not in result["msg"], run.output[-3000:]
    assert sorted(result["missing_libraries"]) == ["cryptography", "msal", "requests"], result["msg"]
    for name in ("msal", "requests", "cryptography"):
        assert name in result["msg"]
    assert "pip install msal requests cryptography" in result["msg"] and bare_python in result["msg"]
    assert result["error_fix"] == "pip install msal requests cryptography"
    assert "required calls" not in result["msg"]  # the old garbled sentence
