#!/usr/bin/env python3
"""End to end (issue 15): a house behind its NAT registers its domain to a
cloud proxy on the "internet"; phones behind NATs of their own use the cloud.
Network namespaces (tests/e2e/netlab.py); Python 3 stdlib; needs root,
iproute2, nftables, conntrack and linphone-daemon.

    house LAN 10.77.0.0/24                  internet 203.0.113.0/24 (RFC 5737)
      panel   10.77.0.1   portier-proxy,      cloud    203.0.113.10  portier-proxy,
              config/proxy-house.conf                  config/proxy-cloud.conf
      door    10.77.0.10  portier-door        hrouter  203.0.113.2   the house's NAT
      mon1    10.77.0.21  portier-monitor     prouter1 203.0.113.21  phone1's NAT
      hrouter 10.77.0.254 (default route)     prouter2 203.0.113.22  phone2's NAT
    phone1 LAN 10.78.1.0/24: phone1 10.78.1.10 (linphone-daemon, alice@cloud.example.net)
    phone2 LAN 10.78.2.0/24: phone2 10.78.2.10

Each router masquerades its LAN onto the internet and lets in only what belongs
to connections from inside (netlab.Lab.nat_router): no port forwarding. Both
proxies run the shipped configs with only addresses, files and timers changed
(keepalive-interval 5 s, ping-pong-timeout-delay 3 s, reconnection-delay 1 s).
One test CA: the cloud's certificate names cloud.example.net (the house's
domain-registrations line reaches it by ;maddr=), the house proxy's
proxy.home.example; both also carry their address as a DNS name for Linphone.

Scenarios (one ctest test each):
  door-rings-phones  The door's press rings mon1 at home and, up the house's
             flow once, the residents the cloud lists for sip:home@home.example:
             alice's phone (linphone-daemon, TLS, SRTP, behind its NAT) and
             bob's app (portier-monitor behind the other NAT), asleep: the
             cloud pushes bob's token (the webhook stand-in, in the cloud's
             namespace) for that Call-ID and the woken app rings on a late
             branch. mon1, alice and bob all decode the door's video while
             ringing. alice answers: the door learns it was her (the cloud's
             assertion), mon1 and bob end "answered elsewhere", the door's leg
             is SRTP, her RFC 4733 keys cross both NATs and both relays and
             open the door once, her hang-up ends the door's call and frees
             every port of both relays; the token is in neither proxy's log.
             (Before main's a034efa the house sent one INVITE per cloud phone
             up its flow and the cloud's relay refused the second: 488 "call
             already relayed".)
  keepalive  Nothing goes wrong for three keep-alive rounds: the house keeps
             its flow (each CRLFCRLF ping answered by the cloud's CRLF pong on
             TLS, RFC 5626 §4.4.1). Without the pong the house drops and
             remakes its flow every keepalive-interval + ping-pong-timeout-delay
             (sofia-sip pongs on TCP only; main's 7d832d2 answers on TLS).
  reconnect  The house registers home.example to the cloud through its NAT
             (portierctl domain-registrations on the house: registered; the
             cloud's binding sip:home.example came from the router's public
             address). Nothing on the internet reaches the house but through
             that flow. alice, at the cloud, calls sip:monitor1@home.example:
             mon1 rings (the INVITE came down the flow). Then the house router
             forgets its mappings (conntrack -F; the old flow's packets are
             then dropped as invalid, see nat_router) and, separately, the cloud
             restarts: each time the house registers again from a new flow and
             alice's next call rings mon1 again.
  cloud-down The cloud's cable is pulled while the house is registered: the
             house notices (no pong) and retries, a press on the door rings
             mon1, which answers, sees the door and opens it; the house's log
             says once that the registration is retrying, however many times
             it retries; the cable back, the house registers again (one line).
  phone-calls-door  alice (phone1, behind its NAT, registered at the cloud
             over TLS) calls sip:door@home.example: the door answers her by
             itself (its auto-answer list names sip:alice@cloud.example.net),
             her phone decodes the camera through both relays (SRTP on the
             door's leg; her Linphone does ICE, and the cloud's ICE-lite relay
             answers her checks and latches her by them), her RFC 4733 keys open the door once, her BYE ends
             the door's call (in-dialog requests down the flow, issue 15
             item 2).

    cloud_e2e.py --scenario reconnect --build build [--keep]

Exit status: 0 pass, 1 fail, 77 skipped (linphone-daemon, nft or conntrack missing).
"""

