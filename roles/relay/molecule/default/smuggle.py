"""SMTP smuggling attempt against the local Postfix (molecule verify): one message whose data hides a second
transaction behind bare-LF line ends ("<LF>.<LF>" then MAIL/RCPT/DATA), as a device or an upstream MTA that
passes bare LF through would send it.

    smuggle.py PORT TAG
The outer message has Subject TAG-outer, the hidden one TAG-hidden. A relay that ends the data only at
<CR><LF>.<CR><LF> delivers one message containing the hidden text; one that ends it at <LF>.<LF> delivers two.
"""
import socket
import sys

port, tag = int(sys.argv[1]), sys.argv[2]


def reply(stream):
    lines = []
    while True:
        line = stream.readline()
        if not line:
            raise SystemExit("connection closed: %r" % lines)
        lines.append(line)
        if line[3:4] != b"-":
            return lines


with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
    stream = sock.makefile("rb")
    reply(stream)
    for command in (b"EHLO device.lan", b"MAIL FROM:<device@lan.example>", b"RCPT TO:<bob@example.com>", b"DATA"):
        sock.sendall(command + b"\r\n")
        reply(stream)
    hidden = ("MAIL FROM:<device@lan.example>\nRCPT TO:<bob@example.com>\nDATA\nSubject: %s-hidden\n\nhidden\n"
              % tag).encode()
    sock.sendall(b"Subject: " + tag.encode() + b"-outer\r\n\r\nouter\n.\n" + hidden + b"\r\n.\r\nQUIT\r\n")
    answers = stream.read()
print(answers.decode("ascii", "replace"))
