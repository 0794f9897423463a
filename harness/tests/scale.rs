//! `hearsay scale` end to end, small: 6 and 12 nodes of hearsay-node and of
//! redis-server, a short window and a 1 s node timeout (about a minute in all). The
//! three outputs exist and hold a row per target and size with every figure, the
//! fitted exponents and the ratios; nothing with the run's prefix is left. Needs
//! root, nft, redis-server and a built hearsay-node; skips without them (fails
//! under CI=true).

mod common;

use common::hearsay;

#[test]
fn scale_small_both_targets() {
    if !common::require(true, true, false) || !common::require_hearsay_node() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("registry");
    let out = tmp.path().join("out");
    let (code, stdout, stderr) = hearsay(
        &[
            "scale",
            "--targets",
            "hearsay,redis",
            "--nodes",
            "6,12",
            "--node-timeout",
            "1000",
            "--window",
            "3",
            "--settle",
            "0",
            "--skip-partition",
            // CI time: the figures' presence is checked here, not the phases.
            "--start-spread-ms",
            "0",
            "--results-dir",
            out.to_str().unwrap(),
            "--time-budget",
            "240",
        ],
        &reg,
    );
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let dir = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("an output folder");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("scale.json")).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{v:#}");
    for r in rows {
        for k in [
            "msgs_per_node_s",
            "bytes_per_node_s",
            "cpu_pct_per_node",
            "rss_mb_per_node",
            "form_ms",
        ] {
            assert!(r[k].as_f64().is_some_and(|x| x > 0.0), "{k} in {r:#}");
        }
        for k in ["pfail_ms", "fail_ms", "fail_all_ms"] {
            assert!(r["failover"][k].as_f64().is_some(), "{k} in {r:#}");
        }
        // Bytes on the wire: a bus message is at least its 2256-byte header.
        let per_msg =
            r["bytes_per_node_s"].as_f64().unwrap() / r["msgs_per_node_s"].as_f64().unwrap();
        assert!(per_msg > 2000.0, "{per_msg} bytes per message in {r:#}");
    }
    let fits = v["fits"].as_array().unwrap();
    assert!(
        fits.iter()
            .any(|f| f["target"] == "redis" && f["metric"] == "bytes/s per node"),
        "{v:#}"
    );
    let md = std::fs::read_to_string(dir.join("scale.md")).unwrap();
    assert!(md.contains("- N = 12: messages/s per node"), "{md}");
    let html = std::fs::read_to_string(dir.join("scale.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("~ N^") && !html.contains("<script"));
    // Everything torn down: no registry file, no hsscale namespace of ours left.
    let left: Vec<_> = std::fs::read_dir(&reg)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "registry files left: {left:?}");
}
