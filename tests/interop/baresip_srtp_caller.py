#!/usr/bin/env python3
"""Interop test (issue 13): baresip 1.0 (Debian package baresip, libre's own
SRTP) with `mediaenc=srtp-mand` calls portier's devices through portier-proxy
(`available-algorithms = MD5` for baresip 1.0). Python 3 stdlib only.

1. baresip is the door and calls `sip:home@home.example`; a portier-monitor
   with mandatory SRTP rings, once with the relay in `encryption =
   passthrough` and once in `terminate`. baresip offers RTP/SAVP with one
   a=crypto a stream (tag 1, AES_CM_128_HMAC_SHA1_80); the answer it gets (183
   and 200) names that tag and suite with a key of the answerer's own (RFC
   4568 §7.1.2, RFC 3711 §9.1). The monitor decodes baresip's video while it
   rings, answers, audio flows both ways; both ends say SRTP runs on both
   streams, baresip decrypted every RTP packet it got.
2. baresip, as mon1, calls portier-door (auto-answer for mon1, SRTP
   mandatory; relay in passthrough, so the door's own answer reaches it):
   the door answers AES_CM_128_HMAC_SHA1_80 with tag 1 and its own key,
   baresip decodes the door's video, its audio reaches the door.
3. A plain baresip (no mediaenc) as mon1 calls the same door: RTP/AVP with no
   a=crypto where SRTP is mandatory gets 488 Not Acceptable Here (RFC 3261
   §21.4.26, with a Warning saying why) from the door itself (the relay is
   not mandatory here), and the door sends no media.

A capture on lo (AF_PACKET) sees the calls' RTP and no VP8 keyframe in the
clear; no key of any a=crypto shows in the monitor's, door's or proxy's log.

Ports: proxy 127.0.0.1:30180; the monitor 30190 (SIP), 30200-30219 (RTP);
the door 30220 (SIP), 30225-30234 (RTP); baresip 30240 (SIP, TCP, and TLS on
30241), 30245 (ctrl_tcp), 30250-30269 (RTP); the relay 30270-30299. No other
test uses them.

    baresip_srtp_caller.py --proxy build/signaling/portier-proxy \\
        --ctl build/signaling/portierctl --door build/signaling/portier-door \\
        --monitor build/signaling/portier-monitor

Exit status: 0 pass, 1 fail, 77 skipped (baresip not installed).
"""

import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linphone_interop as li  # noqa: E402  log, check, wait_for, Proxy
import portier_devices as pd  # noqa: E402
import baresip_peer as bp  # noqa: E402

check, log, wait_for = bp.use(30180, "30270-30299",
                               {"mon1": "mon1-Bsrtp-8406", "door": "door-Bsrtp-3317"})
MON_SIP, MON_RTP = 30190, "30200-30219"
DOOR_SIP, DOOR_RTP = 30220, "30225-30234"
BS_SIP, BS_CTRL, BS_RTP = 30240, 30245, "30250-30269"
MANDATORY = "[media]\nmedia-encryption = srtp\nmedia-encryption-mandatory = true\n"
BARESIP_SUITE = "AES_CM_128_HMAC_SHA1_80"  # the one line baresip 1.0 offers, tag 1


def capture():
    lo, hi = (int(p) for p in li.RELAY_PORTS.split("-"))
    cap = bp.LoopbackCapture(set(range(lo, hi + 1)) | bp.port_set(MON_RTP) |
                             bp.port_set(DOOR_RTP) | bp.port_set(BS_RTP))
    cap.logfile = os.devnull
    return cap


def baresip(tmp, procs, user, mediaenc="srtp-mand"):
    bs = bp.Baresip(tmp, "baresip-" + user, "sip:%s@%s" % (user, li.DOMAIN), li.USERS[user],
                    li.PROXY_PORT, BS_SIP, BS_CTRL, BS_RTP, audio_codecs="opus/48000/2,PCMU",
                    mediaenc=mediaenc)
    procs["baresip"] = bs
    bs.start()
    return bs


