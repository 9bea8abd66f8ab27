//! The HDFS storage backend against a real HDFS.
//!
//! Runs when `SAWMILL_HDFS=hdfs://host:port` is set (`eval "$(deploy/local/services env)"`);
//! otherwise the tests that need a NameNode print "skipped" and pass. The tests for bad URLs
//! and a dead NameNode need no HDFS and always run.

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

/// The NameNode URL from `SAWMILL_HDFS`, or `None` (after saying so) to skip the test.
fn namenode(test: &str) -> Option<String> {
    match std::env::var("SAWMILL_HDFS") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_string()),
        _ => {
            eprintln!(
                "{test}: skipped: set SAWMILL_HDFS=hdfs://host:port to run the HDFS storage tests"
            );
            None
        }
    }
}

/// A storage rooted at a fresh `/sawmill-test/<pid>-<nanos>-<test>` directory, removed with
/// everything in it when the fixture drops, pass or fail.
struct Fixture {
    namenode: String,
    base: String,
    storage: Arc<dyn Storage>,
}

impl Fixture {
    fn new(test: &str) -> Option<Fixture> {
        let namenode = namenode(test)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let base = format!("/sawmill-test/{}-{nanos}-{test}", std::process::id());
        let storage = storage::open(&format!("{namenode}{base}")).expect("open HDFS storage");
        Some(Fixture {
            namenode,
            base,
            storage,
        })
    }

    /// Full URL of a root-relative path, for clients that are not ours.
    fn url(&self, path: &str) -> String {
        format!("{}{}/{path}", self.namenode, self.base)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Storage only deletes single files, so remove the tree with the raw client.
        let cleanup = async {
            let client = hdfs_native::ClientBuilder::new()
                .with_url(self.namenode.as_str())
                .build()?;
            client.delete(&self.base, true).await
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        if let Err(e) = rt.block_on(cleanup) {
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

#[test]
fn file_operations() {
    let Some(fx) = Fixture::new("file_operations") else {
        return;
    };
    let s = &fx.storage;
    assert_eq!(s.root(), format!("{}{}", fx.namenode, fx.base));

    assert!(!s.exists("a/b/one.txt").unwrap());
    s.write("a/b/one.txt", b"first").unwrap();
    assert!(s.exists("a/b/one.txt").unwrap());
    assert!(s.exists("a/b").unwrap(), "directories exist too");
    assert_eq!(s.read("a/b/one.txt").unwrap(), b"first");
    // write replaces, like LocalFs.
    s.write("a/b/one.txt", b"second, longer").unwrap();
    assert_eq!(s.read("a/b/one.txt").unwrap(), b"second, longer");
    s.write("a/two.txt", b"").unwrap();
    assert_eq!(s.read("a/two.txt").unwrap(), b"");
    s.write("z.txt", b"z").unwrap();

    // Recursive, files only, root-relative, sorted; a missing directory is empty.
    assert_eq!(s.list("").unwrap(), ["a/b/one.txt", "a/two.txt", "z.txt"]);
    assert_eq!(s.list("a").unwrap(), ["a/b/one.txt", "a/two.txt"]);
    assert_eq!(s.list("a/b/").unwrap(), ["a/b/one.txt"]);
    assert!(s.list("missing/dir").unwrap().is_empty());

    // Rename creates the destination's parent and refuses to clobber.
    s.rename("a/two.txt", "c/d/two.txt").unwrap();
    assert!(!s.exists("a/two.txt").unwrap());
    assert_eq!(s.read("c/d/two.txt").unwrap(), b"");
    let err = s.rename("z.txt", "a/b/one.txt").unwrap_err().to_string();
    assert!(err.contains("destination exists"), "{err}");
    assert_eq!(
        s.read("a/b/one.txt").unwrap(),
        b"second, longer",
        "destination untouched"
    );
    assert_eq!(s.read("z.txt").unwrap(), b"z", "source untouched");
    let err = s.rename("nope.txt", "x.txt").unwrap_err().to_string();
    assert!(err.contains("no such file"), "{err}");

    s.delete("z.txt").unwrap();
    assert!(!s.exists("z.txt").unwrap());
    s.delete("z.txt").unwrap(); // missing is fine
    let err = s.read("z.txt").unwrap_err().to_string();
    assert!(
        err.contains("no such file") && err.contains(&fx.url("z.txt")),
        "{err}"
    );
    // Non-recursive: a directory with files in it is not wiped.
    assert!(s.delete("a").is_err());
    assert!(s.exists("a/b/one.txt").unwrap());
}

#[test]
fn write_atomic_publishes_once() {
    let Some(fx) = Fixture::new("write_atomic_publishes_once") else {
        return;
    };
    let s = fx.storage.as_ref();
    assert!(write_atomic(s, "records/dt=1995-07-01/x.parquet", b"one").unwrap());
    // A retry of the same shard neither duplicates nor clobbers it.
    assert!(!write_atomic(s, "records/dt=1995-07-01/x.parquet", b"two").unwrap());
    assert_eq!(s.read("records/dt=1995-07-01/x.parquet").unwrap(), b"one");
    assert_eq!(
        s.list("records").unwrap(),
        ["records/dt=1995-07-01/x.parquet"]
    );
    assert!(
        s.list(STAGING_DIR).unwrap().is_empty(),
        "staged copies are cleaned up"
    );
}

#[test]
fn parquet_round_trip_readable_by_hadoop() {
    let Some(fx) = Fixture::new("parquet_round_trip") else {
        return;
    };
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
    assert!(write_atomic(s, path, &bytes).unwrap());

    let (batches, kv) = storage::read_parquet(s, path).unwrap();
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

#[test]
fn works_from_another_runtime() {
    let Some(namenode) = namenode("works_from_another_runtime") else {
        return;
    };
    let fx = Fixture::new("works_from_another_runtime").unwrap();
    let root = format!("{namenode}{}", fx.base);
    // The worker calls storage from spawn_blocking threads of its own runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let storage = rt
        .block_on(async move {
            tokio::task::spawn_blocking(move || {
                let s = storage::open(&root).unwrap();
                s.write("x.bin", &[7; 100_000]).unwrap();
                assert_eq!(s.read("x.bin").unwrap(), vec![7; 100_000]);
                s
            })
            .await
        })
        .unwrap();
    // Dropping it inside an async task must not panic (it owns a runtime).
    rt.block_on(async move { drop(storage) });
    // hdfs-native caches DataNode connections process-wide for 3 s: a new storage reading
    // right after the old one (and its runtime) is gone must still work.
    for i in 0..3 {
        let s = storage::open(&format!("{namenode}{}", fx.base)).unwrap();
        assert_eq!(s.read("x.bin").unwrap().len(), 100_000, "round {i}");
    }
}

#[test]
fn unreachable_namenode_fails_fast_and_clearly() {
    // Needs no HDFS: nothing listens on port 1.
    let start = Instant::now();
    let err = storage::open("hdfs://127.0.0.1:1/sawmill/out")
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

#[test]
fn bad_urls_are_config_errors() {
    for (url, want) in [
        ("hdfs://namenode/out", "has no port"),
        ("hdfs://namenode:notaport/out", "not a number"),
        ("hdfs://namenode:70000/out", "not a number"),
        ("viewfs://cluster/out", "not supported"),
    ] {
        let start = Instant::now();
        let err = storage::open(url).unwrap_err().to_string();
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
