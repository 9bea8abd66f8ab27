//! Parquet encoding of shards and summary tables, with Sawmill's key-value metadata. Pure: bytes
//! in memory, no I/O; where files go is [`crate::layout`]'s business.

use crate::batch::ParsedChunk;
use crate::error::{Error, Result};
use crate::layout::ShardRange;
use crate::record::format_date;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

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

    /// The settings [`ParquetOptions::properties`] builds.
    fn builder(&self, kv: Vec<KeyValue>) -> WriterPropertiesBuilder {
        use crate::schema::col;
        // Per-column choices measured column by column on the generated 2 M lines
        // (`core/examples/encode_settings.rs`, BENCHMARKS.md "Parquet settings per column"):
        // together a quarter of the encoding time, the files 0.1 % smaller.
        let mut b = WriterProperties::builder();
        // Offsets and timestamps are nearly all distinct and nearly sorted: a dictionary is
        // built, hashed into and then abandoned for every page; deltas encode them smaller
        // without a hash table.
        for column in [col::OFFSET, col::TIMESTAMP] {
            let path = ColumnPath::from(column);
            b = b
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        }
        // One value per file (a file holds one source, partition and date) or nearly: a
        // dictionary hashes every row to find that one value again, while plain values
        // compress to nothing.
        for column in [
            col::SOURCE,
            col::PARTITION,
            col::DATE,
            col::TZ_OFFSET_MINUTES,
            col::FORMAT,
        ] {
            b = b.set_column_dictionary_enabled(ColumnPath::from(column), false);
        }
        // Min/max of unsorted text prunes nothing (`GET`..`POST`, `/`..`/~`) and costs a
        // string comparison per row; the constant ones are in the path and the key-value
        // metadata. Numbers, dates and timestamps keep their statistics.
        for column in [
            col::SOURCE,
            col::HOST,
            col::IDENT,
            col::USER,
            col::METHOD,
            col::ENDPOINT,
            col::PROTOCOL,
            col::REFERER,
            col::USER_AGENT,
            col::FORMAT,
        ] {
            b = b.set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
        }
        b = b.set_compression(self.compression);
        // zstd only where it earns its codec: parquet-rs makes a compression and a
        // decompression context per column and file (~30 µs, most of it the CPUID the contexts
        // run, which traps in a virtual machine), while these columns' pages hold one value per
        // file or nearly (offsets are deltas of one) and lz4, whose codec costs nothing to make,
        // shrinks them ~250:1 too (BENCHMARKS.md "Codec per column": 2 – 3 ms per column over
        // 2 M rows for 0.3 % more bytes in all).
        if matches!(self.compression, Compression::ZSTD(_)) {
            for column in [
                col::SOURCE,
                col::PARTITION,
                col::OFFSET,
                col::DATE,
                col::TZ_OFFSET_MINUTES,
                col::METHOD,
                col::FORMAT,
                col::TRUNCATED_FIELD,
            ] {
                b = b.set_column_compression(ColumnPath::from(column), Compression::LZ4_RAW);
            }
        }
        b.set_max_row_group_row_count(Some(self.row_group_rows.max(1)))
            .set_key_value_metadata(Some(kv))
    }

    /// The writer settings of every file Sawmill writes, with `kv` as key-value metadata.
    pub fn properties(&self, kv: Vec<KeyValue>) -> WriterProperties {
        self.builder(kv).build()
    }

    /// [`ParquetOptions::properties`] for a file holding `batches` (one schema): a column null
    /// in every row is stored uncompressed. Its pages hold a single run of definition levels,
    /// which no codec shrinks (the common format's ident, user, referer and user agent), so a
    /// codec would cost its making and nothing else.
    fn properties_for(&self, kv: Vec<KeyValue>, batches: &[&RecordBatch]) -> WriterProperties {
        let mut b = self.builder(kv);
        if let Some(first) = batches.first() {
            for (i, field) in first.schema().fields().iter().enumerate() {
                let all_null = batches.iter().all(|batch| {
                    batch
                        .columns()
                        .get(i)
                        .is_some_and(|c| c.null_count() == c.len())
                });
                if all_null {
                    b = b.set_column_compression(
                        ColumnPath::from(field.name().as_str()),
                        Compression::UNCOMPRESSED,
                    );
                }
            }
        }
        b.build()
    }
}

