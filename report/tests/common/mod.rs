//! Shared by the report's integration tests: runs the real pipeline into a tempdir, reads the
//! summary tables back, and checks a report against the tables it was built from.
#![allow(dead_code)]
// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use arrow::array::{Array, Int32Array, Int64Array, StringArray};
use sawmill_common::embedded::input::InputSpec;
use sawmill_common::embedded::pipeline::{self, Progress, RunConfig};
use sawmill_common::{storage, summary};
use sawmill_core::analytics::Partial;
use sawmill_report::{Report, Tables, CHART_IDS};
use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn sample_log() -> PathBuf {
    repo_root().join("data/sample/nasa_aug95_head.log")
}

/// The real access logs beside the repository, or `None` (and a message) where absent.
pub fn real_logs(names: &[&str]) -> Option<Vec<PathBuf>> {
    let dir = repo_root().join("../shared/data/access-logs");
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
        eprintln!(
            "SKIPPED: real access log {} is absent (the shared data folder is not beside the repo)",
            missing.display()
        );
        return None;
    }
    Some(paths)
}

pub struct Run {
    pub dir: tempfile::TempDir,
    pub tables: Tables,
    pub partial: Partial,
}

/// The runtime storage calls run on; multi-threaded, since the run's plain threads block on it.
pub fn io() -> &'static tokio::runtime::Runtime {
    static IO: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    IO.get_or_init(|| tokio::runtime::Runtime::new().unwrap())
}

/// `sawmill run` of `logs` (one input each) into a tempdir; the summary tables read back.
pub fn run(logs: &[PathBuf]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = io()
        .block_on(storage::open(dir.path().to_str().unwrap()))
        .unwrap();
    let inputs: Vec<InputSpec> = logs
        .iter()
        .enumerate()
        .map(|(i, p)| InputSpec::new(p, i as i32))
        .collect();
    let cfg = RunConfig {
        threads: 2,
        ..RunConfig::default()
    };
    let outcome = pipeline::run(
        &inputs,
        out.clone(),
        io().handle(),
        &cfg,
        &Progress::default(),
    )
    .unwrap();
    let tables = io().block_on(summary::read(out.as_ref())).unwrap();
    Run {
        dir,
        tables,
        partial: outcome.partial,
    }
}

fn i64s<'a>(t: &'a Tables, name: &str, col: &str) -> &'a Int64Array {
    t[name]
        .column_by_name(col)
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap()
}

fn i32s<'a>(t: &'a Tables, name: &str, col: &str) -> &'a Int32Array {
    t[name]
        .column_by_name(col)
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap()
}

fn strs<'a>(t: &'a Tables, name: &str, col: &str) -> &'a StringArray {
    t[name]
        .column_by_name(col)
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap()
}

/// The `<svg data-chart="id">...</svg>` element of a page or DOM dump.
pub fn chart_svg<'a>(html: &'a str, id: &str) -> &'a str {
    let marker = format!("data-chart=\"{id}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no chart {id}"));
    let start = html[..at].rfind("<svg").unwrap();
    let end = at + html[at..].find("</svg>").unwrap() + "</svg>".len();
    &html[start..end]
}

/// Bars: every `<rect>` but the white background.
pub fn bars(svg: &str) -> usize {
    svg.split("<rect")
        .skip(1)
        .filter(|r| !r[..r.find('>').unwrap()].contains("fill=\"#FFFFFF\""))
        .count()
}

/// The text nodes of `<text>` elements, trimmed.
pub fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// How many bars each chart must have, by chart id.
pub fn expected_bars(r: &Report) -> Vec<(&'static str, usize)> {
    vec![
        ("status", r.status.len()),
        ("status_log", r.status.len()),
        ("daily_404", r.not_found.per_day.len()),
        ("hourly_404", 24),
        ("hourly_requests", 24),
        ("daily_bytes", r.daily_bytes.len()),
    ]
}

/// The x tick labels each chart must show (thinned as the chart thins them).
pub fn expected_labels(r: &Report) -> Vec<(String, Vec<String>)> {
    sawmill_report::chart_data(r)
        .into_iter()
        .map(|(spec, data)| {
            let labels: Vec<String> = data.into_iter().map(|d| d.0).collect();
            let shown = sawmill_report::charts::label_indices(&labels)
                .into_iter()
                .map(|i| labels[i].clone())
                .collect();
            (spec.id, shown)
        })
        .collect()
}

/// No tag of the page names an external resource: no URL scheme, `src`, `href` other than
/// in-page anchors, `url(` or `@import`. Text content is HTML-escaped, so `<` opens tags only.
pub fn assert_no_external_urls(html: &str) {
    for tag in html
        .split('<')
        .skip(1)
        .map(|t| &t[..t.find('>').unwrap_or(t.len())])
    {
        let lower = tag.to_ascii_lowercase();
        for bad in ["http://", "https://", "//", "src=", "url(", "@import"] {
            if bad == "//" && (lower.starts_with("!--") || lower.starts_with('/')) {
                continue;
            }
            assert!(
                !lower.contains(bad),
                "tag names an external resource: <{tag}>"
            );
        }
        if let Some(h) = lower.find("href=\"") {
            assert!(lower[h + 6..].starts_with('#'), "non-anchor link: <{tag}>");
        }
    }
    let style = &html[html.find("<style>").unwrap()..html.find("</style>").unwrap()];
    assert!(!style.contains("url(") && !style.contains("@import"));
}

