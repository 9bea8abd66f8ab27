//! Bounded state over a long life: folds merged manifests out of etcd into manifest segments,
//! compacts etcd's revision history, and sweeps stale staging files.
//!
//! The merge actor owns a [`Compactor`]. After every successful summary write it calls
//! [`Compactor::fold_all`] with the merged next offsets that summary covers: a partition with
//! more than [`FOLD_THRESHOLD`] merged, unfolded manifests gets them folded (at most
//! [`FOLD_MAX`] per transaction) into a segment file plus one etcd key, in one transaction
//! guarded by the merge generation, the previous segment and every folded key's revision. What
//! may be folded is decided by the pure `sawmill_core::manifest::plan_fold`.

use crate::error::MergeError;
use crate::metrics::Metrics;
use futures::stream::{self, StreamExt};
use sawmill_common::etcd::{Checkpoints, StoredManifest, StoredSegment};
use sawmill_common::storage::{publish, Storage};
use sawmill_core::analytics::Partial;
use sawmill_core::layout::{self, partition_staging_dir};
use sawmill_core::manifest::{plan_fold, ManifestSegment, SegmentRef, ShardManifest, FOLD_MAX};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A partition keeps at most this many merged manifests in etcd before they are folded.
pub const FOLD_THRESHOLD: usize = 64;
/// etcd's revision history is compacted at most this often.
pub const COMPACT_INTERVAL: Duration = Duration::from_secs(60);
/// Staging directories are swept at most this often.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// A staging file is deleted only once it has been seen stale for this long.
pub const STALE_STAGING_AGE: Duration = Duration::from_secs(15 * 60);
/// Storage checks at once while folding.
const CONCURRENCY: usize = 16;

/// Folding state the merge actor keeps between polls.
pub struct Compactor {
    checkpoints: Checkpoints,
    storage: Arc<dyn Storage>,
    metrics: Metrics,
    /// This coordinator's merge generation; a fold applies only while it is the current one.
    generation: u64,
    /// Set once a newer coordinator's generation was seen: this one never folds again.
    superseded: bool,
    /// Each partition's latest segment.
    pub segments: BTreeMap<i32, StoredSegment>,
    /// Merged but not yet folded manifests of each partition, in chain order.
    pub live: BTreeMap<i32, Vec<StoredManifest>>,
    folded_revision: i64,
    compacted_revision: i64,
    last_compaction: Option<Instant>,
    /// Staging files first seen stale, and when.
    stale: BTreeMap<String, Instant>,
    last_sweep: Option<Instant>,
}

impl Compactor {
    pub fn new(
        checkpoints: Checkpoints,
        storage: Arc<dyn Storage>,
        metrics: Metrics,
        generation: u64,
    ) -> Self {
        Compactor {
            checkpoints,
            storage,
            metrics,
            generation,
            superseded: false,
            segments: BTreeMap::new(),
            live: BTreeMap::new(),
            folded_revision: 0,
            compacted_revision: 0,
            last_compaction: None,
            stale: BTreeMap::new(),
            last_sweep: None,
        }
    }

    /// Folds what the summary covering `summarized` made foldable, then compacts etcd's history
    /// if it is time. Returns the number of manifests folded.
    pub async fn fold_all(&mut self, summarized: &BTreeMap<i32, i64>) -> Result<usize, MergeError> {
        let mut total = 0;
        if self.superseded {
            return Ok(0);
        }
        let partitions: Vec<i32> = self.live.keys().copied().collect();
        for p in partitions {
            let Some(&upto) = summarized.get(&p) else {
                continue;
            };
            // Catch up a backlog now, in transactions of at most FOLD_MAX.
            loop {
                let n = self
                    .fold_once(p, upto)
                    .await
                    .map_err(|source| MergeError::Fold {
                        partition: p,
                        source,
                    })?;
                total += n;
                if n == 0 || self.superseded {
                    break;
                }
            }
        }
        if self.folded_revision > self.compacted_revision
            && self
                .last_compaction
                .is_none_or(|t| t.elapsed() >= COMPACT_INTERVAL)
        {
            self.last_compaction = Some(Instant::now());
            self.checkpoints
                .compact(self.folded_revision)
                .await
                .map_err(MergeError::Compact)?;
            self.compacted_revision = self.folded_revision;
            tracing::debug!(revision = self.folded_revision, "etcd history compacted");
        }
        Ok(total)
    }

