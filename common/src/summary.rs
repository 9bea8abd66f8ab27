//! The merged analytics as `summary/<table>.parquet`, one file per table, each replaced
//! atomically (write under staging, delete the old file, rename) so readers see either the old
//! or the new table, never a partial one.

use crate::analytics::Partial;
use crate::error::Result;
use crate::shard::{self, meta, ParquetOptions, SUMMARY_DIR};
use crate::storage::{staging_name, Storage};
use arrow::record_batch::RecordBatch;
use parquet::file::metadata::KeyValue;
use std::collections::BTreeMap;

pub fn table_path(name: &str) -> String {
    format!("{SUMMARY_DIR}/{name}.parquet")
}

/// Writes every summary table of `partial`. Returns the paths written.
pub fn write(
    storage: &dyn Storage,
    partial: &Partial,
    opts: &ParquetOptions,
) -> Result<Vec<String>> {
    let mut paths = Vec::new();
    for (name, batch) in partial.tables() {
        let kv = vec![
            KeyValue::new(meta::VERSION.into(), crate::VERSION.to_string()),
            KeyValue::new(meta::KIND.into(), format!("summary/{name}")),
            KeyValue::new("sawmill.records".into(), partial.records().to_string()),
            KeyValue::new("sawmill.rejects".into(), partial.rejects().to_string()),
        ];
        let bytes = shard::encode(&[&batch], kv, opts)?;
        let path = table_path(name);
        let staging = staging_name(&path);
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
        let Some(name) = path
            .strip_prefix(&format!("{SUMMARY_DIR}/"))
            .and_then(|n| n.strip_suffix(".parquet"))
        else {
            continue;
        };
        let (batches, _) = shard::read(storage, &path)?;
        let batch = match batches.as_slice() {
            [] => continue,
            [b] => b.clone(),
            many => arrow::compute::concat_batches(&many[0].schema(), many)?,
        };
        out.insert(name.to_string(), batch);
    }
    Ok(out)
}
