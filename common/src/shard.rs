//! Parquet shards: deterministic names, Sawmill metadata, staged writes published by rename.
//!
//! A shard's final name is derived only from what it covers — source, partition and the first and
//! last offset (or line) of the input range it was cut from — so writing the same range twice
//! can only ever produce the same file name, never a duplicate.

use crate::batch::ParsedChunk;
use crate::error::{Error, Result};
use crate::record::format_date;
use crate::storage::{write_atomic, Storage};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

pub const RECORDS_DIR: &str = "records";
pub const REJECTS_DIR: &str = "rejects";
pub const SUMMARY_DIR: &str = "summary";

/// Key-value metadata keys written into every Parquet file.
pub mod meta {
    pub const VERSION: &str = "sawmill.version";
    pub const KIND: &str = "sawmill.kind";
    pub const SOURCE: &str = "sawmill.source";
    pub const PARTITION: &str = "sawmill.partition";
    pub const FIRST_OFFSET: &str = "sawmill.first_offset";
    pub const LAST_OFFSET: &str = "sawmill.last_offset";
    pub const DATE: &str = "sawmill.date";
}

/// Parquet writer settings. Defaults: zstd level 1 (a good ratio at near-snappy speed), row
/// groups of 128 Ki rows (enough for page statistics to prune dates and statuses).
#[derive(Debug, Clone)]
pub struct ParquetOptions {
    pub compression: Compression,
    pub row_group_rows: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            compression: Compression::ZSTD(ZstdLevel::default()),
            row_group_rows: 128 * 1024,
        }
    }
}

impl ParquetOptions {
    /// Parses `none`, `snappy`, `lz4`, `zstd` or `zstd:LEVEL`.
    pub fn parse_compression(s: &str) -> Result<Compression> {
        let bad = || {
            Error::Config(format!(
                "unknown compression {s:?}: use none, snappy, lz4, zstd or zstd:LEVEL (1-22)"
            ))
        };
        Ok(match s {
            "none" | "uncompressed" => Compression::UNCOMPRESSED,
            "snappy" => Compression::SNAPPY,
            "lz4" => Compression::LZ4_RAW,
            "zstd" => Compression::ZSTD(ZstdLevel::default()),
            _ => {
                let level = s
                    .strip_prefix("zstd:")
                    .ok_or_else(bad)?
                    .parse::<i32>()
                    .map_err(|_| bad())?;
                Compression::ZSTD(ZstdLevel::try_new(level).map_err(|_| bad())?)
            }
        })
    }

    fn properties(&self, kv: Vec<KeyValue>) -> WriterProperties {
        WriterProperties::builder()
            .set_compression(self.compression)
            .set_max_row_group_row_count(Some(self.row_group_rows.max(1)))
            .set_key_value_metadata(Some(kv))
            .build()
    }
}

/// What a shard covers: `(source, partition, first..=last)` of the input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardRange {
    pub source: String,
    pub partition: i32,
    pub first: i64,
    pub last: i64,
}

impl ShardRange {
    /// `<source>-p<partition>-<first>-<last>.parquet`, zero-padded so names sort by offset.
    pub fn file_name(&self) -> String {
        format!(
            "{}-p{:05}-{:020}-{:020}.parquet",
            sanitize(&self.source),
            self.partition,
            self.first,
            self.last
        )
    }

    fn kv(&self, kind: &str) -> Vec<KeyValue> {
        vec![
            KeyValue::new(meta::VERSION.into(), crate::VERSION.to_string()),
            KeyValue::new(meta::KIND.into(), kind.to_string()),
            KeyValue::new(meta::SOURCE.into(), self.source.clone()),
            KeyValue::new(meta::PARTITION.into(), self.partition.to_string()),
            KeyValue::new(meta::FIRST_OFFSET.into(), self.first.to_string()),
            KeyValue::new(meta::LAST_OFFSET.into(), self.last.to_string()),
        ]
    }
}

/// Keeps names portable: anything but `[A-Za-z0-9._-]` becomes `_`.
pub fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        "_".into()
    } else {
        out
    }
}

