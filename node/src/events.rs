//! Structured protocol events: one JSON object per decision the cluster core
//! takes, for the event log that checkers read (`events.jsonl`).
//!
//! Every event serializes as one flat JSON object whose `event` field names the
//! kind (snake case), e.g.
//! `{"event":"pfail_set","node":"<40-char id>"}`. The shell adds the node's
//! own ID, a sequence number and its wall-clock and monotonic times
//! ([`EventLine`]); the core does not.
//!
//! Completeness, so a checker can tell a damaged log from a complete one:
//! - every process start begins with `started` (`seq` 0) and numbers its
//!   lines 0, 1, 2, ... without gaps;
//! - a clean shutdown (SIGTERM/SIGINT) ends with `stopped`, flushed before exit;
//! - the lines of a decision reach the file (a `write(2)`, so a SIGKILL
//!   cannot lose them) before any effect of it can be seen outside the
//!   process: bus messages, client replies, replication bytes (the shell runs
//!   each batch of the core's actions phase by phase, as the cluster core
//!   orders them). nodes.conf is written just before them, so a line never
//!   claims a vote or an epoch that a restart would not remember.
//!
//! Conventions for every kind below:
//! - node fields (`node`, `id`, `about`, `reporter`, `from`, `to`, `with`,
//!   `master`, `replica`) hold 40-character node IDs as text;
//! - roles (`role`, `previous`) are `master` or `replica`;
//! - times inside an event (`time_ms`, `*_ms`) are the core's wall-clock
//!   ms, the same clock redis uses for the decision (`now_ms` is that clock
//!   at the decision, 0 in a time field means "never");
//! - fields describing the state a decision was taken in report that state
//!   as it was, also when a planted bug (`--bug`) bends the decision;
//! - slot sets are lists of inclusive `[start, end]` ranges.

use serde::{Deserialize, Serialize};

/// One protocol decision. The shell adds the node ID, wall-clock and monotonic time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(flatten)]
    pub kind: EventKind,
}

impl From<EventKind> for Event {
    fn from(kind: EventKind) -> Event {
        Event { kind }
    }
}

/// One line of the event log as the shell writes it: the writing node's ID,
/// the line's sequence number, its wall-clock and monotonic time, then the
/// event's own fields.
#[derive(Serialize)]
pub struct EventLine<'a> {
    /// The ID of the node writing the log (`node` is taken: events use it for
    /// the node they are about).
    pub me: &'a str,
    /// 0, 1, 2, ... per process start (the `started` line is 0): within one
    /// start a gap, a repeat or a step back means the log is damaged.
    pub seq: u64,
    pub wall_ms: u64,
    pub mono_ms: u64,
    #[serde(flatten)]
    pub event: &'a Event,
}

impl EventLine<'_> {
    /// Appends the line, newline included, to `out`. Serializing these types
    /// cannot fail (string keys, no maps with non-string keys); a failure would
    /// leave `out` unchanged.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let start = out.len();
        if serde_json::to_writer(&mut *out, self).is_ok() {
            out.push(b'\n');
        } else {
            out.truncate(start);
        }
    }
}

/// How a node entered the node table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddedVia {
    /// `CLUSTER MEET` on this node: a handshake node with a random ID.
    Meet,
    /// A MEET from an unknown node: a handshake node with a random ID.
    Handshake,
    /// A gossip entry from a known sender: added under the gossiped ID.
    Gossip,
}

/// Why a node left the node table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovedReason {
    /// A handshake did not complete within max(node_timeout, 1000 ms).
    HandshakeTimeout,
    /// The handshake PONG named a node we already knew; the handshake entry goes.
    HandshakeMerged,
    /// `CLUSTER FORGET` (the ID is blacklisted for 60 s).
    Forgotten,
    /// `CLUSTER RESET` forgets every other node.
    Reset,
}

/// Why a failure report was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportRemovedReason {
    /// The reporter gossiped the node without PFAIL/FAIL.
    BackOnline,
    /// Older than 2 x node_timeout (purged lazily when reports are counted).
    Expired,
    /// The reporting node was removed from the node table.
    ReporterDeleted,
}

/// Why a FAIL flag was cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailClearedReason {
    /// A replica answered a PING again.
    ReplicaReachable,
    /// A master without slots answered a PING again.
    MasterWithoutSlotsReachable,
    /// A master with slots answered, more than 2 x node_timeout after FAIL,
    /// and nobody took its slots.
    NobodyServingSlots,
}

