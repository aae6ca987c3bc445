//! One step: its type, type-specific fields, inherited defaults, declared
//! outputs and follow-ups. Templates are recorded as `Site`s so the graph
//! checks (upstream references) can run once every step is known.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::spec::expr::Template;
use crate::spec::model::{
    DoneWhen, OnTimeout, ScreenRule, Step, StepKind, TerminalSize, Workspace,
};
use crate::spec::yaml::{Key, Node, NodeValue};

use super::cx::{Cx, closest, join, json_template, some_names};
use super::env::{Env, check_mode};
use super::outputs::{followups, step_outputs};
use super::retry::retry_policy;
use super::workflow::{check_default, choices};

const WEEK: Duration = Duration::from_secs(7 * 86_400);

const COMMON: &[&str] = &[
    "type",
    "needs",
    "if",
    "retry",
    "timeout",
    "continue_on_error",
    "idempotent",
    "outputs",
    "followups",
    "when_semantic",
    "whisper",
    "workspace",
];

const TYPES: &[(&str, &[&str])] = &[
    (
        "agent",
        &[
            "mode",
            "prompt",
            "output_schema",
            "max_turns",
            "allow_shell",
            "model",
            "ask_agent",
        ],
    ),
    ("shell", &["run", "env", "cwd"]),
    ("approval", &["message", "show", "on_timeout"]),
    ("question", &["ask", "header", "options", "default"]),
    (
        "pty",
        &[
            "command",
            "args",
            "prompt",
            "env",
            "cwd",
            "size",
            "cli",
            "done_when",
            "input_when",
        ],
    ),
    ("workflow", &["uses", "with"]),
];

/// What the graph checks need to know about a step, even one that failed
/// to build (so one broken step does not cause "unknown step" noise).
pub(crate) struct StepInfo {
    pub id: String,
    pub needs: Vec<(String, u32, u32)>,
    /// Output names others may reference; `None` when unknown (broken step).
    pub outputs: Option<Vec<String>>,
}

fn all_step_keys() -> Vec<&'static str> {
    let mut keys: Vec<&str> = COMMON.to_vec();
    for (_, ks) in TYPES {
        keys.extend_from_slice(ks);
    }
    keys
}

fn implicit_outputs(kind: &str) -> &'static [&'static str] {
    match kind {
        "agent" => &["text", "json"],
        "shell" => &["stdout", "stderr", "exit_code"],
        "approval" => &["approved", "comment"],
        "question" => &["answer"],
        "pty" => &["text", "exit_code", "session"],
        _ => &[],
    }
}

