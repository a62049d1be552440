"""portier-door through the proxy: early media, RTSP preview, keyframes, door codes, and
requests from another host (forged identity, DTMF injection, forged BYE)."""

import base64
import json
import os
import re
import socket
import struct
import subprocess
import time

from portier_sip.base import (ATTACKER, DOMAIN, DOOR_CODE, LOCAL, Proc, TestFailure, USERS,
                              WRONG_PASSWORD, check, log, port_bound)
from portier_sip.checks import final_status, register_devices
from portier_sip.devices import (check_no_code_in_logs, door_with_monitor_access,
                                 in_dialog_request, media_still_flows, wire_header, wire_messages)
from portier_sip.registry import case
from portier_sip.rtp import RtpPeer, is_rtp, rtp_packet


def start_decoder(env, name, port, codec):
    """A GStreamer receive pipeline of the test: decodes what reaches `port` and
    writes every decoded frame as a PNG (what a monitor would show)."""
    out = os.path.join(env.dir, name)
    os.makedirs(out, exist_ok=True)
    depay = "rtph264depay ! avdec_h264" if codec == "H264" else "rtpvp8depay ! vp8dec"
    argv = ["gst-launch-1.0", "-q", "udpsrc", "address=%s" % LOCAL, "port=%d" % port,
            "caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=%s,payload=96"
            % codec] + ("! %s ! videoconvert ! pngenc ! multifilesink location=%s/frame-%%05d.png"
                        % (depay, out)).split()
    proc = Proc(name, argv, os.path.join(env.dir, name + ".log"), env.dir)
    env.procs.append(proc)
    deadline = time.time() + 5
    while time.time() < deadline and not port_bound(port, "udp"):
        time.sleep(0.05)
    return proc, out


def decoded_frames(folder):
    """(mtime, width, height) of every PNG the decoder wrote, oldest first."""
    frames = []
    for f in sorted(os.listdir(folder)):
        # multifilesink writes frame-N.png.XXXXXX and renames it to frame-N.png:
        # a listing can name a temporary file that is gone when it is opened.
        if not f.endswith(".png"):
            continue
        path = os.path.join(folder, f)
        try:
            with open(path, "rb") as fh:
                head = fh.read(24)
            mtime = os.stat(path).st_mtime
        except FileNotFoundError:
            continue
        if len(head) == 24 and head[:8] == b"\x89PNG\r\n\x1a\n":
            w, h = struct.unpack("!II", head[16:24])
            frames.append((mtime, w, h))
    return frames


@case
def case_door_early_media(env):
    """portier-door (issue 4): the button calls the home; the device answers 183
    recvonly and decodes the door's H.264 video while it rings (early media,
    through the proxy's relay), and hears its audio; a second press while
    ringing starts no second call; after the 200 the call is two-way until the
    door hangs up, and every relay port is freed."""
    door_rings_device(env, "h264")


@case
def case_door_early_media_vp8(env):
    """The same with VP8, the codec DESIGN.md makes the door's default."""
    door_rings_device(env, "vp8")


def door_rings_device(env, CODEC):
    env.start_proxy()
    register_devices(env, [("mon1", 0)])
    audio = RtpPeer("mon1_audio", env.ports.media(7))
    decoder, frames_dir = start_decoder(env, "mon1_video", env.ports.media(7) + 2, CODEC.upper())
    try:
        mon1 = env.uas("mon1", "uas_door_answer.xml", 0,
                       fields=[[env.ports.media(7), env.ports.media(7) + 2, CODEC.upper()]])
        env.start_door(video_codec=CODEC)
        check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
        again = env.door_ctl("ring").get("result", "")
        check(again.startswith("busy"), "a second press while ringing answered %r" % again)
        env.wait_door_event("answered", 15)
        # two-way audio: the resident's voice (PCMU, 20 ms packets) to the door
        inv = mon1.received(lambda m: m.method == "INVITE")[0]
        relay_audio = int(re.search(r"m=audio (\d+)", inv.body).group(1))
        for seq in range(1, 51):
            audio.sock.sendto(rtp_packet(seq, seq * 160, 0x50ce, b"\xff" * 160, pt=0),
                              (LOCAL, relay_audio))
            time.sleep(0.02)
        st = env.door_ctl("status")
        check(st.get("audio_packets_received", 0) > 0,
              "the resident's audio never reached the door (two-way audio): %s" % st)
        check(env.door_ctl("hangup").get("result") == "hung up", "the door did not hang up")
        mon1.wait()
        mon1.expect_ok()
        env.wait_door_event("ended", 5)
    finally:
        audio.close()
        decoder.stop()
    invites = mon1.received(lambda m: m.method == "INVITE")
    check(len(invites) == 1, "the device got %d INVITEs, expected 1" % len(invites))
    check("m=video" in invites[0].body and "%s/90000" % CODEC.upper() in invites[0].body,
          "the door's offer has no %s video:\n%s" % (CODEC, invites[0].body))
    t200 = mon1.sent(lambda m: m.status == 200 and m.cseq_method() == "INVITE")[0].ts()
    frames = decoded_frames(frames_dir)
    early = [f for f in frames if f[0] < t200]
    log("mon1: %d frames decoded, %d before the 200" % (len(frames), len(early)))
    check(early, "no frame of the door's video was decoded while ringing")
    check(all((w, h) == (320, 240) for _, w, h in frames),
          "decoded frames are not 320x240: %s" % sorted({(w, h) for _, w, h in frames}))
    pcmu = [p for p in audio.rtp() if p[2][1] & 0x7f == 0 and p[0] < t200]
    check(pcmu, "the device got none of the door's PCMU audio while ringing")
    sizes = sorted({len(p[2]) - 12 for p in pcmu})
    check(sizes == [160], "the door's PCMU packets are not 20 ms (160 bytes): %s" % sizes)
    answered = env.door_events("answered")
    check(answered and answered[0]["details"] == "by=sip:mon1@%s" % DOMAIN,
          "the door did not learn who answered (P-Asserted-Identity): %s" % answered)
    sent = env.door_events("first_rtp_sent")
    check(sent, "the door reported no first RTP packet")
    log("door: first video packet %s ms after the press" % sent[0]["details"])
    env.wait_relay_free()
    text = env.door_log_text()
    check(USERS["door"] not in text, "the door's password appears in its log")
    # the visitor's picture and the visit in the door's event log
    events_dir = os.path.join(env.dir, "door-events")
    jpgs = [f for f in os.listdir(events_dir) if f.endswith(".jpg")]
    check(len(jpgs) == 1, "one snapshot per ring expected in %s: %s" % (events_dir, jpgs))
    with open(os.path.join(events_dir, jpgs[0]), "rb") as f:
        check(f.read(3) == b"\xff\xd8\xff", "the snapshot %s is not a JPEG" % jpgs[0])
    lines = []
    for name in sorted(f for f in os.listdir(events_dir) if f.endswith(".jsonl")):
        with open(os.path.join(events_dir, name)) as f:
            lines += [json.loads(line) for line in f if line.strip()]
    kinds = [e.get("event") for e in lines]
    log("door event log: %s" % kinds)
    check("ring" in kinds and "answered" in kinds and "ended" in kinds,
          "the event log lacks the ring, the answer or the end: %s" % lines)
    ring = [e for e in lines if e.get("event") == "ring"][0]
    check(ring.get("snapshot") == jpgs[0], "the ring's line does not name its snapshot: %s" % ring)
    answered = [e for e in lines if e.get("event") == "answered"][0]
    check(answered.get("who") == "sip:mon1@%s" % DOMAIN, "who answered: %s" % answered)


