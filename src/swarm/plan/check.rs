//! The semantic checks of a plan, and its dependency graph (stable
//! topological order, or the cycles that prevent one). Iterative and linear
//! in the number of tasks and needs: a ten-thousand-deep chain is no deeper
//! for us than a short one.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use crate::spec::ModeRegistry;
use crate::spec::load::cx::closest;

use super::{
    MAX_CRITERIA, MAX_CRITERION_CHARS, MAX_FILES, MAX_ID_CHARS, MAX_MODEL_CHARS, MAX_PATH_CHARS,
    MAX_SUMMARY_CHARS, MAX_TITLE_CHARS, Plan, Problems, shown, valid_id,
};

/// The mode that plans; it is never given a task of a plan.
pub(crate) const ORCHESTRATOR: &str = "orchestrator";

/// Every semantic problem: no tasks, more than `max_tasks`, duplicate or
/// malformed ids, empty title, no acceptance criteria, unknown mode (with
/// the closest known id), unknown or self `needs`, cycles (named:
/// `a → b → a`). Empty when the plan is good.
pub fn check(plan: &Plan, modes: &ModeRegistry, max_tasks: usize) -> Vec<String> {
    check_in(plan, modes, max_tasks, &Outside::default())
}

/// The tasks of a run around a revised plan: those it may build on (they
/// succeeded) and every id already used (so none is reused).
#[derive(Debug, Default, Clone)]
pub struct Outside {
    pub succeeded: HashSet<String>,
    pub taken: HashSet<String>,
}

/// `check` for a revised plan, whose tasks may also need the run's
/// succeeded tasks and may not reuse any id of the run.
pub fn check_revision(
    plan: &Plan,
    modes: &ModeRegistry,
    max_tasks: usize,
    outside: &Outside,
) -> Vec<String> {
    check_in(plan, modes, max_tasks, outside)
}

fn check_in(plan: &Plan, modes: &ModeRegistry, max_tasks: usize, outside: &Outside) -> Vec<String> {
    let mut p = Problems::default();
    let n = plan.tasks.len();
    if n == 0 {
        p.add(|| "tasks: the plan has no tasks; give at least one".to_string());
    }
    if n > max_tasks {
        p.add(|| {
            format!(
                "tasks: the plan has {n} tasks; at most {max_tasks} are allowed (merge small tasks)"
            )
        });
    }
    too_long(&mut p, "summary", &plan.summary, MAX_SUMMARY_CHARS);

    let known_modes: Vec<&str> = modes
        .modes
        .keys()
        .map(String::as_str)
        .filter(|m| *m != ORCHESTRATOR)
        .collect();
    let index = first_index(plan);
    for (i, t) in plan.tasks.iter().enumerate() {
        let at = |field: &str| format!("tasks[{i}].{field}");
        if !valid_id(&t.id) {
            p.add(|| {
                format!(
                    "{}: `{}` is not a valid id (lowercase letters, digits, `-` and `_`, starting with a letter; at most {MAX_ID_CHARS} characters)",
                    at("id"),
                    shown(&t.id)
                )
            });
        } else if let Some(&j) = index.get(t.id.as_str())
            && j != i
        {
            p.add(|| format!("{}: `{}` is also the id of tasks[{j}]", at("id"), t.id));
        } else if outside.taken.contains(&t.id) {
            p.add(|| {
                format!(
                    "{}: `{}` is already a task of this run; give the new task a new id",
                    at("id"),
                    t.id
                )
            });
        }
        if t.title.trim().is_empty() {
            p.add(|| format!("{}: empty; say what the agent must do", at("title")));
        }
        too_long(&mut p, &at("title"), &t.title, MAX_TITLE_CHARS);
        check_mode(&mut p, &at("mode"), &t.mode, modes, &known_modes);
        if t.acceptance.is_empty() {
            p.add(|| {
                format!(
                    "{}: no acceptance criteria; give at least one check that decides the task is done",
                    at("acceptance")
                )
            });
        }
        list(
            &mut p,
            &at("acceptance"),
            &t.acceptance,
            MAX_CRITERIA,
            MAX_CRITERION_CHARS,
        );
        list(&mut p, &at("files"), &t.files, MAX_FILES, MAX_PATH_CHARS);
        if let Some(m) = &t.model {
            if m.trim().is_empty() {
                p.add(|| {
                    format!(
                        "{}: empty; leave it out to use the mode's model",
                        at("model")
                    )
                });
            }
            too_long(&mut p, &at("model"), m, MAX_MODEL_CHARS);
        }
    }

    // Suggestions only for plans small enough that looking is cheap.
    let ids: Vec<&str> = plan.tasks.iter().map(|t| t.id.as_str()).collect();
    for (i, t) in plan.tasks.iter().enumerate() {
        for need in &t.needs {
            if *need == t.id {
                p.add(|| format!("tasks[{i}].needs: `{}` needs itself", shown(need)));
            } else if outside.succeeded.contains(need) {
                // Finished and succeeded: its report is there to build on.
            } else if outside.taken.contains(need) && !index.contains_key(need.as_str()) {
                p.add(|| {
                    format!(
                        "tasks[{i}].needs: `{}` did not succeed or is replaced; only tasks that succeeded can be built on",
                        shown(need)
                    )
                });
            } else if !index.contains_key(need.as_str()) {
                let hint = closest(need, &ids)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                p.add(|| format!("tasks[{i}].needs: unknown task `{}`{hint}", shown(need)));
            }
        }
    }

    if let Err(cycles) = order(plan) {
        for cycle in cycles {
            p.add(|| {
                format!(
                    "needs form a cycle (each task needs the next): {}",
                    name_cycle(plan, &cycle)
                )
            });
        }
    }
    p.finish()
}

