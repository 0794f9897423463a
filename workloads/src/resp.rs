//! RESP2: encode commands as arrays of bulk strings; decode replies incrementally.
//!
//! Replies come from nodes under test, which may be buggy: every length is bounded and
//! malformed input is an error, never a panic.

use hearsay_node::resp::short_decimal;

/// Largest bulk string accepted in a reply.
pub const MAX_BULK: usize = 64 * 1024 * 1024;
/// Largest array length accepted in a reply.
pub const MAX_ARRAY: usize = 4 * 1024 * 1024;
/// Deepest nesting accepted (CLUSTER SLOTS nests 3 deep).
const MAX_DEPTH: usize = 16;

/// A decoded reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Blob>),
    Array(Option<Vec<Value>>),
}

/// A bulk string's bytes, shared rather than owned: the simulator hands the
/// node's own strings to the client without a copy each (a set read carries
/// thousands). Compares and prints (`Debug`) as the bytes' `Vec<u8>` would,
/// so error texts that show a reply are unchanged.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Blob(pub bytes::Bytes);

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        <[u8] as std::fmt::Debug>::fmt(&self.0, f)
    }
}

impl std::ops::Deref for Blob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Blob {
        Blob(bytes::Bytes::from(v))
    }
}

impl Value {
    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(Some(b)) => Some(&b.0),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// Text of a bulk or simple string (lossy UTF-8).
    pub fn as_text(&self) -> Option<String> {
        self.as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// The integer a bulk or simple string spells, as `as_text()?.parse()`
    /// reads it, without the copy (set and list reads parse every element).
    pub fn parse_i64(&self) -> Option<i64> {
        parse_i64(self.as_bytes()?)
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(Some(v)) => Some(v),
            _ => None,
        }
    }
}

/// `str::parse::<i64>` on the lossy text of `b`, byte by byte: an optional
/// sign, then one or more ASCII digits, in range. (Hand-written: the std
/// parse through a UTF-8 check was most of a set read's cost per element.
/// Bytes that are not UTF-8 would become U+FFFD, which no integer accepts,
/// as no non-digit byte is accepted here; `tests::parse_i64_is_std_parse`.)
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    if digits.len() <= 18 {
        // 18 digits stay below i64::MAX: the node's fast path, eight digits a
        // step (a set read parses thousands).
        let v = short_decimal(digits)?? as i64;
        return Some(if neg { -v } else { v });
    }
    // Accumulated negative, so i64::MIN fits.
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if neg {
        Some(n)
    } else {
        n.checked_neg()
    }
}

/// Malformed reply bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    #[error("unknown reply type byte {0:#04x}")]
    BadType(u8),
    #[error("bad length or integer {0:?}")]
    BadNumber(String),
    #[error("length {0} over limit")]
    TooLong(i64),
    #[error("bulk string not terminated by CRLF")]
    BadTerminator,
    #[error("reply nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Decodes one reply from the front of `buf`: `Ok(None)` if more bytes are needed,
/// else the value and how many bytes it used.
pub fn decode(buf: &[u8]) -> Result<Option<(Value, usize)>, RespError> {
    decode_at(buf, 0, 0)
}

fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((rest.get(..end)?, at + end + 2))
}

fn number(text: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| RespError::BadNumber(String::from_utf8_lossy(text).into_owned()))
}

