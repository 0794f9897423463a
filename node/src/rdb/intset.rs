//! Intsets (redis `intset.c`): how redis 7.0 stores and writes a set whose
//! members are all integers (up to `set-max-intset-entries`).
//!
//! ```text
//! <width u32 LE: 2, 4 or 8> <count u32 LE> <count integers, LE, ascending>
//! ```
//!
//! Written by hand: no maintained crate reads or writes redis intsets.

use super::RdbError;

fn bad(why: &str) -> RdbError {
    RdbError::Corrupt(format!("Intset integrity check failed: {why}"))
}

/// Decodes and validates an intset: its integers, ascending.
pub fn decode(is: &[u8]) -> Result<Vec<i64>, RdbError> {
    if is.len() < 8 {
        return Err(bad("shorter than its header"));
    }
    let width = u32::from_le_bytes([is[0], is[1], is[2], is[3]]) as usize;
    let count = u32::from_le_bytes([is[4], is[5], is[6], is[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(bad("bad encoding"));
    }
    if count.checked_mul(width).and_then(|n| n.checked_add(8)) != Some(is.len()) {
        return Err(bad("size doesn't match the count"));
    }
    let mut out = Vec::with_capacity(count);
    for chunk in is[8..].chunks_exact(width) {
        let v = match width {
            2 => i64::from(i16::from_le_bytes([chunk[0], chunk[1]])),
            4 => i64::from(i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])),
            _ => i64::from_le_bytes(chunk.try_into().map_err(|_| bad("bad width"))?),
        };
        if out.last().is_some_and(|&last| last >= v) {
            return Err(bad("not strictly ascending"));
        }
        out.push(v);
    }
    Ok(out)
}

/// Encodes integers as an intset (sorted, the narrowest width that holds
/// them all), as redis 7.0 writes small all-integer sets.
pub fn encode(values: &mut [i64]) -> Vec<u8> {
    values.sort_unstable();
    let width: usize = if values.iter().all(|&v| i16::try_from(v).is_ok()) {
        2
    } else if values.iter().all(|&v| i32::try_from(v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * values.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for &v in values.iter() {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}
