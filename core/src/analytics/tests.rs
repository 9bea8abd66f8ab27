//! Unit tests of the summary tables and views on hand-built records.

use super::{AnalyticsConfig, Partial};
use crate::record::{days_from_civil, LogFormat, LogRecord, Position, RejectReason, Timestamp};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int32Type, Int64Type};

const JUL1: (i32, u8, u8) = (1995, 7, 1); // a Saturday
const JUL2: (i32, u8, u8) = (1995, 7, 2); // a Sunday

/// A NASA-style record at `hour`:30 wall clock in -0400.
fn rec<'a>(
    host: &'a str,
    date: (i32, u8, u8),
    hour: u8,
    endpoint: Option<&'a str>,
    status: u16,
    size: Option<u64>,
) -> LogRecord<'a> {
    let local =
        i64::from(days_from_civil(date.0, date.1, date.2)) * 86_400 + i64::from(hour) * 3600 + 1800;
    LogRecord {
        format: LogFormat::Common,
        host: host.as_bytes(),
        ident: None,
        user: None,
        timestamp: Timestamp {
            utc_secs: local + 4 * 3600,
            offset_minutes: -240,
        },
        method: endpoint.map(|_| &b"GET"[..]),
        endpoint: endpoint.map(str::as_bytes),
        protocol: endpoint.map(|_| &b"HTTP/1.0"[..]),
        status,
        content_size: size,
        referer: None,
        user_agent: None,
        truncated_field: false,
    }
}

fn at(offset: i64) -> Position {
    Position {
        partition: 0,
        offset,
    }
}

