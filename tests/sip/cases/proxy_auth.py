"""portier-proxy's digest authentication: realms, digest uri, qop, brute force and bans,
stateless challenges, nonces bound to their host (RFC 3261 section 22, RFC 8760)."""

import hashlib
import json
import os
import re
import time

from portier_sip.base import (ATTACKER, DOMAIN, GROUP, LOCAL, TestFailure, USERS, WRONG_PASSWORD,
                              check, log)
from portier_sip.checks import (contact_hostport, has_binding, register_devices, wait_all,
                                wait_auth_failure_lines)
from portier_sip.registry import case
from portier_sip.sipmsg import PyUA, digest_auth, find_challenge


# A user of another domain in the users file, with its own password.
OTHER_DOMAIN_USER = ("alice@other.example", "Other-alice-Pw-6620")
# A user stored only as a SHA-256 HA1 (of "sha2only:home.example:<password>").
SHA2_USER = ("sha2only", "Sha2only-Pw-8871")


def _with_config(env, auth="", users=""):
    """Adds keys to [module::Authentication] and lines to the users file of every
    proxy start of this case."""
    write = env.write_config

    def write_config():
        path = write()
        with open(path) as f:
            text = f.read()
        text = text.replace("nonce-expires = 3600\n", "nonce-expires = 3600\n" + auth)
        with open(path, "w") as f:
            f.write(text)
        if users:
            with open(os.path.join(env.dir, "users.conf"), "a") as f:
                f.write(users)
        return path
    env.write_config = write_config


class _RawUA(PyUA):
    """A PyUA of `host` (the attacker's 127.0.0.2 or a resident's 127.0.0.1)
    that builds its own requests: parsed status lines and headers back."""

    def __init__(self, env, host):
        PyUA.__init__(self, "raw", host, 0, env.ports.proxy)
        self.env = env
        self.host = host
        self.cseq = 0
        self.call_id = "raw-%d-%s@%s" % (self.port, int(time.time() * 1e6), host)
        env.raw_uas = getattr(env, "raw_uas", []) + [self]

    def request(self, method, ruri, user, auth=None, auth_header="Authorization", wait=1.0,
                new_call=False, expect_reply=True):
        """Sends one request, returns the responses as (status, headers dict of
        lists, first line) in order; waits at most `wait` (less once a final
        response came)."""
        self.cseq += 1
        call_id = self.call_id + ("-%d" % self.cseq if new_call else "")
        lines = ["%s %s SIP/2.0" % (method, ruri),
                 "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-raw-%d-%d;rport"
                 % (self.host, self.port, self.port, self.cseq),
                 "From: <sip:%s@%s>;tag=raw%d" % (user, DOMAIN, self.port),
                 "To: <%s>" % (("sip:%s@%s" % (user, DOMAIN)) if method == "REGISTER"
                               else ruri),
                 "Call-ID: %s" % call_id,
                 "CSeq: %d %s" % (self.cseq, method),
                 "Contact: <sip:%s@%s:%d>" % (user, self.host, self.port),
                 "Max-Forwards: 70"]
        if method == "REGISTER":
            lines.append("Expires: 600")
        if auth:
            lines.append("%s: %s" % (auth_header, auth))
        self.send("\r\n".join(lines))  # with Content-Length: 0
        out = []
        end = time.time() + wait
        while time.time() < end and not (out and out[-1][0] >= 200):
            self._read(end, first_only=True)
            got, self.pending = self.pending, []
            for m in got:
                # Only this request's answers (an earlier one's may still arrive).
                if m.status is None or m.cseq()[0] != self.cseq:
                    continue
                hdrs = {}
                for name, value in m.headers:
                    hdrs.setdefault(name.lower(), []).append(value)
                out.append((m.status, hdrs, m.first))
        if expect_reply:
            check(out, "%s from %s: no response" % (method, self.host))
        return out

    def challenge(self, user, method="REGISTER", ruri="sip:" + DOMAIN):
        """A fresh MD5 challenge, parsed (RFC 8760: one challenge per algorithm)."""
        res = self.request(method, ruri, user)
        status, hdrs, first = res[-1]
        name = "www-authenticate" if method == "REGISTER" else "proxy-authenticate"
        check(status in (401, 407), "%s without credentials got %s, expected a challenge"
              % (method, first))
        ch = find_challenge(hdrs.get(name, []))
        check(ch and "nonce" in ch, "no MD5 challenge in %s" % hdrs.get(name))
        return ch


