"""The emulated tenant the relay scenario delivers to, run on the host (the containers share its network).

    PYTHONPATH=tests python roles/relay/molecule/default/tenant.py STATE_DIR

Starts the emulator (identity platform + Exchange SMTP endpoint), creates the sending app with SMTP.SendAsApp
and Exchange access to the relay mailbox, and puts the SMTP endpoint behind a fixed port it can take down and
bring back. Writes STATE_DIR/tenant.json (the role's variables; the secret file is 0600) and serves a control
API on 127.0.0.1 for the verify playbook:

    GET  /messages        -> [{"subject", "mail_from", "mailbox", "app_id", "message_id"}, ...]
    GET  /duplicates      -> {"deliveries": n, "duplicates": [{message_id, recipient, times, subject}, ...],
                              "without_id": [subject, ...]}: each recipient must get a Message-ID once
    POST /smtp/down       -> the SMTP port refuses connections and open sessions are cut
    POST /smtp/up         -> back
    POST /smtp/slow       -> {"verb": "RCPT", "seconds": 0.9, "times": 45}: the next `times` such commands are
                             answered after `seconds` (a slow Exchange)
Stops on SIGTERM.
"""

import json
import os
import re
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from emulator import Emulator

MAILBOX = "relay@contoso.onmicrosoft.com"
SEND_AS = "alerts@contoso.onmicrosoft.com"  # relay2's allowed sender
GHOST = "ghost@contoso.onmicrosoft.com"  # a recipient Exchange does not know


class Switchable(object):
    """A fixed TCP port in front of the SMTP endpoint that can be switched off (the upstream is down)."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        probe = socket.create_server(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.listener, self.pairs, self.lock = None, [], threading.Lock()
        self.up()

    def up(self):
        with self.lock:
            if self.listener is None:
                self.listener = socket.create_server(("127.0.0.1", self.port))
                threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def down(self):
        with self.lock:
            listener, self.listener = self.listener, None
            pairs, self.pairs = self.pairs, []
        if listener is not None:
            # shutdown() first: close() alone leaves a socket listening while a thread is blocked in accept().
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for sock in pairs:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass

    def _accept(self, listener):
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def duplicates(messages):
    """Deliveries counted by Message-ID and recipient: Postfix gives each message one (or keeps the device's), and
    splits a message's recipients over deliveries, never gives one recipient the same message twice."""
    seen, subjects, without_id = {}, {}, []
    for m in list(messages):
        subject = str(m.parsed().get("Subject", ""))
        if not m.message_id:
            without_id.append(subject)
            continue
        for rcpt in m.rcpt_tos:
            key = (m.message_id, rcpt.lower())
            seen[key] = seen.get(key, 0) + 1
            subjects[key] = subject
    return {"deliveries": len(seen), "without_id": without_id,
            "duplicates": [{"message_id": mid, "recipient": rcpt, "times": n, "subject": subjects[(mid, rcpt)]}
                           for (mid, rcpt), n in sorted(seen.items()) if n > 1]}


def control_handler(emulator, switch):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, payload, status=200):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/duplicates":
                return self._answer(duplicates(emulator.smtp.messages))
            if self.path != "/messages":
                return self._answer({"error": "not found"}, 404)
            out = []
            for m in list(emulator.smtp.messages):
                parsed = m.parsed()
                out.append({"subject": str(parsed.get("Subject", "")), "mail_from": m.mail_from,
                            "from_header": str(parsed.get("From", "")), "mailbox": m.mailbox,
                            "app_id": m.app_id, "message_id": m.message_id, "rcpt_tos": m.rcpt_tos,
                            "bare_lf": re.search(rb"(?<!\r)\n", m.raw) is not None,
                            "hidden_text": b"hidden" in m.raw})
            self._answer(out)

        def do_POST(self):
            if self.path == "/smtp/slow":
                length = int(self.headers.get("Content-Length") or 0)
                spec = json.loads(self.rfile.read(length) or b"{}")
                emulator.smtp.faults.add(spec.get("verb", "RCPT"), "delay", times=int(spec.get("times", 1)),
                                         seconds=float(spec.get("seconds", 1)))
            elif self.path == "/smtp/down":
                switch.down()
            elif self.path == "/smtp/up":
                switch.up()
            else:
                return self._answer({"error": "not found"}, 404)
            self._answer({"ok": True})

    return Handler


def main(state_dir):
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    emulator = Emulator(state_dir=os.path.join(state_dir, "emulator")).start()
    app = emulator.create_app("relay-sender", exchange_roles=["SMTP.SendAsApp"], certificate=True)
    emulator.tenant.exchange.propagation_delay = 0
    emulator.smtp.allow(app["client_id"], MAILBOX, model="classic")  # classic: its tokens carry SMTP.SendAsApp
    emulator.smtp.allow_send_as(app["client_id"], SEND_AS)
    emulator.smtp.settings.refuse_recipients = {GHOST}  # 550 5.1.10, as Exchange answers an unknown recipient
    switch = Switchable(emulator.smtp.port)
    control = ThreadingHTTPServer(("127.0.0.1", 0), control_handler(emulator, switch))
    threading.Thread(target=control.serve_forever, daemon=True).start()
    with open(emulator.ca_path) as handle:
        ca = handle.read()
    info = {"relay_tenant_id": emulator.tenant.tenant_id, "relay_client_id": app["client_id"],
            "relay_client_secret": app["client_secret"], "relay_mailbox": MAILBOX,
            "relay_test_certificate_content": app["certificate"].pem.decode(),
            "relay_authority_host": emulator.url, "relay_upstream_host": "127.0.0.1",
            "relay_upstream_port": switch.port, "relay_upstream_ca_content": ca,
            "control_url": "http://127.0.0.1:%d" % control.server_address[1], "relay_test_ghost": GHOST}
    path = os.path.join(state_dir, "tenant.json")
    fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(info, handle)
    os.replace(path + ".new", path)
    print("tenant ready: %s" % path, flush=True)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    while not stopping.wait(0.5):
        pass
    control.shutdown()
    switch.down()
    emulator.stop()


if __name__ == "__main__":
    main(sys.argv[1])
