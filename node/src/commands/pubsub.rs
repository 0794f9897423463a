//! SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE,
//! PUBLISH, SPUBLISH and PUBSUB (redis `pubsub.c`). The node-wide maps live
//! in the host ([`super::Host::pubsub`]); what each client is subscribed to
//! lives in its [`ClientState`]. Confirmations are push frames (arrays in
//! RESP2), one per channel, counting the client's subscriptions after it.

use bytes::Bytes;

use super::client::Subscriptions;
use super::{client, ClientState, Ctx, Id};
use crate::pubsub::{Kind, PubSub};
use crate::resp::Frame;

fn confirmation(what: &'static str, name: Option<&Bytes>, count: usize) -> Frame {
    Frame::Push(vec![
        Frame::bulk_str(what),
        name.map_or(Frame::Null, |n| Frame::Bulk(n.clone())),
        Frame::Integer(count as i64),
    ])
}

fn subs(client: &mut ClientState) -> &mut Subscriptions {
    client.subscriptions.get_or_insert_with(Default::default)
}

/// The count a confirmation of this kind reports.
fn count(client: &ClientState, kind: Kind) -> usize {
    match kind {
        Kind::Shard => client.shard_subscription_count(),
        _ => client.subscription_count(),
    }
}

fn kind_of(id: Id) -> Kind {
    match id {
        Id::Psubscribe | Id::Punsubscribe => Kind::Pattern,
        Id::Ssubscribe | Id::Sunsubscribe | Id::Spublish => Kind::Shard,
        _ => Kind::Channel,
    }
}

/// Adds one subscription on both sides; false if the client had it already.
fn add(ps: &mut PubSub, client: &mut ClientState, kind: Kind, name: &Bytes) -> bool {
    let id = client.id;
    let s = subs(client);
    let added = match kind {
        Kind::Channel => s.channels.insert(name.clone()),
        Kind::Shard => s.shard.insert(name.clone()),
        Kind::Pattern => {
            if s.patterns.contains(name) {
                false
            } else {
                s.patterns.push(name.clone());
                true
            }
        }
    };
    if added {
        ps.add(kind, name, id);
    }
    added
}

/// Removes one subscription on both sides; false if the client had none.
fn remove(ps: &mut PubSub, client: &mut ClientState, kind: Kind, name: &[u8]) -> bool {
    let id = client.id;
    let Some(s) = client.subscriptions.as_mut() else {
        return false;
    };
    let removed = match kind {
        Kind::Channel => s.channels.remove(name),
        Kind::Shard => s.shard.remove(name),
        Kind::Pattern => match s.patterns.iter().position(|p| p[..] == *name) {
            Some(i) => {
                s.patterns.remove(i);
                true
            }
            None => false,
        },
    };
    if removed {
        ps.remove(kind, name, id);
    }
    if client
        .subscriptions
        .as_ref()
        .is_some_and(|s| s.channels.is_empty() && s.patterns.is_empty() && s.shard.is_empty())
    {
        client.subscriptions = None;
    }
    removed
}

/// The client's subscriptions of one kind, for an unsubscribe-all.
fn names(client: &ClientState, kind: Kind) -> Vec<Bytes> {
    client
        .subscriptions
        .as_ref()
        .map_or(Vec::new(), |s| match kind {
            Kind::Channel => s.channels.iter().cloned().collect(),
            Kind::Shard => s.shard.iter().cloned().collect(),
            Kind::Pattern => s.patterns.clone(),
        })
}

fn no_pubsub() -> Frame {
    Frame::error("ERR Pub/Sub is not available on this connection")
}

/// SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE channel...
pub(crate) fn subscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let kind = kind_of(ctx.spec.id);
    let what = match kind {
        Kind::Channel => "subscribe",
        Kind::Pattern => "psubscribe",
        Kind::Shard => "ssubscribe",
    };
    let Some(ps) = ctx.host.pubsub() else {
        return no_pubsub();
    };
    let mut replies = Vec::with_capacity(args.len() - 1);
    for name in &args[1..] {
        add(ps, ctx.client, kind, name);
        replies.push(confirmation(what, Some(name), count(ctx.client, kind)));
    }
    one_or_many(replies)
}

/// UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE [channel...]: without channels,
/// every subscription of that kind; a client with none still gets one
/// confirmation with a null channel.
pub(crate) fn unsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let kind = kind_of(ctx.spec.id);
    let what = match kind {
        Kind::Channel => "unsubscribe",
        Kind::Pattern => "punsubscribe",
        Kind::Shard => "sunsubscribe",
    };
    let Some(ps) = ctx.host.pubsub() else {
        return no_pubsub();
    };
    let mut replies = Vec::new();
    if args.len() == 1 {
        for name in names(ctx.client, kind) {
            remove(ps, ctx.client, kind, &name);
            replies.push(confirmation(what, Some(&name), count(ctx.client, kind)));
        }
        if replies.is_empty() {
            replies.push(confirmation(what, None, count(ctx.client, kind)));
        }
    } else {
        for name in &args[1..] {
            remove(ps, ctx.client, kind, name);
            replies.push(confirmation(what, Some(name), count(ctx.client, kind)));
        }
    }
    one_or_many(replies)
}

fn one_or_many(mut replies: Vec<Frame>) -> Frame {
    if replies.len() == 1 {
        replies.remove(0)
    } else {
        Frame::Replies(replies)
    }
}

/// PUBLISH / SPUBLISH channel message: the number of local receivers.
pub(crate) fn publish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let shard = ctx.spec.id == Id::Spublish;
    Frame::Integer(ctx.host.publish(&args[1], &args[2], shard, ctx.client))
}

const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// PUBSUB CHANNELS | NUMSUB | NUMPAT | SHARDCHANNELS | SHARDNUMSUB | HELP
pub(crate) fn pubsub_command(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let id = ctx.spec.id;
    if id == Id::PubsubHelp {
        return client::help(HELP);
    }
    let Some(ps) = ctx.host.pubsub() else {
        return no_pubsub();
    };
    let syntax = || {
        Frame::Error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(&args[1])
        ))
    };
    match id {
        Id::PubsubChannels | Id::PubsubShardchannels => {
            if args.len() > 3 {
                return syntax();
            }
            let kind = if id == Id::PubsubChannels {
                Kind::Channel
            } else {
                Kind::Shard
            };
            let pattern = args.get(2).map(|p| &p[..]);
            Frame::Array(
                ps.channels_matching(kind, pattern)
                    .into_iter()
                    .map(Frame::Bulk)
                    .collect(),
            )
        }
        Id::PubsubNumsub | Id::PubsubShardnumsub => {
            let kind = if id == Id::PubsubNumsub {
                Kind::Channel
            } else {
                Kind::Shard
            };
            let mut out = Vec::with_capacity((args.len() - 2) * 2);
            for name in &args[2..] {
                out.push(Frame::Bulk(name.clone()));
                out.push(Frame::Integer(ps.subscribers(kind, name) as i64));
            }
            Frame::Array(out)
        }
        Id::PubsubNumpat => {
            if args.len() != 2 {
                return syntax();
            }
            Frame::Integer(ps.count(Kind::Pattern) as i64)
        }
        _ => syntax(),
    }
}

/// Drops every subscription of a client (disconnect, RESET), without
/// confirmations.
pub(crate) fn forget_client(ps: &mut PubSub, client: &mut ClientState) {
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        for name in names(client, kind) {
            remove(ps, client, kind, &name);
        }
    }
    client.subscriptions = None;
}

/// Unsubscribes a client from shard channels whose slot this node no longer
/// serves: returns the `sunsubscribe` confirmation to push to it.
pub fn drop_shard_channel(ps: &mut PubSub, client: &mut ClientState, channel: &Bytes) -> Frame {
    remove(ps, client, Kind::Shard, channel);
    confirmation(
        "sunsubscribe",
        Some(channel),
        client.shard_subscription_count(),
    )
}