import argparse
import configparser
import os
import re
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import netlab  # noqa: E402
import intercom_e2e as home_e2e  # noqa: E402  the house's devices and the ring checks
from intercom_e2e import li  # noqa: E402  linphone-daemon driver, checks, waits
from portier_py import configs, pki  # noqa: E402

SOURCE = os.path.join(HERE, "..", "..")
DOMAIN = home_e2e.DOMAIN                  # the house's domain, home.example
CLOUD_DOMAIN = "cloud.example.net"        # the residents' accounts
CLOUD_NAME = "cloud.example.net"          # the name the cloud's certificate carries
HOUSE_PASSWORD = "house-e2e-domain-pw"    # home.example@home.example at the cloud
PHONES = {"phone1": ("alice", "alice-e2e-pw"), "phone2": ("bob", "bob-e2e-pw")}
TLS_PORT = home_e2e.TLS_PORT
KEEPALIVE, PONG, RECONNECT = 5, 3, 1      # [inter-domain-connections] of the house
BUDGET = 135.0    # seconds for one scenario; ctest's timeout (150) is above it
# The addresses: (segment, host) per node; segments' subnets.
SUBNETS = {"lan": "10.77.0", "wan": "203.0.113", "p1": "10.78.1", "p2": "10.78.2"}
WAN = {"hrouter": 2, "cloud": 10, "prouter1": 21, "prouter2": 22}
HOUSE = {"panel": 1, "door": 10, "mon1": 21}
ROUTER_INSIDE = 254

check, log, wait_for, TestFailure = li.check, li.log, li.wait_for, li.TestFailure


def shipped(name, more):
    """The INI text of config/NAME with `more` ({section: {key: value}}) set
    over it: the tests run what is shipped, addresses and files changed."""
    cp = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",),
                                   empty_lines_in_values=False)
    cp.optionxform = str
    with open(os.path.join(SOURCE, "config", name)) as f:
        cp.read_file(f)
    sections = {s: dict(cp.items(s)) for s in cp.sections()}
    for section, keys in more.items():
        sections.setdefault(section, {}).update(keys)
    return configs.ini(sections)


class ProxyD(home_e2e.Proxy):
    """portier-proxy in `node`, from a shipped config (home_e2e.Proxy's checks:
    ready, aors, relay)."""

    def __init__(self, lab, build, tmp, node, conf_text):
        home_e2e.Daemon.__init__(self, lab, node, os.path.join(build, "signaling",
                                                               "portier-proxy"), tmp, node)
        self.write_conf(conf_text(self))

    def start(self):
        # A restart appends to the log: wait for one more "ready" line.
        ready = self.log_text().count("portier-proxy ready") if self.proc else 0
        home_e2e.Daemon.start(self)
        wait_for(lambda: self.log_text().count("portier-proxy ready") > ready or None, 10,
                 "%s: portier-proxy ready" % self.name)

    def bindings(self):
        return (self.ctl("registrations") or {}).get("registrations", [])

    def binding(self, aor):
        return next((b for b in self.bindings() if b.get("aor") == aor), None)

    def warnings(self, what):
        """The log lines of level warning or above naming `what`."""
        return [l for l in self.log_text().splitlines()
                if what in l and re.search(r"\b(WARN|WARNING|ERROR|warning|error)\b", l)]


