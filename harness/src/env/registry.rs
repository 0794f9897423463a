//! The run registry: one JSON file per run listing everything the run created, written
//! *before* each resource is created. Teardown (normal end, error, Ctrl-C, panic) and
//! `hearsay clean` (after a crash or SIGKILL) both work from it, so nothing without our
//! prefix is ever touched and no PID we did not start is ever signalled.

use crate::env::sys;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where registry files live: `$HEARSAY_REGISTRY_DIR`, else `/run/hearsay`.
pub fn registry_dir() -> PathBuf {
    std::env::var_os("HEARSAY_REGISTRY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/hearsay"))
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// Is `s` a run prefix: `hs` and 6 lowercase hex digits, or `hsscale` and one
/// (`hearsay scale`'s clusters, so that they are told apart at a glance).
pub fn is_prefix(s: &str) -> bool {
    let scale = s
        .strip_prefix(SCALE_PREFIX)
        .is_some_and(|d| d.len() == 1 && d.bytes().all(is_hex));
    scale || (s.len() == 8 && s.starts_with("hs") && s.bytes().skip(2).all(is_hex))
}

/// The stem of `hearsay scale`'s prefixes.
pub const SCALE_PREFIX: &str = "hsscale";

/// A `hsscale?` prefix that no registry file in `dir` uses yet (at most 16 scale
/// runs at once on a machine).
pub fn new_scale_prefix(dir: &Path) -> Option<String> {
    let start = (hearsay_workloads::rng::os_seed() % 16) as usize;
    (0..16)
        .map(|i| format!("{SCALE_PREFIX}{:x}", (start + i) % 16))
        .find(|p| !dir.join(format!("{p}.json")).exists())
}

/// A fresh random run prefix.
pub fn new_prefix() -> String {
    let n = hearsay_workloads::rng::os_seed();
    format!("hs{:06x}", n & 0xff_ffff)
}

/// A process we started.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProcRecord {
    pub pid: u32,
    /// /proc start time, to never signal a recycled PID.
    pub start: Option<u64>,
    pub what: String,
}

/// An nft table we created (in the root namespace unless `netns` is set).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NftTable {
    pub family: String,
    pub name: String,
    #[serde(default)]
    pub netns: Option<String>,
}

/// Everything one run created.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunRecord {
    pub prefix: String,
    pub owner_pid: u32,
    pub owner_start: Option<u64>,
    pub run_dir: Option<PathBuf>,
    pub netns: Vec<String>,
    pub links: Vec<String>,
    pub nft_tables: Vec<NftTable>,
    pub procs: Vec<ProcRecord>,
    /// Temporary directories to remove (never the results folder).
    pub temp_dirs: Vec<PathBuf>,
}

/// What a teardown did, for the log and for tests.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CleanReport {
    pub prefix: String,
    pub killed: Vec<u32>,
    pub netns_removed: Vec<String>,
    pub links_removed: Vec<String>,
    pub nft_removed: Vec<String>,
    pub errors: Vec<String>,
}

/// Registry errors.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("registry {path}: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0} is not a run prefix (hs + 6 hex digits)")]
    BadPrefix(String),
}

/// A live run's registry.
pub struct Registry {
    path: PathBuf,
    rec: Mutex<RunRecord>,
    torn_down: Mutex<bool>,
}

