//! Templates from runs: a swarm's realized plan written as an ordinary
//! workflow file (WORKFLOWS.md format) that `lev validate` accepts and
//! `lev run` runs, so a plan that worked becomes reusable.
//!
//! The objective becomes the `objective` input (defaulting to the original
//! one), so the same task graph can be run for a similar objective; each
//! task is an agent step whose prompt is the brief the swarm gave it.

use std::collections::HashSet;
use std::fmt::Write;

use super::plan::{Plan, brief, distinct_needs, first_index, graph_order};
use super::yaml_out::{inline, quoted, value};

/// Longest file name / workflow id made from a template name.
const MAX_NAME_CHARS: usize = 64;

/// A workflow file for `plan`: envelope, an `objective` input defaulting to
/// `objective`, one agent step per task (mode, needs, model, prompt) in an
/// order where needs come first, and one output per task nothing depends on.
pub fn workflow_yaml(name: &str, objective: &str, plan: &Plan) -> String {
    let id = safe_name(name).unwrap_or_else(|| "swarm-plan".to_string());
    let mut out = String::new();
    out.push_str(
        "# A swarm plan saved by `lev template save`; run it with `lev run <this file>`.\n",
    );
    out.push_str("version: 1\nkind: workflow\n");
    let _ = writeln!(out, "id: {}", inline(&id));
    let _ = writeln!(out, "name: {}", quoted(name.trim()));
    let description = if plan.summary.trim().is_empty() {
        format!("Plan for: {}", one_line(objective))
    } else {
        one_line(&plan.summary)
    };
    let _ = writeln!(out, "description: {}", quoted(&description));
    out.push_str("inputs:\n  objective:\n    type: string\n");
    let _ = writeln!(out, "    default:{}", value(objective.trim(), 4));
    out.push_str("    description: \"The objective the plan was made for\"\n");
    out.push_str("steps:\n");
    // A plan that does not order (never accepted as such) still gets every
    // task written, in plan order, so `lev validate` can say what is wrong.
    let index = first_index(plan);
    let order = graph_order(plan).unwrap_or_else(|_| (0..plan.tasks.len()).collect());
    for task in order.iter().filter_map(|&i| plan.tasks.get(i)) {
        let _ = writeln!(out, "  {}:", inline(&task.id));
        let _ = writeln!(out, "    mode: {}", inline(&task.mode));
        let needs = distinct_needs(task);
        if !needs.is_empty() {
            let items: Vec<String> = needs.iter().map(|n| inline(n)).collect();
            let _ = writeln!(out, "    needs: [{}]", items.join(", "));
        }
        if let Some(m) = &task.model {
            let _ = writeln!(out, "    model: {}", inline(m));
        }
        let prompt = brief("${{ inputs.objective }}", plan, &index, task);
        let _ = writeln!(out, "    prompt:{}", value(&prompt, 4));
    }
    let needed: HashSet<&str> = plan
        .tasks
        .iter()
        .flat_map(|t| t.needs.iter().map(String::as_str))
        .collect();
    let sinks: Vec<&str> = plan
        .tasks
        .iter()
        .map(|t| t.id.as_str())
        .filter(|id| !needed.contains(id))
        .collect();
    if !sinks.is_empty() {
        out.push_str("outputs:\n");
        for id in sinks {
            let _ = writeln!(
                out,
                "  {}: {}",
                inline(id),
                quoted(&format!("${{{{ steps.{id}.outputs.text }}}}"))
            );
        }
    }
    out
}

/// `name` as a file name and workflow id: lowercase letters, digits and
/// `-`, starting with a letter (`plan-` is put before a leading digit), about
/// 64 characters at most; `None` when no letter or digit is left.
pub fn safe_name(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= MAX_NAME_CHARS {
            break;
        }
    }
    let id = out.trim_matches('-');
    if id.is_empty() {
        None
    } else if id.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some(id.to_string())
    } else {
        // Ids start with a letter; keep the digits the user chose.
        Some(format!("plan-{id}"))
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
