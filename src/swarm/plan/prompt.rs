//! The texts around a plan: the orchestrator's prompt, the feedback when a
//! plan is rejected, each task's brief, the agent steps that run the tasks,
//! and a Markdown task list for transcripts.
//!
//! A task brief is a `${{ }}` template: upstream results are holes
//! (`${{ steps.<need>.outputs.text }}`), and everything taken from the
//! objective or the plan is escaped, so text that happens to contain `${{`
//! stays text.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::spec::expr::Template;
use crate::spec::model::{Step, StepKind};
use crate::spec::{Mode, ModeRegistry};

use super::check::{ORCHESTRATOR, first_index, name_cycle, order};
use super::{MAX_ID_CHARS, Plan, Task};

/// Text with every `${{` made literal (`${{ '${{' }}`), so that parsing it
/// as a template gives the text back.
pub fn escape_template(text: &str) -> String {
    text.replace("${{", "${{ '${{' }}")
}

/// Plain text as a step template (escaped, then parsed): for using
/// `planning_prompt` or a feedback message as an agent step's prompt.
pub fn template_of(text: &str) -> Result<Template, String> {
    Template::parse(&escape_template(text)).map_err(|e| format!("prompt template: {e}"))
}

/// The message sent back to the orchestrator when its plan is rejected:
/// the problems, and what to send instead.
pub fn feedback(problems: &[String]) -> String {
    let mut out = String::from("Your plan was rejected. Problems found:\n");
    for p in problems {
        let _ = writeln!(out, "- {p}");
    }
    out.push_str(
        "\nFix every problem above and send the whole plan again, keeping what was right. \
         Reply with one JSON document and nothing else (no prose, no code fence):\n",
    );
    out.push_str(SHAPE);
    out
}

/// The JSON shape the orchestrator must reply with.
const SHAPE: &str = r#"{"summary": "what the plan achieves, in one paragraph",
 "tasks": [{"id": "design-api", "title": "one imperative sentence with the specifics the agent needs",
            "mode": "architect", "needs": [], "acceptance": ["a check that can fail"],
            "files": ["path/it/changes"]}]}"#;

/// The orchestrator's prompt: the objective, the modes it may use (id +
/// when_to_use from the registry, excluding orchestrator), limits.
pub fn planning_prompt(objective: &str, modes: &ModeRegistry, max_tasks: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Objective:\n{}\n", objective.trim());
    let _ = writeln!(
        out,
        "Plan this objective as a graph of at most {max_tasks} tasks for a team of agents.\n"
    );
    modes_and_rules(
        &mut out,
        modes,
        max_tasks,
        "unique",
        "ids of tasks in this plan that must finish first",
    );
    out
}

/// The modes a plan may use, the rules for its tasks (`ids` and `needs`
/// say what an id and a need may be) and the shape to reply with.
fn modes_and_rules(
    out: &mut String,
    modes: &ModeRegistry,
    max_tasks: usize,
    ids: &str,
    needs: &str,
) {
    out.push_str("Modes you may give a task to (id: when to use it):\n");
    for mode in modes.modes.values().filter(|m| m.id != ORCHESTRATOR) {
        let _ = writeln!(out, "- {}: {}", mode.id, when_to_use(mode));
    }
    let _ = write!(
        out,
        "\nRules:\n\
         - `id`: {ids}; lowercase letters, digits, `-` and `_`, starting with a letter; at most {MAX_ID_CHARS} characters.\n\
         - `mode`: one of the mode ids above.\n\
         - `needs`: {needs}; no task needs itself; no cycles.\n\
         - `acceptance`: at least one check that decides whether the task is done.\n\
         - `files`: the paths the task is expected to create or change (`[]` for none).\n\
         - At most {max_tasks} tasks.\n\n\
         Reply with one JSON document and nothing else:\n{SHAPE}\n"
    );
}

