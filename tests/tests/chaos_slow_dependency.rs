//! Chaos (issue #12, fault 11): a slow dependency. etcd — or, in the second test, the HDFS
//! NameNode of the output root — is reached only through a delaying TCP proxy on loopback
//! (`faults::SlowProxy`: every chunk, both ways, waits N ms), by the coordinator and, through
//! the settings it hands out, by both `worker join` processes, on a PRIVATE services instance
//! (block data goes to the DataNode directly, at the address the NameNode names, so only the
//! NameNode's answers are slow). While the dependency is slow and lines keep arriving:
//!
//! - no cluster-wide expiry storm: every partition keeps its owner and epoch (sampled every
//!   500 ms), every worker stays alive;
//! - memory stays bounded: the workers' largest RSS is sampled and must stay under 1 GiB;
//!
//! then, the delay removed, lag 0 and `sawmill verify` passes (0 lost, 0 duplicated, summary
//! exact, etcd at the end, producer sequences whole). Prints the time from the end of the slow
//! period to lag 0 and the largest RSS. `SAWMILL_CHAOS_SLOW_MS` (default 200) sets the delay
//! per chunk, `SAWMILL_CHAOS_SLOW_SECS` (default 15) how long it lasts.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_tests::checker::*;
use sawmill_tests::cluster::*;
use sawmill_tests::faults::*;
use sawmill_tests::*;
use std::time::{Duration, Instant};

