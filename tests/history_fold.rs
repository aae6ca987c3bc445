//! The engine's history is a fold of its journal, and the journal is what
//! the live run did. For random real runs (parallel and chained shell and
//! agent steps, failures, retries, tool calls; a real journal, real shell
//! processes, a scripted provider), property tests check that:
//!
//! - the journal holds exactly the events the live engine published, in
//!   order, so `History::from_events(journal)` equals the fold of what the
//!   live run told its participants;
//! - that history agrees with the live engine's own state at the end (the
//!   run's outcome and its usage counter, both in `RunFinished`) and with
//!   what the plan says each step must have done (attempts, outcome);
//! - folding any prefix and then the rest equals folding everything.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use lev::llm::SharedProvider;
use lev::llm::scripted::ScriptedProvider;
use lev::protocol::{Attempt, Event, Notice, Recorded, RunStatus, StepKey};
use lev::spec::{self, ModeRegistry};
use lev::workflow::history::{History, Settled};
use lev::workflow::{self, EngineDeps, RunOptions, Start, read_run};
use proptest::prelude::*;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
enum Kind {
    Shell,
    /// An agent step; `tool`: its first turn reads a file.
    Agent {
        tool: bool,
    },
}

#[derive(Debug, Clone)]
struct StepPlan {
    kind: Kind,
    /// Attempts that fail before one succeeds.
    fails: u32,
    max_attempts: u32,
    /// Needs the step before it (else it runs in parallel with it).
    after_prev: bool,
}

fn step_plan() -> impl Strategy<Value = StepPlan> {
    let kind = prop_oneof![
        Just(Kind::Shell),
        any::<bool>().prop_map(|tool| Kind::Agent { tool }),
    ];
    (kind, 0u32..=2, 1u32..=3, any::<bool>()).prop_map(|(kind, fails, max_attempts, after_prev)| {
        StepPlan {
            kind,
            fails,
            max_attempts,
            after_prev,
        }
    })
}

fn id(i: usize) -> String {
    format!("s{i}")
}

fn workflow_yaml(plan: &[StepPlan]) -> String {
    let mut y = String::from("version: 1\nkind: workflow\nid: prop\nname: Prop\nsteps:\n");
    for (i, s) in plan.iter().enumerate() {
        let me = id(i);
        writeln!(y, "  {me}:").unwrap();
        match s.kind {
            // A counter file makes the first `fails` runs exit 1.
            Kind::Shell => write!(
                y,
                "    type: shell\n    idempotent: true\n    run: |\n      \
                 n=$(cat .count_{me} 2>/dev/null || echo 0); n=$((n+1)); echo $n > .count_{me}\n      \
                 echo \"{me} try $n\"\n      [ \"$n\" -gt {} ]\n",
                s.fails
            )
            .unwrap(),
            Kind::Agent { .. } => {
                write!(y, "    mode: ask\n    prompt: Question {me}.\n").unwrap()
            }
        }
        writeln!(
            y,
            "    retry: {{ max_attempts: {}, backoff: fixed, initial_delay: 1ms }}",
            s.max_attempts
        )
        .unwrap();
        if s.after_prev && i > 0 {
            writeln!(y, "    needs: [{}]", id(i - 1)).unwrap();
        }
    }
    y
}

/// Each agent step fails its first `fails` calls, then (with `tool`) reads
/// a file in turn 1 and answers in the next turn.
fn cassette_yaml(plan: &[StepPlan]) -> String {
    let mut y = String::from("replies:\n");
    for (i, s) in plan.iter().enumerate() {
        let Kind::Agent { tool } = s.kind else {
            continue;
        };
        let me = id(i);
        for n in 0..s.fails {
            writeln!(
                y,
                "  - step: {me}\n    error: {{ kind: server_error, message: \"{me} down {n}\" }}"
            )
            .unwrap();
        }
        let answer_turn = if tool {
            writeln!(
                y,
                "  - step: {me}\n    turn: 1\n    text: Reading.\n    \
                 tool_calls: [{{ name: read_file, arguments: {{ path: note.txt }} }}]\n    \
                 usage: {{ input_tokens: 7, output_tokens: 3 }}\n    repeat: true"
            )
            .unwrap();
            2
        } else {
            1
        };
        writeln!(
            y,
            "  - step: {me}\n    turn: {answer_turn}\n    text: Answer of {me}.\n    \
             usage: {{ input_tokens: 11, output_tokens: 5 }}\n    repeat: true"
        )
        .unwrap();
    }
    if y == "replies:\n" {
        y = "replies: []\n".into();
    }
    y
}

/// What the plan says a step ends with: its last attempt and whether it succeeded.
fn expected(plan: &[StepPlan]) -> Vec<(u32, Option<bool>)> {
    let mut out: Vec<(u32, Option<bool>)> = Vec::new();
    for (i, s) in plan.iter().enumerate() {
        let blocked = s.after_prev && i > 0 && out[i - 1].1 != Some(true);
        out.push(if blocked {
            (0, None)
        } else {
            (
                (s.fails + 1).min(s.max_attempts),
                Some(s.fails < s.max_attempts),
            )
        });
    }
    out
}

