//! The HDFS storage backend against a real HDFS.
//!
//! The tests that need a NameNode run with the `services` feature (`scripts/test.sh`) and read
//! it from `SAWMILL_HDFS`; the tests for bad URLs and a dead NameNode need no HDFS and always
//! run.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use parquet::file::metadata::KeyValue;
use sawmill_common::storage::{self, write_atomic, Storage};
use sawmill_core::layout::STAGING_DIR;
use sawmill_core::shard::{self, ParquetOptions};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The NameNode URL from `SAWMILL_HDFS`.
fn namenode() -> String {
    sawmill_tests::service("SAWMILL_HDFS")
        .trim_end_matches('/')
        .to_string()
}

/// A storage rooted at a fresh `/sawmill-test/<pid>-<nanos>-<test>` directory, removed with
/// everything in it when the fixture drops, pass or fail.
struct Fixture {
    namenode: String,
    base: String,
    storage: Arc<dyn Storage>,
}

impl Fixture {
    async fn new(test: &str) -> Fixture {
        let namenode = namenode();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let base = format!("/sawmill-test/{}-{nanos}-{test}", std::process::id());
        let storage = storage::open(&format!("{namenode}{base}"))
            .await
            .expect("open HDFS storage");
        Fixture {
            namenode,
            base,
            storage,
        }
    }

    /// Full URL of a root-relative path, for clients that are not ours.
    fn url(&self, path: &str) -> String {
        format!("{}{}/{path}", self.namenode, self.base)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Storage only deletes single files, so remove the tree with the raw client. On a
        // thread of its own: the fixture drops inside the test's runtime, which must not block.
        let (namenode, base) = (self.namenode.clone(), self.base.clone());
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let client = hdfs_native::ClientBuilder::new()
                    .with_url(namenode.as_str())
                    .build()?;
                client.delete(&base, true).await
            })
        });
        if let Err(e) = cleanup.join().unwrap() {
            eprintln!(
                "warning: could not delete test directory {}: {e}",
                self.base
            );
        }
    }
}

