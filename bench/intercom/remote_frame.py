#!/usr/bin/env python3
"""A phone on the internet through both relays (issue 15): button press to its
first decoded frame, what the two relays add to each packet, and how long the
house takes to register again after its router forgets its NAT mappings.

The topology of tests/e2e/cloud_e2e.py (network namespaces; the shipped
config/proxy-house.conf and config/proxy-cloud.conf, addresses and timers
changed): the house (door, in-house proxy and relay, mon1) behind its NAT
router, the cloud proxy and relay on the "internet", and bob's phone
(portier-monitor, TLS and SRTP, registered at the cloud, awake) behind a NAT of
its own. Each attachment to the internet (the house router's, the cloud's,
the phone router's) is a link that delays every frame by --wan-rtt/4 each way
(tests/e2e/wan_delay.py: an L2 forwarder with a delay line; this VM's kernel
has no sch_netem, so `tc qdisc ... netem` is not available): house <-> cloud
and cloud <-> phone each have --wan-rtt as their round-trip time, and the
door's media crosses four such links, --wan-rtt in all, one way.

Per repetition (--reps):
  press -> frame   `portierctl ring` on the door to the phone's first decoded
                   frame: the door's `ring` event and the phone's
                   first_frame_wall_ms, both wall clock on this one host.
  one-way media    kernel timestamps (tcpdump, nanoseconds) of the door's video
                   RTP where it enters the home LAN's switch and of the same
                   packets where they leave the phone's LAN switch towards the
                   phone, matched by their RTP sequence numbers (each relay
                   renumbers a branch by a constant offset, found as the
                   offset most packets agree on): p50 / p95 over the call's
                   packets after its first second (the GOP replay of a new
                   branch is not live media). Minus the links' delay on that
                   path (2 x wan-rtt/2) it is what the two relays and the two
                   NAT routers add.
The door hangs up after each, and the next ring starts once both relays are
empty.

With --nat-flush N: N times, `conntrack -F` in the house router (the old flow
is then dead: the router drops its packets as invalid), and the time until the
cloud holds the house's binding from a new connection (polling
`portierctl registrations` every 50 ms). The house runs with
keepalive-interval 5, ping-pong-timeout-delay 3, reconnection-delay 1 (the
e2e timers): the bound is 5 + 3 + 1 s plus a TLS handshake and a REGISTER.

Needs root, iproute2, nftables, conntrack, tcpdump. Python 3 stdlib.

    bench/intercom/remote_frame.py --build build --reps 20 --wan-rtt 30
    bench/intercom/remote_frame.py --build build --reps 20 --wan-rtt 0   # the relays alone
    bench/intercom/remote_frame.py --build build --reps 0 --nat-flush 5
"""

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(HERE, "..", "..", "tests", "e2e")
sys.path.insert(0, E2E)
import cloud_e2e  # noqa: E402
import sniff  # noqa: E402

wait_for, log = cloud_e2e.wait_for, cloud_e2e.log


