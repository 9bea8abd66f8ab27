//! Chaos (issue #12, fault 9): torn state on the output root when a partition starts, with a
//! worker run in-process against a PRIVATE services instance (etcd + Kafka), local output:
//!
//! - partition 0: a 0-byte file and a truncated Parquet file left in its staging directory
//!   under the names an attempt at the next range would use (a crash mid-write). Recovery must
//!   delete both and the partition resume from its committed offset;
//! - partition 1: its last committed shard unpublished again (every file back under its staging
//!   name, as a crash between the etcd commit and publishing leaves it) and one of those staged
//!   files lost: a manifest pointing at a missing staged file. Data is gone outside Sawmill, so
//!   the partition must not guess: it reports failing (metrics: `partition_failing`, the error
//!   naming the file), publishes nothing of that shard and keeps its offset, while partition 0
//!   goes on; once the file is restored it resumes from its last committed offset.
//!
//! Then everything verifies (`sawmill verify`: 0 lost, 0 duplicated, summary exact, etcd at
//! the end, producer sequences whole). Prints the time from the file's restoration to catch-up.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_common::etcd::Checkpoints;
use sawmill_core::layout::{self, ShardRange};
use sawmill_tests::checker::*;
use sawmill_tests::cluster::{blocking, wait_for};
use sawmill_tests::faults::*;
use sawmill_tests::*;
use std::path::Path;
use std::time::{Duration, Instant};

const LINES: u64 = 20_000;
const KEYS: u32 = 3;
/// Port offset of the private services (`SAWMILL_CHAOS_PORT_OFFSET` overrides it).
const PORT_OFFSET: u16 = 880;

/// Writes the first `n` lines of `file` to `first` and the rest to `rest`.
fn split_at(file: &Path, n: usize, first: &Path, rest: &Path) {
    let data = std::fs::read(file).unwrap();
    let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    std::fs::write(first, lines[..n].concat()).unwrap();
    std::fs::write(rest, lines[n..].concat()).unwrap();
}

fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka and etcd (a private instance): scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_torn_staging_state_is_repaired_or_reported() {
    let started = Instant::now();
    let private = PrivateServices::up(&["etcd", "kafka"], PORT_OFFSET);
    let s = private.services.clone();
    let topic = unique("chaos-torn");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let root_str = root.display().to_string();
    let (file, a, b) = (
        dir.path().join("tagged.log"),
        dir.path().join("a.log"),
        dir.path().join("b.log"),
    );
    generate_tagged(&file, LINES, 11, 77, KEYS);
    split_at(&file, LINES as usize / 2, &a, &b);
    produce(&s, &topic, &a, 2, true);
    let settings = pipeline_settings(&s, &topic, &root_str);
    run_worker(settings.clone(), "torn", None, Duration::from_secs(90)).await;

    let mut cp = Checkpoints::connect(&s.etcd, &topic).await.unwrap();
    // Partition 0: a 0-byte and a truncated Parquet file staged for the range that comes next.
    let p0 = cp.state(0).await.unwrap();
    let (next0, epoch0) = (p0.next_offset.unwrap(), p0.epoch.unwrap());
    let next = ShardRange {
        source: topic.clone(),
        partition: 0,
        first: next0,
        last: next0 + 999,
    };
    let published0 = cp.manifests(Some(0)).await.unwrap();
    let parquet = std::fs::read(root.join(&published0[0].files[0].path)).unwrap();
    let zero = next.staging_path(epoch0, &layout::staging_nonce(), &next.records_path(9312));
    let torn = next.staging_path(epoch0, &layout::staging_nonce(), &next.rejects_path());
    put(&root, &zero, b"");
    put(&root, &torn, &parquet[..parquet.len() / 2]);

    // Partition 1: its last shard committed but unpublished, and one staged file lost.
    let next1 = cp.state(1).await.unwrap().next_offset.unwrap();
    let last1 = cp.manifests(Some(1)).await.unwrap().pop().unwrap();
    assert_eq!(last1.next_offset(), next1);
    for f in last1.all_files() {
        let to = root.join(&f.staging);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::rename(root.join(&f.path), to).unwrap();
    }
    let lost = last1.files[0].clone();
    let lost_bytes = std::fs::read(root.join(&lost.staging)).unwrap();
    std::fs::remove_file(root.join(&lost.staging)).unwrap();

    produce(&s, &topic, &b, 2, false);
    let metrics = format!("127.0.0.1:{}", free_port());
    let run = tokio::spawn(run_worker(
        settings,
        "torn",
        Some(metrics.clone()),
        Duration::from_secs(180),
    ));
    // Partition 1 reports failing; partition 0 goes past its torn files.
    let page = wait_for(
        "partition 1 failing and partition 0 resumed",
        Duration::from_secs(60),
        async || {
            let m = metrics.clone();
            let page = blocking(move || metrics_page(&m)).await?;
            let failing = metric(
                &page,
                "sawmill_worker_partition_failing",
                "partition=\"1\"",
            );
            let at0 = metric(
                &page,
                "sawmill_worker_committed_offset",
                "partition=\"0\"",
            );
            (failing == 1.0 && at0 > next0 as f64).then_some(page)
        },
    )
    .await;
    let failures = metric(
        &page,
        "sawmill_worker_partition_failures_total",
        "partition=\"1\"",
    );
    assert!(failures >= 1.0, "the failure is counted: {failures}");
    // Nothing of the broken shard is published and its offset stays.
    assert_eq!(cp.state(1).await.unwrap().next_offset, Some(next1));
    for f in last1.all_files() {
        assert!(!root.join(&f.path).exists(), "{} published", f.path);
    }
    // The torn files of partition 0 are gone.
    assert!(!root.join(&zero).exists(), "0-byte staged file left");
    assert!(!root.join(&torn).exists(), "truncated staged file left");

    // The operator restores the lost file: partition 1 resumes where it stopped.
    put(&root, &lost.staging, &lost_bytes);
    let restored = Instant::now();
    let report = run.await.unwrap();
    let recovery = restored.elapsed();
    assert_eq!(
        report.next_offsets.values().sum::<i64>() as u64,
        LINES,
        "{report:?}"
    );
    let staged = files_under(&root.join("_staging"));
    assert!(staged.is_empty(), "left in staging: {staged:?}");
    summarize(&s, &topic, &root_str);
    assert_verified(&s, &topic, &root_str, KEYS as usize, "torn state");
    println!(
        "chaos_torn_state: lost file restored to caught up {:.1}s, total {:.0}s",
        recovery.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    drop(private);
}
