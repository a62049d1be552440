"""portier-proxy's forking: early media, CANCEL, busy, timeouts, 6xx, merged challenges
(RFC 3261 sections 16.7-16.10, RFC 3326)."""

import json
import socket
import time

from portier_sip.base import GROUP, LOCAL, check, log
from portier_sip.checks import (assert_cancel_matches_invite, assert_no_cause200, drain_socket,
                                final_response, register_devices, top_via_is_proxy, wait_all)
from portier_sip.rawua import (RawCall, RawUa, check_next_call_busy, group_call, raw_devices,
                               raw_reply)
from portier_sip.registry import case
from portier_sip.sipmsg import sdp_body


@case
def case_fork_three_early_media(env):
    """Group address fork to three devices with early media (183 recvonly);
    mon1 answers; mon2/mon3 get CANCEL with Reason cause=200 (RFC 3326);
    ACK/BYE go through the proxy (Record-Route); the caller's own AOR is not
    forked to."""
    env.start_proxy()
    register_devices(env, [("mon1", 0), ("mon2", 1), ("mon3", 2), ("door", 3)])
    # The door's registered contact (slot 3) is a plain socket: nothing may arrive
    # there (group fork excludes the caller's AOR).
    sentinel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sentinel.bind((LOCAL, env.ports.sip(3)))
    sentinel.setblocking(False)
    try:
        mon1 = env.uas("mon1", "uas_early_answer.xml", 0)
        mon2 = env.uas("mon2", "uas_early_cancelled.xml", 1)
        mon3 = env.uas("mon3", "uas_early_cancelled.xml", 2)
        door = env.door("door", "door_call.xml", GROUP, 4)
        wait_all([door, mon1, mon2, mon3])
        leaked = drain_socket(sentinel)
    finally:
        sentinel.close()
    check(not leaked, "the caller's own AOR (door) got forked to: %r" % leaked)

    e183 = door.received(lambda m: m.status == 183)
    check(e183, "door got no 183: early media did not reach the caller")
    check(any("m=video" in m.body for m in e183), "door's 183 has no SDP with video")
    ok = door.received(lambda m: m.status == 200 and m.cseq_method() == "INVITE")[0]
    rr = " ".join(ok.hdrs("Record-Route"))
    check("%s:%d" % (LOCAL, env.ports.proxy) in rr or LOCAL in rr,
          "200 at the door has no Record-Route of the proxy: %r" % rr)
    for d in (mon1, mon2, mon3):
        inv = d.received(lambda m: m.method == "INVITE")[0]
        # RFC 3261 section 16.6 step 3 (Max-Forwards decremented), step 4
        # (Record-Route added), step 8 (the proxy's Via on top).
        check(inv.hdr("Max-Forwards") == "69", "%s: forwarded INVITE has Max-Forwards %r, "
              "expected 69" % (d.name, inv.hdr("Max-Forwards")))
        check(any(str(env.ports.proxy) in v for v in inv.hdrs("Record-Route")),
              "%s: forwarded INVITE has no Record-Route of the proxy: %s"
              % (d.name, inv.hdrs("Record-Route")))
        check(top_via_is_proxy(inv, env), "%s: top Via is not the proxy's: %s"
              % (d.name, inv.hdrs("Via")))
    for m in mon1.received(lambda m: m.method in ("ACK", "BYE")):
        check(top_via_is_proxy(m, env), "mon1 got %s not through the proxy: Via %s"
              % (m.method, m.hdrs("Via")))
        # RFC 3261 section 16.4: the proxy removes the Route entry naming itself.
        check(not any(str(env.ports.proxy) in r for r in m.hdrs("Route")),
              "mon1 got %s with the proxy's own Route still in it: %s"
              % (m.method, m.hdrs("Route")))
    check(len(mon1.received(lambda m: m.method in ("ACK", "BYE"))) >= 2,
          "mon1 did not get both ACK and BYE")
    check(not mon1.received(lambda m: m.method == "CANCEL"), "mon1 (the answering device) got a CANCEL")
    assert_cancel_matches_invite([mon2, mon3])
    for d in (mon2, mon3):
        cancels = d.received(lambda m: m.method == "CANCEL")
        check(cancels, "%s got no CANCEL" % d.name)
        reason = cancels[0].hdr("Reason") or ""
        log("%s CANCEL Reason: %s" % (d.name, reason))
        check('text="Call completed elsewhere"' in reason,
              "%s: Reason %r lacks text=\"Call completed elsewhere\"" % (d.name, reason))
    env.wait_no_calls()
    env.assert_no_secrets()


