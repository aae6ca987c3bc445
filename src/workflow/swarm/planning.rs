//! A swarm's plan: the orchestrator is asked (and asked again with the
//! problems found, within a bound), then the user reviews the plan:
//! accept, regenerate, or an edited plan. Each answer and the accepted plan
//! are journaled, so a resumed swarm never plans again.

use super::*;

/// The plan the user accepted (recorded, or planned and reviewed now).
pub(super) async fn accepted_plan(
    ctx: &Arc<RunCtx>,
    plan_step: &Step,
    spec: &SwarmSpec,
) -> Result<Plan, GraphEnd> {
    if let Some((plan, _)) = &ctx.history.swarm.accepted {
        return plan::parse(plan).map_err(|problems| {
            failed(format!(
                "the recorded accepted plan cannot be read: {}",
                problems.join("; ")
            ))
        });
    }
    let mut attempt = 0;
    let mut note: Option<String> = None;
    for review in 1..=MAX_REGENERATIONS + 1 {
        let proposed = propose(ctx, plan_step, spec, &mut attempt, note.take()).await?;
        let check = |edited: &Plan| {
            let mut problems = plan::check(edited, &ctx.deps.modes, usize::MAX);
            problems.extend(reserved_in(edited));
            problems
        };
        let shown = Review {
            id: "plan-review",
            step: plan_key(1),
            what: "the plan",
            check: &check,
        };
        match review_plan(ctx, &proposed, review, &shown).await? {
            Reviewed::Accepted(plan, edited) => {
                let event = Event::PlanAccepted {
                    objective: spec.objective.clone(),
                    plan: serde_json::to_value(&plan).unwrap_or(Value::Null),
                    edited,
                    at: ctx.now(),
                };
                if let Err(e) = ctx.rec.record(event).await {
                    return Err(failed(format!("journal: {e}")));
                }
                return Ok(plan);
            }
            Reviewed::Regenerate => {
                note = Some(
                    "The user asked for a different plan. Plan again from the objective; \
                     do not repeat the plan below.\n\n"
                        .to_string()
                        + &plan::to_edit_text(&proposed),
                );
            }
        }
    }
    Err(failed(format!(
        "the plan was regenerated {MAX_REGENERATIONS} times without being accepted"
    )))
}

/// Asks the orchestrator for a plan until one passes the checks, at most
/// `spec.plan_attempts` times. `attempt` counts every orchestrator answer of
/// the run (so their step keys stay unique across regenerations).
async fn propose(
    ctx: &Arc<RunCtx>,
    plan_step: &Step,
    spec: &SwarmSpec,
    attempt: &mut u32,
    mut note: Option<String>,
) -> Result<Plan, GraphEnd> {
    let mut last_problems = Vec::new();
    for _ in 0..spec.plan_attempts.max(1) {
        *attempt += 1;
        let n = *attempt;
        let (value, problems) = match ctx.history.swarm.proposals.get(&n) {
            Some((value, problems)) => (value.clone(), problems.clone()),
            None => {
                let (value, problems) = ask_orchestrator(ctx, plan_step, spec, n, &note).await?;
                let event = Event::PlanProposed {
                    attempt: n,
                    plan: value.clone(),
                    problems: problems.clone(),
                    at: ctx.now(),
                };
                if let Err(e) = ctx.rec.record(event).await {
                    return Err(failed(format!("journal: {e}")));
                }
                (value, problems)
            }
        };
        if problems.is_empty() {
            match plan::parse(&value) {
                Ok(plan) => return Ok(plan),
                Err(p) => last_problems = p,
            }
        } else {
            last_problems = problems;
        }
        note = Some(plan::feedback(&last_problems));
    }
    Err(failed(format!(
        "the orchestrator gave no valid plan in {} attempts; last problems: {}",
        spec.plan_attempts.max(1),
        last_problems.join("; ")
    )))
}

/// One orchestrator answer and what is wrong with it (nothing: valid).
async fn ask_orchestrator(
    ctx: &Arc<RunCtx>,
    plan_step: &Step,
    spec: &SwarmSpec,
    n: u32,
    note: &Option<String>,
) -> Result<(Value, Vec<String>), GraphEnd> {
    let key = plan_key(n);
    let step = with_note(plan_step, &key, note.as_deref());
    match orchestrate(ctx, key, step).await? {
        Ok(value) => {
            let problems = match plan::parse(&value) {
                Ok(p) => plan::check(&p, &ctx.deps.modes, spec.max_tasks as usize),
                Err(problems) => problems,
            };
            let problems = problems.into_iter().chain(reserved_ids(&value)).collect();
            Ok((value, problems))
        }
        Err(why) => Ok((Value::Null, vec![why])),
    }
}

/// The orchestrator's step under `key`, with `note` after its prompt.
pub(super) fn with_note(step: &Step, key: &StepKey, note: Option<&str>) -> Step {
    let mut step = step.clone();
    step.id = key.to_string();
    if let (Some(note), StepKind::Agent { prompt, .. }) = (note, &mut step.kind) {
        let raw = format!("{}\n\n{}", prompt.raw(), plan::escape_template(note));
        *prompt = Template::parse(&raw).unwrap_or_else(|_| Template::literal(&raw));
    }
    step
}