/// Key-value metadata of one of a shard's files.
fn shard_kv(range: &ShardRange, kind: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new(meta::VERSION.into(), crate::VERSION.to_string()),
        KeyValue::new(meta::KIND.into(), kind.to_string()),
        KeyValue::new(meta::SOURCE.into(), range.source.clone()),
        KeyValue::new(meta::PARTITION.into(), range.partition.to_string()),
        KeyValue::new(meta::FIRST_OFFSET.into(), range.first.to_string()),
        KeyValue::new(meta::LAST_OFFSET.into(), range.last.to_string()),
    ]
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
        .ok_or_else(|| Error::Internal("encode called with no batches".into()))?;
    let mut buf = Vec::new();
    let perr = |source| Error::Parquet {
        path: "<memory>".into(),
        source,
    };
    let props = opts.properties_for(kv, batches);
    let mut w = ArrowWriter::try_new(&mut buf, schema, Some(props)).map_err(perr)?;
    for b in batches {
        w.write(b).map_err(perr)?;
    }
    w.close().map_err(perr)?;
    Ok(buf)
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
        let mut kv = shard_kv(range, "records");
        kv.push(KeyValue::new(meta::DATE.into(), format_date(date)));
        files.push(EncodedFile {
            path: range.records_path(date),
            bytes: encode(&[batch], kv, opts)?,
            rows: batch.num_rows() as u64,
        });
    }
    if let Some(rejects) = &chunk.rejects {
        files.push(EncodedFile {
            path: range.rejects_path(),
            bytes: encode(&[rejects], shard_kv(range, "rejects"), opts)?,
            rows: rejects.num_rows() as u64,
        });
    }
    Ok(files)
}

/// A Parquet file's key-value metadata as `(key, value)` pairs, in file order (a missing value
/// reads as empty).
pub type KeyValues = Vec<(String, String)>;

