//! The merge actor: folds every committed shard's partial aggregates into one [`Partial`],
//! exactly once, and keeps `summary/<table>.parquet` current.
//!
//! Exactly once comes from following each partition's commit chain: a shard is merged only when
//! its `first` offset is the partition's `merged_next` (or, for the first shard, the smallest
//! `first` of the partition: the chain start); a replay (`first < merged_next`) is ignored and a
//! gap (`first > merged_next`) waits. A restarted coordinator runs the same code from empty and
//! reaches the same state from etcd and storage.
//!
//! The actor alone owns the merged state; after every poll or summary write it publishes an
//! immutable [`MergedSnapshot`] that readers load ([`crate::snapshot`]), so a reader never waits
//! for a merge or for a Parquet/HDFS write.

use crate::config::ServeConfig;
use crate::error::MergeError;
use crate::metrics::Metrics;
use crate::snapshot::{MergedSnapshot, SharedMerged};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sawmill_common::committed::load_partial;
use sawmill_common::etcd::Checkpoints;
use sawmill_common::storage::Storage;
use sawmill_core::analytics::Partial;
use sawmill_core::manifest::ShardManifest;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which manifests extend each partition's merged chain, given the `(partition, first)` keys
/// stored in etcd and the merged next offsets. Returns, per partition, the offset the chain
/// continues from; the caller fetches the manifest there and repeats from its next offset.
pub fn chain_cursor(
    stored: &BTreeMap<i32, BTreeSet<i64>>,
    next: &BTreeMap<i32, i64>,
) -> BTreeMap<i32, i64> {
    let mut out = BTreeMap::new();
    for (p, firsts) in stored {
        let cursor = match next.get(p) {
            Some(n) => *n,
            None => match firsts.first() {
                Some(start) => *start,
                None => continue,
            },
        };
        if firsts.contains(&cursor) {
            out.insert(*p, cursor);
        }
    }
    out
}

pub enum MergeMsg {
    /// Merge whatever extends the chains now.
    Poll,
    /// Rewrite the summary tables if they changed.
    WriteSummary,
    /// Poll and write now (shutdown); replies when done.
    Flush(RpcReplyPort<()>),
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

    async fn poll(&mut self) -> Result<u64, MergeError> {
        let mut checkpoints = self.args.checkpoints.clone();
        let stored = checkpoints
            .manifest_index()
            .await
            .map_err(MergeError::ListManifests)?;
        let mut todo: Vec<ShardManifest> = Vec::new();
        for (partition, mut cursor) in chain_cursor(&stored, &self.current.next) {
            let firsts = &stored[&partition];
            while firsts.contains(&cursor) {
                match checkpoints.manifest(partition, cursor).await {
                    Ok(Some(m)) if m.first == cursor && m.last >= m.first => {
                        cursor = m.next_offset();
                        todo.push(m);
                    }
                    Ok(_) => break,
                    Err(source) => {
                        return Err(MergeError::ReadManifest {
                            partition,
                            first: cursor,
                            source,
                        })
                    }
                }
            }
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
        for m in todo {
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
        let written = self
            .summary
            .write(self.args.storage.as_ref(), tables)
            .await
            .map_err(MergeError::WriteSummary)?;
        self.dirty = false;
        self.current.summary_writes += 1;
        self.current.last_summary = Some(Instant::now());
        self.args.metrics.summary_writes.inc();
        // No table changed: nothing reached storage, so nothing is known about it.
        Ok(written > 0)
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
        let current = MergedSnapshot::clone(&args.merged.load());
        Ok(MergeState {
            args,
            current,
            dirty: false,
            summary: Default::default(),
            health: Default::default(),
            tickers: vec![poll, write],
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
            }
            MergeMsg::WriteSummary => {
                let written = state.write_summary().await;
                state.record("summary", written);
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

    #[test]
    fn chains_start_at_the_smallest_first_and_continue_at_merged_next() {
        let stored = BTreeMap::from([
            (0, BTreeSet::from([100, 150, 200])),
            (1, BTreeSet::from([0, 10])),
            (2, BTreeSet::from([5])),
        ]);
        // Nothing merged yet: each chain starts at its smallest first.
        let c = chain_cursor(&stored, &BTreeMap::new());
        assert_eq!(c, BTreeMap::from([(0, 100), (1, 0), (2, 5)]));
        // Partition 0 merged up to 150; 1 is fully merged (next 20 has no manifest yet: waits);
        // 2 has a gap (merged to 3, next manifest at 5): waits, never skips.
        let next = BTreeMap::from([(0, 150), (1, 20), (2, 3)]);
        assert_eq!(chain_cursor(&stored, &next), BTreeMap::from([(0, 150)]));
    }
}
