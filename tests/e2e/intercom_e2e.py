#!/usr/bin/env python3
"""End to end: the whole in-house intercom on a LAN of network namespaces
(issue 5). Python 3 stdlib only; needs root, iproute2, linphone-daemon.

The home, one namespace per device, all on one bridge (tests/e2e/netlab.py):

    panel   10.77.0.1   portier-proxy (registrar, auth, forking, media relay)
    door    10.77.0.10  portier-door, test-pattern camera, actuator = a command
    mon1    10.77.0.21  portier-monitor (headless), monitor1@home.example
    mon2    10.77.0.22  portier-monitor (headless), monitor2@home.example
    phone   10.77.0.30  linphone-daemon, phone@home.example, early media on
    intruder 10.77.0.66 someone on the LAN with no account (scenario call-door)

Every device listens on 5060 in its own namespace, as on a real LAN; nothing
here shares a port with another test, so the scenarios run in parallel.

Scenarios (one per ctest test):
  ring       Seed scenario 1. The door rings sip:home@home.example. Both
             monitors and the phone ring and decode the door's video before
             anyone answers (early media through the relay). monitor1
             answers; monitor2 says "answered elsewhere" and the phone stops
             ringing (CANCEL with Reason cause=200, RFC 3326); audio flows
             both ways; "open door" from monitor1 runs the door's actuator
             exactly once; the hang-up frees every relay port.
  call-door  Seed scenario 2. The phone and a monitor each call the door and
             decode its camera. An unknown user on the LAN cannot register,
             cannot ring anyone, and cannot open the door, neither through
             the proxy nor by sending straight to the door.
  vanish     A monitor killed (and its cable pulled) while ringing: the other
             monitor and the phone go on showing the visitor; the call is
             answered and ends normally; the proxy stays up.
  eavesdrop  The ring scenario's home as shipped (config/): SIP over TLS only
             (the proxy's certificate checked by name, the phone's too), SRTP
             mandatory on every device and in the relay; someone copies every
             frame that crosses the LAN's bridge (sniff.py). A monitor answers
             and opens the door by RFC 4733. The capture holds no SIP, no door
             code (as text or as telephone-events), no VP8 keyframe; it did hold
             the call: TLS records to the proxy's port from every device, SRTP
             both ways between the relay and the door, monitor and phone.
  eavesdrop-plain  The same home with TLS and SRTP off: the same capture shows
             SIP, the code's telephone-events and keyframes (what the checks of
             eavesdrop would catch).

    intercom_e2e.py --scenario ring --build build [--keep]

Exit status: 0 pass, 1 fail, 77 skipped (linphone-daemon missing).
"""

import argparse
import collections
import os
import shutil
import signal
import stat
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
import netlab  # noqa: E402
import sniff  # noqa: E402
import linphone_interop as li  # noqa: E402  linphone-daemon driver, checks, waits
from portier_py import configs  # noqa: E402  (linphone_interop put scripts/ on the path)
from linphone_early_media import video_packets_received  # noqa: E402
from portier_py import pki  # noqa: E402

DOMAIN = "home.example"
GROUP = "sip:home@" + DOMAIN
CODE = "735190"
PASSWORDS = {"door": "door-e2e-pw", "monitor1": "mon1-e2e-pw", "monitor2": "mon2-e2e-pw",
             "phone": "phone-e2e-pw"}
HOSTS = {"panel": 1, "door": 10, "mon1": 21, "mon2": 22, "phone": 30, "intruder": 66}
BUDGET = 100.0    # seconds for one scenario; ctest's timeout is above it
# As config/ ships them: TLS on 5061, the name the devices check (docs/TLS.md §3).
TLS_PORT = 5061
PROXY_NAME = "proxy.home.example"
RELAY_PORTS = (20000, 20999)

check, log, wait_for, TestFailure = li.check, li.log, li.wait_for, li.TestFailure


