//! Reads the published rows (`records/` and `rejects/` Parquet under an output root) one file at
//! a time and hands each row's `(source, partition, offset, fingerprint)` to the checker.

use super::check::Row;
use crate::CliError;
use arrow::array::{
    Array, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use sawmill_common::storage::{read_parquet, Storage};
use sawmill_core::layout::{RECORDS_DIR, REJECTS_DIR};
use sawmill_core::schema::col;

/// What one published row says: where its line was, and its fingerprint.
pub struct RowAt<'a> {
    pub source: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub fingerprint: u64,
}

/// Counts of what was read.
#[derive(Debug, Default, Clone, Copy)]
pub struct Read {
    pub files: u64,
    pub records: u64,
    pub rejects: u64,
}

fn corrupt(path: &str, what: &str) -> CliError {
    CliError::Common(sawmill_common::Error::Corrupt {
        what: path.to_string(),
        message: format!("{what}: is this a Sawmill output root of this version?"),
    })
}

fn column<'a, T: 'static>(b: &'a RecordBatch, name: &str, path: &str) -> Result<&'a T, CliError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| corrupt(path, &format!("no column {name} of the expected type")))
}

/// Reads every Parquet file under `records/` and `rejects/`, calling `on_row` for each row.
pub async fn read_rows(
    storage: &dyn Storage,
    mut on_row: impl FnMut(RowAt<'_>),
) -> Result<Read, CliError> {
    let mut read = Read::default();
    for dir in [RECORDS_DIR, REJECTS_DIR] {
        let mut paths = storage.list(dir).await?;
        paths.sort();
        for path in paths.iter().filter(|p| p.ends_with(".parquet")) {
            let (batches, _) = read_parquet(storage, path).await?;
            read.files += 1;
            for b in &batches {
                let rows = if dir == RECORDS_DIR {
                    records(b, path, &mut on_row)?
                } else {
                    rejects(b, path, &mut on_row)?
                };
                if dir == RECORDS_DIR {
                    read.records += rows;
                } else {
                    read.rejects += rows;
                }
            }
        }
    }
    Ok(read)
}

fn opt_str(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn records(
    b: &RecordBatch,
    path: &str,
    on_row: &mut impl FnMut(RowAt<'_>),
) -> Result<u64, CliError> {
    let source = column::<StringArray>(b, col::SOURCE, path)?;
    let partition = column::<Int32Array>(b, col::PARTITION, path)?;
    let offset = column::<Int64Array>(b, col::OFFSET, path)?;
    let host = column::<StringArray>(b, col::HOST, path)?;
    let ts = column::<TimestampMicrosecondArray>(b, col::TIMESTAMP, path)?;
    let endpoint = column::<StringArray>(b, col::ENDPOINT, path)?;
    let status = column::<Int32Array>(b, col::STATUS, path)?;
    let size = column::<Int64Array>(b, col::CONTENT_SIZE, path)?;
    for i in 0..b.num_rows() {
        let row = Row::Record {
            host: host.value(i),
            timestamp_micros: ts.value(i),
            endpoint: opt_str(endpoint, i),
            status: status.value(i),
            content_size: (!size.is_null(i)).then(|| size.value(i)),
        };
        on_row(RowAt {
            source: source.value(i),
            partition: partition.value(i),
            offset: offset.value(i),
            fingerprint: row.fingerprint(),
        });
    }
    Ok(b.num_rows() as u64)
}

fn rejects(
    b: &RecordBatch,
    path: &str,
    on_row: &mut impl FnMut(RowAt<'_>),
) -> Result<u64, CliError> {
    let source = column::<StringArray>(b, col::SOURCE, path)?;
    let partition = column::<Int32Array>(b, col::PARTITION, path)?;
    let offset = column::<Int64Array>(b, col::OFFSET, path)?;
    let reason = column::<StringArray>(b, col::REASON, path)?;
    let raw = column::<BinaryArray>(b, col::RAW, path)?;
    for i in 0..b.num_rows() {
        let row = Row::Reject {
            reason: reason.value(i),
            raw: raw.value(i),
        };
        on_row(RowAt {
            source: source.value(i),
            partition: partition.value(i),
            offset: offset.value(i),
            fingerprint: row.fingerprint(),
        });
    }
    Ok(b.num_rows() as u64)
}
