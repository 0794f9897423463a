//! The rest of redis 7.0.15's configuration table: every option redis-server
//! accepts that `super::SPECS` does not list. There an option has an effect on
//! this node; here most are accepted, validated, reported by CONFIG GET and kept
//! by CONFIG REWRITE, so that redis's own configs and test suite run unchanged,
//! and read by the parts that honour them (`key-load-delay`, `requirepass`...).
//! Names, aliases, kinds, ranges, defaults and mutability are redis's (its
//! `standardConfig` table); where `SPECS` also lists a name, `SPECS` wins.

use super::{Kind, Spec};

const I32MIN: i64 = i32::MIN as i64;
const I32MAX: i64 = i32::MAX as i64;
const U32MAX: i64 = u32::MAX as i64;
const MAX: i64 = i64::MAX;

/// Options redis hides from `CONFIG GET *` (test and debug knobs): only an
/// exact name returns them.
pub(super) const HIDDEN: &[&str] = &[
    "use-exit-on-panic",
    "lua-enable-deprecated-api",
    "rdb-key-save-delay",
    "key-load-delay",
    "watchdog-period",
    "loading-process-events-interval-bytes",
];

const fn spec(
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    default: &'static str,
    mutable: bool,
) -> Spec {
    Spec {
        name,
        aliases,
        kind,
        default,
        mutable,
    }
}

const fn b(n: &'static str, a: &'static [&'static str], d: &'static str, m: bool, _h: bool) -> Spec {
    spec(n, a, Kind::Bool, d, m)
}

const fn s(n: &'static str, a: &'static [&'static str], d: &'static str, m: bool, _h: bool) -> Spec {
    spec(n, a, Kind::Str, d, m)
}

/// Several words in one option (`save`-like): kept as given, joined by spaces.
const fn w(n: &'static str, a: &'static [&'static str], d: &'static str, m: bool, _h: bool) -> Spec {
    spec(n, a, Kind::Words, d, m)
}

const fn e(
    n: &'static str,
    a: &'static [&'static str],
    choices: &'static [&'static str],
    d: &'static str,
    m: bool,
    _h: bool,
) -> Spec {
    spec(n, a, Kind::Enum(choices), d, m)
}

#[allow(clippy::too_many_arguments)]
const fn i(
    n: &'static str,
    a: &'static [&'static str],
    min: i64,
    max: i64,
    d: &'static str,
    m: bool,
    _h: bool,
) -> Spec {
    spec(n, a, Kind::Int { min, max }, d, m)
}

/// A byte count: `1gb`, `64mb`, `100k`... are accepted, CONFIG GET prints bytes.
#[allow(clippy::too_many_arguments)]
const fn m(
    n: &'static str,
    a: &'static [&'static str],
    min: i64,
    max: i64,
    d: &'static str,
    mutable: bool,
    _h: bool,
) -> Spec {
    spec(n, a, Kind::Memory { min, max }, d, mutable)
}

