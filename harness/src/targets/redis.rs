//! `--target redis`: a Redis Cluster of redis-server nodes (the reference).

use super::cluster::ClusterTarget;
use super::server::Kind;
use crate::opts::RunOpts;

/// Every node runs redis-server.
pub fn layout(_index: usize) -> Kind {
    Kind::Redis
}

pub fn target(opts: &RunOpts) -> ClusterTarget {
    ClusterTarget::new("redis", layout, opts)
}