def _bindings_from(env, user, host):
    return [r for r in env.bindings_for(user) if contact_hostport(r.get("contact"))[1] == host]


def _auth_lines(env, what="auth failure: src=%s" % ATTACKER):
    return [l for l in env.proxy_log_text().splitlines() if what in l]


@case
def case_auth_cross_domain_user(env):
    """Issue 11 digest item 1, issue 14: alice@other.example (its own password, in
    the users file) answers the challenge for realm home.example from 127.0.0.2: she
    proves who she is, and is refused as not alice@home.example (403, RFC 3261
    section 10.3 step 4: the full user@domain must match the identity)."""
    _with_config(env, users="%s clrtxt:%s ;\n" % OTHER_DOMAIN_USER)
    env.start_proxy()
    attacker = _RawUA(env, ATTACKER)
    ch = attacker.challenge("alice")
    username, password = OTHER_DOMAIN_USER
    res = attacker.request("REGISTER", "sip:" + DOMAIN, "alice",
                           auth=digest_auth(username, password, ch, "REGISTER", "sip:" + DOMAIN))
    log("REGISTER alice@%s with username=%s -> %s" % (DOMAIN, username, res[-1][2]))
    check(res[-1][0] == 403, "alice@other.example's password for alice@%s: %s, expected 403"
          % (DOMAIN, res[-1][2]))
    check(not _bindings_from(env, "alice", ATTACKER),
          "a binding of alice to the attacker exists: %s" % env.bindings_for("alice"))
    # The real alice, from 127.0.0.1, still registers.
    env.register("alice", 0).expect_ok()
    check(has_binding(env.bindings_for("alice"), "alice", env.ports.sip(0)),
          "alice (127.0.0.1) could not register afterwards")
    env.assert_no_secrets()
    check(password not in env.proxy_log_text(), "the other domain's password is in the log")


@case
def case_auth_uri_mismatch(env):
    """Issue 11 digest item 2, RFC 2617 section 3.2.2.5: credentials whose digest
    uri is not the Request-URI get 400, even with the right password; the same
    URI spelled otherwise (RFC 3261 section 19.1.4: host case) is accepted."""
    env.start_proxy()
    ua = _RawUA(env, ATTACKER)
    ch = ua.challenge("alice")
    other = "sip:door@" + DOMAIN
    res = ua.request("REGISTER", "sip:" + DOMAIN, "alice",
                     auth=digest_auth("alice", USERS["alice"], ch, "REGISTER", other))
    log("REGISTER sip:%s with uri=%s -> %s" % (DOMAIN, other, res[-1][2]))
    check(res[-1][0] == 400, "digest uri %s for Request-URI sip:%s: %s, expected 400"
          % (other, DOMAIN, res[-1][2]))
    check(not _bindings_from(env, "alice", ATTACKER), "the mismatched credentials registered")
    # Same URI, other spelling: compared as URIs, not bytes.
    ua2 = _RawUA(env, LOCAL)
    ch = ua2.challenge("alice")
    res = ua2.request("REGISTER", "sip:" + DOMAIN, "alice",
                      auth=digest_auth("alice", USERS["alice"], ch, "REGISTER",
                                       "sip:" + DOMAIN.upper()))
    check(res[-1][0] == 200, "digest uri sip:%s for sip:%s: %s, expected 200"
          % (DOMAIN.upper(), DOMAIN, res[-1][2]))
    # An INVITE too: the credentials of a call to the door do not open another target.
    ch = ua2.challenge("mon1", "INVITE", "sip:%s@%s" % (GROUP, DOMAIN))
    res = ua2.request("INVITE", "sip:%s@%s" % (GROUP, DOMAIN), "mon1",
                      auth=digest_auth("mon1", USERS["mon1"], ch, "INVITE", other),
                      auth_header="Proxy-Authorization")
    log("INVITE sip:%s@%s with uri=%s -> %s" % (GROUP, DOMAIN, other, res[-1][2]))
    check(res[-1][0] == 400, "INVITE with digest uri %s: %s, expected 400" % (other, res[-1][2]))
    env.assert_no_secrets()


