//! Reads what the cluster has committed: every shard manifest in etcd and its partial
//! aggregates on storage, merged into one [`Partial`]. Used by `sawmill summarize`, by tests, and
//! by the coordinator when it (re)builds its merged state.

use crate::error::{Error, Result};
use crate::etcd::Checkpoints;
use crate::storage::{off_runtime, Storage};
use sawmill_core::analytics::{AnalyticsConfig, Partial};
use sawmill_core::manifest::{chain_end, chain_start, ManifestSegment, SegmentRef, ShardManifest};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The merged result of every committed shard.
#[derive(Debug)]
pub struct Committed {
    pub partial: Partial,
    /// Next offset after each partition's committed chain.
    pub next_offsets: BTreeMap<i32, i64>,
    pub shards: usize,
}

/// Loads one shard's partial aggregates from storage (decoded on a blocking thread).
pub async fn load_partial(storage: &dyn Storage, m: &ShardManifest) -> Result<Partial> {
    // A committed shard may not be published yet (its worker died between commit and
    // publish): its staged copy holds the same bytes.
    let bytes = match storage.read(&m.partial.path).await {
        Ok(b) => b,
        Err(_) => storage.read(&m.partial.staging).await?,
    };
    off_runtime("decode partial", move || Ok(Partial::from_bytes(&bytes)?)).await
}

/// Reads and checks the segment file `r` names and decodes its merged partial (on a blocking
/// thread).
pub async fn load_segment(
    storage: &dyn Storage,
    r: &SegmentRef,
) -> Result<(ManifestSegment, Partial)> {
    let bytes = storage.read(&r.path()).await?;
    let r = r.clone();
    off_runtime("decode segment", move || {
        let segment = ManifestSegment::decode(&bytes, &r).map_err(|message| Error::Corrupt {
            what: r.path(),
            message,
        })?;
        let partial = Partial::from_bytes(&segment.partial)?;
        Ok((segment, partial))
    })
    .await
}

/// Merges every committed shard of the pipeline. Fails if a partition's chain has a gap or an
/// overlap, since the merged figures would then not be exact.
pub async fn merge_committed(
    etcd: &mut Checkpoints,
    storage: Arc<dyn Storage>,
    cfg: &AnalyticsConfig,
) -> Result<Committed> {
    let segments = etcd.segments().await?;
    let manifests = etcd.manifests(None).await?;
    let mut by_partition: BTreeMap<i32, Vec<ShardManifest>> = BTreeMap::new();
    for p in segments.keys() {
        by_partition.entry(*p).or_default();
    }
    for m in manifests {
        by_partition.entry(m.partition).or_default().push(m);
    }
    let mut next_offsets = BTreeMap::new();
    let mut partial = Partial::new(cfg);
    let mut shards = 0;
    for (p, ms) in &by_partition {
        let segment = segments.get(p).map(|s| &s.segment);
        let start = chain_start(segment, ms).unwrap_or(0);
        let end = chain_end(start, ms).map_err(|e| Error::Corrupt {
            what: format!("manifests of partition {p}"),
            message: e,
        })?;
        next_offsets.insert(*p, end);
        // Folded shards count through their segment's merged partial.
        if let Some(s) = segment {
            let (_, folded) = load_segment(storage.as_ref(), s).await?;
            partial = off_runtime("merge partial", move || {
                partial.merge(folded);
                Ok(partial)
            })
            .await?;
            shards += s.shards as usize;
        }
    }
    for m in by_partition.values().flatten() {
        let shard = load_partial(storage.as_ref(), m).await?;
        // Merging is CPU work too: the running total moves to a blocking thread and back.
        partial = off_runtime("merge partial", move || {
            partial.merge(shard);
            Ok(partial)
        })
        .await?;
        shards += 1;
    }
    Ok(Committed {
        partial,
        next_offsets,
        shards,
    })
}
