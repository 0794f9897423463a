#!/usr/bin/env bash
# Client connection costs of hearsay-node and redis-server, side by side, in one run:
#
#   1. idle connections: rounds of N connections opened (held idle) and closed; RSS of
#      the server before, with them open, and after they closed; the cost of one idle
#      connection; whether RSS came back within 10 % of where it started;
#   2. maxclients: the reply a connection past the limit gets (must be redis's bytes);
#   3. a request of 1M arguments sent in 1 KB writes: the server's CPU time for it.
#
# Usage: scripts/bench-conns.sh [connections] [rounds]   (default 5000 10)
# Needs python3 (the load generator) and root or a high enough `ulimit -n`.
# Ports 23000-23299 (below the ephemeral range: thousands of client sockets must not
# hold a port a server is about to bind). Run it inside a network namespace of your own
# when others share the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-5000}
ROUNDS=${2:-10}
ulimit -n $((CONNS * 2 + 1024)) 2>/dev/null || true
cargo build --release -p hearsay-node -q
BIN=$PWD/target/release/hearsay-node
TMP=$(mktemp -d /tmp/hearsay-conns.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

start() { # kind port: a standalone server on 127.0.0.1; its pid in $STARTED
  local kind=$1 port=$2 d=$TMP/$2
  mkdir -p "$d"
  local args=(--port "$port" --bind 127.0.0.1 --dir "$d" --logfile log.txt --save "" --appendonly no)
  if [ "$kind" = redis ]; then redis-server "${args[@]}" --protected-mode no >/dev/null 2>&1 &
  else "$BIN" "${args[@]}" >/dev/null 2>&1 & fi
  STARTED=$!
  PIDS+=("$STARTED")
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "server on $port did not start" >&2; return 1
}

cat > "$TMP/load.py" <<'PY'
import os, resource, socket, sys, time

def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def info(port, section, field):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"INFO {section}\r\n".encode())
    s.settimeout(2)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if b"\r\n" in data:
            head = data.index(b"\r\n")
            if len(data) >= head + 2 + int(data[1:head]) + 2:
                break
    s.close()
    for line in data.decode(errors="replace").split("\r\n"):
        if line.startswith(field + ":"):
            return line.split(":", 1)[1]
    return ""

def wait_clients(port, n, limit=60):
    end = time.time() + limit
    while time.time() < end:
        # INFO's own connection counts too.
        if info(port, "clients", "connected_clients") == str(n + 1):
            return True
        time.sleep(0.05)
    return False

def idle(port, pid, conns, rounds):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, conns * 2 + 1024)), hard))
    time.sleep(1)
    base = rss_kb(pid)
    per, after = [], []
    for r in range(rounds):
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
        wait_clients(port, conns)
        time.sleep(0.3)
        opened = rss_kb(pid)
        per.append((opened - base) * 1024 / conns)
        for s in socks:
            s.close()
        wait_clients(port, 0)
        # Freed memory goes back within a second or two (hearsay trims once a
        # second; jemalloc in redis purges on its own schedule).
        time.sleep(2.5)
        after.append(rss_kb(pid))
        print(f"  round {r + 1}: open {opened} KB, closed {after[-1]} KB", file=sys.stderr)
    print(f"{base} {per[0]:.0f} {max(per):.0f} {after[-1]} {100.0 * (after[-1] - base) / base:.1f}")

def maxclients(port):
    ctl = socket.create_connection(("127.0.0.1", port))
    ctl.sendall(b"CONFIG SET maxclients 4\r\n")
    ctl.recv(100)
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    time.sleep(0.3)
    extra = socket.create_connection(("127.0.0.1", port))
    extra.settimeout(2)
    reply = extra.recv(200)
    for s in held:
        s.close()
    ctl.sendall(b"CONFIG SET maxclients 10000\r\n")
    ctl.recv(100)
    print(repr(reply.decode(errors="replace")))

def cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def bigreq(port, pid, n, chunk):
    parts = [b"*%d\r\n$5\r\nRPUSH\r\n$7\r\nbiglist\r\n" % (n + 2)] + [b"$1\r\nx\r\n"] * n
    req = b"".join(parts)
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    before = cpu_s(pid)
    for i in range(0, len(req), chunk):
        s.sendall(req[i:i + chunk])
    s.settimeout(120)
    reply = s.recv(100)
    time.sleep(0.2)
    print(f"{cpu_s(pid) - before:.2f} {reply.strip().decode()}")

mode = sys.argv[1]
if mode == "idle":
    idle(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
elif mode == "maxclients":
    maxclients(int(sys.argv[2]))
else:
    bigreq(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
PY

declare -A IDLE MAXC BIG
port=23200
for kind in redis hearsay; do
  echo "$kind: $ROUNDS rounds of $CONNS idle connections..." >&2
  start "$kind" $port; IDLE[$kind]=$(python3 "$TMP/load.py" idle $port "$STARTED" "$CONNS" "$ROUNDS"); port=$((port + 1))
  start "$kind" $port; MAXC[$kind]=$(python3 "$TMP/load.py" maxclients $port); port=$((port + 1))
  start "$kind" $port; BIG[$kind]=$(python3 "$TMP/load.py" bigreq $port "$STARTED" 1000000 1024); port=$((port + 1))
done

read -r rb rp rpm ra rpct <<<"${IDLE[redis]}"
read -r hb hp hpm ha hpct <<<"${IDLE[hearsay]}"
ratio() { awk -v h="$1" -v r="$2" 'BEGIN { if (r > 0) printf "%.2f", h / r; else print "n/a" }'; }
echo
echo "idle connections: $ROUNDS rounds of $CONNS"
printf '%-34s %14s %14s %7s\n' "" redis-server hearsay-node ratio
printf '%-34s %14s %14s\n' "RSS at start (KB)" "$rb" "$hb"
printf '%-34s %14s %14s %7s\n' "bytes per idle connection (1st)" "$rp" "$hp" "$(ratio "$hp" "$rp")"
printf '%-34s %14s %14s %7s\n' "bytes per idle connection (max)" "$rpm" "$hpm" "$(ratio "$hpm" "$rpm")"
printf '%-34s %14s %14s\n' "RSS after the last round (KB)" "$ra" "$ha"
printf '%-34s %13s%% %13s%%\n' "RSS growth over the rounds" "$rpct" "$hpct"
echo
echo "maxclients (a connection past the limit gets):"
printf '  redis-server: %s\n  hearsay-node: %s\n' "${MAXC[redis]}" "${MAXC[hearsay]}"
[ "${MAXC[redis]}" = "${MAXC[hearsay]}" ] && echo "  same bytes" || echo "  DIFFERENT"
echo
read -r rc rr <<<"${BIG[redis]}"
read -r hc hr <<<"${BIG[hearsay]}"
echo "RPUSH with 1M arguments in 1 KB writes: server CPU seconds"
printf '%-34s %14s %14s %7s\n' "" redis-server hearsay-node ratio
printf '%-34s %14s %14s %7s\n' "CPU s (reply $rr / $hr)" "$rc" "$hc" "$(ratio "$hc" "$rc")"
