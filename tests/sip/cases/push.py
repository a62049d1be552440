"""Push notifications, RFC 8599, at the registrar (issue 14): Contact URIs with
pn-provider / pn-prid / pn-param (and the legacy Linphone pn-type / app-id /
pn-tok) from hand-driven UDP endpoints (PyUA). The proxy has
[module::PushNotification] enabled with a webhook only (no FCM service account,
no APNs key), so webpush is served and fcm is not. Nothing is pushed here: the
webhook URL is never contacted at registration."""

import json
import os
import re
import signal
import socket
import struct
import threading
import time

from portier_py.push_standin import PushStandin
from portier_sip.base import ATTACKER, LOCAL, USERS, DOMAIN, TestFailure, check, log
from portier_sip.devices import check_answered_with_audio
from portier_sip.registry import case
from portier_sip.sipmsg import PyUA, digest_auth, find_challenge, sdp_body

# Distinctive, so the case can tell it never reaches a log or a listing.
TOKEN = "devtok-8599-Qx7Zr2Lk9"


def _push_config(env):
    """The case's proxy config, plus [module::PushNotification] with a webhook."""
    plain = env.write_config

    def write_config():
        path = plain()
        with open(path, "a") as f:
            f.write("\n[module::PushNotification]\nenabled = true\n"
                    "webhook-url = https://127.0.0.1:%d/webhook\n" % env.ports.base)
        return path
    env.write_config = write_config


class _Standin(PushStandin):
    """The push stand-in in the case's directory (scripts/portier_py/push_standin.py)."""

    failure = TestFailure

    def __init__(self, env):
        PushStandin.__init__(self, os.path.join(env.dir, "standin"), log)


class _Phone(PyUA):
    """user@home.example registering a Contact with the URI parameters given."""

    def __init__(self, env, user, ip=LOCAL):
        PyUA.__init__(self, user, ip, 0, env.ports.proxy)
        self.user, self.password = user, USERS[user]
        self.aor = "sip:%s@%s" % (user, DOMAIN)
        self.call_id = self.uniq("reg") + "@" + LOCAL
        self.tag = self.uniq("t")
        self.cseq = 0

    def _send_register(self, params, expires, auth, hparams=""):
        self.cseq += 1
        lines = ["REGISTER sip:%s SIP/2.0" % DOMAIN, "Via: %s" % self.via(),
                 "From: <%s>;tag=%s" % (self.aor, self.tag), "To: <%s>" % self.aor,
                 "Call-ID: %s" % self.call_id, "CSeq: %d REGISTER" % self.cseq,
                 "Contact: <sip:%s@%s:%d%s>%s" % (self.user, self.ip, self.port, params, hparams),
                 "Max-Forwards: 70", "Expires: %d" % expires]
        if auth:
            lines.append(auth)
        self.send("\n".join(lines))

    def register(self, params, expires=600, hparams=""):
        """REGISTER with `params` (";pn-provider=...") on the Contact URI and
        `hparams` after it, answering the 401 once; the final response."""
        self._send_register(params, expires, None, hparams)
        resp = self.response_to("REGISTER")
        if resp.status == 401:
            ch = find_challenge(resp.hdrs("WWW-Authenticate"))
            check(ch, "%s: no MD5 challenge in %s" % (self.name, resp.first))
            cred = digest_auth(self.user, self.password, ch, "REGISTER", "sip:" + DOMAIN)
            self._send_register(params, expires, "Authorization: " + cred, hparams)
            resp = self.response_to("REGISTER")
        return resp


def _binding(env, user):
    regs = env.bindings_for(user)
    check(len(regs) == 1, "%s: %d bindings, expected 1: %r" % (user, len(regs), regs))
    return regs[0]


@case
def case_push_register(env):
    """RFC 8599 at the registrar: a webpush contact gets 200 with Feature-Caps
    *;+sip.pns="webpush" (RFC 8599 sections 5.4, 5.6.1.1; RFC 6809), its binding lists
    push = webpush and a contact without the pn-* parameters, and it survives a
    restart; fcm without a service account gets 555 and no binding; a legacy
    pn-type contact registers (its type unserved: without push, no 555); a
    refresh without pn-* clears the push; the device token is in no log and no
    listing."""
    _push_config(env)
    env.start_proxy()
    alice, mon1, mon2 = _Phone(env, "alice"), _Phone(env, "mon1"), _Phone(env, "mon2")
    try:
        pn = ";pn-provider=webpush;pn-prid=%s;pn-param=door-app" % TOKEN
        resp = alice.register(pn)
        check(resp.status == 200, "alice with webpush: %s, expected 200" % resp.first)
        caps = resp.hdrs("Feature-Caps")
        check(caps == ['*;+sip.pns="webpush"'],
              "alice's 200: Feature-Caps %r, expected ['*;+sip.pns=\"webpush\"']" % caps)
        contacts = ",".join(resp.hdrs("Contact"))
        check("pn-" not in contacts and TOKEN not in contacts,
              "alice's 200 lists the push parameters in its Contact: %s" % contacts)
        b = _binding(env, "alice")
        check(b.get("push") == "webpush", "alice's binding: push %r, expected webpush" % b)
        check("pn-" not in b.get("contact", ""), "alice's stored contact: %r" % b)
        log("alice: 200, Feature-Caps %s, binding %s push=%s" % (caps[0], b["contact"], b["push"]))

        resp = mon1.register(";pn-provider=fcm;pn-prid=%s;pn-param=door-app" % TOKEN)
        check(resp.status == 555 and resp.first.endswith("Push Notification Service Not Supported"),
              "mon1 with fcm (no service account): %s, expected 555" % resp.first)
        check(env.bindings_for("mon1") == [], "mon1 has a binding after its 555")
        log("mon1 (fcm, not configured): %s" % resp.first)

        resp = mon2.register(";pn-type=apple;app-id=org.example.door.voip.prod;pn-tok=%s" % TOKEN)
        check(resp.status == 200, "mon2 with legacy pn-type=apple: %s, expected 200" % resp.first)
        check(resp.hdrs("Feature-Caps") == [], "mon2's 200 (legacy) has a Feature-Caps: %r"
              % resp.hdrs("Feature-Caps"))
        b = _binding(env, "mon2")
        check(b.get("push") == "", "mon2 (apns not configured): push %r, expected none" % b)
        log("mon2 (legacy apple, apns not configured): 200, registered without push")

        # The push parameters are in the state file: a restart still knows how
        # to wake alice.
        env.stop_proxy()
        env.start_proxy()
        b = _binding(env, "alice")
        check(b.get("push") == "webpush", "after a restart alice's binding: %r" % b)
        log("after a restart: alice push=%s" % b["push"])

        resp = alice.register("")
        check(resp.status == 200 and resp.hdrs("Feature-Caps") == [],
              "alice's refresh without pn-*: %s, Feature-Caps %r"
              % (resp.first, resp.hdrs("Feature-Caps")))
        b = _binding(env, "alice")
        check(b.get("push") == "", "alice's refresh without pn-* kept push: %r" % b)

        listing = str(env.registrations())
        check(TOKEN not in listing, "portierctl registrations shows the device token")
        text = env.proxy_log_text()
        check(TOKEN not in text, "the proxy log has the device token: %s"
              % [l for l in text.splitlines() if TOKEN in l][:3])
    finally:
        for p in (alice, mon1, mon2):
            p.close()


def _with_standin(env, standin, apns=False):
    plain = env.write_config

    def write_config():
        path = plain()
        with open(path, "a") as f:
            f.write(standin.proxy_section(apns))
        return path
    env.write_config = write_config


def _ack(ua, ruri, resp):
    """The ACK of a non-2xx final response to ua's INVITE (RFC 3261 section
    17.1.1.3: Via, From, To with its tag, Call-ID and CSeq number of the response)."""
    ua.send("ACK %s SIP/2.0\nVia: %s\nFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %s ACK\n"
            "Max-Forwards: 70" % (ruri, resp.hdr("Via"), resp.hdr("From"), resp.hdr("To"),
                                  resp.hdr("Call-ID"), resp.cseq()[0]))


