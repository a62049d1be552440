#!/usr/bin/env bash
# portier proxy benchmark: portier-proxy against Kamailio 5.6 doing the same job.
#
# For each peer, in one run:
#   (c) RSS after registering BENCH_USERS (10,000) distinct users,
#   (a) the highest authenticated REGISTER rate (REGISTER -> 401 -> REGISTER with MD5
#       digest -> 200) sustained with no failed registration and no retransmission,
#   (b) the highest forked-call rate sustained with no failed call: a caller INVITEs
#       an AOR with two contacts (407 digest first); one branch answers 200 at once,
#       the other rings 180 and is cancelled; the caller ACKs and hangs up.
# The proxy runs on one core (taskset -c BENCH_PROXY_CPU, default 1), every sipp on
# the other (BENCH_SIPP_CPU, default 0), UDP on 127.0.0.1 only. Every load step is
# bounded in calls (-m) and in time (sipp -timeout and timeout(1)).
#
# Needs: sip-tester (sipp), kamailio, util-linux (taskset), iproute2 (ss), procps.
# Usage: bench/proxy/run.sh            (see bench/README.md for the knobs below)
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
bash "$ROOT/scripts/install-deps.sh" bench  # the peers and tools of bench/
SCN=$HERE/scenarios

PORTIER_PROXY=${PORTIER_PROXY:-$ROOT/build/signaling/portier-proxy}
# More portier binaries, peer "portier-NAME" for PORTIER_PROXY_NAME (e.g. portier-old
# with PORTIER_PROXY_OLD): other trees measured side by side. A portier peer with
# "+relay" (portier+relay, portier-old+relay) runs with [module::MediaRelay] on.
# BENCH_MODE, one or more of (default "cost top", in that order):
#   cost   CPU per authenticated REGISTER (BENCH_COST_RATE/s) and per forked call
#          (BENCH_COST_CALL_RATE/s) at fixed rates, the peers interleaved (A, B, A, B,
#          ...) BENCH_COST_REPS times, every repetition reported: the top rate swings
#          by +-40% on a shared VM, the CPU per operation at a fixed rate much less.
#          BENCH_COST_KINDS picks "reg", "call" or both (the default).
#   relay  the same for forked calls only, each portier peer with its relay off and
#          on: what the media relay adds to the signalling of a call.
#   top    the highest sustained rates, as below.
#   instr  instructions per REGISTER and per forked call (valgrind --tool=callgrind,
#          portier peers only, low rates): the figure that does not move with the
#          machine's load, and a profile per peer (callgrind_annotate).
#   tls    SIP over TLS (issue 13), the peers interleaved BENCH_COST_REPS times, each
#          with a TLS listener beside its UDP one (portier: a sips: transport;
#          Kamailio: its tls module, -A WITH_TLS), a certificate of BENCH_TLS_KEY
#          (rsa: RSA 2048, or ec: P-256) from a CA made for the run:
#          - CPU per authenticated REGISTER at BENCH_TLS_RATE/s over BENCH_TLS_CONNS
#            persistent TLS connections: Debian's sipp has no TLS, so BENCH_TLS_CONNS
#            sipps speak TCP (-t t1) to a stunnel on the sipp core that holds one
#            TLS connection to the proxy for each;
#          - CPU per full TLS handshake (no resumption) at BENCH_TLS_HS_RATE/s for
#            BENCH_STEP_SECS (tls_clients.py handshakes);
#          - memory per idle TLS connection: RSS (Kamailio: PSS of all processes)
#            with BENCH_TLS_IDLE connections open, less before, per connection
#            (tls_clients.py idle).
#   domains  several domains in one proxy (issue 14): CPU per authenticated REGISTER
#          at BENCH_COST_RATE/s, and with BENCH_DOMAINS_SEARCH=1 the highest sustained
#          REGISTER rate, for the same BENCH_USERS users laid out two ways: one
#          domain of BENCH_USERS users, and BENCH_DOMAINS domains (default 1,000) of
#          BENCH_USERS / BENCH_DOMAINS users each; reg-domains = auth-domains = *, the
#          layouts interleaved BENCH_COST_REPS times (portier peers only).
#          BENCH_DOMAINS_INSTR=1 counts instructions instead (callgrind, started with
#          its instrumentation off so the fill runs at near native speed, then on for
#          BENCH_INSTR_REGS REGISTERs at BENCH_INSTR_REG_RATE/s): the figure that the
#          machine's load does not move.
MODE=${BENCH_MODE:-"cost top"}
COST_RATE=${BENCH_COST_RATE:-3000}
COST_CALL_RATE=${BENCH_COST_CALL_RATE:-600}
COST_REPS=${BENCH_COST_REPS:-3}
COST_KINDS=${BENCH_COST_KINDS:-"reg call"}  # cost mode: which of reg, call
INSTR_REGS=${BENCH_INSTR_REGS:-600}
INSTR_REG_RATE=${BENCH_INSTR_REG_RATE:-20}
INSTR_CALLS=${BENCH_INSTR_CALLS:-60}
INSTR_CALL_RATE=${BENCH_INSTR_CALL_RATE:-2}
TLS_RATE=${BENCH_TLS_RATE:-2000}
TLS_CONNS=${BENCH_TLS_CONNS:-4}     # at most 20: sipp ports REG_SIPP_PORT+1..
TLS_HS_RATE=${BENCH_TLS_HS_RATE:-100}
TLS_IDLE=${BENCH_TLS_IDLE:-1000}
TLS_KEY=${BENCH_TLS_KEY:-rsa}
DOMAINS=${BENCH_DOMAINS:-1000}
DOMAINS_SEARCH=${BENCH_DOMAINS_SEARCH:-0}
DOMAINS_INSTR=${BENCH_DOMAINS_INSTR:-0}
case " $MODE " in
  *" relay "*) DEFAULT_PEERS="portier portier+relay" ;;
  *" instr "*|*" domains "*) DEFAULT_PEERS="portier" ;;
  *" cost "*|*" tls "*) DEFAULT_PEERS="portier kamailio" ;;
  *) DEFAULT_PEERS="portier kamailio kamailio-authdb" ;;
esac
PEERS=${BENCH_PEERS:-$DEFAULT_PEERS}
case " $MODE " in *" instr "*) USERS=${BENCH_USERS:-200} ;; *) USERS=${BENCH_USERS:-10000} ;; esac
STEP_SECS=${BENCH_STEP_SECS:-10}     # length of one load step at the target rate
FILL_RATE=${BENCH_FILL_RATE:-1000}   # REGISTER/s used to fill the registrar for (c)
REG_START=${BENCH_REG_START:-1000}
REG_MAX=${BENCH_REG_MAX:-64000}
CALL_START=${BENCH_CALL_START:-100}
CALL_MAX=${BENCH_CALL_MAX:-8000}
BISECT=${BENCH_BISECT:-3}            # bisection steps after the first failing rate
MAX_STEPS=${BENCH_MAX_STEPS:-12}     # hard bound on load steps per search
PROXY_CPU=${BENCH_PROXY_CPU:-1}
SIPP_CPU=${BENCH_SIPP_CPU:-0}
IDLE_WAIT=${BENCH_IDLE_WAIT:-300}    # seconds to wait for an idle machine before starting
KAM_SHM_MB=${BENCH_KAM_SHM_MB:-1024}  # overload steps pile up transactions; RSS counts touched pages only
OUT=${BENCH_OUT:-$(mktemp -d /tmp/portier-bench.XXXXXX)}

# ports away from 5060-5099, which tests running beside the benchmark like to use
PORT_KAMAILIO=27060
PORT_PORTIER=27061
PORT_KAMAILIO_AUTHDB=27062
PORT_PORTIER_TLS=27063             # tls mode: each peer's TLS listener
PORT_KAMAILIO_TLS=27064
PORT_STUNNEL=27065                 # tls mode: sipp's TCP goes in here, TLS out to the proxy
REG_SIPP_PORT=27070
RELAY_PORTS=28400-28999             # the relay's RTP ports, for peers with +relay
# Every call step uses fresh ports for the caller and the two callees, so late
# retransmissions of a previous (overloaded) step cannot land in this step's sipp.
CALLEE_PORT_BASE=27100              # + 2*step: answers; + 2*step + 1: rings
CALLER_PORT_BASE=27800              # + step
SIPP_BUF=4194304                    # sipp socket buffers: the load generator must not drop
HZ=$(getconf CLK_TCK)

mkdir -p "$OUT"
LOG=$OUT/run.log
RESULTS=$OUT/steps.tsv
: >"$LOG"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" | tee -a "$LOG" >&2; }
die() { log "ERROR: $*"; exit 2; }

