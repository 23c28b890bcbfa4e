"""`python -m emulator serve`: starts, tells how to point the collection at it, serves a token, stops cleanly."""

import os
import re
import shlex
import signal
import smtplib
import socket
import ssl
import stat
import subprocess
import sys

import pytest

from emulator.clients import PinnedSession

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=TESTS + os.pathsep + os.environ.get("PYTHONPATH", ""), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "serve", "--state-dir", str(tmp_path)] + list(args),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("State in"):
            break
    else:
        proc.kill()
        raise AssertionError("serve ended early:\n%s%s" % ("".join(lines), proc.stderr.read()))
    return proc, "".join(lines)


def exports(text):
    return dict(shlex.split(line[len("export "):])[0].split("=", 1)
                for line in text.splitlines() if line.startswith("export "))


def stop(proc, sig):
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=15)
    return proc.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_settings_serves_a_token_and_stops_cleanly(tmp_path, sig):
    proc, banner = start(tmp_path)
    try:
        env = exports(banner)
        assert {"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST",
                "O365_GRAPH_ENDPOINT", "O365_EXCHANGE_ENDPOINT", "O365_CA_PATH", "O365_SMTP_HOST",
                "O365_SMTP_PORT"} <= set(env)
        assert "IDENTITY_ENDPOINT" not in env  # commented out: it would change auth_method auto
        assert "Point the collection at it" in banner and env["O365_CA_PATH"] in banner
        env_file = tmp_path / "emulator.env"
        assert exports(env_file.read_text()) == env
        for name in ("emulator.env", "admin-secret", "admin-certificate.pem"):
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
        assert (tmp_path / "admin-secret").read_text().strip() == env["AZURE_CLIENT_SECRET"]

        session = PinnedSession(env["O365_CA_PATH"])
        answer = session.post("%s/%s/oauth2/v2.0/token" % (env["AZURE_AUTHORITY_HOST"], env["AZURE_TENANT_ID"]),
                              data={"grant_type": "client_credentials", "client_id": env["AZURE_CLIENT_ID"],
                                    "client_secret": env["AZURE_CLIENT_SECRET"],
                                    "scope": "https://graph.microsoft.com/.default"})
        assert answer.status_code == 200 and answer.json()["access_token"].count(".") == 2
        session.close()
        port = int(env["AZURE_AUTHORITY_HOST"].rsplit(":", 1)[1])
    finally:
        code, out, err = stop(proc, sig)
    assert code == 0, err
    assert "emulator stopped" in out and "Traceback" not in err
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_serve_on_fixed_ports_with_certificate_credential(tmp_path):
    https_port, smtp_port = free_port(), free_port()
    proc, banner = start(tmp_path, "--port", str(https_port), "--smtp-port", str(smtp_port),
                         "--credential", "certificate")
    try:
        env = exports(banner)
        assert env["AZURE_AUTHORITY_HOST"] == "https://127.0.0.1:%d" % https_port
        assert env["O365_SMTP_PORT"] == str(smtp_port) and "AZURE_CLIENT_SECRET" not in env
        assert re.search(r"-----BEGIN CERTIFICATE-----", open(env["AZURE_CLIENT_CERTIFICATE_PATH"]).read())
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.ehlo()
            assert smtp.has_extn("starttls")
            smtp.starttls(context=ssl.create_default_context(cafile=env["O365_CA_PATH"]))
            smtp.ehlo()
            assert "XOAUTH2" in smtp.esmtp_features.get("auth", "")
    finally:
        code, _out, err = stop(proc, signal.SIGTERM)
    assert code == 0, err


def test_serve_refuses_a_taken_port_with_a_clear_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=TESTS)
        proc = subprocess.run([sys.executable, "-m", "emulator", "serve", "--state-dir", str(tmp_path), "--port",
                               str(port)], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode != 0
    assert "port %d" % port in proc.stderr and "Traceback" not in proc.stderr
