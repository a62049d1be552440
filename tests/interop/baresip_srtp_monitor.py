#!/usr/bin/env python3
"""Interop test (issue 13): portier-door with mandatory SRTP rings baresip 1.0
(Debian package baresip, libre's own SRTP) with `mediaenc=srtp-mand`, through
portier-proxy's relay, once with the relay in `encryption = passthrough` (the
door's keys reach baresip) and once in `encryption = terminate` (the relay's
keys). Python 3 stdlib only.

In each round baresip registers as mon1 (`answermode=early`, opus); the door
rings the home. baresip answers 183 with an RTP/SAVP answer: one a=crypto per
stream whose tag and suite are those of one of the offer's lines (RFC 4568
§7.1.2; baresip takes the first line whose suite it knows, AEAD_AES_256_GCM),
and a key of its own (never one of the offer's, RFC 3711 §9.1). It decrypts
the door's VP8 while it rings (its log: SRTP enabled for both streams, the
picture's size, no packet that failed to decrypt) and the door's opus; it
answers, its audio reaches the door, and its code (RFC 4733 events inside
SRTP) opens the door once. The door's status names the suite for both
streams and counts no packet its srtpdec refused. A capture on lo (AF_PACKET,
as an eavesdropper on the LAN) sees the calls' RTP, none of it a VP8 keyframe
or the code's RFC 4733 events in the clear, and no key is in the door's or the
proxy's log.

Ports: proxy 127.0.0.1:30060; the door 30070 (SIP), 30080-30089 (RTP);
baresip 30090 (SIP, TCP, and TLS on 30091), 30095 (ctrl_tcp), 30100-30119
(RTP); the relay 30120-30179. No other test uses them.

    baresip_srtp_monitor.py --proxy build/signaling/portier-proxy \\
        --ctl build/signaling/portierctl --door build/signaling/portier-door

Exit status: 0 pass, 1 fail, 77 skipped (baresip not installed).
"""

import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linphone_interop as li  # noqa: E402  log, check, wait_for, Proxy
import portier_devices as pd  # noqa: E402
import baresip_peer as bp  # noqa: E402

check, log, wait_for = bp.use(30060, "30120-30179",
                               {"mon1": "mon1-Bsrtp-5172", "door": "door-Bsrtp-2291"})
CODE = "583920"
# What baresip is offered, in order: the door's own offer when the relay passes
# SDES through; with terminate, the relay's srtp-crypto-suites default (GCM
# first) and then the door's first suite, which that list lacks.
SUITES = {"passthrough": ["AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_256_CM_HMAC_SHA1_80",
                          "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"],
          "terminate": ["AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80",
                        "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_256_GCM"]}
DOOR_SIP, DOOR_RTP = 30070, "30080-30089"
BS_SIP, BS_CTRL, BS_RTP = 30090, 30095, "30100-30119"


