//! Fixtures of the exactly-once checker's tests and the chaos tests: tagged input, `sawmill
//! verify` as a process, a private services instance for fault injection, and sampling of
//! processes' memory.

use crate::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Writes `lines` generated lines, each tagged `sawmill-seq=<run>.<key>.<n>` over `keys` keys,
/// with a share of malformed (rejected) lines; returns the rejected count.
pub fn generate_tagged(path: &Path, lines: u64, seed: u64, run: u64, keys: u32) -> u64 {
    use sawmill_core::generate::{generate, seq::SeqConfig, GenerateConfig};
    let cfg = GenerateConfig {
        malformed_fraction: 0.01,
        combined_fraction: 0.2,
        seq: Some(SeqConfig { run, keys }),
        ..GenerateConfig::new(lines, seed)
    };
    let stats = generate(&cfg, std::fs::File::create(path).unwrap()).unwrap();
    assert_eq!(stats.lines, lines);
    stats.malformed
}

/// `sawmill verify --json` of `topic` (etcd subtree `pipeline`) against `root`: whether it
/// exited 0, and its report.
pub fn sawmill_verify(s: &Services, topic: &str, pipeline: &str, root: &str) -> (bool, Value) {
    sawmill_verify_with(s, topic, pipeline, root, &[])
}

/// [`sawmill_verify`] with more environment (pipeline settings such as the analytics caps).
pub fn sawmill_verify_with(
    s: &Services,
    topic: &str,
    pipeline: &str,
    root: &str,
    env: &[(&str, &str)],
) -> (bool, Value) {
    let out = Command::new(bin("sawmill"))
        .args(["verify", "--json", "--bootstrap-servers", &s.kafka])
        .args(["--etcd", &s.etcd, "--topic", topic, "--pipeline", pipeline])
        .args(["--output", root])
        .env("SAWMILL_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("run sawmill verify");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "sawmill verify printed no JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "sawmill verify exited {code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        report["passed"].as_bool(),
        Some(code == Some(0)),
        "the exit status says what the report says"
    );
    (code == Some(0), report)
}

/// The report's entry for `partition`.
pub fn partition_report(report: &Value, partition: i64) -> &Value {
    report["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partition"].as_i64() == Some(partition))
        .unwrap_or_else(|| panic!("no partition {partition} in {report}"))
}

/// Resident memory of a process in bytes (Linux `/proc`), or `None` once it has exited.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// A private `deploy/local/services` instance (its own state directory and ports), so faults
/// never touch the shared services; `down` (data wiped) when dropped.
pub struct PrivateServices {
    dir: PathBuf,
    offset: u16,
    pub services: Services,
}

impl PrivateServices {
    fn script(&self) -> Command {
        let mut cmd = Command::new(workspace().join("deploy/local/services"));
        cmd.env("SAWMILL_SERVICES_DIR", &self.dir)
            .env("SAWMILL_SERVICES_PORT_OFFSET", self.offset.to_string());
        cmd
    }

    /// Starts `which` (e.g. `["etcd", "kafka"]`) with ports moved by `offset` (100..=900; pick
    /// one no other test uses at the same time, `SAWMILL_CHAOS_PORT_OFFSET` overrides it).
    pub fn up(which: &[&str], offset: u16) -> PrivateServices {
        let offset = std::env::var("SAWMILL_CHAOS_PORT_OFFSET")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(offset);
        let mut me = PrivateServices {
            dir: PathBuf::from(format!("/var/tmp/sawmill-chaos-{offset}")),
            offset,
            services: Services {
                kafka: String::new(),
                hdfs: String::new(),
                etcd: String::new(),
            },
        };
        let st = me.script().arg("up").args(which).status().unwrap();
        assert!(st.success(), "private services up {which:?} failed");
        let env = me.script().arg("env").output().unwrap();
        let env = String::from_utf8_lossy(&env.stdout).to_string();
        let var = |name: &str| {
            env.lines()
                .filter_map(|l| l.trim_start_matches("export ").split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.trim_matches(['"', '\'']).to_string())
                .unwrap_or_default()
        };
        me.services = Services {
            kafka: var("SAWMILL_KAFKA"),
            hdfs: var("SAWMILL_HDFS"),
            etcd: var("SAWMILL_ETCD"),
        };
        assert!(
            !me.services.kafka.is_empty() && !me.services.etcd.is_empty(),
            "no addresses in `services env`: {env}"
        );
        me
    }

    /// `services ARGS...` on this instance (e.g. `hadoop-class CLASS ...`); its output.
    pub fn tool(&self, args: &[&str]) -> std::process::Output {
        self.script().args(args).output().unwrap()
    }

    /// `services <verb> <proc>` on this instance (stop, start, restart, pause, resume).
    pub fn fault(&self, verb: &str, proc: &str) {
        let st = self.script().args([verb, proc]).status().unwrap();
        assert!(st.success(), "services {verb} {proc} failed");
    }
}

impl Drop for PrivateServices {
    fn drop(&mut self) {
        let _ = self.script().arg("down").status();
    }
}
