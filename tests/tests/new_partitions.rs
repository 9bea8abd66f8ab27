//! Partitions added to a topic while the cluster runs are picked up without a restart, and the
//! lines in them land exactly once like any other.

use sawmill_tests::cluster::Coordinator;
use sawmill_tests::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn status(http: &str) -> serde_json::Value {
    serde_json::from_str(&http_get(http, "/api/v1/status").1).unwrap_or(serde_json::Value::Null)
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[test]
fn partitions_added_at_run_time_are_consumed_exactly_once() {
    let s = services();
    let Some(files) = real_logs("partitions_added_at_run_time_are_consumed_exactly_once") else {
        return;
    };
    let topic = unique("it-grow");
    let root = format!("{}/sawmill-it/{topic}", s.hdfs);
    let first = files
        .iter()
        .find(|f| f.to_string_lossy().contains("elastic"))
        .expect("elastic log");
    let second = files
        .iter()
        .find(|f| f.to_string_lossy().contains("weblog"))
        .expect("weblog log");
    produce(&s, &topic, first, 1, true);

    let mut coord = Coordinator::spawn(
        Coordinator::command(&s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0")
            .args(["--shard-max-age-ms", "1000"]),
    );
    let (grpc, http) = (coord.grpc.clone(), coord.http.clone());
    let _w1 = ChildGuard::spawn(
        Command::new(bin("worker"))
            .args(["join", "--coordinator", &grpc, "--worker-id", "grow-1"])
            .stdout(Stdio::null()),
    );
    let _w2 = ChildGuard::spawn(
        Command::new(bin("worker"))
            .args(["join", "--coordinator", &grpc, "--worker-id", "grow-2"])
            .stdout(Stdio::null()),
    );

    // Grow the topic from 1 to 3 partitions while the cluster runs, then produce into it.
    let services_cmd = workspace().join("deploy/local/services");
    let alter = Command::new(&services_cmd)
        .args([
            "kafka-topics",
            "--alter",
            "--topic",
            &topic,
            "--partitions",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        alter.status.success(),
        "{}",
        String::from_utf8_lossy(&alter.stderr)
    );
    // Wait until the new partitions are in the metadata, then spread every message at random
    // (librdkafka's partitioner, no sticky batches) so the new partitions surely receive lines:
    // the even spread would give this small file to one partition, maybe an old one.
    let grown = Instant::now();
    while end_offsets(&s, &topic).len() < 3 {
        assert!(
            grown.elapsed() < Duration::from_secs(30),
            "topic never showed 3 partitions"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = Command::new(bin("sawmill"))
        .args([
            "produce",
            "--bootstrap-servers",
            &s.kafka,
            "--topic",
            &topic,
            "-q",
        ])
        .args([
            "--spread",
            "sticky",
            "-X",
            "sticky.partitioning.linger.ms=0",
            "--file",
        ])
        .arg(second)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let end = end_offsets(&s, &topic);
    assert_eq!(end.len(), 3);
    assert!(
        end.iter().filter(|(p, e)| **p > 0 && **e > 0).count() >= 1,
        "new partitions got lines: {end:?}"
    );

    let start = Instant::now();
    loop {
        let doc = status(&http);
        let parts = doc["partitions"].as_array().cloned().unwrap_or_default();
        let done = parts.len() == 3
            && parts
                .iter()
                .all(|p| p["owner"].is_string() && p["lag"].as_i64() == Some(0))
            && doc["merged"]["next_offsets"].as_object().is_some_and(|m| {
                end.iter().all(|(p, e)| {
                    m.get(&p.to_string()).and_then(|v| v.as_i64()).unwrap_or(0) == *e || *e == 0
                })
            });
        if done {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "new partitions not consumed within 120 s: {doc}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let out = sawmill_common::storage::open(&root).await.unwrap();
        let mut seen = positions(out.as_ref(), "records").await;
        seen.extend(positions(out.as_ref(), "rejects").await);
        assert_exactly_once(seen, &end);
        coord.child.kill9();
        for p in out.list("").await.unwrap_or_default() {
            let _ = out.delete(&p).await;
        }
    });
}
