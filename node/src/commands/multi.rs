//! MULTI / EXEC / DISCARD / WATCH / UNWATCH (redis `multi.c`).

use bytes::Bytes;

use super::client::{MultiState, Queued};
use super::table::CommandSpec;
use super::{call, err, ClientState, Ctx};
use crate::resp::Frame;
use crate::store::Db;

pub(crate) fn multi(ctx: &mut Ctx<'_>) -> Frame {
    if ctx.client.multi.is_some() {
        return Frame::error("ERR MULTI calls can not be nested");
    }
    ctx.client.multi = Some(MultiState::default());
    Frame::ok()
}

/// Queues a command inside MULTI (the caller replies `+QUEUED`).
pub(crate) fn queue(client: &mut ClientState, spec: &'static CommandSpec, args: Vec<Bytes>) {
    if let Some(m) = client.multi.as_mut() {
        // An aborted transaction will not run: no point keeping its commands.
        if !m.dirty_exec {
            m.flags |= spec.flags;
            m.inv_flags |= !spec.flags;
            m.queue.push(Queued { spec, args });
        }
    }
}

pub(crate) fn exec(ctx: &mut Ctx<'_>) -> Frame {
    let Some(state) = ctx.client.multi.take() else {
        return Frame::error("ERR EXEC without MULTI");
    };
    let now = ctx.expire_now;
    let watch_failed = ctx
        .client
        .watched
        .iter()
        .any(|t| ctx.db.watch_dirty(t, now));
    if state.dirty_exec || watch_failed {
        unwatch_all(ctx.db, ctx.client);
        return if state.dirty_exec {
            Frame::error(err::EXECABORT)
        } else {
            Frame::NullArray
        };
    }
    unwatch_all(ctx.db, ctx.client);
    let exec_spec = ctx.spec;
    let mut replies = Vec::with_capacity(state.queue.len());
    let nested = std::mem::replace(&mut ctx.nested, true);
    for q in state.queue {
        ctx.spec = q.spec;
        replies.push(call(ctx, q.args));
    }
    ctx.nested = nested;
    ctx.spec = exec_spec;
    Frame::Array(replies)
}

pub(crate) fn discard_command(ctx: &mut Ctx<'_>) -> Frame {
    if ctx.client.multi.is_none() {
        return Frame::error("ERR DISCARD without MULTI");
    }
    discard(ctx.db, ctx.client);
    Frame::ok()
}

/// Ends a transaction without running it (redis `discardTransaction`).
pub(crate) fn discard(db: &mut Db, client: &mut ClientState) {
    client.multi = None;
    unwatch_all(db, client);
}

pub(crate) fn watch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if ctx.client.multi.is_some() {
        return Frame::error("ERR WATCH inside MULTI is not allowed");
    }
    for key in &args[1..] {
        if ctx.client.watched.iter().any(|t| t.key() == key) {
            continue;
        }
        let token = ctx.db.watch(key.clone(), ctx.expire_now);
        ctx.client.watched.push(token);
    }
    Frame::ok()
}

pub(crate) fn unwatch(ctx: &mut Ctx<'_>) -> Frame {
    unwatch_all(ctx.db, ctx.client);
    Frame::ok()
}

pub(crate) fn unwatch_all(db: &mut Db, client: &mut ClientState) {
    for token in client.watched.drain(..) {
        db.unwatch(&token);
    }
}