class World:
    """The lab (house, internet, cloud, two phone LANs) and every program;
    close() tears it all down. door, monitors, phones, proxy (the house's),
    tmp, lab: what home_e2e's ring and answer checks use."""

    def __init__(self, args, tmp, wan_delay_ms=0):
        """wan_delay_ms: each attachment to the internet (the house router's,
        the cloud's, each phone router's) delays every frame that much each
        way (bench/intercom/remote_frame.py: 4 x it is the round trip house <->
        cloud, and cloud <-> phone)."""
        self.args, self.tmp = args, tmp
        self.lab = lab = netlab.Lab(SUBNETS["lan"])
        for seg in ("wan", "p1", "p2"):
            lab.segment(seg, SUBNETS[seg])
        d = wan_delay_ms
        hr_in = lab.nat_router("hrouter", "lan", ROUTER_INSIDE, "wan", WAN["hrouter"], delay_ms=d)
        for node, host in HOUSE.items():
            lab.add(node, host, "lan", gateway=hr_in)
        lab.add("cloud", WAN["cloud"], "wan", delay_ms=d)
        for i in (1, 2):
            gw = lab.nat_router("prouter%d" % i, "p%d" % i, 1, "wan", WAN["prouter%d" % i],
                                delay_ms=d)
            lab.add("phone%d" % i, 10, "p%d" % i, gateway=gw)
        if d:
            lab.no_super_frames()
        self.cloud_ip = lab.addr("cloud")
        self.house_public = lab.addr("hrouter", "wan")
        self.door = self.proxy = self.cloud = self.standin = None
        self.group_phones = ()  # the PHONES the cloud rings for the house's group
        self.monitors, self.phones = {}, {}
        self.tls = t = pki.Pki(tmp, "tls")
        t.root("ca", "portier e2e CA")
        # Linphone matches the address it dials against DNS subjectAltNames.
        t.issue("cloud", CLOUD_NAME, "ca", dns=(CLOUD_NAME, self.cloud_ip))
        t.issue("proxy", home_e2e.PROXY_NAME, "ca",
                dns=(home_e2e.PROXY_NAME, lab.addr("panel")))

    # -- the cloud
    def cloud_conf(self, d):
        users = configs.users_file(os.path.join(self.tmp, "cloud-users.conf"),
                                   {u: pw for u, pw in PHONES.values()}, CLOUD_DOMAIN)
        with open(users, "a") as f:  # config/proxy-cloud.conf: one line per house
            f.write("%s@%s clrtxt:%s ;\n" % (DOMAIN, DOMAIN, HOUSE_PASSWORD))
        # The house's residents (README: the cloud's static record for the
        # house's group address, which the house sends up its flow once).
        records = os.path.join(self.tmp, "cloud-static-records")
        with open(records, "w") as f:
            if self.group_phones:
                f.write("<%s> %s\n" % (home_e2e.GROUP, ",".join(
                    "<sip:%s@%s>" % (PHONES[n][0], CLOUD_DOMAIN) for n in self.group_phones)))
        return shipped("proxy-cloud.conf", {
            "global": {"transports": "sips:%s:%d" % (self.cloud_ip, TLS_PORT),
                       "tls-certificates-file": self.tls.path("cloud.pem"),
                       "tls-certificates-private-key": self.tls.path("cloud.key"),
                       "log-level": "debug", "state-directory": self.tmp + "/cloud-state",
                       "control-socket": d.sock},
            "module::Authentication": {"file-path": users},
            "module::Registrar": {"static-records-file": records},
            # (its latch = anywhere: phones and houses behind NATs write
            # private addresses in SDP)
            "module::MediaRelay": {"sdp-address": self.cloud_ip, "port-range": "20000-20999"}})

    def start_cloud(self, more=""):
        """more: INI text after the config (the push stand-in's section)."""
        if self.cloud is None:
            self.cloud = ProxyD(self.lab, self.args.build, self.tmp, "cloud",
                                lambda d: self.cloud_conf(d) + more)
        self.cloud.start()

    # -- the house
    def house_conf(self, d):
        ip = self.lab.addr("panel")
        users = configs.users_file(os.path.join(self.tmp, "users.conf"), home_e2e.PASSWORDS,
                                   DOMAIN)
        regs = os.path.join(self.tmp, "domain-registrations.conf")
        with open(regs, "w") as f:
            # The cloud by the name its certificate carries, at its address
            # (docs/TLS.md §3: sofia never matches an IP subjectAltName).
            f.write("%s sips:%s:%d;maddr=%s %s\n" % (DOMAIN, CLOUD_NAME, TLS_PORT,
                                                    self.cloud_ip, HOUSE_PASSWORD))
        os.chmod(regs, 0o600)
        return shipped("proxy-house.conf", {
            "global": {"transports": "sips:%s:%d;tls-verify-outgoing=true;"
                                     "tls-certificates-ca-file=%s"
                                     % (ip, TLS_PORT, self.tls.path("ca.pem")),
                       "tls-certificates-file": self.tls.path("proxy.pem"),
                       "tls-certificates-private-key": self.tls.path("proxy.key"),
                       "log-level": "debug", "state-directory": self.tmp + "/house-state",
                       "control-socket": d.sock},
            "module::Authentication": {"file-path": users},
            "module::Router": {"call-fork-timeout": 60},
            "module::MediaRelay": {"sdp-address": ip, "port-range": "%d-%d"
                                   % home_e2e.RELAY_PORTS},
            "inter-domain-connections": {"domain-registrations": regs,
                                         "keepalive-interval": KEEPALIVE,
                                         "ping-pong-timeout-delay": PONG,
                                         "reconnection-delay": RECONNECT}})

    def start_house(self, monitors=("mon1",)):
        self.proxy = ProxyD(self.lab, self.args.build, self.tmp, "panel", self.house_conf)
        self.proxy.start()
        residents = ["sip:%s@%s" % (PHONES["phone1"][0], CLOUD_DOMAIN)]
        self.door = home_e2e.Door(self.lab, self.args.build, self.tmp, self.tls, True, residents)
        self.door.start()
        for node in monitors:
            m = home_e2e.Monitor(self.lab, self.args.build, self.tmp, node, "monitor1",
                                 self.tls, True)
            self.monitors[node] = m
            m.start()

    def domain_registration(self):
        regs = (self.proxy.ctl("domain-registrations") or {}).get("domain_registrations", [])
        return regs[0] if regs else {}

    def house_flow(self):
        """The cloud's binding of the house's domain: its `received` names
        the connection it arrived on."""
        return self.cloud.binding("sip:" + DOMAIN)

    def wait_house_registered(self, timeout, other_than=None):
        """Both ends agree: the house says registered, and the cloud holds
        the domain's binding from the house's public address, over a
        connection other than `other_than` (a `received`). Returns received."""
        def both():
            if self.domain_registration().get("state") != "registered":
                return None
            b = self.house_flow()
            got = b and b.get("received", "")
            if not got or got == other_than:
                return None
            return got
        got = wait_for(both, timeout, "home.example registered at the cloud (not over %s)"
                       % other_through(other_than))
        check(got.startswith("tls:%s:" % self.house_public),
              "the cloud got the house's REGISTER from its router's public address "
              "(masquerade): %s" % got)
        return got

    # -- the phones
    def start_phone(self, node):
        user, pw = PHONES[node]
        # ICE on, as in the Linphone apps: the cloud's relay answers as an
        # ICE-lite agent and latches a phone by its checks only.
        p = home_e2e.Phone(self.lab, self.tmp, self.args.linphone, node, user, pw, self.tls,
                           proxy=self.cloud_ip, domain=CLOUD_DOMAIN, ice=True)
        self.phones[node] = p
        p.start()
        p.connect()
        wait_for(lambda: p.registered() or None, 20, "%s registered at the cloud" % node)
        b = wait_for(lambda: self.cloud.binding("sip:%s@%s" % (user, CLOUD_DOMAIN)), 10,
                     "%s's binding at the cloud" % node)
        router = self.lab.addr("prouter%s" % node[-1], "wan")
        check(b.get("received", "").startswith("tls:%s:" % router),
              "%s registered over TLS from behind its NAT (%s)" % (node, b.get("received")))
        return p

    def cloud_monitor(self, node, push, port=5060):
        """portier-monitor as a resident's phone app in `node`, registered at
        the cloud over TLS from behind its NAT, with `push` ([account]
        push-provider, push-prid, push-param, instance-id): the app the cloud
        wakes by push. A new one per start on a port of its own (an app woken
        from sleep comes back on a new port)."""
        user, pw = PHONES[node]
        name = "%s-%d" % (node, port)
        m = home_e2e.Daemon(self.lab, node, os.path.join(self.args.build, "signaling",
                                                         "portier-monitor"), self.tmp, name)
        m.user = user
        account = configs.account("sip:%s@%s" % (user, CLOUD_DOMAIN), pw,
                                  "%s:%d" % (self.cloud_ip, TLS_PORT),
                                  "%s:%d" % (self.lab.addr(node), port), "tls")
        account.update({"proxy": "sips:%s:%d;maddr=%s" % (CLOUD_NAME, TLS_PORT, self.cloud_ip),
                        "tls-certificates-ca-file": self.tls.path("ca.pem")})
        account.update(push)
        m.write_conf(configs.monitor_conf(
            m.sock, account, self.lab.addr(node), "%d-%d" % (40000 + port, 40099 + port),
            DOMAIN, events_file=os.path.join(self.tmp, name + "-events.jsonl"),
            more={"actions": {"method": "dtmf", "open-door": home_e2e.CODE},
                  "media": home_e2e.media_encryption(True)}))
        m.start()
        wait_for(lambda: m.status().get("registered"), 20, "%s registered at the cloud" % name)
        return m

    def close(self):
        if getattr(self, "standin", None):
            self.standin.stop()
        for p in self.phones.values():
            try:
                p.stop()
            except Exception as e:  # keep tearing down
                log("stopping %s: %s" % (p.role, e))
        self.lab.close()


