#!/usr/bin/env bash
# SET/GET throughput of hearsay-node against redis-server, measured in the same run:
#
#   1. redis-benchmark rates, 50 clients, -P 1 and -P 16, single node (one node owning
#      every slot) and --cluster (three masters of each kind), as the median of 3 runs
#      alternating between the servers, and the ratio hearsay/redis;
#   2. instructions per request of each server under valgrind --tool=callgrind (stable
#      on a noisy machine, unlike rates), single node, counted only while the benchmark
#      runs, and the ratio.
#
# Usage: scripts/bench.sh [requests] [--no-callgrind] [--no-cluster] [--no-rates]
#        (default 200000 requests; --no-rates: only the instruction counts, which a busy
#        machine does not disturb)
# Ports 23000-23299 (below the ephemeral range: thousands of client sockets must not
# hold a port a server is about to bind). Run it inside a network namespace of your own
# when others share the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
N=200000
CALLGRIND=1
CLUSTER=1
RATES=1
for a in "$@"; do
  case "$a" in
    --no-rates) RATES=0 ;;
    --no-callgrind) CALLGRIND=0 ;;
    --no-cluster) CLUSTER=0 ;;
    *) N=$a ;;
  esac
done
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
  local args=(--port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf
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

single() { # kind port
  start "$1" "$2"
  redis-cli -p "$2" cluster addslotsrange 0 16383 >/dev/null
  wait_ok "$2"
}

cluster3() { # kind port1 port2 port3
  local kind=$1; shift
  for p in "$@"; do start "$kind" "$p"; done
  redis-cli --cluster create "${@/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >/dev/null 2>&1
  for p in "$@"; do wait_ok "$p"; done
}

rps() { # port test pipeline [--cluster]
  redis-benchmark -p "$1" -c 50 -n "$N" -t "$2" -P "$3" -r 100000 -q --csv ${4:-} 2>/dev/null \
    | awk -F'","' '/^"[A-Z]/ && !/^"test"/ {gsub(/"/,"",$2); print $2; exit}'
}

median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
ratio() { awk -v h="$1" -v r="$2" 'BEGIN { if (r > 0) printf "%.2f", h / r; else print "n/a" }'; }

# Alternates redis, hearsay, redis, hearsay... three times; prints one line.
compare() { # label redis-port hearsay-port test pipeline [--cluster]
  local label=$1 rp=$2 hp=$3 t=$4 P=$5 extra=${6:-}
  local r=() h=()
  for _ in 1 2 3; do
    r+=("$(rps "$rp" "$t" "$P" "$extra")")
    h+=("$(rps "$hp" "$t" "$P" "$extra")")
  done
  local rm hm
  rm=$(median3 "${r[@]}"); hm=$(median3 "${h[@]}")
  printf '%-8s %-4s %-3s %14s %14s %7s\n' "$label" "$t" "$P" "$rm" "$hm" "$(ratio "$hm" "$rm")"
}

if [ "$RATES" = 1 ]; then
  # Rates depend on what else runs: print the load they were measured under.
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "requests per second, median of 3 alternating runs (redis-benchmark -c 50 -n $N -r 100000)"
  printf '%-8s %-4s %-3s %14s %14s %7s\n' setup test P redis-server hearsay-node ratio
  single redis 23001
  single hearsay 23002
  for P in 1 16; do for t in set get; do compare single 23001 23002 "$t" "$P"; done; done
  if [ "$CLUSTER" = 1 ]; then
    cluster3 redis 23011 23012 23013
    cluster3 hearsay 23021 23022 23023
    for P in 1 16; do for t in set get; do compare cluster 23011 23021 "$t" "$P" --cluster; done; done
  fi

  echo "load average after the rates: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

if [ "$CALLGRIND" = 1 ] && command -v valgrind >/dev/null; then
  echo
  echo "instructions per request under callgrind (single node, counted during the benchmark only)"
  printf '%-4s %-3s %14s %14s %7s\n' test P redis-server hearsay-node ratio
  irq() { # kind port test P n
    local kind=$1 port=$2 t=$3 P=$4 n=$5 out=$TMP/cg-$1-$2-$3-$4
    # A server that did not start must not leave redis-benchmark retrying forever.
    start "$kind" "$port" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" || return 1
    local pid=$STARTED
    redis-cli -p "$port" cluster addslotsrange 0 16383 >/dev/null
    wait_ok "$port"
    callgrind_control -i on "$pid" >/dev/null 2>&1
    redis-benchmark -p "$port" -c 50 -n "$n" -t "$t" -P "$P" -r 100000 -q >/dev/null 2>&1
    callgrind_control -i off "$pid" >/dev/null 2>&1
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    cat "$out"* | grep -a '^totals:' | awk -v n="$n" '{s += $2} END {printf "%d", s / n}'
  }
  port=23100
  for P in 1 16; do for t in set get; do
    n=20000; [ "$P" = 16 ] && n=100000
    r=$(irq redis $port "$t" "$P" "$n") || r=0; port=$((port + 1))
    h=$(irq hearsay $port "$t" "$P" "$n") || h=0; port=$((port + 1))
    printf '%-4s %-3s %14s %14s %7s\n' "$t" "$P" "$r" "$h" "$(ratio "$h" "$r")"
  done; done
fi
