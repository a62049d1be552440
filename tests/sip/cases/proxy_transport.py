"""portier-proxy's TCP transport: idle and incomplete-message timeouts, keep-alives of
registered flows (RFC 5626 section 4.4.1), per-source and file-descriptor limits."""

import os
import re
import socket
import time

from portier_sip.base import ATTACKER, DOMAIN, LOCAL, TestFailure, USERS, check, log
from portier_sip.rawua import RawCall, RawUa, group_call, invite_of, raw_devices, raw_reply
from portier_sip.registry import case
from portier_sip.sipmsg import (_req, digest_auth, find_challenge, header_lines, header_values, sdp_body,
                                status_of, udp_exchange)


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


@case
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


@case
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


@case
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
        # RFC 5658: a call from UDP to a TCP flow is record-routed twice, the
        # callee-facing (TCP) entry on top.
        rr = [l for l in invite.split(b"\r\n") if l.lower().startswith(b"record-route:")]
        check(rr and b";transport=tcp;lr;r2=on" in rr[0].split(b",")[0] and b"r2=on" in rr[0],
              "%s's INVITE has Record-Route %s, expected ours twice, TCP first" % (user, rr))
        log("%s: %s" % (user, rr[0].decode()))
        door.wait()
        door.expect_ok()


@case
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


@case
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


@case
def case_udp_fastpath_icmp(env):
    """portier-proxy reads each UDP datagram with one system call and sends
    without clearing SO_ERROR first (signaling/proxy/udp_fastpath.h). Then an
    ICMP port unreachable drawn by one branch of a fork is left on the socket
    for the next send. RFC 3261 section 18.1.1: the next request still goes
    out. A group call where one monitor has vanished (its port is closed)
    still rings the other, whichever branch the proxy sends first (each
    order is tried), the door gets the live monitor's 486, not a 503 nor a
    wait for the vanished monitor's Timer B (32 s), and the proxy says the
    fast path is on and carried the datagrams."""
    env.start_proxy()
    stats = env.ctl("stats")
    check(stats.get("udp_fastpath") == "on", "udp_fastpath is %r, expected on (Debian's "
          "sofia-sip 1.12.11)" % stats.get("udp_fastpath"))
    mon1, mon2 = raw_devices(env, ["mon1", "mon2"])
    door = RawUa("door", LOCAL)
    try:
        for dead_slot in (0, 1):
            devices = [mon1, mon2]
            dead = devices[dead_slot]
            live = devices[1 - dead_slot]
            dead.close()
            call, _ = group_call(env, door, [])
            inv = invite_of(live, call.call_id)
            raw_reply(live, inv, 486, "Busy Here", live.name)
            fin = call.final(timeout=10)
            check(fin.status == 486, "%s gone: the door got %s, expected %s's 486"
                  % (dead.name, fin.first, live.name))
            live.wait_for(lambda m: m.method == "ACK" and m.hdr("Call-ID") == call.call_id, 5,
                          "ACK for %s's 486" % live.name)
            # The vanished monitor comes back on its port for the next round.
            devices[dead_slot] = RawUa(dead.name, LOCAL, env.ports.sip(dead_slot))
            mon1, mon2 = devices
        stats = env.ctl("stats")
        check(stats.get("udp_fastpath_datagrams", 0) > 0,
              "no datagram went through the fast path: %s" % stats)
        log("fast path: %s datagrams, %s sends tried again after an ICMP error"
            % (stats.get("udp_fastpath_datagrams"), stats.get("udp_fastpath_resends")))
    finally:
        for ua in (mon1, mon2, door):
            ua.close()


def _padded_offer(size):
    """An audio offer padded with a= lines to about `size` bytes, as large as the
    relay's audio+video SDES offer (about 1,360 bytes on the wire)."""
    sdp = sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"])
    while len(sdp) < size:
        sdp += "a=x-pad:%s\n" % ("p" * 60)
    return sdp


class _TcpTrap:
    """A TCP listener on a device's UDP port number: what the proxy sends there
    by TCP (RFC 3261 section 18.1.1's switch for a large request) lands here."""

    def __init__(self, host, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(4)
        self.sock.settimeout(0.1)
        self.data = b""
        self.conns = []

    def poll(self, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                c, _ = self.sock.accept()
                c.settimeout(0.1)
                self.conns.append(c)
            except socket.timeout:
                pass
            for c in self.conns:
                try:
                    self.data += c.recv(65535)
                except (socket.timeout, OSError):
                    pass
        return len(self.conns)

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()


@case
def case_udp_mtu_large_invite(env):
    """[global] udp-mtu (default 1460, Flexisip's key and default): an INVITE of
    about 1,360 bytes to a monitor registered over UDP goes by UDP, with no TCP
    connection tried first. RFC 3261 section 18.1.1 switches a request over
    1300 bytes to TCP when the path MTU is unknown; a device on UDP may not
    listen on TCP, and behind a NAT the SYN is dropped and the INVITE would wait
    5 s (T4). With udp-mtu = 1300 the same INVITE goes by TCP (caught by a
    listener on the monitor's port number): the key is what decides."""
    env.relay_enabled = False  # the INVITE's size is then the test's alone
    for mtu, by_tcp in ((None, False), (1300, True)):
        env.global_extra = "udp-mtu = %d\n" % mtu if mtu else ""
        env.start_proxy()
        mon1, = raw_devices(env, ["mon1"])
        trap = _TcpTrap(LOCAL, mon1.port)
        door = RawUa("door", LOCAL)
        try:
            call = RawCall(env, door, "door", "mon1", _padded_offer(700))
            trap.poll(1.0)
            if not by_tcp:
                check(trap.conns == [], "udp-mtu default: the proxy opened %d TCP "
                      "connection(s) to the monitor's port (%d bytes came on them)"
                      % (len(trap.conns), len(trap.data)))
                inv = invite_of(mon1, call.call_id)
                # The datagram as sent: CRLF line ends (RawUa stores LF).
                size = len(inv.text.replace("\n", "\r\n").encode())
                check(1300 < size <= 1460, "the INVITE is %d bytes: the case needs one "
                      "between 1300 and 1460" % size)
                check(trap.conns == [], "udp-mtu default: the proxy opened %d TCP "
                      "connection(s) to the monitor's port before the %d-byte INVITE"
                      % (len(trap.conns), size))
                log("default udp-mtu: the %d-byte INVITE came by UDP, no TCP connection" % size)
                raw_reply(mon1, inv, 486, "Busy Here", "mon1")
                check(call.final().status == 486, "the door did not get mon1's 486")
            else:
                deadline = time.time() + 5
                while b"INVITE " not in trap.data and time.time() < deadline:
                    trap.poll(0.2)
                check(b"INVITE " in trap.data, "udp-mtu = 1300: no INVITE by TCP (%d "
                      "connection(s), %d bytes)" % (len(trap.conns), len(trap.data)))
                head = trap.data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
                length = re.search(r"(?im)^(?:Content-Length|l):\s*(\d+)", head)
                total = len(head) + 4 + int(length.group(1)) if length else 0
                check(1300 < total <= 1460, "the INVITE is %d bytes: the case needs one "
                      "between 1300 and 1460" % total)
                log("udp-mtu = 1300: the %d-byte INVITE came by TCP" % total)
        finally:
            trap.close()
            door.close()
            mon1.close()
        if not by_tcp:
            env.stop_proxy()
