//! Random draws from the node table the way redis draws them: `dictGetRandomKey`
//! on `server.cluster->nodes`, a chained hash table of a power-of-two size that
//! grows when it holds as many entries as buckets. It picks a random non-empty
//! bucket, then a random entry of that bucket's chain, so a node that shares its
//! bucket is drawn less often than one alone in its own. Gossip sections and the
//! cron's random pings draw this way; a uniform draw spreads membership measurably
//! faster than redis does (a 30-node cluster formed in about half redis's time).

use rand::RngExt;

use super::node::NodeRef;
use super::Cluster;
use crate::wire::NodeName;

/// redis's table size for `used` entries: at least 4, doubled on the insert that
/// finds it full (`_dictExpandIfNeeded`: used >= size expands to the next power of
/// two above used).
pub(super) fn table_size(used: usize) -> usize {
    let mut size = 4usize;
    let mut n = 0usize;
    // Replays the inserts: each one expands first if the table is full.
    while n < used {
        if n >= size {
            size = (n + 1).next_power_of_two();
        }
        n += 1;
    }
    size
}

/// A node name's hash under the process's seed (redis: siphash with a random key);
/// any well-mixed function will do, only the buckets it induces matter.
fn name_hash(seed: u64, name: &NodeName) -> u64 {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for b in name.0 {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64's finaliser.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The table's buckets, each with the nodes chained in it: bucket `i` holds
/// `refs[starts[i]..starts[i + 1]]`, in the node table's order.
#[derive(Clone, Default)]
pub(super) struct Buckets {
    starts: Vec<usize>,
    refs: Vec<NodeRef>,
}

impl Buckets {
    fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    fn chain(&self, i: usize) -> &[NodeRef] {
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(&a), Some(&b)) => self.refs.get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// The layout last built and the (handle, name) pairs it was built from:
/// hashing every name again for each ping's gossip draws was most of a large
/// cluster's cost, and the table rarely changes. Every insert, removal and
/// rename of a table entry calls [`DictCache::forget`].
#[derive(Default)]
pub(super) struct DictCache {
    valid: bool,
    key: Vec<(NodeRef, NodeName)>,
    buckets: Buckets,
}

impl DictCache {
    pub(super) fn forget(&mut self) {
        self.valid = false;
    }
}

impl Cluster {
    /// The node table laid out as redis's dict would hold it now.
    pub(super) fn dict_buckets(&mut self) -> Buckets {
        // Tests (debug builds) check that no table change went unnoticed.
        debug_assert!(
            !self.dict_cache.valid
                || (self.dict_cache.key.len() == self.nodes.len()
                    && self
                        .nodes
                        .iter()
                        .zip(&self.dict_cache.key)
                        .all(|((r, n), (kr, kn))| r == kr && n.name == *kn)),
            "node table changed without DictCache::forget"
        );
        if !self.dict_cache.valid {
            let size = table_size(self.nodes.len());
            let key: Vec<(NodeRef, NodeName)> =
                self.nodes.iter().map(|(&r, n)| (r, n.name)).collect();
            let bucket: Vec<usize> = key
                .iter()
                .map(|(_, name)| (name_hash(self.dict_seed, name) as usize) & (size - 1))
                .collect();
            let mut starts = vec![0usize; size + 1];
            for &b in &bucket {
                if let Some(c) = starts.get_mut(b + 1) {
                    *c += 1;
                }
            }
            for i in 0..size {
                starts[i + 1] += starts[i];
            }
            let mut fill = starts.clone();
            let mut refs = vec![0; key.len()];
            for (&(r, _), &b) in key.iter().zip(&bucket) {
                if let Some(slot) = fill.get_mut(b) {
                    if let Some(e) = refs.get_mut(*slot) {
                        *e = r;
                    }
                    *slot += 1;
                }
            }
            self.dict_cache = DictCache {
                valid: true,
                key,
                buckets: Buckets { starts, refs },
            };
        }
        self.dict_cache.buckets.clone()
    }

    /// `dictGetRandomKey`: a random non-empty bucket, a random entry of it.
    pub(super) fn random_node_ref(&mut self, b: &Buckets) -> Option<NodeRef> {
        if self.nodes.is_empty() || b.len() == 0 {
            return None;
        }
        // The table is never empty here, so this ends; bounded all the same.
        for _ in 0..b.len() * 64 {
            let i = self.rng.random_range(0..b.len());
            let chain = b.chain(i);
            if !chain.is_empty() {
                return chain.get(self.rng.random_range(0..chain.len())).copied();
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_grows_like_redis_dict() {
        assert_eq!(table_size(0), 4);
        assert_eq!(table_size(4), 4);
        assert_eq!(table_size(5), 8);
        assert_eq!(table_size(30), 32);
        assert_eq!(table_size(32), 32);
        assert_eq!(table_size(33), 64);
        assert_eq!(table_size(200), 256);
    }

    #[test]
    fn hashes_spread_names() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..64u8 {
            let mut n = [b'a'; crate::wire::NAMELEN];
            n[0] = i;
            seen.insert(name_hash(7, &NodeName(n)) & 63);
        }
        assert!(seen.len() > 30, "{}", seen.len());
    }
}
