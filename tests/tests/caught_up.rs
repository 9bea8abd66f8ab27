//! The cluster path's end of a burst, in-process (coordinator and worker on port 0): with the
//! idle cut at 60 s, the age cut at 10 min and the coordinator's tick at 60 s, a worker under a
//! coordinator still commits a finished topic within seconds. Only the caught-up cut (a shard
//! that reaches the broker's end offset is committed at once) and a grant that does not wait for
//! a tick can do that; each partition's lines land in exactly one shard (one cut, at the end).

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_common::etcd::Checkpoints;
use sawmill_common::storage;
use sawmill_coordinator::{serve, ServeConfig};
use sawmill_tests::checker::generate_tagged;
use sawmill_tests::*;
use sawmill_worker::session::{JoinOptions, SettingsOverrides};
use std::time::{Duration, Instant};

const LINES: u64 = 30_000;
const PARTITIONS: u32 = 3;
/// Far below the idle cut, the age cut and the tick: only the new behaviour meets it.
const BOUND: Duration = Duration::from_secs(30);

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_burst_commits_without_the_idle_cut_or_a_tick() {
    let s = services();
    let topic = unique("it-caught-up");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("burst.log");
    generate_tagged(&file, LINES, 41, 1, 3);
    assert_eq!(produce(&s, &topic, &file, PARTITIONS, true), LINES);
    let end = end_offsets(&s, &topic);
    assert_eq!(end.len(), PARTITIONS as usize);
    let root = dir.path().join("out").display().to_string();
    let _cleanup = Cleanup {
        storage: storage::open(&root).await.unwrap(),
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };

    let mut cfg = ServeConfig {
        listen: "127.0.0.1:0".into(),
        http: "127.0.0.1:0".into(),
        tick_ms: 60_000,
        ..Default::default()
    };
    cfg.pipeline.bootstrap_servers = s.kafka.clone();
    cfg.pipeline.etcd = s.etcd.clone();
    cfg.pipeline.topic = topic.clone();
    cfg.pipeline.output = root.clone();
    cfg.pipeline.shard_idle_ms = 60_000;
    cfg.pipeline.shard_max_age_ms = 600_000;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let coordinator = serve(cfg, async move {
        let _ = stopped.await;
    })
    .await
    .unwrap();

    let started = Instant::now();
    let worker = tokio::spawn(sawmill_worker::session::run(JoinOptions {
        coordinator: coordinator.grpc.to_string(),
        worker_id: "w1".into(),
        overrides: SettingsOverrides::default(),
        metrics_listen: None,
        version: sawmill_core::VERSION.into(),
        access: Default::default(),
    }));

    let mut cp = Checkpoints::connect(&s.etcd, &topic).await.unwrap();
    loop {
        let mut done = true;
        for (&p, &e) in &end {
            done &= cp.state(p).await.unwrap().next_offset == Some(e);
        }
        if done {
            break;
        }
        assert!(
            !worker.is_finished(),
            "the worker stopped: {:?}",
            worker.await
        );
        assert!(
            started.elapsed() < BOUND,
            "not every partition committed its end {end:?} within {BOUND:?} (idle cut 60 s, \
             tick 60 s): the last shard waited for a timer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "caught up: {LINES} lines committed {:?} after the worker started",
        started.elapsed()
    );
    // One cut per partition, at its end: neither a timer nor an early probe split the burst.
    for (&p, &e) in &end {
        let manifests = cp.manifests(Some(p)).await.unwrap();
        let ranges: Vec<(i64, i64)> = manifests.iter().map(|m| (m.first, m.last)).collect();
        // A small topic may leave a partition empty (the producer gives ~1 MB per partition
        // in turn).
        let want = if e > 0 { vec![(0, e - 1)] } else { vec![] };
        assert_eq!(ranges, want, "partition {p}'s shards");
    }

    worker.abort();
    stop.send(()).unwrap();
    coordinator.wait().await.unwrap();
}
