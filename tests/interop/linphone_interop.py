#!/usr/bin/env python3
"""Interop test: portier-proxy against real Linphone (linphone-daemon from
Debian's linphone-cli 5.1, i.e. liblinphone/belle-sip). Python 3 stdlib only.

What it checks (RFC 3261 section numbers in the code):
  1. two monitors register with digest auth through the daemon's `register`
     command, mon1 over TCP (TCP only, like a phone app) and mon2 over UDP;
     both daemons report LinphoneRegistrationOk and the proxy's registrar
     (portierctl) lists both AORs with the contact, instance id and
     User-Agent that Linphone sent;
  2. a Linphone "door" calls the group address sip:home@home.example; the
     proxy forks the INVITE to both monitors, mon1 answers, mon2's branch is
     CANCELled ("answered elsewhere"), mon1 hangs up and every call ends;
  3. a registration with a wrong password fails and the proxy logs an
     `auth failure:` line naming src=127.0.0.1.

Checks marked "proxy:" are about the proxy's SIP behaviour; when one fails
the run goes on (so one run shows every problem) and fails at the end.

Ports: proxy 127.0.0.1:35060 (UDP+TCP); Linphone instances 35110-35145
(SIP, audio and video RTP/RTCP); the proxy's relay 35200-35299. No other test
uses 35060 or 35100-35299,
so this test must not run twice at once on one host.

    linphone_interop.py --proxy build/signaling/portier-proxy \\
                        --ctl build/signaling/portierctl [--keep]

Exit status: 0 pass, 1 fail, 77 skipped (linphone-daemon not installed).
"""

import argparse
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
from portier_py import daemons  # noqa: E402
from portier_py.configs import proxy_conf, users_file  # noqa: E402
from portier_py.daemons import Daemon, port_busy, stop_group, tail  # noqa: E402

SKIP = 77
PROXY_PORT = 35060
RELAY_PORTS = "35200-35299"  # the proxy's media relay; nothing else uses them
DOMAIN = "home.example"
GROUP = "sip:home@home.example"
TOTAL_BUDGET = 85.0          # seconds; the whole run stays under 90 s

USERS = {"mon1": "secret1", "mon2": "secret2", "door": "doorpw"}
# role -> (user, password the daemon uses, SIP port, transport). RTP ports
# follow the SIP port: audio +2/+3, video +4/+5. All inside 35100-35199.
PEERS = {
    "mon1": ("mon1", "secret1", 35110, "tcp"),
    "mon2": ("mon2", "secret2", 35120, "udp"),
    "door": ("door", "doorpw", 35130, "udp"),
    # registers as mon1 with a wrong password
    "intruder": ("mon1", "not-the-password", 35140, "udp"),
}

T0 = time.monotonic()
SOFT_FAILURES = []


def log(msg):
    print("[%6.2f] %s" % (time.monotonic() - T0, msg), flush=True)


# A wait that timed out and a daemon that stopped are test failures too.
TestFailure = daemons.Failure


def check(cond, what):
    """A hard check: the rest of the test cannot go on without it."""
    if not cond:
        raise TestFailure(what)
    log("ok: " + what)


def expect(cond, what, detail=""):
    """A check whose failure does not stop the run (reported at the end)."""
    if cond:
        log("ok: " + what)
        return True
    SOFT_FAILURES.append(what + (": " + detail if detail else ""))
    log("FAILED (going on): %s%s" % (what, "\n        " + detail if detail else ""))
    return False


def remaining():
    return TOTAL_BUDGET - (time.monotonic() - T0)


def wait_for(pred, timeout, what, interval=0.1, fatal=True):
    """daemons.wait_for, never past the global budget."""
    return daemons.wait_for(pred, min(timeout, max(remaining(), 0.5)), what, interval, fatal)


# --------------------------------------------------------------------------
# linphone-daemon

