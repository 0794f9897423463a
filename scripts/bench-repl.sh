#!/usr/bin/env bash
# Full-sync time of a replica, hearsay-node -> hearsay-node and redis-server -> redis-server,
# measured in the same run on the same data (N keys, default 1,000,000), and the ratio
# (goal: hearsay within 1.5x of redis).
#
# For each kind: a master owning every slot is loaded with N string keys through
# `redis-cli --pipe`; a replica joins the cluster; the clock starts at CLUSTER REPLICATE
# and stops when the replica reports `master_link_status:up` with N keys. Both use
# `repl-diskless-sync-delay 0` (redis's default waits 5 s for more replicas) and otherwise
# their defaults. hearsay-node is built with --release.
#
# Usage: scripts/bench-repl.sh [N]      (env: BASE_PORT, default 21950; RUNS, default 3)
# Needs redis-server and redis-cli on PATH. Everything runs on 127.0.0.1 and is stopped
# (by PID) at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-1000000}
BASE=${BASE_PORT:-21950}
RUNS=${RUNS:-3}
for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null || { echo "bench-repl: $tool is not installed" >&2; exit 2; }
done
cargo build --release -q -p hearsay-node
HEARSAY=$PWD/target/release/hearsay-node

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"; [ -n "${KEEP:-}" ] && echo "kept $WORK" >&2 || true
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# The load: N `SET key:i value:i` commands in RESP, generated once.
awk -v n="$N" 'BEGIN {
    for (i = 0; i < n; i++) {
        k = "key:" i; v = "value:" i;
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
    }
}' > "$WORK/load.resp"

start() { # kind port dir
    local kind=$1 port=$2 dir=$3
    mkdir -p "$dir"
    local args=(--port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-node-timeout 5000
        --cluster-config-file nodes.conf --dir "$dir" --logfile log.txt --save "" --appendonly no
        --repl-diskless-sync-delay 0)
    if [ "$kind" = redis ]; then
        redis-server "${args[@]}" --protected-mode no >/dev/null 2>&1 &
    else
        "$HEARSAY" "${args[@]}" >/dev/null 2>&1 &
    fi
    PIDS+=($!)
    for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "bench-repl: $kind on $port did not start" >&2; exit 2
}

one_run() { # kind run -> sets LAST_MS (not in a subshell: PIDS must stay visible)
    local kind=$1 run=$2
    local mp=$((BASE + 0)) rp=$((BASE + 1))
    local d="$WORK/$kind-$run"
    start "$kind" "$mp" "$d/m"
    start "$kind" "$rp" "$d/r"
    redis-cli -p "$mp" cluster addslotsrange 0 16383 >/dev/null
    for _ in $(seq 1 200); do
        redis-cli -p "$mp" cluster info | grep -q "cluster_state:ok" && break; sleep 0.05
    done
    redis-cli -p "$mp" --pipe < "$WORK/load.resp" >/dev/null
    [ "$(redis-cli -p "$mp" dbsize)" = "$N" ] || { echo "bench-repl: load failed" >&2; exit 2; }
    redis-cli -p "$rp" cluster meet 127.0.0.1 "$mp" >/dev/null
    local mid; mid=$(redis-cli -p "$mp" cluster myid)
    for _ in $(seq 1 200); do
        redis-cli -p "$rp" cluster nodes | grep -q "$mid" && break; sleep 0.05
    done
    sleep 1
    local t0; t0=$(now_ms)
    redis-cli -p "$rp" cluster replicate "$mid" >/dev/null
    while true; do
        if redis-cli -p "$rp" info replication | grep -q "master_link_status:up" \
            && [ "$(redis-cli -p "$rp" dbsize)" = "$N" ]; then
            break
        fi
        sleep 0.01
        if [ $(( $(now_ms) - t0 )) -gt 600000 ]; then echo "bench-repl: $kind sync timed out" >&2; exit 2; fi
    done
    local t1; t1=$(now_ms)
    LAST_MS=$((t1 - t0))
    # Stop this run's two processes before the next one reuses the ports.
    local n=${#PIDS[@]} p
    for p in "${PIDS[$((n - 2))]}" "${PIDS[$((n - 1))]}"; do
        kill "$p" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$p" 2>/dev/null || true
    done
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

declare -A RESULT
for kind in hearsay redis; do
    times=()
    for run in $(seq 1 "$RUNS"); do one_run "$kind" "$run"; times+=("$LAST_MS"); done
    RESULT[$kind]=$(printf '%s\n' "${times[@]}" | median)
    echo "$kind -> $kind full sync of $N keys: ${times[*]} ms (median ${RESULT[$kind]} ms)"
done
awk -v h="${RESULT[hearsay]}" -v r="${RESULT[redis]}" 'BEGIN {
    ratio = h / r;
    printf "ratio hearsay/redis: %.2f (goal <= 1.50) %s\n", ratio, (ratio <= 1.5 ? "OK" : "OVER")
}'
