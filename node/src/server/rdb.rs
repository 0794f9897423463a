//! `dump.rdb` (redis's RDB persistence): loading it at startup when the AOF
//! is off, SAVE and BGSAVE, the `save` points, and the save at shutdown.
//! The snapshot is encoded under the node lock (hearsay has no fork); the
//! file is written, fsynced and renamed into place off the lock for BGSAVE.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;

use super::{now_ms, Node, Shared};
use crate::cluster::LogLevel;
use crate::rdb;

/// INFO persistence's RDB fields and the save-point bookkeeping.
#[derive(Clone, Debug, Default)]
pub struct RdbStats {
    /// Unix seconds of the last successful save (startup time at first,
    /// as redis's `lastsave`).
    pub last_save_s: u64,
    /// `Db::dirty()` at the last successful save.
    pub dirty_at_save: u64,
    pub bgsave_in_progress: bool,
    pub bgsave_started_ms: u64,
    pub last_bgsave_ok: bool,
    pub last_bgsave_time_s: i64,
    /// Unix ms of the last BGSAVE attempt (a failed one is retried after 5 s).
    pub last_bgsave_try_ms: u64,
    pub saves: u64,
    /// BGSAVE asked for a save (started at the end of the pass).
    pub bgsave_requested: bool,
    pub last_load_keys_loaded: u64,
    pub last_load_keys_expired: u64,
}

impl RdbStats {
    pub fn new(now_ms: u64) -> RdbStats {
        RdbStats {
            last_save_s: now_ms / 1000,
            last_bgsave_ok: true,
            last_bgsave_time_s: -1,
            ..RdbStats::default()
        }
    }
}

