//! The retransmission model, one place for every simulated TCP message (bus
//! and replication pipes, clients' requests and replies): a message is lost
//! on each attempt with the path's loss rate, attempt `j` leaves at
//! `sent + backoff(j)` (Linux's RTO, 200 ms doubling), and it arrives `base`
//! after the attempt that gets through. The losses are drawn at send time;
//! when the path's loss rate falls, the attempts still to come are drawn
//! again at the new rate (`Trip::retime`), so a message sent during a loss
//! fault gets through at the first retransmission after the fault ends.

use hearsay_workloads::rng::below;
use rand_chacha::ChaCha8Rng;

/// Linux's first retransmission timeout and its cap.
pub(super) const RTO_US: u64 = 200_000;
pub(super) const RTO_MAX_US: u64 = 120_000_000;

/// The time a message lost `k` times waits for its retransmissions.
pub(super) fn backoff(k: u32) -> u64 {
    RTO_US.saturating_mul((1u64 << k.min(40)) - 1)
}

/// Whether attempt `k` is still made (its RTO within Linux's cap).
fn retried(k: u32) -> bool {
    k < 20 && RTO_US << k <= RTO_MAX_US
}

/// Losses drawn at `loss_pct` for attempts from `from` on: the attempt that
/// gets through (or the last one made).
fn draw_from(net: &mut ChaCha8Rng, loss_pct: u32, from: u32) -> u32 {
    let loss = u64::from(loss_pct);
    let mut k = from;
    // The draw before the cap's check, as it always was (seeds' digests).
    while loss > 0 && below(net, 100) < loss && retried(k) {
        k += 1;
    }
    k
}

/// One message's way over a path.
#[derive(Clone, Copy, Debug)]
pub(super) struct Trip {
    pub sent: u64,
    /// The latency without retransmissions.
    pub base: u64,
    /// The attempt that gets through (= the losses before it).
    pub lost: u32,
}

impl Trip {
    /// A message sent at `now` with latency `base` over a path losing
    /// `loss_pct` percent of packets.
    pub fn draw(net: &mut ChaCha8Rng, now: u64, base: u64, loss_pct: u32) -> Trip {
        Trip {
            sent: now,
            base,
            lost: draw_from(net, loss_pct, 0),
        }
    }

    pub fn arrival(&self) -> u64 {
        self.sent + self.base + backoff(self.lost)
    }

    /// The path's loss rate fell to `loss_pct` at `now`: the attempts made
    /// before now stay lost, the ones still to come are drawn again at the
    /// new rate (never later than drawn at send time: the attempt that got
    /// through then still does). Whether the arrival moved.
    pub fn retime(&mut self, net: &mut ChaCha8Rng, now: u64, loss_pct: u32) -> bool {
        let mut j = 0;
        while j < self.lost && self.sent + backoff(j) < now {
            j += 1;
        }
        let j = draw_from(net, loss_pct, j).min(self.lost);
        let moved = j < self.lost;
        self.lost = j;
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_workloads::rng::stream;

    #[test]
    fn the_draw_stops_at_linuxs_cap() {
        let mut net = stream(1, "t");
        let t = Trip::draw(&mut net, 0, 100, 100);
        // 200 ms x 2^9 = 102.4 s is the last RTO within 120 s.
        assert_eq!(t.lost, 10);
        assert_eq!(t.arrival(), 100 + 204_600_000);
    }

    #[test]
    fn a_retime_keeps_the_attempts_already_made() {
        let mut net = stream(1, "t");
        let mut t = Trip::draw(&mut net, 0, 100, 100);
        // Attempts at 0, 0.2, 0.6 s were made; 1.4 s is the next.
        assert!(t.retime(&mut net, 1_000_000, 0));
        assert_eq!((t.lost, t.arrival()), (3, 1_400_100));
        // Exactly at an attempt's time: that attempt gets through.
        let mut t = Trip::draw(&mut net, 0, 100, 100);
        assert!(t.retime(&mut net, 600_000, 0));
        assert_eq!(t.lost, 2);
        // A message already through is left alone.
        let mut t = Trip::draw(&mut net, 0, 100, 0);
        assert!(!t.retime(&mut net, 1_000_000, 0));
        assert_eq!(t.lost, 0);
    }

    /// A fall to a lower non-zero rate draws the attempts to come again at
    /// that rate: about half get through at the next attempt at 50 %, and
    /// none arrives later than drawn at send time.
    #[test]
    fn a_fall_to_a_lower_rate_draws_the_rest_again() {
        let mut net = stream(2, "t");
        let (mut next, mut total) = (0, 0);
        for _ in 0..1000 {
            let mut t = Trip::draw(&mut net, 0, 100, 90);
            if t.lost <= 3 {
                continue;
            }
            let before = t.arrival();
            t.retime(&mut net, 1_000_000, 50);
            assert!(t.lost >= 3 && t.arrival() <= before);
            total += 1;
            next += usize::from(t.lost == 3);
        }
        assert!(total > 500, "{total}");
        let share = next as f64 / total as f64;
        assert!((0.4..0.6).contains(&share), "{share}");
    }
}
