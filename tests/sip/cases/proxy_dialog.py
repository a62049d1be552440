"""portier-proxy inside a dialog: Record-Route, loose routing, the signed route set,
forged in-dialog requests (RFC 3261 sections 12, 16.6, 16.12)."""

import re
import socket
import time

from portier_sip.base import ATTACKER, DOMAIN, GROUP, LOCAL, TestFailure, USERS, check, log
from portier_sip.checks import (assert_cancel_matches_invite, assert_proxied, drain_socket,
                                register_devices, request_uri, uri_in, wait_all)
from portier_sip.pycall import (attacked_call, close_call, hang_up, media_reaches_callee, py_call,
                                py_challenge, py_sdp, relay_call)
from portier_sip.registry import case
from portier_sip.sipmsg import PyUA, digest_auth


def _cseq(msg):
    parts = (msg.hdr("CSeq") or "").split()
    return (int(parts[0]) if parts and parts[0].isdigit() else None,
            parts[1] if len(parts) > 1 else None)


@case
def case_in_dialog_requests(env):
    """RFC 3261 section 12.2 / 16.12: after mon1 answers a group call, INFO
    (dtmf-relay), MESSAGE, re-INVITE + ACK and BYE from the door, and an INFO
    from mon1 to the door, follow the Record-Route route set through the proxy
    with their bodies intact; each gets its 200."""
    env.start_proxy()
    register_devices(env, [("mon1", 0), ("mon2", 1)])
    door_port = env.ports.sip(4)
    mon1 = env.uas("mon1", "uas_dialog.xml", 0, timeout=20,
                   fields=[["mon1", USERS["mon1"]]],
                   auth_uri="door@%s:%d" % (LOCAL, door_port))
    mon2 = env.uas("mon2", "uas_early_cancelled.xml", 1, timeout=20)
    door = env.door("door", "door_dialog.xml", GROUP, 4, timeout=20)
    wait_all([door, mon1, mon2])
    assert_cancel_matches_invite([mon2])

    door_msgs = door.messages(raw=True)
    mon1_msgs = mon1.messages(raw=True)
    d_sent = [m for m in door_msgs if m.direction == "sent" and m.method]
    d_resp = [m for m in door_msgs if m.direction == "received" and m.status]
    m_recv = [m for m in mon1_msgs if m.direction == "received" and m.method]
    mon1_target = "sip:%s:%d" % (LOCAL, env.ports.sip(0))   # mon1's Contact
    door_target = "sip:door@%s:%d" % (LOCAL, door_port)      # the door's Contact

    ok = [m for m in d_resp if m.status == 200 and _cseq(m)[1] == "INVITE"]
    check(ok, "door got no 200 to its INVITE")
    rr = ok[0].hdrs("Record-Route")
    log("200 at the door: Record-Route %s, Contact %s" % (rr, ok[0].hdr("Contact")))
    check(any("%s:%d" % (LOCAL, env.ports.proxy) in r for r in rr),
          "200 at the door has no Record-Route naming the proxy: %s" % rr)
    check(uri_in(ok[0].hdr("Contact")) == mon1_target,
          "200 at the door has Contact %s, expected mon1's %s" % (ok[0].hdr("Contact"), mon1_target))
    dialog_cseq = _cseq(ok[0])[0]

    # What the door sent inside the dialog, in order (the scenario's own
    # sanity: the route set and CSeq rules of RFC 3261 section 12.2.1.1).
    in_dialog = [m for m in d_sent if _cseq(m)[0] is not None and
                 (_cseq(m)[0] > dialog_cseq or (_cseq(m)[0] == dialog_cseq and m.method == "ACK"))]
    log("door in dialog: %s" % ", ".join("%s %s" % (m.method, m.hdr("CSeq")) for m in in_dialog))
    methods = [m.method for m in in_dialog]
    order = ["ACK", "INFO", "MESSAGE", "INVITE", "BYE"]
    check(all(x in methods for x in order) and
          [methods.index(x) for x in order] == sorted(methods.index(x) for x in order),
          "door's in-dialog requests %s, expected %s in that order (scenario bug)"
          % (methods, order))
    nums = [_cseq(m)[0] for m in in_dialog if m.method != "ACK"]
    # Retransmissions log the same CSeq twice: keep the first of each.
    nums = [n for i, n in enumerate(nums) if i == 0 or nums[i - 1] != n]
    check(nums == list(range(dialog_cseq + 1, dialog_cseq + 1 + len(nums))),
          "door's in-dialog CSeq numbers %s are not contiguous after %d (scenario bug)"
          % (nums, dialog_cseq))
    for m in in_dialog:
        check(m.hdrs("Route") and "%s:%d" % (LOCAL, env.ports.proxy) in m.hdrs("Route")[0],
              "door sent %s without the proxy as first Route (scenario bug): %s"
              % (m.method, m.hdrs("Route")))
        check(request_uri(m) == mon1_target, "door sent %s to %s, expected mon1's Contact %s "
              "(scenario bug)" % (m.method, request_uri(m), mon1_target))

    # mon1 received each of them, forwarded as a loose-routing proxy does.
    after_answer = m_recv[1:]  # the first is the dialog-creating INVITE
    log("mon1 received: %s" % ", ".join("%s %s" % (m.method, m.hdr("CSeq")) for m in m_recv))
    for method in ("ACK", "INFO", "MESSAGE", "INVITE", "BYE"):
        check(any(m.method == method for m in after_answer),
              "mon1 did not receive the door's in-dialog %s" % method)
    for m in after_answer:
        assert_proxied(env, "mon1", m, mon1_target)
    check(len([m for m in after_answer if m.method == "ACK"]) >= 2,
          "mon1 did not receive both ACKs (for the INVITE and the re-INVITE)")

    def body_pair(method, ctype, relayed_sdp=False):
        sent = [m for m in in_dialog if m.method == method][-1]
        got = [m for m in after_answer if m.method == method][-1]
        # The framing check is against the bytes mon1 really received: the
        # relay's ports below can have other digit counts than the door's.
        got_length = len(got.raw_body)
        if relayed_sdp:
            # The media relay points the m= ports at itself (issue 3); every
            # other byte is the door's.
            door_ports = re.findall(rb"^m=\w+ (\d+) ", sent.raw_body, re.M)
            relay_ports = re.findall(rb"^m=\w+ (\d+) ", got.raw_body, re.M)
            check(len(door_ports) == len(relay_ports) and
                  not set(door_ports) & set(relay_ports),
                  "mon1's re-INVITE SDP does not point at the relay: %r" % got.raw_body)
            got.raw_body = re.sub(rb"^(m=\w+) \d+ ",
                                  lambda m, it=iter(door_ports): m.group(1) + b" " + next(it) + b" ",
                                  got.raw_body, flags=re.M)
        log("%s body sent %r, received %r (Content-Type %s, Content-Length %s)"
            % (method, sent.raw_body, got.raw_body, got.hdr("Content-Type"),
               got.hdr("Content-Length")))
        check((got.hdr("Content-Type") or "").lower() == ctype,
              "mon1 got %s with Content-Type %r, expected %s"
              % (method, got.hdr("Content-Type"), ctype))
        check(got.raw_body == sent.raw_body,
              "mon1 got the %s body %r, the door sent %r" % (method, got.raw_body, sent.raw_body))
        check(int((got.hdr("Content-Length") or "-1").strip()) == got_length,
              "mon1 got %s with Content-Length %s for a %d-byte body (RFC 3261 section 20.14)"
              % (method, got.hdr("Content-Length"), got_length))
        return got

    body_pair("INFO", "application/dtmf-relay")
    check([m for m in after_answer if m.method == "INFO"][-1].raw_body ==
          b"Signal=1\r\nDuration=250\r\n", "INFO body is not Signal=1 CRLF Duration=250 CRLF")
    body_pair("MESSAGE", "text/plain")
    # sipp ends every message with CRLF, hence "open" CRLF (door_dialog.xml).
    check([m for m in after_answer if m.method == "MESSAGE"][-1].raw_body == b"open\r\n",
          "MESSAGE body is not open CRLF")
    reinv = body_pair("INVITE", "application/sdp", relayed_sdp=True)
    check(b"a=sendrecv" in reinv.raw_body and b"o=door 1 2 " in reinv.raw_body,
          "re-INVITE offer at mon1 is not the door's version 2 sendrecv offer")

    # The door got a 200 for each request it sent in the dialog.
    for m in in_dialog:
        if m.method == "ACK":
            continue
        n, meth = _cseq(m)
        finals = [r for r in d_resp if _cseq(r) == (n, meth) and r.status >= 200]
        if finals and finals[-1].status == 407:
            continue  # challenged; the retry (next CSeq) is checked on its own
        check(finals and finals[-1].status == 200, "door: %s (CSeq %d) got %s, expected 200"
              % (meth, n, finals[-1].first if finals else "no final response"))
    reok = [r for r in d_resp if r.status == 200 and _cseq(r)[1] == "INVITE" and
            _cseq(r)[0] > dialog_cseq]
    check(reok and b"a=sendrecv" in reok[-1].raw_body,
          "door's 200 to the re-INVITE carries no sendrecv answer")

    # mon1 -> door (RFC 3261 section 12.1.1: the callee's route set is the
    # Record-Route list in order, its remote target the door's Contact).
    m_info = [m for m in mon1_msgs if m.direction == "sent" and m.method == "INFO"]
    check(m_info, "mon1 sent no INFO")
    log("mon1's INFO: %s, Route %s, From %s, To %s" % (m_info[-1].first, m_info[-1].hdrs("Route"),
                                                       m_info[-1].hdr("From"), m_info[-1].hdr("To")))
    check(request_uri(m_info[-1]) == door_target and m_info[-1].hdrs("Route") and
          "%s:%d" % (LOCAL, env.ports.proxy) in m_info[-1].hdrs("Route")[0],
          "mon1's INFO was not sent to %s via the proxy (scenario bug)" % door_target)
    d_info = [m for m in door_msgs if m.direction == "received" and m.method == "INFO"]
    check(d_info, "the door did not receive mon1's INFO")
    assert_proxied(env, "door", d_info[-1], door_target)
    check(d_info[-1].raw_body == m_info[-1].raw_body == b"Signal=#\r\nDuration=250\r\n",
          "door got INFO body %r, mon1 sent %r" % (d_info[-1].raw_body, m_info[-1].raw_body))
    m_ok = [m for m in mon1_msgs if m.direction == "received" and m.status == 200 and
            _cseq(m)[1] == "INFO"]
    check(m_ok, "mon1 got no 200 to its INFO")
    env.wait_no_calls()
    env.assert_no_secrets()


