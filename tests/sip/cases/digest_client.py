"""portier-door's and portier-monitor's digest client: MD5 and SHA-256 challenges in
every order (RFC 8760), in-dialog challenges, what it cannot answer, refreshes."""

import hashlib
import re
import socket
import threading
import time

from portier_sip.base import DOMAIN, DOOR_CODE, LOCAL, TestFailure, USERS, check, log
from portier_sip.devices import check_no_code_in_logs, door_with_monitor_access
from portier_sip.registry import case


def _digest_hash(algorithm, text):
    h = hashlib.sha256 if algorithm.upper() == "SHA-256" else hashlib.md5
    return h(text.encode()).hexdigest()


def _auth_params(value):
    """The name=value pairs of a Digest credentials header value."""
    out = {}
    for m in re.finditer(r'(\w+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]+)', value.split(" ", 1)[1]):
        out[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return out


def _check_digest(creds, method, ruri, user, algorithm, nonce):
    """RFC 7616 §3.4.1 (qop=auth) over the credentials a device sent: the
    algorithm it chose, the digest uri equal to the Request-URI (RFC 2617
    §3.2.2.5) and the response computed with its password."""
    p = _auth_params(creds)
    check(p.get("algorithm", "MD5").upper() == algorithm.upper(),
          "answered with %s, expected %s: %s" % (p.get("algorithm"), algorithm, creds))
    check(p.get("nonce") == nonce and p.get("username") == user and p.get("qop") == "auth",
          "credentials for another nonce/user/qop: %s" % creds)
    check(p.get("uri") == ruri, "digest uri %r is not the Request-URI %r" % (p.get("uri"), ruri))
    ha1 = _digest_hash(algorithm, "%s:%s:%s" % (user, p["realm"], USERS[user]))
    ha2 = _digest_hash(algorithm, "%s:%s" % (method, ruri))
    want = _digest_hash(algorithm, ":".join([ha1, nonce, p["nc"], p["cnonce"], "auth", ha2]))
    check(p.get("response") == want, "wrong %s response from %s: %s" % (algorithm, user, creds))


def _sip_parse(data):
    """(first line, [(name, value)], body) of one SIP message."""
    head, _, body = data.decode("utf-8", "replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    hdrs = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        hdrs.append((name.strip(), value.strip()))
    return lines[0], hdrs, body


def _hdr(hdrs, name, short=None):
    return [v for n, v in hdrs if n.lower() in (name.lower(), (short or name).lower())]


class _UdpPeer(threading.Thread):
    """A SIP peer of the test on a raw UDP socket of 127.0.0.1: handle() gets
    each datagram until stop_flag or `limit` seconds; what it raises is kept
    in errors (a test helper reports, never dies silently)."""

    def __init__(self, port, limit):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCAL, port))
        self.sock.settimeout(0.2)
        self.limit = limit
        self.errors = []
        self.stop_flag = False

    def run(self):
        end = time.time() + self.limit
        while time.time() < end and not self.stop_flag:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            try:
                self.handle(data, addr)
            except Exception as e:
                self.errors.append("%s: %s" % (type(e).__name__, e))
        self.sock.close()


