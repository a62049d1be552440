"""What an eavesdropper on this host's loopback sees: every UDP datagram on
`lo` to or from a set of ports, read with an AF_PACKET socket (root; Debian's
tcpdump is not installed on the test machines). The SIP cases and the interop
tests use it to check that media leaves encrypted; the late-branch benchmark
(bench/proxy/late_branch.py) times SIP messages by the kernel's stamps."""

import os
import socket
import struct
import threading


class LoopbackCapture:
    """Every UDP datagram on lo to or from `ports` (a set), as (src port, dst
    port, payload), each kept once (as received, not as sent). Bounded: at most
    `limit` datagrams, until stop(). With `tcp`, TCP segments that carry data
    too (payload: the segment's data). With `stamps`, each tuple has a fourth
    element: the kernel's time of the datagram (CLOCK_REALTIME nanoseconds,
    SO_TIMESTAMPNS), taken as loopback delivers it, i.e. when it was sent:
    neither this thread's delay nor the GIL moves it."""

    SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>; Python's socket module lacks it

    def __init__(self, ports, limit=200000, stamps=False, tcp=False):
        self.ports = ports
        self.limit = limit
        self.stamps = stamps
        self.protocols = (17, 6) if tcp else (17,)
        self.packets = []
        self.logfile = os.devnull  # the harnesses print a peer's log on failure
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE (root)
        if stamps:
            self.sock.setsockopt(socket.SOL_SOCKET, self.SO_TIMESTAMPNS, 1)
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running and len(self.packets) < self.limit:
            stamp = None
            try:
                if self.stamps:
                    frame, anc, _, addr = self.sock.recvmsg(70000, 64)
                    for level, kind, value in anc:
                        if level == socket.SOL_SOCKET and kind == self.SO_TIMESTAMPNS:
                            sec, nsec = struct.unpack("qq", value[:16])
                            stamp = sec * 1000000000 + nsec
                else:
                    frame, addr = self.sock.recvfrom(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] == socket.PACKET_OUTGOING or len(frame) < 14 + 20 + 8:
                continue
            ip = frame[14:]
            if ip[0] >> 4 != 4 or ip[9] not in self.protocols:  # IPv4, UDP (or TCP)
                continue
            ihl = (ip[0] & 0x0f) * 4
            sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
            if sport in self.ports or dport in self.ports:
                if ip[9] == 17:
                    payload = bytes(ip[ihl + 8:])
                else:
                    total = struct.unpack("!H", ip[2:4])[0]
                    payload = bytes(ip[ihl + (ip[ihl + 12] >> 4) * 4:total])
                    if not payload:  # SYN, ACK, FIN: no data
                        continue
                self.packets.append((sport, dport, payload, stamp) if self.stamps else
                                    (sport, dport, payload))

    def stop(self):
        if self.running:
            self.running = False
            self.thread.join(5)
            self.sock.close()
