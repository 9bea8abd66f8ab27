//! The merge actor: folds every committed shard's partial aggregates into one [`Partial`],
//! exactly once, and keeps `summary/<table>.parquet` current.
//!
//! Exactly once comes from following each partition's commit chain: a shard is merged only when
//! its `first` offset is the partition's `merged_next` (or, for the first shard, the smallest
//! `first` of the partition: the chain start); a replay (`first < merged_next`) is ignored and a
//! gap (`first > merged_next`) waits. A restarted coordinator runs the same code from empty and
//! reaches the same state from etcd and storage.

use crate::config::ServeConfig;
use crate::metrics::Metrics;
use crate::status::MergedStatus;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sawmill_common::committed::load_partial;
use sawmill_common::etcd::Checkpoints;
use sawmill_common::storage::Storage;
use sawmill_core::analytics::Partial;
use sawmill_core::manifest::ShardManifest;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The merged state, shared read-only with the HTTP API.
pub struct Merged {
    pub partial: Partial,
    /// Next offset after the merged chain of each partition.
    pub next: BTreeMap<i32, i64>,
    pub shards: u64,
    pub summary_writes: u64,
    pub last_summary: Option<Instant>,
    /// Changed since the summary tables were last written.
    pub dirty: bool,
    pub last_error: Option<String>,
}

impl Merged {
    pub fn new(partial: Partial) -> Self {
        Merged {
            partial,
            next: BTreeMap::new(),
            shards: 0,
            summary_writes: 0,
            last_summary: None,
            dirty: false,
            last_error: None,
        }
    }

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

pub type SharedMerged = Arc<RwLock<Merged>>;

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
    pub merged: SharedMerged,
    pub metrics: Metrics,
}

pub struct MergeActor;

pub struct MergeState {
    args: MergeArgs,
    tickers: Vec<tokio::task::JoinHandle<()>>,
}

fn lock_err<T>(_: T) -> ActorProcessingErr {
    "the merged state lock is poisoned".into()
}

impl MergeState {
    async fn poll(&mut self) -> Result<usize, String> {
        let mut cp = self.args.checkpoints.clone();
        let stored = cp
            .manifest_index()
            .await
            .map_err(|e| format!("cannot list manifests: {e}"))?;
        let next = self
            .args
            .merged
            .read()
            .map_err(|_| "lock poisoned".to_string())?
            .next
            .clone();
        let mut todo: Vec<ShardManifest> = Vec::new();
        for (p, mut cursor) in chain_cursor(&stored, &next) {
            let firsts = &stored[&p];
            while firsts.contains(&cursor) {
                match cp.manifest(p, cursor).await {
                    Ok(Some(m)) if m.first == cursor && m.last >= m.first => {
                        cursor = m.next_offset();
                        todo.push(m);
                    }
                    Ok(_) => break,
                    Err(e) => return Err(format!("cannot read manifest {p}/{cursor}: {e}")),
                }
            }
        }
        if todo.is_empty() {
            return Ok(0);
        }
        // Partials load here, on the async side, and merge on a blocking thread as they come.
        let (loaded_tx, mut loaded) =
            tokio::sync::mpsc::channel::<(ShardManifest, sawmill_common::Result<Partial>)>(4);
        let merged = self.args.merged.clone();
        let metrics = self.args.metrics.clone();
        let merger = tokio::task::spawn_blocking(move || -> Result<usize, String> {
            let mut n = 0;
            let mut failed: BTreeSet<i32> = BTreeSet::new();
            while let Some((m, load)) = loaded.blocking_recv() {
                let partial = match load {
                    Ok(p) => p,
                    Err(e) => {
                        // Stop this partition's chain here; the next poll retries it.
                        tracing::warn!(partition = m.partition, first = m.first, error = %e, "cannot load a shard's partial; retrying");
                        metrics.error("load_partial");
                        failed.insert(m.partition);
                        continue;
                    }
                };
                let mut g = merged.write().map_err(|_| "lock poisoned".to_string())?;
                // Re-check under the lock: exactly once even if two polls ever overlapped.
                let expected = g.next.get(&m.partition).copied().unwrap_or(m.first);
                if m.first != expected {
                    continue;
                }
                g.partial.merge(partial);
                g.next.insert(m.partition, m.next_offset());
                g.shards += 1;
                g.dirty = true;
                metrics.merges.inc();
                metrics.merged_records.inc_by(m.records);
                metrics.merged_rejects.inc_by(m.rejects);
                n += 1;
            }
            if let Some(p) = failed.first() {
                return Err(format!("cannot load a shard partial of partition {p}"));
            }
            Ok(n)
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
        merger
            .await
            .map_err(|e| format!("merge task failed: {e}"))?
    }

    async fn write_summary(&mut self) -> Result<bool, String> {
        {
            let mut g = self
                .args
                .merged
                .write()
                .map_err(|_| "lock poisoned".to_string())?;
            if !g.dirty {
                return Ok(false);
            }
            g.dirty = false;
        }
        let opts = self
            .args
            .cfg
            .pipeline
            .parquet()
            .map_err(|e| e.to_string())?;
        let merged = self.args.merged.clone();
        let r = async {
            // Encoding is CPU work: a blocking thread; the writes are I/O: here.
            let tables = tokio::task::spawn_blocking(move || -> Result<_, String> {
                let g = merged.read().map_err(|_| "lock poisoned".to_string())?;
                sawmill_common::summary::encode(&g.partial, &opts).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| format!("summary task failed: {e}"))??;
            sawmill_common::summary::write(self.args.storage.as_ref(), tables)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        .await;
        let mut g = self
            .args
            .merged
            .write()
            .map_err(|_| "lock poisoned".to_string())?;
        match r {
            Ok(()) => {
                g.summary_writes += 1;
                g.last_summary = Some(Instant::now());
                self.args.metrics.summary_writes.inc();
                Ok(true)
            }
            Err(e) => {
                g.dirty = true;
                Err(format!("cannot write the summary tables: {e}"))
            }
        }
    }

    fn record(&self, what: &str, r: Result<(), String>) -> Result<(), ActorProcessingErr> {
        let mut g = self.args.merged.write().map_err(lock_err)?;
        match r {
            Ok(()) => {
                if g.last_error.is_some() {
                    tracing::info!("{what} works again");
                }
                g.last_error = None;
            }
            Err(e) => {
                if g.last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, "{what} failed; retrying");
                }
                self.args.metrics.error(what);
                g.last_error = Some(e);
            }
        }
        Ok(())
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
        Ok(MergeState {
            args,
            tickers: vec![poll, write],
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<MergeMsg>,
        st: &mut MergeState,
    ) -> Result<(), ActorProcessingErr> {
        for t in st.tickers.drain(..) {
            t.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<MergeMsg>,
        msg: MergeMsg,
        st: &mut MergeState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MergeMsg::Poll => {
                let r = st.poll().await;
                if let Ok(n) = &r {
                    if *n > 0 {
                        tracing::debug!(shards = n, "merged committed shards");
                    }
                }
                st.record("merge", r.map(|_| ()))?;
            }
            MergeMsg::WriteSummary => {
                let r = st.write_summary().await;
                st.record("summary", r.map(|_| ()))?;
            }
            MergeMsg::Flush(reply) => {
                let r = st.poll().await;
                st.record("merge", r.map(|_| ()))?;
                let r = st.write_summary().await;
                if let Ok(true) = r {
                    tracing::info!("summary tables written");
                }
                st.record("summary", r.map(|_| ()))?;
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
