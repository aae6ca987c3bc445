//! `lev show RUN`: a run's steps, statuses, times, usage and outputs,
//! summarized from its recorded events alone. Any journal state is shown
//! without a panic: a run cut after any event (a kill), attempts out of
//! order, times that go backwards (clock changes), huge numbers.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;

use crate::journal::RunMeta;
use crate::protocol::{Event, Millis, Recorded, RunId, Usage};

use super::printer::value_text;
use crate::text::{ms, one_line};

/// Width of the timeline bar, in columns.
const BAR: usize = 40;

#[derive(Debug, Default, Clone, Serialize)]
struct StepLine {
    step: String,
    kind: String,
    status: String,
    attempts: u32,
    started_ms: Option<u64>,
    ended_ms: Option<u64>,
    duration_ms: Option<u64>,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: f64,
    error: Option<String>,
    /// For a follow-up: whose it is and how deep in its chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    followup_of: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct ForkedFrom {
    run: RunId,
    step: String,
}

/// What `lev show` says about a run.
#[derive(Debug, Clone)]
pub struct Summary {
    meta: RunMeta,
    forked_from: Option<ForkedFrom>,
    steps: Vec<StepLine>,
    outputs: BTreeMap<String, Value>,
    error: Option<String>,
    usage: Usage,
    /// FlowMind's own tokens (its ledgers), apart from the agents'.
    flowmind_usage: Usage,
    /// Guards that fired and callbacks stopped, in order.
    notices: Vec<String>,
}

#[derive(Serialize)]
struct ShowJson<'a> {
    id: &'a RunId,
    workflow: &'a str,
    name: &'a str,
    source: &'a str,
    status: &'a str,
    created_ms: u64,
    /// The run this one was forked from, and the step it was forked at.
    forked_from: &'a Option<ForkedFrom>,
    steps: &'a [StepLine],
    outputs: &'a BTreeMap<String, Value>,
    error: &'a Option<String>,
    usage: &'a Usage,
    flowmind_usage: &'a Usage,
    notices: &'a [String],
}

/// Folds a run's events (any prefix of any run) into its summary.
pub fn summarize(meta: &RunMeta, events: &[Recorded]) -> Summary {
    let mut order: Vec<String> = Vec::new();
    let mut steps: BTreeMap<String, StepLine> = BTreeMap::new();
    let mut outputs = BTreeMap::new();
    let mut run_error = None;
    let mut usage = Usage::default();
    let mut flowmind_usage = Usage::default();
    let mut forked_from = None;
    let mut notices = Vec::new();
    for r in events {
        match &r.event {
            Event::GuardTripped {
                guard,
                limit,
                observed,
                step,
                ..
            } => notices.push(crate::protocol::describe::guard_tripped(
                guard,
                limit,
                observed,
                step.as_ref(),
            )),
            Event::CallbacksStopped { by, reason, .. } => {
                notices.push(crate::protocol::describe::callbacks_stopped(by, reason))
            }
            Event::FlowmindDecided {
                step,
                rule,
                observed,
                level,
                text,
                ..
            } => notices.push(crate::protocol::describe::flowmind_decided(
                step, rule, observed, *level, text,
            )),
            Event::FlowmindLedger {
                step,
                turn,
                ledger,
                usage: u,
                ..
            } => {
                flowmind_usage.add(u);
                notices.push(crate::protocol::describe::flowmind_ledger(
                    step, *turn, ledger,
                ));
            }
            Event::AnswerProposed { usage: u, .. } => flowmind_usage.add(u),
            Event::FlowmindFellBack { why, .. } => {
                notices.push(crate::protocol::describe::flowmind_fell_back(why))
            }
            _ => {}
        }
        if let Event::RunForked {
            from_run,
            from_step,
            ..
        } = &r.event
        {
            forked_from = Some(ForkedFrom {
                run: from_run.clone(),
                step: from_step.0.clone(),
            });
        }
        if let Some(key) = r.event.step() {
            if !steps.contains_key(key.as_str()) {
                order.push(key.0.clone());
            }
            let line = steps.entry(key.0.clone()).or_insert_with(|| StepLine {
                step: key.0.clone(),
                ..Default::default()
            });
            fold_step(line, &r.event, &mut usage);
        }
        if let Event::RunFinished {
            outputs: o, error, ..
        } = &r.event
        {
            outputs = o.clone();
            run_error = error.clone();
        }
        if let Event::RunPaused { reason, .. } = &r.event {
            run_error = Some(crate::protocol::describe::pause(reason));
        }
    }
    let mut lines: Vec<StepLine> = order.iter().filter_map(|k| steps.remove(k)).collect();
    for l in &mut lines {
        l.duration_ms = match (l.started_ms, l.ended_ms) {
            (Some(s), Some(e)) => Some(e.saturating_sub(s)),
            _ => None,
        };
    }
    Summary {
        meta: meta.clone(),
        forked_from,
        steps: lines,
        outputs,
        error: run_error,
        usage,
        flowmind_usage,
        notices,
    }
}

