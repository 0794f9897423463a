//! Encodings redis 7.0 no longer writes but still loads: ziplists (lists,
//! hashes and sorted sets of RDB 7-9, quicklist v1 nodes) and zipmaps
//! (hashes of RDB 1-3). Read-only, fully validated.
//!
//! Written by hand: no maintained crate decodes redis ziplists or zipmaps.
//!
//! ```text
//! ziplist: <zlbytes u32 LE> <zltail u32 LE> <zllen u16 LE> <entry>* 0xFF
//! entry:   <prevlen: 1 byte < 254, or 0xFE + u32 LE> <encoding> <data>
//! zipmap:  <zmlen u8> (<len> key <len> <free u8> value <free bytes>)* 0xFF
//! ```

use super::listpack::Entry;
use super::RdbError;

fn bad(what: &str, why: &str) -> RdbError {
    RdbError::Corrupt(format!("{what} integrity check failed: {why}"))
}

/// Decodes and validates a whole ziplist.
pub fn decode(zl: &[u8]) -> Result<Vec<Entry<'_>>, RdbError> {
    let bad = |why| bad("Ziplist", why);
    if zl.len() < 11 {
        return Err(bad("shorter than its header"));
    }
    let total = u32::from_le_bytes([zl[0], zl[1], zl[2], zl[3]]) as usize;
    let tail = u32::from_le_bytes([zl[4], zl[5], zl[6], zl[7]]) as usize;
    let count = u16::from_le_bytes([zl[8], zl[9]]);
    if total != zl.len() || zl[zl.len() - 1] != 0xFF {
        return Err(bad("bad total length or terminator"));
    }
    let end = zl.len() - 1;
    let mut pos = 10;
    let mut prev_size = 0usize;
    let mut last_start = 10;
    let mut out = Vec::new();
    while pos < end {
        let start = pos;
        let first = zl[pos];
        let prevlen = if first < 254 {
            pos += 1;
            usize::from(first)
        } else if first == 254 {
            let b = zl
                .get(pos + 1..pos + 5)
                .ok_or_else(|| bad("prevlen out of bounds"))?;
            pos += 5;
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        } else {
            return Err(bad("bad prevlen"));
        };
        if prevlen != prev_size {
            return Err(bad("prevlen mismatch"));
        }
        let (entry, size) = entry(&zl[pos..end]).ok_or_else(|| bad("entry out of bounds"))?;
        pos += size;
        prev_size = pos - start;
        last_start = start;
        out.push(entry);
    }
    if !out.is_empty() && tail != last_start {
        return Err(bad("bad tail offset"));
    }
    if count != u16::MAX && usize::from(count) != out.len() {
        return Err(bad("count mismatch"));
    }
    Ok(out)
}

/// One entry after its prevlen: the value and the bytes it took.
fn entry(b: &[u8]) -> Option<(Entry<'_>, usize)> {
    let enc = *b.first()?;
    let int = |n: usize| -> Option<i64> {
        let bytes = b.get(1..1 + n)?;
        let mut v: u64 = 0;
        for (i, &x) in bytes.iter().enumerate() {
            v |= u64::from(x) << (8 * i);
        }
        let shift = 64 - 8 * n as u32;
        Some(((v << shift) as i64) >> shift)
    };
    match enc >> 6 {
        0 => {
            let len = usize::from(enc & 0x3F);
            return Some((Entry::Str(b.get(1..1 + len)?), 1 + len));
        }
        1 => {
            let len = (usize::from(enc & 0x3F) << 8) | usize::from(*b.get(1)?);
            return Some((Entry::Str(b.get(2..2 + len)?), 2 + len));
        }
        2 => {
            if enc != 0x80 {
                return None;
            }
            let len = u32::from_be_bytes(b.get(1..5)?.try_into().ok()?) as usize;
            let end = 5usize.checked_add(len)?;
            return Some((Entry::Str(b.get(5..end)?), end));
        }
        _ => {}
    }
    match enc {
        0xC0 => Some((Entry::Int(int(2)?), 3)),
        0xD0 => Some((Entry::Int(int(4)?), 5)),
        0xE0 => Some((Entry::Int(int(8)?), 9)),
        0xF0 => Some((Entry::Int(int(3)?), 4)),
        0xFE => Some((Entry::Int(int(1)?), 2)),
        0xF1..=0xFD => Some((Entry::Int(i64::from(enc & 0x0F) - 1), 1)),
        _ => None,
    }
}

/// Decodes a zipmap into (field, value) pairs.
/// A zipmap's (field, value) pairs.
pub type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

pub fn decode_zipmap(zm: &[u8]) -> Result<Pairs<'_>, RdbError> {
    let bad = |why| bad("Zipmap", why);
    let mut pos = 1; // zmlen: only a hint
    let mut out = Vec::new();
    let len_at = |pos: &mut usize| -> Result<Option<usize>, RdbError> {
        let first = *zm.get(*pos).ok_or_else(|| bad("length out of bounds"))?;
        match first {
            255 => Ok(None),
            254 => {
                let b = zm
                    .get(*pos + 1..*pos + 5)
                    .ok_or_else(|| bad("length out of bounds"))?;
                *pos += 5;
                Ok(Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize))
            }
            n => {
                *pos += 1;
                Ok(Some(usize::from(n)))
            }
        }
    };
    if zm.is_empty() {
        return Err(bad("empty"));
    }
    while let Some(klen) = len_at(&mut pos)? {
        let key = zm
            .get(pos..pos + klen)
            .ok_or_else(|| bad("key out of bounds"))?;
        pos += klen;
        let vlen = len_at(&mut pos)?.ok_or_else(|| bad("missing value"))?;
        let free = usize::from(*zm.get(pos).ok_or_else(|| bad("free out of bounds"))?);
        pos += 1;
        let value = zm
            .get(pos..pos + vlen)
            .ok_or_else(|| bad("value out of bounds"))?;
        pos += vlen + free;
        out.push((key, value));
    }
    if pos + 1 != zm.len() {
        return Err(bad("bytes after the terminator"));
    }
    Ok(out)
}
