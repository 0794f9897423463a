//! RESP request parser and reply encoder, byte-compatible with redis 7.0
//! (`processInlineBuffer`, `processMultibulkBuffer` and the `addReply*` family
//! in `networking.c`).
//!
//! The parser is a pure function of the buffer: it never keeps state between
//! calls, so an incomplete request is simply parsed again when more bytes
//! arrive. A request's arguments are copied out of the read buffer into one
//! allocation of their own (never pinning the read buffer); the store copies
//! new keys again so that a kept key does not pin its request.

use bytes::{BufMut, Bytes, BytesMut};

use super::Frame;

/// Bounds on what one request may allocate.
#[derive(Clone, Debug)]
pub struct RequestLimits {
    /// proto-max-bulk-len: the longest single argument.
    pub max_bulk_len: usize,
    /// The most elements one multibulk request may announce. (redis 7.0 only
    /// caps this at `INT_MAX`; we keep a lower bound against hostile counts.)
    pub max_multibulk_len: usize,
    /// PROTO_INLINE_MAX_SIZE: the longest inline line, and the longest count
    /// line (`*N` / `$N`) we wait for before giving up.
    pub max_inline_len: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: 1024 * 1024,
            max_inline_len: 64 * 1024,
        }
    }
}

/// A protocol error: the connection gets `-ERR Protocol error: ...` and is closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("Protocol error: {0}")]
    Protocol(String),
}

impl ParseError {
    /// The reply redis sends before closing the connection.
    pub fn to_frame(&self) -> Frame {
        Frame::Error(format!("ERR {self}"))
    }

    fn new(text: &str) -> ParseError {
        ParseError::Protocol(text.to_string())
    }
}

/// Preallocation cap for the argument vector: a hostile `*1000000` must not
/// reserve memory for arguments that never arrive (redis caps it at 1024 too).
const ARGV_PREALLOC: usize = 1024;

/// Parses one request from the front of `buf`: `Ok(Some((args, consumed)))`,
/// `Ok(None)` if more bytes are needed.
///
/// Empty requests (blank inline lines, `*0`, `*-1`) are skipped as redis does.
/// When the buffer holds nothing but skipped requests, the result is
/// `Ok(Some((vec![], consumed)))`: advance by `consumed` and run nothing.
/// A returned `args` is otherwise never empty.
pub fn parse_request(
    buf: &[u8],
    limits: &RequestLimits,
) -> Result<Option<(Vec<Bytes>, usize)>, ParseError> {
    let mut pos = 0;
    while pos < buf.len() {
        let step = if buf[pos] == b'*' {
            parse_multibulk(buf, pos, limits)?
        } else {
            parse_inline(buf, pos, limits)?
        };
        match step {
            None => break,
            Some((args, end)) if args.is_empty() => pos = end,
            Some((args, end)) => return Ok(Some((args, end))),
        }
    }
    if pos > 0 {
        Ok(Some((Vec::new(), pos)))
    } else {
        Ok(None)
    }
}

/// Like [`parse_request`], but consumes what it parsed from `buf` and only
/// returns non-empty requests: `Ok(None)` means "read more".
pub fn parse_request_buf(
    buf: &mut BytesMut,
    limits: &RequestLimits,
) -> Result<Option<Vec<Bytes>>, ParseError> {
    match parse_request(buf, limits)? {
        Some((args, consumed)) => {
            let _ = buf.split_to(consumed);
            if args.is_empty() {
                Ok(None)
            } else {
                Ok(Some(args))
            }
        }
        None => Ok(None),
    }
}

