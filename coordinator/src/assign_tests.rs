//! Tests for [`super::assign`]: hand-picked cases, an exhaustive sweep of small
//! domains against a brute-force oracle, and property tests on larger inputs.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn ids(names: &[&str]) -> Vec<WorkerId> {
    names.iter().map(|s| s.to_string()).collect()
}

fn map(entries: &[(Partition, &str)]) -> BTreeMap<Partition, WorkerId> {
    entries.iter().map(|&(p, w)| (p, w.to_string())).collect()
}

/// Checks every property except brute-force minimality; `Err` says which broke.
fn check(
    partitions: &[Partition],
    workers: &[WorkerId],
    current: &BTreeMap<Partition, WorkerId>,
    after: &BTreeMap<Partition, WorkerId>,
) -> Result<(), TestCaseError> {
    let topic: BTreeSet<Partition> = partitions.iter().copied().collect();
    let live: BTreeSet<&WorkerId> = workers.iter().collect();
    // Total: exactly the topic's partitions, or nothing without workers.
    let keys: BTreeSet<Partition> = after.keys().copied().collect();
    let want: BTreeSet<Partition> = if live.is_empty() {
        BTreeSet::new()
    } else {
        topic.clone()
    };
    if keys != want {
        return Err(TestCaseError::fail(format!(
            "total: assigned {keys:?}, want {want:?}"
        )));
    }
    // Live only.
    if let Some((p, w)) = after.iter().find(|(_, w)| !live.contains(w)) {
        return Err(TestCaseError::fail(format!(
            "live: partition {p} given to dead worker {w}"
        )));
    }
    // Per live worker: (topic partitions owned before, partitions after).
    let mut tally: BTreeMap<&WorkerId, (usize, usize)> =
        live.iter().map(|&w| (w, (0, 0))).collect();
    for (p, w) in current {
        if let Some(t) = tally.get_mut(w).filter(|_| topic.contains(p)) {
            t.0 += 1;
        }
    }
    for w in after.values() {
        if let Some(t) = tally.get_mut(w) {
            t.1 += 1;
        }
    }
    // Balanced, counting workers that got nothing.
    let counts = tally.values().map(|t| t.1);
    if let (Some(lo), Some(hi)) = (counts.clone().min(), counts.max()) {
        if hi - lo > 1 {
            return Err(TestCaseError::fail(format!("balanced: counts {tally:?}")));
        }
    }
    // Sticky: a live worker keeps as many of its partitions as its new count
    // allows, i.e. all of them if it is within quota.
    for (&w, &(owned, count)) in &tally {
        let kept = current
            .iter()
            .filter(|(p, v)| *v == w && after.get(p) == Some(w))
            .count();
        if kept != owned.min(count) {
            return Err(TestCaseError::fail(format!(
                "sticky: {w} kept {kept} of {owned}"
            )));
        }
    }
    // Quota rule: +1 slots go to bigger owners first, then lower ids. Sorted
    // by that priority, counts must be non-increasing.
    let mut by_priority: Vec<(usize, std::cmp::Reverse<&WorkerId>, usize)> = tally
        .iter()
        .map(|(&w, &(owned, count))| (owned, std::cmp::Reverse(w), count))
        .collect();
    by_priority.sort_unstable_by(|a, b| b.cmp(a));
    if by_priority.windows(2).any(|x| x[0].2 < x[1].2) {
        return Err(TestCaseError::fail(format!("quota order: {by_priority:?}")));
    }
    // Minimal, per the closed form; `moves` replays `current` into `after`.
    let mv = moves(current, after);
    let min = min_moves(partitions, workers, current);
    if mv.len() != min {
        return Err(TestCaseError::fail(format!(
            "minimal: {} moves, min_moves says {min}",
            mv.len()
        )));
    }
    let mut replay = current.clone();
    for m in &mv {
        if m.from.as_ref() != current.get(&m.partition) || m.from == m.to {
            return Err(TestCaseError::fail(format!("moves: bad {m:?}")));
        }
        match &m.to {
            Some(w) => replay.insert(m.partition, w.clone()),
            None => replay.remove(&m.partition),
        };
    }
    if &replay != after {
        return Err(TestCaseError::fail("moves: replay differs from after"));
    }
    Ok(())
}

