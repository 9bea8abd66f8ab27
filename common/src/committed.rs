//! Reads what the cluster has committed: every shard manifest in etcd and its partial
//! aggregates on storage, merged into one [`Partial`]. Used by `sawmill summarize`, by tests, and
//! by the coordinator when it (re)builds its merged state.

use crate::error::{Error, Result};
use crate::etcd::Checkpoints;
use crate::storage::Storage;
use sawmill_core::analytics::{AnalyticsConfig, Partial};
use sawmill_core::manifest::{chain_end, ShardManifest};
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

/// Loads one shard's partial aggregates from storage.
pub fn load_partial(storage: &dyn Storage, m: &ShardManifest) -> Result<Partial> {
    // A committed shard may not be published yet (its worker died between commit and
    // publish): its staged copy holds the same bytes.
    let bytes = match storage.read(&m.partial.path) {
        Ok(b) => b,
        Err(_) => storage.read(&m.partial.staging)?,
    };
    Ok(Partial::from_bytes(&bytes)?)
}

/// Merges every committed shard of the pipeline. Fails if a partition's chain has a gap or an
/// overlap, since the merged figures would then not be exact.
pub async fn merge_committed(
    cp: &mut Checkpoints,
    storage: Arc<dyn Storage>,
    cfg: &AnalyticsConfig,
) -> Result<Committed> {
    let manifests = cp.manifests(None).await?;
    let mut by_partition: BTreeMap<i32, Vec<ShardManifest>> = BTreeMap::new();
    for m in manifests {
        by_partition.entry(m.partition).or_default().push(m);
    }
    let mut next_offsets = BTreeMap::new();
    for (p, ms) in &by_partition {
        let start = ms.iter().map(|m| m.first).min().unwrap_or(0);
        let end = chain_end(start, ms).map_err(|e| Error::Corrupt {
            what: format!("manifests of partition {p}"),
            message: e,
        })?;
        next_offsets.insert(*p, end);
    }
    let cfg = cfg.clone();
    let (partial, shards) = tokio::task::spawn_blocking(move || -> Result<(Partial, usize)> {
        let mut merged = Partial::new(&cfg);
        let mut n = 0;
        for ms in by_partition.values() {
            for m in ms {
                merged.merge(load_partial(storage.as_ref(), m)?);
                n += 1;
            }
        }
        Ok((merged, n))
    })
    .await
    .map_err(|e| Error::Pipeline(format!("merge task failed: {e}")))??;
    Ok(Committed {
        partial,
        next_offsets,
        shards,
    })
}
