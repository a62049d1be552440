"""The case's environment: its temp dir and port block, the daemons it starts (proxy,
door, monitors, decoders), sipp runs, and the clean-up that stops every one of them."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from portier_sip.base import (DOMAIN, DOOR_CODE, GROUP, LOCAL, Ports, Proc, SCENARIOS,
                              TestFailure, USERS, WRONG_PASSWORD, check, log, port_bound, tail)
from portier_sip.sipp import Sipp

# The configs are scripts/portier_py's, as the demo's neighbours write them.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "scripts"))
from portier_py import configs  # noqa: E402


class Env:
    def __init__(self, args, case, index, ncases):
        self.args = args
        self.case = case
        self.ports = Ports(index, args.base_port, ncases)
        self.dir = tempfile.mkdtemp(prefix="portier-sip-%s-" % case)
        self.state_dir = os.path.join(self.dir, "state")
        os.makedirs(self.state_dir)
        self.socket = os.path.join(self.dir, "proxy.sock")
        self.proxy_log = os.path.join(self.dir, "proxy.log")
        self.procs = []
        self.proxy = None
        self.proxy_starts = 0
        self.sipps = []
        self.cseq = {}  # (user, port) -> last CSeq used by register runs
        self.fork_timeout = 60
        self.min_expires = 60
        self.relay_extra = ""  # more [module::MediaRelay] lines
        self.global_extra = ""  # more [global] lines for the proxy (issue 11: transport)
        self.algorithms = "MD5 SHA-256"
        self.proxy_environ = None  # the proxy's environment (None: ours)
        self.relay_enabled = True
        self.monitors = {}
        log("case %s: dir %s, ports %d-%d" % (case, self.dir, self.ports.base,
                                              self.ports.base + Ports.BLOCK - 1))

    # ---- files -----------------------------------------------------------
    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def write_config(self):
        users = configs.users_file(os.path.join(self.dir, "users.conf"), USERS, DOMAIN)
        relay = "%d-%d" % (self.ports.relay_first, self.ports.relay_first + 99)
        cfg = configs.proxy_conf(LOCAL, self.ports.proxy, self.state_dir, self.socket, users,
                                 relay, DOMAIN, GROUP, more={
            "global": {"log-output": "stderr"},
            "module::Registrar": {"static-records-file": "", "min-expires": self.min_expires,
                                  "max-expires": 3600},
            "module::Authentication": {"available-algorithms": self.algorithms,
                                       "nonce-expires": 3600},
            "module::Router": {"call-fork-timeout": self.fork_timeout},
            "module::MediaRelay": {"enabled": "true" if self.relay_enabled else "false",
                                   "sdp-address": LOCAL}},
            text="[global]\n%s[module::MediaRelay]\n%s" % (self.global_extra, self.relay_extra))
        return self.write("proxy.ini", cfg)

    # ---- proxy -----------------------------------------------------------
    def start_proxy(self):
        cfg = self.write_config()
        self.proxy_starts += 1
        with open(self.proxy_log, "ab") as f:
            f.write(("==== harness: proxy start #%d ====\n" % self.proxy_starts).encode())
        argv = [self.args.proxy, "--config", cfg]
        log("start: %s" % " ".join(argv))
        # One log across restarts.
        proc = Proc("proxy", argv, self.proxy_log, self.dir, append=True, env=self.proxy_environ)
        self.proxy = proc
        self.procs.append(proc)
        deadline = time.time() + 10
        last = ""
        while time.time() < deadline:
            if not proc.running():
                raise TestFailure("portier-proxy exited at start with %s" % proc.popen.returncode)
            if port_bound(self.ports.proxy, "udp"):
                r = self.ctl_raw("ping")
                last = r
                if r is not None and r[0] == 0:
                    try:
                        if json.loads(r[1]).get("ok") is True:
                            log("proxy up (pid %d)" % proc.pid)
                            return proc
                    except ValueError:
                        pass
            time.sleep(0.1)
        raise TestFailure("portier-proxy not ready after 10s (last ping: %r)" % (last,))

    def proxy_log_text(self):
        try:
            with open(self.proxy_log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop_proxy(self, expect_clean=True):
        proc = self.proxy
        log("SIGTERM to proxy pid %d" % proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        rc = proc.wait(10)
        if rc is None:
            proc.stop(signal.SIGKILL)
            raise TestFailure("portier-proxy did not exit within 10s of SIGTERM")
        proc.out.close()
        if expect_clean:
            check(rc == 0, "portier-proxy exited with %s after SIGTERM (expected 0)" % rc)
        return rc

    def proxy_alive(self):
        return self.proxy is not None and self.proxy.running()

    # ---- portier-door ----------------------------------------------------
    @property
    def door_socket(self):
        return os.path.join(self.dir, "door.sock")

    def start_door(self, video_codec="h264", auto_answer="", extra="", bind_params=";transport=udp",
                   account_extra=""):
        """Starts portier-door registered as door@home.example through our
        proxy (test pattern, no sound card) and waits for its registration."""
        check(self.args.door, "this case needs --door")
        media_first = 60000 + (self.ports.base - 21000) % 5000
        account = configs.account("sip:door@" + DOMAIN, USERS["door"],
                                  "%s:%d" % (LOCAL, self.ports.proxy), "")
        account["bind"] = "sip:%s:%d%s" % (LOCAL, self.ports.sip(8), bind_params)
        cfg = configs.door_conf(
            self.door_socket, account, "sip:%s@%s" % (GROUP, DOMAIN), LOCAL,
            "%d-%d" % (media_first, media_first + 9), os.path.join(self.dir, "door-events"),
            more={"call": {"auto-answer": auto_answer},
                  "media": {"video-codec": video_codec, "keyframe-interval": 2}},
            # extra: more [media] keys, or sections
            text="[account]\n%s\n[media]\n%s" % (account_extra, extra))
        path = self.write("door.conf", cfg)
        self.door_log = os.path.join(self.dir, "door.log")
        proc = Proc("door", [self.args.door, "--config", path], self.door_log, self.dir)
        self.procs.append(proc)
        self.door_proc = proc
        deadline = time.time() + 15
        while time.time() < deadline:
            check(proc.running(), "portier-door exited at start: %s" % self.door_log_text()[-2000:])
            st = self.door_ctl_raw("status")
            if st and st.get("registered"):
                log("door registered (pid %d)" % proc.pid)
                return proc
            time.sleep(0.1)
        raise TestFailure("portier-door did not register within 15 s: %s"
                          % self.door_log_text()[-2000:])

    def door_log_text(self):
        try:
            with open(self.door_log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    def door_ctl_raw(self, *cmd):
        try:
            r = subprocess.run([self.args.ctl, "--socket", self.door_socket] + list(cmd),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
            return json.loads(r.stdout) if r.returncode == 0 else None
        except (subprocess.TimeoutExpired, OSError, ValueError):
            return None

    def door_ctl(self, *cmd):
        r = self.door_ctl_raw(*cmd)
        check(r is not None, "portierctl --socket door.sock %s failed" % " ".join(cmd))
        return r

    def door_events(self, kind=None):
        evs = self.door_ctl("events")
        return [e for e in evs if kind is None or e.get("event") == kind]

    def wait_door_event(self, kind, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            evs = self.door_events(kind)
            if evs:
                return evs
            time.sleep(0.1)
        raise TestFailure("the door never reported %s; events: %s"
                          % (kind, json.dumps(self.door_events())[-1500:]))

    def door_actions(self, at_least, timeout=5):
        """The details of the door's action events once there are at least
        `at_least` of them (or the timeout is over: the caller checks them)."""
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.door_events("action")) < at_least:
            time.sleep(0.1)
        return [e["details"] for e in self.door_events("action")]

    def send_code_message(self, name, slot, rows):
        """sipp sends the door a MESSAGE with a code per row [user, password,
        domain, code] through the proxy (RFC 3428, digest on), and must succeed."""
        s = self.sipp(name, "message_code.xml", slot, rows, service="door",
                      auth_uri="door@%s" % DOMAIN)
        s.wait()
        s.expect_ok()

    # ---- portier-monitor -------------------------------------------------
    def start_monitor(self, name, user, slot, index, extra="", wait_registered=True,
                      trusted="", environ=None, account_extra="", transport="udp",
                      account=None):
        """Starts portier-monitor `name` registered as user@home.example through
        our proxy (headless, test tone as microphone, no speaker). Its RTP
        ports are 20 of the case's own, after the door's (index 0 or 1).
        account: an [account] of its own instead (a phone at another proxy)."""
        check(self.args.monitor, "this case needs --monitor")
        media_first = 60000 + (self.ports.base - 21000) % 5000 + 20 + 20 * index
        if account is None:
            account = configs.account("sip:%s@%s" % (user, DOMAIN), USERS[user],
                                      "%s:%d" % (LOCAL, self.ports.proxy),
                                      "%s:%d" % (LOCAL, self.ports.sip(slot)), transport)
        account["trusted-hosts"] = trusted
        cfg = configs.monitor_conf(
            self.monitor_socket(name), account, LOCAL, "%d-%d" % (media_first, media_first + 19),
            DOMAIN, events_file=self.monitor_events_file(name),
            more={"actions": {"method": "dtmf", "open-door": DOOR_CODE}},
            text="[account]\n%s\n%s" % (account_extra, extra))
        path = self.write(name + ".conf", cfg)
        out = os.path.join(self.dir, name + ".log")
        proc = Proc(name, [self.args.monitor, "--config", path], out, self.dir, env=environ)
        self.procs.append(proc)
        self.monitors[name] = proc
        deadline = time.time() + 15
        while time.time() < deadline:
            check(proc.running(), "portier-monitor %s exited at start: %s"
                  % (name, self.monitor_log_text(name)[-2000:]))
            st = self.mon_ctl_raw(name, "status")
            if st and (st.get("registered") or not wait_registered):
                log("%s %s as %s (pid %d)" % (name, "registered" if st.get("registered")
                                               else "started", user, proc.pid))
                return proc
            time.sleep(0.1)
        raise TestFailure("portier-monitor %s did not register within 15 s: %s"
                          % (name, self.monitor_log_text(name)[-2000:]))

    def monitor_socket(self, name):
        return os.path.join(self.dir, name + ".sock")

    def monitor_events_file(self, name):
        return os.path.join(self.dir, name + "-events.jsonl")

    def monitor_log_text(self, name):
        try:
            with open(os.path.join(self.dir, name + ".log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def mon_ctl_raw(self, name, *cmd):
        """The monitor's JSON reply (also for refusals, where portierctl exits 1)."""
        try:
            r = subprocess.run([self.args.ctl, "--socket", self.monitor_socket(name)] + list(cmd),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
            return json.loads(r.stdout) if r.returncode in (0, 1) else None
        except (subprocess.TimeoutExpired, OSError, ValueError):
            return None

    def mon_ctl(self, name, *cmd):
        r = self.mon_ctl_raw(name, *cmd)
        check(r is not None, "portierctl --socket %s.sock %s failed" % (name, " ".join(cmd)))
        return r

    def wait_monitor(self, name, pred, what, timeout=10):
        deadline = time.time() + timeout
        st = None
        while time.time() < deadline:
            st = self.mon_ctl(name, "status")
            if pred(st):
                return st
            time.sleep(0.1)
        raise TestFailure("%s: %s not reached within %ds; status %s"
                          % (name, what, timeout, json.dumps(st)))

    def monitor_events(self, name):
        """The monitor's events file, one JSON object per line."""
        try:
            with open(self.monitor_events_file(name)) as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    # ---- portierctl ------------------------------------------------------
    def ctl_raw(self, *cmd):
        try:
            r = subprocess.run([self.args.ctl, "--socket", self.socket] + list(cmd),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
        except subprocess.TimeoutExpired:
            return None
        except OSError as e:  # e.g. the binary is being rebuilt right now
            return (127, "", "cannot run %s: %s" % (self.args.ctl, e))
        return (r.returncode, r.stdout.decode("utf-8", "replace"),
                r.stderr.decode("utf-8", "replace"))

    def ctl(self, *cmd):
        r = self.ctl_raw(*cmd)
        check(r is not None, "portierctl %s timed out" % " ".join(cmd))
        check(r[0] == 0, "portierctl %s exited %d: %s %s" % (" ".join(cmd), r[0], r[1], r[2]))
        try:
            return json.loads(r[1])
        except ValueError:
            raise TestFailure("portierctl %s printed no JSON: %r" % (" ".join(cmd), r[1]))

    def registrations(self):
        regs = self.ctl("registrations").get("registrations")
        check(isinstance(regs, list), "portierctl registrations: no list")
        return regs

    def bindings_for(self, user):
        aor = "sip:%s@%s" % (user, DOMAIN)
        return [r for r in self.registrations() if r.get("aor") == aor]

    def calls(self):
        calls = self.ctl("calls").get("calls")
        check(isinstance(calls, list), "portierctl calls: no list")
        return calls

    # ---- sipp ------------------------------------------------------------
    def sipp(self, name, scenario, slot, fields, *, remote=True, service=None,
             auth_uri=None, call_id=None, transport="u1", timeout=20, extra=(), to=None):
        """Start sipp (does not wait). fields: list of rows for -inf. to:
        "host:port" to send to instead of the proxy."""
        csv = self.write(name + ".csv", "SEQUENTIAL\n" + "".join(
            ";".join(str(x) for x in row) + ";\n" for row in fields))
        sipp = Sipp(self, name, None, timeout, scenario)
        argv = [self.args.sipp, "-sf", os.path.join(SCENARIOS, scenario)]
        if to:
            argv.append(to)
        elif remote:
            argv.append("%s:%d" % (LOCAL, self.ports.proxy))
        argv += ["-i", LOCAL, "-p", str(self.ports.sip(slot)), "-t", transport,
                 "-m", str(len(fields) if remote else 1),
                 "-timeout", "%ds" % timeout, "-timeout_error",
                 "-nostdin", "-cp", str(self.ports.control(slot)),
                 "-mp", str(self.ports.media(slot)),
                 "-inf", csv,
                 "-trace_msg", "-message_file", sipp.msg_log,
                 "-trace_err", "-error_file", sipp.err_log]
        if service:
            argv += ["-s", service]
        if auth_uri:
            argv += ["-auth_uri", auth_uri]
        if call_id:
            argv += ["-cid_str", call_id]
        argv += list(extra)
        if self.args.verbose:
            log("start: %s" % " ".join(argv))
        sipp.proc = Proc(name, argv, sipp.out_log, self.dir)
        self.procs.append(sipp.proc)
        self.sipps.append(sipp)
        return sipp

    def uas(self, name, scenario, slot, timeout=30, fields=None, auth_uri=None):
        s = self.sipp(name, scenario, slot, fields or [["x"]], remote=False, timeout=timeout,
                      auth_uri=auth_uri)
        deadline = time.time() + 5
        while time.time() < deadline:
            if port_bound(self.ports.sip(slot), "udp"):
                return s
            if not s.proc.running():
                break
            time.sleep(0.05)
        s.wait()
        raise TestFailure("sipp %s did not bind port %d" % (name, self.ports.sip(slot)))

    def register(self, user, slot, expires=3600, password=None, scenario="register.xml",
                 name=None):
        """REGISTER user with Contact 127.0.0.1:<slot port>; waits. The Call-ID is
        the same for every run of one device, the CSeq grows (RFC 3261 10.2)."""
        port = self.ports.sip(slot)
        key = (user, port)
        c = self.cseq.get(key, 0)
        self.cseq[key] = c + 2
        name = name or "reg_%s_%d_%d" % (user, expires, c // 2)
        s = self.sipp(name, scenario, slot,
                      [[user, password if password is not None else USERS.get(user, "x"),
                        expires, c + 1, c + 2]],
                      auth_uri=DOMAIN, call_id="reg-%s-%d@%s" % (user, port, LOCAL), timeout=10)
        s.wait()
        return s

    def door(self, name, scenario, target, slot, domain=DOMAIN, timeout=30, user="door"):
        return self.sipp(name, scenario, slot, [[user, USERS[user], domain]], service=target,
                         auth_uri="%s@%s" % (target, domain), timeout=timeout)

    # ---- reporting -------------------------------------------------------
    def dump_sipp(self, s):
        sys.stdout.write("\n---- sipp %s (%s) rc=%s ----\n" % (s.name, s.scenario, s.rc))
        for path, n in ((s.err_log, 80), (s.out_log, 25)):
            if os.path.exists(path) and os.path.getsize(path):
                sys.stdout.write("-- %s --\n%s\n" % (os.path.basename(path), tail(path, n)))
        sys.stdout.write("-- last messages (%s) --\n" % os.path.basename(s.msg_log))
        for m in s.messages()[-6:]:
            sys.stdout.write(">> %s %s: %s\n" % (m.stamp, m.direction, m.first))
        sys.stdout.flush()

    def dump_failure(self):
        sys.stdout.write("\n======== proxy log tail (%s) ========\n" % self.proxy_log)
        text = self.proxy_log_text().splitlines()
        sys.stdout.write("\n".join(text[-80:]) + "\n")
        for s in self.sipps:
            bad = s.rc not in (0, None) or (os.path.exists(s.err_log) and
                                           os.path.getsize(s.err_log))
            if bad:
                self.dump_sipp(s)
        sys.stdout.flush()

    def cleanup(self):
        """Stops every process; returns what went wrong as a portier daemon
        stopped: one that was still running must end with status 0 on SIGTERM.
        A crash on the way out (an assertion, a use after free in a destructor)
        is otherwise seen by nobody. One that needed SIGKILL is only logged: on a
        loaded machine a slow teardown is not a defect of the case."""
        problems = []
        for p in reversed(self.procs):
            daemon = os.path.basename(p.argv[0]).startswith("portier-")
            was_running = p.running()
            try:
                code = p.stop()
            except Exception as e:  # keep going: every process must be stopped
                log("stopping %s: %s" % (p.name, e))
                continue
            if not (daemon and was_running) or code == 0:
                continue
            if code == -signal.SIGKILL:
                log("%s did not stop within 3 s of SIGTERM: killed" % p.name)
            else:
                problems.append("%s exited with %s on SIGTERM" % (
                    p.name, "signal %d" % -code if code < 0 else "status %d" % code))
        return problems

    def assert_no_secrets(self):
        text = self.proxy_log_text()
        leaked = [p for p in list(USERS.values()) + [WRONG_PASSWORD] if p in text]
        check(not leaked, "password(s) %s appear in the proxy log" % leaked)

    def wait_relay_free(self, within=5.0):
        """Every relay port is freed once the calls are over (portierctl relay)."""
        deadline = time.time() + within
        relay = None
        while time.time() < deadline:
            relay = self.ctl("relay")
            if relay.get("ports_in_use") == 0 and not relay.get("calls"):
                return
            time.sleep(0.2)
        raise TestFailure("relay ports still in use %.0fs after the call: %s"
                          % (within, json.dumps(relay)))

    def wait_no_calls(self, within=5.0):
        deadline = time.time() + within
        calls = None
        while time.time() < deadline:
            calls = self.calls()
            if not calls:
                return
            time.sleep(0.2)
        raise TestFailure("portierctl calls still lists %d call(s) %.0fs after the call ended: %s"
                          % (len(calls), within, json.dumps(calls)[:500]))
