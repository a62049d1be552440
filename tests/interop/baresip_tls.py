#!/usr/bin/env python3
"""Interop test (issue 13, SIP over TLS): baresip 1.0 (Debian package baresip,
libre's TLS over OpenSSL) registers to portier-proxy over TLS and is rung
through it. Python 3 stdlib only, and the openssl CLI for a throwaway CA.

portier-proxy has a sips: transport (a fullchain from the test CA's
intermediate); baresip registers as mon1 with `transport=tls` and the proxy as
its TLS outbound proxy, `sip_cafile` = the test root; the proxy binds it as a
TLS flow. portier-door (UDP) rings the home: the INVITE reaches baresip over its
TLS connection (its `-s` trace), it answers 183 with SDP (`answermode=early`)
and gets the door's VP8 through the relay before anyone answers; the door
gives up. baresip 1.0 is not asked to refuse another CA's certificate: its
libre accepts any (linphone_tls.py checks that side with Linphone).

Ports: proxy 127.0.0.1:32460 (UDP+TCP) and 32461 (TLS); the door 32440 (SIP),
32450-32459 (RTP); baresip 32470 (SIP, TCP, and TLS on 32471), 32475
(ctrl_tcp), 32480-32499 (RTP); the relay 32600-32699. No other test uses them.

    baresip_tls.py --proxy build/signaling/portier-proxy \\
        --ctl build/signaling/portierctl --door build/signaling/portier-door

Exit status: 0 pass, 1 fail, 77 skipped (baresip not installed).
"""

import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "sip"))
import linphone_interop as li  # noqa: E402  log, check, wait_for, Proxy
import portier_devices as pd  # noqa: E402
import baresip_peer as bp  # noqa: E402
from portier_py.pki import standard  # noqa: E402  the openssl CLI's throwaway CA

check, log, wait_for = bp.use(32460, "32600-32699",
                               {"mon1": "mon1-Bare-7716", "door": "door-Bare-4902"})
TLS_PORT = 32461
DOOR_SIP, DOOR_RTP = 32440, "32450-32459"
BS_SIP, BS_CTRL, BS_RTP = 32470, 32475, "32480-32499"


def run(args, tmp, procs):
    pki = standard(tmp)
    proxy = pd.md5_proxy(args.proxy, args.ctl, tmp)
    with open(proxy.conf) as f:
        text = f.read()
    text = re.sub(r"(?m)^transports = (.*)$",
                  lambda m: "transports = %s sips:127.0.0.1:%d;tls-certificates-file=%s;"
                  "tls-certificates-private-key=%s" % (m.group(1), TLS_PORT,
                                                       pki.path("proxy-full.pem"),
                                                       pki.path("proxy.key")), text)
    with open(proxy.conf, "w") as f:
        f.write(text)
    procs["proxy"] = proxy
    proxy.start()
    bs = bp.Baresip(tmp, "baresip-mon1", "sip:mon1@%s" % li.DOMAIN, li.USERS["mon1"],
                    li.PROXY_PORT, BS_SIP, BS_CTRL, BS_RTP, answermode="early")
    with open(os.path.join(bs.dir, "config"), "a") as f:
        f.write("sip_cafile %s\n" % pki.path("ca.pem"))
    with open(os.path.join(bs.dir, "accounts"), "w") as f:
        f.write("<sip:mon1@%s;transport=tls>;auth_pass=%s;outbound=\"sip:127.0.0.1:%d;"
                "transport=tls\";answermode=early;regint=600;audio_codecs=PCMU;"
                "video_codecs=VP8\n" % (li.DOMAIN, li.USERS["mon1"], TLS_PORT))
    procs["baresip"] = bs
    bs.start()
    reg = wait_for(lambda: [r for r in proxy.registrations()
                            if r.get("aor") == "sip:mon1@%s" % li.DOMAIN], 10,
                   "baresip's binding")
    check(reg[0].get("received", "").startswith("tls:"),
          "baresip is bound as a TLS flow: %s" % reg[0])
    door = pd.door(args.door, args.ctl, tmp, li.USERS["door"], li.PROXY_PORT, DOOR_SIP, DOOR_RTP,
                   li.GROUP)
    procs["door"] = door
    door.start()

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
    trace = bs.log_text().replace("\x1b[36;1m", "").replace("\x1b[;m", "")
    flow_port = reg[0]["received"].rsplit(":", 1)[1]
    check(re.search(r"TLS 127\.0\.0\.1:%d -> 127\.0\.0\.1:%s\s*\n\s*INVITE " % (TLS_PORT, flow_port),
                    trace),
          "the INVITE reached baresip over the connection it registered on (port %s)" % flow_port)
    check(door.status().get("call") == "early", "nobody has answered yet")
    r = door.ctl("hangup", errors=True)
    check(r and r.get("result") == "hung up", "the door gives up (%s)" % r)
    check(proxy.alive(), "portier-proxy still running")


def main():
    return pd.main(__doc__, run, ("proxy", "ctl", "door"),
                   [li.PROXY_PORT, TLS_PORT, DOOR_SIP, BS_SIP, BS_SIP + 1, BS_CTRL],
                   "portier-baresip-tls-", lambda args: shutil.which("baresip"),
                   "baresip not found (Debian package baresip)")


if __name__ == "__main__":
    sys.exit(main())