@case
def case_auth_no_qop_refused(env):
    """Issue 11 digest item 3: an RFC 2069 style response (no qop, so no nc) with
    the right password is refused: it could be replayed for the nonce's lifetime
    with another Contact (RFC 7616 section 5.5)."""
    env.start_proxy()
    ua = _RawUA(env, ATTACKER)
    ch = ua.challenge("alice")
    auth = digest_auth("alice", USERS["alice"], ch, "REGISTER", "sip:" + DOMAIN, qop="")
    res = ua.request("REGISTER", "sip:" + DOMAIN, "alice", auth=auth)
    log("REGISTER without qop -> %s" % res[-1][2])
    check(res[-1][0] == 401, "a response without qop got %s, expected 401" % res[-1][2])
    check(not env.bindings_for("alice"), "a response without qop registered alice")
    lines = _auth_lines(env)
    check(lines and "reason=no-qop" in lines[-1], "no 'reason=no-qop' failure line: %s" % lines)
    env.assert_no_secrets()


@case
def case_auth_brute_force(env):
    """Issue 11 digest item 4: 300 wrong guesses from 127.0.0.2 against one nonce.
    The nonce is spent by the first; the right password with that nonce is then
    refused (from 127.0.0.2 and from 127.0.0.3); 127.0.0.2 is banned (no answer),
    the resident alice on 127.0.0.1 still registers; the log stays bounded."""
    env.start_proxy()
    attacker = _RawUA(env, ATTACKER)
    ch = attacker.challenge("alice")
    statuses = {}
    for i in range(300):
        # Once banned, nothing comes back: the rest go out without waiting.
        res = attacker.request("REGISTER", "sip:" + DOMAIN, "alice",
                               wait=0.01 if statuses.get(None, 0) >= 3 else 0.3,
                               auth=digest_auth("alice", "guess-%d" % i, ch, "REGISTER",
                                                "sip:" + DOMAIN, nc=i + 1),
                               expect_reply=False)
        key = res[-1][0] if res else None
        statuses[key] = statuses.get(key, 0) + 1
    log("300 guesses against one nonce: answers %s" % statuses)
    check(not statuses.get(200), "a wrong guess registered")
    right = digest_auth("alice", USERS["alice"], ch, "REGISTER", "sip:" + DOMAIN, nc=1000)
    # The same nonce with the right password from a third address: spent.
    third = _RawUA(env, "127.0.0.3")
    res = third.request("REGISTER", "sip:" + DOMAIN, "alice", auth=right)
    log("the right password with the guessed-at nonce, from %s -> %s" % (third.host, res[-1][2]))
    check(res[-1][0] == 401, "the nonce that saw wrong guesses took the right password: %s"
          % res[-1][2])
    check(not env.bindings_for("alice"), "alice got registered with the spent nonce")
    check(statuses.get(None), "127.0.0.2 is still answered after %d guesses" % sum(statuses.values()))
    res = attacker.request("REGISTER", "sip:" + DOMAIN, "alice", auth=right, wait=0.7,
                           expect_reply=False)
    check(not res, "banned 127.0.0.2 got an answer: %s" % [r[2] for r in res])
    # The resident, with a fresh challenge, while 127.0.0.2 is banned.
    env.register("alice", 0).expect_ok()
    check(has_binding(env.bindings_for("alice"), "alice", env.ports.sip(0)),
          "alice (127.0.0.1) could not register while 127.0.0.2 is banned")
    bans = env.ctl("bans").get("bans")
    check([b for b in bans if b.get("address") == ATTACKER],
          "portierctl bans does not list %s: %s" % (ATTACKER, bans))
    # Bounded log: a few failure lines, a ban line; the rest counted.
    lines = _auth_lines(env)
    log("%d 'auth failure' lines for 127.0.0.2; ban line: %s" % (
        len(lines), _auth_lines(env, "auth: %s banned" % ATTACKER)[:1]))
    check(1 <= len(lines) <= 5, "%d failure lines for one guesser (expected 1..5)" % len(lines))
    check(_auth_lines(env, "auth: %s banned" % ATTACKER), "no ban line in the log")
    # The failures past the log budget are summed up once (housekeeping, each second).
    deadline = time.time() + 3
    while not _auth_lines(env, "more failures from %s suppressed" % ATTACKER) \
            and time.time() < deadline:
        time.sleep(0.2)
    summary = _auth_lines(env, "more failures from %s suppressed" % ATTACKER)
    log("summary: %s" % (summary[0].split("warning: ")[-1] if summary else None))
    check(len(summary) == 1, "expected one 'N more failures from %s suppressed' line: %s"
          % (ATTACKER, summary))
    env.assert_no_secrets()


