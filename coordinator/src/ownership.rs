//! Each partition's ownership as a small explicit state machine, decided by pure functions.
//!
//! ```text
//!              Grant (bump epoch)                     Release asked
//! Unassigned ───────────────────▶ Owned{w, e} ─────────────────────▶ Releasing{from w, to t}
//!     ▲                              ▲   │ owner dead: Grant to target       │ released, owner dead,
//!     │ Drop (no workers)            │   ▼ (bump: fences the dead owner)     │ or timeout: Grant to t
//!     └──────────────────────────────┴── Owned{t, e+1} ◀─────────────────────┘
//!                                        (Cancel: target is `from` again → Owned{w, e})
//! ```
//!
//! A live owner is never fenced while it works: a moving partition is first released (its open
//! shard committed), and only then is the epoch bumped for the new owner. A dead owner, or one
//! that does not release within the release timeout, is fenced by the bump; fencing makes that
//! safe (its later commits fail), so the only cost is re-reading what it had not committed.
//!
//! The cluster actor ([`crate::cluster`]) does the I/O: it bumps epochs in etcd for a
//! [`Step::Grant`] and delivers assignments and releases in heartbeat answers ([`reconcile`]).

use crate::assign::{Partition, WorkerId};
use sawmill_proto::v1::PartitionStatus;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    Unassigned,
    /// `worker` owns the partition at `epoch` (fenced for it in etcd).
    Owned {
        worker: WorkerId,
        epoch: u64,
    },
    /// `from` (still owner at `epoch`) was asked to release so that `to` can take over.
    Releasing {
        from: WorkerId,
        epoch: u64,
        to: WorkerId,
        since: Instant,
        /// `from` reported, after being asked, that it no longer runs the partition.
        released: bool,
    },
}

impl Ownership {
    /// The worker that holds the partition's epoch now, if any.
    pub fn holder(&self) -> Option<&WorkerId> {
        match self {
            Ownership::Unassigned => None,
            Ownership::Owned { worker, .. } => Some(worker),
            Ownership::Releasing { from, .. } => Some(from),
        }
    }

    pub fn epoch(&self) -> Option<u64> {
        match self {
            Ownership::Unassigned => None,
            Ownership::Owned { epoch, .. } | Ownership::Releasing { epoch, .. } => Some(*epoch),
        }
    }

    /// `unassigned`, `owned` or `releasing` (the status document's `state`).
    pub fn name(&self) -> &'static str {
        match self {
            Ownership::Unassigned => "unassigned",
            Ownership::Owned { .. } => "owned",
            Ownership::Releasing { .. } => "releasing",
        }
    }

    /// The partition's line in the status document. `etcd_epoch` is shown while nobody holds
    /// the partition; lag counts the whole partition before its first commit.
    pub fn status(
        &self,
        partition: Partition,
        etcd_epoch: Option<u64>,
        committed: Option<i64>,
        end: Option<i64>,
    ) -> PartitionStatus {
        PartitionStatus {
            partition,
            owner: self.holder().cloned(),
            epoch: self.epoch().or(etcd_epoch),
            state: self.name().to_string(),
            moving_to: match self {
                Ownership::Releasing { to, .. } => Some(to.clone()),
                _ => None,
            },
            committed_offset: committed,
            end_offset: end,
            lag: end.map(|e| (e - committed.unwrap_or(0)).max(0)),
            // The owner's report, added by the cluster actor.
            last_error: None,
        }
    }
}

/// What to do next for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Keep,
    /// Bump the epoch for `to` (fencing every earlier owner) and assign it. `forced` when a live
    /// owner did not release in time.
    Grant {
        to: WorkerId,
        forced: bool,
    },
    /// Ask the live owner `from` to release for `to` (or retarget a pending release).
    Release {
        from: WorkerId,
        to: WorkerId,
    },
    /// The move is no longer wanted: the releasing owner keeps the partition.
    Cancel,
    /// No live worker can own it (or it left the topic): forget the owner.
    Drop,
}

/// Decides the next step of a partition in state `state` whose assignment target is `target`.
pub fn step(
    state: &Ownership,
    target: Option<&WorkerId>,
    alive: &dyn Fn(&str) -> bool,
    now: Instant,
    release_timeout: Duration,
) -> Step {
    match state {
        Ownership::Unassigned => match target {
            Some(t) => Step::Grant {
                to: t.clone(),
                forced: false,
            },
            None => Step::Keep,
        },
        Ownership::Owned { worker, .. } => match (alive(worker), target) {
            (true, Some(t)) if t != worker => Step::Release {
                from: worker.clone(),
                to: t.clone(),
            },
            (true, _) => Step::Keep,
            (false, Some(t)) => Step::Grant {
                to: t.clone(),
                forced: false,
            },
            (false, None) => Step::Drop,
        },
        Ownership::Releasing {
            from,
            to,
            since,
            released,
            ..
        } => {
            let from_alive = alive(from);
            match target {
                None if from_alive => Step::Cancel,
                None => Step::Drop,
                Some(t) if t == from => Step::Cancel,
                Some(t) => {
                    let timed_out = now.saturating_duration_since(*since) >= release_timeout;
                    if !from_alive || *released || timed_out {
                        Step::Grant {
                            to: t.clone(),
                            forced: from_alive && !*released,
                        }
                    } else if t != to {
                        Step::Release {
                            from: from.clone(),
                            to: t.clone(),
                        }
                    } else {
                        Step::Keep
                    }
                }
            }
        }
    }
}

