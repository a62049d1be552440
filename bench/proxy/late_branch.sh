#!/usr/bin/env bash
# Late REGISTER -> INVITE (issue 14): from the arrival of a woken phone's
# authenticated REGISTER at portier-proxy to the departure of the INVITE of the
# call ringing for it, with 1, 10 and 100 calls ringing at once; the media relay
# on (its defaults: a fresh SRTP offer for the late branch) and off. Kernel
# timestamps of both packets on lo (late_branch.py says how).
#
# Runs late_branch.py in a network namespace of its own (unshare -n, as root):
# nothing else on its lo, so the capture sees only the benchmark's packets and
# every port (proxy 31100, relay 20000-29999, UAs 2000-19999) is free.
#
# Usage: bench/proxy/late_branch.sh
#   BENCH_SAMPLES=100        at least this many samples per row (K=1: that many
#                            rounds; K=10: a tenth; K=100: one round)
#   BENCH_KS="1 10 100"      calls ringing at once
#   BENCH_RELAY="on off"     the proxy's media relay
#   BENCH_TCP=on             the proxy listens on TCP beside UDP ("on off": both);
#                            with TCP, an INVITE over 1300 bytes (the relay's
#                            SRTP offer) tries TCP to the phone first (RFC 3261
#                            section 18.1.1), refused on lo, then goes over UDP
#   BENCH_WAKE="serial burst"  the K phones wake one after another, or at once
#   BENCH_TRANSPORT=udp      the phones register over udp, or tcp (a connection
#                            each, the INVITE comes on it); "udp tcp": both
#   BUILD=build
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
[ "$(id -u)" -eq 0 ] || {
  echo "late_branch.sh: needs root (a network namespace, a packet capture)" >&2; exit 2; }
bash "$ROOT/scripts/install-deps.sh" bench  # util-linux (unshare), iproute2, python3-h2 for the stand-in
[ -x "$BUILD/signaling/portier-proxy" ] || {
  echo "$BUILD/signaling/portier-proxy missing (build first)" >&2; exit 2; }
exec unshare --net -- /bin/sh -c 'ip link set lo up && exec "$@"' sh \
  python3 "$HERE/late_branch.py" --build "$BUILD" --samples "${BENCH_SAMPLES:-100}" \
  --ks "${BENCH_KS:-1 10 100}" --relay "${BENCH_RELAY:-on off}" --tcp "${BENCH_TCP:-on}" \
  --wake "${BENCH_WAKE:-serial burst}" --transport "${BENCH_TRANSPORT:-udp}"
