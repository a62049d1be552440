"""A home LAN in network namespaces, made and torn down by the test.

Each device of the home gets its own network namespace (its own addresses,
ports and routing, as on a real LAN), joined by veth links to one bridge in a
namespace of its own. Nothing touches the host's network: the only interfaces
created in the host namespace are the veth ends, for an instant, before they
are moved away. Everything is deleted at the end, also after a failure; a
namespace left by a test that was killed is removed by the next run (names
carry the pid that made them).

Beyond the one LAN: more segments (lab.segment(), each a bridge of its own),
nodes on several segments, default routes, and NAT routers (lab.nat_router():
nftables masquerade, replies only from outside, as a home router does), so a
house and phones behind their NATs can reach a cloud on an "internet" segment
(tests/e2e/cloud_e2e.py).

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2; NAT routers need
nftables and conntrack. Python 3 stdlib.
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
from portier_py.daemons import stop_group  # noqa: E402

PREFIX = "ptr"          # every namespace name starts with it
SUBNET = "10.77.0"      # the home LAN, /24


class LabError(Exception):
    pass


def _ip(*argv, ns=None, check=True):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + ["ip"] + list(argv)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    if check and r.returncode != 0:
        raise LabError("`%s` failed: %s" % (" ".join(cmd), r.stderr.strip()))
    return r


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def remove_stale():
    """Namespaces of earlier runs whose process is gone (a test killed by
    ctest's timeout cannot clean up after itself)."""
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(r"^%s(\d+)-" % PREFIX, name)
        if m and not _alive(int(m.group(1))):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def available():
    """None when this machine can make namespaces, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = "%s%d-probe" % (PREFIX, os.getpid())
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return "ip netns add failed: %s" % r.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class Lab:
    """The home LAN: lab.add("door", 10) makes namespace ...-door with address
    10.77.0.10 on the bridge. lab.popen("door", argv, ...) runs a program in
    it. lab.close() kills every program started and deletes everything.

    Every bridge lives in one namespace (self.lan, the "switch"); segment
    "lan" is the home LAN above, lab.segment() adds others."""

    def __init__(self, subnet=SUBNET):
        remove_stale()
        self.tag = "%s%d" % (PREFIX, os.getpid())
        self.lan = self.tag + "-lan"
        self.nodes = {}     # name -> (namespace, its first address)
        self.segments = {}  # name -> (subnet "a.b.c", bridge)
        self.ports = {}     # (node, segment) -> (address, node's interface, switch port)
        self.procs = []
        self._links = 0
        subprocess.run(["ip", "netns", "add", self.lan], check=True, capture_output=True)
        _ip("link", "set", "lo", "up", ns=self.lan)
        self.segment("lan", subnet)

    def segment(self, name, subnet):
        """Another network (subnet "a.b.c", a /24): a bridge of its own in the
        switch namespace; nothing crosses between segments but through a
        node on both (a router)."""
        bridge = "br%d" % len(self.segments)
        _ip("link", "add", bridge, "type", "bridge", ns=self.lan)
        _ip("link", "set", bridge, "up", ns=self.lan)
        self.segments[name] = (subnet, bridge)

    def ns(self, node):
        return self.nodes[node][0]

    def addr(self, node, segment=None):
        """The node's address (on `segment`, else its first one)."""
        return self.ports[(node, segment)][0] if segment else self.nodes[node][1]

    def add(self, node, host, segment="lan", gateway=None, delay_ms=0):
        """Plugs `node` (a new namespace the first time, else one more
        interface of it) into `segment` with address SUBNET.host (None: no
        address); `gateway` (an address on that segment) becomes its default
        route. delay_ms: through a link that delays every frame that much each
        way (wan_delay.py in a namespace of its own, between a private
        segment of the node's and `segment`), as a WAN does."""
        if delay_ms:
            return self._add_delayed(node, host, segment, gateway, delay_ms)
        subnet, bridge = self.segments[segment]
        address = "%s.%d" % (subnet, host) if host is not None else None
        if node not in self.nodes:
            ns = "%s-%s" % (self.tag, node)
            subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
            self.nodes[node] = (ns, address)
            _ip("link", "set", "lo", "up", ns=ns)
        ns = self.ns(node)
        iface = "eth%d" % sum(1 for (n, _) in self.ports if n == node)
        # The switch's port keeps the node's name (the home LAN's as before);
        # a node on several segments gets one per segment.
        port = node[:12] if segment == "lan" else (node[:9] + "-" + segment)[:15]
        self._links += 1
        # Short, unique names (15 characters at most) while both ends are in
        # the host namespace for an instant.
        dev = "p%d%s" % (os.getpid() % 100000, chr(ord("a") + self._links))
        peer = dev + "x"
        _ip("link", "add", dev, "type", "veth", "peer", "name", peer)
        _ip("link", "set", dev, "netns", ns, "name", iface)
        _ip("link", "set", peer, "netns", self.lan, "name", port)
        _ip("link", "set", port, "master", bridge, "up", ns=self.lan)
        if host is not None:
            _ip("addr", "add", address + "/24", "dev", iface, ns=ns)
        _ip("link", "set", iface, "up", ns=ns)
        if gateway:
            _ip("route", "add", "default", "via", gateway, ns=ns)
        self.ports[(node, segment)] = (address, iface, port)
        return address

    def _add_delayed(self, node, host, segment, gateway, delay_ms):
        subnet, _ = self.segments[segment]
        link = "%s~%s" % (node, segment)
        self.segment(link, subnet)
        address = self.add(node, host, link, gateway)
        self.ports[(node, segment)] = self.ports[(node, link)]
        wire = "wire%d" % len(self.segments)  # short: interface names have 15 characters
        self.add(wire, None, link)
        self.add(wire, None, segment)
        ia, ib = self.ports[(wire, link)][1], self.ports[(wire, segment)][1]
        for iface in (ia, ib):
            _ip("link", "set", iface, "promisc", "on", ns=self.ns(wire))
        # Frames no bigger than the MTU from this end (see wan_delay.py); the
        # other ends of the WAN are set likewise by their own delayed links,
        # or by no_super_frames().
        _ip("link", "set", "dev", self.ports[(node, link)][1], "gso_max_segs", "1",
            ns=self.ns(node))
        self.popen(wire, [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                       "wan_delay.py"), ia, ib, str(delay_ms)],
                   "/dev/null")
        return address

    def no_super_frames(self):
        """Every interface of every node sends frames of at most the MTU (no
        GSO super-frames, which a delayed link cannot pass)."""
        for (node, _), (_, iface, _) in list(self.ports.items()):
            _ip("link", "set", "dev", iface, "gso_max_segs", "1", ns=self.ns(node))

    def nat_router(self, node, inside, inside_host, outside, outside_host, gateway=None,
                   delay_ms=0):
        """A home router between segment `inside` (its address there is the
        devices' gateway) and `outside`: IPv4 forwarding, nftables masquerade
        onto `outside`, and from outside only what belongs to a connection an
        inside device opened (conntrack state established/related): no port
        forwarding, as a home router ships.

        Packets conntrack cannot place (state invalid) are dropped, and it
        does not adopt a TCP connection it sees mid-stream
        (nf_conntrack_tcp_loose = 0): after `conntrack -F` (the router forgot
        its mappings, as after a reboot or a full table), the packets of a
        connection made before go nowhere, either way, instead of being
        quietly mapped again. Returns the inside address."""
        self.add(node, outside_host, outside, gateway, delay_ms)
        address = self.add(node, inside_host, inside)
        wan, lan = self.ports[(node, outside)][1], self.ports[(node, inside)][1]
        self.nft(node, """
table ip portier_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "%(wan)s" masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state invalid drop
    ct state established,related accept
    iifname "%(lan)s" oifname "%(wan)s" accept
  }
  chain input {
    type filter hook input priority filter; policy accept;
    ct state invalid drop
  }
}
""" % {"wan": wan, "lan": lan})
        self.sysctl(node, "net.ipv4.ip_forward", 1)
        self.sysctl(node, "net.netfilter.nf_conntrack_tcp_loose", 0)
        return address

    def nft(self, node, script):
        """Loads an nftables script (nft -f) in the node's namespace."""
        r = subprocess.run(["ip", "netns", "exec", self.ns(node), "nft", "-f", "-"],
                           input=script, capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise LabError("nft in %s: %s" % (node, r.stderr.strip()))

    def sysctl(self, node, key, value):
        path = "/proc/sys/" + key.replace(".", "/")
        r = self.run(node, ["sh", "-c", "echo %s > %s" % (value, path)])
        if r.returncode != 0:
            raise LabError("sysctl %s in %s: %s" % (key, node, r.stderr.strip()))

    def unplug(self, node, segment="lan", up=False):
        """Pulls the node's cable (on `segment`): its packets go nowhere, as
        when a monitor loses power (the process itself is the caller's to
        kill). up=True plugs it back."""
        port = self.ports[(node, segment)][2]
        _ip("link", "set", port, "up" if up else "down", ns=self.lan)

    def popen(self, node, argv, logfile, env=None, cwd=None):
        with open(logfile, "ab") as out:
            p = subprocess.Popen(["ip", "netns", "exec", self.ns(node)] + list(argv),
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 env=env, cwd=cwd, start_new_session=True)
        self.procs.append(p)
        return p

    def popen_bridge(self, argv, logfile):
        """A program in the bridge's namespace, where every frame of the LAN
        passes (a port mirror: what an eavesdropper with a hub would see)."""
        with open(logfile, "ab") as out:
            p = subprocess.Popen(["ip", "netns", "exec", self.lan] + list(argv),
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        self.procs.append(p)
        return p

    def run(self, node, argv, timeout=10):
        return subprocess.run(["ip", "netns", "exec", self.ns(node)] + list(argv),
                              capture_output=True, text=True, timeout=timeout)

    def reaches(self, node, address, port=9):
        """Can `node` send to address? (a UDP datagram; ICMP unreachable back
        means the host is there; silence, that it is not). No ping(8) needed."""
        probe = ("import socket,sys\n"
                 "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(2)\n"
                 "s.connect((sys.argv[1],int(sys.argv[2])));s.send(b'x')\n"
                 "try:\n s.recv(1)\nexcept ConnectionRefusedError:\n sys.exit(0)\n"
                 "except OSError:\n sys.exit(1)\n")
        return self.run(node, ["python3", "-c", probe, address, str(port)]).returncode == 0

    def connects(self, node, address, port, timeout=3):
        """Can `node` open a TCP connection to address:port? "ok", "refused",
        "unreachable" (no route, or ICMP said so) or "timeout" (dropped)."""
        probe = ("import errno,socket,sys\n"
                 "s=socket.socket();s.settimeout(float(sys.argv[3]))\n"
                 "try:\n s.connect((sys.argv[1],int(sys.argv[2])));print('ok')\n"
                 "except ConnectionRefusedError:\n print('refused')\n"
                 "except socket.timeout:\n print('timeout')\n"
                 "except OSError as e:\n"
                 " print('unreachable' if e.errno in (errno.ENETUNREACH,errno.EHOSTUNREACH)"
                 " else 'error %d' % e.errno)\n")
        r = self.run(node, ["python3", "-c", probe, address, str(port), str(timeout)],
                     timeout=timeout + 10)
        return r.stdout.strip() or r.stderr.strip()

    def close(self):
        for p in self.procs:
            stop_group(p)
        for ns, _ in self.nodes.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.lan], capture_output=True)
        self.nodes = {}