/// Runs `deploy/local/services hdfs-dfs ARGS...` (Hadoop's own FsShell) and returns stdout.
fn hadoop_fs(args: &[&str]) -> Vec<u8> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/services");
    let out = Command::new(script)
        .arg("hdfs-dfs")
        .args(args)
        .output()
        .expect("run deploy/local/services");
    assert!(
        out.status.success(),
        "hdfs-dfs {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test]
async fn file_operations() {
    let fx = Fixture::new("file_operations").await;
    let s = &fx.storage;
    assert_eq!(s.root(), format!("{}{}", fx.namenode, fx.base));

    assert!(!s.exists("a/b/one.txt").await.unwrap());
    s.write("a/b/one.txt", b"first").await.unwrap();
    assert!(s.exists("a/b/one.txt").await.unwrap());
    assert!(s.exists("a/b").await.unwrap(), "directories exist too");
    assert_eq!(s.read("a/b/one.txt").await.unwrap(), b"first");
    // write replaces, like LocalFs.
    s.write("a/b/one.txt", b"second, longer").await.unwrap();
    assert_eq!(s.read("a/b/one.txt").await.unwrap(), b"second, longer");
    s.write("a/two.txt", b"").await.unwrap();
    assert_eq!(s.read("a/two.txt").await.unwrap(), b"");
    s.write("z.txt", b"z").await.unwrap();

    // Recursive, files only, root-relative, sorted; a missing directory is empty.
    assert_eq!(
        s.list("").await.unwrap(),
        ["a/b/one.txt", "a/two.txt", "z.txt"]
    );
    assert_eq!(s.list("a").await.unwrap(), ["a/b/one.txt", "a/two.txt"]);
    assert_eq!(s.list("a/b/").await.unwrap(), ["a/b/one.txt"]);
    assert!(s.list("missing/dir").await.unwrap().is_empty());

    // Rename creates the destination's parent and refuses to clobber.
    s.rename("a/two.txt", "c/d/two.txt").await.unwrap();
    assert!(!s.exists("a/two.txt").await.unwrap());
    assert_eq!(s.read("c/d/two.txt").await.unwrap(), b"");
    let err = s
        .rename("z.txt", "a/b/one.txt")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("destination exists"), "{err}");
    assert_eq!(
        s.read("a/b/one.txt").await.unwrap(),
        b"second, longer",
        "destination untouched"
    );
    assert_eq!(s.read("z.txt").await.unwrap(), b"z", "source untouched");
    let err = s.rename("nope.txt", "x.txt").await.unwrap_err().to_string();
    assert!(err.contains("no such file"), "{err}");

    s.delete("z.txt").await.unwrap();
    assert!(!s.exists("z.txt").await.unwrap());
    s.delete("z.txt").await.unwrap(); // missing is fine
    let err = s.read("z.txt").await.unwrap_err().to_string();
    assert!(
        err.contains("no such file") && err.contains(&fx.url("z.txt")),
        "{err}"
    );
    // Non-recursive: a directory with files in it is not wiped.
    assert!(s.delete("a").await.is_err());
    assert!(s.exists("a/b/one.txt").await.unwrap());
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test]
async fn write_atomic_publishes_once() {
    let fx = Fixture::new("write_atomic_publishes_once").await;
    let s = fx.storage.as_ref();
    assert!(write_atomic(s, "records/dt=1995-07-01/x.parquet", b"one")
        .await
        .unwrap());
    // A retry of the same shard neither duplicates nor clobbers it.
    assert!(!write_atomic(s, "records/dt=1995-07-01/x.parquet", b"two")
        .await
        .unwrap());
    assert_eq!(
        s.read("records/dt=1995-07-01/x.parquet").await.unwrap(),
        b"one"
    );
    assert_eq!(
        s.list("records").await.unwrap(),
        ["records/dt=1995-07-01/x.parquet"]
    );
    assert!(
        s.list(STAGING_DIR).await.unwrap().is_empty(),
        "staged copies are cleaned up"
    );
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test]
async fn parquet_round_trip_readable_by_hadoop() {
    let fx = Fixture::new("parquet_round_trip").await;
    let s = fx.storage.as_ref();
    let batch = RecordBatch::try_from_iter([
        (
            "host",
            Arc::new(StringArray::from(vec![
                "a.example",
                "b.example",
                "c.example",
            ])) as ArrayRef,
        ),
        (
            "bytes",
            Arc::new(Int64Array::from(vec![100, 0, 7_000_000])) as ArrayRef,
        ),
    ])
    .unwrap();
    let kv = vec![KeyValue::new("sawmill.kind".into(), "records".to_string())];
    let bytes = shard::encode(&[&batch], kv, &ParquetOptions::default()).unwrap();
    let path = "records/dt=1995-07-01/test-p00000-0-2.parquet";
    assert!(write_atomic(s, path, &bytes).await.unwrap());

    let (batches, kv) = storage::read_parquet(s, path).await.unwrap();
    assert_eq!(batches, vec![batch]);
    assert!(
        kv.contains(&("sawmill.kind".to_string(), "records".to_string())),
        "{kv:?}"
    );

    // A client that is not ours sees the same file: Hadoop's FsShell.
    let url = fx.url(path);
    let listing = String::from_utf8(hadoop_fs(&["-ls", &url])).unwrap();
    let line = listing
        .lines()
        .find(|l| l.ends_with(path))
        .unwrap_or_else(|| panic!("{path} not in:\n{listing}"));
    // -rw-r--r--   1 user supergroup   1234 2025-01-01 00:00 hdfs://.../path
    let size: usize = line
        .split_whitespace()
        .nth(4)
        .and_then(|f| f.parse().ok())
        .expect("size column");
    assert_eq!(size, bytes.len(), "{line}");
    assert_eq!(
        hadoop_fs(&["-cat", &url]),
        bytes,
        "hdfs dfs -cat returns the same bytes"
    );
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[test]
fn works_from_tasks_and_plain_threads() {
    let namenode = namenode();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fx = rt.block_on(Fixture::new("works_from_tasks_and_plain_threads"));
    // The worker calls storage from tasks on any of its runtime's threads.
    let storage = fx.storage.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            storage.write("x.bin", &[7; 100_000]).await.unwrap();
            assert_eq!(storage.read("x.bin").await.unwrap(), vec![7; 100_000]);
        })
        .await
    })
    .unwrap();
    // `sawmill run`'s parser threads are plain threads blocking on the runtime's handle.
    let (storage, io) = (fx.storage.clone(), rt.handle().clone());
    std::thread::spawn(move || {
        assert_eq!(
            io.block_on(storage.read("x.bin")).unwrap().len(),
            100_000,
            "from a plain thread"
        );
    })
    .join()
    .unwrap();
    // Dropping a storage inside an async task must not panic.
    let storage = fx.storage.clone();
    rt.block_on(async move { drop(storage) });
    drop(rt);
    // hdfs-native caches DataNode connections process-wide for 3 s: a new storage on a new
    // runtime reading right after the old runtime is gone must still work.
    for i in 0..3 {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let s = storage::open(&format!("{namenode}{}", fx.base))
                .await
                .unwrap();
            assert_eq!(s.read("x.bin").await.unwrap().len(), 100_000, "round {i}");
        });
    }
}

#[tokio::test]
async fn unreachable_namenode_fails_fast_and_clearly() {
    // Needs no HDFS: nothing listens on port 1.
    let start = Instant::now();
    let err = storage::open("hdfs://127.0.0.1:1/sawmill/out")
        .await
        .unwrap_err()
        .to_string();
    let elapsed = start.elapsed();
    eprintln!("dead NameNode: error after {elapsed:.1?}: {err}");
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    assert!(
        err.contains("cannot reach HDFS NameNode at hdfs://127.0.0.1:1"),
        "{err}"
    );
    assert!(err.contains("is HDFS running? check the URL"), "{err}");
}

#[tokio::test]
async fn bad_urls_are_config_errors() {
    for (url, want) in [
        ("hdfs://namenode/out", "has no port"),
        ("hdfs://namenode:notaport/out", "not a number"),
        ("hdfs://namenode:70000/out", "not a number"),
        ("viewfs://cluster/out", "not supported"),
    ] {
        let start = Instant::now();
        let err = storage::open(url).await.unwrap_err().to_string();
        assert!(
            err.starts_with("invalid configuration") && err.contains(want),
            "{url}: {err}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{url}: no network before the URL is checked"
        );
    }
}
