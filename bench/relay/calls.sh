#!/usr/bin/env bash
# Relay benchmark, part 2: the relay end to end, many calls (issue 3).
#
# For CALLS in 1 10 50 and BRANCHES in 1 4 16, three forwarders side by side in
# one run, each in its own process pinned to core 1 (BENCH_RELAY_CPU):
#   portier    portier-proxy's MediaRelay itself (relay_calls serve portier):
#              its RelayEngine's I/O threads (threads = 0: one per CPU it may
#              run on, so one here) fork door audio + video to every branch
#              that answered 183 (early media, all branches)
#   tee        the floor: per call and stream a plain udpsrc ! tee ! udpsink
#              (relay_calls serve tee)
#   rtpengine  Debian's rtpengine 10.5 in userspace (--table=-1), calls set up
#              through its ng protocol (rtpengine_ng.py --calls); it cannot
#              fork, so 1 branch only
#   portier_srtp   the same MediaRelay terminating SRTP (issue 13): the door
#              sends SDES-SRTP (AES_CM_128_HMAC_SHA1_32, libsrtp2 in the load),
#              the relay decrypts it once and encrypts it for every branch with
#              that branch's own AES_CM_128_HMAC_SHA1_80 key; every device
#              decrypts with the key of its own offer (a packet that fails counts
#              as lost)
#   portier_srtpgcm the same, every device taking the relay's AEAD_AES_128_GCM
#              line (the relay offers it first; portier-monitor and baresip
#              take it, Linphone 5.1 has no GCM and takes _80)
#   rtpengine_srtp rtpengine 10.5 terminating and re-keying the same SRTP
#              (rtpengine_ng.py --srtp says which ng flags and why), 1 branch
#   portier-NAME  the MediaRelay of another source tree, PORTIER_TREE_NAME
#              (upper case, e.g. PORTIER_TREE_OLD=/work/main with its CMake
#              build in build/), so two trees are measured in one run
# The door and devices (relay_calls load) run on core 0: per call audio 50 pps
# (172-byte RTP) + video 300 pps (1,000-byte VP8 RTP), evenly paced, stamped.
#
# Per (forwarder, calls, branches):
#   - at the nominal rate (x1, BENCH_NOMINAL_SECS): CPU of the forwarder (all
#     threads, /proc/PID/task/*/schedstat) per input and per output packet,
#     loss, and the added latency p50/p99/max: kernel arrival time at the
#     device minus send time, less the same figure for the same packets sent
#     straight to a receiver (no relay) in the same step;
#   - its threads, RSS and open files (/proc) with the calls up;
#   - the highest rate multiplier without loss (every branch got every packet
#     within 3 s): from x1 up (a first guess from the CPU at x1, then doubling)
#     or down (halving), then bisecting; at most BENCH_MAX_STEPS steps of
#     BENCH_STEP_SECS, the input capped at BENCH_MAX_PPS (the load's own limit).
# Every step also reports the load's CPU (core 0), kernel drops at the
# forwarder's sockets, at our own and in the cores' backlogs (so a drop is never
# blamed on the wrong side), and other work on core 1; the load average is
# logged per configuration. Notes in the last column: busy-core (>15% of the
# relay's core went to others; not under SCHED_FIFO, where others only run
# while the forwarder sleeps), load-bound (core 0 saturated), load-drops,
# backlog-drops, busy-machine (no quiet moment came within BENCH_IDLE_WAIT).
#
# Usage: bench/relay/calls.sh        (about 15 minutes; BENCH_CALLS="1 10"
#        BENCH_BRANCHES="1 4" BENCH_PEERS="tee portier" to shorten)
#        BENCH_CONFIGS="1x1 10x4": these CALLSxBRANCHES only, instead of every
#        pair of BENCH_CALLS and BENCH_BRANCHES
#        BENCH_SRTP=1 bench/relay/calls.sh: the SRTP run of issue 13, our plain
#        figure beside it: peers portier, portier_srtp, portier_srtpgcm and rtpengine_srtp at
#        1x1, 10x4 and 50x4 (rtpengine: 1 branch). Smoke form, a few seconds:
#        BENCH_SRTP=1 BENCH_CALLS=1 BENCH_BRANCHES=1 BENCH_NOMINAL_SECS=1
#        BENCH_MAX_STEPS=0
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
bash "$ROOT/scripts/install-deps.sh" bench  # the peers and tools of bench/
BUILD=${BENCH_BUILD:-$ROOT/build}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/portier-relay-calls.XXXXXX)}
CALLS=${BENCH_CALLS:-"1 10 50"}
BRANCHES=${BENCH_BRANCHES:-"1 4 16"}
PEERS=${BENCH_PEERS:-"tee portier rtpengine"}
CONFIGS=${BENCH_CONFIGS:-}
if [ "${BENCH_SRTP:-0}" = 1 ]; then
  PEERS=${BENCH_PEERS:-"portier portier_srtp portier_srtpgcm rtpengine_srtp"}
  # the issue's three loads, unless BENCH_CALLS / BENCH_BRANCHES say others
  [ -z "$CONFIGS" ] && [ -z "${BENCH_CALLS:-}${BENCH_BRANCHES:-}" ] && CONFIGS="1x1 10x4 50x4"
