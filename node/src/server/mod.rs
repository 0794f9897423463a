//! The tokio shell. It owns sockets, timers, files and the clock, and drives the
//! sans-IO cluster core and the keyspace. All node state sits behind one mutex,
//! the way redis runs everything on one thread: bus packets, client commands
//! and the 100 ms cron each take the lock, feed their input, then drain the
//! core's actions before releasing it. Nothing awaits while the lock is held.

mod blocking;
mod bus;
mod client;
mod clients;
mod host;
mod info;
pub mod log;
mod migrate;
mod persist;
mod rdb;
mod replication;
mod stats;

pub use stats::{InstMetric, Stats};

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

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
    // clock_gettime(CLOCK_REALTIME) itself, as `SystemTime::now` calls it:
    // `duration_since` and its `Duration` arithmetic cost about 50
    // instructions more, and every client pass reads the clock.
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 || ts.tv_sec < 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
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
    /// Client connections.
    clients: clients::Clients,
    /// A request of the running client pass had effects that must be applied
    /// before the next client runs (an admin command, EXEC, ...): the pass
    /// drains at its end, as before.
    drain_now: bool,
    /// Client passes of this event-loop turn left their effects (cluster
    /// actions, AOF flush, replication role) for the turn's end: `before_park`
    /// drains once before writing the replies, as redis's `beforeSleep` runs
    /// once per turn, not once per client read.
    drain_due: bool,
}

pub struct Shared {
    node: Mutex<Node>,
    /// Woken whenever a replica acks: WAITing clients recount.
    acks: Notify,
    /// Woken when a key some client blocks on was written.
    keys_ready: Notify,
    /// Woken by SHUTDOWN.
    shutdown: Notify,
    /// Woken when bus input left the core deferred work (`before_sleep`);
    /// see [`before_sleep_loop`].
    before_sleep_due: Notify,
}

impl Node {
    fn is_replica(&self) -> bool {
        self.repl.state.is_replica() || self.cluster.as_ref().is_some_and(|c| c.is_replica())
    }

    /// redis `getClusterConnectionsCount`: two links per other node.
    fn cluster_connections(&self) -> usize {
        self.cluster
            .as_ref()
            .map_or(0, |c| c.node_count().saturating_sub(1) * 2)
    }

    /// The pause in force now (CLIENT PAUSE or a manual failover's).
    fn pause_kind(&self, now: u64) -> crate::commands::PauseKind {
        let failover = self.cluster.as_ref().and_then(|c| c.client_pause_until());
        self.clients.pause_kind(now, failover)
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
        self.drain_at(shared, now_ms());
    }

    /// [`Node::drain`] at a time the caller already read (a client pass).
    fn drain_at(&mut self, shared: &Arc<Shared>, now: u64) {
        self.drain_due = false;
        if let Some(c) = self.cluster.as_mut() {
            c.before_sleep(now);
        }
        self.drain_actions_at(shared, now);
    }

    /// After bus input: as [`Node::drain`], but the core's `before_sleep`
    /// (state update, nodes.conf save, failover steps) runs once for all
    /// the bus input ready now, as redis runs `clusterBeforeSleep` once per
    /// event-loop pass, not once per packet. A forming 200-node cluster
    /// otherwise rewrites nodes.conf for nearly every packet.
    pub(super) fn drain_bus(&mut self, shared: &Arc<Shared>) {
        self.drain_actions_at(shared, now_ms());
        if self.cluster.as_ref().is_some_and(|c| c.before_sleep_due()) {
            shared.before_sleep_due.notify_one();
        }
    }