class ChallengingPeer(_UdpPeer):
    """A SIP device on a raw UDP socket (a "door" the monitor calls through
    the proxy): answers the INVITE 200 with SDP, then challenges the first
    in-dialog INFOs with 401, one challenge set each (RFC 3261 §22.1), checks
    the credentials of the INFO that comes again, answers every other INFO
    and the BYE 200. Bounded: it stops after `limit` seconds."""

    def __init__(self, env, port, user, challenge_sets, limit=60):
        super().__init__(port, limit)
        self.port, self.user = port, user
        self.sets = list(challenge_sets)
        self.pending = None  # (nonces by algorithm, expected algorithm) of the last 401
        self.answered = []   # algorithms the monitor answered with, in order
        self.infos_ok = 0
        self.got_bye = False

    def reply(self, addr, hdrs, status, extra=(), body=""):
        lines = ["SIP/2.0 %s" % status]
        for v in _hdr(hdrs, "Via", "v"):
            lines.append("Via: " + v)
        for v in _hdr(hdrs, "Record-Route"):
            lines.append("Record-Route: " + v)
        to = _hdr(hdrs, "To", "t")[0]
        if ";tag=" not in to:
            to += ";tag=peer-%d" % self.port
        lines += ["From: " + _hdr(hdrs, "From", "f")[0], "To: " + to,
                  "Call-ID: " + _hdr(hdrs, "Call-ID", "i")[0], "CSeq: " + _hdr(hdrs, "CSeq")[0],
                  "Contact: <sip:%s@%s:%d>" % (self.user, LOCAL, self.port)]
        lines += list(extra)
        lines.append("Content-Length: %d" % len(body))
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), addr)

    def answer_sdp(self, offer):
        out = ["v=0", "o=peer 1 1 IN IP4 %s" % LOCAL, "s=-", "c=IN IP4 %s" % LOCAL, "t=0 0"]
        port = self.port + 100
        for block in offer.split("\r\nm=")[1:]:
            lines = block.split("\r\n")
            media, _, _, *pts = lines[0].split()
            out.append("m=%s %d RTP/AVP %s" % (media, port, pts[0]))
            out += [l for l in lines[1:] if l.startswith(("a=rtpmap:%s " % pts[0],
                                                           "a=fmtp:%s " % pts[0]))]
            port += 2
        return "\r\n".join(out) + "\r\n"

    def handle(self, data, addr):
        first, hdrs, body = _sip_parse(data)
        if first.startswith("SIP/2.0"):
            return
        method, ruri = first.split()[:2]
        if method == "INVITE":
            self.reply(addr, hdrs, "200 OK", ["Content-Type: application/sdp"],
                       self.answer_sdp(body))
        elif method == "INFO":
            creds = _hdr(hdrs, "Authorization")
            if self.pending and creds:
                nonces, alg = self.pending
                self.pending = None
                try:
                    _check_digest(creds[0], "INFO", ruri, self.user, alg, nonces[alg])
                    self.answered.append(alg)
                except TestFailure as e:
                    self.errors.append(str(e))
                self.reply(addr, hdrs, "200 OK")
            elif self.sets:
                algs = self.sets.pop(0)
                nonces = {a: "nonce-%s-%d" % (a, int(time.time() * 1e6)) for a in algs}
                self.pending = (nonces, algs[0])
                self.reply(addr, hdrs, "401 Unauthorized",
                           ['WWW-Authenticate: Digest realm="%s", nonce="%s", algorithm=%s, '
                            'qop="auth"' % (DOMAIN, nonces[a], a) for a in algs])
            else:
                self.infos_ok += 1
                self.reply(addr, hdrs, "200 OK")
        elif method == "BYE":
            self.got_bye = True
            self.reply(addr, hdrs, "200 OK")
        elif method != "ACK":
            self.reply(addr, hdrs, "200 OK")


def digest_client_against_proxy(env, algorithms):
    """With the proxy at `available-algorithms = <algorithms>`: the door and a
    monitor register (401 answered), the door rings the monitor (its INVITE's
    407 answered: the proxy forwards only an authenticated INVITE), the
    monitor sends the door code as a MESSAGE (407 answered) and the door runs
    its action."""
    env.algorithms = algorithms
    env.start_proxy()
    door_with_monitor_access(env)  # waits until the door is registered
    env.start_monitor("mon1", "mon1", 0, 0, extra="[actions]\nmethod = message\n")
    aors = {r.get("aor") for r in env.registrations()}
    check({"sip:door@%s" % DOMAIN, "sip:mon1@%s" % DOMAIN} <= aors, "bindings: %s" % sorted(aors))
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_monitor("mon1", lambda st: st.get("call") == "early", "the door's ring", 10)
    r = env.mon_ctl("mon1", "action", "open-door")
    check("result" in r, "mon1 action open-door: %s" % r)
    env.wait_door_event("action", 10)
    actions = [e["details"] for e in env.door_events("action")]
    check(actions == ["via=message from=sip:mon1@%s action=door result=done" % DOMAIN],
          "expected the door's action once, by MESSAGE from mon1: %s" % actions)
    check(env.door_ctl("hangup").get("result") == "hung up", "the door did not hang up")
    env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "the end of the ring")
    for text in (env.door_log_text(), env.monitor_log_text("mon1")):
        check("cannot answer" not in text and "refused" not in text,
              "a device could not answer a challenge: %s"
              % [l for l in text.splitlines() if "cannot answer" in l or "refused" in l][:3])
    check_no_code_in_logs(env, "mon1")
    check(USERS["door"] not in env.door_log_text(), "the door's password is in its log")


@case
def case_digest_client_md5(env):
    """The door and a monitor authenticate against a proxy that offers MD5
    only (what Kamailio and Asterisk send): REGISTER, INVITE, MESSAGE."""
    digest_client_against_proxy(env, "MD5")


@case
def case_digest_client_sha256(env):
    """... a proxy that offers SHA-256 only (RFC 8760)."""
    digest_client_against_proxy(env, "SHA-256")


@case
def case_digest_client_md5_sha256(env):
    """... a proxy that offers MD5, then SHA-256 (RFC 8760 §2.4: one challenge
    per algorithm, in the server's order of preference)."""
    digest_client_against_proxy(env, "MD5 SHA-256")


@case
def case_digest_client_sha256_md5(env):
    """... a proxy that offers SHA-256, then MD5."""
    digest_client_against_proxy(env, "SHA-256 MD5")


