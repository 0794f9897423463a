//! Client connections, driven the way redis's event loop drives them: when a
//! socket is readable, read once, run every complete request under one lock
//! acquisition, and write the replies at once. A connection's task holds only
//! its socket and its slot in the registry ([`super::clients`]); its state,
//! buffers and parser live there, where other connections can reach them
//! (Pub/Sub delivery, CLIENT KILL/LIST, pauses).
//!
//! One task per connection, polled by hand (`poll_fn`): a poll takes the
//! lock once and does all of it (write pending output, read, run, write), so
//! a request costs one wakeup, one read and one write, as in redis. Four
//! things end a poll early and are served outside it: a WAIT that has to
//! block, a blocking command (XREAD BLOCK) that waits for data, `PSYNC`/`SYNC`
//! (the connection may become a replication link), and closing (QUIT,
//! SHUTDOWN, errors).

use std::future::poll_fn;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::blocking::{self, WaitRequest};
use super::clients::{self, Close, Entry, Unblock, READ_CHUNK};
use super::host::HostCtx;
use super::replication;
use super::{now_ms, Node, Shared};
use crate::cluster::LogLevel;
use crate::commands::{self, table, ClientState, Id, Lookup};
use crate::resp::{self, Frame, ParseError, Parsed};

/// At most this many reads per poll, so one busy client cannot hold the
/// thread (redis reads once per readable event).
const READS_PER_POLL: usize = 4;

pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => accept(&shared, stream, peer),
            Err(e) => {
                shared.node.lock().log(
                    LogLevel::Warning,
                    &format!("Accepting client connection: {e}"),
                );
                // Out of file descriptors and the like: give closes a moment.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// redis `acceptCommonHandler`: refuses the connection past `maxclients`
/// (counting cluster bus connections as redis does), else registers it and
/// starts its task.
fn accept(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let slot = {
        let mut guard = shared.node.lock();
        let n = &mut *guard;
        let cluster_links = n.cluster_connections();
        if n.clients.len() + n.repl.replica_count() + cluster_links >= n.config.maxclients() {
            let text: &[u8] = if n.cluster.is_some() {
                b"-ERR max number of clients + cluster connections reached\r\n"
            } else {
                b"-ERR max number of clients reached\r\n"
            };
            // Best effort, as redis: the socket is new, so it takes this.
            let _ = stream.try_write(text);
            n.stats.rejected_connections += 1;
            return;
        }
        n.stats.total_connections += 1;
        let now = now_ms();
        let mut state = ClientState::new(0);
        state.addr = peer.to_string();
        state.laddr = stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        state.fd = i64::from(stream.as_raw_fd());
        state.created_ms = now;
        // redis `createClient`: authenticated if the default user needs no
        // password now; a later `requirepass` leaves this connection in.
        state.authenticated = n.config.get("requirepass").is_none_or(str::is_empty);
        n.clients.add(state, now)
    };
    tokio::spawn(serve(shared.clone(), stream, slot));
}

/// What makes a poll return.
enum Step {
    Close,
    /// WAIT has to block: the reply comes from `wait_for_acks`.
    Wait(WaitRequest),
    /// `PSYNC`/`SYNC`: the connection may become a replication link.
    Sync(Vec<Bytes>),
    /// A blocking command (XREAD BLOCK) waits for data: served by
    /// `block_until`.
    Block(commands::BlockRequest),
}

/// Why a run of requests stopped before the input was used up.
enum Stop {
    /// Nothing stopped it.
    None,
    /// A request is held by a pause (kept in the entry).
    Postponed,
    Close,
    Step(Step),
}

struct Conn {
    stream: TcpStream,
    slot: usize,
}

async fn serve(shared: Arc<Shared>, stream: TcpStream, slot: usize) {
    let mut conn = Conn { stream, slot };
    loop {
        match poll_fn(|cx| conn.poll(cx, &shared)).await {
            Step::Close => break,
            Step::Wait(req) => {
                // Boxed: rare, and it would otherwise size every
                // connection's task for its timers (and put its code in the
                // hot request path's).
                if !Box::pin(wait_for_acks(&shared, &mut conn, req)).await {
                    break;
                }
            }
            Step::Block(req) => {
                // Boxed for the same reason as WAIT's future.
                if !Box::pin(block_until(&shared, &mut conn, req)).await {
                    break;
                }
            }
            Step::Sync(args) => match start_sync(&shared, conn, &args) {
                SyncEnd::Refused(c) => conn = c,
                SyncEnd::Gone(c) => {
                    conn = c;
                    break;
                }
                SyncEnd::Replica => return,
            },
        }
    }
    let mut n = shared.node.lock();
    if let Some(mut e) = n.clients.remove(conn.slot) {
        release(&mut n, &mut e);
    }
}

/// Serves WAIT (redis `waitCommand`): the reply (the count of replicas that
/// acked, or an error) goes to the connection's output. `false` when the
/// client went away meanwhile.
async fn wait_for_acks(shared: &Arc<Shared>, conn: &mut Conn, req: WaitRequest) -> bool {
    let acks = blocking::wait_for_acks(shared, req);
    let reply = tokio::select! {
        r = acks => Some(r),
        u = poll_fn(|cx| conn.poll_blocked(cx, shared)) => match u {
            Some(Unblock::Timeout) => {
                Some(Frame::Integer(shared.node.lock().repl.state.count_acks(req.offset) as i64))
            }
            Some(_) => Some(unblocked_error()),
            None => None,
        },
    };
    let mut n = shared.node.lock();
    let Some(e) = n.clients.get(conn.slot) else {
        return false;
    };
    end_block(e);
    let Some(reply) = reply else {
        return false;
    };
    let silent = e
        .state
        .as_deref()
        .is_some_and(|s| s.reply_off || s.reply_skip);
    if !silent {
        let resp3 = e.resp3;
        resp::encode(&reply, resp3, &mut e.out);
    }
    if let Frame::Error(text) = &reply {
        n.stats.calls.record_error(text);
    }
    true
}

/// How a PSYNC or SYNC ended for the connection.
enum SyncEnd {
    /// Refused (the reply is in the client's output): still a client.
    Refused(Conn),
    /// The client is gone.
    Gone(Conn),
    /// The connection is a replica link now, and no longer a client.
    Replica,
}

/// PSYNC or SYNC: hands the connection to replication.
#[cold]
#[inline(never)]
fn start_sync(shared: &Arc<Shared>, conn: Conn, args: &[Bytes]) -> SyncEnd {
    let slot = conn.slot;
    let (inbuf, repl, client_id) = {
        let mut n = shared.node.lock();
        match n.clients.get(slot) {
            Some(e) => (std::mem::take(&mut e.qbuf), e.repl.clone(), e.id),
            None => return SyncEnd::Gone(conn),
        }
    };
    match replication::start_replica(shared, conn.stream, inbuf, args, &repl, client_id) {
        Ok(()) => {
            let mut n = shared.node.lock();
            if let Some(mut e) = n.clients.remove(slot) {
                release(&mut n, &mut e);
            }
            SyncEnd::Replica
        }
        Err((stream, inbuf, reply)) => {
            let conn = Conn { stream, slot };
            let mut n = shared.node.lock();
            let Some(e) = n.clients.get(slot) else {
                return SyncEnd::Gone(conn);
            };
            e.qbuf = inbuf;
            let resp3 = e.resp3;
            resp::encode(&reply, resp3, &mut e.out);
            if let Frame::Error(text) = &reply {
                n.stats.calls.record_error(text);
            }
            SyncEnd::Refused(conn)
        }
    }
}

/// Serves a blocked command (redis `blockForKeys`): reruns its request
/// whenever one of its keys is written, until it has data, its timeout passes
/// (redis's null reply), or CLIENT UNBLOCK ends it. The reply goes to the
/// connection's output. `false` when the client went away meanwhile.
async fn block_until(shared: &Arc<Shared>, conn: &mut Conn, req: commands::BlockRequest) -> bool {
    let deadline = (req.timeout_ms > 0)
        .then(|| tokio::time::Instant::now() + Duration::from_millis(req.timeout_ms));
    shared.node.lock().db.block_on(&req.keys);
    let mut out = BytesMut::new();
    let mut close = false;
    let gone = loop {
        let notified = shared.keys_ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut guard = shared.node.lock();
            let n = &mut *guard;
            let now = now_ms();
            let Some(mut state) = n.clients.get(conn.slot).and_then(|e| e.state.take()) else {
                break true;
            };
            n.refresh_expire_mode(now);
            let stop = run_request(n, conn.slot, &mut state, req.retry.clone(), &mut out, now);
            if let Some(e) = n.clients.get(conn.slot) {
                e.state = Some(state);
            }
            n.drain_at(shared, now);
            match stop {
                // Still no data (or a pause holds the rerun): wait on.
                Stop::Step(Step::Block(_)) => {}
                Stop::Postponed => {
                    n.clients.take_postponed(conn.slot);
                }
                Stop::Close => {
                    close = true;
                    break false;
                }
                _ => break false,
            }
            // Pushes that reached the client meanwhile wait in its output.
            if !out.is_empty() {
                if let Some(e) = n.clients.get(conn.slot) {
                    e.out.extend_from_slice(&out);
                }
                out.clear();
            }
        }
        let ended = tokio::select! {
            _ = &mut notified => None,
            u = poll_fn(|cx| conn.poll_blocked(cx, shared)) => Some(u),
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => Some(Some(Unblock::Timeout)),
        };
        match ended {
            None => {}
            Some(None) => break true,
            Some(Some(Unblock::Error)) => {
                encode_reply(shared, conn.slot, &unblocked_error(), &mut out);
                break false;
            }
            Some(Some(_)) => {
                encode_reply(shared, conn.slot, &Frame::NullArray, &mut out);
                break false;
            }
        }
    };
    let mut n = shared.node.lock();
    n.db.unblock(&req.keys);
    let Some(e) = n.clients.get(conn.slot) else {
        return false;
    };
    end_block(e);
    if gone {
        return false;
    }
    e.out.extend_from_slice(&out);
    if close && e.close == Close::No {
        e.close = Close::AfterReply;
    }
    true
}