fi
if [ -z "$CONFIGS" ]; then
  for n in $CALLS; do for b in $BRANCHES; do CONFIGS="$CONFIGS ${n}x$b"; done; done
fi
NOMINAL_SECS=${BENCH_NOMINAL_SECS:-5}
STEP_SECS=${BENCH_STEP_SECS:-3}
MAX_STEPS=${BENCH_MAX_STEPS:-6}
MAX_PPS=${BENCH_MAX_PPS:-100000}
GEN_CPU=${BENCH_GEN_CPU:-0}
RELAY_CPU=${BENCH_RELAY_CPU:-1}
# Other engineers compile on this machine now and then. A busy core makes a
# forwarder look cheaper (it wakes up less often and reads several packets per
# wake-up) and slower (its packets wait behind the compiler): so by default
# every process of the benchmark runs SCHED_FIFO (BENCH_SCHED=fifo; the
# kernel's RT throttling still leaves others 5% of each core), the same for
# every peer. RT throttling also caps a saturated forwarder near 90% of its
# core, the same for every peer. BENCH_SCHED=nice: nice -15; BENCH_SCHED=normal:
# as in production.
SCHED=${BENCH_SCHED:-fifo}
case $SCHED in
  fifo) PRIO="chrt -f 10" ;;
  nice) PRIO="nice -n -15" ;;
  *) PRIO="" ;;
esac
[ -n "$PRIO" ] && ! $PRIO true 2>/dev/null && { echo "cannot use '$PRIO' (root?): BENCH_SCHED=normal" >&2; PRIO="" SCHED=normal; }
RELAY_PORTS=14000-17999 # relay_calls.cpp's kRelayMin-kRelayMax
RTPE_PORTS=18400-19999
RTPE_NG=22399
mkdir -p "$OUT"
for t in taskset g++ pkg-config python3; do
  command -v $t >/dev/null || { echo "$t missing" >&2; exit 2; }
done

