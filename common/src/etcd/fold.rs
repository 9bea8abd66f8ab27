//! Compaction in etcd: paged reads of a partition's live manifests, its manifest segment, and
//! the one guarded transaction that replaces folded manifests by a segment.

use super::{decode_manifest, etcd_err, Checkpoints};
use crate::error::{Error, Result};
use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};
use sawmill_core::manifest::{SegmentRef, ShardManifest};
use std::collections::BTreeMap;

/// Keys read per request: far below etcd's answer limits whatever a manifest holds.
const PAGE: usize = 256;

/// A manifest and the etcd revision it was last written at (what a fold compares).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredManifest {
    pub manifest: ShardManifest,
    pub mod_revision: i64,
}

/// A partition's segment record and the etcd revision it was written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSegment {
    pub segment: SegmentRef,
    pub mod_revision: i64,
}

/// The first key after every key starting with `prefix`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    // Keys are ASCII and prefixes end in '/': incrementing the last byte cannot overflow.
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

fn decode_segment(key: &str, value: &[u8]) -> Result<SegmentRef> {
    let corrupt = |message: String| Error::Corrupt {
        what: key.to_string(),
        message,
    };
    let s: SegmentRef = serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
    s.check().map_err(corrupt)?;
    Ok(s)
}

impl Checkpoints {
    /// Manifests from key `from` to the end of `prefix`, at most `limit`, read in pages.
    pub(super) async fn manifest_pages(
        &mut self,
        mut from: Vec<u8>,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<StoredManifest>> {
        let end = prefix_end(prefix);
        let mut out = Vec::new();
        while out.len() < limit {
            let page = PAGE.min(limit - out.len());
            let resp = self
                .client
                .get(
                    from.clone(),
                    Some(
                        GetOptions::new()
                            .with_range(end.clone())
                            .with_limit(page as i64),
                    ),
                )
                .await
                .map_err(etcd_err(&self.endpoints, "cannot read manifests"))?;
            for kv in resp.kvs() {
                out.push(StoredManifest {
                    manifest: decode_manifest(&String::from_utf8_lossy(kv.key()), kv.value())?,
                    mod_revision: kv.mod_revision(),
                });
            }
            match resp.kvs().last() {
                Some(kv) if resp.more() => {
                    from = kv.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Up to `limit` live manifests of `partition` from offset `from` on, in offset order.
    pub async fn live_manifests(
        &mut self,
        partition: i32,
        from: i64,
        limit: usize,
    ) -> Result<Vec<StoredManifest>> {
        let prefix = self.keys.partition_manifests_prefix(partition);
        let start = self.keys.manifest(partition, from.max(0)).into_bytes();
        self.manifest_pages(start, &prefix, limit).await
    }

    /// The partition's latest manifest segment, if compaction folded any of its manifests.
    pub async fn segment(&mut self, partition: i32) -> Result<Option<StoredSegment>> {
        let key = self.keys.segment(partition);
        let resp = self
            .client
            .get(key.as_str(), None)
            .await
            .map_err(etcd_err(&self.endpoints, "etcd read failed"))?;
        resp.kvs()
            .first()
            .map(|kv| {
                Ok(StoredSegment {
                    segment: decode_segment(&key, kv.value())?,
                    mod_revision: kv.mod_revision(),
                })
            })
            .transpose()
    }

    /// Every partition's latest segment (one key per partition).
    pub async fn segments(&mut self) -> Result<BTreeMap<i32, StoredSegment>> {
        let prefix = self.keys.segments_prefix();
        let resp = self
            .client
            .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(etcd_err(&self.endpoints, "etcd read failed"))?;
        let mut out = BTreeMap::new();
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).to_string();
            let segment = decode_segment(&key, kv.value())?;
            if key != self.keys.segment(segment.partition) {
                return Err(Error::Corrupt {
                    what: key,
                    message: format!("names partition {}", segment.partition),
                });
            }
            out.insert(
                segment.partition,
                StoredSegment {
                    segment,
                    mod_revision: kv.mod_revision(),
                },
            );
        }
        Ok(out)
    }

    /// Bumps the merge generation (at a merge actor's start) and returns it.
    pub async fn next_merge_generation(&mut self) -> Result<u64> {
        let key = self.keys.merge_generation();
        self.increment(&key, Vec::new).await?.ok_or_else(|| {
            Error::Etcd(format!(
                "too much contention on {key}: is another coordinator of this pipeline starting?"
            ))
        })
    }

    /// The current merge generation, if any coordinator started.
    pub async fn merge_generation(&mut self) -> Result<Option<u64>> {
        let key = self.keys.merge_generation();
        self.get_value(&key)
            .await?
            .map(|v| super::parse_num(&key, &v))
            .transpose()
    }

    /// Replaces `folded` (live manifests continuing `previous`) by the segment record `new`,
    /// in one transaction that applies only if this coordinator still leads (its fence), the
    /// merge generation is still `generation` (no newer coordinator started), the segment key is still `previous` and every folded key is
    /// still what was read. Returns the revision of the fold, or `None` when a guard failed
    /// (nothing changed; read again).
    pub async fn fold(
        &mut self,
        generation: u64,
        previous: Option<&StoredSegment>,
        new: &SegmentRef,
        folded: &[StoredManifest],
    ) -> Result<Option<i64>> {
        let p = new.partition;
        let segment_key = self.keys.segment(p);
        let body = serde_json::to_string(new)
            .map_err(|e| Error::Pipeline(format!("cannot encode a segment record: {e}")))?;
        let mut guards = vec![
            Compare::value(
                self.keys.merge_generation(),
                CompareOp::Equal,
                generation.to_string(),
            ),
            Compare::mod_revision(
                segment_key.as_str(),
                CompareOp::Equal,
                previous.map_or(0, |s| s.mod_revision),
            ),
        ];
        let mut ops = vec![TxnOp::put(segment_key.as_str(), body, None)];
        for s in folded {
            let key = self.keys.manifest(p, s.manifest.first);
            guards.push(Compare::mod_revision(
                key.as_str(),
                CompareOp::Equal,
                s.mod_revision,
            ));
            ops.push(TxnOp::delete(key, None));
        }
        let mut all = self.fence_guard()?;
        all.extend(guards);
        let resp = self
            .client
            .txn(Txn::new().when(all).and_then(ops))
            .await
            .map_err(etcd_err(&self.endpoints, "fold transaction failed"))?;
        if !resp.succeeded() {
            self.check_fence().await?;
            return Ok(None);
        }
        Ok(Some(resp.header().map_or(0, |h| h.revision())))
    }

    /// Compacts etcd's revision history up to `revision` (what folding deleted stops taking
    /// space). A revision already compacted is not an error.
    pub async fn compact(&mut self, revision: i64) -> Result<()> {
        // Compaction is no transaction: a fenced empty one first, so a deposed leader does not.
        if self.fence.is_some() && !self.fenced_txn(Vec::new(), Vec::new()).await? {
            return Ok(());
        }
        match self.client.compact(revision, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("compacted") => Ok(()),
            Err(e) => Err(etcd_err(&self.endpoints, "etcd compaction failed")(e)),
        }
    }

    /// Number of keys of this pipeline (for tests and the status).
    pub async fn key_count(&mut self) -> Result<i64> {
        let prefix = format!("{}/", self.keys.prefix());
        let resp = self
            .client
            .get(
                prefix.as_str(),
                Some(GetOptions::new().with_prefix().with_count_only()),
            )
            .await
            .map_err(etcd_err(&self.endpoints, "etcd read failed"))?;
        Ok(resp.count())
    }
}
