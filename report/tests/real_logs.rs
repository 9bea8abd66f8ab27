//! Reports of real access logs (from `../shared/data/access-logs/`, skipped where absent):
//! many dates, escaped binary requests, odd statuses.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{check_report, real_logs, run};
use sawmill_report::{build, ReportOptions};

fn check(names: &[&str]) -> Option<sawmill_report::Report> {
    let logs = real_logs(names)?;
    let run = run(&logs);
    let report = build(&run.tables, &ReportOptions::default()).unwrap();
    check_report(&run, &report, 10);
    Some(report)
}

#[test]
fn elastic_apache_2015() {
    let Some(r) = check(&["elastic_apache_logs_2015.log"]) else {
        return;
    };
    assert!(r.daily_distinct_hosts.len() >= 4);
}

#[test]
fn honeypot_binary_requests_stay_text() {
    let Some(r) = check(&["honeypot_2019_hanxen.log"]) else {
        return;
    };
    // The log writes binary requests escaped (`\x16\x03...`): they are endpoints, shown as text.
    assert!(r
        .top_endpoints
        .iter()
        .any(|e| e.endpoint.as_deref().is_some_and(|e| e.contains("\\x"))));
    let html = r.to_html();
    assert!(!html.bytes().any(|b| b < 0x20 && b != b'\n'));
    assert!(
        !r.to_text().bytes().any(|b| b == 0x1b),
        "no terminal escapes"
    );
}

#[test]
fn several_real_logs_in_one_report() {
    check(&[
        "dadosgovpe_2024_nginx.log",
        "nasa_jul95_insight_fansite_lordbadri.log",
        "usask_jun95_slice_benzid-wael.log",
    ]);
}
