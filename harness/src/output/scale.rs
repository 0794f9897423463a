//! `hearsay scale`'s outputs: `scale.json` (every row as measured), `scale.md`
//! (tables, ratios, fits) and `scale.html` (the same with log-log charts, inline SVG,
//! no external files). A row is one cluster size of one target; a measured target
//! and a simulated one (`sim`) fill the same [`ScaleRow`], so they share every table
//! and chart.

use super::report::plots::palette;
use super::report::svg::{self, esc, num, Svg, LEFT, PLOT_W};
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::path::Path;

/// The failure chain after one master stops, in ms since the stop (SIGSTOP), each
/// the earliest node to get there unless its name says otherwise.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Chain {
    /// First node to flag the stopped master PFAIL.
    pub pfail_ms: Option<f64>,
    /// First node to decide FAIL (quorum of failure reports).
    pub fail_ms: Option<f64>,
    /// The last live node to know the FAIL (decided or received): propagation.
    pub fail_all_ms: Option<f64>,
    /// The replica starts its election (asks for votes).
    pub election_ms: Option<f64>,
    /// The replica wins it.
    pub won_ms: Option<f64>,
    /// The replica is a master serving the slots.
    pub promoted_ms: Option<f64>,
}

impl Chain {
    /// The links of the chain, in order, with their names.
    pub fn steps(&self) -> [(&'static str, Option<f64>); 6] {
        [
            ("first PFAIL", self.pfail_ms),
            ("FAIL decided", self.fail_ms),
            ("FAIL known by all", self.fail_all_ms),
            ("election started", self.election_ms),
            ("election won", self.won_ms),
            ("promoted", self.promoted_ms),
        ]
    }
}

/// One target at one cluster size.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScaleRow {
    /// `hearsay`, `redis`, or `sim` (the simulator).
    pub target: String,
    pub nodes: usize,
    pub masters: usize,
    pub replicas: usize,
    pub node_timeout_ms: u64,
    /// `measured` (processes, counters on the wire) or `simulated`.
    pub source: String,
    /// Length of the idle traffic window.
    pub window_s: f64,
    /// Cluster-bus messages sent per node per second (CLUSTER INFO
    /// `cluster_stats_messages_sent`), mean over nodes.
    pub msgs_per_node_s: Option<f64>,
    /// Messages per node per second by counter (`ping_sent`, `pong_received`, ...).
    #[serde(default)]
    pub msgs_by_type_per_node_s: std::collections::BTreeMap<String, f64>,
    /// Bytes each node sent on its link per second (all of it bus traffic: nothing
    /// else talks during the window), mean over nodes.
    pub bytes_per_node_s: Option<f64>,
    /// Packets each node sent per second, mean over nodes.
    pub packets_per_node_s: Option<f64>,
    /// Bytes all nodes sent per second.
    pub bytes_per_cluster_s: Option<f64>,
    /// CPU time per node over the window, percent of one core, mean over nodes.
    pub cpu_pct_per_node: Option<f64>,
    /// Resident memory per node at the end of the window, MB, mean over nodes.
    pub rss_mb_per_node: Option<f64>,
    /// From the first CLUSTER MEET (every node meets the first) to every node
    /// knowing every other with the same slot map and `cluster_state:ok`.
    pub form_ms: Option<f64>,
    /// Every run's formation time when the row is a median of several: formation
    /// is a random process (see README), so ratios of medians are read with a
    /// rank test over these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub form_runs_ms: Vec<f64>,
    /// CPU seconds each node spent from the first MEET to agreement, mean over
    /// nodes: formation's cost, which the wall time hides when the machine is
    /// saturated.
    #[serde(default)]
    pub form_cpu_s_per_node: Option<f64>,
    /// One master stopped (SIGSTOP).
    pub failover: Chain,
    /// A master cut off by a partition until every other node knew it FAIL; from the
    /// heal until every node agrees again (slot maps, no failure flags, state ok).
    pub heal_agree_ms: Option<f64>,
    /// What went wrong or was skipped.
    pub notes: Vec<String>,
}

/// The whole run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScaleReport {
    pub started: String,
    pub command: String,
    pub host: String,
    pub rows: Vec<ScaleRow>,
}

