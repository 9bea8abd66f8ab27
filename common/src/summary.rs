//! The merged analytics as `summary/<table>.parquet`, one file per table, each replaced
//! atomically (write under staging, delete the old file, rename) so readers see either the old
//! or the new table, never a partial one.

use crate::error::{Error, Result};
use crate::storage::Storage;
use arrow::record_batch::RecordBatch;
use parquet::file::metadata::KeyValue;
use sawmill_core::analytics::Partial;
use sawmill_core::layout::{self, SUMMARY_DIR};
use sawmill_core::shard::{self, meta, ParquetOptions};
use std::collections::BTreeMap;

/// Encodes every summary table of `partial` as `(path, Parquet bytes)`. CPU work: call it from
/// a blocking or plain thread, then hand the result to [`write()`].
pub fn encode(partial: &Partial, opts: &ParquetOptions) -> Result<Vec<(String, Vec<u8>)>> {
    let mut tables = Vec::new();
    for (name, batch) in partial.tables() {
        let kv = vec![
            KeyValue::new(meta::VERSION.into(), sawmill_core::VERSION.to_string()),
            KeyValue::new(meta::KIND.into(), format!("summary/{name}")),
            KeyValue::new("sawmill.records".into(), partial.records().to_string()),
            KeyValue::new("sawmill.rejects".into(), partial.rejects().to_string()),
        ];
        let bytes = shard::encode(&[&batch], kv, opts)?;
        tables.push((layout::summary_table_path(name), bytes));
    }
    Ok(tables)
}

/// Replaces each table [`encode`] produced. Returns the paths written.
pub async fn write(storage: &dyn Storage, tables: Vec<(String, Vec<u8>)>) -> Result<Vec<String>> {
    let mut paths = Vec::with_capacity(tables.len());
    for (path, bytes) in tables {
        let staging = layout::temp_staging_path(&path);
        storage.write(&staging, &bytes).await?;
        // Summary tables are replaced, unlike shards: the newest merge wins.
        storage.delete(&path).await?;
        storage.rename(&staging, &path).await?;
        paths.push(path);
    }
    Ok(paths)
}

/// Reads every `summary/*.parquet` table, keyed by table name.
pub async fn read(storage: &dyn Storage) -> Result<BTreeMap<String, RecordBatch>> {
    let mut out = BTreeMap::new();
    for path in storage.list(SUMMARY_DIR).await? {
        let Some(name) = layout::summary_table_name(&path) else {
            continue;
        };
        let (batches, _) = crate::storage::read_parquet(storage, &path).await?;
        let batch = match batches.as_slice() {
            [] => continue,
            [b] => b.clone(),
            many => arrow::compute::concat_batches(&many[0].schema(), many)?,
        };
        out.insert(name.to_string(), batch);
    }
    Ok(out)
}

/// Reads the summary tables under an output root (a local path, `file://` or `hdfs://` URL).
/// Fails with [`Error::NoSummary`] when there are none, without creating a missing local root.
pub async fn read_root(root: &str) -> Result<BTreeMap<String, RecordBatch>> {
    // `storage::open` creates a missing local root; a reader must not leave one behind.
    let local = !root.contains("://") || root.starts_with("file://");
    let path = root.strip_prefix("file://").unwrap_or(root);
    let none = || Error::NoSummary {
        root: root.to_string(),
    };
    if local && !std::path::Path::new(path).is_dir() {
        return Err(none());
    }
    let tables = read(crate::storage::open(root).await?.as_ref()).await?;
    if tables.is_empty() {
        return Err(none());
    }
    Ok(tables)
}
