"""SIP messages as the cases see them: sipp's message logs, datagrams on a socket,
one-datagram exchanges, a Python UA (PyUA), SDP bodies, digest challenges and answers."""

import hashlib
import re
import socket
import time

from portier_sip.base import DOMAIN, LOCAL, TestFailure


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