# ---------------------------------------------------------------- prerequisites
TLS=0          # tls mode: the proxy started next gets a TLS listener
TLS_PORT=""    # and this is its port
case " $MODE " in *" tls "*) for tool in stunnel openssl python3; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh bench installs stunnel4, openssl, python3)"
done ;; esac
for tool in sipp kamailio taskset ss pgrep timeout awk; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh bench installs sip-tester, kamailio, iproute2, procps)"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 cores (proxy on one, sipp on the other)"
for p in $REG_SIPP_PORT $CALLEE_PORT_BASE $CALLER_PORT_BASE $PORT_KAMAILIO $PORT_PORTIER $PORT_KAMAILIO_AUTHDB; do
  [ -z "$(ss -Hlun "sport = :$p" 2>/dev/null)" ] || die "UDP port $p is in use"
done

# ---------------------------------------------------------------- /proc helpers
# idle+iowait ticks of one core. With a tickless kernel the busy fields of /proc/stat
# miss short bursts (a proxy that sleeps between packets), the idle time is exact:
# busy = wall time - idle.
core_idle() { awk -v c="cpu$1" '$1==c {print $5+$6}' /proc/stat; }
now() { date +%s.%N; }
# busy % of a core from two idle readings over a wall interval
busy_pct() { awk -v i0="$1" -v i1="$2" -v w="$3" -v hz="$HZ" 'BEGIN {b = 100 - 100 * (i1 - i0) / hz / w; if (b < 0) b = 0; printf "%.0f", b}'; }
# utime+stime of processes (the comm field has no spaces for our programs)
proc_ticks() {
  local t=0 p v
  for p in "$@"; do
    v=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null) && t=$((t + v))
  done
  echo $t
}
# CPU nanoseconds of processes, threads that ended included (utime+stime of
# /proc/PID/stat, in clock ticks: over a 10 s step of 20,000 operations one tick is
# 0.5 us per operation). Not /proc/PID/task/*/schedstat: a worker thread that ends
# during a step takes its time with it, and the sum can even go down.
proc_ns() {
  echo $(( $(proc_ticks "$@") * 1000000000 / HZ ))
}
# CPU seconds (user+sys) of every child this shell has waited for: the sipp runs.
# `times` must run in this shell, not in a $(...) subshell: result in CHILD_CPU.
children_cpu() {
  times >"$OUT/.times"
  CHILD_CPU=$(awk 'NR == 2 {for (i = 1; i <= 2; i++) {split($i, a, "m"); t += a[1] * 60 + a[2]}} END {printf "%.2f", t}' "$OUT/.times")
}
kb_field() { awk -v k="$2:" '$1==k {s+=$2} END {print s+0}' "$1" 2>/dev/null || echo 0; }
# kernel counters of the proxy's UDP socket: drops and receive buffer size
udp_drops() { ss -Huamn "sport = :$1" | grep -o 'd[0-9]*)' | tr -dc 0-9; }
udp_rcvbuf() { ss -Huamn "sport = :$1" | grep -o 'rb[0-9]*' | tr -dc 0-9; }

PROXY_PID=""
PROXY_PORT=""
proxy_pids() { echo "$PROXY_PID" $(pgrep -P "$PROXY_PID" 2>/dev/null); }
proxy_alive() { [ -n "$PROXY_PID" ] && kill -0 "$PROXY_PID" 2>/dev/null; }

# Memory of the proxy: VmRSS summed over its processes, and PSS summed (shared
# pages counted once: the honest total for Kamailio's several processes).
proxy_mem() {
  local rss=0 pss=0 p
  for p in $(proxy_pids); do
    rss=$((rss + $(kb_field "/proc/$p/status" VmRSS)))
    pss=$((pss + $(kb_field "/proc/$p/smaps_rollup" Pss)))
  done
  echo "$rss $pss"
}

# wait until both benchmark cores are idle (other work on the machine skews results)
wait_idle() {
  local deadline=$((SECONDS + IDLE_WAIT)) a0 b0 a1 b1 w0 w1 busy
  while :; do
    a0=$(core_idle "$PROXY_CPU"); b0=$(core_idle "$SIPP_CPU"); w0=$(now)
    sleep 2
    a1=$(core_idle "$PROXY_CPU"); b1=$(core_idle "$SIPP_CPU"); w1=$(now)
    busy=$(( ( $(busy_pct "$a0" "$a1" "$(awk -v a="$w0" -v b="$w1" 'BEGIN {print b - a}')") + \
               $(busy_pct "$b0" "$b1" "$(awk -v a="$w0" -v b="$w1" 'BEGIN {print b - a}')") ) / 2 ))
    if [ "$busy" -le 10 ]; then log "machine idle (${busy}% busy on cores $PROXY_CPU,$SIPP_CPU)"; return 0; fi
    if [ $SECONDS -ge $deadline ]; then
      log "WARNING: cores $PROXY_CPU,$SIPP_CPU still ${busy}% busy after ${IDLE_WAIT}s: figures will be noisy"
      NOISY=1; return 0
    fi
    log "cores $PROXY_CPU,$SIPP_CPU ${busy}% busy with other work, waiting"
    sleep 8
  done
}

# after a step: let the proxy finish its backlog (timers, retransmissions)
settle() {
  local i t0 t1
  sleep 1
  for i in $(seq 1 30); do
    proxy_alive || return 0
    t0=$(proc_ticks $(proxy_pids)); sleep 0.5; t1=$(proc_ticks $(proxy_pids))
    [ $(( (t1 - t0) * 200 / HZ )) -le 3 ] && return 0
  done
}

# ---------------------------------------------------------------- users
gen_users() {
  local d=$OUT/users
  mkdir -p "$d/db"
  # deterministic passwords, different for every user
  awk -v n="$USERS" -v d="$d" 'BEGIN {
    srand(20240601);
    print "SEQUENTIAL" > (d "/users.csv");
    print "id(int,auto) username(string) domain(string) password(string) ha1(string,null) ha1b(string,null) " > (d "/db/subscriber");
    print "version:1" > (d "/users.conf");
    for (i = 1; i <= n + 2; i++) {
      if (i == n + 1) u = "home"; else if (i == n + 2) u = "door"; else u = sprintf("u%05d", i);
      pw = sprintf("%08x%04x", int(rand() * 4294967295), i % 65536);
      if (i <= n) print u ";" pw ";5099" > (d "/users.csv");
      if (u == "home") print u ";" pw > (d "/home.csv");
      if (u == "door") print u ";" pw ";home" > (d "/door.csv");
      print i ":" u ":bench.example:" pw "::" > (d "/db/subscriber");
      print u "@bench.example clrtxt:" pw " ;" > (d "/users.conf");
    }
  }'
  sed -i '1i SEQUENTIAL' "$d/home.csv" "$d/door.csv"
  printf 'id(int,auto) table_name(string) table_version(int) \nsubscriber:7\n' >"$d/db/version"
}

# domains mode: USERS users spread over $1 domains (dom0001.example ...), in DIR:
# users.conf and users.csv (user;password;contact port;domain)
gen_domain_users() {   # domains dir
  mkdir -p "$2"
  awk -v n="$USERS" -v nd="$1" -v d="$2" 'BEGIN {
    srand(20240601);
    per = int((n + nd - 1) / nd);
    print "SEQUENTIAL" > (d "/users.csv");
    print "version:1" > (d "/users.conf");
    for (i = 1; i <= n; i++) {
      u = sprintf("u%05d", i); dom = sprintf("dom%04d.example", int((i - 1) / per) + 1);
      pw = sprintf("%08x%04x", int(rand() * 4294967295), i % 65536);
      print u ";" pw ";5099;" dom > (d "/users.csv");
      print u "@" dom " clrtxt:" pw " ;" > (d "/users.conf");
    }
  }'
}
# What the registrations of reg and fill steps read (the domains mode switches them).
USERS_DIR=""   # set after gen_users: $OUT/users
REG_SCENARIO=register_auth.xml
REG_AUTH=(-auth_uri bench.example)
REG_DOMAINS=bench.example

