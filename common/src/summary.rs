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

/// Writes every summary table of `partial`. Returns the paths written.
pub fn write(
    storage: &dyn Storage,
    partial: &Partial,
    opts: &ParquetOptions,
) -> Result<Vec<String>> {
    let mut paths = Vec::new();
    for (name, batch) in partial.tables() {
        let kv = vec![
            KeyValue::new(meta::VERSION.into(), sawmill_core::VERSION.to_string()),
            KeyValue::new(meta::KIND.into(), format!("summary/{name}")),
            KeyValue::new("sawmill.records".into(), partial.records().to_string()),
            KeyValue::new("sawmill.rejects".into(), partial.rejects().to_string()),
        ];
        let bytes = shard::encode(&[&batch], kv, opts)?;
        let path = layout::summary_table_path(name);
        let staging = layout::temp_staging_path(&path);
        storage.write(&staging, &bytes)?;
        // Summary tables are replaced, unlike shards: the newest merge wins.
        storage.delete(&path)?;
        storage.rename(&staging, &path)?;
        paths.push(path);
    }
    Ok(paths)
}

/// Reads every `summary/*.parquet` table, keyed by table name.
pub fn read(storage: &dyn Storage) -> Result<BTreeMap<String, RecordBatch>> {
    let mut out = BTreeMap::new();
    for path in storage.list(SUMMARY_DIR)? {
        let Some(name) = layout::summary_table_name(&path) else {
            continue;
        };
        let (batches, _) = crate::storage::read_parquet(storage, &path)?;
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
pub fn read_root(root: &str) -> Result<BTreeMap<String, RecordBatch>> {
    // `storage::open` creates a missing local root; a reader must not leave one behind.
    let local = !root.contains("://") || root.starts_with("file://");
    let path = root.strip_prefix("file://").unwrap_or(root);
    let none = || Error::NoSummary {
        root: root.to_string(),
    };
    if local && !std::path::Path::new(path).is_dir() {
        return Err(none());
    }
    let tables = read(crate::storage::open(root)?.as_ref())?;
    if tables.is_empty() {
        return Err(none());
    }
    Ok(tables)
}
