//! The caps on the merged analytics: a flood of distinct keys keeps the merged state bounded,
//! what is folded shows as one counted `(other)` row, and the totals stay exact whatever the
//! merge order.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;
use proptest::prelude::*;
use sawmill_core::analytics::{AnalyticsConfig, Partial, OTHER_KEY};
use sawmill_core::parse::parse_line;
use sawmill_core::record::Position;
use std::collections::BTreeMap;

fn line(host: &str, endpoint: &str, day: u32, status: u16) -> String {
    format!(r#"{host} - - [{day:02}/Jul/1995:00:00:01 -0400] "GET {endpoint} HTTP/1.0" {status} 7"#)
}

fn observe(p: &mut Partial, line: &str, offset: i64) {
    let rec = parse_line(line.as_bytes()).unwrap();
    p.observe(
        &rec,
        Position {
            partition: (offset % 3) as i32,
            offset,
        },
    );
}

fn capped(hosts: usize, endpoints: usize, rows: usize) -> AnalyticsConfig {
    AnalyticsConfig {
        max_distinct_hosts: hosts,
        max_distinct_endpoints: endpoints,
        max_404_rows: rows,
        ..Default::default()
    }
}

fn table(p: &Partial, name: &str) -> RecordBatch {
    p.tables().into_iter().find(|(n, _)| *n == name).unwrap().1
}

fn i64s(b: &RecordBatch, col: &str) -> Vec<i64> {
    let a = b.column_by_name(col).unwrap().as_primitive::<Int64Type>();
    a.values().to_vec()
}

fn strs(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let a = b.column_by_name(col).unwrap().as_string::<i32>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
        .collect()
}

fn flags(b: &RecordBatch) -> Vec<bool> {
    let a = b.column_by_name("overflow").unwrap().as_boolean();
    (0..a.len()).map(|i| a.value(i)).collect()
}

/// `(key, count, overflow)` of a keyed table, summed over weekdays for `endpoint_count`.
fn keyed(p: &Partial, name: &str, key: &str) -> BTreeMap<(String, bool), i64> {
    let b = table(p, name);
    let mut out = BTreeMap::new();
    for ((k, c), o) in strs(&b, key)
        .into_iter()
        .zip(i64s(&b, "count"))
        .zip(flags(&b))
    {
        *out.entry((k.unwrap_or_default(), o)).or_insert(0) += c;
    }
    out
}

#[test]
fn a_flood_of_unique_urls_keeps_the_merged_state_bounded() {
    const LINES: i64 = 2_000_000;
    const SHARD: i64 = 20_000;
    let cfg = capped(1_000, 10_000, 5_000);
    let mut merged = Partial::new(&cfg);
    let mut most = 0;
    for shard in 0..LINES / SHARD {
        // Shard partials are uncapped (what workers commit); the coordinator's merge caps.
        let mut p = Partial::new(&AnalyticsConfig::default());
        for i in shard * SHARD..(shard + 1) * SHARD {
            let host = format!("h{}", i / 100);
            observe(&mut p, &line(&host, &format!("/u/{i}"), 1, 404), i);
        }
        merged.merge(p);
        most = most.max(merged.keyed_entries());
    }
    // Bounded: hosts, endpoints, 404 rows and per-day host ids never pass their caps.
    assert!(
        most <= 1_000 + 10_000 + 5_000 + 1_000,
        "{most} entries held"
    );
    assert_eq!(merged.records(), LINES as u64);

    let eps = keyed(&merged, "endpoint_count", "endpoint");
    let folded = eps[&(OTHER_KEY.to_string(), true)];
    assert_eq!(
        folded,
        LINES - 10_000,
        "the (other) row counts every folded request"
    );
    assert_eq!(eps.len(), 10_001);
    assert_eq!(eps.values().sum::<i64>(), LINES);

    let hosts = keyed(&merged, "host_count", "host");
    assert_eq!(hosts[&(OTHER_KEY.to_string(), true)], LINES - 1_000 * 100);
    assert_eq!(hosts.values().sum::<i64>(), LINES);

    let t404 = table(&merged, "table_404");
    assert_eq!(t404.num_rows(), 5_001);
    assert_eq!(*i64s(&t404, "count").last().unwrap(), LINES - 5_000);
    assert_eq!(i64s(&t404, "count").iter().sum::<i64>(), LINES);
    // The rows kept are those at the smallest positions.
    let offsets = i64s(&t404, "offset");
    assert_eq!(offsets[..3], [0, 3, 6]);
    assert_eq!(flags(&t404).iter().filter(|&&o| o).count(), 1);

    // Distinct hosts: 1,000 held plus folded ones counted per merge, an upper bound, marked.
    let daily = table(&merged, "unique_host_count");
    assert_eq!(flags(&daily), [true]);
    assert!(i64s(&daily, "count")[0] >= LINES / 100);
    let totals = table(&merged, "totals");
    assert_eq!(flags(&totals), [true]);
    assert!(merged.views(3).overflow);
    // A capped partial has no lossless form: encoding it is refused, not silently lossy.
    let err = merged.to_bytes().unwrap_err().to_string();
    assert!(err.contains("raise the caps"), "{err}");
}

#[test]
fn a_shard_partial_past_the_caps_is_exact_and_encodes() {
    // A worker's shard partial is built by `observe` alone: more keys than the caps fold only
    // in its tables; it must still encode (a refusal wedged the partition) and decode exactly.
    let mut p = Partial::new(&capped(2, 2, 2));
    for i in 0..10 {
        observe(
            &mut p,
            &line(&format!("h{i}"), &format!("/e{i}"), 1, 404),
            i,
        );
    }
    assert!(p.overflowed(), "its tables fold");
    let back = Partial::from_bytes(&p.to_bytes().unwrap()).unwrap();
    assert_eq!(back.to_bytes().unwrap(), p.to_bytes().unwrap());
    assert_eq!(back.records(), 10);
}

#[test]
fn below_the_caps_nothing_is_folded_or_marked() {
    let mut p = Partial::new(&capped(2, 2, 2));
    observe(&mut p, &line("a", "/x", 1, 404), 0);
    observe(&mut p, &line("b", "/y", 1, 404), 1);
    let mut merged = Partial::new(&capped(2, 2, 2));
    merged.merge(p.clone());
    assert!(!merged.overflowed());
    assert_eq!(merged, p);
    for name in ["host_count", "endpoint_count", "table_404", "totals"] {
        assert!(flags(&table(&merged, name)).iter().all(|o| !o), "{name}");
    }
    assert_eq!(table(&merged, "table_404").num_rows(), 2);
}

#[test]
fn tables_of_an_uncapped_partial_fold_its_least_requested_keys() {
    // Built by observe alone (no merge), so it holds more than its caps: the tables cap.
    let mut p = Partial::new(&capped(1, 1, 1));
    for (i, (h, e)) in [("a", "/x"), ("a", "/x"), ("b", "/y"), ("c", "/z")]
        .iter()
        .enumerate()
    {
        observe(&mut p, &line(h, e, 1, 404), i as i64);
    }
    let hosts = keyed(&p, "host_count", "host");
    assert_eq!(
        hosts,
        BTreeMap::from([
            (("a".to_string(), false), 2),
            ((OTHER_KEY.to_string(), true), 2)
        ])
    );
    let eps = keyed(&p, "endpoint_count", "endpoint");
    assert_eq!(eps[&("/x".to_string(), false)], 2);
    assert_eq!(eps[&(OTHER_KEY.to_string(), true)], 2);
    assert_eq!(i64s(&table(&p, "table_404"), "count"), [1, 3]);
}

proptest! {
    /// Whatever the caps and the order shards arrive in: every keyed table still sums to the
    /// exact total, a key listed is counted exactly, the 404 rows kept are the same (smallest
    /// positions), and below the caps the result equals the uncapped one.
    #[test]
    fn capped_merges_keep_totals_and_listed_counts_exact(
        lines in proptest::collection::vec((0usize..12, 0usize..12, any::<bool>(), 1u32..4), 1..120),
        shard in 1usize..20,
        caps in (0usize..8, 0usize..8, 0usize..10),
        order in any::<u64>(),
    ) {
        let cfg = capped(caps.0, caps.1, caps.2);
        let text: Vec<String> = lines
            .iter()
            .map(|&(h, e, nf, day)| line(&format!("h{h}"), &format!("/e{e}"), day, if nf { 404 } else { 200 }))
            .collect();
        let mut one_pass = Partial::new(&AnalyticsConfig::default());
        let mut shards = Vec::new();
        for (c, chunk) in text.chunks(shard).enumerate() {
            let mut p = Partial::new(&AnalyticsConfig::default());
            for (i, l) in chunk.iter().enumerate() {
                let offset = (c * shard + i) as i64;
                observe(&mut p, l, offset);
                observe(&mut one_pass, l, offset);
            }
            shards.push(p);
        }
        let fold = |shards: Vec<Partial>| {
            let mut m = Partial::new(&cfg);
            for s in shards {
                m.merge(s);
            }
            m
        };
        let mut shuffled = shards.clone();
        let n = shuffled.len();
        shuffled.rotate_left(order as usize % n);
        if order % 2 == 1 {
            shuffled.reverse();
        }
        let records = lines.len() as i64;
        let exact_hosts = keyed(&one_pass, "host_count", "host");
        let exact_eps = keyed(&one_pass, "endpoint_count", "endpoint");
        let a = fold(shards);
        let b = fold(shuffled);
        for m in [&a, &b] {
            let hosts = keyed(m, "host_count", "host");
            prop_assert_eq!(hosts.values().sum::<i64>(), records);
            prop_assert!(hosts.keys().filter(|k| !k.1).count() <= caps.0);
            for ((k, other), c) in &hosts {
                if !other {
                    prop_assert_eq!(Some(c), exact_hosts.get(&(k.clone(), false)));
                }
            }
            let eps = keyed(m, "endpoint_count", "endpoint");
            prop_assert_eq!(eps.values().sum::<i64>(), records);
            prop_assert!(eps.keys().filter(|k| !k.1).count() <= caps.1);
            for ((k, other), c) in &eps {
                if !other {
                    prop_assert_eq!(Some(c), exact_eps.get(&(k.clone(), false)));
                }
            }
            let t404 = table(m, "table_404");
            let nf = lines.iter().filter(|l| l.2).count() as i64;
            prop_assert_eq!(i64s(&t404, "count").iter().sum::<i64>(), nf);
            prop_assert!(m.keyed_entries() <= caps.0 + caps.1 + caps.2 + 3 * caps.0);
            let exact_daily = i64s(&table(&one_pass, "unique_host_count"), "count");
            let daily = i64s(&table(m, "unique_host_count"), "count");
            for (got, exact) in daily.iter().zip(&exact_daily) {
                prop_assert!(got >= exact, "a distinct count is an upper bound");
            }
            if !m.overflowed() {
                prop_assert_eq!(m, &one_pass);
            }
        }
        // Which 404 rows are kept does not depend on the order (the smallest positions).
        let positions = |m: &Partial| {
            let t = table(m, "table_404");
            (i64s(&t, "offset"), i64s(&t, "count"))
        };
        prop_assert_eq!(positions(&a), positions(&b));
    }
}
