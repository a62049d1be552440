"""SRTP keyed by SDES (RFC 4568) between portier-door and portier-monitor, the
proxy's relay off so that the endpoints' own SRTP is what the wire shows."""

import base64
import os
import re
import socket
import time

from portier_sip.base import (ATTACKER, DOMAIN, DOOR_CODE, LOCAL, TestFailure, USERS, check,
                              log)
from portier_sip.checks import register_devices
from portier_py.loopcap import LoopbackCapture
from portier_sip.registry import case
from portier_sip.rtp import RtpPeer, rtp_packet

MANDATORY = "media-encryption = srtp\nmedia-encryption-mandatory = true\n"


def crypto_keys(sdp):
    """The base64 keys of a body's a=crypto lines (RFC 4568 section 9.1)."""
    return re.findall(r"a=crypto:\d+ \S+ inline:([A-Za-z0-9+/=]+)", sdp)


def sip_bodies(packets, first_line):
    """The SDP bodies of the captured SIP messages whose first line matches."""
    out = []
    for _, _, data in packets:
        text = data.decode("latin-1", "replace")
        if re.match(first_line, text) and "\r\n\r\n" in text:
            out.append(text.split("\r\n\r\n", 1)[1])
    return out


def wait(pred, what, within=15):
    deadline = time.time() + within
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise TestFailure("timed out waiting for " + what)


