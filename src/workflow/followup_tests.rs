//! A callback chain's time box under tokio's paused clock: a follow-up
//! that would run for ten minutes is cancelled when its chain's five
//! minutes are up, with the guard journaled, and the run goes on.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::llm::scripted::{Cassette, ScriptedProvider};

const WORKFLOW: &str = r#"version: 1
kind: workflow
id: boxed
name: Boxed
followups: { propose: true, auto: true }
steps:
  chaos:
    mode: coder
    prompt: Go
  after:
    needs: [chaos]
    type: shell
    run: echo after
"#;

/// The first agent proposes a slow follow-up; the follow-up takes ten
/// minutes to answer.
const CASSETTE: &str = r#"
replies:
  - step: chaos
    turn: 1
    tool_calls:
      - { name: propose_followup, arguments: { title: slow, mode: coder, prompt: "Take your time" } }
  - step: chaos
    turn: 2
    text: proposed
  - step: chaos.1
    text: "finally done"
    delay_ms: 600000
"#;

// The paused clock jumps to the next timer whenever the runtime waits,
// journal writes on the blocking pool included: `coder` has no step
// timeout, so the first timer the follow-up meets is its chain's box.
#[tokio::test(start_paused = true)]
async fn a_follow_up_still_running_when_its_chain_time_box_ends_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let wf_path = dir.path().join("boxed.yaml");
    std::fs::write(&wf_path, WORKFLOW).unwrap();
    let modes = ModeRegistry::builtin().unwrap();
    let wf = crate::spec::load_workflow(&wf_path, &modes).unwrap();
    let journal = crate::journal::testing::open(dir.path()).await;
    let cassette = Cassette::parse(CASSETTE, "test cassette").unwrap();
    let provider: crate::llm::SharedProvider =
        Arc::new(ScriptedProvider::new(cassette, "test cassette"));
    let deps = Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: Ok(provider),
        default_model: None,
        profiles: Default::default(),
        modes,
        workspace: dir.path().to_path_buf(),
        options: RunOptions::default(),
    });
    let run = start_run(&journal, &wf, Default::default(), Some(dir.path()))
        .await
        .unwrap();
    let (_ops_tx, ops) = mpsc::unbounded_channel();
    let started = tokio::time::Instant::now();
    let outcome = drive(deps, run.clone(), Start::Fresh, ops, Vec::new())
        .await
        .unwrap();
    // The box (5 minutes) ended it. (While the guard is journaled the
    // paused clock may jump on to the reply's timer; the step is cancelled
    // all the same, which the events below show.)
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(300), "{took:?}");
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    let events: Vec<Event> = read_run(&journal, &run)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    let guard = events.iter().find_map(|e| match e {
        Event::GuardTripped {
            guard, limit, step, ..
        } if guard == "chain_timebox" => Some((limit.clone(), step.clone())),
        _ => None,
    });
    assert_eq!(
        guard,
        Some((
            "5m".to_string(),
            Some(crate::protocol::StepKey::new("chaos.1"))
        ))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::StepCancelled { step, .. } if step.as_str() == "chaos.1"))
    );
    // `after` waited for the chain, then ran.
    let last_step = events.iter().rev().find_map(|e| match e {
        Event::StepSucceeded { step, .. } => Some(step.as_str().to_string()),
        _ => None,
    });
    assert_eq!(last_step.as_deref(), Some("after"));
}
