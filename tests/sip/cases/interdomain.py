"""Two portier-proxies joined by a domain registration (issue 15 items 1 and 2):
the in-house proxy (the case's own, home.example: the door and mon1) registers
its domain over TLS to a second portier-proxy, the cloud (cloud.test, where the
resident alice's phone, a portier-monitor, is registered over TLS). The cases
drive both directions through both proxies and both media relays: the door's
ring reaches the phone up the house's flow, the phone calls the door down it,
and every in-dialog request (ACK, BYE, the phone's open-door) follows the flow
rather than the addresses behind it (RFC 5626 §5.3)."""

import os
import signal
import subprocess
import time

from portier_sip.base import DOMAIN, DOOR_CODE, LOCAL, Proc, TestFailure, check, log
from portier_sip.devices import check_answered_with_audio
from portier_sip.registry import case
from portier_py import configs
from portier_py.pki import standard
from cases.proxy_tls import set_transports, tls_port, tls_transport
from cases.push import WAKE_INSTANCE, WAKE_TOKEN, _Standin

CLOUD = "cloud.test"
ALICE_PW = "alice-Cloud-Pw-6120"
HOUSE_PW = "House-Reg-Pw-8824"
# As config/door.conf and config/monitor.conf ship: SRTP only (RTP/SAVP). The
# relays terminate SRTP offered that way and key every leg apart; a best-effort
# offer (RTP/AVP with a=crypto) goes through them as plain RTP.
SRTP_ONLY = "[media]\nmedia-encryption = srtp\nmedia-encryption-mandatory = true\n"


class _Cloud:
    """The cloud: portier-proxy serving cloud.test (alice) on UDP and TLS (the
    test PKI's proxy certificate, named proxy.test), accepting the domain
    registration of home.example by digest (users file line
    home.example@home.example), the static record that lists alice's phone for
    the house's group address, and a media relay of its own on the upper half
    of the case's relay ports."""

    def __init__(self, env, pki, more=""):
        self.env = env
        self.dir = os.path.join(env.dir, "cloud")
        os.makedirs(os.path.join(self.dir, "state"), exist_ok=True)
        self.socket = os.path.join(self.dir, "cloud.sock")
        self.log = os.path.join(self.dir, "cloud.log")
        self.udp, self.tls = env.ports.sip(5), env.ports.sip(6)
        users = configs.users_file(os.path.join(self.dir, "users.conf"), {"alice": ALICE_PW}, CLOUD)
        with open(users, "a") as f:
            f.write("%s@%s clrtxt:%s ;\n" % (DOMAIN, DOMAIN, HOUSE_PW))
        relay = "%d-%d" % (env.ports.relay_first + 50, env.ports.relay_first + 99)
        # The residents' phones of the house home.example: its group
        # address, sent up the house's flow, rings them.
        records = os.path.join(self.dir, "static-records")
        with open(records, "w") as f:
            f.write("<sip:home@%s> <sip:alice@%s>\n" % (DOMAIN, CLOUD))
        cfg = configs.proxy_conf(LOCAL, self.udp, os.path.join(self.dir, "state"), self.socket,
                                 users, relay, CLOUD, "everyone", more={
            # The name the house writes in its REGISTER's Request-URI is ours.
            "global": {"log-output": "stderr", "aliases": "proxy.test",
                       "transports": "sip:%s:%d sips:%s:%d;"
                       "tls-certificates-file=%s;tls-certificates-private-key=%s"
                       % (LOCAL, self.udp, LOCAL, self.tls, pki.path("proxy-full.pem"),
                          pki.path("proxy.key"))},
            "module::Registrar": {"static-records-file": records},
            "module::MediaRelay": {"enabled": "true", "sdp-address": LOCAL},
            "inter-domain-connections": {"accept-domain-registrations": "true"}})
        self.config = os.path.join(self.dir, "cloud.ini")
        with open(self.config, "w") as f:
            f.write(cfg + more)
        self.proc = None

    def start(self):
        self.proc = Proc("cloud", [self.env.args.proxy, "--config", self.config], self.log,
                         self.dir, append=True)
        self.env.procs.append(self.proc)
        deadline = time.time() + 10
        while time.time() < deadline:
            check(self.proc.running(), "the cloud proxy exited at start: %s" % self.log_text()[-2000:])
            r = self.ctl_raw("ping")
            if r and r[0] == 0 and '"ok":true' in r[1].replace(" ", ""):
                log("cloud proxy up (pid %d)" % self.proc.pid)
                return
            time.sleep(0.1)
        raise TestFailure("the cloud proxy is not up after 10 s")

    def ctl_raw(self, *cmd):
        saved = self.env.socket
        self.env.socket = self.socket
        try:
            return self.env.ctl_raw(*cmd)
        finally:
            self.env.socket = saved

    def ctl(self, *cmd):
        saved = self.env.socket
        self.env.socket = self.socket
        try:
            return self.env.ctl(*cmd)
        finally:
            self.env.socket = saved

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def _house(env, pki, cloud):
    """The case's own proxy as the house: devices on UDP, a TLS transport that
    verifies servers against the test root, home.example registered to the
    cloud (its group address then also goes up to the cloud), the lower half
    of the case's relay ports."""
    set_transports(env, tls_transport(
        env, pki, params=";tls-verify-outgoing=true;tls-certificates-ca-file=%s"
        % pki.path("ca.pem")))
    regs = env.write("domain-registrations", "%s sips:proxy.test:%d;maddr=%s %s\n"
                     % (DOMAIN, cloud.tls, LOCAL, HOUSE_PW))
    env.relay_extra = ("[inter-domain-connections]\ndomain-registrations = %s\n"
                       "keepalive-interval = 5\nping-pong-timeout-delay = 2\n"
                       "reconnection-delay = 1\n" % regs)
    write_config = env.write_config

    def with_records():
        path = write_config()
        with open(path) as f:
            text = f.read()
        text = text.replace("port-range = %d-%d" % (env.ports.relay_first, env.ports.relay_first + 99),
                            "port-range = %d-%d" % (env.ports.relay_first, env.ports.relay_first + 49))
        with open(path, "w") as f:
            f.write(text)
        return path
    env.write_config = with_records
    env.start_proxy()
    deadline = time.time() + 15
    regs = []
    while time.time() < deadline:
        regs = env.ctl("domain-registrations").get("domain_registrations", [])
        if regs and regs[0].get("state") == "registered":
            break
        time.sleep(0.2)
    check(regs and regs[0].get("state") == "registered",
          "the house did not register home.example to the cloud: %s" % regs)
    binding = [b for b in cloud.ctl("registrations").get("registrations", [])
               if b.get("aor") == "sip:" + DOMAIN]
    check(len(binding) == 1, "the cloud holds %s for sip:%s" % (binding, DOMAIN))


