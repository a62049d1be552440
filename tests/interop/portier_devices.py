"""portier-door and portier-monitor as peers of an interop test: a config of
the test's own (test pattern, no sound card, control socket in the temp dir),
started in a session of their own, driven and read through portierctl.
Python 3 stdlib only; the interop tests of issue 11 (Kamailio as the
registrar, baresip as a monitor and as a door) share it."""

import argparse
import os
import sys

import linphone_interop as li  # noqa: E402  log, check, wait_for, stop_group, Daemon
from portier_py import configs  # noqa: E402  (linphone_interop put scripts/ on the path)


class Device(li.Daemon):
    """One portier-door or portier-monitor: its config is conf(sock)."""

    def __init__(self, exe, ctl, tmp, name, conf):
        super().__init__(exe, ctl, tmp, name)
        self.write_conf(conf(self.sock))

    def start(self, wait_registered=True):
        super().start()
        if wait_registered:
            li.wait_for(lambda: self.status().get("registered"), 10,
                        "%s registered" % self.name)


def _account(user, password, proxy_port, sip_port, account_extra):
    return (configs.account("sip:%s@%s" % (user, li.DOMAIN), password, "127.0.0.1:%d" % proxy_port,
                            "127.0.0.1:%d" % sip_port),
            "[account]\n" + account_extra if account_extra else "")


def door(exe, ctl, tmp, password, proxy_port, sip_port, rtp_ports, target, extra="",
         account_extra=""):
    account, text = _account("door", password, proxy_port, sip_port, account_extra)
    return Device(exe, ctl, tmp, "door", lambda sock: configs.door_conf(
        sock, account, target, "127.0.0.1", rtp_ports, os.path.join(tmp, "door-events"),
        more={"media": {"keyframe-interval": 1}}, text=text + extra))


def monitor(exe, ctl, tmp, name, user, password, proxy_port, sip_port, rtp_ports, extra="",
            account_extra=""):
    account, text = _account(user, password, proxy_port, sip_port, account_extra)
    return Device(exe, ctl, tmp, name, lambda sock: configs.monitor_conf(
        sock, account, "127.0.0.1", rtp_ports, li.DOMAIN, text=text + extra))


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
    busy = [p for p in ports if li.port_busy(p)]
    if busy:
        print("FAIL: ports already in use: %s (another run of this test?)" % busy)
        return 1
    procs = {}

    def report(tmp):
        for name, p in procs.items():
            print("---- %s log (tail) %s" % (name, p.logfile))
            sys.stdout.writelines(li.tail(p.logfile, 30))

    return li.run_bounded(prefix, args.keep, lambda tmp: run(args, tmp, procs), report,
                          lambda: li.stop_all(procs))


PROGRAMS = {"proxy": "portier-proxy", "ctl": "portierctl", "door": "portier-door",
            "monitor": "portier-monitor"}


def main(doc, run, programs, ports, prefix, peer_found, missing, peer_option=None):
    """The command line of a test of portier's `programs` (keys of PROGRAMS)
    with one peer: --NAME for each program, `peer_option` (the peer's binary,
    default its name), --keep; then run_test(run, ...), or SKIP with the
    text `missing` when peer_found(args) is false."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in programs:
        ap.add_argument("--" + name, required=True, help="%s binary" % PROGRAMS[name])
    if peer_option:
        ap.add_argument("--" + peer_option, default=peer_option, help="%s binary" % peer_option)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()
    if not peer_found(args):
        print("SKIP: " + missing)
        return li.SKIP
    return run_test(run, args, ports, prefix)

