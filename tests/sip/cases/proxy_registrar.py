"""portier-proxy's registrar: bindings, expiry, bad input, durable registrations
(restart, crash) (RFC 3261 section 10)."""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

from portier_sip.base import ATTACKER, DOMAIN, LOCAL, TestFailure, WRONG_PASSWORD, check, log
from portier_sip.checks import (assert_proxied, contact_hostport, drain_socket, final_response,
                                has_binding, register_devices, request_uri, wait_all,
                                wait_auth_failure_lines)
from portier_sip.register import sip_register
from portier_sip.registry import case
from portier_sip.sipmsg import header_value, status_of, udp_exchange


@case
def case_register_auth(env):
    """RFC 3261 section 10 + 22: REGISTER, 401, REGISTER with MD5 credentials,
    200; the binding is listed; REGISTER Expires: 0 removes it (10.2.2)."""
    env.start_proxy()
    port = env.ports.sip(0)
    s = env.register("alice", 0, 3600)
    s.expect_ok()
    ok = s.received(lambda m: m.status == 200)[-1]
    check(any(contact_hostport(c)[2] == port for c in ok.hdrs("Contact")),
          "200 to REGISTER does not list the new binding (RFC 3261 10.3 step 8): Contact=%s"
          % ok.hdrs("Contact"))
    regs = env.bindings_for("alice")
    b = has_binding(regs, "alice", port)
    check(b, "registrations does not list alice's contact port %d: %s" % (port, regs))
    log("listed: %s" % json.dumps(b))
    check(isinstance(b.get("expires"), (int, float)) and 3500 < b["expires"] <= 3600,
          "expires %r not within (3500, 3600]" % b.get("expires"))

    # Replay the accepted REGISTER as is (same nonce, same nc, same response;
    # new branch and CSeq): it must be challenged again, not accepted
    # (RFC 7616 section 3.4 nonce-count, section 5 replay attacks).
    sent = [m for m in s.messages() if m.direction == "sent" and m.method == "REGISTER"][-1]
    check(sent.hdr("Authorization"), "the second REGISTER carries no Authorization")
    text = re.sub(r"branch=[^\s;,]+", "branch=z9hG4bK-replay-1", sent.text)
    text = re.sub(r"(?m)^CSeq: *\d+", "CSeq: 1000", text)
    head, _, body = text.partition("\n\n")
    replies = udp_exchange(env.ports.proxy,
                           (head.replace("\n", "\r\n") + "\r\n\r\n" + body).encode(),
                           wait=0.7, src_port=port)
    firsts = [r.split(b"\r\n", 1)[0].decode("latin-1", "replace") for r in replies]
    log("replayed REGISTER -> %s" % (firsts or "(no reply)"))
    check(firsts and firsts[0].startswith("SIP/2.0 401"),
          "replayed REGISTER (same nonce and nc) answered %s, expected 401" % (firsts or "nothing"))
    env.cseq[("alice", port)] = 1000

    s = env.register("alice", 0, 0)
    s.expect_ok()
    ok = s.received(lambda m: m.status == 200)[-1]
    check(not any(contact_hostport(c)[2] == port for c in ok.hdrs("Contact")),
          "200 to REGISTER Expires: 0 still lists the binding: %s" % ok.hdrs("Contact"))
    regs = env.bindings_for("alice")
    check(not has_binding(regs, "alice", port),
          "alice's binding still listed after Expires: 0: %s" % regs)
    env.assert_no_secrets()