/// A least-squares fit of log(y) = log(c) + e log(N).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Fit {
    pub target: String,
    pub node_timeout_ms: u64,
    pub replicas: usize,
    pub metric: String,
    pub exponent: f64,
    pub coefficient: f64,
    pub points: usize,
}

/// The exponent and coefficient of y = c N^e through the points (x > 0, y > 0);
/// None with fewer than two distinct x.
pub fn fit_loglog(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let p: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0 && x.is_finite() && y.is_finite())
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    let n = p.len() as f64;
    if p.len() < 2 {
        return None;
    }
    let mx = p.iter().map(|q| q.0).sum::<f64>() / n;
    let my = p.iter().map(|q| q.1).sum::<f64>() / n;
    let sxx: f64 = p.iter().map(|q| (q.0 - mx).powi(2)).sum();
    if sxx <= 1e-12 {
        return None;
    }
    let sxy: f64 = p.iter().map(|q| (q.0 - mx) * (q.1 - my)).sum();
    let e = sxy / sxx;
    Some((e, (my - e * mx).exp()))
}

/// Rows of one experiment (same node timeout and replicas).
type Group<'a> = ((u64, usize), Vec<&'a ScaleRow>);

/// A field of a row.
type Get = fn(&ScaleRow) -> Option<f64>;

