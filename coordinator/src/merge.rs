//! The merge actor: folds every committed shard's partial aggregates into one [`Partial`],
//! exactly once, and keeps `summary/<table>.parquet` current.
//!
//! Exactly once comes from following each partition's commit chain: a shard is merged only when
//! its `first` offset is the partition's `merged_next` (or, for the first shard, the smallest
//! `first` of the partition: the chain start); a replay (`first < merged_next`) is ignored and a
//! gap (`first > merged_next`) waits. A restarted coordinator runs the same code from empty and
//! reaches the same state from etcd and storage: first each partition's manifest segment (the
//! merged partial of every folded shard, [`crate::compact`]), then its live manifests.
//!
//! The actor alone owns the merged state; after every poll or summary write it publishes an
//! immutable [`MergedSnapshot`] that readers load ([`crate::snapshot`]), so a reader never waits
//! for a merge or for a Parquet/HDFS write.

use crate::compact::Compactor;
use crate::config::ServeConfig;
use crate::error::MergeError;
use crate::metrics::Metrics;
use crate::snapshot::{MergedSnapshot, SharedMerged};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sawmill_common::committed::{load_partial, load_segment};
use sawmill_common::etcd::{Checkpoints, StoredManifest};
use sawmill_common::storage::Storage;
use sawmill_core::analytics::Partial;
use sawmill_core::manifest::ShardManifest;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Manifests read per partition and poll: a backlog is merged over several polls.
const READ_MAX: usize = 1024;

/// How many of `live` (a partition's manifests in offset order, from the merged next offset
/// on) extend its merged chain: those continuing `cursor` (the merged next offset, or for a
/// partition never merged, the first one read) without a gap. A gap waits, never skips.
pub fn chain_prefix(cursor: Option<i64>, live: &[ShardManifest]) -> usize {
    let mut cursor = cursor.or_else(|| live.first().map(|m| m.first));
    live.iter()
        .take_while(|m| {
            let extends = Some(m.first) == cursor && m.last >= m.first;
            cursor = Some(m.next_offset());
            extends
        })
        .count()
}

pub enum MergeMsg {
    /// Merge whatever extends the chains now.
    Poll,
    /// Rewrite the summary tables if they changed.
    WriteSummary,
    /// Poll and write now (shutdown); replies when done.
    Flush(RpcReplyPort<()>),
    /// Rewrite every table once, even unchanged ones: sent a while after taking over, it
    /// replaces whatever a deposed leader's last, already started write may have renamed in.
    RewriteAll,
}

pub struct MergeArgs {
    pub cfg: Arc<ServeConfig>,
    pub checkpoints: Checkpoints,
    pub storage: Arc<dyn Storage>,
    /// Where snapshots are published; its current snapshot is where the actor starts.
    pub merged: SharedMerged,
    pub metrics: Metrics,
}

pub struct MergeActor;

pub struct MergeState {
    args: MergeArgs,
    /// The merged state; readers see it as last published.
    current: MergedSnapshot,
    /// Changed since the summary tables were last written.
    dirty: bool,
    /// Which summary tables are written as they are now: only changed ones are rewritten.
    summary: sawmill_common::summary::SummaryWriter,
    /// Merge and summary failures, each until that kind of attempt works again.
    health: crate::snapshot::Health,
    /// Merged next offsets the last summary written covers: what may be folded.
    summarized: BTreeMap<i32, i64>,
    /// Segments are read once, on the first poll.
    segments_loaded: bool,
    compactor: Compactor,
    tickers: Vec<tokio::task::JoinHandle<()>>,
}

/// What one merge round on the blocking pool hands back to the actor.
struct MergeRound {
    partial: Arc<Partial>,
    next: BTreeMap<i32, i64>,
    shards: u64,
    /// A partition whose chain stopped at a partial that could not be loaded.
    failed: Option<i32>,
}

impl MergeState {
    fn publish(&self) {
        self.args.merged.store(Arc::new(self.current.clone()));
    }

