//! `lev modes`: the agent modes lev uses in this directory (built-ins,
//! overridden by the user's and the project's folders), as a table or
//! JSON; `lev modes show ID`: one mode as lev resolved it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::IsTerminal;

use serde_json::{Value, json};

use super::context::{error, load_modes};
use super::exit;
use crate::paths::Paths;
use crate::spec::{Mode, ModeRegistry};
use crate::text::one_line;

/// Width used when standard output is not a terminal.
const DEFAULT_WIDTH: usize = 80;
/// `when_to_use` keeps at least this many columns, even on a narrow screen.
const MIN_WHEN_WIDTH: usize = 16;

/// `lev modes [--json]`.
pub fn list(paths: &Paths, json: bool) -> u8 {
    let modes = match load(paths) {
        Ok(m) => m,
        Err(code) => return code,
    };
    if json {
        for m in modes.modes.values() {
            println!("{}", summary_json(m));
        }
        return exit::OK;
    }
    print!("{}", table(&modes, width()));
    exit::OK
}

/// `lev modes show ID [--json]`.
pub fn show(paths: &Paths, id: &str, json: bool) -> u8 {
    let modes = match load(paths) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let Some(mode) = modes.get(id) else {
        error(&unknown(&modes, id));
        return exit::USAGE;
    };
    if json {
        println!("{}", detail_json(mode));
    } else {
        print!("{}", detail(mode));
    }
    exit::OK
}

/// The registry; warnings (an unknown tool name, say) go to stderr, errors
/// stop the command with their `file:line:col`.
fn load(paths: &Paths) -> Result<ModeRegistry, u8> {
    let modes = load_modes(paths)?;
    if !modes.warnings.0.is_empty() {
        eprint!("{}", modes.warnings);
    }
    Ok(modes)
}

/// "no mode `x`; known: ..." with the closest id as a hint.
fn unknown(modes: &ModeRegistry, id: &str) -> String {
    let known: Vec<&str> = modes.modes.keys().map(String::as_str).collect();
    let mut msg = format!("no mode `{id}`; known: {}", known.join(", "));
    if let Some(c) = modes.closest(id) {
        msg.push_str(&format!("\nhelp: did you mean `{c}`?"));
    }
    msg
}

fn width() -> usize {
    if std::io::stdout().is_terminal()
        && let Ok((cols, _)) = crossterm::terminal::size()
        && cols > 0
    {
        return usize::from(cols);
    }
    DEFAULT_WIDTH
}

/// `built-in`, or the file that overrides the built-in.
fn source_cell(m: &Mode) -> String {
    match m.source.path() {
        None => m.source.kind().to_string(),
        Some(p) => format!("{} {}", m.source.kind(), p.display()),
    }
}

/// One line per mode; `when_to_use` is cut so a line fits in `width`.
fn table(modes: &ModeRegistry, width: usize) -> String {
    let rows: Vec<[String; 4]> = modes
        .modes
        .values()
        .map(|m| {
            [
                m.id.clone(),
                m.name.clone(),
                source_cell(m),
                m.when_to_use.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let head = ["ID", "NAME", "SOURCE", "WHEN TO USE"];
    let w = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (wi, wn, ws) = (w(0), w(1), w(2));
    // `one_line` adds an ellipsis past its limit, hence the extra column.
    let when = width
        .saturating_sub(wi + wn + ws + 6 + 1)
        .max(MIN_WHEN_WIDTH);
    let mut out = format!(
        "{:<wi$}  {:<wn$}  {:<ws$}  {}\n",
        head[0], head[1], head[2], head[3]
    );
    for [id, name, source, when_to_use] in &rows {
        out.push_str(&format!(
            "{id:<wi$}  {name:<wn$}  {source:<ws$}  {}\n",
            one_line(when_to_use, when)
        ));
    }
    out
}

fn summary_json(m: &Mode) -> Value {
    json!({
        "id": m.id,
        "name": m.name,
        "source": m.source.kind(),
        "path": m.source.path().map(|p| p.display().to_string()),
        "description": m.description,
        "when_to_use": m.when_to_use,
    })
}

fn detail_json(m: &Mode) -> Value {
    json!({
        "id": m.id,
        "name": m.name,
        "source": m.source.kind(),
        "path": m.source.path().map(|p| p.display().to_string()),
        "extends": m.extends,
        "description": m.description,
        "when_to_use": m.when_to_use,
        "model": {
            "provider": m.model.provider,
            "name": m.model.name,
            "temperature": m.model.temperature,
            "max_output_tokens": m.model.max_output_tokens,
        },
        "role": m.role,
        "tools": { "allow": m.tools_allow, "deny": m.tools_deny },
        "permissions": { "network": m.network, "ask_before": m.ask_before },
        "context": { "include": m.context_include, "token_budget": m.token_budget },
        "output_schema": m.output_schema,
        "limits": {
            "max_turns": m.max_turns,
            "timeout_secs": m.timeout.map(|t| t.as_secs()),
            "max_questions": m.max_questions,
        },
        "whisper": { "ask_user_when": m.ask_user_when, "hints": m.hints },
        "ui": { "style": m.ui_style, "icon": m.ui_icon },
    })
}

/// `a, b` or `-` for an empty list.
fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}

fn or_default<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "default".to_string(), ToString::to_string)
}

