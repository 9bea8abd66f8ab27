//! Writing, committing and publishing one shard, and recovering a partition on acquisition.
//! The order of steps is the commit protocol (ARCHITECTURE.md); decisions come from
//! `sawmill_core::manifest`.

use crate::error::{Result, WorkerError};
use sawmill_common::etcd::Checkpoints;
use sawmill_common::storage::{publish, Storage};
use sawmill_core::analytics::Partial;
use sawmill_core::batch::ParsedChunk;
use sawmill_core::layout::{self, partition_staging_dir, ShardRange};
use sawmill_core::manifest::{
    plan_recovery, CommitOutcome, ManifestFile, RecoveryAction, ShardManifest,
};
use sawmill_core::shard::{encode_chunk, ParquetOptions};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// What a shard commit ended with, for the partition actor.
#[derive(Debug)]
pub enum Committed {
    /// Published; the partition's next offset is now `manifest.last + 1`.
    Done(Box<ShardManifest>),
    /// Another owner holds the partition; the staged files were removed.
    Fenced { current_epoch: Option<u64> },
    /// etcd's next offset is not where this shard starts; the partition must restart from it.
    Stale { stored: Option<i64> },
    /// Not tried: the shard before it did not commit (so etcd would refuse this one); its
    /// staged files were removed.
    Skipped,
}

/// Runs a blocking storage operation off the async threads, retrying transient failures with a
/// capped backoff (HDFS down must slow the pipeline, not lose data).
pub async fn blocking_retry<T, F>(what: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: Fn() -> sawmill_common::Result<T> + Send + Sync + Clone + 'static,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 0u32;
    loop {
        let g = f.clone();
        match tokio::task::spawn_blocking(g).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => {
                attempt += 1;
                if e.is_permanent() || attempt >= 60 {
                    return Err(e.into());
                }
                tracing::warn!(what, attempt, error = %e, "storage operation failed, retrying");
            }
            Err(e) => {
                return Err(WorkerError::Actor(format!(
                    "{what}: blocking task failed: {e}"
                )))
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// Everything needed to commit one shard.
pub struct ShardToCommit {
    pub source: String,
    pub partition: i32,
    pub epoch: u64,
    pub worker: String,
    pub first: i64,
    pub last: i64,
    pub parsed: ParsedChunk,
    pub partial: Partial,
}

/// A shard whose files are staged (step 1 done), ready for the etcd transaction.
pub struct StagedShard {
    pub manifest: ShardManifest,
    /// Encode and stage durations, for the timing log.
    encode: Duration,
    stage: Duration,
}

/// Step 1 to 3 of the commit protocol for one shard.
pub async fn commit_shard(
    storage: Arc<dyn Storage>,
    cp: &mut Checkpoints,
    opts: &ParquetOptions,
    shard: ShardToCommit,
) -> Result<Committed> {
    let staged = stage_shard(storage.clone(), opts, shard).await?;
    commit_staged(storage, cp, staged).await
}

/// Step 1: encodes the shard and writes every file under its staging name. Needs no ownership
/// and no order: a staged file nobody commits is deleted by the next recovery.
pub async fn stage_shard(
    storage: Arc<dyn Storage>,
    opts: &ParquetOptions,
    shard: ShardToCommit,
) -> Result<StagedShard> {
    let range = ShardRange {
        source: shard.source.clone(),
        partition: shard.partition,
        first: shard.first,
        last: shard.last,
    };
    let t0 = std::time::Instant::now();
    let opts2 = opts.clone();
    let range2 = range.clone();
    let parsed = shard.parsed;
    let partial = shard.partial;
    let (encoded, partial_bytes) =
        tokio::task::spawn_blocking(move || -> sawmill_core::Result<_> {
            Ok((encode_chunk(&parsed, &range2, &opts2)?, partial.to_bytes()?))
        })
        .await
        .map_err(|e| WorkerError::Actor(format!("encode task failed: {e}")))??;

    let mut files = Vec::with_capacity(encoded.len());
    let mut to_write = Vec::with_capacity(encoded.len() + 1);
    for f in encoded {
        let staging = range.staging_path(shard.epoch, &f.path);
        files.push(ManifestFile {
            staging: staging.clone(),
            path: f.path,
            rows: f.rows,
            bytes: f.bytes.len() as u64,
        });
        to_write.push((staging, f.bytes));
    }
    let partial_path = range.partial_path();
    let partial_staging = range.staging_path(shard.epoch, &partial_path);
    let partial_file = ManifestFile {
        staging: partial_staging.clone(),
        path: partial_path,
        rows: 0,
        bytes: partial_bytes.len() as u64,
    };
    to_write.push((partial_staging, partial_bytes));
    let to_write = Arc::new(to_write);
    let encode = t0.elapsed();
    {
        let to_write = to_write.clone();
        // Files are independent: write them concurrently (HDFS latency, not bandwidth, dominates).
        blocking_retry("stage shard", move || {
            std::thread::scope(|s| {
                let handles: Vec<_> = to_write
                    .iter()
                    .map(|(path, bytes)| s.spawn(|| storage.write(path, bytes)))
                    .collect();
                handles.into_iter().try_for_each(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(sawmill_common::Error::Pipeline(
                            "stage thread panicked".into(),
                        ))
                    })
                })
            })
        })
        .await?;
    }
    let stage = t0.elapsed() - encode;
    let records = files
        .iter()
        .filter(|f| f.path.starts_with(layout::RECORDS_DIR))
        .map(|f| f.rows)
        .sum();
    let rejects = files
        .iter()
        .filter(|f| f.path.starts_with(layout::REJECTS_DIR))
        .map(|f| f.rows)
        .sum();
    let manifest = ShardManifest {
        source: shard.source,
        partition: shard.partition,
        first: shard.first,
        last: shard.last,
        epoch: shard.epoch,
        worker: shard.worker,
        records,
        rejects,
        files,
        partial: partial_file,
        committed_at_ms: 0,
    };
    Ok(StagedShard {
        manifest,
        encode,
        stage,
    })
}

