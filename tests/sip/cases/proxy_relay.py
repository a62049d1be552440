"""portier-proxy's media relay: the early-media fork, latching, late answers, SDP the
relay cannot use, call limits (RFC 3264)."""

import os
import re
import socket
import struct
import threading
import time

from portier_sip.base import ATTACKER, DOMAIN, GROUP, LOCAL, USERS, check, log
from portier_sip.checks import register_devices, wait_all
from portier_sip.pycall import close_call, media_reaches_callee, py_call, py_sdp, relay_call
from portier_sip.rawua import (RawCall, RawUa, check_next_call_busy, invite_of, random_id,
                               raw_devices, raw_reply)
from portier_sip.register import sip_register
from portier_sip.registry import case
from portier_sip.rtp import RtpPeer, rtp_packet
from portier_sip.sipmsg import sdp_body, status_of


def _door_audio_to(door_rtp, relay_port, peer):
    """Ten audio packets (SSRC 0xd00d) from door_rtp to the relay's relay_port;
    returns those that reached peer (a bounded wait)."""
    for seq in range(1, 11):
        door_rtp.sock.sendto(rtp_packet(seq, seq * 160, 0xd00d, b"\x00" * 20, pt=0),
                             (LOCAL, relay_port))
        time.sleep(0.01)
    deadline = time.time() + 3
    while not peer.rtp(0xd00d) and time.time() < deadline:
        time.sleep(0.05)
    return peer.rtp(0xd00d)


@case
def case_relay_early_media(env):
    """The media relay (issue 3): the door calls the group; three devices answer
    183 recvonly and every one of them receives the door's RTP while ringing
    (early media forked per 183 branch); the door gets a keyframe request
    (RTCP PLI, RFC 4585 section 6.3.1) for the joining branches; mon1 answers
    200: from then on only mon1 receives, and mon1's RTP reaches the door;
    after BYE every relay port is free again (portierctl relay)."""
    relay_group_call(env, door_behind_nat=False)


@case
def case_relay_latching(env):
    """Symmetric RTP (RFC 4961; what rtpengine and Flexisip call latching): the
    door sits behind a NAT, so its video leaves from another port than the one
    its SDP names. Once the relay has seen the door's first packet, the
    winner's RTP goes to where the door's packets came from, not to the
    signalled port, which nothing behind a NAT would receive."""
    relay_group_call(env, door_behind_nat=True)