    /// A (re)started coordinator's first step: each partition's segment holds the merged
    /// partial of every folded shard, so it starts from one file per partition.
    async fn load_segments(&mut self) -> Result<(), MergeError> {
        let segments = self
            .args
            .checkpoints
            .clone()
            .segments()
            .await
            .map_err(MergeError::ListManifests)?;
        for (partition, s) in segments {
            if self.current.next.contains_key(&partition) {
                continue;
            }
            let (_, folded) = load_segment(self.args.storage.as_ref(), &s.segment)
                .await
                .map_err(|source| MergeError::Segment { partition, source })?;
            let mut partial = self.current.partial.clone();
            self.current.partial = tokio::task::spawn_blocking(move || {
                Arc::make_mut(&mut partial).merge(folded);
                partial
            })
            .await
            .map_err(|source| MergeError::Task {
                what: "merge",
                source,
            })?;
            self.current.next.insert(partition, s.segment.next_offset());
            self.current.shards += s.segment.shards;
            self.args.metrics.merged_records.inc_by(s.segment.records);
            self.args.metrics.merged_rejects.inc_by(s.segment.rejects);
            self.compactor.segments.insert(partition, s);
            self.dirty = true;
        }
        self.segments_loaded = true;
        Ok(())
    }

    async fn poll(&mut self) -> Result<u64, MergeError> {
        if !self.segments_loaded {
            self.load_segments().await?;
        }
        let mut checkpoints = self.args.checkpoints.clone();
        let mut partitions: BTreeSet<i32> = checkpoints
            .partitions()
            .await
            .map_err(MergeError::ListManifests)?
            .into_keys()
            .collect();
        partitions.extend(self.compactor.segments.keys());
        let mut todo: Vec<StoredManifest> = Vec::new();
        for partition in partitions {
            let cursor = self.current.next.get(&partition).copied();
            let from = cursor.unwrap_or(0);
            let live = checkpoints
                .live_manifests(partition, from, READ_MAX)
                .await
                .map_err(|source| MergeError::ReadManifest {
                    partition,
                    first: from,
                    source,
                })?;
            let manifests: Vec<ShardManifest> = live.iter().map(|s| s.manifest.clone()).collect();
            let n = chain_prefix(cursor, &manifests);
            todo.extend(live.into_iter().take(n));
        }
        if todo.is_empty() {
            return Ok(0);
        }
        // Partials load here, on the async side, and merge on a blocking thread as they come
        // (a bounded channel: a long backlog after a restart is never all in memory at once).
        let (loaded_tx, mut loaded) =
            tokio::sync::mpsc::channel::<(ShardManifest, sawmill_common::Result<Partial>)>(4);
        let metrics = self.args.metrics.clone();
        let mut partial = self.current.partial.clone();
        let mut next = self.current.next.clone();
        let merger = tokio::task::spawn_blocking(move || -> MergeRound {
            let mut shards = 0;
            let mut failed: BTreeSet<i32> = BTreeSet::new();
            while let Some((m, load)) = loaded.blocking_recv() {
                let loaded = match load {
                    Ok(p) => p,
                    Err(e) => {
                        // Stop this partition's chain here; the next poll retries it.
                        tracing::warn!(partition = m.partition, first = m.first, error = %e, "cannot load a shard's partial; retrying");
                        metrics.error("load_partial");
                        failed.insert(m.partition);
                        continue;
                    }
                };
                if failed.contains(&m.partition) {
                    continue;
                }
                // Exactly once, in chain order: only the shard that continues the chain.
                let expected = next.get(&m.partition).copied().unwrap_or(m.first);
                if m.first != expected {
                    continue;
                }
                // Copies the analytics once per round: readers keep the previous snapshot.
                Arc::make_mut(&mut partial).merge(loaded);
                next.insert(m.partition, m.next_offset());
                metrics.merges.inc();
                metrics.merged_records.inc_by(m.records);
                metrics.merged_rejects.inc_by(m.rejects);
                shards += 1;
            }
            MergeRound {
                partial,
                next,
                shards,
                failed: failed.first().copied(),
            }
        });
        let mut failed: BTreeSet<i32> = BTreeSet::new();
        let merged_before = self.current.next.clone();
        for stored in &todo {
            let m = stored.manifest.clone();
            if failed.contains(&m.partition) {
                continue;
            }
            let load = load_partial(self.args.storage.as_ref(), &m).await;
            if load.is_err() {
                failed.insert(m.partition);
            }
            // A closed channel means the merger stopped early; its result says why.
            if loaded_tx.send((m, load)).await.is_err() {
                break;
            }
        }
        drop(loaded_tx);
        let round = merger.await.map_err(|source| MergeError::Task {
            what: "merge",
            source,
        })?;
        // What this round merged is now foldable once a summary covers it.
        for stored in todo {
            let m = &stored.manifest;
            let merged = round
                .next
                .get(&m.partition)
                .is_some_and(|n| m.next_offset() <= *n)
                && merged_before
                    .get(&m.partition)
                    .is_none_or(|n| m.first >= *n);
            if merged {
                self.compactor
                    .live
                    .entry(m.partition)
                    .or_default()
                    .push(stored);
            }
        }
        if round.shards > 0 {
            self.current.partial = round.partial;
            self.current.next = round.next;
            self.current.shards += round.shards;
            self.dirty = true;
        }
        match round.failed {
            Some(partition) => Err(MergeError::LoadPartial(partition)),
            None => Ok(round.shards),
        }
    }

