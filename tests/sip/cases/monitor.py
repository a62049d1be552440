"""portier-monitor through the proxy: ringing with video, calling a door, bad input,
keyframe requests, its GTK window, a forged BYE while ringing."""

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import time

from portier_sip.base import (ATTACKER, DOMAIN, DOOR_CODE, LOCAL, Ports, Proc, TestFailure, check,
                              log)
from portier_sip.checks import final_status, register_devices
from portier_sip.devices import (check_answered_with_audio, check_no_code_in_logs,
                                 door_with_monitor_access, in_dialog_request, media_still_flows, wire_header, wire_messages)
from portier_sip.registry import case
from portier_sip.rtp import RtpPeer
from portier_sip.sipmsg import _req, udp_exchange


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    check(len(head) == 24 and head[:8] == b"\x89PNG\r\n\x1a\n", "%s is not a PNG" % path)
    return struct.unpack("!II", head[16:24])


def check_milestones(env, name, kinds):
    evs = env.monitor_events(name)
    seen = [e.get("event") for e in evs]
    log("%s events: %s" % (name, seen))
    for k in kinds:
        check(k in seen, "%s: no %r event line in its events file: %s" % (name, k, seen))
    for e in evs:
        check(isinstance(e.get("wall_ms"), int) and isinstance(e.get("mono_ms"), int)
              and e.get("wall", "").endswith("Z"),
              "%s: an event line without both clocks: %s" % (name, e))
    return evs


@case
def case_monitor_rings_with_video(env):
    """portier-monitor (issue 5): the door rings the home; two portier-monitors
    (and a sipp device) ring, answer 183 recvonly and decode the door's video
    before anyone answers; mon1 answers (usually from an early dialog the
    proxy did not pass on), mon2 ends with "answered elsewhere" (the proxy's
    CANCEL Reason, RFC 3326); audio flows both ways; mon1's open-door (RFC 4733
    events) runs the door's action once; a snapshot PNG of the right size; the
    hang-up frees every relay port."""
    env.start_proxy()
    # A sipp device answers 183 at once, so the door's one early dialog is
    # usually its own and mon1 answers from a 183 the proxy absorbed: its 200
    # must still get through (an unreliable 183: no PRACK is waited for).
    register_devices(env, [("mon3", 2)])
    mon3 = env.uas("mon3", "uas_relay_cancelled.xml", 2,
                   fields=[[env.ports.media(2), env.ports.media(2) + 2]])
    door_with_monitor_access(env)
    env.start_monitor("mon1", "mon1", 0, 0)
    env.start_monitor("mon2", "mon2", 1, 1)
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    for name in ("mon1", "mon2"):
        st = env.wait_monitor(name, lambda st: st.get("call") == "early" and
                              st.get("frames_decoded", 0) > 0,
                              "early media with decoded video", 15)
        log("%s: early, %d frames, first RTP %s ms, first frame %s ms after the INVITE (%s)"
            % (name, st["frames_decoded"], st["first_rtp_ms"], st["first_frame_ms"],
               st["video_decoder"]))
        check(st.get("peer") == "sip:door@%s" % DOMAIN, "%s: the caller is %r" % (name, st.get("peer")))
        check(st.get("video_codec") == "VP8", "%s: video codec %r" % (name, st.get("video_codec")))
        check(st.get("audio_packets_sent") == 0, "%s sends audio before answering: %s" % (name, st))
    check(not env.door_events("answered"), "somebody answered before the monitors were asked to")
    r = env.mon_ctl("mon1", "answer")
    check(r.get("result") == "answered", "mon1 answer: %s" % r)
    env.wait_door_event("answered", 10)
    mon3.wait()
    mon3.expect_ok()
    check_answered_with_audio(env, "mon1", "mon2")
    # Mic off: the stream goes on (silence), as Linphone's mute does.
    check(env.mon_ctl("mon1", "mic", "off").get("result") == "mic off", "mic off refused")
    sent = env.mon_ctl("mon1", "status").get("audio_packets_sent", 0)
    st1 = env.wait_monitor("mon1", lambda st: st.get("audio_packets_sent", 0) > sent + 10,
                           "audio with the mic off", 5)
    check(st1.get("mic") == "off", "status mic %r" % st1.get("mic"))
    check(env.mon_ctl("mon1", "mic", "on").get("result") == "mic on", "mic on refused")
    r = env.mon_ctl("mon1", "action", "light")
    check("no code for light" in r.get("error", ""), "light without a code: %s" % r)
    r = env.mon_ctl("mon1", "action", "open-door")
    check("result" in r, "mon1 action open-door: %s" % r)
    deadline = time.time() + 10
    while time.time() < deadline and not env.door_events("action"):
        time.sleep(0.1)
    time.sleep(1.5)  # anything more would show up now
    actions = [e["details"] for e in env.door_events("action")]
    log("door actions: %s" % actions)
    check(actions == ["via=rfc4733 from=sip:mon1@%s action=door result=done" % DOMAIN],
          "expected the door's action once, by mon1 over RFC 4733: %s" % actions)
    check(env.door_ctl("status").get("actions_run") == 1, "the door ran its action more than once")
    snap = os.path.join(env.dir, "mon1-snapshot.png")
    r = env.mon_ctl("mon1", "snapshot", snap)
    check(r.get("result") == snap, "snapshot: %s" % r)
    check(png_size(snap) == (320, 240), "the snapshot is %sx%s, not 320x240" % png_size(snap))
    r = env.mon_ctl("mon1", "hangup")
    check(r.get("result") == "hung up", "mon1 hangup: %s" % r)
    st1 = env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "the end of the call")
    check(st1.get("reason") == "hung up", "mon1 ended with %r" % st1.get("reason"))
    ended = env.wait_door_event("ended", 5)
    log("door: %s" % ended[0]["details"])
    env.wait_relay_free()
    # After the call: a snapshot of what it showed still works; mon2 can say so too.
    r = env.mon_ctl("mon2", "snapshot", os.path.join(env.dir, "mon2-snapshot.png"))
    check("result" in r, "mon2's snapshot after its ringing: %s" % r)
    check_milestones(env, "mon1", ["registered", "ringing", "early", "first_rtp", "first_frame",
                                   "answered", "action_sent", "ended"])
    evs = check_milestones(env, "mon2", ["ringing", "early", "first_rtp", "first_frame", "ended"])
    check([e for e in evs if e.get("event") == "ended" and
           e.get("reason") == "answered elsewhere"], "mon2's ended line lacks the reason")
    check_no_code_in_logs(env, "mon1", "mon2")
    for name in ("mon1", "mon2"):
        check(env.monitors[name].running(), "%s is no longer running" % name)
    # Stopped, a monitor and the door take their bindings away (un-REGISTER,
    # RFC 3261 section 10.2.2, answering the proxy's challenge).
    env.monitors["mon2"].stop()
    env.door_proc.stop()
    aors = {r.get("aor") for r in env.ctl("registrations").get("registrations")}
    check("sip:mon2@%s" % DOMAIN not in aors and "sip:door@%s" % DOMAIN not in aors
          and "sip:mon1@%s" % DOMAIN in aors, "bindings after mon2 and the door stopped: %s"
          % sorted(aors))