def relay_group_call(env, door_behind_nat):
    """The door calls the group through the relay, mon1 wins (case_relay_early_media).
    door_behind_nat: the door sends its video from a port its SDP does not name."""
    env.start_proxy()
    register_devices(env, [("mon1", 0), ("mon2", 1), ("mon3", 2)])
    door_ssrc, mon1_ssrc = 0x0d00d00d, 0x0a11ce01
    # media sockets of the test: sipp's own media ports (slots 0-5) are not used
    door_a, door_v = env.ports.media(6), env.ports.media(6) + 2
    peers = {}
    sender_stop = threading.Event()
    try:
        peers["door"] = RtpPeer("door", door_v)
        peers["door_rtcp"] = RtpPeer("door_rtcp", door_v + 1)
        # the door's video socket as its NAT maps it: a port the SDP never names
        sending = peers["door"]
        if door_behind_nat:
            sending = peers["door_nat"] = RtpPeer("door_nat", env.ports.media(5))
        for i, name in enumerate(("mon1", "mon2", "mon3")):
            base = env.ports.media(7 + i)
            peers[name] = RtpPeer(name, base + 2, echo_ssrc=mon1_ssrc if name == "mon1" else None)
        relay_port_file = os.path.join(env.dir, "relay_video_port")
        mon1 = env.uas("mon1", "uas_relay_answer.xml", 0,
                       fields=[[env.ports.media(7), env.ports.media(7) + 2]])
        mon2 = env.uas("mon2", "uas_relay_cancelled.xml", 1,
                       fields=[[env.ports.media(8), env.ports.media(8) + 2]])
        mon3 = env.uas("mon3", "uas_relay_cancelled.xml", 2,
                       fields=[[env.ports.media(9), env.ports.media(9) + 2]])
        door = env.sipp("door", "door_relay_call.xml", 4,
                        [["door", USERS["door"], DOMAIN, door_a, door_v, relay_port_file]],
                        service=GROUP, auth_uri="%s@%s" % (GROUP, DOMAIN), timeout=30)

        def send_door_video():
            # The door's VP8 stream at 50 packets/s, a keyframe every 25th
            # packet, from its signalled port; bounded by count and by the call.
            deadline = time.time() + 10
            while not os.path.exists(relay_port_file) or not open(relay_port_file).read().strip():
                if sender_stop.is_set() or time.time() > deadline:
                    return
                time.sleep(0.02)
            relay = int(open(relay_port_file).read().split()[0])  # "PORT m=video PORT"
            for seq in range(1, 1000):
                if sender_stop.is_set():
                    return
                key = seq % 25 == 1
                payload = b"\x10" + (b"\x50" if key else b"\x51") + b"door-video"
                sending.sock.sendto(rtp_packet(seq, seq * 1800, door_ssrc, payload),
                                    (LOCAL, relay))
                time.sleep(0.02)

        sender = threading.Thread(target=send_door_video, daemon=True)
        sender.start()
        door.wait()
        sender_stop.set()
        sender.join(3)
        wait_all([door, mon1, mon2, mon3])
    finally:
        sender_stop.set()
        for p in peers.values():
            p.close()

    check(os.path.exists(relay_port_file), "the door never got a 183 with the relay's SDP")
    e183 = door.received(lambda m: m.status == 183)
    check(len(e183) == 1, "the door must see one early dialog (first 183 with SDP), got %d 183s"
          % len(e183))
    ok200 = door.received(lambda m: m.status == 200 and m.cseq_method() == "INVITE")[0]
    t200 = ok200.ts()
    check(ok200.hdrs("P-Asserted-Identity") == ["<sip:mon1@%s>" % DOMAIN],
          "the door's 200 asserts %s, expected the answering device sip:mon1@%s"
          % (ok200.hdrs("P-Asserted-Identity"), DOMAIN))
    for name in ("mon1", "mon2", "mon3"):
        dev = {"mon1": mon1, "mon2": mon2, "mon3": mon3}[name]
        inv = dev.received(lambda m: m.method == "INVITE")[0]
        check("c=IN IP4 %s" % LOCAL in inv.body and "m=video %d" % door_v not in inv.body,
              "%s: the INVITE's SDP does not point at the relay:\n%s" % (name, inv.body))
        # RFC 3325 §9.1: the proxy asserts who authenticated, never what the
        # caller claimed (the door's INVITE carries a forged identity)
        check(inv.hdrs("P-Asserted-Identity") == ["<sip:door@%s>" % DOMAIN],
              "%s: P-Asserted-Identity is %s, expected the door's authenticated AOR only"
              % (name, inv.hdrs("P-Asserted-Identity")))
        # The proxy absorbs all early answers but one, and nobody would PRACK
        # an absorbed reliable 183 (RFC 3262 section 3): a forked relayed
        # INVITE offers no 100rel; the door's other options pass.
        supported = ",".join(inv.hdrs("Supported")).replace(" ", "").split(",")
        check("100rel" not in supported and "timer" in supported,
              "%s: Supported is %s, expected timer without 100rel" % (name, supported))
        early = [p for p in peers[name].rtp(door_ssrc) if p[0] < t200]
        log("%s: %d door packets before the 200, %d in all"
            % (name, len(early), len(peers[name].rtp(door_ssrc))))
        check(early, "%s received none of the door's RTP while ringing (early media)" % name)
    for name in ("mon2", "mon3"):
        late = [p for p in peers[name].rtp(door_ssrc) if p[0] > t200 + 0.02]
        check(not late, "%s (a loser) still received %d door packet(s) after the 200"
              % (name, len(late)))
    back = sending.rtp(mon1_ssrc)
    log("door: %d packets from mon1 (the winner) at port %d" % (len(back), sending.port))
    check(back, "mon1's RTP (the winner's) never reached the door at port %d" % sending.port)
    if door_behind_nat:
        stray = peers["door"].rtp(mon1_ssrc)
        check(not stray, "%d of mon1's packets went to the door's signalled port %d, not to "
              "where its packets come from (no latching)" % (len(stray), door_v))
    check(all(p[1][1] != env.ports.media(7) + 2 for p in back),
          "mon1's RTP reached the door directly, not through the relay")
    plis = [p for p in peers["door_rtcp"].packets
            if len(p[2]) >= 12 and p[2][1] == 206 and (p[2][0] & 0x1f) == 1]
    log("door: %d PLI(s) from the relay" % len(plis))
    check(plis, "the door got no RTCP PLI when the devices joined (keyframe request)")
    check(all(struct.unpack("!I", p[2][8:12])[0] == door_ssrc for p in plis),
          "a PLI names another media SSRC than the door's")
    env.wait_relay_free()
    env.wait_no_calls()


@case
def case_relay_late_answer(env):
    """Two devices answer at once (issue 3): mon1's 200 wins; mon2's 200 crosses
    the proxy's CANCEL. With the media relay the caller's media is joined to
    mon1's, so the proxy does not forward mon2's 2xx (the door sees one 200);
    it ACKs it (RFC 3261 section 13.2.2.4) and sends BYE (section 15.1.1), and
    mon2's relay ports are freed with the rest after the call."""
    env.start_proxy()
    register_devices(env, [("mon1", 0), ("mon2", 1)])
    mon1 = env.uas("mon1", "uas_relay_answer.xml", 0,
                   fields=[[env.ports.media(7), env.ports.media(7) + 2]])
    mon2 = env.uas("mon2", "uas_relay_late_answer.xml", 1,
                   fields=[[env.ports.media(8), env.ports.media(8) + 2]])
    door = env.sipp("door", "door_relay_call.xml", 4,
                    [["door", USERS["door"], DOMAIN, env.ports.media(6), env.ports.media(6) + 2,
                      os.path.join(env.dir, "relay_video_port")]],
                    service=GROUP, auth_uri="%s@%s" % (GROUP, DOMAIN), timeout=30)
    wait_all([door, mon1, mon2])
    oks = door.received(lambda m: m.status == 200 and m.cseq_method() == "INVITE")
    check(len(oks) == 1, "the door got %d 200s for its INVITE, expected 1 (the late 2xx "
          "must not reach it)" % len(oks))
    check("SIPpTag01" in (oks[0].hdr("To") or "") and
          mon1.sent(lambda m: m.status == 200 and m.cseq_method() == "INVITE"),
          "the door's 200 is not mon1's")
    ack = mon2.received(lambda m: m.method == "ACK")
    bye = mon2.received(lambda m: m.method == "BYE")
    check(ack and bye, "mon2's late 200 was not ACKed and ended with BYE by the proxy")
    inv = mon2.received(lambda m: m.method == "INVITE")[0]
    check(bye[0].hdr("Call-ID") == inv.hdr("Call-ID"), "the BYE is not for mon2's dialog")
    cseq = int((inv.hdr("CSeq") or "0").split()[0])
    check(ack[0].hdr("CSeq") == "%d ACK" % cseq,
          "the ACK's CSeq %r is not the INVITE's number (section 13.2.2.4)" % ack[0].hdr("CSeq"))
    check("door@" in (bye[0].hdr("From") or ""), "the BYE does not come from the caller's side")
    env.wait_relay_free()
    env.wait_no_calls()