# The preview's one user (a distinctive password, so that the logs can be searched
# for it) and the users file that names it, in the proxy's format.
RTSP_USER, RTSP_PASSWORD = "installer", "Rtsp-Pw-6204"


def write_rtsp_users(env):
    return env.write("rtsp-users.conf", "version:1\n%s@%s clrtxt:%s ;\n"
                     % (RTSP_USER, DOMAIN, RTSP_PASSWORD))


def rtsp_viewer(env, name, url, props=(), gst_debug=None):
    """rtspsrc over TCP, decoding H.264 to PNGs in env.dir/name; props are more
    rtspsrc properties (credentials, TLS validation)."""
    penv = None
    if gst_debug:
        penv = dict(os.environ, GST_DEBUG=gst_debug, GST_DEBUG_NO_COLOR="1")
    out = os.path.join(env.dir, name)
    os.makedirs(out)
    proc = Proc(name, ["gst-launch-1.0", "rtspsrc", "location=" + url, "protocols=tcp",
                       "latency=0"] + list(props) +
                ["!", "rtph264depay", "!", "avdec_h264", "!", "videoconvert", "!", "pngenc",
                 "!", "multifilesink", "location=%s/frame-%%05d.png" % out],
                os.path.join(env.dir, name + ".log"), env.dir, env=penv)
    env.procs.append(proc)
    return proc, out


def viewer_log(env, name):
    with open(os.path.join(env.dir, name + ".log"), "rb") as f:
        return f.read().decode("utf-8", "replace")


def wait_first_frame(env, viewer, out, within=15):
    deadline = time.time() + within
    while time.time() < deadline and not decoded_frames(out):
        check(viewer.running(), "the RTSP viewer exited: %s" % viewer_log(env, viewer.name)[-800:])
        time.sleep(0.2)
    check(decoded_frames(out), "rtspsrc decoded no frame of the preview")


def check_refused(env, name, url, props, why, within=10, gst_debug=None):
    """A viewer that must get nothing: it stops with an error, having decoded no
    frame, and its log says `why` (a regex)."""
    viewer, out = rtsp_viewer(env, name, url, props, gst_debug)
    rc = viewer.wait(within)
    viewer.stop()
    text = viewer_log(env, name)
    check(rc is not None and rc != 0, "%s: the viewer did not fail (rc %s): %s"
          % (name, rc, text[-800:]))
    check(not decoded_frames(out), "%s: a refused viewer decoded frames" % name)
    check(re.search(why, text), "%s: expected /%s/ in the viewer's log: %s"
          % (name, why, text[-800:]))
    log("%s refused: %s" % (name, why))


def check_no_rtsp_password(env):
    text = env.door_log_text()
    leaked = [p for p in (RTSP_PASSWORD, WRONG_PASSWORD) if p in text]
    check(not leaked, "password(s) %s appear in the door's log" % leaked)


def rtsp_describe(port, url, authorization=None):
    """The door's answer to one plain DESCRIBE: (status line, header lines)."""
    req = "DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n" % url
    if authorization:
        req += "Authorization: %s\r\n" % authorization
    with socket.create_connection((LOCAL, port), timeout=5) as sock:
        sock.sendall((req + "\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    lines = data.decode("utf-8", "replace").split("\r\n\r\n")[0].split("\r\n")
    return lines[0], lines[1:]


def check_digest_only(port, url):
    """401 offers digest and nothing else; the right password sent as basic
    (which would put it on the wire) gets 401 as well."""
    status, headers = rtsp_describe(port, url)
    challenges = [h for h in headers if h.lower().startswith("www-authenticate:")]
    check(" 401 " in status and challenges and
          all(h.split(":", 1)[1].strip().startswith("Digest ") for h in challenges),
          "DESCRIBE without credentials: expected 401 with digest challenges only: %s %s"
          % (status, headers))
    basic = base64.b64encode(("%s:%s" % (RTSP_USER, RTSP_PASSWORD)).encode()).decode()
    status, _ = rtsp_describe(port, url, "Basic " + basic)
    check(" 401 " in status, "DESCRIBE with basic credentials got %s" % status)
    log("the preview challenges with digest only and refuses basic")


def check_unauthorized_viewers(env, url, props=()):
    """No credentials and a wrong password both get 401 and no picture."""
    props = list(props)
    check_refused(env, "rtsp_anonymous", url, props, r"Unauthorized|401")
    check_refused(env, "rtsp_wrong_password", url,
                  props + ["user-id=" + RTSP_USER, "user-pw=" + WRONG_PASSWORD],
                  r"Unauthorized|401")


@case
def case_door_rtsp_preview(env):
    """The door's RTSP preview (issues 4 and 13): only the users of [rtsp]
    users-file see it, by digest; no credentials or a wrong password get 401 and
    nothing decoded. rtspsrc with the password decodes the live camera; a call
    during the preview gets the same camera and encoder (one consumer more, not a
    second camera), both keep decoding, and the preview goes on after the call.
    No password reaches the door's log."""
    env.start_proxy()
    register_devices(env, [("mon1", 0)])
    rtsp_port = env.ports.media(5)
    decoder, frames_dir = start_decoder(env, "mon1_video", env.ports.media(7) + 2, "H264")
    mon1 = env.uas("mon1", "uas_door_answer.xml", 0,
                   fields=[[env.ports.media(7), env.ports.media(7) + 2, "H264"]])
    env.start_door(video_codec="h264",
                   extra="[rtsp]\nenabled = true\naddress = %s\nport = %d\npath = /door\n"
                   "users-file = %s\n" % (LOCAL, rtsp_port, write_rtsp_users(env)))
    url = "rtsp://%s:%d/door" % (LOCAL, rtsp_port)
    check(re.search(r"rtsp: preview at rtsp://\S+ \(digest authentication, 1 users .*not "
                    r"encrypted", env.door_log_text()),
          "the door's log does not say the preview is authenticated and not encrypted")
    check_digest_only(rtsp_port, url)
    check_unauthorized_viewers(env, url)
    viewer, out = rtsp_viewer(env, "rtsp_viewer", url,
                              ["user-id=" + RTSP_USER, "user-pw=" + RTSP_PASSWORD])
    try:
        wait_first_frame(env, viewer, out)
        st = env.door_ctl("status")
        check(st.get("camera_consumers") == 1, "one viewer expected: %s" % st)
        t_call = time.time()
        check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
        env.wait_door_event("early_media", 10)
        time.sleep(1.0)
        st = env.door_ctl("status")
        check(st.get("camera_consumers") == 2,
              "the call should share the preview's camera and encoder: %s" % st)
        env.wait_door_event("answered", 15)
        env.door_ctl("hangup")
        mon1.wait()
        env.wait_door_event("ended", 5)
        t_end = time.time()
        time.sleep(1.5)
        st = env.door_ctl("status")
        check(st.get("camera_consumers") == 1 and st.get("camera_running"),
              "after the call the preview goes on alone: %s" % st)
    finally:
        viewer.stop()
        decoder.stop()
    rtsp_frames = decoded_frames(out)
    call_frames = decoded_frames(frames_dir)
    log("rtsp viewer: %d frames; mon1: %d frames" % (len(rtsp_frames), len(call_frames)))
    check(call_frames, "the call decoded nothing while the preview ran")
    check([f for f in rtsp_frames if t_call < f[0] < t_end],
          "the preview stopped during the call")
    check([f for f in rtsp_frames if f[0] > t_end], "the preview stopped after the call")
    check_no_rtsp_password(env)


def make_test_ca(env, host):
    """A CA and a server certificate for `host` (an IP address in the subject
    alternative name) signed by it, made by openssl in the test dir; and a second
    key that belongs to nothing. Returns (ca, cert, key, other_key)."""
    d = os.path.join(env.dir, "tls")
    os.makedirs(d)
    f = {n: os.path.join(d, n) for n in ("ca.key", "ca.crt", "door.key", "door.csr", "door.crt",
                                         "other.key", "san.ext")}

    def openssl(*argv):
        r = subprocess.run(["openssl"] + list(argv), capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "openssl %s: %s" % (argv[0], r.stderr[-800:]))

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f["ca.key"], "-out", f["ca.crt"], "-days", "2", "-subj", "/CN=portier test CA")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f["door.key"], "-out", f["door.csr"], "-subj", "/CN=" + host)
    with open(f["san.ext"], "w") as fh:
        fh.write("subjectAltName = IP:%s\nextendedKeyUsage = serverAuth\n" % host)
    openssl("x509", "-req", "-in", f["door.csr"], "-CA", f["ca.crt"], "-CAkey", f["ca.key"],
            "-CAcreateserial", "-days", "2", "-extfile", f["san.ext"], "-out", f["door.crt"])
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", f["other.key"])
    return f["ca.crt"], f["door.crt"], f["door.key"], f["other.key"]


