#!/usr/bin/env python3
"""Interop test: portier-door with real Linphone (linphone-daemon from
Debian's linphone-cli). Python 3 stdlib only.

Seed scenario 2 (issue 4): a resident's Linphone calls the door; the door's
config allows mon1, so the door answers at once and sends its camera (a test
pattern, VP8: Debian's Linphone has no H.264); mon1's oRTP statistics show the
door's video packets. Linphone offers opus first: the door answers opus/48000/2
with telephone-event/48000 (issue 13). mon2 is not allowed: its call gets 403 and the door
sends nothing. Everything goes through portier-proxy (digest auth, the media
relay, P-Asserted-Identity naming the caller).

Ports: proxy 127.0.0.1:37060; Linphone 37110-37125; the door 37140 (SIP) and
37150-37159 (RTP); the relay 37200-37299. No other test uses them.

    linphone_door.py --proxy build/signaling/portier-proxy \\
                     --ctl build/signaling/portierctl \\
                     --door build/signaling/portier-door [--keep]

Exit status: 0 pass, 1 fail, 77 skipped (linphone-daemon not installed).
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linphone_interop as li  # noqa: E402  the daemon and proxy drivers
from portier_py import configs  # noqa: E402  (linphone_interop put scripts/ on the path)
from linphone_early_media import video_packets_received  # noqa: E402

li.PROXY_PORT = 37060
li.RELAY_PORTS = "37200-37299"
li.PEERS = {
    "mon1": ("mon1", "secret1", 37110, "udp"),
    "mon2": ("mon2", "secret2", 37120, "udp"),
}
DOOR_SIP, DOOR_RTP = 37140, "37150-37159"
check, log, wait_for = li.check, li.log, li.wait_for


class Door(li.Daemon):
    """portier-door with a config of the test: camera none (test pattern), no
    sound card, control socket in the temp dir."""

    def __init__(self, exe, ctl, tmp, auto_answer):
        super().__init__(exe, ctl, tmp, "door")
        account = configs.account("sip:door@" + li.DOMAIN, li.USERS["door"],
                                  "127.0.0.1:%d" % li.PROXY_PORT, "127.0.0.1:%d" % DOOR_SIP)
        self.write_conf(configs.door_conf(self.sock, account, li.GROUP, "127.0.0.1", DOOR_RTP,
                                          os.path.join(tmp, "door-events"),
                                          more={"call": {"auto-answer": auto_answer}}))

    def start(self):
        super().start()
        wait_for(lambda: self.status().get("registered"), 10, "portier-door registered")


def account_rc(role):
    user, password = li.PEERS[role][0], li.PEERS[role][1]
    return ("[proxy_0]\nreg_proxy=<sip:127.0.0.1:{p};transport=udp>\n"
            "reg_route=<sip:127.0.0.1:{p};transport=udp;lr>\nreg_identity=sip:{u}@{d}\n"
            "reg_expires=3600\nreg_sendregister=1\n"
            "[auth_info_0]\nusername={u}\nuserid={u}\npasswd={pw}\nrealm={d}\n").format(
                p=li.PROXY_PORT, u=user, d=li.DOMAIN, pw=password)


def run(args, tmp, procs):
    check(args.door, "--door given")
    proxy = li.Proxy(args.proxy, args.ctl, tmp)
    procs["proxy"] = proxy
    proxy.start()
    door = Door(args.door, args.ctl, tmp, "sip:mon1@%s" % li.DOMAIN)
    procs["door"] = door
    door.start()
    log("portier-proxy and portier-door up")

    lps = {}
    for role in ("mon1", "mon2"):
        # provisioned with the proxy as outbound proxy, as a resident's app is
        # (calls to sip:door@home.example then go through it, not to DNS)
        lps[role] = li.Linphone(role, tmp, args.linphone, account_rc(role), "default_proxy=0\n")
    li.start_linphones(lps, procs)
    mon1, mon2 = lps["mon1"], lps["mon2"]

    # mon1 may watch: the door answers at once with its camera.
    ok, f, raw = mon1.cmd("call sip:door@%s" % li.DOMAIN)
    check(ok and f.get("Id"), "mon1: `call sip:door@%s` accepted" % li.DOMAIN)
    cid = f["Id"]
    mon1.wait_call_event("LinphoneCallStreamsRunning", 10, cid)
    answered = wait_for(lambda: door.events("auto_answered") or None, 5, "the door's answer")
    check(answered[0]["details"] == "from=sip:mon1@%s" % li.DOMAIN,
          "the door knows its caller from P-Asserted-Identity: %s" % answered[0]["details"])
    time.sleep(3.0)  # a few seconds of the door's camera
    st = door.status()
    check(st.get("video_packets_sent", 0) > 0, "the door sent video (%s)" % st)
    # issue 13 item 5: Linphone offers opus first, the door answers in the
    # offerer's order (RFC 3264 §5.1) with its telephone-event/48000.
    check(st.get("audio_codec") == "opus/48000", "the door answered Linphone's offer with %r"
          % st.get("audio_codec"))
    ok200 = [m for d, t, m in li.sip_messages(mon1) if d == "in" and m.startswith("SIP/2.0 200")
             and "m=audio" in m]
    check(ok200 and re.search(r"^m=audio \d+ RTP/AVPF? 96 \d+\s*$", ok200[-1], re.M) and
          re.search(r"^a=rtpmap:96 opus/48000/2", ok200[-1], re.M) and
          re.search(r"^a=rtpmap:\d+ telephone-event/48000", ok200[-1], re.M),
          "the door's 200 has opus/48000/2 and telephone-event/48000: %s"
          % re.findall(r"^(?:m=audio|a=rtpmap).*$", ok200[-1] if ok200 else "", re.M))
    ok, f, raw = mon1.cmd("terminate %s" % cid)
    check(ok, "mon1: `terminate` accepted")
    mon1.wait_call_event("LinphoneCallReleased", 10, cid)
    counts = wait_for(lambda: video_packets_received(mon1.logfile) or None, 5,
                      "mon1's video RTP statistics in its log")
    log("mon1: video packets received from the door: %s" % counts)
    check(max(counts) > 0, "mon1 received the door's video (oRTP: %s packets)" % counts)
    wait_for(lambda: door.events("ended") or None, 5, "the door's call to end")

    # mon2 may not: 403, and the door stays idle.
    ok, f, raw = mon2.cmd("call sip:door@%s" % li.DOMAIN)
    check(ok and f.get("Id"), "mon2: `call` accepted")
    cid2 = f["Id"]
    mon2.wait_call_event("LinphoneCallError", 10, cid2)
    refused = wait_for(lambda: door.events("call_refused") or None, 5, "the door's refusal")
    check(refused[0]["details"] == "from=sip:mon2@%s" % li.DOMAIN,
          "the door refused mon2 (%s)" % refused[0]["details"])
    msgs = [m for d, t, m in li.sip_messages(mon2) if d == "in" and m.startswith("SIP/2.0 403")]
    check(msgs, "mon2 got 403 Forbidden from the door")
    check(door.status().get("call") == "idle", "the door is idle after refusing mon2")
    check(proxy.alive(), "portier-proxy still running")


if __name__ == "__main__":
    li.run = run
    sys.exit(li.main())
