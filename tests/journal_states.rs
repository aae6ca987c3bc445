//! No command that reads a journal panics on any journal state. The events
//! of a real recorded run (the demo: agents, tools, a question, an approval,
//! a shell step) and of the workbench's sample runs are cut at every point
//! and perturbed the way kills, clock changes and damaged or hostile data
//! perturb them (attempts out of order, zero and backward durations, huge
//! numbers); `show` (text and JSON), `replay`, the Markdown export and the
//! workbench (fold, then draw every screen into a `TestBackend`) must all
//! produce output for each.

mod support;

use std::sync::OnceLock;

use lev::headless::{self, markdown, show};
use lev::journal::RunMeta;
use lev::protocol::{Millis, Notice, Recorded, RunStatus};
use lev::tui::state::sample::sample_events;
use lev::tui::state::sample_swarm::swarm_events;
use lev::tui::state::{Input, Screen, State};
use lev::tui::theme::Theme;
use lev::tui::view;
use proptest::prelude::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::Value;
use support::lev::{Lev, run_id_from};

/// The demo's events as `lev replay --json` prints them (once per process).
fn demo_events() -> &'static [Recorded] {
    static EVENTS: OnceLock<Vec<Recorded>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let lev = Lev::new();
        let out = lev.run(&["demo", "--headless"]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{stdout}");
        let run = run_id_from(&stdout).unwrap();
        let out = lev.run(&["replay", &run, "--json"]);
        assert!(out.status.success());
        let events: Vec<Recorded> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            events.len() > 20,
            "the demo recorded {} events",
            events.len()
        );
        events
    })
}

fn source(i: usize) -> Vec<Recorded> {
    match i {
        0 => demo_events().to_vec(),
        1 => sample_events(),
        _ => swarm_events(),
    }
}

/// Numbers a hostile or damaged journal may hold.
const ODD: [u64; 6] = [0, 1, 7, u32::MAX as u64, i64::MAX as u64, u64::MAX];

/// Replaces the `n`th number inside `v` by `with`; returns whether it found one.
fn replace_number(v: &mut Value, n: &mut usize, with: u64) -> bool {
    match v {
        Value::Number(_) => {
            if *n == 0 {
                *v = Value::from(with);
                return true;
            }
            *n -= 1;
            false
        }
        Value::Array(items) => items.iter_mut().any(|i| replace_number(i, n, with)),
        Value::Object(map) => map.values_mut().any(|i| replace_number(i, n, with)),
        _ => false,
    }
}

/// What happens to the events before they are read.
#[derive(Debug, Clone)]
enum Damage {
    /// Some number in event `at` (a time, attempt, turn, token count, …)
    /// becomes an odd value; kept only if the event still decodes.
    Number { at: usize, nth: usize, odd: usize },
    /// Two events change places (attempts and times out of order).
    Swap(usize, usize),
    /// Every time after `from` moves back by `by` ms (a clock change).
    ClockBack { from: usize, by: u64 },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 0usize..12, 0..ODD.len()).prop_map(|(at, nth, odd)| Damage::Number {
            at,
            nth,
            odd
        }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Damage::Swap(a, b)),
        (
            any::<usize>(),
            prop_oneof![Just(1u64), Just(60_000), Just(u64::MAX)]
        )
            .prop_map(|(from, by)| Damage::ClockBack { from, by }),
    ]
}

fn apply(events: &mut [Recorded], d: &Damage) {
    if events.is_empty() {
        return;
    }
    let n = events.len();
    match *d {
        Damage::Number { at, nth, odd } => {
            let r = &mut events[at % n];
            let mut v = serde_json::to_value(&*r).unwrap();
            let mut k = nth;
            if replace_number(&mut v, &mut k, ODD[odd])
                && let Ok(changed) = serde_json::from_value::<Recorded>(v)
            {
                *r = changed;
            }
        }
        Damage::Swap(a, b) => events.swap(a % n, b % n),
        Damage::ClockBack { from, by } => {
            for r in &mut events[from % n..] {
                let mut v = serde_json::to_value(&*r).unwrap();
                if let Some(at) = v["event"].get("at").and_then(Value::as_u64) {
                    v["event"]["at"] = Value::from(at.saturating_sub(by));
                }
                if let Ok(changed) = serde_json::from_value::<Recorded>(v) {
                    *r = changed;
                }
            }
        }
    }
}

/// The run's metadata as the journal keeps it for these events.
fn meta_of(events: &[Recorded]) -> RunMeta {
    let run = source(1)[0].run.clone();
    let at = |r: &Recorded| r.event.at().0;
    RunMeta {
        id: events.first().map(|r| r.run.clone()).unwrap_or(run),
        workflow_id: "wf".into(),
        name: "a run".into(),
        source: "wf.yaml".into(),
        definition_blob: String::new(),
        status: RunStatus::Running,
        created_ms: events.first().map(at).unwrap_or(0),
        updated_ms: events.iter().map(at).max().unwrap_or(0),
        last_seq: events.len() as u64,
        parent: None,
        step_run: false,
    }
}

