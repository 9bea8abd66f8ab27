//! deploy/kubernetes, checked offline: both overlays render (kustomize), every object passes
//! the Kubernetes and Prometheus Operator schemas, unknown fields included
//! (`deploy/kubernetes/validate.sh`, which fails on a broken manifest: checked below), and
//! explicit rules tie the manifests to the
//! binaries and the documented figures: flags and variables exist, probes hit the real
//! endpoints, Services and budgets select the pods, secrets are files under mounted Secrets,
//! grace periods cover the worker's drain, memory covers the benchmarked peak.
#![allow(clippy::unwrap_used)]

use sawmill_tests::{bin, workspace};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The worker's longest drain on SIGTERM (`worker/src/supervisor.rs`, `DRAIN_TIMEOUT`) plus
/// its Leave (5 s): what terminationGracePeriodSeconds must cover.
fn worker_shutdown_secs() -> u64 {
    let src = std::fs::read_to_string(workspace().join("worker/src/supervisor.rs")).unwrap();
    let line = src
        .lines()
        .find(|l| l.contains("const DRAIN_TIMEOUT: Duration = Duration::from_secs("))
        .expect("DRAIN_TIMEOUT in worker/src/supervisor.rs");
    let n: String = line
        .split("from_secs(")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    n.parse::<u64>().unwrap() + 5
}

/// BENCHMARKS.md: peak RSS of one worker with three partitions (490 - 750 MiB).
const WORKER_PEAK_MIB: u64 = 750;

