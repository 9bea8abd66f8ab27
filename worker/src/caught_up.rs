//! The caught-up cut, pure: when a partition's open shard holds everything the broker has for
//! the partition, commit it at once instead of waiting for `shard_idle`.
//!
//! The idle cut alone makes the end of every burst wait `shard_idle` (1 s by default) before its
//! last shard commits. `worker run --until-caught-up` knows the end offset at start and cuts
//! there; a worker under a coordinator has no end, so it asks: when nothing waits for the
//! partition actor (all credits free) and the last batch was not full (the consumer found the
//! partition's queue empty), the actor reads the partition's high watermark from the broker, and
//! if the open shard reaches it, the shard is cut.
//!
//! The rule that keeps a trickle from making a shard per message: **at most one caught-up cut
//! per partition per `shard_max_age`**. Between two of them the usual limits apply (rows, bytes,
//! age, idle), so a slow topic gets at most one extra shard per `shard_max_age` over what the
//! age and idle limits already allow, while the end of a burst after a quiet spell (the common
//! case: a backlog consumed, a batch upload) commits at once. A probe is also rate-limited
//! ([`PROBE_INTERVAL`]) and never runs twice at once, so a partition that keeps receiving lines
//! just behind the watermark costs the broker at most ten watermark reads a second.
//!
//! Cutting early only moves a shard boundary: epochs, fencing and the commit order are those of
//! any other cut.

use std::time::{Duration, Instant};

/// Shortest time between two end-offset reads of one partition.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// What to do about the partition's end offset now.
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    /// Read it now (the caller starts the read and later hands the answer to [`CaughtUp::answer`]).
    Now,
    /// Look again after this long (the probe interval has not passed): the caller schedules a
    /// wake-up, so a burst's end is not left to the next periodic tick.
    After(Duration),
    /// Nothing to do.
    No,
}

/// One partition's caught-up cut state.
#[derive(Debug, Default)]
pub struct CaughtUp {
    /// When the latest caught-up cut happened.
    last_cut: Option<Instant>,
    /// When the latest read of the end offset started.
    last_probe: Option<Instant>,
    /// A read of the end offset is running.
    probing: bool,
    /// A wake-up is scheduled (answered [`Probe::After`]).
    recheck: bool,
}

impl CaughtUp {
    /// Whether to read the end offset: only with an open shard (`open`), nothing waiting for
    /// the actor (`queued` false), no read running and the pause since the last caught-up cut
    /// over.
    pub fn probe(&mut self, now: Instant, open: bool, queued: bool, min_pause: Duration) -> Probe {
        if !open || queued || self.probing || !self.may_cut(now, min_pause) {
            return Probe::No;
        }
        let since = self
            .last_probe
            .map_or(PROBE_INTERVAL, |t| now.saturating_duration_since(t));
        if since >= PROBE_INTERVAL {
            self.probing = true;
            self.recheck = false;
            self.last_probe = Some(now);
            return Probe::Now;
        }
        if self.recheck {
            return Probe::No;
        }
        self.recheck = true;
        Probe::After(PROBE_INTERVAL - since)
    }

    /// The scheduled wake-up arrived (whatever it decides, a new one may be scheduled).
    pub fn woken(&mut self) {
        self.recheck = false;
    }

    /// The end offset read (`None`: it could not be read) with the open shard's last offset
    /// now: whether to cut the shard. A batch waiting for the actor means more lines are
    /// there, so the read is stale and no cut happens (the next batch probes again).
    pub fn answer(
        &mut self,
        now: Instant,
        end: Option<i64>,
        last: Option<i64>,
        queued: bool,
        min_pause: Duration,
    ) -> bool {
        self.probing = false;
        let at_end = matches!((end, last), (Some(end), Some(last)) if last + 1 >= end);
        let cut = at_end && !queued && self.may_cut(now, min_pause);
        if cut {
            self.last_cut = Some(now);
        }
        cut
    }

