#!/usr/bin/env bash
# Installs the system packages hearsay needs (Debian/Ubuntu, as root), once.
# redis-server/redis-tools: the reference implementation and redis-cli/redis-benchmark;
# nftables/iptables/iproute2: partitions, loss and delay inside the run's namespaces;
# libfaketime: per-process clock skew; gcc: the malloc shim redis needs under libfaketime;
# redis-sentinel and nutcracker (twemproxy): the sentinel and twemproxy targets (their
# Debian services are never used: the harness starts its own processes).
# With --tests also chromium, for the test that renders a run's report.html headless,
# and what scripts/redis-suite and the client-library tests need: tclsh (tcl) and
# dpkg-dev (apt-get source of redis's test suite), python3-venv (redis-py in a venv).
# With --bench also python3 and valgrind, for scripts/bench.sh and scripts/bench-conns.sh.
set -euo pipefail
need=()
for pair in redis-server:redis-server redis-cli:redis-tools nft:nftables iptables:iptables \
            ip:iproute2 faketime:faketime gcc:gcc ps:procps redis-sentinel:redis-sentinel \
            nutcracker:nutcracker; do
  cmd=${pair%%:*}; pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
if [ "${1:-}" = --tests ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v tclsh >/dev/null 2>&1 || need+=(tcl)
  command -v dpkg-source >/dev/null 2>&1 || need+=(dpkg-dev)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
  [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
fi
if [ "${1:-}" = --bench ]; then
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
fi
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1 ] || need+=(libfaketime)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${need[*]}; run as root (sudo $0) to install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The Debian package may start a default instance on 6379; hearsay never uses it.
exit 0
