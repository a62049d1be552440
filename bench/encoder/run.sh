#!/usr/bin/env bash
# Encoder benchmark: the CPU a door spends encoding its camera, per second of
# video, with each software encoder portierenc can pick (x264enc, openh264enc,
# vp8enc), at 640x480 and 1280x720, 15 and 30 fps.
#
# Each run is one gst-launch-1.0:
#   videotestsrc is-live=true pattern=ball num-buffers=SECS*FPS ! I420 WxH@FPS !
#   portierenc codec=C bitrate=KBPS ! fakesink silent=false
# with GST_PLUGIN_FEATURE_RANK=ENCODER:MAX, so portierenc picks (and sets up
# for real time, from its table) the encoder under test; the script checks
# the pick in gst-launch's -v output.
#
# - CPU: the process's utime+stime (bash's `time`, i.e. getrusage of the
#   child, every thread counted) over the video's duration, in % of one core.
#   The same pipeline without portierenc (source, caps, fakesink) gives the
#   source and start-up share, subtracted to give the encoder's own figure.
#   Rounds (BENCH_RUNS) interleave all runs of one size and rate, and the
#   least CPU of the rounds is kept: other work on the machine only adds.
# - Frames and bitrate out: fakesink's messages (gst-launch -v, in both
#   runs); openh264enc skips frames rather than overshoot (its table row).
# - Kept up: the wall time stayed within a second of the video's duration.
# - Others' load: the share of the machine's cores that other processes kept
#   busy meanwhile (/proc/stat); figures taken while others compile are less
#   trustworthy.
#
# videotestsrc's ball is easy to encode (a black frame, one moving disc): a
# camera's picture costs more. BENCH_PATTERN="smpte horizontal-speed=4"
# (colour bars and noise scrolling across the whole frame) is the harder
# case. Results depend on the CPU: see bench/README.md.
#
# Usage: bench/encoder/run.sh       (about 5 minutes with the defaults)
# Knobs: BENCH_ENCODERS ("x264enc openh264enc vp8enc"), BENCH_SIZES
# ("640x480:800 1280x720:1500", size:kbit/s), BENCH_FPS ("15 30"),
# BENCH_PATTERN ("ball": videotestsrc properties after pattern=), BENCH_SECS
# (5, seconds of video per run), BENCH_RUNS (3 rounds), BENCH_CPUS (a taskset
# CPU list; unset: no pinning), BENCH_OUT.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
bash "$ROOT/scripts/install-deps.sh" bench  # the peers and tools of bench/
OUT=${BENCH_OUT:-$(mktemp -d /tmp/portier-encoder-bench.XXXXXX)}
ENCODERS=${BENCH_ENCODERS:-"x264enc openh264enc vp8enc"}
SIZES=${BENCH_SIZES:-"640x480:800 1280x720:1500"}
FPS_LIST=${BENCH_FPS:-"15 30"}
SECS=${BENCH_SECS:-5}
RUNS=${BENCH_RUNS:-3}
read -r -a PATTERN <<<"pattern=${BENCH_PATTERN:-ball}"
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$ROOT/build/plugins}
export PORTIER_ENCODER_TABLE=  # the built-in table, as shipped
mkdir -p "$OUT"
command -v gst-launch-1.0 >/dev/null || { echo "gst-launch-1.0 missing" >&2; exit 2; }
gst-inspect-1.0 portierenc >/dev/null 2>&1 ||
  { echo "portierenc not found in $GST_PLUGIN_PATH (build first)" >&2; exit 2; }
PIN=()
[ -n "${BENCH_CPUS:-}" ] && PIN=(taskset -c "$BENCH_CPUS")

codec_of() { case $1 in vp8*) echo vp8 ;; *) echo h264 ;; esac; }

HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
busy_seconds() { awk -v hz="$HZ" '/^cpu / {printf "%.2f", ($2 + $3 + $4 + $7 + $8) / hz}' /proc/stat; }

# One gst-launch; prints "cpu_seconds wall_seconds others_percent".
timed() {  # log, gst-launch arguments...
  local log=$1 b0 b1
  shift
  local TIMEFORMAT="%U %S %R"
  b0=$(busy_seconds)
  { time "${PIN[@]}" timeout $((SECS * 3 + 30)) gst-launch-1.0 "$@" >"$log" 2>&1; } 2>"$OUT/time.txt"
  b1=$(busy_seconds)
  awk -v b0="$b0" -v b1="$b1" -v n="$NCPU" '{c = $1 + $2; o = 100 * (b1 - b0 - c) / ($3 * n);
    printf "%.3f %.3f %.0f\n", c, $3, (o < 0 ? 0 : o)}' "$OUT/time.txt"
}

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
minimum() { sort -n | head -1; }