def sip(bs, direction, first):
    return [b for b in bp.trace(bs.log_text()) if b["dir"] == direction and
            b["first"].startswith(first)]


def check_offer_answer(bs, answers, who):
    """baresip's offer (its INVITE with SDP) and the answers it got: RTP/SAVP,
    one a=crypto a stream; each answer names the offered tag and suite with
    a key of its own (RFC 4568 §7.1.2)."""
    offer = [b for b in sip(bs, "out", "INVITE ") if "m=video" in b["text"]][-1]["text"]
    for kind in ("audio", "video"):
        offered = bp.crypto_lines(offer, kind)
        check(bp.media_proto(offer, kind) == "RTP/SAVP" and
              [(t, s) for t, s, _ in offered] == [(1, BARESIP_SUITE)],
              "baresip offers %s RTP/SAVP with one a=crypto: %s"
              % (kind, [(t, s) for t, s, _ in offered]))
        for first, answer in answers:
            got = bp.crypto_lines(answer, kind)
            check(bp.media_proto(answer, kind) == "RTP/SAVP" and
                  [(t, s) for t, s, _ in got] == [(1, BARESIP_SUITE)] and
                  got[0][2] != offered[0][2],
                  "%s's %s answers baresip's %s line with tag 1 %s and a key of its own "
                  "(RFC 4568 §7.1.2)" % (who, first.split(" ", 1)[1], kind, BARESIP_SUITE))


def check_baresip_srtp(bs):
    text = bs.log_text()
    enabled = dict(re.findall(r"srtp: (audio|video): SRTP is Enabled \(cryptosuite=(\S+)\)", text))
    check(enabled == {"audio": BARESIP_SUITE, "video": BARESIP_SUITE},
          "baresip runs SRTP on both streams: %s" % enabled)
    failed = re.findall(r"srtp: failed to decrypt (RTP|RTCP) packet", text)
    check(not failed, "baresip failed to decrypt no packet (%d failures)" % len(failed))


def check_wire(cap, bs, logs):
    cap.stop()
    seen = bp.clear_media(cap.packets, "0", bp.port_set(BS_RTP))
    log("baresip's own RTCP in the clear: %s" % seen["peer_rtcp"])
    check(not seen["our_rtcp"], "no RTCP of ours in the clear (RFC 3711 §3.4): %s"
          % seen["our_rtcp"])
    check(seen["rtp"] > 50, "the capture saw the call's RTP (%d packets)" % seen["rtp"])
    check(seen["keyframes"] == 0, "no VP8 keyframe in the clear on the wire")
    keys = [k for b in bp.trace(bs.log_text()) for k in re.findall(bp.KEY, b["text"])]
    check(keys, "baresip's trace shows the keys of the offer and answers (%d)" % len(keys))
    for d in logs:
        check(not [k for k in keys if k in d.log_text()], "no SRTP key in the %s's log" % d.name)


