//! Hash slots: the CRC16 key hash with hash tags, and the 16384-bit slot bitmap
//! that the cluster bus carries (`myslots`, UPDATE).

/// Number of hash slots in a Redis Cluster.
pub const CLUSTER_SLOTS: usize = 16384;

/// The slot of a key: CRC16/XMODEM of the key, or of its hash tag, masked to 14 bits.
///
/// Hash tag rule (redis `keyHashSlot`): the first `{`, then the first `}` after it;
/// if at least one byte lies between them only those bytes are hashed.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match find_byte(key, b'{') {
        Some(open) => match find_byte(&key[open + 1..], b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) & 0x3FFF
}

/// The first `needle` in `hay`, eight bytes at a time (a key is looked at
/// for `{` on every keyed request, twice: a byte loop cost more than the CRC).
fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        // Bytes equal to the needle are zero in `x`; the lowest flagged
        // byte is always a true zero (false flags only sit above one).
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| at + i)
}

/// CRC16/XMODEM by table, as redis's `crc16.c`, eight bytes a step
/// ("slicing by 8": one lookup per byte and no dependency between the eight,
/// against a chain of dependent lookups). (The `crc16` crate computes the
/// same through a generic state machine that costs several times more per
/// byte; this runs for every keyed request, twice.)
pub fn crc16(data: &[u8]) -> u16 {
    let t = &CRC16_TABLES;
    let mut crc: u16 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        crc = t[7][usize::from((crc >> 8) as u8 ^ c[0])]
            ^ t[6][usize::from(crc as u8 ^ c[1])]
            ^ t[5][usize::from(c[2])]
            ^ t[4][usize::from(c[3])]
            ^ t[3][usize::from(c[4])]
            ^ t[2][usize::from(c[5])]
            ^ t[1][usize::from(c[6])]
            ^ t[0][usize::from(c[7])];
    }
    for &b in chunks.remainder() {
        crc = (crc << 8) ^ t[0][usize::from((crc >> 8) as u8 ^ b)];
    }
    crc
}

/// CRC16/XMODEM (polynomial 0x1021) tables: `[0]` is the classic byte
/// table; `[k][x]` is the CRC of byte `x` followed by `k` zero bytes.
static CRC16_TABLES: [[u16; 256]; 8] = crc16_tables();