# ---------------------------------------------------------------- proxies
# portier-NAME[+relay] runs the binary in PORTIER_PROXY_NAME (upper case): several
# trees side by side in one run
portier_binary() {   # peer
  local p=${1%+relay} var
  [ "$p" = portier ] && { echo "$PORTIER_PROXY"; return; }
  var=PORTIER_PROXY_${p#portier-}; var=${var^^}
  [ -x "${!var:-}" ] || return 1
  echo "${!var}"
}
PROXY_WRAPPER=()
start_proxy() {   # peer
  local peer=$1 dir=$OUT/$1 i
  mkdir -p "$dir/run"
  case $peer in
    portier|portier-*|portier+*)
      local bin relay=false
      bin=$(portier_binary "$peer") || die "peer $peer needs its binary (PORTIER_PROXY...)"
      case $peer in *+relay) relay=true ;; esac
      PROXY_PORT=$PORT_PORTIER
      cp "$USERS_DIR/users.conf" "$dir/run/users.conf"
      local tls_transport=""
      if [ $TLS -eq 1 ]; then
        TLS_PORT=$PORT_PORTIER_TLS
        tls_transport="sips:127.0.0.1:$TLS_PORT;tls-certificates-file=$OUT/tls/server.pem;tls-certificates-private-key=$OUT/tls/server.key"
      fi
      sed -e "s#@PORT@#$PROXY_PORT#g; s#@DIR@#$dir/run#g; s#@RELAY@#$relay#g; s#@RELAY_PORTS@#$RELAY_PORTS#g" \
        -e "s#@DOMAINS@#$REG_DOMAINS#g" \
        -e "s#@TLS_TRANSPORT@#$tls_transport#g" "$HERE/portier.conf.in" >"$dir/portier.conf"
      echo "--- start $(date +%T)" >>"$dir/proxy.log"
      # instr mode: the proxy runs under callgrind, which counts nothing until zeroed
      # (callgrind_control -z) after the registrar fill
      taskset -c "$PROXY_CPU" "${PROXY_WRAPPER[@]}" "$bin" --config "$dir/portier.conf" >>"$dir/proxy.log" 2>&1 &
      PROXY_PID=$!
      ;;
    kamailio|kamailio-authdb)
      local defs=()
      if [ "$peer" = kamailio ]; then PROXY_PORT=$PORT_KAMAILIO; else PROXY_PORT=$PORT_KAMAILIO_AUTHDB; defs=(-A WITH_AUTH_DB); fi
      if [ $TLS -eq 1 ]; then
        TLS_PORT=$PORT_KAMAILIO_TLS; defs+=(-A WITH_TLS)
        printf '[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\nprivate_key = %s\ncertificate = %s\n' \
          "$OUT/tls/server.key" "$OUT/tls/server.pem" >"$dir/tls.cfg"
      fi
      sed -e "s#@PORT@#$PROXY_PORT#g; s#@DBDIR@#$OUT/users/db#g; s#@TLS_PORT@#${TLS_PORT:-0}#g; s#@TLSCFG@#$dir/tls.cfg#g" \
        "$HERE/kamailio/kamailio.cfg.in" >"$dir/kamailio.cfg"
      kamailio -c -f "$dir/kamailio.cfg" "${defs[@]}" >"$dir/check.log" 2>&1 || die "kamailio config check failed, see $dir/check.log"
      echo "--- start $(date +%T)" >>"$dir/proxy.log"
      # foreground (-DD), logs to stderr (-E), own runtime dir and pid file; not the system service
      taskset -c "$PROXY_CPU" kamailio -f "$dir/kamailio.cfg" "${defs[@]}" -DD -E -m "$KAM_SHM_MB" \
        -Y "$dir/run" -P "$dir/run/kamailio.pid" >>"$dir/proxy.log" 2>&1 &
      PROXY_PID=$!
      ;;
    *) die "unknown peer $peer" ;;
  esac
  for i in $(seq 1 300); do
    if [ -n "$(ss -Hlun "sport = :$PROXY_PORT")" ] && { [ $TLS -eq 0 ] || [ -n "$(ss -Hltn "sport = :$TLS_PORT")" ]; }; then
      sleep 0.5; proxy_alive && return 0
    fi
    proxy_alive || break
    sleep 0.1
  done
  log "$peer did not start; last log lines:"; tail -5 "$dir/proxy.log" | tee -a "$LOG" >&2
  stop_proxy
  return 1
}

stop_proxy() {
  [ -n "$PROXY_PID" ] || return 0
  if kill -0 "$PROXY_PID" 2>/dev/null; then
    kill -TERM "$PROXY_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$PROXY_PID" 2>/dev/null && { log "proxy $PROXY_PID ignored SIGTERM, killing"; kill -KILL "$PROXY_PID"; }
  fi
  wait "$PROXY_PID" 2>/dev/null
  local st=$?
  # 143 = ended by our SIGTERM; anything else is worth reporting (>128: killed by signal st-128)
  [ $st -ne 143 ] && [ $st -ne 0 ] && log "proxy exit status $st$([ $st -gt 128 ] && echo " (signal $((st - 128)))")"
  PROXY_PID=""
}