/// The client is no longer blocked. The read buffer `poll_blocked` kept
/// ready goes if it holds nothing, so an idle connection keeps none.
fn end_block(e: &mut Entry) {
    e.blocked = false;
    e.unblock = Unblock::No;
    if e.qbuf.is_empty() {
        e.qbuf = BytesMut::new();
    }
}

/// Encodes the reply that ends a block (timeout, CLIENT UNBLOCK) as the
/// command's own reply would be: unless CLIENT REPLY silences it, and
/// counted when it is an error.
fn encode_reply(shared: &Arc<Shared>, slot: usize, reply: &Frame, out: &mut BytesMut) {
    let mut n = shared.node.lock();
    let Some(e) = n.clients.get(slot) else {
        return;
    };
    let silent = e
        .state
        .as_deref()
        .is_some_and(|s| s.reply_off || s.reply_skip);
    if !silent {
        resp::encode(reply, e.resp3, out);
    }
    if let Frame::Error(text) = reply {
        n.stats.calls.record_error(text);
    }
}

/// CLIENT UNBLOCK ... ERROR's reply to the blocked client.
fn unblocked_error() -> Frame {
    Frame::error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
}

/// Drops a closed connection's WATCHes and subscriptions.
fn release(n: &mut Node, e: &mut Entry) {
    if let Some(mut state) = e.state.take() {
        commands::disconnect(&mut n.db, &mut state, Some(&mut n.clients.pubsub));
    }
}

