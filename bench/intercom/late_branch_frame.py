#!/usr/bin/env python3
"""A push-woken phone joining a ringing call: from its 183 to its first decoded
frame (issue 14, aim: under 100 ms).

Each repetition is the scene of the SIP case push_wakes_monitor
(tests/sip/cases/push.py, wake_monitor_setup), from scratch: portier-proxy
pushing through the stand-in of tests/push (webhook over HTTP/2 and TLS), its
media relay in its default mode; portier-door rings sip:home@ (test pattern,
VP8 320x240 at 15 fps, a keyframe every 60 s); the in-house portier-monitor
mon2 rings and decodes; mon1, registered over TCP with push parameters and an
instance id, was killed (SIGKILL); once the stand-in has the push and the
door's only keyframe is --join-after seconds old, a new portier-monitor with
the same instance id registers (the woken app): the ringing call's late
branch reaches it, it answers 183 recvonly and decodes what the relay sends
(the GOP it replays, or the keyframe it asks the door for; its own keyframe
requests are off).

Figure per repetition: its `first_frame` event line's mono_ms minus its
`early` line's (the 183 is sent just before it: sip::Call::accept), both
CLOCK_MONOTONIC in the same process. Printed per repetition, then p50 / p95
(nearest rank) over the repetitions that decoded.

Everything on 127.0.0.1: SIP ports --base-port .. +99 (default 31000), the
relay's 100 ports from 40000 + (base - 21000) % 20000, the door's and
monitors' RTP from 60000 + (base - 21000) % 5000. Needs Debian's python3-h2
and python3-cryptography for the stand-in (it runs on /usr/bin/python3).
With --keep, each repetition's logs stay in its
/tmp/portier-sip-bench_late_branch_frame-* directory.

    bench/intercom/late_branch_frame.py --build build [--reps 20]   # about 10 s a repetition
    bench/intercom/late_branch_frame.py --build build --reps 3     # smoke run
"""

import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "sip"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
from portier_sip.base import TestFailure  # noqa: E402
from portier_sip.env import Env  # noqa: E402
from cases.push import _Standin, wake_monitor_setup  # noqa: E402

MAX_REPS = 100


def nearest_rank(values, p):
    s = sorted(values)
    return s[max(0, min(len(s) - 1, -(-p * len(s) // 100) - 1))]


def one(args, rep):
    """One repetition: (183 -> first frame ms, when the 183 and the first
    video RTP came), or (None, why)."""
    env = Env(args, "bench_late_branch_frame", 0, 1)
    standin = None
    try:
        standin = _Standin(env)
        call_id, _, _ = wake_monitor_setup(env, standin, extra_wait=args.join_after)
        evs = [e for e in env.monitor_events("mon1") if e.get("call_id") == call_id]
        early = [e for e in evs if e.get("event") == "early"]
        frame = [e["mono_ms"] for e in evs if e.get("event") == "first_frame"]
        rtp = [e.get("since_invite_ms") for e in evs if e.get("event") == "first_rtp"]
        if not early or not frame:
            return None, "no early or first_frame line: %s" % [e.get("event") for e in evs]
        return frame[0] - early[0]["mono_ms"], "183 sent %s ms, first video RTP %s ms after " \
            "the INVITE" % (early[0].get("since_invite_ms"), rtp[0] if rtp else None)
    except TestFailure as e:
        return None, str(e)[:300]
    finally:
        if standin:
            standin.stop()
        problems = env.cleanup()
        if problems:
            print("rep %d: %s" % (rep, "; ".join(problems)))
        if args.keep:
            print("rep %d: logs in %s" % (rep, env.dir))
        else:
            shutil.rmtree(env.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the build directory (default build)")
    ap.add_argument("--reps", type=int, default=20, help="repetitions (default 20, at most %d)"
                    % MAX_REPS)
    ap.add_argument("--join-after", type=float, default=2.0,
                    help="seconds between the push and the woken monitor's start (default 2)")
    ap.add_argument("--base-port", type=int, default=31000, help="first SIP port (default 31000)")
    ap.add_argument("--keep", action="store_true", help="keep each repetition's logs")
    args = ap.parse_args()
    if not 1 <= args.reps <= MAX_REPS:
        ap.error("--reps must be 1..%d" % MAX_REPS)
    build = os.path.abspath(args.build)
    args.proxy = os.path.join(build, "signaling", "portier-proxy")
    args.ctl = os.path.join(build, "signaling", "portierctl")
    args.door = os.path.join(build, "signaling", "portier-door")
    args.monitor = os.path.join(build, "signaling", "portier-monitor")
    args.sipp = shutil.which("sipp") or "sipp"
    args.verbose = False
    for b in (args.proxy, args.ctl, args.door, args.monitor):
        if not os.access(b, os.X_OK):
            ap.error("%s is not built" % b)

    figures, failed = [], 0
    started = time.monotonic()
    for rep in range(1, args.reps + 1):
        ms, detail = one(args, rep)
        if ms is None:
            failed += 1
            print("rep %d: no frame: %s" % (rep, detail))
        else:
            figures.append(ms)
            print("rep %d: 183 -> first decoded frame %d ms (%s)" % (rep, ms, detail))
        sys.stdout.flush()
    print("\nlate branch, 183 -> first decoded frame, %d repetitions in %.0f s:"
          % (args.reps, time.monotonic() - started))
    if figures:
        print("  p50 %d ms, p95 %d ms, min %d, max %d (%d decoded, %d without a frame)"
              % (nearest_rank(figures, 50), nearest_rank(figures, 95), min(figures),
                 max(figures), len(figures), failed))
    else:
        print("  no repetition decoded (%d failed)" % failed)
    return 0 if figures and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
