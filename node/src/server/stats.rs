//! Server counters for INFO: connections, network bytes, per-command and
//! per-error counts, and the instantaneous rates redis samples every 100 ms.

use crate::commands::CallStats;

/// redis `STATS_METRIC_SAMPLES`: the rate is the mean of the last 16 samples.
const SAMPLES: usize = 16;

/// One instantaneous metric (redis `inst_metric`): a rate per second,
/// sampled from a growing counter.
#[derive(Clone, Debug, Default)]
pub struct InstMetric {
    samples: [u64; SAMPLES],
    idx: usize,
    last_time_ms: u64,
    last_count: u64,
}

impl InstMetric {
    /// redis `trackInstantaneousMetric`.
    pub fn track(&mut self, now_ms: u64, count: u64) {
        let t = now_ms.saturating_sub(self.last_time_ms);
        let ops = count.saturating_sub(self.last_count);
        self.samples[self.idx] = (ops * 1000).checked_div(t).unwrap_or(0);
        self.idx = (self.idx + 1) % SAMPLES;
        self.last_time_ms = now_ms;
        self.last_count = count;
    }

    /// redis `getInstantaneousMetric`.
    pub fn get(&self) -> u64 {
        self.samples.iter().sum::<u64>() / SAMPLES as u64
    }
}

/// Counters for INFO.
#[derive(Default)]
pub struct Stats {
    /// total_connections_received.
    pub total_connections: u64,
    /// rejected_connections (maxclients).
    pub rejected_connections: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    /// total_reads_processed / total_writes_processed.
    pub reads_processed: u64,
    pub writes_processed: u64,
    /// commandstats, errorstats, total_commands_processed, total_error_replies.
    pub calls: CallStats,
    pub inst_ops: InstMetric,
    pub inst_input: InstMetric,
    pub inst_output: InstMetric,
    /// used_memory_peak.
    pub peak_memory: u64,
    pub start_ms: u64,
    pub start_mono_ms: u64,
    /// INFO persistence's AOF fields, refreshed when the AOF changes.
    pub aof: crate::persist::AofInfo,
    /// BGREWRITEAOF asked for a rewrite (started at the end of the pass).
    pub aof_rewrite_requested: bool,
    /// dump.rdb: saves, BGSAVE requests, INFO persistence's RDB fields.
    pub rdb: super::rdb::RdbStats,
    /// DEBUG SET-ACTIVE-EXPIRE 0 turns the expiry sweep off.
    pub active_expire_off: bool,
    /// SHUTDOWN asked the server to stop: `Some(save)` (SAVE / NOSAVE / as configured).
    pub shutdown: Option<Option<bool>>,
    /// The Lua engine (EVAL script cache, FUNCTION libraries), created on
    /// first use. Kept here because `HostCtx` lends `Stats` to commands.
    pub scripts: Option<Box<crate::commands::scripting::Engine>>,
}

impl Stats {
    /// The 100 ms sampling of serverCron.
    pub fn track_metrics(&mut self, now_ms: u64) {
        self.inst_ops.track(now_ms, self.calls.total_commands);
        self.inst_input.track(now_ms, self.net_input_bytes);
        self.inst_output.track(now_ms, self.net_output_bytes);
    }

    /// CONFIG RESETSTAT (redis `resetServerStats` + `resetCommandTableStats`
    /// + `resetErrorTableStats`).
    pub fn reset(&mut self) {
        self.total_connections = 0;
        self.rejected_connections = 0;
        self.net_input_bytes = 0;
        self.net_output_bytes = 0;
        self.reads_processed = 0;
        self.writes_processed = 0;
        self.calls.reset();
        self.inst_ops = InstMetric::default();
        self.inst_input = InstMetric::default();
        self.inst_output = InstMetric::default();
        self.peak_memory = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instantaneous_rate_is_the_mean_of_sixteen_samples() {
        let mut m = InstMetric::default();
        m.track(1000, 0);
        // 100 ops every 100 ms = 1000/s, for 16 samples.
        for i in 1..=16 {
            m.track(1000 + i * 100, i * 100);
        }
        assert_eq!(m.get(), 1000);
        m.track(1000 + 17 * 100, 1600);
        assert_eq!(m.get(), 1000 * 15 / 16);
    }
}
