//! The tokio shell. It owns sockets, timers, files and the clock, and drives the
//! sans-IO cluster core and the keyspace. All node state sits behind one mutex,
//! the way redis runs everything on one thread: bus packets, client commands
//! and the 100 ms cron each take the lock, feed their input, then drain the
//! core's actions before releasing it. Nothing awaits while the lock is held.

mod blocking;
mod bus;
mod client;
mod host;
pub mod log;
mod migrate;
mod persist;
mod rdb;
mod replication;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;

use crate::cluster::{Action, Cluster, LinkId, LogLevel, Phase};
use crate::config::Config;
use crate::events::{Event, EventKind, EventLine};
use crate::store::Db;
use log::Logger;

/// Wall-clock ms since the Unix epoch: the time the cluster core runs on (redis's
/// `mstime()`), so a faked wall clock skews this node exactly as it skews redis.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// CLOCK_MONOTONIC in ms: comparable across processes on one machine, and not
/// faked by the harness's clock nemesis, so checkers can place events on one timeline.
pub fn mono_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|ts| ts.tv_sec() as u64 * 1000 + ts.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

/// The writer side of one bus link, plus the tasks to abort when the core closes it.
struct LinkHandle {
    /// `None` while the outbound connection is still being established.
    tx: Option<mpsc::UnboundedSender<Vec<u8>>>,
    tasks: Vec<AbortHandle>,
    /// Bytes handed to the writer and not yet written (redis's link send
    /// queue, checked against `cluster-link-sendbuf-limit`).
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

impl LinkHandle {
    fn abort(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Counters for INFO.
#[derive(Default)]
pub struct Stats {
    pub connected_clients: u64,
    pub total_connections: u64,
    pub total_commands: u64,
    pub next_client_id: u64,
    pub start_ms: u64,
    pub start_mono_ms: u64,
    /// INFO persistence's AOF fields, refreshed when the AOF changes.
    pub aof: crate::persist::AofInfo,
    /// BGREWRITEAOF asked for a rewrite (started at the end of the pass).
    pub aof_rewrite_requested: bool,
    /// dump.rdb: saves, BGSAVE requests, INFO persistence's RDB fields.
    pub rdb: rdb::RdbStats,
    /// DEBUG SET-ACTIVE-EXPIRE 0 turns the expiry sweep off (not `Default`:
    /// see `Stats::new`).
    pub active_expire_off: bool,
    /// SHUTDOWN asked the server to stop: `Some(save)` (SAVE / NOSAVE / as configured).
    pub shutdown: Option<Option<bool>>,
    /// Clients waiting in a blocking command (INFO `blocked_clients`).
    pub blocked_clients: u64,
    /// The Lua engine (EVAL script cache, FUNCTION libraries), created on
    /// first use. Kept here because `HostCtx` lends `Stats` to commands.
    pub scripts: Option<Box<crate::commands::scripting::Engine>>,
}

/// The JSON-lines event log (one `EventLine` per line).
struct EventLog {
    out: BufWriter<File>,
    /// `seq` of the next line: 0 at each process start.
    next_seq: u64,
}

/// nodes.conf, opened and locked for the life of the process, written in place
/// as redis does (so the lock stays on the same inode).
struct NodesConf {
    file: File,
}

impl NodesConf {
    fn open(path: &str) -> Result<(NodesConf, Option<String>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("Can't open {path} in order to acquire a lock"))?;
        if nix::fcntl::Flock::lock(
            file.try_clone()?,
            nix::fcntl::FlockArg::LockExclusiveNonblock,
        )
        .is_err()
        {
            bail!(
                "Sorry, the cluster configuration file {path} is already used by a different Redis Cluster node. Please make sure that different nodes use different cluster configuration files."
            );
        }
        let mut text = String::new();
        file.read_to_string(&mut text)
            .with_context(|| format!("Loading the cluster node config from {path}"))?;
        let content = if text.trim().is_empty() {
            None
        } else {
            Some(text)
        };
        Ok((NodesConf { file }, content))
    }

    fn save(&mut self, contents: &str, fsync: bool) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(contents.as_bytes())?;
        self.file.set_len(contents.len() as u64)?;
        if fsync {
            nix::unistd::fsync(self.file.as_fd()).map_err(std::io::Error::from)?;
        }
        Ok(())
    }
}

/// Everything a node is, behind the one lock.
pub struct Node {
    pub cluster: Option<Cluster>,
    pub db: Db,
    pub config: Config,
    pub logger: Logger,
    pub stats: Stats,
    events: Option<EventLog>,
    nodes_conf: Option<NodesConf>,
    links: HashMap<LinkId, LinkHandle>,
    repl: replication::ReplShell,
    /// MIGRATE's cached connections.
    migrate: migrate::MigrateSockets,
    /// The append-only file, when `appendonly yes`.
    aof: Option<crate::persist::Aof>,
}

pub struct Shared {
    node: Mutex<Node>,
    /// Woken whenever a replica acks: WAITing clients recount.
    acks: Notify,
    /// Woken when a key some client blocks on was written.
    keys_ready: Notify,
    /// Woken by SHUTDOWN.
    shutdown: Notify,
}

impl Node {
    fn is_replica(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.is_replica())
    }