@case
def case_srtp_door_monitors_direct(env):
    """Issue 13: the door rings two monitors with SRTP mandatory and the relay
    off. The door's one offer is RTP/SAVP with a key per suite; the
    monitors answer with the first suite (AEAD_AES_256_GCM) and keys of their
    own, each different (RFC 3711 section 9.1). The monitor the door sends to
    decodes video while ringing; mon1 answers: audio both ways, and its
    open-door code, RFC 4733 events inside SRTP, opens the door once. On the
    wire no telephone-event or VP8 payload is in the clear and every packet
    carries GCM's 16-byte tag; no key is in any log (mon1 logs its SIP
    messages: TPORT_LOG)."""
    env.relay_enabled = False
    env.start_proxy()
    media_first = 60000 + (env.ports.base - 21000) % 5000
    ports = set(range(env.ports.base, env.ports.base + 100)) | set(
        range(media_first, media_first + 60))
    cap = LoopbackCapture(ports)
    try:
        env.start_door(video_codec="vp8", auto_answer="sip:mon1@%s sip:mon2@%s" % (DOMAIN, DOMAIN),
                       extra=MANDATORY + "[actions]\ndoor = %s log\n[access]\nallow = sip:mon1@%s "
                       "sip:mon2@%s\n" % (DOOR_CODE, DOMAIN, DOMAIN))
        env.start_monitor("mon1", "mon1", 0, 0, extra="[media]\n" + MANDATORY,
                          environ=dict(os.environ, TPORT_LOG="1"))
        env.start_monitor("mon2", "mon2", 1, 1, extra="[media]\n" + MANDATORY)
        check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
        for m in ("mon1", "mon2"):
            env.wait_monitor(m, lambda st: st.get("call") == "early", "%s ringing" % m, 15)
        # Without the relay the door sends its one video stream to the last
        # early answer it took: one of the two decodes while it rings.
        wait(lambda: any(env.mon_ctl(m, "status").get("frames_decoded", 0) > 0
                         for m in ("mon1", "mon2")), "a monitor decoding the door's SRTP video")
        check(env.mon_ctl("mon1", "answer").get("result") == "answered", "mon1 did not answer")
        env.wait_door_event("answered", 10)
        wait(lambda: env.mon_ctl("mon1", "status").get("frames_decoded", 0) > 0,
             "mon1 decoding video after its answer")
        wait(lambda: env.door_ctl("status").get("audio_packets_received", 0) > 0,
             "mon1's audio at the door")
        wait(lambda: env.mon_ctl("mon1", "status").get("audio_packets_received", 0) > 0,
             "the door's audio at mon1")
        door, mon1 = env.door_ctl("status"), env.mon_ctl("mon1", "status")
        log("door: audio_srtp=%s video_srtp=%s srtp_dropped=%s; mon1: audio_srtp=%s "
            "video_srtp=%s" % (door.get("audio_srtp"), door.get("video_srtp"),
                               door.get("srtp_dropped"), mon1.get("audio_srtp"),
                               mon1.get("video_srtp")))
        for who, st in (("door", door), ("mon1", mon1)):
            for s in ("audio_srtp", "video_srtp"):
                check(st.get(s) == "AEAD_AES_256_GCM", "%s %s: %s" % (who, s, st.get(s)))
            for s in ("audio_rtcp_mux", "video_rtcp_mux"):
                check(st.get(s) is True, "%s %s: %s (RFC 5761)" % (who, s, st.get(s)))
        media = [e["details"] for e in env.door_events("media")]
        check(media == ["audio_srtp=AEAD_AES_256_GCM video_srtp=AEAD_AES_256_GCM "
                        "audio_rtcp_mux=yes video_rtcp_mux=yes"],
              "the door's media event does not say the suite: %s" % media)
        answered = [e for e in env.monitor_events("mon1") if e.get("event") == "answered"]
        check(answered and answered[0].get("audio_srtp") == "AEAD_AES_256_GCM"
              and answered[0].get("video_srtp") == "AEAD_AES_256_GCM",
              "mon1's answered event does not say the suite: %s" % answered)
        r = env.mon_ctl("mon1", "action", "open-door")
        check("result" in r, "mon1 action open-door: %s" % r)
        wait(lambda: env.door_ctl("status").get("actions_run") == 1, "the door opening", 10)
        time.sleep(1.0)  # a second opening from repeated events would show by now
        actions = [e["details"] for e in env.door_events("action")]
        check(actions == ["via=rfc4733 from=sip:mon1@%s action=door result=done" % DOMAIN],
              "expected one opening by mon1: %s" % actions)
        check(env.mon_ctl("mon1", "hangup").get("result") == "hung up", "mon1 hangup")
        env.wait_door_event("ended", 5)
    finally:
        cap.stop()
    packets = cap.packets
    log("captured %d datagrams on lo" % len(packets))

    # The keys: the door's offer, and each monitor's answer (18x and 200).
    offers = sip_bodies(packets, r"INVITE sip:")
    check(offers, "no INVITE with SDP captured")
    door_keys = set(k for b in offers for k in crypto_keys(b))
    check(len(door_keys) == 10, "the door's offers carry %d distinct keys, not 5 suites x 2 "
          "streams: %s" % (len(door_keys), sorted(door_keys)[:3]))
    check(all(b.count(" RTP/SAVP ") == 2 for b in offers), "the offer is not RTP/SAVP")
    mon_keys = {}
    te_pts = set()  # the telephone-event payload types the answers name (RFC 4733 §2.4.1)
    for _, dport, data in packets:
        text = data.decode("latin-1", "replace")
        if re.match(r"SIP/2.0 (18\d|200) ", text) and "a=crypto" in text:
            # The door called the group: the answering monitor is in Contact.
            to = re.search(r"\r\nContact: [^\r]*sip:(mon\d)@", text)
            if to:
                body = text.split("\r\n\r\n", 1)[1]
                mon_keys.setdefault(to.group(1), set()).update(crypto_keys(body))
                te_pts.update(int(pt) for pt in
                              re.findall(r"a=rtpmap:(\d+) telephone-event/", body))
    log("answer keys: %s" % {m: len(k) for m, k in mon_keys.items()})
    check(set(mon_keys) == {"mon1", "mon2"}, "answers with keys from %s" % sorted(mon_keys))
    for m, keys in mon_keys.items():
        check(len(keys) == 2, "%s answered with %d keys, not one per stream" % (m, len(keys)))
        check(all(len(base64.b64decode(k)) == 44 for k in keys),
              "%s's keys are not AEAD_AES_256_GCM's 44 bytes" % m)
        check(not keys & door_keys, "%s answered with one of the door's keys" % m)
    check(not mon_keys["mon1"] & mon_keys["mon2"], "mon1 and mon2 answered with the same key")

    # No key in any log: ours, sofia-sip's message dumps (mon1), the proxy's.
    logs = {"door": env.door_log_text(), "mon1": env.monitor_log_text("mon1"),
            "mon2": env.monitor_log_text("mon2"), "proxy": env.proxy_log_text()}
    for name in ("mon1", "mon2"):
        logs[name + " events"] = open(env.monitor_events_file(name)).read()
    check("inline:..." in logs["mon1"], "mon1's TPORT_LOG dump shows no redacted a=crypto")
    for name, text in logs.items():
        leaked = [k for k in door_keys | mon_keys["mon1"] | mon_keys["mon2"] if k in text]
        check(not leaked, "%d SRTP key(s) in the %s log" % (len(leaked), name))

    # The media: the door's ports are media_first..+9, the monitors' after them.
    door_ports = set(range(media_first, media_first + 10))
    to_door = [d for s, p, d in packets if p in door_ports and s not in door_ports and len(d) >= 12
               and d[0] >> 6 == 2]
    from_door = [d for s, p, d in packets if s in door_ports and p not in door_ports and len(d) >= 12
                 and d[0] >> 6 == 2]
    check(te_pts, "the answers name no telephone-event payload type")
    events = [d for d in to_door if d[1] & 0x7f in te_pts]
    log("to the door: %d RTP/RTCP packets, %d telephone-event; from it: %d"
        % (len(to_door), len(events), len(from_door)))
    check(events, "no telephone-event packet reached the door")
    # RFC 4733 section 2.3: 4 bytes of event; SRTP adds GCM's 16-byte tag (RFC 7714 section 5).
    check(all(len(d) == 12 + 4 + 16 for d in events),
          "telephone-event packets of lengths %s: not 12 + 4 + a 16-byte tag"
          % sorted({len(d) for d in events}))
    digits = {int(c) for c in DOOR_CODE}
    clear = [d for d in events if d[12] in digits and d[13] & 0x3f == 10]
    check(len(clear) < len(events) / 4, "%d of %d telephone-event payloads read as the code's "
          "events in the clear" % (len(clear), len(events)))
    # rtcp-mux (RFC 5761): RTCP (64-95 after the marker bit, section 4) uses
    # the ports RTP uses, both ways, and never the door's RTP port + 1.
    def rtcp(d):
        return 64 <= d[1] & 0x7f <= 95
    rtp_in = {p for s, p, d in packets if p in door_ports and len(d) >= 12 and not rtcp(d)}
    rtcp_in = {p for s, p, d in packets if p in door_ports and len(d) >= 8 and d[0] >> 6 == 2
               and rtcp(d)}
    rtp_out = {s for s, p, d in packets if s in door_ports and len(d) >= 12 and not rtcp(d)}
    rtcp_out = {s for s, p, d in packets if s in door_ports and len(d) >= 8 and d[0] >> 6 == 2
                and rtcp(d)}
    log("door ports: RTP in %s, RTCP in %s; RTP out %s, RTCP out %s"
        % (sorted(rtp_in), sorted(rtcp_in), sorted(rtp_out), sorted(rtcp_out)))
    rtp_ports = rtp_in | rtp_out
    check(rtcp_in and rtcp_in <= rtp_ports, "RTCP to the door not on its RTP ports (rtcp-mux)")
    check(rtcp_out and rtcp_out <= rtp_ports, "RTCP from the door not from its RTP ports")
    # rtpvp8pay picture-id-mode=15-bit: in the clear every payload starts X=1, then I=1.
    video = [d for d in from_door if 96 <= d[1] & 0x7f <= 127 and len(d) > 14]
    plain_vp8 = [d for d in video if d[12] & 0x80 and d[13] & 0x80]
    log("video from the door: %d packets, %d with a VP8 descriptor's bits" % (len(video),
                                                                             len(plain_vp8)))
    check(len(video) > 20, "too little video captured: %d" % len(video))
    check(len(plain_vp8) < len(video) * 0.6, "the door's VP8 payloads are in the clear")


