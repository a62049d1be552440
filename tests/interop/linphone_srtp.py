#!/usr/bin/env python3
"""Interop test: SRTP (SDES, RFC 4568) between portier-door and Linphone
(linphone-daemon from Debian's linphone-cli, liblinphone 5.1). Python 3 stdlib
only.

Issue 13: the door has media-encryption-mandatory; Linphone, as a monitor, has
media_encryption=srtp and media_encryption_mandatory=1. The proxy's relay is
off, so the two endpoints' own SRTP meets on the wire. The door rings, mon1
answers with video and audio; the door's status names an SRTP suite for both
streams (Linphone 5.1 skips the AEAD lines and takes AES_256_CM_HMAC_SHA1_80);
the door's video and voice reach Linphone; Linphone's DTMF (RFC 4733, inside
SRTP) opens the door once; no key is in the door's log.

Ports: proxy 127.0.0.1:34060; Linphone 34110-34115; the door 34140 (SIP),
34150-34159 (RTP). No other test uses them.

    linphone_srtp.py --proxy build/signaling/portier-proxy \\
        --ctl build/signaling/portierctl --door build/signaling/portier-door [--keep]

Exit status: 0 pass, 1 fail, 77 skipped (linphone-daemon not installed).
"""

import os
import re
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linphone_interop as li  # noqa: E402
import linphone_door as ld  # noqa: E402
from linphone_early_media import video_packets_received  # noqa: E402
from portier_py.configs import proxy_conf, users_file  # noqa: E402

li.PROXY_PORT = 34060
li.RELAY_PORTS = "34200-34299"
li.PEERS = {"mon1": ("mon1", "secret1", 34110, "udp")}
ld.DOOR_SIP, ld.DOOR_RTP = 34140, "34150-34159"
check, log, wait_for = li.check, li.log, li.wait_for
CODE = "583920"
SUITES = ("AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_256_CM_HMAC_SHA1_80",
          "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")


class DirectProxy(li.Proxy):
    """portier-proxy with its media relay off: the endpoints' SDP goes through
    as written."""

    def __init__(self, exe, ctl, tmp):
        li.Daemon.__init__(self, exe, ctl, tmp, "proxy")
        users = users_file(os.path.join(tmp, "users.conf"), li.USERS, li.DOMAIN)
        self.write_conf(proxy_conf("127.0.0.1", li.PROXY_PORT, tmp + "/state", self.sock, users,
                                   li.RELAY_PORTS, li.DOMAIN,
                                   more={"module::Router": {"call-fork-timeout": 30},
                                         "module::MediaRelay": {"enabled": "false"}}))


def audio_packets_received(logfile):
    """Packets of each AUDIO session, from the oRTP statistics block liblinphone
    logs when a stream stops (as linphone_early_media reads the video's)."""
    counts = []
    lines = open(logfile, errors="replace").read().splitlines()
    for i, line in enumerate(lines):
        if "AUDIO SESSION'S RTP STATISTICS" in line:
            for l in lines[i:i + 12]:
                m = re.search(r"ortp-message-received\s+(\d+) packets", l)
                if m:
                    counts.append(int(m.group(1)))
                    break
    return counts


def fired(path):
    try:
        with open(path) as f:
            return [l.strip() for l in f if l.strip()]
    except OSError:
        return []