    pub fn log(&mut self, level: LogLevel, text: &str) {
        let replica = self.is_replica();
        self.logger.log(level, replica, text);
    }

    fn write_event(&mut self, event: &Event) {
        let Some(log) = self.events.as_mut() else {
            return;
        };
        let node = self
            .cluster
            .as_ref()
            .map(|c| c.myself().to_string())
            .unwrap_or_default();
        let mut text = Vec::with_capacity(256);
        EventLine {
            me: &node,
            seq: log.next_seq,
            wall_ms: now_ms(),
            mono_ms: mono_ms(),
            event,
        }
        .write_to(&mut text);
        log.next_seq += 1;
        let _ = log.out.write_all(&text);
    }

    /// Hands buffered event lines to the kernel (a `write(2)`: from then on a
    /// SIGKILL cannot lose them). Cheap when nothing is buffered.
    fn flush_events(&mut self) {
        if let Some(log) = self.events.as_mut() {
            if !log.out.buffer().is_empty() {
                let _ = log.out.flush();
            }
        }
    }

    /// The last line of a clean shutdown: written, flushed, and the log closed
    /// so that no task still running can add a line after it.
    fn write_stopped(&mut self, reason: &str) {
        self.write_event(&Event::from(EventKind::Stopped {
            reason: reason.to_string(),
        }));
        self.flush_events();
        self.events = None;
    }

    /// Runs the core's deferred work and executes every pending action, then
    /// lets replication follow whatever role the core decided.
    pub fn drain(&mut self, shared: &Arc<Shared>) {
        let now = now_ms();
        if let Some(c) = self.cluster.as_mut() {
            c.before_sleep(now);
        }
        self.run_actions(shared, now);
        self.sync_replication_role(shared);
        // Telling the core about a broken replication link may have queued more.
        self.run_actions(shared, now);
        self.send_getack(now);
        // Blocked clients (XREAD BLOCK) recheck when one of their keys changed.
        if self.db.take_ready_keys() {
            shared.keys_ready.notify_waiters();
        }
        // Every pass ends here before its replies go out: the writes it
        // applied reach the AOF first.
        if std::mem::take(&mut self.stats.aof_rewrite_requested) {
            self.start_aof_rewrite(shared, None);
        }
        self.flush_aof();
    }

    /// Executes the core's queued actions, a batch at a time, by `Phase`:
    /// nodes.conf, then the event lines (flushed), then what other processes
    /// see. Replies to clients go out only after `drain` returns, so they
    /// follow the flush too.
    fn run_actions(&mut self, shared: &Arc<Shared>, now: u64) {
        loop {
            let mut batch = Vec::new();
            while let Some(action) = self.cluster.as_mut().and_then(|c| c.poll_action()) {
                batch.push(action);
            }
            if batch.is_empty() {
                break;
            }
            // Stable: the core's order holds within a phase.
            batch.sort_by_key(Action::phase);
            for action in batch {
                if action.phase() == Phase::Effect {
                    self.flush_events();
                }
                self.run_action(shared, now, action);
            }
            self.flush_events();
        }
    }

