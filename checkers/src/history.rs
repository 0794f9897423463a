//! The history model: Jepsen-shaped operations, one JSON object per line.
//!
//! `index` is unique and ascending, `time` is nanoseconds since the run's start on the
//! harness's monotonic clock, `process` is a client process number or `"nemesis"`,
//! `type` is `invoke`, `ok`, `fail` or `info`. A client op that ends `info` may still
//! take effect later, so its process never invokes again.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

/// What kind of event an op line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// The op started.
    Invoke,
    /// The op certainly took effect.
    Ok,
    /// The op certainly did not take effect.
    Fail,
    /// Unknown whether it took effect (timeout, connection lost after sending);
    /// also every nemesis op.
    Info,
}

/// Who performed an op: a client process or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(n) => s.serialize_u64(*n),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n
                .as_u64()
                .map(Process::Client)
                .ok_or_else(|| serde::de::Error::custom(format!("bad process number {n}"))),
            serde_json::Value::String(s) if s == "nemesis" => Ok(Process::Nemesis),
            other => Err(serde::de::Error::custom(format!("bad process {other}"))),
        }
    }
}

/// One history line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub index: u64,
    /// Nanoseconds since the run started (harness monotonic clock).
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: OpType,
    pub f: String,
    #[serde(default)]
    pub value: serde_json::Value,
    /// The node the request went to (client ops), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Errors reading a history file.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("reading history {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("history {path} line {line}: {source}")]
    Parse {
        path: String,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// A parsed history plus what had to be skipped.
#[derive(Debug, Default)]
pub struct History {
    pub ops: Vec<Op>,
    /// True when the last line was cut short (the writer died mid-line) and was skipped.
    pub truncated_tail: bool,
}

impl History {
    /// Parses JSON lines. A malformed *last* line without a newline is what a killed
    /// writer leaves behind, so it is skipped and reported; a malformed line anywhere
    /// else is an error.
    pub fn parse(text: &str, path: &str) -> Result<History, HistoryError> {
        let mut ops = Vec::new();
        let mut truncated_tail = false;
        let ends_with_newline = text.ends_with('\n');
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Op>(line) {
                Ok(op) => ops.push(op),
                Err(e) => {
                    if i + 1 == lines.len() && !ends_with_newline {
                        truncated_tail = true;
                    } else {
                        return Err(HistoryError::Parse {
                            path: path.to_string(),
                            line: i + 1,
                            source: e,
                        });
                    }
                }
            }
        }
        Ok(History {
            ops,
            truncated_tail,
        })
    }

    /// Reads and parses a history file.
    pub fn read(path: &Path) -> Result<History, HistoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Io {
            path: path.display().to_string(),
            source,
        })?;
        History::parse(&text, &path.display().to_string())
    }

    /// Client ops only (nemesis ops filtered out).
    pub fn client_ops(&self) -> impl Iterator<Item = &Op> {
        self.ops.iter().filter(|o| o.process != Process::Nemesis)
    }

    /// Pairs every client invocation with its completion (by process: a process runs
    /// one op at a time). An invocation without completion pairs with `None`, which
    /// checkers must treat like `info`.
    pub fn pairs(&self) -> Vec<(&Op, Option<&Op>)> {
        let mut open: HashMap<Process, usize> = HashMap::new();
        let mut out: Vec<(&Op, Option<&Op>)> = Vec::new();
        for op in self.client_ops() {
            match op.kind {
                OpType::Invoke => {
                    open.insert(op.process, out.len());
                    out.push((op, None));
                }
                _ => {
                    if let Some(i) = open.remove(&op.process) {
                        if let Some(slot) = out.get_mut(i) {
                            slot.1 = Some(op);
                        }
                    }
                }
            }
        }
        out
    }
}

/// Reads only the line count of a history file, for progress displays.
pub fn count_lines(path: &Path) -> std::io::Result<usize> {
    let f = std::fs::File::open(path)?;
    Ok(std::io::BufReader::new(f).lines().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_and_nemesis_ops() {
        let text = concat!(
            r#"{"index":0,"time":5,"process":0,"type":"invoke","f":"add","value":{"key":"k","element":1},"node":"n1"}"#,
            "\n",
            r#"{"index":1,"time":9,"process":"nemesis","type":"info","f":"start-partition","value":null}"#,
            "\n",
            r#"{"index":2,"time":12,"process":0,"type":"ok","f":"add","value":{"key":"k","element":1}}"#,
            "\n"
        );
        let h = History::parse(text, "t").unwrap();
        assert_eq!(h.ops.len(), 3);
        assert_eq!(h.ops[1].process, Process::Nemesis);
        assert_eq!(h.ops[2].kind, OpType::Ok);
        let pairs = h.pairs();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].1.map(|o| o.index), Some(2));
        assert!(!h.truncated_tail);
    }

    #[test]
    fn cut_last_line_is_skipped_but_cut_middle_line_is_an_error() {
        let good = r#"{"index":0,"time":5,"process":3,"type":"invoke","f":"read","value":null}"#;
        let text = format!("{good}\n{{\"index\":1,\"ti");
        let h = History::parse(&text, "t").unwrap();
        assert_eq!(h.ops.len(), 1);
        assert!(h.truncated_tail);
        let bad = format!("{{\"index\":1,\"ti\n{good}\n");
        assert!(History::parse(&bad, "t").is_err());
    }

    #[test]
    fn rejects_bad_process() {
        let text = r#"{"index":0,"time":5,"process":"x","type":"invoke","f":"read"}"#;
        assert!(History::parse(&format!("{text}\n"), "t").is_err());
    }
}
