"""portier's programs on this machine, as the demo, the benchmarks and the
tests run them: a config file, a log and a control socket in a folder of the
run's own, the process in a session of its own (so stopping its group reaches
only what we started), portierctl's JSON replies, waits bounded in time.

A script that cannot import this by path adds scripts/ to sys.path:

    sys.path.insert(0, os.path.join(TOP, "scripts"))
    from portier_py import daemons
"""

import json
import os
import signal
import socket
import subprocess
import time


class Failure(Exception):
    """A program stopped when it should run, or a wait timed out."""


def read_text(path):
    """The whole file, or "" when it is not there (yet)."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def tail(path, n=60):
    """The last n lines of a file (with their line ends)."""
    try:
        with open(path, errors="replace") as f:
            return f.readlines()[-n:]
    except OSError as e:
        return ["(cannot read %s: %s)\n" % (path, e)]


def port_busy(port, host="127.0.0.1"):
    """Someone has host:port: a UDP socket, or a TCP listener (a TCP connection
    of an earlier run in TIME_WAIT does not count: the daemons bind with
    SO_REUSEADDR)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
    except OSError:
        return True
    finally:
        s.close()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            return any(l.split()[1].endswith(":%04X" % port) and l.split()[3] == "0A" for l in f)
    except OSError:
        return False


def wait_for(pred, timeout, what, interval=0.05, fatal=True):
    """Polls pred() until it returns a true value, at most `timeout` seconds;
    returns that value. On timeout: Failure, or None when fatal is false."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            if not fatal:
                return None
            raise Failure("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def start_session(argv, logfile, env=None, cwd=None):
    """argv in a session of its own, stdout and stderr appended to logfile."""
    with open(logfile, "ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)


def stop_group(proc, first=signal.SIGTERM, grace=3.0):
    """`first`, then SIGKILL after `grace` seconds, to the process group of proc
    (started by start_session: its group is only what we started)."""
    if proc.poll() is not None:
        return
    for sig in (first, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass


def portierctl(ctl, sock, *cmd, timeout=5, errors=False):
    """The JSON reply of a daemon's control socket to one command; None when
    there is none (no daemon, no JSON) or it is an error ({"error": ...},
    portierctl's exit status 1), unless `errors`."""
    r = subprocess.run([ctl, "--socket", sock] + list(cmd), capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode not in ((0, 1) if errors else (0,)):
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


# What went wrong as portier daemons stopped (Daemon.stop): a harness that ran
# them fails on any entry, since nobody else would see a crash at exit.
EXIT_PROBLEMS = []


class Daemon:
    """portier-proxy, portier-door or portier-monitor: NAME.conf, NAME.log and
    NAME.sock in `folder`. `popen(argv, logfile)` starts it (start_session, or
    e.g. inside a network namespace)."""

    def __init__(self, exe, ctl, folder, name, conf_text=None, popen=start_session):
        self.exe, self.ctl_exe, self.name, self.popen = exe, ctl, name, popen
        self.conf = os.path.join(folder, name + ".conf")
        self.logfile = os.path.join(folder, name + ".log")
        self.sock = os.path.join(folder, name + ".sock")
        self.proc = None
        if conf_text is not None:
            self.write_conf(conf_text)

    def write_conf(self, text):
        with open(self.conf, "w") as f:
            f.write(text)

    def check_config(self):
        """The program's own verdict on its config: None, or its error text."""
        r = subprocess.run([self.exe, "--check-config", "--config", self.conf],
                           capture_output=True, text=True, timeout=10)
        return None if r.returncode == 0 else (r.stderr or r.stdout).strip()

    def start(self):
        if self.proc is None:  # a restart appends to the log, a new run starts it afresh
            open(self.logfile, "w").close()
        self.proc = self.popen([self.exe, "--config", self.conf], self.logfile)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def ctl(self, *cmd, errors=False):
        """portierctl's JSON reply (see portierctl()); Failure if the program
        has stopped."""
        if self.proc is not None and self.proc.poll() is not None:
            raise Failure("%s exited with status %s; its log: %s"
                          % (self.name, self.proc.returncode, self.logfile))
        return portierctl(self.ctl_exe, self.sock, *cmd, errors=errors)

    def status(self):
        return self.ctl("status") or {}

    def events(self, kind=None):
        """The event lines the daemon keeps (portierctl events), of one kind or all."""
        evs = self.ctl("events") or []
        return [e for e in evs if isinstance(e, dict) and kind in (None, e.get("event"))]

    def wait_registered(self, timeout=10):
        wait_for(lambda: self.status().get("registered"), timeout,
                 "%s registered" % self.name)

    def log_text(self):
        return read_text(self.logfile)

    def stop(self):
        """SIGTERM (SIGKILL after 3 s). A daemon that was running must then
        exit with 0: anything else (an abort in a destructor, a crash on the
        way out) goes into EXIT_PROBLEMS, which the test harnesses turn into a
        failure. One that needed SIGKILL is not counted: on a loaded machine a
        slow teardown is not a defect of the case."""
        if self.proc is None:
            return
        was_running = self.proc.poll() is None
        stop_group(self.proc)
        code = self.proc.returncode
        if was_running and code not in (0, None, -signal.SIGKILL):
            EXIT_PROBLEMS.append("%s exited with %s on SIGTERM (its log: %s)" % (
                self.name, "signal %d" % -code if code < 0 else "status %d" % code,
                self.logfile))
