#!/usr/bin/env bash
# SET/GET throughput of hearsay-node against redis-server, measured in the same run:
#
#   1. redis-benchmark rates, 50 clients, -P 1 and -P 16, single node (one node owning
#      every slot) and --cluster (three masters of each kind), as the median of 3 runs
#      (--runs K for more) alternating between the servers, and the ratio hearsay/redis;
#      with two CPUs or more the servers run on CPU 1 and redis-benchmark on CPU 0, so
#      that the client and the server under test do not take turns on one core;
#   2. instructions and last-level cache misses per request of each server under
#      valgrind --tool=callgrind (stable on a noisy machine, unlike rates), single node
#      with 100000 keys, counted only while the benchmark runs, and the ratios.
#
# Usage: scripts/bench.sh [requests] [--runs K] [--no-callgrind] [--no-cluster] [--no-rates]
#        (default 200000 requests; --no-rates: only the instruction counts, which a busy
#        machine does not disturb)
# Ports 23000-23299, bus ports 13000-13299 (both below the ephemeral range 32768-60999:
# thousands of client sockets must not hold a port a server is about to bind; the
# default bus port, port + 10000, would fall inside it). Run it inside a network namespace of your own
# when others share the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
N=200000
CALLGRIND=1
CLUSTER=1
RATES=1
RUNS=3
while [ $# -gt 0 ]; do
  a=$1; shift
  case "$a" in
    --runs) RUNS=${1:?--runs needs a count}; shift ;;
    --no-rates) RATES=0 ;;
    --no-callgrind) CALLGRIND=0 ;;
    --no-cluster) CLUSTER=0 ;;
    *) N=$a ;;
  esac
done
PIN_SERVER=()
PIN_CLIENT=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  PIN_SERVER=(taskset -c 1)
  PIN_CLIENT=(taskset -c 0)
fi
cargo build --release -p hearsay-node -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/hearsay-node
TMP=$(mktemp -d /tmp/hearsay-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

start() { # kind port [wrapper...]: a cluster-enabled node; its pid in $STARTED
  local kind=$1 port=$2; shift 2
  local d=$TMP/$port
  mkdir -p "$d"
  local args=(--port "$port" --cluster-port $((port - 10000)) --bind 127.0.0.1
              --cluster-enabled yes --cluster-config-file nodes.conf
              --dir "$d" --logfile log.txt --save "" --appendonly no)
  if [ "$kind" = redis ]; then "$@" redis-server "${args[@]}" --protected-mode no >/dev/null 2>&1 &
  else "$@" "$BIN" "${args[@]}" >/dev/null 2>&1 & fi
  STARTED=$!
  PIDS+=("$STARTED")
  # Under valgrind on a loaded machine a start takes long: wait up to 2 min.
  for _ in $(seq 1200); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "server on $port did not start" >&2; return 1
}

wait_ok() { for _ in $(seq 200); do redis-cli -p "$1" cluster info 2>/dev/null | grep -q cluster_state:ok && return 0; sleep 0.1; done; return 1; }

single() { # kind port; the pid in $GROUP
  start "$1" "$2" "${PIN_SERVER[@]}"
  GROUP=$STARTED
  redis-cli -p "$2" cluster addslotsrange 0 16383 >/dev/null
  wait_ok "$2"
}

cluster3() { # kind port1 port2 port3; the pids in $GROUP
  local kind=$1; shift
  GROUP=
  for p in "$@"; do start "$kind" "$p" "${PIN_SERVER[@]}"; GROUP="$GROUP $STARTED"; done
  redis-cli --cluster create "${@/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >/dev/null 2>&1
  for p in "$@"; do wait_ok "$p"; done
}

rps() { # port test pipeline [--cluster]
  "${PIN_CLIENT[@]}" redis-benchmark -p "$1" -c 50 -n "$N" -t "$2" -P "$3" -r 100000 -q --csv ${4:-} 2>/dev/null \
    | awk -F'","' '/^"[A-Z]/ && !/^"test"/ {gsub(/"/,"",$2); print $2; exit}'
}

# CPU time (user + system, clock ticks) the given processes have used so far.
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }

# One benchmark run; prints "rate server-CPU-microseconds-per-request".
measure() { # port test pipeline extra pids...
  local port=$1 t=$2 P=$3 extra=$4; shift 4
  local before after rate
  before=$(cpu_ticks "$@")
  rate=$(rps "$port" "$t" "$P" "$extra")
  after=$(cpu_ticks "$@")
  echo "$rate $(awk -v d=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$N" 'BEGIN { printf "%.2f", d * 1e6 / hz / n }')"
}

median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
ratio() { awk -v h="$1" -v r="$2" 'BEGIN { if (r > 0) printf "%.2f", h / r; else print "n/a" }'; }