@case
def case_monitor_calls_door(env):
    """Seed scenario 2 with portier-monitor (issue 5): mon1 calls the door by
    its [doors] name, the door auto-answers, mon1 decodes its H.264 camera;
    open-door as SIP INFO application/dtmf-relay runs the door's action once;
    mon2 sends the code as a SIP MESSAGE with no call; the hang-up frees every
    relay port. Then a ring that mon2 declines (mon1 rings on) and the door
    gives up: mon1 says "missed"."""
    env.start_proxy()
    door_with_monitor_access(env, codec="h264")
    env.start_monitor("mon1", "mon1", 0, 0, extra="[actions]\nmethod = info\n")
    env.start_monitor("mon2", "mon2", 1, 1, extra="[actions]\nmethod = message\n")
    doors = env.mon_ctl("mon1", "doors").get("doors")
    check(doors == [{"name": "front", "aor": "sip:door@%s" % DOMAIN}], "doors: %s" % doors)
    r = env.mon_ctl("mon1", "call", "back")
    check("error" in r, "a call to a door not in [doors]: %s" % r)
    r = env.mon_ctl("mon1", "call", "front")
    check(r.get("result", "").startswith("calling"), "mon1 call front: %s" % r)
    st = env.wait_monitor("mon1", lambda st: st.get("call") == "answered" and
                          st.get("frames_decoded", 0) > 0, "the door's camera", 15)
    log("mon1: %d frames of %s (%s), first frame %s ms after the INVITE"
        % (st["frames_decoded"], st["video_codec"], st["video_decoder"], st["first_frame_ms"]))
    check(st.get("video_codec") == "H264", "video codec %r" % st.get("video_codec"))
    check(st.get("direction") == "outgoing", "direction %r" % st.get("direction"))
    env.wait_door_event("auto_answered", 5)
    r = env.mon_ctl("mon1", "call", "front")
    check("error" in r, "a second call while in a call: %s" % r)
    r = env.mon_ctl("mon1", "action", "open-door")
    check("result" in r, "mon1 action open-door: %s" % r)
    r = env.mon_ctl("mon2", "action", "open-door")
    check("result" in r, "mon2 action open-door: %s" % r)
    deadline = time.time() + 10
    while time.time() < deadline and len(env.door_events("action")) < 2:
        time.sleep(0.1)
    time.sleep(1.0)
    actions = sorted(e["details"] for e in env.door_events("action"))
    log("door actions: %s" % actions)
    check(actions == ["via=info from=sip:mon1@%s action=door result=done" % DOMAIN,
                      "via=message from=sip:mon2@%s action=door result=done" % DOMAIN],
          "expected the door's action once by INFO from mon1 and once by MESSAGE from mon2: %s"
          % actions)
    st = env.wait_monitor("mon1", lambda st: st.get("audio_packets_received", 0) > 10 and
                          st.get("audio_packets_sent", 0) > 10, "two-way audio")
    r = env.mon_ctl("mon1", "hangup")
    check(r.get("result") == "hung up", "mon1 hangup: %s" % r)
    env.wait_door_event("ended", 5)
    env.wait_relay_free()
    check_milestones(env, "mon1", ["calling", "answered", "first_rtp", "first_frame",
                                   "action_sent", "ended"])
    # A ring nobody answers: mon2 declines (486: mon1 keeps ringing), then the
    # door gives up: mon1's call was "missed" (a CANCEL without cause=200).
    check(env.door_ctl("ring").get("result") == "calling", "the second ring did not start")
    for name in ("mon1", "mon2"):
        env.wait_monitor(name, lambda st: st.get("call") == "early", "the second ring", 10)
    r = env.mon_ctl("mon2", "decline")
    check(r.get("result") == "declined", "mon2 decline: %s" % r)
    st = env.wait_monitor("mon2", lambda st: st.get("call") == "ended", "the end of its ringing")
    check(st.get("reason") == "declined", "mon2 ended with %r" % st.get("reason"))
    time.sleep(0.5)
    check(env.mon_ctl("mon1", "status").get("call") == "early", "mon1 stopped ringing on a decline")
    check(env.door_ctl("hangup").get("result") == "hung up", "the door did not give up")
    st = env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "the end of its ringing")
    check(st.get("reason") == "missed", "mon1 ended with %r, not 'missed'" % st.get("reason"))
    env.wait_relay_free()
    check_no_code_in_logs(env, "mon1", "mon2")


