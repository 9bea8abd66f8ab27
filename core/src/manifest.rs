//! The commit protocol's data and its pure decisions.
//!
//! A worker commits a shard in three steps (see ARCHITECTURE.md, "Commit protocol"):
//! 1. write its files under staging names;
//! 2. one etcd transaction, guarded by the partition's owner epoch and its stored next offset,
//!    stores the new next offset and the shard's [`ShardManifest`];
//! 3. publish: rename each staging file to its final name.
//!
//! Everything that decides what to do — how a failed or ambiguous commit is
//! classified, what recovery must publish or delete — is a pure function here, tested without
//! etcd or a file system. The etcd key layout and transactions live in `sawmill_common::etcd`,
//! the paths in [`crate::layout`].

use crate::layout::{ShardRange, RECORDS_DIR};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

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
    /// The shard's partial aggregates (Sawmill's binary partial codec), merged by the coordinator.
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

    /// The range the shard covers, from which every one of its names derives.
    pub fn range(&self) -> ShardRange {
        ShardRange {
            source: self.source.clone(),
            partition: self.partition,
            first: self.first,
            last: self.last,
        }
    }

    /// Checks that every name in the manifest is the one the layout gives its range: records
    /// under `records/dt=<date>/`, rejects, the partial and each staging name recomputed from
    /// `(source, partition, first, last, epoch)`. Manifests come from etcd, which is not trusted
    /// to name paths: an absolute path or a `..` there must never reach a rename or a read.
    pub fn check_layout(&self) -> Result<(), String> {
        let range = self.range();
        let bad = |f: &ManifestFile, why: &str| {
            Err(format!(
                "partition {} shard {}..={}: {why}: {:?} (staged as {:?}); the manifest was not written by this Sawmill version or was altered",
                self.partition, self.first, self.last, f.path, f.staging
            ))
        };
        if self.last < self.first - 1 {
            return Err(format!(
                "partition {}: shard {}..={} is inverted",
                self.partition, self.first, self.last
            ));
        }
        let rejects = range.rejects_path();
        let mut rejects_seen = false;
        for f in &self.files {
            if f.path == rejects {
                if std::mem::replace(&mut rejects_seen, true) {
                    return bad(f, "rejects listed twice");
                }
            } else if !is_records_path(&range, &f.path) {
                return bad(f, "not a records or rejects path of this range");
            }
            if range
                .staging_nonce_of(self.epoch, &f.path, &f.staging)
                .is_none()
            {
                return bad(f, "unexpected staging name");
            }
        }
        let p = &self.partial;
        if p.path != range.partial_path()
            || range
                .staging_nonce_of(self.epoch, &p.path, &p.staging)
                .is_none()
        {
            return bad(p, "unexpected partial name");
        }
        Ok(())
    }
}

/// `records/dt=YYYY-MM-DD/<file name of range>` with a well-formed date.
fn is_records_path(range: &ShardRange, path: &str) -> bool {
    let Some(rest) = path
        .strip_prefix(RECORDS_DIR)
        .and_then(|r| r.strip_prefix("/dt="))
    else {
        return false;
    };
    let Some((date, name)) = rest.split_once('/') else {
        return false;
    };
    let b = date.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && name == range.file_name()
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

/// Checks that a partition's manifests form one gap-free, overlap-free chain from `start` (the
/// smallest first offset, or the end of the partition's segment once manifests were folded:
/// [`chain_start`]) and returns the next offset after it. The coordinator merges exactly the chain, so a replayed or
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

mod segment;
pub use segment::{
    chain_start, plan_fold, FoldPlan, ManifestSegment, SegmentRef, FOLD_MAX, SEGMENT_FORMAT,
};

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