def door_check_config(env, name, rtsp_text):
    """portier-door --check-config on the test's door config with [rtsp] set to
    rtsp_text: (exit code, output)."""
    with open(os.path.join(env.dir, "door.conf")) as f:
        cfg = f.read()
    cfg = cfg[:cfg.index("[rtsp]")] + "[rtsp]\n" + rtsp_text
    path = env.write(name, cfg)
    r = subprocess.run([env.args.door, "--check-config", "--config", path],
                       capture_output=True, text=True, timeout=10)
    return r.returncode, r.stdout + r.stderr


def tls_handshake(port, version):
    """Whether `openssl s_client` completes a handshake at exactly `version`
    (tls1_1, tls1_2, tls1_3); the security level is lowered so that the client
    itself would offer TLS 1.1."""
    r = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (LOCAL, port), "-" + version,
                        "-cipher", "DEFAULT@SECLEVEL=0"],
                       input="", capture_output=True, text=True, timeout=10)
    return r.returncode == 0 and re.search(r"Cipher is (?!\(NONE\))", r.stdout) is not None


@case
def case_door_rtsps_preview(env):
    """The RTSP preview over TLS (issue 13): with [rtsp] tls-certificates-file and
    -private-key (a CA and a certificate for 127.0.0.1 made by openssl here) the
    door serves rtsps:// only. rtspsrc with the password decodes the camera
    (tls-validation-flags without unknown-ca: gst-launch cannot hand rtspsrc a CA
    file, a GTlsDatabase; the name and dates are still checked); the same viewer
    validating against the system's CAs is refused, so is plain rtsp:// on that
    port, and so are no credentials and a wrong password. TLS 1.1 gets no
    handshake, TLS 1.2 does. Start-up is refused with the file named for a key
    that is not the certificate's, a missing certificate, a users file without a
    user or with a bad line, and no users file at all."""
    env.start_proxy()
    rtsp_port = env.ports.media(5)
    ca, cert, key, other_key = make_test_ca(env, LOCAL)
    users = write_rtsp_users(env)
    env.start_door(video_codec="h264",
                   extra="[rtsp]\nenabled = true\naddress = %s\nport = %d\npath = /door\n"
                   "users-file = %s\ntls-certificates-file = %s\n"
                   "tls-certificates-private-key = %s\n" % (LOCAL, rtsp_port, users, cert, key))
    check(re.search(r"rtsp: preview at rtsps://\S+ \(digest authentication, 1 users .*"
                    r"encrypted: TLS 1.2 and 1.3\)", env.door_log_text()),
          "the door's log does not say the preview is authenticated and encrypted")
    url = "rtsps://%s:%d/door" % (LOCAL, rtsp_port)
    trust_test_ca = "tls-validation-flags=bad-identity+not-activated+expired+revoked+insecure" \
        "+generic-error"
    viewer, out = rtsp_viewer(env, "rtsps_viewer", url,
                              [trust_test_ca, "user-id=" + RTSP_USER, "user-pw=" + RTSP_PASSWORD])
    try:
        wait_first_frame(env, viewer, out)
    finally:
        viewer.stop()
    log("rtsps viewer: %d frames" % len(decoded_frames(out)))
    check_unauthorized_viewers(env, url, [trust_test_ca])
    # The same viewer, but validating every flag, unknown-ca too: gst-launch says
    # only "Failed to connect" then, so what tells it apart is the success above.
    check_refused(env, "rtsps_system_cas", url,
                  ["user-id=" + RTSP_USER, "user-pw=" + RTSP_PASSWORD],
                  r"Could not connect|Failed to connect")
    check_refused(env, "rtsp_plain_on_tls", "rtsp://%s:%d/door" % (LOCAL, rtsp_port),
                  ["user-id=" + RTSP_USER, "user-pw=" + RTSP_PASSWORD],
                  r"Could not receive message|Could not read")
    check(tls_handshake(rtsp_port, "tls1_2"), "no TLS 1.2 handshake with the preview")
    check(not tls_handshake(rtsp_port, "tls1_1"), "the preview completed a TLS 1.1 handshake")
    check_no_rtsp_password(env)

    base = "enabled = true\naddress = %s\nport = %d\n" % (LOCAL, rtsp_port)
    empty = env.write("rtsp-none.conf", "version:1\n# nobody\n")
    bad = env.write("rtsp-bad.conf", "version:1\n%s@%s clrtxt:%s\n" % (RTSP_USER, DOMAIN,
                                                                    RTSP_PASSWORD))
    hashed = env.write("rtsp-md5.conf", "version:1\n%s@%s md5:%s ;\n" % (RTSP_USER, DOMAIN,
                                                                       "0" * 32))
    refused = [
        ("no users file", "", r"\[rtsp\] enabled: the preview needs \[rtsp\] users-file"),
        ("unreadable users file", "users-file = %s/none.conf\n" % env.dir,
         re.escape("%s/none.conf: cannot open the users file" % env.dir)),
        ("no user", "users-file = %s\n" % empty, re.escape(empty) + ": no user in it"),
        ("bad line", "users-file = %s\n" % bad, re.escape(bad) + r":2: missing ';'"),
        ("no clear-text password", "users-file = %s\n" % hashed,
         re.escape(hashed) + r":2: %s has no clrtxt: secret" % RTSP_USER),
        ("mismatched key", "users-file = %s\ntls-certificates-file = %s\n"
         "tls-certificates-private-key = %s\n" % (users, cert, other_key),
         re.escape(other_key) + ": this private key does not belong to the certificate in " +
         re.escape(cert)),
        ("missing certificate", "users-file = %s\ntls-certificates-file = %s/none.crt\n"
         "tls-certificates-private-key = %s\n" % (users, env.dir, key),
         re.escape("%s/none.crt: cannot open the TLS certificate" % env.dir)),
        ("key alone", "users-file = %s\ntls-certificates-private-key = %s\n" % (users, key),
         r"tls-certificates-private-key: needs its partner"),
    ]
    for i, (what, text, why) in enumerate(refused):
        rc, output = door_check_config(env, "door-refused-%d.conf" % i, base + text)
        check(rc != 0 and re.search(why, output),
              "%s: start-up not refused as /%s/ (rc %d): %s" % (what, why, rc, output[-600:]))
        check(RTSP_PASSWORD not in output, "%s: the password is in the error" % what)
        log("refused at start-up, %s: %s" % (what, output.strip().splitlines()[-1]))


