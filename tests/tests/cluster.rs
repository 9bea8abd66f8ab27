//! The cluster against the real services: `coordinator serve` and `worker join` processes on
//! loopback, Kafka → workers → Parquet on HDFS → etcd commits → the coordinator's merge.
//!
//! - real logs through one coordinator and three workers land exactly once, and the summary
//!   tables the coordinator writes equal `sawmill run` over the same files;
//! - while the topic is still being produced into: a fourth worker joins (minimal moves), a
//!   worker is killed -9 (its partitions are owned again within the session timeout + 5 s),
//!   the coordinator is killed -9 and restarted (workers rejoin on their own), and the result is
//!   still exact;
//! - stale or unknown generations are refused with clear gRPC errors; a worker of another
//!   version is refused at Join and exits non-zero with the coordinator's message.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_common::storage;
use sawmill_proto::v1::coordinator_client::CoordinatorClient;
use sawmill_proto::v1::{HeartbeatRequest, JoinRequest};
use sawmill_tests::cluster::*;
use sawmill_tests::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The two end-to-end tests each run a whole cluster: one at a time on two cores.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SESSION_TIMEOUT_MS: u64 = 3000;

/// The cluster tests' coordinator: small shards, short timeouts, logs in `logs`.
fn start_coordinator(
    s: &Services,
    topic: &str,
    root: &str,
    listen: &str,
    http: &str,
    logs: &Path,
) -> Coordinator {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join("coordinator.log"))
        .unwrap();
    let mut cmd = Coordinator::command(s, topic, root, listen, http);
    cmd.args(["--shard-max-rows", "20000", "--shard-max-age-ms", "1000"])
        .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()])
        .args([
            "--heartbeat-interval-ms",
            "500",
            "--summary-interval-ms",
            "1000",
        ])
        .env("SAWMILL_LOG", "info")
        .stderr(log);
    Coordinator::spawn(&mut cmd)
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_process_real_logs_exactly_once() {
    let s = services();
    let Some(files) = real_logs("three_workers_process_real_logs_exactly_once") else {
        return;
    };
    let _heavy = HEAVY.lock().await;
    let topic = unique("it-cluster");
    let root = format!("{}/sawmill-it/{topic}", s.hdfs);
    let mut lines = 0;
    for (i, f) in files.iter().enumerate() {
        lines += produce(&s, &topic, f, 6, i == 0);
    }
    let end = end_offsets(&s, &topic);
    assert_eq!(end.values().sum::<i64>() as u64, lines);
    let out = storage::open(&root).await.unwrap();
    let _cleanup = Cleanup {
        storage: out.clone(),
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };
    let logs = logs_dir("test");

    let mut coord = start_coordinator(&s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0", logs.path());
    let _workers: Vec<ChildGuard> = (1..=3)
        .map(|i| worker(&coord.grpc, &format!("w{i}"), logs.path()))
        .collect();
    let started = Instant::now();
    let doc = wait_caught_up(&coord.grpc, &end, lines, Duration::from_secs(300)).await;
    println!(
        "{lines} lines of real logs caught up by 3 workers in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        balanced(&doc, &["w1", "w2", "w3"], 6),
        "six partitions over three workers: {doc}"
    );

    // The HTTP API serves the same state.
    let http = coord.http.clone();
    let (code, body) = blocking(move || http_get(&http, "/api/v1/analytics?top=3")).await;
    assert_eq!(code, 200, "{body}");
    let a: Value = serde_json::from_str(&body).unwrap();
    let reference = reference(&files);
    assert_eq!(a["records"].as_u64(), Some(reference.records()));
    assert_eq!(a["views"]["top_hosts"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        a["tables"]["status_count"].as_array().map(Vec::len),
        Some(
            reference
                .tables()
                .iter()
                .find(|(n, _)| *n == "status_count")
                .unwrap()
                .1
                .num_rows()
        )
    );
    let http = coord.http.clone();
    let (code, metrics) = blocking(move || http_get(&http, "/metrics")).await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("sawmill_coordinator_workers_alive 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "sawmill_coordinator_merged_records_total {}",
            reference.records()
        )),
        "{metrics}"
    );
    let http = coord.http.clone();
    assert_eq!(blocking(move || http_get(&http, "/healthz")).await.0, 200);

    // `sawmill status` shows the same cluster.
    let st = Command::new(bin("sawmill"))
        .args(["status", "--coordinator", &coord.grpc])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let text = String::from_utf8_lossy(&st.stdout);
    for w in ["w1", "w2", "w3", "alive", "total lag 0"] {
        assert!(text.contains(w), "{w} missing from sawmill status:\n{text}");
    }

    coord.stop();
    verify(&s, &topic, out, &end, &reference).await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_survives_joins_kills_and_a_coordinator_restart() {
    let s = services();
    let _heavy = HEAVY.lock().await;
    let topic = unique("it-chaos");
    let root = format!("{}/sawmill-it/{topic}", s.hdfs);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gen.log");
    let g = Command::new(bin("sawmill"))
        .args(["generate", "--lines", "480000", "--seed", "11", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    // Twelve chunks produced one after another while the cluster runs: the stream is live
    // during every event below.
    let text = std::fs::read(&file).unwrap();
    let all_lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    let chunk = all_lines.len().div_ceil(12);
    let mut chunks = Vec::new();
    for (i, c) in all_lines.chunks(chunk).enumerate() {
        let f = dir.path().join(format!("chunk{i}.log"));
        std::fs::write(&f, c.concat()).unwrap();
        chunks.push(f);
    }
    let first = chunks.remove(0);
    let mut lines = produce(&s, &topic, &first, 6, true);
    let out = storage::open(&root).await.unwrap();
    let _cleanup = Cleanup {
        storage: out.clone(),
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };
    let producer = {
        let (s, topic) = (s.clone(), topic.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            for c in chunks {
                std::thread::sleep(Duration::from_millis(1500));
                n += produce(&s, &topic, &c, 6, false);
            }
            n
        })
    };
    let logs = logs_dir("chaos");
    let mut coord = start_coordinator(&s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0", logs.path());
    let grpc = coord.grpc.clone();
    let mut workers: BTreeMap<String, ChildGuard> = (1..=3)
        .map(|i| {
            (
                format!("w{i}"),
                worker(&grpc, &format!("w{i}"), logs.path()),
            )
        })
        .collect();
    let before = wait_for(
        "three workers with two partitions each",
        Duration::from_secs(60),
        async || {
            let doc = status(&grpc).await?;
            balanced(&doc, &["w1", "w2", "w3"], 6).then(|| owners(&doc))
        },
    )
    .await;

    // A fourth worker: it takes its share, and only the fewest partitions possible move.
    let counts: Vec<usize> = ["w1", "w2", "w3", "w4"]
        .iter()
        .map(|w| before.values().filter(|(o, _, _)| o == w).count())
        .collect();
    let minimal = min_moves(6, &counts);
    workers.insert("w4".into(), worker(&grpc, "w4", logs.path()));
    let mut changes = 0;
    let mut last = before.clone();
    let after = wait_for(
        "the fourth worker's share",
        Duration::from_secs(60),
        async || {
            let doc = status(&grpc).await?;
            let now = owners(&doc);
            for (p, (w, _, _)) in &now {
                if !w.is_empty() && last.get(p).is_some_and(|(l, _, _)| l != w) {
                    changes += 1;
                }
            }
            last = now.clone();
            balanced(&doc, &["w1", "w2", "w3", "w4"], 6).then_some(now)
        },
    )
    .await;
    let moved = before
        .iter()
        .filter(|(p, (w, _, _))| after[p].0 != *w)
        .count();
    println!("fourth worker joined: {moved} partition(s) moved, {changes} ownership change(s) observed, minimum {minimal}");
    assert_eq!(
        moved, minimal,
        "moves beyond the minimum: before {before:?} after {after:?}"
    );
    assert!(
        changes <= minimal,
        "{changes} ownership changes observed, minimum {minimal}"
    );

    // kill -9 a worker: its partitions are owned again, under a new epoch, by live workers.
    let victim = "w1";
    let lost: BTreeMap<i64, u64> = after
        .iter()
        .filter(|(_, (w, _, _))| w == victim)
        .map(|(p, (_, e, _))| (*p, *e))
        .collect();
    assert!(!lost.is_empty());
    workers.get_mut(victim).unwrap().kill9();
    let killed = Instant::now();
    wait_for(
        "the dead worker's partitions owned again",
        Duration::from_millis(SESSION_TIMEOUT_MS) + Duration::from_secs(30),
        async || {
            let doc = status(&grpc).await?;
            let now = owners(&doc);
            let alive: Vec<String> = alive_workers(&doc).into_iter().map(|(w, _)| w).collect();
            lost.iter()
                .all(|(p, e)| {
                    now.get(p).is_some_and(|(w, e2, st)| {
                        w != victim && alive.contains(w) && e2 > e && st == "owned"
                    })
                })
                .then_some(())
        },
    )
    .await;
    let took = killed.elapsed();
    println!(
        "partitions {:?} of the killed worker owned again after {:.2}s (session timeout {:.1}s)",
        lost.keys().collect::<Vec<_>>(),
        took.as_secs_f64(),
        SESSION_TIMEOUT_MS as f64 / 1000.0
    );
    assert!(
        took <= Duration::from_millis(SESSION_TIMEOUT_MS) + Duration::from_secs(5),
        "took {took:?}"
    );

    // kill -9 the coordinator and start it again on the same ports: the workers rejoin.
    let gens_before: BTreeMap<String, u64> = alive_workers(&status(&grpc).await.unwrap())
        .into_iter()
        .collect();
    coord.child.kill9();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (g, h) = (coord.grpc.clone(), coord.http.clone());
    coord = start_coordinator(&s, &topic, &root, &g, &h, logs.path());
    let restarted = Instant::now();
    wait_for(
        "the workers to rejoin the restarted coordinator",
        Duration::from_secs(30),
        async || {
            let doc = status(&grpc).await?;
            let gens: BTreeMap<String, u64> = alive_workers(&doc).into_iter().collect();
            (gens.len() == 3
                && gens
                    .iter()
                    .all(|(w, g)| gens_before.get(w).is_some_and(|b| g > b)))
            .then_some(())
        },
    )
    .await;
    println!(
        "three workers rejoined the restarted coordinator within {:.2}s",
        restarted.elapsed().as_secs_f64()
    );

    lines += producer.join().unwrap();
    let end = end_offsets(&s, &topic);
    assert_eq!(end.values().sum::<i64>() as u64, lines);
    wait_caught_up(&grpc, &end, lines, Duration::from_secs(300)).await;
    coord.stop();
    verify(&s, &topic, out, &end, &reference(&[file])).await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_unknown_generations_are_refused() {
    let s = services();
    let topic = unique("it-gen");
    let root = format!("{}/sawmill-it/{topic}", s.hdfs);
    let out = storage::open(&root).await.unwrap();
    let _cleanup = Cleanup {
        storage: out,
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };
    let logs = logs_dir("test");
    let mut coord = start_coordinator(&s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0", logs.path());
    let mut c = CoordinatorClient::connect(format!("http://{}", coord.grpc))
        .await
        .unwrap();
    let join = || JoinRequest {
        worker_id: "twin".into(),
        version: sawmill_core::VERSION.into(),
        ..Default::default()
    };
    let g1 = c.join(join()).await.unwrap().into_inner();
    let g2 = c.join(join()).await.unwrap().into_inner();
    assert!(g2.generation > g1.generation);
    assert_eq!(g1.session_timeout_ms as u64, SESSION_TIMEOUT_MS);
    let settings: sawmill_core::settings::PipelineSettings =
        serde_json::from_str(&g1.settings_json).unwrap();
    assert_eq!(
        (settings.topic.as_str(), settings.shard_max_rows),
        (topic.as_str(), 20000)
    );

    let hb = |id: &str, generation, secret: &str| HeartbeatRequest {
        worker_id: id.into(),
        generation,
        session_secret: secret.into(),
        ..Default::default()
    };
    let e = c
        .heartbeat(hb("twin", g1.generation, &g1.session_secret))
        .await
        .unwrap_err();
    assert_eq!(format!("{:?}", e.code()), "FailedPrecondition");
    assert!(
        e.message().contains("stale generation") && e.message().contains("rejoin"),
        "{}",
        e.message()
    );
    let e = c
        .heartbeat(hb("nobody", g2.generation, &g2.session_secret))
        .await
        .unwrap_err();
    assert_eq!(format!("{:?}", e.code()), "NotFound");
    assert!(
        e.message().contains("unknown worker nobody: join first"),
        "{}",
        e.message()
    );
    c.heartbeat(hb("twin", g2.generation, &g2.session_secret))
        .await
        .expect("the current generation is accepted");

    // Generations keep increasing across a coordinator restart (persisted in etcd).
    coord.stop();
    coord = start_coordinator(&s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0", logs.path());
    let mut c = CoordinatorClient::connect(format!("http://{}", coord.grpc))
        .await
        .unwrap();
    let g3 = c.join(join()).await.unwrap().into_inner();
    assert!(
        g3.generation > g2.generation,
        "{} after {}",
        g3.generation,
        g2.generation
    );

    // A worker of another major.minor is refused at Join and exits non-zero with the reason.
    let o = Command::new(bin("worker"))
        .args([
            "join",
            "--coordinator",
            &coord.grpc,
            "--worker-id",
            "old",
            "--report-version",
            "0.0.1",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refused") && err.contains("major.minor must match"),
        "{err}"
    );
    coord.stop();
}
