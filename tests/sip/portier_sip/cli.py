"""The command line of the SIP test driver: one run = one case (see
tests/sip/run_sip_test.py and README.md)."""

import argparse
import atexit
import os
import shutil
import signal

from portier_sip.base import SetupError, TestFailure, check, log
from portier_sip.env import Env
from portier_sip.registry import load_cases

DESCRIPTION = """SIP conformance tests for portier-proxy, portier-door and portier-monitor,
driven by sipp and Python peers (Python 3 stdlib only).

One run = one case: a fresh temp dir, a fresh proxy on its own ports, peers,
checks, then every process this script started is stopped, even on failure.
Cases can run in parallel (ctest -j): each case has its own block of 127.0.0.1
ports, picked from its index in --list.

    run_sip_test.py --proxy build/signaling/portier-proxy \\
                    --ctl build/signaling/portierctl --case register_auth

Exit status: 0 pass, 1 fail, 2 usage/setup error. See README.md."""


def main(argv=None):
    ap = argparse.ArgumentParser(description=DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy", help="portier-proxy binary")
    ap.add_argument("--ctl", help="portierctl binary")
    ap.add_argument("--door", help="portier-door binary (door cases)")
    ap.add_argument("--monitor", help="portier-monitor binary (monitor cases)")
    ap.add_argument("--case", help="case name (see --list)")
    ap.add_argument("--list", action="store_true", help="list the cases")
    ap.add_argument("--sipp", default=shutil.which("sipp") or "sipp", help="sipp binary")
    ap.add_argument("--base-port", type=int,
                    default=int(os.environ.get("PORTIER_SIP_TEST_BASE_PORT", "21000")),
                    help="first port of the case port blocks (default 21000, env "
                         "PORTIER_SIP_TEST_BASE_PORT); case i uses base+100*i .. +99")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir even on success")
    ap.add_argument("--time-limit", type=int, default=150,
                    help="overall limit for the case in seconds (default 150)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print sipp command lines")
    args = ap.parse_args(argv)
    cases = load_cases()

    names = [n for n, _ in cases]
    if args.list:
        print("\n".join(names))
        return 0
    if not (args.proxy and args.ctl and args.case):
        ap.error("--proxy, --ctl and --case are required")
    if args.case not in names:
        ap.error("unknown case %r (one of: %s)" % (args.case, ", ".join(names)))
    args.proxy = os.path.abspath(args.proxy)
    args.ctl = os.path.abspath(args.ctl)
    if args.door:
        args.door = os.path.abspath(args.door)
    if args.monitor:
        args.monitor = os.path.abspath(args.monitor)
    for path, what in ((args.proxy, "--proxy"), (args.ctl, "--ctl")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            print("%s %s: not an executable file" % (what, path))
            return 2
    if not shutil.which(args.sipp):
        print("sipp not found (Debian: apt-get install sip-tester)")
        return 2

    index = names.index(args.case)
    func = dict(cases)[args.case]
    try:
        env = Env(args, args.case, index, len(cases))
    except SetupError as e:
        print("setup error: %s" % e)
        return 2

    def on_signal(signum, frame):
        raise TestFailure("interrupted by signal %d" % signum)

    def on_alarm(signum, frame):
        raise TestFailure("case took longer than %ds" % args.time_limit)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    atexit.register(env.cleanup)
    signal.alarm(args.time_limit)

    ok = False
    try:
        log("---- %s: %s" % (args.case, (func.__doc__ or "").strip().split("\n")[0]))
        func(env)
        if env.proxy is not None:
            check(env.proxy_alive(), "portier-proxy is no longer running at the end")
        ok = True
    except TestFailure as e:
        log("FAIL: %s" % e)
    except Exception as e:  # a harness bug or unexpected tool behaviour: still a failure
        import traceback
        traceback.print_exc()
        log("FAIL: unexpected %s: %s" % (type(e).__name__, e))
    finally:
        signal.alarm(0)
        for problem in env.cleanup():
            log("FAIL: %s" % problem)
            ok = False
        if not ok:
            env.dump_failure()
    if ok:
        log("PASS: %s" % args.case)
        if not args.keep:
            shutil.rmtree(env.dir, ignore_errors=True)
        else:
            log("kept %s" % env.dir)
    else:
        log("files kept in %s" % env.dir)
    return 0 if ok else 1
