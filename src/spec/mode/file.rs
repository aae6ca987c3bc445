//! One mode file → a `RawMode` (fields as written, before `extends`).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::spec::load::cx::{Cx, closest, join};
use crate::spec::load::workflow::{envelope, valid_id};
use crate::spec::yaml::{self, Node};

use super::{ModeSource, ModelSettings};

const TOP_KEYS: &[&str] = &[
    "version",
    "kind",
    "id",
    "name",
    "description",
    "extends",
    "when_to_use",
    "model",
    "role",
    "instructions",
    "tools",
    "permissions",
    "context",
    "output_schema",
    "limits",
    "whisper",
    "ui",
    "agent",
];

/// Tool names a mode may list: the built-in tools and `*`;
/// `shell:<prefix>` and `mcp:<server>/<tool>` patterns are also accepted.
pub fn tool_names() -> Vec<&'static str> {
    let mut names = crate::tools::tool_names();
    names.push("*");
    names
}

/// Largest `instructions: - file:` we read.
const MAX_INSTRUCTION_BYTES: u64 = 256 * 1024;

/// A mode as written in one file.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawMode {
    pub id: String,
    pub file: String,
    pub source: ModeSource,
    pub name: Option<String>,
    pub description: Option<String>,
    pub when_to_use: Option<String>,
    /// Parent id and where `extends:` was written.
    pub extends: Option<(String, u32, u32)>,
    pub model: ModelSettings,
    pub role: Option<String>,
    pub instructions: Vec<String>,
    pub tools_allow: Option<Vec<String>>,
    pub tools_deny: Option<Vec<String>>,
    pub ask_before: Option<Vec<String>>,
    pub output_schema: Option<Value>,
    pub max_turns: Option<u32>,
    pub timeout: Option<Duration>,
    pub max_questions: Option<u32>,
    pub network: Option<bool>,
    pub context_include: Option<Vec<String>>,
    pub token_budget: Option<u32>,
    pub ask_user_when: Option<Vec<String>>,
    pub hints: Option<Vec<String>>,
    pub ui_style: Option<String>,
    pub ui_icon: Option<String>,
    /// `agent: { cli, … }`: the mode's agent is a CLI in a terminal.
    pub cli: Option<super::CliAgent>,
    /// Position of the `id:` value (for duplicate/override messages).
    pub line: u32,
    pub col: u32,
}