class Daemon(li.Daemon):
    """One of our programs in its namespace, with its config, log and
    control socket in the run's directory."""

    def __init__(self, lab, node, exe, tmp, name):
        super().__init__(exe, os.path.join(os.path.dirname(exe), "portierctl"), tmp, name,
                         popen=lambda argv, logfile: lab.popen(node, argv, logfile))
        self.lab, self.node = lab, node


class Proxy(Daemon):
    def __init__(self, lab, build, tmp, tls=None):
        super().__init__(lab, "panel", os.path.join(build, "signaling", "portier-proxy"), tmp,
                         "proxy")
        ip = lab.addr("panel")
        users = configs.users_file(os.path.join(tmp, "users.conf"), PASSWORDS, DOMAIN)
        more = {"module::Router": {"call-fork-timeout": 60},
                "module::MediaRelay": {"sdp-address": ip}}
        if tls:
            # config/proxy.conf: sips: only, SRTP or no call
            more["global"] = {"transports": "sips:%s:%d" % (ip, TLS_PORT),
                              "tls-certificates-file": tls.path("proxy.pem"),
                              "tls-certificates-private-key": tls.path("proxy.key"),
                              "aliases": PROXY_NAME}
            more["module::MediaRelay"]["encryption-mandatory"] = "true"
        self.write_conf(configs.proxy_conf(ip, 5060, tmp + "/proxy-state", self.sock, users,
                                           "%d-%d" % RELAY_PORTS, DOMAIN, more=more))

    def start(self):
        super().start()
        wait_for(lambda: "portier-proxy ready" in self.log_text(), 10, "portier-proxy ready")

    def aors(self):
        regs = (self.ctl("registrations") or {}).get("registrations", [])
        return sorted({r.get("aor") for r in regs})

    def relay(self):
        return self.ctl("relay") or {}


def device_account(lab, aor, password, node, tls):
    """An [account] over UDP, or as config/ ships it: the proxy by name over TLS
    at its address, its certificate checked against the home's CA."""
    account = configs.account(aor, password, lab.addr("panel") + ":5060",
                              lab.addr(node) + ":5060")
    if tls:
        account.update({"proxy": "sips:%s:%d;maddr=%s" % (PROXY_NAME, TLS_PORT,
                                                          lab.addr("panel")),
                        "tls-certificates-ca-file": tls.path("ca.pem"),
                        "tls-verify-outgoing": "true"})
    return account


def media_encryption(tls):
    """[media] as shipped (SRTP mandatory) with tls, else no SRTP at all."""
    return ({"media-encryption": "srtp", "media-encryption-mandatory": "true"} if tls
            else {"media-encryption": "none"})


class Door(Daemon):
    def __init__(self, lab, build, tmp, tls=None, secure=None, residents=()):
        super().__init__(lab, "door", os.path.join(build, "signaling", "portier-door"), tmp,
                         "door")
        self.fired = os.path.join(tmp, "door-fired")
        script = os.path.join(tmp, "open-door.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho \"$ACTION\" >> %s\n" % self.fired)
        os.chmod(script, stat.S_IRWXU)
        ip = lab.addr("door")
        # residents: more callers it answers by itself and lets open (cloud_e2e's phones)
        residents = " ".join(["sip:%s@%s" % (u, DOMAIN) for u in ("monitor1", "monitor2", "phone")]
                             + list(residents))
        account = device_account(lab, "sip:door@" + DOMAIN, PASSWORDS["door"], "door", tls)
        media = {"keyframe-interval": 2}
        if secure is not None:
            media.update(media_encryption(tls))
        # VP8: Debian's Linphone has no H.264 (PEERS.md)
        self.write_conf(configs.door_conf(self.sock, account, GROUP, ip, "30000-30099",
                                          tmp + "/door-events", more={
            "call": {"auto-answer": residents, "ring-timeout": 60},
            "media": media,
            "actions": {"door": CODE},
            "access": {"allow": residents},
            "actuator": {"type": "command", "command": script}}))

    def start(self):
        super().start()
        wait_for(lambda: (self.ctl("status") or {}).get("registered"), 10,
                 "portier-door registered")

    def fired_actions(self):
        try:
            with open(self.fired) as f:
                return f.read().split()
        except OSError:
            return []