# One run of (what, size, fps, round): appends "what w h fps round cpu% wall
# others% frames bytes" to runs.txt, or fails when portierenc picked another
# encoder or the pipeline did not finish.
run_one() {  # what (source or an encoder) w h fps kbps round
  local what=$1 w=$2 h=$3 fps=$4 kbps=$5 round=$6 n=$(($4 * SECS)) log out picked tail
  log=$OUT/$what-${w}x$h-$fps-$round.log
  tail=(fakesink silent=false)
  [ "$what" != source ] && tail=(portierenc codec="$(codec_of "$what")" bitrate="$kbps" ! "${tail[@]}")
  out=$(GST_PLUGIN_FEATURE_RANK="$what:MAX" timed "$log" -v videotestsrc is-live=true \
    "${PATTERN[@]}" num-buffers=$n ! "video/x-raw,format=I420,width=$w,height=$h,framerate=$fps/1" ! \
    "${tail[@]}")
  if [ "$what" != source ]; then
    picked=$(grep -o 'portierenc0: encoder = [a-z0-9_]*' "$log" | head -1 | awk '{print $4}')
    if [ "$picked" != "$what" ]; then
      echo "$what ${w}x$h@$fps: portierenc picked '${picked:-nothing}' (see $log)" >&2
      return 1
    fi
  fi
  grep -q 'Got EOS' "$log" || { echo "$what ${w}x$h@$fps: no EOS (see $log)" >&2; return 1; }
  # fakesink -v: "last-message = chain   ******* (fakesink0:sink) (1234 bytes, dts: ..."
  grep -o 'fakesink0:sink) ([0-9]* bytes' "$log" |
    awk -v r="$what ${w} ${h} ${fps} ${round}" -v out="$out" -v s="$SECS" \
      '{b += substr($2, 2); f++} END {split(out, o, " ");
        printf "%s %.2f %.2f %s %d %d\n", r, 100 * o[1] / s, o[2], o[3], f, b}' >>"$OUT/runs.txt"
}

# The figure of one column over the rounds of (what, w, h, fps).
column() {  # what w h fps field
  awk -v k="$1 $2 $3 $4" -v f="$5" '$1 " " $2 " " $3 " " $4 == k {print $f}' "$OUT/runs.txt"
}

echo "${PATTERN[*]}, $SECS s of video per run, $RUNS rounds; loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg); output in $OUT"
: >"$OUT/runs.txt"
RESULTS=$OUT/results.md
{
  echo "| encoder | size | fps | kbit/s asked | kbit/s out | frames out | process CPU | source only | encoder CPU | kept up | others' load |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
} >"$RESULTS"
for size_rate in $SIZES; do
  size=${size_rate%%:*} kbps=${size_rate##*:}
  w=${size%x*} h=${size#*x}
  for fps in $FPS_LIST; do
    # Rounds interleave the source-only run and the encoders, so that a burst
    # of other work spoils one round, not one encoder; the least CPU of the
    # rounds is kept (contention only ever adds).
    for round in $(seq 1 "$RUNS"); do
      for what in source $ENCODERS; do run_one "$what" "$w" "$h" "$fps" "$kbps" "$round"; done
    done
    n=$((fps * SECS))
    base=$(column source "$w" "$h" "$fps" 6 | minimum)
    for enc in $ENCODERS; do
      [ -n "$(column "$enc" "$w" "$h" "$fps" 6)" ] || continue
      cpu=$(column "$enc" "$w" "$h" "$fps" 6 | minimum)
      wall=$(column "$enc" "$w" "$h" "$fps" 7 | median)
      other=$(column "$enc" "$w" "$h" "$fps" 8 | median)
      fout=$(column "$enc" "$w" "$h" "$fps" 9 | median)
      kout=$(column "$enc" "$w" "$h" "$fps" 10 | median | awk -v s="$SECS" '{printf "%.0f", $1 * 8 / s / 1000}')
      kept=$(awk -v w="$wall" -v s="$SECS" 'BEGIN {print (w <= s + 1) ? "yes" : "no (" w " s)"}')
      awk -v e="$enc" -v sz="$size" -v f="$fps" -v k="$kbps" -v ko="$kout" -v c="$cpu" \
        -v b="$base" -v kept="$kept" -v o="$other" -v fo="$fout" -v n="$n" \
        'BEGIN {printf "| %s | %s | %s | %s | %s | %s/%s | %.1f%% | %.1f%% | **%.1f%%** | %s | %s%% |\n",
          e, sz, f, k, ko, fo, n, c, b, c - b, kept, o}' | tee -a "$RESULTS"
    done
  done
done
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
cat "$RESULTS"
