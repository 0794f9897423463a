//! Client connections: read whatever requests have arrived, run them under
//! one lock acquisition (pipelining costs one lock per read, not per command),
//! write all replies at once.
//!
//! Three things stop a batch early and are served without the lock, the rest
//! of the pipeline staying queued behind them: a WAIT that has to block, a
//! write command while a manual failover pauses writes, and `PSYNC`/`SYNC`,
//! which turn the connection into a replication link.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::blocking::{self, WaitRequest};
use super::host::HostCtx;
use super::replication::{self, ReplConf};
use super::{now_ms, Node, Shared};
use crate::cluster::LogLevel;
use crate::commands::{self, table, ClientState, Id, Lookup};
use crate::resp::{self, Frame, RequestLimits};

pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(shared.clone(), stream));
            }
            Err(e) => {
                shared.node.lock().log(
                    LogLevel::Verbose,
                    &format!("Accepting client connection: {e}"),
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Why a batch stopped before the queue was empty.
enum Stop {
    /// QUIT (or the like): send the replies, then close.
    Close,
    /// WAIT has to block.
    Wait(WaitRequest),
    /// The request at the front of the queue is a write held by the pause.
    Paused,
    /// `PSYNC`/`SYNC`: the connection may become a replication link.
    Sync(Vec<Bytes>),
    /// A blocking command (XREAD BLOCK) waits for data.
    Block(commands::BlockRequest),
    /// SHUTDOWN: the server stops; this client gets no reply.
    Shutdown,
}

/// Per-connection state the shell keeps beside the command layer's.
struct Conn {
    client: ClientState,
    /// The master offset right after this client's last replicated write
    /// (redis `c->woff`): what its WAIT waits for.
    woff: u64,
    /// What it announced with `REPLCONF` (a replica-to-be).
    repl: ReplConf,
}

async fn serve(shared: Arc<Shared>, mut stream: TcpStream) {
    let client = {
        let mut n = shared.node.lock();
        n.stats.connected_clients += 1;
        n.stats.total_connections += 1;
        let id = n.stats.next_client_id;
        n.stats.next_client_id += 1;
        ClientState::new(id)
    };
    let mut conn = Conn {
        client,
        woff: 0,
        repl: ReplConf::default(),
    };
    let limits = RequestLimits::default();
    let mut inbuf = BytesMut::with_capacity(16 * 1024);
    let mut outbuf = BytesMut::with_capacity(16 * 1024);
    let mut queue: VecDeque<Vec<Bytes>> = VecDeque::new();
    'conn: loop {
        match stream.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let mut protocol_error = None;
        loop {
            match resp::parse_request(&inbuf, &limits) {
                Ok(Some((args, used))) => {
                    inbuf.advance(used);
                    if !args.is_empty() {
                        queue.push_back(args);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        let mut close = false;
        while !queue.is_empty() {
            let stop = {
                let mut guard = shared.node.lock();
                let stop = run_batch(&mut guard, &mut conn, &mut queue, &mut outbuf);
                guard.drain(&shared);
                stop
            };
            let Some(stop) = stop else {
                break;
            };
            // What ran before the stop is answered before we wait.
            if !outbuf.is_empty() {
                if stream.write_all(&outbuf).await.is_err() {
                    break 'conn;
                }
                outbuf.clear();
            }
            match stop {
                Stop::Close => {
                    close = true;
                    queue.clear();
                }
                Stop::Wait(req) => {
                    let reply = blocking::wait_for_acks(&shared, req).await;
                    resp::encode(&reply, conn.client.resp3, &mut outbuf);
                }
                Stop::Block(req) => {
                    match block_until(&shared, &mut conn, req, &mut stream, &mut inbuf).await {
                        Some(reply) => resp::encode(&reply, conn.client.resp3, &mut outbuf),
                        None => break 'conn,
                    }
                }
                Stop::Shutdown => {
                    shared.shutdown.notify_one();
                    close = true;
                    queue.clear();
                }
                Stop::Paused => blocking::wait_unpaused(&shared).await,
                Stop::Sync(args) => {
                    queue.clear();
                    match replication::start_replica(&shared, stream, inbuf, &args, &conn.repl) {
                        Ok(()) => {
                            let mut n = shared.node.lock();
                            n.stats.connected_clients -= 1;
                            commands::disconnect(&mut n.db, &mut conn.client);
                            return;
                        }
                        Err((s, b, reply)) => {
                            stream = s;
                            inbuf = b;
                            resp::encode(&reply, conn.client.resp3, &mut outbuf);
                        }
                    }
                }
            }
        }
        if let Some(e) = protocol_error {
            resp::encode(
                &Frame::Error(format!("ERR {e}")),
                conn.client.resp3,
                &mut outbuf,
            );
            close = true;
        }
        if !outbuf.is_empty() {
            if stream.write_all(&outbuf).await.is_err() {
                break 'conn;
            }
            outbuf.clear();
        }
        if close {
            break;
        }
        // Don't hold on to a huge buffer after one big request.
        if inbuf.is_empty() && inbuf.capacity() > 1024 * 1024 {
            inbuf = BytesMut::with_capacity(16 * 1024);
        }
    }
    let mut n = shared.node.lock();
    n.stats.connected_clients -= 1;
    // Release this connection's WATCHes (they live in the db).
    commands::disconnect(&mut n.db, &mut conn.client);
}

/// Runs queued requests under the lock until the queue is empty (`None`) or
/// something must happen without the lock.
fn run_batch(
    n: &mut Node,
    conn: &mut Conn,
    queue: &mut VecDeque<Vec<Bytes>>,
    outbuf: &mut BytesMut,
) -> Option<Stop> {
    let now = now_ms();
    n.refresh_expire_mode(now);
    let paused = n.paused(now);
    while let Some(args) = queue.pop_front() {
        if conn.client.multi.is_none() {
            let is = |name: &[u8]| args[0].eq_ignore_ascii_case(name);
            if (is(b"psync") && args.len() == 3) || (is(b"sync") && args.len() == 1) {
                n.stats.total_commands += 1;
                return Some(Stop::Sync(args));
            }
            if is(b"save") && args.len() == 1 {
                n.stats.total_commands += 1;
                let reply = match n.rdb_save() {
                    Ok(()) => Frame::ok(),
                    Err(e) => Frame::Error(e),
                };
                resp::encode(&reply, conn.client.resp3, outbuf);
                continue;
            }
            if is(b"replconf") {
                n.stats.total_commands += 1;
                if let Some(reply) = replication::replconf(&mut conn.repl, &args) {
                    resp::encode(&reply, conn.client.resp3, outbuf);
                }
                continue;
            }
        }
        if paused && is_write_request(&args, &conn.client) {
            queue.push_front(args);
            return Some(Stop::Paused);
        }
        if let Some(text) = n.aof_write_error() {
            if is_write_request(&args, &conn.client) {
                n.stats.total_commands += 1;
                resp::encode(&Frame::Error(text), conn.client.resp3, outbuf);
                continue;
            }
        }
        if n.repl.state.writes_refused() && is_write_request(&args, &conn.client) {
            // redis `rejectCommand`: a rejected EXEC aborts the transaction,
            // a rejected queued command dooms it.
            n.stats.total_commands += 1;
            const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";
            let reply = if args[0].eq_ignore_ascii_case(b"exec") {
                commands::discard_transaction(&mut n.db, &mut conn.client);
                Frame::Error(format!(
                    "EXECABORT Transaction discarded because of: {NOREPLICAS}"
                ))
            } else {
                if let Some(m) = conn.client.multi.as_mut() {
                    m.dirty_exec = true;
                }
                Frame::error(NOREPLICAS)
            };
            resp::encode(&reply, conn.client.resp3, outbuf);
            continue;
        }
        n.stats.total_commands += 1;
        let (outcome, wait) = run_one(n, conn, args);
        if let Some(req) = wait {
            n.repl.getack_wanted = true;
            return Some(Stop::Wait(req));
        }
        if n.stats.shutdown.is_some() {
            return Some(Stop::Shutdown);
        }
        if let Some(req) = outcome.block {
            return Some(Stop::Block(req));
        }
        resp::encode(&outcome.reply, conn.client.resp3, outbuf);
        if outcome.close {
            return Some(Stop::Close);
        }
    }
    None
}

/// Runs one request under the lock and feeds its writes to replication.
fn run_one(
    n: &mut Node,
    conn: &mut Conn,
    args: Vec<Bytes>,
) -> (commands::Outcome, Option<WaitRequest>) {
    let may_block = conn.client.multi.is_none()
        && args
            .first()
            .is_some_and(|a| a.eq_ignore_ascii_case(b"wait"));
    let mut host = HostCtx::new(
        &mut n.cluster,
        &mut n.config,
        &mut n.stats,
        &mut n.logger,
        &mut n.repl.state,
        &mut n.migrate,
    )
    .for_client(conn.woff, may_block);
    let outcome = commands::execute(&mut host, &mut n.db, &mut conn.client, args);
    let wait = host.take_pending_wait();
    if !outcome.applied_writes.is_empty() {
        n.feed_request(&outcome.applied_writes);
        conn.woff = n.repl.state.offset();
    }
    (outcome, wait)
}

/// Serves a blocked command: reruns it whenever one of its keys is written,
/// until it has data or its timeout passes (then the null reply redis sends
/// on a timeout). `None` if the client went away meanwhile; what it pipelined
/// behind the blocked command stays in `inbuf`.
async fn block_until(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    req: commands::BlockRequest,
    stream: &mut TcpStream,
    inbuf: &mut BytesMut,
) -> Option<Frame> {
    let deadline = (req.timeout_ms > 0)
        .then(|| tokio::time::Instant::now() + Duration::from_millis(req.timeout_ms));
    {
        let mut n = shared.node.lock();
        n.db.block_on(&req.keys);
        n.stats.blocked_clients += 1;
    }
    let mut gone = false;
    let reply = loop {
        let notified = shared.keys_ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut n = shared.node.lock();
            let (outcome, _) = run_one(&mut n, conn, req.retry.clone());
            n.drain(shared);
            if outcome.block.is_none() {
                break outcome.reply;
            }
        }
        let readable = async {
            loop {
                match stream.read_buf(inbuf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        tokio::select! {
            _ = &mut notified => {}
            _ = readable => {
                gone = true;
                break Frame::NullArray;
            }
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => break Frame::NullArray,
        }
    };
    let mut n = shared.node.lock();
    n.db.unblock(&req.keys);
    n.stats.blocked_clients -= 1;
    (!gone).then_some(reply)
}

/// Would this request write (redis's pause test: a write command, or an EXEC
/// whose queue holds one)?
fn is_write_request(args: &[Bytes], client: &ClientState) -> bool {
    match commands::lookup(args) {
        // redis pauses "may replicate" commands too (EVAL, FCALL...).
        Lookup::Found(spec) => {
            spec.flags & (table::flag::WRITE | table::flag::MAY_REPLICATE) != 0
                || (spec.id == Id::Exec
                    && client.multi.as_ref().is_some_and(|m| {
                        m.flags & (table::flag::WRITE | table::flag::MAY_REPLICATE) != 0
                    }))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    #[test]
    fn the_pause_holds_writes_and_exec_of_writes_only() {
        let mut client = ClientState::new(1);
        for line in ["SET k v", "incr k", "DEL a b", "FLUSHALL", "RPUSH l x"] {
            assert!(is_write_request(&args(line), &client), "{line}");
        }
        for line in [
            "GET k",
            "PING",
            "WAIT 1 0",
            "CLUSTER INFO",
            "EXEC",
            "NOSUCH x",
        ] {
            assert!(!is_write_request(&args(line), &client), "{line}");
        }
        client.multi = Some(Default::default());
        assert!(!is_write_request(&args("EXEC"), &client), "read-only MULTI");
        if let Some(m) = client.multi.as_mut() {
            m.flags |= table::flag::WRITE;
        }
        assert!(
            is_write_request(&args("EXEC"), &client),
            "MULTI with a write"
        );
    }
}
