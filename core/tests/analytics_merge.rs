//! Merging partials built over any split of the input, in any order and tree shape, must give
//! exactly the one-pass result: equal tables, equal views, equal canonical bytes.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use sawmill_core::analytics::{AnalyticsConfig, Partial};
use sawmill_core::record::{
    days_from_civil, LogFormat, LogRecord, Position, RejectReason, Timestamp,
};

const HOSTS: [&str; 7] = [
    "",
    "a.com",
    "b.org",
    "199.72.81.55",
    "c.net",
    "d",
    "\u{e9}.fr",
];
const ENDPOINTS: [&str; 5] = ["/", "/images/x.gif", "/shuttle/", "/a b", "/\u{fc}"];
const STATUSES: [u16; 6] = [200, 304, 404, 404, 500, 302];
const ZONES: [i16; 3] = [-240, 0, 330];

#[derive(Debug, Clone)]
enum Item {
    Rec {
        host: usize,
        day: i64,
        second: i64,
        zone: usize,
        endpoint: Option<usize>,
        protocol: bool,
        status: usize,
        size: Option<u64>,
    },
    Reject {
        reason: usize,
        raw: Vec<u8>,
    },
}

fn item() -> impl Strategy<Value = Item> {
    let size = prop_oneof![
        3 => (0u64..10_000).prop_map(Some),
        1 => (1u64 << 40..1u64 << 62).prop_map(Some),
        1 => Just(None),
    ];
    let rec = (
        0..HOSTS.len(),
        0i64..5,
        0i64..86_400,
        0..ZONES.len(),
        proptest::option::weighted(0.9, 0..ENDPOINTS.len()),
        any::<bool>(),
        0..STATUSES.len(),
        size,
    )
        .prop_map(
            |(host, day, second, zone, endpoint, protocol, status, size)| Item::Rec {
                host,
                day,
                second,
                zone,
                endpoint,
                protocol,
                status,
                size,
            },
        );
    let reject = (
        0..RejectReason::ALL.len(),
        prop::collection::vec(any::<u8>(), 0..6),
    )
        .prop_map(|(reason, raw)| Item::Reject { reason, raw });
    prop_oneof![8 => rec, 1 => reject]
}

fn observe(p: &mut Partial, item: &Item, pos: Position) {
    match item {
        Item::Rec {
            host,
            day,
            second,
            zone,
            endpoint,
            protocol,
            status,
            size,
        } => {
            let base = i64::from(days_from_civil(1995, 7, 30)) * 86_400;
            let ep = endpoint.map(|e| ENDPOINTS[e].as_bytes());
            let rec = LogRecord {
                format: LogFormat::Common,
                host: HOSTS[*host].as_bytes(),
                ident: None,
                user: None,
                timestamp: Timestamp {
                    utc_secs: base + day * 86_400 + second,
                    offset_minutes: ZONES[*zone],
                },
                method: ep.map(|_| &b"GET"[..]),
                endpoint: ep,
                protocol: (*protocol && ep.is_some()).then_some(&b"HTTP/1.0"[..]),
                status: STATUSES[*status],
                content_size: *size,
                referer: None,
                user_agent: None,
            };
            p.observe(&rec, pos);
        }
        Item::Reject { reason, raw } => p.observe_reject(RejectReason::ALL[*reason], raw, pos),
    }
}

fn fold(cfg: &AnalyticsConfig, items: &[(Item, Position)]) -> Partial {
    let mut p = Partial::new(cfg);
    for (item, pos) in items {
        observe(&mut p, item, *pos);
    }
    p
}

