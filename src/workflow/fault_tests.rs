//! The engine on a journal whose disk fails: at a seeded point every write
//! and sync fails (EIO or ENOSPC), then power is cut and the journal
//! reopened from what was synced. The run must resume from there to the
//! same outputs, and no step whose success was recorded may run again.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::journal::faults::{Fault, FaultyDisk};

const WORKFLOW: &str = r#"version: 1
kind: workflow
id: faults
name: Faults
steps:
  one:
    type: shell
    idempotent: true
    run: echo one >> ledger.txt; echo out-one
  two:
    needs: [one]
    type: shell
    idempotent: true
    run: echo two >> ledger.txt; echo "out-two ${{ steps.one.outputs.stdout }}"
  three:
    needs: [two]
    type: shell
    idempotent: true
    run: echo three >> ledger.txt; echo "out-three ${{ steps.two.outputs.stdout }}"
outputs:
  last: "${{ steps.three.outputs.stdout }}"
"#;

fn deps(journal: Journal, workspace: &std::path::Path) -> Arc<EngineDeps> {
    Arc::new(EngineDeps {
        journal,
        provider: Err("no provider in this test".into()),
        default_model: None,
        profiles: Default::default(),
        modes: ModeRegistry::default(),
        workspace: workspace.to_path_buf(),
        options: RunOptions::default(),
    })
}

fn open(disk: &FaultyDisk) -> Journal {
    let d = disk.clone();
    Journal::open_backend("/faulty/lev.redb", move || d.backend(), None).unwrap()
}

async fn drive_once(deps: Arc<EngineDeps>, run: &RunId, start: Start) -> Option<RunOutcome> {
    let (_ops_tx, ops) = mpsc::unbounded_channel();
    let driven = tokio::time::timeout(
        Duration::from_secs(60),
        drive(deps, run.clone(), start, ops, Vec::new()),
    )
    .await
    .expect("the engine hung on a failing disk");
    driven.ok()
}

/// Steps whose success the journal holds, in order.
async fn succeeded(journal: &Journal, run: &RunId) -> Vec<String> {
    try_succeeded(journal, run).await.unwrap()
}