    fn may_cut(&self, now: Instant, min_pause: Duration) -> bool {
        self.last_cut
            .is_none_or(|t| now.saturating_duration_since(t) >= min_pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAUSE: Duration = Duration::from_secs(10);

    #[test]
    fn a_shard_at_the_end_offset_is_cut() {
        let t = Instant::now();
        let mut c = CaughtUp::default();
        assert_eq!(c.probe(t, true, false, PAUSE), Probe::Now);
        assert!(c.answer(t, Some(100), Some(99), false, PAUSE));
    }

    #[test]
    fn nothing_is_read_without_an_open_shard_or_with_batches_waiting() {
        let t = Instant::now();
        let mut c = CaughtUp::default();
        assert_eq!(c.probe(t, false, false, PAUSE), Probe::No);
        assert_eq!(c.probe(t, true, true, PAUSE), Probe::No);
        assert_eq!(c.probe(t, true, false, PAUSE), Probe::Now);
        assert_eq!(
            c.probe(t + PROBE_INTERVAL, true, false, PAUSE),
            Probe::No,
            "one read at a time"
        );
    }

    #[test]
    fn behind_the_end_or_with_a_batch_waiting_is_no_cut() {
        let t = Instant::now();
        let mut c = CaughtUp::default();
        c.probe(t, true, false, PAUSE);
        assert!(!c.answer(t, Some(100), Some(98), false, PAUSE), "behind");
        c.probe(t + PROBE_INTERVAL, true, false, PAUSE);
        assert!(!c.answer(t, Some(100), Some(99), true, PAUSE), "queued");
        c.probe(t + 2 * PROBE_INTERVAL, true, false, PAUSE);
        assert!(!c.answer(t, None, Some(99), false, PAUSE), "unreadable");
        c.probe(t + 3 * PROBE_INTERVAL, true, false, PAUSE);
        assert!(!c.answer(t, Some(100), None, false, PAUSE), "empty shard");
    }

    #[test]
    fn reads_are_rate_limited_and_a_recheck_is_scheduled_once() {
        let t = Instant::now();
        let mut c = CaughtUp::default();
        assert_eq!(c.probe(t, true, false, PAUSE), Probe::Now);
        assert!(!c.answer(t, Some(10), Some(5), false, PAUSE));
        let soon = t + Duration::from_millis(30);
        assert_eq!(
            c.probe(soon, true, false, PAUSE),
            Probe::After(PROBE_INTERVAL - Duration::from_millis(30))
        );
        assert_eq!(c.probe(soon, true, false, PAUSE), Probe::No, "scheduled");
        c.woken();
        assert_eq!(c.probe(t + PROBE_INTERVAL, true, false, PAUSE), Probe::Now);
    }

    /// The trickle rule: after a caught-up cut, none for `min_pause`, however often the
    /// partition is at its end; then one again.
    #[test]
    fn at_most_one_caught_up_cut_per_pause() {
        let t = Instant::now();
        let mut c = CaughtUp::default();
        c.probe(t, true, false, PAUSE);
        assert!(c.answer(t, Some(1), Some(0), false, PAUSE));
        for ms in (100..10_000).step_by(100) {
            let now = t + Duration::from_millis(ms);
            assert_eq!(c.probe(now, true, false, PAUSE), Probe::No, "{ms} ms");
        }
        let later = t + PAUSE;
        assert_eq!(c.probe(later, true, false, PAUSE), Probe::Now);
        assert!(c.answer(later, Some(50), Some(49), false, PAUSE));
    }

    /// An answer arriving inside the pause (a read started before another cut) cuts nothing.
    #[test]
    fn the_pause_is_checked_again_on_the_answer() {
        let t = Instant::now();
        let mut c = CaughtUp::default();
        c.probe(t, true, false, PAUSE);
        assert!(c.answer(t, Some(1), Some(0), false, PAUSE));
        assert!(!c.answer(t + Duration::from_secs(1), Some(2), Some(1), false, PAUSE));
    }
}