class Monitor(Daemon):
    """portier-monitor, headless, driven by its control socket."""

    def __init__(self, lab, build, tmp, node, user, tls=None, secure=None):
        super().__init__(lab, node, os.path.join(build, "signaling", "portier-monitor"), tmp,
                         node)
        self.user = user
        ip = lab.addr(node)
        account = device_account(lab, "sip:%s@%s" % (user, DOMAIN), PASSWORDS[user], node, tls)
        more = {"actions": {"method": "dtmf", "open-door": CODE}}
        if secure is not None:
            more["media"] = media_encryption(tls)
        self.write_conf(configs.monitor_conf(
            self.sock, account, ip, "40000-40099", DOMAIN,
            events_file=os.path.join(tmp, node + "-events.jsonl"), more=more))

    def start(self):
        super().start()
        wait_for(lambda: self.status().get("registered"), 10, "%s registered" % self.name)

    def call_state(self):
        return self.status().get("call")


class Phone(li.Linphone):
    """linphone-daemon as the residents' smartphone app, in its namespace,
    registered through the panel's proxy, early media on (it answers 183
    with SDP and shows the video while ringing)."""

    def __init__(self, lab, tmp, exe, role, user, password, tls=None, proxy=None, domain=DOMAIN,
                 ice=False):
        """proxy, domain: another registrar than the panel's (cloud_e2e's cloud);
        ice: ICE as the Linphone apps do it (host candidates, no STUN server of
        the user's; liblinphone 5.1 reads its NAT policy from the section its
        [net] names)."""
        transport, port = ("tls", TLS_PORT) if tls else ("udp", 5060)
        li.PEERS[role] = (user, password, 5060, transport)
        proxy = proxy or lab.addr("panel")
        account = ("[proxy_0]\nreg_proxy=<sip:{p}:{port};transport={t}>\n"
                   "reg_route=<sip:{p}:{port};transport={t};lr>\nreg_identity=sip:{u}@{d}\n"
                   "reg_expires=3600\nreg_sendregister=1\n"
                   "[auth_info_0]\nusername={u}\nuserid={u}\npasswd={pw}\nrealm={d}\n").format(
                       p=proxy, port=port, t=transport, u=user, d=domain, pw=password)
        sip = "default_proxy=0\nincoming_calls_early_media=1\n"
        if tls:
            # Linphone checks the proxy's certificate and name (belle-sip
            # matches the address against a DNS subjectAltName of it); SRTP
            # (SDES) or no call.
            sip += ("root_ca=%s\nverify_server_certs=1\nverify_server_cn=1\n"
                    "media_encryption=srtp\nmedia_encryption_mandatory=1\n" % tls.path("ca.pem"))
        if ice:
            account += ("[net]\nnat_policy_ref=portier-ice\n"
                        "[nat_policy_0]\nref=portier-ice\nprotocols=ice\n")
        super().__init__(role, tmp, exe, account, sip)
        if tls:
            with open(self.rc) as f:
                text = f.read()
            # TLS only: no UDP or TCP port of its own.
            with open(self.rc, "w") as f:
                f.write(text.replace("sip_tls_port=0\n", "sip_tls_port=%d\n" % self.sip_port))
        self.prefix = ["ip", "netns", "exec", lab.ns(role)]

    def registered(self):
        return self.register_state() == "LinphoneRegistrationOk"

    def log_text(self):
        return li.daemons.read_text(self.logfile)

    def decoded_video(self):
        """liblinphone logs this once its decoder gave the first picture."""
        return self.log_text().count("First video frame decoded successfully")


