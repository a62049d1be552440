#!/usr/bin/env python3
"""Button press to the first decoded frame on every ringing device (issue 5).

For each number of ringing monitors (1, 2, 5, 10) and each keyframe interval
of the door (2 s, 10 s), and for the door's camera started by the press and
always on, the door rings the home RINGS times. Each time, the time from the
press (just before `portierctl ring`) to the `first_frame` event line of every
portier-monitor (CLOCK_MONOTONIC, the same clock for every process here).
The door then hangs up, every monitor goes idle, and the next ring starts.

Side by side in the same run, the same door rings linphone-daemon monitors
(Debian's Linphone, `incoming_calls_early_media=1`); their first decoded frame
is liblinphone's "First video frame decoded successfully" log line (wall
clock, milliseconds).

Then, per program, CPU (% of one core) and RSS during a 10 s answered call
(monitor1 answered, the others hung up by the CANCEL).

Everything on 127.0.0.1, ports 46000-46999 and 47000-48999 (RTP). Python 3
stdlib. Writes its logs into a fresh directory under /tmp (or BENCH_OUT).

    bench/intercom/press_to_frame.py --build build [--rings 20]
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
from portier_py.configs import (account, door_conf, monitor_conf, proxy_conf,  # noqa: E402
                                users_file)
from portier_py.daemons import portierctl, start_session, stop_group, wait_for  # noqa: E402

DOMAIN = "home.example"
GROUP = "sip:home@" + DOMAIN
PROXY_PORT = 46060
DOOR_PORT = 46070
CLK_TCK = os.sysconf("SC_CLK_TCK")


def mono_ms():
    return time.monotonic() * 1000


class Proc:
    def __init__(self, argv, log, env=None, cwd=None):
        self.log = log
        self.p = start_session(argv, log, env=env, cwd=cwd)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        stop_group(self.p, grace=5)

    def cpu_ticks(self):
        """utime + stime of the process and its waited-for children."""
        with open("/proc/%d/stat" % self.p.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15])

    def rss_kb(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.out = args.out or tempfile.mkdtemp(prefix="portier-bench-intercom-")
        os.makedirs(self.out, exist_ok=True)
        self.exe = lambda name: os.path.join(self.build, "signaling", name)
        self.procs = []
        self.users = {"door": "door-bench"}
        for i in range(1, 11):
            self.users["mon%d" % i] = "mon%d-bench" % i
            self.users["lp%d" % i] = "lp%d-bench" % i

    def ctl(self, sock, *cmd):
        return portierctl(self.exe("portierctl"), sock, *cmd)

    def write(self, name, text):
        path = os.path.join(self.out, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    # ---------------------------------------------------------------- programs

    def start_proxy(self, tag):
        users = users_file(os.path.join(self.out, "users.conf"), self.users, DOMAIN)
        self.proxy_sock = os.path.join(self.out, "proxy.sock")
        conf = self.write("proxy-%s.conf" % tag, proxy_conf(
            "127.0.0.1", PROXY_PORT, "%s/proxy-state-%s" % (self.out, tag), self.proxy_sock,
            users, "46200-46999", DOMAIN, more={
                "global": {"transports": "sip:127.0.0.1:%d" % PROXY_PORT, "log-level": "message"},
                "module::MediaRelay": {"max-early-media-per-call": 16}}))
        self.proxy = Proc([self.exe("portier-proxy"), "--config", conf],
                          os.path.join(self.out, "proxy-%s.log" % tag))
        self.procs.append(self.proxy)
        wait_for(lambda: self.ctl(self.proxy_sock, "ping"), 10, "proxy")

    def start_door(self, tag, keyint, always_on):
        self.door_sock = os.path.join(self.out, "door.sock")
        conf = self.write("door-%s.conf" % tag, door_conf(
            self.door_sock, account("sip:door@" + DOMAIN, self.users["door"],
                                    "127.0.0.1:%d" % PROXY_PORT, "127.0.0.1:%d" % DOOR_PORT),
            GROUP, "127.0.0.1", "47000-47099", "%s/door-events-%s" % (self.out, tag), more={
                "global": {"log-level": "message"},
                "call": {"ring-timeout": 60},
                "media": {"width": 640, "height": 480, "keyframe-interval": keyint,
                          "camera-always-on": "true" if always_on else "false"}}))
        self.door = Proc([self.exe("portier-door"), "--config", conf],
                         os.path.join(self.out, "door-%s.log" % tag))
        self.procs.append(self.door)
        wait_for(lambda: (self.ctl(self.door_sock, "status") or {}).get("registered"), 10,
                 "door registered")

    def start_monitors(self, tag, n):
        self.monitors = []
        for i in range(1, n + 1):
            name = "mon%d" % i
            sock = os.path.join(self.out, name + ".sock")
            events = os.path.join(self.out, "%s-%s-events.jsonl" % (name, tag))
            conf = self.write("%s-%s.conf" % (name, tag), monitor_conf(
                sock, account("sip:%s@%s" % (name, DOMAIN), self.users[name],
                              "127.0.0.1:%d" % PROXY_PORT, "127.0.0.1:%d" % (46100 + i)),
                "127.0.0.1", "%d-%d" % (47100 + 100 * i, 47199 + 100 * i), DOMAIN,
                events_file=events, more={"global": {"log-level": "message"}}))
            proc = Proc([self.exe("portier-monitor"), "--config", conf],
                        os.path.join(self.out, "%s-%s.log" % (name, tag)))
            self.procs.append(proc)
            self.monitors.append({"name": name, "sock": sock, "events": events, "proc": proc})
        for m in self.monitors:
            wait_for(lambda: (self.ctl(m["sock"], "status") or {}).get("registered"), 10,
                     "%s registered" % m["name"])

    def start_linphones(self, tag, n):
        exe = shutil.which("linphone-daemon")
        self.linphones = []
        for i in range(1, n + 1):
            name = "lp%d" % i
            home = os.path.join(self.out, "%s-%s" % (name, tag))
            os.makedirs(os.path.join(home, ".local", "share", "linphone"), exist_ok=True)
            port = 46400 + 10 * i
            rc = os.path.join(home, "linphonerc")
            with open(rc, "w") as f:
                f.write("[sip]\nsip_port={sp}\nsip_tcp_port=0\nsip_tls_port=0\ndefault_proxy=0\n"
                        "incoming_calls_early_media=1\n[rtp]\naudio_rtp_port={a}\n"
                        "video_rtp_port={v}\n[net]\nauto_net_state_mon=0\n"
                        "[video]\nenabled=1\ncapture=0\ndisplay=1\ndisplaytype=MSExtDisplay\n"
                        "[proxy_0]\nreg_proxy=<sip:127.0.0.1:{p};transport=udp>\n"
                        "reg_identity=sip:{u}@{d}\nreg_expires=3600\nreg_sendregister=1\n"
                        "[auth_info_0]\nusername={u}\nuserid={u}\npasswd={pw}\nrealm={d}\n"
                        .format(sp=port, a=port + 2, v=port + 4, p=PROXY_PORT, u=name,
                                d=DOMAIN, pw=self.users[name]))
            env = dict(os.environ, HOME=home, XDG_RUNTIME_DIR=home)
            log = os.path.join(home, "linphone.log")
            proc = Proc([exe, "--config", rc, "--pipe", "portier-bench-%d-%s" % (os.getpid(), name),
                         "--log", log, "--disable-stats-events", "-D"],
                        os.path.join(home, "stdout.log"), env=env, cwd=home)
            self.procs.append(proc)
            self.linphones.append({"name": name, "log": log, "proc": proc})
        want = {"sip:lp%d@%s" % (i, DOMAIN) for i in range(1, n + 1)}
        wait_for(lambda: want <= {r.get("aor") for r in (self.ctl(self.proxy_sock,
                                                                   "registrations") or {})
                                  .get("registrations", [])}, 20, "Linphones registered")

    def stop_all(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []

    # ---------------------------------------------------------------- rings

    @staticmethod
    def first_frames(path, since_mono):
        """mono_ms of the first `first_frame` event after since_mono, or None."""
        try:
            with open(path) as f:
                for line in f:
                    try:
                        e = json.loads(line)
                    except ValueError:
                        continue
                    if e.get("event") == "first_frame" and e.get("mono_ms", 0) >= since_mono:
                        return e["mono_ms"]
        except OSError:
            pass
        return None

    @staticmethod
    def linphone_first_frames(path, since_wall):
        """Wall times (ms) of liblinphone's first-frame lines after since_wall."""
        out = []
        try:
            with open(path, errors="replace") as f:
                for line in f:
                    if "First video frame decoded successfully" not in line:
                        continue
                    m = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d):(\d{3})", line)
                    if m:
                        t = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
                        ms = t * 1000 + int(m.group(2))
                        if ms >= since_wall - 1:
                            out.append(ms)
        except OSError:
            pass
        return out

    def wait_idle(self):
        wait_for(lambda: (self.ctl(self.door_sock, "status") or {}).get("call") == "idle", 10,
                 "the door idle")
        wait_for(lambda: (self.ctl(self.proxy_sock, "relay") or {}).get("ports_in_use") == 0,
                 10, "the relay empty")

    def rings(self, kind, n):
        """RINGS rings; per ring, each device's press-to-first-frame (ms)."""
        per_ring = []
        for _ in range(self.args.rings):
            time.sleep(0.5)
            t0, w0 = mono_ms(), time.time() * 1000
            self.ctl(self.door_sock, "ring")
            got = {}
            deadline = t0 + 10000
            while len(got) < n and mono_ms() < deadline:
                time.sleep(0.02)
                if kind == "portier":
                    for m in self.monitors:
                        if m["name"] not in got:
                            ff = self.first_frames(m["events"], t0)
                            if ff is not None:
                                got[m["name"]] = ff - t0
                else:
                    for lp in self.linphones:
                        if lp["name"] not in got:
                            ff = self.linphone_first_frames(lp["log"], w0)
                            if ff:
                                got[lp["name"]] = ff[0] - w0
            per_ring.append(got)
            self.ctl(self.door_sock, "hangup")
            self.wait_idle()
        return per_ring

    def cpu_rss(self, seconds=10):
        """monitor1 answers; CPU and RSS of every program over `seconds`."""
        self.ctl(self.door_sock, "ring")
        m1 = self.monitors[0]
        wait_for(lambda: (self.ctl(m1["sock"], "status") or {}).get("call") == "early", 10,
                 "monitor1 ringing")
        time.sleep(0.5)
        self.ctl(m1["sock"], "answer")
        wait_for(lambda: (self.ctl(self.door_sock, "status") or {}).get("call") == "active", 10,
                 "the door answered")
        time.sleep(1.0)
        progs = [("portier-proxy", self.proxy), ("portier-door", self.door),
                 ("portier-monitor (answered)", m1["proc"])]
        if len(self.monitors) > 1:
            progs.append(("portier-monitor (idle after CANCEL)", self.monitors[1]["proc"]))
        t_a = time.monotonic()
        a = [p.cpu_ticks() for _, p in progs]
        time.sleep(seconds)
        b = [p.cpu_ticks() for _, p in progs]
        dt = time.monotonic() - t_a
        rows = [(name, 100.0 * (b[i] - a[i]) / CLK_TCK / dt, p.rss_kb() / 1024.0)
                for i, (name, p) in enumerate(progs)]
        self.ctl(self.door_sock, "hangup")
        self.wait_idle()
        return rows


