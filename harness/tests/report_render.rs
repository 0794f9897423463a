//! The report of a real short run, opened in headless Chromium: the page loads without
//! errors, every section is in the DOM, and a screenshot is written (kept under
//! `target/tmp/report-render/` for a person to look at). Needs root, nft, a built
//! hearsay-node and /usr/bin/chromium; skips with the reason otherwise (fails under
//! CI=true). The CLI checks at the bottom need nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
use hearsay_harness::output::report::SECTIONS;

use common::hearsay;

/// Runs headless Chromium on `page` with `extra` flags; (stdout, stderr). Bounded:
/// the browser is killed (by its PID) after 120 s.
fn chromium(page: &Path, extra: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (so, se) = (out.path().join("stdout"), out.path().join("stderr"));
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&so).unwrap())
        .stderr(std::fs::File::create(&se).unwrap())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (
        std::fs::read_to_string(so).unwrap_or_default(),
        std::fs::read_to_string(se).unwrap_or_default(),
    )
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(..8)? != b"\x89PNG\r\n\x1a\n" || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let be = |r: std::ops::Range<usize>| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(r)?.try_into().ok()?))
    };
    Some((be(16..20)?, be(20..24)?))
}

fn keep_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-render");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn real_run_report_renders_in_headless_chromium() {
    if !common::require(true, false, false) || !common::require_hearsay_node() {
        return;
    }
    if !Path::new(CHROMIUM).is_file() {
        hearsay_harness::skip_or_fail("needs /usr/bin/chromium (apt-get install chromium)");
        return;
    }
    let reg = tempfile::tempdir().unwrap();
    let res = tempfile::tempdir().unwrap();
    let (code, out, err) = hearsay(
        &[
            "run",
            "--target",
            "hearsay",
            "--workload",
            "set",
            "--nemesis",
            "partition,pause",
            "--nemesis-interval",
            "3",
            "--time-limit",
            "12",
            "--seed",
            "20",
            "--results-dir",
            &res.path().to_string_lossy(),
        ],
        reg.path(),
    );
    assert!(code == 0 || code == 1, "run exit {code}: {out}{err}");
    // The run wrote its report and the index itself.
    let run = std::fs::canonicalize(res.path().join("latest")).unwrap();
    let page = run.join("report.html");
    assert!(page.is_file(), "no report.html after the run: {err}");
    let index = std::fs::read_to_string(res.path().join("index.html")).unwrap();
    let rel = run
        .strip_prefix(std::fs::canonicalize(res.path()).unwrap())
        .unwrap();
    assert!(
        index.contains(&format!(r#"href="{}/report.html""#, rel.display())),
        "index links the run: {index}"
    );
    // `hearsay report` regenerates it.
    std::fs::remove_file(&page).unwrap();
    let (code, out, err) = hearsay(&["report", &run.to_string_lossy()], reg.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(page.is_file());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.len() > 50_000, "suspiciously small page");
    assert!(!html.contains("<script") && !html.contains("src="));

    // The DOM after loading: every section, the plots, no missing-input notes; and
    // the browser's log of that load: no script errors, no console messages at all
    // (the page has no script).
    let (dom, log) = chromium(
        &page,
        &[
            "--dump-dom".into(),
            "--enable-logging=stderr".into(),
            "--v=0".into(),
        ],
    );
    for id in SECTIONS {
        assert!(
            dom.contains(&format!(r#"id="{id}""#)),
            "section {id} not in the DOM"
        );
    }
    assert!(
        dom.matches("<svg").count() >= 6,
        "plots missing from the DOM"
    );
    assert!(
        !dom.contains(r#"id="notes""#),
        "a real run's report lists missing inputs"
    );
    // Seed 20 draws a pause (3.7-6.2 s) then a partition (8.4-10.3 s): both windows
    // are labelled in the fault strip.
    for label in [r#"class="fl">pause: "#, r#"class="fl">partition: "#] {
        assert!(dom.contains(label), "fault window not labelled: {label}");
    }
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Uncaught") || l.contains("CONSOLE"))
        .collect();
    assert!(bad.is_empty(), "console output: {bad:?}");

    // Screenshot: a real image of the requested size, kept for a person to look at.
    let keep = keep_dir();
    let shot = keep.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let _ = chromium(
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,3000".into(),
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(png_size(&png), Some((1400, 3000)), "not a 1400x3000 PNG");
    // A blank page compresses to a few KB; plots and text make it far larger.
    assert!(png.len() > 80_000, "screenshot only {} bytes", png.len());
    std::fs::copy(&page, keep.join("report.html")).unwrap();
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn report_cli_handles_missing_folders_and_empty_results() {
    let reg = tempfile::tempdir().unwrap();
    let d = tempfile::tempdir().unwrap();
    let (code, _, err) = hearsay(
        &["report", &d.path().join("nope").to_string_lossy()],
        reg.path(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("not a run folder"), "{err}");
    // An empty folder still gets a page that says what is missing.
    let (code, out, err) = hearsay(&["report", &d.path().to_string_lossy()], reg.path());
    assert_eq!(code, 0, "{out}{err}");
    let html = std::fs::read_to_string(d.path().join("report.html")).unwrap();
    assert!(html.contains("NOT JUDGED") && html.contains("history.jsonl"));
    let (code, _, _) = hearsay(
        &["report", "--index", &d.path().to_string_lossy()],
        reg.path(),
    );
    assert_eq!(code, 0);
    let index = std::fs::read_to_string(d.path().join("index.html")).unwrap();
    assert!(index.contains("No runs yet"));
    let (code, _, _) = hearsay(&["report"], reg.path());
    assert_eq!(code, 254, "a report of nothing is a usage error");
}