class Linphone:
    """One linphone-daemon with its own HOME, rc file and command socket.

    The daemon serves one client at a time on the UNIX socket /tmp/<pipe>.
    It reads one command per read() and sends one reply per command, in one
    write: "Status: Ok|Error", maybe "Reason: ...", then a body of
    "Key: Value" lines; there is no end marker. While no client is connected
    it prints queued events to stdout and drops them, so we stay connected
    from start to end: events then wait in its queue for `pop-event`."""

    def __init__(self, role, tmp, exe, rc_extra="", sip_extra=""):
        self.role = role
        self.user, self.password, self.sip_port, self.transport = PEERS[role]
        self.exe = exe
        self.home = os.path.join(tmp, role)
        self.rc = os.path.join(self.home, "linphonerc")
        self.logfile = os.path.join(self.home, "linphone.log")
        self.stdout = os.path.join(self.home, "stdout.log")
        # unique per run: /tmp is shared with every other user of the host
        self.pipe = "portier-interop-%d-%s" % (os.getpid(), role)
        self.sock_path = os.path.join("/tmp", self.pipe)
        self.proc = None
        self.sock = None
        self.prefix = []      # run the daemon under this (the e2e tests: ip netns exec NS)
        self.events = []      # every event popped so far, in order
        # liblinphone opens its SQLite database there and does not register
        # without it (PEERS.md)
        os.makedirs(os.path.join(self.home, ".local", "share", "linphone"))
        udp = self.sip_port if self.transport == "udp" else 0   # 0: disabled
        tcp = self.sip_port if self.transport == "tcp" else 0
        with open(self.rc, "w") as f:
            f.write(
                "[sip]\n"
                "sip_port=%d\n"
                "sip_tcp_port=%d\n"
                "sip_tls_port=0\n"
                "%s"
                "[rtp]\n"
                "audio_rtp_port=%d\n"
                "video_rtp_port=%d\n"
                "[net]\n"
                "auto_net_state_mon=0\n"
                # headless video (PEERS.md): no camera, display to MSExtDisplay
                "[video]\n"
                "enabled=1\n"
                "capture=0\n"
                "display=1\n"
                "displaytype=MSExtDisplay\n"
                "%s" % (udp, tcp, sip_extra, self.sip_port + 2, self.sip_port + 4,
                        rc_extra))

    def start(self):
        env = dict(os.environ, HOME=self.home)
        for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
            env.pop(k, None)
        # The sound libraries put their runtime files here instead of /tmp/pulse-*,
        # so they go with the test's temp dir.
        runtime = os.path.join(self.home, "run")
        os.makedirs(runtime, mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = runtime
        if os.path.exists(self.sock_path):
            os.unlink(self.sock_path)
        with open(self.stdout, "w") as out:
            self.proc = subprocess.Popen(
                self.prefix + [self.exe, "--config", self.rc, "--pipe", self.pipe, "--log", self.logfile,
                 "--disable-stats-events", "-D"],
                cwd=self.home, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)

    def connect(self, timeout=10):
        def try_connect():
            if self.proc.poll() is not None:
                raise TestFailure("%s: linphone-daemon exited with status %s"
                                  % (self.role, self.proc.returncode))
            if not os.path.exists(self.sock_path):
                return None
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.sock_path)
            except OSError:
                s.close()
                return None
            return s
        self.sock = wait_for(try_connect, timeout, "%s command socket" % self.role)

    def cmd(self, line, timeout=5.0):
        """Send one command; return (ok, fields, raw). fields maps each
        "Key: Value" line of the reply (a later key wins)."""
        if self.sock is None:
            raise TestFailure("%s: not connected" % self.role)
        self.sock.sendall(line.encode() + b"\n")
        buf = b""
        deadline = time.monotonic() + timeout
        while True:
            # the reply comes in one write(); after its first bytes, wait a
            # little for any rest before taking it as complete
            wait = deadline - time.monotonic() if not buf else 0.1
            if wait <= 0:
                break
            r, _, _ = select.select([self.sock], [], [], wait)
            if not r:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise TestFailure("%s: daemon closed the command socket" % self.role)
            buf += chunk
        raw = buf.decode(errors="replace")
        if not raw:
            raise TestFailure("%s: no reply to %r within %.0f s" % (self.role, line, timeout))
        fields = {}
        for l in raw.splitlines():
            m = re.match(r"^([A-Za-z][\w-]*):\s?(.*)$", l)
            if m:
                fields[m.group(1)] = m.group(2)
        return fields.get("Status") == "Ok", fields, raw

    def pop_events(self):
        """Move the daemon's queued events into self.events."""
        for _ in range(50):
            ok, f, raw = self.cmd("pop-event")
            if not ok or "Event-type" not in f:
                return
            self.events.append(f)
            log("%s event: %s %s id=%s" % (self.role, f.get("Event-type"),
                                            f.get("Event", ""), f.get("Id", "")))

    def call_events(self, call_id=None):
        return [e.get("Event") for e in self.events
                if e.get("Event-type") == "call-state-changed"
                and (call_id is None or e.get("Id") == str(call_id))]

    def wait_call_event(self, state, timeout, call_id=None, fatal=True):
        """Wait for the event call-state-changed <state>; return the call id."""
        def seen():
            self.pop_events()
            for e in self.events:
                if (e.get("Event-type") == "call-state-changed" and e.get("Event") == state
                        and (call_id is None or e.get("Id") == str(call_id))):
                    return e.get("Id") or "?"
            return None
        return wait_for(seen, timeout, "%s: %s" % (self.role, state), interval=0.2,
                        fatal=fatal)

    def register_state(self):
        ok, f, raw = self.cmd("register-status ALL")
        return f.get("State") if ok else None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None and self.sock is not None:
            try:
                self.sock.sendall(b"quit\n")     # also unregisters
            except OSError:
                pass
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            stop_group(self.proc)
        try:
            os.unlink(self.sock_path)
        except OSError:
            pass


