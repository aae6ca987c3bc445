//! Commands that read or edit the journal without executing a run:
//! `runs`, `show`, `replay`, `export`, `import`, `cancel`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::access::Access;
use super::args::ExportFormat;
use super::exit;
use super::setup::{error, open_journal};
use crate::headless::{self, printer};
use crate::journal::RunMeta;
use crate::paths::Paths;
use crate::protocol::{Event, RunId, RunStatus, Usage};
use crate::workflow;

/// A run's status as a user should read it: a `running` run in a journal
/// this process could open has no live process, so it is interrupted.
fn shown_status(meta: &RunMeta, live: bool) -> &'static str {
    match meta.status {
        RunStatus::Running if !live => "interrupted",
        s => s.as_str(),
    }
}

pub async fn runs(paths: &Paths, json: bool) -> u8 {
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let live = access.is_remote();
    let runs = match access.runs().await {
        Ok(r) => r,
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    };
    if json {
        for m in &runs {
            let v = serde_json::json!({
                "id": m.id, "workflow": m.workflow_id, "name": m.name, "source": m.source,
                "status": shown_status(m, live), "created_ms": m.created_ms, "updated_ms": m.updated_ms,
                "entries": m.last_seq, "parent": m.parent,
            });
            println!("{v}");
        }
        return exit::OK;
    }
    if runs.is_empty() {
        println!(
            "no runs yet in {} — try `lev demo`",
            paths.journal().display()
        );
        return exit::OK;
    }
    println!(
        "{:<26}  {:<11}  {:<24}  {:<19}  {:>7}",
        "RUN", "STATUS", "WORKFLOW", "STARTED (UTC)", "EVENTS"
    );
    for m in &runs {
        println!(
            "{:<26}  {:<11}  {:<24}  {:<19}  {:>7}",
            m.id,
            shown_status(m, live),
            printer::one_line(&m.workflow_id, 24),
            utc(m.created_ms),
            m.last_seq
        );
        if let Some(parent) = &m.parent {
            println!("{:<26}  └ fork of {parent}", "");
        }
    }
    let unfinished = runs
        .iter()
        .filter(|m| matches!(m.status, RunStatus::Running | RunStatus::Paused))
        .count();
    if unfinished > 0 {
        println!("\n{unfinished} unfinished run(s): `lev resume <RUN>` continues one.");
    }
    exit::OK
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, from epoch milliseconds.
fn utc(ms: u64) -> String {
    crate::protocol::Millis(ms).utc()
}

#[derive(Debug, Default, Serialize)]
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
}

#[derive(Debug, Serialize)]
struct ShowJson<'a> {
    id: &'a RunId,
    workflow: &'a str,
    name: &'a str,
    source: &'a str,
    status: &'a str,
    created_ms: u64,
    /// The run this one was forked from, and the step it was forked at.
    forked_from: Option<ForkedFrom>,
    steps: Vec<StepLine>,
    outputs: BTreeMap<String, Value>,
    error: Option<String>,
    usage: Usage,
}

#[derive(Debug, Serialize)]
struct ForkedFrom {
    run: RunId,
    step: String,
}