/// One ratio: its name, value, and the tolerance (low, high).
type Ratio = (&'static str, Option<f64>, f64, f64);

/// Hearsay/redis ratio tolerances of the issue's acceptance list.
const TOLERANCES: [(&str, f64, f64); 4] = [
    ("messages/s per node", 0.9, 1.1),
    ("bytes/s per node", 0.9, 1.1),
    ("formation", 0.75, 1.33),
    ("FAIL propagation", 0.8, 1.25),
];

impl ScaleReport {
    fn groups(&self) -> Vec<Group<'_>> {
        let mut keys: Vec<(u64, usize)> = self
            .rows
            .iter()
            .map(|r| (r.node_timeout_ms, r.replicas))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
            .map(|k| {
                let mut rows: Vec<&ScaleRow> = self
                    .rows
                    .iter()
                    .filter(|r| (r.node_timeout_ms, r.replicas) == k)
                    .collect();
                rows.sort_by(|a, b| (a.nodes, &a.target).cmp(&(b.nodes, &b.target)));
                (k, rows)
            })
            .collect()
    }

    fn targets(&self) -> Vec<String> {
        let mut t: Vec<String> = Vec::new();
        for r in &self.rows {
            if !t.contains(&r.target) {
                t.push(r.target.clone());
            }
        }
        t
    }

    /// The log-log fits of bytes/s per node and per cluster and messages/s per node,
    /// per target and experiment.
    pub fn fits(&self) -> Vec<Fit> {
        let mut out = Vec::new();
        for ((nt, reps), rows) in self.groups() {
            for t in self.targets() {
                let metrics: [(&str, Get); 3] = [
                    ("bytes/s per node", |r| r.bytes_per_node_s),
                    ("bytes/s per cluster", |r| r.bytes_per_cluster_s),
                    ("messages/s per node", |r| r.msgs_per_node_s),
                ];
                for (metric, get) in metrics {
                    let pts: Vec<(f64, f64)> = rows
                        .iter()
                        .filter(|r| r.target == t)
                        .filter_map(|r| Some((r.nodes as f64, get(r)?)))
                        .collect();
                    if let Some((e, c)) = fit_loglog(&pts) {
                        out.push(Fit {
                            target: t.clone(),
                            node_timeout_ms: nt,
                            replicas: reps,
                            metric: metric.into(),
                            exponent: e,
                            coefficient: c,
                            points: pts.len(),
                        });
                    }
                }
            }
        }
        out
    }

    /// hearsay/redis ratios per size: (N, [(name, ratio, lo, hi)]).
    fn ratios(rows: &[&ScaleRow]) -> Vec<(usize, Vec<Ratio>)> {
        let mut sizes: Vec<usize> = rows.iter().map(|r| r.nodes).collect();
        sizes.dedup();
        let mut out = Vec::new();
        for n in sizes {
            let find = |t: &str| rows.iter().find(|r| r.nodes == n && r.target == t);
            let (Some(h), Some(r)) = (find("hearsay"), find("redis")) else {
                continue;
            };
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            };
            let vals = [
                ratio(h.msgs_per_node_s, r.msgs_per_node_s),
                ratio(h.bytes_per_node_s, r.bytes_per_node_s),
                ratio(h.form_ms, r.form_ms),
                ratio(h.failover.fail_all_ms, r.failover.fail_all_ms),
            ];
            let mut line = Vec::new();
            for ((name, lo, hi), v) in TOLERANCES.iter().zip(vals) {
                line.push((*name, v, *lo, *hi));
            }
            if h.replicas > 0 {
                line.push((
                    "stop to promotion",
                    ratio(h.failover.promoted_ms, r.failover.promoted_ms),
                    0.9,
                    1.1,
                ));
            }
            out.push((n, line));
        }
        out
    }

    /// Formation over repeated runs, hearsay against redis per size (both with
    /// at least 5 runs): quartiles and a two-sided Mann-Whitney test, since a
    /// ratio of medians of a few heavy-tailed runs moves a lot between invocations.
    fn formation_rank_tests(rows: &[&ScaleRow]) -> Vec<String> {
        let mut out = Vec::new();
        for h in rows.iter().filter(|r| r.target == "hearsay") {
            let Some(r) = rows
                .iter()
                .find(|r| r.target == "redis" && r.nodes == h.nodes)
            else {
                continue;
            };
            let (a, b) = (&h.form_runs_ms, &r.form_runs_ms);
            if a.len() < 5 || b.len() < 5 {
                continue;
            }
            let q = |v: &[f64]| {
                let [q1, q2, q3] = quartiles(v);
                format!(
                    "{:.1} / {:.1} / {:.1}",
                    q1 / 1000.0,
                    q2 / 1000.0,
                    q3 / 1000.0
                )
            };
            let (u, p) = mann_whitney(a, b);
            out.push(format!(
                "N = {}: formation over {} and {} runs, quartiles hearsay {} s, redis {} s; \
                 Mann-Whitney U = {u} of {}, two-sided p = {p:.2}",
                h.nodes,
                a.len(),
                b.len(),
                q(a),
                q(b),
                a.len() * b.len()
            ));
        }
        out
    }

    /// The gossip experiment's trade-off, one line per variant row: its
    /// bytes and messages per node against the plain `hearsay` row of the same
    /// N, and how much earlier or later the failure chain ran.
    fn gossip_tradeoff(rows: &[&ScaleRow]) -> Vec<String> {
        let mut out = Vec::new();
        for v in rows.iter().filter(|r| r.target.starts_with("hearsay-g")) {
            let Some(base) = rows
                .iter()
                .find(|r| r.target == "hearsay" && r.nodes == v.nodes)
            else {
                continue;
            };
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("x{a:.2}", a = a / b),
                _ => "-".into(),
            };
            let delta = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => format!("{:+.2} s", (a - b) / 1000.0),
                _ => "-".into(),
            };
            out.push(format!(
                "{} N={}: bytes/s per node {}, messages/s per node {}; first PFAIL {}, FAIL decided {}, FAIL known by all {}",
                v.target,
                v.nodes,
                ratio(v.bytes_per_node_s, base.bytes_per_node_s),
                ratio(v.msgs_per_node_s, base.msgs_per_node_s),
                delta(v.failover.pfail_ms, base.failover.pfail_ms),
                delta(v.failover.fail_ms, base.failover.fail_ms),
                delta(v.failover.fail_all_ms, base.failover.fail_all_ms),
            ));
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["fits"] = serde_json::to_value(self.fits()).unwrap_or_default();
        v
    }

    /// The claim and what the fit says, one line per target.
    fn claim_lines(&self, nt: u64, reps: usize) -> Vec<String> {
        let fits = self.fits();
        let mut out = Vec::new();
        for t in self.targets() {
            let get = |m: &str| {
                fits.iter()
                    .find(|f| {
                        f.target == t
                            && f.metric == m
                            && f.node_timeout_ms == nt
                            && f.replicas == reps
                    })
                    .map(|f| f.exponent)
            };
            if let (Some(node), Some(cluster)) =
                (get("bytes/s per node"), get("bytes/s per cluster"))
            {
                let verdict = if (0.8..=1.2).contains(&node) {
                    "about linear, as claimed"
                } else if node < 0.8 {
                    "below linear over this range (the gossip section is 3 entries until N = 30, so small clusters grow slower)"
                } else {
                    "above linear"
                };
                out.push(format!(
                    "{t}: bytes/s per node ~ N^{:.2}, per cluster ~ N^{:.2}: {verdict}",
                    node, cluster
                ));
            }
        }
        out
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# hearsay scale\n");
        let _ = writeln!(
            s,
            "Started {} on {}.  \n`{}`\n",
            self.started, self.host, self.command
        );
        let _ = writeln!(
            s,
            "The background's claim: gossip sends each node a bounded number of messages per \
             second, each with a gossip section of max(3, N/10) entries, so per-node traffic grows \
             about linearly in N (and the whole cluster's about as N^2).\n"
        );
        for ((nt, reps), rows) in self.groups() {
            let _ = writeln!(s, "## node timeout {nt} ms, {reps} replica(s) per master\n");
            for l in self.claim_lines(nt, reps) {
                let _ = writeln!(s, "- {l}");
            }
            s.push('\n');
            let _ = writeln!(
                s,
                "| target | N | msgs/s/node | KB/s/node | pkts/s/node | KB/s cluster | CPU %/node | RSS MB/node | form s | form CPU s/node | PFAIL s | FAIL s | FAIL all s | heal→agree s |"
            );
            let _ = writeln!(
                s,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for r in &rows {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.target,
                    r.nodes,
                    f1(r.msgs_per_node_s),
                    f1(r.bytes_per_node_s.map(|b| b / 1000.0)),
                    f1(r.packets_per_node_s),
                    f1(r.bytes_per_cluster_s.map(|b| b / 1000.0)),
                    f2(r.cpu_pct_per_node),
                    f1(r.rss_mb_per_node),
                    f2(r.form_ms.map(|m| m / 1000.0)),
                    f2(r.form_cpu_s_per_node),
                    f2(r.failover.pfail_ms.map(|m| m / 1000.0)),
                    f2(r.failover.fail_ms.map(|m| m / 1000.0)),
                    f2(r.failover.fail_all_ms.map(|m| m / 1000.0)),
                    f2(r.heal_agree_ms.map(|m| m / 1000.0)),
                );
            }
            if reps > 0 {
                let _ = writeln!(s, "\nFailover chain (s after SIGSTOP of a master):\n");
                let _ = writeln!(
                    s,
                    "| target | N | PFAIL | FAIL | FAIL all | election | won | promoted |"
                );
                let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
                for r in &rows {
                    let mut line = format!("| {} | {} |", r.target, r.nodes);
                    for (_, v) in r.failover.steps() {
                        let _ = write!(line, " {} |", f2(v.map(|m| m / 1000.0)));
                    }
                    let _ = writeln!(s, "{line}");
                }
            }
            let ratios = Self::ratios(&rows);
            if !ratios.is_empty() {
                let _ = writeln!(s, "\nhearsay / redis, same run (tolerance in brackets):\n");
                for (n, line) in ratios {
                    let parts: Vec<String> = line
                        .iter()
                        .map(|(name, v, lo, hi)| {
                            let mark = match v {
                                Some(v) if *v >= *lo && *v <= *hi => "ok",
                                Some(_) => "OUT",
                                None => "n/a",
                            };
                            format!("{name} {} [{lo}-{hi}] {mark}", f2(*v))
                        })
                        .collect();
                    let _ = writeln!(s, "- N = {n}: {}", parts.join("; "));
                }
                for l in Self::formation_rank_tests(&rows) {
                    let _ = writeln!(s, "- {l}");
                }
            }
            let tradeoff = Self::gossip_tradeoff(&rows);
            if !tradeoff.is_empty() {
                let _ = writeln!(
                    s,
                    "\nGossip experiment: each variant against hearsay-node with redis's \
                     schedule (gossip section max(3, N/10), ping at node_timeout/2), same N:\n"
                );
                for l in tradeoff {
                    let _ = writeln!(s, "- {l}");
                }
            }
            let notes: Vec<String> = rows
                .iter()
                .flat_map(|r| {
                    r.notes
                        .iter()
                        .map(move |n| format!("{} N={}: {n}", r.target, r.nodes))
                })
                .collect();
            if !notes.is_empty() {
                let _ = writeln!(s, "\nNotes:\n");
                for n in notes {
                    let _ = writeln!(s, "- {n}");
                }
            }
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "Bytes are counted on each node's link (host side of its veth: everything the node sent, \
             TCP/IP headers included); nothing but the cluster bus talks during the window. Messages \
             are the nodes' own `cluster_stats_messages_sent`."
        );
        s
    }

    pub fn html(&self) -> String {
        let mut body = String::new();
        let _ = write!(
            body,
            "<h1>hearsay scale</h1><p>Started {} on {}.<br><code>{}</code></p>\
             <p>The background's claim: gossip keeps per-node traffic about linear in N \
             (max(3, N/10) gossip entries per message, a bounded message rate per node), so the \
             whole cluster's grows about as N<sup>2</sup>. Dashed lines are the log-log fits.</p>",
            esc(&self.started),
            esc(&self.host),
            esc(&self.command)
        );
        let targets = self.targets();
        for ((nt, reps), rows) in self.groups() {
            let _ = write!(
                body,
                "<h2>node timeout {nt} ms, {reps} replica(s) per master</h2><ul>"
            );
            for l in self.claim_lines(nt, reps) {
                let _ = write!(body, "<li>{}</li>", esc(&l));
            }
            body.push_str("</ul>");
            let series = |get: fn(&ScaleRow) -> Option<f64>| -> Vec<Series> {
                targets
                    .iter()
                    .enumerate()
                    .map(|(i, t)| Series {
                        name: t.clone(),
                        colour: palette(i),
                        shape: i,
                        points: rows
                            .iter()
                            .filter(|r| &r.target == t)
                            .filter_map(|r| Some((r.nodes as f64, get(r)?)))
                            .collect(),
                    })
                    .filter(|s| !s.points.is_empty())
                    .collect()
            };
            let charts: [(&str, &str, Get, bool, bool); 7] = [
                (
                    "bytes/s per node (sent on its link)",
                    "B/s",
                    |r| r.bytes_per_node_s,
                    true,
                    true,
                ),
                (
                    "bytes/s per cluster",
                    "B/s",
                    |r| r.bytes_per_cluster_s,
                    true,
                    true,
                ),
                (
                    "bus messages/s per node",
                    "msg/s",
                    |r| r.msgs_per_node_s,
                    true,
                    true,
                ),
                (
                    "FAIL known by every node, after SIGSTOP of a master",
                    "ms",
                    |r| r.failover.fail_all_ms,
                    false,
                    false,
                ),
                (
                    "slot maps agree again, after a partition heals",
                    "ms",
                    |r| r.heal_agree_ms,
                    false,
                    false,
                ),
                (
                    "formation (first MEET to agreement)",
                    "ms",
                    |r| r.form_ms,
                    false,
                    false,
                ),
                (
                    "resident memory per node",
                    "MB",
                    |r| r.rss_mb_per_node,
                    false,
                    false,
                ),
            ];
            for (title, unit, get, log_y, fit) in charts {
                let s = series(get);
                if s.is_empty() {
                    continue;
                }
                let _ = write!(body, "<h3>{}</h3>", esc(title));
                body.push_str(&chart(title, unit, &s, log_y, fit));
            }
            body.push_str("<h3>table</h3>");
            body.push_str(&md_table_html(&self.markdown_group(nt, reps)));
        }
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>hearsay scale</title><style>\
             body{{font:14px system-ui,sans-serif;margin:20px;max-width:1360px}}\
             table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}\
             code{{font-size:12px}}</style></head><body>{body}</body></html>\n"
        )
    }

    /// The markdown of one experiment's section (the HTML shows it as a table).
    fn markdown_group(&self, nt: u64, reps: usize) -> String {
        let sub = ScaleReport {
            rows: self
                .rows
                .iter()
                .filter(|r| r.node_timeout_ms == nt && r.replicas == reps)
                .cloned()
                .collect(),
            ..Default::default()
        };
        sub.markdown()
    }
}