def _warning_text(resp):
    """The warn-text of a Warning header, checked to be a valid quoted-string
    (RFC 3261 section 20.43 and 25.1: `"` and `\\` only as quoted-pairs)."""
    w = resp.hdr("Warning") or ""
    m = re.match(r'^(\d{3}) (\S+) "((?:[^"\\\r\n]|\\[^\r\n])*)"$', w)
    check(m, "%s: Warning %r is not warn-code SP warn-agent SP quoted-string" % (resp.first, w))
    return re.sub(r"\\(.)", r"\1", m.group(3))


def _relay_answered_call(env, offer_streams, answer_streams, check_answers):
    """The door (RawUa + RTP socket) calls mon1 with offer_streams; mon1
    answers 200 with answer_streams; check_answers(inv_sdp, ok) looks at
    what mon1 was offered and what the door got. Then the door's audio must
    reach mon1 through the relay, and after BYE every relay port is free."""
    env.start_proxy()
    (mon1,) = raw_devices(env, ["mon1"])
    door = RawUa("door", LOCAL)
    door_rtp = RtpPeer("door_rtp", env.ports.media(6))
    mon_rtp = RtpPeer("mon1_rtp", env.ports.media(7))
    try:
        call = RawCall(env, door, "door", "mon1",
                       sdp_body(LOCAL, [s.replace("%d", str(door_rtp.port)) for s in offer_streams]))
        inv = invite_of(mon1)
        raw_reply(mon1, inv, 200, "OK", "m1",
               body=sdp_body(LOCAL, [s.replace("%d", str(mon_rtp.port)) for s in answer_streams]))
        ok = call.final()
        check(ok.status == 200, "door: %s, expected 200" % ok.first)
        call.in_dialog("ACK", ok)
        check_answers(inv.body, ok)
        audio = re.search(r"m=audio (\d+) ", ok.body)
        got = _door_audio_to(door_rtp, int(audio.group(1)), mon_rtp)
        check(got, "the door's audio sent to the relay never reached mon1")
        check(all(p[1][1] != door_rtp.port for p in got),
              "the door's audio reached mon1 directly, not through the relay")
        call.in_dialog("BYE", ok)
        bye = mon1.wait_for(lambda m: m.method == "BYE", 5, "BYE")
        raw_reply(mon1, bye, 200, "OK", "m1")
        env.wait_relay_free()
    finally:
        for p in (mon1, door, door_rtp, mon_rtp):
            p.close()


@case
def case_relay_answer_missing_line(env):
    """RFC 3264 section 6: the door offers audio and video, mon1 answers with
    an audio line only. The door gets an answer with both lines, the video
    rejected (port 0) and the audio pointed at the relay, not at mon1 (which
    would bypass the relay); the audio flows through the relay."""
    def check_answers(offered, ok):
        lines = re.findall(r"^m=.*$", ok.body, re.M)
        log("door's answer: %s" % lines)
        check(len(lines) == 2, "the door's answer has %d m= lines, the offer 2: %s"
              % (len(lines), lines))
        check(lines[1].startswith("m=video 0 "), "the video is not rejected: %s" % lines[1])
        check(not lines[0].startswith("m=audio %d " % env.ports.media(7)),
              "the door's answer points at mon1, not at the relay: %s" % lines[0])
    _relay_answered_call(env, ["audio %d RTP/AVP 0", "video 4002 RTP/AVP 96"],
                         ["audio %d RTP/AVP 0"], check_answers)


@case
def case_relay_unrelayable_stream(env):
    """An offer with audio, real-time text (m=text, RFC 4103) and BFCP
    (m=application UDP/BFCP): the relay carries only RTP audio and video, so
    it rejects the other two with port 0 towards mon1 and in the door's
    answer, and relays the audio (the whole call used to fail with 488)."""
    def check_answers(offered, ok):
        to_mon = re.findall(r"^m=.*$", offered, re.M)
        up = re.findall(r"^m=.*$", ok.body, re.M)
        log("mon1 was offered %s; the door got %s" % (to_mon, up))
        check(len(to_mon) == 3 and to_mon[1].startswith("m=text 0 ") and
              to_mon[2].startswith("m=application 0 "),
              "mon1's offer does not reject text and BFCP with port 0: %s" % to_mon)
        check(len(up) == 3 and up[1].startswith("m=text 0 ") and
              up[2].startswith("m=application 0 ") and not up[0].startswith("m=audio 0 "),
              "the door's answer is not audio relayed, text and BFCP rejected: %s" % up)
    _relay_answered_call(env, ["audio %d RTP/AVP 0", "text 4010 RTP/AVP 98",
                               "application 4012 UDP/BFCP *"],
                         ["audio %d RTP/AVP 0", "text 0 RTP/AVP 98",
                          "application 0 UDP/BFCP *"], check_answers)