def baresip_calls_monitor(args, tmp, procs, encryption):
    log("---- baresip calls the monitor, relay encryption = %s" % encryption)
    tmp = os.path.join(tmp, "monitor-" + encryption)
    os.makedirs(tmp)
    proxy = bp.srtp_proxy(args.proxy, args.ctl, tmp, encryption, mandatory=True)
    procs["proxy"] = proxy
    proxy.start()
    mon = pd.monitor(args.monitor, args.ctl, tmp, "mon1", "mon1", li.USERS["mon1"], li.PROXY_PORT,
                     MON_SIP, MON_RTP, extra=MANDATORY)
    procs["mon1"] = mon
    mon.start()
    bs = baresip(tmp, procs, "door")
    wait_for(lambda: [r for r in proxy.registrations()
                      if r.get("aor") == "sip:door@%s" % li.DOMAIN], 10, "baresip's binding")
    cap = capture()
    procs["capture"] = cap

    r = bs.command("dial", li.GROUP)
    check(r.get("ok"), "baresip dials %s (%s)" % (li.GROUP, r))
    st = wait_for(lambda: (lambda s: s if s and s.get("call") == "early"
                           and s.get("frames_decoded", 0) > 0 else None)(mon.status()),
                  15, "the monitor ringing with baresip's SRTP video")
    check(st.get("video_srtp"), "the monitor decodes baresip's video while it rings (%d frames, "
          "video_srtp %s)" % (st["frames_decoded"], st.get("video_srtp")))
    r = mon.ctl("answer", errors=True)
    check(r and r.get("result") == "answered", "the monitor answers (%s)" % r)
    bs.wait_event("CALL_ESTABLISHED", 10)
    st = wait_for(lambda: (lambda s: s if s.get("audio_packets_received", 0) > 50 and
                           s.get("audio_packets_sent", 0) > 50 else None)(mon.status()),
                  10, "two-way audio between baresip and the monitor")
    check(st.get("audio_srtp") and st.get("video_srtp"),
          "audio both ways (the monitor sent %d, received %d), SRTP on both streams: audio %s, "
          "video %s" % (st["audio_packets_sent"], st["audio_packets_received"],
                        st.get("audio_srtp"), st.get("video_srtp")))
    if encryption == "passthrough":
        check(st["audio_srtp"] == st["video_srtp"] == BARESIP_SUITE,
              "the monitor runs baresip's suite, the relay passing SDES through")
    relayed = (proxy.relay().get("calls") or [{}])[0]
    log("relay: %s" % relayed)
    r = mon.ctl("hangup", errors=True)
    check(r and r.get("result") == "hung up", "the monitor hangs up (%s)" % r)
    bs.wait_event("CALL_CLOSED", 10)
    answers = [(b["first"], b["text"])
               for b in sip(bs, "in", "SIP/2.0 1") + sip(bs, "in", "SIP/2.0 2")
               if "m=video" in b["text"]]
    check(any(f.startswith("SIP/2.0 183") for f, _ in answers) and
          any(f.startswith("SIP/2.0 200") for f, _ in answers),
          "baresip got an answer in a 183 and in the 200")
    check_offer_answer(bs, answers, "the relay" if encryption == "terminate" else "the monitor")
    check_baresip_srtp(bs)
    check_wire(cap, bs, (mon, proxy))
    # The monitor's srtpdec drops baresip's clear RTCP APP PINGs (the relay
    # passes them on in passthrough) and what comes before it has the keys
    # of the 200; a wrong key would drop everything.
    pings = [p for p in cap.packets if p[1] in bp.port_set(MON_RTP) and p[2][8:16] == b"PINGPONG"]
    check(st.get("srtp_dropped", 0) * 20 < st["audio_packets_received"],
          "the monitor's srtpdec decrypts baresip's packets (%d dropped, %d of them baresip's "
          "clear PINGs; %d received)" % (st.get("srtp_dropped", 0), len(pings),
                                         st["audio_packets_received"]))
    check(proxy.alive(), "portier-proxy still running")
    for name in ("baresip", "mon1", "proxy", "capture"):
        procs.pop(name).stop()