def _push_proxy(env, standin, fork_timeout=None, relay=False, apns=False):
    """The proxy pushing through `standin`, its relay off unless asked (these
    cases are about the signalling)."""
    _with_standin(env, standin, apns=apns)
    env.relay_enabled = relay
    if fork_timeout is not None:
        env.fork_timeout = fork_timeout
    env.start_proxy()


def _sleeping_phone(env, user, pn, hparams=""):
    """`user` registers with the push parameters `pn` (and Contact header
    parameters `hparams`), then closes its socket: the app sleeps."""
    phone = _Phone(env, user)
    resp = phone.register(pn, hparams=hparams)
    check(resp.status == 200, "%s could not register: %s" % (user, resp.first))
    phone.close()


def _invite(door, ruri, sdp=""):
    """The door's INVITE to ruri (with an SDP offer when given), answering the
    407 once; the Call-ID and the first 110 or final response (within 10 s)."""
    call_id = door.uniq("call") + "@" + LOCAL
    tag = door.uniq("t")

    def send(auth):
        door.cseq += 1
        lines = ["INVITE %s SIP/2.0" % ruri, "Via: %s" % door.via(),
                 "From: \"Front door\" <%s>;tag=%s" % (door.aor, tag), "To: <%s>" % ruri,
                 "Call-ID: %s" % call_id, "CSeq: %d INVITE" % door.cseq,
                 "Contact: <sip:door@%s:%d>" % (door.ip, door.port), "Max-Forwards: 70"]
        if auth:
            lines.append(auth)
        if sdp:
            lines.append("Content-Type: application/sdp")
        door.send("\n".join(lines), sdp.encode())
    send(None)
    resp = door.response_to("INVITE")
    check(resp.status == 407, "door's INVITE: %s, expected 407" % resp.first)
    _ack(door, ruri, resp)
    ch = find_challenge(resp.hdrs("Proxy-Authenticate"))
    cred = digest_auth("door", USERS["door"], ch, "INVITE", ruri)
    send("Proxy-Authorization: " + cred)
    got = door.expect(lambda m: m.status in (110,) or (m.status or 0) >= 200,
                      "110 or a final response to the INVITE", timeout=10)
    return call_id, got


@case
def case_push_fork_pushes(env):
    """A forked INVITE to bindings with push parameters pushes each device at
    once through the stand-in: alice (webhook: POST /webhook, kind call, the
    INVITE's Call-ID, her token) and mon1 (FCM HTTP v1: OAuth2 token, then
    messages:send with her token, priority HIGH, a ttl); the door gets
    "110 Push sent" (as Flexisip). The phones' sockets are gone (asleep).
    An expired token (the stand-in answers 410) drops alice's push parameters
    (portierctl registrations), her binding stays. Nobody woke for the first
    call: the door hears 480 at call-fork-timeout. No token in the proxy log."""
    standin = _Standin(env)
    try:
        _push_proxy(env, standin, fork_timeout=4)
        alice, mon1 = _Phone(env, "alice"), _Phone(env, "mon1")
        web_token, fcm_token = "webtok-" + TOKEN, "fcmtok:" + TOKEN
        resp = alice.register(";pn-provider=webpush;pn-prid=%s;pn-param=door-app" % web_token)
        check(resp.status == 200, "alice: %s" % resp.first)
        resp = mon1.register(";pn-provider=fcm;pn-prid=%s;pn-param=%s"
                             % (fcm_token, standin.info["project"]))
        check(resp.status == 200 and resp.hdrs("Feature-Caps") == ['*;+sip.pns="fcm"'],
              "mon1 (fcm): %s, Feature-Caps %r" % (resp.first, resp.hdrs("Feature-Caps")))
        alice.close()  # asleep: nothing listens on their contacts any more
        mon1.close()

        door = _Phone(env, "door")
        try:
            call_id, got = _invite(door, "sip:alice@" + DOMAIN)
            check(got.status == 110 and got.first.endswith("Push sent"),
                  "door's INVITE to alice: %s, expected 110 Push sent" % got.first)
            # Her branch failed at once (ICMP: nothing listens; nta makes it
            # a 503, RFC 3261 section 16.9), but the fork waits for her to
            # wake and register: the door's final response comes at
            # call-fork-timeout, 480 Temporarily Unavailable (section
            # 21.4.18: the user is known, no valid forwarding location),
            # not the 500 that section 16.7 step 6 makes of a 503.
            final = door.expect(lambda m: (m.status or 0) >= 200, "final response to the INVITE",
                                timeout=env.fork_timeout + 10)
            check(final.status == 480, "door's INVITE to alice: %s, expected 480" % final.first)
            check(re.search(r'"event":"fork_timeout".*"call_id":"%s"' % re.escape(call_id),
                            env.proxy_log_text()),
                  "no fork_timeout event for the call: it ended some other way")
            _ack(door, "sip:alice@" + DOMAIN, final)
            log("alice's call: 110 Push sent, then %s at the fork timeout" % final.first)
            # Nobody answered: alice's phone is told, so it stops ringing.
            standin.wait_for("webhook", lambda e: e.get("body", {}).get("call_id") == call_id and
                             e["body"].get("kind") == "missed", "the missed-call push")
            e = standin.wait_for("webhook", lambda e: e.get("body", {}).get("call_id") == call_id,
                                 "webhook push for the call")
            body = e["body"]
            check(body.get("kind") == "call" and body.get("prid") == web_token and
                  body.get("provider") == "webpush" and body.get("param") == "door-app" and
                  body.get("caller_display") == "Front door" and "error" not in e,
                  "alice's push: %r" % e)
            log("alice pushed: webhook kind=%s call_id=%s ttl=%s" % (body["kind"], call_id,
                                                                    body.get("ttl")))

            call_id2, got = _invite(door, "sip:mon1@" + DOMAIN)
            check(got.status == 110, "door's INVITE to mon1: %s, expected 110" % got.first)
            e = standin.wait_for("fcm", lambda e: e.get("device") == fcm_token,
                                 "FCM push for mon1")
            check("error" not in e and e.get("status") == 200 and
                  (e.get("android") or {}).get("priority") == "HIGH" and
                  (e.get("data") or {}).get("call-id") == call_id2,
                  "mon1's FCM push: %r" % e)
            check(standin.events("token"), "no OAuth2 token request at the stand-in")
            log("mon1 pushed: FCM project %s, android %s" % (e.get("project"), e.get("android")))

            # The token expired: the provider says 410, the proxy stops pushing it.
            standin.script({"tokens": {web_token: [{"status": 410}]}})
            call_id3, got = _invite(door, "sip:alice@" + DOMAIN)
            standin.wait_for("webhook", lambda e: e.get("body", {}).get("call_id") == call_id3,
                             "webhook push for the third call")
            deadline = time.time() + 5
            while time.time() < deadline and _binding(env, "alice").get("push"):
                time.sleep(0.1)
            b = _binding(env, "alice")
            check(b.get("push") == "", "after the 410 alice's binding still has push: %r" % b)
            log("after the 410: alice's binding %s has no push any more" % b["contact"])
        finally:
            door.close()
        text = env.proxy_log_text()
        for t in (web_token, fcm_token, TOKEN):
            check(t not in text, "the proxy log has a device token: %s"
                  % [l for l in text.splitlines() if t in l][:3])
    finally:
        standin.stop()


