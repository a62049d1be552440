"""The in-house side of a domain registration (issue 15 item 1, helper housereg):
portier-proxy registers its domain to a cloud proxy over TLS as RFC 5626 outbound
says. The cloud here is a Python TLS server with the test PKI's proxy certificate
(the cloud proxy is built beside, on branch cloudreg): it reads the REGISTERs,
checks them, challenges, answers pings, stops answering them, closes the
connection, and sends an INVITE down the flow."""

import json
import os
import re
import socket
import ssl
import threading
import time

from portier_sip.base import ATTACKER, DOMAIN, LOCAL, TestFailure, check, log
from portier_sip.registry import case
from portier_sip.sipmsg import SipMessage, digest_auth, parse_challenge, sdp_body
from portier_py.pki import standard
from cases.proxy_tls import _check_config, set_transports, tls_port, tls_transport

REALM = "cloud.test"
PASSWORD = "Cloud-Reg-Pw-5521"


def cloud_port(env):
    return env.ports.sip(8)


class _Conn:
    """One TLS connection the house opened to the cloud."""

    def __init__(self, cloud, sock, n):
        self.cloud, self.sock, self.n = cloud, sock, n
        self.pings = 0
        self.closed = False
        self.lock = threading.Lock()

    def send(self, text):
        data = text.replace("\n", "\r\n").encode() if "\r\n" not in text else text.encode()
        with self.lock:
            self.sock.sendall(data)

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class Cloud:
    """A TLS "cloud proxy" on 127.0.0.1:cloud_port serving `cert`. Every message
    the house sends is queued as (conn, SipMessage); CRLFCRLF pings are counted
    per connection and answered with CRLF while `pongs` is set (RFC 5626 §4.4.1).
    A REGISTER is answered by the case, not here."""

    def __init__(self, env, pki, cert="proxy-full", key="proxy", rcvbuf=None):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.path(cert + ".pem"), pki.path(key + ".key"))
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:  # before listen(): the accepted sockets inherit it (a small window)
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.lsock.bind((LOCAL, cloud_port(env)))
        self.lsock.listen(8)
        self.lsock.settimeout(0.2)
        self.conns = []
        self.handshake_errors = []
        self.messages = []
        self.cond = threading.Condition()
        self.pongs = True
        self.paused = False  # while set, nothing is read: a slow reader
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped:
            try:
                raw, _ = self.lsock.accept()
            except OSError:
                continue
            try:
                raw.settimeout(5)
                s = self.ctx.wrap_socket(raw, server_side=True)
                s.settimeout(0.2)
            except (ssl.SSLError, OSError) as e:
                with self.cond:
                    self.handshake_errors.append(str(e))
                raw.close()
                continue
            with self.cond:
                c = _Conn(self, s, len(self.conns) + 1)
                self.conns.append(c)
                self.cond.notify_all()
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c):
        buf = b""
        while not self.stopped and not c.closed:
            if self.paused:
                time.sleep(0.05)
                continue
            try:
                data = c.sock.recv(65536)
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError):
                break
            if not data:
                break
            buf += data
            while True:
                if buf.startswith(b"\r\n\r\n"):
                    buf = buf[4:]
                    with self.cond:
                        c.pings += 1
                        self.cond.notify_all()
                    if self.pongs:
                        try:
                            c.send("\r\n")
                        except OSError:
                            pass
                    continue
                if buf.startswith(b"\r\n"):
                    buf = buf[2:]
                    continue
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                m = re.search(rb"\r\n(?:Content-Length|l)\s*:\s*(\d+)", buf[:end], re.I)
                size = int(m.group(1)) if m else 0
                if len(buf) < end + 4 + size:
                    break
                msg = SipMessage(buf[:end + 4 + size], c.n)
                buf = buf[end + 4 + size:]
                with self.cond:
                    self.messages.append((c, msg))
                    self.cond.notify_all()
        c.closed = True
        with self.cond:
            self.cond.notify_all()

    def next(self, pred, what, timeout=10):
        """The first queued (conn, msg) matching pred, taken off the queue."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for i, (c, m) in enumerate(self.messages):
                    if pred(c, m):
                        del self.messages[i]
                        return c, m
                left = deadline - time.time()
                if left <= 0:
                    raise TestFailure("the cloud got no %s within %ss" % (what, timeout))
                self.cond.wait(min(left, 0.2))

    def wait(self, pred, what, timeout=10):
        deadline = time.time() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.time()
                if left <= 0:
                    raise TestFailure("cloud: %s not within %ss" % (what, timeout))
                self.cond.wait(min(left, 0.2))

    def stop(self):
        self.stopped = True
        for c in self.conns:
            if not c.closed:
                c.close()
        self.lsock.close()
        self.thread.join(3)


def reply(conn, req, status, phrase, extra="", to_tag="cloudtag"):
    """A response to req down conn: Via, From, Call-ID, CSeq copied (RFC 3261 §8.2.6)."""
    lines = ["SIP/2.0 %d %s" % (status, phrase)]
    for v in req.hdrs("Via"):
        lines.append("Via: " + v)
    to = req.hdr("To")
    if ";tag=" not in to and status > 100:
        to += ";tag=" + to_tag
    lines += ["From: " + req.hdr("From"), "To: " + to, "Call-ID: " + req.hdr("Call-ID"),
              "CSeq: " + req.hdr("CSeq")]
    lines += [l for l in extra.split("\n") if l]
    lines += ["Content-Length: 0", "", ""]
    conn.send("\r\n".join(lines))


def is_register(c, m):
    return m.method == "REGISTER"


def check_register(m):
    """What RFC 5626 §4.2 and the wire protocol (common15) ask of the house's REGISTER;
    returns its instance urn."""
    check(m.ruri == "sips:proxy.test", "Request-URI %r (want sips:CLOUD-HOST)" % m.ruri)
    for h in ("From", "To"):
        check(re.match(r"^<sips:%s>(;tag=.*)?$" % re.escape(DOMAIN), m.hdr(h) or ""),
              "%s %r is not the domain AOR <sips:%s>" % (h, m.hdr(h), DOMAIN))
    contact = m.hdr("Contact") or ""
    inst = re.search(r'\+sip\.instance="<(urn:uuid:[0-9a-f-]{36})>"', contact)
    check(inst, "Contact %r has no +sip.instance (RFC 5626 §4.1)" % contact)
    check(re.search(r";reg-id=1\b", contact), "Contact %r has no reg-id=1 (RFC 5626 §4.2)" % contact)
    check(contact.startswith("<sips:%s" % DOMAIN), "Contact %r does not name the domain" % contact)
    sup = ",".join(m.hdrs("Supported") + m.hdrs("k"))
    check("outbound" in sup and "path" in sup, "Supported %r lacks outbound, path" % sup)
    check((m.hdr("Expires") or "") == "600", "Expires %r" % m.hdr("Expires"))
    via = m.hdr("Via") or ""
    check(via.startswith("SIP/2.0/TLS "), "Via %r is not TLS" % via)
    return inst.group(1)


def register_with_digest(cloud, expires=600, timeout=10):
    """The challenge exchange on the cloud side: 401, then the digest checked
    (username = the house domain, our realm, the password of the file), then
    200 with Require: outbound (RFC 5626 §6). Returns (conn, instance)."""
    c, m = cloud.next(is_register, "REGISTER", timeout)
    inst = check_register(m)
    check(m.hdr("Authorization") is None, "first REGISTER already has credentials")
    nonce = "n%x" % int(time.time() * 1000)
    reply(c, m, 401, "Unauthorized",
          'WWW-Authenticate: Digest realm="%s", nonce="%s", qop="auth", algorithm=MD5' % (REALM, nonce))
    c2, m2 = cloud.next(is_register, "REGISTER with credentials", 10)
    check(c2 is c, "the answer to the challenge came over another connection (RFC 5626 §4.2.1)")
    check(check_register(m2) == inst, "the instance changed between challenge and answer")
    auth = m2.hdr("Authorization") or ""
    p = parse_challenge(auth)
    check(p.get("username") == DOMAIN, "digest username %r (want the domain)" % p.get("username"))
    check(p.get("realm") == REALM and p.get("nonce") == nonce, "digest realm/nonce %r" % auth)
    want = parse_challenge(digest_auth(DOMAIN, PASSWORD, {"realm": REALM, "nonce": nonce},
                                       "REGISTER", p.get("uri", ""), nc=int(p.get("nc", "1"), 16),
                                       cnonce=p.get("cnonce")))
    check(p.get("response") == want["response"], "the digest response is wrong: %r" % auth)
    reply(c2, m2, 200, "OK", "Require: outbound\nSupported: outbound, path\nContact: %s;expires=%d"
          % (m2.hdr("Contact"), expires))
    return c2, inst


def ctl_domain_regs(env):
    return env.ctl("domain-registrations").get("domain_registrations", [])


def wait_state(env, state, timeout=10):
    deadline = time.time() + timeout
    regs = []
    while time.time() < deadline:
        regs = ctl_domain_regs(env)
        if regs and regs[0].get("state") == state:
            return regs[0]
        time.sleep(0.1)
    raise TestFailure("domain registration not %s: %s" % (state, regs))


def house(env, pki, keepalive=2, pingpong=1, reconnect=1, cloud_cert_ok=True):
    """The house's proxy: a TLS transport that checks servers by name against the
    test root, and a domain-registrations file naming the cloud by name
    (proxy.test, reached at 127.0.0.1: docs/TLS.md §3, IP SANs never match)."""
    set_transports(env, tls_transport(
        env, pki, params=";tls-verify-outgoing=true;tls-certificates-ca-file=%s"
        % pki.path("ca.pem")))
    regs = env.write("domain-registrations", "# house -> cloud\n\n%s sips:proxy.test:%d;maddr=%s %s\n"
                     % (DOMAIN, cloud_port(env), LOCAL, PASSWORD))
    env.relay_extra = ("[inter-domain-connections]\ndomain-registrations = %s\n"
                       "keepalive-interval = %d\nping-pong-timeout-delay = %d\n"
                       "reconnection-delay = %d\n" % (regs, keepalive, pingpong, reconnect))
    env.start_proxy()


@case
def case_housereg_register_keepalive_reconnect(env):
    """RFC 5626 outbound from the house: the REGISTER of sips:home.example (Contact with
    +sip.instance and reg-id=1, Supported: outbound, path) answered 401 is sent again
    with the right digest over the same connection; 200 with Require: outbound makes it
    registered (portierctl domain-registrations). CRLFCRLF pings come every
    keepalive-interval (§4.4.1). The cloud stops answering pongs: the house drops the
    flow and registers again on a new connection with the same instance (§4.4.1,
    §4.5); the cloud closes the connection: the same. An INVITE for mon1 sent down the
    flow rings mon1 (registered at the house) with no challenge, and its 180 and
    200 come back up the flow; a request for another domain or a REGISTER down the
    flow is refused (403), and the same INVITE on a connection of its own from 127.0.0.2 is
    refused or challenged. A restart keeps the instance (§4.1). No password in the log."""
    pki = standard(env.dir)
    cloud = Cloud(env, pki)
    try:
        house(env, pki)
        c1, inst = register_with_digest(cloud)
        reg = wait_state(env, "registered")
        check(reg["instance"] == inst and reg["cloud"].startswith("sips:proxy.test:"),
              "ctl shows %s" % reg)
        cloud.wait(lambda: c1.pings >= 2, "two CRLFCRLF keep-alives", 10)
        log("pings on flow 1: %d, registered as %s" % (c1.pings, inst))

        # Requests down the flow (RFC 5626 §5.3 on the cloud side): mon1 rings.
        env.start_monitor("mon1", "mon1", 0, 0)
        invite_down_flow(env, cloud, c1)

        # No pong: the flow is dead, a new connection, the same instance.
        cloud.pongs = False
        c2, inst2 = register_with_digest(cloud, timeout=15)
        check(c2 is not c1 and inst2 == inst, "after missing pongs: conn %d, instance %s"
              % (c2.n, inst2))
        cloud.wait(lambda: c1.closed, "the dead flow closed", 5)
        cloud.pongs = True
        wait_state(env, "registered")
        # The cloud closes the connection: the same again.
        c2.close()
        c3, inst3 = register_with_digest(cloud, timeout=15)
        check(c3 is not c2 and inst3 == inst, "after a close: instance %s" % inst3)
        wait_state(env, "registered")
        events = [e for e in env.ctl("events") if e.get("event") == "domain_registration"]
        states = [e.get("state") for e in events]
        check(states.count("registered") >= 3 and "retrying" in states,
              "events: %s" % states)
        # A restart is the same instance (RFC 5626 §4.1: the state directory keeps it).
        env.stop_proxy()
        env.start_proxy()
        c4, inst4 = register_with_digest(cloud, timeout=15)
        check(inst4 == inst, "after a restart the instance is %s, was %s" % (inst4, inst))
        wait_state(env, "registered")
        text = env.proxy_log_text()
        check(PASSWORD not in text, "the domain registration's password is in the log")
        for line in text.splitlines():
            if "domain registration" in line:
                log(line[-200:])
    finally:
        cloud.stop()


def invite_down_flow(env, cloud, c):
    """The cloud sends an INVITE for sip:mon1@DOMAIN down flow c, as the cloud
    proxy would (Request-URI unchanged, its Record-Route): mon1 rings without a
    challenge, answers, and 180 and 200 come back up the flow; ACK and BYE follow
    the house's Record-Route down the flow. Then two requests the flow must not
    carry: one for another domain and a REGISTER (403 each)."""
    sdp = sdp_body(LOCAL, ["audio 4000 RTP/AVP 0", "video 4002 RTP/AVP 96"])
    body = sdp.replace("\n", "\r\n")
    via = "Via: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bK-cl1" % cloud_port(env)
    inv = ("INVITE sip:mon1@%s SIP/2.0\r\n%s\r\n"
           "Record-Route: <sips:proxy.test:%d;lr>\r\n"
           "From: <sips:alice@cloud.test>;tag=al1\r\nTo: <sip:mon1@%s>\r\n"
           "Call-ID: flow-invite-1@cloud\r\nCSeq: 1 INVITE\r\nMax-Forwards: 69\r\n"
           "Contact: <sips:alice@127.0.0.1:%d;transport=tls>\r\n"
           "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s"
           % (DOMAIN, via, cloud_port(env), DOMAIN, cloud_port(env), len(body), body))
    c.send(inv)

    def resp(status):
        return lambda cc, m: cc is c and m.status == status and m.cseq_method() == "INVITE"
    _, r180 = cloud.next(lambda cc, m: cc is c and m.status is not None and m.status >= 180 and
                         m.cseq_method() == "INVITE", "a response to the INVITE", 15)
    check(r180.status == 180, "the INVITE down the flow got %d %s (want 180: mon1 rings, "
          "no challenge)" % (r180.status, r180.reason))
    env.wait_monitor("mon1", lambda st: st.get("call") in ("ringing", "early"), "ringing", 10)
    check(env.mon_ctl("mon1", "answer").get("result") == "answered", "mon1 did not answer")
    _, ok = cloud.next(resp(200), "the 200 from mon1 up the flow", 10)
    rr = ok.hdrs("Record-Route")
    log("200 up the flow, Record-Route %s" % rr)
    to = ok.hdr("To")
    # ACK and BYE: the route set is the Record-Route, reversed (RFC 3261 §12.1.2),
    # less our own entry; they go down the same flow.
    routes = [r for r in ",".join(rr).split(",") if r.strip() and "proxy.test" not in r]
    route = "".join("Route: %s\r\n" % r.strip() for r in routes)
    contact = re.search(r"<([^>]+)>", ok.hdr("Contact") or "").group(1)
    for method, cseq, branch in (("ACK", 1, "cl2"), ("BYE", 2, "cl3")):
        c.send("%s %s SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bK-%s\r\n%s"
               "From: <sips:alice@cloud.test>;tag=al1\r\nTo: %s\r\n"
               "Call-ID: flow-invite-1@cloud\r\nCSeq: %d %s\r\nMax-Forwards: 69\r\n"
               "Content-Length: 0\r\n\r\n"
               % (method, contact, cloud_port(env), branch, route, to, cseq, method))
    _, bye = cloud.next(lambda cc, m: cc is c and m.cseq_method() == "BYE" and m.status,
                        "the answer to BYE", 10)
    check(bye.status == 200, "BYE down the flow got %d" % bye.status)
    env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "the end of the call", 10)
    # What the flow must not carry.
    # Another domain through us, a registration at our registrar, and a caller
    # claiming to be the door (a device of our users file proves itself to us,
    # never through the cloud).
    for n, (method, ruri, frm) in enumerate((
            ("INVITE", "sip:mon1@other.example", "sips:alice@cloud.test"),
            ("REGISTER", "sip:%s" % DOMAIN, "sip:mon1@%s" % DOMAIN),
            ("INVITE", "sip:mon1@%s" % DOMAIN, "sip:door@%s" % DOMAIN))):
        c.send("%s %s SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bK-bad%d\r\n"
               "From: <%s>;tag=x%d\r\nTo: <sip:mon1@%s>\r\n"
               "Call-ID: flow-bad-%d@cloud\r\nCSeq: 1 %s\r\nMax-Forwards: 69\r\n"
               "Contact: <sip:mon1@127.0.0.2:5060>\r\nContent-Length: 0\r\n\r\n"
               % (method, ruri, cloud_port(env), n, frm, n, DOMAIN, n, method))
        _, r = cloud.next(lambda cc, m, n=n: cc is c and m.status and
                          m.hdr("Call-ID") == "flow-bad-%d@cloud" % n and m.status >= 200,
                          "an answer to %s %s" % (method, ruri), 10)
        check(r.status == 403, "%s %s down the flow got %d (want 403)" % (method, ruri, r.status))
    check(len(env.bindings_for("mon1")) == 1, "the REGISTER down the flow changed mon1's bindings")
    # The same INVITE over a connection of its own, from 127.0.0.2 to the house's TLS
    # port: only our flow carries the cloud's trust, so it is refused or challenged.
    status = invite_from_attacker(env, body)
    check(status in (403, 407), "an INVITE from a cloud user on another connection got %s "
          "(want 403 or 407)" % status)


def invite_from_attacker(env, body):
    """An INVITE for mon1 From sips:alice@cloud.test over a TLS connection from
    ATTACKER to the house's TLS port: the status of its first final answer."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.socket()
    raw.bind((ATTACKER, 0))
    raw.settimeout(5)
    raw.connect((LOCAL, tls_port(env)))
    with ctx.wrap_socket(raw) as s:
        port = s.getsockname()[1]
        s.sendall(("INVITE sip:mon1@%s SIP/2.0\r\nVia: SIP/2.0/TLS %s:%d;branch=z9hG4bK-att1\r\n"
                   "From: <sips:alice@cloud.test>;tag=att1\r\nTo: <sip:mon1@%s>\r\n"
                   "Call-ID: attacker-1@cloud\r\nCSeq: 1 INVITE\r\nMax-Forwards: 69\r\n"
                   "Contact: <sips:alice@%s:%d;transport=tls>\r\n"
                   "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s"
                   % (DOMAIN, ATTACKER, port, DOMAIN, ATTACKER, port, len(body), body)).encode())
        buf = b""
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                data = s.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            buf += data
            for m in re.finditer(rb"SIP/2\.0 (\d{3})", buf):
                if int(m.group(1)) >= 200:
                    return int(m.group(1))
    return None


