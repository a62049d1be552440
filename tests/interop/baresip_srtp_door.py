#!/usr/bin/env python3
"""Interop test (issue 13): baresip 1.0 with `mediaenc=srtp-mand` as the door,
two Linphone monitors with mandatory SRTP, and portier-proxy's relay terminating
SRTP between them (`encryption = terminate`, `encryption-mandatory = true`;
`available-algorithms = MD5` for baresip 1.0). Python 3 stdlib only.

baresip (libre's own SRTP, a second implementation beside libsrtp2) calls
the home with its test picture and a tone; both Linphones (`media_encryption=srtp`,
`media_encryption_mandatory=1`, early media) ring and must decrypt its video with
the keys of their own offers: no monitor is offered the door's key and the two
get different keys (RFC 3711 §9.1); no packet fails the relay's SRTP check on
a monitor's leg. mon1 answers; baresip's audio reaches it. oRTP's statistics of
each monitor count what it decrypted; no key appears in the proxy's log.

(baresip 1.0 as a *ringing monitor* decodes no SRTP early media: it writes
its 183 before its srtp module reads the offer and drops every packet until it
answers; baresip_srtp_monitor.py covers it as a monitor after its answer.)

Ports: proxy 127.0.0.1:32060; Linphone mon1 32110-32115, mon2 32120-32125;
baresip 32170 (SIP, TCP, and TLS on 32171), 32175 (ctrl_tcp), 32180-32199
(RTP); the relay 32200-32299. No other test uses them.

    baresip_srtp_door.py --proxy build/signaling/portier-proxy \\
        --ctl build/signaling/portierctl [--linphone linphone-daemon] [--keep]

Exit status: 0 pass, 1 fail, 77 skipped (baresip or linphone-daemon missing).
"""

import json
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linphone_interop as li  # noqa: E402  log, check, wait_for, Linphone
import linphone_srtp_relay as lsr  # noqa: E402  oRTP statistics, SRTP failures
import portier_devices as pd  # noqa: E402
import baresip_peer as bp  # noqa: E402

check, log, wait_for = bp.use(32060, "32200-32299", {"mon1": "mon1-Srtp-4410",
                                                     "mon2": "mon2-Srtp-8821",
                                                     "door": "door-Srtp-7302"})
li.PEERS = {"mon1": ("mon1", li.USERS["mon1"], 32110, "udp"),
            "mon2": ("mon2", li.USERS["mon2"], 32120, "udp")}
BS_SIP, BS_CTRL, BS_RTP = 32170, 32175, "32180-32199"
KEY = r"a=crypto:\d+ \S+ inline:([A-Za-z0-9+/=]+)"