fn fold_step(line: &mut StepLine, event: &Event, usage: &mut Usage) {
    let at = event.at().0;
    match event {
        Event::StepStarted { attempt, kind, .. } => {
            line.kind = kind.clone();
            line.attempts = attempt.0.max(line.attempts);
            line.started_ms.get_or_insert(at);
            line.status = "running".into();
            line.ended_ms = None;
        }
        Event::LlmReplied { usage: u, .. } | Event::SemanticVerdict { usage: u, .. } => {
            line.input_tokens = line.input_tokens.saturating_add(u.input_tokens);
            line.output_tokens = line.output_tokens.saturating_add(u.output_tokens);
            line.cost_usd += u.cost_usd;
            usage.add(u);
        }
        Event::StepSucceeded { .. } => {
            line.status = "succeeded".into();
            line.ended_ms = Some(at);
        }
        Event::StepFailed {
            error, retry_in_ms, ..
        } => {
            line.status = if retry_in_ms.is_some() {
                "retrying".into()
            } else {
                "failed".into()
            };
            line.error = Some(error.clone());
            line.ended_ms = Some(at);
        }
        Event::StepSkipped { reason, .. } => {
            line.status = "skipped".into();
            line.error = Some(reason.clone());
        }
        Event::StepCancelled { .. } => {
            line.status = "cancelled".into();
            line.ended_ms = Some(at);
        }
        Event::ApprovalRequested { .. } | Event::QuestionAsked { .. } => {
            line.status = "waiting".into()
        }
        Event::FollowupSpawned { parent, depth, .. } => {
            line.status = "pending".into();
            line.followup_of = Some(format!("follow-up of {parent}, depth {depth}"));
        }
        Event::FollowupRefused {
            parent,
            guard,
            limit,
            observed,
            ..
        } => {
            line.status = "refused".into();
            line.followup_of = Some(format!("follow-up of {parent}"));
            line.error = Some(format!("not spawned: {guard} ({limit}): {observed}"));
        }
        _ => {}
    }
    if line.kind.is_empty() {
        line.kind = "-".into();
    }
}

impl Summary {
    /// `lev show --json`: the summary as one pretty JSON document.
    pub fn json(&self, status: &str) -> Result<String, serde_json::Error> {
        let doc = serde_json::to_string_pretty(&ShowJson {
            id: &self.meta.id,
            workflow: &self.meta.workflow_id,
            name: &self.meta.name,
            source: &self.meta.source,
            status,
            created_ms: self.meta.created_ms,
            forked_from: &self.forked_from,
            steps: &self.steps,
            outputs: &self.outputs,
            error: &self.error,
            usage: &self.usage,
            flowmind_usage: &self.flowmind_usage,
            notices: &self.notices,
        })?;
        // C1 controls and bidi characters as `\uXXXX`: the same document.
        Ok(crate::text::escape_json_unsafe(&doc).into_owned())
    }

