"""An answered call door -> mon1 through the proxy, driven by hand (PyUA on both sides),
and what the in-dialog cases do with it."""

import contextlib
import re
import socket
import threading
import time

from portier_sip.base import ATTACKER, DOMAIN, LOCAL, TestFailure, USERS, check
from portier_sip.checks import drain_socket, uri_in
from portier_sip.rtp import RtpPeer, rtp_packet
from portier_sip.sipmsg import PyUA, digest_auth, find_challenge, sdp_body


def py_challenge(resp):
    """The MD5 challenge of a 407 or 401, parsed."""
    ch = find_challenge(resp.hdrs("Proxy-Authenticate") + resp.hdrs("WWW-Authenticate"))
    check(ch, "no MD5 challenge in %s" % resp.first)
    return ch


def send_authenticated(ua, method, ruri, user, headers, body=b""):
    """Sends a request; answers one 401/407 with MD5 digest (a new transaction,
    CSeq + 1). headers: the request's lines after the request line, with
    {cseq} and {via} in place of the CSeq number and Via. Returns the final
    response and the CSeq number used."""
    cseq = 1
    ua.send(headers.format(via=ua.via(), cseq=cseq, auth=""), body)
    resp = ua.response_to(method)
    if resp.status in (401, 407):
        if method == "INVITE":  # hop-by-hop ACK of the challenge (section 17.1.1.3)
            ua.send("ACK %s SIP/2.0\nVia: %s\nFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %d ACK\n"
                    "Max-Forwards: 70" % (ruri, resp.hdr("Via"), resp.hdr("From"),
                                          resp.hdr("To"), resp.hdr("Call-ID"), cseq))
        chal = py_challenge(resp)
        cseq = 2
        auth = "%s: %s\n" % ("Proxy-Authorization" if resp.status == 407 else "Authorization",
                             digest_auth(user, USERS[user], chal, method, ruri,
                                         cnonce="0a4f113b"))
        ua.send(headers.format(via=ua.via(), cseq=cseq, auth=auth), body)
        resp = ua.response_to(method, timeout=5)
    return resp, cseq


def py_sdp(port, owner="door", version=1, host=LOCAL):
    """A PCMU offer or answer on the wire (CRLF line ends), host in o= and c=."""
    return sdp_body(host, ["audio %d RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=sendrecv" % port],
                    owner, version, host).replace("\n", "\r\n").encode()


def sdp_port(body):
    m = re.search(rb"^m=audio (\d+) ", body, re.M)
    return int(m.group(1)) if m else None


class PyCall:
    """An answered call door -> mon1 through the proxy and its relay, driven by
    hand: caller and callee are PyUAs on 127.0.0.1, each with an RtpPeer."""

    def send_in_dialog(self, method, from_caller=True, ua=None, cseq=None, call_id=None,
                       from_tag=None, to_tag=None, route=None, ruri=None, body=b"", extra=""):
        """An in-dialog request as a party of this call would send it (RFC 3261
        section 12.2.1.1), each part replaceable by what an attacker guesses.
        route: the Route header values (default: the route set of that side)."""
        sender = ua or (self.caller if from_caller else self.callee)
        if from_caller:
            rs = list(reversed(self.record_route)) if route is None else route
            target = self.callee_contact if ruri is None else ruri
            f = "<sip:door@%s>;tag=%s" % (DOMAIN, from_tag or self.caller_tag)
            t = "<%s>;tag=%s" % (self.ruri, to_tag or self.callee_tag)
        else:
            rs = list(self.invite_at_callee.hdrs("Record-Route")) if route is None else route
            target = self.caller_contact if ruri is None else ruri
            f = "<%s>;tag=%s" % (self.ruri, from_tag or self.callee_tag)
            t = "<sip:door@%s>;tag=%s" % (DOMAIN, to_tag or self.caller_tag)
        self.n_cseq = getattr(self, "n_cseq", 10) + 1
        lines = ["%s %s SIP/2.0" % (method, target), "Via: %s" % sender.via()]
        lines += ["Route: %s" % r for r in rs]
        lines += ["From: %s" % f, "To: %s" % t, "Call-ID: %s" % (call_id or self.call_id),
                  "CSeq: %d %s" % (cseq or self.n_cseq, method),
                  "Contact: <sip:%s:%d>" % (sender.ip, sender.port), "Max-Forwards: 70"]
        if body:
            sdp = method in ("INVITE", "UPDATE", "ACK")
            lines.append("Content-Type: %s" % ("application/sdp" if sdp else "text/plain"))
        if extra:
            lines.append(extra)
        sender.send("\n".join(lines), body)
        return sender


