#!/usr/bin/python3
"""Mail clients for the packaging test (tests/pkg/run): Python's smtplib
and poplib against a packaged umbox on the standard ports of 127.0.0.1.

    clients.py wait PORT...            until each port accepts (10 s)
    clients.py send TO MARKER          one message over SMTP on port 25
    clients.py rcpt TO CODE            RCPT TO:<TO> on port 25 gets CODE
    clients.py tls                     STARTTLS on 25 and 587, TLS on 465,
                                       STLS on 110 and TLS on 995 all
                                       complete a handshake
    clients.py fetch LOGIN PASSWORD MARKER
                                       the message is in the mailbox, over
                                       POP3 on 110 and POP3S on 995

Exits 0 when the step worked, else prints why and exits 1.
"""
import poplib
import smtplib
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"


def tls_context():
    # The package runs with the snakeoil certificate: no name to verify.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wait(ports):
    deadline = time.monotonic() + 10
    for port in ports:
        while True:
            try:
                socket.create_connection((HOST, int(port)), timeout=1).close()
                break
            except OSError as e:
                if time.monotonic() > deadline:
                    sys.exit(f"port {port} does not accept connections: {e}")
                time.sleep(0.1)


def send(to, marker):
    msg = (f"From: Outside Sender <sender@example.org>\r\n"
           f"To: <{to}>\r\n"
           f"Subject: package test {marker}\r\n"
           f"Message-ID: <{marker}@example.org>\r\n"
           f"\r\n"
           f"Delivered by the packaging test: {marker}\r\n")
    with smtplib.SMTP(HOST, 25, timeout=20) as s:
        code, _ = s.ehlo("client.example.org")
        if code != 250:
            sys.exit(f"EHLO: {code}")
        refused = s.sendmail("sender@example.org", [to], msg)
        if refused:
            sys.exit(f"refused: {refused}")


def tls():
    ctx = tls_context()
    for port in (25, 587):
        with smtplib.SMTP(HOST, port, timeout=20) as s:
            s.ehlo("client.example.org")
            if not s.has_extn("starttls"):
                sys.exit(f"port {port}: no STARTTLS in EHLO")
            s.starttls(context=ctx)
            code, _ = s.ehlo("client.example.org")
            if code != 250:
                sys.exit(f"port {port}: EHLO after STARTTLS: {code}")
    with smtplib.SMTP_SSL(HOST, 465, timeout=20, context=ctx) as s:
        code, _ = s.ehlo("client.example.org")
        if code != 250:
            sys.exit(f"port 465: EHLO: {code}")
    p = poplib.POP3(HOST, 110, timeout=20)
    p.stls(context=ctx)
    p.quit()
    p = poplib.POP3_SSL(HOST, 995, timeout=20, context=ctx)
    p.quit()


def fetch_one(p, login, password, marker):
    p.user(login)
    p.pass_(password)
    _, listing, _ = p.list()
    found = 0
    for entry in listing:
        num = entry.split()[0].decode()
        _, lines, _ = p.retr(num)
        if any(marker.encode() in line for line in lines):
            found += 1
    p.quit()
    if found != 1:
        sys.exit(f"{found} copies of message {marker} in {login}'s mailbox "
                 f"of {len(listing)}")


def fetch(login, password, marker):
    fetch_one(poplib.POP3(HOST, 110, timeout=20), login, password, marker)
    fetch_one(poplib.POP3_SSL(HOST, 995, timeout=20, context=tls_context()),
              login, password, marker)


def rcpt(to, want):
    with smtplib.SMTP(HOST, 25, timeout=20) as s:
        s.ehlo("client.example.org")
        s.mail("sender@example.org")
        code, text = s.rcpt(to)
        if code != int(want):
            sys.exit(f"RCPT TO:<{to}>: {code} {text.decode(errors='replace')}, not {want}")


def main(argv):
    if len(argv) >= 2 and argv[1] == "wait":
        wait(argv[2:])
    elif len(argv) == 4 and argv[1] == "send":
        send(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "rcpt":
        rcpt(argv[2], argv[3])
    elif len(argv) == 2 and argv[1] == "tls":
        tls()
    elif len(argv) == 5 and argv[1] == "fetch":
        fetch(argv[2], argv[3], argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
