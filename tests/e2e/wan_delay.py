#!/usr/bin/env python3
"""A wide-area link's delay between two interfaces of one network namespace:
every Ethernet frame that arrives on one leaves the other DELAY_MS later, in
order, both ways (an L2 bridge with latency). What `tc qdisc ... netem delay`
does, for kernels built without sch_netem (this project's CI VM's); run by
netlab.Lab.add(..., delay_ms=) in a namespace of its own. Python 3 stdlib.

    wan_delay.py IFACE_A IFACE_B DELAY_MS

The senders on the link must not hand the kernel super-frames bigger than the
MTU (GSO: netlab sets gso_max_segs 1 on their interfaces): a frame this
program cannot send whole is counted and dropped, as a link would drop it.
Stops on SIGTERM.
"""

import array
import heapq
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def _sum16(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(array.array("H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def fix_checksum(frame):
    """The frame with its IPv4 TCP or UDP checksum computed. A sender on a
    veth leaves it to the "hardware" (CHECKSUM_PARTIAL); the kernel would
    finish it on the way out of a real NIC, but a raw socket hands on the
    bytes as they are, and the receiver would drop them. RFC 1071: the
    one's-complement sum does not care about byte order, so native 16-bit
    words and a native store give the right bytes."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return frame
    ihl = (frame[14] & 0x0F) * 4
    proto = frame[23]
    total = struct.unpack_from("!H", frame, 16)[0]
    l4 = 14 + ihl
    end = 14 + total
    if proto == 6:
        at = l4 + 16
    elif proto == 17:
        at = l4 + 6
    else:
        return frame
    if end > len(frame) or at + 2 > end:
        return frame
    b = bytearray(frame)
    b[at:at + 2] = b"\0\0"
    pseudo = bytes(b[26:34]) + struct.pack("!BBH", 0, proto, end - l4)
    c = ~_sum16(pseudo + bytes(b[l4:end])) & 0xFFFF
    if proto == 17 and c == 0:
        c = 0xFFFF  # RFC 768: zero means "no checksum"
    b[at:at + 2] = struct.pack("=H", c)
    return bytes(b)


def main():
    a, b, delay = sys.argv[1], sys.argv[2], float(sys.argv[3]) / 1000.0
    socks = {}
    for name in (a, b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        s.setblocking(False)
        socks[name] = s
    other = {socks[a]: socks[b], socks[b]: socks[a]}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    due, n, dropped = [], 0, 0
    while not stop:
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, out, frame = heapq.heappop(due)
            try:
                out.send(frame)
            except OSError:
                dropped += 1
        wait = max(0.0, due[0][0] - now) if due else 0.5
        for s in select.select(list(socks.values()), [], [], wait)[0]:
            for _ in range(64):
                try:
                    frame, addr = s.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:  # our own send, seen again
                    continue
                n += 1
                heapq.heappush(due, (time.monotonic() + delay, n, other[s], fix_checksum(frame)))
    sys.stderr.write("wan_delay: %d frames, %d dropped\n" % (n, dropped))


if __name__ == "__main__":
    main()
