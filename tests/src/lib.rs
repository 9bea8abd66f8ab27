//! Shared fixtures of Sawmill's cross-crate tests (`tests/tests/*.rs`).
//!
//! Tests that need the real services are marked
//! `#[cfg_attr(not(feature = "services"), ignore = ...)]`: without the `services` feature they
//! show as ignored, never as passed; with it (`scripts/test.sh`) they read the addresses from
//! `SAWMILL_KAFKA`, `SAWMILL_HDFS` and `SAWMILL_ETCD` (`eval "$(deploy/local/services env)"`)
//! and fail when one is missing.
//!
//! [`cluster`] holds the fixtures of whole-cluster tests (coordinator and worker processes,
//! the status document, end-to-end checks); [`checker`] those of `sawmill verify` and the
//! chaos tests (tagged input, a private services instance, memory samples); [`faults`] those of
//! the fault tests that drive a worker in-process or slow a dependency down; [`scenario`] the
//! coordinator-and-two-workers run the process and service fault tests share; [`secure`] those
//! of the tests against the secure services profile.

// Fixtures panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

pub mod checker;
pub mod cluster;
pub mod faults;
pub mod scenario;
pub mod secure;

use arrow::array::{Array, Int32Array, Int64Array};
use arrow::record_batch::RecordBatch;
use sawmill_common::storage::Storage;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Addresses of the real services.
#[derive(Debug, Clone)]
pub struct Services {
    pub kafka: String,
    pub hdfs: String,
    pub etcd: String,
}

/// One service's address from the environment variable `var` (set by
/// `eval "$(deploy/local/services env)"`). Only tests marked as needing the services call it;
/// they run with the `services` feature, and then a missing service fails the test.
pub fn service(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => panic!(
            "{var} is not set: start the services (deploy/local/services up) and eval \"$(deploy/local/services env)\", or run scripts/test.sh"
        ),
    }
}

