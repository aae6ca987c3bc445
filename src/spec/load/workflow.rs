//! The workflow envelope and its run-wide sections: `inputs`, `defaults`,
//! `limits`, `whisper`, `outputs`. Steps are built in `step.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::spec::model::{
    BreakerLimits, Choice, FollowupPolicy, InputSpec, InputType, Limits, QuestionSpec, RetryPolicy,
    ToUser, WhisperSpec,
};
use crate::spec::yaml::{Node, NodeValue};

use super::cx::{Cx, join};
use super::env::check_mode;
use super::retry::retry_policy;
use crate::spec::ModeRegistry;

pub(crate) const TOP_KEYS: &[&str] = &[
    "version",
    "kind",
    "id",
    "name",
    "description",
    "inputs",
    "defaults",
    "limits",
    "whisper",
    "followups",
    "flowmind",
    "mcp_servers",
    "steps",
    "outputs",
];

const DAY: Duration = Duration::from_secs(86_400);
const WEEK: Duration = Duration::from_secs(7 * 86_400);

/// What `defaults:` gives every step.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepDefaults {
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
}

/// `version: 1`, `kind: workflow`, `id`, `name`, `description`.
pub(crate) fn envelope(
    cx: &mut Cx<'_>,
    root: &Node,
    kind: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    let Some(f) = root.as_map() else {
        return (None, None, None);
    };
    let get = |name: &str| f.iter().find(|(k, _)| k.name == name).map(|(_, v)| v);
    match get("version") {
        Some(v) => {
            if !matches!(v.value, NodeValue::Int(1)) {
                let d = cx.at(v, "version", "unsupported `version`");
                d.expected = Some("1".to_string());
                d.found = Some(v.scalar_text().unwrap_or_else(|| v.kind().to_string()));
            }
        }
        None => {
            cx.error(root.line, root.col, "version", "missing `version`")
                .hint = Some("add `version: 1`".to_string());
        }
    }
    match get("kind") {
        Some(v) => {
            cx.choice(v, "kind", &[kind]);
        }
        None => {
            cx.error(root.line, root.col, "kind", "missing `kind`").hint =
                Some(format!("add `kind: {kind}`"));
        }
    }
    let id = match get("id") {
        Some(v) => cx.str(v, "id").and_then(|s| {
            if valid_id(&s) {
                Some(s)
            } else {
                let d = cx.at(v, "id", format!("invalid id `{s}`"));
                d.hint =
                    Some("use letters, digits, `-` and `_`, starting with a letter".to_string());
                None
            }
        }),
        None => {
            cx.error(root.line, root.col, "id", "missing `id`").hint =
                Some("add `id: my-workflow`".to_string());
            None
        }
    };
    let name = get("name").and_then(|v| cx.text(v, "name"));
    let description = get("description").and_then(|v| cx.text(v, "description"));
    (id, name, description)
}

