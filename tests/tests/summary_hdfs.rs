//! Summary tables on a real HDFS: replaced without ever going missing for `summary::read`, and a
//! failed write leaves no temporary file behind.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use sawmill_common::storage::{self, Storage};
use sawmill_common::summary;
use sawmill_common::Result;
use sawmill_core::analytics::{Partial, TABLE_NAMES};
use sawmill_core::layout::{STAGING_DIR, SUMMARY_DIR};
use sawmill_core::parse::parse_line;
use sawmill_core::record::Position;
use sawmill_core::shard::ParquetOptions;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A partial whose every summary table has rows (an absent table would read as missing).
fn partial(n: i64) -> Partial {
    let mut p = Partial::new(&Default::default());
    for i in 0..=n {
        let pos = Position {
            partition: 0,
            offset: i,
        };
        let l = format!(r#"h{i} - - [01/Jul/1995:00:00:01 -0400] "GET /{i} HTTP/1.0" 404 7"#);
        p.observe(&parse_line(l.as_bytes()).unwrap(), pos);
        p.observe_reject(
            sawmill_core::record::RejectReason::ALL[0],
            b"garbage",
            Position {
                partition: 1,
                offset: i,
            },
        );
    }
    p
}

async fn root(test: &str) -> Arc<dyn Storage> {
    let nn = sawmill_tests::service("SAWMILL_HDFS");
    let url = format!(
        "{}/sawmill-it/{}",
        nn.trim_end_matches('/'),
        sawmill_tests::unique(test)
    );
    storage::open(&url).await.unwrap()
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_being_replaced_are_never_missing_to_readers() {
    let fs = root("summary-swap").await;
    let opts = ParquetOptions::default();
    summary::write(fs.as_ref(), summary::encode(&partial(0), &opts).unwrap())
        .await
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (fs, done) = (fs.clone(), done.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            while !done.load(Ordering::SeqCst) {
                let tables = summary::read(fs.as_ref()).await.unwrap();
                let missing: Vec<_> = TABLE_NAMES
                    .iter()
                    .filter(|n| !tables.contains_key(**n))
                    .collect();
                assert!(missing.is_empty(), "read {reads}: missing {missing:?}");
                reads += 1;
            }
            reads
        })
    };
    for round in 1..=8 {
        let tables = summary::encode(&partial(round), &opts).unwrap();
        summary::write(fs.as_ref(), tables).await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let reads = reader.await.unwrap();
    assert!(reads > 0);
    let last = summary::read(fs.as_ref()).await.unwrap();
    assert_eq!(last["totals"], partial(8).tables()[14].1);
    let left: Vec<String> = fs.list(SUMMARY_DIR).await.unwrap();
    assert_eq!(
        left.len(),
        TABLE_NAMES.len(),
        "no aside copies left: {left:?}"
    );
}

/// HDFS as it fails a write: the file is created, then the data never arrives.
#[derive(Debug)]
struct FailingWrites(Arc<dyn Storage>);

#[async_trait]
impl Storage for FailingWrites {
    fn root(&self) -> String {
        self.0.root()
    }
    async fn write(&self, path: &str, _data: &[u8]) -> Result<()> {
        self.0.write(path, b"").await?;
        Err(sawmill_common::Error::Storage {
            path: path.into(),
            message: "injected: could only be written to 0 of the 1 minReplication nodes".into(),
        })
    }
    async fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.0.read(path).await
    }
    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.0.rename(from, to).await
    }
    async fn list(&self, dir: &str) -> Result<Vec<String>> {
        self.0.list(dir).await
    }
    async fn delete(&self, path: &str) -> Result<()> {
        self.0.delete(path).await
    }
    async fn exists(&self, path: &str) -> Result<bool> {
        self.0.exists(path).await
    }
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test]
async fn a_failed_summary_write_leaves_no_empty_temporary_file() {
    let fs = root("summary-fail").await;
    let opts = ParquetOptions::default();
    let mut writer = summary::SummaryWriter::default();
    let first = summary::encode_changed(&partial(0), &opts, &writer.written()).unwrap();
    writer.write(fs.as_ref(), first).await.unwrap();
    let before = summary::read(fs.as_ref()).await.unwrap();

    let failing = FailingWrites(fs.clone());
    let next = summary::encode_changed(&partial(1), &opts, &writer.written()).unwrap();
    let err = writer.write(&failing, next).await.unwrap_err().to_string();
    assert!(err.contains("injected"), "{err}");
    assert_eq!(fs.list(STAGING_DIR).await.unwrap(), Vec::<String>::new());
    assert_eq!(summary::read(fs.as_ref()).await.unwrap(), before);
    // The table that failed is written by the next attempt.
    let again = summary::encode_changed(&partial(1), &opts, &writer.written()).unwrap();
    assert!(!again.is_empty());
    writer.write(fs.as_ref(), again).await.unwrap();
    assert_eq!(
        summary::read(fs.as_ref()).await.unwrap()["totals"],
        partial(1).tables()[14].1
    );
}
