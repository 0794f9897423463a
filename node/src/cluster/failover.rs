//! Replica failover, voting, manual failover and replica migration
//! (reference section 5: `clusterHandleSlaveFailover`,
//! `clusterSendFailoverAuthIfNeeded`, `clusterHandleManualFailover`,
//! `clusterHandleSlaveMigration`).
//!
//! The replication link itself belongs to the shell; it tells us when the link
//! to our master goes up or down and when data arrives on it, which is all
//! the data-age rule needs.

use rand::RngExt;

use crate::events::{
    EpochReason, EventKind, ManualFailoverMode, SlotChangeReason, VoteRefusedReason,
};
use crate::wire::node_flags::*;
use crate::wire::{msg_flags, msg_type, Body, Message};

use super::cron::{
    TODO_FSYNC_CONFIG, TODO_HANDLE_FAILOVER, TODO_HANDLE_MANUALFAILOVER, TODO_SAVE_CONFIG,
    TODO_UPDATE_STATE,
};
use super::node::{Ms, NodeRef};
use super::{wall, Cluster, LinkId, LogLevel};
use crate::slots::SlotSet;

/// `CLUSTER_MF_TIMEOUT`: a manual failover must complete within this.
const MF_TIMEOUT: Ms = 5000;
/// `CLUSTER_MF_PAUSE_MULT`: the master holds writes for twice the MF timeout.
const MF_PAUSE_MULT: Ms = 2;
/// `CLUSTER_SLAVE_MIGRATION_DELAY`: a master must stay orphaned this long.
const REPLICA_MIGRATION_DELAY: Ms = 5000;
/// `CLUSTER_CANT_FAILOVER_RELOG_PERIOD`, seconds.
const CANT_FAILOVER_RELOG_PERIOD: i64 = 300;

/// `CLUSTER_CANT_FAILOVER_*`: why the last failover attempt could not go on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum CantFailover {
    #[default]
    None,
    DataAge,
    WaitingDelay,
    Expired,
    WaitingVotes,
}

impl CantFailover {
    fn text(self) -> &'static str {
        match self {
            CantFailover::DataAge => "Disconnected from master for longer than allowed. Please check the 'cluster-replica-validity-factor' configuration option.",
            CantFailover::WaitingDelay => "Waiting the delay before I can start a new failover.",
            CantFailover::Expired => "Failover attempt expired.",
            CantFailover::WaitingVotes => "Waiting for votes, but majority still not reached.",
            CantFailover::None => "Unknown reason code.",
        }
    }
}

/// Whom `broadcast_pong` reaches (`CLUSTER_BROADCAST_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PongTarget {
    All,
    /// Replicas of our master (or of us): they learn our offset for the rank.
    LocalReplicas,
}

/// redis `clusterState` failover fields, plus the replication-link facts the
/// shell reports (redis reads them from `server.repl_*`).
#[derive(Clone, Debug, Default)]
pub(crate) struct FailoverState {
    /// Time of the previous or next election.
    pub auth_time: Ms,
    /// Votes received in the current election.
    pub auth_count: usize,
    /// The masters whose votes were counted, in order (for `election_won`).
    pub auth_voters: Vec<String>,
    /// Whether we already asked for votes.
    pub auth_sent: bool,
    /// Our rank among our master's replicas for the current election.
    pub auth_rank: usize,
    /// Epoch of the current election.
    pub auth_epoch: u64,
    /// The current election's expiry was reported (one event per election).
    pub expired_reported: bool,
    /// Why we cannot fail over, for throttled logs.
    pub cant_failover_reason: CantFailover,
    /// When "Currently unable to failover" was last logged, unix seconds
    /// (a static in redis).
    pub cant_failover_lastlog: i64,
    /// Manual failover deadline, 0 when none is in progress.
    pub mf_end: Ms,
    /// Master side: the replica performing a manual failover.
    pub mf_replica: Option<NodeRef>,
    /// Replica side: the master's offset once it paused, if received.
    pub mf_master_offset: Option<u64>,
    /// Replica side: the manual failover may start.
    pub mf_can_start: bool,
    /// Master side: writes are held until this time (MFSTART).
    pub pause_until: Option<u64>,
    /// Replica side: the replication link to our master is up.
    pub master_link_up: bool,
    /// Replica side: last data/ping from the master (redis `lastinteraction`).
    pub master_last_io: Ms,
    /// Replica side: when the replication link went down; 0 = never up
    /// (redis: "repl is down since EVER").
    pub master_link_down_since: Ms,
}

