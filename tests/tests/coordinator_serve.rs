//! `serve` in-process: binds port 0, reports its addresses, answers gRPC and HTTP, and shuts
//! down cleanly. Needs etcd (`SAWMILL_ETCD`) and Kafka (`SAWMILL_KAFKA`).

use sawmill_common::etcd::Checkpoints;
use sawmill_coordinator::{serve, ServeConfig};
use sawmill_proto::v1::coordinator_client::CoordinatorClient;
use sawmill_proto::v1::{HeartbeatRequest, JoinRequest, StatusRequest};
use sawmill_tests::service;
use std::io::{Read, Write};

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("the coordinator's HTTP port");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send a request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the answer");
    out
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_in_process_on_free_ports() {
    let (etcd, kafka) = (service("SAWMILL_ETCD"), service("SAWMILL_KAFKA"));
    let out = tempfile::tempdir().unwrap();
    let pipeline = format!("it-serve-{}", std::process::id());
    let mut cfg = ServeConfig {
        listen: "127.0.0.1:0".into(),
        http: "127.0.0.1:0".into(),
        ..Default::default()
    };
    cfg.pipeline.bootstrap_servers = kafka;
    cfg.pipeline.etcd = etcd.clone();
    cfg.pipeline.topic = pipeline.clone();
    cfg.pipeline.output = out.path().display().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = serve(cfg, async move {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    assert_ne!(handle.grpc.port(), 0);
    assert_ne!(handle.http.port(), 0);

    let mut c = CoordinatorClient::connect(format!("http://{}", handle.grpc))
        .await
        .unwrap();
    let j = c
        .join(JoinRequest {
            worker_id: "solo".into(),
            version: sawmill_core::VERSION.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    c.heartbeat(HeartbeatRequest {
        worker_id: "solo".into(),
        generation: j.generation,
        session_secret: j.session_secret.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let response = c.status(StatusRequest {}).await.unwrap().into_inner();
    let doc = serde_json::to_value(response.status.expect("a typed status")).unwrap();
    // The deprecated JSON text still says the same, for clients of earlier releases.
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&response.json).unwrap(),
        doc
    );
    assert_eq!(doc["workers"][0]["id"], "solo");
    assert_eq!(doc["generation"].as_u64(), Some(j.generation));

    let http = handle.http;
    let (health, status, metrics) = tokio::task::spawn_blocking(move || {
        (
            get(http, "/healthz"),
            get(http, "/api/v1/status"),
            get(http, "/metrics"),
        )
    })
    .await
    .unwrap();
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    assert!(status.contains("\"id\":\"solo\""), "{status}");
    assert!(
        metrics.contains("sawmill_coordinator_workers_alive 1"),
        "{metrics}"
    );

    stop.send(()).unwrap();
    handle.wait().await.unwrap();
    let mut cp = Checkpoints::connect(&etcd, &pipeline).await.unwrap();
    cp.delete_all().await.unwrap();
}