class Home:
    """The lab and every program of the scenario; close() tears it all down."""

    def __init__(self, args, tmp, nodes):
        self.args, self.tmp = args, tmp
        self.lab = netlab.Lab()
        self.procs = []
        for n in nodes:
            self.lab.add(n, HOSTS[n])
        self.proxy = self.door = None
        self.monitors, self.phones = {}, {}

    def start(self, monitors=(), phones=(), secure=None):
        """secure: None as the other scenarios run (UDP, SRTP best effort),
        True as config/ ships it (TLS, SRTP mandatory), False neither."""
        tls = None
        if secure:
            # The home's own CA; the proxy's certificate names what the
            # devices write (PROXY_NAME) and, for Linphone, its address.
            tls = pki.Pki(self.tmp, "tls")
            tls.root("ca", "portier e2e home CA")
            tls.issue("proxy", PROXY_NAME, "ca", dns=(PROXY_NAME, self.lab.addr("panel")))
        self.tls = tls
        self.proxy = Proxy(self.lab, self.args.build, self.tmp, tls)
        self.proxy.start()
        self.door = Door(self.lab, self.args.build, self.tmp, tls, secure)
        self.door.start()
        users = {"mon1": "monitor1", "mon2": "monitor2"}
        for node in monitors:
            m = Monitor(self.lab, self.args.build, self.tmp, node, users[node], tls, secure)
            self.monitors[node] = m
            m.start()
        for role in phones:
            user, pw = ("phone", PASSWORDS["phone"]) if role == "phone" else \
                ("intruder", "guessed-password")
            p = Phone(self.lab, self.tmp, self.args.linphone, role, user, pw, tls)
            self.phones[role] = p
            p.start()
        for p in self.phones.values():
            p.connect()
        if "phone" in self.phones:
            wait_for(lambda: self.phones["phone"].registered(), 15, "the phone registered")
        want = sorted(["sip:door@" + DOMAIN] + ["sip:%s@%s" % (m.user, DOMAIN)
                                                 for m in self.monitors.values()]
                      + (["sip:phone@" + DOMAIN] if "phone" in self.phones else []))
        wait_for(lambda: self.proxy.aors() == want or None, 10, "registrations %s" % want)
        log("home up: %s" % ", ".join(want))

    def close(self):
        for p in self.phones.values():
            try:
                p.stop()
            except Exception as e:  # keep tearing down
                log("stopping %s: %s" % (p.role, e))
        self.lab.close()


# --------------------------------------------------------------------------
# scenarios

def ring_until_everyone_sees_the_visitor(home, ringing):
    """Press the door's button; every device in `ringing` (monitor nodes and
    phone roles) rings and decodes video before anyone answers."""
    door = home.door
    t_press = time.monotonic()
    check(door.ctl("ring"), "portierctl ring")
    for node in ringing:
        if node in home.monitors:
            m = home.monitors[node]
            st = wait_for(lambda: (lambda s: s if s.get("call") == "early"
                                   and s.get("frames_decoded", 0) > 0 else None)(m.status()),
                          15, "%s decoding the door's video" % node)
            log("%s: early, %d frame(s) decoded, first frame %s ms after the INVITE"
                % (node, st["frames_decoded"], st.get("first_frame_ms")))
        else:
            p = home.phones[node]
            p.wait_call_event("LinphoneCallIncomingEarlyMedia", 15)
            wait_for(lambda: p.decoded_video() or None, 15, "%s decoding the door's video" % node)
            log("%s: ringing with early media, first video frame decoded" % node)
    check(door.status().get("call") == "early", "the door is still ringing (nobody answered)")
    log("every device shows the visitor, %.1f s after the press" % (time.monotonic() - t_press))


