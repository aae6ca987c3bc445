//! The demo workflow and its canned replies, built into the binary: `lev
//! demo` writes them to `<data>/demo/` and runs them, and a resume of a
//! demo run replays the same replies whatever provider is configured.

/// `workflows/demo.yaml`.
pub const WORKFLOW: &str = include_str!("../../workflows/demo.yaml");
/// `workflows/demo.cassette.yaml`.
pub const CASSETTE: &str = include_str!("../../workflows/demo.cassette.yaml");

/// True when `text` is the demo workflow as this build writes it.
pub fn is_demo(text: &str) -> bool {
    text == WORKFLOW
}
