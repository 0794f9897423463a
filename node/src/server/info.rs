//! INFO, section by section, with redis 7.0's field names and order. The
//! counters are real (see `stats`, `clients`, `mem`); fields about features
//! hearsay does not have (RDB, modules, tracking, eviction, defrag, io
//! threads) print what redis prints when the feature is idle.

use super::clients::Clients;
use super::stats::Stats;
use super::{mono_ms, now_ms};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::mem;
use crate::pubsub::Kind;
use crate::replication::Replication;
use crate::store::Db;

/// Everything INFO reads.
pub(super) struct InfoSources<'a> {
    pub stats: &'a Stats,
    pub config: &'a Config,
    pub clients: Option<&'a Clients>,
    pub cluster: Option<&'a Cluster>,
    pub repl: &'a Replication,
    /// A replica loading its master's RDB while serving old data.
    pub async_loading: bool,
    /// A replica parsing its master's RDB (redis `server.loading`).
    pub loading: bool,
    pub db: &'a Db,
}

/// The default sections (redis `default_sections`), in order.
const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Every section, in the order INFO prints them.
const ALL: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// INFO [section ...]: the sections asked for (redis `genInfoSectionDict`:
/// `default`, `all`, `everything`, or names; unknown names print nothing).
pub(super) fn render(src: &InfoSources<'_>, args: &[String]) -> String {
    let wanted: Vec<String> = args.iter().map(|a| a.to_ascii_lowercase()).collect();
    let mut pick: Vec<&str> = Vec::new();
    if wanted.is_empty() {
        pick.extend(DEFAULT);
    }
    for w in &wanted {
        match w.as_str() {
            "all" | "everything" => pick.extend(ALL),
            "default" => pick.extend(DEFAULT),
            other => {
                if let Some(s) = ALL.iter().find(|s| **s == other) {
                    pick.push(s);
                }
            }
        }
    }
    let mut out = String::new();
    for name in ALL.iter().filter(|s| pick.contains(s)) {
        let (title, body) = section(src, name);
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str("# ");
        out.push_str(title);
        out.push_str("\r\n");
        out.push_str(&body);
    }
    out
}

fn section(src: &InfoSources<'_>, name: &str) -> (&'static str, String) {
    match name {
        "server" => ("Server", server(src)),
        "clients" => ("Clients", clients(src)),
        "memory" => ("Memory", memory(src)),
        "persistence" => (
            "Persistence",
            persistence_info(
                &src.stats.aof,
                &src.stats.rdb,
                src.db.dirty(),
                src.async_loading,
                src.loading,
            ),
        ),
        "stats" => ("Stats", stats(src)),
        "replication" => ("Replication", src.repl.info_text(now_ms())),
        "cpu" => ("CPU", cpu()),
        "modules" => ("Modules", String::new()),
        "commandstats" => ("Commandstats", src.stats.calls.commandstats_text()),
        "errorstats" => ("Errorstats", src.stats.calls.errorstats_text()),
        "latencystats" => ("Latencystats", String::new()),
        "cluster" => (
            "Cluster",
            format!("cluster_enabled:{}\r\n", u8::from(src.cluster.is_some())),
        ),
        _ => ("Keyspace", keyspace(src.db)),
    }
}

fn kv(out: &mut String, key: &str, value: impl std::fmt::Display) {
    out.push_str(key);
    out.push(':');
    out.push_str(&value.to_string());
    out.push_str("\r\n");
}

