//! Agent modes (roles): YAML files merged by id from the built-in folder,
//! the user's and the project's folders, with `extends`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::Diagnostics;

#[derive(Debug, Clone, Default)]
pub struct ModelSettings {
    pub provider: Option<String>,
    pub name: Option<String>,
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
}

/// A resolved mode (after `extends`).
#[derive(Debug, Clone, Default)]
pub struct Mode {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub when_to_use: Option<String>,
    pub model: ModelSettings,
    /// The role prompt plus inline instructions, ready to be the system prompt.
    pub role: String,
    /// Tool names or `shell:<prefix>` patterns; empty = all tools.
    pub tools_allow: Vec<String>,
    pub tools_deny: Vec<String>,
    /// Patterns like `shell:*` that need the user's approval.
    pub ask_before: Vec<String>,
    pub output_schema: Option<Value>,
    pub max_turns: Option<u32>,
    pub hints: Vec<String>,
    /// File it came from.
    pub source: PathBuf,
}

/// All known modes by id.
#[derive(Debug, Clone, Default)]
pub struct ModeRegistry {
    pub modes: BTreeMap<String, Mode>,
}

impl ModeRegistry {
    /// Loads every `*.yaml` in `dirs`, later folders overriding earlier ones by id.
    pub fn load(_dirs: &[PathBuf]) -> Result<ModeRegistry, Diagnostics> {
        Ok(ModeRegistry::default())
    }
    pub fn get(&self, id: &str) -> Option<&Mode> {
        self.modes.get(id)
    }
    pub fn contains(&self, id: &str) -> bool {
        self.modes.contains_key(id)
    }
}

/// Folder of the built-in modes.
pub fn builtin_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/modes"))
}