@case
def case_housereg_wrong_cloud_and_config(env):
    """A cloud whose certificate names another host (other.test): no REGISTER is sent
    (sofia closes the connection before writing SIP, RFC 5922 §7.3), the domain
    registration is not registered and a log line says why; in-house calls are
    unaffected while the cloud is unreachable (the door rings mon1). --check-config
    names the file and line of a bad domain-registrations line, never its password,
    and refuses domain registrations over a TLS transport that does not verify."""
    pki = standard(env.dir)
    cloud = Cloud(env, pki, cert="othername", key="othername")
    try:
        house(env, pki, reconnect=1)
        env.start_monitor("mon1", "mon1", 0, 0)
        door_rings_mon1(env)
        time.sleep(3)  # two reconnection attempts at least
        with cloud.cond:
            got = [m for _, m in cloud.messages]
        check(not got, "the house sent SIP to a cloud with a wrong certificate: %s"
              % [m.first for m in got])
        reg = ctl_domain_regs(env)[0]
        check(reg["state"] in ("connecting", "retrying"), "state %s" % reg)
        text = env.proxy_log_text()
        lines = [l for l in text.splitlines() if "not trusted" in l or
                 ("domain registration" in l and "certificate" in l)]
        check(lines, "no log line says the cloud's certificate was refused:\n%s" % text[-2000:])
        log("log: %s" % lines[0][-250:])
    finally:
        cloud.stop()
    # --check-config: file and line named, password not quoted.
    bad = env.write("bad-regs", "# ok\n%s sips:cloud.test s3cr3t-Pw\nhome2.example sip:cloud.test "
                    "Leaky-Pw-77\n" % DOMAIN)
    cfg = open(os.path.join(env.dir, "proxy.ini")).read()
    cfg = re.sub(r"domain-registrations = .*", "domain-registrations = %s" % bad, cfg)
    rc, out = _check_config(env, "bad.ini", cfg)
    check(rc != 0 and "%s:3" % bad in out and "sips:" in out, "check-config: %d %s" % (rc, out))
    check("Leaky-Pw-77" not in out, "check-config quotes the password: %s" % out)
    cfg2 = cfg.replace(";tls-verify-outgoing=true", "")
    cfg2 = re.sub(r"domain-registrations = .*", "domain-registrations = %s"
                  % os.path.join(env.dir, "domain-registrations"), cfg2)
    rc, out = _check_config(env, "noverify.ini", cfg2)
    check(rc != 0 and "tls-verify-outgoing" in out, "check-config without verify: %d %s" % (rc, out))


