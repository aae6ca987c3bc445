//! Commands that read or edit the journal without executing a run:
//! `runs`, `show`, `replay`, `export`, `import`, `cancel`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::path::Path;

use super::access::Access;
use super::args::ExportFormat;
use super::context::{error, open_journal};
use super::exit;
use crate::headless;
use crate::journal::RunMeta;
use crate::paths::Paths;
use crate::protocol::{Op, RunId, RunStatus, StepKey};

/// One run as `lev runs --json` prints it (and `lev mcp`'s `list_runs`
/// lists it); `executor`: the lev process that holds its lease (a shared
/// journal's).
pub(super) fn run_json(m: &RunMeta, live: bool, executor: Executor<'_>) -> serde_json::Value {
    let holder = match executor {
        Executor::Process(h) => Some(h),
        _ => None,
    };
    serde_json::json!({
        "id": m.id, "workflow": m.workflow_id, "name": m.name, "source": m.source,
        "status": shown_status(m, live, executor), "created_ms": m.created_ms, "updated_ms": m.updated_ms,
        "entries": m.last_seq, "parent": m.parent, "step_run": m.step_run, "executor": holder,
    })
}

/// Who executes a run, as far as this process can tell.
#[derive(Clone, Copy)]
pub(super) enum Executor<'a> {
    /// Not known here: a redb journal (one process executes its runs), or
    /// the runs were asked of the executing process.
    Unknown,
    /// The lev process holding its lease in a shared journal.
    Process(&'a str),
    /// Nobody: a shared journal, and no live lease on it.
    Nobody,
}

impl<'a> Executor<'a> {
    /// A run's executor by a shared journal's live leases (`None`: the
    /// journal is not shared, or was not read).
    pub(super) fn of(
        run: &RunId,
        leases: Option<&'a std::collections::HashMap<RunId, String>>,
    ) -> Executor<'a> {
        match leases {
            None => Executor::Unknown,
            Some(l) => l
                .get(run)
                .map_or(Executor::Nobody, |h| Executor::Process(h)),
        }
    }
}

/// The live leases of a shared journal this process reads itself.
pub(super) async fn leases(access: &Access) -> Option<std::collections::HashMap<RunId, String>> {
    let journal = access.local().filter(|j| j.is_shared())?;
    match journal.live_leases().await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the runs' leases");
            None
        }
    }
}

/// A run's summary as `lev show` prints it and its status as shown: `None`
/// when there is no such run.
pub(super) async fn summary(
    access: &mut Access,
    run: &RunId,
) -> Result<Option<(headless::show::Summary, &'static str)>, String> {
    let live = access.is_remote();
    let Some(meta) = access.run(run).await? else {
        return Ok(None);
    };
    let events = access.events(run).await?;
    let leases = leases(access).await;
    let status = shown_status(&meta, live, Executor::of(run, leases.as_ref()));
    Ok(Some((headless::show::summarize(&meta, &events), status)))
}

