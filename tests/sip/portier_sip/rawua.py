"""Callers and devices as raw UDP sockets driven from Python, so a case decides exactly
when a device answers (or never does) and what its SDP leaves out."""

import os
import re
import socket
import threading
import time

from portier_sip.base import DOMAIN, GROUP, LOCAL, TestFailure, USERS, check
from portier_sip.checks import register_devices
from portier_sip.sipmsg import SipMsg, digest_auth, find_challenge, sdp_body


class RawUa:
    """A SIP endpoint on a raw UDP socket (a caller or a registered device): a
    thread keeps every message it receives (m.src: where it came from, m.at:
    when) until close()."""

    def __init__(self, name, host, port=0):
        self.name = name
        self.host = host
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.msgs = []
        self.sent = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            m = SipMsg("received", "", data.decode("utf-8", "replace").replace("\r\n", "\n"))
            m.src, m.at = src, time.time()
            self.msgs.append(m)

    def send(self, text, to):
        self.sock.sendto(text.replace("\n", "\r\n").encode("utf-8"), to)
        self.sent.append((time.time(), text))

    def wait_for(self, pred, timeout=5.0, what="a message"):
        """The first received message matching pred, polled for at most timeout s."""
        deadline = time.time() + timeout
        while True:
            for m in list(self.msgs):
                if pred(m):
                    return m
            if time.time() > deadline:
                raise TestFailure("%s: no %s within %.0f s; got %s" % (
                    self.name, what, timeout, [m.first for m in self.msgs][-8:]))
            time.sleep(0.02)

    def got(self, pred):
        return [m for m in list(self.msgs) if pred(m)]

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def random_id():
    return int.from_bytes(os.urandom(4), "big")


class RawCall:
    """One INVITE transaction of a RawUa caller through the proxy, with the
    proxy's digest challenge answered (RFC 3261 section 22.2); with `method`
    another request (MESSAGE: `sdp` is then its text/plain body)."""

    def __init__(self, env, ua, user, target, sdp, extra="", method="INVITE"):
        self.method = method
        self.env, self.ua, self.user = env, ua, user
        self.uri = "sip:%s@%s" % (target, DOMAIN)
        self.call_id = "raw-%08x@%s" % (random_id(), ua.host)
        self.from_tag = "t%08x" % random_id()
        self.proxy = (LOCAL, env.ports.proxy)
        self.sdp, self.extra = sdp, extra
        self.cseq = 1
        self.branch = self._invite(None)
        chal = ua.wait_for(lambda m: self.mine(m) and m.status == 407, 5, "407 for " + self.call_id)
        self._ack(chal)
        md5 = find_challenge(chal.hdrs("Proxy-Authenticate"))
        check(md5, "%s: no MD5 challenge in %s" % (ua.name, chal.hdrs("Proxy-Authenticate")))
        self.cseq = 2
        self.branch = self._invite(digest_auth(user, USERS[user], md5, method, self.uri,
                                               cnonce="%08x" % random_id()))

    def mine(self, m):
        return m.hdr("Call-ID") == self.call_id and m.status is not None

    def _invite(self, auth):
        branch = "z9hG4bK-raw-%08x" % random_id()
        body = self.sdp.replace("\n", "\r\n")
        self.ua.send(
            "%s %s SIP/2.0\nVia: SIP/2.0/UDP %s:%d;branch=%s;rport\n"
            "From: <sip:%s@%s>;tag=%s\nTo: <%s>\nCall-ID: %s\nCSeq: %d %s\n"
            "Contact: <sip:%s@%s:%d>\nMax-Forwards: 70\n%s%s"
            "Content-Type: %s\nContent-Length: %d\n\n%s"
            % (self.method, self.uri, self.ua.host, self.ua.port, branch, self.user, DOMAIN,
               self.from_tag, self.uri, self.call_id, self.cseq, self.method, self.user,
               self.ua.host, self.ua.port, "Proxy-Authorization: %s\n" % auth if auth else "",
               self.extra + "\n" if self.extra else "",
               "application/sdp" if self.method == "INVITE" else "text/plain", len(body),
               self.sdp), self.proxy)
        return branch

    def _ack(self, resp):
        # RFC 3261 section 17.1.1.3: a non-2xx is ACKed hop by hop, in its
        # transaction; only an INVITE's (section 17.1.2: no ACK for non-INVITE).
        if self.method != "INVITE":
            return
        self.ua.send("ACK %s SIP/2.0\nVia: SIP/2.0/UDP %s:%d;branch=%s;rport\nFrom: %s\nTo: %s\n"
                     "Call-ID: %s\nCSeq: %d ACK\nMax-Forwards: 70\nContent-Length: 0\n\n"
                     % (self.uri, self.ua.host, self.ua.port, self.branch, resp.hdr("From"),
                        resp.hdr("To"), self.call_id, self.cseq), self.proxy)

    def responses(self):
        return self.ua.got(lambda m: self.mine(m) and m.cseq_method() == self.method
                           and (m.hdr("CSeq") or "").split()[0] == str(self.cseq))

    def final(self, timeout=10):
        m = self.ua.wait_for(lambda m: m in self.responses() and m.status >= 200, timeout,
                             "final response for " + self.call_id)
        if m.status >= 300:
            self._ack(m)
        return m

    def in_dialog(self, method, ok):
        """ACK or BYE in the dialog of the 2xx `ok`, along its Record-Route
        (RFC 3261 section 12.1.2: the caller's route set is the Record-Route
        in order)."""
        route = ok.hdrs("Record-Route")
        target = re.search(r"<([^>]+)>", ok.hdr("Contact")).group(1)
        cseq = 2 if method == "ACK" else 3
        self.ua.send("%s %s SIP/2.0\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-raw-%08x;rport\n"
                     "From: <sip:%s@%s>;tag=%s\nTo: %s\nCall-ID: %s\nCSeq: %d %s\n%s"
                     "Max-Forwards: 70\nContent-Length: 0\n\n"
                     % (method, target, self.ua.host, self.ua.port, random_id(), self.user,
                        DOMAIN, self.from_tag, ok.hdr("To"), self.call_id, cseq, method,
                        "".join("Route: %s\n" % r for r in route)), self.proxy)