/// Steps 2 and 3: the guarded etcd transaction, then publishing by rename. Shards of one
/// partition must come here in offset order (etcd refuses any other).
pub async fn commit_staged(
    storage: Arc<dyn Storage>,
    cp: &mut Checkpoints,
    staged: StagedShard,
) -> Result<Committed> {
    let t0 = std::time::Instant::now();
    let mut manifest = staged.manifest;
    manifest.committed_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut delay = Duration::from_millis(100);
    let outcome = loop {
        match cp.commit(&manifest).await {
            Ok(CommitOutcome::Retry) => {}
            Ok(o) => break o,
            Err(e) => {
                tracing::warn!(partition = manifest.partition, error = %e, "commit failed, retrying")
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    };
    let t_commit = t0.elapsed();
    match outcome {
        CommitOutcome::Committed | CommitOutcome::AlreadyCommitted => {
            // 3. publish. A crash here is repaired by recovery: the manifest names the staging files.
            let m = manifest.clone();
            let storage2 = storage.clone();
            blocking_retry("publish shard", move || {
                std::thread::scope(|s| {
                    let handles: Vec<_> = m
                        .all_files()
                        .map(|f| s.spawn(|| publish(storage2.as_ref(), &f.staging, &f.path)))
                        .collect();
                    handles.into_iter().try_for_each(|h| {
                        h.join()
                            .unwrap_or_else(|_| {
                                Err(sawmill_common::Error::Pipeline(
                                    "publish thread panicked".into(),
                                ))
                            })
                            .map(|_| ())
                    })
                })
            })
            .await?;
            tracing::debug!(
                partition = manifest.partition,
                rows = manifest.records + manifest.rejects,
                encode_ms = staged.encode.as_millis() as u64,
                stage_ms = staged.stage.as_millis() as u64,
                commit_ms = t_commit.as_millis() as u64,
                publish_ms = (t0.elapsed() - t_commit).as_millis() as u64,
                "shard timings"
            );
            Ok(Committed::Done(Box::new(manifest)))
        }
        CommitOutcome::Fenced { current_epoch } => {
            delete_staged(storage, &manifest).await;
            Ok(Committed::Fenced { current_epoch })
        }
        CommitOutcome::OffsetMismatch { stored } => {
            delete_staged(storage, &manifest).await;
            Ok(Committed::Stale { stored })
        }
        CommitOutcome::Retry => Err(WorkerError::Actor(
            "commit retry loop ended on Retry".into(),
        )),
    }
}

/// Removes a shard's staged files (best effort: recovery removes what is left).
pub async fn delete_staged(storage: Arc<dyn Storage>, m: &ShardManifest) {
    let paths: Vec<String> = m.all_files().map(|f| f.staging.clone()).collect();
    let _ = tokio::task::spawn_blocking(move || {
        for p in paths {
            let _ = storage.delete(&p);
        }
    })
    .await;
}

/// Brings a partition's published output in line with etcd after acquiring it: publishes
/// committed-but-unpublished files and deletes staged files that were never committed.
/// Must run after this worker's epoch bump. Returns the number of actions taken.
pub async fn recover_partition(
    storage: Arc<dyn Storage>,
    cp: &mut Checkpoints,
    source: &str,
    partition: i32,
) -> Result<usize> {
    let manifests = cp.manifests(Some(partition)).await?;
    let staging_dir = partition_staging_dir(source, partition);
    let storage2 = storage.clone();
    let actions = blocking_retry("recover partition", move || {
        let staging = storage2.list(&staging_dir)?;
        let mut existing: BTreeSet<String> = staging.iter().cloned().collect();
        for m in &manifests {
            for f in m.all_files() {
                if storage2.exists(&f.path)? {
                    existing.insert(f.path.clone());
                }
            }
        }
        plan_recovery(&manifests, &existing, &staging).map_err(|lost| sawmill_common::Error::Corrupt {
            what: format!("partition {partition}"),
            message: format!(
                "{} committed files are neither published nor staged (first: {}); they were deleted outside Sawmill: restore them or reset the pipeline",
                lost.len(),
                lost[0].path
            ),
        })
    })
    .await?;
    let n = actions.len();
    if n > 0 {
        tracing::info!(partition, actions = n, "recovering partition");
    }
    blocking_retry("apply recovery", move || {
        for a in &actions {
            match a {
                RecoveryAction::Publish { staging, path } => {
                    publish(storage.as_ref(), staging, path)?;
                }
                RecoveryAction::DeleteStaging(p) => storage.delete(p)?,
            }
        }
        Ok(())
    })
    .await?;
    Ok(n)
}