/// Runs one orchestrator step (or takes its recorded answer): its JSON
/// answer, or why it gave none; a stopped run ends the planning.
pub(super) async fn orchestrate(
    ctx: &Arc<RunCtx>,
    key: StepKey,
    step: Step,
) -> Result<Result<Value, String>, GraphEnd> {
    let end = match ctx.history.final_outcome(&key) {
        Some(settled @ Settled::Succeeded { .. }) => StepEnd::Settled(settled.clone()),
        _ => {
            let eval = eval_context(ctx, BTreeMap::new());
            step::run_step(ctx.clone(), key, step, eval).await
        }
    };
    match end {
        StepEnd::Paused(reason) => {
            ctx.set_halt(Halt::Paused(reason.clone()));
            Err(stopped(ctx).unwrap_or_else(|| failed(crate::protocol::describe::pause(&reason))))
        }
        StepEnd::Settled(Settled::Succeeded { outputs }) => {
            Ok(Ok(outputs.get("json").cloned().unwrap_or(Value::Null)))
        }
        StepEnd::Settled(Settled::Failed { error }) => match stopped(ctx) {
            Some(end) => Err(end),
            None => Ok(Err(format!("the orchestrator failed: {error}"))),
        },
        StepEnd::Settled(_) => Err(stopped(ctx).unwrap_or_else(|| failed("cancelled".into()))),
    }
}

/// Task ids that would collide with the planning steps' keys.
fn reserved_ids(value: &Value) -> Vec<String> {
    let Some(tasks) = value.get("tasks").and_then(Value::as_array) else {
        return Vec::new();
    };
    reserved(
        tasks
            .iter()
            .filter_map(|t| t.get("id").and_then(Value::as_str)),
    )
}

/// The task ids of `plan` that would collide with the planning steps' keys.
pub(super) fn reserved_in(plan: &Plan) -> Vec<String> {
    reserved(plan.tasks.iter().map(|t| t.id.as_str()))
}

fn reserved<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<String> {
    ids.filter(|id| {
        *id == PLAN_STEP
            || id.starts_with("plan-")
            || *id == replan::REPLAN_STEP
            || id.starts_with("replan-")
    })
    .map(|id| format!("task id `{id}` is reserved for the planner: choose another id"))
    .collect()
}

fn plan_key(n: u32) -> StepKey {
    if n <= 1 {
        StepKey::new(PLAN_STEP)
    } else {
        StepKey::new(format!("{PLAN_STEP}-{n}"))
    }
}

pub(super) enum Reviewed {
    Accepted(Plan, bool),
    Regenerate,
}

/// What one review shows and checks.
pub(super) struct Review<'a> {
    /// The first question's id; later ones are `<id>-<review>.<edit>`.
    pub id: &'a str,
    /// The step the question belongs to.
    pub step: StepKey,
    /// What is reviewed: "the plan", "the revised plan".
    pub what: &'a str,
    /// The problems of an edited plan.
    pub check: &'a (dyn Fn(&Plan) -> Vec<String> + Sync),
}

/// Shows the plan to the user: accept, regenerate, or an edited plan as
/// free text (re-asked while the edit has problems).
pub(super) async fn review_plan(
    ctx: &Arc<RunCtx>,
    proposed: &Plan,
    review: u32,
    shown: &Review<'_>,
) -> Result<Reviewed, GraphEnd> {
    let mut problems: Vec<String> = Vec::new();
    for edit in 1u32.. {
        let id = if review == 1 && edit == 1 {
            shown.id.to_string()
        } else {
            format!("{}-{review}.{edit}", shown.id)
        };
        let header = if problems.is_empty() {
            let n = proposed.tasks.len();
            format!(
                "Review {} ({n} task{})",
                shown.what,
                if n == 1 { "" } else { "s" }
            )
        } else {
            format!("The edited plan has problems: {}", problems.join("; "))
        };
        let q = Ask {
            id,
            step: Some(shown.step.clone()),
            header: Some(header),
            ask: format!(
                "{}\n\nAccept it, regenerate it, or answer with the edited plan (the text above, changed).",
                plan::to_edit_text(proposed)
            ),
            options: vec![
                Choice {
                    value: ACCEPT.into(),
                    label: "Accept and run".into(),
                },
                Choice {
                    value: REGENERATE.into(),
                    label: "Regenerate".into(),
                },
            ],
            default: None,
            timeout: Duration::from_secs(24 * 3600).max(ctx.answer_timeout),
            from_agent: false,
        };
        let answer = match human::ask(ctx, &q).await {
            Ok(a) => a.text,
            Err(e) => {
                return Err(stopped(ctx).unwrap_or_else(|| {
                    failed(format!(
                        "{} needs a review ({e}); headless, `--yes` accepts it",
                        shown.what
                    ))
                }));
            }
        };
        match answer.trim() {
            ACCEPT => return Ok(Reviewed::Accepted(proposed.clone(), false)),
            REGENERATE => return Ok(Reviewed::Regenerate),
            text => match plan::from_edit_text(text) {
                Ok(edited) => {
                    problems = (shown.check)(&edited);
                    if problems.is_empty() {
                        return Ok(Reviewed::Accepted(edited, true));
                    }
                }
                Err(p) => problems = p,
            },
        }
    }
    Err(failed("the plan review did not end".into()))
}
