//! A partition that cannot make progress is seen: a worker whose shards cannot be staged
//! (the output root's `_staging` is a file, so every write under it fails "Not a directory")
//! reports the partition failing with its error in the heartbeat, and within seconds the
//! coordinator's status and `sawmill status` show it; once storage works again the partition
//! commits and the report goes away.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_tests::cluster::{status, wait_for, Coordinator};
use sawmill_tests::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_that_cannot_stage_is_reported_failing_within_seconds() {
    let s = services();
    let topic = unique("it-failing");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    std::fs::create_dir_all(&root).unwrap();
    let input = dir.path().join("in.log");
    let line = "127.0.0.1 - - [01/Jul/1995:00:00:01 -0400] \"GET /a HTTP/1.0\" 200 10\n";
    std::fs::write(&input, line.repeat(50)).unwrap();
    produce(&s, &topic, &input, 1, true);
    // Storage that refuses every staged write: `_staging` is a file, not a directory.
    let blocker = root.join("_staging");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let root_str = root.display().to_string();
    let _cleanup = Cleanup {
        storage: sawmill_common::storage::open(&root_str).await.unwrap(),
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };

    let mut coordinator = Coordinator::spawn(
        Coordinator::command(&s, &topic, &root_str, "127.0.0.1:0", "127.0.0.1:0").args([
            "--shard-idle-ms",
            "200",
            "--shard-max-age-ms",
            "1000",
        ]),
    );
    let logs = cluster::logs_dir("a_partition_that_cannot_stage_is_reported_failing");
    let _worker = cluster::worker(&coordinator.grpc, "w-failing", logs.path());
    let started = Instant::now();

    let grpc = coordinator.grpc.clone();
    let error = wait_for(
        "partition 0 reported failing",
        Duration::from_secs(30),
        async || {
            let doc = status(&grpc).await?;
            let p = doc["partitions"].as_array()?.first()?.clone();
            (!p["last_error"].is_null()).then_some(p["last_error"].clone())
        },
    )
    .await;
    let seen_after = started.elapsed();
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("Not a directory"),
        "the error text is reported: {error}"
    );
    assert!(error["attempts"].as_u64().unwrap() >= 1, "{error}");
    assert!(!error["what"].as_str().unwrap().is_empty(), "{error}");
    // Worker start-up, the first shard's idle cut and one heartbeat: seconds, not minutes.
    assert!(
        seen_after < Duration::from_secs(20),
        "reported after {seen_after:?}"
    );

    // `sawmill status` prints it with its age.
    let out = Command::new(bin("sawmill"))
        .args(["status", "--coordinator", &coordinator.grpc])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("partition 0 FAILING for") && text.contains("Not a directory"),
        "{text}"
    );

    // Storage works again: the partition commits everything and is no longer reported.
    std::fs::remove_file(&blocker).unwrap();
    let doc = wait_for(
        "partition 0 committed and healthy",
        Duration::from_secs(90),
        async || {
            let doc = status(&grpc).await?;
            let p = doc["partitions"].as_array()?.first()?.clone();
            (p["committed_offset"].as_i64() == Some(50) && p["last_error"].is_null()).then_some(doc)
        },
    )
    .await;
    assert_eq!(doc["partitions"][0]["lag"].as_i64(), Some(0));
    coordinator.stop();
}
