#!/usr/bin/env python3
"""SIP conformance tests for portier-proxy, driven by sipp (Python 3 stdlib only).

One run = one case: a fresh temp dir, a fresh proxy on its own ports, sipp
peers, checks, then every process this script started is stopped, even on
failure. Cases can run in parallel (ctest -j): each case has its own block of
127.0.0.1 ports, picked from its index in CASES.

    run_sip_test.py --proxy build/signaling/portier-proxy \
                    --ctl build/signaling/portierctl --case register_auth

Exit status: 0 pass, 1 fail, 2 usage/setup error. See README.md.
"""

import argparse
import atexit
import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import struct
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "scenarios")
DOMAIN = "home.example"
GROUP = "home"
LOCAL = "127.0.0.1"

# Passwords are distinctive so that the harness can check none of them ever
# shows up in the proxy's log (DESIGN.md: no secrets in logs).
USERS = {
    "alice": "alice-Pw-7781",
    "door": "door-Pw-4410",
    "mon1": "mon1-Pw-1931",
    "mon2": "mon2-Pw-2297",
    "mon3": "mon3-Pw-3608",
}
WRONG_PASSWORD = "Wrong-Pw-5512"
# The door code of the monitor cases (a secret: it must not show up in logs).
DOOR_CODE = "583920"


class TestFailure(Exception):
    pass


class SetupError(Exception):
    pass


def log(msg):
    sys.stdout.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stdout.flush()


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


# --------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------

def _bound_ports():
    """Local ports with a socket on them (UDP any state, TCP any state), read
    from /proc so that checking never races with a peer binding the port."""
    ports = set()
    for name in ("udp", "tcp", "udp6", "tcp6"):
        try:
            with open("/proc/net/" + name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if len(fields) > 1 and ":" in fields[1]:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def port_bound(port, proto="udp"):
    try:
        with open("/proc/net/" + proto) as f:
            next(f)
            for line in f:
                fields = line.split()
                if len(fields) > 1 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    except OSError:
        pass
    return False


class Ports:
    """A block of BLOCK ports per case: base (proxy), then per peer slot j:
    SIP port base+10+j, sipp control port base+40+j, sipp media ports
    base+60+4j and +2 (sipp binds both even without RTP)."""
    BLOCK = 100
    MAX_SLOTS = 10

    def __init__(self, index, first_base, ncases):
        self.base = None
        stride = ncases * self.BLOCK
        for attempt in range(8):
            base = first_base + attempt * stride + index * self.BLOCK
            if base + self.BLOCK > 65000:
                break
            busy = _bound_ports() & set(range(base, base + self.BLOCK))
            if not busy:
                self.base = base
                return
            log("ports %d-%d busy (%s): trying the next range"
                % (base, base + self.BLOCK - 1, sorted(busy)[:5]))
        raise SetupError("no free port block for case index %d" % index)

    @property
    def proxy(self):
        return self.base

    @property
    def relay_first(self):
        # The proxy's media relay gets 100 ports of its own, far from every
        # case block, so it never takes a port a sipp of another case needs.
        return 40000 + (self.base - 21000) % 20000

    def sip(self, j):
        assert j < self.MAX_SLOTS
        return self.base + 10 + j

    def control(self, j):
        return self.base + 40 + j

    def media(self, j):
        return self.base + 60 + 4 * j


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """preexec_fn: the child gets SIGTERM if this script dies (even SIGKILL from
    a ctest timeout), so no proxy is ever left behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass


class Proc:
    def __init__(self, name, argv, out_path, cwd, append=False, env=None):
        self.name = name
        self.argv = argv
        self.out_path = out_path
        self.out = open(out_path, "ab" if append else "wb")
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT,
            cwd=cwd, start_new_session=True, preexec_fn=_die_with_parent, env=env)
        self.pid = self.popen.pid

    def running(self):
        return self.popen.poll() is None

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, grace=3.0):
        """Stop this process (and its process group, which it leads) by id."""
        if self.running():
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            if self.wait(grace) is None:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.wait(5)
        self.out.close()
        return self.popen.returncode


def tail(path, n=60):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    return "\n".join(lines[-n:])


# --------------------------------------------------------------------------
# sipp message logs (-trace_msg)
# --------------------------------------------------------------------------

_SEP = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$")
_DIR = re.compile(r"^(UDP|TCP|TLS|SCTP) message (sent|received)")


class SipMsg:
    def __init__(self, direction, stamp, text):
        self.direction = direction  # "sent" or "received"
        self.stamp = stamp
        self.text = text
        head, _, self.body = text.partition("\n\n")
        lines = head.split("\n")
        self.first = lines[0].strip() if lines else ""
        self.headers = []  # (name, value) in order, unfolded
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + line.strip())
            elif ":" in line:
                n, v = line.split(":", 1)
                self.headers.append((n.strip(), v.strip()))
        m = re.match(r"SIP/2\.0 (\d{3}) ?(.*)", self.first)
        self.status = int(m.group(1)) if m else None
        self.reason = m.group(2).strip() if m else None
        self.method = None if m else self.first.split(" ", 1)[0]

    def hdrs(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def hdr(self, name):
        v = self.hdrs(name)
        return v[0] if v else None

    def cseq_method(self):
        c = self.hdr("CSeq") or ""
        parts = c.split()
        return parts[1] if len(parts) > 1 else None

    def ts(self):
        return time.mktime(time.strptime(self.stamp.split(".")[0], "%Y-%m-%d %H:%M:%S")) + \
            float("0." + self.stamp.split(".")[1])


def parse_message_log(path):
    msgs = []
    try:
        with open(path, "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return msgs
    lines = raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines):
        m = _SEP.match(lines[i])
        if not m or i + 1 >= len(lines):
            i += 1
            continue
        d = _DIR.match(lines[i + 1])
        if not d:
            i += 1
            continue
        j = i + 2
        while j < len(lines) and not _SEP.match(lines[j]):
            j += 1
        text = "\n".join(lines[i + 2:j]).strip("\n")
        msgs.append(SipMsg(d.group(2), m.group(1), text))
        i = j
    return msgs


_RAW_HEAD = re.compile(rb"^-{20,} \d{4}-\d\d-\d\d [\d:.]+[ \t]*\r?\n"
                       rb"(?:UDP|TCP|TLS|SCTP) message (sent|received) "
                       rb"[(\[](\d+)[)\]]? ?(?:bytes)?[)\]]? ?:\r?\n\r?\n", re.M)


def attach_raw(msgs, path):
    """Give each message of parse_message_log(path) its exact bytes (m.raw) and
    body bytes (m.raw_body), cut by the byte count sipp logs with each message:
    the parsed text has its line ends normalized, which a byte-for-byte body
    check must not rely on. Returns msgs."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return msgs
    raws = [data[m.end():m.end() + int(m.group(2))] for m in _RAW_HEAD.finditer(data)]
    if len(raws) != len(msgs):
        raise TestFailure("%s: %d messages parsed, %d by byte count"
                          % (path, len(msgs), len(raws)))
    for m, raw in zip(msgs, raws):
        m.raw = raw
        m.raw_body = raw.partition(b"\r\n\r\n")[2]
    return msgs


# --------------------------------------------------------------------------
# Shared toolbox of the raw-socket cases: the attacker's address, messages
# received on a socket, one-datagram exchanges and their probe requests, a raw
# UA, SDP bodies, digest challenges and answers
# --------------------------------------------------------------------------

# The attacker's address: a second loopback address, so "another host" is real.
ATTACKER = "127.0.0.2"


class SipMessage(SipMsg):
    """A SIP message as a socket received it (bytes) from `src`: SipMsg's
    parsing, the body kept as bytes, the Request-URI of a request."""

    def __init__(self, data, src):
        head, _, body = data.partition(b"\r\n\r\n")
        SipMsg.__init__(self, "received", "", head.decode("latin-1").replace("\r\n", "\n"))
        self.body, self.src = body, src
        parts = self.first.split(" ", 2)
        self.ruri = parts[1] if self.status is None and len(parts) > 1 else None

    def tag(self, name):
        m = re.search(r";\s*tag=([^;>\s]+)", self.hdr(name) or "")
        return m.group(1) if m else None

    def cseq(self):
        parts = (self.hdr("CSeq") or "").split()
        return (int(parts[0]) if parts and parts[0].isdigit() else None,
                parts[1] if len(parts) > 1 else None)


def status_of(msg):
    """The status code of a raw response (bytes), None for a request or garbage."""
    m = re.match(rb"SIP/2\.0 (\d{3})", msg)
    return int(m.group(1)) if m else None


def header_lines(msg, name):
    """Every `name` header line of a raw message (bytes), whole, in order."""
    head = msg.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return [h for h in head if h.split(":", 1)[0].strip().lower() == name.lower()]


def header_values(msg, name):
    """The values of every `name` header line of a raw message (bytes), in order."""
    return [h.split(":", 1)[1].strip() for h in header_lines(msg, name)]


def header_value(msg, name):
    """The first `name` header value of a raw message (bytes), or None."""
    values = header_values(msg, name)
    return values[0] if values else None


def udp_exchange(port, payload, wait=1.0, src_port=0, poll=None):
    """One datagram to 127.0.0.1:port from a fresh socket (so that retransmitted
    responses to an earlier probe are not mixed in), and what comes back.
    payload: bytes, or a function of our port returning bytes. poll=None:
    reading stops at the first `wait` seconds without a datagram; poll=x:
    reads in x-second slices until `wait` seconds have passed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LOCAL, src_port))
    s.settimeout(poll or wait)
    try:
        if callable(payload):
            payload = payload(s.getsockname()[1])
        s.sendto(payload, (LOCAL, port))
        out = []
        end = time.time() + wait
        while time.time() < end:
            try:
                out.append(s.recv(65535))
            except socket.timeout:
                if poll is None:
                    break
        return out
    finally:
        s.close()


def _req(method, ruri, env, via=True, extra="", cl=None, body="", mf="70", cseq=None,
         call_id=True):
    """A probe request for udp_exchange: a function of the local port (for the
    Via). via / call_id False leave the header out; cl: a Content-Length that
    lies; mf: Max-Forwards; cseq: the whole CSeq value."""
    def build(port):
        lines = ["%s %s SIP/2.0" % (method, ruri)]
        if via:
            lines.append("Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-mal-%d"
                         % (LOCAL, port, int(time.time() * 1e6)))
        lines += ["From: <sip:mon1@%s>;tag=mal1" % DOMAIN, "To: <%s>" % ruri]
        if call_id:
            lines.append("Call-ID: mal-%d@%s" % (int(time.time() * 1e6), LOCAL))
        lines += ["CSeq: %s" % (cseq or "1 %s" % method), "Max-Forwards: %s" % mf]
        if extra:
            lines.append(extra)
        lines.append("Content-Length: %s" % (cl if cl is not None else len(body)))
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("latin-1")
    return build


class PyUA:
    """A hand-driven SIP endpoint on one UDP socket (port 0: any free one).
    The raw-socket cases need a call's exact Call-ID, tags and route set, and
    to send from 127.0.0.2; every wait is bounded."""

    def __init__(self, name, ip, port, proxy_port):
        self.name = name
        self.proxy = (LOCAL, proxy_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.ip, self.port = ip, self.sock.getsockname()[1]
        self.received = []  # every message, in order
        self.pending = []   # not yet taken by expect()
        self.n = 0

    def close(self):
        self.sock.close()

    def uniq(self, what):
        self.n += 1
        return "%s-%s-%d-%d" % (what, self.name, self.n, int(time.time() * 1e6))

    def via(self):
        return "SIP/2.0/UDP %s:%d;rport;branch=z9hG4bK-%s" % (self.ip, self.port, self.uniq("b"))

    def send(self, text, body=b"", to=None):
        if not text.startswith("SIP/2.0") and not text.startswith("ACK "):
            # Responses are matched to the last request sent (its Call-ID and
            # CSeq), so a retransmitted final response of an earlier probe
            # is never taken for the next one's.
            self.last = (re.search(r"^Call-ID: (.*)$", text, re.M).group(1).strip(),
                         re.search(r"^CSeq: (.*)$", text, re.M).group(1).strip())
        data = (text.strip("\r\n").replace("\r\n", "\n").replace("\n", "\r\n") +
                "\r\nContent-Length: %d\r\n\r\n" % len(body)).encode("latin-1") + body
        self.sock.sendto(data, to or self.proxy)

    def _read(self, until, first_only=False):
        while time.time() < until:
            self.sock.settimeout(max(0.01, until - time.time()))
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                return
            m = SipMessage(data, src)
            self.received.append(m)
            self.pending.append(m)
            if first_only:
                return

    def expect(self, pred, what, timeout=3.0):
        deadline = time.time() + timeout
        while True:
            for m in self.pending:
                if pred(m):
                    self.pending.remove(m)
                    return m
            if time.time() >= deadline:
                raise TestFailure("%s: no %s within %.0f s (got: %s)" % (
                    self.name, what, timeout,
                    ["%s (CSeq %s)" % (m.first, m.hdr("CSeq")) for m in self.received][-8:]))
            self._read(min(deadline, time.time() + 0.2), first_only=True)

    def response_to(self, cseq_method, timeout=3.0, final=True):
        """The response to the last request sent (a final one unless final=False)."""
        return self.expect(lambda m: m.status and m.cseq()[1] == cseq_method and
                           (m.hdr("Call-ID"), m.hdr("CSeq")) == self.last and
                           (m.status >= 200 or not final), "response to %s" % cseq_method,
                           timeout)

    def quiet(self, pred, seconds):
        """Messages matching pred that arrive within `seconds` (bounded wait)."""
        self._read(time.time() + seconds)
        got = [m for m in self.pending if pred(m)]
        for m in got:
            self.pending.remove(m)
        return got

    def reply(self, req, status, phrase, to_tag=None, body=b"", extra=""):
        """A response to req (RFC 3261 section 8.2.6: Via, From, To, Call-ID,
        CSeq copied; Record-Route too, section 12.1.1)."""
        to = req.hdr("To")
        if to_tag and ";tag=" not in to:
            to += ";tag=" + to_tag
        lines = ["SIP/2.0 %d %s" % (status, phrase)]
        lines += ["Via: %s" % v for v in req.hdrs("Via")]
        lines += ["Record-Route: %s" % r for r in req.hdrs("Record-Route")]
        lines += ["From: %s" % req.hdr("From"), "To: %s" % to,
                  "Call-ID: %s" % req.hdr("Call-ID"), "CSeq: %s" % req.hdr("CSeq"),
                  "Contact: <sip:%s:%d>" % (self.ip, self.port)]
        if body:
            lines.append("Content-Type: application/sdp")
        if extra:
            lines.append(extra)
        self.send("\r\n".join(lines), body, to=req.src)


def sdp_body(host, streams, owner="test", version=1, origin=LOCAL):
    """An SDP body (RFC 4566) with "\n" line ends. streams: "m=" line values
    without "m=", e.g. "audio 4000 RTP/AVP 0", each optionally followed by its
    own attribute lines ("\n" first); a video stream of payload type 96 gets
    VP8's rtpmap. c= names host (an address or, for the attacks, anything
    else); o= names owner, version and origin."""
    ip = "IP6" if ":" in host else "IP4"
    lines = ["v=0", "o=%s 1 %d IN IP4 %s" % (owner, version, origin), "s=-",
             "c=IN %s %s" % (ip, host), "t=0 0"]
    for s in streams:
        lines.append("m=" + s)
        if " 96" in s and s.startswith("video"):
            lines.append("a=rtpmap:96 VP8/90000")
    return "\n".join(lines) + "\n"


_DIGEST_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def parse_challenge(value):
    """The parameters of one WWW-Authenticate / Proxy-Authenticate value (RFC
    7616 section 3.3), names lower-cased and quotes taken off."""
    return dict((k.lower(), v1 or v2) for k, v1, v2 in
                re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]+))', value))


def find_challenge(values, algorithm="MD5"):
    """The parsed challenge of `algorithm` among header values, or None: the
    proxy sends one challenge per algorithm (RFC 8760 section 2.4), and one
    that names none is MD5 (RFC 7616 section 3.3)."""
    for v in values:
        params = parse_challenge(v)
        if params.get("algorithm", "MD5").upper() == algorithm.upper():
            return params
    return None


def digest_auth(user, password, challenge, method, uri, nc=1, cnonce=None, qop="auth"):
    """An Authorization / Proxy-Authorization value answering `challenge` (from
    parse_challenge) as RFC 7616 section 3.4 tells a client, in the challenge's
    algorithm (MD5 or SHA-256), opaque echoed. qop="" gives an RFC 2069 style
    answer (no nc, no cnonce; RFC 2617 section 3.2.2.1), which the proxy must
    refuse. uri is what the client claims (the Request-URI unless a case lies)."""
    algorithm = challenge.get("algorithm", "MD5").upper()

    def h(text):
        return _DIGEST_HASHES[algorithm](text.encode()).hexdigest()
    realm, nonce = challenge["realm"], challenge["nonce"]
    cnonce = cnonce or "c%08x" % nc
    ha1 = h("%s:%s:%s" % (user, realm, password))
    ha2 = h("%s:%s" % (method, uri))
    if qop:
        resp = h("%s:%s:%08x:%s:%s:%s" % (ha1, nonce, nc, cnonce, qop, ha2))
    else:
        resp = h("%s:%s:%s" % (ha1, nonce, ha2))
    value = ('Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", '
             'algorithm=%s' % (user, realm, nonce, uri, resp, algorithm))
    if qop:
        value += ', qop=%s, nc=%08x, cnonce="%s"' % (qop, nc, cnonce)
    if challenge.get("opaque"):
        value += ', opaque="%s"' % challenge["opaque"]
    return value


# --------------------------------------------------------------------------
# Test environment
# --------------------------------------------------------------------------

class Sipp:
    """One sipp run. Always bounded: -m, -timeout (+ -timeout_error) and a
    subprocess timeout above it."""

    def __init__(self, env, name, proc, timeout, scenario):
        self.env = env
        self.name = name
        self.proc = proc
        self.timeout = timeout
        self.scenario = scenario
        self.rc = None
        d = env.dir
        self.msg_log = os.path.join(d, name + "_messages.log")
        self.err_log = os.path.join(d, name + "_errors.log")
        self.out_log = os.path.join(d, name + ".out")

    def wait(self):
        rc = self.proc.wait(self.timeout + 10)
        if rc is None:
            log("%s: still running after %ds: killing it" % (self.name, self.timeout + 10))
            self.proc.stop(signal.SIGKILL)
            rc = -9
        self.proc.out.close()
        self.rc = rc
        return rc

    def messages(self, raw=False):
        msgs = parse_message_log(self.msg_log)
        return attach_raw(msgs, self.msg_log) if raw else msgs

    def received(self, pred=lambda m: True, raw=False):
        return [m for m in self.messages(raw) if m.direction == "received" and pred(m)]

    def sent(self, pred=lambda m: True, raw=False):
        return [m for m in self.messages(raw) if m.direction == "sent" and pred(m)]

    def expect_ok(self):
        rc = self.rc if self.rc is not None else self.wait()
        if rc != 0:
            raise TestFailure("sipp %s (%s) exited with %s (expected 0)"
                              % (self.name, self.scenario, rc))


class Env:
    def __init__(self, args, case, index, ncases):
        self.args = args
        self.case = case
        self.ports = Ports(index, args.base_port, ncases)
        self.dir = tempfile.mkdtemp(prefix="portier-sip-%s-" % case)
        self.state_dir = os.path.join(self.dir, "state")
        os.makedirs(self.state_dir)
        self.socket = os.path.join(self.dir, "proxy.sock")
        self.proxy_log = os.path.join(self.dir, "proxy.log")
        self.procs = []
        self.proxy = None
        self.proxy_starts = 0
        self.sipps = []
        self.cseq = {}  # (user, port) -> last CSeq used by register runs
        self.fork_timeout = 60
        self.min_expires = 60
        self.relay_extra = ""  # more [module::MediaRelay] lines
        self.global_extra = ""  # more [global] lines for the proxy (issue 11: transport)
        self.algorithms = "MD5 SHA-256"
        self.relay_enabled = True
        self.monitors = {}
        log("case %s: dir %s, ports %d-%d" % (case, self.dir, self.ports.base,
                                              self.ports.base + Ports.BLOCK - 1))

    # ---- files -----------------------------------------------------------
    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def write_config(self):
        users = "version:1\n" + "".join(
            "%s@%s clrtxt:%s ;\n" % (u, DOMAIN, p) for u, p in sorted(USERS.items()))
        users_path = self.write("users.conf", users)
        p = self.ports.proxy
        cfg = """[global]
transports = sip:{ip}:{p} sip:{ip}:{p};transport=tcp
log-level = debug
log-output = stderr
state-directory = {state}
control-socket = {sock}
{gextra}
[module::Registrar]
reg-domains = {dom}
group-addresses = sip:{grp}@{dom}
static-records-file =
min-expires = {mine}
max-expires = 3600

[module::Authentication]
enabled = true
auth-domains = {dom}
file-path = {users}
available-algorithms = {algs}
nonce-expires = 3600

[module::Router]
call-fork-timeout = {fto}

[module::MediaRelay]
enabled = {relay}
sdp-address = {ip}
port-range = {rlo}-{rhi}
{relay_extra}""".format(ip=LOCAL, p=p, state=self.state_dir, sock=self.socket, dom=DOMAIN, grp=GROUP,
           gextra=self.global_extra,
           users=users_path, fto=self.fork_timeout, mine=self.min_expires,
           rlo=self.ports.relay_first, rhi=self.ports.relay_first + 99,
           relay_extra=self.relay_extra, algs=self.algorithms,
           relay="true" if self.relay_enabled else "false")
        return self.write("proxy.ini", cfg)

    # ---- proxy -----------------------------------------------------------
    def start_proxy(self):
        cfg = self.write_config()
        self.proxy_starts += 1
        with open(self.proxy_log, "ab") as f:
            f.write(("==== harness: proxy start #%d ====\n" % self.proxy_starts).encode())
        argv = [self.args.proxy, "--config", cfg]
        log("start: %s" % " ".join(argv))
        # One log across restarts.
        proc = Proc("proxy", argv, self.proxy_log, self.dir, append=True)
        self.proxy = proc
        self.procs.append(proc)
        deadline = time.time() + 10
        last = ""
        while time.time() < deadline:
            if not proc.running():
                raise TestFailure("portier-proxy exited at start with %s" % proc.popen.returncode)
            if port_bound(self.ports.proxy, "udp"):
                r = self.ctl_raw("ping")
                last = r
                if r is not None and r[0] == 0:
                    try:
                        if json.loads(r[1]).get("ok") is True:
                            log("proxy up (pid %d)" % proc.pid)
                            return proc
                    except ValueError:
                        pass
            time.sleep(0.1)
        raise TestFailure("portier-proxy not ready after 10s (last ping: %r)" % (last,))

    def proxy_log_text(self):
        try:
            with open(self.proxy_log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop_proxy(self, expect_clean=True):
        proc = self.proxy
        log("SIGTERM to proxy pid %d" % proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        rc = proc.wait(10)
        if rc is None:
            proc.stop(signal.SIGKILL)
            raise TestFailure("portier-proxy did not exit within 10s of SIGTERM")
        proc.out.close()
        if expect_clean:
            check(rc == 0, "portier-proxy exited with %s after SIGTERM (expected 0)" % rc)
        return rc

    def proxy_alive(self):
        return self.proxy is not None and self.proxy.running()

    # ---- portier-door ----------------------------------------------------
    @property
    def door_socket(self):
        return os.path.join(self.dir, "door.sock")

    def start_door(self, video_codec="h264", auto_answer="", extra="", bind_params=";transport=udp",
                   account_extra=""):
        """Starts portier-door registered as door@home.example through our
        proxy (test pattern, no sound card) and waits for its registration."""
        check(self.args.door, "this case needs --door")
        media_first = 60000 + (self.ports.base - 21000) % 5000
        cfg = """[global]
log-level = debug
control-socket = {sock}

[account]
aor = sip:door@{dom}
password = {pw}
proxy = sip:{ip}:{proxy};transport=udp
bind = sip:{ip}:{bind}{bind_params}
register-expires = 600
{account_extra}

[call]
target = sip:{grp}@{dom}
ring-timeout = 30
auto-answer = {auto}

[events]
dir = {events}

[media]
address = {ip}
port-range = {mlo}-{mhi}
video-codec = {codec}
width = 320
height = 240
framerate = 15
keyframe-interval = 2
camera = none
audio-source = none
audio-sink = none
{extra}
""".format(sock=self.door_socket, dom=DOMAIN, pw=USERS["door"], ip=LOCAL, proxy=self.ports.proxy,
           bind=self.ports.sip(8), grp=GROUP, auto=auto_answer, mlo=media_first,
           mhi=media_first + 9, codec=video_codec, extra=extra, bind_params=bind_params,
           account_extra=account_extra,
           events=os.path.join(self.dir, "door-events"))
        path = self.write("door.conf", cfg)
        self.door_log = os.path.join(self.dir, "door.log")
        proc = Proc("door", [self.args.door, "--config", path], self.door_log, self.dir)
        self.procs.append(proc)
        self.door_proc = proc
        deadline = time.time() + 15
        while time.time() < deadline:
            check(proc.running(), "portier-door exited at start: %s" % self.door_log_text()[-2000:])
            st = self.door_ctl_raw("status")
            if st and st.get("registered"):
                log("door registered (pid %d)" % proc.pid)
                return proc
            time.sleep(0.1)
        raise TestFailure("portier-door did not register within 15 s: %s"
                          % self.door_log_text()[-2000:])

    def door_log_text(self):
        try:
            with open(self.door_log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    def door_ctl_raw(self, *cmd):
        try:
            r = subprocess.run([self.args.ctl, "--socket", self.door_socket] + list(cmd),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
            return json.loads(r.stdout) if r.returncode == 0 else None
        except (subprocess.TimeoutExpired, OSError, ValueError):
            return None

    def door_ctl(self, *cmd):
        r = self.door_ctl_raw(*cmd)
        check(r is not None, "portierctl --socket door.sock %s failed" % " ".join(cmd))
        return r

    def door_events(self, kind=None):
        evs = self.door_ctl("events")
        return [e for e in evs if kind is None or e.get("event") == kind]

    def wait_door_event(self, kind, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            evs = self.door_events(kind)
            if evs:
                return evs
            time.sleep(0.1)
        raise TestFailure("the door never reported %s; events: %s"
                          % (kind, json.dumps(self.door_events())[-1500:]))

    def door_actions(self, at_least, timeout=5):
        """The details of the door's action events once there are at least
        `at_least` of them (or the timeout is over: the caller checks them)."""
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.door_events("action")) < at_least:
            time.sleep(0.1)
        return [e["details"] for e in self.door_events("action")]

    def send_code_message(self, name, slot, rows):
        """sipp sends the door a MESSAGE with a code per row [user, password,
        domain, code] through the proxy (RFC 3428, digest on), and must succeed."""
        s = self.sipp(name, "message_code.xml", slot, rows, service="door",
                      auth_uri="door@%s" % DOMAIN)
        s.wait()
        s.expect_ok()

    # ---- portier-monitor -------------------------------------------------
    def start_monitor(self, name, user, slot, index, extra="", wait_registered=True,
                      trusted="", environ=None, account_extra=""):
        """Starts portier-monitor `name` registered as user@home.example through
        our proxy (headless, test tone as microphone, no speaker). Its RTP
        ports are 20 of the case's own, after the door's (index 0 or 1)."""
        check(self.args.monitor, "this case needs --monitor")
        media_first = 60000 + (self.ports.base - 21000) % 5000 + 20 + 20 * index
        cfg = """[global]
log-level = debug
control-socket = {sock}
events-file = {events}

[account]
aor = sip:{user}@{dom}
password = {pw}
proxy = sip:{ip}:{proxy};transport=udp
bind = sip:{ip}:{bind};transport=udp
register-expires = 600
trusted-hosts = {trusted}
{account_extra}

[media]
address = {ip}
port-range = {mlo}-{mhi}
microphone = test
speaker = none

[actions]
method = dtmf
open-door = {code}