SIPP_PIDS=()
cleanup() {
  local p
  for p in "${SIPP_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  declare -F stop_stunnel >/dev/null && stop_stunnel
  stop_proxy
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- sipp
# -auth_uri: the digest uri must name the Request-URI (RFC 2617 §3.2.2.5, checked
# by portier-proxy); without it sipp writes the proxy's address there.
# sipp_bg STATFILE-PREFIX TIME-LIMIT ARGS...: one bounded sipp on the sipp core, in the
# background; its pid (of timeout(1), which passes on sipp's exit code) in BG_PID
SIPP_TRANSPORT=(-t u1)   # tls mode: -t t1, TCP to stunnel
sipp_bg() {
  local pfx=$1 tl=$2; shift 2
  timeout -k 5 $((tl + 15)) taskset -c "$SIPP_CPU" sipp "$@" "${SIPP_TRANSPORT[@]}" -i 127.0.0.1 -nostdin \
    -timeout "$tl" -buff_size $SIPP_BUF -recv_timeout 10000 \
    -trace_stat -stf "$pfx.csv" -fd 1 -trace_screen -screen_file "$pfx.screen" \
    -trace_err -error_file "$pfx.err" -max_log_size 2000000 >"$pfx.out" 2>&1 &
  BG_PID=$!
  SIPP_PIDS+=("$BG_PID")
}

# last line of a sipp statistics file: "ok failed retrans out_of_call dead elapsed_s"
sipp_stats() {
  [ -s "$1" ] || { echo "0 0 0 0 0 0"; return; }
  awk -F';' 'NR==1 {for (i = 1; i <= NF; i++) c[$i] = i; next}
    {l = $0}
    END {n = split(l, f, ";"); split(f[c["StartTime"]], s, "\t"); split(f[c["CurrentTime"]], e, "\t");
         printf "%d %d %d %d %d %.3f\n", f[c["SuccessfulCall(C)"]], f[c["FailedCall(C)"]],
           f[c["Retransmissions(C)"]], f[c["OutOfCallMsgs(C)"]], f[c["DeadCallMsgs(C)"]], e[3] - s[3]}' "$1"
}

# removes every binding of "home", then registers home at 127.0.0.1:A and :B, each
# from the port it answers on, as a phone does (portier-proxy sends requests to the
# address a REGISTER came from, Kamailio to the Contact: here they are the same)
register_callees() {   # prefix portA portB
  local pfx=$1 rc=0 r port ok
  sipp_bg "$pfx-unreg" 20 "127.0.0.1:$PROXY_PORT" -sf "$SCN/unregister_all.xml" -auth_uri bench.example -inf "$OUT/users/home.csv" \
    -p "$2" -r 1 -m 1
  wait "$BG_PID" || rc=1
  for port in "$2" "$3"; do
    { echo SEQUENTIAL; echo "$(sed -n 2p "$OUT/users/home.csv");$port"; } >"$pfx-home-$port.csv"
    sipp_bg "$pfx-reg-$port" 20 "127.0.0.1:$PROXY_PORT" -sf "$SCN/register_auth.xml" -auth_uri bench.example -inf "$pfx-home-$port.csv" \
      -p "$port" -r 1 -m 1
    wait "$BG_PID"; r=$?
    read -r ok _ < <(sipp_stats "$pfx-reg-$port.csv")
    [ $r -eq 0 ] && [ "${ok:-0}" -eq 1 ] || rc=1
  done
  [ $rc -eq 0 ] || log "registering the callee contacts $2, $3 failed (see $pfx-unreg.*, $pfx-reg-*)"
  return $rc
}

# one load step; prints a result line and returns 0 when the rate was sustained
#   step PEER KIND(reg|call|fill) RATE COUNT
STEP_NO=0
step() {
  local peer=$1 kind=$2 rate=$3 count=$4 dir=$OUT/$1 pfx tl rc=0
  STEP_NO=$((STEP_NO + 1))
  [ $STEP_NO -lt 340 ] || die "too many steps for the port plan"
  pfx=$dir/$(printf '%02d' $STEP_NO)-$kind-$rate
  tl=$((count / rate + 2 * STEP_SECS + 10))
  local ap rp cp
  if [ "$kind" = call ]; then
    # the callee AOR "home" gets exactly two fresh contacts for this step
    ap=$((CALLEE_PORT_BASE + 2 * STEP_NO)) rp=$((CALLEE_PORT_BASE + 2 * STEP_NO + 1)) cp=$((CALLER_PORT_BASE + STEP_NO))
    register_callees "$pfx" "$ap" "$rp" || rc=90
  fi
  local pt0 a0 b0 d0 w0
  local c0; children_cpu; c0=$CHILD_CPU
  local ns0 ns1; ns0=$(proc_ns $(proxy_pids))
  pt0=$(proc_ticks $(proxy_pids)); a0=$(core_idle "$PROXY_CPU"); b0=$(core_idle "$SIPP_CPU")
  d0=$(udp_drops "$PROXY_PORT"); w0=$(now)
  SIPP_PIDS=()
  case $kind in
    reg|fill)
      sipp_bg "$pfx" "$tl" "127.0.0.1:$PROXY_PORT" -sf "$SCN/$REG_SCENARIO" "${REG_AUTH[@]}" -inf "$USERS_DIR/users.csv" \
        -p $REG_SIPP_PORT -r "$rate" -m "$count"
      wait "$BG_PID"; rc=$?
      ;;
    treg)
      # tls mode: TLS_CONNS sipps, one TCP connection each (-t t1; sipp's -t tn closes
      # a connection per call and breaks shared ones), each through stunnel's own TLS
      # connection to the proxy: persistent connections, a share of the rate each
      local i pids=() r1
      SIPP_TRANSPORT=(-t t1)
      for i in $(seq 1 "$TLS_CONNS"); do
        sipp_bg "$pfx-c$i" "$tl" "127.0.0.1:$PORT_STUNNEL" -sf "$OUT/register_auth_tls.xml" \
          -auth_uri bench.example -inf "$OUT/users/users.csv" -p $((REG_SIPP_PORT + i)) \
          -r "$(awk -v r="$rate" -v n="$TLS_CONNS" 'BEGIN {printf "%.3f", r / n}')" -m $((count / TLS_CONNS))
        pids+=("$BG_PID")
      done
      SIPP_TRANSPORT=(-t u1)
      for i in "${pids[@]}"; do wait "$i"; r1=$?; [ $rc -eq 0 ] && rc=$r1; done
      count=$((count / TLS_CONNS * TLS_CONNS))
      ;;
    call)
      local pa pr
      sipp_bg "$pfx-answer" "$tl" -sf "$SCN/call_answer.xml" -p "$ap" -m "$count"; pa=$BG_PID
      sipp_bg "$pfx-ring" "$tl" -sf "$SCN/call_ring.xml" -p "$rp" -m "$count"; pr=$BG_PID
      sleep 0.5
      sipp_bg "$pfx" "$tl" "127.0.0.1:$PROXY_PORT" -sf "$SCN/call_caller.xml" -auth_uri home@bench.example -inf "$OUT/users/door.csv" \
        -p "$cp" -r "$rate" -m "$count"
      local rcall; wait "$BG_PID"; rcall=$?; [ $rc -eq 0 ] && rc=$rcall
      local ra rr
      wait "$pa"; ra=$?; wait "$pr"; rr=$?
      [ $rc -eq 0 ] && [ $ra -ne 0 ] && rc=$((100 + ra))
      [ $rc -eq 0 ] && [ $rr -ne 0 ] && rc=$((200 + rr))
      ;;
  esac
  SIPP_PIDS=()
  local pt1 a1 b1 d1 w1 wall
  ns1=$(proc_ns $(proxy_pids))
  pt1=$(proc_ticks $(proxy_pids)); a1=$(core_idle "$PROXY_CPU"); b1=$(core_idle "$SIPP_CPU")
  d1=$(udp_drops "$PROXY_PORT"); w1=$(now)
  local c1; children_cpu; c1=$CHILD_CPU
  wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN {print b - a}')

  local ok fail retr ooc dead el
  if [ "$kind" = treg ]; then   # the sipps' counts summed, the longest elapsed
    read -r ok fail retr ooc dead el < <(for f in "$pfx"-c*.csv; do sipp_stats "$f"; done |
      awk '{for (i = 1; i <= 5; i++) s[i] += $i; if ($6 > e) e = $6} END {printf "%d %d %d %d %d %.3f\n", s[1], s[2], s[3], s[4], s[5], e}')
  else
    read -r ok fail retr ooc dead el < <(sipp_stats "$pfx.csv")
  fi
  if [ "$kind" = call ]; then      # the callees' failures count too
    local o2 f2 r2 x2 y2 e2
    for s in "$pfx-answer" "$pfx-ring"; do
      read -r o2 f2 r2 x2 y2 e2 < <(sipp_stats "$s.csv")
      fail=$((fail + f2)); retr=$((retr + r2)); ooc=$((ooc + x2))
      [ "$o2" -lt "$ok" ] && fail=$((fail + ok - o2))   # a branch that never saw the call
    done
  fi
  local achieved proxy_cpu core_other sipp_core sipp_cpu sipp_other drops alive=yes verdict
  achieved=$(awk -v o="$ok" -v e="$el" 'BEGIN {printf "%.0f", (e > 0) ? o / e : 0}')
  # CPU of the proxy's processes over the step, and what else ran on its core
  proxy_cpu=$(awk -v t=$((pt1 - pt0)) -v hz="$HZ" -v w="$wall" 'BEGIN {printf "%.0f", 100 * t / hz / w}')
  core_other=$(( $(busy_pct "$a0" "$a1" "$wall") - proxy_cpu ))
  [ $core_other -lt 0 ] && core_other=0
  sipp_core=$(busy_pct "$b0" "$b1" "$wall")
  # the sipp processes' own CPU; the rest of the sipp core's load is someone else's
  sipp_cpu=$(awk -v a="$c0" -v b="$c1" -v w="$wall" 'BEGIN {printf "%.0f", 100 * (b - a) / w}')
  sipp_other=$((sipp_core - sipp_cpu)); [ $sipp_other -lt 0 ] && sipp_other=0
  drops=$(( ${d1:-0} - ${d0:-0} ))
  proxy_alive || alive=no
  verdict=pass
  if [ "$alive" = no ] || [ $rc -ne 0 ] || [ "$fail" -gt 0 ] || [ "$retr" -gt 0 ] || [ "$ok" -lt "$count" ] ||
     awk -v a="$achieved" -v r="$rate" 'BEGIN {exit !(a < 0.9 * r)}'; then
    verdict=FAIL
  fi
  printf '%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\n' \
    "$peer" "$kind" "$rate" "$count" "$ok" "$fail" "$retr" "$ooc" "$dead" "$achieved" "$el" \
    "$proxy_cpu" "$core_other" "$drops" "$sipp_core" "$sipp_cpu" "$sipp_other" "$rc" "$verdict" >>"$RESULTS"
  log "$(printf '%-15s %-4s %6d/s: ok %6d fail %5d retr %5d ooc %4d -> %6s/s in %6ss | proxy %3s%% (+%s%% other) | sipp %3s%% (+%s%% other) | drops %d | rc %d %s%s' \
    "$peer" "$kind" "$rate" "$ok" "$fail" "$retr" "$ooc" "$achieved" "$el" "$proxy_cpu" "$core_other" "$sipp_cpu" "$sipp_other" "$drops" "$rc" "$verdict" \
    "$([ "$alive" = no ] && echo ' PROXY DIED')")"
  LAST_US_PER_OP=$(awk -v n=$((ns1 - ns0)) -v o="$ok" 'BEGIN {if (o > 0) printf "%.1f", n / 1000 / o; else print "-"}')
  LAST_OK=$ok
  LAST_KIND=$kind LAST_RATE=$rate LAST_ACHIEVED=$achieved LAST_CPU=$proxy_cpu LAST_SIPP_CORE=$sipp_core LAST_NOISE=$((core_other > sipp_other ? core_other : sipp_other))
  grep -l 'Unable to bind' "$pfx"*.out >/dev/null 2>&1 && log "a sipp could not bind its port (used by another program?): see $pfx*.out"
  [ "$verdict" = pass ] || return 1
  settle
  return 0
}