def h264_keyframes(packets):
    """Arrival times of the IDR pictures in H.264 RTP (RFC 6184 §5.4: NAL type
    5, alone, in a STAP-A, or starting an FU-A)."""
    times = []
    for t, _, data in packets:
        if len(data) < 14 or not is_rtp(data):
            continue
        cc = data[0] & 0x0f
        nal = data[12 + 4 * cc:]
        if not nal:
            continue
        kind = nal[0] & 0x1f
        idr = kind == 5
        if kind == 28 and len(nal) > 1:          # FU-A: start bit and the real type
            idr = (nal[1] & 0x80) and (nal[1] & 0x1f) == 5
        elif kind == 24:                         # STAP-A: any IDR inside
            at = 1
            while at + 2 < len(nal):
                size = struct.unpack("!H", nal[at:at + 2])[0]
                if at + 2 < len(nal) and nal[at + 2] & 0x1f == 5:
                    idr = True
                at += 2 + size
        if idr and (not times or t - times[-1] > 0.05):
            times.append(t)
    return times


@case
def case_door_keyframe_requests(env):
    """Keyframes on request (issue 4): the door's keyframe interval is 60 s, so
    every keyframe after the first is one asked for: an RTCP PLI from the
    ringing device (RFC 4585 §6.3.1, through the relay and its de-duplication)
    and a SIP INFO picture_fast_update (RFC 5168) after the answer each make
    the encoder send one at once."""
    env.start_proxy()
    register_devices(env, [("mon1", 0)])
    video = RtpPeer("mon1_video", env.ports.media(7) + 2)
    try:
        mon1 = env.uas("mon1", "uas_door_keyframe.xml", 0,
                       fields=[[env.ports.media(7), env.ports.media(7) + 2]])
        env.start_door(video_codec="h264", extra="keyframe-interval = 60\n")
        check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
        env.wait_door_event("early_media", 10)
        inv = mon1.received(lambda m: m.method == "INVITE")[0]
        relay_video = int(re.search(r"m=video (\d+)", inv.body).group(1))
        time.sleep(1.0)
        t_pli = time.time()
        # RTCP PLI (RFC 4585 §6.3.1) from the device's RTCP port to the relay's
        pli = struct.pack("!BBHII", 0x81, 206, 2, 0x0a11ce01, 0)
        video.sock.sendto(pli, (LOCAL, relay_video + 1))
        env.wait_door_event("answered", 10)
        env.wait_door_event("keyframe_request", 10)
        time.sleep(1.0)
        env.door_ctl("hangup")
        mon1.wait()
        mon1.expect_ok()
        t_info = mon1.sent(lambda m: m.method == "INFO")[0].ts()
        env.wait_door_event("ended", 5)
    finally:
        video.close()
    keys = h264_keyframes(video.packets)
    log("keyframes at %s s after the PLI" % ["%.2f" % (k - t_pli) for k in keys])
    check(keys and keys[0] < t_pli, "no keyframe when the device joined")
    check([k for k in keys if t_pli < k < t_info], "no keyframe after the device's RTCP PLI")
    check([k for k in keys if k > t_info], "no keyframe after the INFO picture_fast_update")
    check(env.door_events("keyframe_request"), "the door did not log the INFO's request")


@case
def case_door_message_code(env):
    """The door code as a SIP MESSAGE (issue 4, RFC 3428): from an allowed
    resident it runs the action once; the same code from a user the door does
    not allow opens nothing. The door trusts the identity the proxy asserted
    after digest authentication (RFC 3325), not what a client writes, and
    takes requests only through the proxy."""
    env.start_proxy()
    code = "583920"
    env.start_door(extra="[actions]\ndoor = %s log\n[access]\nallow = sip:mon1@%s\n"
                   % (code, DOMAIN))
    for user, slot in (("mon1", 0), ("alice", 1)):
        env.send_code_message("msg_" + user, slot, [[user, USERS[user], DOMAIN, code]])
    actions = env.door_actions(2)
    log("door actions: %s" % actions)
    check(actions == ["via=message from=sip:mon1@%s action=door result=done" % DOMAIN,
                      "via=message from=sip:alice@%s refused=not_allowed" % DOMAIN],
          "expected one opening by mon1 and alice refused: %s" % actions)
    check(env.door_ctl("status").get("actions_run") == 1, "the door ran its action once")

    # The same code and mon1's name, straight to the door's contact without
    # the proxy: 403 to the MESSAGE and to the INVITE (RFC 3325 section 3).
    s = env.sipp("forged", "forged_identity.xml", 2, [["mon1", DOMAIN, code]],
                 to="%s:%d" % (LOCAL, env.ports.sip(8)))
    s.wait()
    s.expect_ok()
    refused = [e["details"] for e in env.door_events("request_refused")]
    log("door refused: %s" % refused)
    check(len(refused) == 2 and all("reason=not through the proxy" in r for r in refused),
          "the door refused the MESSAGE and the INVITE that skipped the proxy: %s" % refused)
    check(env.door_ctl("status").get("actions_run") == 1,
          "a forged P-Asserted-Identity opened the door")
    check(env.door_ctl("status").get("call") == "idle", "the door is idle")
    check(code not in env.door_log_text().replace("sip:", ""), "the code is in the door's log")