@case
def case_auth_bans_control(env):
    """Issue 11 digest item 4: portierctl bans lists a banned source, unban
    ADDRESS and unban all lift bans (JSON replies); a lifted source is answered
    again. max-failures-per-source = 3."""
    _with_config(env, auth="max-failures-per-source = 3\n")
    env.start_proxy()
    check(env.ctl("bans") == {"bans": []}, "bans not empty at start: %s" % env.ctl("bans"))

    def ban(ua):
        for i in range(6):
            ch = ua.challenge("mon1")
            ua.request("REGISTER", "sip:" + DOMAIN, "mon1", wait=0.3, expect_reply=False,
                       auth=digest_auth("mon1", WRONG_PASSWORD, ch, "REGISTER", "sip:" + DOMAIN))
            if any(b.get("address") == ua.host for b in env.ctl("bans")["bans"]):
                return
            time.sleep(1.1)  # the back-off after a failure (failure-backoff = 1, doubling)
        raise TestFailure("%s not banned after 6 wrong answers: %s" % (ua.host, env.ctl("bans")))

    attacker = _RawUA(env, ATTACKER)
    ban(attacker)
    bans = env.ctl("bans")["bans"]
    log("bans: %s" % bans)
    check(len(bans) == 1 and bans[0]["address"] == ATTACKER and bans[0]["seconds_left"] > 0,
          "bans: %s" % bans)
    check(not attacker.request("OPTIONS", "sip:" + DOMAIN, "x", wait=0.5, expect_reply=False),
          "banned %s is answered" % ATTACKER)
    check(env.ctl("stats").get("banned") == 1, "stats: %s" % env.ctl("stats"))
    r = env.ctl_raw("unban", "127.0.0.9")
    check(r and "error" in json.loads(r[1]), "unban of an address not banned: %r" % (r,))
    check(env.ctl("unban", ATTACKER) == {"ok": True, "unbanned": ATTACKER}, "unban failed")
    check(env.ctl("bans") == {"bans": []}, "bans after unban: %s" % env.ctl("bans"))
    attacker.challenge("mon1")  # answered again
    ban(attacker)
    res = env.ctl("unban", "all")
    check(res.get("ok") is True and res.get("unbanned") == 1, "unban all: %s" % res)
    check(env.ctl("bans") == {"bans": []}, "bans after unban all: %s" % env.ctl("bans"))
    attacker.challenge("mon1")
    env.assert_no_secrets()