pub(super) const SPECS: &[Spec] = &[
    b("rdbchecksum", &[], "yes", false, false),
    b("io-threads-do-reads", &[], "no", false, false),
    b("rdbcompression", &[], "yes", true, false),
    b("rdb-del-sync-files", &[], "no", true, false),
    b("activerehashing", &[], "yes", true, false),
    b("stop-writes-on-bgsave-error", &[], "yes", true, false),
    b("set-proc-title", &[], "yes", false, false),
    b("dynamic-hz", &[], "yes", true, false),
    b("lazyfree-lazy-eviction", &[], "no", true, false),
    b("lazyfree-lazy-expire", &[], "no", true, false),
    b("lazyfree-lazy-server-del", &[], "no", true, false),
    b("lazyfree-lazy-user-del", &[], "no", true, false),
    b("lazyfree-lazy-user-flush", &[], "no", true, false),
    b("repl-disable-tcp-nodelay", &[], "no", true, false),
    b("repl-diskless-sync", &[], "yes", true, false),
    b("aof-rewrite-incremental-fsync", &[], "yes", true, false),
    b("no-appendfsync-on-rewrite", &[], "no", true, false),
    b("rdb-save-incremental-fsync", &[], "yes", true, false),
    b("aof-use-rdb-preamble", &[], "yes", true, false),
    b("aof-timestamp-enabled", &[], "no", true, false),
    b("replica-lazy-flush", &["slave-lazy-flush"], "no", true, false),
    b("replica-serve-stale-data", &["slave-serve-stale-data"], "yes", true, false),
    b("replica-read-only", &["slave-read-only"], "yes", true, false),
    b("replica-ignore-maxmemory", &["slave-ignore-maxmemory"], "yes", true, false),
    b("jemalloc-bg-thread", &[], "yes", true, false),
    b("activedefrag", &[], "no", true, false),
    b("syslog-enabled", &[], "no", false, false),
    b("crash-log-enabled", &[], "yes", true, false),
    b("crash-memcheck-enabled", &[], "yes", true, false),
    b("use-exit-on-panic", &[], "no", true, true),
    b("disable-thp", &[], "yes", false, false),
    b("replica-announced", &[], "yes", true, false),
    b("latency-tracking", &[], "yes", true, false),
    b("aof-disable-auto-gc", &[], "no", true, false),
    b("replica-ignore-disk-write-errors", &[], "no", true, false),
    b("lua-enable-deprecated-api", &[], "no", false, true),
    s("aclfile", &[], "", false, false),
    s("unixsocket", &[], "", false, false),
    s("replica-announce-ip", &["slave-announce-ip"], "", true, false),
    s("masteruser", &[], "", true, false),
    s("syslog-ident", &[], "redis", false, false),
    s("dbfilename", &[], "dump.rdb", true, false),
    s("server_cpulist", &[], "", false, false),
    s("bio_cpulist", &[], "", false, false),
    s("aof_rewrite_cpulist", &[], "", false, false),
    s("bgsave_cpulist", &[], "", false, false),
    s("ignore-warnings", &[], "", true, false),
    s("proc-title-template", &[], "{title} {listen-addr} {server-mode}", true, false),
    s("bind-source-addr", &[], "", true, false),
    s("masterauth", &[], "", true, false),
    s("requirepass", &[], "", true, false),
    e("syslog-facility", &[], &["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"], "local0", false, false),
    e("repl-diskless-load", &[], &["disabled", "on-empty-db", "swapdb"], "disabled", true, false),
    e("maxmemory-policy", &[], &["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction"], "noeviction", true, false),
    e("oom-score-adj", &[], &["no", "yes", "relative", "absolute"], "no", true, false),
    e("acl-pubsub-default", &[], &["allchannels", "resetchannels"], "resetchannels", true, false),
    e("sanitize-dump-payload", &[], &["no", "yes", "clients"], "no", true, false),
    e("enable-module-command", &[], &["no", "yes", "local"], "no", false, false),
    e("propagation-error-behavior", &[], &["ignore", "panic", "panic-on-replicas"], "ignore", true, false),
    w("shutdown-on-sigint", &[], "default", true, false),
    w("shutdown-on-sigterm", &[], "default", true, false),
    i("list-max-listpack-size", &["list-max-ziplist-size"], I32MIN, I32MAX, "-2", true, false),
    i("active-defrag-cycle-min", &[], 1, 99, "1", true, false),
    i("active-defrag-cycle-max", &[], 1, 99, "25", true, false),
    i("active-defrag-threshold-lower", &[], 0, 1000, "10", true, false),
    i("active-defrag-threshold-upper", &[], 0, 1000, "100", true, false),
    i("lfu-log-factor", &[], 0, I32MAX, "10", true, false),
    i("lfu-decay-time", &[], 0, I32MAX, "1", true, false),
    i("replica-priority", &["slave-priority"], 0, I32MAX, "100", true, false),
    i("maxmemory-samples", &[], 1, I32MAX, "5", true, false),
    i("maxmemory-eviction-tenacity", &[], 0, 100, "10", true, false),
    i("replica-announce-port", &["slave-announce-port"], 0, 65535, "0", true, false),
    i("tcp-backlog", &[], 0, I32MAX, "511", false, false),
    i("repl-timeout", &[], 1, I32MAX, "60", true, false),
    i("list-compress-depth", &[], 0, I32MAX, "0", true, false),
    i("rdb-key-save-delay", &[], I32MIN, I32MAX, "0", true, true),
    i("key-load-delay", &[], I32MIN, I32MAX, "0", true, true),
    i("active-expire-effort", &[], 1, 10, "1", true, false),
    i("min-replicas-to-write", &["min-slaves-to-write"], 0, I32MAX, "0", true, false),
    i("min-replicas-max-lag", &["min-slaves-max-lag"], 0, I32MAX, "10", true, false),
    i("watchdog-period", &[], 0, I32MAX, "0", true, true),
    i("shutdown-timeout", &[], 0, I32MAX, "10", true, false),
    i("repl-diskless-sync-max-replicas", &[], 0, I32MAX, "0", true, false),
    i("unixsocketperm", &[], 0, 511, "0", false, false),
    i("socket-mark-id", &[], 0, U32MAX, "0", false, false),
    i("active-defrag-max-scan-fields", &[], 1, MAX, "1000", true, false),
    i("slowlog-max-len", &[], 0, MAX, "128", true, false),
    i("acllog-max-len", &[], 0, MAX, "128", true, false),
    i("busy-reply-threshold", &["lua-time-limit"], 0, MAX, "5000", true, false),
    i("slowlog-log-slower-than", &[], -1, MAX, "10000", true, false),
    i("latency-monitor-threshold", &[], 0, MAX, "0", true, false),
    m("proto-max-bulk-len", &[], 1048576, MAX, "536870912", true, false),
    i("stream-node-max-entries", &[], 0, MAX, "100", true, false),
    m("repl-backlog-size", &[], 1, MAX, "1048576", true, false),
    i("hash-max-listpack-entries", &["hash-max-ziplist-entries"], 0, MAX, "512", true, false),
    i("set-max-intset-entries", &[], 0, MAX, "512", true, false),
    i("zset-max-listpack-entries", &["zset-max-ziplist-entries"], 0, MAX, "128", true, false),
    m("active-defrag-ignore-bytes", &[], 1, MAX, "104857600", true, false),
    m("hash-max-listpack-value", &["hash-max-ziplist-value"], 0, MAX, "64", true, false),
    m("stream-node-max-bytes", &[], 0, MAX, "4096", true, false),
    m("zset-max-listpack-value", &["zset-max-ziplist-value"], 0, MAX, "64", true, false),
    m("hll-sparse-max-bytes", &[], 0, MAX, "3000", true, false),
    i("tracking-table-max-keys", &[], 0, MAX, "1000000", true, false),
    m("client-query-buffer-limit", &[], 1048576, MAX, "1073741824", true, false),
    m("maxmemory-clients", &[], -100, MAX, "0", true, false),
    i("repl-backlog-ttl", &[], 0, MAX, "3600", true, false),
    i("loading-process-events-interval-bytes", &[], 1024, I32MAX, "2097152", true, true),
    i("tls-port", &[], 0, 65535, "0", true, false),
    i("tls-session-cache-size", &[], 0, I32MAX, "20480", true, false),
    i("tls-session-cache-timeout", &[], 0, I32MAX, "300", true, false),
    b("tls-cluster", &[], "no", true, false),
    b("tls-replication", &[], "no", true, false),
    e("tls-auth-clients", &[], &["no", "yes", "optional"], "yes", true, false),
    b("tls-prefer-server-ciphers", &[], "no", true, false),
    b("tls-session-caching", &[], "yes", true, false),
    s("tls-cert-file", &[], "", true, false),
    s("tls-key-file", &[], "", true, false),
    s("tls-key-file-pass", &[], "", true, false),
    s("tls-client-cert-file", &[], "", true, false),
    s("tls-client-key-file", &[], "", true, false),
    s("tls-client-key-file-pass", &[], "", true, false),
    s("tls-dh-params-file", &[], "", true, false),
    s("tls-ca-cert-file", &[], "", true, false),
    s("tls-ca-cert-dir", &[], "", true, false),
    s("tls-protocols", &[], "", true, false),
    s("tls-ciphers", &[], "", true, false),
    s("tls-ciphersuites", &[], "", true, false),
    w("client-output-buffer-limit", &[], "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60", true, false),
    w("oom-score-adj-values", &[], "0 200 800", true, false),
    s("notify-keyspace-events", &[], "", true, false),
    w("replicaof", &["slaveof"], "", false, false),
    w("latency-tracking-info-percentiles", &[], "50 99 99.9", true, false),
];