@case
def case_door_max_duration(env):
    """A call ends by itself after [call] max-duration (issue 4): the door sends
    BYE (RFC 3261 section 15) and says why; its camera stops."""
    env.start_proxy()
    register_devices(env, [("mon1", 0)])
    mon1 = env.uas("mon1", "uas_door_answer.xml", 0,
                   fields=[[env.ports.media(7), env.ports.media(7) + 2, "VP8"]], timeout=40)
    env.start_door(extra="[call]\nmax-duration = 10\n")
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_door_event("answered", 15)
    ended = env.wait_door_event("ended", 25)
    mon1.wait()
    mon1.expect_ok()
    check("max-duration reached" in ended[0]["details"], "why the call ended: %s" % ended)
    bye = mon1.received(lambda m: m.method == "BYE")
    check(bye, "the device got no BYE from the door")
    st = env.door_ctl("status")
    check(st.get("call") == "idle" and not st.get("camera_running"), "after the call: %s" % st)


def _raw_sip(method, ruri, local_port, transport, extra=(), body="", ctype="text/plain",
             call_id=None):
    """One out-of-dialog request as an attacker writes it: Via with our own
    address, the headers in `extra` (forged identities...)."""
    call_id = call_id or "atk-%d@%s" % (int(time.time() * 1e6), ATTACKER)
    lines = ["%s %s SIP/2.0" % (method, ruri),
             "Via: SIP/2.0/%s %s:%d;branch=z9hG4bK-atk-%d;rport"
             % (transport, ATTACKER, local_port, int(time.time() * 1e6)),
             "From: <sip:mon1@%s>;tag=atk%d" % (DOMAIN, local_port),
             "To: <%s>" % ruri, "Call-ID: %s" % call_id, "CSeq: 1 %s" % method,
             "Max-Forwards: 70", "Contact: <sip:mon1@%s:%d>" % (ATTACKER, local_port)]
    lines += list(extra)
    if body:
        lines.append("Content-Type: %s" % ctype)
    lines.append("Content-Length: %d" % len(body.encode()))
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def _attack(host_ip, port, transport, build, wait=3.0):
    """Sends the request build(local_port) to host_ip:port from `host_ip`'s
    neighbour address over UDP or TCP; returns the status codes received
    until a final one (or the bounded wait ends)."""
    kind = socket.SOCK_DGRAM if transport == "UDP" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    s.bind((ATTACKER if host_ip != LOCAL or transport == "UDP" else host_ip, 0))
    s.settimeout(0.5)
    got = b""
    try:
        if transport == "TCP":
            s.connect((LOCAL, port))
            s.sendall(build(s.getsockname()[1]))
        else:
            s.sendto(build(s.getsockname()[1]), (LOCAL, port))
        end = time.time() + wait
        while time.time() < end and not any(c >= 200 for c in final_status(got)):
            try:
                chunk = s.recv(65535)
            except socket.timeout:
                continue
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    return final_status(got)


def _rfc4733_packets(code, pt=101, ssrc=0x0BADF00D):
    """The RTP packets of `code` typed as RFC 4733 events: per key a start
    packet (marker, RFC 4733 section 2.5.1.1) and three end packets (E bit,
    section 2.5.1.4), all with the key's own timestamp."""
    out = []
    seq, ts = 1000, 160000
    for key in code:
        event = int(key)
        for i, (end, dur) in enumerate(((0, 160), (1, 800), (1, 800), (1, 800))):
            header = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | pt, seq, ts, ssrc)
            out.append(header + struct.pack("!BBH", event, (0x80 if end else 0) | 10, dur))
            seq += 1
        ts += 1600
    return out


@case
def case_door_forged_identity(env):
    """Issue 11: the door opened for a forged P-Asserted-Identity (RFC 3325)
    that came over TCP from any port of the proxy's host, or over UDP with the
    proxy's address spoofed. Now it takes an identity only with the proxy's
    P-Portier-Proof (an HMAC keyed by the door's own digest HA1), and TCP only
    from the proxy's listening address. The door listens on UDP and TCP (the
    shipped bind) and trusts 127.0.0.2 as well ([account] trusted-hosts), which
    stands for a packet whose source address looks like the proxy's: only the
    proof keeps the door shut. From 127.0.0.2: MESSAGEs with mon1's identity and
    the code over UDP (no proof, a made-up proof) and TCP, an INVITE over TCP
    that mon1 would be auto-answered for; from 127.0.0.1 (another local
    process): a MESSAGE over TCP. Each gets 403 and a request_refused event;
    nothing opens, no call starts; then mon1's real MESSAGE through the proxy
    opens the door once."""
    env.start_proxy()
    code = DOOR_CODE
    env.start_door(video_codec="vp8", auto_answer="sip:mon1@%s" % DOMAIN, bind_params="",
                   account_extra="trusted-hosts = %s" % ATTACKER,
                   extra="[actions]\ndoor = %s log\n[access]\nallow = sip:mon1@%s\n"
                   % (code, DOMAIN))
    door_port = env.ports.sip(8)
    ruri = "sip:door@%s:%d" % (LOCAL, door_port)
    pai = "P-Asserted-Identity: <sip:mon1@%s>" % DOMAIN
    fake = ("P-Portier-Proof: v=1;alg=sha256;ts=%d;mac=%s" % (int(time.time()), "ab" * 32))
    sdp = ("v=0\r\no=atk 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
           "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
           % (ATTACKER, ATTACKER))
    attacks = [
        ("UDP MESSAGE, no proof", ATTACKER, "UDP",
         lambda p: _raw_sip("MESSAGE", ruri, p, "UDP", [pai], code)),
        ("UDP MESSAGE, made-up proof", ATTACKER, "UDP",
         lambda p: _raw_sip("MESSAGE", ruri, p, "UDP", [pai, fake], code)),
        ("TCP MESSAGE", ATTACKER, "TCP",
         lambda p: _raw_sip("MESSAGE", ruri, p, "TCP", [pai], code)),
        ("TCP INVITE", ATTACKER, "TCP",
         lambda p: _raw_sip("INVITE", ruri, p, "TCP", [pai, fake], sdp, "application/sdp")),
        ("TCP MESSAGE from the proxy's host", LOCAL, "TCP",
         lambda p: _raw_sip("MESSAGE", ruri, p, "TCP", [pai], code)),
    ]
    for name, host, transport, build in attacks:
        codes = _attack(host, door_port, transport, build)
        log("%s -> %s" % (name, codes))
        check(403 in codes, "%s: expected 403, got %s" % (name, codes))
    refused = [e["details"] for e in env.door_events("request_refused")]
    log("door refused: %s" % refused)
    check(len(refused) == len(attacks), "expected %d request_refused events: %s"
          % (len(attacks), refused))
    st = env.door_ctl("status")
    check(st.get("actions_run") == 0, "a forged identity opened the door: %s" % st)
    check(st.get("call") == "idle" and not env.door_events("auto_answered"),
          "a forged INVITE was answered: %s" % st)
    # The resident, through the proxy: the proof is there, the door opens.
    env.send_code_message("msg_mon1", 0, [["mon1", USERS["mon1"], DOMAIN, code]])
    deadline = time.time() + 5
    while time.time() < deadline and env.door_ctl("status").get("actions_run") != 1:
        time.sleep(0.1)
    check(env.door_ctl("status").get("actions_run") == 1, "mon1's MESSAGE did not open the door")
    check(code not in env.door_log_text().replace("sip:", ""), "the code is in the door's log")