/// `20m`, `2h`, `90s`: the largest unit that divides the duration.
fn duration(secs: u64) -> String {
    match secs {
        0 => "0s".to_string(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The readable form of `lev modes show`.
fn detail(m: &Mode) -> String {
    let mut out = format!("{} — {}\n", m.id, m.name);
    let mut field = |label: &str, value: String| {
        out.push_str(&format!("{label:<13}{value}\n"));
    };
    field("source:", m.source.to_string());
    if let Some(p) = &m.extends {
        field("extends:", p.clone());
    }
    if let Some(d) = &m.description {
        field("description:", one_line(d, 400));
    }
    if let Some(w) = &m.when_to_use {
        field("when to use:", one_line(w, 400));
    }
    field(
        "model:",
        format!(
            "provider {}, name {}, temperature {}, max output tokens {}",
            or_default(&m.model.provider),
            or_default(&m.model.name),
            or_default(&m.model.temperature),
            or_default(&m.model.max_output_tokens)
        ),
    );
    let allow = if m.tools_allow.is_empty() {
        "all tools".to_string()
    } else {
        m.tools_allow.join(", ")
    };
    field(
        "tools:",
        format!("allow {allow}; deny {}", list_or_dash(&m.tools_deny)),
    );
    // Where user namespaces are switched off lev cannot cut a command off
    // the network, and says so.
    let network = match m.network {
        Some(false) if crate::commands::offline::available() => {
            "no (shell commands run without a network)"
        }
        Some(false) => "no (advisory: this system does not allow lev to cut commands off)",
        Some(true) | None => "yes",
    };
    field(
        "permissions:",
        format!(
            "network {network}; ask before {}",
            list_or_dash(&m.ask_before)
        ),
    );
    let timeout = m
        .timeout
        .map_or_else(|| "none".to_string(), |t| duration(t.as_secs()));
    field(
        "limits:",
        format!(
            "max turns {}, timeout {timeout}, max questions {}",
            or_default(&m.max_turns),
            or_default(&m.max_questions)
        ),
    );
    if !m.context_include.is_empty() || m.token_budget.is_some() {
        let includes: Vec<String> = m
            .context_include
            .iter()
            .map(|i| {
                let read = crate::workflow::memory_include_is_read(i);
                if read {
                    i.clone()
                } else {
                    format!("{i} (not read: only memory://run, run/<id>, project, global and mcp://<server>/… are)")
                }
            })
            .collect();
        let budget = m.token_budget.map_or_else(
            || "no token budget".to_string(),
            |b| {
                format!(
                    "each request fitted to {b} tokens (older tool outputs cut, then old exchanges elided, then memory notes dropped)"
                )
            },
        );
        field("context:", format!("{}; {budget}", list_or_dash(&includes)));
    }
    if m.output_schema.is_some() {
        field(
            "output:",
            "JSON matching the mode's schema (--json shows it)".into(),
        );
    }
    if m.ui_style.is_some() || m.ui_icon.is_some() {
        field(
            "ui:",
            format!(
                "style {}, icon {}",
                or_default(&m.ui_style),
                or_default(&m.ui_icon)
            ),
        );
    }
    for h in &m.hints {
        field("hint:", h.clone());
    }
    for a in &m.ask_user_when {
        field("asks when:", a.clone());
    }
    out.push_str("role:\n");
    for line in m.role.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lines_fit_the_width_and_keep_every_id() {
        let modes = ModeRegistry::builtin().unwrap();
        for width in [80, 120] {
            let t = table(&modes, width);
            let lines: Vec<&str> = t.lines().collect();
            assert_eq!(lines.len(), 18, "{t}");
            assert!(lines[0].starts_with("ID "));
            for l in &lines {
                assert!(l.chars().count() <= width, "{width}: `{l}`");
            }
            for id in modes.modes.keys() {
                assert!(lines.iter().any(|l| l.starts_with(&format!("{id} "))));
            }
        }
    }

    #[test]
    fn unknown_id_lists_the_known_and_suggests_the_closest() {
        let modes = ModeRegistry::builtin().unwrap();
        let msg = unknown(&modes, "codr");
        assert!(msg.starts_with("no mode `codr`; known: architect, ask, coder,"));
        assert!(msg.ends_with("help: did you mean `coder`?"), "{msg}");
        assert!(!unknown(&modes, "zzzzzzzz").contains("did you mean"));
    }

    #[test]
    fn detail_shows_role_tools_permissions_limits_and_source() {
        let modes = ModeRegistry::builtin().unwrap();
        let d = detail(modes.get("security-review").unwrap());
        assert!(d.starts_with("security-review — Security Reviewer\n"));
        for want in [
            "source:      built-in\n",
            "extends:     reviewer\n",
            "allow read_file, list_dir, grep, memory_store, memory_search, shell:cargo audit",
            "deny write_file, edit_file",
            "network no (",
            "max turns 25, timeout 20m, max questions 2",
            "\n  You are a senior application-security engineer.",
        ] {
            assert!(d.contains(want), "missing `{want}` in\n{d}");
        }
    }
}
