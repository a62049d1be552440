#!/usr/bin/env python3
"""Interop test: opening the door from Linphone (issue 4). Python 3 stdlib only.

portier-door rings the home; a Linphone monitor answers and types the door
code. The door's actuator is a command (the test's script) that writes each
action it runs to a file, so the test sees exactly what a lock would do:
  1. mon1 answers with opus/48000/2 and telephone-event/48000 (issue 13 item 5:
     its 200's SDP, its call-stats, the door's status), audio both ways (the
     door's packet counter, Linphone's 48 kHz jitter buffer), and types the code
     as RFC 4733 telephone-events at 48 kHz: the door opens once;
  2. mon2 (use_info=1) types it as SIP INFO application/dtmf-relay: once more;
  3. mon3 is not in [access] allow: the right code opens nothing;
  4. mon1 types three wrong codes, then the right one: locked out, nothing.
Every call goes through portier-proxy (digest auth, relay, the answerer's
P-Asserted-Identity, which is what the door trusts).

Ports: proxy 127.0.0.1:38060; Linphone 38110-38135; the door 38140 (SIP),
38150-38159 (RTP); the relay 38200-38299. No other test uses them.

    linphone_door_actions.py --proxy build/signaling/portier-proxy \\
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

li.PROXY_PORT = 38060
li.RELAY_PORTS = "38200-38299"
li.USERS = dict(li.USERS, mon3="secret3")
li.PEERS = {
    "mon1": ("mon1", "secret1", 38110, "udp"),
    "mon2": ("mon2", "secret2", 38120, "udp"),
    "mon3": ("mon3", "secret3", 38130, "udp"),
}
ld.DOOR_SIP, ld.DOOR_RTP = 38140, "38150-38159"
check, log, wait_for = li.check, li.log, li.wait_for
CODE = "583920"


def fired(path):
    try:
        with open(path) as f:
            return [l.strip() for l in f if l.strip()]
    except OSError:
        return []


def new_incoming(lp, seen, timeout=10):
    """The id of a call-state IncomingReceived not seen before."""
    def look():
        lp.pop_events()
        for e in lp.events:
            if (e.get("Event-type") == "call-state-changed" and
                    e.get("Event") == "LinphoneCallIncomingReceived" and e.get("Id") not in seen):
                seen.add(e.get("Id"))
                return e.get("Id")
        return None
    return wait_for(look, timeout, "%s: a new incoming call" % lp.role)


def write_tone(path, seconds=20, rate=48000):
    """A 440 Hz mono 16-bit WAV for Linphone's in-call player."""
    import math
    import struct
    import wave
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                               for i in range(rate * seconds)))


def check_opus(door, lp, call_id):
    """Issue 13 item 5: Linphone's answer to the door's offer is opus (RFC 7587
    §7: opus/48000/2) with telephone-event/48000 (RFC 4733 §2.1), the door says
    opus/48000 too, and audio flows both ways (the door's counter and
    Linphone's call-stats). Linphone has no sound card here (without one it
    sends only STUN keep-alives): its in-call player sends a tone file."""
    answers = [m for t, m in li.find_msgs(lp, "out", "SIP/2.0 200") if "m=audio" in m]
    check(answers, "%s sent a 200 with SDP" % lp.role)
    sdp = answers[-1]
    m = re.search(r"^m=audio \d+ \S+ (\d+)", sdp, re.M)
    check(m and re.search(r"^a=rtpmap:%s opus/48000/2" % m.group(1), sdp, re.M | re.I),
          "%s answered opus/48000/2 first: %s" % (lp.role, re.findall(r"^(?:m=audio|a=rtpmap).*$",
                                                                     sdp, re.M)))
    check(re.search(r"^a=rtpmap:\d+ telephone-event/48000", sdp, re.M),
          "%s answered telephone-event/48000" % lp.role)
    last = {}

    def heard():
        last.update(door.ctl("status") or {})
        return last if last.get("audio_packets_received", 0) > 25 else None
    # No sound card here: Linphone's in-call player sends a tone file instead.
    tone = os.path.join(os.path.dirname(lp.logfile), "tone.wav")
    write_tone(tone)
    ok, f, raw = lp.cmd("incall-player-start %s %s" % (tone, call_id))
    log("%s: incall-player-start: %s" % (lp.role, " | ".join(raw.splitlines())))
    st = wait_for(heard, 10, "Linphone's audio at the door", fatal=False)
    check(st, "Linphone's audio reaches the door: %s" % last)
    check(st.get("audio_codec") == "opus/48000" and st.get("audio_rate") == 48000,
          "the door runs opus/48000 at 48 kHz: %s %s" % (st.get("audio_codec"),
                                                           st.get("audio_rate")))
    ok, f, raw = lp.cmd("call-stats %s" % call_id)
    audio = raw.split("Type: Audio", 1)[-1].split("Type: Video", 1)[0]
    check(ok and re.search(r"^Mime: opus$", audio, re.M | re.I) and
          re.search(r"^Clock-rate: 48000$", audio, re.M),
          "%s's call-stats: audio is opus at 48000: %s" % (lp.role, " | ".join(audio.splitlines())))

    # oRTP logs its jitter buffer's packet count per stream clock: the door's
    # opus packets are in Linphone's 48 kHz jitter buffer.
    def door_audio_heard():
        with open(lp.logfile, errors="replace") as f:
            counts = re.findall(r"jitter buffer rls stats: count=(\d+), clockrate=48000", f.read())
        return max(map(int, counts)) if counts and max(map(int, counts)) > 25 else None
    n = wait_for(door_audio_heard, 10, "the door's opus packets in %s's jitter buffer" % lp.role)
    check(n, "%s's 48 kHz jitter buffer counted %d of the door's packets" % (lp.role, n))


