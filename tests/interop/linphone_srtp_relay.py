#!/usr/bin/env python3
"""Interop test (issue 13): SRTP through portier-proxy's media relay, with real
Linphone (linphone-daemon from Debian's linphone-cli). Python 3 stdlib only.

Every Linphone here has `media_encryption=srtp` and `media_encryption_mandatory=1`
(SDES, RFC 4568), and the proxy runs with `encryption = terminate` and
`encryption-mandatory = true`. A Linphone door with a camera (mediastreamer2's
static picture) calls the group address; two Linphone monitors ring with early
media. The relay terminates SRTP: each monitor's offer carries keys of the
relay's own (RFC 3711 §9.1), so each must decrypt the door's video with them;
oRTP's statistics of each monitor's video session (logged when it stops) must
show packets received while ringing, and none of Linphone's logs may report a
failed SRTP check. mon1 answers: audio flows both ways (each side's audio
statistics show packets received), and a DTMF typed on mon1 (RFC 4733, inside
SRTP) reaches the door. No key appears in the proxy's log.

Ports: proxy 127.0.0.1:33060; Linphone instances 33110-33135; the proxy's relay
33200-33299. No other test uses 33060 or 33100-33299.

    linphone_srtp_relay.py --proxy build/signaling/portier-proxy \\
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
import linphone_early_media as lem  # noqa: E402  the door with a camera

li.PROXY_PORT = 33060
li.RELAY_PORTS = "33200-33299"
li.PEERS = {
    "mon1": ("mon1", "secret1", 33110, "udp"),
    "mon2": ("mon2", "secret2", 33120, "udp"),
    "door": ("door", "doorpw", 33130, "udp"),
}
check, log, wait_for = li.check, li.log, li.wait_for

SRTP = "media_encryption=srtp\nmedia_encryption_mandatory=1\n"


def session_packets(logfile, kind, what="received"):
    """Packets received (or sent) by each `kind` (AUDIO, VIDEO) session, from the
    oRTP statistics block liblinphone logs when a stream stops."""
    counts = []
    lines = open(logfile, errors="replace").read().splitlines()
    for i, line in enumerate(lines):
        if "%s SESSION'S RTP STATISTICS" % kind in line:
            for l in lines[i:i + 12]:
                m = re.search(r"ortp-message-%s\s+(\d+) packets" % what, l)
                if m:
                    counts.append(int(m.group(1)))
                    break
    return counts


def srtp_failures(logfile):
    """Lines where liblinphone's SRTP layer rejected a packet."""
    return [l for l in open(logfile, errors="replace").read().splitlines()
            if re.search(r"srtp_unprotect.*fail|srtp.*auth_fail|SRTP.*error", l, re.I)]


class Proxy(li.Proxy):
    """The relay terminates SRTP and refuses plain RTP."""

    def __init__(self, exe, ctl, tmp):
        super().__init__(exe, ctl, tmp)
        conf = open(self.conf).read()
        conf = conf.replace("[module::MediaRelay]\n", "[module::MediaRelay]\nencryption = terminate\n"
                            "encryption-mandatory = true\n")
        with open(self.conf, "w") as f:
            f.write(conf)


