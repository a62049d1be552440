"""Several domains in one proxy (issue 14 item 1): two houses, a.example and
b.example, each with its door, two monitors and its alice (other passwords), on
one cloud proxy with reg-domains = *, auth-domains = * and group-addresses =
sip:home@*. Attacks come from 127.0.0.2. Every device is a hand-driven UDP
endpoint (PyUA) on a port of its own; the relay is off (no media here)."""

import os
import re
import signal
import threading
import time

from portier_sip.base import ATTACKER, LOCAL, check, log
from portier_sip.checks import uri_in
from portier_sip.registry import case
from portier_sip.sipmsg import PyUA, digest_auth, find_challenge
from portier_py import configs

A, B, C = "a.example", "b.example", "c.example"
# Same user names in both houses, other passwords.
HOUSES = {
    A: {"door": "A-door-Pw-4411", "mon1": "A-mon1-Pw-1177", "mon2": "A-mon2-Pw-9035",
        "alice": "A-alice-Pw-7310"},
    B: {"door": "B-door-Pw-5820", "mon1": "B-mon1-Pw-3362", "mon2": "B-mon2-Pw-6649",
        "alice": "B-alice-Pw-2286"},
}
C_USERS = {"mon1": "C-mon1-Pw-8154"}


def _houses(env, users, inter="deny"):
    """Every proxy start (and reload) of this case writes env.house_users
    ({domain: {user: password}}) as the users file and env.house_inter as
    [module::Router] inter-domain-requests."""
    env.house_users = users
    env.house_inter = inter
    env.relay_enabled = False

    def write_config():
        path = os.path.join(env.dir, "users.conf")
        write_users(env, env.house_users)
        cfg = configs.proxy_conf(LOCAL, env.ports.proxy, env.state_dir, env.socket, path,
                                 "%d-%d" % (env.ports.relay_first, env.ports.relay_first + 99),
                                 more={
            "global": {"log-output": "stderr"},
            "module::Registrar": {"reg-domains": "*", "group-addresses": "sip:home@*",
                                  "static-records-file": env.write(
                                      "static.conf", "<sip:first@*> <sip:mon1@*>\n")},
            "module::Authentication": {"auth-domains": "*", "available-algorithms": "MD5"},
            "module::Router": {"inter-domain-requests": env.house_inter,
                               "call-fork-timeout": env.fork_timeout},
            "module::MediaRelay": {"enabled": "false"}})
        return env.write("proxy.ini", cfg)
    env.write_config = write_config


def write_users(env, users, extra=""):
    env.write("users.conf", "version:1\n" + "".join(
        "%s@%s clrtxt:%s ;\n" % (u, d, pw) for d in sorted(users)
        for u, pw in sorted(users[d].items())) + extra)


