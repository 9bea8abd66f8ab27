//! No import cycles between the modules of any crate (CODE_STYLE.md, "No cycles"): module A
//! refers to B and B, directly or through others, to A. A cycle means two rooms that are really
//! one, or a type living in the wrong one; the usual fix is a module of its own for what both
//! need (see `worker/src/messages.rs`).
//!
//! A module is a crate's top-level `mod` (a file or a folder); it refers to another when any of
//! its files names `crate::other` (also inside `use crate::{...}` groups).

use sawmill_tests::workspace;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const CRATES: [&str; 8] = [
    "core",
    "proto",
    "common",
    "worker",
    "coordinator",
    "cli",
    "report",
    "tests",
];

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("a source folder") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                out.push((path, text));
            }
        }
    }
    out
}

/// The module paths named after `crate::` in `text`'s code (comments and doc links are not
/// dependencies), group imports expanded one level (`crate::{a, b::c}` names `a` and `b`).
fn crate_refs(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let text = code.as_str();
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        // `sawmill_core::x` is another crate, not this one.
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                out.insert(ident(item.trim()));
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out
}

/// Top-level module → the top-level modules it refers to.
fn module_edges(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = workspace().join(krate).join("src");
    let mut refs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in sources(&src) {
        let relative = path.strip_prefix(&src).expect("under src");
        let top = relative
            .components()
            .next()
            .expect("a file name")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        refs.entry(top).or_default().extend(crate_refs(&text));
    }
    let modules: BTreeSet<String> = refs.keys().cloned().collect();
    refs.into_iter()
        .map(|(m, r)| {
            let edges = r
                .into_iter()
                .filter(|o| *o != m && modules.contains(o))
                .collect();
            (m, edges)
        })
        .collect()
}

/// Every cycle found by a depth-first search, as `a -> b -> a`.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit(
        module: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|m| m == module) {
            found.push(format!("{} -> {module}", path[at..].join(" -> ")));
            return;
        }
        if done.contains(module) {
            return;
        }
        path.push(module.to_string());
        for next in edges.get(module).into_iter().flatten() {
            visit(next, edges, path, done, found);
        }
        path.pop();
        done.insert(module.to_string());
    }
    let mut done = BTreeSet::new();
    let mut found = Vec::new();
    for module in edges.keys() {
        visit(module, edges, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let mut all = Vec::new();
    for krate in CRATES {
        for cycle in cycles(&module_edges(krate)) {
            all.push(format!("{krate}: {cycle}"));
        }
    }
    assert!(all.is_empty(), "import cycles:\n{}", all.join("\n"));
}

#[test]
fn the_checker_sees_cycles_and_group_imports() {
    assert_eq!(
        crate_refs(
            "use crate::{a, b::c};\n/// [`crate::g`]\nlet x = crate::d::e(); sawmill_core::f;"
        ),
        BTreeSet::from(["a".to_string(), "b".into(), "d".into()])
    );
    let edges = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(cycles(&edges), vec!["a -> b -> c -> a".to_string()]);
    // The messages module of the worker depends on nothing: it is what breaks its cycles.
    assert!(module_edges("worker")["messages"].is_empty());
}
