//! The cluster against the real services: `coordinator serve` and `worker join` processes on
//! loopback, Kafka → workers → Parquet on HDFS → etcd commits → the coordinator's merge.
//!
//! - real logs through one coordinator and three workers land exactly once, and the summary
//!   tables the coordinator writes equal `sawmill run` over the same files;
//! - while the topic is still being produced into: a fourth worker joins (minimal moves), a
//!   worker is killed -9 (its partitions are owned again within the session timeout + 5 s),
//!   the coordinator is killed -9 and restarted (workers rejoin on their own), and the result is
//!   still exact;
//! - stale or unknown generations are refused with clear gRPC errors; a worker of another
//!   version is refused at Join and exits non-zero with the coordinator's message.

use sawmill_common::analytics::Partial;
use sawmill_common::checkpoint::Checkpoints;
use sawmill_common::proto::v1::coordinator_client::CoordinatorClient;
use sawmill_common::proto::v1::{HeartbeatRequest, JoinRequest, StatusRequest};
use sawmill_common::storage::{self, Storage};
use sawmill_tests::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The two end-to-end tests each run a whole cluster: one at a time on two cores.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SESSION_TIMEOUT_MS: u64 = 3000;

/// HDFS storage blocks on its own runtime: never from an async worker thread directly.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking task panicked")
}

/// A `coordinator serve` process and the addresses it printed.
struct Coordinator {
    child: ChildGuard,
    grpc: String,
    http: String,
}