pub(crate) fn build_step(
    cx: &mut Cx<'_>,
    key: &Key,
    node: &Node,
    env: &mut Env<'_>,
) -> (Option<Step>, StepInfo) {
    let id = key.name.clone();
    let path = join("steps", &id);
    let mut info = StepInfo {
        id: id.clone(),
        needs: Vec::new(),
        outputs: None,
    };
    let all = all_step_keys();
    let Some(f) = cx.map(node, &path, &all) else {
        return (None, info);
    };
    let p = |k: &str| join(&path, k);

    // needs first, so the graph checks see them even if the rest is broken.
    if let Some(n) = f.get("needs") {
        let items: Vec<&Node> = match &n.value {
            NodeValue::Seq(items) => items.iter().collect(),
            NodeValue::Str(_) => vec![n],
            _ => {
                cx.type_error(n, &p("needs"), "a list of step ids");
                Vec::new()
            }
        };
        for (i, item) in items.iter().enumerate() {
            if let Some(s) = cx.str(item, &format!("{}[{i}]", p("needs")))
                && !info.needs.iter().any(|(o, _, _)| *o == s)
            {
                info.needs.push((s, item.line, item.col));
            }
        }
    }

    let kind_name: Option<String> = match f.get("type") {
        Some(t) => {
            let names: Vec<&str> = TYPES.iter().map(|(n, _)| *n).collect();
            cx.choice(t, &p("type"), &names)
        }
        None if f.has("mode") => Some("agent".to_string()),
        None => {
            let d = cx.error(
                key.line,
                key.col,
                &path,
                format!("step `{id}` has no `type`"),
            );
            d.hint = Some(
                "add `type: shell | approval | question | pty | workflow`, or a `mode:` to make it an agent step"
                    .to_string(),
            );
            None
        }
    };

    // Keys that belong to another step type.
    if let Some(kn) = &kind_name {
        let own: &[&str] = TYPES
            .iter()
            .find(|(n, _)| n == kn)
            .map(|(_, ks)| *ks)
            .unwrap_or(&[]);
        for (k, _) in f.entries() {
            let name = k.name.as_str();
            if COMMON.contains(&name) || own.contains(&name) || !all.contains(&name) {
                continue;
            }
            let owner = TYPES
                .iter()
                .filter(|(_, ks)| ks.contains(&name))
                .map(|(n, _)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let d = cx.error(
                k.line,
                k.col,
                &p(name),
                format!("`{name}` does not apply to a `{kn}` step"),
            );
            d.hint = Some(format!("`{name}` belongs to {owner} steps"));
        }
        let asks_under_whisper = f
            .get("whisper")
            .and_then(Node::as_map)
            .and_then(|m| m.iter().find(|(k, _)| k.name == "ask_agent"));
        if let Some((k, _)) = asks_under_whisper
            && kn != "agent"
        {
            let d = cx.error(
                k.line,
                k.col,
                &p("whisper.ask_agent"),
                format!("`whisper.ask_agent` is for agent steps, and this is a `{kn}` step"),
            );
            d.hint = Some("remove it, or make the step an agent step".to_string());
        }
    }

    let condition = f
        .get("if")
        .and_then(|n| condition(cx, n, &p("if")))
        .inspect(|t| {
            if let Some(n) = f.get("if") {
                env.site(t, n, &p("if"), &id);
            }
        });
    let retry = match f.get("retry") {
        Some(r) => retry_policy(cx, r, &p("retry"), &env.defaults.retry),
        None => env.defaults.retry.clone(),
    };
    let timeout = match f.get("timeout") {
        Some(t) => cx.duration(t, &p("timeout"), WEEK),
        None => env.defaults.timeout,
    };
    let continue_on_error = f
        .get("continue_on_error")
        .and_then(|n| cx.bool(n, &p("continue_on_error")))
        .unwrap_or(false);
    let idempotent = f
        .get("idempotent")
        .and_then(|n| cx.bool(n, &p("idempotent")))
        .unwrap_or(false);
    let hints = f
        .get("whisper")
        .map(|n| step_whisper(cx, n, &p("whisper")))
        .unwrap_or_default();
    let workspace = f.get("workspace").and_then(|n| {
        let wf = cx.map(n, &p("workspace"), &["worktree", "base"])?;
        let worktree = match wf.get("worktree") {
            Some(b) => cx.bool(b, &join(&p("workspace"), "worktree"))?,
            None => false,
        };
        let base = match wf.get("base") {
            Some(b) => Some(cx.str(b, &join(&p("workspace"), "base"))?),
            None => None,
        };
        Some(Workspace { worktree, base })
    });

    let Some(kind_name) = kind_name else {
        return (None, info);
    };
    let kind = build_kind(cx, &kind_name, &f, node, &path, &id, env);
    // An agent step whose mode's agent is a CLI runs that CLI in a terminal.
    let kind = kind.and_then(|k| match k.in_terminal(env.modes) {
        Ok(k) => Some(k),
        Err((key, why)) => {
            let (at, path) = match f.get(key) {
                Some(n) => (n, p(key)),
                None => (f.get("mode").unwrap_or(node), p("mode")),
            };
            cx.at(at, &path, why);
            None
        }
    });
    let kind_name = match &kind {
        Some(StepKind::Pty { .. }) => "pty".to_string(),
        _ => kind_name,
    };

    let mut implicit: Vec<String> = implicit_outputs(&kind_name)
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(StepKind::Workflow { child, .. }) = &kind {
        implicit = child.outputs.keys().cloned().collect();
    }
    if let Some(StepKind::Agent { ask_agent, .. }) = &kind
        && !ask_agent.is_empty()
    {
        implicit.push("ask_agent".to_string());
    }
    let outputs = match f.get("outputs") {
        Some(o) => step_outputs(cx, o, &p("outputs"), &kind_name, &implicit),
        None => BTreeMap::new(),
    };
    let followups = f
        .get("followups")
        .and_then(|n| followups(cx, n, &p("followups"), &id, env))
        .map(Box::new);
    let when_semantic = f
        .get("when_semantic")
        .and_then(|n| cx.text(n, &p("when_semantic")))
        .filter(|c| !c.trim().is_empty());

    if kind_name != "workflow" || kind.is_some() {
        let mut names = implicit.clone();
        names.extend(outputs.keys().cloned());
        info.outputs = Some(names);
    }
    let Some(kind) = kind else {
        return (None, info);
    };
    // An agent step without its own `timeout:` takes its mode's
    // `limits.timeout` before the workflow's `defaults.timeout`: the mode
    // says how long its kind of work may take.
    let mode_timeout = match &kind {
        StepKind::Agent { mode, .. } if f.get("timeout").is_none() => {
            env.modes.get(mode).and_then(|m| m.timeout)
        }
        _ => None,
    };
    let timeout = mode_timeout.or(timeout);
    let step = Step {
        id,
        needs: info.needs.iter().map(|(n, _, _)| n.clone()).collect(),
        kind,
        condition,
        retry,
        timeout,
        continue_on_error,
        idempotent,
        outputs,
        followups,
        when_semantic,
        hints,
        workspace,
    };
    (Some(step), info)
}

/// `ask_agent:` one question or a list of them, each a template.
fn questions(
    cx: &mut Cx<'_>,
    env: &mut Env<'_>,
    node: &Node,
    path: &str,
    owner: &str,
) -> Vec<Template> {
    match &node.value {
        NodeValue::Seq(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| env.template(cx, item, &format!("{path}[{i}]"), owner))
            .collect(),
        _ => env.template(cx, node, path, owner).into_iter().collect(),
    }
}

/// `if:` accepts `${{ expr }}`, a bare expression (`success()`), or a boolean.
fn condition(cx: &mut Cx<'_>, node: &Node, path: &str) -> Option<Template> {
    match &node.value {
        NodeValue::Bool(b) => Template::parse(&format!("${{{{ {b} }}}}")).ok(),
        NodeValue::Str(s) if !s.contains("${{") => {
            let wrapped = format!("${{{{ {s} }}}}");
            match Template::parse(&wrapped) {
                Ok(t) => Some(t),
                Err(e) => {
                    let (line, col) = cx.locate(node, s, e.offset.saturating_sub(4));
                    cx.error(line, col, path, format!("bad condition: {}", e.message));
                    None
                }
            }
        }
        _ => cx.template(node, path),
    }
}

fn step_whisper(cx: &mut Cx<'_>, node: &Node, path: &str) -> Vec<String> {
    // `ask_agent` is read with the agent's kind (it is an agent's key).
    let Some(f) = cx.map(node, path, &["to_llm", "ask_agent"]) else {
        return Vec::new();
    };
    f.get("to_llm")
        .and_then(|n| cx.str_list(n, &join(path, "to_llm")))
        .unwrap_or_default()
}

/// A step's `env:`, each value a template; names must be variable names.
fn env_vars(
    cx: &mut Cx<'_>,
    f: &super::cx::Fields<'_>,
    path: &str,
    env: &mut Env<'_>,
    id: &str,
) -> BTreeMap<String, Template> {
    let mut envs = BTreeMap::new();
    let Some(e) = f.get("env") else {
        return envs;
    };
    let Some(entries) = e.as_map() else {
        cx.type_error(e, path, "a mapping of variable names to values");
        return envs;
    };
    for (k, v) in entries {
        let kp = join(path, &k.name);
        let ok = k
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            cx.error(
                k.line,
                k.col,
                &kp,
                format!("invalid environment variable name `{}`", k.name),
            );
            continue;
        }
        if let Some(t) = env.template(cx, v, &kp, id) {
            envs.insert(k.name.clone(), t);
        }
    }
    envs
}

