#!/usr/bin/env python3
"""An eavesdropper on the home LAN: every frame that crosses the bridge, as a
port mirror or a hub would give it, and what can be read in it. Python 3
stdlib only (no tcpdump, no scapy).

Run in the bridge's namespace (tests/e2e/netlab.py), it writes a pcap file
(open it with Wireshark after `intercom_e2e.py --keep`):

    sniff.py OUT.pcap READY_FILE SECONDS MAX_FRAMES

and stops on SIGTERM, after SECONDS or after MAX_FRAMES. The functions below
read such a file back and look for what an eavesdropper wants: SIP in the
clear, a door code, RFC 4733 events, a VP8 keyframe.
"""

import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SNAPLEN = 65535


def capture(out, ready, seconds, max_frames):
    # Unbound: every port of the bridge. Each frame shows up where it enters
    # the bridge and again where it leaves; the leaving copy is skipped.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    deadline = time.monotonic() + seconds
    frames = 0
    with open(out, "wb") as f:
        # pcap global header: magic, v2.4, GMT offset, accuracy, snaplen, Ethernet
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1))
        with open(ready, "w") as r:
            r.write("%d\n" % os.getpid())
        while not stop and frames < max_frames and time.monotonic() < deadline:
            if not select.select([s], [], [], 0.2)[0]:
                continue
            data, addr = s.recvfrom(SNAPLEN)
            if addr[2] == PACKET_OUTGOING:
                continue
            t = time.time()
            f.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(data), len(data)))
            f.write(data)
            frames += 1


def read_pcap(path):
    """The frames of a pcap file (little-endian, Ethernet), as bytes."""
    with open(path, "rb") as f:
        data = f.read()
    frames, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


def packets(frames):
    """(proto, src, sport, dst, dport, payload) of each IPv4 TCP or UDP frame."""
    out = []
    for fr in frames:
        if len(fr) < 34 or fr[12:14] != b"\x08\x00":
            continue
        ip = fr[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        proto = ip[9]
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        l4 = ip[ihl:total]
        if proto == 17 and len(l4) >= 8:
            sport, dport = struct.unpack_from("!HH", l4)
            out.append(("udp", src, sport, dst, dport, l4[8:]))
        elif proto == 6 and len(l4) >= 20:
            sport, dport = struct.unpack_from("!HH", l4)
            out.append(("tcp", src, sport, dst, dport, l4[(l4[12] >> 4) * 4:]))
    return out


def rtp(payload):
    """(pt, seq, timestamp, ssrc, marker, body) of an RTP packet (RFC 3550 §5.1),
    or None. RTCP (PT 72-76 in the second byte's low bits, RFC 5761 §4) is not."""
    if len(payload) < 12 or payload[0] >> 6 != 2:
        return None
    pt = payload[1] & 0x7F
    if 72 <= pt <= 76:
        return None
    cc = payload[0] & 0x0F
    off = 12 + 4 * cc
    if payload[0] & 0x10:  # header extension (RFC 3550 §5.3.1)
        if len(payload) < off + 4:
            return None
        off += 4 + 4 * struct.unpack_from("!H", payload, off + 2)[0]
    if off > len(payload):
        return None
    end = len(payload)
    if payload[0] & 0x20 and end > off:  # padding
        end -= payload[-1]
    seq, ts, ssrc = struct.unpack_from("!HII", payload, 2)
    return pt, seq, ts, ssrc, bool(payload[1] & 0x80), payload[off:max(off, end)]


def vp8_keyframe(body):
    """Whether an RTP payload is the start of a VP8 keyframe: the RFC 7741 §4.2
    descriptor with S=1, PID=0, then the frame header with P=0 and the start
    code 0x9d 0x01 0x2a (RFC 6386 §9.1)."""
    if not body:
        return False
    b0, off = body[0], 1
    if not (b0 & 0x10) or (b0 & 0x07):
        return False
    if b0 & 0x80:
        if len(body) < 2:
            return False
        x, off = body[1], 2
        if x & 0x80:
            if len(body) <= off:
                return False
            off += 2 if body[off] & 0x80 else 1
        if x & 0x40:
            off += 1
        if x & 0x30:
            off += 1
    return (len(body) >= off + 6 and not (body[off] & 0x01)
            and body[off + 3:off + 6] == b"\x9d\x01\x2a")


def dtmf_events(pkts):
    """{(src, ssrc, pt): [event, ...]} read as RFC 4733 telephone-events from
    every RTP packet whose body could be one (4 bytes a block, §2.3; reserved bit
    0): one event a timestamp (§2.5.1.3: the packets of one event share it),
    in order of arrival."""
    seen, out = set(), {}
    for proto, src, _, _, _, payload in pkts:
        r = proto == "udp" and rtp(payload)
        if not r:
            continue
        pt, _, ts, ssrc, _, body = r
        if pt < 96 or not body or len(body) % 4 or len(body) > 16 or body[1] & 0x40:
            continue
        key = (src, ssrc, pt)
        if (key, ts) in seen:
            continue
        seen.add((key, ts))
        out.setdefault(key, []).append(body[0])
    return out


def code_as_events(events, code):
    """Whether the digits of `code` appear one after the other in `events`
    (RFC 4733 §3.2: events 0-9 are the digits)."""
    want = [int(c) for c in code]
    return any(events[i:i + len(want)] == want for i in range(len(events) - len(want) + 1))


def tls_records(stream):
    """The content types of the TLS records (RFC 8446 §5.1) at the start of
    each TCP segment that begins one."""
    if len(stream) >= 5 and stream[0] in (20, 21, 22, 23) and stream[1] == 3:
        return [stream[0]]
    return []


if __name__ == "__main__":
    capture(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
