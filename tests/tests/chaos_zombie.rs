//! Chaos, issue #12 fault 3: a zombie worker. `w1` is frozen with SIGSTOP past the session
//! timeout while lines arrive; its partitions move to `w2` at newer epochs and `w2` commits
//! them to the end; then `w1` is thawed with SIGCONT. Whatever `w1` had staged or was about to
//! commit belongs to a stale epoch: etcd's fenced transaction refuses it, `w1` drops those
//! partitions, and nothing it wrote becomes visible (`sawmill verify`: 0 duplicated, 0 rows
//! outside the manifests, every summary table exact).

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_tests::cluster::*;
use sawmill_tests::scenario::*;
use std::collections::BTreeMap;
use std::time::Duration;

const SESSION_TIMEOUT_MS: u64 = 3000;

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_zombie_worker_is_fenced_and_writes_nothing_visible() {
    let mut sc = Scenario::start(ScenarioConfig {
        name: "chaos_zombie",
        services: &["etcd", "kafka"],
        offset: 780,
        lines: 100_000,
        parts: 5,
        partitions: 4,
        hdfs_output: false,
        session_timeout_ms: SESSION_TIMEOUT_MS,
    });
    let doc = sc
        .wait_status(
            "both workers owning partitions",
            Duration::from_secs(60),
            |d| balanced(d, &["w1", "w2"], 4),
        )
        .await;
    let of_w1: BTreeMap<i64, u64> = owners(&doc)
        .into_iter()
        .filter(|(_, (w, _, _))| w == "w1")
        .map(|(p, (_, epoch, _))| (p, epoch))
        .collect();
    assert!(!of_w1.is_empty(), "w1 owns partitions: {doc}");

    // Freeze w1 in the middle of a stream: it holds open shards of its partitions.
    sc.produce_next();
    let pid = sc.worker_pid("w1");
    signal(pid, "STOP");
    sc.produce_next();
    let moved = sc
        .wait_status(
            "w1's partitions owned by w2 at newer epochs",
            Duration::from_secs(60),
            |d| {
                let o = owners(d);
                of_w1.iter().all(|(p, e)| {
                    o.get(p)
                        .is_some_and(|(w, ep, st)| w == "w2" && ep > e && st == "owned")
                })
            },
        )
        .await;
    let epochs: BTreeMap<i64, u64> = owners(&moved)
        .into_iter()
        .map(|(p, (_, e, _))| (p, e))
        .collect();
    // w2 commits everything, w1's partitions included, while w1 is still frozen.
    sc.lag_zero("w1 frozen, its partitions moved", Duration::from_secs(120))
        .await;

    signal(pid, "CONT");
    sc.produce_next();
    let thawed = sc
        .lag_zero("w1 thawed (SIGCONT)", Duration::from_secs(120))
        .await;
    // Settled: both workers again, no partition back at an epoch older than the move.
    sc.wait_status(
        "balanced again after w1 came back",
        Duration::from_secs(60),
        |d| {
            balanced(d, &["w1", "w2"], 4)
                && owners(d)
                    .iter()
                    .all(|(p, (_, e, _))| epochs.get(p).is_none_or(|old| e >= old))
        },
    )
    .await;
    let log = std::fs::read_to_string(sc.logs.path().join("w1.log")).unwrap();
    let fenced = log.matches("fenced").count() + log.matches("lost partition").count();
    let rejoined = log.matches("rejoining the coordinator").count();
    assert!(
        fenced + rejoined > 0,
        "w1 never noticed it had been replaced (no fence, no rejoin) in its log:\n{log}"
    );
    println!("chaos_zombie: w1 after SIGCONT: {fenced} fenced/lost, {rejoined} rejoin(s)");

    let rss = sc.finish().await;
    println!(
        "chaos_zombie: SIGCONT → lag 0 {:.1}s, max worker RSS {:.0} MiB",
        thawed.as_secs_f64(),
        rss as f64 / (1 << 20) as f64
    );
}
