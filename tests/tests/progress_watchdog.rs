//! The progress watchdog: one worker heartbeats normally but cannot write its output (its
//! `--output` override points at a root whose `_staging` is a file), one worker is healthy. With
//! a short `--progress-timeout-ms`, the partitions stuck on the first are taken from it
//! (released, or fenced after the release timeout) and committed by the healthy one; they are
//! not handed back; everything verifies exactly once.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_tests::checker::*;
use sawmill_tests::cluster::*;
use sawmill_tests::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LINES: u64 = 40_000;
const PARTITIONS: u32 = 4;

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_partitions_move_to_a_healthy_worker_and_verify() {
    let started = Instant::now();
    let s = services();
    let topic = unique("watchdog");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out").display().to_string();
    // A root every staged write fails under ("Not a directory"), for the stuck worker only.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("_staging"), b"not a directory").unwrap();
    let file = dir.path().join("tagged.log");
    generate_tagged(&file, LINES, 3, 777, 4);
    produce(&s, &topic, &file, PARTITIONS, true);
    let end = end_offsets(&s, &topic);

    let logs = logs_dir("progress_watchdog");
    let log = std::fs::File::create(logs.path().join("coordinator.log")).unwrap();
    let mut cmd = Coordinator::command(&s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0");
    cmd.args(["--shard-max-rows", "2000", "--shard-max-age-ms", "500"])
        .args([
            "--progress-timeout-ms",
            "3000",
            "--release-timeout-ms",
            "3000",
        ])
        .env("SAWMILL_LOG", "info")
        .stderr(log);
    let mut coordinator = Coordinator::spawn(&mut cmd);
    let stuck_log = std::fs::File::create(logs.path().join("w-stuck.log")).unwrap();
    let _stuck = ChildGuard::spawn(
        Command::new(bin("worker"))
            .args(["join", "--coordinator", &coordinator.grpc])
            .args([
                "--worker-id",
                "w-stuck",
                "--output",
                &bad.display().to_string(),
            ])
            .env("SAWMILL_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stuck_log),
    );
    // The stuck worker owns everything first; the healthy one joins and gets half.
    wait_for(
        "w-stuck owns partitions",
        Duration::from_secs(30),
        async || {
            let doc = status(&coordinator.grpc).await?;
            owners(&doc)
                .values()
                .any(|(w, _, st)| w == "w-stuck" && st == "owned")
                .then_some(())
        },
    )
    .await;
    let mut good = worker(&coordinator.grpc, "w-good", logs.path());

    let doc = wait_caught_up(&coordinator.grpc, &end, LINES, Duration::from_secs(80)).await;
    let moved_after = started.elapsed();
    assert!(
        owners(&doc).values().all(|(w, _, _)| w == "w-good"),
        "every partition ends on the healthy worker (none handed back): {doc}"
    );
    let http = coordinator.http.clone();
    let (_, metrics) = blocking(move || http_get(&http, "/metrics")).await;
    let releases: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("sawmill_coordinator_watchdog_releases_total")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    assert!(releases >= 1, "the watchdog took no partition:\n{metrics}");
    coordinator.stop();
    good.kill9();
    let (ok, report) = sawmill_verify(&s, &topic, &topic, &root);
    assert!(
        ok,
        "verify after the watchdog moved stuck partitions: {report:#}"
    );
    println!(
        "progress_watchdog: {releases} watchdog releases, caught up after {:.1}s",
        moved_after.as_secs_f64()
    );
}
