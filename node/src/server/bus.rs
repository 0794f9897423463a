//! Cluster bus links: accepting, connecting, framing and writing. A link is two
//! tasks (reader and writer) so a peer that stops reading (SIGSTOP) never blocks
//! our reads; the core closes such links by its own staleness rule.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{now_ms, LinkHandle, Node, Shared};
use crate::cluster::{LinkId, LogLevel};
use crate::wire::{self, DecodeError};

/// Our own bound on one bus frame. redis has none (its buffer just grows); a
/// garbage length must not make us buffer gigabytes, and no legal 7.0 frame
/// comes near this (the largest fixed one is 4352 bytes plus gossip).
const MAX_FRAME_LEN: usize = 64 * 1024 * 1024;

/// The shortest time an outbound connect may take before we give up on it (the
/// core retries on its next tick, as redis does after a failed connect).
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

/// redis never times a bus connect out by itself: a pending link goes only when the
/// staleness rule frees it, after node_timeout. So wait node_timeout too: a shorter
/// wait gives up right at Linux's first SYN retransmit (1 s), which after a short
/// partition is the packet that would have reconnected, and PFAILs a healed peer.
fn connect_timeout(node: &Node) -> Duration {
    let node_timeout = node.cluster.as_ref().map_or(0, |c| c.config().node_timeout);
    Duration::from_millis(node_timeout).max(MIN_CONNECT_TIMEOUT)
}

pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                shared.node.lock().log(
                    LogLevel::Verbose,
                    &format!("Error accepting cluster node connection: {e}"),
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let mut n = shared.node.lock();
        let Some(cluster) = n.cluster.as_mut() else {
            continue;
        };
        let link = cluster.handle_accept(now_ms(), peer, local);
        let text = format!(
            "Accepting cluster node connection from {}:{}",
            peer.ip(),
            peer.port()
        );
        n.log(LogLevel::Verbose, &text);
        spawn_link(&shared, &mut n, link, stream);
        n.drain(&shared);
    }
}

/// Executes `Action::Connect`: connects in the background and reports back.
pub(super) fn start_connect(
    shared: &Arc<Shared>,
    node: &mut Node,
    link: LinkId,
    ip: String,
    port: u16,
) {
    let task_shared = shared.clone();
    let wait = connect_timeout(node);
    let task = tokio::spawn(async move {
        let result = tokio::time::timeout(wait, TcpStream::connect((ip.as_str(), port))).await;
        let shared = task_shared;
        let mut n = shared.node.lock();
        // The core may have closed the link while we were connecting.
        if !n.links.contains_key(&link) {
            return;
        }
        let now = now_ms();
        match result {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                match stream.local_addr() {
                    Ok(local) => {
                        spawn_link(&shared, &mut n, link, stream);
                        if let Some(c) = n.cluster.as_mut() {
                            c.handle_connected(now, link, local);
                        }
                    }
                    Err(e) => connect_failed(&mut n, link, &e.to_string()),
                }
            }
            Ok(Err(e)) => connect_failed(&mut n, link, &e.to_string()),
            Err(_) => connect_failed(&mut n, link, "Connection timed out"),
        }
        n.drain(&shared);
    });
    node.links.insert(
        link,
        LinkHandle {
            tx: None,
            tasks: vec![task.abort_handle()],
            queued: Default::default(),
        },
    );
}

fn connect_failed(n: &mut Node, link: LinkId, error: &str) {
    n.links.remove(&link);
    if let Some(c) = n.cluster.as_mut() {
        c.handle_connect_failed(now_ms(), link, error);
    }
}

/// Starts the reader and writer tasks of an established link. Called with the
/// node lock held, so the tasks cannot report an end before the handle exists.
fn spawn_link(shared: &Arc<Shared>, node: &mut Node, link: LinkId, stream: TcpStream) {
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let queued: Arc<std::sync::atomic::AtomicUsize> = Default::default();
    let reader = tokio::spawn(read_link(shared.clone(), link, rd));
    let writer = tokio::spawn(write_link(shared.clone(), link, wr, rx, queued.clone()));
    node.links.insert(
        link,
        LinkHandle {
            tx: Some(tx),
            tasks: vec![reader.abort_handle(), writer.abort_handle()],
            queued,
        },
    );
}