def py_call(env, route=None):
    """Registers mon1 (sipp), then door calls sip:mon1@home.example; mon1
    answers 180 (an early dialog) then 200; door ACKs. route: a Route header
    value for the INVITE (an outbound proxy setting), or None."""
    env.register("mon1", 0)
    c = PyCall()
    p = env.ports.proxy
    c.caller = PyUA("door", LOCAL, env.ports.sip(4), p)
    c.callee = PyUA("mon1", LOCAL, env.ports.sip(0), p)
    c.caller_rtp = RtpPeer("door-rtp", env.ports.media(4))
    c.callee_rtp = RtpPeer("mon1-rtp", env.ports.media(0))
    c.call_id = c.caller.uniq("call") + "@" + LOCAL
    c.caller_tag = c.caller.uniq("dt")
    c.callee_tag = c.callee.uniq("mt")
    c.ruri = "sip:mon1@%s" % DOMAIN
    c.caller_contact = "sip:door@%s:%d" % (LOCAL, c.caller.port)
    head = ("INVITE %s SIP/2.0\nVia: {via}\n" % c.ruri +
            ("Route: %s\n" % route if route else "") +
            "From: <sip:door@%s>;tag=%s\nTo: <%s>\nCall-ID: %s\nCSeq: {cseq} INVITE\n"
            "Contact: <%s>\nMax-Forwards: 70\n{auth}Content-Type: application/sdp"
            % (DOMAIN, c.caller_tag, c.ruri, c.call_id, c.caller_contact))
    # The callee answers while the caller waits: one thread for the callee.
    answered = {}

    def callee():
        try:
            inv = c.callee.expect(lambda m: m.method == "INVITE", "INVITE", timeout=8)
            answered["invite"] = inv
            c.callee.reply(inv, 180, "Ringing", to_tag=c.callee_tag)
            c.callee.reply(inv, 200, "OK", to_tag=c.callee_tag,
                           body=py_sdp(c.callee_rtp.port, owner="mon1"))
        except TestFailure as e:
            answered["error"] = str(e)

    th = threading.Thread(target=callee, daemon=True)
    th.start()
    ok, cseq = send_authenticated(c.caller, "INVITE", c.ruri, "door", head,
                                   py_sdp(c.caller_rtp.port))
    th.join(10)
    check("error" not in answered, answered.get("error", ""))
    check(ok.status == 200, "door's INVITE got %s, expected 200" % ok.first)
    c.invite_at_callee = answered["invite"]
    c.ok = ok
    c.cseq = cseq
    c.record_route = ok.hdrs("Record-Route")
    check(c.record_route, "the 200 carries no Record-Route")
    c.callee_contact = uri_in(ok.hdr("Contact"))
    # Where each side sends its media: the relay's ports in the SDP it got.
    c.caller_media_to = sdp_port(ok.body)
    c.callee_media_to = sdp_port(c.invite_at_callee.body)
    c.send_in_dialog("ACK", cseq=cseq)
    c.callee.expect(lambda m: m.method == "ACK", "ACK")
    return c


def media_reaches_callee(env, c, n=10):
    """Sends n RTP packets from the caller's media port to the relay; returns
    how many reached the callee's media port (bounded wait)."""
    # One stream (SSRC and sequence) for the whole call, as a phone sends it.
    first = c.rtp_sent = getattr(c, "rtp_sent", 0)
    had = len(c.callee_rtp.rtp())
    for i in range(first, first + n):
        c.caller_rtp.sock.sendto(rtp_packet(i, i * 160, 0x5EC0011, b"\x00" * 20, pt=0),
                                 (LOCAL, c.caller_media_to))
        time.sleep(0.01)
    c.rtp_sent = first + n
    deadline = time.time() + 2
    while time.time() < deadline and len(c.callee_rtp.rtp()) - had < n:
        time.sleep(0.05)
    return len(c.callee_rtp.rtp()) - had


def relay_call(env, call_id):
    calls = [x for x in env.ctl("relay").get("calls", []) if x.get("call_id") == call_id]
    return calls[0] if calls else None


def hang_up(env, c):
    """The real BYE from the caller: the callee gets it and answers 200; the
    relay's ports are freed and the call leaves the calls list."""
    c.send_in_dialog("BYE")
    bye = c.callee.expect(lambda m: m.method == "BYE", "the caller's BYE")
    c.callee.reply(bye, 200, "OK")
    ok = c.caller.response_to("BYE")
    check(ok.status == 200, "the real BYE got %s" % ok.first)
    env.wait_relay_free()
    env.wait_no_calls()


def close_call(c):
    for x in (c.caller, c.callee, c.caller_rtp, c.callee_rtp):
        x.close()


class Sentinel:
    """A UDP socket on the attacker's host: where a relayed request or a
    reflected response would arrive. Anything at all is a failure."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ATTACKER, port))
        self.sock.setblocking(False)
        self.port = port

    def got(self, wait=1.0):
        time.sleep(wait)
        return drain_socket(self.sock)

    def close(self):
        self.sock.close()


@contextlib.contextmanager
def attacked_call(env):
    """py_call(env), the attacker (a PyUA on 127.0.0.2) and a Sentinel (a device
    that must hear nothing), all closed at the end."""
    c = py_call(env)
    sentinel = Sentinel(env.ports.sip(7))
    attacker = PyUA("attacker", ATTACKER, env.ports.sip(5), env.ports.proxy)
    try:
        yield c, attacker, sentinel
    finally:
        sentinel.close()
        attacker.close()
        close_call(c)