def visit(door, lps, seen, answerer, keys, fired_path, expect_fired, opus=False):
    """The door rings; `answerer` answers and types `keys`; the door hangs up."""
    r = door.ctl("ring")
    check(r and r.get("result") == "calling", "the door calls the home (%s)" % r)
    ids = {role: new_incoming(lp, seen[role]) for role, lp in lps.items()}
    lp = lps[answerer]
    ok, f, raw = lp.cmd("answer %s" % ids[answerer])
    check(ok, "%s answers" % answerer)
    lp.wait_call_event("LinphoneCallStreamsRunning", 10, ids[answerer])
    wait_for(lambda: door.events("answered") and
             door.events("answered")[-1]["details"] == "by=sip:%s@%s" % (answerer, li.DOMAIN)
             or None, 5, "the door to know %s answered" % answerer)
    if opus:
        check_opus(door, lp, ids[answerer])
    time.sleep(0.5)
    for k in keys:
        ok, f, raw = lp.cmd("dtmf %s" % k)
        check(ok, "%s: dtmf %s accepted" % (answerer, "*" if k.isdigit() else k))
        time.sleep(0.35)
    time.sleep(1.5)  # the last key's packets, the actuator's command
    got = fired(fired_path)
    check(len(got) == expect_fired,
          "after %s's keys the actuator ran %d time(s), expected %d" % (answerer, len(got),
                                                                      expect_fired))
    door.ctl("hangup")
    lp.wait_call_event("LinphoneCallReleased", 10, ids[answerer])


def run(args, tmp, procs):
    check(args.door, "--door given")
    script = os.path.join(tmp, "open-door.sh")
    fired_path = os.path.join(tmp, "fired")
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho \"$ACTION\" >> %s\n" % fired_path)
    os.chmod(script, stat.S_IRWXU)
    proxy = li.Proxy(args.proxy, args.ctl, tmp)
    procs["proxy"] = proxy
    proxy.start()
    door = ld.Door(args.door, args.ctl, tmp, "")
    with open(door.conf, "a") as f:
        f.write("[actions]\ndoor = {code}\n[access]\nallow = sip:mon1@{d} sip:mon2@{d}\n"
                "max-wrong-codes = 3\nlockout = 60\n[actuator]\ntype = command\n"
                "command = {s}\n".format(code=CODE, d=li.DOMAIN, s=script))
    procs["door"] = door
    door.start()
    lps = {}
    for role in ("mon1", "mon2", "mon3"):
        sip_extra = "default_proxy=0\n" + ("use_info=1\nuse_rfc2833=0\n" if role == "mon2" else "")
        lps[role] = li.Linphone(role, tmp, args.linphone, ld.account_rc(role), sip_extra)
    li.start_linphones(lps, procs)
    seen = {role: set() for role in lps}

    visit(door, lps, seen, "mon1", CODE, fired_path, 1, opus=True)
    check(fired(fired_path) == ["door"], "the actuator ran the action 'door'")
    visit(door, lps, seen, "mon2", CODE, fired_path, 2)
    via = [e["details"] for e in door.events("action")]
    check(any("via=rfc4733 from=sip:mon1@" in d for d in via) and
          any("via=info from=sip:mon2@" in d for d in via),
          "one opening by RFC 4733 from mon1, one by INFO from mon2: %s" % via)
    visit(door, lps, seen, "mon3", CODE, fired_path, 2)
    check(any("from=sip:mon3@%s refused=not_allowed" % li.DOMAIN in e["details"]
              for e in door.events("action")), "mon3 refused as not allowed")
    visit(door, lps, seen, "mon1", "9999#" * 3 + CODE, fired_path, 2)
    refusals = [e["details"] for e in door.events("action") if "mon1" in e["details"]]
    check(sum("refused=wrong_code" in d for d in refusals) == 3 and
          "refused=locked_out" in refusals[-1],
          "three wrong codes, then locked out: %s" % refusals)
    text = open(door.logfile, errors="replace").read()
    check(not re.search(r"(?<![0-9])%s(?![0-9])" % CODE, text),
          "the door code never appears in its log")
    check(proxy.alive(), "portier-proxy still running")


if __name__ == "__main__":
    li.run = run
    sys.exit(li.main())
