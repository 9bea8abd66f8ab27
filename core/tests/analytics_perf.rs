//! Rough cost of `Partial::observe` (parsing excluded). Ignored by default; run with
//! `cargo test --release -p sawmill-core --test analytics_perf -- --ignored --nocapture`.

use sawmill_core::analytics::{AnalyticsConfig, Partial};
use sawmill_core::generate::{generate, GenerateConfig};
use sawmill_core::parse::parse_line;
use sawmill_core::record::Position;
use std::time::Instant;

/// Best-of-3 nanoseconds per observed record, each run into a fresh partial.
fn ns_per_observe(text: &[u8]) -> (f64, u64, u64) {
    let recs: Vec<_> = text
        .split(|&b| b == b'\n')
        .filter_map(|l| parse_line(l).ok())
        .collect();
    let mut best = f64::MAX;
    let mut p = Partial::new(&AnalyticsConfig::default());
    for _ in 0..3 {
        p = Partial::new(&AnalyticsConfig::default());
        let t = Instant::now();
        for (i, r) in recs.iter().enumerate() {
            p.observe(
                r,
                Position {
                    partition: 0,
                    offset: i as i64,
                },
            );
        }
        best = best.min(t.elapsed().as_nanos() as f64 / recs.len() as f64);
    }
    let t = Instant::now();
    let tables = p.tables();
    let views = p.views(10);
    let bytes = p.to_bytes().expect("a partial encodes");
    let back = Partial::from_bytes(&bytes).expect("its own encoding decodes");
    eprintln!(
        "  tables+views+to_bytes+from_bytes: {:?} ({} tables, {} encoded bytes, top host {:?})",
        t.elapsed(),
        tables.len(),
        bytes.len(),
        views.top_hosts.first()
    );
    assert_eq!(back.records(), recs.len() as u64);
    (best, recs.len() as u64, p.distinct_hosts())
}

#[test]
#[ignore = "timing; run in release"]
fn analytics_observe_cost() {
    let mut text = Vec::new();
    generate(&GenerateConfig::new(2_000_000, 7), &mut text).unwrap();
    let (ns, n, hosts) = ns_per_observe(&text);
    eprintln!("generated NASA-like: {ns:.1} ns/observe over {n} records, {hosts} distinct hosts");

    let nasa = "/work/shared/data/access-logs/nasa_jul95_insight_fansite_lordbadri.log";
    if let Ok(one) = std::fs::read(nasa) {
        let text = one.repeat(100);
        let (ns, n, hosts) = ns_per_observe(&text);
        eprintln!("NASA Jul95 sample x100: {ns:.1} ns/observe over {n} records, {hosts} hosts");
    }
}
