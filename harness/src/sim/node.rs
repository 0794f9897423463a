//! One simulated hearsay-node process: the node's own cluster core
//! (`hearsay_node::cluster::Cluster`), its own keyspace (`store::Db`) and
//! command layer (`commands::execute`, through a [`Host`] that lends them
//! the core), and the replication state the shell would keep. The world
//! (`world.rs`) carries its messages; nothing here reads a clock.

use bytes::Bytes;
use hearsay_node::cluster::{Cluster, ClusterConfig, SlotRoute};
use hearsay_node::commands::{self, ClientState, Host};
use hearsay_node::resp::Frame;
use hearsay_node::store::Db;

/// Virtual wall clock of every node at simulated time 0 (a plausible Unix ms).
pub const T0_MS: u64 = 1_700_000_000_000;

/// redis's default repl-backlog-size: how much stream a master keeps for
/// partial resyncs.
pub const BACKLOG_BYTES: u64 = 1024 * 1024;

/// The replica side of a replication link.
#[derive(Clone, Debug)]
pub struct ReplLink {
    pub master: usize,
    pub master_inc: u64,
    /// Distinguishes this link from earlier ones (stale items are ignored).
    pub gen: u64,
    /// master -> replica pipe.
    pub pipe: usize,
    /// Full or partial sync finished: the link counts as up.
    pub up: bool,
    /// Last data or ping from the master (µs), for repl-timeout.
    pub last_io_us: u64,
}

/// A replica as the master sees it.
#[derive(Clone, Debug)]
pub struct ReplicaOf {
    pub replica: usize,
    pub replica_inc: u64,
    pub gen: u64,
    pub pipe: usize,
}

/// One simulated process and what survives it (`conf`, and `db` with AOF).
pub struct SimNode {
    pub index: usize,
    pub name: String,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub cfg: ClusterConfig,
    pub core: Cluster,
    pub db: Db,
    pub alive: bool,
    pub paused: bool,
    /// Process starts so far (0 = the first start); stale events carry an older one.
    pub inc: u64,
    /// Clock offset (ms) the clock nemesis sets.
    pub clock_ms: i64,
    /// Last nodes.conf the core asked to save.
    pub conf: Option<String>,
    /// Event lines of the current and earlier starts (the node's events.jsonl).
    pub events: Vec<u8>,
    pub seq: u64,
    /// Replication state (redis's names).
    pub replid: String,
    pub replid2: String,
    pub second_offset: u64,
    pub offset: u64,
    /// (start offset, command) of the stream kept for partial resyncs.
    pub backlog: std::collections::VecDeque<(u64, u64, Vec<Bytes>)>,
    pub backlog_bytes: u64,
    pub link: Option<ReplLink>,
    pub replicas: Vec<ReplicaOf>,
    /// The master the core named at the last look (by index).
    pub want_master: Option<usize>,
    /// Next replication connect attempt (µs), while the link is down.
    pub next_repl_try_us: u64,
    /// Client requests that arrived while paused: (cconn, proc, io, args).
    pub held: Vec<(u64, usize, u64, Vec<Vec<u8>>)>,
    /// Pipes whose head item waits for this node to resume.
    pub held_pipes: Vec<usize>,
    pub cron_phase_us: u64,
    /// When the master last fed its replicas a PING (µs).
    pub last_repl_ping_us: u64,
}

impl SimNode {
    /// This node's wall clock (ms) at simulated time `now_us`.
    pub fn clock(&self, now_us: u64) -> u64 {
        (T0_MS as i64 + (now_us / 1000) as i64 + self.clock_ms).max(0) as u64
    }

    /// Runs one client request as the shell does: the node's command layer,
    /// with this node's core routing it. Returns the reply and the writes to
    /// feed to replicas.
    pub fn execute(
        &mut self,
        now_us: u64,
        client: &mut ClientState,
        args: Vec<Bytes>,
    ) -> commands::Outcome {
        let now = self.clock(now_us);
        let mut host = SimHost {
            core: &mut self.core,
            now,
        };
        commands::execute(&mut host, &mut self.db, client, args)
    }