/// Encodes batches (one schema) as a Parquet file in memory.
pub fn encode(
    batches: &[&RecordBatch],
    kv: Vec<KeyValue>,
    opts: &ParquetOptions,
) -> Result<Vec<u8>> {
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| Error::Pipeline("encode called with no batches".into()))?;
    let mut buf = Vec::new();
    let perr = |source| Error::Parquet {
        path: "<memory>".into(),
        source,
    };
    let mut w = ArrowWriter::try_new(&mut buf, schema, Some(opts.properties(kv))).map_err(perr)?;
    for b in batches {
        w.write(b).map_err(perr)?;
    }
    w.close().map_err(perr)?;
    Ok(buf)
}

/// The final path of a records shard for one wall-clock date.
pub fn records_path(range: &ShardRange, date: i32) -> String {
    format!(
        "{RECORDS_DIR}/dt={}/{}",
        format_date(date),
        range.file_name()
    )
}

pub fn rejects_path(range: &ShardRange) -> String {
    format!("{REJECTS_DIR}/{}", range.file_name())
}

/// A shard file ready to publish: final path, bytes, rows.
#[derive(Debug)]
pub struct EncodedFile {
    pub path: String,
    pub bytes: Vec<u8>,
    pub rows: u64,
}

/// Encodes a parsed chunk into its files (one per date, plus rejects), without writing them.
pub fn encode_chunk(
    chunk: &ParsedChunk,
    range: &ShardRange,
    opts: &ParquetOptions,
) -> Result<Vec<EncodedFile>> {
    let mut files = Vec::with_capacity(chunk.by_date.len() + 1);
    for (&date, batch) in &chunk.by_date {
        let mut kv = range.kv("records");
        kv.push(KeyValue::new(meta::DATE.into(), format_date(date)));
        files.push(EncodedFile {
            path: records_path(range, date),
            bytes: encode(&[batch], kv, opts)?,
            rows: batch.num_rows() as u64,
        });
    }
    if let Some(rejects) = &chunk.rejects {
        files.push(EncodedFile {
            path: rejects_path(range),
            bytes: encode(&[rejects], range.kv("rejects"), opts)?,
            rows: rejects.num_rows() as u64,
        });
    }
    Ok(files)
}

/// Encodes and publishes a parsed chunk. Returns the published paths.
pub fn write_chunk(
    storage: &dyn Storage,
    chunk: &ParsedChunk,
    range: &ShardRange,
    opts: &ParquetOptions,
) -> Result<Vec<String>> {
    let mut paths = Vec::new();
    for f in encode_chunk(chunk, range, opts)? {
        write_atomic(storage, &f.path, &f.bytes)?;
        paths.push(f.path);
    }
    Ok(paths)
}

/// A Parquet file's key-value metadata as `(key, value)` pairs, in file order (a missing value
/// reads as empty).
pub type KeyValues = Vec<(String, String)>;

/// Reads a whole Parquet file from storage into batches, with its key-value metadata.
pub fn read(storage: &dyn Storage, path: &str) -> Result<(Vec<RecordBatch>, KeyValues)> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bytes = bytes::Bytes::from(storage.read(path)?);
    let perr = |source| Error::Parquet {
        path: path.to_string(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(perr)?;
    let kv = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let reader = builder.build().map_err(perr)?;
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((batches, kv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_and_sortable() {
        let r = ShardRange {
            source: "nasa jul/95".into(),
            partition: 2,
            first: 100,
            last: 199,
        };
        assert_eq!(
            r.file_name(),
            "nasa_jul_95-p00002-00000000000000000100-00000000000000000199.parquet"
        );
        let later = ShardRange {
            first: 200,
            last: 1000,
            ..r.clone()
        };
        assert!(later.file_name() > r.file_name());
    }

    #[test]
    fn compression_names() {
        assert_eq!(
            ParquetOptions::parse_compression("snappy").unwrap(),
            Compression::SNAPPY
        );
        assert!(ParquetOptions::parse_compression("zstd:3").is_ok());
        assert!(ParquetOptions::parse_compression("zstd:99").is_err());
        assert!(ParquetOptions::parse_compression("brotli")
            .unwrap_err()
            .to_string()
            .contains("use none"));
    }
}