/// A run's status as a user should read it: a `running` run that no
/// process executes is `interrupted` (a redb journal this process could
/// open has no live process), or `waiting` in a shared journal (a `lev
/// worker` takes it); one a process holds the lease of is running.
fn shown_status(meta: &RunMeta, live: bool, executor: Executor<'_>) -> &'static str {
    match meta.status {
        RunStatus::Running if live || matches!(executor, Executor::Process(_)) => "running",
        RunStatus::Running if matches!(executor, Executor::Nobody) => "waiting",
        RunStatus::Running => "interrupted",
        s => s.as_str(),
    }
}

/// Names the runs whose records are damaged, on stderr, when the list
/// ends (so the table on stdout stays a table).
fn print_damaged_after(damaged: &[(crate::protocol::RunId, String)]) {
    for (id, why) in damaged {
        eprintln!(
            "warning: run {id} is not listed: its record is damaged ({}); `lev doctor` checks the journal, `lev export --all -o DIR` saves what can be read",
            crate::text::one_line(why, 120)
        );
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
    // Records that do not decode are left out of the list, and named.
    let damaged = match access.local() {
        Some(journal) => journal.damaged_runs().await.unwrap_or_default(),
        None => Vec::new(),
    };
    let leases = leases(&access).await;
    if json {
        for m in &runs {
            println!(
                "{}",
                run_json(m, live, Executor::of(&m.id, leases.as_ref()))
            );
        }
        for (id, why) in &damaged {
            println!(
                "{}",
                serde_json::json!({"id": id, "status": "damaged", "error": why})
            );
        }
        return exit::OK;
    }
    print_damaged_after(&damaged);
    if runs.is_empty() {
        println!("no runs yet in {} — try `lev demo`", paths.journal_name());
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
            shown_status(m, live, Executor::of(&m.id, leases.as_ref())),
            crate::text::one_line(&m.workflow_id, 24),
            utc(m.created_ms),
            m.last_seq
        );
        if let Some(parent) = &m.parent {
            let of = if m.step_run { "step of" } else { "fork of" };
            println!("{:<26}  └ {of} {parent}", "");
        }
    }
    let unfinished = runs
        .iter()
        .filter(|m| matches!(m.status, RunStatus::Running | RunStatus::Paused))
        .count();
    if unfinished > 0 {
        match &leases {
            Some(_) => println!(
                "\n{unfinished} unfinished run(s): a `lev worker` takes a waiting one, `lev resume <RUN>` continues one here."
            ),
            None => {
                println!("\n{unfinished} unfinished run(s): `lev resume <RUN>` continues one.")
            }
        }
    }
    print_suggestions(&mut access).await;
    exit::OK
}

/// What the newest runs suggest (the same step failing, a timeout hit
/// often, a swarm plan worth keeping); nothing when they suggest nothing.
async fn print_suggestions(access: &mut Access) {
    let suggestions = match access.suggestions(crate::engine::suggest::RUNS).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("suggestions: {e}");
            return;
        }
    };
    if suggestions.is_empty() {
        return;
    }
    println!("\nSuggestions:");
    for s in suggestions {
        println!("  • {}", s.text);
        if let Some(command) = s.command {
            println!("      {command}");
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, from epoch milliseconds.
fn utc(ms: u64) -> String {
    crate::protocol::Millis(ms).utc()
}

/// `lev show RUN --context STEP [--turn N] [--json]`.
pub async fn show_context(
    paths: &Paths,
    run: &str,
    step: &str,
    turn: Option<u32>,
    json: bool,
) -> u8 {
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let run = RunId(run.to_string());
    let shown = match access
        .context(&run, &crate::protocol::StepKey::new(step), turn)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    };
    if json {
        match serde_json::to_string_pretty(&shown) {
            Ok(s) => println!("{}", crate::text::escape_json_unsafe(&s)),
            Err(e) => {
                error(&e.to_string());
                return exit::FAILED;
            }
        }
        return exit::OK;
    }
    print!("{}", shown.text(true));
    exit::OK
}

pub async fn show(paths: &Paths, run: &str, json: bool) -> u8 {
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let run = RunId(run.to_string());
    let (summary, status) = match summary(&mut access, &run).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            error(&format!("no run {run}"));
            return exit::USAGE;
        }
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    };
    if json {
        match summary.json(status) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                error(&e.to_string());
                return exit::FAILED;
            }
        }
        return exit::OK;
    }
    print!("{}", summary.text(status));
    exit::OK
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
    let journal = match open_journal(paths).await {
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
    let op = match step {
        Some(step) => Op::CancelStep {
            run: run.clone(),
            step: StepKey::new(step),
        },
        None => Op::Cancel { run: run.clone() },
    };
    match access.submit(op).await {
        Ok(done) => {
            println!("{}", done.describe());
            exit::OK
        }
        Err(e) => {
            error(&e);
            exit::FAILED
        }
    }
}