# The real MediaRelay: the proxy's own portier_relay library from the CMake
# build, with the relay_calls and headers of the same tree.
build_relay_calls() {  # tree build output
  local tree=$1 build=$2 libs="" l
  # In link order; the sofia-sip and media glue are libraries of their own in
  # trees that split signaling/common by layer, and absent in older ones, as is
  # the push core (the proxy's config schema links it).
  for l in signaling/libportier_relay.a signaling/libportier_proxy_core.a \
    signaling/libportier_push_core.a signaling/libportier_sip.a signaling/libportier_media.a \
    signaling/libportier_common.a \
    plugins/libportier_rtp.a; do
    if [ -f "$build/$l" ]; then
      libs="$libs $build/$l"
    else
      case $l in *_sip.a | *_media.a | *_push_core.a) ;; *)
        echo "$build/$l missing: cmake --build build --target portier_relay" >&2
        return 1 ;;
      esac
    fi
  done
  # shellcheck disable=SC2086,SC2046
  g++ -O2 -g -std=c++17 -I"$tree/signaling" -I"$tree/plugins" -o "$3" \
    "$tree/bench/relay/relay_calls.cpp" $libs \
    $(pkg-config --cflags --libs gstreamer-1.0 gio-unix-2.0 \
      sofia-sip-ua sofia-sip-ua-glib libsystemd libcrypto libsrtp2) -pthread ||
    { echo "cannot build relay_calls of $tree" >&2; return 1; }
}
BIN=$OUT/relay_calls
build_relay_calls "$ROOT" "$BUILD" "$BIN" || exit 2
for peer in $PEERS; do
  case $peer in portier-*)
    var=PORTIER_TREE_${peer#portier-}; var=${var^^}
    [ -d "${!var:-}" ] || { echo "peer $peer needs $var (a source tree with build/)" >&2; exit 2; }
    build_relay_calls "${!var}" "${!var}/build" "$OUT/relay_calls-$peer" || exit 2 ;;
  esac
done

RTPE_PID=""
start_rtpengine() {
  command -v rtpengine >/dev/null || { echo "rtpengine not installed (rtpengine-daemon): skipped" >&2; return 1; }
  $PRIO taskset -c "$RELAY_CPU" rtpengine --table=-1 --interface=127.0.0.1 --listen-ng=127.0.0.1:$RTPE_NG \
    --port-min=${RTPE_PORTS%-*} --port-max=${RTPE_PORTS#*-} --foreground --log-stderr --log-level=4 \
    >"$OUT/rtpengine.log" 2>&1 &
  RTPE_PID=$!
  sleep 1
  kill -0 $RTPE_PID 2>/dev/null
}
SERVE_PID=""
stop_all() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  [ -n "$RTPE_PID" ] && kill "$RTPE_PID" 2>/dev/null && wait "$RTPE_PID" 2>/dev/null
  SERVE_PID="" RTPE_PID=""
}
trap stop_all EXIT

# Starts a forwarder with N calls of B branches; sets PID and writes $OUT/ports.txt.
start_peer() {  # peer calls branches
  local peer=$1 n=$2 b=$3 srtp=""
  : >"$OUT/ports.txt"
  case $peer in *_srtp) srtp=--srtp ;; *_srtpgcm) srtp="--srtp AEAD_AES_128_GCM" ;; esac
  case $peer in rtpengine*)
    PID=$RTPE_PID
    # shellcheck disable=SC2086  # $srtp: no argument at all when empty
    timeout 60 python3 "$HERE/rtpengine_ng.py" $RTPE_NG --calls "$n" --tag "n$n-$peer-$$" $srtp \
      >"$OUT/ports.txt" 2>>"$OUT/serve.log" || return 1
    return 0 ;;
  esac
  local bin=$BIN serves=$peer
  case $peer in portier-*) bin=$OUT/relay_calls-$peer serves=portier ;; portier_srtp*) serves=portier ;; esac
  # shellcheck disable=SC2086
  $PRIO taskset -c "$RELAY_CPU" "$bin" serve "$serves" "$n" "$b" $srtp >"$OUT/ports.txt" 2>>"$OUT/serve.log" &
  SERVE_PID=$! PID=$SERVE_PID
  for _ in $(seq 1 240); do
    grep -q '^ready' "$OUT/ports.txt" && return 0
    kill -0 "$SERVE_PID" 2>/dev/null || return 1
    sleep 0.25
  done
  return 1
}
stop_peer() {  # peer calls
  case $1 in rtpengine*)
    timeout 60 python3 "$HERE/rtpengine_ng.py" $RTPE_NG --calls "$2" --tag "n$2-$1-$$" --delete >/dev/null 2>&1
    return ;;
  esac
  kill "$SERVE_PID" 2>/dev/null
  # freeing 1,700 port pairs takes a while; do not let it spill into the next step
  for _ in $(seq 1 80); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$SERVE_PID" 2>/dev/null
  wait "$SERVE_PID" 2>/dev/null
  SERVE_PID=""
}

