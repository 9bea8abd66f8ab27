//! `sawmill verify` against the real services: a worker's output passes, on a local root and on
//! HDFS; the same output tampered with (a records file deleted, a file published twice) fails,
//! naming the partition and the counts; a pipeline past its analytics caps (its endpoint and
//! host tables folded into `(other)` rows) passes, its capped tables compared by what the caps
//! keep exact.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_common::storage::{self, Storage};
use sawmill_tests::checker::*;
use sawmill_tests::*;
use std::process::Command;
use std::time::Duration;

/// The worker (`worker run --until-caught-up`) then `sawmill summarize`, for `pipeline`.
fn process(s: &Services, topic: &str, pipeline: &str, root: &str) {
    process_with(s, topic, pipeline, root, &[]);
}

/// [`process`] with more environment (pipeline settings such as the analytics caps).
fn process_with(s: &Services, topic: &str, pipeline: &str, root: &str, env: &[(&str, &str)]) {
    let flags = |cmd: &mut Command| {
        cmd.args(["--bootstrap-servers", &s.kafka, "--etcd", &s.etcd])
            .args(["--topic", topic, "--pipeline", pipeline, "--output", root])
            .env("SAWMILL_LOG", "warn")
            .envs(env.iter().copied());
    };
    let mut w = Command::new(bin("worker"));
    w.args(["run", "--until-caught-up", "--shard-max-rows", "5000"]);
    flags(&mut w);
    assert!(
        ChildGuard::spawn(&mut w).wait_ok(Duration::from_secs(300)),
        "worker run failed"
    );
    let mut sum = Command::new(bin("sawmill"));
    sum.args(["summarize", "-q"]);
    flags(&mut sum);
    assert!(sum.status().unwrap().success(), "sawmill summarize failed");
}

fn counts(report: &serde_json::Value, partition: i64) -> [u64; 4] {
    let p = partition_report(report, partition);
    ["lost", "duplicated", "out_of_range", "not_in_topic"].map(|k| p[k].as_u64().unwrap())
}

/// `(partition, rows)` of a published Parquet file, from its name and contents.
async fn file_rows(out: &dyn Storage, path: &str) -> (i64, u64) {
    let (batches, _) = storage::read_parquet(out, path).await.unwrap();
    let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
    let p = batches[0]
        .column_by_name("partition")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Int32Array>()
        .unwrap()
        .value(0);
    (i64::from(p), rows)
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_real_output_and_names_tampering() {
    let s = services();
    let topic = unique("it-verify");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tagged.log");
    let rejected = generate_tagged(&file, 40_000, 11, 1, 3);
    assert!(rejected > 100, "the input has rejects: {rejected}");
    produce(&s, &topic, &file, 3, true);

    let local = dir.path().join("out").display().to_string();
    let hdfs = format!("{}/sawmill-it/{topic}", s.hdfs);
    let mut cleanups = Vec::new();
    for (pipeline, root) in [
        (format!("{topic}-local"), &local),
        (format!("{topic}-hdfs"), &hdfs),
    ] {
        let out = storage::open(root).await.unwrap();
        cleanups.push(Cleanup {
            storage: out,
            etcd: s.etcd.clone(),
            topic: pipeline.clone(),
        });
        process(&s, &topic, &pipeline, root);
        let (ok, report) = sawmill_verify(&s, &topic, &pipeline, root);
        assert!(ok, "untouched output of {root} fails: {report:#}");
        assert_eq!(report["read"]["rejects"].as_u64(), Some(rejected));
        assert_eq!(report["summary"]["tables"].as_u64(), Some(15));
        let seqs = report["sequences"].as_array().unwrap();
        assert_eq!(seqs.len(), 3, "three keys: {seqs:?}");
        assert!(seqs.iter().all(|q| q["gaps"] == 0 && q["duplicated"] == 0));
    }

    // Tampering, on the local root: one records file deleted.
    let pipeline = format!("{topic}-local");
    let out = storage::open(&local).await.unwrap();
    let records = out.list("records").await.unwrap();
    let victim = records
        .iter()
        .find(|p| p.ends_with(".parquet"))
        .unwrap()
        .clone();
    let (p, rows) = file_rows(out.as_ref(), &victim).await;
    let bytes = out.read(&victim).await.unwrap();
    out.delete(&victim).await.unwrap();
    let (ok, report) = sawmill_verify(&s, &topic, &pipeline, &local);
    assert!(!ok, "a deleted records file passes");
    assert_eq!(counts(&report, p), [rows, 0, 0, 0], "{report:#}");
    // Only that partition fails; the summary still matches (it was merged from partials).
    assert_eq!(report["failures"].as_u64(), Some(rows));

    // Restored, then one rejects file published a second time under another name.
    out.write(&victim, &bytes).await.unwrap();
    assert!(
        sawmill_verify(&s, &topic, &pipeline, &local).0,
        "restored output fails"
    );
    let rejects = out.list("rejects").await.unwrap();
    let copied = rejects.iter().find(|p| p.ends_with(".parquet")).unwrap();
    let (p, rows) = file_rows(out.as_ref(), copied).await;
    let twin = copied.replace(".parquet", "-copy.parquet");
    out.write(&twin, &out.read(copied).await.unwrap())
        .await
        .unwrap();
    let (ok, report) = sawmill_verify(&s, &topic, &pipeline, &local);
    assert!(!ok, "a file published twice passes");
    assert_eq!(counts(&report, p), [0, rows, 0, 0], "{report:#}");

    // The text report (for people) names the partition as well.
    let text = std::process::Command::new(bin("sawmill"))
        .args(["verify", "--bootstrap-servers", &s.kafka, "--etcd", &s.etcd])
        .args([
            "--topic",
            &topic,
            "--pipeline",
            &pipeline,
            "--output",
            &local,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(1));
    assert!(
        stdout.contains(&format!("partition {p} duplicated: offsets")) && stdout.contains("FAIL"),
        "the text report names the partition: {stdout}"
    );
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_compares_tables_past_their_caps_by_what_stays_exact() {
    let s = services();
    let topic = unique("it-verify-caps");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tagged.log");
    // Tagged lines each have their own endpoint: far past a cap of 500.
    generate_tagged(&file, 20_000, 12, 2, 2);
    produce(&s, &topic, &file, 3, true);
    let root = dir.path().join("out").display().to_string();
    let _cleanup = Cleanup {
        storage: storage::open(&root).await.unwrap(),
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };
    let caps = [
        ("SAWMILL_MAX_DISTINCT_ENDPOINTS", "500"),
        ("SAWMILL_MAX_DISTINCT_HOSTS", "300"),
    ];
    process_with(&s, &topic, &topic, &root, &caps);
    let out = storage::open(&root).await.unwrap();
    let summary = sawmill_common::summary::read(out.as_ref()).await.unwrap();
    for table in ["endpoint_count", "host_count"] {
        let overflow = summary[table]
            .column_by_name("overflow")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::BooleanArray>()
            .unwrap()
            .iter()
            .any(|v| v == Some(true));
        assert!(overflow, "{table} is past its cap");
    }
    let (ok, report) = sawmill_verify_with(&s, &topic, &topic, &root, &caps);
    assert!(ok, "a pipeline past its caps fails verify: {report:#}");
    assert_eq!(report["summary"]["tables"].as_u64(), Some(15));
}