@case
def case_register_expires_limits(env):
    """min-expires / max-expires and wildcard removal: Expires below the
    minimum gets 423 with Min-Expires (RFC 3261 section 10.3 step 7); above the
    maximum is shortened; Contact: * with Expires: 0 removes every binding of
    the AOR (section 10.2.2, 10.3 step 6)."""
    env.start_proxy()
    s = env.register("alice", 0, 30, scenario="register_too_brief.xml")
    s.expect_ok()
    r423 = s.received(lambda m: m.status == 423)[-1]
    log("Expires: 30 -> %s, Min-Expires: %s" % (r423.first, r423.hdr("Min-Expires")))
    check(r423.hdr("Min-Expires") == "60",
          "423 carries Min-Expires %r, expected 60 (RFC 3261 section 20.23)"
          % r423.hdr("Min-Expires"))
    check(not env.bindings_for("alice"), "a binding was created with Expires: 30")

    s = env.register("alice", 0, 7200)
    s.expect_ok()
    b = has_binding(env.bindings_for("alice"), "alice", env.ports.sip(0))
    check(b, "no binding after REGISTER Expires: 7200")
    log("Expires: 7200 -> listed expires %s" % b.get("expires"))
    check(isinstance(b.get("expires"), (int, float)) and 3500 < b["expires"] <= 3600,
          "Expires: 7200 gave a binding of %r s, expected at most max-expires 3600"
          % b.get("expires"))
    ok = s.received(lambda m: m.status == 200)[-1]
    for c in ok.hdrs("Contact"):
        m = re.search(r"expires\s*=\s*(\d+)", c, re.I)
        if m and contact_hostport(c)[2] == env.ports.sip(0):
            check(int(m.group(1)) <= 3600, "200 lists expires=%s > 3600" % m.group(1))

    s = env.register("alice", 1, 3600)
    s.expect_ok()
    check(len(env.bindings_for("alice")) == 2, "expected two bindings for alice: %s"
          % env.bindings_for("alice"))
    s = env.register("alice", 0, 0, scenario="register_wildcard.xml")
    s.expect_ok()
    left = env.bindings_for("alice")
    check(not left, "Contact: * Expires: 0 left bindings: %s" % left)
    env.assert_no_secrets()


def _one_auth_failure_line(env, when):
    """Exactly one 'auth failure' line in the proxy log, naming src=127.0.0.1."""
    lines = wait_auth_failure_lines(env, 1)
    good = [l for l in lines if "src=%s" % LOCAL in l]
    check(len(lines) == 1 and len(good) == 1,
          "expected exactly one 'auth failure' line with src=%s %s, got %d:\n%s"
          % (LOCAL, when, len(lines), "\n".join(lines)))
    log("auth failure line: %s" % good[0].strip())


@case
def case_register_wrong_password(env):
    """Wrong password: a fresh 401 (scenario), no binding, one auth-failure log
    line naming the source address."""
    env.start_proxy()
    s = env.register("alice", 0, 3600, password=WRONG_PASSWORD, scenario="register_badauth.xml")
    s.expect_ok()
    check(not env.bindings_for("alice"), "a binding was created with a wrong password")
    check(not env.registrations(), "registrations not empty: %s" % env.registrations())
    _one_auth_failure_line(env, "in the proxy log")
    env.assert_no_secrets()


_NONCE = re.compile(r'(nonce\s*=\s*)"[^"]*"', re.I)


def _challenge_shape(msg):
    """Status line + header names + normalized WWW-Authenticate values."""
    names = [n.lower() for n, _ in msg.headers]
    www = [_NONCE.sub(r'\1"<nonce>"', v) for v in msg.hdrs("WWW-Authenticate")]
    return {"status": "%s %s" % (msg.status, msg.reason), "headers": names, "www": www}


@case
def case_register_unknown_user(env):
    """Unknown user: same as a wrong password, and the challenges for an
    unknown and a known user have the same shape (no user enumeration)."""
    env.start_proxy()
    unknown = env.register("mallory", 0, 3600, password=WRONG_PASSWORD,
                           scenario="register_badauth.xml")
    unknown.expect_ok()
    check(not env.registrations(), "registrations not empty: %s" % env.registrations())
    _one_auth_failure_line(env, "after the unknown user")

    known = env.register("alice", 1, 3600, password=WRONG_PASSWORD,
                         scenario="register_badauth.xml")
    known.expect_ok()
    check(not env.registrations(), "registrations not empty: %s" % env.registrations())

    u401 = unknown.received(lambda m: m.status == 401)
    k401 = known.received(lambda m: m.status == 401)
    check(len(u401) >= 2 and len(k401) >= 2, "expected two 401 in each run")
    for what, u, k in (("first 401", u401[0], k401[0]), ("401 after credentials", u401[-1], k401[-1])):
        su, sk = _challenge_shape(u), _challenge_shape(k)
        log("%s, unknown user: %s" % (what, json.dumps(su["www"])))
        log("%s, known user:   %s" % (what, json.dumps(sk["www"])))
        check(su["www"], "%s has no WWW-Authenticate" % what)
        check(su == sk, "%s differs between unknown and known user:\n unknown: %s\n known:   %s"
              % (what, json.dumps(su), json.dumps(sk)))
    algos = [re.search(r"algorithm\s*=\s*\"?([\w-]+)", v, re.I) for v in su["www"]]
    algos = [a.group(1).upper() for a in algos if a]
    check("MD5" in algos, "no MD5 challenge in %s" % su["www"])
    env.assert_no_secrets()


