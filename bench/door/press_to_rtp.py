#!/usr/bin/env python3
"""Door benchmark: from the button press to the first video RTP packet at a
ringing device, through portier-proxy and its media relay (issue 4).

The device is a sipp UAS registered as mon1 that answers 183 recvonly; its
video socket records the kernel's arrival time (SO_TIMESTAMPNS). Each ring is
ended by the door (CANCEL) once the first packet is in. Side by side in one
run:
  - portier-door, camera started by the press (camera-always-on = false);
  - portier-door, camera and encoder kept running (camera-always-on = true);
  - Linphone as a door (linphone-daemon, mediastreamer2's static picture
    camera, `call --early-media`), the press being the `call` command.
All VP8 at 320x240, 15 fps. Prints p50/p95/max in ms over --rings rings each.

    press_to_rtp.py --build build [--rings 20]
"""
import argparse
import os
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "sip"))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
from portier_sip.base import DOMAIN, GROUP, USERS, TestFailure  # noqa: E402  tests/sip's library
from portier_sip.checks import register_devices  # noqa: E402
from portier_sip.env import Env  # noqa: E402
from portier_sip.rtp import RtpPeer  # noqa: E402
import linphone_interop as li  # noqa: E402  the linphone-daemon driver
from linphone_early_media import Door as LinphoneDoor  # noqa: E402


def first_arrival(peer, after, timeout=5.0):
    """Kernel arrival time of the first RTP packet after `after`, or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = [p[0] for p in peer.rtp() if p[0] > after]
        if got:
            return min(got)
        time.sleep(0.005)
    return None


def quantiles(xs):
    xs = sorted(xs)
    if not xs:
        return "-", "-", "-"
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return "%.0f" % statistics.median(xs), "%.0f" % p95, "%.0f" % xs[-1]


def ring_portier(env, video, i, ports):
    uas = env.uas("mon1_p%d" % i, "uas_relay_cancelled.xml", 0, fields=[ports])
    t0 = time.time()
    r = env.door_ctl("ring")
    if r.get("result") != "calling":
        raise TestFailure("ring %d: %s" % (i, r))
    t1 = first_arrival(video, t0)
    env.door_ctl("hangup")
    uas.wait()
    deadline = time.time() + 5
    while time.time() < deadline and env.door_ctl("status").get("call") != "idle":
        time.sleep(0.05)
    time.sleep(0.3)
    return None if t1 is None else (t1 - t0) * 1000


def ring_linphone(env, door, video, i, ports):
    uas = env.uas("mon1_l%d" % i, "uas_relay_cancelled.xml", 0, fields=[ports])
    t0 = time.time()
    ok, f, raw = door.cmd("call sip:%s@%s --early-media" % (GROUP, DOMAIN))
    if not ok:
        raise TestFailure("linphone call: %s" % raw)
    t1 = first_arrival(video, t0)
    door.cmd("terminate %s" % f.get("Id", ""))
    uas.wait()
    door.wait_call_event("LinphoneCallReleased", 5, f.get("Id"), fatal=False)
    time.sleep(0.3)
    return None if t1 is None else (t1 - t0) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rings", type=int, default=20)
    a = ap.parse_args()
    sig = os.path.join(a.build, "signaling")
    args = argparse.Namespace(proxy=os.path.join(sig, "portier-proxy"),
                              ctl=os.path.join(sig, "portierctl"),
                              door=os.path.join(sig, "portier-door"),
                              sipp=shutil.which("sipp") or "sipp", base_port=29500,
                              verbose=False, keep=False, time_limit=900)
    env = Env(args, "bench_door", 0, 1)
    results = {}
    video = None
    try:
        env.start_proxy()
        register_devices(env, [("mon1", 0)])
        ports = [env.ports.media(7), env.ports.media(7) + 2]
        video = RtpPeer("mon1_video", ports[1])
        for always_on in (False, True):
            env.start_door(video_codec="vp8",
                           extra="camera-always-on = %s\n" % ("true" if always_on else "false"))
            time.sleep(1.0)
            name = "portier-door, camera %s" % ("always on" if always_on else "started by the press")
            results[name] = [ring_portier(env, video, i, ports) for i in range(a.rings)]
            env.door_proc.stop()
        if shutil.which("linphone-daemon"):
            li.PROXY_PORT = env.ports.proxy
            li.USERS = dict(USERS)
            li.PEERS = {"door": ("door", USERS["door"], env.ports.base + 50, "udp")}
            door = LinphoneDoor("door", env.dir, shutil.which("linphone-daemon"),
                                li.door_account_rc(), "default_proxy=0\n")
            text = open(door.rc).read().replace(
                "capture=0\n", "capture=1\ndevice=StaticImage: Static picture\n"
                "automatically_initiate=1\n").replace(
                "[video]\n", "[video]\nsize=qvga\nframerate=15\n")
            open(door.rc, "w").write(text)
            door.start()
            door.connect()
            li.wait_for(lambda: door.register_state() == "LinphoneRegistrationOk" or None, 10,
                        "the Linphone door's registration")
            try:
                results["Linphone door (linphone-daemon, --early-media)"] = [
                    ring_linphone(env, door, video, i, ports) for i in range(a.rings)]
            finally:
                door.stop()
    finally:
        if video:
            video.close()
        env.cleanup()
    print()
    print("| door | rings | first RTP p50 ms | p95 ms | max ms | no packet |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, xs in results.items():
        got = [x for x in xs if x is not None]
        p50, p95, mx = quantiles(got)
        print("| %s | %d | %s | %s | %s | %d |" % (name, len(xs), p50, p95, mx, len(xs) - len(got)))
    shutil.rmtree(env.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