/// Registries of live runs in this process, for the panic hook and signal handler.
static ACTIVE: Mutex<Vec<Arc<Registry>>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked mid-update; the record is
    // still the best information we have for cleanup.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// Creates the registry file for `prefix` in [`registry_dir`].
    pub fn create(prefix: &str) -> Result<Arc<Registry>, RegistryError> {
        Registry::create_in(&registry_dir(), prefix)
    }

    pub fn create_in(dir: &Path, prefix: &str) -> Result<Arc<Registry>, RegistryError> {
        if !is_prefix(prefix) {
            return Err(RegistryError::BadPrefix(prefix.to_string()));
        }
        std::fs::create_dir_all(dir).map_err(|source| RegistryError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let me = std::process::id();
        let reg = Arc::new(Registry {
            path: dir.join(format!("{prefix}.json")),
            rec: Mutex::new(RunRecord {
                prefix: prefix.to_string(),
                owner_pid: me,
                owner_start: sys::proc_start_time(me),
                ..Default::default()
            }),
            torn_down: Mutex::new(false),
        });
        reg.persist()?;
        lock(&ACTIVE).push(reg.clone());
        Ok(reg)
    }

    pub fn prefix(&self) -> String {
        lock(&self.rec).prefix.clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn record(&self) -> RunRecord {
        lock(&self.rec).clone()
    }

    fn persist(&self) -> Result<(), RegistryError> {
        let rec = lock(&self.rec).clone();
        write_record(&self.path, &rec)
    }

    fn update(&self, f: impl FnOnce(&mut RunRecord)) -> Result<(), RegistryError> {
        f(&mut lock(&self.rec));
        self.persist()
    }

    pub fn set_run_dir(&self, dir: &Path) -> Result<(), RegistryError> {
        self.update(|r| r.run_dir = Some(dir.to_path_buf()))
    }

    pub fn add_netns(&self, name: &str) -> Result<(), RegistryError> {
        self.update(|r| r.netns.push(name.to_string()))
    }

    pub fn add_link(&self, name: &str) -> Result<(), RegistryError> {
        self.update(|r| r.links.push(name.to_string()))
    }

    pub fn add_nft(&self, table: NftTable) -> Result<(), RegistryError> {
        self.update(|r| {
            if !r.nft_tables.contains(&table) {
                r.nft_tables.push(table)
            }
        })
    }

    pub fn add_temp_dir(&self, dir: &Path) -> Result<(), RegistryError> {
        self.update(|r| r.temp_dirs.push(dir.to_path_buf()))
    }

    pub fn add_proc(&self, pid: u32, what: &str) -> Result<(), RegistryError> {
        let start = sys::proc_start_time(pid);
        self.update(|r| {
            r.procs.push(ProcRecord {
                pid,
                start,
                what: what.to_string(),
            })
        })
    }

    /// Forgets a process that we reaped ourselves.
    pub fn remove_proc(&self, pid: u32) -> Result<(), RegistryError> {
        self.update(|r| r.procs.retain(|p| p.pid != pid))
    }

    /// Removes everything the run created and then the registry file. Idempotent.
    pub fn teardown(&self) -> CleanReport {
        let mut done = lock(&self.torn_down);
        if *done {
            return CleanReport {
                prefix: self.prefix(),
                ..Default::default()
            };
        }
        let rec = self.record();
        let report = teardown_record(&rec);
        if report.errors.is_empty() {
            let _ = std::fs::remove_file(&self.path);
        } else {
            // Keep the file so that `hearsay clean` can retry.
            let _ = self.persist();
        }
        *done = true;
        lock(&ACTIVE).retain(|r| !std::ptr::eq(r.as_ref(), self));
        report
    }
}

fn write_record(path: &Path, rec: &RunRecord) -> Result<(), RegistryError> {
    let text = serde_json::to_string_pretty(rec).map_err(|source| RegistryError::Json {
        path: path.display().to_string(),
        source,
    })?;
    // Write-then-rename: a crash never leaves a half-written registry.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|source| RegistryError::Io {
            path: path.display().to_string(),
            source,
        })
}

/// Tears down every registered live run of this process (panic hook, signal handler).
pub fn teardown_all_active() -> Vec<CleanReport> {
    let regs: Vec<Arc<Registry>> = lock(&ACTIVE).clone();
    regs.iter().map(|r| r.teardown()).collect()
}

