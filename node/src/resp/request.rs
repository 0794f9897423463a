//! The request parser, byte-compatible with redis 7.0's `processInlineBuffer`
//! and `processMultibulkBuffer` (`networking.c`): same limits, same error texts,
//! same tolerance (the two bytes after a bulk payload are skipped unread).
//!
//! It is incremental, as redis's is: a [`RequestParser`] remembers how far it
//! got into the request at the front of the buffer (arguments found, where the
//! next one starts, how far a line was searched for its end), so the work for
//! one request is proportional to its bytes however they are split into reads.
//! The caller keeps the request's bytes in place between calls and only
//! appends to them, then drops what a complete request consumed.
//!
//! A request's arguments are copied out of the read buffer into one allocation
//! of their own (never pinning the read buffer); the store copies new keys
//! again so that a kept key does not pin its request, and SET keeps a small
//! value by [`keep`].

use bytes::{Bytes, BytesMut};

use super::codec::{split_args, string2ll};
use super::Frame;

/// Bounds on what one request may allocate.
#[derive(Clone, Debug)]
pub struct RequestLimits {
    /// proto-max-bulk-len: the longest single argument.
    pub max_bulk_len: usize,
    /// The most elements one multibulk request may announce (redis: `INT_MAX`;
    /// argument slots are reserved only as arguments arrive, see [`ARGV_PREALLOC`]).
    pub max_multibulk_len: usize,
    /// PROTO_INLINE_MAX_SIZE: the longest inline line, and the longest count
    /// line (`*N` / `$N`) we wait for before giving up.
    pub max_inline_len: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as usize,
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

/// What [`RequestParser::parse`] found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete, non-empty request and the bytes it took (empty requests
    /// before it included).
    Request(Vec<Bytes>, usize),
    /// Only empty requests (blank inline lines, `*0`, `*-1`): drop this many
    /// bytes and call again.
    Skip(usize),
    /// The request at the front is not complete: append bytes and call again.
    Incomplete,
}

/// The parse of the request at the front of a client's buffer, kept between
/// reads (redis's `c->reqtype`, `c->multibulklen`, `c->bulklen`).
#[derive(Debug, Default)]
pub struct RequestParser {
    /// `None` at a request boundary.
    partial: Option<Box<Partial>>,
}

#[derive(Debug)]
enum Partial {
    /// An inline request whose line end was searched for up to `scanned`.
    Inline {
        scanned: usize,
    },
    Multibulk(Multibulk),
}

/// A multibulk request being read. Positions are relative to the request's
/// first byte (`*`).
#[derive(Debug)]
struct Multibulk {
    /// Arguments still to find.
    remaining: usize,
    /// Where the next argument's `$` line (or, with `bulk`, its data) starts.
    pos: usize,
    /// The `\r` of the line at `pos` was searched for up to here.
    scanned: usize,
    /// The length from the `$` line already read; the data starts at `pos`.
    bulk: Option<usize>,
    /// (start, len) of each argument found.
    spans: Spans,
    /// Sum of the arguments' lengths.
    total: usize,
}

impl RequestParser {
    pub fn new() -> RequestParser {
        RequestParser::default()
    }

    /// True at a request boundary (nothing of a request parsed yet).
    pub fn is_idle(&self) -> bool {
        self.partial.is_none()
    }

    /// Bytes the parser knows it still needs for the request at the front
    /// (the rest of a bulk whose length it has read), beyond the `have` bytes
    /// already buffered: a hint for sizing the next read. 0 if unknown.
    pub fn wanted(&self, have: usize) -> usize {
        match self.partial.as_deref() {
            Some(Partial::Multibulk(m)) => match m.bulk {
                Some(len) => (m.pos + len + 2).saturating_sub(have),
                None => 0,
            },
            _ => 0,
        }
    }

    /// Forgets any partial request (the connection is being reset or closed).
    pub fn reset(&mut self) {
        self.partial = None;
    }

    /// Parses the request at the front of `buf`. While a request is
    /// incomplete, `buf` must keep starting at that request's first byte, with
    /// new bytes only appended. After a `Request` or `Skip`, the caller drops
    /// the consumed bytes before the next call. After an error the parser is
    /// reset and the connection is to be closed.
    pub fn parse(&mut self, buf: &[u8], limits: &RequestLimits) -> Result<Parsed, ParseError> {
        let result = self.parse_inner(buf, limits);
        if result.is_err() {
            self.partial = None;
        }
        result
    }