fn help(binary: &str, args: &[&str]) -> String {
    let out = Command::new(bin(binary))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `validate.sh` on overlays of `root`: Ok(objects per overlay), Err((status, stderr)).
fn validate(root: &Path, overlays: &[&str]) -> Result<Vec<Vec<Value>>, (i32, String)> {
    let out = Command::new(root.join("validate.sh"))
        .args(overlays.iter().map(|o| root.join(o)))
        .env("SAWMILL_K8S_VALIDATOR", workspace().join("tests/k8s"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() {
        return Err((out.status.code().unwrap_or(-1), stderr));
    }
    Ok(String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Vec<Value>>(l).unwrap())
        .collect())
}

/// A copy of deploy/kubernetes with the secure overlay's secret files in place (TLS and token
/// from deploy/certs/gen-certs.sh, stand-ins for the files other administrators hand over).
fn prepared_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(workspace().join("deploy/kubernetes/."))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let secrets = dir.path().join("overlays/secure/secrets");
    let st = Command::new(workspace().join("deploy/certs/gen-certs.sh"))
        .arg(&secrets)
        .status()
        .unwrap();
    assert!(st.success(), "gen-certs.sh failed");
    for f in [
        "kafka-ca.pem",
        "etcd-ca.pem",
        "etcd-client.pem",
        "etcd-client.key",
        "etcd-password",
        "sawmill.keytab",
    ] {
        std::fs::write(secrets.join(f), format!("stand-in {f}\n")).unwrap();
    }
    std::fs::write(
        secrets.join("kafka.properties"),
        "security.protocol=SASL_SSL\nsasl.mechanisms=SCRAM-SHA-512\nsasl.username=sawmill\n\
         sasl.password=stand-in\nssl.ca.location=/etc/sawmill/kafka/ca.crt\n",
    )
    .unwrap();
    dir
}

/// Whether the tools are missing (exit status 2): fatal in CI, a visible skip elsewhere.
fn tools_missing(status: i32, stderr: &str) -> bool {
    if status != 2 {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must validate the Kubernetes manifests: {stderr}"
    );
    eprintln!("SKIPPED: cannot validate deploy/kubernetes here: {stderr}");
    true
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Kubernetes quantities: memory in MiB, CPU in millicores.
fn mib(q: &str) -> u64 {
    if let Some(n) = q.strip_suffix("Gi") {
        n.parse::<u64>().unwrap() * 1024
    } else {
        q.strip_suffix("Mi").unwrap().parse().unwrap()
    }
}

fn millicores(q: &str) -> u64 {
    match q.strip_suffix('m') {
        Some(n) => n.parse().unwrap(),
        None => q.parse::<u64>().unwrap() * 1000,
    }
}

/// Every SAWMILL_* variable a container sets (env and its ConfigMaps), with its value.
fn container_env(objs: &[Value], c: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in c["env"].as_array().into_iter().flatten() {
        let value = match &e["valueFrom"]["configMapKeyRef"] {
            Value::Null => e["value"].as_str().unwrap_or("").to_string(),
            r => find(objs, "ConfigMap", r["name"].as_str().unwrap())["data"]
                [r["key"].as_str().unwrap()]
            .as_str()
            .unwrap()
            .to_string(),
        };
        out.push((e["name"].as_str().unwrap().to_string(), value));
    }
    for from in c["envFrom"].as_array().into_iter().flatten() {
        let cm = find(
            objs,
            "ConfigMap",
            from["configMapRef"]["name"].as_str().unwrap(),
        );
        for (k, v) in cm["data"].as_object().unwrap() {
            out.push((k.clone(), v.as_str().unwrap().to_string()));
        }
    }
    out
}

/// The rules both overlays keep.
fn check_common(objs: &[Value], overlay: &str) {
    let coord = find(objs, "Deployment", "sawmill-coordinator");
    let worker = find(objs, "Deployment", "sawmill-worker");
    assert_eq!(coord["spec"]["replicas"], 2, "{overlay}: leader + standby");
    let serve_help = help("coordinator", &["serve"]);
    let join_help = help("worker", &["join"]);
    for (d, binary_help, first) in [
        (coord, &serve_help, "coordinator"),
        (worker, &join_help, "worker"),
    ] {
        let pod = &d["spec"]["template"]["spec"];
        let name = d["metadata"]["name"].as_str().unwrap();
        // Pod and Services agree on labels; budgets select the same pods.
        let labels = &d["spec"]["template"]["metadata"]["labels"];
        for (k, v) in d["spec"]["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(&labels[k], v, "{overlay}: {name} selector");
        }
        let pdb = find(objs, "PodDisruptionBudget", name);
        assert_eq!(
            pdb["spec"]["selector"]["matchLabels"], d["spec"]["selector"]["matchLabels"],
            "{overlay}: budget of {name}"
        );
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
        assert!(pod["securityContext"]["runAsUser"].as_u64().unwrap() > 0);
        assert_eq!(pod["automountServiceAccountToken"], false);
        let c = &pod["containers"][0];
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(strs(&c["securityContext"]["capabilities"]["drop"]), ["ALL"]);
        let res = &c["resources"];
        for what in ["memory", "cpu"] {
            let (req, lim) = (
                res["requests"][what].as_str().unwrap(),
                res["limits"][what].as_str().unwrap(),
            );
            let (r, l) = if what == "memory" {
                (mib(req), mib(lim))
            } else {
                (millicores(req), millicores(lim))
            };
            assert!(r > 0 && r <= l, "{overlay}: {name} {what} {req} / {lim}");
        }
        // Flags and variables exist in the binary (the args may be wrapped in `sh -c`).
        let args = strs(&c["args"]);
        let cmdline = if args.first().map(String::as_str) == Some("sh") {
            args[2].clone()
        } else {
            args.join(" ")
        };
        assert!(cmdline.contains(first), "{overlay}: {name} runs {cmdline}");
        for flag in cmdline.split_whitespace().filter(|a| a.starts_with("--")) {
            let flag = flag.split('=').next().unwrap();
            assert!(
                binary_help.contains(flag),
                "{overlay}: {name} has no {flag}"
            );
        }
        for (k, _) in container_env(objs, c) {
            if k.starts_with("SAWMILL_") && k != "SAWMILL_LOG" {
                assert!(
                    binary_help.contains(&k),
                    "{overlay}: {name} does not read {k}"
                );
            }
        }
        // Probes: /healthz on the port the process really serves HTTP on.
        let http_port = |port_name: &str| -> u64 {
            c["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == port_name)
                .unwrap()["containerPort"]
                .as_u64()
                .unwrap()
        };
        for probe in ["readinessProbe", "livenessProbe"] {
            let get = &c[probe]["httpGet"];
            assert_eq!(get["path"], "/healthz", "{overlay}: {name} {probe}");
            let port = http_port(get["port"].as_str().unwrap());
            let served = if first == "coordinator" {
                cmdline
                    .split_whitespace()
                    .find_map(|a| a.strip_prefix("--http="))
                    .unwrap()
                    .to_string()
            } else {
                container_env(objs, c)
                    .into_iter()
                    .find(|(k, _)| k == "SAWMILL_METRICS_LISTEN")
                    .unwrap()
                    .1
            };
            assert_eq!(
                served,
                format!("0.0.0.0:{port}"),
                "{overlay}: {name} {probe}"
            );
        }
    }
    // Workers reach every coordinator through the headless Service.
    let wc = &worker["spec"]["template"]["spec"]["containers"][0];
    let addr = container_env(objs, wc)
        .into_iter()
        .find(|(k, _)| k == "SAWMILL_COORDINATOR")
        .unwrap()
        .1;
    let svc = find(objs, "Service", addr.split(':').next().unwrap());
    assert_eq!(svc["spec"]["clusterIP"], "None", "headless");
    assert!(svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["port"].as_u64().unwrap().to_string() == addr.split(':').nth(1).unwrap()));
    // The grace period covers a worker's drain and Leave; memory its benchmarked peak.
    let grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(grace >= worker_shutdown_secs() + 10, "grace {grace}");
    assert!(mib(wc["resources"]["requests"]["memory"].as_str().unwrap()) >= WORKER_PEAK_MIB);
    // The autoscaler drives the worker Deployment from the coordinator's lag metric.
    let hpa = find(objs, "HorizontalPodAutoscaler", "sawmill-worker");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "sawmill-worker");
    let metric = hpa["spec"]["metrics"][0]["external"]["metric"]["name"]
        .as_str()
        .unwrap();
    let adapter = std::fs::read_to_string(
        workspace().join("deploy/kubernetes/monitoring/prometheus-adapter-rules.yaml"),
    )
    .unwrap();
    assert!(
        adapter.contains(&format!("as: {metric}")),
        "adapter serves {metric}"
    );
    let http_api = std::fs::read_to_string(workspace().join("docs/http-api.md")).unwrap();
    assert!(
        adapter.contains("sawmill_coordinator_partition_lag")
            && http_api.contains("`sawmill_coordinator_partition_lag{partition}`"),
        "the adapter reads the documented lag metric"
    );
    // ServiceMonitors select Services that exist, on ports they have.
    for sm in objs.iter().filter(|o| o["kind"] == "ServiceMonitor") {
        let sel = &sm["spec"]["selector"]["matchLabels"];
        let port = &sm["spec"]["endpoints"][0]["port"];
        assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
        let hit = objs.iter().any(|s| {
            s["kind"] == "Service"
                && sel
                    .as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| &s["metadata"]["labels"][k] == v)
                && s["spec"]["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| &p["name"] == port)
        });
        assert!(
            hit,
            "{overlay}: ServiceMonitor {} selects nothing",
            sm["metadata"]["name"]
        );
    }
}

/// The secure overlay: TLS everywhere, every secret a file under a mounted Secret.
fn check_secure(objs: &[Value]) {
    let token = find(objs, "Secret", "sawmill-token");
    let token_b64 = token["data"]["token"].as_str().unwrap().replace('\n', "");
    for name in ["sawmill-coordinator", "sawmill-worker"] {
        let pod = &find(objs, "Deployment", name)["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let text = c.to_string();
        assert!(!text.contains("--http-insecure"), "{name}");
        assert!(!text.contains(&token_b64), "{name}: the token is inlined");
        for (k, v) in container_env(objs, c) {
            let is_path = [
                "_FILE",
                "_CERT",
                "_KEY",
                "_CA",
                "_KEYTAB",
                "KRB5_CONFIG",
                "_CONF_DIR",
            ]
            .iter()
            .any(|s| k.ends_with(s));
            if !is_path {
                continue;
            }
            // Under a read-only mount of a Secret or ConfigMap that holds that key.
            let mount = c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| {
                    v.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap()))
                        || v == m["mountPath"].as_str().unwrap()
                })
                .unwrap_or_else(|| panic!("{name}: {k}={v} is not under a mount"));
            assert_eq!(mount["readOnly"], true, "{name}: {k}");
            let vol = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|vol| vol["name"] == mount["name"])
                .unwrap();
            let key = v
                .strip_prefix(mount["mountPath"].as_str().unwrap())
                .unwrap()
                .trim_start_matches('/');
            let (kind, source) = match (&vol["secret"], &vol["configMap"]) {
                (Value::Null, cm) => ("ConfigMap", cm["name"].as_str().unwrap()),
                (s, _) => ("Secret", s["secretName"].as_str().unwrap()),
            };
            if k.ends_with("_CONF_DIR") {
                assert_eq!(kind, "ConfigMap");
                continue;
            }
            let data = &find(objs, kind, source)["data"];
            assert!(
                data.get(key).is_some(),
                "{name}: {k}={v}: no {key} in {kind} {source}"
            );
            if k.contains("TOKEN")
                || k.contains("PASSWORD")
                || k.ends_with("_KEY")
                || k.ends_with("_KEYTAB")
            {
                assert_eq!(kind, "Secret", "{name}: {k} must come from a Secret");
            }
        }
    }
    let coord = &find(objs, "Deployment", "sawmill-coordinator")["spec"]["template"]["spec"]
        ["containers"][0];
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        assert_eq!(coord[probe]["httpGet"]["scheme"], "HTTPS", "{probe}");
    }
    let sm = find(objs, "ServiceMonitor", "sawmill-coordinator");
    assert_eq!(sm["spec"]["endpoints"][0]["scheme"], "https");
    assert_eq!(
        sm["spec"]["endpoints"][0]["authorization"]["credentials"]["name"],
        "sawmill-token"
    );
}

