//! The merged `summary/` tables against a batch recomputation: exact equality of every table,
//! every column, every row (order included: each table's row order is deterministic), except
//! for tables past an analytics cap, compared by what the caps keep exact ([`super::capped`]).

use super::capped;
use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;
use std::collections::BTreeMap;

/// One table that differs, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDiff {
    pub table: String,
    pub problem: String,
}

/// Every difference between the expected tables (`want`, from the recomputation) and the
/// published ones (`got`); empty when they are equal.
pub fn compare(
    want: &BTreeMap<String, RecordBatch>,
    got: &BTreeMap<String, RecordBatch>,
) -> Vec<TableDiff> {
    let mut diffs = Vec::new();
    let mut diff = |table: &str, problem: String| {
        diffs.push(TableDiff {
            table: table.to_string(),
            problem,
        })
    };
    // Past a cap, which hosts or endpoints are listed depends on merge order: those tables are
    // compared by what the caps keep exact (`capped`).
    let over = |t: &str| {
        [want.get(t), got.get(t)]
            .into_iter()
            .flatten()
            .any(capped::overflowed)
    };
    let (hosts_over, endpoints_over) = (over("host_count"), over("endpoint_count"));
    for (name, w) in want {
        let Some(g) = got.get(name) else {
            diff(name, "missing from summary/".into());
            continue;
        };
        let problem = match name.as_str() {
            "host_count" if hosts_over => capped::compare_key_table(w, g),
            "endpoint_count" if endpoints_over => capped::compare_key_table(w, g),
            "table_404" if hosts_over || endpoints_over => {
                capped::compare_rows(w, g, &[], &["host", "endpoint"])
            }
            "unique_host_count" if hosts_over => {
                capped::compare_rows(w, g, &["count", "overflow"], &[])
            }
            "totals" if hosts_over => {
                capped::compare_rows(w, g, &["distinct_hosts", "overflow"], &[])
            }
            _ => compare_batch(w, g),
        };
        if let Some(problem) = problem {
            diff(name, problem);
        }
    }
    for name in got.keys().filter(|n| !want.contains_key(*n)) {
        diff(
            name,
            "in summary/ but not a table this version computes".into(),
        );
    }
    diffs
}

fn compare_batch(want: &RecordBatch, got: &RecordBatch) -> Option<String> {
    let names = |b: &RecordBatch| -> Vec<String> {
        b.schema()
            .fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect()
    };
    if names(want) != names(got) {
        return Some(format!(
            "columns {:?}, expected {:?}",
            names(got),
            names(want)
        ));
    }
    if want.num_rows() != got.num_rows() {
        return Some(format!(
            "{} rows, expected {}",
            got.num_rows(),
            want.num_rows()
        ));
    }
    for (i, (w, g)) in want.columns().iter().zip(got.columns()).enumerate() {
        if w.to_data() == g.to_data() {
            continue;
        }
        let column = want.schema().field(i).name().clone();
        let show = |a: &dyn Array, r: usize| array_value_to_string(a, r).unwrap_or_default();
        let row = (0..w.len()).find(|&r| show(w.as_ref(), r) != show(g.as_ref(), r));
        return Some(match row {
            Some(r) => format!(
                "column {column} row {r}: {:?}, expected {:?}",
                show(g.as_ref(), r),
                show(w.as_ref(), r)
            ),
            None => format!("column {column} differs (nulls or encoding)"),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn table(keys: &[&str], counts: &[i64]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("host", DataType::Utf8, false),
            Field::new("count", DataType::Int64, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Int64Array::from(counts.to_vec())),
            ],
        )
        .unwrap()
    }

    fn tables(b: RecordBatch) -> BTreeMap<String, RecordBatch> {
        BTreeMap::from([("host_count".to_string(), b)])
    }

    #[test]
    fn equal_tables_pass_and_each_difference_is_named() {
        let want = tables(table(&["a", "b"], &[2, 1]));
        assert!(compare(&want, &want.clone()).is_empty());
        let d = compare(&want, &tables(table(&["a", "b"], &[2, 2])));
        assert_eq!(d.len(), 1);
        assert!(d[0].problem.contains("column count row 1"), "{d:?}");
        let d = compare(&want, &tables(table(&["a"], &[2])));
        assert!(d[0].problem.contains("1 rows, expected 2"), "{d:?}");
        let d = compare(&want, &BTreeMap::new());
        assert_eq!(d[0].problem, "missing from summary/");
        let mut extra = want.clone();
        extra.insert("other".into(), table(&[], &[]));
        assert_eq!(compare(&want, &extra)[0].table, "other");
    }
}