/// Writes `bytes` as the RDB at `path`: a temp file in the same directory,
/// fsynced, then renamed over the old one (redis `rdbSave`), so a crash
/// leaves either the old file or the new one.
pub(super) fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = dir.join(format!("temp-{}.rdb", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&temp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

impl Node {
    fn rdb_path(&self) -> PathBuf {
        PathBuf::from(self.config.get("dbfilename").unwrap_or("dump.rdb"))
    }

    /// The data set as an RDB file, with the replication position.
    fn rdb_snapshot(&self, now: u64) -> Vec<u8> {
        let info = self.repl.state.save_info();
        rdb::file::write_db(
            &self.db,
            self.config.rdb_options(),
            now / 1000,
            info.as_ref(),
        )
    }

    /// Startup with `appendonly no`: loads `dbfilename` if it exists (redis
    /// `loadDataFromDisk`). A file that fails to load stops the node, as it
    /// stops redis: serving an empty data set would look healthy and lose
    /// everything at the next save.
    pub(super) fn load_rdb_at_startup(&mut self) -> Result<()> {
        let path = self.rdb_path();
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                let text = format!("Fatal error loading the DB: {e}. Exiting.");
                self.log(LogLevel::Warning, &text);
                anyhow::bail!(text);
            }
        };
        let started = std::time::Instant::now();
        let replica = self.is_replica();
        let now = now_ms();
        // A master drops keys that expired while it was down; a replica
        // keeps them for its master's DEL (redis: `iAmMaster()`).
        let drop_expired = (!replica).then_some(now);
        match rdb::file::load_db(&data, drop_expired) {
            Ok((db, loaded)) => {
                if let Some(v) = &loaded.aux.redis_ver {
                    self.log(
                        LogLevel::Notice,
                        &format!("Loading RDB produced by version {v}"),
                    );
                }
                if let Some(ct) = loaded.aux.ctime {
                    let age = (now / 1000) as i64 - ct;
                    self.log(LogLevel::Notice, &format!("RDB age {} seconds", age.max(0)));
                }
                if loaded.functions_skipped > 0 {
                    self.log(
                        LogLevel::Warning,
                        &format!(
                            "{} function libraries skipped: hearsay-node runs no functions",
                            loaded.functions_skipped
                        ),
                    );
                }
                let old = self.db.replace_with(db, now);
                drop(old);
                self.stats.rdb.last_load_keys_loaded = loaded.keys;
                self.stats.rdb.last_load_keys_expired = loaded.expired_skipped;
                self.stats.rdb.dirty_at_save = self.db.dirty();
                self.log(
                    LogLevel::Notice,
                    &format!(
                        "Done loading RDB, keys loaded: {}, keys expired: {}.",
                        loaded.keys, loaded.expired_skipped
                    ),
                );
                self.log(
                    LogLevel::Notice,
                    &format!(
                        "DB loaded from disk: {:.3} seconds",
                        started.elapsed().as_secs_f64()
                    ),
                );
                if let Some(info) = loaded.aux.repl_info() {
                    self.repl.state.restore(&info, replica);
                }
                Ok(())
            }
            Err(e) => {
                let text = format!(
                    "Fatal error loading the DB {}: {e}. Exiting.",
                    path.display()
                );
                self.log(LogLevel::Warning, &text);
                anyhow::bail!(text)
            }
        }
    }

    /// SAVE: a synchronous save, under the lock. The error text is redis's.
    pub(super) fn rdb_save(&mut self) -> Result<(), String> {
        if self.stats.rdb.bgsave_in_progress {
            return Err("ERR Background save already in progress".into());
        }
        let now = now_ms();
        let bytes = self.rdb_snapshot(now);
        match write_file(&self.rdb_path(), &bytes) {
            Ok(()) => {
                self.log(LogLevel::Notice, "DB saved on disk");
                self.save_done(now, self.db.dirty());
                Ok(())
            }
            Err(e) => {
                self.log(LogLevel::Warning, &format!("Failed saving the DB: {e}"));
                Err("ERR".into())
            }
        }
    }

    fn save_done(&mut self, now: u64, dirty: u64) {
        let r = &mut self.stats.rdb;
        r.last_save_s = now / 1000;
        r.dirty_at_save = dirty;
        r.saves += 1;
    }

    /// BGSAVE: the snapshot now, the file in the background.
    pub(super) fn start_bgsave(&mut self, shared: &Arc<Shared>) {
        if self.stats.rdb.bgsave_in_progress {
            return;
        }
        let now = now_ms();
        let bytes = self.rdb_snapshot(now);
        let dirty = self.db.dirty();
        let path = self.rdb_path();
        self.stats.rdb.bgsave_in_progress = true;
        self.stats.rdb.bgsave_started_ms = now;
        self.stats.rdb.last_bgsave_try_ms = now;
        self.log(
            LogLevel::Notice,
            &format!("Background saving started by pid {}", std::process::id()),
        );
        let shared = shared.clone();
        tokio::spawn(async move {
            let written = tokio::task::spawn_blocking(move || write_file(&path, &bytes))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            let mut n = shared.node.lock();
            let end = now_ms();
            n.stats.rdb.bgsave_in_progress = false;
            n.stats.rdb.last_bgsave_time_s = (end.saturating_sub(now) / 1000) as i64;
            match written {
                Ok(()) => {
                    n.log(LogLevel::Notice, "DB saved on disk");
                    n.log(
                        LogLevel::Notice,
                        "Background saving terminated with success",
                    );
                    n.stats.rdb.last_bgsave_ok = true;
                    n.save_done(now, dirty);
                }
                Err(e) => {
                    n.log(
                        LogLevel::Warning,
                        &format!("Write error saving DB on disk: {e}"),
                    );
                    n.log(LogLevel::Warning, "Background saving error");
                    n.stats.rdb.last_bgsave_ok = false;
                }
            }
        });
    }

    /// The `save <seconds> <changes>` points (redis `serverCron`): a
    /// BGSAVE when enough changed in enough time; a failed one is retried
    /// after 5 s.
    pub(super) fn rdb_cron(&mut self, shared: &Arc<Shared>, now: u64) {
        if std::mem::take(&mut self.stats.rdb.bgsave_requested) {
            self.start_bgsave(shared);
        }
        if self.stats.rdb.bgsave_in_progress {
            return;
        }
        let changes = self.db.dirty().saturating_sub(self.stats.rdb.dirty_at_save);
        if changes == 0 {
            return;
        }
        let since_s = (now / 1000).saturating_sub(self.stats.rdb.last_save_s);
        let retry_ok = self.stats.rdb.last_bgsave_ok
            || now.saturating_sub(self.stats.rdb.last_bgsave_try_ms) > 5000;
        let points = save_points(self.config.get("save").unwrap_or_default());
        if let Some((secs, min)) = points
            .into_iter()
            .find(|&(secs, min)| changes >= min && since_s >= secs)
        {
            if retry_ok {
                self.log(
                    LogLevel::Notice,
                    &format!("{min} changes in {secs} seconds. Saving..."),
                );
                self.start_bgsave(shared);
            }
        }
    }

    /// At shutdown: a final synchronous save when save points are
    /// configured, or SHUTDOWN SAVE asked for one, and not SHUTDOWN NOSAVE
    /// (redis `prepareForShutdown`).
    pub(super) fn rdb_shutdown(&mut self, save: Option<bool>) {
        let points = !save_points(self.config.get("save").unwrap_or_default()).is_empty();
        if !save.unwrap_or(points) {
            return;
        }
        self.log(
            LogLevel::Notice,
            "Saving the final RDB snapshot before exiting.",
        );
        if self.rdb_save().is_err() {
            self.log(
                LogLevel::Warning,
                "Error trying to save the DB, can't exit.",
            );
        }
    }
}

/// `save "3600 1 300 100"` as (seconds, changes) pairs.
pub(super) fn save_points(text: &str) -> Vec<(u64, u64)> {
    let nums: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    nums.chunks_exact(2).map(|c| (c[0], c[1])).collect()
}