fn check_mode(p: &mut Problems, path: &str, mode: &str, modes: &ModeRegistry, known: &[&str]) {
    if mode == ORCHESTRATOR {
        p.add(|| {
            format!(
                "{path}: `{ORCHESTRATOR}` only plans; give the task to a mode that does the work"
            )
        });
    } else if !modes.contains(mode) {
        let hint = match closest(mode, known) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!("known: {}", known.join(", ")),
        };
        p.add(|| format!("{path}: unknown mode `{}` ({hint})", shown(mode)));
    }
}

fn too_long(p: &mut Problems, path: &str, text: &str, max: usize) {
    // Counting chars is linear; a byte length within the limit needs no count.
    if text.len() > max {
        let n = text.chars().count();
        if n > max {
            p.add(|| format!("{path}: too long ({n} characters; at most {max})"));
        }
    }
}

/// A list of short texts: not too many, none empty, none too long.
fn list(p: &mut Problems, path: &str, items: &[String], max_items: usize, max_chars: usize) {
    if items.len() > max_items {
        p.add(|| format!("{path}: {} entries; at most {max_items}", items.len()));
    }
    for (k, item) in items.iter().enumerate() {
        let at = format!("{path}[{k}]");
        if item.trim().is_empty() {
            p.add(|| format!("{at}: empty"));
        }
        too_long(p, &at, item, max_chars);
    }
}

/// Each id's first task.
pub(crate) fn first_index(plan: &Plan) -> HashMap<&str, usize> {
    let mut index = HashMap::with_capacity(plan.tasks.len());
    for (i, t) in plan.tasks.iter().enumerate() {
        index.entry(t.id.as_str()).or_insert(i);
    }
    index
}

/// The tasks in an order where every task's needs come first, ties broken
/// by plan order; or the cycles that make that impossible (each a list of
/// task indices, each needing the next, the last needing the first).
/// Unknown and self needs are left out here (`check` reports them).
pub(super) fn order(plan: &Plan) -> Result<Vec<usize>, Vec<Vec<usize>>> {
    let n = plan.tasks.len();
    let index = first_index(plan);
    // needs[i]: the distinct tasks i needs; dependents[j]: tasks needing j.
    let mut needs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, t) in plan.tasks.iter().enumerate() {
        let mut mine: Vec<usize> = t
            .needs
            .iter()
            .filter_map(|need| index.get(need.as_str()).copied())
            .filter(|&j| j != i)
            .collect();
        // Sorting, not `contains`, so a task listing 100k needs stays cheap.
        mine.sort_unstable();
        mine.dedup();
        for &j in &mine {
            dependents[j].push(i);
        }
        needs[i] = mine;
    }
    let mut waiting: Vec<usize> = needs.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| waiting[i] == 0).map(Reverse).collect();
    let mut out = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        out.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    if out.len() == n {
        return Ok(out);
    }
    // Every task left waits on at least one task that is also left, so
    // following such needs from any of them must come back round.
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; n];
    let mut at_pos = vec![0usize; n];
    let mut cycles = Vec::new();
    for start in (0..n).filter(|&i| waiting[i] > 0) {
        if state[start] != NEW {
            continue;
        }
        let mut path = Vec::new();
        let mut cur = start;
        loop {
            state[cur] = ON_PATH;
            at_pos[cur] = path.len();
            path.push(cur);
            let Some(&next) = needs[cur].iter().find(|&&j| waiting[j] > 0) else {
                break;
            };
            match state[next] {
                ON_PATH => {
                    let mut cycle = path[at_pos[next]..].to_vec();
                    // Start from the earliest task, so the name is stable.
                    if let Some(min_at) = (0..cycle.len()).min_by_key(|&k| cycle[k]) {
                        cycle.rotate_left(min_at);
                    }
                    cycles.push(cycle);
                    break;
                }
                DONE => break,
                _ => cur = next,
            }
        }
        for i in path {
            state[i] = DONE;
        }
    }
    Err(cycles)
}

/// `a → b → c → a`; long cycles are shortened in the middle.
pub(super) fn name_cycle(plan: &Plan, cycle: &[usize]) -> String {
    const SHOW: usize = 8;
    let id = |i: usize| shown(plan.tasks.get(i).map(|t| t.id.as_str()).unwrap_or("?"));
    let mut names: Vec<String> = if cycle.len() > SHOW + 2 {
        let mut v: Vec<String> = cycle[..SHOW].iter().map(|&i| id(i)).collect();
        v.push("…".to_string());
        if let Some(&last) = cycle.last() {
            v.push(id(last));
        }
        v
    } else {
        cycle.iter().map(|&i| id(i)).collect()
    };
    if let Some(&first) = cycle.first() {
        names.push(id(first));
    }
    let mut text = names.join(" → ");
    if cycle.len() > SHOW + 2 {
        text.push_str(&format!(" ({} tasks)", cycle.len()));
    }
    text
}
