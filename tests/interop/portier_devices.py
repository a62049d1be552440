"""portier-door and portier-monitor as peers of an interop test: a config of
the test's own (test pattern, no sound card, control socket in the temp dir),
started in a session of their own, driven and read through portierctl.
Python 3 stdlib only; the interop tests of issue 11 (Kamailio as the
registrar, baresip as a monitor and as a door) share it."""

import json
import os
import subprocess

import linphone_interop as li  # noqa: E402  log, check, wait_for, kill_group


class Device:
    """One portier-door or portier-monitor. `account` is the [account]
    section's proxy, SIP port and password; `sections` the rest of the
    config."""

    def __init__(self, exe, ctl, tmp, name, aor, password, proxy_port, sip_port, sections):
        self.exe, self.ctl, self.name = exe, ctl, name
        self.conf = os.path.join(tmp, name + ".conf")
        self.logfile = os.path.join(tmp, name + ".log")
        self.sock = os.path.join(tmp, name + ".sock")
        self.proc = None
        with open(self.conf, "w") as f:
            f.write("[global]\nlog-level = debug\ncontrol-socket = {s}\n"
                    "[account]\naor = {aor}\npassword = {pw}\n"
                    "proxy = sip:127.0.0.1:{p};transport=udp\n"
                    "bind = sip:127.0.0.1:{b};transport=udp\nregister-expires = 600\n"
                    "{rest}".format(s=self.sock, aor=aor, pw=password, p=proxy_port,
                                    b=sip_port, rest=sections))

    def start(self, wait_registered=True):
        with open(self.logfile, "w") as out:
            self.proc = subprocess.Popen([self.exe, "--config", self.conf],
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        if wait_registered:
            li.wait_for(lambda: (self.status() or {}).get("registered"), 10,
                        "%s registered" % self.name)

    def ctl_json(self, *cmd):
        r = subprocess.run([self.ctl, "--socket", self.sock] + list(cmd), capture_output=True,
                           text=True, timeout=5)
        try:
            return json.loads(r.stdout) if r.returncode in (0, 1) else None
        except ValueError:
            return None

    def status(self):
        if self.proc.poll() is not None:
            raise li.TestFailure("%s exited with status %s" % (self.name, self.proc.returncode))
        return self.ctl_json("status")

    def events(self, kind):
        evs = self.ctl_json("events") or []
        return [e for e in evs if isinstance(e, dict) and e.get("event") == kind]

    def log_text(self):
        return li.read_text(self.logfile)

    def stop(self):
        if self.proc is not None:
            li.kill_group(self.proc)


def door(exe, ctl, tmp, password, proxy_port, sip_port, rtp_ports, target, extra=""):
    return Device(exe, ctl, tmp, "door", "sip:door@%s" % li.DOMAIN, password, proxy_port,
                  sip_port,
                  "[call]\ntarget = {t}\nring-timeout = 30\n"
                  "[events]\ndir = {ev}\n"
                  "[media]\naddress = 127.0.0.1\nport-range = {r}\nvideo-codec = vp8\n"
                  "width = 320\nheight = 240\nframerate = 15\nkeyframe-interval = 1\n"
                  "camera = none\naudio-source = none\naudio-sink = none\n{x}".format(
                      t=target, ev=os.path.join(tmp, "door-events"), r=rtp_ports, x=extra))


def monitor(exe, ctl, tmp, name, user, password, proxy_port, sip_port, rtp_ports, extra=""):
    return Device(exe, ctl, tmp, name, "sip:%s@%s" % (user, li.DOMAIN), password, proxy_port,
                  sip_port,
                  "[media]\naddress = 127.0.0.1\nport-range = {r}\nmicrophone = test\n"
                  "speaker = none\n[doors]\nfront = sip:door@{d}\n{x}".format(
                      r=rtp_ports, d=li.DOMAIN, x=extra))
