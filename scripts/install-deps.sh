#!/usr/bin/env bash
# Installs the Debian 12 packages of one or more sets:
#   demo   what building portier and running scripts/demo.sh need
#   test   demo + what scripts/test.sh needs: both builds, GoogleTest, the
#          tests' real peers (sipp, Linphone, baresip, Kamailio as a registrar),
#          decoders and encoders the tests use, Xvfb, namespaces
#   bench  demo + the benchmarks' peers (Kamailio, rtpengine, sipp, Linphone)
#          and tools; each bench/*/run.sh asks for it itself
# Without an argument: every set. Idempotent and quiet: when everything is
# present it prints nothing and touches no package list.
#
#   scripts/install-deps.sh demo
set -euo pipefail

DEMO=(
  # toolchain of the CMake build
  build-essential cmake pkg-config ninja-build
  # signaling: sofia-sip, GLib, digest hashing (OpenSSL EVP), journal logging
  libsofia-sip-ua-dev libsofia-sip-ua-glib-dev libglib2.0-dev libssl-dev libsystemd-dev
  # the proxy's allocator (signaling/proxy/allocator.h)
  libjemalloc-dev
  # the push clients' HTTP/2 (signaling/push/): libcurl with nghttp2
  libcurl4-openssl-dev
  # libsrtp2: the peer and oracle of the relay's SRTP tests (portier_srtp_oracle);
  # the relay itself does SRTP on OpenSSL (signaling/proxy/relay_srtp.h)
  libsrtp2-dev
  # media: the GStreamer plugin and the daemons' pipelines (VP8, RTP, udp)
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  # pango's clockoverlay, the clock on portiercamsrc's no-camera test pattern
  gstreamer1.0-x
  # the door: echo canceller, GPIO, the RTSP preview
  libwebrtc-audio-processing-dev libgpiod-dev libgstrtspserver-1.0-dev
  # the monitor's window: GTK 3 and gtksink
  libgtk-3-dev gstreamer1.0-gtk3
  # scripts/demo.py, and the openssl CLI that makes its CA and the proxy's
  # certificate (build/demo/tls)
  python3 openssl
)
TEST=(
  # the meson build, clang-format
  meson clang-format
  # GoogleTest; gstreamer-check (GstHarness) comes with libgstreamer1.0-dev
  libgtest-dev
  # H.264 and the encoders portierenc picks (x264enc in ugly, openh264enc and
  # h264parse in bad), decoders and G.722 (libav: a door without it offers no
  # G.722), rtspsrc's client side, gst-launch-1.0
  # for pipelines/
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  libgstreamer-plugins-bad1.0-dev gstreamer1.0-rtsp gstreamer1.0-tools gpiod
  # the real SIP peers: sipp, linphone-daemon, baresip; Kamailio is the
  # registrar of interop_kamailio_registrar
  sip-tester linphone-cli baresip kamailio
  # the monitor window test's X server and clicks
  xvfb xdotool
  # tools the tests use: ip netns (tests/e2e), ps, the openssl CLI (the TLS
  # cases' throwaway CA, s_client and s_server); the NAT routers of
  # tests/e2e/cloud_e2e.py (nft masquerade, conntrack -F)
  iproute2 procps openssl nftables conntrack
  # the FCM/APNs stand-ins of tests/push (HTTP/2 server, JWT signature checks)
  python3-h2 python3-cryptography
)
BENCH=(
  # the proxy against Kamailio (sipp drives both), the relay against rtpengine
  sip-tester kamailio rtpengine-daemon
  # SIP over TLS against Kamailio's tls module: Debian's sipp has no TLS, so
  # stunnel carries its TCP (bench/proxy/run.sh, mode tls)
  kamailio-tls-modules stunnel4 openssl
  # Linphone side by side (bench/door, bench/intercom); encoders and gst-launch
  # (bench/encoder, bench/relay); gstreamer-check for bench/aec
  linphone-cli gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gstreamer1.0-tools
  # taskset, ss, pgrep
  util-linux iproute2 procps
  # bench/push: the FCM/APNs stand-in
  python3-h2 python3-cryptography
)

sets=("$@")
[ ${#sets[@]} -eq 0 ] && sets=(demo test bench)
packages=()
for s in "${sets[@]}"; do
  case "$s" in
    demo) packages+=("${DEMO[@]}") ;;
    test) packages+=("${DEMO[@]}" "${TEST[@]}") ;;
    bench) packages+=("${DEMO[@]}" "${BENCH[@]}") ;;
    *) echo "usage: $0 [demo|test|bench]..." >&2; exit 2 ;;
  esac
done

missing=()
for p in $(printf '%s\n' "${packages[@]}" | sort -u); do
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
