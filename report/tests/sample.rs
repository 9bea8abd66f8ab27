//! The report of the committed NASA sample, checked against the summary tables it reads.

mod common;

use common::{check_report, run, sample_log};
use sawmill_report::{build, Error, ReportOptions, CHART_IDS};

#[test]
fn sample_report_matches_its_summary_tables() {
    let run = run(&[sample_log()]);
    for top in [10, 3] {
        let opts = ReportOptions {
            top,
            ..ReportOptions::default()
        };
        let report = build(&run.tables, &opts).unwrap();
        check_report(&run, &report, top);
    }
}

#[test]
fn sample_report_sections() {
    let run = run(&[sample_log()]);
    let report = build(&run.tables, &ReportOptions::default()).unwrap();
    // The sample is the first 1,930 lines of NASA Aug95: one date, with split records rejected.
    assert_eq!(report.daily_distinct_hosts.len(), 1);
    assert_eq!(report.daily_distinct_hosts[0].date, "1995-08-01");
    assert!(report.totals.rejects > 0 && !report.rejects.is_empty());
    for g in &report.rejects {
        assert!(
            !g.examples.is_empty() && g.examples.len() <= 3,
            "{}",
            g.reason
        );
    }
    assert_eq!(report.hourly_requests.len(), 24);
    assert_eq!(report.top_endpoint_by_weekday.len(), 1);
    assert_eq!(report.top_endpoint_by_weekday[0].weekday_name, "Tuesday");
    assert_eq!(report.charts.len(), CHART_IDS.len());
    // Date ticks are dates, not day numbers.
    let html = report.to_html();
    let svg = common::chart_svg(&html, "daily_hosts");
    assert!(common::texts(svg).contains(&"1995-08-01".to_string()));

    let json = report.to_json();
    assert_eq!(json["totals"]["records"], report.totals.records);
    assert_eq!(json["top_hosts"].as_array().unwrap().len(), 10);
    assert!(json["rejects"][0]["examples"][0]["escaped"].is_string());
}

#[test]
fn absent_tables_read_as_empty_but_one_row_tables_are_required() {
    let mut run = run(&[sample_log()]);
    // A summary without 404s has no daily_404_count file at all.
    run.tables.remove("daily_404_count");
    let report = build(&run.tables, &ReportOptions::default()).unwrap();
    assert!(report.not_found.per_day.is_empty());
    let html = report.to_html();
    let svg = common::chart_svg(&html, "daily_404");
    assert_eq!(common::bars(svg), 0);
    assert!(common::texts(svg).contains(&"no data".to_string()));

    run.tables.remove("totals");
    let err = build(&run.tables, &ReportOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::NotOneRow { ref table, rows: 0 } if table == "totals"),
        "{err}"
    );
}

#[test]
fn empty_or_absent_root_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let read_root = |root: &str| common::io().block_on(sawmill_common::summary::read_root(root));
    let err = read_root(&root).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("no summary tables under {root}: run `sawmill run` or a cluster first")
    );
    let absent = dir.path().join("nope");
    let err = read_root(absent.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, sawmill_common::Error::NoSummary { .. }));
    assert!(!absent.exists(), "reading must not create the root");
}

#[test]
fn read_summary_reads_a_run() {
    let run = run(&[sample_log()]);
    let tables = common::io()
        .block_on(sawmill_common::summary::read_root(
            run.dir.path().to_str().unwrap(),
        ))
        .unwrap();
    assert_eq!(tables.len(), run.tables.len());
    assert!(build(&tables, &ReportOptions::default()).is_ok());
}

#[test]
fn reject_examples_show_bytes_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("binary.log");
    let mut bytes = std::fs::read(sample_log()).unwrap()[..4000].to_vec();
    bytes.truncate(bytes.iter().rposition(|&b| b == b'\n').unwrap() + 1);
    // A TLS hello sent to a plain-HTTP port, and a line with a terminal escape and markup.
    bytes.extend_from_slice(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\\x16\n");
    bytes.extend_from_slice(b"\x1b[31m<script>alert(1)</script>\n");
    std::fs::write(&log, bytes).unwrap();
    let run = run(&[log]);
    let report = build(&run.tables, &ReportOptions::default()).unwrap();
    let examples: Vec<&str> = report
        .rejects
        .iter()
        .flat_map(|g| g.examples.iter().map(|e| e.escaped.as_str()))
        .collect();
    assert!(
        examples.contains(&"\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xfc\\x03\\x03\\\\x16"),
        "{examples:?}"
    );
    assert!(
        examples.contains(&"\\x1b[31m<script>alert(1)</script>"),
        "{examples:?}"
    );
    let html = report.to_html();
    assert!(html.contains("<span class=\"esc\">\\x16</span><span class=\"esc\">\\x03</span>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>alert"));
    assert!(!report.to_text().contains('\x1b'));
    common::assert_no_external_urls(&html);
}