def _phone(env, pki, cloud, name="alice", slot=1, push=None, extra=""):
    """portier-monitor as alice's phone, registered at the cloud over TLS (the
    certificate checked by the name proxy.test); push: more [account] keys
    (the push parameters and instance id of a phone that can be woken)."""
    account = {"aor": "sip:alice@%s" % CLOUD, "password": ALICE_PW,
               "proxy": "sips:proxy.test:%d;maddr=%s" % (cloud.tls, LOCAL),
               "bind": "sip:%s:%d;transport=tls" % (LOCAL, env.ports.sip(slot)),
               "register-expires": 600, "tls-certificates-ca-file": pki.path("ca.pem")}
    account.update(push or {})
    return env.start_monitor(name, "alice", slot, slot, account=account, extra=SRTP_ONLY + extra)


def _setup(env, cloud_more="", phone=True):
    pki = standard(env.dir)
    cloud = _Cloud(env, pki, cloud_more)
    cloud.start()
    _house(env, pki, cloud)
    env.start_door(video_codec="vp8",
                   auto_answer="sip:mon1@%s sip:alice@%s" % (DOMAIN, CLOUD),
                   extra="media-encryption-mandatory = true\n[actions]\ndoor = %s log\n"
                   "[access]\nallow = sip:mon1@%s sip:alice@%s\n" % (DOOR_CODE, DOMAIN, CLOUD))
    env.start_monitor("mon1", "mon1", 0, 0, extra=SRTP_ONLY)
    if phone:
        _phone(env, pki, cloud)
    return pki, cloud


def _wait_door_idle(env):
    deadline = time.time() + 10
    while time.time() < deadline and env.door_ctl("status").get("call") not in ("idle", None):
        time.sleep(0.1)


