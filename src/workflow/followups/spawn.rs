//! Deciding a succeeded step's follow-ups: its `followups:` items and what
//! its agent proposed, each numbered (`security.1`, `security.2`, …),
//! each checked against the guards, judged (`when_semantic`) and approved
//! where that applies, and journaled — spawned or refused — before the
//! graph runs it. A decision already in the journal is reused, so a
//! resumed run never judges, asks or spawns twice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::book::{Spawn, dedup_key};
use super::guards::{self, Refusal, Seen};
use crate::protocol::{Event, StepKey};
use crate::spec::expr::{EvalContext, Template};
use crate::spec::{Step, StepKind};
use crate::workflow::context::RunCtx;
use crate::workflow::human::{self, Ask};
use crate::workflow::semantic;

/// The raw output an agent's accepted `propose_followup` calls go to.
pub const PROPOSALS: &str = "proposals";

/// A step that succeeded and may spawn follow-ups, as the graph knows it.
pub struct Parent {
    pub key: StepKey,
    pub step: Step,
    /// 0 for a declared step.
    pub depth: u32,
    /// The declared step its chain grows from (itself when declared).
    pub root: StepKey,
    /// What its `followups:` templates read (its own outputs included).
    pub eval: EvalContext,
    pub outputs: crate::spec::expr::Outputs,
}

/// A follow-up step to run.
pub struct Child {
    pub step: Step,
    pub depth: u32,
    pub root: StepKey,
    /// When its chain's time box ends (it is cancelled then).
    pub deadline: tokio::time::Instant,
}

/// One follow-up a parent could spawn.
struct Candidate {
    mode: String,
    prompt: Result<String, String>,
    title: String,
    why: Option<String>,
    by: &'static str,
    /// The `when_semantic` it must pass, with the item it is about.
    judge: Option<(String, Value)>,
}

/// The follow-ups `parent` spawns (recorded ones included), in order.
/// Returns early, with what it has, when the run stops.
pub async fn decide(ctx: &Arc<RunCtx>, parent: &Parent) -> Vec<Child> {
    let (candidates, parent_max, parent_max_name) = candidates(ctx, parent).await;
    let mut children = Vec::new();
    for (n, candidate) in (1u32..).zip(&candidates) {
        let key = StepKey::new(format!("{}.{n}", parent.key));
        let recorded =
            ctx.followups_book(|b| (b.spawned.get(&key).cloned(), b.refused.get(&key).cloned()));
        match recorded {
            (Some(spawn), _) => {
                children.push(child(ctx, parent, &spawn));
                continue;
            }
            (None, Some(guard)) if guards::ends_parent(&guard) => break,
            (None, Some(_)) => continue,
            (None, None) => {}
        }
        if ctx.cancel.is_cancelled() || ctx.halted().is_some() {
            break;
        }
        let seen = seen_for(
            ctx,
            parent,
            candidate,
            parent_max,
            parent_max_name,
            candidates.len(),
        );
        let prompt = match (&candidate.prompt, guards::check(&ctx.limits, &seen)) {
            (_, Some(refusal)) => {
                let ends = guards::ends_parent(&refusal.guard);
                refuse(ctx, parent, &key, candidate, refusal).await;
                if ends {
                    break;
                }
                continue;
            }
            (Err(e), None) => {
                let refusal = Refusal {
                    guard: "spawn.prompt".into(),
                    limit: "a prompt that renders".into(),
                    observed: e.clone(),
                };
                refuse(ctx, parent, &key, candidate, refusal).await;
                continue;
            }
            (Ok(prompt), None) => prompt.clone(),
        };
        if let Some((condition, item)) = &candidate.judge {
            let observed = match judged(ctx, parent, &key, condition, item).await {
                Ok((true, _)) => None,
                Ok((false, reason)) if reason.is_empty() => Some("does not hold".to_string()),
                Ok((false, reason)) => Some(format!("does not hold: {reason}")),
                Err(e) => Some(format!("no verdict: {e}")),
            };
            match observed {
                None => {}
                Some(observed) => {
                    let refusal = Refusal {
                        guard: "when_semantic".into(),
                        limit: condition.clone(),
                        observed,
                    };
                    refuse(ctx, parent, &key, candidate, refusal).await;
                    continue;
                }
            }
        }
        // What an agent or FlowMind proposes is approved like the user's own.
        if candidate.by != "workflow" && !ctx.followup_policy.pre_authorises(&candidate.mode) {
            let approved = approve(ctx, parent, &key, candidate, &prompt).await;
            if let Err(observed) = approved {
                let refusal = Refusal {
                    guard: "approval".into(),
                    limit: "the user approves what agents and FlowMind propose (followups.auto does not cover the mode)".into(),
                    observed,
                };
                refuse(ctx, parent, &key, candidate, refusal).await;
                continue;
            }
            // The time box and the budgets went on while the user read it.
            let seen = seen_for(
                ctx,
                parent,
                candidate,
                parent_max,
                parent_max_name,
                candidates.len(),
            );
            if let Some(refusal) = guards::check(&ctx.limits, &seen) {
                let ends = guards::ends_parent(&refusal.guard);
                refuse(ctx, parent, &key, candidate, refusal).await;
                if ends {
                    break;
                }
                continue;
            }
        }
        match spawn(ctx, parent, &key, candidate, prompt).await {
            Some(spawn) => children.push(child(ctx, parent, &spawn)),
            None => break,
        }
    }
    children
}

