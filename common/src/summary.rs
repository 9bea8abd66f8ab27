//! The merged analytics as `summary/<table>.parquet`, one file per table.
//!
//! **Replacement.** A table is written under `_staging/`, then renamed over the current one in
//! one atomic step (`Storage::replace`: rename(2) on a local directory, rename2 with OVERWRITE
//! on the NameNode), so any reader, also one that only globs `*.parquet` (pyarrow, Spark), sees
//! the old table or the new one, never neither and never a partial one. A storage without
//! such a rename falls back to a swap: the current file is renamed aside to
//! `summary/<table>.parquet.prev`, the new one renamed in, the aside copy deleted; [`read`]
//! falls back to the aside copy during that window.
//!
//! **Incremental.** [`SummaryWriter`] remembers a hash of each table's content as last written
//! and rewrites only the tables whose content changed, so a coordinator whose analytics barely
//! moved writes a few small files instead of all of them. Each file's `sawmill.records` and
//! `sawmill.rejects` metadata give the merged totals when *that* file was written.
//!
//! **Failures** leave no temporary file behind: a failed write deletes what it staged (HDFS
//! creates the file before the data arrives), and a failed swap puts the old table back.

use crate::error::{Error, Result};
use crate::storage::Storage;
use arrow::record_batch::RecordBatch;
use parquet::file::metadata::KeyValue;
use sawmill_core::analytics::{Partial, TABLE_NAMES};
use sawmill_core::layout::{self, SUMMARY_DIR};
use sawmill_core::shard::{self, meta, ParquetOptions};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hasher;

/// One encoded summary table.
#[derive(Debug, Clone)]
pub struct EncodedTable {
    pub name: &'static str,
    /// `summary/<name>.parquet`.
    pub path: String,
    /// Hash of the table's content (not of the file, whose metadata changes with every merge).
    pub content: u64,
    pub bytes: Vec<u8>,
}

/// Encodes every summary table of `partial` as `(path, Parquet bytes)`. CPU work: call it from
/// a blocking or plain thread, then hand the result to [`write()`].
pub fn encode(partial: &Partial, opts: &ParquetOptions) -> Result<Vec<(String, Vec<u8>)>> {
    Ok(encode_changed(partial, opts, &HashMap::new())?
        .into_iter()
        .map(|t| (t.path, t.bytes))
        .collect())
}

/// Encodes the tables of `partial` whose content hash differs from `written` (table name →
/// hash, as [`SummaryWriter::written`] returns). CPU work, like [`encode`]; the tables are
/// encoded on all cores, since whoever waits for them (the end of `sawmill run`, a merge at the
/// coordinator) has nothing else to run.
pub fn encode_changed(
    partial: &Partial,
    opts: &ParquetOptions,
    written: &HashMap<&'static str, u64>,
) -> Result<Vec<EncodedTable>> {
    // Each table is built and encoded by whichever thread takes its name: built up front, the
    // large ones (hosts and endpoints sorted by count) kept one core busy at the end of
    // `sawmill run` while the other idled.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(TABLE_NAMES.len());
    let encode_some = || -> Result<Vec<(usize, EncodedTable)>> {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(&name) = TABLE_NAMES.get(i) else {
                return Ok(done);
            };
            let Some(batch) = partial.table(name) else {
                continue;
            };
            if let Some(table) = encode_table(partial, name, &batch, opts, written)? {
                done.push((i, table));
            }
        }
    };
    let mut done = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(encode_some)).collect();
        let mut done = encode_some()?;
        for helper in helpers {
            match helper.join() {
                Ok(more) => done.extend(more?),
                Err(_) => return Err(Error::Pipeline("a summary encoding thread panicked".into())),
            }
        }
        Ok(done)
    })?;
    // In table order, whichever thread encoded what.
    done.sort_unstable_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, table)| table).collect())
}

/// The table `name` encoded, or `None` when its content hash is the one `written` holds.
fn encode_table(
    partial: &Partial,
    name: &'static str,
    batch: &RecordBatch,
    opts: &ParquetOptions,
    written: &HashMap<&'static str, u64>,
) -> Result<Option<EncodedTable>> {
    let content = content_hash(batch)?;
    if written.get(name) == Some(&content) {
        return Ok(None);
    }
    let kv = vec![
        KeyValue::new(meta::VERSION.into(), sawmill_core::VERSION.to_string()),
        KeyValue::new(meta::KIND.into(), format!("summary/{name}")),
        KeyValue::new("sawmill.records".into(), partial.records().to_string()),
        KeyValue::new("sawmill.rejects".into(), partial.rejects().to_string()),
    ];
    let bytes = shard::encode(&[batch], kv, opts)?;
    Ok(Some(EncodedTable {
        name,
        path: layout::summary_table_path(name),
        content,
        bytes,
    }))
}

