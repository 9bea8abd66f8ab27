//! Chaos (issue #12, fault 10): scale changes under load, on a PRIVATE services instance. A
//! coordinator and `worker join` processes consume a tagged topic while it is produced:
//! one worker, then three (two join), then two (one leaves on SIGTERM, committing its open
//! shards), and meanwhile the topic grows from 4 to 6 partitions (`kafka-topics --alter`) and
//! the rest of the lines go to all six. (`new_partitions.rs` checks the growth alone, rows
//! only, on the shared services; here it happens during rebalances and is checked by `sawmill
//! verify`.)
//!
//! Asserted: after each change every partition is owned and the assignment balanced over the
//! live workers; at the end lag 0 and `sawmill verify` passes (0 lost, 0 duplicated, summary
//! exact, etcd at the end, producer sequences whole). Prints the time from the last change to
//! lag 0 and the workers' largest RSS.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_tests::checker::*;
use sawmill_tests::cluster::*;
use sawmill_tests::faults::*;
use sawmill_tests::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const LINES: u64 = 80_000;
const KEYS: u32 = 4;
const PORT_OFFSET: u16 = 880;

fn sample(workers: &[ChildGuard], max_rss: &mut u64) {
    for w in workers {
        *max_rss = (*max_rss).max(w.pid().and_then(rss_bytes).unwrap_or(0));
    }
}

async fn wait_balanced(grpc: &str, ids: &[&str], partitions: usize) {
    wait_for(
        &format!("{partitions} partitions balanced over {ids:?}"),
        Duration::from_secs(90),
        async || balanced(&status(grpc).await?, ids, partitions).then_some(()),
    )
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka and etcd (a private instance): scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_scale_1_3_2_workers_and_new_partitions_under_load() {
    let started = Instant::now();
    let private = PrivateServices::up(&["etcd", "kafka"], PORT_OFFSET);
    let s = private.services.clone();
    let topic = unique("chaos-scale");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out").display().to_string();
    let file = dir.path().join("tagged.log");
    generate_tagged(&file, LINES, 9, 99, KEYS);
    let data = std::fs::read(&file).unwrap();
    let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    let parts: Vec<PathBuf> = lines
        .chunks(lines.len().div_ceil(8))
        .enumerate()
        .map(|(i, c)| {
            let p = dir.path().join(format!("part{i}.log"));
            std::fs::write(&p, c.concat()).unwrap();
            p
        })
        .collect();
    produce(&s, &topic, &parts[0], 4, true);

    let logs = logs_dir("chaos_scale");
    let log = std::fs::File::create(logs.path().join("coordinator.log")).unwrap();
    let mut cmd = Coordinator::command(&s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0");
    cmd.args(["--shard-max-rows", "4000", "--shard-max-age-ms", "500"])
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
    let mut max_rss = 0u64;
    let mut workers = vec![worker(&grpc, "w1", logs.path())];
    wait_balanced(&grpc, &["w1"], 4).await;
    produce(&s, &topic, &parts[1], 4, false);
    sample(&workers, &mut max_rss);

    // 1 → 3 while lines arrive.
    workers.push(worker(&grpc, "w2", logs.path()));
    workers.push(worker(&grpc, "w3", logs.path()));
    produce(&s, &topic, &parts[2], 4, false);
    wait_balanced(&grpc, &["w1", "w2", "w3"], 4).await;
    sample(&workers, &mut max_rss);

    // The topic grows to 6 partitions; the next lines go to all of them.
    let out = private.tool(&[
        "kafka-topics",
        "--alter",
        "--topic",
        &topic,
        "--partitions",
        "6",
    ]);
    assert!(
        out.status.success(),
        "kafka-topics --alter: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    produce(&s, &topic, &parts[3], 6, false);
    produce(&s, &topic, &parts[4], 6, false);
    wait_balanced(&grpc, &["w1", "w2", "w3"], 6).await;
    sample(&workers, &mut max_rss);

    // 3 → 2: w3 leaves gracefully (commits its open shards) while lines arrive.
    let w3 = workers.pop().unwrap();
    let pid = w3.pid().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut w3 = w3;
    for p in &parts[5..] {
        produce(&s, &topic, p, 6, false);
        sample(&workers, &mut max_rss);
    }
    assert!(
        w3.wait_ok(Duration::from_secs(60)),
        "w3 did not leave cleanly on SIGTERM"
    );
    let last_change = Instant::now();
    wait_balanced(&grpc, &["w1", "w2"], 6).await;

    let end = end_offsets(&s, &topic);
    assert_eq!(end.len(), 6);
    assert_eq!(end.values().sum::<i64>() as u64, LINES);
    assert!(
        end.iter().filter(|(p, _)| **p >= 4).all(|(_, e)| *e > 0),
        "the new partitions got lines: {end:?}"
    );
    wait_caught_up(&grpc, &end, LINES, Duration::from_secs(120)).await;
    let recovery = last_change.elapsed();
    sample(&workers, &mut max_rss);
    coordinator.stop();
    for w in workers.iter_mut() {
        w.kill9();
    }
    assert_verified(
        &s,
        &topic,
        &root,
        KEYS as usize,
        "scale 1→3→2, 4→6 partitions",
    );
    println!(
        "chaos_scale: 1→3→2 workers, 4→6 partitions, last change to lag 0 {:.1}s, max worker RSS {:.0} MiB, total {:.0}s",
        recovery.as_secs_f64(),
        max_rss as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    drop(private);
}
