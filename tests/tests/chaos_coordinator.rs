//! Chaos, issue #12 fault 2: the coordinator killed with `kill -9` and started again at the
//! same address, then frozen with SIGSTOP past the workers' session timeout and thawed with
//! SIGCONT — while a tagged topic is produced and consumed by two `worker join` processes, on
//! a private services instance. Workers go on processing the partitions they own while no
//! coordinator answers; afterwards lag zero, and `sawmill verify` passes (0 lost, 0 duplicated,
//! every summary table exact). Prints each recovery time (RELIABILITY.md's figures).

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_tests::cluster::*;
use sawmill_tests::scenario::*;
use std::time::Duration;

const SESSION_TIMEOUT_MS: u64 = 3000;

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_coordinator_kill9_and_sigstop_lose_and_duplicate_nothing() {
    let mut sc = Scenario::start(ScenarioConfig {
        name: "chaos_coordinator",
        services: &["etcd", "kafka"],
        offset: 760,
        lines: 120_000,
        parts: 6,
        partitions: 4,
        hdfs_output: false,
        session_timeout_ms: SESSION_TIMEOUT_MS,
    });
    sc.wait_status(
        "both workers owning partitions",
        Duration::from_secs(60),
        |d| balanced(d, &["w1", "w2"], 4),
    )
    .await;
    sc.produce_next();

    // kill -9 while lines arrive; the same command again 2 s later (it campaigns, leads, and
    // rebuilds its state from etcd and the output; the workers rejoin with what they run).
    sc.coordinator.as_mut().unwrap().child.kill9();
    sc.produce_next();
    tokio::time::sleep(Duration::from_secs(2)).await;
    sc.start_coordinator();
    let killed = sc
        .lag_zero("kill -9 + restart", Duration::from_secs(120))
        .await;

    // SIGSTOP for twice the session timeout: its lease and every session look expired when it
    // wakes; it must neither lose nor duplicate anything, and settle with both workers.
    sc.produce_next();
    let pid = sc.coordinator_pid();
    signal(pid, "STOP");
    sc.produce_next();
    tokio::time::sleep(Duration::from_millis(2 * SESSION_TIMEOUT_MS)).await;
    signal(pid, "CONT");
    let stopped = sc
        .lag_zero("SIGSTOP 6 s + SIGCONT", Duration::from_secs(120))
        .await;
    sc.wait_status(
        "both workers alive and every partition owned after SIGCONT",
        Duration::from_secs(60),
        |d| balanced(d, &["w1", "w2"], 4),
    )
    .await;

    let rss = sc.finish().await;
    println!(
        "chaos_coordinator: kill -9 → lag 0 {:.1}s, SIGCONT → lag 0 {:.1}s, max worker RSS {:.0} MiB",
        killed.as_secs_f64(),
        stopped.as_secs_f64(),
        rss as f64 / (1 << 20) as f64
    );
}