    fn parse_inner(&mut self, buf: &[u8], limits: &RequestLimits) -> Result<Parsed, ParseError> {
        if let Some(mut partial) = self.partial.take() {
            let done = match partial.as_mut() {
                Partial::Inline { scanned } => parse_inline(buf, 0, scanned, limits)?,
                Partial::Multibulk(m) => m.resume(buf, limits)?,
            };
            return Ok(match done {
                // A blank line that arrived in pieces.
                Some((args, end)) if args.is_empty() => Parsed::Skip(end),
                Some((args, end)) => Parsed::Request(args, end),
                None => {
                    self.partial = Some(partial);
                    Parsed::Incomplete
                }
            });
        }
        // At a request boundary: skip empty requests, then parse one.
        let mut start = 0;
        while start < buf.len() {
            let (step, partial) = if buf[start] == b'*' {
                match start_multibulk(buf, start, limits)? {
                    Start::Empty(end) => {
                        start = end;
                        continue;
                    }
                    Start::Incomplete => (None, None),
                    Start::Args(mut m) => {
                        let view = &buf[start..];
                        match m.resume(view, limits)? {
                            Some((args, end)) => (Some((args, start + end)), None),
                            None => (None, Some(Partial::Multibulk(m))),
                        }
                    }
                }
            } else {
                let mut scanned = 0;
                match parse_inline(&buf[start..], 0, &mut scanned, limits)? {
                    Some((args, end)) if args.is_empty() => {
                        start += end;
                        continue;
                    }
                    Some((args, end)) => (Some((args, start + end)), None),
                    None => (None, Some(Partial::Inline { scanned })),
                }
            };
            if let Some((args, end)) = step {
                return Ok(Parsed::Request(args, end));
            }
            if start > 0 {
                // Positions would be relative to `start`: let the caller drop
                // the empty requests first; the next call starts over cheaply.
                return Ok(Parsed::Skip(start));
            }
            self.partial = partial.map(Box::new);
            return Ok(Parsed::Incomplete);
        }
        Ok(if start > 0 {
            Parsed::Skip(start)
        } else {
            Parsed::Incomplete
        })
    }
}

/// Parses one request from the front of `buf` with no saved state:
/// `Ok(Some((args, consumed)))`, `Ok(None)` if more bytes are needed.
///
/// Empty requests (blank inline lines, `*0`, `*-1`) are skipped as redis does.
/// When the buffer holds nothing but skipped requests, the result is
/// `Ok(Some((vec![], consumed)))`: advance by `consumed` and run nothing.
/// A returned `args` is otherwise never empty. (Each call starts over: for a
/// stream of reads, keep a [`RequestParser`].)
pub fn parse_request(
    buf: &[u8],
    limits: &RequestLimits,
) -> Result<Option<(Vec<Bytes>, usize)>, ParseError> {
    Ok(match RequestParser::new().parse(buf, limits)? {
        Parsed::Request(args, n) => Some((args, n)),
        Parsed::Skip(n) => Some((Vec::new(), n)),
        Parsed::Incomplete => None,
    })
}

/// Like [`parse_request`], but consumes what it parsed from `buf` and only
/// returns non-empty requests: `Ok(None)` means "read more".
pub fn parse_request_buf(
    buf: &mut BytesMut,
    limits: &RequestLimits,
) -> Result<Option<Vec<Bytes>>, ParseError> {
    loop {
        match RequestParser::new().parse(buf, limits)? {
            Parsed::Request(args, consumed) => {
                let _ = buf.split_to(consumed);
                return Ok(Some(args));
            }
            Parsed::Skip(consumed) => {
                let _ = buf.split_to(consumed);
            }
            Parsed::Incomplete => return Ok(None),
        }
    }
}

enum Start {
    /// `*0`, `*-1`...: an empty request ending here.
    Empty(usize),
    Incomplete,
    Args(Multibulk),
}

/// Reads the `*N` line of a multibulk request at `start`.
fn start_multibulk(buf: &[u8], start: usize, limits: &RequestLimits) -> Result<Start, ParseError> {
    let mut scanned = start;
    let (count, after) = match quick_count(buf, start) {
        Some((n, after)) => (Some(n), after),
        None => match count_line(
            buf,
            start,
            &mut scanned,
            limits,
            "too big mbulk count string",
        )? {
            Some(line) => line,
            None => return Ok(Start::Incomplete),
        },
    };
    let count = match count {
        Some(n) if n <= i64::from(i32::MAX) && n <= limits.max_multibulk_len as i64 => n,
        _ => return Err(ParseError::new("invalid multibulk length")),
    };
    if count <= 0 {
        return Ok(Start::Empty(after));
    }
    let count = count as usize;
    let pos = after - start;
    Ok(Start::Args(Multibulk {
        remaining: count,
        pos,
        scanned: pos,
        bulk: None,
        spans: Spans::new(count),
        total: 0,
    }))
}

