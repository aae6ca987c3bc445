//! The engine handle as a participant sees it, with the real journal, real
//! shell steps and (for the control socket) a real Unix socket: ops in,
//! notices out, queries. A participant written later (a controller, an MCP
//! server) uses exactly this and nothing else.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lev::config::Config;
use lev::engine::{Done, Engine, Query, Reply, RunSettings, Submitted};
use lev::host::{self, CallError, Client};
use lev::protocol::{Event, Notice, Op, RunId, RunStatus, Seq, StepKey};
use lev::spec::{self, ModeRegistry};
use lev::workflow::{self, RunOptions, Start};
use tokio::sync::mpsc;

/// `flaky` fails until the file `fixed` exists in the workspace.
const FLAKY: &str = r#"
version: 1
kind: workflow
id: flaky
name: Flaky
steps:
  first:
    type: shell
    run: echo one
  flaky:
    type: shell
    needs: [first]
    run: |
      test -f fixed || { echo "not fixed yet" >&2; exit 4; }
      echo fixed
  after:
    type: shell
    needs: [flaky]
    run: echo "after ${{ steps.flaky.outputs.stdout }}"
outputs:
  result: ${{ steps.after.outputs.stdout }}
"#;

struct Setup {
    _dir: tempfile::TempDir,
    workspace: PathBuf,
    journal: support::journal::TestJournal,
    engine: Engine,
    run: RunId,
}

/// A journal with one fresh run of `FLAKY`, and an engine that can execute
/// recorded runs of it.
async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("ws");
    std::fs::create_dir_all(&workspace).unwrap();
    let file = dir.path().join("flaky.yaml");
    std::fs::write(&file, FLAKY).unwrap();
    let journal = support::journal::open(dir.path()).await;
    let modes = ModeRegistry::builtin().unwrap();
    let wf = spec::load_workflow(&file, &modes).unwrap();
    let inputs = workflow::resolve_inputs(&wf, &BTreeMap::new()).unwrap();
    let run = workflow::start_run(&journal, &wf, inputs, None)
        .await
        .unwrap();
    let settings = RunSettings {
        config: Config::default(),
        modes,
        workspace: Some(workspace.clone()),
        options: RunOptions::default(),
    };
    let engine = Engine::open(journal.clone(), Ok(settings));
    Setup {
        _dir: dir,
        workspace,
        journal,
        engine,
        run,
    }
}

/// Every notice of `run` until its `Ended`, which must come last.
async fn until_ended(notices: &mut mpsc::UnboundedReceiver<Notice>, run: &RunId) -> Vec<Notice> {
    let mut seen = Vec::new();
    loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(60), notices.recv())
            .await
            .expect("the run did not end")
            .expect("the engine closed the subscription");
        let end = matches!(&n, Notice::Ended(r) if r == run);
        seen.push(n);
        if end {
            return seen;
        }
    }
}

fn event_seqs(notices: &[Notice]) -> Vec<Seq> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::Event(r) => Some(r.seq),
            _ => None,
        })
        .collect()
}

async fn events(engine: &Engine, run: &RunId) -> Vec<lev::protocol::Recorded> {
    match engine
        .query(Query::Events { id: run.clone() })
        .await
        .unwrap()
    {
        Reply::Events(e) => e,
        other => panic!("{other:?}"),
    }
}

async fn fail_once(s: &Setup) {
    let mut notices = s.engine.subscribe();
    let driving = s
        .engine
        .start(fresh_deps(s).await, s.run.clone(), Start::Fresh)
        .await
        .unwrap();
    assert_eq!(driving.resumed_after, None);
    let seen = until_ended(&mut notices, &s.run).await;
    let outcome = driving.outcome().await.unwrap();
    assert_eq!(outcome.status, RunStatus::Failed);
    // Every fact once, in order, ending with `Ended`; the first is the run's start.
    let seqs = event_seqs(&seen);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(seqs.len(), events(&s.engine, &s.run).await.len());
    assert!(!s.engine.is_active(&s.run));
}

async fn fresh_deps(s: &Setup) -> std::sync::Arc<workflow::EngineDeps> {
    let settings = RunSettings {
        config: Config::default(),
        modes: ModeRegistry::builtin().unwrap(),
        workspace: Some(s.workspace.clone()),
        options: RunOptions::default(),
    };
    settings.deps(s.journal.clone(), None).unwrap().0
}

