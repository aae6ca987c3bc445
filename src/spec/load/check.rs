//! Whole-workflow checks that need every step: `needs` naming real steps,
//! the graph acyclic, and every template reference resolvable (upstream
//! steps, declared outputs, inputs and whisper questions, `item` placement).

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::expr::Reference;
use crate::spec::model::{InputSpec, WhisperSpec};

use super::cx::{Cx, closest, some_names};
use super::env::Site;
use super::step::StepInfo;

pub(crate) fn needs(cx: &mut Cx<'_>, infos: &[StepInfo]) {
    let ids: Vec<&str> = infos.iter().map(|i| i.id.as_str()).collect();
    let known: BTreeSet<&str> = ids.iter().copied().collect();
    for info in infos {
        if cx.is_full() {
            return;
        }
        for (need, line, col) in &info.needs {
            let path = format!("steps.{}.needs", info.id);
            if need == &info.id {
                cx.error(*line, *col, &path, format!("step `{need}` needs itself"));
                continue;
            }
            if !known.contains(need.as_str()) {
                let d = cx.error(
                    *line,
                    *col,
                    &path,
                    format!("step `{}` needs `{need}`, which is not a step", info.id),
                );
                d.hint = Some(match closest(need, &ids) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => format!("steps: {}", some_names(&ids)),
                });
            }
        }
    }
}

/// Reports each cycle once, at the `needs` entry that closes it.
pub(crate) fn cycles(cx: &mut Cx<'_>, infos: &[StepInfo]) {
    let index: BTreeMap<&str, usize> = infos
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; infos.len()];
    for start in 0..infos.len() {
        if state[start] != 0 {
            continue;
        }
        // Iterative DFS: (node, next edge index); the stack is the path.
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (node, ref mut edge)) = stack.last_mut() {
            let needs = &infos[node].needs;
            if *edge >= needs.len() {
                state[node] = 2;
                stack.pop();
                continue;
            }
            let (need, line, col) = &needs[*edge];
            *edge += 1;
            let Some(&next) = index.get(need.as_str()) else {
                continue;
            };
            if next == node {
                continue; // reported by `needs` as "needs itself"
            }
            match state[next] {
                0 => {
                    state[next] = 1;
                    stack.push((next, 0));
                }
                1 => {
                    let pos = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                    let mut names: Vec<&str> = stack[pos..]
                        .iter()
                        .map(|(n, _)| infos[*n].id.as_str())
                        .collect();
                    names.push(infos[next].id.as_str());
                    // Edges point from a step to what it needs; show run order.
                    names.reverse();
                    let d = cx.error(
                        *line,
                        *col,
                        &format!("steps.{}.needs", infos[node].id),
                        format!("steps form a cycle: {}", names.join(" -> ")),
                    );
                    d.hint = Some(format!(
                        "remove `{}` from `{}.needs` or another edge of the cycle",
                        infos[next].id, infos[node].id
                    ));
                }
                _ => {}
            }
        }
    }
}

/// True when `target` must finish before `owner` (transitively through
/// needs). Searched per reference, stopping at the first hit, so a long
/// chain of steps stays linear instead of building every closure.
fn is_upstream(by_id: &BTreeMap<&str, &StepInfo>, owner: &str, target: &str) -> bool {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> = by_id
        .get(owner)
        .map(|s| s.needs.iter().map(|(n, _, _)| n.as_str()).collect())
        .unwrap_or_default();
    while let Some(n) = todo.pop() {
        if n == target {
            return true;
        }
        if !seen.insert(n) {
            continue;
        }
        if let Some(s) = by_id.get(n) {
            todo.extend(s.needs.iter().map(|(n, _, _)| n.as_str()));
        }
    }
    false
}