@case
def case_push_late_branch(env):
    """Fork-late: alice's phone sleeps (registered with push and a
    +sip.instance, its socket gone); the door rings her: 110 Push sent, the
    stand-in gets the webhook push; the test wakes the phone (a new socket
    registering with the same +sip.instance): the ringing call sends it the
    INVITE at once (within the case's wait, long before call-fork-timeout),
    it rings and answers, and the door gets the 200. The media relay is on:
    the late branch's INVITE offers the relay's own ports for it, not the
    door's."""
    standin = _Standin(env)
    try:
        _push_proxy(env, standin, fork_timeout=60, relay=True)
        instance = ';+sip.instance="<urn:uuid:6f1c2a4e-0b7d-4c55-9a55-8599a11ce001>"'
        pn = ";pn-provider=webpush;pn-prid=late-%s;pn-param=door-app" % TOKEN
        _sleeping_phone(env, "alice", pn, hparams=instance)

        door = _Phone(env, "door")
        woken = None
        try:
            door_video = 47000
            call_id, got = _invite(door, "sip:alice@" + DOMAIN,
                                   sdp_body(LOCAL, ["video %d RTP/AVP 96" % door_video]))
            check(got.status == 110, "door's INVITE: %s, expected 110 Push sent" % got.first)
            standin.wait_for("webhook", lambda e: e.get("body", {}).get("call_id") == call_id,
                             "the push for the call")
            woken = _Phone(env, "alice")
            resp = woken.register(pn, hparams=instance)
            check(resp.status == 200, "alice woken: %s" % resp.first)
            check(len(env.bindings_for("alice")) == 1,
                  "alice's new address did not replace her old binding (same +sip.instance)")
            invite = woken.expect(lambda m: m.method == "INVITE", "the INVITE of the ringing call",
                                  timeout=5)
            check(invite.hdr("Call-ID") == call_id, "the woken phone got another call: %s"
                  % invite.hdr("Call-ID"))
            check(TOKEN not in invite.first, "the INVITE's Request-URI has the token: %s"
                  % invite.first)
            m = re.search(r"^m=video (\d+) ", invite.body.decode("latin-1", "replace"), re.M)
            check(m, "the late INVITE has no video offer: %r" % invite.body[:300])
            port = int(m.group(1))
            check(port != door_video and
                  env.ports.relay_first <= port < env.ports.relay_first + 100,
                  "the late branch's offer has port %d, not one of the relay's (%d-%d)"
                  % (port, env.ports.relay_first, env.ports.relay_first + 99))
            log("woken alice got the INVITE: %s, video offered on relay port %d"
                % (invite.first, port))
            woken.reply(invite, 180, "Ringing", to_tag="alice-woken")
            ringing = door.expect(lambda m: m.status == 180, "180 from the woken phone", timeout=5)
            woken.reply(invite, 200, "OK", to_tag="alice-woken")
            ok = door.expect(lambda m: m.status == 200 and m.cseq()[1] == "INVITE",
                             "the woken phone's 200", timeout=5)
            log("door: %s then %s" % (ringing.first, ok.first))
            check(re.search(r"registered while ringing: branch 1 to", env.proxy_log_text()),
                  "no late-branch line in the proxy log")
        finally:
            door.close()
            if woken:
                woken.close()
    finally:
        standin.stop()


@case
def case_push_answered_elsewhere(env):
    """Three phones registered with push parameters (awake: their sockets
    listen); the door rings sip:home: each is pushed (kind call) and gets the
    INVITE; mon1 answers; alice and mon2 get the CANCEL and the stand-in the
    answered-elsewhere push for each of them, none for mon1."""
    standin = _Standin(env)
    try:
        _push_proxy(env, standin)
        phones = {u: _Phone(env, u) for u in ("alice", "mon1", "mon2")}
        door = _Phone(env, "door")
        try:
            tokens = {}
            for u, p in phones.items():
                tokens[u] = "%s-%s" % (u, TOKEN)
                resp = p.register(";pn-provider=webpush;pn-prid=%s;pn-param=door-app" % tokens[u],
                                  hparams=';+sip.instance="<urn:uuid:00000000-0000-4000-8000-%012d>"'
                                  % len(tokens))
                check(resp.status == 200, "%s: %s" % (u, resp.first))
            call_id, got = _invite(door, "sip:home@" + DOMAIN)
            check(got.status == 110, "door's INVITE to home: %s, expected 110" % got.first)
            invites = {}
            for u, p in phones.items():
                invites[u] = p.expect(lambda m: m.method == "INVITE", "the INVITE", timeout=5)
                p.reply(invites[u], 180, "Ringing", to_tag=u + "-tag")
            phones["mon1"].reply(invites["mon1"], 200, "OK", to_tag="mon1-tag")
            door.expect(lambda m: m.status == 200 and m.cseq()[1] == "INVITE", "mon1's 200",
                        timeout=5)
            for u in ("alice", "mon2"):
                cancel = phones[u].expect(lambda m: m.method == "CANCEL", "the CANCEL", timeout=5)
                phones[u].reply(cancel, 200, "OK")
                phones[u].reply(invites[u], 487, "Request Terminated", to_tag=u + "-tag")
            for u in ("alice", "mon1", "mon2"):
                standin.wait_for("webhook", lambda e, u=u: e.get("body", {}).get("prid") == tokens[u]
                                 and e["body"].get("kind") == "call", "%s's call push" % u)
            for u in ("alice", "mon2"):
                e = standin.wait_for(
                    "webhook", lambda e, u=u: e.get("body", {}).get("prid") == tokens[u] and
                    e["body"].get("kind") == "answered-elsewhere", "%s's answered-elsewhere push" % u)
                check(e["body"].get("call_id") == call_id, "%s's follow-up names another call: %r"
                      % (u, e))
            time.sleep(0.5)  # a wrong push to mon1 would be logged by now
            wrong = [e for e in standin.events("webhook")
                     if e.get("body", {}).get("prid") == tokens["mon1"] and
                     e["body"].get("kind") != "call"]
            check(not wrong, "mon1 answered and was pushed again: %r" % wrong)
            log("answered by mon1: answered-elsewhere pushes to alice and mon2 only")
        finally:
            door.close()
            for p in phones.values():
                p.close()
    finally:
        standin.stop()


@case
def case_push_registers_after_cancel(env):
    """A pushed phone that registers after the call ended (the door gave up:
    CANCEL) but within call-fork-timeout gets the INVITE of that call and, on
    its 180, the CANCEL: iOS shows every VoIP push as a call, which only the
    app can end. Its phone also got the missed-call push."""
    standin = _Standin(env)
    try:
        _push_proxy(env, standin, fork_timeout=60)
        instance = ';+sip.instance="<urn:uuid:6f1c2a4e-0b7d-4c55-9a55-8599a11ce002>"'
        pn = ";pn-provider=webpush;pn-prid=ghost-%s;pn-param=door-app" % TOKEN
        _sleeping_phone(env, "alice", pn, hparams=instance)
        door = _Phone(env, "door")
        woken = None
        try:
            ruri = "sip:alice@" + DOMAIN
            call_id, got = _invite(door, ruri)
            check(got.status == 110, "door's INVITE: %s, expected 110 Push sent" % got.first)
            door.send("CANCEL %s SIP/2.0\nVia: %s\nFrom: %s\nTo: <%s>\nCall-ID: %s\n"
                      "CSeq: %s CANCEL\nMax-Forwards: 70"
                      % (ruri, got.hdr("Via"), got.hdr("From"), ruri, call_id, got.cseq()[0]))
            final = door.expect(lambda m: m.status == 487, "487 to the cancelled INVITE", timeout=5)
            _ack(door, ruri, final)
            standin.wait_for("webhook", lambda e: e.get("body", {}).get("call_id") == call_id and
                             e["body"].get("kind") == "missed", "the missed-call push")
            woken = _Phone(env, "alice")
            check(woken.register(pn, hparams=instance).status == 200, "alice woken: no 200")
            invite = woken.expect(lambda m: m.method == "INVITE", "the ended call's INVITE",
                                  timeout=5)
            check(invite.hdr("Call-ID") == call_id, "another call: %s" % invite.hdr("Call-ID"))
            woken.reply(invite, 180, "Ringing", to_tag="ghost")
            cancel = woken.expect(lambda m: m.method == "CANCEL", "the CANCEL", timeout=5)
            woken.reply(cancel, 200, "OK")
            woken.reply(invite, 487, "Request Terminated", to_tag="ghost")
            woken.expect(lambda m: m.method == "ACK", "the ACK of the 487", timeout=5)
            log("alice registered after the cancel: INVITE, 180, CANCEL, 487")
            late = door.quiet(lambda m: m.status is not None and m.cseq()[1] == "INVITE" and
                              m.status not in (100, 110, 487), 0.5)
            check(not late, "the door heard of the ghost branch: %s" % [m.first for m in late])
        finally:
            door.close()
            if woken:
                woken.close()
    finally:
        standin.stop()


