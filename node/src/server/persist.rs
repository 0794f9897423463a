//! The tokio side of the append-only file ([`crate::persist`]): loading it at
//! startup, writing its buffer at the end of every pass under the lock
//! (before that pass's replies go out), the once-a-second fsync off the
//! lock, and background rewrites.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;

use super::{now_ms, Node, Shared};
use crate::cluster::LogLevel;
use crate::persist::snapshot;
use crate::persist::{self, format::Tail, Aof, AofConfig, FsyncPolicy};

impl Node {
    /// Startup: replays the AOF (if `appendonly yes` and the file exists)
    /// and opens it for appending. Runs before any client is accepted.
    pub(super) fn open_aof(&mut self) -> Result<()> {
        let cfg = AofConfig::from_config(&self.config);
        if !cfg.enabled {
            return Ok(());
        }
        let path = cfg.path();
        let name = path.display().to_string();
        let start = Instant::now();
        let loaded = match persist::load(&path, cfg.load_truncated) {
            Ok(l) => l,
            Err(e) => {
                self.log(LogLevel::Warning, &e.to_string());
                return Err(e.into());
            }
        };
        if let Some(loaded) = loaded {
            match loaded.parsed.tail {
                Tail::Clean => {}
                Tail::Truncated => {
                    self.log(
                        LogLevel::Warning,
                        &format!("!!! Warning: short read while loading the AOF file {name}!!!"),
                    );
                    self.log(
                        LogLevel::Warning,
                        &format!(
                            "!!! Truncating the AOF {name} at offset {} !!!",
                            loaded.parsed.valid_len
                        ),
                    );
                    self.log(
                        LogLevel::Warning,
                        &format!("AOF {name} loaded anyway because aof-load-truncated is enabled"),
                    );
                }
                Tail::OpenMulti => {
                    self.log(
                        LogLevel::Warning,
                        &format!("Revert incomplete MULTI/EXEC transaction in AOF file {name}"),
                    );
                    self.log(
                        LogLevel::Warning,
                        &format!(
                            "!!! Truncating the AOF {name} at offset {} !!!",
                            loaded.parsed.valid_len
                        ),
                    );
                }
            }
            let count = loaded.parsed.commands.len();
            for args in loaded.parsed.commands {
                self.replay(args);
            }
            self.log(
                LogLevel::Notice,
                &format!(
                    "DB loaded from append only file: {:.3} seconds",
                    start.elapsed().as_secs_f64()
                ),
            );
            self.log(
                LogLevel::Verbose,
                &format!(
                    "AOF {name}: {count} commands, {} keys, {} of {} bytes valid",
                    self.db.len(),
                    loaded.parsed.valid_len,
                    loaded.file_len
                ),
            );
        }
        match Aof::open(&cfg) {
            Ok(aof) => {
                self.aof = Some(aof);
                self.refresh_aof_info();
                Ok(())
            }
            Err(e) => {
                self.log(LogLevel::Warning, &e.to_string());
                Err(e.into())
            }
        }
    }

    /// One command from the file, applied as a replica applies its master's
    /// (no redirection, no expiry of existing keys).
    fn replay(&mut self, args: Vec<Bytes>) {
        let name =
            String::from_utf8_lossy(args.first().map(|a| &a[..]).unwrap_or_default()).into_owned();
        if let Some(e) = self.apply_from_master(args) {
            self.log(
                LogLevel::Warning,
                &format!("AOF command '{name}' failed while loading: {e}"),
            );
        }
    }

    /// Appends commands applied without going through the replication
    /// stream (a replica's applied stream, its slot deletions).
    pub(super) fn aof_append(&mut self, args: &[Bytes]) {
        if let Some(aof) = self.aof.as_mut() {
            aof.append_command(args);
        }
    }

    /// The last AOF write failed: writes are refused until one succeeds
    /// (redis `-MISCONF`), so nothing is acknowledged that is not on file.
    pub(super) fn aof_write_error(&self) -> Option<String> {
        self.aof
            .as_ref()
            .and_then(|a| a.write_error())
            .map(|e| format!("MISCONF Errors writing to the AOF file: {e}"))
    }

    /// Writes the AOF buffer (end of every pass under the lock, so before
    /// the pass's replies are sent).
    pub(super) fn flush_aof(&mut self) {
        let Some(aof) = self.aof.as_mut() else {
            return;
        };
        if !aof.has_pending() {
            return;
        }
        let had_error = aof.write_error().is_some();
        let policy = aof.policy();
        match aof.flush() {
            Ok(()) => {
                if had_error {
                    self.log(
                        LogLevel::Warning,
                        "AOF write error looks solved, Redis can write again.",
                    );
                }
            }
            Err(e) => {
                if policy == FsyncPolicy::Always {
                    self.log(
                        LogLevel::Warning,
                        &format!("Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting... ({e})"),
                    );
                    std::process::exit(1);
                }
                if !had_error {
                    self.log(
                        LogLevel::Warning,
                        &format!("Error writing to the AOF file: {e}"),
                    );
                }
            }
        }
        self.refresh_aof_info();
    }

    fn refresh_aof_info(&mut self) {
        if let Some(aof) = self.aof.as_ref() {
            self.stats.aof = aof.info();
        }
    }

