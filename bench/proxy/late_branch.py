#!/usr/bin/env python3
"""Late REGISTER -> INVITE (issue 14): how long after a woken phone's REGISTER
reaches portier-proxy does the INVITE of the call ringing for it leave, with
K calls ringing at once (K = 1, 10, 100)?

One portier-proxy per relay mode (digest on, push enabled with the webhook
provider against tests/push/push_standin.py, the media relay on with its
defaults, i.e. SRTP terminated, or off). A pool of AORs, each registered with
RFC 8599 push parameters and a +sip.instance from a socket that is then closed
(the phone sleeps). Each round:
  1. the door rings K AORs, one caller UA per call (407 digest first), with a
     door-like offer (audio and video, RTP/SAVP, SDES keys, rtcp-mux): each
     gets "110 Push sent" and the stand-in the webhook push;
  2. each of the K phones wakes: a new socket, the same +sip.instance, a
     REGISTER, the 401, the REGISTER with Authorization, and it gets the INVITE
     of its call (a late branch) and answers 180. `serial`: one phone after
     the other, each once the previous has its INVITE; `burst`: all K at once
     (first REGISTERs back to back, each 401 answered as it comes);
  3. the door CANCELs every call; the phones answer 200 and 487; the door ACKs
     its 487. The woken sockets close: the phones sleep again.
A sample is one (REGISTER, INVITE) pair of one phone, matched by its port: the
kernel's time of the REGISTER with Authorization that the proxy accepted, to the
kernel's time of the INVITE of the phone's call leaving the proxy for that port.
Both times come from one AF_PACKET capture on lo with SO_TIMESTAMPNS
(scripts/portier_py/loopcap.py): the stamp is taken as loopback hands the
datagram over, so no Python clock and no scheduling delay of this script is in
the figure. Each sample also records when the REGISTER's 200 left (the
registrar holds it for the journal: the INVITE must not wait for it).

An AOR is rung again only once its previous call has left the proxy
(call-fork-timeout after that call started: until then a REGISTER would also
give the ended call a ghost branch, RFC 8599 fork-late on iOS), so rounds take
the least recently rung AORs of a pool of 2 x max(K).

Run it inside a network namespace of its own (late_branch.sh does: unshare -n),
as root (the capture): nothing else on lo, every port ours. Ports: proxy 31100
(UDP and TCP), relay 20000-29999, the UAs 2000-19999 (each socket a new port,
so a closed phone's port is never reused within a run).

The proxy listens on UDP and TCP (--tcp on), or on UDP only (--tcp off). With
TCP, sofia's nta sends a request over 1300 bytes by TCP first (RFC 3261
section 18.1.1): the relay's late INVITE (fresh SDES keys, three suites per
m= line) is over it, so it first tries a TCP connection to the phone's UDP
address, which lo refuses at once, and then goes by UDP. The INVITE bytes
column says when that happened.

The phones register over UDP (--transport udp), or each over a TCP connection
of its own (--transport tcp; the INVITE comes back on it: the closest to the
production transport, TLS, that a capture can read; the capture then takes TCP
segments with data too).

    late_branch.py --build build [--samples 100] [--ks "1 10 100"]
                   [--relay "on off"] [--tcp "on off"] [--wake "serial burst"]
                   [--transport "udp tcp"]
"""
import argparse
import base64
import itertools
import json
import math
import os
import platform
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "sip"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from portier_sip.base import DOMAIN, LOCAL, USERS, TestFailure, check, log  # noqa: E402
from portier_sip.env import Env  # noqa: E402
from portier_sip.sipmsg import (PyUA, digest_auth, find_challenge, header_value,  # noqa: E402
                                sdp_body)
from cases.push import _invite, _Phone, _Standin  # noqa: E402  the push cases' UA and stand-in
from portier_py import configs  # noqa: E402
from portier_py.loopcap import LoopbackCapture  # noqa: E402

PROXY_BASE = 31100
RELAY_PORTS = (20000, 29999)
UA_PORTS = range(2000, 20000)