/// The state after a step that needs no I/O. A [`Step::Grant`] is applied by the caller with the
/// epoch etcd returned: `Ownership::Owned { worker: to, epoch }`.
pub fn apply(state: Ownership, step: &Step, now: Instant) -> Ownership {
    match (state, step) {
        (Ownership::Owned { worker, epoch }, Step::Release { to, .. }) => Ownership::Releasing {
            from: worker,
            epoch,
            to: to.clone(),
            since: now,
            released: false,
        },
        (
            Ownership::Releasing {
                from,
                epoch,
                since,
                released,
                ..
            },
            Step::Release { to, .. },
        ) => Ownership::Releasing {
            from,
            epoch,
            to: to.clone(),
            since,
            released,
        },
        (Ownership::Releasing { from, epoch, .. }, Step::Cancel) => Ownership::Owned {
            worker: from,
            epoch,
        },
        (_, Step::Drop) => Ownership::Unassigned,
        (s, _) => s,
    }
}

/// What a worker's heartbeat answer carries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub assign: Vec<(Partition, u64)>,
    pub release: Vec<Partition>,
}

/// Reconciles what `worker` reports it runs (`reported`: partition → epoch) with the states:
///
/// - a partition it owns at epoch `e` but does not report at `e` is assigned (again): the
///   answer that carried it may be lost, and a worker running an older epoch is superseded;
/// - a partition it was asked to release and still reports is asked again; once it stops
///   reporting it, the release is done (`released`);
/// - a partition nobody owns that it reports at the epoch etcd holds (`epochs`) is adopted, so a
///   restarted coordinator keeps assignments sticky instead of fencing every worker;
/// - anything else it reports (another worker's partition, an older epoch) must be released.
pub fn reconcile(
    states: &mut BTreeMap<Partition, Ownership>,
    worker: &str,
    reported: &BTreeMap<Partition, u64>,
    epochs: &BTreeMap<Partition, u64>,
) -> Delivery {
    let mut out = Delivery::default();
    for (&p, &e) in reported {
        let ownership = states.entry(p).or_insert(Ownership::Unassigned);
        if *ownership == Ownership::Unassigned && epochs.get(&p) == Some(&e) {
            *ownership = Ownership::Owned {
                worker: worker.to_string(),
                epoch: e,
            };
        }
    }
    for (&p, ownership) in states.iter_mut() {
        match ownership {
            Ownership::Owned { worker: w, epoch } if w == worker => {
                if reported.get(&p) != Some(epoch) {
                    out.assign.push((p, *epoch));
                }
            }
            Ownership::Releasing { from, released, .. } if from == worker => {
                if reported.contains_key(&p) {
                    out.release.push(p);
                } else {
                    *released = true;
                }
            }
            _ => {
                if reported.contains_key(&p) {
                    out.release.push(p);
                }
            }
        }
    }
    // A partition reported at an older epoch is superseded by the assignment, not released.
    out.release
        .retain(|p| !out.assign.iter().any(|(a, _)| a == p));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(w: &str, e: u64) -> Ownership {
        Ownership::Owned {
            worker: w.into(),
            epoch: e,
        }
    }

    const T: Duration = Duration::from_secs(30);

    #[test]
    fn unassigned_is_granted_to_the_target() {
        let now = Instant::now();
        let alive = |_: &str| true;
        assert_eq!(
            step(&Ownership::Unassigned, Some(&"a".into()), &alive, now, T),
            Step::Grant {
                to: "a".into(),
                forced: false
            }
        );
        assert_eq!(
            step(&Ownership::Unassigned, None, &alive, now, T),
            Step::Keep
        );
    }

    #[test]
    fn a_live_owner_keeps_or_is_asked_to_release() {
        let now = Instant::now();
        let alive = |_: &str| true;
        assert_eq!(
            step(&owned("a", 3), Some(&"a".into()), &alive, now, T),
            Step::Keep
        );
        let s = step(&owned("a", 3), Some(&"b".into()), &alive, now, T);
        assert_eq!(
            s,
            Step::Release {
                from: "a".into(),
                to: "b".into()
            }
        );
        let r = apply(owned("a", 3), &s, now);
        assert!(
            matches!(&r, Ownership::Releasing { from, epoch: 3, to, released: false, .. } if from == "a" && to == "b")
        );
        assert_eq!(r.holder().map(String::as_str), Some("a"));
    }

    #[test]
    fn a_dead_owner_is_replaced_at_once_or_dropped_without_workers() {
        let now = Instant::now();
        let alive = |w: &str| w != "a";
        assert_eq!(
            step(&owned("a", 3), Some(&"b".into()), &alive, now, T),
            Step::Grant {
                to: "b".into(),
                forced: false
            }
        );
        let none = |_: &str| false;
        let s = step(&owned("a", 3), None, &none, now, T);
        assert_eq!(s, Step::Drop);
        assert_eq!(apply(owned("a", 3), &s, now), Ownership::Unassigned);
    }

    fn releasing(released: bool, since: Instant) -> Ownership {
        Ownership::Releasing {
            from: "a".into(),
            epoch: 3,
            to: "b".into(),
            since,
            released,
        }
    }

    #[test]
    fn releasing_waits_then_grants_on_release_death_or_timeout() {
        let t0 = Instant::now();
        let alive = |_: &str| true;
        let b = Some("b".to_string());
        assert_eq!(
            step(&releasing(false, t0), b.as_ref(), &alive, t0, T),
            Step::Keep
        );
        assert_eq!(
            step(&releasing(true, t0), b.as_ref(), &alive, t0, T),
            Step::Grant {
                to: "b".into(),
                forced: false
            }
        );
        assert_eq!(
            step(&releasing(false, t0), b.as_ref(), &alive, t0 + T, T),
            Step::Grant {
                to: "b".into(),
                forced: true
            }
        );
        let a_dead = |w: &str| w != "a";
        assert_eq!(
            step(&releasing(false, t0), b.as_ref(), &a_dead, t0, T),
            Step::Grant {
                to: "b".into(),
                forced: false
            }
        );
    }

    #[test]
    fn releasing_is_cancelled_or_retargeted_when_the_target_changes() {
        let t0 = Instant::now();
        let alive = |_: &str| true;
        let s = step(&releasing(false, t0), Some(&"a".into()), &alive, t0, T);
        assert_eq!(s, Step::Cancel);
        assert_eq!(apply(releasing(false, t0), &s, t0), owned("a", 3));
        let s = step(&releasing(false, t0), Some(&"c".into()), &alive, t0, T);
        assert_eq!(
            s,
            Step::Release {
                from: "a".into(),
                to: "c".into()
            }
        );
        // Retargeting keeps the original deadline.
        let r = apply(releasing(false, t0), &s, t0 + Duration::from_secs(5));
        assert!(
            matches!(r, Ownership::Releasing { since, ref to, .. } if since == t0 && to == "c")
        );
    }

    #[test]
    fn reconcile_assigns_releases_and_marks_released() {
        let t0 = Instant::now();
        let mut states = BTreeMap::from([
            (0, owned("a", 5)),
            (1, owned("a", 2)),
            (2, releasing(false, t0)),
            (3, owned("b", 9)),
        ]);
        // a runs 1 (right epoch), 2 (asked to release), 3 (b's!) and 0 at an old epoch.
        let reported = BTreeMap::from([(0, 4), (1, 2), (2, 3), (3, 8)]);
        let d = reconcile(&mut states, "a", &reported, &BTreeMap::new());
        assert_eq!(d.assign, vec![(0, 5)]);
        assert_eq!(d.release, vec![2, 3]);
        // Once it stops reporting 2 the release is done.
        let reported = BTreeMap::from([(0, 5), (1, 2)]);
        let d = reconcile(&mut states, "a", &reported, &BTreeMap::new());
        assert_eq!(d, Delivery::default());
        assert!(matches!(
            states[&2],
            Ownership::Releasing { released: true, .. }
        ));
    }

    #[test]
    fn reconcile_adopts_what_a_rejoining_worker_holds_at_the_etcd_epoch() {
        let mut states = BTreeMap::from([(0, Ownership::Unassigned), (1, Ownership::Unassigned)]);
        let epochs = BTreeMap::from([(0, 7), (1, 4)]);
        // Holds 0 at the current epoch, 1 at a fenced one.
        let d = reconcile(&mut states, "a", &BTreeMap::from([(0, 7), (1, 3)]), &epochs);
        assert_eq!(states[&0], owned("a", 7));
        assert_eq!(states[&1], Ownership::Unassigned);
        assert_eq!(d.release, vec![1]);
        assert!(d.assign.is_empty());
    }

    #[test]
    fn a_full_move_is_release_then_grant() {
        // a owns p; b joins and is the target: release, a stops reporting, grant to b.
        let t0 = Instant::now();
        let alive = |_: &str| true;
        let mut st = owned("a", 1);
        let b = Some("b".to_string());
        let s = step(&st, b.as_ref(), &alive, t0, T);
        st = apply(st, &s, t0);
        let mut states = BTreeMap::from([(0, st)]);
        let d = reconcile(
            &mut states,
            "a",
            &BTreeMap::from([(0, 1)]),
            &BTreeMap::new(),
        );
        assert_eq!(d.release, vec![0]);
        reconcile(&mut states, "a", &BTreeMap::new(), &BTreeMap::new());
        let s = step(&states[&0], b.as_ref(), &alive, t0, T);
        assert_eq!(
            s,
            Step::Grant {
                to: "b".into(),
                forced: false
            }
        );
    }
}