@case
def case_relay_refuses_unusable_c(env):
    """From another host (127.0.0.2): offers whose c= the IPv4 relay cannot
    serve get 488 with a valid Warning and ring nobody: an IPv6 address, a
    host name (never looked up: that would block the proxy's SIP thread),
    and SDP whose error text quotes a line (the `"` made the Warning invalid
    and the caller got 500). A resident on 127.0.0.1 still calls."""
    env.start_proxy()
    (mon1,) = raw_devices(env, ["mon1"])
    attacker = RawUa("attacker", ATTACKER)
    door = RawUa("door", LOCAL)
    try:
        offers = [
            ("IPv6", sdp_body("::1", ["audio 4000 RTP/AVP 0"]), "IPv6"),
            ("host name", sdp_body("relay-victim.invalid", ["audio 4000 RTP/AVP 0"]),
             "not an IP address"),
            ("quoting error", sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"]) + "junk line\n", '"junk'),
        ]
        for what, sdp, expected in offers:
            call = RawCall(env, attacker, "mon2", "mon1", sdp)
            fin = call.final()
            log("%s: %s / Warning: %s" % (what, fin.first, fin.hdr("Warning")))
            check(fin.status == 488, "%s: %s, expected 488" % (what, fin.first))
            text = _warning_text(fin)
            check(expected in text, "%s: warn-text %r does not say %r" % (what, text, expected))
        check(not mon1.got(lambda m: m.method == "INVITE"),
              "an offer the relay cannot serve rang mon1")
        check(env.ctl("relay").get("ports_in_use") == 0, "a refused offer kept relay ports")
        check_next_call_busy(env, door, mon1, "mon1", "m1")
        env.wait_relay_free()
    finally:
        for ua in (mon1, attacker, door):
            ua.close()
    env.assert_no_secrets()


@case
def case_relay_call_limits(env):
    """max-calls-per-user = 2, max-calls-per-source = 3: a resident on another
    host (127.0.0.2) rings mon1 again and again; its third call gets 503 with
    Retry-After and takes no relay port, and when a second account on that
    host fills its address's share, that one is refused too. The door on
    127.0.0.1 still rings mon1 meanwhile."""
    env.relay_extra = "max-calls-per-user = 2\nmax-calls-per-source = 3\n"
    env.start_proxy()
    (mon1,) = raw_devices(env, ["mon1"])
    attacker = RawUa("attacker", ATTACKER)
    door = RawUa("door", LOCAL)
    sdp = sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"])
    try:
        def ringing(user, ua):
            call = RawCall(env, ua, user, "mon1", sdp)
            inv = invite_of(mon1, call.call_id)
            raw_reply(mon1, inv, 180, "Ringing", "m%08x" % random_id())
            ua.wait_for(lambda m: m in call.responses() and m.status == 180, 5, "180")
            return call

        def refused(user, ua, limit):
            call = RawCall(env, ua, user, "mon1", sdp)
            fin = call.final()
            log("%s from %s: %s, Retry-After %s, Warning %s"
                % (user, ua.host, fin.first, fin.hdr("Retry-After"), fin.hdr("Warning")))
            check(fin.status == 503 and fin.hdr("Retry-After"),
                  "%s's call over the limit: %s, expected 503 with Retry-After" % (user, fin.first))
            check(limit in _warning_text(fin), "the Warning does not name %s" % limit)
            check(not mon1.got(lambda m: m.method == "INVITE" and
                               m.hdr("Call-ID") == call.call_id),
                  "a call over the limit rang mon1")

        ringing("mon2", attacker)
        ringing("mon2", attacker)
        ports = env.ctl("relay").get("ports_in_use")
        refused("mon2", attacker, "max-calls-per-user")
        check(env.ctl("relay").get("ports_in_use") == ports, "a refused call took relay ports")
        ringing("door", door)  # the resident on 127.0.0.1 is not affected
        ringing("mon3", attacker)  # the third call from 127.0.0.2
        refused("mon3", attacker, "max-calls-per-source")
        ringing("door", door)
        check(len(env.ctl("relay").get("calls")) == 5, "the relay does not list the 5 ringing "
              "calls: %s" % env.ctl("relay"))
    finally:
        for ua in (mon1, attacker, door):
            ua.close()
    env.assert_no_secrets()


def _rogue_device(env, user, slot):
    """user registered from 127.0.0.2 (another host on the LAN) at SIP port
    slot, driven as a RawUa: a device whose SDP names 127.0.0.2, so an answer
    that bypassed the relay is told apart from the relay's (127.0.0.1)."""
    port = env.ports.sip(slot)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ATTACKER, port))
    try:
        r = sip_register(env, user, "<sip:%s@%s:%d>" % (user, ATTACKER, port), src=ATTACKER,
                         sock=s)
    finally:
        s.close()
    check(r is not None and status_of(r) == 200, "%s could not register from %s: %r"
          % (user, ATTACKER, r[:80] if r else r))
    return RawUa(user, ATTACKER, port)


def _bypassing(ua, call_id, *needles):
    """The messages of call_id that ua received whose body names one of needles
    (the device's media address or ports): SDP that would bypass the relay.
    Whole tokens only: relay port 41702 does not name port 4170."""
    pattern = re.compile(r"(?<![\w.])(%s)(?![\w.])" % "|".join(re.escape(n) for n in needles))
    return [m.first for m in ua.got(lambda m: m.hdr("Call-ID") == call_id and m.body and
                                    pattern.search(m.body))]


def _ack_failure(ua, ruri, resp, route=()):
    """The ACK of a non-2xx final response, in its transaction (RFC 3261
    section 17.1.1.3: the INVITE's Via branch and Route)."""
    ua.send("ACK %s SIP/2.0\nVia: %s\n%sFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %d ACK\n"
            "Max-Forwards: 70" % (ruri, resp.hdr("Via"), "".join("Route: %s\n" % r for r in route),
                                  resp.hdr("From"), resp.hdr("To"), resp.hdr("Call-ID"),
                                  resp.cseq()[0]))