/// Ids of workflows, steps, questions and inputs: usable inside `${{ }}`.
pub(crate) fn valid_id(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub(crate) fn inputs(cx: &mut Cx<'_>, node: &Node) -> BTreeMap<String, InputSpec> {
    let mut out = BTreeMap::new();
    let Some(entries) = node.as_map() else {
        cx.type_error(node, "inputs", "a mapping of input names");
        return out;
    };
    for (k, v) in entries {
        let path = join("inputs", &k.name);
        if !valid_id(&k.name) {
            cx.error(
                k.line,
                k.col,
                &path,
                format!("invalid input name `{}`", k.name),
            )
            .hint = Some("use letters, digits, `-` and `_`, starting with a letter".to_string());
            continue;
        }
        let Some(fields) = cx.map(v, &path, &["type", "default", "description"]) else {
            continue;
        };
        let ty = match fields.get("type") {
            Some(t) => match cx.choice(
                t,
                &join(&path, "type"),
                &["string", "number", "boolean", "array", "object"],
            ) {
                Some(s) => match s.as_str() {
                    "number" => InputType::Number,
                    "boolean" => InputType::Boolean,
                    "array" => InputType::Array,
                    "object" => InputType::Object,
                    _ => InputType::String,
                },
                None => continue,
            },
            None => InputType::String,
        };
        let default = fields.get("default").map(|d| (d, d.to_json()));
        if let Some((dnode, dval)) = &default {
            let ok = match ty {
                InputType::String => dval.is_string(),
                InputType::Number => dval.is_number(),
                InputType::Boolean => dval.is_boolean(),
                InputType::Array => dval.is_array(),
                InputType::Object => dval.is_object(),
            };
            if !ok {
                let d = cx.at(
                    dnode,
                    &join(&path, "default"),
                    format!("default of input `{}` does not match its type", k.name),
                );
                d.expected = Some(format!("{ty:?}").to_lowercase());
                d.found = Some(dnode.kind().to_string());
            }
        }
        let description = fields
            .get("description")
            .and_then(|d| cx.text(d, &join(&path, "description")));
        out.insert(
            k.name.clone(),
            InputSpec {
                ty,
                required: default.is_none(),
                default: default.map(|(_, v)| v),
                description,
            },
        );
    }
    out
}

pub(crate) fn defaults(cx: &mut Cx<'_>, node: &Node) -> StepDefaults {
    let mut out = StepDefaults::default();
    let Some(f) = cx.map(node, "defaults", &["timeout", "retry"]) else {
        return out;
    };
    if let Some(t) = f.get("timeout") {
        out.timeout = cx.duration(t, "defaults.timeout", WEEK);
    }
    if let Some(r) = f.get("retry") {
        out.retry = retry_policy(cx, r, "defaults.retry", &RetryPolicy::default());
    }
    out
}

pub(crate) fn limits(cx: &mut Cx<'_>, node: &Node) -> Limits {
    let mut l = Limits::default();
    let known = [
        "max_callback_depth",
        "chain_timebox",
        "max_followups",
        "max_questions",
        "max_tokens",
        "max_cost_usd",
        "circuit_breaker",
        "max_parallel",
    ];
    let Some(f) = cx.map(node, "limits", &known) else {
        return l;
    };
    if let Some(v) = f.get("max_callback_depth") {
        l.max_callback_depth = cx
            .u32(v, "limits.max_callback_depth", 1, 64)
            .unwrap_or(l.max_callback_depth);
    }
    if let Some(v) = f.get("chain_timebox") {
        l.chain_timebox = cx
            .duration(v, "limits.chain_timebox", WEEK)
            .unwrap_or(l.chain_timebox);
    }
    if let Some(v) = f.get("max_followups") {
        l.max_followups = cx
            .u32(v, "limits.max_followups", 0, 10_000)
            .unwrap_or(l.max_followups);
    }
    if let Some(v) = f.get("max_questions") {
        l.max_questions = cx
            .u32(v, "limits.max_questions", 0, 1_000)
            .unwrap_or(l.max_questions);
    }
    if let Some(v) = f.get("max_tokens") {
        l.max_tokens = cx
            .int(v, "limits.max_tokens", 1, i64::MAX)
            .and_then(|i| u64::try_from(i).ok());
    }
    if let Some(v) = f.get("max_cost_usd")
        && let Some(c) = cx.number(v, "limits.max_cost_usd")
    {
        if c > 0.0 && c <= 1_000_000.0 {
            l.max_cost_usd = Some(c);
        } else {
            let d = cx.at(v, "limits.max_cost_usd", "`max_cost_usd` is out of range");
            d.expected = Some("a positive amount up to 1000000".to_string());
            d.found = Some(c.to_string());
        }
    }
    if let Some(v) = f.get("max_parallel") {
        l.max_parallel = cx
            .u32(v, "limits.max_parallel", 1, 256)
            .unwrap_or(l.max_parallel);
    }
    if let Some(v) = f.get("circuit_breaker") {
        l.circuit_breaker = breaker(cx, v);
    }
    l
}

fn breaker(cx: &mut Cx<'_>, node: &Node) -> BreakerLimits {
    let mut b = BreakerLimits::default();
    let path = "limits.circuit_breaker";
    let Some(f) = cx.map(node, path, &["consecutive_failures", "cooldown"]) else {
        return b;
    };
    if let Some(v) = f.get("consecutive_failures") {
        b.consecutive_failures = cx
            .u32(v, &join(path, "consecutive_failures"), 1, 1_000)
            .unwrap_or(b.consecutive_failures);
    }
    if let Some(v) = f.get("cooldown") {
        b.cooldown = cx
            .duration(v, &join(path, "cooldown"), DAY)
            .unwrap_or(b.cooldown);
    }
    b
}

/// The top-level `followups: { propose, auto }`; `auto` is `true`, `false`
/// or a list of mode ids.
pub(crate) fn followup_policy(
    cx: &mut Cx<'_>,
    node: &Node,
    modes: &ModeRegistry,
) -> FollowupPolicy {
    let mut p = FollowupPolicy::default();
    let Some(f) = cx.map(node, "followups", &["propose", "auto"]) else {
        return p;
    };
    if let Some(v) = f.get("propose") {
        p.propose = cx.bool(v, "followups.propose").unwrap_or(false);
    }
    match f.get("auto") {
        Some(Node {
            value: NodeValue::Seq(items),
            ..
        }) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(m) = check_mode(cx, item, &format!("followups.auto[{i}]"), modes) {
                    p.auto_modes.push(m);
                }
            }
        }
        Some(v) => {
            if !matches!(v.value, NodeValue::Bool(_)) {
                cx.type_error(v, "followups.auto", "`true`, `false` or a list of mode ids");
            }
            p.auto = matches!(v.value, NodeValue::Bool(true));
        }
        None => {}
    }
    p
}

