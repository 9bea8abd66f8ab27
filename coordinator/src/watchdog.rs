//! The progress watchdog: a worker can heartbeat while one of its partitions makes no progress
//! (its output unwritable, a pipeline failing forever). A partition whose committed offset has
//! not advanced for `progress_timeout_ms` while it has lag is taken from its owner: the
//! assignment target moves it elsewhere, so the owner is asked to release it, and if it does not
//! let go within the release timeout the partition is granted anyway under a new epoch (fencing
//! the stuck owner) — the ordinary move of [`crate::ownership`]. The pair (worker, partition)
//! then stays *backed off* for a while, so the next assignment does not hand it straight back.
//!
//! Pure: the cluster actor feeds it what it knows and applies what it answers.

use crate::assign::WorkerId;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long a (worker, partition) pair stays backed off after a watchdog release: many
/// timeouts, at least five minutes.
pub fn backoff(timeout: Duration) -> Duration {
    (timeout * 10).max(Duration::from_secs(300))
}

/// Whether a partition is stuck: owned by a live worker, with lag, its committed offset
/// unchanged for `timeout` (0 disables the watchdog).
pub fn stalled(lag: i64, unchanged_for: Duration, timeout: Duration) -> bool {
    !timeout.is_zero() && lag > 0 && unchanged_for >= timeout
}

/// What the watchdog remembers of one partition: who held it and where its committed offset
/// stood when it last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Progress {
    owner: WorkerId,
    committed: i64,
    since: Instant,
}

#[derive(Debug, Default)]
pub struct Watchdog {
    progress: BTreeMap<i32, Progress>,
    /// (worker, partition) → until when the worker must not be given the partition again.
    backed_off: BTreeMap<(WorkerId, i32), Instant>,
}

/// One partition as the cluster actor sees it.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    pub partition: i32,
    /// Its live, settled owner (not releasing), if any.
    pub owner: Option<&'a WorkerId>,
    pub committed: i64,
    /// Kafka's end offset, when known.
    pub end: Option<i64>,
}

