#!/usr/bin/env python3
"""Interop test (issue 11): baresip 1.0 (Debian package baresip) as the door,
with portier-proxy at `available-algorithms = MD5` (baresip 1.0 fails on any
challenge that is not MD5) and digest on. Python 3 stdlib only.

baresip registers as door@home.example and calls `sip:home@home.example`
(its INVITE's 407 answered with MD5). A portier-monitor (registered too: a
lone MD5 challenge) rings, answers 183 recvonly and decodes baresip's VP8
test picture through the media relay before anyone answers; it answers,
audio flows both ways, and it hangs up: baresip's call closes. baresip offers
opus with telephone-event/8000 only (issue 13): the monitor answers PCMU, the
first codec whose clock has events.

Ports: proxy 127.0.0.1:39560; baresip 39570 (SIP, TCP, and TLS on 39571),
39575 (ctrl_tcp), 39580-39599 (RTP); the monitor 39540 (SIP), 39520-39539
(RTP); the relay 39600-39699. No other test uses them.

    baresip_door.py --proxy build/signaling/portier-proxy \\
        --ctl build/signaling/portierctl --monitor build/signaling/portier-monitor

Exit status: 0 pass, 1 fail, 77 skipped (baresip not installed).
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linphone_interop as li  # noqa: E402  log, check, wait_for, Proxy
import portier_devices as pd  # noqa: E402
import baresip_peer as bp  # noqa: E402

check, log, wait_for = bp.use(39560, "39600-39699",
                               {"mon1": "mon1-Bare-4471", "door": "door-Bare-9038"})
BS_SIP, BS_CTRL, BS_RTP = 39570, 39575, "39580-39599"
MON_SIP, MON_RTP = 39540, "39520-39539"


def run(args, tmp, procs):
    proxy = pd.md5_proxy(args.proxy, args.ctl, tmp)
    procs["proxy"] = proxy
    proxy.start()
    mon = pd.monitor(args.monitor, args.ctl, tmp, "mon1", "mon1", li.USERS["mon1"], li.PROXY_PORT,
                     MON_SIP, MON_RTP)
    procs["mon1"] = mon
    mon.start()
    check(True, "portier-monitor registered against the MD5-only proxy")
    bs = bp.Baresip(tmp, "baresip-door", "sip:door@%s" % li.DOMAIN, li.USERS["door"],
                    li.PROXY_PORT, BS_SIP, BS_CTRL, BS_RTP, audio_codecs="opus/48000/2,PCMU")
    procs["baresip"] = bs
    bs.start()
    reg = wait_for(lambda: [r for r in proxy.registrations()
                            if r.get("aor") == "sip:door@%s" % li.DOMAIN], 10,
                   "baresip's binding")
    check("baresip" in reg[0].get("user_agent", ""), "baresip registered as the door (MD5)")

    r = bs.command("dial", li.GROUP)
    check(r.get("ok"), "baresip dials %s (%s)" % (li.GROUP, r))
    st = wait_for(lambda: (lambda s: s if s and s.get("call") == "early"
                           and s.get("frames_decoded", 0) > 0 else None)(mon.status()),
                  15, "the monitor ringing with baresip's video")
    check(st.get("peer") == "sip:door@%s" % li.DOMAIN, "the monitor rings for the door: %s, %d "
          "frames of %s decoded before anyone answered" % (st.get("peer"), st["frames_decoded"],
                                                          st.get("video_codec")))
    r = mon.ctl("answer", errors=True)
    check(r and r.get("result") == "answered", "the monitor answers (%s)" % r)
    bs.wait_event("CALL_ESTABLISHED", 10)
    check(True, "baresip's call is established")
    st = wait_for(lambda: (lambda s: s if s.get("audio_packets_received", 0) > 10 and
                           s.get("audio_packets_sent", 0) > 10 else None)(mon.status()),
                  10, "two-way audio between baresip and the monitor")
    check(True, "audio both ways: the monitor sent %d and received %d packets"
          % (st["audio_packets_sent"], st["audio_packets_received"]))
    # baresip 1.0 offers opus/48000/2 with telephone-event/8000 only: events
    # cannot ride opus's 48 kHz clock (RFC 4733 §2.1), so the monitor takes
    # the offer's first codec that has events at its clock, PCMU.
    check(st.get("audio_codec") == "PCMU/8000",
          "the monitor answered baresip's opus + telephone-event/8000 with PCMU: %s"
          % st.get("audio_codec"))
    r = mon.ctl("hangup", errors=True)
    check(r and r.get("result") == "hung up", "the monitor hangs up (%s)" % r)
    bs.wait_event("CALL_CLOSED", 10)
    check(True, "baresip's call is closed")
    check(proxy.alive(), "portier-proxy still running")


def main():
    return pd.main(__doc__, run, ("proxy", "ctl", "monitor"),
                   [li.PROXY_PORT, MON_SIP, BS_SIP, BS_SIP + 1, BS_CTRL], "portier-baresip-door-",
                   lambda args: shutil.which("baresip"), "baresip not found (Debian package baresip)")


if __name__ == "__main__":
    sys.exit(main())
