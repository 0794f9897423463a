//! The counters behind INFO commandstats and errorstats, kept the way redis
//! 7.0 keeps them (`call()`, `rejectCommand`, `afterErrorReply`):
//!
//! - `calls`, `usec`: every command run through `call()`, those inside EXEC
//!   included (not the ones merely QUEUED);
//! - `rejected_calls`: refused before running (arity, MOVED, READONLY...);
//! - `failed_calls`: ran and answered with an error;
//! - one `errorstat_<CODE>` per error reply sent, keyed by its first word.

use std::collections::BTreeMap;

use super::table::{self, CommandSpec};
use crate::resp::Frame;

/// One command's line of INFO commandstats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CmdStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
}

/// Per-command and per-error counters of one node.
#[derive(Debug)]
pub struct CallStats {
    per_command: Vec<CmdStat>,
    /// errorstat_<CODE> counts, in the order INFO prints them (redis keeps
    /// them in a radix tree, so sorted by code).
    errors: BTreeMap<String, u64>,
    /// total_error_replies.
    pub total_error_replies: u64,
    /// total_commands_processed: `call()` invocations.
    pub total_commands: u64,
}

impl Default for CallStats {
    fn default() -> Self {
        CallStats {
            per_command: vec![CmdStat::default(); table::spec_count()],
            errors: BTreeMap::new(),
            total_error_replies: 0,
            total_commands: 0,
        }
    }
}

impl CallStats {
    fn slot(&mut self, spec: &CommandSpec) -> Option<&mut CmdStat> {
        self.per_command.get_mut(spec.stat_slot())
    }

    /// A command ran (`call()`), taking `usec`; `failed` if it replied with an error.
    pub fn record_call(&mut self, spec: &CommandSpec, usec: u64, failed: bool) {
        self.total_commands += 1;
        if let Some(s) = self.slot(spec) {
            s.calls += 1;
            s.usec += usec;
            if failed {
                s.failed_calls += 1;
            }
        }
    }

    /// A command was refused before running.
    pub fn record_rejected(&mut self, spec: &CommandSpec) {
        if let Some(s) = self.slot(spec) {
            s.rejected_calls += 1;
        }
    }

    /// An error reply went out (`afterErrorReply`): counted under the first
    /// word of its text (at most 32 bytes in, else `ERR`).
    pub fn record_error(&mut self, text: &str) {
        self.total_error_replies += 1;
        let head = &text.as_bytes()[..text.len().min(32)];
        let code = match head.iter().position(|&b| b == b' ') {
            Some(end) if end > 0 => &text[..end],
            _ => "ERR",
        };
        match self.errors.get_mut(code) {
            Some(n) => *n += 1,
            None => {
                self.errors.insert(code.to_string(), 1);
            }
        }
    }

    /// Counts every error reply inside `frame` (an EXEC's array holds the
    /// queued commands' errors, which redis counts as they are added).
    pub fn record_errors_in(&mut self, frame: &Frame) {
        match frame {
            Frame::Error(e) => self.record_error(e),
            Frame::Array(items) | Frame::Replies(items) => {
                for f in items {
                    if let Frame::Error(e) = f {
                        self.record_error(e);
                    }
                }
            }
            _ => {}
        }
    }

    /// INFO commandstats lines (`cmdstat_get:calls=..`), commands that were
    /// never called or rejected left out, as redis does.
    pub fn commandstats_text(&self) -> String {
        let mut out = String::new();
        table::for_each_spec(&mut |spec| {
            let Some(s) = self.per_command.get(spec.stat_slot()) else {
                return;
            };
            if s.calls == 0 && s.rejected_calls == 0 && s.failed_calls == 0 {
                return;
            }
            let per_call = if s.calls == 0 {
                0.0
            } else {
                s.usec as f64 / s.calls as f64
            };
            out.push_str(&format!(
                "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}\r\n",
                spec.name, s.calls, s.usec, per_call, s.rejected_calls, s.failed_calls
            ));
        });
        out
    }

    /// INFO errorstats lines (`errorstat_ERR:count=3`).
    pub fn errorstats_text(&self) -> String {
        self.errors
            .iter()
            .map(|(code, n)| format!("errorstat_{code}:count={n}\r\n"))
            .collect()
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&mut self) {
        *self = CallStats::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_counted_by_their_first_word() {
        let mut s = CallStats::default();
        s.record_error("MOVED 12 127.0.0.1:7000");
        s.record_error("ERR unknown command 'x'");
        s.record_error("ERR syntax error");
        s.record_error("NOSPACEATALLINTHEFIRSTTHIRTYTWOBYTES of it");
        assert_eq!(
            s.errorstats_text(),
            "errorstat_ERR:count=3\r\nerrorstat_MOVED:count=1\r\n"
        );
        assert_eq!(s.total_error_replies, 4);
    }

    #[test]
    fn commandstats_show_only_used_commands() {
        let mut s = CallStats::default();
        let Some(get) = table::lookup_name(b"get") else {
            panic!("get is in the table")
        };
        let Some(set) = table::lookup_name(b"set") else {
            panic!("set is in the table")
        };
        s.record_call(get, 10, false);
        s.record_call(get, 20, true);
        s.record_rejected(set);
        let text = s.commandstats_text();
        assert!(
            text.contains("cmdstat_get:calls=2,usec=30,usec_per_call=15.00,rejected_calls=0,failed_calls=1\r\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "cmdstat_set:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0\r\n"
            ),
            "{text}"
        );
        assert_eq!(text.lines().count(), 2);
        assert_eq!(s.total_commands, 2);
    }
}
