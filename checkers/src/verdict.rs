//! Three-valued verdicts, merged as Jepsen's `compose` does: false beats unknown,
//! unknown beats true.

use serde::{Deserialize, Serialize};

/// A checker's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub enum Valid {
    True,
    False,
    Unknown,
}

impl Valid {
    /// Conjunction of two verdicts: any `False` wins, then any `Unknown`.
    pub fn and(self, other: Valid) -> Valid {
        match (self, other) {
            (Valid::False, _) | (_, Valid::False) => Valid::False,
            (Valid::Unknown, _) | (_, Valid::Unknown) => Valid::Unknown,
            _ => Valid::True,
        }
    }

    /// The process exit code for this verdict: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Valid::True => 0,
            Valid::False => 1,
            Valid::Unknown => 2,
        }
    }
}

impl From<Valid> for serde_json::Value {
    fn from(v: Valid) -> Self {
        match v {
            Valid::True => serde_json::Value::Bool(true),
            Valid::False => serde_json::Value::Bool(false),
            Valid::Unknown => serde_json::Value::String("unknown".into()),
        }
    }
}

impl TryFrom<serde_json::Value> for Valid {
    type Error = String;
    fn try_from(v: serde_json::Value) -> Result<Self, Self::Error> {
        match v {
            serde_json::Value::Bool(true) => Ok(Valid::True),
            serde_json::Value::Bool(false) => Ok(Valid::False),
            serde_json::Value::String(s) if s == "unknown" => Ok(Valid::Unknown),
            other => Err(format!("not a verdict: {other}")),
        }
    }
}

/// What one protocol rule found in one run: how many cases it judged, what broke
/// it, and why cases could not be judged. A rule with no case says so; a rule whose
/// server's log lacks its evidence says which cases it could not judge (`unjudged`)
/// without accusing anyone.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Rule {
    pub rule: &'static str,
    /// What the rule requires, in one line.
    pub requires: &'static str,
    pub valid: Valid,
    /// Cases judged.
    pub cases: usize,
    /// Cases seen but not judgeable from the evidence (e.g. redis-server logs no such
    /// field); these never make a verdict false or unknown.
    pub unjudged: usize,
    pub violations: Vec<serde_json::Value>,
    pub notes: Vec<String>,
}

impl Rule {
    pub fn new(rule: &'static str, requires: &'static str) -> Rule {
        Rule {
            rule,
            requires,
            valid: Valid::True,
            cases: 0,
            unjudged: 0,
            violations: vec![],
            notes: vec![],
        }
    }

    /// Records a violation (capped at 50 listed; the verdict is false either way).
    pub fn violate(&mut self, v: serde_json::Value) {
        self.valid = Valid::False;
        if self.violations.len() < 50 {
            self.violations.push(v);
        }
    }

    /// A rule that could not run (damaged evidence): unknown, with the reason.
    pub fn not_judged(mut self, why: String) -> Rule {
        self.valid = Valid::Unknown;
        self.notes.push(format!("not judged: {why}"));
        self
    }

    /// `violated`, `held`, `no cases`, `not judgeable` or `unknown`, for tables.
    pub fn status(&self) -> &'static str {
        match (self.valid, self.cases, self.unjudged) {
            (Valid::False, _, _) => "violated",
            (Valid::Unknown, _, _) => "unknown",
            (_, 0, 0) => "no cases",
            (_, 0, _) => "not judgeable",
            _ => "held",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn false_dominates_unknown_dominates_true() {
        assert_eq!(Valid::True.and(Valid::True), Valid::True);
        assert_eq!(Valid::True.and(Valid::Unknown), Valid::Unknown);
        assert_eq!(Valid::Unknown.and(Valid::False), Valid::False);
        assert_eq!(Valid::False.and(Valid::True), Valid::False);
    }

    #[test]
    fn serializes_like_jepsen() {
        assert_eq!(
            serde_json::to_string(&Valid::Unknown).unwrap(),
            "\"unknown\""
        );
        assert_eq!(serde_json::to_string(&Valid::False).unwrap(), "false");
        let v: Valid = serde_json::from_str("true").unwrap();
        assert_eq!(v, Valid::True);
        assert!(serde_json::from_str::<Valid>("3").is_err());
    }
}
