#!/usr/bin/env bash
# Door benchmark: button press to the first video RTP packet at a ringing
# device, portier-door (camera started by the press, and always on) beside a
# Linphone door, through portier-proxy's relay. Build first (scripts/build.sh).
#   bench/door/run.sh [RINGS]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
bash "$HERE/../../scripts/install-deps.sh" bench  # the peers and tools of bench/
exec python3 "$HERE/press_to_rtp.py" --build "$HERE/../../build" --rings "${1:-20}"
