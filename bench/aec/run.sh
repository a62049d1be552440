#!/usr/bin/env bash
# Echo canceller benchmark: portieraecprobe + portieraec against
# gst-plugins-bad's webrtcechoprobe + webrtcdsp on the same synthetic echo
# (aec_bench.cpp, built here): ERLE over time and CPU per channel at 16 and
# 48 kHz, the echo 40 ms late (and 150 ms late once, at the first rate).
# Runs faster than real time on one pinned core: about a minute on 2 cores.
#
# Usage: bench/aec/run.sh          (BENCH_SECONDS=20 BENCH_RATES="16000 48000"
#                                   BENCH_CPU=1 BENCH_OUT=/tmp/...)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
bash "$ROOT/scripts/install-deps.sh" bench  # the peers and tools of bench/
OUT=${BENCH_OUT:-$(mktemp -d /tmp/portier-aec-bench.XXXXXX)}
SECONDS_OF_AUDIO=${BENCH_SECONDS:-20}
RATES=${BENCH_RATES:-"16000 48000"}
CPU=${BENCH_CPU:-1}
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$ROOT/build/plugins}
mkdir -p "$OUT"
gst-inspect-1.0 portieraec >/dev/null 2>&1 ||
  { echo "portieraec not found in $GST_PLUGIN_PATH (build first)" >&2; exit 2; }
gst-inspect-1.0 webrtcdsp >/dev/null 2>&1 ||
  echo "webrtcdsp missing (gstreamer1.0-plugins-bad): its rows will be empty" >&2
# shellcheck disable=SC2046
g++ -O2 -std=c++17 -I"$ROOT/plugins" -o "$OUT/aec_bench" "$HERE/aec_bench.cpp" \
  "$ROOT/plugins/portieraec/synthetic_echo.cpp" "$ROOT/plugins/portieraec/erle_meter.cpp" \
  $(pkg-config --cflags --libs gstreamer-check-1.0) || { echo "cannot build aec_bench" >&2; exit 2; }
echo "tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date '+%Y-%m-%d %H:%M'), core $CPU" |
  tee "$OUT/results.md"
# shellcheck disable=SC2086
taskset -c "$CPU" "$OUT/aec_bench" "$SECONDS_OF_AUDIO" $RATES | tee -a "$OUT/results.md"
echo "results in $OUT/results.md"