/// The top-level `mcp_servers:` (the config's format; a relative `cwd` is
/// taken from the workflow's directory).
pub(crate) fn mcp_servers(
    cx: &mut Cx<'_>,
    node: &Node,
    base: &std::path::Path,
) -> BTreeMap<String, crate::config::mcp_servers::McpServer> {
    use crate::config::mcp_servers::{Entry, build};
    let mut out = BTreeMap::new();
    let Some(servers) = node.as_map() else {
        cx.type_error(node, "mcp_servers", "a mapping of server names to servers");
        return out;
    };
    const KEYS: &[&str] = &[
        "command",
        "args",
        "env",
        "cwd",
        "url",
        "headers",
        "headers_env",
        "timeout_s",
    ];
    for (key, value) in servers {
        let path = join("mcp_servers", &key.name);
        let Some(f) = cx.map(value, &path, KEYS) else {
            continue;
        };
        let text = |cx: &mut Cx<'_>, k: &str| f.get(k).and_then(|n| cx.text(n, &join(&path, k)));
        let command = text(cx, "command");
        let url = text(cx, "url");
        let cwd = text(cx, "cwd").map(std::path::PathBuf::from);
        let args = f
            .get("args")
            .and_then(|n| cx.str_list(n, &join(&path, "args")));
        let table = |cx: &mut Cx<'_>, k: &str| {
            let n = f.get(k)?;
            let Some(entries) = n.as_map() else {
                cx.type_error(n, &join(&path, k), "a mapping of names to strings");
                return None;
            };
            let mut t = BTreeMap::new();
            for (name, v) in entries {
                if let Some(v) = cx.text(v, &join(&join(&path, k), &name.name)) {
                    t.insert(name.name.clone(), v);
                }
            }
            Some(t)
        };
        let env = table(cx, "env");
        let headers = table(cx, "headers");
        let headers_env = table(cx, "headers_env");
        let timeout_s = f
            .get("timeout_s")
            .and_then(|n| cx.int(n, &join(&path, "timeout_s"), 1, 86_400))
            .map(|s| s as u64);
        let entry = Entry {
            command,
            args,
            env,
            cwd,
            url,
            headers,
            headers_env,
            timeout_s,
        };
        match build(&key.name, entry, base) {
            Ok(server) => {
                out.insert(key.name.clone(), server);
            }
            Err(message) => {
                cx.error(key.line, key.col, &path, message);
            }
        }
    }
    out
}