def _refused(ua, method, want, what, sentinel=None, peers=()):
    """The proxy's answer to a forged request, which must be one of `want`.
    Without any answer, says where the request went instead (the old proxy
    forwarded it, and the peer that got it never answered)."""
    try:
        r = ua.response_to(method, timeout=2)
    except TestFailure:
        went = []
        if sentinel:
            n = len(sentinel.got(0.1))
            if n:
                went.append("%d datagram(s) reached the attacker's socket" % n)
        for peer in peers:
            if peer.quiet(lambda m: m.method == method, 0.1):
                went.append("%s received it" % peer.name)
        raise TestFailure("%s: no answer from the proxy; %s"
                          % (what, "; ".join(went) or "nothing seen elsewhere"))
    log("%s -> %s" % (what, r.first))
    check(r.status in want, "%s got %s, expected %s"
          % (what, r.first, " or ".join(str(w) for w in want)))
    return r


@case
def case_dialog_open_relay(env):
    """Issue 11, open relay: from 127.0.0.2, MESSAGE, INFO and INVITE with a
    To tag and a Route naming the proxy, to a Request-URI on a host the
    attacker listens on, get refused (403: a Route we did not sign; 481: no
    such dialog, RFC 3261 section 12.2.2) and nothing reaches that host, even
    with a live call's Call-ID, tags and signed route; the caller itself
    cannot send there through its dialog either (403). The call's own parties
    still talk through the proxy afterwards."""
    env.start_proxy()
    with attacked_call(env) as (c, attacker, sentinel):
        anywhere = "sip:victim@%s:%d" % (ATTACKER, sentinel.port)
        ours = "<sip:%s:%d;lr>" % (LOCAL, env.ports.proxy)
        for method in ("MESSAGE", "INFO", "INVITE"):
            body = py_sdp(env.ports.media(5), host=ATTACKER) if method == "INVITE" else b"hi"
            # A made-up dialog behind a Route naming us (the old relay).
            c.send_in_dialog(method, ua=attacker, call_id=attacker.uniq("x"), from_tag="a1",
                             to_tag="a2", route=[ours], ruri=anywhere, body=body)
            _refused(attacker, method, (403,), "%s in a made-up dialog, unsigned Route" % method,
                     sentinel=sentinel)
            # The live call's Call-ID, tags and signed route, from another host.
            c.send_in_dialog(method, ua=attacker, ruri=anywhere, body=body)
            _refused(attacker, method, (481,), "%s with the live dialog's tags and route from %s"
                     % (method, ATTACKER), sentinel=sentinel)
        # A flood of forged requests is refused one by one, but logged only a
        # few lines a second (the rest counted), so it cannot flood the log.
        time.sleep(1.1)  # a second of its own: the refusals above used this one's lines
        before = env.proxy_log_text().count("refused")
        start = time.time()
        burst = 60
        for i in range(burst):
            c.send_in_dialog("MESSAGE", ua=attacker, ruri=anywhere, body=b"flood")
        seconds = int(time.time() - start) + 2  # the whole seconds the burst touched
        answered = attacker.quiet(lambda m: m.status == 481 and m.cseq()[1] == "MESSAGE", 1.5)
        check(len(set(m.hdr("CSeq") for m in answered)) == burst,
              "%d of %d forged MESSAGEs answered 481" % (len(answered), burst))
        lines = env.proxy_log_text().count("refused") - before
        log("%d forged MESSAGEs in %.1f s: %d refusal line(s) logged"
            % (burst, time.time() - start, lines))
        check(1 <= lines <= 6 * seconds and lines < burst,
              "%d refusal lines for %d forged requests in %d s (at most 5 a second and one "
              "summary expected)" % (lines, burst, seconds))
        # A party of the dialog cannot relay through it either: its requests
        # reach the other party only.
        c.send_in_dialog("MESSAGE", ruri=anywhere, body=b"hi")
        r = c.caller.response_to("MESSAGE")
        log("MESSAGE from the caller itself to %s -> %s" % (anywhere, r.first))
        check(r.status == 403, "the caller's MESSAGE to another host got %s, expected 403"
              % r.first)
        leaked = sentinel.got()
        check(not leaked, "the proxy relayed to %s: %r" % (anywhere, leaked[:3]))
        check(not c.callee.quiet(lambda m: m.method, 0.3),
              "the callee received the attacker's requests")
        # The dialog's own parties are still served, in both directions.
        c.send_in_dialog("MESSAGE", body=b"still here")
        got = c.callee.expect(lambda m: m.method == "MESSAGE", "the caller's MESSAGE")
        c.callee.reply(got, 200, "OK")
        check(c.caller.response_to("MESSAGE").status == 200, "the caller's MESSAGE failed")
        c.send_in_dialog("INFO", from_caller=False, body=b"Signal=1")
        got = c.caller.expect(lambda m: m.method == "INFO", "the callee's INFO")
        c.caller.reply(got, 200, "OK")
        check(c.callee.response_to("INFO").status == 200, "the callee's INFO failed")
        hang_up(env, c)