impl Multibulk {
    /// Finds the remaining arguments in `buf` (the request's bytes from its
    /// `*`); `None` if more bytes are needed, the state then saved in `self`.
    fn resume(
        &mut self,
        buf: &[u8],
        limits: &RequestLimits,
    ) -> Result<Option<(Vec<Bytes>, usize)>, ParseError> {
        while self.remaining > 0 {
            let len = match self.bulk {
                Some(len) => len,
                None => {
                    if self.pos >= buf.len() {
                        return Ok(None);
                    }
                    let is_bulk = buf[self.pos] == b'$';
                    let what = "too big bulk count string";
                    // Wait for the whole line, also before reporting a missing
                    // `$`, as redis does: the error then does not depend on
                    // how the bytes were split into reads.
                    let (len, data) = match quick_count(buf, self.pos) {
                        Some((n, data)) if is_bulk => (Some(n), data),
                        _ => match count_line(buf, self.pos, &mut self.scanned, limits, what)? {
                            Some(line) => line,
                            None => return Ok(None),
                        },
                    };
                    if !is_bulk {
                        return Err(ParseError::Protocol(format!(
                            "expected '$', got '{}'",
                            char::from(buf[self.pos])
                        )));
                    }
                    let len = match len {
                        Some(n) if n >= 0 && (n as u64) <= limits.max_bulk_len as u64 => n as usize,
                        _ => return Err(ParseError::new("invalid bulk length")),
                    };
                    self.pos = data;
                    self.bulk = Some(len);
                    len
                }
            };
            // redis skips the two bytes after the payload without looking at them.
            let Some(end) = self.pos.checked_add(len).and_then(|e| e.checked_add(2)) else {
                return Err(ParseError::new("invalid bulk length"));
            };
            if end > buf.len() {
                return Ok(None);
            }
            self.spans.push((self.pos, len));
            self.total += len;
            self.remaining -= 1;
            self.pos = end;
            self.scanned = end;
            self.bulk = None;
        }
        Ok(Some((self.spans.collect(buf, self.total), self.pos)))
    }
}

/// (start, len) of each argument: on the stack for the usual few arguments.
#[derive(Debug)]
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

    /// Copies every argument into one allocation (one buffer per request
    /// instead of one per argument) and slices it.
    fn collect(&self, buf: &[u8], total: usize) -> Vec<Bytes> {
        let spans = self.as_slice();
        let data = if total <= SMALL {
            Bytes::from_owner(Inline::<SMALL>::gather(spans, buf, total))
        } else if total <= MEDIUM {
            Bytes::from_owner(Inline::<MEDIUM>::gather(spans, buf, total))
        } else {
            let mut data = Vec::with_capacity(total);
            for &(start, len) in spans {
                data.extend_from_slice(&buf[start..start + len]);
            }
            Bytes::from(data)
        };
        let mut args = Vec::with_capacity(spans.len());
        let mut at = 0;
        for &(_, len) in spans {
            args.push(data.slice(at..at + len));
            at += len;
        }
        args
    }
}

/// An argument a command stores (SET's value): a short one gets an
/// allocation of its own, so that the request's block is freed with the
/// request and reused warm by the next one. Kept as a slice of the request,
/// a value pinned the block until overwritten; every request then wrote its
/// arguments into a block last touched long ago (a cache miss per SET), and
/// a 3-byte value held a 72-byte block (issue 18). A longer argument stays
/// a slice: its request is mostly the argument itself.
pub fn keep(arg: &Bytes) -> Bytes {
    let n = arg.len();
    if n == 0 {
        Bytes::new()
    } else if n <= 16 {
        Bytes::from_owner(Inline::<16>::gather(&[(0, n)], arg, n))
    } else if n <= 32 {
        Bytes::from_owner(Inline::<32>::gather(&[(0, n)], arg, n))
    } else {
        arg.clone()
    }
}

/// Requests whose arguments add up to at most this many bytes keep them in
/// an [`Inline`] buffer (`GET key`, `SET key value` with short ones).
const SMALL: usize = 48;
const MEDIUM: usize = 112;