# Alternates redis, hearsay, redis, hearsay... $RUNS times; prints one line: the median
# rates and their ratio, then the median server CPU per request (all of the setup's
# server processes, user + system; steadier than rates on a shared machine) and its
# ratio (hearsay/redis: below 1.0 is cheaper).
compare() { # label redis-port hearsay-port test pipeline extra redis-pids hearsay-pids
  local label=$1 rp=$2 hp=$3 t=$4 P=$5 extra=$6 rpids=$7 hpids=$8
  local r=() h=() rc=() hc=() m
  for _ in $(seq "$RUNS"); do
    # shellcheck disable=SC2086 # pid lists split on purpose
    read -r -a m <<<"$(measure "$rp" "$t" "$P" "$extra" $rpids)"; r+=("${m[0]}"); rc+=("${m[1]}")
    # shellcheck disable=SC2086
    read -r -a m <<<"$(measure "$hp" "$t" "$P" "$extra" $hpids)"; h+=("${m[0]}"); hc+=("${m[1]}")
  done
  local rm hm rcm hcm
  rm=$(median "${r[@]}"); hm=$(median "${h[@]}"); rcm=$(median "${rc[@]}"); hcm=$(median "${hc[@]}")
  printf '%-8s %-4s %-3s %12s %12s %6s %9s %9s %6s\n' "$label" "$t" "$P" "$rm" "$hm" "$(ratio "$hm" "$rm")" \
    "$rcm" "$hcm" "$(ratio "$hcm" "$rcm")"
}

if [ "$RATES" = 1 ]; then
  # Rates depend on what else runs: print the load they were measured under.
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "requests per second, median of $RUNS alternating runs (redis-benchmark -c 50 -n $N -r 100000)"
  [ ${#PIN_SERVER[@]} -gt 0 ] && echo "servers on CPU 1, redis-benchmark on CPU 0"
  printf '%-8s %-4s %-3s %12s %12s %6s %9s %9s %6s\n' "" "" "" "requests/s" "" "" "server" "CPU us/req" ""
  printf '%-8s %-4s %-3s %12s %12s %6s %9s %9s %6s\n' setup test P redis hearsay ratio redis hearsay ratio
  single redis 23001; rg=$GROUP
  single hearsay 23002; hg=$GROUP
  for P in 1 16; do for t in set get; do compare single 23001 23002 "$t" "$P" "" "$rg" "$hg"; done; done
  if [ "$CLUSTER" = 1 ]; then
    cluster3 redis 23011 23012 23013; rg=$GROUP
    cluster3 hearsay 23021 23022 23023; hg=$GROUP
    for P in 1 16; do for t in set get; do
      compare cluster 23011 23021 "$t" "$P" --cluster "$rg" "$hg"
    done; done
  fi

  echo "load average after the rates: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

if [ "$CALLGRIND" = 1 ] && command -v valgrind >/dev/null; then
  echo
  echo "instructions and last-level cache misses per request under callgrind (single node,"
  echo "100000 keys set first, counted during the benchmark only; the cache modelled as this"
  echo "machine's L1 and a 2 MB last level, the L2 a core has here: the L3 holds everything)"
  printf '%-4s %-3s %12s %12s %6s %9s %9s %6s\n' test P redis-Ir hearsay-Ir ratio redis-LL hearsay-LL ratio
  irq() { # kind port test P n -> "instructions last-level-misses" per request
    local kind=$1 port=$2 t=$3 P=$4 n=$5 out=$TMP/cg-$1-$2-$3-$4
    # A server that did not start must not leave redis-benchmark retrying forever.
    start "$kind" "$port" valgrind --tool=callgrind --instr-atstart=no --cache-sim=yes \
      --LL=2097152,16,64 --callgrind-out-file="$out" || return 1
    local pid=$STARTED
    redis-cli -p "$port" cluster addslotsrange 0 16383 >/dev/null
    wait_ok "$port"
    # Most SETs then overwrite and most GETs hit, as in a keyspace in use.
    redis-benchmark -p "$port" -c 50 -n 150000 -t set -P 16 -r 100000 -q >/dev/null 2>&1
    callgrind_control -i on "$pid" >/dev/null 2>&1
    redis-benchmark -p "$port" -c 50 -n "$n" -t "$t" -P "$P" -r 100000 -q >/dev/null 2>&1
    callgrind_control -i off "$pid" >/dev/null 2>&1
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
    cat "$out"* | grep -a '^totals:' |
      awk -v n="$n" '{ir += $2; ll += $8 + $9 + $10} END {printf "%d %.2f", ir / n, ll / n}'
  }
  port=23100
  for P in 1 16; do for t in set get; do
    n=20000; [ "$P" = 16 ] && n=100000
    r=$(irq redis $port "$t" "$P" "$n") || r="0 0"; port=$((port + 1))
    h=$(irq hearsay $port "$t" "$P" "$n") || h="0 0"; port=$((port + 1))
    read -r rir rll <<<"$r"
    read -r hir hll <<<"$h"
    printf '%-4s %-3s %12s %12s %6s %9s %9s %6s\n' "$t" "$P" "$rir" "$hir" "$(ratio "$hir" "$rir")" \
      "$rll" "$hll" "$(ratio "$hll" "$rll")"
  done; done
fi
