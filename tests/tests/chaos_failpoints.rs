//! Chaos (issue #12, fault 7): faults inside the commit protocol, injected with fail points
//! (`sawmill_common::failpoints`, compiled in only with the `failpoints` feature) into a worker
//! run in-process against a PRIVATE services instance (etcd + Kafka):
//!
//! - after a shard is staged, before its etcd transaction;
//! - after the transaction applied, before anything is published;
//! - in the middle of publishing (one file renamed, the next one fails);
//! - the transaction applied but its answer is lost (the worker sees an error).
//!
//! The first three fail the partition (a permanent error, as a crash at that step would); its
//! restart's recovery must repair the state. The lost answer is resolved in place by reading
//! etcd back. Each case: the fault fires exactly once, nothing is left in `_staging`, and
//! `sawmill verify` passes (0 lost, 0 duplicated, summary exact, etcd at the end, producer
//! sequences whole). Prints the time from the fault to the worker's catch-up.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

/// Without the feature the fail points do not exist: the test is listed as ignored.
#[cfg(not(feature = "failpoints"))]
#[test]
#[ignore = "needs the failpoints feature and the services: scripts/test.sh or scripts/chaos.sh"]
fn chaos_failpoints_in_the_commit_protocol() {}

#[cfg(feature = "failpoints")]
mod with_failpoints {
    use sawmill_common::failpoints::{self, armed};
    use sawmill_tests::checker::*;
    use sawmill_tests::faults::*;
    use sawmill_tests::*;
    use std::time::{Duration, Instant};

    const LINES: u64 = 20_000;
    const PARTITIONS: u32 = 2;
    const KEYS: u32 = 3;
    /// Port offset of the private services (`SAWMILL_CHAOS_PORT_OFFSET` overrides it).
    const PORT_OFFSET: u16 = 860;

    #[cfg_attr(
        not(feature = "services"),
        ignore = "needs Kafka and etcd (a private instance): scripts/test.sh"
    )]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chaos_failpoints_in_the_commit_protocol() {
        let started = Instant::now();
        let private = PrivateServices::up(&["etcd", "kafka"], PORT_OFFSET);
        let s = private.services.clone();
        let cases = [
            (failpoints::STAGED_BEFORE_TXN, "1*return"),
            (failpoints::COMMITTED_BEFORE_PUBLISH, "1*return"),
            (failpoints::PUBLISH_FILE, "1*off->1*return"),
            (failpoints::COMMIT_ANSWER_LOST, "1*return"),
        ];
        let mut figures = Vec::new();
        for (i, (point, actions)) in cases.into_iter().enumerate() {
            let topic = unique(&format!("chaos-fp{i}"));
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("out");
            let root_str = root.display().to_string();
            let file = dir.path().join("tagged.log");
            generate_tagged(&file, LINES, 7 + i as u64, 100 + i as u64, KEYS);
            produce(&s, &topic, &file, PARTITIONS, true);

            armed::reset();
            armed::arm(point, actions).unwrap();
            let report = run_worker(
                pipeline_settings(&s, &topic, &root_str),
                "fp",
                None,
                Duration::from_secs(120),
            )
            .await;
            let caught_up = Instant::now();
            let fired = armed::fired(point);
            armed::reset();
            assert_eq!(fired.len(), 1, "{point} fired once: {fired:?}");
            let recovery = caught_up - fired[0];
            assert_eq!(
                report.next_offsets.values().sum::<i64>() as u64,
                LINES,
                "{point}: committed to the end: {report:?}"
            );
            let staged = files_under(&root.join("_staging"));
            assert!(staged.is_empty(), "{point}: left in staging: {staged:?}");
            summarize(&s, &topic, &root_str);
            assert_verified(&s, &topic, &root_str, KEYS as usize, point);
            println!(
                "chaos_failpoints: {point} ({actions}): fault to caught up {:.1}s, {} shards",
                recovery.as_secs_f64(),
                report.shards
            );
            figures.push(recovery);
        }
        println!(
            "chaos_failpoints: {} faults, slowest recovery {:.1}s, total {:.0}s",
            figures.len(),
            figures.iter().max().unwrap().as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        drop(private);
    }
}
