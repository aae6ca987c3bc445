//! What a step produces and spawns: declared `outputs:` (checked against
//! the step type's implicit outputs) and `followups:`.

use std::collections::BTreeMap;

use crate::spec::model::{Followups, OutputSpec};
use crate::spec::yaml::{Node, NodeValue};

use super::cx::{Cx, join};
use super::env::{Env, Site, check_mode};
use super::workflow::valid_id;

/// `outputs:` of a step: `name: {from: json.plan, default: ..}` or
/// `name: json.plan`.
pub(crate) fn step_outputs(
    cx: &mut Cx<'_>,
    node: &Node,
    path: &str,
    kind: &str,
    implicit: &[String],
) -> BTreeMap<String, OutputSpec> {
    let mut out = BTreeMap::new();
    let Some(entries) = node.as_map() else {
        cx.type_error(node, path, "a mapping of output names");
        return out;
    };
    for (k, v) in entries {
        let op = join(path, &k.name);
        if !valid_id(&k.name) {
            cx.error(
                k.line,
                k.col,
                &op,
                format!("invalid output name `{}`", k.name),
            );
            continue;
        }
        let (from, from_node, default) = match &v.value {
            NodeValue::Str(s) => (Some(s.clone()), Some(v), None),
            NodeValue::Map(_) => {
                let Some(f) = cx.map(v, &op, &["from", "default"]) else {
                    continue;
                };
                let from_node = f.get("from");
                let from = from_node.and_then(|n| cx.str(n, &join(&op, "from")));
                if from_node.is_some() && from.is_none() {
                    continue;
                }
                (from, from_node, f.get("default").map(|d| d.to_json()))
            }
            _ => {
                cx.type_error(
                    v,
                    &op,
                    "a path like `json.plan` or `{from: json.plan, default: ...}`",
                );
                continue;
            }
        };
        let from = match from {
            Some(f) => f,
            None if implicit.contains(&k.name) => k.name.clone(),
            None => {
                let d = cx.at(v, &op, format!("output `{}` needs `from:`", k.name));
                d.hint = Some(match kind {
                    "agent" => format!("e.g. `from: json.{}`", k.name),
                    _ => format!("name where it comes from: {}", implicit.join(", ")),
                });
                continue;
            }
        };
        let root = from.split(['.', '[']).next().unwrap_or("");
        if !implicit.iter().any(|i| i == root) {
            let at = from_node.unwrap_or(v);
            let d = cx.at(
                at,
                &join(&op, "from"),
                format!("`from: {from}` does not start with an output of a {kind} step"),
            );
            d.expected = Some(
                implicit
                    .iter()
                    .map(|i| format!("`{i}`"))
                    .collect::<Vec<_>>()
                    .join(" | "),
            );
            d.found = Some(format!("`{root}`"));
            continue;
        }
        out.insert(k.name.clone(), OutputSpec { from, default });
    }
    out
}

pub(crate) fn followups(
    cx: &mut Cx<'_>,
    node: &Node,
    path: &str,
    id: &str,
    env: &mut Env<'_>,
) -> Option<Followups> {
    let f = cx.map(node, path, &["for_each", "when_semantic", "spawn", "max"])?;
    let p = |k: &str| join(path, k);
    let for_each = match f.get("for_each") {
        Some(n) => cx.template(n, &p("for_each")).inspect(|t| {
            env.sites.push(Site {
                template: t.clone(),
                line: n.line,
                col: n.col,
                offset: n.offset,
                path: p("for_each"),
                owner: Some(id.to_string()),
                in_followups: true,
                item_ok: false,
            });
        }),
        None => {
            cx.at(node, path, "`followups` is missing `for_each`").hint =
                Some("e.g. `for_each: ${{ steps.<id>.outputs.<list> }}`".to_string());
            None
        }
    };
    let when_semantic = f
        .get("when_semantic")
        .and_then(|n| cx.text(n, &p("when_semantic")));
    let spawn = match f.get("spawn") {
        Some(s) => {
            let sp = p("spawn");
            cx.map(s, &sp, &["mode", "prompt"]).and_then(|sf| {
                let mode = match sf.get("mode") {
                    Some(m) => check_mode(cx, m, &join(&sp, "mode"), env.modes),
                    None => {
                        cx.at(s, &sp, "`spawn` is missing `mode`");
                        None
                    }
                };
                let prompt = match sf.get("prompt") {
                    Some(n) => cx.template(n, &join(&sp, "prompt")).inspect(|t| {
                        env.sites.push(Site {
                            template: t.clone(),
                            line: n.line,
                            col: n.col,
                            offset: n.offset,
                            path: join(&sp, "prompt"),
                            owner: Some(id.to_string()),
                            in_followups: true,
                            item_ok: true,
                        });
                    }),
                    None => {
                        cx.at(s, &sp, "`spawn` is missing `prompt`");
                        None
                    }
                };
                Some((mode?, prompt?))
            })
        }
        None => {
            cx.at(node, path, "`followups` is missing `spawn`").hint =
                Some("e.g. `spawn: { mode: coder, prompt: \"...\" }`".to_string());
            None
        }
    };
    let max = match f.get("max") {
        Some(n) => {
            let m = cx.u32(n, &p("max"), 1, 1_000)?;
            if m > env.limits.max_followups {
                let d = cx.at(
                    n,
                    &p("max"),
                    format!(
                        "`max` ({m}) exceeds `limits.max_followups` ({})",
                        env.limits.max_followups
                    ),
                );
                d.hint = Some("raise `limits.max_followups` or lower `max`".to_string());
                return None;
            }
            m
        }
        None => env.limits.max_followups.max(1),
    };
    let (spawn_mode, spawn_prompt) = spawn?;
    Some(Followups {
        for_each: for_each?,
        when_semantic,
        spawn_mode,
        spawn_prompt,
        max,
    })
}