fn decode_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Value, usize)>, RespError> {
    if depth > MAX_DEPTH {
        return Err(RespError::TooDeep);
    }
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((text, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    match kind {
        b'+' => Ok(Some((
            Value::Simple(String::from_utf8_lossy(text).into_owned()),
            next,
        ))),
        b'-' => Ok(Some((
            Value::Error(String::from_utf8_lossy(text).into_owned()),
            next,
        ))),
        b':' => Ok(Some((Value::Int(number(text)?), next))),
        b'$' => {
            let len = number(text)?;
            if len < 0 {
                return Ok(Some((Value::Bulk(None), next)));
            }
            if len as u64 > MAX_BULK as u64 {
                return Err(RespError::TooLong(len));
            }
            let len = len as usize;
            let Some(body) = buf.get(next..next + len) else {
                return Ok(None);
            };
            match buf.get(next + len..next + len + 2) {
                None => Ok(None),
                Some(b"\r\n") => Ok(Some((
                    Value::Bulk(Some(Blob(bytes::Bytes::copy_from_slice(body)))),
                    next + len + 2,
                ))),
                Some(_) => Err(RespError::BadTerminator),
            }
        }
        b'*' => {
            let len = number(text)?;
            if len < 0 {
                return Ok(Some((Value::Array(None), next)));
            }
            if len as u64 > MAX_ARRAY as u64 {
                return Err(RespError::TooLong(len));
            }
            let mut items = Vec::with_capacity((len as usize).min(1024));
            let mut pos = next;
            for _ in 0..len {
                match decode_at(buf, pos, depth + 1)? {
                    None => return Ok(None),
                    Some((v, p)) => {
                        items.push(v);
                        pos = p;
                    }
                }
            }
            Ok(Some((Value::Array(Some(items)), pos)))
        }
        other => Err(RespError::BadType(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_i64_is_std_parse() {
        let mut cases: Vec<Vec<u8>> = [
            "",
            "+",
            "-",
            "0",
            "-0",
            "+0",
            "00012",
            "7",
            "-7",
            "+7",
            "1 ",
            " 1",
            "1a",
            "--1",
            "+-1",
            "-+1",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "+9223372036854775807",
            "99999999999999999999999",
            "4294967297",
            "١",
            "1\u{0}",
            "½",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        cases.extend([vec![b'1', 0xff], vec![0xc3, b'1'], vec![b'-', 0x80]]);
        for n in [i64::MIN, i64::MAX, -1, 1, 10, -10, 1 << 40, (7 << 32) | 9] {
            cases.push(n.to_string().into_bytes());
        }
        // Digits mostly, a sign now and then, every byte value sometimes, at
        // every length up to 22.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..100_000 {
            let len = (next() % 23) as usize;
            let mut s: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 16 == 0 {
                        (r >> 8) as u8
                    } else {
                        b'0' + (r >> 8) as u8 % 10
                    }
                })
                .collect();
            match next() % 4 {
                0 if !s.is_empty() => s[0] = b'-',
                1 if !s.is_empty() => s[0] = b'+',
                _ => {}
            }
            cases.push(s);
        }
        for b in 0..=255u8 {
            for k in 0..16 {
                let mut s = b"1234567890123456".to_vec();
                s[k] = b;
                cases.push(s);
            }
        }
        for c in &cases {
            let want = String::from_utf8_lossy(c).parse::<i64>().ok();
            assert_eq!(parse_i64(c), want, "{:?}", String::from_utf8_lossy(c));
        }
    }

    #[test]
    fn encodes_command() {
        assert_eq!(
            encode(&[b"SADD", b"k", b"12"]),
            b"*3\r\n$4\r\nSADD\r\n$1\r\nk\r\n$2\r\n12\r\n".to_vec()
        );
    }

    #[test]
    fn decodes_each_type_and_waits_for_more() {
        let cases: Vec<(&[u8], Value)> = vec![
            (b"+OK\r\n", Value::Simple("OK".into())),
            (b"-MOVED 1 a:2\r\n", Value::Error("MOVED 1 a:2".into())),
            (b":-5\r\n", Value::Int(-5)),
            (b"$3\r\nabc\r\n", Value::Bulk(Some(b"abc".to_vec().into()))),
            (b"$-1\r\n", Value::Bulk(None)),
            (
                b"*2\r\n:1\r\n*1\r\n$0\r\n\r\n",
                Value::Array(Some(vec![
                    Value::Int(1),
                    Value::Array(Some(vec![Value::Bulk(Some(Vec::new().into()))])),
                ])),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(decode(bytes).unwrap(), Some((want, bytes.len())));
            for cut in 0..bytes.len() {
                assert_eq!(decode(&bytes[..cut]).unwrap(), None, "{bytes:?} cut {cut}");
            }
        }
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(matches!(decode(b"?x\r\n"), Err(RespError::BadType(b'?'))));
        assert!(decode(b"$abc\r\n").is_err());
        assert!(decode(b"$99999999999\r\n").is_err());
        assert!(decode(b"*99999999999\r\n").is_err());
        assert!(matches!(
            decode(b"$1\r\nab\r\n"),
            Err(RespError::BadTerminator)
        ));
        let deep = "*1\r\n".repeat(40);
        assert!(matches!(decode(deep.as_bytes()), Err(RespError::TooDeep)));
    }
}