/// The top-level `flowmind:`: FlowMind's settings for this workflow's runs,
/// over the config's (its model and provider stay the config's).
pub(crate) fn flowmind(cx: &mut Cx<'_>, node: &Node) -> Option<crate::protocol::FlowmindOverride> {
    let f = cx.map(
        node,
        "flowmind",
        &[
            "mode",
            "cadence",
            "budget",
            "stalls",
            "repeats",
            "instructions",
            "silence",
            "conductor",
        ],
    )?;
    let mut o = crate::protocol::FlowmindOverride::default();
    if let Some(v) = f.get("mode") {
        o.mode = cx.choice(v, "flowmind.mode", &["off", "fallback", "model"]);
    }
    if let Some(v) = f.get("cadence") {
        o.cadence = cx.u32(v, "flowmind.cadence", 1, 1000);
    }
    if let Some(v) = f.get("budget") {
        o.budget = cx
            .int(v, "flowmind.budget", 0, 1_000_000_000)
            .map(|n| n as u64);
    }
    if let Some(v) = f.get("stalls") {
        o.stalls = cx.u32(v, "flowmind.stalls", 1, 1000);
    }
    if let Some(v) = f.get("repeats") {
        o.repeats = cx.u32(v, "flowmind.repeats", 2, 1000);
    }
    if let Some(v) = f.get("instructions") {
        o.instructions = cx.u32(v, "flowmind.instructions", 0, 1000);
    }
    if let Some(v) = f.get("silence") {
        o.silence_ms = cx
            .duration(v, "flowmind.silence", DAY)
            .map(|d| d.as_millis() as u64);
    }
    if let Some(c) = f.get("conductor") {
        let c = cx.map(
            c,
            "flowmind.conductor",
            &["confidence", "categories", "grace"],
        )?;
        if let Some(v) = c.get("confidence") {
            match cx.number(v, "flowmind.conductor.confidence") {
                Some(x) if (0.0..=1.0).contains(&x) => o.confidence = Some(x),
                Some(_) => {
                    cx.at(
                        v,
                        "flowmind.conductor.confidence",
                        "must be between 0 and 1",
                    );
                }
                None => {}
            }
        }
        if let Some(v) = c.get("categories") {
            let mut kept = Vec::new();
            match &v.value {
                NodeValue::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(k) = cx.choice(
                            item,
                            &format!("flowmind.conductor.categories[{i}]"),
                            &crate::config::CATEGORIES,
                        ) {
                            kept.push(k);
                        }
                    }
                }
                _ => cx.type_error(v, "flowmind.conductor.categories", "a list of categories"),
            }
            o.categories = Some(kept);
        }
        if let Some(v) = c.get("grace") {
            o.grace_ms = cx
                .duration(v, "flowmind.conductor.grace", DAY)
                .map(|d| d.as_millis() as u64);
        }
    }
    Some(o)
}

pub(crate) fn whisper(cx: &mut Cx<'_>, node: &Node) -> WhisperSpec {
    let mut w = WhisperSpec::default();
    let Some(f) = cx.map(node, "whisper", &["to_user", "answer_timeout", "questions"]) else {
        return w;
    };
    if let Some(v) = f.get("to_user") {
        w.to_user = match cx
            .choice(v, "whisper.to_user", &["ask", "defaults", "never"])
            .as_deref()
        {
            Some("defaults") => ToUser::Defaults,
            Some("never") => ToUser::Never,
            _ => ToUser::Ask,
        };
    }
    if let Some(v) = f.get("answer_timeout") {
        w.answer_timeout = cx
            .duration(v, "whisper.answer_timeout", WEEK)
            .unwrap_or(w.answer_timeout);
    }
    if let Some(v) = f.get("questions") {
        let NodeValue::Seq(items) = &v.value else {
            cx.type_error(v, "whisper.questions", "a list of questions");
            return w;
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("whisper.questions[{i}]");
            if let Some(q) = question(cx, item, &path) {
                if w.questions.iter().any(|o| o.id == q.id) {
                    cx.at(item, &path, format!("duplicate question id `{}`", q.id));
                    continue;
                }
                w.questions.push(q);
            }
        }
    }
    w
}