async fn try_succeeded(journal: &Journal, run: &RunId) -> Result<Vec<String>, JournalError> {
    Ok(read_run(journal, run)
        .await?
        .into_iter()
        .filter_map(|r| match r.event {
            Event::StepSucceeded { step, .. } => Some(step.0),
            _ => None,
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_resumes_after_disk_faults_and_a_power_cut() {
    let dir = tempfile::tempdir().unwrap();
    let wf_path = dir.path().join("faults.yaml");
    std::fs::write(&wf_path, WORKFLOW).unwrap();
    let wf = crate::spec::load_workflow(&wf_path, &ModeRegistry::default()).unwrap();
    let mut resumed_mid_run = 0;
    for (round, after) in [0u64, 3, 8, 15, 25, 40, 60, 90, 140]
        .into_iter()
        .enumerate()
    {
        let ws = dir.path().join(format!("ws{round}"));
        std::fs::create_dir_all(&ws).unwrap();
        let fault = if round % 2 == 0 {
            Fault::Io
        } else {
            Fault::NoSpace
        };
        let disk = FaultyDisk::new();
        let journal = open(&disk);
        let run = start_run(&journal, &wf, Default::default(), Some(&ws))
            .await
            .unwrap();
        disk.fail_after(after, fault);
        let _ = drive_once(deps(journal.clone(), &ws), &run, Start::Fresh).await;
        // What is readable before the crash was acknowledged (a disk that
        // keeps failing may not let the journal be read at all).
        let acknowledged = try_succeeded(&journal, &run).await;

        let image = disk.crash_image();
        drop(journal);
        let journal = open(&FaultyDisk::from_image(image));
        let kept = succeeded(&journal, &run).await;
        if let Ok(acknowledged) = &acknowledged {
            assert_eq!(
                &kept, acknowledged,
                "round {round}: acknowledged success lost"
            );
        }
        if kept.len() < 3 {
            resumed_mid_run += 1;
        }
        let ledger = || std::fs::read_to_string(ws.join("ledger.txt")).unwrap_or_default();
        let ran_before = ledger().lines().count();
        // A command ran only if its step's start reached the disk (the
        // start is unsynced; the command waits for its process group's
        // durable commit, which carries the start).
        let started: Vec<String> = read_run(&journal, &run)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|r| match r.event {
                Event::StepStarted { step, .. } => Some(step.0),
                _ => None,
            })
            .collect();
        for step in ledger().lines() {
            assert!(
                started.iter().any(|s| s == step),
                "round {round}: {step} ran although its start was lost: {started:?}"
            );
        }
        let outcome = drive_once(deps(journal.clone(), &ws), &run, Start::Resume)
            .await
            .unwrap_or_else(|| panic!("round {round}: resume failed"));
        assert_eq!(
            outcome.status,
            RunStatus::Succeeded,
            "round {round}: {outcome:?}"
        );
        assert_eq!(
            outcome.outputs.get("last").and_then(|v| v.as_str()),
            Some("out-three out-two out-one"),
            "round {round}"
        );
        assert_eq!(
            succeeded(&journal, &run).await,
            ["one", "two", "three"],
            "round {round}: a step succeeded twice or not at all"
        );
        // A step whose success survived the crash did not run again.
        let all = ledger();
        let again: Vec<&str> = all.lines().skip(ran_before).collect();
        for step in &kept {
            assert!(
                !again.contains(&step.as_str()),
                "round {round}: {step} ran again after resume: {again:?}"
            );
        }
        let check = journal.check_run(&run).await;
        assert!(
            check.problems.is_empty(),
            "round {round}: {:?}",
            check.problems
        );
    }
    assert!(
        resumed_mid_run >= 3,
        "the faults hit too late to test resume"
    );
}

/// A disk without room for the journal's space reserve: the run pauses
/// before its first step (nothing starts that might not be recorded), and
/// once there is room a resume runs it to the end with no decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_without_room_for_the_reserve_pauses_before_any_step() {
    let dir = tempfile::tempdir().unwrap();
    let wf_path = dir.path().join("faults.yaml");
    std::fs::write(&wf_path, WORKFLOW).unwrap();
    let wf = crate::spec::load_workflow(&wf_path, &ModeRegistry::default()).unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let disk = FaultyDisk::new();
    let d = disk.clone();
    let journal = Journal::open_backend(
        "/faulty/lev.redb",
        move || d.backend(),
        Some(crate::journal::db::Reserve::NoRoom),
    )
    .unwrap();
    let run = start_run(&journal, &wf, Default::default(), Some(&ws))
        .await
        .unwrap();
    let outcome = drive_once(deps(journal.clone(), &ws), &run, Start::Fresh)
        .await
        .expect("the run did not end");
    assert_eq!(outcome.status, RunStatus::Paused, "{outcome:?}");
    let events = read_run(&journal, &run).await.unwrap();
    assert!(
        !events
            .iter()
            .any(|r| matches!(r.event, Event::StepStarted { .. })),
        "a step started on a full disk"
    );
    assert!(
        events.iter().any(|r| matches!(
            &r.event,
            Event::RunPaused { reason: crate::protocol::PauseReason::DiskFull { error }, .. } if error.contains("space reserve")
        )),
        "the pause does not say why"
    );
    assert!(!ws.join("ledger.txt").exists());
    drop(journal);
    // Room again (this journal has no reserve to make).
    let journal = open(&disk);
    let outcome = drive_once(deps(journal.clone(), &ws), &run, Start::Resume)
        .await
        .expect("the resume failed");
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
}

/// A chain of `steps` agent steps (each needing the one before) and the
/// engine's needs on `journal`, answered by the scripted provider.
fn agent_chain(
    dir: &std::path::Path,
    journal: &Journal,
    steps: usize,
    reply_ms: u64,
) -> (crate::spec::Workflow, Arc<EngineDeps>) {
    use crate::llm::scripted::{Cassette, ScriptedProvider};
    let mut yaml = String::from("version: 1\nkind: workflow\nid: chain\nname: Chain\nsteps:\n");
    for i in 0..steps {
        yaml.push_str(&format!(
            "  s{i}:\n    type: agent\n    mode: ask\n    prompt: \"step {i}\"\n"
        ));
        if i > 0 {
            yaml.push_str(&format!("    needs: [s{}]\n", i - 1));
        }
    }
    let path = dir.join("chain.yaml");
    std::fs::write(&path, yaml).unwrap();
    let modes = ModeRegistry::builtin().unwrap();
    let wf = crate::spec::load_workflow(&path, &modes).unwrap();
    let replies = format!("replies:\n  - text: done\n    repeat: true\n    delay_ms: {reply_ms}\n");
    let cassette = Cassette::parse(&replies, "test").unwrap();
    let provider: crate::llm::SharedProvider = Arc::new(ScriptedProvider::new(cassette, "test"));
    let deps = Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: Ok(provider),
        default_model: None,
        profiles: Default::default(),
        modes,
        workspace: dir.to_path_buf(),
        options: RunOptions::default(),
    });
    (wf, deps)
}