def run(args, tmp, procs):
    check(args.door, "--door given")
    script = os.path.join(tmp, "open-door.sh")
    fired_path = os.path.join(tmp, "fired")
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho \"$ACTION\" >> %s\n" % fired_path)
    os.chmod(script, stat.S_IRWXU)
    proxy = DirectProxy(args.proxy, args.ctl, tmp)
    procs["proxy"] = proxy
    proxy.start()
    door = ld.Door(args.door, args.ctl, tmp, "")
    with open(door.conf, "a") as f:
        f.write("[media]\nmedia-encryption = srtp\nmedia-encryption-mandatory = true\n"
                "[actions]\ndoor = {code}\n[access]\nallow = sip:mon1@{d}\n"
                "[actuator]\ntype = command\ncommand = {s}\n".format(code=CODE, d=li.DOMAIN,
                                                                    s=script))
    procs["door"] = door
    door.start()
    mon1 = li.Linphone("mon1", tmp, args.linphone, ld.account_rc("mon1"),
                       "default_proxy=0\nmedia_encryption=srtp\nmedia_encryption_mandatory=1\n")
    li.start_linphones({"mon1": mon1}, procs)

    r = door.ctl("ring")
    check(r and r.get("result") == "calling", "the door calls the home (%s)" % r)

    def incoming():
        mon1.pop_events()
        for e in mon1.events:
            if (e.get("Event-type") == "call-state-changed" and
                    e.get("Event") == "LinphoneCallIncomingReceived"):
                return e.get("Id")
        return None
    cid = wait_for(incoming, 10, "mon1: the door's call")
    ok, f, raw = mon1.cmd("answer %s" % cid)
    check(ok, "mon1 answers")
    mon1.wait_call_event("LinphoneCallStreamsRunning", 10, cid)
    wait_for(lambda: door.events("answered") or None, 5, "the door to see the answer")
    time.sleep(2.0)  # video and voice flow
    st = door.status()
    log("door: audio_srtp=%s video_srtp=%s video_packets_sent=%s audio_packets_received=%s "
        "srtp_dropped=%s" % (st.get("audio_srtp"), st.get("video_srtp"),
                             st.get("video_packets_sent"), st.get("audio_packets_received"),
                             st.get("srtp_dropped")))
    check(st.get("audio_srtp") in SUITES, "the door's audio is SRTP (%s)" % st.get("audio_srtp"))
    check(st.get("video_srtp") in SUITES, "the door's video is SRTP (%s)" % st.get("video_srtp"))
    check(st.get("video_packets_sent", 0) > 0, "the door sent video")
    # Linphone without a sound card sends no voice packets (its bandwidth log
    # shows no audio upload): its RFC 4733 events below are what travels that
    # way, and the door's voice to it is in its oRTP statistics.
    # Linphone's own view: its call is encrypted with SRTP.
    sip = [m for d, t, m in li.sip_messages(mon1) if d == "out" and m.startswith("SIP/2.0 200")]
    check(sip and re.search(r"a=crypto:\d+ \S+ inline:", sip[-1]),
          "Linphone's 200 carries an a=crypto")
    time.sleep(0.5)
    for k in CODE:
        ok, f, raw = mon1.cmd("dtmf %s" % k)
        check(ok, "mon1: dtmf accepted")
        time.sleep(0.35)
    wait_for(lambda: fired(fired_path) or None, 5, "the door to open")
    time.sleep(1.5)  # a second opening from repeated events would show by now
    check(fired(fired_path) == ["door"], "the actuator ran the action 'door' once (%s)"
          % fired(fired_path))
    via = [e["details"] for e in door.events("action")]
    check(len(via) == 1 and via[0].startswith("via=rfc4733 from=sip:mon1@%s action=door"
                                               % li.DOMAIN),
          "one opening by RFC 4733 from mon1: %s" % via)
    ok, f, raw = mon1.cmd("terminate %s" % cid)
    check(ok, "mon1: terminate")
    mon1.wait_call_event("LinphoneCallReleased", 10, cid)
    counts = wait_for(lambda: video_packets_received(mon1.logfile) or None, 5,
                      "mon1's video RTP statistics in its log")
    log("mon1: video packets received from the door: %s" % counts)
    check(max(counts) > 0, "Linphone received the door's video (oRTP: %s)" % counts)
    audio = audio_packets_received(mon1.logfile)
    log("mon1: audio packets received from the door: %s" % audio)
    check(audio and max(audio) > 0, "Linphone received the door's audio (oRTP: %s)" % audio)
    # Every key of the call, as Linphone logged the SDP, is absent from the door's log.
    keys = set(re.findall(r"inline:([A-Za-z0-9+/=]{20,})", open(mon1.logfile,
                                                              errors="replace").read()))
    text = open(door.logfile, errors="replace").read()
    check(keys, "Linphone's log shows the call's keys (to look for)")
    check(not [k for k in keys if k in text], "no SRTP key in the door's log")
    check(not re.search(r"(?<![0-9])%s(?![0-9])" % CODE, text), "the door code is not in its log")


if __name__ == "__main__":
    li.run = run
    sys.exit(li.main())