const fn crc16_tables() -> [[u16; 256]; 8] {
    let mut t = [[0u16; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev << 8) ^ t[0][(prev >> 8) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// A set of slots, stored exactly as the bus bitmap: slot `s` is byte `s / 8`,
/// bit `s & 7`, least significant bit first.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotSet(pub Box<[u8; CLUSTER_SLOTS / 8]>);

impl Default for SlotSet {
    fn default() -> Self {
        SlotSet(Box::new([0u8; CLUSTER_SLOTS / 8]))
    }
}

impl std::fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotSet[{}]", self.ranges_text())
    }
}

impl SlotSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a set from the 2048-byte bus bitmap.
    pub fn from_bitmap(bytes: &[u8; CLUSTER_SLOTS / 8]) -> Self {
        SlotSet(Box::new(*bytes))
    }

    pub fn bitmap(&self) -> &[u8; CLUSTER_SLOTS / 8] {
        &self.0
    }

    pub fn contains(&self, slot: u16) -> bool {
        let s = slot as usize;
        s < CLUSTER_SLOTS && self.0[s >> 3] & (1 << (s & 7)) != 0
    }

    pub fn insert(&mut self, slot: u16) {
        let s = slot as usize;
        if s < CLUSTER_SLOTS {
            self.0[s >> 3] |= 1 << (s & 7);
        }
    }

    pub fn remove(&mut self, slot: u16) {
        let s = slot as usize;
        if s < CLUSTER_SLOTS {
            self.0[s >> 3] &= !(1 << (s & 7));
        }
    }

    pub fn clear(&mut self) {
        self.0.fill(0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    pub fn count(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// Slots in ascending order (empty bytes skipped: these bitmaps are
    /// walked on every config save and state update).
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, &b)| b != 0)
            .flat_map(|(i, &byte)| {
                let mut rest = byte;
                std::iter::from_fn(move || {
                    if rest == 0 {
                        return None;
                    }
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    Some((i * 8 + bit) as u16)
                })
            })
    }

    /// Maximal runs of consecutive slots, ascending, as inclusive (start, end) pairs.
    /// (By 64-bit words, jumping from one run boundary to the next, and
    /// over blocks of 256 slots that neither start nor end a run: every
    /// CLUSTER NODES line and nodes.conf save walks one bitmap per node.)
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        // Start of the run still open (slots are below 2^14, so u32 is exact).
        let mut open: Option<u32> = None;
        for (bi, block) in self.0.chunks_exact(32).enumerate() {
            // All clear outside a run, all set inside one: nothing to do for
            // the whole block. (A fold without early exit: it vectorises.)
            let fill = if open.is_some() { 0xFF } else { 0 };
            if block.iter().fold(0u8, |a, &b| a | (b ^ fill)) == 0 {
                continue;
            }
            for (wi, chunk) in block.chunks_exact(8).enumerate() {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(chunk);
                let w = u64::from_le_bytes(bytes);
                let base = (bi * 256 + wi * 64) as u32;
                let mut pos = 0u32;
                while pos < 64 {
                    match open {
                        Some(a) => {
                            // The first clear bit at or after pos ends the run.
                            let rest = !w >> pos;
                            if rest == 0 {
                                break;
                            }
                            let z = pos + rest.trailing_zeros();
                            out.push((a as u16, (base + z - 1) as u16));
                            open = None;
                            pos = z;
                        }
                        None => {
                            let rest = w >> pos;
                            if rest == 0 {
                                break;
                            }
                            let o = pos + rest.trailing_zeros();
                            open = Some(base + o);
                            pos = o;
                        }
                    }
                }
            }
        }
        if let Some(a) = open {
            out.push((a as u16, (CLUSTER_SLOTS - 1) as u16));
        }
        out
    }

    /// The CLUSTER NODES slot spec: `N` for single slots, `A-B` for ranges, space separated.
    pub fn ranges_text(&self) -> String {
        self.ranges()
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn crc16_table_agrees_with_the_crc16_crate(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            proptest::prop_assert_eq!(crc16(&data), ::crc16::State::<::crc16::XMODEM>::calculate(&data));
        }

        #[test]
        fn find_byte_agrees_with_a_byte_loop(data in proptest::collection::vec(0u8..4, 0..40), needle in 0u8..4) {
            proptest::prop_assert_eq!(find_byte(&data, needle), data.iter().position(|&b| b == needle));
        }
    }

    proptest::proptest! {
        #[test]
        fn ranges_are_the_runs_of_contains(slots in proptest::collection::vec(0u16..16384, 0..300), runs in proptest::collection::vec((0u16..16384, 0u16..200), 0..6)) {
            let mut s = SlotSet::new();
            for x in slots {
                s.insert(x);
            }
            for (a, len) in runs {
                for x in a..a.saturating_add(len).min(16383) {
                    s.insert(x);
                }
            }
            let mut want: Vec<(u16, u16)> = Vec::new();
            for x in 0..16384u16 {
                if !s.contains(x) {
                    continue;
                }
                match want.last_mut() {
                    Some((_, e)) if *e + 1 == x => *e = x,
                    _ => want.push((x, x)),
                }
            }
            proptest::prop_assert_eq!(s.ranges(), want);
        }
    }

    #[test]
    fn whole_and_empty_sets_have_one_or_no_range() {
        let mut s = SlotSet::new();
        assert!(s.ranges().is_empty());
        for x in 0..16384u16 {
            s.insert(x);
        }
        assert_eq!(s.ranges(), vec![(0, 16383)]);
        s.remove(63);
        s.remove(64);
        assert_eq!(s.ranges(), vec![(0, 62), (65, 16383)]);
    }

    #[test]
    fn key_slot_matches_redis_test_vectors() {
        let cases: &[(&[u8], u16)] = &[
            (b"123456789", 12739),
            (b"foo", 12182),
            (b"bar", 5061),
            (b"FOO", 3028),
            (b"a", 15495),
            (b"", 0),
            (b"06S", 0),
            (b"key9184688", 10923),
            (b"{user1000}.following", 3443),
            (b"{user1000}.followers", 3443),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}zap", 4015),
            (b"foo{bar}{zap}", 5061),
        ];
        for (key, slot) in cases {
            assert_eq!(
                key_slot(key),
                *slot,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn slot_set_bit_order_and_ranges() {
        let mut s = SlotSet::new();
        s.insert(0);
        s.insert(9);
        s.insert(10);
        s.insert(16383);
        assert_eq!(s.bitmap()[0], 0b0000_0001);
        assert_eq!(s.bitmap()[1], 0b0000_0110);
        assert_eq!(s.bitmap()[2047], 0b1000_0000);
        assert_eq!(s.ranges_text(), "0 9-10 16383");
        assert_eq!(s.count(), 4);
        s.remove(9);
        assert!(!s.contains(9));
        assert!(s.contains(10));
        // Whole bytes and partial ones join into one run.
        let mut s = SlotSet::new();
        for slot in (3..=40).chain(48..=55).chain([100, 16383]) {
            s.insert(slot);
        }
        assert_eq!(s.ranges_text(), "3-40 48-55 100 16383");
        assert_eq!(s.iter().count(), 38 + 8 + 2);
    }
}