fn question(cx: &mut Cx<'_>, node: &Node, path: &str) -> Option<QuestionSpec> {
    let f = cx.map(node, path, &["id", "header", "ask", "options", "default"])?;
    let id = match f.get("id") {
        Some(v) => {
            let s = cx.str(v, &join(path, "id"))?;
            if !valid_id(&s) {
                cx.at(v, &join(path, "id"), format!("invalid question id `{s}`"))
                    .hint =
                    Some("use letters, digits, `-` and `_`, starting with a letter".to_string());
                return None;
            }
            s
        }
        None => {
            cx.at(node, path, "question is missing `id`");
            return None;
        }
    };
    let ask = match f.get("ask") {
        Some(v) => cx.text(v, &join(path, "ask"))?,
        None => {
            cx.at(node, path, format!("question `{id}` is missing `ask`"));
            return None;
        }
    };
    let header = f
        .get("header")
        .and_then(|v| cx.text(v, &join(path, "header")));
    if let (Some(h), Some(v)) = (&header, f.get("header"))
        && h.chars().count() > 12
    {
        cx.warning(
            v.line,
            v.col,
            &join(path, "header"),
            "header is longer than 12 characters; it will be cut in the sidebar",
        );
    }
    let options = f
        .get("options")
        .map(|v| choices(cx, v, &join(path, "options")))
        .unwrap_or_default();
    let default = check_default(cx, f.get("default"), &options, &join(path, "default"));
    Some(QuestionSpec {
        id,
        header,
        ask,
        options,
        default,
    })
}

/// `default:` of a question: text, and one of the option values when there
/// are options.
pub(crate) fn check_default(
    cx: &mut Cx<'_>,
    node: Option<&Node>,
    options: &[Choice],
    path: &str,
) -> Option<String> {
    let node = node?;
    let s = cx.text(node, path)?;
    if !options.is_empty() && !options.iter().any(|o| o.value == s) {
        let d = cx.at(
            node,
            path,
            format!("default `{s}` is not one of the options"),
        );
        d.expected = Some(
            options
                .iter()
                .map(|o| format!("`{}`", o.value))
                .collect::<Vec<_>>()
                .join(" | "),
        );
        d.found = Some(format!("`{s}`"));
        return None;
    }
    Some(s)
}

/// `options:` as `{value, label}` mappings or plain strings.
pub(crate) fn choices(cx: &mut Cx<'_>, node: &Node, path: &str) -> Vec<Choice> {
    let NodeValue::Seq(items) = &node.value else {
        cx.type_error(node, path, "a list of options");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ipath = format!("{path}[{i}]");
        if let Some(s) = item.scalar_text() {
            out.push(Choice {
                value: s.clone(),
                label: s,
            });
            continue;
        }
        let Some(f) = cx.map(item, &ipath, &["value", "label"]) else {
            continue;
        };
        let Some(vnode) = f.get("value") else {
            cx.at(item, &ipath, "option is missing `value`");
            continue;
        };
        let Some(value) = cx.text(vnode, &join(&ipath, "value")) else {
            continue;
        };
        let label = f
            .get("label")
            .and_then(|l| cx.text(l, &join(&ipath, "label")))
            .unwrap_or_else(|| value.clone());
        out.push(Choice { value, label });
    }
    out
}