pub(crate) fn references(
    cx: &mut Cx<'_>,
    infos: &[StepInfo],
    sites: &[Site],
    inputs: &BTreeMap<String, InputSpec>,
    whisper: &WhisperSpec,
) {
    let by_id: BTreeMap<&str, &StepInfo> = infos.iter().map(|i| (i.id.as_str(), i)).collect();
    let step_ids: Vec<&str> = infos.iter().map(|i| i.id.as_str()).collect();
    let input_names: Vec<&str> = inputs.keys().map(String::as_str).collect();
    let question_ids: Vec<&str> = whisper.questions.iter().map(|q| q.id.as_str()).collect();
    for site in sites {
        if cx.is_full() {
            return;
        }
        for r in site.template.located_references() {
            let (line, col) = cx.locate_at(
                site.line,
                site.col,
                site.offset,
                site.template.raw(),
                r.offset,
            );
            match &r.reference {
                Reference::Input(name) => {
                    if !inputs.contains_key(name) {
                        let d = cx.error(
                            line,
                            col,
                            &site.path,
                            format!("`inputs.{name}` is not a declared input"),
                        );
                        d.hint = Some(match closest(name, &input_names) {
                            Some(c) => format!("did you mean `inputs.{c}`?"),
                            None => {
                                format!("declare it under `inputs:` (`{name}: {{ type: string }}`)")
                            }
                        });
                    }
                }
                Reference::Whisper(q) => {
                    if !question_ids.contains(&q.as_str()) {
                        let d = cx.error(
                            line,
                            col,
                            &site.path,
                            format!("`whisper.{q}` is not a declared question"),
                        );
                        d.hint = Some(match closest(q, &question_ids) {
                            Some(c) => format!("did you mean `whisper.{c}`?"),
                            None => {
                                format!("add a question with `id: {q}` under `whisper.questions`")
                            }
                        });
                    }
                }
                Reference::Item => {
                    if !site.item_ok {
                        let d = cx.error(
                            line,
                            col,
                            &site.path,
                            "`item` is only defined inside `followups.spawn`",
                        );
                        d.hint = Some("`item` is each element of `followups.for_each`".to_string());
                    }
                }
                // `run.*` fields are provided by the engine; nothing to check statically.
                Reference::Run(_) => {}
                Reference::StepOutput { step, output } => {
                    let text = format!("steps.{step}.outputs.{output}");
                    let Some(target) = by_id.get(step.as_str()) else {
                        let d = cx.error(
                            line,
                            col,
                            &site.path,
                            format!("`{text}` names an unknown step `{step}`"),
                        );
                        d.hint = Some(match closest(step, &step_ids) {
                            Some(c) => format!("did you mean `{c}`?"),
                            None => format!("steps: {}", some_names(&step_ids)),
                        });
                        continue;
                    };
                    if let Some(owner) = &site.owner {
                        if owner == step {
                            if !site.in_followups {
                                let d = cx.error(
                                    line,
                                    col,
                                    &site.path,
                                    format!("step `{owner}` references its own output `{text}`"),
                                );
                                d.hint = Some(
                                    "a step can read its own outputs only in `followups`"
                                        .to_string(),
                                );
                                continue;
                            }
                        } else if !is_upstream(&by_id, owner, step) {
                            let d = cx.error(
                                line,
                                col,
                                &site.path,
                                format!("step `{owner}` references `{text}`, but `{step}` is not upstream of `{owner}`"),
                            );
                            d.hint = Some(if is_upstream(&by_id, step, owner) {
                                // Adding the need would close a cycle.
                                format!(
                                    "`{step}` runs after `{owner}` (it needs it), so `{owner}` cannot read its outputs; \
                                     read them in a step that needs `{step}`"
                                )
                            } else {
                                format!("add `{step}` to `{owner}.needs`")
                            });
                            continue;
                        }
                    }
                    if let Some(outs) = &target.outputs
                        && !outs.contains(output)
                    {
                        let d = cx.error(
                            line,
                            col,
                            &site.path,
                            format!("step `{step}` has no output `{output}`"),
                        );
                        let names: Vec<&str> = outs.iter().map(String::as_str).collect();
                        d.hint = Some(match closest(output, &names) {
                            Some(c) => format!("did you mean `{c}`?"),
                            None => format!(
                                "its outputs: {}; declare others under `steps.{step}.outputs` with `from:`",
                                some_names(&names)
                            ),
                        });
                    }
                }
            }
        }
    }
}