/// Parses one mode file; problems go to `cx`. `base` is the folder
/// `instructions: - file:` entries are read from; built-ins (embedded in
/// the binary) have none, so they cannot use instruction files.
pub(crate) fn parse_mode(
    cx: &mut Cx<'_>,
    base: Option<&Path>,
    source: ModeSource,
) -> Option<RawMode> {
    let root = match yaml::parse_str(&cx.file, cx.text) {
        Ok(r) => r,
        Err(d) => {
            cx.diags.push(*d);
            return None;
        }
    };
    let f = cx.map(&root, "", TOP_KEYS)?;
    let (id, name, description) = envelope(cx, &root, "mode");
    let id = id?;
    let (line, col) = f.get("id").map(|n| (n.line, n.col)).unwrap_or((1, 1));
    let mut m = RawMode {
        id,
        file: cx.file.clone(),
        source,
        name,
        description,
        line,
        col,
        ..RawMode::default()
    };
    m.when_to_use = f.get("when_to_use").and_then(|n| cx.text(n, "when_to_use"));
    if let Some(n) = f.get("extends")
        && let Some(p) = cx.str(n, "extends")
    {
        if valid_id(&p) {
            m.extends = Some((p, n.line, n.col));
        } else {
            cx.at(n, "extends", format!("invalid mode id `{p}`"));
        }
    }
    if let Some(n) = f.get("model") {
        m.model = model(cx, n);
    }
    m.role = f.get("role").and_then(|n| cx.text(n, "role"));
    if let Some(n) = f.get("instructions") {
        m.instructions = instructions(cx, n, base);
    }
    if let Some(n) = f.get("tools")
        && let Some(tf) = cx.map(n, "tools", &["allow", "deny"])
    {
        m.tools_allow = tf
            .get("allow")
            .and_then(|v| tool_list(cx, v, "tools.allow"));
        m.tools_deny = tf.get("deny").and_then(|v| tool_list(cx, v, "tools.deny"));
    }
    if let Some(n) = f.get("permissions")
        && let Some(pf) = cx.map(n, "permissions", &["network", "ask_before"])
    {
        m.network = pf
            .get("network")
            .and_then(|v| cx.bool(v, "permissions.network"));
        m.ask_before = pf
            .get("ask_before")
            .and_then(|v| tool_list(cx, v, "permissions.ask_before"));
    }
    if let Some(n) = f.get("context")
        && let Some(cf) = cx.map(n, "context", &["include", "token_budget"])
    {
        m.context_include = cf
            .get("include")
            .and_then(|v| cx.str_list(v, "context.include"));
        m.token_budget = cf
            .get("token_budget")
            .and_then(|v| cx.u32(v, "context.token_budget", 1, 10_000_000));
    }
    if let Some(n) = f.get("output_schema") {
        let v = n.to_json();
        match jsonschema::validator_for(&v) {
            Ok(_) => m.output_schema = Some(v),
            Err(e) => {
                cx.at(
                    n,
                    "output_schema",
                    format!("`output_schema` is not a valid JSON Schema: {e}"),
                );
            }
        }
    }
    if let Some(n) = f.get("limits")
        && let Some(lf) = cx.map(n, "limits", &["max_turns", "timeout", "max_questions"])
    {
        m.max_turns = lf
            .get("max_turns")
            .and_then(|v| cx.u32(v, "limits.max_turns", 1, 1_000));
        m.timeout = lf
            .get("timeout")
            .and_then(|v| cx.duration(v, "limits.timeout", Duration::from_secs(7 * 86_400)));
        m.max_questions = lf
            .get("max_questions")
            .and_then(|v| cx.u32(v, "limits.max_questions", 0, 1_000));
    }
    if let Some(n) = f.get("whisper")
        && let Some(wf) = cx.map(n, "whisper", &["ask_user_when", "hints"])
    {
        m.ask_user_when = wf
            .get("ask_user_when")
            .and_then(|v| cx.str_list(v, "whisper.ask_user_when"));
        m.hints = wf
            .get("hints")
            .and_then(|v| cx.str_list(v, "whisper.hints"));
    }
    if let Some(n) = f.get("agent") {
        m.cli = cli_agent(cx, n);
    }
    if let Some(n) = f.get("ui")
        && let Some(uf) = cx.map(n, "ui", &["style", "icon"])
    {
        m.ui_style = uf.get("style").and_then(|v| cx.text(v, "ui.style"));
        m.ui_icon = uf.get("icon").and_then(|v| cx.text(v, "ui.icon"));
    }
    Some(m)
}

/// `agent: { cli, command, args, done_when, size }`.
fn cli_agent(cx: &mut Cx<'_>, node: &Node) -> Option<super::CliAgent> {
    let f = cx.map(
        node,
        "agent",
        &["cli", "command", "args", "done_when", "size"],
    )?;
    let Some(cli_node) = f.get("cli") else {
        let d = cx.at(
            node,
            "agent",
            "`agent:` needs `cli:`, the agent CLI it runs",
        );
        d.hint = Some("for example `cli: claude` (see docs/agent-clis.md)".into());
        return None;
    };
    let cli = cx.str(cli_node, "agent.cli")?;
    let command = match f.get("command") {
        Some(n) => cx.str(n, "agent.command")?,
        None => cli.clone(),
    };
    let args = match f.get("args") {
        Some(n) => cx.str_list(n, "agent.args")?,
        None => Vec::new(),
    };
    let done_when = match f.get("done_when") {
        Some(n) => crate::spec::load::step::done_when(cx, n, "agent.done_when")?,
        None => crate::spec::DoneWhen::Exit,
    };
    let size = match f.get("size") {
        Some(n) => crate::spec::load::step::terminal_size(cx, n, "agent.size")?,
        None => crate::spec::TerminalSize::default(),
    };
    Some(super::CliAgent {
        cli,
        command,
        args,
        done_when,
        size,
    })
}