/// What the orchestrator is told when FlowMind stopped a stalled task.
pub struct Stall<'a> {
    pub objective: &'a str,
    /// The plan being carried out (with earlier revisions applied).
    pub plan: &'a Plan,
    pub stalled: &'a str,
    /// What FlowMind saw.
    pub observed: &'a str,
    /// The tasks that ended: id, how (`succeeded`, `failed`, ...), and what
    /// the task reported.
    pub finished: &'a [(String, &'static str, String)],
    /// The tasks the revised plan replaces (the stalled one among them).
    pub replaced: &'a [String],
}

/// The orchestrator's prompt for a revised plan: the objective, what was
/// done, what stalled and why, the unfinished tasks it replaces, and the
/// rules (new ids; needs on tasks that succeeded or of the revised plan).
pub fn replanning_prompt(stall: &Stall, modes: &ModeRegistry, max_tasks: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Objective:\n{}\n", stall.objective.trim());
    if !stall.plan.summary.trim().is_empty() {
        let _ = writeln!(out, "The team's plan: {}\n", stall.plan.summary.trim());
    }
    let title = |id: &str| {
        stall
            .plan
            .tasks
            .iter()
            .find(|t| t.id == id)
            .map_or(String::new(), |t| crate::text::one_line(&t.title, 300))
    };
    let _ = writeln!(
        out,
        "Task `{}` ({}) stalled and was stopped. lev's controller saw: {}\n",
        stall.stalled,
        title(stall.stalled),
        crate::text::one_line(stall.observed, 400)
    );
    if stall.finished.is_empty() {
        out.push_str("No task has finished yet.\n\n");
    } else {
        out.push_str("Tasks that finished (do not plan them again):\n");
        for (id, how, report) in stall.finished {
            let _ = writeln!(
                out,
                "- `{id}` ({how}): {}\n  reported: {}",
                title(id),
                crate::text::one_line(report, 400)
            );
        }
        out.push('\n');
    }
    out.push_str("Unfinished tasks your revised plan replaces:\n");
    for id in stall.replaced {
        let _ = writeln!(out, "- `{id}`: {}", title(id));
    }
    let _ = writeln!(
        out,
        "\nPlan the unfinished work again as a graph of at most {max_tasks} tasks. Take a different approach where the stalled task got stuck: split it, narrow it, or give it to another mode.\n"
    );
    modes_and_rules(
        &mut out,
        modes,
        max_tasks,
        "new (no id of a task above)",
        "ids of tasks in your plan, or of the tasks above that succeeded",
    );
    out
}

fn when_to_use(mode: &Mode) -> String {
    let text = mode
        .when_to_use
        .as_deref()
        .or(mode.description.as_deref())
        .unwrap_or(&mode.name);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The brief for one task's agent: the objective, the plan summary, its
/// task (title, acceptance, files), and — as `${{ steps.<need>.outputs.text }}`
/// template holes — what its upstream tasks reported.
pub fn task_prompt(objective: &str, plan: &Plan, task: &Task) -> String {
    brief(
        &escape_template(objective.trim()),
        plan,
        &first_index(plan),
        task,
    )
}

/// The brief with `objective` inserted as it is (already a template: escaped
/// text, or a hole such as `${{ inputs.objective }}`).
/// `index` is `first_index(plan)`, built once by callers that brief every task.
pub(crate) fn brief(
    objective: &str,
    plan: &Plan,
    index: &HashMap<&str, usize>,
    task: &Task,
) -> String {
    let esc = escape_template;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "You are one agent of a team working on this objective:\n{objective}\n"
    );
    if !plan.summary.trim().is_empty() {
        let _ = writeln!(out, "The team's plan: {}\n", esc(plan.summary.trim()));
    }
    let _ = writeln!(
        out,
        "Your task (`{}`): {}\n",
        task.id,
        esc(task.title.trim())
    );
    out.push_str("It is done when:\n");
    for a in &task.acceptance {
        let _ = writeln!(out, "- {}", esc(a.trim()));
    }
    if task.files.is_empty() {
        out.push_str("\nThis task is not expected to change files.\n");
    } else {
        out.push_str("\nFiles you are expected to create or change:\n");
        for f in &task.files {
            let _ = writeln!(out, "- {}", esc(f.trim()));
        }
    }
    let mut first = true;
    for need in distinct_needs(task) {
        let Some(up) = index.get(need.as_str()).and_then(|&j| plan.tasks.get(j)) else {
            continue;
        };
        if up.id == task.id {
            continue;
        }
        if first {
            out.push_str("\nWhat the tasks you build on reported:\n");
            first = false;
        }
        let _ = writeln!(
            out,
            "\n## {} ({})\n${{{{ steps.{}.outputs.text }}}}",
            up.id,
            esc(up.title.trim()),
            up.id
        );
    }
    out.push_str(
        "\nOther agents work on the other tasks in parallel: change only what your task needs. \
         When you are done, reply with a short report: what you did, which files you changed, \
         and how each acceptance criterion is met.\n",
    );
    out
}

