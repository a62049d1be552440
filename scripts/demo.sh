#!/usr/bin/env bash
# The README's run command: installs what is needed, builds, and starts the
# in-house intercom on this machine (portier-proxy, portier-door with its test
# pattern, two portier-monitors; configs from config/, files under build/demo),
# rings once with a timeline and the monitors' snapshots, then keeps running
# until Ctrl-C. `scripts/demo.sh --once` stops after the ring.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
bash scripts/install-deps.sh demo
bash scripts/build.sh demo
exec python3 "$top/scripts/demo.py" --build "$top/build" "$@"
