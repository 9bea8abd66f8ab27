//! Kafka's other SASL mechanisms against the real broker of the secure profile (its SASL_SSL
//! listener offers SCRAM-SHA-512, PLAIN and GSSAPI; `deploy/local/secure.sh`): `sawmill
//! produce` and a worker (`worker run`, the same Kafka client path as `worker join`) with
//! PLAIN and with GSSAPI (Kerberos, through the profile's KDC), and a wrong PLAIN password
//! failing fast with an error that names authentication and not the secret.
#![allow(clippy::unwrap_used)]

use sawmill_tests::secure::{secure, secure_env};
use sawmill_tests::{bin, unique, workspace};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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

/// The profile's variables with Kafka reached through `mechanism` (`plain` or `gssapi`).
fn with_mechanism(mechanism: &str, ccache: &std::path::Path) -> BTreeMap<String, String> {
    let mut env = secure_env();
    let key = format!(
        "SAWMILL_SECURE_KAFKA_{}_PROPERTIES",
        mechanism.to_uppercase()
    );
    let props = env[&key].clone();
    env.insert("SAWMILL_KAFKA_PROPERTIES_FILE".into(), props);
    if mechanism == "gssapi" {
        // No password at all: the keytab is the credential. librdkafka's kinit writes the
        // ticket into this process's own cache, not the machine's shared default one.
        env.remove("SAWMILL_KAFKA_SECRET");
        env.insert(
            "KRB5CCNAME".into(),
            format!("FILE:{}", ccache.join("krb5cc").display()),
        );
    }
    env
}

fn produce(env: &BTreeMap<String, String>, topic: &str) -> Output {
    let mut cmd = Command::new(bin("sawmill"));
    if !env.contains_key("SAWMILL_KAFKA_SECRET") {
        cmd.env_remove("SAWMILL_KAFKA_SECRET");
    }
    secure(&mut cmd, env)
        .args([
            "produce",
            "-q",
            "--topic",
            topic,
            "--partitions",
            "2",
            "--reset",
        ])
        .args(["--bootstrap-servers", &env["SAWMILL_KAFKA"], "--file"])
        .arg(sample())
        .output()
        .unwrap()
}

/// `worker run --until-caught-up` of the topic: (records, rejects) it committed.
fn worker_run(env: &BTreeMap<String, String>, topic: &str) -> (u64, u64) {
    let mut cmd = Command::new(bin("worker"));
    if !env.contains_key("SAWMILL_KAFKA_SECRET") {
        cmd.env_remove("SAWMILL_KAFKA_SECRET");
    }
    let out = secure(&mut cmd, env)
        .args(["run", "--until-caught-up", "--topic", topic])
        .args(["--bootstrap-servers", &env["SAWMILL_KAFKA"]])
        .args(["--etcd", &env["SAWMILL_ETCD"]])
        .args([
            "--output",
            &format!("{}/sawmill/{topic}", env["SAWMILL_HDFS"]),
        ])
        .env("SAWMILL_LOG", "warn")
        .output()
        .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "worker run: {t}");
    // "committed N shards, R records, J rejects in ..."
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

fn round_trip(mechanism: &str) {
    let cc = tempfile::tempdir().unwrap();
    let env = with_mechanism(mechanism, cc.path());
    let topic = unique(&format!("sasl-{mechanism}"));
    let out = produce(&env, &topic);
    assert!(
        out.status.success(),
        "produce over {mechanism}: {}",
        text(&out)
    );
    let lines = sawmill_core::batch::count_lines(&std::fs::read(sample()).unwrap());
    let (records, rejects) = worker_run(&env, &topic);
    assert_eq!(
        records + rejects,
        lines,
        "{mechanism}: every line committed"
    );
    if mechanism == "gssapi" {
        assert!(
            cc.path().join("krb5cc").exists(),
            "librdkafka's kinit wrote no ticket: GSSAPI was not used"
        );
    }
}

#[test]
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs the secure services: run scripts/test.sh"
)]
fn produce_and_a_worker_authenticate_with_sasl_plain() {
    round_trip("plain");
}

#[test]
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs the secure services: run scripts/test.sh"
)]
fn produce_and_a_worker_authenticate_with_kerberos_gssapi() {
    round_trip("gssapi");
}

#[test]
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs the secure services: run scripts/test.sh"
)]
fn a_wrong_plain_password_fails_fast_with_a_clear_error() {
    let cc = tempfile::tempdir().unwrap();
    let mut env = with_mechanism("plain", cc.path());
    let wrong = cc.path().join("wrong");
    std::fs::write(&wrong, "not-the-plain-password\n").unwrap();
    env.insert(
        "SAWMILL_KAFKA_SECRET".into(),
        format!("sasl.password={}", wrong.display()),
    );
    let t0 = Instant::now();
    let out = produce(&env, &unique("sasl-wrong"));
    let t = text(&out);
    assert!(!out.status.success(), "a wrong password must fail: {t}");
    assert!(t.to_lowercase().contains("authentication"), "{t}");
    assert!(
        t.contains("Invalid username or password") && t.contains("sasl.username"),
        "the error says what was refused and what to check: {t}"
    );
    assert!(
        !t.contains("not-the-plain-password"),
        "the secret leaked: {t}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t0.elapsed()
    );
}