def _proxy_hangs_up(dev, call_id, cause):
    """The proxy's ACK and BYE that end a device's refused 2xx; the BYE says
    why (RFC 3326). Returns the BYE, answered 200."""
    dev.wait_for(lambda m: m.method == "ACK" and m.hdr("Call-ID") == call_id, 5,
                 "the proxy's ACK of the refused 200")
    bye = dev.wait_for(lambda m: m.method == "BYE" and m.hdr("Call-ID") == call_id, 5,
                       "the proxy's BYE of the refused 200")
    check("cause=%d" % cause in (bye.hdr("Reason") or "").replace(" ", ""),
          "the proxy's BYE Reason %r, expected cause=%d" % (bye.hdr("Reason"), cause))
    raw_reply(dev, bye, 200, "OK", "x")
    return bye


@case
def case_relay_unusable_answer_forked(env):
    """RFC 3264 section 6: the door rings the group; mon1, registered from
    127.0.0.2, answers with SDP the relay cannot use. Its 183 has more m=
    lines than the offer: the door gets the 183 without SDP (the device rings,
    without early media). Its 200 has only a line that matches nothing in
    the offer: it never reaches the door; the proxy ACKs it and sends BYE
    (Reason cause=488). mon2 answers 200: the door gets mon2's answer pointed
    at the relay and its audio reaches mon2 through the relay. No SDP naming
    mon1's address or ports ever reached the door (it used to get both
    unrewritten, and send its media straight to mon1)."""
    env.start_proxy()
    (mon2,) = raw_devices(env, ["mon2"])
    mon1 = _rogue_device(env, "mon1", 6)
    door = RawUa("door", LOCAL)
    door_rtp = RtpPeer("door_rtp", env.ports.media(6))
    mon2_rtp = RtpPeer("mon2_rtp", env.ports.media(7))
    try:
        call = RawCall(env, door, "door", GROUP,
                       sdp_body(LOCAL, ["audio %d RTP/AVP 0" % door_rtp.port]))
        inv1, inv2 = invite_of(mon1), invite_of(mon2)
        raw_reply(mon1, inv1, 183, "Session Progress", "m1",
               body=sdp_body(ATTACKER, ["audio 4170 RTP/AVP 0", "video 4172 RTP/AVP 96"]))
        early = door.wait_for(lambda m: m in call.responses() and m.status == 183, 5,
                              "mon1's 183")
        log("door: %s with %d body bytes" % (early.first, len(early.body.strip())))
        check("m=" not in early.body, "mon1's unusable early answer reached the door: %r"
              % early.body)
        raw_reply(mon1, inv1, 200, "OK", "m1", body=sdp_body(ATTACKER, ["video 4172 RTP/AVP 96"]))
        _proxy_hangs_up(mon1, call.call_id, 488)
        check(not door.got(lambda m: m in call.responses() and m.status >= 200),
              "mon1's unusable 200 ended the door's INVITE")
        raw_reply(mon2, inv2, 200, "OK", "m2",
               body=sdp_body(LOCAL, ["audio %d RTP/AVP 0" % mon2_rtp.port]))
        ok = call.final()
        check(ok.status == 200 and "tag=m2" in ok.hdr("To"),
              "door: %s (To %s), expected mon2's 200" % (ok.first, ok.hdr("To")))
        call.in_dialog("ACK", ok)
        audio = re.search(r"m=audio (\d+) ", ok.body)
        check(audio and int(audio.group(1)) != mon2_rtp.port,
              "the door's answer does not point at the relay: %r" % ok.body)
        check(_door_audio_to(door_rtp, int(audio.group(1)), mon2_rtp),
              "the door's audio never reached mon2 through the relay")
        bad = _bypassing(door, call.call_id, ATTACKER, "4170", "4172")
        check(not bad, "SDP naming mon1 reached the door in %s" % bad)
        call.in_dialog("BYE", ok)
        bye = mon2.wait_for(lambda m: m.method == "BYE", 5, "BYE")
        raw_reply(mon2, bye, 200, "OK", "m2")
        env.wait_relay_free()
        check("unusable answer" in env.proxy_log_text(), "no log line names the refused answer")
    finally:
        for p in (mon1, mon2, door, door_rtp, mon2_rtp):
            p.close()
    env.assert_no_secrets()


