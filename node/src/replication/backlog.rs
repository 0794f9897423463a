//! The replication backlog (redis `repl_backlog`): the last
//! `repl-backlog-size` bytes of the stream, so that a replica that lost its
//! link, or the siblings of a promoted replica, can continue from their
//! offset (`+CONTINUE`) instead of loading a whole snapshot again.
//!
//! Kept as the stream's own chunks (one per fed command), trimmed from the
//! front while what would remain still holds `size` bytes; like redis 7.0's
//! block list, the history can exceed `size` by less than one chunk.

use std::collections::VecDeque;

use bytes::Bytes;

#[derive(Debug, Clone)]
pub struct Backlog {
    chunks: VecDeque<Bytes>,
    /// Bytes held (`repl_backlog_histlen`).
    histlen: u64,
    /// Stream offset of the first byte held (`repl_backlog_first_byte_offset`).
    first: u64,
    size: u64,
}

impl Backlog {
    /// An empty backlog whose next byte has stream offset `master_offset + 1`.
    pub fn new(size: u64, master_offset: u64) -> Backlog {
        Backlog {
            chunks: VecDeque::new(),
            histlen: 0,
            first: master_offset + 1,
            size: size.max(1),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn histlen(&self) -> u64 {
        self.histlen
    }

    pub fn first_byte_offset(&self) -> u64 {
        self.first
    }

    /// `repl-backlog-size` changed (CONFIG SET): trims at once if smaller.
    pub fn resize(&mut self, size: u64) {
        self.size = size.max(1);
        self.trim();
    }

    pub fn append(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.histlen += bytes.len() as u64;
        self.chunks.push_back(bytes);
        self.trim();
    }

    fn trim(&mut self) {
        while let Some(front) = self.chunks.front() {
            let len = front.len() as u64;
            if self.histlen - len < self.size {
                break;
            }
            self.histlen -= len;
            self.first += len;
            self.chunks.pop_front();
        }
    }

    /// Whether a replica asking for stream offset `from` (its processed
    /// offset + 1) can be served from here: anything from the first byte
    /// held up to "nothing missing".
    pub fn covers(&self, from: u64) -> bool {
        from >= self.first && from <= self.first + self.histlen
    }

    /// The bytes from stream offset `from` to the end (empty if `from` is
    /// the next byte). Call only if [`Backlog::covers`].
    pub fn from_offset(&self, from: u64) -> Vec<Bytes> {
        let mut skip = from.saturating_sub(self.first);
        let mut out = Vec::new();
        for c in &self.chunks {
            let len = c.len() as u64;
            if skip >= len {
                skip -= len;
                continue;
            }
            out.push(c.slice(skip as usize..));
            skip = 0;
        }
        out
    }
}
