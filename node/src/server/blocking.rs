//! What a client connection waits for without holding the node lock: WAIT
//! for replica acknowledgements (WAIT). A manual failover's write pause is the
//! for replica acknowledgements. A manual failover's write pause is the

use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use crate::resp::Frame;

/// A request to block in WAIT, made by the command layer and served by the
/// client task without the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct WaitRequest {
    pub offset: u64,
    pub numreplicas: i64,
    /// 0 = forever.
    pub timeout_ms: u64,
}

/// WAIT, served without the lock: returns the number of replicas that
/// acknowledged `req.offset` once `req.numreplicas` did or the timeout passed.
pub(super) async fn wait_for_acks(shared: &Arc<Shared>, req: WaitRequest) -> Frame {
    let deadline = (req.timeout_ms > 0)
        .then(|| tokio::time::Instant::now() + Duration::from_millis(req.timeout_ms));
    loop {
        // Register for the wakeup before counting, so an ack that lands in
        // between is not missed.
        let notified = shared.acks.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (count, replica) = {
            let n = shared.node.lock();
            (
                n.repl.state.count_acks(req.offset),
                n.repl.state.is_replica(),
            )
        };
        if replica {
            // redis `disconnectAllBlockedClients` when a master turns replica.
            return Frame::error(
                "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)",
            );
        }
        if count as i64 >= req.numreplicas {
            return Frame::Integer(count as i64);
        }
        match deadline {
            Some(d) => {
                if tokio::time::Instant::now() >= d {
                    return Frame::Integer(count as i64);
                }
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep_until(d) => {}
                }
            }
            None => notified.await,
        }
    }
}