[doors]
front = sip:door@{dom}
{extra}
""".format(sock=self.monitor_socket(name), events=self.monitor_events_file(name), user=user,
           dom=DOMAIN, pw=USERS[user], ip=LOCAL, proxy=self.ports.proxy, bind=self.ports.sip(slot),
           mlo=media_first, mhi=media_first + 19, code=DOOR_CODE, extra=extra, trusted=trusted,
           account_extra=account_extra)
        path = self.write(name + ".conf", cfg)
        out = os.path.join(self.dir, name + ".log")
        proc = Proc(name, [self.args.monitor, "--config", path], out, self.dir, env=environ)
        self.procs.append(proc)
        self.monitors[name] = proc
        deadline = time.time() + 15
        while time.time() < deadline:
            check(proc.running(), "portier-monitor %s exited at start: %s"
                  % (name, self.monitor_log_text(name)[-2000:]))
            st = self.mon_ctl_raw(name, "status")
            if st and (st.get("registered") or not wait_registered):
                log("%s %s as %s (pid %d)" % (name, "registered" if st.get("registered")
                                               else "started", user, proc.pid))
                return proc
            time.sleep(0.1)
        raise TestFailure("portier-monitor %s did not register within 15 s: %s"
                          % (name, self.monitor_log_text(name)[-2000:]))

    def monitor_socket(self, name):
        return os.path.join(self.dir, name + ".sock")

    def monitor_events_file(self, name):
        return os.path.join(self.dir, name + "-events.jsonl")

    def monitor_log_text(self, name):
        try:
            with open(os.path.join(self.dir, name + ".log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def mon_ctl_raw(self, name, *cmd):
        """The monitor's JSON reply (also for refusals, where portierctl exits 1)."""
        try:
            r = subprocess.run([self.args.ctl, "--socket", self.monitor_socket(name)] + list(cmd),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
            return json.loads(r.stdout) if r.returncode in (0, 1) else None
        except (subprocess.TimeoutExpired, OSError, ValueError):
            return None

    def mon_ctl(self, name, *cmd):
        r = self.mon_ctl_raw(name, *cmd)
        check(r is not None, "portierctl --socket %s.sock %s failed" % (name, " ".join(cmd)))
        return r

    def wait_monitor(self, name, pred, what, timeout=10):
        deadline = time.time() + timeout
        st = None
        while time.time() < deadline:
            st = self.mon_ctl(name, "status")
            if pred(st):
                return st
            time.sleep(0.1)
        raise TestFailure("%s: %s not reached within %ds; status %s"
                          % (name, what, timeout, json.dumps(st)))

    def monitor_events(self, name):
        """The monitor's events file, one JSON object per line."""
        try:
            with open(self.monitor_events_file(name)) as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    # ---- portierctl ------------------------------------------------------
    def ctl_raw(self, *cmd):
        try:
            r = subprocess.run([self.args.ctl, "--socket", self.socket] + list(cmd),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
        except subprocess.TimeoutExpired:
            return None
        except OSError as e:  # e.g. the binary is being rebuilt right now
            return (127, "", "cannot run %s: %s" % (self.args.ctl, e))
        return (r.returncode, r.stdout.decode("utf-8", "replace"),
                r.stderr.decode("utf-8", "replace"))

    def ctl(self, *cmd):
        r = self.ctl_raw(*cmd)
        check(r is not None, "portierctl %s timed out" % " ".join(cmd))
        check(r[0] == 0, "portierctl %s exited %d: %s %s" % (" ".join(cmd), r[0], r[1], r[2]))
        try:
            return json.loads(r[1])
        except ValueError:
            raise TestFailure("portierctl %s printed no JSON: %r" % (" ".join(cmd), r[1]))

    def registrations(self):
        regs = self.ctl("registrations").get("registrations")
        check(isinstance(regs, list), "portierctl registrations: no list")
        return regs

    def bindings_for(self, user):
        aor = "sip:%s@%s" % (user, DOMAIN)
        return [r for r in self.registrations() if r.get("aor") == aor]

    def calls(self):
        calls = self.ctl("calls").get("calls")
        check(isinstance(calls, list), "portierctl calls: no list")
        return calls

    # ---- sipp ------------------------------------------------------------
    def sipp(self, name, scenario, slot, fields, *, remote=True, service=None,
             auth_uri=None, call_id=None, transport="u1", timeout=20, extra=(), to=None):
        """Start sipp (does not wait). fields: list of rows for -inf. to:
        "host:port" to send to instead of the proxy."""
        csv = self.write(name + ".csv", "SEQUENTIAL\n" + "".join(
            ";".join(str(x) for x in row) + ";\n" for row in fields))
        sipp = Sipp(self, name, None, timeout, scenario)
        argv = [self.args.sipp, "-sf", os.path.join(SCENARIOS, scenario)]
        if to:
            argv.append(to)
        elif remote:
            argv.append("%s:%d" % (LOCAL, self.ports.proxy))
        argv += ["-i", LOCAL, "-p", str(self.ports.sip(slot)), "-t", transport,
                 "-m", str(len(fields) if remote else 1),
                 "-timeout", "%ds" % timeout, "-timeout_error",
                 "-nostdin", "-cp", str(self.ports.control(slot)),
                 "-mp", str(self.ports.media(slot)),
                 "-inf", csv,
                 "-trace_msg", "-message_file", sipp.msg_log,
                 "-trace_err", "-error_file", sipp.err_log]
        if service:
            argv += ["-s", service]
        if auth_uri:
            argv += ["-auth_uri", auth_uri]
        if call_id:
            argv += ["-cid_str", call_id]
        argv += list(extra)
        if self.args.verbose:
            log("start: %s" % " ".join(argv))
        sipp.proc = Proc(name, argv, sipp.out_log, self.dir)
        self.procs.append(sipp.proc)
        self.sipps.append(sipp)
        return sipp

    def uas(self, name, scenario, slot, timeout=30, fields=None, auth_uri=None):
        s = self.sipp(name, scenario, slot, fields or [["x"]], remote=False, timeout=timeout,
                      auth_uri=auth_uri)
        deadline = time.time() + 5
        while time.time() < deadline:
            if port_bound(self.ports.sip(slot), "udp"):
                return s
            if not s.proc.running():
                break
            time.sleep(0.05)
        s.wait()
        raise TestFailure("sipp %s did not bind port %d" % (name, self.ports.sip(slot)))

    def register(self, user, slot, expires=3600, password=None, scenario="register.xml",
                 name=None):
        """REGISTER user with Contact 127.0.0.1:<slot port>; waits. The Call-ID is
        the same for every run of one device, the CSeq grows (RFC 3261 10.2)."""
        port = self.ports.sip(slot)
        key = (user, port)
        c = self.cseq.get(key, 0)
        self.cseq[key] = c + 2
        name = name or "reg_%s_%d_%d" % (user, expires, c // 2)
        s = self.sipp(name, scenario, slot,
                      [[user, password if password is not None else USERS.get(user, "x"),
                        expires, c + 1, c + 2]],
                      auth_uri=DOMAIN, call_id="reg-%s-%d@%s" % (user, port, LOCAL), timeout=10)
        s.wait()
        return s

    def door(self, name, scenario, target, slot, domain=DOMAIN, timeout=30, user="door"):
        return self.sipp(name, scenario, slot, [[user, USERS[user], domain]], service=target,
                         auth_uri="%s@%s" % (target, domain), timeout=timeout)

    # ---- reporting -------------------------------------------------------
    def dump_sipp(self, s):
        sys.stdout.write("\n---- sipp %s (%s) rc=%s ----\n" % (s.name, s.scenario, s.rc))
        for path, n in ((s.err_log, 80), (s.out_log, 25)):
            if os.path.exists(path) and os.path.getsize(path):
                sys.stdout.write("-- %s --\n%s\n" % (os.path.basename(path), tail(path, n)))
        sys.stdout.write("-- last messages (%s) --\n" % os.path.basename(s.msg_log))
        for m in s.messages()[-6:]:
            sys.stdout.write(">> %s %s: %s\n" % (m.stamp, m.direction, m.first))
        sys.stdout.flush()

    def dump_failure(self):
        sys.stdout.write("\n======== proxy log tail (%s) ========\n" % self.proxy_log)
        text = self.proxy_log_text().splitlines()
        sys.stdout.write("\n".join(text[-80:]) + "\n")
        for s in self.sipps:
            bad = s.rc not in (0, None) or (os.path.exists(s.err_log) and
                                           os.path.getsize(s.err_log))
            if bad:
                self.dump_sipp(s)
        sys.stdout.flush()

    def cleanup(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:  # keep going: every process must be stopped
                log("stopping %s: %s" % (p.name, e))

    def assert_no_secrets(self):
        text = self.proxy_log_text()
        leaked = [p for p in list(USERS.values()) + [WRONG_PASSWORD] if p in text]
        check(not leaked, "password(s) %s appear in the proxy log" % leaked)

    def wait_relay_free(self, within=5.0):
        """Every relay port is freed once the calls are over (portierctl relay)."""
        deadline = time.time() + within
        relay = None
        while time.time() < deadline:
            relay = self.ctl("relay")
            if relay.get("ports_in_use") == 0 and not relay.get("calls"):
                return
            time.sleep(0.2)
        raise TestFailure("relay ports still in use %.0fs after the call: %s"
                          % (within, json.dumps(relay)))

    def wait_no_calls(self, within=5.0):
        deadline = time.time() + within
        calls = None
        while time.time() < deadline:
            calls = self.calls()
            if not calls:
                return
            time.sleep(0.2)
        raise TestFailure("portierctl calls still lists %d call(s) %.0fs after the call ended: %s"
                          % (len(calls), within, json.dumps(calls)[:500]))


# --------------------------------------------------------------------------
# Helpers for checks
# --------------------------------------------------------------------------

def contact_hostport(contact):
    m = re.search(r"sips?:(?:([^@;>]+)@)?([^;>:]+)(?::(\d+))?", contact or "")
    if not m:
        return None, None, None
    return m.group(1), m.group(2), int(m.group(3)) if m.group(3) else 5060


def has_binding(regs, user, port):
    for r in regs:
        u, h, p = contact_hostport(r.get("contact"))
        if h == LOCAL and p == port:
            return r
    return None


def final_response(sipp, method="INVITE"):
    finals = sipp.received(lambda m: m.status and m.status >= 200 and m.cseq_method() == method)
    return finals[-1] if finals else None


def top_via_is_proxy(msg, env):
    vias = msg.hdrs("Via")
    if not vias:
        return False
    first = vias[0].split(",")[0]
    return ("%s:%d" % (LOCAL, env.ports.proxy)) in first


def register_devices(env, users_slots):
    for user, slot in users_slots:
        s = env.register(user, slot)
        s.expect_ok()
    regs = env.registrations()
    for user, slot in users_slots:
        check(has_binding([r for r in regs if r.get("aor") == "sip:%s@%s" % (user, DOMAIN)],
                          user, env.ports.sip(slot)),
              "%s: binding for port %d not listed after REGISTER: %s"
              % (user, env.ports.sip(slot), json.dumps(regs)))


def wait_all(sipps):
    for s in sipps:
        s.wait()
    for s in sipps:
        s.expect_ok()


def _branch(msg):
    vias = msg.hdrs("Via")
    m = re.search(r";\s*branch=([^;,\s]+)", vias[0]) if vias else None
    return m.group(1) if m else None


def assert_cancel_matches_invite(devices):
    """RFC 3261 section 9.1: a CANCEL has the Request-URI, Call-ID, CSeq number
    and top Via branch of the request it cancels (section 16.10: the proxy
    builds it that way for each pending branch)."""
    for d in devices:
        invs = d.received(lambda m: m.method == "INVITE")
        cans = d.received(lambda m: m.method == "CANCEL")
        check(invs and cans, "%s: expected an INVITE and a CANCEL" % d.name)
        inv, can = invs[0], cans[0]
        check(inv.first.split()[1] == can.first.split()[1],
              "%s: CANCEL Request-URI %s != INVITE's %s" % (d.name, can.first, inv.first))
        check(_branch(inv) == _branch(can), "%s: CANCEL branch %s != INVITE branch %s"
              % (d.name, _branch(can), _branch(inv)))
        check((can.hdr("CSeq") or "").split()[0] == (inv.hdr("CSeq") or "").split()[0],
              "%s: CANCEL CSeq %s does not match INVITE CSeq %s"
              % (d.name, can.hdr("CSeq"), inv.hdr("CSeq")))
        check(can.hdr("Call-ID") == inv.hdr("Call-ID"), "%s: CANCEL Call-ID differs" % d.name)


def assert_no_cause200(env, devices):
    for d in devices:
        for c in d.received(lambda m: m.method == "CANCEL"):
            reason = " ".join(c.hdrs("Reason"))
            check("cause=200" not in reason.replace(" ", ""),
                  "%s: CANCEL carries %r, but no device answered (RFC 3326: cause=200 "
                  "means 'completed elsewhere')" % (d.name, reason))


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

def case_register_auth(env):
    """RFC 3261 section 10 + 22: REGISTER, 401, REGISTER with MD5 credentials,
    200; the binding is listed; REGISTER Expires: 0 removes it (10.2.2)."""
    env.start_proxy()
    port = env.ports.sip(0)
    s = env.register("alice", 0, 3600)
    s.expect_ok()
    ok = s.received(lambda m: m.status == 200)[-1]
    check(any(contact_hostport(c)[2] == port for c in ok.hdrs("Contact")),
          "200 to REGISTER does not list the new binding (RFC 3261 10.3 step 8): Contact=%s"
          % ok.hdrs("Contact"))
    regs = env.bindings_for("alice")
    b = has_binding(regs, "alice", port)
    check(b, "registrations does not list alice's contact port %d: %s" % (port, regs))
    log("listed: %s" % json.dumps(b))
    check(isinstance(b.get("expires"), (int, float)) and 3500 < b["expires"] <= 3600,
          "expires %r not within (3500, 3600]" % b.get("expires"))

    # Replay the accepted REGISTER as is (same nonce, same nc, same response;
    # new branch and CSeq): it must be challenged again, not accepted
    # (RFC 7616 section 3.4 nonce-count, section 5 replay attacks).
    sent = [m for m in s.messages() if m.direction == "sent" and m.method == "REGISTER"][-1]
    check(sent.hdr("Authorization"), "the second REGISTER carries no Authorization")
    text = re.sub(r"branch=[^\s;,]+", "branch=z9hG4bK-replay-1", sent.text)
    text = re.sub(r"(?m)^CSeq: *\d+", "CSeq: 1000", text)
    head, _, body = text.partition("\n\n")
    replies = udp_exchange(env.ports.proxy,
                           (head.replace("\n", "\r\n") + "\r\n\r\n" + body).encode(),
                           wait=0.7, src_port=port)
    firsts = [r.split(b"\r\n", 1)[0].decode("latin-1", "replace") for r in replies]
    log("replayed REGISTER -> %s" % (firsts or "(no reply)"))
    check(firsts and firsts[0].startswith("SIP/2.0 401"),
          "replayed REGISTER (same nonce and nc) answered %s, expected 401" % (firsts or "nothing"))
    env.cseq[("alice", port)] = 1000

    s = env.register("alice", 0, 0)
    s.expect_ok()
    ok = s.received(lambda m: m.status == 200)[-1]
    check(not any(contact_hostport(c)[2] == port for c in ok.hdrs("Contact")),
          "200 to REGISTER Expires: 0 still lists the binding: %s" % ok.hdrs("Contact"))
    regs = env.bindings_for("alice")
    check(not has_binding(regs, "alice", port),
          "alice's binding still listed after Expires: 0: %s" % regs)
    env.assert_no_secrets()


def case_register_expires_limits(env):
    """min-expires / max-expires and wildcard removal: Expires below the
    minimum gets 423 with Min-Expires (RFC 3261 section 10.3 step 7); above the
    maximum is shortened; Contact: * with Expires: 0 removes every binding of
    the AOR (section 10.2.2, 10.3 step 6)."""
    env.start_proxy()
    s = env.register("alice", 0, 30, scenario="register_too_brief.xml")
    s.expect_ok()
    r423 = s.received(lambda m: m.status == 423)[-1]
    log("Expires: 30 -> %s, Min-Expires: %s" % (r423.first, r423.hdr("Min-Expires")))
    check(r423.hdr("Min-Expires") == "60",
          "423 carries Min-Expires %r, expected 60 (RFC 3261 section 20.23)"
          % r423.hdr("Min-Expires"))
    check(not env.bindings_for("alice"), "a binding was created with Expires: 30")

    s = env.register("alice", 0, 7200)
    s.expect_ok()
    b = has_binding(env.bindings_for("alice"), "alice", env.ports.sip(0))
    check(b, "no binding after REGISTER Expires: 7200")
    log("Expires: 7200 -> listed expires %s" % b.get("expires"))
    check(isinstance(b.get("expires"), (int, float)) and 3500 < b["expires"] <= 3600,
          "Expires: 7200 gave a binding of %r s, expected at most max-expires 3600"
          % b.get("expires"))
    ok = s.received(lambda m: m.status == 200)[-1]
    for c in ok.hdrs("Contact"):
        m = re.search(r"expires\s*=\s*(\d+)", c, re.I)
        if m and contact_hostport(c)[2] == env.ports.sip(0):
            check(int(m.group(1)) <= 3600, "200 lists expires=%s > 3600" % m.group(1))

    s = env.register("alice", 1, 3600)
    s.expect_ok()
    check(len(env.bindings_for("alice")) == 2, "expected two bindings for alice: %s"
          % env.bindings_for("alice"))
    s = env.register("alice", 0, 0, scenario="register_wildcard.xml")
    s.expect_ok()
    left = env.bindings_for("alice")
    check(not left, "Contact: * Expires: 0 left bindings: %s" % left)
    env.assert_no_secrets()


def _auth_failure_lines(env):
    return [l for l in env.proxy_log_text().splitlines() if "auth failure" in l]


def _wait_auth_failure_lines(env, n, within=2.0):
    deadline = time.time() + within
    while True:
        lines = _auth_failure_lines(env)
        if len(lines) >= n or time.time() > deadline:
            return lines
        time.sleep(0.1)


def case_register_wrong_password(env):
    """Wrong password: a fresh 401 (scenario), no binding, one auth-failure log
    line naming the source address."""
    env.start_proxy()
    s = env.register("alice", 0, 3600, password=WRONG_PASSWORD, scenario="register_badauth.xml")
    s.expect_ok()
    check(not env.bindings_for("alice"), "a binding was created with a wrong password")
    check(not env.registrations(), "registrations not empty: %s" % env.registrations())
    lines = _wait_auth_failure_lines(env, 1)
    good = [l for l in lines if "src=%s" % LOCAL in l]
    check(len(lines) == 1 and len(good) == 1,
          "expected exactly one 'auth failure' line with src=%s in the proxy log, got %d:\n%s"
          % (LOCAL, len(lines), "\n".join(lines)))
    log("auth failure line: %s" % good[0].strip())
    env.assert_no_secrets()


_NONCE = re.compile(r'(nonce\s*=\s*)"[^"]*"', re.I)


def _challenge_shape(msg):
    """Status line + header names + normalized WWW-Authenticate values."""
    names = [n.lower() for n, _ in msg.headers]
    www = [_NONCE.sub(r'\1"<nonce>"', v) for v in msg.hdrs("WWW-Authenticate")]
    return {"status": "%s %s" % (msg.status, msg.reason), "headers": names, "www": www}


def case_register_unknown_user(env):
    """Unknown user: same as a wrong password, and the challenges for an
    unknown and a known user have the same shape (no user enumeration)."""
    env.start_proxy()
    unknown = env.register("mallory", 0, 3600, password=WRONG_PASSWORD,
                           scenario="register_badauth.xml")
    unknown.expect_ok()
    check(not env.registrations(), "registrations not empty: %s" % env.registrations())
    lines = _wait_auth_failure_lines(env, 1)
    good = [l for l in lines if "src=%s" % LOCAL in l]
    check(len(lines) == 1 and len(good) == 1,
          "expected exactly one 'auth failure' line with src=%s after the unknown user, got %d:\n%s"
          % (LOCAL, len(lines), "\n".join(lines)))
    log("auth failure line: %s" % good[0].strip())

    known = env.register("alice", 1, 3600, password=WRONG_PASSWORD,
                         scenario="register_badauth.xml")
    known.expect_ok()
    check(not env.registrations(), "registrations not empty: %s" % env.registrations())

    u401 = unknown.received(lambda m: m.status == 401)
    k401 = known.received(lambda m: m.status == 401)
    check(len(u401) >= 2 and len(k401) >= 2, "expected two 401 in each run")
    for what, u, k in (("first 401", u401[0], k401[0]), ("401 after credentials", u401[-1], k401[-1])):
        su, sk = _challenge_shape(u), _challenge_shape(k)
        log("%s, unknown user: %s" % (what, json.dumps(su["www"])))
        log("%s, known user:   %s" % (what, json.dumps(sk["www"])))
        check(su["www"], "%s has no WWW-Authenticate" % what)
        check(su == sk, "%s differs between unknown and known user:\n unknown: %s\n known:   %s"
              % (what, json.dumps(su), json.dumps(sk)))
    algos = [re.search(r"algorithm\s*=\s*\"?([\w-]+)", v, re.I) for v in su["www"]]
    algos = [a.group(1).upper() for a in algos if a]
    check("MD5" in algos, "no MD5 challenge in %s" % su["www"])
    env.assert_no_secrets()


def case_fork_three_early_media(env):
    """Group address fork to three devices with early media (183 recvonly);
    mon1 answers; mon2/mon3 get CANCEL with Reason cause=200 (RFC 3326);
    ACK/BYE go through the proxy (Record-Route); the caller's own AOR is not
    forked to."""
    env.start_proxy()
    register_devices(env, [("mon1", 0), ("mon2", 1), ("mon3", 2), ("door", 3)])
    # The door's registered contact (slot 3) is a plain socket: nothing may arrive
    # there (group fork excludes the caller's AOR).
    sentinel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sentinel.bind((LOCAL, env.ports.sip(3)))
    sentinel.setblocking(False)
    try:
        mon1 = env.uas("mon1", "uas_early_answer.xml", 0)
        mon2 = env.uas("mon2", "uas_early_cancelled.xml", 1)
        mon3 = env.uas("mon3", "uas_early_cancelled.xml", 2)
        door = env.door("door", "door_call.xml", GROUP, 4)
        wait_all([door, mon1, mon2, mon3])
        leaked = _drain(sentinel)
    finally:
        sentinel.close()
    check(not leaked, "the caller's own AOR (door) got forked to: %r" % leaked)

    e183 = door.received(lambda m: m.status == 183)
    check(e183, "door got no 183: early media did not reach the caller")
    check(any("m=video" in m.body for m in e183), "door's 183 has no SDP with video")
    ok = door.received(lambda m: m.status == 200 and m.cseq_method() == "INVITE")[0]
    rr = " ".join(ok.hdrs("Record-Route"))
    check("%s:%d" % (LOCAL, env.ports.proxy) in rr or LOCAL in rr,
          "200 at the door has no Record-Route of the proxy: %r" % rr)
    for d in (mon1, mon2, mon3):
        inv = d.received(lambda m: m.method == "INVITE")[0]
        # RFC 3261 section 16.6 step 3 (Max-Forwards decremented), step 4
        # (Record-Route added), step 8 (the proxy's Via on top).
        check(inv.hdr("Max-Forwards") == "69", "%s: forwarded INVITE has Max-Forwards %r, "
              "expected 69" % (d.name, inv.hdr("Max-Forwards")))
        check(any(str(env.ports.proxy) in v for v in inv.hdrs("Record-Route")),
              "%s: forwarded INVITE has no Record-Route of the proxy: %s"
              % (d.name, inv.hdrs("Record-Route")))
        check(top_via_is_proxy(inv, env), "%s: top Via is not the proxy's: %s"
              % (d.name, inv.hdrs("Via")))
    for m in mon1.received(lambda m: m.method in ("ACK", "BYE")):
        check(top_via_is_proxy(m, env), "mon1 got %s not through the proxy: Via %s"
              % (m.method, m.hdrs("Via")))
        # RFC 3261 section 16.4: the proxy removes the Route entry naming itself.
        check(not any(str(env.ports.proxy) in r for r in m.hdrs("Route")),
              "mon1 got %s with the proxy's own Route still in it: %s"
              % (m.method, m.hdrs("Route")))
    check(len(mon1.received(lambda m: m.method in ("ACK", "BYE"))) >= 2,
          "mon1 did not get both ACK and BYE")
    check(not mon1.received(lambda m: m.method == "CANCEL"), "mon1 (the answering device) got a CANCEL")
    assert_cancel_matches_invite([mon2, mon3])
    for d in (mon2, mon3):
        cancels = d.received(lambda m: m.method == "CANCEL")
        check(cancels, "%s got no CANCEL" % d.name)
        reason = cancels[0].hdr("Reason") or ""
        log("%s CANCEL Reason: %s" % (d.name, reason))
        check('text="Call completed elsewhere"' in reason,
              "%s: Reason %r lacks text=\"Call completed elsewhere\"" % (d.name, reason))
    env.wait_no_calls()
    env.assert_no_secrets()


def case_caller_cancel(env):
    """RFC 3261 section 16.10: the caller's CANCEL cancels every branch; the
    caller gets 200 (CANCEL) and 487 (INVITE)."""
    env.start_proxy()
    devs = [("mon1", 0), ("mon2", 1), ("mon3", 2)]
    register_devices(env, devs)
    uas = [env.uas(u, "uas_ring_cancelled.xml", slot) for u, slot in devs]
    door = env.door("door", "door_cancel.xml", GROUP, 4)
    wait_all([door] + uas)
    fin = final_response(door)
    check(fin and fin.status == 487, "door: final response %s (expected 487)"
          % (fin.first if fin else None))
    assert_no_cause200(env, uas)
    assert_cancel_matches_invite(uas)
    env.wait_no_calls()
    env.assert_no_secrets()


def case_all_busy(env):
    """RFC 3261 section 16.7 step 6: every branch 486 -> 486 upstream."""
    env.start_proxy()
    devs = [("mon1", 0), ("mon2", 1)]
    register_devices(env, devs)
    uas = [env.uas(u, "uas_busy.xml", slot) for u, slot in devs]
    door = env.door("door", "door_reject.xml", GROUP, 4)
    wait_all([door] + uas)
    fin = final_response(door)
    log("door final response: %s" % (fin.first if fin else None))
    check(fin and fin.status == 486, "door: final response %s (expected 486 Busy Here)"
          % (fin.first if fin else None))
    env.wait_no_calls()
    env.assert_no_secrets()


def case_fork_timeout(env):
    """call-fork-timeout = 3: unanswered branches are CANCELled and the caller
    gets 408 after about 3 s."""
    env.fork_timeout = 3
    env.start_proxy()
    devs = [("mon1", 0), ("mon2", 1)]
    register_devices(env, devs)
    uas = [env.uas(u, "uas_ring_cancelled.xml", slot) for u, slot in devs]
    door = env.door("door", "door_reject.xml", GROUP, 4)
    time.sleep(1.5)
    calls = env.calls()
    log("calls while ringing: %s" % json.dumps(calls)[:300])
    check(len(calls) >= 1, "portierctl calls lists no call while the devices ring")
    wait_all([door] + uas)
    fin = final_response(door)
    log("door final response: %s" % (fin.first if fin else None))
    check(fin and fin.status == 408, "door: final response %s (expected 408)"
          % (fin.first if fin else None))
    invites = [m for m in door.messages() if m.direction == "sent" and m.method == "INVITE"]
    elapsed = fin.ts() - invites[-1].ts()
    log("408 came %.2fs after the authenticated INVITE" % elapsed)
    check(2.5 <= elapsed <= 6.0, "408 after %.2fs, expected about 3s (call-fork-timeout)" % elapsed)
    assert_no_cause200(env, uas)
    assert_cancel_matches_invite(uas)
    env.wait_no_calls()
    env.assert_no_secrets()


def case_restart_persistence(env):
    """Bindings survive a restart (state-directory): register, SIGTERM, start
    again, call the device."""
    env.start_proxy()
    register_devices(env, [("mon1", 0)])
    mon1 = env.uas("mon1", "uas_early_answer.xml", 0, timeout=40)
    before = has_binding(env.bindings_for("mon1"), "mon1", env.ports.sip(0))
    # Let the clock run, so that a restart that re-arms the full Expires (a
    # relative time stored instead of an absolute one) shows.
    time.sleep(2.5)
    env.stop_proxy(expect_clean=True)
    env.start_proxy()
    b = has_binding(env.bindings_for("mon1"), "mon1", env.ports.sip(0))
    check(b, "mon1's binding is gone after restart: %s" % env.registrations())
    log("before restart: %s" % json.dumps(before))
    log("after restart:  %s" % json.dumps(b))
    check(b.get("expires", 0) <= before.get("expires", 0) - 2,
          "expires went from %s to %s across a restart 2.5 s later: the binding's lifetime "
          "was re-armed" % (before.get("expires"), b.get("expires")))
    door = env.door("door", "door_call.xml", "mon1", 4)
    wait_all([door, mon1])
    env.wait_no_calls()
    env.assert_no_secrets()


def _drain(sock):
    """What a non-blocking sentinel socket received (first 80 bytes of each
    datagram): anything at all means the proxy sent where it must not."""
    got = []
    while True:
        try:
            got.append(sock.recv(65535)[:80])
        except BlockingIOError:
            return got


def case_malformed(env):
    """Garbage and malformed SIP must not kill the proxy; parsable-enough bad
    requests get 400 (RFC 3261 section 8.2 / 16.3 step 1; section 18.3 for a
    Content-Length larger than the datagram) or 505 (section 21.5.7); the
    other probes only print what came back."""
    env.start_proxy()
    p = env.ports.proxy
    proxy_uri = "sip:%s:%d" % (LOCAL, p)
    cases = [
        # name, payload, expected status (None: no assertion; responses printed)
        ("random bytes", bytes(range(256)) * 4, None),
        ("text garbage", b"hello proxy\r\n\r\n", None),
        ("bad request line", b"INVITE\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK1\r\n\r\n", None),
        ("no Via", _req("OPTIONS", proxy_uri, env, via=False), None),
        ("huge Content-Length", _req("OPTIONS", proxy_uri, env, cl=99999999, body="v=0\r\n"), 400),
        ("bad Max-Forwards (OPTIONS)", _req("OPTIONS", proxy_uri, env, mf="lots"), None),
        ("Max-Forwards 0 (INVITE)", _req("INVITE", "sip:mon1@%s" % DOMAIN, env, mf="0"), None),
        ("negative Content-Length", _req("OPTIONS", proxy_uri, env, cl=-5), 400),
        ("bad CSeq", _req("OPTIONS", proxy_uri, env, cseq="one OPTIONS"), 400),
        ("NUL bytes in header", _req("OPTIONS", proxy_uri, env,
                                     extra="Subject: a\x00b\x00\x00c"), 400),
        ("NUL bytes in start line", b"OPT\x00IONS sip:x SIP/2.0\r\n\r\n", None),
        # RFC 3261 section 21.5.7
        ("SIP/3.0", (lambda port: _req("OPTIONS", proxy_uri, env)(port).replace(
            b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)), 505),
        ("stray response", b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bKx\r\n"
                           b"Call-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", None),
        ("very long header", _req("OPTIONS", proxy_uri, env, extra="X-Long: " + "a" * 60000),
         None),
        ("many Via", _req("OPTIONS", proxy_uri, env, extra="\r\n".join(
            "Via: SIP/2.0/UDP 10.0.0.%d:5060;branch=z9hG4bK%d" % (i % 250, i)
            for i in range(500))), None),
        ("INVITE no From tag / bad URI", _req("INVITE", "sip:@@@", env), None),
    ]
    failures = []
    # A burst of junk first: nothing to answer, the proxy must just survive it.
    junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(300):
            junk.sendto(os.urandom(1 + (i * 37) % 1400), (LOCAL, p))
    finally:
        junk.close()
    time.sleep(0.2)
    check(env.proxy_alive(), "portier-proxy died after a burst of random datagrams")
    for name, payload, expect in cases:
        replies = udp_exchange(env.ports.proxy, payload, wait=0.7)
        firsts = [r.split(b"\r\n", 1)[0].decode("latin-1", "replace") for r in replies]
        log("%-28s -> %s" % (name, firsts or "(no reply)"))
        check(env.proxy_alive(), "portier-proxy died after %r (rc %s)"
              % (name, env.proxy.popen.returncode))
        if expect is not None:
            codes = [int(f.split()[1]) for f in firsts if f.startswith("SIP/2.0 ")
                     and len(f.split()) > 1 and f.split()[1].isdigit()]
            if expect not in codes:
                failures.append("%s: expected %d, got %s" % (name, expect, firsts or "no reply"))

    # TCP: garbage, a message cut short, and a connection that just closes.
    for name, payload in (("tcp garbage", b"\x00\xff" * 512 + b"\r\n\r\n"),
                          ("tcp truncated", _req("OPTIONS", proxy_uri, env, cl=500)(0)),
                          ("tcp CRLF keepalive", b"\r\n\r\n")):
        t = socket.create_connection((LOCAL, p), timeout=2)
        try:
            t.sendall(payload)
            t.settimeout(0.5)
            try:
                data = t.recv(4096)
            except (socket.timeout, ConnectionResetError):
                data = b""
        finally:
            t.close()
        log("%-28s -> %r" % (name, data[:60]))
        check(env.proxy_alive(), "portier-proxy died after %r" % name)
        if name == "tcp CRLF keepalive":
            # RFC 5626 section 4.4.1: a double-CRLF ping on a connection gets a CRLF pong.
            check(data == b"\r\n", "TCP CRLFCRLF keep-alive got %r, expected a CRLF pong" % data)

    time.sleep(0.3)
    check(env.proxy_alive(), "portier-proxy died")
    s = env.sipp("options_after", "options.xml", 0, [["mon1"]], timeout=10)
    s.wait()
    s.expect_ok()
    check(env.proxy_alive(), "portier-proxy died")
    check(not failures, "malformed requests not answered 400:\n  " + "\n  ".join(failures))
    env.assert_no_secrets()


def case_loop_detection(env):
    """RFC 3261 section 16.3 steps 3 and 4: a request that already carries the
    proxy's own Via (it went round a loop) gets 482 Loop Detected, and one whose
    Max-Forwards reached 0 gets 483 Too Many Hops, before any challenge."""
    env.start_proxy()
    p = env.ports.proxy
    target = "sip:mon1@%s" % DOMAIN
    looped = _req("INVITE", target, env,
                  extra="Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-earlier-pass" % (LOCAL, p))
    for name, payload, want in (("our Via below the caller's", looped, 482),
                                ("Max-Forwards: 0", _req("INVITE", target, env, mf="0"), 483)):
        replies = udp_exchange(env.ports.proxy, payload, wait=0.7)
        firsts = [r.split(b"\r\n", 1)[0].decode("latin-1", "replace") for r in replies]
        log("%-28s -> %s" % (name, firsts or "(no reply)"))
        check(firsts and firsts[0].startswith("SIP/2.0 %d " % want),
              "%s: expected %d, got %s" % (name, want, firsts or "no reply"))
    check(env.proxy_alive(), "portier-proxy died")


def case_options_keepalive(env):
    """RFC 3261 section 11: OPTIONS to the proxy itself is answered 200, over
    UDP and TCP, without a challenge."""
    env.start_proxy()
    u = env.sipp("options_udp", "options.xml", 0, [["mon1"]], timeout=10)
    u.wait()
    u.expect_ok()
    t = env.sipp("options_tcp", "options.xml", 1, [["mon1"]], transport="t1", timeout=10)
    t.wait()
    t.expect_ok()
    for s in (u, t):
        ok = s.received(lambda m: m.status == 200)[0]
        log("%s: %s (Allow: %s)" % (s.name, ok.first, ok.hdr("Allow")))
    env.assert_no_secrets()


def case_foreign_domain(env):
    """An authenticated caller INVITEs sip:x@other.example: the proxy does not
    relay to other domains; it answers 403 or 404 with a reason phrase."""
    env.start_proxy()
    # Without credentials (raw UDP): any 4xx is fine (403/404 at once, or 407).
    replies = udp_exchange(env.ports.proxy, _req("INVITE", "sip:x@other.example", env), wait=0.7)
    firsts = [r.split(b"\r\n", 1)[0].decode("latin-1", "replace") for r in replies]
    log("unauthenticated INVITE sip:x@other.example -> %s" % (firsts or "(no reply)"))
    check(firsts and re.match(r"SIP/2\.0 4\d\d \S", firsts[0]),
          "unauthenticated INVITE to a foreign domain: %s (expected a 4xx)" % (firsts or "no reply"))
    # With credentials.
    door = env.sipp("door", "door_foreign.xml", 4,
                    [["door", USERS["door"], "other.example", "%s@%s" % (GROUP, DOMAIN)]],
                    service="x", auth_uri="x@other.example", timeout=15)
    door.wait()
    door.expect_ok()
    fin = final_response(door)
    log("authenticated INVITE sip:x@other.example -> %s" % (fin.first if fin else None))
    check(fin is not None, "no final response")
    check(fin.status in (403, 404), "expected 403 or 404, got %s" % fin.first)
    check(fin.reason and fin.reason.strip(), "empty reason phrase: %r" % fin.first)
    env.wait_no_calls()
    env.assert_no_secrets()



def _cseq(msg):
    parts = (msg.hdr("CSeq") or "").split()
    return (int(parts[0]) if parts and parts[0].isdigit() else None,
            parts[1] if len(parts) > 1 else None)


def _ruri(msg):
    parts = msg.first.split()
    return parts[1] if len(parts) > 1 else None


def _uri_in(value):
    m = re.search(r"<([^>]*)>", value or "")
    return m.group(1) if m else (value or "").split(";")[0].strip()


def _assert_proxied(env, who, msg, ruri):
    """A request forwarded inside a dialog by a loose-routing proxy: its Via on
    top (RFC 3261 section 16.6 step 8), its own Route entry gone (16.4, 16.12),
    Max-Forwards decremented from the 70 the UA sent (16.6 step 3), the
    Request-URI left as the UA wrote it: the remote target (16.12, 12.2.1.1)."""
    what = "%s got %s (CSeq %s)" % (who, msg.method, msg.hdr("CSeq"))
    check(top_via_is_proxy(msg, env), "%s not through the proxy: Via %s" % (what, msg.hdrs("Via")))
    check(not any("%s:%d" % (LOCAL, env.ports.proxy) in r for r in msg.hdrs("Route")),
          "%s with the proxy's own Route still in it (RFC 3261 section 16.4): %s"
          % (what, msg.hdrs("Route")))
    check(msg.hdr("Max-Forwards") == "69", "%s with Max-Forwards %r, expected 69 (RFC 3261 "
          "section 16.6 step 3)" % (what, msg.hdr("Max-Forwards")))
    check(_ruri(msg) == ruri, "%s with Request-URI %s, expected the remote target %s "
          "(RFC 3261 section 16.12: a loose-routing proxy leaves it alone)"
          % (what, _ruri(msg), ruri))


def case_in_dialog_requests(env):
    """RFC 3261 section 12.2 / 16.12: after mon1 answers a group call, INFO
    (dtmf-relay), MESSAGE, re-INVITE + ACK and BYE from the door, and an INFO
    from mon1 to the door, follow the Record-Route route set through the proxy
    with their bodies intact; each gets its 200."""
    env.start_proxy()
    register_devices(env, [("mon1", 0), ("mon2", 1)])
    door_port = env.ports.sip(4)
    mon1 = env.uas("mon1", "uas_dialog.xml", 0, timeout=20,
                   fields=[["mon1", USERS["mon1"]]],
                   auth_uri="door@%s:%d" % (LOCAL, door_port))
    mon2 = env.uas("mon2", "uas_early_cancelled.xml", 1, timeout=20)
    door = env.door("door", "door_dialog.xml", GROUP, 4, timeout=20)
    wait_all([door, mon1, mon2])
    assert_cancel_matches_invite([mon2])

    door_msgs = door.messages(raw=True)
    mon1_msgs = mon1.messages(raw=True)
    d_sent = [m for m in door_msgs if m.direction == "sent" and m.method]
    d_resp = [m for m in door_msgs if m.direction == "received" and m.status]
    m_recv = [m for m in mon1_msgs if m.direction == "received" and m.method]
    mon1_target = "sip:%s:%d" % (LOCAL, env.ports.sip(0))   # mon1's Contact
    door_target = "sip:door@%s:%d" % (LOCAL, door_port)      # the door's Contact

    ok = [m for m in d_resp if m.status == 200 and _cseq(m)[1] == "INVITE"]
    check(ok, "door got no 200 to its INVITE")
    rr = ok[0].hdrs("Record-Route")
    log("200 at the door: Record-Route %s, Contact %s" % (rr, ok[0].hdr("Contact")))
    check(any("%s:%d" % (LOCAL, env.ports.proxy) in r for r in rr),
          "200 at the door has no Record-Route naming the proxy: %s" % rr)
    check(_uri_in(ok[0].hdr("Contact")) == mon1_target,
          "200 at the door has Contact %s, expected mon1's %s" % (ok[0].hdr("Contact"), mon1_target))
    dialog_cseq = _cseq(ok[0])[0]

    # What the door sent inside the dialog, in order (the scenario's own
    # sanity: the route set and CSeq rules of RFC 3261 section 12.2.1.1).
    in_dialog = [m for m in d_sent if _cseq(m)[0] is not None and
                 (_cseq(m)[0] > dialog_cseq or (_cseq(m)[0] == dialog_cseq and m.method == "ACK"))]
    log("door in dialog: %s" % ", ".join("%s %s" % (m.method, m.hdr("CSeq")) for m in in_dialog))
    methods = [m.method for m in in_dialog]
    order = ["ACK", "INFO", "MESSAGE", "INVITE", "BYE"]
    check(all(x in methods for x in order) and
          [methods.index(x) for x in order] == sorted(methods.index(x) for x in order),
          "door's in-dialog requests %s, expected %s in that order (scenario bug)"
          % (methods, order))
    nums = [_cseq(m)[0] for m in in_dialog if m.method != "ACK"]
    # Retransmissions log the same CSeq twice: keep the first of each.
    nums = [n for i, n in enumerate(nums) if i == 0 or nums[i - 1] != n]
    check(nums == list(range(dialog_cseq + 1, dialog_cseq + 1 + len(nums))),
          "door's in-dialog CSeq numbers %s are not contiguous after %d (scenario bug)"
          % (nums, dialog_cseq))
    for m in in_dialog:
        check(m.hdrs("Route") and "%s:%d" % (LOCAL, env.ports.proxy) in m.hdrs("Route")[0],
              "door sent %s without the proxy as first Route (scenario bug): %s"
              % (m.method, m.hdrs("Route")))
        check(_ruri(m) == mon1_target, "door sent %s to %s, expected mon1's Contact %s "
              "(scenario bug)" % (m.method, _ruri(m), mon1_target))

    # mon1 received each of them, forwarded as a loose-routing proxy does.
    after_answer = m_recv[1:]  # the first is the dialog-creating INVITE
    log("mon1 received: %s" % ", ".join("%s %s" % (m.method, m.hdr("CSeq")) for m in m_recv))
    for method in ("ACK", "INFO", "MESSAGE", "INVITE", "BYE"):
        check(any(m.method == method for m in after_answer),
              "mon1 did not receive the door's in-dialog %s" % method)
    for m in after_answer:
        _assert_proxied(env, "mon1", m, mon1_target)
    check(len([m for m in after_answer if m.method == "ACK"]) >= 2,
          "mon1 did not receive both ACKs (for the INVITE and the re-INVITE)")

    def body_pair(method, ctype, relayed_sdp=False):
        sent = [m for m in in_dialog if m.method == method][-1]
        got = [m for m in after_answer if m.method == method][-1]
        # The framing check is against the bytes mon1 really received: the
        # relay's ports below can have other digit counts than the door's.
        got_length = len(got.raw_body)
        if relayed_sdp:
            # The media relay points the m= ports at itself (issue 3); every
            # other byte is the door's.
            door_ports = re.findall(rb"^m=\w+ (\d+) ", sent.raw_body, re.M)
            relay_ports = re.findall(rb"^m=\w+ (\d+) ", got.raw_body, re.M)
            check(len(door_ports) == len(relay_ports) and
                  not set(door_ports) & set(relay_ports),
                  "mon1's re-INVITE SDP does not point at the relay: %r" % got.raw_body)
            got.raw_body = re.sub(rb"^(m=\w+) \d+ ",
                                  lambda m, it=iter(door_ports): m.group(1) + b" " + next(it) + b" ",
                                  got.raw_body, flags=re.M)
        log("%s body sent %r, received %r (Content-Type %s, Content-Length %s)"
            % (method, sent.raw_body, got.raw_body, got.hdr("Content-Type"),
               got.hdr("Content-Length")))
        check((got.hdr("Content-Type") or "").lower() == ctype,
              "mon1 got %s with Content-Type %r, expected %s"
              % (method, got.hdr("Content-Type"), ctype))
        check(got.raw_body == sent.raw_body,
              "mon1 got the %s body %r, the door sent %r" % (method, got.raw_body, sent.raw_body))
        check(int((got.hdr("Content-Length") or "-1").strip()) == got_length,
              "mon1 got %s with Content-Length %s for a %d-byte body (RFC 3261 section 20.14)"
              % (method, got.hdr("Content-Length"), got_length))
        return got

    body_pair("INFO", "application/dtmf-relay")
    check([m for m in after_answer if m.method == "INFO"][-1].raw_body ==
          b"Signal=1\r\nDuration=250\r\n", "INFO body is not Signal=1 CRLF Duration=250 CRLF")
    body_pair("MESSAGE", "text/plain")
    # sipp ends every message with CRLF, hence "open" CRLF (door_dialog.xml).
    check([m for m in after_answer if m.method == "MESSAGE"][-1].raw_body == b"open\r\n",
          "MESSAGE body is not open CRLF")
    reinv = body_pair("INVITE", "application/sdp", relayed_sdp=True)
    check(b"a=sendrecv" in reinv.raw_body and b"o=door 1 2 " in reinv.raw_body,
          "re-INVITE offer at mon1 is not the door's version 2 sendrecv offer")

    # The door got a 200 for each request it sent in the dialog.
    for m in in_dialog:
        if m.method == "ACK":
            continue
        n, meth = _cseq(m)
        finals = [r for r in d_resp if _cseq(r) == (n, meth) and r.status >= 200]
        if finals and finals[-1].status == 407:
            continue  # challenged; the retry (next CSeq) is checked on its own
        check(finals and finals[-1].status == 200, "door: %s (CSeq %d) got %s, expected 200"
              % (meth, n, finals[-1].first if finals else "no final response"))
    reok = [r for r in d_resp if r.status == 200 and _cseq(r)[1] == "INVITE" and
            _cseq(r)[0] > dialog_cseq]
    check(reok and b"a=sendrecv" in reok[-1].raw_body,
          "door's 200 to the re-INVITE carries no sendrecv answer")

    # mon1 -> door (RFC 3261 section 12.1.1: the callee's route set is the
    # Record-Route list in order, its remote target the door's Contact).
    m_info = [m for m in mon1_msgs if m.direction == "sent" and m.method == "INFO"]
    check(m_info, "mon1 sent no INFO")
    log("mon1's INFO: %s, Route %s, From %s, To %s" % (m_info[-1].first, m_info[-1].hdrs("Route"),
                                                       m_info[-1].hdr("From"), m_info[-1].hdr("To")))
    check(_ruri(m_info[-1]) == door_target and m_info[-1].hdrs("Route") and
          "%s:%d" % (LOCAL, env.ports.proxy) in m_info[-1].hdrs("Route")[0],
          "mon1's INFO was not sent to %s via the proxy (scenario bug)" % door_target)
    d_info = [m for m in door_msgs if m.direction == "received" and m.method == "INFO"]
    check(d_info, "the door did not receive mon1's INFO")
    _assert_proxied(env, "door", d_info[-1], door_target)
    check(d_info[-1].raw_body == m_info[-1].raw_body == b"Signal=#\r\nDuration=250\r\n",
          "door got INFO body %r, mon1 sent %r" % (d_info[-1].raw_body, m_info[-1].raw_body))
    m_ok = [m for m in mon1_msgs if m.direction == "received" and m.status == 200 and
            _cseq(m)[1] == "INFO"]
    check(m_ok, "mon1 got no 200 to its INFO")
    env.wait_no_calls()
    env.assert_no_secrets()


def case_binding_expiry(env):
    """RFC 3261 section 10.2.1 / 10.3: a binding registered with Expires: 2
    (min-expires = 1) is listed, then disappears by itself; afterwards an
    INVITE to that user gets 480 (known user, no binding)."""
    env.min_expires = 1
    env.start_proxy()
    port = env.ports.sip(0)
    s = env.register("mon1", 0, 2)
    s.expect_ok()
    t_reg = time.time()
    ok = s.received(lambda m: m.status == 200)[-1]
    log("200 to REGISTER Expires: 2: Contact %s, Expires %s" % (ok.hdrs("Contact"), ok.hdr("Expires")))
    b = has_binding(env.bindings_for("mon1"), "mon1", port)
    check(b, "mon1's binding (Expires: 2) is not listed right after the 200: %s"
          % env.registrations())
    log("listed: %s" % json.dumps(b))
    check(isinstance(b.get("expires"), (int, float)) and 0 < b["expires"] <= 2,
          "binding listed with expires %r, expected at most the 2 s asked for" % b.get("expires"))

    # Bounded poll: the binding must be gone from the listing (RFC 3261
    # section 10.2.1: it lasts Expires seconds), and from the store, within 6 s.
    # portierctl stats counts stored bindings, expired or not: an expired
    # binding that stays there is never purged (memory, persisted state).
    bound = 6.0
    gone_at = purged_at = None
    while time.time() - t_reg < bound:
        now = time.time()
        if gone_at is None and not has_binding(env.bindings_for("mon1"), "mon1", port):
            gone_at = now
        if purged_at is None and env.ctl("stats").get("bindings") == 0:
            purged_at = now
        if gone_at is not None and purged_at is not None:
            break
        time.sleep(0.1)
    check(gone_at is not None, "mon1's binding (Expires: 2) still listed %.0f s after it was "
          "registered: %s" % (bound, env.registrations()))
    log("binding gone from the listing %.2f s after the 200" % (gone_at - t_reg))
    stats = env.ctl("stats")
    if purged_at is not None:
        log("binding purged from the store %.2f s after the 200" % (purged_at - t_reg))
    else:
        log("binding NOT purged from the store %.0f s after the 200: stats %s"
            % (bound, json.dumps(stats)))

    # Nothing may be sent to the expired contact: a plain socket takes its port.
    sentinel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sentinel.bind((LOCAL, port))
    sentinel.setblocking(False)
    try:
        door = env.door("door", "door_reject.xml", "mon1", 4, timeout=15)
        door.wait()
        time.sleep(0.2)
        leaked = _drain(sentinel)
    finally:
        sentinel.close()
    door.expect_ok()
    fin = final_response(door)
    log("INVITE sip:mon1@%s after expiry -> %s" % (DOMAIN, fin.first if fin else None))
    check(fin and fin.status == 480, "door: final response %s, expected 480 Temporarily "
          "Unavailable (known user, no binding)" % (fin.first if fin else None))
    check(not leaked, "the expired contact still got: %r" % leaked)
    env.wait_no_calls()
    env.assert_no_secrets()
    check(purged_at is not None, "portierctl stats still counts %s stored binding(s) %.0f s "
          "after a 2 s registration expired: expired bindings are never purged (and no "
          "'binding(s) expired' log line)" % (stats.get("bindings"), bound))


def _state_file(env):
    return os.path.join(env.state_dir, "registrations")


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def case_crash_persistence(env):
    """Bindings survive a crash (SIGKILL): the state files (snapshot and
    journal) hold both bindings once their 200s came (the 200 waits for the
    journal's fsync); after the kill no torn state, the restart restores both
    with their remaining lifetime and the device is called. A corrupt state
    file is never a reason not to start: the proxy starts, names each skipped
    line (file:line), keeps the good bindings and a copy of the bad file."""
    env.start_proxy()
    state = _state_file(env)
    devs = [("mon1", 0), ("mon2", 1)]
    register_devices(env, devs)
    t_reg = time.time()
    contacts = {u: "sip:%s@%s:%d" % (u, LOCAL, env.ports.sip(slot)) for u, slot in devs}

    # What a user relies on: a registration whose 200 came survives a power
    # cut. The 200 is sent after the journal's fsync: the files hold both now.
    data = (_read_bytes(state) or b"") + (_read_bytes(state + ".journal") or b"")
    check(all(c.encode() in data for c in contacts.values()),
          "%s(.journal) does not mention both contacts %s right after their 200s: %r"
          % (state, sorted(contacts.values()), data[:400]))
    log("state files hold both contacts %.2f s after the last 200 (%d bytes)"
        % (time.time() - t_reg, len(data)))

    before = {u: has_binding(env.bindings_for(u), u, env.ports.sip(slot)) for u, slot in devs}
    log("before the kill: %s" % json.dumps(before))
    log("SIGKILL to proxy pid %d (no clean shutdown)" % env.proxy.pid)
    env.proxy.stop(signal.SIGKILL)
    check(env.proxy.popen.returncode == -signal.SIGKILL,
          "portier-proxy exited with %s, expected death by SIGKILL" % env.proxy.popen.returncode)
    tmp = state + ".tmp"
    if os.path.exists(tmp):
        log("%s left behind by the kill (%d bytes): the restart must still work"
            % (tmp, os.path.getsize(tmp)))
    else:
        log("no %s after the kill" % os.path.basename(tmp))
    killed = _read_bytes(state) or b""
    journal = _read_bytes(state + ".journal") or b""
    check(killed.startswith(b"portier-registrations 1\n") and killed.endswith(b"\n") and
          all(c.encode() in killed + journal for c in contacts.values()),
          "%s after the kill is not a whole file, or it and the journal do not hold both "
          "contacts: %r / %r" % (state, killed[:400], journal[:400]))

    env.start_proxy()
    after = {}
    for u, slot in devs:
        b = has_binding(env.bindings_for(u), u, env.ports.sip(slot))
        check(b, "%s's binding is gone after the crash and restart: %s" % (u, env.registrations()))
        after[u] = b
    log("after the restart: %s" % json.dumps(after))
    for u, _ in devs:
        check(isinstance(after[u].get("expires"), (int, float)) and
              0 < after[u]["expires"] <= before[u]["expires"],
              "%s: expires went from %s before the kill to %s after the restart: the binding's "
              "lifetime was re-armed (RFC 3261 section 10.2.1: it runs from the REGISTER)"
              % (u, before[u].get("expires"), after[u].get("expires")))

    # The door calls mon2; nothing may reach mon1's contact (a plain socket).
    sentinel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sentinel.bind((LOCAL, env.ports.sip(0)))
    sentinel.setblocking(False)
    try:
        mon2 = env.uas("mon2", "uas_early_answer.xml", 1, timeout=15)
        door = env.door("door", "door_call.xml", "mon2", 4, timeout=15)
        wait_all([door, mon2])
        leaked = _drain(sentinel)
    finally:
        sentinel.close()
    check(not leaked, "a call to sip:mon2@%s reached mon1's contact: %r" % (DOMAIN, leaked))
    inv = mon2.received(lambda m: m.method == "INVITE")
    check(inv and _ruri(inv[0]) == contacts["mon2"],
          "mon2 got INVITE %s, expected the restored contact %s (RFC 3261 section 16.5)"
          % (inv[0].first if inv else "(none)", contacts["mon2"]))
    ok = door.received(lambda m: m.status == 200 and m.cseq_method() == "INVITE")
    check(ok and any("%s:%d" % (LOCAL, env.ports.proxy) in r for r in ok[0].hdrs("Record-Route")),
          "200 at the door has no Record-Route naming the proxy: %s"
          % (ok[0].hdrs("Record-Route") if ok else "no 200"))
    mon2_target = "sip:%s:%d" % (LOCAL, env.ports.sip(1))  # mon2's Contact in its 200
    in_dialog = mon2.received(lambda m: m.method in ("ACK", "BYE"))
    check(sorted(set(m.method for m in in_dialog)) == ["ACK", "BYE"],
          "mon2 got %s, expected ACK and BYE" % [m.method for m in in_dialog])
    for m in in_dialog:
        _assert_proxied(env, "mon2", m, mon2_target)
    env.wait_no_calls()

    # Corruption while the proxy is stopped (a disk error, a hand edit, a
    # record an older version stored): never a reason not to start. The proxy
    # starts, names the file and line it skipped, keeps the good bindings and a
    # copy of the file as it was for the admin, and serves.
    env.stop_proxy(expect_clean=True)
    good = _read_bytes(state)
    check(good and good.count(b"\n") >= 3, "state file after a clean stop: %r" % good)
    lines = good.split(b"\n")
    corruptions = [
        ("garbage on line 3", b"\n".join(lines[:2] + [b"\x01garbage \xff{not a record}"] +
                                         lines[2:]), 3, [u for u, _ in devs]),
        # What the old registrar saved for ";q=2", then refused at every start.
        ("q=2 on line 2", b"\n".join(lines[:1] + [lines[1].replace(b"\t1000\t", b"\t2000\t")] +
                                     lines[2:]), 2, None),
        ("garbage file", b"\x00\xffPK\x03\x04 this is not a registrations file\n" * 4, 1, []),
    ]
    for what, garbage, line_no, kept in corruptions:
        check(garbage != good, "%s: the corruption changed nothing" % what)
        for old_copy in [f for f in os.listdir(env.state_dir) if ".bad-" in f]:
            os.unlink(os.path.join(env.state_dir, old_copy))
        with open(state, "wb") as f:
            f.write(garbage)
        offset = os.path.getsize(env.proxy_log)
        env.start_proxy()
        with open(env.proxy_log, "rb") as f:
            f.seek(offset)
            out = f.read().decode("utf-8", "replace").splitlines()
        named = [l for l in out if "%s:%d" % (state, line_no) in l]
        log("%s: %s" % (what, named[0].strip() if named else out[-3:]))
        check(named, "portier-proxy started on the corrupt %s (%s) without naming %s:%d:\n%s"
              % (state, what, state, line_no, "\n".join(out[-10:])))
        if kept is None:  # the record that was bad is the first one
            kept = [u for u, _ in devs if contacts[u].encode() not in lines[1]]
        for u, slot in devs:
            listed = has_binding(env.bindings_for(u), u, env.ports.sip(slot))
            check(bool(listed) == (u in kept),
                  "%s: %s's binding %s after starting on the corrupt file (expected %s)"
                  % (what, u, "listed" if listed else "missing", "kept" if u in kept else "skipped"))
        copies = [f for f in os.listdir(env.state_dir) if f.startswith("registrations.bad-")]
        check(len(copies) == 1 and _read_bytes(os.path.join(env.state_dir, copies[0])) == garbage,
              "%s: no copy of the corrupt file kept for the admin in %s: %s"
              % (what, env.state_dir, sorted(os.listdir(env.state_dir))))
        log("%s: started, kept %s, copy %s" % (what, kept, copies[0]))
        s = env.register("mon3", 7, 3600)
        s.expect_ok()
        env.stop_proxy(expect_clean=True)

    # Repaired by the operator (the file as it was): the proxy starts, bindings back.
    with open(state, "wb") as f:
        f.write(good)
    with open(state + ".journal", "wb") as f:
        pass
    env.start_proxy()
    for u, slot in devs:
        check(has_binding(env.bindings_for(u), u, env.ports.sip(slot)),
              "%s's binding missing after restoring the good state file: %s"
              % (u, env.registrations()))
    env.assert_no_secrets()


# --------------------------------------------------------------------------
# Media relay
# --------------------------------------------------------------------------

class RtpPeer:
    """A UDP media socket of a test device or of the door: records every packet
    with the kernel's arrival time (SO_TIMESTAMPNS, so a busy test thread does
    not shift it) and can answer each RTP packet with one of its own."""
    SO_TIMESTAMPNS = 35

    def __init__(self, name, port, echo_ssrc=None):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, self.SO_TIMESTAMPNS, 1)
        self.sock.bind((LOCAL, port))
        self.sock.settimeout(0.1)
        self.port = port
        self.echo_ssrc = echo_ssrc
        self.packets = []  # (arrival time, source (host, port), bytes)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        seq = 0
        while not self.stop:
            try:
                data, anc, _, src = self.sock.recvmsg(2048, 64)
            except socket.timeout:
                continue
            except OSError:
                return
            t = time.time()
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == self.SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("qq", value[:16])
                    t = sec + nsec / 1e9
            self.packets.append((t, src, data))
            if self.echo_ssrc is not None and is_rtp(data):
                # symmetric: back to where the relay sent from (RFC 4961)
                seq += 1
                self.sock.sendto(rtp_packet(seq, seq * 3000, self.echo_ssrc, b"\x10\x51echo"), src)

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()

    def rtp(self, ssrc=None):
        return [p for p in self.packets if is_rtp(p[2]) and
                (ssrc is None or struct.unpack("!I", p[2][8:12])[0] == ssrc)]


def is_rtp(data):
    # RFC 5761 section 4: RTCP packet types 200-206 look like RTP payload types
    # 72-78 with the marker bit; RTP uses none of 64-95.
    return len(data) >= 12 and data[0] >> 6 == 2 and not 64 <= (data[1] & 0x7f) <= 95


def rtp_packet(seq, ts, ssrc, payload, pt=96):
    return struct.pack("!BBHII", 0x80, pt, seq & 0xffff, ts & 0xffffffff, ssrc) + payload


def case_relay_early_media(env):
    """The media relay (issue 3): the door calls the group; three devices answer
    183 recvonly and every one of them receives the door's RTP while ringing
    (early media forked per 183 branch); the door gets a keyframe request
    (RTCP PLI, RFC 4585 section 6.3.1) for the joining branches; mon1 answers
    200: from then on only mon1 receives, and mon1's RTP reaches the door;
    after BYE every relay port is free again (portierctl relay)."""
    relay_group_call(env, door_behind_nat=False)


def case_relay_latching(env):
    """Symmetric RTP (RFC 4961; what rtpengine and Flexisip call latching): the
    door sits behind a NAT, so its video leaves from another port than the one
    its SDP names. Once the relay has seen the door's first packet, the
    winner's RTP goes to where the door's packets came from, not to the
    signalled port, which nothing behind a NAT would receive."""
    relay_group_call(env, door_behind_nat=True)


def relay_group_call(env, door_behind_nat):
    """The door calls the group through the relay, mon1 wins (case_relay_early_media).
    door_behind_nat: the door sends its video from a port its SDP does not name."""
    env.start_proxy()
    register_devices(env, [("mon1", 0), ("mon2", 1), ("mon3", 2)])
    door_ssrc, mon1_ssrc = 0x0d00d00d, 0x0a11ce01
    # media sockets of the test: sipp's own media ports (slots 0-5) are not used
    door_a, door_v = env.ports.media(6), env.ports.media(6) + 2
    peers = {}
    sender_stop = threading.Event()
    try:
        peers["door"] = RtpPeer("door", door_v)
        peers["door_rtcp"] = RtpPeer("door_rtcp", door_v + 1)
        # the door's video socket as its NAT maps it: a port the SDP never names
        sending = peers["door"]
        if door_behind_nat:
            sending = peers["door_nat"] = RtpPeer("door_nat", env.ports.media(5))
        for i, name in enumerate(("mon1", "mon2", "mon3")):
            base = env.ports.media(7 + i)
            peers[name] = RtpPeer(name, base + 2, echo_ssrc=mon1_ssrc if name == "mon1" else None)
        relay_port_file = os.path.join(env.dir, "relay_video_port")
        mon1 = env.uas("mon1", "uas_relay_answer.xml", 0,
                       fields=[[env.ports.media(7), env.ports.media(7) + 2]])
        mon2 = env.uas("mon2", "uas_relay_cancelled.xml", 1,
                       fields=[[env.ports.media(8), env.ports.media(8) + 2]])
        mon3 = env.uas("mon3", "uas_relay_cancelled.xml", 2,
                       fields=[[env.ports.media(9), env.ports.media(9) + 2]])
        door = env.sipp("door", "door_relay_call.xml", 4,
                        [["door", USERS["door"], DOMAIN, door_a, door_v, relay_port_file]],
                        service=GROUP, auth_uri="%s@%s" % (GROUP, DOMAIN), timeout=30)

        def send_door_video():
            # The door's VP8 stream at 50 packets/s, a keyframe every 25th
            # packet, from its signalled port; bounded by count and by the call.
            deadline = time.time() + 10
            while not os.path.exists(relay_port_file) or not open(relay_port_file).read().strip():
                if sender_stop.is_set() or time.time() > deadline:
                    return
                time.sleep(0.02)
            relay = int(open(relay_port_file).read().split()[0])  # "PORT m=video PORT"
            for seq in range(1, 1000):
                if sender_stop.is_set():
                    return
                key = seq % 25 == 1
                payload = b"\x10" + (b"\x50" if key else b"\x51") + b"door-video"
                sending.sock.sendto(rtp_packet(seq, seq * 1800, door_ssrc, payload),
                                    (LOCAL, relay))
                time.sleep(0.02)

        sender = threading.Thread(target=send_door_video, daemon=True)
        sender.start()
        door.wait()
        sender_stop.set()
        sender.join(3)
        wait_all([door, mon1, mon2, mon3])
    finally:
        sender_stop.set()
        for p in peers.values():
            p.close()

    check(os.path.exists(relay_port_file), "the door never got a 183 with the relay's SDP")
    e183 = door.received(lambda m: m.status == 183)
    check(len(e183) == 1, "the door must see one early dialog (first 183 with SDP), got %d 183s"
          % len(e183))
    ok200 = door.received(lambda m: m.status == 200 and m.cseq_method() == "INVITE")[0]
    t200 = ok200.ts()
    check(ok200.hdrs("P-Asserted-Identity") == ["<sip:mon1@%s>" % DOMAIN],
          "the door's 200 asserts %s, expected the answering device sip:mon1@%s"
          % (ok200.hdrs("P-Asserted-Identity"), DOMAIN))
    for name in ("mon1", "mon2", "mon3"):
        dev = {"mon1": mon1, "mon2": mon2, "mon3": mon3}[name]
        inv = dev.received(lambda m: m.method == "INVITE")[0]
        check("c=IN IP4 %s" % LOCAL in inv.body and "m=video %d" % door_v not in inv.body,
              "%s: the INVITE's SDP does not point at the relay:\n%s" % (name, inv.body))
        # RFC 3325 §9.1: the proxy asserts who authenticated, never what the
        # caller claimed (the door's INVITE carries a forged identity)
        check(inv.hdrs("P-Asserted-Identity") == ["<sip:door@%s>" % DOMAIN],
              "%s: P-Asserted-Identity is %s, expected the door's authenticated AOR only"
              % (name, inv.hdrs("P-Asserted-Identity")))
        # The proxy absorbs all early answers but one, and nobody would PRACK
        # an absorbed reliable 183 (RFC 3262 section 3): a forked relayed
        # INVITE offers no 100rel; the door's other options pass.
        supported = ",".join(inv.hdrs("Supported")).replace(" ", "").split(",")
        check("100rel" not in supported and "timer" in supported,
              "%s: Supported is %s, expected timer without 100rel" % (name, supported))
        early = [p for p in peers[name].rtp(door_ssrc) if p[0] < t200]
        log("%s: %d door packets before the 200, %d in all"
            % (name, len(early), len(peers[name].rtp(door_ssrc))))
        check(early, "%s received none of the door's RTP while ringing (early media)" % name)
    for name in ("mon2", "mon3"):
        late = [p for p in peers[name].rtp(door_ssrc) if p[0] > t200 + 0.02]
        check(not late, "%s (a loser) still received %d door packet(s) after the 200"
              % (name, len(late)))
    back = sending.rtp(mon1_ssrc)
    log("door: %d packets from mon1 (the winner) at port %d" % (len(back), sending.port))
    check(back, "mon1's RTP (the winner's) never reached the door at port %d" % sending.port)
    if door_behind_nat:
        stray = peers["door"].rtp(mon1_ssrc)
        check(not stray, "%d of mon1's packets went to the door's signalled port %d, not to "
              "where its packets come from (no latching)" % (len(stray), door_v))
    check(all(p[1][1] != env.ports.media(7) + 2 for p in back),
          "mon1's RTP reached the door directly, not through the relay")
    plis = [p for p in peers["door_rtcp"].packets
            if len(p[2]) >= 12 and p[2][1] == 206 and (p[2][0] & 0x1f) == 1]
    log("door: %d PLI(s) from the relay" % len(plis))
    check(plis, "the door got no RTCP PLI when the devices joined (keyframe request)")
    check(all(struct.unpack("!I", p[2][8:12])[0] == door_ssrc for p in plis),
          "a PLI names another media SSRC than the door's")
    env.wait_relay_free()
    env.wait_no_calls()


def case_relay_late_answer(env):
    """Two devices answer at once (issue 3): mon1's 200 wins; mon2's 200 crosses
    the proxy's CANCEL. With the media relay the caller's media is joined to
    mon1's, so the proxy does not forward mon2's 2xx (the door sees one 200);
    it ACKs it (RFC 3261 section 13.2.2.4) and sends BYE (section 15.1.1), and
    mon2's relay ports are freed with the rest after the call."""
    env.start_proxy()
    register_devices(env, [("mon1", 0), ("mon2", 1)])
    mon1 = env.uas("mon1", "uas_relay_answer.xml", 0,
                   fields=[[env.ports.media(7), env.ports.media(7) + 2]])
    mon2 = env.uas("mon2", "uas_relay_late_answer.xml", 1,
                   fields=[[env.ports.media(8), env.ports.media(8) + 2]])
    door = env.sipp("door", "door_relay_call.xml", 4,
                    [["door", USERS["door"], DOMAIN, env.ports.media(6), env.ports.media(6) + 2,
                      os.path.join(env.dir, "relay_video_port")]],
                    service=GROUP, auth_uri="%s@%s" % (GROUP, DOMAIN), timeout=30)
    wait_all([door, mon1, mon2])
    oks = door.received(lambda m: m.status == 200 and m.cseq_method() == "INVITE")
    check(len(oks) == 1, "the door got %d 200s for its INVITE, expected 1 (the late 2xx "
          "must not reach it)" % len(oks))
    check("SIPpTag01" in (oks[0].hdr("To") or "") and
          mon1.sent(lambda m: m.status == 200 and m.cseq_method() == "INVITE"),
          "the door's 200 is not mon1's")
    ack = mon2.received(lambda m: m.method == "ACK")
    bye = mon2.received(lambda m: m.method == "BYE")
    check(ack and bye, "mon2's late 200 was not ACKed and ended with BYE by the proxy")
    inv = mon2.received(lambda m: m.method == "INVITE")[0]
    check(bye[0].hdr("Call-ID") == inv.hdr("Call-ID"), "the BYE is not for mon2's dialog")
    cseq = int((inv.hdr("CSeq") or "0").split()[0])
    check(ack[0].hdr("CSeq") == "%d ACK" % cseq,
          "the ACK's CSeq %r is not the INVITE's number (section 13.2.2.4)" % ack[0].hdr("CSeq"))
    check("door@" in (bye[0].hdr("From") or ""), "the BYE does not come from the caller's side")
    env.wait_relay_free()
    env.wait_no_calls()


# --------------------------------------------------------------------------
# portier-door (issue 4)
# --------------------------------------------------------------------------

def start_decoder(env, name, port, codec):
    """A GStreamer receive pipeline of the test: decodes what reaches `port` and
    writes every decoded frame as a PNG (what a monitor would show)."""
    out = os.path.join(env.dir, name)
    os.makedirs(out, exist_ok=True)
    depay = "rtph264depay ! avdec_h264" if codec == "H264" else "rtpvp8depay ! vp8dec"
    argv = ["gst-launch-1.0", "-q", "udpsrc", "address=%s" % LOCAL, "port=%d" % port,
            "caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=%s,payload=96"
            % codec] + ("! %s ! videoconvert ! pngenc ! multifilesink location=%s/frame-%%05d.png"
                        % (depay, out)).split()
    proc = Proc(name, argv, os.path.join(env.dir, name + ".log"), env.dir)
    env.procs.append(proc)
    deadline = time.time() + 5
    while time.time() < deadline and not port_bound(port, "udp"):
        time.sleep(0.05)
    return proc, out


def decoded_frames(folder):
    """(mtime, width, height) of every PNG the decoder wrote, oldest first."""
    frames = []
    for f in sorted(os.listdir(folder)):
        path = os.path.join(folder, f)
        with open(path, "rb") as fh:
            head = fh.read(24)
        if len(head) == 24 and head[:8] == b"\x89PNG\r\n\x1a\n":
            w, h = struct.unpack("!II", head[16:24])
            frames.append((os.stat(path).st_mtime, w, h))
    return frames


def case_door_early_media(env):
    """portier-door (issue 4): the button calls the home; the device answers 183
    recvonly and decodes the door's H.264 video while it rings (early media,
    through the proxy's relay), and hears its audio; a second press while
    ringing starts no second call; after the 200 the call is two-way until the
    door hangs up, and every relay port is freed."""
    door_rings_device(env, "h264")


def case_door_early_media_vp8(env):
    """The same with VP8, the codec DESIGN.md makes the door's default."""
    door_rings_device(env, "vp8")


def door_rings_device(env, CODEC):
    env.start_proxy()
    register_devices(env, [("mon1", 0)])
    audio = RtpPeer("mon1_audio", env.ports.media(7))
    decoder, frames_dir = start_decoder(env, "mon1_video", env.ports.media(7) + 2, CODEC.upper())
    try:
        mon1 = env.uas("mon1", "uas_door_answer.xml", 0,
                       fields=[[env.ports.media(7), env.ports.media(7) + 2, CODEC.upper()]])
        env.start_door(video_codec=CODEC)
        check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
        again = env.door_ctl("ring").get("result", "")
        check(again.startswith("busy"), "a second press while ringing answered %r" % again)
        env.wait_door_event("answered", 15)
        # two-way audio: the resident's voice (PCMU, 20 ms packets) to the door
        inv = mon1.received(lambda m: m.method == "INVITE")[0]
        relay_audio = int(re.search(r"m=audio (\d+)", inv.body).group(1))
        for seq in range(1, 51):
            audio.sock.sendto(rtp_packet(seq, seq * 160, 0x50ce, b"\xff" * 160, pt=0),
                              (LOCAL, relay_audio))
            time.sleep(0.02)
        st = env.door_ctl("status")
        check(st.get("audio_packets_received", 0) > 0,
              "the resident's audio never reached the door (two-way audio): %s" % st)
        check(env.door_ctl("hangup").get("result") == "hung up", "the door did not hang up")
        mon1.wait()
        mon1.expect_ok()
        env.wait_door_event("ended", 5)
    finally:
        audio.close()
        decoder.stop()
    invites = mon1.received(lambda m: m.method == "INVITE")
    check(len(invites) == 1, "the device got %d INVITEs, expected 1" % len(invites))
    check("m=video" in invites[0].body and "%s/90000" % CODEC.upper() in invites[0].body,
          "the door's offer has no %s video:\n%s" % (CODEC, invites[0].body))
    t200 = mon1.sent(lambda m: m.status == 200 and m.cseq_method() == "INVITE")[0].ts()
    frames = decoded_frames(frames_dir)
    early = [f for f in frames if f[0] < t200]
    log("mon1: %d frames decoded, %d before the 200" % (len(frames), len(early)))
    check(early, "no frame of the door's video was decoded while ringing")
    check(all((w, h) == (320, 240) for _, w, h in frames),
          "decoded frames are not 320x240: %s" % sorted({(w, h) for _, w, h in frames}))
    pcmu = [p for p in audio.rtp() if p[2][1] & 0x7f == 0 and p[0] < t200]
    check(pcmu, "the device got none of the door's PCMU audio while ringing")
    sizes = sorted({len(p[2]) - 12 for p in pcmu})
    check(sizes == [160], "the door's PCMU packets are not 20 ms (160 bytes): %s" % sizes)
    answered = env.door_events("answered")
    check(answered and answered[0]["details"] == "by=sip:mon1@%s" % DOMAIN,
          "the door did not learn who answered (P-Asserted-Identity): %s" % answered)
    sent = env.door_events("first_rtp_sent")
    check(sent, "the door reported no first RTP packet")
    log("door: first video packet %s ms after the press" % sent[0]["details"])
    env.wait_relay_free()
    text = env.door_log_text()
    check(USERS["door"] not in text, "the door's password appears in its log")
    # the visitor's picture and the visit in the door's event log
    events_dir = os.path.join(env.dir, "door-events")
    jpgs = [f for f in os.listdir(events_dir) if f.endswith(".jpg")]
    check(len(jpgs) == 1, "one snapshot per ring expected in %s: %s" % (events_dir, jpgs))
    with open(os.path.join(events_dir, jpgs[0]), "rb") as f:
        check(f.read(3) == b"\xff\xd8\xff", "the snapshot %s is not a JPEG" % jpgs[0])
    lines = []
    for name in sorted(f for f in os.listdir(events_dir) if f.endswith(".jsonl")):
        with open(os.path.join(events_dir, name)) as f:
            lines += [json.loads(line) for line in f if line.strip()]
    kinds = [e.get("kind") for e in lines]
    log("door event log: %s" % kinds)
    check("ring" in kinds and "answered" in kinds and "ended" in kinds,
          "the event log lacks the ring, the answer or the end: %s" % lines)
    ring = [e for e in lines if e.get("kind") == "ring"][0]
    check(ring.get("snapshot") == jpgs[0], "the ring's line does not name its snapshot: %s" % ring)
    answered = [e for e in lines if e.get("kind") == "answered"][0]
    check(answered.get("who") == "sip:mon1@%s" % DOMAIN, "who answered: %s" % answered)


def case_door_rtsp_preview(env):
    """The door's RTSP preview (issue 4): rtspsrc decodes the live camera; a
    call during the preview gets the same camera and encoder (one consumer
    more, not a second camera), both keep decoding, and the preview goes on
    after the call."""
    env.start_proxy()
    register_devices(env, [("mon1", 0)])
    rtsp_port = env.ports.media(5)
    decoder, frames_dir = start_decoder(env, "mon1_video", env.ports.media(7) + 2, "H264")
    mon1 = env.uas("mon1", "uas_door_answer.xml", 0,
                   fields=[[env.ports.media(7), env.ports.media(7) + 2, "H264"]])
    env.start_door(video_codec="h264",
                   extra="[rtsp]\nenabled = true\naddress = %s\nport = %d\npath = /door\n"
                   % (LOCAL, rtsp_port))
    out = os.path.join(env.dir, "rtsp")
    os.makedirs(out)
    viewer = Proc("rtsp_viewer", [
        "gst-launch-1.0", "-q", "rtspsrc", "location=rtsp://%s:%d/door" % (LOCAL, rtsp_port),
        "protocols=tcp", "latency=0", "!", "rtph264depay", "!", "avdec_h264", "!",
        "videoconvert", "!", "pngenc", "!", "multifilesink",
        "location=%s/frame-%%05d.png" % out], os.path.join(env.dir, "rtsp_viewer.log"), env.dir)
    env.procs.append(viewer)
    try:
        deadline = time.time() + 15
        while time.time() < deadline and not decoded_frames(out):
            check(viewer.running(), "the RTSP viewer exited: %s"
                  % open(os.path.join(env.dir, "rtsp_viewer.log")).read()[-800:])
            time.sleep(0.2)
        check(decoded_frames(out), "rtspsrc decoded no frame of the preview")
        st = env.door_ctl("status")
        check(st.get("camera_consumers") == 1, "one viewer expected: %s" % st)
        t_call = time.time()
        check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
        env.wait_door_event("early_media", 10)
        time.sleep(1.0)
        st = env.door_ctl("status")
        check(st.get("camera_consumers") == 2,
              "the call should share the preview's camera and encoder: %s" % st)
        env.wait_door_event("answered", 15)
        env.door_ctl("hangup")
        mon1.wait()
        env.wait_door_event("ended", 5)
        t_end = time.time()
        time.sleep(1.5)
        st = env.door_ctl("status")
        check(st.get("camera_consumers") == 1 and st.get("camera_running"),
              "after the call the preview goes on alone: %s" % st)
    finally:
        viewer.stop()
        decoder.stop()
    rtsp_frames = decoded_frames(out)
    call_frames = decoded_frames(frames_dir)
    log("rtsp viewer: %d frames; mon1: %d frames" % (len(rtsp_frames), len(call_frames)))
    check(call_frames, "the call decoded nothing while the preview ran")
    check([f for f in rtsp_frames if t_call < f[0] < t_end],
          "the preview stopped during the call")
    check([f for f in rtsp_frames if f[0] > t_end], "the preview stopped after the call")


def h264_keyframes(packets):
    """Arrival times of the IDR pictures in H.264 RTP (RFC 6184 §5.4: NAL type
    5, alone, in a STAP-A, or starting an FU-A)."""
    times = []
    for t, _, data in packets:
        if len(data) < 14 or not is_rtp(data):
            continue
        cc = data[0] & 0x0f
        nal = data[12 + 4 * cc:]
        if not nal:
            continue
        kind = nal[0] & 0x1f
        idr = kind == 5
        if kind == 28 and len(nal) > 1:          # FU-A: start bit and the real type
            idr = (nal[1] & 0x80) and (nal[1] & 0x1f) == 5
        elif kind == 24:                         # STAP-A: any IDR inside
            at = 1
            while at + 2 < len(nal):
                size = struct.unpack("!H", nal[at:at + 2])[0]
                if at + 2 < len(nal) and nal[at + 2] & 0x1f == 5:
                    idr = True
                at += 2 + size
        if idr and (not times or t - times[-1] > 0.05):
            times.append(t)
    return times


def case_door_keyframe_requests(env):
    """Keyframes on request (issue 4): the door's keyframe interval is 60 s, so
    every keyframe after the first is one asked for: an RTCP PLI from the
    ringing device (RFC 4585 §6.3.1, through the relay and its de-duplication)
    and a SIP INFO picture_fast_update (RFC 5168) after the answer each make
    the encoder send one at once."""
    env.start_proxy()
    register_devices(env, [("mon1", 0)])
    video = RtpPeer("mon1_video", env.ports.media(7) + 2)
    try:
        mon1 = env.uas("mon1", "uas_door_keyframe.xml", 0,
                       fields=[[env.ports.media(7), env.ports.media(7) + 2]])
        env.start_door(video_codec="h264", extra="keyframe-interval = 60\n")
        check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
        env.wait_door_event("early_media", 10)
        inv = mon1.received(lambda m: m.method == "INVITE")[0]
        relay_video = int(re.search(r"m=video (\d+)", inv.body).group(1))
        time.sleep(1.0)
        t_pli = time.time()
        # RTCP PLI (RFC 4585 §6.3.1) from the device's RTCP port to the relay's
        pli = struct.pack("!BBHII", 0x81, 206, 2, 0x0a11ce01, 0)
        video.sock.sendto(pli, (LOCAL, relay_video + 1))
        env.wait_door_event("answered", 10)
        env.wait_door_event("keyframe_request", 10)
        time.sleep(1.0)
        env.door_ctl("hangup")
        mon1.wait()
        mon1.expect_ok()
        t_info = mon1.sent(lambda m: m.method == "INFO")[0].ts()
        env.wait_door_event("ended", 5)
    finally:
        video.close()
    keys = h264_keyframes(video.packets)
    log("keyframes at %s s after the PLI" % ["%.2f" % (k - t_pli) for k in keys])
    check(keys and keys[0] < t_pli, "no keyframe when the device joined")
    check([k for k in keys if t_pli < k < t_info], "no keyframe after the device's RTCP PLI")
    check([k for k in keys if k > t_info], "no keyframe after the INFO picture_fast_update")
    check(env.door_events("keyframe_request"), "the door did not log the INFO's request")


def case_door_message_code(env):
    """The door code as a SIP MESSAGE (issue 4, RFC 3428): from an allowed
    resident it runs the action once; the same code from a user the door does
    not allow opens nothing. The door trusts the identity the proxy asserted
    after digest authentication (RFC 3325), not what a client writes, and
    takes requests only through the proxy."""
    env.start_proxy()
    code = "583920"
    env.start_door(extra="[actions]\ndoor = %s log\n[access]\nallow = sip:mon1@%s\n"
                   % (code, DOMAIN))
    for user, slot in (("mon1", 0), ("alice", 1)):
        env.send_code_message("msg_" + user, slot, [[user, USERS[user], DOMAIN, code]])
    actions = env.door_actions(2)
    log("door actions: %s" % actions)
    check(actions == ["via=message from=sip:mon1@%s action=door result=done" % DOMAIN,
                      "via=message from=sip:alice@%s refused=not_allowed" % DOMAIN],
          "expected one opening by mon1 and alice refused: %s" % actions)
    check(env.door_ctl("status").get("actions_run") == 1, "the door ran its action once")

    # The same code and mon1's name, straight to the door's contact without
    # the proxy: 403 to the MESSAGE and to the INVITE (RFC 3325 section 3).
    s = env.sipp("forged", "forged_identity.xml", 2, [["mon1", DOMAIN, code]],
                 to="%s:%d" % (LOCAL, env.ports.sip(8)))
    s.wait()
    s.expect_ok()
    refused = [e["details"] for e in env.door_events("request_refused")]
    log("door refused: %s" % refused)
    check(len(refused) == 2 and all("reason=not through the proxy" in r for r in refused),
          "the door refused the MESSAGE and the INVITE that skipped the proxy: %s" % refused)
    check(env.door_ctl("status").get("actions_run") == 1,
          "a forged P-Asserted-Identity opened the door")
    check(env.door_ctl("status").get("call") == "idle", "the door is idle")
    check(code not in env.door_log_text().replace("sip:", ""), "the code is in the door's log")


def case_door_max_duration(env):
    """A call ends by itself after [call] max-duration (issue 4): the door sends
    BYE (RFC 3261 section 15) and says why; its camera stops."""
    env.start_proxy()
    register_devices(env, [("mon1", 0)])
    mon1 = env.uas("mon1", "uas_door_answer.xml", 0,
                   fields=[[env.ports.media(7), env.ports.media(7) + 2, "VP8"]], timeout=40)
    env.start_door(extra="[call]\nmax-duration = 10\n")
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_door_event("answered", 15)
    ended = env.wait_door_event("ended", 25)
    mon1.wait()
    mon1.expect_ok()
    check("max-duration reached" in ended[0]["details"], "why the call ended: %s" % ended)
    bye = mon1.received(lambda m: m.method == "BYE")
    check(bye, "the device got no BYE from the door")
    st = env.door_ctl("status")
    check(st.get("call") == "idle" and not st.get("camera_running"), "after the call: %s" % st)

# --------------------------------------------------------------------------
# portier-monitor (issue 5)
# --------------------------------------------------------------------------

def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    check(len(head) == 24 and head[:8] == b"\x89PNG\r\n\x1a\n", "%s is not a PNG" % path)
    return struct.unpack("!II", head[16:24])


def door_with_monitor_access(env, codec="vp8", extra=""):
    env.start_door(video_codec=codec, auto_answer="sip:mon1@%s sip:mon2@%s" % (DOMAIN, DOMAIN),
                   extra="[actions]\ndoor = %s log\n[access]\nallow = sip:mon1@%s sip:mon2@%s\n%s"
                   % (DOOR_CODE, DOMAIN, DOMAIN, extra))


def check_milestones(env, name, kinds):
    evs = env.monitor_events(name)
    seen = [e.get("event") for e in evs]
    log("%s events: %s" % (name, seen))
    for k in kinds:
        check(k in seen, "%s: no %r event line in its events file: %s" % (name, k, seen))
    for e in evs:
        check(isinstance(e.get("wall_ms"), int) and isinstance(e.get("mono_ms"), int)
              and e.get("wall", "").endswith("Z"),
              "%s: an event line without both clocks: %s" % (name, e))
    return evs


def check_no_code_in_logs(env, *names):
    for n in names:
        text = env.monitor_log_text(n) + open(env.monitor_events_file(n)).read()
        check(DOOR_CODE not in text.replace("sip:", ""), "the door code is in %s's log" % n)
        check(USERS.get(n, "no-such-password") not in text, "%s's password is in its log" % n)


def case_monitor_rings_with_video(env):
    """portier-monitor (issue 5): the door rings the home; two portier-monitors
    (and a sipp device) ring, answer 183 recvonly and decode the door's video
    before anyone answers; mon1 answers (usually from an early dialog the
    proxy did not pass on), mon2 ends with "answered elsewhere" (the proxy's
    CANCEL Reason, RFC 3326); audio flows both ways; mon1's open-door (RFC 4733
    events) runs the door's action once; a snapshot PNG of the right size; the
    hang-up frees every relay port."""
    env.start_proxy()
    # A sipp device answers 183 at once, so the door's one early dialog is
    # usually its own and mon1 answers from a 183 the proxy absorbed: its 200
    # must still get through (an unreliable 183: no PRACK is waited for).
    register_devices(env, [("mon3", 2)])
    mon3 = env.uas("mon3", "uas_relay_cancelled.xml", 2,
                   fields=[[env.ports.media(2), env.ports.media(2) + 2]])
    door_with_monitor_access(env)
    env.start_monitor("mon1", "mon1", 0, 0)
    env.start_monitor("mon2", "mon2", 1, 1)
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    for name in ("mon1", "mon2"):
        st = env.wait_monitor(name, lambda st: st.get("call") == "early" and
                              st.get("frames_decoded", 0) > 0,
                              "early media with decoded video", 15)
        log("%s: early, %d frames, first RTP %s ms, first frame %s ms after the INVITE (%s)"
            % (name, st["frames_decoded"], st["first_rtp_ms"], st["first_frame_ms"],
               st["video_decoder"]))
        check(st.get("peer") == "sip:door@%s" % DOMAIN, "%s: the caller is %r" % (name, st.get("peer")))
        check(st.get("video_codec") == "VP8", "%s: video codec %r" % (name, st.get("video_codec")))
        check(st.get("audio_packets_sent") == 0, "%s sends audio before answering: %s" % (name, st))
    check(not env.door_events("answered"), "somebody answered before the monitors were asked to")
    r = env.mon_ctl("mon1", "answer")
    check(r.get("result") == "answered", "mon1 answer: %s" % r)
    env.wait_door_event("answered", 10)
    mon3.wait()
    mon3.expect_ok()
    st2 = env.wait_monitor("mon2", lambda st: st.get("call") == "ended", "the end of its ringing")
    check(st2.get("reason") == "answered elsewhere",
          "mon2 ended with %r, not 'answered elsewhere'" % st2.get("reason"))
    st1 = env.wait_monitor("mon1", lambda st: st.get("audio_packets_sent", 0) > 25 and
                           st.get("audio_packets_received", 0) > 25, "two-way audio", 10)
    check(st1.get("call") == "answered", "mon1 is %s after answering" % st1.get("call"))
    deadline = time.time() + 5
    while time.time() < deadline and env.door_ctl("status").get("audio_packets_received", 0) == 0:
        time.sleep(0.1)
    check(env.door_ctl("status").get("audio_packets_received", 0) > 0,
          "mon1's audio never reached the door")
    # Mic off: the stream goes on (silence), as Linphone's mute does.
    check(env.mon_ctl("mon1", "mic", "off").get("result") == "mic off", "mic off refused")
    sent = env.mon_ctl("mon1", "status").get("audio_packets_sent", 0)
    st1 = env.wait_monitor("mon1", lambda st: st.get("audio_packets_sent", 0) > sent + 10,
                           "audio with the mic off", 5)
    check(st1.get("mic") == "off", "status mic %r" % st1.get("mic"))
    check(env.mon_ctl("mon1", "mic", "on").get("result") == "mic on", "mic on refused")
    r = env.mon_ctl("mon1", "action", "light")
    check("no code for light" in r.get("error", ""), "light without a code: %s" % r)
    r = env.mon_ctl("mon1", "action", "open-door")
    check("result" in r, "mon1 action open-door: %s" % r)
    deadline = time.time() + 10
    while time.time() < deadline and not env.door_events("action"):
        time.sleep(0.1)
    time.sleep(1.5)  # anything more would show up now
    actions = [e["details"] for e in env.door_events("action")]
    log("door actions: %s" % actions)
    check(actions == ["via=rfc4733 from=sip:mon1@%s action=door result=done" % DOMAIN],
          "expected the door's action once, by mon1 over RFC 4733: %s" % actions)
    check(env.door_ctl("status").get("actions_run") == 1, "the door ran its action more than once")
    snap = os.path.join(env.dir, "mon1-snapshot.png")
    r = env.mon_ctl("mon1", "snapshot", snap)
    check(r.get("result") == snap, "snapshot: %s" % r)
    check(png_size(snap) == (320, 240), "the snapshot is %sx%s, not 320x240" % png_size(snap))
    r = env.mon_ctl("mon1", "hangup")
    check(r.get("result") == "hung up", "mon1 hangup: %s" % r)
    st1 = env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "the end of the call")
    check(st1.get("reason") == "hung up", "mon1 ended with %r" % st1.get("reason"))
    ended = env.wait_door_event("ended", 5)
    log("door: %s" % ended[0]["details"])
    env.wait_relay_free()
    # After the call: a snapshot of what it showed still works; mon2 can say so too.
    r = env.mon_ctl("mon2", "snapshot", os.path.join(env.dir, "mon2-snapshot.png"))
    check("result" in r, "mon2's snapshot after its ringing: %s" % r)
    check_milestones(env, "mon1", ["registered", "ringing", "early", "first_rtp", "first_frame",
                                   "answered", "action_sent", "ended"])
    evs = check_milestones(env, "mon2", ["ringing", "early", "first_rtp", "first_frame", "ended"])
    check([e for e in evs if e.get("event") == "ended" and
           e.get("reason") == "answered elsewhere"], "mon2's ended line lacks the reason")
    check_no_code_in_logs(env, "mon1", "mon2")
    for name in ("mon1", "mon2"):
        check(env.monitors[name].running(), "%s is no longer running" % name)
    # Stopped, a monitor and the door take their bindings away (un-REGISTER,
    # RFC 3261 section 10.2.2, answering the proxy's challenge).
    env.monitors["mon2"].stop()
    env.door_proc.stop()
    aors = {r.get("aor") for r in env.ctl("registrations").get("registrations")}
    check("sip:mon2@%s" % DOMAIN not in aors and "sip:door@%s" % DOMAIN not in aors
          and "sip:mon1@%s" % DOMAIN in aors, "bindings after mon2 and the door stopped: %s"
          % sorted(aors))


def case_monitor_calls_door(env):
    """Seed scenario 2 with portier-monitor (issue 5): mon1 calls the door by
    its [doors] name, the door auto-answers, mon1 decodes its H.264 camera;
    open-door as SIP INFO application/dtmf-relay runs the door's action once;
    mon2 sends the code as a SIP MESSAGE with no call; the hang-up frees every
    relay port. Then a ring that mon2 declines (mon1 rings on) and the door
    gives up: mon1 says "missed"."""
    env.start_proxy()
    door_with_monitor_access(env, codec="h264")
    env.start_monitor("mon1", "mon1", 0, 0, extra="[actions]\nmethod = info\n")
    env.start_monitor("mon2", "mon2", 1, 1, extra="[actions]\nmethod = message\n")
    doors = env.mon_ctl("mon1", "doors").get("doors")
    check(doors == [{"name": "front", "aor": "sip:door@%s" % DOMAIN}], "doors: %s" % doors)
    r = env.mon_ctl("mon1", "call", "back")
    check("error" in r, "a call to a door not in [doors]: %s" % r)
    r = env.mon_ctl("mon1", "call", "front")
    check(r.get("result", "").startswith("calling"), "mon1 call front: %s" % r)
    st = env.wait_monitor("mon1", lambda st: st.get("call") == "answered" and
                          st.get("frames_decoded", 0) > 0, "the door's camera", 15)
    log("mon1: %d frames of %s (%s), first frame %s ms after the INVITE"
        % (st["frames_decoded"], st["video_codec"], st["video_decoder"], st["first_frame_ms"]))
    check(st.get("video_codec") == "H264", "video codec %r" % st.get("video_codec"))
    check(st.get("direction") == "outgoing", "direction %r" % st.get("direction"))
    env.wait_door_event("auto_answered", 5)
    r = env.mon_ctl("mon1", "call", "front")
    check("error" in r, "a second call while in a call: %s" % r)
    r = env.mon_ctl("mon1", "action", "open-door")
    check("result" in r, "mon1 action open-door: %s" % r)
    r = env.mon_ctl("mon2", "action", "open-door")
    check("result" in r, "mon2 action open-door: %s" % r)
    deadline = time.time() + 10
    while time.time() < deadline and len(env.door_events("action")) < 2:
        time.sleep(0.1)
    time.sleep(1.0)
    actions = sorted(e["details"] for e in env.door_events("action"))
    log("door actions: %s" % actions)
    check(actions == ["via=info from=sip:mon1@%s action=door result=done" % DOMAIN,
                      "via=message from=sip:mon2@%s action=door result=done" % DOMAIN],
          "expected the door's action once by INFO from mon1 and once by MESSAGE from mon2: %s"
          % actions)
    st = env.wait_monitor("mon1", lambda st: st.get("audio_packets_received", 0) > 10 and
                          st.get("audio_packets_sent", 0) > 10, "two-way audio")
    r = env.mon_ctl("mon1", "hangup")
    check(r.get("result") == "hung up", "mon1 hangup: %s" % r)
    env.wait_door_event("ended", 5)
    env.wait_relay_free()
    check_milestones(env, "mon1", ["calling", "answered", "first_rtp", "first_frame",
                                   "action_sent", "ended"])
    # A ring nobody answers: mon2 declines (486: mon1 keeps ringing), then the
    # door gives up: mon1's call was "missed" (a CANCEL without cause=200).
    check(env.door_ctl("ring").get("result") == "calling", "the second ring did not start")
    for name in ("mon1", "mon2"):
        env.wait_monitor(name, lambda st: st.get("call") == "early", "the second ring", 10)
    r = env.mon_ctl("mon2", "decline")
    check(r.get("result") == "declined", "mon2 decline: %s" % r)
    st = env.wait_monitor("mon2", lambda st: st.get("call") == "ended", "the end of its ringing")
    check(st.get("reason") == "declined", "mon2 ended with %r" % st.get("reason"))
    time.sleep(0.5)
    check(env.mon_ctl("mon1", "status").get("call") == "early", "mon1 stopped ringing on a decline")
    check(env.door_ctl("hangup").get("result") == "hung up", "the door did not give up")
    st = env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "the end of its ringing")
    check(st.get("reason") == "missed", "mon1 ended with %r, not 'missed'" % st.get("reason"))
    env.wait_relay_free()
    check_no_code_in_logs(env, "mon1", "mon2")


def case_monitor_bad_input(env):
    """portier-monitor never falls over on what the network sends (issue 5);
    started before the proxy, it registers once the proxy is up:
    an INVITE with malformed SDP gets 488, an offerless one 488, garbage
    datagrams nothing; an INVITE while it rings gets 486; an INFO with a body
    it does not know gets 415; then it still rings and decodes a good call."""
    # The monitor starts before the proxy: it registers again with backoff.
    # The bad INVITEs come straight from this script, so it trusts 127.0.0.1
    # (any port) as it does its proxy, and takes identities without the
    # proxy's proof (as with another proxy): the SDP checks are what is tested
    # here; mon2 keeps the default, the proxy only and its proof.
    env.start_monitor("mon1", "mon1", 0, 0, wait_registered=False, trusted=LOCAL,
                      account_extra="identity-proof = false")
    time.sleep(1.0)
    env.start_proxy()
    st = env.wait_monitor("mon1", lambda st: st.get("registered"), "registration", 15)
    env.start_monitor("mon2", "mon2", 1, 1)
    port = env.ports.sip(0)
    # 0. A well-formed call straight to mon2's contact, naming the door in
    # P-Asserted-Identity: not through the proxy, so 403 (RFC 3325 section 3).
    good_sdp = ("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                "m=video 40000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n")
    replies = udp_exchange(env.ports.sip(1), _req(
        "INVITE", "sip:mon2@%s:%d" % (LOCAL, env.ports.sip(1)), env,
        extra="Content-Type: application/sdp\r\nP-Asserted-Identity: <sip:door@%s>" % DOMAIN,
        body=good_sdp), poll=0.2)
    codes = sorted({int(m.group(1)) for r in replies
                    for m in [re.match(rb"SIP/2.0 (\d{3})", r)] if m})
    log("INVITE to mon2 not through the proxy: %s" % codes)
    check(403 in codes and not [c for c in codes if 180 <= c < 300],
          "mon2 answered a call that skipped the proxy with %s, not 403" % codes)
    check(env.mon_ctl("mon2", "status").get("call") == "idle", "mon2 rang for it")
    check([e for e in env.monitor_events("mon2") if e.get("event") == "refused"
           and e.get("reason") == "not through the proxy"], "mon2 logged no refusal")
    # 1. Malformed SDP (the m= lines sofia-sip's own parser would choke on), straight to the monitor.
    def invite_codes(name, body, ctype=True):
        replies = udp_exchange(port, _req("INVITE", "sip:mon1@%s:%d" % (LOCAL, port), env,
                                          extra="Content-Type: application/sdp" if ctype else "",
                                          body=body), poll=0.2)
        codes = sorted({int(m.group(1)) for r in replies
                        for m in [re.match(rb"SIP/2.0 (\d{3})", r)] if m})
        log("INVITE with %s: %s" % (name, codes))
        return codes
    for name, sdp in (("a malformed m= line",
                       "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                       "t=0 0\r\nm=video 99999999999999 RTP/AVP 96 96 96\r\n"),
                      ("a body that is not SDP", "this is not SDP at all\r\n"),
                      ("SDP without media", "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"),
                      # issue 11: an address family our IPv4 media cannot serve
                      ("an IPv6 address", "v=0\r\no=x 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\n"
                       "t=0 0\r\nm=video 40000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n")):
        codes = invite_codes(name, sdp)
        check(488 in codes, "an INVITE with %s got %s, not 488" % (name, codes))
    codes = invite_codes("no offer", "", ctype=False)
    check(488 in codes, "an offerless INVITE got %s, not 488" % codes)
    for junk in (b"\x00\xff" * 300, b"INVITE\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n",
                 b"INVITE sip:x SIP/2.0\r\nContent-Length: 99999\r\n\r\nv=0"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as so:
            so.sendto(junk, (LOCAL, port))
    time.sleep(0.5)
    check(env.monitors["mon1"].running(), "portier-monitor died on garbage")
    check(env.mon_ctl("mon1", "status").get("call") == "idle", "the bad INVITEs left a call behind")
    # 2. A good call from sipp through the proxy; a second INVITE while it rings: 486.
    door = env.door("door_call", "door_call_monitor.xml", "mon1", 3, timeout=30)
    st = env.wait_monitor("mon1", lambda st: st.get("call") == "early", "ringing", 10)
    busy = env.door("door_busy", "door_call_busy.xml", "mon1", 4, timeout=15)
    busy.wait()
    busy.expect_ok()
    r = env.mon_ctl("mon1", "answer")
    check(r.get("result") == "answered", "answer: %s" % r)
    door.wait()
    door.expect_ok()
    info = door.received(lambda m: m.status == 415 and m.cseq_method() == "INFO")
    check(info and "application/dtmf-relay" in (info[0].hdr("Accept") or ""),
          "an INFO with an unknown body got no 415 with Accept: %s"
          % [m.first for m in door.messages()[-8:]])
    ok = door.received(lambda m: m.status == 200 and m.cseq_method() == "INFO")
    check(ok, "the INFO dtmf-relay got no 200")
    st = env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "the end of the call")
    check(st.get("reason") == "remote hung up", "ended with %r" % st.get("reason"))
    evs = [e.get("event") for e in env.monitor_events("mon1")]
    check("busy" in evs and evs.count("refused") >= 4, "busy/refused event lines: %s" % evs)
    check(env.monitors["mon1"].running(), "portier-monitor is no longer running")


def rtcp_plis(packets):
    """The RTCP PLIs (RFC 4585 section 6.3.1: PT 206, FMT 1) in compound packets."""
    found = []
    for t, _, data in packets:
        at = 0
        while at + 4 <= len(data):
            fmt, pt = data[at] & 0x1f, data[at + 1]
            length = (struct.unpack("!H", data[at + 2:at + 4])[0] + 1) * 4
            if pt == 206 and fmt == 1:
                found.append(t)
            at += length
    return found


def case_monitor_keyframe_request(env):
    """A late keyframe (issue 5): while mon1 rings, the caller's VP8 reaches it
    through the relay but holds no keyframe, so nothing decodes; ~300 ms after
    the first packet mon1 asks for one by RTCP PLI (through the relay to the
    caller's RTCP port) and by SIP INFO picture_fast_update (RFC 5168) in the
    early dialog."""
    env.start_proxy()
    env.start_monitor("mon1", "mon1", 0, 0)
    rtcp = RtpPeer("caller_video_rtcp", env.ports.media(3) + 3)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        door = env.door("door_call", "door_call_monitor.xml", "mon1", 3, timeout=30)
        env.wait_monitor("mon1", lambda st: st.get("call") == "early", "ringing", 10)
        relay_video = None
        deadline = time.time() + 5
        while time.time() < deadline and relay_video is None:
            for m in door.received(lambda m: m.status == 183 and "m=video" in m.body):
                relay_video = int(re.search(r"m=video (\d+)", m.body).group(1))
            time.sleep(0.1)
        check(relay_video, "the caller got no 183 with SDP")
        # VP8 inter frames only (payload descriptor S=1, then a frame tag with P=1).
        for seq in range(1, 46):
            packet = (bytes([0x80, 0x80 | 96]) + struct.pack("!HII", seq, seq * 6000, 0x7e57) +
                      b"\x10\x01\x00\x00" + b"\x00" * 60)
            sender.sendto(packet, (LOCAL, relay_video))
            time.sleep(1 / 15)
        st = env.wait_monitor("mon1", lambda st: st.get("keyframe_requests", 0) >= 1,
                              "a keyframe request", 5)
        log("mon1: %d video packets, %d frames, %d keyframe requests"
            % (st["video_packets_received"], st["frames_decoded"], st["keyframe_requests"]))
        check(st.get("frames_decoded") == 0, "frames decoded without a keyframe: %s" % st)
        r = env.mon_ctl("mon1", "answer")
        check(r.get("result") == "answered", "answer: %s" % r)
        door.wait()
        door.expect_ok()
    finally:
        sender.close()
        rtcp.close()
    infos = door.received(lambda m: m.method == "INFO")
    check([m for m in infos if "picture_fast_update" in m.body and
           "application/media_control+xml" in (m.hdr("Content-Type") or "")],
          "no INFO picture_fast_update reached the caller: %s" % [m.first for m in infos])
    plis = rtcp_plis(rtcp.packets)
    log("caller: %d RTCP packets, %d PLIs" % (len(rtcp.packets), len(plis)))
    check(plis, "no RTCP PLI reached the caller's RTCP port")
    kinds = [e.get("event") for e in env.monitor_events("mon1")]
    check("keyframe_request" in kinds, "no keyframe_request event line: %s" % kinds)


# --------------------------------------------------------------------------
# The monitor's window (an X server of the case's own, real screenshots)
# --------------------------------------------------------------------------

class Xvfb:
    """An Xvfb of this case: its display number follows from the case's port
    block (100 + block number), so parallel cases never share one; a number
    already taken (its lock file exists) moves on by 50."""
    WIDTH, HEIGHT = 1024, 768

    def __init__(self, env):
        exe = shutil.which("Xvfb")
        if not exe:
            raise TestFailure("Xvfb not found (Debian: xvfb; scripts/install-deps.sh)")
        first = 100 + (env.ports.base - 21000) // Ports.BLOCK % 400
        self.proc = None
        for n in range(first, first + 400, 50):
            if os.path.exists("/tmp/.X%d-lock" % n) or os.path.exists("/tmp/.X11-unix/X%d" % n):
                continue
            self.display, self.socket = ":%d" % n, "/tmp/.X11-unix/X%d" % n
            proc = Proc("xvfb", [exe, self.display, "-screen", "0",
                                 "%dx%dx24" % (self.WIDTH, self.HEIGHT), "-nolisten", "tcp",
                                 "-noreset"], os.path.join(env.dir, "xvfb.log"), env.dir,
                        append=True)
            env.procs.append(proc)
            deadline = time.time() + 10
            while time.time() < deadline and proc.running() and not os.path.exists(self.socket):
                time.sleep(0.1)
            if proc.running() and os.path.exists(self.socket):
                self.proc = proc
                break
            # Another X server took the number at the same moment: the next one.
            proc.stop()
        check(self.proc, "no Xvfb could start from :%d on (xvfb.log)" % first)
        self.environ = dict(os.environ, DISPLAY=self.display)
        self.environ.pop("WAYLAND_DISPLAY", None)
        log("Xvfb on %s (pid %d)" % (self.display, self.proc.pid))

    def grab(self, path, rect=None):
        """A screenshot of the root window (or of rect x, y, w, h in it) by
        GStreamer's ximagesrc: path.png for people, and the RGB pixels (rows
        of w*3 bytes) returned as (w, h, bytes)."""
        x, y, w, h = rect or (0, 0, self.WIDTH, self.HEIGHT)
        raw = path + ".rgb"
        crop = "startx=%d starty=%d endx=%d endy=%d" % (x, y, x + w - 1, y + h - 1)
        r = subprocess.run(
            "gst-launch-1.0 -q ximagesrc display-name=%s use-damage=false show-pointer=false %s "
            "num-buffers=1 ! videoconvert ! video/x-raw,format=RGB ! tee name=t "
            "! queue ! filesink location=%s t. ! queue ! pngenc ! filesink location=%s"
            % (self.display, crop, raw, path), shell=True, capture_output=True, timeout=20)
        check(r.returncode == 0 and os.path.exists(raw), "screenshot failed: %s"
              % r.stderr.decode("utf-8", "replace")[-500:])
        data = open(raw, "rb").read()
        stride = (w * 3 + 3) & ~3  # GStreamer pads RGB rows to 4 bytes
        check(len(data) >= stride * h, "screenshot %s: %d bytes for %dx%d" % (raw, len(data), w, h))
        rows = b"".join(data[i * stride:i * stride + w * 3] for i in range(h))
        return w, h, rows

    def click(self, x, y):
        r = subprocess.run(["xdotool", "mousemove", "--sync", str(x), str(y), "click", "1"],
                           env=self.environ, capture_output=True, timeout=10)
        check(r.returncode == 0, "xdotool click at %d,%d: %s" % (x, y, r.stderr))


def picture_stats(rgb):
    """(distinct colours, luma range) of RGB pixels, every 7th pixel."""
    colours, lo, hi = set(), 255, 0
    for i in range(0, len(rgb) - 2, 21):
        r, g, b = rgb[i], rgb[i + 1], rgb[i + 2]
        colours.add((r, g, b))
        y = (299 * r + 587 * g + 114 * b) // 1000
        lo, hi = min(lo, y), max(hi, y)
    return len(colours), hi - lo


def pixels_changed(a, b):
    """The share of pixels that differ between two same-sized RGB pictures."""
    n = len(a) // 3
    diff = sum(1 for i in range(0, n * 3, 3) if a[i:i + 3] != b[i:i + 3])
    return diff / max(1, n)


def center(rect):
    return rect["x"] + rect["w"] // 2, rect["y"] + rect["h"] // 2


def case_monitor_window(env):
    """portier-monitor's window ([ui] mode = window) under an Xvfb of the case:
    the door rings; the window's title and red state line say "Ringing", only
    Answer and Hang up (and Mic) are enabled; two real screenshots of the video
    area are not uniform and differ (the door's moving test pattern in
    gtksink); a click (xdotool) on Answer answers the door (monitor answered,
    door active, the window says so), a click on Hang up ends the call; then a
    click on the door "front" calls it and its camera shows. A monitor in
    window mode without a display logs why and runs headless."""
    xvfb = Xvfb(env)
    env.start_proxy()
    door_with_monitor_access(env)
    env.start_monitor("mon1", "mon1", 0, 0, extra="[ui]\nmode = window\n", environ=xvfb.environ)
    # No display: one clear line, and the headless monitor works as ever.
    headless = dict(os.environ)
    headless.pop("DISPLAY", None)
    headless.pop("WAYLAND_DISPLAY", None)
    env.start_monitor("mon2", "mon2", 1, 1, extra="[ui]\nmode = window\n", environ=headless)
    fallback = [l for l in env.monitor_log_text("mon2").splitlines() if "mode = window" in l]
    log("mon2: %s" % fallback)
    check(len(fallback) == 1 and "no display" in fallback[0] and "headless" in fallback[0],
          "mon2 (window mode, no display) did not say once that it runs headless: %s" % fallback)
    check("no window" in env.mon_ctl("mon2", "window").get("error", ""),
          "mon2 reports a window without a display")

    def window(pred, what, timeout=10):
        deadline = time.time() + timeout
        w = None
        while time.time() < deadline:
            w = env.mon_ctl("mon1", "window")
            if "error" not in w and pred(w):
                return w
            time.sleep(0.1)
        raise TestFailure("mon1's window: %s not reached within %ds: %s"
                          % (what, timeout, json.dumps(w)))

    w = window(lambda w: w["mapped"] and w["registration_line"].startswith("Registered"),
               "shown and registered")
    check(w["call_line"] == "No call" and not w["controls"]["answer"]["sensitive"] and
          not w["controls"]["hangup"]["sensitive"] and w["doors"][0]["sensitive"],
          "mon1's idle window: %s" % json.dumps(w))

    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_monitor("mon1", lambda st: st.get("call") == "early" and
                     st.get("frames_decoded", 0) > 5, "early media with decoded video", 15)
    env.wait_monitor("mon2", lambda st: st.get("call") == "early", "ringing (headless)", 15)
    w = window(lambda w: w["ringing"] and w["video"]["sink"], "ringing with its video")
    log("mon1 window while ringing: title %r, line %r, video %s"
        % (w["title"], w["call_line"], w["video"]))
    check(w["title"] == "portier - RINGING: sip:door@%s" % DOMAIN, "title %r" % w["title"])
    check(w["call_line"] == "Ringing: sip:door@%s" % DOMAIN, "state line %r" % w["call_line"])
    enabled = sorted(k for k, c in w["controls"].items() if c["sensitive"])
    check(enabled == ["answer", "hangup", "mic"], "enabled while ringing: %s" % enabled)
    check(not w["doors"][0]["sensitive"], "the doors list is usable during a call")

    # Real pixels: the video area shows a picture, and it moves.
    v = w["video"]
    check(v["w"] >= 160 and v["h"] >= 120, "the video area is %dx%d" % (v["w"], v["h"]))
    rect = (v["x"], v["y"], v["w"], v["h"])
    shot1 = xvfb.grab(os.path.join(env.dir, "ringing-video-1.png"), rect)[2]
    colours, luma = picture_stats(shot1)
    check(colours >= 3 and luma >= 100, "the video area is uniform (%d colours, luma range %d)"
          % (colours, luma))
    changed, deadline = 0.0, time.time() + 10
    while changed <= 0.001 and time.time() < deadline:
        time.sleep(0.3)
        shot2 = xvfb.grab(os.path.join(env.dir, "ringing-video-2.png"), rect)[2]
        changed = pixels_changed(shot1, shot2)
    log("video area: %d colours, luma range %d, then %.2f%% of its pixels changed"
        % (colours, luma, 100 * changed))
    check(changed > 0.001, "the video area did not change in 10 s of screenshots")
    xvfb.grab(os.path.join(env.dir, "ringing-screen.png"))

    # Answer by a click.
    check(env.door_ctl("status").get("call") == "early", "the door is not in its early dialog")
    xvfb.click(*center(w["controls"]["answer"]))
    env.wait_monitor("mon1", lambda st: st.get("call") == "answered", "answered (clicked)", 10)
    env.wait_door_event("answered", 10)
    deadline = time.time() + 10
    while time.time() < deadline and env.door_ctl("status").get("call") != "active":
        time.sleep(0.1)
    check(env.door_ctl("status").get("call") == "active", "the door's call is not active: %s"
          % env.door_ctl("status"))
    st2 = env.wait_monitor("mon2", lambda st: st.get("call") == "ended", "the end of its ringing")
    check(st2.get("reason") == "answered elsewhere", "mon2 ended with %r" % st2.get("reason"))
    w = window(lambda w: w["call_line"].startswith("Answered"), "answered")
    enabled = sorted(k for k, c in w["controls"].items() if c["sensitive"])
    check(enabled == ["hangup", "mic", "open-door"], "enabled once answered: %s" % enabled)
    check(not w["ringing"] and "RINGING" not in w["title"], "still ringing: %s" % w["title"])

    # Hang up by a click.
    xvfb.click(*center(w["controls"]["hangup"]))
    st1 = env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "ended (clicked)", 10)
    check(st1.get("reason") == "hung up", "mon1 ended with %r" % st1.get("reason"))
    env.wait_door_event("ended", 10)
    w = window(lambda w: w["call_line"] == "Hung up", "hung up")
    check(not w["controls"]["hangup"]["sensitive"] and w["doors"][0]["sensitive"],
          "after the call: %s" % json.dumps(w["controls"]))
    env.wait_relay_free()
    snap = os.path.join(env.dir, "mon1-snapshot.png")
    check(env.mon_ctl("mon1", "snapshot", snap).get("result") == snap, "no snapshot in window mode")
    check(png_size(snap) == (320, 240), "the snapshot is %sx%s" % png_size(snap))

    # The doors list: a click on "front" calls it; the door answers mon1 and shows its camera.
    check(w["doors"][0]["name"] == "front", "doors list: %s" % w["doors"])
    xvfb.click(*center(w["doors"][0]))
    env.wait_monitor("mon1", lambda st: st.get("call") == "answered" and
                     st.get("direction") == "outgoing" and st.get("frames_decoded", 0) > 5,
                     "the door's camera (called from the doors list)", 15)
    w = window(lambda w: w["call_line"] == "Watching: sip:door@%s" % DOMAIN, "watching the door")
    v = w["video"]
    shot = xvfb.grab(os.path.join(env.dir, "watching-video.png"),
                     (v["x"], v["y"], v["w"], v["h"]))[2]
    colours, luma = picture_stats(shot)
    check(colours >= 3 and luma >= 100, "the door's camera is not shown (%d colours, luma %d)"
          % (colours, luma))
    xvfb.click(*center(w["controls"]["hangup"]))
    env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "the end of watching", 10)
    env.wait_relay_free()
    for name in ("mon1", "mon2"):
        check(env.monitors[name].running(), "%s is no longer running" % name)
    check_no_code_in_logs(env, "mon1", "mon2")


# --------------------------------------------------------------------------
# issue 11: digest authentication, brute force, stateless challenges
# --------------------------------------------------------------------------

# A user of another domain in the users file, with its own password.
OTHER_DOMAIN_USER = ("alice@other.example", "Other-alice-Pw-6620")
# A user stored only as a SHA-256 HA1 (of "sha2only:home.example:<password>").
SHA2_USER = ("sha2only", "Sha2only-Pw-8871")


def _with_config(env, auth="", users=""):
    """Adds keys to [module::Authentication] and lines to the users file of every
    proxy start of this case."""
    write = env.write_config

    def write_config():
        path = write()
        with open(path) as f:
            text = f.read()
        text = text.replace("nonce-expires = 3600\n", "nonce-expires = 3600\n" + auth)
        with open(path, "w") as f:
            f.write(text)
        if users:
            with open(os.path.join(env.dir, "users.conf"), "a") as f:
                f.write(users)
        return path
    env.write_config = write_config


class _RawUA(PyUA):
    """A PyUA of `host` (the attacker's 127.0.0.2 or a resident's 127.0.0.1)
    that builds its own requests: parsed status lines and headers back."""

    def __init__(self, env, host):
        PyUA.__init__(self, "raw", host, 0, env.ports.proxy)
        self.env = env
        self.host = host
        self.cseq = 0
        self.call_id = "raw-%d-%s@%s" % (self.port, int(time.time() * 1e6), host)
        env.raw_uas = getattr(env, "raw_uas", []) + [self]

    def request(self, method, ruri, user, auth=None, auth_header="Authorization", wait=1.0,
                new_call=False, expect_reply=True):
        """Sends one request, returns the responses as (status, headers dict of
        lists, first line) in order; waits at most `wait` (less once a final
        response came)."""
        self.cseq += 1
        call_id = self.call_id + ("-%d" % self.cseq if new_call else "")
        lines = ["%s %s SIP/2.0" % (method, ruri),
                 "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-raw-%d-%d;rport"
                 % (self.host, self.port, self.port, self.cseq),
                 "From: <sip:%s@%s>;tag=raw%d" % (user, DOMAIN, self.port),
                 "To: <%s>" % (("sip:%s@%s" % (user, DOMAIN)) if method == "REGISTER"
                               else ruri),
                 "Call-ID: %s" % call_id,
                 "CSeq: %d %s" % (self.cseq, method),
                 "Contact: <sip:%s@%s:%d>" % (user, self.host, self.port),
                 "Max-Forwards: 70"]
        if method == "REGISTER":
            lines.append("Expires: 600")
        if auth:
            lines.append("%s: %s" % (auth_header, auth))
        self.send("\r\n".join(lines))  # with Content-Length: 0
        out = []
        end = time.time() + wait
        while time.time() < end and not (out and out[-1][0] >= 200):
            self._read(end, first_only=True)
            got, self.pending = self.pending, []
            for m in got:
                # Only this request's answers (an earlier one's may still arrive).
                if m.status is None or m.cseq()[0] != self.cseq:
                    continue
                hdrs = {}
                for name, value in m.headers:
                    hdrs.setdefault(name.lower(), []).append(value)
                out.append((m.status, hdrs, m.first))
        if expect_reply:
            check(out, "%s from %s: no response" % (method, self.host))
        return out

    def challenge(self, user, method="REGISTER", ruri="sip:" + DOMAIN):
        """A fresh MD5 challenge, parsed (RFC 8760: one challenge per algorithm)."""
        res = self.request(method, ruri, user)
        status, hdrs, first = res[-1]
        name = "www-authenticate" if method == "REGISTER" else "proxy-authenticate"
        check(status in (401, 407), "%s without credentials got %s, expected a challenge"
              % (method, first))
        ch = find_challenge(hdrs.get(name, []))
        check(ch and "nonce" in ch, "no MD5 challenge in %s" % hdrs.get(name))
        return ch


def _bindings_from(env, user, host):
    return [r for r in env.bindings_for(user) if contact_hostport(r.get("contact"))[1] == host]


def _auth_lines(env, what="auth failure: src=%s" % ATTACKER):
    return [l for l in env.proxy_log_text().splitlines() if what in l]


def case_auth_cross_domain_user(env):
    """Issue 11 digest item 1: alice@other.example (its own password, in the users
    file) answers the challenge for realm home.example from 127.0.0.2: it must not
    register alice@home.example (the full user@domain must match the identity)."""
    _with_config(env, users="%s clrtxt:%s ;\n" % OTHER_DOMAIN_USER)
    env.start_proxy()
    attacker = _RawUA(env, ATTACKER)
    ch = attacker.challenge("alice")
    username, password = OTHER_DOMAIN_USER
    res = attacker.request("REGISTER", "sip:" + DOMAIN, "alice",
                           auth=digest_auth(username, password, ch, "REGISTER", "sip:" + DOMAIN))
    log("REGISTER alice@%s with username=%s -> %s" % (DOMAIN, username, res[-1][2]))
    check(res[-1][0] != 200, "alice@other.example's password registered alice@%s: %s"
          % (DOMAIN, res[-1][2]))
    check(not _bindings_from(env, "alice", ATTACKER),
          "a binding of alice to the attacker exists: %s" % env.bindings_for("alice"))
    # The real alice, from 127.0.0.1, still registers.
    env.register("alice", 0).expect_ok()
    check(has_binding(env.bindings_for("alice"), "alice", env.ports.sip(0)),
          "alice (127.0.0.1) could not register afterwards")
    env.assert_no_secrets()
    check(password not in env.proxy_log_text(), "the other domain's password is in the log")


def case_auth_uri_mismatch(env):
    """Issue 11 digest item 2, RFC 2617 section 3.2.2.5: credentials whose digest
    uri is not the Request-URI get 400, even with the right password; the same
    URI spelled otherwise (RFC 3261 section 19.1.4: host case) is accepted."""
    env.start_proxy()
    ua = _RawUA(env, ATTACKER)
    ch = ua.challenge("alice")
    other = "sip:door@" + DOMAIN
    res = ua.request("REGISTER", "sip:" + DOMAIN, "alice",
                     auth=digest_auth("alice", USERS["alice"], ch, "REGISTER", other))
    log("REGISTER sip:%s with uri=%s -> %s" % (DOMAIN, other, res[-1][2]))
    check(res[-1][0] == 400, "digest uri %s for Request-URI sip:%s: %s, expected 400"
          % (other, DOMAIN, res[-1][2]))
    check(not _bindings_from(env, "alice", ATTACKER), "the mismatched credentials registered")
    # Same URI, other spelling: compared as URIs, not bytes.
    ua2 = _RawUA(env, LOCAL)
    ch = ua2.challenge("alice")
    res = ua2.request("REGISTER", "sip:" + DOMAIN, "alice",
                      auth=digest_auth("alice", USERS["alice"], ch, "REGISTER",
                                       "sip:" + DOMAIN.upper()))
    check(res[-1][0] == 200, "digest uri sip:%s for sip:%s: %s, expected 200"
          % (DOMAIN.upper(), DOMAIN, res[-1][2]))
    # An INVITE too: the credentials of a call to the door do not open another target.
    ch = ua2.challenge("mon1", "INVITE", "sip:%s@%s" % (GROUP, DOMAIN))
    res = ua2.request("INVITE", "sip:%s@%s" % (GROUP, DOMAIN), "mon1",
                      auth=digest_auth("mon1", USERS["mon1"], ch, "INVITE", other),
                      auth_header="Proxy-Authorization")
    log("INVITE sip:%s@%s with uri=%s -> %s" % (GROUP, DOMAIN, other, res[-1][2]))
    check(res[-1][0] == 400, "INVITE with digest uri %s: %s, expected 400" % (other, res[-1][2]))
    env.assert_no_secrets()


def case_auth_no_qop_refused(env):
    """Issue 11 digest item 3: an RFC 2069 style response (no qop, so no nc) with
    the right password is refused: it could be replayed for the nonce's lifetime
    with another Contact (RFC 7616 section 5.5)."""
    env.start_proxy()
    ua = _RawUA(env, ATTACKER)
    ch = ua.challenge("alice")
    auth = digest_auth("alice", USERS["alice"], ch, "REGISTER", "sip:" + DOMAIN, qop="")
    res = ua.request("REGISTER", "sip:" + DOMAIN, "alice", auth=auth)
    log("REGISTER without qop -> %s" % res[-1][2])
    check(res[-1][0] == 401, "a response without qop got %s, expected 401" % res[-1][2])
    check(not env.bindings_for("alice"), "a response without qop registered alice")
    lines = _auth_lines(env)
    check(lines and "reason=no-qop" in lines[-1], "no 'reason=no-qop' failure line: %s" % lines)
    env.assert_no_secrets()


def case_auth_brute_force(env):
    """Issue 11 digest item 4: 300 wrong guesses from 127.0.0.2 against one nonce.
    The nonce is spent by the first; the right password with that nonce is then
    refused (from 127.0.0.2 and from 127.0.0.3); 127.0.0.2 is banned (no answer),
    the resident alice on 127.0.0.1 still registers; the log stays bounded."""
    env.start_proxy()
    attacker = _RawUA(env, ATTACKER)
    ch = attacker.challenge("alice")
    statuses = {}
    for i in range(300):
        # Once banned, nothing comes back: the rest go out without waiting.
        res = attacker.request("REGISTER", "sip:" + DOMAIN, "alice",
                               wait=0.01 if statuses.get(None, 0) >= 3 else 0.3,
                               auth=digest_auth("alice", "guess-%d" % i, ch, "REGISTER",
                                                "sip:" + DOMAIN, nc=i + 1),
                               expect_reply=False)
        key = res[-1][0] if res else None
        statuses[key] = statuses.get(key, 0) + 1
    log("300 guesses against one nonce: answers %s" % statuses)
    check(not statuses.get(200), "a wrong guess registered")
    right = digest_auth("alice", USERS["alice"], ch, "REGISTER", "sip:" + DOMAIN, nc=1000)
    # The same nonce with the right password from a third address: spent.
    third = _RawUA(env, "127.0.0.3")
    res = third.request("REGISTER", "sip:" + DOMAIN, "alice", auth=right)
    log("the right password with the guessed-at nonce, from %s -> %s" % (third.host, res[-1][2]))
    check(res[-1][0] == 401, "the nonce that saw wrong guesses took the right password: %s"
          % res[-1][2])
    check(not env.bindings_for("alice"), "alice got registered with the spent nonce")
    check(statuses.get(None), "127.0.0.2 is still answered after %d guesses" % sum(statuses.values()))
    res = attacker.request("REGISTER", "sip:" + DOMAIN, "alice", auth=right, wait=0.7,
                           expect_reply=False)
    check(not res, "banned 127.0.0.2 got an answer: %s" % [r[2] for r in res])
    # The resident, with a fresh challenge, while 127.0.0.2 is banned.
    env.register("alice", 0).expect_ok()
    check(has_binding(env.bindings_for("alice"), "alice", env.ports.sip(0)),
          "alice (127.0.0.1) could not register while 127.0.0.2 is banned")
    bans = env.ctl("bans").get("bans")
    check([b for b in bans if b.get("address") == ATTACKER],
          "portierctl bans does not list %s: %s" % (ATTACKER, bans))
    # Bounded log: a few failure lines, a ban line; the rest counted.
    lines = _auth_lines(env)
    log("%d 'auth failure' lines for 127.0.0.2; ban line: %s" % (
        len(lines), _auth_lines(env, "auth: %s banned" % ATTACKER)[:1]))
    check(1 <= len(lines) <= 5, "%d failure lines for one guesser (expected 1..5)" % len(lines))
    check(_auth_lines(env, "auth: %s banned" % ATTACKER), "no ban line in the log")
    # The failures past the log budget are summed up once (housekeeping, each second).
    deadline = time.time() + 3
    while not _auth_lines(env, "more failures from %s suppressed" % ATTACKER) \
            and time.time() < deadline:
        time.sleep(0.2)
    summary = _auth_lines(env, "more failures from %s suppressed" % ATTACKER)
    log("summary: %s" % (summary[0].split("warning: ")[-1] if summary else None))
    check(len(summary) == 1, "expected one 'N more failures from %s suppressed' line: %s"
          % (ATTACKER, summary))
    env.assert_no_secrets()


def case_auth_bans_control(env):
    """Issue 11 digest item 4: portierctl bans lists a banned source, unban
    ADDRESS and unban all lift bans (JSON replies); a lifted source is answered
    again. max-failures-per-source = 3."""
    _with_config(env, auth="max-failures-per-source = 3\n")
    env.start_proxy()
    check(env.ctl("bans") == {"bans": []}, "bans not empty at start: %s" % env.ctl("bans"))

    def ban(ua):
        for i in range(6):
            ch = ua.challenge("mon1")
            ua.request("REGISTER", "sip:" + DOMAIN, "mon1", wait=0.3, expect_reply=False,
                       auth=digest_auth("mon1", WRONG_PASSWORD, ch, "REGISTER", "sip:" + DOMAIN))
            if any(b.get("address") == ua.host for b in env.ctl("bans")["bans"]):
                return
            time.sleep(1.1)  # the back-off after a failure (failure-backoff = 1, doubling)
        raise TestFailure("%s not banned after 6 wrong answers: %s" % (ua.host, env.ctl("bans")))

    attacker = _RawUA(env, ATTACKER)
    ban(attacker)
    bans = env.ctl("bans")["bans"]
    log("bans: %s" % bans)
    check(len(bans) == 1 and bans[0]["address"] == ATTACKER and bans[0]["seconds_left"] > 0,
          "bans: %s" % bans)
    check(not attacker.request("OPTIONS", "sip:" + DOMAIN, "x", wait=0.5, expect_reply=False),
          "banned %s is answered" % ATTACKER)
    check(env.ctl("stats").get("banned") == 1, "stats: %s" % env.ctl("stats"))
    r = env.ctl_raw("unban", "127.0.0.9")
    check(r and "error" in json.loads(r[1]), "unban of an address not banned: %r" % (r,))
    check(env.ctl("unban", ATTACKER) == {"ok": True, "unbanned": ATTACKER}, "unban failed")
    check(env.ctl("bans") == {"bans": []}, "bans after unban: %s" % env.ctl("bans"))
    attacker.challenge("mon1")  # answered again
    ban(attacker)
    res = env.ctl("unban", "all")
    check(res.get("ok") is True and res.get("unbanned") == 1, "unban all: %s" % res)
    check(env.ctl("bans") == {"bans": []}, "bans after unban all: %s" % env.ctl("bans"))
    attacker.challenge("mon1")
    env.assert_no_secrets()


def case_auth_sha256_only_user(env):
    """Issue 11 digest item 5: a user stored only as sha256: answers the MD5
    challenge (sipp speaks MD5 only): refused, and the log says why and what to do,
    without any secret."""
    user, password = SHA2_USER
    ha1 = hashlib.sha256(("%s:%s:%s" % (user, DOMAIN, password)).encode()).hexdigest()
    _with_config(env, users="%s@%s sha256:%s ;\n" % (user, DOMAIN, ha1))
    env.start_proxy()
    s = env.register(user, 0, password=password, scenario="register_badauth.xml")
    s.expect_ok()
    check(not env.registrations(), "registered: %s" % env.registrations())
    lines = _wait_auth_failure_lines(env, 1)
    log("failure line: %s" % (lines[-1].strip() if lines else None))
    check(lines and "reason=no-secret" in lines[-1], "no reason=no-secret line: %s" % lines)
    check("clrtxt" in lines[-1] and "available-algorithms" in lines[-1],
          "the no-secret line does not say what to do: %s" % lines[-1])
    text = env.proxy_log_text()
    check(password not in text and ha1 not in text, "a secret of %s is in the log" % user)
    env.assert_no_secrets()


def _proxy_rss_kb(env):
    with open("/proc/%d/status" % env.proxy.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def case_auth_invite_flood(env):
    """Issue 11, proxy availability: 3,000 unauthenticated INVITEs from 127.0.0.2
    at 1,000/s (sipp, never ACKing the 407). The 407s are stateless: the proxy's
    server transactions stay few and its RSS grows little; meanwhile a device on
    127.0.0.1 registers and a call to it is answered. Then a guesser from
    127.0.0.2 gets banned."""
    env.start_proxy()
    rss0 = _proxy_rss_kb(env)
    flood = env.sipp("flood", "invite_flood.xml", 5, [["door", GROUP]] * 3000, timeout=30,
                     extra=["-i", ATTACKER, "-r", "1000", "-l", "3000", "-default_behaviors",
                            "-bye,-abortunexp"])
    time.sleep(1.0)
    # During the flood: a device registers and a call is answered.
    register_devices(env, [("mon1", 0), ("door", 3)])
    mon1 = env.uas("mon1", "uas_early_answer.xml", 0)
    door = env.door("door", "door_call.xml", GROUP, 4)
    peak_irqs = 0
    deadline = time.time() + 30
    while flood.proc.running() and time.time() < deadline:
        peak_irqs = max(peak_irqs, env.ctl("stats").get("server_transactions", 0))
        time.sleep(0.2)
    flood.wait()
    wait_all([door, mon1])
    sent = len(flood.sent(lambda m: m.method == "INVITE"))
    got = len(flood.received(lambda m: m.status == 407))
    rss1 = _proxy_rss_kb(env)
    log("flood: %d INVITEs sent, %d 407 back; peak server transactions %d; RSS %d -> %d kB"
        % (sent, got, peak_irqs, rss0, rss1))
    check(sent >= 2000, "sipp sent only %d INVITEs" % sent)
    check(got >= sent * 0.9, "only %d of %d INVITEs were challenged" % (got, sent))
    ok = door.received(lambda m: m.status == 200 and m.cseq_method() == "INVITE")
    check(ok, "the call during the flood was not answered")
    # Before: one nta transaction per INVITE, kept 32 s (thousands here).
    check(peak_irqs < 50, "%d server transactions during the flood (stateless 407s expected)"
          % peak_irqs)
    check(rss1 - rss0 < 20 * 1024, "RSS grew by %d kB during the flood" % (rss1 - rss0))
    # Then a source that keeps failing is banned and no longer answered.
    guess = env.sipp("guess", "invite_badauth.xml", 6, [["door", WRONG_PASSWORD, GROUP]] * 40,
                     timeout=8, auth_uri="%s@%s" % (GROUP, DOMAIN),
                     extra=["-i", ATTACKER, "-r", "20", "-default_behaviors", "-bye,-abortunexp"])
    guess.wait()
    bans = env.ctl("bans")["bans"]
    log("after the guesser: bans %s" % bans)
    check(any(b.get("address") == ATTACKER for b in bans), "guesser %s not banned: %s"
          % (ATTACKER, bans))
    # The resident still registers.
    env.register("mon1", 0).expect_ok()
    env.wait_no_calls()
# issue 11: registrar input, restart safety, durable registrations
# --------------------------------------------------------------------------

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


def registrations_strict(env):
    """portierctl registrations, checked to be valid UTF-8 and valid JSON
    (RFC 8259 section 8.1) before it is parsed."""
    r = subprocess.run([env.args.ctl, "--socket", env.socket, "registrations"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
    check(r.returncode == 0, "portierctl registrations exited %d" % r.returncode)
    try:
        text = r.stdout.decode("utf-8", "strict")
    except UnicodeDecodeError as e:
        raise TestFailure("portierctl registrations printed invalid UTF-8 (%s): %r"
                          % (e, r.stdout[:300]))
    try:
        regs = json.loads(text)["registrations"]
    except (ValueError, KeyError) as e:
        raise TestFailure("portierctl registrations printed invalid JSON (%s): %r"
                          % (e, text[:300]))
    return regs


def _contact_listed(env, user, uri):
    aor = "sip:%s@%s" % (user, DOMAIN)
    return [r for r in registrations_strict(env) if r.get("aor") == aor and r.get("contact") == uri]


def case_register_bad_q(env):
    """RFC 3261 section 20.10 / 10.3: a REGISTER whose Contact has q outside
    0..1 (or not a number) gets 400 and stores nothing, from another host
    (127.0.0.2) with valid credentials; the proxy then restarts (the state file
    holds nothing its loader refuses) and still serves a legitimate device."""
    env.start_proxy()
    uri = "sip:alice@%s:%d" % (ATTACKER, env.ports.sip(5))
    for q in ("2", "1.5", "-1", "abc", "0.1234"):
        r = sip_register(env, "alice", "<%s>;q=%s" % (uri, q), src=ATTACKER,
                         extra=["Expires: 600"])
        log("REGISTER ;q=%s from %s -> %s" % (q, ATTACKER, r.split(b"\r\n", 1)[0] if r else None))
        check(r is not None and status_of(r) == 400,
              "REGISTER with ;q=%s answered %s, expected 400 (RFC 3261 section 20.10: q is 0 to 1)"
              % (q, r.split(b"\r\n", 1)[0] if r else "nothing"))
    check(not env.bindings_for("alice"), "a ;q= outside 0..1 was stored: %s" % env.bindings_for("alice"))
    r = sip_register(env, "alice", "<%s>;q=0.5" % uri, src=ATTACKER, extra=["Expires: 600"])
    check(r is not None and status_of(r) == 200, "REGISTER ;q=0.5 answered %r" % (r[:80] if r else r))
    b = _contact_listed(env, "alice", uri)
    check(b and b[0].get("q") == 0.5, "q=0.5 binding listed as %s" % b)

    # The reboot the attack aimed at: the proxy comes back with the binding.
    env.stop_proxy(expect_clean=True)
    env.start_proxy()
    check(_contact_listed(env, "alice", uri), "alice's q=0.5 binding is gone after the restart")
    s = env.register("mon1", 0, 3600)
    s.expect_ok()
    check(has_binding(env.bindings_for("mon1"), "mon1", env.ports.sip(0)),
          "a legitimate REGISTER after the restart is not listed: %s" % env.registrations())
    env.assert_no_secrets()


def case_register_bad_expires(env):
    """RFC 3261 section 20.19 / 10.3 step 6: ;expires=abc, a date-form or
    malformed Expires header get 400 and leave the binding alone (before, they
    removed it); a huge value (2^32, 99999999999) is shortened to max-expires,
    never wrapped to 0 (a removal)."""
    env.start_proxy()
    uri = "sip:mon1@%s:%d" % (LOCAL, env.ports.sip(0))
    r = sip_register(env, "mon1", "<%s>" % uri, extra=["Expires: 600"])
    check(r is not None and status_of(r) == 200, "first REGISTER answered %r" % (r[:80] if r else r))
    check(_contact_listed(env, "mon1", uri), "mon1's binding not listed after its 200")
    bad = [
        ("<%s>;expires=abc" % uri, []),
        ("<%s>;expires=-1" % uri, []),
        ("<%s>" % uri, ["Expires: Thu, 01 Dec 2044 16:00:00 GMT"]),
        ("<%s>" % uri, ["Expires: Sat, 01 Jan 2000 00:00:00 GMT"]),
        ("<%s>" % uri, ["Expires: abc"]),
    ]
    for contact, extra in bad:
        r = sip_register(env, "mon1", contact, src=ATTACKER, extra=extra)
        what = "%s %s" % (contact, extra)
        log("REGISTER %s from %s -> %s" % (what, ATTACKER, r.split(b"\r\n", 1)[0] if r else None))
        check(r is not None and status_of(r) == 400,
              "REGISTER %s answered %s, expected 400 (RFC 3261 section 20.19: delta-seconds only)"
              % (what, r.split(b"\r\n", 1)[0] if r else "nothing"))
        check(_contact_listed(env, "mon1", uri), "REGISTER %s removed mon1's binding" % what)
    for huge in ("4294967296", "99999999999", "999999999999999999999999"):
        for contact, extra in (("<%s>" % uri, ["Expires: %s" % huge]),
                               ("<%s>;expires=%s" % (uri, huge), [])):
            r = sip_register(env, "mon1", contact, src=ATTACKER, extra=extra)
            check(r is not None and status_of(r) == 200, "REGISTER %s %s answered %s, expected 200"
                  % (contact, extra, r.split(b"\r\n", 1)[0] if r else "nothing"))
            b = _contact_listed(env, "mon1", uri)
            check(b and 3500 < b[0]["expires"] <= 3600,
                  "REGISTER %s %s: binding %s, expected kept and shortened to max-expires 3600 "
                  "(RFC 3261 section 10.3 step 6)" % (contact, extra, b))
            granted = re.search(r"expires=(\d+)", header_value(r, "Contact") or "")
            check(granted and int(granted.group(1)) <= 3600,
                  "the 200 grants %s, expected at most 3600" % header_value(r, "Contact"))
    log("huge expiries shortened to %s s" % _contact_listed(env, "mon1", uri)[0]["expires"])
    env.assert_no_secrets()


def case_register_require_path(env):
    """RFC 3261 section 10.3 step 2 / 8.2.2.3: the registrar does not support
    Path (RFC 3327) yet, so Require: path gets 420 Bad Extension with
    Unsupported: path, and no binding; the same for any option."""
    env.start_proxy()
    uri = "sip:alice@%s:%d" % (ATTACKER, env.ports.sip(5))
    for req, want in (("path", {"path"}), ("path, foo", {"path", "foo"}), ("outbound", {"outbound"})):
        r = sip_register(env, "alice", "<%s>" % uri, src=ATTACKER,
                         extra=["Require: %s" % req, "Expires: 600"])
        first = r.split(b"\r\n", 1)[0] if r else None
        log("REGISTER Require: %s -> %s, Unsupported: %s" % (req, first, r and header_value(r, "Unsupported")))
        check(r is not None and status_of(r) == 420,
              "REGISTER with Require: %s answered %s, expected 420 Bad Extension" % (req, first))
        got = set(x.strip() for x in (header_value(r, "Unsupported") or "").split(",") if x.strip())
        check(got == want, "420 lists Unsupported %s, expected %s" % (sorted(got), sorted(want)))
        check(not _contact_listed(env, "alice", uri), "Require: %s stored a binding" % req)
    r = sip_register(env, "alice", "<%s>" % uri, src=ATTACKER, extra=["Expires: 600"])
    check(r is not None and status_of(r) == 200, "plain REGISTER after the 420s answered %r"
          % (r[:80] if r else r))
    env.assert_no_secrets()


def case_register_binary_contact(env):
    """A Contact that is not a valid SIP URI (raw binary bytes, control
    characters) gets 400 and is not stored; portierctl registrations stays
    valid UTF-8 JSON even when other fields (User-Agent, +sip.instance) held
    such bytes (RFC 8259 section 8.1)."""
    env.start_proxy()
    p = env.ports.sip(5)
    bad = [
        b"<sip:\x01\xff\xfe\x80@" + ATTACKER.encode() + b":%d>" % p,
        b"<sip:al\xc3\x28ice@" + ATTACKER.encode() + b":%d>" % p,
        b"<sip:alice\x7f@" + ATTACKER.encode() + b":%d>" % p,
        b"<sip:alice@host\x1b[2J:%d>" % p,
    ]
    for contact in bad:
        r = sip_register(env, "alice", contact, src=ATTACKER, extra=["Expires: 600"])
        first = r.split(b"\r\n", 1)[0] if r else None
        log("REGISTER Contact %r -> %s" % (contact, first))
        # No answer at all is acceptable too (sofia may drop what it cannot parse).
        check(r is None or status_of(r) == 400,
              "REGISTER with Contact %r answered %s, expected 400" % (contact, first))
        regs = registrations_strict(env)
        check(not [x for x in regs if x.get("aor") == "sip:alice@%s" % DOMAIN],
              "a binary Contact was stored: %s" % regs)
    r = sip_register(env, "alice", '<sip:alice@%s:%d>;+sip.instance="<urn:\xff\x01>"' % (ATTACKER, p),
                     src=ATTACKER, extra=["Expires: 600"])
    check(r is None or status_of(r) == 400, "a binary +sip.instance answered %r" % (r[:80] if r else r))
    # A User-Agent is free text (TEXT-UTF8, RFC 3261 section 25.1): stored, and
    # printed escaped.
    uri = "sip:alice@%s:%d" % (ATTACKER, p)
    r = sip_register(env, "alice", "<%s>" % uri, src=ATTACKER,
                     extra=[b"User-Agent: evil\xff\xfe\x01\x1b[2J \xe2\x82\xac", "Expires: 600"])
    check(r is not None and status_of(r) == 200, "REGISTER with an odd User-Agent answered %r"
          % (r[:80] if r else r))
    b = _contact_listed(env, "alice", uri)
    check(b, "alice's binding is not listed")
    log("listed user_agent: %r" % b[0].get("user_agent"))
    check(b[0]["user_agent"].startswith("evil") and "\u20ac" in b[0]["user_agent"] and
          "\x1b" in b[0]["user_agent"],
          "user_agent printed as %r" % b[0].get("user_agent"))
    env.assert_no_secrets()


def case_crash_mid_burst(env):
    """Loses nothing: a REGISTER's 200 is sent only once the binding is on
    disk (journal, group commit). Four clients register distinct contacts as
    fast as they can; the proxy is SIGKILLed in the middle; after the restart
    every contact whose 200 a client received is listed by portierctl."""
    env.start_proxy()
    users = ["alice", "mon1", "mon2", "mon3"]
    per_user = 30  # below max-contacts-per-aor (32): nothing is evicted
    target = 50    # kill after this many 200s, with requests still in flight
    got = {u: [] for u in users}
    stop = threading.Event()
    lock = threading.Lock()
    total = [0]

    def client(user, index):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((LOCAL, 0))
        try:
            for n in range(per_user):
                if stop.is_set():
                    return
                uri = "sip:%s-%d@%s:%d" % (user, n, LOCAL, 5000 + index * 100 + n)
                r = sip_register(env, user, "<%s>" % uri, extra=["Expires: 3600"], wait=1.0,
                                 sock=s, call_id="burst-%s-%d@%s" % (user, n, LOCAL))
                if r is not None and status_of(r) == 200:
                    with lock:
                        got[user].append(uri)
                        total[0] += 1
        finally:
            s.close()

    threads = [threading.Thread(target=client, args=(u, i), daemon=True)
               for i, u in enumerate(users)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while time.time() < deadline and total[0] < target and any(t.is_alive() for t in threads):
        time.sleep(0.005)
    check(total[0] >= target, "only %d 200s in 30 s (expected %d before the kill)"
          % (total[0], target))
    log("SIGKILL to proxy pid %d after %d 200s" % (env.proxy.pid, total[0]))
    env.proxy.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(5)
    with lock:
        answered = {u: list(v) for u, v in got.items()}
    n_answered = sum(len(v) for v in answered.values())
    log("200s received by the clients: %d" % n_answered)

    env.start_proxy()
    regs = registrations_strict(env)
    listed = set((r["aor"], r["contact"]) for r in regs)
    lost = ["%s %s" % (u, c) for u, cs in answered.items() for c in cs
            if ("sip:%s@%s" % (u, DOMAIN), c) not in listed]
    log("after the restart: %d bindings listed, %d of %d answered 200 missing"
        % (len(regs), len(lost), n_answered))
    check(not lost, "%d of %d registrations answered 200 are gone after kill -9 and restart: %s"
          % (len(lost), n_answered, lost[:10]))
    # The proxy serves afterwards.
    s = env.register("mon1", 0, 3600)
    s.expect_ok()
# issue 11: forking and the media relay's answers. Callers and devices are raw
# UDP sockets driven from Python, so a case decides exactly when a device
# answers (or never does) and what its SDP leaves out.
# --------------------------------------------------------------------------

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
    proxy's digest challenge answered (RFC 3261 section 22.2)."""

    def __init__(self, env, ua, user, target, sdp, extra=""):
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
        self.branch = self._invite(digest_auth(user, USERS[user], md5, "INVITE", self.uri,
                                               cnonce="%08x" % random_id()))

    def mine(self, m):
        return m.hdr("Call-ID") == self.call_id and m.status is not None

    def _invite(self, auth):
        branch = "z9hG4bK-raw-%08x" % random_id()
        body = self.sdp.replace("\n", "\r\n")
        self.ua.send(
            "INVITE %s SIP/2.0\nVia: SIP/2.0/UDP %s:%d;branch=%s;rport\n"
            "From: <sip:%s@%s>;tag=%s\nTo: <%s>\nCall-ID: %s\nCSeq: %d INVITE\n"
            "Contact: <sip:%s@%s:%d>\nMax-Forwards: 70\n%s%s"
            "Content-Type: application/sdp\nContent-Length: %d\n\n%s"
            % (self.uri, self.ua.host, self.ua.port, branch, self.user, DOMAIN, self.from_tag,
               self.uri, self.call_id, self.cseq, self.user, self.ua.host, self.ua.port,
               "Proxy-Authorization: %s\n" % auth if auth else "",
               self.extra + "\n" if self.extra else "", len(body), self.sdp), self.proxy)
        return branch

    def _ack(self, resp):
        # RFC 3261 section 17.1.1.3: a non-2xx is ACKed hop by hop, in its transaction.
        self.ua.send("ACK %s SIP/2.0\nVia: SIP/2.0/UDP %s:%d;branch=%s;rport\nFrom: %s\nTo: %s\n"
                     "Call-ID: %s\nCSeq: %d ACK\nMax-Forwards: 70\nContent-Length: 0\n\n"
                     % (self.uri, self.ua.host, self.ua.port, self.branch, resp.hdr("From"),
                        resp.hdr("To"), self.call_id, self.cseq), self.proxy)

    def responses(self):
        return self.ua.got(lambda m: self.mine(m) and m.cseq_method() == "INVITE"
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


def _reply(dev, req, status, reason, tag="dev", extra="", body=""):
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


def _devices(env, names):
    """Registers each name (slots 0..) through sipp, then takes its SIP port
    with a RawUa."""
    slots = [(n, i) for i, n in enumerate(names)]
    register_devices(env, slots)
    return [RawUa(n, LOCAL, env.ports.sip(i)) for n, i in slots]


def _invite_of(dev, call_id=None, timeout=5):
    return dev.wait_for(lambda m: m.method == "INVITE" and
                        (call_id is None or m.hdr("Call-ID") == call_id), timeout,
                        "INVITE" + (" of " + call_id if call_id else ""))


def _cancel_answered(dev, inv, tag="dev"):
    """A device's normal answer to the CANCEL of inv: 200 for the CANCEL, 487
    for the INVITE (RFC 3261 section 9.2)."""
    can = dev.wait_for(lambda m: m.method == "CANCEL" and m.hdr("Call-ID") == inv.hdr("Call-ID"),
                       10, "CANCEL")
    _reply(dev, can, 200, "OK", tag)
    _reply(dev, inv, 487, "Request Terminated", tag)
    return can


def _wait_transactions(env, n, within=5.0):
    """portierctl stats counts n of the router's transactions (bounded wait)."""
    deadline = time.time() + within
    while True:
        got = env.ctl("stats").get("transactions")
        if got == n or time.time() > deadline:
            check(got == n, "portierctl stats: %s transactions, expected %d" % (got, n))
            return
        time.sleep(0.1)


def _warning_text(resp):
    """The warn-text of a Warning header, checked to be a valid quoted-string
    (RFC 3261 section 20.43 and 25.1: `"` and `\\` only as quoted-pairs)."""
    w = resp.hdr("Warning") or ""
    m = re.match(r'^(\d{3}) (\S+) "((?:[^"\\\r\n]|\\[^\r\n])*)"$', w)
    check(m, "%s: Warning %r is not warn-code SP warn-agent SP quoted-string" % (resp.first, w))
    return re.sub(r"\\(.)", r"\1", m.group(3))


def case_fork_timeout_silent_branch(env):
    """RFC 3261 section 16.8 / 16.7 step 6: call-fork-timeout = 3, mon1 rang
    (180) and then went silent (a monitor that lost power): it ignores the
    CANCEL until the caller has its final response. The door gets 408 at the
    fork timeout, before mon1 answered the CANCEL (it used to wait for mon1's
    transaction, 32 s more); mon2 answers its CANCEL at once. The relay's
    ports are free before mon1 answers; then mon1's 487 ends its branch, the
    transaction is gone and the proxy still serves."""
    env.fork_timeout = 3
    env.start_proxy()
    mon1, mon2 = _devices(env, ["mon1", "mon2"])
    door = RawUa("door", LOCAL)
    try:
        call = RawCall(env, door, "door", GROUP, sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"]))
        inv1, inv2 = _invite_of(mon1), _invite_of(mon2)
        _reply(mon1, inv1, 180, "Ringing", "m1")
        _reply(mon2, inv2, 180, "Ringing", "m2")
        can2 = _cancel_answered(mon2, inv2, "m2")
        can1 = mon1.wait_for(lambda m: m.method == "CANCEL", 10, "CANCEL")
        # mon1 says nothing until the door has its answer: the bound is far
        # below the 32 s the old proxy held it.
        fin = call.final(timeout=15)
        log("door: %s; mon1 has not answered its CANCEL" % fin.first)
        check(fin.status == 408, "door: final response %s, expected 408 (fork timeout)" % fin.first)
        for can in (can1, can2):
            check("cause=408" in (can.hdr("Reason") or "").replace(" ", ""),
                  "CANCEL Reason %r, expected cause=408 (fork timeout)" % can.hdr("Reason"))
        check(len(mon1.sent) == 1, "mon1 was to send only its 180 by now")
        # The door has its answer while mon1's branch is still open.
        check(env.ctl("stats").get("transactions") == 1,
              "the call's transaction is gone before mon1 answered: %s" % env.ctl("stats"))
        env.wait_relay_free()  # the failed call's ports need not wait for mon1
        _reply(mon1, can1, 200, "OK", "m1")
        _reply(mon1, inv1, 487, "Request Terminated", "m1")
        mon1.wait_for(lambda m: m.method == "ACK", 5, "ACK for mon1's 487")
        _wait_transactions(env, 0)  # torn down once its last branch ended
        env.wait_relay_free()
        env.wait_no_calls()
        # The proxy still rings the devices for the next call.
        again = RawCall(env, door, "door", "mon2", sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"]))
        inv = _invite_of(mon2, again.call_id)
        _reply(mon2, inv, 486, "Busy Here", "m2b")
        check(again.final().status == 486, "the next call did not get mon2's 486")
    finally:
        for ua in (mon1, mon2, door):
            ua.close()
    env.assert_no_secrets()


def case_fork_6xx_reason(env):
    """RFC 3261 section 16.7 steps 5-6 and RFC 3326: mon1 answers 486, mon3
    603 Decline while mon2 still rings and then ignores its CANCEL. The 603
    reaches the door at once (before mon2 answers the CANCEL), and mon2's
    CANCEL carries Reason cause=603 with text "Decline" (it said cause=600
    whatever the 6xx was). mon2's 200, crossing the CANCEL, is ACKed and
    ended with BYE by the proxy; the door never sees it."""
    env.start_proxy()
    mon1, mon2, mon3 = _devices(env, ["mon1", "mon2", "mon3"])
    door = RawUa("door", LOCAL)
    try:
        call = RawCall(env, door, "door", GROUP, sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"]))
        inv1, inv2, inv3 = _invite_of(mon1), _invite_of(mon2), _invite_of(mon3)
        _reply(mon2, inv2, 180, "Ringing", "m2")
        _reply(mon1, inv1, 486, "Busy Here", "m1")
        mon1.wait_for(lambda m: m.method == "ACK", 5, "ACK for the 486")
        _reply(mon3, inv3, 603, "Decline", "m3")
        can = mon2.wait_for(lambda m: m.method == "CANCEL", 10, "CANCEL")
        fin = call.final(timeout=15)
        log("door: %s; mon2's CANCEL Reason: %s" % (fin.first, can.hdr("Reason")))
        check(fin.status == 603, "door: final response %s, expected 603 (a 6xx wins, "
              "RFC 3261 section 16.7 step 6)" % fin.first)
        reason = (can.hdr("Reason") or "").replace(" ", "")
        check("cause=603" in reason and 'text="Decline"' in reason,
              "mon2's CANCEL Reason %r, expected cause=603 and text=\"Decline\"" % can.hdr("Reason"))
        check(not mon1.got(lambda m: m.method == "CANCEL"),
              "mon1 (already final) got a CANCEL")
        # mon2 picks up as the CANCEL arrives: its 200 crosses it. The door
        # has its 603 and can take no 200 any more (RFC 3261 section 17.2.1),
        # so the proxy ends mon2's dialog itself: ACK, then BYE.
        _reply(mon2, inv2, 200, "OK", "m2", body=sdp_body(LOCAL, ["audio 4100 RTP/AVP 0"]))
        _reply(mon2, can, 200, "OK", "m2")
        mon2.wait_for(lambda m: m.method == "ACK", 5, "ACK for the late 200")
        bye = mon2.wait_for(lambda m: m.method == "BYE", 5, "BYE for the late 200")
        _reply(mon2, bye, 200, "OK", "m2")
        check("cause=200" not in (bye.hdr("Reason") or "").replace(" ", ""),
              "the BYE says 'completed elsewhere', but nobody answered the door")
        check(not door.got(lambda m: call.mine(m) and m.status == 200),
              "the door got a 200 after its 603")
        env.wait_relay_free()
        env.wait_no_calls()
    finally:
        for ua in (mon1, mon2, mon3, door):
            ua.close()
    env.assert_no_secrets()


def case_fork_challenges_merged(env):
    """RFC 3261 section 16.7 step 7: mon1 challenges the door with 401, mon2
    with 407, each with a realm of its own. The response sent up carries
    both challenges (WWW-Authenticate and Proxy-Authenticate), unmodified."""
    env.start_proxy()
    mon1, mon2 = _devices(env, ["mon1", "mon2"])
    door = RawUa("door", LOCAL)
    try:
        call = RawCall(env, door, "door", GROUP, sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"]))
        inv1, inv2 = _invite_of(mon1), _invite_of(mon2)
        www = 'Digest realm="mon1.example", nonce="n1-5dc0", algorithm=MD5, qop="auth"'
        pxy = 'Digest realm="mon2.example", nonce="n2-77ab", algorithm=MD5, qop="auth"'
        _reply(mon1, inv1, 401, "Unauthorized", "m1", "WWW-Authenticate: " + www)
        mon1.wait_for(lambda m: m.method == "ACK", 5, "ACK for the 401")
        _reply(mon2, inv2, 407, "Proxy Authentication Required", "m2",
               "Proxy-Authenticate: " + pxy)
        fin = call.final()
        log("door: %s, WWW-Authenticate %s, Proxy-Authenticate %s"
            % (fin.first, fin.hdrs("WWW-Authenticate"), fin.hdrs("Proxy-Authenticate")))
        check(fin.status in (401, 407), "door: final response %s, expected 401 or 407"
              % fin.first)
        flat = lambda vs: [v.replace(" ", "") for v in vs]
        check(www.replace(" ", "") in flat(fin.hdrs("WWW-Authenticate")),
              "mon1's challenge is missing: %s" % fin.hdrs("WWW-Authenticate"))
        check(pxy.replace(" ", "") in flat(fin.hdrs("Proxy-Authenticate")),
              "mon2's challenge is missing: %s" % fin.hdrs("Proxy-Authenticate"))
        env.wait_relay_free()
        env.wait_no_calls()
    finally:
        for ua in (mon1, mon2, door):
            ua.close()
    env.assert_no_secrets()


def _relay_answered_call(env, offer_streams, answer_streams, check_answers):
    """The door (RawUa + RTP socket) calls mon1 with offer_streams; mon1
    answers 200 with answer_streams; check_answers(inv_sdp, ok) looks at
    what mon1 was offered and what the door got. Then the door's audio must
    reach mon1 through the relay, and after BYE every relay port is free."""
    env.start_proxy()
    (mon1,) = _devices(env, ["mon1"])
    door = RawUa("door", LOCAL)
    door_rtp = RtpPeer("door_rtp", env.ports.media(6))
    mon_rtp = RtpPeer("mon1_rtp", env.ports.media(7))
    try:
        call = RawCall(env, door, "door", "mon1",
                       sdp_body(LOCAL, [s.replace("%d", str(door_rtp.port)) for s in offer_streams]))
        inv = _invite_of(mon1)
        _reply(mon1, inv, 200, "OK", "m1",
               body=sdp_body(LOCAL, [s.replace("%d", str(mon_rtp.port)) for s in answer_streams]))
        ok = call.final()
        check(ok.status == 200, "door: %s, expected 200" % ok.first)
        call.in_dialog("ACK", ok)
        check_answers(inv.body, ok)
        audio = re.search(r"m=audio (\d+) ", ok.body)
        for seq in range(1, 11):
            door_rtp.sock.sendto(rtp_packet(seq, seq * 160, 0xd00d, b"\x00" * 20, pt=0),
                                 (LOCAL, int(audio.group(1))))
            time.sleep(0.01)
        deadline = time.time() + 3
        while not mon_rtp.rtp(0xd00d) and time.time() < deadline:
            time.sleep(0.05)
        got = mon_rtp.rtp(0xd00d)
        check(got, "the door's audio sent to the relay never reached mon1")
        check(all(p[1][1] != door_rtp.port for p in got),
              "the door's audio reached mon1 directly, not through the relay")
        call.in_dialog("BYE", ok)
        bye = mon1.wait_for(lambda m: m.method == "BYE", 5, "BYE")
        _reply(mon1, bye, 200, "OK", "m1")
        env.wait_relay_free()
    finally:
        for p in (mon1, door, door_rtp, mon_rtp):
            p.close()


def case_relay_answer_missing_line(env):
    """RFC 3264 section 6: the door offers audio and video, mon1 answers with
    an audio line only. The door gets an answer with both lines, the video
    rejected (port 0) and the audio pointed at the relay, not at mon1 (which
    would bypass the relay); the audio flows through the relay."""
    def check_answers(offered, ok):
        lines = re.findall(r"^m=.*$", ok.body, re.M)
        log("door's answer: %s" % lines)
        check(len(lines) == 2, "the door's answer has %d m= lines, the offer 2: %s"
              % (len(lines), lines))
        check(lines[1].startswith("m=video 0 "), "the video is not rejected: %s" % lines[1])
        check(not lines[0].startswith("m=audio %d " % env.ports.media(7)),
              "the door's answer points at mon1, not at the relay: %s" % lines[0])
    _relay_answered_call(env, ["audio %d RTP/AVP 0", "video 4002 RTP/AVP 96"],
                         ["audio %d RTP/AVP 0"], check_answers)


def case_relay_unrelayable_stream(env):
    """An offer with audio, real-time text (m=text, RFC 4103) and BFCP
    (m=application UDP/BFCP): the relay carries only RTP audio and video, so
    it rejects the other two with port 0 towards mon1 and in the door's
    answer, and relays the audio (the whole call used to fail with 488)."""
    def check_answers(offered, ok):
        to_mon = re.findall(r"^m=.*$", offered, re.M)
        up = re.findall(r"^m=.*$", ok.body, re.M)
        log("mon1 was offered %s; the door got %s" % (to_mon, up))
        check(len(to_mon) == 3 and to_mon[1].startswith("m=text 0 ") and
              to_mon[2].startswith("m=application 0 "),
              "mon1's offer does not reject text and BFCP with port 0: %s" % to_mon)
        check(len(up) == 3 and up[1].startswith("m=text 0 ") and
              up[2].startswith("m=application 0 ") and not up[0].startswith("m=audio 0 "),
              "the door's answer is not audio relayed, text and BFCP rejected: %s" % up)
    _relay_answered_call(env, ["audio %d RTP/AVP 0", "text 4010 RTP/AVP 98",
                               "application 4012 UDP/BFCP *"],
                         ["audio %d RTP/AVP 0", "text 0 RTP/AVP 98",
                          "application 0 UDP/BFCP *"], check_answers)


def case_relay_refuses_unusable_c(env):
    """From another host (127.0.0.2): offers whose c= the IPv4 relay cannot
    serve get 488 with a valid Warning and ring nobody: an IPv6 address, a
    host name (never looked up: that would block the proxy's SIP thread),
    and SDP whose error text quotes a line (the `"` made the Warning invalid
    and the caller got 500). A resident on 127.0.0.1 still calls."""
    env.start_proxy()
    (mon1,) = _devices(env, ["mon1"])
    attacker = RawUa("attacker", ATTACKER)
    door = RawUa("door", LOCAL)
    try:
        offers = [
            ("IPv6", sdp_body("::1", ["audio 4000 RTP/AVP 0"]), "IPv6"),
            ("host name", sdp_body("relay-victim.invalid", ["audio 4000 RTP/AVP 0"]),
             "not an IP address"),
            ("quoting error", sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"]) + "junk line\n", '"junk'),
        ]
        for what, sdp, expected in offers:
            call = RawCall(env, attacker, "mon2", "mon1", sdp)
            fin = call.final()
            log("%s: %s / Warning: %s" % (what, fin.first, fin.hdr("Warning")))
            check(fin.status == 488, "%s: %s, expected 488" % (what, fin.first))
            text = _warning_text(fin)
            check(expected in text, "%s: warn-text %r does not say %r" % (what, text, expected))
        check(not mon1.got(lambda m: m.method == "INVITE"),
              "an offer the relay cannot serve rang mon1")
        check(env.ctl("relay").get("ports_in_use") == 0, "a refused offer kept relay ports")
        call = RawCall(env, door, "door", "mon1", sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"]))
        inv = _invite_of(mon1, call.call_id)
        _reply(mon1, inv, 486, "Busy Here", "m1")
        check(call.final().status == 486, "the resident's call did not reach mon1")
        env.wait_relay_free()
    finally:
        for ua in (mon1, attacker, door):
            ua.close()
    env.assert_no_secrets()


def case_relay_call_limits(env):
    """max-calls-per-user = 2, max-calls-per-source = 3: a resident on another
    host (127.0.0.2) rings mon1 again and again; its third call gets 503 with
    Retry-After and takes no relay port, and when a second account on that
    host fills its address's share, that one is refused too. The door on
    127.0.0.1 still rings mon1 meanwhile."""
    env.relay_extra = "max-calls-per-user = 2\nmax-calls-per-source = 3\n"
    env.start_proxy()
    (mon1,) = _devices(env, ["mon1"])
    attacker = RawUa("attacker", ATTACKER)
    door = RawUa("door", LOCAL)
    sdp = sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"])
    try:
        def ringing(user, ua):
            call = RawCall(env, ua, user, "mon1", sdp)
            inv = _invite_of(mon1, call.call_id)
            _reply(mon1, inv, 180, "Ringing", "m%08x" % random_id())
            ua.wait_for(lambda m: m in call.responses() and m.status == 180, 5, "180")
            return call

        def refused(user, ua, limit):
            call = RawCall(env, ua, user, "mon1", sdp)
            fin = call.final()
            log("%s from %s: %s, Retry-After %s, Warning %s"
                % (user, ua.host, fin.first, fin.hdr("Retry-After"), fin.hdr("Warning")))
            check(fin.status == 503 and fin.hdr("Retry-After"),
                  "%s's call over the limit: %s, expected 503 with Retry-After" % (user, fin.first))
            check(limit in _warning_text(fin), "the Warning does not name %s" % limit)
            check(not mon1.got(lambda m: m.method == "INVITE" and
                               m.hdr("Call-ID") == call.call_id),
                  "a call over the limit rang mon1")

        ringing("mon2", attacker)
        ringing("mon2", attacker)
        ports = env.ctl("relay").get("ports_in_use")
        refused("mon2", attacker, "max-calls-per-user")
        check(env.ctl("relay").get("ports_in_use") == ports, "a refused call took relay ports")
        ringing("door", door)  # the resident on 127.0.0.1 is not affected
        ringing("mon3", attacker)  # the third call from 127.0.0.2
        refused("mon3", attacker, "max-calls-per-source")
        ringing("door", door)
        check(len(env.ctl("relay").get("calls")) == 5, "the relay does not list the 5 ringing "
              "calls: %s" % env.ctl("relay"))
    finally:
        for ua in (mon1, attacker, door):
            ua.close()
    env.assert_no_secrets()


# --------------------------------------------------------------------------
# issue 11: in-dialog requests, signed Record-Route, core conformance
# --------------------------------------------------------------------------


def _py_challenge(resp):
    """The MD5 challenge of a 407 or 401, parsed."""
    ch = find_challenge(resp.hdrs("Proxy-Authenticate") + resp.hdrs("WWW-Authenticate"))
    check(ch, "no MD5 challenge in %s" % resp.first)
    return ch


def _send_authenticated(ua, method, ruri, user, headers, body=b""):
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
        chal = _py_challenge(resp)
        cseq = 2
        auth = "%s: %s\n" % ("Proxy-Authorization" if resp.status == 407 else "Authorization",
                             digest_auth(user, USERS[user], chal, method, ruri,
                                         cnonce="0a4f113b"))
        ua.send(headers.format(via=ua.via(), cseq=cseq, auth=auth), body)
        resp = ua.response_to(method, timeout=5)
    return resp, cseq


def _py_sdp(port, owner="door", version=1, host=LOCAL):
    """A PCMU offer or answer on the wire (CRLF line ends), host in o= and c=."""
    return sdp_body(host, ["audio %d RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=sendrecv" % port],
                    owner, version, host).replace("\n", "\r\n").encode()


def _sdp_port(body):
    m = re.search(rb"^m=audio (\d+) ", body, re.M)
    return int(m.group(1)) if m else None


class PyCall:
    """An answered call door -> mon1 through the proxy and its relay, driven by
    hand: caller and callee are PyUAs on 127.0.0.1, each with an RtpPeer."""


def _py_call(env, route=None):
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
                           body=_py_sdp(c.callee_rtp.port, owner="mon1"))
        except TestFailure as e:
            answered["error"] = str(e)

    th = threading.Thread(target=callee, daemon=True)
    th.start()
    ok, cseq = _send_authenticated(c.caller, "INVITE", c.ruri, "door", head,
                                   _py_sdp(c.caller_rtp.port))
    th.join(10)
    check("error" not in answered, answered.get("error", ""))
    check(ok.status == 200, "door's INVITE got %s, expected 200" % ok.first)
    c.invite_at_callee = answered["invite"]
    c.ok = ok
    c.cseq = cseq
    c.record_route = ok.hdrs("Record-Route")
    check(c.record_route, "the 200 carries no Record-Route")
    c.callee_contact = _uri_in(ok.hdr("Contact"))
    # Where each side sends its media: the relay's ports in the SDP it got.
    c.caller_media_to = _sdp_port(ok.body)
    c.callee_media_to = _sdp_port(c.invite_at_callee.body)
    c.send_in_dialog("ACK", cseq=cseq)
    c.callee.expect(lambda m: m.method == "ACK", "ACK")
    return c


def _py_request(c, method, from_caller=True, ua=None, cseq=None, call_id=None, from_tag=None,
                to_tag=None, route=None, ruri=None, body=b"", extra=""):
    """An in-dialog request as a party of call c would send it (RFC 3261
    section 12.2.1.1), each part replaceable by what an attacker guesses.
    route: the Route header values (default: the route set of that side)."""
    sender = ua or (c.caller if from_caller else c.callee)
    if from_caller:
        rs = list(reversed(c.record_route)) if route is None else route
        target = c.callee_contact if ruri is None else ruri
        f = "<sip:door@%s>;tag=%s" % (DOMAIN, from_tag or c.caller_tag)
        t = "<%s>;tag=%s" % (c.ruri, to_tag or c.callee_tag)
    else:
        rs = list(c.invite_at_callee.hdrs("Record-Route")) if route is None else route
        target = c.caller_contact if ruri is None else ruri
        f = "<%s>;tag=%s" % (c.ruri, from_tag or c.callee_tag)
        t = "<sip:door@%s>;tag=%s" % (DOMAIN, to_tag or c.caller_tag)
    c.n_cseq = getattr(c, "n_cseq", 10) + 1
    lines = ["%s %s SIP/2.0" % (method, target), "Via: %s" % sender.via()]
    lines += ["Route: %s" % r for r in rs]
    lines += ["From: %s" % f, "To: %s" % t, "Call-ID: %s" % (call_id or c.call_id),
              "CSeq: %d %s" % (cseq or c.n_cseq, method),
              "Contact: <sip:%s:%d>" % (sender.ip, sender.port), "Max-Forwards: 70"]
    if body:
        lines.append("Content-Type: %s" % ("application/sdp" if method in ("INVITE", "UPDATE", "ACK")
                                           else "text/plain"))
    if extra:
        lines.append(extra)
    sender.send("\n".join(lines), body)
    return sender


PyCall.send_in_dialog = lambda self, method, **kw: _py_request(self, method, **kw)


def _media_reaches_callee(env, c, n=10):
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


def _relay_call(env, call_id):
    calls = [x for x in env.ctl("relay").get("calls", []) if x.get("call_id") == call_id]
    return calls[0] if calls else None


def _hang_up(env, c):
    """The real BYE from the caller: the callee gets it and answers 200; the
    relay's ports are freed and the call leaves the calls list."""
    c.send_in_dialog("BYE")
    bye = c.callee.expect(lambda m: m.method == "BYE", "the caller's BYE")
    c.callee.reply(bye, 200, "OK")
    ok = c.caller.response_to("BYE")
    check(ok.status == 200, "the real BYE got %s" % ok.first)
    env.wait_relay_free()
    env.wait_no_calls()


def _close_call(c):
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
        return _drain(self.sock)

    def close(self):
        self.sock.close()


def _refused(ua, method, want, what, sentinel=None, peers=()):
    """The proxy's answer to a forged request, which must be one of `want`.
    Without any answer, says where the request went instead (the old proxy
    forwarded it, and the peer that got it never answered)."""
    try:
        r = ua.response_to(method, timeout=2)
    except TestFailure:
        went = []
        if sentinel:
            n = len(sentinel.got(0.1))
            if n:
                went.append("%d datagram(s) reached the attacker's socket" % n)
        for peer in peers:
            if peer.quiet(lambda m: m.method == method, 0.1):
                went.append("%s received it" % peer.name)
        raise TestFailure("%s: no answer from the proxy; %s"
                          % (what, "; ".join(went) or "nothing seen elsewhere"))
    log("%s -> %s" % (what, r.first))
    check(r.status in want, "%s got %s, expected %s"
          % (what, r.first, " or ".join(str(w) for w in want)))
    return r


def case_dialog_open_relay(env):
    """Issue 11, open relay: from 127.0.0.2, MESSAGE, INFO and INVITE with a
    To tag and a Route naming the proxy, to a Request-URI on a host the
    attacker listens on, get refused (403: a Route we did not sign; 481: no
    such dialog, RFC 3261 section 12.2.2) and nothing reaches that host, even
    with a live call's Call-ID, tags and signed route; the caller itself
    cannot send there through its dialog either (403). The call's own parties
    still talk through the proxy afterwards."""
    env.start_proxy()
    c = _py_call(env)
    sentinel = Sentinel(env.ports.sip(7))
    attacker = PyUA("attacker", ATTACKER, env.ports.sip(5), env.ports.proxy)
    anywhere = "sip:victim@%s:%d" % (ATTACKER, sentinel.port)
    ours = "<sip:%s:%d;lr>" % (LOCAL, env.ports.proxy)
    try:
        for method in ("MESSAGE", "INFO", "INVITE"):
            body = _py_sdp(env.ports.media(5), host=ATTACKER) if method == "INVITE" else b"hi"
            # A made-up dialog behind a Route naming us (the old relay).
            c.send_in_dialog(method, ua=attacker, call_id=attacker.uniq("x"), from_tag="a1",
                             to_tag="a2", route=[ours], ruri=anywhere, body=body)
            _refused(attacker, method, (403,), "%s in a made-up dialog, unsigned Route" % method,
                     sentinel=sentinel)
            # The live call's Call-ID, tags and signed route, from another host.
            c.send_in_dialog(method, ua=attacker, ruri=anywhere, body=body)
            _refused(attacker, method, (481,), "%s with the live dialog's tags and route from %s"
                     % (method, ATTACKER), sentinel=sentinel)
        # A flood of forged requests is refused one by one, but logged only a
        # few lines a second (the rest counted), so it cannot flood the log.
        time.sleep(1.1)  # a second of its own: the refusals above used this one's lines
        before = env.proxy_log_text().count("refused")
        start = time.time()
        burst = 60
        for i in range(burst):
            c.send_in_dialog("MESSAGE", ua=attacker, ruri=anywhere, body=b"flood")
        seconds = int(time.time() - start) + 2  # the whole seconds the burst touched
        answered = attacker.quiet(lambda m: m.status == 481 and m.cseq()[1] == "MESSAGE", 1.5)
        check(len(set(m.hdr("CSeq") for m in answered)) == burst,
              "%d of %d forged MESSAGEs answered 481" % (len(answered), burst))
        lines = env.proxy_log_text().count("refused") - before
        log("%d forged MESSAGEs in %.1f s: %d refusal line(s) logged"
            % (burst, time.time() - start, lines))
        check(1 <= lines <= 6 * seconds and lines < burst,
              "%d refusal lines for %d forged requests in %d s (at most 5 a second and one "
              "summary expected)" % (lines, burst, seconds))
        # A party of the dialog cannot relay through it either: its requests
        # reach the other party only.
        c.send_in_dialog("MESSAGE", ruri=anywhere, body=b"hi")
        r = c.caller.response_to("MESSAGE")
        log("MESSAGE from the caller itself to %s -> %s" % (anywhere, r.first))
        check(r.status == 403, "the caller's MESSAGE to another host got %s, expected 403"
              % r.first)
        leaked = sentinel.got()
        check(not leaked, "the proxy relayed to %s: %r" % (anywhere, leaked[:3]))
        check(not c.callee.quiet(lambda m: m.method, 0.3),
              "the callee received the attacker's requests")
        # The dialog's own parties are still served, in both directions.
        c.send_in_dialog("MESSAGE", body=b"still here")
        got = c.callee.expect(lambda m: m.method == "MESSAGE", "the caller's MESSAGE")
        c.callee.reply(got, 200, "OK")
        check(c.caller.response_to("MESSAGE").status == 200, "the caller's MESSAGE failed")
        c.send_in_dialog("INFO", from_caller=False, body=b"Signal=1")
        got = c.caller.expect(lambda m: m.method == "INFO", "the callee's INFO")
        c.caller.reply(got, 200, "OK")
        check(c.callee.response_to("INFO").status == 200, "the callee's INFO failed")
        _hang_up(env, c)
    finally:
        sentinel.close()
        attacker.close()
        _close_call(c)


def case_dialog_forged_reinvite(env):
    """Issue 11, media hijack: a re-INVITE from 127.0.0.2 pointing the media at
    itself, knowing only the Call-ID (with the signed route), or the Call-ID
    and both tags, is refused; the callee gets no INVITE, the relay keeps the
    call as it was (portierctl relay) and the caller's RTP still reaches the
    callee, none the attacker. The real caller's re-INVITE still works."""
    env.start_proxy()
    c = _py_call(env)
    attacker = PyUA("attacker", ATTACKER, env.ports.sip(5), env.ports.proxy)
    trap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    trap.bind((ATTACKER, env.ports.media(5)))
    trap.setblocking(False)
    try:
        check(_media_reaches_callee(env, c) == 10, "no media before the attack")
        before = _relay_call(env, c.call_id)
        check(before, "the call is not in portierctl relay")
        evil = _py_sdp(env.ports.media(5), owner="mon1", version=2, host=ATTACKER)
        for what, kw in (("the Call-ID only", dict(from_tag="guess1", to_tag="guess2")),
                         ("the Call-ID and both tags", {})):
            for from_caller in (True, False):
                c.send_in_dialog("INVITE", from_caller=from_caller, ua=attacker, body=evil, **kw)
                _refused(attacker, "INVITE", (403, 481), "re-INVITE from %s knowing %s (as the %s)"
                         % (ATTACKER, what, "caller" if from_caller else "callee"),
                         peers=(c.caller, c.callee))
        # UPDATE (RFC 3311) and an ACK carrying an answer are refused alike.
        c.send_in_dialog("UPDATE", ua=attacker, body=evil)
        _refused(attacker, "UPDATE", (403, 481), "UPDATE from %s knowing the tags" % ATTACKER,
                 peers=(c.caller, c.callee))
        c.send_in_dialog("ACK", ua=attacker, cseq=c.cseq, body=evil)
        # (the 481s to the INVITEs above are retransmitted until ACKed: not these)
        check(not attacker.quiet(lambda m: m.status and m.cseq()[1] == "ACK", 0.5),
              "a forged ACK was answered")
        for ua in (c.caller, c.callee):
            check(not ua.quiet(lambda m: m.method in ("INVITE", "UPDATE", "ACK"), 0.3),
                  "%s received a forged request" % ua.name)
        after = _relay_call(env, c.call_id)
        check(after and after.get("ports") == before.get("ports"),
              "the relay's call changed: %s -> %s" % (before, after))
        check(_media_reaches_callee(env, c) == 10, "the callee lost the caller's media")
        check(not _drain(trap), "media went to the attacker")
        # The real caller can still re-INVITE (RFC 3261 section 14.1).
        c.send_in_dialog("INVITE", body=_py_sdp(c.caller_rtp.port, version=2))
        got = c.callee.expect(lambda m: m.method == "INVITE", "the caller's re-INVITE")
        c.callee.reply(got, 200, "OK", body=_py_sdp(c.callee_rtp.port, owner="mon1", version=2))
        ok = c.caller.response_to("INVITE")
        check(ok.status == 200, "the caller's re-INVITE got %s" % ok.first)
        c.send_in_dialog("ACK", cseq=ok.cseq()[0])
        c.callee.expect(lambda m: m.method == "ACK", "the re-INVITE's ACK")
        _hang_up(env, c)
    finally:
        trap.close()
        attacker.close()
        _close_call(c)


def case_dialog_forged_bye(env):
    """Issue 11, forged teardown: BYEs with wrong tags (from 127.0.0.2 and from
    the caller's own host), and one with the right tags from 127.0.0.2, end
    nothing: the callee gets no BYE, the relay's ports stay allocated and the
    media still flows. Then the real BYE frees them."""
    env.start_proxy()
    c = _py_call(env)
    attacker = PyUA("attacker", ATTACKER, env.ports.sip(5), env.ports.proxy)
    local = PyUA("local", LOCAL, env.ports.sip(6), env.ports.proxy)
    try:
        before = env.ctl("relay")
        check(before.get("ports_in_use", 0) > 0, "no relay ports in use: %s" % before)
        for who, ua, kw in (
                ("127.0.0.2, wrong tags", attacker, dict(from_tag="x1", to_tag="x2")),
                ("127.0.0.2, right tags", attacker, {}),
                ("127.0.0.2, right tags as the callee", attacker, dict(from_caller=False)),
                ("the caller's host, wrong To tag", local, dict(to_tag="x3"))):
            c.send_in_dialog("BYE", ua=ua, **kw)
            _refused(ua, "BYE", (403, 481), "BYE from %s" % who, peers=(c.caller, c.callee))
        for ua in (c.caller, c.callee):
            check(not ua.quiet(lambda m: m.method == "BYE", 0.3),
                  "%s received a forged BYE" % ua.name)
        after = env.ctl("relay")
        check(after.get("ports_in_use") == before.get("ports_in_use") and
              _relay_call(env, c.call_id), "forged BYEs freed relay ports: %s -> %s"
              % (before, after))
        check(_media_reaches_callee(env, c) == 10, "the media stopped after the forged BYEs")
        check(any(x.get("call_id") == c.call_id for x in env.calls()),
              "the call left portierctl calls")
        _hang_up(env, c)
    finally:
        attacker.close()
        local.close()
        _close_call(c)


def case_dialog_route_signature(env):
    """Issue 11: our Record-Route carries a signature (sig=, an HMAC over the
    dialog), and only a Route we signed brings an in-dialog request through:
    from the caller's own host with the right tags, a Route without sig= or
    with a forged one gets 403 and reaches nobody; the signed one works."""
    env.start_proxy()
    c = _py_call(env)
    local = PyUA("local", LOCAL, env.ports.sip(6), env.ports.proxy)
    p = "%s:%d" % (LOCAL, env.ports.proxy)
    try:
        log("Record-Route at the caller: %s" % c.record_route)
        check(len(c.record_route) == 1 and
              re.match(r"<sip:%s;lr;sig=[0-9a-f]{32}>$" % re.escape(p), c.record_route[0]),
              "Record-Route %s is not <sip:%s;lr;sig=HEX>" % (c.record_route, p))
        sig = re.search(r"sig=([0-9a-f]+)", c.record_route[0]).group(1)
        forged = "0" * 32 if sig != "0" * 32 else "1" * 32
        for what, route in (("no sig", "<sip:%s;lr>" % p),
                            ("a forged sig", "<sip:%s;lr;sig=%s>" % (p, forged)),
                            ("this dialog's sig on another Call-ID", None)):
            if route is None:
                # The signature of this route is for this dialog only.
                route = c.record_route[0]
                c.send_in_dialog("MESSAGE", ua=local, route=[route], call_id="other@" + LOCAL,
                                 body=b"x")
            else:
                c.send_in_dialog("MESSAGE", ua=local, route=[route], body=b"x")
            r = local.response_to("MESSAGE")
            log("MESSAGE with %s -> %s" % (what, r.first))
            check(r.status == 403, "MESSAGE with %s got %s, expected 403" % (what, r.first))
        check(not c.callee.quiet(lambda m: m.method == "MESSAGE", 0.3),
              "the callee received a MESSAGE through a route we did not sign")
        c.send_in_dialog("MESSAGE", body=b"signed")
        got = c.callee.expect(lambda m: m.method == "MESSAGE", "the signed MESSAGE")
        c.callee.reply(got, 200, "OK")
        check(c.caller.response_to("MESSAGE").status == 200, "the signed MESSAGE failed")
        _hang_up(env, c)
    finally:
        local.close()
        _close_call(c)


def case_dialog_identity(env):
    """RFC 3325 section 5 / 9.1 on the in-dialog path: a P-Asserted-Identity or
    P-Preferred-Identity a party writes itself is removed, and the identity
    the proxy recorded for that party when the dialog formed is asserted in
    its place (the door reads it): the caller's from digest, the callee's
    from its registration."""
    env.start_proxy()
    c = _py_call(env)
    forged = ("P-Asserted-Identity: <sip:alice@%s>\r\nP-Preferred-Identity: <sip:alice@%s>"
              % (DOMAIN, DOMAIN))
    try:
        for from_caller, ua, peer, want in ((True, c.caller, c.callee, "door"),
                                            (False, c.callee, c.caller, "mon1")):
            c.send_in_dialog("MESSAGE", from_caller=from_caller, body=b"1234", extra=forged)
            got = peer.expect(lambda m: m.method == "MESSAGE", "MESSAGE at %s" % peer.name)
            pai = got.hdrs("P-Asserted-Identity")
            log("%s's MESSAGE at %s: P-Asserted-Identity %s, P-Preferred-Identity %s"
                % (ua.name, peer.name, pai, got.hdrs("P-Preferred-Identity")))
            check(pai == ["<sip:%s@%s>" % (want, DOMAIN)],
                  "%s's in-dialog MESSAGE reached %s with P-Asserted-Identity %s, expected "
                  "only <sip:%s@%s>" % (ua.name, peer.name, pai, want, DOMAIN))
            check(not got.hdrs("P-Preferred-Identity"), "P-Preferred-Identity passed through")
            peer.reply(got, 200, "OK")
            check(ua.response_to("MESSAGE").status == 200, "the MESSAGE failed")
        _hang_up(env, c)
    finally:
        _close_call(c)


def case_stray_response(env):
    """Issue 11: responses that match no transaction of the proxy, sent from
    127.0.0.2 with the proxy's Via on top and the attacker's listening
    socket in the next Via, are dropped (RFC 3261 section 16.7 forwards only
    responses to our client transactions; a 2xx retransmission only inside a
    recorded dialog, from its callee): nothing reaches that socket, whatever
    the status, even with a live call's Call-ID and tags."""
    env.start_proxy()
    c = _py_call(env)
    sentinel = Sentinel(env.ports.sip(7))
    attacker = PyUA("attacker", ATTACKER, env.ports.sip(5), env.ports.proxy)
    c.caller.quiet(lambda m: True, 0.1)  # what the call setup left (100, 180)
    try:
        for status, phrase, cid, ftag, ttag in (
                (200, "OK", attacker.uniq("c"), "f1", "t1"),
                (180, "Ringing", attacker.uniq("c"), "f1", "t1"),
                (486, "Busy Here", attacker.uniq("c"), "f1", "t1"),
                (200, "OK", c.call_id, c.caller_tag, c.callee_tag)):
            attacker.send("SIP/2.0 %d %s\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-stray%d\n"
                          "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-victim\n"
                          "From: <sip:door@%s>;tag=%s\nTo: <sip:mon1@%s>;tag=%s\n"
                          "Call-ID: %s\nCSeq: 2 INVITE\nContact: <sip:%s:%d>"
                          % (status, phrase, LOCAL, env.ports.proxy, status, ATTACKER,
                             sentinel.port, DOMAIN, ftag, DOMAIN, ttag, cid, ATTACKER,
                             attacker.port))
        leaked = sentinel.got()
        log("stray responses reflected to %s:%d: %d" % (ATTACKER, sentinel.port, len(leaked)))
        check(not leaked, "stray responses were forwarded to the next Via: %r" % leaked[:3])
        check(not c.caller.quiet(lambda m: m.status, 0.3),
              "the caller received a stray response")
        # The callee's own retransmitted 200 still reaches the caller (RFC 3261
        # section 13.3.1.4, 16.7 step 5), with or without a transaction left.
        c.callee.reply(c.invite_at_callee, 200, "OK", to_tag=c.callee_tag,
                       body=_py_sdp(c.callee_rtp.port, owner="mon1"))
        again = c.caller.expect(lambda m: m.status == 200 and m.cseq()[1] == "INVITE",
                                "the callee's retransmitted 200")
        check(again.tag("To") == c.callee_tag, "retransmitted 200 with To tag %s" % again.tag("To"))
        _hang_up(env, c)
    finally:
        sentinel.close()
        attacker.close()
        _close_call(c)


def case_proxy_require(env):
    """RFC 3261 section 16.3 step 5 / 20.29: a request whose Proxy-Require
    names an extension the proxy does not support gets 420 Bad Extension with
    every such option-tag in Unsupported (section 20.40), before any digest
    challenge, and goes nowhere; without it the same request is challenged."""
    env.start_proxy()
    target = "sip:mon1@%s" % DOMAIN
    for method in ("INVITE", "MESSAGE", "OPTIONS"):
        replies = udp_exchange(env.ports.proxy, _req(method, target, env,
                                                     extra="Proxy-Require: foo, x-bar"),
                               wait=0.7)
        msgs = [SipMessage(r, None) for r in replies]
        log("%s with Proxy-Require: foo, x-bar -> %s (Unsupported %s)"
            % (method, [m.first for m in msgs], [m.hdrs("Unsupported") for m in msgs]))
        check(msgs and msgs[0].status == 420, "%s: expected 420, got %s"
              % (method, [m.first for m in msgs] or "no reply"))
        tags = set(t.strip() for u in msgs[0].hdrs("Unsupported") for t in u.split(","))
        check(tags == {"foo", "x-bar"}, "420 lists Unsupported %s, expected foo and x-bar"
              % msgs[0].hdrs("Unsupported"))
    replies = udp_exchange(env.ports.proxy, _req("INVITE", target, env), wait=0.7)
    check(replies and replies[0].startswith(b"SIP/2.0 407 "),
          "without Proxy-Require the INVITE was not challenged: %r" % replies[:1])


def case_ack_max_forwards_zero(env):
    """RFC 3261 section 17 / 16.3 step 3: an ACK with Max-Forwards: 0 (out of
    dialog and inside one) gets no response at all, where any other request
    gets 483 Too Many Hops."""
    env.start_proxy()
    target = "sip:mon1@%s" % DOMAIN
    for what in ("out of dialog", "with a To tag"):
        payload = _req("ACK", target, env, mf="0")
        if what == "with a To tag":
            payload = (lambda port, f=payload: f(port).replace(
                b"To: <%s>" % target.encode(), b"To: <%s>;tag=t1" % target.encode()))
        replies = udp_exchange(env.ports.proxy, payload, wait=1.0)
        log("ACK %s, Max-Forwards 0 -> %s" % (what, [r.split(b"\r\n")[0] for r in replies]))
        check(not replies, "an ACK (%s) was answered: %r" % (what, replies[:1]))
    replies = udp_exchange(env.ports.proxy, _req("MESSAGE", target, env, mf="0"), wait=0.7)
    check(replies and replies[0].startswith(b"SIP/2.0 483 "),
          "MESSAGE with Max-Forwards 0: expected 483, got %r" % replies[:1])
    check(env.proxy_alive(), "portier-proxy died")


def case_route_by_domain_alias(env):
    """Issue 11: the proxy is "us" by its served domain and by the names in
    [global] aliases as well as by its address (phones whose outbound proxy
    is a DNS name): OPTIONS and REGISTER to sip:<alias> get 200, a REGISTER
    and INVITEs with Route <sip:<alias>;lr> or <sip:home.example;lr> go
    through (no 403 Relaying denied), while a Route to another domain is still
    refused."""
    write = env.write_config

    def with_alias():
        path = write()
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("[global]\n", "[global]\naliases = proxy.lan Portier.Local\n", 1))
        return path

    env.write_config = with_alias
    env.start_proxy()
    ua = PyUA("mon2", LOCAL, env.ports.sip(1), env.ports.proxy)
    try:
        ua.send("OPTIONS sip:proxy.lan SIP/2.0\nVia: %s\nFrom: <sip:mon2@%s>;tag=o1\n"
                "To: <sip:proxy.lan>\nCall-ID: %s\nCSeq: 1 OPTIONS\nMax-Forwards: 70"
                % (ua.via(), DOMAIN, ua.uniq("o")))
        r = ua.response_to("OPTIONS")
        log("OPTIONS sip:proxy.lan -> %s" % r.first)
        check(r.status == 200, "OPTIONS to the alias got %s, expected 200" % r.first)
        ruri = "sip:%s" % DOMAIN
        head = ("REGISTER %s SIP/2.0\nVia: {via}\nRoute: <sip:portier.local;lr>\n"
                "From: <sip:mon2@%s>;tag=r1\nTo: <sip:mon2@%s>\nCall-ID: %s\n"
                "CSeq: {cseq} REGISTER\nContact: <sip:%s:%d>\nExpires: 600\nMax-Forwards: 70\n"
                "{auth}" % (ruri, DOMAIN, DOMAIN, ua.uniq("r"), LOCAL, ua.port))
        r, _ = _send_authenticated(ua, "REGISTER", ruri, "mon2", head)
        log("REGISTER with Route <sip:portier.local;lr> -> %s" % r.first)
        check(r.status == 200, "REGISTER via the alias got %s, expected 200" % r.first)
        check(env.bindings_for("mon2"), "no binding for mon2")
        # The registrar named by the alias itself (RFC 3261 section 10.2: the
        # Request-URI names the registrar's domain; a phone may write a host name).
        ruri = "sip:proxy.lan"
        head = ("REGISTER %s SIP/2.0\nVia: {via}\nFrom: <sip:mon2@%s>;tag=r2\nTo: <sip:mon2@%s>\n"
                "Call-ID: %s\nCSeq: {cseq} REGISTER\nContact: <sip:%s:%d>\nExpires: 600\n"
                "Max-Forwards: 70\n{auth}" % (ruri, DOMAIN, DOMAIN, ua.uniq("r"), LOCAL, ua.port))
        r, _ = _send_authenticated(ua, "REGISTER", ruri, "mon2", head)
        log("REGISTER sip:proxy.lan -> %s" % r.first)
        check(r.status == 200, "REGISTER to the alias got %s, expected 200" % r.first)
        for route in ("<sip:proxy.lan;lr>", "<sip:%s;lr>" % DOMAIN,
                      "<sip:proxy.lan:%d;lr>" % env.ports.proxy):
            c = _py_call(env, route=route)
            log("INVITE with Route %s answered; Record-Route %s" % (route, c.record_route))
            _hang_up(env, c)
            _close_call(c)
        other = PyUA("door", LOCAL, env.ports.sip(4), env.ports.proxy)
        try:
            head = ("INVITE sip:mon1@%s SIP/2.0\nVia: {via}\nRoute: <sip:other.example;lr>\n"
                    "From: <sip:door@%s>;tag=x\nTo: <sip:mon1@%s>\nCall-ID: %s\n"
                    "CSeq: {cseq} INVITE\nMax-Forwards: 70\n{auth}"
                    % (DOMAIN, DOMAIN, DOMAIN, other.uniq("c")))
            other.send(head.format(via=other.via(), cseq=1, auth=""))
            r = other.response_to("INVITE")
            log("INVITE with Route <sip:other.example;lr> -> %s" % r.first)
            check(r.status == 403, "a Route to another domain got %s, expected 403" % r.first)
        finally:
            other.close()
    finally:
        ua.close()


def case_dialog_notify_first(env):
    """RFC 6665 section 4.1.2.4: the notifier's first NOTIFY may overtake the
    200 of the SUBSCRIBE; it forms the dialog at the proxy when it comes from
    the host the SUBSCRIBE went to, and reaches the subscriber. The same
    NOTIFY from 127.0.0.2 (tags and signed route copied) gets 481 and reaches
    nobody. Later requests of the subscription go through."""
    env.start_proxy()
    env.register("mon1", 0)
    p = env.ports.proxy
    sub = PyUA("door", LOCAL, env.ports.sip(4), p)
    notifier = PyUA("mon1", LOCAL, env.ports.sip(0), p)
    attacker = PyUA("attacker", ATTACKER, env.ports.sip(5), p)
    try:
        ruri = "sip:mon1@%s" % DOMAIN
        call_id, stag, ntag = sub.uniq("sub") + "@" + LOCAL, sub.uniq("st"), notifier.uniq("nt")
        head = ("SUBSCRIBE %s SIP/2.0\nVia: {via}\nFrom: <sip:door@%s>;tag=%s\nTo: <%s>\n"
                "Call-ID: %s\nCSeq: {cseq} SUBSCRIBE\nContact: <sip:door@%s:%d>\n"
                "Event: presence\nExpires: 60\nMax-Forwards: 70\n{auth}"
                % (ruri, DOMAIN, stag, ruri, call_id, LOCAL, sub.port))
        sub.send(head.format(via=sub.via(), cseq=1, auth=""))
        r = sub.response_to("SUBSCRIBE")
        check(r.status == 407, "SUBSCRIBE without credentials got %s" % r.first)
        chal = _py_challenge(r)
        sub.send(head.format(via=sub.via(), cseq=2, auth="Proxy-Authorization: %s\n"
                             % digest_auth("door", USERS["door"], chal, "SUBSCRIBE", ruri,
                                           cnonce="0a4f113b")))
        req = notifier.expect(lambda m: m.method == "SUBSCRIBE", "SUBSCRIBE")
        rr = req.hdrs("Record-Route")
        check(rr, "the SUBSCRIBE carries no Record-Route")

        def notify(ua, cseq):
            ua.send("NOTIFY sip:door@%s:%d SIP/2.0\nVia: %s\n%sFrom: <%s>;tag=%s\n"
                    "To: <sip:door@%s>;tag=%s\nCall-ID: %s\nCSeq: %d NOTIFY\n"
                    "Contact: <sip:%s:%d>\nEvent: presence\n"
                    "Subscription-State: active;expires=60\nMax-Forwards: 70"
                    % (LOCAL, sub.port, ua.via(), "".join("Route: %s\n" % x for x in rr),
                       ruri, ntag, DOMAIN, stag, call_id, cseq, ua.ip, ua.port))

        notify(attacker, 1)
        r = attacker.response_to("NOTIFY")
        log("NOTIFY from %s ahead of the 200 -> %s" % (ATTACKER, r.first))
        check(r.status == 481, "the attacker's NOTIFY got %s, expected 481" % r.first)
        check(not sub.quiet(lambda m: m.method == "NOTIFY", 0.3),
              "the subscriber received the attacker's NOTIFY")
        notify(notifier, 1)
        got = sub.expect(lambda m: m.method == "NOTIFY", "the notifier's NOTIFY")
        sub.reply(got, 200, "OK")
        r = notifier.response_to("NOTIFY")
        log("the notifier's NOTIFY ahead of the 200 -> %s" % r.first)
        check(r.status == 200, "the notifier's NOTIFY got %s, expected 200" % r.first)
        notifier.reply(req, 200, "OK", to_tag=ntag, extra="Expires: 60")
        ok = sub.response_to("SUBSCRIBE")
        check(ok.status == 200 and ok.tag("To") == ntag, "SUBSCRIBE got %s" % ok.first)
        # The subscriber ends the subscription inside the dialog (RFC 6665 section 4.1.2.3).
        sub.send("SUBSCRIBE sip:%s:%d SIP/2.0\nVia: %s\n%sFrom: <sip:door@%s>;tag=%s\n"
                 "To: <%s>;tag=%s\nCall-ID: %s\nCSeq: 3 SUBSCRIBE\nContact: <sip:door@%s:%d>\n"
                 "Event: presence\nExpires: 0\nMax-Forwards: 70"
                 % (LOCAL, notifier.port, sub.via(),
                    "".join("Route: %s\n" % x for x in reversed(ok.hdrs("Record-Route"))),
                    DOMAIN, stag, ruri, ntag, call_id, LOCAL, sub.port))
        # (the first SUBSCRIBE may have been retransmitted meanwhile: CSeq 3 is ours)
        unsub = notifier.expect(lambda m: m.method == "SUBSCRIBE" and m.cseq()[0] == 3,
                                "the un-SUBSCRIBE")
        notifier.reply(unsub, 200, "OK", extra="Expires: 0")
        check(sub.response_to("SUBSCRIBE").status == 200, "the un-SUBSCRIBE failed")
    finally:
        for ua in (sub, notifier, attacker):
            ua.close()


# TCP connection limits and timeouts (issue 11: transport)
# --------------------------------------------------------------------------

def _tcp_connect(env, src=ATTACKER, timeout=3.0):
    """A TCP connection to the proxy's SIP port from address `src`."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect((LOCAL, env.ports.proxy))
    return s


def _tcp_connect_or_refused(env, src=ATTACKER):
    """_tcp_connect, or None when the proxy reset the connection at once."""
    try:
        return _tcp_connect(env, src)
    except (ConnectionResetError, ConnectionRefusedError):
        return None


def _wait_closed(sock, within):
    """Reads (and drops) what the proxy sends until it ends the connection:
    True once recv returns b"" or the connection is reset, False if it is
    still open after `within` seconds."""
    deadline = time.time() + within
    while time.time() < deadline:
        sock.settimeout(max(0.05, min(0.5, deadline - time.time())))
        try:
            if sock.recv(65535) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:  # ECONNRESET
            return True
    return False


def _is_open(sock):
    """True when the proxy has not ended the connection (nothing waiting, or
    data but no end of stream)."""
    sock.settimeout(0.05)
    try:
        return sock.recv(65535, socket.MSG_PEEK) != b""
    except socket.timeout:
        return True
    except OSError:
        return False


def _tcp_options(sock, proxy_port, tag):
    """Sends OPTIONS to the proxy on an open connection and returns the status
    of the answer, or None when none came (RFC 3261 section 11)."""
    ua = _TcpSip(None, sock=sock)
    host, port = sock.getsockname()
    try:
        ua.send("OPTIONS sip:%s:%d SIP/2.0\r\n"
                "Via: SIP/2.0/TCP %s:%d;branch=z9hG4bK-opt-%s\r\n"
                "From: <sip:probe@%s>;tag=%s\r\nTo: <sip:%s:%d>\r\n"
                "Call-ID: opt-%s@%s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n"
                % (LOCAL, proxy_port, host, port, tag, DOMAIN, tag, LOCAL, proxy_port, tag, host))
        msg = ua.read(3)
    except (TestFailure, OSError):  # closed or reset: no answer
        return None
    return status_of(msg) if msg else None


class _TcpSip:
    """A SIP device on one TCP connection: messages framed by Content-Length
    (RFC 3261 section 18.3), CRLFCRLF keep-alives and their CRLF pongs (RFC 5626
    section 4.4.1), REGISTER with MD5 digest, and a 486 to an INVITE."""

    def __init__(self, env, src=LOCAL, sock=None):
        self.sock = sock or _tcp_connect(env, src)
        self.host, self.port = self.sock.getsockname()
        self.buf = b""
        self.pongs = 0

    def send(self, text):
        self.sock.sendall(text.encode("latin-1"))

    def keepalive(self):
        self.sock.sendall(b"\r\n\r\n")

    def read(self, within):
        """The next SIP message within `within` seconds, or None. Pongs are
        counted; the proxy ending the connection is a failure."""
        deadline = time.time() + within
        while True:
            while self.buf.startswith(b"\r\n"):
                self.buf = self.buf[2:]
                self.pongs += 1
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", self.buf[:end])
                total = end + 4 + (int(m.group(1)) if m else 0)
                if len(self.buf) >= total:
                    msg, self.buf = self.buf[:total], self.buf[total:]
                    return msg
            left = deadline - time.time()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except socket.timeout:
                return None
            except OSError as e:
                raise TestFailure("TCP connection from %s:%d: %s" % (self.host, self.port, e))
            if not data:
                raise TestFailure("the proxy closed the TCP connection from %s:%d"
                                  % (self.host, self.port))
            self.buf += data

    def register(self, user, expires=600):
        """REGISTER user over this connection, Contact on it (transport=tcp);
        the proxy's 200 must come back (RFC 3261 section 10.2)."""
        call_id = "tcpreg-%s-%d@%s" % (user, self.port, self.host)
        uri = "sip:%s" % DOMAIN

        def request(cseq, auth):
            return ("REGISTER %s SIP/2.0\r\n"
                    "Via: SIP/2.0/TCP %s:%d;branch=z9hG4bK-tcpreg-%d-%d\r\n"
                    "From: <sip:%s@%s>;tag=tcp%d\r\nTo: <sip:%s@%s>\r\n"
                    "Call-ID: %s\r\nCSeq: %d REGISTER\r\n"
                    "Contact: <sip:%s@%s:%d;transport=tcp>\r\n"
                    "Expires: %d\r\nMax-Forwards: 70\r\n%sContent-Length: 0\r\n\r\n"
                    % (uri, self.host, self.port, self.port, cseq, user, DOMAIN, self.port,
                       user, DOMAIN, call_id, cseq, user, self.host, self.port, expires,
                       "Authorization: %s\r\n" % auth if auth else ""))
        self.send(request(1, None))
        r = self.read(5)
        check(r is not None and status_of(r) == 401,
              "REGISTER of %s over TCP: expected 401, got %r" % (user, r and r[:60]))
        md5 = find_challenge(header_values(r, "WWW-Authenticate"))
        check(md5, "no MD5 challenge in %r" % r[:300])
        self.send(request(2, digest_auth(user, USERS[user], md5, "REGISTER", uri,
                                         cnonce="c0ffee%d" % int(time.time()))))
        r = self.read(5)
        check(r is not None and status_of(r) == 200,
              "REGISTER of %s over TCP: expected 200, got %r" % (user, r and r[:60]))

    def answer_busy(self, within):
        """Waits for an INVITE on this connection and answers 486 (RFC 3261
        section 8.2.6: the response copies Via, From, To, Call-ID and CSeq)."""
        msg = self.read(within)
        check(msg is not None and msg.startswith(b"INVITE "),
              "no INVITE on the TCP connection from %s:%d (got %r)"
              % (self.host, self.port, msg and msg[:60]))
        lines = ["SIP/2.0 486 Busy Here"]
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            for h in header_lines(msg, name):
                lines.append(h + (";tag=busy%d" % self.port if name == "To" else ""))
        self.send("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n")
        return msg


def case_tcp_incomplete_message(env):
    """A connection from another host that sends half a request and stalls
    (slow-loris) is closed after tcp-incomplete-message-timeout, on the
    proxy's side too (what the attacker sends afterwards meets a reset), as is
    a new connection that dribbles its first request a byte at a time; the
    proxy goes on answering OPTIONS over TCP and UDP (RFC 3261 section 11)."""
    env.global_extra = "tcp-incomplete-message-timeout = 2\nidle-timeout = 120\n"
    env.start_proxy()
    p = env.ports.proxy
    stalled = _tcp_connect(env)
    host, port = stalled.getsockname()
    stalled.sendall(("OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/TCP %s:%d;branch=z9hG4bK-slow\r\n"
                     "From: <sip:x@%s>;tag=slow\r\nTo: <sip:%s:%d>\r\nCall-ID: slow@%s\r\n"
                     % (LOCAL, p, host, port, DOMAIN, LOCAL, p, host)).encode())
    # Still served while one connection stalls.
    ok = _TcpSip(env, src=LOCAL)
    check(_tcp_options(ok.sock, p, "during") == 200, "no 200 to OPTIONS over TCP while stalled")
    check(_wait_closed(stalled, within=15),
          "the stalled connection from %s is still open 15 s after it stopped sending "
          "(tcp-incomplete-message-timeout = 2)" % ATTACKER)
    # The proxy's FIN alone would leave its socket open for as long as the
    # attacker keeps its own side open: what it sends later must meet a reset.
    reset = False
    for _ in range(20):  # bounded: 20 x 0.5 s
        try:
            stalled.sendall(b"x")
            stalled.settimeout(0.5)
            if stalled.recv(100) == b"":
                time.sleep(0.5)
        except socket.timeout:
            pass
        except OSError:
            reset = True
            break
    check(reset, "the proxy still reads the half-closed connection from %s 10 s later"
          % ATTACKER)
    # A new connection that dribbles its first request a byte at a time never
    # stalls, but never completes a request either.
    dribbler = _tcp_connect(env)
    request = ("OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-drip\r\n"
               % (LOCAL, p, ATTACKER) + "X-Padding: " + "a" * 200).encode()
    closed = False
    for i in range(30):  # bounded: 30 x (0.5 s wait); idle-timeout is 120 s
        try:
            dribbler.sendall(request[i:i + 1])
        except OSError:
            closed = True
            break
        if _wait_closed(dribbler, within=0.5):
            closed = True
            break
    check(closed, "a connection from %s dribbling its first request is still open 15 s later "
          "(tcp-incomplete-message-timeout = 2)" % ATTACKER)
    replies = udp_exchange(env.ports.proxy, _req("OPTIONS", "sip:%s:%d" % (LOCAL, p), env),
                           wait=1.0)
    check(any(r.startswith(b"SIP/2.0 200") for r in replies), "no 200 to OPTIONS over UDP")
    fresh = _tcp_connect(env)
    check(_tcp_options(fresh, p, "after") == 200,
          "no 200 to OPTIONS on a new connection from %s" % ATTACKER)


def case_tcp_idle_timeout(env):
    """Connections from another host that carry no request are closed after
    idle-timeout: a silent one, one that sends only CRLFCRLF keep-alives without
    ever registering, and one that trickles a request a byte at a time (a
    slow-loris the incomplete-message timeout, which counts from the last byte,
    does not see); the proxy still answers OPTIONS on a new connection."""
    env.global_extra = "idle-timeout = 3\n"
    env.start_proxy()
    silent = _tcp_connect(env)
    pinger = _tcp_connect(env)
    trickler = _tcp_connect(env)
    request = ("OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-trickle\r\n"
               % (LOCAL, env.ports.proxy, ATTACKER) + "X-Padding: " + "a" * 200).encode()
    live = {"keep-alives only": pinger, "trickled request": trickler}
    sent = 0
    deadline = time.time() + 15
    while live and time.time() < deadline:
        for name, sock in list(live.items()):
            try:
                if sock is pinger:
                    sock.sendall(b"\r\n\r\n")
                else:
                    sock.sendall(request[sent:sent + 1])
            except OSError:
                del live[name]
                continue
            if _wait_closed(sock, within=0.25):
                del live[name]
        sent += 1
    check(not live, "still open 15 s after they opened (idle-timeout = 3): %s"
          % ", ".join(sorted(live)))
    check(_wait_closed(silent, within=5), "a silent connection is still open after the "
          "idle timeout (idle-timeout = 3)")
    fresh = _tcp_connect(env)
    check(_tcp_options(fresh, env.ports.proxy, "after") == 200,
          "no 200 to OPTIONS on a new connection after the idle ones were closed")


def case_tcp_registered_keepalive(env):
    """RFC 5626 section 4.4.1: a device registered over TCP that sends CRLFCRLF
    keep-alives keeps its connection past idle-timeout (and gets its pongs), and
    so does one that sends nothing (its binding lives); an INVITE through the
    proxy reaches each on its own connection afterwards."""
    env.global_extra = "idle-timeout = 2\n"
    env.start_proxy()
    pinging = _TcpSip(env)
    pinging.register("mon1")
    quiet = _TcpSip(env)
    quiet.register("mon2")
    end = time.time() + 6  # three idle timeouts
    while time.time() < end:
        pinging.keepalive()
        check(pinging.read(1.0) is None, "unexpected message on mon1's connection")
    check(pinging.pongs >= 3, "mon1 got %d CRLF pongs to its keep-alives" % pinging.pongs)
    check(_is_open(quiet.sock), "mon2's connection (registered, silent) was closed")
    for ua, user, slot in ((pinging, "mon1", 4), (quiet, "mon2", 5)):
        door = env.door("door_%s" % user, "door_call_busy.xml", user, slot, timeout=15)
        invite = ua.answer_busy(10)
        log("%s got %s on its connection" % (user, invite.split(b"\r\n", 1)[0].decode()))
        door.wait()
        door.expect_ok()


def case_tcp_connection_limit(env):
    """max-connections-per-source: of N+1 connections from another host the
    newest is closed (its request unanswered), N keep working, and 127.0.0.1
    still registers over TCP and UDP."""
    n = 4
    env.global_extra = "max-connections-per-source = %d\n" % n
    env.start_proxy()
    p = env.ports.proxy
    kept = [_tcp_connect(env) for _ in range(n)]
    for i, s in enumerate(kept):
        check(_tcp_options(s, p, "kept%d" % i) == 200, "no 200 on connection %d of %d" % (i, n))
    # Refused at once (reset, maybe before connect() returns) or closed soon.
    extra = _tcp_connect_or_refused(env)
    if extra:
        status = _tcp_options(extra, p, "extra")
        check(status is None, "connection %d from %s was served (%s)" % (n + 1, ATTACKER, status))
        check(_wait_closed(extra, within=5),
              "connection %d from %s is still open" % (n + 1, ATTACKER))
    silent = _tcp_connect_or_refused(env)
    check(silent is None or _wait_closed(silent, within=5),
          "a silent connection %d from %s is still open 5 s later" % (n + 1, ATTACKER))
    for i, s in enumerate(kept):
        check(_tcp_options(s, p, "again%d" % i) == 200,
              "connection %d of %s's first %d no longer served" % (i, ATTACKER, n))
    device = _TcpSip(env)
    device.register("mon1")
    env.register("mon2", 1)
    check(env.bindings_for("mon1") and env.bindings_for("mon2"),
          "mon1 (TCP) and mon2 (UDP) are not both registered: %s" % env.registrations())


def case_tcp_connection_flood(env):
    """A bounded flood of connections from several other hosts, with the proxy
    short of file descriptors: the proxy keeps answering OPTIONS over UDP and on
    a registered device's existing connection, does not spin on EMFILE, and
    serves new connections once the flood is over."""
    env.start_proxy()
    p = env.ports.proxy
    device = _TcpSip(env)
    device.register("mon1")
    pid = env.proxy.pid
    used = len(os.listdir("/proc/%d/fd" % pid))
    import resource
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (used + 200, used + 200))
    log("proxy: %d descriptors open, limit now %d" % (used, used + 200))
    sources = ["127.0.0.%d" % i for i in range(2, 12)]
    flood, refused = [], 0
    deadline = time.time() + 30
    for i in range(3000):
        if time.time() > deadline:
            break
        try:
            flood.append(_tcp_connect(env, src=sources[i % len(sources)], timeout=0.5))
        except OSError:
            refused += 1
        if i % 500 == 499:
            replies = udp_exchange(env.ports.proxy,
                                   _req("OPTIONS", "sip:%s:%d" % (LOCAL, p), env), wait=2.0)
            check(any(r.startswith(b"SIP/2.0 200") for r in replies),
                  "no 200 to OPTIONS over UDP after %d connections" % (i + 1))
            check(_tcp_options(device.sock, p, "dev%d" % i) == 200,
                  "no 200 on the device's connection after %d connections" % (i + 1))
    log("flood: %d connected, %d refused" % (len(flood), refused))
    check(env.proxy_alive(), "portier-proxy died in the flood")
    # Held open, the flood must not keep the proxy busy: on EMFILE sofia's
    # accept() would be woken again and again by the waiting connections.
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu():
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks
    c0, t0 = cpu(), time.time()
    time.sleep(3)
    busy = (cpu() - c0) / (time.time() - t0)
    log("proxy CPU while the flood is held open: %.0f%%" % (busy * 100))
    check(busy < 0.5, "the proxy used %.0f%% CPU with the flood held open (a loop on "
          "EMFILE?)" % (busy * 100))
    replies = udp_exchange(env.ports.proxy, _req("OPTIONS", "sip:%s:%d" % (LOCAL, p), env),
                           wait=2.0)
    check(any(r.startswith(b"SIP/2.0 200") for r in replies), "no 200 to OPTIONS over UDP")
    check(_tcp_options(device.sock, p, "held") == 200, "no 200 on the device's connection")
    for s in flood:
        s.close()
    fresh = None
    for attempt in range(20):  # bounded: the proxy frees the closed connections
        try:
            fresh = _tcp_connect(env, src=LOCAL)
            if _tcp_options(fresh, p, "after%d" % attempt) == 200:
                break
        except OSError:
            pass
        fresh = None
        time.sleep(0.5)
    check(fresh is not None, "no 200 to OPTIONS on a new connection after the flood")
    check(env.proxy_alive(), "portier-proxy died")
# issue 11: the door's and the monitor's digest client
# --------------------------------------------------------------------------

def _digest_hash(algorithm, text):
    import hashlib
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


class ChallengingPeer(threading.Thread):
    """A SIP device on a raw UDP socket (a "door" the monitor calls through
    the proxy): answers the INVITE 200 with SDP, then challenges the first
    in-dialog INFOs with 401, one challenge set each (RFC 3261 §22.1), checks
    the credentials of the INFO that comes again, answers every other INFO
    and the BYE 200. Bounded: it stops after `limit` seconds."""

    def __init__(self, env, port, user, challenge_sets, limit=60):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCAL, port))
        self.sock.settimeout(0.2)
        self.port, self.user, self.limit = port, user, limit
        self.sets = list(challenge_sets)
        self.pending = None  # (nonces by algorithm, expected algorithm) of the last 401
        self.answered = []   # algorithms the monitor answered with, in order
        self.infos_ok = 0
        self.errors = []
        self.got_bye = False
        self.stop_flag = False

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

    def run(self):
        end = time.time() + self.limit
        while time.time() < end and not self.stop_flag:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            try:
                self.handle(data, addr)
            except Exception as e:  # a test helper: report, never die silently
                self.errors.append("%s: %s" % (type(e).__name__, e))
        self.sock.close()

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


def case_digest_client_md5(env):
    """The door and a monitor authenticate against a proxy that offers MD5
    only (what Kamailio and Asterisk send): REGISTER, INVITE, MESSAGE."""
    digest_client_against_proxy(env, "MD5")


def case_digest_client_sha256(env):
    """... a proxy that offers SHA-256 only (RFC 8760)."""
    digest_client_against_proxy(env, "SHA-256")


def case_digest_client_md5_sha256(env):
    """... a proxy that offers MD5, then SHA-256 (RFC 8760 §2.4: one challenge
    per algorithm, in the server's order of preference)."""
    digest_client_against_proxy(env, "MD5 SHA-256")


def case_digest_client_sha256_md5(env):
    """... a proxy that offers SHA-256, then MD5."""
    digest_client_against_proxy(env, "SHA-256 MD5")


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


class ChallengingRegistrar(threading.Thread):
    """A stand-in for the proxy on a raw UDP socket: every REGISTER gets 401,
    every INVITE 407 (then the ACK is absorbed), with `challenges` (header
    values); with `refuse`, also the requests that carry credentials (what a
    wrong password gets). Counts the REGISTERs with and without credentials."""

    def __init__(self, port, challenges, limit=40):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCAL, port))
        self.sock.settimeout(0.2)
        self.challenges, self.limit = challenges, limit
        self.registers, self.with_credentials, self.invites = 0, 0, 0
        self.stop_flag = False

    def run(self):
        end = time.time() + self.limit
        while time.time() < end and not self.stop_flag:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            first, hdrs, _ = _sip_parse(data)
            method = first.split()[0]
            if method not in ("REGISTER", "INVITE"):
                continue
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
        self.sock.close()


def _log_lines(text, *needles):
    return [l for l in text.splitlines() if all(n in l for n in needles)]


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
# ---- issue 11: door (forged identities, DTMF injection, code lock-out, IPv6) ----

ATTACKER = "127.0.0.2"  # "another host" on the LAN


def _raw_sip(method, ruri, local_port, transport, extra=(), body="", ctype="text/plain",
             call_id=None):
    """One out-of-dialog request as an attacker writes it: Via with our own
    address, the headers in `extra` (forged identities...)."""
    call_id = call_id or "atk-%d@%s" % (int(time.time() * 1e6), ATTACKER)
    lines = ["%s %s SIP/2.0" % (method, ruri),
             "Via: SIP/2.0/%s %s:%d;branch=z9hG4bK-atk-%d;rport"
             % (transport, ATTACKER, local_port, int(time.time() * 1e6)),
             "From: <sip:mon1@%s>;tag=atk%d" % (DOMAIN, local_port),
             "To: <%s>" % ruri, "Call-ID: %s" % call_id, "CSeq: 1 %s" % method,
             "Max-Forwards: 70", "Contact: <sip:mon1@%s:%d>" % (ATTACKER, local_port)]
    lines += list(extra)
    if body:
        lines.append("Content-Type: %s" % ctype)
    lines.append("Content-Length: %d" % len(body.encode()))
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def _final_status(data):
    """The status codes of the responses in `data` (a stream or datagrams)."""
    return [int(m) for m in re.findall(rb"SIP/2\.0 (\d{3}) ", data)]


def _attack(host_ip, port, transport, build, wait=3.0):
    """Sends the request build(local_port) to host_ip:port from `host_ip`'s
    neighbour address over UDP or TCP; returns the status codes received
    until a final one (or the bounded wait ends)."""
    kind = socket.SOCK_DGRAM if transport == "UDP" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    s.bind((ATTACKER if host_ip != LOCAL or transport == "UDP" else host_ip, 0))
    s.settimeout(0.5)
    got = b""
    try:
        if transport == "TCP":
            s.connect((LOCAL, port))
            s.sendall(build(s.getsockname()[1]))
        else:
            s.sendto(build(s.getsockname()[1]), (LOCAL, port))
        end = time.time() + wait
        while time.time() < end and not any(c >= 200 for c in _final_status(got)):
            try:
                chunk = s.recv(65535)
            except socket.timeout:
                continue
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    return _final_status(got)


def _rfc4733_packets(code, pt=101, ssrc=0x0BADF00D):
    """The RTP packets of `code` typed as RFC 4733 events: per key a start
    packet (marker, RFC 4733 section 2.5.1.1) and three end packets (E bit,
    section 2.5.1.4), all with the key's own timestamp."""
    out = []
    seq, ts = 1000, 160000
    for key in code:
        event = int(key)
        for i, (end, dur) in enumerate(((0, 160), (1, 800), (1, 800), (1, 800))):
            header = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | pt, seq, ts, ssrc)
            out.append(header + struct.pack("!BBH", event, (0x80 if end else 0) | 10, dur))
            seq += 1
        ts += 1600
    return out


def case_door_forged_identity(env):
    """Issue 11: the door opened for a forged P-Asserted-Identity (RFC 3325)
    that came over TCP from any port of the proxy's host, or over UDP with the
    proxy's address spoofed. Now it takes an identity only with the proxy's
    P-Portier-Proof (an HMAC keyed by the door's own digest HA1), and TCP only
    from the proxy's listening address. The door listens on UDP and TCP (the
    shipped bind) and trusts 127.0.0.2 as well ([account] trusted-hosts), which
    stands for a packet whose source address looks like the proxy's: only the
    proof keeps the door shut. From 127.0.0.2: MESSAGEs with mon1's identity and
    the code over UDP (no proof, a made-up proof) and TCP, an INVITE over TCP
    that mon1 would be auto-answered for; from 127.0.0.1 (another local
    process): a MESSAGE over TCP. Each gets 403 and a request_refused event;
    nothing opens, no call starts; then mon1's real MESSAGE through the proxy
    opens the door once."""
    env.start_proxy()
    code = DOOR_CODE
    env.start_door(video_codec="vp8", auto_answer="sip:mon1@%s" % DOMAIN, bind_params="",
                   account_extra="trusted-hosts = %s" % ATTACKER,
                   extra="[actions]\ndoor = %s log\n[access]\nallow = sip:mon1@%s\n"
                   % (code, DOMAIN))
    door_port = env.ports.sip(8)
    ruri = "sip:door@%s:%d" % (LOCAL, door_port)
    pai = "P-Asserted-Identity: <sip:mon1@%s>" % DOMAIN
    fake = ("P-Portier-Proof: v=1;alg=sha256;ts=%d;mac=%s" % (int(time.time()), "ab" * 32))
    sdp = ("v=0\r\no=atk 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
           "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
           % (ATTACKER, ATTACKER))
    attacks = [
        ("UDP MESSAGE, no proof", ATTACKER, "UDP",
         lambda p: _raw_sip("MESSAGE", ruri, p, "UDP", [pai], code)),
        ("UDP MESSAGE, made-up proof", ATTACKER, "UDP",
         lambda p: _raw_sip("MESSAGE", ruri, p, "UDP", [pai, fake], code)),
        ("TCP MESSAGE", ATTACKER, "TCP",
         lambda p: _raw_sip("MESSAGE", ruri, p, "TCP", [pai], code)),
        ("TCP INVITE", ATTACKER, "TCP",
         lambda p: _raw_sip("INVITE", ruri, p, "TCP", [pai, fake], sdp, "application/sdp")),
        ("TCP MESSAGE from the proxy's host", LOCAL, "TCP",
         lambda p: _raw_sip("MESSAGE", ruri, p, "TCP", [pai], code)),
    ]
    for name, host, transport, build in attacks:
        codes = _attack(host, door_port, transport, build)
        log("%s -> %s" % (name, codes))
        check(403 in codes, "%s: expected 403, got %s" % (name, codes))
    refused = [e["details"] for e in env.door_events("request_refused")]
    log("door refused: %s" % refused)
    check(len(refused) == len(attacks), "expected %d request_refused events: %s"
          % (len(attacks), refused))
    st = env.door_ctl("status")
    check(st.get("actions_run") == 0, "a forged identity opened the door: %s" % st)
    check(st.get("call") == "idle" and not env.door_events("auto_answered"),
          "a forged INVITE was answered: %s" % st)
    # The resident, through the proxy: the proof is there, the door opens.
    env.send_code_message("msg_mon1", 0, [["mon1", USERS["mon1"], DOMAIN, code]])
    deadline = time.time() + 5
    while time.time() < deadline and env.door_ctl("status").get("actions_run") != 1:
        time.sleep(0.1)
    check(env.door_ctl("status").get("actions_run") == 1, "mon1's MESSAGE did not open the door")
    check(code not in env.door_log_text().replace("sip:", ""), "the code is in the door's log")


def case_door_dtmf_injection(env):
    """Issue 11: during a resident's call, RFC 4733 events sent straight to the
    door's RTP port from a port in no SDP were credited to the resident and
    opened the door. Now the door hears RTP and RTCP only from the address the
    SDP named (the relay), latched on its first packet. mon1 answers the
    door's ring; from 127.0.0.2 the code goes as RFC 4733 events to every port
    of the door's media range: nothing opens and the door counts the packets
    it dropped; then mon1's own open-door through the relay opens it once."""
    env.start_proxy()
    door_with_monitor_access(env)
    env.start_monitor("mon1", "mon1", 0, 0)
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_monitor("mon1", lambda st: st.get("call") == "early", "ringing with early media", 15)
    check(env.mon_ctl("mon1", "answer").get("result") == "answered", "mon1 did not answer")
    env.wait_door_event("answered", 10)
    deadline = time.time() + 5
    while time.time() < deadline and env.door_ctl("status").get("audio_packets_received", 0) == 0:
        time.sleep(0.1)
    check(env.door_ctl("status").get("audio_packets_received", 0) > 0,
          "mon1's audio never reached the door")
    media_first = 60000 + (env.ports.base - 21000) % 5000  # start_door's range
    atk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    atk.bind((ATTACKER, 0))
    try:
        for port in range(media_first, media_first + 10):
            for pkt in _rfc4733_packets(DOOR_CODE):
                atk.sendto(pkt, (LOCAL, port))
                time.sleep(0.002)
    finally:
        atk.close()
    deadline = time.time() + 5
    while time.time() < deadline and env.door_ctl("status").get("foreign_media_dropped", 0) == 0:
        time.sleep(0.1)
    time.sleep(1.5)  # a credited code would have run by now
    st = env.door_ctl("status")
    log("door after the injection: actions_run=%s foreign_media_dropped=%s"
        % (st.get("actions_run"), st.get("foreign_media_dropped")))
    check(st.get("actions_run") == 0, "events from 127.0.0.2 opened the door: %s"
          % [e["details"] for e in env.door_events("action")])
    check(st.get("foreign_media_dropped", 0) > 0, "the door dropped none of the injected packets")
    check(st.get("call") == "active", "the call did not survive the injection: %s" % st)
    r = env.mon_ctl("mon1", "action", "open-door")
    check("result" in r, "mon1 action open-door: %s" % r)
    deadline = time.time() + 10
    while time.time() < deadline and env.door_ctl("status").get("actions_run") != 1:
        time.sleep(0.1)
    actions = [e["details"] for e in env.door_events("action")]
    check(actions == ["via=rfc4733 from=sip:mon1@%s action=door result=done" % DOMAIN],
          "expected one opening by mon1 through the relay: %s" % actions)
    check(env.mon_ctl("mon1", "hangup").get("result") == "hung up", "mon1 hangup")
    env.wait_door_event("ended", 5)


def case_door_code_alarm(env):
    """Issue 11: wrong codes from all identities past global-max-wrong-codes
    raise the alarm: an event line at the door and a SIP MESSAGE to its call
    target, which each portier-monitor shows as an `alarm` event and status
    field. The identity that guessed is locked out; a resident who typed
    nothing wrong still opens. A forged alarm from 127.0.0.2 straight to a
    monitor gets 403."""
    env.start_proxy()
    door_with_monitor_access(env, extra="global-max-wrong-codes = 3\nmax-wrong-codes = 5\n")
    env.start_monitor("mon1", "mon1", 0, 0)
    env.start_monitor("mon2", "mon2", 1, 1)
    wrong = "111111" if DOOR_CODE != "111111" else "222222"
    env.send_code_message("guess", 2, [["mon1", USERS["mon1"], DOMAIN, wrong]] * 3)
    alarm = env.wait_door_event("alarm", 10)
    log("door alarm: %s" % alarm[0]["details"])
    check("wrong_codes=3" in alarm[0]["details"] and "last_from=sip:mon1@" in alarm[0]["details"],
          "alarm details: %s" % alarm[0]["details"])
    for name in ("mon1", "mon2"):
        st = env.wait_monitor(name, lambda st: st.get("alarms") == 1, "the door's alarm", 10)
        check("3 wrong door codes" in st.get("alarm", ""), "%s alarm: %r" % (name, st.get("alarm")))
        evs = [e for e in env.monitor_events(name) if e.get("event") == "alarm"]
        check(evs and evs[0].get("from") == "sip:door@%s" % DOMAIN, "%s alarm events: %s"
              % (name, evs))
    # A forged alarm straight to mon2, from another host: refused, not shown.
    codes = _attack(ATTACKER, env.ports.sip(1), "UDP", lambda p: _raw_sip(
        "MESSAGE", "sip:mon2@%s:%d" % (LOCAL, env.ports.sip(1)), p, "UDP",
        ["P-Asserted-Identity: <sip:door@%s>" % DOMAIN], "all clear"))
    log("forged alarm to mon2 -> %s" % codes)
    check(403 in codes, "forged alarm: %s" % codes)
    check(env.mon_ctl("mon2", "status").get("alarms") == 1, "the forged alarm was shown")
    # mon1 guessed: locked out even with the right code; mon2 typed nothing wrong: opens.
    for user, slot in (("mon1", 3), ("mon2", 4)):
        env.send_code_message("code_" + user, slot, [[user, USERS[user], DOMAIN, DOOR_CODE]])
    actions = env.door_actions(5)
    log("door actions: %s" % actions)
    check(actions[-2:] == ["via=message from=sip:mon1@%s refused=locked_out" % DOMAIN,
                           "via=message from=sip:mon2@%s action=door result=done" % DOMAIN],
          "after the alarm: %s" % actions)
    check(env.door_ctl("status").get("actions_run") == 1, "the door ran its action once")
    check_no_code_in_logs(env, "mon1", "mon2")


def case_door_dialog_injection(env):
    """Issue 11 (the DTMF injection's SIP twin): keys typed in a call are
    credited to its proven peer, so an INFO application/dtmf-relay inside the
    dialog counts only when it came through the proxy (RFC 3261 section 16.6
    step 4: the dialog is record-routed). mon1 (sipp) calls the auto-answering
    door and holds the call; from 127.0.0.2, with the dialog's Call-ID and tags
    as a sniffer on the LAN sees them, the code goes as INFOs straight to the
    door: nothing opens, each is a request_refused event; a re-INVITE that
    would send the door's media to 127.0.0.2 gets 403."""
    env.start_proxy()
    env.start_door(video_codec="vp8", auto_answer="sip:mon1@%s" % DOMAIN,
                   extra="[actions]\ndoor = %s log\n[access]\nallow = sip:mon1@%s\n"
                   % (DOOR_CODE, DOMAIN))
    call = env.door("hold", "door_call_hold.xml", "door", 0, user="mon1", timeout=30)
    deadline = time.time() + 10
    ok = []
    while time.time() < deadline and not ok:
        ok = call.received(lambda m: m.status == 200 and m.cseq_method() == "INVITE")
        time.sleep(0.1)
    check(ok, "the door did not answer mon1's call")
    check(env.door_ctl("status").get("call") == "active", "the door's call is not active")
    call_id = ok[0].hdr("Call-ID")
    from_hdr, to_hdr = ok[0].hdr("From"), ok[0].hdr("To")
    door_port = env.ports.sip(8)
    for i, key in enumerate(DOOR_CODE):
        body = "Signal=%s\r\nDuration=250\r\n" % key

        def info(p, i=i, body=body):
            lines = ["INFO sip:door@%s:%d SIP/2.0" % (LOCAL, door_port),
                     "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-inj-%d-%d" % (ATTACKER, p, i, p),
                     "From: %s" % from_hdr, "To: %s" % to_hdr, "Call-ID: %s" % call_id,
                     "CSeq: %d INFO" % (100 + i), "Max-Forwards: 70",
                     "Content-Type: application/dtmf-relay",
                     "Content-Length: %d" % len(body)]
            return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
        log("INFO %d from %s -> %s" % (i + 1, ATTACKER, _attack(ATTACKER, door_port, "UDP", info)))
    time.sleep(0.5)  # a credited code would have run by now
    check(env.door_ctl("status").get("actions_run") == 0, "injected INFOs opened the door: %s"
          % [e["details"] for e in env.door_events("action")])
    refused = [e["details"] for e in env.door_events("request_refused")]
    log("door refused: %s" % refused)
    check(len([r for r in refused if r.startswith("method=INFO source=%s:" % ATTACKER)])
          == len(DOOR_CODE), "the injected INFOs were not all refused: %s" % refused)
    # A re-INVITE in the dialog from 127.0.0.2 would move the door's camera
    # to the attacker: 403, nothing answered.
    sdp = ("v=0\r\no=atk 2 2 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
           "m=audio 40000 RTP/AVP 0\r\nm=video 40002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
           % (ATTACKER, ATTACKER))

    def reinvite(p):
        lines = ["INVITE sip:door@%s:%d SIP/2.0" % (LOCAL, door_port),
                 "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-reinv-%d" % (ATTACKER, p, p),
                 "From: %s" % from_hdr, "To: %s" % to_hdr, "Call-ID: %s" % call_id,
                 "CSeq: 200 INVITE", "Max-Forwards: 70",
                 "Contact: <sip:mon1@%s:%d>" % (ATTACKER, p),
                 "Content-Type: application/sdp", "Content-Length: %d" % len(sdp)]
        return ("\r\n".join(lines) + "\r\n\r\n" + sdp).encode()
    codes = _attack(ATTACKER, door_port, "UDP", reinvite)
    log("re-INVITE from %s -> %s" % (ATTACKER, codes))
    check(403 in codes and 200 not in codes, "the door took a re-INVITE from 127.0.0.2: %s" % codes)
    check(env.door_ctl("status").get("call") == "active", "the door's call did not survive")
    call.wait()
    call.expect_ok()


def case_door_invite_ipv6(env):
    """Issue 11 regression (a crash from network input): one auto-answered
    INVITE whose SDP names an IPv6 address SEGVed the door inside
    multiudpsink, whose socket is IPv4. The relay is off so that the offer
    reaches the door as written. Now the door answers 488 with a Warning
    (RFC 3261 section 20.43), hands nothing to a sink, and takes the next,
    ordinary call."""
    env.relay_enabled = False
    env.start_proxy()
    env.start_door(video_codec="vp8", auto_answer="sip:mon1@%s" % DOMAIN)
    s = env.door("v6", "door_invite_ipv6.xml", "door", 0, user="mon1", timeout=15)
    s.wait()
    s.expect_ok()
    check(env.door_proc.running(), "portier-door died on the IPv6 offer: %s"
          % env.door_log_text()[-1500:])
    st = env.door_ctl("status")
    check(st.get("call") == "idle" and st.get("registered"), "door after the IPv6 offer: %s" % st)
    # The door still serves: an IPv4 call from the same resident is answered.
    s = env.door("v4", "door_call.xml", "door", 1, user="mon1", timeout=20)
    s.wait()
    s.expect_ok()
    check(env.door_proc.running(), "portier-door died after the IPv6 offer")
    check(env.door_events("auto_answered"), "the IPv4 call was not answered")
def case_auth_spoofed_source_no_ban(env):
    """Issue 11, bans a spoofed address cannot trigger: the attacker on 127.0.0.2
    gets a challenge, then sends a wrong answer with its nonce from 127.0.0.1 (a
    socket bound to 127.0.0.1, another port: the honest stand-in for a UDP packet
    with a forged source), 20 times. Each nonce was issued to 127.0.0.2, so none of
    these counts against 127.0.0.1 (half of them also carry a wrong digest uri): it
    is not banned (portierctl bans), no fail2ban-style 'auth failure:
    src=127.0.0.1' line is written; nor do 10 more while the resident, after three
    typos of its own, is in back-off; and alice on 127.0.0.1 registers. The same wrong answers with nonces issued to
    127.0.0.1 itself do get it banned (RFC 7616 section 5.5: a nonce tied to the
    client's address). max-failures-per-source = 5."""
    _with_config(env, auth="max-failures-per-source = 5\n")
    env.start_proxy()
    attacker = _RawUA(env, ATTACKER)
    spoofer = _RawUA(env, LOCAL)
    answers = {}
    for i in range(20):
        ch = attacker.challenge("alice")
        # Every other one with a digest uri that is not the Request-URI: with the
        # resident's own nonce that would be a 400 and a failure (RFC 2617 3.2.2.5).
        uri = "sip:" + DOMAIN if i % 2 else "sip:door@" + DOMAIN
        res = spoofer.request("REGISTER", "sip:" + DOMAIN, "alice", wait=0.5, expect_reply=False,
                              auth=digest_auth("alice", "guess-%d" % i, ch, "REGISTER", uri))
        key = res[-1][0] if res else None
        answers[key] = answers.get(key, 0) + 1
    log("20 wrong answers from %s:%d with nonces issued to %s: answers %s"
        % (LOCAL, spoofer.port, ATTACKER, answers))
    bans = env.ctl("bans")["bans"]
    check(not [b for b in bans if b.get("address") == LOCAL],
          "wrong answers with %s's nonces got %s banned: %s" % (ATTACKER, LOCAL, bans))
    check(answers == {401: 20}, "answers to the spoofed responses: %s, expected a fresh "
          "challenge (401) each time" % answers)
    check(not _auth_lines(env, "auth failure: src=%s " % LOCAL),
          "failure lines against %s (fail2ban would ban it): %s"
          % (LOCAL, _auth_lines(env, "auth failure: src=%s " % LOCAL)[:2]))
    check(_auth_lines(env, "not counted against %s" % LOCAL),
          "no log line about the responses whose nonce was not issued to %s" % LOCAL)
    check(not env.bindings_for("alice"), "a wrong answer registered alice")

    # The resident mistypes three times (its own nonces): 127.0.0.1 is in back-off,
    # where each attempt with credentials counts. The forged ones still do not.
    own = _RawUA(env, LOCAL)

    def own_wrong_answer(i):
        res = own.request("REGISTER", "sip:" + DOMAIN, "alice", wait=0.5, expect_reply=False)
        if not res:
            return None
        ch = find_challenge(res[-1][1]["www-authenticate"])
        res = own.request("REGISTER", "sip:" + DOMAIN, "alice", wait=0.5, expect_reply=False,
                          auth=digest_auth("alice", "typo-%d" % i, ch, "REGISTER", "sip:" + DOMAIN))
        return res[-1][0] if res else 0

    typos = [own_wrong_answer(i) for i in range(3)]
    answers = {}
    for i in range(10):
        ch = attacker.challenge("alice")
        res = spoofer.request("REGISTER", "sip:" + DOMAIN, "alice", wait=0.5, expect_reply=False,
                              auth=digest_auth("alice", "guess-%d" % i, ch, "REGISTER",
                                           "sip:" + DOMAIN))
        key = res[-1][0] if res else None
        answers[key] = answers.get(key, 0) + 1
    log("3 typos of the resident -> %s; then 10 forged answers during its back-off -> %s"
        % (typos, answers))
    bans = env.ctl("bans")["bans"]
    check(not [b for b in bans if b.get("address") == LOCAL],
          "forged answers during the resident's back-off got %s banned: %s" % (LOCAL, bans))
    check(answers == {401: 10}, "answers to the forged responses during the back-off: %s, "
          "expected a fresh challenge (401) each time" % answers)
    time.sleep(1.5)  # the back-off after the third failure (failure-backoff = 1)
    env.register("alice", 0).expect_ok()
    check(has_binding(env.bindings_for("alice"), "alice", env.ports.sip(0)),
          "the resident alice (127.0.0.1) could not register after the spoofed failures")

    # The same wrong answers, each with a nonce issued to 127.0.0.1: its own failures.
    banned = False
    for i in range(12):
        if own_wrong_answer(i) is None:
            banned = True
            break
    bans = env.ctl("bans")["bans"]
    log("after wrong answers with its own nonces: bans %s" % bans)
    check(banned and [b for b in bans if b.get("address") == LOCAL],
          "%s not banned after wrong answers with nonces issued to it: %s" % (LOCAL, bans))
    check(_auth_lines(env, "auth failure: src=%s " % LOCAL), "no failure line for %s" % LOCAL)
    # Lifted by hand, the household is served again.
    check(env.ctl("unban", LOCAL).get("ok") is True, "unban %s failed" % LOCAL)
    env.register("alice", 0).expect_ok()
    env.assert_no_secrets()


def case_auth_replay_log_bounded(env):
    """Issue 11, log budget: a REGISTER whose nonce-count was used already (a UDP
    retransmission after a lost 200, or a replay; RFC 7616 section 3.4) gets 401
    with stale=true and an info line; 30 of them from 127.0.0.1 write at most
    failure-log-lines (5) such lines, count as no failure (127.0.0.1 is not
    banned, max-failures-per-source = 5), and leave the binding in place."""
    _with_config(env, auth="max-failures-per-source = 5\n")
    env.start_proxy()
    ua = _RawUA(env, LOCAL)
    ch = ua.challenge("alice")
    auth = digest_auth("alice", USERS["alice"], ch, "REGISTER", "sip:" + DOMAIN)
    res = ua.request("REGISTER", "sip:" + DOMAIN, "alice", auth=auth)
    check(res[-1][0] == 200, "the first answer got %s, expected 200" % res[-1][2])
    answers = {}
    stale = 0
    for _ in range(30):
        res = ua.request("REGISTER", "sip:" + DOMAIN, "alice", auth=auth, wait=0.5,
                         expect_reply=False)
        key = res[-1][0] if res else None
        answers[key] = answers.get(key, 0) + 1
        if res and any(re.search(r"stale\s*=\s*true", v, re.I)
                       for v in res[-1][1].get("www-authenticate", [])):
            stale += 1
    lines = _auth_lines(env, "src=%s user=\"alice\" reused a nonce-count" % LOCAL)
    log("30 replays of an accepted nonce-count: answers %s (%d with stale=true), %d log lines"
        % (answers, stale, len(lines)))
    check(answers == {401: 30} and stale == 30,
          "replays answered %s, %d with stale=true; expected 401 stale=true each" % (answers, stale))
    check(1 <= len(lines) <= 5, "%d 'reused a nonce-count' lines for 30 replays (expected 1..5)"
          % len(lines))
    bans = env.ctl("bans")["bans"]
    check(not bans, "replays of a right answer banned someone: %s" % bans)
    check(_bindings_from(env, "alice", LOCAL), "the binding is gone after the replays")
    env.register("alice", 0).expect_ok()
    env.assert_no_secrets()


# --------------------------------------------------------------------------
# issue 11: no unrewritten SDP reaches the other side of a relayed call
# --------------------------------------------------------------------------


def _rogue_device(env, user, slot):
    """user registered from 127.0.0.2 (another host on the LAN) at SIP port
    slot, driven as a RawUa: a device whose SDP names 127.0.0.2, so an answer
    that bypassed the relay is told apart from the relay's (127.0.0.1)."""
    port = env.ports.sip(slot)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ATTACKER, port))
    try:
        r = sip_register(env, user, "<sip:%s@%s:%d>" % (user, ATTACKER, port), src=ATTACKER,
                         sock=s)
    finally:
        s.close()
    check(r is not None and status_of(r) == 200, "%s could not register from %s: %r"
          % (user, ATTACKER, r[:80] if r else r))
    return RawUa(user, ATTACKER, port)


def _bypassing(ua, call_id, *needles):
    """The messages of call_id that ua received whose body names one of needles
    (the device's media address or ports): SDP that would bypass the relay."""
    return [m.first for m in ua.got(lambda m: m.hdr("Call-ID") == call_id and m.body and
                                    any(n in m.body for n in needles))]


def _ack_failure(ua, ruri, resp, route=()):
    """The ACK of a non-2xx final response, in its transaction (RFC 3261
    section 17.1.1.3: the INVITE's Via branch and Route)."""
    ua.send("ACK %s SIP/2.0\nVia: %s\n%sFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %d ACK\n"
            "Max-Forwards: 70" % (ruri, resp.hdr("Via"), "".join("Route: %s\n" % r for r in route),
                                  resp.hdr("From"), resp.hdr("To"), resp.hdr("Call-ID"),
                                  resp.cseq()[0]))


def _proxy_hangs_up(dev, call_id, cause):
    """The proxy's ACK and BYE that end a device's refused 2xx; the BYE says
    why (RFC 3326). Returns the BYE, answered 200."""
    dev.wait_for(lambda m: m.method == "ACK" and m.hdr("Call-ID") == call_id, 5,
                 "the proxy's ACK of the refused 200")
    bye = dev.wait_for(lambda m: m.method == "BYE" and m.hdr("Call-ID") == call_id, 5,
                       "the proxy's BYE of the refused 200")
    check("cause=%d" % cause in (bye.hdr("Reason") or "").replace(" ", ""),
          "the proxy's BYE Reason %r, expected cause=%d" % (bye.hdr("Reason"), cause))
    _reply(dev, bye, 200, "OK", "x")
    return bye


def case_relay_unusable_answer_forked(env):
    """RFC 3264 section 6: the door rings the group; mon1, registered from
    127.0.0.2, answers with SDP the relay cannot use. Its 183 has more m=
    lines than the offer: the door gets the 183 without SDP (the device rings,
    without early media). Its 200 has only a line that matches nothing in
    the offer: it never reaches the door; the proxy ACKs it and sends BYE
    (Reason cause=488). mon2 answers 200: the door gets mon2's answer pointed
    at the relay and its audio reaches mon2 through the relay. No SDP naming
    mon1's address or ports ever reached the door (it used to get both
    unrewritten, and send its media straight to mon1)."""
    env.start_proxy()
    (mon2,) = _devices(env, ["mon2"])
    mon1 = _rogue_device(env, "mon1", 6)
    door = RawUa("door", LOCAL)
    door_rtp = RtpPeer("door_rtp", env.ports.media(6))
    mon2_rtp = RtpPeer("mon2_rtp", env.ports.media(7))
    try:
        call = RawCall(env, door, "door", GROUP,
                       sdp_body(LOCAL, ["audio %d RTP/AVP 0" % door_rtp.port]))
        inv1, inv2 = _invite_of(mon1), _invite_of(mon2)
        _reply(mon1, inv1, 183, "Session Progress", "m1",
               body=sdp_body(ATTACKER, ["audio 4170 RTP/AVP 0", "video 4172 RTP/AVP 96"]))
        early = door.wait_for(lambda m: m in call.responses() and m.status == 183, 5,
                              "mon1's 183")
        log("door: %s with %d body bytes" % (early.first, len(early.body.strip())))
        check("m=" not in early.body, "mon1's unusable early answer reached the door: %r"
              % early.body)
        _reply(mon1, inv1, 200, "OK", "m1", body=sdp_body(ATTACKER, ["video 4172 RTP/AVP 96"]))
        _proxy_hangs_up(mon1, call.call_id, 488)
        check(not door.got(lambda m: m in call.responses() and m.status >= 200),
              "mon1's unusable 200 ended the door's INVITE")
        _reply(mon2, inv2, 200, "OK", "m2",
               body=sdp_body(LOCAL, ["audio %d RTP/AVP 0" % mon2_rtp.port]))
        ok = call.final()
        check(ok.status == 200 and "tag=m2" in ok.hdr("To"),
              "door: %s (To %s), expected mon2's 200" % (ok.first, ok.hdr("To")))
        call.in_dialog("ACK", ok)
        audio = re.search(r"m=audio (\d+) ", ok.body)
        check(audio and int(audio.group(1)) != mon2_rtp.port,
              "the door's answer does not point at the relay: %r" % ok.body)
        for seq in range(1, 11):
            door_rtp.sock.sendto(rtp_packet(seq, seq * 160, 0xd00d, b"\x00" * 20, pt=0),
                                 (LOCAL, int(audio.group(1))))
            time.sleep(0.01)
        deadline = time.time() + 3
        while not mon2_rtp.rtp(0xd00d) and time.time() < deadline:
            time.sleep(0.05)
        check(mon2_rtp.rtp(0xd00d), "the door's audio never reached mon2 through the relay")
        bad = _bypassing(door, call.call_id, ATTACKER, "4170", "4172")
        check(not bad, "SDP naming mon1 reached the door in %s" % bad)
        call.in_dialog("BYE", ok)
        bye = mon2.wait_for(lambda m: m.method == "BYE", 5, "BYE")
        _reply(mon2, bye, 200, "OK", "m2")
        env.wait_relay_free()
        check("unusable answer" in env.proxy_log_text(), "no log line names the refused answer")
    finally:
        for p in (mon1, mon2, door, door_rtp, mon2_rtp):
            p.close()
    env.assert_no_secrets()


def case_relay_unusable_answer_refused(env):
    """mon1, registered from 127.0.0.2, is the only device rung and answers
    200 with more m= lines than the offer (RFC 3264 section 6). The door gets
    488 Not Acceptable Here with a Warning naming the branch and why, and no
    SDP naming mon1; the proxy ends mon1's dialog (ACK, BYE with Reason
    cause=488); every relay port is freed. The next call still rings mon1."""
    env.start_proxy()
    mon1 = _rogue_device(env, "mon1", 6)
    door = RawUa("door", LOCAL)
    try:
        call = RawCall(env, door, "door", "mon1", sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"]))
        inv = _invite_of(mon1, call.call_id)
        _reply(mon1, inv, 200, "OK", "m1",
               body=sdp_body(ATTACKER, ["audio 4170 RTP/AVP 0", "video 4172 RTP/AVP 96"]))
        fin = call.final()
        log("door: %s / Warning: %s" % (fin.first, fin.hdr("Warning")))
        check(fin.status == 488, "door: %s, expected 488 (mon1's answer is unusable)" % fin.first)
        text = _warning_text(fin)
        check("branch 0" in text and "m= lines" in text,
              "the Warning %r does not name the branch and the m= lines" % text)
        _proxy_hangs_up(mon1, call.call_id, 488)
        bad = _bypassing(door, call.call_id, ATTACKER, "4170", "4172")
        check(not bad, "SDP naming mon1 reached the door in %s" % bad)
        env.wait_relay_free()
        env.wait_no_calls()
        again = RawCall(env, door, "door", "mon1", sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"]))
        inv = _invite_of(mon1, again.call_id)
        _reply(mon1, inv, 486, "Busy Here", "m1b")
        check(again.final().status == 486, "the next call did not get mon1's 486")
        env.wait_relay_free()
    finally:
        for p in (mon1, door):
            p.close()
    env.assert_no_secrets()


def case_relay_reinvite_unusable_sdp(env):
    """In an answered relayed call, re-INVITE offers (RFC 3261 section 14) from
    the door with a c= the relay cannot use (IPv6 on the IPv4 relay, a host
    name) and an UPDATE (RFC 3311) from mon1 naming a host get 488 with a
    Warning and go nowhere (they used to be forwarded as written); the media
    still flows through the relay as before. A re-INVITE without SDP whose
    ACK carries an answer naming a host: mon1 gets the ACK without SDP.
    Then a good re-INVITE whose 2xx
    answer names a host: the door gets 488 (no SDP), the proxy ends mon1's
    side (ACK, BYE with Reason cause=488), the relay frees the call's ports
    and the door's BYE finds no dialog any more (481)."""
    env.start_proxy()
    c = _py_call(env)
    try:
        check(_media_reaches_callee(env, c) == 10, "no media before the re-INVITEs")
        before = _relay_call(env, c.call_id)
        v6 = (b"v=0\r\no=door 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n"
              b"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
        named = _py_sdp(4000, version=3, host="relay-victim.invalid")
        for what, body, expected in (("IPv6", v6, "IPv6"), ("host name", named,
                                                            "not an IP address")):
            c.send_in_dialog("INVITE", body=body)
            r = c.caller.response_to("INVITE")
            _ack_failure(c.caller, c.callee_contact, r, list(reversed(c.record_route)))
            log("door's re-INVITE with %s: %s / Warning: %s" % (what, r.first, r.hdr("Warning")))
            check(r.status == 488, "re-INVITE with %s: %s, expected 488" % (what, r.first))
            text = _warning_text(r)
            check(expected in text, "%s: warn-text %r does not say %r" % (what, text, expected))
        c.send_in_dialog("UPDATE", from_caller=False, body=named)
        r = c.callee.response_to("UPDATE")
        check(r.status == 488 and "not an IP address" in _warning_text(r),
              "mon1's UPDATE naming a host: %s / %s, expected 488" % (r.first, r.hdr("Warning")))
        check(not c.callee.quiet(lambda m: m.method == "INVITE", 0.3),
              "mon1 received a re-INVITE the relay could not rewrite")
        check(not c.caller.quiet(lambda m: m.method == "UPDATE", 0.1),
              "the door received an UPDATE the relay could not rewrite")
        after = _relay_call(env, c.call_id)
        check(after and after.get("ports") == before.get("ports"),
              "the relay's call changed: %s -> %s" % (before, after))
        check(_media_reaches_callee(env, c) == 10, "mon1 lost the door's media")
        # A re-INVITE without SDP: mon1's offer comes in the 200, the door's
        # answer in the ACK (RFC 3264 section 4). An answer naming a host
        # reaches mon1 without its SDP, never as written.
        c.send_in_dialog("INVITE")
        got = c.callee.expect(lambda m: m.method == "INVITE", "the door's re-INVITE without SDP")
        c.callee.reply(got, 200, "OK", body=_py_sdp(c.callee_rtp.port, owner="mon1", version=3))
        r = c.caller.response_to("INVITE")
        check(r.status == 200 and b"m=audio %d " % c.caller_media_to in r.body,
              "the 200's offer is not pointed at the relay: %s %r" % (r.first, r.body))
        c.send_in_dialog("ACK", cseq=r.cseq()[0], body=_py_sdp(4000, version=5,
                                                                host="relay-victim.invalid"))
        ack = c.callee.expect(lambda m: m.method == "ACK", "the door's ACK")
        check(b"relay-victim" not in ack.body and b"m=" not in ack.body,
              "the ACK's unusable answer reached mon1: %r" % ack.body)
        # A good offer, an unusable answer: the 2xx cannot go up as it is.
        c.send_in_dialog("INVITE", body=_py_sdp(c.caller_rtp.port, version=4))
        got = c.callee.expect(lambda m: m.method == "INVITE", "the door's good re-INVITE")
        check(b"IN IP4 127.0.0.1" in got.body, "the re-INVITE's offer: %r" % got.body)
        c.callee.reply(got, 200, "OK", body=_py_sdp(c.callee_rtp.port, owner="mon1", version=2,
                                                    host="relay-victim.invalid"))
        r = c.caller.response_to("INVITE", timeout=5)
        log("door's re-INVITE answered with a host name: %s / Warning: %s"
            % (r.first, r.hdr("Warning")))
        check(r.status == 488, "door: %s, expected 488 (mon1's answer is unusable)" % r.first)
        check(b"relay-victim" not in r.body, "the unusable answer reached the door")
        _ack_failure(c.caller, c.callee_contact, r, list(reversed(c.record_route)))
        c.callee.expect(lambda m: m.method == "ACK", "the proxy's ACK of the refused 200")
        bye = c.callee.expect(lambda m: m.method == "BYE", "the proxy's BYE")
        check("cause=488" in (bye.hdr("Reason") or "").replace(" ", ""),
              "the proxy's BYE Reason %r, expected cause=488" % bye.hdr("Reason"))
        c.callee.reply(bye, 200, "OK")
        env.wait_relay_free()
        env.wait_no_calls()
        check(not [m for m in c.caller.received if b"relay-victim" in m.body],
              "SDP naming a host reached the door")
        c.send_in_dialog("BYE")
        r = c.caller.response_to("BYE")
        check(r.status == 481, "the door's BYE after the call ended: %s, expected 481" % r.first)
    finally:
        _close_call(c)
    env.assert_no_secrets()

# issue 11: a BYE straight to the door or a monitor
def _wire_messages(text):
    """The SIP messages in a device's log written with TPORT_LOG=1 (sofia-sip
    logs each message it sends or receives between two dashed lines, each
    line indented): what a sniffer on the LAN sees. Returns (direction,
    [lines]) pairs, direction "recv" or "send"."""
    out, cur, direction = [], None, None
    for line in text.splitlines():
        prefixed = re.match(r"^\S+ \S+\[\d+\] \w+: (.*)$", line)  # our log's own prefix
        if prefixed:
            line = prefixed.group(1)
        m = re.match(r"^(recv|send) \d+ bytes (from|to) ", line)
        if m:
            direction = m.group(1)
            continue
        if re.match(r"^\s+-{20,}\s*$", line):
            if cur is None:
                cur = []
            else:
                out.append((direction, cur))
                cur = None
            continue
        if cur is not None:
            cur.append(line.strip())
    return out


def _wire_header(lines, name):
    for line in lines:
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def _sniffed_call(env, name, timeout=5):
    """The dialog of the call `name` (a monitor started with TPORT_LOG=1) took
    from the door, as the LAN shows it: Call-ID, the door's From (its tag),
    the monitor's To (its tag), the INVITE's CSeq number."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        msgs = _wire_messages(env.monitor_log_text(name))
        invites = [m for d, m in msgs if d == "recv" and m and m[0].startswith("INVITE ")]
        answers = [m for d, m in msgs if d == "send" and m and m[0].startswith("SIP/2.0 200")
                   and _wire_header(m, "CSeq").endswith("INVITE")]
        if invites and answers:
            inv, ok = invites[-1], answers[-1]
            return {"call_id": _wire_header(inv, "Call-ID"), "door": _wire_header(inv, "From"),
                    "monitor": _wire_header(ok, "To"),
                    "cseq": int(_wire_header(inv, "CSeq").split()[0])}
        time.sleep(0.1)
    raise TestFailure("%s's log shows no INVITE and its 200 (TPORT_LOG)" % name)


def _in_dialog(method, ruri, from_hdr, to_hdr, call_id, cseq, tag):
    """build(local_port) for _attack: an in-dialog request from the attacker's
    socket with the sniffed ids (RFC 3261 section 12.2.1.1)."""
    def build(p):
        lines = ["%s %s SIP/2.0" % (method, ruri),
                 "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%s-%d" % (ATTACKER, p, tag, p),
                 "From: %s" % from_hdr, "To: %s" % to_hdr, "Call-ID: %s" % call_id,
                 "CSeq: %d %s" % (cseq, method), "Max-Forwards: 70", "Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()
    return build


def _media_counters(env, name):
    door, mon = env.door_ctl("status"), env.mon_ctl(name, "status")
    return (door.get("video_packets_sent", 0), door.get("audio_packets_received", 0),
            mon.get("video_packets_received", 0), mon.get("audio_packets_received", 0))


def _media_still_flows(env, name, within=5):
    """True when every counter of _media_counters grows within `within` s."""
    before = _media_counters(env, name)
    deadline = time.time() + within
    now = before
    while time.time() < deadline:
        time.sleep(0.3)
        now = _media_counters(env, name)
        if all(b > a for a, b in zip(before, now)):
            return True
    log("media counters (door video sent, door audio received, %s video received, "
        "%s audio received): %s -> %s" % (name, name, before, now))
    return False


def case_door_forged_bye(env):
    """Issue 11: a BYE sent straight to the door or to a monitor ended the
    call, because nua answered it 200 before the device saw it. The door rings
    mon1 through the proxy (the dialog is record-routed, RFC 3261 sections
    16.6 step 4 and 12.2: every request of the peer comes through the proxy),
    mon1 answers; from 127.0.0.2, with the Call-ID and tags a sniffer on the
    LAN sees, a BYE goes to the door as if from mon1 and one to mon1 as if
    from the door. Neither is answered while the call lasts (any final answer
    would end nua's session), each is a refusal event; both still show the
    call and the media still flows both ways. Then mon1's own hang-up, through
    the proxy, ends the call at the door."""
    env.start_proxy()
    door_with_monitor_access(env)
    env.start_monitor("mon1", "mon1", 0, 0, environ=dict(os.environ, TPORT_LOG="1"))
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_monitor("mon1", lambda st: st.get("call") == "early", "ringing with early media", 15)
    check(env.mon_ctl("mon1", "answer").get("result") == "answered", "mon1 did not answer")
    env.wait_door_event("answered", 10)
    check(_media_still_flows(env, "mon1"), "the call's media does not flow before the attack")
    d = _sniffed_call(env, "mon1")
    log("sniffed dialog: %s" % d)
    door_port, mon_port = env.ports.sip(8), env.ports.sip(0)
    attacks = [
        ("BYE to the door as mon1", door_port,
         _in_dialog("BYE", "sip:door@%s:%d" % (LOCAL, door_port), d["monitor"], d["door"],
                    d["call_id"], 1000, "fbye-door")),
        ("BYE to mon1 as the door", mon_port,
         _in_dialog("BYE", "sip:mon1@%s:%d" % (LOCAL, mon_port), d["door"], d["monitor"],
                    d["call_id"], d["cseq"] + 1000, "fbye-mon1")),
    ]
    for what, port, build in attacks:
        # Unanswered while the call lasts: any final response to a BYE ends
        # nua's session (sip::Account::vet_bye); the 403 comes after the call.
        codes = _attack(ATTACKER, port, "UDP", build, wait=2.0)
        log("%s from %s -> %s" % (what, ATTACKER, codes))
        check(not any(c >= 200 for c in codes), "%s: answered %s" % (what, codes))
    refused = [e["details"] for e in env.door_events("request_refused")]
    check(any(r.startswith("method=BYE source=%s:" % ATTACKER) for r in refused),
          "the door reported no refused BYE: %s" % refused)
    mon_refused = [e for e in env.monitor_events("mon1") if e.get("event") == "refused"]
    check(any(e.get("method") == "BYE" and e.get("source", "").startswith(ATTACKER + ":")
              for e in mon_refused), "mon1 reported no refused BYE: %s" % mon_refused)
    check(env.door_ctl("status").get("call") == "active" and not env.door_events("ended"),
          "a forged BYE ended the door's call: %s" % env.door_ctl("status"))
    check(env.mon_ctl("mon1", "status").get("call") == "answered",
          "a forged BYE ended mon1's call: %s" % env.mon_ctl("mon1", "status"))
    check(_media_still_flows(env, "mon1"), "the media stopped after the forged BYEs")
    # The real hang-up, through the proxy, still ends the call.
    check(env.mon_ctl("mon1", "hangup").get("result") == "hung up", "mon1 hangup")
    ended = env.wait_door_event("ended", 5)
    check("hung up" in ended[0]["details"], "the door's call ended otherwise: %s"
          % ended[0]["details"])
    check(env.door_ctl("status").get("call") == "idle", "the door's call is still up")


def _sniffed_invite(env, name, timeout=5):
    """The INVITE a ringing monitor (TPORT_LOG=1) received, as the LAN shows
    it: its lines, Call-ID, From (the door's tag), top Via, CSeq number and
    the monitor's To tag from its 180."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        msgs = _wire_messages(env.monitor_log_text(name))
        invites = [m for d, m in msgs if d == "recv" and m and m[0].startswith("INVITE ")]
        ringing = [m for d, m in msgs if d == "send" and m and m[0].startswith("SIP/2.0 18")]
        if invites and ringing:
            inv = invites[-1]
            return {"ruri": inv[0].split()[1], "call_id": _wire_header(inv, "Call-ID"),
                    "from": _wire_header(inv, "From"), "to": _wire_header(inv, "To"),
                    "via": _wire_header(inv, "Via"), "monitor": _wire_header(ringing[-1], "To"),
                    "cseq": int(_wire_header(inv, "CSeq").split()[0])}
        time.sleep(0.1)
    raise TestFailure("%s's log shows no INVITE and its 18x (TPORT_LOG)" % name)


def case_monitor_forged_bye_ringing(env):
    """Issue 11: while a monitor rings with the door's early media, a BYE on
    the early dialog sent straight to it from 127.0.0.2 (the Call-ID and tags
    of the 183 as the LAN shows them) stopped its ringing: nua answered it 200
    and ended the call. Now it is a refusal event, unanswered while the call
    lasts; mon1 still rings with video, answers, and the call is up at the
    door; then mon1 hangs up and the held BYE gets its 403."""
    env.start_proxy()
    door_with_monitor_access(env)
    env.start_monitor("mon1", "mon1", 0, 0, environ=dict(os.environ, TPORT_LOG="1"))
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_monitor("mon1", lambda st: st.get("call") == "early", "ringing with early media", 15)
    d = _sniffed_invite(env, "mon1")
    log("sniffed early dialog: %s" % d)
    mon_port = env.ports.sip(0)
    atk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    atk.bind((ATTACKER, 0))
    atk.settimeout(0.3)
    try:
        build = _in_dialog("BYE", d["ruri"], d["from"], d["monitor"], d["call_id"],
                           d["cseq"] + 1000, "fbye-early")
        atk.sendto(build(atk.getsockname()[1]), (LOCAL, mon_port))
        got = b""
        end = time.time() + 2
        while time.time() < end:
            try:
                got += atk.recv(65535)
            except socket.timeout:
                pass
        log("early BYE from %s -> %s" % (ATTACKER, _final_status(got)))
        check(not any(c >= 200 for c in _final_status(got)), "the early BYE was answered: %s"
              % _final_status(got))
        mon_refused = [e for e in env.monitor_events("mon1") if e.get("event") == "refused"]
        check(any(e.get("method") == "BYE" for e in mon_refused), "mon1 reported no refused BYE")
        st = env.mon_ctl("mon1", "status")
        check(st.get("call") == "early", "the forged early BYE stopped mon1's ringing: %s" % st)
        check(env.door_ctl("status").get("call") == "early", "the door's call is no longer early")
        check(env.mon_ctl("mon1", "answer").get("result") == "answered", "mon1 did not answer")
        env.wait_door_event("answered", 10)
        check(_media_still_flows(env, "mon1"), "the media does not flow after the answer")
        check(env.mon_ctl("mon1", "hangup").get("result") == "hung up", "mon1 hangup")
        env.wait_door_event("ended", 5)
        # The call is over: the held BYE gets its 403 (RFC 3261 section 21.4.4).
        end = time.time() + 5
        while time.time() < end and 403 not in _final_status(got):
            try:
                got += atk.recv(65535)
            except socket.timeout:
                pass
        check(403 in _final_status(got), "the held BYE got no 403 after the call: %s"
              % _final_status(got))
    finally:
        atk.close()


def case_door_forged_bye_flood(env):
    """Issue 11: forged BYEs are held unanswered while the call lasts (any
    final answer ends nua's session), so a flood of them must not grow the
    door's memory for ever: 32 from 127.0.0.2 (distinct branches, the call's
    sniffed ids) end nothing; the 33rd makes the door hang up itself, through
    the proxy (mon1 gets the BYE), with one error line. The door is still up,
    every held BYE gets its 403 once the call is over, and the next call
    works."""
    env.start_proxy()
    door_with_monitor_access(env)
    env.start_monitor("mon1", "mon1", 0, 0, environ=dict(os.environ, TPORT_LOG="1"))
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_monitor("mon1", lambda st: st.get("call") == "early", "ringing with early media", 15)
    check(env.mon_ctl("mon1", "answer").get("result") == "answered", "mon1 did not answer")
    env.wait_door_event("answered", 10)
    d = _sniffed_call(env, "mon1")
    door_port = env.ports.sip(8)
    ruri = "sip:door@%s:%d" % (LOCAL, door_port)
    atk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    atk.bind((ATTACKER, 0))
    atk.settimeout(0.3)
    got = b""

    def send(i):
        build = _in_dialog("BYE", ruri, d["monitor"], d["door"], d["call_id"], 1000 + i,
                           "flood%d" % i)
        atk.sendto(build(atk.getsockname()[1]), (LOCAL, door_port))

    def drain(until, stop):
        nonlocal got
        while time.time() < until and not stop():
            try:
                got += atk.recv(65535)
            except socket.timeout:
                pass
    try:
        for i in range(32):
            send(i)
        deadline = time.time() + 5
        while time.time() < deadline and len(env.door_events("request_refused")) < 32:
            time.sleep(0.1)
        drain(time.time() + 1, lambda: False)
        check(len(env.door_events("request_refused")) == 32, "32 refused BYEs expected: %d"
              % len(env.door_events("request_refused")))
        check(not _final_status(got), "forged BYEs answered during the call: %s"
              % _final_status(got))
        check(env.door_ctl("status").get("call") == "active", "32 forged BYEs ended the call")
        send(32)
        env.wait_door_event("ended", 5)
        env.wait_monitor("mon1", lambda st: st.get("call") not in ("answered", "early"),
                         "the call ended by the door", 5)
        check(env.door_proc.running(), "portier-door died in the flood")
        check(env.door_log_text().count("forged BYEs in one call: hanging up") == 1,
              "no single hang-up line in the door's log")
        drain(time.time() + 5, lambda: _final_status(got).count(403) >= 33)
        log("answers after the call: %s" % sorted(set(_final_status(got))))
        check(_final_status(got).count(403) >= 33, "held BYEs without their 403: %s"
              % _final_status(got))
    finally:
        atk.close()
    # The door still serves: the next ring reaches mon1.
    check(env.door_ctl("ring").get("result") == "calling", "the door does not ring again")
    env.wait_monitor("mon1", lambda st: st.get("call") == "early", "ringing again", 15)


CASES = [
    ("register_auth", case_register_auth),
    ("register_wrong_password", case_register_wrong_password),
    ("register_unknown_user", case_register_unknown_user),
    ("fork_three_early_media", case_fork_three_early_media),
    ("caller_cancel", case_caller_cancel),
    ("all_busy", case_all_busy),
    ("fork_timeout", case_fork_timeout),
    ("restart_persistence", case_restart_persistence),
    ("malformed", case_malformed),
    ("options_keepalive", case_options_keepalive),
    ("loop_detection", case_loop_detection),
    ("foreign_domain", case_foreign_domain),
    ("register_expires_limits", case_register_expires_limits),
    ("in_dialog_requests", case_in_dialog_requests),
    ("binding_expiry", case_binding_expiry),
    ("crash_persistence", case_crash_persistence),
    ("relay_early_media", case_relay_early_media),
    ("relay_late_answer", case_relay_late_answer),
    ("relay_latching", case_relay_latching),
    ("door_early_media", case_door_early_media),
    ("door_early_media_vp8", case_door_early_media_vp8),
    ("door_rtsp_preview", case_door_rtsp_preview),
    ("door_keyframe_requests", case_door_keyframe_requests),
    ("door_message_code", case_door_message_code),
    ("door_max_duration", case_door_max_duration),
    ("monitor_rings_with_video", case_monitor_rings_with_video),
    ("monitor_calls_door", case_monitor_calls_door),
    ("monitor_bad_input", case_monitor_bad_input),
    ("monitor_keyframe_request", case_monitor_keyframe_request),
    ("monitor_window", case_monitor_window),
    # issue 11: digest
    ("auth_cross_domain_user", case_auth_cross_domain_user),
    ("auth_uri_mismatch", case_auth_uri_mismatch),
    ("auth_no_qop_refused", case_auth_no_qop_refused),
    ("auth_brute_force", case_auth_brute_force),
    ("auth_bans_control", case_auth_bans_control),
    ("auth_sha256_only_user", case_auth_sha256_only_user),
    ("auth_invite_flood", case_auth_invite_flood),
    # issue 11: registrar input, restart safety, durable registrations
    ("register_bad_q", case_register_bad_q),
    ("register_bad_expires", case_register_bad_expires),
    ("register_require_path", case_register_require_path),
    ("register_binary_contact", case_register_binary_contact),
    ("crash_mid_burst", case_crash_mid_burst),
    # issue 11: forking and media relay answers
    ("fork_timeout_silent_branch", case_fork_timeout_silent_branch),
    ("fork_6xx_reason", case_fork_6xx_reason),
    ("fork_challenges_merged", case_fork_challenges_merged),
    ("relay_answer_missing_line", case_relay_answer_missing_line),
    ("relay_unrelayable_stream", case_relay_unrelayable_stream),
    ("relay_refuses_unusable_c", case_relay_refuses_unusable_c),
    ("relay_call_limits", case_relay_call_limits),
    # issue 11: in-dialog requests, signed Record-Route, core conformance
    ("dialog_open_relay", case_dialog_open_relay),
    ("dialog_forged_reinvite", case_dialog_forged_reinvite),
    ("dialog_forged_bye", case_dialog_forged_bye),
    ("dialog_route_signature", case_dialog_route_signature),
    ("dialog_identity", case_dialog_identity),
    ("stray_response", case_stray_response),
    ("proxy_require", case_proxy_require),
    ("ack_max_forwards_zero", case_ack_max_forwards_zero),
    ("route_by_domain_alias", case_route_by_domain_alias),
    ("dialog_notify_first", case_dialog_notify_first),
    # issue 11: transport
    ("tcp_incomplete_message", case_tcp_incomplete_message),
    ("tcp_idle_timeout", case_tcp_idle_timeout),
    ("tcp_registered_keepalive", case_tcp_registered_keepalive),
    ("tcp_connection_limit", case_tcp_connection_limit),
    ("tcp_connection_flood", case_tcp_connection_flood),
    # issue 11: digest client
    ("digest_client_md5", case_digest_client_md5),
    ("digest_client_sha256", case_digest_client_sha256),
    ("digest_client_md5_sha256", case_digest_client_md5_sha256),
    ("digest_client_sha256_md5", case_digest_client_sha256_md5),
    ("digest_client_info", case_digest_client_info),
    ("digest_client_unanswerable", case_digest_client_unanswerable),
    ("digest_client_refresh", case_digest_client_refresh),
    # issue 11: door
    ("door_invite_ipv6", case_door_invite_ipv6),
    ("door_forged_identity", case_door_forged_identity),
    ("door_dtmf_injection", case_door_dtmf_injection),
    ("door_code_alarm", case_door_code_alarm),
    ("door_dialog_injection", case_door_dialog_injection),
    # issue 11: bans a spoofed source cannot trigger (nonces bound to their host)
    ("auth_spoofed_source_no_ban", case_auth_spoofed_source_no_ban),
    ("auth_replay_log_bounded", case_auth_replay_log_bounded),
    # issue 11: no unrewritten SDP reaches the other side of a relayed call
    ("relay_unusable_answer_forked", case_relay_unusable_answer_forked),
    ("relay_unusable_answer_refused", case_relay_unusable_answer_refused),
    ("relay_reinvite_unusable_sdp", case_relay_reinvite_unusable_sdp),
    # issue 11: a BYE straight to the door or a monitor
    ("door_forged_bye", case_door_forged_bye),
    ("monitor_forged_bye_ringing", case_monitor_forged_bye_ringing),
    ("door_forged_bye_flood", case_door_forged_bye_flood),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy", help="portier-proxy binary")
    ap.add_argument("--ctl", help="portierctl binary")
    ap.add_argument("--door", help="portier-door binary (door cases)")
    ap.add_argument("--monitor", help="portier-monitor binary (monitor cases)")
    ap.add_argument("--case", help="case name (see --list)")
    ap.add_argument("--list", action="store_true", help="list the cases")
    ap.add_argument("--sipp", default=shutil.which("sipp") or "sipp", help="sipp binary")
    ap.add_argument("--base-port", type=int,
                    default=int(os.environ.get("PORTIER_SIP_TEST_BASE_PORT", "21000")),
                    help="first port of the case port blocks (default 21000, env "
                         "PORTIER_SIP_TEST_BASE_PORT); case i uses base+100*i .. +99")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir even on success")
    ap.add_argument("--time-limit", type=int, default=150,
                    help="overall limit for the case in seconds (default 150)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print sipp command lines")
    args = ap.parse_args()

    names = [n for n, _ in CASES]
    if args.list:
        print("\n".join(names))
        return 0
    if not (args.proxy and args.ctl and args.case):
        ap.error("--proxy, --ctl and --case are required")
    if args.case not in names:
        ap.error("unknown case %r (one of: %s)" % (args.case, ", ".join(names)))
    args.proxy = os.path.abspath(args.proxy)
    args.ctl = os.path.abspath(args.ctl)
    if args.door:
        args.door = os.path.abspath(args.door)
    if args.monitor:
        args.monitor = os.path.abspath(args.monitor)
    for path, what in ((args.proxy, "--proxy"), (args.ctl, "--ctl")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            print("%s %s: not an executable file" % (what, path))
            return 2
    if not shutil.which(args.sipp):
        print("sipp not found (Debian: apt-get install sip-tester)")
        return 2

    index = names.index(args.case)
    func = dict(CASES)[args.case]
    try:
        env = Env(args, args.case, index, len(CASES))
    except SetupError as e:
        print("setup error: %s" % e)
        return 2

    def on_signal(signum, frame):
        raise TestFailure("interrupted by signal %d" % signum)

    def on_alarm(signum, frame):
        raise TestFailure("case took longer than %ds" % args.time_limit)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    atexit.register(env.cleanup)
    signal.alarm(args.time_limit)

    ok = False
    try:
        log("---- %s: %s" % (args.case, (func.__doc__ or "").strip().split("\n")[0]))
        func(env)
        if env.proxy is not None:
            check(env.proxy_alive(), "portier-proxy is no longer running at the end")
        ok = True
    except TestFailure as e:
        log("FAIL: %s" % e)
    except Exception as e:  # a harness bug or unexpected tool behaviour: still a failure
        import traceback
        traceback.print_exc()
        log("FAIL: unexpected %s: %s" % (type(e).__name__, e))
    finally:
        signal.alarm(0)
        env.cleanup()
        if not ok:
            env.dump_failure()
    if ok:
        log("PASS: %s" % args.case)
        if not args.keep:
            shutil.rmtree(env.dir, ignore_errors=True)
        else:
            log("kept %s" % env.dir)
    else:
        log("files kept in %s" % env.dir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
