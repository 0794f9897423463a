//! Pub/Sub bookkeeping, as redis 7.0's `pubsub.c` keeps it: for each channel
//! (and each sharded channel) the clients subscribed to it, in subscription
//! order, and for each pattern the clients subscribed to it. The client side
//! of the relation (what one client is subscribed to) lives in
//! the command layer's `ClientState`. Delivering a message is the shell's job;
//! this module says who receives it and encodes the messages.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};

use crate::glob::glob_match;

/// Which of the three subscription spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE / PUBLISH.
    Channel,
    /// PSUBSCRIBE (patterns matched against PUBLISH channels).
    Pattern,
    /// SSUBSCRIBE / SPUBLISH (cluster: per slot owner).
    Shard,
}

/// Subscribers of channels, patterns and shard channels, by client ID.
#[derive(Debug, Default)]
pub struct PubSub {
    channels: HashMap<Bytes, Vec<u64>>,
    patterns: HashMap<Bytes, Vec<u64>>,
    shard: HashMap<Bytes, Vec<u64>>,
}

/// One delivery of a published message.
#[derive(Debug, PartialEq, Eq)]
pub struct Receiver {
    pub client: u64,
    /// The pattern that matched (`pmessage`), if a pattern subscription.
    pub pattern: Option<Bytes>,
}

impl PubSub {
    fn map(&self, kind: Kind) -> &HashMap<Bytes, Vec<u64>> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }

    fn map_mut(&mut self, kind: Kind) -> &mut HashMap<Bytes, Vec<u64>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// Adds `client` to `name`'s subscribers (the caller checked it was not one).
    pub fn add(&mut self, kind: Kind, name: &Bytes, client: u64) {
        self.map_mut(kind)
            .entry(name.clone())
            .or_default()
            .push(client);
    }

    /// Removes `client` from `name`'s subscribers; a channel nobody listens
    /// to any more is forgotten (so subscribing cannot be used to grow
    /// memory forever, as redis says).
    pub fn remove(&mut self, kind: Kind, name: &[u8], client: u64) {
        let map = self.map_mut(kind);
        if let Some(list) = map.get_mut(name) {
            list.retain(|&c| c != client);
            if list.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Who receives a message published on `channel` (`shard`: SPUBLISH,
    /// which ignores patterns), in redis's order: channel subscribers, then
    /// each matching pattern's subscribers.
    pub fn receivers(&self, channel: &[u8], shard: bool) -> Vec<Receiver> {
        let mut out = Vec::new();
        let direct = if shard { &self.shard } else { &self.channels };
        if let Some(list) = direct.get(channel) {
            out.extend(list.iter().map(|&client| Receiver {
                client,
                pattern: None,
            }));
        }
        if !shard {
            for (pattern, list) in &self.patterns {
                if glob_match(pattern, channel, false) {
                    out.extend(list.iter().map(|&client| Receiver {
                        client,
                        pattern: Some(pattern.clone()),
                    }));
                }
            }
        }
        out
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS: active channels matching `pattern`.
    pub fn channels_matching(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.map(kind)
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    /// PUBSUB NUMSUB / SHARDNUMSUB of one channel.
    pub fn subscribers(&self, kind: Kind, name: &[u8]) -> usize {
        self.map(kind).get(name).map_or(0, Vec::len)
    }

    /// Number of channels (patterns, shard channels) with subscribers.
    pub fn count(&self, kind: Kind) -> usize {
        self.map(kind).len()
    }

    /// Whether any message published on a bus PUBLISH (`shard` false) or
    /// PUBLISHSHARD could reach someone here (redis skips the work otherwise).
    pub fn has_subscribers(&self, shard: bool) -> bool {
        if shard {
            !self.shard.is_empty()
        } else {
            !self.channels.is_empty() || !self.patterns.is_empty()
        }
    }

    /// The shard channels whose slot is in `slots`, with their subscribers.
    pub fn shard_channels_in(&self, slots: &crate::slots::SlotSet) -> Vec<(Bytes, Vec<u64>)> {
        self.shard
            .iter()
            .filter(|(c, _)| slots.contains(crate::slots::key_slot(c)))
            .map(|(c, l)| (c.clone(), l.clone()))
            .collect()
    }
}

/// The RESP2 array or RESP3 push header of a pub/sub message.
fn push_header(out: &mut BytesMut, resp3: bool, len: usize) {
    out.put_u8(if resp3 { b'>' } else { b'*' });
    out.put_slice(len.to_string().as_bytes());
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    out.put_u8(b'$');
    out.put_slice(data.len().to_string().as_bytes());
    out.put_slice(b"\r\n");
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// `message` / `smessage` (3 elements) or `pmessage` (4), encoded for one
/// subscriber (redis `addReplyPubsubMessage`, `addReplyPubsubPatMessage`).
pub fn encode_message(
    out: &mut BytesMut,
    resp3: bool,
    shard: bool,
    pattern: Option<&[u8]>,
    channel: &[u8],
    message: &[u8],
) {
    out.reserve(channel.len() + message.len() + 48);
    match pattern {
        Some(p) => {
            push_header(out, resp3, 4);
            bulk(out, b"pmessage");
            bulk(out, p);
        }
        None => {
            push_header(out, resp3, 3);
            bulk(out, if shard { b"smessage" } else { b"message" });
        }
    }
    bulk(out, channel);
    bulk(out, message);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn receivers_are_channel_subscribers_then_patterns() {
        let mut ps = PubSub::default();
        ps.add(Kind::Channel, &b("news"), 1);
        ps.add(Kind::Channel, &b("news"), 2);
        ps.add(Kind::Pattern, &b("n*"), 3);
        ps.add(Kind::Pattern, &b("x*"), 4);
        ps.add(Kind::Shard, &b("news"), 5);
        let r = ps.receivers(b"news", false);
        assert_eq!(
            r.iter().map(|r| r.client).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(r[2].pattern.as_deref(), Some(&b"n*"[..]));
        let r = ps.receivers(b"news", true);
        assert_eq!(r.iter().map(|r| r.client).collect::<Vec<_>>(), vec![5]);
        ps.remove(Kind::Channel, b"news", 1);
        ps.remove(Kind::Channel, b"news", 2);
        assert_eq!(ps.count(Kind::Channel), 0, "empty channels are forgotten");
        assert!(ps.has_subscribers(false), "the pattern remains");
        assert_eq!(ps.subscribers(Kind::Shard, b"news"), 1);
    }

    #[test]
    fn messages_encode_for_each_protocol() {
        let mut out = BytesMut::new();
        encode_message(&mut out, false, false, None, b"ch", b"hi");
        assert_eq!(&out[..], b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        out.clear();
        encode_message(&mut out, true, false, Some(b"c*"), b"ch", b"hi");
        assert_eq!(
            &out[..],
            b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
        out.clear();
        encode_message(&mut out, false, true, None, b"ch", b"");
        assert_eq!(&out[..], b"*3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$0\r\n\r\n");
    }
}