def answer_and_open(home, answerer, others):
    door, m = home.door, home.monitors[answerer]
    check(m.ctl("answer"), "%s: answer" % answerer)
    wait_for(lambda: m.call_state() == "answered" or None, 10, "%s answered" % answerer)
    wait_for(lambda: door.status().get("call") == "active" or None, 10, "the door's call active")
    by = [e["details"] for e in door.events("answered")]
    check(by and by[-1] == "by=sip:%s@%s" % (m.user, DOMAIN),
          "the door knows who answered (P-Asserted-Identity): %s" % by)
    for node in others:
        if node in home.monitors:
            o = home.monitors[node]
            st = wait_for(lambda: (lambda s: s if s.get("call") in ("ended", "idle")
                                   and s.get("reason") else None)(o.status()), 10,
                          "%s to stop ringing" % node)
            reason = st.get("reason", "")
            check("answered elsewhere" in reason, "%s says why it stopped: %r" % (node, reason))
        else:
            p = home.phones[node]
            p.wait_call_event("LinphoneCallReleased", 10)
            cancels = [t for d, _, t in li.sip_messages(p)
                       if d == "in" and t.startswith("CANCEL ")]
            check(cancels and any("cause=200" in (li.header(c, "Reason") or "") for c in cancels),
                  "%s got CANCEL with Reason cause=200 (RFC 3326)" % node)
    # two-way audio: the monitor's test tone reaches the door, the door's
    # audio (silence without a microphone) reaches the monitor
    wait_for(lambda: door.status().get("audio_packets_received", 0) > 20 or None, 10,
             "the monitor's audio at the door")
    wait_for(lambda: m.status().get("audio_packets_received", 0) > 20 or None,
             10, "the door's audio at the monitor")
    check(m.ctl("action", "open-door"), "%s: action open-door" % answerer)
    wait_for(lambda: door.fired_actions() or None, 10, "the door's actuator")
    time.sleep(2.0)  # a second opening would show up by now (RFC 4733 end packets resent)
    check(door.fired_actions() == ["door"], "the lock was pulsed exactly once: %s"
          % door.fired_actions())


def hang_up_and_check_ports(home, node):
    m = home.monitors[node]
    check(m.ctl("hangup"), "%s: hangup" % node)
    wait_for(lambda: home.door.status().get("call") == "idle" or None, 10, "the door idle")
    wait_for(lambda: home.proxy.relay().get("ports_in_use") == 0 or None, 10,
             "every relay port freed")
    check(home.proxy.relay().get("calls") == [], "no relayed call left")


def scenario_ring(home):
    home.start(monitors=("mon1", "mon2"), phones=("phone",))
    ring_until_everyone_sees_the_visitor(home, ("mon1", "mon2", "phone"))
    answer_and_open(home, "mon1", ("mon2", "phone"))
    hang_up_and_check_ports(home, "mon1")
    snap = os.path.join(home.tmp, "mon1.png")
    check(home.monitors["mon1"].ctl("snapshot", snap) is not None and os.path.getsize(snap) > 100,
          "mon1 saved the picture it showed as PNG")
    with open(snap, "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", "the snapshot is a PNG")