/// Oracle for the fewest moves, by trying every choice of +1 workers.
fn brute_force_min(
    partitions: &[Partition],
    workers: &[WorkerId],
    current: &BTreeMap<Partition, WorkerId>,
) -> usize {
    let topic: BTreeSet<Partition> = partitions.iter().copied().collect();
    let live: Vec<&WorkerId> = workers
        .iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let stale = current.keys().filter(|p| !topic.contains(p)).count();
    if live.is_empty() {
        return stale + topic.iter().filter(|p| current.contains_key(p)).count();
    }
    let owner = |p: &Partition| current.get(p).filter(|w| live.contains(w));
    let unowned = topic.iter().filter(|p| owner(p).is_none()).count();
    let owned: Vec<usize> = live
        .iter()
        .map(|w| topic.iter().filter(|p| owner(p) == Some(w)).count())
        .collect();
    let (base, extra) = (topic.len() / live.len(), topic.len() % live.len());
    let best = (0u32..1 << live.len())
        .filter(|mask| mask.count_ones() as usize == extra)
        .map(|mask| {
            let quota = |i: usize| base + (mask >> i & 1) as usize;
            (0..live.len())
                .map(|i| owned[i].saturating_sub(quota(i)))
                .sum::<usize>()
        })
        .min()
        .unwrap_or(0);
    stale + unowned + best
}

#[test]
fn no_workers_means_empty() {
    let current = map(&[(0, "a"), (1, "b")]);
    let after = assign(&[0, 1, 2], &[], &current);
    assert!(after.is_empty());
    assert_eq!(moves(&current, &after).len(), 2);
    assert_eq!(min_moves(&[0, 1, 2], &[], &current), 2);
}

#[test]
fn ties_go_to_lower_worker_id() {
    let after = assign(&[2, 0, 1], &ids(&["b", "a"]), &BTreeMap::new());
    assert_eq!(after, map(&[(0, "a"), (1, "a"), (2, "b")]));
}

#[test]
fn extra_slot_goes_to_the_bigger_owner() {
    // b owns everything: it keeps two (the +1 slot), sheds its highest one.
    let current = map(&[(0, "b"), (1, "b"), (2, "b")]);
    let after = assign(&[0, 1, 2], &ids(&["a", "b"]), &current);
    assert_eq!(after, map(&[(0, "b"), (1, "b"), (2, "a")]));
}

#[test]
fn dead_owners_and_stale_partitions() {
    let current = map(&[(0, "dead"), (1, "a"), (7, "a")]);
    let after = assign(&[0, 1, 2], &ids(&["a", "b"]), &current);
    // a already owns one, so it takes the +1 slot; orphans fill slots in id
    // order.
    assert_eq!(after, map(&[(0, "a"), (1, "a"), (2, "b")]));
    let expected = vec![
        Move {
            partition: 0,
            from: Some("dead".into()),
            to: Some("a".into()),
        },
        Move {
            partition: 2,
            from: None,
            to: Some("b".into()),
        },
        Move {
            partition: 7,
            from: Some("a".into()),
            to: None,
        },
    ];
    assert_eq!(moves(&current, &after), expected);
}

const POOL: usize = 5;

/// Worker sets of up to 4 out of the pool, as bitmasks over it.
fn all_worker_sets() -> impl Iterator<Item = u32> {
    (0u32..1 << POOL).filter(|m| m.count_ones() <= 4)
}

