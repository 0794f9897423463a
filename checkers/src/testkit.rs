//! Hand-written histories for the checkers' unit tests. Each checker's tests add
//! their own op shapes through a small extension trait on [`HistoryBuilder`].

use crate::history::History;
use serde_json::{json, Value};

/// Builds a history line by line: index ascending from 0, time = index x step.
pub(crate) struct HistoryBuilder {
    lines: Vec<String>,
    time_step: u64,
}

impl HistoryBuilder {
    pub(crate) fn new() -> HistoryBuilder {
        HistoryBuilder::with_time_step(1)
    }

    pub(crate) fn with_time_step(time_step: u64) -> HistoryBuilder {
        HistoryBuilder {
            lines: Vec::new(),
            time_step,
        }
    }

    /// Appends one op line.
    pub(crate) fn op(&mut self, process: u64, kind: &str, f: &str, value: Value) -> &mut Self {
        let index = self.lines.len() as u64;
        let line = json!({
            "index": index, "time": index * self.time_step, "process": process,
            "type": kind, "f": f, "value": value,
        });
        self.lines.push(line.to_string());
        self
    }

    /// The history as the checkers read it from history.jsonl.
    pub(crate) fn parse(&self) -> Result<History, crate::history::HistoryError> {
        History::parse(&(self.lines.join("\n") + "\n"), "t")
    }

    /// Like [`HistoryBuilder::parse`], for histories the test wrote to be well formed.
    pub(crate) fn history(&self) -> History {
        self.parse().expect("a well-formed test history")
    }
}
