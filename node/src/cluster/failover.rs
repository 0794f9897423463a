//! Replica failover, voting and manual failover (reference section 5).
//!
//! Not implemented yet (next issue): the state redis keeps for them lives
//! here so that the election, the vote rules and MFSTART slot in without
//! reshaping the core. Received AUTH_REQUEST / AUTH_ACK / MFSTART messages
//! are counted in the stats (by the packet processor) and otherwise ignored.

use crate::wire::Message;

use super::node::{Ms, NodeRef};
use super::{Cluster, LogLevel};

/// redis `clusterState` failover fields.
#[derive(Clone, Debug, Default)]
#[allow(dead_code)] // the election fields are used by the failover work (next issue)
pub(crate) struct FailoverState {
    /// Time of the previous or next election.
    pub auth_time: Ms,
    /// Votes received in the current election.
    pub auth_count: usize,
    /// Whether we already asked for votes.
    pub auth_sent: bool,
    /// Our rank among our master's replicas for the current election.
    pub auth_rank: usize,
    /// Epoch of the current election.
    pub auth_epoch: u64,
    /// Why we cannot fail over (`CLUSTER_CANT_FAILOVER_*`), for throttled logs.
    pub cant_failover_reason: u8,
    /// Manual failover deadline, 0 when none is in progress.
    pub mf_end: Ms,
    /// Master side: the replica performing a manual failover.
    pub mf_replica: Option<NodeRef>,
    /// Replica side: the master's offset once it paused, if received.
    pub mf_master_offset: Option<u64>,
    /// Replica side: the manual failover may start.
    pub mf_can_start: bool,
    /// Master side: writes are held until this time (MFSTART), `None` when not paused.
    pub pause_until: Option<u64>,
    /// Replica side: the replication link to our master is up.
    pub master_link_up: bool,
    /// Replica side: last data/ping from the master, or when the link went down.
    pub master_last_io: Ms,
    /// Replica side: when the replication link went down (0 = never up/down yet).
    pub master_link_down_since: Ms,
}

impl Cluster {
    /// `resetManualFailover`.
    pub(super) fn reset_manual_failover(&mut self) {
        self.failover.mf_end = 0;
        self.failover.mf_can_start = false;
        self.failover.mf_replica = None;
        self.failover.mf_master_offset = None;
    }

    /// Replication link to our master came up (shell input).
    pub(super) fn master_link_up(&mut self, now: Ms) {
        self.failover.master_link_up = true;
        self.failover.master_last_io = now;
        self.failover.master_link_down_since = 0;
    }

    /// Replication link to our master broke (shell input).
    pub(super) fn master_link_down(&mut self, now: Ms) {
        if self.failover.master_link_up {
            self.failover.master_link_down_since = now;
        }
        self.failover.master_link_up = false;
    }

    /// Data or ping from our master on the replication link (shell input).
    pub(super) fn master_activity(&mut self, now: Ms) {
        self.failover.master_last_io = now;
    }

    /// FAILOVER_AUTH_REQUEST from a known sender: the vote rules (5.2) go here.
    pub(super) fn on_auth_request(&mut self, _now: Ms, sender: NodeRef, _msg: &Message) {
        let name = self.name_of(sender);
        self.log(
            LogLevel::Debug,
            format!("Failover auth request from {name} ignored (failover not implemented)"),
        );
    }

    /// FAILOVER_AUTH_ACK from a known sender: vote counting goes here.
    pub(super) fn on_auth_ack(&mut self, _now: Ms, sender: NodeRef, _msg: &Message) {
        let name = self.name_of(sender);
        self.log(
            LogLevel::Debug,
            format!("Failover auth ack from {name} ignored (failover not implemented)"),
        );
    }

    /// MFSTART from a known sender: the master side of a manual failover goes here.
    pub(super) fn on_mfstart(&mut self, _now: Ms, sender: NodeRef) {
        let name = self.name_of(sender);
        self.log(
            LogLevel::Debug,
            format!("Manual failover start from {name} ignored (failover not implemented)"),
        );
    }
}
