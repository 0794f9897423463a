//! Small inline-SVG toolkit: one shared time axis, ticks, fault shading, escaping.
//! Every chart of a report uses the same [`TimeScale`] and width, so their x axes line
//! up on the page and a fault window sits at the same place in every plot.

use std::fmt::Write;

use hearsay_checkers::run_data::FaultWindow;

/// Width of every chart in px.
pub const WIDTH: f64 = 1320.0;
/// Left margin (row labels, y tick labels).
pub const LEFT: f64 = 130.0;
/// Right margin.
pub const RIGHT: f64 = 20.0;
/// Drawing width between the margins.
pub const PLOT_W: f64 = WIDTH - LEFT - RIGHT;

/// Outcome colours, used by every chart and legend.
pub const OK: &str = "#2e9e44";
pub const FAIL: &str = "#d62728";
pub const INFO: &str = "#f08c00";
pub const PENDING: &str = "#8c8c8c";

/// Escapes text for XML/HTML content and attribute values.
pub use crate::output::markup::escape as esc;

/// Shortens `s` to at most `max` chars (with an ellipsis).
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The run's time axis: seconds since the history's time 0.
#[derive(Clone, Copy, Debug)]
pub struct TimeScale {
    pub t0: f64,
    pub t1: f64,
}

impl TimeScale {
    pub fn new(t0: f64, t1: f64) -> TimeScale {
        let t1 = if t1 > t0 { t1 } else { t0 + 1.0 };
        TimeScale { t0, t1 }
    }

    /// x of a time in seconds (clamped to the plot).
    pub fn x(&self, t_s: f64) -> f64 {
        let f = ((t_s - self.t0) / (self.t1 - self.t0)).clamp(0.0, 1.0);
        LEFT + f * PLOT_W
    }

    pub fn x_ms(&self, t_ms: f64) -> f64 {
        self.x(t_ms / 1000.0)
    }

    pub fn contains_ms(&self, t_ms: f64) -> bool {
        let t = t_ms / 1000.0;
        t >= self.t0 && t <= self.t1
    }
}

/// A 1-2-5 step giving about `n` ticks over `range`.
pub fn nice_step(range: f64, n: f64) -> f64 {
    if range.is_nan() || range <= 0.0 || !range.is_finite() {
        return 1.0;
    }
    let raw = range / n.max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let r = raw / mag;
    let s = if r < 1.5 {
        1.0
    } else if r < 3.5 {
        2.0
    } else if r < 7.5 {
        5.0
    } else {
        10.0
    };
    s * mag
}

/// Tick values in `[lo, hi]` at a nice step.
pub fn ticks(lo: f64, hi: f64, n: f64) -> Vec<f64> {
    let step = nice_step(hi - lo, n);
    let mut out = Vec::new();
    let mut v = (lo / step).ceil() * step;
    while v <= hi + step * 1e-9 && out.len() < 200 {
        out.push(v);
        v += step;
    }
    out
}

/// A number without needless decimals.
pub fn num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e12 {
        format!("{}", v as i64)
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Milliseconds as a short label (`0.5 ms`, `20 ms`, `1.5 s`).
pub fn ms_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", num(ms / 1000.0))
    } else {
        format!("{} ms", num(ms))
    }
}

/// An SVG document being written.
pub struct Svg {
    out: String,
}

