//! A step whose task panics (a bug in lev) fails, journaled with the
//! panic's message, and gives its slot back: with one slot (the graph keeps
//! two step tasks going), the step after two such steps still runs and the
//! run ends instead of waiting forever.

use std::sync::Arc;
use std::time::Duration;

use super::*;

const WORKFLOW: &str = r#"version: 1
kind: workflow
id: panics
name: Panics
limits: { max_parallel: 1 }
steps:
  step-that-panics-in-test:
    type: shell
    run: echo never
  another-that-panics-in-test:
    type: shell
    run: echo never
  after:
    needs: [step-that-panics-in-test]
    type: shell
    run: echo skipped
  other:
    type: shell
    run: echo runs
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_step_fails_and_gives_its_slot_back() {
    let dir = tempfile::tempdir().unwrap();
    let wf_path = dir.path().join("panics.yaml");
    std::fs::write(&wf_path, WORKFLOW).unwrap();
    let modes = ModeRegistry::builtin().unwrap();
    let wf = crate::spec::load_workflow(&wf_path, &modes).unwrap();
    let journal = crate::journal::testing::open(dir.path()).await;
    let deps = Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: Err("no provider in this test".into()),
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
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        drive(deps, run.clone(), Start::Fresh, ops, Vec::new()),
    )
    .await
    .expect("the run ended")
    .unwrap();
    assert_eq!(outcome.status, RunStatus::Failed);
    let events: Vec<Event> = read_run(&journal, &run)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    let failed = events.iter().find_map(|e| match e {
        Event::StepFailed { step, error, .. } if step.as_str() == "step-that-panics-in-test" => {
            Some(error.clone())
        }
        _ => None,
    });
    let failed = failed.expect("the panicking step's failure is journaled");
    assert!(failed.contains("this step panics in a test"), "{failed}");
    let succeeded = |id: &str| {
        events
            .iter()
            .any(|e| matches!(e, Event::StepSucceeded { step, .. } if step.as_str() == id))
    };
    assert!(succeeded("other"), "the slot was not given back");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::StepSkipped { step, .. } if step.as_str() == "after"))
    );
}