@case
def case_door_dtmf_injection(env):
    """Issue 11: during a resident's call, RFC 4733 events sent straight to the
    door's RTP port from a port in no SDP were credited to the resident and
    opened the door. Now the door hears RTP and RTCP only from the address the
    SDP named (the relay), latched on its first packet. mon1 answers the
    door's ring; from 127.0.0.2 the code goes as RFC 4733 events to every port
    of the door's media range: nothing opens and the door counts the packets
    it dropped; then mon1's own open-door through the relay opens it once."""
    env.start_proxy()
    door_with_monitor_access(env)
    env.start_monitor("mon1", "mon1", 0, 0)
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_monitor("mon1", lambda st: st.get("call") == "early", "ringing with early media", 15)
    check(env.mon_ctl("mon1", "answer").get("result") == "answered", "mon1 did not answer")
    env.wait_door_event("answered", 10)
    deadline = time.time() + 5
    while time.time() < deadline and env.door_ctl("status").get("audio_packets_received", 0) == 0:
        time.sleep(0.1)
    check(env.door_ctl("status").get("audio_packets_received", 0) > 0,
          "mon1's audio never reached the door")
    media_first = 60000 + (env.ports.base - 21000) % 5000  # start_door's range
    atk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    atk.bind((ATTACKER, 0))
    try:
        for port in range(media_first, media_first + 10):
            for pkt in _rfc4733_packets(DOOR_CODE):
                atk.sendto(pkt, (LOCAL, port))
                time.sleep(0.002)
    finally:
        atk.close()
    deadline = time.time() + 5
    while time.time() < deadline and env.door_ctl("status").get("foreign_media_dropped", 0) == 0:
        time.sleep(0.1)
    time.sleep(1.5)  # a credited code would have run by now
    st = env.door_ctl("status")
    log("door after the injection: actions_run=%s foreign_media_dropped=%s"
        % (st.get("actions_run"), st.get("foreign_media_dropped")))
    check(st.get("actions_run") == 0, "events from 127.0.0.2 opened the door: %s"
          % [e["details"] for e in env.door_events("action")])
    check(st.get("foreign_media_dropped", 0) > 0, "the door dropped none of the injected packets")
    check(st.get("call") == "active", "the call did not survive the injection: %s" % st)
    r = env.mon_ctl("mon1", "action", "open-door")
    check("result" in r, "mon1 action open-door: %s" % r)
    deadline = time.time() + 10
    while time.time() < deadline and env.door_ctl("status").get("actions_run") != 1:
        time.sleep(0.1)
    actions = [e["details"] for e in env.door_events("action")]
    check(actions == ["via=rfc4733 from=sip:mon1@%s action=door result=done" % DOMAIN],
          "expected one opening by mon1 through the relay: %s" % actions)
    check(env.mon_ctl("mon1", "hangup").get("result") == "hung up", "mon1 hangup")
    env.wait_door_event("ended", 5)


@case
def case_door_code_alarm(env):
    """Issue 11: wrong codes from all identities past global-max-wrong-codes
    raise the alarm: an event line at the door and a SIP MESSAGE to its call
    target, which each portier-monitor shows as an `alarm` event and status
    field. The identity that guessed is locked out; a resident who typed
    nothing wrong still opens. A forged alarm from 127.0.0.2 straight to a
    monitor gets 403."""
    env.start_proxy()
    door_with_monitor_access(env, extra="global-max-wrong-codes = 3\nmax-wrong-codes = 5\n")
    env.start_monitor("mon1", "mon1", 0, 0)
    env.start_monitor("mon2", "mon2", 1, 1)
    wrong = "111111" if DOOR_CODE != "111111" else "222222"
    env.send_code_message("guess", 2, [["mon1", USERS["mon1"], DOMAIN, wrong]] * 3)
    alarm = env.wait_door_event("alarm", 10)
    log("door alarm: %s" % alarm[0]["details"])
    check("wrong_codes=3" in alarm[0]["details"] and "last_from=sip:mon1@" in alarm[0]["details"],
          "alarm details: %s" % alarm[0]["details"])
    for name in ("mon1", "mon2"):
        st = env.wait_monitor(name, lambda st: st.get("alarms") == 1, "the door's alarm", 10)
        check("3 wrong door codes" in st.get("alarm", ""), "%s alarm: %r" % (name, st.get("alarm")))
        evs = [e for e in env.monitor_events(name) if e.get("event") == "alarm"]
        check(evs and evs[0].get("from") == "sip:door@%s" % DOMAIN, "%s alarm events: %s"
              % (name, evs))
    # A forged alarm straight to mon2, from another host: refused, not shown.
    codes = _attack(ATTACKER, env.ports.sip(1), "UDP", lambda p: _raw_sip(
        "MESSAGE", "sip:mon2@%s:%d" % (LOCAL, env.ports.sip(1)), p, "UDP",
        ["P-Asserted-Identity: <sip:door@%s>" % DOMAIN], "all clear"))
    log("forged alarm to mon2 -> %s" % codes)
    check(403 in codes, "forged alarm: %s" % codes)
    check(env.mon_ctl("mon2", "status").get("alarms") == 1, "the forged alarm was shown")
    # mon1 guessed: locked out even with the right code; mon2 typed nothing wrong: opens.
    for user, slot in (("mon1", 3), ("mon2", 4)):
        env.send_code_message("code_" + user, slot, [[user, USERS[user], DOMAIN, DOOR_CODE]])
    actions = env.door_actions(5)
    log("door actions: %s" % actions)
    check(actions[-2:] == ["via=message from=sip:mon1@%s refused=locked_out" % DOMAIN,
                           "via=message from=sip:mon2@%s action=door result=done" % DOMAIN],
          "after the alarm: %s" % actions)
    check(env.door_ctl("status").get("actions_run") == 1, "the door ran its action once")
    check_no_code_in_logs(env, "mon1", "mon2")