def _invites(ua, seconds):
    """The INVITE transactions (by top Via branch) that reached ua within
    `seconds`: a retransmission is not a second INVITE."""
    got = ua.quiet(lambda m: m.method == "INVITE", seconds)
    return {re.search(r"branch=([^;,\s]+)", m.hdr("Via")).group(1): m for m in got}


@case
def case_push_late_refresh(env):
    """Fork-late, a refresh is not a new device: the woken phone (same
    +sip.instance, new socket) gets the ringing call's INVITE and rings; it
    refreshes its REGISTER twice from the same socket: no CANCEL, no second
    INVITE. Then it registers from a new port (the app came back on another
    socket): the old branch is CANCELled, the new socket gets the INVITE,
    answers, and the door gets the 200."""
    standin = _Standin(env)
    try:
        _push_proxy(env, standin, fork_timeout=60)
        instance = ';+sip.instance="<urn:uuid:6f1c2a4e-0b7d-4c55-9a55-8599a11ce003>"'
        pn = ";pn-provider=webpush;pn-prid=refresh-%s;pn-param=door-app" % TOKEN
        _sleeping_phone(env, "alice", pn, hparams=instance)
        door = _Phone(env, "door")
        woken = moved = None
        try:
            call_id, got = _invite(door, "sip:alice@" + DOMAIN)
            check(got.status == 110, "door's INVITE: %s, expected 110 Push sent" % got.first)
            standin.wait_for("webhook", lambda e: e.get("body", {}).get("call_id") == call_id,
                             "the push for the call")
            woken = _Phone(env, "alice")
            check(woken.register(pn, hparams=instance).status == 200, "alice woken: no 200")
            invite = woken.expect(lambda m: m.method == "INVITE", "the INVITE of the ringing call",
                                  timeout=5)
            check(invite.hdr("Call-ID") == call_id, "another call: %s" % invite.hdr("Call-ID"))
            woken.reply(invite, 180, "Ringing", to_tag="woken")
            door.expect(lambda m: m.status == 180, "180 from the woken phone", timeout=5)
            for i in (1, 2):
                resp = woken.register(pn, hparams=instance)
                check(resp.status == 200, "alice's refresh %d: %s" % (i, resp.first))
            first = re.search(r"branch=([^;,\s]+)", invite.hdr("Via")).group(1)
            more = [b for b in _invites(woken, 1.0) if b != first]
            cancels = woken.quiet(lambda m: m.method == "CANCEL", 0.1)
            check(not more and not cancels,
                  "the refreshes changed the branch: %d more INVITE(s), %d CANCEL(s)"
                  % (len(more), len(cancels)))
            log("two refreshes while ringing: one INVITE, no CANCEL")

            moved = _Phone(env, "alice")
            check(moved.register(pn, hparams=instance).status == 200, "alice moved: no 200")
            cancel = woken.expect(lambda m: m.method == "CANCEL", "the stale branch's CANCEL",
                                  timeout=5)
            woken.reply(cancel, 200, "OK")
            woken.reply(invite, 487, "Request Terminated", to_tag="woken")
            invite2 = moved.expect(lambda m: m.method == "INVITE", "the INVITE on the new socket",
                                   timeout=5)
            check(invite2.hdr("Call-ID") == call_id, "another call: %s" % invite2.hdr("Call-ID"))
            moved.reply(invite2, 180, "Ringing", to_tag="moved")
            moved.reply(invite2, 200, "OK", to_tag="moved")
            ok = door.expect(lambda m: m.status == 200 and m.cseq()[1] == "INVITE",
                             "the 200 from the new socket", timeout=5)
            check("tag=moved" in ok.hdr("To"), "the door's 200 is not the new socket's: %s"
                  % ok.hdr("To"))
            lines = re.findall(r"call-id=%s .*registered while ringing" % re.escape(call_id),
                               env.proxy_log_text())
            check(len(lines) == 2, "%d late branches logged, expected 2 (woken, moved): %s"
                  % (len(lines), lines))
            log("new port: stale branch CANCELled, the new socket answered, door got %s" % ok.first)
        finally:
            door.close()
            for p in (woken, moved):
                if p:
                    p.close()
    finally:
        standin.stop()


@case
def case_push_late_cap(env):
    """[module::Router] fork-late-max-branches (default 8, per AOR and call):
    while the door rings sip:home, an authenticated device (alice's
    credentials, its own +sip.instance) re-registers 30 times from 127.0.0.2,
    each time from a new port. Every REGISTER gets its 200, but at most 8
    INVITEs reach its sockets; one log line says the cap was reached; the
    proxy stays up. The loop spent alice's budget only: mon1's pushed phone,
    woken after it, still joins the call, and alice's phone, registered
    before the flood, still rings and answers."""
    standin = _Standin(env)
    try:
        _push_proxy(env, standin, fork_timeout=60)
        cap = 8
        pn = ";pn-provider=webpush;pn-prid=cap-%s;pn-param=door-app" % TOKEN
        phone = _Phone(env, "alice")
        check(phone.register(pn, hparams=';+sip.instance="<urn:uuid:00000000-0000-4000-8000-0000000ca900>"')
              .status == 200, "alice's phone could not register")
        mon1_pn = ";pn-provider=webpush;pn-prid=cap-mon1-%s;pn-param=door-app" % TOKEN
        mon1_instance = ';+sip.instance="<urn:uuid:00000000-0000-4000-8000-0000000ca901>"'
        _sleeping_phone(env, "mon1", mon1_pn, hparams=mon1_instance)
        door = _Phone(env, "door")
        flood = []
        mon1 = None
        try:
            call_id, got = _invite(door, "sip:home@" + DOMAIN)
            check(got.status == 110, "door's INVITE: %s, expected 110 Push sent" % got.first)
            invite = phone.expect(lambda m: m.method == "INVITE", "the call's INVITE", timeout=5)
            phone.reply(invite, 180, "Ringing", to_tag="phone")
            door.expect(lambda m: m.status == 180, "180 from alice's phone", timeout=5)
            loop = ';+sip.instance="<urn:uuid:00000000-0000-4000-8000-00000000100f>"'
            deadline = time.time() + 60
            for i in range(30):
                check(time.time() < deadline, "the REGISTER loop took over 60 s (at %d)" % i)
                p = _Phone(env, "alice", ip="127.0.0.2")
                flood.append(p)
                resp = p.register("", hparams=loop)
                check(resp.status == 200, "REGISTER %d from 127.0.0.2: %s" % (i, resp.first))
            check(env.proxy_alive(), "the proxy died during the REGISTER loop")
            # Over the cap the binding is still stored: the device's last address.
            last = "127.0.0.2:%d" % flood[-1].port
            check(any(last in b.get("contact", "") for b in env.bindings_for("alice")),
                  "the last REGISTER's binding (%s) is not stored: %r"
                  % (last, env.bindings_for("alice")))
            time.sleep(1.0)
            invites = 0
            for p in flood:
                invites += len([m for m in _invites(p, 0.05).values()
                                if m.hdr("Call-ID") == call_id])
            check(invites == cap, "%d INVITEs reached the looping device's 30 sockets, "
                  "expected the cap, %d" % (invites, cap))
            lines = [l for l in env.proxy_log_text().splitlines()
                     if "fork-late-max-branches" in l and call_id in l]
            check(len(lines) == 1, "%d cap lines for the call in the proxy log, expected 1: %s"
                  % (len(lines), lines[:3]))
            log("30 REGISTERs from new ports: %d INVITEs, one log line: %s" % (invites, lines[0]))
            mon1 = _Phone(env, "mon1")
            check(mon1.register(mon1_pn, hparams=mon1_instance).status == 200,
                  "mon1 woken: no 200")
            late = mon1.expect(lambda m: m.method == "INVITE", "the call's INVITE for mon1, "
                               "woken after alice's loop", timeout=5)
            check(late.hdr("Call-ID") == call_id, "another call: %s" % late.hdr("Call-ID"))
            mon1.reply(late, 180, "Ringing", to_tag="mon1")
            log("mon1 woken after the loop: its INVITE came (the cap is alice's, not the call's)")
            phone.reply(invite, 200, "OK", to_tag="phone")
            ok = door.expect(lambda m: m.status == 200 and m.cseq()[1] == "INVITE",
                             "the 200 from alice's phone", timeout=5)
            check("tag=phone" in ok.hdr("To"), "the door's 200 is not alice's phone's: %s"
                  % ok.hdr("To"))
            check(env.proxy_alive(), "the proxy died")
            cancel = mon1.expect(lambda m: m.method == "CANCEL", "mon1's CANCEL (answered "
                                 "elsewhere)", timeout=5)
            mon1.reply(cancel, 200, "OK")
            mon1.reply(late, 487, "Request Terminated", to_tag="mon1")
        finally:
            door.close()
            phone.close()
            for p in flood + [mon1]:
                if p:
                    p.close()
    finally:
        standin.stop()


