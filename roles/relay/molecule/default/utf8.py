"""A message to a non-ASCII recipient (SMTPUTF8), then four ordinary ones, over one SMTP session (molecule verify).

    utf8.py PORT TAG
Subjects are TAG-utf8 and TAG-1 .. TAG-4; exits non-zero unless Postfix accepted all five. What became of them
upstream (each delivered once, none bounced) is checked on the tenant and in Postfix's log.
"""
import smtplib
import sys

port, tag = int(sys.argv[1]), sys.argv[2]
sender = "device@lan.example"
with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
    client.ehlo()
    assert client.has_extn("smtputf8"), "Postfix does not offer SMTPUTF8"
    body = ("From: %s\r\nTo: bj\u00f8rn@example.com\r\nSubject: %s-utf8\r\n\r\nm\u00e5nga h\u00e4lsningar\r\n"
            % (sender, tag)).encode("utf-8")
    client.sendmail(sender, ["bj\u00f8rn@example.com"], body, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    for n in range(1, 5):
        client.sendmail(sender, ["bob@example.com"],
                        "From: %s\r\nTo: bob@example.com\r\nSubject: %s-%d\r\n\r\nmessage %d\r\n" % (sender, tag, n, n))
print("submitted 5")