/// Hashes a batch's schema and values through the Arrow IPC stream form (deterministic for
/// equal batches, and far cheaper than Parquet encoding).
fn content_hash(batch: &RecordBatch) -> Result<u64> {
    struct HashWrite(std::collections::hash_map::DefaultHasher);
    impl std::io::Write for HashWrite {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w =
        arrow::ipc::writer::StreamWriter::try_new(HashWrite(Default::default()), &batch.schema())?;
    w.write(batch)?;
    w.finish()?;
    Ok(w.into_inner()?.0.finish())
}

/// Replaces each table [`encode`] produced (see the module docs). Returns the paths written.
pub async fn write(storage: &dyn Storage, tables: Vec<(String, Vec<u8>)>) -> Result<Vec<String>> {
    let mut paths = Vec::with_capacity(tables.len());
    for (path, bytes) in tables {
        replace(storage, &path, &bytes).await?;
        paths.push(path);
    }
    Ok(paths)
}

/// Writes only what changed since its last successful write. Keep one per output root.
#[derive(Debug, Default)]
pub struct SummaryWriter {
    written: HashMap<&'static str, u64>,
}

impl SummaryWriter {
    /// Content hashes of the tables as last written, for [`encode_changed`].
    pub fn written(&self) -> HashMap<&'static str, u64> {
        self.written.clone()
    }

    /// Replaces each table; a table is remembered as written only once it is in place, so a
    /// failure is retried by the next call. Returns the number of tables written.
    pub async fn write(
        &mut self,
        storage: &dyn Storage,
        tables: Vec<EncodedTable>,
    ) -> Result<usize> {
        self.write_while(storage, tables, || true).await
    }

    /// [`Self::write`], checking `allowed` before each table is replaced: a coordinator whose
    /// leadership ended during the write stops before the next rename.
    pub async fn write_while(
        &mut self,
        storage: &dyn Storage,
        tables: Vec<EncodedTable>,
        allowed: impl Fn() -> bool,
    ) -> Result<usize> {
        let n = tables.len();
        for t in tables {
            if !allowed() {
                return Err(Error::NotLeader(
                    "the lease ended while the summary tables were being replaced".into(),
                ));
            }
            // Forget it first: if the swap fails half way, the next call rewrites it.
            self.written.remove(t.name);
            replace(storage, &t.path, &t.bytes).await?;
            self.written.insert(t.name, t.content);
        }
        Ok(n)
    }
}

/// Stages `bytes` and swaps them in as `path`: rename the current file aside, rename the new
/// one in, delete the aside copy.
async fn replace(storage: &dyn Storage, path: &str, bytes: &[u8]) -> Result<()> {
    let name = layout::summary_table_name(path)
        .ok_or_else(|| Error::Pipeline(format!("{path} is not a summary table path")))?;
    let aside = layout::summary_aside_path(name);
    let staging = layout::temp_staging_path(path);
    if let Err(e) = storage.write(&staging, bytes).await {
        // HDFS creates the file before writing: do not leave an empty one behind.
        let _ = storage.delete(&staging).await;
        return Err(e);
    }
    match storage.replace(&staging, path).await {
        Ok(true) => {
            // An aside copy a crashed swap of an earlier release left behind is stale now.
            let _ = storage.delete(&aside).await;
            return Ok(());
        }
        Ok(false) => {}
        Err(e) => {
            let _ = storage.delete(&staging).await;
            return Err(e);
        }
    }
    let swapped = swap_in(storage, &staging, path, &aside).await;
    if swapped.is_err() {
        let _ = storage.delete(&staging).await;
        // Put the old table back if it was moved aside and the new one is not in.
        if !storage.exists(path).await.unwrap_or(true) {
            let _ = storage.rename(&aside, path).await;
        }
    }
    swapped
}

async fn swap_in(storage: &dyn Storage, staging: &str, path: &str, aside: &str) -> Result<()> {
    if storage.exists(path).await? {
        // An aside copy left by a crash is older than `path`: drop it to make room.
        storage.delete(aside).await?;
        storage.rename(path, aside).await?;
    }
    storage.rename(staging, path).await?;
    storage.delete(aside).await
}

/// Reads every summary table, keyed by table name. A table being replaced is read from its
/// aside copy (see the module docs).
pub async fn read(storage: &dyn Storage) -> Result<BTreeMap<String, RecordBatch>> {
    let names: BTreeSet<String> = storage
        .list(SUMMARY_DIR)
        .await?
        .iter()
        .filter_map(|p| layout::summary_table_name(p).or_else(|| layout::summary_aside_name(p)))
        .map(str::to_string)
        .collect();
    let mut out = BTreeMap::new();
    for name in names {
        let Some(batches) = read_table(storage, &name).await? else {
            continue;
        };
        let batch = match batches.as_slice() {
            [] => continue,
            [b] => b.clone(),
            many => arrow::compute::concat_batches(&many[0].schema(), many)?,
        };
        out.insert(name, batch);
    }
    Ok(out)
}

/// The table, else its aside copy, alternating a few times: a swap renames the table aside,
/// the new one in, and deletes the aside copy, so a read can find either gone meanwhile.
/// `None` when neither exists any more; a file that exists but cannot be read is an error.
async fn read_table(storage: &dyn Storage, name: &str) -> Result<Option<Vec<RecordBatch>>> {
    let path = layout::summary_table_path(name);
    let aside = layout::summary_aside_path(name);
    let mut failed = None;
    for p in [&path, &aside, &path, &aside, &path] {
        match crate::storage::read_parquet(storage, p).await {
            Ok((batches, _)) => return Ok(Some(batches)),
            Err(e) => failed = Some(e),
        }
    }
    let gone = !storage.exists(&path).await? && !storage.exists(&aside).await?;
    match failed {
        Some(e) if !gone => Err(e),
        _ => Ok(None),
    }
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

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
