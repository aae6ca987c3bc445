//! The plan as YAML for the review textarea, and back. The text explains
//! its fields in comments so a user can edit it without a manual; reading it
//! back reports every problem with `line:col`.

use std::fmt::Write;

use crate::spec::yaml;
use crate::swarm::yaml_out::{inline, value};

use super::{Plan, shape};

const HEADER: &str = "\
# The plan the swarm will run. Edit it, then accept it.
# summary     what the plan achieves
# tasks       one entry per agent:
#   id          short lowercase name, unique; other tasks name it in `needs`
#   title       what the agent must do (its whole brief)
#   mode        the agent's role: a mode id such as architect, coder, tdd, reviewer
#   needs       ids of tasks that must finish first ([] for none)
#   acceptance  checks that decide whether the task is done (at least one)
#   files       paths the task is expected to create or change ([] for none)
#   model       optional: the model profile for this task
";

/// The plan as text for the review textarea (YAML, readable, comments
/// saying what each field means).
pub fn to_edit_text(plan: &Plan) -> String {
    let mut out = String::from(HEADER);
    let _ = writeln!(out, "summary:{}", value(&plan.summary, 0));
    if plan.tasks.is_empty() {
        out.push_str("tasks: []\n");
        return out;
    }
    out.push_str("tasks:\n");
    for t in &plan.tasks {
        let _ = writeln!(out, "  - id: {}", inline(&t.id));
        let _ = writeln!(out, "    title:{}", value(&t.title, 4));
        let _ = writeln!(out, "    mode: {}", inline(&t.mode));
        list(&mut out, "needs", &t.needs);
        list(&mut out, "acceptance", &t.acceptance);
        list(&mut out, "files", &t.files);
        if let Some(m) = &t.model {
            let _ = writeln!(out, "    model: {}", inline(m));
        }
    }
    out
}

fn list(out: &mut String, key: &str, items: &[String]) {
    if items.is_empty() {
        let _ = writeln!(out, "    {key}: []");
        return;
    }
    let _ = writeln!(out, "    {key}:");
    for item in items {
        let _ = writeln!(out, "      -{}", value(item, 6));
    }
}

/// The plan the user edited, or every problem as `line:col: path: message`.
pub fn from_edit_text(text: &str) -> Result<Plan, Vec<String>> {
    let node = yaml::parse_str("plan", text).map_err(|d| {
        let hint = d
            .hint
            .as_deref()
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        vec![format!("{}:{}: {}{hint}", d.line, d.col, d.message)]
    })?;
    shape::read(&node).map_err(by_position)
}

/// Problems in text order (a mapping's unknown keys are found before its
/// values); the `... and N more` line, which has no position, stays last.
fn by_position(mut problems: Vec<String>) -> Vec<String> {
    let pos = |p: &String| -> (u32, u32) {
        let mut parts = p.splitn(3, ':');
        let line = parts.next().and_then(|l| l.parse().ok());
        let col = parts.next().and_then(|c| c.parse().ok());
        match (line, col) {
            (Some(l), Some(c)) => (l, c),
            _ => (u32::MAX, u32::MAX),
        }
    };
    problems.sort_by_key(pos);
    problems
}
