//! The commit protocol's data and its pure decisions.
//!
//! A worker commits a shard in three steps (see ARCHITECTURE.md, "Commit protocol"):
//! 1. write its files under staging names;
//! 2. one etcd transaction, guarded by the partition's owner epoch and its stored next offset,
//!    stores the new next offset and the shard's [`ShardManifest`];
//! 3. publish: rename each staging file to its final name.
//!
//! Everything that decides what to do — the etcd key layout, how a failed or ambiguous commit is
//! classified, what recovery must publish or delete — is a pure function here, tested without
//! etcd or a file system. [`crate::checkpoint`] does the I/O.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Root of every etcd key Sawmill writes.
pub const ETCD_ROOT: &str = "/sawmill";

/// etcd key layout of one pipeline (by default named after its topic). Human-readable with
/// `etcdctl get --prefix /sawmill/`; partitions and offsets are zero-padded so keys sort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(pipeline: &str) -> Self {
        Keys {
            prefix: format!("{ETCD_ROOT}/{}", crate::shard::sanitize(pipeline)),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Pipeline settings the coordinator publishes (JSON).
    pub fn config(&self) -> String {
        format!("{}/config", self.prefix)
    }

    pub fn partitions_prefix(&self) -> String {
        format!("{}/partitions/", self.prefix)
    }

    /// Every key of one partition (epoch, owner, next offset).
    pub fn partition_prefix(&self, partition: i32) -> String {
        format!("{}/partitions/{partition:05}/", self.prefix)
    }

    /// The owner epoch: bumped before every change of owner, compared by every commit.
    pub fn epoch(&self, partition: i32) -> String {
        format!("{}/partitions/{partition:05}/epoch", self.prefix)
    }

    /// The worker id owning the partition at the current epoch (informative).
    pub fn owner(&self, partition: i32) -> String {
        format!("{}/partitions/{partition:05}/owner", self.prefix)
    }

    /// The first offset not yet committed: the next shard must start exactly here.
    pub fn next_offset(&self, partition: i32) -> String {
        format!("{}/partitions/{partition:05}/next_offset", self.prefix)
    }

    pub fn manifests_prefix(&self) -> String {
        format!("{}/manifest/", self.prefix)
    }

    pub fn partition_manifests_prefix(&self, partition: i32) -> String {
        format!("{}/manifest/{partition:05}/", self.prefix)
    }

    pub fn manifest(&self, partition: i32, first: i64) -> String {
        format!("{}/manifest/{partition:05}/{first:020}", self.prefix)
    }

    /// Parses the partition number out of a `partitions/<p>/...` key.
    pub fn partition_of(&self, key: &str) -> Option<i32> {
        key.strip_prefix(&self.partitions_prefix())?
            .split('/')
            .next()?
            .parse()
            .ok()
    }
}

/// One file of a committed shard: where it was staged and where it is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub staging: String,
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// What a committed shard covers and where its files and partial aggregates are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardManifest {
    /// Kafka topic (the `source` column of its rows).
    pub source: String,
    pub partition: i32,
    /// The offset consumption started from (the previous next offset), inclusive.
    pub first: i64,
    /// The last consumed offset, inclusive; the new next offset is `last + 1`.
    pub last: i64,
    /// The owner epoch the shard was written under.
    pub epoch: u64,
    pub worker: String,
    pub records: u64,
    pub rejects: u64,
    /// Records (one per date) and rejects Parquet files.
    pub files: Vec<ManifestFile>,
    /// The shard's partial aggregates (Arrow IPC), merged by the coordinator.
    pub partial: ManifestFile,
    pub committed_at_ms: u64,
}

impl ShardManifest {
    pub fn next_offset(&self) -> i64 {
        self.last + 1
    }

    /// Every file of the shard, partial included.
    pub fn all_files(&self) -> impl Iterator<Item = &ManifestFile> {
        self.files.iter().chain(std::iter::once(&self.partial))
    }
}

/// Staging directory of one partition's shards (so recovery lists only its own partition).
pub fn partition_staging_dir(source: &str, partition: i32) -> String {
    format!(
        "{}/{}/p{partition:05}",
        crate::storage::STAGING_DIR,
        crate::shard::sanitize(source)
    )
}

/// Final path of a shard's partial aggregates. `_partials` is hidden from dataset readers.
pub fn partial_path(source: &str, partition: i32, first: i64, last: i64) -> String {
    format!(
        "_partials/{}/p{partition:05}/{first:020}-{last:020}.arrows",
        crate::shard::sanitize(source)
    )
}

