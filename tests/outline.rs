//! What a run tells its viewers up front: `RunStarted` lists every declared
//! step (the TUI shows the ones not started yet as pending), and an agent's
//! `StepStarted` records the hints lev gave it (the step's
//! `whisper.to_llm` and its mode's `whisper.hints`), which the TUI shows
//! dimmed beside the user's messages. In-process, on a real journal, with
//! the scripted provider.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use lev::llm;
use lev::protocol::{Event, Notice, RunStatus, StepOutline, StepStatus};
use lev::spec::{self, ModeRegistry};
use lev::tui::state::State;
use lev::tui::theme::Theme;
use lev::tui::view;
use lev::workflow::{self, EngineDeps, RunOptions};
use tokio::sync::mpsc;

const YAML: &str = r#"version: 1
kind: workflow
id: outline
name: Outline
steps:
  plan:
    mode: architect
    prompt: Plan it.
    whisper:
      to_llm: ["HINT-A: keep the plan short"]
  build:
    type: shell
    needs: [plan]
    run: echo built
  ship:
    type: approval
    needs: [build]
    message: Ship it?
"#;

#[tokio::test]
async fn the_outline_and_the_hints_are_recorded_and_folded() {
    let dir = tempfile::tempdir().unwrap();
    let journal = support::journal::open(dir.path()).await;
    let modes = ModeRegistry::load(&[spec::mode::builtin_dir()]).unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let wf_path = ws.join("wf.yaml");
    std::fs::write(&wf_path, YAML).unwrap();
    let wf = spec::load_workflow(&wf_path, &modes).unwrap();
    let run = workflow::start_run(&journal, &wf, BTreeMap::new(), None)
        .await
        .unwrap();

    // Before anything runs, the journal already lists every step.
    let first = workflow::read_run(&journal, &run).await.unwrap();
    let Event::RunStarted { steps, .. } = &first[0].event else {
        panic!("first event: {:?}", first[0].event);
    };
    let outline = |id: &str, kind: &str, needs: &[&str], mode: Option<&str>| StepOutline {
        id: id.into(),
        kind: kind.into(),
        needs: needs.iter().map(|n| n.to_string()).collect(),
        mode: mode.map(str::to_string),
    };
    assert_eq!(
        steps,
        &[
            outline("plan", "agent", &[], Some("architect")),
            outline("build", "shell", &["plan"], None),
            outline("ship", "approval", &["build"], None),
        ]
    );
    let mut s = State::new();
    s.apply(&Notice::Event(first[0].clone()));
    let rows: Vec<(&str, StepStatus)> = s
        .run
        .steps
        .iter()
        .map(|r| (r.key.as_str(), r.status))
        .collect();
    assert_eq!(
        rows,
        [
            ("plan", StepStatus::Pending),
            ("build", StepStatus::Pending),
            ("ship", StepStatus::Pending)
        ]
    );

    // Run it: the agent's start records its hints, the step's first.
    let cassette = ws.join("c.yaml");
    std::fs::write(
        &cassette,
        "replies:\n  - step: plan\n    text: the plan\n    repeat: true\n",
    )
    .unwrap();
    let mut config = lev::config::Config::default();
    config.provider = lev::config::ProviderSettings::of_kind(lev::config::ProviderKind::Scripted);
    config.provider.cassette = Some(cassette);
    let deps = Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: llm::build_provider(&config).map_err(|e| e.to_string()),
        default_model: None,
        modes: modes.clone(),
        workspace: ws.canonicalize().unwrap(),
        options: RunOptions::default(),
        profiles: Default::default(),
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (ops_tx, ops_rx) = mpsc::unbounded_channel();
    let engine = tokio::spawn(workflow::drive(
        deps,
        run.clone(),
        workflow::Start::Fresh,
        ops_rx,
        vec![tx],
    ));
    // Fold live until the approval waits, then deny it to end the run.
    while let Some(n) = rx.recv().await {
        s.apply(&n);
        if let Notice::Event(r) = &n
            && let Event::ApprovalRequested { step, .. } = &r.event
        {
            ops_tx
                .send(lev::protocol::Op::Decide {
                    run: run.clone(),
                    step: step.clone(),
                    approved: false,
                    comment: String::new(),
                    source: lev::protocol::AnswerSource::User,
                })
                .unwrap();
        }
    }
    let outcome = engine.await.unwrap().unwrap();
    assert_ne!(outcome.status, RunStatus::Running, "{outcome:?}");

    let events = workflow::read_run(&journal, &run).await.unwrap();
    let hints = events
        .iter()
        .find_map(|r| match &r.event {
            Event::StepStarted { step, hints, .. } if step.as_str() == "plan" => {
                Some(hints.clone())
            }
            _ => None,
        })
        .unwrap();
    let architect = modes.get("architect").unwrap();
    assert!(!architect.hints.is_empty());
    let mut expected = vec!["HINT-A: keep the plan short".to_string()];
    expected.extend(architect.hints.iter().cloned());
    assert_eq!(hints, expected);
    // Shell and approval steps are told nothing.
    assert!(events.iter().all(|r| match &r.event {
        Event::StepStarted { step, hints, .. } => step.as_str() == "plan" || hints.is_empty(),
        _ => true,
    }));

    // The fold lists them once, and the sidebar shows them.
    let given: Vec<&str> = s.run.hints.iter().map(|h| h.text.as_str()).collect();
    assert_eq!(
        given,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let screen = view::buffer_text(&view::render(&s, &Theme::fallback(), 160, 40));
    assert!(screen.contains("── sent to agents ──"), "{screen}");
    assert!(
        screen.contains("» plan (hint): HINT-A: keep the plan short"),
        "{screen}"
    );
}
