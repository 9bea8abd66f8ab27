//! No secret leaves its file: a whole secured pipeline (`sawmill produce`, `coordinator serve`
//! with gRPC mTLS, HTTPS and a token, `worker join` with a client certificate, all through
//! Kafka SASL_SSL, etcd TLS + user + password and Kerberized HDFS) runs with debug logging, and
//! every log line, the status JSON, the dashboard page and documents, /metrics and the
//! `settings_json` the coordinator hands out at Join are searched for every secret value:
//! passwords, the token, a session secret, the keytab's content and the private keys.
#![allow(clippy::unwrap_used)]

use sawmill_proto::v1::coordinator_client::CoordinatorClient;
use sawmill_proto::v1::{JoinRequest, LeaveRequest};
use sawmill_tests::cluster::Coordinator;
use sawmill_tests::secure::{secure, secure_env};
use sawmill_tests::{bin, unique, workspace, ChildGuard};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// Every secret of the profile this pipeline could touch: (what, bytes to look for).
fn secrets(dir: &Path, session: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for f in [
        "kafka-sawmill.password",
        "kafka-admin.password",
        "kafka-keystore.password",
        "etcd-sawmill.password",
        "etcd-root.password",
        "sawmill-token.password",
    ] {
        let v = std::fs::read(dir.join(f)).unwrap();
        assert!(v.len() >= 16, "{f} is a real secret");
        out.push((f.to_string(), v));
    }
    out.push(("session secret".into(), session.as_bytes().to_vec()));
    // The keytab is binary: its raw bytes (any 16 in a row), hex and base64 forms.
    let keytab = std::fs::read(dir.join("sawmill.keytab")).unwrap();
    for (i, w) in keytab.windows(16).enumerate().step_by(8) {
        out.push((format!("sawmill.keytab bytes {i}.."), w.to_vec()));
    }
    let hex: String = keytab.iter().map(|b| format!("{b:02x}")).collect();
    out.push(("sawmill.keytab hex".into(), hex.into_bytes()));
    out.push((
        "sawmill.keytab base64".into(),
        base64(&keytab).as_bytes()[..40].to_vec(),
    ));
    // Private keys: each base64 line of the PEM body.
    for f in ["coordinator.key", "worker-a.key", "sawmill.key"] {
        let pem = std::fs::read_to_string(dir.join(f)).unwrap();
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 32)
        {
            out.push((f.to_string(), line.as_bytes().to_vec()));
        }
    }
    out
}

