//! Poison input against a real worker (Kafka → HDFS → etcd): a shard stays within its row and
//! date caps however the consumer batches the lines, and an over-long line is a `line_too_long`
//! reject that keeps its length, so no input can stall a partition or outgrow etcd.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use sawmill_common::etcd::Checkpoints;
use sawmill_common::storage;
use sawmill_core::manifest::ShardManifest;
use sawmill_core::record::{civil_from_days, format_date};
use sawmill_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A common-log line at 00:00:01 UTC of day `days` (since 1970-01-01).
fn line_on(days: i32, path: &str) -> String {
    let (y, m, d) = civil_from_days(days);
    let month = MONTHS[usize::from(m) - 1];
    format!("h - - [{d:02}/{month}/{y}:00:00:01 +0000] \"GET {path} HTTP/1.0\" 200 1\n")
}

/// Runs one worker over partition 0 of `topic` until caught up; returns the manifests.
async fn run_worker(s: &Services, topic: &str, root: &str, args: &[&str]) -> Vec<ShardManifest> {
    let mut cmd = Command::new(bin("worker"));
    cmd.args(["run", "--bootstrap-servers", &s.kafka, "--etcd", &s.etcd])
        .args(["--topic", topic, "--output", root])
        .args(["--partitions", "0", "--until-caught-up"])
        .args(args)
        .env("SAWMILL_LOG", "warn");
    let mut w = ChildGuard::spawn(&mut cmd);
    assert!(
        w.wait_ok(Duration::from_secs(300)),
        "worker failed or timed out"
    );
    let mut cp = Checkpoints::connect(&s.etcd, topic).await.unwrap();
    cp.manifests(Some(0)).await.unwrap()
}

fn produce_lines(s: &Services, topic: &str, dir: &Path, text: &str) -> u64 {
    let file = dir.join("in.log");
    std::fs::write(&file, text).unwrap();
    produce(s, topic, &file, 1, true)
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_row_cap_holds_inside_a_batch_and_long_lines_are_rejects() {
    let s = services();
    let topic = unique("it-rows");
    let root = format!("{}/sawmill-it/{topic}", s.hdfs);
    let dir = tempfile::tempdir().unwrap();
    // 4,100 lines in Kafka before the worker starts: its batches are thousands of messages.
    let mut text = String::new();
    for i in 0..4100 {
        text.push_str(&line_on(9000, &format!("/p{i}")));
    }
    // A 100 kB line at offset 4,100: over the 64 KiB line cap.
    let long = format!(
        "{} \"-\" \"{}\"",
        line_on(9000, "/long").trim_end(),
        "x".repeat(100_000)
    );
    text.push_str(&long);
    text.push('\n');
    let lines = produce_lines(&s, &topic, dir.path(), &text);
    let end = end_offsets(&s, &topic);
    let out = storage::open(&root).await.unwrap();
    let _cleanup = Cleanup {
        storage: out.clone(),
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };

    let manifests = run_worker(&s, &topic, &root, &["--shard-max-rows", "20"]).await;
    let rows: Vec<u64> = manifests.iter().map(|m| m.records + m.rejects).collect();
    assert_eq!(rows.iter().sum::<u64>(), lines);
    assert!(
        rows.iter().all(|&n| n <= 20),
        "a shard of {:?} rows with --shard-max-rows 20",
        rows.iter().max()
    );
    let mut seen = positions(out.as_ref(), "records").await;
    seen.extend(positions(out.as_ref(), "rejects").await);
    assert_exactly_once(seen, &end);

    // The long line: a reject holding its first 64 KiB and its whole length.
    let rejects = out.list("rejects").await.unwrap();
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    let bytes = out.read(&rejects[0]).await.unwrap();
    let (batches, _) = sawmill_core::shard::decode(bytes, &rejects[0]).unwrap();
    let b = &batches[0];
    assert_eq!(b.num_rows(), 1);
    assert_eq!(
        b.column_by_name("reason")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "line_too_long"
    );
    assert_eq!(
        b.column_by_name("raw").unwrap().as_binary::<i32>().value(0),
        &long.as_bytes()[..64 << 10]
    );
    let length = b
        .column_by_name("length")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(length.value(0), long.len() as i64);
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_over_thousands_of_dates_make_small_manifests() {
    let s = services();
    let topic = unique("it-dates");
    let root = format!("{}/sawmill-it/{topic}", s.hdfs);
    let dir = tempfile::tempdir().unwrap();
    // 5,000 lines, each on a day of its own.
    let text: String = (0..5000).map(|i| line_on(9000 + i, "/")).collect();
    let lines = produce_lines(&s, &topic, dir.path(), &text);
    let end = end_offsets(&s, &topic);
    let out = storage::open(&root).await.unwrap();
    let _cleanup = Cleanup {
        storage: out.clone(),
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };

    let manifests = run_worker(&s, &topic, &root, &["--shard-max-dates", "64"]).await;
    assert_eq!(manifests.iter().map(|m| m.records).sum::<u64>(), lines);
    for m in &manifests {
        // One records file per date, plus nothing else: no rejects here.
        assert!(
            m.files.len() <= 64,
            "{} files in shard {}",
            m.files.len(),
            m.first
        );
        let size = serde_json::to_vec(m).unwrap().len();
        assert!(
            size < 64 << 10,
            "manifest of shard {} is {size} bytes",
            m.first
        );
    }
    assert!(manifests.len() >= 5000 / 64);
    let mut seen = positions(out.as_ref(), "records").await;
    seen.extend(positions(out.as_ref(), "rejects").await);
    assert_exactly_once(seen, &end);
    // Each date's file is where its date says.
    let first = &manifests[0].files[0].path;
    assert!(
        first.contains(&format!("dt={}", format_date(9000))),
        "{first}"
    );
}