/// Agent steps, one per task (id = task id, needs, mode, prompt parsed as
/// a Template, model), in an order where needs come first.
pub fn to_steps(objective: &str, plan: &Plan) -> Result<Vec<Step>, String> {
    let objective = escape_template(objective.trim());
    steps_with(&objective, plan)
}

/// `to_steps` with the objective already a template (see `brief`).
pub(crate) fn steps_with(objective: &str, plan: &Plan) -> Result<Vec<Step>, String> {
    let order = graph_order(plan)?;
    let index = first_index(plan);
    let mut steps = Vec::with_capacity(order.len());
    for i in order {
        let Some(task) = plan.tasks.get(i) else {
            continue;
        };
        let prompt = Template::parse(&brief(objective, plan, &index, task)).map_err(|e| {
            format!(
                "task `{}`: its prompt is not a valid template: {e}",
                task.id
            )
        })?;
        steps.push(Step::made(
            task.id.clone(),
            distinct_needs(task),
            StepKind::Agent {
                mode: task.mode.clone(),
                prompt,
                output_schema: None,
                max_turns: None,
                allow_shell: Vec::new(),
                model: task.model.clone(),
                ask_agent: Vec::new(),
            },
        ));
    }
    Ok(steps)
}

/// The task indices, needs first; an error for what `check` would reject
/// in the graph (invalid or duplicate ids, unknown or self needs, cycles).
pub(crate) fn graph_order(plan: &Plan) -> Result<Vec<usize>, String> {
    let index = first_index(plan);
    for (i, t) in plan.tasks.iter().enumerate() {
        if !super::valid_id(&t.id) {
            return Err(format!(
                "tasks[{i}]: `{}` is not a valid id",
                super::shown(&t.id)
            ));
        }
        if index.get(t.id.as_str()) != Some(&i) {
            return Err(format!("tasks[{i}]: the id `{}` is used twice", t.id));
        }
        if let Some(n) = t
            .needs
            .iter()
            .find(|n| **n == t.id || !index.contains_key(n.as_str()))
        {
            return Err(format!(
                "task `{}` needs `{}`, which is not another task of the plan",
                t.id,
                super::shown(n)
            ));
        }
    }
    order(plan).map_err(|cycles| {
        let names: Vec<String> = cycles.iter().map(|c| name_cycle(plan, c)).collect();
        format!("needs form a cycle: {}", names.join("; "))
    })
}

/// The task's needs without repeats, in their first order.
pub(crate) fn distinct_needs(task: &Task) -> Vec<String> {
    let mut seen = HashSet::with_capacity(task.needs.len());
    task.needs
        .iter()
        .filter(|n| seen.insert(n.as_str()))
        .cloned()
        .collect()
}

/// The plan as a Markdown task list (transcripts and exports).
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.summary.trim().is_empty() {
        let _ = writeln!(out, "{}\n", plan.summary.trim());
    }
    for t in &plan.tasks {
        let needs = if t.needs.is_empty() {
            String::new()
        } else {
            format!(", after {}", t.needs.join(", "))
        };
        let _ = writeln!(
            out,
            "- [ ] **{}** ({}{needs}): {}",
            t.id,
            t.mode,
            one_line(&t.title)
        );
        for a in &t.acceptance {
            let _ = writeln!(out, "  - check: {}", one_line(a));
        }
        if !t.files.is_empty() {
            let _ = writeln!(out, "  - files: {}", t.files.join(", "));
        }
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