/// The addresses of all three services.
pub fn services() -> Services {
    Services {
        kafka: service("SAWMILL_KAFKA"),
        hdfs: service("SAWMILL_HDFS"),
        etcd: service("SAWMILL_ETCD"),
    }
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared real logs, or `None` (after saying so) when the folder is absent.
pub fn real_logs(test: &str) -> Option<Vec<PathBuf>> {
    let dir = workspace().join("../shared/data/access-logs");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        eprintln!("{test}: skipped: {} is absent", dir.display());
        return None;
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    Some(files)
}

/// A binary of the workspace (built by `cargo test --workspace` next to the test executables).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// A name unique to this test run (topics, HDFS roots, etcd pipelines).
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// A child process killed (SIGKILL) when dropped, so a failing test leaves nothing running.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn spawn(cmd: &mut Command) -> Self {
        ChildGuard(Some(
            cmd.stdin(Stdio::null())
                .spawn()
                .expect("spawn child process"),
        ))
    }

    pub fn kill9(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.0 = None;
    }

    /// Waits for exit (bounded) and returns whether it succeeded.
    pub fn wait_ok(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while let Some(c) = self.0.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                self.0 = None;
                return status.success();
            }
            if start.elapsed() > timeout {
                self.kill9();
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    pub fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(|c| c.id())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Produces a file into a topic with the `sawmill` binary; returns the lines sent.
pub fn produce(s: &Services, topic: &str, file: &Path, partitions: u32, reset: bool) -> u64 {
    let mut cmd = Command::new(bin("sawmill"));
    cmd.args([
        "produce",
        "--bootstrap-servers",
        &s.kafka,
        "--topic",
        topic,
        "--partitions",
        &partitions.to_string(),
        "-q",
        "--file",
    ])
    .arg(file);
    if reset {
        cmd.arg("--reset");
    }
    let out = cmd.output().expect("run sawmill produce");
    assert!(
        out.status.success(),
        "sawmill produce failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    sawmill_core::batch::count_lines(&std::fs::read(file).expect("read produced file"))
}

/// Every `(partition, offset)` in the Parquet files under `dir` (records/ or rejects/).
pub async fn positions(storage: &dyn Storage, dir: &str) -> Vec<(i32, i64)> {
    let mut out = Vec::new();
    for path in storage.list(dir).await.expect("list output") {
        if !path.ends_with(".parquet") {
            continue;
        }
        let (batches, _) = sawmill_common::storage::read_parquet(storage, &path)
            .await
            .expect("read parquet");
        for b in batches {
            let p = b.column_by_name("partition").expect("partition column");
            let o = b.column_by_name("offset").expect("offset column");
            let p = p
                .as_any()
                .downcast_ref::<Int32Array>()
                .expect("int32 partition");
            let o = o
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("int64 offset");
            for i in 0..b.num_rows() {
                assert!(!p.is_null(i) && !o.is_null(i));
                out.push((p.value(i), o.value(i)));
            }
        }
    }
    out
}

/// Asserts every `(partition, offset)` in `0..end[p]` is present exactly once.
pub fn assert_exactly_once(mut seen: Vec<(i32, i64)>, end: &BTreeMap<i32, i64>) {
    seen.sort_unstable();
    let total: i64 = end.values().sum();
    let mut dups = seen.clone();
    dups.dedup();
    assert_eq!(
        dups.len(),
        seen.len(),
        "{} duplicated rows",
        seen.len() - dups.len()
    );
    assert_eq!(
        seen.len() as i64,
        total,
        "rows {} != offsets {}",
        seen.len(),
        total
    );
    let mut it = seen.iter();
    for (&p, &e) in end {
        for o in 0..e {
            assert_eq!(it.next(), Some(&(p, o)), "missing partition {p} offset {o}");
        }
    }
}

/// Summary tables that do not depend on where lines were read (file lines vs Kafka offsets):
/// everything but the positional columns of `table_404` and the choice of reject examples.
pub fn comparable_tables(p: &sawmill_core::analytics::Partial) -> BTreeMap<String, Vec<String>> {
    let tables: BTreeMap<String, RecordBatch> = p
        .tables()
        .into_iter()
        .map(|(n, b)| (n.to_string(), b))
        .collect();
    comparable_batches(&tables)
}

/// Like [`comparable_tables`], for summary tables read back from storage.
pub fn comparable_batches(tables: &BTreeMap<String, RecordBatch>) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (name, batch) in tables {
        if name == "reject_examples" {
            continue;
        }
        let keep: Vec<usize> = (0..batch.num_columns())
            .filter(|&i| {
                !(name == "table_404"
                    && matches!(
                        batch.schema().field(i).name().as_str(),
                        "partition" | "offset"
                    ))
            })
            .collect();
        let b = batch.project(&keep).expect("project");
        let mut rows: Vec<String> = (0..b.num_rows())
            .map(|r| {
                b.columns()
                    .iter()
                    .map(|c| arrow::util::display::array_value_to_string(c, r).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        if name == "table_404" {
            rows.sort();
        }
        out.insert(name.clone(), rows);
    }
    out
}

/// End offsets (high watermarks) of every partition of a topic.
pub fn end_offsets(s: &Services, topic: &str) -> BTreeMap<i32, i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &s.kafka)
        .set("group.id", "sawmill-test")
        .create()
        .expect("kafka client");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    let parts: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
    parts
        .into_iter()
        .map(|p| {
            (
                p,
                c.fetch_watermarks(topic, p, Duration::from_secs(10))
                    .expect("watermarks")
                    .1,
            )
        })
        .collect()
}

/// `sawmill run` over the same files, in-process, as the reference. On a plain thread with a
/// runtime of its own, as the run's threading rule asks, so async tests may call it too.
pub fn reference(files: &[PathBuf]) -> sawmill_core::analytics::Partial {
    use sawmill_common::embedded::input::InputSpec;
    use sawmill_common::embedded::pipeline::{self, Progress, RunConfig};
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs: Vec<InputSpec> = files
        .iter()
        .enumerate()
        .map(|(i, f)| InputSpec::new(f, i as i32))
        .collect();
    let out: Arc<dyn Storage> =
        Arc::new(sawmill_common::storage::LocalFs::create(dir.path()).expect("local output"));
    std::thread::scope(|s| {
        s.spawn(|| {
            let io = tokio::runtime::Runtime::new().expect("runtime");
            pipeline::run(
                &inputs,
                out,
                io.handle(),
                &RunConfig::default(),
                &Progress::default(),
            )
            .expect("sawmill run")
            .partial
        })
        .join()
        .expect("sawmill run panicked")
    })
}

/// Removes a test's output root and etcd keys when the test ends, pass or fail.
pub struct Cleanup {
    pub storage: Arc<dyn Storage>,
    pub etcd: String,
    pub topic: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (etcd, topic, root) = (self.etcd.clone(), self.topic.clone(), self.storage.root());
        // A plain thread with a runtime of its own: the test's runtime may be the one this
        // drop blocks, and the storage reopened here lives on the new one.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Runtime::new() else {
                return;
            };
            rt.block_on(async {
                if let Ok(storage) = sawmill_common::storage::open(&root).await {
                    for p in storage.list("").await.unwrap_or_default() {
                        let _ = storage.delete(&p).await;
                    }
                }
                if let Ok(mut cp) = sawmill_common::etcd::Checkpoints::connect(&etcd, &topic).await
                {
                    let _ = cp.delete_all().await;
                }
            });
        })
        .join();
    }
}

/// A plain HTTP/1.1 GET on loopback: `(status code, body)`.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read response");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (code, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n.min(rest.len())]);
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}