@case
def case_srtp_monitor_refuses_plain_offer(env):
    """Issue 13: a monitor with SRTP mandatory answers an offer without a=crypto
    with 488 and a Warning saying why (RFC 3261 section 20.43), and does not
    ring; an offer with keys (RTP/SAVP) from the same host then rings, its 183
    answering the first line it can use. The INVITEs come from 127.0.0.2,
    which the monitor trusts for this case."""
    env.start_proxy()
    env.start_monitor("mon1", "mon1", 0, 0, trusted=ATTACKER, extra="[media]\n" + MANDATORY,
                      account_extra="identity-proof = false")
    port = env.ports.sip(0)

    def invite(sdp):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ATTACKER, 0))
        s.settimeout(0.3)
        try:
            me = s.getsockname()[1]
            call_id = "srtp-%d@%s" % (int(time.time() * 1e6), ATTACKER)
            msg = ("INVITE sip:mon1@%s:%d SIP/2.0\r\n"
                   "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-srtp-%d\r\n"
                   "From: <sip:door@%s>;tag=srtp1\r\nTo: <sip:mon1@%s>\r\n"
                   "Call-ID: %s\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
                   "Contact: <sip:door@%s:%d>\r\nContent-Type: application/sdp\r\n"
                   "Content-Length: %d\r\n\r\n%s"
                   % (LOCAL, port, ATTACKER, me, int(time.time() * 1e6), DOMAIN, DOMAIN,
                      call_id, ATTACKER, me, len(sdp), sdp))
            s.sendto(msg.encode(), (LOCAL, port))
            out = []
            end = time.time() + 3
            while time.time() < end:
                try:
                    out.append(s.recv(65535).decode("latin-1"))
                except socket.timeout:
                    if any(re.match(r"SIP/2.0 [2-6]\d\d", r) for r in out):
                        break
            return out
        finally:
            s.close()

    head = ("v=0\r\no=x 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n")
    plain = head + "m=video 40000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n"
    replies = invite(plain)
    finals = [r for r in replies if re.match(r"SIP/2.0 [2-6]\d\d", r)]
    log("plain offer: %s" % [r.split("\r\n", 1)[0] for r in replies])
    check(finals and finals[0].startswith("SIP/2.0 488"), "no 488 for a plain offer: %s"
          % [r.split("\r\n", 1)[0] for r in replies])
    warning = re.search(r"\r\nWarning: ([^\r]*)", finals[0])
    check(warning and "SRTP is mandatory" in warning.group(1),
          "the 488 has no Warning saying why: %s" % finals[0][:600])
    log("Warning: %s" % warning.group(1))
    check(env.mon_ctl("mon1", "status").get("call") in ("idle", "ended"), "mon1 rang for it")
    # The same with a key (AES_CM_128_HMAC_SHA1_80 behind a suite it does not
    # run, RFC 4568 section 6.1): it rings, its 183 answers tag 2 with its own key.
    key = base64.b64encode(bytes(range(30))).decode()
    secure = (head + "m=video 40000 RTP/SAVP 96\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n"
              "a=crypto:1 F8_128_HMAC_SHA1_80 inline:%s\r\n"
              "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n" % (key, key))
    replies = invite(secure)
    log("offer with keys: %s" % [r.split("\r\n", 1)[0] for r in replies])
    early = [r for r in replies if r.startswith("SIP/2.0 183")]
    check(early, "no 183 for an offer with keys: %s" % [r.split("\r\n", 1)[0] for r in replies])
    answer = early[0].split("\r\n\r\n", 1)[1]
    check("m=video" in answer and "RTP/SAVP" in answer, "the 183's SDP: %s" % answer)
    lines = re.findall(r"a=crypto:(\d+) (\S+) inline:(\S+)", answer)
    check(len(lines) == 1 and lines[0][:2] == ("2", "AES_CM_128_HMAC_SHA1_80")
          and lines[0][2] != key, "the 183's a=crypto: %s" % lines)
    check(lines[0][2] not in env.monitor_log_text("mon1"), "mon1 logged its key")


