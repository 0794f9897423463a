//! RESP reply encoder, byte-compatible with redis 7.0 (the `addReply*` family
//! in `networking.c`), and the helpers the request parser shares with it
//! (`sdssplitargs`, `string2ll`).

use bytes::{BufMut, Bytes, BytesMut};

use super::Frame;

/// redis `sdssplitargs`: blanks separate arguments; `"..."` understands
/// `\n \r \t \b \a \xHH` and `\<any>`; `'...'` understands `\'` only; a
/// closing quote must be followed by a blank or the end. `None` means
/// unbalanced quotes. The line is a C string there, so a NUL ends it.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_c_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            let c = at(p);
            if inq {
                if c == b'\\' && at(p + 1) == b'x' && is_hex(at(p + 2)) && is_hex(at(p + 3)) {
                    cur.push(hex_val(at(p + 2)) * 16 + hex_val(at(p + 3)));
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    cur.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        if c != 0 {
                            p += 1;
                        }
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    other => cur.push(other),
                }
            }
            p += 1;
        }
        args.push(Bytes::from(cur));
    }
}

/// C `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// redis `string2ll`: strict decimal, optional `-`, no `+`, no leading zeros,
/// no blanks, at most 20 bytes, within `i64`.
pub fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    if let Some(short) = short_decimal(digits) {
        v = short?;
    } else {
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
    }
    if negative {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// The value of at most 19 ASCII digits (no sign): `None` if longer,
/// `Some(None)` if a byte is not a digit. 19 digits stay below 2^64, so no
/// overflow checks, and eight digits a step after the first few (SMEMBERS
/// parses every member of a small set on each read, the workloads every
/// element of a set read; `tests::string2ll_is_the_scalar_loop`).
pub fn short_decimal(digits: &[u8]) -> Option<Option<u64>> {
    if digits.len() > 19 {
        return None;
    }
    let head = digits.len() % 8;
    let mut v: u64 = 0;
    for &d in &digits[..head] {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return Some(None);
        }
        v = v * 10 + u64::from(d);
    }
    for chunk in digits[head..].chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        match eight_digits(u64::from_le_bytes(w)) {
            Some(d) => v = v * 100_000_000 + d,
            None => return Some(None),
        }
    }
    Some(Some(v))
}

/// The value of eight ASCII digits read little-endian (the first digit in
/// the low byte), or None if a byte is not a digit. The check: below the
/// lowest bad byte nothing borrows or carries, and that byte sets its high
/// bit in `x - '0'` (bytes below '0' or from 0xb0) or in `x + 0x46` (bytes
/// from ':' to 0xb9). Then pairs, quads and the halves are combined.
#[inline]
fn eight_digits(x: u64) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let d = x.wrapping_sub(ONES * u64::from(b'0'));
    if (d | x.wrapping_add(ONES * 0x46)) & (ONES * 0x80) != 0 {
        return None;
    }
    let d = (d.wrapping_mul(10 << 8 | 1) >> 8) & 0x00ff_00ff_00ff_00ff;
    let d = (d.wrapping_mul(100 << 16 | 1) >> 16) & 0x0000_ffff_0000_ffff;
    Some(d.wrapping_mul(10_000 << 32 | 1) >> 32)
}

/// Appends the encoding of `frame` for a RESP2 (`resp3 == false`) or RESP3 connection.
pub fn encode(frame: &Frame, resp3: bool, out: &mut BytesMut) {
    match frame {
        Frame::Simple(s) => line(out, b'+', s.as_bytes()),
        Frame::Error(s) => line(out, b'-', s.as_bytes()),
        Frame::Integer(n) => {
            out.put_u8(b':');
            put_int(out, *n);
            out.put_slice(b"\r\n");
        }
        Frame::Bulk(b) => bulk(out, b),
        Frame::Null => out.put_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        Frame::NullArray => out.put_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
        Frame::Array(items) => {
            header(out, b'*', items.len());
            for item in items {
                encode(item, resp3, out);
            }
        }
        Frame::Set(items) => {
            header(out, if resp3 { b'~' } else { b'*' }, items.len());
            for item in items {
                encode(item, resp3, out);
            }
        }
        Frame::Push(items) => {
            header(out, if resp3 { b'>' } else { b'*' }, items.len());
            for item in items {
                encode(item, resp3, out);
            }
        }
        Frame::Replies(items) => {
            for item in items {
                encode(item, resp3, out);
            }
        }
        Frame::Map(pairs) => {
            if resp3 {
                header(out, b'%', pairs.len());
            } else {
                header(out, b'*', pairs.len() * 2);
            }
            for (k, v) in pairs {
                encode(k, resp3, out);
                encode(v, resp3, out);
            }
        }
        Frame::Verbatim(text) => {
            if resp3 {
                header(out, b'=', text.len() + 4);
                out.put_slice(b"txt:");
                out.put_slice(text.as_bytes());
                out.put_slice(b"\r\n");
            } else {
                bulk(out, text.as_bytes());
            }
        }
        Frame::Double(d) => {
            let text = format_double(*d);
            if resp3 {
                line(out, b',', text.as_bytes());
            } else {
                bulk(out, text.as_bytes());
            }
        }
        Frame::Boolean(b) => {
            let bytes: &[u8] = match (resp3, *b) {
                (true, true) => b"#t\r\n",
                (true, false) => b"#f\r\n",
                (false, true) => b":1\r\n",
                (false, false) => b":0\r\n",
            };
            out.put_slice(bytes);
        }
    }
}