/// On a slow disk a chain of agent steps does not wait one sync per step:
/// each step's success is recorded ahead, the next step starts while it
/// syncs, and one sync carries several steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_on_a_slow_disk_shares_its_syncs() {
    const STEPS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let journal = open(&disk);
    let (wf, deps) = agent_chain(dir.path(), &journal, STEPS, 0);
    let run = start_run(&journal, &wf, Default::default(), Some(dir.path()))
        .await
        .unwrap();
    // A sync takes far longer than a step on the scripted provider.
    disk.slow_sync(Duration::from_millis(50));
    let before = journal.commit_count();
    let outcome = drive_once(deps, &run, Start::Fresh).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    let commits = journal.commit_count() - before;
    assert!(
        commits <= STEPS as u64 / 2,
        "{commits} syncs for a chain of {STEPS} steps: each step waited for the one before it to be synced"
    );
    let done = succeeded(&journal, &run).await;
    let expected: Vec<String> = (0..STEPS).map(|i| format!("s{i}")).collect();
    assert_eq!(done, expected);
}

/// A power cut while a chain runs ahead of its syncs leaves a prefix of
/// what the run went on to write — never a fact without the ones before
/// it — and that prefix resumes to the same end, each step succeeding once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_while_a_chain_runs_ahead_leaves_a_prefix_that_resumes() {
    const STEPS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let journal = open(&disk);
    // Steps of 5 ms and syncs of 10 ms: a commit carries a few steps, and
    // the cut falls with some synced and some still ahead of the disk.
    let (wf, deps) = agent_chain(dir.path(), &journal, STEPS, 5);
    let run = start_run(&journal, &wf, Default::default(), Some(dir.path()))
        .await
        .unwrap();
    disk.slow_sync(Duration::from_millis(10));
    let live = tokio::spawn({
        let (deps, run) = (deps.clone(), run.clone());
        async move { drive_once(deps, &run, Start::Fresh).await }
    });
    // Mid-run: some steps synced, later ones still ahead of the disk.
    tokio::time::sleep(Duration::from_millis(120)).await;
    let image = disk.crash_image();
    let outcome = live.await.unwrap().unwrap();
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    let written = read_run(&journal, &run).await.unwrap();

    let cut = open(&FaultyDisk::from_image(image));
    let kept = read_run(&cut, &run).await.unwrap();
    assert!(!kept.is_empty());
    let key = |r: &crate::protocol::Recorded| serde_json::to_string(r).unwrap();
    let prefix: Vec<String> = written.iter().take(kept.len()).map(key).collect();
    assert_eq!(kept.iter().map(key).collect::<Vec<_>>(), prefix);

    let (_, deps) = agent_chain(dir.path(), &cut, STEPS, 0);
    let outcome = drive_once(deps, &run, Start::Resume).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    let done = succeeded(&cut, &run).await;
    let expected: Vec<String> = (0..STEPS).map(|i| format!("s{i}")).collect();
    assert_eq!(done, expected, "a step succeeded twice, or one is missing");
}
