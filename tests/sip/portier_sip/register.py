"""A REGISTER from Python (answering the MD5 challenge) from any loopback address."""

import os
import socket
import time

from portier_sip.base import DOMAIN, LOCAL, USERS, check
from portier_sip.sipmsg import digest_auth, find_challenge, header_value, header_values, status_of


_reg_counter = [0]


def sip_register(env, user, contact, src=LOCAL, extra=(), password=None, call_id=None,
                 cseq=1, wait=2.0, sock=None):
    """One REGISTER of user@home.example over UDP from address `src`,
    answering the MD5 digest challenge (qop=auth, digest uri = Request-URI).
    contact: the Contact header value (str or raw bytes); extra: header lines
    (str or bytes). Returns the final response (bytes) or None: bounded by
    `wait` seconds per round trip."""
    own = sock is None
    if own:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((src, 0))
    sock.settimeout(0.2)
    port = sock.getsockname()[1]
    _reg_counter[0] += 1
    call_id = call_id or "reg11-%d-%d@%s" % (os.getpid(), _reg_counter[0], src)
    password = password if password is not None else USERS[user]
    ruri = "sip:%s" % DOMAIN

    def build(cs, auth):
        _reg_counter[0] += 1
        head = ("REGISTER %s SIP/2.0\r\n"
                "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-r11-%d-%d;rport\r\n"
                "From: <sip:%s@%s>;tag=r11-%d\r\n"
                "To: <sip:%s@%s>\r\n"
                "Call-ID: %s\r\n"
                "CSeq: %d REGISTER\r\n"
                "Max-Forwards: 70\r\n" % (ruri, src, port, os.getpid(), _reg_counter[0], user,
                                          DOMAIN, cs, user, DOMAIN, call_id, cs)).encode()
        c = contact if isinstance(contact, bytes) else contact.encode("latin-1")
        lines = [b"Contact: " + c]
        for e in extra:
            lines.append(e if isinstance(e, bytes) else e.encode("latin-1"))
        if auth:
            lines.append(auth.encode())
        lines.append(b"Content-Length: 0")
        return head + b"\r\n".join(lines) + b"\r\n\r\n"

    def exchange(data):
        sock.sendto(data, (LOCAL, env.ports.proxy))
        end = time.time() + wait
        resend = time.time() + 0.5
        while time.time() < end:
            if time.time() > resend:  # RFC 3261 section 17.1.2.2 timer E, roughly
                sock.sendto(data, (LOCAL, env.ports.proxy))
                resend = time.time() + 1.0
            try:
                r = sock.recv(65535)
            except socket.timeout:
                continue
            st = status_of(r)
            if st is not None and st >= 200 and header_value(r, "Call-ID") == call_id:
                return r
        return None

    try:
        r = exchange(build(cseq, None))
        if r is None or status_of(r) != 401:
            return r
        ch = find_challenge(header_values(r, "WWW-Authenticate"))
        check(ch and "nonce" in ch, "401 without an MD5 challenge: %r" % r[:300])
        auth = "Authorization: " + digest_auth(user, password, ch, "REGISTER", ruri,
                                               cnonce="%08x" % _reg_counter[0])
        return exchange(build(cseq + 1, auth))
    finally:
        if own:
            sock.close()
