//! Property tests: histories generated from sequential models are accepted, and a
//! read changed to a value the model can never produce is rejected.

use hearsay_checkers::gen::{self, GenOptions};
use hearsay_checkers::history::{History, OpType};
use hearsay_checkers::linear::{self, LinearOptions};
use hearsay_checkers::set::{self as set_checker, SetOptions};
use hearsay_checkers::{counter, Valid};
use proptest::prelude::*;

fn opts(seed: u64, ops: usize, keys: usize, conc: usize, info: f64) -> GenOptions {
    GenOptions {
        seed,
        ops,
        keys,
        concurrency: conc,
        info_rate: info,
        read_rate: 0.4,
        overlap: 3,
    }
}

/// Round-trips through JSON lines, as a stored run would.
fn reparse(ops: &[hearsay_checkers::Op]) -> History {
    History::parse(&gen::to_jsonl(ops), "gen").expect("generated history parses")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn register_from_model_is_linearizable(seed in any::<u64>(), keys in 1usize..4,
                                           conc in 1usize..8, info in 0.0f64..0.1) {
        let ops = gen::register(&opts(seed, 150, keys, conc, info), 0.2);
        let r = linear::check(&reparse(&ops), LinearOptions::default()).unwrap();
        prop_assert_eq!(r.valid, Valid::True, "{:?}", r);
    }

    #[test]
    fn register_with_impossible_read_is_rejected(seed in any::<u64>(), keys in 1usize..4,
                                                 conc in 1usize..8, pick in any::<usize>()) {
        let mut ops = gen::register(&opts(seed, 150, keys, conc, 0.05), 0.2);
        let reads: Vec<usize> = ops.iter().enumerate()
            .filter(|(_, o)| o.kind == OpType::Ok && o.f == "read")
            .map(|(i, _)| i).collect();
        prop_assume!(!reads.is_empty());
        let i = reads[pick % reads.len()];
        // Written values are positive: a negative one was never written.
        { let mut v = ops[i].value.json(); v["value"] = serde_json::json!(-7); ops[i].value = v.into(); }
        // A short budget: the verdict comes from the first search; the smallest
        // window (extra searches) may be cut short, which leaves it empty.
        let o = LinearOptions { budget: std::time::Duration::from_secs(5), threads: 0 };
        let r = linear::check(&reparse(&ops), o).unwrap();
        prop_assert_eq!(r.valid, Valid::False);
        prop_assert_eq!(r.evidence.len(), 1);
        prop_assert!(!r.evidence[0].longest_linearization.is_empty() || r.evidence[0].failed_at.is_some());
    }

    #[test]
    fn register_with_stale_read_is_rejected(seed in any::<u64>(), pick in any::<usize>()) {
        // One process, no info: every op is sequential, so a read returning the
        // value before the latest acknowledged write is always stale.
        let mut ops = gen::register(&opts(seed, 120, 1, 1, 0.0), 0.0);
        let mut last_two: Vec<Option<i64>> = vec![None];
        let mut candidates = Vec::new();
        for (i, o) in ops.iter().enumerate() {
            if o.kind == OpType::Ok && o.f == "write" {
                last_two.push(o.value.json()["value"].as_i64());
            }
            if o.kind == OpType::Ok && o.f == "read" && last_two.len() >= 2 {
                candidates.push((i, last_two[last_two.len() - 2]));
            }
        }
        prop_assume!(!candidates.is_empty());
        let (i, stale) = candidates[pick % candidates.len()];
        { let mut v = ops[i].value.json(); v["value"] = serde_json::json!(stale); ops[i].value = v.into(); }
        let r = linear::check(&reparse(&ops), LinearOptions::default()).unwrap();
        prop_assert_eq!(r.valid, Valid::False);
    }

    #[test]
    fn counter_from_model_is_valid(seed in any::<u64>(), keys in 1usize..4,
                                   conc in 1usize..10, info in 0.0f64..0.2) {
        let ops = gen::counter(&opts(seed, 400, keys, conc, info));
        let r = counter::check(&reparse(&ops)).unwrap();
        prop_assert_eq!(r.valid, Valid::True, "{:?}", r);
    }

    #[test]
    fn counter_with_impossible_read_is_rejected(seed in any::<u64>(), pick in any::<usize>()) {
        let mut ops = gen::counter(&opts(seed, 400, 2, 5, 0.05));
        let reads: Vec<usize> = ops.iter().enumerate()
            .filter(|(_, o)| o.kind == OpType::Ok && o.f == "read")
            .map(|(i, _)| i).collect();
        prop_assume!(!reads.is_empty());
        let i = reads[pick % reads.len()];
        // Deltas are positive: a negative total is impossible.
        { let mut v = ops[i].value.json(); v["value"] = serde_json::json!(-1); ops[i].value = v.into(); }
        let r = counter::check(&reparse(&ops)).unwrap();
        prop_assert_eq!(r.valid, Valid::False);
    }

    #[test]
    fn set_from_model_is_valid(seed in any::<u64>(), keys in 1usize..4,
                               conc in 1usize..10, info in 0.0f64..0.2) {
        let ops = gen::set(&opts(seed, 300, keys, conc, info));
        let h = reparse(&ops);
        let r = set_checker::check(&h, SetOptions { linearizable: true });
        prop_assert_eq!(r.valid, Valid::True, "{:?}", r);
        let full = hearsay_checkers::set_full::check(&h);
        prop_assert_eq!(full.lost_count, 0);
        prop_assert_eq!(full.never_read_count, 0);
    }

    #[test]
    fn set_losing_an_acknowledged_element_is_rejected(seed in any::<u64>(), pick in any::<usize>()) {
        let mut ops = gen::set(&opts(seed, 300, 2, 5, 0.0));
        let finals: Vec<usize> = ops.iter().enumerate()
            .filter(|(_, o)| o.kind == OpType::Ok && o.f == "final-read"
                && o.value.json()["elements"].as_array().is_some_and(|a| !a.is_empty()))
            .map(|(i, _)| i).collect();
        prop_assume!(!finals.is_empty());
        let i = finals[pick % finals.len()];
        let mut v = ops[i].value.json();
        if let Some(a) = v["elements"].as_array_mut() {
            a.remove(pick % a.len());
        }
        ops[i].value = v.into();
        let r = set_checker::check(&reparse(&ops), SetOptions::default());
        prop_assert_eq!(r.valid, Valid::False);
    }
}

#[test]
fn truncated_and_garbage_histories_do_not_panic() {
    let ops = gen::register(&opts(3, 200, 2, 4, 0.05), 0.2);
    let text = gen::to_jsonl(&ops);
    // Every cut point: either a clean error naming a line, or a verdict.
    for cut in (0..text.len()).step_by(97) {
        let Some(part) = text.get(..cut) else {
            continue;
        };
        match History::parse(part, "cut") {
            Ok(h) => {
                let _ = linear::check(&h, LinearOptions::default());
                let _ = counter::check(&h);
            }
            Err(e) => assert!(e.to_string().contains("line"), "{e}"),
        }
    }
    let garbage = format!("{}\nnot json\n{}", text.lines().next().unwrap_or(""), text);
    let e = History::parse(&garbage, "g").unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
}
