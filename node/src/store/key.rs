//! A key as the keyspace's hash tables hold it.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

use bytes::Bytes;

/// The longest key kept inside the table's bucket.
const INLINE: usize = 30;

/// A stored key: up to 30 bytes inside the hash table's bucket, so that a
/// lookup compares it without following a pointer to another cache line
/// (one miss less per SET and GET on a keyspace larger than the cache, as
/// redis pays for its `sds` key; issue 18), a longer one in a box of its
/// own. 32 bytes either way, as a `Bytes` was. Hashes and compares as its
/// bytes, so the tables are searched with a `&[u8]`.
#[derive(Clone)]
pub enum Key {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Key {
    pub fn new(bytes: &[u8]) -> Key {
        if bytes.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            Key::Inline {
                len: bytes.len() as u8,
                buf,
            }
        } else {
            Key::Heap(bytes.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, buf } => &buf[..usize::from(*len)],
            Key::Heap(b) => b,
        }
    }

    /// A copy as `Bytes`, for callers that keep the name.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

// Must hash as `[u8]` does (the `Borrow` contract): lookups hash a `&[u8]`.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;

    #[test]
    fn short_and_long_keys_keep_their_bytes_and_hash_as_slices() {
        let state = RandomState::new();
        for len in [0, 1, 16, 29, 30, 31, 64, 1000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let k = Key::new(&bytes);
            assert_eq!(k.as_bytes(), &bytes[..]);
            assert_eq!(matches!(k, Key::Inline { .. }), len <= INLINE);
            assert_eq!(state.hash_one(&k), state.hash_one(&bytes[..]));
            assert_eq!(k.to_bytes(), Bytes::from(bytes.clone()));
            assert_eq!(k, Key::new(&bytes));
        }
        assert_ne!(Key::new(b"a"), Key::new(b"a\0"));
        assert_eq!(std::mem::size_of::<Key>(), 32);
    }
}