/// The parent's candidates: the items of its `followups:` (each with the
/// spawn spec rendered), then what its agent proposed. Also the parent's
/// own limit and its name.
async fn candidates(ctx: &Arc<RunCtx>, parent: &Parent) -> (Vec<Candidate>, u32, &'static str) {
    let mut out = Vec::new();
    let mut max = ctx.limits.max_followups;
    let mut max_name = "max_followups per step";
    if let Some(spec) = &parent.step.followups {
        max = spec.max;
        max_name = "followups.max";
        let items = match spec.for_each.eval(&parent.eval) {
            Ok(Value::Array(items)) => items,
            Ok(Value::Null) => Vec::new(),
            Ok(other) => {
                tracing::warn!(step = %parent.key, "followups.for_each is not a list: {other}");
                vec![other]
            }
            Err(e) => {
                tracing::warn!(step = %parent.key, "followups.for_each: {e}");
                Vec::new()
            }
        };
        for item in items {
            let mut eval = parent.eval.clone();
            eval.item = Some(item.clone());
            let prompt = spec
                .spawn_prompt
                .render(&eval)
                .map_err(|e| format!("followups.spawn.prompt: {e}"));
            let title = item
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| prompt.as_ref().ok().map(|p| first_line(p)))
                .unwrap_or_else(|| first_line(&item.to_string()));
            out.push(Candidate {
                mode: spec.spawn_mode.clone(),
                prompt,
                title,
                why: None,
                by: "workflow",
                judge: spec.when_semantic.clone().map(|c| (c, item)),
            });
        }
    }
    if let Some(Value::Array(proposals)) = parent.outputs.get(PROPOSALS) {
        for p in proposals {
            let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default();
            out.push(Candidate {
                mode: text("mode").to_string(),
                prompt: Ok(text("prompt").to_string()),
                title: first_line(text("title")),
                why: Some(text("why").to_string()).filter(|w| !w.trim().is_empty()),
                by: if text("by") == "flowmind" {
                    "flowmind"
                } else {
                    "agent"
                },
                judge: None,
            });
        }
    }
    (out, max, max_name)
}

fn first_line(text: &str) -> String {
    crate::text::one_line(text, 80)
}

/// What the guards look at for `candidate`, as of now.
fn seen_for(
    ctx: &RunCtx,
    parent: &Parent,
    candidate: &Candidate,
    parent_max: u32,
    parent_max_name: &'static str,
    candidates: usize,
) -> Seen {
    let now = ctx.now();
    let dedup = candidate
        .prompt
        .as_ref()
        .map(|p| dedup_key(&candidate.mode, p))
        .unwrap_or_default();
    ctx.followups_book(|b| {
        let chain = b.chains.get(&parent.root);
        let started = chain.and_then(|c| c.started);
        Seen {
            stopped: b.stopped.clone(),
            depth: parent.depth + 1,
            of_parent: b.count_of(&parent.key),
            parent_max,
            parent_max_name,
            candidates,
            in_run: b.count(),
            chain_elapsed: started
                .map(|s| Duration::from_millis(now.0.saturating_sub(s.0)))
                .unwrap_or_default(),
            usage: ctx.usage_snapshot(),
            duplicate: chain.is_some_and(|c| c.seen.contains(&dedup)),
        }
    })
}

/// Journals a refusal and keeps it in the run's book.
async fn refuse(
    ctx: &RunCtx,
    parent: &Parent,
    key: &StepKey,
    candidate: &Candidate,
    refusal: Refusal,
) {
    let event = Event::FollowupRefused {
        step: key.clone(),
        parent: parent.key.clone(),
        title: candidate.title.clone(),
        guard: refusal.guard.clone(),
        limit: refusal.limit,
        observed: refusal.observed,
        at: ctx.now(),
    };
    if let Err(e) = ctx.rec.record(event).await {
        tracing::error!(step = %key, error = %e, "could not journal a refused follow-up");
        return;
    }
    ctx.followups_book(|b| b.refused.insert(key.clone(), refusal.guard));
}

/// A follow-up's `when_semantic`, judged about its item and its parent's
/// outputs (the verdict is journaled under the follow-up's key).
async fn judged(
    ctx: &Arc<RunCtx>,
    parent: &Parent,
    key: &StepKey,
    condition: &str,
    item: &Value,
) -> Result<(bool, String), String> {
    let context = || {
        let outputs = serde_json::to_string_pretty(&parent.outputs).unwrap_or_default();
        let item = serde_json::to_string_pretty(item).unwrap_or_default();
        semantic::cut_for_judge(format!(
            "Step `{}` produced:\n{outputs}\n\nThe statement is about this item of its follow-ups:\n{item}\n",
            parent.key
        ))
    };
    let what = format!("follow-up `{key}` is spawned");
    semantic::judge(ctx, key, &parent.step, condition, context, &what).await
}

