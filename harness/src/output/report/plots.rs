//! The report's charts, each an inline SVG plus an HTML legend, on one shared time
//! axis with the fault windows shaded. Large histories are drawn in pixel bins (one
//! mark per occupied cell, with its count in the tooltip), so the page size is
//! bounded by the chart size, not by the number of ops.

use std::collections::HashMap;
use std::fmt::Write;

use super::data::{self, Loaded, MarkKind, Outcome, SlotMaps};
use super::svg::{self, esc, FaultBar, Svg, TimeScale, LEFT, PLOT_W, WIDTH};

/// Up to this many client ops, every op is its own mark with its own tooltip.
pub const DETAIL_OPS: usize = 6000;
/// Most latency cells drawn before the cells are made coarser.
const MAX_CELLS: usize = 25_000;

/// Shared by every chart of one report.
pub struct Ctx<'a> {
    pub l: &'a Loaded,
    pub ts: TimeScale,
    pub bars: Vec<FaultBar>,
    pub heal_ms: Option<f64>,
    pub converged_ms: Option<f64>,
}

/// A series colour for op function `f` / slot map `i`.
pub fn palette(i: usize) -> &'static str {
    const P: [&str; 12] = [
        "#1f77b4", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f", "#2ca02c",
        "#ff7f0e", "#d62728", "#393b79", "#637939",
    ];
    P.get(i % P.len()).copied().unwrap_or("#444")
}

fn swatch(colour: &str, label: &str) -> String {
    format!(
        r#"<span class="sw"><i style="background:{colour}"></i>{}</span>"#,
        esc(label)
    )
}

fn marker_swatch(shape: usize, colour: &str, filled: bool, label: &str) -> String {
    let fill = if filled { colour } else { "none" };
    format!(
        r#"<span class="sw"><svg width="14" height="14" viewBox="0 0 14 14"><path d="{}" fill="{fill}" stroke="{colour}" stroke-width="1.3"/></svg>{}</span>"#,
        svg::marker(shape, 7.0, 7.0, 4.5),
        esc(label)
    )
}