@case
def case_door_dialog_injection(env):
    """Issue 11 (the DTMF injection's SIP twin): keys typed in a call are
    credited to its proven peer, so an INFO application/dtmf-relay inside the
    dialog counts only when it came through the proxy (RFC 3261 section 16.6
    step 4: the dialog is record-routed). mon1 (sipp) calls the auto-answering
    door and holds the call; from 127.0.0.2, with the dialog's Call-ID and tags
    as a sniffer on the LAN sees them, the code goes as INFOs straight to the
    door: nothing opens, each is a request_refused event; a re-INVITE that
    would send the door's media to 127.0.0.2 gets 403."""
    env.start_proxy()
    env.start_door(video_codec="vp8", auto_answer="sip:mon1@%s" % DOMAIN,
                   extra="[actions]\ndoor = %s log\n[access]\nallow = sip:mon1@%s\n"
                   % (DOOR_CODE, DOMAIN))
    call = env.door("hold", "door_call_hold.xml", "door", 0, user="mon1", timeout=30)
    deadline = time.time() + 10
    ok = []
    while time.time() < deadline and not ok:
        ok = call.received(lambda m: m.status == 200 and m.cseq_method() == "INVITE")
        time.sleep(0.1)
    check(ok, "the door did not answer mon1's call")
    check(env.door_ctl("status").get("call") == "active", "the door's call is not active")
    call_id = ok[0].hdr("Call-ID")
    from_hdr, to_hdr = ok[0].hdr("From"), ok[0].hdr("To")
    door_port = env.ports.sip(8)
    for i, key in enumerate(DOOR_CODE):
        body = "Signal=%s\r\nDuration=250\r\n" % key

        def info(p, i=i, body=body):
            lines = ["INFO sip:door@%s:%d SIP/2.0" % (LOCAL, door_port),
                     "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-inj-%d-%d" % (ATTACKER, p, i, p),
                     "From: %s" % from_hdr, "To: %s" % to_hdr, "Call-ID: %s" % call_id,
                     "CSeq: %d INFO" % (100 + i), "Max-Forwards: 70",
                     "Content-Type: application/dtmf-relay",
                     "Content-Length: %d" % len(body)]
            return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
        log("INFO %d from %s -> %s" % (i + 1, ATTACKER, _attack(ATTACKER, door_port, "UDP", info)))
    time.sleep(0.5)  # a credited code would have run by now
    check(env.door_ctl("status").get("actions_run") == 0, "injected INFOs opened the door: %s"
          % [e["details"] for e in env.door_events("action")])
    refused = [e["details"] for e in env.door_events("request_refused")]
    log("door refused: %s" % refused)
    check(len([r for r in refused if r.startswith("method=INFO source=%s:" % ATTACKER)])
          == len(DOOR_CODE), "the injected INFOs were not all refused: %s" % refused)
    # A re-INVITE in the dialog from 127.0.0.2 would move the door's camera
    # to the attacker: 403, nothing answered.
    sdp = ("v=0\r\no=atk 2 2 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
           "m=audio 40000 RTP/AVP 0\r\nm=video 40002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
           % (ATTACKER, ATTACKER))

    def reinvite(p):
        lines = ["INVITE sip:door@%s:%d SIP/2.0" % (LOCAL, door_port),
                 "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-reinv-%d" % (ATTACKER, p, p),
                 "From: %s" % from_hdr, "To: %s" % to_hdr, "Call-ID: %s" % call_id,
                 "CSeq: 200 INVITE", "Max-Forwards: 70",
                 "Contact: <sip:mon1@%s:%d>" % (ATTACKER, p),
                 "Content-Type: application/sdp", "Content-Length: %d" % len(sdp)]
        return ("\r\n".join(lines) + "\r\n\r\n" + sdp).encode()
    codes = _attack(ATTACKER, door_port, "UDP", reinvite)
    log("re-INVITE from %s -> %s" % (ATTACKER, codes))
    check(403 in codes and 200 not in codes, "the door took a re-INVITE from 127.0.0.2: %s" % codes)
    check(env.door_ctl("status").get("call") == "active", "the door's call did not survive")
    call.wait()
    call.expect_ok()


@case
def case_door_invite_ipv6(env):
    """Issue 11 regression (a crash from network input): one auto-answered
    INVITE whose SDP names an IPv6 address SEGVed the door inside
    multiudpsink, whose socket is IPv4. The relay is off so that the offer
    reaches the door as written. Now the door answers 488 with a Warning
    (RFC 3261 section 20.43), hands nothing to a sink, and takes the next,
    ordinary call."""
    env.relay_enabled = False
    env.start_proxy()
    env.start_door(video_codec="vp8", auto_answer="sip:mon1@%s" % DOMAIN)
    s = env.door("v6", "door_invite_ipv6.xml", "door", 0, user="mon1", timeout=15)
    s.wait()
    s.expect_ok()
    check(env.door_proc.running(), "portier-door died on the IPv6 offer: %s"
          % env.door_log_text()[-1500:])
    st = env.door_ctl("status")
    check(st.get("call") == "idle" and st.get("registered"), "door after the IPv6 offer: %s" % st)
    # The door still serves: an IPv4 call from the same resident is answered.
    s = env.door("v4", "door_call.xml", "door", 1, user="mon1", timeout=20)
    s.wait()
    s.expect_ok()
    check(env.door_proc.running(), "portier-door died after the IPv6 offer")
    check(env.door_events("auto_answered"), "the IPv4 call was not answered")


@case
def case_door_codec_flap(env):
    """Issue 13: mon1 (sipp, `door_codec_flap.xml`) calls the auto-answering
    door with PCMU, then re-INVITEs with PCMA, PCMU, PCMA (RFC 3264 §8): the
    door follows each (its `audio` event lines, its status); a fourth change
    gets 488 with a Warning (each change leaves a speaker path behind, so a
    peer may not change without end); the call goes on with PCMA and ends
    with mon1's BYE."""
    env.start_proxy()
    env.start_door(video_codec="vp8", auto_answer="sip:mon1@%s" % DOMAIN)
    call = env.door("flap", "door_codec_flap.xml", "door", 0, user="mon1", timeout=30)
    deadline = time.time() + 15
    while time.time() < deadline and not call.received(lambda m: m.status == 488):
        time.sleep(0.1)
    refused = call.received(lambda m: m.status == 488 and m.cseq_method() == "INVITE")
    check(refused and "changed too often" in (refused[0].hdr("Warning") or ""),
          "the fourth codec change was not refused with a Warning: %s"
          % [m.first for m in call.received(lambda m: m.cseq_method() == "INVITE")])
    st = env.door_ctl("status")
    check(st.get("call") == "active" and st.get("audio_codec") == "PCMA/8000",
          "after the refusal the call goes on with PCMA: %s %s" % (st.get("call"),
                                                                  st.get("audio_codec")))
    audio = [e["details"] for e in env.door_events("audio")]
    check(audio == ["codec=PCMU/8000 rate=8000", "codec=PCMA/8000 rate=8000",
                    "codec=PCMU/8000 rate=8000", "codec=PCMA/8000 rate=8000"],
          "the door's audio event lines: %s" % audio)
    call.wait()
    call.expect_ok()
    env.wait_door_event("ended", 5)
    check(env.door_proc.running(), "the door is no longer running")


def _door_call_answered_by_sniffed_mon1(env):
    """The door rings mon1 (its SIP messages in its log: TPORT_LOG), mon1 answers."""
    env.start_proxy()
    door_with_monitor_access(env)
    env.start_monitor("mon1", "mon1", 0, 0, environ=dict(os.environ, TPORT_LOG="1"))
    check(env.door_ctl("ring").get("result") == "calling", "the button did not start a call")
    env.wait_monitor("mon1", lambda st: st.get("call") == "early", "ringing with early media", 15)
    check(env.mon_ctl("mon1", "answer").get("result") == "answered", "mon1 did not answer")
    env.wait_door_event("answered", 10)