def raw_reply(dev, req, status, reason, tag="dev", extra="", body=""):
    """A device's response to req, back where req came from (the proxy)."""
    to = req.hdr("To")
    if status > 100 and ";tag=" not in to:
        to += ";tag=%s" % tag
    vias = "".join("Via: %s\n" % v for v in req.hdrs("Via"))
    if 100 < status < 300:  # RFC 3261 section 12.1.1: the dialog's route set
        vias += "".join("Record-Route: %s\n" % v for v in req.hdrs("Record-Route"))
    ctype = "Content-Type: application/sdp\n" if body else ""
    wire_body = body.replace("\n", "\r\n")
    dev.send("SIP/2.0 %d %s\n%sFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %s\n"
             "Contact: <sip:%s@%s:%d>\n%s%sContent-Length: %d\n\n%s"
             % (status, reason, vias, req.hdr("From"), to, req.hdr("Call-ID"), req.hdr("CSeq"),
                dev.name, dev.host, dev.port, extra + "\n" if extra else "", ctype,
                len(wire_body), body), req.src)


def raw_devices(env, names):
    """Registers each name (slots 0..) through sipp, then takes its SIP port
    with a RawUa."""
    slots = [(n, i) for i, n in enumerate(names)]
    register_devices(env, slots)
    return [RawUa(n, LOCAL, env.ports.sip(i)) for n, i in slots]


def invite_of(dev, call_id=None, timeout=5):
    return dev.wait_for(lambda m: m.method == "INVITE" and
                        (call_id is None or m.hdr("Call-ID") == call_id), timeout,
                        "INVITE" + (" of " + call_id if call_id else ""))


def group_call(env, door, devices):
    """The door's call (audio) to the group; the INVITE each of devices got."""
    call = RawCall(env, door, "door", GROUP, sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"]))
    return call, [invite_of(d) for d in devices]


def check_next_call_busy(env, door, dev, user, tag):
    """The proxy still rings `dev` (user) for the door's next call: it gets
    dev's 486."""
    again = RawCall(env, door, "door", user, sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"]))
    inv = invite_of(dev, again.call_id)
    raw_reply(dev, inv, 486, "Busy Here", tag)
    check(again.final().status == 486, "the door's next call did not get %s's 486" % user)

