"""A client that pipelines without being offered PIPELINING (HELO, not EHLO) is refused (molecule verify).

    pipelining.py PORT TAG
Exits 0 when Postfix refused the pipelined commands with 5xx "improper use of SMTP command pipelining".
"""
import socket
import sys

port, tag = int(sys.argv[1]), sys.argv[2]
with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
    reader = conn.makefile("rb")
    reader.readline()  # the banner
    conn.sendall(("HELO spammer.example\r\nMAIL FROM:<device@lan.example>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n"
                  "Subject: %s\r\n\r\nx\r\n.\r\nQUIT\r\n" % tag).encode())
    replies = []
    for line in reader:
        replies.append(line.decode().rstrip())
        if line.startswith((b"221", b"421")) or b"pipelining" in line.lower():
            break
print("\n".join(replies))
sys.exit(0 if any(r.startswith("5") and "pipelining" in r.lower() for r in replies) else 1)