def run_round(args, tmp, procs, encryption):
    log("---- relay encryption = %s" % encryption)
    tmp = os.path.join(tmp, encryption)
    os.makedirs(tmp)
    proxy = bp.srtp_proxy(args.proxy, args.ctl, tmp, encryption, mandatory=True)
    procs["proxy"] = proxy
    proxy.start()
    bs = bp.Baresip(tmp, "baresip-mon1", "sip:mon1@%s" % li.DOMAIN, li.USERS["mon1"],
                    li.PROXY_PORT, BS_SIP, BS_CTRL, BS_RTP, answermode="early",
                    audio_codecs="opus/48000/2,PCMU", tone_rate=48000, tone_channels=2,
                    mediaenc="srtp-mand")
    procs["baresip"] = bs
    bs.start()
    wait_for(lambda: [r for r in proxy.registrations()
                      if r.get("aor") == "sip:mon1@%s" % li.DOMAIN], 10, "baresip's binding")
    door = pd.door(args.door, args.ctl, tmp, li.USERS["door"], li.PROXY_PORT, DOOR_SIP, DOOR_RTP,
                   li.GROUP, extra="[media]\nmedia-encryption = srtp\n"
                   "media-encryption-mandatory = true\n[actions]\ndoor = %s log\n"
                   "[access]\nallow = sip:mon1@%s\n" % (CODE, li.DOMAIN))
    procs["door"] = door
    door.start()
    lo, hi = (int(p) for p in li.RELAY_PORTS.split("-"))
    cap = bp.LoopbackCapture(set(range(lo, hi + 1)) | bp.port_set(DOOR_RTP) | bp.port_set(BS_RTP))
    cap.logfile = os.devnull
    procs["capture"] = cap

    r = door.ctl("ring", errors=True)
    check(r and r.get("result") == "calling", "the door rings the home (%s)" % r)

    def sent(first):
        return [b for b in bp.trace(bs.log_text()) if b["dir"] == "out" and
                b["first"].startswith(first) and "m=video" in b["text"]]
    early = wait_for(lambda: sent("SIP/2.0 183"), 10, "baresip's 183 with SDP")[0]["text"]
    offer = [b for b in bp.trace(bs.log_text())
             if b["dir"] == "in" and b["first"].startswith("INVITE ")][0]["text"]
    offered = {kind: bp.crypto_lines(offer, kind) for kind in ("audio", "video")}
    for kind in ("audio", "video"):
        check(bp.media_proto(offer, kind) == "RTP/SAVP" and
              [s for _, s, _ in offered[kind]] == SUITES[encryption],
              "baresip is offered %s RTP/SAVP with a key per suite, in order: %s"
              % (kind, [(t, s) for t, s, _ in offered[kind]]))
    # baresip 1.0 writes its 183 (answermode=early) before its srtp module has
    # read the offer: the 183 carries the line it would offer (tag 1, its
    # preferred AES_CM_128_HMAC_SHA1_80), which answers none of the offer's
    # lines (RFC 4568 §7.1.2), and it drops every packet until it answers.
    # Whoever holds the offer's keys ignores that 183's SDP: the door (the
    # relay passes SDES through) or the relay, which forwards the 183 without
    # SDP; the door keeps ringing.
    early_lines = [(t, s) for t, s, _ in bp.crypto_lines(early, "video")]
    log("baresip's 183: video %s" % early_lines)
    if early_lines and early_lines[0] not in [(t, s) for t, s, _ in offered["video"]]:
        who, d, pattern = (("the door", door,
                            r"unusable SDP answer .*a=crypto answers none of ours")
                           if encryption == "passthrough" else
                           ("the relay", proxy, r"unusable early answer, forwarded without SDP: "
                            r".*a=crypto tag 1 with AES_CM_128_HMAC_SHA1_80 answers no offered"))
        check(wait_for(lambda: re.search(pattern, d.log_text()), 5, "the warning", fatal=False),
              "%s ignores baresip's 183 SDP, whose a=crypto answers no offered line" % who)
    st = door.status()
    check(st.get("call") in ("calling", "early"),
          "the door still rings (it is %s)" % st.get("call"))

    r = bs.command("accept")
    check(r.get("ok"), "baresip answers (%s)" % r)
    wait_for(lambda: door.events("answered") or None, 10, "the door to see the answer")
    answer = wait_for(lambda: sent("SIP/2.0 200"), 5, "baresip's 200 with SDP")[0]["text"]
    text = bs.log_text()
    enabled = dict(re.findall(r"srtp: (audio|video): SRTP is Enabled \(cryptosuite=(\S+)\)",
                              text))
    check(set(enabled) == {"audio", "video"}, "baresip runs SRTP on both streams: %s" % enabled)
    for kind in ("audio", "video"):
        answered = bp.crypto_lines(answer, kind)
        log("%s: baresip's 200 answers %s" % (kind, [(t, s) for t, s, _ in answered]))
        check(bp.media_proto(answer, kind) == "RTP/SAVP",
              "baresip answers the %s stream RTP/SAVP" % kind)
        check(len(answered) == 1 and (answered[0][0], answered[0][1]) ==
              (offered[kind][0][0], offered[kind][0][1]),
              "baresip's %s answer names the first offered line's tag and suite "
              "(RFC 4568 §7.1.2)" % kind)
        check(answered[0][2] not in [k for _, _, k in offered[kind]],
              "baresip's %s key is its own, not the offer's (RFC 3711 §9.1)" % kind)
        check(enabled[kind] == answered[0][1], "baresip's %s stream runs %s, the suite it "
              "answered" % (kind, enabled[kind]))
    st = door.status()
    check(st.get("audio_srtp") and st.get("video_srtp"),
          "the door runs SRTP on both streams: audio %s, video %s"
          % (st.get("audio_srtp"), st.get("video_srtp")))
    check(st.get("audio_codec") == "opus/48000", "the door sends opus: %s" % st.get("audio_codec"))

    def video():
        text = bs.log_text()
        m = re.search(r"incoming rtp for 'video' established, receiving from "
                      r"127\.0\.0\.1:(\d+)", text)
        return m if m and "video: receiving with resolution" in text else None
    m = wait_for(video, 10, "the door's SRTP video decoded by baresip")
    check(lo <= int(m.group(1)) <= hi, "baresip decodes the door's video, from the relay (port %s)"
          % m.group(1))
    # The code goes once baresip's voice reaches the door through SRTP. If it
    # does not: the door's status, the relay's, the datagrams seen on lo and
    # each socket's receive queue (a full one is a udpsrc that stopped).
    if not wait_for(lambda: door.status().get("audio_packets_received", 0) > 25 or None, 10,
                    "baresip's audio at the door", fatal=False):
        import collections
        import subprocess
        queues = (subprocess.run(["ss", "-uan"], capture_output=True, text=True).stdout
                  if shutil.which("ss") else "")
        flows = collections.Counter((sp, dp) for sp, dp, _ in list(cap.packets))
        check(False, "baresip's audio at the door (door %s; relay %s; flows %s; sockets:\n%s)" % (
            door.status(), (proxy.relay().get("calls") or [{}])[0], sorted(flows.items()),
            "\n".join(l for l in queues.splitlines() if "127.0.0.1:30" in l)))
    r = bs.command("sndcode", CODE)
    check(r.get("ok"), "baresip sends the code (%s)" % r)
    if not wait_for(lambda: door.events("action") or None, 10, "the door's action", fatal=False):
        check(False, "the door's action (door %s; relay %s)" % (
            door.status(), (proxy.relay().get("calls") or [{}])[0]))
    time.sleep(1.0)  # a second opening would show up now
    actions = [e["details"] for e in door.events("action")]
    check(actions == ["via=rfc4733 from=sip:mon1@%s action=door result=done" % li.DOMAIN],
          "baresip's RFC 4733 code inside SRTP opened the door once: %s" % actions)
    st = door.status()
    received = st.get("audio_packets_received", 0)
    check(received > 10, "baresip's opus reaches the door (%d packets)" % received)
    dropped = st.get("srtp_dropped", 0)
    relayed = (proxy.relay().get("calls") or [{}])[0]
    log("relay: %s" % relayed)
    r = door.ctl("hangup", errors=True)
    check(r and r.get("result") == "hung up", "the door hangs up (%s)" % r)
    m = wait_for(lambda: re.search(r"video\s+Transmit:\s+Receive:\s*\npackets:\s+\d+\s+(\d+)",
                                   bs.log_text()), 10, "baresip's RTP statistics")
    check(int(m.group(1)) > 0, "baresip decrypted %s video packets" % m.group(1))
    m = re.search(r"audio\s+Transmit:\s+Receive:\s*\npackets:\s+\d+\s+(\d+)", bs.log_text())
    check(m and int(m.group(1)) > 0, "baresip decrypted %s opus packets of the door's"
          % (m.group(1) if m else "no"))
    cap.stop()
    text = bs.log_text()
    failed = re.findall(r"srtp: failed to decrypt (RTP|RTCP) packet", text)
    check(not [f for f in failed if f == "RTP"],
          "baresip failed to decrypt no RTP packet (%d RTCP failures)" % failed.count("RTCP"))
    # baresip 1.0 opens a NAT pinhole with an RTCP APP packet "PING" "PONG"
    # per stream (its stream_start()), which its srtp module lets out in the
    # clear: no SRTCP (RFC 3711 §3.4). The relay keeps it from the door.
    pings = [(sp, dp) for sp, dp, p in cap.packets if p[1:2] == b"\xcc" and p[8:16] == b"PINGPONG"]
    log("baresip's clear RTCP APP PING packets: %s" % pings)
    check(not [p for p in pings if p[1] in bp.port_set(DOOR_RTP)],
          "none of baresip's clear RTCP reaches the door")
    if encryption == "terminate":
        rejected = sum(b.get("srtp_rejected", 0) for b in relayed.get("branches", []))
        check(rejected == len(pings), "the relay refused baresip's clear RTCP and nothing else "
              "(srtp_rejected %d)" % rejected)
    # srtpdec drops what comes before the door has the answer's keys (what
    # baresip, or the relay, sends right after the 200); a wrong key would
    # drop everything.
    check(dropped * 20 < received, "the door's srtpdec decrypts baresip's packets: %d dropped, "
          "%d received" % (dropped, received))
    seen = bp.clear_media(cap.packets, CODE, bp.port_set(BS_RTP))
    log("baresip's own RTCP in the clear: %s" % seen["peer_rtcp"])
    check(not seen["our_rtcp"], "no RTCP of ours in the clear (RFC 3711 §3.4): %s"
          % seen["our_rtcp"])
    check(seen["rtp"] > 100, "the capture saw the call's RTP (%d packets)" % seen["rtp"])
    check(seen["keyframes"] == 0 and not seen["code"],
          "no VP8 keyframe and no RFC 4733 code in the clear on the wire")
    keys = [k for b in bp.trace(text) for k in re.findall(bp.KEY, b["text"])]
    check(keys, "baresip's trace shows the keys it exchanged")
    for d in (door, proxy):
        check(not [k for k in keys if k in d.log_text()], "no SRTP key in the %s's log" % d.name)
    check(proxy.alive(), "portier-proxy still running")
    for name in ("door", "baresip", "proxy"):
        procs.pop(name).stop()
    procs.pop("capture").stop()


def run(args, tmp, procs):
    for encryption in ("passthrough", "terminate"):
        run_round(args, tmp, procs, encryption)


def main():
    return pd.main(__doc__, run, ("proxy", "ctl", "door"),
                   [li.PROXY_PORT, DOOR_SIP, BS_SIP, BS_SIP + 1, BS_CTRL],
                   "portier-baresip-srtp-monitor-", lambda args: shutil.which("baresip"),
                   "baresip not found (Debian package baresip)")


if __name__ == "__main__":
    sys.exit(main())