pub async fn show(paths: &Paths, run: &str, json: bool) -> u8 {
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let live = access.is_remote();
    let run = RunId(run.to_string());
    let meta = match access.run(&run).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            error(&format!("no run {run}"));
            return exit::USAGE;
        }
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    };
    let events = match access.events(&run).await {
        Ok(e) => e,
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    };
    let mut order: Vec<String> = Vec::new();
    let mut steps: BTreeMap<String, StepLine> = BTreeMap::new();
    let mut outputs = BTreeMap::new();
    let mut run_error = None;
    let mut usage = Usage::default();
    let mut forked_from = None;
    for r in &events {
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
            let at = r.event.at().0;
            match &r.event {
                Event::StepStarted { attempt, kind, .. } => {
                    line.kind = kind.clone();
                    line.attempts = attempt.0.max(line.attempts);
                    line.started_ms.get_or_insert(at);
                    line.status = "running".into();
                    line.ended_ms = None;
                }
                Event::LlmReplied { usage: u, .. } => {
                    line.input_tokens += u.input_tokens;
                    line.output_tokens += u.output_tokens;
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
                _ => {}
            }
            if line.kind.is_empty() {
                line.kind = "-".into();
            }
        }
        if let Event::RunFinished {
            outputs: o, error, ..
        } = &r.event
        {
            outputs = o.clone();
            run_error = error.clone();
        }
        if let Event::RunPaused { reason, .. } = &r.event {
            run_error = Some(workflow::describe_pause(reason));
        }
    }
    let mut lines: Vec<StepLine> = order.iter().filter_map(|k| steps.remove(k)).collect();
    for l in &mut lines {
        l.duration_ms = match (l.started_ms, l.ended_ms) {
            (Some(s), Some(e)) => Some(e.saturating_sub(s)),
            _ => None,
        };
    }
    let status = shown_status(&meta, live);
    if json {
        let doc = ShowJson {
            id: &meta.id,
            workflow: &meta.workflow_id,
            name: &meta.name,
            source: &meta.source,
            status,
            created_ms: meta.created_ms,
            forked_from,
            steps: lines,
            outputs,
            error: run_error,
            usage,
        };
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                error(&e.to_string());
                return exit::FAILED;
            }
        }
        return exit::OK;
    }
    println!("run {}  {}  ({})", meta.id, meta.name, meta.source);
    if let Some(f) = &forked_from {
        println!("forked from run {} at step {}", f.run, f.step);
    }
    println!(
        "status {status}, started {} UTC, {} tokens, ${:.4}",
        utc(meta.created_ms),
        usage.total_tokens(),
        usage.cost_usd
    );
    println!();
    println!(
        "{:<24} {:<9} {:<10} {:>3} {:>9} {:>9} {:>9}",
        "STEP", "KIND", "STATUS", "TRY", "TIME", "TOKENS", "COST"
    );
    let t0 = meta.created_ms;
    for l in &lines {
        println!(
            "{:<24} {:<9} {:<10} {:>3} {:>9} {:>9} {:>9}",
            printer::one_line(&l.step, 24),
            l.kind,
            l.status,
            l.attempts,
            l.duration_ms.map(printer::ms).unwrap_or_else(|| "-".into()),
            l.input_tokens + l.output_tokens,
            format!("${:.4}", l.cost_usd)
        );
        if let Some(bar) = timeline_bar(l, t0, meta.updated_ms.max(t0 + 1)) {
            println!("  {bar}");
        }
        if let Some(e) = &l.error
            && l.status != "succeeded"
        {
            println!("  └ {}", printer::one_line(e, 110));
        }
    }
    if let Some(e) = &run_error {
        println!("\n{e}");
    }
    for (k, v) in &outputs {
        println!(
            "output {k} = {}",
            printer::one_line(&printer::value_text(v), 200)
        );
    }
    exit::OK
}

/// A 40-column bar placing the step within the run's wall-clock span.
fn timeline_bar(l: &StepLine, t0: u64, t1: u64) -> Option<String> {
    let start = l.started_ms?;
    let end = l.ended_ms.unwrap_or(t1);
    let width = 40.0;
    let span = (t1.saturating_sub(t0)).max(1) as f64;
    let a = ((start.saturating_sub(t0)) as f64 / span * width).floor() as usize;
    let b = (((end.saturating_sub(t0)) as f64 / span * width).ceil() as usize).clamp(a + 1, 40);
    let a = a.min(39);
    Some(format!(
        "|{}{}{}|",
        " ".repeat(a),
        "█".repeat(b - a),
        " ".repeat(40 - b)
    ))
}

pub async fn replay(paths: &Paths, run: &str, json: bool) -> u8 {
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let run = RunId(run.to_string());
    let events = match access.events(&run).await {
        Ok(e) if e.is_empty() => {
            error(&format!("no run {run}"));
            return exit::USAGE;
        }
        Ok(e) => e,
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    };
    let mut out = std::io::stdout();
    headless::replay(&events, json, &mut out);
    exit::OK
}

pub async fn export(paths: &Paths, run: &str, output: Option<&Path>, format: ExportFormat) -> u8 {
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let run = RunId(run.to_string());
    let bytes = match format {
        ExportFormat::Jsonl => access.export(&run).await,
        ExportFormat::Md => match access.events(&run).await {
            Ok(events) if events.is_empty() => Err(format!("no run {run}")),
            Ok(events) => Ok(headless::markdown::transcript(&events).into_bytes()),
            Err(e) => Err(e),
        },
    };
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    };
    let written = match output {
        Some(path) => std::fs::write(path, &bytes).map_err(|e| format!("{}: {e}", path.display())),
        None => {
            let mut out = std::io::stdout();
            out.write_all(&bytes)
                .and_then(|_| out.flush())
                .map_err(|e| e.to_string())
        }
    };
    match written {
        Ok(()) => exit::OK,
        Err(e) => {
            error(&e);
            exit::FAILED
        }
    }
}

pub async fn import(paths: &Paths, file: &Path) -> u8 {
    let journal = match open_journal(paths) {
        Ok(j) => j,
        Err(c) => return c,
    };
    match journal.import(file).await {
        Ok(run) => {
            println!("imported run {run}");
            exit::OK
        }
        Err(e) => {
            error(&e.to_string());
            exit::FAILED
        }
    }
}

pub async fn cancel(paths: &Paths, run: &str, step: Option<&str>) -> u8 {
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let run = RunId(run.to_string());
    let result = match step {
        Some(step) => access.cancel_step(&run, step).await,
        None => access.cancel(&run).await,
    };
    match result {
        Ok(msg) => {
            println!("{msg}");
            exit::OK
        }
        Err(e) => {
            error(&e);
            exit::FAILED
        }
    }
}
