//! Typed access to the summary tables' columns, failing with the table and column named.

use crate::error::{Error, Result};
use arrow::array::{
    Array, BinaryArray, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array,
    StringArray,
};
use arrow::record_batch::RecordBatch;
use sawmill_core::analytics::{schema, TABLE_NAMES};
use std::collections::BTreeMap;

/// The summary tables by name, as `sawmill_common::summary::read` returns them.
pub type Tables = BTreeMap<String, RecordBatch>;

/// One summary table, by name.
#[derive(Clone, Copy)]
pub(crate) struct Table<'a> {
    name: &'a str,
    batch: &'a RecordBatch,
}

/// `tables` with every summary table present: the summary's Parquet reader returns nothing for
/// a table without rows (no rejects, no 404s), so an absent known table is an empty one.
pub(crate) fn complete(tables: &Tables) -> Tables {
    let mut out = tables.clone();
    for name in TABLE_NAMES {
        if !out.contains_key(name) {
            if let Some(schema) = schema(name) {
                out.insert(name.to_string(), RecordBatch::new_empty(schema));
            }
        }
    }
    out
}

pub(crate) fn table<'a>(tables: &'a Tables, name: &'a str) -> Result<Table<'a>> {
    let batch = tables
        .get(name)
        .ok_or_else(|| Error::MissingTable(name.to_string()))?;
    Ok(Table { name, batch })
}

impl<'a> Table<'a> {
    pub fn rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// Checks a one-row table (`totals`, `content_stats`, `null_value_count`) has its row.
    pub fn one_row(&self) -> Result<()> {
        match self.rows() {
            1 => Ok(()),
            rows => Err(Error::NotOneRow {
                table: self.name.to_string(),
                rows,
            }),
        }
    }

    /// Column names in schema order.
    pub fn column_names(&self) -> Vec<String> {
        let schema = self.batch.schema();
        schema.fields().iter().map(|f| f.name().clone()).collect()
    }

    fn col<T: Array + 'static>(&self, column: &str, expected: &'static str) -> Result<&'a T> {
        self.batch
            .column_by_name(column)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| Error::Column {
                table: self.name.to_string(),
                column: column.to_string(),
                expected,
            })
    }

    pub fn i64s(&self, column: &str) -> Result<&'a Int64Array> {
        self.col(column, "Int64")
    }

    pub fn i32s(&self, column: &str) -> Result<&'a Int32Array> {
        self.col(column, "Int32")
    }

    pub fn f64s(&self, column: &str) -> Result<&'a Float64Array> {
        self.col(column, "Float64")
    }

    pub fn dates(&self, column: &str) -> Result<&'a Date32Array> {
        self.col(column, "Date32")
    }

    pub fn strs(&self, column: &str) -> Result<&'a StringArray> {
        self.col(column, "Utf8")
    }

    pub fn bins(&self, column: &str) -> Result<&'a BinaryArray> {
        self.col(column, "Binary")
    }

    /// Row `i` of the `overflow` column: whether it is the `(other)` row a cap folded keys
    /// into. Summaries written before the caps have no such column: never.
    pub fn overflow(&self, i: usize) -> bool {
        self.batch
            .column_by_name("overflow")
            .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
            .is_some_and(|a| a.is_valid(i) && a.value(i))
    }

    /// Row `i` of an `Int64` column, or `default` when the table has no such column.
    pub fn i64_or(&self, column: &str, i: usize, default: i64) -> i64 {
        self.batch
            .column_by_name(column)
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .map_or(default, |a| a.value(i))
    }
}

/// Row `i` of a nullable column, `None` where null.
pub(crate) fn opt<A: Array, T>(a: &A, i: usize, get: impl Fn(&A, usize) -> T) -> Option<T> {
    (!a.is_null(i)).then(|| get(a, i))
}

/// Row `i` of a nullable string column, `None` where null.
pub(crate) fn opt_str(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i)).then(|| a.value(i))
}
