//! Divergence detection: on resume, every recomputed step and LLM request is
//! compared with the one recorded at its key; a mismatch pauses the run with
//! a message and never reuses the recorded result. In-process, on a real
//! journal.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use lev::llm::{self, SharedProvider};
use lev::protocol::{
    Attempt, Event, Millis, Notice, PauseReason, RunStatus, StepKey, ToolCallRecord, Usage,
};
use lev::spec::{self, ModeRegistry};
use lev::workflow::{self, EngineDeps, Recorder, RunOptions};
use tokio::sync::mpsc;

struct Fixture {
    _dir: tempfile::TempDir,
    journal: support::journal::TestJournal,
    modes: ModeRegistry,
    workspace: std::path::PathBuf,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let journal = support::journal::open(dir.path()).await;
    let modes = ModeRegistry::load(&[spec::mode::builtin_dir()]).unwrap();
    let workspace = dir.path().join("ws");
    std::fs::create_dir_all(&workspace).unwrap();
    let workspace = workspace.canonicalize().unwrap();
    Fixture {
        _dir: dir,
        journal,
        modes,
        workspace,
    }
}

fn deps(f: &Fixture, provider: Result<SharedProvider, String>) -> Arc<EngineDeps> {
    Arc::new(EngineDeps {
        journal: f.journal.clone(),
        provider,
        default_model: None,
        profiles: Default::default(),
        modes: f.modes.clone(),
        workspace: f.workspace.clone(),
        options: RunOptions::default(),
    })
}

async fn drive(
    deps: Arc<EngineDeps>,
    run: &lev::protocol::RunId,
) -> (workflow::RunOutcome, Vec<Event>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (_ops_tx, ops_rx) = mpsc::unbounded_channel();
    let outcome = workflow::drive(deps, run.clone(), workflow::Start::Resume, ops_rx, vec![tx])
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Ok(n) = rx.try_recv() {
        if let Notice::Event(r) = n {
            events.push(r.event);
        }
    }
    (outcome, events)
}

fn load(f: &Fixture, yaml: &str) -> spec::Workflow {
    let path = f.workspace.join("wf.yaml");
    std::fs::write(&path, yaml).unwrap();
    spec::load_workflow(&path, &f.modes).unwrap()
}

#[tokio::test]
async fn a_recorded_step_that_no_longer_matches_pauses_instead_of_running() {
    let f = fixture().await;
    let wf = load(
        &f,
        "version: 1\nkind: workflow\nid: d\nname: D\nsteps:\n  touch:\n    type: shell\n    idempotent: true\n    run: touch ran.txt\n",
    );
    let run = workflow::start_run(&f.journal, &wf, BTreeMap::new(), None)
        .await
        .unwrap();
    // The journal says `touch` began with a different definition than the one we compute now.
    let meta = f.journal.run(&run).await.unwrap().unwrap();
    let rec = Recorder::new(f.journal.clone(), run.clone(), meta.last_seq, Vec::new());
    rec.record(Event::StepStarted {
        step: StepKey::new("touch"),
        attempt: Attempt(1),
        fingerprint: "0".repeat(64),
        kind: "shell".into(),
        mode: None,
        idempotent: true,
        hints: Vec::new(),
        at: Millis::now(),
    })
    .await
    .unwrap();

    let (outcome, events) = drive(deps(&f, Err("none".into())), &run).await;
    assert_eq!(outcome.status, RunStatus::Paused);
    assert!(
        outcome
            .error
            .as_deref()
            .unwrap()
            .contains("divergence at step `touch`"),
        "{outcome:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e, Event::RunPaused { reason: PauseReason::Divergence { step, .. }, .. } if step.as_str() == "touch")),
        "{events:?}"
    );
    assert!(
        !f.workspace.join("ran.txt").exists(),
        "the diverged step must not run"
    );
    assert_eq!(
        f.journal.run(&run).await.unwrap().unwrap().status,
        RunStatus::Paused
    );

    // Resuming again gives the same answer: the run never silently continues.
    let (again, _) = drive(deps(&f, Err("none".into())), &run).await;
    assert_eq!(again.status, RunStatus::Paused);
    assert!(!f.workspace.join("ran.txt").exists());
}

#[tokio::test]
async fn a_recorded_llm_reply_for_a_different_request_is_never_reused() {
    let f = fixture().await;
    let wf = load(
        &f,
        "version: 1\nkind: workflow\nid: d\nname: D\nsteps:\n  think:\n    mode: architect\n    prompt: Plan it.\n",
    );
    let run = workflow::start_run(&f.journal, &wf, BTreeMap::new(), None)
        .await
        .unwrap();
    let cassette = f.workspace.join("c.yaml");
    std::fs::write(
        &cassette,
        "replies:\n  - step: think\n    text: fresh answer\n    repeat: true\n",
    )
    .unwrap();
    let mut config = lev::config::Config::default();
    config.provider = lev::config::ProviderSettings::of_kind(lev::config::ProviderKind::Scripted);
    config.provider.cassette = Some(cassette);
    let provider = llm::build_provider(&config).map_err(|e| e.to_string());

    // First, learn the step's real fingerprint by letting a run start it.
    let (done, events) = drive(deps(&f, provider.clone()), &run).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{done:?}");
    let fingerprint = events
        .iter()
        .find_map(|e| match e {
            Event::StepStarted { fingerprint, .. } => Some(fingerprint.clone()),
            _ => None,
        })
        .unwrap();

    // A second run whose journal holds the step in flight with a reply to another request.
    let run2 = workflow::start_run(&f.journal, &wf, BTreeMap::new(), None)
        .await
        .unwrap();
    let meta = f.journal.run(&run2).await.unwrap().unwrap();
    let rec = Recorder::new(f.journal.clone(), run2.clone(), meta.last_seq, Vec::new());
    let step = StepKey::new("think");
    rec.record(Event::StepStarted {
        step: step.clone(),
        attempt: Attempt(1),
        fingerprint,
        kind: "agent".into(),
        mode: Some("architect".into()),
        idempotent: true,
        hints: Vec::new(),
        at: Millis::now(),
    })
    .await
    .unwrap();
    rec.record(Event::LlmReplied {
        step: step.clone(),
        attempt: Attempt(1),
        turn: 1,
        fingerprint: "f".repeat(64),
        text: "stale answer".into(),
        tool_calls: Vec::<ToolCallRecord>::new(),
        usage: Usage::default(),
        model: "m".into(),
        stop_reason: None,
        refusal: None,
        at: Millis::now(),
    })
    .await
    .unwrap();
    let (outcome, _) = drive(deps(&f, provider), &run2).await;
    assert_eq!(outcome.status, RunStatus::Paused, "{outcome:?}");
    let msg = outcome.error.unwrap();
    assert!(
        msg.contains("divergence at step `think`") && msg.contains("turn 1"),
        "{msg}"
    );
    let all = workflow::read_run(&f.journal, &run2).await.unwrap();
    assert!(
        !all.iter()
            .any(|r| matches!(&r.event, Event::StepSucceeded { .. })),
        "the stale reply must not finish the step"
    );
}
