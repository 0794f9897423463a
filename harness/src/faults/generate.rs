//! Draws a run's nemesis schedule from the seed: basic faults and the packages of
//! `faults::packages`, taking turns. Above `schedule` (the types and how a fault
//! resolves) and `packages` (what each package holds), so neither imports the other.

use super::packages::{self, Timing};
use super::schedule::{
    partition_draw, Fault, NemesisKind, PartitionSpec, Planned, Shapes, TargetSpec,
};
use hearsay_workloads::rng::{below, stream, unit};
use rand_chacha::ChaCha8Rng;

fn pick<T: Clone>(r: &mut ChaCha8Rng, items: &[T]) -> Option<T> {
    items.get(below(r, items.len() as u64) as usize).cloned()
}

/// Draws the schedule. Basic faults do not overlap: each is healed before the next
/// starts, so each one's effect can be verified and attributed. Gaps and durations are
/// the interval times a factor in [0.5, 1.5). When packages are asked for, a package
/// comes first, then basic faults and packages take turns; the packages rotate from
/// one that depends on the seed (2 x seed, modulo their number), so three consecutive
/// seeds whose runs hold two packages each (60 s at a 5 s interval) cover all six. A
/// package's faults overlap each other by design (different kinds, or one after the
/// other).
pub fn generate(
    seed: u64,
    kinds: &[NemesisKind],
    interval_ms: u64,
    time_limit_ms: u64,
    node_timeout_ms: u64,
) -> Vec<Planned> {
    generate_with(
        seed,
        kinds,
        interval_ms,
        time_limit_ms,
        Timing::node_timeout(node_timeout_ms),
        &Shapes::Add(vec![]),
    )
}

/// [`generate`] with the partition shapes of `shapes`: a target's own added to the
/// draw (Sentinel adds [`PartitionSpec::PrimaryWithMinority`]), or `--partitions`
/// alone. With none added, the draws are those of [`generate`], so Redis Cluster
/// seeds keep their schedules.
pub fn generate_with(
    seed: u64,
    kinds: &[NemesisKind],
    interval_ms: u64,
    time_limit_ms: u64,
    timing: Timing,
    shapes: &Shapes,
) -> Vec<Planned> {
    let mut r = stream(seed, "nemesis");
    let mut out = Vec::new();
    if kinds.is_empty() || interval_ms == 0 {
        return out;
    }
    let basic: Vec<NemesisKind> = kinds
        .iter()
        .copied()
        .filter(|k| !k.is_package() && !k.is_reshape())
        .collect();
    let mut packages: Vec<NemesisKind> = kinds.iter().copied().filter(|k| k.is_package()).collect();
    packages.sort_by_key(|k| NemesisKind::PACKAGES.iter().position(|p| p == k));
    let jitter = |r: &mut ChaCha8Rng| (interval_ms as f64 * (0.5 + unit(r))) as u64;
    let mut t = 0u64;
    // Leave the last half interval fault-free so the last heal is inside the limit.
    let end = time_limit_ms.saturating_sub(interval_ms / 2);
    let mut next_package = if packages.is_empty() {
        0
    } else {
        (seed.wrapping_mul(2) % packages.len() as u64) as usize
    };
    let mut package_turn = !packages.is_empty();
    let mut count = 0usize;
    loop {
        if package_turn && !packages.is_empty() {
            let gap = jitter(&mut r);
            let kind = packages[next_package % packages.len()];
            next_package += 1;
            count += 1;
            let draw = rand::Rng::next_u64(&mut r);
            let faults = packages::plan(kind, &mut r, t + gap, timing, draw, count);
            let span = packages::span(&faults);
            // A package may run until a second before the limit: its own faults heal
            // inside it.
            if faults.is_empty() || t + gap + span > time_limit_ms.saturating_sub(1000) {
                break;
            }
            out.extend(faults);
            t += gap + span;
        } else {
            let Some(p) = draw_basic(&mut r, &basic, &mut t, end, interval_ms, shapes) else {
                break;
            };
            out.push(p);
        }
        if !basic.is_empty() && !packages.is_empty() {
            package_turn = !package_turn;
        }
    }
    let reshape: Vec<NemesisKind> = kinds.iter().copied().filter(|k| k.is_reshape()).collect();
    if !reshape.is_empty() {
        draw_reshape(seed, &reshape, interval_ms, end, &mut out);
        // One list in time order (the runner walks a non-overlapping one in order).
        out.sort_by_key(|p| p.start_ms);
    }
    out
}

