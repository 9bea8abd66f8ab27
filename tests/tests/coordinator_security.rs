//! The coordinator's own doors, secured: gRPC with TLS, mutual TLS and an allow-list of worker
//! identities, a worker id bound to its identity, session secrets, the shared token; HTTP with
//! TLS and a bearer token. A coordinator runs in-process (plain Kafka and etcd behind it); the
//! certificates are the secure profile's (`deploy/local/services-secure up` makes them).
#![allow(clippy::unwrap_used)]

use sawmill_coordinator::{serve, ServeConfig, ServeHandle};
use sawmill_proto::v1::coordinator_client::CoordinatorClient;
use sawmill_proto::v1::{HeartbeatRequest, JoinRequest, StatusRequest};
use sawmill_tests::{service, workspace};
use std::path::PathBuf;
use std::process::Command;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::Code;

/// The secure profile's certificate directory.
fn certs() -> PathBuf {
    let out = Command::new(workspace().join("deploy/local/services-secure"))
        .arg("env")
        .output()
        .unwrap();
    let env = String::from_utf8(out.stdout).unwrap();
    let dir = env
        .lines()
        .find_map(|l| l.strip_prefix("export SAWMILL_SECURE_DIR="))
        .expect("SAWMILL_SECURE_DIR in services-secure env")
        .trim_matches('\'')
        .to_string();
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("ca.pem").exists(),
        "no certificates in {}: run deploy/local/services-secure up (scripts/test.sh does)",
        dir.display()
    );
    dir
}

async fn start(mut cfg: ServeConfig) -> (ServeHandle, tokio::sync::oneshot::Sender<()>) {
    let pipeline = sawmill_tests::unique("it-sec");
    cfg.listen = "127.0.0.1:0".into();
    cfg.http = "127.0.0.1:0".into();
    cfg.pipeline.bootstrap_servers = service("SAWMILL_KAFKA");
    cfg.pipeline.etcd = service("SAWMILL_ETCD");
    cfg.pipeline.topic = pipeline;
    let out = tempfile::tempdir().unwrap();
    cfg.pipeline.output = out.keep().display().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = serve(cfg, async move {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    (handle, stop)
}

/// A TLS channel trusting the profile's CA, with `who`'s client certificate if given.
async fn tls_client(
    addr: std::net::SocketAddr,
    dir: &std::path::Path,
    who: Option<&str>,
) -> Result<CoordinatorClient<Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(
        std::fs::read(dir.join("ca.pem")).unwrap(),
    ));
    if let Some(who) = who {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(dir.join(format!("{who}.pem"))).unwrap(),
            std::fs::read(dir.join(format!("{who}.key"))).unwrap(),
        ));
    }
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await?;
    Ok(CoordinatorClient::new(channel))
}