    /// Applies a command of the replication stream (redis's master client).
    pub fn apply_replicated(&mut self, now_us: u64, args: Vec<Bytes>) {
        let now = self.clock(now_us);
        let mut host = SimHost {
            core: &mut self.core,
            now,
        };
        let _ = commands::apply_replicated(&mut host, &mut self.db, args);
    }

    /// Appends to the backlog (trimmed to [`BACKLOG_BYTES`]) and moves the offset.
    pub fn feed_backlog(&mut self, args: Vec<Bytes>) -> (u64, u64) {
        let len = resp_len(&args);
        let start = self.offset;
        self.offset += len;
        self.backlog.push_back((start, len, args));
        self.backlog_bytes += len;
        while self.backlog_bytes > BACKLOG_BYTES {
            match self.backlog.pop_front() {
                Some((_, l, _)) => self.backlog_bytes -= l,
                None => break,
            }
        }
        self.core.set_repl_offset(self.offset);
        (start, self.offset)
    }

    /// The backlog from `offset` on, if it still holds it.
    pub fn backlog_from(&self, offset: u64) -> Option<Vec<Vec<Bytes>>> {
        if offset == self.offset {
            return Some(vec![]);
        }
        let first = self.backlog.front()?.0;
        if offset < first || offset > self.offset {
            return None;
        }
        let mut out = Vec::new();
        for (start, _, args) in &self.backlog {
            if *start >= offset {
                out.push(args.clone());
            } else if start + resp_len(args) > offset {
                // The replica stopped inside a command: not a command boundary.
                return None;
            }
        }
        Some(out)
    }

    pub fn clear_backlog(&mut self) {
        self.backlog.clear();
        self.backlog_bytes = 0;
    }
}

/// Bytes of a command in the replication stream (a RESP array of bulks), the
/// unit of redis's replication offsets.
pub fn resp_len(args: &[Bytes]) -> u64 {
    fn digits(mut n: usize) -> u64 {
        let mut d = 1;
        while n >= 10 {
            n /= 10;
            d += 1;
        }
        d
    }
    let mut n = 1 + digits(args.len()) + 2;
    for a in args {
        n += 1 + digits(a.len()) + 2 + a.len() as u64 + 2;
    }
    n
}

/// The command layer's view of a simulated node: routing from the core, the
/// virtual clock, CLUSTER served by the core.
struct SimHost<'a> {
    core: &'a mut Cluster,
    now: u64,
}

impl Host for SimHost<'_> {
    fn cluster_enabled(&self) -> bool {
        true
    }
    fn route(&self, slot: u16) -> SlotRoute {
        self.core.route(slot)
    }
    fn slot_is_local(&self, slot: u16) -> bool {
        self.core.slot_is_local(slot)
    }
    fn cluster_state_ok(&self) -> bool {
        self.core.state_ok()
    }
    fn allow_reads_when_down(&self) -> bool {
        self.core.config().allow_reads_when_down
    }
    fn now_ms(&self) -> u64 {
        self.now
    }
    fn is_replica(&self) -> bool {
        self.core.is_replica()
    }
    fn bug(&self, name: &str) -> bool {
        self.core.config().bug(name)
    }
    fn server_command(
        &mut self,
        name: &str,
        args: &[Bytes],
        db: &mut Db,
        client: &ClientState,
    ) -> Option<Frame> {
        match name {
            "cluster" => Some(self.core.command(self.now, args, &*db, client.resp3)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_len_counts_the_encoded_bytes() {
        let args = vec![Bytes::from_static(b"SET"), Bytes::from_static(b"k")];
        // *2\r\n$3\r\nSET\r\n$1\r\nk\r\n
        assert_eq!(resp_len(&args), 4 + 9 + 7);
    }
}