def _sniffed_call(env, name, timeout=5):
    """The dialog of the call `name` (a monitor started with TPORT_LOG=1) took
    from the door, as the LAN shows it: Call-ID, the door's From (its tag),
    the monitor's To (its tag), the INVITE's CSeq number."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        msgs = wire_messages(env.monitor_log_text(name))
        invites = [m for d, m in msgs if d == "recv" and m and m[0].startswith("INVITE ")]
        answers = [m for d, m in msgs if d == "send" and m and m[0].startswith("SIP/2.0 200")
                   and wire_header(m, "CSeq").endswith("INVITE")]
        if invites and answers:
            inv, ok = invites[-1], answers[-1]
            return {"call_id": wire_header(inv, "Call-ID"), "door": wire_header(inv, "From"),
                    "monitor": wire_header(ok, "To"),
                    "cseq": int(wire_header(inv, "CSeq").split()[0])}
        time.sleep(0.1)
    raise TestFailure("%s's log shows no INVITE and its 200 (TPORT_LOG)" % name)


@case
def case_door_forged_bye(env):
    """Issue 11: a BYE sent straight to the door or to a monitor ended the
    call, because nua answered it 200 before the device saw it. The door rings
    mon1 through the proxy (the dialog is record-routed, RFC 3261 sections
    16.6 step 4 and 12.2: every request of the peer comes through the proxy),
    mon1 answers; from 127.0.0.2, with the Call-ID and tags a sniffer on the
    LAN sees, a BYE goes to the door as if from mon1 and one to mon1 as if
    from the door. Neither is answered while the call lasts (any final answer
    would end nua's session), each is a refusal event; both still show the
    call and the media still flows both ways. Then mon1's own hang-up, through
    the proxy, ends the call at the door."""
    _door_call_answered_by_sniffed_mon1(env)
    check(media_still_flows(env, "mon1"), "the call's media does not flow before the attack")
    d = _sniffed_call(env, "mon1")
    log("sniffed dialog: %s" % d)
    door_port, mon_port = env.ports.sip(8), env.ports.sip(0)
    attacks = [
        ("BYE to the door as mon1", door_port,
         in_dialog_request("BYE", "sip:door@%s:%d" % (LOCAL, door_port), d["monitor"], d["door"],
                    d["call_id"], 1000, "fbye-door")),
        ("BYE to mon1 as the door", mon_port,
         in_dialog_request("BYE", "sip:mon1@%s:%d" % (LOCAL, mon_port), d["door"], d["monitor"],
                    d["call_id"], d["cseq"] + 1000, "fbye-mon1")),
    ]
    for what, port, build in attacks:
        # Unanswered while the call lasts: any final response to a BYE ends
        # nua's session (sip::Account::vet_bye); the 403 comes after the call.
        codes = _attack(ATTACKER, port, "UDP", build, wait=2.0)
        log("%s from %s -> %s" % (what, ATTACKER, codes))
        check(not any(c >= 200 for c in codes), "%s: answered %s" % (what, codes))
    refused = [e["details"] for e in env.door_events("request_refused")]
    check(any(r.startswith("method=BYE source=%s:" % ATTACKER) for r in refused),
          "the door reported no refused BYE: %s" % refused)
    mon_refused = [e for e in env.monitor_events("mon1") if e.get("event") == "refused"]
    check(any(e.get("method") == "BYE" and e.get("source", "").startswith(ATTACKER + ":")
              for e in mon_refused), "mon1 reported no refused BYE: %s" % mon_refused)
    check(env.door_ctl("status").get("call") == "active" and not env.door_events("ended"),
          "a forged BYE ended the door's call: %s" % env.door_ctl("status"))
    check(env.mon_ctl("mon1", "status").get("call") == "answered",
          "a forged BYE ended mon1's call: %s" % env.mon_ctl("mon1", "status"))
    check(media_still_flows(env, "mon1"), "the media stopped after the forged BYEs")
    # The real hang-up, through the proxy, still ends the call.
    check(env.mon_ctl("mon1", "hangup").get("result") == "hung up", "mon1 hangup")
    ended = env.wait_door_event("ended", 5)
    check("hung up" in ended[0]["details"], "the door's call ended otherwise: %s"
          % ended[0]["details"])
    check(env.door_ctl("status").get("call") == "idle", "the door's call is still up")


@case
def case_door_forged_bye_flood(env):
    """Issue 11: forged BYEs are held unanswered while the call lasts (any
    final answer ends nua's session), so a flood of them must not grow the
    door's memory for ever: 32 from 127.0.0.2 (distinct branches, the call's
    sniffed ids) end nothing; the 33rd makes the door hang up itself, through
    the proxy (mon1 gets the BYE), with one error line. The door is still up,
    every held BYE gets its 403 once the call is over, and the next call
    works."""
    _door_call_answered_by_sniffed_mon1(env)
    d = _sniffed_call(env, "mon1")
    door_port = env.ports.sip(8)
    ruri = "sip:door@%s:%d" % (LOCAL, door_port)
    atk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    atk.bind((ATTACKER, 0))
    atk.settimeout(0.3)
    got = b""

    def send(i):
        build = in_dialog_request("BYE", ruri, d["monitor"], d["door"], d["call_id"], 1000 + i,
                           "flood%d" % i)
        atk.sendto(build(atk.getsockname()[1]), (LOCAL, door_port))

    def drain(until, stop):
        nonlocal got
        while time.time() < until and not stop():
            try:
                got += atk.recv(65535)
            except socket.timeout:
                pass
    try:
        for i in range(32):
            send(i)
        deadline = time.time() + 5
        while time.time() < deadline and len(env.door_events("request_refused")) < 32:
            time.sleep(0.1)
        drain(time.time() + 1, lambda: False)
        check(len(env.door_events("request_refused")) == 32, "32 refused BYEs expected: %d"
              % len(env.door_events("request_refused")))
        check(not final_status(got), "forged BYEs answered during the call: %s"
              % final_status(got))
        check(env.door_ctl("status").get("call") == "active", "32 forged BYEs ended the call")
        send(32)
        env.wait_door_event("ended", 5)
        env.wait_monitor("mon1", lambda st: st.get("call") not in ("answered", "early"),
                         "the call ended by the door", 5)
        check(env.door_proc.running(), "portier-door died in the flood")
        check(env.door_log_text().count("forged BYEs in one call: hanging up") == 1,
              "no single hang-up line in the door's log")
        drain(time.time() + 5, lambda: final_status(got).count(403) >= 33)
        log("answers after the call: %s" % sorted(set(final_status(got))))
        check(final_status(got).count(403) >= 33, "held BYEs without their 403: %s"
              % final_status(got))
    finally:
        atk.close()
    # The door still serves: the next ring reaches mon1.
    check(env.door_ctl("ring").get("result") == "calling", "the door does not ring again")
    env.wait_monitor("mon1", lambda st: st.get("call") == "early", "ringing again", 15)
