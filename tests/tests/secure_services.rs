//! Sawmill against Kafka, etcd and HDFS with their real security on: the secure profile of the
//! services harness (`deploy/local/services-secure up`: Kafka SASL_SSL with SCRAM-SHA-512, etcd
//! with TLS, client certificates and RBAC, HDFS in Kerberos secure mode with an MIT KDC and
//! `privacy` data-transfer protection). Every client is a real `sawmill`, `coordinator` or
//! `worker` process given the variables `services-secure env` prints.
#![allow(clippy::unwrap_used)]

use sawmill_tests::cluster::{self, Coordinator};
use sawmill_tests::secure::{secure, secure_env};
use sawmill_tests::{bin, unique, workspace, ChildGuard};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sample() -> PathBuf {
    workspace().join("data/sample/nasa_aug95_head.log")
}

fn lines_of(p: &Path) -> u64 {
    sawmill_core::batch::count_lines(&std::fs::read(p).unwrap())
}

fn produce(env: &BTreeMap<String, String>, topic: &str, file: &Path) -> Output {
    run(secure(&mut Command::new(bin("sawmill")), env)
        .args([
            "produce",
            "--topic",
            topic,
            "--partitions",
            "2",
            "--reset",
            "-q",
        ])
        .args(["--bootstrap-servers", &env["SAWMILL_KAFKA"]])
        .arg("--file")
        .arg(file))
}

/// `sawmill summarize` of a pipeline: (records, rejects) of everything committed.
fn summarize(env: &BTreeMap<String, String>, topic: &str, output: &str) -> (u64, u64) {
    let out = run(secure(&mut Command::new(bin("sawmill")), env)
        .args(["summarize", "--topic", topic, "--output", output])
        .args(["--etcd", &env["SAWMILL_ETCD"]]));
    let t = text(&out);
    assert!(out.status.success(), "summarize failed: {t}");
    // "merged N committed shards (R records, J rejects; ..."
    let num = |after: &str| -> u64 {
        let i = t.find(after).unwrap_or_else(|| panic!("{after:?} in {t}"));
        t[..i]
            .rsplit(|c: char| !c.is_ascii_digit())
            .find(|w| !w.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    (num(" records"), num(" rejects"))
}

#[test]
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs the secure services: run scripts/test.sh"
)]
fn a_whole_pipeline_runs_through_secured_kafka_etcd_and_hdfs() {
    let env = secure_env();
    let topic = unique("secure");
    let file = sample();
    let out = produce(&env, &topic, &file);
    assert!(
        out.status.success(),
        "produce over SASL_SSL: {}",
        text(&out)
    );
    let lines = lines_of(&file);
    let root = format!("{}/sawmill/{topic}", env["SAWMILL_HDFS"]);

    let mut cmd = Coordinator::command(
        &sawmill_tests::Services {
            kafka: env["SAWMILL_KAFKA"].clone(),
            hdfs: env["SAWMILL_HDFS"].clone(),
            etcd: env["SAWMILL_ETCD"].clone(),
        },
        &topic,
        &root,
        "127.0.0.1:0",
        "127.0.0.1:0",
    );
    let mut coord = Coordinator::spawn(secure(&mut cmd, &env));
    let logs = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(logs.path().join("w.log")).unwrap();
    let _worker = ChildGuard::spawn(
        secure(&mut Command::new(bin("worker")), &env)
            .args([
                "join",
                "--coordinator",
                &coord.grpc,
                "--worker-id",
                "secure-w1",
            ])
            .stdout(Stdio::null())
            .stderr(log),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let st = rt.block_on(cluster::status(&coord.grpc));
        let done = st.as_ref().is_some_and(|s| {
            let m = &s["merged"];
            m["records"].as_u64().unwrap_or(0) + m["rejects"].as_u64().unwrap_or(0) == lines
        });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all {lines} lines merged within 120 s; status {st:?}; worker log:\n{}",
            std::fs::read_to_string(logs.path().join("w.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    coord.stop();
    // Read back through etcd (TLS + user) and HDFS (Kerberos) with another process.
    let (records, rejects) = summarize(&env, &topic, &root);
    assert_eq!(records + rejects, lines);
}

#[test]
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs the secure services: run scripts/test.sh"
)]
fn a_wrong_kafka_password_fails_fast_with_a_clear_error() {
    let mut env = secure_env();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    env.insert(
        "SAWMILL_KAFKA_SECRET".into(),
        format!("sasl.password={}", wrong.display()),
    );
    let t0 = Instant::now();
    let out = produce(&env, &unique("secure-wrong"), &sample());
    let t = text(&out);
    assert!(!out.status.success(), "a wrong password must fail: {t}");
    assert!(t.to_lowercase().contains("authentication"), "{t}");
    assert!(!t.contains("not-the-password"), "the secret leaked: {t}");
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t0.elapsed()
    );
}

/// `worker run` for a new topic's pipeline with the given environment.
fn worker_run(env: &BTreeMap<String, String>, topic: &str, pipeline: &str) -> Output {
    run(secure(&mut Command::new(bin("worker")), env)
        .args([
            "run",
            "--until-caught-up",
            "--topic",
            topic,
            "--pipeline",
            pipeline,
        ])
        .args(["--bootstrap-servers", &env["SAWMILL_KAFKA"]])
        .args(["--etcd", &env["SAWMILL_ETCD"]])
        .args([
            "--output",
            &format!("{}/sawmill/{pipeline}", env["SAWMILL_HDFS"]),
        ])
        .env("SAWMILL_LOG", "warn"))
}