def door_rings_mon1(env):
    from portier_sip.devices import door_with_monitor_access
    door_with_monitor_access(env)
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_monitor("mon1", lambda st: st.get("call") == "early", "the door ringing", 10)
    check(env.mon_ctl("mon1", "hangup").get("result") in ("hung up", "declined", "rejected"),
          "mon1 could not end the ring")


@case
def case_housereg_credentials_refused(env):
    """The cloud refuses the house's digest (challenged again right after it, RFC 3261
    §22.2: wrong password): the registration is failed, its last error says the
    credentials were refused, it does not loop on REGISTERs, and the password is in
    no log line nor in portierctl's answer."""
    pki = standard(env.dir)
    cloud = Cloud(env, pki)
    try:
        house(env, pki)
        for n in range(2):
            c, m = cloud.next(is_register, "REGISTER %d" % (n + 1), 10)
            check_register(m)
            reply(c, m, 401, "Unauthorized", 'WWW-Authenticate: Digest realm="%s", nonce="r%d", '
                  'qop="auth", algorithm=MD5' % (REALM, n))
        reg = wait_state(env, "failed")
        check("credentials refused" in reg["last_error"], "last error: %s" % reg)
        time.sleep(2)  # a loop would have sent several REGISTERs by now
        with cloud.cond:
            more = [m.first for _, m in cloud.messages if m.method == "REGISTER"]
        check(not more, "REGISTERs sent again at once after a refusal: %s" % more)
        text = env.proxy_log_text() + json.dumps(ctl_domain_regs(env))
        check(PASSWORD not in text, "the password is in the log or portierctl's answer")
        log("failed: %s" % reg["last_error"])
    finally:
        cloud.stop()


