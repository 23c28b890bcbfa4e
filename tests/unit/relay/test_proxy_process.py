"""The proxy as systemd runs it: its own process (python3 o365_smtp_proxy.py --config ...), a client secret read from
its file, a unix socket in Postfix's place, the emulated Exchange endpoint upstream. What only a process shows:
SIGTERM (systemd's stop, a credential release, a restart) drains, and the memory one message costs."""

import json
import signal
import smtplib
import subprocess
import sys
import threading
import time

import pytest

from test_proxy import MAILBOX, PROXY_PATH, RECEIVED, secret_auth
from test_proxy_delivery import codes, lmtp_send

MEMORY_MAX = 512 * 1024 * 1024  # the unit's MemoryMax (roles/relay/vars/main.yml)


class ProxyProcess(object):
    def __init__(self, config, folder):
        self.bound = str(folder / "lmtp.sock")
        path = folder / "proxy.json"
        path.write_text(json.dumps(dict(config, listen_socket=self.bound)))
        self.log = folder / "proxy.log"
        with open(str(self.log), "wb") as log:
            self.process = subprocess.Popen([sys.executable, PROXY_PATH, "--config", str(path)], stdout=log,
                                            stderr=subprocess.STDOUT)
        end = time.monotonic() + 60
        while "listening on" not in self.log.read_text():
            assert self.process.poll() is None and time.monotonic() < end, self.log.read_text()
            time.sleep(0.05)

    def status(self, field):
        """A /proc/<pid>/status figure in bytes (VmHWM: the peak resident memory)."""
        with open("/proc/%d/status" % self.process.pid) as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no %s in /proc/%d/status" % (field, self.process.pid))

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def proxy_process(upstream, emulator, tmp_path):
    started = []

    def start(**extra):
        auth = secret_auth(emulator, upstream)
        (tmp_path / "client_secret").write_text(auth.pop("client_secret") + "\n")
        config = dict(auth, mailbox=MAILBOX, upstream_host=upstream.host, upstream_port=upstream.port, workers=1,
                      client_secret_file="client_secret")
        config.update(extra)
        started.append(ProxyProcess(config, tmp_path))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def test_sigterm_stops_listening_and_finishes_the_forward_under_way(proxy_process, upstream):
    # systemd stops the proxy (a release, a restart) while a forward waits on Exchange: the message is answered
    # 250 and sent once, no new connection is taken meanwhile, and the process ends by itself.
    running = proxy_process()
    upstream.faults.add("RCPT", "delay", times=2, seconds=2)
    answers = []
    sender = threading.Thread(target=lambda: answers.append(
        lmtp_send(running, rcpts=["a@example.com", "b@example.com"])))
    sender.start()
    end = time.monotonic() + 30
    while upstream.connections == 0 and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.5)  # the forward is at its first RCPT, 2 s from its data
    idle = smtplib.LMTP(running.bound, timeout=30)  # a cached connection between two messages
    assert idle.ehlo("postfix.test")[0] == 250
    running.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert idle.sock.recv(1) == b""  # closed at once: nothing was under way on it
    with pytest.raises(OSError):  # refused or gone: Postfix keeps its next message queued
        smtplib.LMTP(running.bound, timeout=5).ehlo("postfix.test")
    sender.join(60)
    assert answers and codes(answers[0]) == [250, 250]
    assert running.process.wait(30) == 0
    assert [m.rcpt_tos for m in upstream.messages] == [["a@example.com", "b@example.com"]]
    assert "draining" in running.log.read_text()


def test_a_30_mb_message_of_empty_lines_stays_far_below_the_units_memory_limit(proxy_process, upstream):
    # The review's measure: 4 MiB of empty lines peaked at 364 MiB (aiosmtpd's DATA keeps an object a line, then
    # the proxy copied the message 2-3 times). 30 MB of them is 15 million lines.
    running = proxy_process()
    before = running.status("VmHWM")
    body = (RECEIVED + "Subject: empty lines\r\n\r\n").encode() + b"\r\n" * 15000000
    assert codes(lmtp_send(running, body=body, timeout=300)) == [250]
    peak = running.status("VmHWM")
    [stored] = upstream.messages
    assert len(stored.raw) == len(body)
    sys.stderr.write("proxy peak resident memory: %.0f MiB before the message, %.0f MiB after\n"
                     % (before / 1048576.0, peak / 1048576.0))
    assert peak < MEMORY_MAX / 4, "peak %d MiB" % (peak // 1048576)