@case
def case_interdomain_door_rings_cloud_phone(env):
    """Issue 15 item 2, through two real proxies: the door's press on
    sip:home@home.example rings mon1 at home and goes up the house's TLS flow
    once, Request-URI unchanged; the cloud's static record for that address
    rings alice@cloud.test's phone; both decode the door's video while ringing
    (early media through the house's relay, then the cloud's). The phone
    answers: the door learns it was alice (the cloud's assertion, passed on by
    the house), mon1 gets "answered elsewhere" (RFC 3326 Reason), audio flows
    both ways through both relays, the phone's open-door (RFC 4733, in the
    media) runs the door's action once. The phone hangs up: its BYE goes from
    the cloud down the house's flow (RFC 5626 §5.3), not to the door's address
    in the house's Record-Route, and ends the door's call."""
    pki, cloud = _setup(env)
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    for name in ("mon1", "alice"):
        st = env.wait_monitor(name, lambda st: st.get("call") == "early" and
                              st.get("frames_decoded", 0) > 0, "early media with decoded video", 20)
        log("%s: early, %d frames, first frame %s ms after the INVITE"
            % (name, st["frames_decoded"], st["first_frame_ms"]))
        check(st.get("peer") == "sip:door@%s" % DOMAIN, "%s: the caller is %r" % (name, st.get("peer")))
    r = env.mon_ctl("alice", "answer")
    check(r.get("result") == "answered", "alice answer: %s" % r)
    answered = env.wait_door_event("answered", 10)
    # Who answered, as the cloud asserted it and the house passed it on (RFC
    # 3325 §9.1): the door's access list decides on it.
    check(answered[0]["details"] == "by=sip:alice@%s" % CLOUD,
          "the door's answered event: %s" % answered[0]["details"])
    check_answered_with_audio(env, "alice", "mon1")
    # On the WAN both legs are SRTP, each keyed by its own relay (RFC 3711
    # §9.1): the phone's from the cloud's relay, the house-to-cloud leg's by
    # the house's relay (the cloud relay's caller side is that leg), and the
    # media went through both relays.
    st = env.mon_ctl("alice", "status")
    check(st.get("video_srtp") and st.get("audio_srtp"),
          "the phone's media is not SRTP: %s" % st)
    for who, relay in (("house", env.ctl("relay")), ("cloud", cloud.ctl("relay"))):
        calls = relay.get("calls", [])
        check(len(calls) == 1 and calls[0].get("srtp") == "terminated" and
              any(b.get("winner") and b.get("packets", 0) > 0 for b in calls[0]["branches"]),
              "the %s relay does not carry the call as SRTP: %s" % (who, calls))
    r = env.mon_ctl("alice", "action", "open-door")
    check("result" in r, "alice open-door: %s" % r)
    deadline = time.time() + 10
    while time.time() < deadline and not env.door_events("action"):
        time.sleep(0.1)
    actions = [e["details"] for e in env.door_events("action")]
    check(len(actions) == 1 and "from=sip:alice@%s" % CLOUD in actions[0] and
          "result=done" in actions[0], "the door's actions: %s" % actions)
    r = env.mon_ctl("alice", "hangup")
    check(r.get("result") == "hung up", "alice hangup: %s" % r)
    ended = env.wait_door_event("ended", 10)
    log("door: %s" % ended[0]["details"])
    check("hung up" in ended[0]["details"] or "other side" in ended[0]["details"],
          "the door's call ended by %s" % ended[0]["details"])
    _check_nothing_connected_to_house(env)


