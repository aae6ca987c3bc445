//! Proactive suggestions across runs: patterns in how the newest runs
//! ended (`engine::RunEnding`) turned into advice that names what to do —
//! raise a timeout that is hit again and again, look at a step that keeps
//! failing the same way, save a swarm plan that worked (or an objective run
//! more than once) as a workflow. Pure: the same endings give the same
//! suggestions (`Query::Suggestions`); `lev runs` and the runs browser
//! show them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RunEnding;
use crate::protocol::{RunId, RunStatus};

/// How many of the newest runs are looked at (`lev runs`, the browser).
pub const RUNS: usize = 50;
/// How many of a workflow's newest runs a pattern is looked for in.
pub const WINDOW: usize = 5;
/// How many runs a pattern needs before it is one.
const AT_LEAST: usize = 2;
/// Most suggestions shown at once, newest patterns first.
const MOST: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A step ran out of its `timeout` in several runs.
    RaiseTimeout,
    /// A step failed in several runs.
    RepeatedFailure,
    /// A swarm's plan worked: keep it as a workflow.
    SaveTemplate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    pub kind: Kind,
    /// The newest run it is about, and its workflow's id (`swarm` for a
    /// swarm), so a run's sidebar shows what concerns its workflow.
    pub run: RunId,
    pub workflow: String,
    pub text: String,
    /// The command that does what it says, when one does.
    pub command: Option<String>,
    /// What accepting it in the workbench does.
    pub remedy: Remedy,
}

/// What accepting a suggestion does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Remedy {
    /// Double the `timeout:` of top-level step `step` in workflow `file`.
    RaiseTimeout { file: String, step: String },
    /// Open the run to see how it failed.
    ShowRun,
    /// Save the run as a workflow named `name` (`lev template save`).
    SaveTemplate { name: String },
}

/// What the endings (oldest first) suggest, newest first.
pub fn suggest(endings: &[RunEnding]) -> Vec<Suggestion> {
    let mut out = Vec::new();
    failing_steps(endings, &mut out);
    plans_worth_keeping(endings, &mut out);
    // Newest run first; ULIDs sort by creation.
    out.sort_by(|a, b| b.run.cmp(&a.run));
    out.truncate(MOST);
    out
}

/// Steps that ended failed in several of their workflow's newest runs,
/// and still did in the newest one (a step fixed since is left alone).
fn failing_steps(endings: &[RunEnding], out: &mut Vec<Suggestion>) {
    let mut by_workflow: BTreeMap<&str, Vec<&RunEnding>> = BTreeMap::new();
    for e in endings.iter().filter(|e| !is_swarm(e) && finished(e)) {
        by_workflow
            .entry(e.run.workflow_id.as_str())
            .or_default()
            .push(e);
    }
    for runs in by_workflow.values() {
        let window = &runs[runs.len().saturating_sub(WINDOW)..];
        let Some(newest) = window.last() else {
            continue;
        };
        for last in &newest.failed {
            let failures: Vec<_> = window
                .iter()
                .filter_map(|r| r.failed.iter().find(|f| f.step == last.step))
                .collect();
            if failures.len() < AT_LEAST {
                continue;
            }
            let timeouts = failures.iter().filter(|f| f.timed_out).count();
            let timed_out = timeouts >= AT_LEAST;
            let (what, times) = if timed_out {
                ("timed out", timeouts)
            } else {
                ("failed", failures.len())
            };
            let of = format!(
                "step `{}` of {} {what} in {times} of its last {} runs",
                last.step,
                newest.run.workflow_id,
                window.len()
            );
            let error = crate::text::one_line(&last.error, 80);
            let suggestion = if timed_out {
                Suggestion {
                    kind: Kind::RaiseTimeout,
                    run: newest.run.id.clone(),
                    workflow: newest.run.workflow_id.clone(),
                    text: format!(
                        "{of} ({error}): raise its `timeout:` in {}",
                        newest.run.source
                    ),
                    command: None,
                    remedy: Remedy::RaiseTimeout {
                        file: newest.run.source.clone(),
                        step: last.step.clone(),
                    },
                }
            } else {
                Suggestion {
                    kind: Kind::RepeatedFailure,
                    run: newest.run.id.clone(),
                    workflow: newest.run.workflow_id.clone(),
                    text: format!("{of}, last with: {error} — another mode or a `retry:` may help"),
                    command: Some(format!("lev show {}", newest.run.id)),
                    remedy: Remedy::ShowRun,
                }
            };
            out.push(suggestion);
        }
    }
}