/// The reshape kinds (`reshard`, `member`) on timelines of their own (one seeded
/// stream per kind, so asking for them leaves the other faults' draws alone): each
/// overlaps whatever basic fault or package runs meanwhile, so a migration or a
/// membership change is interrupted half-way. Never beside a clock strobe (the
/// runner holds a strobe alone), never two of one kind at once.
fn draw_reshape(
    seed: u64,
    kinds: &[NemesisKind],
    interval_ms: u64,
    end: u64,
    out: &mut Vec<Planned>,
) {
    let strobes: Vec<(u64, u64)> = out
        .iter()
        .filter(|p| matches!(p.fault, Fault::ClockStrobe { .. }))
        .map(|p| (p.start_ms, p.stop_ms))
        .collect();
    let mut drawn = Vec::new();
    for kind in kinds {
        let mut r = stream(seed, kind.name());
        let mut t = 0u64;
        loop {
            // One every two intervals or so, lasting about one.
            let gap = (interval_ms as f64 * (0.5 + 1.5 * unit(&mut r))) as u64;
            let dur = ((interval_ms as f64 * (0.5 + unit(&mut r))) as u64).max(500);
            let fault = match kind {
                NemesisKind::Reshard => Fault::Reshard {
                    slots: pick(&mut r, &[1u16, 4, 16, 64, 128]).unwrap_or(16),
                    from: None,
                    to: None,
                    first: None,
                },
                _ => Fault::Member {
                    replica: below(&mut r, 3) > 0,
                    node: None,
                    add: None,
                    replica_of: None,
                },
            };
            let draw = rand::Rng::next_u64(&mut r);
            let (start_ms, stop_ms) = (t + gap, t + gap + dur);
            if stop_ms > end {
                break;
            }
            t = stop_ms;
            if strobes.iter().any(|(a, b)| start_ms < *b && *a < stop_ms) {
                continue;
            }
            drawn.push(Planned {
                start_ms,
                stop_ms,
                fault,
                draw,
                package: None,
            });
        }
    }
    out.extend(drawn);
}

