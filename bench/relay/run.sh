#!/usr/bin/env bash
# Relay benchmark, part 1: the fork itself. One RTP input forked to 1, 4 and 16
# branches by rtpfork, and by a plain `udpsrc ! tee ! udpsink` (no queues: the
# floor GStreamer gives), each in gst-launch-1.0 pinned to one core; the load
# generator and the counters (rtpblast, built here) on the other core.
#
# For each (element, branches):
#   - CPU per input and per output packet at a fixed rate (BENCH_FIXED_RATE,
#     default 5,000/s): utime+stime of gst-launch while sending / packets sent;
#   - the highest input rate without loss (every branch got every packet),
#     searched by doubling from BENCH_START, then bisecting, and the CPU per
#     packet at that rate (a busy core: fewer wake-ups per packet); every step
#     is bounded in packets (rate x BENCH_STEP_SECS) and in time.
# Packets are 1,012 bytes (a video packet); loopback UDP only.
#
# Then the time a device that joins mid-GOP waits for its first picture
# (keyframe_join.cpp): door keyframe interval BENCH_KEYINT (10 s), BENCH_JOINS
# joins (10) per mode: neither keyframe request nor GOP replay, each alone, both.
#
# rtpengine (Debian's rtpengine-daemon, userspace: --table=-1, pinned to the
# same core) forwards the same stream for one branch, its calls set up through
# its ng control protocol (rtpengine_ng.py); it cannot fork one stream to
# several branches, so it appears in the 1-branch rows only.
#
# The relay inside portier-proxy end to end, many calls, added latency: calls.sh.
#
# Usage: bench/relay/run.sh            (BENCH_BRANCHES="1 4 16" BENCH_STEP_SECS=4 ...)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
bash "$ROOT/scripts/install-deps.sh" bench  # the peers and tools of bench/
OUT=${BENCH_OUT:-$(mktemp -d /tmp/portier-relay-bench.XXXXXX)}
BRANCHES=${BENCH_BRANCHES:-"1 4 16"}
FIXED_RATE=${BENCH_FIXED_RATE:-5000}
START=${BENCH_START:-5000}
MAX=${BENCH_MAX:-200000}
STEP_SECS=${BENCH_STEP_SECS:-4}
BISECT=${BENCH_BISECT:-3}
GEN_CPU=${BENCH_GEN_CPU:-0}
GST_CPU=${BENCH_GST_CPU:-1}
IN_PORT=26000
OUT_BASE=26100
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$ROOT/build/plugins}
mkdir -p "$OUT"
BLAST=$OUT/rtpblast
g++ -O2 -std=c++17 -o "$BLAST" "$HERE/rtpblast.cpp" || { echo "cannot build rtpblast" >&2; exit 2; }
for t in gst-launch-1.0 taskset; do command -v $t >/dev/null || { echo "$t missing" >&2; exit 2; }; done
gst-inspect-1.0 rtpfork >/dev/null 2>&1 || { echo "rtpfork not found in $GST_PLUGIN_PATH (build first)" >&2; exit 2; }

RTPE_NG=22299
RTPE_PID=""
start_rtpengine() {
  command -v rtpengine >/dev/null || { echo "rtpengine not installed (rtpengine-daemon): skipped" >&2; return 1; }
  taskset -c "$GST_CPU" rtpengine --table=-1 --interface=127.0.0.1 --listen-ng=127.0.0.1:$RTPE_NG \
    --port-min=30000 --port-max=30999 --foreground --log-stderr --log-level=4 >"$OUT/rtpengine.log" 2>&1 &
  RTPE_PID=$!
  sleep 1
  kill -0 $RTPE_PID 2>/dev/null
}
stop_rtpengine() { [ -n "$RTPE_PID" ] && kill $RTPE_PID 2>/dev/null; wait $RTPE_PID 2>/dev/null; RTPE_PID=""; }
trap stop_rtpengine EXIT
RTPE_CALL=0

# one step: prints "sent received cpu_ticks"
step() {  # element branches rate
  [ "$1" = rtpengine ] && { step_rtpengine "$3"; return; }
  local el=$1 n=$2 rate=$3 sinks="" ports="" i p g r t0 t1 sent recv
  for i in $(seq 1 "$n"); do
    p=$((OUT_BASE + 2 * i)); ports="$ports $p"
    sinks="$sinks t. ! udpsink host=127.0.0.1 port=$p sync=false async=false"
  done
  local spec="rtpfork name=t"
  [ "$el" = tee ] && spec="tee name=t allow-not-linked=true"
  timeout 60 taskset -c "$GEN_CPU" "$BLAST" recv 1.5 $ports >"$OUT/recv.txt" &
  r=$!
  # shellcheck disable=SC2086
  timeout $((STEP_SECS + 30)) taskset -c "$GST_CPU" gst-launch-1.0 -q udpsrc port=$IN_PORT \
    buffer-size=8388608 caps="application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload=96" ! \
    $spec $sinks >"$OUT/gst.txt" 2>&1 &
  g=$!
  sleep 1
  local gp; gp=$(pgrep -P $g | head -1)  # gst-launch itself, under timeout(1)
  t0=$(awk '{print $14+$15}' /proc/$gp/stat 2>/dev/null || echo 0)
  timeout $((STEP_SECS + 20)) taskset -c "$GEN_CPU" "$BLAST" send 127.0.0.1 $IN_PORT "$rate" "$STEP_SECS" 1000 >"$OUT/send.txt"
  t1=$(awk '{print $14+$15}' /proc/$gp/stat 2>/dev/null || echo 0)
  sleep 0.3
  kill $g 2>/dev/null; wait $g 2>/dev/null
  wait $r
  sent=$(awk '/^sent/ {print $2}' "$OUT/send.txt")
  recv=$(awk '/^received/ {print $2}' "$OUT/recv.txt")
  echo "${sent:-0} ${recv:-0} $((t1 - t0))"
}