/// Unix seconds of a ms time (redis's `server.unixtime` granularity).
fn secs(t: Ms) -> i64 {
    t.div_euclid(1000)
}

impl Cluster {
    // ---- replication link facts from the shell ----

    /// Replication link to our master came up (full sync done).
    pub(super) fn master_link_up(&mut self, now: Ms) {
        if !self.me().is_replica() {
            return; // late report after we became a master
        }
        self.failover.master_link_up = true;
        self.failover.master_last_io = now;
        self.failover.master_link_down_since = 0;
    }

    /// Replication link to our master broke.
    pub(super) fn master_link_down(&mut self, now: Ms) {
        if self.failover.master_link_up {
            self.failover.master_link_down_since = now;
        }
        self.failover.master_link_up = false;
    }

    /// Data or ping from our master on the replication link.
    pub(super) fn master_activity(&mut self, now: Ms) {
        if self.failover.master_link_up && self.me().is_replica() {
            self.failover.master_last_io = now;
        }
    }

    /// `replicationUnsetMaster`: as a master we have no link, and a later
    /// replica role starts from "down since ever".
    pub(super) fn forget_master_link(&mut self) {
        self.failover.master_link_up = false;
        self.failover.master_last_io = 0;
        self.failover.master_link_down_since = 0;
    }

    /// Re-pointing replication drops a live link to the old master
    /// (`replicationSetMaster` frees the master client).
    pub(super) fn master_link_repointed(&mut self, now: Ms) {
        if self.failover.master_link_up {
            self.failover.master_link_up = false;
            self.failover.master_link_down_since = now;
        }
    }

    /// How stale our data is, ms, in whole seconds as redis computes it.
    fn data_age(&self, now: Ms) -> Ms {
        let since = if self.failover.master_link_up {
            self.failover.master_last_io
        } else {
            self.failover.master_link_down_since
        };
        (secs(now) - secs(since)).saturating_mul(1000)
    }

    // ---- manual failover state ----

    /// `resetManualFailover`; a master that paused writes lifts the pause.
    pub(super) fn reset_manual_failover(&mut self) {
        self.failover.pause_until = None;
        self.failover.mf_end = 0;
        self.failover.mf_can_start = false;
        self.failover.mf_replica = None;
        self.failover.mf_master_offset = None;
    }

    /// `manualFailoverCheckTimeout` (both roles).
    pub(super) fn manual_failover_check_timeout(&mut self, now: Ms) {
        if self.failover.mf_end != 0 && self.failover.mf_end < now {
            self.log(LogLevel::Warning, "Manual failover timed out.".to_string());
            self.event(EventKind::ManualFailoverTimedOut);
            self.reset_manual_failover();
        }
    }

    /// `clusterHandleManualFailover`: the replica waits until it has processed
    /// the stream up to the offset the paused master announced.
    pub(super) fn handle_manual_failover(&mut self) {
        let f = &self.failover;
        if f.mf_end == 0 || f.mf_can_start {
            return;
        }
        let Some(target) = f.mf_master_offset else {
            return; // waiting for the master's PAUSED ping
        };
        if target == self.my_repl_offset {
            self.failover.mf_can_start = true;
            self.log(
                LogLevel::Warning,
                "All master replication stream processed, manual failover can start.".to_string(),
            );
            let master = self.my_master_id();
            self.event(EventKind::ManualFailoverCanStart {
                master,
                offset: Some(target),
            });
            self.todo(TODO_HANDLE_FAILOVER);
            return;
        }
        self.todo(TODO_HANDLE_MANUALFAILOVER);
    }

    /// MFSTART from one of our replicas (the caller checked that): pause
    /// writes and tell it our offset at once.
    pub(super) fn on_mfstart(&mut self, now: Ms, sender: NodeRef, link: LinkId) {
        self.reset_manual_failover();
        self.failover.mf_end = now + MF_TIMEOUT;
        self.failover.mf_replica = Some(sender);
        let until = u64::try_from(now + MF_TIMEOUT * MF_PAUSE_MULT).unwrap_or(0);
        self.failover.pause_until = Some(until);
        let name = self.name_of(sender);
        self.log(
            LogLevel::Warning,
            format!("Manual failover requested by replica {name}."),
        );
        self.event(EventKind::ManualFailoverPaused {
            replica: name.to_string(),
            pause_until_ms: until,
        });
        // This PING carries PAUSED and the offset writes stopped at.
        self.send_ping(now, link, msg_type::PING);
    }

