//! Chaos: kill -9 of workers at random moments while a tagged topic is being produced and
//! consumed by a coordinator and two workers, on a PRIVATE services instance (etcd + Kafka with
//! their own ports and data, so the shared services are never disturbed).
//!
//! Ten kills of a random worker at random moments (each restarted after a random pause), then
//! both workers at once; then lag zero, and `sawmill verify` must pass: zero lost, zero
//! duplicated, zero out of range or foreign rows, every summary table exact, etcd at the end of
//! the topic, and the producer's sequence numbers without gaps or duplicates. Prints the time
//! from the last fault to lag zero and the largest worker RSS seen (RELIABILITY.md's figures).
//!
//! Seeded by `SAWMILL_CHAOS_SEED` (printed) so a failing schedule can be replayed.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_tests::checker::*;
use sawmill_tests::cluster::*;
use sawmill_tests::scenario::{split_lines, Rng};
use sawmill_tests::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LINES: u64 = 300_000;
const PARTS: u64 = 12;
const PARTITIONS: u32 = 4;
const SESSION_TIMEOUT_MS: u64 = 3000;
/// Port offset of the private services (100..=900, unique among concurrent users).
const PORT_OFFSET: u16 = 740;

/// Samples the largest RSS of the live workers.
fn sample(workers: &[ChildGuard], max_rss: &mut u64) {
    for w in workers {
        if let Some(rss) = w.pid().and_then(rss_bytes) {
            *max_rss = (*max_rss).max(rss);
        }
    }
}

/// Sleeps `d`, sampling worker memory every 100 ms.
fn sleep_sampling(d: Duration, workers: &[ChildGuard], max_rss: &mut u64) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        sample(workers, max_rss);
        std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
    }
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_worker_kill9_repeatedly_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let seed = std::env::var("SAWMILL_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("chaos seed: SAWMILL_CHAOS_SEED={seed}");
    let mut rng = Rng(seed);

    let private = PrivateServices::up(&["etcd", "kafka"], PORT_OFFSET);
    let s = private.services.clone();
    let topic = unique("chaos-kill");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out").display().to_string();
    let file = dir.path().join("tagged.log");
    generate_tagged(&file, LINES, seed % 1000, seed % 100_000, 4);
    let parts = split_lines(&file, PARTS as usize);
    // The topic exists (with its partitions) before anyone consumes it.
    produce(&s, &topic, &parts[0], PARTITIONS, true);

    let logs = logs_dir("chaos_worker_kill");
    let log = std::fs::File::create(logs.path().join("coordinator.log")).unwrap();
    let mut cmd = Coordinator::command(&s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0");
    cmd.args(["--shard-max-rows", "5000", "--shard-max-age-ms", "500"])
        .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()])
        .args([
            "--heartbeat-interval-ms",
            "500",
            "--summary-interval-ms",
            "1000",
        ])
        .env("SAWMILL_LOG", "info")
        .stderr(log);
    let mut coordinator = Coordinator::spawn(&mut cmd);
    let grpc = coordinator.grpc.clone();
    let ids = ["w1", "w2"];
    let mut workers: Vec<ChildGuard> = ids
        .iter()
        .map(|id| worker(&grpc, id, logs.path()))
        .collect();

    // The rest of the topic arrives while the faults happen.
    let (s2, topic2, rest) = (s.clone(), topic.clone(), parts[1..].to_vec());
    let producer = std::thread::spawn(move || {
        for p in &rest {
            produce(&s2, &topic2, p, PARTITIONS, false);
            std::thread::sleep(Duration::from_millis(700));
        }
    });

    let mut max_rss = 0u64;
    let mut kills = Vec::new();
    for _ in 0..10 {
        sleep_sampling(rng.millis(500, 2500), &workers, &mut max_rss);
        let victim = (rng.next_u64() % 2) as usize;
        workers[victim].kill9();
        kills.push(format!(
            "{}@{:.1}s",
            ids[victim],
            started.elapsed().as_secs_f64()
        ));
        sleep_sampling(rng.millis(0, 1500), &workers, &mut max_rss);
        workers[victim] = worker(&grpc, ids[victim], logs.path());
    }
    sleep_sampling(rng.millis(1000, 3000), &workers, &mut max_rss);
    for w in workers.iter_mut() {
        w.kill9();
    }
    kills.push(format!("w1+w2@{:.1}s", started.elapsed().as_secs_f64()));
    workers = ids
        .iter()
        .map(|id| worker(&grpc, id, logs.path()))
        .collect();
    let last_fault = Instant::now();
    println!("kills: {}", kills.join(" "));

    producer.join().expect("producer thread");
    let end = end_offsets(&s, &topic);
    assert_eq!(
        end.values().sum::<i64>() as u64,
        LINES,
        "every line produced once"
    );
    // Memory is sampled on a plain thread while this task waits for lag zero.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, pids) = (
            stop.clone(),
            workers.iter().filter_map(|w| w.pid()).collect::<Vec<_>>(),
        );
        std::thread::spawn(move || {
            let mut max = 0u64;
            while !stop.load(Ordering::Relaxed) {
                max = pids
                    .iter()
                    .filter_map(|&p| rss_bytes(p))
                    .fold(max, u64::max);
                std::thread::sleep(Duration::from_millis(100));
            }
            max
        })
    };
    wait_caught_up(&grpc, &end, LINES, Duration::from_secs(120)).await;
    stop.store(true, Ordering::Relaxed);
    max_rss = max_rss.max(sampler.join().unwrap());
    let recovery = last_fault.elapsed();
    // A clean stop writes the final summary.
    coordinator.stop();
    for w in workers.iter_mut() {
        w.kill9();
    }

    let (ok, report) = sawmill_verify(&s, &topic, &topic, &root);
    assert!(ok, "verify after {} kills: {report:#}", kills.len());
    let seqs = report["sequences"].as_array().unwrap();
    assert_eq!(seqs.len(), 4);
    assert!(
        seqs.iter().all(|q| q["gaps"] == 0 && q["duplicated"] == 0),
        "the producer lost or repeated lines: {seqs:?}"
    );
    println!(
        "chaos_worker_kill: {} kills, last fault to lag zero {:.1}s, max worker RSS {:.0} MiB, total {:.0}s",
        kills.len(),
        recovery.as_secs_f64(),
        max_rss as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    drop(private);
}
