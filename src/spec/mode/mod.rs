//! Agent modes (roles): YAML merged by id from the built-ins compiled into
//! lev, the user's folder and the project's folder, with `extends`.
//!
//! `Mode.role` is the finished system prompt: the role text followed by the
//! instructions (inline strings and `{file: ..}` entries, parents' first).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::Diagnostics;
use super::diagnostics::{Diagnostic, Severity};
use super::load::cx::Cx;

mod builtin;
mod file;
mod source;

pub use file::tool_names;
use file::{RawMode, parse_mode};
pub use source::{MODES_FOLDER, ModeLayer, ModeSource, PROJECT_MODES, standard_layers};

/// How long an `extends` chain may be.
const MAX_EXTENDS_DEPTH: usize = 16;

#[derive(Debug, Clone, Default)]
pub struct ModelSettings {
    pub provider: Option<String>,
    pub name: Option<String>,
    pub temperature: Option<f64>,
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
    /// `permissions.network`, when written.
    pub network: Option<bool>,
    /// `context.include`: what the context assembler adds.
    pub context_include: Vec<String>,
    pub token_budget: Option<u32>,
    pub output_schema: Option<Value>,
    pub max_turns: Option<u32>,
    /// `limits.timeout` of one agent step in this mode.
    pub timeout: Option<Duration>,
    pub max_questions: Option<u32>,
    /// `whisper.ask_user_when`: situations in which the agent should ask.
    pub ask_user_when: Vec<String>,
    pub hints: Vec<String>,
    /// `ui.style` (a theme slot such as `agent.coder`) and `ui.icon`.
    pub ui_style: Option<String>,
    pub ui_icon: Option<String>,
    /// `agent:`: the mode's agent is an agent CLI run in a terminal (a
    /// `pty` step) instead of lev's own agent loop.
    pub cli: Option<CliAgent>,
    /// The parent this mode `extends`, as written in its own file.
    pub extends: Option<String>,
    /// Where the mode itself (not its parents) was defined.
    pub source: ModeSource,
}

/// A mode's agent as an agent CLI: which (its entry in `pty.clis`), the
/// command and arguments that start it, when its step is done, its size.
#[derive(Debug, Clone, PartialEq)]
pub struct CliAgent {
    pub cli: String,
    pub command: String,
    pub args: Vec<String>,
    pub done_when: crate::spec::DoneWhen,
    pub size: crate::spec::TerminalSize,
}

/// All known modes by id.
#[derive(Debug, Clone, Default)]
pub struct ModeRegistry {
    pub modes: BTreeMap<String, Mode>,
    /// Problems that did not stop loading (an unknown tool name, say),
    /// for commands that show them.
    pub warnings: Diagnostics,
}

/// The source-tree folder of the built-in modes. The binary does not read
/// it (it carries its own copies); tests and tools that want the files
/// as files do.
pub fn builtin_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/modes"))
}

impl ModeRegistry {
    /// The modes lev uses when it runs in `cwd`: the built-ins, overridden
    /// by id by `<config_dir>/modes/` and then by `<cwd>/.lev/modes/`.
    pub fn for_cwd(config_dir: Option<&Path>, cwd: &Path) -> Result<ModeRegistry, Diagnostics> {
        ModeRegistry::load_layers(&standard_layers(config_dir, cwd))
    }

    /// Only the built-in modes.
    pub fn builtin() -> Result<ModeRegistry, Diagnostics> {
        ModeRegistry::load_layers(&[ModeLayer::Builtin])
    }

    /// Loads every `*.yaml` in `dirs`, later folders overriding earlier ones by id.
    pub fn load(dirs: &[PathBuf]) -> Result<ModeRegistry, Diagnostics> {
        let layers: Vec<ModeLayer> = dirs.iter().cloned().map(ModeLayer::Folder).collect();
        ModeRegistry::load_layers(&layers)
    }