@case
def case_restart_persistence(env):
    """Bindings survive a restart (state-directory): register, SIGTERM, start
    again, call the device."""
    env.start_proxy()
    register_devices(env, [("mon1", 0)])
    mon1 = env.uas("mon1", "uas_early_answer.xml", 0, timeout=40)
    before = has_binding(env.bindings_for("mon1"), "mon1", env.ports.sip(0))
    # Let the clock run, so that a restart that re-arms the full Expires (a
    # relative time stored instead of an absolute one) shows.
    time.sleep(2.5)
    env.stop_proxy(expect_clean=True)
    env.start_proxy()
    b = has_binding(env.bindings_for("mon1"), "mon1", env.ports.sip(0))
    check(b, "mon1's binding is gone after restart: %s" % env.registrations())
    log("before restart: %s" % json.dumps(before))
    log("after restart:  %s" % json.dumps(b))
    check(b.get("expires", 0) <= before.get("expires", 0) - 2,
          "expires went from %s to %s across a restart 2.5 s later: the binding's lifetime "
          "was re-armed" % (before.get("expires"), b.get("expires")))
    door = env.door("door", "door_call.xml", "mon1", 4)
    wait_all([door, mon1])
    env.wait_no_calls()
    env.assert_no_secrets()


@case
def case_binding_expiry(env):
    """RFC 3261 section 10.2.1 / 10.3: a binding registered with Expires: 2
    (min-expires = 1) is listed, then disappears by itself; afterwards an
    INVITE to that user gets 480 (known user, no binding)."""
    env.min_expires = 1
    env.start_proxy()
    port = env.ports.sip(0)
    s = env.register("mon1", 0, 2)
    s.expect_ok()
    t_reg = time.time()
    ok = s.received(lambda m: m.status == 200)[-1]
    log("200 to REGISTER Expires: 2: Contact %s, Expires %s" % (ok.hdrs("Contact"), ok.hdr("Expires")))
    b = has_binding(env.bindings_for("mon1"), "mon1", port)
    check(b, "mon1's binding (Expires: 2) is not listed right after the 200: %s"
          % env.registrations())
    log("listed: %s" % json.dumps(b))
    check(isinstance(b.get("expires"), (int, float)) and 0 < b["expires"] <= 2,
          "binding listed with expires %r, expected at most the 2 s asked for" % b.get("expires"))

    # Bounded poll: the binding must be gone from the listing (RFC 3261
    # section 10.2.1: it lasts Expires seconds), and from the store, within 6 s.
    # portierctl stats counts stored bindings, expired or not: an expired
    # binding that stays there is never purged (memory, persisted state).
    bound = 6.0
    gone_at = purged_at = None
    while time.time() - t_reg < bound:
        now = time.time()
        if gone_at is None and not has_binding(env.bindings_for("mon1"), "mon1", port):
            gone_at = now
        if purged_at is None and env.ctl("stats").get("bindings") == 0:
            purged_at = now
        if gone_at is not None and purged_at is not None:
            break
        time.sleep(0.1)
    check(gone_at is not None, "mon1's binding (Expires: 2) still listed %.0f s after it was "
          "registered: %s" % (bound, env.registrations()))
    log("binding gone from the listing %.2f s after the 200" % (gone_at - t_reg))
    stats = env.ctl("stats")
    if purged_at is not None:
        log("binding purged from the store %.2f s after the 200" % (purged_at - t_reg))
    else:
        log("binding NOT purged from the store %.0f s after the 200: stats %s"
            % (bound, json.dumps(stats)))

    # Nothing may be sent to the expired contact: a plain socket takes its port.
    sentinel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sentinel.bind((LOCAL, port))
    sentinel.setblocking(False)
    try:
        door = env.door("door", "door_reject.xml", "mon1", 4, timeout=15)
        door.wait()
        time.sleep(0.2)
        leaked = drain_socket(sentinel)
    finally:
        sentinel.close()
    door.expect_ok()
    fin = final_response(door)
    log("INVITE sip:mon1@%s after expiry -> %s" % (DOMAIN, fin.first if fin else None))
    check(fin and fin.status == 480, "door: final response %s, expected 480 Temporarily "
          "Unavailable (known user, no binding)" % (fin.first if fin else None))
    check(not leaked, "the expired contact still got: %r" % leaked)
    env.wait_no_calls()
    env.assert_no_secrets()
    check(purged_at is not None, "portierctl stats still counts %s stored binding(s) %.0f s "
          "after a 2 s registration expired: expired bindings are never purged (and no "
          "'binding(s) expired' log line)" % (stats.get("bindings"), bound))


