//! docker-compose.yml and the Dockerfile are for users with a Docker engine; here they are
//! validated statically: the YAML parses, references resolve, and every command and flag it
//! uses exists in the binaries we build.

use sawmill_tests::{bin, workspace};
use std::process::Command;

fn help(binary: &str, args: &[&str]) -> String {
    let out = Command::new(bin(binary))
        .args(args)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(
        out.status.success(),
        "{binary} {args:?} --help failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The JSON summary of `tests/py/check_compose.py` for a compose file, with no errors.
fn checked(compose_file: &str) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(workspace().join("tests/py/check_compose.py"))
        .arg(workspace().join(compose_file))
        .output()
        .expect("python3 with PyYAML (scripts/setup.sh --test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        doc["errors"],
        serde_json::json!([]),
        "{compose_file} errors"
    );
    doc
}

/// Every `SAWMILL_*` variable of a service's environment is one that `help` documents.
fn env_is_read(svc: &serde_json::Value, help: &str, what: &str) {
    let env = svc["env"].as_object().expect("environment");
    for key in env.keys().filter(|k| *k != "SAWMILL_LOG") {
        assert!(help.contains(key.as_str()), "{what} does not read {key}");
    }
}

#[test]
fn compose_file_is_consistent_with_the_binaries() {
    let doc = checked("docker-compose.yml");
    let svc = &doc["services"];
    for name in [
        "etcd",
        "kafka",
        "namenode",
        "datanode",
        "coordinator",
        "worker",
    ] {
        assert!(svc.get(name).is_some(), "service {name} missing");
    }
    // The worker needs nothing but the coordinator's address, and scales horizontally.
    let worker: Vec<String> = serde_json::from_value(svc["worker"]["command"].clone()).unwrap();
    assert_eq!(
        worker,
        ["worker", "join", "--coordinator", "coordinator:7000"]
    );
    assert!(svc["worker"]["replicas"].as_u64().unwrap_or(0) >= 2);
    assert!(help("worker", &["join"]).contains("--coordinator"));
    let coord: Vec<String> = serde_json::from_value(svc["coordinator"]["command"].clone()).unwrap();
    assert_eq!(&coord[..2], ["coordinator", "serve"]);
    let serve_help = help("coordinator", &["serve"]);
    for flag in coord.iter().filter(|a| a.starts_with("--")) {
        assert!(
            serve_help.contains(flag.as_str()),
            "coordinator serve has no {flag}"
        );
    }
    // Settings passed by environment are ones the binaries read.
    env_is_read(&svc["coordinator"], &serve_help, "coordinator serve");
    let dockerfile = std::fs::read_to_string(
        workspace().join(svc["coordinator"]["dockerfile"].as_str().unwrap()),
    )
    .unwrap();
    for b in ["coordinator", "worker", "sawmill"] {
        assert!(
            dockerfile.contains(&format!("target/release/{b}")),
            "Dockerfile does not ship {b}"
        );
    }
}

/// deploy/container/fleet.compose.yml (the fleet of locally built images that
/// deploy/container/fleet-test.sh runs) asks the binaries only for what they have.
#[test]
fn fleet_compose_file_is_consistent_with_the_binaries() {
    let doc = checked("deploy/container/fleet.compose.yml");
    let svc = &doc["services"];
    for name in [
        "etcd",
        "kafka",
        "namenode",
        "datanode",
        "coordinator",
        "worker",
    ] {
        assert!(svc.get(name).is_some(), "service {name} missing");
    }
    let worker: Vec<String> = serde_json::from_value(svc["worker"]["command"].clone()).unwrap();
    assert_eq!(
        worker,
        ["worker", "join", "--coordinator", "coordinator:7000"]
    );
    env_is_read(&svc["worker"], &help("worker", &["join"]), "worker join");
    let coord: Vec<String> = serde_json::from_value(svc["coordinator"]["command"].clone()).unwrap();
    assert_eq!(&coord[..2], ["coordinator", "serve"]);
    let serve_help = help("coordinator", &["serve"]);
    for flag in coord.iter().filter(|a| a.starts_with("--")) {
        assert!(
            serve_help.contains(flag.as_str()),
            "coordinator serve has no {flag}"
        );
    }
    env_is_read(&svc["coordinator"], &serve_help, "coordinator serve");
    // The image is built from the project's Dockerfile, from the binaries built here.
    let dockerfile = std::fs::read_to_string(
        workspace().join(svc["coordinator"]["dockerfile"].as_str().unwrap()),
    )
    .unwrap();
    assert!(dockerfile.contains("AS runtime-prebuilt"));
    // The fleet test drives the file by these names; the network stays internal.
    let text =
        std::fs::read_to_string(workspace().join("deploy/container/fleet.compose.yml")).unwrap();
    for needle in [
        "${SAWMILL_IMAGE:-localhost/sawmill:latest}",
        "${SAWMILL_FLEET_NETWORK:-sawmill-fleet}",
        "internal: true",
    ] {
        assert!(text.contains(needle), "fleet.compose.yml lacks {needle}");
    }
}
