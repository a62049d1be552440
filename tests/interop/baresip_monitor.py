#!/usr/bin/env python3
"""Interop test (issue 11): baresip 1.0 (Debian package baresip) as a monitor
of the home, with portier-proxy at `available-algorithms = MD5` (baresip 1.0
fails on any challenge that is not MD5) and digest on. Python 3 stdlib only.

baresip registers as mon1 with `answermode=early`; portier-door (registered
too: a lone MD5 challenge) rings `sip:home@home.example`. baresip answers 183
with SDP (with the default `manual` it sends only 180) and gets the door's
VP8 video and opus audio (issue 13) through the proxy's media relay before
anyone answers: its own log says the video RTP comes from the relay's port
and gives the picture's size,
the relay's counters show packets sent to its branch, and its RTP statistics
at the end count the video packets it received. It takes opus, the door's
first codec (issue 13): it answers, its audio reaches the door, it types the
door code (RFC 4733 events at 8000 Hz, all it offers, inside the opus stream)
and the door opens once; the door hangs up.

Ports: proxy 127.0.0.1:39360; the door 39340 (SIP), 39350-39359 (RTP);
baresip 39370 (SIP, TCP, and TLS on 39371), 39375 (ctrl_tcp), 39380-39399
(RTP); the relay 39400-39499. No other test uses them.

    baresip_monitor.py --proxy build/signaling/portier-proxy \\
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

check, log, wait_for = bp.use(39360, "39400-39499",
                               {"mon1": "mon1-Bare-6617", "door": "door-Bare-2094"})
CODE = "583920"
DOOR_SIP, DOOR_RTP = 39340, "39350-39359"
BS_SIP, BS_CTRL, BS_RTP = 39370, 39375, "39380-39399"


def relay_branches(proxy):
    calls = proxy.relay().get("calls", [])
    return [b for c in calls for b in c.get("branches", [])]


def sent_183_with_sdp(text):
    """The 183s baresip sent (its -s trace), those with an SDP body naming video."""
    out = []
    for block in text.split("\x1b[36;1m#")[1:]:
        lines = block.replace("\x1b[;m", "").strip().splitlines()
        # TCP when the relayed INVITE is over 1300 bytes (RFC 3261 §18.1.1)
        if len(lines) > 1 and re.match(r"(UDP|TCP) 127\.0\.0\.1:%d ->" % BS_SIP, lines[0]) \
                and lines[1].startswith("SIP/2.0 183"):
            body = "\n".join(lines)
            out.append("application/sdp" in body and "m=video" in body)
    return out


def run(args, tmp, procs):
    proxy = pd.md5_proxy(args.proxy, args.ctl, tmp)
    procs["proxy"] = proxy
    proxy.start()
    bs = bp.Baresip(tmp, "baresip-mon1", "sip:mon1@%s" % li.DOMAIN, li.USERS["mon1"],
                    li.PROXY_PORT, BS_SIP, BS_CTRL, BS_RTP, answermode="early",
                    audio_codecs="opus/48000/2,PCMU", tone_rate=48000, tone_channels=2)
    procs["baresip"] = bs
    bs.start()
    reg = wait_for(lambda: [r for r in proxy.registrations()
                            if r.get("aor") == "sip:mon1@%s" % li.DOMAIN], 10,
                   "baresip's binding")
    check("baresip" in reg[0].get("user_agent", ""), "baresip registered as mon1 (MD5): %s"
          % reg[0].get("user_agent"))
    door = pd.door(args.door, args.ctl, tmp, li.USERS["door"], li.PROXY_PORT, DOOR_SIP, DOOR_RTP,
                   li.GROUP, extra="[actions]\ndoor = %s log\n[access]\nallow = sip:mon1@%s\n"
                   % (CODE, li.DOMAIN))
    procs["door"] = door
    door.start()
    check(True, "portier-door registered against the MD5-only proxy")

    r = door.ctl("ring", errors=True)
    check(r and r.get("result") == "calling", "the door rings the home (%s)" % r)
    lo, hi = (int(p) for p in li.RELAY_PORTS.split("-"))

    def early_video():
        m = re.search(r"incoming rtp for 'video' established, receiving from "
                      r"127\.0\.0\.1:(\d+)", bs.log_text())
        return m if m and "video: receiving with resolution" in bs.log_text() else None
    m = wait_for(early_video, 10, "the door's video at baresip")
    check(lo <= int(m.group(1)) <= hi, "baresip gets the video from the relay (port %s)"
          % m.group(1))
    check(True in sent_183_with_sdp(bs.log_text()),
          "baresip answered 183 with SDP (answermode=early): %s" % sent_183_with_sdp(bs.log_text()))
    branches = relay_branches(proxy)
    check(branches and branches[0].get("packets", 0) > 0 and not branches[0].get("winner"),
          "the relay sends the door's media to baresip's branch: %s" % branches)
    st = door.status()
    check(st.get("call") == "early", "nobody has answered yet (the door is %s)" % st.get("call"))
    # issue 13 item 5: baresip takes the door's first codec, opus (RFC 7587)
    check(st.get("audio_codec") == "opus/48000" and st.get("audio_rate") == 48000,
          "the door sends opus/48000 to baresip: %s %s" % (st.get("audio_codec"),
                                                           st.get("audio_rate")))
    check(wait_for(lambda: re.search(r"Set audio decoder: opus 48000Hz", bs.log_text()), 5,
                   "baresip's opus decoder", fatal=False),
          "baresip decodes the door's audio with opus at 48000 Hz")
    size = re.search(r"video: receiving with resolution (\d+ x \d+)", bs.log_text()).group(1)
    log("baresip decodes the door's picture: %s" % size)

    # baresip answers and types the code: RFC 4733 events at 8000 (all it
    # offers) in the opus stream; the door opens once.
    r = bs.command("accept")
    check(r.get("ok"), "baresip answers (%s)" % r)
    wait_for(lambda: door.events("answered") or None, 10, "the door to see the answer")
    r = bs.command("sndcode", CODE)
    check(r.get("ok"), "baresip sends the code (%s)" % r)
    wait_for(lambda: door.events("action") or None, 10, "the door's action")
    time.sleep(1.0)  # a second opening would show up now
    actions = [e["details"] for e in door.events("action")]
    check(actions == ["via=rfc4733 from=sip:mon1@%s action=door result=done" % li.DOMAIN],
          "baresip's RFC 4733 code opened the door once: %s" % actions)
    heard = door.status().get("audio_packets_received", 0)
    check(heard > 10, "baresip's opus reaches the door (%d packets)" % heard)
    r = door.ctl("hangup", errors=True)
    check(r and r.get("result") == "hung up", "the door hangs up (%s)" % r)

    def video_received():
        m = re.search(r"video\s+Transmit:\s+Receive:\s*\npackets:\s+\d+\s+(\d+)", bs.log_text())
        return m
    m = wait_for(video_received, 10, "baresip's RTP statistics at the end of the call")
    check(int(m.group(1)) > 0, "baresip received %s video packets" % m.group(1))
    m = re.search(r"audio\s+Transmit:\s+Receive:\s*\npackets:\s+\d+\s+(\d+)", bs.log_text())
    check(m and int(m.group(1)) > 0, "baresip received %s opus packets of the door's"
          % (m.group(1) if m else "no"))
    check(proxy.alive(), "portier-proxy still running")


def main():
    return pd.main(__doc__, run, ("proxy", "ctl", "door"),
                   [li.PROXY_PORT, DOOR_SIP, BS_SIP, BS_SIP + 1, BS_CTRL],
                   "portier-baresip-monitor-", lambda args: shutil.which("baresip"),
                   "baresip not found (Debian package baresip)")


if __name__ == "__main__":
    sys.exit(main())