def other_through(received):
    return received or "any connection"


# --------------------------------------------------------------------------
# scenarios

def house_unreachable_from_outside(w):
    """No port forwarding: from the internet the house proxy's private address
    has no route, and its router's public address takes no connection."""
    lab, panel = w.lab, w.lab.addr("panel")
    for node in ("cloud", "phone1"):
        got = lab.connects(node, panel, TLS_PORT)
        check(got == "unreachable", "%s -> the house proxy %s:%d: %s" % (node, panel, TLS_PORT,
                                                                         got))
    got = lab.connects("cloud", w.house_public, TLS_PORT)
    check(got in ("refused", "timeout"), "cloud -> the house router %s:%d: %s"
          % (w.house_public, TLS_PORT, got))
    check(lab.connects("panel", w.cloud_ip, TLS_PORT) == "ok",
          "the house reaches the cloud's port through its NAT")


def check_ice(w):
    """alice's Linphone did ICE with the cloud's relay, through her NAT: the
    relay answered her checks (RFC 8445 §7.3), and its media to her goes where
    a valid check came from (the relay's ICE-lite latch)."""
    st = w.cloud.ctl("stats") or {}
    check(st.get("relay_stun_answered", 0) > 0 and
          "ICE pair " in w.cloud.log_text() and
          ("by %s:" % w.lab.addr("prouter1", "wan")) in w.cloud.log_text(),
          "the cloud's relay answered alice's ICE checks and latched her by them "
          "(stun answered %s)" % st.get("relay_stun_answered"))


