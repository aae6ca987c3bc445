//! Property test of the workflow loader: random mutations (byte flips,
//! deletions, insertions, duplicated lines) of every shipped workflow and
//! fixture never panic, and every problem reported points at a line that
//! exists in the file.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lev::spec::mode::builtin_dir;
use lev::spec::{ModeRegistry, load_workflow_str};
use proptest::prelude::*;

const WORKFLOWS: &[&str] = &[
    "workflows/demo.yaml",
    "workflows/implement-auth.yaml",
    "tests/fixtures/crash.yaml",
];

fn modes() -> &'static ModeRegistry {
    static MODES: OnceLock<ModeRegistry> = OnceLock::new();
    MODES.get_or_init(|| ModeRegistry::load(&[builtin_dir()]).unwrap())
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Delete { at: usize, len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    DuplicateLine { line: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (
            any::<usize>(),
            prop::collection::vec(
                prop::sample::select(b": -[]{}'\"\n\t#&*!|>%@`\\,?x0${{}}".to_vec()),
                1..8
            )
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Flip { at, mask } => {
            let at = at % bytes.len();
            bytes[at] ^= mask;
        }
        Mutation::Delete { at, len } => {
            let at = at % bytes.len();
            let end = (at + len).min(bytes.len());
            bytes.drain(at..end);
        }
        Mutation::Insert { at, bytes: new } => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, new.iter().copied());
        }
        Mutation::DuplicateLine { line } => {
            let starts: Vec<usize> = std::iter::once(0)
                .chain(
                    bytes
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| **b == b'\n')
                        .map(|(i, _)| i + 1),
                )
                .filter(|i| *i < bytes.len())
                .collect();
            let start = starts[line % starts.len()];
            let end = bytes[start..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(bytes.len(), |i| start + i + 1);
            let copy = bytes[start..end].to_vec();
            bytes.splice(end..end, copy);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_workflows_never_panic_and_errors_point_into_the_file(
        which in 0..WORKFLOWS.len(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let path = repo(WORKFLOWS[which]);
        let mut bytes = std::fs::read(&path).unwrap();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // Lines a diagnostic may name: each line of the text, and the one
        // after a final newline (where "unexpected end" is found).
        let lines = text.split('\n').count() as u32;
        if let Err(diags) = load_workflow_str(&path, &text, modes()) {
            prop_assert!(!diags.0.is_empty());
            for d in diags.0.iter().filter(|d| Path::new(&d.file) == path) {
                prop_assert!(
                    (1..=lines).contains(&d.line),
                    "line {} of a {}-line file: {}",
                    d.line,
                    lines,
                    d
                );
            }
        }
    }
}

/// The property above filters diagnostics by file; make sure that filter
/// keeps this file's own diagnostics.
#[test]
fn diagnostics_name_the_loaded_file() {
    for rel in WORKFLOWS {
        let path = repo(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        load_workflow_str(&path, &text, modes()).unwrap();
        let broken = format!("{text}\nstepz: 1\n");
        let diags = load_workflow_str(&path, &broken, modes()).unwrap_err();
        assert!(
            diags
                .0
                .iter()
                .any(|d| Path::new(&d.file) == path && d.line > 1),
            "{diags:?}"
        );
    }
}