@case
def case_dialog_forged_reinvite(env):
    """Issue 11, media hijack: a re-INVITE from 127.0.0.2 pointing the media at
    itself, knowing only the Call-ID (with the signed route), or the Call-ID
    and both tags, is refused; the callee gets no INVITE, the relay keeps the
    call as it was (portierctl relay) and the caller's RTP still reaches the
    callee, none the attacker. The real caller's re-INVITE still works."""
    env.start_proxy()
    c = py_call(env)
    attacker = PyUA("attacker", ATTACKER, env.ports.sip(5), env.ports.proxy)
    trap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    trap.bind((ATTACKER, env.ports.media(5)))
    trap.setblocking(False)
    try:
        check(media_reaches_callee(env, c) == 10, "no media before the attack")
        before = relay_call(env, c.call_id)
        check(before, "the call is not in portierctl relay")
        evil = py_sdp(env.ports.media(5), owner="mon1", version=2, host=ATTACKER)
        for what, kw in (("the Call-ID only", dict(from_tag="guess1", to_tag="guess2")),
                         ("the Call-ID and both tags", {})):
            for from_caller in (True, False):
                c.send_in_dialog("INVITE", from_caller=from_caller, ua=attacker, body=evil, **kw)
                _refused(attacker, "INVITE", (403, 481), "re-INVITE from %s knowing %s (as the %s)"
                         % (ATTACKER, what, "caller" if from_caller else "callee"),
                         peers=(c.caller, c.callee))
        # UPDATE (RFC 3311) and an ACK carrying an answer are refused alike.
        c.send_in_dialog("UPDATE", ua=attacker, body=evil)
        _refused(attacker, "UPDATE", (403, 481), "UPDATE from %s knowing the tags" % ATTACKER,
                 peers=(c.caller, c.callee))
        c.send_in_dialog("ACK", ua=attacker, cseq=c.cseq, body=evil)
        # (the 481s to the INVITEs above are retransmitted until ACKed: not these)
        check(not attacker.quiet(lambda m: m.status and m.cseq()[1] == "ACK", 0.5),
              "a forged ACK was answered")
        for ua in (c.caller, c.callee):
            check(not ua.quiet(lambda m: m.method in ("INVITE", "UPDATE", "ACK"), 0.3),
                  "%s received a forged request" % ua.name)
        after = relay_call(env, c.call_id)
        check(after and after.get("ports") == before.get("ports"),
              "the relay's call changed: %s -> %s" % (before, after))
        check(media_reaches_callee(env, c) == 10, "the callee lost the caller's media")
        check(not drain_socket(trap), "media went to the attacker")
        # The real caller can still re-INVITE (RFC 3261 section 14.1).
        c.send_in_dialog("INVITE", body=py_sdp(c.caller_rtp.port, version=2))
        got = c.callee.expect(lambda m: m.method == "INVITE", "the caller's re-INVITE")
        c.callee.reply(got, 200, "OK", body=py_sdp(c.callee_rtp.port, owner="mon1", version=2))
        ok = c.caller.response_to("INVITE")
        check(ok.status == 200, "the caller's re-INVITE got %s" % ok.first)
        c.send_in_dialog("ACK", cseq=ok.cseq()[0])
        c.callee.expect(lambda m: m.method == "ACK", "the re-INVITE's ACK")
        hang_up(env, c)
    finally:
        trap.close()
        attacker.close()
        close_call(c)