def run(args, tmp, procs):
    proxy = pd.md5_proxy(args.proxy, args.ctl, tmp)
    with open(proxy.conf) as f:
        conf = f.read()
    with open(proxy.conf, "w") as f:
        f.write(conf.replace("[module::MediaRelay]\n", "[module::MediaRelay]\nencryption = terminate\n"
                             "encryption-mandatory = true\n"))
    procs["proxy"] = proxy
    proxy.start()

    lps = {}
    for role in ("mon1", "mon2"):
        lp = li.Linphone(role, tmp, args.linphone, "", "incoming_calls_early_media=1\n" + lsr.SRTP)
        rc = open(lp.rc).read().replace("[video]\n", "[video]\nautomatically_accept=1\n")
        with open(lp.rc, "w") as f:
            f.write(rc)
        lps[role] = lp
    li.start_linphones(lps, procs, registered=False)
    for lp in lps.values():
        ok, f, raw = lp.cmd("register sip:%s@%s sip:127.0.0.1:%d;transport=udp %s %s %s"
                            % (lp.user, li.DOMAIN, li.PROXY_PORT, lp.password, lp.user, li.DOMAIN))
        wait_for(lambda: lp.register_state() == "LinphoneRegistrationOk" or None, 10,
                 "%s registration" % lp.role)
    mon1, mon2 = lps["mon1"], lps["mon2"]

    bs = bp.Baresip(tmp, "baresip-door", "sip:door@%s" % li.DOMAIN, li.USERS["door"],
                    li.PROXY_PORT, BS_SIP, BS_CTRL, BS_RTP, mediaenc="srtp-mand")
    procs["baresip"] = bs
    bs.start()
    wait_for(lambda: [r for r in proxy.registrations()
                      if r.get("aor") == "sip:door@%s" % li.DOMAIN], 10, "baresip's binding")
    r = bs.command("dial", li.GROUP)
    check(r.get("ok", True), "baresip dials %s (%s)" % (li.GROUP, r))
    ids = {}
    for lp in (mon1, mon2):
        ids[lp.role] = lp.wait_call_event("LinphoneCallIncomingEarlyMedia", 10)
        check(True, "%s rings with early media" % lp.role)
    time.sleep(3.0)  # the door's video while both ring
    c = (proxy.relay().get("calls") or [{}])[0]
    log("relay while ringing: %s" % json.dumps(c))
    branches = c.get("branches", [])
    check(c.get("srtp") == "terminated" and len(branches) == 2 and
          all(b["srtp_rejected"] == 0 and b["packets"] > 0 for b in branches),
          "the relay terminates SRTP and sends both monitors packets, none failing its check")

    door_keys = []
    for block in bs.log_text().split("\x1b[36;1m#")[1:]:
        if "INVITE sip:" in block and "-> 127.0.0.1:%d" % li.PROXY_PORT in block:
            door_keys += re.findall(KEY, block)
    offered = {}
    for lp in (mon1, mon2):
        for d, t, text in li.sip_messages(lp):
            if d == "in" and text.startswith("INVITE "):
                offered[lp.role] = re.findall(KEY, text)
    log("keys: the door offered %d, mon1 got %d, mon2 %d"
        % (len(door_keys), len(offered.get("mon1", [])), len(offered.get("mon2", []))))
    check(door_keys and offered.get("mon1") and offered.get("mon2"), "every offer carries a=crypto")
    check(not set(door_keys) & (set(offered["mon1"]) | set(offered["mon2"])),
          "no monitor was offered the door's key")
    check(not set(offered["mon1"]) & set(offered["mon2"]), "the monitors got keys of their own")

    ok, f, raw = mon1.cmd("answer %s" % ids["mon1"])
    check(ok, "mon1: `answer` accepted")
    mon1.wait_call_event("LinphoneCallStreamsRunning", 10, ids["mon1"])
    mon2.wait_call_event("LinphoneCallReleased", 10, ids["mon2"])
    time.sleep(2.0)
    ok, f, raw = mon1.cmd("terminate %s" % ids["mon1"])
    check(ok, "mon1: `terminate` accepted")
    mon1.wait_call_event("LinphoneCallReleased", 10, ids["mon1"])

    for lp in (mon1, mon2):
        video = wait_for(lambda: lsr.session_packets(lp.logfile, "VIDEO") or None, 5,
                         "%s's video RTP statistics" % lp.role)
        check(max(video) > 0, "%s decrypted the door's video (oRTP: %s packets)" % (lp.role, video))
    audio = wait_for(lambda: lsr.session_packets(mon1.logfile, "AUDIO") or None, 5,
                     "mon1's audio RTP statistics")
    check(max(audio) > 0, "mon1 decrypted the door's audio (oRTP: %s packets)" % audio)
    for lp in (mon1, mon2):
        bad = lsr.srtp_failures(lp.logfile)
        check(not bad, "%s: no SRTP check failed (%d lines)" % (lp.role, len(bad)))
    text = proxy.log_text()
    keys = door_keys + offered["mon1"] + offered["mon2"]
    check(not [k for k in keys if k in text], "no SRTP key in the proxy's log")
    check(proxy.alive(), "portier-proxy still running")


def main():
    return pd.main(__doc__, run, ("proxy", "ctl"),
                   [li.PROXY_PORT, 32110, 32120, BS_SIP, BS_SIP + 1, BS_CTRL],
                   "portier-baresip-srtp-", lambda args: shutil.which("baresip") and
                   shutil.which(args.linphone),
                   "baresip or linphone-daemon not found", peer_option="linphone")


if __name__ == "__main__":
    sys.exit(main())
