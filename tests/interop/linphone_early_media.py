#!/usr/bin/env python3
"""Interop test: early media through portier-proxy's media relay, with real
Linphone (linphone-daemon from Debian's linphone-cli). Python 3 stdlib only.

A Linphone door with a camera (mediastreamer2's static picture) calls the
group address; two Linphone monitors with `[sip] incoming_calls_early_media=1`
ring and answer 183 with SDP. While they ring, the relay forks the door's video
to both (issue 3: every early branch, not only the first). Then the door gives
up (CANCEL) and each monitor's oRTP statistics for its video session, logged
when its early-media streams stop, must show received packets: all of them
arrived while it was ringing. Every relay port is free afterwards.

Ports: proxy 127.0.0.1:36060; Linphone instances 36110-36135; the proxy's relay
36200-36299. No other test uses 36060 or 36100-36299.

    linphone_early_media.py --proxy build/signaling/portier-proxy \\
                            --ctl build/signaling/portierctl [--keep]

Exit status: 0 pass, 1 fail, 77 skipped (linphone-daemon not installed).
"""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linphone_interop as li  # noqa: E402  the daemon and proxy drivers

li.PROXY_PORT = 36060
li.RELAY_PORTS = "36200-36299"
li.PEERS = {
    "mon1": ("mon1", "secret1", 36110, "udp"),
    "mon2": ("mon2", "secret2", 36120, "udp"),
    "door": ("door", "doorpw", 36130, "udp"),
}
check, log, wait_for = li.check, li.log, li.wait_for


def video_packets_received(logfile):
    """Packets of each VIDEO session, from the oRTP statistics block that
    liblinphone logs when a stream stops."""
    counts = []
    lines = open(logfile, errors="replace").read().splitlines()
    for i, line in enumerate(lines):
        if "VIDEO SESSION'S RTP STATISTICS" in line:
            for l in lines[i:i + 12]:
                m = re.search(r"ortp-message-received\s+(\d+) packets", l)
                if m:
                    counts.append(int(m.group(1)))
                    break
    return counts


class Door(li.Linphone):
    """The door: like the monitors, plus -C (video capture): without it the
    daemon turns capture off whatever its rc file says."""

    def start(self):
        real_popen = li.subprocess.Popen

        def popen_with_capture(argv, *a, **kw):
            return real_popen(list(argv) + ["-C"], *a, **kw)
        li.subprocess.Popen = popen_with_capture
        try:
            super().start()
        finally:
            li.subprocess.Popen = real_popen


def run(args, tmp, procs):
    proxy = li.Proxy(args.proxy, args.ctl, tmp)
    procs["proxy"] = proxy
    proxy.start()
    log("portier-proxy up on 127.0.0.1:%d" % li.PROXY_PORT)

    # The door is provisioned with the proxy as outbound proxy (see
    # linphone_interop.py) and has a camera: mediastreamer2's static picture,
    # sent as VP8 (Debian's Linphone has no H.264).
    door_rc = li.door_account_rc()
    lps = {}
    for role in ("mon1", "mon2", "door"):
        if role == "door":
            lp = Door(role, tmp, args.linphone, door_rc, "default_proxy=0\n")
            rc = open(lp.rc).read().replace(
                "capture=0\n",
                "capture=1\ndevice=StaticImage: Static picture\nautomatically_initiate=1\n")
        else:
            # early media as a ringing device (PEERS.md)
            lp = li.Linphone(role, tmp, args.linphone, "", "incoming_calls_early_media=1\n")
            rc = open(lp.rc).read().replace("[video]\n", "[video]\nautomatically_accept=1\n")
        with open(lp.rc, "w") as f:
            f.write(rc)
        lps[role] = lp
    li.start_linphones(lps, procs, registered=False)
    mon1, mon2, door = lps["mon1"], lps["mon2"], lps["door"]

    for lp in (mon1, mon2):
        ok, f, raw = lp.cmd("register sip:%s@%s sip:127.0.0.1:%d;transport=udp %s %s %s"
                            % (lp.user, li.DOMAIN, li.PROXY_PORT, lp.password, lp.user,
                               li.DOMAIN))
        check(ok, "%s: `register` accepted" % lp.role)
    for lp in (mon1, mon2, door):
        st = wait_for(lambda: lp.register_state() == "LinphoneRegistrationOk" or None, 10,
                      "%s registration" % lp.role)
        check(st, "%s registered" % lp.role)

    # --early-media: the door sends its camera and microphone as soon as a
    # 183 arrives (without it liblinphone sends "silence and dummy video").
    ok, f, raw = door.cmd("call %s --early-media" % li.GROUP)
    check(ok and f.get("Id"), "door: `call %s` accepted" % li.GROUP)
    door_id = f["Id"]
    ids = {}
    for lp in (mon1, mon2):
        ids[lp.role] = lp.wait_call_event("LinphoneCallIncomingEarlyMedia", 10)
        check(True, "%s rings with early media (call %s)" % (lp.role, ids[lp.role]))
    door.wait_call_event("LinphoneCallOutgoingEarlyMedia", 10, door_id)
    check(True, "door: early media (one early dialog through the relay)")

    # The relay connects both branches and forwards the door's media.
    def both_connected():
        r = proxy.relay()
        calls = r.get("calls") or []
        if calls and sum(1 for b in calls[0]["branches"] if b["connected"]) == 2:
            return r
        return None
    r = wait_for(both_connected, 10, "the relay to connect both ringing monitors")
    check(True, "relay: %s" % json.dumps(r))
    time.sleep(3.0)  # a few seconds of the door's video while both ring

    ok, f, raw = door.cmd("terminate %s" % door_id)  # the visitor leaves: CANCEL
    check(ok, "door: `terminate` (CANCEL) accepted")
    for lp in (mon1, mon2):
        lp.wait_call_event("LinphoneCallReleased", 10, ids[lp.role])
    door.wait_call_event("LinphoneCallReleased", 10, door_id)

    for lp in (mon1, mon2):
        counts = wait_for(lambda: video_packets_received(lp.logfile) or None, 5,
                          "%s's video RTP statistics in its log" % lp.role)
        log("%s: video packets received while ringing: %s" % (lp.role, counts))
        check(counts and max(counts) > 0,
              "%s received the door's video while ringing (oRTP: %s packets)" % (lp.role, counts))

    r = wait_for(lambda: (lambda s: s if s.get("ports_in_use") == 0 and not s.get("calls")
                          else None)(proxy.relay()), 5, "every relay port to be freed")
    check(True, "relay after the call: %s" % json.dumps(r))
    check(proxy.alive(), "portier-proxy still running")


if __name__ == "__main__":
    li.run = run
    sys.exit(li.main())