/// Writes scale.json, scale.md and scale.html into `dir`.
pub fn write_all(dir: &Path, report: &ScaleReport) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(&report.to_json()).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("scale.json"), json + "\n")?;
    std::fs::write(dir.join("scale.md"), report.markdown())?;
    std::fs::write(dir.join("scale.html"), report.html())?;
    Ok(())
}

/// First quartile, median and third quartile (linear interpolation).
fn quartiles(v: &[f64]) -> [f64; 3] {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |f: f64| {
        let x = f * (v.len().saturating_sub(1)) as f64;
        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
        let (a, b) = (v.get(lo).copied(), v.get(hi).copied());
        match (a, b) {
            (Some(a), Some(b)) => a + (b - a) * (x - lo as f64),
            _ => f64::NAN,
        }
    };
    [at(0.25), at(0.5), at(0.75)]
}

/// Mann-Whitney U of `a` against `b` (ties count a half) and its two-sided p,
/// from the exact distribution of U without ties (counted by the recurrence
/// c(m, n, u) = c(m-1, n, u-n) + c(m, n-1, u)); written here because the few
/// lines do not justify a statistics crate.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> (f64, f64) {
    let mut u = 0.0;
    for x in a {
        for y in b {
            u += match x.total_cmp(y) {
                std::cmp::Ordering::Less => 1.0,
                std::cmp::Ordering::Equal => 0.5,
                std::cmp::Ordering::Greater => 0.0,
            };
        }
    }
    let (m, n) = (a.len(), b.len());
    let max = m * n;
    // counts[i][j][k]: arrangements of i and j values with U = k.
    let mut prev: Vec<Vec<f64>> = (0..=n)
        .map(|_| {
            let mut c = vec![0.0; max + 1];
            c[0] = 1.0;
            c
        })
        .collect();
    for i in 1..=m {
        let mut cur: Vec<Vec<f64>> = vec![vec![0.0; max + 1]; n + 1];
        cur[0][0] = 1.0;
        for j in 1..=n {
            for k in 0..=i * j {
                let from_a = if k >= j { prev[j][k - j] } else { 0.0 };
                cur[j][k] = from_a + cur[j - 1][k];
            }
        }
        prev = cur;
    }
    let dist = &prev[n];
    let total: f64 = dist.iter().sum();
    if total <= 0.0 {
        return (u, 1.0);
    }
    let low: f64 = dist.iter().take(u.floor() as usize + 1).sum::<f64>() / total;
    let high: f64 = dist.iter().skip(u.ceil() as usize).sum::<f64>() / total;
    (u, (2.0 * low.min(high)).min(1.0))
}

