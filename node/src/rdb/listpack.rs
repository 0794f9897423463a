//! Listpacks (redis `listpack.c`): the compact encoding redis 7.0 stores
//! small lists (quicklist nodes), hashes and sorted sets in, and writes into
//! RDB files and DUMP payloads as one opaque string.
//!
//! ```text
//! <total bytes u32 LE> <count u16 LE, 65535 = unknown> <entry>* 0xFF
//! entry: <encoding+data> <backlen: size of encoding+data, 1-5 bytes>
//! ```
//!
//! Written by hand: no maintained crate reads or writes redis listpacks.
//! Decoding validates everything (redis's deep `lpValidateIntegrity`), since
//! the bytes come from a peer or a file.

use bytes::Bytes;

use super::codec::int_bytes;
use super::RdbError;
use crate::resp::string2ll;

const HEADER: usize = 6;
const EOF: u8 = 0xFF;
const COUNT_UNKNOWN: u16 = u16::MAX;

/// One element, as listpacks store it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Entry<'_> {
    /// The element as redis hands it out: integers as decimal text.
    pub fn to_bytes(self) -> Bytes {
        match self {
            Entry::Str(s) => Bytes::copy_from_slice(s),
            Entry::Int(v) => int_bytes(v),
        }
    }

    /// A listpack element that is a canonical integer is stored as one
    /// (redis `lpStringToInt64`).
    pub fn of(s: &[u8]) -> Entry<'_> {
        match string2ll(s) {
            Some(v) => Entry::Int(v),
            None => Entry::Str(s),
        }
    }
}

