//! The recorder: stamps every op from one monotonic clock and writes it as one JSON
//! line at once (one `write` per line, flushed), so a crashed run still leaves a
//! parseable history whose only possible damage is a cut last line.

use hearsay_checkers::{Op, OpType, Process};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// Appends JSON lines to a file.
pub struct JsonLines {
    file: Mutex<File>,
}

impl JsonLines {
    pub fn create(path: &Path) -> std::io::Result<JsonLines> {
        Ok(JsonLines {
            file: Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        })
    }

    /// Writes one value as one line. Errors are returned, not swallowed: a history
    /// that silently misses ops would mislead the checkers.
    pub fn write<T: serde::Serialize>(&self, v: &T) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(v).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.write_all(&line)?;
        f.flush()
    }
}

/// The history recorder.
pub struct Recorder {
    start: Instant,
    out: JsonLines,
    /// Nemesis ops also go here (the results layout's `nemesis.jsonl`), for readers
    /// that want the fault timeline without scanning every client op.
    nemesis: Option<JsonLines>,
    next: Mutex<u64>,
    failed: Mutex<Option<String>>,
}

impl Recorder {
    pub fn create(path: &Path, start: Instant) -> std::io::Result<Recorder> {
        Ok(Recorder {
            start,
            out: JsonLines::create(path)?,
            nemesis: None,
            next: Mutex::new(0),
            failed: Mutex::new(None),
        })
    }

    /// Also writes nemesis ops to `path`.
    pub fn with_nemesis_file(mut self, path: &Path) -> std::io::Result<Recorder> {
        self.nemesis = Some(JsonLines::create(path)?);
        Ok(self)
    }

    /// Nanoseconds since the run's start.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// Records one op. Index and time are assigned under one lock, so indices ascend
    /// in time order.
    pub fn record(
        &self,
        process: Process,
        kind: OpType,
        f: &str,
        value: serde_json::Value,
        node: Option<String>,
        error: Option<String>,
    ) -> Op {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let op = Op {
            index: *next,
            time: self.now_ns(),
            process,
            kind,
            f: f.to_string(),
            value: value.into(),
            node,
            error,
        };
        *next += 1;
        let nemesis_write = match (&self.nemesis, op.process) {
            (Some(n), Process::Nemesis) => n.write(&op),
            _ => Ok(()),
        };
        if let Err(e) = self.out.write(&op).and(nemesis_write) {
            let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
            failed.get_or_insert_with(|| e.to_string());
        }
        op
    }

    /// The first write error, if any (the run is then a harness error).
    pub fn write_error(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_checkers::history::History;

    #[test]
    fn every_record_is_on_disk_immediately() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("history.jsonl");
        let r = Recorder::create(&p, Instant::now())
            .unwrap()
            .with_nemesis_file(&d.path().join("nemesis.jsonl"))
            .unwrap();
        r.record(
            Process::Client(0),
            OpType::Invoke,
            "add",
            serde_json::json!({"key":"k","element":1}),
            Some("n1".into()),
            None,
        );
        r.record(
            Process::Nemesis,
            OpType::Info,
            "start-pause",
            serde_json::Value::Null,
            None,
            None,
        );
        // No flush/drop of `r` needed: read while it is still open.
        let h = History::read(&p).unwrap();
        assert_eq!(h.ops.len(), 2);
        assert_eq!(h.ops[1].index, 1);
        assert!(h.ops[0].time <= h.ops[1].time);
        let n = History::read_view(&d.path().join("nemesis.jsonl")).unwrap();
        assert_eq!(n.ops.len(), 1);
        assert_eq!(n.ops[0], h.ops[1]);
    }
}