    /// A full resync replaced the data set: the file gets `FLUSHALL` and the
    /// new data at once (so it is right from this moment, whatever happens
    /// to the rewrite), then a rewrite compacts it to just the new data.
    pub(super) fn aof_after_full_sync(&mut self, shared: &Arc<Shared>) {
        if self.aof.is_none() {
            return;
        }
        let snap = snapshot::encode(&mut self.db, now_ms()).bytes;
        if let Some(aof) = self.aof.as_mut() {
            aof.append_command(&[Bytes::from_static(b"FLUSHALL")]);
            aof.append_encoded(&snap);
        }
        self.start_aof_rewrite(shared, Some(snap));
    }

    /// BGREWRITEAOF: snapshot now, write it in the background.
    pub(super) fn start_aof_rewrite(&mut self, shared: &Arc<Shared>, snap: Option<Vec<u8>>) {
        let now = now_ms();
        let Some(aof) = self.aof.as_mut() else {
            return;
        };
        if aof.rewrite_in_progress() {
            aof.schedule_rewrite();
            return;
        }
        // Whatever is buffered belongs before the snapshot point: write it
        // now so the diff starts clean.
        self.flush_aof();
        let snap = snap.unwrap_or_else(|| snapshot::encode(&mut self.db, now).bytes);
        let Some(job) = self.aof.as_mut().and_then(|a| a.start_rewrite(snap, now)) else {
            return;
        };
        self.log(
            LogLevel::Notice,
            &format!(
                "Background append only file rewriting started by pid {}",
                std::process::id()
            ),
        );
        self.refresh_aof_info();
        let shared = shared.clone();
        tokio::spawn(async move {
            let written = tokio::task::spawn_blocking(move || persist::write_snapshot(job))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            let mut n = shared.node.lock();
            let Some(aof) = n.aof.as_mut() else {
                return;
            };
            match aof.finish_rewrite(written, now_ms()) {
                Ok(size) => {
                    n.log(
                        LogLevel::Notice,
                        "Background AOF rewrite terminated with success",
                    );
                    n.log(
                        LogLevel::Notice,
                        &format!("Background AOF rewrite finished successfully ({size} bytes)"),
                    );
                }
                Err(e) => n.log(
                    LogLevel::Warning,
                    &format!("Background AOF rewrite terminated with error: {e}"),
                ),
            }
            n.refresh_aof_info();
        });
    }

    /// The AOF part of serverCron: `CONFIG SET appendonly` takes effect, and
    /// automatic rewrites start when the file grew enough.
    pub(super) fn aof_cron(&mut self, shared: &Arc<Shared>) {
        let want = self.config.get("appendonly") == Some("yes");
        match (want, self.aof.is_some()) {
            (true, false) => {
                // redis `startAppendOnly`: the file starts as a rewrite of
                // the current data set.
                let cfg = AofConfig::from_config(&self.config);
                match Aof::open(&cfg) {
                    Ok(aof) => {
                        self.aof = Some(aof);
                        self.start_aof_rewrite(shared, None);
                    }
                    Err(e) => {
                        self.log(LogLevel::Warning, &e.to_string());
                        let _ = self.config.set("appendonly", "no");
                    }
                }
                return;
            }
            (false, true) => {
                self.flush_aof();
                self.aof = None;
                self.stats.aof = Default::default();
                return;
            }
            _ => {}
        }
        let policy = FsyncPolicy::parse(self.config.get("appendfsync").unwrap_or_default());
        let Some(aof) = self.aof.as_mut() else {
            return;
        };
        aof.set_policy(policy);
        if aof.wants_rewrite() {
            let info = aof.info();
            if info.rewrite_scheduled {
                // A rewrite asked for while another ran (a full resync).
                self.start_aof_rewrite(shared, None);
                return;
            }
            let growth =
                (info.current_size.saturating_sub(info.base_size)) * 100 / info.base_size.max(1);
            self.log(
                LogLevel::Notice,
                &format!("Starting automatic rewriting of AOF on {growth}% growth"),
            );
            self.start_aof_rewrite(shared, None);
        }
    }
}

impl Node {
    /// SIGTERM: everything written and fsynced before the process exits.
    pub(super) fn aof_shutdown(&mut self) {
        let Some(result) = self.aof.as_mut().map(|a| a.sync_all()) else {
            return;
        };
        self.log(LogLevel::Notice, "Calling fsync() on the AOF file.");
        if let Err(e) = result {
            self.log(
                LogLevel::Warning,
                &format!("Error syncing the AOF file on shutdown: {e}"),
            );
        }
    }
}

/// `appendfsync everysec`: once a second, fsync what was written, off the
/// node lock (the lock is held only to pick up the file).
pub(super) async fn fsync_loop(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let file = shared.node.lock().aof.as_mut().and_then(|a| a.take_fsync());
        let Some(file) = file else {
            continue;
        };
        let synced = tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        if let Err(e) = synced {
            let mut n = shared.node.lock();
            if let Some(a) = n.aof.as_mut() {
                a.fsync_failed();
            }
            n.log(
                LogLevel::Warning,
                &format!("Error syncing the AOF file: {e}"),
            );
        }
    }
}
