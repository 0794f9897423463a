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
    /// Kept as raw JSON text: a parsed `serde_json::Value` object costs ~700 bytes per
    /// op, which made million-op histories exceed the memory budget (issue 5).
    #[serde(default)]
    pub value: OpValue,
    /// The node the request went to (client ops), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An op's `value`, stored as its compact JSON text and parsed on demand.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpValue(Option<Box<serde_json::value::RawValue>>);

impl OpValue {
    /// JSON `null`.
    pub const NULL: OpValue = OpValue(None);

    /// The value as a `serde_json::Value` (parsed afresh on every call).
    pub fn json(&self) -> serde_json::Value {
        match &self.0 {
            // The text was valid JSON when stored, so parsing it again cannot fail.
            Some(raw) => serde_json::from_str(raw.get()).unwrap_or(serde_json::Value::Null),
            None => serde_json::Value::Null,
        }
    }

    /// Deserializes the value into a typed (possibly borrowing) shape.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.raw())
    }

    /// The JSON text (`null` for null).
    pub fn raw(&self) -> &str {
        self.0.as_deref().map_or("null", |r| r.get())
    }

    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }
}

impl From<serde_json::Value> for OpValue {
    fn from(v: serde_json::Value) -> Self {
        if v.is_null() {
            return OpValue(None);
        }
        // Serializing a `Value` cannot fail (its map keys are strings).
        OpValue(serde_json::value::to_raw_value(&v).ok())
    }
}

impl PartialEq for OpValue {
    /// Equality of the stored texts: both come from compact serialization, so equal
    /// values have equal texts except for object key order, which writers keep stable.
    fn eq(&self, other: &Self) -> bool {
        self.raw() == other.raw() || self.json() == other.json()
    }
}