def pct(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(q / 100.0 * (len(v) - 1)))))
    return v[k]


def summarize(per_ring, n):
    every = [max(r.values()) for r in per_ring if len(r) == n]   # all devices show it
    each = [x for r in per_ring for x in r.values()]
    missing = sum(n - len(r) for r in per_ring)
    return every, each, missing


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--rings", type=int, default=int(os.environ.get("BENCH_RINGS", 20)))
    ap.add_argument("--monitors", default=os.environ.get("BENCH_MONITORS", "1 2 5 10"))
    ap.add_argument("--keyints", default=os.environ.get("BENCH_KEYINTS", "2 10"))
    ap.add_argument("--linphones", default=os.environ.get("BENCH_LINPHONES", "1 2"))
    ap.add_argument("--out", default=os.environ.get("BENCH_OUT"))
    args = ap.parse_args()
    b = Bench(args)
    print("logs in %s" % b.out)
    rows, cpu = [], {}
    try:
        for keyint in [int(k) for k in args.keyints.split()]:
            for always_on in (False, True):
                for n in [int(x) for x in args.monitors.split()]:
                    tag = "k%d-%s-%d" % (keyint, "on" if always_on else "press", n)
                    b.start_proxy(tag)
                    b.start_door(tag, keyint, always_on)
                    b.start_monitors(tag, n)
                    per_ring = b.rings("portier", n)
                    if n == max(int(x) for x in args.monitors.split()) and not always_on \
                            and keyint == 2:
                        cpu[n] = b.cpu_rss()
                    b.stop_all()
                    every, each, missing = summarize(per_ring, n)
                    rows.append(("portier-monitor", n, keyint, always_on, every, each, missing))
                    print("  %-16s n=%-2d keyint=%-2d camera=%-9s every device: p50 %6.0f p95 "
                          "%6.0f ms; each: p50 %6.0f p95 %6.0f; missing %d" % (
                              "portier-monitor", n, keyint, "always-on" if always_on else "by press",
                              pct(every, 50), pct(every, 95), pct(each, 50), pct(each, 95),
                              missing), flush=True)
            if shutil.which("linphone-daemon"):
                for n in [int(x) for x in args.linphones.split()]:
                    tag = "k%d-lp-%d" % (keyint, n)
                    b.start_proxy(tag)
                    b.start_door(tag, keyint, False)
                    b.start_linphones(tag, n)
                    per_ring = b.rings("linphone", n)
                    b.stop_all()
                    every, each, missing = summarize(per_ring, n)
                    rows.append(("linphone-daemon", n, keyint, False, every, each, missing))
                    print("  %-16s n=%-2d keyint=%-2d camera=%-9s every device: p50 %6.0f p95 "
                          "%6.0f ms; each: p50 %6.0f p95 %6.0f; missing %d" % (
                              "linphone-daemon", n, keyint, "by press", pct(every, 50),
                              pct(every, 95), pct(each, 50), pct(each, 95), missing), flush=True)
    finally:
        b.stop_all()
    print("\n| device | ringing | door keyint | door camera | all show it p50 | p95 | "
          "each device p50 | p95 | no frame |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for dev, n, k, on, every, each, missing in rows:
        print("| %s | %d | %d s | %s | %.0f | %.0f | %.0f | %.0f | %d |" % (
            dev, n, k, "always on" if on else "started by the press", pct(every, 50),
            pct(every, 95), pct(each, 50), pct(each, 95), missing))
    for n, r in cpu.items():
        print("\nDuring an answered call (%d monitors registered), 10 s:" % n)
        print("| program | CPU % of a core | RSS MB |\n|---|---:|---:|")
        for name, c, rss in r:
            print("| %s | %.1f | %.1f |" % (name, c, rss))
    return 0


if __name__ == "__main__":
    sys.exit(main())
