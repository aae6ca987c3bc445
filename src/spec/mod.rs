//! YAML-first configuration: workflow, mode and theme types; loading with
//! `file:line:col` diagnostics; validation; `${{ }}` templates.
//!
//! Pure: reads files, never touches the journal, network or engine.

pub mod demo;
pub mod diagnostics;
pub mod edit;
pub mod expr;
pub mod load;
pub mod mode;
pub mod model;
pub mod yaml;

pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use load::{load_workflow, load_workflow_str, load_workflow_with, validate_workflow};
pub use mode::{CliAgent, Mode, ModeRegistry};
pub use model::*;
