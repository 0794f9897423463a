#!/usr/bin/env bash
# The failover chain of hearsay-node and redis-server side by side: 6 nodes (three
# masters, one replica each), node timeout 2000 ms, one master stopped with SIGSTOP;
# first PFAIL, FAIL decided, FAIL known by all, election started, won, promoted, in
# seconds after the stop, as the median of 5 runs alternating between the servers,
# and the hearsay/redis ratio of stop-to-promotion (acceptance: 0.9 to 1.1).
#
# Usage: sudo scripts/bench-failover.sh [runs]   (default 5; needs root, nft, redis-server)
# Each run's chain is in results/bench-failover/<stamp>/runs.json.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
# NO_BUILD=1: the binaries are built already (CI runs this under sudo, without cargo).
[ -n "${NO_BUILD:-}" ] || cargo build --release -p hearsay -p hearsay-node -q
nice -n 10 target/release/hearsay scale --targets hearsay,redis --nodes 6 --replicas 1 \
  --node-timeout 2000 --failover-only --runs "$RUNS" --results-dir results/bench-failover \
  | sed -n '/Failover chain/,/^hearsay \/ redis/p;/stop to promotion/p;/^outputs:/p'