def _check_nothing_connected_to_house(env):
    """The cloud reached the house only down the flow the house opened: nothing
    ever connected to the house's own TLS port (behind a NAT it could not
    have; on loopback it could, so this is what shows the flow was used)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%d )" % tls_port(env)],
                         capture_output=True, text=True, timeout=5).stdout.strip()
    check(not out, "a connection to the house's TLS port (the cloud went around the flow): %s"
          % out)


@case
def case_interdomain_phone_calls_door(env):
    """Issue 15 item 2: alice's phone at the cloud calls sip:door@home.example.
    The cloud sends it down the house's flow with the Request-URI unchanged;
    the house takes the cloud's caller as alice@cloud.test (no challenge: the
    cloud authenticated her) and the door, whose auto-answer and access lists
    name her, answers: the phone decodes the camera through both relays. The
    door hangs up: its BYE goes up the house's flow to the cloud, which sends
    it down the phone's own TLS connection, and the phone's call ends."""
    pki, cloud = _setup(env)
    r = env.mon_ctl("alice", "call", "front")
    check(r.get("result", "").startswith("calling"), "alice call front: %s" % r)
    st = env.wait_monitor("alice", lambda st: st.get("call") == "answered" and
                          st.get("frames_decoded", 0) > 0, "the door's camera", 20)
    log("alice: %d frames of %s, first frame %s ms after the INVITE"
        % (st["frames_decoded"], st["video_codec"], st["first_frame_ms"]))
    env.wait_door_event("auto_answered", 5)
    check(env.mon_ctl("mon1", "status").get("call") in (None, "idle"),
          "mon1 rang for a call to the door")
    check(env.door_ctl("hangup").get("result") == "hung up", "the door did not hang up")
    st = env.wait_monitor("alice", lambda st: st.get("call") == "ended", "the end of the call", 10)
    log("alice: the call ended: %s" % st.get("reason"))
    _check_nothing_connected_to_house(env)


@case
def case_interdomain_monitor_answer_cancels_phone(env):
    """Issue 15 item 2, the other way round: mon1 at home answers the door's
    ring while alice's phone at the cloud rings too. The house CANCELs the
    cloud's branch with "answered elsewhere" (RFC 3326 Reason), the cloud
    passes it on to the phone, whose ringing ends with that reason; the
    door's audio goes to mon1 alone."""
    pki, cloud = _setup(env)
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    for name in ("mon1", "alice"):
        env.wait_monitor(name, lambda st: st.get("call") == "early" and
                         st.get("frames_decoded", 0) > 0, "early media with decoded video", 20)
    r = env.mon_ctl("mon1", "answer")
    check(r.get("result") == "answered", "mon1 answer: %s" % r)
    env.wait_door_event("answered", 10)
    check_answered_with_audio(env, "mon1", "alice")
    deadline = time.time() + 5
    calls = cloud.ctl("relay").get("calls", [])
    while calls and time.time() < deadline:
        time.sleep(0.1)
        calls = cloud.ctl("relay").get("calls", [])
    check(not calls, "the cloud's relay still holds the call after the CANCEL: %s" % calls)
    r = env.mon_ctl("mon1", "hangup")
    check(r.get("result") == "hung up", "mon1 hangup: %s" % r)
    env.wait_door_event("ended", 10)


@case
def case_interdomain_push_wakes_phone(env):
    """Issue 15 scenario (a)'s sleeping phone, through two proxies: alice's
    phone registered at the cloud over TLS with push parameters (RFC 8599) and
    an instance id, then slept (SIGKILL: its connection is gone). The door's
    ring reaches the cloud up the house's flow; the cloud pushes alice's
    token (the webhook stand-in) for that call; the woken phone registers
    again (same instance, a new port) and gets a late branch of the same
    INVITE, decodes the door's video while ringing, and answers: mon1 ends
    "answered elsewhere" and audio flows both ways through both relays."""
    standin = _Standin(env)
    try:
        pki, cloud = _setup(env, cloud_more=standin.proxy_section(), phone=False)
        push = {"push-provider": "webpush", "push-prid": WAKE_TOKEN, "push-param": "door-app",
                "instance-id": WAKE_INSTANCE}
        asleep = _phone(env, pki, cloud, "alice-asleep", 1, push)
        log("SIGKILL to alice-asleep (pid %d): the app sleeps" % asleep.pid)
        asleep.stop(signal.SIGKILL)
        check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
        env.wait_monitor("mon1", lambda st: st.get("call") == "early" and
                         st.get("frames_decoded", 0) > 0, "early media with decoded video", 20)
        # Both proxies pass the door's Call-ID on (RFC 3261 §16.6).
        call_id = env.mon_ctl("mon1", "status").get("call_id")
        pushed = standin.wait_for("webhook", lambda e: e.get("body", {}).get("call_id") == call_id,
                                  "the push for the door's call")
        body = pushed["body"]
        check(body.get("kind") == "call" and body.get("provider") == "webpush" and
              body.get("prid") == WAKE_TOKEN, "the push is not a call for alice: %s" % body)
        _phone(env, pki, cloud, "alice", 2, push)
        st = env.wait_monitor("alice", lambda st: st.get("call") == "early" and
                              st.get("frames_decoded", 0) > 0, "the ringing call's video", 20)
        log("woken alice: early, %d frames, first frame %s ms after its INVITE"
            % (st["frames_decoded"], st["first_frame_ms"]))
        check(st.get("call_id") == call_id,
              "the woken phone rings with another call: %s vs %s" % (st.get("call_id"), call_id))
        r = env.mon_ctl("alice", "answer")
        check(r.get("result") == "answered", "alice answer: %s" % r)
        env.wait_door_event("answered", 10)
        check_answered_with_audio(env, "alice", "mon1")
        check(WAKE_TOKEN not in env.proxy_log_text() and WAKE_TOKEN not in cloud.log_text(),
              "the push token is in a proxy's log")
        r = env.mon_ctl("alice", "hangup")
        check(r.get("result") == "hung up", "alice hangup: %s" % r)
        env.wait_door_event("ended", 10)
    finally:
        standin.stop()