def phone_rings_mon1(w, what, node="phone1"):
    """The phone's call for sip:monitor1@home.example, routed by the cloud down
    the house's flow (RFC 5626 §5.3), rings mon1; the caller hangs up (CANCEL)."""
    phone, mon1 = w.phones[node], w.monitors["mon1"]
    user = PHONES[node][0]
    ok, f, _ = phone.cmd("call sip:monitor1@" + DOMAIN)
    check(ok and f.get("Id"), "%s: call sip:monitor1@%s" % (node, DOMAIN))
    st = wait_for(lambda: (lambda s: s if s.get("direction") == "incoming" else None)(
        mon1.status()), 15, "mon1 ringing for %s (%s)" % (user, what))
    check("%s@%s" % (user, CLOUD_DOMAIN) in st.get("peer", ""), "mon1 shows the caller: %s"
          % st.get("peer"))
    log("%s: mon1 rings for %s" % (what, st.get("peer")))
    phone.cmd("terminate %s" % f["Id"])
    phone.wait_call_event("LinphoneCallReleased", 10, f["Id"])
    st = wait_for(lambda: (lambda s: s if s.get("call") in ("ended", "idle") else None)(
        mon1.status()), 10, "mon1 to stop ringing")
    check(st.get("reason") in ("missed", None, ""), "mon1: %s" % st.get("reason"))


def retrying_since(w, seen):
    """The reasons of the house's retries after its first `seen` events."""
    return [e.get("error", "") for e in w.proxy.events("domain_registration")[seen:]
            if e.get("state") == "retrying"]


