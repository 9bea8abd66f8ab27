//! Writing, committing and publishing one shard, and recovering a partition on acquisition.
//! The order of steps is the commit protocol (ARCHITECTURE.md); decisions come from
//! `sawmill_core::manifest`.

use crate::error::{Result, WorkerError};
pub use crate::retry::retry;
use crate::retry::{retry_with, Attempts, RetryPolicy};
use futures::stream::{self, StreamExt, TryStreamExt};
use sawmill_common::etcd::Checkpoints;
use sawmill_common::failpoints;
use sawmill_common::storage::{publish, Storage};
use sawmill_core::analytics::Partial;
use sawmill_core::batch::ParsedChunk;
use sawmill_core::layout::{self, partition_staging_dir, ShardRange};
use sawmill_core::manifest::{
    plan_recovery, CommitOutcome, ManifestFile, RecoveryAction, ShardManifest,
};
use sawmill_core::shard::{encode_chunk, ParquetOptions};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Files of one shard written, renamed or checked at once: HDFS latency, not bandwidth,
/// dominates. Closing a file on HDFS waits a fixed ~0.5 s (the NameNode learns of the last
/// block from the DataNode just after the client asks to complete the file, and hdfs-native
/// retries `complete()` after 500 ms), so a shard costs that once per round of this many files:
/// it covers a shard at the default date cap (64 dates' record files, rejects, the partial) in
/// one round. Still bounded, so a backlog after a long outage does not open thousands of
/// files at once.
const FILE_CONCURRENCY: usize = 72;
/// Upper bound on one file operation. Above the HDFS client's own per-call limits (its error
/// says more), so it fires only on what has none, such as a hung local disk.
const FILE_TIMEOUT: Duration = Duration::from_secs(330);

/// What a shard commit ended with, for the partition actor.
#[derive(Debug)]
pub enum ShardOutcome {
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

/// Runs `op` on every item concurrently, at most [`FILE_CONCURRENCY`] at once and each under
/// [`FILE_TIMEOUT`]; the first failure cancels the rest (every caller is idempotent on retry).
async fn for_each_file<I, T, F, Fut>(what: &str, items: I, op: F) -> sawmill_common::Result<Vec<T>>
where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: Future<Output = sawmill_common::Result<T>>,
{
    stream::iter(items)
        .map(|item| {
            let call = op(item);
            async move {
                tokio::time::timeout(FILE_TIMEOUT, call)
                    .await
                    .unwrap_or_else(|_| {
                        Err(sawmill_common::Error::Pipeline(format!(
                            "{what}: a file operation took longer than {}s (is the output storage hung?)",
                            FILE_TIMEOUT.as_secs()
                        )))
                    })
            }
        })
        .buffered(FILE_CONCURRENCY)
        .try_collect()
        .await
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
    /// How staging, committing and publishing retry, and where their failures are reported.
    pub retry: RetryPolicy,
}

/// A shard whose files are staged (step 1 done), ready for the etcd transaction.
pub struct StagedShard {
    pub manifest: ShardManifest,
    retry: RetryPolicy,
    /// Encode and stage durations, for the timing log.
    encode: Duration,
    stage: Duration,
}

/// Step 1 to 3 of the commit protocol for one shard.
pub async fn commit_shard(
    storage: Arc<dyn Storage>,
    etcd: &mut Checkpoints,
    opts: &ParquetOptions,
    shard: ShardToCommit,
) -> Result<ShardOutcome> {
    let staged = stage_shard(storage.clone(), opts, shard).await?;
    commit_staged(storage, etcd, staged).await
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
    let opts = opts.clone();
    let encode_range = range.clone();
    let parsed = shard.parsed;
    let partial = shard.partial;
    let policy = shard.retry;
    let (encoded, partial_bytes) =
        tokio::task::spawn_blocking(move || -> sawmill_core::Result<_> {
            Ok((
                encode_chunk(&parsed, &encode_range, &opts)?,
                partial.to_bytes()?,
            ))
        })
        .await
        .map_err(|e| WorkerError::Actor(format!("encode task failed: {e}")))??;

    // One nonce per attempt: a retried or concurrent attempt at the same range never writes
    // over files another attempt may still commit.
    let nonce = layout::staging_nonce();
    let mut files = Vec::with_capacity(encoded.len());
    let mut to_write = Vec::with_capacity(encoded.len() + 1);
    for f in encoded {
        let staging = range.staging_path(shard.epoch, &nonce, &f.path);
        files.push(ManifestFile {
            staging: staging.clone(),
            path: f.path,
            rows: f.rows,
            bytes: f.bytes.len() as u64,
        });
        to_write.push((staging, f.bytes));
    }
    let partial_path = range.partial_path();
    let partial_staging = range.staging_path(shard.epoch, &nonce, &partial_path);
    let partial_file = ManifestFile {
        staging: partial_staging.clone(),
        path: partial_path,
        rows: 0,
        bytes: partial_bytes.len() as u64,
    };
    to_write.push((partial_staging, partial_bytes));
    let encode = t0.elapsed();
    // Files are independent: write them concurrently.
    let staged = retry_with(&policy, "stage shard", || {
        for_each_file("stage shard", &to_write, |(path, bytes)| {
            storage.write(path, bytes)
        })
    })
    .await;
    if let Err(e) = staged {
        // A failed attempt leaves nothing staged (each file on its own, best effort; what is
        // left is deleted by the partition's next recovery).
        let _ = for_each_file("clean up a failed stage", &to_write, |(path, _)| async {
            let _ = storage.delete(path).await;
            Ok(())
        })
        .await;
        return Err(e);
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
        retry: policy,
        encode,
        stage,
    })
}