    fn drain_actions_at(&mut self, shared: &Arc<Shared>, now: u64) {
        self.run_actions(shared, now);
        self.sync_replication_role(shared, now);
        // Telling the core about a broken replication link may have queued more.
        self.run_actions(shared, now);
        self.send_getack(now);
        // Blocked clients (XREAD BLOCK) recheck when one of their keys changed.
        if self.db.take_ready_keys() {
            shared.keys_ready.notify_waiters();
        }
        // A pause that lapsed or was lifted lets held requests run again.
        if self.clients.has_postponed() {
            let kind = self.pause_kind(now);
            self.clients.release_postponed(kind);
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
        // Usually there is nothing: every client pass comes here, twice.
        while let Some(first) = self.cluster.as_mut().and_then(|c| c.poll_action()) {
            let mut batch = vec![first];
            while let Some(action) = self.cluster.as_mut().and_then(|c| c.poll_action()) {
                batch.push(action);
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
            Action::Publish {
                channel,
                message,
                shard,
            } => {
                // redis skips the work when nobody here could receive it.
                if self.clients.pubsub.has_subscribers(shard) {
                    let limits = self.clients.limits.obuf;
                    let (_, logs) = self
                        .clients
                        .deliver(&channel, &message, shard, &limits, now);
                    for log in logs {
                        self.log(LogLevel::Warning, &log);
                    }
                }
            }
            Action::DropShardChannels { slots } => {
                let limits = self.clients.limits.obuf;
                for log in self.clients.drop_shard_slots(&slots, &limits, now) {
                    self.log(LogLevel::Warning, &log);
                }
            }
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

/// A startup failure already written to the node's log, as redis writes it: the
/// process exits 1 without repeating it on stderr (redis's own test suite counts
/// any stderr output of a server as a failed test, and retries a port clash
/// only when the server fails quietly).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Logged(pub String);

/// redis `listenToPort`: one listener per configured address (optional `-`
/// addresses may fail); a failure is logged as redis logs it, then "Failed
/// listening on port <port> (<what>), aborting.".
async fn bind_all(
    config: &Config,
    port: u16,
    what: &str,
    logger: &mut Logger,
) -> Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for (addr, optional) in config.bind_addrs() {
        match TcpListener::bind((addr.as_str(), port)).await {
            Ok(l) => out.push(l),
            Err(e) => {
                logger.log(
                    LogLevel::Warning,
                    false,
                    &format!(
                        "Warning: Could not create server TCP listening socket {addr}:{port}: bind: {}",
                        strerror(&e)
                    ),
                );
                if !optional {
                    out.clear();
                    break;
                }
            }
        }
    }
    if out.is_empty() {
        let line = format!("Failed listening on port {port} ({what}), aborting.");
        logger.log(LogLevel::Warning, false, &line);
        return Err(Logged(line).into());
    }
    Ok(out)
}

/// The C library's text for an I/O error ("Address already in use"), without
/// Rust's " (os error 98)".
fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// redis `CONFIG_MIN_RESERVED_FDS`: descriptors kept for files and the bus.
const MIN_RESERVED_FDS: u64 = 32;

/// redis `adjustOpenFilesLimit`: raise the open files limit to what
/// `maxclients` needs, or lower `maxclients` to what the limit allows.
fn adjust_open_files_limit(config: &mut Config, logger: &mut Logger) {
    let maxclients = config.maxclients() as u64;
    let needed = maxclients + MIN_RESERVED_FDS;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        logger.log(
            LogLevel::Warning,
            false,
            "Unable to obtain the current NOFILE limit, assuming 1024 and setting the max clients configuration accordingly.",
        );
        let _ = config.set("maxclients", &(1024 - MIN_RESERVED_FDS).to_string());
        return;
    }
    if lim.rlim_cur >= needed {
        return;
    }
    // Try the full amount, then step down as redis does.
    let mut best = lim.rlim_cur;
    let mut want = needed;
    let mut error = String::new();
    while want > lim.rlim_cur {
        let new = libc::rlimit {
            rlim_cur: want,
            rlim_max: lim.rlim_max.max(want),
        };
        // SAFETY: `new` is a valid rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
            best = want;
            break;
        }
        error = std::io::Error::last_os_error().to_string();
        want = want.saturating_sub(16);
    }
    if best < needed {
        let reduced = best.saturating_sub(MIN_RESERVED_FDS).max(1);
        logger.log(
            LogLevel::Warning,
            false,
            &format!("You requested maxclients of {maxclients} requiring at least {needed} max file descriptors."),
        );
        logger.log(
            LogLevel::Warning,
            false,
            &format!(
                "Server can't set maximum open files to {needed} because of OS error: {error}."
            ),
        );
        logger.log(
            LogLevel::Warning,
            false,
            &format!("Current maximum open files is {best}. maxclients has been reduced to {reduced} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."),
        );
        let _ = config.set("maxclients", &reduced.to_string());
    } else {
        logger.log(
            LogLevel::Notice,
            false,
            &format!(
                "Increased maximum number of open files to {best} (it was originally set to {}).",
                lim.rlim_cur
            ),
        );
    }
}

/// The running node, for [`before_park`].
static RUNNING: std::sync::OnceLock<std::sync::Weak<Shared>> = std::sync::OnceLock::new();

/// Set by [`enable_turn_writes`].
static TURN_WRITES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Replies go out once per event-loop turn, from [`before_park`]; the caller
/// must have installed it as the runtime's `on_thread_park` hook.
pub fn enable_turn_writes() {
    TURN_WRITES.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The end of an event-loop turn (redis `beforeSleep`): the runtime calls
/// this before it waits for I/O, once every ready connection was served.
/// Writes the replies the turn deferred.
pub fn before_park() {
    let Some(shared) = RUNNING.get().and_then(std::sync::Weak::upgrade) else {
        return;
    };
    let mut n = shared.node.lock();
    // The turn's effects first: the AOF reaches the file before the replies.
    if n.drain_due {
        n.drain(&shared);
    }
    client::write_deferred(&mut n);
}

/// Starts the node and runs it until SIGTERM/SIGINT.
pub async fn run(mut config: Config) -> Result<()> {
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
    adjust_open_files_limit(&mut config, &mut logger);
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
        let listeners = bind_all(&config, bus_port, "cluster", &mut logger).await?;
        (Some(cluster), Some(nc), listeners)
    } else {
        (None, None, Vec::new())
    };
    let client_listeners = bind_all(&config, config.port(), "TCP", &mut logger).await?;

    let clients = clients::Clients::new(&config);
    let repl = replication::ReplShell::new(&config, now);
    let node = Node {
        cluster,
        db: Db::new(),
        config,
        logger,
        stats: Stats {
            start_ms: now,
            start_mono_ms: mono_ms(),
            rdb: rdb::RdbStats::new(now),
            ..Stats::default()
        },
        events,
        nodes_conf,
        links: HashMap::new(),
        repl,
        migrate: migrate::MigrateSockets::default(),
        aof: None,
        clients,
        drain_now: false,
        drain_due: false,
    };
    let shared = Arc::new(Shared {
        node: Mutex::new(node),
        acks: Notify::new(),
        keys_ready: Notify::new(),
        shutdown: Notify::new(),
        before_sleep_due: Notify::new(),
    });
    // One node per process: a second `run` keeps writing at once.
    if RUNNING.set(Arc::downgrade(&shared)).is_ok() {
        shared.node.lock().clients.defer_writes =
            TURN_WRITES.load(std::sync::atomic::Ordering::Relaxed);
    }
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
        // The `replicaof host port` directive: the first drain starts the link.
        if let Some(master) = standalone_master_directive(&n.config, n.cluster.is_some())? {
            n.repl.state.set_standalone_master(Some(master));
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
    tokio::spawn(before_sleep_loop(shared.clone()));
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

/// redis's `beforeSleep` for bus input: woken by [`Node::drain_bus`], it
/// runs when the tasks already woken (the other links' readers with input
/// ready now) have had their turn, as tokio's current-thread scheduler
/// queues a woken task behind them; wakes while it waits coalesce.
async fn before_sleep_loop(shared: Arc<Shared>) {
    loop {
        shared.before_sleep_due.notified().await;
        let mut n = shared.node.lock();
        n.drain(&shared);
    }
}

/// The 100 ms timer: `clusterCron`, active key expiry (replicated as DELs)
/// and the master's replication pings.
async fn cron(shared: Arc<Shared>) {
    // Re-armed 100 ms after each run ends, as redis's ae re-arms serverCron
    // (fixed delay, not fixed rate): the period is ~1 % over 100 ms and the
    // nodes' phases drift apart. With a fixed-rate timer a node re-pinged a
    // peer every 1.1 s instead of ~1.01 s (node_timeout/2 = 1000 is crossed
    // one tick later) and, phases locked, adopted gossiped pong times 20x
    // as often as redis: 4.2 pings/node/s against redis's 4.86 at 6 nodes,
    // and FAIL 0.4 s later (issue 14). The first run is at once, as redis
    // arms serverCron 1 ms after start.
    let mut first = true;
    loop {
        if !first {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        first = false;
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
        n.clients_cron(now);
        n.drain(&shared);
    }
}

impl Node {
    /// The client part of serverCron: rate samples every tick; idle
    /// timeouts, output limits and buffer peaks once a second (redis
    /// `clientsCron` visits every client about once a second).
    fn clients_cron(&mut self, now: u64) {
        self.stats.track_metrics(now);
        let used = crate::mem::allocated() as u64;
        self.stats.peak_memory = self.stats.peak_memory.max(used);
        if now / 1000 == self.clients.last_cron_s {
            return;
        }
        self.clients.last_cron_s = now / 1000;
        let timeout = self.clients.limits.timeout_s;
        for log in self.clients.close_idle(timeout, now) {
            self.log(LogLevel::Verbose, &log);
        }
        let limits = self.clients.limits.obuf;
        for log in self.clients.cron(&limits, now) {
            self.log(LogLevel::Warning, &log);
        }
        // Connections that closed leave their memory in malloc's free lists;
        // once many have gone, hand the free pages back to the system.
        let count = self.clients.len();
        self.clients.peak_since_trim = self.clients.peak_since_trim.max(count);
        if self.clients.peak_since_trim >= count + 256 {
            crate::mem::trim();
            self.clients.peak_since_trim = count;
        }
    }
}

/// The `replicaof` directive as (host, port), if set. Refused in cluster
/// mode, as redis refuses it ("replicaof directive not allowed in cluster
/// mode"): the cluster names each node's master.
fn standalone_master_directive(config: &Config, cluster: bool) -> Result<Option<(String, u16)>> {
    let Some(value) = config.get("replicaof").filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    if cluster {
        anyhow::bail!("replicaof directive not allowed in cluster mode");
    }
    let mut words = value.split_whitespace();
    match (
        words.next(),
        words.next().map(str::parse::<u16>),
        words.next(),
    ) {
        (Some(host), Some(Ok(port)), None) => Ok(Some((host.to_string(), port))),
        _ => anyhow::bail!("Invalid master port in the replicaof directive: '{value}'"),
    }
}