/// Standard base64 with padding (the form a careless log of bytes would take).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A GET over HTTPS with the bearer token (from a header file, as an operator would).
fn https_get(env: &BTreeMap<String, String>, http: &str, path: &str, header: &Path) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "30", "--cacert"])
        .arg(format!("{}/ca.pem", env["SAWMILL_SECURE_DIR"]))
        .arg("-H")
        .arg(format!("@{}", header.display()))
        .arg(format!("https://{http}{path}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "GET {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Joins as `worker-b` over mTLS with the token and leaves at once: (settings_json, secret).
async fn join_and_leave(env: &BTreeMap<String, String>, grpc: &str) -> (String, String) {
    let dir = PathBuf::from(&env["SAWMILL_SECURE_DIR"]);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(
            std::fs::read(dir.join("ca.pem")).unwrap(),
        ))
        .identity(Identity::from_pem(
            std::fs::read(dir.join("worker-b.pem")).unwrap(),
            std::fs::read(dir.join("worker-b.key")).unwrap(),
        ));
    let channel = Endpoint::from_shared(format!("https://{grpc}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = std::fs::read_to_string(dir.join("sawmill-token.password")).unwrap();
    let bearer: tonic::metadata::MetadataValue<_> =
        format!("Bearer {}", token.trim()).parse().unwrap();
    let mut client = CoordinatorClient::new(channel);
    let mut req = tonic::Request::new(JoinRequest {
        worker_id: "leak-probe".into(),
        version: sawmill_core::VERSION.into(),
        ..Default::default()
    });
    req.metadata_mut().insert("authorization", bearer.clone());
    let joined = client.join(req).await.unwrap().into_inner();
    let mut leave = tonic::Request::new(LeaveRequest {
        worker_id: "leak-probe".into(),
        generation: joined.generation,
        session_secret: joined.session_secret.clone(),
        ..Default::default()
    });
    leave.metadata_mut().insert("authorization", bearer);
    client.leave(leave).await.unwrap();
    (joined.settings_json, joined.session_secret)
}

fn sigterm_and_wait(child: &mut ChildGuard, what: &str) {
    let pid = child.pid().expect("running");
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    assert!(
        child.wait_ok(Duration::from_secs(60)),
        "{what} did not exit cleanly"
    );
}

#[test]
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs the secure services: run scripts/test.sh"
)]
fn a_secured_pipeline_with_debug_logs_shows_no_secret_anywhere() {
    let env = secure_env();
    let dir = PathBuf::from(&env["SAWMILL_SECURE_DIR"]);
    let topic = unique("leak");
    let logs = tempfile::tempdir().unwrap();
    let file = workspace().join("data/sample/nasa_aug95_head.log");
    let lines = sawmill_core::batch::count_lines(&std::fs::read(&file).unwrap());

    let produced = secure(&mut Command::new(bin("sawmill")), &env)
        .args(["produce", "--topic", &topic, "--partitions", "2", "--reset"])
        .args(["--bootstrap-servers", &env["SAWMILL_KAFKA"], "--file"])
        .arg(&file)
        .env("SAWMILL_LOG", "debug")
        .output()
        .unwrap();
    assert!(produced.status.success(), "{produced:?}");

    // The coordinator: gRPC with TLS, mutual TLS and an allow-list; HTTPS; the token.
    let root = format!("{}/sawmill/{topic}", env["SAWMILL_HDFS"]);
    let svc = sawmill_tests::Services {
        kafka: env["SAWMILL_KAFKA"].clone(),
        hdfs: env["SAWMILL_HDFS"].clone(),
        etcd: env["SAWMILL_ETCD"].clone(),
    };
    let mut cmd = Coordinator::command(&svc, &topic, &root, "127.0.0.1:0", "127.0.0.1:0");
    let secret = |f: &str| dir.join(f).display().to_string();
    secure(&mut cmd, &env)
        .args(["--tls-cert", &secret("coordinator.pem")])
        .args(["--tls-key", &secret("coordinator.key")])
        .args([
            "--tls-client-ca",
            &secret("ca.pem"),
            "--allow-worker",
            "worker-*",
        ])
        .args(["--token-file", &secret("sawmill-token.password")])
        .env("SAWMILL_LOG", "debug")
        .stderr(std::fs::File::create(logs.path().join("coordinator.log")).unwrap());
    let mut coord = Coordinator::spawn(&mut cmd);

    let access = |cmd: &mut Command| {
        cmd.env("SAWMILL_COORDINATOR_CA", secret("ca.pem"))
            .env("SAWMILL_CLIENT_CERT", secret("worker-a.pem"))
            .env("SAWMILL_CLIENT_KEY", secret("worker-a.key"))
            .env("SAWMILL_TOKEN_FILE", secret("sawmill-token.password"));
    };
    let mut wcmd = Command::new(bin("worker"));
    secure(&mut wcmd, &env)
        .args([
            "join",
            "--coordinator",
            &coord.grpc,
            "--worker-id",
            "leak-w1",
        ])
        .env("SAWMILL_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(logs.path().join("worker.log")).unwrap());
    access(&mut wcmd);
    let mut worker = ChildGuard::spawn(&mut wcmd);

    // Until everything is merged, through `sawmill status --json` (mTLS + token).
    let deadline = Instant::now() + Duration::from_secs(90);
    let status_json = loop {
        let mut st = Command::new(bin("sawmill"));
        st.args(["status", "--json", "--coordinator", &coord.grpc]);
        access(&mut st);
        let out = st.output().unwrap();
        let doc: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();
        let merged = doc.as_ref().map_or(0, |d| {
            d["merged"]["records"].as_u64().unwrap_or(0)
                + d["merged"]["rejects"].as_u64().unwrap_or(0)
        });
        if merged == lines {
            break String::from_utf8(out.stdout).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "not merged within 90 s: {}{}\nworker log tail: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(logs.path().join("worker.log"))
                .unwrap_or_default()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(500));
    };

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (settings_json, session) = rt.block_on(join_and_leave(&env, &coord.grpc));
    let header = logs.path().join("auth-header");
    let token = std::fs::read_to_string(dir.join("sawmill-token.password")).unwrap();
    std::fs::write(&header, format!("Authorization: Bearer {}\n", token.trim())).unwrap();
    let mut documents = vec![
        ("status json".to_string(), status_json),
        ("settings_json".to_string(), settings_json.clone()),
    ];
    for path in [
        "/",
        "/api/v1/status",
        "/api/v1/dashboard",
        "/api/v1/analytics",
        "/metrics",
    ] {
        documents.push((
            format!("GET {path}"),
            https_get(&env, &coord.http, path, &header),
        ));
    }
    assert!(documents[2].1.contains("<html"), "the dashboard page");
    // The settings a worker receives carry no connection settings at all.
    let settings: serde_json::Value = serde_json::from_str(&settings_json).unwrap();
    assert_eq!(settings["topic"], topic.as_str());
    assert!(settings.get("connection").is_none(), "{settings_json}");

    sigterm_and_wait(&mut worker, "worker");
    coord.stop();

    let mut haystacks: Vec<(String, Vec<u8>)> = documents
        .into_iter()
        .map(|(what, body)| (what, body.into_bytes()))
        .collect();
    haystacks.push(("produce stdout".into(), produced.stdout.clone()));
    haystacks.push(("produce stderr".into(), produced.stderr.clone()));
    for f in ["coordinator.log", "worker.log"] {
        let log = std::fs::read(logs.path().join(f)).unwrap();
        // Debug logging was really on, so the search covers debug lines.
        assert!(contains(&log, b"DEBUG"), "{f} has no debug line");
        // hdfs-native's SASL exchange (tokens, negotiated keys) stays out of debug logs.
        let text = String::from_utf8_lossy(&log);
        let sasl: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("DEBUG") && l.contains("hdfs_native::security"))
            .take(3)
            .collect();
        assert!(sasl.is_empty(), "{f} logs the HDFS SASL exchange: {sasl:?}");
        haystacks.push((f.to_string(), log));
    }
    assert!(
        contains(&produced.stderr, b"DEBUG"),
        "produce logged no debug line"
    );
    let mut leaks = Vec::new();
    for (what, needle) in secrets(&dir, &session) {
        for (where_, hay) in &haystacks {
            if contains(hay, &needle) {
                leaks.push(format!("{what} in {where_}"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked: {leaks:?}");
}