/// Builds a listpack.
#[derive(Debug)]
pub struct Builder {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    pub fn new() -> Builder {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; HEADER]);
        Builder { buf, count: 0 }
    }

    /// Bytes so far, terminator included (redis `lpBytes`).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Appends a string element (stored as an integer when it is one).
    pub fn push(&mut self, s: &[u8]) {
        self.push_entry(Entry::of(s));
    }

    pub fn push_entry(&mut self, e: Entry<'_>) {
        let start = self.buf.len();
        match e {
            Entry::Int(v) => encode_int(v, &mut self.buf),
            Entry::Str(s) => encode_str(s, &mut self.buf),
        }
        let len = (self.buf.len() - start) as u64;
        encode_backlen(len, &mut self.buf);
        self.count += 1;
    }

    /// The bytes a string element would add (for node-size limits).
    pub fn entry_size(s: &[u8]) -> usize {
        let body = match Entry::of(s) {
            Entry::Int(v) => int_len(v),
            Entry::Str(s) => str_header_len(s.len()) + s.len(),
        };
        body + backlen_len(body)
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let count = if self.count < usize::from(COUNT_UNKNOWN) {
            self.count as u16
        } else {
            COUNT_UNKNOWN
        };
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

fn encode_int(v: i64, out: &mut Vec<u8>) {
    if (0..=127).contains(&v) {
        out.push(v as u8);
    } else if (-4096..=4095).contains(&v) {
        let u = if v < 0 { (1 << 13) + v } else { v } as u16;
        out.push(((u >> 8) as u8) | 0xC0);
        out.push(u as u8);
    } else if let Ok(x) = i16::try_from(v) {
        out.push(0xF1);
        out.extend_from_slice(&x.to_le_bytes());
    } else if (-(1 << 23)..(1 << 23)).contains(&v) {
        out.push(0xF2);
        out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
    } else if let Ok(x) = i32::try_from(v) {
        out.push(0xF3);
        out.extend_from_slice(&x.to_le_bytes());
    } else {
        out.push(0xF4);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn int_len(v: i64) -> usize {
    if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if i16::try_from(v).is_ok() {
        3
    } else if (-(1 << 23)..(1 << 23)).contains(&v) {
        4
    } else if i32::try_from(v).is_ok() {
        5
    } else {
        9
    }
}

fn str_header_len(len: usize) -> usize {
    if len < 64 {
        1
    } else if len < 4096 {
        2
    } else {
        5
    }
}

fn encode_str(s: &[u8], out: &mut Vec<u8>) {
    let len = s.len();
    if len < 64 {
        out.push(0x80 | len as u8);
    } else if len < 4096 {
        out.push(0xE0 | (len >> 8) as u8);
        out.push(len as u8);
    } else {
        out.push(0xF0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(s);
}

fn backlen_len(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// redis `lpEncodeBacklen`: the entry's size, 7 bits per byte, most
/// significant first, every byte but the first flagged with 128.
fn encode_backlen(l: u64, out: &mut Vec<u8>) {
    let n = backlen_len(l as usize);
    for i in (0..n).rev() {
        let part = ((l >> (7 * i)) & 127) as u8;
        out.push(if i == n - 1 { part } else { part | 128 });
    }
}

/// Decodes and validates a whole listpack; the elements in order.
pub fn decode(lp: &[u8]) -> Result<Vec<Entry<'_>>, RdbError> {
    let bad = |why: &str| RdbError::Corrupt(format!("Listpack integrity check failed: {why}"));
    if lp.len() < HEADER + 1 {
        return Err(bad("shorter than its header"));
    }
    let total = u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
    if total != lp.len() {
        return Err(bad("total bytes don't match"));
    }
    if lp[lp.len() - 1] != EOF {
        return Err(bad("no terminator"));
    }
    let count = u16::from_le_bytes([lp[4], lp[5]]);
    let end = lp.len() - 1;
    let mut pos = HEADER;
    let mut out = Vec::new();
    while pos < end {
        let start = pos;
        let (entry, size) =
            decode_entry(&lp[pos..end]).ok_or_else(|| bad("entry out of bounds"))?;
        pos += size;
        // The backlen must state the entry's size.
        let bl = backlen_len(size);
        let back = lp
            .get(pos..pos + bl)
            .filter(|_| pos + bl <= end)
            .ok_or_else(|| bad("backlen out of bounds"))?;
        let mut expect = Vec::with_capacity(5);
        encode_backlen(size as u64, &mut expect);
        if back != &expect[..] {
            return Err(bad("backlen mismatch"));
        }
        pos += bl;
        debug_assert!(pos > start);
        out.push(entry);
    }
    if count != COUNT_UNKNOWN && usize::from(count) != out.len() {
        return Err(bad("count mismatch"));
    }
    Ok(out)
}

/// One entry's value and the size of its encoding+data.
fn decode_entry(b: &[u8]) -> Option<(Entry<'_>, usize)> {
    let first = *b.first()?;
    let int = |n: usize| -> Option<i64> {
        let bytes = b.get(1..1 + n)?;
        let mut v: u64 = 0;
        for (i, &x) in bytes.iter().enumerate() {
            v |= u64::from(x) << (8 * i);
        }
        // Sign-extend from n bytes.
        let shift = 64 - 8 * n as u32;
        Some(((v << shift) as i64) >> shift)
    };
    if first & 0x80 == 0 {
        return Some((Entry::Int(i64::from(first & 0x7F)), 1));
    }
    if first & 0xC0 == 0x80 {
        let len = usize::from(first & 0x3F);
        return Some((Entry::Str(b.get(1..1 + len)?), 1 + len));
    }
    if first & 0xE0 == 0xC0 {
        let u = (u16::from(first & 0x1F) << 8) | u16::from(*b.get(1)?);
        let v = if u >= 1 << 12 {
            i64::from(u) - (1 << 13)
        } else {
            i64::from(u)
        };
        return Some((Entry::Int(v), 2));
    }
    if first & 0xF0 == 0xE0 {
        let len = (usize::from(first & 0x0F) << 8) | usize::from(*b.get(1)?);
        return Some((Entry::Str(b.get(2..2 + len)?), 2 + len));
    }
    match first {
        0xF1 => Some((Entry::Int(int(2)?), 3)),
        0xF2 => Some((Entry::Int(int(3)?), 4)),
        0xF3 => Some((Entry::Int(int(4)?), 5)),
        0xF4 => Some((Entry::Int(int(8)?), 9)),
        0xF0 => {
            let len = u32::from_le_bytes(b.get(1..5)?.try_into().ok()?) as usize;
            let end = 5usize.checked_add(len)?;
            Some((Entry::Str(b.get(5..end)?), end))
        }
        _ => None,
    }
}
