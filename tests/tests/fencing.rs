//! Zombie fencing against real etcd and HDFS: two workers both believe they own a partition;
//! only the current epoch's commit lands, and the stale owner's staged files are removed.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_common::etcd::Checkpoints;
use sawmill_common::storage::{self, Storage};
use sawmill_core::analytics::{AnalyticsConfig, Partial};
use sawmill_core::batch::{ChunkParser, Push};
use sawmill_core::shard::ParquetOptions;
use sawmill_tests::*;
use sawmill_worker::commit::{commit_shard, recover_partition, ShardOutcome, ShardToCommit};
use sawmill_worker::retry::RetryPolicy;
use std::sync::Arc;

fn shard(topic: &str, epoch: u64, worker: &str, first: i64, n: i64) -> ShardToCommit {
    let mut partial = Partial::new(&AnalyticsConfig::default());
    let mut parser = ChunkParser::new(topic.into(), 0);
    for o in first..first + n {
        let line = format!(
            "h{o} - - [01/Jul/1995:00:00:{:02} -0400] \"GET /x HTTP/1.0\" 200 {o}",
            o % 60
        );
        assert_eq!(parser.push(line.as_bytes(), o, &mut partial), Push::Taken);
    }
    ShardToCommit {
        source: topic.into(),
        partition: 0,
        epoch,
        worker: worker.into(),
        first,
        last: first + n - 1,
        parsed: parser.finish().unwrap(),
        partial,
        retry: RetryPolicy::default(),
    }
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_current_epoch_commits() {
    let s = services();
    let topic = unique("it-fence");
    let root = format!("{}/sawmill-it/{topic}", s.hdfs);
    let out: Arc<dyn Storage> = storage::open(&root).await.unwrap();
    let opts = ParquetOptions::default();
    let mut a = Checkpoints::connect(&s.etcd, &topic).await.unwrap();
    let mut b = Checkpoints::connect(&s.etcd, &topic).await.unwrap();

    let epoch_a = a.bump_epoch(0, "a").await.unwrap();
    assert_eq!(a.init_next_offset(0, epoch_a, 0).await.unwrap(), 0);
    // b takes over: a is now a zombie that still believes it owns partition 0.
    let epoch_b = b.bump_epoch(0, "b").await.unwrap();
    assert!(epoch_b > epoch_a);

    match commit_shard(
        out.clone(),
        &mut a,
        &opts,
        shard(&topic, epoch_a, "a", 0, 10),
    )
    .await
    .unwrap()
    {
        ShardOutcome::Fenced { current_epoch } => assert_eq!(current_epoch, Some(epoch_b)),
        other => panic!("zombie commit must be fenced, got {other:?}"),
    }
    assert!(
        out.list("records").await.unwrap().is_empty(),
        "a fenced shard is never published"
    );
    assert!(
        out.list("_staging").await.unwrap().is_empty(),
        "a fenced shard's staged files are removed"
    );

    let m = match commit_shard(
        out.clone(),
        &mut b,
        &opts,
        shard(&topic, epoch_b, "b", 0, 10),
    )
    .await
    .unwrap()
    {
        ShardOutcome::Done(m) => m,
        other => panic!("owner commit must land, got {other:?}"),
    };
    assert_eq!((m.first, m.last, m.records), (0, 9, 10));
    assert_eq!(b.state(0).await.unwrap().next_offset, Some(10));
    for f in m.all_files() {
        assert!(out.exists(&f.path).await.unwrap(), "{} published", f.path);
    }

    // A retried commit whose first answer was lost is recognised, not applied twice.
    match commit_shard(
        out.clone(),
        &mut b,
        &opts,
        shard(&topic, epoch_b, "b", 0, 10),
    )
    .await
    .unwrap()
    {
        ShardOutcome::Done(m2) => assert_eq!(m2.last, 9),
        other => panic!("a replay must be AlreadyCommitted, got {other:?}"),
    }
    assert_eq!(b.manifests(Some(0)).await.unwrap().len(), 1);
    // A shard that does not start at the stored next offset is refused.
    assert!(matches!(
        commit_shard(
            out.clone(),
            &mut b,
            &opts,
            shard(&topic, epoch_b, "b", 5, 10)
        )
        .await
        .unwrap(),
        ShardOutcome::Stale { stored: Some(10) }
    ));
    // The zombie keeps failing, whatever it tries.
    assert!(matches!(
        commit_shard(
            out.clone(),
            &mut a,
            &opts,
            shard(&topic, epoch_a, "a", 10, 5)
        )
        .await
        .unwrap(),
        ShardOutcome::Fenced { .. }
    ));

    // Recovery publishes a committed-but-unpublished file: simulate a crash after the commit.
    let f = &m.files[0];
    let bytes = out.read(&f.path).await.unwrap();
    out.delete(&f.path).await.unwrap();
    out.write(&f.staging, &bytes).await.unwrap();
    out.write("_staging/orphan-not-ours.tmp", b"x")
        .await
        .unwrap();
    let n = recover_partition(out.clone(), &mut b, &topic, 0, None)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(out.exists(&f.path).await.unwrap());
    assert!(!out.exists(&f.staging).await.unwrap());

    for p in out.list("").await.unwrap() {
        let _ = out.delete(&p).await;
    }
    b.delete_all().await.unwrap();
}