@case
def case_dialog_forged_bye(env):
    """Issue 11, forged teardown: BYEs with wrong tags (from 127.0.0.2 and from
    the caller's own host), and one with the right tags from 127.0.0.2, end
    nothing: the callee gets no BYE, the relay's ports stay allocated and the
    media still flows. Then the real BYE frees them."""
    env.start_proxy()
    c = py_call(env)
    attacker = PyUA("attacker", ATTACKER, env.ports.sip(5), env.ports.proxy)
    local = PyUA("local", LOCAL, env.ports.sip(6), env.ports.proxy)
    try:
        before = env.ctl("relay")
        check(before.get("ports_in_use", 0) > 0, "no relay ports in use: %s" % before)
        for who, ua, kw in (
                ("127.0.0.2, wrong tags", attacker, dict(from_tag="x1", to_tag="x2")),
                ("127.0.0.2, right tags", attacker, {}),
                ("127.0.0.2, right tags as the callee", attacker, dict(from_caller=False)),
                ("the caller's host, wrong To tag", local, dict(to_tag="x3"))):
            c.send_in_dialog("BYE", ua=ua, **kw)
            _refused(ua, "BYE", (403, 481), "BYE from %s" % who, peers=(c.caller, c.callee))
        for ua in (c.caller, c.callee):
            check(not ua.quiet(lambda m: m.method == "BYE", 0.3),
                  "%s received a forged BYE" % ua.name)
        after = env.ctl("relay")
        check(after.get("ports_in_use") == before.get("ports_in_use") and
              relay_call(env, c.call_id), "forged BYEs freed relay ports: %s -> %s"
              % (before, after))
        check(media_reaches_callee(env, c) == 10, "the media stopped after the forged BYEs")
        check(any(x.get("call_id") == c.call_id for x in env.calls()),
              "the call left portierctl calls")
        hang_up(env, c)
    finally:
        attacker.close()
        local.close()
        close_call(c)