impl Coordinator {
    /// Starts a coordinator on `listen`/`http` (`127.0.0.1:0` for free ports).
    fn start(
        s: &Services,
        topic: &str,
        root: &str,
        listen: &str,
        http: &str,
        logs: &Path,
    ) -> Coordinator {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join("coordinator.log"))
            .unwrap();
        let mut cmd = Command::new(bin("coordinator"));
        cmd.args([
            "serve",
            "--listen",
            listen,
            "--http",
            http,
            "--bootstrap-servers",
            &s.kafka,
            "--etcd",
            &s.etcd,
            "--topic",
            topic,
            "--output",
            root,
        ])
        .args([
            "--shard-max-rows",
            "20000",
            "--shard-max-age-ms",
            "1000",
            "--session-timeout-ms",
            &SESSION_TIMEOUT_MS.to_string(),
        ])
        .args([
            "--heartbeat-interval-ms",
            "500",
            "--summary-interval-ms",
            "1000",
        ])
        .env("SAWMILL_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log);
        let mut child = ChildGuard::spawn(&mut cmd);
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
    fn stop(&mut self) {
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

fn worker(grpc: &str, id: &str, logs: &Path) -> ChildGuard {
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

/// The status document over gRPC, or `None` while the coordinator does not answer.
async fn status(grpc: &str) -> Option<Value> {
    let mut c = CoordinatorClient::connect(format!("http://{grpc}"))
        .await
        .ok()?;
    let r = c.status(StatusRequest {}).await.ok()?;
    serde_json::from_str(&r.into_inner().json).ok()
}

/// partition → (owner, epoch, state) of the status document.
fn owners(doc: &Value) -> BTreeMap<i64, (String, u64, String)> {
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

fn alive_workers(doc: &Value) -> Vec<(String, u64)> {
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
fn balanced(doc: &Value, workers: &[&str], partitions: usize) -> bool {
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
fn min_moves(partitions: usize, owned: &[usize]) -> usize {
    let (base, extra) = (partitions / owned.len(), partitions % owned.len());
    let unowned = partitions - owned.iter().sum::<usize>();
    let excess: usize = owned.iter().map(|&o| o.saturating_sub(base)).sum();
    let over = owned.iter().filter(|&&o| o > base).count();
    unowned + excess - extra.min(over)
}

/// Where the processes' logs go: a temporary folder, kept (and named) with SAWMILL_KEEP_LOGS=1.
struct Logs {
    _dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Logs {
    fn path(&self) -> &Path {
        &self.path
    }
}

fn logs_dir(test: &str) -> Logs {
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

async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
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
async fn wait_caught_up(
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
async fn verify(
    s: &Services,
    topic: &str,
    out: Arc<dyn Storage>,
    end: &BTreeMap<i32, i64>,
    expected: &Partial,
) {
    let o = out.clone();
    let (recs, rejs, summary) = blocking(move || {
        (
            positions(o.as_ref(), "records"),
            positions(o.as_ref(), "rejects"),
            sawmill_common::summary::read(o.as_ref()).unwrap(),
        )
    })
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_process_real_logs_exactly_once() {
    let Some(s) = services("three_workers_process_real_logs_exactly_once") else {
        return;
    };
    let Some(files) = real_logs("three_workers_process_real_logs_exactly_once") else {
        return;
    };
    let _heavy = HEAVY.lock().await;
    let topic = unique("it-cluster");
    let root = format!("{}/sawmill-it/{topic}", s.hdfs);
    let mut lines = 0;
    for (i, f) in files.iter().enumerate() {
        lines += produce(&s, &topic, f, 6, i == 0);
    }
    let end = end_offsets(&s, &topic);
    assert_eq!(end.values().sum::<i64>() as u64, lines);
    let out = blocking({
        let root = root.clone();
        move || storage::open(&root).unwrap()
    })
    .await;
    let _cleanup = Cleanup {
        storage: out.clone(),
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };
    let logs = logs_dir("test");

    let mut coord =
        Coordinator::start(&s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0", logs.path());
    let _workers: Vec<ChildGuard> = (1..=3)
        .map(|i| worker(&coord.grpc, &format!("w{i}"), logs.path()))
        .collect();
    let started = Instant::now();
    let doc = wait_caught_up(&coord.grpc, &end, lines, Duration::from_secs(300)).await;
    println!(
        "{lines} lines of real logs caught up by 3 workers in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        balanced(&doc, &["w1", "w2", "w3"], 6),
        "six partitions over three workers: {doc}"
    );

    // The HTTP API serves the same state.
    let http = coord.http.clone();
    let (code, body) = blocking(move || http_get(&http, "/api/v1/analytics?top=3")).await;
    assert_eq!(code, 200, "{body}");
    let a: Value = serde_json::from_str(&body).unwrap();
    let reference = reference(&files);
    assert_eq!(a["records"].as_u64(), Some(reference.records()));
    assert_eq!(a["views"]["top_hosts"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        a["tables"]["status_count"].as_array().map(Vec::len),
        Some(
            reference
                .tables()
                .iter()
                .find(|(n, _)| *n == "status_count")
                .unwrap()
                .1
                .num_rows()
        )
    );
    let http = coord.http.clone();
    let (code, metrics) = blocking(move || http_get(&http, "/metrics")).await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("sawmill_coordinator_workers_alive 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "sawmill_coordinator_merged_records_total {}",
            reference.records()
        )),
        "{metrics}"
    );
    let http = coord.http.clone();
    assert_eq!(blocking(move || http_get(&http, "/healthz")).await.0, 200);

    // `sawmill status` shows the same cluster.
    let st = Command::new(bin("sawmill"))
        .args(["status", "--coordinator", &coord.grpc])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let text = String::from_utf8_lossy(&st.stdout);
    for w in ["w1", "w2", "w3", "alive", "total lag 0"] {
        assert!(text.contains(w), "{w} missing from sawmill status:\n{text}");
    }

    coord.stop();
    verify(&s, &topic, out, &end, &reference).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_survives_joins_kills_and_a_coordinator_restart() {
    let Some(s) = services("cluster_survives_joins_kills_and_a_coordinator_restart") else {
        return;
    };
    let _heavy = HEAVY.lock().await;
    let topic = unique("it-chaos");
    let root = format!("{}/sawmill-it/{topic}", s.hdfs);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gen.log");
    let g = Command::new(bin("sawmill"))
        .args(["generate", "--lines", "480000", "--seed", "11", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    // Twelve chunks produced one after another while the cluster runs: the stream is live
    // during every event below.
    let text = std::fs::read(&file).unwrap();
    let all_lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    let chunk = all_lines.len().div_ceil(12);
    let mut chunks = Vec::new();
    for (i, c) in all_lines.chunks(chunk).enumerate() {
        let f = dir.path().join(format!("chunk{i}.log"));
        std::fs::write(&f, c.concat()).unwrap();
        chunks.push(f);
    }
    let first = chunks.remove(0);
    let mut lines = produce(&s, &topic, &first, 6, true);
    let out = blocking({
        let root = root.clone();
        move || storage::open(&root).unwrap()
    })
    .await;
    let _cleanup = Cleanup {
        storage: out.clone(),
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };
    let producer = {
        let (s, topic) = (s.clone(), topic.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            for c in chunks {
                std::thread::sleep(Duration::from_millis(1500));
                n += produce(&s, &topic, &c, 6, false);
            }
            n
        })
    };
    let logs = logs_dir("chaos");
    let mut coord =
        Coordinator::start(&s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0", logs.path());
    let grpc = coord.grpc.clone();
    let mut workers: BTreeMap<String, ChildGuard> = (1..=3)
        .map(|i| {
            (
                format!("w{i}"),
                worker(&grpc, &format!("w{i}"), logs.path()),
            )
        })
        .collect();
    let before = wait_for(
        "three workers with two partitions each",
        Duration::from_secs(60),
        async || {
            let doc = status(&grpc).await?;
            balanced(&doc, &["w1", "w2", "w3"], 6).then(|| owners(&doc))
        },
    )
    .await;

    // A fourth worker: it takes its share, and only the fewest partitions possible move.
    let counts: Vec<usize> = ["w1", "w2", "w3", "w4"]
        .iter()
        .map(|w| before.values().filter(|(o, _, _)| o == w).count())
        .collect();
    let minimal = min_moves(6, &counts);
    workers.insert("w4".into(), worker(&grpc, "w4", logs.path()));
    let mut changes = 0;
    let mut last = before.clone();
    let after = wait_for(
        "the fourth worker's share",
        Duration::from_secs(60),
        async || {
            let doc = status(&grpc).await?;
            let now = owners(&doc);
            for (p, (w, _, _)) in &now {
                if !w.is_empty() && last.get(p).is_some_and(|(l, _, _)| l != w) {
                    changes += 1;
                }
            }
            last = now.clone();
            balanced(&doc, &["w1", "w2", "w3", "w4"], 6).then_some(now)
        },
    )
    .await;
    let moved = before
        .iter()
        .filter(|(p, (w, _, _))| after[p].0 != *w)
        .count();
    println!("fourth worker joined: {moved} partition(s) moved, {changes} ownership change(s) observed, minimum {minimal}");
    assert_eq!(
        moved, minimal,
        "moves beyond the minimum: before {before:?} after {after:?}"
    );
    assert!(
        changes <= minimal,
        "{changes} ownership changes observed, minimum {minimal}"
    );

    // kill -9 a worker: its partitions are owned again, under a new epoch, by live workers.
    let victim = "w1";
    let lost: BTreeMap<i64, u64> = after
        .iter()
        .filter(|(_, (w, _, _))| w == victim)
        .map(|(p, (_, e, _))| (*p, *e))
        .collect();
    assert!(!lost.is_empty());
    workers.get_mut(victim).unwrap().kill9();
    let killed = Instant::now();
    wait_for(
        "the dead worker's partitions owned again",
        Duration::from_millis(SESSION_TIMEOUT_MS) + Duration::from_secs(30),
        async || {
            let doc = status(&grpc).await?;
            let now = owners(&doc);
            let alive: Vec<String> = alive_workers(&doc).into_iter().map(|(w, _)| w).collect();
            lost.iter()
                .all(|(p, e)| {
                    now.get(p).is_some_and(|(w, e2, st)| {
                        w != victim && alive.contains(w) && e2 > e && st == "owned"
                    })
                })
                .then_some(())
        },
    )
    .await;
    let took = killed.elapsed();
    println!(
        "partitions {:?} of the killed worker owned again after {:.2}s (session timeout {:.1}s)",
        lost.keys().collect::<Vec<_>>(),
        took.as_secs_f64(),
        SESSION_TIMEOUT_MS as f64 / 1000.0
    );
    assert!(
        took <= Duration::from_millis(SESSION_TIMEOUT_MS) + Duration::from_secs(5),
        "took {took:?}"
    );

    // kill -9 the coordinator and start it again on the same ports: the workers rejoin.
    let gens_before: BTreeMap<String, u64> = alive_workers(&status(&grpc).await.unwrap())
        .into_iter()
        .collect();
    coord.child.kill9();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (g, h) = (coord.grpc.clone(), coord.http.clone());
    coord = Coordinator::start(&s, &topic, &root, &g, &h, logs.path());
    let restarted = Instant::now();
    wait_for(
        "the workers to rejoin the restarted coordinator",
        Duration::from_secs(30),
        async || {
            let doc = status(&grpc).await?;
            let gens: BTreeMap<String, u64> = alive_workers(&doc).into_iter().collect();
            (gens.len() == 3
                && gens
                    .iter()
                    .all(|(w, g)| gens_before.get(w).is_some_and(|b| g > b)))
            .then_some(())
        },
    )
    .await;
    println!(
        "three workers rejoined the restarted coordinator within {:.2}s",
        restarted.elapsed().as_secs_f64()
    );

    lines += producer.join().unwrap();
    let end = end_offsets(&s, &topic);
    assert_eq!(end.values().sum::<i64>() as u64, lines);
    wait_caught_up(&grpc, &end, lines, Duration::from_secs(300)).await;
    coord.stop();
    verify(&s, &topic, out, &end, &reference(&[file])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_unknown_generations_are_refused() {
    let Some(s) = services("stale_and_unknown_generations_are_refused") else {
        return;
    };
    let topic = unique("it-gen");
    let root = format!("{}/sawmill-it/{topic}", s.hdfs);
    let out = blocking({
        let root = root.clone();
        move || storage::open(&root).unwrap()
    })
    .await;
    let _cleanup = Cleanup {
        storage: out,
        etcd: s.etcd.clone(),
        topic: topic.clone(),
    };
    let logs = logs_dir("test");
    let mut coord =
        Coordinator::start(&s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0", logs.path());
    let mut c = CoordinatorClient::connect(format!("http://{}", coord.grpc))
        .await
        .unwrap();
    let join = || JoinRequest {
        worker_id: "twin".into(),
        version: sawmill_common::VERSION.into(),
        ..Default::default()
    };
    let g1 = c.join(join()).await.unwrap().into_inner();
    let g2 = c.join(join()).await.unwrap().into_inner();
    assert!(g2.generation > g1.generation);
    assert_eq!(g1.session_timeout_ms as u64, SESSION_TIMEOUT_MS);
    let settings: sawmill_common::settings::PipelineSettings =
        serde_json::from_str(&g1.settings_json).unwrap();
    assert_eq!(
        (settings.topic.as_str(), settings.shard_max_rows),
        (topic.as_str(), 20000)
    );

    let hb = |id: &str, generation| HeartbeatRequest {
        worker_id: id.into(),
        generation,
        ..Default::default()
    };
    let e = c.heartbeat(hb("twin", g1.generation)).await.unwrap_err();
    assert_eq!(format!("{:?}", e.code()), "FailedPrecondition");
    assert!(
        e.message().contains("stale generation") && e.message().contains("rejoin"),
        "{}",
        e.message()
    );
    let e = c.heartbeat(hb("nobody", g2.generation)).await.unwrap_err();
    assert_eq!(format!("{:?}", e.code()), "NotFound");
    assert!(
        e.message().contains("unknown worker nobody: join first"),
        "{}",
        e.message()
    );
    c.heartbeat(hb("twin", g2.generation))
        .await
        .expect("the current generation is accepted");

    // Generations keep increasing across a coordinator restart (persisted in etcd).
    coord.stop();
    coord = Coordinator::start(&s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0", logs.path());
    let mut c = CoordinatorClient::connect(format!("http://{}", coord.grpc))
        .await
        .unwrap();
    let g3 = c.join(join()).await.unwrap().into_inner();
    assert!(
        g3.generation > g2.generation,
        "{} after {}",
        g3.generation,
        g2.generation
    );

    // A worker of another major.minor is refused at Join and exits non-zero with the reason.
    let o = Command::new(bin("worker"))
        .args([
            "join",
            "--coordinator",
            &coord.grpc,
            "--worker-id",
            "old",
            "--report-version",
            "0.0.1",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refused") && err.contains("major.minor must match"),
        "{err}"
    );
    coord.stop();
}
