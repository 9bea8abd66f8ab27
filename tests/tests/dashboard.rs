//! The live dashboard and `/metrics` during a real cluster run: headless Chromium renders the
//! coordinator's page (every chart with data, no script errors, a screenshot), and the
//! Prometheus text of the coordinator and the worker is parsed and checked against the records
//! actually processed.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_tests::cluster::Coordinator;
use sawmill_tests::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// The values of a metric, one per label set.
fn samples(text: &str, name: &str) -> Vec<f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text format");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .collect()
}

/// Sum of a counter over all its label sets.
fn counter(text: &str, name: &str) -> f64 {
    samples(text, name).iter().sum()
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[test]
fn dashboard_renders_and_metrics_agree_with_the_records() {
    let s = services();
    let Some(files) = real_logs("dashboard_renders_and_metrics_agree_with_the_records") else {
        return;
    };
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(chromium) = chromium else {
        panic!("chromium is missing: run scripts/setup.sh --test");
    };
    let topic = unique("it-dash");
    let root = format!("{}/sawmill-it/{topic}", s.hdfs);
    let file = files
        .iter()
        .find(|f| f.to_string_lossy().contains("nasa_jul95"))
        .expect("nasa jul95 log");
    let lines = produce(&s, &topic, file, 2, true) as f64;

    let coord = Coordinator::spawn(
        Coordinator::command(&s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0").args([
            "--shard-max-age-ms",
            "1000",
            "--summary-interval-ms",
            "1000",
        ]),
    );
    let (grpc, http) = (coord.grpc.clone(), coord.http.clone());
    let metrics_addr = free_addr();
    let _worker = ChildGuard::spawn(
        Command::new(bin("worker"))
            .args([
                "join",
                "--coordinator",
                &grpc,
                "--worker-id",
                "dash-w1",
                "--metrics-listen",
                &metrics_addr,
            ])
            .env("SAWMILL_LOG", "warn")
            .stdout(Stdio::null()),
    );

    // Wait until the coordinator has merged every line.
    let start = Instant::now();
    loop {
        let m = http_get(&http, "/metrics").1;
        if counter(&m, "sawmill_coordinator_merged_records_total")
            + counter(&m, "sawmill_coordinator_merged_rejects_total")
            >= lines
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "not merged within 180 s; metrics:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let cm = http_get(&http, "/metrics").1;
    assert_eq!(
        counter(&cm, "sawmill_coordinator_merged_records_total")
            + counter(&cm, "sawmill_coordinator_merged_rejects_total"),
        lines
    );
    assert_eq!(counter(&cm, "sawmill_coordinator_workers_alive"), 1.0);
    let wm = http_get(&metrics_addr, "/metrics").1;
    assert_eq!(
        counter(&wm, "sawmill_worker_records_parsed_total")
            + counter(&wm, "sawmill_worker_records_rejected_total"),
        lines,
        "worker counters == records committed; worker metrics:\n{wm}"
    );
    assert_eq!(counter(&wm, "sawmill_worker_records_consumed_total"), lines);
    assert!(counter(&wm, "sawmill_worker_shards_committed_total") >= 1.0);
    // The backlog gauges, per partition, within their bounds (4 credits, 2 commits in flight).
    for (name, max) in [
        ("sawmill_worker_queued_batches", 4.0),
        ("sawmill_worker_commits_in_flight", 2.0),
    ] {
        let values = samples(&wm, name);
        assert_eq!(values.len(), 2, "{name}: one per partition in\n{wm}");
        assert!(
            values.iter().all(|v| (0.0..=max).contains(v)),
            "{name}: {values:?}"
        );
    }

    // Headless Chromium loads the page, polls the document and renders every chart.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{http}/");
    let chrome = |extra: &[&str]| {
        let out = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
            ])
            .args([
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .args(["--virtual-time-budget=8000", "--window-size=1400,3000"])
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let dom = chrome(&["--dump-dom"]);
    assert!(
        dom.contains("data-ok=\"1\""),
        "the page never rendered a document"
    );
    assert!(
        dom.contains("data-errors=\"\""),
        "script errors on the page"
    );
    let charts = sawmill_report::CHART_IDS.len();
    assert!(
        dom.contains(&format!("data-charts=\"{charts}\"")),
        "expected {charts} charts"
    );
    for id in sawmill_report::CHART_IDS {
        assert!(
            dom.contains(&format!("id=\"panel-{id}\"")),
            "chart {id} missing"
        );
    }
    // The status chart has one bar per status code in the merged analytics.
    let analytics: serde_json::Value =
        serde_json::from_str(&http_get(&http, "/api/v1/analytics").1).unwrap();
    let statuses = analytics["tables"]["status_count"]
        .as_array()
        .map_or(0, |a| a.len());
    let panel = dom
        .split("id=\"panel-status\"")
        .nth(1)
        .and_then(|p| p.split("</section>").next())
        .unwrap_or("");
    assert!(statuses > 0);
    assert!(
        panel.matches("<rect").count() >= statuses,
        "status chart has fewer bars than statuses"
    );
    assert!(
        dom.contains("dash-w1"),
        "the worker is listed in the cluster view"
    );
    let shot = dir.path().join("dashboard.png");
    chrome(&[&format!("--screenshot={}", shot.display())]);
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 50_000, "screenshot too small ({size} bytes)");
    if let Ok(keep) = std::env::var("SAWMILL_DASHBOARD_KEEP") {
        let _ = std::fs::copy(&shot, keep);
    }
}
