//! Packet delay. This kernel has no netem, so delay is done in user space: an
//! iptables NFQUEUE rule inside each target node's namespace hands its outgoing
//! node-to-node packets to a holder process that releases them after the delay.

use crate::net::Network;
use crate::target::Node;
use serde_json::{json, Value as J};

/// Running delayers.
pub struct Delays {
    #[allow(dead_code)]
    reg: std::sync::Arc<crate::registry::Registry>,
}

impl Delays {
    pub fn new(reg: std::sync::Arc<crate::registry::Registry>, _run_dir: &std::path::Path) -> Delays {
        Delays { reg }
    }

    pub async fn start(&mut self, _net: &Network, _nodes: &[Node], _targets: &[usize], _ms: u64) -> (J, bool, Option<String>) {
        (J::Null, false, Some("delay nemesis not available in this build".into()))
    }

    pub async fn stop_all(&mut self, _nodes: &[Node]) -> (J, bool, Option<String>) {
        (json!({}), true, None)
    }
}

/// Entry point of `hearsay delayer` (not yet available in this build).
pub fn delayer_main(_queue: u16, _delay_ms: u64, _loss_pct: u32, _max_secs: u64) -> i32 {
    eprintln!("delayer not available in this build");
    2
}