# rtpengine, one branch: a fresh call per step
step_rtpengine() {  # rate
  local rate=$1 p r t0 t1 sent recv
  RTPE_CALL=$((RTPE_CALL + 1))
  p=$(python3 "$HERE/rtpengine_ng.py" $RTPE_NG "bench-$RTPE_CALL" $((OUT_BASE + 2))) || { echo "0 0 0"; return; }
  timeout 60 taskset -c "$GEN_CPU" "$BLAST" recv 1.5 $((OUT_BASE + 2)) >"$OUT/recv.txt" &
  r=$!
  sleep 0.3
  t0=$(awk '{print $14+$15}' /proc/$RTPE_PID/stat 2>/dev/null || echo 0)
  timeout $((STEP_SECS + 20)) taskset -c "$GEN_CPU" "$BLAST" send 127.0.0.1 "$p" "$rate" "$STEP_SECS" 1000 >"$OUT/send.txt"
  t1=$(awk '{print $14+$15}' /proc/$RTPE_PID/stat 2>/dev/null || echo 0)
  wait $r
  python3 "$HERE/rtpengine_ng.py" $RTPE_NG "bench-$RTPE_CALL" --delete >/dev/null 2>&1
  sent=$(awk '/^sent/ {print $2}' "$OUT/send.txt")
  recv=$(awk '/^received/ {print $2}' "$OUT/recv.txt")
  echo "${sent:-0} ${recv:-0} $((t1 - t0))"
}

HZ=$(getconf CLK_TCK)
cost() {  # ticks sent branches -> "us/in us/out"
  awk -v t="$1" -v s="$2" -v n="$3" -v hz="$HZ" \
    'BEGIN {if (s > 0) printf "%.1f %.1f", t * 1e6 / hz / s, t * 1e6 / hz / s / n; else print "- -"}'
}
printf '%-8s %8s %12s %12s %14s %12s %12s\n' element branches "us/in@${FIXED_RATE}" "us/out@${FIXED_RATE}" \
  "max input pps" "us/in@max" "us/out@max" | tee "$OUT/results.txt"
ELEMENTS_1="tee rtpfork"
start_rtpengine && ELEMENTS_1="tee rtpfork rtpengine"
for n in $BRANCHES; do
  els="tee rtpfork"
  [ "$n" = 1 ] && els=$ELEMENTS_1
  for el in $els; do
    read -r sent recv ticks < <(step "$el" "$n" "$FIXED_RATE")
    read -r us uso < <(cost "$ticks" "$sent" "$n")
    echo "$el $n fixed $FIXED_RATE: sent $sent received $recv (of $((sent * n))) cpu ticks $ticks" >>"$OUT/steps.txt"
    # highest rate without loss: double, then bisect; the CPU cost at that rate
    lo=0 hi=0 rate=$START steps=0 best="- -"
    while [ "$rate" -le "$MAX" ] && [ $steps -lt 12 ]; do
      read -r sent recv ticks < <(step "$el" "$n" "$rate")
      steps=$((steps + 1))
      echo "$el $n $rate: sent $sent received $recv (of $((sent * n))) cpu ticks $ticks" >>"$OUT/steps.txt"
      if [ "$sent" -gt 0 ] && [ "$recv" -ge $((sent * n)) ]; then
        lo=$rate best=$(cost "$ticks" "$sent" "$n"); rate=$((rate * 2))
      else
        hi=$rate; break
      fi
    done
    for _ in $(seq 1 "$BISECT"); do
      [ "$hi" -gt 0 ] || break
      rate=$(((lo + hi) / 2))
      read -r sent recv ticks < <(step "$el" "$n" "$rate")
      echo "$el $n $rate: sent $sent received $recv (of $((sent * n))) cpu ticks $ticks" >>"$OUT/steps.txt"
      if [ "$sent" -gt 0 ] && [ "$recv" -ge $((sent * n)) ]; then
        lo=$rate best=$(cost "$ticks" "$sent" "$n")
      else
        hi=$rate
      fi
    done
    read -r bus buso <<<"$best"
    printf '%-8s %8s %12s %12s %14s %12s %12s\n' "$el" "$n" "$us" "$uso" "$lo" "$bus" "$buso" | tee -a "$OUT/results.txt"
  done
done
stop_rtpengine
echo "steps: $OUT/steps.txt"

echo
g++ -O2 -std=c++17 -o "$OUT/keyframe_join" "$HERE/keyframe_join.cpp" \
  $(pkg-config --cflags --libs gstreamer-1.0) || { echo "cannot build keyframe_join" >&2; exit 2; }
timeout $(( (${BENCH_KEYINT:-10} + 3) * ${BENCH_JOINS:-10} * 4 + 60 )) \
  "$OUT/keyframe_join" "${BENCH_KEYINT:-10}" "${BENCH_JOINS:-10}" | tee -a "$OUT/results.txt"