struct Live {
    /// Every event the engine published, in the order it did.
    published: Vec<Recorded>,
    journal: Vec<Recorded>,
    status: RunStatus,
}

async fn run_plan(plan: &[StepPlan]) -> Live {
    let dir = tempfile::tempdir().unwrap();
    let journal = support::journal::open(dir.path()).await;
    let modes = ModeRegistry::load(&[spec::mode::builtin_dir()]).unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let ws = ws.canonicalize().unwrap();
    std::fs::write(ws.join("note.txt"), "a note for the agent\n").unwrap();
    let path = ws.join("wf.yaml");
    std::fs::write(&path, workflow_yaml(plan)).unwrap();
    let wf = spec::load_workflow(&path, &modes).unwrap();
    let cassette = ws.join("cassette.yaml");
    std::fs::write(&cassette, cassette_yaml(plan)).unwrap();
    // The bare scripted provider: no provider retries, so each scripted
    // failure fails a step attempt.
    let provider: SharedProvider = Arc::new(ScriptedProvider::from_file(&cassette).unwrap());
    let deps = Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: Ok(provider),
        default_model: None,
        profiles: Default::default(),
        modes,
        workspace: ws.clone(),
        options: RunOptions::default(),
    });
    let run = workflow::start_run(&journal, &wf, BTreeMap::new(), Some(&ws))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (_ops_tx, ops_rx) = mpsc::unbounded_channel();
    let outcome = workflow::drive(deps, run.clone(), Start::Fresh, ops_rx, vec![tx])
        .await
        .unwrap();
    let mut published = Vec::new();
    while let Ok(n) = rx.try_recv() {
        if let Notice::Event(r) = n {
            published.push(r);
        }
    }
    let journal = read_run(&journal, &run).await.unwrap();
    Live {
        published,
        journal,
        status: outcome.status,
    }
}

fn check(plan: &[StepPlan], live: &Live) -> Result<(), TestCaseError> {
    // The journal is what the live run published: nothing lost, added or reordered.
    prop_assert_eq!(&live.journal, &live.published);
    let folded = History::from_events(&live.journal);
    prop_assert_eq!(&folded, &History::from_events(&live.published));

    // The live engine's own state at the end agrees with the fold.
    let Some(Event::RunFinished {
        status,
        usage,
        error,
        ..
    }) = live.journal.last().map(|r| &r.event)
    else {
        return Err(TestCaseError::fail("the run did not end with run_finished"));
    };
    prop_assert_eq!(*status, live.status);
    prop_assert_eq!(*usage, folded.usage);
    prop_assert!(folded.finished);
    prop_assert_eq!(folded.last_seq, live.journal.len() as u64);

    // And both say what the plan says each step did.
    let want = expected(plan);
    for (i, (attempts, succeeded)) in want.iter().enumerate() {
        let key = StepKey::new(id(i));
        let outcome = folded.final_outcome(&key);
        match succeeded {
            None => prop_assert_eq!(outcome, Some(&Settled::Skipped), "{}", key),
            Some(true) => prop_assert!(
                matches!(outcome, Some(Settled::Succeeded { .. })),
                "{key}: {outcome:?}"
            ),
            Some(false) => prop_assert!(
                matches!(outcome, Some(Settled::Failed { .. })),
                "{key}: {outcome:?}"
            ),
        }
        if *attempts > 0 {
            prop_assert_eq!(folded.steps[&key].attempt, Attempt(*attempts), "{}", key);
        }
        if let (Kind::Agent { tool: true }, Some(true)) = (&plan[i].kind, succeeded) {
            let a = Attempt(*attempts);
            prop_assert!(folded.replies.contains_key(&(key.clone(), a, 2)), "{}", key);
            prop_assert_eq!(
                folded
                    .tools
                    .keys()
                    .filter(|place| place.step == key && place.attempt == a)
                    .count(),
                1
            );
        }
    }
    let all_ok = want.iter().all(|(_, ok)| *ok == Some(true));
    prop_assert_eq!(live.status == RunStatus::Succeeded, all_ok, "{:?}", error);

    // Folding is a homomorphism: any prefix, then the rest, is the whole.
    for cut in 0..=live.journal.len() {
        let (head, tail) = live.journal.split_at(cut);
        let mut h = History::from_events(head);
        for r in tail {
            h.apply(r);
        }
        prop_assert_eq!(&h, &folded, "cut at {}", cut);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_journal_folds_into_the_state_of_the_live_run_that_wrote_it(
        plan in prop::collection::vec(step_plan(), 1..=4)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let live = rt.block_on(run_plan(&plan));
        check(&plan, &live)?;
    }
}