/// `*N\r\n` then N times `$len\r\n<len bytes>\r\n`, starting at `start`.
fn parse_multibulk(
    buf: &[u8],
    start: usize,
    limits: &RequestLimits,
) -> Result<Option<(Vec<Bytes>, usize)>, ParseError> {
    let Some((count, mut pos)) = count_line(buf, start, limits, "too big mbulk count string")?
    else {
        return Ok(None);
    };
    let count = match count {
        Some(n) if n <= i64::from(i32::MAX) && n <= limits.max_multibulk_len as i64 => n,
        _ => return Err(ParseError::new("invalid multibulk length")),
    };
    if count <= 0 {
        return Ok(Some((Vec::new(), pos)));
    }
    let count = count as usize;
    // First find every argument, then copy them all into one allocation:
    // one buffer per request instead of one per argument.
    let mut spans = Spans::new(count);
    let mut total = 0usize;
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(None);
        }
        if buf[pos] != b'$' {
            // Wait for the whole line first, as redis does, so that the error
            // does not depend on how the bytes were split into reads.
            if count_line(buf, pos, limits, "too big bulk count string")?.is_none() {
                return Ok(None);
            }
            return Err(ParseError::Protocol(format!(
                "expected '$', got '{}'",
                char::from(buf[pos])
            )));
        }
        let Some((len, data)) = count_line(buf, pos, limits, "too big bulk count string")? else {
            return Ok(None);
        };
        let len = match len {
            Some(n) if n >= 0 && (n as u64) <= limits.max_bulk_len as u64 => n as usize,
            _ => return Err(ParseError::new("invalid bulk length")),
        };
        // redis skips the two bytes after the payload without looking at them.
        let Some(end) = data.checked_add(len).and_then(|e| e.checked_add(2)) else {
            return Err(ParseError::new("invalid bulk length"));
        };
        if end > buf.len() {
            return Ok(None);
        }
        spans.push((data, len));
        total += len;
        pos = end;
    }
    let mut data = Vec::with_capacity(total);
    for &(start, len) in spans.as_slice() {
        data.extend_from_slice(&buf[start..start + len]);
    }
    let data = Bytes::from(data);
    let mut args = Vec::with_capacity(spans.as_slice().len());
    let mut at = 0;
    for &(_, len) in spans.as_slice() {
        args.push(data.slice(at..at + len));
        at += len;
    }
    Ok(Some((args, pos)))
}

/// (start, len) of each argument: on the stack for the usual few arguments.
enum Spans {
    Inline([(usize, usize); 8], usize),
    Heap(Vec<(usize, usize)>),
}

impl Spans {
    fn new(count: usize) -> Spans {
        if count <= 8 {
            Spans::Inline([(0, 0); 8], 0)
        } else {
            Spans::Heap(Vec::with_capacity(count.min(ARGV_PREALLOC)))
        }
    }

    fn push(&mut self, span: (usize, usize)) {
        match self {
            Spans::Inline(a, n) if *n < a.len() => {
                a[*n] = span;
                *n += 1;
            }
            Spans::Inline(a, n) => {
                let mut v = a[..*n].to_vec();
                v.push(span);
                *self = Spans::Heap(v);
            }
            Spans::Heap(v) => v.push(span),
        }
    }

    fn as_slice(&self) -> &[(usize, usize)] {
        match self {
            Spans::Inline(a, n) => &a[..*n],
            Spans::Heap(v) => v,
        }
    }
}

/// Reads the count line at `start` (`*N\r` or `$N\r`, the type byte already
/// known). Returns the parsed number (`None` if not a valid `string2ll`) and
/// the position after the terminator, or `Ok(None)` if the line is incomplete.
///
/// Like redis, the line ends at the first `\r`, which must be followed by one
/// more byte (not checked to be `\n`).
fn count_line(
    buf: &[u8],
    start: usize,
    limits: &RequestLimits,
    too_big: &str,
) -> Result<Option<(Option<i64>, usize)>, ParseError> {
    let rest = &buf[start..];
    match rest.iter().position(|&b| b == b'\r') {
        None => {
            if rest.len() > limits.max_inline_len {
                Err(ParseError::new(too_big))
            } else {
                Ok(None)
            }
        }
        Some(cr) if cr + 2 > rest.len() => Ok(None),
        Some(cr) => Ok(Some((rest.get(1..cr).and_then(string2ll), start + cr + 2))),
    }
}

