//! Chaos (issue #12, fault 9): torn state on the output root when a partition starts, with a
//! worker run in-process against a PRIVATE services instance (etcd + Kafka), local output:
//!
//! - one partition: a 0-byte file and a truncated Parquet file left in its staging directory
//!   under the names an attempt at the next range would use (a crash mid-write). Recovery must
//!   delete both and the partition resume from its committed offset;
//! - the other (the one with committed shards): its last committed shard unpublished again (every file back under its staging
//!   name, as a crash between the etcd commit and publishing leaves it) and one of those staged
//!   files lost: a manifest pointing at a missing staged file. The shard's lines are still in
//!   Kafka: recovery reads its range again, re-derives the lost file (it must match the
//!   manifest: name, rows, records and rejects), reports it (a warning and
//!   `sawmill_worker_files_rederived_total`), publishes the shard and resumes from its
//!   committed offset.
//!
//! Then everything verifies (`sawmill verify`: 0 lost, 0 duplicated, summary exact, etcd at
//! the end, producer sequences whole). Prints the time from the restart to catch-up.

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

/// The record batches of a Parquet file, in file order.
fn parquet_rows(bytes: &[u8]) -> Vec<arrow::record_batch::RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(
        bytes::Bytes::from(bytes.to_vec()),
        1024,
    )
    .unwrap()
    .map(|b| b.unwrap())
    .collect()
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
    // The producer's partitioner may fill one partition first: the one with committed shards
    // gets the missing file, the other the torn files.
    let (m0, m1) = (
        cp.manifests(Some(0)).await.unwrap(),
        cp.manifests(Some(1)).await.unwrap(),
    );
    let (pa, pb, mut shards_b) = if m1.len() >= m0.len() {
        (0, 1, m1)
    } else {
        (1, 0, m0)
    };
    // Partition pa: a 0-byte and a truncated Parquet file staged for the range that comes next.
    let state_a = cp.state(pa).await.unwrap();
    let (next_a, epoch_a) = (state_a.next_offset.unwrap(), state_a.epoch.unwrap());
    let next = ShardRange {
        source: topic.clone(),
        partition: pa,
        first: next_a,
        last: next_a + 999,
    };
    let parquet = std::fs::read(root.join(&shards_b[0].files[0].path)).unwrap();
    let zero = next.staging_path(epoch_a, &layout::staging_nonce(), &next.records_path(9312));
    let torn = next.staging_path(epoch_a, &layout::staging_nonce(), &next.rejects_path());
    put(&root, &zero, b"");
    put(&root, &torn, &parquet[..parquet.len() / 2]);

    // Partition pb: its last shard committed but unpublished, and one staged file lost.
    let next_b = cp.state(pb).await.unwrap().next_offset.unwrap();
    let last_b = shards_b.pop().unwrap();
    assert_eq!(last_b.next_offset(), next_b);
    for f in last_b.all_files() {
        let to = root.join(&f.staging);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::rename(root.join(&f.path), to).unwrap();
    }
    let lost = last_b.files[0].clone();
    let lost_bytes = std::fs::read(root.join(&lost.staging)).unwrap();
    std::fs::remove_file(root.join(&lost.staging)).unwrap();

    produce(&s, &topic, &b, 2, false);
    let metrics = format!("127.0.0.1:{}", free_port());
    let restarted = Instant::now();
    let run = tokio::spawn(run_worker(
        settings,
        "torn",
        Some(metrics.clone()),
        Duration::from_secs(180),
    ));
    // pb re-derives the lost file; pa's recovery removed its torn files. The run may catch up
    // and close its metrics page between two polls: then its report says it.
    let label_b = format!("partition=\"{pb}\"");
    let repaired = || !root.join(&zero).exists() && !root.join(&torn).exists();
    let seen_live = wait_for(
        "the lost file re-derived, the torn files gone",
        Duration::from_secs(60),
        async || {
            if run.is_finished() {
                return Some(false);
            }
            let m = metrics.clone();
            let page = blocking(move || metrics_page(&m)).await?;
            let rederived = metric(&page, "sawmill_worker_files_rederived_total", &label_b);
            (rederived == 1.0 && repaired()).then_some(true)
        },
    )
    .await;
    let report = run.await.unwrap();
    let recovery = restarted.elapsed();
    assert_eq!(report.files_rederived, 1, "{report:?}");
    assert!(repaired(), "torn files left: {zero}, {torn}");
    assert_eq!(
        report.next_offsets.values().sum::<i64>() as u64,
        LINES,
        "{report:?}"
    );
    // The shard is published whole, the lost file with the rows it had.
    for f in last_b.all_files() {
        assert!(root.join(&f.path).exists(), "{} not published", f.path);
    }
    let again = std::fs::read(root.join(&lost.path)).unwrap();
    assert_eq!(
        parquet_rows(&again),
        parquet_rows(&lost_bytes),
        "the re-derived file holds the lost one's rows"
    );
    let staged = files_under(&root.join("_staging"));
    assert!(staged.is_empty(), "left in staging: {staged:?}");
    summarize(&s, &topic, &root_str);
    assert_verified(&s, &topic, &root_str, KEYS as usize, "torn state");
    println!("chaos_torn_state: re-derived file seen on the metrics page: {seen_live}");
    println!(
        "chaos_torn_state: restart (lost file re-derived) to caught up {:.1}s, total {:.0}s",
        recovery.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    drop(private);
}