# --------------------------------------------------------------------------
# portier-proxy

class Proxy(Daemon):
    def __init__(self, exe, ctl, tmp):
        super().__init__(exe, ctl, tmp, "proxy")
        users = users_file(os.path.join(tmp, "users.conf"), USERS, DOMAIN)
        self.write_conf(proxy_conf("127.0.0.1", PROXY_PORT, tmp + "/state", self.sock, users,
                                   RELAY_PORTS, DOMAIN,
                                   more={"module::Router": {"call-fork-timeout": 30}}))

    def start(self):
        super().start()

        def ready():
            if not self.alive():
                raise TestFailure("portier-proxy exited with status %s" % self.proc.returncode)
            return "portier-proxy ready" in self.log_text() and os.path.exists(self.sock)
        wait_for(ready, 10, "portier-proxy ready")

    def registrations(self):
        r = self.ctl("registrations")
        if r is None:
            raise TestFailure("portierctl registrations failed")
        return r["registrations"]

    def relay(self):
        return self.ctl("relay") or {}


# --------------------------------------------------------------------------
# Linphone's own log: belle-sip logs every SIP message it sends or receives,
# so it shows what crossed the wire, as Linphone saw it.

def sip_messages(lp):
    """[(direction "in"/"out", transport "UDP"/"TCP", text)] from lp's log."""
    try:
        with open(lp.logfile, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    msgs, i = [], 0
    while i < len(lines):
        l = lines[i]
        i += 1
        m = re.search(r"(received \[\d+\] new bytes from|message sent to) \[(\w+)://", l)
        if not m:
            continue
        body = []
        while i < len(lines) and not re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[i]):
            body.append(lines[i])
            i += 1
        msgs.append(("in" if m.group(1).startswith("received") else "out",
                     m.group(2).upper(), "\n".join(body).strip("\n")))
    return msgs


def find_msgs(lp, direction, start):
    return [(t, m) for d, t, m in sip_messages(lp) if d == direction and m.startswith(start)]


def header(msg, name):
    """Every value of header `name` in msg, joined with ", "."""
    vals = re.findall(r"^%s\s*:\s*(.*)$" % re.escape(name), msg, re.M | re.I)
    return ", ".join(v.strip() for v in vals) if vals else None


def first_line(msg):
    return msg.splitlines()[0] if msg else ""


def sent_register(lp):
    regs = find_msgs(lp, "out", "REGISTER ")
    return regs[0][1] if regs else ""


# --------------------------------------------------------------------------
# the test

def start_linphones(lps, procs, registered=True):
    """Starts every Linphone of lps ({role: Linphone}, each put in procs first,
    so it is stopped whatever happens), connects to each and, when
    `registered`, waits for each one's registration."""
    for role, lp in lps.items():
        procs[role] = lp
        lp.start()
    for lp in lps.values():
        lp.connect()
    for lp in lps.values() if registered else ():
        check(wait_for(lambda: lp.register_state() == "LinphoneRegistrationOk" or None, 10,
                       "%s registration" % lp.role), "%s registered" % lp.role)