def scenario_call_door(home):
    home.start(monitors=("mon1",), phones=("phone", "intruder"))
    door, phone, mon1 = home.door, home.phones["phone"], home.monitors["mon1"]
    intruder = home.phones["intruder"]

    # The phone watches the door's camera.
    before = phone.decoded_video()
    ok, f, _ = phone.cmd("call sip:door@" + DOMAIN)
    check(ok and f.get("Id"), "phone: `call sip:door@%s`" % DOMAIN)
    phone.wait_call_event("LinphoneCallStreamsRunning", 10, f["Id"])
    wait_for(lambda: phone.decoded_video() > before or None, 10, "the phone decoding the door")
    phone.cmd("terminate %s" % f["Id"])
    phone.wait_call_event("LinphoneCallReleased", 10, f["Id"])
    wait_for(lambda: door.status().get("call") == "idle" or None, 10, "the door idle")
    check(max(video_packets_received(phone.logfile) or [0]) > 0, "the phone got video packets")

    # So does a monitor, from its doors list.
    check(mon1.ctl("call", "front"), "mon1: call front")
    wait_for(lambda: mon1.status().get("frames_decoded", 0) > 5 or None, 10,
             "mon1 decoding the door's camera")
    check(mon1.ctl("hangup"), "mon1: hangup")
    wait_for(lambda: door.status().get("call") == "idle" or None, 10, "the door idle")

    # Someone on the LAN without an account.
    wait_for(lambda: intruder.register_state() == "LinphoneRegistrationFailed" or None, 15,
             "the intruder's registration to fail")
    check("sip:intruder@" + DOMAIN not in home.proxy.aors(), "no binding for the intruder")
    check("auth failure" in home.proxy.log_text(), "the proxy logged the failed authentication")
    check("guessed-password" not in home.proxy.log_text(), "no password in the proxy's log")
    ok, f, _ = intruder.cmd("call " + GROUP)
    if ok and f.get("Id"):
        intruder.wait_call_event("LinphoneCallError", 15, f["Id"])
    time.sleep(1.0)
    check(mon1.call_state() in (None, "idle", "ended"), "nobody rang for the intruder (%s)"
          % mon1.call_state())
    check(not [e for e in phone.events if e.get("Event") == "LinphoneCallIncomingReceived"],
          "the phone did not ring for the intruder")
    # Through the proxy the intruder is challenged for ever; straight to the
    # door, with a resident's name in P-Asserted-Identity, it gets 403.
    sipp = shutil.which("sipp")
    check(sipp, "sipp installed")
    scen = os.path.join(HERE, "..", "sip", "scenarios", "forged_identity.xml")
    csv = os.path.join(home.tmp, "forged.csv")
    with open(csv, "w") as fh:
        fh.write("SEQUENTIAL\nmonitor1;%s;%s;\n" % (DOMAIN, CODE))
    r = home.lab.run("intruder", [sipp, "-sf", scen, "%s:5060" % home.lab.addr("door"),
                                  "-i", home.lab.addr("intruder"), "-p", "5070", "-m", "1",
                                  "-inf", csv, "-timeout", "15s", "-timeout_error", "-nostdin",
                                  "-mp", "6000", "-trace_err", "-error_file",
                                  os.path.join(home.tmp, "forged_errors.log")], timeout=30)
    check(r.returncode == 0, "the door answered 403 to the forged MESSAGE and INVITE "
          "(sipp rc %d)" % r.returncode)
    check(door.fired_actions() == [], "the door never opened: %s" % door.fired_actions())
    refused = [e["details"] for e in door.events("request_refused")]
    check(len(refused) == 2, "the door logged both refusals: %s" % refused)


def scenario_vanish(home):
    home.start(monitors=("mon1", "mon2"), phones=("phone",))
    ring_until_everyone_sees_the_visitor(home, ("mon1", "mon2", "phone"))
    # monitor2 loses power: the process dies and its cable goes dead.
    home.lab.unplug("mon2")
    li.stop_group(home.monitors["mon2"].proc, signal.SIGKILL)
    log("mon2 killed and unplugged while ringing")
    mon1 = home.monitors["mon1"]
    before = mon1.status()["frames_decoded"]
    time.sleep(2.0)
    after = mon1.status()["frames_decoded"]
    check(after > before, "mon1 goes on decoding (%d -> %d frames)" % (before, after))
    p = home.phones["phone"]
    check("LinphoneCallEnd" not in p.call_events(), "the phone is still ringing")
    answer_and_open(home, "mon1", ("phone",))
    hang_up_and_check_ports(home, "mon1")
    check(home.proxy.proc.poll() is None, "portier-proxy still running")


class Eavesdropper:
    """Someone with a port mirror: every frame crossing the LAN's bridge, from
    before the first registration to after the hang-up (sniff.py)."""

    def __init__(self, home):
        self.pcap = os.path.join(home.tmp, "lan.pcap")
        ready = os.path.join(home.tmp, "sniff.ready")
        self.proc = home.lab.popen_bridge(
            [sys.executable, os.path.join(HERE, "sniff.py"), self.pcap, ready, str(BUDGET),
             "1000000"], os.path.join(home.tmp, "sniff.log"))
        wait_for(lambda: os.path.exists(ready) or None, 10, "the eavesdropper's capture")

    def stop(self):
        li.stop_group(self.proc)
        return sniff.packets(sniff.read_pcap(self.pcap))