impl Conn {
    /// One round of the connection's work; see the module comment.
    fn poll(&mut self, cx: &mut Context<'_>, shared: &Arc<Shared>) -> Poll<Step> {
        let mut guard = shared.node.lock();
        let n = &mut *guard;
        let slot = self.slot;
        let Some(e) = n.clients.get(slot) else {
            return Poll::Ready(Step::Close);
        };
        if e.close == Close::Asap {
            return Poll::Ready(Step::Close);
        }
        if !e.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            e.waker = Some(cx.waker().clone());
        }
        // Output left from before (the socket was full, or pushes arrived).
        if !e.out.is_empty() && self.write_pending(cx, n).is_err() {
            return Poll::Ready(Step::Close);
        }
        // A request held by a pause, or input left behind a stop, runs first.
        let resume = n
            .clients
            .get(slot)
            .is_some_and(|e| e.postponed.is_some() || (!e.qbuf.is_empty() && e.parser.is_idle()));
        if resume {
            match self.run(cx, shared, n, Input::Queued) {
                Stop::None => {}
                Stop::Postponed => return Poll::Pending,
                Stop::Close => return Poll::Ready(Step::Close),
                Stop::Step(s) => return Poll::Ready(s),
            }
        }
        for _ in 0..READS_PER_POLL {
            let Some(e) = n.clients.get(slot) else {
                return Poll::Ready(Step::Close);
            };
            if e.close != Close::No {
                // Closing after a reply that is still being written.
                return Poll::Pending;
            }
            let read = if e.qbuf.is_empty() {
                let mut scratch = std::mem::take(&mut n.clients.scratch_in);
                let mut rb = ReadBuf::new(&mut scratch);
                let r = Pin::new(&mut self.stream).poll_read(cx, &mut rb);
                let len = rb.filled().len();
                n.clients.scratch_in = scratch;
                r.map(|r| r.map(|()| (len, Input::Scratch(len))))
            } else {
                let wanted = e.parser.wanted(e.qbuf.len());
                e.qbuf.reserve(wanted.clamp(READ_CHUNK, 64 * 1024 * 1024));
                let before = e.qbuf.len();
                let r = tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut e.qbuf);
                let len = e.qbuf.len() - before;
                r.map(|r| r.map(|_| (len, Input::Queued)))
            };
            match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) | Poll::Ready(Ok((0, _))) => return Poll::Ready(Step::Close),
                Poll::Ready(Ok((len, input))) => {
                    n.stats.net_input_bytes += len as u64;
                    n.stats.reads_processed += 1;
                    // After a short read tokio has cleared the readiness, so
                    // the next poll_read only registers the waker.
                    match self.run(cx, shared, n, input) {
                        Stop::None => {}
                        Stop::Postponed => return Poll::Pending,
                        Stop::Close => return Poll::Ready(Step::Close),
                        Stop::Step(s) => return Poll::Ready(s),
                    }
                }
            }
        }
        // Read budget used up with data still coming: let others run, and
        // end the turn's replies here too (the runtime does not park, so
        // `before_park` would wait).
        write_deferred(n);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Writes the output left from before; `Err` when the connection is to
    /// close (gone, or all written and it closes after its reply).
    #[cold]
    #[inline(never)]
    fn write_pending(&mut self, cx: &mut Context<'_>, n: &mut Node) -> Result<(), ()> {
        let Some(e) = n.clients.get(self.slot) else {
            return Err(());
        };
        let mut out = std::mem::take(&mut e.out);
        let written = self.write(cx, &out)?;
        n.stats.net_output_bytes += written as u64;
        out.advance(written);
        let Some(e) = n.clients.get(self.slot) else {
            return Err(());
        };
        if !out.is_empty() {
            // Still full: wait for writability, keep reading meanwhile.
            e.out = out;
        } else if e.close == Close::AfterReply {
            return Err(());
        } else {
            e.last_interaction_ms = now_ms();
        }
        Ok(())
    }

    /// While blocked (WAIT, XREAD BLOCK): ends the wait when the client is
    /// killed or closes its end (`None`) or CLIENT UNBLOCK asks (`Some`).
    /// What the client sends meanwhile is kept in its query buffer, as redis
    /// keeps reading a blocked client, and runs once the wait is over.
    fn poll_blocked(
        &mut self,
        cx: &mut Context<'_>,
        shared: &Arc<Shared>,
    ) -> Poll<Option<Unblock>> {
        let mut guard = shared.node.lock();
        let n = &mut *guard;
        let qbuf_limit = n.clients.limits.query_buffer;
        let Some(e) = n.clients.get(self.slot) else {
            return Poll::Ready(None);
        };
        if e.close == Close::Asap {
            return Poll::Ready(None);
        }
        if !e.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            e.waker = Some(cx.waker().clone());
        }
        if e.unblock != Unblock::No {
            return Poll::Ready(Some(e.unblock));
        }
        loop {
            let Some(e) = n.clients.get(self.slot) else {
                return Poll::Ready(None);
            };
            e.qbuf.reserve(READ_CHUNK);
            let before = e.qbuf.len();
            let read = tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut e.qbuf);
            let len = e.qbuf.len() - before;
            let over = e.qbuf.len() > qbuf_limit;
            match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) | Poll::Ready(Ok(0)) => return Poll::Ready(None),
                Poll::Ready(Ok(_)) => {}
            }
            n.stats.net_input_bytes += len as u64;
            n.stats.reads_processed += 1;
            if over {
                self.close_for_query_buffer(n);
                return Poll::Ready(None);
            }
        }
    }

    /// Writes as much of `data` as the socket takes now (registering for
    /// writability if it takes less). `Err` when the connection is gone.
    fn write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Result<usize, ()> {
        let mut written = 0;
        while written < data.len() {
            match Pin::new(&mut self.stream).poll_write(cx, &data[written..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Err(()),
                Poll::Ready(Ok(k)) => written += k,
                Poll::Pending => break,
            }
        }
        Ok(written)
    }

    /// Runs the requests in `input` (the bytes just read into the shared
    /// buffer, or the connection's queued input), writes the replies, and
    /// keeps whatever is left for later.
    fn run(
        &mut self,
        cx: &mut Context<'_>,
        shared: &Arc<Shared>,
        n: &mut Node,
        input: Input,
    ) -> Stop {
        let slot = self.slot;
        let now = now_ms();
        let Some(e) = n.clients.get(slot) else {
            return Stop::Close;
        };
        e.last_interaction_ms = now;
        let Some(mut state) = e.state.take() else {
            return Stop::Close;
        };
        let mut parser = std::mem::take(&mut e.parser);
        let postponed = e.postponed.is_some();
        // Replies go after any output still pending, else into the shared buffer.
        let own_out = !e.out.is_empty();
        let mut out = if own_out {
            std::mem::take(&mut e.out)
        } else {
            std::mem::take(&mut n.clients.scratch_out)
        };
        let scratch = std::mem::take(&mut n.clients.scratch_in);
        let mut queued = match input {
            Input::Queued => n
                .clients
                .get(slot)
                .map(|e| std::mem::take(&mut e.qbuf))
                .unwrap_or_default(),
            Input::Scratch(_) => BytesMut::new(),
        };
        let data: &[u8] = match input {
            Input::Scratch(len) => &scratch[..len],
            Input::Queued => &queued[..],
        };
        let limits = n.clients.limits.request.clone();

        n.refresh_expire_mode(now);
        let mut stop = Stop::None;
        let mut pos = 0;
        if postponed {
            if let Some(args) = n.clients.take_postponed(slot) {
                stop = run_request(n, slot, &mut state, args, &mut out, now);
            }
        }
        while matches!(stop, Stop::None) && pos < data.len() {
            match parser.parse(&data[pos..], &limits) {
                Ok(Parsed::Request(args, used)) => {
                    pos += used;
                    stop = run_request(n, slot, &mut state, args, &mut out, now);
                }
                Ok(Parsed::Skip(used)) => pos += used,
                Ok(Parsed::Incomplete) => break,
                Err(e) => {
                    protocol_error(n, &state, e, &mut out, now);
                    pos = data.len();
                    stop = Stop::Close;
                }
            }
        }
        // The pass's effects (cluster actions, AOF) happen before replies go
        // out: at the end of the turn when the replies wait for it too and
        // every request was a plain keyspace command, else now.
        let drain_now = std::mem::take(&mut n.drain_now);
        if n.clients.defer_writes && !own_out && matches!(stop, Stop::None) && !drain_now {
            n.drain_due = true;
        } else {
            n.drain_at(shared, now);
        }
        if n.stats.shutdown.is_some() {
            // SHUTDOWN ran: the server stops (see `server::run`).
            shared.shutdown.notify_one();
        }

        // Put everything back, keeping unused input.
        let leftover = &data[pos..];
        let Some(e) = n.clients.get(slot) else {
            return Stop::Close;
        };
        e.resp3 = state.resp3;
        e.state = Some(state);
        e.parser = parser;
        if matches!(stop, Stop::Close) {
            if e.close == Close::No {
                e.close = Close::AfterReply;
            }
            e.parser.reset();
        } else {
            match input {
                Input::Scratch(_) => {
                    if !leftover.is_empty() {
                        e.qbuf = BytesMut::from(leftover);
                    }
                }
                Input::Queued => {
                    queued.advance(pos);
                    e.qbuf = shrink(queued);
                }
            }
        }
        n.clients.scratch_in = scratch;
        let qbuf_limit = n.clients.limits.query_buffer;
        let over_limit = n
            .clients
            .get(slot)
            .is_some_and(|e| e.qbuf.len() > qbuf_limit && !e.parser.is_idle());
        if over_limit {
            self.close_for_query_buffer(n);
            return Stop::Close;
        }

        // Pushes that reached this client while its requests ran.
        if let Some(e) = n.clients.get(slot) {
            if !e.out.is_empty() {
                out.extend_from_slice(&e.out);
                e.out = BytesMut::new();
            }
        }
        // Plain replies wait for the end of the event-loop turn, as redis
        // writes them in beforeSleep: one write per client per turn, after
        // every ready client was read, so a client with many connections
        // gets its replies together (one wakeup, not one per connection).
        if n.clients.defer_writes && !own_out && !out.is_empty() && matches!(stop, Stop::None) {
            let clients = &mut n.clients;
            if let Some(e) = clients.get(slot) {
                e.out.extend_from_slice(&out);
                e.out_peak = e.out_peak.max(e.out.len());
                if !e.deferred {
                    e.deferred = true;
                    clients.deferred.push(slot);
                }
            }
            out.clear();
            n.clients.scratch_out = out;
            return stop;
        }
        // Write the replies; keep what the socket does not take.
        let written = if out.is_empty() {
            0
        } else {
            n.stats.writes_processed += 1;
            match self.write(cx, &out) {
                Ok(w) => w,
                Err(()) => return Stop::Close,
            }
        };
        n.stats.net_output_bytes += written as u64;
        let Some(e) = n.clients.get(slot) else {
            return Stop::Close;
        };
        if written < out.len() {
            if own_out {
                out.advance(written);
                e.out = out;
            } else {
                e.out = BytesMut::from(&out[written..]);
                out.clear();
                n.clients.scratch_out = out;
            }
            if let Some(e) = n.clients.get(slot) {
                e.out_peak = e.out_peak.max(e.out.len());
            }
            if matches!(stop, Stop::Close) {
                // Closed once the rest is written (see `poll`).
                stop = Stop::Postponed;
            }
        } else if !own_out {
            out.clear();
            n.clients.scratch_out = out;
        }
        stop
    }

    /// redis: "Closing client that reached max query buffer length".
    #[cold]
    #[inline(never)]
    fn close_for_query_buffer(&mut self, n: &mut Node) {
        let now = now_ms();
        let Some(e) = n.clients.get(self.slot) else {
            return;
        };
        let head = repr(&e.qbuf[..e.qbuf.len().min(64)]);
        let line = e
            .state
            .as_deref()
            .map(|s| s.info_line(now, &e.conn_info(now, 0)))
            .unwrap_or_default();
        e.close = Close::Asap;
        n.log(
            LogLevel::Warning,
            &format!(
                "Closing client that reached max query buffer length: {line} (qbuf initial bytes: {head})"
            ),
        );
    }
}

