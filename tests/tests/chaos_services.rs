//! Chaos, issue #12 faults 4–6: the services themselves fail while a tagged topic is produced
//! and consumed by a coordinator and two `worker join` processes, each test on its own private
//! instance (`deploy/local/services stop|start|restart <process>` on it, data kept):
//!
//! - Kafka: the broker stopped for 10 s mid-stream, then started;
//! - etcd: restarted; then stopped for an outage (10 s here, 30 s with `SAWMILL_CHAOS_LONG=1`);
//! - HDFS (output on it): the DataNode restarted mid-write; the NameNode restarted; both
//!   stopped for an outage.
//!
//! After each fault: lag zero (the time from the fault's end is printed, RELIABILITY.md's
//! figures); at the end `sawmill verify`: 0 lost, 0 duplicated, every summary table exact.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_tests::scenario::*;
use std::time::{Duration, Instant};

const SESSION_TIMEOUT_MS: u64 = 3000;
const RECOVERY: Duration = Duration::from_secs(180);

/// Produces a part (so the workers are mid-stream), runs `fault` (which ends the fault when it
/// returns), produces another part, and measures the time from the fault's end to lag zero.
async fn fault(sc: &mut Scenario, what: &str, fault: impl FnOnce(&Scenario)) -> f64 {
    sc.produce_next();
    fault(sc);
    let ended = Instant::now();
    sc.produce_next();
    sc.lag_zero(what, RECOVERY).await;
    ended.elapsed().as_secs_f64()
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kafka_and_etcd_restarts_and_outages_lose_nothing() {
    let mut sc = Scenario::start(ScenarioConfig {
        name: "chaos_kafka_etcd",
        services: &["etcd", "kafka"],
        offset: 800,
        lines: 160_000,
        parts: 8,
        partitions: 4,
        hdfs_output: false,
        session_timeout_ms: SESSION_TIMEOUT_MS,
    });
    let mut figures = Vec::new();
    let kafka = fault(&mut sc, "kafka stopped 10 s", |sc| {
        sc.private.fault("stop", "kafka");
        std::thread::sleep(Duration::from_secs(10));
        sc.private.fault("start", "kafka");
    })
    .await;
    figures.push(format!("kafka stop 10 s → lag 0 {kafka:.1}s"));
    let etcd = fault(&mut sc, "etcd restarted", |sc| {
        sc.private.fault("restart", "etcd")
    })
    .await;
    figures.push(format!("etcd restart → lag 0 {etcd:.1}s"));
    let out = outage();
    let etcd_out = fault(&mut sc, "etcd outage", |sc| {
        sc.private.fault("stop", "etcd");
        std::thread::sleep(out);
        sc.private.fault("start", "etcd");
    })
    .await;
    figures.push(format!(
        "etcd down {}s → lag 0 {etcd_out:.1}s",
        out.as_secs()
    ));
    let rss = sc.finish().await;
    println!(
        "chaos_kafka_etcd: {}; max worker RSS {:.0} MiB",
        figures.join(", "),
        rss as f64 / (1 << 20) as f64
    );
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_hdfs_restarts_and_outage_lose_nothing() {
    let mut sc = Scenario::start(ScenarioConfig {
        name: "chaos_hdfs",
        services: &["etcd", "kafka", "hdfs"],
        offset: 820,
        lines: 160_000,
        parts: 8,
        partitions: 4,
        hdfs_output: true,
        session_timeout_ms: SESSION_TIMEOUT_MS,
    });
    let mut figures = Vec::new();
    let dn = fault(&mut sc, "datanode restarted mid-write", |sc| {
        sc.private.fault("restart", "datanode")
    })
    .await;
    figures.push(format!("datanode restart → lag 0 {dn:.1}s"));
    let nn = fault(&mut sc, "namenode restarted", |sc| {
        sc.private.fault("restart", "namenode")
    })
    .await;
    figures.push(format!("namenode restart → lag 0 {nn:.1}s"));
    let out = outage();
    let hdfs_out = fault(&mut sc, "hdfs outage", |sc| {
        sc.private.fault("stop", "hdfs");
        std::thread::sleep(out);
        sc.private.fault("start", "hdfs");
    })
    .await;
    figures.push(format!(
        "hdfs down {}s → lag 0 {hdfs_out:.1}s",
        out.as_secs()
    ));
    let rss = sc.finish().await;
    println!(
        "chaos_hdfs: {}; max worker RSS {:.0} MiB",
        figures.join(", "),
        rss as f64 / (1 << 20) as f64
    );
}
