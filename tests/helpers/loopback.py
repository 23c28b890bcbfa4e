"""Microsoft's national-cloud host names resolved to 127.0.0.1 for one test.

The one thing mocked: name resolution. This machine has no DNS for webmail.apps.mil or outlook.office365.us (no test
reaches the internet); everything after it is real (TCP to the emulated tenant, TLS verified against its CA with the
host name the client asked for: its certificate names these hosts, emulator/clouds.py).
"""

import contextlib
import socket


@contextlib.contextmanager
def resolved_to_loopback(*names):
    real = socket.getaddrinfo
    wanted = {name.lower() for name in names}
    asked = []

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.lower() in wanted:
            asked.append(host.lower())
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield asked
    finally:
        socket.getaddrinfo = real
