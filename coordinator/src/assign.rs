//! The partition-assignment decision as a pure function.
//!
//! Given the topic's partitions, the live workers and who owns what right now,
//! [`assign`] returns the next owner of every partition. It is:
//!
//! - **total**: every partition has an owner iff there is at least one worker;
//! - **live**: only live workers own partitions;
//! - **balanced**: owned counts differ by at most one;
//! - **sticky**: a partition keeps its owner if that owner is alive and within
//!   its quota, and the number of partitions taken away from live owners is the
//!   minimum any balanced assignment allows (see [`min_moves`]);
//! - **deterministic**: independent of input order and duplicates; ties are
//!   broken by worker id, then partition number.
//!
//! Moving a partition costs a consumer hand-over (commit, revoke, re-seek), so
//! stickiness is what keeps a rolling deploy from reshuffling the whole topic.
//! The function does no I/O, so it can be tested exhaustively and called on
//! every membership change without thought for cost: it is
//! O((P + W) log(P + W)).

use std::collections::{BTreeMap, BTreeSet};

/// A worker's stable identity (as registered with the coordinator).
pub type WorkerId = String;

/// A Kafka partition number within the topic.
pub type Partition = i32;

/// One change of ownership between two assignments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Move {
    pub partition: Partition,
    /// Previous owner; `None` if the partition was unowned.
    pub from: Option<WorkerId>,
    /// New owner; `None` if the partition is no longer owned (no workers, or
    /// the partition left the topic).
    pub to: Option<WorkerId>,
}

/// Sorted, deduplicated view of the inputs plus each partition's live owner.
///
/// Shared by [`assign`] and [`min_moves`] so both see the exact same notion of
/// "live owner" (an owner that is in `workers`).
struct Normalized<'a> {
    partitions: Vec<Partition>,
    /// Sorted by id, so an index order is the id order used for tie-breaks.
    workers: Vec<&'a WorkerId>,
    /// For each entry of `partitions`, the index of its live current owner.
    owner: Vec<Option<usize>>,
    /// Number of topic partitions each worker currently owns.
    owned: Vec<usize>,
}

impl<'a> Normalized<'a> {
    fn new(
        partitions: &[Partition],
        workers: &'a [WorkerId],
        current: &BTreeMap<Partition, WorkerId>,
    ) -> Self {
        let mut parts = partitions.to_vec();
        parts.sort_unstable();
        parts.dedup();
        let mut live: Vec<&WorkerId> = workers.iter().collect();
        live.sort_unstable();
        live.dedup();
        // Both `parts` and `current` are sorted, so walk them together instead
        // of a tree lookup per partition. Owners come in runs (a settled
        // assignment gives each worker a contiguous range), so reuse the last
        // id lookup while the owner name repeats.
        let mut cur = current.iter().peekable();
        let mut last: Option<(&WorkerId, Option<usize>)> = None;
        let mut owner = Vec::with_capacity(parts.len());
        for &p in &parts {
            while cur.next_if(|&(&q, _)| q < p).is_some() {}
            let o = match cur.next_if(|&(&q, _)| q == p) {
                None => None,
                Some((_, w)) => match last {
                    Some((prev, idx)) if prev == w => idx,
                    _ => {
                        let idx = live.binary_search(&w).ok();
                        last = Some((w, idx));
                        idx
                    }
                },
            };
            owner.push(o);
        }
        let mut owned = vec![0usize; live.len()];
        for &w in owner.iter().flatten() {
            owned[w] += 1;
        }
        Normalized {
            partitions: parts,
            workers: live,
            owner,
            owned,
        }
    }

    /// Target count per worker: `P / W` each, plus one for `P % W` workers.
    ///
    /// The +1 slots go to the workers that own the most already (ties: lower
    /// id), because each slot given to a worker owning more than the base
    /// saves exactly one move, and a slot given elsewhere saves none.
    fn quotas(&self) -> Vec<usize> {
        let w = self.workers.len();
        let base = self.partitions.len() / w;
        let extra = self.partitions.len() % w;
        let mut order: Vec<usize> = (0..w).collect();
        // Stable sort by descending ownership keeps id order among equals.
        order.sort_by(|&a, &b| self.owned[b].cmp(&self.owned[a]));
        let mut quota = vec![base; w];
        for &i in order.iter().take(extra) {
            quota[i] += 1;
        }
        quota
    }
}

