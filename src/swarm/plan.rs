//! The orchestrator's plan: a summary and a graph of tasks, each for one
//! mode. Read from the orchestrator's JSON (`parse`) or from the review
//! textarea's YAML (`from_edit_text`), checked (`check`), explained back
//! when rejected (`feedback`), and turned into agent steps (`to_steps`).
//!
//! Every problem is one line that names where it is (`tasks[2].mode: ...`),
//! so the same text serves the user in the review pane and the orchestrator
//! when it is asked again. Lists of problems are capped at `MAX_PROBLEMS`
//! (the rest are counted), and every check is linear in the plan's size:
//! a hostile plan (ten thousand tasks, a chain ten thousand deep, megabyte
//! strings) is rejected quickly, never with a panic or deep recursion.

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod check;
mod edit;
mod prompt;
mod shape;
#[cfg(test)]
mod tests;

pub(crate) use check::first_index;
pub use check::{Outside, check, check_revision};
pub use edit::{from_edit_text, to_edit_text};
pub use prompt::{
    Stall, escape_template, feedback, markdown, planning_prompt, replanning_prompt, task_prompt,
    template_of, to_steps,
};
pub(crate) use prompt::{brief, distinct_needs, graph_order};

/// A plan as the orchestrator proposes it and the swarm executes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub summary: String,
    pub tasks: Vec<Task>,
}

/// One task: one agent, in one mode, with checks that decide it is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub title: String,
    pub mode: String,
    #[serde(default)]
    pub needs: Vec<String>,
    #[serde(default)]
    pub acceptance: Vec<String>,
    #[serde(default)]
    pub files: Vec<String>,
    /// Optional per-task model (profile), e.g. "gpt-4o-mini".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// Most problems listed for one plan; the rest are counted in a last line.
pub const MAX_PROBLEMS: usize = 20;
/// Longest task id (ids become step ids and journal keys).
pub const MAX_ID_CHARS: usize = 64;
/// Longest summary, title, acceptance criterion, file path and model name:
/// generous for real plans, small enough that every agent's prompt stays sane.
pub const MAX_SUMMARY_CHARS: usize = 4_000;
pub const MAX_TITLE_CHARS: usize = 2_000;
pub const MAX_CRITERION_CHARS: usize = 1_000;
pub const MAX_PATH_CHARS: usize = 500;
pub const MAX_MODEL_CHARS: usize = 100;
/// Most acceptance criteria and files of one task.
pub const MAX_CRITERIA: usize = 20;
pub const MAX_FILES: usize = 100;

/// The plan a swarm runs after a revision: `plan` without the tasks
/// `replaces` names, then `revised`'s tasks (the summary stays: the briefs
/// of the tasks that ran keep theirs).
pub fn with_revision(plan: &Plan, replaces: &[String], revised: &Plan) -> Plan {
    let gone: std::collections::HashSet<&str> = replaces.iter().map(String::as_str).collect();
    let mut tasks: Vec<Task> = plan
        .tasks
        .iter()
        .filter(|t| !gone.contains(t.id.as_str()))
        .cloned()
        .collect();
    tasks.extend(revised.tasks.iter().cloned());
    Plan {
        summary: plan.summary.clone(),
        tasks,
    }
}

/// Shape problems of the orchestrator's JSON, each naming its JSON path
/// (`tasks[2].mode: expected a string, found 3`). A missing `summary` is an
/// empty one; missing `needs`, `acceptance`, `files` (or `null`) are empty
/// lists. Unknown fields are problems (a misspelt `need` would silently drop
/// dependencies), except those starting with `x-`.
pub fn parse(value: &Value) -> Result<Plan, Vec<String>> {
    shape::read(value)
}

/// A task id: lowercase ASCII letters, digits, `-` and `_`, starting with a
/// letter, at most `MAX_ID_CHARS` long. Such an id is a valid step id and
/// can be written in `${{ steps.<id>.outputs.text }}`.
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= MAX_ID_CHARS
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Problems collected up to `MAX_PROBLEMS`; the rest only counted.
#[derive(Default)]
pub(crate) struct Problems {
    list: Vec<String>,
    more: usize,
}

impl Problems {
    /// Adds a problem; `message` is only built while the list has room.
    pub(crate) fn add(&mut self, message: impl FnOnce() -> String) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(message());
        } else {
            self.more += 1;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            let s = if self.more == 1 { "" } else { "s" };
            self.list
                .push(format!("... and {} more problem{s}", self.more));
        }
        self.list
    }
}

/// Text from the plan, shortened for a message: a megabyte id must not
/// make a megabyte error.
pub(crate) fn shown(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}