@case
def case_dialog_route_signature(env):
    """Issue 11: our Record-Route carries a signature (sig=, an HMAC over the
    dialog), and only a Route we signed brings an in-dialog request through:
    from the caller's own host with the right tags, a Route without sig= or
    with a forged one gets 403 and reaches nobody; the signed one works."""
    env.start_proxy()
    c = py_call(env)
    local = PyUA("local", LOCAL, env.ports.sip(6), env.ports.proxy)
    p = "%s:%d" % (LOCAL, env.ports.proxy)
    try:
        log("Record-Route at the caller: %s" % c.record_route)
        check(len(c.record_route) == 1 and
              re.match(r"<sip:%s;lr;sig=[0-9a-f]{32}>$" % re.escape(p), c.record_route[0]),
              "Record-Route %s is not <sip:%s;lr;sig=HEX>" % (c.record_route, p))
        sig = re.search(r"sig=([0-9a-f]+)", c.record_route[0]).group(1)
        forged = "0" * 32 if sig != "0" * 32 else "1" * 32
        for what, route in (("no sig", "<sip:%s;lr>" % p),
                            ("a forged sig", "<sip:%s;lr;sig=%s>" % (p, forged)),
                            ("this dialog's sig on another Call-ID", None)):
            if route is None:
                # The signature of this route is for this dialog only.
                route = c.record_route[0]
                c.send_in_dialog("MESSAGE", ua=local, route=[route], call_id="other@" + LOCAL,
                                 body=b"x")
            else:
                c.send_in_dialog("MESSAGE", ua=local, route=[route], body=b"x")
            r = local.response_to("MESSAGE")
            log("MESSAGE with %s -> %s" % (what, r.first))
            check(r.status == 403, "MESSAGE with %s got %s, expected 403" % (what, r.first))
        check(not c.callee.quiet(lambda m: m.method == "MESSAGE", 0.3),
              "the callee received a MESSAGE through a route we did not sign")
        c.send_in_dialog("MESSAGE", body=b"signed")
        got = c.callee.expect(lambda m: m.method == "MESSAGE", "the signed MESSAGE")
        c.callee.reply(got, 200, "OK")
        check(c.caller.response_to("MESSAGE").status == 200, "the signed MESSAGE failed")
        hang_up(env, c)
    finally:
        local.close()
        close_call(c)