@case
def case_push_busy_beats_sleeper(env):
    """The door rings sip:home: alice's phone sleeps (pushed; its branch fails
    here at once), mon1 is awake and answers 486 Busy Here. The fork waits for
    alice until call-fork-timeout, then the door hears 486: a device's own
    answer beats a phone that did not wake (RFC 3261 section 16.7 step 6),
    which alone would have been 480."""
    standin = _Standin(env)
    try:
        _push_proxy(env, standin, fork_timeout=4)
        pn = ";pn-provider=webpush;pn-prid=busy-%s;pn-param=door-app" % TOKEN
        _sleeping_phone(env, "alice", pn)
        mon1 = _Phone(env, "mon1")
        door = _Phone(env, "door")
        try:
            check(mon1.register("").status == 200, "mon1 could not register")
            ruri = "sip:%s@%s" % ("home", DOMAIN)
            call_id, got = _invite(door, ruri)
            check(got.status == 110, "door's INVITE to home: %s, expected 110" % got.first)
            invite = mon1.expect(lambda m: m.method == "INVITE", "the INVITE", timeout=5)
            mon1.reply(invite, 486, "Busy Here", to_tag="mon1")
            final = door.expect(lambda m: (m.status or 0) >= 200, "final response to the INVITE",
                                timeout=env.fork_timeout + 10)
            check(final.status == 486, "door's INVITE to home: %s, expected 486" % final.first)
            check(re.search(r'"event":"fork_timeout".*"call_id":"%s"' % re.escape(call_id),
                            env.proxy_log_text()),
                  "no fork_timeout event: the 486 did not wait for alice to wake")
            _ack(door, ruri, final)
            log("alice asleep, mon1 busy: door got %s at the fork timeout" % final.first)
        finally:
            door.close()
            mon1.close()
    finally:
        standin.stop()


# ---- portier-monitor as the push-woken phone -------------------------------

WAKE_INSTANCE = "urn:uuid:0f5e2d7c-4b1a-4e8e-9c3d-8599b0a7e001"
WAKE_TOKEN = "wake-" + TOKEN


class _TcpToProxy:
    """What a sniffer on lo sees of the SIP over TCP to and from the proxy's
    port: each TCP segment's payload (AF_PACKET, root, as LoopbackCapture
    does for UDP). The REGISTERs and responses here fit in one segment each
    on lo (MTU 65536)."""

    def __init__(self, port):
        self.port, self.segments, self.running = port, [], True
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)

        def run():
            while self.running and len(self.segments) < 20000:
                try:
                    frame, addr = self.sock.recvfrom(70000)
                except socket.timeout:
                    continue
                except OSError:
                    return
                ip = frame[14:]
                if addr[2] == socket.PACKET_OUTGOING or len(ip) < 40 or ip[0] >> 4 != 4 \
                        or ip[9] != 6:
                    continue
                ihl = (ip[0] & 0x0f) * 4
                sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
                payload = ip[ihl + (ip[ihl + 12] >> 4) * 4:struct.unpack("!H", ip[2:4])[0]]
                if port in (sport, dport) and payload:
                    self.segments.append((sport, dport, bytes(payload)))
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def messages(self, to_proxy=True):
        """The SIP start lines and headers sent to (or from) the proxy."""
        return [p.decode("latin-1") for s, d, p in self.segments
                if (d == self.port) == to_proxy]

    def stop(self):
        if self.running:
            self.running = False
            self.thread.join(5)
            self.sock.close()


def _contact_of(msg):
    m = re.search(r"^(?:Contact|m):\s*(.*?)\r?$", msg, re.M | re.I)
    return m.group(1) if m else ""


def wake_monitor_setup(env, standin, *, extra_wait=2.0):
    """The scene of case_push_wakes_monitor up to the woken monitor's first
    decoded frame, for the case and for bench/intercom/late_branch_frame.py.

    The proxy pushes through `standin` (webhook), its relay in its default
    mode. portier-door rings sip:home@ with VP8 and a keyframe every 60 s;
    mon2 (in-house, UDP) rings and decodes the door's video, so the door's
    only keyframe so far is `extra_wait` seconds old when mon1 wakes. mon1
    ("mon1-asleep") registered over TCP with the push parameters and an
    instance id, then was killed (SIGKILL: the app sleeps, its socket is
    gone). The door rings; the stand-in gets the push; a new portier-monitor
    ("mon1") with the same instance id and push parameters registers from a
    new port (the woken app) with its own keyframe requests off: it decodes
    before the door's next keyframe only if the relay replays its GOP or asks
    the door for a keyframe. Returns (call_id, the webhook push, mon1's
    status once it decoded while ringing)."""
    _with_standin(env, standin)
    env.fork_timeout = 60
    env.start_proxy()
    push = ("push-provider = webpush\npush-prid = %s\npush-param = door-app\n"
            "instance-id = %s\n" % (WAKE_TOKEN, WAKE_INSTANCE))
    asleep = env.start_monitor("mon1-asleep", "mon1", 0, 0, account_extra=push, transport="tcp")
    regs = env.bindings_for("mon1")
    check(len(regs) == 1 and regs[0].get("push") == "webpush",
          "mon1's binding has no push parameters: %r" % regs)
    # A door that keeps its one keyframe for the whole case (the longest
    # interval it takes); mon2 only rings.
    env.start_door(video_codec="vp8", auto_answer="sip:mon1@%s" % DOMAIN,
                   extra="keyframe-interval = 60\n[access]\nallow = sip:mon1@%s\n" % DOMAIN)
    env.start_monitor("mon2", "mon2", 2, 1)
    log("SIGKILL to mon1-asleep (pid %d): the app sleeps, its TCP connection is gone"
        % asleep.pid)
    asleep.stop(signal.SIGKILL)
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_monitor("mon2", lambda st: st.get("call") == "early" and
                     st.get("frames_decoded", 0) > 0, "early media with decoded video", 15)
    call_id = env.mon_ctl("mon2", "status").get("call_id")
    pushed = standin.wait_for("webhook", lambda e: e.get("body", {}).get("call_id") == call_id,
                              "the push for the door's call")
    time.sleep(extra_wait)  # the door's keyframe is well in the past now
    env.start_monitor("mon1", "mon1", 1, 2, account_extra=push, transport="tcp",
                      extra="[media]\nkeyframe-request = none\n")
    st = env.wait_monitor("mon1", lambda st: st.get("call") in ("early", "answered", "ended") and
                          (st.get("frames_decoded", 0) > 0 or st.get("call") != "early"),
                          "the ringing call's video", 15)
    check(st.get("call") == "early" and st.get("call_id") == call_id,
          "the woken mon1 is not ringing with the door's call: %s" % json.dumps(st))
    return call_id, pushed, st