def what_the_eavesdropper_read(home, pkts):
    """What can be read in the capture: SIP messages, the door code as text or
    as RFC 4733 events, VP8 keyframes; and what shows the call went by: TLS
    records to the proxy's SIP port and RTP-shaped packets to and from the
    relay's ports, per device."""
    panel = home.lab.addr("panel")
    node_of = {home.lab.addr(n): n for n in ("door", "mon1", "mon2", "phone")}
    seen = {"sip": [], "code_text": [], "keyframes": [], "tls_records": collections.Counter(),
            "relay_rtp": collections.Counter()}
    for p in pkts:
        proto, src, sport, dst, dport, payload = p
        # RFC 3261 §7: every request line and status line carries SIP/2.0.
        if b"SIP/2.0" in payload or b"REGISTER sip" in payload or b"INVITE sip" in payload:
            seen["sip"].append(p)
        if CODE.encode() in payload:
            seen["code_text"].append(p)
        r = sniff.rtp(payload) if proto == "udp" else None
        if r and sniff.vp8_keyframe(r[5]):
            seen["keyframes"].append(p)
        if proto == "tcp" and panel in (src, dst) and TLS_PORT in (sport, dport):
            device = node_of.get(dst if src == panel else src)
            if device and 23 in sniff.tls_records(payload):  # application_data
                seen["tls_records"][device] += 1
        if r and panel in (src, dst):
            relay_port, device = (sport, node_of.get(dst)) if src == panel else \
                (dport, node_of.get(src))
            if device and RELAY_PORTS[0] <= relay_port <= RELAY_PORTS[1]:
                seen["relay_rtp"][(device, "from" if src == panel else "to")] += 1
    seen["code_events"] = [k for k, ev in sniff.dtmf_events(pkts).items()
                           if sniff.code_as_events(ev, CODE)]
    log("capture: %d TCP/UDP packets; SIP in the clear %d, the code as text %d, as "
        "RFC 4733 events in %s, VP8 keyframes %d; TLS application records %s; "
        "RTP-shaped packets with the relay %s"
        % (len(pkts), len(seen["sip"]), len(seen["code_text"]), seen["code_events"],
           len(seen["keyframes"]), dict(seen["tls_records"]), dict(seen["relay_rtp"])))
    return seen


def call_with_an_eavesdropper(home, secure):
    """The ring scenario's call, captured from the bridge: rings everyone,
    mon1 answers and opens the door with RFC 4733 DTMF, hangs up."""
    spy = Eavesdropper(home)
    home.start(monitors=("mon1", "mon2"), phones=("phone",), secure=secure)
    received = {b.get("aor"): b.get("received", "")
                for b in (home.proxy.ctl("registrations") or {}).get("registrations", [])}
    if secure:
        check(all(r.startswith("tls:") for r in received.values()),
              "every device registered over TLS: %s" % received)
    ring_until_everyone_sees_the_visitor(home, ("mon1", "mon2", "phone"))
    answer_and_open(home, "mon1", ("mon2", "phone"))
    for who, st in (("door", home.door.status()), ("mon1", home.monitors["mon1"].status())):
        log("%s: audio_srtp=%r video_srtp=%r" % (who, st.get("audio_srtp"), st.get("video_srtp")))
        if secure:
            check(st.get("audio_srtp") and st.get("video_srtp"),
                  "%s's audio and video are SRTP: %s" % (who, st))
    hang_up_and_check_ports(home, "mon1")
    return what_the_eavesdropper_read(home, spy.stop())


def first(pkts):
    proto, src, sport, dst, dport, payload = pkts[0]
    return "%s %s:%d > %s:%d %r" % (proto, src, sport, dst, dport, payload[:80])


def scenario_eavesdrop(home):
    seen = call_with_an_eavesdropper(home, secure=True)
    check(not seen["sip"], "no SIP in the clear on the LAN (RFC 3261 §26.2: TLS)%s"
          % (seen["sip"] and ": " + first(seen["sip"]) or ""))
    check(not seen["code_text"], "no door code in the clear%s"
          % (seen["code_text"] and ": " + first(seen["code_text"]) or ""))
    check(not seen["code_events"], "no door code as RFC 4733 events in the clear (RFC 4733 "
          "§3.2; SRTP encrypts them, RFC 3711 §3) %s" % seen["code_events"])
    check(not seen["keyframes"], "no VP8 keyframe in the clear (start code, RFC 6386 §9.1)%s"
          % (seen["keyframes"] and ": " + first(seen["keyframes"]) or ""))
    # The capture saw the call: TLS between every device and the proxy's
    # port; media both ways between the relay and the door and the answering
    # monitor, and to the ringing ones (early media; Linphone sends none).
    for node in ("door", "mon1", "mon2", "phone"):
        check(seen["tls_records"][node] > 0, "TLS records between %s and the proxy's port %d "
              "in the capture (%d)" % (node, TLS_PORT, seen["tls_records"][node]))
    expected_media(seen, (("door", "to"), ("door", "from"), ("mon1", "to"), ("mon1", "from"),
                          ("mon2", "from"), ("phone", "from")))


