//! Fixtures of the fault tests of issue #12's faults 7–11 (`chaos_failpoints`, `chaos_torn_state`,
//! `chaos_disk_full`, `chaos_slow_dependency`, `chaos_scale`): a worker driven in-process
//! (`worker run`'s library function, so a test can arm fail points and read its metrics), the
//! end-to-end check (`sawmill summarize` + `sawmill verify`), the files of a local output root,
//! and a delaying TCP proxy for slow dependencies.

use crate::checker::sawmill_verify;
use crate::*;
use sawmill_core::settings::PipelineSettings;
use sawmill_worker::standalone::{self, StandaloneOptions, StandaloneReport};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Pipeline settings for a test: small shards cut often, so a few thousand lines make several
/// commits per partition, and a short commit deadline, so a failing partition gives up quickly.
pub fn pipeline_settings(s: &Services, topic: &str, root: &str) -> PipelineSettings {
    PipelineSettings {
        bootstrap_servers: s.kafka.clone(),
        topic: topic.to_string(),
        output: root.to_string(),
        etcd: s.etcd.clone(),
        shard_max_rows: 2000,
        shard_max_age_ms: 500,
        shard_idle_ms: 200,
        commit_deadline_ms: 5000,
        ..PipelineSettings::default()
    }
}

/// Runs a worker in-process (`worker run --until-caught-up` as a library call) owning every
/// partition, serving its metrics at `metrics` if given; fails the test after `timeout`.
pub async fn run_worker(
    settings: PipelineSettings,
    id: &str,
    metrics: Option<String>,
    timeout: Duration,
) -> StandaloneReport {
    let opts = StandaloneOptions {
        worker_id: id.to_string(),
        partitions: Vec::new(),
        until_caught_up: true,
        metrics_listen: metrics,
    };
    tokio::time::timeout(timeout, standalone::run(settings, opts))
        .await
        .unwrap_or_else(|_| panic!("the worker did not catch up within {timeout:?}"))
        .expect("worker run")
}

/// `sawmill summarize` (the summary tables a coordinator would write) of a pipeline.
pub fn summarize(s: &Services, topic: &str, root: &str) {
    let out = Command::new(bin("sawmill"))
        .args(["summarize", "-q", "--etcd", &s.etcd, "--topic", topic])
        .args(["--output", root])
        .env("SAWMILL_LOG", "warn")
        .output()
        .expect("run sawmill summarize");
    assert!(
        out.status.success(),
        "sawmill summarize failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `sawmill verify` must pass (0 lost, 0 duplicated, summary exact, etcd at the end) and the
/// producer's `keys` sequences must have no gaps or duplicates; returns the report.
pub fn assert_verified(s: &Services, topic: &str, root: &str, keys: usize, what: &str) -> Value {
    let (ok, report) = sawmill_verify(s, topic, topic, root);
    assert!(ok, "{what}: verify failed: {report:#}");
    let seqs = report["sequences"].as_array().expect("sequences");
    assert_eq!(seqs.len(), keys, "{what}: sequence keys");
    assert!(
        seqs.iter().all(|q| q["gaps"] == 0 && q["duplicated"] == 0),
        "{what}: the producer lost or repeated lines: {seqs:?}"
    );
    report
}

/// Every file under `dir` (recursively), as paths relative to `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A free loopback port (bound and released: good enough on a test machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The `/metrics` page served at `addr`, or `None` while nothing answers there.
pub fn metrics_page(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// One Prometheus sample (`name{labels} value`) of a `/metrics` page, or 0 when absent.
pub fn metric(page: &str, name: &str, label: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A TCP proxy on loopback that forwards to `upstream` and delays every chunk it forwards (both
/// directions) by the current delay, changeable at run time: a slow network or a slow
/// dependency without touching it. Stops when dropped.
pub struct SlowProxy {
    pub addr: String,
    delay_ms: std::sync::Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl SlowProxy {
    /// Listens on a free loopback port; must be called inside a tokio runtime.
    pub async fn start(upstream: &str) -> SlowProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let delay_ms = std::sync::Arc::new(AtomicU64::new(0));
        let (upstream, delay) = (upstream.to_string(), delay_ms.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, delay) = (upstream.clone(), delay.clone());
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pipe(cr, sw, delay.clone()), pipe(sr, cw, delay));
                });
            }
        });
        SlowProxy {
            addr,
            delay_ms,
            task,
        }
    }

    /// Every chunk forwarded from now on waits `ms` first.
    pub fn set_delay(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::Relaxed);
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, each chunk after the current delay; the order of bytes is kept (one
/// chunk at a time), so the delay adds latency and caps throughput, like a slow link.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: std::sync::Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let ms = delay.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
