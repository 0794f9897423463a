//! nodes.conf: any file content either loads into a cluster state or is
//! refused as corrupt, never a panic; a loaded state writes a config that
//! loads again.
#![no_main]

use hearsay_node::cluster::{Cluster, ClusterConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let now = 1_700_000_000_000;
    if let Ok(c) = Cluster::new(ClusterConfig::default(), now, 7, Some(&text)) {
        let saved = c.nodes_text();
        let _ = Cluster::new(ClusterConfig::default(), now, 7, Some(&saved));
    }
});