def run(args, tmp, procs):
    proxy = Proxy(args.proxy, args.ctl, tmp)
    procs["proxy"] = proxy
    proxy.start()
    log("portier-proxy up on 127.0.0.1:%d (SRTP terminated, mandatory)" % li.PROXY_PORT)

    door_rc = li.door_account_rc()
    lps = {}
    for role in ("mon1", "mon2", "door"):
        if role == "door":
            lp = lem.Door(role, tmp, args.linphone, door_rc, "default_proxy=0\n" + SRTP)
            rc = open(lp.rc).read().replace(
                "capture=0\n",
                "capture=1\ndevice=StaticImage: Static picture\nautomatically_initiate=1\n")
        else:
            lp = li.Linphone(role, tmp, args.linphone, "", "incoming_calls_early_media=1\n" + SRTP)
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

    ok, f, raw = door.cmd("call %s --early-media" % li.GROUP)
    check(ok and f.get("Id"), "door: `call %s` accepted" % li.GROUP)
    door_id = f["Id"]
    ids = {}
    for lp in (mon1, mon2):
        ids[lp.role] = lp.wait_call_event("LinphoneCallIncomingEarlyMedia", 10)
        check(True, "%s rings with early media (call %s)" % (lp.role, ids[lp.role]))
    door.wait_call_event("LinphoneCallOutgoingEarlyMedia", 10, door_id)

    def both_connected():
        r = proxy.relay()
        calls = r.get("calls") or []
        if calls and sum(1 for b in calls[0]["branches"] if b["connected"]) == 2:
            return r
        return None
    r = wait_for(both_connected, 10, "the relay to connect both ringing monitors")
    check(r["calls"][0].get("srtp") == "terminated", "the relay terminates SRTP: %s"
          % json.dumps(r))
    time.sleep(3.0)  # a few seconds of the door's video while both ring
    c = (proxy.relay().get("calls") or [{}])[0]
    log("relay while ringing: %s" % json.dumps(c))
    check(c.get("caller_srtp_rejected") == 0 and
          all(b["srtp_rejected"] == 0 and b["packets"] > 0 for b in c.get("branches", [])),
          "every packet of the door and the monitors passed the relay's SRTP check, and both "
          "monitors were sent packets")

    # What each monitor was offered: SRTP with keys that are not the door's.
    offers = {}
    for lp in (door, mon1, mon2):
        for d, t, text in li.sip_messages(lp):
            if text.startswith("INVITE ") and ((d == "out") if lp is door else (d == "in")):
                offers[lp.role] = re.findall(r"a=crypto:\d+ \S+ inline:([A-Za-z0-9+/=]+)", text)
                break
    log("offers' keys: %s" % {k: len(v) for k, v in offers.items()})
    check(all(offers.get(r) for r in ("door", "mon1", "mon2")), "every INVITE carries a=crypto")
    check(not set(offers["door"]) & (set(offers["mon1"]) | set(offers["mon2"])),
          "no monitor was offered the door's key")
    check(not set(offers["mon1"]) & set(offers["mon2"]), "the two monitors got keys of their own")

    ok, f, raw = mon1.cmd("answer %s" % ids["mon1"])
    check(ok, "mon1: `answer` accepted")
    mon1.wait_call_event("LinphoneCallStreamsRunning", 10, ids["mon1"])
    door.wait_call_event("LinphoneCallStreamsRunning", 10, door_id)
    mon2.wait_call_event("LinphoneCallReleased", 10, ids["mon2"])
    time.sleep(2.0)  # audio both ways

    ok, f, raw = mon1.cmd("dtmf 5")
    check(ok, "mon1: `dtmf 5` accepted")

    def door_heard_tone():
        door.pop_events()
        return [e for e in door.events if "tone" in (e.get("Event-type") or "")] or None
    tones = wait_for(door_heard_tone, 10, "the door to receive mon1's DTMF")
    log("door: %s" % tones)
    check(any(e.get("Tone") == "5" for e in tones), "the door received tone 5 inside SRTP")

    ok, f, raw = door.cmd("terminate %s" % door_id)
    check(ok, "door: `terminate` accepted")
    for lp, cid in ((mon1, ids["mon1"]), (door, door_id)):
        lp.wait_call_event("LinphoneCallReleased", 10, cid)

    for lp in (mon1, mon2):
        counts = wait_for(lambda: session_packets(lp.logfile, "VIDEO") or None, 5,
                          "%s's video RTP statistics in its log" % lp.role)
        log("%s: video packets received: %s" % (lp.role, counts))
        check(max(counts) > 0, "%s decrypted the door's video (oRTP: %s packets)"
              % (lp.role, counts))
    # Audio: whatever a side sent reached the other. Without a sound card (as
    # here) liblinphone sends the audio it captures only from a device that
    # has one, so the door may send none; mon1 always sends some.
    for sender, receiver in ((mon1, door), (door, mon1)):
        sent = wait_for(lambda: session_packets(sender.logfile, "AUDIO", "sent") or None, 5,
                        "%s's audio RTP statistics in its log" % sender.role)
        got = session_packets(receiver.logfile, "AUDIO")
        log("audio %s -> %s: sent %s, received %s" % (sender.role, receiver.role, sent, got))
        if sender is mon1:
            check(max(sent) > 0, "mon1 sent audio (oRTP: %s packets)" % sent)
        if max(sent) > 0:
            check(got and max(got) > 0, "%s's audio reached %s (oRTP: %s received)"
                  % (sender.role, receiver.role, got))
    for lp in (door, mon1, mon2):
        bad = srtp_failures(lp.logfile)
        check(not bad, "%s: no SRTP check failed (%d lines, first: %s)"
              % (lp.role, len(bad), bad[:1]))

    r = wait_for(lambda: (lambda s: s if s.get("ports_in_use") == 0 and not s.get("calls")
                          else None)(proxy.relay()), 5, "every relay port to be freed")
    text = proxy.log_text()
    leaked = [k for v in offers.values() for k in v if k in text]
    check(not leaked, "no SRTP key in the proxy's log (%d found)" % len(leaked))
    check(proxy.alive(), "portier-proxy still running")


if __name__ == "__main__":
    li.run = run
    sys.exit(li.main())