# a step that fails while other work took a share of our cores is run again once,
# after the machine is idle again
load_step() {   # peer kind rate
  step "$1" "$2" "$3" $(($3 * STEP_SECS)) && return 0
  if proxy_alive && [ "${LAST_NOISE:-0}" -gt 15 ]; then
    log "failed while other work took ${LAST_NOISE}% of a benchmark core: waiting for an idle machine, then once more"
    recover "$1" || return 2
    wait_idle
    step "$1" "$2" "$3" $(($3 * STEP_SECS)) && return 0
  fi
  recover "$1" || return 2
  return 1
}

# after a failed step the proxy still holds the overload's transactions (INVITE
# branches live up to 60 s): the next step starts from a fresh proxy with the
# registrar filled again, so steps do not contaminate each other
recover() {   # peer
  if proxy_alive; then
    note_rss_end "$1"
  else
    log "$1: PROXY DIED (pid $PROXY_PID)"; R_NOTE[$1]+="DIED during a $LAST_KIND step at ${LAST_RATE}/s; "
  fi
  stop_proxy
  start_proxy "$1" || { R_NOTE[$1]+="did not restart; "; return 1; }
  step "$1" fill "$FILL_RATE" "$USERS" >/dev/null 2>&1 || log "$1: refill after restart had failures"
  proxy_alive
}

note_rss_end() {   # peer: the largest memory seen at the end of a proxy instance
  local rss pss v
  read -r rss pss < <(proxy_mem)
  case $1 in portier*) v=$rss ;; *) v=$pss ;; esac
  [ "$v" -gt "${R_RSSEND[$1]:-0}" ] && R_RSSEND[$1]=$v
}

# highest sustained rate: double from START until a step fails, then bisect.
# Sets BEST (target rate), BEST_ACHIEVED, BEST_CPU, BOUND ("" or a note).
search() {   # peer kind start max granularity
  local peer=$1 kind=$2 r=$3 max=$4 g=$5 lo=0 hi=0 n=0 mid st
  BEST=0 BEST_ACHIEVED=0 BEST_CPU=0 BOUND=""
  local fail_sipp=0 fail_cpu=0
  while [ "$r" -le "$max" ] && [ $n -lt "$MAX_STEPS" ]; do
    n=$((n + 1))
    load_step "$peer" "$kind" "$r"; st=$?
    if [ $st -eq 0 ]; then
      lo=$r BEST_ACHIEVED=$LAST_ACHIEVED BEST_CPU=$LAST_CPU; r=$((r * 2))
    else
      [ $st -eq 2 ] && { BEST=$lo; BOUND="proxy lost"; return; }
      hi=$r fail_sipp=$LAST_SIPP_CORE fail_cpu=$LAST_CPU
      if [ $lo -eq 0 ] && [ "$r" -gt $g ]; then hi=0; r=$(( (r / 4 + g - 1) / g * g )); continue; fi
      break
    fi
  done
  if [ $hi -eq 0 ] && [ $lo -gt 0 ]; then BEST=$lo; BOUND="search limit"; return; fi
  local i
  for i in $(seq 1 "$BISECT"); do
    [ $lo -gt 0 ] && [ $n -lt "$MAX_STEPS" ] || break
    mid=$(( (lo + hi) / 2 / g * g ))
    [ "$mid" -le $lo ] && break
    n=$((n + 1))
    load_step "$peer" "$kind" "$mid"; st=$?
    if [ $st -eq 0 ]; then
      lo=$mid BEST_ACHIEVED=$LAST_ACHIEVED BEST_CPU=$LAST_CPU
    else
      [ $st -eq 2 ] && { BEST=$lo; BOUND="proxy lost"; return; }
      hi=$mid fail_sipp=$LAST_SIPP_CORE fail_cpu=$LAST_CPU
    fi
  done
  BEST=$lo
  # the load generator's core was saturated while the proxy's was not: sipp-bound
  if [ "$fail_sipp" -ge 95 ] && [ "$fail_cpu" -lt 85 ]; then BOUND="sipp-bound"; fi
}

# ---------------------------------------------------------------- one peer
declare -A R_REG R_REG_CPU R_CALL R_CALL_CPU R_RSS0 R_RSS R_RSSEND R_NOTE
bench_peer() {
  local peer=$1 dir=$OUT/$1 rss pss rss0 pss0
  mkdir -p "$dir"
  R_NOTE[$peer]=""
  if [ "$peer" = portier ] && [ ! -x "$PORTIER_PROXY" ]; then
    log "portier-proxy not found at $PORTIER_PROXY: skipped"; R_NOTE[$peer]="not built"; return
  fi
  log "=== $peer"
  start_proxy "$peer" || { R_NOTE[$peer]="did not start"; return; }
  log "$peer: pid $PROXY_PID, UDP 127.0.0.1:$PROXY_PORT, receive buffer $(udp_rcvbuf "$PROXY_PORT") bytes"
  read -r rss0 pss0 < <(proxy_mem)

  # (c) fill the registrar with USERS contacts, then read memory
  step "$peer" fill "$FILL_RATE" "$USERS" || R_NOTE[$peer]+="registrar fill had failures; "
  proxy_alive || { R_NOTE[$peer]+="DIED while filling; "; stop_proxy; return; }
  sleep 2
  read -r rss pss < <(proxy_mem)
  case $peer in
    portier*) R_RSS0[$peer]=$rss0 R_RSS[$peer]=$rss ;;
    *) R_RSS0[$peer]=$pss0 R_RSS[$peer]=$pss ;;   # PSS of all Kamailio processes
  esac
  log "$peer memory: before ${rss0} kB RSS / ${pss0} kB PSS; with $USERS contacts ${rss} kB RSS / ${pss} kB PSS ($(proxy_pids | wc -w) processes)"

  # (a) REGISTER rate
  search "$peer" reg "$REG_START" "$REG_MAX" 50
  R_REG[$peer]=$BEST_ACHIEVED R_REG_CPU[$peer]=$BEST_CPU
  [ -n "$BOUND" ] && R_NOTE[$peer]+="REGISTER: $BOUND; "
  # (b) forked calls
  if proxy_alive; then
    search "$peer" call "$CALL_START" "$CALL_MAX" 10
    R_CALL[$peer]=$BEST_ACHIEVED R_CALL_CPU[$peer]=$BEST_CPU
    [ -n "$BOUND" ] && R_NOTE[$peer]+="calls: $BOUND; "
  fi
  proxy_alive && note_rss_end "$peer"
  stop_proxy
  local nerr
  nerr=$(grep -c -i -E 'crit|error|assert|abort|warn' "$dir/proxy.log" 2>/dev/null)
  [ "${nerr:-0}" -gt 0 ] && log "$peer: $nerr error/warning lines in $dir/proxy.log"
}

# ---------------------------------------------------------------- main
NOISY=0
{
  echo "date: $(date -Is)"
  echo "host: $(uname -srm), $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "sipp: $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1)"
  echo "kamailio: $(kamailio -v 2>/dev/null | head -1)"
  echo "portier: $PORTIER_PROXY (tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), binary $(date -r "$PORTIER_PROXY" +%FT%T 2>/dev/null || echo 'missing') md5 $(md5sum <"$PORTIER_PROXY" 2>/dev/null | cut -c1-12))"
  echo "users: $USERS, step: ${STEP_SECS}s, proxy core $PROXY_CPU, sipp core $SIPP_CPU"
} | tee "$OUT/env.txt" | tee -a "$LOG" >&2
printf 'peer\tkind\trate\tcount\tok\tfailed\tretrans\tout_of_call\tdead\tachieved\telapsed\tproxy_cpu\tcore_other\tudp_drops\tsipp_core\tsipp_cpu\tsipp_other\trc\tverdict\n' >"$RESULTS"

gen_users
USERS_DIR=$OUT/users
for m in $MODE; do
  case $m in cost|relay|top|instr|tls|domains) ;; *) die "unknown BENCH_MODE $m (cost, relay, top, instr, tls, domains)" ;; esac
done
for peer in $PEERS; do
  case $peer in
    portier|portier-*|portier+relay|portier-*+relay)
      portier_binary "$peer" >/dev/null || die "peer $peer needs its binary (PORTIER_PROXY_${peer#portier-})" ;;
    kamailio|kamailio-authdb) ;;
    *) die "unknown peer $peer" ;;
  esac
