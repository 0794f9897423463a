//! Append-only-file persistence (redis `appendonly yes`).
//!
//! **What is written.** Every write the node applies, in the order applied,
//! as the same RESP commands that make up the replication stream (a master
//! appends what it feeds to its replicas, a replica what it applies from
//! its master), so there is one definition of "a write" and the file
//! replays through the same [`crate::commands::apply_replicated`] path a
//! replica uses. Format: [`format`].
//!
//! **Where.** One file, `<dir>/<appenddirname>/<appendfilename>` (defaults
//! `appendonlydir/appendonly.aof`). It is hearsay's own single-file layout,
//! not redis 7's manifest + base/incr files, so redis-server cannot read it
//! (and will not mistake it for its own: redis names its files
//! `appendonly.aof.N.{base,incr}.*`).
//!
//! **When it reaches the kernel.** Appends go to an in-memory buffer; the
//! shell calls [`Aof::flush`] at the end of every pass under the node lock,
//! before any reply of that pass is sent (redis writes its AOF buffer in
//! `beforeSleep`, before replies go out). So an acknowledged write is in
//! the page cache and survives SIGKILL. Then per `appendfsync`: `always`
//! fsyncs inside `flush` (before the reply), `everysec` leaves it to a
//! once-a-second background fsync (an OS crash may lose about a second),
//! `no` leaves it to the kernel.
//!
//! **Rewrite.** The file only grows, so it is rewritten as the commands that
//! rebuild the current data set ([`snapshot`]), redis's
//! BGREWRITEAOF: the snapshot is taken under the lock and written to a temp
//! file in the background; every append made meanwhile is also kept in a
//! diff buffer, which is appended to the temp file before it is renamed over
//! the old one. Until the rename, the old file keeps receiving every write,
//! so a crash at any point loads a complete history.
//!
//! This module is plain std I/O and holds no locks or tasks; the tokio glue
//! (the fsync timer, the rewrite task) is in `server/persist.rs`.

pub mod format;
pub mod snapshot;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::config::Config;
use crate::replication::protocol::encode_command;

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    Always,
    EverySec,
    No,
}

impl FsyncPolicy {
    pub fn parse(text: &str) -> FsyncPolicy {
        match text {
            "always" => FsyncPolicy::Always,
            "no" => FsyncPolicy::No,
            _ => FsyncPolicy::EverySec,
        }
    }
}

/// The options that shape the AOF, read from [`Config`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AofConfig {
    pub enabled: bool,
    /// The directory holding the file, relative to `dir` (the process runs
    /// chdir'ed into `dir`, as redis does).
    pub dirname: PathBuf,
    pub filename: String,
    pub fsync: FsyncPolicy,
    /// `auto-aof-rewrite-percentage`: 0 turns automatic rewrites off.
    pub rewrite_percentage: u64,
    /// `auto-aof-rewrite-min-size` in bytes.
    pub rewrite_min_size: u64,
    /// `aof-load-truncated`.
    pub load_truncated: bool,
}

impl AofConfig {
    pub fn from_config(config: &Config) -> AofConfig {
        let text = |name: &str| config.get(name).unwrap_or_default().to_string();
        AofConfig {
            enabled: text("appendonly") == "yes",
            dirname: PathBuf::from(text("appenddirname")),
            filename: text("appendfilename"),
            fsync: FsyncPolicy::parse(&text("appendfsync")),
            rewrite_percentage: text("auto-aof-rewrite-percentage").parse().unwrap_or(100),
            rewrite_min_size: format::parse_memory(&text("auto-aof-rewrite-min-size"))
                .unwrap_or(64 * 1024 * 1024),
            load_truncated: text("aof-load-truncated") != "no",
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dirname.join(&self.filename)
    }
}

/// Why the AOF could not be opened, loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum AofError {
    #[error("Can't open the append-only file {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("Can't read the append-only file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("Bad file format reading the append only file {path}: make a backup of your AOF file, then fix or remove it ({source})")]
    Format {
        path: String,
        source: format::FormatError,
    },
    #[error("Unexpected end of file reading the append only file {path} (set aof-load-truncated yes to load it anyway)")]
    Truncated { path: String },
    #[error("Error truncating the AOF file {path}: {source}")]
    Truncate {
        path: String,
        source: std::io::Error,
    },
}