def sdes_key():
    """A fresh SDES inline key: 16 bytes of key and 14 of salt (RFC 4568 6.1)."""
    return base64.b64encode(os.urandom(30)).decode()


def door_offer():
    """A door's offer: audio and video over SRTP (SDES), rtcp-mux."""
    return sdp_body(LOCAL, ["audio 4000 RTP/SAVP 0\na=rtcp-mux\n"
                            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s" % sdes_key(),
                            "video 4002 RTP/SAVP 96\na=rtcp-mux\n"
                            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s" % sdes_key()])


class TcpStream:
    """A TCP connection to the proxy dressed as PyUA's datagram socket: sendto
    sends on the connection, recvfrom gives one SIP message, framed by its
    Content-Length (RFC 3261 section 18.3)."""

    def __init__(self, port, proxy):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((LOCAL, port))
        self.sock.connect(proxy)
        self.peer, self.buf = proxy, b""

    def fileno(self):
        return self.sock.fileno()

    def getsockname(self):
        return self.sock.getsockname()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def sendto(self, data, to):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise TestFailure("TCP connection of port %d: %s" % (self.sock.getsockname()[1], e))

    def close(self):
        self.sock.close()

    def buffered(self):
        """A whole message is waiting here (select would not say so)."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", self.buf[:end])
        total = end + 4 + (int(m.group(1)) if m else 0)
        return total if len(self.buf) >= total else None

    def recvfrom(self, size):
        while True:
            total = self.buffered()
            if total:
                msg, self.buf = self.buf[:total], self.buf[total:]
                return msg, self.peer
            data = self.sock.recv(65535)
            if not data:
                raise TestFailure("the proxy closed the TCP connection of port %d"
                                  % self.sock.getsockname()[1])
            self.buf += data


class Phone(_Phone):
    """_Phone (tests/sip/cases/push.py) on a port of our choosing, over UDP or
    its own TCP connection, driven by handle() from one select loop, so that K
    of them can work at once."""

    _ports = itertools.count(UA_PORTS.start)

    def __init__(self, env, user, pn="", instance="", tcp=False):
        while True:
            port = next(Phone._ports)
            check(port in UA_PORTS, "out of UA ports (%d-%d)" % (UA_PORTS.start, UA_PORTS.stop))
            try:
                PyUA.__init__(self, user, LOCAL, port, env.ports.proxy)
                if tcp:
                    self.sock.close()
                    self.sock = TcpStream(port, self.proxy)
                break
            except OSError:
                continue
        self.tcp = tcp
        if tcp:
            pn = ";transport=tcp" + pn
        self.user, self.password = user, USERS[user]
        self.aor = "sip:%s@%s" % (user, DOMAIN)
        self.call_id = self.uniq("reg") + "@" + LOCAL
        self.tag = self.uniq("t")
        self.cseq = 0
        self.pn, self.instance = pn, instance
        self.registered = False
        self.call = None      # the Call-ID of the call ringing for this phone
        self.invite = None    # its INVITE, once here
        self.cancelled = False
        self.stray = []       # requests of other calls (there should be none)

    def via(self):
        v = PyUA.via(self)
        return v.replace("SIP/2.0/UDP", "SIP/2.0/TCP") if self.tcp else v

    def wake(self):
        self._send_register(self.pn, 600, None, self.instance)

    def handle(self):
        while self.pending:
            m = self.pending.pop(0)
            if m.status is not None:
                if m.cseq()[1] != "REGISTER" or m.hdr("Call-ID") != self.call_id:
                    continue
                if m.status == 401 and m.cseq()[0] == self.cseq:
                    ch = find_challenge(m.hdrs("WWW-Authenticate"))
                    check(ch, "%s: no MD5 challenge in %s" % (self.name, m.first))
                    cred = digest_auth(self.user, self.password, ch, "REGISTER", "sip:" + DOMAIN)
                    self._send_register(self.pn, 600, "Authorization: " + cred, self.instance)
                elif m.status == 200:
                    self.registered = True
                elif m.status >= 300:
                    raise TestFailure("%s: REGISTER answered %s" % (self.name, m.first))
            elif m.method == "INVITE":
                if m.hdr("Call-ID") != self.call:
                    self.stray.append(m.first)
                    self.reply(m, 486, "Busy Here", to_tag="stray")
                    continue
                if self.invite is None:
                    self.invite = m
                self.reply(m, 180, "Ringing", to_tag="woken")
            elif m.method == "CANCEL":
                self.reply(m, 200, "OK")
                if self.invite is not None and m.hdr("Call-ID") == self.call:
                    self.cancelled = True
                    self.reply(self.invite, 487, "Request Terminated", to_tag="woken")


class Door(_Phone):
    """The caller of one call (user door): _invite() rings, cancel() ends it,
    handle() ACKs the 487."""

    def __init__(self, env):
        _Phone.__init__(self, env, "door")
        self.ruri = self.call_id_of_call = self.ringing = None
        self.final = None

    def ring(self, ruri, offer):
        self.ruri = ruri
        self.call_id_of_call, self.ringing = _invite(self, ruri, offer)
        check(self.ringing.status == 110, "the door's INVITE to %s: %s, expected 110 Push sent"
              % (ruri, self.ringing.first))

    def cancel(self):
        got = self.ringing
        self.send("CANCEL %s SIP/2.0\nVia: %s\nFrom: %s\nTo: <%s>\nCall-ID: %s\n"
                  "CSeq: %s CANCEL\nMax-Forwards: 70"
                  % (self.ruri, got.hdr("Via"), got.hdr("From"), self.ruri, self.call_id_of_call,
                     got.cseq()[0]))

    def handle(self):
        while self.pending:
            m = self.pending.pop(0)
            if m.status is None or m.cseq()[1] != "INVITE" or m.status < 200:
                continue
            self.final = m
            self.send("ACK %s SIP/2.0\nVia: %s\nFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %s ACK\n"
                      "Max-Forwards: 70" % (self.ruri, m.hdr("Via"), m.hdr("From"), m.hdr("To"),
                                            self.call_id_of_call, m.cseq()[0]))


def pump(uas, done, what, timeout):
    """Reads every UA's socket and lets it handle what came until done() (at
    most `timeout` seconds)."""
    deadline = time.time() + timeout
    socks = {u.sock: u for u in uas}
    while not done():
        left = deadline - time.time()
        if left <= 0:
            raise TestFailure("no %s within %.0f s" % (what, timeout))
        ready = [s for s in socks if getattr(s, "buffered", lambda: None)()]
        ready = ready or select.select(list(socks), [], [], min(left, 0.2))[0]
        for s in ready:
            u = socks[s]
            u._read(time.time() + 0.01, first_only=True)
            u.handle()


class Webhook:
    """The stand-in's log of webhook pushes, read from where the last look
    stopped."""

    def __init__(self, standin):
        self.path, self.offset = standin.info["log"], 0
        self.calls = set()  # Call-IDs pushed with kind call

    def poll(self):
        try:
            with open(self.path) as f:
                f.seek(self.offset)
                text = f.read()
        except OSError:
            return
        end = text.rfind("\n") + 1
        self.offset += len(text[:end].encode())
        for line in text[:end].splitlines():
            e = json.loads(line)
            body = e.get("body") or {}
            if e.get("event") == "webhook" and body.get("kind") == "call" and "error" not in e:
                self.calls.add(body.get("call_id"))

    def wait(self, call_ids, timeout):
        deadline = time.time() + timeout
        while True:
            self.poll()
            missing = set(call_ids) - self.calls
            if not missing:
                return
            if time.time() > deadline:
                raise TestFailure("no webhook push for %d of %d calls within %.0f s"
                                  % (len(missing), len(call_ids), timeout))
            time.sleep(0.01)


class Bench:
    def __init__(self, a, relay, tcp, transport):
        self.a, self.relay, self.tcp, self.transport = a, relay, tcp, transport
        sig = os.path.join(a.build, "signaling")
        args = argparse.Namespace(proxy=os.path.join(sig, "portier-proxy"),
                                  ctl=os.path.join(sig, "portierctl"), door=None, monitor=None,
                                  sipp=None, base_port=PROXY_BASE, verbose=False, keep=False)
        self.env = Env(args, "late_branch_%s_relay_%s_tcp_%s" % (transport, relay, tcp), 0, 1)
        self.standin = None
        self.cap = None
        self.users = []
        self.last_rung = {}  # user -> time its last call started

    def pn(self, user):
        return ";pn-provider=webpush;pn-prid=tok-%s-late;pn-param=door-app" % user

    def instance(self, user):
        return ';+sip.instance="<urn:uuid:00000000-0000-4000-8000-%012d>"' % int(user[1:])

    def write_config(self):
        env, s = self.env, self.standin
        users = configs.users_file(os.path.join(env.dir, "users.conf"), USERS, DOMAIN)
        cfg = configs.proxy_conf(LOCAL, env.ports.proxy, env.state_dir, env.socket, users,
                                 "%d-%d" % RELAY_PORTS, more={
            # The log level of config/proxy.conf: a debug log would be in the
            # figure. sofia binds a sip: URI without ;transport to UDP and TCP;
            # with UDP only, a request over 1300 bytes goes out by UDP at once
            # instead of by TCP first (RFC 3261 section 18.1.1, sofia's nta).
            # Every phone connects from 127.0.0.1 (over TCP: a connection each).
            "global": {"log-output": "stderr", "log-level": "message",
                       "max-connections-per-source": 20000,
                       "transports": "sip:%s:%d%s" % (LOCAL, env.ports.proxy,
                                                      "" if self.tcp == "on" else
                                                      ";transport=udp")},
            "module::Router": {"call-fork-timeout": self.a.fork_timeout},
            # Every call comes from the one user door on 127.0.0.1.
            "module::MediaRelay": {"enabled": "true" if self.relay == "on" else "false",
                                   "sdp-address": LOCAL, "max-calls-per-user": 0,
                                   "max-calls-per-source": 0},
            "module::PushNotification": {"enabled": "true",
                                         "webhook-url": s.url + "/webhook",
                                         "ca-file": s.info["ca_file"]}})
        return env.write("proxy.ini", cfg)

    def start(self, pool):
        env = self.env
        self.standin = _Standin(env)
        self.webhook = Webhook(self.standin)
        env.write_config = self.write_config
        env.start_proxy()
        self.cap = LoopbackCapture({env.ports.proxy}, limit=2000000, stamps=True,
                                   tcp=self.transport == "tcp")
        self.users = ["p%03d" % i for i in range(pool)]
        # Every phone registers with push parameters, then sleeps (socket closed).
        phones = [self.phone(u) for u in self.users]
        for p in phones:
            p.wake()
        pump(phones, lambda: all(p.registered for p in phones), "200 for every phone's REGISTER",
             30)
        for p in phones:
            p.close()
        log("phones over %s, relay %s, tcp %s: %d phones registered with push, asleep"
            % (self.transport, self.relay, self.tcp, pool))

    def phone(self, user):
        return Phone(self.env, user, self.pn(user), self.instance(user),
                     tcp=self.transport == "tcp")

    def pick(self, k):
        """The k least recently rung AORs, once their previous calls are gone."""
        users = sorted(self.users, key=lambda u: self.last_rung.get(u, 0))[:k]
        free_at = max(self.last_rung.get(u, 0) for u in users) + self.a.fork_timeout + 1
        if free_at > time.time():
            time.sleep(free_at - time.time())
        return users

    def round(self, k, wake):
        env = self.env
        users = self.pick(k)
        doors = {}
        for u in users:
            d = Door(env)
            self.last_rung[u] = time.time()
            d.ring("sip:%s@%s" % (u, DOMAIN), door_offer())
            doors[u] = d
        self.webhook.wait([d.call_id_of_call for d in doors.values()], 10 + k * 0.2)
        mark = len(self.cap.packets)
        sched = self.schedstat()
        phones = []
        for u in users:
            p = self.phone(u)
            p.call = doors[u].call_id_of_call
            phones.append(p)
        uas = phones + list(doors.values())
        try:
            if wake == "serial":
                for p in phones:
                    p.wake()
                    pump(uas, lambda: p.invite is not None, "INVITE for the woken %s" % p.user, 10)
            else:
                for p in phones:
                    p.wake()
                pump(uas, lambda: all(p.invite is not None for p in phones),
                     "INVITE for every woken phone", 10 + k * 0.1)
            pump(uas, lambda: all(p.registered for p in phones), "200 for every woken phone", 10)
            sched = [(b - a) / 1e6 / k for a, b in zip(sched, self.schedstat())]
            for d in doors.values():
                d.cancel()
            pump(uas, lambda: all(d.final for d in doors.values()) and
                 all(p.cancelled for p in phones), "487 for every call", 10 + k * 0.1)
            for d in doors.values():
                check(d.final.status == 487, "a cancelled call ended with %s" % d.final.first)
            stray = [s for p in phones for s in p.stray]
            check(not stray, "woken phones got INVITEs of other calls: %s" % stray[:3])
            if self.relay == "on":
                for p in phones:
                    self.check_relay_offer(p.invite)
        finally:
            for u in uas:
                u.close()
        return [x + tuple(sched) for x in self.samples(mark, phones)]

    def schedstat(self):
        """The proxy's main thread (the one that runs SIP): ns on a CPU and ns
        waiting for one, from the kernel's scheduler statistics."""
        with open("/proc/%d/schedstat" % self.env.proxy.pid) as f:
            on_cpu, waiting, _ = f.read().split()
        return int(on_cpu), int(waiting)

    def check_relay_offer(self, invite):
        body = invite.body.decode("latin-1")
        ports = [int(x) for x in re.findall(r"^m=\w+ (\d+) ", body, re.M)]
        check(len(ports) == 2 and all(RELAY_PORTS[0] <= x <= RELAY_PORTS[1] for x in ports),
              "the late INVITE does not offer the relay's ports: %r" % ports)
        check("inline:" in body, "the late INVITE offers no SRTP key")

    def samples(self, mark, phones):
        """(REGISTER -> INVITE, REGISTER -> 200 in ms, the INVITE's size) for
        each phone, from the capture (waiting a little for its thread to catch
        up)."""
        proxy = self.env.ports.proxy
        want = {p.port: p for p in phones}
        deadline = time.time() + 5
        while True:
            reg, inv, ok = {}, {}, {}
            for sport, dport, data, t in self.cap.packets[mark:]:
                if sport in want and dport == proxy and data.startswith(b"REGISTER ") and \
                        b"\r\nAuthorization:" in data:
                    reg.setdefault(sport, t)
                elif sport == proxy and dport in want:
                    if data.startswith(b"INVITE ") and \
                            header_value(data, "Call-ID") == want[dport].call:
                        inv.setdefault(dport, (t, len(data)))
                    elif data.startswith(b"SIP/2.0 200 ") and \
                            (header_value(data, "CSeq") or "").endswith(" REGISTER"):
                        ok.setdefault(dport, t)
            if len(reg) == len(inv) == len(ok) == len(want) or time.time() > deadline:
                break
            time.sleep(0.05)
        check(len(reg) == len(inv) == len(ok) == len(want),
              "the capture lacks packets: %d REGISTERs, %d INVITEs, %d 200s for %d phones"
              % (len(reg), len(inv), len(ok), len(want)))
        out = []
        for port in want:
            t, size = inv[port]
            check(t > reg[port], "an INVITE stamped before its REGISTER")
            out.append(((t - reg[port]) / 1e6, (ok[port] - reg[port]) / 1e6, size))
        return out

    def stop(self):
        """The proxy must exit 0 on SIGTERM; every other process is stopped."""
        problems = []
        try:
            if self.env.proxy_alive():
                self.env.stop_proxy()
        except TestFailure as e:
            problems.append(str(e))
        if self.cap:
            self.cap.stop()
        if self.standin:
            self.standin.stop()
        problems += self.env.cleanup()
        return problems


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def tree():
    def git(*cmd):
        r = subprocess.run(["git", "-C", ROOT] + list(cmd), capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else "?"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty not in ("", "?") else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--samples", type=int, default=100, help="at least this many per row")
    ap.add_argument("--ks", default="1 10 100", help="calls ringing at once")
    ap.add_argument("--relay", default="on off")
    ap.add_argument("--tcp", default="on", help="the proxy listens on TCP too (on, off)")
    ap.add_argument("--transport", default="udp",
                    help="the phones register over udp, or tcp (a connection each)")
    ap.add_argument("--wake", default="serial burst")
    ap.add_argument("--fork-timeout", type=int, default=15,
                    help="call-fork-timeout: a round must end within it")
    ap.add_argument("--time-limit", type=int, default=1800, help="seconds for the whole run")
    a = ap.parse_args()
    ks = [int(k) for k in a.ks.split()]
    check(all(1 <= k <= 500 for k in ks), "K from 1 to 500")
    check(os.geteuid() == 0, "needs root (the AF_PACKET capture); run it by late_branch.sh")
    USERS.update({"p%03d" % i: "p%03d-Pw-%04d" % (i, 7000 + i) for i in range(2 * max(ks))})
    started = time.time()
    header = "tree %s, %s, %d CPUs, %s" % (tree(), time.strftime("%Y-%m-%d %H:%M %Z"),
                                          os.cpu_count(), platform.release())
    log(header)
    rows = []
    failed = []
    wakes = a.wake.split()
    modes = [(t, r, c) for t in a.transport.split() for r in a.relay.split()
             for c in a.tcp.split() if not (t == "tcp" and c == "off")]
    for transport, relay, tcp in modes:
        mode = "phones over %s, relay %s, tcp %s" % (transport, relay, tcp)
        bench = Bench(a, relay, tcp, transport)
        passed = False
        try:
            bench.start(2 * max(ks))
            for k in ks:
                for wake in wakes:
                    if k == 1 and wake == "burst" and "serial" in wakes:
                        continue  # one phone: the same as serial
                    xs = []
                    for r in range(math.ceil(a.samples / k)):
                        check(time.time() - started < a.time_limit,
                              "time limit of %d s reached" % a.time_limit)
                        xs += bench.round(k, wake)
                    inv = [x[0] for x in xs]
                    rows.append((transport, relay, tcp, k, wake, len(xs), statistics.median(inv),
                                 quantile(inv, 0.95), max(inv),
                                 statistics.median([x[1] for x in xs]),
                                 sum(1 for x in xs if x[0] < x[1]),
                                 statistics.median([x[2] for x in xs]),
                                 statistics.mean([x[3] for x in xs]),
                                 statistics.mean([x[4] for x in xs])))
                    log("%s, K=%d, %s: %d samples, p50 %.2f ms" % (mode, k, wake, len(xs),
                                                                   rows[-1][6]))
            passed = True
        except TestFailure as e:
            failed.append("%s: %s" % (mode, e))
            log("FAILED: %s (proxy log: %s)" % (e, bench.env.proxy_log))
        finally:
            problems = bench.stop()
            failed += ["%s: %s" % (mode, p) for p in problems]
            if not passed or problems:
                log("%s: logs kept in %s" % (mode, bench.env.dir))
            else:
                shutil.rmtree(bench.env.dir, ignore_errors=True)
    print()
    print("late REGISTER -> INVITE, " + header)
    print()
    print("| phones over | relay | proxy on TCP | calls ringing | wake | samples | p50 ms "
          "| p95 ms | max ms | REGISTER -> 200 p50 ms | INVITE before the 200 | INVITE bytes "
          "| proxy CPU per phone ms | proxy waiting for a CPU per phone ms |")
    print("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for transport, relay, tcp, k, wake, n, p50, p95, mx, ok50, before, size, cpu, wait in rows:
        print("| %s | %s | %s | %d | %s | %d | %.2f | %.2f | %.2f | %.2f | %d/%d | %d | %.3f "
              "| %.3f |" % (transport.upper(), relay, tcp, k, wake, n, p50, p95, mx, ok50,
                            before, n, size, cpu, wait))
    if failed:
        print()
        for f in failed:
            print("FAILED: " + f)
        sys.exit(1)


if __name__ == "__main__":
    main()