done
case " $MODE " in *" cost "*|*" relay "*|*" top "*|*" tls "*|*" domains "*) wait_idle ;; esac

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR] = $1} END {if (NR == 0) print "-"; else print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
kind_label() {
  case $1 in
    reg) echo "authenticated REGISTER at $COST_RATE/s" ;;
    call) echo "forked call at $COST_CALL_RATE/s (INVITE 407, INVITE, 2 branches, 180, 200, CANCEL 487, ACK, BYE)" ;;
  esac
}
kind_rate() { [ "$1" = reg ] && echo "$COST_RATE" || echo "$COST_CALL_RATE"; }

# ---------------------------------------------------------------- cost and relay modes
# Each repetition: every peer in turn (fresh proxy, registrar filled with USERS
# contacts, then one step of STEP_SECS per kind at its fixed rate), so a slow minute
# of the VM hits every peer alike. Proxy CPU (utime+stime of all its processes and
# threads, ended ones too) per completed operation (200 OK to the REGISTER; call
# completed by the caller and both callees).
declare -A COST
cost_mode() {   # title kinds...
  local title=$1 rep peer kind v vals; shift
  local kinds=("$@") PEERS=$PEERS
  # relay: every portier peer with its relay off and on, nothing else
  if [ "$title" = relay ]; then
    PEERS=$(for peer in $PEERS; do case $peer in portier*) echo "${peer%+relay} ${peer%+relay}+relay" ;; esac; done |
      tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
  fi
  for rep in $(seq 1 "$COST_REPS"); do
    for peer in $PEERS; do
      mkdir -p "$OUT/$peer"
      start_proxy "$peer" || die "$peer did not start"
      step "$peer" fill "$FILL_RATE" "$USERS" >/dev/null || log "$peer: registrar fill had failures"
      settle
      for kind in "${kinds[@]}"; do
        v=FAIL
        step "$peer" "$kind" "$(kind_rate "$kind")" $(($(kind_rate "$kind") * STEP_SECS)) && v=pass
        COST[$title,$kind,$peer,$rep]="$LAST_US_PER_OP"
        [ $v = pass ] || COST[$title,$kind,$peer,$rep]+=" (FAIL)"
        log "rep $rep $peer: $LAST_US_PER_OP us proxy CPU per $kind ($LAST_OK ok, $v)"
      done
      stop_proxy
    done
  done
  {
    for kind in "${kinds[@]}"; do
      echo
      echo "CPU per $(kind_label "$kind") (${STEP_SECS}s steps, $USERS users, proxy on core $PROXY_CPU), us; peers interleaved"
      printf '%-22s' peer; for rep in $(seq 1 "$COST_REPS"); do printf ' %10s' "rep $rep"; done; printf ' %10s\n' median
      for peer in $PEERS; do
        printf '%-22s' "$peer"
        vals=""
        for rep in $(seq 1 "$COST_REPS"); do
          printf ' %10s' "${COST[$title,$kind,$peer,$rep]// (FAIL)/!}"; vals+="${COST[$title,$kind,$peer,$rep]%% *} "
        done
        COST[$title,$kind,$peer,median]=$(echo "$vals" | median)
        printf ' %10s\n' "${COST[$title,$kind,$peer,median]}"
      done
      for peer in $PEERS; do
        case $peer in
          *+relay)
            case " $PEERS " in *" ${peer%+relay} "*) ;; *) continue ;; esac
            echo "relay on - relay off, $peer: $(awk -v a="${COST[$title,$kind,$peer,median]}" -v b="${COST[$title,$kind,${peer%+relay},median]}" \
              'BEGIN {printf "%+.1f us per call (medians)", a - b}')" ;;
          kamailio)
            for p in $PEERS; do
              case $p in portier|portier-*) echo "ratio $p / kamailio ($kind, medians): $(awk -v a="${COST[$title,$kind,$p,median]}" -v b="${COST[$title,$kind,kamailio,median]}" \
                'BEGIN {if (a > 0 && b > 0) printf "%.2f", a / b; else printf "-"}')" ;; esac
            done ;;
        esac
      done
    done
    echo "(\"!\": the step failed: a call or registration failed, a message was retransmitted, or the rate fell short)"
    [ $NOISY -eq 1 ] && echo "WARNING: the machine was busy with other work: figures are noisy"
    echo "steps: $RESULTS; logs and sipp traces: $OUT"
  } | tee -a "$OUT/summary.txt"
}

# ---------------------------------------------------------------- instr mode
# Every portier peer in turn, under callgrind: registrar filled (not counted), then
# INSTR_REGS registrations at INSTR_REG_RATE/s counted, then INSTR_CALLS forked calls at
# INSTR_CALL_RATE/s counted until their transactions ended (nta keeps them 32 s), so
# the timers' work counts too. User-space instructions of every thread; the kernel's
# share (sendmsg, recvmsg, poll) is not in it. Profiles: OUT/PEER/*.annotate.
instr_count() {   # dir label -> instructions since the last zeroing
  local before f i
  before=$(ls "$1"/callgrind.out.* 2>/dev/null | wc -l)
  callgrind_control --dump="$2" "$PROXY_PID" >/dev/null 2>&1 || { echo 0; return; }
  for i in $(seq 1 100); do
    [ "$(ls "$1"/callgrind.out.* 2>/dev/null | wc -l)" -gt "$before" ] && break
    sleep 0.2
  done
  f=$(ls -t "$1"/callgrind.out.* 2>/dev/null | head -1)
  [ -n "$f" ] && [ -s "$f" ] || { echo 0; return; }
  cp "$f" "$1/callgrind.$2"
  callgrind_annotate --inclusive=no --threshold=99 "$f" >"$1/$2.annotate" 2>/dev/null
  awk '/^(summary|totals):/ {print $2; exit}' "$f"
}
instr_mode() {
  command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || die "instr mode needs valgrind"
  local peer dir n
  declare -A INSTR
  for peer in $PEERS; do
    case $peer in portier*) ;; *) log "instr: $peer skipped (portier peers only)"; continue ;; esac
    dir=$OUT/$peer; mkdir -p "$dir"; rm -f "$dir"/callgrind.out.*
    PROXY_WRAPPER=(valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out.%p")
    start_proxy "$peer" || die "$peer did not start under valgrind"
    step "$peer" fill "$INSTR_REG_RATE" "$USERS" >/dev/null || log "$peer: registrar fill had failures"
    settle
    callgrind_control -z "$PROXY_PID" >/dev/null 2>&1
    step "$peer" reg "$INSTR_REG_RATE" "$INSTR_REGS" || log "$peer: the counted REGISTER step failed"
    n=$LAST_OK; settle; sleep 2
    INSTR[$peer,reg]=$(awk -v i="$(instr_count "$dir" reg)" -v n="$n" 'BEGIN {if (n > 0) printf "%.0f", i / n; else print "-"}')
    callgrind_control -z "$PROXY_PID" >/dev/null 2>&1
    step "$peer" call "$INSTR_CALL_RATE" "$INSTR_CALLS" || log "$peer: the counted call step failed"
    n=$LAST_OK
    log "$peer: waiting 35 s for the calls' transactions to end (their timers count)"
    sleep 35
    INSTR[$peer,call]=$(awk -v i="$(instr_count "$dir" call)" -v n="$n" 'BEGIN {if (n > 0) printf "%.0f", i / n; else print "-"}')
    stop_proxy
    PROXY_WRAPPER=()
  done
  {
    echo
    echo "instructions per operation (callgrind, user space, all threads; $INSTR_REGS REGISTERs at $INSTR_REG_RATE/s, $INSTR_CALLS calls at $INSTR_CALL_RATE/s, $USERS users)"
    printf '%-22s %16s %16s\n' peer REGISTER "forked call"
    for peer in $PEERS; do
      case $peer in portier*) printf '%-22s %16s %16s\n' "$peer" "${INSTR[$peer,reg]}" "${INSTR[$peer,call]}" ;; esac
    done
    echo "profiles (callgrind_annotate, exclusive): $OUT/PEER/reg.annotate, call.annotate"
  } | tee -a "$OUT/summary.txt"
}

# ---------------------------------------------------------------- tls mode
# A CA and a server certificate for bench.example, made for this run.
make_tls_files() {
  local d=$OUT/tls alg=(-newkey rsa:2048)
  [ "$TLS_KEY" = ec ] && alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
  mkdir -p "$d"
  openssl req -x509 "${alg[@]}" -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days 30 \
    -subj "/CN=portier bench CA" >>"$d/openssl.log" 2>&1 &&
    openssl req "${alg[@]}" -nodes -keyout "$d/server.key" -out "$d/server.csr" \
      -subj "/CN=bench.example" >>"$d/openssl.log" 2>&1 &&
    printf 'subjectAltName=DNS:bench.example\n' >"$d/server.ext" &&
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
      -days 30 -extfile "$d/server.ext" -out "$d/server.pem" >>"$d/openssl.log" 2>&1 ||
    die "making the benchmark's certificates failed: $d/openssl.log"
}

