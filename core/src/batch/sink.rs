//! Where parsed records go besides the Arrow batches: nowhere, into a [`Partial`] one by one,
//! or into it in batches (`Partial::observe_batch`).

use crate::analytics::Partial;
use crate::record::{LogRecord, Position};

/// Records observed per [`Partial::observe_batch`] call: enough for the lookups' cache misses
/// to overlap, few enough that the entries they bring in are still cached when counted.
pub(super) const OBSERVE_BATCH: usize = 128;

/// Where parsed records go besides the Arrow batches.
pub(super) enum Sink<'p, 'l> {
    /// Nowhere: Arrow batches only.
    Off,
    /// Observed one by one.
    Now(&'p mut Partial),
    /// Observed [`OBSERVE_BATCH`] at a time; [`Sink::flush`] observes the rest.
    Batch(&'p mut Partial, &'p mut Vec<(LogRecord<'l>, Position)>),
}

impl<'l> Sink<'_, 'l> {
    #[inline]
    pub(super) fn observe(&mut self, rec: LogRecord<'l>, pos: Position) {
        match self {
            Sink::Off => {}
            Sink::Now(partial) => partial.observe(&rec, pos),
            Sink::Batch(partial, pending) => {
                pending.push((rec, pos));
                if pending.len() >= OBSERVE_BATCH {
                    partial.observe_batch(pending);
                    pending.clear();
                }
            }
        }
    }

    /// Rejects are observed at once: they do not touch what records do.
    #[inline]
    pub(super) fn partial(&mut self) -> Option<&mut Partial> {
        match self {
            Sink::Off => None,
            Sink::Now(partial) | Sink::Batch(partial, _) => Some(partial),
        }
    }

    pub(super) fn flush(&mut self) {
        if let Sink::Batch(partial, pending) = self {
            partial.observe_batch(pending);
            pending.clear();
        }
    }
}