/// One inline request: a line split on blanks with redis's quoting rules.
fn parse_inline(
    buf: &[u8],
    start: usize,
    limits: &RequestLimits,
) -> Result<Option<(Vec<Bytes>, usize)>, ParseError> {
    let rest = &buf[start..];
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        if rest.len() > limits.max_inline_len {
            return Err(ParseError::new("too big inline request"));
        }
        return Ok(None);
    };
    let mut line = &rest[..nl];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    let args = split_args(line).ok_or_else(|| ParseError::new("unbalanced quotes in request"))?;
    Ok(Some((args, start + nl + 1)))
}

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

    fn limits() -> RequestLimits {
        RequestLimits::default()
    }

    fn parse(buf: &[u8]) -> Result<Option<(Vec<Bytes>, usize)>, ParseError> {
        parse_request(buf, &limits())
    }

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn perr(text: &str) -> ParseError {
        ParseError::Protocol(text.to_string())
    }

    #[test]
    fn multibulk_complete_and_consumed() {
        let buf = b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n*1\r\n$4\r\nPING\r\n";
        let (a, n) = parse(buf).unwrap().unwrap();
        assert_eq!(a, args(&["GET", "foo"]));
        assert_eq!(n, 22);
        let (a, n2) = parse(&buf[n..]).unwrap().unwrap();
        assert_eq!(a, args(&["PING"]));
        assert_eq!(n + n2, buf.len());
    }

    #[test]
    fn multibulk_incomplete_at_every_split() {
        let buf = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        for cut in 0..buf.len() {
            assert_eq!(parse(&buf[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(
            parse(buf).unwrap(),
            Some((args(&["SET", "k", "hello"]), buf.len()))
        );
    }

    #[test]
    fn multibulk_binary_and_empty_args() {
        let buf = b"*3\r\n$0\r\n\r\n$2\r\n\r\n\r\n$1\r\n\x00\r\n";
        let (a, n) = parse(buf).unwrap().unwrap();
        assert_eq!(
            a,
            vec![
                Bytes::new(),
                Bytes::from_static(b"\r\n"),
                Bytes::from_static(b"\x00")
            ]
        );
        assert_eq!(n, buf.len());
    }

    #[test]
    fn multibulk_trailer_bytes_are_not_checked() {
        // redis skips the two bytes after a bulk payload blindly.
        let (a, n) = parse(b"*1\r\n$4\r\nPINGxy").unwrap().unwrap();
        assert_eq!(a, args(&["PING"]));
        assert_eq!(n, 14);
    }

    #[test]
    fn empty_multibulk_is_skipped() {
        assert_eq!(parse(b"*0\r\n").unwrap(), Some((vec![], 4)));
        assert_eq!(
            parse(b"*-1\r\n*1\r\n$4\r\nPING\r\n").unwrap(),
            Some((args(&["PING"]), 19))
        );
        assert_eq!(parse(b"*-5\r\n*1\r\n$4\r\nPI").unwrap(), Some((vec![], 5)));
    }

    #[test]
    fn multibulk_errors_match_redis() {
        assert_eq!(parse(b"*x\r\n"), Err(perr("invalid multibulk length")));
        assert_eq!(parse(b"*01\r\n"), Err(perr("invalid multibulk length")));
        assert_eq!(parse(b"*+1\r\n"), Err(perr("invalid multibulk length")));
        assert_eq!(parse(b"*\r\n"), Err(perr("invalid multibulk length")));
        assert_eq!(
            parse(b"*2147483648\r\n"),
            Err(perr("invalid multibulk length"))
        );
        assert_eq!(parse(b"*1\r\n$-1\r\n"), Err(perr("invalid bulk length")));
        assert_eq!(parse(b"*1\r\n$abc\r\n"), Err(perr("invalid bulk length")));
        assert_eq!(
            parse(b"*1\r\n$536870913\r\n"),
            Err(perr("invalid bulk length"))
        );
        assert_eq!(parse(b"*1\r\nfoo\r\n"), Err(perr("expected '$', got 'f'")));
        assert_eq!(
            parse(b"*2\r\n$1\r\na\r\n:1\r\n"),
            Err(perr("expected '$', got ':'"))
        );
        let long = [b"*".as_slice(), &[b'1'; 70000]].concat();
        assert_eq!(parse(&long), Err(perr("too big mbulk count string")));
        let long = [b"*1\r\n$".as_slice(), &[b'1'; 70000]].concat();
        assert_eq!(parse(&long), Err(perr("too big bulk count string")));
    }

    #[test]
    fn limits_are_enforced() {
        let l = RequestLimits {
            max_bulk_len: 4,
            max_multibulk_len: 2,
            max_inline_len: 8,
        };
        assert_eq!(
            parse_request(b"*1\r\n$4\r\nPING\r\n", &l)
                .unwrap()
                .map(|x| x.1),
            Some(14)
        );
        assert_eq!(
            parse_request(b"*1\r\n$5\r\n", &l),
            Err(perr("invalid bulk length"))
        );
        assert_eq!(
            parse_request(b"*3\r\n", &l),
            Err(perr("invalid multibulk length"))
        );
        assert_eq!(
            parse_request(b"PING PING", &l),
            Err(perr("too big inline request"))
        );
        assert_eq!(parse_request(b"PING PIN", &l), Ok(None));
    }

    #[test]
    fn huge_count_does_not_preallocate() {
        // Would be a 1M-element Vec if trusted; must just wait for data.
        assert_eq!(parse(b"*1048576\r\n$1\r\na\r\n").unwrap(), None);
    }

    #[test]
    fn inline_requests() {
        assert_eq!(parse(b"PING\r\n").unwrap(), Some((args(&["PING"]), 6)));
        assert_eq!(parse(b"PING\n").unwrap(), Some((args(&["PING"]), 5)));
        assert_eq!(
            parse(b"  set  a   b \r\n").unwrap(),
            Some((args(&["set", "a", "b"]), 15))
        );
        assert_eq!(parse(b"PING").unwrap(), None);
        assert_eq!(
            parse(b"\r\n\r\nPING\r\n").unwrap(),
            Some((args(&["PING"]), 10))
        );
        assert_eq!(parse(b"\r\n  \n").unwrap(), Some((vec![], 5)));
        let long = vec![b'a'; 64 * 1024 + 1];
        assert_eq!(parse(&long), Err(perr("too big inline request")));
        assert_eq!(parse(&long[..64 * 1024]).unwrap(), None);
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
        ] {
            assert_eq!(string2ll(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn parse_request_buf_consumes() {
        let mut buf = BytesMut::from(&b"\r\n*1\r\n$4\r\nPING\r\nGET"[..]);
        assert_eq!(
            parse_request_buf(&mut buf, &limits()).unwrap(),
            Some(args(&["PING"]))
        );
        assert_eq!(&buf[..], b"GET");
        assert_eq!(parse_request_buf(&mut buf, &limits()).unwrap(), None);
        let mut buf = BytesMut::from(&b"\r\n"[..]);
        assert_eq!(parse_request_buf(&mut buf, &limits()).unwrap(), None);
        assert!(buf.is_empty());
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
        ]);
        let want = b"*15\r\n+OK\r\n-ERR bad  thing\r\n:-42\r\n:-9223372036854775808\r\n$2\r\nhi\r\n$0\r\n\r\n\
$-1\r\n*-1\r\n*2\r\n$1\r\nk\r\n:1\r\n$3\r\na\nb\r\n$3\r\n1.5\r\n:1\r\n:0\r\n*1\r\n+x\r\n*0\r\n";
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
        ]);
        let want = b"*9\r\n_\r\n_\r\n%1\r\n$1\r\nk\r\n:1\r\n=7\r\ntxt:a\nb\r\n,1.5\r\n,inf\r\n#t\r\n#f\r\n~1\r\n+x\r\n";
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

        fn encode_request(args: &[Vec<u8>]) -> Vec<u8> {
            let mut out = format!("*{}\r\n", args.len()).into_bytes();
            for a in args {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a);
                out.extend_from_slice(b"\r\n");
            }
            out
        }

        proptest! {
            #[test]
            fn never_panics_on_garbage(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
                let l = RequestLimits { max_bulk_len: 64, max_multibulk_len: 16, max_inline_len: 32 };
                if let Ok(Some((_, n))) = parse_request(&buf, &l) {
                    prop_assert!(n > 0 && n <= buf.len());
                }
            }

            #[test]
            fn never_panics_on_mutated_requests(
                args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 1..5),
                at in any::<prop::sample::Index>(),
                byte in any::<u8>(),
                cut in any::<prop::sample::Index>(),
            ) {
                let mut buf = encode_request(&args);
                let i = at.index(buf.len());
                buf[i] = byte;
                let c = cut.index(buf.len() + 1);
                let _ = parse_request(&buf[..c], &RequestLimits::default());
            }

            #[test]
            fn multibulk_round_trips(
                args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8),
                split in any::<prop::sample::Index>(),
            ) {
                let buf = encode_request(&args);
                let want: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
                prop_assert_eq!(parse_request(&buf, &RequestLimits::default()).unwrap(), Some((want, buf.len())));
                let s = split.index(buf.len());
                prop_assert_eq!(parse_request(&buf[..s], &RequestLimits::default()).unwrap(), None);
            }

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