/// The report's numbers are the summary tables' (and agree with the pipeline's own views).
pub fn check_report(run: &Run, report: &Report, top: usize) {
    let t = &run.tables;
    let json = report.to_json();

    // Totals and status counts straight from their tables.
    for col in ["records", "rejects", "bytes", "distinct_hosts"] {
        assert_eq!(
            json["totals"][col],
            i64s(t, "totals", col).value(0),
            "{col}"
        );
    }
    let (s, c) = (
        i32s(t, "status_count", "status"),
        i64s(t, "status_count", "count"),
    );
    let want: Vec<serde_json::Value> = (0..s.len())
        .map(|i| serde_json::json!({"status": s.value(i), "count": c.value(i)}))
        .collect();
    assert_eq!(json["status"], serde_json::Value::Array(want));

    // Top hosts: the first rows of host_count.
    let (h, c) = (
        strs(t, "host_count", "host"),
        i64s(t, "host_count", "count"),
    );
    let n = h.len().min(top);
    assert_eq!(report.top_hosts.len(), n);
    for (i, row) in report.top_hosts.iter().enumerate() {
        assert_eq!((row.host.as_str(), row.count), (h.value(i), c.value(i)));
    }

    // Per-date and per-hour series, row for row.
    let c = i64s(t, "unique_host_count", "count");
    let got: Vec<i64> = report
        .daily_distinct_hosts
        .iter()
        .map(|d| d.count)
        .collect();
    assert_eq!(got, c.values().to_vec());
    let got: Vec<i64> = report.daily_bytes.iter().map(|d| d.count).collect();
    assert_eq!(got, i64s(t, "daily_bytes", "bytes").values().to_vec());
    let got: Vec<i64> = report.not_found.per_day.iter().map(|d| d.count).collect();
    assert_eq!(got, i64s(t, "daily_404_count", "count").values().to_vec());
    let got: Vec<i64> = report.hourly_requests.iter().map(|d| d.count).collect();
    assert_eq!(
        got,
        i64s(t, "hourly_request_count", "count").values().to_vec()
    );
    assert_eq!(got.iter().sum::<i64>(), report.totals.records);
    assert_eq!(report.not_found.total as usize, t["table_404"].num_rows());
    let per_hour: i64 = report.not_found.per_hour.iter().map(|h| h.count).sum();
    assert_eq!(per_hour, report.not_found.total);
    let reject_sum: i64 = report.rejects.iter().map(|g| g.count).sum();
    assert_eq!(reject_sum, report.totals.rejects);

    // The derived sections agree with the pipeline's own notebook views.
    let v = run.partial.views(top);
    let eps = |e: &[sawmill_report::model::EndpointCount]| -> Vec<(Option<String>, u64)> {
        e.iter()
            .map(|e| (e.endpoint.clone(), e.count as u64))
            .collect()
    };
    let veps = |e: &[sawmill_core::analytics::EndpointCount]| -> Vec<(Option<String>, u64)> {
        e.iter().map(|e| (e.endpoint.clone(), e.count)).collect()
    };
    assert_eq!(eps(&report.top_endpoints), veps(&v.top_endpoints));
    assert_eq!(
        eps(&report.not_found.top_endpoints),
        veps(&v.top_404_endpoints)
    );
    let hosts: Vec<(String, u64)> = report
        .not_found
        .top_hosts
        .iter()
        .map(|h| (h.host.clone(), h.count as u64))
        .collect();
    let vhosts: Vec<(String, u64)> = v
        .top_404_hosts
        .iter()
        .map(|h| (h.host.clone(), h.count))
        .collect();
    assert_eq!(hosts, vhosts);
    let wk: Vec<(i32, String, Option<String>, i64)> = report
        .top_endpoint_by_weekday
        .iter()
        .map(|w| {
            (
                w.weekday,
                w.weekday_name.clone(),
                w.endpoint.clone(),
                w.count,
            )
        })
        .collect();
    let vwk: Vec<(i32, String, Option<String>, i64)> = v
        .top_endpoint_by_weekday
        .iter()
        .map(|w| {
            (
                i32::from(w.weekday),
                w.weekday_name.to_string(),
                w.endpoint.clone(),
                w.count as i64,
            )
        })
        .collect();
    assert_eq!(wk, vwk);
    assert_eq!(
        report.daily_requests_per_host.len(),
        v.daily_requests_per_host.len()
    );
    for (a, b) in report
        .daily_requests_per_host
        .iter()
        .zip(&v.daily_requests_per_host)
    {
        assert_eq!(
            (a.date.as_str(), a.requests as u64),
            (b.date.as_str(), b.requests)
        );
        assert_eq!(a.distinct_hosts as u64, b.distinct_hosts);
        assert!((a.avg_requests_per_host - b.avg_requests_per_host).abs() < 1e-9);
    }

    // Every chart is in the page, with one bar per row and its tick labels.
    let html = report.to_html();
    for id in CHART_IDS {
        assert!(
            html.contains(&format!("data-chart=\"{id}\"")),
            "chart {id} missing"
        );
    }
    for (id, n) in expected_bars(report) {
        assert_eq!(bars(chart_svg(&html, id)), n, "bars of chart {id}");
    }
    for (id, labels) in expected_labels(report) {
        let texts = texts(chart_svg(&html, &id));
        for l in labels {
            assert!(
                texts.contains(&l),
                "chart {id} lacks tick label {l}: {texts:?}"
            );
        }
    }
    assert_no_external_urls(&html);

    // The other renderings carry the same numbers.
    let text = report.to_text();
    for h in &report.top_hosts {
        assert!(text.contains(&h.host), "text lacks host {}", h.host);
    }
    assert!(text.contains("Rejected lines by reason"));
}