def scenario_keepalive(w):
    """Nothing goes wrong: the house's flow must outlive its keep-alives. Each
    CRLFCRLF ping must get its CRLF pong within ping-pong-timeout-delay (RFC
    5626 §4.4.1), or the house drops the flow and registers again, again and
    again. Watched over three keep-alive rounds (the window is what this
    checks: a flow dropped in it is the defect)."""
    w.start_cloud()
    w.start_house(monitors=())
    flow = w.wait_house_registered(20)
    seen = len(w.proxy.events("domain_registration"))
    end = time.monotonic() + 3 * KEEPALIVE + PONG + 1
    while time.monotonic() < end:
        why = retrying_since(w, seen)
        check(not why, "the house kept its flow through its keep-alives (RFC 5626 §4.4.1); "
              "it dropped it: %s" % why)
        time.sleep(0.5)
    check(w.house_flow().get("received") == flow and
          w.domain_registration().get("state") == "registered",
          "still registered over %s" % flow)


def scenario_reconnect(w):
    w.start_cloud()
    w.start_house()
    flow1 = w.wait_house_registered(20)
    log("house registered over %s" % flow1)
    house_unreachable_from_outside(w)
    w.start_phone("phone1")
    phone_rings_mon1(w, "first flow")

    # The house router loses its NAT state. The house's keep-alive goes
    # unanswered (its packets are now invalid at the router: dropped), so after
    # ping-pong-timeout-delay it drops the flow and connects again (RFC 5626
    # §4.4.1, §4.5): a new connection, a new mapping.
    seen = len(w.proxy.events("domain_registration"))
    r = w.lab.run("hrouter", ["conntrack", "-F"])
    check(r.returncode == 0, "conntrack -F in the house router: %s" % r.stderr.strip())
    log("house router: conntrack -F")
    flow2 = w.wait_house_registered(3 * (KEEPALIVE + PONG + RECONNECT), other_than=flow1)
    log("house registered again over %s" % flow2)
    why = retrying_since(w, seen)
    check(why and "no pong" in why[0], "the house found the flow dead by its keep-alive "
          "(RFC 5626 §4.4.1): %s" % why)
    phone_rings_mon1(w, "after the NAT flush")

    # The cloud restarts (its journal brings the binding back, with no flow
    # until the house reconnects: 480 in between).
    seen = len(w.proxy.events("domain_registration"))
    w.cloud.stop()
    log("cloud stopped")
    w.start_cloud()
    flow3 = w.wait_house_registered(3 * (KEEPALIVE + PONG + RECONNECT), other_than=flow2)
    log("house registered again over %s" % flow3)
    why = retrying_since(w, seen)
    check(why and "closed" in why[0], "the house saw the cloud close the flow: %s" % why)
    # alice's TLS connection died with the cloud as well; Linphone tried again
    # at once (refused: the cloud was still starting) and next tries after
    # 60 s. bob's phone, started now behind the other NAT, makes the call.
    w.start_phone("phone2")
    phone_rings_mon1(w, "after the cloud's restart", "phone2")
    check(w.proxy.alive() and w.cloud.alive(), "both proxies still running")
    check(HOUSE_PASSWORD not in w.proxy.log_text() + w.cloud.log_text(),
          "the house's password is in no log")


def registration_lines(w):
    return [l for l in w.proxy.log_text().splitlines()
            if "domain registration %s at" % DOMAIN in l]


def scenario_cloud_down(w):
    w.start_cloud()
    w.start_house()
    w.wait_house_registered(20)
    before = len(registration_lines(w))
    attempts_before = len([e for e in w.proxy.events("domain_registration")
                           if e.get("state") == "retrying"])
    w.lab.unplug("cloud", "wan")
    log("the cloud's cable pulled")
    # The house notices by itself (no pong) and keeps trying.
    wait_for(lambda: w.domain_registration().get("state") not in ("registered", None) or None,
             3 * (KEEPALIVE + PONG), "the house noticing the cloud is gone")
    # The ring at home is as before.
    home_e2e.ring_until_everyone_sees_the_visitor(w, ("mon1",))
    home_e2e.answer_and_open(w, "mon1", ())
    home_e2e.hang_up_and_check_ports(w, "mon1")
    # A second failed attempt by now or soon: a connection to nowhere fails
    # when the REGISTER's timer F fires (RFC 3261 §17.1.2.2, 32 s). Still one
    # line (the events keep each attempt's reason).
    wait_for(lambda: len([e for e in w.proxy.events("domain_registration")
                          if e.get("state") == "retrying"]) - attempts_before >= 2 or None,
             45, "a second attempt to reach the cloud")
    outage = [l for l in registration_lines(w)[before:] if " debug: " not in l]
    log("the house's log during the outage:\n  " + "\n  ".join(outage))
    check(len(outage) == 1 and "retrying" in outage[0],
          "one line for the outage, not one per attempt: %d" % len(outage))
    w.lab.unplug("cloud", "wan", up=True)
    log("the cloud's cable back")
    # The backoff may have reached 8 or 16 s by now (RFC 5626 §4.5).
    w.wait_house_registered(45)
    lines = [l for l in registration_lines(w)[before:] if " debug: " not in l]
    check(len(lines) == 2 and "registered" in lines[1], "one line when it is back: %s"
          % lines[1:])


