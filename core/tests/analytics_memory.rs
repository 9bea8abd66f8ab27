//! What the merged analytics hold per distinct host, endpoint and 404 row: the figures
//! ARCHITECTURE.md quotes (`cargo test -p sawmill-core --test analytics_memory -- --nocapture`
//! prints them, with the process's resident-memory growth as a cross-check).

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_core::analytics::{AnalyticsConfig, Partial};
use sawmill_core::parse::parse_line;
use sawmill_core::record::Position;

const N: usize = 200_000;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Heap bytes a merged partial holds per line of `lines` (all merged in as one shard), and the
/// resident-memory growth per line while it is built.
fn per_entry(lines: impl Fn(usize) -> String) -> (f64, f64) {
    let rss = rss_bytes();
    let mut merged = Partial::new(&AnalyticsConfig::default());
    let mut shard = Partial::new(&AnalyticsConfig::default());
    for i in 0..N {
        let pos = Position {
            partition: 0,
            offset: i as i64,
        };
        shard.observe(&parse_line(lines(i).as_bytes()).unwrap(), pos);
    }
    merged.merge(shard);
    let held = merged.keyed_heap_bytes() as f64 / N as f64;
    let grown = rss_bytes().saturating_sub(rss) as f64 / N as f64;
    (held, grown)
}

#[test]
fn bytes_held_per_distinct_host_endpoint_and_404_row() {
    // Keys of realistic length: a 14-byte host (NASA's are 10-30), a 20-byte endpoint.
    let host = per_entry(|i| {
        format!(r#"h{i:08}.xx.net - - [01/Jul/1995:00:00:01 -0400] "GET /x HTTP/1.0" 200 7"#)
    });
    let endpoint = per_entry(|i| {
        format!(r#"h - - [01/Jul/1995:00:00:01 -0400] "GET /images/{i:08}.gif HTTP/1.0" 200 7"#)
    });
    let row_404 =
        per_entry(|_| r#"h - - [01/Jul/1995:00:00:01 -0400] "GET /x HTTP/1.0" 404 7"#.to_string());
    println!(
        "held per distinct host (seen on one day): {:.0} B, per distinct endpoint: {:.0} B, per 404 row: {:.0} B; resident growth while building: {:.0} / {:.0} / {:.0} B",
        host.0, endpoint.0, row_404.0, host.1, endpoint.1, row_404.1
    );
    // Vectors and tables grow by doubling, hence ranges.
    assert!((60.0..200.0).contains(&host.0), "{host:?}");
    assert!((100.0..250.0).contains(&endpoint.0), "{endpoint:?}");
    assert!((24.0..80.0).contains(&row_404.0), "{row_404:?}");
}