fn fix(workspace: &Path) {
    std::fs::write(workspace.join("fixed"), "").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_recorded_before_the_run_executes_again_and_each_fact_is_seen_once() {
    let s = setup().await;
    fail_once(&s).await;
    fix(&s.workspace);
    let mut notices = s.engine.subscribe();
    let op = Op::RetryStep {
        run: s.run.clone(),
        step: StepKey::new("flaky"),
    };
    let Submitted::Driving(d) = s.engine.submit(op).await.unwrap() else {
        panic!("a retry of an ended run executes it");
    };
    let request = d.request.clone().expect("the retry request fact");
    assert!(
        matches!(request.event, Event::StepRetryRequested { .. }),
        "{request:?}"
    );
    assert_eq!(d.resumed_after, Some(request.seq));
    let seen = until_ended(&mut notices, &s.run).await;
    assert_eq!(d.outcome().await.unwrap().status, RunStatus::Succeeded);
    // History up to the request plus the notices after it is the whole run, once.
    let seqs = event_seqs(&seen);
    assert!(seqs.iter().all(|q| *q > request.seq), "{seqs:?}");
    let all = events(&s.engine, &s.run).await;
    let before = all.iter().filter(|r| r.seq <= request.seq).count();
    assert_eq!(before + seqs.len(), all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_is_a_new_run_executed_by_the_handle() {
    let s = setup().await;
    fail_once(&s).await;
    fix(&s.workspace);
    let mut notices = s.engine.subscribe();
    let op = Op::Fork {
        run: s.run.clone(),
        from: StepKey::new("flaky"),
    };
    let Submitted::Driving(d) = s.engine.submit(op).await.unwrap() else {
        panic!("a fork executes");
    };
    assert_ne!(d.run, s.run);
    let fork = d.run.clone();
    until_ended(&mut notices, &fork).await;
    let outcome = d.outcome().await.unwrap();
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_eq!(outcome.outputs["result"], "after fixed");
    // The parent is untouched.
    let Reply::Run(Some(parent)) = s
        .engine
        .query(Query::Run { id: s.run.clone() })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(parent.status, RunStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_that_cannot_apply_are_refused_with_the_reason_and_record_nothing() {
    let s = setup().await;
    fail_once(&s).await;
    let before = events(&s.engine, &s.run).await.len();
    let refused = |op: Op| {
        let engine = s.engine.clone();
        async move { engine.submit(op).await.unwrap_err().to_string() }
    };
    let text = refused(Op::Message {
        run: s.run.clone(),
        step: StepKey::new("first"),
        text: "hi".into(),
    })
    .await;
    assert!(text.contains("not being executed"), "{text}");
    let text = refused(Op::Resume { run: s.run.clone() }).await;
    assert!(text.contains("already failed"), "{text}");
    let text = refused(Op::RetryStep {
        run: s.run.clone(),
        step: StepKey::new("first"),
    })
    .await;
    assert!(text.contains("first"), "{text}");
    let text = refused(Op::SettleWorktree {
        run: s.run.clone(),
        step: StepKey::new("first"),
        how: lev::protocol::Settle::Merge,
    })
    .await;
    assert!(text.contains("has no worktree"), "{text}");
    let text = refused(Op::Fork {
        run: RunId("nope".into()),
        from: StepKey::new("first"),
    })
    .await;
    assert!(text.contains("nope"), "{text}");
    assert_eq!(events(&s.engine, &s.run).await.len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_cannot_execute_runs_says_why_before_recording_a_retry() {
    let s = setup().await;
    fail_once(&s).await;
    let reader = Engine::open(s.journal.clone(), Err("no settings in this test".into()));
    let before = events(&reader, &s.run).await.len();
    let err = reader
        .submit(Op::RetryStep {
            run: s.run.clone(),
            step: StepKey::new("flaky"),
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no settings in this test"), "{err}");
    assert_eq!(events(&reader, &s.run).await.len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_carries_the_handles_queries_and_ops_but_never_starts_a_run() {
    let s = setup().await;
    fail_once(&s).await;
    let socket = s._dir.path().join("lev.sock");
    let _host = host::serve(&socket, s.engine.clone()).unwrap();
    let mut client = Client::connect(&socket).await.unwrap();
    let Reply::Runs(runs) = client.query(Query::Runs).await.unwrap() else {
        panic!()
    };
    assert_eq!(runs.len(), 1);
    let Reply::Events(remote) = client
        .query(Query::Events { id: s.run.clone() })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(remote, events(&s.engine, &s.run).await);
    // Executing a run belongs to the process that asks, once the journal is free.
    for op in [
        Op::Fork {
            run: s.run.clone(),
            from: StepKey::new("flaky"),
        },
        Op::Resume { run: s.run.clone() },
        Op::RetryStep {
            run: s.run.clone(),
            step: StepKey::new("flaky"),
        },
    ] {
        let err = client.submit(op.clone()).await.unwrap_err();
        assert!(
            matches!(&err, CallError::Answer(text) if text.contains("holds the journal")),
            "{op:?} was not refused: {err:?}"
        );
    }
    assert!(s.engine.active().is_empty());
    // A cancel of a run no one executes is done in the journal.
    let done = client
        .submit(Op::Cancel { run: s.run.clone() })
        .await
        .unwrap();
    assert!(matches!(done, Done::Cancelled { .. }), "{done:?}");
    // Forgetting a memory entry that is not there says so.
    let done = client
        .submit(Op::ForgetMemory {
            namespace: "project".into(),
            key: "nothing".into(),
        })
        .await
        .unwrap();
    assert_eq!(done, Done::Forgot { entry: None });
    // A line that is not a request gets an error, and the connection lives on.
    let raw = tokio::net::UnixStream::connect(&socket).await.unwrap();
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (read, mut write) = raw.into_split();
    write
        .write_all(b"{\"request\":\"launch\"}\n")
        .await
        .unwrap();
    let mut lines = BufReader::new(read).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    assert!(line.contains("bad request"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_resumes_of_one_run_start_it_once() {
    let s = setup().await;
    // Never started: the run is recorded as running and no one executes it.
    let op = || Op::Resume { run: s.run.clone() };
    let (a, b) = tokio::join!(s.engine.submit(op()), s.engine.submit(op()));
    let started: Vec<_> = [a, b]
        .into_iter()
        .filter_map(|r| match r {
            Ok(Submitted::Driving(d)) => Some(d),
            Ok(other) => panic!("{other:?}"),
            Err(e) => {
                assert!(e.to_string().contains("already executing"), "{e}");
                None
            }
        })
        .collect();
    assert_eq!(started.len(), 1);
    for d in started {
        // `flaky` fails (no `fixed` file): the run ends failed, once.
        assert_eq!(d.outcome().await.unwrap().status, RunStatus::Failed);
    }
    let starts = events(&s.engine, &s.run)
        .await
        .iter()
        .filter(|r| matches!(r.event, Event::RunResumed { .. }))
        .count();
    assert_eq!(starts, 1);
}

/// Deleting a run is an op of the handle: the run and its entries are gone
/// from the journal (a run the handle executes is refused: `Engine::delete`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_deleted_through_the_handle_unless_it_executes_there() {
    use lev::engine::{Query, Reply, Submitted};
    let s = setup().await;
    let mut notices = s.engine.subscribe();
    // `FLAKY` fails on its first run and waits for a fix: the run ends.
    fail_once_quietly(&s, &mut notices).await;
    let done = s
        .engine
        .submit(Op::DeleteRun { run: s.run.clone() })
        .await
        .unwrap();
    assert!(
        matches!(done, Submitted::Deleted(ref r) if *r == s.run),
        "{done:?}"
    );
    let gone = s
        .engine
        .query(Query::Run { id: s.run.clone() })
        .await
        .unwrap();
    assert!(matches!(gone, Reply::Run(None)), "{gone:?}");
    assert!(s.journal.runs().await.unwrap().is_empty());
    // A run that is not there is said to be missing.
    let err = s
        .engine
        .submit(Op::DeleteRun { run: s.run.clone() })
        .await
        .unwrap_err();
    assert!(err.to_string().contains(s.run.as_str()), "{err}");
}

async fn fail_once_quietly(s: &Setup, notices: &mut mpsc::UnboundedReceiver<Notice>) {
    let driving = s
        .engine
        .start(fresh_deps(s).await, s.run.clone(), Start::Fresh)
        .await
        .unwrap();
    let _ = until_ended(notices, &s.run).await;
    let _ = driving.outcome().await.unwrap();
}