/// Every reader of a journal, on these events.
fn read_everything(events: &[Recorded]) {
    let meta = meta_of(events);
    let summary = show::summarize(&meta, events);
    for status in ["running", "interrupted", "succeeded"] {
        let text = summary.text(status);
        assert!(text.starts_with("run "));
        summary.json(status).unwrap();
    }
    let _ = markdown::transcript(events);
    for json in [false, true] {
        let mut out = Vec::new();
        headless::replay(events, json, &mut out);
        assert!(String::from_utf8_lossy(&out).lines().count() >= events.len());
    }

    let mut state = State::new();
    for r in events {
        state.apply(&Notice::Event(r.clone()));
    }
    state.run_open = true;
    let last = events.last().map(|r| r.event.at()).unwrap_or(Millis(0));
    state.handle(Input::Tick(last));
    state.handle(Input::Tick(Millis(last.0.saturating_add(1_000))));
    let mut replay = State::new();
    replay.load_replay(events.to_vec());
    replay.replay_jump(events.len() / 2);
    replay.replay_jump(events.len());
    let theme = Theme::fallback();
    for s in [&mut state, &mut replay] {
        for screen in [Screen::Panes, Screen::Overview, Screen::Timeline] {
            s.screen = screen;
            for (w, h) in [(120, 40), (80, 24), (20, 6)] {
                let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
                term.draw(|f| view::draw(s, &theme, f.area(), f.buffer_mut()))
                    .unwrap();
            }
        }
    }
}

#[test]
fn every_prefix_of_a_recorded_run_reads_without_a_panic() {
    for i in 0..3 {
        let events = source(i);
        for cut in 0..=events.len() {
            read_everything(&events[..cut]);
        }
    }
}

/// Found by the property below (CI, 2026-12-05): a time of `u64::MAX` in a
/// sample run's event overflowed the overview's sum of step times and the
/// grace period of a prompt.
#[test]
fn a_time_at_the_end_of_the_clock_reads_without_a_panic() {
    let all = source(1);
    let mut events = all[..5273132702904106426 % (all.len() + 1)].to_vec();
    for d in [
        Damage::Swap(1737730238338398491, 4628384758948300112),
        Damage::Number {
            at: 10460063853319775019 % usize::MAX,
            nth: 0,
            odd: 5,
        },
    ] {
        apply(&mut events, &d);
    }
    read_everything(&events);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn damaged_prefixes_read_without_a_panic(
        src in 0usize..3,
        cut in any::<usize>(),
        damages in prop::collection::vec(damage(), 0..6),
    ) {
        let all = source(src);
        let mut events = all[..cut % (all.len() + 1)].to_vec();
        for d in &damages {
            apply(&mut events, d);
        }
        read_everything(&events);
    }
}

/// `lev show` while the newest event of a run is a step start: on the live
/// run (through the host's socket) and after the run was SIGKILLed.
#[test]
fn show_a_run_whose_newest_event_is_a_step_start() {
    use std::time::{Duration, Instant};
    let lev = Lev::new();
    let path = lev.dir.path().join("wf.yaml");
    std::fs::write(
        &path,
        "version: 1\nkind: workflow\nid: waits\nname: waits\nsteps:\n  wait:\n    type: shell\n    run: while [ ! -f stop ]; do sleep 0.05; done\n",
    )
    .unwrap();
    let ws = lev.workspace().display().to_string();
    let mut child = lev.spawn(&[
        "run",
        path.to_str().unwrap(),
        "--headless",
        "--workspace",
        &ws,
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        let out = lev.run(&["runs", "--json"]);
        let first = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_string);
        if let Some(v) = first.and_then(|l| serde_json::from_str::<Value>(&l).ok()) {
            let run = v["id"].as_str().unwrap().to_string();
            let events = lev.events(&run);
            // The step's start, then its command's (`process_started`):
            // the step runs and nothing after its start is journaled.
            if events
                .last()
                .is_some_and(|e| e["type"] == "step_started" || e["type"] == "process_started")
            {
                break run;
            }
        }
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    let show = |when: &str| {
        let out = lev.run(&["show", &run]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{when}: {stdout}\n{stderr}");
        assert!(
            stdout.contains("wait") && stdout.contains("running"),
            "{when}: {stdout}"
        );
        assert!(stdout.contains('█'), "{when}: no timeline bar in {stdout}");
    };
    show("live");
    child.kill().unwrap();
    child.wait().unwrap();
    show("after kill -9");
    // Let the orphaned shell step end (item 2 of the issue is about those).
    std::fs::write(lev.workspace().join("stop"), "").unwrap();
}