/// A file read at startup.
#[derive(Debug)]
pub struct Loaded {
    pub parsed: format::Parsed,
    /// The file's size before any truncation.
    pub file_len: u64,
}

/// Reads and parses the file at `path`; `None` if it does not exist. A cut
/// tail is truncated away on disk (when allowed), so that appends continue
/// right after the last complete command.
pub fn load(path: &Path, load_truncated: bool) -> Result<Option<Loaded>, AofError> {
    let name = path.display().to_string();
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(AofError::Open { path: name, source }),
    };
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|source| AofError::Read {
            path: name.clone(),
            source,
        })?;
    let file_len = data.len() as u64;
    let parsed = format::parse(&Bytes::from(data)).map_err(|source| AofError::Format {
        path: name.clone(),
        source,
    })?;
    if parsed.tail != format::Tail::Clean {
        if !load_truncated {
            return Err(AofError::Truncated { path: name });
        }
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|source| AofError::Truncate {
                path: name.clone(),
                source,
            })?;
        f.set_len(parsed.valid_len)
            .and_then(|()| f.sync_all())
            .map_err(|source| AofError::Truncate { path: name, source })?;
    }
    Ok(Some(Loaded { parsed, file_len }))
}

/// Counters and states for INFO persistence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AofInfo {
    pub enabled: bool,
    pub rewrite_in_progress: bool,
    pub rewrite_scheduled: bool,
    pub rewrites: u64,
    pub last_rewrite_ok: bool,
    pub last_rewrite_time_s: i64,
    pub last_write_ok: bool,
    pub current_size: u64,
    pub base_size: u64,
    pub buffer_length: u64,
}

/// A rewrite that has been started: the snapshot to write and where.
pub struct RewriteJob {
    pub temp: PathBuf,
    pub snapshot: Vec<u8>,
}

/// The open AOF and its buffers.
pub struct Aof {
    path: PathBuf,
    /// Shared with the background fsync, which must not need the node lock
    /// to reach the file (`&File` implements `Write`, so no `mut` is needed).
    file: Arc<File>,
    policy: FsyncPolicy,
    /// Appended but not yet written.
    buf: Vec<u8>,
    /// File size (what has been written).
    size: u64,
    /// Size right after the last rewrite or at startup (redis
    /// `aof_rewrite_base_size`), the base of the growth percentage.
    base_size: u64,
    /// Written since the last fsync.
    dirty: bool,
    /// `Some` while a rewrite runs: everything appended since its snapshot.
    rewrite_diff: Option<Vec<u8>>,
    rewrite_started_ms: u64,
    /// Another rewrite is wanted once the running one ends.
    rewrite_scheduled: bool,
    /// The last write error, until a write succeeds again.
    write_error: Option<String>,
    info: AofInfo,
    rewrite_percentage: u64,
    rewrite_min_size: u64,
    /// Distinguishes temp files of successive rewrites.
    rewrite_seq: u64,
}

