//! Fail points inside the commit protocol, for the chaos tests (`tests/tests/chaos_failpoints.rs`).
//!
//! They exist only in builds with the `failpoints` feature (`sawmill-tests/failpoints`, which
//! `scripts/test.sh` and `scripts/chaos.sh` turn on): without it [`check`] is an empty inline
//! function and the `fail` crate is not even linked, so `cargo build --workspace --bins` and
//! release builds carry none. Armed with `fail::cfg(name, "1*return")` in-process (or the
//! `FAILPOINTS` variable, for a process that calls `fail::FailScenario::setup`).
//!
//! An armed point returns a *permanent* error: no retry loop hides it, so the partition fails
//! exactly where a crash at that step would leave it, and its restart must repair the state.

use crate::error::Result;

/// After a shard's files are staged, before its etcd transaction.
pub const STAGED_BEFORE_TXN: &str = "commit::staged_before_txn";
/// After the etcd transaction applied, before any file is published.
pub const COMMITTED_BEFORE_PUBLISH: &str = "commit::committed_before_publish";
/// Before each file's publishing rename (arm it `1*off->1*return` to stop half-way).
pub const PUBLISH_FILE: &str = "commit::publish_file";
/// The etcd commit transaction applied, but its answer is lost (the caller sees an error).
pub const COMMIT_ANSWER_LOST: &str = "etcd::commit_answer_lost";

/// `Err` when a test armed the fail point `name`, `Ok` otherwise (always, without the feature).
#[inline]
pub fn check(name: &str) -> Result<()> {
    #[cfg(feature = "failpoints")]
    fail::fail_point!(name, |arg: Option<String>| {
        armed::record(name);
        Err(crate::error::Error::Config(format!(
            "failpoint {name} fired{} (a test injected this fault)",
            arg.map(|a| format!(": {a}")).unwrap_or_default()
        )))
    });
    let _ = name;
    Ok(())
}

/// Arms the fail points listed in the `FAILPOINTS` variable (`name=actions;name=actions`, the
/// `fail` crate's syntax), so a test can inject faults into a worker *process* built with the
/// feature. Without the feature a set variable is only warned about: nothing can fire.
pub fn arm_from_env() -> Result<()> {
    let Ok(list) = std::env::var("FAILPOINTS") else {
        return Ok(());
    };
    #[cfg(feature = "failpoints")]
    for item in list.split(';').filter(|i| !i.trim().is_empty()) {
        let (name, actions) = item.split_once('=').ok_or_else(|| {
            crate::error::Error::Config(format!(
                "FAILPOINTS: {item:?} is not name=actions (e.g. {COMMITTED_BEFORE_PUBLISH}=1*return)"
            ))
        })?;
        armed::arm(name.trim(), actions.trim()).map_err(crate::error::Error::Config)?;
        tracing::warn!(
            failpoint = name.trim(),
            actions = actions.trim(),
            "fail point armed"
        );
    }
    #[cfg(not(feature = "failpoints"))]
    tracing::warn!(
        failpoints = %list,
        "FAILPOINTS is set but this build has no fail points (build with sawmill-tests/failpoints)"
    );
    Ok(())
}

/// When each fail point fired, so a test can assert its fault happened and time the recovery.
#[cfg(feature = "failpoints")]
pub mod armed {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Instant;

    static FIRED: Mutex<BTreeMap<String, Vec<Instant>>> = Mutex::new(BTreeMap::new());

    pub(super) fn record(name: &str) {
        if let Ok(mut fired) = FIRED.lock() {
            fired
                .entry(name.to_string())
                .or_default()
                .push(Instant::now());
        }
    }

    /// When `name` fired, oldest first, since the last [`reset`].
    pub fn fired(name: &str) -> Vec<Instant> {
        FIRED
            .lock()
            .map(|f| f.get(name).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Disarms every fail point and forgets when they fired.
    pub fn reset() {
        for (name, _) in fail::list() {
            fail::remove(name);
        }
        if let Ok(mut fired) = FIRED.lock() {
            fired.clear();
        }
    }

    /// Arms `name` with `actions` (the `fail` crate's syntax, e.g. `1*return`).
    pub fn arm(name: &str, actions: &str) -> Result<(), String> {
        fail::cfg(name, actions)
            .map_err(|e| format!("bad fail point actions {actions:?} for {name}: {e}"))
    }
}