@case
def case_srtp_door_refuses_plain_answer(env):
    """Issue 13: a door with SRTP mandatory rings a device (sipp) that answers
    183 and 200 with plain RTP/AVP: neither answer is applied, nothing is sent,
    and the door ends the call with a BYE and one log line saying why. The
    relay is off: it would refuse that answer itself (488)."""
    env.relay_enabled = False
    env.start_proxy()
    register_devices(env, [("mon1", 0)])
    mon1 = env.uas("mon1", "uas_door_answer.xml", 0,
                   fields=[[env.ports.media(7), env.ports.media(7) + 2, "VP8"]])
    env.start_door(video_codec="vp8", extra=MANDATORY)
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    ended = wait(lambda: env.door_events("ended"), "the door to end the call", 20)
    log("door: %s" % ended[0]["details"])
    check("the answer has no SRTP" in ended[0]["details"] and "video_packets=0" in
          ended[0]["details"], "the door's call ended with %s" % ended[0]["details"])
    check(not env.door_events("media"), "the door set media up for a plain answer")
    mon1.wait()
    mon1.expect_ok()  # the door's BYE came
    text = env.door_log_text()
    lines = [l for l in text.splitlines()
             if "the answer has no SRTP and media-encryption-mandatory is on" in l]
    check(len(lines) == 1, "expected one log line saying why: %s" % lines)