/// Swarms that succeeded, newest per objective: an objective run more than
/// once says so.
fn plans_worth_keeping(endings: &[RunEnding], out: &mut Vec<Suggestion>) {
    let mut by_objective: BTreeMap<String, Vec<&RunEnding>> = BTreeMap::new();
    for e in endings {
        if let Some(objective) = &e.objective {
            by_objective
                .entry(normalized(objective))
                .or_default()
                .push(e);
        }
    }
    for runs in by_objective.values() {
        let Some(worked) = runs
            .iter()
            .rev()
            .find(|e| e.run.status == RunStatus::Succeeded)
        else {
            continue;
        };
        let objective = worked.objective.as_deref().unwrap_or_default();
        let name = crate::swarm::template::safe_name(&first_words(objective))
            .unwrap_or_else(|| "swarm-plan".to_string());
        let why = if runs.len() >= AT_LEAST {
            format!(
                "\"{}\" was run {} times",
                crate::text::one_line(objective, 60),
                runs.len()
            )
        } else {
            format!(
                "the swarm for \"{}\" succeeded",
                crate::text::one_line(objective, 60)
            )
        };
        out.push(Suggestion {
            kind: Kind::SaveTemplate,
            run: worked.run.id.clone(),
            workflow: worked.run.workflow_id.clone(),
            text: format!("{why}: save its plan as a workflow to run it again"),
            command: Some(format!("lev template save {} {name}", worked.run.id)),
            remedy: Remedy::SaveTemplate { name },
        });
    }
}

fn is_swarm(e: &RunEnding) -> bool {
    e.objective.is_some() || e.run.workflow_id == crate::workflow::swarm::WORKFLOW_ID
}

fn finished(e: &RunEnding) -> bool {
    matches!(
        e.run.status,
        RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
    )
}

fn normalized(objective: &str) -> String {
    objective
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A template name from an objective: its first four words.
fn first_words(objective: &str) -> String {
    objective
        .split_whitespace()
        .take(4)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::StepFailure;
    use crate::journal::RunMeta;

    fn ending(id: &str, workflow: &str, status: RunStatus, failed: &[(&str, &str)]) -> RunEnding {
        RunEnding {
            run: RunMeta {
                id: RunId(id.to_string()),
                workflow_id: workflow.to_string(),
                name: workflow.to_string(),
                source: format!("{workflow}.yaml"),
                definition_blob: String::new(),
                status,
                created_ms: 0,
                updated_ms: 0,
                last_seq: 0,
                parent: None,
                step_run: false,
            },
            objective: None,
            failed: failed
                .iter()
                .map(|(step, error)| StepFailure {
                    step: step.to_string(),
                    error: error.to_string(),
                    timed_out: error.contains("timed out after"),
                })
                .collect(),
        }
    }

    fn swarm(id: &str, objective: &str, status: RunStatus) -> RunEnding {
        let mut e = ending(id, "swarm", status, &[]);
        e.objective = Some(objective.to_string());
        e
    }

    #[test]
    fn a_timeout_hit_in_two_runs_says_raise_it_and_where() {
        let endings = [
            ending(
                "01A",
                "build",
                RunStatus::Failed,
                &[("test", "timed out after 1s")],
            ),
            ending("01B", "other", RunStatus::Succeeded, &[]),
            ending(
                "01C",
                "build",
                RunStatus::Failed,
                &[("test", "timed out after 1s")],
            ),
        ];
        let s = suggest(&endings);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].kind, Kind::RaiseTimeout);
        assert_eq!(s[0].run, RunId("01C".into()));
        assert!(
            s[0].text
                .starts_with("step `test` of build timed out in 2 of its last 2 runs"),
            "{}",
            s[0].text
        );
        assert!(s[0].text.contains("build.yaml"), "{}", s[0].text);
    }

    #[test]
    fn a_step_failing_again_points_at_the_newest_run_and_a_fixed_one_is_left_alone() {
        let failing = [
            ending("01A", "build", RunStatus::Failed, &[("lint", "exit 1")]),
            ending("01B", "build", RunStatus::Failed, &[("lint", "exit 2")]),
        ];
        let s = suggest(&failing);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].kind, Kind::RepeatedFailure);
        assert!(s[0].text.contains("last with: exit 2"), "{}", s[0].text);
        assert_eq!(s[0].command.as_deref(), Some("lev show 01B"));

        let mut fixed = failing.to_vec();
        fixed.push(ending("01C", "build", RunStatus::Succeeded, &[]));
        assert!(suggest(&fixed).is_empty());
        // Once is not a pattern.
        assert!(suggest(&failing[1..]).is_empty());
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let mut endings = vec![ending("01A", "build", RunStatus::Failed, &[("lint", "x")])];
        for i in 0..WINDOW - 1 {
            endings.push(ending(
                &format!("01B{i}"),
                "build",
                RunStatus::Succeeded,
                &[],
            ));
        }
        endings.push(ending("01C", "build", RunStatus::Failed, &[("lint", "x")]));
        assert!(suggest(&endings).is_empty());
    }

    #[test]
    fn a_swarm_that_worked_is_worth_keeping_and_an_objective_run_again_says_so() {
        let once = [swarm(
            "01A",
            "Add a login page to the app",
            RunStatus::Succeeded,
        )];
        let s = suggest(&once);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kind, Kind::SaveTemplate);
        assert_eq!(
            s[0].command.as_deref(),
            Some("lev template save 01A add-a-login-page")
        );

        let again = [
            swarm("01A", "Add a login page to the app", RunStatus::Succeeded),
            swarm("01B", "add a  login page to the app", RunStatus::Failed),
        ];
        let s = suggest(&again);
        assert_eq!(s.len(), 1);
        assert!(s[0].text.contains("was run 2 times"), "{}", s[0].text);
        assert_eq!(s[0].run, RunId("01A".into()));

        let never = [swarm("01A", "x", RunStatus::Failed)];
        assert!(suggest(&never).is_empty());
    }
}
