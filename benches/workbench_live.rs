//! The real workbench on a live run: sixteen agents stream their replies
//! from the scripted provider (word by word, `WORDS_PER_SEC` each) through
//! the real engine handle into the real app loop (`tui::app::run_on`),
//! drawn through crossterm's backend into a byte sink, so every frame pays
//! for building and encoding the terminal update. Measured: frames drawn per
//! second and the process's CPU share while the run streams. The baseline,
//! measured in the same run on the same workload, is the headless printer
//! following the run (`headless::follow`, lines to a sink).
//!
//! `cargo bench --bench workbench_live`; `LEV_BENCH_SECS` sets how long the
//! agents stream (default 6).
#![allow(clippy::print_stdout)]

#[path = "common/cpu.rs"]
mod cpu;
#[path = "common/sink.rs"]
mod sink;
use cpu::cpu_time;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lev::config::{Config, ProviderKind, ProviderSettings};
use lev::engine::Engine;
use lev::headless::{self, HeadlessOptions};
use lev::journal::Journal;
use lev::protocol::Notice;
use lev::spec::{self, ModeRegistry};
use lev::tui::app::{self, Launch, Screen};
use lev::workflow::{self, EngineDeps, RunOptions, Start};

const AGENTS: usize = 16;
const WORDS_PER_SEC: u64 = 200;
const WIDTH: u16 = 200;
const HEIGHT: u16 = 50;

/// Sixteen agents with no needs, each answered by one long streamed reply.
fn setup(dir: &std::path::Path, secs: u64) -> (std::path::PathBuf, Config) {
    let mut wf = String::from(
        "version: 1\nkind: workflow\nid: swarm\nname: Swarm\nlimits:\n  max_parallel: 16\nsteps:\n",
    );
    let mut cassette = String::from("replies:\n");
    let words: Vec<String> = (0..WORDS_PER_SEC * secs)
        .map(|i| format!("word{i}"))
        .collect();
    for a in 0..AGENTS {
        wf.push_str(&format!(
            "  a{a}:\n    type: agent\n    mode: ask\n    prompt: \"agent {a}\"\n"
        ));
        cassette.push_str(&format!(
            "  - step: a{a}\n    text: \"{}\"\n    delay_ms: {}\n",
            words.join(" "),
            secs * 1000
        ));
    }
    let path = dir.join("swarm.yaml");
    std::fs::write(&path, wf).unwrap();
    let cassette_path = dir.join("swarm.cassette.yaml");
    std::fs::write(&cassette_path, cassette).unwrap();
    let config = Config {
        provider: ProviderSettings {
            cassette: Some(cassette_path),
            ..ProviderSettings::of_kind(ProviderKind::Scripted)
        },
        ..Config::default()
    };
    (path, config)
}

/// A fresh run of the workflow in its own journal, and what driving it needs.
async fn fresh(
    dir: &std::path::Path,
    name: &str,
    path: &std::path::Path,
    config: &Config,
) -> (Engine, Arc<EngineDeps>, lev::protocol::RunId) {
    let journal = Journal::open(&dir.join(format!("{name}.redb"))).unwrap();
    let modes = ModeRegistry::builtin().unwrap();
    let wf = spec::load_workflow(path, &modes).unwrap();
    let run = workflow::start_run(&journal, &wf, BTreeMap::new(), None)
        .await
        .unwrap();
    let deps = Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: lev::llm::build_provider(config).map_err(|e| e.to_string()),
        default_model: None,
        profiles: Default::default(),
        modes,
        workspace: dir.to_path_buf(),
        options: RunOptions::default(),
    });
    let engine = Engine::open(journal, Err("not needed".into()));
    (engine, deps, run)
}

struct Measured {
    cpu: Duration,
    wall: Duration,
    frames: u64,
}

impl Measured {
    fn share(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64()
    }
}

async fn headless_run(dir: &std::path::Path, path: &std::path::Path, config: &Config) -> Measured {
    let (engine, deps, run) = fresh(dir, "headless", path, config).await;
    let notices = engine.subscribe();
    let (cpu, t) = (cpu_time(), Instant::now());
    let driving = engine.start(deps, run, Start::Fresh).await.unwrap();
    let mut sink = std::io::sink();
    let outcome = headless::follow(
        &engine,
        notices,
        driving,
        headless::Printer::default(),
        HeadlessOptions::default(),
        &mut sink,
    )
    .await
    .unwrap();
    assert_eq!(outcome.status, lev::protocol::RunStatus::Succeeded);
    Measured {
        cpu: cpu_time() - cpu,
        wall: t.elapsed(),
        frames: 0,
    }
}

async fn workbench_run(dir: &std::path::Path, path: &std::path::Path, config: &Config) -> Measured {
    let (engine, deps, run) = fresh(dir, "workbench", path, config).await;
    let (mut terminal, frames) = sink::sink_terminal(WIDTH, HEIGHT);
    let mut escapes = std::io::sink();
    let app = sink::bench_app(&engine);
    // The input ends once the run has: the loop then returns.
    let mut ended = engine.subscribe();
    let (keys, input) = futures::channel::mpsc::unbounded::<lev::tui::state::Input>();
    let (cpu, t) = (cpu_time(), Instant::now());
    let driving = engine.start(deps, run.clone(), Start::Fresh).await.unwrap();
    let stop = async move {
        while let Some(n) = ended.recv().await {
            if matches!(n, Notice::Ended(r) if r == run) {
                break;
            }
        }
        drop(keys);
    };
    let mut screen = Screen {
        terminal: &mut terminal,
        escapes: &mut escapes,
        synchronized: false,
    };
    let (left, ()) = tokio::join!(
        app::run_on(&mut screen, input, app, Launch::Driving(Box::new(driving))),
        stop
    );
    assert!(left.is_some(), "the run was not on screen at the end");
    Measured {
        cpu: cpu_time() - cpu,
        wall: t.elapsed(),
        frames: frames.load(Ordering::Relaxed),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::var("LEV_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let dir = tempfile::tempdir().unwrap();
    let (path, config) = setup(dir.path(), secs);
    let headless = headless_run(dir.path(), &path, &config).await;
    let workbench = workbench_run(dir.path(), &path, &config).await;
    let fps = workbench.frames as f64 / workbench.wall.as_secs_f64();
    println!("| measurement | result | ratio |");
    println!("| --- | --- | --- |");
    println!(
        "| headless printer following {AGENTS} agents × {WORDS_PER_SEC} words/s for {secs} s (baseline) | {:.1} % of a core over {:.1} s | 1× |",
        headless.share() * 100.0,
        headless.wall.as_secs_f64()
    );
    println!(
        "| workbench (real app loop, crossterm backend into a sink) on the same run | {:.1} % of a core over {:.1} s, {:.0} frames/s | {:.2}× the headless CPU share |",
        workbench.share() * 100.0,
        workbench.wall.as_secs_f64(),
        fps,
        workbench.share() / headless.share()
    );
}