    /// `lev show`: the summary as text for a terminal (nothing in it is a
    /// control character but line breaks).
    pub fn text(&self, status: &str) -> String {
        let meta = &self.meta;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "run {}  {}  ({})",
            meta.id,
            one_line(&meta.name, 200),
            one_line(&meta.source, 200)
        );
        if let Some(f) = &self.forked_from {
            let _ = writeln!(
                out,
                "forked from run {} at step {}",
                one_line(&f.run.0, 60),
                one_line(&f.step, 60)
            );
        }
        let _ = writeln!(
            out,
            "status {status}, started {} UTC, {}{} tokens, ${:.4}\n",
            Millis(meta.created_ms).utc(),
            self.usage.estimate_mark(),
            self.usage.total_tokens(),
            self.usage.cost_usd
        );
        if self.flowmind_usage.total_tokens() > 0 {
            let _ = writeln!(
                out,
                "FlowMind: {}{} tokens of its own, ${:.4}\n",
                self.flowmind_usage.estimate_mark(),
                self.flowmind_usage.total_tokens(),
                self.flowmind_usage.cost_usd
            );
        }
        let _ = writeln!(
            out,
            "{:<24} {:<9} {:<10} {:>3} {:>9} {:>9} {:>9}",
            "STEP", "KIND", "STATUS", "TRY", "TIME", "TOKENS", "COST"
        );
        let t0 = meta.created_ms;
        let t1 = meta.updated_ms.max(t0.saturating_add(1));
        for l in &self.steps {
            let _ = writeln!(
                out,
                "{:<24} {:<9} {:<10} {:>3} {:>9} {:>9} {:>9}",
                one_line(&l.step, 24),
                one_line(&l.kind, 9),
                l.status,
                l.attempts,
                l.duration_ms.map(ms).unwrap_or_else(|| "-".into()),
                l.input_tokens.saturating_add(l.output_tokens),
                format!("${:.4}", l.cost_usd)
            );
            if let Some(of) = &l.followup_of {
                let _ = writeln!(out, "  ↳ {}", one_line(of, 110));
            }
            if let Some(start) = l.started_ms {
                let _ = writeln!(out, "  {}", timeline_bar(start, l.ended_ms, t0, t1));
            }
            if let Some(e) = &l.error
                && l.status != "succeeded"
            {
                let _ = writeln!(out, "  └ {}", one_line(e, 110));
            }
        }
        if !self.notices.is_empty() {
            out.push('\n');
            for n in &self.notices {
                let _ = writeln!(out, "! {}", one_line(n, 300));
            }
        }
        if let Some(e) = &self.error {
            let _ = writeln!(out, "\n{}", one_line(e, 2000));
        }
        for (k, v) in &self.outputs {
            let _ = writeln!(
                out,
                "output {} = {}",
                one_line(k, 60),
                one_line(&value_text(v), 200)
            );
        }
        out
    }
}

/// A bar placing a step within the run's wall-clock span `t0..t1`. A step
/// still running ends at `t1`; times outside the span (a clock that moved,
/// a step that started with the newest event) are drawn at its edges, and
/// the bar is always at least one column wide.
fn timeline_bar(start: u64, end: Option<u64>, t0: u64, t1: u64) -> String {
    let end = end.unwrap_or(t1).max(start);
    let span = t1.saturating_sub(t0).max(1) as f64;
    let column = |t: u64| t.saturating_sub(t0) as f64 / span * BAR as f64;
    // `as usize` saturates, so huge or odd times stay finite here.
    let a = (column(start).floor() as usize).min(BAR - 1);
    let b = (column(end).ceil() as usize).clamp(a + 1, BAR);
    format!(
        "|{}{}{}|",
        " ".repeat(a),
        "█".repeat(b - a),
        " ".repeat(BAR - b)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn width(bar: &str) -> usize {
        bar.chars().count()
    }

    #[test]
    fn bar_survives_a_step_that_started_with_the_newest_event() {
        // The newest event is this step's start: start == t1.
        let bar = timeline_bar(2_000, None, 1_000, 2_000);
        assert_eq!(bar, format!("|{}█|", " ".repeat(39)));
    }

    #[test]
    fn bar_survives_backward_clocks_and_huge_times() {
        for (start, end, t0, t1) in [
            (500, Some(100), 1_000, 2_000),
            (5_000, Some(9_000), 1_000, 2_000),
            (u64::MAX, None, 0, 1),
            (0, Some(u64::MAX), u64::MAX - 1, u64::MAX),
            (7, Some(7), 7, 8),
        ] {
            let bar = timeline_bar(start, end, t0, t1);
            assert_eq!(width(&bar), BAR + 2, "{start} {end:?} {t0} {t1}");
            assert!(bar.contains('█'));
        }
    }
}