fn join(id: &str) -> JoinRequest {
    JoinRequest {
        worker_id: id.into(),
        version: sawmill_core::VERSION.into(),
        ..Default::default()
    }
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka and etcd, and the secure profile's certificates: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_allowed_workers_only_and_binds_ids_to_identities() {
    let dir = certs();
    let cfg = ServeConfig {
        tls_cert: Some(dir.join("server.pem")),
        tls_key: Some(dir.join("server.key")),
        tls_client_ca: Some(dir.join("ca.pem")),
        allowed_workers: vec!["worker-*".into()],
        ..Default::default()
    };
    let (handle, stop) = start(cfg).await;
    let addr = handle.grpc;

    let mut a = tls_client(addr, &dir, Some("worker-a")).await.unwrap();
    let ja = a.join(join("w1")).await.unwrap().into_inner();
    assert_eq!(ja.session_secret.len(), 64);
    let hb = |secret: &str| HeartbeatRequest {
        worker_id: "w1".into(),
        generation: ja.generation,
        session_secret: secret.into(),
        ..Default::default()
    };
    a.heartbeat(hb(&ja.session_secret)).await.unwrap();
    let e = a.heartbeat(hb("0".repeat(64).as_str())).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // Another allowed identity cannot take over the live id, but may join as itself.
    let mut b = tls_client(addr, &dir, Some("worker-b")).await.unwrap();
    let e = b.join(join("w1")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("bound to worker-a"), "{}", e.message());
    b.join(join("w2")).await.unwrap();

    // A certificate the CA signed but outside the allow-list may read the status only.
    let mut other = tls_client(addr, &dir, Some("coordinator")).await.unwrap();
    let e = other.join(join("w3")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    other.status(StatusRequest {}).await.unwrap();
    // The status shows no secret.
    let st = other.status(StatusRequest {}).await.unwrap().into_inner();
    assert!(!st.json.contains(&ja.session_secret));

    // No certificate, or one from a CA the coordinator does not trust: no call gets through.
    for who in [None, Some("outsider")] {
        match tls_client(addr, &dir, who).await {
            Err(_) => {}
            Ok(mut c) => {
                let e = c.join(join("w4")).await.unwrap_err();
                assert!(
                    matches!(
                        e.code(),
                        Code::Unavailable | Code::Unknown | Code::Unauthenticated | Code::Cancelled
                    ),
                    "{who:?}: {e:?}"
                );
            }
        }
    }
    // Plaintext to the TLS port fails too.
    let plain = CoordinatorClient::connect(format!("http://{addr}")).await;
    if let Ok(mut c) = plain {
        assert!(c.join(join("w5")).await.is_err());
    }
    let _ = stop.send(());
    handle.wait().await.unwrap();
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/stderr", "-w", "%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka and etcd, and the secure profile's certificates: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_guards_grpc_and_https_and_health_stays_open() {
    let dir = certs();
    let tokens = tempfile::tempdir().unwrap();
    let token_file = tokens.path().join("token");
    std::fs::write(&token_file, "t0ken-for-tests\n").unwrap();
    let cfg = ServeConfig {
        tls_cert: Some(dir.join("server.pem")),
        tls_key: Some(dir.join("server.key")),
        token_file: Some(token_file),
        ..Default::default()
    };
    let (handle, stop) = start(cfg).await;

    let mut c = tls_client(handle.grpc, &dir, None).await.unwrap();
    let e = c.join(join("t1")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(!e.message().contains("t0ken"), "{}", e.message());
    let mut req = tonic::Request::new(join("t1"));
    req.metadata_mut()
        .insert("authorization", "Bearer t0ken-for-tests".parse().unwrap());
    c.join(req).await.unwrap();

    let ca = dir.join("ca.pem").display().to_string();
    let base = format!("https://{}", handle.http);
    let http = tokio::task::spawn_blocking(move || {
        let no = curl(&["--cacert", &ca, &format!("{base}/api/v1/analytics")]);
        let wrong = curl(&[
            "--cacert",
            &ca,
            "-H",
            "Authorization: Bearer nope",
            &format!("{base}/api/v1/status"),
        ]);
        let yes = curl(&[
            "--cacert",
            &ca,
            "-H",
            "Authorization: Bearer t0ken-for-tests",
            &format!("{base}/api/v1/status"),
        ]);
        let health = curl(&["--cacert", &ca, &format!("{base}/healthz")]);
        let metrics = curl(&["--cacert", &ca, &format!("{base}/metrics")]);
        let plain = curl(&[&format!("http://{}/healthz", &base["https://".len()..])]);
        (no, wrong, yes, health, metrics, plain)
    })
    .await
    .unwrap();
    let (no, wrong, yes, health, metrics, plain) = http;
    assert_eq!(no.0, "401", "{no:?}");
    assert_eq!(wrong.0, "401", "{wrong:?}");
    assert_eq!(yes.0, "200", "{yes:?}");
    assert!(yes.1.contains("\"workers\""), "{yes:?}");
    assert_eq!(health.0, "200", "{health:?}");
    assert_eq!(
        metrics.0, "401",
        "metrics are guarded unless --metrics-open: {metrics:?}"
    );
    assert_ne!(plain.0, "200", "plaintext HTTP to the TLS port: {plain:?}");
    let _ = stop.send(());
    handle.wait().await.unwrap();
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_http_address_without_tls_and_token_is_refused_at_start() {
    let mut cfg = ServeConfig {
        listen: "127.0.0.1:0".into(),
        http: "0.0.0.0:0".into(),
        ..Default::default()
    };
    cfg.pipeline.bootstrap_servers = service("SAWMILL_KAFKA");
    cfg.pipeline.etcd = service("SAWMILL_ETCD");
    cfg.pipeline.topic = sawmill_tests::unique("it-sec-public");
    let out = tempfile::tempdir().unwrap();
    cfg.pipeline.output = out.path().display().to_string();
    let e = serve(cfg, std::future::pending())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("non-loopback") && e.contains("--token-file"),
        "{e}"
    );
}