/// One basic fault after `t`, or None when none fits before `end`.
fn draw_basic(
    r: &mut ChaCha8Rng,
    kinds: &[NemesisKind],
    t: &mut u64,
    end: u64,
    interval_ms: u64,
    shapes: &Shapes,
) -> Option<Planned> {
    let jitter = |r: &mut ChaCha8Rng| (interval_ms as f64 * (0.5 + unit(r))) as u64;
    let node_specs = [
        TargetSpec::One,
        TargetSpec::Minority,
        TargetSpec::Majority,
        TargetSpec::All,
        TargetSpec::Primaries,
        TargetSpec::Replicas,
    ];
    // Pausing or killing everyone says little; keep those to proper subsets mostly.
    let proc_specs = [
        TargetSpec::One,
        TargetSpec::Minority,
        TargetSpec::Primaries,
        TargetSpec::Majority,
    ];
    let gap = jitter(r);
    let dur = jitter(r).max(500);
    let kind = pick(r, kinds)?;
    if *t + gap + dur > end {
        return None;
    }
    let start_ms = *t + gap;
    let stop_ms = start_ms + dur;
    let fault = match kind {
        NemesisKind::Partition => {
            let specs = partition_draw(shapes);
            Fault::Partition {
                partition: pick(r, &specs).unwrap_or(PartitionSpec::IsolateOne),
            }
        }
        NemesisKind::Pause => Fault::Pause {
            targets: pick(r, &proc_specs).unwrap_or(TargetSpec::One),
        },
        NemesisKind::Kill => Fault::Kill {
            targets: pick(r, &proc_specs).unwrap_or(TargetSpec::One),
        },
        NemesisKind::Clock => {
            let targets = pick(r, &node_specs).unwrap_or(TargetSpec::One);
            // Exponential magnitudes, 1 s .. 256 s, either sign (Jepsen-like).
            let mag = 1i64 << below(r, 9);
            let delta_s = if below(r, 2) == 0 { mag } else { -mag };
            if below(r, 3) == 0 {
                Fault::ClockStrobe {
                    targets,
                    delta_s,
                    period_ms: 200 + below(r, 800),
                }
            } else {
                Fault::ClockBump { targets, delta_s }
            }
        }
        NemesisKind::Loss => Fault::Loss {
            targets: pick(r, &node_specs).unwrap_or(TargetSpec::One),
            pct: 10 + 10 * below(r, 5) as u32,
        },
        NemesisKind::Delay => Fault::Delay {
            targets: pick(r, &node_specs).unwrap_or(TargetSpec::One),
            ms: 20 + 10 * below(r, 9),
        },
        // Packages are planned by `packages::plan`.
        _ => return None,
    };
    *t = stop_ms;
    Some(Planned {
        start_ms,
        stop_ms,
        fault,
        draw: rand::Rng::next_u64(r),
        package: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::schedule::{resolve, timeline, Topology};
    use std::collections::BTreeMap;

    #[test]
    fn extra_partitions_leave_cluster_schedules_alone_and_join_the_draw() {
        let k = [NemesisKind::Partition];
        assert_eq!(
            generate(7, &k, 3000, 60_000, 2000),
            generate_with(
                7,
                &k,
                3000,
                60_000,
                Timing::node_timeout(2000),
                &Shapes::Add(vec![])
            )
        );
        let extra = Shapes::Add(vec![PartitionSpec::PrimaryWithMinority]);
        let drawn = (0..10u64)
            .flat_map(|s| generate_with(s, &k, 3000, 60_000, Timing::node_timeout(2000), &extra))
            .filter(|p| {
                matches!(&p.fault, Fault::Partition { partition } if *partition == PartitionSpec::PrimaryWithMinority)
            })
            .count();
        assert!(drawn > 0);
        let only = Shapes::Only(PartitionSpec::parse_list("primary-with-minority").unwrap());
        let s = generate_with(1, &k, 3000, 60_000, Timing::node_timeout(2000), &only);
        assert!(!s.is_empty());
        assert!(s.iter().all(|p| matches!(&p.fault, Fault::Partition { partition } if *partition == PartitionSpec::PrimaryWithMinority)));
        assert!(PartitionSpec::parse_list("isolate-one,nope").is_err());
        assert!(PartitionSpec::parse_list("grudge").is_err());
    }

    #[test]
    fn same_seed_same_schedule_different_seed_differs() {
        let k = NemesisKind::parse_list("partition,pause,kill,clock").unwrap();
        let a = generate(7, &k, 5000, 60000, 2000);
        let b = generate(7, &k, 5000, 60000, 2000);
        let c = generate(8, &k, 5000, 60000, 2000);
        assert!(a.len() >= 3, "{a:?}");
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Resolution is deterministic too.
        let topo = Topology::of_primaries(&[0, 1, 2]);
        let ra: Vec<Fault> = a.iter().map(|p| resolve(p, 6, &topo)).collect();
        let rb: Vec<Fault> = b.iter().map(|p| resolve(p, 6, &topo)).collect();
        assert_eq!(ra, rb);
    }

    #[test]
    fn schedule_respects_limits_and_basic_faults_do_not_overlap() {
        let k: Vec<NemesisKind> = NemesisKind::BASIC.to_vec();
        for seed in 0..20 {
            let s = generate(seed, &k, 3000, 30000, 2000);
            let mut last = 0;
            for p in &s {
                assert!(p.start_ms >= last && p.stop_ms > p.start_ms);
                assert!(p.stop_ms <= 30000);
                last = p.stop_ms;
            }
        }
        assert!(generate(1, &[], 3000, 30000, 2000).is_empty());
    }

    #[test]
    fn packages_take_turns_compose_validly_and_rotate_over_seeds() {
        let k = NemesisKind::parse_list("all").unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 7..10 {
            let s = generate(seed, &k, 5000, 60_000, 2000);
            assert!(timeline(&s).is_ok(), "seed {seed}: {:?}", timeline(&s));
            assert!(s.iter().all(|p| p.stop_ms <= 60_000));
            for p in s.iter().filter_map(|p| p.package.as_deref()) {
                seen.insert(p.split('#').next().unwrap().to_string());
            }
            // A package's faults share the draw.
            let mut by: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
            for p in &s {
                if let Some(k) = &p.package {
                    by.entry(k).or_default().push(p.draw);
                }
            }
            assert!(by.values().all(|d| d.windows(2).all(|w| w[0] == w[1])));
        }
        assert_eq!(seen.len(), 6, "three seeds cover every package: {seen:?}");
        // The reshape kinds join `all` on their own timelines, beside the others.
        let s = generate(7, &k, 5000, 60_000, 2000);
        for kind in NemesisKind::RESHAPE {
            assert!(
                s.iter().any(|p| p.fault.kind() == kind),
                "{kind:?} in {s:?}"
            );
        }
        let without: Vec<NemesisKind> = k.iter().copied().filter(|k| !k.is_reshape()).collect();
        let rest: Vec<Planned> = s
            .iter()
            .filter(|p| !p.fault.kind().is_reshape())
            .cloned()
            .collect();
        let mut alone = generate(7, &without, 5000, 60_000, 2000);
        alone.sort_by_key(|p| p.start_ms);
        assert_eq!(
            rest, alone,
            "asking for reshape kinds leaves the other draws alone"
        );
        // Only packages: one after another.
        let s = generate(5, &[NemesisKind::MasterReturn], 3000, 60_000, 2000);
        assert!(s.len() >= 5 && s.iter().all(|p| p.package.is_some()));
    }

    #[test]
    fn a_pinned_election_delay_widens_shards_at_once_and_leaves_the_rest() {
        let k = [NemesisKind::Pause, NemesisKind::ShardsAtOnce];
        let timing = |d| Timing {
            node_timeout_ms: 2000,
            election_delay_ms: d,
        };
        let shapes = Shapes::Add(vec![]);
        let plain = generate_with(5, &k, 5000, 60_000, timing(None), &shapes);
        assert_eq!(plain, generate(5, &k, 5000, 60_000, 2000));
        let pinned = generate_with(5, &k, 5000, 60_000, timing(Some(2500)), &shapes);
        let package = |s: &[Planned]| -> Vec<Planned> {
            s.iter()
                .filter(|p| p.package.as_deref() == Some("shards-at-once#1"))
                .cloned()
                .collect()
        };
        let of = |s: &[Planned], kind: &str| -> Planned {
            package(s)
                .into_iter()
                .find(|p| p.fault.kind().name() == kind)
                .expect("the package has the fault")
        };
        // Unpinned: the replicas apart from the kill on, the pause 1.2 to 4.5 s
        // past node_timeout.
        let (kill, pause, apart) = (
            of(&plain, "kill"),
            of(&plain, "pause"),
            of(&plain, "partition"),
        );
        assert_eq!(apart.start_ms, kill.start_ms);
        assert_eq!(pause.start_ms - kill.start_ms, 3200);
        assert_eq!(pause.stop_ms - kill.start_ms, 6500);
        // Pinned at 2.5 s: the pause from node_timeout + 2 s (the FAIL known
        // everywhere) until every election has started and a second more, the
        // replicas apart only from then, the kill outlasting both.
        let (kill, pause, apart) = (
            of(&pinned, "kill"),
            of(&pinned, "pause"),
            of(&pinned, "partition"),
        );
        assert_eq!(pause.start_ms - kill.start_ms, 4000);
        assert_eq!(pause.stop_ms - kill.start_ms, 2000 + 2000 + 2500 + 1000);
        assert_eq!(apart.start_ms, pause.start_ms);
        assert!(kill.stop_ms >= pause.stop_ms + 1000 && apart.stop_ms == kill.stop_ms);
        // The basic faults draw the same (later, the package being longer).
        let basic = |s: &[Planned]| -> Vec<(Fault, u64)> {
            s.iter()
                .filter(|p| p.package.is_none())
                .map(|p| (p.fault.clone(), p.draw))
                .collect()
        };
        let (a, b) = (basic(&plain), basic(&pinned));
        assert!(!b.is_empty() && a.starts_with(&b), "{a:?}\n{b:?}");
    }
}
