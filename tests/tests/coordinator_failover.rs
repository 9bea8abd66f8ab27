//! Coordinator high availability under load: two `coordinator serve` processes of one pipeline
//! and two workers given both addresses, a tagged topic being produced; kill -9 of the leader.
//! The standby must take over (timed from the kill to the new leader serving, printed), the
//! workers must follow it and keep their partitions (no partition changes owner or epoch
//! across the takeover), and `sawmill verify` must pass on the output.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_tests::checker::*;
use sawmill_tests::cluster::*;
use sawmill_tests::scenario::split_lines;
use sawmill_tests::*;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

const LINES: u64 = 120_000;
const PARTS: usize = 8;
const PARTITIONS: u32 = 4;
const SESSION_TIMEOUT_MS: u64 = 3000;

fn coordinator(s: &Services, topic: &str, root: &str, log: std::fs::File) -> Command {
    let mut cmd = Coordinator::command(s, topic, root, "127.0.0.1:0", "127.0.0.1:0");
    cmd.args(["--shard-max-rows", "5000", "--shard-max-age-ms", "500"])
        .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()])
        .args([
            "--heartbeat-interval-ms",
            "500",
            "--summary-interval-ms",
            "1000",
        ])
        .args(["--leader-ttl-ms", "2000"])
        .env("SAWMILL_LOG", "info")
        .stderr(log);
    cmd
}

/// partition → (owner, epoch) of the partitions `doc` shows owned.
fn owned(doc: &serde_json::Value) -> BTreeMap<i64, (String, u64)> {
    owners(doc)
        .into_iter()
        .filter(|(_, (_, _, state))| state == "owned")
        .map(|(p, (w, e, _))| (p, (w, e)))
        .collect()
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill9_standby_takes_over_workers_keep_partitions_exactly_once() {
    let started = Instant::now();
    let s = services();
    let topic = unique("failover");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out").display().to_string();
    let file = dir.path().join("tagged.log");
    generate_tagged(&file, LINES, 7, 4242, 4);
    let parts = split_lines(&file, PARTS);
    produce(&s, &topic, &parts[0], PARTITIONS, true);

    let logs = logs_dir("coordinator_failover");
    let log = |name: &str| std::fs::File::create(logs.path().join(name)).unwrap();
    let mut first = Coordinator::spawn(&mut coordinator(&s, &topic, &root, log("c1.log")));
    let leader = wait_for(
        "the first coordinator leads",
        Duration::from_secs(20),
        async || {
            let doc = status(&first.grpc).await?;
            (role(&doc).0 == "leader").then_some(())
        },
    );
    leader.await;
    let second = Coordinator::spawn(&mut coordinator(&s, &topic, &root, log("c2.log")));
    let standby = wait_for(
        "the second coordinator stands by",
        Duration::from_secs(20),
        async || {
            let doc = status(&second.grpc).await?;
            (role(&doc) == ("standby".to_string(), Some(first.grpc.clone()))).then_some(doc)
        },
    )
    .await;
    assert!(
        standby["workers"].as_array().unwrap().is_empty(),
        "a standby shows no cluster of its own: {standby}"
    );

    let both = format!("{},{}", first.grpc, second.grpc);
    let mut workers: Vec<ChildGuard> = ["w1", "w2"]
        .iter()
        .map(|id| worker(&both, id, logs.path()))
        .collect();
    let (s2, topic2, rest) = (s.clone(), topic.clone(), parts[1..].to_vec());
    let producer = std::thread::spawn(move || {
        for p in &rest {
            produce(&s2, &topic2, p, PARTITIONS, false);
            std::thread::sleep(Duration::from_millis(500));
        }
    });

    let before = wait_for(
        "a balanced assignment",
        Duration::from_secs(60),
        async || {
            let doc = status(&first.grpc).await?;
            balanced(&doc, &["w1", "w2"], PARTITIONS as usize).then(|| owned(&doc))
        },
    )
    .await;
    // Work under load for a moment, then kill the leader.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.child.kill9();
    let killed = Instant::now();
    let mut samples = 0;
    let takeover = loop {
        if let Some(doc) = status(&second.grpc).await {
            if role(&doc).0 == "leader" {
                break killed.elapsed();
            }
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the standby did not take over within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Every sample of the new leader shows each partition with its owner and epoch of before
    // the kill: recorded owners are waited for, the workers rejoin with what they run.
    let rejoined = wait_for(
        "both workers rejoined the new leader",
        Duration::from_secs(30),
        async || {
            let doc = status(&second.grpc).await?;
            for (p, (w, e)) in owned(&doc) {
                assert_eq!(
                    before.get(&p),
                    Some(&(w.clone(), e)),
                    "partition {p} changed owner or epoch across the takeover: {doc}"
                );
            }
            samples += 1;
            let alive: Vec<String> = alive_workers(&doc).into_iter().map(|(w, _)| w).collect();
            (alive.len() == 2 && owned(&doc) == before).then(|| killed.elapsed())
        },
    )
    .await;
    println!(
        "coordinator_failover: kill to new leader serving {} ms, to both workers rejoined with their partitions {} ms (session timeout {SESSION_TIMEOUT_MS} ms)",
        takeover.as_millis(),
        rejoined.as_millis()
    );
    assert!(
        takeover < Duration::from_millis(SESSION_TIMEOUT_MS + 1000),
        "takeover took {takeover:?}, over the session timeout + 1 s"
    );

    producer.join().expect("producer thread");
    let end = end_offsets(&s, &topic);
    assert_eq!(end.values().sum::<i64>() as u64, LINES);
    let doc = wait_caught_up(&second.grpc, &end, LINES, Duration::from_secs(120)).await;
    assert_eq!(
        owned(&doc),
        before,
        "no partition moved after the takeover either (after {samples} samples)"
    );
    let mut second = second;
    second.stop();
    for w in workers.iter_mut() {
        w.kill9();
    }
    let (ok, report) = sawmill_verify(&s, &topic, &topic, &root);
    assert!(ok, "verify after the leader's kill -9: {report:#}");
    println!(
        "coordinator_failover: total {:.0}s",
        started.elapsed().as_secs_f64()
    );
}