/// A small request's arguments, in the same allocation as the reference
/// count `Bytes::from_owner` keeps: one allocation per request where a
/// `Vec` made two (its data, then the shared header `Bytes` allocates when
/// the first argument is sliced off), about 200 instructions less per
/// request. A value a command keeps pins at most `MEDIUM` bytes this way.
struct Inline<const N: usize> {
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> Inline<N> {
    /// The arguments at `spans` of `buf`, `total` bytes (at most `N`), end to end.
    fn gather(spans: &[(usize, usize)], buf: &[u8], total: usize) -> Inline<N> {
        let mut out = Inline {
            len: total,
            buf: [0u8; N],
        };
        let mut at = 0;
        for &(start, len) in spans {
            out.buf[at..at + len].copy_from_slice(&buf[start..start + len]);
            at += len;
        }
        out
    }
}

impl<const N: usize> AsRef<[u8]> for Inline<N> {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Reads the count line at `start` (`*N\r` or `$N\r`, the type byte already
/// known). Returns the parsed number (`None` if not a valid `string2ll`) and
/// the position after the terminator, or `Ok(None)` if the line is incomplete.
/// `scanned` says where the search for `\r` resumes and is advanced.
///
/// Like redis, the line ends at the first `\r`, which must be followed by one
/// more byte (not checked to be `\n`).
fn count_line(
    buf: &[u8],
    start: usize,
    scanned: &mut usize,
    limits: &RequestLimits,
    too_big: &str,
) -> Result<Option<(Option<i64>, usize)>, ParseError> {
    if let Some((v, after)) = quick_count(buf, start) {
        return Ok(Some((Some(v), after)));
    }
    let from = (*scanned).max(start);
    match buf[from..].iter().position(|&b| b == b'\r') {
        None => {
            *scanned = buf.len();
            if buf.len() - start > limits.max_inline_len {
                Err(ParseError::new(too_big))
            } else {
                Ok(None)
            }
        }
        Some(i) => {
            let cr = from + i;
            *scanned = cr;
            if cr + 2 > buf.len() {
                return Ok(None);
            }
            Ok(Some((buf.get(start + 1..cr).and_then(string2ll), cr + 2)))
        }
    }
}

/// The usual count line at `start`, read while looking for its end: the
/// type byte, 1 to 18 digits (no leading zero but in `0`), `\r` and one
/// more byte. The number and the position after the line; `None` for
/// anything else (signs, leading zeros, long or incomplete lines), which
/// [`count_line`] reads. Inlined where it is used: the call and the wide
/// result of `count_line` cost more than the line itself, three times a
/// request.
#[inline(always)]
fn quick_count(buf: &[u8], start: usize) -> Option<(i64, usize)> {
    let digits = buf.get(start + 1..)?;
    let mut v: i64 = 0;
    let mut i = 0;
    while i < digits.len() && i < 18 && digits[i].is_ascii_digit() {
        v = v * 10 + i64::from(digits[i] - b'0');
        i += 1;
    }
    if i > 0
        && (digits[0] != b'0' || i == 1)
        && digits.get(i) == Some(&b'\r')
        && i + 2 <= digits.len()
    {
        Some((v, start + 1 + i + 2))
    } else {
        None
    }
}

/// One inline request at `start`: a line split on blanks with redis's quoting
/// rules. `scanned` says where the search for `\n` resumes.
fn parse_inline(
    buf: &[u8],
    start: usize,
    scanned: &mut usize,
    limits: &RequestLimits,
) -> Result<Option<(Vec<Bytes>, usize)>, ParseError> {
    let from = (*scanned).max(start);
    let Some(i) = buf[from..].iter().position(|&b| b == b'\n') else {
        *scanned = buf.len();
        if buf.len() - start > limits.max_inline_len {
            return Err(ParseError::new("too big inline request"));
        }
        return Ok(None);
    };
    let nl = from + i;
    let mut line = &buf[start..nl];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    let args = split_args(line).ok_or_else(|| ParseError::new("unbalanced quotes in request"))?;
    Ok(Some((args, nl + 1)))
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
    fn a_kept_short_value_leaves_its_request_and_a_long_one_stays_a_slice() {
        let within = |part: &Bytes, whole: &[Bytes]| {
            // Every argument of a request is a slice of one block.
            let start = whole[0].as_ptr() as usize;
            let end = whole[whole.len() - 1].as_ptr() as usize + whole[whole.len() - 1].len();
            (start..=end).contains(&(part.as_ptr() as usize))
        };
        for len in [0usize, 1, 3, 16, 17, 32, 33, 200] {
            let value = "v".repeat(len);
            let req = format!("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n${len}\r\n{value}\r\n");
            let (argv, _) = parse(req.as_bytes()).unwrap().unwrap();
            let kept = keep(&argv[2]);
            assert_eq!(kept, value.as_bytes(), "{len}");
            if len > 0 {
                assert_eq!(within(&kept, &argv), len > 32, "{len}");
            }
        }
    }

    /// Feeds `input` to one parser in pieces of `step` bytes, as a connection
    /// would, and returns every request (or the first error).
    fn feed(input: &[u8], step: usize, l: &RequestLimits) -> Result<Vec<Vec<Bytes>>, ParseError> {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in input.chunks(step.max(1)) {
            buf.extend_from_slice(chunk);
            loop {
                match parser.parse(&buf, l)? {
                    Parsed::Request(a, n) => {
                        let _ = buf.split_to(n);
                        out.push(a);
                    }
                    Parsed::Skip(n) => {
                        let _ = buf.split_to(n);
                    }
                    Parsed::Incomplete => break,
                }
            }
        }
        Ok(out)
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

    #[test]
    fn any_split_into_reads_gives_the_same_requests() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n\r\nPING\r\n*0\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let want = vec![
            args(&["SET", "k", "hello"]),
            args(&["PING"]),
            args(&["GET", "k"]),
        ];
        for step in 1..input.len() + 1 {
            assert_eq!(feed(input, step, &limits()).unwrap(), want, "step {step}");
        }
    }

    #[test]
    fn the_parser_does_not_rescan_what_it_has_read() {
        // A million one-byte arguments in 1 KB reads: a parser that starts over
        // on every read would do ~10^10 steps here; this one is linear.
        let n = 1_000_000;
        let mut input = format!("*{}\r\n", n + 1).into_bytes();
        input.extend_from_slice(b"$5\r\nRPUSH\r\n");
        for _ in 0..n {
            input.extend_from_slice(b"$1\r\nx\r\n");
        }
        let started = std::time::Instant::now();
        let got = feed(&input, 1024, &limits()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), n + 1);
        // Generous: linear work takes well under a second even in debug builds.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn a_long_line_in_small_pieces_is_searched_once() {
        let mut input = b"SET k ".to_vec();
        input.extend(std::iter::repeat_n(b'v', 60_000));
        input.extend_from_slice(b"\r\n");
        let got = feed(&input, 7, &limits()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0][2].len(), 60_000);
        let mut p = RequestParser::new();
        assert_eq!(
            p.parse(&input[..100], &limits()).unwrap(),
            Parsed::Incomplete
        );
        assert!(!p.is_idle());
        assert_eq!(
            p.parse(&input, &limits()).unwrap(),
            Parsed::Request(got[0].clone(), input.len())
        );
        assert!(p.is_idle());
    }