@case
def case_push_wakes_monitor(env):
    """portier-monitor as the push-woken phone (issue 14): mon1 registers
    over TCP with [account] push-provider / push-prid / push-param (RFC 8599
    pn-* URI parameters of the REGISTER's Contact, seen on the wire) and
    instance-id (+sip.instance, RFC 5626 §4.1), then sleeps (SIGKILL). The
    door rings the home; the stand-in gets the webhook push (mon1's token,
    the call's Call-ID); the woken mon1 (same instance, new port) gets the
    INVITE at once and decodes the door's video while ringing although the
    door makes a keyframe only every 60 s and mon1 asks for none: the relay's
    GOP replay / keyframe request for the late branch. mon1 answers: the door
    gets 200, audio flows both ways, mon2 ends "answered elsewhere"; mon1
    hangs up, then calls the door to watch its camera; the token is in no
    log and in no message but the REGISTERs (not in the Contact of a call,
    incoming or outgoing); every daemon exits 0."""
    standin = _Standin(env)
    cap = _TcpToProxy(env.ports.proxy)
    try:
        call_id, pushed, st = wake_monitor_setup(env, standin)
        body = pushed["body"]
        check(body.get("prid") == WAKE_TOKEN and body.get("param") == "door-app"
              and body.get("kind") == "call" and body.get("provider") == "webpush",
              "the push is not mon1's: %s" % json.dumps(body))
        log("woken mon1: early, %d frames, first RTP %s ms, first frame %s ms after the INVITE"
            % (st["frames_decoded"], st["first_rtp_ms"], st["first_frame_ms"]))
        check(not env.door_events("answered"), "the door was answered before mon1 decoded")
        check(st.get("keyframe_requests") == 0, "mon1 asked for a keyframe itself: %s" % st)
        check(st.get("instance_id") == WAKE_INSTANCE and st.get("push_provider") == "webpush",
              "mon1's status: %s" % json.dumps(st))
        check(len(env.bindings_for("mon1")) == 1,
              "the woken mon1 did not replace its stale binding (same +sip.instance): %r"
              % env.bindings_for("mon1"))
        check(re.search(r"registered while ringing: branch \d+ to", env.proxy_log_text()),
              "no late-branch line in the proxy log")

        r = env.mon_ctl("mon1", "answer")
        check(r.get("result") == "answered", "mon1 answer: %s" % r)
        env.wait_door_event("answered", 10)
        check_answered_with_audio(env, "mon1", "mon2")
        r = env.mon_ctl("mon1", "hangup")
        check(r.get("result") == "hung up", "mon1 hangup: %s" % r)
        env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "the end of the call")
        env.wait_door_event("ended", 5)
        env.wait_relay_free()
        # The woken phone calls the door to watch its camera (our INVITE's
        # Contact, the door's target, must not carry the token either).
        r = env.mon_ctl("mon1", "call", "front")
        check(r.get("result", "").startswith("calling"), "mon1 call front: %s" % r)
        env.wait_monitor("mon1", lambda st: st.get("call") == "answered" and
                         st.get("direction") == "outgoing" and st.get("frames_decoded", 0) > 0,
                         "the door's camera", 15)
        r = env.mon_ctl("mon1", "hangup")
        check(r.get("result") == "hung up", "mon1 hangup of its call: %s" % r)
        env.wait_relay_free()
        cap.stop()

        # On the wire: the REGISTERs carry the push parameters in the Contact
        # URI and the instance as a header parameter; nothing else carries the
        # token (the dialog's Contact, which the door keeps as its target, has none).
        regs = [m for m in cap.messages() if m.startswith("REGISTER ")]
        check(regs, "no REGISTER over TCP captured")
        contact = _contact_of(regs[-1])
        log("mon1's REGISTER Contact: %s" % contact.replace(WAKE_TOKEN, "<token>"))
        uri = contact[contact.find("<") + 1:contact.find(">")]
        check("pn-provider=webpush" in uri and "pn-prid=" + WAKE_TOKEN in uri and
              "pn-param=door-app" in uri and "transport=tcp" in uri,
              "the push parameters are not in the Contact URI: %s" % contact)
        check('+sip.instance="<%s>"' % WAKE_INSTANCE in contact[contact.find(">"):],
              "no +sip.instance header parameter in the Contact: %s" % contact)
        # The registrar keeps the token out of the 200's Contact (RFC 3261
        # §19.1.4 still matches ours) and out of every Request-URI.
        others = [m.split("\r\n", 1)[0] for m in cap.messages() + cap.messages(False)
                  if WAKE_TOKEN in m and not m.startswith("REGISTER ")]
        check(not others, "the token is in other messages than the REGISTERs: %s" % others)
        answers = [m for m in cap.messages() if re.match(r"SIP/2\.0 (183|200) ", m)
                   and re.search(r"^CSeq: \d+ INVITE", m, re.M)]
        check(answers, "no 183/200 from mon1 captured")
        log("mon1's dialog Contact: %s" % _contact_of(answers[0]))
        invites = [m for m in cap.messages() if m.startswith("INVITE sip:door@")]
        check(invites, "mon1's INVITE to the door not captured")
        log("mon1's INVITE Contact: %s" % _contact_of(invites[0]))

        for name in ("mon1", "mon2", "mon1-asleep"):
            check(WAKE_TOKEN not in env.monitor_log_text(name) and
                  WAKE_TOKEN not in open(env.monitor_events_file(name)).read(),
                  "the push token is in %s's log" % name)
        check(WAKE_TOKEN not in env.proxy_log_text(), "the push token is in the proxy log")
        check(WAKE_TOKEN not in env.door_log_text(), "the push token is in the door's log")

        # Every daemon exits 0 on SIGTERM (the killed app is not one of them;
        # the harness stops the proxy and checks its status).
        for name in ("mon1", "mon2"):
            proc = env.monitors[name]
            proc.stop()
            check(proc.popen.returncode == 0, "%s exited with %s" % (name, proc.popen.returncode))
        env.door_proc.stop()
        check(env.door_proc.popen.returncode == 0,
              "portier-door exited with %s" % env.door_proc.popen.returncode)
    finally:
        cap.stop()
        standin.stop()


@case
def case_push_monitor_over_tls(env):
    """The push-woken portier-monitor as a phone reaches the cloud: over TLS
    (sips:, the proxy's certificate checked by name). What it sent inside TLS
    (TPORT_LOG, sofia's wire dump in its own log, which is why the token may
    be in this monitor's log and nowhere else): the REGISTER's Contact is a
    sips: URI with the pn-* parameters and +sip.instance; its 180, 183 and
    200 to the door's call carry a sips: Contact with neither. The registrar
    binds it with push over TLS; the door rings the home: mon1 is pushed and
    rings at once (it is awake), decodes the door's video, answers (the door
    gets 200, the ACK and later the BYE reach it on its TLS connection), hangs
    up. The token is in no proxy or door log."""
    from cases.proxy_tls import start_tls_proxy, tls_account
    from portier_py.pki import standard
    from portier_sip.devices import wire_header, wire_messages
    standin = _Standin(env)
    try:
        _with_standin(env, standin)
        pki = standard(env.dir)
        start_tls_proxy(env, pki, permissive=False)
        push = ("push-provider = webpush\npush-prid = %s\npush-param = door-app\n"
                "instance-id = %s\n" % (WAKE_TOKEN, WAKE_INSTANCE))
        env.start_monitor("mon1", "mon1", 0, 0, environ=dict(os.environ, TPORT_LOG="1"),
                          account_extra=tls_account(env, pki, host="proxy.test", maddr=LOCAL,
                                                    extra=push))
        regs = env.bindings_for("mon1")
        check(len(regs) == 1 and regs[0].get("push") == "webpush" and
              json.dumps(regs).count('"tls:') == 1,
              "mon1 is not bound over TLS with push: %r" % regs)
        env.start_door(video_codec="vp8")
        check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
        st = env.wait_monitor("mon1", lambda st: st.get("call") == "early" and
                              st.get("frames_decoded", 0) > 0, "early media with decoded video",
                              15)
        standin.wait_for("webhook", lambda e: e.get("body", {}).get("call_id") == st["call_id"]
                         and e.get("body", {}).get("prid") == WAKE_TOKEN, "mon1's push")
        check(env.mon_ctl("mon1", "answer").get("result") == "answered", "mon1 did not answer")
        env.wait_door_event("answered", 10)
        env.wait_monitor("mon1", lambda st: st.get("audio_packets_received", 0) > 25,
                         "the door's audio after answering", 10)
        check(env.mon_ctl("mon1", "hangup").get("result") == "hung up", "mon1 did not hang up")
        env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "the end of the call")
        env.wait_door_event("ended", 10)
        env.wait_relay_free()

        sent = [m for d, m in wire_messages(env.monitor_log_text("mon1")) if d == "send" and m]
        reg = [m for m in sent if m[0].startswith("REGISTER ")]
        check(reg, "mon1's log shows no REGISTER sent (TPORT_LOG)")
        contact = wire_header(reg[0], "Contact")
        log("mon1's REGISTER Contact over TLS: %s" % contact.replace(WAKE_TOKEN, "<token>"))
        check(contact.startswith("<sips:") and "pn-prid=%s" % WAKE_TOKEN in contact and
              "pn-provider=webpush" in contact and
              '+sip.instance="<%s>"' % WAKE_INSTANCE in contact,
              "the REGISTER's Contact over TLS: %s" % contact)
        answers = [m for m in sent if re.match(r"SIP/2\.0 (180|183|200) ", m[0])
                   and "INVITE" in wire_header(m, "CSeq")]
        check(len(answers) >= 3, "mon1's 180/183/200 not in its wire log: %s"
              % [m[0] for m in sent])
        for m in answers:
            c = wire_header(m, "Contact")
            check(c.startswith("<sips:") and WAKE_TOKEN not in c and "pn-" not in c,
                  "mon1's %s has Contact %s" % (m[0], c.replace(WAKE_TOKEN, "<token>")))
        log("mon1's dialog Contact over TLS: %s" % wire_header(answers[0], "Contact"))
        check(not [m[0] for m in sent if not m[0].startswith("REGISTER ") and
                   any(WAKE_TOKEN in line for line in m)],
              "the token went out in another message than a REGISTER")
        check(WAKE_TOKEN not in env.proxy_log_text(), "the push token is in the proxy log")
        check(WAKE_TOKEN not in env.door_log_text(), "the push token is in the door's log")
    finally:
        standin.stop()