/// `size: 120x40`: columns by rows.
pub(crate) fn terminal_size(cx: &mut Cx<'_>, node: &Node, path: &str) -> Option<TerminalSize> {
    let text = cx.str(node, path)?;
    let parsed = text.split_once(['x', 'X', '×']).and_then(|(c, r)| {
        let cols = c.trim().parse::<u16>().ok()?;
        let rows = r.trim().parse::<u16>().ok()?;
        ((10..=1000).contains(&cols) && (2..=500).contains(&rows))
            .then_some(TerminalSize { rows, cols })
    });
    if parsed.is_none() {
        let d = cx.at(node, path, format!("`{text}` is not a terminal size"));
        d.expected = Some("columns x rows, like `120x40` (10–1000 by 2–500)".into());
    }
    parsed
}

/// A screen rule: `{ pattern: REGEX, idle: 2s }` (either may be left out;
/// `idle` defaults to 2 seconds).
fn screen_rule(cx: &mut Cx<'_>, node: &Node, path: &str) -> Option<ScreenRule> {
    let f = cx.map(node, path, &["pattern", "idle"])?;
    let pattern = match f.get("pattern") {
        Some(n) => {
            let text = cx.str(n, &join(path, "pattern"))?;
            if let Err(e) = regex::RegexBuilder::new(&text).size_limit(1 << 20).build() {
                cx.at(
                    n,
                    &join(path, "pattern"),
                    format!("`pattern` is not a regular expression: {e}"),
                );
                return None;
            }
            Some(text)
        }
        None => None,
    };
    let idle = match f.get("idle") {
        Some(n) => cx.duration(n, &join(path, "idle"), Duration::from_secs(3600))?,
        None => Duration::from_secs(2),
    };
    Some(ScreenRule {
        pattern,
        idle_ms: idle.as_millis() as u64,
    })
}

