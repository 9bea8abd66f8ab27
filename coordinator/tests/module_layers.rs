//! The coordinator's modules form layers: no module uses another that uses it back, directly or
//! through others. Reads `src/*.rs` and fails with the cycle if there is one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module → the crate modules its non-test code names (`crate::x`), doc comments aside.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeSet::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_some_and(|e| e == "rs") && !matches!(name.as_str(), "lib" | "main") {
            modules.insert(name.clone());
            files.push((name, path));
        }
    }
    let mut graph = BTreeMap::new();
    for (name, path) in files {
        let text = std::fs::read_to_string(path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut uses = BTreeSet::new();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let used: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if modules.contains(&used) && used != name {
                    uses.insert(used);
                }
            }
        }
        graph.insert(name, uses);
    }
    graph
}

fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    module: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|m| m == module) {
        let mut cycle = path[at..].to_vec();
        cycle.push(module.to_string());
        return Some(cycle);
    }
    if done.contains(module) {
        return None;
    }
    path.push(module.to_string());
    for used in graph.get(module).into_iter().flatten() {
        if let Some(cycle) = cycle_from(graph, used, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(module.to_string());
    None
}

#[test]
fn modules_have_no_import_cycles() {
    let graph = edges();
    assert!(graph.contains_key("cluster") && graph["topic"].contains("cluster"));
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}\nedges: {graph:#?}", cycle.join(" → "));
        }
    }
    for (module, uses) in &graph {
        println!(
            "{module} → {}",
            uses.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
}
