#!/usr/bin/env bash
# Pushes per second over one HTTP/2 connection to the stand-in
# (tests/push/push_standin.py): portier_push_bench (the proxy's push client on
# a sofia-sip root, built with the tests) sends BENCH_PUSHES APNs VoIP pushes
# (or FCM with BENCH_PROVIDER=fcm), BENCH_WINDOW in flight, and the stand-in's
# log says how many TLS connections carried them (the claim: one).
# The stand-in is Python: it, not the client, is likely the ceiling; the
# figure is the client's rate against it, on loopback.
#
# BENCH_DELAY (seconds, default 0) holds every answer back, as a provider across
# the internet would (APNs and FCM answer in tens of ms): then the rate shows the
# multiplexing (about BENCH_WINDOW / BENCH_DELAY if one connection carries them
# all at once), not the stand-in's own speed.
#
# Usage: bench/push/run.sh     (BENCH_PUSHES=1000 BENCH_WINDOW=100 BENCH_PROVIDER=apns
#                               BENCH_DELAY=0 BUILD=build)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
bash "$ROOT/scripts/install-deps.sh" bench  # the peers and tools of bench/
BUILD=${BUILD:-$ROOT/build}
PUSHES=${BENCH_PUSHES:-1000}
WINDOW=${BENCH_WINDOW:-100}
PROVIDER=${BENCH_PROVIDER:-apns}
BENCH=$BUILD/tests/push/portier_push_bench
[ -x "$BENCH" ] || { echo "$BENCH missing (build first)" >&2; exit 2; }
OUT=$(mktemp -d /tmp/portier-push-bench.XXXXXX)
printf '{"delay": %s}\n' "${BENCH_DELAY:-0}" >"$OUT/replies.json"
exec 3> >(/usr/bin/python3 "$ROOT/tests/push/push_standin.py" "$OUT" >"$OUT/standin.out" 2>"$OUT/standin.err")
STANDIN=$!
trap 'exec 3>&-; kill $STANDIN 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q READY "$OUT/standin.out" 2>/dev/null && break; sleep 0.1; done
grep -q READY "$OUT/standin.out" || { cat "$OUT/standin.err" >&2; exit 2; }
echo "tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date '+%Y-%m-%d %H:%M'), $(nproc) CPUs"
"$BENCH" "$OUT" "$PUSHES" "$WINDOW" "$PROVIDER"
echo "TLS connections: $(grep -c '"event": "connection"' "$OUT/log.jsonl")"
echo "most requests at once on a connection: $(grep -o '"concurrent": [0-9]*' "$OUT/log.jsonl" | awk '{print $2}' | sort -n | tail -1)"
