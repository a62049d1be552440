#!/usr/bin/env python3
"""Interop test (issue 15 item 3): ICE-lite on the relay, with a real Linphone
(linphone-daemon from Debian's linphone-cli) whose ICE is on. Python 3 stdlib only.

A resident's Linphone with ICE (its NAT policy has `protocols=ice`, no STUN or
TURN server: host candidates only) calls portier-door through portier-proxy
with the media relay on; the door answers at once. What the user gets:
  1. Linphone's INVITE offers ICE (a=ice-ufrag, a=candidate): ICE is really on;
  2. the relay's 200 to Linphone is an ICE-lite answer (RFC 8839 §5.3
     a=ice-lite, the relay's own credentials and host candidates);
  3. Linphone's connectivity checks get success responses from the relay: the
     relay counts them (portierctl relay: caller_stun_answered), Linphone's
     call statistics report its ICE state as connected;
  4. media flows both ways: the door receives Linphone's audio, Linphone
     receives the door's video (oRTP's statistics);
  5. an attacker on 127.0.0.2 who knows the relay port (and even the ufrags,
     which are no secret) sends STUN checks with USE-CANDIDATE and a wrong
     password, and RTP, to the relay's caller-facing port: its checks get
     401 (RFC 8445 §7.3, RFC 5389 §10.1.2) and are counted as refused, it
     receives no media, and the door's media keeps reaching Linphone (the
     relay's count of Linphone's audio towards the door and the door's count
     keep growing, and Linphone's received video grows past what it had);
  6. then the other way, the door rings the home (the usual call of a phone
     behind its own NAT): the relay offers Linphone ICE-lite, Linphone
     answers with ICE, its checks to the relay's offer are answered (it stays
     the controlled agent and never nominates: the relay takes its valid
     checks as the choice, relay_engine.h), and the door's media reaches it.

Ports: proxy 127.0.0.1:33360; Linphone 33410-33415; the door 33440 (SIP) and
33450-33459 (RTP); the relay 33460-33499. No other test uses 33300-33499 (the
block 31000-31199 first meant for this test is the relay tests' own,
tests/gst/test_media_relay.cpp). The attacker binds an ephemeral port on 127.0.0.2.

    linphone_ice_relay.py --proxy build/signaling/portier-proxy \\
                          --ctl build/signaling/portierctl \\
                          --door build/signaling/portier-door [--keep]

Exit status: 0 pass, 1 fail, 77 skipped (linphone-daemon not installed).
"""

import hashlib
import hmac
import json
import os
import re
import socket
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linphone_interop as li  # noqa: E402  the daemon and proxy drivers
import linphone_door as ld  # noqa: E402  portier-door driven by the test
from linphone_door_actions import write_tone  # noqa: E402  Linphone's in-call audio
from linphone_early_media import video_packets_received  # noqa: E402

li.PROXY_PORT = 33360
li.RELAY_PORTS = "33460-33499"
li.PEERS = {"mon1": ("mon1", "secret1", 33410, "udp")}
ld.DOOR_SIP, ld.DOOR_RTP = 33440, "33450-33459"
check, log, wait_for = li.check, li.log, li.wait_for

# liblinphone 5.1 reads its NAT policy from a section its [net] names; ICE
# without a STUN server gathers host candidates only, which is all loopback
# has (PEERS.md).
ICE_RC = ("[net]\nnat_policy_ref=portier-ice\n"
          "[nat_policy_0]\nref=portier-ice\nprotocols=ice\n")


# ---- a STUN Binding request as a full ICE agent sends it (RFC 8445 §7.2.2) ----

MAGIC = 0x2112A442


def stun_check(username, pwd):
    """Binding request: USERNAME, PRIORITY, USE-CANDIDATE, ICE-CONTROLLING,
    MESSAGE-INTEGRITY (HMAC-SHA1 keyed with `pwd`), FINGERPRINT (RFC 5389 §15)."""
    tid = os.urandom(12)

    def attr(t, v):
        return struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4)
    body = (attr(0x0006, username.encode()) + attr(0x0024, struct.pack("!I", 0x6E0001FF)) +
            attr(0x0025, b"") + attr(0x802A, os.urandom(8)))
    head = struct.pack("!HHI", 0x0001, len(body) + 24, MAGIC) + tid
    mac = hmac.new(pwd.encode(), head + body, hashlib.sha1).digest()
    body += attr(0x0008, mac)
    head = struct.pack("!HHI", 0x0001, len(body) + 8, MAGIC) + tid
    crc = (zlib.crc32(head + body) ^ 0x5354554E) & 0xFFFFFFFF
    return head + body + attr(0x8028, struct.pack("!I", crc))


