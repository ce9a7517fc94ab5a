//! The layering of DESIGN.md, enforced: each module's imports of our own modules (`use crate::`
//! lines and inline `crate::` paths) are read from the source, and an import the rules forbid,
//! or an import cycle between top-level modules, fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// (importer, modules it must never import, why).
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    ("model", &["*"], "the data model imports nothing of ours"),
    ("store", &["*"], "the store imports only the model and its file"),
    ("persist", &["*"], "the state file is bytes on a disk"),
    ("vapix", &["sip", "rtp", "dtmf", "http"], "an HTTP face calls the store and the engine only"),
    ("control", &["sip", "rtp", "dtmf", "http", "vapix"], "an HTTP face calls the store and the engine only"),
    ("facades", &["sip", "rtp", "dtmf", "http", "vapix"], "an HTTP face calls the store and the engine only"),
    ("sip", &["vapix", "http", "control", "facades", "rtsp"], "signalling reports to the engine and the bus"),
    ("rtp", &["vapix", "http", "control", "facades", "sip", "store"], "media reports to the engine and the bus"),
    ("dtmf", &["vapix", "http", "control", "facades", "sip", "rtp", "store", "actions"], "DTMF is given its policy"),
    ("calls", &["vapix", "http", "control", "facades", "sip", "rtp", "rtsp"], "the engine knows no face and no SIP"),
    ("events", &["vapix", "http", "control", "facades", "sip", "rtp", "calls", "store"], "the bus is below all"),
    ("rtsp", &["http", "vapix", "control"], "RTSP shares auth and XML through neutral modules"),
    ("video", &["*"], "video is pixels and bits: it imports nothing of ours"),
    ("profile", &["actions", "device", "http", "vapix"], "a profile is data"),
    (
        "web",
        &["vapix", "http", "control", "facades", "sip", "rtp", "dtmf", "calls", "store", "events"],
        "the page is HTML over the control API and the event stream",
    ),
    (
        "metrics",
        &["vapix", "http", "control", "facades", "sip", "rtp", "dtmf", "calls", "store", "rtsp"],
        "every layer counts into the metrics, so they import none",
    ),
];

/// Imports allowed where `*` forbids the rest: the store's model and state file.
const ALWAYS_ALLOWED: &[(&str, &str)] = &[("store", "model"), ("store", "persist"), ("model", "model")];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/sip/ua.rs` → `sip`, `src/store.rs` → `store`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative.components().next().expect("a component").as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// Every module named after `crate::` in `text`, outside comments.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
        // `use crate::{a, b::c}`: the names in braces.
        if let Some(group) = code.split("crate::{").nth(1) {
            for part in group.split(',') {
                let name: String = part.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&src, &file);
        let text = std::fs::read_to_string(&file).expect("read");
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(imports(&text).into_iter().filter(|m| *m != module));
    }
    graph
}

#[test]
fn no_module_imports_what_the_layering_forbids() {
    let graph = graph();
    let mut violations = Vec::new();
    for (importer, forbidden, why) in FORBIDDEN {
        for imported in graph.get(*importer).into_iter().flatten() {
            let allowed = ALWAYS_ALLOWED.contains(&(importer, imported.as_str()));
            if !allowed && (forbidden.contains(&"*") || forbidden.contains(&imported.as_str())) {
                violations.push(format!("{importer} imports {imported}: {why}"));
            }
        }
    }
    assert!(violations.is_empty(), "layering violations:\n{}", violations.join("\n"));
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let graph = graph();
    // The composition root and the library's entry points may reach everything.
    let roots = ["lib", "main", "device", "cli"];
    let mut cycles = Vec::new();
    for start in graph.keys().filter(|m| !roots.contains(&m.as_str())) {
        // Depth-first search for a path back to `start`.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if roots.contains(&next.as_str()) {
                    continue;
                }
                if next == start {
                    cycles.push(format!("{} -> {start}", path.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_reader_sees_imports_in_every_form() {
    let text = "use crate::store::Store;\nuse crate::{calls::X, events};\nlet a = crate::rtp::bind();\n// crate::vapix in a comment";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["calls", "events", "rtp", "store"]);
}
