#!/usr/bin/env bash
# rtpfork bring-up: one VP8 stream forked to two receivers on this machine,
# the launch line of rtpfork's documentation (gst-inspect-1.0 rtpfork).
#
#   pipelines/rtpfork-two-branches.sh                      # until Ctrl-C
#   NUM_BUFFERS=45 SNAPSHOT_DIR=/tmp/snap pipelines/rtpfork-two-branches.sh
#       3 s of video; each receiver saves its first decoded frame as
#       /tmp/snap/branch-5004.png and branch-5006.png, and the script fails
#       unless both exist (ctest runs it this way)
#
# With a display and no SNAPSHOT_DIR, the receivers show the picture.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$ROOT/build/plugins}
N=${NUM_BUFFERS:--1}
SNAP=${SNAPSHOT_DIR:-}
BASE_PORT=${BASE_PORT:-5004}
P1=$BASE_PORT P2=$((BASE_PORT + 2))

receiver() {  # port
  local sink="fakesink sync=false"
  if [ -n "$SNAP" ]; then
    sink="pngenc snapshot=true ! filesink location=$SNAP/branch-$1.png"
  elif [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    sink="autovideosink sync=false"
  fi
  # timeout: a receiver that never gets a picture stops after 10 s
  gst-launch-1.0 -q udpsrc port="$1" address=127.0.0.1 timeout=10000000000 \
    caps="application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload=96" ! \
    rtpvp8depay ! vp8dec ! videoconvert ! $sink &
}
[ -n "$SNAP" ] && mkdir -p "$SNAP" && rm -f "$SNAP"/branch-*.png
receiver $P1; R1=$!
receiver $P2; R2=$!
trap 'kill $R1 $R2 2>/dev/null || true' EXIT
# The receivers' sockets are bound before the first packet (the only
# keyframe), however busy the machine: wait for them, bounded.
for p in $P1 $P2; do
  for _ in $(seq 1 100); do
    ss -Hnlu "sport = :$p" 2>/dev/null | grep -q . && break
    sleep 0.05
  done
done

gst-launch-1.0 -q videotestsrc is-live=true num-buffers="$N" ! \
  video/x-raw,width=320,height=240,framerate=15/1 ! \
  vp8enc deadline=1 keyframe-max-dist=150 ! rtpvp8pay ! rtpfork name=fork \
  fork.src_0 ! udpsink host=127.0.0.1 port=$P1 sync=false async=false \
  fork.src_1 ! udpsink host=127.0.0.1 port=$P2 sync=false async=false

if [ -n "$SNAP" ]; then
  for p in $P1 $P2; do
    f=$SNAP/branch-$p.png
    # wait for the receiver to write its frame (bounded)
    for _ in $(seq 1 50); do [ -s "$f" ] && break; sleep 0.1; done
    if [ "$(head -c 8 "$f" 2>/dev/null | od -An -tx1 | tr -d ' \n')" != "89504e470d0a1a0a" ]; then
      echo "branch on port $p decoded no picture" >&2
      exit 1
    fi
    echo "branch on port $p: decoded a frame ($f)"
  done
fi