fn server(src: &InfoSources<'_>) -> String {
    let mut s = String::new();
    let uptime_s = mono_ms().saturating_sub(src.stats.start_mono_ms) / 1000;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let os = format!("Linux {} {}", release.trim(), std::env::consts::ARCH);
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let now = now_ms();
    kv(&mut s, "redis_version", "7.0.15");
    kv(&mut s, "redis_git_sha1", "00000000");
    kv(&mut s, "redis_git_dirty", 0);
    kv(&mut s, "redis_build_id", "hearsay");
    kv(
        &mut s,
        "redis_mode",
        if src.cluster.is_some() {
            "cluster"
        } else {
            "standalone"
        },
    );
    kv(&mut s, "os", os);
    kv(&mut s, "arch_bits", 64);
    kv(&mut s, "monotonic_clock", "POSIX clock_gettime");
    kv(&mut s, "multiplexing_api", "epoll");
    kv(&mut s, "atomicvar_api", "c11-builtin");
    kv(&mut s, "gcc_version", "0.0.0");
    kv(&mut s, "process_id", std::process::id());
    kv(&mut s, "process_supervised", "no");
    kv(
        &mut s,
        "run_id",
        src.cluster
            .map(|c| c.myself().to_string())
            .unwrap_or_else(|| "0".repeat(40)),
    );
    kv(&mut s, "tcp_port", src.config.port());
    kv(&mut s, "server_time_usec", now * 1000);
    kv(&mut s, "uptime_in_seconds", uptime_s);
    kv(&mut s, "uptime_in_days", uptime_s / 86400);
    kv(&mut s, "hz", 10);
    kv(&mut s, "configured_hz", 10);
    // redis: seconds, 24 bits (LRU_CLOCK_RESOLUTION 1000 ms).
    kv(&mut s, "lru_clock", (now / 1000) & ((1 << 24) - 1));
    kv(&mut s, "executable", exe);
    kv(
        &mut s,
        "config_file",
        src.config.config_file.clone().unwrap_or_default(),
    );
    kv(&mut s, "io_threads_active", 0);
    kv(&mut s, "hearsay_version", env!("CARGO_PKG_VERSION"));
    s
}

fn clients(src: &InfoSources<'_>) -> String {
    let mut s = String::new();
    let cluster_connections = src
        .cluster
        .map_or(0, |c| c.node_count().saturating_sub(1) * 2);
    let (connected, max_in, max_out, blocked) = src.clients.map_or((0, 0, 0, 0), |c| {
        (
            c.len(),
            c.recent_max_input,
            c.recent_max_output,
            c.blocked(),
        )
    });
    kv(&mut s, "connected_clients", connected);
    kv(&mut s, "cluster_connections", cluster_connections);
    kv(&mut s, "maxclients", src.config.maxclients());
    kv(&mut s, "client_recent_max_input_buffer", max_in);
    kv(&mut s, "client_recent_max_output_buffer", max_out);
    kv(&mut s, "blocked_clients", blocked);
    kv(&mut s, "tracking_clients", 0);
    kv(&mut s, "clients_in_timeout_table", 0);
    s
}