def scenario_phone_calls_door(w):
    w.start_cloud()
    w.start_house(monitors=())
    w.wait_house_registered(20)
    phone, door = w.start_phone("phone1"), w.door
    alice = "sip:alice@" + CLOUD_DOMAIN
    ok, f, _ = phone.cmd("call sip:door@" + DOMAIN)
    check(ok and f.get("Id"), "phone1: call sip:door@%s" % DOMAIN)
    # Up the cloud, down the house's flow: the door answers her by itself
    # (its auto-answer list names her; the house asserted who she is).
    phone.wait_call_event("LinphoneCallStreamsRunning", 20, f["Id"])
    wait_for(lambda: [e for e in door.events("auto_answered")
                      if e.get("details") == "from=" + alice] or None, 10,
             "the door answering alice by itself")
    st = door.status()
    check(st.get("call") == "active", "the door's call active: %s" % st.get("call"))
    check(st.get("audio_srtp") and st.get("video_srtp"),
          "the door's leg is SRTP: %s / %s" % (st.get("audio_srtp"), st.get("video_srtp")))
    wait_for(lambda: phone.decoded_video() or None, 15, "alice's phone decoding the camera")
    check_ice(w)
    # RFC 4733 from the phone through both relays opens the door (the ACK
    # and the keys' path are those of the call: through both NATs).
    for k in home_e2e.CODE:
        ok, _, _ = phone.cmd("dtmf %s" % k)
        check(ok, "phone1: dtmf accepted")
        time.sleep(0.35)
    wait_for(lambda: door.fired_actions() or None, 10, "the door's actuator")
    # Her hang-up (a BYE down the house's flow, RFC 5626 §5.3) ends the door's call.
    phone.cmd("terminate %s" % f["Id"])
    phone.wait_call_event("LinphoneCallReleased", 10, f["Id"])
    wait_for(lambda: door.status().get("call") == "idle" or None, 10, "the door idle")
    ended = [e.get("details", "") for e in door.events("ended")]
    check(ended and "the other side hung up" in ended[-1], "the door saw her BYE: %s" % ended)
    # RFC 4733 end packets come three times; by now a second opening would show.
    check(door.fired_actions() == ["door"], "the lock pulsed once: %s" % door.fired_actions())
    got = max(home_e2e.video_packets_received(phone.logfile) or [0])
    check(got > 10, "the phone received the door's video (%d RTP packets)" % got)


