//! Times Parquet encoding of real shard files under several writer settings (a tool for
//! choosing the defaults in `shard.rs`, see BENCHMARKS.md): decodes every `*.parquet` under a
//! `records/` directory, then encodes all of it with each variant, best of `REPS`.
//!
//! Usage: `cargo run --release --example encode_settings -- OUTPUT_DIR/records [REPS]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;
use sawmill_core::schema::col;
use std::path::Path;
use std::time::Instant;

/// A change to the writer settings for one column (name, Arrow type).
type Setting = fn(WriterPropertiesBuilder, &str, &DataType) -> WriterPropertiesBuilder;

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
}

fn base() -> WriterPropertiesBuilder {
    let mut b = WriterProperties::builder();
    for c in [col::OFFSET, col::TIMESTAMP] {
        let p = ColumnPath::from(c);
        b = b
            .set_column_dictionary_enabled(p.clone(), false)
            .set_column_encoding(p, Encoding::DELTA_BINARY_PACKED);
    }
    b.set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(128 * 1024))
}

fn no_stats(mut b: WriterPropertiesBuilder, cols: &[&str]) -> WriterPropertiesBuilder {
    for c in cols {
        b = b.set_column_statistics_enabled(ColumnPath::from(*c), EnabledStatistics::None);
    }
    b
}

fn no_dict(mut b: WriterPropertiesBuilder, cols: &[&str]) -> WriterPropertiesBuilder {
    for c in cols {
        b = b.set_column_dictionary_enabled(ColumnPath::from(*c), false);
    }
    b
}

fn encode(batches: &[RecordBatch], props: &WriterProperties) -> usize {
    let mut total = 0;
    for b in batches {
        let mut buf = Vec::new();
        let mut w = ArrowWriter::try_new(&mut buf, b.schema(), Some(props.clone())).unwrap();
        w.write(b).unwrap();
        w.close().unwrap();
        total += buf.len();
    }
    total
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(
        args.get(1)
            .expect("usage: encode_settings RECORDS_DIR [REPS]"),
    );
    let reps: usize = args.get(2).map_or(5, |r| r.parse().unwrap());
    let mut paths = Vec::new();
    files(dir, &mut paths);
    let mut batches = Vec::new();
    for p in &paths {
        let (bs, _) = sawmill_core::shard::decode(std::fs::read(p).unwrap(), "x").unwrap();
        batches.push(arrow::compute::concat_batches(&bs[0].schema(), &bs).unwrap());
    }
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    println!("{} files, {rows} rows", batches.len());
    let variants: Vec<(&str, WriterProperties)> = vec![
        ("before: dictionary + statistics on all", base().build()),
        (
            "shipped: ParquetOptions::default()",
            sawmill_core::shard::ParquetOptions::default().properties(Vec::new()),
        ),
        (
            "no statistics at all",
            base()
                .set_statistics_enabled(EnabledStatistics::None)
                .build(),
        ),
    ];
    // Each column alone, under each column setting: where the encoding time goes.
    let schema = batches[0].schema();
    let settings: Vec<(&str, Setting)> = vec![
        ("before", |b, _, _| b),
        ("no stats", |b, c, _| no_stats(b, &[c])),
        ("plain+stats", |b, c, _| no_dict(b, &[c])),
        ("plain", |b, c, _| no_stats(no_dict(b, &[c]), &[c])),
        ("delta", |b, c, t| {
            let e = match t {
                DataType::Utf8 | DataType::Binary => Encoding::DELTA_BYTE_ARRAY,
                DataType::Boolean => Encoding::RLE,
                _ => Encoding::DELTA_BINARY_PACKED,
            };
            no_stats(no_dict(b, &[c]), &[c]).set_column_encoding(ColumnPath::from(c), e)
        }),
    ];
    for (i, f) in schema.fields().iter().enumerate() {
        let one: Vec<RecordBatch> = batches.iter().map(|b| b.project(&[i]).unwrap()).collect();
        let mut line = format!("  column {:20}", f.name());
        for (name, set) in &settings {
            let props = set(base(), f.name(), f.data_type()).build();
            let mut best = f64::MAX;
            let mut bytes = 0;
            for _ in 0..reps {
                let t = Instant::now();
                bytes = encode(&one, &props);
                best = best.min(t.elapsed().as_secs_f64());
            }
            line += &format!("  {name} {best:.3} s {:>8} B", bytes);
        }
        println!("{line}");
    }
    // Each column alone under the shipped settings, with its codec changed: what a zstd
    // codec (a compression and a decompression context per column and file) costs where the
    // column's pages hold next to nothing.
    let shipped = || sawmill_core::shard::ParquetOptions::default().properties(Vec::new());
    let codecs: Vec<(&str, Setting)> = vec![
        ("zstd", |b, _, _| b),
        ("lz4", |b, c, _| {
            b.set_column_compression(ColumnPath::from(c), Compression::LZ4_RAW)
        }),
        ("none", |b, c, _| {
            b.set_column_compression(ColumnPath::from(c), Compression::UNCOMPRESSED)
        }),
        ("delta+none", |b, c, t| {
            let e = match t {
                DataType::Utf8 | DataType::Binary => Encoding::DELTA_BYTE_ARRAY,
                DataType::Boolean => Encoding::RLE,
                _ => Encoding::DELTA_BINARY_PACKED,
            };
            b.set_column_dictionary_enabled(ColumnPath::from(c), false)
                .set_column_encoding(ColumnPath::from(c), e)
                .set_column_compression(ColumnPath::from(c), Compression::UNCOMPRESSED)
        }),
    ];
    for (i, f) in schema.fields().iter().enumerate() {
        let one: Vec<RecordBatch> = batches.iter().map(|b| b.project(&[i]).unwrap()).collect();
        let mut line = format!("  codec {:20}", f.name());
        for (name, set) in &codecs {
            let props = set(shipped().into_builder(), f.name(), f.data_type()).build();
            let mut best = f64::MAX;
            let mut bytes = 0;
            for _ in 0..reps {
                let t = Instant::now();
                bytes = encode(&one, &props);
                best = best.min(t.elapsed().as_secs_f64());
            }
            line += &format!("  {name} {best:.4} s {:>8} B", bytes);
        }
        println!("{line}");
    }
    for (name, props) in &variants {
        let mut best = f64::MAX;
        let mut bytes = 0;
        for _ in 0..reps {
            let t = Instant::now();
            bytes = encode(&batches, props);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{name:40} {best:.3} s  {:.1} M rows/s  {bytes} bytes",
            rows as f64 / best / 1e6
        );
    }
}