# APNs device tokens: hex, they go into the request path (/3/device/TOKEN).
APNS_TOKEN = "8599a11ce0" + "0123456789abcdef" * 3 + "5a5a5a"
APNS_VOIP2 = "8599b0b0b0" + "fedcba9876543210" * 3 + "a5a5a5"
APNS_REMOTE2 = "8599b0b0b1" + "00112233445566778899aabbccddeeff" * 2
APNS_TOPIC = "org.example.door.voip"
APNS_BUNDLE = "org.example.door"


def _check_apns(e, push_type, token, topic, kind, call_id, fork_timeout):
    """One push as Apple's "Sending notification requests to APNs" asks:
    POST /3/device/<device token>, apns-push-type, apns-topic (the bundle ID,
    with .voip for a VoIP push), apns-priority 10 (at once), apns-expiration
    a UNIX time no later than the fork's end (after it nothing rings), an
    ES256 provider token the stand-in verified with the .p8's public key (RFC
    7518 section 3.4; kid and iss checked)."""
    h = e.get("headers", {})
    payload = e.get("payload") or {}
    check("error" not in e and e.get("status") == 200 and e.get("auth") == "token" and
          e.get("jwt_iat"), "the stand-in refused or did not verify the push: %r" % e)
    check(e.get("device") == token, "pushed to /3/device/%s" % e.get("device"))
    check(h.get("apns-push-type") == push_type and h.get("apns-topic") == topic and
          h.get("apns-priority") == "10", "the %s push's headers: %r" % (kind, h))
    expiration = int(h.get("apns-expiration", "0"))
    now = time.time()
    check(now < expiration <= now + fork_timeout + 2,
          "apns-expiration %d is not within the fork timeout (now %d)" % (expiration, now))
    check(payload.get("kind") == kind and payload.get("call-id") == call_id,
          "the %s push's payload: %r" % (kind, payload))
    if push_type == "voip":
        check(payload.get("aps") == {}, "a VoIP push with an aps: %r" % payload)
    else:
        check((payload.get("aps") or {}).get("alert"), "an alert push without alert: %r" % payload)


def _pushes_to(standin, token, call_id):
    return [e for e in standin.events("apns")
            if e.get("device") == token and (e.get("payload") or {}).get("call-id") == call_id]


@case
def case_push_fork_apns(env):
    """APNs through the fork, with token authentication (the stand-in's .p8
    P-256 key, key id, team id). alice registers pn-provider=apns,
    pn-param=TEAMID.org.example.door.voip (RFC 8599 section 10: Team ID, then
    the topic: bundle ID and service), pn-prid her VoIP device token;
    Feature-Caps names apns. mon2's app has both kinds of token
    (.voip&remote, "VOIP:voip&REMOTE:remote", Flexisip's extension). Both
    asleep; the door rings sip:home: each is pushed at its VoIP token:
    /3/device/<token>, voip, topic org.example.door.voip, priority 10, an
    expiration, the ES256 bearer verified. mon1 (awake) answers. Follow-ups:
    never a VoIP push (Apple's PKPushType.voIP: for starting a call only,
    each reported to CallKit as a new call): mon2 gets an answered-elsewhere
    alert at its remote token (topic the bundle ID), alice nothing (her app
    learns the end over SIP: woken, it registers and gets INVITE and CANCEL).
    A call to each alone ends at the fork timeout: mon2 gets a missed alert,
    alice nothing. One provider token for every push; no device token
    and no provider token in the proxy log."""
    standin = _Standin(env)
    try:
        _push_proxy(env, standin, fork_timeout=4, apns=True)
        team = standin.info["apns_team_id"]
        alice, mon1, mon2 = _Phone(env, "alice"), _Phone(env, "mon1"), _Phone(env, "mon2")
        door = _Phone(env, "door")
        try:
            resp = alice.register(";pn-provider=apns;pn-prid=%s;pn-param=%s.%s"
                                  % (APNS_TOKEN, team, APNS_TOPIC))
            check(resp.status == 200 and resp.hdrs("Feature-Caps") == ['*;+sip.pns="apns"'],
                  "alice (apns): %s, Feature-Caps %r" % (resp.first, resp.hdrs("Feature-Caps")))
            check(_binding(env, "alice").get("push") == "apns", "alice's binding has no apns push")
            resp = mon2.register(";pn-provider=apns;pn-prid=%s:voip&%s:remote;pn-param=%s.%s&remote"
                                 % (APNS_VOIP2, APNS_REMOTE2, team, APNS_TOPIC))
            check(resp.status == 200, "mon2 (apns, both tokens): %s" % resp.first)
            alice.close()  # asleep
            mon2.close()
            check(mon1.register("").status == 200, "mon1 could not register")

            # The calls to each alone first: the answered one below leaves a
            # dialog whose 2xx retransmissions would reach the door.
            alone = {}
            for user, token in (("alice", APNS_TOKEN), ("mon2", APNS_VOIP2)):
                ruri = "sip:%s@%s" % (user, DOMAIN)
                call_id, got = _invite(door, ruri)
                alone[user] = call_id
                check(got.status == 110, "door's INVITE to %s: %s, expected 110"
                      % (user, got.first))
                e = standin.wait_for("apns", lambda e, t=token: e.get("device") == t and
                                     (e.get("payload") or {}).get("call-id") == call_id,
                                     "the APNs push for the call to %s" % user)
                _check_apns(e, "voip", token, APNS_TOPIC, "call", call_id, env.fork_timeout)
                log("%s pushed: /3/device/<token>, %s" % (user, e["headers"]))
                final = door.expect(lambda m: (m.status or 0) >= 200 and
                                    m.hdr("Call-ID") == call_id,
                                    "the final response at the fork timeout",
                                    timeout=env.fork_timeout + 10)
                _ack(door, ruri, final)
                log("nobody answered %s: %s at the fork timeout" % (user, final.first))
            e = standin.wait_for("apns", lambda e: e.get("device") == APNS_REMOTE2,
                                 "mon2's missed-call alert")
            _check_apns(e, "alert", APNS_REMOTE2, APNS_BUNDLE, "missed", alone["mon2"],
                        env.fork_timeout)
            log("mon2 got a missed-call alert at its remote token")

            call_id2, got = _invite(door, "sip:home@" + DOMAIN)
            check(got.status == 110, "door's INVITE to home: %s, expected 110" % got.first)
            for token in (APNS_TOKEN, APNS_VOIP2):
                e = standin.wait_for("apns", lambda e, t=token: e.get("device") == t and
                                     (e.get("payload") or {}).get("call-id") == call_id2,
                                     "the call push to %s..." % token[:10])
                _check_apns(e, "voip", token, APNS_TOPIC, "call", call_id2, env.fork_timeout)
            invite = mon1.expect(lambda m: m.method == "INVITE", "the INVITE", timeout=5)
            mon1.reply(invite, 200, "OK", to_tag="mon1-tag")
            ok = door.expect(lambda m: m.status == 200 and m.cseq()[1] == "INVITE", "mon1's 200",
                             timeout=5)
            e = standin.wait_for("apns", lambda e: e.get("device") == APNS_REMOTE2 and
                                 (e.get("payload") or {}).get("call-id") == call_id2,
                                 "mon2's answered-elsewhere alert")
            _check_apns(e, "alert", APNS_REMOTE2, APNS_BUNDLE, "answered-elsewhere", call_id2,
                        env.fork_timeout)
            log("mon1 answered (%s): mon2 got an answered-elsewhere alert at its remote token"
                % ok.first)

            time.sleep(0.5)  # alice's would have gone out with mon2's
            extra = [e.get("payload") for c in (alone["alice"], call_id2)
                     for e in _pushes_to(standin, APNS_TOKEN, c)
                     if (e.get("payload") or {}).get("kind") != "call"]
            check(not extra, "alice's VoIP token got a follow-up: %s" % extra)
            jwts = set(e.get("jwt_id") for e in standin.events("apns"))
            check(len(jwts) == 1, "%d provider tokens, expected one reused" % len(jwts))

            # Two contacts, two kinds of PNS in one REGISTER: one Feature-Caps
            # header field for each (RFC 8599 section 5.4; 8.2: one value).
            mon3 = _Phone(env, "mon3")
            try:
                resp = mon3.register(
                    ";pn-provider=apns;pn-prid=%s;pn-param=%s.%s" % (APNS_TOKEN, team, APNS_TOPIC),
                    hparams=", <sip:mon3@%s:%d;pn-provider=webpush;pn-prid=w-%s;pn-param=door-app>"
                    % (mon3.ip, mon3.port + 1, TOKEN))
                caps = sorted(resp.hdrs("Feature-Caps"))
                check(resp.status == 200 and
                      caps == ['*;+sip.pns="apns"', '*;+sip.pns="webpush"'],
                      "mon3 with apns and webpush contacts: %s, Feature-Caps %r"
                      % (resp.first, caps))
                log("two PNS types in one REGISTER: Feature-Caps %s" % caps)
            finally:
                mon3.close()
        finally:
            for p in (door, mon1, mon2, alice):
                p.close()
        text = env.proxy_log_text()
        for t in (APNS_TOKEN, APNS_VOIP2, APNS_REMOTE2):
            check(t not in text, "the proxy log has an APNs device token: %s"
                  % [l for l in text.splitlines() if t in l][:3])
        leaked = [j for j in set(e.get("jwt_id") for e in standin.events("apns")) if j in text]
        check(not leaked, "the proxy log has the APNs provider token")
    finally:
        standin.stop()


