//! Chaos (issue #12, fault 8): the output storage runs out of space under a running cluster
//! (coordinator + one `worker join`, PRIVATE services instance):
//!
//! - a local output root on a small tmpfs (`mount -t tmpfs -o size=8m`, unmounted by a guard;
//!   skipped with a message where mounting is not permitted), filled to the last byte;
//! - an HDFS output root under a space quota (`hdfs dfsadmin -setSpaceQuota 1m <root>`).
//!
//! While full: the partition shows failing in the status document (`last_error` naming the
//! cause), committed offsets do not advance, and every published file is one a manifest names
//! (nothing partial). Once space returns (filler deleted, quota cleared): the pipeline drains
//! to lag 0 and `sawmill verify` passes (0 lost, 0 duplicated, summary exact, etcd at the end,
//! producer sequences whole). Prints the time from space back to lag 0 and the worker's
//! largest RSS.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_common::etcd::Checkpoints;
use sawmill_tests::checker::*;
use sawmill_tests::cluster::*;
use sawmill_tests::faults::*;
use sawmill_tests::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const LINES: u64 = 20_000;
const PARTITIONS: u32 = 2;
const KEYS: u32 = 3;

/// A tmpfs mounted for the test, unmounted (lazily, so open files cannot keep it) when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "sawmill-chaos",
            ])
            .arg(path)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(path.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes the first `n` lines of `file` to `first` and the rest to `rest`.
fn split_at(file: &Path, n: usize, first: &Path, rest: &Path) {
    let data = std::fs::read(file).unwrap();
    let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    std::fs::write(first, lines[..n].concat()).unwrap();
    std::fs::write(rest, lines[n..].concat()).unwrap();
}

/// partition → committed offset in the status document.
fn committed(doc: &Value) -> BTreeMap<i64, i64> {
    doc["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap(),
                p["committed_offset"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

/// The first partition's `last_error` whose message contains one of `needles` (any case).
fn failing_with(doc: &Value, needles: &[&str]) -> Option<Value> {
    doc["partitions"].as_array()?.iter().find_map(|p| {
        let e = &p["last_error"];
        let text = e["message"].as_str()?.to_lowercase();
        needles
            .iter()
            .any(|n| text.contains(&n.to_lowercase()))
            .then(|| e.clone())
    })
}

/// A running cluster over a two-part tagged topic, the first part consumed.
struct Run {
    s: Services,
    topic: String,
    root: String,
    coordinator: Coordinator,
    worker: ChildGuard,
    second: PathBuf,
    _logs: Logs,
    _dir: tempfile::TempDir,
}

async fn start(s: &Services, prefix: &str, root: impl FnOnce(&str) -> String) -> Run {
    let topic = unique(prefix);
    let root = root(&topic);
    let dir = tempfile::tempdir().unwrap();
    let (file, a, b) = (
        dir.path().join("tagged.log"),
        dir.path().join("a.log"),
        dir.path().join("b.log"),
    );
    generate_tagged(&file, LINES, 5, 55, KEYS);
    split_at(&file, LINES as usize / 2, &a, &b);
    produce(s, &topic, &a, PARTITIONS, true);
    let logs = logs_dir(prefix);
    let log = std::fs::File::create(logs.path().join("coordinator.log")).unwrap();
    let mut cmd = Coordinator::command(s, &topic, &root, "127.0.0.1:0", "127.0.0.1:0");
    cmd.args(["--shard-max-rows", "2000", "--shard-max-age-ms", "500"])
        .args([
            "--commit-deadline-ms",
            "3000",
            "--summary-interval-ms",
            "1000",
        ])
        .env("SAWMILL_LOG", "info")
        .stderr(log);
    let coordinator = Coordinator::spawn(&mut cmd);
    let worker = worker(&coordinator.grpc, "w1", logs.path());
    let end = end_offsets(s, &topic);
    wait_caught_up(&coordinator.grpc, &end, LINES / 2, Duration::from_secs(120)).await;
    Run {
        s: s.clone(),
        topic,
        root,
        coordinator,
        worker,
        second: b,
        _logs: logs,
        _dir: dir,
    }
}

impl Run {
    /// With the storage full: produces the second part, waits for a partition failing with
    /// one of `needles`, and checks that offsets stay and every published file is a committed
    /// one. Returns the reported error.
    async fn while_full(&mut self, needles: &[&str], published: Vec<String>) -> Value {
        produce(&self.s, &self.topic, &self.second, PARTITIONS, false);
        let grpc = self.coordinator.grpc.clone();
        let error = wait_for(
            "a partition failing for lack of space",
            Duration::from_secs(60),
            async || failing_with(&status(&grpc).await?, needles),
        )
        .await;
        let before = committed(&status(&grpc).await.unwrap());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = committed(&status(&grpc).await.unwrap());
        assert_eq!(before, after, "offsets advanced while the storage was full");
        let mut cp = Checkpoints::connect(&self.s.etcd, &self.topic)
            .await
            .unwrap();
        let named: BTreeSet<String> = cp
            .manifests(None)
            .await
            .unwrap()
            .iter()
            .flat_map(|m| m.files.iter().map(|f| f.path.clone()))
            .collect();
        for f in published {
            assert!(
                named.contains(&f),
                "{f} published but committed by no manifest"
            );
        }
        error
    }

    /// Waits for lag 0 once space is back, stops the cluster and verifies; returns the time
    /// from `back` to lag 0 and the worker's largest RSS seen meanwhile.
    async fn drain_and_verify(&mut self, back: Instant) -> (Duration, u64) {
        let end = end_offsets(&self.s, &self.topic);
        let pid = self.worker.pid().unwrap();
        let grpc = self.coordinator.grpc.clone();
        let mut max_rss = 0;
        wait_for(
            "lag 0 after space came back",
            Duration::from_secs(120),
            async || {
                max_rss = max_rss.max(rss_bytes(pid).unwrap_or(0));
                let doc = status(&grpc).await?;
                let merged =
                    doc["merged"]["records"].as_u64()? + doc["merged"]["rejects"].as_u64()?;
                let done = committed(&doc)
                    .iter()
                    .all(|(p, c)| end.get(&(*p as i32)) == Some(c));
                (done && merged == LINES).then_some(())
            },
        )
        .await;
        let recovery = back.elapsed();
        self.coordinator.stop();
        self.worker.kill9();
        assert_verified(
            &self.s,
            &self.topic,
            &self.root,
            KEYS as usize,
            "storage full",
        );
        (recovery, max_rss)
    }
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka and etcd (a private instance): scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_local_disk_full_fails_cleanly_then_drains() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("tmpfs");
    let tmpfs = match Tmpfs::mount(&mnt, "8m") {
        Ok(t) => t,
        Err(e) => {
            println!("chaos_local_disk_full: SKIPPED: cannot mount a tmpfs ({e}); needs root");
            return;
        }
    };
    let private = PrivateServices::up(&["etcd", "kafka"], 900);
    let out = mnt.join("out");
    let mut run = start(&private.services, "chaos-full", |_| {
        out.display().to_string()
    })
    .await;

    // Fill the file system to the last byte.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.write_all(&[0u8; 1]);
        let _ = f.sync_all();
    }
    let published: Vec<String> = files_under(&out)
        .into_iter()
        .filter(|f| f.starts_with("records/") || f.starts_with("rejects/"))
        .collect();
    let error = run
        .while_full(&["no space left", "os error 28"], published)
        .await;
    std::fs::remove_file(&filler).unwrap();
    let (recovery, rss) = run.drain_and_verify(Instant::now()).await;
    println!(
        "chaos_disk_full: tmpfs full ({}), space back to lag 0 {:.1}s, max worker RSS {:.0} MiB, total {:.0}s",
        error["message"].as_str().unwrap_or(""),
        recovery.as_secs_f64(),
        rss as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    drop(run);
    drop(private);
    drop(tmpfs);
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, etcd and HDFS (a private instance): scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_hdfs_space_quota_fails_cleanly_then_drains() {
    let started = Instant::now();
    let private = PrivateServices::up(&["etcd", "kafka", "hdfs"], 920);
    let hdfs = private.services.hdfs.clone();
    let mut run = start(&private.services, "chaos-quota", |topic| {
        format!("{hdfs}/chaos-quota/{topic}")
    })
    .await;
    let dir = format!("/chaos-quota/{}", run.topic);
    let dfsadmin = |args: &[&str]| {
        let mut all = vec!["hadoop-class", "org.apache.hadoop.hdfs.tools.DFSAdmin"];
        all.extend_from_slice(args);
        let out = private.tool(&all);
        assert!(
            out.status.success(),
            "dfsadmin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Below one block: every new file's first block is refused.
    dfsadmin(&["-setSpaceQuota", "1m", &dir]);
    let storage = sawmill_common::storage::open(&run.root).await.unwrap();
    let mut published = storage.list("records").await.unwrap();
    published.extend(storage.list("rejects").await.unwrap());
    let error = run.while_full(&["quota"], published).await;
    dfsadmin(&["-clrSpaceQuota", &dir]);
    let (recovery, rss) = run.drain_and_verify(Instant::now()).await;
    println!(
        "chaos_disk_full: HDFS quota ({}), quota cleared to lag 0 {:.1}s, max worker RSS {:.0} MiB, total {:.0}s",
        error["message"].as_str().unwrap_or("").chars().take(120).collect::<String>(),
        recovery.as_secs_f64(),
        rss as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    drop(run);
    drop(private);
}
