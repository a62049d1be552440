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
# the pick in gst-launch's -v output. The CPU is the process's utime+stime
# (bash's `time`, i.e. getrusage of the child, every thread counted) over the
# video's duration, in % of one core. The same pipeline without portierenc
# (source, caps, fakesink) gives the source and start-up share, subtracted to
# give the encoder's own figure. fakesink's messages (gst-launch -v, in both
# runs) give the frames that came out and the bitrate achieved: openh264enc
# skips frames rather than overshoot (its table row).
# A run whose wall time exceeds the video's duration by more than a second
# did not keep up with real time and is marked so.
#
# videotestsrc's ball is easy to encode (a black frame, one moving disc): a
# camera's picture costs more. BENCH_PATTERN="smpte horizontal-speed=4"
# (colour bars and noise scrolling across the whole frame) is the harder
# case. Results depend on the CPU: see bench/README.md.
#
# Usage: bench/encoder/run.sh       (about 3 minutes with the defaults)
# Knobs: BENCH_ENCODERS ("x264enc openh264enc vp8enc"), BENCH_SIZES
# ("640x480:800 1280x720:1500", size:kbit/s), BENCH_FPS ("15 30"),
# BENCH_PATTERN ("ball": videotestsrc properties after pattern=),
# BENCH_SECS (6, seconds of video per run), BENCH_RUNS (1; the median is
# kept), BENCH_CPUS (a taskset CPU list; unset: no pinning), BENCH_OUT.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${BENCH_OUT:-$(mktemp -d /tmp/portier-encoder-bench.XXXXXX)}
ENCODERS=${BENCH_ENCODERS:-"x264enc openh264enc vp8enc"}
SIZES=${BENCH_SIZES:-"640x480:800 1280x720:1500"}
FPS_LIST=${BENCH_FPS:-"15 30"}
SECS=${BENCH_SECS:-6}
RUNS=${BENCH_RUNS:-1}
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

# One gst-launch; prints "cpu_seconds wall_seconds others_percent": its CPU
# (bash's time, i.e. getrusage of the child), its wall time, and the share of
# the machine's cores that other processes kept busy meanwhile (the machine
# is shared: a figure taken while others compile is less trustworthy).
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

# The source and start-up alone, per (size, fps): CPU % over the video time.
declare -A BASE
run_base() {  # w h fps
  local w=$1 h=$2 fps=$3 n=$(($3 * SECS)) cpus=() r out
  for r in $(seq 1 "$RUNS"); do
    out=$(timed "$OUT/base.log" -v videotestsrc is-live=true "${PATTERN[@]}" num-buffers=$n ! \
      "video/x-raw,format=I420,width=$w,height=$h,framerate=$fps/1" ! fakesink silent=false)
    cpus+=("$(awk -v c="${out%% *}" -v s="$SECS" 'BEGIN {printf "%.2f", 100 * c / s}')")
  done
  printf '%s\n' "${cpus[@]}" | median
}

echo "${PATTERN[*]}, $SECS s of video per run; loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg); output in $OUT"
RESULTS=$OUT/results.md
{
  echo "| encoder | size | fps | kbit/s asked | kbit/s out | frames out | process CPU | source only | encoder CPU | kept up | others' load |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
} >"$RESULTS"
for size_rate in $SIZES; do
  size=${size_rate%%:*} kbps=${size_rate##*:}
  w=${size%x*} h=${size#*x}
  for fps in $FPS_LIST; do
    base=$(run_base "$w" "$h" "$fps")
    n=$((fps * SECS))
    for enc in $ENCODERS; do
      codec=$(codec_of "$enc")
      cpus=() walls=() bytes=() others=() frames=()
      for r in $(seq 1 "$RUNS"); do
        log=$OUT/$enc-${size}-$fps-$r.log
        out=$(GST_PLUGIN_FEATURE_RANK="$enc:MAX" timed "$log" -v videotestsrc is-live=true \
          "${PATTERN[@]}" num-buffers=$n ! "video/x-raw,format=I420,width=$w,height=$h,framerate=$fps/1" ! \
          portierenc codec="$codec" bitrate="$kbps" ! fakesink silent=false)
        picked=$(grep -o 'portierenc0: encoder = [a-z0-9_]*' "$log" | head -1 | awk '{print $4}')
        if [ "$picked" != "$enc" ] || ! grep -q 'Got EOS' "$log"; then
          echo "$enc $size@$fps: portierenc picked '${picked:-nothing}' or failed (see $log)" >&2
          continue 2
        fi
        read -r c wl ot <<<"$out"
        cpus+=("$(awk -v c="$c" -v s="$SECS" 'BEGIN {printf "%.2f", 100 * c / s}')")
        walls+=("$wl")
        others+=("$ot")
        # "last-message = chain   ******* (fakesink0:sink) (1234 bytes, dts: ..."
        bytes+=("$(grep -o 'fakesink0:sink) ([0-9]* bytes' "$log" | awk '{s += substr($2, 2)} END {print s + 0}')")
        frames+=("$(grep -c 'fakesink0:sink) ([0-9]* bytes' "$log")")
      done
      cpu=$(printf '%s\n' "${cpus[@]}" | median)
      wall=$(printf '%s\n' "${walls[@]}" | median)
      other=$(printf '%s\n' "${others[@]}" | median)
      fout=$(printf '%s\n' "${frames[@]}" | median)
      kout=$(printf '%s\n' "${bytes[@]}" | median | awk -v s="$SECS" '{printf "%.0f", $1 * 8 / s / 1000}')
      kept=$(awk -v w="$wall" -v s="$SECS" 'BEGIN {print (w <= s + 1) ? "yes" : "no (" w " s)"}')
      row=$(awk -v e="$enc" -v sz="$size" -v f="$fps" -v k="$kbps" -v ko="$kout" -v c="$cpu" \
        -v b="$base" -v kept="$kept" -v o="$other" -v fo="$fout" -v n="$n" \
        'BEGIN {printf "| %s | %s | %s | %s | %s | %s/%s | %.1f%% | %.1f%% | **%.1f%%** | %s | %s%% |", e, sz, f, k, ko, fo, n, c, b, c - b, kept, o}')
      echo "$row" | tee -a "$RESULTS"
    done
  done
done
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
cat "$RESULTS"