def door_account_rc():
    """The door's account, with the proxy as outbound proxy (see run())."""
    return (
        "[proxy_0]\n"
        "reg_proxy=<sip:127.0.0.1:{p};transport=udp>\n"
        "reg_route=<sip:127.0.0.1:{p};transport=udp;lr>\n"
        "reg_identity=sip:door@{d}\n"
        "reg_expires=3600\n"
        "reg_sendregister=1\n"
        "[auth_info_0]\n"
        "username=door\n"
        "userid=door\n"
        "passwd={pw}\n"
        "realm={d}\n").format(p=PROXY_PORT, d=DOMAIN, pw=USERS["door"])


def run(args, tmp, procs):
    proxy = Proxy(args.proxy, args.ctl, tmp)
    procs["proxy"] = proxy
    proxy.start()
    log("portier-proxy up on 127.0.0.1:%d" % PROXY_PORT)

    # The door gets its account from its rc file, not from the daemon's
    # `register` command: that command sets no outbound route (register-info
    # shows no "Route:"), and liblinphone then sends the INVITE for
    # sip:home@home.example to the host home.example itself (a DNS lookup,
    # which fails here) instead of to the proxy. A real door is provisioned
    # with the proxy as outbound proxy, which is what reg_route does.
    door_rc = door_account_rc()
    lps = {}
    for role in ("mon1", "mon2", "door", "intruder"):
        if role == "door":
            lp = Linphone(role, tmp, args.linphone, door_rc, "default_proxy=0\n")
        else:
            lp = Linphone(role, tmp, args.linphone)
        lps[role] = lp
    start_linphones(lps, procs, registered=False)
    mon1, mon2, door, intruder = (lps[r] for r in ("mon1", "mon2", "door", "intruder"))
    log("linphone-daemon version %s" % mon1.cmd("version")[1].get("Version", "?"))

    # ---- 1. registration with digest auth (RFC 3261 §10.2, §22.4) --------
    # The transport is spelled out in the registrar address, so Linphone does
    # no NAPTR/SRV lookups and uses the transport under test.
    for lp in (mon1, mon2):
        registrar = "sip:127.0.0.1:%d;transport=%s" % (PROXY_PORT, lp.transport)
        ok, f, raw = lp.cmd("register sip:%s@%s %s %s %s %s"
                            % (lp.user, DOMAIN, registrar, lp.password, lp.user, DOMAIN))
        check(ok and f.get("Id"), "%s: `register` over %s accepted (Id %s)"
              % (lp.role, lp.transport.upper(), f.get("Id")))

    def registered(lp):
        st = lp.register_state()
        return st if st in ("LinphoneRegistrationOk", "LinphoneRegistrationFailed") else None
    for lp in (mon1, mon2, door):
        st = wait_for(lambda: registered(lp), 10, "%s registration" % lp.role)
        check(st == "LinphoneRegistrationOk",
              "%s: register-status says %s" % (lp.role, st))

    # The registrar's view (§10.3): one binding per AOR, with the contact,
    # instance id and User-Agent that Linphone sent.
    regs = proxy.registrations()
    for lp in (mon1, mon2, door):
        aor = "sip:%s@%s" % (lp.user, DOMAIN)
        mine = [r for r in regs if r.get("aor") == aor]
        check(len(mine) == 1, "proxy lists one binding for %s" % aor)
        b, reg = mine[0], sent_register(lp)
        c = re.match(r"\s*<([^>]*)>", header(reg, "Contact") or "")
        sent = c.group(1) if c else None
        check(sent and b.get("contact") == sent and ("transport=" + lp.transport) in sent,
              "%s binding contact %s is the one Linphone sent over %s"
              % (aor, b.get("contact"), lp.transport.upper()))
        u = re.search(r"urn:uuid:([0-9a-fA-F-]+)", header(reg, "Contact") or "")
        check(u and u.group(1).lower() in b.get("instance", "").lower(),
              "%s binding carries Linphone's +sip.instance urn:uuid:%s"
              % (aor, u and u.group(1)))
        # Debian's linphone-daemon 5.1 never calls linphone_core_set_user_agent,
        # so it sends "User-Agent: Unknown". The proxy must keep what Linphone
        # sent; should a later Linphone send a real product token, it must
        # name Linphone.
        ua = header(reg, "User-Agent")
        check(ua is not None and b.get("user_agent") == ua,
              "%s binding user_agent %r is the User-Agent Linphone sent" % (aor, ua))
        if ua != "Unknown":
            check(re.search(r"linphone|belle-sip", ua, re.I),
                  "%s user agent %r looks like Linphone" % (aor, ua))

    # ---- 2. forked call to the group address (RFC 3261 §16) --------------
    ok, f, raw = door.cmd("call %s" % GROUP)
    check(ok and f.get("Id"), "door: `call %s` accepted (Id %s)" % (GROUP, f.get("Id")))
    door_id = f["Id"]
    # §16.5/§16.6: the proxy forks to every binding of the domain except the
    # caller's own; both monitors ring.
    id1 = mon1.wait_call_event("LinphoneCallIncomingReceived", 10)
    id2 = mon2.wait_call_event("LinphoneCallIncomingReceived", 10)
    for lp, cid in ((mon1, id1), (mon2, id2)):
        ok, f, raw = lp.cmd("call-status %s" % cid)
        check(ok and f.get("State") in ("LinphoneCallIncomingReceived",
                                         "LinphoneCallIncomingEarlyMedia")
              and "door@" + DOMAIN in f.get("From", ""),
              "%s: call-status %s: %s from %s" % (lp.role, cid, f.get("State"), f.get("From")))
    inv1 = find_msgs(mon1, "in", "INVITE ")
    check(inv1 and inv1[0][0] == "TCP",
          "mon1 got its INVITE over TCP, the transport it registered with")
    # §16.7 step 5: provisional responses go back to the caller.
    door.wait_call_event("LinphoneCallOutgoingRinging", 5, door_id)
    check(True, "door: call %s is ringing" % door_id)
    check("LinphoneCallIncomingReceived" not in door.call_events(),
          "door was not called itself (caller left out of the fork)")

    # mon1 answers; §16.7 step 10 / §16.10: the proxy forwards the 200 and
    # CANCELs every other pending branch.
    ok, f, raw = mon1.cmd("answer %s" % id1)
    check(ok, "mon1: `answer %s` accepted" % id1)
    mon1.wait_call_event("LinphoneCallStreamsRunning", 10, id1)
    check(True, "mon1: call %s reached LinphoneCallStreamsRunning" % id1)
    door.wait_call_event("LinphoneCallStreamsRunning", 10, door_id)
    check(True, "door: call %s reached LinphoneCallStreamsRunning" % door_id)
    mon2.wait_call_event("LinphoneCallEnd", 10, id2)
    ev2 = mon2.call_events(id2)
    check("LinphoneCallConnected" not in ev2 and "LinphoneCallStreamsRunning" not in ev2,
          "mon2: call %s ended without being answered (events %s)" % (id2, ev2))
    cancels = find_msgs(mon2, "in", "CANCEL ")
    check(cancels, "mon2: its call was ended by a CANCEL from the proxy (§16.10)")
    reason = header(cancels[0][1], "Reason") or ""
    expect("cause=200" in reason,
           "proxy: the CANCEL says answered elsewhere (RFC 3326 Reason: %s)" % reason)
    ok, f, raw = mon1.cmd("call-status %s" % id1)
    check(f.get("State") == "LinphoneCallStreamsRunning",
          "mon1: call-status %s still %s" % (id1, f.get("State")))

    # Record-Route (§16.6 step 4) builds the route set of both ends (§12.1).
    # mon1 is on TCP and the door on UDP: the Record-Route mon1 sees must
    # name the proxy with transport=tcp, or mon1 sends its in-dialog requests
    # over UDP (RFC 5658 §3: double Record-Route when the proxy changes
    # transport). mon1 has no UDP at all, like many TCP/TLS clients.
    rr1 = header(inv1[0][1], "Record-Route") or ""
    check("127.0.0.1:%d" % PROXY_PORT in rr1, "mon1's INVITE carries the proxy's Record-Route")
    expect(re.search(r"127\.0\.0\.1:%d;[^>]*transport=tcp" % PROXY_PORT, rr1, re.I),
           "proxy: the Record-Route sent to the TCP branch names transport=tcp",
           "mon1 received over TCP `Record-Route: %s` (the proxy's own address on the "
           "door's UDP side only)" % rr1)
    acks = find_msgs(door, "out", "ACK sip:mon1@")
    check(acks and "127.0.0.1:%d" % PROXY_PORT in (header(acks[0][1], "Route") or ""),
          "door's ACK for the 200 is routed through the proxy (Route: %s)"
          % (acks and header(acks[0][1], "Route")))

    # The ACK for the proxy's own 407 is hop-by-hop: the proxy's INVITE server
    # transaction absorbs it (§17.2.1, §16.7 step 8 comment). It must not be
    # routed on to the Request-URI sip:home@home.example.
    plog = proxy.log_text()
    bad_ack = re.findall(r"^.*(?:responding \d{3} [^\n]* to ACK|ACK[^\n]*DNS)[^\n]*$",
                         plog, re.M)
    door_ack407 = [m for t, m in find_msgs(door, "out", "ACK sip:home@")]
    expect(not bad_ack,
           "proxy: absorbs the door's ACK for its 407 instead of forwarding it",
           "door sent `%s` (CSeq %s, Route %s); proxy log: %s"
           % (first_line(door_ack407[0]) if door_ack407 else "?",
              header(door_ack407[0], "CSeq") if door_ack407 else "?",
              header(door_ack407[0], "Route") if door_ack407 else "?",
              bad_ack[0].strip() if bad_ack else ""))

    time.sleep(1.0)   # a moment of audio both ways
    # mon1 hangs up: its BYE follows the route set from the INVITE's
    # Record-Route (§12.1.1, §16.12) through the proxy to the door.
    ok, f, raw = mon1.cmd("terminate %s" % id1)
    check(ok, "mon1: `terminate %s` accepted" % id1)
    mon1.wait_call_event("LinphoneCallReleased", 10, id1)
    check(True, "mon1: call %s released" % id1)
    byes = find_msgs(mon1, "out", "BYE ")
    got_bye = door.wait_call_event("LinphoneCallEnd", 6, door_id, fatal=False)
    if not expect(got_bye, "proxy: mon1's BYE reached the door (door's call %s ended)" % door_id,
                  "mon1 %s; its log: %s" % (
                      ("sent %s over %s with Route %s" % (first_line(byes[0][1]), byes[0][0],
                                                          header(byes[0][1], "Route")))
                      if byes else "sent no BYE",
                      "; ".join(re.sub(r"^\S+ \S+ ", "", l.strip())
                                for l in tail(mon1.logfile, 100000)
                                if "No listening point" in l) or "-")):
        ok, f, raw = door.cmd("terminate %s" % door_id)   # clean up the door's side
        door.wait_call_event("LinphoneCallEnd", 10, door_id)
    elif byes:
        check("127.0.0.1:%d" % PROXY_PORT in (header(byes[0][1], "Route") or ""),
              "mon1's BYE went through the proxy (Route: %s)" % header(byes[0][1], "Route"))
        check(byes[0][0] == "TCP", "mon1's BYE went over TCP")
    door.wait_call_event("LinphoneCallReleased", 5, door_id)
    mon2.wait_call_event("LinphoneCallReleased", 5, id2)
    for lp in (door, mon1, mon2):
        ok, f, raw = lp.cmd("call-status")
        check(not ok, "%s: no call left (call-status: %s)" % (lp.role, f.get("Reason")))

    # ---- 3. wrong password (§22.2: 401 again; no binding) ----------------
    pattern = r"auth failure:.*src=127\.0\.0\.1\b"
    before = len(re.findall(pattern, proxy.log_text()))
    ok, f, raw = intruder.cmd("register sip:mon1@%s sip:127.0.0.1:%d;transport=udp %s mon1 %s"
                              % (DOMAIN, PROXY_PORT, intruder.password, DOMAIN))
    check(ok, "intruder: `register` as mon1 with a wrong password sent")
    wait_for(lambda: len(re.findall(pattern, proxy.log_text())) > before,
             10, "an `auth failure: ... src=127.0.0.1` line in the proxy log")
    line = re.findall(r"auth failure:.*", proxy.log_text())[-1]
    check(True, "proxy logged `%s`" % line.strip())
    check(intruder.password not in line and "secret" not in line,
          "the auth failure line carries no password")
    st = wait_for(lambda: registered(intruder), 5, "intruder's registration to fail",
                  fatal=False) or intruder.register_state()
    check(st != "LinphoneRegistrationOk", "intruder: register-status is %s" % st)
    regs = proxy.registrations()
    check(not [r for r in regs if ":%d" % intruder.sip_port in r.get("contact", "")],
          "proxy has no binding for the intruder's contact")
    check(len([r for r in regs if r.get("aor") == "sip:mon1@" + DOMAIN]) == 1,
          "mon1 keeps exactly its own binding")
    check(proxy.alive(), "portier-proxy still running")

    if SOFT_FAILURES:
        raise TestFailure("%d proxy problem(s):\n  - %s"
                          % (len(SOFT_FAILURES), "\n  - ".join(SOFT_FAILURES)))