impl Watchdog {
    /// Records what is observed and returns the (worker, partition) pairs to take away now
    /// (each then backed off). Nothing is taken when no other live worker could take it.
    pub fn observe(
        &mut self,
        observed: &[Observed<'_>],
        live: usize,
        timeout: Duration,
        now: Instant,
    ) -> Vec<(WorkerId, i32)> {
        self.backed_off.retain(|_, until| *until > now);
        let mut stuck = Vec::new();
        for o in observed {
            let Some(owner) = o.owner else {
                self.progress.remove(&o.partition);
                continue;
            };
            let fresh = Progress {
                owner: owner.clone(),
                committed: o.committed,
                since: now,
            };
            let p = self
                .progress
                .entry(o.partition)
                .or_insert_with(|| fresh.clone());
            if p.owner != *owner || p.committed != o.committed {
                *p = fresh;
                continue;
            }
            let lag = o.end.map_or(0, |e| e - o.committed);
            if live > 1 && stalled(lag, now.saturating_duration_since(p.since), timeout) {
                stuck.push((owner.clone(), o.partition));
                // Counted once: the clock restarts, and the move is already under way.
                p.since = now;
                self.backed_off
                    .insert((owner.clone(), o.partition), now + backoff(timeout));
            }
        }
        stuck
    }

    /// Moves every target that names a backed-off pair to the live worker with the fewest
    /// targets that is not backed off for it (or leaves it if there is none).
    pub fn reroute(&self, target: &mut BTreeMap<i32, WorkerId>, live: &[WorkerId]) {
        if self.backed_off.is_empty() {
            return;
        }
        let avoided: BTreeSet<(&WorkerId, i32)> =
            self.backed_off.keys().map(|(w, p)| (w, *p)).collect();
        let mut load: BTreeMap<&WorkerId, usize> = live.iter().map(|w| (w, 0)).collect();
        for w in target.values() {
            if let Some(n) = load.get_mut(w) {
                *n += 1;
            }
        }
        let partitions: Vec<i32> = target.keys().copied().collect();
        for p in partitions {
            let Some(current) = target.get(&p).cloned() else {
                continue;
            };
            if !avoided.contains(&(&current, p)) {
                continue;
            }
            let best = load
                .iter()
                .filter(|(w, _)| !avoided.contains(&(**w, p)))
                .min_by_key(|(w, n)| (**n, (**w).clone()))
                .map(|(w, _)| (*w).clone());
            if let Some(to) = best {
                if let Some(n) = load.get_mut(&current) {
                    *n = n.saturating_sub(1);
                }
                if let Some(n) = load.get_mut(&to) {
                    *n += 1;
                }
                target.insert(p, to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(10);

    fn obs<'a>(p: i32, owner: &'a WorkerId, committed: i64, end: i64) -> Observed<'a> {
        Observed {
            partition: p,
            owner: Some(owner),
            committed,
            end: Some(end),
        }
    }

    #[test]
    fn stalled_needs_lag_time_and_a_timeout() {
        assert!(stalled(1, T, T));
        assert!(!stalled(0, T * 5, T), "no lag: nothing to do, not stuck");
        assert!(!stalled(5, T - Duration::from_millis(1), T));
        assert!(!stalled(5, T * 5, Duration::ZERO), "0 disables");
    }

    #[test]
    fn a_partition_without_progress_is_taken_once_and_backed_off() {
        let (a, b) = ("a".to_string(), "b".to_string());
        let mut w = Watchdog::default();
        let t0 = Instant::now();
        assert!(w.observe(&[obs(0, &a, 10, 50)], 2, T, t0).is_empty());
        // Progress restarts the clock.
        assert!(w.observe(&[obs(0, &a, 20, 50)], 2, T, t0 + T).is_empty());
        assert!(w
            .observe(&[obs(0, &a, 20, 50)], 2, T, t0 + T + T / 2)
            .is_empty());
        let taken = w.observe(&[obs(0, &a, 20, 50)], 2, T, t0 + 2 * T);
        assert_eq!(taken, vec![(a.clone(), 0)]);
        // Not counted again while the move is under way.
        assert!(w
            .observe(&[obs(0, &a, 20, 50)], 2, T, t0 + 2 * T + T / 2)
            .is_empty());
        // The target moves to the other live worker, and stays there.
        let mut target = BTreeMap::from([(0, a.clone()), (1, b.clone())]);
        w.reroute(&mut target, &[a.clone(), b.clone()]);
        assert_eq!(target[&0], b);
        assert_eq!(target[&1], b);
        // A new owner starts a new clock.
        assert!(w
            .observe(&[obs(0, &b, 20, 50)], 2, T, t0 + 3 * T)
            .is_empty());
    }

    #[test]
    fn nothing_is_taken_from_a_lone_worker_or_without_lag() {
        let a = "a".to_string();
        let mut w = Watchdog::default();
        let t0 = Instant::now();
        w.observe(&[obs(0, &a, 10, 50), obs(1, &a, 5, 5)], 1, T, t0);
        assert!(w
            .observe(&[obs(0, &a, 10, 50), obs(1, &a, 5, 5)], 1, T, t0 + 2 * T)
            .is_empty());
        let mut w = Watchdog::default();
        w.observe(&[obs(1, &a, 5, 5)], 2, T, t0);
        assert!(w.observe(&[obs(1, &a, 5, 5)], 2, T, t0 + 2 * T).is_empty());
    }

    #[test]
    fn backoff_expires_and_reroute_keeps_a_target_with_no_alternative() {
        let (a, b) = ("a".to_string(), "b".to_string());
        let mut w = Watchdog::default();
        let t0 = Instant::now();
        w.observe(&[obs(0, &a, 1, 9)], 2, T, t0);
        assert_eq!(w.observe(&[obs(0, &a, 1, 9)], 2, T, t0 + T).len(), 1);
        // Only `a` is live: the target stays rather than leaving the partition unowned.
        let mut target = BTreeMap::from([(0, a.clone())]);
        w.reroute(&mut target, std::slice::from_ref(&a));
        assert_eq!(target[&0], a);
        // After the back-off, `a` may have it again.
        w.observe(&[], 2, T, t0 + T + backoff(T) + Duration::from_secs(1));
        let mut target = BTreeMap::from([(0, a.clone())]);
        w.reroute(&mut target, &[a.clone(), b]);
        assert_eq!(target[&0], a);
    }
}