    /// `CLUSTER FAILOVER [FORCE|TAKEOVER]` after its argument was parsed.
    /// The error is the reply text without `ERR `.
    pub(super) fn manual_failover_command(
        &mut self,
        now: Ms,
        mode: ManualFailoverMode,
    ) -> Result<(), &'static str> {
        let me = self.me();
        if me.is_master() {
            return Err("You should send CLUSTER FAILOVER to a replica");
        }
        let Some(master) = me.replica_of.and_then(|m| self.node(m)) else {
            return Err("I'm a replica but my master is unknown to me");
        };
        if mode == ManualFailoverMode::Default && (master.failed() || master.link.is_none()) {
            return Err("Master is down or failed, please use CLUSTER FAILOVER FORCE");
        }
        let master_link = master.link;
        self.reset_manual_failover();
        self.failover.mf_end = now + MF_TIMEOUT;
        let master_id = self.my_master_id();
        self.event(EventKind::ManualFailoverRequested {
            master: master_id.clone(),
            mode,
        });
        match mode {
            ManualFailoverMode::Takeover => {
                // No vote at all: a fresh epoch and the slots, right now.
                self.log(
                    LogLevel::Warning,
                    "Taking over the master (user request).".to_string(),
                );
                self.bump_epoch_without_consensus(EpochReason::Takeover);
                self.replace_your_master(now);
            }
            ManualFailoverMode::Force => {
                self.log(
                    LogLevel::Warning,
                    "Forced failover user request accepted.".to_string(),
                );
                self.failover.mf_can_start = true;
                self.event(EventKind::ManualFailoverCanStart {
                    master: master_id,
                    offset: None,
                });
            }
            ManualFailoverMode::Default => {
                self.log(
                    LogLevel::Warning,
                    "Manual failover user request accepted.".to_string(),
                );
                if let Some(l) = master_link {
                    let msg = Message {
                        header: self.build_header(msg_type::MFSTART),
                        body: Body::Empty,
                    };
                    self.send(l, msg);
                }
            }
        }
        Ok(())
    }

    // ---- voting (masters) ----

    fn refuse_vote(
        &mut self,
        sender: NodeRef,
        reason: VoteRefusedReason,
        req_epoch: u64,
        text: Option<String>,
    ) {
        let to = self.name_of(sender);
        if let Some(text) = text {
            self.log(
                LogLevel::Warning,
                format!("Failover auth denied to {to}: {text}"),
            );
        }
        self.event(EventKind::VoteRefused {
            to: to.to_string(),
            reason,
            epoch: self.current_epoch,
            req_epoch,
        });
    }

    /// `clusterSendFailoverAuthIfNeeded`: the vote rules of 5.2, in redis's order.
    pub(super) fn on_auth_request(&mut self, now: Ms, sender: NodeRef, msg: &Message) {
        let h = &msg.header;
        let req_epoch = h.current_epoch;
        let req_config_epoch = h.config_epoch;
        let force_ack = h.mflags[0] & msg_flags::FORCEACK != 0;

        // Only masters with slots make up the cluster size, so only they vote.
        let me = self.me();
        let (voter_is_master, voter_slots) = (me.is_master(), me.numslots);
        if me.is_replica() || me.numslots == 0 {
            self.refuse_vote(sender, VoteRefusedReason::NoRightToVote, req_epoch, None);
            return;
        }
        // Ours was already raised to the request's by the header, so only an
        // older request is caught here.
        if req_epoch < self.current_epoch {
            let text = format!("reqEpoch ({req_epoch}) < curEpoch({})", self.current_epoch);
            self.refuse_vote(
                sender,
                VoteRefusedReason::ReqEpochStale,
                req_epoch,
                Some(text),
            );
            return;
        }
        // Planted bug `double-vote`: without this check a master can elect two
        // replicas in one epoch, the split brain configEpochs exist to prevent.
        if self.last_vote_epoch == self.current_epoch && !self.config().bug("double-vote") {
            let text = format!("already voted for epoch {}", self.current_epoch);
            self.refuse_vote(
                sender,
                VoteRefusedReason::AlreadyVoted,
                req_epoch,
                Some(text),
            );
            return;
        }
        let Some(s) = self.node(sender) else { return };
        if s.is_master() {
            let text = "it is a master node".to_string();
            self.refuse_vote(
                sender,
                VoteRefusedReason::RequesterIsMaster,
                req_epoch,
                Some(text),
            );
            return;
        }
        let Some((master, master_failed, voted_time)) = s
            .replica_of
            .and_then(|m| self.node(m).map(|n| (m, n.failed(), n.voted_time)))
        else {
            let text = "I don't know its master".to_string();
            self.refuse_vote(
                sender,
                VoteRefusedReason::UnknownMaster,
                req_epoch,
                Some(text),
            );
            return;
        };
        // Planted bug `vote-master-up`: vote although, in our view, the
        // candidate's master is up (only this check is skipped).
        if !master_failed && !force_ack && !self.cfg.bug("vote-master-up") {
            let text = "its master is up".to_string();
            self.refuse_vote(sender, VoteRefusedReason::MasterUp, req_epoch, Some(text));
            return;
        }
        // Not needed for safety; it keeps one master's failover linear.
        let window = self.node_timeout().saturating_mul(2);
        if now - voted_time < window {
            let text = format!(
                "can't vote about this master before {} milliseconds",
                window - (now - voted_time)
            );
            self.refuse_vote(
                sender,
                VoteRefusedReason::VotedRecently,
                req_epoch,
                Some(text),
            );
            return;
        }
        // The replica's view of its master's slots must not be older than ours.
        let claimed_slots_max_epoch = h
            .myslots
            .iter()
            .filter(|&j| !self.slot_unclaimed(j))
            .filter_map(|j| self.owner(j).and_then(|o| self.node(o)))
            .map(|o| o.config_epoch)
            .max()
            .unwrap_or(0);
        let stale = h.myslots.iter().find_map(|j| {
            if self.slot_unclaimed(j) {
                return None;
            }
            let epoch = self.owner(j).and_then(|o| self.node(o))?.config_epoch;
            (epoch > req_config_epoch).then_some((j, epoch))
        });
        if let Some((j, epoch)) = stale {
            let text = format!("slot {j} epoch ({epoch}) > reqEpoch ({req_config_epoch})");
            self.refuse_vote(
                sender,
                VoteRefusedReason::StaleSlotClaim,
                req_epoch,
                Some(text),
            );
            return;
        }

        let last_vote_epoch = self.last_vote_epoch;
        self.last_vote_epoch = self.current_epoch;
        if let Some(m) = self.node_mut(master) {
            m.voted_time = now;
        }
        // The vote must be on disk before the ACK can leave: a restart must
        // never vote twice in one epoch.
        self.save_config_now(true);
        let link = self.node(sender).and_then(|n| n.link);
        if let Some(l) = link {
            let ack = Message {
                header: self.build_header(msg_type::FAILOVER_AUTH_ACK),
                body: Body::Empty,
            };
            self.send(l, ack);
        }
        let to = self.name_of(sender);
        let epoch = self.current_epoch;
        self.log(
            LogLevel::Warning,
            format!("Failover auth granted to {to} for epoch {epoch}"),
        );
        let master = self.id_of(master);
        self.event(EventKind::VoteGranted {
            to: to.to_string(),
            master,
            epoch,
            req_epoch,
            last_vote_epoch,
            master_fail: master_failed,
            force_ack,
            voter_is_master,
            voter_slots,
            last_vote_for_master_ms: wall(voted_time),
            req_config_epoch,
            claimed_slots_max_epoch,
            now_ms: wall(now),
            node_timeout_ms: self.cfg.node_timeout,
        });
    }

    /// FAILOVER_AUTH_ACK: counted from masters with slots whose currentEpoch
    /// is at least our election's.
    pub(super) fn on_auth_ack(&mut self, _now: Ms, sender: NodeRef, msg: &Message) {
        let sender_epoch = msg.header.current_epoch;
        let Some(s) = self.node(sender) else { return };
        let counted = s.is_master() && s.numslots > 0 && sender_epoch >= self.failover.auth_epoch;
        let from = s.id();
        if counted {
            self.failover.auth_count += 1;
            self.failover.auth_voters.push(from.clone());
            // Maybe the quorum is there: check before sleeping, not next tick.
            self.todo(TODO_HANDLE_FAILOVER);
        }
        self.event(EventKind::AuthAckReceived {
            from,
            epoch: self.failover.auth_epoch,
            sender_epoch,
            counted,
        });
    }

    // ---- elections (replicas) ----

    fn my_master_id(&self) -> String {
        self.me()
            .replica_of
            .map(|m| self.id_of(m))
            .unwrap_or_default()
    }

    /// `clusterGetSlaveRank`: replicas of our master (able to fail over) with
    /// a larger offset than ours; equal offsets share a rank.
    pub(super) fn replica_rank(&self) -> usize {
        let Some(master) = self.me().replica_of.and_then(|m| self.node(m)) else {
            return 0;
        };
        master
            .replicas
            .iter()
            .filter(|&&r| r != self.myself)
            .filter_map(|&r| self.node(r))
            .filter(|n| !n.has(NOFAILOVER) && n.repl_offset > self.my_repl_offset)
            .count()
    }

    /// `clusterLogCantFailover`: only when the reason changes or every 5
    /// minutes, and only once the master has been FAIL for a while.
    fn log_cant_failover(&mut self, now: Ms, reason: CantFailover) {
        if reason == self.failover.cant_failover_reason
            && secs(now) - self.failover.cant_failover_lastlog < CANT_FAILOVER_RELOG_PERIOD
        {
            return;
        }
        self.failover.cant_failover_reason = reason;
        let quiet_for = self.node_timeout() + 5000;
        let me = self.me();
        if me
            .replica_of
            .and_then(|m| self.node(m))
            .is_some_and(|m| m.failed() && now - m.fail_time < quiet_for)
        {
            return;
        }
        self.failover.cant_failover_lastlog = secs(now);
        self.log(
            LogLevel::Warning,
            format!("Currently unable to failover: {}", reason.text()),
        );
    }

    /// `clusterBroadcastPong`.
    pub(super) fn broadcast_pong(&mut self, now: Ms, target: PongTarget) {
        let my_master = self.me().replica_of;
        let targets: Vec<LinkId> = self
            .nodes
            .iter()
            .filter(|(&r, n)| r != self.myself && !n.in_handshake())
            .filter(|(_, n)| match target {
                PongTarget::All => true,
                PongTarget::LocalReplicas => {
                    n.is_replica()
                        && n.replica_of.is_some()
                        && (n.replica_of == Some(self.myself) || n.replica_of == my_master)
                }
            })
            .filter_map(|(_, n)| n.link)
            .collect();
        for l in targets {
            self.send_ping(now, l, msg_type::PONG);
        }
    }

    /// `clusterHandleSlaveFailover`: schedule, run and conclude an election
    /// when our master is FAIL (or a manual failover may start).
    pub(super) fn handle_replica_failover(&mut self, now: Ms) {
        self.todo &= !TODO_HANDLE_FAILOVER;
        let auth_age = now - self.failover.auth_time;
        let needed = self.size / 2 + 1;
        let manual = self.failover.mf_end != 0 && self.failover.mf_can_start;
        let timeout = self.node_timeout();
        let auth_timeout = timeout.saturating_mul(2).max(2000);
        let auth_retry_time = auth_timeout.saturating_mul(2);

        let me = self.me();
        let master = me.replica_of.filter(|_| me.is_replica());
        let Some((master, master_failed, master_slots)) =
            master.and_then(|m| self.node(m).map(|n| (m, n.failed(), n.numslots)))
        else {
            self.failover.cant_failover_reason = CantFailover::None;
            return;
        };
        // A manual failover needs neither a failed master nor the option.
        let automatic_allowed = master_failed && !self.cfg.replica_no_failover;
        if !(manual || automatic_allowed) || master_slots == 0 {
            self.failover.cant_failover_reason = CantFailover::None;
            return;
        }

        // Being cut off while the master was failing is expected: only the
        // time beyond node_timeout counts.
        let mut data_age = self.data_age(now);
        if data_age > timeout {
            data_age -= timeout;
        }
        let factor = i64::from(self.cfg.replica_validity_factor);
        let period = i64::try_from(self.cfg.repl_ping_replica_period).unwrap_or(i64::MAX / 4);
        let limit = period
            .saturating_mul(1000)
            .saturating_add(timeout.saturating_mul(factor));
        if factor != 0 && data_age > limit && !manual {
            self.log_cant_failover(now, CantFailover::DataAge);
            return;
        }

        if auth_age > auth_retry_time {
            // 500 ms lets the FAIL spread; the random part de-synchronises
            // replicas; the rank makes the freshest replica go first.
            let jitter: Ms = self.rng.random_range(0..500);
            let delay = match self.cfg.test_election_delay_ms {
                Some(ms) => i64::try_from(ms).unwrap_or(i64::MAX / 4),
                None => 500 + jitter,
            };
            self.failover.auth_time = now + delay;
            self.failover.auth_count = 0;
            self.failover.auth_voters.clear();
            self.failover.auth_sent = false;
            self.failover.expired_reported = false;
            self.failover.auth_rank = self.replica_rank();
            self.failover.auth_time += i64::try_from(self.failover.auth_rank)
                .unwrap_or(i64::MAX / 4_000)
                .saturating_mul(1000);
            if self.failover.mf_end != 0 {
                self.failover.auth_time = now;
                self.failover.auth_rank = 0;
                self.todo(TODO_HANDLE_FAILOVER);
            } else if self.cfg.bug("slow-failover") {
                // Planted bug `slow-failover`: a failed master stays
                // unreplaced for 10 x node_timeout longer (liveness).
                self.failover.auth_time += timeout.saturating_mul(10);
            }
            let delay = self.failover.auth_time - now;
            let (rank, offset) = (self.failover.auth_rank, self.my_repl_offset);
            self.log(
                LogLevel::Warning,
                format!(
                    "Start of election delayed for {delay} milliseconds (rank #{rank}, offset {offset})."
                ),
            );
            let master = self.id_of(master);
            self.event(EventKind::ElectionScheduled {
                master,
                current_epoch: self.current_epoch,
                delay_ms: delay,
                rank,
                offset,
                manual: self.failover.mf_end != 0,
            });
            // Siblings learn our offset now, so their ranks are right.
            self.broadcast_pong(now, PongTarget::LocalReplicas);
            return;
        }

        // Fresher offsets may have arrived from siblings since we scheduled.
        if !self.failover.auth_sent && self.failover.mf_end == 0 {
            let newrank = self.replica_rank();
            if newrank > self.failover.auth_rank {
                let steps = i64::try_from(newrank - self.failover.auth_rank).unwrap_or(0);
                let added = steps.saturating_mul(1000);
                self.failover.auth_time += added;
                self.failover.auth_rank = newrank;
                self.log(
                    LogLevel::Warning,
                    format!(
                        "Replica rank updated to #{newrank}, added {added} milliseconds of delay."
                    ),
                );
                self.event(EventKind::ElectionRankUpdated {
                    rank: newrank,
                    added_delay_ms: added,
                });
            }
        }

        if now < self.failover.auth_time {
            self.log_cant_failover(now, CantFailover::WaitingDelay);
            return;
        }

        if auth_age > auth_timeout {
            if !self.failover.expired_reported {
                self.failover.expired_reported = true;
                let epoch = if self.failover.auth_sent {
                    self.failover.auth_epoch
                } else {
                    0
                };
                self.event(EventKind::ElectionExpired {
                    epoch,
                    votes: self.failover.auth_count,
                    needed,
                });
            }
            self.log_cant_failover(now, CantFailover::Expired);
            return;
        }

        if !self.failover.auth_sent {
            let epoch = self.current_epoch + 1;
            self.set_current_epoch(epoch, EpochReason::Election);
            self.failover.auth_epoch = epoch;
            self.log(
                LogLevel::Warning,
                format!("Starting a failover election for epoch {epoch}."),
            );
            let force_ack = self.failover.mf_end != 0;
            let mut h = self.build_header(msg_type::FAILOVER_AUTH_REQUEST);
            if force_ack {
                h.mflags[0] |= msg_flags::FORCEACK;
            }
            // Replicas get it too but never vote.
            self.broadcast(&Message {
                header: h,
                body: Body::Empty,
            });
            self.failover.auth_sent = true;
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE | TODO_FSYNC_CONFIG);
            let master = self.id_of(master);
            self.event(EventKind::ElectionStarted {
                master,
                epoch,
                force_ack,
                offset: self.my_repl_offset,
            });
            return;
        }

        // Planted bug `premature-win`: one vote short of a majority wins
        // (when a majority is 2 or more); the event still names `needed`.
        let enough = if self.cfg.bug("premature-win") && needed >= 2 {
            needed - 1
        } else {
            needed
        };
        if self.failover.auth_count >= enough {
            self.log(
                LogLevel::Warning,
                "Failover election won: I'm the new master.".to_string(),
            );
            let epoch = self.failover.auth_epoch;
            let (votes, master_id) = (self.failover.auth_count, self.id_of(master));
            let voters = self.failover.auth_voters.clone();
            self.event(EventKind::ElectionWon {
                master: master_id,
                epoch,
                votes,
                needed,
                voters,
            });
            if self.me().config_epoch < epoch {
                self.set_config_epoch(self.myself, epoch, EpochReason::Election);
                self.log(
                    LogLevel::Warning,
                    format!("configEpoch set to {epoch} after successful failover"),
                );
            }
            self.replace_your_master(now);
        } else {
            self.log_cant_failover(now, CantFailover::WaitingVotes);
        }
    }

    /// `clusterFailoverReplaceYourMaster`: become a master, take every slot of
    /// the old master, and tell everyone. The caller set our configEpoch.
    pub(super) fn replace_your_master(&mut self, now: Ms) {
        let me = self.me();
        let Some(old) = me.replica_of.filter(|_| me.is_replica()) else {
            return;
        };
        // replication_master() is None from here: the shell stops syncing.
        self.set_node_as_master(self.myself);
        let slots = self
            .node(old)
            .map_or_else(SlotSet::new, |n| n.slots.clone());
        // (All at once: the same outcome as `rebind_slot` for each in order.)
        self.rebind_slots(&slots, self.myself, SlotChangeReason::Failover);
        self.update_state(now);
        self.save_config_now(true);
        self.broadcast_pong(now, PongTarget::All);
        self.reset_manual_failover();
    }

    // ---- replica migration ----

    /// `clusterCountNonFailingSlaves`.
    pub(super) fn non_failing_replicas(&self, master: NodeRef) -> usize {
        self.node(master).map_or(0, |m| {
            m.replicas
                .iter()
                .filter_map(|&r| self.node(r))
                .filter(|n| !n.failed())
                .count()
        })
    }

    /// `clusterHandleSlaveMigration`: the caller saw an orphaned master, a
    /// master with `max_replicas` >= 2 working replicas, and that ours is one.
    pub(super) fn handle_replica_migration(&mut self, now: Ms, max_replicas: usize) {
        if !self.state_ok {
            return;
        }
        let Some(my_master) = self.me().replica_of else {
            return;
        };
        let ok_replicas = self.node(my_master).map_or(0, |m| {
            m.replicas
                .iter()
                .filter_map(|&r| self.node(r))
                .filter(|n| !n.has(FAIL | PFAIL))
                .count()
        });
        let barrier = usize::try_from(self.cfg.migration_barrier).unwrap_or(usize::MAX);
        if ok_replicas <= barrier {
            return;
        }

        // Among the replicas of the best-covered masters, the smallest ID moves.
        let mut candidate = self.me().name;
        let mut target: Option<NodeRef> = None;
        let refs: Vec<NodeRef> = self.nodes.keys().copied().collect();
        for r in refs {
            let Some(n) = self.node(r) else { continue };
            let mut orphaned = !(n.is_replica() || n.failed()) && n.has(MIGRATE_TO);
            let okr = if n.is_master() {
                self.non_failing_replicas(r)
            } else {
                0
            };
            if okr > 0 {
                orphaned = false;
            }
            let numslots = n.numslots;
            if okr == max_replicas {
                for rep in n.replicas.iter().filter_map(|&x| self.node(x)) {
                    if rep.name.0 < candidate.0 {
                        candidate = rep.name;
                    }
                }
            }
            let Some(n) = self.node_mut(r) else { continue };
            if orphaned {
                if target.is_none() && numslots > 0 {
                    target = Some(r);
                }
                if n.orphaned_time == 0 {
                    n.orphaned_time = now;
                }
            } else {
                n.orphaned_time = 0;
            }
        }
        let Some(t) = target else { return };
        let orphaned_for = self.node(t).map_or(0, |n| now - n.orphaned_time);
        if candidate == self.me().name && orphaned_for > REPLICA_MIGRATION_DELAY {
            let name = self.name_of(t);
            self.log(
                LogLevel::Warning,
                format!("Migrating to orphaned master {name}"),
            );
            let from = self.id_of(my_master);
            self.set_my_master(now, t);
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
            self.event(EventKind::ReplicaMigrated {
                from,
                to: name.to_string(),
            });
        }
    }
}