@case
def case_relay_unusable_answer_refused(env):
    """mon1, registered from 127.0.0.2, is the only device rung and answers
    200 with more m= lines than the offer (RFC 3264 section 6). The door gets
    488 Not Acceptable Here with a Warning naming the branch and why, and no
    SDP naming mon1; the proxy ends mon1's dialog (ACK, BYE with Reason
    cause=488); every relay port is freed. The next call still rings mon1."""
    env.start_proxy()
    mon1 = _rogue_device(env, "mon1", 6)
    door = RawUa("door", LOCAL)
    try:
        call = RawCall(env, door, "door", "mon1", sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"]))
        inv = invite_of(mon1, call.call_id)
        raw_reply(mon1, inv, 200, "OK", "m1",
               body=sdp_body(ATTACKER, ["audio 4170 RTP/AVP 0", "video 4172 RTP/AVP 96"]))
        fin = call.final()
        log("door: %s / Warning: %s" % (fin.first, fin.hdr("Warning")))
        check(fin.status == 488, "door: %s, expected 488 (mon1's answer is unusable)" % fin.first)
        text = _warning_text(fin)
        check("branch 0" in text and "m= lines" in text,
              "the Warning %r does not name the branch and the m= lines" % text)
        _proxy_hangs_up(mon1, call.call_id, 488)
        bad = _bypassing(door, call.call_id, ATTACKER, "4170", "4172")
        check(not bad, "SDP naming mon1 reached the door in %s" % bad)
        env.wait_relay_free()
        env.wait_no_calls()
        check_next_call_busy(env, door, mon1, "mon1", "m1b")
        env.wait_relay_free()
    finally:
        for p in (mon1, door):
            p.close()
    env.assert_no_secrets()


@case
def case_relay_reinvite_unusable_sdp(env):
    """In an answered relayed call, re-INVITE offers (RFC 3261 section 14) from
    the door with a c= the relay cannot use (IPv6 on the IPv4 relay, a host
    name) and an UPDATE (RFC 3311) from mon1 naming a host get 488 with a
    Warning and go nowhere (they used to be forwarded as written); the media
    still flows through the relay as before. A re-INVITE without SDP whose
    ACK carries an answer naming a host: mon1 gets the ACK without SDP.
    Then a good re-INVITE whose 2xx
    answer names a host: the door gets 488 (no SDP), the proxy ends mon1's
    side (ACK, BYE with Reason cause=488), the relay frees the call's ports
    and the door's BYE finds no dialog any more (481)."""
    env.start_proxy()
    c = py_call(env)
    try:
        check(media_reaches_callee(env, c) == 10, "no media before the re-INVITEs")
        before = relay_call(env, c.call_id)
        v6 = (b"v=0\r\no=door 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n"
              b"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
        named = py_sdp(4000, version=3, host="relay-victim.invalid")
        for what, body, expected in (("IPv6", v6, "IPv6"), ("host name", named,
                                                            "not an IP address")):
            c.send_in_dialog("INVITE", body=body)
            r = c.caller.response_to("INVITE")
            _ack_failure(c.caller, c.callee_contact, r, list(reversed(c.record_route)))
            log("door's re-INVITE with %s: %s / Warning: %s" % (what, r.first, r.hdr("Warning")))
            check(r.status == 488, "re-INVITE with %s: %s, expected 488" % (what, r.first))
            text = _warning_text(r)
            check(expected in text, "%s: warn-text %r does not say %r" % (what, text, expected))
        c.send_in_dialog("UPDATE", from_caller=False, body=named)
        r = c.callee.response_to("UPDATE")
        check(r.status == 488 and "not an IP address" in _warning_text(r),
              "mon1's UPDATE naming a host: %s / %s, expected 488" % (r.first, r.hdr("Warning")))
        check(not c.callee.quiet(lambda m: m.method == "INVITE", 0.3),
              "mon1 received a re-INVITE the relay could not rewrite")
        check(not c.caller.quiet(lambda m: m.method == "UPDATE", 0.1),
              "the door received an UPDATE the relay could not rewrite")
        after = relay_call(env, c.call_id)
        check(after and after.get("ports") == before.get("ports"),
              "the relay's call changed: %s -> %s" % (before, after))
        check(media_reaches_callee(env, c) == 10, "mon1 lost the door's media")
        # A re-INVITE without SDP: mon1's offer comes in the 200, the door's
        # answer in the ACK (RFC 3264 section 4). An answer naming a host
        # reaches mon1 without its SDP, never as written.
        c.send_in_dialog("INVITE")
        got = c.callee.expect(lambda m: m.method == "INVITE", "the door's re-INVITE without SDP")
        c.callee.reply(got, 200, "OK", body=py_sdp(c.callee_rtp.port, owner="mon1", version=3))
        r = c.caller.response_to("INVITE")
        check(r.status == 200 and b"m=audio %d " % c.caller_media_to in r.body,
              "the 200's offer is not pointed at the relay: %s %r" % (r.first, r.body))
        c.send_in_dialog("ACK", cseq=r.cseq()[0], body=py_sdp(4000, version=5,
                                                                host="relay-victim.invalid"))
        ack = c.callee.expect(lambda m: m.method == "ACK", "the door's ACK")
        check(b"relay-victim" not in ack.body and b"m=" not in ack.body,
              "the ACK's unusable answer reached mon1: %r" % ack.body)
        # A good offer, an unusable answer: the 2xx cannot go up as it is.
        c.send_in_dialog("INVITE", body=py_sdp(c.caller_rtp.port, version=4))
        got = c.callee.expect(lambda m: m.method == "INVITE", "the door's good re-INVITE")
        check(b"IN IP4 127.0.0.1" in got.body, "the re-INVITE's offer: %r" % got.body)
        c.callee.reply(got, 200, "OK", body=py_sdp(c.callee_rtp.port, owner="mon1", version=2,
                                                    host="relay-victim.invalid"))
        r = c.caller.response_to("INVITE", timeout=5)
        log("door's re-INVITE answered with a host name: %s / Warning: %s"
            % (r.first, r.hdr("Warning")))
        check(r.status == 488, "door: %s, expected 488 (mon1's answer is unusable)" % r.first)
        check(b"relay-victim" not in r.body, "the unusable answer reached the door")
        _ack_failure(c.caller, c.callee_contact, r, list(reversed(c.record_route)))
        c.callee.expect(lambda m: m.method == "ACK", "the proxy's ACK of the refused 200")
        bye = c.callee.expect(lambda m: m.method == "BYE", "the proxy's BYE")
        check("cause=488" in (bye.hdr("Reason") or "").replace(" ", ""),
              "the proxy's BYE Reason %r, expected cause=488" % bye.hdr("Reason"))
        c.callee.reply(bye, 200, "OK")
        env.wait_relay_free()
        env.wait_no_calls()
        check(not [m for m in c.caller.received if b"relay-victim" in m.body],
              "SDP naming a host reached the door")
        c.send_in_dialog("BYE")
        r = c.caller.response_to("BYE")
        check(r.status == 481, "the door's BYE after the call ended: %s, expected 481" % r.first)
    finally:
        close_call(c)
    env.assert_no_secrets()


# ---------------------------------------------------------------------------
# SRTP through the relay (issue 13): SDES keys (RFC 4568) terminated per leg.

def _crypto_lines(body):
    """The (tag, suite, key) of every a=crypto line of an SDP body."""
    return [(int(t), s, k) for t, s, k in
            re.findall(r"^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)", body, re.M)]


def _sdes_key(size=30):
    """A fresh key || salt, base64 (RFC 4568 section 6.1): 30 octets for the
    AES_CM_128 suites, 28 for AEAD_AES_128_GCM (RFC 7714 section 12)."""
    import base64
    return base64.b64encode(os.urandom(size)).decode()


@case
def case_relay_srtp_keys_per_branch(env):
    """RFC 3711 section 9.1 (issue 13): the door rings the group with RTP/SAVP
    and two a=crypto lines (RFC 4568). The three INVITEs carry three sets of
    keys, every key fresh: none is the door's and none appears in two offers.
    Each offer lists srtp-crypto-suites' default in order, AEAD_AES_128_GCM
    first (RFC 4568 section 7.1.1: order of preference; RFC 7714 section 12),
    whatever the door offered. mon1 answers 183 with the GCM line (tag 1) and
    mon2 200 with the AES_CM_128_HMAC_SHA1_80 line (tag 2), each with its own
    key (RFC 4568 section 7.1.2: the offered tag and suite): the door's early
    answer and its 200 carry one a=crypto line, the door's tag 1 and suite with
    the relay's key, never a device's; both answers use the same relay key (one
    door-side context). a=rtcp-mux, offered by the door, is
    offered to every device and answered (RFC 5761 section 5.1.1). No key
    reaches the proxy's log."""
    env.start_proxy()
    devs = raw_devices(env, ["mon1", "mon2", "mon3"])
    door = RawUa("door", LOCAL)
    door_keys = [_sdes_key(), _sdes_key()]
    offer = sdp_body(LOCAL, ["audio 4000 RTP/SAVP 0\na=rtcp-mux\n"
                             "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\n"
                             "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:%s" % tuple(door_keys)])
    try:
        call = RawCall(env, door, "door", GROUP, offer)
        invs = [invite_of(d) for d in devs]
        offered = [_crypto_lines(inv.body) for inv in invs]
        keys = [k for lines in offered for _, _, k in lines]
        log("offers: %s" % [[(t, s) for t, s, _ in lines] for lines in offered])
        for i, lines in enumerate(offered):
            check([(t, s) for t, s, _ in lines] == [(1, "AEAD_AES_128_GCM"),
                                                     (2, "AES_CM_128_HMAC_SHA1_80"),
                                                     (3, "AES_CM_128_HMAC_SHA1_32")],
                  "mon%d's offer is not srtp-crypto-suites' default in order: %s"
                  % (i + 1, [(t, s) for t, s, _ in lines]))
            check(re.search(r"^m=audio \d+ RTP/SAVP ", invs[i].body, re.M),
                  "mon%d is not offered RTP/SAVP" % (i + 1))
            check("a=rtcp-mux" in invs[i].body, "mon%d is not offered a=rtcp-mux" % (i + 1))
        check(not set(door_keys) & set(keys), "the door's key reached a device")
        check(len(set(keys)) == len(keys), "a key is offered twice: %s branches" % len(offered))
        mon_keys = [_sdes_key(28), _sdes_key()]
        raw_reply(devs[0], invs[0], 183, "Session Progress", "m1",
                  body=sdp_body(LOCAL, ["audio 4100 RTP/SAVP 0\na=rtcp-mux\n"
                                        "a=crypto:1 AEAD_AES_128_GCM inline:%s"
                                        % mon_keys[0]]))
        early = door.wait_for(lambda m: m in call.responses() and m.status == 183, 5, "183")
        raw_reply(devs[1], invs[1], 200, "OK", "m2",
                  body=sdp_body(LOCAL, ["audio 4200 RTP/SAVP 0\n"
                                        "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:%s"
                                        % mon_keys[1]]))
        ok = call.final()
        check(ok.status == 200, "door: %s, expected 200" % ok.first)
        call.in_dialog("ACK", ok)
        answers = [_crypto_lines(early.body), _crypto_lines(ok.body)]
        log("door's answers: %s" % [[(t, s) for t, s, _ in a] for a in answers])
        for what, lines in zip(("183", "200"), answers):
            check(len(lines) == 1 and lines[0][:2] == (1, "AES_CM_128_HMAC_SHA1_80"),
                  "the door's %s does not carry one line with its tag and suite" % what)
            check(lines[0][2] not in mon_keys + door_keys + keys,
                  "the door's %s carries a device's, its own or an offered key" % what)
            check("a=rtcp-mux" in (early.body if what == "183" else ok.body),
                  "the door's %s does not accept rtcp-mux" % what)
        check(answers[0][0][2] == answers[1][0][2],
              "the 183 and the 200 carry different relay keys for the one door-side stream")
        call.in_dialog("BYE", ok)
        bye = devs[1].wait_for(lambda m: m.method == "BYE", 5, "BYE")
        raw_reply(devs[1], bye, 200, "OK", "m2")
        env.wait_relay_free()
        text = env.proxy_log_text()
        leaked = [k for k in door_keys + mon_keys + keys + [answers[0][0][2]] if k in text]
        check(not leaked, "%d SRTP key(s) appear in the proxy log" % len(leaked))
    finally:
        for ua in devs + [door]:
            ua.close()
    env.assert_no_secrets()


@case
def case_relay_srtp_suites_configured(env):
    """srtp-crypto-suites (issue 13): a branch is offered the configured suites
    in their order, and the caller's suite last when it is not among them, so a
    device that knows only the door's suite can still answer (RFC 4568 section
    7.1.1). The door offers AES_256_CM_HMAC_SHA1_80 (46-octet key || salt,
    RFC 6188 section 7.1) against a list of AES_CM_128_HMAC_SHA1_32 alone: mon1
    is offered tag 1 _32 and tag 2 the 256-bit suite, answers tag 2, and the
    door gets its own tag and suite back with a relay key."""
    env.relay_extra = "srtp-crypto-suites = AES_CM_128_HMAC_SHA1_32\n"
    env.start_proxy()
    (mon1,) = raw_devices(env, ["mon1"])
    door = RawUa("door", LOCAL)
    door_key = _sdes_key(46)
    try:
        call = RawCall(env, door, "door", "mon1",
                       sdp_body(LOCAL, ["audio 4000 RTP/SAVP 0\n"
                                        "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:%s" % door_key]))
        inv = invite_of(mon1)
        lines = _crypto_lines(inv.body)
        log("offer: %s" % [(t, s) for t, s, _ in lines])
        check([(t, s) for t, s, _ in lines] == [(1, "AES_CM_128_HMAC_SHA1_32"),
                                                 (2, "AES_256_CM_HMAC_SHA1_80")],
              "mon1's offer is not the configured suite, then the door's: %s"
              % [(t, s) for t, s, _ in lines])
        check(door_key not in inv.body, "the door's key reached mon1")
        raw_reply(mon1, inv, 200, "OK", "m1",
                  body=sdp_body(LOCAL, ["audio 4100 RTP/SAVP 0\n"
                                        "a=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:%s"
                                        % _sdes_key(46)]))
        ok = call.final()
        check(ok.status == 200, "door: %s, expected 200" % ok.first)
        answer = _crypto_lines(ok.body)
        check([(t, s) for t, s, _ in answer] == [(1, "AES_256_CM_HMAC_SHA1_80")],
              "the door's 200 does not carry its own tag and suite: %s"
              % [(t, s) for t, s, _ in answer])
        call.in_dialog("ACK", ok)
        call.in_dialog("BYE", ok)
        bye = mon1.wait_for(lambda m: m.method == "BYE", 5, "BYE")
        raw_reply(mon1, bye, 200, "OK", "m1")
        env.wait_relay_free()
    finally:
        for ua in (mon1, door):
            ua.close()
    env.assert_no_secrets()


@case
def case_relay_srtp_mandatory(env):
    """encryption-mandatory = true (issue 13): a plain RTP offer gets 488 with
    a Warning (RFC 3261 section 20.43) that says SRTP is required, and so does
    an SRTP offer with no suite the relay does; neither rings mon1 or keeps a
    relay port. A device that answers an SRTP offer with plain RTP is a failed
    branch: its 200 never reaches the door (the proxy ends its dialog, cause
    488) and the door's INVITE fails. An SRTP offer still calls."""
    env.relay_extra = "encryption-mandatory = true\n"
    env.start_proxy()
    (mon1,) = raw_devices(env, ["mon1"])
    door = RawUa("door", LOCAL)
    try:
        for what, sdp, expected in [
                ("plain RTP", sdp_body(LOCAL, ["audio 4000 RTP/AVP 0"]), "requires SRTP"),
                ("unknown suite", sdp_body(LOCAL, ["audio 4000 RTP/SAVP 0\n"
                                                   "a=crypto:1 F8_128_HMAC_SHA1_80 inline:%s"
                                                   % _sdes_key()]), "no a=crypto line"),
                ("malformed key", sdp_body(LOCAL, ["audio 4000 RTP/SAVP 0\n"
                                                   "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA"]),
                 "is not 30 bytes")]:
            call = RawCall(env, door, "door", "mon1", sdp)
            fin = call.final()
            log("%s: %s / Warning: %s" % (what, fin.first, fin.hdr("Warning")))
            check(fin.status == 488, "%s: %s, expected 488" % (what, fin.first))
            text = _warning_text(fin)
            check(expected in text, "%s: warn-text %r does not say %r" % (what, text, expected))
            check("inline" not in text, "%s: the Warning quotes a key" % what)
        check(not mon1.got(lambda m: m.method == "INVITE"), "a refused offer rang mon1")
        check(env.ctl("relay").get("ports_in_use") == 0, "a refused offer kept relay ports")
        door_key = _sdes_key()
        call = RawCall(env, door, "door", "mon1",
                       sdp_body(LOCAL, ["audio 4000 RTP/SAVP 0\n"
                                        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s" % door_key]))
        inv = invite_of(mon1)
        raw_reply(mon1, inv, 200, "OK", "m1", body=sdp_body(LOCAL, ["audio 4100 RTP/AVP 0"]))
        _proxy_hangs_up(mon1, call.call_id, 488)
        fin = call.final()
        log("door after mon1's plain answer: %s" % fin.first)
        check(fin.status >= 300, "mon1's plain answer to an SRTP offer reached the door: %s"
              % fin.first)
        env.wait_relay_free()
    finally:
        for ua in (mon1, door):
            ua.close()
    env.assert_no_secrets()
