//! The modes shipped inside the binary (the files of `workflows/modes/`),
//! so an installed or moved `lev` has its seventeen roles without the
//! source tree.

/// `(file name, YAML text)` of every built-in mode, by id order of the
/// SPARC roles in docs/workflows.md. A unit test checks this table against the
/// folder, so a new file there cannot be forgotten here.
pub(crate) const FILES: [(&str, &str); 17] = [
    (
        "orchestrator.yaml",
        include_str!("../../../workflows/modes/orchestrator.yaml"),
    ),
    (
        "architect.yaml",
        include_str!("../../../workflows/modes/architect.yaml"),
    ),
    (
        "spec-pseudocode.yaml",
        include_str!("../../../workflows/modes/spec-pseudocode.yaml"),
    ),
    (
        "coder.yaml",
        include_str!("../../../workflows/modes/coder.yaml"),
    ),
    (
        "tdd.yaml",
        include_str!("../../../workflows/modes/tdd.yaml"),
    ),
    (
        "debug.yaml",
        include_str!("../../../workflows/modes/debug.yaml"),
    ),
    (
        "security-review.yaml",
        include_str!("../../../workflows/modes/security-review.yaml"),
    ),
    (
        "docs-writer.yaml",
        include_str!("../../../workflows/modes/docs-writer.yaml"),
    ),
    (
        "integration.yaml",
        include_str!("../../../workflows/modes/integration.yaml"),
    ),
    (
        "post-deployment-monitoring.yaml",
        include_str!("../../../workflows/modes/post-deployment-monitoring.yaml"),
    ),
    (
        "refinement-optimization.yaml",
        include_str!("../../../workflows/modes/refinement-optimization.yaml"),
    ),
    (
        "devops.yaml",
        include_str!("../../../workflows/modes/devops.yaml"),
    ),
    (
        "ask.yaml",
        include_str!("../../../workflows/modes/ask.yaml"),
    ),
    (
        "tutorial.yaml",
        include_str!("../../../workflows/modes/tutorial.yaml"),
    ),
    (
        "mcp.yaml",
        include_str!("../../../workflows/modes/mcp.yaml"),
    ),
    (
        "database-admin.yaml",
        include_str!("../../../workflows/modes/database-admin.yaml"),
    ),
    (
        "reviewer.yaml",
        include_str!("../../../workflows/modes/reviewer.yaml"),
    ),
];

/// Where a built-in's diagnostics point: its path in the source tree, the
/// place a developer fixes it.
pub(crate) fn shown_path(file: &str) -> String {
    format!("workflows/modes/{file}")
}
