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

/// The table's buckets: for each, the nodes chained in it.
pub(super) struct Buckets {
    chains: Vec<Vec<NodeRef>>,
}

impl Cluster {
    /// The node table laid out as redis's dict would hold it now.
    pub(super) fn dict_buckets(&self) -> Buckets {
        let size = table_size(self.nodes.len());
        let mut chains = vec![Vec::new(); size];
        for (&r, n) in &self.nodes {
            let b = (name_hash(self.dict_seed, &n.name) as usize) & (size - 1);
            if let Some(c) = chains.get_mut(b) {
                c.push(r);
            }
        }
        Buckets { chains }
    }

    /// `dictGetRandomKey`: a random non-empty bucket, a random entry of it.
    pub(super) fn random_node_ref(&mut self, b: &Buckets) -> Option<NodeRef> {
        if self.nodes.is_empty() || b.chains.is_empty() {
            return None;
        }
        // The table is never empty here, so this ends; bounded all the same.
        for _ in 0..b.chains.len() * 64 {
            let i = self.rng.random_range(0..b.chains.len());
            if let Some(chain) = b.chains.get(i).filter(|c| !c.is_empty()) {
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
