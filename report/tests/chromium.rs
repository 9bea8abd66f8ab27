//! Opens the HTML report in headless Chromium (where `/usr/bin/chromium` exists; CI's setup
//! installs it): the page must load without script errors, every chart must be in the DOM with
//! its bars and tick labels, and a screenshot must render.
//!
//! Set `SAWMILL_REPORT_KEEP=<dir>` to keep the pages and screenshots for a look.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{bars, chart_svg, expected_bars, expected_labels, real_logs, run, sample_log, texts};
use sawmill_report::{build, Report, ReportOptions, CHART_IDS};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium() -> Option<&'static str> {
    if Path::new(CHROMIUM).exists() {
        Some(CHROMIUM)
    } else {
        eprintln!("SKIPPED: {CHROMIUM} is absent (scripts/setup.sh --test installs it)");
        None
    }
}

/// Runs Chromium headless with no network and a throwaway profile; returns stdout. Killed after
/// two minutes so a wedged browser fails the test instead of hanging it. Stdout goes to a file:
/// a DOM larger than the pipe buffer would block a browser writing to an unread pipe.
fn headless(bin: &str, profile: &Path, extra: &[String], page: &Path) -> String {
    let stdout = profile.with_extension("stdout");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    String::from_utf8_lossy(&std::fs::read(&stdout).unwrap()).into_owned()
}

fn check_in_browser(name: &str, report: &Report) {
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join(format!("{name}.html"));
    std::fs::write(&page, report.to_html()).unwrap();
    let profile = dir.path().join("profile");

    let dom = headless(bin, &profile, &["--dump-dom".into()], &page);
    assert!(
        dom.contains("data-ok=\"1\""),
        "the page's script did not finish: {}",
        &dom[..dom.len().min(400)]
    );
    assert!(
        dom.contains("data-errors=\"\""),
        "script errors in the page"
    );
    for id in CHART_IDS {
        assert!(
            dom.contains(&format!("data-chart=\"{id}\"")),
            "chart {id} not in the DOM"
        );
    }
    for (id, n) in expected_bars(report) {
        assert_eq!(
            bars(chart_svg(&dom, id)),
            n,
            "bars of chart {id} in the DOM"
        );
    }
    for (id, labels) in expected_labels(report) {
        let texts = texts(chart_svg(&dom, &id));
        for l in labels {
            assert!(
                texts.contains(&l),
                "chart {id} lacks tick label {l} in the DOM"
            );
        }
    }

    let png = dir.path().join(format!("{name}.png"));
    let shot = [
        format!("--screenshot={}", png.display()),
        "--window-size=1280,4000".into(),
    ];
    headless(bin, &profile, &shot, &page);
    let bytes = std::fs::read(&png).expect("chromium wrote no screenshot");
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    // A blank 1280x4000 page compresses to a few kB; charts, tables and text make far more.
    assert!(
        bytes.len() > 100_000,
        "screenshot is only {} bytes",
        bytes.len()
    );

    if let Ok(keep) = std::env::var("SAWMILL_REPORT_KEEP") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&page, keep.join(page.file_name().unwrap())).unwrap();
        std::fs::copy(&png, keep.join(png.file_name().unwrap())).unwrap();
    }
}

#[test]
fn sample_report_renders_in_chromium() {
    let run = run(&[sample_log()]);
    let report = build(&run.tables, &ReportOptions::default()).unwrap();
    check_in_browser("sample", &report);
}

#[test]
fn multi_date_real_report_renders_in_chromium() {
    let Some(logs) = real_logs(&[
        "dadosgovpe_2024_nginx.log",
        "elastic_apache_logs_2015.log",
        "nasa_aug95_head_aman-panchal.log",
    ]) else {
        return;
    };
    let run = run(&logs);
    let opts = ReportOptions {
        source: Some("real access logs".into()),
        ..ReportOptions::default()
    };
    let report = build(&run.tables, &opts).unwrap();
    assert!(
        report.daily_bytes.len() > 15,
        "enough dates to thin the labels"
    );
    check_in_browser("real", &report);
}