def expected_media(seen, legs):
    """Packets both ways for the door and mon1 (a call of seconds); a few to
    the devices that rang with early media for a fraction of one."""
    for node, way in legs:
        n = seen["relay_rtp"][(node, way)]
        check(n > (20 if node in ("door", "mon1") else 5), "the capture has packets %s the "
              "relay %s %s (%d)" % (way, "from" if way == "to" else "to", node, n))


def scenario_eavesdrop_plain(home):
    # The control: the same call without TLS and SRTP, where each check of
    # eavesdrop must find what it looks for.
    seen = call_with_an_eavesdropper(home, secure=False)
    check(seen["sip"], "the capture shows SIP in the clear")
    check(seen["code_events"], "the capture shows the door code as RFC 4733 events")
    check(seen["keyframes"], "the capture shows VP8 keyframes")
    expected_media(seen, (("door", "to"), ("door", "from"), ("mon1", "to"), ("mon1", "from"),
                          ("mon2", "from"), ("phone", "from")))


SCENARIOS = {"ring": scenario_ring, "call-door": scenario_call_door, "vanish": scenario_vanish,
             "eavesdrop": scenario_eavesdrop, "eavesdrop-plain": scenario_eavesdrop_plain}
NODES = {"ring": ("panel", "door", "mon1", "mon2", "phone"),
         "call-door": ("panel", "door", "mon1", "phone", "intruder"),
         "vanish": ("panel", "door", "mon1", "mon2", "phone"),
         "eavesdrop": ("panel", "door", "mon1", "mon2", "phone"),
         "eavesdrop-plain": ("panel", "door", "mon1", "mon2", "phone")}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    ap.add_argument("--build", required=True, help="the CMake build directory")
    ap.add_argument("--linphone", default="linphone-daemon")
    ap.add_argument("--keep", action="store_true", help="keep the run's directory")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    args.linphone = shutil.which(args.linphone)
    if not args.linphone:
        print("SKIP: linphone-daemon not found (Debian package linphone-cli)")
        return 77
    why = netlab.available()
    if why:
        # The issue asks for namespaces; a machine without them fails loudly.
        print("FAIL: %s" % why)
        return 1
    li.TOTAL_BUDGET = BUDGET
    li.T0 = time.monotonic()
    return run_scenario("portier-e2e-%s-" % args.scenario, args.keep,
                        lambda tmp: Home(args, tmp, NODES[args.scenario]),
                        SCENARIOS[args.scenario])


def run_scenario(prefix, keep, make, scenario):
    """The scenario on what make(tmp) builds (a Home, cloud_e2e's World: its
    phones, close()), within the budget; after a failure, each log's tail and
    each phone's last SIP messages. Returns the exit status."""
    made = []

    def run(tmp):
        made.append(make(tmp))
        scenario(made[0])

    def report(tmp):
        for path in sorted(os.listdir(tmp)):
            if path.endswith(".log"):
                print("---- %s (tail)" % path)
                sys.stdout.writelines(li.tail(os.path.join(tmp, path), 25))
        for world in made:
            for role, p in world.phones.items():
                print("---- %s: SIP (last lines)" % role)
                for d, t, m in li.sip_messages(p)[-12:]:
                    print("  %-3s %s %s" % (d, t, li.first_line(m)))

    def cleanup():
        for world in made:
            world.close()

    return li.run_bounded(prefix, keep, run, report, cleanup)


if __name__ == "__main__":
    sys.exit(main())
