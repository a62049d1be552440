#!/usr/bin/env bash
# Echo canceller bring-up: the launch line of portieraec's documentation
# (gst-inspect-1.0 portieraec), with a `level` before and after the canceller.
# A test signal is "played" through portieraecprobe (to a fakesink standing in
# for the speaker) and, with a 40 ms echo added by audioecho, stands in for
# the microphone that portieraec cleans; both paths are in one pipeline.
#
#   pipelines/aec-loop.sh                      # until Ctrl-C, levels every 0.5 s
#   NUM_BUFFERS=300 MIN_REDUCTION_DB=20 pipelines/aec-loop.sh
#       3 s (10 ms buffers); fails unless the echo's level after the canceller
#       is at least 20 dB below its level before it, over the last half of
#       the run (ctest runs it this way)
#
# RATE (16000) picks the sample rate; WAVE (pink-noise) the test signal.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$ROOT/build/plugins}
N=${NUM_BUFFERS:--1}
RATE=${RATE:-16000}
WAVE=${WAVE:-pink-noise}
MIN=${MIN_REDUCTION_DB:-}
LOG=$(mktemp /tmp/portier-aec-loop.XXXXXX)
trap 'rm -f "$LOG"' EXIT

# -m prints the level elements' messages; they are read back below
gst-launch-1.0 -m audiotestsrc is-live=true wave="$WAVE" volume=0.3 num-buffers="$N" \
  samplesperbuffer=$((RATE / 100)) ! audio/x-raw,rate="$RATE",channels=1 ! \
  portieraecprobe ! tee name=speaker \
  speaker. ! queue ! fakesink \
  speaker. ! queue ! audioconvert ! audioecho delay=40000000 intensity=0.6 ! audioconvert ! \
  level name=mic interval=500000000 ! portieraec ! level name=out interval=500000000 ! \
  fakesink 2>&1 | tee "$LOG" | grep --line-buffered 'from element "\(mic\|out\)" (element)' |
  sed -uE 's/.*element "([a-z]+)".*rms=\(GValueArray\)< ([-0-9.]+).*/\1 \2/' |
  awk '$1 == "mic" && $2 ~ /^-?[0-9]/ { mic = $2 }
       $1 == "out" && $2 ~ /^-?[0-9]/ { printf "echo %6.1f dBFS -> %6.1f dBFS after portieraec\n", mic, $2; fflush() }'

grep -q "ERROR" "$LOG" && { grep "ERROR" "$LOG" >&2; exit 1; }
if [ -n "$MIN" ]; then
  # mean level over the second half of the intervals, before and after
  read -r before after < <(
    grep 'from element "\(mic\|out\)" (element)' "$LOG" |
      sed -E 's/.*element "([a-z]+)".*rms=\(GValueArray\)< ([-0-9.]+).*/\1 \2/' |
      awk '$2 ~ /^-?[0-9]/ { v[$1, ++n[$1]] = $2 }
           END { for (i = int(n["mic"] / 2) + 1; i <= n["mic"]; i++) { m += v["mic", i]; c++ }
                 for (i = int(n["out"] / 2) + 1; i <= n["out"]; i++) { o += v["out", i]; d++ }
                 if (c && d) printf "%.1f %.1f\n", m / c, o / d; else print "nan nan" }')
  echo "second half: echo $before dBFS before, $after dBFS after"
  awk -v b="$before" -v a="$after" -v min="$MIN" 'BEGIN { exit !(b - a >= min) }' || {
    echo "the canceller took less than $MIN dB off the echo" >&2
    exit 1
  }
fi
