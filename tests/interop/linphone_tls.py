#!/usr/bin/env python3
"""Interop test: SIP over TLS (issue 13, item 1) with real Linphone
(linphone-daemon from Debian's linphone-cli, belle-sip's TLS over mbedTLS).
Python 3 stdlib only, and the openssl CLI for a throwaway CA.

A resident's Linphone registers to portier-proxy over TLS only (no UDP or TCP
port), checking the proxy's certificate against the test CA
(`[sip] root_ca`, `verify_server_certs`, `verify_server_cn`); the proxy binds
it as a TLS flow. It calls portier-door, which registered over UDP and answers
it at once with its camera: a call that crosses from TLS to UDP in the proxy,
with video reaching Linphone through the relay. Then the door rings Linphone,
which gets the INVITE over its TLS connection (no connection back to it is
possible: it listens nowhere but on its own connection) and answers.

A second Linphone that trusts another CA does not register.

Ports: proxy 127.0.0.1:32760 (UDP+TCP) and 32761 (TLS); Linphone 32810-32825;
the door 32840 (SIP) and 32850-32859 (RTP); the relay 32900-32999. No other
test uses them.

    linphone_tls.py --proxy build/signaling/portier-proxy \\
                    --ctl build/signaling/portierctl \\
                    --door build/signaling/portier-door [--keep]

Exit status: 0 pass, 1 fail, 77 skipped (linphone-daemon not installed).
"""

import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "sip"))
import linphone_interop as li  # noqa: E402  the daemon and proxy drivers
from portier_py import configs  # noqa: E402  (linphone_interop put scripts/ on the path)
from linphone_early_media import video_packets_received  # noqa: E402
from portier_py.pki import standard  # noqa: E402  the openssl CLI's throwaway CA

li.PROXY_PORT = 32760
TLS_PORT = 32761
li.RELAY_PORTS = "32900-32999"
li.PEERS = {"mon1": ("mon1", "secret1", 32810, "tls"), "mon2": ("mon2", "secret2", 32820, "tls")}
DOOR_SIP, DOOR_RTP = 32840, "32850-32859"
check, log, wait_for = li.check, li.log, li.wait_for


def account_rc(role):
    user, password = li.PEERS[role][0], li.PEERS[role][1]
    return ("[proxy_0]\nreg_proxy=<sip:127.0.0.1:{p};transport=tls>\n"
            "reg_route=<sip:127.0.0.1:{p};transport=tls;lr>\nreg_identity=sip:{u}@{d}\n"
            "reg_expires=3600\nreg_sendregister=1\n"
            "[auth_info_0]\nusername={u}\nuserid={u}\npasswd={pw}\nrealm={d}\n").format(
                p=TLS_PORT, u=user, d=li.DOMAIN, pw=password)


def tls_linphone(tmp, exe, ca, role="mon1"):
    lp = li.Linphone(role, tmp, exe, account_rc(role), "default_proxy=0\n"
                     "root_ca=%s\nverify_server_certs=1\nverify_server_cn=1\n"
                     "incoming_calls_early_media=0\n" % ca)
    with open(lp.rc) as f:
        text = f.read()
    # TLS only: no UDP or TCP port of its own.
    text = text.replace("sip_tls_port=0\n", "sip_tls_port=%d\n" % lp.sip_port)
    with open(lp.rc, "w") as f:
        f.write(text)
    return lp


def run(args, tmp, procs):
    check(args.door, "--door given")
    pki = standard(tmp)
    proxy = li.Proxy(args.proxy, args.ctl, tmp)
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
    door = li.Daemon(args.door, args.ctl, tmp, "door")
    account = configs.account("sip:door@" + li.DOMAIN, li.USERS["door"],
                              "127.0.0.1:%d" % li.PROXY_PORT, "127.0.0.1:%d" % DOOR_SIP)
    door.write_conf(configs.door_conf(door.sock, account, "sip:mon1@%s" % li.DOMAIN, "127.0.0.1",
                                      DOOR_RTP, os.path.join(tmp, "door-events"),
                                      more={"call": {"auto-answer": "sip:mon1@%s" % li.DOMAIN}}))
    procs["door"] = door
    door.start()
    wait_for(lambda: door.status().get("registered"), 10, "portier-door registered")
    log("portier-proxy (TLS on %d) and portier-door up" % TLS_PORT)

    mon1 = tls_linphone(tmp, args.linphone, pki.path("ca.pem"))
    li.start_linphones({"mon1": mon1}, procs)
    b = [b for b in proxy.registrations() if b.get("aor") == "sip:mon1@%s" % li.DOMAIN]
    check(b and b[0].get("received", "").startswith("tls:"),
          "the proxy bound Linphone as a TLS flow: %s" % b)
    log("Linphone registered over TLS: %s" % b[0].get("contact"))

    # TLS -> UDP: Linphone calls the door, which answers with its camera.
    ok, f, raw = mon1.cmd("call sip:door@%s" % li.DOMAIN)
    check(ok and f.get("Id"), "mon1: `call sip:door@%s` accepted" % li.DOMAIN)
    cid = f["Id"]
    mon1.wait_call_event("LinphoneCallStreamsRunning", 10, cid)
    wait_for(lambda: door.events("auto_answered") or None, 5, "the door's answer")
    time.sleep(3.0)
    ok, f, raw = mon1.cmd("terminate %s" % cid)
    check(ok, "mon1: `terminate` accepted")
    mon1.wait_call_event("LinphoneCallReleased", 10, cid)
    counts = wait_for(lambda: video_packets_received(mon1.logfile) or None, 5,
                      "mon1's video RTP statistics in its log")
    check(max(counts) > 0, "Linphone received the door's video over the relay (%s)" % counts)
    wait_for(lambda: door.events("ended") or None, 5, "the door's call to end")

    # UDP -> TLS: the door rings Linphone over its registered connection.
    r = door.ctl("ring")
    check(r and r.get("result") == "calling", "the door rings: %s" % r)
    cid2 = mon1.wait_call_event("LinphoneCallIncomingReceived", 10)
    ok, f, raw = mon1.cmd("answer %s" % cid2)
    check(ok, "mon1: `answer` accepted")
    wait_for(lambda: door.events("answered") or None, 10, "the door sees the answer")
    msgs = [m for d, t, m in li.sip_messages(mon1) if d == "in" and m.startswith("INVITE ")]
    check(msgs, "Linphone logged the INVITE it received")
    check(re.search(r"(?im)^Via: SIP/2.0/TLS ", msgs[-1]),
          "the proxy's INVITE to Linphone came over TLS:\n%s" % msgs[-1][:600])
    ok, f, raw = mon1.cmd("terminate")
    check(ok, "mon1: `terminate` accepted")
    wait_for(lambda: len(door.events("ended")) >= 2 or None, 10, "the second call to end")
    # Linphone that trusts another CA does not register: the test CA's
    # certificate is what made mon1's registration pass.
    mon2 = tls_linphone(tmp, args.linphone, pki.path("evil-ca.pem"), "mon2")
    li.start_linphones({"mon2": mon2}, procs, registered=False)
    time.sleep(4.0)
    check(mon2.register_state() != "LinphoneRegistrationOk",
          "Linphone trusting another CA did not register")
    check(not [b for b in proxy.registrations() if b.get("aor") == "sip:mon2@%s" % li.DOMAIN],
          "the proxy has no binding for mon2")
    check(proxy.alive(), "portier-proxy still running")


if __name__ == "__main__":
    li.run = run
    sys.exit(li.main())
