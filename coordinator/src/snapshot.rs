//! The merged state as immutable snapshots. The merge actor ([`crate::merge`]) owns the state and
//! publishes a new [`MergedSnapshot`] after every change; readers (HTTP, dashboard, status, the
//! throughput sampler) load the current one. No lock is shared: a reader never waits for a
//! merge or a summary write, and a summary write never holds anything readers need.

use arc_swap::ArcSwap;
use sawmill_core::analytics::Partial;
use sawmill_proto::v1::MergedStatus;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
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
    /// Documents rendered from `partial`, shared by every snapshot that follows this one.
    pub renders: Arc<Renders>,
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
            renders: Arc::default(),
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

/// What a [`Health::record`] changed, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// This kind of attempt failed before and has now actually worked.
    Recovered,
    /// A new failure, or a different error than the last one.
    Failed(String),
    Same,
}

/// The failing kinds of attempts (`merge`, `summary`), each until an attempt of that same
/// kind works: a merge that works says nothing about the storage a failed summary write needs.
#[derive(Debug, Default)]
pub struct Health {
    failing: BTreeMap<&'static str, String>,
}

impl Health {
    /// Records an attempt: `Ok(true)` it worked, `Ok(false)` nothing was attempted (proves
    /// nothing, changes nothing), `Err` it failed.
    pub fn record(&mut self, what: &'static str, outcome: Result<bool, String>) -> Change {
        match outcome {
            Ok(false) => Change::Same,
            Ok(true) => match self.failing.remove(what) {
                Some(_) => Change::Recovered,
                None => Change::Same,
            },
            Err(e) => match self.failing.insert(what, e.clone()) {
                Some(previous) if previous == e => Change::Same,
                _ => Change::Failed(e),
            },
        }
    }

    /// One of the errors still failing, for the status document.
    pub fn last_error(&self) -> Option<String> {
        self.failing.values().next_back().cloned()
    }
}

/// Entries a [`RenderCache`] keeps per merge generation (one per distinct request parameter,
/// such as `?top=`): bounds what requests with ever new parameters can hold.
const RENDERS_KEPT: usize = 8;

/// The HTTP documents rendered from the merged analytics, cached per merge generation: between
/// two merges every request for the same document is served the same bytes, rendered once.
#[derive(Default)]
pub struct Renders {
    /// `/api/v1/analytics`, by `top`: the JSON body.
    pub analytics: RenderCache<axum::body::Bytes>,
    /// The dashboard document's analytics half (totals and charts), by nothing.
    pub dashboard: RenderCache<Arc<serde_json::Value>>,
}

/// A document per `(merge generation, key)`. The generation is the merged [`Partial`] itself:
/// the merge actor replaces it (a new `Arc`) on every merge that changed it and never mutates a
/// published one, and an entry holds a `Weak` to the one it was rendered from, so the address
/// cannot be reused by a later partial while the entry lives (no ABA), yet keeps no analytics
/// alive.
pub struct RenderCache<T> {
    entries: Mutex<Vec<(u64, Weak<Partial>, T)>>,
    renders: AtomicU64,
}

impl<T> Default for RenderCache<T> {
    fn default() -> Self {
        RenderCache {
            entries: Mutex::new(Vec::new()),
            renders: AtomicU64::new(0),
        }
    }
}

impl<T: Clone> RenderCache<T> {
    /// The document for `key` rendered from `partial`, rendering it with `render` on a miss.
    /// Two requests racing on a miss may both render; either result is the same document.
    pub fn get_or_render<E>(
        &self,
        partial: &Arc<Partial>,
        key: u64,
        render: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let current = Arc::downgrade(partial);
        if let Some(hit) = self
            .lock()
            .iter()
            .find(|(k, p, _)| *k == key && p.ptr_eq(&current))
        {
            return Ok(hit.2.clone());
        }
        self.renders.fetch_add(1, Ordering::Relaxed);
        let doc = render()?;
        let mut entries = self.lock();
        entries.retain(|(k, p, _)| p.ptr_eq(&current) && *k != key);
        if entries.len() >= RENDERS_KEPT {
            entries.clear();
        }
        entries.push((key, current, doc.clone()));
        Ok(doc)
    }

    /// Documents rendered so far (misses).
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Weak<Partial>, T)>> {
        // A panic while holding the lock leaves a valid Vec: keep using it.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_again_only_after_the_same_kind_of_attempt_worked() {
        let mut h = Health::default();
        let fail = |e: &str| Err(e.to_string());
        assert_eq!(
            h.record("summary", fail("hdfs down")),
            Change::Failed("hdfs down".into())
        );
        assert_eq!(h.record("summary", fail("hdfs down")), Change::Same);
        // A merge working (etcd fine) says nothing about the summary's storage.
        assert_eq!(h.record("merge", Ok(true)), Change::Same);
        assert_eq!(h.last_error().as_deref(), Some("hdfs down"));
        // Nothing to write is not a write that worked.
        assert_eq!(h.record("summary", Ok(false)), Change::Same);
        assert_eq!(h.last_error().as_deref(), Some("hdfs down"));
        assert_eq!(
            h.record("summary", fail("timeout")),
            Change::Failed("timeout".into())
        );
        assert_eq!(h.record("summary", Ok(true)), Change::Recovered);
        assert_eq!(h.record("summary", Ok(true)), Change::Same);
        assert_eq!(h.last_error(), None);
    }

    #[test]
    fn a_document_renders_once_per_generation_and_key() {
        let cache: RenderCache<u64> = RenderCache::default();
        let first = Arc::new(Partial::new(&Default::default()));
        let render = |v: u64| move || Ok::<_, ()>(v);
        assert_eq!(cache.get_or_render(&first, 10, render(1)), Ok(1));
        assert_eq!(cache.get_or_render(&first, 10, render(2)), Ok(1));
        assert_eq!(cache.renders(), 1);
        // Another key of the same generation renders once too.
        assert_eq!(cache.get_or_render(&first, 20, render(3)), Ok(3));
        assert_eq!(cache.get_or_render(&first, 10, render(4)), Ok(1));
        assert_eq!(cache.renders(), 2);
        // A new merge generation renders again, and drops the old generation's entries.
        let second = Arc::new(Partial::clone(&first));
        drop(first);
        assert_eq!(cache.get_or_render(&second, 10, render(5)), Ok(5));
        assert_eq!(cache.get_or_render(&second, 10, render(6)), Ok(5));
        assert_eq!(cache.renders(), 3);
        assert_eq!(cache.lock().len(), 1);
        // A failed render is not cached.
        assert_eq!(
            cache.get_or_render(&second, 30, || Err::<u64, _>(())),
            Err(())
        );
        assert_eq!(cache.get_or_render(&second, 30, render(7)), Ok(7));
        // Ever new keys cannot grow it without bound.
        for key in 100..200 {
            cache.get_or_render(&second, key, render(key)).unwrap();
        }
        assert!(cache.lock().len() <= RENDERS_KEPT);
    }
}
