//! The crates' layering, checked: inside every crate of the workspace, no two top-level
//! modules import each other, directly or around a circle (docs/ARCHITECTURE.md, "Dependencies
//! point one way"). Cargo already refuses a circle between crates; this refuses one between
//! the modules of a crate, which is where a data path and a control plane grow into each other.
//!
//! An edge `a → b` is any `crate::b` path in module `a`'s files (its file, or its directory),
//! and `super::b` in a top-level file, outside the `#[cfg(test)]` module at a file's end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[test]
fn no_crate_has_an_import_circle_between_its_modules() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut checked = 0;
    let mut circles = Vec::new();
    for entry in std::fs::read_dir(&crates).expect("crates/") {
        let src = entry.expect("entry").path().join("src");
        if !src.is_dir() {
            continue;
        }
        let graph = import_graph(&src);
        checked += 1;
        for circle in strongly_connected(&graph).into_iter().filter(|c| c.len() > 1) {
            circles.push(format!("{}: {}", src.display(), circle.join(" ⇄ ")));
        }
    }
    assert!(checked >= 10, "only {checked} crates found under {}", crates.display());
    assert!(circles.is_empty(), "import circles:\n{}", circles.join("\n"));
}

#[test]
fn a_circle_is_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "mod a; mod b; mod c;").expect("write");
    std::fs::write(src.join("a.rs"), "use crate::b::B;").expect("write");
    std::fs::create_dir(src.join("b")).expect("mkdir");
    std::fs::write(src.join("b/mod.rs"), "mod inner;").expect("write");
    std::fs::write(src.join("b/inner.rs"), "fn f() { crate::c::g() }").expect("write");
    std::fs::write(
        src.join("c.rs"),
        "pub fn g() {}\n#[cfg(test)]\nmod tests {\n    use crate::b::B;\n}\n",
    )
    .expect("write");
    // c uses b only in its tests: no circle yet.
    assert!(strongly_connected(&import_graph(src)).iter().all(|c| c.len() == 1));
    std::fs::write(src.join("c.rs"), "use crate::a::A;").expect("write");
    let circles: Vec<_> =
        strongly_connected(&import_graph(src)).into_iter().filter(|c| c.len() > 1).collect();
    assert_eq!(circles, vec![vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]);
}

/// Each top-level module of the crate at `src` and the top-level modules it names.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files: BTreeMap<String, Vec<(PathBuf, bool)>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("src/") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().expect("name").to_string_lossy().into_owned();
        if path.is_dir() {
            let mut all = Vec::new();
            rust_files(&path, &mut all);
            // `<dir>/mod.rs` is the module's own file: its `super::` is the crate root.
            let own = |p: &Path| p.parent() == Some(path.as_path()) && p.ends_with("mod.rs");
            files.entry(name).or_default().extend(all.into_iter().map(|p| (p.clone(), own(&p))));
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            files.entry(name).or_default().push((path, true));
        }
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, paths) in &files {
        let mut names = BTreeSet::new();
        for (path, top_level) in paths {
            let text = std::fs::read_to_string(path).expect("read");
            let code = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
            let mut prefixes = vec!["crate::"];
            if *top_level {
                prefixes.push("super::");
            }
            for prefix in prefixes {
                for (at, _) in code.match_indices(prefix) {
                    let before = code[..at].chars().next_back();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                        continue; // `foo_crate::`, `$crate::`
                    }
                    let rest = &code[at + prefix.len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                        .collect();
                    if name != *module && modules.contains(&name) {
                        names.insert(name);
                    }
                }
            }
        }
        graph.insert(module.clone(), names);
    }
    graph
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The strongly connected components of `graph` (Tarjan), each sorted.
fn strongly_connected(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in &self.graph[v] {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                component.sort();
                self.out.push(component);
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.out
}
