//! Bounded state over a long life (issue #10): 20,000 shards committed in one partition leave a
//! bounded number of etcd keys (the coordinator folds merged manifests into segments), a worker
//! recovers and a coordinator restarts in seconds, and the merged analytics stay exact. Also the
//! sweep of stale staging files. Needs etcd (`SAWMILL_ETCD`); Kafka only as the coordinator's
//! address (the topic does not exist: nothing is consumed).

use sawmill_common::etcd::Checkpoints;
use sawmill_common::storage::Storage;
use sawmill_coordinator::compact::{sweep_staging, FOLD_THRESHOLD};
use sawmill_coordinator::{serve, ServeConfig};
use sawmill_core::analytics::Partial;
use sawmill_core::layout::{partition_staging_dir, staging_nonce, ShardRange};
use sawmill_core::manifest::{CommitOutcome, ManifestFile, ShardManifest, FOLD_MAX};
use sawmill_core::record::Position;
use sawmill_tests::{comparable_batches, comparable_tables, http_get, service, unique, Cleanup};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SHARDS: i64 = 20_000;

fn line(i: i64) -> String {
    format!(
        "host{}.example - - [{:02}/Jul/1995:00:00:{:02} -0400] \"GET /p/{} HTTP/1.0\" {} {}",
        i % 97,
        1 + i % 28,
        i % 60,
        i % 31,
        if i % 13 == 0 { 404 } else { 200 },
        i % 5000
    )
}

/// One tiny shard (offset `i`, one line): its partial, published, and its manifest.
fn shard(
    source: &str,
    epoch: u64,
    cfg: &sawmill_core::analytics::AnalyticsConfig,
    i: i64,
) -> (ShardManifest, Vec<u8>) {
    let range = ShardRange {
        source: source.into(),
        partition: 0,
        first: i,
        last: i,
    };
    let mut p = Partial::new(cfg);
    let l = line(i);
    let rec = sawmill_core::parse::parse_line(l.as_bytes()).expect("a valid line");
    p.observe(
        &rec,
        Position {
            partition: 0,
            offset: i,
        },
    );
    let bytes = p.to_bytes().expect("encode partial");
    let path = range.partial_path();
    let m = ShardManifest {
        source: source.into(),
        partition: 0,
        first: i,
        last: i,
        epoch,
        worker: "w".into(),
        records: 1,
        rejects: 0,
        files: vec![],
        partial: ManifestFile {
            staging: range.staging_path(epoch, &staging_nonce(), &path),
            path,
            rows: 0,
            bytes: bytes.len() as u64,
        },
        committed_at_ms: 0,
    };
    (m, bytes)
}

