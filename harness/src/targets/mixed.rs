//! `--target mixed`: one Redis Cluster of both servers, redis-server on even node
//! indices and hearsay-node on odd ones. With the formation's order (masters first,
//! replica `j` follows master `j % masters`), six nodes with one replica each give
//! masters n1 (redis), n2 (hearsay), n3 (redis) and replicas n4 (hearsay) of n1,
//! n5 (redis) of n2, n6 (hearsay) of n3: every master is replicated by the other
//! implementation.

use super::cluster::ClusterTarget;
use super::server::Kind;
use crate::opts::RunOpts;

/// redis-server on even indices, hearsay-node on odd ones.
pub fn layout(index: usize) -> Kind {
    if index.is_multiple_of(2) {
        Kind::Redis
    } else {
        Kind::Hearsay
    }
}

pub fn target(opts: &RunOpts) -> ClusterTarget {
    ClusterTarget::new("mixed", layout, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternates_servers_by_index() {
        let kinds: Vec<Kind> = (0..6).map(layout).collect();
        assert_eq!(
            kinds,
            [
                Kind::Redis,
                Kind::Hearsay,
                Kind::Redis,
                Kind::Hearsay,
                Kind::Redis,
                Kind::Hearsay
            ]
        );
    }

    #[test]
    fn six_nodes_pair_each_master_with_the_other_server() {
        // Formation: masters are indices 0..3; replica j follows master j % 3.
        let masters = 3;
        for j in masters..6 {
            assert_ne!(layout(j), layout(j % masters), "replica n{}", j + 1);
        }
    }
}