fn f1(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

fn f2(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

/// The markdown tables of a section as HTML tables (pipes to cells), other lines
/// as paragraphs.
fn md_table_html(md: &str) -> String {
    let mut out = String::new();
    let mut in_table = false;
    for line in md.lines() {
        let l = line.trim();
        if l.starts_with('|') {
            if l.starts_with("|---") {
                continue;
            }
            if !in_table {
                out.push_str("<table>");
                in_table = true;
            }
            out.push_str("<tr>");
            for cell in l.trim_matches('|').split('|') {
                let _ = write!(out, "<td>{}</td>", esc(cell.trim()));
            }
            out.push_str("</tr>");
            continue;
        }
        if in_table {
            out.push_str("</table>");
            in_table = false;
        }
        if l.starts_with("- ") {
            let _ = write!(out, "<div>{}</div>", esc(l));
        }
    }
    if in_table {
        out.push_str("</table>");
    }
    out
}

/// One line of a chart.
struct Series {
    name: String,
    colour: &'static str,
    shape: usize,
    points: Vec<(f64, f64)>,
}

/// Log x (N) against log or linear y; markers joined by lines, with the log-log fit
/// dashed when `fit` is set.
fn chart(title: &str, unit: &str, series: &[Series], log_y: bool, fit: bool) -> String {
    const H: f64 = 300.0;
    const TOP: f64 = 16.0;
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    let (mut x0, mut x1) = min_max(&xs);
    let (mut y0, mut y1) = min_max(&ys);
    // Decades around the data (x), a margin on y.
    x0 = 10f64.powf((x0.max(1.0)).log10().floor());
    x1 = 10f64.powf((x1.max(1.0)).log10().ceil()).max(x0 * 10.0);
    if log_y {
        y0 = 10f64.powf(y0.max(1e-9).log10().floor());
        y1 = 10f64.powf(y1.max(1e-9).log10().ceil()).max(y0 * 10.0);
    } else {
        y0 = 0.0;
        y1 = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
    }
    let fx =
        |x: f64| LEFT + (x.max(1e-9).log10() - x0.log10()) / (x1.log10() - x0.log10()) * PLOT_W;
    let fy = |y: f64| {
        let f = if log_y {
            (y.max(1e-9).log10() - y0.log10()) / (y1.log10() - y0.log10())
        } else {
            (y - y0) / (y1 - y0)
        };
        TOP + H - f.clamp(0.0, 1.0) * H
    };
    let mut s = Svg::new(TOP + H + 44.0, title);
    // Grid: decades and 2, 5 within them on log axes.
    let mut xt = Vec::new();
    let mut d = x0;
    while d <= x1 * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            if d * m <= x1 * 1.0001 {
                xt.push(d * m);
            }
        }
        d *= 10.0;
    }
    for x in xt {
        let px = fx(x);
        s.line(px, TOP, px, TOP + H, "#e4e4e4", "");
        s.text(
            px,
            TOP + H + 16.0,
            r#"text-anchor="middle" font-size="11""#,
            &num(x),
        );
    }
    let yt: Vec<f64> = if log_y {
        let mut v = Vec::new();
        let mut d = y0;
        while d <= y1 * 1.0001 {
            v.push(d);
            d *= 10.0;
        }
        v
    } else {
        svg::ticks(y0, y1, 5.0)
    };
    for y in yt {
        let py = fy(y);
        s.line(LEFT, py, LEFT + PLOT_W, py, "#e4e4e4", "");
        s.text(
            LEFT - 6.0,
            py + 4.0,
            r#"text-anchor="end" font-size="11""#,
            &format!("{} {unit}", num(y)),
        );
    }
    s.text(
        LEFT + PLOT_W / 2.0,
        TOP + H + 36.0,
        r#"text-anchor="middle" font-size="12""#,
        "nodes (N, log scale)",
    );
    let mut legend_y = TOP + 14.0;
    for ser in series {
        let mut pts = ser.points.clone();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let d: Vec<String> = pts
            .iter()
            .enumerate()
            .map(|(i, (x, y))| {
                format!(
                    "{}{:.1} {:.1}",
                    if i == 0 { "M" } else { "L" },
                    fx(*x),
                    fy(*y)
                )
            })
            .collect();
        s.path(
            &d.join(""),
            &format!(r#"fill="none" stroke="{}" stroke-width="1.8""#, ser.colour),
            &ser.name,
        );
        for (x, y) in &pts {
            s.path(
                &svg::marker(ser.shape, fx(*x), fy(*y), 4.0),
                &format!(r#"fill="{}" stroke="{}""#, ser.colour, ser.colour),
                &format!("{} N={} {} {unit}", ser.name, num(*x), num(*y)),
            );
        }
        let mut label = ser.name.clone();
        if fit {
            if let Some((e, c)) = fit_loglog(&pts) {
                let (a, b) = (x0, x1);
                s.line(
                    fx(a),
                    fy(c * a.powf(e)),
                    fx(b),
                    fy(c * b.powf(e)),
                    ser.colour,
                    r#"stroke-dasharray="5 4" stroke-width="1""#,
                );
                label = format!("{label}: ~ N^{e:.2}");
            }
        }
        s.path(
            &svg::marker(ser.shape, LEFT + 14.0, legend_y - 4.0, 4.0),
            &format!(r#"fill="{}" stroke="{}""#, ser.colour, ser.colour),
            "",
        );
        s.text(LEFT + 24.0, legend_y, r#"font-size="12""#, &label);
        legend_y += 16.0;
    }
    s.finish()
}

fn min_max(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (1.0, 10.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_power_law() {
        let pts: Vec<(f64, f64)> = [6.0, 30.0, 100.0, 200.0]
            .iter()
            .map(|n: &f64| (*n, 3.0 * n.powf(0.7)))
            .collect();
        let (e, c) = fit_loglog(&pts).unwrap();
        assert!((e - 0.7).abs() < 1e-9 && (c - 3.0).abs() < 1e-9);
        assert!(fit_loglog(&[(6.0, 1.0)]).is_none());
        assert!(fit_loglog(&[(6.0, 1.0), (6.0, 2.0)]).is_none());
    }

    fn row(t: &str, n: usize, b: f64) -> ScaleRow {
        ScaleRow {
            target: t.into(),
            nodes: n,
            node_timeout_ms: 15000,
            bytes_per_node_s: Some(b),
            bytes_per_cluster_s: Some(b * n as f64),
            msgs_per_node_s: Some(2.0),
            form_ms: Some(1000.0),
            failover: Chain {
                fail_all_ms: Some(20000.0),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn mann_whitney_matches_known_values() {
        // Fully separated 5 against 5: U = 25, p = 2 / C(10, 5) = 2 / 252.
        let (u, p) = mann_whitney(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        assert_eq!(u, 25.0);
        assert!((p - 2.0 / 252.0).abs() < 1e-12, "{p}");
        // Interleaved: no evidence either way.
        let (u, p) = mann_whitney(&[1.0, 3.0, 5.0, 7.0, 9.0], &[2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(u, 15.0);
        assert!(p > 0.5, "{p}");
        assert_eq!(quartiles(&[4.0, 1.0, 3.0, 2.0, 5.0]), [2.0, 3.0, 4.0]);
    }

    #[test]
    fn formation_runs_get_a_rank_test() {
        let mut h = row("hearsay", 100, 1.0);
        let mut r = row("redis", 100, 1.0);
        h.form_runs_ms = vec![16e3, 17e3, 23e3, 24e3, 31e3];
        r.form_runs_ms = vec![16e3, 23e3, 23e3, 30e3, 38e3];
        let report = ScaleReport {
            rows: vec![h, r],
            ..Default::default()
        };
        let md = report.markdown();
        assert!(md.contains("N = 100: formation over 5 and 5 runs"), "{md}");
        assert!(md.contains("Mann-Whitney U = "), "{md}");
    }

    #[test]
    fn outputs_carry_fits_ratios_and_charts() {
        let rep = ScaleReport {
            rows: vec![
                row("hearsay", 6, 5000.0),
                row("redis", 6, 5000.0),
                row("hearsay", 30, 14000.0),
                row("redis", 30, 20000.0),
            ],
            ..Default::default()
        };
        let fits = rep.fits();
        assert!(fits
            .iter()
            .any(|f| f.target == "redis" && f.metric == "bytes/s per cluster"));
        let md = rep.markdown();
        assert!(md.contains("| hearsay | 30 |"), "{md}");
        assert!(md.contains("bytes/s per node 0.70 [0.9-1.1] OUT"), "{md}");
        assert!(md.contains("bytes/s per node 1.00 [0.9-1.1] ok"), "{md}");
        let html = rep.html();
        assert!(html.contains("<svg") && html.contains("~ N^"));
        assert!(!html.contains("<script"));
        let v = rep.to_json();
        assert!(v["fits"].as_array().is_some_and(|a| !a.is_empty()));
    }

    #[test]
    fn gossip_variants_are_set_against_the_plain_hearsay_line() {
        let mut wide = row("hearsay-g5-p2", 30, 21000.0);
        wide.failover.fail_all_ms = Some(20_000.0);
        let mut base = row("hearsay", 30, 14000.0);
        base.failover.fail_all_ms = Some(22_500.0);
        let rep = ScaleReport {
            rows: vec![base, wide, row("redis", 30, 14000.0)],
            ..Default::default()
        };
        let md = rep.markdown();
        assert!(
            md.contains("hearsay-g5-p2 N=30: bytes/s per node x1.50")
                && md.contains("FAIL known by all -2.50 s"),
            "{md}"
        );
        // The variant is not what the hearsay/redis ratios compare.
        assert!(md.contains("bytes/s per node 1.00 [0.9-1.1] ok"), "{md}");
    }
}