    #[test]
    fn wanted_tells_the_rest_of_a_known_bulk() {
        let mut p = RequestParser::new();
        let buf = b"*2\r\n$3\r\nSET\r\n$100\r\nab";
        assert_eq!(p.parse(buf, &limits()).unwrap(), Parsed::Incomplete);
        // data starts after "$100\r\n" (at 19), needs 100 + 2 bytes.
        assert_eq!(p.wanted(buf.len()), 19 + 102 - buf.len());
    }

    #[test]
    fn errors_reset_the_parser() {
        let mut p = RequestParser::new();
        assert_eq!(
            p.parse(b"*2\r\n$3\r\nGET", &limits()).unwrap(),
            Parsed::Incomplete
        );
        assert_eq!(
            p.parse(b"*2\r\n$3\r\nGET\r\n$x\r\n", &limits()),
            Err(perr("invalid bulk length"))
        );
        assert!(p.is_idle());
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
            fn split_reads_match_one_read(
                buf in proptest::collection::vec(prop::sample::select(b"*$\r\n0123-x ".to_vec()), 0..80),
                step in 1usize..9,
            ) {
                // Whatever the bytes, reading them in pieces gives the same
                // requests, or the same error, as reading them at once.
                let l = RequestLimits { max_bulk_len: 64, max_multibulk_len: 16, max_inline_len: 32 };
                let whole = super::feed(&buf, buf.len().max(1), &l);
                let pieces = super::feed(&buf, step, &l);
                // Which error, and whether one is seen yet, may depend on
                // the split, as in redis: a line longer than the limit is
                // refused only while its end has not arrived.
                if let (Ok(a), Ok(b)) = (whole, pieces) {
                    prop_assert_eq!(a, b);
                }
            }
        }
    }
}
