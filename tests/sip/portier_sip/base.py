"""Constants, errors, ports, processes: what every case and the Env share."""

import ctypes
import fcntl
import os
import signal
import subprocess
import sys
import time


# tests/sip: the parent of this package
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = os.path.join(HERE, "scenarios")
DOMAIN = "home.example"
GROUP = "home"
LOCAL = "127.0.0.1"


# Passwords are distinctive so that the harness can check none of them ever
# shows up in the proxy's log (DESIGN.md: no secrets in logs).
USERS = {
    "alice": "alice-Pw-7781",
    "door": "door-Pw-4410",
    "mon1": "mon1-Pw-1931",
    "mon2": "mon2-Pw-2297",
    "mon3": "mon3-Pw-3608",
}


WRONG_PASSWORD = "Wrong-Pw-5512"
# The door code of the monitor cases (a secret: it must not show up in logs).
DOOR_CODE = "583920"


class TestFailure(Exception):
    pass


class SetupError(Exception):
    pass


def log(msg):
    sys.stdout.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stdout.flush()


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def _bound_ports():
    """Local ports with a socket on them (UDP any state, TCP any state), read
    from /proc so that checking never races with a peer binding the port."""
    ports = set()
    for name in ("udp", "tcp", "udp6", "tcp6"):
        try:
            with open("/proc/net/" + name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if len(fields) > 1 and ":" in fields[1]:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def port_bound(port, proto="udp"):
    try:
        with open("/proc/net/" + proto) as f:
            next(f)
            for line in f:
                fields = line.split()
                if len(fields) > 1 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    except OSError:
        pass
    return False


class Ports:
    """A block of BLOCK ports per case: base (proxy), then per peer slot j:
    SIP port base+10+j, sipp control port base+40+j, sipp media ports
    base+60+4j and +2 (sipp binds both even without RTP)."""
    BLOCK = 100
    MAX_SLOTS = 10

    # Above the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999
    # on Debian): no client socket of another test lands here by chance.
    SPARE_FIRST, SPARE_END = 61000, 65000
    LOCK_DIR = "/tmp/portier-sip-ports"

    def __init__(self, index, first_base, ncases):
        self.base = None
        self._lock = None
        stride = ncases * self.BLOCK
        candidates = []
        for attempt in range(8):
            base = first_base + attempt * stride + index * self.BLOCK
            if base + self.BLOCK > 65000:
                break
            candidates.append(base)
        # Each case's own blocks first; then, when a busy machine has a client
        # port in each of them (the strided blocks of a high index fall in the
        # ephemeral range), any spare block above it.
        spare = list(range(self.SPARE_FIRST, self.SPARE_END, self.BLOCK))
        for n, base in enumerate(candidates + [b for b in spare if b not in candidates]):
            busy = _bound_ports() & set(range(base, base + self.BLOCK))
            if busy:
                if n < len(candidates):
                    log("ports %d-%d busy (%s): trying the next range"
                        % (base, base + self.BLOCK - 1, sorted(busy)[:5]))
                continue
            if self._claim(base):
                self.base = base
                return
        raise SetupError("no free port block for case index %d" % index)

    def _claim(self, base):
        """An exclusive lock on the block for this process's life: two cases that
        reach the same spare block at once must not both take it."""
        os.makedirs(self.LOCK_DIR, exist_ok=True)
        fd = os.open(os.path.join(self.LOCK_DIR, "%d.lock" % base), os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock = fd
        return True

    @property
    def proxy(self):
        return self.base

    @property
    def relay_first(self):
        # The proxy's media relay gets 100 ports of its own, far from every
        # case block, so it never takes a port a sipp of another case needs.
        return 40000 + (self.base - 21000) % 20000

    def sip(self, j):
        assert j < self.MAX_SLOTS
        return self.base + 10 + j

    def control(self, j):
        return self.base + 40 + j

    def media(self, j):
        return self.base + 60 + 4 * j


_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """preexec_fn: the child gets SIGTERM if this script dies (even SIGKILL from
    a ctest timeout), so no proxy is ever left behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass


class Proc:
    def __init__(self, name, argv, out_path, cwd, append=False, env=None):
        self.name = name
        self.argv = argv
        self.out_path = out_path
        self.out = open(out_path, "ab" if append else "wb")
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT,
            cwd=cwd, start_new_session=True, preexec_fn=_die_with_parent, env=env)
        self.pid = self.popen.pid

    def running(self):
        return self.popen.poll() is None

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, grace=3.0):
        """Stop this process (and its process group, which it leads) by id."""
        if self.running():
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            if self.wait(grace) is None:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.wait(5)
        self.out.close()
        return self.popen.returncode


def tail(path, n=60):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    return "\n".join(lines[-n:])


# The attacker's address: a second loopback address, so "another host" is real.
ATTACKER = "127.0.0.2"
