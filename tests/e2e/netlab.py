"""A home LAN in network namespaces, made and torn down by the test.

Each device of the home gets its own network namespace (its own addresses,
ports and routing, as on a real LAN), joined by veth links to one bridge in a
namespace of its own. Nothing touches the host's network: the only interfaces
created in the host namespace are the veth ends, for an instant, before they
are moved away. Everything is deleted at the end, also after a failure; a
namespace left by a test that was killed is removed by the next run (names
carry the pid that made them).

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2. Python 3 stdlib.
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
    it. lab.close() kills every program started and deletes everything."""

    def __init__(self):
        remove_stale()
        self.tag = "%s%d" % (PREFIX, os.getpid())
        self.lan = self.tag + "-lan"
        self.nodes = {}     # name -> (namespace, address, host interface index)
        self.procs = []
        self._links = 0
        subprocess.run(["ip", "netns", "add", self.lan], check=True, capture_output=True)
        _ip("link", "add", "br0", "type", "bridge", ns=self.lan)
        _ip("link", "set", "br0", "up", ns=self.lan)
        _ip("link", "set", "lo", "up", ns=self.lan)

    def ns(self, node):
        return self.nodes[node][0]

    def addr(self, node):
        return self.nodes[node][1]

    def add(self, node, host):
        ns = "%s-%s" % (self.tag, node)
        address = "%s.%d" % (SUBNET, host)
        subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
        self.nodes[node] = (ns, address)
        self._links += 1
        # Short, unique names (15 characters at most) while both ends are in
        # the host namespace for an instant.
        dev = "p%d%s" % (os.getpid() % 100000, chr(ord("a") + self._links))
        peer = dev + "x"
        _ip("link", "add", dev, "type", "veth", "peer", "name", peer)
        _ip("link", "set", dev, "netns", ns, "name", "eth0")
        _ip("link", "set", peer, "netns", self.lan, "name", node[:12])
        _ip("link", "set", node[:12], "master", "br0", "up", ns=self.lan)
        _ip("addr", "add", address + "/24", "dev", "eth0", ns=ns)
        _ip("link", "set", "eth0", "up", ns=ns)
        _ip("link", "set", "lo", "up", ns=ns)
        return address

    def unplug(self, node):
        """Pulls the node's cable: its packets go nowhere, as when a monitor
        loses power (the process itself is the caller's to kill)."""
        _ip("link", "set", node[:12], "down", ns=self.lan)

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

    def close(self):
        for p in self.procs:
            stop_group(p)
        for ns, _ in self.nodes.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.lan], capture_output=True)
        self.nodes = {}