@case
def case_digest_client_info(env):
    """The monitor answers a 401 to its in-dialog INFO (RFC 3261 §22.1): a
    device it called challenges the first four INFOs of the door code with
    MD5 alone, SHA-256 alone, MD5 then SHA-256, SHA-256 then MD5; the monitor
    answers each with the first algorithm offered (RFC 7616 §3.7), the digest
    uri being the INFO's Request-URI, and every key gets through. (The
    proxy offers both algorithms: sipp registers the peer with MD5.)"""
    env.algorithms = "MD5 SHA-256"
    env.start_proxy()
    env.register("alice", 3)
    check(env.bindings_for("alice"), "the peer did not register")
    peer = ChallengingPeer(env, env.ports.sip(3), "mon1",
                           [["MD5"], ["SHA-256"], ["MD5", "SHA-256"], ["SHA-256", "MD5"]])
    peer.start()
    env.start_monitor("mon1", "mon1", 0, 0, extra="[actions]\nmethod = info\n[doors]\n"
                      "peer = sip:alice@%s\n" % DOMAIN)
    r = env.mon_ctl("mon1", "call", "peer")
    check(r.get("result", "").startswith("calling"), "mon1 call peer: %s" % r)
    env.wait_monitor("mon1", lambda st: st.get("call") == "answered", "the answer", 10)
    r = env.mon_ctl("mon1", "action", "open-door")
    check("result" in r, "mon1 action open-door: %s" % r)
    deadline = time.time() + 15
    while time.time() < deadline and len(peer.answered) + peer.infos_ok < len(DOOR_CODE):
        time.sleep(0.1)
    log("INFO challenges answered with %s; %d INFO(s) without a challenge"
        % (peer.answered, peer.infos_ok))
    check(not peer.errors, "the peer found: %s" % peer.errors)
    check(peer.answered == ["MD5", "SHA-256", "MD5", "SHA-256"],
          "answers to the four challenged INFOs: %s" % peer.answered)
    check(peer.infos_ok == len(DOOR_CODE) - 4, "%d of %d keys got through after the challenges"
          % (peer.infos_ok, len(DOOR_CODE) - 4))
    check(env.mon_ctl("mon1", "hangup").get("result") == "hung up", "mon1 did not hang up")
    deadline = time.time() + 5
    while time.time() < deadline and not peer.got_bye:
        time.sleep(0.1)
    check(peer.got_bye, "the peer never got the BYE")
    peer.stop_flag = True
    check_no_code_in_logs(env, "mon1")


class ChallengingRegistrar(_UdpPeer):
    """A stand-in for the proxy on a raw UDP socket: every REGISTER gets 401,
    every INVITE 407 (then the ACK is absorbed), with `challenges` (header
    values); with `refuse`, also the requests that carry credentials (what a
    wrong password gets). Counts the REGISTERs with and without credentials."""

    def __init__(self, port, challenges, limit=40):
        super().__init__(port, limit)
        self.challenges = challenges
        self.registers, self.with_credentials, self.invites = 0, 0, 0

    def handle(self, data, addr):
        first, hdrs, _ = _sip_parse(data)
        method = first.split()[0]
        if method not in ("REGISTER", "INVITE"):
            return
        creds = _hdr(hdrs, "Authorization") + _hdr(hdrs, "Proxy-Authorization")
        if method == "REGISTER":
            self.registers += 1
            self.with_credentials += bool(creds)
        else:
            self.invites += 1
        status, header = (("401 Unauthorized", "WWW-Authenticate") if method == "REGISTER"
                          else ("407 Proxy Authentication Required", "Proxy-Authenticate"))
        lines = ["SIP/2.0 " + status] + ["Via: " + v for v in _hdr(hdrs, "Via", "v")]
        lines += ["From: " + _hdr(hdrs, "From", "f")[0],
                  "To: " + _hdr(hdrs, "To", "t")[0] + ";tag=reg1",
                  "Call-ID: " + _hdr(hdrs, "Call-ID", "i")[0],
                  "CSeq: " + _hdr(hdrs, "CSeq")[0]]
        lines += ["%s: %s" % (header, c) for c in self.challenges]
        self.sock.sendto(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(), addr)


def _log_lines(text, *needles):
    return [l for l in text.splitlines() if all(n in l for n in needles)]


