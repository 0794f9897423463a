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
