//! What a simulated run records, in memory until the end: the history (the
//! same `Op` lines the real recorder writes, stamped with virtual time), the
//! snapshots, and a digest of the history and every node's event log.

use hearsay_checkers::{OpType, Process};
use std::cell::Cell;
use std::rc::Rc;

/// The history recorder of a simulated run.
pub struct Rec {
    /// Virtual µs now (the world sets it before running anything).
    pub now_us: Rc<Cell<u64>>,
    /// History time 0 (µs): the start of the workload.
    pub t0_us: u64,
    pub history: Vec<u8>,
    pub nemesis: Vec<u8>,
    next: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

impl Rec {
    pub fn new(now_us: Rc<Cell<u64>>) -> Rec {
        Rec {
            now_us,
            t0_us: 0,
            history: Vec::with_capacity(1 << 20),
            nemesis: Vec::new(),
            next: 0,
            ok: 0,
            fail: 0,
            info: 0,
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.now_us.get().saturating_sub(self.t0_us) * 1000
    }

    pub fn record(
        &mut self,
        process: Process,
        kind: OpType,
        f: &str,
        value: serde_json::Value,
        node: Option<String>,
        error: Option<String>,
    ) {
        let at = self.history.len();
        let time = self.now_ns();
        write_line(
            &mut self.history,
            self.next,
            time,
            process,
            kind,
            f,
            &value,
            node.as_deref(),
            error.as_deref(),
        );
        self.next += 1;
        if matches!(process, Process::Client(_)) {
            match kind {
                OpType::Ok => self.ok += 1,
                OpType::Fail => self.fail += 1,
                OpType::Info => self.info += 1,
                OpType::Invoke => {}
            }
        }
        if process == Process::Nemesis {
            self.nemesis.extend_from_slice(&self.history[at..]);
        }
    }
}

/// Appends one history line (and its newline) byte for byte as serde_json
/// writes `hearsay_checkers::Op` (fields in order, `node` and `error` only
/// when set, `value` compact). Hand-written: the history line was the
/// largest single cost of a client op in the simulator (a set read carries
/// every element; serde's generic path through `Value` cost several times
/// this direct walk). `tests::lines_match_serde` pins the equivalence.
#[allow(clippy::too_many_arguments)]
fn write_line(
    out: &mut Vec<u8>,
    index: u64,
    time: u64,
    process: Process,
    kind: OpType,
    f: &str,
    value: &serde_json::Value,
    node: Option<&str>,
    error: Option<&str>,
) {
    out.extend_from_slice(b"{\"index\":");
    write_u64(out, index);
    out.extend_from_slice(b",\"time\":");
    write_u64(out, time);
    out.extend_from_slice(b",\"process\":");
    match process {
        Process::Client(n) => write_u64(out, n),
        Process::Nemesis => out.extend_from_slice(b"\"nemesis\""),
    }
    out.extend_from_slice(match kind {
        OpType::Invoke => b",\"type\":\"invoke\",\"f\":",
        OpType::Ok => b",\"type\":\"ok\",\"f\":" as &[u8],
        OpType::Fail => b",\"type\":\"fail\",\"f\":",
        OpType::Info => b",\"type\":\"info\",\"f\":",
    });
    write_str(out, f);
    out.extend_from_slice(b",\"value\":");
    write_value(out, value);
    if let Some(n) = node {
        out.extend_from_slice(b",\"node\":");
        write_str(out, n);
    }
    if let Some(e) = error {
        out.extend_from_slice(b",\"error\":");
        write_str(out, e);
    }
    out.extend_from_slice(b"}\n");
}

/// `v` as `serde_json::to_writer` writes it (compact): the history's
/// values and the snapshot lines.
pub fn write_value(out: &mut Vec<u8>, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                write_u64(out, u);
            } else if let Some(i) = n.as_i64() {
                out.push(b'-');
                write_u64(out, i.unsigned_abs());
            } else {
                // Floats: serde_json's own formatting (writing to a Vec
                // cannot fail).
                let _ = serde_json::to_writer(&mut *out, n);
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            // A number's 20-byte write and a comma per item (most are
            // numbers), so the items never grow the buffer.
            out.reserve(21 * items.len() + 2);
            out.push(b'[');
            for (k, x) in items.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                // Elements of a read are non-negative integers: no call.
                match x {
                    Value::Number(n) if n.is_u64() => write_u64(out, n.as_u64().unwrap_or(0)),
                    _ => write_value(out, x),
                }
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (k, (key, x)) in map.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_value(out, x);
            }
            out.push(b'}');
        }
    }
}