/// `done_when: exit | stop | { pattern, idle }`.
pub(crate) fn done_when(cx: &mut Cx<'_>, node: &Node, path: &str) -> Option<DoneWhen> {
    match &node.value {
        NodeValue::Str(_) => match cx.choice(node, path, &["exit", "stop"])?.as_str() {
            "stop" => Some(DoneWhen::Stop),
            _ => Some(DoneWhen::Exit),
        },
        _ => screen_rule(cx, node, path).map(DoneWhen::Screen),
    }
}

fn required<'n>(
    cx: &mut Cx<'_>,
    f: &super::cx::Fields<'n>,
    node: &Node,
    path: &str,
    kind: &str,
    key: &str,
) -> Option<&'n Node> {
    let v = f.get(key);
    if v.is_none() {
        let d = cx.at(node, path, format!("{kind} step is missing `{key}`"));
        d.hint = Some(format!("add `{key}:` to `{path}`"));
    }
    v
}

fn build_kind(
    cx: &mut Cx<'_>,
    kind: &str,
    f: &super::cx::Fields<'_>,
    node: &Node,
    path: &str,
    id: &str,
    env: &mut Env<'_>,
) -> Option<StepKind> {
    let p = |k: &str| join(path, k);
    match kind {
        "agent" => {
            let mode = required(cx, f, node, path, "an agent", "mode")
                .and_then(|m| check_mode(cx, m, &p("mode"), env.modes));
            let prompt = required(cx, f, node, path, "an agent", "prompt")
                .and_then(|n| env.template(cx, n, &p("prompt"), id));
            let output_schema = f
                .get("output_schema")
                .and_then(|n| schema(cx, n, &p("output_schema")));
            let max_turns = f
                .get("max_turns")
                .and_then(|n| cx.u32(n, &p("max_turns"), 1, 1_000));
            let allow_shell = f
                .get("allow_shell")
                .and_then(|n| cx.str_list(n, &p("allow_shell")))
                .unwrap_or_default();
            let model = f.get("model").and_then(|n| cx.str(n, &p("model")));
            let mut ask_agent = f
                .get("ask_agent")
                .map(|n| questions(cx, env, n, &p("ask_agent"), id))
                .unwrap_or_default();
            // The same questions may sit under `whisper:` with the hints.
            let under_whisper = f
                .get("whisper")
                .and_then(Node::as_map)
                .and_then(|m| m.iter().find(|(k, _)| k.name == "ask_agent"));
            if let Some((_, n)) = under_whisper {
                ask_agent.extend(questions(cx, env, n, &p("whisper.ask_agent"), id));
            }
            Some(StepKind::Agent {
                mode: mode?,
                prompt: prompt?,
                output_schema,
                max_turns,
                allow_shell,
                model,
                ask_agent,
            })
        }
        "shell" => {
            let run = required(cx, f, node, path, "a shell", "run")
                .and_then(|n| env.template(cx, n, &p("run"), id));
            let envs = env_vars(cx, f, &p("env"), env, id);
            let cwd = f
                .get("cwd")
                .and_then(|n| env.template(cx, n, &p("cwd"), id));
            Some(StepKind::Shell {
                run: run?,
                env: envs,
                cwd,
            })
        }
        "approval" => {
            let message = required(cx, f, node, path, "an approval", "message")
                .and_then(|n| env.template(cx, n, &p("message"), id));
            let show = f
                .get("show")
                .and_then(|n| cx.str_list(n, &p("show")))
                .unwrap_or_default();
            if let Some(n) = f.get("show") {
                // `steps.X.outputs.Y` entries are references: check them like templates.
                for s in show.iter().filter(|s| s.starts_with("steps.")) {
                    match Template::parse(&format!("${{{{ {s} }}}}")) {
                        Ok(t) => env.site(&t, n, &p("show"), id),
                        Err(e) => {
                            cx.at(
                                n,
                                &p("show"),
                                format!("bad reference `{s}` in `show`: {}", e.message),
                            );
                        }
                    }
                }
            }
            let on_timeout = match f.get("on_timeout") {
                Some(n) => match cx
                    .choice(n, &p("on_timeout"), &["fail", "approve", "skip"])
                    .as_deref()
                {
                    Some("approve") => OnTimeout::Approve,
                    Some("skip") => OnTimeout::Skip,
                    _ => OnTimeout::Fail,
                },
                None => OnTimeout::Fail,
            };
            Some(StepKind::Approval {
                message: message?,
                show,
                on_timeout,
            })
        }
        "question" => {
            let ask = required(cx, f, node, path, "a question", "ask")
                .and_then(|n| env.template(cx, n, &p("ask"), id));
            let header = f.get("header").and_then(|n| cx.text(n, &p("header")));
            let options = f
                .get("options")
                .map(|n| choices(cx, n, &p("options")))
                .unwrap_or_default();
            let default = check_default(cx, f.get("default"), &options, &p("default"));
            Some(StepKind::Question {
                ask: ask?,
                header,
                options,
                default,
            })
        }
        "pty" => {
            let command = required(cx, f, node, path, "a pty", "command")
                .and_then(|n| cx.str(n, &p("command")));
            let args = f
                .get("args")
                .and_then(|n| cx.str_list(n, &p("args")))
                .unwrap_or_default();
            let prompt = f
                .get("prompt")
                .and_then(|n| env.template(cx, n, &p("prompt"), id));
            let envs = env_vars(cx, f, &p("env"), env, id);
            let cwd = f
                .get("cwd")
                .and_then(|n| env.template(cx, n, &p("cwd"), id));
            let size = match f.get("size") {
                Some(n) => terminal_size(cx, n, &p("size"))?,
                None => TerminalSize::default(),
            };
            let cli = f.get("cli").and_then(|n| cx.str(n, &p("cli")));
            let done = match f.get("done_when") {
                Some(n) => done_when(cx, n, &p("done_when"))?,
                None => DoneWhen::Exit,
            };
            let input_when = match f.get("input_when") {
                Some(n) => Some(screen_rule(cx, n, &p("input_when"))?),
                None => None,
            };
            Some(StepKind::Pty {
                command: command?,
                args,
                prompt,
                cwd,
                env: envs,
                size,
                cli,
                done_when: done,
                input_when,
                mode: None,
            })
        }
        "workflow" => {
            let unode = required(cx, f, node, path, "a workflow", "uses")?;
            let uses = cx.str(unode, &p("uses"))?;
            let child = (env.load_child)(cx, unode, &uses, &p("uses"));
            let mut with = BTreeMap::new();
            if let Some(w) = f.get("with") {
                match w.as_map() {
                    Some(entries) => {
                        for (k, v) in entries {
                            let kp = join(&p("with"), &k.name);
                            if let Some(c) = &child
                                && !c.inputs.contains_key(&k.name)
                            {
                                let names: Vec<&str> =
                                    c.inputs.keys().map(String::as_str).collect();
                                let d = cx.error(
                                    k.line,
                                    k.col,
                                    &kp,
                                    format!("child workflow `{}` has no input `{}`", c.id, k.name),
                                );
                                d.hint = closest(&k.name, &names)
                                    .map(|n| format!("did you mean `{n}`?"))
                                    .or_else(|| {
                                        Some(format!("its inputs: {}", some_names(&names)))
                                    });
                                continue;
                            }
                            let t = match &v.value {
                                NodeValue::Str(_) => env.template(cx, v, &kp, id),
                                _ => Some(json_template(&v.to_json())),
                            };
                            if let Some(t) = t {
                                with.insert(k.name.clone(), t);
                            }
                        }
                    }
                    None => cx.type_error(w, &p("with"), "a mapping of input names to values"),
                }
            }
            let child = child?;
            for (name, spec) in &child.inputs {
                if spec.required && !with.contains_key(name) {
                    let at = f.get("with").unwrap_or(unode);
                    let d = cx.at(
                        at,
                        &p("with"),
                        format!("child workflow `{}` needs input `{name}`", child.id),
                    );
                    d.hint = Some(format!("add `{name}:` under `with:`"));
                }
            }
            Some(StepKind::Workflow {
                uses,
                with,
                child: Box::new(child),
            })
        }
        _ => None,
    }
}

fn schema(cx: &mut Cx<'_>, node: &Node, path: &str) -> Option<serde_json::Value> {
    if !matches!(node.value, NodeValue::Map(_) | NodeValue::Bool(_)) {
        cx.type_error(node, path, "a JSON Schema (a mapping)");
        return None;
    }
    let v = node.to_json();
    if let Err(e) = jsonschema::validator_for(&v) {
        cx.at(
            node,
            path,
            format!("`output_schema` is not a valid JSON Schema: {e}"),
        );
        return None;
    }
    Some(v)
}
