//! `hearsay compare`: runs the same test on hearsay and on redis-server (and a mixed
//! cluster when asked) under the same realised fault schedule; the first target draws
//! the faults, the others replay them by node index (`--schedule-from` its folder).
//! The tables are `output/compare.rs`.

use crate::env::stamp::utc_stamp;
use crate::opts::{RunOpts, TargetChoice};
use crate::output::compare::{html, markdown, relative, Column};
use crate::run::RunError;
use hearsay_checkers::Valid;
use serde_json::json;
use std::path::PathBuf;
use std::time::SystemTime;

/// Options of `hearsay compare`.
#[derive(Clone, Debug, clap::Args)]
#[command(mut_arg("target", |a| a.hide(true)))]
#[command(mut_arg("test_count", |a| a.hide(true)))]
// A comparison without faults says little: default to the chaos test's nemeses, dense
// enough (a fault every ~5 s) that a 60 s run sees nodes fail, not only clock skew.
#[command(mut_arg("nemesis", |a| a.default_value("partition,pause,kill,clock")))]
#[command(mut_arg("nemesis_interval", |a| a.default_value("5")))]
pub struct CompareOpts {
    /// Add a third column: a mixed cluster (redis-server and hearsay-node nodes).
    #[arg(long)]
    pub with_mixed: bool,
    /// The targets, comma-separated, in run order (default hearsay,redis, plus mixed
    /// with --with-mixed). Redis Cluster targets replay the first one's faults by
    /// node index; a Sentinel or twemproxy column draws its faults from the same
    /// seed against its own topology (node indices mean different roles there).
    #[arg(long = "targets", value_delimiter = ',')]
    pub targets: Vec<TargetChoice>,
    /// The run options, as for `hearsay run` (`--target` and `--test-count` are ignored:
    /// the targets are hearsay, redis and, with --with-mixed, mixed; one seed).
    #[command(flatten)]
    pub run: RunOpts,
}

/// The targets of a comparison, in run order (the first draws the faults).
pub fn targets(with_mixed: bool) -> Vec<TargetChoice> {
    let mut t = vec![TargetChoice::Hearsay, TargetChoice::Redis];
    if with_mixed {
        t.push(TargetChoice::Mixed);
    }
    t
}

impl CompareOpts {
    /// `--targets`, else [`targets`].
    pub fn columns(&self) -> Vec<TargetChoice> {
        if self.targets.is_empty() {
            targets(self.with_mixed)
        } else {
            let mut t = self.targets.clone();
            if self.with_mixed && !t.contains(&TargetChoice::Mixed) {
                t.push(TargetChoice::Mixed);
            }
            t
        }
    }
}

/// What the comparison wrote.
#[derive(Debug)]
pub struct Compared {
    pub dir: PathBuf,
    pub markdown: String,
    pub exit_code: i32,
}