def _state_file(env):
    return os.path.join(env.state_dir, "registrations")


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


@case
def case_crash_persistence(env):
    """Bindings survive a crash (SIGKILL): the state files (snapshot and
    journal) hold both bindings once their 200s came (the 200 waits for the
    journal's fsync); after the kill no torn state, the restart restores both
    with their remaining lifetime and the device is called. A corrupt state
    file is never a reason not to start: the proxy starts, names each skipped
    line (file:line), keeps the good bindings and a copy of the bad file."""
    env.start_proxy()
    state = _state_file(env)
    devs = [("mon1", 0), ("mon2", 1)]
    register_devices(env, devs)
    t_reg = time.time()
    contacts = {u: "sip:%s@%s:%d" % (u, LOCAL, env.ports.sip(slot)) for u, slot in devs}

    # What a user relies on: a registration whose 200 came survives a power
    # cut. The 200 is sent after the journal's fsync: the files hold both now.
    data = (_read_bytes(state) or b"") + (_read_bytes(state + ".journal") or b"")
    check(all(c.encode() in data for c in contacts.values()),
          "%s(.journal) does not mention both contacts %s right after their 200s: %r"
          % (state, sorted(contacts.values()), data[:400]))
    log("state files hold both contacts %.2f s after the last 200 (%d bytes)"
        % (time.time() - t_reg, len(data)))

    before = {u: has_binding(env.bindings_for(u), u, env.ports.sip(slot)) for u, slot in devs}
    log("before the kill: %s" % json.dumps(before))
    log("SIGKILL to proxy pid %d (no clean shutdown)" % env.proxy.pid)
    env.proxy.stop(signal.SIGKILL)
    check(env.proxy.popen.returncode == -signal.SIGKILL,
          "portier-proxy exited with %s, expected death by SIGKILL" % env.proxy.popen.returncode)
    tmp = state + ".tmp"
    if os.path.exists(tmp):
        log("%s left behind by the kill (%d bytes): the restart must still work"
            % (tmp, os.path.getsize(tmp)))
    else:
        log("no %s after the kill" % os.path.basename(tmp))
    killed = _read_bytes(state) or b""
    journal = _read_bytes(state + ".journal") or b""
    check(killed.startswith(b"portier-registrations 2\n") and killed.endswith(b"\n") and
          all(c.encode() in killed + journal for c in contacts.values()),
          "%s after the kill is not a whole file, or it and the journal do not hold both "
          "contacts: %r / %r" % (state, killed[:400], journal[:400]))

    env.start_proxy()
    after = {}
    for u, slot in devs:
        b = has_binding(env.bindings_for(u), u, env.ports.sip(slot))
        check(b, "%s's binding is gone after the crash and restart: %s" % (u, env.registrations()))
        after[u] = b
    log("after the restart: %s" % json.dumps(after))
    for u, _ in devs:
        check(isinstance(after[u].get("expires"), (int, float)) and
              0 < after[u]["expires"] <= before[u]["expires"],
              "%s: expires went from %s before the kill to %s after the restart: the binding's "
              "lifetime was re-armed (RFC 3261 section 10.2.1: it runs from the REGISTER)"
              % (u, before[u].get("expires"), after[u].get("expires")))

    # The door calls mon2; nothing may reach mon1's contact (a plain socket).
    sentinel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sentinel.bind((LOCAL, env.ports.sip(0)))
    sentinel.setblocking(False)
    try:
        mon2 = env.uas("mon2", "uas_early_answer.xml", 1, timeout=15)
        door = env.door("door", "door_call.xml", "mon2", 4, timeout=15)
        wait_all([door, mon2])
        leaked = drain_socket(sentinel)
    finally:
        sentinel.close()
    check(not leaked, "a call to sip:mon2@%s reached mon1's contact: %r" % (DOMAIN, leaked))
    inv = mon2.received(lambda m: m.method == "INVITE")
    check(inv and request_uri(inv[0]) == contacts["mon2"],
          "mon2 got INVITE %s, expected the restored contact %s (RFC 3261 section 16.5)"
          % (inv[0].first if inv else "(none)", contacts["mon2"]))
    ok = door.received(lambda m: m.status == 200 and m.cseq_method() == "INVITE")
    check(ok and any("%s:%d" % (LOCAL, env.ports.proxy) in r for r in ok[0].hdrs("Record-Route")),
          "200 at the door has no Record-Route naming the proxy: %s"
          % (ok[0].hdrs("Record-Route") if ok else "no 200"))
    mon2_target = "sip:%s:%d" % (LOCAL, env.ports.sip(1))  # mon2's Contact in its 200
    in_dialog = mon2.received(lambda m: m.method in ("ACK", "BYE"))
    check(sorted(set(m.method for m in in_dialog)) == ["ACK", "BYE"],
          "mon2 got %s, expected ACK and BYE" % [m.method for m in in_dialog])
    for m in in_dialog:
        assert_proxied(env, "mon2", m, mon2_target)
    env.wait_no_calls()

    # Corruption while the proxy is stopped (a disk error, a hand edit, a
    # record an older version stored): never a reason not to start. The proxy
    # starts, names the file and line it skipped, keeps the good bindings and a
    # copy of the file as it was for the admin, and serves.
    env.stop_proxy(expect_clean=True)
    good = _read_bytes(state)
    check(good and good.count(b"\n") >= 3, "state file after a clean stop: %r" % good)
    lines = good.split(b"\n")
    corruptions = [
        ("garbage on line 3", b"\n".join(lines[:2] + [b"\x01garbage \xff{not a record}"] +
                                         lines[2:]), 3, [u for u, _ in devs]),
        # What the old registrar saved for ";q=2", then refused at every start.
        ("q=2 on line 2", b"\n".join(lines[:1] + [lines[1].replace(b"\t1000\t", b"\t2000\t")] +
                                     lines[2:]), 2, None),
        ("garbage file", b"\x00\xffPK\x03\x04 this is not a registrations file\n" * 4, 1, []),
    ]
    for what, garbage, line_no, kept in corruptions:
        check(garbage != good, "%s: the corruption changed nothing" % what)
        for old_copy in [f for f in os.listdir(env.state_dir) if ".bad-" in f]:
            os.unlink(os.path.join(env.state_dir, old_copy))
        with open(state, "wb") as f:
            f.write(garbage)
        offset = os.path.getsize(env.proxy_log)
        env.start_proxy()
        with open(env.proxy_log, "rb") as f:
            f.seek(offset)
            out = f.read().decode("utf-8", "replace").splitlines()
        named = [l for l in out if "%s:%d" % (state, line_no) in l]
        log("%s: %s" % (what, named[0].strip() if named else out[-3:]))
        check(named, "portier-proxy started on the corrupt %s (%s) without naming %s:%d:\n%s"
              % (state, what, state, line_no, "\n".join(out[-10:])))
        if kept is None:  # the record that was bad is the first one
            kept = [u for u, _ in devs if contacts[u].encode() not in lines[1]]
        for u, slot in devs:
            listed = has_binding(env.bindings_for(u), u, env.ports.sip(slot))
            check(bool(listed) == (u in kept),
                  "%s: %s's binding %s after starting on the corrupt file (expected %s)"
                  % (what, u, "listed" if listed else "missing", "kept" if u in kept else "skipped"))
        copies = [f for f in os.listdir(env.state_dir) if f.startswith("registrations.bad-")]
        check(len(copies) == 1 and _read_bytes(os.path.join(env.state_dir, copies[0])) == garbage,
              "%s: no copy of the corrupt file kept for the admin in %s: %s"
              % (what, env.state_dir, sorted(os.listdir(env.state_dir))))
        log("%s: started, kept %s, copy %s" % (what, kept, copies[0]))
        s = env.register("mon3", 7, 3600)
        s.expect_ok()
        env.stop_proxy(expect_clean=True)

    # Repaired by the operator (the file as it was): the proxy starts, bindings back.
    with open(state, "wb") as f:
        f.write(good)
    with open(state + ".journal", "wb") as f:
        pass
    env.start_proxy()
    for u, slot in devs:
        check(has_binding(env.bindings_for(u), u, env.ports.sip(slot)),
              "%s's binding missing after restoring the good state file: %s"
              % (u, env.registrations()))
    env.assert_no_secrets()