/// Decodes a whole Parquet file into batches, with its key-value metadata. `path` is for
/// messages only.
pub fn decode(bytes: Vec<u8>, path: &str) -> Result<(Vec<RecordBatch>, KeyValues)> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bytes = bytes::Bytes::from(bytes);
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

    /// The per-column settings BENCHMARKS.md measured are the ones written, and the records
    /// read back unchanged.
    #[test]
    fn columns_are_encoded_as_measured() {
        use crate::analytics::{AnalyticsConfig, Partial};
        use crate::batch::ChunkParser;
        use crate::schema::col;
        use parquet::basic::Encoding as E;
        use parquet::file::reader::{FileReader, SerializedFileReader};

        let mut parser = ChunkParser::new("logs".into(), 3);
        let mut partial = Partial::new(&AnalyticsConfig::default());
        let mut lines = String::new();
        for i in 0..3000 {
            lines += &format!(
                "h{} - - [01/Jul/1995:00:{:02}:01 -0400] \"{} /p/{} HTTP/1.0\" {} {}\n",
                i % 97,
                i % 60,
                ["GET", "POST", "HEAD"][i % 3],
                i % 31,
                [200, 304, 404][i % 3],
                i
            );
        }
        let pushed = parser.push_lines(lines.as_bytes(), 100, &mut partial);
        assert_eq!(pushed.next, 3100, "every line taken");
        let chunk = parser.finish().unwrap();
        let range = ShardRange {
            source: "logs".into(),
            partition: 3,
            first: 100,
            last: 3099,
        };
        let files = encode_chunk(&chunk, &range, &ParquetOptions::default()).unwrap();
        assert_eq!(files.len(), 1);
        let bytes = bytes::Bytes::from(files[0].bytes.clone());
        let reader = SerializedFileReader::new(bytes).unwrap();
        let rg = reader.metadata().row_group(0);
        let column = |name: &str| {
            (0..rg.num_columns())
                .map(|i| rg.column(i))
                .find(|c| c.column_path().string() == name)
                .unwrap_or_else(|| panic!("no column {name}"))
        };
        let dictionary = |name: &str| column(name).encodings().any(|e| e == E::RLE_DICTIONARY);
        let stats = |name: &str| column(name).statistics().is_some();
        for name in [col::HOST, col::ENDPOINT, col::METHOD, col::STATUS] {
            assert!(dictionary(name), "{name} keeps its dictionary");
        }
        for name in [
            col::SOURCE,
            col::PARTITION,
            col::DATE,
            col::FORMAT,
            col::OFFSET,
        ] {
            assert!(!dictionary(name), "{name} has no dictionary");
        }
        assert!(column(col::OFFSET)
            .encodings()
            .any(|e| e == E::DELTA_BINARY_PACKED));
        for name in [
            col::HOST,
            col::ENDPOINT,
            col::METHOD,
            col::SOURCE,
            col::FORMAT,
        ] {
            assert!(!stats(name), "{name} has no statistics");
        }
        for name in [
            col::DATE,
            col::STATUS,
            col::TIMESTAMP,
            col::OFFSET,
            col::CONTENT_SIZE,
        ] {
            assert!(stats(name), "{name} keeps its statistics");
        }
        let codec = |name: &str| column(name).compression();
        for name in [col::HOST, col::ENDPOINT, col::TIMESTAMP, col::STATUS] {
            assert!(
                matches!(codec(name), Compression::ZSTD(_)),
                "{name} is zstd"
            );
        }
        for name in [
            col::SOURCE,
            col::PARTITION,
            col::OFFSET,
            col::DATE,
            col::METHOD,
        ] {
            assert_eq!(codec(name), Compression::LZ4_RAW, "{name} is lz4");
        }
        // The common format has no ident, user, referer or user agent: all null.
        for name in [col::IDENT, col::USER, col::REFERER, col::USER_AGENT] {
            assert_eq!(codec(name), Compression::UNCOMPRESSED, "{name} is all null");
        }
        let (back, _) = decode(files[0].bytes.clone(), "test").unwrap();
        let batch = chunk.by_date.values().next().unwrap();
        let back = arrow::compute::concat_batches(&back[0].schema(), &back).unwrap();
        assert_eq!(&back, batch, "the records read back unchanged");

        // Another codec chosen is used for every column holding a value.
        let snappy = ParquetOptions {
            compression: Compression::SNAPPY,
            ..ParquetOptions::default()
        };
        let file = &encode_chunk(&chunk, &range, &snappy).unwrap()[0];
        let reader = SerializedFileReader::new(bytes::Bytes::from(file.bytes.clone())).unwrap();
        let rg = reader.metadata().row_group(0);
        let codecs: Vec<_> = rg
            .columns()
            .iter()
            .map(|c| (c.column_path().string(), c.compression()))
            .collect();
        for (name, codec) in &codecs {
            let all_null =
                [col::IDENT, col::USER, col::REFERER, col::USER_AGENT].contains(&&**name);
            let want = if all_null {
                Compression::UNCOMPRESSED
            } else {
                Compression::SNAPPY
            };
            assert_eq!(*codec, want, "{name} under snappy");
        }
        let (back, _) = decode(file.bytes.clone(), "test").unwrap();
        let back = arrow::compute::concat_batches(&back[0].schema(), &back).unwrap();
        assert_eq!(&back, batch, "read back unchanged under snappy too");
    }

    /// A combined-format file's referer and user agent hold text, so they stay compressed.
    #[test]
    fn columns_holding_values_stay_compressed() {
        use crate::analytics::{AnalyticsConfig, Partial};
        use crate::batch::ChunkParser;
        use crate::schema::col;
        use parquet::file::reader::{FileReader, SerializedFileReader};

        let mut parser = ChunkParser::new("logs".into(), 0);
        let mut partial = Partial::new(&AnalyticsConfig::default());
        let line = "h1 - frank [01/Jul/1995:00:00:01 -0400] \"GET / HTTP/1.0\" 200 5 \"http://r/\" \"agent/1\"\n";
        let pushed = parser.push_lines(line.repeat(50).as_bytes(), 0, &mut partial);
        assert_eq!(pushed.next, 50, "every line taken");
        let chunk = parser.finish().unwrap();
        let range = ShardRange {
            source: "logs".into(),
            partition: 0,
            first: 0,
            last: 49,
        };
        let file = &encode_chunk(&chunk, &range, &ParquetOptions::default()).unwrap()[0];
        let reader = SerializedFileReader::new(bytes::Bytes::from(file.bytes.clone())).unwrap();
        let rg = reader.metadata().row_group(0);
        for c in rg.columns() {
            let name = c.column_path().string();
            if [col::USER, col::REFERER, col::USER_AGENT].contains(&name.as_str()) {
                assert!(
                    matches!(c.compression(), Compression::ZSTD(_)),
                    "{name} is zstd"
                );
            }
            if name == col::IDENT {
                assert_eq!(
                    c.compression(),
                    Compression::UNCOMPRESSED,
                    "ident is all null"
                );
            }
        }
    }
}
