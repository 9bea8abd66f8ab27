//! The merged state as immutable snapshots. The merge actor ([`crate::merge`]) owns the state and
//! publishes a new [`MergedSnapshot`] after every change; readers (HTTP, dashboard, status, the
//! throughput sampler) load the current one. No lock is shared: a reader never waits for a
//! merge or a summary write, and a summary write never holds anything readers need.

use arc_swap::ArcSwap;
use sawmill_core::analytics::Partial;
use sawmill_proto::v1::MergedStatus;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// The merged state at one moment.
#[derive(Clone)]
pub struct MergedSnapshot {
    /// The merged analytics; shared with the merge actor until its next merge.
    pub partial: Arc<Partial>,
    /// Next offset after the merged chain of each partition.
    pub next: BTreeMap<i32, i64>,
    pub shards: u64,
    pub summary_writes: u64,
    pub last_summary: Option<Instant>,
    /// The last merge or summary error, while the latest attempt of that kind failed.
    pub last_error: Option<String>,
}

impl MergedSnapshot {
    pub fn new(partial: Partial) -> Self {
        MergedSnapshot {
            partial: Arc::new(partial),
            next: BTreeMap::new(),
            shards: 0,
            summary_writes: 0,
            last_summary: None,
            last_error: None,
        }
    }

    /// Parsed records plus rejected lines merged so far.
    pub fn lines(&self) -> u64 {
        self.partial.records() + self.partial.rejects()
    }

    /// The status document's `merged`.
    pub fn status(&self) -> MergedStatus {
        MergedStatus {
            records: self.partial.records(),
            rejects: self.partial.rejects(),
            shards: self.shards,
            next_offsets: self.next.clone(),
            summary_writes: self.summary_writes,
            last_summary_ms_ago: self.last_summary.map(|t| t.elapsed().as_millis() as u64),
            last_error: self.last_error.clone(),
        }
    }
}

/// Where the merge actor publishes and readers load.
pub type SharedMerged = Arc<ArcSwap<MergedSnapshot>>;

pub fn shared(initial: MergedSnapshot) -> SharedMerged {
    Arc::new(ArcSwap::from_pointee(initial))
}
