//! The fleet in real containers: `deploy/container/fleet-test.sh` brings up
//! `deploy/container/fleet.compose.yml` with podman (etcd, Kafka, HDFS, a coordinator, workers
//! scaled 1 → 3 → 2 while a generated topic is produced, one worker killed with SIGKILL and
//! restarted, one rolled onto a new image tag) and checks ownership at every status poll. This
//! test runs it, then checks what it leaves behind: every line of the topic in exactly one
//! published row, and the merged summary tables equal to `sawmill run` over the same lines.
//! Needs the images of `deploy/container/build-images.sh all` and podman-compose; skipped only
//! where podman is not installed.

use sawmill_common::storage::{LocalFs, Storage};
use sawmill_tests::{assert_exactly_once, comparable_batches, positions, workspace};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

fn status_checker() -> std::path::PathBuf {
    workspace().join("deploy/container/fleet_status.py")
}

/// `fleet_status.py settled` on one poll: does it call the fleet settled?
fn settled(doc: &serde_json::Value, partitions: usize, prefixes: &[&str]) -> bool {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg(status_checker())
        .arg("settled")
        .arg(partitions.to_string())
        .args(prefixes)
        .stdin(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().expect("piped stdin");
    writeln!(stdin, "1 {doc}").expect("write the poll");
    drop(stdin);
    child.wait().expect("fleet_status.py").success()
}

fn poll(workers: &[(&str, bool, &[i32])], owners: &[(i32, &str, &str)]) -> serde_json::Value {
    serde_json::json!({
        "workers": workers.iter().map(|(id, alive, owned)|
            serde_json::json!({"id": id, "alive": alive, "owned": owned})).collect::<Vec<_>>(),
        "partitions": owners.iter().map(|(p, owner, state)|
            serde_json::json!({"partition": p, "owner": owner, "state": state})).collect::<Vec<_>>(),
    })
}

/// The ownership check the fleet test relies on refuses what it must refuse.
#[test]
fn the_status_check_refuses_double_or_dead_ownership() {
    let good = poll(
        &[("a-7", true, &[0]), ("b-6", true, &[1])],
        &[(0, "a-7", "owned"), (1, "b-6", "owned")],
    );
    assert!(settled(&good, 2, &["a", "b"]));
    // Partition 1 still running on a, too (a heartbeat that has not let go).
    let twice = poll(
        &[("a-7", true, &[0, 1]), ("b-6", true, &[1])],
        &[(0, "a-7", "owned"), (1, "b-6", "owned")],
    );
    assert!(!settled(&twice, 2, &["a", "b"]));
    // Owned by a worker that is no longer alive.
    let dead = poll(
        &[("a-7", true, &[0]), ("b-6", false, &[1])],
        &[(0, "a-7", "owned"), (1, "b-6", "owned")],
    );
    assert!(!settled(&dead, 2, &["a", "b"]));
    // Still releasing, or not the expected set of workers, or unbalanced.
    let releasing = poll(
        &[("a-7", true, &[0]), ("b-6", true, &[1])],
        &[(0, "a-7", "owned"), (1, "b-6", "releasing")],
    );
    assert!(!settled(&releasing, 2, &["a", "b"]));
    assert!(!settled(&good, 2, &["a", "c"]));
    let unbalanced = poll(
        &[("a-7", true, &[0, 1, 2]), ("b-6", true, &[])],
        &[
            (0, "a-7", "owned"),
            (1, "a-7", "owned"),
            (2, "a-7", "owned"),
        ],
    );
    assert!(!settled(&unbalanced, 3, &["a", "b"]));
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs podman and the images of deploy/container/build-images.sh all: scripts/test.sh"
)]
#[test]
fn fleet_scales_kills_and_rolls_under_load_exactly_once() {
    if !on_path("podman") {
        println!(
            "fleet: SKIPPED: podman is not installed (deploy/container/build-images.sh all installs it and builds the images)"
        );
        return;
    }
    let results = tempfile::Builder::new()
        .prefix("sawmill-fleet-")
        .tempdir()
        .unwrap();
    let r = results.path();
    let run = Command::new(workspace().join("deploy/container/fleet-test.sh"))
        .env("FLEET_RESULTS", r)
        .stderr(Stdio::inherit())
        .output()
        .expect("run deploy/container/fleet-test.sh");
    let report = String::from_utf8_lossy(&run.stdout);
    println!("{report}");
    assert!(
        run.status.success(),
        "fleet-test.sh failed ({}); its containers' logs were in {}/logs",
        run.status,
        r.display()
    );

    // Every partition's offsets gap-free and unique over records/ + rejects/, up to the end
    // offsets the last status poll saw (lag 0 there), and those are all the produced lines.
    let last: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.join("final-status.json")).unwrap()).unwrap();
    let end: BTreeMap<i32, i64> = last["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap() as i32,
                p["end_offset"].as_i64().unwrap(),
            )
        })
        .collect();
    let lines = sawmill_core::batch::count_lines(&std::fs::read(r.join("lines.log")).unwrap());
    assert_eq!(
        end.values().sum::<i64>() as u64,
        lines,
        "topic == lines.log"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (got, want) = rt.block_on(async {
        let out = LocalFs::create(r.join("output")).unwrap();
        let mut all = positions(&out, "records").await;
        all.extend(positions(&out, "rejects").await);
        assert_exactly_once(all, &end);
        let got = sawmill_common::summary::read(&out as &dyn Storage)
            .await
            .unwrap();
        let reference = LocalFs::create(r.join("reference")).unwrap();
        let want = sawmill_common::summary::read(&reference as &dyn Storage)
            .await
            .unwrap();
        (comparable_batches(&got), comparable_batches(&want))
    });
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "summary tables present"
    );
    for (name, rows) in &want {
        assert!(!rows.is_empty() || name != "totals", "empty reference");
        assert_eq!(&got[name], rows, "summary table {name} == sawmill run");
    }

    // A settling time for each change, every one measured after at least one checked poll.
    let figures = std::fs::read_to_string(r.join("figures.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = figures
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    let changes: Vec<&str> = rows.iter().map(|c| c[0]).collect();
    for change in [
        "scale up",
        "scale down",
        "kill -9",
        "restart",
        "roll: stop",
        "roll: start",
    ] {
        assert!(
            changes.iter().any(|c| c.starts_with(change)),
            "no figure for {change}: {changes:?}"
        );
    }
    for c in &rows {
        assert!(c[1].parse::<u64>().unwrap() > 0, "{c:?}");
    }
    assert!(Path::new(&r.join("report.txt")).exists());
}
