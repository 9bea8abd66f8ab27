//! The worker against the real services: Kafka → parse → Parquet on HDFS → etcd commit.
//! Exactly-once is checked row by row: every `(partition, offset)` of the topic appears in
//! exactly one published row, and the merged analytics equal `sawmill run` on the same files.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_common::committed::merge_committed;
use sawmill_common::etcd::Checkpoints;
use sawmill_common::storage::{self, Storage};
use sawmill_core::analytics::AnalyticsConfig;
use sawmill_tests::*;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn worker_cmd(s: &Services, topic: &str, root: &str) -> Command {
    let mut cmd = Command::new(bin("worker"));
    cmd.args([
        "run",
        "--bootstrap-servers",
        &s.kafka,
        "--etcd",
        &s.etcd,
        "--topic",
        topic,
        "--output",
        root,
    ])
    .args(["--shard-max-rows", "20000", "--shard-max-age-ms", "1000"])
    .env("SAWMILL_LOG", "warn");
    cmd
}

async fn committed(
    s: &Services,
    topic: &str,
    out: Arc<dyn Storage>,
) -> sawmill_common::committed::Committed {
    let mut cp = Checkpoints::connect(&s.etcd, topic).await.unwrap();
    merge_committed(&mut cp, out, &AnalyticsConfig::default())
        .await
        .unwrap()
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_logs_land_exactly_once_on_hdfs() {
    let s = services();
    let Some(files) = real_logs("real_logs_land_exactly_once_on_hdfs") else {
        return;
    };
    let topic = unique("it-real");
    let root = format!("{}/sawmill-it/{topic}", s.hdfs);
    let mut lines = 0;
    for (i, f) in files.iter().enumerate() {
        lines += produce(&s, &topic, f, 3, i == 0);
    }
    let end = end_offsets(&s, &topic);
    assert_eq!(
        end.values().sum::<i64>() as u64,
        lines,
        "every line is one Kafka message"
    );

    let out = storage::open(&root).await.unwrap();
    let _cleanup = Cleanup {
        storage: out.clone(),
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };
    // One worker process per partition, driven directly.
    let mut workers: Vec<ChildGuard> = (0..3)
        .map(|p| {
            ChildGuard::spawn(
                worker_cmd(&s, &topic, &root)
                    .args(["--partitions", &p.to_string(), "--until-caught-up"])
                    .stdout(Stdio::piped()),
            )
        })
        .collect();
    let mut reported = 0;
    for w in &mut workers {
        let mut stdout = w.0.as_mut().and_then(|c| c.stdout.take()).unwrap();
        assert!(
            w.wait_ok(Duration::from_secs(300)),
            "worker failed or timed out"
        );
        // "committed N shards, R records, J rejects in ...": the run's own totals.
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
        let words: Vec<&str> = text.split_whitespace().collect();
        let count = |what: &str| -> u64 {
            let i = words
                .iter()
                .position(|w| w.trim_end_matches(',') == what)
                .unwrap_or_else(|| panic!("no {what:?} in the report {text:?}"));
            words[i - 1].parse().unwrap()
        };
        reported += count("records") + count("rejects");
    }
    assert_eq!(
        reported, lines,
        "the workers' reports add up to the lines produced"
    );

    let mut cp = Checkpoints::connect(&s.etcd, &topic).await.unwrap();
    for (p, e) in &end {
        assert_eq!(
            cp.state(*p).await.unwrap().next_offset,
            Some(*e),
            "etcd offset of partition {p}"
        );
    }
    let recs = positions(out.as_ref(), "records").await;
    let rejs = positions(out.as_ref(), "rejects").await;
    let mut all = recs.clone();
    all.extend(rejs.iter().copied());
    assert_exactly_once(all, &end);

    let merged = committed(&s, &topic, out.clone()).await;
    let reference = reference(&files);
    assert_eq!(merged.partial.records(), recs.len() as u64);
    assert_eq!(merged.partial.rejects(), rejs.len() as u64);
    assert_eq!(
        comparable_tables(&merged.partial),
        comparable_tables(&reference),
        "cluster analytics == sawmill run"
    );

    // A client that is not ours lists and reads the shards: Hadoop's own shell and pyarrow.
    let services = workspace().join("deploy/local/services");
    let ls = Command::new(&services)
        .args(["hdfs-dfs", "-ls", "-R"])
        .arg(format!("/sawmill-it/{topic}/records"))
        .output()
        .unwrap();
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let listing = String::from_utf8_lossy(&ls.stdout);
    let listed = listing.lines().filter(|l| l.ends_with(".parquet")).count();
    let ours = out.list("records").await.unwrap().len();
    assert_eq!(listed, ours, "hadoop lists every shard");
    let local = tempfile::tempdir().unwrap();
    let get = Command::new(&services)
        .args(["hdfs-dfs", "-get"])
        .arg(format!("/sawmill-it/{topic}/records"))
        .arg(local.path())
        .output()
        .unwrap();
    assert!(
        get.status.success(),
        "{}",
        String::from_utf8_lossy(&get.stderr)
    );
    let py = Command::new("python3")
        .arg("-c")
        .arg("import sys, pyarrow.dataset as ds; print(ds.dataset(sys.argv[1], format='parquet', partitioning='hive').count_rows())")
        .arg(local.path().join("records"))
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "pyarrow: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&py.stdout).trim(),
        recs.len().to_string()
    );
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_stream_loses_and_duplicates_nothing() {
    let s = services();
    let topic = unique("it-crash");
    let root = format!("{}/sawmill-it/{topic}", s.hdfs);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gen.log");
    let st = Command::new(bin("sawmill"))
        .args(["generate", "--lines", "300000", "--seed", "7", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(st.status.success());
    produce(&s, &topic, &file, 2, true);
    let end = end_offsets(&s, &topic);
    let out = storage::open(&root).await.unwrap();
    let _cleanup = Cleanup {
        storage: out.clone(),
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };

    let mut w = ChildGuard::spawn(worker_cmd(&s, &topic, &root).arg("--until-caught-up"));
    // Wait until some but not all shards are committed, then kill -9.
    let mut cp = Checkpoints::connect(&s.etcd, &topic).await.unwrap();
    let total: i64 = end.values().sum();
    let started = Instant::now();
    loop {
        let done: i64 = cp
            .partitions()
            .await
            .unwrap()
            .values()
            .filter_map(|p| p.next_offset)
            .sum();
        if done > 0 {
            assert!(
                done < total,
                "the worker finished before it could be killed; use a bigger input"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no commit within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.kill9();

    let mut w2 = ChildGuard::spawn(worker_cmd(&s, &topic, &root).arg("--until-caught-up"));
    assert!(
        w2.wait_ok(Duration::from_secs(300)),
        "restarted worker failed"
    );
    for (p, e) in &end {
        assert_eq!(cp.state(*p).await.unwrap().next_offset, Some(*e));
    }
    let mut seen = positions(out.as_ref(), "records").await;
    seen.extend(positions(out.as_ref(), "rejects").await);
    assert_exactly_once(seen, &end);
    let merged = committed(&s, &topic, out.clone()).await;
    assert_eq!(
        comparable_tables(&merged.partial),
        comparable_tables(&reference(&[file]))
    );
    // Nothing staged is left behind once recovery has run.
    let staged = out.list("_staging").await.unwrap();
    assert!(staged.is_empty(), "staging left: {staged:?}");
}