@case
def case_digest_client_unanswerable(env):
    """A challenge the monitor cannot answer (Digest SHA-512-256, Basic, qop
    without auth: RFC 7616 §3.3-3.4) gets one log line per refused request
    naming what was offered, never a retry with credentials; its REGISTER
    status says so; a call it places ends "authentication failed". Then a
    registrar that refuses its credentials (a second 401 right after them,
    not stale): one line per attempt, "wrong user name or password"."""
    reg = ChallengingRegistrar(env.ports.proxy, [
        'Digest realm="%s", nonce="n1", algorithm=SHA-512-256, qop="auth"' % DOMAIN,
        'Basic realm="%s"' % DOMAIN,
        'Digest realm="%s", nonce="n2", algorithm=MD5, qop="auth-int"' % DOMAIN])
    reg.start()
    env.start_monitor("mon1", "mon1", 0, 0, wait_registered=False)
    st = env.wait_monitor("mon1", lambda st: "no Digest challenge" in st.get("registration", ""),
                          "a registration status that says why", 10)
    log("mon1: %s" % st["registration"])
    check("Digest SHA-512-256" in st["registration"] and "Basic" in st["registration"],
          "the status does not name the offered challenges: %s" % st["registration"])
    r = env.mon_ctl("mon1", "call", "front")
    check(r.get("result", "").startswith("calling"), "mon1 call front: %s" % r)
    st = env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "the end of its call", 10)
    check(st.get("reason") == "authentication failed", "the call ended with %r" % st.get("reason"))
    reg.stop_flag = True
    reg.join(2)
    text = env.monitor_log_text("mon1")
    reg_lines = _log_lines(text, "registration refused: no Digest challenge")
    inv_lines = _log_lines(text, "cannot answer the 407 to our INVITE", "no Digest challenge")
    log("registrar saw %d REGISTER(s) (%d with credentials), %d INVITE(s); log lines: %s"
        % (reg.registers, reg.with_credentials, reg.invites, (reg_lines + inv_lines)[:2]))
    check(reg.with_credentials == 0, "the monitor answered a challenge it cannot answer")
    check(len(reg_lines) == reg.registers >= 1,
          "%d REGISTER(s) refused, %d log line(s): %s" % (reg.registers, len(reg_lines), reg_lines))
    check(len(inv_lines) == reg.invites == 1,
          "%d INVITE(s) refused, %d log line(s): %s" % (reg.invites, len(inv_lines), inv_lines))
    env.monitors["mon1"].stop()
    # A registrar that refuses our credentials.
    reg = ChallengingRegistrar(env.ports.proxy, [
        'Digest realm="%s", nonce="n3", algorithm=MD5, qop="auth"' % DOMAIN])
    reg.start()
    env.start_monitor("mon2", "mon2", 1, 1, wait_registered=False)
    st = env.wait_monitor("mon2", lambda st: "wrong user name or password" in
                          st.get("registration", ""), "a refused registration", 10)
    reg.stop_flag = True
    reg.join(2)
    lines = _log_lines(env.monitor_log_text("mon2"), "registration refused:", "wrong user name")
    log("registrar saw %d REGISTER(s), %d with credentials; %d log line(s)"
        % (reg.registers, reg.with_credentials, len(lines)))
    check(reg.with_credentials >= 1 and len(lines) == reg.with_credentials,
          "%d refused attempt(s), %d log line(s)" % (reg.with_credentials, len(lines)))
    for name in ("mon1", "mon2"):
        check(USERS[name] not in env.monitor_log_text(name), "%s's password is in its log" % name)


@case
def case_digest_client_refresh(env):
    """With the proxy at MD5 alone, portier-monitor's registration refreshes
    (nua re-sends the REGISTER before it expires, RFC 3261 §10.2.4; the
    proxy challenges it again) keep the binding: it never lapses, the
    monitor stays registered, and its un-REGISTER at the end (answering the
    challenge, §10.2.2) removes the binding."""
    env.algorithms = "MD5"
    env.start_proxy()
    env.start_monitor("mon1", "mon1", 0, 0, extra="[account]\nregister-expires = 60\n")
    first = env.bindings_for("mon1")
    check(len(first) == 1, "mon1's binding: %s" % first)
    low = first[0]["expires"]
    deadline = time.time() + 70
    refreshed = False
    while time.time() < deadline and not refreshed:
        b = env.bindings_for("mon1")
        check(b, "mon1's binding lapsed")
        refreshed = b[0]["expires"] > low
        low = min(low, b[0]["expires"])
        time.sleep(0.5)
    check(refreshed, "mon1 never refreshed its registration (expires down to %d)" % low)
    log("mon1 refreshed its registration when %d s were left" % low)
    st = env.mon_ctl("mon1", "status")
    check(st.get("registered") and st.get("registration") == "registered", "mon1: %s" % st)
    check(not _log_lines(env.monitor_log_text("mon1"), "refused"),
          "mon1 logged a refusal: %s" % _log_lines(env.monitor_log_text("mon1"), "refused"))
    env.monitors["mon1"].stop()
    check(not env.bindings_for("mon1"), "mon1's binding is still there after it stopped")