    async fn write_summary(&mut self) -> Result<bool, MergeError> {
        if !self.dirty {
            return Ok(false);
        }
        let opts = self
            .args
            .cfg
            .pipeline
            .parquet()
            .map_err(|e| MergeError::WriteSummary(e.into()))?;
        // Encoding is CPU work: a blocking thread; the writes are I/O: here.
        let partial = self.current.partial.clone();
        let covered = self.current.next.clone();
        let written = self.summary.written();
        let tables = tokio::task::spawn_blocking(move || {
            sawmill_common::summary::encode_changed(&partial, &opts, &written)
        })
        .await
        .map_err(|source| MergeError::Task {
            what: "summary",
            source,
        })?
        .map_err(MergeError::WriteSummary)?;
        // Recorded under the leader's fence first: a deposed leader is refused here and never
        // replaces a table a newer leader wrote (ARCHITECTURE.md, invariants).
        let mut checkpoints = self.args.checkpoints.clone();
        if !tables.is_empty() {
            checkpoints
                .record_summary(self.current.summary_writes + 1)
                .await
                .map_err(MergeError::WriteSummary)?;
        }
        let fence = checkpoints.fence().cloned();
        let written = self
            .summary
            .write_while(self.args.storage.as_ref(), tables, || {
                fence.as_ref().is_none_or(|f| f.valid())
            })
            .await
            .map_err(MergeError::WriteSummary)?;
        self.dirty = false;
        self.summarized = covered;
        self.current.summary_writes += 1;
        self.current.last_summary = Some(Instant::now());
        self.args.metrics.summary_writes.inc();
        // No table changed: nothing reached storage, so nothing is known about it.
        Ok(written > 0)
    }

    /// Folds what the written summary covers (see [`crate::compact`]).
    async fn fold(&mut self) -> Result<(), MergeError> {
        let summarized = self.summarized.clone();
        let n = self.compactor.fold_all(&summarized).await?;
        if n > 0 {
            tracing::debug!(manifests = n, "manifests folded into segments");
        }
        Ok(())
    }

    /// Keeps the outcome of a merge or summary write in the state and publishes it.
    /// `Ok(false)`: nothing was attempted (no summary change to write), which proves nothing.
    fn record(&mut self, what: &'static str, outcome: Result<bool, MergeError>) {
        use crate::snapshot::Change;
        let failed = outcome.is_err();
        match self.health.record(what, outcome.map_err(|e| e.to_string())) {
            Change::Recovered => tracing::info!("{what} works again"),
            Change::Failed(e) => tracing::warn!(error = %e, "{what} failed; retrying"),
            Change::Same => {}
        }
        if failed {
            self.args.metrics.error(what);
        }
        self.current.last_error = self.health.last_error();
        self.publish();
    }
}

