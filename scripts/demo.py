#!/usr/bin/env python3
"""The in-house intercom on this machine: portier-proxy, portier-door (its test
pattern when there is no camera) and two portier-monitors, with the shipped
configs of config/ (paths moved under build/demo, so nothing needs root). As
shipped, the devices reach the proxy over SIP/TLS and every call's audio and
video are SRTP: the demo keeps its own CA and proxy certificate in
build/demo/tls (made once, again when missing or about to expire).

It presses the door's button, prints what happened and when (ring, the first
picture on each monitor with its delay since the press, the answer, the door
opening, the hang-up), saves the picture each monitor showed as PNG, and
leaves the system running until Ctrl-C (--once: stop after the one ring).
With a display (DISPLAY or WAYLAND_DISPLAY set) the monitors open their
windows instead of running headless.

    scripts/demo.py --build build [--once]

Python 3 stdlib only. scripts/demo.sh installs, builds and runs this.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

from portier_py import pki
from portier_py.daemons import Daemon, Failure, port_busy, wait_for

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ini_set(text, changes):
    """Sets `key = value` in [section] of an INI text, {(section, key): value};
    keys not in the text are added at the end of their section."""
    out, section, done = [], None, set()

    def flush(sec):
        for (s, k), v in changes.items():
            if s == sec and (s, k) not in done:
                out.append("%s = %s" % (k, v))
                done.add((s, k))

    for line in text.splitlines():
        m = re.match(r"^\s*\[([^\]]+)\]", line)
        if m:
            flush(section)
            section = m.group(1).strip()
        else:
            m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*=", line)
            if m and (section, m.group(1)) in changes:
                key = m.group(1)
                line = "%s = %s" % (key, changes[(section, key)])
                done.add((section, key))
        out.append(line)
    flush(section)
    for (s, k), v in changes.items():
        if (s, k) not in done:
            out += ["[%s]" % s, "%s = %s" % (k, v)]
    return "\n".join(out) + "\n"


class Demo:
    def __init__(self, args):
        self.build = os.path.abspath(args.build)
        self.dir = os.path.join(self.build, "demo")
        os.makedirs(self.dir, exist_ok=True)
        self.window = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        self.programs = []
        self.timeline = []  # (mono_ms, who, what)

    def program(self, name, exe, conf_text):
        sig = os.path.join(self.build, "signaling")
        return Daemon(os.path.join(sig, exe), os.path.join(sig, "portierctl"), self.dir, name,
                      conf_text)

    def conf(self, name):
        with open(os.path.join(TOP, "config", name)) as f:
            return f.read()

    def setup(self):
        d = self.dir
        for port in (5061,):
            if port_busy(port):
                raise Failure("127.0.0.1:%d is in use (another SIP program?): the demo's "
                                "proxy needs it" % port)
        # The name the devices check the proxy's certificate against is the
        # host of their proxy URI (sips:NAME:PORT;maddr=ADDRESS).
        m = re.search(r"(?m)^proxy\s*=\s*sips:([^:;>\s]+)", self.conf("door.conf"))
        if not m:
            raise Failure("config/door.conf: no sips: proxy URI")
        self.tls = pki.home(d, m.group(1))
        self.proxy = self.program("proxy", "portier-proxy", ini_set(self.conf("proxy.conf"), {
            ("global", "state-directory"): d + "/proxy-state",
            ("global", "control-socket"): d + "/proxy.sock",
            ("global", "tls-certificates-file"): self.tls.path("proxy.pem"),
            ("global", "tls-certificates-private-key"): self.tls.path("proxy.key"),
            ("module::Authentication", "file-path"): os.path.join(TOP, "config", "users.conf"),
        }))
        ca = {("account", "tls-certificates-ca-file"): self.tls.path("ca.pem")}
        self.door = self.program("door", "portier-door", ini_set(self.conf("door.conf"), {
            **ca,
            ("global", "control-socket"): d + "/door.sock",
            ("events", "dir"): d + "/door-events",
            # no sound card needed; a camera is used when there is one
            ("media", "audio-source"): "none",
            ("media", "audio-sink"): "none",
        }))
        self.monitors = []
        for name, conf in (("monitor1", "monitor.conf"), ("monitor2", "monitor2.conf")):
            self.monitors.append(self.program(name, "portier-monitor", ini_set(self.conf(conf), {
                **ca,
                ("global", "control-socket"): "%s/%s.sock" % (d, name),
                ("global", "events-file"): "%s/%s-events.jsonl" % (d, name),
                ("media", "microphone"): "test",
                ("media", "speaker"): "none",
                ("ui", "mode"): "window" if self.window else "headless",
            })))
        self.programs = [self.proxy, self.door] + self.monitors

    def start(self):
        for p in self.programs:
            error = p.check_config()
            if error:
                raise Failure("%s: %s" % (p.name, error))
        self.proxy.start()
        wait_for(lambda: self.proxy.ctl("ping"), 10, "portier-proxy")
        self.door.start()
        for m in self.monitors:
            m.start()
        wait_for(lambda: (self.door.ctl("status") or {}).get("registered"), 10,
                 "the door to register")
        for m in self.monitors:
            wait_for(lambda: (m.ctl("status") or {}).get("registered"), 10,
                     "%s to register" % m.name)
        if self.window:
            self.place_windows()
        for t in (self.proxy.ctl("stats") or {}).get("tls", []):
            print("proxy: SIP over TLS on %s, certificate %s until %s" % (
                t.get("transport"), t.get("subject"), t.get("not_after")))
        regs = (self.proxy.ctl("registrations") or {}).get("registrations", [])
        print("registered: %s" % ", ".join("%s (%s)" % (r.get("aor"), r.get("received", "")
                                                         .split(":", 1)[0])
                                           for r in sorted(regs, key=lambda r: r.get("aor"))))

    def place_windows(self):
        """Side by side, when xdotool is there: without a window manager (a bare
        X server, Xvfb) both windows would open on top of each other at 0,0."""
        if not shutil.which("xdotool"):
            return
        x = 0
        for m in self.monitors:
            w = wait_for(lambda: (m.ctl("window") or {}).get("mapped") and m.ctl("window"), 10,
                         "%s's window" % m.name)
            aor = (m.ctl("status") or {}).get("aor", "")
            found = subprocess.run(["xdotool", "search", "--name", re.escape(aor)],
                                   capture_output=True, text=True, timeout=5).stdout.split()
            if found:
                subprocess.run(["xdotool", "windowmove", found[0], str(x), "0"],
                               capture_output=True, timeout=5)
            x += w["window"]["w"] + 10

    def mark(self, who, what, mono_ms=None, wall_ms=None):
        """One line of the timeline, at a time on CLOCK_MONOTONIC (the door's
        event lines) or on the wall clock (the monitors' first frame), or now."""
        if mono_ms is not None:
            t = mono_ms
        elif wall_ms is not None:
            t = wall_ms - self.wall0 + self.t0
        else:
            t = time.monotonic() * 1000
        self.timeline.append((t, who, what))
        print("  %+7.0f ms  %-9s %s" % (t - self.t0, who, what), flush=True)

    def ring(self):
        print("\npressing the door's button (portierctl ring)\n", flush=True)
        self.t0 = time.monotonic() * 1000
        self.wall0 = time.time() * 1000
        self.mark("door", "button pressed")
        if not self.door.ctl("ring"):
            raise Failure("the door did not take the ring")
        # Wait until every monitor shows the visitor, then put their own event
        # lines (ringing, first decoded frame) on the timeline, in order.
        wait_for(lambda: all((m.ctl("status") or {}).get("frames_decoded", 0) > 0
                             for m in self.monitors), 15, "a picture on every monitor")
        lines = []
        for m in self.monitors:
            st = m.ctl("status") or {}
            for e in m.ctl("events") or []:
                if e.get("wall_ms", 0) < self.wall0 or e.get("event") not in ("ringing",
                                                                              "first_frame"):
                    continue
                what = ("ringing (%s)" % st.get("peer", "") if e["event"] == "ringing" else
                        "first picture of the visitor (%s, %dx%d)" % (
                            st.get("video_codec"), st.get("width", 0), st.get("height", 0)))
                lines.append((e["wall_ms"], m.name, what))
        for wall_ms, who, what in sorted(lines):
            self.mark(who, what, wall_ms=wall_ms)
        time.sleep(1.0)  # a second of video, then keep what each monitor shows
        for m in self.monitors:
            png = os.path.join(self.dir, m.name + ".png")
            if m.ctl("snapshot", png) is not None and os.path.exists(png):
                self.mark(m.name, "snapshot saved: %s" % os.path.relpath(png, TOP))
        m1, m2 = self.monitors
        m1.ctl("answer")
        self.mark(m1.name, "answered")
        wait_for(lambda: (m2.ctl("status") or {}).get("call") in ("ended", "idle"), 10,
                 "%s to stop ringing" % m2.name)
        self.mark(m2.name, "stopped ringing: %s" % (m2.ctl("status") or {}).get("reason"))
        st = m1.ctl("status") or {}
        self.mark(m1.name, "media encrypted: audio %s, video %s" % (
            st.get("audio_srtp") or "NOT ENCRYPTED", st.get("video_srtp") or "NOT ENCRYPTED"))
        time.sleep(1.0)
        m1.ctl("action", "open-door")
        self.mark(m1.name, "open door (the code as RFC 4733 DTMF)")
        ev = wait_for(lambda: [e for e in (self.door.ctl("events") or [])
                               if e.get("event") == "action"], 10, "the door to open")
        self.mark("door", "opened: %s" % ev[-1].get("details"), ev[-1].get("mono_ms"))
        time.sleep(1.0)
        m1.ctl("hangup")
        self.mark(m1.name, "hung up")
        wait_for(lambda: (self.door.ctl("status") or {}).get("call") == "idle", 10,
                 "the door to be idle")
        self.mark("door", "idle again")
        relay = self.proxy.ctl("relay") or {}
        print("\nrelay ports in use after the call: %s" % relay.get("ports_in_use"))

    def stop(self):
        for p in reversed(self.programs):
            p.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--once", action="store_true", help="stop after one ring")
    args = ap.parse_args()
    demo = Demo(args)
    try:
        demo.setup()
        demo.start()
        print("portier is running in %s: proxy sips:127.0.0.1:5061 (TLS), the door, monitor1, "
              "monitor2" % demo.dir)
        demo.ring()
        if args.once:
            return 0
        print("\nThe system keeps running. Ring again with\n"
              "  %s/signaling/portierctl --socket %s ring\n"
              "look with `... --socket %s/monitor1.sock status`; Ctrl-C stops everything."
              % (demo.build, demo.door.sock, demo.dir))
        while all(p.proc.poll() is None for p in demo.programs):
            time.sleep(0.5)
        print("a program stopped; see the logs in %s" % demo.dir)
        return 1
    except Failure as e:
        print("demo: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping")
        return 0
    finally:
        demo.stop()


if __name__ == "__main__":
    sys.exit(main())