@case
def case_monitor_bad_input(env):
    """portier-monitor never falls over on what the network sends (issue 5);
    started before the proxy, it registers once the proxy is up:
    an INVITE with malformed SDP gets 488, an offerless one 488, garbage
    datagrams nothing; an INVITE while it rings gets 486; an INFO with a body
    it does not know gets 415; then it still rings and decodes a good call."""
    # The monitor starts before the proxy: it registers again with backoff.
    # The bad INVITEs come straight from this script, so it trusts 127.0.0.1
    # (any port) as it does its proxy, and takes identities without the
    # proxy's proof (as with another proxy): the SDP checks are what is tested
    # here; mon2 keeps the default, the proxy only and its proof.
    env.start_monitor("mon1", "mon1", 0, 0, wait_registered=False, trusted=LOCAL,
                      account_extra="identity-proof = false")
    time.sleep(1.0)
    env.start_proxy()
    st = env.wait_monitor("mon1", lambda st: st.get("registered"), "registration", 15)
    env.start_monitor("mon2", "mon2", 1, 1)
    port = env.ports.sip(0)
    # 0. A well-formed call straight to mon2's contact, naming the door in
    # P-Asserted-Identity: not through the proxy, so 403 (RFC 3325 section 3).
    good_sdp = ("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                "m=video 40000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n")
    replies = udp_exchange(env.ports.sip(1), _req(
        "INVITE", "sip:mon2@%s:%d" % (LOCAL, env.ports.sip(1)), env,
        extra="Content-Type: application/sdp\r\nP-Asserted-Identity: <sip:door@%s>" % DOMAIN,
        body=good_sdp), poll=0.2)
    codes = sorted({int(m.group(1)) for r in replies
                    for m in [re.match(rb"SIP/2.0 (\d{3})", r)] if m})
    log("INVITE to mon2 not through the proxy: %s" % codes)
    check(403 in codes and not [c for c in codes if 180 <= c < 300],
          "mon2 answered a call that skipped the proxy with %s, not 403" % codes)
    check(env.mon_ctl("mon2", "status").get("call") == "idle", "mon2 rang for it")
    check([e for e in env.monitor_events("mon2") if e.get("event") == "refused"
           and e.get("reason") == "not through the proxy"], "mon2 logged no refusal")
    # 1. Malformed SDP (the m= lines sofia-sip's own parser would choke on), straight to the monitor.
    def invite_codes(name, body, ctype=True):
        replies = udp_exchange(port, _req("INVITE", "sip:mon1@%s:%d" % (LOCAL, port), env,
                                          extra="Content-Type: application/sdp" if ctype else "",
                                          body=body), poll=0.2)
        codes = sorted({int(m.group(1)) for r in replies
                        for m in [re.match(rb"SIP/2.0 (\d{3})", r)] if m})
        log("INVITE with %s: %s" % (name, codes))
        return codes
    for name, sdp in (("a malformed m= line",
                       "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                       "t=0 0\r\nm=video 99999999999999 RTP/AVP 96 96 96\r\n"),
                      ("a body that is not SDP", "this is not SDP at all\r\n"),
                      ("SDP without media", "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"),
                      # issue 11: an address family our IPv4 media cannot serve
                      ("an IPv6 address", "v=0\r\no=x 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\n"
                       "t=0 0\r\nm=video 40000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n")):
        codes = invite_codes(name, sdp)
        check(488 in codes, "an INVITE with %s got %s, not 488" % (name, codes))
    codes = invite_codes("no offer", "", ctype=False)
    check(488 in codes, "an offerless INVITE got %s, not 488" % codes)
    for junk in (b"\x00\xff" * 300, b"INVITE\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n",
                 b"INVITE sip:x SIP/2.0\r\nContent-Length: 99999\r\n\r\nv=0"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as so:
            so.sendto(junk, (LOCAL, port))
    time.sleep(0.5)
    check(env.monitors["mon1"].running(), "portier-monitor died on garbage")
    check(env.mon_ctl("mon1", "status").get("call") == "idle", "the bad INVITEs left a call behind")
    # 2. A good call from sipp through the proxy; a second INVITE while it rings: 486.
    door = env.door("door_call", "door_call_monitor.xml", "mon1", 3, timeout=30)
    st = env.wait_monitor("mon1", lambda st: st.get("call") == "early", "ringing", 10)
    busy = env.door("door_busy", "door_call_busy.xml", "mon1", 4, timeout=15)
    busy.wait()
    busy.expect_ok()
    r = env.mon_ctl("mon1", "answer")
    check(r.get("result") == "answered", "answer: %s" % r)
    door.wait()
    door.expect_ok()
    info = door.received(lambda m: m.status == 415 and m.cseq_method() == "INFO")
    check(info and "application/dtmf-relay" in (info[0].hdr("Accept") or ""),
          "an INFO with an unknown body got no 415 with Accept: %s"
          % [m.first for m in door.messages()[-8:]])
    ok = door.received(lambda m: m.status == 200 and m.cseq_method() == "INFO")
    check(ok, "the INFO dtmf-relay got no 200")
    st = env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "the end of the call")
    check(st.get("reason") == "remote hung up", "ended with %r" % st.get("reason"))
    evs = [e.get("event") for e in env.monitor_events("mon1")]
    check("busy" in evs and evs.count("refused") >= 4, "busy/refused event lines: %s" % evs)
    check(env.monitors["mon1"].running(), "portier-monitor is no longer running")


def rtcp_plis(packets):
    """The RTCP PLIs (RFC 4585 section 6.3.1: PT 206, FMT 1) in compound packets."""
    found = []
    for t, _, data in packets:
        at = 0
        while at + 4 <= len(data):
            fmt, pt = data[at] & 0x1f, data[at + 1]
            length = (struct.unpack("!H", data[at + 2:at + 4])[0] + 1) * 4
            if pt == 206 and fmt == 1:
                found.append(t)
            at += length
    return found


@case
def case_monitor_keyframe_request(env):
    """A late keyframe (issue 5): while mon1 rings, the caller's VP8 reaches it
    through the relay but holds no keyframe, so nothing decodes; ~300 ms after
    the first packet mon1 asks for one by RTCP PLI (through the relay to the
    caller's RTCP port) and by SIP INFO picture_fast_update (RFC 5168) in the
    early dialog."""
    env.start_proxy()
    env.start_monitor("mon1", "mon1", 0, 0)
    rtcp = RtpPeer("caller_video_rtcp", env.ports.media(3) + 3)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        door = env.door("door_call", "door_call_monitor.xml", "mon1", 3, timeout=30)
        env.wait_monitor("mon1", lambda st: st.get("call") == "early", "ringing", 10)
        relay_video = None
        deadline = time.time() + 5
        while time.time() < deadline and relay_video is None:
            for m in door.received(lambda m: m.status == 183 and "m=video" in m.body):
                relay_video = int(re.search(r"m=video (\d+)", m.body).group(1))
            time.sleep(0.1)
        check(relay_video, "the caller got no 183 with SDP")
        # VP8 inter frames only (payload descriptor S=1, then a frame tag with P=1).
        for seq in range(1, 46):
            packet = (bytes([0x80, 0x80 | 96]) + struct.pack("!HII", seq, seq * 6000, 0x7e57) +
                      b"\x10\x01\x00\x00" + b"\x00" * 60)
            sender.sendto(packet, (LOCAL, relay_video))
            time.sleep(1 / 15)
        st = env.wait_monitor("mon1", lambda st: st.get("keyframe_requests", 0) >= 1,
                              "a keyframe request", 5)
        log("mon1: %d video packets, %d frames, %d keyframe requests"
            % (st["video_packets_received"], st["frames_decoded"], st["keyframe_requests"]))
        check(st.get("frames_decoded") == 0, "frames decoded without a keyframe: %s" % st)
        r = env.mon_ctl("mon1", "answer")
        check(r.get("result") == "answered", "answer: %s" % r)
        door.wait()
        door.expect_ok()
    finally:
        sender.close()
        rtcp.close()
    infos = door.received(lambda m: m.method == "INFO")
    check([m for m in infos if "picture_fast_update" in m.body and
           "application/media_control+xml" in (m.hdr("Content-Type") or "")],
          "no INFO picture_fast_update reached the caller: %s" % [m.first for m in infos])
    plis = rtcp_plis(rtcp.packets)
    log("caller: %d RTCP packets, %d PLIs" % (len(rtcp.packets), len(plis)))
    check(plis, "no RTCP PLI reached the caller's RTCP port")
    kinds = [e.get("event") for e in env.monitor_events("mon1")]
    check("keyframe_request" in kinds, "no keyframe_request event line: %s" % kinds)


class Xvfb:
    """An Xvfb of this case: its display number follows from the case's port
    block (100 + block number), so parallel cases never share one; a number
    already taken (its lock file exists) moves on by 50."""
    WIDTH, HEIGHT = 1024, 768

    def __init__(self, env):
        exe = shutil.which("Xvfb")
        if not exe:
            raise TestFailure("Xvfb not found (Debian: xvfb; scripts/install-deps.sh)")
        first = 100 + (env.ports.base - 21000) // Ports.BLOCK % 400
        self.proc = None
        for n in range(first, first + 400, 50):
            if os.path.exists("/tmp/.X%d-lock" % n) or os.path.exists("/tmp/.X11-unix/X%d" % n):
                continue
            self.display, self.socket = ":%d" % n, "/tmp/.X11-unix/X%d" % n
            proc = Proc("xvfb", [exe, self.display, "-screen", "0",
                                 "%dx%dx24" % (self.WIDTH, self.HEIGHT), "-nolisten", "tcp",
                                 "-noreset"], os.path.join(env.dir, "xvfb.log"), env.dir,
                        append=True)
            env.procs.append(proc)
            deadline = time.time() + 10
            while time.time() < deadline and proc.running() and not os.path.exists(self.socket):
                time.sleep(0.1)
            if proc.running() and os.path.exists(self.socket):
                self.proc = proc
                break
            # Another X server took the number at the same moment: the next one.
            proc.stop()
        check(self.proc, "no Xvfb could start from :%d on (xvfb.log)" % first)
        self.environ = dict(os.environ, DISPLAY=self.display)
        self.environ.pop("WAYLAND_DISPLAY", None)
        log("Xvfb on %s (pid %d)" % (self.display, self.proc.pid))

    def grab(self, path, rect=None):
        """A screenshot of the root window (or of rect x, y, w, h in it) by
        GStreamer's ximagesrc: path.png for people, and the RGB pixels (rows
        of w*3 bytes) returned as (w, h, bytes)."""
        x, y, w, h = rect or (0, 0, self.WIDTH, self.HEIGHT)
        raw = path + ".rgb"
        crop = "startx=%d starty=%d endx=%d endy=%d" % (x, y, x + w - 1, y + h - 1)
        r = subprocess.run(
            "gst-launch-1.0 -q ximagesrc display-name=%s use-damage=false show-pointer=false %s "
            "num-buffers=1 ! videoconvert ! video/x-raw,format=RGB ! tee name=t "
            "! queue ! filesink location=%s t. ! queue ! pngenc ! filesink location=%s"
            % (self.display, crop, raw, path), shell=True, capture_output=True, timeout=20)
        check(r.returncode == 0 and os.path.exists(raw), "screenshot failed: %s"
              % r.stderr.decode("utf-8", "replace")[-500:])
        data = open(raw, "rb").read()
        stride = (w * 3 + 3) & ~3  # GStreamer pads RGB rows to 4 bytes
        check(len(data) >= stride * h, "screenshot %s: %d bytes for %dx%d" % (raw, len(data), w, h))
        rows = b"".join(data[i * stride:i * stride + w * 3] for i in range(h))
        return w, h, rows

    def click(self, x, y):
        r = subprocess.run(["xdotool", "mousemove", "--sync", str(x), str(y), "click", "1"],
                           env=self.environ, capture_output=True, timeout=10)
        check(r.returncode == 0, "xdotool click at %d,%d: %s" % (x, y, r.stderr))


def picture_stats(rgb):
    """(distinct colours, luma range) of RGB pixels, every 7th pixel."""
    colours, lo, hi = set(), 255, 0
    for i in range(0, len(rgb) - 2, 21):
        r, g, b = rgb[i], rgb[i + 1], rgb[i + 2]
        colours.add((r, g, b))
        y = (299 * r + 587 * g + 114 * b) // 1000
        lo, hi = min(lo, y), max(hi, y)
    return len(colours), hi - lo


def pixels_changed(a, b):
    """The share of pixels that differ between two same-sized RGB pictures."""
    n = len(a) // 3
    diff = sum(1 for i in range(0, n * 3, 3) if a[i:i + 3] != b[i:i + 3])
    return diff / max(1, n)


def center(rect):
    return rect["x"] + rect["w"] // 2, rect["y"] + rect["h"] // 2


@case
def case_monitor_window(env):
    """portier-monitor's window ([ui] mode = window) under an Xvfb of the case:
    the door rings; the window's title and red state line say "Ringing", only
    Answer and Hang up (and Mic) are enabled; two real screenshots of the video
    area are not uniform and differ (the door's moving test pattern in
    gtksink); a click (xdotool) on Answer answers the door (monitor answered,
    door active, the window says so), a click on Hang up ends the call; then a
    click on the door "front" calls it and its camera shows. A monitor in
    window mode without a display logs why and runs headless."""
    xvfb = Xvfb(env)
    env.start_proxy()
    door_with_monitor_access(env)
    env.start_monitor("mon1", "mon1", 0, 0, extra="[ui]\nmode = window\n", environ=xvfb.environ)
    # No display: one clear line, and the headless monitor works as ever.
    headless = dict(os.environ)
    headless.pop("DISPLAY", None)
    headless.pop("WAYLAND_DISPLAY", None)
    env.start_monitor("mon2", "mon2", 1, 1, extra="[ui]\nmode = window\n", environ=headless)
    fallback = [l for l in env.monitor_log_text("mon2").splitlines() if "mode = window" in l]
    log("mon2: %s" % fallback)
    check(len(fallback) == 1 and "no display" in fallback[0] and "headless" in fallback[0],
          "mon2 (window mode, no display) did not say once that it runs headless: %s" % fallback)
    check("no window" in env.mon_ctl("mon2", "window").get("error", ""),
          "mon2 reports a window without a display")

    def window(pred, what, timeout=10):
        deadline = time.time() + timeout
        w = None
        while time.time() < deadline:
            w = env.mon_ctl("mon1", "window")
            if "error" not in w and pred(w):
                return w
            time.sleep(0.1)
        raise TestFailure("mon1's window: %s not reached within %ds: %s"
                          % (what, timeout, json.dumps(w)))

    w = window(lambda w: w["mapped"] and w["registration_line"].startswith("Registered"),
               "shown and registered")
    check(w["call_line"] == "No call" and not w["controls"]["answer"]["sensitive"] and
          not w["controls"]["hangup"]["sensitive"] and w["doors"][0]["sensitive"],
          "mon1's idle window: %s" % json.dumps(w))

    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_monitor("mon1", lambda st: st.get("call") == "early" and
                     st.get("frames_decoded", 0) > 5, "early media with decoded video", 15)
    env.wait_monitor("mon2", lambda st: st.get("call") == "early", "ringing (headless)", 15)
    w = window(lambda w: w["ringing"] and w["video"]["sink"], "ringing with its video")
    log("mon1 window while ringing: title %r, line %r, video %s"
        % (w["title"], w["call_line"], w["video"]))
    check(w["title"] == "portier - RINGING: sip:door@%s" % DOMAIN, "title %r" % w["title"])
    check(w["call_line"] == "Ringing: sip:door@%s" % DOMAIN, "state line %r" % w["call_line"])
    enabled = sorted(k for k, c in w["controls"].items() if c["sensitive"])
    check(enabled == ["answer", "hangup", "mic"], "enabled while ringing: %s" % enabled)
    check(not w["doors"][0]["sensitive"], "the doors list is usable during a call")

    # Real pixels: the video area shows a picture, and it moves.
    v = w["video"]
    check(v["w"] >= 160 and v["h"] >= 120, "the video area is %dx%d" % (v["w"], v["h"]))
    rect = (v["x"], v["y"], v["w"], v["h"])
    shot1 = xvfb.grab(os.path.join(env.dir, "ringing-video-1.png"), rect)[2]
    colours, luma = picture_stats(shot1)
    check(colours >= 3 and luma >= 100, "the video area is uniform (%d colours, luma range %d)"
          % (colours, luma))
    changed, deadline = 0.0, time.time() + 10
    while changed <= 0.001 and time.time() < deadline:
        time.sleep(0.3)
        shot2 = xvfb.grab(os.path.join(env.dir, "ringing-video-2.png"), rect)[2]
        changed = pixels_changed(shot1, shot2)
    log("video area: %d colours, luma range %d, then %.2f%% of its pixels changed"
        % (colours, luma, 100 * changed))
    check(changed > 0.001, "the video area did not change in 10 s of screenshots")
    xvfb.grab(os.path.join(env.dir, "ringing-screen.png"))

    # Answer by a click.
    check(env.door_ctl("status").get("call") == "early", "the door is not in its early dialog")
    xvfb.click(*center(w["controls"]["answer"]))
    env.wait_monitor("mon1", lambda st: st.get("call") == "answered", "answered (clicked)", 10)
    env.wait_door_event("answered", 10)
    deadline = time.time() + 10
    while time.time() < deadline and env.door_ctl("status").get("call") != "active":
        time.sleep(0.1)
    check(env.door_ctl("status").get("call") == "active", "the door's call is not active: %s"
          % env.door_ctl("status"))
    st2 = env.wait_monitor("mon2", lambda st: st.get("call") == "ended", "the end of its ringing")
    check(st2.get("reason") == "answered elsewhere", "mon2 ended with %r" % st2.get("reason"))
    w = window(lambda w: w["call_line"].startswith("Answered"), "answered")
    enabled = sorted(k for k, c in w["controls"].items() if c["sensitive"])
    check(enabled == ["hangup", "mic", "open-door"], "enabled once answered: %s" % enabled)
    check(not w["ringing"] and "RINGING" not in w["title"], "still ringing: %s" % w["title"])

    # Hang up by a click.
    xvfb.click(*center(w["controls"]["hangup"]))
    st1 = env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "ended (clicked)", 10)
    check(st1.get("reason") == "hung up", "mon1 ended with %r" % st1.get("reason"))
    env.wait_door_event("ended", 10)
    w = window(lambda w: w["call_line"] == "Hung up", "hung up")
    check(not w["controls"]["hangup"]["sensitive"] and w["doors"][0]["sensitive"],
          "after the call: %s" % json.dumps(w["controls"]))
    env.wait_relay_free()
    snap = os.path.join(env.dir, "mon1-snapshot.png")
    check(env.mon_ctl("mon1", "snapshot", snap).get("result") == snap, "no snapshot in window mode")
    check(png_size(snap) == (320, 240), "the snapshot is %sx%s" % png_size(snap))

    # The doors list: a click on "front" calls it; the door answers mon1 and shows its camera.
    check(w["doors"][0]["name"] == "front", "doors list: %s" % w["doors"])
    xvfb.click(*center(w["doors"][0]))
    env.wait_monitor("mon1", lambda st: st.get("call") == "answered" and
                     st.get("direction") == "outgoing" and st.get("frames_decoded", 0) > 5,
                     "the door's camera (called from the doors list)", 15)
    w = window(lambda w: w["call_line"] == "Watching: sip:door@%s" % DOMAIN, "watching the door")
    v = w["video"]
    shot = xvfb.grab(os.path.join(env.dir, "watching-video.png"),
                     (v["x"], v["y"], v["w"], v["h"]))[2]
    colours, luma = picture_stats(shot)
    check(colours >= 3 and luma >= 100, "the door's camera is not shown (%d colours, luma %d)"
          % (colours, luma))
    xvfb.click(*center(w["controls"]["hangup"]))
    env.wait_monitor("mon1", lambda st: st.get("call") == "ended", "the end of watching", 10)
    env.wait_relay_free()
    for name in ("mon1", "mon2"):
        check(env.monitors[name].running(), "%s is no longer running" % name)
    check_no_code_in_logs(env, "mon1", "mon2")


def _answer_with_codec(env, name, codec, opened):
    """The door rings mon1-mon3; `name` answers: both ends agree `codec`
    (status and event lines), audio flows both ways, and `name`'s open-door as
    RFC 4733 events at the codec's clock opens the door once more (`opened`
    times in all)."""
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    for n in ("mon1", "mon2", "mon3"):
        env.wait_monitor(n, lambda st: st.get("call") == "early", "the ring", 15)
    check(env.mon_ctl(name, "answer").get("result") == "answered", "%s did not answer" % name)
    env.wait_door_event("answered", 10)
    st = env.wait_monitor(name, lambda st: st.get("audio_packets_sent", 0) > 25 and
                          st.get("audio_packets_received", 0) > 25, "two-way audio", 10)
    check(st.get("audio_codec") == codec, "%s agreed %r, not %s" % (name, st.get("audio_codec"), codec))
    rate = {"opus/48000": 48000, "G722/8000": 16000, "PCMU/8000": 8000}[codec]
    check(st.get("audio_rate") == rate, "%s's audio runs at %r Hz" % (name, st.get("audio_rate")))
    # The door's packet counter counts voice of the agreed payload type only
    # once the call is answered; the counter goes up while the call lasts.
    before = env.door_ctl("status").get("audio_packets_received", 0)
    deadline = time.time() + 5
    door = env.door_ctl("status")
    while time.time() < deadline and door.get("audio_packets_received", 0) <= before + 10:
        time.sleep(0.1)
        door = env.door_ctl("status")
    check(door.get("audio_packets_received", 0) > before + 10,
          "%s's audio does not reach the door: %s" % (name, door))
    check(door.get("audio_codec") == codec and door.get("audio_rate") == rate,
          "the door agreed %r at %r Hz, not %s" % (door.get("audio_codec"), door.get("audio_rate"),
                                                  codec))
    audio = [e["details"] for e in env.door_events("audio")]
    check(audio and audio[-1] == "codec=%s rate=%d" % (codec, rate),
          "the door's last audio event line is %s" % audio[-1:])
    answered = [e for e in env.monitor_events(name) if e.get("event") == "answered"]
    check(answered and answered[-1].get("audio") == codec,
          "%s's answered line says audio %r" % (name, answered[-1:]))
    check("result" in env.mon_ctl(name, "action", "open-door"), "%s: open-door refused" % name)
    deadline = time.time() + 10
    while time.time() < deadline and len(env.door_events("action")) < opened:
        time.sleep(0.1)
    time.sleep(1.5)  # a second opening would show up now
    actions = [e["details"] for e in env.door_events("action")]
    check(len(actions) == opened and
          actions[-1] == "via=rfc4733 from=sip:%s@%s action=door result=done" % (name, DOMAIN),
          "expected the door opened once more by %s over RFC 4733: %s" % (name, actions))
    check(env.mon_ctl(name, "hangup").get("result") == "hung up", "%s did not hang up" % name)
    env.wait_door_event("ended", 5)
    for n in ("mon1", "mon2", "mon3"):
        env.wait_monitor(n, lambda st: st.get("call") == "ended", "the end of the call")
    env.wait_relay_free()
    log("%s: %s both ways, %d packets in and %d out, door opened by RFC 4733"
        % (name, codec, st["audio_packets_received"], st["audio_packets_sent"]))


@case
def case_monitor_wideband_audio(env):
    """Issue 13 item 5: the door offers opus/48000/2 (useinbandfec=1), G722,
    PCMU, PCMA and telephone-event at 48000 and 8000 (RFC 7587, RFC 3551
    §4.5.2, RFC 4733 §2.1); three monitors ring: mon1 (defaults) answers with
    opus, mon2 (`audio-codecs = PCMU`) with PCMU, mon3 (`G722 PCMA`) with
    G.722. Each time door and monitor agree the codec in status and event
    lines, audio flows both ways, and the monitor's RFC 4733 code (at 48 kHz
    with opus) opens the door exactly once; the door changes codec when the
    answering monitor's differs from the early dialog's. mon1 then calls the
    door: opus again (its offer, the door's answer), and its code opens it. A
    bad codec name is a config error naming file, line and key."""
    env.start_proxy()
    env.start_door(video_codec="vp8", auto_answer="sip:mon1@%s" % DOMAIN,
                   extra="[actions]\ndoor = %s log\n[access]\nallow = sip:mon1@%s sip:mon2@%s "
                   "sip:mon3@%s\n" % (DOOR_CODE, DOMAIN, DOMAIN, DOMAIN))
    env.start_monitor("mon1", "mon1", 0, 0, environ=dict(os.environ, TPORT_LOG="1"))
    env.start_monitor("mon2", "mon2", 1, 1, extra="[media]\naudio-codecs = PCMU\n")
    env.start_monitor("mon3", "mon3", 2, 2, extra="[media]\naudio-codecs = G722 PCMA\n")
    _answer_with_codec(env, "mon1", "opus/48000", 1)
    # The door's offer as mon1 got it through the relay (TPORT_LOG=1).
    msgs = wire_messages(env.monitor_log_text("mon1"))
    invites = [m for d, m in msgs if d == "recv" and m and m[0].startswith("INVITE ")]
    check(invites, "mon1's log shows no INVITE (TPORT_LOG)")
    sdp = [line.strip() for line in invites[0]]
    audio = [line for line in sdp if line.startswith("m=audio ")]
    check(audio and audio[0].split()[3:] == ["96", "9", "0", "8", "102", "101"],
          "the door's audio formats: %s" % audio)
    for want in ("a=rtpmap:96 opus/48000/2", "a=fmtp:96 useinbandfec=1;stereo=0;sprop-stereo=0",
                 "a=rtpmap:9 G722/8000", "a=rtpmap:102 telephone-event/48000",
                 "a=rtpmap:101 telephone-event/8000"):
        check(want in sdp, "the door's offer lacks %r:\n%s" % (want, "\n".join(sdp)))
    _answer_with_codec(env, "mon2", "PCMU/8000", 2)
    _answer_with_codec(env, "mon3", "G722/8000", 3)
    # mon1 calls the door (its offer, the door's answer: opus) and opens it
    # with events at 48 kHz.
    check(env.mon_ctl("mon1", "call", "front").get("result", "").startswith("calling"),
          "mon1 could not call the door")
    st = env.wait_monitor("mon1", lambda st: st.get("call") == "answered" and
                          st.get("audio_packets_received", 0) > 25 and
                          st.get("audio_packets_sent", 0) > 25, "two-way audio with the door", 15)
    check(st.get("audio_codec") == "opus/48000", "mon1's call to the door agreed %r"
          % st.get("audio_codec"))
    check("result" in env.mon_ctl("mon1", "action", "open-door"), "mon1: open-door refused")
    deadline = time.time() + 10
    while time.time() < deadline and len(env.door_events("action")) < 4:
        time.sleep(0.1)
    time.sleep(1.5)
    actions = [e["details"] for e in env.door_events("action")]
    check(len(actions) == 4 and actions[-1].startswith("via=rfc4733 from=sip:mon1@"),
          "mon1's code in its own call opened the door once more: %s" % actions)
    check(env.mon_ctl("mon1", "hangup").get("result") == "hung up", "mon1 did not hang up")
    env.wait_door_event("ended", 5)
    bad = env.write("bad-codec.conf", "[media]\naudio-codecs = opus speex\n")
    r = subprocess.run([env.args.door, "--check-config", "--config", bad],
                       capture_output=True, text=True, timeout=10)
    out = r.stdout + r.stderr
    check(r.returncode != 0 and "bad-codec.conf:2: [media] audio-codecs: 'speex'" in out,
          "portier-door took an unknown codec: %d %s" % (r.returncode, out))
    check_no_code_in_logs(env, "mon1", "mon2", "mon3")


def _sniffed_invite(env, name, timeout=5):
    """The INVITE a ringing monitor (TPORT_LOG=1) received, as the LAN shows
    it: its lines, Call-ID, From (the door's tag), top Via, CSeq number and
    the monitor's To tag from its 180."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        msgs = wire_messages(env.monitor_log_text(name))
        invites = [m for d, m in msgs if d == "recv" and m and m[0].startswith("INVITE ")]
        ringing = [m for d, m in msgs if d == "send" and m and m[0].startswith("SIP/2.0 18")]
        if invites and ringing:
            inv = invites[-1]
            return {"ruri": inv[0].split()[1], "call_id": wire_header(inv, "Call-ID"),
                    "from": wire_header(inv, "From"), "to": wire_header(inv, "To"),
                    "via": wire_header(inv, "Via"), "monitor": wire_header(ringing[-1], "To"),
                    "cseq": int(wire_header(inv, "CSeq").split()[0])}
        time.sleep(0.1)
    raise TestFailure("%s's log shows no INVITE and its 18x (TPORT_LOG)" % name)


@case
def case_monitor_forged_bye_ringing(env):
    """Issue 11: while a monitor rings with the door's early media, a BYE on
    the early dialog sent straight to it from 127.0.0.2 (the Call-ID and tags
    of the 183 as the LAN shows them) stopped its ringing: nua answered it 200
    and ended the call. Now it is a refusal event, unanswered while the call
    lasts; mon1 still rings with video, answers, and the call is up at the
    door; then mon1 hangs up and the held BYE gets its 403."""
    env.start_proxy()
    door_with_monitor_access(env)
    env.start_monitor("mon1", "mon1", 0, 0, environ=dict(os.environ, TPORT_LOG="1"))
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_monitor("mon1", lambda st: st.get("call") == "early", "ringing with early media", 15)
    d = _sniffed_invite(env, "mon1")
    log("sniffed early dialog: %s" % d)
    mon_port = env.ports.sip(0)
    atk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    atk.bind((ATTACKER, 0))
    atk.settimeout(0.3)
    try:
        build = in_dialog_request("BYE", d["ruri"], d["from"], d["monitor"], d["call_id"],
                           d["cseq"] + 1000, "fbye-early")
        atk.sendto(build(atk.getsockname()[1]), (LOCAL, mon_port))
        got = b""
        end = time.time() + 2
        while time.time() < end:
            try:
                got += atk.recv(65535)
            except socket.timeout:
                pass
        log("early BYE from %s -> %s" % (ATTACKER, final_status(got)))
        check(not any(c >= 200 for c in final_status(got)), "the early BYE was answered: %s"
              % final_status(got))
        mon_refused = [e for e in env.monitor_events("mon1") if e.get("event") == "refused"]
        check(any(e.get("method") == "BYE" for e in mon_refused), "mon1 reported no refused BYE")
        st = env.mon_ctl("mon1", "status")
        check(st.get("call") == "early", "the forged early BYE stopped mon1's ringing: %s" % st)
        check(env.door_ctl("status").get("call") == "early", "the door's call is no longer early")
        check(env.mon_ctl("mon1", "answer").get("result") == "answered", "mon1 did not answer")
        env.wait_door_event("answered", 10)
        check(media_still_flows(env, "mon1"), "the media does not flow after the answer")
        check(env.mon_ctl("mon1", "hangup").get("result") == "hung up", "mon1 hangup")
        env.wait_door_event("ended", 5)
        # The call is over: the held BYE gets its 403 (RFC 3261 section 21.4.4).
        end = time.time() + 5
        while time.time() < end and 403 not in final_status(got):
            try:
                got += atk.recv(65535)
            except socket.timeout:
                pass
        check(403 in final_status(got), "the held BYE got no 403 after the call: %s"
              % final_status(got))
    finally:
        atk.close()