/// Decides the owner of every partition.
///
/// `partitions`: all partitions of the topic; `workers`: live workers;
/// `current`: current owner per partition (may name dead workers, miss
/// partitions, or mention partitions no longer in the topic — all tolerated).
/// Returns an empty map when there are no workers.
pub fn assign(
    partitions: &[Partition],
    workers: &[WorkerId],
    current: &BTreeMap<Partition, WorkerId>,
) -> BTreeMap<Partition, WorkerId> {
    let n = Normalized::new(partitions, workers, current);
    if n.workers.is_empty() {
        return BTreeMap::new();
    }
    let quota = n.quotas();

    // Pass 1: live owners keep their partitions up to quota. Over-quota
    // owners keep their lowest-numbered partitions, so the shed set is
    // deterministic.
    let mut load = vec![0usize; n.workers.len()];
    let mut next: Vec<Option<usize>> = vec![None; n.partitions.len()];
    let mut orphans = Vec::new();
    for (i, owner) in n.owner.iter().enumerate() {
        match *owner {
            Some(w) if load[w] < quota[w] => {
                load[w] += 1;
                next[i] = Some(w);
            }
            _ => orphans.push(i),
        }
    }

    // Pass 2: hand orphans, in partition order, to the free slots in worker-id
    // order. Free slots sum to exactly the orphan count (quotas sum to P), so
    // the zip pairs them all.
    let free_slots = load
        .iter()
        .zip(&quota)
        .enumerate()
        .flat_map(|(w, (&l, &q))| std::iter::repeat_n(w, q - l));
    for (i, w) in orphans.into_iter().zip(free_slots) {
        next[i] = Some(w);
    }

    n.partitions
        .iter()
        .zip(next)
        .filter_map(|(&p, w)| w.map(|w| (p, n.workers[w].clone())))
        .collect()
}

/// The fewest [`Move`]s any valid (total, live, balanced) assignment can make
/// from `current`; [`assign`] always achieves it.
///
/// Counts: entries of `current` for partitions not in the topic (they must be
/// dropped); topic partitions without a live owner (they must be (re)assigned,
/// or, with no workers, dropped if currently owned); and partitions a live
/// owner must give up because it owns more than any balanced share lets it
/// keep. Used by tests and benchmarks as the baseline for "moved".
pub fn min_moves(
    partitions: &[Partition],
    workers: &[WorkerId],
    current: &BTreeMap<Partition, WorkerId>,
) -> usize {
    let n = Normalized::new(partitions, workers, current);
    let topic: BTreeSet<Partition> = n.partitions.iter().copied().collect();
    let stale = current.keys().filter(|p| !topic.contains(p)).count();
    if n.workers.is_empty() {
        let dropped = n
            .partitions
            .iter()
            .filter(|p| current.contains_key(p))
            .count();
        return stale + dropped;
    }
    let unowned = n.owner.iter().filter(|o| o.is_none()).count();
    // Everyone may keep `base`; the `extra` +1 slots each save one move when
    // given to a worker owning more than `base`, so give them to such workers.
    let base = n.partitions.len() / n.workers.len();
    let extra = n.partitions.len() % n.workers.len();
    let excess: usize = n.owned.iter().map(|&o| o.saturating_sub(base)).sum();
    let over_base = n.owned.iter().filter(|&&o| o > base).count();
    stale + unowned + excess - extra.min(over_base)
}

/// The ownership changes from `before` to `after`, in partition order.
pub fn moves(
    before: &BTreeMap<Partition, WorkerId>,
    after: &BTreeMap<Partition, WorkerId>,
) -> Vec<Move> {
    // Merge-join the two sorted maps: O(|before| + |after|).
    let mut out = Vec::new();
    let mut b = before.iter().peekable();
    let mut a = after.iter().peekable();
    loop {
        let (partition, from, to) = match (b.peek(), a.peek()) {
            (None, None) => break,
            (Some(&(&pb, wb)), Some(&(&pa, wa))) if pb == pa => {
                b.next();
                a.next();
                if wb == wa {
                    continue;
                }
                (pb, Some(wb), Some(wa))
            }
            (Some(&(&pb, wb)), Some(&(&pa, _))) if pb < pa => {
                b.next();
                (pb, Some(wb), None)
            }
            (Some(&(&pb, wb)), None) => {
                b.next();
                (pb, Some(wb), None)
            }
            (_, Some(&(&pa, wa))) => {
                a.next();
                (pa, None, Some(wa))
            }
        };
        out.push(Move {
            partition,
            from: from.cloned(),
            to: to.cloned(),
        });
    }
    out
}

#[cfg(test)]
#[path = "assign_tests.rs"]
mod tests;