/// Kills the recorded processes, then removes namespaces, links and nft tables.
pub fn teardown_record(rec: &RunRecord) -> CleanReport {
    use nix::sys::signal::Signal;
    let mut report = CleanReport {
        prefix: rec.prefix.clone(),
        ..Default::default()
    };
    // Processes first: a namespace lives as long as a process is inside it.
    for p in &rec.procs {
        // SIGCONT first so that a paused process can die promptly and be reaped.
        sys::signal_ours(p.pid, p.start, Signal::SIGCONT);
        if sys::signal_ours(p.pid, p.start, Signal::SIGKILL) {
            report.killed.push(p.pid);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while rec
        .procs
        .iter()
        .any(|p| sys::is_same_process(p.pid, p.start))
    {
        if Instant::now() > deadline {
            report
                .errors
                .push("some recorded processes did not exit".into());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for t in &rec.nft_tables {
        if !t.name.starts_with(&rec.prefix) {
            continue;
        }
        let target = format!("{} {}", t.family, t.name);
        let res = match &t.netns {
            Some(ns) => sys::run(
                "ip",
                &[
                    "netns", "exec", ns, "nft", "delete", "table", &t.family, &t.name,
                ],
                None,
            ),
            None => sys::run("nft", &["delete", "table", &t.family, &t.name], None),
        };
        match res {
            Ok(_) => report.nft_removed.push(target),
            Err(e) if nft_absent(&e) => {}
            Err(e) => report.errors.push(e.to_string()),
        }
    }
    for ns in &rec.netns {
        if !ns.starts_with(&rec.prefix) {
            continue;
        }
        match sys::run("ip", &["netns", "del", ns], None) {
            Ok(_) => report.netns_removed.push(ns.clone()),
            Err(e) if absent(&e) => {}
            Err(e) => report.errors.push(e.to_string()),
        }
    }
    for link in &rec.links {
        if !link.starts_with(&rec.prefix) {
            continue;
        }
        match sys::run("ip", &["link", "del", link], None) {
            Ok(_) => report.links_removed.push(link.clone()),
            Err(e) if absent(&e) => {}
            Err(e) => report.errors.push(e.to_string()),
        }
    }
    for d in &rec.temp_dirs {
        let _ = std::fs::remove_dir_all(d);
    }
    report
}

fn absent(e: &sys::SysError) -> bool {
    let s = e.to_string();
    s.contains("Cannot find device")
        || s.contains("No such file")
        || s.contains("does not exist")
        || s.contains("Invalid argument")
}

fn nft_absent(e: &sys::SysError) -> bool {
    let s = e.to_string();
    s.contains("No such file or directory")
        || absent(e)
        || s.contains("Cannot open network namespace")
}

/// Is the run's owner still alive (then `clean` leaves it alone)?
pub fn owner_alive(rec: &RunRecord) -> bool {
    rec.owner_pid != std::process::id() && sys::is_same_process(rec.owner_pid, rec.owner_start)
}

/// `hearsay clean`: tears down every registered run whose owner is dead (or all with
/// `force`); with `unregistered`, also prefixed leftovers that have no registry file.
pub fn clean(dir: &Path, force: bool, unregistered: bool) -> Vec<CleanReport> {
    let mut reports = Vec::new();
    let mut live_prefixes = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().collect::<Vec<_>>())
        .unwrap_or_default();
    for e in entries {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let rec: RunRecord = match std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
        {
            Some(r) => r,
            None => {
                reports.push(CleanReport {
                    prefix: path.display().to_string(),
                    errors: vec!["unreadable registry file left in place".into()],
                    ..Default::default()
                });
                continue;
            }
        };
        if !is_prefix(&rec.prefix) {
            continue;
        }
        if !force && owner_alive(&rec) {
            live_prefixes.push(rec.prefix.clone());
            continue;
        }
        let r = teardown_record(&rec);
        if r.errors.is_empty() {
            let _ = std::fs::remove_file(&path);
        }
        live_prefixes.push(rec.prefix.clone());
        reports.push(r);
    }
    if unregistered {
        reports.extend(clean_unregistered(&live_prefixes));
    }
    reports
}

/// Namespaces, links and root nft tables named like ours whose run has no registry
/// file (e.g. the file was removed by hand). Processes are never killed here, since
/// without a record we cannot prove a PID is ours, and a namespace that still holds a
/// process is left alone: it may belong to a live run using another registry dir.
fn clean_unregistered(known: &[String]) -> Vec<CleanReport> {
    let prefix_of = |name: &str| -> Option<String> {
        let p = name.get(..8)?;
        (is_prefix(p) && name.get(8..9) == Some("-") || name.len() == 8 && is_prefix(name))
            .then(|| p.to_string())
            .filter(|p| !known.contains(p))
    };
    let mut rec_by_prefix: std::collections::BTreeMap<String, RunRecord> = Default::default();
    let mut busy_prefixes: Vec<String> = Vec::new();
    let get = |m: &mut std::collections::BTreeMap<String, RunRecord>, p: &str| {
        m.entry(p.to_string())
            .or_insert_with(|| RunRecord {
                prefix: p.to_string(),
                ..Default::default()
            })
            .clone()
    };
    if let Ok(out) = sys::run("ip", &["netns", "list"], None) {
        for line in out.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            let busy = sys::run("ip", &["netns", "pids", name], None)
                .map(|o| !o.trim().is_empty())
                .unwrap_or(true);
            if let (Some(p), true) = (prefix_of(name), busy) {
                busy_prefixes.push(p);
                continue;
            }
            if let Some(p) = prefix_of(name) {
                get(&mut rec_by_prefix, &p);
                if let Some(r) = rec_by_prefix.get_mut(&p) {
                    r.netns.push(name.to_string());
                }
            }
        }
    }
    if let Ok(out) = sys::run("ip", &["-o", "link", "show"], None) {
        for line in out.lines() {
            // "12: hs1234ab-v1@if2: <...>"
            let name = line
                .split(':')
                .nth(1)
                .map(|s| s.trim().split('@').next().unwrap_or(""))
                .unwrap_or("");
            if let Some(p) = prefix_of(name) {
                get(&mut rec_by_prefix, &p);
                if let Some(r) = rec_by_prefix.get_mut(&p) {
                    r.links.push(name.to_string());
                }
            }
        }
    }
    if let Ok(out) = sys::run("nft", &["list", "tables"], None) {
        for line in out.lines() {
            let mut w = line.split_whitespace();
            if let (Some("table"), Some(fam), Some(name)) = (w.next(), w.next(), w.next()) {
                if let Some(p) = prefix_of(name) {
                    get(&mut rec_by_prefix, &p);
                    if let Some(r) = rec_by_prefix.get_mut(&p) {
                        r.nft_tables.push(NftTable {
                            family: fam.to_string(),
                            name: name.to_string(),
                            netns: None,
                        });
                    }
                }
            }
        }
    }
    rec_by_prefix
        .values()
        .filter(|r| !busy_prefixes.contains(&r.prefix))
        .map(teardown_record)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert!(is_prefix("hs00ab3f"));
        assert!(!is_prefix("hs00ab3"));
        assert!(!is_prefix("hx00ab3f"));
        assert!(!is_prefix("hs00AB3F"));
        assert!(is_prefix("hsscale7"));
        assert!(!is_prefix("hsscale"));
        assert!(!is_prefix("hsscalex"));
        for _ in 0..20 {
            assert!(is_prefix(&new_prefix()));
        }
    }

    #[test]
    fn registry_file_tracks_resources_and_teardown_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::create_in(dir.path(), "hs0000aa").unwrap();
        // A child we start and register; teardown must kill it.
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        reg.add_proc(child.id(), "sleep").unwrap();
        reg.add_netns("hs0000aa-n1").unwrap();
        let on_disk: RunRecord =
            serde_json::from_str(&std::fs::read_to_string(reg.path()).unwrap()).unwrap();
        assert_eq!(on_disk.procs.len(), 1);
        assert_eq!(on_disk.netns, vec!["hs0000aa-n1".to_string()]);
        let mut child = child;
        let report = reg.teardown();
        assert_eq!(report.killed, vec![child.id()]);
        assert!(child.wait().is_ok());
        assert!(!reg.path().exists(), "{report:?}");
        // Idempotent.
        assert!(reg.teardown().killed.is_empty());
    }

    #[test]
    fn clean_skips_live_owner_and_never_kills_foreign_pid() {
        let dir = tempfile::tempdir().unwrap();
        // A record whose owner is this (live) test process but a different PID context:
        // owner_alive() treats our own PID as dead, so use PID 1 as a live foreign owner.
        let live = RunRecord {
            prefix: "hs0000bb".into(),
            owner_pid: 1,
            owner_start: sys::proc_start_time(1),
            ..Default::default()
        };
        write_record(&dir.path().join("hs0000bb.json"), &live).unwrap();
        // A dead owner whose recorded PID now belongs to someone else (start time differs).
        let me = std::process::id();
        let dead = RunRecord {
            prefix: "hs0000cc".into(),
            owner_pid: u32::MAX - 1,
            procs: vec![ProcRecord {
                pid: me,
                start: sys::proc_start_time(me).map(|s| s + 1),
                what: "recycled".into(),
            }],
            ..Default::default()
        };
        write_record(&dir.path().join("hs0000cc.json"), &dead).unwrap();
        let reports = clean(dir.path(), false, false);
        assert!(dir.path().join("hs0000bb.json").exists());
        assert!(!dir.path().join("hs0000cc.json").exists());
        let cc = reports.iter().find(|r| r.prefix == "hs0000cc").unwrap();
        assert!(cc.killed.is_empty());
    }
}