fn input() -> impl Strategy<Value = Vec<(Item, Position)>> {
    // Small position space on purpose: duplicates and out-of-order positions must not matter.
    let pos = (0i32..3, 0i64..200).prop_map(|(partition, offset)| Position { partition, offset });
    prop::collection::vec((item(), pos), 0..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn analytics_any_split_and_merge_tree_equals_one_pass(
        items in input(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        choices in prop::collection::vec(any::<prop::sample::Index>(), 12),
        missing_size_as_zero in any::<bool>(),
        reject_examples in 0usize..3,
    ) {
        let cfg = AnalyticsConfig { missing_size_as_zero, reject_examples, ..Default::default() };
        let one_pass = fold(&cfg, &items);

        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(items.len() + 1)).collect();
        bounds.extend([0, items.len()]);
        bounds.sort_unstable();
        let mut parts: Vec<Partial> =
            bounds.windows(2).map(|w| fold(&cfg, &items[w[0]..w[1]])).collect();

        // Random tree: repeatedly merge a random part into another random part.
        let mut choice = choices.iter().cycle();
        while parts.len() > 1 {
            let mut pick = |n: usize| choice.next().map_or(0, |c| c.index(n));
            let from = parts.swap_remove(pick(parts.len()));
            let into = pick(parts.len());
            parts[into].merge(from);
        }
        let merged = parts.pop().unwrap_or_else(|| Partial::new(&cfg));

        prop_assert_eq!(merged.records() + merged.rejects(), items.len() as u64);
        prop_assert_eq!(merged.tables(), one_pass.tables());
        prop_assert_eq!(merged.views(3), one_pass.views(3));
        prop_assert_eq!(merged.to_bytes().unwrap(), one_pass.to_bytes().unwrap());
        prop_assert!(merged == one_pass);

        let back = Partial::from_bytes(&merged.to_bytes().unwrap()).unwrap();
        prop_assert_eq!(back.tables(), one_pass.tables());
        prop_assert!(back == merged);

        // A decoded partial keeps merging and observing like the original.
        let mut again = back;
        again.merge(Partial::new(&cfg));
        if let Some((item, pos)) = items.first() {
            let mut a = again.clone();
            observe(&mut a, item, *pos);
            let mut b = one_pass.clone();
            observe(&mut b, item, *pos);
            prop_assert_eq!(a.tables(), b.tables());
        }
        prop_assert_eq!(again.tables(), one_pass.tables());

        let mut empty = Partial::new(&cfg);
        empty.merge(one_pass.clone());
        prop_assert_eq!(empty.tables(), one_pass.tables());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Damaged bytes give an error (or, rarely, another valid partial), never a panic.
    #[test]
    fn analytics_from_bytes_survives_damage(
        items in input(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
        cut in any::<bool>(),
    ) {
        let cfg = AnalyticsConfig::default();
        let mut bytes = fold(&cfg, &items).to_bytes().unwrap();
        let i = at.index(bytes.len());
        if cut {
            bytes.truncate(i);
        } else {
            bytes[i] ^= xor;
        }
        if let Ok(p) = Partial::from_bytes(&bytes) {
            let again = Partial::from_bytes(&p.to_bytes().unwrap()).unwrap();
            prop_assert_eq!(again.tables(), p.tables());
            let _ = p.views(3);
        }
    }
}

mod model {
    //! A naive reference model (ordered maps over the raw items) the tables must agree with.

    use super::*;
    use arrow::array::{AsArray, RecordBatch};
    use arrow::datatypes::{Date32Type, Int32Type, Int64Type};
    use sawmill_core::record::spark_dayofweek;
    use std::collections::{BTreeMap, BTreeSet};

    fn col_i64(b: &RecordBatch, c: &str) -> Vec<i64> {
        b.column_by_name(c)
            .unwrap()
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    }
    fn col_i32(b: &RecordBatch, c: &str) -> Vec<i32> {
        b.column_by_name(c)
            .unwrap()
            .as_primitive::<Int32Type>()
            .values()
            .to_vec()
    }
    fn col_date(b: &RecordBatch, c: &str) -> Vec<i32> {
        b.column_by_name(c)
            .unwrap()
            .as_primitive::<Date32Type>()
            .values()
            .to_vec()
    }
    fn col_str(b: &RecordBatch, c: &str) -> Vec<Option<String>> {
        let a = b.column_by_name(c).unwrap().as_string::<i32>();
        a.iter().map(|s| s.map(str::to_owned)).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]

        #[test]
        fn analytics_tables_match_naive_model(items in input()) {
            let p = fold(&AnalyticsConfig::default(), &items);
            let tables: BTreeMap<_, _> = p.tables().into_iter().collect();

            let mut hosts: BTreeMap<&str, i64> = BTreeMap::new();
            let mut per_date: BTreeMap<i32, (i64, BTreeSet<&str>)> = BTreeMap::new();
            let mut eps: BTreeMap<(Option<&str>, i32), i64> = BTreeMap::new();
            let mut statuses: BTreeMap<i32, i64> = BTreeMap::new();
            let mut n404 = 0;
            let (mut n, mut sum, mut max) = (0i64, 0i128, None::<i64>);
            for (item, _) in &items {
                let Item::Rec { host, day, second, zone, endpoint, status, size, .. } = item else {
                    continue;
                };
                let base = i64::from(days_from_civil(1995, 7, 30)) * 86_400;
                let local = base + day * 86_400 + second + i64::from(ZONES[*zone]) * 60;
                let date = local.div_euclid(86_400) as i32;
                let h = HOSTS[*host];
                *hosts.entry(h).or_default() += 1;
                let e = per_date.entry(date).or_default();
                e.0 += 1;
                e.1.insert(h);
                let wd = i32::from(spark_dayofweek(date));
                *eps.entry((endpoint.map(|i| ENDPOINTS[i]), wd)).or_default() += 1;
                *statuses.entry(i32::from(STATUSES[*status])).or_default() += 1;
                n404 += i64::from(STATUSES[*status] == 404);
                n += 1;
                let sz = size.map_or(0, |s| s as i64);
                sum += i128::from(sz);
                max = max.max(Some(sz));
            }

            let t = &tables["host_count"];
            let mut want: Vec<_> = hosts.iter().map(|(h, c)| (-c, h.to_string())).collect();
            want.sort();
            let got: Vec<_> = col_str(t, "host").into_iter().map(Option::unwrap)
                .zip(col_i64(t, "count")).map(|(h, c)| (-c, h)).collect();
            prop_assert_eq!(got, want);

            let t = &tables["unique_host_count"];
            prop_assert_eq!(col_date(t, "date"), per_date.keys().copied().collect::<Vec<_>>());
            let distinct: Vec<i64> = per_date.values().map(|v| v.1.len() as i64).collect();
            prop_assert_eq!(col_i64(t, "count"), distinct);
            let t = &tables["daily_request_count"];
            prop_assert_eq!(col_i64(t, "count"), per_date.values().map(|v| v.0).collect::<Vec<_>>());

            let t = &tables["endpoint_count"];
            let mut want: Vec<_> = eps.iter().map(|(&(e, w), &c)| (-c, e.map(str::to_owned), w)).collect();
            want.sort();
            let got: Vec<_> = col_str(t, "endpoint").into_iter().zip(col_i32(t, "weekday"))
                .zip(col_i64(t, "count")).map(|((e, w), c)| (-c, e, w)).collect();
            prop_assert_eq!(got, want);

            let t = &tables["status_count"];
            prop_assert_eq!(col_i32(t, "status"), statuses.keys().copied().collect::<Vec<_>>());
            prop_assert_eq!(col_i64(t, "count"), statuses.values().copied().collect::<Vec<_>>());
            prop_assert_eq!(tables["table_404"].num_rows() as i64, n404);

            let t = &tables["content_stats"];
            prop_assert_eq!(col_i64(t, "count_content_size"), vec![n]);
            if let Some(max) = max {
                prop_assert_eq!(col_i64(t, "max_content_size"), vec![max]);
                let mean = t.column_by_name("mean_content_size").unwrap()
                    .as_primitive::<arrow::datatypes::Float64Type>().value(0);
                prop_assert_eq!(mean, sum as f64 / n as f64);
            }
            let t = &tables["totals"];
            prop_assert_eq!(col_i64(t, "distinct_hosts"), vec![hosts.len() as i64]);
        }
    }
}