impl std::fmt::Display for OpValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.raw())
    }
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
    /// The lines parse but are not a history the recorder could have written: indexes
    /// not consecutive, time going back, a process invoking twice without completing.
    /// Shuffled, reversed, cut or spliced files end here, never in a verdict.
    #[error("history {path} line {line}: {reason}")]
    Disorder {
        path: String,
        line: usize,
        reason: String,
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
    /// The ops must be in recorder order ([`History::validate`]).
    pub fn parse(text: &str, path: &str) -> Result<History, HistoryError> {
        let h = History::from_reader(text.as_bytes(), path)?;
        h.validate(path)?;
        Ok(h)
    }

    /// Parses JSON lines from a buffered reader, one line at a time (no whole-file copy);
    /// no order checks (see [`History::validate`]).
    pub fn from_reader<R: BufRead>(mut reader: R, path: &str) -> Result<History, HistoryError> {
        let mut ops = Vec::new();
        let mut truncated_tail = false;
        let mut line = Vec::new();
        let mut line_no = 0usize;
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|source| HistoryError::Io {
                    path: path.to_string(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            line_no += 1;
            // read_until only stops without a newline at end of input.
            let ends_with_newline = line.last() == Some(&b'\n');
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Op>(&line) {
                Ok(op) => ops.push(op),
                Err(_) if !ends_with_newline => truncated_tail = true,
                Err(source) => {
                    return Err(HistoryError::Parse {
                        path: path.to_string(),
                        line: line_no,
                        source,
                    })
                }
            }
        }
        ops.shrink_to_fit();
        Ok(History {
            ops,
            truncated_tail,
        })
    }

    /// Checks that the ops are in the order the recorder writes them: indexes 0, 1, 2,
    /// ... (one line per index, so a deleted or duplicated line shows), times never
    /// going back, and every client process alternating invoke and completion with
    /// the same `f`, never invoking again after an `info`. Line numbers count parsed
    /// ops from 1 (blank lines are not written by the recorder).
    pub fn validate(&self, path: &str) -> Result<(), HistoryError> {
        let bad = |i: usize, reason: String| HistoryError::Disorder {
            path: path.to_string(),
            line: i + 1,
            reason,
        };
        let mut open: HashMap<u64, (&str, usize)> = HashMap::new();
        let mut retired: HashMap<u64, usize> = HashMap::new();
        let mut last_time = 0u64;
        for (i, op) in self.ops.iter().enumerate() {
            if op.index != i as u64 {
                return Err(bad(
                    i,
                    format!(
                        "index {} where {i} was due (lines missing, repeated or out of order)",
                        op.index
                    ),
                ));
            }
            if op.time < last_time {
                return Err(bad(
                    i,
                    format!(
                        "time {} ns is before the previous line's {last_time} ns",
                        op.time
                    ),
                ));
            }
            last_time = op.time;
            let Process::Client(p) = op.process else {
                continue;
            };
            if let Some(at) = retired.get(&p) {
                return Err(bad(
                    i,
                    format!(
                        "process {p} acts again after its op ended info on line {}",
                        at + 1
                    ),
                ));
            }
            match (op.kind, open.get(&p)) {
                (OpType::Invoke, Some((_, at))) => {
                    return Err(bad(
                        i,
                        format!(
                            "process {p} invokes again before its invocation on line {} completed",
                            at + 1
                        ),
                    ))
                }
                (OpType::Invoke, None) => {
                    open.insert(p, (op.f.as_str(), i));
                }
                (_, None) => {
                    return Err(bad(
                        i,
                        format!("process {p} completes an op it never invoked"),
                    ))
                }
                (kind, Some((f, at))) => {
                    if *f != op.f {
                        return Err(bad(
                            i,
                            format!(
                                "process {p} completes {} but invoked {f} on line {}",
                                op.f,
                                at + 1
                            ),
                        ));
                    }
                    open.remove(&p);
                    if kind == OpType::Info {
                        retired.insert(p, i);
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads and parses a history file whose ops must be in recorder order
    /// ([`History::validate`]).
    pub fn read(path: &Path) -> Result<History, HistoryError> {
        let h = History::read_view(path)?;
        h.validate(&path.display().to_string())?;
        Ok(h)
    }

    /// Reads ops from a file that is a view of a history, such as `nemesis.jsonl` (the
    /// nemesis's lines only): parsed, not checked for order.
    pub fn read_view(path: &Path) -> Result<History, HistoryError> {
        let shown = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|source| HistoryError::Io {
            path: shown.clone(),
            source,
        })?;
        History::from_reader(std::io::BufReader::with_capacity(1 << 16, f), &shown)
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
    fn value_is_kept_as_text_and_parsed_on_demand() {
        let text = concat!(
            r#"{"index":0,"time":5,"process":1,"type":"invoke","f":"add","value":{"key":"k","element":7}}"#,
            "\n",
            r#"{"index":1,"time":6,"process":1,"type":"ok","f":"add"}"#,
            "\n"
        );
        let h = History::parse(text, "t").unwrap();
        assert_eq!(h.ops[0].value.raw(), r#"{"key":"k","element":7}"#);
        assert_eq!(h.ops[0].value.json()["element"], 7);
        // A missing value reads as null, like before.
        assert!(h.ops[1].value.is_null());
        assert_eq!(h.ops[1].value.json(), serde_json::Value::Null);
        // Writing and re-reading gives the same ops.
        let mut out = String::new();
        for op in &h.ops {
            out.push_str(&serde_json::to_string(op).unwrap());
            out.push('\n');
        }
        assert_eq!(History::parse(&out, "t").unwrap().ops, h.ops);
        let v: OpValue = serde_json::json!({"key": "k", "element": 7}).into();
        assert_eq!(v, h.ops[0].value);
    }

    #[test]
    fn disorder_is_an_error_naming_the_line() {
        let lines = [
            r#"{"index":0,"time":5,"process":1,"type":"invoke","f":"add","value":1}"#,
            r#"{"index":1,"time":6,"process":2,"type":"invoke","f":"add","value":2}"#,
            r#"{"index":2,"time":7,"process":1,"type":"ok","f":"add","value":1}"#,
            r#"{"index":3,"time":9,"process":2,"type":"info","f":"add","value":2}"#,
        ];
        let join = |ls: &[&str]| ls.join("\n") + "\n";
        assert!(History::parse(&join(&lines), "t").is_ok());
        let err = |ls: &[&str]| History::parse(&join(ls), "t").unwrap_err().to_string();
        // Reversed: index 3 first.
        let mut rev = lines.to_vec();
        rev.reverse();
        assert!(
            err(&rev).contains("line 1: index 3 where 0 was due"),
            "{}",
            err(&rev)
        );
        // Shuffled: two lines swapped.
        let sw = [lines[0], lines[2], lines[1], lines[3]];
        assert!(err(&sw).contains("line 2: index 2 where 1 was due"));
        // A line deleted in the middle.
        assert!(err(&[lines[0], lines[2], lines[3]]).contains("line 2"));
        // Time going back with correct indexes.
        let back = r#"{"index":3,"time":1,"process":2,"type":"info","f":"add","value":2}"#;
        assert!(err(&[lines[0], lines[1], lines[2], back]).contains("before the previous"));
        // A completion without invocation, a second invocation, a process back after info.
        let orphan = r#"{"index":0,"time":5,"process":1,"type":"ok","f":"add","value":1}"#;
        assert!(err(&[orphan]).contains("never invoked"));
        let again = r#"{"index":2,"time":7,"process":1,"type":"invoke","f":"add","value":3}"#;
        assert!(err(&[lines[0], lines[1], again]).contains("invokes again"));
        let zombie = r#"{"index":4,"time":9,"process":2,"type":"invoke","f":"add","value":5}"#;
        assert!(err(&[lines[0], lines[1], lines[2], lines[3], zombie])
            .contains("after its op ended info"));
    }

    #[test]
    fn rejects_bad_process() {
        let text = r#"{"index":0,"time":5,"process":"x","type":"invoke","f":"read"}"#;
        assert!(History::parse(&format!("{text}\n"), "t").is_err());
    }
}
