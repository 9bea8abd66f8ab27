//! Fixtures for tests of a whole cluster: `coordinator serve` and `worker join` processes,
//! the status document, and the end-to-end checks.

use crate::*;
use sawmill_common::etcd::Checkpoints;
use sawmill_common::storage::Storage;
use sawmill_core::analytics::Partial;
use sawmill_proto::v1::coordinator_client::CoordinatorClient;
use sawmill_proto::v1::StatusRequest;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A `coordinator serve` process and the addresses it printed.
pub struct Coordinator {
    pub child: ChildGuard,
    pub grpc: String,
    pub http: String,
}

impl Coordinator {
    /// `coordinator serve` for `topic` into `root`, on `listen` (gRPC) and `http`
    /// (`127.0.0.1:0` for free ports), logging at `warn`; callers add flags and start it with
    /// [`Coordinator::spawn`].
    pub fn command(s: &Services, topic: &str, root: &str, listen: &str, http: &str) -> Command {
        let mut cmd = Command::new(bin("coordinator"));
        cmd.args(["serve", "--listen", listen, "--http", http])
            .args(["--bootstrap-servers", &s.kafka, "--etcd", &s.etcd])
            .args(["--topic", topic, "--output", root])
            .env("SAWMILL_LOG", "warn");
        cmd
    }

    /// Starts `cmd` and waits (up to 60 s) for the line with its addresses on stdout.
    pub fn spawn(cmd: &mut Command) -> Coordinator {
        Self::spawn_all(std::slice::from_mut(cmd))
            .pop()
            .expect("one coordinator")
    }

    /// Starts every command at once (all processes first), then waits for each one's addresses:
    /// coordinators that campaign at the same moment.
    pub fn spawn_all(cmds: &mut [Command]) -> Vec<Coordinator> {
        let children: Vec<ChildGuard> = cmds
            .iter_mut()
            .map(|cmd| ChildGuard::spawn(cmd.stdout(Stdio::piped())))
            .collect();
        children.into_iter().map(Self::addresses).collect()
    }

    fn addresses(mut child: ChildGuard) -> Coordinator {
        let stdout = child
            .0
            .as_mut()
            .and_then(|c| c.stdout.take())
            .expect("coordinator stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("coordinator printed no address within 60 s");
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no {k} in {line:?}"))
        };
        Coordinator {
            child,
            grpc: field("grpc="),
            http: field("http="),
        }
    }

    /// SIGTERM, then waits for a clean exit (the final summary is written before it).
    pub fn stop(&mut self) {
        let pid = self.child.pid().expect("running");
        assert!(Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success());
        assert!(
            self.child.wait_ok(Duration::from_secs(60)),
            "coordinator did not exit cleanly on SIGTERM"
        );
    }
}

/// Runs a blocking call (a plain HTTP GET) off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking task panicked")
}

/// A `worker join` process logging at `info` into `logs/<id>.log`.
pub fn worker(grpc: &str, id: &str, logs: &Path) -> ChildGuard {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join(format!("{id}.log")))
        .unwrap();
    ChildGuard::spawn(
        Command::new(bin("worker"))
            .args(["join", "--coordinator", grpc, "--worker-id", id])
            .env("SAWMILL_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log),
    )
}

/// The status document over gRPC (the typed `status`, as the JSON the HTTP API serves), or
/// `None` while the coordinator does not answer.
pub async fn status(grpc: &str) -> Option<Value> {
    let mut c = CoordinatorClient::connect(format!("http://{grpc}"))
        .await
        .ok()?;
    let r = c.status(StatusRequest {}).await.ok()?;
    serde_json::to_value(r.into_inner().status?).ok()
}

/// The coordinator's role in a status document (`leader` or `standby`) and the leader it names.
pub fn role(doc: &Value) -> (String, Option<String>) {
    (
        doc["role"].as_str().unwrap_or("").to_string(),
        doc["leader"].as_str().map(str::to_string),
    )
}

