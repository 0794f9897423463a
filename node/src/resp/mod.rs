//! RESP2/RESP3: the client-port protocol. `Frame` is what commands reply with;
//! the codec parses requests (multibulk and inline) and encodes replies for the
//! connection's protocol version (2 or 3, switched by HELLO).

mod codec;
mod request;

pub use codec::{encode, encode_to_vec, format_double, short_decimal, split_args, string2ll};
pub use request::{
    keep, parse_request, parse_request_buf, ParseError, Parsed, RequestLimits, RequestParser,
};

use bytes::Bytes;

/// A reply (or request) value. RESP3-only shapes are downgraded when encoded
/// for a RESP2 connection, as redis does.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+text`
    Simple(String),
    /// `-text` (the text includes the code, e.g. `ERR ...`, `MOVED 1 ip:port`)
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$len bytes`
    Bulk(Bytes),
    /// RESP2 `$-1`, RESP3 `_`
    Null,
    /// RESP2 `*-1`, RESP3 `_`
    NullArray,
    /// `*n ...`
    Array(Vec<Frame>),
    /// RESP3 `%n` map; RESP2: a flat array of 2n elements.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `=len txt:...` verbatim string; RESP2: a bulk string.
    Verbatim(String),
    /// RESP3 `,d` double; RESP2: bulk string.
    Double(f64),
    /// RESP3 `#t`/`#f`; RESP2: integer 1/0.
    Boolean(bool),
    /// RESP3 `~n` set; RESP2: array.
    Set(Vec<Frame>),
    /// RESP3 `>n` push (pub/sub messages and confirmations); RESP2: array.
    Push(Vec<Frame>),
    /// Several replies in a row, as one command that answers more than once
    /// (SUBSCRIBE with several channels). Not a RESP type.
    Replies(Vec<Frame>),
}

impl Frame {
    pub fn ok() -> Frame {
        Frame::Simple("OK".into())
    }

    pub fn bulk(b: impl Into<Bytes>) -> Frame {
        Frame::Bulk(b.into())
    }

    pub fn bulk_str(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// An error reply; `text` must already start with its code (`ERR`, `WRONGTYPE`...).
    pub fn error(text: impl Into<String>) -> Frame {
        Frame::Error(text.into())
    }

    /// `ERR wrong number of arguments for '<cmd>' command`
    pub fn wrong_arity(cmd: &str) -> Frame {
        Frame::Error(format!("ERR wrong number of arguments for '{cmd}' command"))
    }
}
