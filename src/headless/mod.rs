//! Headless participant: drives a run without a TUI, prints one line (or one
//! JSON object) per durable event, answers questions with their defaults
//! and approvals with `--yes`; and rebuilds a run's transcript from the
//! journal alone (`lev replay`).

pub mod markdown;
pub mod printer;
pub mod show;

use std::collections::BTreeMap;
use std::io::Write;
use tokio::sync::mpsc;

pub use printer::Printer;

use crate::engine::{Driving, Engine};
use crate::protocol::{AnswerSource, Event, Notice, Op, Recorded, RunId, Seq};
use crate::workflow::{EngineError, RunOutcome};

/// How the headless participant answers.
#[derive(Debug, Clone, Default)]
pub struct HeadlessOptions {
    /// Print JSONL events instead of text lines.
    pub json: bool,
    /// Approve approval gates (`--yes`).
    pub yes: bool,
    /// Answers given up front (`--answer id=value`), before defaults.
    pub answers: BTreeMap<String, String>,
    /// `--wait-for-answers`: what is not answered up front waits for an
    /// answer from elsewhere (`lev answer`, an MCP client) until its own
    /// timeout policy applies, instead of being declared unattended.
    pub wait_for_answers: bool,
    /// FlowMind's conductor looks at agents' questions first: they wait
    /// for its word (`answer_proposed`) before the policy answers them.
    pub conductor: Conductor,
}

/// Whether FlowMind's conductor looks at agents' questions: by the config,
/// and in a run whose workflow turns FlowMind's model on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Conductor {
    pub by_config: bool,
    pub with_model: bool,
}

impl Conductor {
    /// For a run whose workflow's `flowmind:` sets `mode` (or does not).
    pub fn on(self, mode: Option<&str>) -> bool {
        match mode {
            Some("model") => self.with_model,
            Some(_) => false,
            None => self.by_config,
        }
    }
}

/// Formats one recorded event for output.
pub fn format_event(printer: &mut Printer, r: &Recorded, json: bool) -> String {
    if json {
        // JSON escapes C0 controls itself; C1 controls and bidi characters
        // become `\uXXXX` escapes too, which decode to the same string.
        printer.observe(r);
        let doc = serde_json::to_string(r).unwrap_or_default();
        crate::text::escape_json_unsafe(&doc).into_owned()
    } else {
        printer.line(r)
    }
}

/// Follows a run this process's engine executes to its end (or a pause),
/// printing one line per fact to `out` and answering prompts by the
/// headless policy. `notices` must come from `engine.subscribe()` before
/// the run was started, so nothing is missed; `printer` knows the run's
/// history before this drive (`clock`), which is not printed again.
pub async fn follow(
    engine: &Engine,
    mut notices: mpsc::UnboundedReceiver<Notice>,
    driving: Driving,
    mut printer: Printer,
    opts: HeadlessOptions,
    out: &mut (dyn Write + Send),
) -> Result<RunOutcome, EngineError> {
    let run = driving.run.clone();
    let seen = driving.resumed_after;
    // Agents' questions left to FlowMind's conductor, by id.
    let mut conducted: BTreeMap<String, Event> = BTreeMap::new();
    while let Some(notice) = notices.recv().await {
        let recorded = match notice {
            Notice::Event(r) if r.run == run && seen.is_none_or(|last| r.seq > last) => {
                let line = format_event(&mut printer, &r, opts.json);
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
                r
            }
            Notice::Pending(r) if r.run == run => r,
            Notice::Ended(r) if r == run => break,
            // The transcript holds facts only (a replay prints the same
            // lines); refusals are in the log.
            _ => continue,
        };
        let event = match &recorded.event {
            // A question re-announced after a resume: what FlowMind said
            // of it before the crash (the printer's clock folded it) holds.
            Event::QuestionAsked {
                id,
                from_agent: true,
                ..
            } if opts.conductor.on(printer.flowmind_mode()) && !opts.answers.contains_key(id) => {
                match printer.proposed(id) {
                    Some(true) => continue,
                    Some(false) => recorded.event.clone(),
                    None => {
                        conducted.insert(id.clone(), recorded.event.clone());
                        continue;
                    }
                }
            }
            // Its answer stands after the grace period: nothing to do.
            Event::AnswerProposed {
                answer: Some(_),
                auto: true,
                ..
            } => continue,
            Event::AnswerProposed { id, .. } => match conducted.remove(id) {
                Some(asked) => asked,
                None => continue,
            },
            other => other.clone(),
        };
        if let Some(op) = respond(&opts, &run, &event)
            && let Err(e) = engine.submit(op).await
        {
            tracing::warn!(%run, error = %e, "headless answer not taken");
        }
    }
    driving.outcome().await
}

/// A printer whose clock has seen `run`'s facts up to `upto` (when steps
/// and the run started), so durations printed after a resume are those a
/// replay prints. Read it before the engine starts a resume when possible:
/// the history is then not held twice at once.
pub async fn clock(engine: &Engine, run: &RunId, upto: Seq) -> Result<Printer, EngineError> {
    engine
        .fold_events(run, upto, Printer::default(), |printer, r| {
            printer.observe(&r)
        })
        .await
}

/// The headless policy: given answers, then defaults; approvals only with
/// `--yes`, which also picks the recommended (first) option of a question
/// that has options but no default (a swarm's plan review: accept). What it
/// cannot answer is declared unattended, so the prompt's timeout policy
/// (default, `on_timeout`) applies at once — unless `--wait-for-answers`
/// leaves it to someone else until that timeout.
fn respond(opts: &HeadlessOptions, run: &RunId, event: &Event) -> Option<Op> {
    match event {
        Event::QuestionAsked {
            id,
            default,
            options,
            ..
        } => {
            let (answer, source) = match (opts.answers.get(id), default, options.first()) {
                (Some(a), _, _) => (a.clone(), AnswerSource::User),
                // Someone else answers (`lev answer`, an MCP client), or
                // the question's timeout policy applies.
                _ if opts.wait_for_answers => return None,
                (None, Some(d), _) => (d.clone(), AnswerSource::Default),
                (None, None, Some(first)) if opts.yes => (first.value.clone(), AnswerSource::User),
                (None, None, _) => {
                    return Some(Op::Unattended {
                        run: run.clone(),
                        prompt: id.clone(),
                    });
                }
            };
            Some(Op::Answer {
                run: run.clone(),
                question: id.clone(),
                answer,
                source,
            })
        }
        Event::ApprovalRequested { step, .. } if opts.yes => Some(Op::Decide {
            run: run.clone(),
            step: step.clone(),
            approved: true,
            comment: "approved by --yes".into(),
            source: AnswerSource::User,
        }),
        Event::ApprovalRequested { .. } if opts.wait_for_answers => None,
        Event::ApprovalRequested { step, .. } => Some(Op::Unattended {
            run: run.clone(),
            prompt: step.to_string(),
        }),
        _ => None,
    }
}

/// The run's transcript, rebuilt from its recorded events alone (no network).
pub fn replay(events: &[Recorded], json: bool, out: &mut dyn Write) {
    let mut printer = Printer::default();
    for r in events {
        let _ = writeln!(out, "{}", format_event(&mut printer, r, json));
    }
    let _ = out.flush();
}