def nearest_rank(values, p):
    s = sorted(values)
    return s[max(0, min(len(s) - 1, -(-p * len(s) // 100) - 1))]


def read_pcap_ns(path):
    """(time in seconds, frame bytes) of a pcap file tcpdump wrote with
    --time-stamp-precision=nano (magic a1b23c4d) or micro."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    magic = struct.unpack_from("<I", data)[0]
    scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack_from("<IIII", data, off)
        out.append((sec + frac * scale, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return out


def rtp_of(frames, src=None, dst=None):
    """{ssrc: [(t, seq, rtp timestamp, size)]} of the RTP packets from src / to dst."""
    streams = {}
    for t, fr in frames:
        pk = sniff.packets([fr])
        if not pk:
            continue
        proto, s, sport, d, dport, payload = pk[0]
        if proto != "udp" or (src and s != src) or (dst and d != dst):
            continue
        r = sniff.rtp(payload)
        if r:
            streams.setdefault(r[3], []).append((t, r[1], r[2], len(payload)))
    return streams


def one_way(door_pkts, phone_pkts):
    """Per-packet one-way delay (ms) of the door's biggest stream (its video)
    at the phone. Each relay renumbers a branch's packets and shifts their
    RTP timestamps by constants of its own, and SRTP changes every packet's
    size of a leg by a constant: the (sequence, timestamp, size) offsets most
    packet pairs agree on match a phone packet to the door packet it is.
    Packets of the phone stream's first second (the relay's GOP replay to a
    new branch, not live media) are left out."""
    if not door_pkts or not phone_pkts:
        return []
    d = max(door_pkts.values(), key=lambda s: sum(x[3] for x in s))
    p = max(phone_pkts.values(), key=lambda s: sum(x[3] for x in s))
    votes = {}
    for _, pseq, pts, psize in p[:300]:
        for _, dseq, dts, dsize in d:
            key = ((pseq - dseq) & 0xFFFF, (pts - dts) & 0xFFFFFFFF, psize - dsize)
            votes[key] = votes.get(key, 0) + 1
    (seq_off, ts_off, grow), _ = max(votes.items(), key=lambda kv: kv[1])
    by_key = {}
    for t, seq, ts, size in d:
        by_key.setdefault(((seq + seq_off) & 0xFFFF, (ts + ts_off) & 0xFFFFFFFF, size + grow),
                          []).append(t)
    start = p[0][0] + 1.0
    out = []
    for t, seq, ts, size in p:
        sent = [td for td in by_key.get((seq, ts, size), []) if td <= t]
        if t >= start and sent:
            out.append((t - max(sent)) * 1000.0)
    return out


class Bench:
    def __init__(self, args, tmp):
        ns = argparse.Namespace(build=args.build, linphone=shutil.which("linphone-daemon"))
        self.args, self.tmp = args, tmp
        # Four delayed links on the way door -> house router -> cloud -> phone
        # router -> phone, and on each round trip house <-> cloud or cloud <->
        # phone.
        self.w = w = cloud_e2e.World(ns, tmp, wan_delay_ms=args.wan_rtt / 4.0)
        w.group_phones = ("phone2",)
        w.start_cloud()
        w.start_house(monitors=("mon1",))
        w.wait_house_registered(20)
        self.phone = w.cloud_monitor("phone2", {})

    def capture(self, port, name):
        path = os.path.join(self.tmp, name + ".pcap")
        p = subprocess.Popen(["ip", "netns", "exec", self.w.lab.lan, "tcpdump", "-i", port,
                              "-U", "-n", "-s", "200", "--time-stamp-precision=nano", "-w",
                              path, "udp"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        return p, path

    def ring(self, rep):
        w, door, phone = self.w, self.w.door, self.phone
        caps = [self.capture(w.lab.ports[("door", "lan")][2], "door-%d" % rep),
                self.capture(w.lab.ports[("phone2", "p2")][2], "phone-%d" % rep)]
        time.sleep(0.5)  # tcpdump is listening
        check_ring = door.ctl("ring")
        if not check_ring:
            raise SystemExit("portierctl ring failed")
        st = wait_for(lambda: (lambda s: s if s.get("call") == "early" and
                               s.get("frames_decoded", 0) > 0 else None)(phone.status()),
                      20, "the phone decoding the door's video")
        rings = [e for e in door.events("ring")]
        press = rings[-1]["wall_ms"]
        frame_ms = st["first_frame_wall_ms"] - press
        time.sleep(4.0)  # media to match
        door.ctl("hangup")
        for p, _ in caps:
            cloud_e2e.li.stop_group(p)
        wait_for(lambda: door.status().get("call") == "idle" or None, 10, "the door idle")
        for d in (w.proxy, w.cloud):
            wait_for(lambda: d.relay().get("calls") == [] or None, 10, "the relay empty")
        wait_for(lambda: phone.status().get("call") in ("ended", "idle", None) or None, 10,
                 "the phone idle")
        door_pkts = rtp_of(read_pcap_ns(caps[0][1]), src=w.lab.addr("door"))
        phone_pkts = rtp_of(read_pcap_ns(caps[1][1]), dst=w.lab.addr("phone2"))
        return frame_ms, one_way(door_pkts, phone_pkts)

    def nat_flush(self):
        w = self.w
        old = w.house_flow().get("received")
        t0 = time.monotonic()
        r = w.lab.run("hrouter", ["conntrack", "-F"])
        if r.returncode != 0:
            raise SystemExit("conntrack -F: %s" % r.stderr.strip())

        def moved():
            b = w.house_flow()
            return b and b.get("received") != old and \
                w.domain_registration().get("state") == "registered" or None
        wait_for(moved, 40, "the house registered over a new flow", interval=0.05)
        return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--wan-rtt", type=float, default=30.0, help="ms, house<->cloud and cloud<->phone")
    ap.add_argument("--nat-flush", type=int, default=0)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    for tool in ("tcpdump", "nft", "conntrack"):
        if not shutil.which(tool):
            raise SystemExit("%s not found" % tool)
    cloud_e2e.li.TOTAL_BUDGET = 3600
    cloud_e2e.li.T0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="portier-bench-remote-frame-")
    b = None
    try:
        b = Bench(args, tmp)
        frames, delays = [], []
        for rep in range(args.reps):
            f, d = b.ring(rep)
            frames.append(f)
            delays += d
            print("rep %2d: press -> frame %4d ms; one-way media p50 %.2f p95 %.2f ms (%d packets)"
                  % (rep + 1, f, nearest_rank(d, 50) if d else -1, nearest_rank(d, 95) if d else -1,
                     len(d)), flush=True)
        if frames:
            print("press -> first frame on the phone, wan rtt %g ms, %d reps: every rep %s; "
                  "p50 %d ms, p95 %d ms" % (args.wan_rtt, len(frames),
                                            " ".join("%d" % f for f in frames),
                                            nearest_rank(frames, 50), nearest_rank(frames, 95)))
        if delays:
            floor = args.wan_rtt  # two halves of the rtt on the way
            print("one-way door -> phone, %d packets: p50 %.2f ms, p95 %.2f ms; the links' delay %.1f ms of "
                  "it; the relays, routers and links add p50 %.2f ms, p95 %.2f ms"
                  % (len(delays), nearest_rank(delays, 50), nearest_rank(delays, 95), floor,
                     nearest_rank(delays, 50) - floor, nearest_rank(delays, 95) - floor))
        flushes = [b.nat_flush() for _ in range(args.nat_flush)]
        if flushes:
            print("NAT flush -> registered over a new flow, %d reps: %s s"
                  % (len(flushes), " ".join("%.2f" % f for f in flushes)))
    finally:
        if b:
            b.w.close()
        if args.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