#[test]
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs the secure services: run scripts/test.sh"
)]
fn etcd_refuses_a_worker_without_a_trusted_certificate() {
    let env = secure_env();
    let topic = unique("secure-etcd");
    assert!(produce(&env, &topic, &sample()).status.success());
    let mut no_cert = env.clone();
    no_cert.remove("SAWMILL_ETCD_CERT");
    no_cert.remove("SAWMILL_ETCD_KEY");
    let mut cmd = Command::new(bin("worker"));
    let out = run(secure(&mut cmd, &no_cert)
        .env_remove("SAWMILL_ETCD_CERT")
        .env_remove("SAWMILL_ETCD_KEY")
        .args(["run", "--until-caught-up", "--topic", &topic])
        .args([
            "--bootstrap-servers",
            &env["SAWMILL_KAFKA"],
            "--etcd",
            &env["SAWMILL_ETCD"],
        ])
        .args([
            "--output",
            &format!("{}/sawmill/{topic}", env["SAWMILL_HDFS"]),
        ]));
    let t = text(&out);
    assert!(
        !out.status.success(),
        "no client certificate must be refused: {t}"
    );
    assert!(t.contains("etcd"), "{t}");
    // A certificate from a CA etcd does not trust is refused too.
    let mut outsider = env.clone();
    let dir = &env["SAWMILL_SECURE_DIR"];
    outsider.insert("SAWMILL_ETCD_CERT".into(), format!("{dir}/outsider.pem"));
    outsider.insert("SAWMILL_ETCD_KEY".into(), format!("{dir}/outsider.key"));
    let out = worker_run(&outsider, &topic, &topic);
    assert!(
        !out.status.success(),
        "an untrusted certificate must be refused: {}",
        text(&out)
    );
}

#[test]
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs the secure services: run scripts/test.sh"
)]
fn an_etcd_role_limited_to_the_pipeline_prefix_is_enough_and_confines_the_worker() {
    let env = secure_env();
    let topic = unique("secure-rbac");
    assert!(produce(&env, &topic, &sample()).status.success());
    // A user whose role may touch only /sawmill/<topic>/ (docs/security.md shows the same).
    let user = format!("u-{topic}");
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("pw-{topic}\n")).unwrap();
    let etcdctl = |args: &[&str]| {
        let out = run(
            Command::new(workspace().join("deploy/local/services-secure"))
                .arg("etcdctl")
                .args(args),
        );
        assert!(out.status.success(), "etcdctl {args:?}: {}", text(&out));
    };
    etcdctl(&["role", "add", &user]);
    let prefix = format!("/sawmill/{topic}/");
    etcdctl(&[
        "role",
        "grant-permission",
        &user,
        "--prefix=true",
        "readwrite",
        &prefix,
    ]);
    etcdctl(&[
        "user",
        "add",
        &user,
        &format!("--new-user-password=pw-{topic}"),
    ]);
    etcdctl(&["user", "grant-role", &user, &user]);
    let mut confined = env.clone();
    let certs = &env["SAWMILL_SECURE_DIR"];
    // worker-a's certificate names no etcd user: the password login decides.
    confined.insert("SAWMILL_ETCD_CERT".into(), format!("{certs}/worker-a.pem"));
    confined.insert("SAWMILL_ETCD_KEY".into(), format!("{certs}/worker-a.key"));
    confined.insert("SAWMILL_ETCD_USER".into(), user.clone());
    confined.insert(
        "SAWMILL_ETCD_PASSWORD_FILE".into(),
        pw.display().to_string(),
    );
    let out = worker_run(&confined, &topic, &topic);
    assert!(out.status.success(), "its own prefix: {}", text(&out));
    let out = worker_run(&confined, &topic, &format!("{topic}-elsewhere"));
    let t = text(&out);
    assert!(
        !out.status.success(),
        "another pipeline's prefix must be refused: {t}"
    );
    assert!(t.contains("permission denied"), "{t}");
}

#[test]
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs the secure services: run scripts/test.sh"
)]
fn kerberized_hdfs_takes_a_keytab_and_refuses_a_client_without_a_ticket() {
    let env = secure_env();
    let name = unique("secure-run");
    let root = format!("{}/sawmill/{name}", env["SAWMILL_HDFS"]);
    let out = run(secure(&mut Command::new(bin("sawmill")), &env)
        .args(["run", "-q", "--output", &root])
        .arg(sample()));
    assert!(
        out.status.success(),
        "sawmill run with a keytab: {}",
        text(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let mut no_ticket = env.clone();
    no_ticket.remove("SAWMILL_HDFS_PRINCIPAL");
    no_ticket.remove("SAWMILL_HDFS_KEYTAB");
    let out = run(secure(&mut Command::new(bin("sawmill")), &no_ticket)
        .env_remove("SAWMILL_HDFS_PRINCIPAL")
        .env_remove("SAWMILL_HDFS_KEYTAB")
        .env("KRB5CCNAME", format!("FILE:{}/none", dir.path().display()))
        .args(["run", "-q", "--output", &format!("{root}-no-ticket")])
        .arg(sample()));
    let t = text(&out);
    assert!(!out.status.success(), "no ticket must be refused: {t}");
    let lower = t.to_lowercase();
    assert!(
        lower.contains("kerberos") || lower.contains("gssapi") || lower.contains("authenticat"),
        "the error must say it is about authentication: {t}"
    );
}
