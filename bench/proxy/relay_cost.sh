#!/usr/bin/env bash
# What the media relay adds to the proxy's signalling, per forked call: the
# bench/proxy call (INVITE -> 407 -> INVITE with digest, two branches, one
# answers 200, the other rings and is cancelled, ACK, BYE) at a low fixed rate,
# portier-proxy with [module::MediaRelay] enabled = false and = true.
#
#   RELAY_COST_MODE=cpu (default): utime+stime of the proxy per call, relay off
#     and on interleaved, RELAY_COST_REPS (3) repetitions each. The machine's
#     other load moves these figures.
#   RELAY_COST_MODE=strace: system calls per call (strace -c -f on the proxy).
#   RELAY_COST_MODE=callgrind: user-space instructions per call (valgrind
#     --tool=callgrind, instrumented during the calls only). Load does not move
#     this one: decide with it.
#
# Knobs: PORTIER_PROXY (build/signaling/portier-proxy), RELAY_COST_RATE (calls/s,
# 50; callgrind 10), RELAY_COST_CALLS (1000; callgrind 100), RELAY_COST_PORT
# (28061: the proxy; +40..+44 the sipp peers; the relay 28200-28999), RELAY_COST_OUT (a temporary folder).
# Needs sipp, taskset; strace or valgrind for those modes. Loopback only; every
# sipp is bounded in calls and time.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SCN=$HERE/scenarios
PROXY=${PORTIER_PROXY:-$ROOT/build/signaling/portier-proxy}
MODE=${RELAY_COST_MODE:-cpu}
REPS=${RELAY_COST_REPS:-3}
if [ "$MODE" = callgrind ]; then RATE=${RELAY_COST_RATE:-10} CALLS=${RELAY_COST_CALLS:-100}
else RATE=${RELAY_COST_RATE:-50} CALLS=${RELAY_COST_CALLS:-1000}; fi
PORT=${RELAY_COST_PORT:-28061}
OUT=${RELAY_COST_OUT:-$(mktemp -d /tmp/portier-relay-cost.XXXXXX)}
HZ=$(getconf CLK_TCK)
mkdir -p "$OUT"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
PROXY_PID=""
cleanup() { [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

printf 'version:1\nhome@bench.example clrtxt:homepw ;\ndoor@bench.example clrtxt:doorpw ;\n' >"$OUT/users.conf"
printf 'SEQUENTIAL\ndoor;doorpw;home\n' >"$OUT/door.csv"

sipp_run() {   # name time-limit args...: one bounded sipp
  local name=$1 tl=$2; shift 2
  timeout -k 5 $((tl + 15)) sipp "$@" -t u1 -i 127.0.0.1 -nostdin -timeout "$tl" \
    -recv_timeout 10000 -trace_stat -stf "$OUT/$name.csv" -fd 1 >"$OUT/$name.out" 2>&1
}

start_proxy() {   # relay (on|off), wrapper...
  local relay=$1 dir=$OUT/$1; shift
  mkdir -p "$dir"
  local enabled=false
  [ "$relay" = on ] && enabled=true
  sed -e "s#@PORT@#$PORT#g; s#@DIR@#$dir#g; s#@RELAY@#$enabled#g; s#@RELAY_PORTS@#28200-28999#g" \
    -e "s#^file-path = .*#file-path = $OUT/users.conf#" "$HERE/portier.conf.in" >"$dir/portier.conf"
  "$@" "$PROXY" --config "$dir/portier.conf" >>"$dir/proxy.log" 2>&1 &
  PROXY_PID=$!
  local i
  for i in $(seq 1 100); do
    [ -S "$dir/proxy.sock" ] && return 0
    sleep 0.1
  done
  log "the proxy did not start (see $dir/proxy.log)"; return 1
}

stop_proxy() { kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; PROXY_PID=""; }

register_callees() {   # two contacts of home, each from the port it answers on
  local p
  for p in $((PORT + 40)) $((PORT + 41)); do
    printf 'SEQUENTIAL\nhome;homepw;%s\n' "$p" >"$OUT/home-$p.csv"
    sipp_run "reg-$p" 20 "127.0.0.1:$PORT" -sf "$SCN/register_auth.xml" -auth_uri bench.example \
      -inf "$OUT/home-$p.csv" -p "$p" -r 1 -m 1 || { log "REGISTER from $p failed"; return 1; }
  done
}

calls() {   # the forked calls; true when every one succeeded
  local tl=$((CALLS / RATE + 30)) a r c
  sipp_run answer "$tl" -sf "$SCN/call_answer.xml" -p $((PORT + 40)) -m "$CALLS" & a=$!
  sipp_run ring "$tl" -sf "$SCN/call_ring.xml" -p $((PORT + 41)) -m "$CALLS" & r=$!
  sleep 0.5
  sipp_run caller "$tl" "127.0.0.1:$PORT" -sf "$SCN/call_caller.xml" -auth_uri home@bench.example \
    -inf "$OUT/door.csv" -p $((PORT + 42)) -mp $((PORT + 44)) -r "$RATE" -m "$CALLS"
  c=$?
  wait "$a"; wait "$r"
  [ $c -eq 0 ] || log "the caller's sipp failed ($c, see $OUT/caller.out)"
  return $c
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

case $MODE in
  cpu)
    for rep in $(seq 1 "$REPS"); do
      for relay in off on; do
        start_proxy "$relay" taskset -c 1 || exit 1
        register_callees || exit 1
        t0=$(ticks "$PROXY_PID")
        calls || exit 1
        sleep 1
        t1=$(ticks "$PROXY_PID")
        stop_proxy
        us=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$CALLS" 'BEGIN {printf "%.0f", t * 1e6 / hz / n}')
        echo "rep $rep relay $relay: $us us CPU per call ($CALLS calls at $RATE/s)"
      done
    done
    ;;
  strace)
    for relay in off on; do
      start_proxy "$relay" || exit 1
      register_callees || exit 1
      strace -c -f -p "$PROXY_PID" -o "$OUT/strace-$relay.txt" 2>/dev/null & st=$!
      sleep 1
      calls
      sleep 1
      kill -INT "$st"; wait "$st"
      stop_proxy
      total=$(awk '$NF == "total" {print $4}' "$OUT/strace-$relay.txt")
      echo "relay $relay: $(awk -v t="$total" -v n="$CALLS" 'BEGIN {printf "%.1f", t / n}') system calls per call"
      sort -k4 -n -r "$OUT/strace-$relay.txt" | awk 'NR > 1 && NR <= 12 && $NF != "total"' \
        | awk -v n="$CALLS" '{printf "  %-16s %6.2f per call\n", $NF, $4 / n}'
    done
    ;;
  callgrind)
    for relay in off on; do
      start_proxy "$relay" valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$OUT/callgrind-$relay.out" || exit 1
      register_callees || exit 1
      callgrind_control -i on "$PROXY_PID" >/dev/null
      calls || exit 1
      sleep 2
      callgrind_control -i off "$PROXY_PID" >/dev/null
      stop_proxy
      ir=$(callgrind_annotate "$OUT/callgrind-$relay.out" 2>/dev/null |
        awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
      echo "relay $relay: $(awk -v i="$ir" -v n="$CALLS" 'BEGIN {printf "%.0f", i / n}') instructions per call (user space)"
    done
    ;;
  *) log "RELAY_COST_MODE is cpu, strace or callgrind"; exit 2 ;;
esac
log "files in $OUT"
