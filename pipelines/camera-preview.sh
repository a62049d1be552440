#!/usr/bin/env bash
# portiercamsrc bring-up: the door's camera (or, without one, the test
# pattern with a clock), the launch line of portiercamsrc's documentation
# (gst-inspect-1.0 portiercamsrc).
#
#   pipelines/camera-preview.sh                            # until Ctrl-C
#   DEVICE=/dev/video2 WIDTH=1280 HEIGHT=720 FRAMERATE=30/1 pipelines/camera-preview.sh
#   NUM_BUFFERS=30 SNAPSHOT_DIR=/tmp/snap pipelines/camera-preview.sh
#       no display needed: saves the first frame as /tmp/snap/camera-preview.png
#       and fails unless it is a PNG (ctest runs it this way)
#
# With a display and no SNAPSHOT_DIR, the picture is shown; otherwise the
# frames go to a fakesink.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$ROOT/build/plugins}
N=${NUM_BUFFERS:--1}
SNAP=${SNAPSHOT_DIR:-}
WIDTH=${WIDTH:-640} HEIGHT=${HEIGHT:-480} FRAMERATE=${FRAMERATE:-15/1}
DEVICE=${DEVICE:-}

sink="fakesink sync=false"
if [ -n "$SNAP" ]; then
  mkdir -p "$SNAP" && rm -f "$SNAP/camera-preview.png"
  sink="pngenc snapshot=true ! filesink location=$SNAP/camera-preview.png"
elif [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  sink="autovideosink"
fi

# One line in the log says when there is no camera and the test pattern is sent.
gst-launch-1.0 portiercamsrc ${DEVICE:+device="$DEVICE"} width="$WIDTH" height="$HEIGHT" \
  framerate="$FRAMERATE" num-buffers="$N" ! videoconvert ! $sink

if [ -n "$SNAP" ]; then
  f=$SNAP/camera-preview.png
  if [ "$(head -c 8 "$f" 2>/dev/null | od -An -tx1 | tr -d ' \n')" != "89504e470d0a1a0a" ]; then
    echo "camera preview: no picture" >&2
    exit 1
  fi
  echo "camera preview: saved a frame ($f)"
fi