@case
def case_caller_cancel(env):
    """RFC 3261 section 16.10: the caller's CANCEL cancels every branch; the
    caller gets 200 (CANCEL) and 487 (INVITE)."""
    env.start_proxy()
    devs = [("mon1", 0), ("mon2", 1), ("mon3", 2)]
    register_devices(env, devs)
    uas = [env.uas(u, "uas_ring_cancelled.xml", slot) for u, slot in devs]
    door = env.door("door", "door_cancel.xml", GROUP, 4)
    wait_all([door] + uas)
    fin = final_response(door)
    check(fin and fin.status == 487, "door: final response %s (expected 487)"
          % (fin.first if fin else None))
    assert_no_cause200(env, uas)
    assert_cancel_matches_invite(uas)
    env.wait_no_calls()
    env.assert_no_secrets()


@case
def case_all_busy(env):
    """RFC 3261 section 16.7 step 6: every branch 486 -> 486 upstream."""
    env.start_proxy()
    devs = [("mon1", 0), ("mon2", 1)]
    register_devices(env, devs)
    uas = [env.uas(u, "uas_busy.xml", slot) for u, slot in devs]
    door = env.door("door", "door_reject.xml", GROUP, 4)
    wait_all([door] + uas)
    fin = final_response(door)
    log("door final response: %s" % (fin.first if fin else None))
    check(fin and fin.status == 486, "door: final response %s (expected 486 Busy Here)"
          % (fin.first if fin else None))
    env.wait_no_calls()
    env.assert_no_secrets()


@case
def case_fork_message_one_final(env):
    """The door's alarm is a MESSAGE to the group (issue 11): both monitors
    answer 200. RFC 3261 section 16.7 step 10 forwards later 2xx for INVITE
    only, and a completed non-INVITE server transaction discards further final
    responses (section 17.2.2): the door gets exactly one 200, and no CANCEL
    goes to the slower monitor (section 9.1: CANCEL is for INVITE). Sending the
    second 200 into the completed transaction used to make sofia drop a
    reference it never took on the UDP transport, and the proxy then aborted
    on SIGTERM (tport_zap_primary): the harness checks it exits with 0."""
    env.start_proxy()
    devs = raw_devices(env, ["mon1", "mon2"])
    door = RawUa("door", LOCAL)
    try:
        msg = RawCall(env, door, "door", GROUP, "3 wrong door codes", method="MESSAGE")
        reqs = [d.wait_for(lambda m: m.method == "MESSAGE", 5, "MESSAGE") for d in devs]
        raw_reply(devs[0], reqs[0], 200, "OK", "m1")
        first = msg.final()
        check(first.status == 200, "door: %s, expected 200" % first.first)
        raw_reply(devs[1], reqs[1], 200, "OK", "m2")
        time.sleep(1.0)  # room for a second final response to arrive, if one were sent
        finals = [m for m in msg.responses() if m.status >= 200]
        log("door got: %s" % [m.first for m in finals])
        check(len(finals) == 1, "door got %d final responses to one MESSAGE: %s"
              % (len(finals), [m.first for m in finals]))
        check(not devs[1].got(lambda m: m.method == "CANCEL"),
              "mon2 got a CANCEL for a MESSAGE")
        # A retransmission of mon2's 200 is absorbed too.
        raw_reply(devs[1], reqs[1], 200, "OK", "m2")
        time.sleep(0.5)
        check(len([m for m in msg.responses() if m.status >= 200]) == 1,
              "a retransmitted 200 of mon2 reached the door")
    finally:
        for ua in devs + [door]:
            ua.close()
    env.assert_no_secrets()


@case
def case_fork_timeout(env):
    """call-fork-timeout = 3: unanswered branches are CANCELled and the caller
    gets 408 after about 3 s."""
    env.fork_timeout = 3
    env.start_proxy()
    devs = [("mon1", 0), ("mon2", 1)]
    register_devices(env, devs)
    uas = [env.uas(u, "uas_ring_cancelled.xml", slot) for u, slot in devs]
    door = env.door("door", "door_reject.xml", GROUP, 4)
    time.sleep(1.5)
    calls = env.calls()
    log("calls while ringing: %s" % json.dumps(calls)[:300])
    check(len(calls) >= 1, "portierctl calls lists no call while the devices ring")
    wait_all([door] + uas)
    fin = final_response(door)
    log("door final response: %s" % (fin.first if fin else None))
    check(fin and fin.status == 408, "door: final response %s (expected 408)"
          % (fin.first if fin else None))
    invites = [m for m in door.messages() if m.direction == "sent" and m.method == "INVITE"]
    elapsed = fin.ts() - invites[-1].ts()
    log("408 came %.2fs after the authenticated INVITE" % elapsed)
    check(2.5 <= elapsed <= 6.0, "408 after %.2fs, expected about 3s (call-fork-timeout)" % elapsed)
    assert_no_cause200(env, uas)
    assert_cancel_matches_invite(uas)
    env.wait_no_calls()
    env.assert_no_secrets()