@case
def case_auth_sha256_only_user(env):
    """Issue 11 digest item 5: a user stored only as sha256: answers the MD5
    challenge (sipp speaks MD5 only): refused, and the log says why and what to do,
    without any secret."""
    user, password = SHA2_USER
    ha1 = hashlib.sha256(("%s:%s:%s" % (user, DOMAIN, password)).encode()).hexdigest()
    _with_config(env, users="%s@%s sha256:%s ;\n" % (user, DOMAIN, ha1))
    env.start_proxy()
    s = env.register(user, 0, password=password, scenario="register_badauth.xml")
    s.expect_ok()
    check(not env.registrations(), "registered: %s" % env.registrations())
    lines = wait_auth_failure_lines(env, 1)
    log("failure line: %s" % (lines[-1].strip() if lines else None))
    check(lines and "reason=no-secret" in lines[-1], "no reason=no-secret line: %s" % lines)
    check("clrtxt" in lines[-1] and "available-algorithms" in lines[-1],
          "the no-secret line does not say what to do: %s" % lines[-1])
    text = env.proxy_log_text()
    check(password not in text and ha1 not in text, "a secret of %s is in the log" % user)
    env.assert_no_secrets()


def _proxy_rss_kb(env):
    with open("/proc/%d/status" % env.proxy.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@case
def case_auth_invite_flood(env):
    """Issue 11, proxy availability: 3,000 unauthenticated INVITEs from 127.0.0.2
    at 1,000/s (sipp, never ACKing the 407). The 407s are stateless: the proxy's
    server transactions stay few and its RSS grows little; meanwhile a device on
    127.0.0.1 registers and a call to it is answered. Then a guesser from
    127.0.0.2 gets banned."""
    env.start_proxy()
    rss0 = _proxy_rss_kb(env)
    flood = env.sipp("flood", "invite_flood.xml", 5, [["door", GROUP]] * 3000, timeout=30,
                     extra=["-i", ATTACKER, "-r", "1000", "-l", "3000", "-default_behaviors",
                            "-bye,-abortunexp"])
    time.sleep(1.0)
    # During the flood: a device registers and a call is answered.
    register_devices(env, [("mon1", 0), ("door", 3)])
    mon1 = env.uas("mon1", "uas_early_answer.xml", 0)
    door = env.door("door", "door_call.xml", GROUP, 4)
    peak_irqs = 0
    deadline = time.time() + 30
    while flood.proc.running() and time.time() < deadline:
        peak_irqs = max(peak_irqs, env.ctl("stats").get("server_transactions", 0))
        time.sleep(0.2)
    flood.wait()
    wait_all([door, mon1])
    sent = len(flood.sent(lambda m: m.method == "INVITE"))
    got = len(flood.received(lambda m: m.status == 407))
    rss1 = _proxy_rss_kb(env)
    log("flood: %d INVITEs sent, %d 407 back; peak server transactions %d; RSS %d -> %d kB"
        % (sent, got, peak_irqs, rss0, rss1))
    check(sent >= 2000, "sipp sent only %d INVITEs" % sent)
    check(got >= sent * 0.9, "only %d of %d INVITEs were challenged" % (got, sent))
    ok = door.received(lambda m: m.status == 200 and m.cseq_method() == "INVITE")
    check(ok, "the call during the flood was not answered")
    # Before: one nta transaction per INVITE, kept 32 s (thousands here).
    check(peak_irqs < 50, "%d server transactions during the flood (stateless 407s expected)"
          % peak_irqs)
    check(rss1 - rss0 < 20 * 1024, "RSS grew by %d kB during the flood" % (rss1 - rss0))
    # Then a source that keeps failing is banned and no longer answered.
    guess = env.sipp("guess", "invite_badauth.xml", 6, [["door", WRONG_PASSWORD, GROUP]] * 40,
                     timeout=8, auth_uri="%s@%s" % (GROUP, DOMAIN),
                     extra=["-i", ATTACKER, "-r", "20", "-default_behaviors", "-bye,-abortunexp"])
    guess.wait()
    bans = env.ctl("bans")["bans"]
    log("after the guesser: bans %s" % bans)
    check(any(b.get("address") == ATTACKER for b in bans), "guesser %s not banned: %s"
          % (ATTACKER, bans))
    # The resident still registers.
    env.register("mon1", 0).expect_ok()
    env.wait_no_calls()


@case
def case_auth_spoofed_source_no_ban(env):
    """Issue 11, bans a spoofed address cannot trigger: the attacker on 127.0.0.2
    gets a challenge, then sends a wrong answer with its nonce from 127.0.0.1 (a
    socket bound to 127.0.0.1, another port: the honest stand-in for a UDP packet
    with a forged source), 20 times. Each nonce was issued to 127.0.0.2, so none of
    these counts against 127.0.0.1 (half of them also carry a wrong digest uri): it
    is not banned (portierctl bans), no fail2ban-style 'auth failure:
    src=127.0.0.1' line is written; nor do 10 more while the resident, after three
    typos of its own, is in back-off; and alice on 127.0.0.1 registers. The same wrong answers with nonces issued to
    127.0.0.1 itself do get it banned (RFC 7616 section 5.5: a nonce tied to the
    client's address). max-failures-per-source = 5."""
    _with_config(env, auth="max-failures-per-source = 5\n")
    env.start_proxy()
    attacker = _RawUA(env, ATTACKER)
    spoofer = _RawUA(env, LOCAL)
    answers = {}
    for i in range(20):
        ch = attacker.challenge("alice")
        # Every other one with a digest uri that is not the Request-URI: with the
        # resident's own nonce that would be a 400 and a failure (RFC 2617 3.2.2.5).
        uri = "sip:" + DOMAIN if i % 2 else "sip:door@" + DOMAIN
        res = spoofer.request("REGISTER", "sip:" + DOMAIN, "alice", wait=0.5, expect_reply=False,
                              auth=digest_auth("alice", "guess-%d" % i, ch, "REGISTER", uri))
        key = res[-1][0] if res else None
        answers[key] = answers.get(key, 0) + 1
    log("20 wrong answers from %s:%d with nonces issued to %s: answers %s"
        % (LOCAL, spoofer.port, ATTACKER, answers))
    bans = env.ctl("bans")["bans"]
    check(not [b for b in bans if b.get("address") == LOCAL],
          "wrong answers with %s's nonces got %s banned: %s" % (ATTACKER, LOCAL, bans))
    check(answers == {401: 20}, "answers to the spoofed responses: %s, expected a fresh "
          "challenge (401) each time" % answers)
    check(not _auth_lines(env, "auth failure: src=%s " % LOCAL),
          "failure lines against %s (fail2ban would ban it): %s"
          % (LOCAL, _auth_lines(env, "auth failure: src=%s " % LOCAL)[:2]))
    check(_auth_lines(env, "not counted against %s" % LOCAL),
          "no log line about the responses whose nonce was not issued to %s" % LOCAL)
    check(not env.bindings_for("alice"), "a wrong answer registered alice")

    # The resident mistypes three times (its own nonces): 127.0.0.1 is in back-off,
    # where each attempt with credentials counts. The forged ones still do not.
    own = _RawUA(env, LOCAL)

    def own_wrong_answer(i):
        res = own.request("REGISTER", "sip:" + DOMAIN, "alice", wait=0.5, expect_reply=False)
        if not res:
            return None
        ch = find_challenge(res[-1][1]["www-authenticate"])
        res = own.request("REGISTER", "sip:" + DOMAIN, "alice", wait=0.5, expect_reply=False,
                          auth=digest_auth("alice", "typo-%d" % i, ch, "REGISTER", "sip:" + DOMAIN))
        return res[-1][0] if res else 0

    typos = [own_wrong_answer(i) for i in range(3)]
    answers = {}
    for i in range(10):
        ch = attacker.challenge("alice")
        res = spoofer.request("REGISTER", "sip:" + DOMAIN, "alice", wait=0.5, expect_reply=False,
                              auth=digest_auth("alice", "guess-%d" % i, ch, "REGISTER",
                                           "sip:" + DOMAIN))
        key = res[-1][0] if res else None
        answers[key] = answers.get(key, 0) + 1
    log("3 typos of the resident -> %s; then 10 forged answers during its back-off -> %s"
        % (typos, answers))
    bans = env.ctl("bans")["bans"]
    check(not [b for b in bans if b.get("address") == LOCAL],
          "forged answers during the resident's back-off got %s banned: %s" % (LOCAL, bans))
    check(answers == {401: 10}, "answers to the forged responses during the back-off: %s, "
          "expected a fresh challenge (401) each time" % answers)
    time.sleep(1.5)  # the back-off after the third failure (failure-backoff = 1)
    env.register("alice", 0).expect_ok()
    check(has_binding(env.bindings_for("alice"), "alice", env.ports.sip(0)),
          "the resident alice (127.0.0.1) could not register after the spoofed failures")

    # The same wrong answers, each with a nonce issued to 127.0.0.1: its own failures.
    banned = False
    for i in range(12):
        if own_wrong_answer(i) is None:
            banned = True
            break
    bans = env.ctl("bans")["bans"]
    log("after wrong answers with its own nonces: bans %s" % bans)
    check(banned and [b for b in bans if b.get("address") == LOCAL],
          "%s not banned after wrong answers with nonces issued to it: %s" % (LOCAL, bans))
    check(_auth_lines(env, "auth failure: src=%s " % LOCAL), "no failure line for %s" % LOCAL)
    # Lifted by hand, the household is served again.
    check(env.ctl("unban", LOCAL).get("ok") is True, "unban %s failed" % LOCAL)
    env.register("alice", 0).expect_ok()
    env.assert_no_secrets()


@case
def case_auth_replay_log_bounded(env):
    """Issue 11, log budget: a REGISTER whose nonce-count was used already (a UDP
    retransmission after a lost 200, or a replay; RFC 7616 section 3.4) gets 401
    with stale=true and an info line; 30 of them from 127.0.0.1 write at most
    failure-log-lines (5) such lines, count as no failure (127.0.0.1 is not
    banned, max-failures-per-source = 5), and leave the binding in place."""
    _with_config(env, auth="max-failures-per-source = 5\n")
    env.start_proxy()
    ua = _RawUA(env, LOCAL)
    ch = ua.challenge("alice")
    auth = digest_auth("alice", USERS["alice"], ch, "REGISTER", "sip:" + DOMAIN)
    res = ua.request("REGISTER", "sip:" + DOMAIN, "alice", auth=auth)
    check(res[-1][0] == 200, "the first answer got %s, expected 200" % res[-1][2])
    answers = {}
    stale = 0
    for _ in range(30):
        res = ua.request("REGISTER", "sip:" + DOMAIN, "alice", auth=auth, wait=0.5,
                         expect_reply=False)
        key = res[-1][0] if res else None
        answers[key] = answers.get(key, 0) + 1
        if res and any(re.search(r"stale\s*=\s*true", v, re.I)
                       for v in res[-1][1].get("www-authenticate", [])):
            stale += 1
    lines = _auth_lines(env, "src=%s user=\"alice\" reused a nonce-count" % LOCAL)
    log("30 replays of an accepted nonce-count: answers %s (%d with stale=true), %d log lines"
        % (answers, stale, len(lines)))
    check(answers == {401: 30} and stale == 30,
          "replays answered %s, %d with stale=true; expected 401 stale=true each" % (answers, stale))
    check(1 <= len(lines) <= 5, "%d 'reused a nonce-count' lines for 30 replays (expected 1..5)"
          % len(lines))
    bans = env.ctl("bans")["bans"]
    check(not bans, "replays of a right answer banned someone: %s" % bans)
    check(_bindings_from(env, "alice", LOCAL), "the binding is gone after the replays")
    env.register("alice", 0).expect_ok()
    env.assert_no_secrets()
