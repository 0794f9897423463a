//! currentEpoch and configEpoch rules (reference 4.1, 4.2).

use crate::events::{EpochReason, EventKind};

use super::cron::{TODO_FSYNC_CONFIG, TODO_SAVE_CONFIG};
use super::node::NodeRef;
use super::{Cluster, LogLevel};

impl Cluster {
    /// Sets currentEpoch, with its event (no-op when unchanged).
    pub(super) fn set_current_epoch(&mut self, to: u64, reason: EpochReason) {
        let from = self.current_epoch;
        if from == to {
            return;
        }
        self.current_epoch = to;
        self.event(EventKind::CurrentEpochChanged { from, to, reason });
    }

    /// Sets a node's configEpoch, with its event (no-op when unchanged).
    pub(super) fn set_config_epoch(&mut self, node: NodeRef, to: u64, reason: EpochReason) {
        let Some(n) = self.node_mut(node) else { return };
        let from = n.config_epoch;
        if from == to {
            return;
        }
        n.config_epoch = to;
        let id = n.id();
        self.event(EventKind::ConfigEpochChanged {
            node: id,
            from,
            to,
            reason,
        });
    }

    /// `clusterGetMaxEpoch`: the largest configEpoch known, or currentEpoch if larger.
    pub(super) fn max_epoch(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0)
            .max(self.current_epoch)
    }

    /// `clusterBumpConfigEpochWithoutConsensus`: a new configEpoch for us unless
    /// ours is already non-zero and the largest. Returns whether it bumped.
    pub(super) fn bump_epoch_without_consensus(&mut self, reason: EpochReason) -> bool {
        let max = self.max_epoch();
        let mine = self.me().config_epoch;
        if mine != 0 && mine == max {
            return false;
        }
        let next = self.current_epoch + 1;
        self.set_current_epoch(next, reason);
        self.set_config_epoch(self.myself, next, reason);
        self.todo(TODO_SAVE_CONFIG | TODO_FSYNC_CONFIG);
        self.log(LogLevel::Warning, format!("New configEpoch set to {next}"));
        true
    }

    /// `clusterHandleConfigEpochCollision`: two masters share a configEpoch;
    /// the one with the lexicographically smaller ID takes a new one, so the
    /// largest ID never moves and epochs end up unique.
    pub(super) fn handle_epoch_collision(&mut self, sender: NodeRef) {
        let me = self.me();
        let Some(s) = self.node(sender) else { return };
        if s.config_epoch != me.config_epoch
            || !s.is_master()
            || !me.is_master()
            || self.config().bug("ignore-epoch-collision")
        {
            return;
        }
        if s.name.0 <= me.name.0 {
            return;
        }
        let (with, epoch) = (s.name, me.config_epoch);
        let next = self.current_epoch + 1;
        self.set_current_epoch(next, EpochReason::Collision);
        self.set_config_epoch(self.myself, next, EpochReason::Collision);
        self.event(EventKind::EpochCollision {
            with: with.to_string(),
            epoch,
            new_epoch: next,
        });
        self.save_config_now(true);
        self.log(
            LogLevel::Verbose,
            format!("WARNING: configEpoch collision with node {with}. configEpoch set to {next}"),
        );
    }
}