def stun_error_code(data):
    """The ERROR-CODE of a STUN error response, else None."""
    if len(data) < 20 or struct.unpack("!I", data[4:8])[0] != MAGIC:
        return None
    pos = 20
    while pos + 4 <= len(data):
        t, n = struct.unpack("!HH", data[pos:pos + 4])
        if t == 0x0009 and n >= 4:
            return data[pos + 6] * 100 + data[pos + 7]
        pos += 4 + n + (-n % 4)
    return None


def door_video_at_linphone(lp, since=0):
    """How many of the door's video packets Linphone's 90 kHz jitter buffer has
    taken so far (oRTP logs the count as it goes) in the log from byte `since`
    on (a later call), or None."""
    with open(lp.logfile, errors="replace") as f:
        f.seek(since)
        counts = re.findall(r"jitter buffer rls stats: count=(\d+), clockrate=90000", f.read())
    return max(map(int, counts)) if counts else None


def ice_states(lp, call_id):
    """The ICE state of each of the call's streams, as Linphone's call-stats says."""
    ok, f, raw = lp.cmd("call-stats %s" % call_id)
    return re.findall(r"ICE state: *(.*)", raw, re.I) if ok else []


def sdp_of(msg):
    return msg.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in msg else msg.split("\n\n", 1)[-1]