/// The user's approval of an agent's proposal: a yes/no question in the
/// sidebar (headless: `--yes` or `--answer KEY.approve=yes`). `Err` says
/// why it was not approved.
async fn approve(
    ctx: &RunCtx,
    parent: &Parent,
    key: &StepKey,
    candidate: &Candidate,
    prompt: &str,
) -> Result<(), String> {
    let why = candidate
        .why
        .as_deref()
        .map(|w| format!("\nWhy: {w}"))
        .unwrap_or_default();
    let q = Ask::yes_no(
        ctx,
        format!("{key}.approve"),
        &parent.key,
        "Follow-up",
        format!(
            "{} proposes a follow-up in mode `{}`: {}{why}\nPrompt: {}\nSpawn it as `{key}`?",
            match candidate.by {
                "flowmind" => format!("FlowMind (watching `{}`)", parent.key),
                _ => format!("`{}`", parent.key),
            },
            candidate.mode,
            candidate.title,
            crate::text::one_line(prompt, 400)
        ),
        ["Spawn it", "Do not spawn it"],
    );
    match human::confirm(ctx, &q).await {
        Ok(true) => Ok(()),
        Ok(false) => Err("refused by the user".into()),
        Err(e) => Err(format!("not approved: {e}")),
    }
}

/// Journals the spawn and keeps it in the run's book. `None` when it could
/// not be journaled (nothing unrecorded may run).
async fn spawn(
    ctx: &RunCtx,
    parent: &Parent,
    key: &StepKey,
    candidate: &Candidate,
    prompt: String,
) -> Option<Spawn> {
    let now = ctx.now();
    let chain_started = ctx
        .followups_book(|b| b.chains.get(&parent.root).and_then(|c| c.started))
        .unwrap_or(now);
    let spawn = Spawn {
        key: key.clone(),
        parent: parent.key.clone(),
        root: parent.root.clone(),
        depth: parent.depth + 1,
        dedup: dedup_key(&candidate.mode, &prompt),
        mode: candidate.mode.clone(),
        prompt,
        title: candidate.title.clone(),
        why: candidate.why.clone(),
        by: candidate.by.to_string(),
        chain_started,
    };
    let event = Event::FollowupSpawned {
        step: spawn.key.clone(),
        parent: spawn.parent.clone(),
        root: spawn.root.clone(),
        depth: spawn.depth,
        mode: spawn.mode.clone(),
        prompt: spawn.prompt.clone(),
        title: spawn.title.clone(),
        why: spawn.why.clone(),
        by: spawn.by.clone(),
        dedup: spawn.dedup.clone(),
        chain_started,
        at: now,
    };
    if let Err(e) = ctx.rec.record(event).await {
        tracing::error!(step = %key, error = %e, "could not journal a follow-up; it is not spawned");
        return None;
    }
    ctx.followups_book(|b| b.add(spawn.clone()));
    Some(spawn)
}

/// The step a spawn runs: an agent step in its mode with its prompt as
/// written (never evaluated again), the parent's retry policy, timeout and
/// workspace, and its own chain's deadline.
fn child(ctx: &RunCtx, parent: &Parent, spawn: &Spawn) -> Child {
    let id = spawn
        .key
        .as_str()
        .rsplit_once('/')
        .map_or(spawn.key.as_str(), |(_, id)| id)
        .to_string();
    let mode_timeout = ctx.deps.modes.get(&spawn.mode).and_then(|m| m.timeout);
    let kind = StepKind::Agent {
        mode: spawn.mode.clone(),
        prompt: Template::literal(&spawn.prompt),
        output_schema: None,
        max_turns: None,
        allow_shell: Vec::new(),
        model: None,
        ask_agent: Vec::new(),
    };
    // A follow-up in a mode whose agent is a CLI runs that CLI (it sets
    // nothing that only lev's agent loop uses, so it is never refused).
    let kind = match kind.clone().in_terminal(&ctx.deps.modes) {
        Ok(k) => k,
        Err(_) => kind,
    };
    let step = Step {
        retry: parent.step.retry.clone(),
        timeout: parent.step.timeout.or(mode_timeout),
        // A follow-up is extra work: its failure is shown and counted by
        // the chain breaker, and does not fail the run.
        continue_on_error: true,
        workspace: parent.step.workspace.clone(),
        ..Step::made(id, Vec::new(), kind)
    };
    let started = ctx
        .followups_book(|b| b.retried.get(&spawn.key).copied())
        .map_or(spawn.chain_started, |at| at.max(spawn.chain_started));
    let elapsed = Duration::from_millis(ctx.now().0.saturating_sub(started.0));
    let left = ctx.limits.chain_timebox.saturating_sub(elapsed);
    Child {
        step,
        depth: spawn.depth,
        root: spawn.root.clone(),
        deadline: tokio::time::Instant::now() + left,
    }
}