@case
def case_dialog_identity(env):
    """RFC 3325 section 5 / 9.1 on the in-dialog path: a P-Asserted-Identity or
    P-Preferred-Identity a party writes itself is removed, and the identity
    the proxy recorded for that party when the dialog formed is asserted in
    its place (the door reads it): the caller's from digest, the callee's
    from its registration."""
    env.start_proxy()
    c = py_call(env)
    forged = ("P-Asserted-Identity: <sip:alice@%s>\r\nP-Preferred-Identity: <sip:alice@%s>"
              % (DOMAIN, DOMAIN))
    try:
        for from_caller, ua, peer, want in ((True, c.caller, c.callee, "door"),
                                            (False, c.callee, c.caller, "mon1")):
            c.send_in_dialog("MESSAGE", from_caller=from_caller, body=b"1234", extra=forged)
            got = peer.expect(lambda m: m.method == "MESSAGE", "MESSAGE at %s" % peer.name)
            pai = got.hdrs("P-Asserted-Identity")
            log("%s's MESSAGE at %s: P-Asserted-Identity %s, P-Preferred-Identity %s"
                % (ua.name, peer.name, pai, got.hdrs("P-Preferred-Identity")))
            check(pai == ["<sip:%s@%s>" % (want, DOMAIN)],
                  "%s's in-dialog MESSAGE reached %s with P-Asserted-Identity %s, expected "
                  "only <sip:%s@%s>" % (ua.name, peer.name, pai, want, DOMAIN))
            check(not got.hdrs("P-Preferred-Identity"), "P-Preferred-Identity passed through")
            peer.reply(got, 200, "OK")
            check(ua.response_to("MESSAGE").status == 200, "the MESSAGE failed")
        hang_up(env, c)
    finally:
        close_call(c)