/// The etcd state a commit is checked against, as read after a failed transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredState {
    pub epoch: Option<u64>,
    pub next_offset: Option<i64>,
    /// Epoch and last offset of the manifest stored at this shard's first offset, if any.
    pub manifest_at_first: Option<(u64, i64)>,
}

/// How a commit attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The transaction applied now.
    Committed,
    /// It had already applied (an earlier attempt whose answer was lost): nothing to redo.
    AlreadyCommitted,
    /// Another owner holds the partition: stop, delete staged files, never retry.
    Fenced { current_epoch: Option<u64> },
    /// The stored next offset is not where this shard starts: the local state is stale; the
    /// partition must be re-read from etcd and consumption restarted from the stored offset.
    OffsetMismatch { stored: Option<i64> },
    /// Nothing explains the failure (state changed between the transaction and the read): retry.
    Retry,
}

/// Classifies a failed commit transaction from the state read right after it.
/// Fencing wins over everything: a stale owner must never act on anything else it reads.
pub fn classify_failed_commit(
    my_epoch: u64,
    first: i64,
    last: i64,
    stored: StoredState,
) -> CommitOutcome {
    if stored.epoch != Some(my_epoch) {
        return CommitOutcome::Fenced {
            current_epoch: stored.epoch,
        };
    }
    if stored.manifest_at_first == Some((my_epoch, last)) && stored.next_offset == Some(last + 1) {
        return CommitOutcome::AlreadyCommitted;
    }
    if stored.next_offset != Some(first) {
        return CommitOutcome::OffsetMismatch {
            stored: stored.next_offset,
        };
    }
    CommitOutcome::Retry
}

/// One step of recovering a partition after a change of owner or a crash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecoveryAction {
    /// Committed but not yet published: rename staging → final.
    Publish { staging: String, path: String },
    /// Staged but never committed (or left behind after publishing): delete.
    DeleteStaging(String),
}

/// A committed file that is neither published nor staged any more: data was removed outside
/// Sawmill. Recovery stops and says which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostFile {
    pub path: String,
    pub staging: String,
}

/// Decides what recovery must do for one partition, given its committed manifests, the set of
/// files that exist, and the staging files present in the partition's staging directory.
///
/// Must run only after the caller's epoch bump, so that no earlier owner can commit afterwards;
/// then every staging file that no manifest references can never be committed and is garbage.
pub fn plan_recovery(
    manifests: &[ShardManifest],
    existing: &BTreeSet<String>,
    staging_files: &[String],
) -> Result<Vec<RecoveryAction>, Vec<LostFile>> {
    let mut actions = Vec::new();
    let mut lost = Vec::new();
    let mut referenced = BTreeSet::new();
    for m in manifests {
        for f in m.all_files() {
            referenced.insert(f.staging.as_str());
            if existing.contains(&f.path) {
                continue;
            }
            if existing.contains(&f.staging) {
                actions.push(RecoveryAction::Publish {
                    staging: f.staging.clone(),
                    path: f.path.clone(),
                });
            } else {
                lost.push(LostFile {
                    path: f.path.clone(),
                    staging: f.staging.clone(),
                });
            }
        }
    }
    for s in staging_files {
        if !referenced.contains(s.as_str()) {
            actions.push(RecoveryAction::DeleteStaging(s.clone()));
        }
    }
    if lost.is_empty() {
        actions.sort();
        Ok(actions)
    } else {
        Err(lost)
    }
}

/// Checks that a partition's manifests form one gap-free, overlap-free chain from `start` and
/// returns the next offset after it. The coordinator merges exactly the chain, so a replayed or
/// duplicated manifest is never counted twice and a gap is never skipped.
pub fn chain_end(start: i64, manifests: &[ShardManifest]) -> Result<i64, String> {
    let mut next = start;
    let mut sorted: Vec<&ShardManifest> = manifests.iter().collect();
    sorted.sort_by_key(|m| m.first);
    for m in sorted {
        if m.first != next {
            return Err(format!(
                "partition {}: shard {}..={} does not start at the expected offset {next}",
                m.partition, m.first, m.last
            ));
        }
        if m.last < m.first - 1 {
            return Err(format!(
                "partition {}: shard {}..={} is inverted",
                m.partition, m.first, m.last
            ));
        }
        next = m.last + 1;
    }
    Ok(next)
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