/// Why currentEpoch or a configEpoch changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochReason {
    /// A packet header carried a larger value.
    Header,
    /// An UPDATE message carried a larger configEpoch for the named node.
    UpdateMessage,
    /// configEpoch collision resolution (we have the smaller ID).
    Collision,
    /// `clusterBumpConfigEpochWithoutConsensus` (BUMPEPOCH, SETSLOT NODE import close,
    /// failover TAKEOVER).
    Bump,
    /// `CLUSTER SET-CONFIG-EPOCH`.
    SetConfigEpoch,
    /// `CLUSTER RESET HARD` sets both epochs to 0.
    ResetHard,
    /// A replica won an election: configEpoch = the election's epoch; also
    /// the currentEpoch bump that starts an election.
    Election,
    /// `CLUSTER FAILOVER TAKEOVER`: a new epoch without consensus.
    Takeover,
}

/// Why slots changed owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotChangeReason {
    /// A master's PING/PONG/MEET claimed them (section 4.3).
    Gossip,
    /// An UPDATE message.
    Update,
    /// `CLUSTER ADDSLOTS` / `ADDSLOTSRANGE`.
    AddSlots,
    /// `CLUSTER DELSLOTS` / `DELSLOTSRANGE`.
    DelSlots,
    /// `CLUSTER FLUSHSLOTS`.
    FlushSlots,
    /// `CLUSTER SETSLOT <slot> NODE <id>`.
    SetSlot,
    /// A master announced itself as a replica and lost its slots.
    RoleChange,
    /// The owner was removed from the node table.
    NodeRemoved,
    /// `CLUSTER RESET`.
    Reset,
    /// A replica took its master's slots after winning an election or by
    /// `CLUSTER FAILOVER TAKEOVER`.
    Failover,
}

/// Why a master refused its vote to a replica (reference 5.2, in redis's
/// order of checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteRefusedReason {
    /// We are a replica or a master without slots (redis logs nothing).
    NoRightToVote,
    /// The request's currentEpoch is below ours.
    ReqEpochStale,
    /// We already voted in our currentEpoch.
    AlreadyVoted,
    /// The requester is a master.
    RequesterIsMaster,
    /// We do not know the requester's master.
    UnknownMaster,
    /// The requester's master is not FAIL and FORCEACK is not set.
    MasterUp,
    /// We voted for a replica of the same master less than 2 x node_timeout ago.
    VotedRecently,
    /// A claimed slot is owned by a master with a greater configEpoch than the request's.
    StaleSlotClaim,
}

/// `CLUSTER FAILOVER` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualFailoverMode {
    /// No option: MFSTART, the master pauses writes, we catch up, then an election.
    Default,
    /// `FORCE`: an election at once (with FORCEACK), no offset agreement.
    Force,
    /// `TAKEOVER`: a new epoch without consensus and the slots, no election.
    Takeover,
}

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Master,
    Replica,
}

/// `cluster_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterStateName {
    Ok,
    Fail,
}

/// Link direction, as CLUSTER LINKS prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkDirection {
    /// Outbound: we connected to the peer's bus port.
    To,
    /// Inbound: the peer connected to us.
    From,
}

/// One failure report counted toward a FAIL decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRef {
    /// The reporting master.
    pub id: String,
    /// When the report was last added or refreshed (core wall-clock ms).
    pub time_ms: u64,
}