    /// Loads `layers` in order, later layers overriding earlier ones by id.
    /// Every error of every file is reported (with `file:line:col`).
    pub fn load_layers(layers: &[ModeLayer]) -> Result<ModeRegistry, Diagnostics> {
        let mut diags = Vec::new();
        let mut raw: BTreeMap<String, RawMode> = BTreeMap::new();
        for layer in layers {
            let mut in_this_layer: BTreeMap<String, String> = BTreeMap::new();
            for m in layer_modes(layer, &mut diags) {
                if let Some(other) = in_this_layer.get(&m.id) {
                    diags.push(error(
                        &m.file,
                        m.line,
                        m.col,
                        "id",
                        format!("mode `{}` is also defined in `{other}`", m.id),
                        Some("ids must be unique within one folder"),
                    ));
                    continue;
                }
                in_this_layer.insert(m.id.clone(), m.file.clone());
                raw.insert(m.id.clone(), m);
            }
        }
        let mut reg = ModeRegistry::default();
        for id in raw.keys() {
            if let Some(mode) = resolve(id, &raw, &mut diags) {
                reg.modes.insert(id.clone(), mode);
            }
        }
        let diags = Diagnostics(diags);
        if diags.has_errors() {
            Err(diags)
        } else {
            reg.warnings = diags;
            Ok(reg)
        }
    }

    pub fn get(&self, id: &str) -> Option<&Mode> {
        self.modes.get(id)
    }
    pub fn contains(&self, id: &str) -> bool {
        self.modes.contains_key(id)
    }

    /// The known id closest to `id` (for "did you mean" hints).
    pub fn closest(&self, id: &str) -> Option<&str> {
        let ids: Vec<&str> = self.modes.keys().map(String::as_str).collect();
        super::load::cx::closest(id, &ids)
    }
}

/// The modes one layer defines, in file-name order; files that do not
/// parse are left out (their diagnostics are in `diags`).
fn layer_modes(layer: &ModeLayer, diags: &mut Vec<Diagnostic>) -> Vec<RawMode> {
    let Some(dir) = layer.dir() else {
        return builtin::FILES
            .iter()
            .filter_map(|(file, text)| {
                let cx = Cx::new(builtin::shown_path(file), text);
                parse_into(cx, None, ModeSource::Builtin, diags)
            })
            .collect();
    };
    yaml_files(dir, diags)
        .into_iter()
        .filter_map(|path| load_file(&path, layer, diags))
        .collect()
}

fn error(
    file: &str,
    line: u32,
    col: u32,
    path: &str,
    message: String,
    hint: Option<&str>,
) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        message,
        file: file.to_string(),
        line,
        col,
        path: path.to_string(),
        expected: None,
        found: None,
        hint: hint.map(str::to_string),
    }
}

