"""One client on an allowed network goes past the relay's per-client limit (molecule verify).

    ratelimit.py PORT SOURCE messages|recipients LIMIT TAG
messages: LIMIT messages from SOURCE in one session, each accepted, then one more, refused at MAIL with 4xx.
recipients: one message to LIMIT + 1 recipients: LIMIT accepted, the last refused with 4xx, the message accepted
for the others. Subjects TAG-1 .. (messages) or TAG (recipients). Exits non-zero, saying why, otherwise.
"""
import smtplib
import sys

port, source, kind, limit, tag = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
sender = "device@lan.example"


def message(subject, recipients):
    return "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nx\r\n" % (sender, ", ".join(recipients), subject)


with smtplib.SMTP("127.0.0.1", port, timeout=60, source_address=(source, 0)) as client:
    client.ehlo()
    if kind == "messages":
        for n in range(1, limit + 1):
            client.sendmail(sender, ["bob@example.com"], message("%s-%d" % (tag, n), ["bob@example.com"]))
        code, text = client.mail(sender)
        client.rset()
        print("MAIL beyond the limit: %d %s" % (code, text.decode()))
        sys.exit(0 if 400 <= code < 500 else 1)
    recipients = ["r%d@example.com" % n for n in range(limit + 1)]
    code, text = client.mail(sender)
    assert code == 250, (code, text)
    codes = [client.rcpt(r)[0] for r in recipients[:-1]]
    assert codes == [250] * limit, codes
    code, text = client.rcpt(recipients[-1])
    print("RCPT beyond the limit: %d %s" % (code, text.decode()))
    if not 400 <= code < 500:
        sys.exit(1)
    code, text = client.data(message(tag, recipients[:-1]))
    sys.exit(0 if code == 250 else "DATA: %d %s" % (code, text.decode()))
