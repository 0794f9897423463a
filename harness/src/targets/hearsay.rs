//! `--target hearsay`: a Redis Cluster of hearsay-node nodes.

use super::cluster::ClusterTarget;
use super::server::Kind;
use crate::opts::RunOpts;

/// Every node runs hearsay-node.
pub fn layout(_index: usize) -> Kind {
    Kind::Hearsay
}

pub fn target(opts: &RunOpts) -> ClusterTarget {
    ClusterTarget::new("hearsay", layout, opts)
}