    /// One fold of partition `p`'s merged manifests below `summarized`, if enough are live.
    async fn fold_once(&mut self, p: i32, summarized: i64) -> sawmill_common::Result<usize> {
        let live: Vec<StoredManifest> = self.live.get(&p).cloned().unwrap_or_default();
        let previous = self.segments.get(&p).cloned();
        let manifests: Vec<ShardManifest> = live.iter().map(|s| s.manifest.clone()).collect();
        // Which candidates are fully published: the merge read their partial, possibly from
        // staging (a worker that died before publishing), and once a manifest is folded, worker
        // recovery no longer sees it and would delete its staged files as garbage.
        let candidates: Vec<&ShardManifest> = manifests
            .iter()
            .take(FOLD_MAX)
            .take_while(|m| m.next_offset() <= summarized)
            .collect();
        if manifests.len() <= FOLD_THRESHOLD || candidates.is_empty() {
            return Ok(0);
        }
        let published = self.published(&candidates).await?;
        let plan = plan_fold(
            previous.as_ref().map(|s| &s.segment),
            &manifests,
            summarized,
            |m| published.contains(&m.first),
            FOLD_THRESHOLD,
            FOLD_MAX,
        );
        if plan.count == 0 {
            return Ok(0);
        }
        let folded = &live[..plan.count];
        let (new, file) = self
            .write_segment(
                previous.as_ref().map(|s| &s.segment),
                &manifests[..plan.count],
            )
            .await?;
        match self
            .checkpoints
            .fold(self.generation, previous.as_ref(), &new, folded)
            .await?
        {
            Some(revision) => {
                tracing::debug!(
                    partition = p,
                    first = new.first,
                    last = new.last,
                    shards = plan.count,
                    bytes = file,
                    "manifests folded"
                );
                self.metrics.folded_manifests.inc_by(plan.count as u64);
                self.folded_revision = self.folded_revision.max(revision);
                self.segments.insert(
                    p,
                    StoredSegment {
                        segment: new,
                        mod_revision: revision,
                    },
                );
                if let Some(l) = self.live.get_mut(&p) {
                    l.drain(..plan.count);
                }
                Ok(plan.count)
            }
            None => {
                self.resync(p).await?;
                Ok(0)
            }
        }
    }

    /// First offsets of the candidates whose every file is at its final name.
    async fn published(
        &self,
        candidates: &[&ShardManifest],
    ) -> sawmill_common::Result<BTreeSet<i64>> {
        let storage = self.storage.as_ref();
        let checks: Vec<(i64, String)> = candidates
            .iter()
            .flat_map(|m| m.all_files().map(|f| (m.first, f.path.clone())))
            .collect();
        let results: Vec<(i64, sawmill_common::Result<bool>)> = stream::iter(checks)
            .map(|(first, path)| async move { (first, storage.exists(&path).await) })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let mut missing = BTreeSet::new();
        for (first, exists) in results {
            if !exists? {
                missing.insert(first);
            }
        }
        Ok(candidates
            .iter()
            .map(|m| m.first)
            .filter(|f| !missing.contains(f))
            .collect())
    }

    /// Builds the segment folding `folded` after `previous` and writes it (staged, then
    /// renamed). Returns its etcd record and its size.
    async fn write_segment(
        &self,
        previous: Option<&SegmentRef>,
        folded: &[ShardManifest],
    ) -> sawmill_common::Result<(SegmentRef, usize)> {
        let storage = self.storage.as_ref();
        let previous_bytes = match previous {
            Some(s) => Some(storage.read(&s.path()).await?),
            None => None,
        };
        let mut shard_bytes = Vec::with_capacity(folded.len());
        for m in folded {
            shard_bytes.push(storage.read(&m.partial.path).await?);
        }
        let previous = previous.cloned();
        let manifests = folded.to_vec();
        // Decoding, merging and encoding partials is CPU work.
        let (new, file) = tokio::task::spawn_blocking(move || -> sawmill_common::Result<_> {
            let corrupt = |what: String| {
                move |message: String| sawmill_common::Error::Corrupt { what, message }
            };
            let mut merged: Option<Partial> = match (&previous, previous_bytes) {
                (Some(r), Some(bytes)) => {
                    let s = ManifestSegment::decode(&bytes, r).map_err(corrupt(r.path()))?;
                    Some(Partial::from_bytes(&s.partial)?)
                }
                _ => None,
            };
            for bytes in shard_bytes {
                let shard = Partial::from_bytes(&bytes)?;
                match merged.as_mut() {
                    Some(m) => m.merge(shard),
                    None => merged = Some(shard),
                }
            }
            let partial = match merged {
                Some(m) => m.to_bytes()?,
                None => Vec::new(),
            };
            let file = ManifestSegment {
                previous: previous.clone(),
                manifests: manifests.clone(),
                partial,
            }
            .encode()
            .map_err(corrupt("a new manifest segment".into()))?;
            let new = SegmentRef::folding(previous.as_ref(), &manifests, &file)
                .ok_or_else(|| sawmill_common::Error::Pipeline("nothing to fold".into()))?;
            Ok((new, file))
        })
        .await
        .map_err(|e| sawmill_common::Error::Pipeline(format!("fold task failed: {e}")))??;
        let path = new.path();
        let staging = layout::temp_staging_path(&path);
        storage.write(&staging, &file).await?;
        if !publish(storage, &staging, &path).await? {
            // An earlier attempt at the same fold (its transaction failed or its answer was
            // lost) wrote it: folding is deterministic, so it must hold the same bytes.
            if storage.read(&path).await? != file {
                return Err(sawmill_common::Error::Corrupt {
                    what: path,
                    message: "a different segment of the same range exists: was the analytics configuration changed? move it away".into(),
                });
            }
        }
        Ok((new, file.len()))
    }