    /// redis `clusterNodeCronFreeLinkOnBufferLimitReached`: an outbound link
    /// whose unsent bytes exceed `cluster-link-sendbuf-limit` is freed (the
    /// cron reconnects it).
    fn free_links_over_sendbuf_limit(&mut self) {
        let limit = self
            .config
            .get("cluster-link-sendbuf-limit")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        if limit == 0 {
            return;
        }
        let over: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, h)| h.queued.load(std::sync::atomic::Ordering::Relaxed) > limit)
            .map(|(&id, _)| id)
            .collect();
        for id in over {
            let freed = self
                .cluster
                .as_mut()
                .is_some_and(|c| c.free_link_over_limit(id));
            if freed {
                if let Some(h) = self.links.remove(&id) {
                    h.abort();
                }
            }
        }
    }

    fn run_action(&mut self, shared: &Arc<Shared>, now: u64, action: Action) {
        match action {
            Action::Connect { link, ip, port } => bus::start_connect(shared, self, link, ip, port),
            Action::Send { link, msg } => {
                if let Some(h) = self.links.get(&link) {
                    let Some(tx) = h.tx.as_ref() else { return };
                    let mut bytes = Vec::with_capacity(crate::wire::HEADER_LEN + 512);
                    crate::wire::encode(&msg, &mut bytes);
                    h.queued
                        .fetch_add(bytes.len(), std::sync::atomic::Ordering::Relaxed);
                    // A send fails only if the writer task already ended; the
                    // reader side reports the close to the core.
                    let _ = tx.send(bytes);
                }
            }
            Action::Close { link } => {
                if let Some(h) = self.links.remove(&link) {
                    h.abort();
                }
            }
            Action::SaveConfig { contents, fsync } => {
                if let Some(nc) = self.nodes_conf.as_mut() {
                    if let Err(e) = nc.save(&contents, fsync) {
                        self.log(
                            LogLevel::Warning,
                            &format!("Fatal: can't update cluster config file. ({e})"),
                        );
                        std::process::exit(1);
                    }
                }
            }
            Action::DeleteKeysInSlots { slots } => {
                // Our replicas drop them too (redis `delKeysInSlot`
                // propagates a DEL per key), and so does our AOF
                // (`feed_deletes` appends to it; a replica, which
                // feeds no stream, appends them itself).
                let replica = self.repl.state.is_replica();
                if !replica || self.aof.is_some() {
                    let keys: Vec<Bytes> = slots
                        .iter()
                        .flat_map(|&s| self.db.keys_in_slot(s, usize::MAX))
                        .collect();
                    if replica {
                        for key in keys {
                            self.aof_append(&[Bytes::from_static(b"DEL"), key]);
                        }
                    } else {
                        self.feed_deletes(keys);
                    }
                }
                self.db.delete_slots(&slots);
            }
            Action::FlushAll => {
                self.db.flush_all(now);
                self.feed_writes(&[vec![Bytes::from_static(b"FLUSHALL")]]);
            }
            Action::Event(e) => self.write_event(&e),
            Action::Log { level, text } => self.log(level, &text),
        }
    }

    /// Called by a link task that ended by itself (EOF, I/O error, bad frame):
    /// tells the core, unless the core closed the link first.
    fn link_ended(&mut self, shared: &Arc<Shared>, link: LinkId) {
        if let Some(h) = self.links.remove(&link) {
            h.abort();
            if let Some(c) = self.cluster.as_mut() {
                c.handle_link_closed(now_ms(), link);
            }
            self.drain(shared);
        }
    }
}