impl Aof {
    /// Opens (creating the directory and file as needed) for appending.
    pub fn open(cfg: &AofConfig) -> Result<Aof, AofError> {
        let path = cfg.path();
        let name = path.display().to_string();
        std::fs::create_dir_all(&cfg.dirname).map_err(|source| AofError::Open {
            path: cfg.dirname.display().to_string(),
            source,
        })?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| AofError::Open {
                path: name.clone(),
                source,
            })?;
        let size = file
            .metadata()
            .map_err(|source| AofError::Open { path: name, source })?
            .len();
        Ok(Aof {
            path,
            file: Arc::new(file),
            policy: cfg.fsync,
            buf: Vec::with_capacity(64 * 1024),
            size,
            base_size: size,
            dirty: false,
            rewrite_diff: None,
            rewrite_started_ms: 0,
            rewrite_scheduled: false,
            write_error: None,
            info: AofInfo {
                enabled: true,
                last_rewrite_ok: true,
                last_write_ok: true,
                last_rewrite_time_s: -1,
                ..AofInfo::default()
            },
            rewrite_percentage: cfg.rewrite_percentage,
            rewrite_min_size: cfg.rewrite_min_size,
            rewrite_seq: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn policy(&self) -> FsyncPolicy {
        self.policy
    }

    /// `CONFIG SET appendfsync`: applies from the next write.
    pub fn set_policy(&mut self, policy: FsyncPolicy) {
        if policy != self.policy {
            // Switching to `everysec`: let its next tick sync whatever
            // an earlier `no` left unsynced.
            self.dirty = policy == FsyncPolicy::EverySec;
            self.policy = policy;
        }
    }

    /// Shutdown: write and fsync everything (redis does the same on
    /// SIGTERM before exiting).
    pub fn sync_all(&mut self) -> Result<(), std::io::Error> {
        self.flush()?;
        self.file.sync_data()?;
        self.dirty = false;
        Ok(())
    }

    /// Appends one command.
    pub fn append_command(&mut self, args: &[Bytes]) {
        let start = self.buf.len();
        encode_command(args, &mut self.buf);
        if let Some(diff) = self.rewrite_diff.as_mut() {
            diff.extend_from_slice(&self.buf[start..]);
        }
    }

    /// Appends already-encoded commands (the replication stream's bytes).
    pub fn append_encoded(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if let Some(diff) = self.rewrite_diff.as_mut() {
            diff.extend_from_slice(bytes);
        }
    }

    pub fn has_pending(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The last write error, if the last write failed.
    pub fn write_error(&self) -> Option<&str> {
        self.write_error.as_deref()
    }

    /// Writes the buffer to the file (and fsyncs under `always`). On error
    /// the buffer is kept for the next try, and a partial write is cut
    /// back off the file, so that the file never holds half a command
    /// followed by a retried whole one (redis does the same `ftruncate`).
    pub fn flush(&mut self) -> Result<(), std::io::Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = (&*self.file).write_all(&self.buf).and_then(|()| {
            if self.policy == FsyncPolicy::Always {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        match result {
            Ok(()) => {
                self.size += self.buf.len() as u64;
                self.buf.clear();
                // Don't keep a huge buffer after one big write.
                if self.buf.capacity() > 4 * 1024 * 1024 {
                    self.buf = Vec::with_capacity(64 * 1024);
                }
                self.dirty = self.policy != FsyncPolicy::Always;
                self.write_error = None;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.size);
                self.write_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// For the once-a-second fsync: the file to sync if anything was
    /// written since the last one (the sync itself runs off the lock).
    pub fn take_fsync(&mut self) -> Option<Arc<File>> {
        if self.policy != FsyncPolicy::EverySec || !self.dirty {
            return None;
        }
        self.dirty = false;
        Some(self.file.clone())
    }

    /// A background fsync failed: try again next time.
    pub fn fsync_failed(&mut self) {
        self.dirty = true;
    }

    /// redis `auto-aof-rewrite-*`: the file passed the minimum size and grew
    /// by the percentage since the last rewrite.
    pub fn wants_rewrite(&self) -> bool {
        if self.rewrite_diff.is_some() {
            return false;
        }
        if self.rewrite_scheduled {
            return true;
        }
        if self.rewrite_percentage == 0 || self.size < self.rewrite_min_size {
            return false;
        }
        let base = self.base_size.max(1);
        (self.size - self.base_size.min(self.size)) * 100 / base >= self.rewrite_percentage
    }

    pub fn rewrite_in_progress(&self) -> bool {
        self.rewrite_diff.is_some()
    }

    /// Asks for a rewrite after the running one (or at the next check).
    pub fn schedule_rewrite(&mut self) {
        self.rewrite_scheduled = true;
    }

    /// Starts a rewrite from `snapshot`, the data set as commands at this
    /// instant; every append from now on is also kept for the new file.
    /// `None` if one is already running (it is then scheduled to follow).
    pub fn start_rewrite(&mut self, snapshot: Vec<u8>, now_ms: u64) -> Option<RewriteJob> {
        if self.rewrite_diff.is_some() {
            self.rewrite_scheduled = true;
            return None;
        }
        self.rewrite_scheduled = false;
        self.rewrite_seq += 1;
        self.rewrite_diff = Some(Vec::new());
        self.rewrite_started_ms = now_ms;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let temp = dir.join(format!(
            "temp-rewriteaof-{}-{}.aof",
            std::process::id(),
            self.rewrite_seq
        ));
        Some(RewriteJob { temp, snapshot })
    }

    /// Ends a rewrite whose snapshot was written (and fsynced) to `temp`:
    /// appends the diff, renames the temp file over the AOF and continues
    /// appending to it. Called under the node lock, so no append can slip
    /// between the diff and the switch. On error the old file stays.
    pub fn finish_rewrite(
        &mut self,
        job_result: Result<PathBuf, std::io::Error>,
        now_ms: u64,
    ) -> Result<u64, std::io::Error> {
        let Some(diff) = self.rewrite_diff.take() else {
            return Err(std::io::Error::other("no rewrite in progress"));
        };
        self.info.last_rewrite_time_s =
            (now_ms.saturating_sub(self.rewrite_started_ms) / 1000) as i64;
        let result = job_result.and_then(|temp| {
            // Whatever sits in the buffer is already in `diff` and will also
            // go to the old file at the next flush: write it out first, so
            // the new file's content is exactly old-snapshot + diff.
            if let Err(e) = self.flush() {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
            let switched = (|| {
                let mut f = OpenOptions::new().append(true).open(&temp)?;
                f.write_all(&diff)?;
                if self.policy == FsyncPolicy::Always {
                    f.sync_data()?;
                }
                let size = f.metadata()?.len();
                std::fs::rename(&temp, &self.path)?;
                Ok((f, size))
            })();
            match switched {
                Ok((f, size)) => {
                    self.file = Arc::new(f);
                    self.size = size;
                    self.base_size = size;
                    // The diff part is not yet synced (unless `always`).
                    self.dirty = self.policy == FsyncPolicy::EverySec;
                    if let Some(dir) = self.path.parent() {
                        // The rename itself becomes durable with the directory.
                        if let Ok(d) = File::open(if dir.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            dir
                        }) {
                            let _ = d.sync_all();
                        }
                    }
                    Ok(size)
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&temp);
                    Err(e)
                }
            }
        });
        self.info.last_rewrite_ok = result.is_ok();
        if result.is_ok() {
            self.info.rewrites += 1;
        }
        result
    }

    pub fn info(&self) -> AofInfo {
        AofInfo {
            rewrite_in_progress: self.rewrite_diff.is_some(),
            rewrite_scheduled: self.rewrite_scheduled,
            last_write_ok: self.write_error.is_none(),
            current_size: self.size,
            base_size: self.base_size,
            buffer_length: self.buf.len() as u64,
            ..self.info.clone()
        }
    }
}

/// Writes a rewrite's snapshot to its temp file and fsyncs it (run off the
/// lock, on a blocking thread). Returns the temp path for `finish_rewrite`.
pub fn write_snapshot(job: RewriteJob) -> Result<PathBuf, std::io::Error> {
    let result = (|| {
        let mut f = File::create(&job.temp)?;
        f.write_all(&job.snapshot)?;
        f.sync_all()?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(job.temp),
        Err(e) => {
            let _ = std::fs::remove_file(&job.temp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, fsync: FsyncPolicy) -> AofConfig {
        AofConfig {
            enabled: true,
            dirname: dir.join("appendonlydir"),
            filename: "appendonly.aof".into(),
            fsync,
            rewrite_percentage: 100,
            rewrite_min_size: 100,
            load_truncated: true,
        }
    }

    fn args(parts: &[&str]) -> Vec<Bytes> {
        parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect()
    }

    fn load_cmds(path: &Path) -> Vec<Vec<Bytes>> {
        load(path, true).unwrap().unwrap().parsed.commands
    }

    #[test]
    fn appends_reach_the_file_only_on_flush() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), FsyncPolicy::Always);
        let mut aof = Aof::open(&c).unwrap();
        aof.append_command(&args(&["SET", "a", "1"]));
        assert!(load_cmds(&c.path()).is_empty());
        aof.flush().unwrap();
        assert_eq!(load_cmds(&c.path()), vec![args(&["SET", "a", "1"])]);
        assert_eq!(
            aof.info().current_size,
            std::fs::metadata(c.path()).unwrap().len()
        );
    }

    #[test]
    fn missing_file_loads_as_none_and_truncated_tail_is_cut_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), FsyncPolicy::No);
        assert!(load(&c.path(), true).unwrap().is_none());
        let mut aof = Aof::open(&c).unwrap();
        aof.append_command(&args(&["SET", "a", "1"]));
        aof.flush().unwrap();
        let good = std::fs::metadata(c.path()).unwrap().len();
        drop(aof);
        let mut f = OpenOptions::new().append(true).open(c.path()).unwrap();
        let cut: &[u8] = b"*3\r\n$3\r\nSET\r\n$1\r\nb";
        f.write_all(cut).unwrap();
        drop(f);
        assert!(matches!(
            load(&c.path(), false),
            Err(AofError::Truncated { .. })
        ));
        let l = load(&c.path(), true).unwrap().unwrap();
        assert_eq!(l.parsed.commands, vec![args(&["SET", "a", "1"])]);
        assert_eq!(l.file_len, good + cut.len() as u64);
        assert_eq!(std::fs::metadata(c.path()).unwrap().len(), good);
    }

    #[test]
    fn rewrite_keeps_the_writes_made_while_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), FsyncPolicy::EverySec);
        let mut aof = Aof::open(&c).unwrap();
        for i in 0..50 {
            aof.append_command(&args(&["INCR", "n"]));
            aof.append_command(&args(&["SET", "k", &i.to_string()]));
        }
        aof.flush().unwrap();
        assert!(aof.wants_rewrite());
        let mut snap = Vec::new();
        encode_command(&args(&["SET", "n", "50"]), &mut snap);
        encode_command(&args(&["SET", "k", "49"]), &mut snap);
        let job = aof.start_rewrite(snap, 0).unwrap();
        assert!(aof.start_rewrite(Vec::new(), 0).is_none(), "one at a time");
        // Writes during the rewrite: one flushed, one still buffered.
        aof.append_command(&args(&["INCR", "n"]));
        aof.flush().unwrap();
        aof.append_command(&args(&["SET", "late", "x"]));
        let temp = write_snapshot(job);
        aof.finish_rewrite(temp, 0).unwrap();
        aof.append_command(&args(&["SET", "after", "y"]));
        aof.flush().unwrap();
        assert_eq!(
            load_cmds(&c.path()),
            vec![
                args(&["SET", "n", "50"]),
                args(&["SET", "k", "49"]),
                args(&["INCR", "n"]),
                args(&["SET", "late", "x"]),
                args(&["SET", "after", "y"]),
            ]
        );
        let info = aof.info();
        assert!(!info.rewrite_in_progress && info.rewrites == 1);
        assert!(
            info.rewrite_scheduled,
            "the refused start asked for another"
        );
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(&c.dirname)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("appendonly.aof")]);
    }

    #[test]
    fn failed_rewrite_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), FsyncPolicy::No);
        let mut aof = Aof::open(&c).unwrap();
        aof.append_command(&args(&["SET", "a", "1"]));
        aof.flush().unwrap();
        let _job = aof.start_rewrite(Vec::new(), 0).unwrap();
        aof.append_command(&args(&["SET", "b", "2"]));
        assert!(aof
            .finish_rewrite(Err(std::io::Error::other("disk on fire")), 0)
            .is_err());
        aof.flush().unwrap();
        assert_eq!(
            load_cmds(&c.path()),
            vec![args(&["SET", "a", "1"]), args(&["SET", "b", "2"])]
        );
        assert!(!aof.info().last_rewrite_ok);
    }

    #[test]
    fn growth_rule_follows_the_percentage_over_the_base() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path(), FsyncPolicy::No);
        c.rewrite_min_size = 10;
        let mut aof = Aof::open(&c).unwrap();
        aof.append_command(&args(&["SET", "a", "1"]));
        aof.flush().unwrap();
        // Base 0 at open: any growth past the minimum counts.
        assert!(aof.wants_rewrite());
        let size = aof.info().current_size;
        drop(aof);
        let mut aof = Aof::open(&c).unwrap();
        assert_eq!(aof.info().base_size, size);
        assert!(!aof.wants_rewrite());
        while aof.info().current_size < 2 * size {
            aof.append_command(&args(&["SET", "a", "1"]));
            aof.flush().unwrap();
        }
        assert!(aof.wants_rewrite());
        c.rewrite_percentage = 0;
        let aof = Aof::open(&c).unwrap();
        assert!(!aof.wants_rewrite());
    }
}
