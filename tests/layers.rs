//! The layer table of docs/ARCHITECTURE.md, held against the source: every
//! `crate::…` path in a module's code (test modules left out) must point to
//! its own layer or one below, and a participant never reaches into another
//! participant. A new import that breaks a layer fails here with the file
//! and the line.

use std::path::{Path, PathBuf};

/// Lower layers first.
const LAYERS: &[&[&str]] = &[
    // Foundations: plain data and pure functions.
    &["protocol", "paths", "text", "config", "secrets"],
    // Effects: storage, providers, tools, processes, git.
    &[
        "commands",
        "journal",
        "llm",
        "mcp",
        "tools",
        "memory",
        "isolation",
    ],
    // Definitions: workflow and mode files (they check tool names).
    &["spec"],
    // The engine.
    &["workflow", "swarm", "engine"],
    // Participants: they talk to the engine, never to one another.
    &["headless", "host", "intelligence", "tui"],
    // The entry point.
    &["cli"],
];

const PARTICIPANTS: &[&str] = &["headless", "host", "intelligence", "tui"];

/// Imports that break the table today, each with why it is still there.
/// The list only shrinks.
const KNOWN: &[(&str, &str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code before the file's `#[cfg(test)]` module (lev puts tests last),
/// or nothing for a file of tests.
fn code_of(path: &Path, text: &str) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name.ends_with("_tests.rs") {
        return String::new();
    }
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod ") || next.contains(" mod "))
        {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every `crate::name` in `code`, with its line number.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push((n + 1, name));
            }
            rest = after;
        }
    }
    out
}

#[test]
fn imports_follow_the_layer_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut broken = Vec::new();
    let mut seen_known = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let from = layer_of(&top)
            .unwrap_or_else(|| panic!("src/{} is in no layer of the table", rel.display()));
        let text = std::fs::read_to_string(path).unwrap();
        for (line, target) in crate_paths(&code_of(path, &text)) {
            if target == top {
                continue;
            }
            let Some(to) = layer_of(&target) else {
                continue; // a crate-level item, not a module
            };
            let participants =
                PARTICIPANTS.contains(&top.as_str()) && PARTICIPANTS.contains(&target.as_str());
            if to <= from && !participants {
                continue;
            }
            if KNOWN.iter().any(|(a, b, _)| *a == top && *b == target) {
                seen_known.push((top.clone(), target.clone()));
                continue;
            }
            let why = if participants {
                "a participant imports another"
            } else {
                "imports a higher layer"
            };
            broken.push(format!(
                "src/{}:{line}: {top} -> {target} ({why})",
                rel.display()
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "imports that break the layer table (docs/ARCHITECTURE.md):\n{}",
        broken.join("\n")
    );
    for (a, b, why) in KNOWN {
        assert!(
            seen_known.iter().any(|(x, y)| x == a && y == b),
            "{a} -> {b} is listed as a known break ({why}) but no longer happens: take it off the list"
        );
    }
}

#[test]
fn every_top_level_module_is_in_the_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let module = name.trim_end_matches(".rs");
        if module == "lib" || module == "main" {
            continue;
        }
        assert!(
            layer_of(module).is_some(),
            "src/{name} is in no layer: add it to LAYERS here and to docs/ARCHITECTURE.md"
        );
    }
}