async fn write_link(
    shared: Arc<Shared>,
    link: LinkId,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
) {
    while let Some(mut bytes) = rx.recv().await {
        // Everything queued by now goes out in one write, as redis appends a loop
        // turn's messages to the link's send buffer and writes it once: one
        // segment instead of one per message.
        while let Ok(more) = rx.try_recv() {
            bytes.extend_from_slice(&more);
        }
        let result = wr.write_all(&bytes).await;
        queued.fetch_sub(bytes.len(), std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = result {
            let mut n = shared.node.lock();
            n.log(
                LogLevel::Debug,
                &format!("I/O error writing to node link: {e}"),
            );
            n.link_ended(&shared, link);
            return;
        }
    }
}

/// What reading a buffer of bus bytes produced.
enum Framing {
    /// Complete frames, in order; the rest stays buffered.
    Frames(Vec<BytesMut>),
    /// A frame with a bad signature or length: the link must be closed.
    Bad(Vec<BytesMut>),
}

/// Splits complete frames off the front of `buf`.
fn split_frames(buf: &mut BytesMut) -> Framing {
    let mut frames = Vec::new();
    while buf.len() >= 8 {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&buf[..8]);
        let totlen = match wire::check_prefix(&prefix) {
            Ok(t) => t as usize,
            Err(_) => return Framing::Bad(frames),
        };
        if totlen > MAX_FRAME_LEN {
            return Framing::Bad(frames);
        }
        if buf.len() < totlen {
            break;
        }
        frames.push(buf.split_to(totlen));
    }
    Framing::Frames(frames)
}

async fn read_link(shared: Arc<Shared>, link: LinkId, mut rd: OwnedReadHalf) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        let read = rd.read_buf(&mut buf).await;
        match read {
            Ok(0) => {
                let mut n = shared.node.lock();
                n.log(
                    LogLevel::Debug,
                    "I/O error reading from node link: connection closed",
                );
                n.link_ended(&shared, link);
                return;
            }
            Err(e) => {
                let mut n = shared.node.lock();
                n.log(
                    LogLevel::Debug,
                    &format!("I/O error reading from node link: {e}"),
                );
                n.link_ended(&shared, link);
                return;
            }
            Ok(_) => {}
        }
        let (frames, bad) = match split_frames(&mut buf) {
            Framing::Frames(f) => (f, false),
            Framing::Bad(f) => (f, true),
        };
        let mut n = shared.node.lock();
        if !frames.is_empty() {
            deliver(&mut n, link, &frames);
        }
        if bad {
            n.log(
                LogLevel::Warning,
                "Bad message length or signature received from Cluster bus.",
            );
            n.link_ended(&shared, link);
            return;
        }
        n.drain_bus(&shared);
        drop(n);
        // Give memory back after a large frame, as redis resets its buffer.
        if buf.capacity() > 1024 * 1024 && buf.is_empty() {
            buf = BytesMut::with_capacity(16 * 1024);
        }
    }
}

/// Decodes frames and hands them to the core. Undecodable frames are dropped
/// with redis's log line; the link stays up.
fn deliver(n: &mut Node, link: LinkId, frames: &[BytesMut]) {
    for frame in frames {
        if n.logger.level == LogLevel::Debug && frame.len() >= 14 {
            let t = (&frame[12..14]).get_u16();
            let text = format!(
                "--- Processing packet of type {}, {} bytes",
                wire::msg_type::name(t),
                frame.len()
            );
            n.log(LogLevel::Debug, &text);
        }
        match wire::decode(frame) {
            Ok(msg) => {
                if let Some(c) = n.cluster.as_mut() {
                    c.handle_packet(now_ms(), link, msg);
                }
            }
            Err(e) => {
                if frame.len() >= 14 {
                    let t = (&frame[12..14]).get_u16();
                    if let Some(c) = n.cluster.as_mut() {
                        c.count_undecodable(t);
                    }
                }
                // redis ignores packets of another protocol version without a word.
                if !matches!(e, DecodeError::Version(_)) {
                    n.log(LogLevel::Warning, &e.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_signature_closes() {
        let mut b = BytesMut::from(&b"XXXXaaaaaaaaaaaa"[..]);
        assert!(matches!(split_frames(&mut b), Framing::Bad(f) if f.is_empty()));
    }

    #[test]
    fn short_totlen_closes_and_partial_waits() {
        let mut b = BytesMut::new();
        b.extend_from_slice(b"RCmb");
        b.extend_from_slice(&100u32.to_be_bytes());
        assert!(matches!(split_frames(&mut b), Framing::Bad(_)));
        let mut b = BytesMut::new();
        b.extend_from_slice(b"RCmb");
        b.extend_from_slice(&2256u32.to_be_bytes());
        b.extend_from_slice(&[0u8; 100]);
        assert!(matches!(split_frames(&mut b), Framing::Frames(f) if f.is_empty()));
        assert_eq!(b.len(), 108);
    }
}
