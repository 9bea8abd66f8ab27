//! Compaction of a partition's manifests: once the coordinator has merged a prefix of a
//! partition's chain and published the summary covering it, it folds those manifests out of
//! etcd into one *manifest segment* file on the output root (`layout::ShardRange::segment_path`)
//! and one etcd key naming it ([`SegmentRef`]), so that etcd holds a bounded number of keys per
//! partition however long the pipeline runs.
//!
//! A segment file holds the manifests it folded (the full history stays reachable: each segment
//! names the one before it, and every shard's partial stays under `_partials/`) and the merged
//! partial of the whole chain up to its end, so a restarting coordinator reads one file per
//! partition instead of every shard. The decisions (where a chain starts, what may be folded)
//! are the pure functions here.

use super::ShardManifest;
use crate::layout::ShardRange;
use serde::{Deserialize, Serialize};

/// Version of the segment file format; a reader refuses any other.
pub const SEGMENT_FORMAT: u32 = 1;
/// Most manifests folded in one transaction: each costs one compare and one delete, and etcd
/// refuses a transaction of more than 128 operations (`--max-txn-ops`' default).
pub const FOLD_MAX: usize = 100;

const MAGIC: &[u8; 16] = b"SAWMILL-SEGMENT\n";
/// Magic, format (u32), body checksum (u64), header length (u64).
const PREAMBLE: usize = 16 + 4 + 8 + 8;

/// The etcd record of a partition's latest segment: what it covers and how to check its file.
/// The file's path is recomputed from the range, never read from etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    pub source: String,
    pub partition: i32,
    /// First offset of the partition's chain: the segment's partial covers `start..=last`.
    pub start: i64,
    /// The range this segment's file folded (its name derives from it).
    pub first: i64,
    pub last: i64,
    /// Shards, records and rejects folded by this segment and every earlier one.
    pub shards: u64,
    pub records: u64,
    pub rejects: u64,
    /// FNV-1a 64 of the whole segment file, in hex: a replaced or truncated file is refused.
    pub checksum: String,
    /// [`SEGMENT_FORMAT`] of the file.
    pub format: u32,
}

impl SegmentRef {
    /// The offset the partition's live chain continues from.
    pub fn next_offset(&self) -> i64 {
        self.last + 1
    }

    pub fn range(&self) -> ShardRange {
        ShardRange {
            source: self.source.clone(),
            partition: self.partition,
            first: self.first,
            last: self.last,
        }
    }

    pub fn path(&self) -> String {
        self.range().segment_path()
    }

    /// The record of a new segment folding `folded` (a chain continuing `previous`) whose
    /// encoded file is `file`.
    pub fn folding(
        previous: Option<&SegmentRef>,
        folded: &[ShardManifest],
        file: &[u8],
    ) -> Option<SegmentRef> {
        let (head, tail) = (folded.first()?, folded.last()?);
        let (mut shards, mut records, mut rejects) = previous
            .map(|p| (p.shards, p.records, p.rejects))
            .unwrap_or_default();
        for m in folded {
            shards += 1;
            records = records.saturating_add(m.records);
            rejects = rejects.saturating_add(m.rejects);
        }
        Some(SegmentRef {
            source: head.source.clone(),
            partition: head.partition,
            start: previous.map_or(head.first, |p| p.start),
            first: head.first,
            last: tail.last,
            shards,
            records,
            rejects,
            checksum: format!("{:016x}", fnv1a(file)),
            format: SEGMENT_FORMAT,
        })
    }

    /// Refuses a record whose ranges are inverted or whose format this version cannot read.
    pub fn check(&self) -> Result<(), String> {
        if self.format != SEGMENT_FORMAT {
            return Err(format!(
                "partition {}: segment format {} is not {SEGMENT_FORMAT}: upgrade Sawmill",
                self.partition, self.format
            ));
        }
        if self.start > self.first || self.last < self.first - 1 {
            return Err(format!(
                "partition {}: segment {}..={} (chain from {}) is inverted",
                self.partition, self.first, self.last, self.start
            ));
        }
        Ok(())
    }
}

/// The body of a segment file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    previous: Option<SegmentRef>,
    manifests: Vec<ShardManifest>,
}

/// A segment file: the manifests one fold removed from etcd and the merged partial of the
/// partition's chain up to the last of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSegment {
    /// The segment this one continues (its file stays on storage: the history is a list).
    pub previous: Option<SegmentRef>,
    /// The folded manifests, in chain order.
    pub manifests: Vec<ShardManifest>,
    /// The merged partial (Sawmill's partial codec) of every shard from the chain's start to
    /// the last folded one.
    pub partial: Vec<u8>,
}

