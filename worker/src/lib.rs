//! The Sawmill worker: consumes Kafka partitions, parses and pre-aggregates their lines, and
//! commits Parquet shards exactly once (staged on storage, committed in etcd, published by rename).
//!
//! Module map:
//! - [`cli`]: the `worker` command's arguments and entry point.
//! - [`context`]: what every actor shares: settings, storage, etcd, Kafka metadata, metrics.
//! - [`kafka`]: Kafka client settings and context, topic checks.
//! - [`messages`]: everything that travels between the consumer thread, the partition actors,
//!   the supervisor and its driver: batches, credits, actor messages, worker events.
//! - [`consumer`]: the Kafka consumer thread, explicit assignment, a queue per partition,
//!   credit-based flow control.
//! - [`supervisor`]: the root actor: owned partitions, restarts with backoff, concurrent drains.
//! - [`partition`]: one actor per partition: recover, parse, cut shards, commit.
//! - [`commit`]: the commit protocol's I/O steps and partition recovery.
//! - [`standalone`]: `worker run`, driven directly with its partitions.
//! - [`session`]: `worker join`, driven by a coordinator over gRPC (heartbeats, rejoin, leave).
//! - [`metrics`]: every Prometheus metric of the worker.
//! - [`metrics_server`]: `/metrics` and `/healthz` over HTTP.
//! - [`error`]: the crate's error enum.
//!
//! Dependencies between these modules form no cycle (checked by a test below): `messages`
//! depends on none of them, and `consumer`, `partition` and `supervisor` talk only through it.

pub mod cli;
pub mod commit;
pub mod consumer;
pub mod context;
pub mod error;
pub mod kafka;
pub mod messages;
pub mod metrics;
pub mod metrics_server;
pub mod partition;
pub mod session;
pub mod standalone;
pub mod supervisor;

pub use error::{Result, WorkerError};

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    /// The crate's top-level modules and the ones each refers to (`crate::x` anywhere in its
    /// files, submodules included).
    fn module_edges() -> BTreeMap<String, BTreeSet<String>> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut texts: BTreeMap<String, String> = BTreeMap::new();
        let mut visit = vec![src.clone()];
        while let Some(dir) = visit.pop() {
            for entry in std::fs::read_dir(&dir).expect("the crate's source folder") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    visit.push(path);
                    continue;
                }
                let relative = path.strip_prefix(&src).expect("under src");
                let top = relative.components().next().expect("a file name");
                let top = top.as_os_str().to_string_lossy();
                let module = top.trim_end_matches(".rs").to_string();
                let text = std::fs::read_to_string(&path).expect("a source file");
                texts.entry(module).or_default().push_str(&text);
            }
        }
        let modules: BTreeSet<String> = texts.keys().cloned().collect();
        texts
            .iter()
            .map(|(module, text)| {
                let uses = modules
                    .iter()
                    .filter(|other| *other != module)
                    .filter(|other| {
                        [";", "::", ",", "}", ")", "]", " "]
                            .iter()
                            .any(|end| text.contains(&format!("crate::{other}{end}")))
                    })
                    .cloned()
                    .collect();
                (module.clone(), uses)
            })
            .collect()
    }

    #[test]
    fn modules_have_no_import_cycles() {
        let edges = module_edges();
        // Depth-first search from every module; a module met again on the current path closes
        // a cycle.
        fn visit<'a>(
            module: &'a str,
            edges: &'a BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) {
            if done.contains(module) {
                return;
            }
            if let Some(at) = path.iter().position(|m| *m == module) {
                panic!("import cycle: {} -> {module}", path[at..].join(" -> "));
            }
            path.push(module);
            for next in edges.get(module).into_iter().flatten() {
                visit(next, edges, path, done);
            }
            path.pop();
            done.insert(module);
        }
        let mut done = BTreeSet::new();
        for module in edges.keys() {
            visit(module, &edges, &mut Vec::new(), &mut done);
        }
        assert!(edges["messages"].is_empty(), "{:?}", edges["messages"]);
    }
}