fn model(cx: &mut Cx<'_>, node: &Node) -> ModelSettings {
    let mut s = ModelSettings::default();
    let Some(f) = cx.map(
        node,
        "model",
        &["provider", "name", "temperature", "max_output_tokens"],
    ) else {
        return s;
    };
    s.provider = f.get("provider").and_then(|n| cx.str(n, "model.provider"));
    s.name = f.get("name").and_then(|n| cx.text(n, "model.name"));
    if let Some(n) = f.get("temperature")
        && let Some(t) = cx.number(n, "model.temperature")
    {
        if (0.0..=2.0).contains(&t) {
            s.temperature = Some(t);
        } else {
            let d = cx.at(n, "model.temperature", "`temperature` is out of range");
            d.expected = Some("a number from 0 to 2".to_string());
            d.found = Some(t.to_string());
        }
    }
    s.max_output_tokens = f
        .get("max_output_tokens")
        .and_then(|n| cx.u32(n, "model.max_output_tokens", 1, 10_000_000));
    s
}

/// Strings kept as they are; `{file: ..}` read relative to the mode file.
fn instructions(cx: &mut Cx<'_>, node: &Node, base: Option<&Path>) -> Vec<String> {
    let items: Vec<&Node> = match &node.value {
        yaml::NodeValue::Seq(items) => items.iter().collect(),
        yaml::NodeValue::Str(_) => vec![node],
        _ => {
            cx.type_error(
                node,
                "instructions",
                "a list of strings or `{file: ...}` entries",
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("instructions[{i}]");
        if let Some(s) = item.as_str() {
            out.push(s.to_string());
            continue;
        }
        let Some(f) = cx.map(item, &path, &["file"]) else {
            continue;
        };
        let Some(fnode) = f.get("file") else {
            cx.at(item, &path, "instruction entry is missing `file`");
            continue;
        };
        let Some(rel) = cx.str(fnode, &join(&path, "file")) else {
            continue;
        };
        let Some(base) = base else {
            cx.at(
                fnode,
                &join(&path, "file"),
                "a built-in mode cannot read instruction files",
            )
            .hint = Some("write the instructions inline".to_string());
            continue;
        };
        let full = base.join(&rel);
        let read = std::fs::metadata(&full).and_then(|meta| {
            // A FIFO or device would block the read forever.
            if !meta.is_file() {
                Err(std::io::Error::other("not a regular file"))
            } else if meta.len() > MAX_INSTRUCTION_BYTES {
                Err(std::io::Error::other(format!(
                    "file is larger than {MAX_INSTRUCTION_BYTES} bytes"
                )))
            } else {
                std::fs::read_to_string(&full)
            }
        });
        match read {
            Ok(text) => out.push(text.trim_end().to_string()),
            Err(e) => {
                let d = cx.at(
                    fnode,
                    &join(&path, "file"),
                    format!("cannot read instructions file `{}`: {e}", full.display()),
                );
                d.hint =
                    Some("instruction files are relative to the mode file's folder".to_string());
            }
        }
    }
    out
}

/// Tool names or patterns; an unknown plain name is a warning (newer tools
/// may exist), so the mode still loads.
fn tool_list(cx: &mut Cx<'_>, node: &Node, path: &str) -> Option<Vec<String>> {
    let list = cx.str_list(node, path)?;
    let items: Vec<&Node> = match &node.value {
        yaml::NodeValue::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    for (i, name) in list.iter().enumerate() {
        // `<server>__<tool>` names an MCP tool, known only once its server runs.
        let pattern = name.starts_with("shell:") || name.starts_with("mcp:") || name.contains("__");
        let known = tool_names();
        if pattern || known.contains(&name.as_str()) {
            continue;
        }
        let at = items.get(i).copied().unwrap_or(node);
        let d = cx.warning(
            at.line,
            at.col,
            &format!("{path}[{i}]"),
            format!("unknown tool `{name}`"),
        );
        d.hint = Some(match closest(name, &known) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!(
                "tools: {}, or `shell:<prefix>` / `mcp:<server>/<tool>` patterns, or `<server>__<tool>`",
                known.join(", ")
            ),
        });
    }
    Some(list)
}
