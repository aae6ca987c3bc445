//! Templates from runs: a swarm's realized plan written as an ordinary
//! workflow file (docs/workflows.md format) that `lev validate` accepts and
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::spec::expr::{EvalContext, StepView};
    use crate::spec::{ModeRegistry, StepKind, load_workflow_str};
    use crate::swarm::plan::parse;

    fn sample() -> Plan {
        parse(&json!({"summary": "Login: design, build, \"review\"", "tasks": [
            {"id": "review", "title": "Review the change", "mode": "reviewer",
             "needs": ["build", "tests"], "acceptance": ["no must-fix finding is open"]},
            {"id": "design", "title": "Design the API ${{ not.a.hole }}", "mode": "architect",
             "acceptance": ["docs/login.md exists"], "files": ["docs/login.md"]},
            {"id": "build", "title": "Implement it:\n- handler\n- tests", "mode": "coder",
             "needs": ["design"], "acceptance": ["cargo test passes"], "files": ["src/login.rs"],
             "model": "small"},
            {"id": "tests", "title": "Write the tests", "mode": "tdd", "needs": ["design"],
             "acceptance": ["tests fail before the fix"]}
        ]}))
        .unwrap()
    }

    #[test]
    fn a_saved_plan_is_a_valid_workflow_with_the_same_graph() {
        let objective = "Implement auth: \"email\" + password\n${{ inputs.x }} stays text";
        let yaml = workflow_yaml("Auth flow", objective, &sample());
        let modes = ModeRegistry::builtin().unwrap();
        let wf = load_workflow_str(Path::new("workflows/auth-flow.yaml"), &yaml, &modes)
            .unwrap_or_else(|d| panic!("{d}\n{yaml}"));
        assert_eq!(wf.id, "auth-flow");
        assert_eq!(wf.name, "Auth flow");
        assert_eq!(
            wf.description.as_deref(),
            Some("Login: design, build, \"review\"")
        );
        assert_eq!(wf.inputs["objective"].default, Some(json!(objective)));
        let ids: Vec<&str> = wf.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, vec!["design", "build", "tests", "review"]);
        assert_eq!(wf.step("review").unwrap().needs, vec!["build", "tests"]);
        assert_eq!(wf.outputs.keys().collect::<Vec<_>>(), vec!["review"]);
        let StepKind::Agent {
            mode,
            model,
            prompt,
            ..
        } = &wf.step("build").unwrap().kind
        else {
            panic!("build is not an agent step");
        };
        assert_eq!((mode.as_str(), model.as_deref()), ("coder", Some("small")));

        // The prompt is the swarm's brief, with the objective as an input.
        let mut ctx = EvalContext::default();
        ctx.inputs.insert("objective".into(), json!("OBJ"));
        ctx.steps.insert(
            "design".into(),
            StepView {
                succeeded: true,
                outputs: [("text".to_string(), json!("the design"))].into(),
            },
        );
        let text = prompt.render(&ctx).unwrap();
        assert!(text.contains("working on this objective:\nOBJ\n"), "{text}");
        assert!(text.contains("Implement it:\n- handler\n- tests"), "{text}");
        assert!(
            text.contains("## design (Design the API ${{ not.a.hole }})\nthe design"),
            "{text}"
        );
    }

    #[test]
    fn names_become_safe_ids() {
        assert_eq!(safe_name("Auth flow").as_deref(), Some("auth-flow"));
        assert_eq!(
            safe_name("  ../../etc/passwd ").as_deref(),
            Some("etc-passwd")
        );
        assert_eq!(
            safe_name("2024 Q1 — auth!").as_deref(),
            Some("plan-2024-q1-auth")
        );
        assert_eq!(safe_name("Ünïcode").as_deref(), Some("n-code"));
        assert_eq!(safe_name("!!!"), None);
        assert_eq!(safe_name(&"a".repeat(10_000)).map(|s| s.len()), Some(64));
    }
}
