"""baresip 1.0 (Debian package baresip) as a peer of the interop tests:
headless (no sound card, no camera, no window), driven over its ctrl_tcp
module (netstring-framed JSON commands; events come back on the same
connection). Python 3 stdlib only.

- audio: a tone from a WAV file (`aufile`; `ausine` does 48 kHz only, PCMU
  is 8 kHz) and the `aubridge` player (nothing plays); video: the
  `fakevideo` source (a test picture) and display; codecs
  PCMU and VP8 (Debian's baresip has no H.264);
- `-s` traces every SIP message into its log, which the tests read;
- `rtp_stats yes` makes it log each stream's RTP counters when a call ends;
- `net_interface 127.0.0.1`: its SDP names loopback, where it sends from.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import linphone_interop as li  # noqa: E402  log, check, wait_for, stop_group
from portier_py.loopcap import LoopbackCapture  # noqa: E402,F401  (bp.LoopbackCapture)


def use(proxy_port, relay_ports, users):
    """A test's proxy port, relay ports and users ({user: password}) in the
    shared driver linphone_interop (its Proxy and main read them); returns its
    check, log and wait_for."""
    li.PROXY_PORT, li.RELAY_PORTS, li.USERS = proxy_port, relay_ports, users
    return li.check, li.log, li.wait_for


def tcp_listening(port):
    """A TCP socket listens on 127.0.0.1:port (/proc/net/tcp, state 0A)."""
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == "0100007F:%04X" % port and fields[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def write_tone(path, seconds, rate=8000, channels=1):
    """A 440 Hz tone, 16-bit WAV: what baresip sends as its voice (longer
    than any call of the tests: its file source stops at the end). baresip
    1.0's aufile neither resamples nor mixes: `rate` and `channels` are the
    agreed codec's (opus: 48000 and 2, its rtpmap's)."""
    import math
    import struct
    import wave
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                               * channels for i in range(rate * seconds)))


def netstring(payload):
    data = json.dumps(payload).encode()
    return b"%d:%s," % (len(data), data)


class Baresip:
    def __init__(self, tmp, name, aor, password, proxy_port, sip_port, ctrl_port, rtp_ports,
                 answermode="manual", audio_codecs="PCMU", tone_rate=8000, tone_channels=1,
                 mediaenc=None):
        self.name = name
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.logfile = os.path.join(tmp, name + ".log")
        self.ctrl_port = ctrl_port
        self.proc = None
        self.sock = None
        self.buf = b""
        self.events = []
        self.token = 0
        tone = os.path.join(self.dir, "tone.wav")
        write_tone(tone, 60, tone_rate, tone_channels)
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write("\n".join([
                "poll_method epoll",
                "net_interface 127.0.0.1",  # loopback only: its SDP must name 127.0.0.1
                "sip_listen 127.0.0.1:%d" % sip_port,
                "call_local_timeout 120",
                "call_max_calls 4",
                "audio_player aubridge,%s" % name,
                "audio_source aufile,%s" % tone,
                "audio_alert aubridge,%s" % name,
                "video_source fakevideo,nil",
                "video_display fakevideo,nil",
                "video_size 320x240",
                "video_bitrate 300000",
                "video_fps 15",
                "rtp_ports %s" % rtp_ports,
                "rtp_stats yes",
                "module_path /usr/lib/baresip/modules",
                "module g711.so",
                # opus (issue 13): give it a 48 kHz stereo tone
                "module opus.so" if "opus" in audio_codecs else "",
                "module vp8.so",
                "module aubridge.so",
                "module aufile.so",
                "module fakevideo.so",
                "module ctrl_tcp.so",
                "module srtp.so" if mediaenc else "",
                "module_tmp account.so",
                "module_app menu.so",
                "ctrl_tcp_listen 127.0.0.1:%d" % ctrl_port,
                ""]))
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write("<%s;transport=udp>;auth_pass=%s;outbound=\"sip:127.0.0.1:%d;transport=udp\""
                    ";answermode=%s;regint=600;audio_codecs=%s;video_codecs=VP8%s\n"
                    % (aor, password, proxy_port, answermode, audio_codecs,
                       ";mediaenc=%s" % mediaenc if mediaenc else ""))
        open(os.path.join(self.dir, "contacts"), "w").close()

    def start(self):
        exe = shutil.which("baresip")
        with open(self.logfile, "w") as out:
            self.proc = subprocess.Popen([exe, "-f", self.dir, "-s"], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

        def listening():
            if self.proc.poll() is not None:
                raise li.TestFailure("baresip %s exited with %s" % (self.name,
                                                                    self.proc.returncode))
            return tcp_listening(self.ctrl_port)
        # Connect only once it listens: connecting to a port of the ephemeral
        # range with nobody on it can connect the socket to itself (TCP
        # simultaneous open), and baresip then finds its port taken.
        li.wait_for(listening, 10, "baresip %s's ctrl_tcp socket" % self.name)
        self.sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
        self.sock.settimeout(0.1)

    def _read(self, wait):
        """Reads what baresip sent for up to `wait` s; events go to self.events;
        returns the responses."""
        responses = []
        end = time.monotonic() + wait
        while True:
            try:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise li.TestFailure("baresip %s closed its ctrl_tcp socket" % self.name)
                self.buf += chunk
            except socket.timeout:
                pass
            while True:
                m = re.match(rb"(\d+):", self.buf)
                if not m or len(self.buf) < m.end() + int(m.group(1)) + 1:
                    break
                n = int(m.group(1))
                msg = json.loads(self.buf[m.end():m.end() + n].decode("utf-8", "replace"))
                self.buf = self.buf[m.end() + n + 1:]
                (self.events if msg.get("event") else responses).append(msg)
            if responses or time.monotonic() >= end:
                return responses

    def command(self, command, params=""):
        self.token += 1
        self.sock.sendall(netstring({"command": command, "params": params,
                                     "token": str(self.token)}))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for r in self._read(0.5):
                if r.get("token") == str(self.token):
                    return r
        raise li.TestFailure("baresip %s: no answer to %r" % (self.name, command))

    def wait_event(self, kind, timeout):
        def seen():
            self._read(0.1)
            return [e for e in self.events if e.get("type") == kind] or None
        return li.wait_for(seen, timeout, "baresip %s event %s" % (self.name, kind))

    def log_text(self):
        return li.daemons.read_text(self.logfile)

    def stop(self):
        if self.sock is not None:
            try:
                self.command("quit")
            except Exception:  # it may be gone already; it is killed below anyway
                pass
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                li.stop_group(self.proc)


# --------------------------------------------------------------------------
# SRTP (issue 13): what baresip's `-s` trace says about SDES, and the wire.

KEY = r"a=crypto:\d+ \S+ inline:([A-Za-z0-9+/=]+)"


def trace(text, proxy_port=None):
    """The SIP messages of a baresip log (`-s`: "#", "PROTO SRC -> DST", the
    message), as dicts: dir ("out" when sent to the proxy, else "in"), first
    (the first line), text (the whole message)."""
    proxy_port = proxy_port or li.PROXY_PORT
    out = []
    for block in text.split("\x1b[36;1m#")[1:]:
        lines = block.split("\x1b[;m")[0].strip("\n").splitlines()
        if len(lines) < 2:
            continue
        m = re.match(r"\S+ (\S+) -> (\S+)", lines[0])
        if not m:
            continue
        out.append({"dir": "out" if m.group(2).endswith(":%d" % proxy_port) else "in",
                    "first": lines[1], "text": "\n".join(lines[1:])})
    return out


def media_section(sdp, kind):
    """The m=KIND section of an SDP body ("" if none)."""
    m = re.search(r"^m=%s .*?(?=^m=|\Z)" % kind, sdp, re.M | re.S)
    return m.group(0) if m else ""


def media_proto(sdp, kind):
    m = re.match(r"m=\S+ \d+ (\S+)", media_section(sdp, kind))
    return m.group(1) if m else None


def crypto_lines(sdp, kind):
    """(tag, suite, key) of each a=crypto line of the m=KIND section (RFC 4568 §9.1)."""
    return [(int(t), s, k) for t, s, k in
            re.findall(r"^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)",
                       media_section(sdp, kind), re.M)]


def port_set(ports):
    lo, hi = (int(p) for p in ports.split("-"))
    return set(range(lo, hi + 1))


def plain_rtcp(payload):
    """Whether a datagram is RTCP in the clear: a compound of RTCP packets
    (RFC 3550 §6.1, PT 192-223) that fills it exactly. SRTCP is never one: its
    E flag and index and its tag follow the compound (RFC 3711 §3.4), and all
    but the first header are encrypted."""
    off = 0
    while off + 4 <= len(payload):
        if payload[off] >> 6 != 2 or not 192 <= payload[off + 1] <= 223:
            return False
        off += (int.from_bytes(payload[off + 2:off + 4], "big") + 1) * 4
    return off == len(payload) and off > 0


def clear_media(packets, code, peer_ports):
    """What an eavesdropper reads in captured datagrams: the number of RTP
    packets, of VP8 keyframes in the clear, whether the digits of `code`
    show as RFC 4733 events (tests/e2e/sniff.py's readers), and the RTCP in
    the clear as (src port, dst port, hex): "peer_rtcp" what baresip sent
    from `peer_ports` (or a relay passed on unchanged), "our_rtcp" the rest.
    baresip 1.0 lets out unprotected its NAT pinhole packet (an APP packet
    "PING" "PONG", its stream_start()) and its RTCP BYE at the end of a call."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
    import sniff
    pkts = [("udp", "127.0.0.1", s, "127.0.0.1", d, p) for s, d, p in packets]
    rtp = [r for r in (sniff.rtp(p) for _, _, p in packets) if r]
    events = sniff.dtmf_events(pkts)
    peers = {p for s, _, p in packets if s in peer_ports}
    clear = [(s, d, p) for s, d, p in packets if plain_rtcp(p)]
    return {"rtp": len(rtp), "keyframes": sum(1 for r in rtp if sniff.vp8_keyframe(r[5])),
            "code": any(sniff.code_as_events(e, code) for e in events.values()),
            "peer_rtcp": [(s, d, p.hex()) for s, d, p in clear if p in peers],
            "our_rtcp": [(s, d, p.hex()) for s, d, p in clear if p not in peers]}


def srtp_proxy(exe, ctl, tmp, encryption, mandatory):
    """portier-proxy for baresip (MD5 digest only, portier_devices.md5_proxy)
    with its relay's SRTP: `encryption` terminate or passthrough, or "off"
    (the relay off: the devices' SDP goes through as written)."""
    import portier_devices as pd
    proxy = pd.md5_proxy(exe, ctl, tmp)
    with open(proxy.conf) as f:
        conf = f.read()
    relay = ("enabled = false\n" if encryption == "off" else
             "encryption = %s\nencryption-mandatory = %s\n"
             % (encryption, "true" if mandatory else "false"))
    with open(proxy.conf, "w") as f:
        f.write(conf.replace("[module::MediaRelay]\n", "[module::MediaRelay]\n" + relay))
    return proxy
