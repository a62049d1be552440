"""RTP on a socket of the test: a peer that records what reaches it, packet helpers."""

import socket
import struct
import threading
import time

from portier_sip.base import LOCAL


class RtpPeer:
    """A UDP media socket of a test device or of the door: records every packet
    with the kernel's arrival time (SO_TIMESTAMPNS, so a busy test thread does
    not shift it) and can answer each RTP packet with one of its own."""
    SO_TIMESTAMPNS = 35

    def __init__(self, name, port, echo_ssrc=None):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, self.SO_TIMESTAMPNS, 1)
        self.sock.bind((LOCAL, port))
        self.sock.settimeout(0.1)
        self.port = port
        self.echo_ssrc = echo_ssrc
        self.packets = []  # (arrival time, source (host, port), bytes)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        seq = 0
        while not self.stop:
            try:
                data, anc, _, src = self.sock.recvmsg(2048, 64)
            except socket.timeout:
                continue
            except OSError:
                return
            t = time.time()
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == self.SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("qq", value[:16])
                    t = sec + nsec / 1e9
            self.packets.append((t, src, data))
            if self.echo_ssrc is not None and is_rtp(data):
                # symmetric: back to where the relay sent from (RFC 4961)
                seq += 1
                self.sock.sendto(rtp_packet(seq, seq * 3000, self.echo_ssrc, b"\x10\x51echo"), src)

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()

    def rtp(self, ssrc=None):
        return [p for p in self.packets if is_rtp(p[2]) and
                (ssrc is None or struct.unpack("!I", p[2][8:12])[0] == ssrc)]


def is_rtp(data):
    # RFC 5761 section 4: RTCP packet types 200-206 look like RTP payload types
    # 72-78 with the marker bit; RTP uses none of 64-95.
    return len(data) >= 12 and data[0] >> 6 == 2 and not 64 <= (data[1] & 0x7f) <= 95


def rtp_packet(seq, ts, ssrc, payload, pt=96):
    return struct.pack("!BBHII", 0x80, pt, seq & 0xffff, ts & 0xffffffff, ssrc) + payload