fn memory(src: &InfoSources<'_>) -> String {
    let mut s = String::new();
    let used = mem::allocated() as u64;
    let rss = mem::rss();
    let peak = src.stats.peak_memory.max(used);
    let total = mem::total_system_memory();
    let maxmemory = src
        .config
        .get("maxmemory")
        .and_then(crate::config::memtoull)
        .unwrap_or(0);
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    kv(&mut s, "used_memory", used);
    kv(&mut s, "used_memory_human", mem::human(used));
    kv(&mut s, "used_memory_rss", rss);
    kv(&mut s, "used_memory_rss_human", mem::human(rss));
    kv(&mut s, "used_memory_peak", peak);
    kv(&mut s, "used_memory_peak_human", mem::human(peak));
    kv(
        &mut s,
        "used_memory_peak_perc",
        format!("{:.2}%", pct(used, peak)),
    );
    let client_mem = src.clients.map_or(0, |c| c.memory());
    kv(&mut s, "used_memory_overhead", client_mem);
    kv(&mut s, "used_memory_startup", 0);
    kv(
        &mut s,
        "used_memory_dataset",
        used.saturating_sub(client_mem),
    );
    kv(
        &mut s,
        "used_memory_dataset_perc",
        format!("{:.2}%", pct(used.saturating_sub(client_mem), used)),
    );
    kv(&mut s, "allocator_allocated", used);
    kv(&mut s, "allocator_active", used);
    kv(&mut s, "allocator_resident", rss);
    kv(&mut s, "total_system_memory", total);
    kv(&mut s, "total_system_memory_human", mem::human(total));
    for (k, v) in [
        ("used_memory_lua", "0"),
        ("used_memory_vm_eval", "0"),
        ("used_memory_lua_human", "0B"),
        ("used_memory_scripts_eval", "0"),
        ("number_of_cached_scripts", "0"),
        ("number_of_functions", "0"),
        ("number_of_libraries", "0"),
        ("used_memory_vm_functions", "0"),
        ("used_memory_vm_total", "0"),
        ("used_memory_vm_total_human", "0B"),
        ("used_memory_functions", "0"),
        ("used_memory_scripts", "0"),
        ("used_memory_scripts_human", "0B"),
    ] {
        kv(&mut s, k, v);
    }
    kv(&mut s, "maxmemory", maxmemory);
    kv(&mut s, "maxmemory_human", mem::human(maxmemory));
    kv(&mut s, "maxmemory_policy", "noeviction");
    kv(&mut s, "allocator_frag_ratio", "1.00");
    kv(&mut s, "allocator_frag_bytes", 0);
    kv(
        &mut s,
        "allocator_rss_ratio",
        format!("{:.2}", ratio(rss, used)),
    );
    kv(&mut s, "allocator_rss_bytes", rss.saturating_sub(used));
    kv(&mut s, "rss_overhead_ratio", "1.00");
    kv(&mut s, "rss_overhead_bytes", 0);
    kv(
        &mut s,
        "mem_fragmentation_ratio",
        format!("{:.2}", ratio(rss, used)),
    );
    kv(&mut s, "mem_fragmentation_bytes", rss.saturating_sub(used));
    kv(&mut s, "mem_not_counted_for_evict", 0);
    kv(&mut s, "mem_replication_backlog", 0);
    kv(&mut s, "mem_total_replication_buffers", 0);
    kv(&mut s, "mem_clients_slaves", 0);
    kv(&mut s, "mem_clients_normal", client_mem);
    kv(&mut s, "mem_cluster_links", 0);
    kv(&mut s, "mem_aof_buffer", src.stats.aof.buffer_length);
    kv(&mut s, "mem_allocator", crate::mem::ALLOCATOR_NAME);
    kv(&mut s, "active_defrag_running", 0);
    kv(&mut s, "lazyfree_pending_objects", 0);
    kv(&mut s, "lazyfreed_objects", 0);
    s
}

fn stats(src: &InfoSources<'_>) -> String {
    let st = src.stats;
    let ks = src.db.stats;
    let mut s = String::new();
    let (channels, patterns, shard) = src.clients.map_or((0, 0, 0), |c| {
        (
            c.pubsub.count(Kind::Channel),
            c.pubsub.count(Kind::Pattern),
            c.pubsub.count(Kind::Shard),
        )
    });
    let kbps = |m: &super::stats::InstMetric| format!("{:.2}", m.get() as f64 / 1024.0);
    kv(&mut s, "total_connections_received", st.total_connections);
    kv(&mut s, "total_commands_processed", st.calls.total_commands);
    kv(&mut s, "instantaneous_ops_per_sec", st.inst_ops.get());
    kv(&mut s, "total_net_input_bytes", st.net_input_bytes);
    kv(&mut s, "total_net_output_bytes", st.net_output_bytes);
    kv(&mut s, "total_net_repl_input_bytes", 0);
    kv(&mut s, "total_net_repl_output_bytes", 0);
    kv(&mut s, "instantaneous_input_kbps", kbps(&st.inst_input));
    kv(&mut s, "instantaneous_output_kbps", kbps(&st.inst_output));
    kv(&mut s, "instantaneous_input_repl_kbps", "0.00");
    kv(&mut s, "instantaneous_output_repl_kbps", "0.00");
    kv(&mut s, "rejected_connections", st.rejected_connections);
    kv(&mut s, "sync_full", 0);
    kv(&mut s, "sync_partial_ok", 0);
    kv(&mut s, "sync_partial_err", 0);
    kv(&mut s, "expired_keys", ks.expired);
    kv(&mut s, "expired_stale_perc", "0.00");
    kv(&mut s, "expired_time_cap_reached_count", 0);
    kv(&mut s, "expire_cycle_cpu_milliseconds", 0);
    kv(&mut s, "evicted_keys", 0);
    kv(&mut s, "evicted_clients", 0);
    kv(&mut s, "total_eviction_exceeded_time", 0);
    kv(&mut s, "current_eviction_exceeded_time", 0);
    kv(&mut s, "keyspace_hits", ks.hits);
    kv(&mut s, "keyspace_misses", ks.misses);
    kv(&mut s, "pubsub_channels", channels);
    kv(&mut s, "pubsub_patterns", patterns);
    kv(&mut s, "pubsubshard_channels", shard);
    kv(&mut s, "latest_fork_usec", 0);
    kv(&mut s, "total_forks", 0);
    kv(&mut s, "migrate_cached_sockets", 0);
    kv(&mut s, "slave_expires_tracked_keys", 0);
    for k in [
        "active_defrag_hits",
        "active_defrag_misses",
        "active_defrag_key_hits",
        "active_defrag_key_misses",
        "total_active_defrag_time",
        "current_active_defrag_time",
        "tracking_total_keys",
        "tracking_total_items",
        "tracking_total_prefixes",
        "unexpected_error_replies",
    ] {
        kv(&mut s, k, 0);
    }
    kv(&mut s, "total_error_replies", st.calls.total_error_replies);
    kv(&mut s, "dump_payload_sanitizations", 0);
    kv(&mut s, "total_reads_processed", st.reads_processed);
    kv(&mut s, "total_writes_processed", st.writes_processed);
    kv(&mut s, "io_threaded_reads_processed", 0);
    kv(&mut s, "io_threaded_writes_processed", 0);
    kv(&mut s, "reply_buffer_shrinks", 0);
    kv(&mut s, "reply_buffer_expands", 0);
    s
}