def run(args, tmp, procs):
    check(args.door, "--door given")
    proxy = li.Proxy(args.proxy, args.ctl, tmp)
    procs["proxy"] = proxy
    proxy.start()
    door = ld.Door(args.door, args.ctl, tmp, "sip:mon1@%s" % li.DOMAIN)
    procs["door"] = door
    door.start()
    log("portier-proxy (relay, ice-lite on by default) and portier-door up")

    mon1 = li.Linphone("mon1", tmp, args.linphone, ld.account_rc("mon1") + ICE_RC,
                       "default_proxy=0\n")
    li.start_linphones({"mon1": mon1}, procs)

    ok, f, raw = mon1.cmd("call sip:door@%s" % li.DOMAIN)
    check(ok and f.get("Id"), "mon1: `call sip:door@%s` accepted" % li.DOMAIN)
    cid = f["Id"]
    mon1.wait_call_event("LinphoneCallStreamsRunning", 10, cid)
    wait_for(lambda: door.events("auto_answered") or None, 5, "the door's answer")

    # 1. and 2.: what crossed the wire, as Linphone saw it.
    msgs = li.sip_messages(mon1)
    invite = next((m for d, t, m in msgs if d == "out" and m.startswith("INVITE ")), "")
    offer = sdp_of(invite)
    check(re.search(r"^a=ice-ufrag:", offer, re.M) and re.search(r"^a=candidate:", offer, re.M),
          "Linphone's offer does ICE (a=ice-ufrag, a=candidate): %s"
          % re.findall(r"^a=(?:ice-\S+|candidate).*$", offer, re.M)[:4])
    ok200 = [m for d, t, m in msgs if d == "in" and m.startswith("SIP/2.0 200") and "m=audio" in m]
    check(ok200, "Linphone got a 200 with SDP")
    answer = sdp_of(ok200[0])
    relay_ufrag = re.search(r"^a=ice-ufrag:(\S+)", answer, re.M)
    relay_pwd = re.search(r"^a=ice-pwd:(\S+)", answer, re.M)
    audio = re.search(r"^m=audio (\d+) ", answer, re.M)
    check(re.search(r"^a=ice-lite\s*$", answer, re.M) and relay_ufrag and relay_pwd and audio,
          "the relay's answer is ICE-lite with its own credentials: %s"
          % re.findall(r"^a=(?:ice-\S+|candidate).*$", answer, re.M))
    audio_port = int(audio.group(1))
    check(re.search(r"^a=candidate:\S+ 1 UDP \d+ 127\.0\.0\.1 %d typ host" % audio_port, answer,
                    re.M),
          "the relay's host candidate is its audio port %d" % audio_port)
    their_ufrag = re.search(r"^a=ice-ufrag:(\S+)", offer, re.M).group(1)
    check(their_ufrag not in answer and relay_ufrag.group(1) not in offer,
          "each side has credentials of its own")

    # 3. Linphone's checks were answered, and Linphone's ICE completed.
    def answered():
        calls = proxy.relay().get("calls") or []
        return calls[0] if calls and calls[0].get("caller_stun_answered", 0) > 0 else None
    c = wait_for(answered, 10, "the relay to answer Linphone's ICE checks")
    log("relay: %s" % json.dumps(c))
    check(c.get("caller_ice") is True, "the relay does ICE with Linphone")
    check(c.get("caller_stun_refused") == 0, "none of Linphone's checks was refused")

    def ice_connected():
        states = ice_states(mon1, cid)
        return states if states and all("connect" in s.lower() for s in states) else None
    states = wait_for(ice_connected, 10, "Linphone's ICE state to be connected", fatal=False)
    log("Linphone call-stats ICE state: %s" % states)
    check(states, "Linphone reports ICE connected through the relay")

    # 4. media both ways, through the nominated pair. No sound card here:
    # Linphone's in-call player sends a tone file (as in linphone_door_actions).
    tone = os.path.join(os.path.dirname(mon1.logfile), "tone.wav")
    write_tone(tone)
    ok, f, raw = mon1.cmd("incall-player-start %s %s" % (tone, cid))
    check(ok, "mon1: `incall-player-start` accepted")

    def door_hears():
        st = door.status()
        return st if st.get("audio_packets_received", 0) > 25 else None
    st = wait_for(door_hears, 10, "the door to receive Linphone's audio")
    heard_before = st["audio_packets_received"]
    video_before = wait_for(lambda: door_video_at_linphone(mon1), 10,
                            "the door's video in Linphone's jitter buffer")
    log("Linphone's 90 kHz jitter buffer: %d of the door's video packets" % video_before)
    log("door: %s" % {k: st.get(k) for k in ("audio_packets_received", "video_packets_sent")})

    # 5. the attacker on 127.0.0.2.
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.2", 0))
    attacker.settimeout(0.3)
    codes = []
    for i in range(5):
        for port in (audio_port, audio_port + 1):
            attacker.sendto(stun_check("%s:%s" % (relay_ufrag.group(1), their_ufrag),
                                       "x" * len(relay_pwd.group(1))), ("127.0.0.1", port))
        # RTP (PCMU, an SSRC of its own) that media latching would have taken.
        attacker.sendto(struct.pack("!BBHII", 0x80, 0, i, i * 160, 0xBAD) + b"\xff" * 160,
                        ("127.0.0.1", audio_port))
    got_media = 0
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        try:
            data, _ = attacker.recvfrom(4096)
        except socket.timeout:
            continue
        if data and data[0] < 4:
            codes.append(stun_error_code(data))
        else:
            got_media += 1
    attacker.close()
    log("attacker: STUN answers %s, media packets %d" % (codes, got_media))
    check(codes and all(code == 401 for code in codes),
          "every forged check got 401 (%d answers)" % len(codes))
    check(got_media == 0, "the attacker received no media (%d packets)" % got_media)
    c = (proxy.relay().get("calls") or [{}])[0]
    log("relay after the attack: %s" % json.dumps(c))
    check(c.get("caller_stun_refused", 0) >= 10,
          "the relay counted the forged checks as refused (%s)" % c.get("caller_stun_refused"))

    def door_still_hears():
        st = door.status()
        return st if st.get("audio_packets_received", 0) > heard_before + 50 else None
    st = wait_for(door_still_hears, 10, "Linphone's audio to keep reaching the door")
    check(st["call"] != "idle", "the call is still up (%s)" % st["call"])
    n = wait_for(lambda: (lambda k: k if k and k > video_before + 30 else None)(
        door_video_at_linphone(mon1)), 10, "the door's video to keep reaching Linphone")
    check(n, "after the attack the door's video still reaches Linphone (%d -> %d packets)"
          % (video_before, n))
    stats = proxy.relay()
    check(stats.get("stun_answered", 0) > 0 and stats.get("stun_refused", 0) >= 10,
          "portierctl relay counts checks answered (%s) and refused (%s)"
          % (stats.get("stun_answered"), stats.get("stun_refused")))
    totals = proxy.ctl("stats") or {}
    check(totals.get("relay_stun_answered") == stats.get("stun_answered") and
          totals.get("relay_stun_refused") == stats.get("stun_refused"),
          "portierctl stats has the same counts: %s/%s"
          % (totals.get("relay_stun_answered"), totals.get("relay_stun_refused")))

    ok, f, raw = mon1.cmd("terminate %s" % cid)
    check(ok, "mon1: `terminate` accepted")
    mon1.wait_call_event("LinphoneCallReleased", 10, cid)
    counts = wait_for(lambda: video_packets_received(mon1.logfile) or None, 5,
                      "mon1's video RTP statistics in its log")
    sent = door.status().get("video_packets_sent", 0)
    log("mon1: video packets received from the door: %s (door sent %s)" % (counts, sent))
    check(max(counts) > 0, "Linphone received the door's video through ICE (oRTP: %s)" % counts)
    wait_for(lambda: door.events("ended") or None, 5, "the door's call to end")
    wait_for(lambda: not proxy.relay().get("calls") or None, 5, "the relay to free the call")

    # 6. The door rings; Linphone answers the relay's ICE-lite offer with ICE.
    log_at = os.path.getsize(mon1.logfile)
    r = door.ctl("ring")
    check(r and r.get("result") == "calling", "the door calls the home (%s)" % r)

    def incoming():
        mon1.pop_events()
        for e in mon1.events:
            if e.get("Event") == "LinphoneCallIncomingReceived":
                return e.get("Id")
        return None
    cid2 = wait_for(incoming, 10, "mon1: the door's call")
    invite = [m for d, t, m in li.sip_messages(mon1) if d == "in" and m.startswith("INVITE ")][-1]
    offer2 = sdp_of(invite)
    check(re.search(r"^a=ice-lite\s*$", offer2, re.M) and
          re.search(r"^a=candidate:\S+ 1 UDP \d+ 127\.0\.0\.1 \d+ typ host", offer2, re.M),
          "the relay offers Linphone ICE-lite: %s"
          % re.findall(r"^a=(?:ice-\S+|candidate).*$", offer2, re.M))
    ok, f, raw = mon1.cmd("answer %s" % cid2)
    check(ok, "mon1 answers")
    mon1.wait_call_event("LinphoneCallStreamsRunning", 10, cid2)
    answer2 = [m for d, t, m in li.sip_messages(mon1) if d == "out" and m.startswith("SIP/2.0 200")
               and "m=audio" in m][-1]
    check(re.search(r"^a=ice-ufrag:", sdp_of(answer2), re.M),
          "Linphone's answer does ICE")

    def branch_answered():
        calls = proxy.relay().get("calls") or []
        b = (calls[0].get("branches") or [{}])[0] if calls else {}
        return b if b.get("ice") and b.get("stun_answered", 0) > 0 else None
    b = wait_for(branch_answered, 10, "the relay to answer the callee Linphone's checks")
    log("relay branch: %s" % json.dumps(b))
    check(b.get("stun_refused") == 0, "none of the callee Linphone's checks was refused")
    # liblinphone 5.1 answers as the controlled agent even to a lite offerer
    # (RFC 8445 §6.1.1 wants it controlling), so it never nominates and its
    # ICE stays "in progress"; the relay takes its valid checks as the choice.
    log("the callee Linphone's ICE state: %s" % ice_states(mon1, cid2))
    check("checked by the controlled peer" in proxy.log_text(),
          "the relay latched the callee Linphone by its valid checks")
    # The door's media reaches Linphone at the checked address. (Linphone's own
    # RTP is not asserted here: its ICE never completes, so it sends from its
    # socket's default source, 127.0.0.1 on loopback, not from the host
    # candidate it checked from; the relay hears only the checked path.)
    n = wait_for(lambda: (lambda k: k if k and k > 30 else None)(
        door_video_at_linphone(mon1, log_at)), 10, "the door's video at the callee Linphone")
    check(n, "the door's video reaches the callee Linphone (%d packets)" % n)
    door.ctl("hangup")
    mon1.wait_call_event("LinphoneCallReleased", 10, cid2)

    text = proxy.log_text()
    check(relay_pwd.group(1) not in text, "the relay's ice-pwd is in no log line")
    check(proxy.alive(), "portier-proxy still running")


if __name__ == "__main__":
    li.run = run
    sys.exit(li.main())
