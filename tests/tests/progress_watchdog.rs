//! The progress watchdog: one worker heartbeats normally but cannot write its output (its
//! `--output` override points at a root whose `_staging` is a file), one worker is healthy. With
//! a short `--progress-timeout-ms`, the partitions stuck on the first are taken from it
//! (released, or fenced after the release timeout) and committed by the healthy one; they are
//! not handed back to the stuck worker (its log and metric say which); everything verifies
//! exactly once.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_tests::checker::*;
use sawmill_tests::cluster::*;
use sawmill_tests::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LINES: u64 = 40_000;
const PARTITIONS: u32 = 4;

/// The log without its terminal colours (`ESC [ ... m`).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

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
    // Each produce run (~1 MB here) fills one or two partitions from a random one: produce runs
    // until every partition has lines, so whichever partitions stay on the stuck worker have
    // lag.
    let mut run = 0;
    let end = loop {
        let file = dir.path().join(format!("tagged{run}.log"));
        generate_tagged(&file, LINES / 4, 3, 777 + run, 4);
        produce(&s, &topic, &file, PARTITIONS, run == 0);
        let end = end_offsets(&s, &topic);
        run += 1;
        if end.values().all(|&e| e > 0) && run >= 4 {
            break end;
        }
        assert!(run < 40, "some partition got no line: {end:?}");
    };
    let lines: u64 = end.values().sum::<i64>() as u64;

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
    // The stuck worker owns everything first, past the progress timeout (alone, nothing is
    // taken from it: no one else could); then the healthy one joins: half moves by balance,
    // the rest is taken by the watchdog at once.
    wait_for(
        "w-stuck owns every partition",
        Duration::from_secs(30),
        async || {
            let doc = status(&coordinator.grpc).await?;
            let o = owners(&doc);
            (o.len() == PARTITIONS as usize
                && o.values().all(|(w, _, st)| w == "w-stuck" && st == "owned"))
            .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut good = worker(&coordinator.grpc, "w-good", logs.path());

    // Lag zero: everything committed, necessarily by the healthy worker (the stuck one cannot
    // write). Partitions with no lag left may be balanced back to the stuck worker (there is
    // nothing to be stuck on), but never one the watchdog took from it.
    wait_caught_up(&coordinator.grpc, &end, lines, Duration::from_secs(80)).await;
    let moved_after = started.elapsed();
    let text = plain(&std::fs::read_to_string(logs.path().join("coordinator.log")).unwrap());
    let lines: Vec<&str> = text.lines().collect();
    let mut taken = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.contains("taking the partition from its owner") {
            continue;
        }
        let p = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("partition="))
            .map(|v| v.trim_matches(|c: char| !c.is_ascii_digit()).to_string())
            .unwrap();
        let back = format!("partition={p} worker=w-stuck");
        assert!(
            !lines[i..]
                .iter()
                .any(|l| l.contains("partition granted") && l.contains(&back)),
            "partition {p} was handed back to the stuck worker after the watchdog took it"
        );
        taken.push(p);
    }
    assert!(!taken.is_empty(), "the watchdog took no partition:\n{text}");
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
        "progress_watchdog: {releases} watchdog releases (partitions {taken:?}), caught up after {:.1}s",
        moved_after.as_secs_f64()
    );
}