/// Encodes a whole frame into a new buffer (tests and one-off replies).
pub fn encode_to_vec(frame: &Frame, resp3: bool) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(frame, resp3, &mut out);
    out.to_vec()
}

/// A status or error line. CR and LF would break the framing, so they become
/// spaces, as redis does for error texts built from user input.
fn line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.put_u8(kind);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        out.put_slice(text);
    }
    out.put_slice(b"\r\n");
}

fn header(out: &mut BytesMut, kind: u8, len: usize) {
    out.put_u8(kind);
    put_uint(out, len as u64);
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    out.reserve(data.len() + 16);
    header(out, b'$', data.len());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

fn put_int(out: &mut BytesMut, n: i64) {
    if n < 0 {
        out.put_u8(b'-');
    }
    put_uint(out, n.unsigned_abs());
}

/// Decimal digits without going through `fmt` (this is on every reply).
fn put_uint(out: &mut BytesMut, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&tmp[i..]);
}

/// A double as redis prints it: C `%.17g`, with `inf`/`-inf`/`nan`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // 17 significant digits, correctly rounded, e.g. "-1.2345678901234567e-5".
    let sci = format!("{:.16e}", d);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::from(sign);
    if (-4..17).contains(&exp) {
        // Fixed notation with 16 - exp decimals, trailing zeros removed.
        if exp >= 0 {
            let int_len = exp as usize + 1;
            out.push_str(&digits[..int_len]);
            let frac = digits[int_len..].trim_end_matches('0');
            if !frac.is_empty() {
                out.push('.');
                out.push_str(frac);
            }
        } else {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(digits.trim_end_matches('0'));
        }
    } else {
        out.push_str(&digits[..1]);
        let frac = digits[1..].trim_end_matches('0');
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> Result<Option<(Vec<Bytes>, usize)>, super::super::ParseError> {
        super::super::parse_request(buf, &super::super::RequestLimits::default())
    }

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn perr(text: &str) -> super::super::ParseError {
        super::super::ParseError::Protocol(text.to_string())
    }

    #[test]
    fn inline_quoting_rules() {
        let q = |s: &[u8]| split_args(s);
        assert_eq!(q(br#"set "a b" 'c d'"#), Some(args(&["set", "a b", "c d"])));
        assert_eq!(
            q(br#""\x41\x4a\n\t\\\"" "\xZZ""#),
            Some(vec![
                Bytes::from_static(b"AJ\n\t\\\""),
                Bytes::from_static(b"xZZ"),
            ])
        );
        assert_eq!(q(br#"'it\'s' 'a\nb'"#), Some(args(&["it's", "a\\nb"])));
        assert_eq!(q(br#""unterminated"#), None);
        assert_eq!(q(br#"'unterminated"#), None);
        assert_eq!(q(br#""a"b"#), None);
        assert_eq!(q(br#"a"b c" d"#), Some(args(&["ab c", "d"])));
        assert_eq!(q(br#"a"b c"d"#), None);
        assert_eq!(q(b"a\x00b c"), Some(args(&["a"])));
        assert_eq!(q(b""), Some(vec![]));
        assert_eq!(q(b"\x0b a"), Some(args(&["a"])));
        assert_eq!(
            parse(b"get \"x\r\n"),
            Err(perr("unbalanced quotes in request"))
        );
    }

    #[test]
    fn string2ll_is_strict() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-1"), Some(-1));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"1a",
            b"99999999999999999999",
            b"18446744073709551616",
            b"-9223372036854775809",
            b"-18446744073709551615",
        ] {
            assert_eq!(string2ll(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            string2ll(b"999999999999999999"),
            Some(999_999_999_999_999_999)
        );
        assert_eq!(
            string2ll(b"-1000000000000000000"),
            Some(-1_000_000_000_000_000_000)
        );
        for n in [i64::MIN, i64::MIN + 1, -1, 1, 42, i64::MAX - 1, i64::MAX] {
            assert_eq!(string2ll(n.to_string().as_bytes()), Some(n));
        }
    }

    /// `string2ll` as it was, a digit at a time.
    fn string2ll_scalar(s: &[u8]) -> Option<i64> {
        if s.is_empty() || s.len() >= 21 {
            return None;
        }
        if s == b"0" {
            return Some(0);
        }
        let (negative, digits) = match s.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, s),
        };
        match digits.first() {
            Some(b'1'..=b'9') => {}
            _ => return None,
        }
        let mut v: u64 = 0;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        if negative {
            if v > i64::MAX as u64 + 1 {
                return None;
            }
            Some((v as i64).wrapping_neg())
        } else {
            i64::try_from(v).ok()
        }
    }

    #[test]
    fn string2ll_is_the_scalar_loop() {
        // Digits mostly, with every byte value now and then, at every length.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200_000 {
            let len = (next() % 22) as usize;
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
            if next() % 3 == 0 && !s.is_empty() {
                s[0] = b'-';
            }
            assert_eq!(string2ll(&s), string2ll_scalar(&s), "{s:?}");
        }
        for b in 0..=255u8 {
            for k in 0..8 {
                let mut s = b"12345678".to_vec();
                s[k] = b;
                assert_eq!(string2ll(&s), string2ll_scalar(&s), "{s:?}");
                let mut s = b"1234567890123456".to_vec();
                s[8 + k] = b;
                assert_eq!(string2ll(&s), string2ll_scalar(&s), "{s:?}");
            }
        }
        for n in (0..64).map(|b| 1u64 << b).chain(1..=19).flat_map(|b| {
            let p = 10u64.pow(u32::try_from(b % 19).unwrap_or(0));
            [b, p.wrapping_sub(1), p, p + 1]
        }) {
            for t in [n.to_string(), format!("-{n}")] {
                assert_eq!(
                    string2ll(t.as_bytes()),
                    string2ll_scalar(t.as_bytes()),
                    "{t}"
                );
            }
        }
    }

    fn enc(f: &Frame, resp3: bool) -> Vec<u8> {
        encode_to_vec(f, resp3)
    }

    #[test]
    fn encode_resp2_exact_bytes() {
        let f = Frame::Array(vec![
            Frame::Simple("OK".into()),
            Frame::Error("ERR bad\r\nthing".into()),
            Frame::Integer(-42),
            Frame::Integer(i64::MIN),
            Frame::bulk_str("hi"),
            Frame::Bulk(Bytes::new()),
            Frame::Null,
            Frame::NullArray,
            Frame::Map(vec![(Frame::bulk_str("k"), Frame::Integer(1))]),
            Frame::Verbatim("a\nb".into()),
            Frame::Double(1.5),
            Frame::Boolean(true),
            Frame::Boolean(false),
            Frame::Set(vec![Frame::Simple("x".into())]),
            Frame::Array(vec![]),
            Frame::Push(vec![Frame::Integer(1)]),
        ]);
        let want = b"*16\r\n+OK\r\n-ERR bad  thing\r\n:-42\r\n:-9223372036854775808\r\n$2\r\nhi\r\n$0\r\n\r\n\
$-1\r\n*-1\r\n*2\r\n$1\r\nk\r\n:1\r\n$3\r\na\nb\r\n$3\r\n1.5\r\n:1\r\n:0\r\n*1\r\n+x\r\n*0\r\n*1\r\n:1\r\n";
        assert_eq!(
            String::from_utf8_lossy(&enc(&f, false)),
            String::from_utf8_lossy(want)
        );
    }

    #[test]
    fn encode_resp3_exact_bytes() {
        let f = Frame::Array(vec![
            Frame::Null,
            Frame::NullArray,
            Frame::Map(vec![(Frame::bulk_str("k"), Frame::Integer(1))]),
            Frame::Verbatim("a\nb".into()),
            Frame::Double(1.5),
            Frame::Double(f64::INFINITY),
            Frame::Boolean(true),
            Frame::Boolean(false),
            Frame::Set(vec![Frame::Simple("x".into())]),
            Frame::Push(vec![Frame::Integer(1)]),
        ]);
        let want = b"*10\r\n_\r\n_\r\n%1\r\n$1\r\nk\r\n:1\r\n=7\r\ntxt:a\nb\r\n,1.5\r\n,inf\r\n#t\r\n#f\r\n~1\r\n+x\r\n>1\r\n:1\r\n";
        assert_eq!(
            String::from_utf8_lossy(&enc(&f, true)),
            String::from_utf8_lossy(want)
        );
        assert_eq!(
            enc(&Frame::Double(f64::NEG_INFINITY), false),
            b"$4\r\n-inf\r\n"
        );
    }

    #[test]
    fn doubles_print_like_printf_g17() {
        let cases: &[(f64, &str)] = &[
            (0.1, "0.10000000000000001"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (100.0, "100"),
            (1e17, "1e+17"),
            (1.5e16, "15000000000000000"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (123456789.125, "123456789.125"),
            (3.0e100, "2.9999999999999999e+100"),
            (-0.0, "-0"),
            (f64::NAN, "nan"),
        ];
        for (d, want) in cases {
            assert_eq!(format_double(*d), *want, "{d}");
        }
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn bulk_encoding_is_length_prefixed(data in proptest::collection::vec(any::<u8>(), 0..100)) {
                let out = encode_to_vec(&Frame::Bulk(Bytes::from(data.clone())), false);
                let mut want = format!("${}\r\n", data.len()).into_bytes();
                want.extend_from_slice(&data);
                want.extend_from_slice(b"\r\n");
                prop_assert_eq!(out, want);
            }
        }
    }
}
