"""Submit COUNT messages to the local Postfix over one SMTP session, like a busy device (molecule verify).

    send.py PORT TAG COUNT [SENDER]
Subjects are TAG-1 .. TAG-COUNT; exits non-zero unless every message got 250.
"""
import smtplib
import sys

port, tag, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
sender = sys.argv[4] if len(sys.argv) > 4 else "device@lan.example"
with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
    for n in range(1, count + 1):
        body = "From: %s\r\nTo: bob@example.com\r\nSubject: %s-%d\r\n\r\nmessage %d\r\n" % (sender, tag, n, n)
        client.sendmail(sender, ["bob@example.com"], body)
print("submitted %d" % count)
