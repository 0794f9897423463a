//! Failure detection (reference section 3): failure reports, PFAIL -> FAIL by
//! quorum of masters, and the FAIL clearing rules.

use crate::events::{EventKind, FailClearedReason, ReportRef, ReportRemovedReason, Role};
use crate::wire::node_flags::*;

use super::cron::{TODO_SAVE_CONFIG, TODO_UPDATE_STATE};
use super::node::{FailReport, Ms, NodeRef};
use super::{wall, Cluster, LogLevel, FAIL_UNDO_TIME_MULT, NODE_TIMEOUT_MULT_REPORT_VALIDITY};

impl Cluster {
    /// `clusterNodeAddFailureReport`: true if the report is new, false if an
    /// existing one was refreshed.
    pub(super) fn add_failure_report(
        &mut self,
        now: Ms,
        failing: NodeRef,
        reporter: NodeRef,
    ) -> bool {
        let Some(n) = self.node_mut(failing) else {
            return false;
        };
        let refreshed = match n.fail_reports.iter_mut().find(|fr| fr.reporter == reporter) {
            Some(fr) => {
                fr.time = now;
                true
            }
            None => {
                n.fail_reports.push(FailReport {
                    reporter,
                    time: now,
                });
                false
            }
        };
        let (reporter_id, about) = (self.id_of(reporter), self.id_of(failing));
        if refreshed {
            self.event(EventKind::FailureReportRefreshed {
                reporter: reporter_id,
                about,
            });
        } else {
            self.event(EventKind::FailureReportAdded {
                reporter: reporter_id,
                about,
            });
        }
        !refreshed
    }

    /// `clusterNodeCleanupFailureReports`: drops reports older than
    /// 2 x node_timeout.
    pub(super) fn cleanup_failure_reports(&mut self, now: Ms, node: NodeRef) {
        let maxtime = self
            .node_timeout()
            .saturating_mul(NODE_TIMEOUT_MULT_REPORT_VALIDITY);
        if self.config().bug("stale-reports") {
            return;
        }
        let Some(n) = self.node_mut(node) else { return };
        if n.fail_reports.is_empty() {
            return;
        }
        let (kept, expired): (Vec<FailReport>, Vec<FailReport>) = n
            .fail_reports
            .drain(..)
            .partition(|fr| now - fr.time <= maxtime);
        n.fail_reports = kept;
        let about = n.id();
        for fr in expired {
            let reporter = self.id_of(fr.reporter);
            self.event(EventKind::FailureReportRemoved {
                reporter,
                about: about.clone(),
                reason: ReportRemovedReason::Expired,
            });
        }
    }

    /// `clusterNodeDelFailureReport`: true if `reporter` had a report about `node`.
    pub(super) fn del_failure_report(&mut self, now: Ms, node: NodeRef, reporter: NodeRef) -> bool {
        let Some(n) = self.node_mut(node) else {
            return false;
        };
        let Some(pos) = n.fail_reports.iter().position(|fr| fr.reporter == reporter) else {
            return false;
        };
        n.fail_reports.remove(pos);
        let (reporter_id, about) = (self.id_of(reporter), self.id_of(node));
        self.event(EventKind::FailureReportRemoved {
            reporter: reporter_id,
            about,
            reason: ReportRemovedReason::BackOnline,
        });
        self.cleanup_failure_reports(now, node);
        true
    }

    /// Drops every report made by a node that leaves the table.
    pub(super) fn del_reports_by(&mut self, reporter: NodeRef) {
        let reporter_id = self.id_of(reporter);
        let mut removed = Vec::new();
        for n in self.nodes.values_mut() {
            let before = n.fail_reports.len();
            n.fail_reports.retain(|fr| fr.reporter != reporter);
            if n.fail_reports.len() != before {
                removed.push(n.id());
            }
        }
        for about in removed {
            self.event(EventKind::FailureReportRemoved {
                reporter: reporter_id.clone(),
                about,
                reason: ReportRemovedReason::ReporterDeleted,
            });
        }
    }

