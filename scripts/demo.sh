#!/usr/bin/env bash
# The README's run command. Until the full demo exists (door and monitors come
# with later issues), it installs what is needed, builds, and runs portier-proxy
# in the foreground with the shipped in-house config (config/proxy.conf), its
# paths moved under build/demo so nothing needs root. Ctrl-C stops it.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
bash scripts/install-deps.sh
bash scripts/build.sh
demo="$top/build/demo"
mkdir -p "$demo"
sed -e "s|^state-directory = .*|state-directory = $demo/state|" \
    -e "s|^control-socket = .*|control-socket = $demo/proxy.sock|" \
    -e "s|^file-path = .*|file-path = $top/config/users.conf|" \
    config/proxy.conf > "$demo/proxy.conf"
cat <<MSG
portier-proxy is starting with $demo/proxy.conf
  users:          config/users.conf (door, monitor1, monitor2, phone @ home.example)
  registrations:  build/signaling/portierctl --socket $demo/proxy.sock registrations
  calls:          build/signaling/portierctl --socket $demo/proxy.sock calls
Point a SIP phone at sip:127.0.0.1:5060 (domain home.example) and call sip:home@home.example.
MSG
exec "$top/build/signaling/portier-proxy" --config "$demo/proxy.conf"