/// The legend line of the fault kinds present.
pub fn fault_legend(bars: &[FaultBar]) -> String {
    let mut kinds: Vec<&str> = bars.iter().map(|b| b.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    if kinds.is_empty() {
        return r#"<span class="sw muted">no faults injected</span>"#.into();
    }
    kinds
        .iter()
        .map(|k| swatch(svg::fault_colour(k), &format!("{k} (shaded)")))
        .collect::<String>()
}

/// Height above a plot: the fault strip, then a lane for the heal/convergence labels.
fn head_h(c: &Ctx) -> f64 {
    svg::fault_strip_height(&c.bars) + 4.0 + 14.0
}

/// Fault strip on top; returns the y where the plot area begins.
fn frame_top(s: &mut Svg, c: &Ctx) -> f64 {
    svg::fault_strip(s, &c.ts, &c.bars, 2.0);
    head_h(c)
}

/// Shading, heal and convergence lines (labelled in the lane above the plot), axis.
fn frame_bottom(s: &mut Svg, c: &Ctx, y0: f64, y1: f64) {
    svg::fault_shading(s, &c.ts, &c.bars, y0, y1);
    let heal = c.heal_ms.filter(|h| c.ts.contains_ms(*h));
    let conv = c.converged_ms.filter(|v| c.ts.contains_ms(*v));
    let (heal_c, conv_c) = ("#0a7d32", "#1f5fbf");
    for (t, colour) in [(heal, heal_c), (conv, conv_c)] {
        if let Some(t) = t {
            let x = c.ts.x_ms(t);
            s.line(
                x,
                y0 - 12.0,
                x,
                y1,
                colour,
                r#"stroke-width="1.5" stroke-dasharray="5 3""#,
            );
        }
    }
    let label = |s: &mut Svg, x: f64, colour: &str, text: &str| {
        let (anchor, dx) = if x > WIDTH - 260.0 {
            ("end", -4.0)
        } else {
            ("start", 4.0)
        };
        s.text(
            x + dx,
            y0 - 3.0,
            &format!(r#"class="mk" fill="{colour}" text-anchor="{anchor}""#),
            text,
        );
    };
    match (heal, conv) {
        (Some(h), Some(v)) if (c.ts.x_ms(v) - c.ts.x_ms(h)).abs() < 200.0 => {
            let x = c.ts.x_ms(h.max(v));
            let text = format!(
                "final heal {:.1} s · converged {:.1} s (+{})",
                h / 1000.0,
                v / 1000.0,
                svg::ms_label((v - h).max(0.0))
            );
            label(s, x, heal_c, &text);
        }
        (h, v) => {
            if let Some(h) = h {
                label(
                    s,
                    c.ts.x_ms(h),
                    heal_c,
                    &format!("final heal {:.1} s", h / 1000.0),
                );
            }
            if let Some(v) = v {
                label(
                    s,
                    c.ts.x_ms(v),
                    conv_c,
                    &format!("converged {:.1} s", v / 1000.0),
                );
            }
        }
    }
    svg::time_axis(s, &c.ts, y0, y1, true);
}

/// Describes one op for a tooltip.
fn op_title(c: &Ctx, o: &data::ClientOp) -> String {
    let l = c.l;
    let f = l.fs.get(o.f).map(String::as_str).unwrap_or("?");
    let inv = l.op_at(o.invoke);
    let comp = o.completion.and_then(|i| l.op_at(i));
    let value = comp
        .filter(|c| !c.value.is_null())
        .or(inv)
        .map(|op| svg::clip(op.value.raw(), 100))
        .unwrap_or_default();
    let mut t = format!("p{} {f} {value} → {}", o.process, o.outcome.name());
    if let Some(lat) = o.latency_ms() {
        let _ = write!(t, " in {}", svg::ms_label(lat));
    }
    if let Some(node) = comp.and_then(|c| c.node.as_deref()) {
        let _ = write!(t, " @{node}");
    }
    if let Some(err) = comp.and_then(|c| c.error.as_deref()) {
        let _ = write!(t, " error: {}", svg::clip(err, 80));
    }
    let _ = write!(t, " (t={:.3} s)", o.start_ms / 1000.0);
    t
}

/// Section 2: one row per process, each op a bar from invoke to completion.
pub fn timeline(c: &Ctx) -> String {
    let l = c.l;
    if l.ops.is_empty() {
        return r#"<p class="missing">No client ops in the history.</p>"#.into();
    }
    let rows = data::rows(l);
    let n = rows.labels.len();
    let rh = if n > 20 { 9.0 } else { 15.0 };
    let top0 = head_h(c);
    let h = top0 + n as f64 * rh + 40.0;
    let mut s = Svg::new(h, "client operations per process over time");
    let top = frame_top(&mut s, c);
    let bottom = top + n as f64 * rh;
    for (i, label) in rows.labels.iter().enumerate() {
        let y = top + i as f64 * rh;
        if i % 2 == 1 {
            s.rect(LEFT, y, PLOT_W, rh, "#000", r#"fill-opacity="0.03""#, "");
        }
        s.text(
            LEFT - 6.0,
            y + rh * 0.75,
            r#"class="rl" text-anchor="end""#,
            label,
        );
    }
    let row_y = |p: u64| rows.of.get(&p).map(|r| top + *r as f64 * rh + 1.0);
    let end_ms = c.ts.t1 * 1000.0;
    if l.ops.len() <= DETAIL_OPS {
        for o in &l.ops {
            let Some(y) = row_y(o.process) else { continue };
            let x0 = c.ts.x_ms(o.start_ms);
            let x1 = c.ts.x_ms(o.end_ms.unwrap_or(end_ms)).max(x0 + 1.5);
            s.rect(
                x0,
                y,
                x1 - x0,
                rh - 2.0,
                o.outcome.colour(),
                "",
                &op_title(c, o),
            );
        }
    } else {
        binned_timeline(&mut s, c, &rows, top, rh, end_ms);
    }
    frame_bottom(&mut s, c, top, bottom);
    let mut html = s.finish();
    html.push_str(r#"<div class="legend">"#);
    for o in Outcome::ALL {
        html.push_str(&swatch(o.colour(), o.name()));
    }
    html.push_str(&fault_legend(&c.bars));
    html.push_str("</div>");
    if rows.grouped {
        let _ = write!(
            html,
            r#"<p class="note">{} processes (each <em>info</em> outcome starts a new one): rows are worker slots; the tooltip names the processes.</p>"#,
            l.ops
                .iter()
                .map(|o| o.process)
                .collect::<std::collections::HashSet<_>>()
                .len()
        );
    }
    if l.ops.len() > DETAIL_OPS {
        let _ = write!(
            html,
            r#"<p class="note">{} ops drawn in {:.0} px bins: green is the share of ok completions in a bin, the lower part the share of the rest, coloured by the worst outcome present (pending &gt; info &gt; fail); hover for counts.</p>"#,
            l.ops.len(),
            BIN_PX
        );
    }
    html
}

const BIN_PX: f64 = 2.0;

fn binned_timeline(s: &mut Svg, c: &Ctx, rows: &data::Rows, top: f64, rh: f64, end_ms: f64) {
    let nb = (PLOT_W / BIN_PX).ceil() as usize;
    let bin = |t_ms: f64| (((c.ts.x_ms(t_ms) - LEFT) / BIN_PX) as usize).min(nb - 1);
    // Per row and bin: worst outcome present, and completions counted at their end.
    let nrows = rows.labels.len();
    let mut worst: Vec<Option<Outcome>> = vec![None; nrows * nb];
    let mut counts: Vec<[u32; 4]> = vec![[0; 4]; nrows * nb];
    let mut procs: Vec<Vec<u64>> = vec![Vec::new(); nrows];
    for o in &c.l.ops {
        let Some(r) = rows.of.get(&o.process).copied() else {
            continue;
        };
        if let Some(p) = procs.get_mut(r) {
            if p.last() != Some(&o.process) && p.len() < 12 {
                p.push(o.process);
            }
        }
        let (b0, b1) = (bin(o.start_ms), bin(o.end_ms.unwrap_or(end_ms)));
        for b in b0..=b1 {
            if let Some(w) = worst.get_mut(r * nb + b) {
                *w = Some(w.map_or(o.outcome, |x| x.max(o.outcome)));
            }
        }
        let k = Outcome::ALL
            .iter()
            .position(|x| *x == o.outcome)
            .unwrap_or(3);
        if let Some(cnt) = counts.get_mut(r * nb + b1).and_then(|c| c.get_mut(k)) {
            *cnt += 1;
        }
    }
    // What a bin looks like: the worst non-ok outcome in it and the non-ok share of
    // its completions in eighths (at least one eighth when any, so rare failures
    // stay visible); in-flight ops with no completion in the bin count fully.
    let look = |r: usize, b: usize| -> Option<(Option<Outcome>, u8)> {
        let w = worst.get(r * nb + b).copied().flatten()?;
        let cnt = counts.get(r * nb + b).copied().unwrap_or_default();
        let total: u32 = cnt.iter().sum();
        let bad: u32 = cnt.iter().skip(1).sum();
        let bad_kind = (w != Outcome::Ok).then_some(w);
        let eighths = match (total, bad, bad_kind) {
            (_, _, None) => 0,
            (0, _, Some(_)) => 8,
            (_, 0, Some(_)) => 1,
            (t, b, Some(_)) => ((f64::from(b) / f64::from(t) * 8.0).round() as u8).clamp(1, 8),
        };
        Some((bad_kind, eighths))
    };
    let bar_h = rh - 2.0;
    for r in 0..nrows {
        let y = top + r as f64 * rh + 1.0;
        let mut b = 0;
        while b < nb {
            let Some(lk) = look(r, b) else {
                b += 1;
                continue;
            };
            let mut e = b;
            let mut sum = [0u32; 4];
            while e < nb && look(r, e) == Some(lk) {
                if let Some(cnt) = counts.get(r * nb + e) {
                    for (s, x) in sum.iter_mut().zip(cnt) {
                        *s += x;
                    }
                }
                e += 1;
            }
            let x0 = LEFT + b as f64 * BIN_PX;
            let x1 = LEFT + e as f64 * BIN_PX;
            let t = |x: f64| c.ts.t0 + (x - LEFT) / PLOT_W * (c.ts.t1 - c.ts.t0);
            let label = rows.labels.get(r).map(String::as_str).unwrap_or("");
            let mut title = format!(
                "{label} {:.2}–{:.2} s: {} ok, {} fail, {} info, {} pending completions",
                t(x0),
                t(x1),
                sum[0],
                sum[1],
                sum[2],
                sum[3]
            );
            if rows.grouped {
                let ps: Vec<String> = procs
                    .get(r)
                    .map(|p| p.iter().map(|p| format!("p{p}")).collect())
                    .unwrap_or_default();
                let _ = write!(title, " (processes {} …)", ps.join(" "));
            }
            let (bad_kind, eighths) = lk;
            let bad_h = bar_h * f64::from(eighths) / 8.0;
            if eighths < 8 {
                s.rect(
                    x0,
                    y,
                    x1 - x0,
                    bar_h - bad_h,
                    Outcome::Ok.colour(),
                    "",
                    &title,
                );
            }
            if let Some(k) = bad_kind.filter(|_| eighths > 0) {
                s.rect(
                    x0,
                    y + bar_h - bad_h,
                    x1 - x0,
                    bad_h,
                    k.colour(),
                    "",
                    &title,
                );
            }
            b = e;
        }
    }
}

/// Log scale for latencies in ms.
struct LogY {
    lo: f64,
    hi: f64,
    top: f64,
    h: f64,
}

impl LogY {
    fn new(min: f64, max: f64, top: f64, h: f64) -> LogY {
        let min = if min > 0.0 && min.is_finite() {
            min
        } else {
            0.01
        };
        let max = if max > min && max.is_finite() {
            max
        } else {
            min * 10.0
        };
        let lo = 10f64.powf(min.log10().floor());
        let mut hi = 10f64.powf(max.log10().ceil());
        if hi <= lo {
            hi = lo * 10.0;
        }
        LogY { lo, hi, top, h }
    }

    fn y(&self, v: f64) -> f64 {
        let v = v.max(self.lo);
        let f =
            ((v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())).clamp(0.0, 1.0);
        self.top + self.h * (1.0 - f)
    }

    fn axis(&self, s: &mut Svg, title: &str) {
        let mut d = self.lo;
        let mut guard = 0;
        while d <= self.hi * 1.0001 && guard < 30 {
            for m in [1.0, 2.0, 5.0] {
                let v = d * m;
                if v > self.hi * 1.0001 {
                    break;
                }
                let y = self.y(v);
                let op = if m == 1.0 { "0.15" } else { "0.06" };
                s.line(
                    LEFT,
                    y,
                    LEFT + PLOT_W,
                    y,
                    "#000",
                    &format!(r#"stroke-opacity="{op}""#),
                );
                if m == 1.0 || self.hi / self.lo <= 1000.0 {
                    s.text(
                        LEFT - 6.0,
                        y + 4.0,
                        r#"class="tk" text-anchor="end""#,
                        &svg::ms_label(v),
                    );
                }
            }
            d *= 10.0;
            guard += 1;
        }
        s.line(LEFT, self.top, LEFT, self.top + self.h, "#333", "");
        axis_title(s, self.top, self.h, title);
    }
}

fn axis_title(s: &mut Svg, top: f64, h: f64, title: &str) {
    let x = 16.0;
    let y = top + h / 2.0;
    s.text(
        x,
        y,
        &format!(r#"class="ax" text-anchor="middle" transform="rotate(-90 {x} {y:.1})""#),
        title,
    );
}

/// Section 3a: every op's latency against its invoke time, log y.
pub fn latency(c: &Ctx) -> String {
    let l = c.l;
    let lat: Vec<(usize, f64)> = l
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.latency_ms().map(|x| (i, x.max(0.001))))
        .collect();
    if lat.is_empty() {
        return r#"<p class="missing">No completed client ops: no latencies.</p>"#.into();
    }
    let (min, max) = lat
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), (_, x)| (a.min(*x), b.max(*x)));
    let top0 = head_h(c);
    let ph = 300.0;
    let mut s = Svg::new(top0 + ph + 40.0, "latency of each client op, log scale");
    let top = frame_top(&mut s, c);
    let y = LogY::new(min, max, top, ph);
    y.axis(&mut s, "latency (log)");
    frame_bottom(&mut s, c, top, top + ph);
    let r = 2.4;
    if lat.len() <= DETAIL_OPS {
        for (i, ms) in &lat {
            let Some(o) = l.ops.get(*i) else { continue };
            let d = svg::marker(o.f, c.ts.x_ms(o.start_ms), y.y(*ms), r);
            s.path(&d, &point_style(o.outcome), &op_title(c, o));
        }
    } else {
        // One mark per occupied cell and op function, coloured by the outcome most of
        // its ops had (a scatter of every op would paint the rare outcomes over the
        // common ones); cells grow until the page stays small.
        let mut cell = 2.0;
        let cells = loop {
            let mut m: HashMap<(i32, i32, usize), ([u32; 3], f64)> = HashMap::new();
            for (i, ms) in &lat {
                let Some(o) = l.ops.get(*i) else { continue };
                let k = (
                    (c.ts.x_ms(o.start_ms) / cell) as i32,
                    (y.y(*ms) / cell) as i32,
                    o.f,
                );
                let e = m.entry(k).or_insert(([0; 3], 0.0));
                let slot = match o.outcome {
                    Outcome::Ok => 0,
                    Outcome::Fail => 1,
                    _ => 2,
                };
                if let Some(n) = e.0.get_mut(slot) {
                    *n += 1;
                }
                e.1 = e.1.max(*ms);
            }
            if m.len() <= MAX_CELLS || cell >= 16.0 {
                break m;
            }
            cell *= 2.0;
        };
        let majority = |n: &[u32; 3]| -> Outcome {
            // Ties go to the worse outcome.
            let outcomes = [Outcome::Ok, Outcome::Fail, Outcome::Info];
            let mut best = (0u32, Outcome::Ok);
            for (k, o) in n.iter().zip(outcomes) {
                if *k >= best.0 && *k > 0 {
                    best = (*k, o);
                }
            }
            best.1
        };
        let mut cells: Vec<_> = cells
            .into_iter()
            .map(|(k, (n, max))| (majority(&n), k, n, max))
            .collect();
        // Ok cells first, so cells where failures dominate stay on top.
        cells.sort_by_key(|(o, k, _, _)| (*o, *k));
        for (outcome, (cx, cy, f), n, max) in cells {
            let x = (cx as f64 + 0.5) * cell;
            let yy = (cy as f64 + 0.5) * cell;
            let fname = l.fs.get(f).map(String::as_str).unwrap_or("?");
            let t0 = c.ts.t0 + (cx as f64 * cell - LEFT) / PLOT_W * (c.ts.t1 - c.ts.t0);
            let title = format!(
                "{fname} near t={:.1} s: {} ok, {} fail, {} info, up to {}",
                t0.max(0.0),
                n[0],
                n[1],
                n[2],
                svg::ms_label(max)
            );
            s.path(&svg::marker(f, x, yy, r), &point_style(outcome), &title);
        }
    }
    let mut html = s.finish();
    html.push_str(r#"<div class="legend">"#);
    for o in [Outcome::Ok, Outcome::Fail, Outcome::Info] {
        html.push_str(&swatch(o.colour(), o.name()));
    }
    for (i, f) in l.fs.iter().enumerate() {
        html.push_str(&marker_swatch(i, "#444", true, f));
    }
    html.push_str(&fault_legend(&c.bars));
    html.push_str("</div>");
    if lat.len() > DETAIL_OPS {
        let _ = write!(
            html,
            r#"<p class="note">{} latencies drawn as one mark per occupied cell of the plot and op function, coloured by the outcome most of its ops had (hover for the counts; the quantiles below and the throughput plot show every op).</p>"#,
            lat.len()
        );
    }
    html
}

fn point_style(o: Outcome) -> String {
    let op = if o == Outcome::Ok { "0.55" } else { "0.85" };
    format!(
        r#"fill="{}" fill-opacity="{op}" stroke="{}" stroke-width="0.6""#,
        o.colour(),
        o.colour()
    )
}

/// Quantile of sorted values.
fn q(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

/// Section 3b: latency quantiles (p50, p99, max) per op function per time bucket.
pub fn latency_quantiles(c: &Ctx) -> String {
    let l = c.l;
    let tp = data::throughput(l);
    let n = tp.counts.len();
    let mut per: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); n]; l.fs.len()];
    for o in &l.ops {
        let Some(lat) = o.latency_ms() else { continue };
        let b = ((o.start_ms / 1000.0 / tp.bucket_s) as usize).min(n.saturating_sub(1));
        if let Some(v) = per.get_mut(o.f).and_then(|p| p.get_mut(b)) {
            v.push(lat.max(0.001));
        }
    }
    let all_max = per.iter().flatten().flatten().fold(0f64, |a, b| a.max(*b));
    let all_min = per
        .iter()
        .flatten()
        .flatten()
        .fold(f64::MAX, |a, b| a.min(*b));
    if all_max <= 0.0 {
        return String::new();
    }
    let top0 = head_h(c);
    let ph = 220.0;
    let mut s = Svg::new(top0 + ph + 40.0, "latency quantiles over time, log scale");
    let top = frame_top(&mut s, c);
    let y = LogY::new(all_min, all_max, top, ph);
    y.axis(&mut s, "latency (log)");
    frame_bottom(&mut s, c, top, top + ph);
    for (fi, buckets) in per.iter_mut().enumerate() {
        let fname = l.fs.get(fi).map(String::as_str).unwrap_or("?");
        let colour = palette(fi);
        let mut lines: [String; 3] = Default::default();
        for (b, v) in buckets.iter_mut().enumerate() {
            if v.is_empty() {
                continue;
            }
            v.sort_by(|a, b| a.total_cmp(b));
            let x = c.ts.x((b as f64 + 0.5) * tp.bucket_s);
            let qs = [q(v, 0.5), q(v, 0.99), q(v, 1.0)];
            for (line, qv) in lines.iter_mut().zip(qs) {
                let cmd = if line.is_empty() { 'M' } else { 'L' };
                let _ = write!(line, "{cmd}{x:.1} {:.1}", y.y(qv));
            }
            let t0 = b as f64 * tp.bucket_s;
            s.path(
                &svg::marker(0, x, y.y(qs[1]), 1.8),
                &format!(r#"fill="{colour}""#),
                &format!(
                    "{fname} {}–{} s: {} ops, p50 {}, p99 {}, max {}",
                    svg::num(t0),
                    svg::num(t0 + tp.bucket_s),
                    v.len(),
                    svg::ms_label(qs[0]),
                    svg::ms_label(qs[1]),
                    svg::ms_label(qs[2])
                ),
            );
        }
        for (line, (dash, w, name)) in lines.iter().zip([
            ("", "1.8", "p50"),
            (r#"stroke-dasharray="5 3""#, "1.3", "p99"),
            (r#"stroke-dasharray="1 3""#, "1.2", "max"),
        ]) {
            if !line.is_empty() {
                s.path(
                    line,
                    &format!(r#"fill="none" stroke="{colour}" stroke-width="{w}" {dash}"#),
                    &format!("{fname} {name}"),
                );
            }
        }
    }
    let mut html = s.finish();
    html.push_str(r#"<div class="legend">"#);
    for (i, f) in l.fs.iter().enumerate() {
        html.push_str(&swatch(palette(i), f));
    }
    let _ = write!(
        html,
        r#"<span class="sw">solid p50, dashed p99, dotted max, per {} s of invoke time (all completions)</span>"#,
        svg::num(tp.bucket_s)
    );
    html.push_str("</div>");
    html
}

/// Section 3c: completions per second by outcome.
pub fn throughput(c: &Ctx) -> String {
    let l = c.l;
    if l.ops.is_empty() {
        return r#"<p class="missing">No client ops: no throughput.</p>"#.into();
    }
    let tp = data::throughput(l);
    // The last bucket is usually cut short by the run's end: rate over what it covers.
    let end_s = c.ts.t1;
    let width = |b: usize| {
        let start = b as f64 * tp.bucket_s;
        (end_s - start).clamp(tp.bucket_s / 10.0, tp.bucket_s)
    };
    let max = tp
        .counts
        .iter()
        .enumerate()
        .flat_map(|(b, c)| c.iter().map(move |x| (b, *x)))
        .map(|(b, x)| x as f64 / width(b))
        .fold(0f64, f64::max);
    let ymax = if max > 0.0 { max * 1.08 } else { 1.0 };
    let top0 = head_h(c);
    let ph = 200.0;
    let mut s = Svg::new(
        top0 + ph + 40.0,
        "throughput: completions per second by outcome",
    );
    let top = frame_top(&mut s, c);
    let yv = |v: f64| top + ph * (1.0 - (v / ymax).clamp(0.0, 1.0));
    for t in svg::ticks(0.0, ymax, 5.0) {
        let y = yv(t);
        s.line(LEFT, y, LEFT + PLOT_W, y, "#000", r#"stroke-opacity="0.1""#);
        s.text(
            LEFT - 6.0,
            y + 4.0,
            r#"class="tk" text-anchor="end""#,
            &svg::num(t),
        );
    }
    s.line(LEFT, top, LEFT, top + ph, "#333", "");
    axis_title(&mut s, top, ph, "completions / s");
    frame_bottom(&mut s, c, top, top + ph);
    for (k, outcome) in [Outcome::Ok, Outcome::Fail, Outcome::Info]
        .iter()
        .enumerate()
    {
        if tp
            .counts
            .iter()
            .all(|c| c.get(k).copied().unwrap_or(0) == 0)
        {
            continue;
        }
        let mut d = String::new();
        for (b, cnt) in tp.counts.iter().enumerate() {
            let v = cnt.get(k).copied().unwrap_or(0) as f64 / width(b);
            let x0 = c.ts.x(b as f64 * tp.bucket_s);
            let x1 = c.ts.x((b + 1) as f64 * tp.bucket_s);
            let cmd = if d.is_empty() { 'M' } else { 'L' };
            let _ = write!(d, "{cmd}{x0:.1} {:.1}L{x1:.1} {:.1}", yv(v), yv(v));
        }
        s.path(
            &d,
            &format!(
                r#"fill="none" stroke="{}" stroke-width="1.6""#,
                outcome.colour()
            ),
            &format!("{} completions per second", outcome.name()),
        );
    }
    // A hover target per bucket with its numbers.
    for (b, cnt) in tp.counts.iter().enumerate() {
        let x0 = c.ts.x(b as f64 * tp.bucket_s);
        let x1 = c.ts.x((b + 1) as f64 * tp.bucket_s);
        let t0 = b as f64 * tp.bucket_s;
        s.rect(
            x0,
            top,
            x1 - x0,
            ph,
            "#000",
            r#"fill-opacity="0""#,
            &format!(
                "{}–{} s: {} ok/s, {} fail/s, {} info/s",
                svg::num(t0),
                svg::num(t0 + tp.bucket_s),
                svg::num(cnt[0] as f64 / width(b)),
                svg::num(cnt[1] as f64 / width(b)),
                svg::num(cnt[2] as f64 / width(b))
            ),
        );
    }
    let mut html = s.finish();
    html.push_str(r#"<div class="legend">"#);
    for o in [Outcome::Ok, Outcome::Fail, Outcome::Info] {
        html.push_str(&swatch(o.colour(), o.name()));
    }
    let _ = write!(
        html,
        r#"<span class="sw">per {} s bucket, by completion time</span>"#,
        svg::num(tp.bucket_s)
    );
    html.push_str(&fault_legend(&c.bars));
    html.push_str("</div>");
    html
}

/// Section 4: per observer node, what it believed about each other node.
pub fn detection(c: &Ctx) -> String {
    let obs = data::observers(&c.l.run);
    if obs.is_empty() {
        return r#"<p class="missing">No node folders with events.jsonl: no failure-detection timeline.</p>"#.into();
    }
    let lane_h = 13.0;
    let gap = 6.0;
    let lanes: usize = obs.iter().map(|o| 1 + o.subjects.len()).sum();
    let top0 = head_h(c);
    let ph = lanes as f64 * lane_h + obs.len() as f64 * gap;
    let mut s = Svg::new(top0 + ph + 40.0, "failure detection per observer node");
    let top = frame_top(&mut s, c);
    frame_bottom(&mut s, c, top, top + ph);
    let end_ms = c.ts.t1 * 1000.0;
    let mut y = top;
    let mut hidden = 0usize;
    let mut unplaced = 0usize;
    for (oi, o) in obs.iter().enumerate() {
        unplaced += o.unplaced;
        own_lane(&mut s, c, &o.node, y, lane_h, end_ms);
        if oi > 0 {
            s.line(
                8.0,
                y - gap / 2.0,
                WIDTH - 8.0,
                y - gap / 2.0,
                "#999",
                r#"stroke-opacity="0.5""#,
            );
        }
        let kind = if o.kind.is_empty() {
            String::new()
        } else {
            format!(" ({})", o.kind)
        };
        s.text(
            LEFT - 6.0,
            y + 10.0,
            r#"class="rlb" text-anchor="end""#,
            &format!("{}{kind}", o.node),
        );
        let lane_of = |about: &Option<String>| -> f64 {
            match about {
                None => y,
                Some(a) => {
                    let i = o.subjects.iter().position(|x| x == a).unwrap_or(0);
                    y + (i + 1) as f64 * lane_h
                }
            }
        };
        for (i, subj) in o.subjects.iter().enumerate() {
            let ly = y + (i + 1) as f64 * lane_h;
            s.text(
                LEFT - 6.0,
                ly + 10.0,
                r#"class="rl" text-anchor="end""#,
                &format!("about {subj}"),
            );
            s.line(
                LEFT,
                ly + 6.5,
                LEFT + PLOT_W,
                ly + 6.5,
                "#000",
                r#"stroke-opacity="0.07""#,
            );
        }
        for sp in &o.spans {
            if sp.start_ms > end_ms {
                // Its PFAIL/FAIL mark is counted as outside below.
                continue;
            }
            let ly = lane_of(&Some(sp.about.clone()));
            let x0 = c.ts.x_ms(sp.start_ms);
            let x1 = c.ts.x_ms(sp.end_ms.unwrap_or(end_ms)).max(x0 + 2.0);
            let (colour, what) = if sp.fail {
                ("#c00000", "FAIL")
            } else {
                ("#f08c00", "PFAIL")
            };
            let title = format!(
                "{} held {what} about {} {:.2}–{}: {}; {}",
                o.node,
                sp.about,
                sp.start_ms / 1000.0,
                sp.end_ms
                    .map_or("end".to_string(), |e| format!("{:.2} s", e / 1000.0)),
                sp.how,
                if sp.ended_by.is_empty() {
                    "still held at the end".to_string()
                } else {
                    format!("ended: {}", sp.ended_by)
                }
            );
            s.rect(
                x0,
                ly + 3.0,
                x1 - x0,
                7.0,
                colour,
                r#"fill-opacity="0.45""#,
                &title,
            );
        }
        for (about, m) in &o.marks {
            if !c.ts.contains_ms(m.t_ms) {
                hidden += 1;
                continue;
            }
            let (shape, colour, filled) = m.kind.style();
            let ly = if m.kind.own_lane() { y } else { lane_of(about) };
            let fill = if filled { colour } else { "white" };
            s.path(
                &svg::marker(shape, c.ts.x_ms(m.t_ms), ly + 6.5, 3.6),
                &format!(r#"fill="{fill}" stroke="{colour}" stroke-width="1.2""#),
                &format!("{} at {:.3} s: {}", o.node, m.t_ms / 1000.0, m.text),
            );
        }
        y += (1 + o.subjects.len()) as f64 * lane_h + gap;
    }
    let mut html = s.finish();
    html.push_str(r#"<div class="legend">"#);
    html.push_str(&swatch("#f08c00", "PFAIL held"));
    html.push_str(&swatch("#c00000", "FAIL held"));
    for k in [
        MarkKind::PfailSet,
        MarkKind::PfailCleared,
        MarkKind::FailMarked,
        MarkKind::FailReceived,
        MarkKind::FailCleared,
        MarkKind::ElectionStarted,
        MarkKind::ElectionWon,
        MarkKind::VoteGranted,
        MarkKind::VoteRefused,
        MarkKind::Restarted,
    ] {
        let (shape, colour, filled) = k.style();
        html.push_str(&marker_swatch(shape, colour, filled, k.name()));
    }
    html.push_str(&fault_legend(&c.bars));
    html.push_str("</div>");
    html.push_str(r#"<p class="note">Each observer's first lane holds its role (master lanes tinted blue), its elections, votes and restarts, and a thin bar when a fault was aimed at it alone (paused, killed, clock); the lanes under it, what it believed about each other node. Times are on the harness's clock (clock-nemesis offsets removed).</p>"#);
    if hidden + unplaced > 0 {
        let _ = write!(
            html,
            r#"<p class="note">{hidden} events fall outside the run's time span (cluster formation, shutdown) and {unplaced} could not be placed on the timeline; they are not drawn.</p>"#
        );
    }
    html
}

/// The observer's own lane background: its role over time (from its snapshots) and
/// the faults aimed at it alone (paused, killed, clock moved), so a silent stretch
/// reads as "it could not observe".
fn own_lane(s: &mut Svg, c: &Ctx, node: &str, y: f64, lane_h: f64, end_ms: f64) {
    for (role, from, to) in data::roles(&c.l.run, node, end_ms) {
        let (x0, x1) = (c.ts.x_ms(from), c.ts.x_ms(to));
        let fill = if role == "master" { "#1f5fbf" } else { "#000" };
        let op = if role == "master" { "0.08" } else { "0.03" };
        s.rect(
            x0,
            y,
            (x1 - x0).max(1.0),
            lane_h,
            fill,
            &format!(r#"fill-opacity="{op}""#),
            &format!(
                "{node} was {role} {:.1}–{:.1} s (its CLUSTER NODES snapshots)",
                from / 1000.0,
                to / 1000.0
            ),
        );
        if x1 - x0 > 50.0 {
            s.text(x0 + 3.0, y + 10.0, r#"class="role""#, &role);
        }
    }
    for f in &c.l.run.faults {
        if f.kind == "partition" || !f.targets.iter().any(|t| t == node) {
            continue;
        }
        let stop = f.stop_ms.map_or(end_ms, |t| t as f64);
        let (x0, x1) = (c.ts.x_ms(f.start_ms as f64), c.ts.x_ms(stop));
        let what = match f.kind.as_str() {
            "pause" => "paused",
            "kill" => "killed",
            "clock" => "clock moved",
            other => other,
        };
        s.rect(
            x0,
            y + lane_h - 4.0,
            (x1 - x0).max(2.0),
            3.5,
            svg::fault_colour(&f.kind),
            "",
            &format!(
                "{node} {what} {:.1}–{:.1} s",
                f.start_ms as f64 / 1000.0,
                stop / 1000.0
            ),
        );
    }
}

/// Section 5: how many slot maps the nodes held, and each node's map over time.
pub fn convergence(c: &Ctx, sm: &SlotMaps) -> String {
    if sm.rounds.is_empty() {
        return r#"<p class="missing">No snapshots (snapshots.jsonl missing or empty): no slot-map timeline.</p>"#.into();
    }
    let nodes: Vec<String> = {
        let mut v: Vec<String> = sm
            .rounds
            .iter()
            .flat_map(|r| r.views.keys().cloned())
            .collect();
        v.sort_by_key(|s| data::natural_key(s));
        v.dedup();
        v
    };
    let maxy = sm
        .rounds
        .iter()
        .map(|r| r.distinct().max(r.silent()))
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    let top0 = head_h(c);
    let ch = 120.0;
    let rh = 14.0;
    let strip_top_rel = ch + 26.0;
    let ph = strip_top_rel + nodes.len() as f64 * rh;
    let mut s = Svg::new(top0 + ph + 40.0, "slot-map convergence over time");
    let top = frame_top(&mut s, c);
    let yv = |v: f64| top + ch * (1.0 - v / maxy);
    for t in 0..=(maxy as usize) {
        let y = yv(t as f64);
        s.line(LEFT, y, LEFT + PLOT_W, y, "#000", r#"stroke-opacity="0.1""#);
        s.text(
            LEFT - 6.0,
            y + 4.0,
            r#"class="tk" text-anchor="end""#,
            &t.to_string(),
        );
    }
    s.line(LEFT, top, LEFT, top + ch, "#333", "");
    axis_title(&mut s, top, ch, "count");
    frame_bottom(&mut s, c, top, top + ph);
    let end_ms = c.ts.t1 * 1000.0;
    let next_t = |i: usize| sm.rounds.get(i + 1).map_or(end_ms, |r| r.t_ms as f64);
    for (series, colour, name) in [
        (0, "#1f5fbf", "distinct slot maps"),
        (1, "#8c8c8c", "nodes not answering"),
    ] {
        let mut d = String::new();
        for (i, r) in sm.rounds.iter().enumerate() {
            let v = if series == 0 {
                r.distinct()
            } else {
                r.silent()
            } as f64;
            let (x0, x1) = (c.ts.x_ms(r.t_ms as f64), c.ts.x_ms(next_t(i)));
            let cmd = if d.is_empty() { 'M' } else { 'L' };
            let _ = write!(d, "{cmd}{x0:.1} {:.1}L{x1:.1} {:.1}", yv(v), yv(v));
        }
        s.path(
            &d,
            &format!(r#"fill="none" stroke="{colour}" stroke-width="2""#),
            name,
        );
    }
    for (i, r) in sm.rounds.iter().enumerate() {
        let (x0, x1) = (c.ts.x_ms(r.t_ms as f64), c.ts.x_ms(next_t(i)));
        s.rect(
            x0,
            top,
            (x1 - x0).max(1.0),
            ch,
            "#000",
            r#"fill-opacity="0""#,
            &format!(
                "snapshot round at {:.2} s: {} distinct slot maps among {} answering nodes, {} not answering",
                r.t_ms as f64 / 1000.0,
                r.distinct(),
                r.views.len() - r.silent(),
                r.silent()
            ),
        );
    }
    // Per node: its slot map over time, one colour per distinct map.
    let strip_top = top + strip_top_rel;
    s.text(
        LEFT,
        strip_top - 6.0,
        r#"class="ax""#,
        "each node's slot map (same colour = same map)",
    );
    for (ni, node) in nodes.iter().enumerate() {
        let y = strip_top + ni as f64 * rh;
        s.text(
            LEFT - 6.0,
            y + 10.5,
            r#"class="rl" text-anchor="end""#,
            node,
        );
        let mut i = 0;
        while i < sm.rounds.len() {
            let Some(view) = sm.rounds.get(i).and_then(|r| r.views.get(node)).copied() else {
                i += 1;
                continue;
            };
            let mut j = i + 1;
            while j < sm.rounds.len()
                && sm.rounds.get(j).and_then(|r| r.views.get(node)).copied() == Some(view)
            {
                j += 1;
            }
            let t0 = sm.rounds.get(i).map_or(0.0, |r| r.t_ms as f64);
            let t1 = next_t(j - 1);
            let (x0, x1) = (c.ts.x_ms(t0), c.ts.x_ms(t1));
            let (fill, title) = match view {
                Some(m) => (
                    palette(m),
                    format!(
                        "{node} {:.1}–{:.1} s: map #{}: {}",
                        t0 / 1000.0,
                        t1 / 1000.0,
                        m + 1,
                        sm.maps.get(m).map(String::as_str).unwrap_or("?")
                    ),
                ),
                None => (
                    "#dddddd",
                    format!(
                        "{node} {:.1}–{:.1} s: not answering",
                        t0 / 1000.0,
                        t1 / 1000.0
                    ),
                ),
            };
            s.rect(x0, y + 1.0, (x1 - x0).max(1.0), rh - 2.0, fill, "", &title);
            i = j;
        }
    }
    let mut html = s.finish();
    html.push_str(r#"<div class="legend">"#);
    html.push_str(&swatch(
        "#1f5fbf",
        "distinct slot maps among answering nodes",
    ));
    html.push_str(&swatch("#8c8c8c", "nodes not answering"));
    html.push_str(&swatch("#0a7d32", "final heal (dashed)"));
    html.push_str(&swatch("#1f5fbf", "converged (dashed)"));
    html.push_str("</div><table class=\"maps\"><tr><th></th><th>slot map (owner of each range, as the node saw it)</th><th>rounds</th></tr>");
    let mut uses = vec![0usize; sm.maps.len()];
    for r in &sm.rounds {
        for m in r.views.values().flatten() {
            if let Some(u) = uses.get_mut(*m) {
                *u += 1;
            }
        }
    }
    for (i, m) in sm.maps.iter().enumerate().take(16) {
        let _ = write!(
            html,
            r#"<tr><td><span class="sw"><i style="background:{}"></i>#{}</span></td><td>{}</td><td>{}</td></tr>"#,
            palette(i),
            i + 1,
            esc(m),
            uses.get(i).copied().unwrap_or(0)
        );
    }
    if sm.maps.len() > 16 {
        let _ = write!(
            html,
            "<tr><td></td><td>… {} more maps</td><td></td></tr>",
            sm.maps.len() - 16
        );
    }
    html.push_str("</table>");
    html
}