@case
def case_push_two_houses(env):
    """The issue's "two houses on one proxy" with push: a.example and
    b.example (reg-domains *, group-addresses sip:home@*), push enabled with
    the stand-in's webhook; each house's two monitors registered with push
    parameters (awake, answering 486). Both doors ring their sip:home at the
    same time: each house's monitors ring, and the stand-in gets each house's
    tokens for its own call only (not one push with the other house's token).
    From 127.0.0.2: a's alice REGISTERing b's alice with push parameters gets
    403 and nothing is stored; a's alice calling sip:home@b.example gets 403
    (inter-domain-requests = deny) and no push goes out."""
    from cases.domains import A, B, HOUSES, _Ua, _houses

    standin = _Standin(env)
    uas = []
    try:
        _houses(env, HOUSES)
        _with_standin(env, standin)
        env.fork_timeout = 3  # 486 from every branch holds the pushed call open until then
        env.start_proxy()
        tokens = {}
        for d in (A, B):
            for name in ("mon1", "mon2"):
                m = _Ua(env, name, d)
                uas.append(m)
                tokens[m.name] = "%s-%s-%s" % (d.split(".")[0], name, TOKEN)
                m.contact_params = (";pn-provider=webpush;pn-prid=%s;pn-param=door-app"
                                    % tokens[m.name])
                m.register()
                m.answer_invites(486, "Busy Here")
        house_tokens = {d: set(t for n, t in tokens.items() if n.endswith(d)) for d in (A, B)}
        pushed = sorted(r.get("push") for r in env.registrations())
        check(pushed == ["webpush"] * 4, "the monitors' bindings: push %s" % pushed)

        doors = {d: _Ua(env, "door", d) for d in (A, B)}
        uas += doors.values()
        results = {}

        def ring(d):
            results[d] = doors[d].ask("INVITE", "sip:home@" + d, timeout=env.fork_timeout + 8)
        threads = [threading.Thread(target=ring, args=(d,)) for d in (A, B)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(env.fork_timeout + 20)
        for d in (A, B):
            got = results.get(d)
            check(got and got[:2] == (407, 486), "door@%s rings sip:home@%s: %s"
                  % (d, d, got and (got[0], got[1], got[2].first)))
            call_id = doors[d].call_id
            for m in uas[:4]:
                mine = [i for i in m.invites if i.hdr("Call-ID") == call_id]
                want = 1 if m.domain == d else 0
                check(len(mine) == want, "%s got %d INVITE(s) of door@%s's call, expected %d"
                      % (m.name, len(mine), d, want))
            # The call push, and the missed push once the door had its 486.
            for t in house_tokens[d]:
                for kind in ("call", "missed"):
                    standin.wait_for("webhook", lambda e, t=t, kind=kind: e["body"].get(
                        "prid") == t and e["body"].get("call_id") == call_id and
                        e["body"].get("kind") == kind, "the %s push to %s" % (kind, t))
            foreign = [e["body"] for e in standin.events("webhook")
                       if e["body"].get("call_id") == call_id and
                       e["body"].get("prid") not in house_tokens[d]]
            check(not foreign, "door@%s's call pushed the other house's tokens: %s" % (d, foreign))
            log("door@%s: its house's monitors rang, pushes to its tokens only" % d)

        # Attacks from 127.0.0.2 with a's alice's own credentials.
        alice_a = _Ua(env, "alice", A, host=ATTACKER)
        uas.append(alice_a)
        alice_a.contact_params = ";pn-provider=webpush;pn-prid=stolen-%s;pn-param=door-app" % TOKEN
        got = alice_a.ask("REGISTER", "sip:" + B, to="sip:alice@" + B, frm="sip:alice@" + B,
                          username="alice@" + A)
        check(got[:2] == (401, 403), "a's alice REGISTERs b's alice with push parameters: "
              "%s then %s (%s), expected 401 then 403" % (got[0], got[1], got[2].first))
        listing = env.registrations()
        check(not [r for r in listing if r.get("aor") == "sip:alice@" + B],
              "b's alice has a binding after the 403: %s" % listing)
        check("stolen-" not in str(listing), "the refused token is listed")
        alice_a.contact_params = ""
        before = len(standin.events("webhook"))
        got = alice_a.ask("INVITE", "sip:home@" + B)
        check(got[:2] == (407, 403) and "Inter-domain" in got[2].first,
              "a's alice calls sip:home@b.example: %s then %s (%s), expected 407 then 403"
              % (got[0], got[1], got[2].first))
        time.sleep(0.5)  # a push would be at the stand-in by now
        after = standin.events("webhook")[before:]
        check(not after, "the refused call pushed: %s" % [e["body"] for e in after])
        check(not any(m.invites[-1:] and m.invites[-1].hdr("Call-ID") == alice_a.call_id
                      for m in uas[:4]), "a monitor got the refused call")
        log("127.0.0.2: b's alice's REGISTER and the call to sip:home@b.example refused, "
            "nothing stored, no push")
        text = env.proxy_log_text()
        leaked = [t for t in list(tokens.values()) + ["stolen-" + TOKEN] if t in text]
        check(not leaked, "device tokens in the proxy log: %s" % leaked)
    finally:
        for u in uas:
            u.close()
        standin.stop()
