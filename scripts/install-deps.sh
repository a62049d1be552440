#!/usr/bin/env bash
# Installs every Debian 12 package portier needs to build, test and benchmark.
# Idempotent and quiet: when everything is present it prints nothing and
# touches no package list.
set -euo pipefail

PACKAGES=(
  # toolchain and both builds
  build-essential cmake pkg-config meson ninja-build clang-format
  # signaling
  libsofia-sip-ua-dev libsofia-sip-ua-glib-dev libglib2.0-dev
  # media: the GStreamer plugin, its tests (gstreamer-check) and bring-up pipelines
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  # pango's clockoverlay, the clock on portiercamsrc's no-camera test pattern
  gstreamer1.0-x
  # the door: encoders (x264enc in ugly, openh264enc in bad, vp8enc in good),
  # decoders for tests (libav), the echo canceller, GPIO, the RTSP preview
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  libgstreamer-plugins-bad1.0-dev libwebrtc-audio-processing-dev
  libgpiod-dev gpiod libgstrtspserver-1.0-dev gstreamer1.0-rtsp
  # digest hashing (MD5, SHA-256 through EVP), journal logging
  libssl-dev libsystemd-dev
  # the monitor's window: GTK 3 and gtksink
  libgtk-3-dev gstreamer1.0-gtk3
  # tests: GoogleTest, and the real SIP peers; the window test's X server and clicks
  libgtest-dev sip-tester linphone-cli baresip xvfb xdotool
  # benchmark peers: the proxy against Kamailio, the relay against rtpengine
  # (Kamailio is also the registrar of an interop test)
  kamailio rtpengine-daemon
  # tools the test scripts use
  python3 procps iproute2 psmisc
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "portier: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