/// Binds one listener per configured address. Optional (`-`) addresses may fail.
async fn bind_all(config: &Config, port: u16) -> Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for (addr, optional) in config.bind_addrs() {
        match TcpListener::bind((addr.as_str(), port)).await {
            Ok(l) => out.push(l),
            Err(e) if optional => {
                let _ = e;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("Could not create server TCP listening socket {addr}:{port}")
                })
            }
        }
    }
    if out.is_empty() {
        bail!("No bind address could be used for port {port}");
    }
    Ok(out)
}

/// Starts the node and runs it until SIGTERM/SIGINT.
pub async fn run(config: Config) -> Result<()> {
    let dir = config.dir();
    std::env::set_current_dir(&dir).with_context(|| format!("Can't chdir to '{dir}'"))?;
    let mut logger = Logger::open(&config.logfile(), log::parse_level(&config.loglevel()))
        .context("Can't open the log file")?;
    logger.log(
        LogLevel::Notice,
        false,
        "oO0OoO0OoO0Oo hearsay-node is starting oO0OoO0OoO0Oo",
    );
    logger.log(
        LogLevel::Notice,
        false,
        &format!(
            "hearsay-node version={} (Redis 7.0.15 compatible), bits=64, pid={}, just started",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        ),
    );
    logger.log(LogLevel::Notice, false, "Configuration loaded");
    if !config.pidfile().is_empty() {
        // As redis: a PID file that cannot be written is a warning, not fatal.
        if let Err(e) = std::fs::write(config.pidfile(), format!("{}\n", std::process::id())) {
            logger.log(
                LogLevel::Warning,
                false,
                &format!("Failed to write PID file: {e}"),
            );
        }
    }

    let events = if config.events_file().is_empty() {
        None
    } else {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.events_file())
            .with_context(|| format!("Can't open events-file {}", config.events_file()))?;
        Some(EventLog {
            out: BufWriter::new(f),
            next_seq: 0,
        })
    };

    let now = now_ms();
    let (cluster, nodes_conf, bus_listeners) = if config.cluster_enabled() {
        let bus_port = config.bus_port().map_err(anyhow::Error::msg)?;
        let ccfg = config.cluster_config().map_err(anyhow::Error::msg)?;
        let path = config.cluster_config_file();
        let (nc, content) = NodesConf::open(&path)?;
        let seed: u64 = rand::random();
        let mut cluster = match Cluster::new(ccfg, now, seed, content.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                logger.log(
                    LogLevel::Warning,
                    false,
                    "Unrecoverable error: corrupted cluster config file.",
                );
                return Err(anyhow::anyhow!(
                    "Unrecoverable error: corrupted cluster config file. ({e})"
                ));
            }
        };
        // The core builds log lines only at or above this level.
        cluster.set_log_level(logger.level);
        let listeners = match bind_all(&config, bus_port).await {
            Ok(l) => l,
            Err(e) => {
                logger.log(
                    LogLevel::Warning,
                    false,
                    &format!("Failed listening on port {bus_port} (cluster), aborting."),
                );
                return Err(e);
            }
        };
        (Some(cluster), Some(nc), listeners)
    } else {
        (None, None, Vec::new())
    };
    let client_listeners = bind_all(&config, config.port()).await?;

    let repl = replication::ReplShell::new(&config, now);
    let node = Node {
        cluster,
        db: Db::new(),
        config,
        logger,
        stats: Stats {
            start_ms: now,
            start_mono_ms: mono_ms(),
            next_client_id: 1,
            rdb: rdb::RdbStats::new(now),
            ..Stats::default()
        },
        events,
        nodes_conf,
        links: HashMap::new(),
        repl,
        migrate: migrate::MigrateSockets::default(),
        aof: None,
    };
    let shared = Arc::new(Shared {
        node: Mutex::new(node),
        acks: Notify::new(),
        keys_ready: Notify::new(),
        shutdown: Notify::new(),
    });
    {
        let mut n = shared.node.lock();
        // Marks each (re)start in the event log: checkers judge what a restart may
        // lose (e.g. a lazily saved currentEpoch) against what came before it.
        if let Some(id) = n.cluster.as_ref().map(|c| c.myself().to_string()) {
            n.write_event(&Event::from(EventKind::Started { id }));
            n.flush_events();
        }
        let port = n.config.port();
        let mode = if n.cluster.is_some() {
            "cluster"
        } else {
            "standalone"
        };
        if n.config.get("always-show-logo") == Some("yes") {
            // redis's logo carries the port and PID (its test suite waits for
            // " PID: <pid>"); ours is plainer, with the same facts.
            let logo = format!(
                "\n    hearsay-node {} (Redis 7.0.15 compatible) 64 bit\n\n    Running in {mode} mode\n    Port: {port}\n    PID: {}\n\n",
                env!("CARGO_PKG_VERSION"),
                std::process::id()
            );
            n.logger.log_raw(LogLevel::Notice, &logo);
        } else {
            n.log(
                LogLevel::Notice,
                &format!("Running mode={mode}, port={port}."),
            );
        }
        n.log(LogLevel::Notice, "Server initialized");
        // The data set is loaded before any client or peer is served: the
        // AOF if it is on, else dump.rdb (redis `loadDataFromDisk`).
        if n.config.get("appendonly") == Some("yes") {
            n.open_aof()?;
        } else {
            n.load_rdb_at_startup()?;
        }
        // Keys in slots we don't serve (redis `verifyClusterConfigWithData`).
        let node = &mut *n;
        if let Some(c) = node.cluster.as_mut() {
            c.verify_config_with_data(&node.db);
        }
        n.drain(&shared);
        n.log(LogLevel::Notice, "Ready to accept connections");
    }

    for l in bus_listeners {
        tokio::spawn(bus::accept_loop(shared.clone(), l));
    }
    for l in client_listeners {
        tokio::spawn(client::accept_loop(shared.clone(), l));
    }
    tokio::spawn(cron(shared.clone()));
    tokio::spawn(persist::fsync_loop(shared.clone()));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let which = tokio::select! {
        _ = term.recv() => Some("SIGTERM"),
        _ = int.recv() => Some("SIGINT"),
        _ = shared.shutdown.notified() => None,
    };
    let mut n = shared.node.lock();
    match which {
        Some(sig) => n.log(
            LogLevel::Warning,
            &format!("Received {sig} scheduling shutdown..."),
        ),
        None => n.log(LogLevel::Warning, "User requested shutdown..."),
    }
    n.drain(&shared);
    n.aof_shutdown();
    let save = n.stats.shutdown.flatten();
    n.rdb_shutdown(save);
    if !n.config.pidfile().is_empty() {
        n.log(LogLevel::Notice, "Removing the pid file.");
        let _ = std::fs::remove_file(n.config.pidfile());
    }
    n.log(
        LogLevel::Warning,
        "hearsay-node is now ready to exit, bye bye...",
    );
    n.write_stopped(which.unwrap_or("SHUTDOWN"));
    // Everything that must reach the disk has (AOF synced, RDB saved,
    // events flushed): exit now, as redis does, rather than free a big
    // data set key by key and wait for background tasks.
    std::process::exit(0)
}

/// The 100 ms timer: `clusterCron`, active key expiry (replicated as DELs)
/// and the master's replication pings.
async fn cron(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let mut n = shared.node.lock();
        let now = now_ms();
        n.free_links_over_sendbuf_limit();
        if let Some(c) = n.cluster.as_mut() {
            c.tick(now);
        }
        // Deletes nothing on a replica or while paused (see refresh_expire_mode).
        n.refresh_expire_mode(now);
        if !n.stats.active_expire_off {
            let expired = n.db.active_expire(now, 200);
            n.feed_deletes(expired);
        }
        n.replication_cron(&shared, now);
        n.rdb_cron(&shared, now);
        n.migrate.close_idle(now / 1000);
        n.aof_cron(&shared);
        n.drain(&shared);
    }
}