# One load step: prints the load's key=value line.
step() {  # peer calls branches mult secs [--baseline]
  local peer=$1 ports=$RELAY_PORTS srtp=""
  case $peer in rtpengine*) ports=$RTPE_PORTS ;; esac
  case $peer in *_srtp | *_srtpgcm) srtp=--srtp ;; esac
  # shellcheck disable=SC2086  # ${6:-}, $srtp: no argument at all when empty
  timeout $((${5%.*} + 30)) $PRIO taskset -c "$GEN_CPU" "$BIN" load "$OUT/ports.txt" "$2" "$3" "$4" "$5" \
    --pid "$PID" --cpu "$RELAY_CPU" --relay-ports "$ports" ${6:-} $srtp 2>>"$OUT/load.log" || echo "failed=1"
}
field() { sed -n "s/.*\<$1=\([^ ]*\).*/\1/p" <<<"$2"; }
passed() {  # a step line -> 0 when every branch got every packet
  local lost sent ovfl
  lost=$(field lost "$1") sent=$(field sent "$1") ovfl=$(field gen_ovfl "$1")
  [ -n "$lost" ] && [ "${sent:-0}" -gt 0 ] && [ "$lost" -eq 0 ] && [ "${ovfl:-1}" -eq 0 ]
}
calc() { awk "BEGIN {print ($1)}"; }
add_note() { case " $note " in *" $1 "*) ;; *) note="$note$1 " ;; esac; }
# The first multiplier to try above x1, as a power of two in [2, cap]: where x1's
# CPU share would reach 150% of the core; the cost per packet falls as the rate
# rises (more packets per wake-up), so this lands near the top.
first_guess() {  # relay_cpu_pct cap
  awk -v p="$1" -v cap="$2" 'BEGIN { g = p > 0 ? 150 / p : 2; if (g > cap) g = cap;
    m = 2 ^ int(log(g) / log(2)); print (m < 2 ? 2 : m) }'
}

# Before each peer's turn, wait (at most BENCH_IDLE_WAIT s) until both cores
# are less than 10% busy, so the peers of one configuration see the same quiet
# machine when there is one.
core_busy() {  # prints "busy0 busy1" in % over one second
  local a b
  a=$(awk '/^cpu[0-9]/ {printf "%s %d %d ", $1, $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu[0-9]/ {printf "%s %d %d ", $1, $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
  awk -v a="$a" -v b="$b" -v g="$GEN_CPU" -v r="$RELAY_CPU" 'BEGIN {
    n = split(a, x, " "); split(b, y, " ");
    for (i = 1; i <= n; i += 3) { c = substr(x[i], 4); bu = y[i+1] - x[i+1]; id = y[i+2] - x[i+2];
      pct[c] = bu + id > 0 ? 100 * bu / (bu + id) : 0 }
    printf "%.0f %.0f", pct[g], pct[r] }'
}
wait_idle() {
  local waited=0 b0 b1
  while :; do
    read -r b0 b1 < <(core_busy)
    [ "$b0" -lt 10 ] && [ "$b1" -lt 10 ] && return 0
    waited=$((waited + 1))
    [ $waited -ge "${BENCH_IDLE_WAIT:-20}" ] && { echo "busy: core $GEN_CPU $b0%, core $RELAY_CPU $b1%" >&2; return 1; }
  done
}

row_header() {
  printf '%-14s %5s %4s %7s %8s %5s %8s %7s %7s %8s %9s %9s %9s %7s %9s %8s %s\n' peer calls br threads \
    rss_MB fds in_pps us/in us/out loss_x1 add_p50us add_p99us add_maxus max_x max_in_pps us/out@max note
}
row_header | tee "$OUT/results.txt"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); scheduling: $SCHED" | tee "$OUT/loadavg.txt"
case " $PEERS " in *" rtpengine "* | *" rtpengine_srtp "*)
  start_rtpengine || PEERS=$(tr ' ' '\n' <<<"$PEERS" | grep -v '^rtpengine' | tr '\n' ' ') ;;
esac

