"""Push notifications, RFC 8599, at the registrar (issue 14): Contact URIs with
pn-provider / pn-prid / pn-param (and the legacy Linphone pn-type / app-id /
pn-tok) from hand-driven UDP endpoints (PyUA). The proxy has
[module::PushNotification] enabled with a webhook only (no FCM service account,
no APNs key), so webpush is served and fcm is not. Nothing is pushed here: the
webhook URL is never contacted at registration."""

import json
import re
import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time

from portier_sip.base import LOCAL, USERS, DOMAIN, TestFailure, check, log
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


HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "..", "..", "push", "push_standin.py")
# The stand-in needs python3-h2 and python3-cryptography: Debian's python3
# has them (the first python3 in PATH may be another one).
STANDIN_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


class _Standin:
    """tests/push/push_standin.py in the case's directory: FCM (with its token
    endpoint), APNs and the webhook over HTTP/2 and TLS, on a free loopback
    port. It serves until its stdin closes."""

    def __init__(self, env):
        self.dir = os.path.join(env.dir, "standin")
        self.popen = subprocess.Popen([STANDIN_PYTHON, STANDIN, self.dir], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        ready = select.select([self.popen.stdout], [], [], 30)[0]
        line = self.popen.stdout.readline().decode() if ready else ""
        if not line.startswith("READY "):
            self.stop()
            raise TestFailure("push stand-in did not start: %r" % line)
        with open(os.path.join(self.dir, "standin.json")) as f:
            self.info = json.load(f)
        self.url = "https://localhost:%d" % self.info["port"]
        log("push stand-in on %s (pid %d)" % (self.url, self.popen.pid))

    def script(self, replies):
        with open(os.path.join(self.dir, "replies.json"), "w") as f:
            json.dump(replies, f)

    def events(self, kind):
        try:
            with open(self.info["log"]) as f:
                return [e for e in map(json.loads, f) if e.get("event") == kind]
        except OSError:
            return []

    def wait_for(self, kind, pred, what, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for e in self.events(kind):
                if pred(e):
                    return e
            time.sleep(0.1)
        raise TestFailure("push stand-in: no %s within %.0f s (its %s requests: %s)"
                          % (what, timeout, kind, self.events(kind)[-3:]))

    def stop(self):
        if self.popen.poll() is None:
            self.popen.stdin.close()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.popen.stdout.close()

    def proxy_section(self):
        i = self.info
        return ("\n[module::PushNotification]\nenabled = true\n"
                "firebase-service-accounts = %s:%s\nfirebase-base-url = %s\n"
                "webhook-url = %s/webhook\nca-file = %s\n"
                "retransmission-count = 2\nretransmission-interval = 1\n"
                % (i["project"], i["service_account"], self.url, self.url, i["ca_file"]))


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
    *;+sip.pns="webpush" (RFC 8599 section 5, RFC 6809), its binding lists
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


def _with_standin(env, standin):
    plain = env.write_config

    def write_config():
        path = plain()
        with open(path, "a") as f:
            f.write(standin.proxy_section())
        return path
    env.write_config = write_config


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
    door.send("ACK %s SIP/2.0\nVia: %s\nFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %d ACK\n"
              "Max-Forwards: 70" % (ruri, resp.hdr("Via"), resp.hdr("From"), resp.hdr("To"),
                                    call_id, door.cseq))
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
        _with_standin(env, standin)
        env.relay_enabled = False
        env.fork_timeout = 4
        env.start_proxy()
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
            door.send("ACK sip:alice@%s SIP/2.0\nVia: %s\nFrom: %s\nTo: %s\nCall-ID: %s\n"
                      "CSeq: %s ACK\nMax-Forwards: 70"
                      % (DOMAIN, final.hdr("Via"), final.hdr("From"), final.hdr("To"), call_id,
                         final.cseq()[0]))
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
        _with_standin(env, standin)
        env.fork_timeout = 60
        env.start_proxy()
        instance = ';+sip.instance="<urn:uuid:6f1c2a4e-0b7d-4c55-9a55-8599a11ce001>"'
        pn = ";pn-provider=webpush;pn-prid=late-%s;pn-param=door-app" % TOKEN
        asleep = _Phone(env, "alice")
        resp = asleep.register(pn, hparams=instance)
        check(resp.status == 200, "alice: %s" % resp.first)
        asleep.close()

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
        _with_standin(env, standin)
        env.relay_enabled = False
        env.start_proxy()
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
        _with_standin(env, standin)
        env.relay_enabled = False
        env.fork_timeout = 60
        env.start_proxy()
        instance = ';+sip.instance="<urn:uuid:6f1c2a4e-0b7d-4c55-9a55-8599a11ce002>"'
        pn = ";pn-provider=webpush;pn-prid=ghost-%s;pn-param=door-app" % TOKEN
        asleep = _Phone(env, "alice")
        check(asleep.register(pn, hparams=instance).status == 200, "alice could not register")
        asleep.close()
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
            door.send("ACK %s SIP/2.0\nVia: %s\nFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %s ACK\n"
                      "Max-Forwards: 70" % (ruri, final.hdr("Via"), final.hdr("From"),
                                            final.hdr("To"), call_id, final.cseq()[0]))
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
        _with_standin(env, standin)
        env.relay_enabled = False
        env.fork_timeout = 60
        env.start_proxy()
        instance = ';+sip.instance="<urn:uuid:6f1c2a4e-0b7d-4c55-9a55-8599a11ce003>"'
        pn = ";pn-provider=webpush;pn-prid=refresh-%s;pn-param=door-app" % TOKEN
        asleep = _Phone(env, "alice")
        check(asleep.register(pn, hparams=instance).status == 200, "alice could not register")
        asleep.close()
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
        _with_standin(env, standin)
        env.relay_enabled = False
        env.fork_timeout = 60
        env.start_proxy()
        cap = 8
        pn = ";pn-provider=webpush;pn-prid=cap-%s;pn-param=door-app" % TOKEN
        phone = _Phone(env, "alice")
        check(phone.register(pn, hparams=';+sip.instance="<urn:uuid:00000000-0000-4000-8000-0000000ca900>"')
              .status == 200, "alice's phone could not register")
        mon1_pn = ";pn-provider=webpush;pn-prid=cap-mon1-%s;pn-param=door-app" % TOKEN
        mon1_instance = ';+sip.instance="<urn:uuid:00000000-0000-4000-8000-0000000ca901>"'
        asleep = _Phone(env, "mon1")
        check(asleep.register(mon1_pn, hparams=mon1_instance).status == 200,
              "mon1's phone could not register")
        asleep.close()
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
        _with_standin(env, standin)
        env.relay_enabled = False
        env.fork_timeout = 4
        env.start_proxy()
        asleep = _Phone(env, "alice")
        pn = ";pn-provider=webpush;pn-prid=busy-%s;pn-param=door-app" % TOKEN
        check(asleep.register(pn).status == 200, "alice could not register")
        asleep.close()
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
            door.send("ACK %s SIP/2.0\nVia: %s\nFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %s ACK\n"
                      "Max-Forwards: 70" % (ruri, final.hdr("Via"), final.hdr("From"),
                                            final.hdr("To"), call_id, final.cseq()[0]))
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
        st2 = env.wait_monitor("mon2", lambda st: st.get("call") == "ended", "the end of its ringing")
        check(st2.get("reason") == "answered elsewhere",
              "mon2 ended with %r, not 'answered elsewhere'" % st2.get("reason"))
        st1 = env.wait_monitor("mon1", lambda st: st.get("audio_packets_sent", 0) > 25 and
                               st.get("audio_packets_received", 0) > 25, "two-way audio", 10)
        check(st1.get("call") == "answered", "mon1 is %s after answering" % st1.get("call"))
        deadline = time.time() + 5
        while time.time() < deadline and \
                env.door_ctl("status").get("audio_packets_received", 0) == 0:
            time.sleep(0.1)
        check(env.door_ctl("status").get("audio_packets_received", 0) > 0,
              "mon1's audio never reached the door")
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