/// partition → (owner, epoch, state) of the status document.
pub fn owners(doc: &Value) -> BTreeMap<i64, (String, u64, String)> {
    doc["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap(),
                (
                    p["owner"].as_str().unwrap_or("").to_string(),
                    p["epoch"].as_u64().unwrap_or(0),
                    p["state"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect()
}

/// (id, generation) of every live worker in the status document.
pub fn alive_workers(doc: &Value) -> Vec<(String, u64)> {
    doc["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["alive"].as_bool() == Some(true))
        .map(|w| {
            (
                w["id"].as_str().unwrap().to_string(),
                w["generation"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Every partition owned by one of `workers`, none releasing, counts balanced.
pub fn balanced(doc: &Value, workers: &[&str], partitions: usize) -> bool {
    let o = owners(doc);
    if o.len() != partitions
        || o.values()
            .any(|(w, _, st)| st != "owned" || !workers.contains(&w.as_str()))
    {
        return false;
    }
    let counts: Vec<usize> = workers
        .iter()
        .map(|w| o.values().filter(|(x, _, _)| x == w).count())
        .collect();
    counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1
}

/// The fewest moves any balanced assignment of `partitions` over `workers` (the live ones)
/// can make from owned counts `owned` (per live worker): what a sticky assignment must reach.
pub fn min_moves(partitions: usize, owned: &[usize]) -> usize {
    let (base, extra) = (partitions / owned.len(), partitions % owned.len());
    let unowned = partitions - owned.iter().sum::<usize>();
    let excess: usize = owned.iter().map(|&o| o.saturating_sub(base)).sum();
    let over = owned.iter().filter(|&&o| o > base).count();
    unowned + excess - extra.min(over)
}

/// Where the processes' logs go: a temporary folder, kept (and named) with SAWMILL_KEEP_LOGS=1.
pub struct Logs {
    _dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Logs {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub fn logs_dir(test: &str) -> Logs {
    let d = tempfile::Builder::new()
        .prefix(&format!("sawmill-{test}-"))
        .tempdir()
        .unwrap();
    if std::env::var("SAWMILL_KEEP_LOGS").is_ok_and(|v| v == "1") {
        let p = d.keep();
        println!("{test}: process logs in {}", p.display());
        return Logs {
            _dir: None,
            path: p,
        };
    }
    let path = d.path().to_path_buf();
    Logs {
        _dir: Some(d),
        path,
    }
}

/// Polls `f` every 200 ms until it gives a value, failing after `timeout`.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until etcd's committed offsets reach `end` and the coordinator has merged `lines`.
pub async fn wait_caught_up(
    grpc: &str,
    end: &BTreeMap<i32, i64>,
    lines: u64,
    timeout: Duration,
) -> Value {
    wait_for("lag 0 and every line merged", timeout, async || {
        let doc = status(grpc).await?;
        let done = end.iter().all(|(p, e)| {
            doc["partitions"].as_array().unwrap().iter().any(|x| {
                x["partition"].as_i64() == Some(*p as i64)
                    && x["committed_offset"].as_i64() == Some(*e)
                    && x["lag"].as_i64() == Some(0)
            })
        });
        let merged = doc["merged"]["records"].as_u64()? + doc["merged"]["rejects"].as_u64()?;
        (done && merged == lines).then_some(doc)
    })
    .await
}

/// Exactly once row by row, and the summary tables on storage equal the reference.
pub async fn verify(
    s: &Services,
    topic: &str,
    out: Arc<dyn Storage>,
    end: &BTreeMap<i32, i64>,
    expected: &Partial,
) {
    let recs = positions(out.as_ref(), "records").await;
    let rejs = positions(out.as_ref(), "rejects").await;
    let summary = sawmill_common::summary::read(out.as_ref()).await.unwrap();
    let mut all = recs.clone();
    all.extend(rejs.iter().copied());
    assert_exactly_once(all, end);
    assert_eq!(expected.records(), recs.len() as u64, "records published");
    assert_eq!(expected.rejects(), rejs.len() as u64, "rejects published");
    let want = comparable_tables(expected);
    let got = comparable_batches(&summary);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "summary tables present"
    );
    for (name, rows) in &want {
        assert_eq!(&got[name], rows, "summary table {name} == sawmill run");
    }
    // etcd agrees with Kafka.
    let mut cp = Checkpoints::connect(&s.etcd, topic).await.unwrap();
    for (p, e) in end {
        assert_eq!(
            cp.state(*p).await.unwrap().next_offset,
            Some(*e),
            "etcd offset of partition {p}"
        );
    }
}