impl Actor for MergeActor {
    type Msg = MergeMsg;
    type State = MergeState;
    type Arguments = MergeArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<MergeMsg>,
        args: MergeArgs,
    ) -> Result<MergeState, ActorProcessingErr> {
        let poll = myself.send_interval(Duration::from_millis(args.cfg.merge_poll_ms), || {
            MergeMsg::Poll
        });
        let write = myself.send_interval(
            Duration::from_millis(args.cfg.summary_interval_ms.max(1)),
            || MergeMsg::WriteSummary,
        );
        myself.cast(MergeMsg::Poll)?;
        let settle = 2 * args.cfg.leader_ttl() + Duration::from_secs(5);
        let rewrite = {
            let myself = myself.clone();
            tokio::spawn(async move {
                tokio::time::sleep(settle).await;
                let _ = myself.cast(MergeMsg::RewriteAll);
            })
        };
        let current = MergedSnapshot::clone(&args.merged.load());
        // Taken at start: from now on a coordinator started earlier can no longer fold.
        let generation = args.checkpoints.clone().next_merge_generation().await?;
        let compactor = Compactor::new(
            args.checkpoints.clone(),
            args.storage.clone(),
            args.metrics.clone(),
            generation,
        );
        Ok(MergeState {
            args,
            current,
            dirty: false,
            summary: Default::default(),
            health: Default::default(),
            summarized: BTreeMap::new(),
            segments_loaded: false,
            compactor,
            tickers: vec![poll, write, rewrite],
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<MergeMsg>,
        state: &mut MergeState,
    ) -> Result<(), ActorProcessingErr> {
        for ticker in state.tickers.drain(..) {
            ticker.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<MergeMsg>,
        msg: MergeMsg,
        state: &mut MergeState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MergeMsg::Poll => {
                let merged = state.poll().await;
                if let Ok(shards @ 1..) = merged {
                    tracing::debug!(shards, "merged committed shards");
                }
                state.record("merge", merged.map(|_| true));
                let source = state.args.cfg.pipeline.topic.clone();
                if let Err(e) = state.compactor.sweep_if_due(&source).await {
                    state.record("sweep", Err(e));
                }
            }
            MergeMsg::WriteSummary => {
                let written = state.write_summary().await;
                let ok = written.is_ok();
                state.record("summary", written);
                if ok {
                    let folded = state.fold().await;
                    if folded.is_err() {
                        state.record("fold", folded.map(|_| true));
                    }
                }
            }
            MergeMsg::RewriteAll => {
                state.summary = Default::default();
                state.dirty = true;
            }
            MergeMsg::Flush(reply) => {
                let merged = state.poll().await;
                state.record("merge", merged.map(|_| true));
                let written = state.write_summary().await;
                if let Ok(true) = written {
                    tracing::info!("summary tables written");
                }
                state.record("summary", written);
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use sawmill_core::layout::ShardRange;

    fn m(first: i64, last: i64) -> ShardManifest {
        let range = ShardRange {
            source: "t".into(),
            partition: 0,
            first,
            last,
        };
        let f = sawmill_core::manifest::ManifestFile {
            staging: String::new(),
            path: range.partial_path(),
            rows: 0,
            bytes: 0,
        };
        ShardManifest {
            source: "t".into(),
            partition: 0,
            first,
            last,
            epoch: 1,
            worker: "w".into(),
            records: 0,
            rejects: 0,
            files: vec![],
            partial: f,
            committed_at_ms: 0,
        }
    }

    #[test]
    fn chains_start_at_the_first_read_and_continue_at_merged_next() {
        let live = [m(100, 149), m(150, 199), m(200, 200)];
        // Never merged (and no segment): the chain starts at the first live manifest.
        assert_eq!(chain_prefix(None, &live), 3);
        // Merged up to 150 (or a segment ends there): continues there.
        assert_eq!(chain_prefix(Some(150), &live[1..]), 2);
        // A gap after the merged next offset waits, never skips.
        assert_eq!(chain_prefix(Some(120), &live), 0);
        assert_eq!(chain_prefix(Some(100), &[m(100, 149), m(151, 160)]), 1);
        // An empty or inverted shard stops the chain.
        assert_eq!(chain_prefix(Some(100), &[m(100, 99), m(100, 120)]), 0);
        assert_eq!(chain_prefix(None, &[]), 0);
    }
}