/// A request that does not parse: its error reply, and the connection closes.
#[cold]
#[inline(never)]
fn protocol_error(n: &mut Node, state: &ClientState, e: ParseError, out: &mut BytesMut, now: u64) {
    let text = format!("ERR {e}");
    n.log(
        LogLevel::Verbose,
        &format!(
            "Protocol error ({e}) from client: {}",
            state.info_line(now, &Default::default())
        ),
    );
    n.stats.calls.record_error(&text);
    resp::encode(&Frame::Error(text), state.resp3, out);
}

/// Writes the replies deferred to the end of the event-loop turn (redis
/// `handleClientsWithPendingWrites`). Each socket is written directly, as
/// much as it takes; a connection whose socket is full, or failed, is woken
/// to write the rest through its task (which registers for writability, or
/// closes).
pub(super) fn write_deferred(n: &mut Node) {
    if n.clients.deferred.is_empty() {
        return;
    }
    let mut slots = std::mem::take(&mut n.clients.deferred);
    let now = now_ms();
    for &slot in &slots {
        let Some(e) = n.clients.get(slot) else {
            continue;
        };
        e.deferred = false;
        if e.out.is_empty() || e.close == Close::Asap {
            continue;
        }
        let Some(fd) = e.state.as_deref().map(|s| s.fd as libc::c_int) else {
            e.wake();
            continue;
        };
        let mut written = 0;
        while written < e.out.len() {
            let rest = &e.out[written..];
            // SAFETY: `fd` is this connection's open socket (its task holds
            // it until the entry is removed) and `rest` is valid for reads.
            let r = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
            if r > 0 {
                written += r as usize;
            } else if r < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
                continue;
            } else {
                break;
            }
        }
        if written == e.out.len() {
            e.out = BytesMut::new();
            e.last_interaction_ms = now;
        } else {
            e.out.advance(written);
            e.wake();
        }
        n.stats.writes_processed += 1;
        n.stats.net_output_bytes += written as u64;
    }
    slots.clear();
    n.clients.deferred = slots;
}