for config in $CONFIGS; do
  n=${config%x*} b=${config#*x}
  {
    for peer in $PEERS; do
      case $peer in rtpengine*) [ "$b" != 1 ] && continue ;; esac
      idle_note=""
      wait_idle 2>>"$OUT/loadavg.txt" || idle_note="busy-machine "
      echo "$peer $n x $b: load average $(cut -d' ' -f1-3 /proc/loadavg) $idle_note" >>"$OUT/loadavg.txt"
      if ! start_peer "$peer" "$n" "$b"; then
        printf '%-14s %5s %4s  did not start (see %s)\n' "$peer" "$n" "$b" "$OUT/serve.log" | tee -a "$OUT/results.txt"
        stop_peer "$peer" "$n"
        continue
      fi
      sleep 0.5
      nominal=$(step "$peer" "$n" "$b" 1 "$NOMINAL_SECS" --baseline)
      echo "$peer $n $b $nominal" >>"$OUT/steps.txt"
      if ! grep -q ' sent=' <<<"$nominal"; then
        printf '%-14s %5s %4s  the load failed (see %s)\n' "$peer" "$n" "$b" "$OUT/load.log" | tee -a "$OUT/results.txt"
        stop_peer "$peer" "$n"
        continue
      fi
      threads=$(awk '/^Threads/ {print $2}' /proc/$PID/status 2>/dev/null)
      rss=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' /proc/$PID/status 2>/dev/null)
      fds=$(find /proc/$PID/fd -mindepth 1 2>/dev/null | wc -l)
      cpu=$(field cpu_ns "$nominal") sent=$(field sent "$nominal") out=$(field received_out "$nominal")
      us_in=$(calc "${sent:-0} > 0 ? sprintf(\"%.1f\", ${cpu:-0} / 1000 / $sent) : \"-\"")
      us_out=$(calc "${out:-0} > 0 ? sprintf(\"%.1f\", ${cpu:-0} / 1000 / $out) : \"-\"")
      loss=$(calc "${sent:-0} > 0 ? sprintf(\"%.2f%%\", 100 * $(field lost "$nominal") / $(field expected_out "$nominal")) : \"-\"")
      p50=$(calc "sprintf(\"%.0f\", $(field lat_p50 "$nominal") - $(field base_p50 "$nominal"))")
      p99=$(calc "sprintf(\"%.0f\", $(field lat_p99 "$nominal") - $(field base_p99 "$nominal"))")
      pmax=$(calc "sprintf(\"%.0f\", $(field lat_max "$nominal") - $(field base_max "$nominal"))")
      note=$idle_note
      [ "$SCHED" != fifo ] && [ "$(calc "$(field other_pct "$nominal") > 15")" = 1 ] && add_note busy-core

      # the highest multiplier without loss
      lo=0 hi=0 best_in="-" best_out="-"
      cap=$(calc "$MAX_PPS / (350 * $n)")
      if passed "$nominal"; then
        lo=1 best_in=$(field in_pps "$nominal") best_out=$us_out
        # x1 used this share of the core: aim the first step at about 70% of it
        m=$(first_guess "$(field relay_cpu_pct "$nominal")" "$cap")
      else
        hi=1 m=0.5
      fi
      for _ in $(seq 1 "$MAX_STEPS"); do
        [ "$(calc "$m > $cap")" = 1 ] && m=$cap
        [ "$(calc "$lo > 0 && $lo >= $cap")" = 1 ] && break
        line=$(step "$peer" "$n" "$b" "$m" "$STEP_SECS")
        echo "$peer $n $b $line" >>"$OUT/steps.txt"
        [ "$(calc "$(field gen_cpu_pct "$line") > 95")" = 1 ] && add_note load-bound
        [ "$SCHED" != fifo ] && [ "$(calc "$(field other_pct "$line") > 15")" = 1 ] && add_note busy-core
        [ "$(field gen_ovfl "$line")" != 0 ] && add_note load-drops
        [ "$(field backlog_drops "$line")" != 0 ] && add_note backlog-drops
        if passed "$line"; then
          lo=$m best_in=$(field in_pps "$line")
          best_out=$(calc "sprintf(\"%.1f\", $(field cpu_ns "$line") / 1000 / $(field received_out "$line"))")
        else
          hi=$m
          sleep 1  # let an overloaded forwarder drain its receive buffers
        fi
        if [ "$(calc "$hi == 0")" = 1 ]; then m=$(calc "$m * 2")
        elif [ "$(calc "$lo == 0")" = 1 ]; then m=$(calc "$m / 2")
        elif [ "$(calc "$hi / $lo <= 1.25")" = 1 ]; then break
        else m=$(calc "($lo + $hi) / 2"); fi
        [ "$(calc "$m < 1 / 64")" = 1 ] && break
      done
      max_x=$lo
      [ "$(calc "$hi == 0")" = 1 ] && max_x=">=$lo"
      [ "$lo" = 0 ] && max_x="<$hi"
      stop_peer "$peer" "$n"
      printf '%-14s %5s %4s %7s %8s %5s %8s %7s %7s %8s %9s %9s %9s %7s %9s %8s %s\n' "$peer" "$n" "$b" \
        "${threads:--}" "${rss:--}" "$fds" "$(field in_pps "$nominal")" "$us_in" "$us_out" "$loss" \
        "$p50" "$p99" "$pmax" "$max_x" "$best_in" "$best_out" "$note" | tee -a "$OUT/results.txt"
    done
  }
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/loadavg.txt"
stop_all
echo "every step: $OUT/steps.txt"