/// A JSON string as serde_json writes it: it escapes only `"`, `\\` and
/// control bytes (`\b \t \n \f \r` by name, the others as `\u00xx`), and
/// the runs between are copied whole, found eight bytes at a time. By hand: a
/// snapshot line carries every node's CLUSTER NODES text, and serde's
/// byte-by-byte escaping of it was 1.4 % of a run (`tests::lines_match_serde`,
/// `strings_match_serde`).
fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let (mut k, mut run) = (0, 0);
    while k < bytes.len() {
        if let Some(w) = bytes.get(k..k + 8) {
            let mut x = [0u8; 8];
            x.copy_from_slice(w);
            if !word_needs_escape(u64::from_le_bytes(x)) {
                k += 8;
                continue;
            }
        }
        let b = bytes[k];
        k += 1;
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[run..k - 1]);
        run = k;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// Whether any of the eight bytes of `x` needs escaping: a byte below 0x20,
/// `"` or `\\` (the bit tricks' exact tests for a byte below n <= 128 and
/// for a zero byte).
fn word_needs_escape(x: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let below_space = x.wrapping_sub(LO * 0x20) & !x & HI;
    below_space | zero(x ^ (LO * u64::from(b'"'))) | zero(x ^ (LO * u64::from(b'\\'))) != 0
}

/// `n` in decimal, two digits a step (elements of set reads are 10-12 digits).
#[inline]
fn write_u64(out: &mut Vec<u8>, n: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    // The digit count first (from the bit length, one comparison to correct
    // it), so the digits are written left-aligned and the buffer appended
    // whole: a fixed-size copy, not a call to memcpy per number (a set read
    // writes thousands).
    let bits = 64 - (n | 1).leading_zeros();
    let t = ((bits * 1233) >> 12) as usize;
    let digits = (t + usize::from(POW10.get(t).is_some_and(|&p| n >= p))).max(1);
    let mut buf = [0u8; 20];
    let mut i = digits;
    let mut n = n;
    while n >= 100 {
        let k = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[k..k + 2]);
    }
    if n >= 10 {
        let k = n as usize * 2;
        buf[..2].copy_from_slice(&PAIRS[k..k + 2]);
    } else {
        buf[0] = b'0' + n as u8;
    }
    let len = out.len();
    out.extend_from_slice(&buf);
    out.truncate(len + digits);
}

/// 10^k for k in 0..20.
const POW10: [u64; 20] = {
    let mut p = [1u64; 20];
    let mut k = 1;
    while k < 20 {
        p[k] = p[k - 1] * 10;
        k += 1;
    }
    p
};