def registrations_strict(env):
    """portierctl registrations, checked to be valid UTF-8 and valid JSON
    (RFC 8259 section 8.1) before it is parsed."""
    r = subprocess.run([env.args.ctl, "--socket", env.socket, "registrations"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
    check(r.returncode == 0, "portierctl registrations exited %d" % r.returncode)
    try:
        text = r.stdout.decode("utf-8", "strict")
    except UnicodeDecodeError as e:
        raise TestFailure("portierctl registrations printed invalid UTF-8 (%s): %r"
                          % (e, r.stdout[:300]))
    try:
        regs = json.loads(text)["registrations"]
    except (ValueError, KeyError) as e:
        raise TestFailure("portierctl registrations printed invalid JSON (%s): %r"
                          % (e, text[:300]))
    return regs


def _contact_listed(env, user, uri):
    aor = "sip:%s@%s" % (user, DOMAIN)
    return [r for r in registrations_strict(env) if r.get("aor") == aor and r.get("contact") == uri]


@case
def case_register_bad_q(env):
    """RFC 3261 section 20.10 / 10.3: a REGISTER whose Contact has q outside
    0..1 (or not a number) gets 400 and stores nothing, from another host
    (127.0.0.2) with valid credentials; the proxy then restarts (the state file
    holds nothing its loader refuses) and still serves a legitimate device."""
    env.start_proxy()
    uri = "sip:alice@%s:%d" % (ATTACKER, env.ports.sip(5))
    for q in ("2", "1.5", "-1", "abc", "0.1234"):
        r = sip_register(env, "alice", "<%s>;q=%s" % (uri, q), src=ATTACKER,
                         extra=["Expires: 600"])
        log("REGISTER ;q=%s from %s -> %s" % (q, ATTACKER, r.split(b"\r\n", 1)[0] if r else None))
        check(r is not None and status_of(r) == 400,
              "REGISTER with ;q=%s answered %s, expected 400 (RFC 3261 section 20.10: q is 0 to 1)"
              % (q, r.split(b"\r\n", 1)[0] if r else "nothing"))
    check(not env.bindings_for("alice"), "a ;q= outside 0..1 was stored: %s" % env.bindings_for("alice"))
    r = sip_register(env, "alice", "<%s>;q=0.5" % uri, src=ATTACKER, extra=["Expires: 600"])
    check(r is not None and status_of(r) == 200, "REGISTER ;q=0.5 answered %r" % (r[:80] if r else r))
    b = _contact_listed(env, "alice", uri)
    check(b and b[0].get("q") == 0.5, "q=0.5 binding listed as %s" % b)

    # The reboot the attack aimed at: the proxy comes back with the binding.
    env.stop_proxy(expect_clean=True)
    env.start_proxy()
    check(_contact_listed(env, "alice", uri), "alice's q=0.5 binding is gone after the restart")
    s = env.register("mon1", 0, 3600)
    s.expect_ok()
    check(has_binding(env.bindings_for("mon1"), "mon1", env.ports.sip(0)),
          "a legitimate REGISTER after the restart is not listed: %s" % env.registrations())
    env.assert_no_secrets()


@case
def case_register_bad_expires(env):
    """RFC 3261 section 20.19 / 10.3 step 6: ;expires=abc, a date-form or
    malformed Expires header get 400 and leave the binding alone (before, they
    removed it); a huge value (2^32, 99999999999) is shortened to max-expires,
    never wrapped to 0 (a removal)."""
    env.start_proxy()
    uri = "sip:mon1@%s:%d" % (LOCAL, env.ports.sip(0))
    r = sip_register(env, "mon1", "<%s>" % uri, extra=["Expires: 600"])
    check(r is not None and status_of(r) == 200, "first REGISTER answered %r" % (r[:80] if r else r))
    check(_contact_listed(env, "mon1", uri), "mon1's binding not listed after its 200")
    bad = [
        ("<%s>;expires=abc" % uri, []),
        ("<%s>;expires=-1" % uri, []),
        ("<%s>" % uri, ["Expires: Thu, 01 Dec 2044 16:00:00 GMT"]),
        ("<%s>" % uri, ["Expires: Sat, 01 Jan 2000 00:00:00 GMT"]),
        ("<%s>" % uri, ["Expires: abc"]),
    ]
    for contact, extra in bad:
        r = sip_register(env, "mon1", contact, src=ATTACKER, extra=extra)
        what = "%s %s" % (contact, extra)
        log("REGISTER %s from %s -> %s" % (what, ATTACKER, r.split(b"\r\n", 1)[0] if r else None))
        check(r is not None and status_of(r) == 400,
              "REGISTER %s answered %s, expected 400 (RFC 3261 section 20.19: delta-seconds only)"
              % (what, r.split(b"\r\n", 1)[0] if r else "nothing"))
        check(_contact_listed(env, "mon1", uri), "REGISTER %s removed mon1's binding" % what)
    for huge in ("4294967296", "99999999999", "999999999999999999999999"):
        for contact, extra in (("<%s>" % uri, ["Expires: %s" % huge]),
                               ("<%s>;expires=%s" % (uri, huge), [])):
            r = sip_register(env, "mon1", contact, src=ATTACKER, extra=extra)
            check(r is not None and status_of(r) == 200, "REGISTER %s %s answered %s, expected 200"
                  % (contact, extra, r.split(b"\r\n", 1)[0] if r else "nothing"))
            b = _contact_listed(env, "mon1", uri)
            check(b and 3500 < b[0]["expires"] <= 3600,
                  "REGISTER %s %s: binding %s, expected kept and shortened to max-expires 3600 "
                  "(RFC 3261 section 10.3 step 6)" % (contact, extra, b))
            granted = re.search(r"expires=(\d+)", header_value(r, "Contact") or "")
            check(granted and int(granted.group(1)) <= 3600,
                  "the 200 grants %s, expected at most 3600" % header_value(r, "Contact"))
    log("huge expiries shortened to %s s" % _contact_listed(env, "mon1", uri)[0]["expires"])
    env.assert_no_secrets()


@case
def case_register_require_path(env):
    """RFC 3261 section 10.3 step 2 / 8.2.2.3: the registrar does not support
    Path (RFC 3327) yet, so Require: path gets 420 Bad Extension with
    Unsupported: path, and no binding; the same for any option."""
    env.start_proxy()
    uri = "sip:alice@%s:%d" % (ATTACKER, env.ports.sip(5))
    for req, want in (("path", {"path"}), ("path, foo", {"path", "foo"}), ("outbound", {"outbound"})):
        r = sip_register(env, "alice", "<%s>" % uri, src=ATTACKER,
                         extra=["Require: %s" % req, "Expires: 600"])
        first = r.split(b"\r\n", 1)[0] if r else None
        log("REGISTER Require: %s -> %s, Unsupported: %s" % (req, first, r and header_value(r, "Unsupported")))
        check(r is not None and status_of(r) == 420,
              "REGISTER with Require: %s answered %s, expected 420 Bad Extension" % (req, first))
        got = set(x.strip() for x in (header_value(r, "Unsupported") or "").split(",") if x.strip())
        check(got == want, "420 lists Unsupported %s, expected %s" % (sorted(got), sorted(want)))
        check(not _contact_listed(env, "alice", uri), "Require: %s stored a binding" % req)
    r = sip_register(env, "alice", "<%s>" % uri, src=ATTACKER, extra=["Expires: 600"])
    check(r is not None and status_of(r) == 200, "plain REGISTER after the 420s answered %r"
          % (r[:80] if r else r))
    env.assert_no_secrets()


@case
def case_register_binary_contact(env):
    """A Contact that is not a valid SIP URI (raw binary bytes, control
    characters) gets 400 and is not stored; portierctl registrations stays
    valid UTF-8 JSON even when other fields (User-Agent, +sip.instance) held
    such bytes (RFC 8259 section 8.1)."""
    env.start_proxy()
    p = env.ports.sip(5)
    bad = [
        b"<sip:\x01\xff\xfe\x80@" + ATTACKER.encode() + b":%d>" % p,
        b"<sip:al\xc3\x28ice@" + ATTACKER.encode() + b":%d>" % p,
        b"<sip:alice\x7f@" + ATTACKER.encode() + b":%d>" % p,
        b"<sip:alice@host\x1b[2J:%d>" % p,
    ]
    for contact in bad:
        r = sip_register(env, "alice", contact, src=ATTACKER, extra=["Expires: 600"])
        first = r.split(b"\r\n", 1)[0] if r else None
        log("REGISTER Contact %r -> %s" % (contact, first))
        # No answer at all is acceptable too (sofia may drop what it cannot parse).
        check(r is None or status_of(r) == 400,
              "REGISTER with Contact %r answered %s, expected 400" % (contact, first))
        regs = registrations_strict(env)
        check(not [x for x in regs if x.get("aor") == "sip:alice@%s" % DOMAIN],
              "a binary Contact was stored: %s" % regs)
    r = sip_register(env, "alice", '<sip:alice@%s:%d>;+sip.instance="<urn:\xff\x01>"' % (ATTACKER, p),
                     src=ATTACKER, extra=["Expires: 600"])
    check(r is None or status_of(r) == 400, "a binary +sip.instance answered %r" % (r[:80] if r else r))
    # A User-Agent is free text (TEXT-UTF8, RFC 3261 section 25.1): stored, and
    # printed escaped.
    uri = "sip:alice@%s:%d" % (ATTACKER, p)
    r = sip_register(env, "alice", "<%s>" % uri, src=ATTACKER,
                     extra=[b"User-Agent: evil\xff\xfe\x01\x1b[2J \xe2\x82\xac", "Expires: 600"])
    check(r is not None and status_of(r) == 200, "REGISTER with an odd User-Agent answered %r"
          % (r[:80] if r else r))
    b = _contact_listed(env, "alice", uri)
    check(b, "alice's binding is not listed")
    log("listed user_agent: %r" % b[0].get("user_agent"))
    check(b[0]["user_agent"].startswith("evil") and "\u20ac" in b[0]["user_agent"] and
          "\x1b" in b[0]["user_agent"],
          "user_agent printed as %r" % b[0].get("user_agent"))
    env.assert_no_secrets()


@case
def case_crash_mid_burst(env):
    """Loses nothing: a REGISTER's 200 is sent only once the binding is on
    disk (journal, group commit). Four clients register distinct contacts as
    fast as they can; the proxy is SIGKILLed in the middle; after the restart
    every contact whose 200 a client received is listed by portierctl."""
    env.start_proxy()
    users = ["alice", "mon1", "mon2", "mon3"]
    per_user = 30  # below max-contacts-per-aor (32): nothing is evicted
    target = 50    # kill after this many 200s, with requests still in flight
    got = {u: [] for u in users}
    stop = threading.Event()
    lock = threading.Lock()
    total = [0]

    def client(user, index):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((LOCAL, 0))
        try:
            for n in range(per_user):
                if stop.is_set():
                    return
                uri = "sip:%s-%d@%s:%d" % (user, n, LOCAL, 5000 + index * 100 + n)
                r = sip_register(env, user, "<%s>" % uri, extra=["Expires: 3600"], wait=1.0,
                                 sock=s, call_id="burst-%s-%d@%s" % (user, n, LOCAL))
                if r is not None and status_of(r) == 200:
                    with lock:
                        got[user].append(uri)
                        total[0] += 1
        finally:
            s.close()

    threads = [threading.Thread(target=client, args=(u, i), daemon=True)
               for i, u in enumerate(users)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while time.time() < deadline and total[0] < target and any(t.is_alive() for t in threads):
        time.sleep(0.005)
    check(total[0] >= target, "only %d 200s in 30 s (expected %d before the kill)"
          % (total[0], target))
    log("SIGKILL to proxy pid %d after %d 200s" % (env.proxy.pid, total[0]))
    env.proxy.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(5)
    with lock:
        answered = {u: list(v) for u, v in got.items()}
    n_answered = sum(len(v) for v in answered.values())
    log("200s received by the clients: %d" % n_answered)

    env.start_proxy()
    regs = registrations_strict(env)
    listed = set((r["aor"], r["contact"]) for r in regs)
    lost = ["%s %s" % (u, c) for u, cs in answered.items() for c in cs
            if ("sip:%s@%s" % (u, DOMAIN), c) not in listed]
    log("after the restart: %d bindings listed, %d of %d answered 200 missing"
        % (len(regs), len(lost), n_answered))
    check(not lost, "%d of %d registrations answered 200 are gone after kill -9 and restart: %s"
          % (len(lost), n_answered, lost[:10]))
    # The proxy serves afterwards.
    s = env.register("mon1", 0, 3600)
    s.expect_ok()