impl Svg {
    pub fn new(height: f64, label: &str) -> Svg {
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" role="img" aria-label="{}">"#,
            esc(label)
        );
        Svg { out }
    }

    pub fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// A rectangle; `title` becomes its tooltip.
    #[allow(clippy::too_many_arguments)]
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, attrs: &str, title: &str) {
        let _ = write!(
            self.out,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}" {attrs}>"#,
            w.max(0.0),
            h.max(0.0)
        );
        self.title_close(title, "rect");
    }

    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str, attrs: &str) {
        let _ = write!(
            self.out,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}" {attrs}/>"#
        );
    }

    pub fn text(&mut self, x: f64, y: f64, attrs: &str, s: &str) {
        let _ = write!(
            self.out,
            r#"<text x="{x:.1}" y="{y:.1}" {attrs}>{}</text>"#,
            esc(s)
        );
    }

    /// A path element with an optional tooltip.
    pub fn path(&mut self, d: &str, attrs: &str, title: &str) {
        let _ = write!(self.out, r#"<path d="{d}" {attrs}>"#);
        self.title_close(title, "path");
    }

    fn title_close(&mut self, title: &str, tag: &str) {
        if !title.is_empty() {
            let _ = write!(self.out, "<title>{}</title>", esc(title));
        }
        let _ = write!(self.out, "</{tag}>");
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

/// Marker path (centred on x, y) for a shape index: circle, square, triangle,
/// diamond, cross, then repeat.
pub fn marker(shape: usize, x: f64, y: f64, r: f64) -> String {
    match shape % 5 {
        0 => format!(
            "M{:.1} {y:.1}a{r:.1} {r:.1} 0 1 0 {:.1} 0a{r:.1} {r:.1} 0 1 0 {:.1} 0",
            x - r,
            2.0 * r,
            -2.0 * r
        ),
        1 => format!(
            "M{:.1} {:.1}h{:.1}v{:.1}h{:.1}z",
            x - r,
            y - r,
            2.0 * r,
            2.0 * r,
            -2.0 * r
        ),
        2 => format!(
            "M{x:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}z",
            y - r * 1.2,
            x + r * 1.1,
            y + r * 0.9,
            x - r * 1.1,
            y + r * 0.9
        ),
        3 => format!(
            "M{x:.1} {:.1}L{:.1} {y:.1}L{x:.1} {:.1}L{:.1} {y:.1}z",
            y - r * 1.3,
            x + r * 1.3,
            y + r * 1.3,
            x - r * 1.3
        ),
        _ => format!(
            "M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}",
            x - r,
            y - r,
            x + r,
            y + r,
            x - r,
            y + r,
            x + r,
            y - r
        ),
    }
}

/// Colour of a fault kind.
pub fn fault_colour(kind: &str) -> &'static str {
    match kind {
        "partition" => "#e45756",
        "pause" => "#4c78a8",
        "kill" => "#555555",
        "clock" => "#b8860b",
        "loss" | "delay" => "#9d4edd",
        "reshard" => "#2ca02c",
        "member" => "#17becf",
        _ => "#888888",
    }
}

/// One fault window, ready to draw: where, what colour, what label.
#[derive(Clone, Debug)]
pub struct FaultBar {
    pub kind: String,
    pub start_ms: f64,
    pub stop_ms: f64,
    pub label: String,
    /// Which stacked lane of the fault strip it sits in (overlapping faults).
    pub lane: usize,
    /// Stopped by the final heal rather than its own stop op.
    pub open: bool,
}

/// The label of a fault: kind and whom it touches. Partitions name their sides
/// (nodes that still reach each other, both ways), e.g. `n1 | n2 n3`.
pub fn fault_label(f: &FaultWindow) -> String {
    let mut s = f.kind.clone();
    if let Some(d) = f.clock_delta_ms {
        let _ = write!(
            s,
            " {}{}",
            if d >= 0 { "+" } else { "" },
            ms_label(d as f64)
        );
        if f.strobe {
            s.push_str(" strobe");
        }
    }
    if let Some(d) = &f.detail {
        // A slot move or a membership change says what moved, not just whom.
        let _ = write!(s, ": {d}");
    } else if !f.grudge.is_empty() {
        let _ = write!(s, ": {}", partition_sides(f));
    } else if !f.targets.is_empty() {
        let _ = write!(s, ": {}", f.targets.join(" "));
    }
    s
}

/// The sides of a partition: union of nodes that neither refuses the other.
fn partition_sides(f: &FaultWindow) -> String {
    let mut nodes: Vec<&String> = f
        .grudge
        .iter()
        .flat_map(|(k, v)| std::iter::once(k).chain(v.iter()))
        .collect();
    nodes.sort();
    nodes.dedup();
    let refuses = |a: &str, b: &str| f.grudge.get(a).is_some_and(|v| v.iter().any(|x| x == b));
    let mut side: Vec<usize> = (0..nodes.len()).collect();
    fn root(side: &mut [usize], mut i: usize) -> usize {
        while let Some(&p) = side.get(i) {
            if p == i {
                break;
            }
            i = p;
        }
        i
    }
    let mut one_way = false;
    for (i, a) in nodes.iter().enumerate() {
        for (j, b) in nodes.iter().enumerate().skip(i + 1) {
            let (ab, ba) = (refuses(a, b), refuses(b, a));
            one_way |= ab != ba;
            if !ab && !ba {
                let (ri, rj) = (root(&mut side, i), root(&mut side, j));
                if let Some(s) = side.get_mut(rj) {
                    *s = ri;
                }
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<&str>> = Default::default();
    for (i, n) in nodes.iter().enumerate() {
        groups.entry(root(&mut side, i)).or_default().push(n);
    }
    let mut parts: Vec<String> = groups.values().map(|g| g.join(" ")).collect();
    parts.sort();
    let mut s = parts.join(" | ");
    if one_way {
        s.push_str(" (one-way cuts)");
    }
    s
}

/// Fault windows as bars, each in a lane so that overlapping faults do not hide
/// each other.
pub fn fault_bars(faults: &[FaultWindow], end_ms: f64) -> Vec<FaultBar> {
    let mut lanes_end: Vec<f64> = Vec::new();
    let mut out = Vec::new();
    let mut sorted: Vec<&FaultWindow> = faults.iter().collect();
    sorted.sort_by_key(|f| f.start_ms);
    for f in sorted {
        let start = f.start_ms as f64;
        let stop = f.stop_ms.map_or(end_ms, |s| s as f64).max(start);
        let lane = match lanes_end.iter().position(|e| *e <= start) {
            Some(i) => i,
            None => {
                lanes_end.push(0.0);
                lanes_end.len() - 1
            }
        };
        if let Some(e) = lanes_end.get_mut(lane) {
            *e = stop;
        }
        out.push(FaultBar {
            kind: f.kind.clone(),
            start_ms: start,
            stop_ms: stop,
            label: fault_label(f),
            lane,
            open: f.stop_ms.is_none(),
        });
    }
    out
}

/// Tooltip text of a fault bar.
pub fn fault_title(b: &FaultBar) -> String {
    format!(
        "{}  {:.1}–{:.1} s{}",
        b.label,
        b.start_ms / 1000.0,
        b.stop_ms / 1000.0,
        if b.open {
            " (ended by the final heal)"
        } else {
            ""
        }
    )
}

/// Height of the fault strip for these bars.
pub fn fault_strip_height(bars: &[FaultBar]) -> f64 {
    let lanes = bars.iter().map(|b| b.lane + 1).max().unwrap_or(0);
    lanes as f64 * 15.0
}

/// Draws the labelled fault strip (one lane per overlap level) starting at `y`.
pub fn fault_strip(svg: &mut Svg, ts: &TimeScale, bars: &[FaultBar], y: f64) {
    for b in bars {
        let x0 = ts.x_ms(b.start_ms);
        let x1 = ts.x_ms(b.stop_ms).max(x0 + 2.0);
        let yy = y + b.lane as f64 * 15.0;
        svg.rect(
            x0,
            yy,
            x1 - x0,
            13.0,
            fault_colour(&b.kind),
            r#"fill-opacity="0.75" rx="2""#,
            &fault_title(b),
        );
        // Label inside the bar, cut to what fits (about 6 px per char at 10 px).
        let fits = ((x1 - x0 - 4.0) / 5.8).floor().max(0.0) as usize;
        if fits >= 3 {
            svg.text(x0 + 3.0, yy + 10.0, r#"class="fl""#, &clip(&b.label, fits));
        }
    }
}

/// Shades fault windows over a plot area (`y0`..`y1`).
pub fn fault_shading(svg: &mut Svg, ts: &TimeScale, bars: &[FaultBar], y0: f64, y1: f64) {
    for b in bars {
        let x0 = ts.x_ms(b.start_ms);
        let x1 = ts.x_ms(b.stop_ms).max(x0 + 1.0);
        svg.rect(
            x0,
            y0,
            x1 - x0,
            y1 - y0,
            fault_colour(&b.kind),
            r#"fill-opacity="0.12""#,
            &fault_title(b),
        );
    }
}

/// Time axis at `y` (the bottom of a plot), with grid lines up to `grid_top`.
pub fn time_axis(svg: &mut Svg, ts: &TimeScale, grid_top: f64, y: f64, title: bool) {
    svg.line(LEFT, y, LEFT + PLOT_W, y, "#333", "");
    for t in ticks(ts.t0, ts.t1, 14.0) {
        let x = ts.x(t);
        svg.line(x, grid_top, x, y, "#000", r#"stroke-opacity="0.08""#);
        svg.line(x, y, x, y + 4.0, "#333", "");
        svg.text(x, y + 15.0, r#"class="tk" text-anchor="middle""#, &num(t));
    }
    if title {
        svg.text(
            LEFT + PLOT_W / 2.0,
            y + 30.0,
            r#"class="ax" text-anchor="middle""#,
            "time since the run started (s)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn ticks_are_nice_and_in_range() {
        assert_eq!(
            ticks(0.0, 30.0, 6.0),
            vec![0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
        );
        assert_eq!(nice_step(1.0, 10.0), 0.1);
        assert!(ticks(0.0, 0.0, 5.0).len() <= 1);
        assert!(ticks(0.0, f64::NAN, 5.0).len() <= 200);
    }

    #[test]
    fn clips_with_an_ellipsis() {
        assert_eq!(clip("abcdef", 4), "abc…");
    }

    #[test]
    fn partition_label_names_the_sides() {
        let mut grudge = BTreeMap::new();
        let all = ["n1", "n2", "n3", "n4"];
        for a in all {
            let others: Vec<String> = if a == "n1" {
                vec!["n2".into(), "n3".into(), "n4".into()]
            } else {
                vec!["n1".into()]
            };
            grudge.insert(a.to_string(), others);
        }
        let f = FaultWindow {
            kind: "partition".into(),
            start_ms: 0,
            stop_ms: Some(10),
            targets: all.iter().map(|s| s.to_string()).collect(),
            grudge,
            clock_delta_ms: None,
            strobe: false,
            detail: None,
        };
        assert_eq!(fault_label(&f), "partition: n1 | n2 n3 n4");
    }

    #[test]
    fn overlapping_faults_get_separate_lanes() {
        let w = |start: i64, stop: Option<i64>| FaultWindow {
            kind: "pause".into(),
            start_ms: start,
            stop_ms: stop,
            targets: vec!["n1".into()],
            grudge: BTreeMap::new(),
            clock_delta_ms: None,
            strobe: false,
            detail: None,
        };
        let bars = fault_bars(&[w(0, Some(100)), w(50, Some(150)), w(120, None)], 500.0);
        let lanes: Vec<usize> = bars.iter().map(|b| b.lane).collect();
        assert_eq!(lanes, vec![0, 1, 0]);
        assert_eq!(bars[2].stop_ms, 500.0);
        assert!(bars[2].open);
    }
}