#[test]
fn kubernetes_manifests_are_valid_and_consistent_with_the_binaries() {
    let copy = prepared_copy();
    let objs = match validate(copy.path(), &["overlays/plain", "overlays/secure"]) {
        Ok(o) => o,
        Err((status, stderr)) if tools_missing(status, &stderr) => return,
        Err((_, stderr)) => panic!("deploy/kubernetes is invalid:\n{stderr}"),
    };
    assert_eq!(objs.len(), 2);
    check_common(&objs[0], "plain");
    check_common(&objs[1], "secure");
    check_secure(&objs[1]);
    // The plain overlay says, explicitly, that its HTTP API is open.
    let plain = find(&objs[0], "Deployment", "sawmill-coordinator");
    assert!(
        strs(&plain["spec"]["template"]["spec"]["containers"][0]["args"])
            .contains(&"--http-insecure".to_string())
    );
}

#[test]
fn the_validation_fails_on_a_broken_manifest() {
    for (what, from, to, expect) in [
        (
            "a port that is not a number",
            "containerPort: 9100",
            "containerPort: metrics-port",
            "containerPort must be integer",
        ),
        (
            "a container without a name",
            "- name: worker\n          image: sawmill",
            "- image: sawmill",
            "must have required property name",
        ),
        (
            "a misspelt field",
            "          image: sawmill\n",
            "          image: sawmill\n          imagePullPolicyy: Always\n",
            "containers[0].imagePullPolicyy: unknown field",
        ),
        (
            "an unknown kind",
            "kind: HorizontalPodAutoscaler",
            "kind: HorizontalPodScaler",
            "unknown kind HorizontalPodScaler",
        ),
    ] {
        let copy = prepared_copy();
        let path = copy.path().join(if what == "an unknown kind" {
            "base/autoscaling.yaml"
        } else {
            "base/worker.yaml"
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(from),
            "{what}: {from:?} not in {}",
            path.display()
        );
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        match validate(copy.path(), &["overlays/plain"]) {
            Ok(_) => panic!("{what}: accepted"),
            Err((status, stderr)) if tools_missing(status, &stderr) => return,
            Err((status, stderr)) => {
                assert_eq!(status, 1, "{what}: {stderr}");
                assert!(stderr.contains(expect), "{what}: {stderr}");
            }
        }
    }
}