/// Checks topic `0..p` (values only matter through their order, so it stands
/// for any set of `p` partitions) for each live worker set in `masks` against
/// every current mapping of each partition to a pool worker (live or dead) or
/// to nobody; topics of up to 4 partitions also get a stale entry for a
/// partition outside the topic. Returns the number of cases.
fn sweep(p: i32, masks: impl Iterator<Item = u32>) -> u64 {
    let pool: Vec<WorkerId> = (0..POOL).map(|i| format!("w{i}")).collect();
    let partitions: Vec<Partition> = (0..p).collect();
    // Reversed with duplicates: assign must not care.
    let messy_parts: Vec<Partition> = partitions
        .iter()
        .rev()
        .chain(&partitions)
        .copied()
        .collect();
    let stale_variants: &[bool] = if p <= 4 { &[false, true] } else { &[false] };
    let mut cases = 0;
    for mask in masks {
        let workers: Vec<WorkerId> = (0..POOL)
            .filter(|i| mask >> i & 1 == 1)
            .map(|i| pool[i].clone())
            .collect();
        let messy_workers: Vec<WorkerId> = workers.iter().rev().chain(&workers).cloned().collect();
        // Each partition's owner is a base-(POOL + 1) digit; POOL = nobody.
        for code in 0..(POOL as u32 + 1).pow(p as u32) {
            let mut current = BTreeMap::new();
            let mut c = code;
            for &part in &partitions {
                let o = (c % (POOL as u32 + 1)) as usize;
                c /= POOL as u32 + 1;
                if o < POOL {
                    current.insert(part, pool[o].clone());
                }
            }
            for &stale in stale_variants {
                if stale {
                    current.insert(99, pool[(code as usize) % POOL].clone());
                }
                let after = assign(&partitions, &workers, &current);
                let ctx = || format!("p={p} workers={workers:?} current={current:?}");
                if let Err(e) = check(&partitions, &workers, &current, &after) {
                    panic!("{e}; {}; after={after:?}", ctx());
                }
                let oracle = brute_force_min(&partitions, &workers, &current);
                assert_eq!(moves(&current, &after).len(), oracle, "{}", ctx());
                let again = assign(&messy_parts, &messy_workers, &current);
                assert_eq!(again, after, "{}", ctx());
                cases += 1;
            }
        }
    }
    cases
}

/// Up to 5 partitions: every worker set of up to 4 out of 5, every mapping.
/// For 6 partitions one worker set per size: assign compares ids only among
/// live workers and all k-subsets of the pool are order-isomorphic, while
/// dead owners all behave alike, so those 5 sets cover every case up to
/// renaming. The literal 31-set product for 6 partitions is
/// `exhaustive_six_partitions_every_worker_set` (ignored: ~1.4M cases).
#[test]
fn exhaustive_small_domains() {
    let mut cases: u64 = (0..=5).map(|p| sweep(p, all_worker_sets())).sum();
    cases += sweep(6, (0..=4).map(|k| (1u32 << k) - 1));
    // 31 worker sets x 6^p mappings (twice for p <= 4), then 5 x 6^6.
    let mappings = |max: u32| (0..=max).map(|p| 6u64.pow(p)).sum::<u64>();
    assert_eq!(cases, 31 * (mappings(5) + mappings(4)) + 5 * 6u64.pow(6));
}

#[test]
#[ignore = "slow in debug builds (~1.4M cases); run with --ignored"]
fn exhaustive_six_partitions_every_worker_set() {
    assert_eq!(sweep(6, all_worker_sets()), 31 * 6u64.pow(6));
}

/// The benchmark's scenario, pinned: 1,000 partitions over 100 workers.
#[test]
fn join_and_leave_at_benchmark_scale() {
    let partitions: Vec<Partition> = (0..1000).collect();
    let workers: Vec<WorkerId> = (0..100).map(|i| format!("worker-{i:03}")).collect();
    let steady = assign(&partitions, &workers, &BTreeMap::new());
    assert!(moves(&steady, &assign(&partitions, &workers, &steady)).is_empty());

    let mut joined = workers.clone();
    joined.push("worker-100".into());
    let after = assign(&partitions, &joined, &steady);
    // 1000 / 101 = 9 rem 91: 91 old workers keep 10, the newcomer takes 9.
    assert_eq!(moves(&steady, &after).len(), 9);
    assert_eq!(min_moves(&partitions, &joined, &steady), 9);

    let left = &workers[1..];
    let after = assign(&partitions, left, &steady);
    // Exactly worker-000's 10 partitions move; 10 survivors go to 11.
    assert_eq!(moves(&steady, &after).len(), 10);
    assert!(moves(&steady, &after)
        .iter()
        .all(|m| m.from.as_deref() == Some("worker-000")));
}

fn worker_name(i: usize) -> WorkerId {
    format!("w{i:02}")
}

