//! Fixtures of the tests against the secure services profile (`deploy/local/services-secure
//! up`): its variables, and commands that carry them.

use crate::workspace;
use std::collections::BTreeMap;
use std::process::Command;

/// The secure profile's variables (`deploy/local/services-secure env`), or a panic saying how
/// to start it.
pub fn secure_env() -> BTreeMap<String, String> {
    let script = workspace().join("deploy/local/services-secure");
    let out = Command::new(&script).arg("env").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env: BTreeMap<String, String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect();
    let status = Command::new(&script).arg("status").output().unwrap();
    assert!(
        status.status.success(),
        "the secure services are not running: start them with deploy/local/services-secure up \
         (scripts/test.sh does)\n{}",
        String::from_utf8_lossy(&status.stdout)
    );
    env
}

/// A command with every variable of the secure profile set.
pub fn secure<'a>(cmd: &'a mut Command, env: &BTreeMap<String, String>) -> &'a mut Command {
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}