async fn merged_next(http: &str) -> Option<(i64, u64)> {
    let http = http.to_string();
    let (code, body) = tokio::task::spawn_blocking(move || http_get(&http, "/api/v1/status"))
        .await
        .ok()?;
    if code != 200 {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
    let merged = &doc["merged"];
    Some((
        merged["next_offsets"]["0"].as_i64()?,
        merged["shards"].as_u64()?,
    ))
}

async fn start(
    cfg: &ServeConfig,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    sawmill_coordinator::ServeHandle,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = serve(cfg.clone(), async move {
        let _ = stopped.await;
    })
    .await
    .expect("coordinator starts");
    (handle.http.to_string(), stop, handle)
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_shards_leave_bounded_state() {
    let etcd_addr = service("SAWMILL_ETCD");
    let pipeline = unique("it-compact");
    let out = tempfile::tempdir().unwrap();
    let root = out.path().display().to_string();
    let storage = sawmill_common::storage::open(&root).await.unwrap();
    let _cleanup = Cleanup {
        storage: storage.clone(),
        etcd: etcd_addr.clone(),
        topic: pipeline.clone(),
    };
    let mut cfg = ServeConfig {
        listen: "127.0.0.1:0".into(),
        http: "127.0.0.1:0".into(),
        merge_poll_ms: 100,
        summary_interval_ms: 300,
        ..Default::default()
    };
    cfg.pipeline.bootstrap_servers = service("SAWMILL_KAFKA");
    cfg.pipeline.etcd = etcd_addr.clone();
    cfg.pipeline.topic = pipeline.clone();
    cfg.pipeline.output = root.clone();
    let analytics = cfg.pipeline.analytics();

    let mut etcd = Checkpoints::connect(&etcd_addr, &pipeline).await.unwrap();
    let epoch = etcd.bump_epoch(0, "w").await.unwrap();
    assert_eq!(etcd.init_next_offset(0, epoch, 0).await.unwrap(), 0);
    let (http, stop, handle) = start(&cfg).await;

    // Shards are made and their partials published ahead of the commits; commits are
    // sequential, as a partition's are. Keys are sampled while the coordinator folds.
    let t0 = Instant::now();
    let mut reference = Partial::new(&analytics);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ShardManifest>(512);
    let producer = {
        let (storage, source, analytics) = (storage.clone(), pipeline.clone(), analytics.clone());
        tokio::spawn(async move {
            for i in 0..SHARDS {
                let (m, bytes) = shard(&source, epoch, &analytics, i);
                storage.write(&m.partial.path, &bytes).await.unwrap();
                if tx.send(m).await.is_err() {
                    break;
                }
            }
        })
    };
    let mut max_keys = 0;
    let mut committed = 0;
    while let Some(m) = rx.recv().await {
        let bytes = storage.read(&m.partial.path).await.unwrap();
        reference.merge(Partial::from_bytes(&bytes).unwrap());
        assert_eq!(etcd.commit(&m).await.unwrap(), CommitOutcome::Committed);
        committed += 1;
        if committed % 2000 == 0 {
            max_keys = max_keys.max(etcd.key_count().await.unwrap());
        }
    }
    producer.await.unwrap();
    let commit_time = t0.elapsed();
    assert_eq!(committed, SHARDS);

    // The coordinator catches up and folds: the keys settle to a bounded number.
    let bound = (8 + FOLD_THRESHOLD + FOLD_MAX) as i64;
    let deadline = Instant::now() + Duration::from_secs(60);
    let keys = loop {
        let keys = etcd.key_count().await.unwrap();
        let merged = merged_next(&http).await;
        if keys <= (8 + FOLD_THRESHOLD) as i64 && merged.map(|m| m.0) == Some(SHARDS) {
            break keys;
        }
        assert!(
            Instant::now() < deadline,
            "not folded in time: {keys} keys, merged {merged:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("committed {SHARDS} shards in {commit_time:?}; keys at most {max_keys} while committing, {keys} after");
    assert!(
        max_keys <= 4 * bound,
        "keys grew while committing: {max_keys}"
    );
    assert!(etcd.manifests(Some(0)).await.unwrap().len() <= FOLD_THRESHOLD);
    let _ = stop.send(());
    handle.wait().await.unwrap();

    // A worker taking the partition over recovers from the bounded state, in seconds.
    let t = Instant::now();
    let epoch2 = etcd.bump_epoch(0, "w2").await.unwrap();
    assert!(epoch2 > epoch);
    let actions =
        sawmill_worker::commit::recover_partition(storage.clone(), &mut etcd, &pipeline, 0, None)
            .await
            .unwrap();
    let recovery = t.elapsed();
    assert_eq!(actions, 0);
    assert!(
        recovery < Duration::from_secs(5),
        "worker recovery took {recovery:?}"
    );

    // A restarted coordinator reads the segment plus the live keys: caught up in seconds.
    let t = Instant::now();
    let (http, stop, handle) = start(&cfg).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((next, shards)) = merged_next(&http).await {
            if next == SHARDS {
                assert_eq!(shards, SHARDS as u64);
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the restarted coordinator did not catch up in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let restart = t.elapsed();
    let _ = stop.send(());
    handle.wait().await.unwrap();
    eprintln!("worker recovery {recovery:?}, coordinator restart {restart:?}");

    // Exact: the summary it wrote and a merge of everything committed equal the direct sum
    // (rows sorted: the order of equal counts is not part of the result; an empty table is
    // not written).
    let sorted = |mut t: BTreeMap<String, Vec<String>>| {
        t.retain(|_, rows| !rows.is_empty());
        t.values_mut().for_each(|rows| rows.sort());
        t
    };
    let expected = sorted(comparable_tables(&reference));
    let tables = sorted(comparable_batches(
        &sawmill_common::summary::read_root(&root).await.unwrap(),
    ));
    for (name, rows) in &expected {
        assert_eq!(tables.get(name), Some(rows), "summary table {name} differs");
    }
    assert_eq!(tables.len(), expected.len());
    let all = sawmill_common::committed::merge_committed(&mut etcd, storage.clone(), &analytics)
        .await
        .unwrap();
    assert_eq!(all.shards, SHARDS as usize);
    assert_eq!(all.next_offsets, BTreeMap::from([(0, SHARDS)]));
    assert_eq!(sorted(comparable_tables(&all.partial)), expected);
    assert!(etcd.key_count().await.unwrap() <= bound);
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_staging_is_swept_but_never_what_a_commit_may_publish() {
    let etcd_addr = service("SAWMILL_ETCD");
    let pipeline = unique("it-sweep");
    let out = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> =
        sawmill_common::storage::open(&out.path().display().to_string())
            .await
            .unwrap();
    let _cleanup = Cleanup {
        storage: storage.clone(),
        etcd: etcd_addr.clone(),
        topic: pipeline.clone(),
    };
    let analytics = sawmill_core::analytics::AnalyticsConfig::default();
    let mut etcd = Checkpoints::connect(&etcd_addr, &pipeline).await.unwrap();
    let e1 = etcd.bump_epoch(0, "old").await.unwrap();
    etcd.init_next_offset(0, e1, 0).await.unwrap();
    // Committed under e1 but not published (its owner died): recovery of the next owner must
    // publish it, so the sweep must keep it.
    let (committed, _) = shard(&pipeline, e1, &analytics, 0);
    storage
        .write(&committed.partial.staging, b"x")
        .await
        .unwrap();
    assert_eq!(
        etcd.commit(&committed).await.unwrap(),
        CommitOutcome::Committed
    );
    // Staged under e1, never committed: garbage once e1 is fenced.
    let (orphan, _) = shard(&pipeline, e1, &analytics, 1);
    storage.write(&orphan.partial.staging, b"x").await.unwrap();
    let e2 = etcd.bump_epoch(0, "new").await.unwrap();
    // Staged by the current owner: it may still commit it.
    let (current, _) = shard(&pipeline, e2, &analytics, 1);
    storage.write(&current.partial.staging, b"x").await.unwrap();
    let foreign = format!("{}/not-a-shard-file", partition_staging_dir(&pipeline, 0));
    storage.write(&foreign, b"x").await.unwrap();

    let mut seen = BTreeMap::new();
    // Too young: remembered, kept.
    let n = sweep_staging(
        &mut etcd,
        storage.as_ref(),
        &pipeline,
        &mut seen,
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        vec![&orphan.partial.staging]
    );
    // Old enough: only the orphan goes.
    let n = sweep_staging(
        &mut etcd,
        storage.as_ref(),
        &pipeline,
        &mut seen,
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    assert!(!storage.exists(&orphan.partial.staging).await.unwrap());
    for kept in [&committed.partial.staging, &current.partial.staging] {
        assert!(storage.exists(kept).await.unwrap(), "{kept} was deleted");
    }
    assert!(storage.exists(&foreign).await.unwrap());
}
