//! A report over capped analytics: what the caps folded shows as `(other)`, never as a ranked
//! key, and the totals stay exact.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_core::analytics::{AnalyticsConfig, Partial, OTHER_KEY};
use sawmill_core::parse::parse_line;
use sawmill_core::record::Position;
use sawmill_report::{build, ReportOptions, Tables};

#[test]
fn folded_keys_are_reported_as_other_and_counted_exactly() {
    let mut shard = Partial::new(&AnalyticsConfig::default());
    for i in 0..50 {
        let l = format!(
            r#"h{} - - [01/Jul/1995:00:00:01 -0400] "GET /u/{i} HTTP/1.0" 404 7"#,
            i % 10
        );
        let pos = Position {
            partition: 0,
            offset: i,
        };
        shard.observe(&parse_line(l.as_bytes()).unwrap(), pos);
    }
    let mut merged = Partial::new(&AnalyticsConfig {
        max_distinct_hosts: 4,
        max_distinct_endpoints: 5,
        max_404_rows: 6,
        ..Default::default()
    });
    merged.merge(shard);
    let tables: Tables = merged
        .tables()
        .into_iter()
        .map(|(n, b)| (n.to_string(), b))
        .collect();
    let report = build(&tables, &ReportOptions::default()).unwrap();
    let f = &report.totals.folded;
    assert_eq!(
        (f.host_requests, f.endpoint_requests, f.rows_404),
        (30, 45, 44)
    );
    assert_eq!(
        report.not_found.total, 50,
        "every 404 counted, listed or not"
    );
    assert!(report.top_hosts.iter().all(|h| h.host != OTHER_KEY));
    assert_eq!(report.top_hosts.len(), 4);
    assert!(report
        .top_endpoints
        .iter()
        .all(|e| e.endpoint.as_deref() != Some(OTHER_KEY)));
    let text = report.to_text();
    assert!(text.contains("caps reached"), "{text}");
    assert!(text.contains("(other)"), "{text}");
    assert!(report.to_html().contains("caps reached"));
    assert_eq!(report.to_json()["totals"]["folded"]["rows_404"], 44);
}
