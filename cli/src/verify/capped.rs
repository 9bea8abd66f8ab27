//! Comparing summary tables past an analytics cap (`core::analytics::caps`). Once more distinct
//! hosts or endpoints arrived than a cap allows, *which* keys a table lists depends on the order
//! the partials were merged, so the published table and a recomputation may list different
//! keys. What the caps keep exact is compared instead: the sum of each key table (its
//! `(other)` rows included), the count of every key both sides list, every 404 row by position
//! (a key there may read `(other)` on either side), and every column of the per-date and total
//! tables except the distinct-host counts, which become upper bounds.

use arrow::array::{Array, BooleanArray};
use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;
use std::collections::BTreeMap;

/// The key in `(other)` rows and in 404 rows whose host or endpoint was folded.
const OTHER_KEY: &str = "(other)";

/// Whether a table shows a folded `(other)` row (its `overflow` column true somewhere).
pub fn overflowed(b: &RecordBatch) -> bool {
    b.column_by_name("overflow")
        .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
        .is_some_and(|o| o.iter().any(|v| v == Some(true)))
}

fn cell(b: &RecordBatch, column: usize, row: usize) -> String {
    array_value_to_string(b.column(column), row).unwrap_or_default()
}

fn column(b: &RecordBatch, name: &str) -> Option<usize> {
    b.schema().index_of(name).ok()
}

/// A key table (`host_count`, `endpoint_count`): the key is every column but `count` and
/// `overflow`.
pub fn compare_key_table(want: &RecordBatch, got: &RecordBatch) -> Option<String> {
    let rows = |b: &RecordBatch| -> Option<(BTreeMap<String, i64>, i64)> {
        let count = column(b, "count")?;
        let keys: Vec<usize> = (0..b.num_columns())
            .filter(|&c| !matches!(b.schema().field(c).name().as_str(), "count" | "overflow"))
            .collect();
        let (mut listed, mut sum) = (BTreeMap::new(), 0i64);
        for r in 0..b.num_rows() {
            let n: i64 = cell(b, count, r).parse().ok()?;
            sum = sum.saturating_add(n);
            let key: Vec<String> = keys.iter().map(|&c| cell(b, c, r)).collect();
            if !key.iter().any(|k| k == OTHER_KEY) {
                listed.insert(key.join("|"), n);
            }
        }
        Some((listed, sum))
    };
    let (Some((w, wsum)), Some((g, gsum))) = (rows(want), rows(got)) else {
        return Some("no integer count column".into());
    };
    if wsum != gsum {
        return Some(format!(
            "past its cap: counts sum to {gsum}, expected {wsum}"
        ));
    }
    w.iter()
        .find_map(|(k, n)| g.get(k).filter(|m| *m != n).map(|m| (k, n, m)))
        .map(|(k, n, m)| format!("past its cap: {k} counted {m}, expected {n}"))
}

/// Row by row, every column equal except: `skip` columns, and `folded` columns where either
/// side reads `(other)`.
pub fn compare_rows(
    want: &RecordBatch,
    got: &RecordBatch,
    skip: &[&str],
    folded: &[&str],
) -> Option<String> {
    if want.num_rows() != got.num_rows() {
        return Some(format!(
            "{} rows, expected {}",
            got.num_rows(),
            want.num_rows()
        ));
    }
    for c in 0..want.num_columns() {
        let name = want.schema().field(c).name().clone();
        if skip.contains(&name.as_str()) {
            continue;
        }
        let Some(gc) = column(got, &name) else {
            return Some(format!("no column {name}"));
        };
        for r in 0..want.num_rows() {
            let (w, g) = (cell(want, c, r), cell(got, gc, r));
            let may_fold = folded.contains(&name.as_str()) && (w == OTHER_KEY || g == OTHER_KEY);
            if w != g && !may_fold {
                return Some(format!(
                    "past a cap: column {name} row {r}: {g:?}, expected {w:?}"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn hosts(keys: &[&str], counts: &[i64]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("host", DataType::Utf8, false),
            Field::new("count", DataType::Int64, false),
            Field::new("overflow", DataType::Boolean, false),
        ]);
        let over: Vec<bool> = keys.iter().map(|k| *k == OTHER_KEY).collect();
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Int64Array::from(counts.to_vec())),
                Arc::new(BooleanArray::from(over)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_capped_key_table_may_list_other_keys_but_not_other_counts() {
        let want = hosts(&["a", "b", OTHER_KEY], &[5, 3, 4]);
        assert!(overflowed(&want));
        assert!(!overflowed(&hosts(&["a"], &[1])));
        // Another merge order listed c instead of b: same sum, a agrees.
        assert_eq!(
            compare_key_table(&want, &hosts(&["a", "c", OTHER_KEY], &[5, 2, 5])),
            None
        );
        // A key both list with another count, or a different sum, is a difference.
        let d = compare_key_table(&want, &hosts(&["a", "b", OTHER_KEY], &[4, 3, 5])).unwrap();
        assert!(d.contains("a counted 4, expected 5"), "{d}");
        let d = compare_key_table(&want, &hosts(&["a", "b", OTHER_KEY], &[5, 3, 5])).unwrap();
        assert!(d.contains("sum to 13, expected 12"), "{d}");
    }

    #[test]
    fn folded_keys_may_differ_in_rows_nothing_else() {
        let want = hosts(&["a", "b"], &[1, 2]);
        assert_eq!(
            compare_rows(
                &want,
                &hosts(&[OTHER_KEY, "b"], &[1, 2]),
                &["overflow"],
                &["host"]
            ),
            None
        );
        let d = compare_rows(
            &want,
            &hosts(&["c", "b"], &[1, 2]),
            &["overflow"],
            &["host"],
        )
        .unwrap();
        assert!(d.contains("column host row 0"), "{d}");
        let d = compare_rows(
            &want,
            &hosts(&["a", "b"], &[1, 3]),
            &["overflow"],
            &["host"],
        )
        .unwrap();
        assert!(d.contains("column count row 1"), "{d}");
        let d = compare_rows(&want, &hosts(&["a"], &[1]), &[], &[]).unwrap();
        assert!(d.contains("1 rows, expected 2"), "{d}");
    }
}