/// Random topic, live workers (with duplicates) and a current mapping that
/// names live and dead workers, misses partitions and has stale entries.
fn inputs() -> impl Strategy<Value = (Vec<Partition>, Vec<WorkerId>, BTreeMap<Partition, WorkerId>)>
{
    (
        prop::collection::vec(0..200i32, 0..300),
        prop::collection::vec((0..40usize).prop_map(worker_name), 0..30),
        prop::collection::btree_map(0..220i32, (0..50usize).prop_map(worker_name), 0..300),
    )
}

/// A topic and a worker set of at least `min_workers`, plus a balanced start
/// made by assigning from a random mapping (so starts are diverse).
fn balanced_start(
    min_workers: usize,
) -> impl Strategy<Value = (Vec<Partition>, Vec<WorkerId>, BTreeMap<Partition, WorkerId>)> {
    (
        0..1500i32,
        prop::collection::btree_set(0..200usize, min_workers..120),
        prop::collection::btree_map(0..1500i32, 0..200usize, 0..1500),
    )
        .prop_map(|(p, ws, seed)| {
            let partitions: Vec<Partition> = (0..p).collect();
            let workers: Vec<WorkerId> = ws.into_iter().map(|i| format!("w{i:03}")).collect();
            let seed = seed
                .into_iter()
                .map(|(p, i)| (p, format!("w{i:03}")))
                .collect();
            let start = assign(&partitions, &workers, &seed);
            (partitions, workers, start)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prop_properties((partitions, workers, current) in inputs()) {
        let after = assign(&partitions, &workers, &current);
        check(&partitions, &workers, &current, &after)?;
    }

    #[test]
    fn prop_idempotent((partitions, workers, current) in inputs()) {
        let once = assign(&partitions, &workers, &current);
        let twice = assign(&partitions, &workers, &once);
        prop_assert_eq!(&twice, &once);
        prop_assert_eq!(min_moves(&partitions, &workers, &once), 0);
    }

    #[test]
    fn prop_permutation_invariant(
        ((partitions, workers, current), (ps, ws)) in inputs().prop_flat_map(|(p, w, c)| {
            let shuffled = (Just(p.clone()).prop_shuffle(), Just(w.clone()).prop_shuffle());
            (Just((p, w, c)), shuffled)
        })
    ) {
        prop_assert_eq!(assign(&ps, &ws, &current), assign(&partitions, &workers, &current));
    }

    #[test]
    fn prop_join_moves_only_to_newcomer(
        (partitions, workers, start) in balanced_start(1),
        newcomer in 200..260usize,
    ) {
        let new_id = format!("w{newcomer:03}");
        let mut joined = workers.clone();
        joined.push(new_id.clone());
        let after = assign(&partitions, &joined, &start);
        check(&partitions, &joined, &start, &after)?;
        let mv = moves(&start, &after);
        let p = partitions.len();
        let w = joined.len();
        // The newcomer ends with floor or ceil of P/(W+1), all taken from
        // over-quota workers, and that is the minimum.
        prop_assert!(mv.len() == p / w || mv.len() == p.div_ceil(w), "{} moves", mv.len());
        prop_assert_eq!(mv.len(), min_moves(&partitions, &joined, &start));
        prop_assert!(mv.iter().all(|m| m.to.as_ref() == Some(&new_id) && m.from.is_some()));
    }

    #[test]
    fn prop_leave_moves_only_the_leavers_partitions(
        (partitions, workers, start) in balanced_start(2),
        pick in any::<prop::sample::Index>(),
    ) {
        let leaver = workers[pick.index(workers.len())].clone();
        let rest: Vec<WorkerId> = workers.iter().filter(|w| **w != leaver).cloned().collect();
        let after = assign(&partitions, &rest, &start);
        check(&partitions, &rest, &start, &after)?;
        let moved: BTreeSet<Partition> = moves(&start, &after).iter().map(|m| m.partition).collect();
        let owned: BTreeSet<Partition> =
            start.iter().filter(|(_, w)| **w == leaver).map(|(p, _)| *p).collect();
        // From a balanced start nobody else is ever over the new quota.
        prop_assert_eq!(&moved, &owned);
        prop_assert_eq!(moved.len(), min_moves(&partitions, &rest, &start));
    }
}
