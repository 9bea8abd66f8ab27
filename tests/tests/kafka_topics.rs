//! Topics as other producers and operators leave them: batches compressed with zstd are read
//! by a worker, and `sawmill produce --reset` refuses to recreate a topic under a pipeline
//! that has committed state for it (unless told to delete that state too).

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use indicatif::ProgressBar;
use sawmill_cli::produce::{produce as produce_lib, ProduceArgs};
use sawmill_common::etcd::Checkpoints;
use sawmill_tests::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn log_file(dir: &std::path::Path, lines: usize) -> std::path::PathBuf {
    let path = dir.join("in.log");
    let text: String = (0..lines)
        .map(|i| {
            format!(
                "10.0.{}.{} - - [01/Jul/1995:00:{:02}:01 -0400] \"GET /p/{i} HTTP/1.0\" 200 {i}\n",
                i / 250,
                i % 250,
                i % 60
            )
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_compressed_batches_are_consumed_by_a_worker() {
    let s = services();
    let topic = unique("it-zstd");
    let dir = tempfile::tempdir().unwrap();
    let lines = 5_000;
    let file = log_file(dir.path(), lines);
    // Another producer's choice of codec: librdkafka without zstd refuses the setting here,
    // and a consumer without it cannot decompress the batches.
    let mut cfg = ProduceArgs::new(&s.kafka, &topic, &file);
    cfg.reset = true;
    cfg.partitions = 2;
    cfg.quiet = true;
    cfg.connection.kafka_property = vec!["compression.type=zstd".into()];
    let report = tokio::task::spawn_blocking(move || produce_lib(&cfg, &ProgressBar::hidden()))
        .await
        .unwrap()
        .expect("produce zstd-compressed batches");
    assert_eq!(report.acked, lines as u64);

    let root = dir.path().join("out").display().to_string();
    let _cleanup = Cleanup {
        storage: sawmill_common::storage::open(&root).await.unwrap(),
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };
    let mut worker = ChildGuard::spawn(
        Command::new(bin("worker"))
            .args(["run", "--bootstrap-servers", &s.kafka, "--etcd", &s.etcd])
            .args(["--topic", &topic, "--output", &root, "--until-caught-up"])
            .env("SAWMILL_LOG", "warn")
            .stdout(Stdio::piped()),
    );
    let mut stdout = worker.0.as_mut().and_then(|c| c.stdout.take()).unwrap();
    assert!(
        worker.wait_ok(Duration::from_secs(120)),
        "worker failed or timed out"
    );
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
    let storage = sawmill_common::storage::open(&root).await.unwrap();
    let records = positions(storage.as_ref(), "records").await;
    let rejects = positions(storage.as_ref(), "rejects").await;
    assert_eq!(
        records.len() + rejects.len(),
        lines,
        "every zstd-compressed line lands once ({text})"
    );
    assert!(rejects.is_empty(), "the lines parse: {rejects:?}");
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_reset_refuses_a_topic_with_pipeline_state() {
    let s = services();
    let topic = unique("it-reset");
    let dir = tempfile::tempdir().unwrap();
    let file = log_file(dir.path(), 100);
    let lines = produce(&s, &topic, &file, 1, true);
    // A pipeline (named after the topic, the default) has committed offsets for it.
    let mut cp = Checkpoints::connect(&s.etcd, &topic).await.unwrap();
    let epoch = cp.bump_epoch(0, "w-test").await.unwrap();
    cp.init_next_offset(0, epoch, 60).await.unwrap();
    let _cleanup = Cleanup {
        storage: sawmill_common::storage::open(&dir.path().join("out").display().to_string())
            .await
            .unwrap(),
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };

    let reset = |extra: &[&str]| {
        Command::new(bin("sawmill"))
            .args([
                "produce",
                "-q",
                "--bootstrap-servers",
                &s.kafka,
                "--etcd",
                &s.etcd,
            ])
            .args(["--topic", &topic, "--partitions", "1", "--reset"])
            .args(extra)
            .arg("--file")
            .arg(&file)
            .output()
            .unwrap()
    };
    let refused = reset(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "the reset must be refused");
    assert!(
        stderr.contains(&format!("pipeline {topic}"))
            && stderr.contains("--reset-pipeline-state")
            && stderr.contains("0:60"),
        "the refusal names the pipeline, its offsets and the way out: {stderr}"
    );
    assert_eq!(
        end_offsets(&s, &topic).values().sum::<i64>() as u64,
        lines,
        "the topic was left alone"
    );
    assert_eq!(cp.state(0).await.unwrap().next_offset, Some(60));

    let done = reset(&["--reset-pipeline-state"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        cp.partitions().await.unwrap().is_empty(),
        "the pipeline's state was deleted with the topic"
    );
    assert_eq!(end_offsets(&s, &topic).values().sum::<i64>() as u64, lines);
}