def scenario_door_rings_phones(w):
    """Issue 15 scenario (a); the module's docstring says what it checks."""
    from portier_py.push_standin import PushStandin
    w.standin = PushStandin(os.path.join(w.tmp, "standin"), log,
                            prefix=["ip", "netns", "exec", w.lab.ns("cloud")])
    w.group_phones = ("phone1", "phone2")
    w.start_cloud(w.standin.proxy_section())
    w.start_house()
    w.wait_house_registered(20)
    alice = w.start_phone("phone1")
    push = {"push-provider": "webpush", "push-prid": "bob-e2e-token-5b7c",
            "push-param": "door-app", "instance-id": "urn:uuid:7d1c0a52-6f0e-4b8e-9a61-15e2e0b0b0b2"}
    asleep = w.cloud_monitor("phone2", push)
    log("bob's app goes to sleep (SIGKILL: its TLS connection is gone)")
    asleep.proc.kill()
    asleep.proc.wait(5)
    door, mon1 = w.door, w.monitors["mon1"]
    t_press = time.monotonic()
    check(door.ctl("ring"), "portierctl ring")
    st = wait_for(lambda: (lambda s: s if s.get("call") == "early" and
                           s.get("frames_decoded", 0) > 0 else None)(mon1.status()),
                  15, "mon1 decoding the door's video")
    call_id = st.get("call_id")
    cid = alice.wait_call_event("LinphoneCallIncomingEarlyMedia", 15)
    wait_for(lambda: alice.decoded_video() or None, 15, "alice's phone decoding the door's video")
    check_ice(w)
    log("mon1 and alice show the visitor, %.1f s after the press" % (time.monotonic() - t_press))
    # The cloud pushed bob's app for this call (the INVITE came up the flow).
    pushed = w.standin.wait_for("webhook", lambda e: e.get("body", {}).get("call_id") == call_id,
                                "bob's push for the door's call", 15)
    check(pushed["body"].get("prid") == push["push-prid"], "the push is bob's: %s" % pushed["body"])
    bob = w.cloud_monitor("phone2", push, port=5062)
    st = wait_for(lambda: (lambda s: s if s.get("call") == "early" and
                           s.get("frames_decoded", 0) > 0 else None)(bob.status()),
                  20, "bob's woken app decoding the door's video")
    check(st.get("call_id") == call_id, "bob rings with the door's call: %s" % st.get("call_id"))
    check(door.status().get("call") == "early", "nobody answered yet")
    log("bob, woken by push, shows the visitor, %.1f s after the press"
        % (time.monotonic() - t_press))
    # alice answers on her phone: mon1 and bob stop with "answered elsewhere".
    ok, _, _ = alice.cmd("answer %s" % cid)
    check(ok, "phone1: answer")
    alice.wait_call_event("LinphoneCallStreamsRunning", 15, cid)
    wait_for(lambda: door.status().get("call") == "active" or None, 10, "the door's call active")
    by = [e["details"] for e in door.events("answered")]
    check(by and by[-1] == "by=sip:alice@%s" % CLOUD_DOMAIN, "the door knows alice answered: %s"
          % by)
    for name, m in (("mon1", mon1), ("bob", bob)):
        st = wait_for(lambda: (lambda s: s if s.get("call") in ("ended", "idle")
                               and s.get("reason") else None)(m.status()), 10,
                      "%s to stop ringing" % name)
        check("answered elsewhere" in st.get("reason", ""), "%s: %r" % (name, st.get("reason")))
    st = door.status()
    check(st.get("audio_srtp") and st.get("video_srtp"), "the door's leg is SRTP: %s" % st)
    # linphone-daemon has no microphone here: its RFC 4733 keys are what
    # crosses both NATs and both relays to the door.
    for k in home_e2e.CODE:
        ok, _, _ = alice.cmd("dtmf %s" % k)
        check(ok, "phone1: dtmf accepted")
        time.sleep(0.35)
    wait_for(lambda: door.fired_actions() or None, 10, "the door's actuator")
    alice.cmd("terminate %s" % cid)
    alice.wait_call_event("LinphoneCallReleased", 10, cid)
    wait_for(lambda: door.status().get("call") == "idle" or None, 10, "the door idle")
    check(door.fired_actions() == ["door"], "the lock pulsed once: %s" % door.fired_actions())
    for who, d in (("house", w.proxy), ("cloud", w.cloud)):
        check(push["push-prid"] not in d.log_text(), "no push token in the %s's log" % who)
        wait_for(lambda: d.relay().get("ports_in_use") == 0 or None, 10,
                 "every relay port of the %s freed" % who)


SCENARIOS = {"door-rings-phones": scenario_door_rings_phones, "keepalive": scenario_keepalive,
             "reconnect": scenario_reconnect, "cloud-down": scenario_cloud_down,
             "phone-calls-door": scenario_phone_calls_door}


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
    missing = [t for t, p in (("linphone-daemon", args.linphone), ("nft", shutil.which("nft")),
                              ("conntrack", shutil.which("conntrack"))) if not p]
    if missing:
        print("SKIP: %s not found (scripts/install-deps.sh test)" % ", ".join(missing))
        return 77
    why = netlab.available()
    if why:
        print("FAIL: %s" % why)
        return 1
    li.TOTAL_BUDGET = BUDGET
    li.T0 = time.monotonic()
    return home_e2e.run_scenario("portier-cloud-e2e-%s-" % args.scenario, args.keep,
                                 lambda tmp: World(args, tmp), SCENARIOS[args.scenario])

if __name__ == "__main__":
    sys.exit(main())