def baresip_calls_door(args, tmp, procs):
    log("---- baresip calls the door, relay encryption = passthrough, not mandatory")
    tmp = os.path.join(tmp, "door")
    os.makedirs(tmp)
    proxy = bp.srtp_proxy(args.proxy, args.ctl, tmp, "passthrough", mandatory=False)
    procs["proxy"] = proxy
    proxy.start()
    door = pd.door(args.door, args.ctl, tmp, li.USERS["door"], li.PROXY_PORT, DOOR_SIP, DOOR_RTP,
                   li.GROUP, extra=MANDATORY + "[call]\nauto-answer = sip:mon1@%s\n" % li.DOMAIN)
    procs["door"] = door
    door.start()
    bs = baresip(os.path.join(tmp), procs, "mon1")
    wait_for(lambda: [r for r in proxy.registrations()
                      if r.get("aor") == "sip:mon1@%s" % li.DOMAIN], 10, "baresip's binding")
    cap = capture()
    procs["capture"] = cap
    r = bs.command("dial", "sip:door@%s" % li.DOMAIN)
    check(r.get("ok"), "baresip (srtp-mand) dials the door (%s)" % r)
    wait_for(lambda: door.events("auto_answered") or None, 10, "the door's answer")
    bs.wait_event("CALL_ESTABLISHED", 10)

    def video():
        text = bs.log_text()
        return "video: receiving with resolution" in text or None
    wait_for(video, 10, "the door's SRTP video decoded by baresip")
    st = wait_for(lambda: (lambda s: s if s.get("audio_packets_received", 0) > 10
                           else None)(door.status()), 10, "baresip's audio at the door")
    check(st.get("audio_srtp") == st.get("video_srtp") == BARESIP_SUITE,
          "the door answered, runs %s on both streams and got %d audio packets of baresip's"
          % (st.get("audio_srtp"), st["audio_packets_received"]))
    r = door.ctl("hangup", errors=True)
    check(r and r.get("result") == "hung up", "the door hangs up (%s)" % r)
    bs.wait_event("CALL_CLOSED", 10)
    answers = [(b["first"], b["text"]) for b in sip(bs, "in", "SIP/2.0 200")
               if "m=video" in b["text"]]
    check(answers, "baresip got the door's answer in its 200")
    check_offer_answer(bs, answers, "the door")
    check_baresip_srtp(bs)
    check_wire(cap, bs, (door, proxy))
    procs.pop("capture").stop()
    procs.pop("baresip").stop()

    log("---- a plain baresip (no mediaenc) calls the door")
    bs = baresip(os.path.join(tmp, "plain"), procs, "mon1", mediaenc=None)
    wait_for(lambda: len(sip(bs, "in", "SIP/2.0 200")) > 0, 10, "the plain baresip's REGISTER")
    cap = capture()
    procs["capture"] = cap
    ended = len(door.events("ended"))
    r = bs.command("dial", "sip:door@%s" % li.DOMAIN)
    check(r.get("ok"), "the plain baresip dials the door (%s)" % r)
    closed = bs.wait_event("CALL_CLOSED", 10)
    refusal = wait_for(lambda: sip(bs, "in", "SIP/2.0 488"), 5, "a 488")[0]["text"]
    warning = re.search(r"^Warning: (.*)$", refusal, re.M)
    check(warning and "SRTP is mandatory" in warning.group(1),
          "the door refuses RTP/AVP without a=crypto with 488 Not Acceptable Here, saying why "
          "(%s); baresip: %s" % (warning.group(1) if warning else "no Warning",
                                 closed[-1].get("param")))
    offer = [b for b in sip(bs, "out", "INVITE ") if "m=video" in b["text"]][-1]["text"]
    check(bp.media_proto(offer, "audio") == "RTP/AVP" and "a=crypto" not in offer,
          "the plain baresip offered RTP/AVP without a=crypto")
    check(not door.events("auto_answered")[1:] and len(door.events("ended")) == ended,
          "the door answered no second call")
    cap.stop()
    sent = [p for p in cap.packets if p[0] in bp.port_set(DOOR_RTP)]
    check(not sent, "the door sent no media (%d datagrams from its ports)" % len(sent))
    st = door.status()
    check(st.get("call") == "idle", "the door is idle (%s)" % st.get("call"))
    check(proxy.alive(), "portier-proxy still running")


def run(args, tmp, procs):
    for encryption in ("passthrough", "terminate"):
        baresip_calls_monitor(args, tmp, procs, encryption)
    baresip_calls_door(args, tmp, procs)


def main():
    return pd.main(__doc__, run, ("proxy", "ctl", "door", "monitor"),
                   [li.PROXY_PORT, MON_SIP, DOOR_SIP, BS_SIP, BS_SIP + 1, BS_CTRL],
                   "portier-baresip-srtp-caller-", lambda args: shutil.which("baresip"),
                   "baresip not found (Debian package baresip)")


if __name__ == "__main__":
    sys.exit(main())
