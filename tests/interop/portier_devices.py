"""portier-door and portier-monitor as peers of an interop test: a config of
the test's own (test pattern, no sound card, control socket in the temp dir),
started in a session of their own, driven and read through portierctl.
Python 3 stdlib only; the interop tests of issue 11 (Kamailio as the
registrar, baresip as a monitor and as a door) share it."""

import os

import linphone_interop as li  # noqa: E402  log, check, wait_for, stop_group, Daemon


class Device(li.Daemon):
    """One portier-door or portier-monitor. `account` is the [account]
    section's proxy, SIP port and password; `sections` the rest of the
    config."""

    def __init__(self, exe, ctl, tmp, name, aor, password, proxy_port, sip_port, sections,
                 account_extra=""):
        super().__init__(exe, ctl, tmp, name)
        self.write_conf(
            "[global]\nlog-level = debug\ncontrol-socket = {s}\n"
            "[account]\naor = {aor}\npassword = {pw}\n"
            "proxy = sip:127.0.0.1:{p};transport=udp\n"
            "bind = sip:127.0.0.1:{b};transport=udp\nregister-expires = 600\n"
            "{acc}{rest}".format(s=self.sock, aor=aor, pw=password, p=proxy_port,
                                 b=sip_port, acc=account_extra, rest=sections))

    def start(self, wait_registered=True):
        super().start()
        if wait_registered:
            li.wait_for(lambda: self.status().get("registered"), 10,
                        "%s registered" % self.name)


def door(exe, ctl, tmp, password, proxy_port, sip_port, rtp_ports, target, extra="",
         account_extra=""):
    return Device(exe, ctl, tmp, "door", "sip:door@%s" % li.DOMAIN, password, proxy_port,
                  sip_port,
                  "[call]\ntarget = {t}\nring-timeout = 30\n"
                  "[events]\ndir = {ev}\n"
                  "[media]\naddress = 127.0.0.1\nport-range = {r}\nvideo-codec = vp8\n"
                  "width = 320\nheight = 240\nframerate = 15\nkeyframe-interval = 1\n"
                  "camera = none\naudio-source = none\naudio-sink = none\n{x}".format(
                      t=target, ev=os.path.join(tmp, "door-events"), r=rtp_ports, x=extra),
                  account_extra)


def monitor(exe, ctl, tmp, name, user, password, proxy_port, sip_port, rtp_ports, extra="",
            account_extra=""):
    return Device(exe, ctl, tmp, name, "sip:%s@%s" % (user, li.DOMAIN), password, proxy_port,
                  sip_port,
                  "[media]\naddress = 127.0.0.1\nport-range = {r}\nmicrophone = test\n"
                  "speaker = none\n[doors]\nfront = sip:door@{d}\n{x}".format(
                      r=rtp_ports, d=li.DOMAIN, x=extra),
                  account_extra)


def md5_proxy(exe, ctl, tmp):
    """portier-proxy (linphone_interop.Proxy, li.PROXY_PORT, li.USERS) with
    `available-algorithms = MD5`: the setting for a home with baresip 1.0,
    which fails on any other challenge."""
    proxy = li.Proxy(exe, ctl, tmp)
    with open(proxy.conf) as f:
        text = f.read()
    with open(proxy.conf, "w") as f:
        f.write(text.replace("available-algorithms = MD5 SHA-256", "available-algorithms = MD5"))
    return proxy


def run_test(run, args, ports, prefix):
    """Runs run(args, tmp, procs) within the global budget; every process in
    procs (objects with stop() and logfile) is stopped at the end, pass or
    fail; on failure the tail of each log is printed. Returns the exit code."""
    import shutil
    import signal
    import sys
    import tempfile
    import traceback
    busy = [p for p in ports if li.port_busy(p)]
    if busy:
        print("FAIL: ports already in use: %s (another run of this test?)" % busy)
        return 1
    tmp = tempfile.mkdtemp(prefix=prefix)
    procs = {}
    signal.signal(signal.SIGALRM, li.on_alarm)
    signal.alarm(int(li.TOTAL_BUDGET) + 2)
    rc = 1
    try:
        run(args, tmp, procs)
        rc = 0
        li.log("PASS")
    except Exception as e:  # report whatever went wrong, then clean up
        if not isinstance(e, li.TestFailure):
            traceback.print_exc()
        li.log("FAIL: %s" % e)
        for name, p in procs.items():
            print("---- %s log (tail) %s" % (name, p.logfile))
            sys.stdout.writelines(li.tail(p.logfile, 30))
    finally:
        signal.alarm(0)
        for p in reversed(list(procs.values())):
            try:
                p.stop()
            except Exception as e:  # keep stopping the others
                li.log("stopping: %s" % e)
        if args.keep or rc != 0:
            li.log("files in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc
