//! FlowMind's re-plans: when a swarm task stays stuck after FlowMind told
//! it so, the task is stopped, the tasks still running finish, and the
//! orchestrator plans the unfinished work again (told what finished, what
//! stalled and why); the user reviews the revised plan like the first, and
//! its tasks replace the stalled one and those not started.
//!
//! Every part is journaled: the decision (`flowmind_decided`, level
//! `replan`), the orchestrator's answers (steps `replan-<n>`, `-<k>` for
//! re-asks), the review answers and the revision (`plan_revised`). A
//! resumed swarm applies the recorded revisions to the accepted plan, and
//! one decided but not yet revised is planned then, reusing what was
//! answered.

use super::planning::{Review, Reviewed, orchestrate, reserved_in, review_plan, with_note};
use super::*;
use crate::swarm::plan::{Outside, Stall};
use crate::workflow::context::Replan;

/// The step key of a re-plan's first orchestrator answer.
pub(super) const REPLAN_STEP: &str = "replan";

/// The accepted plan with every recorded revision applied, in order.
pub(super) fn with_revisions(ctx: &RunCtx, mut plan: Plan) -> Result<Plan, String> {
    for (n, r) in ctx.history.swarm.revisions.iter().enumerate() {
        if r.replaces.is_empty() {
            continue;
        }
        let revised = plan::parse(&r.plan).map_err(|problems| {
            format!(
                "the recorded revised plan {} cannot be read: {}",
                n + 1,
                problems.join("; ")
            )
        })?;
        plan = plan::with_revision(&plan, &r.replaces, &revised);
    }
    Ok(plan)
}

/// The re-plan decided before this process whose revision was not
/// recorded: planned as soon as the tasks still running have finished.
pub(super) fn pending(ctx: &RunCtx) -> Option<Replan> {
    let swarm = &ctx.history.swarm;
    swarm
        .replans
        .get(swarm.revisions.len())
        .map(|(step, observed)| Replan {
            step: step.clone(),
            observed: observed.clone(),
        })
}

/// The revision number of the next re-plan.
pub(super) fn next_revision(ctx: &RunCtx) -> u32 {
    ctx.history.swarm.revisions.len() as u32 + 1
}

/// The orchestrator's revised plan, checked (re-asked within the bound)
/// and reviewed; `Ok(plan, edited)`.
pub(super) async fn revise(
    ctx: &Arc<RunCtx>,
    plan_step: &Step,
    spec: &SwarmSpec,
    stall: &Stall<'_>,
    outside: &Outside,
    revision: u32,
) -> Result<(Plan, bool), GraphEnd> {
    let modes = &ctx.deps.modes;
    let max_tasks = spec.max_tasks as usize;
    let check = |p: &Plan| {
        let mut problems = plan::check_revision(p, modes, max_tasks, outside);
        problems.extend(reserved_in(p));
        problems
    };
    let mut step = plan_step.clone();
    if let StepKind::Agent { prompt, .. } = &mut step.kind {
        let text = plan::replanning_prompt(stall, modes, max_tasks);
        *prompt = plan::template_of(&text).unwrap_or_else(|_| Template::literal(&text));
    }
    let review_id = format!("plan-review-replan{revision}");
    let mut asked = 0;
    let mut note: Option<String> = None;
    for review in 1..=MAX_REGENERATIONS + 1 {
        let mut proposed = None;
        let mut last_problems = Vec::new();
        for _ in 0..spec.plan_attempts.max(1) {
            asked += 1;
            let key = replan_key(revision, asked);
            let answer =
                orchestrate(ctx, key.clone(), with_note(&step, &key, note.as_deref())).await?;
            last_problems = match answer {
                Ok(value) => match plan::parse(&value) {
                    Ok(p) => {
                        let problems = check(&p);
                        if problems.is_empty() {
                            proposed = Some(p);
                            break;
                        }
                        problems
                    }
                    Err(problems) => problems,
                },
                Err(why) => vec![why],
            };
            note = Some(plan::feedback(&last_problems));
        }
        let Some(proposed) = proposed else {
            return Err(failed(format!(
                "the orchestrator gave no valid revised plan in {} attempts; last problems: {}",
                spec.plan_attempts.max(1),
                last_problems.join("; ")
            )));
        };
        let shown = Review {
            id: &review_id,
            step: replan_key(revision, 1),
            what: "the revised plan",
            check: &check,
        };
        match review_plan(ctx, &proposed, review, &shown).await? {
            Reviewed::Accepted(plan, edited) => return Ok((plan, edited)),
            Reviewed::Regenerate => {
                note = Some(
                    "The user asked for a different revised plan; do not repeat the plan below.\n\n"
                        .to_string() + &plan::to_edit_text(&proposed),
                );
            }
        }
    }
    Err(failed(format!(
        "the revised plan was regenerated {MAX_REGENERATIONS} times without being accepted"
    )))
}

fn replan_key(revision: u32, asked: u32) -> StepKey {
    if asked <= 1 {
        StepKey::new(format!("{REPLAN_STEP}-{revision}"))
    } else {
        StepKey::new(format!("{REPLAN_STEP}-{revision}-{asked}"))
    }
}