/// Where a run's input is.
#[derive(Clone, Copy)]
enum Input {
    /// The first `len` bytes of the shared read buffer.
    Scratch(usize),
    /// The connection's queued input.
    Queued,
}

/// A buffer that held a big request and now holds a few bytes is copied
/// into a small one, so the memory goes back at once.
fn shrink(buf: BytesMut) -> BytesMut {
    if buf.is_empty() {
        BytesMut::new()
    } else if buf.capacity() > 4 * READ_CHUNK && buf.len() < buf.capacity() / 4 {
        BytesMut::from(&buf[..])
    } else {
        buf
    }
}

/// redis `sdscatrepr`: a quoted string with C escapes.
fn repr(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            7 => s.push_str("\\a"),
            8 => s.push_str("\\b"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

/// Runs one request of the running client, encoding its reply into `out`.
///
/// The rare paths (shell-served commands, refusals, output limits) are
/// outlined into cold functions: this runs for every request, and keeping
/// its hot code dense keeps the request path's instruction cache footprint
/// small (callgrind: the path's misses, not its instruction count, set the
/// gap to redis-server).
fn run_request(
    n: &mut Node,
    slot: usize,
    state: &mut ClientState,
    args: Vec<Bytes>,
    out: &mut BytesMut,
    now: u64,
) -> Stop {
    let args = if state.multi.is_none() && is_shell_request(&args) {
        match run_shell_request(n, slot, state, args, out) {
            Ok(stop) => return stop,
            Err(args) => args,
        }
    } else {
        args
    };
    // redis `processCommand`'s order: min-replicas, then loading.
    if n.repl.state.writes_refused()
        || super::host::blocking_load(&n.config, &n.repl.state)
        || n.aof.as_ref().is_some_and(|a| a.write_error().is_some())
    {
        if let Some(stop) = refuse_request(n, state, &args, out) {
            return stop;
        }
    }
    let may_block = state.multi.is_none()
        && args
            .first()
            .is_some_and(|a| a.eq_ignore_ascii_case(b"wait"));
    let woff = n.clients.get(slot).map_or(0, |e| e.woff);
    let mut host = HostCtx::new(
        &mut n.cluster,
        &mut n.config,
        &mut n.stats,
        &mut n.logger,
        &mut n.repl.state,
        &mut n.migrate,
    )
    .for_client(woff, may_block)
    .at(now)
    .with_clients(&mut n.clients, slot);
    let outcome = commands::execute(&mut host, &mut n.db, state, args);
    if !outcome.keyspace_only {
        n.drain_now = true;
    }
    let wait = host.take_pending_wait();
    if n.repl.state.take_master_link_kill() {
        n.drop_master_link(now);
    }
    for id in n.repl.state.take_replica_kills() {
        n.drop_replica(id);
    }
    if let Some(args) = outcome.postponed {
        n.clients.set_postponed(slot, args);
        return Stop::Postponed;
    }
    if !outcome.applied_writes.is_empty() {
        n.feed_request(&outcome.applied_writes);
        let off = n.repl.state.offset();
        if let Some(e) = n.clients.get(slot) {
            e.woff = off;
        }
    }
    // SHUTDOWN: this client gets no reply, the connection closes (after the
    // replies before it) and the server stops.
    if n.stats.shutdown.is_some() {
        return Stop::Close;
    }
    // Pushes to this client during the command come before its reply.
    if let Some(e) = n.clients.get(slot) {
        if !e.out.is_empty() {
            out.extend_from_slice(&e.out);
            e.out = BytesMut::new();
        }
        e.resp3 = state.resp3;
    }
    if let Some(req) = wait {
        if let Some(e) = n.clients.get(slot) {
            e.blocked = true;
        }
        n.repl.getack_wanted = true;
        return Stop::Step(Step::Wait(req));
    }
    if let Some(req) = outcome.block {
        // The reply is a placeholder: `block_until` answers.
        if let Some(e) = n.clients.get(slot) {
            e.blocked = true;
        }
        return Stop::Step(Step::Block(req));
    }
    if !outcome.silent {
        resp::encode(&outcome.reply, state.resp3, out);
    }
    if outcome.close {
        return Stop::Close;
    }
    // The running client's output limit, on what this batch has queued.
    let limits = &n.clients.limits.obuf[clients::limit_class(state)];
    if limits.hard_bytes > 0 || limits.soft_bytes > 0 {
        return enforce_output_limit(n, slot, state, out, now);
    }
    Stop::None
}

/// Commands the shell serves, not the command table: they need the node
/// itself (a socket to hand over, the RDB writer, the link's REPLCONF).
fn is_shell_request(args: &[Bytes]) -> bool {
    let name = &args[0];
    // The length first: one compare for nearly every request.
    match name.len() {
        4 => name.eq_ignore_ascii_case(b"sync") || name.eq_ignore_ascii_case(b"save"),
        5 => name.eq_ignore_ascii_case(b"psync"),
        8 => name.eq_ignore_ascii_case(b"replconf"),
        _ => false,
    }
}

/// PSYNC, SYNC, SAVE and REPLCONF outside MULTI. With another arity the
/// arguments come back (`Err`) for the command table (and its arity error).
#[cold]
#[inline(never)]
fn run_shell_request(
    n: &mut Node,
    slot: usize,
    state: &mut ClientState,
    args: Vec<Bytes>,
    out: &mut BytesMut,
) -> Result<Stop, Vec<Bytes>> {
    n.drain_now = true;
    let is = |name: &[u8]| args[0].eq_ignore_ascii_case(name);
    if (is(b"psync") && args.len() == 3) || (is(b"sync") && args.len() == 1) {
        return Ok(Stop::Step(Step::Sync(args)));
    }
    if is(b"save") && args.len() == 1 {
        let reply = match n.rdb_save() {
            Ok(()) => Frame::ok(),
            Err(e) => Frame::Error(e),
        };
        if let Frame::Error(text) = &reply {
            n.stats.calls.record_error(text);
        }
        resp::encode(&reply, state.resp3, out);
        return Ok(Stop::None);
    }
    if is(b"replconf") {
        let reply = n
            .clients
            .get(slot)
            .and_then(|e| replication::replconf(&mut e.repl, &args));
        if let Some(reply) = reply {
            resp::encode(&reply, state.resp3, out);
        }
        return Ok(Stop::None);
    }
    Err(args)
}

/// min-replicas, loading and a failed AOF write refuse some requests:
/// `Some` with the reply encoded when this one is refused.
#[cold]
#[inline(never)]
fn refuse_request(
    n: &mut Node,
    state: &mut ClientState,
    args: &[Bytes],
    out: &mut BytesMut,
) -> Option<Stop> {
    let rejected = if n.repl.state.writes_refused() && is_write_request(args, state) {
        Some("NOREPLICAS Not enough good replicas to write.")
    } else if super::host::blocking_load(&n.config, &n.repl.state)
        && denied_while_loading(args, state)
    {
        Some("LOADING Redis is loading the dataset in memory")
    } else {
        None
    };
    if let Some(why) = rejected {
        // redis `rejectCommand`: a rejected EXEC aborts the transaction, a
        // rejected queued command dooms it.
        let reply = if args[0].eq_ignore_ascii_case(b"exec") {
            commands::discard_transaction(&mut n.db, state);
            Frame::Error(format!("EXECABORT Transaction discarded because of: {why}"))
        } else {
            if let Some(m) = state.multi.as_mut() {
                m.dirty_exec = true;
            }
            Frame::error(why)
        };
        if let Frame::Error(text) = &reply {
            n.stats.calls.record_error(text);
        }
        resp::encode(&reply, state.resp3, out);
        return Some(Stop::None);
    }
    if let Some(text) = n.aof_write_error() {
        if is_write_request(args, state) {
            n.stats.calls.record_error(&text);
            resp::encode(&Frame::Error(text), state.resp3, out);
            return Some(Stop::None);
        }
    }
    None
}

/// The running client's output buffer limit (its class has one).
#[cold]
#[inline(never)]
fn enforce_output_limit(
    n: &mut Node,
    slot: usize,
    state: &ClientState,
    out: &mut BytesMut,
    now: u64,
) -> Stop {
    let limit = n.clients.limits.obuf[clients::limit_class(state)];
    let over = n.clients.get(slot).is_some_and(|e| {
        clients::over_output_limit(out.len(), &limit, &mut e.soft_limit_since, now)
    });
    if !over {
        return Stop::None;
    }
    let line = n
        .clients
        .get(slot)
        .map(|e| state.info_line(now, &e.conn_info(now, 0)))
        .unwrap_or_default();
    out.clear();
    if let Some(e) = n.clients.get(slot) {
        e.close = Close::Asap;
    }
    n.log(
        LogLevel::Warning,
        &format!(
            "Client {line} scheduled to be closed ASAP for overcoming of output buffer limits."
        ),
    );
    Stop::Close
}

/// Would this request write (a write command, or an EXEC whose queue holds
/// one)? (The AOF write-error rule.)
fn is_write_request(args: &[Bytes], client: &ClientState) -> bool {
    match commands::lookup(args) {
        Lookup::Found(spec) => {
            spec.is_write()
                || (spec.id == Id::Exec
                    && client
                        .multi
                        .as_ref()
                        .is_some_and(|m| m.flags & table::flag::WRITE != 0))
        }
        _ => false,
    }
}

/// redis `is_denyloading_command`: no `loading` flag, or an EXEC of a
/// queued command without it. Unknown commands fall through to their error.
fn denied_while_loading(args: &[Bytes], client: &ClientState) -> bool {
    match commands::lookup(args) {
        Lookup::Found(spec) => {
            spec.flags & table::flag::LOADING == 0
                || (spec.id == Id::Exec
                    && client
                        .multi
                        .as_ref()
                        .is_some_and(|m| m.inv_flags & table::flag::LOADING != 0))
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
    fn writes_and_exec_of_writes_are_writes() {
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

    #[test]
    fn repr_escapes_like_sdscatrepr() {
        assert_eq!(
            repr(b"*1\r\n$4\r\nPI\"\\\x01"),
            r#""*1\r\n$4\r\nPI\"\\\x01""#
        );
    }
}