@case
def case_srtp_optional_plain_device(env):
    """Issue 13: SRTP as best effort (media-encryption = srtp, not mandatory),
    as Linphone offers it: the door's INVITE is RTP/AVP with a=crypto lines
    and a=rtcp-mux; a plain device (sipp) answers RTP/AVP without them, and
    the call runs plain RTP both ways (the door's VP8 arrives in the clear, the
    device's voice reaches the door). The relay is off, so the device's SDP
    reaches the door as written."""
    env.relay_enabled = False
    env.start_proxy()
    register_devices(env, [("mon1", 0)])
    audio = RtpPeer("mon1_audio", env.ports.media(7))
    video = RtpPeer("mon1_video", env.ports.media(7) + 2)
    try:
        mon1 = env.uas("mon1", "uas_door_answer.xml", 0,
                       fields=[[env.ports.media(7), env.ports.media(7) + 2, "VP8"]])
        env.start_door(video_codec="vp8", extra="media-encryption = srtp\n")
        check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
        env.wait_door_event("answered", 15)
        inv = mon1.received(lambda m: m.method == "INVITE")[0]
        check(" RTP/AVP " in inv.body and "RTP/SAVP" not in inv.body and
              len(crypto_keys(inv.body)) == 10 and "a=rtcp-mux" in inv.body,
              "the INVITE is not RTP/AVP with a=crypto and a=rtcp-mux: %s" % inv.body)
        media = [e["details"] for e in env.door_events("media")]
        check(media == ["audio_srtp=none video_srtp=none audio_rtcp_mux=no video_rtcp_mux=no"],
              "the door's media event: %s" % media)
        door_audio = int(re.search(r"m=audio (\d+)", inv.body).group(1))
        for seq in range(1, 51):
            audio.sock.sendto(rtp_packet(seq, seq * 160, 0x50ce, b"\xff" * 160, pt=0),
                              (LOCAL, door_audio))
            time.sleep(0.02)
        wait(lambda: env.door_ctl("status").get("audio_packets_received", 0) > 0,
             "the device's plain voice at the door")
        wait(lambda: len(video.rtp()) > 20, "the door's video at the device")
        vp8 = [d for _, _, d in video.rtp() if d[1] & 0x7f == 96 and len(d) > 14]
        clear = [d for d in vp8 if d[12] & 0x80 and d[13] & 0x80]
        log("video at the device: %d VP8 packets, %d with a VP8 descriptor's bits"
            % (len(vp8), len(clear)))
        check(vp8 and len(clear) == len(vp8), "the door's VP8 is not plain RTP to a plain device")
        check(env.door_ctl("hangup").get("result") == "hung up", "the door did not hang up")
        mon1.wait()
        mon1.expect_ok()
    finally:
        audio.close()
        video.close()