# stunnel on the sipp core: sipp's TCP connections in, one TLS connection each out
STUNNEL_PID=""
start_stunnel() {   # dir
  printf 'foreground = yes\npid =\n[sip]\nclient = yes\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\nsslVersionMin = TLSv1.2\n' \
    "$PORT_STUNNEL" "$TLS_PORT" >"$1/stunnel.conf"
  taskset -c "$SIPP_CPU" stunnel "$1/stunnel.conf" >>"$1/stunnel.log" 2>&1 &
  STUNNEL_PID=$!
  local i
  for i in $(seq 1 50); do
    [ -n "$(ss -Hltn "sport = :$PORT_STUNNEL")" ] && return 0
    sleep 0.1
  done
  die "stunnel did not listen on $PORT_STUNNEL: $1/stunnel.log"
}
stop_stunnel() {
  [ -n "$STUNNEL_PID" ] || return 0
  kill -TERM "$STUNNEL_PID" 2>/dev/null; wait "$STUNNEL_PID" 2>/dev/null; STUNNEL_PID=""
}

# CPU per full handshake: BENCH_TLS_HS_RATE/s for BENCH_STEP_SECS
tls_handshake_step() {   # peer
  local dir=$OUT/$1 n=$((TLS_HS_RATE * STEP_SECS)) ns0 ns1 out ok
  ns0=$(proc_ns $(proxy_pids))
  out=$(timeout -k 5 $((STEP_SECS * 3 + 30)) taskset -c "$SIPP_CPU" \
    python3 "$HERE/tls_clients.py" handshakes 127.0.0.1 "$TLS_PORT" "$TLS_HS_RATE" "$n" 2>>"$dir/tls_clients.err")
  sleep 0.5   # the last closes
  ns1=$(proc_ns $(proxy_pids))
  ok=$(awk '{print $2}' <<<"$out")
  log "$1: handshakes: $out"
  LAST_US_PER_OP=$(awk -v n=$((ns1 - ns0)) -v o="${ok:-0}" 'BEGIN {if (o > 0) printf "%.1f", n / 1000 / o; else print "-"}')
  [ "${ok:-0}" -eq "$n" ]
}

# memory per idle connection: BENCH_TLS_IDLE connections held open
tls_idle_step() {   # peer
  local dir=$OUT/$1 rss0 pss0 rss1 pss1 fifo=$OUT/$1/idle.fifo cpid fd ready="" i v0 v1
  read -r rss0 pss0 < <(proxy_mem)
  rm -f "$fifo"; mkfifo "$fifo"
  timeout -k 5 300 taskset -c "$SIPP_CPU" python3 "$HERE/tls_clients.py" idle 127.0.0.1 "$TLS_PORT" "$TLS_IDLE" \
    <"$fifo" >"$dir/idle.out" 2>>"$dir/tls_clients.err" &
  cpid=$!
  exec {fd}>"$fifo"
  for i in $(seq 1 1200); do
    ready=$(awk '/^ready/ {print $2}' "$dir/idle.out" 2>/dev/null)
    [ -n "$ready" ] && break
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.1
  done
  sleep 2
  read -r rss1 pss1 < <(proxy_mem)
  exec {fd}>&-
  wait "$cpid" 2>/dev/null
  rm -f "$fifo"
  case $1 in portier*) v0=$rss0 v1=$rss1 ;; *) v0=$pss0 v1=$pss1 ;; esac
  log "$1: $(cat "$dir/idle.out" 2>/dev/null) idle TLS connections; memory $v0 -> $v1 kB"
  LAST_KB_PER_CONN=$(awk -v a="$v0" -v b="$v1" -v n="${ready:-0}" 'BEGIN {if (n > 0) printf "%.1f", (b - a) / n; else print "-"}')
  [ "${ready:-0}" -eq "$TLS_IDLE" ]
}

declare -A TLSR
tls_mode() {
  local rep peer v vals what
  make_tls_files
  # sipp's Via says TCP, but what reaches the proxy is TLS: sofia's nta drops a
  # request whose Via names another transport than the one it came on
  sed 's#SIP/2.0/\[transport\]#SIP/2.0/TLS#' "$SCN/register_auth.xml" >"$OUT/register_auth_tls.xml"
  TLS=1
  for rep in $(seq 1 "$COST_REPS"); do
    for peer in $PEERS; do
      mkdir -p "$OUT/$peer"
      start_proxy "$peer" || die "$peer did not start with TLS"
      step "$peer" fill "$FILL_RATE" "$USERS" >/dev/null || log "$peer: registrar fill had failures"
      settle
      start_stunnel "$OUT/$peer"
      v=pass; step "$peer" treg "$TLS_RATE" $((TLS_RATE * STEP_SECS)) || v=FAIL
      stop_stunnel
      TLSR[reg,$peer,$rep]=$LAST_US_PER_OP; [ $v = pass ] || TLSR[reg,$peer,$rep]+=" (FAIL)"
      log "rep $rep $peer: $LAST_US_PER_OP us proxy CPU per REGISTER over TLS ($LAST_OK ok, $v)"
      settle
      v=pass; tls_handshake_step "$peer" || v=FAIL
      TLSR[hs,$peer,$rep]=$LAST_US_PER_OP; [ $v = pass ] || TLSR[hs,$peer,$rep]+=" (FAIL)"
      log "rep $rep $peer: $LAST_US_PER_OP us proxy CPU per TLS handshake ($v)"
      settle
      v=pass; tls_idle_step "$peer" || v=FAIL
      TLSR[idle,$peer,$rep]=$LAST_KB_PER_CONN; [ $v = pass ] || TLSR[idle,$peer,$rep]+=" (FAIL)"
      stop_proxy
    done
  done
  TLS=0
  {
    for what in reg hs idle; do
      echo
      case $what in
        reg) echo "CPU per authenticated REGISTER over TLS at $TLS_RATE/s, $TLS_CONNS persistent connections (${STEP_SECS}s steps), us; peers interleaved" ;;
        hs) echo "CPU per full TLS handshake at $TLS_HS_RATE/s ($TLS_KEY key, no resumption), us" ;;
        idle) echo "memory per idle TLS connection ($TLS_IDLE open; portier RSS, Kamailio PSS), kB" ;;
      esac
      printf '%-22s' peer; for rep in $(seq 1 "$COST_REPS"); do printf ' %10s' "rep $rep"; done; printf ' %10s\n' median
      for peer in $PEERS; do
        printf '%-22s' "$peer"; vals=""
        for rep in $(seq 1 "$COST_REPS"); do
          printf ' %10s' "${TLSR[$what,$peer,$rep]// (FAIL)/!}"; vals+="${TLSR[$what,$peer,$rep]%% *} "
        done
        TLSR[$what,$peer,median]=$(echo "$vals" | median)
        printf ' %10s\n' "${TLSR[$what,$peer,median]}"
      done
      case " $PEERS " in *" kamailio "*)
        for p in $PEERS; do
          case $p in portier|portier-*) echo "ratio $p / kamailio ($what, medians): $(awk -v a="${TLSR[$what,$p,median]}" -v b="${TLSR[$what,kamailio,median]}" \
            'BEGIN {if (a > 0 && b > 0) printf "%.2f", a / b; else printf "-"}')" ;; esac
        done ;;
      esac
    done
    echo "(\"!\": the step failed)"
    [ $NOISY -eq 1 ] && echo "WARNING: the machine was busy with other work: figures are noisy"
    echo "steps: $RESULTS; logs: $OUT"
  } | tee -a "$OUT/summary.txt"
}

