#!/usr/bin/env bash
# Door send bring-up: the door's camera (a test pattern here) through
# portierenc to RTP, and a receiver on this machine that decodes it; the
# launch line of portierenc's documentation (gst-inspect-1.0 portierenc).
#
#   pipelines/door-send.sh                          # H.264 until Ctrl-C
#   CODEC=vp8 pipelines/door-send.sh                # VP8, as Linphone takes it
#   NUM_BUFFERS=45 SNAPSHOT_DIR=/tmp/snap pipelines/door-send.sh
#       3 s of video; the receiver saves its first decoded frame as
#       /tmp/snap/door-send-h264.png, and the script fails unless it exists
#       (ctest runs it this way)
#
# The codec follows from the payloader after portierenc; the script prints the
# encoder portierenc picked. GST_PLUGIN_FEATURE_RANK=x264enc:NONE,openh264enc:MAX
# forces another one. With a display and no SNAPSHOT_DIR, the receiver shows
# the picture.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$ROOT/build/plugins}
N=${NUM_BUFFERS:--1}
SNAP=${SNAPSHOT_DIR:-}
PORT=${BASE_PORT:-5004}
CODEC=${CODEC:-h264}
case $CODEC in
  h264) PAY=rtph264pay DEPAY=rtph264depay DEC=avdec_h264 NAME=H264 ;;
  vp8) PAY=rtpvp8pay DEPAY=rtpvp8depay DEC=vp8dec NAME=VP8 ;;
  *) echo "CODEC must be h264 or vp8" >&2; exit 2 ;;
esac
SNAPSHOT=$SNAP/door-send-$CODEC.png

sink="fakesink sync=false"
if [ -n "$SNAP" ]; then
  mkdir -p "$SNAP" && rm -f "$SNAPSHOT"
  sink="pngenc snapshot=true ! filesink location=$SNAPSHOT"
elif [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  sink="autovideosink sync=false"
fi
# timeout: a receiver that never gets a picture stops after 10 s
gst-launch-1.0 -q udpsrc port="$PORT" address=127.0.0.1 timeout=10000000000 \
  caps="application/x-rtp,media=video,encoding-name=$NAME,clock-rate=90000,payload=96" ! \
  $DEPAY ! $DEC ! videoconvert ! $sink &
RECEIVER=$!
LOG=$(mktemp)
trap 'kill $RECEIVER 2>/dev/null || true; rm -f "$LOG"' EXIT
# The receiver's socket is bound before the first packet (the only keyframe),
# however busy the machine: wait for it, bounded.
for _ in $(seq 1 100); do
  ss -Hnlu "sport = :$PORT" 2>/dev/null | grep -q . && break
  sleep 0.05
done

# -v shows the encoder property among the caps; only that line is printed.
gst-launch-1.0 -v videotestsrc is-live=true num-buffers="$N" ! \
  video/x-raw,width=640,height=480,framerate=15/1 ! \
  portierenc bitrate=800 keyframe-interval=150 ! $PAY pt=96 ! \
  udpsink host=127.0.0.1 port="$PORT" sync=false >"$LOG" 2>&1 &
SENDER=$!
for _ in $(seq 1 50); do grep -q 'encoder = ' "$LOG" && break; sleep 0.1; done
grep -o 'encoder = .*' "$LOG" | head -1 | sed 's/^/portierenc: /' || true
if ! wait $SENDER; then
  grep -E 'ERROR|WARNING' "$LOG" >&2 || cat "$LOG" >&2
  exit 1
fi

if [ -n "$SNAP" ]; then
  # wait for the receiver to write its frame (bounded)
  for _ in $(seq 1 50); do [ -s "$SNAPSHOT" ] && break; sleep 0.1; done
  if [ "$(head -c 8 "$SNAPSHOT" 2>/dev/null | od -An -tx1 | tr -d ' \n')" != "89504e470d0a1a0a" ]; then
    echo "the receiver decoded no picture" >&2
    exit 1
  fi
  echo "receiver: decoded a frame ($SNAPSHOT)"
fi