class _Ua(PyUA):
    """user@domain on its own UDP port of `host`, answering challenges with
    its own credentials unless told otherwise."""

    def __init__(self, env, user, domain, host=LOCAL, password=None):
        # The name goes into tags and Call-IDs: no "@" (RFC 3261 section 25.1 token).
        PyUA.__init__(self, "%s.%s" % (user, domain), host, 0, env.ports.proxy)
        self.env, self.user, self.domain = env, user, domain
        self.password = password or env.house_users.get(domain, {}).get(user, "none")
        self.aor = "sip:%s@%s" % (user, domain)
        self.cseq = 0
        self.call_id = self.uniq("call") + "@" + host
        self.tag = self.uniq("t")
        self.thread = None
        self.contact_params = ""  # more Contact URI parameters (RFC 8599's pn-*)

    def _send(self, method, ruri, to, frm, auth, new_call):
        self.cseq += 1
        if new_call:
            self.call_id = self.uniq("call") + "@" + self.ip
        lines = ["%s %s SIP/2.0" % (method, ruri), "Via: %s" % self.via(),
                 "From: <%s>;tag=%s" % (frm, self.tag), "To: <%s>" % to,
                 "Call-ID: %s" % self.call_id, "CSeq: %d %s" % (self.cseq, method),
                 "Contact: <sip:%s@%s:%d%s>" % (self.user, self.ip, self.port, self.contact_params),
                 "Max-Forwards: 70"]
        if method == "REGISTER":
            lines.append("Expires: 600")
        if auth:
            lines.append(auth)
        self.send("\n".join(lines))

    def _ack(self, resp, ruri):
        # RFC 3261 section 17.1.1.3: the ACK of a non-2xx final response, hop by hop.
        self.send("ACK %s SIP/2.0\nVia: %s\nFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %s ACK\n"
                  "Max-Forwards: 70" % (ruri, resp.hdr("Via"), resp.hdr("From"), resp.hdr("To"),
                                        resp.hdr("Call-ID"), resp.cseq()[0]))

    def ask(self, method, ruri, to=None, frm=None, username=None, password=None, timeout=5.0):
        """Sends a request; answers a 401/407 once, with `username` (default:
        the bare user name) and `password` (default: its own). Returns the
        statuses of the first and the last final responses, and the last."""
        to, frm = to or (self.aor if method == "REGISTER" else ruri), frm or self.aor
        self._send(method, ruri, to, frm, None, new_call=method != "REGISTER")
        first = self.response_to(method, timeout=timeout)
        if method == "INVITE":
            self._ack(first, ruri)
        last = first
        if first.status in (401, 407):
            ch = find_challenge(first.hdrs("WWW-Authenticate") + first.hdrs("Proxy-Authenticate"))
            check(ch, "%s: no MD5 challenge in %s" % (self.name, first.first))
            header = "Authorization" if first.status == 401 else "Proxy-Authorization"
            cred = digest_auth(username or self.user, password or self.password, ch, method, ruri)
            self._send(method, ruri, to, frm, "%s: %s" % (header, cred), new_call=False)
            last = self.response_to(method, timeout=timeout)
            if method == "INVITE" and last.status >= 300:
                self._ack(last, ruri)
        return first.status, last.status, last

    def register(self):
        _, status, last = self.ask("REGISTER", "sip:" + self.domain)
        check(status == 200, "%s could not register: %s" % (self.name, last.first))

    def answer_invites(self, status, phrase):
        """From now on a thread answers every INVITE with `status` (and every
        BYE or CANCEL with 200), and keeps the INVITEs in self.invites."""
        self.invites, self.byes = [], []
        self.stop = threading.Event()

        def run():
            while not self.stop.is_set():
                self._read(time.time() + 0.1)
                got, self.pending = self.pending, []
                for m in got:
                    if m.method == "INVITE":
                        self.invites.append(m)
                        self.reply(m, status, phrase, to_tag=self.tag)
                    elif m.method in ("BYE", "CANCEL"):
                        self.byes.append(m)
                        self.reply(m, 200, "OK")
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def close(self):
        if self.thread:
            self.stop.set()
            self.thread.join(2)
        PyUA.close(self)


def _start_house(env, domain, host=LOCAL):
    """The two monitors of a house, registered, answering 486 (busy)."""
    mons = []
    for name in ("mon1", "mon2"):
        m = _Ua(env, name, domain, host)
        m.register()
        m.answer_invites(486, "Busy Here")
        mons.append(m)
    return mons


def _aors(env):
    return sorted(set(r.get("aor") for r in env.registrations()))


def _check_statuses(got, want, what):
    check(got[:2] == want, "%s: got %s then %s (%s), expected %s then %s"
          % (what, got[0], got[1], got[2].first, want[0], want[1]))
    log("%s: %s then %s" % (what, got[0], got[1]))


def _ring_home(env, domain, houses):
    """The door of `domain` rings sip:home@domain: only that house's monitors
    get the INVITE (both answer busy, the door gets 486)."""
    door = _Ua(env, "door", domain)
    try:
        for m in (mon for mons in houses.values() for mon in mons):
            m.invites.clear()
        got = door.ask("INVITE", "sip:home@" + domain, timeout=8)
        _check_statuses(got, (407, 486), "door@%s rings sip:home@%s" % (domain, domain))
        time.sleep(0.3)  # a stray INVITE to the other house would be here by now
        for d, mons in houses.items():
            for m in mons:
                n = len(m.invites)
                if d == domain:
                    check(n == 1, "%s got %d INVITE(s) for sip:home@%s, expected 1"
                          % (m.name, n, domain))
                    check(m.invites[0].ruri.startswith("sip:%s@" % m.user),
                          "%s got an INVITE for %s" % (m.name, m.invites[0].ruri))
                else:
                    check(n == 0, "%s (the other house) got %d INVITE(s) for sip:home@%s"
                          % (m.name, n, domain))
    finally:
        door.close()


def _ring_first(env, domain, houses):
    """sip:first@DOMAIN, a static record of every domain (<sip:first@*>
    <sip:mon1@*>), rings that house's mon1 only."""
    door = _Ua(env, "door", domain)
    try:
        for m in (mon for mons in houses.values() for mon in mons):
            m.invites.clear()
        got = door.ask("INVITE", "sip:first@" + domain, timeout=8)
        _check_statuses(got, (407, 486), "door@%s rings sip:first@%s" % (domain, domain))
        time.sleep(0.3)
        rung = sorted(m.name for mons in houses.values() for m in mons if m.invites)
        check(rung == ["mon1.%s" % domain], "sip:first@%s rang %s" % (domain, rung))
    finally:
        door.close()