/// `*.yaml` / `*.yml` files of `dir`, sorted; a missing folder is fine.
fn yaml_files(dir: &Path, diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            diags.push(error(
                &dir.display().to_string(),
                0,
                0,
                "",
                format!("cannot read mode folder: {e}"),
                None,
            ));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

fn load_file(path: &Path, layer: &ModeLayer, diags: &mut Vec<Diagnostic>) -> Option<RawMode> {
    let text = match crate::spec::load::read_text(path) {
        Ok(t) => t,
        Err(d) => {
            diags.push(*d);
            return None;
        }
    };
    let cx = Cx::new(path.display().to_string(), &text);
    parse_into(cx, path.parent(), layer.source_of(path), diags)
}

/// Parses one mode's text; its diagnostics join `diags`, sorted by position.
fn parse_into(
    mut cx: Cx<'_>,
    base: Option<&Path>,
    source: ModeSource,
    diags: &mut Vec<Diagnostic>,
) -> Option<RawMode> {
    let m = parse_mode(&mut cx, base, source);
    let failed = cx.diags.iter().any(|d| d.severity == Severity::Error);
    cx.diags.sort_by_key(|a| (a.line, a.col));
    diags.append(&mut cx.diags);
    if failed { None } else { m }
}

/// Merges `id` with its ancestors (root first); child fields win, and
/// instructions accumulate parent-first.
fn resolve(id: &str, raw: &BTreeMap<String, RawMode>, diags: &mut Vec<Diagnostic>) -> Option<Mode> {
    let mut chain: Vec<&RawMode> = Vec::new();
    let mut cur = raw.get(id)?;
    loop {
        if chain.iter().any(|m| m.id == cur.id) {
            let mut names: Vec<&str> = chain.iter().map(|m| m.id.as_str()).collect();
            names.push(cur.id.as_str());
            let first = chain[0];
            let (line, col) = first
                .extends
                .as_ref()
                .map(|(_, l, c)| (*l, *c))
                .unwrap_or((first.line, first.col));
            diags.push(error(
                &first.file,
                line,
                col,
                "extends",
                format!("modes extend each other in a cycle: {}", names.join(" -> ")),
                Some("remove one of the `extends:`"),
            ));
            return None;
        }
        chain.push(cur);
        if chain.len() > MAX_EXTENDS_DEPTH {
            diags.push(error(
                &chain[0].file,
                chain[0].line,
                chain[0].col,
                "extends",
                format!("`extends` chain of mode `{id}` is longer than {MAX_EXTENDS_DEPTH}"),
                None,
            ));
            return None;
        }
        let Some((parent, line, col)) = &cur.extends else {
            break;
        };
        match raw.get(parent) {
            Some(p) => cur = p,
            None => {
                // Reported once, at the file that names the missing parent.
                if chain.len() == 1 {
                    diags.push(error(
                        &cur.file,
                        *line,
                        *col,
                        "extends",
                        format!("mode `{}` extends unknown mode `{parent}`", cur.id),
                        Some("the parent must be in one of the mode folders"),
                    ));
                }
                return None;
            }
        }
    }
    let mut mode = Mode {
        extends: chain[0].extends.as_ref().map(|(p, _, _)| p.clone()),
        ..Mode::default()
    };
    let mut role: Option<String> = None;
    let mut instructions: Vec<String> = Vec::new();
    for m in chain.iter().rev() {
        mode.id = m.id.clone();
        mode.source = m.source.clone();
        mode.name = m.name.clone().unwrap_or_else(|| m.id.clone());
        set(&mut mode.description, &m.description);
        set(&mut mode.when_to_use, &m.when_to_use);
        set(&mut mode.model.provider, &m.model.provider);
        set(&mut mode.model.name, &m.model.name);
        set(&mut mode.model.temperature, &m.model.temperature);
        set(
            &mut mode.model.max_output_tokens,
            &m.model.max_output_tokens,
        );
        set(&mut role, &m.role);
        instructions.extend(m.instructions.iter().cloned());
        if let Some(v) = &m.tools_allow {
            mode.tools_allow = v.clone();
        }
        if let Some(v) = &m.tools_deny {
            mode.tools_deny = v.clone();
        }
        if let Some(v) = &m.ask_before {
            mode.ask_before = v.clone();
        }
        set(&mut mode.network, &m.network);
        if let Some(v) = &m.context_include {
            mode.context_include = v.clone();
        }
        set(&mut mode.token_budget, &m.token_budget);
        set(&mut mode.output_schema, &m.output_schema);
        set(&mut mode.max_turns, &m.max_turns);
        set(&mut mode.timeout, &m.timeout);
        set(&mut mode.max_questions, &m.max_questions);
        if let Some(v) = &m.ask_user_when {
            mode.ask_user_when = v.clone();
        }
        if let Some(v) = &m.hints {
            mode.hints = v.clone();
        }
        set(&mut mode.ui_style, &m.ui_style);
        set(&mut mode.ui_icon, &m.ui_icon);
        set(&mut mode.cli, &m.cli);
    }
    let mut text = role.unwrap_or_default().trim_end().to_string();
    for i in instructions {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(i.trim_end());
    }
    mode.role = text;
    Some(mode)
}

fn set<T: Clone>(into: &mut Option<T>, from: &Option<T>) {
    if from.is_some() {
        into.clone_from(from);
    }
}

#[cfg(test)]
mod tests;