@case
def case_dialog_notify_first(env):
    """RFC 6665 section 4.1.2.4: the notifier's first NOTIFY may overtake the
    200 of the SUBSCRIBE; it forms the dialog at the proxy when it comes from
    the host the SUBSCRIBE went to, and reaches the subscriber. The same
    NOTIFY from 127.0.0.2 (tags and signed route copied) gets 481 and reaches
    nobody. Later requests of the subscription go through."""
    env.start_proxy()
    env.register("mon1", 0)
    p = env.ports.proxy
    sub = PyUA("door", LOCAL, env.ports.sip(4), p)
    notifier = PyUA("mon1", LOCAL, env.ports.sip(0), p)
    attacker = PyUA("attacker", ATTACKER, env.ports.sip(5), p)
    try:
        ruri = "sip:mon1@%s" % DOMAIN
        call_id, stag, ntag = sub.uniq("sub") + "@" + LOCAL, sub.uniq("st"), notifier.uniq("nt")
        head = ("SUBSCRIBE %s SIP/2.0\nVia: {via}\nFrom: <sip:door@%s>;tag=%s\nTo: <%s>\n"
                "Call-ID: %s\nCSeq: {cseq} SUBSCRIBE\nContact: <sip:door@%s:%d>\n"
                "Event: presence\nExpires: 60\nMax-Forwards: 70\n{auth}"
                % (ruri, DOMAIN, stag, ruri, call_id, LOCAL, sub.port))
        sub.send(head.format(via=sub.via(), cseq=1, auth=""))
        r = sub.response_to("SUBSCRIBE")
        check(r.status == 407, "SUBSCRIBE without credentials got %s" % r.first)
        chal = py_challenge(r)
        sub.send(head.format(via=sub.via(), cseq=2, auth="Proxy-Authorization: %s\n"
                             % digest_auth("door", USERS["door"], chal, "SUBSCRIBE", ruri,
                                           cnonce="0a4f113b")))
        req = notifier.expect(lambda m: m.method == "SUBSCRIBE", "SUBSCRIBE")
        rr = req.hdrs("Record-Route")
        check(rr, "the SUBSCRIBE carries no Record-Route")

        def notify(ua, cseq):
            ua.send("NOTIFY sip:door@%s:%d SIP/2.0\nVia: %s\n%sFrom: <%s>;tag=%s\n"
                    "To: <sip:door@%s>;tag=%s\nCall-ID: %s\nCSeq: %d NOTIFY\n"
                    "Contact: <sip:%s:%d>\nEvent: presence\n"
                    "Subscription-State: active;expires=60\nMax-Forwards: 70"
                    % (LOCAL, sub.port, ua.via(), "".join("Route: %s\n" % x for x in rr),
                       ruri, ntag, DOMAIN, stag, call_id, cseq, ua.ip, ua.port))

        notify(attacker, 1)
        r = attacker.response_to("NOTIFY")
        log("NOTIFY from %s ahead of the 200 -> %s" % (ATTACKER, r.first))
        check(r.status == 481, "the attacker's NOTIFY got %s, expected 481" % r.first)
        check(not sub.quiet(lambda m: m.method == "NOTIFY", 0.3),
              "the subscriber received the attacker's NOTIFY")
        notify(notifier, 1)
        got = sub.expect(lambda m: m.method == "NOTIFY", "the notifier's NOTIFY")
        sub.reply(got, 200, "OK")
        r = notifier.response_to("NOTIFY")
        log("the notifier's NOTIFY ahead of the 200 -> %s" % r.first)
        check(r.status == 200, "the notifier's NOTIFY got %s, expected 200" % r.first)
        notifier.reply(req, 200, "OK", to_tag=ntag, extra="Expires: 60")
        ok = sub.response_to("SUBSCRIBE")
        check(ok.status == 200 and ok.tag("To") == ntag, "SUBSCRIBE got %s" % ok.first)
        # The subscriber ends the subscription inside the dialog (RFC 6665 section 4.1.2.3).
        sub.send("SUBSCRIBE sip:%s:%d SIP/2.0\nVia: %s\n%sFrom: <sip:door@%s>;tag=%s\n"
                 "To: <%s>;tag=%s\nCall-ID: %s\nCSeq: 3 SUBSCRIBE\nContact: <sip:door@%s:%d>\n"
                 "Event: presence\nExpires: 0\nMax-Forwards: 70"
                 % (LOCAL, notifier.port, sub.via(),
                    "".join("Route: %s\n" % x for x in reversed(ok.hdrs("Record-Route"))),
                    DOMAIN, stag, ruri, ntag, call_id, LOCAL, sub.port))
        # (the first SUBSCRIBE may have been retransmitted meanwhile: CSeq 3 is ours)
        unsub = notifier.expect(lambda m: m.method == "SUBSCRIBE" and m.cseq()[0] == 3,
                                "the un-SUBSCRIBE")
        notifier.reply(unsub, 200, "OK", extra="Expires: 0")
        check(sub.response_to("SUBSCRIBE").status == 200, "the un-SUBSCRIBE failed")
    finally:
        for ua in (sub, notifier, attacker):
            ua.close()
