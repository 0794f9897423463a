//! Structured protocol events (owned by the cluster work item).

use serde::Serialize;

/// One protocol decision. The shell adds the node ID, wall-clock and monotonic time.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Event kinds (extended by the cluster work item).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    Started { id: String },
}