fn fold(recs: &[LogRecord<'_>]) -> Partial {
    fold_with(&AnalyticsConfig::default(), recs)
}

fn fold_with(cfg: &AnalyticsConfig, recs: &[LogRecord<'_>]) -> Partial {
    let mut p = Partial::new(cfg);
    for (i, r) in recs.iter().enumerate() {
        p.observe(r, at(i as i64));
    }
    p
}

fn table(p: &Partial, name: &str) -> RecordBatch {
    let t = p.tables();
    t.into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("no table {name}"))
}

fn i64s(b: &RecordBatch, col: &str) -> Vec<Option<i64>> {
    b.column_by_name(col)
        .unwrap()
        .as_primitive::<Int64Type>()
        .iter()
        .collect()
}

fn i32s(b: &RecordBatch, col: &str) -> Vec<i32> {
    let a = b.column_by_name(col).unwrap().as_primitive::<Int32Type>();
    a.values().to_vec()
}

fn dates(b: &RecordBatch, col: &str) -> Vec<i32> {
    let a = b.column_by_name(col).unwrap().as_primitive::<Date32Type>();
    a.values().to_vec()
}

fn counts(b: &RecordBatch, col: &str) -> Vec<i64> {
    i64s(b, col).into_iter().map(Option::unwrap).collect()
}

fn strs(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let a = b.column_by_name(col).unwrap().as_string::<i32>();
    a.iter().map(|s| s.map(str::to_owned)).collect()
}

fn f64s(b: &RecordBatch, col: &str) -> Vec<Option<f64>> {
    b.column_by_name(col)
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn day(d: (i32, u8, u8)) -> i32 {
    days_from_civil(d.0, d.1, d.2)
}

#[test]
fn null_value_count_counts_missing_fields() {
    let mut dash = rec("", JUL1, 0, None, 400, None);
    dash.protocol = None;
    let mut http09 = rec("a", JUL1, 0, Some("/x"), 200, Some(5));
    http09.protocol = None;
    let p = fold(&[dash, http09, rec("b", JUL1, 1, Some("/y"), 200, None)]);
    let t = table(&p, "null_value_count");
    assert_eq!(t.num_rows(), 1);
    let got: Vec<i64> = [
        "host",
        "timestamp",
        "method",
        "endpoint",
        "protocol",
        "status",
        "content_size",
    ]
    .iter()
    .map(|c| counts(&t, c)[0])
    .collect();
    assert_eq!(got, vec![1, 0, 1, 1, 2, 0, 2]);
}

#[test]
fn content_stats_missing_as_zero_and_known_only() {
    let recs = [
        rec("a", JUL1, 0, Some("/"), 200, Some(10)),
        rec("a", JUL1, 0, Some("/"), 200, Some(20)),
        rec("a", JUL1, 0, Some("/"), 304, None),
    ];
    let t = table(&fold(&recs), "content_stats");
    assert_eq!(i64s(&t, "min_content_size"), vec![Some(0)]);
    assert_eq!(i64s(&t, "max_content_size"), vec![Some(20)]);
    assert_eq!(f64s(&t, "mean_content_size"), vec![Some(10.0)]);
    assert_eq!(f64s(&t, "std_content_size"), vec![Some(10.0)]);
    assert_eq!(counts(&t, "count_content_size"), vec![3]);

    let known = AnalyticsConfig {
        missing_size_as_zero: false,
        ..Default::default()
    };
    let t = table(&fold_with(&known, &recs), "content_stats");
    assert_eq!(i64s(&t, "min_content_size"), vec![Some(10)]);
    assert_eq!(f64s(&t, "mean_content_size"), vec![Some(15.0)]);
    assert_eq!(f64s(&t, "std_content_size"), vec![Some(50f64.sqrt())]);
    assert_eq!(counts(&t, "count_content_size"), vec![2]);
}

#[test]
fn content_stats_null_when_too_few_values() {
    let t = table(&Partial::new(&Default::default()), "content_stats");
    assert_eq!(i64s(&t, "min_content_size"), vec![None]);
    assert_eq!(f64s(&t, "mean_content_size"), vec![None]);
    assert_eq!(f64s(&t, "std_content_size"), vec![None]);
    assert_eq!(counts(&t, "count_content_size"), vec![0]);
    let one = fold(&[rec("a", JUL1, 0, Some("/"), 200, Some(7))]);
    let t = table(&one, "content_stats");
    assert_eq!(f64s(&t, "mean_content_size"), vec![Some(7.0)]);
    assert_eq!(f64s(&t, "std_content_size"), vec![None]);
    assert_eq!(t.schema().field(3).data_type(), &DataType::Float64);
}

fn std_of(sizes: impl IntoIterator<Item = u64>) -> f64 {
    let mut p = Partial::new(&Default::default());
    for (i, sz) in sizes.into_iter().enumerate() {
        p.observe(&rec("h", JUL1, 0, Some("/"), 200, Some(sz)), at(i as i64));
    }
    f64s(&table(&p, "content_stats"), "std_content_size")[0].unwrap()
}

#[test]
fn stddev_matches_closed_form_for_one_to_n() {
    for n in [2u64, 3, 10, 1000, 100_000] {
        // Sample variance of 1..=n is n(n+1)/12.
        let expect = ((n * (n + 1)) as f64 / 12.0).sqrt();
        let got = std_of(1..=n);
        assert!(
            (got - expect).abs() <= expect * 1e-15,
            "n={n}: {got} vs {expect}"
        );
    }
}

#[test]
fn stddev_survives_huge_mean_small_variance() {
    for base in [1_000_000_000_000_000u64, 4_000_000_000_000_000_000] {
        let n = 1000u64;
        let sizes: Vec<u64> = (0..n).map(|k| base + k).collect();
        let expect = ((n * (n + 1)) as f64 / 12.0).sqrt(); // shift-invariant: same as 0..n
        let got = std_of(sizes.iter().copied());
        assert!((got - expect).abs() <= expect * 1e-12, "{got} vs {expect}");
        // The textbook f64 formula loses every digit here, which is why we keep exact sums.
        let (s1, s2) = sizes.iter().fold((0f64, 0f64), |(a, b), &x| {
            let x = x as f64;
            (a + x, b + x * x)
        });
        let nf = n as f64;
        let naive = ((s2 - s1 * s1 / nf) / (nf - 1.0)).max(0.0).sqrt();
        assert!(
            (naive - expect).abs() > expect * 0.01,
            "naive {naive} happened to be right"
        );
    }
}

#[test]
fn table_404_rows_sorted_by_position_with_wall_clock_fields() {
    let mut p = Partial::new(&Default::default());
    let r1 = rec("h1", JUL2, 23, Some("/missing"), 404, None);
    let r2 = rec("h2", JUL1, 5, None, 404, None);
    p.observe(
        &r1,
        Position {
            partition: 1,
            offset: 0,
        },
    );
    p.observe(&rec("h3", JUL1, 5, Some("/"), 200, Some(1)), at(3));
    p.observe(
        &r2,
        Position {
            partition: 0,
            offset: 9,
        },
    );
    let t = table(&p, "table_404");
    assert_eq!(strs(&t, "endpoint"), vec![None, s("/missing")]);
    assert_eq!(strs(&t, "host"), vec![s("h2"), s("h1")]);
    assert_eq!(i32s(&t, "dayofweek"), vec![7, 1]);
    assert_eq!(i32s(&t, "day"), vec![1, 2]);
    assert_eq!(i32s(&t, "hour"), vec![5, 23]);
    assert_eq!(dates(&t, "date"), vec![day(JUL1), day(JUL2)]);
    assert_eq!(i32s(&t, "partition"), vec![0, 1]);
    assert_eq!(counts(&t, "offset"), vec![9, 0]);
}

#[test]
fn status_host_and_endpoint_counts_are_ordered() {
    let recs = [
        rec("b", JUL1, 0, Some("/x"), 404, None),
        rec("a", JUL1, 0, Some("/y"), 200, Some(1)),
        rec("b", JUL2, 0, Some("/x"), 200, Some(1)),
        rec("c", JUL2, 0, Some("/y"), 304, Some(0)),
        rec("c", JUL1, 0, Some("/x"), 200, Some(1)),
        rec("d", JUL1, 0, None, 400, None),
    ];
    let p = fold(&recs);
    let t = table(&p, "status_count");
    assert_eq!(i32s(&t, "status"), vec![200, 304, 400, 404]);
    assert_eq!(counts(&t, "count"), vec![3, 1, 1, 1]);

    let t = table(&p, "host_count");
    assert_eq!(strs(&t, "host"), vec![s("b"), s("c"), s("a"), s("d")]);
    assert_eq!(counts(&t, "count"), vec![2, 2, 1, 1]);

    let t = table(&p, "endpoint_count");
    assert_eq!(
        strs(&t, "endpoint"),
        vec![s("/x"), None, s("/x"), s("/y"), s("/y")]
    );
    assert_eq!(i32s(&t, "weekday"), vec![7, 7, 1, 1, 7]);
    assert_eq!(counts(&t, "count"), vec![2, 1, 1, 1, 1]);
}

#[test]
fn daily_tables_are_by_calendar_date_and_exact() {
    let aug1 = (1995, 8, 1);
    let mut recs = vec![
        rec("a", JUL1, 0, Some("/"), 200, Some(100)),
        rec("b", JUL1, 23, Some("/"), 404, None),
        rec("a", aug1, 1, Some("/"), 200, Some(5)),
    ];
    // Hosts alternating between dates leave duplicates in the per-date id lists; enough of
    // them to trigger compaction too. Distinct counts must stay exact.
    for i in 0..3000 {
        let d = if i % 2 == 0 { JUL1 } else { JUL2 };
        recs.push(rec(["a", "b", "c"][i % 3], d, 2, Some("/"), 200, Some(1)));
    }
    let p = fold(&recs);
    let t = table(&p, "unique_host_count");
    // July 1st and August 1st share day-of-month 1 but stay separate rows.
    assert_eq!(i32s(&t, "day"), vec![1, 2, 1]);
    assert_eq!(dates(&t, "date"), vec![day(JUL1), day(JUL2), day(aug1)]);
    assert_eq!(counts(&t, "count"), vec![3, 3, 1]);
    let t = table(&p, "daily_request_count");
    assert_eq!(counts(&t, "count"), vec![1502, 1500, 1]);
    let t = table(&p, "daily_bytes");
    assert_eq!(counts(&t, "bytes"), vec![1600, 1500, 5]);
    let t = table(&p, "daily_404_count");
    assert_eq!(dates(&t, "date"), vec![day(JUL1)]);
    assert_eq!((i32s(&t, "day"), counts(&t, "count")), (vec![1], vec![1]));

    let t = table(&p, "hourly_request_count");
    assert_eq!(i32s(&t, "hour"), (0..24).collect::<Vec<_>>());
    let c = counts(&t, "count");
    assert_eq!(
        (c[0], c[1], c[2], c[23], c.iter().sum::<i64>()),
        (1, 1, 3000, 1, 3003)
    );
    let c = counts(&table(&p, "hourly_404_count"), "count");
    assert_eq!((c[23], c.iter().sum::<i64>()), (1, 1));

    let t = table(&p, "totals");
    assert_eq!(counts(&t, "records"), vec![3003]);
    assert_eq!(counts(&t, "bytes"), vec![3105]);
    assert_eq!(counts(&t, "distinct_hosts"), vec![3]);
}

#[test]
fn reject_examples_keep_smallest_positions() {
    let cfg = AnalyticsConfig {
        reject_examples: 2,
        ..Default::default()
    };
    let mut p = Partial::new(&cfg);
    for off in [7, 3, 9, 1, 5] {
        p.observe_reject(
            RejectReason::Truncated,
            format!("t{off}").as_bytes(),
            at(off),
        );
    }
    p.observe_reject(RejectReason::Empty, b"", at(4));
    assert_eq!((p.rejects(), p.records()), (6, 0));
    let t = table(&p, "reject_count");
    assert_eq!(strs(&t, "reason"), vec![s("empty"), s("truncated")]);
    assert_eq!(counts(&t, "count"), vec![1, 5]);
    let t = table(&p, "reject_examples");
    assert_eq!(
        strs(&t, "reason"),
        vec![s("empty"), s("truncated"), s("truncated")]
    );
    assert_eq!(counts(&t, "offset"), vec![4, 1, 3]);
    let raw = t.column_by_name("raw").unwrap().as_binary::<i32>();
    assert_eq!(raw.value(2), b"t3");
    assert_eq!(counts(&table(&p, "totals"), "rejects"), vec![6]);
}

#[test]
fn every_table_is_named_and_schema_is_stable() {
    let p = fold(&[rec("a", JUL1, 0, Some("/"), 404, None)]);
    let tables = p.tables();
    let names: Vec<&str> = tables.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, super::TABLE_NAMES);
    for (name, b) in &tables {
        assert_eq!(Some(b.schema()), super::schema(name), "{name}");
    }
    assert!(super::schema("nope").is_none());
    assert!(p.table("nope").is_none());
    for (name, b) in &tables {
        assert_eq!(
            p.table(name).as_ref(),
            Some(b),
            "{name} built alone is the same"
        );
    }
    let t = table(&p, "table_404");
    assert_eq!(t.column(0).null_count(), 0);
}

#[test]
fn views_rank_deterministically() {
    let recs = [
        rec("b", JUL1, 0, Some("/x"), 404, None),
        rec("a", JUL1, 0, Some("/y"), 404, None),
        rec("b", JUL2, 0, Some("/x"), 200, Some(1)),
        rec("a", JUL2, 0, Some("/y"), 200, Some(1)),
        rec("c", JUL2, 0, Some("/z"), 200, Some(1)),
        rec("c", JUL2, 0, Some("/z"), 200, Some(1)),
        rec("c", JUL1, 0, None, 400, None),
    ];
    let v = fold(&recs).views(2);
    assert_eq!((v.records, v.rejects, v.distinct_hosts), (7, 0, 3));
    let hosts: Vec<_> = v
        .top_hosts
        .iter()
        .map(|h| (h.host.as_str(), h.count))
        .collect();
    assert_eq!(hosts, vec![("c", 3), ("a", 2)]);
    let eps: Vec<_> = v
        .top_endpoints
        .iter()
        .map(|e| (e.endpoint.clone(), e.count))
        .collect();
    assert_eq!(eps, vec![(s("/x"), 2), (s("/y"), 2)]);
    let per_host: Vec<_> = v
        .daily_requests_per_host
        .iter()
        .map(|d| {
            (
                d.date.as_str(),
                d.requests,
                d.distinct_hosts,
                d.avg_requests_per_host,
            )
        })
        .collect();
    assert_eq!(
        per_host,
        vec![("1995-07-01", 3, 3, 1.0), ("1995-07-02", 4, 3, 4.0 / 3.0)]
    );
    assert_eq!(v.daily_404.len(), 1);
    assert_eq!((v.daily_404[0].day, v.daily_404[0].count), (1, 2));
    let e404: Vec<_> = v
        .top_404_endpoints
        .iter()
        .map(|e| e.endpoint.clone())
        .collect();
    assert_eq!(e404, vec![s("/x"), s("/y")]);
    let h404: Vec<_> = v.top_404_hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(h404, vec!["a", "b"]);
    let wd: Vec<_> = v
        .top_endpoint_by_weekday
        .iter()
        .map(|w| (w.weekday, w.weekday_name, w.endpoint.clone(), w.count))
        .collect();
    // Saturday ties /x, /y and the missing endpoint at one each: null sorts first.
    assert_eq!(
        wd,
        vec![(1, "Sunday", s("/z"), 2), (7, "Saturday", None, 1)]
    );
    let json = serde_json::to_string(&v).unwrap();
    assert!(
        json.contains("\"top_hosts\":[{\"host\":\"c\",\"count\":3}"),
        "{json}"
    );
}

#[test]
fn ipc_round_trips_and_rejects_damage() {
    let mut p = fold(&[
        rec("b", JUL1, 0, Some("/x"), 404, Some(u64::MAX)),
        rec("a", JUL2, 3, None, 999, Some(12)), // beyond the flat status array
    ]);
    p.observe_reject(RejectReason::BadStatus, b"\xff raw", at(5));
    let bytes = p.to_bytes().unwrap();
    let q = Partial::from_bytes(&bytes).unwrap();
    assert_eq!(q.tables(), p.tables());
    assert_eq!(q, p);
    assert_eq!(q.to_bytes().unwrap(), bytes);

    for cut in [0, 5, bytes.len() / 2, bytes.len() - 1] {
        assert!(Partial::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Partial::from_bytes(&longer).is_err());
    let mut bad = bytes.clone();
    bad[0] ^= 1;
    assert!(Partial::from_bytes(&bad).is_err());
    // Flip the record count (right after magic, version and config; varints of small values).
    let mut bad = bytes;
    assert_eq!(bad[8 + 4 + 1 + 1], 2);
    bad[8 + 4 + 1 + 1] ^= 1;
    let err = Partial::from_bytes(&bad).unwrap_err().to_string();
    assert!(err.contains("totals disagree"), "{err}");
}

#[test]
fn merge_is_exact_and_empty_is_identity() {
    let recs = [
        rec("b", JUL1, 0, Some("/x"), 404, None),
        rec("a", JUL2, 0, Some("/y"), 200, Some(3)),
        rec("b", JUL2, 0, None, 404, Some(4)),
    ];
    let whole = fold(&recs);
    let mut left = Partial::new(&Default::default());
    left.observe(&recs[2], at(2));
    let mut right = Partial::new(&Default::default());
    right.observe(&recs[0], at(0));
    right.observe(&recs[1], at(1));
    left.merge(right);
    assert_eq!(left.tables(), whole.tables());
    assert_eq!(left, whole);
    let mut e = Partial::new(&Default::default());
    e.merge(whole.clone());
    assert_eq!(e, whole);
    let mut w = whole.clone();
    w.merge(Partial::new(&Default::default()));
    assert_eq!(w.tables(), whole.tables());
    assert_ne!(fold(&recs[..2]), whole);
}