# ---------------------------------------------------------------- domains mode
# The same USERS users as one domain and as DOMAINS domains, each layout a fresh
# proxy with reg-domains = auth-domains = * (the users file's domains), the
# registrar filled, then one REGISTER step at COST_RATE/s (and a search for the
# highest sustained rate with DOMAINS_SEARCH=1); the layouts interleaved
# COST_REPS times. The Request-URI is the proxy's address (sipp's digest uri
# without -auth_uri), the domain is the To's: one scenario for both layouts.
declare -A DCOST DTOP
domains_mode() {
  local rep peer ndom v vals
  local layouts=("1" "$DOMAINS")
  for ndom in "${layouts[@]}"; do gen_domain_users "$ndom" "$OUT/users-$ndom"; done
  REG_SCENARIO=register_auth_domains.xml REG_AUTH=() REG_DOMAINS="*"
  for rep in $(seq 1 "$COST_REPS"); do
    for peer in $PEERS; do
      case $peer in portier*) ;; *) continue ;; esac
      for ndom in "${layouts[@]}"; do
        USERS_DIR=$OUT/users-$ndom
        mkdir -p "$OUT/$peer"
        if [ "$DOMAINS_INSTR" = 1 ]; then
          # callgrind's instrumentation off until the registrar is full: the fill of
          # 10,000 users runs at a few times native cost instead of fifty.
          local dir=$OUT/$peer/instr-$ndom-$rep
          mkdir -p "$dir"
          PROXY_WRAPPER=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/callgrind.out.%p")
        fi
        start_proxy "$peer" || die "$peer did not start"
        step "$peer" fill "$FILL_RATE" "$USERS" >/dev/null || log "$peer: registrar fill had failures ($ndom domains)"
        settle
        v=pass
        if [ "$DOMAINS_INSTR" = 1 ]; then
          callgrind_control -i on "$PROXY_PID" >/dev/null 2>&1
          callgrind_control -z "$PROXY_PID" >/dev/null 2>&1
          step "$peer" reg "$INSTR_REG_RATE" "$INSTR_REGS" || v=FAIL
          local n=$LAST_OK
          settle; sleep 2
          # The once-a-second housekeeping walks every AOR (purge_expired): its cost
          # is per second and per stored AOR, not per REGISTER, and how many of its
          # ticks fall in the window varies, so it is left out of the figure and
          # shown beside it.
          local total hk
          total=$(instr_count "$dir" reg)
          hk=$(callgrind_annotate --inclusive=yes --threshold=100 "$dir/callgrind.reg" 2>/dev/null |
            awk '/on_housekeeping/ {gsub(",", "", $1); print $1; exit}')
          DCOST[$peer,$ndom,$rep]=$(awk -v i="$total" -v h="${hk:-0}" -v n="$n" 'BEGIN {if (n > 0) printf "%.0f", (i - h) / n; else print "-"}')
          log "rep $rep $peer, $ndom domain(s): all threads $total instructions, of which housekeeping ${hk:-0}, for $n REGISTERs"
          PROXY_WRAPPER=()
        else
          step "$peer" reg "$COST_RATE" $((COST_RATE * STEP_SECS)) || v=FAIL
          DCOST[$peer,$ndom,$rep]=$LAST_US_PER_OP
        fi
        [ $v = pass ] || DCOST[$peer,$ndom,$rep]+="!"
        log "rep $rep $peer, $ndom domain(s): ${DCOST[$peer,$ndom,$rep]} $([ "$DOMAINS_INSTR" = 1 ] && echo instructions || echo us proxy CPU) per REGISTER ($LAST_OK ok, $v)"
        if [ "$DOMAINS_SEARCH" = 1 ]; then
          search "$peer" reg "$REG_START" "$REG_MAX" 250
          DTOP[$peer,$ndom,$rep]="$BEST${BOUND:+ ($BOUND)}"
          log "rep $rep $peer, $ndom domain(s): $BEST REGISTER/s sustained"
        fi
        stop_proxy
      done
    done
  done
  USERS_DIR=$OUT/users REG_SCENARIO=register_auth.xml REG_AUTH=(-auth_uri bench.example) REG_DOMAINS=bench.example
  {
    echo
    if [ "$DOMAINS_INSTR" = 1 ]; then
      echo "instructions per authenticated REGISTER without the once-a-second housekeeping (callgrind, user space, all threads; $INSTR_REGS at $INSTR_REG_RATE/s), $USERS users as 1 domain and as $DOMAINS domains (reg-domains = *); layouts interleaved"
    else
      echo "CPU per authenticated REGISTER at $COST_RATE/s, $USERS users as 1 domain and as $DOMAINS domains (reg-domains = *), us; layouts interleaved"
    fi
    for peer in $PEERS; do
      case $peer in portier*) ;; *) continue ;; esac
      local med=()
      for ndom in "${layouts[@]}"; do
        printf '%-26s' "$peer, $ndom domain(s)"
        vals=""
        for rep in $(seq 1 "$COST_REPS"); do printf ' %10s' "${DCOST[$peer,$ndom,$rep]}"; vals+="${DCOST[$peer,$ndom,$rep]%!} "; done
        med+=("$(echo "$vals" | median)")
        printf ' median %s\n' "${med[-1]}"
        if [ "$DOMAINS_SEARCH" = 1 ]; then
          for rep in $(seq 1 "$COST_REPS"); do echo "  rep $rep: ${DTOP[$peer,$ndom,$rep]} REGISTER/s sustained"; done
        fi
      done
      echo "REGISTER/s at equal $([ "$DOMAINS_INSTR" = 1 ] && echo instructions || echo CPU), $DOMAINS domains / 1 domain ($peer, medians; aim >= 0.9): $(awk -v a="${med[0]}" -v b="${med[1]}" \
        'BEGIN {if (a > 0 && b > 0) printf "%.2f", a / b; else printf "-"}')"
    done
    echo "(\"!\": the step failed: a registration failed, a message was retransmitted, or the rate fell short)"
    [ $NOISY -eq 1 ] && echo "WARNING: the machine was busy with other work: figures are noisy"
    echo "steps: $RESULTS; logs and sipp traces: $OUT"
  } | tee -a "$OUT/summary.txt"
}

for m in $MODE; do
  case $m in
    domains) domains_mode ;;
    cost) cost_mode cost $COST_KINDS ;;
    tls) tls_mode ;;
    relay) cost_mode relay call ;;
    instr) instr_mode ;;
    top) ;;
  esac
done
case " $MODE " in *" top "*) ;; *) exit 0 ;; esac

for peer in $PEERS; do bench_peer "$peer"; done

# ---------------------------------------------------------------- report
fmt() { [ -n "${1:-}" ] && [ "${1:-0}" != 0 ] && echo "$1" || echo "-"; }
mb() { [ -n "${1:-}" ] && awk -v k="$1" 'BEGIN {printf "%.1f MB", k / 1024}' || echo "-"; }
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN {if (a > 0 && b > 0) printf "%.2f", a / b; else printf "-"}'; }
{
  echo
  echo "portier proxy benchmark ($USERS users, proxy pinned to core $PROXY_CPU, sipp on core $SIPP_CPU, UDP loopback)"
  [ $NOISY -eq 1 ] && echo "WARNING: the machine was busy with other work: figures are noisy"
  printf '%-16s %12s %6s %16s %6s %18s %12s %12s  %s\n' peer "REGISTER/s" "cpu%" "forked calls/s" "cpu%" "RSS $USERS contacts" "RSS start" "RSS end" notes
  for peer in $PEERS; do
    printf '%-16s %12s %6s %16s %6s %18s %12s %12s  %s\n' "$peer" "$(fmt "${R_REG[$peer]:-}")" "$(fmt "${R_REG_CPU[$peer]:-}")" \
      "$(fmt "${R_CALL[$peer]:-}")" "$(fmt "${R_CALL_CPU[$peer]:-}")" "$(mb "${R_RSS[$peer]:-}")" "$(mb "${R_RSS0[$peer]:-}")" \
      "$(mb "${R_RSSEND[$peer]:-}")" "${R_NOTE[$peer]:-}"
  done
  echo "(RSS: portier VmRSS; kamailio: PSS summed over all its processes, shared memory counted once)"
  echo "(cpu%: the proxy's utime+stime over the best passing step; 100% = its whole core)"
  for k in kamailio kamailio-authdb; do
    case " $PEERS " in *" portier "*) ;; *) continue ;; esac
    case " $PEERS " in *" $k "*) ;; *) continue ;; esac
    echo "ratio portier/$k: REGISTER $(ratio "${R_REG[portier]:-}" "${R_REG[$k]:-}"), forked calls $(ratio "${R_CALL[portier]:-}" "${R_CALL[$k]:-}"), RSS with $USERS contacts $(ratio "${R_RSS[portier]:-}" "${R_RSS[$k]:-}")"
  done
  noisy_steps=$(awk -F'\t' 'NR > 1 && ($13 > 15 || $17 > 15)' "$RESULTS" | wc -l)
  [ "$noisy_steps" -gt 0 ] && echo "WARNING: in $noisy_steps steps other work took more than 15% of a benchmark core (columns core_other, sipp_other of $RESULTS)"
  echo "steps: $RESULTS; logs and sipp traces: $OUT"
} | tee -a "$OUT/summary.txt"
