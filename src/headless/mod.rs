//! Headless participant: drives a run without a TUI, prints one line (or one
//! JSON object) per durable event, answers questions with their defaults
//! and approvals with `--yes`; and rebuilds a run's transcript from the
//! journal alone (`lev replay`).

pub mod markdown;
pub mod printer;
pub mod show;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use tokio::sync::mpsc;

pub use printer::Printer;

use crate::protocol::{AnswerSource, Event, Notice, Op, Recorded, RunId};
use crate::workflow::{self, EngineDeps, EngineError, RunOutcome, Start};

/// How the headless participant answers.
#[derive(Debug, Clone, Default)]
pub struct HeadlessOptions {
    /// Print JSONL events instead of text lines.
    pub json: bool,
    /// Approve approval gates (`--yes`).
    pub yes: bool,
    /// Answers given up front (`--answer id=value`), before defaults.
    pub answers: BTreeMap<String, String>,
}

/// Formats one recorded event for output.
pub fn format_event(printer: &mut Printer, r: &Recorded, json: bool) -> String {
    if json {
        // JSON escapes C0 controls itself; C1 controls and bidi characters
        // become `\uXXXX` escapes too, which decode to the same string.
        let doc = serde_json::to_string(r).unwrap_or_default();
        crate::text::escape_json_unsafe(&doc).into_owned()
    } else {
        printer.line(r)
    }
}

/// Drives `run` to its end (or a pause), printing events to `out`.
pub async fn drive(
    deps: Arc<EngineDeps>,
    run: RunId,
    start: Start,
    opts: HeadlessOptions,
    ops: (mpsc::UnboundedSender<Op>, mpsc::UnboundedReceiver<Op>),
    out: &mut (dyn Write + Send),
) -> Result<RunOutcome, EngineError> {
    let mut printer = Printer::default();
    // Events from before a resume set the printer's clock without being printed again.
    if start == Start::Resume {
        for r in &workflow::read_run(&deps.journal, &run).await? {
            printer.observe(r);
        }
    }
    let (notice_tx, mut notices) = mpsc::unbounded_channel::<Notice>();
    let (op_tx, op_rx) = ops;
    let engine = tokio::spawn(workflow::drive(
        deps,
        run.clone(),
        start,
        op_rx,
        vec![notice_tx],
    ));
    while let Some(notice) = notices.recv().await {
        let recorded = match notice {
            Notice::Event(r) => {
                let line = format_event(&mut printer, &r, opts.json);
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
                r
            }
            Notice::Pending(r) => r,
            // The transcript holds facts only (a replay prints the same
            // lines); refusals are in the log.
            Notice::Delta(..) | Notice::Refused(..) => continue,
        };
        if let Some(op) = respond(&opts, &run, &recorded.event) {
            let _ = op_tx.send(op);
        }
    }
    match engine.await {
        Ok(result) => result,
        Err(e) => Err(EngineError::Definition {
            run,
            message: format!("engine task failed: {e}"),
        }),
    }
}

/// The headless policy: given answers, then defaults; approvals only with
/// `--yes`, which also picks the recommended (first) option of a question
/// that has options but no default (a swarm's plan review: accept). What it
/// cannot answer is declared unattended, so the prompt's timeout policy
/// (default, `on_timeout`) applies at once.
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