fn cpu() -> String {
    let mut s = String::new();
    let (u, sys) = mem::cpu(libc::RUSAGE_SELF);
    let (cu, csys) = mem::cpu(libc::RUSAGE_CHILDREN);
    let (tu, tsys) = mem::cpu(libc::RUSAGE_THREAD);
    kv(&mut s, "used_cpu_sys", format!("{sys:.6}"));
    kv(&mut s, "used_cpu_user", format!("{u:.6}"));
    kv(&mut s, "used_cpu_sys_children", format!("{csys:.6}"));
    kv(&mut s, "used_cpu_user_children", format!("{cu:.6}"));
    kv(&mut s, "used_cpu_sys_main_thread", format!("{tsys:.6}"));
    kv(&mut s, "used_cpu_user_main_thread", format!("{tu:.6}"));
    s
}

fn keyspace(db: &Db) -> String {
    let keys = db.len();
    if keys == 0 {
        return String::new();
    }
    format!(
        "db0:keys={keys},expires={},avg_ttl=0\r\n",
        db.expires_count()
    )
}

/// INFO persistence, with redis 7.0's field names (those about fork and
/// copy-on-write are 0: hearsay does not fork).
fn persistence_info(
    aof: &crate::persist::AofInfo,
    rdb: &super::rdb::RdbStats,
    dirty: u64,
    async_loading: bool,
    loading: bool,
) -> String {
    let ok = |b: bool| if b { "ok" } else { "err" };
    let current_bgsave = if rdb.bgsave_in_progress {
        (now_ms().saturating_sub(rdb.bgsave_started_ms) / 1000) as i64
    } else {
        -1
    };
    let mut s = format!(
        "loading:{}\r\nasync_loading:{}\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\n\
         current_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\n\
         rdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\n\
         rdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{current_bgsave}\r\n\
         rdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n\
         aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\n\
         aof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:-1\r\n\
         aof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_last_write_status:{}\r\n",
        u8::from(loading),
        u8::from(async_loading),
        dirty.saturating_sub(rdb.dirty_at_save),
        u8::from(rdb.bgsave_in_progress),
        rdb.last_save_s,
        ok(rdb.last_bgsave_ok),
        rdb.last_bgsave_time_s,
        rdb.saves,
        rdb.last_load_keys_expired,
        rdb.last_load_keys_loaded,
        u8::from(aof.enabled),
        u8::from(aof.rewrite_in_progress),
        u8::from(aof.rewrite_scheduled),
        aof.last_rewrite_time_s,
        ok(!aof.enabled || aof.last_rewrite_ok),
        aof.rewrites,
        ok(!aof.enabled || aof.last_write_ok),
    );
    if aof.enabled {
        s.push_str(&format!(
            "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:0\r\n\
             aof_buffer_length:{}\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\n",
            aof.current_size, aof.base_size, aof.buffer_length
        ));
    }
    s
}