    /// `clusterNodeFailureReportsCount`: valid reports, our own opinion excluded.
    pub(super) fn failure_reports_count(&mut self, now: Ms, node: NodeRef) -> usize {
        self.cleanup_failure_reports(now, node);
        self.node(node).map_or(0, |n| n.fail_reports.len())
    }

    /// `markNodeAsFailingIfNeeded`: PFAIL -> FAIL once reports (+1 if we are a
    /// master) reach floor(size/2)+1; then broadcast FAIL.
    pub(super) fn mark_failing_if_needed(&mut self, now: Ms, node: NodeRef) {
        let needed = self.size / 2 + 1;
        let Some(n) = self.node(node) else { return };
        if !n.timed_out() || n.failed() {
            return;
        }
        let reports = self.failure_reports_count(now, node);
        let counted_self = self.me().is_master();
        let failures = reports + usize::from(counted_self);
        if failures < needed && !self.config().bug("fail-without-quorum") {
            return;
        }
        let Some(n) = self.node_mut(node) else { return };
        n.flags &= !PFAIL;
        n.flags |= FAIL;
        n.fail_time = now;
        let name = n.name;
        let reporters: Vec<(NodeRef, Ms)> = n
            .fail_reports
            .iter()
            .map(|fr| (fr.reporter, fr.time))
            .collect();
        self.log(
            LogLevel::Notice,
            format!("Marking node {name} as failing (quorum reached)."),
        );
        let reporters = reporters
            .into_iter()
            .map(|(r, t)| ReportRef {
                id: self.id_of(r),
                time_ms: u64::try_from(t).unwrap_or(0),
            })
            .collect();
        self.event(EventKind::FailMarked {
            about: name.to_string(),
            reporters,
            quorum_needed: needed,
            masters_with_slots: self.size,
            counted_self,
        });
        // Even a replica broadcasts: the decision rests on the masters' reports.
        self.send_fail(name);
        self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
    }

    /// `clearNodeFailureIfNeeded`: a PONG arrived from a node flagged FAIL.
    pub(super) fn clear_failure_if_needed(&mut self, now: Ms, node: NodeRef) {
        let undo_time = self.node_timeout().saturating_mul(FAIL_UNDO_TIME_MULT);
        let Some(n) = self.node(node) else { return };
        if !n.failed() {
            return;
        }
        let (name, replica, master, slots, fail_time) = (
            n.name,
            n.is_replica(),
            n.is_master(),
            n.numslots,
            n.fail_time,
        );
        let (reason, text) = if replica || slots == 0 {
            // Replicas and slotless masters have nothing to fail over: clear at once.
            let (reason, what) = if replica {
                (FailClearedReason::ReplicaReachable, "replica")
            } else {
                (
                    FailClearedReason::MasterWithoutSlotsReachable,
                    "master without slots",
                )
            };
            (
                reason,
                format!("Clear FAIL state for node {name}: {what} is reachable again."),
            )
        } else if master && (now - fail_time > undo_time || self.cfg.bug("early-fail-clear")) {
            // A master still serving slots long after FAIL: nobody failed it
            // over. Planted bug `early-fail-clear`: at once, while its
            // replicas may still be electing one of them (two masters for
            // the same slots).
            (
                FailClearedReason::NobodyServingSlots,
                format!(
                    "Clear FAIL state for node {name}: is reachable again and nobody is serving its slots after some time."
                ),
            )
        } else {
            return;
        };
        if let Some(n) = self.node_mut(node) {
            n.flags &= !FAIL;
        }
        self.log(LogLevel::Notice, text);
        self.event(EventKind::FailCleared {
            about: name.to_string(),
            reason,
            role: if replica { Role::Replica } else { Role::Master },
            slots,
            fail_time_ms: wall(fail_time),
            now_ms: wall(now),
            node_timeout_ms: self.cfg.node_timeout,
        });
        self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
    }
}