@case
def case_housereg_keepalive_during_large_writes(env):
    """A keep-alive never lands inside a message being written (RFC 5626 §3.5.1: the
    CRLFCRLF goes between messages; OpenSSL: a write that could not finish must be
    retried before any other on that connection). The cloud stops reading its end of
    the flow (a small receive window) and sends 70+ OPTIONS for the house domain down
    it, each with 600 Via headers that the 200s copy back (RFC 3261 §8.2.6.2), ~57 kB
    each, more than the kernel's send buffer holds: the house's answers back up in
    sofia's queue while its keep-alive timer fires
    (every 1 s) for 4 s. Then the cloud reads again: every 200 parses, in order, on
    the same connection, keep-alives come again after them, and the house stayed
    registered on that flow (no reconnection). Pongs are not expected here
    (ping-pong-timeout-delay 0) so a stalled reader does not also count as a dead
    flow: what is checked is the stream alone."""
    pki = standard(env.dir)
    cloud = Cloud(env, pki, rcvbuf=4096)
    try:
        house(env, pki, keepalive=1, pingpong=0)
        c, inst = register_with_digest(cloud)
        wait_state(env, "registered")
        cloud.wait(lambda: c.pings >= 1, "a keep-alive before the stall", 10)
        # More than the kernel's send buffer holds (it grows up to tcp_wmem's maximum,
        # 4 MB by default, ~2.9 MB of data measured), so that sofia queues the rest
        # (at most 64 messages: TPORT_QUEUESIZE).
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem_max = int(f.read().split()[2])
        n_req = max(70, int(wmem_max / 1.4 / 57000) + 20)
        vias = "".join("Via: SIP/2.0/TLS 10.%d.%d.1:5061;branch=z9hG4bK-stall-hop-%04d-padding-"
                       "padding-padding-padding\r\n" % (i // 250, i % 250, i) for i in range(600))
        cloud.paused = True
        t0_pings = c.pings
        for i in range(n_req):
            c.send("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:%d;branch=z9hG4bK-st%d\r\n"
                   "%sFrom: <sips:alice@cloud.test>;tag=st%d\r\nTo: <sip:%s>\r\n"
                   "Call-ID: stall-%d@cloud\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 69\r\n"
                   "Content-Length: 0\r\n\r\n"
                   % (DOMAIN, cloud_port(env), i, vias, i, DOMAIN, i))
        time.sleep(4)  # the keep-alive timer fires about four times meanwhile
        check(not c.closed, "the house closed the flow while its answers were queued")
        cloud.paused = False
        got = []
        for i in range(n_req):
            _, r = cloud.next(lambda cc, m, i=i: cc is c and m.status is not None and
                              m.hdr("Call-ID") == "stall-%d@cloud" % i, "the 200 to OPTIONS %d" % i,
                              15)
            check(r.status == 200, "OPTIONS %d down the flow got %d" % (i, r.status))
            check(len(r.hdrs("Via")) == 601, "the 200 to OPTIONS %d has %d Vias (the stream is "
                  "broken?)" % (i, len(r.hdrs("Via"))))
            got.append(i)
        after = c.pings
        cloud.wait(lambda: c.pings >= after + 2, "keep-alives after the queued answers", 10)
        check(not c.closed, "the flow closed")
        reg = wait_state(env, "registered")
        check(reg["instance"] == inst, "ctl shows %s" % reg)
        with cloud.cond:
            regs = [m for cc, m in cloud.messages if m.method == "REGISTER"]
        check(len(cloud.conns) == 1 and not regs, "the house reconnected or registered again: "
              "%d connections, %d REGISTERs" % (len(cloud.conns), len(regs)))
        log("%d answers of ~%d bytes parsed on one connection; pings %d before the stall, "
            "%d after it" % (len(got), len(vias), t0_pings, c.pings))
    finally:
        cloud.stop()