/// Steps 2 and 3: the guarded etcd transaction, then publishing by rename. Shards of one
/// partition must come here in offset order (etcd refuses any other).
pub async fn commit_staged(
    storage: Arc<dyn Storage>,
    etcd: &mut Checkpoints,
    staged: StagedShard,
) -> Result<ShardOutcome> {
    let t0 = std::time::Instant::now();
    failpoints::check(failpoints::STAGED_BEFORE_TXN)?;
    let mut manifest = staged.manifest;
    manifest.committed_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let policy = staged.retry;
    let mut attempts = Attempts::new(&policy, "commit shard");
    let outcome = loop {
        match etcd.commit(&manifest).await {
            Ok(CommitOutcome::Retry) => {
                attempts
                    .failed(sawmill_common::Error::Etcd(
                        "the commit failed and etcd's state read back explains nothing".into(),
                    ))
                    .await?
            }
            Ok(o) => break o,
            Err(e) => attempts.failed(e).await?,
        }
    };
    let t_commit = t0.elapsed();
    match outcome {
        CommitOutcome::Committed | CommitOutcome::AlreadyCommitted => {
            // 3. publish. A crash here is repaired by recovery: the manifest names the staging files.
            failpoints::check(failpoints::COMMITTED_BEFORE_PUBLISH)?;
            retry_with(&policy, "publish shard", || {
                for_each_file("publish shard", manifest.all_files(), |f| {
                    let storage = storage.clone();
                    async move {
                        failpoints::check(failpoints::PUBLISH_FILE)?;
                        publish(storage.as_ref(), &f.staging, &f.path).await
                    }
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
            Ok(ShardOutcome::Done(Box::new(manifest)))
        }
        CommitOutcome::Fenced { current_epoch } => {
            delete_staged(storage, &manifest).await;
            Ok(ShardOutcome::Fenced { current_epoch })
        }
        CommitOutcome::OffsetMismatch { stored } => {
            delete_staged(storage, &manifest).await;
            Ok(ShardOutcome::Stale { stored })
        }
        CommitOutcome::Retry => Err(WorkerError::Actor(
            "commit retry loop ended on Retry".into(),
        )),
    }
}

/// Removes a shard's staged files (best effort: recovery removes what is left).
pub async fn delete_staged(storage: Arc<dyn Storage>, m: &ShardManifest) {
    let _ = for_each_file("delete staged files", m.all_files(), |f| async {
        // Each file on its own: one failure must not keep the others.
        let _ = storage.delete(&f.staging).await;
        Ok(())
    })
    .await;
}

/// Brings a partition's published output in line with etcd after acquiring it: publishes
/// committed-but-unpublished files and deletes staged files that were never committed. With
/// `rederive` (a worker's context), committed files lost before publishing are first read
/// again from Kafka and staged anew ([`crate::rederive`]); without it, or if that fails, they
/// are reported as lost. Must run after this worker's epoch bump. Returns the number of
/// actions taken.
pub async fn recover_partition(
    storage: Arc<dyn Storage>,
    etcd: &mut Checkpoints,
    source: &str,
    partition: i32,
    rederive: Option<&crate::context::WorkerContext>,
) -> Result<usize> {
    let manifests = etcd.manifests(Some(partition)).await?;
    let staging_dir = partition_staging_dir(source, partition);
    let mut tried = false;
    let actions = loop {
        let planned = retry("recover partition", || async {
            let staging = storage.list(&staging_dir).await?;
            let manifest_files: Vec<&ManifestFile> =
                manifests.iter().flat_map(|m| m.all_files()).collect();
            let published = for_each_file("recover partition", manifest_files, |f| async {
                Ok(storage.exists(&f.path).await?.then(|| f.path.clone()))
            })
            .await?;
            let existing: BTreeSet<String> = staging
                .iter()
                .cloned()
                .chain(published.into_iter().flatten())
                .collect();
            Ok(plan_recovery(&manifests, &existing, &staging))
        })
        .await?;
        match (planned, rederive) {
            (Ok(actions), _) => break actions,
            (Err(lost), Some(ctx)) if !tried => {
                tried = true;
                let files = crate::rederive::lost_files(ctx, &manifests, &lost).await?;
                tracing::warn!(partition, files, "lost committed files re-derived from kafka");
            }
            (Err(lost), _) => {
                return Err(sawmill_common::Error::Corrupt {
                    what: format!("partition {partition}"),
                    message: format!(
                        "{} committed files are neither published nor staged (first: {}); they were deleted outside Sawmill: restore them or reset the pipeline",
                        lost.len(),
                        lost[0].path
                    ),
                }
                .into())
            }
        }
    };
    let n = actions.len();
    if n > 0 {
        tracing::info!(partition, actions = n, "recovering partition");
    }
    retry("apply recovery", || {
        for_each_file("apply recovery", &actions, |action| async {
            match action {
                RecoveryAction::Publish { staging, path } => {
                    publish(storage.as_ref(), staging, path).await.map(|_| ())
                }
                RecoveryAction::DeleteStaging(p) => storage.delete(p).await,
            }
        })
    })
    .await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use sawmill_common::storage::LocalFs;
    use sawmill_core::analytics::{AnalyticsConfig, Partial};
    use sawmill_core::batch::ChunkParser;

    /// A local directory whose writes take `delay` each, counting how many overlap, and whose
    /// writes of partial files fail (after the data files staged) if `fail_partials`.
    #[derive(Debug)]
    struct Probe {
        fs: LocalFs,
        fail_partials: bool,
        delay: Duration,
        in_flight: std::sync::atomic::AtomicUsize,
        peak: std::sync::atomic::AtomicUsize,
    }

    impl Probe {
        fn new(dir: &std::path::Path, fail_partials: bool, delay: Duration) -> Self {
            Probe {
                fs: LocalFs::create(dir).unwrap(),
                fail_partials,
                delay,
                in_flight: Default::default(),
                peak: Default::default(),
            }
        }
    }

    #[async_trait]
    impl Storage for Probe {
        fn root(&self) -> String {
            self.fs.root()
        }
        async fn write(&self, path: &str, data: &[u8]) -> sawmill_common::Result<()> {
            use std::sync::atomic::Ordering::SeqCst;
            if self.fail_partials && path.ends_with(".partial") {
                return Err(sawmill_common::Error::Config("no partials here".into()));
            }
            let now = self.in_flight.fetch_add(1, SeqCst) + 1;
            self.peak.fetch_max(now, SeqCst);
            tokio::time::sleep(self.delay).await;
            self.in_flight.fetch_sub(1, SeqCst);
            self.fs.write(path, data).await
        }
        async fn read(&self, path: &str) -> sawmill_common::Result<Vec<u8>> {
            self.fs.read(path).await
        }
        async fn rename(&self, from: &str, to: &str) -> sawmill_common::Result<()> {
            self.fs.rename(from, to).await
        }
        async fn list(&self, dir: &str) -> sawmill_common::Result<Vec<String>> {
            self.fs.list(dir).await
        }
        async fn delete(&self, path: &str) -> sawmill_common::Result<()> {
            self.fs.delete(path).await
        }
        async fn exists(&self, path: &str) -> sawmill_common::Result<bool> {
            self.fs.exists(path).await
        }
    }

    /// A shard of one line per date, dates 1 to `dates` of July 1995 and one reject.
    fn shard(dates: u32) -> ShardToCommit {
        let mut parser = ChunkParser::new("logs".into(), 0);
        let mut partial = Partial::new(&AnalyticsConfig::default());
        for d in 1..=dates {
            let line = format!(
                "h - - [{:02}/{}/1995:00:00:01 -0400] \"GET / HTTP/1.0\" 200 1",
                (d - 1) % 28 + 1,
                ["Jul", "Aug", "Sep"][((d - 1) / 28) as usize]
            );
            let _ = parser.push(line.as_bytes(), i64::from(d), &mut partial);
        }
        let _ = parser.push(b"not a log line", 0, &mut partial);
        ShardToCommit {
            source: "logs".into(),
            partition: 0,
            epoch: 1,
            worker: "w".into(),
            first: 0,
            last: i64::from(dates),
            parsed: parser.finish().unwrap(),
            partial,
            retry: RetryPolicy {
                deadline: Duration::from_millis(200),
                report: None,
            },
        }
    }

    /// Each HDFS close waits a fixed ~0.5 s, so a shard's files must be written in one round:
    /// a shard at the default date cap has all its files in flight at once.
    #[tokio::test]
    async fn a_shard_at_the_default_date_cap_stages_in_one_round() {
        let dates = sawmill_core::settings::PipelineSettings::default().shard_max_dates;
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Probe::new(dir.path(), false, Duration::from_millis(300)));
        let shard = shard(u32::try_from(dates).unwrap());
        let staged = stage_shard(storage.clone(), &ParquetOptions::default(), shard)
            .await
            .unwrap();
        let files = staged.manifest.files.len() + 1;
        assert_eq!(
            files,
            dates + 2,
            "a file per date, the rejects and the partial"
        );
        let peak = storage.peak.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(peak, files, "all of the shard's files written at once");
    }

    #[tokio::test]
    async fn a_failed_stage_leaves_nothing_staged() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Probe::new(dir.path(), true, Duration::ZERO));
        let shard = shard(1);
        let staged = stage_shard(storage.clone(), &ParquetOptions::default(), shard).await;
        assert!(staged.is_err(), "the partial's write fails");
        let left = storage.list(layout::STAGING_DIR).await.unwrap();
        assert!(left.is_empty(), "a failed stage left {left:?}");
    }
}