def _secrets_absent(env, users):
    text = env.proxy_log_text()
    leaked = [pw for d in users.values() for pw in d.values() if pw in text]
    check(not leaked, "password(s) in the proxy log: %s" % leaked)


@case
def case_domains_two_houses(env):
    """Two houses on one proxy: sip:home@* (and a static record <sip:first@*>)
    rings only its own house; a user of A
    calling B gets 403; a REGISTER for c.example (not served) gets 403 at once;
    A's alice with A's password cannot register B's alice (challenged, then 401
    for the bare name and 403 for alice@a.example, RFC 3261 section 10.3 step 4);
    from 127.0.0.2 a forged From of B with A's credentials gets 403."""
    _houses(env, HOUSES)
    env.start_proxy()
    houses = {d: _start_house(env, d) for d in (A, B)}
    uas = []
    try:
        check(_aors(env) == sorted("sip:%s@%s" % (u, d) for d in (A, B)
                                   for u in ("mon1", "mon2")),
              "registrations: %s" % _aors(env))
        _ring_home(env, A, houses)
        _ring_home(env, B, houses)
        _ring_first(env, B, houses)

        alice_a = _Ua(env, "alice", A)
        uas.append(alice_a)
        for m in houses[B]:
            m.invites.clear()
        # Local policy (one house per domain): not even a challenge-free 404 of B's.
        got = alice_a.ask("INVITE", "sip:mon1@" + B)
        _check_statuses(got, (407, 403), "alice@a.example calls sip:mon1@b.example")
        check("Inter-domain" in got[2].first, "the 403 says why: %s" % got[2].first)
        check(not houses[B][0].invites, "b's mon1 was rung by a's alice")

        # A domain not served: 403 at once, no challenge (nothing to authenticate).
        stranger = _Ua(env, "mon1", C, password="whatever")
        uas.append(stranger)
        got = stranger.ask("REGISTER", "sip:" + C)
        _check_statuses(got, (403, 403), "REGISTER sip:mon1@c.example")

        # A's alice, A's password, B's alice's AOR. The realm is b.example
        # (RFC 3261 section 22.1: the request's domain), so a's password under
        # the bare name is a wrong password for b's alice: challenged again.
        got = alice_a.ask("REGISTER", "sip:" + B, to="sip:alice@" + B, frm="sip:alice@" + B)
        _check_statuses(got, (401, 401), "a's alice (bare name) registers b's alice")
        # Named in full, a's alice proves who she is, and is refused as not b's
        # alice: section 10.3 step 4.
        got = alice_a.ask("REGISTER", "sip:" + B, to="sip:alice@" + B, frm="sip:alice@" + B,
                          username="alice@" + A)
        _check_statuses(got, (401, 403), "a's alice (alice@a.example) registers b's alice")
        check("sip:alice@%s" % B not in _aors(env), "b's alice got a binding: %s" % _aors(env))
        alice_a.register()  # her own AOR: fine

        # From 127.0.0.2: From b's alice, credentials of a's alice.
        attacker = _Ua(env, "alice", A, host=ATTACKER)
        uas.append(attacker)
        got = attacker.ask("INVITE", "sip:mon1@" + B, frm="sip:alice@" + B,
                           username="alice@" + A)
        _check_statuses(got, (407, 403), "127.0.0.2: From alice@b.example, a's credentials")
        got = attacker.ask("INVITE", "sip:mon1@" + B, frm="sip:alice@" + B)
        _check_statuses(got, (407, 407), "127.0.0.2: From alice@b.example, a's password")
        check(not houses[B][0].invites, "b's mon1 was rung by the attacker")
        # The attacker's tries are logged as failures of its address.
        lines = [l for l in env.proxy_log_text().splitlines()
                 if "auth failure: src=%s" % ATTACKER in l]
        check(any("identity-mismatch" in l for l in lines),
              "no identity-mismatch failure line for %s: %s" % (ATTACKER, lines))
        # b's own users still work.
        alice_b = _Ua(env, "alice", B)
        uas.append(alice_b)
        alice_b.register()
        _secrets_absent(env, HOUSES)
    finally:
        for u in uas + [m for mons in houses.values() for m in mons]:
            u.close()