/// Event kinds. Each variant documents its fields; all node fields are 40-char IDs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The node started (emitted by the shell). `id`: our ID. Always the
    /// first line of a process start (`seq` 0).
    Started { id: String },
    /// Clean shutdown, emitted by the shell: the last line a process writes,
    /// flushed before it exits. `reason`: `SIGTERM` or `SIGINT`. A start
    /// whose lines end without it was killed (or its log was cut).
    Stopped { reason: String },
    /// A node entered the table. `id` is random for `meet`/`handshake`;
    /// `ip`/`port`/`cport` are where we will connect.
    NodeAdded {
        id: String,
        via: AddedVia,
        ip: String,
        port: u16,
        cport: u16,
    },
    /// A handshake node got its real ID from the peer's PONG.
    NodeRenamed { from: String, to: String },
    /// The handshake with `id` completed (right after `node_renamed`).
    HandshakeCompleted { id: String },
    /// A node left the table.
    NodeRemoved { id: String, reason: RemovedReason },
    /// We could not reach `node` for node_timeout: local suspicion. The
    /// state the decision was taken in (redis 7.0 `clusterCron`: PFAIL when
    /// a ping is outstanding, `ping_sent_ms` != 0, and
    /// min(now - ping_sent, now - data_received) > node_timeout):
    /// `ping_sent_ms`, our oldest unanswered PING to it (0 if none);
    /// `data_received_ms`, the last packet we got from it (0 if never);
    /// `now_ms`; `node_timeout_ms`.
    PfailSet {
        node: String,
        ping_sent_ms: u64,
        data_received_ms: u64,
        now_ms: u64,
        node_timeout_ms: u64,
    },
    /// A PONG on our outbound link cleared PFAIL.
    PfailCleared { node: String },
    /// A master's gossip reported `about` as PFAIL/FAIL for the first time.
    FailureReportAdded { reporter: String, about: String },
    /// An existing report got a new timestamp.
    FailureReportRefreshed { reporter: String, about: String },
    /// A report was dropped.
    FailureReportRemoved {
        reporter: String,
        about: String,
        reason: ReportRemovedReason,
    },
    /// We promoted PFAIL to FAIL: `reporters` are the valid reports counted,
    /// `quorum_needed` = floor(masters_with_slots / 2) + 1, `counted_self` is
    /// true when our own opinion was added (we are a master).
    FailMarked {
        about: String,
        reporters: Vec<ReportRef>,
        quorum_needed: usize,
        masters_with_slots: usize,
        counted_self: bool,
    },
    /// A FAIL message from `from` made us flag `about` as FAIL (no quorum check).
    FailReceived { from: String, about: String },
    /// The FAIL flag of `about` was cleared, on a PONG from it. The state
    /// the decision was taken in (redis 7.0 `clearNodeFailureIfNeeded`: a
    /// replica or a master without slots is cleared at once; a master with
    /// slots only when now - fail_time > 2 x node_timeout): `role` and
    /// `slots` (its slot count), both in our view; `fail_time_ms`, when we
    /// flagged it FAIL (decided or received); `now_ms`; `node_timeout_ms`.
    FailCleared {
        about: String,
        reason: FailClearedReason,
        role: Role,
        slots: usize,
        fail_time_ms: u64,
        now_ms: u64,
        node_timeout_ms: u64,
    },
    /// Our currentEpoch changed.
    CurrentEpochChanged {
        from: u64,
        to: u64,
        reason: EpochReason,
    },
    /// The configEpoch we hold for `node` (possibly ourselves) changed.
    ConfigEpochChanged {
        node: String,
        from: u64,
        to: u64,
        reason: EpochReason,
    },
    /// Our configEpoch equalled master `with`'s; we have the smaller ID and moved
    /// from `epoch` to `new_epoch`.
    EpochCollision {
        with: String,
        epoch: u64,
        new_epoch: u64,
    },
    /// `slots` moved from `from` to `to` (null = unassigned); `config_epoch` is
    /// the new owner's configEpoch (0 when unassigned).
    SlotOwnerChanged {
        slots: Vec<[u16; 2]>,
        from: Option<String>,
        to: Option<String>,
        config_epoch: u64,
        reason: SlotChangeReason,
    },
    /// We told `to` (which claimed stale slots) that `about` owns them at `config_epoch`.
    UpdateSent {
        to: String,
        about: String,
        config_epoch: u64,
    },
    /// An UPDATE from `from` about `about`; `applied` is false when our
    /// configEpoch for `about` was already >= `config_epoch` (or a node is unknown).
    UpdateReceived {
        from: String,
        about: String,
        config_epoch: u64,
        applied: bool,
    },
    /// `node`'s role as we see it changed (or, for a replica, its master
    /// changed); `previous` is the role before, `role` the role now, `master`
    /// its master for replicas (null if unknown).
    RoleChanged {
        node: String,
        previous: Role,
        role: Role,
        master: Option<String>,
    },
    /// Our `cluster_state` changed.
    ClusterStateChanged { state: ClusterStateName },
    /// nodes.conf was handed to the shell for writing.
    ConfigSaved { fsync: bool },
    /// A link came up: outbound connected or inbound accepted (`node` is null
    /// until the first packet names a known sender).
    LinkConnected {
        link: u64,
        node: Option<String>,
        direction: LinkDirection,
    },
    /// A link went away; `reason` is a short tag (`connect_failed`, `closed`,
    /// `stale`, `replaced`, `address_changed`, `noaddr`, `node_removed`).
    LinkClosed {
        link: u64,
        node: Option<String>,
        direction: LinkDirection,
        reason: String,
    },
    /// We adopted a new address for `node` (from its PING or from gossip).
    AddressUpdated {
        node: String,
        ip: String,
        port: u16,
        cport: u16,
    },
    /// A PONG on our link to `node` came from another ID: `node` is now NOADDR.
    NodeNoaddr { node: String, sender: String },
    /// We learned our own IP from an inbound connection.
    MyselfIpUpdated { ip: String },
    /// Replica: an election is scheduled `delay_ms` from now against failed
    /// master `master`. `rank` = replicas of the same master with a larger
    /// offset than ours (`offset`); `current_epoch` is ours at scheduling (the
    /// election will use a larger one); `manual` for a manual failover (no delay).
    ElectionScheduled {
        master: String,
        current_epoch: u64,
        delay_ms: i64,
        rank: usize,
        offset: u64,
        manual: bool,
    },
    /// Replica: while waiting, our rank got worse; the delay grew by `added_delay_ms`.
    ElectionRankUpdated { rank: usize, added_delay_ms: i64 },
    /// Replica: we bumped currentEpoch to `epoch` and broadcast
    /// FAILOVER_AUTH_REQUEST; `force_ack` is set during a manual failover;
    /// `offset` is our replication offset at that moment.
    ElectionStarted {
        master: String,
        epoch: u64,
        force_ack: bool,
        offset: u64,
    },
    /// Master: we voted for replica `to` of master `master` in `epoch` (our
    /// currentEpoch, now our lastVoteEpoch, persisted with fsync before the
    /// ACK was queued). The state the decision was taken in, enough to
    /// re-check redis 7.0's `clusterSendFailoverAuthIfNeeded` from this line:
    /// - `voter_is_master`, `voter_slots`: our role and slot count (only a
    ///   master with slots may vote);
    /// - `req_epoch`: the request's currentEpoch (not below `epoch`);
    /// - `last_vote_epoch`: our lastVoteEpoch before this vote (one vote per
    ///   epoch: it must differ from `epoch`);
    /// - `master_fail`: `master` has FAIL in our view; `force_ack`: the
    ///   request's FORCEACK (a manual failover; then `master_fail` may be false);
    /// - `last_vote_for_master_ms`: when we last voted for a replica of
    ///   `master` (0 if never): at least 2 x node_timeout before `now_ms`;
    /// - `req_config_epoch`: the request's configEpoch, and
    ///   `claimed_slots_max_epoch`: the greatest configEpoch, in our view, of
    ///   the current owners of the slots the request claims (unassigned and
    ///   unclaimed slots skipped, as redis does; 0 if none): not above
    ///   `req_config_epoch`;
    /// - `now_ms`, `node_timeout_ms`.
    VoteGranted {
        to: String,
        master: String,
        epoch: u64,
        req_epoch: u64,
        last_vote_epoch: u64,
        master_fail: bool,
        force_ack: bool,
        voter_is_master: bool,
        voter_slots: usize,
        last_vote_for_master_ms: u64,
        req_config_epoch: u64,
        claimed_slots_max_epoch: u64,
        now_ms: u64,
        node_timeout_ms: u64,
    },
    /// Master: we refused replica `to`; `epoch` is our currentEpoch,
    /// `req_epoch` the request's.
    VoteRefused {
        to: String,
        reason: VoteRefusedReason,
        epoch: u64,
        req_epoch: u64,
    },
    /// Replica: a FAILOVER_AUTH_ACK from `from`; `epoch` is our election's
    /// epoch, `sender_epoch` the ACK's currentEpoch; `counted` is false when
    /// the sender is not a master with slots or `sender_epoch < epoch`.
    AuthAckReceived {
        from: String,
        epoch: u64,
        sender_epoch: u64,
        counted: bool,
    },
    /// Replica: `votes` >= `needed` = floor(size/2)+1 in `epoch`; we become
    /// the master and take `master`'s slots. `voters`: the masters whose ACKs
    /// were counted in this election, in the order received (`votes` of them).
    ElectionWon {
        master: String,
        epoch: u64,
        votes: usize,
        needed: usize,
        voters: Vec<String>,
    },
    /// Replica: the election of `epoch` got no majority within the auth
    /// timeout (`epoch` is 0 if no request went out).
    ElectionExpired {
        epoch: u64,
        votes: usize,
        needed: usize,
    },
    /// Replica: `CLUSTER FAILOVER [mode]` accepted; `master` is ours.
    ManualFailoverRequested {
        master: String,
        mode: ManualFailoverMode,
    },
    /// Master: replica `replica` sent MFSTART; writes are held until
    /// `pause_until_ms` (or until the manual failover ends).
    ManualFailoverPaused {
        replica: String,
        pause_until_ms: u64,
    },
    /// Replica: our processed offset reached the paused master's `offset`
    /// (or FORCE): the election may start.
    ManualFailoverCanStart { master: String, offset: Option<u64> },
    /// A manual failover passed its 5 s deadline (both sides log it).
    ManualFailoverTimedOut,
    /// Replica: we re-pointed from `from` (the master we leave) to orphaned
    /// master `to` (replica migration, 5.4).
    ReplicaMigrated { from: String, to: String },
    /// Replica side (emitted by the shell): the replication link to `master`
    /// is up, after the full sync completed.
    ReplicationLinkUp { master: String },
    /// Replica side (emitted by the shell): the replication link to `master` broke.
    ReplicationLinkDown { master: String },
    /// Replica side (emitted by the shell): a snapshot from `master` was
    /// applied; `offset` is the master offset it stands for, `keys` the number
    /// of keys loaded.
    FullSync {
        master: String,
        offset: u64,
        keys: u64,
    },
    /// Master side (emitted by the shell): `replica` (its node ID if known,
    /// else `ip:port`) finished its full sync at `offset` and now receives
    /// the stream.
    ReplicaSynced { replica: String, offset: u64 },
    /// Replica side (emitted by the shell): `master` accepted a partial
    /// resync (`+CONTINUE`); we continue from `offset`.
    PartialSync { master: String, offset: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_flat_with_tag() {
        let e = Event::from(EventKind::FailMarked {
            about: "a".repeat(40),
            reporters: vec![ReportRef {
                id: "b".repeat(40),
                time_ms: 7,
            }],
            quorum_needed: 2,
            masters_with_slots: 3,
            counted_self: true,
        });
        let text = serde_json::to_string(&e).unwrap_or_default();
        assert!(
            text.starts_with("{\"event\":\"fail_marked\",\"about\":\"aaaa"),
            "{text}"
        );
        assert!(text.contains("\"reporters\":[{\"id\":\"bbbb"), "{text}");
        assert!(text.contains("\"counted_self\":true"), "{text}");
        let back: Event = serde_json::from_str(&text)
            .unwrap_or_else(|_| Event::from(EventKind::Started { id: String::new() }));
        assert_eq!(back, e);

        let e = Event::from(EventKind::SlotOwnerChanged {
            slots: vec![[0, 5], [7, 7]],
            from: None,
            to: Some("c".repeat(40)),
            config_epoch: 3,
            reason: SlotChangeReason::AddSlots,
        });
        let text = serde_json::to_string(&e).unwrap_or_default();
        assert!(
            text.contains("\"slots\":[[0,5],[7,7]],\"from\":null"),
            "{text}"
        );
        assert!(text.contains("\"reason\":\"add_slots\""), "{text}");
    }

    #[test]
    fn a_line_carries_me_seq_and_both_clocks_before_the_event() {
        let e = Event::from(EventKind::Stopped {
            reason: "SIGTERM".into(),
        });
        let mut out = Vec::new();
        EventLine {
            me: "m",
            seq: 7,
            wall_ms: 5,
            mono_ms: 6,
            event: &e,
        }
        .write_to(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "{\"me\":\"m\",\"seq\":7,\"wall_ms\":5,\"mono_ms\":6,\"event\":\"stopped\",\"reason\":\"SIGTERM\"}\n"
        );
    }

    #[test]
    fn failover_events_serialize_with_snake_case_tags() {
        let e = Event::from(EventKind::VoteRefused {
            to: "a".repeat(40),
            reason: VoteRefusedReason::StaleSlotClaim,
            epoch: 7,
            req_epoch: 6,
        });
        let text = serde_json::to_string(&e).unwrap_or_default();
        assert!(
            text.starts_with("{\"event\":\"vote_refused\",\"to\":\"aaaa"),
            "{text}"
        );
        assert!(
            text.contains("\"reason\":\"stale_slot_claim\",\"epoch\":7,\"req_epoch\":6"),
            "{text}"
        );
        let text = serde_json::to_string(&Event::from(EventKind::ManualFailoverTimedOut))
            .unwrap_or_default();
        assert_eq!(text, "{\"event\":\"manual_failover_timed_out\"}");
        let e = Event::from(EventKind::ManualFailoverRequested {
            master: "b".repeat(40),
            mode: ManualFailoverMode::Takeover,
        });
        let text = serde_json::to_string(&e).unwrap_or_default();
        assert!(text.ends_with("\"mode\":\"takeover\"}"), "{text}");
        let back: Event = serde_json::from_str(&text)
            .unwrap_or_else(|_| Event::from(EventKind::Started { id: String::new() }));
        assert_eq!(back, e);
        let e = Event::from(EventKind::FullSync {
            master: "c".repeat(40),
            offset: 10,
            keys: 2,
        });
        let text = serde_json::to_string(&e).unwrap_or_default();
        assert!(text.starts_with("{\"event\":\"full_sync\""), "{text}");
    }
}