    /// After a refused fold: re-reads the partition's segment (an earlier fold whose answer was
    /// lost may have applied) and the merge generation (a newer coordinator may have started).
    async fn resync(&mut self, p: i32) -> sawmill_common::Result<()> {
        if let Some(s) = self.checkpoints.segment(p).await? {
            let next = s.segment.next_offset();
            if let Some(l) = self.live.get_mut(&p) {
                l.retain(|m| m.manifest.first >= next);
            }
            self.segments.insert(p, s);
        }
        let current = self.checkpoints.merge_generation().await?;
        if current != Some(self.generation) {
            tracing::warn!(
                generation = self.generation,
                current,
                "a newer coordinator started: this one stops folding"
            );
            self.superseded = true;
        }
        Ok(())
    }

    /// Sweeps stale staging files if it is time (see [`sweep_staging`]).
    pub async fn sweep_if_due(&mut self, source: &str) -> Result<usize, MergeError> {
        if self
            .last_sweep
            .is_some_and(|t| t.elapsed() < SWEEP_INTERVAL)
        {
            return Ok(0);
        }
        self.last_sweep = Some(Instant::now());
        let n = sweep_staging(
            &mut self.checkpoints,
            self.storage.as_ref(),
            source,
            &mut self.stale,
            STALE_STAGING_AGE,
        )
        .await
        .map_err(MergeError::Sweep)?;
        self.metrics.stale_staging_deleted.inc_by(n as u64);
        Ok(n)
    }
}

/// Deletes shard staging files that no commit can publish any more: written under an epoch
/// older than the partition's current one (that owner is fenced: its commits fail), referenced
/// by no live manifest (else the new owner's recovery publishes it), and seen so for at least
/// `min_age` (`seen` remembers when each was first seen stale; call this repeatedly).
/// Returns the number deleted.
pub async fn sweep_staging(
    checkpoints: &mut Checkpoints,
    storage: &dyn Storage,
    source: &str,
    seen: &mut BTreeMap<String, Instant>,
    min_age: Duration,
) -> sawmill_common::Result<usize> {
    let now = Instant::now();
    let mut candidates = Vec::new();
    let partitions = checkpoints.partitions().await?;
    for &p in partitions.keys() {
        for path in storage.list(&partition_staging_dir(source, p)).await? {
            if let Some((first, epoch)) = layout::staging_first_epoch(&path) {
                candidates.push((p, first, epoch, path));
            }
        }
    }
    // Epochs read after listing: an epoch newer than a file's at this point means its writer
    // was fenced before the listing, so it cannot commit the file afterwards.
    let epochs = checkpoints.partitions().await?;
    let mut stale = BTreeSet::new();
    for (p, first, epoch, path) in candidates {
        let current = epochs.get(&p).and_then(|s| s.epoch);
        if current.is_none_or(|c| c <= epoch) {
            continue;
        }
        let referenced = checkpoints
            .manifest(p, first)
            .await?
            .is_some_and(|m| m.all_files().any(|f| f.staging == path));
        if !referenced {
            stale.insert(path);
        }
    }
    seen.retain(|path, _| stale.contains(path));
    let mut deleted = 0;
    for path in stale {
        let first_seen = *seen.entry(path.clone()).or_insert(now);
        if now.duration_since(first_seen) >= min_age {
            storage.delete(&path).await?;
            seen.remove(&path);
            deleted += 1;
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "stale staging files removed");
    }
    Ok(deleted)
}