impl ManifestSegment {
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let header = serde_json::to_vec(&Header {
            previous: self.previous.clone(),
            manifests: self.manifests.clone(),
        })
        .map_err(|e| format!("cannot encode a manifest segment: {e}"))?;
        let mut body = Vec::with_capacity(8 + header.len() + self.partial.len());
        body.extend_from_slice(&(header.len() as u64).to_le_bytes());
        body.extend_from_slice(&header);
        body.extend_from_slice(&self.partial);
        let mut out = Vec::with_capacity(PREAMBLE + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&SEGMENT_FORMAT.to_le_bytes());
        out.extend_from_slice(&fnv1a(&body).to_le_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decodes the file `expected` names, refusing it unless its checksum, format, manifests
    /// (names checked against the layout) and chain all match the record.
    pub fn decode(bytes: &[u8], expected: &SegmentRef) -> Result<ManifestSegment, String> {
        let what = expected.path();
        let bad = |why: String| {
            Err(format!(
                "{what}: {why}; restore the file or reset the pipeline"
            ))
        };
        expected.check()?;
        if format!("{:016x}", fnv1a(bytes)) != expected.checksum {
            return bad("checksum does not match etcd's record".into());
        }
        if bytes.len() < PREAMBLE || &bytes[..16] != MAGIC {
            return bad("not a manifest segment".into());
        }
        let num = |at: usize, n: usize| -> u64 {
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&bytes[at..at + n]);
            u64::from_le_bytes(b)
        };
        if num(16, 4) != u64::from(SEGMENT_FORMAT) {
            return bad(format!("format {} is not {SEGMENT_FORMAT}", num(16, 4)));
        }
        let body = &bytes[PREAMBLE - 8..];
        if num(20, 8) != fnv1a(body) {
            return bad("body checksum mismatch".into());
        }
        let len = usize::try_from(num(28, 8)).unwrap_or(usize::MAX);
        let Some(header) = bytes.get(PREAMBLE..).and_then(|b| b.get(..len)) else {
            return bad("truncated".into());
        };
        let header: Header = serde_json::from_slice(header).map_err(|e| format!("{what}: {e}"))?;
        for m in &header.manifests {
            m.check_layout()?;
            if (m.source.as_str(), m.partition) != (expected.source.as_str(), expected.partition) {
                return bad(format!(
                    "holds shard {}..={} of another partition",
                    m.first, m.last
                ));
            }
        }
        let start = match &header.previous {
            Some(p) => p.next_offset(),
            None => expected.start,
        };
        if start != expected.first
            || super::chain_end(start, &header.manifests)? != expected.next_offset()
        {
            return bad(format!(
                "its manifests do not chain {}..={}",
                expected.first, expected.last
            ));
        }
        Ok(ManifestSegment {
            previous: header.previous,
            manifests: header.manifests,
            partial: bytes[PREAMBLE + len..].to_vec(),
        })
    }
}

/// FNV-1a, 64 bits: detects a truncated or replaced file (not an adversary with write access,
/// who could rewrite etcd as well).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Where a partition's live chain starts: after its segment, or (nothing folded yet) at its
/// smallest live first offset. `None` when the partition has neither.
pub fn chain_start(segment: Option<&SegmentRef>, live: &[ShardManifest]) -> Option<i64> {
    match segment {
        Some(s) => Some(s.next_offset()),
        None => live.iter().map(|m| m.first).min(),
    }
}

/// What one fold removes from etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldPlan {
    /// How many of the live manifests, from the chain's start, to fold.
    pub count: usize,
}

/// Decides how many of a partition's live manifests (sorted by first offset) the coordinator
/// folds now. Nothing unless more than `threshold` are live (folding costs a file write); then
/// the longest prefix of the chain, at most `max`, whose shards are all below `summarized` (the
/// merged next offset the published summary covers) and `published` (every file at its final
/// name: once its manifest is gone, worker recovery would delete a staged copy as garbage).
pub fn plan_fold(
    segment: Option<&SegmentRef>,
    live: &[ShardManifest],
    summarized: i64,
    published: impl Fn(&ShardManifest) -> bool,
    threshold: usize,
    max: usize,
) -> FoldPlan {
    let mut count = 0;
    if live.len() > threshold {
        let mut next = chain_start(segment, live);
        for m in live.iter().take(max) {
            if Some(m.first) != next || m.next_offset() > summarized || !published(m) {
                break;
            }
            next = Some(m.next_offset());
            count += 1;
        }
    }
    FoldPlan { count }
}

#[cfg(test)]
#[path = "segment_tests.rs"]
mod tests;