@case
def case_domains_inter_domain_allowed(env):
    """[module::Router] inter-domain-requests = allow: a's alice calls b's mon1,
    which answers; after a reload to deny, the call's BYE still goes through
    (a dialog set up while allowed carries on) but a new INVITE gets 403."""
    _houses(env, HOUSES, inter="allow")
    env.start_proxy()
    alice = _Ua(env, "alice", A)
    mon = _Ua(env, "mon1", B)
    try:
        mon.register()
        mon.answer_invites(200, "OK")
        got = alice.ask("INVITE", "sip:mon1@" + B)
        _check_statuses(got, (407, 200), "alice@a.example calls sip:mon1@b.example (allowed)")
        ok = got[2]
        rr = list(reversed(ok.hdrs("Record-Route")))
        check(rr, "the 200 carries no Record-Route")
        target = uri_in(ok.hdr("Contact"))

        def in_dialog(method, cseq):
            alice.send("\n".join(
                ["%s %s SIP/2.0" % (method, target), "Via: %s" % alice.via()] +
                ["Route: %s" % r for r in rr] +
                ["From: %s" % ok.hdr("From"), "To: %s" % ok.hdr("To"),
                 "Call-ID: %s" % ok.hdr("Call-ID"), "CSeq: %d %s" % (cseq, method),
                 "Max-Forwards: 70"]))
        in_dialog("ACK", ok.cseq()[0])

        env.house_inter = "deny"
        env.write_config()
        r = env.ctl("reload")
        check(r.get("result") == "reloaded", "portierctl reload: %s" % r)
        in_dialog("BYE", ok.cseq()[0] + 1)
        bye_ok = alice.response_to("BYE")
        check(bye_ok.status == 200, "BYE after the reload to deny: %s" % bye_ok.first)
        check(mon.byes, "b's mon1 never got the BYE")
        log("BYE of the allowed call after the reload to deny: %s" % bye_ok.first)
        got = alice.ask("INVITE", "sip:mon1@" + B)
        _check_statuses(got, (407, 403), "a new INVITE after the reload to deny")
    finally:
        alice.close()
        mon.close()


@case
def case_domains_reload(env):
    """Users and domains reload without a restart: portierctl reload adds
    c.example and its user (reg-domains = *), who then registers; a bad users
    file keeps the old set (a user still registers) and the reply names file and
    line; SIGHUP takes c.example away again; a user removed from the file loses
    its binding at once and can no longer authenticate."""
    _houses(env, {A: dict(HOUSES[A])})
    env.start_proxy()
    mon_c = _Ua(env, "mon1", C, password=C_USERS["mon1"])
    mon2_a = _Ua(env, "mon2", A)
    mon1_a = _Ua(env, "mon1", A)
    try:
        got = mon_c.ask("REGISTER", "sip:" + C)
        _check_statuses(got, (403, 403), "c's mon1 before the reload")
        mon2_a.register()

        env.house_users = {A: dict(HOUSES[A]), C: dict(C_USERS)}
        env.write_config()
        r = env.ctl("reload")
        check(r.get("result") == "reloaded", "portierctl reload: %s" % r)
        mon_c.register()
        log("after the reload c's mon1 registers")

        # A bad users file: the old set stays, the reply says where.
        write_users(env, env.house_users, extra="broken line without a secret\n")
        rc, out, err = env.ctl_raw("reload")
        out += err
        log("portierctl reload with a bad users file: rc=%d %s" % (rc, out.strip()))
        lines = 1 + sum(len(u) for u in env.house_users.values()) + 1
        check(re.search(r"users\.conf:%d" % lines, out), "the reply names no users.conf:%d: %s"
              % (lines, out))
        check("reload failed" in out, "the reply does not say it failed: %s" % out)
        check(re.search(r"users\.conf:%d" % lines, env.proxy_log_text()),
              "the log does not say why the reload was refused")
        mon1_a.register()
        mon_c.register()

        # SIGHUP: c.example gone, a's mon2 removed from the file.
        users = {A: dict(HOUSES[A])}
        del users[A]["mon2"]
        env.house_users = users
        env.write_config()
        os.kill(env.proxy.pid, signal.SIGHUP)
        deadline = time.time() + 5
        while time.time() < deadline and "sip:mon1@" + C in _aors(env):
            time.sleep(0.1)
        aors = _aors(env)
        check("sip:mon1@%s" % C not in aors, "c's binding survived its domain: %s" % aors)
        check("sip:mon2@%s" % A not in aors, "a removed user's binding survived: %s" % aors)
        check("sip:mon1@%s" % A in aors, "a's mon1 lost its binding in the reload: %s" % aors)
        got = mon_c.ask("REGISTER", "sip:" + C)
        _check_statuses(got, (403, 403), "c's mon1 after SIGHUP")
        got = mon2_a.ask("REGISTER", "sip:" + A)
        _check_statuses(got, (401, 401), "a's removed mon2 after SIGHUP")
        _secrets_absent(env, {A: HOUSES[A], C: C_USERS})
    finally:
        mon_c.close()
        mon2_a.close()
        mon1_a.close()
