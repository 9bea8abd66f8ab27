//! Leader election between coordinators of one pipeline: two started at the same moment elect
//! exactly one leader (every status sample shows exactly one); a leader paused (SIGSTOP) past
//! its lease is replaced, and once resumed (SIGCONT) it never acts as leader again: its write
//! attempts are refused by the fence (its metric counts them), it reports standby naming the new
//! leader, and etcd's leader key carries the new leader.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use sawmill_common::etcd::Checkpoints;
use sawmill_tests::cluster::*;
use sawmill_tests::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn coordinator(s: &Services, topic: &str, root: &str, log: std::fs::File) -> Command {
    let mut cmd = Coordinator::command(s, topic, root, "127.0.0.1:0", "127.0.0.1:0");
    cmd.args(["--leader-ttl-ms", "2000"])
        .env("SAWMILL_LOG", "info")
        .stderr(log);
    cmd
}

fn signal(c: &Coordinator, sig: &str) {
    let pid = c.child.pid().unwrap().to_string();
    assert!(Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success());
}

/// The roles of every coordinator that answers.
async fn roles(cs: &[&Coordinator]) -> Vec<Option<(String, Option<String>)>> {
    let mut out = Vec::new();
    for c in cs {
        out.push(status(&c.grpc).await.map(|d| role(&d)));
    }
    out
}

/// The value of a counter on a coordinator's /metrics.
async fn counter(http: &str, name: &str) -> u64 {
    let http = http.to_string();
    let (_, body) = blocking(move || http_get(&http, "/metrics")).await;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka/HDFS/etcd: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_and_a_paused_leader_is_fenced() {
    let s = services();
    let topic = unique("election");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out").display().to_string();
    let logs = logs_dir("coordinator_election");
    let log = |name: &str| std::fs::File::create(logs.path().join(name)).unwrap();
    let mut cs = Coordinator::spawn_all(&mut [
        coordinator(&s, &topic, &root, log("c1.log")),
        coordinator(&s, &topic, &root, log("c2.log")),
    ]);

    let elected = wait_for("a leader", Duration::from_secs(20), async || {
        let r = roles(&[&cs[0], &cs[1]]).await;
        r.iter()
            .position(|x| x.as_ref().is_some_and(|(role, _)| role == "leader"))
    })
    .await;
    // From then on, every sample shows exactly one leader, named by the other.
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut samples = 0;
    while Instant::now() < deadline {
        let r = roles(&[&cs[0], &cs[1]]).await;
        let leaders: Vec<usize> = (0..2)
            .filter(|&i| r[i].as_ref().is_some_and(|(role, _)| role == "leader"))
            .collect();
        assert_eq!(leaders, vec![elected], "sample {samples}: {r:?}");
        let other = r[1 - elected].clone().expect("the standby answers");
        assert_eq!(
            other,
            ("standby".to_string(), Some(cs[elected].grpc.clone()))
        );
        samples += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(samples > 10, "only {samples} samples");

    // Pause the leader past its lease: the standby takes over.
    let (old, new) = (elected, 1 - elected);
    signal(&cs[old], "-STOP");
    let paused = Instant::now();
    wait_for(
        "the standby takes over",
        Duration::from_secs(20),
        async || {
            let doc = status(&cs[new].grpc).await?;
            (role(&doc).0 == "leader").then_some(())
        },
    )
    .await;
    println!(
        "coordinator_election: pause to takeover {} ms",
        paused.elapsed().as_millis()
    );
    let mut etcd = Checkpoints::connect(&s.etcd, &topic).await.unwrap();
    let key = etcd.leader().await.unwrap().expect("a leader key");
    assert_eq!(key.address, cs[new].grpc);
    let generation_before = {
        let doc = status(&cs[new].grpc).await.unwrap();
        doc["generation"].as_u64().unwrap_or(0)
    };

    // Resume the old leader: at no sample does it claim to lead, it names the new leader, and
    // what it tried to write was refused by the fence.
    signal(&cs[old], "-CONT");
    let resumed = Instant::now();
    while resumed.elapsed() < Duration::from_secs(3) {
        let r = roles(&[&cs[old], &cs[new]]).await;
        assert!(
            r[0].as_ref().is_none_or(|(role, _)| role == "standby"),
            "the resumed leader claims to lead: {r:?}"
        );
        assert_eq!(r[1].as_ref().map(|(role, _)| role.as_str()), Some("leader"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let doc = status(&cs[old].grpc).await.expect("the old leader answers");
    assert_eq!(
        role(&doc),
        ("standby".to_string(), Some(cs[new].grpc.clone()))
    );
    let refused = counter(&cs[old].http, "sawmill_coordinator_fenced_writes_total").await;
    assert!(
        refused >= 1,
        "no write of the resumed leader was refused by the fence"
    );
    assert_eq!(
        counter(&cs[old].http, "sawmill_coordinator_leader").await,
        0
    );
    // etcd still names the new leader, under the same revision.
    assert_eq!(etcd.leader().await.unwrap(), Some(key));
    let doc = status(&cs[new].grpc).await.unwrap();
    assert_eq!(doc["generation"].as_u64().unwrap_or(0), generation_before);

    // A clean stop of the leader hands over at once (it resigns): the other leads within a
    // fraction of the TTL.
    let stopped = Instant::now();
    cs[new].stop();
    wait_for(
        "the resumed coordinator leads",
        Duration::from_secs(10),
        async || {
            let doc = status(&cs[old].grpc).await?;
            (role(&doc).0 == "leader").then_some(())
        },
    )
    .await;
    let handover = stopped.elapsed();
    println!(
        "coordinator_election: clean stop to takeover {} ms",
        handover.as_millis()
    );
    cs[old].stop();
}
