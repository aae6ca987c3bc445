//! What a durable step costs in commits (each one an fsync), counted by the
//! journal itself: a single-turn agent step is one commit — its start is
//! appended without an fsync (an idempotent step may run again if a crash
//! loses it), and its final reply lands with its success (nothing acts on
//! the reply before the step's end). An agent that calls a tool journals
//! that reply before the tool runs. A shell step is two: its command's
//! process group (with its start) before the command runs, and its end.

use std::collections::BTreeMap;
use std::sync::Arc;

use lev::config::{Config, ProviderKind, ProviderSettings};
use lev::journal::Journal;
use lev::protocol::{Event, RunStatus};
use lev::spec::{self, ModeRegistry};
use lev::workflow::{self, EngineDeps, RunOptions, Start};
use tokio::sync::mpsc;

const STEPS: usize = 20;

async fn run_chain(cassette: &str) -> (u64, Vec<Event>) {
    run_steps(cassette, "type: agent\n    mode: ask\n    prompt: \"step\"").await
}

/// A chain of `STEPS` steps of the kind `body` describes.
async fn run_steps(cassette: &str, body: &str) -> (u64, Vec<Event>) {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("version: 1\nkind: workflow\nid: c\nname: C\nsteps:\n");
    for i in 0..STEPS {
        yaml.push_str(&format!("  s{i}:\n    {body}\n"));
        if i > 0 {
            yaml.push_str(&format!("    needs: [s{}]\n", i - 1));
        }
    }
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, yaml).unwrap();
    let cassette_path = dir.path().join("c.cassette.yaml");
    std::fs::write(&cassette_path, cassette).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let modes = ModeRegistry::builtin().unwrap();
    let wf = spec::load_workflow(&path, &modes).unwrap();
    let journal = Journal::open(&dir.path().join("lev.redb")).unwrap();
    let run = workflow::start_run(&journal, &wf, BTreeMap::new(), None)
        .await
        .unwrap();
    let config = Config {
        provider: ProviderSettings {
            cassette: Some(cassette_path),
            ..ProviderSettings::of_kind(ProviderKind::Scripted)
        },
        ..Config::default()
    };
    let deps = Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: lev::llm::build_provider(&config).map_err(|e| e.to_string()),
        default_model: None,
        profiles: Default::default(),
        modes,
        workspace: dir.path().canonicalize().unwrap(),
        options: RunOptions::default(),
    });
    let before = journal.commit_count();
    let (_ops, ops_rx) = mpsc::unbounded_channel();
    let outcome = workflow::drive(deps, run.clone(), Start::Fresh, ops_rx, Vec::new())
        .await
        .unwrap();
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    let commits = journal.commit_count() - before;
    let events = workflow::read_run(&journal, &run)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    (commits, events)
}

#[tokio::test]
async fn a_single_turn_agent_step_costs_one_commit() {
    let (commits, events) = run_chain("replies:\n  - text: done\n    repeat: true\n").await;
    // Per step: its (unsynced) start, reply and success. Per run: the end.
    assert!(
        commits <= STEPS as u64 + 1,
        "{commits} commits for {STEPS} steps"
    );
    // Every reply is on record, before its step's success, in its place.
    let replies = events
        .iter()
        .filter(|e| matches!(e, Event::LlmReplied { .. }))
        .count();
    assert_eq!(replies, STEPS);
    for pair in events.windows(2) {
        if let Event::StepSucceeded { step, .. } = &pair[1] {
            assert!(
                matches!(&pair[0], Event::LlmReplied { step: s, .. } if s == step),
                "{step}'s success does not follow its reply: {:?}",
                pair[0]
            );
        }
    }
}

#[tokio::test]
async fn a_shell_step_costs_its_process_group_and_its_end() {
    let (commits, events) = run_steps("replies: []\n", "type: shell\n    run: \"true\"").await;
    // Per step: the process group, journaled before the command may run,
    // with the (unsynced) start; how the command ended, with the step's
    // success. Per run: the end.
    assert!(
        commits <= 2 * STEPS as u64 + 1,
        "{commits} commits for {STEPS} steps"
    );
    // The process group follows its step's start, so the commit that lets
    // the command run holds the start too.
    for pair in events.windows(2) {
        if let Event::ProcessStarted { step, .. } = &pair[1] {
            assert!(
                matches!(&pair[0], Event::StepStarted { step: s, .. } if s == step),
                "{step}'s process group does not follow its start: {:?}",
                pair[0]
            );
        }
    }
    for pair in events.windows(2) {
        if let Event::StepSucceeded { step, .. } = &pair[1] {
            assert!(
                matches!(&pair[0], Event::ShellFinished { step: s, .. } if s == step),
                "{step}'s success does not follow how its command ended: {:?}",
                pair[0]
            );
        }
    }
}

#[tokio::test]
async fn a_reply_that_calls_a_tool_is_on_record_before_the_tool_runs() {
    let cassette = "replies:\n  - turn: 1\n    text: reading\n    tool_calls:\n      - { name: read_file, arguments: { path: notes.txt } }\n    repeat: true\n  - turn: 2\n    text: done\n    repeat: true\n";
    let (_, events) = run_chain(cassette).await;
    let mut pending_call = false;
    for e in &events {
        match e {
            Event::LlmReplied { tool_calls, .. } => pending_call = !tool_calls.is_empty(),
            Event::ToolFinished { .. } | Event::ToolStarted { .. } => {
                assert!(pending_call, "a tool ran without its reply on record first")
            }
            _ => {}
        }
    }
}