const LINES: u64 = 60_000;
const PARTITIONS: u32 = 4;
const KEYS: u32 = 4;
const PORT_OFFSET: u16 = 860;
const PORT_OFFSET_HDFS: u16 = 940;
const RSS_LIMIT: u64 = 1 << 30;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The dependency the proxy slows down.
#[derive(Clone, Copy, Debug)]
enum Slow {
    Etcd,
    NameNode,
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka and etcd (a private instance): scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_slow_etcd_moves_no_partition_and_loses_nothing() {
    slow_dependency(Slow::Etcd).await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, etcd and HDFS (a private instance): scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_slow_namenode_moves_no_partition_and_loses_nothing() {
    slow_dependency(Slow::NameNode).await;
}

async fn slow_dependency(which: Slow) {
    let started = Instant::now();
    let slow_ms = env_u64("SAWMILL_CHAOS_SLOW_MS", 200);
    let slow_for = Duration::from_secs(env_u64("SAWMILL_CHAOS_SLOW_SECS", 15));
    let private = match which {
        Slow::Etcd => PrivateServices::up(&["etcd", "kafka"], PORT_OFFSET),
        Slow::NameNode => PrivateServices::up(&["etcd", "kafka", "hdfs"], PORT_OFFSET_HDFS),
    };
    let s = private.services.clone();
    let topic = unique("chaos-slow");
    let dir = tempfile::tempdir().unwrap();
    let (proxy, slow, root) = match which {
        Slow::Etcd => {
            let proxy = SlowProxy::start(s.etcd.trim_start_matches("http://")).await;
            let slow = Services {
                etcd: format!("http://{}", proxy.addr),
                ..s.clone()
            };
            (proxy, slow, dir.path().join("out").display().to_string())
        }
        Slow::NameNode => {
            let proxy = SlowProxy::start(s.hdfs.trim_start_matches("hdfs://")).await;
            let root = format!("hdfs://{}/chaos-slow/{topic}", proxy.addr);
            (proxy, s.clone(), root)
        }
    };
    let file = dir.path().join("tagged.log");
    generate_tagged(&file, LINES, 3, 33, KEYS);
    let data = std::fs::read(&file).unwrap();
    let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    let parts: Vec<std::path::PathBuf> = lines
        .chunks(lines.len().div_ceil(4))
        .enumerate()
        .map(|(i, c)| {
            let p = dir.path().join(format!("part{i}.log"));
            std::fs::write(&p, c.concat()).unwrap();
            p
        })
        .collect();
    produce(&s, &topic, &parts[0], PARTITIONS, true);

    let logs = logs_dir("chaos_slow_dependency");
    let log = std::fs::File::create(logs.path().join("coordinator.log")).unwrap();
    let mut cmd = Coordinator::command(&slow, &topic, &root, "127.0.0.1:0", "127.0.0.1:0");
    cmd.args(["--shard-max-rows", "5000", "--shard-max-age-ms", "500"])
        .args([
            "--session-timeout-ms",
            "3000",
            "--heartbeat-interval-ms",
            "500",
        ])
        .args(["--summary-interval-ms", "1000"])
        .env("SAWMILL_LOG", "info")
        .stderr(log);
    let mut coordinator = Coordinator::spawn(&mut cmd);
    let grpc = coordinator.grpc.clone();
    let mut workers: Vec<ChildGuard> = ["w1", "w2"]
        .iter()
        .map(|id| worker(&grpc, id, logs.path()))
        .collect();
    let end = end_offsets(&s, &topic);
    wait_caught_up(&grpc, &end, LINES / 4, Duration::from_secs(120)).await;
    let settled = wait_for(
        "both workers own partitions",
        Duration::from_secs(60),
        async || {
            let doc = status(&grpc).await?;
            balanced(&doc, &["w1", "w2"], PARTITIONS as usize).then_some(doc)
        },
    )
    .await;
    let owned = owners(&settled);

    // etcd turns slow while the rest of the topic arrives.
    proxy.set_delay(slow_ms);
    let slow_from = Instant::now();
    let (s2, topic2, rest) = (s.clone(), topic.clone(), parts[1..].to_vec());
    let producer = std::thread::spawn(move || {
        for p in &rest {
            produce(&s2, &topic2, p, PARTITIONS, false);
        }
    });
    let mut max_rss = 0u64;
    let mut samples = 0;
    while slow_from.elapsed() < slow_for {
        for w in &workers {
            max_rss = max_rss.max(w.pid().and_then(rss_bytes).unwrap_or(0));
        }
        if let Some(doc) = status(&grpc).await {
            assert_eq!(
                owners(&doc),
                owned,
                "a partition changed owner or epoch while {which:?} was slow"
            );
            let alive = alive_workers(&doc);
            assert_eq!(
                alive.len(),
                2,
                "a worker expired while {which:?} was slow: {alive:?}"
            );
            samples += 1;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        samples >= 5,
        "the status document answered only {samples} times"
    );
    let committed_while_slow = status(&grpc).await.unwrap();
    proxy.set_delay(0);
    let slow_end = Instant::now();
    producer.join().expect("producer thread");

    let end = end_offsets(&s, &topic);
    assert_eq!(end.values().sum::<i64>() as u64, LINES);
    let doc = wait_caught_up(&grpc, &end, LINES, Duration::from_secs(120)).await;
    let recovery = slow_end.elapsed();
    for w in &workers {
        max_rss = max_rss.max(w.pid().and_then(rss_bytes).unwrap_or(0));
    }
    assert_eq!(owners(&doc), owned, "no partition moved");
    assert!(max_rss < RSS_LIMIT, "worker RSS reached {max_rss} bytes");
    coordinator.stop();
    for w in workers.iter_mut() {
        w.kill9();
    }
    assert_verified(&s, &topic, &root, KEYS as usize, &format!("slow {which:?}"));
    let merged_slow = committed_while_slow["merged"]["records"]
        .as_u64()
        .unwrap_or(0)
        + committed_while_slow["merged"]["rejects"]
            .as_u64()
            .unwrap_or(0);
    println!(
        "chaos_slow_dependency: {which:?} +{slow_ms} ms per chunk for {:.0}s ({merged_slow} of {LINES} lines merged by its end), slow end to lag 0 {:.1}s, max worker RSS {:.0} MiB, total {:.0}s",
        slow_for.as_secs_f64(),
        recovery.as_secs_f64(),
        max_rss as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    drop(proxy);
    drop(private);
}