/// A 64-bit digest of several byte strings, each followed by its length so
/// that moving bytes between them changes it: 8 bytes at a time, FNV-style
/// multiply and a final avalanche (splitmix64). Enough to tell two runs
/// apart; not a cryptographic hash.
pub fn digest<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    const P: u64 = 0x0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        let mut chunks = p.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            h = (h ^ w).wrapping_mul(P).rotate_left(29);
        }
        for b in chunks.remainder() {
            h = (h ^ *b as u64).wrapping_mul(P);
        }
        h = (h ^ p.len() as u64).wrapping_mul(P).rotate_left(29);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn write_u64_is_to_string() {
        let mut cases = vec![0u64, 1, 9, 10, 99, 100, 101, u64::MAX, u64::MAX - 1];
        for p in POW10 {
            cases.extend([p, p - 1, p + 1, p.saturating_mul(2), p / 2 * 3]);
        }
        for b in 0..64 {
            cases.extend([1u64 << b, (1u64 << b) - 1, (1u64 << b) + 1]);
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.extend([x, x >> (x % 64)]);
        }
        for n in cases {
            let mut out = b"x".to_vec();
            write_u64(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes(), "{n}");
        }
    }

    /// The line serde_json writes for an `Op` with this value.
    #[derive(serde::Serialize)]
    struct OpLine<'a> {
        index: u64,
        time: u64,
        process: Process,
        #[serde(rename = "type")]
        kind: OpType,
        f: &'a str,
        value: &'a serde_json::Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        node: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
    }

    #[test]
    fn integers_match_std() {
        let mut cases = vec![0, 1, 9, 10, 99, 100, u64::MAX, u64::MAX - 1];
        for p in 1..20 {
            let t = 10u64.pow(p);
            cases.extend([t - 1, t, t + 1, t + t / 2 + 7]);
        }
        for n in cases {
            let mut got = b"x".to_vec();
            write_u64(&mut got, n);
            assert_eq!(got, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn strings_match_serde() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é☃\u{10ffff}");
        let cases = [
            String::new(),
            all.clone(),
            all.chars().rev().collect(),
            "a1b2 master - 0 0 1 connected 0-5460\nx\n".into(),
            "\"\\\n".into(),
        ];
        let mut cases = cases.to_vec();
        // Each special byte at each place in and across the eight-byte words.
        for b in (0u8..0x20).chain([b'"', b'\\', b' ', b'!', b'#', b'[', b'~', 0x7f]) {
            for at in 0..20 {
                let mut t: Vec<u8> = b"abcdefghijklmnopqrst".to_vec();
                t[at] = b;
                cases.push(String::from_utf8(t).unwrap());
            }
        }
        for s in cases {
            let mut got = Vec::new();
            write_str(&mut got, &s);
            assert_eq!(got, serde_json::to_vec(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn lines_match_serde() {
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(u64::MAX),
            json!([
                9,
                10,
                11,
                99,
                100,
                101,
                999,
                1000,
                4294967297_u64,
                30064771075_u64
            ]),
            json!(-100),
            json!(i64::MIN),
            json!(-17),
            json!(1.5),
            json!(-0.0),
            json!(1e300),
            json!("plain"),
            json!("quote \" back \\ nl \n tab \t bell \u{7} del \u{7f} é ☃"),
            json!([]),
            json!({}),
            json!({"key": "set{3.1}", "elements": [1, 2, 4294967297_i64, -5]}),
            json!({"z": [{"a": null}, [1, [2, "x"]]], "a": {"b": 2.25}}),
        ];
        let kinds = [OpType::Invoke, OpType::Ok, OpType::Fail, OpType::Info];
        for (k, v) in values.iter().enumerate() {
            for (process, node, error) in [
                (Process::Client(k as u64), None, None),
                (Process::Nemesis, Some("n3"), Some("MOVED 12 \"x\"")),
                (Process::Client(u64::MAX), Some("127.0.0.1:7001"), None),
            ] {
                let kind = kinds[k % 4];
                let op = OpLine {
                    index: k as u64 * 1_000_003,
                    time: u64::MAX - k as u64,
                    process,
                    kind,
                    f: "final-read",
                    value: v,
                    node,
                    error,
                };
                let mut want = serde_json::to_vec(&op).unwrap();
                want.push(b'\n');
                let mut got = Vec::new();
                write_line(
                    &mut got, op.index, op.time, process, kind, op.f, v, node, error,
                );
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                );
            }
        }
    }
}