def _cancel_answered(dev, inv, tag="dev"):
    """A device's normal answer to the CANCEL of inv: 200 for the CANCEL, 487
    for the INVITE (RFC 3261 section 9.2)."""
    can = dev.wait_for(lambda m: m.method == "CANCEL" and m.hdr("Call-ID") == inv.hdr("Call-ID"),
                       10, "CANCEL")
    raw_reply(dev, can, 200, "OK", tag)
    raw_reply(dev, inv, 487, "Request Terminated", tag)
    return can


def _wait_transactions(env, n, within=5.0):
    """portierctl stats counts n of the router's transactions (bounded wait)."""
    deadline = time.time() + within
    while True:
        got = env.ctl("stats").get("transactions")
        if got == n or time.time() > deadline:
            check(got == n, "portierctl stats: %s transactions, expected %d" % (got, n))
            return
        time.sleep(0.1)


@case
def case_fork_timeout_silent_branch(env):
    """RFC 3261 section 16.8 / 16.7 step 6: call-fork-timeout = 3, mon1 rang
    (180) and then went silent (a monitor that lost power): it ignores the
    CANCEL until the caller has its final response. The door gets 408 at the
    fork timeout, before mon1 answered the CANCEL (it used to wait for mon1's
    transaction, 32 s more); mon2 answers its CANCEL at once. The relay's
    ports are free before mon1 answers; then mon1's 487 ends its branch, the
    transaction is gone and the proxy still serves."""
    env.fork_timeout = 3
    env.start_proxy()
    mon1, mon2 = raw_devices(env, ["mon1", "mon2"])
    door = RawUa("door", LOCAL)
    try:
        call, (inv1, inv2) = group_call(env, door, (mon1, mon2))
        raw_reply(mon1, inv1, 180, "Ringing", "m1")
        raw_reply(mon2, inv2, 180, "Ringing", "m2")
        can2 = _cancel_answered(mon2, inv2, "m2")
        can1 = mon1.wait_for(lambda m: m.method == "CANCEL", 10, "CANCEL")
        # mon1 says nothing until the door has its answer: the bound is far
        # below the 32 s the old proxy held it.
        fin = call.final(timeout=15)
        log("door: %s; mon1 has not answered its CANCEL" % fin.first)
        check(fin.status == 408, "door: final response %s, expected 408 (fork timeout)" % fin.first)
        for can in (can1, can2):
            check("cause=408" in (can.hdr("Reason") or "").replace(" ", ""),
                  "CANCEL Reason %r, expected cause=408 (fork timeout)" % can.hdr("Reason"))
        check(len(mon1.sent) == 1, "mon1 was to send only its 180 by now")
        # The door has its answer while mon1's branch is still open.
        check(env.ctl("stats").get("transactions") == 1,
              "the call's transaction is gone before mon1 answered: %s" % env.ctl("stats"))
        env.wait_relay_free()  # the failed call's ports need not wait for mon1
        raw_reply(mon1, can1, 200, "OK", "m1")
        raw_reply(mon1, inv1, 487, "Request Terminated", "m1")
        mon1.wait_for(lambda m: m.method == "ACK", 5, "ACK for mon1's 487")
        _wait_transactions(env, 0)  # torn down once its last branch ended
        env.wait_relay_free()
        env.wait_no_calls()
        # The proxy still rings the devices for the next call.
        check_next_call_busy(env, door, mon2, "mon2", "m2b")
    finally:
        for ua in (mon1, mon2, door):
            ua.close()
    env.assert_no_secrets()


