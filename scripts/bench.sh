#!/usr/bin/env bash
# GET/SET throughput of hearsay-node and redis-server, measured in the same run with
# redis-benchmark (50 clients, with and without -P 16), and the ratio hearsay/redis.
# Both servers run as single-node clusters owning all slots on 127.0.0.1.
# Usage: scripts/bench.sh [requests]   (default 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
cargo build --release -p hearsay-node -q
BIN=target/release/hearsay-node
TMP=$(mktemp -d /tmp/hearsay-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

start() { # kind port
  local kind=$1 port=$2 d=$TMP/$2
  mkdir -p "$d"
  local args=(--port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf
              --dir "$d" --logfile log.txt --save "" --appendonly no)
  if [ "$kind" = redis ]; then redis-server "${args[@]}" --protected-mode no >/dev/null 2>&1 &
  else "$BIN" "${args[@]}" >/dev/null 2>&1 & fi
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  redis-cli -p "$port" cluster addslotsrange 0 16383 >/dev/null
  for _ in $(seq 100); do redis-cli -p "$port" cluster info | grep -q cluster_state:ok && break; sleep 0.1; done
}

start redis 35001
start hearsay 35002

rps() { # port test pipeline
  redis-benchmark -p "$1" -c 50 -n "$N" -t "$2" -P "$3" -r 100000 -q --csv 2>/dev/null \
    | awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}'
}

printf '%-6s %-4s %14s %14s %7s\n' test P redis-server hearsay-node ratio
for P in 1 16; do
  for t in get set; do
    r=$(rps 35001 $t $P); h=$(rps 35002 $t $P)
    ratio=$(awk -v h="$h" -v r="$r" 'BEGIN { if (r > 0) printf "%.2f", h / r; else print "n/a" }')
    printf '%-6s %-4s %14s %14s %7s\n' "$t" "$P" "$r" "$h" "$ratio"
  done
done