/// Runs the comparison. Errors are only about writing the table; a run that fails
/// becomes a column that says so (and makes the exit code 2).
pub async fn compare(opts: &CompareOpts) -> Result<Compared, RunError> {
    let seed = opts
        .run
        .seed
        .unwrap_or_else(hearsay_workloads::rng::os_seed);
    let started = SystemTime::now();
    let mut cols = Vec::new();
    let mut dirs: Vec<Option<PathBuf>> = Vec::new();
    let mut first: Option<PathBuf> = opts.run.schedule_from.clone();
    let mut notes = Vec::new();
    let columns = opts.columns();
    let mixed_architectures = columns.iter().any(|t| !t.is_cluster());
    for (i, t) in columns.iter().copied().enumerate() {
        let mut o = crate::run::fixed_shape(&opts.run);
        o.target = t;
        o = crate::run::fixed_shape(&o);
        o.seed = Some(seed);
        o.test_count = 1;
        o.dry_run = false;
        // Node indices name the same roles only between Redis Cluster targets.
        o.schedule_from = if mixed_architectures {
            opts.run.schedule_from.clone().filter(|_| t.is_cluster())
        } else {
            first.clone()
        };
        eprintln!(
            "[hearsay compare] {} ({} of {}), seed {seed}{}",
            t.name(),
            i + 1,
            columns.len(),
            o.schedule_from
                .as_ref()
                .map(|d| format!(", faults replayed from {}", d.display()))
                .unwrap_or_default()
        );
        match super::render::run_one(&o).await {
            Ok(s) => {
                if first.is_none() {
                    first = Some(s.run_dir.clone());
                }
                cols.push(Column::from_dir(t.name(), &s.run_dir));
                dirs.push(Some(s.run_dir));
            }
            Err(RunError::BadOption(e)) => return Err(RunError::BadOption(e)),
            Err(e) => {
                eprintln!("[hearsay compare] {} run failed: {e}", t.name());
                cols.push(Column::failed(t.name(), &e.to_string()));
                dirs.push(None);
            }
        }
    }
    match (&opts.run.schedule_from, dirs.first()) {
        _ if mixed_architectures => notes.push(format!(
            "architectures differ ({}): every column drew its faults from seed {seed} against its own topology (same kinds and times; Sentinel adds the master-with-a-minority-of-sentinels partition to the draw)",
            columns.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
        )),
        (Some(d), _) => notes.push(format!(
            "every column replays the faults of {} (by node index)",
            d.display()
        )),
        (None, Some(Some(_))) => notes.push(format!(
            "faults drawn from seed {seed} in the first column's run, replayed by node index in the others (--schedule-from)"
        )),
        (None, _) => notes.push(format!(
            "the first run failed: later columns drew their faults from seed {seed} themselves (same plan, realised separately)"
        )),
    }
    let o = &opts.run;
    notes.push(format!(
        "workload {}, nemesis {}, every {} s, time limit {} s, {} nodes ({} replica per master), node timeout {} ms",
        o.workload, o.nemesis, o.nemesis_interval, o.time_limit, o.nodes, o.replicas, o.node_timeout
    ));
    notes.push(
        "detection, failover and convergence times are ms on the harness's timeline; median / max over the faulted nodes".into(),
    );
    let dir = o
        .results_dir
        .join("compare")
        .join(format!("{}-seed{seed}", utc_stamp(started)));
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Io {
        what: format!("create {}", dir.display()),
        source,
    })?;
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let links: Vec<String> = dirs
        .iter()
        .map(|d| {
            d.as_ref()
                .map(|d| relative(&dir, d).display().to_string())
                .unwrap_or_default()
        })
        .collect();
    let title = format!("hearsay compare, seed {seed}");
    let md = markdown(&title, &notes, &cols, &links);
    let page = html(&title, &notes, &cols, &links);
    let worst = cols.iter().fold(Valid::True, |acc, c| acc.and(c.verdict()));
    let data = json!({
        "seed": seed,
        "notes": notes,
        "exit_code": worst.exit_code(),
        "columns": cols.iter().zip(&dirs).map(|(c, d)| json!({
            "target": c.target, "run_dir": d, "error": c.error, "summary": c.summary,
        })).collect::<Vec<_>>(),
    });
    for (name, text) in [
        ("compare.md", md.clone()),
        ("compare.html", page),
        (
            "compare.json",
            serde_json::to_string_pretty(&data).unwrap_or_default() + "\n",
        ),
    ] {
        std::fs::write(dir.join(name), text).map_err(|source| RunError::Io {
            what: format!("write {}", dir.join(name).display()),
            source,
        })?;
    }
    Ok(Compared {
        dir,
        markdown: md,
        exit_code: worst.exit_code(),
    })
}

/// `hearsay compare`: runs, prints the markdown table, returns the exit code (worst
/// verdict; 254 for a bad option, 2 if the table could not be written).
pub async fn main(opts: &CompareOpts) -> i32 {
    match compare(opts).await {
        Ok(c) => {
            println!("{}", c.markdown);
            println!("compare folder: {}", c.dir.display());
            c.exit_code
        }
        Err(RunError::BadOption(e)) => {
            eprintln!("hearsay compare: {e}");
            254
        }
        Err(e) => {
            eprintln!("hearsay compare failed: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hearsay_runs_first_then_redis() {
        assert_eq!(
            targets(false),
            vec![TargetChoice::Hearsay, TargetChoice::Redis]
        );
        assert_eq!(targets(true).len(), 3);
    }
}