@case
def case_fork_6xx_reason(env):
    """RFC 3261 section 16.7 steps 5-6 and RFC 3326: mon1 answers 486, mon3
    603 Decline while mon2 still rings and then ignores its CANCEL. The 603
    reaches the door at once (before mon2 answers the CANCEL), and mon2's
    CANCEL carries Reason cause=603 with text "Decline" (it said cause=600
    whatever the 6xx was). mon2's 200, crossing the CANCEL, is ACKed and
    ended with BYE by the proxy; the door never sees it."""
    env.start_proxy()
    mon1, mon2, mon3 = raw_devices(env, ["mon1", "mon2", "mon3"])
    door = RawUa("door", LOCAL)
    try:
        call, (inv1, inv2, inv3) = group_call(env, door, (mon1, mon2, mon3))
        raw_reply(mon2, inv2, 180, "Ringing", "m2")
        raw_reply(mon1, inv1, 486, "Busy Here", "m1")
        mon1.wait_for(lambda m: m.method == "ACK", 5, "ACK for the 486")
        raw_reply(mon3, inv3, 603, "Decline", "m3")
        can = mon2.wait_for(lambda m: m.method == "CANCEL", 10, "CANCEL")
        fin = call.final(timeout=15)
        log("door: %s; mon2's CANCEL Reason: %s" % (fin.first, can.hdr("Reason")))
        check(fin.status == 603, "door: final response %s, expected 603 (a 6xx wins, "
              "RFC 3261 section 16.7 step 6)" % fin.first)
        reason = (can.hdr("Reason") or "").replace(" ", "")
        check("cause=603" in reason and 'text="Decline"' in reason,
              "mon2's CANCEL Reason %r, expected cause=603 and text=\"Decline\"" % can.hdr("Reason"))
        check(not mon1.got(lambda m: m.method == "CANCEL"),
              "mon1 (already final) got a CANCEL")
        # mon2 picks up as the CANCEL arrives: its 200 crosses it. The door
        # has its 603 and can take no 200 any more (RFC 3261 section 17.2.1),
        # so the proxy ends mon2's dialog itself: ACK, then BYE.
        raw_reply(mon2, inv2, 200, "OK", "m2", body=sdp_body(LOCAL, ["audio 4100 RTP/AVP 0"]))
        raw_reply(mon2, can, 200, "OK", "m2")
        mon2.wait_for(lambda m: m.method == "ACK", 5, "ACK for the late 200")
        bye = mon2.wait_for(lambda m: m.method == "BYE", 5, "BYE for the late 200")
        raw_reply(mon2, bye, 200, "OK", "m2")
        check("cause=200" not in (bye.hdr("Reason") or "").replace(" ", ""),
              "the BYE says 'completed elsewhere', but nobody answered the door")
        check(not door.got(lambda m: call.mine(m) and m.status == 200),
              "the door got a 200 after its 603")
        env.wait_relay_free()
        env.wait_no_calls()
    finally:
        for ua in (mon1, mon2, mon3, door):
            ua.close()
    env.assert_no_secrets()


@case
def case_fork_challenges_merged(env):
    """RFC 3261 section 16.7 step 7: mon1 challenges the door with 401, mon2
    with 407, each with a realm of its own. The response sent up carries
    both challenges (WWW-Authenticate and Proxy-Authenticate), unmodified."""
    env.start_proxy()
    mon1, mon2 = raw_devices(env, ["mon1", "mon2"])
    door = RawUa("door", LOCAL)
    try:
        call, (inv1, inv2) = group_call(env, door, (mon1, mon2))
        www = 'Digest realm="mon1.example", nonce="n1-5dc0", algorithm=MD5, qop="auth"'
        pxy = 'Digest realm="mon2.example", nonce="n2-77ab", algorithm=MD5, qop="auth"'
        raw_reply(mon1, inv1, 401, "Unauthorized", "m1", "WWW-Authenticate: " + www)
        mon1.wait_for(lambda m: m.method == "ACK", 5, "ACK for the 401")
        raw_reply(mon2, inv2, 407, "Proxy Authentication Required", "m2",
               "Proxy-Authenticate: " + pxy)
        fin = call.final()
        log("door: %s, WWW-Authenticate %s, Proxy-Authenticate %s"
            % (fin.first, fin.hdrs("WWW-Authenticate"), fin.hdrs("Proxy-Authenticate")))
        check(fin.status in (401, 407), "door: final response %s, expected 401 or 407"
              % fin.first)
        flat = lambda vs: [v.replace(" ", "") for v in vs]
        check(www.replace(" ", "") in flat(fin.hdrs("WWW-Authenticate")),
              "mon1's challenge is missing: %s" % fin.hdrs("WWW-Authenticate"))
        check(pxy.replace(" ", "") in flat(fin.hdrs("Proxy-Authenticate")),
              "mon2's challenge is missing: %s" % fin.hdrs("Proxy-Authenticate"))
        env.wait_relay_free()
        env.wait_no_calls()
    finally:
        for ua in (mon1, mon2, door):
            ua.close()
    env.assert_no_secrets()
