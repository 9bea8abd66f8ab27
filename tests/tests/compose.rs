//! docker-compose.yml and the Dockerfile are for users with a Docker engine; here they are
//! validated statically: the YAML parses, references resolve, and every command and flag it
//! uses exists in the binaries we build.

#![allow(clippy::unwrap_used)]

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

/// A YAML file as JSON (PyYAML; anchors and merge keys resolved).
fn yaml(path: &str) -> serde_json::Value {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(workspace().join(path))
        .output()
        .expect("python3 with PyYAML (scripts/setup.sh --test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// deploy/compose/secure.compose.yml, the secured override of docker-compose.yml: its flags
/// and variables exist, every path it names is a mounted secret, the secret files are the ones
/// deploy/certs/gen-certs.sh makes, and the certificates they make verify for these names.
#[test]
fn secure_compose_override_is_consistent_with_the_binaries_and_the_certificates() {
    let doc = yaml("deploy/compose/secure.compose.yml");
    let base = yaml("docker-compose.yml");
    let secrets = doc["secrets"].as_object().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let st = Command::new(workspace().join("deploy/certs/gen-certs.sh"))
        .arg(certs.path())
        .status()
        .unwrap();
    assert!(st.success(), "gen-certs.sh failed");
    let serve_help = help("coordinator", &["serve"]);
    let join_help = help("worker", &["join"]);
    let status_help = help("sawmill", &["status"]);
    for (name, helptext) in [
        ("coordinator", &serve_help),
        ("worker", &join_help),
        ("sawmill", &status_help),
    ] {
        let svc = &doc["services"][name];
        assert!(
            base["services"].get(name).is_some(),
            "{name} overrides no service of docker-compose.yml"
        );
        let mounted: Vec<&str> = svc["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        for (key, value) in svc["environment"].as_object().unwrap() {
            assert!(
                helptext.contains(key.as_str()),
                "{name} does not read {key}"
            );
            if let Some(secret) = value.as_str().unwrap().strip_prefix("/run/secrets/") {
                assert!(
                    mounted.contains(&secret),
                    "{name}: {key} names unmounted {secret}"
                );
            }
        }
        for secret in &mounted {
            let file = secrets[*secret]["file"].as_str().unwrap();
            let made = file
                .strip_prefix("./deploy/compose/secrets/")
                .unwrap_or_else(|| panic!("{secret}: {file} is not under deploy/compose/secrets"));
            assert!(
                certs.path().join(made).exists(),
                "gen-certs.sh does not make {made}"
            );
        }
    }
    // No secret is a flag value; the HTTP API is not opened without TLS and token.
    let coord: Vec<String> =
        serde_json::from_value(doc["services"]["coordinator"]["command"].clone()).unwrap();
    assert_eq!(&coord[..2], ["coordinator", "serve"]);
    for flag in coord.iter().filter(|a| a.starts_with("--")) {
        assert!(
            serve_help.contains(flag.as_str()),
            "coordinator serve has no {flag}"
        );
    }
    assert!(!coord.iter().any(|a| a == "--http-insecure"));
    // Workers dial coordinator:7000 (docker-compose.yml): the server certificate names it, and
    // the worker certificate matches the allow-list.
    let allowed = doc["services"]["coordinator"]["environment"]["SAWMILL_ALLOWED_WORKERS"]
        .as_str()
        .unwrap();
    let openssl = |args: &[&str]| -> String {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(certs.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    openssl(&[
        "verify",
        "-CAfile",
        "ca.pem",
        "coordinator.pem",
        "worker.pem",
        "status.pem",
    ]);
    let san = openssl(&[
        "x509",
        "-in",
        "coordinator.pem",
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(san.contains("DNS:coordinator,"), "{san}");
    let subject = openssl(&["x509", "-in", "worker.pem", "-noout", "-subject"]);
    assert!(subject.contains(&format!("CN = {allowed}")), "{subject}");
    let subject = openssl(&["x509", "-in", "status.pem", "-noout", "-subject"]);
    assert!(
        !subject.contains(&format!("CN = {allowed}")),
        "status must not act as a worker"
    );
}