def on_alarm(signum, frame):
    raise TestFailure("global timeout: %d s" % (TOTAL_BUDGET + 2))


def run_bounded(prefix, keep, run, report, cleanup):
    """run(tmp) in a fresh temp dir within TOTAL_BUDGET: PASS, or FAIL with the
    reason (and a traceback for what is not a TestFailure) and report(tmp);
    cleanup() in every case. The temp dir stays after a failure or with keep.
    Returns the exit status."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(TOTAL_BUDGET) + 2)
    rc = 1
    try:
        run(tmp)
        rc = 0
        log("PASS")
    except Exception as e:  # report whatever went wrong, then clean up
        if not isinstance(e, TestFailure):
            traceback.print_exc()
        log("FAIL: %s" % e)
        signal.alarm(0)
        report(tmp)
    finally:
        signal.alarm(0)
        cleanup()
        for problem in daemons.EXIT_PROBLEMS:
            log("FAIL: %s" % problem)
            rc = 1
        if keep or rc != 0:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


def stop_all(procs):
    """Stops every process of procs, the last started first."""
    for role, p in reversed(list(procs.items())):
        try:
            p.stop()
        except Exception as e:  # keep stopping the others
            log("stopping %s: %s" % (role, e))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy", required=True, help="portier-proxy binary")
    ap.add_argument("--ctl", required=True, help="portierctl binary")
    ap.add_argument("--linphone", default="linphone-daemon",
                    help="linphone-daemon binary or name in PATH (default: linphone-daemon)")
    ap.add_argument("--door", help="portier-door binary (the door tests)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()

    args.linphone = shutil.which(args.linphone)
    if not args.linphone:
        print("SKIP: linphone-daemon not found (Debian package linphone-cli)")
        return SKIP
    for p in (args.proxy, args.ctl):
        if not os.access(p, os.X_OK):
            print("FAIL: not executable: %s" % p)
            return 1
    ports = [PROXY_PORT] + [pp[2] + k for pp in PEERS.values() for k in range(6)]
    busy = [p for p in ports if port_busy(p)]
    if busy:
        print("FAIL: ports already in use: %s (another run of this test?)" % busy)
        return 1

    procs = {}

    def report(tmp):
        prx = procs.get("proxy")
        if prx is not None:
            print("---- proxy log (tail) %s" % prx.logfile)
            sys.stdout.writelines(tail(prx.logfile, 40))
        for role, p in procs.items():
            if isinstance(p, Linphone):
                print("---- %s events: %s" % (role, [e.get("Event") for e in p.events]))
                print("---- %s: SIP messages (first lines) from %s" % (role, p.logfile))
                for d, t, m in sip_messages(p)[-12:]:
                    print("  %-3s %s %s" % (d, t, first_line(m)))
                print("---- %s linphone log (tail)" % role)
                sys.stdout.writelines([l for l in tail(p.logfile, 600)
                                       if "alsa" not in l.lower()][-15:])

    return run_bounded("portier-interop-", args.keep, lambda tmp: run(args, tmp, procs), report,
                       lambda: stop_all(procs))


if __name__ == "__main__":
    sys.exit(main())
