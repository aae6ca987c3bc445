//! Engine benchmarks: what resuming and replaying a long run costs through
//! the whole engine (pinned definition reload, event decoding, history fold,
//! scheduling, the final durable commits), as ratios to a raw redb durable
//! commit of 256 bytes measured in the same run.
//!
//! `cargo bench --bench engine`. Temp dirs live under `LEV_BENCH_DIR`
//! (default: the system temp dir, which must be a real disk).
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lev::journal::Journal;
use lev::protocol::{Attempt, Event, Millis, RunStatus, StepKey, Usage};
use lev::spec::{self, ModeRegistry};
use lev::workflow::{self, EngineDeps, RunOptions, Start};
use redb::{Database, TableDefinition};
use serde_json::Value;
use tokio::sync::mpsc;

#[path = "common/cpu.rs"]
mod cpu;

const STEPS: usize = 10_000;
const RESUMES: usize = 5;
const RAW_SAMPLES: usize = 400;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("LEV_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A line of `/proc/self/status` in MB (`VmRSS`, `VmHWM`).
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets the peak resident size (`VmHWM`) to the current one (Linux).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The yardstick: one 256-byte value per durable redb commit.
fn raw_commit_p50(dir: &std::path::Path) -> Duration {
    const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("raw");
    let db = Database::create(dir.join("raw.redb")).unwrap();
    let value = vec![b'x'; 256];
    let samples = (0..RAW_SAMPLES as u64)
        .map(|i| {
            let t = Instant::now();
            let txn = db.begin_write().unwrap();
            txn.open_table(TABLE)
                .unwrap()
                .insert(i, value.as_slice())
                .unwrap();
            txn.commit().unwrap();
            t.elapsed()
        })
        .collect();
    median(samples)
}

/// A chain of `STEPS` shell steps, each needing the one before.
fn chain_yaml() -> String {
    let mut s = String::from("version: 1\nkind: workflow\nid: chain\nname: Chain\nsteps:\n");
    for i in 0..STEPS {
        s.push_str(&format!("  s{i}:\n    type: shell\n    run: \"true\"\n"));
        if i > 0 {
            s.push_str(&format!("    needs: [s{}]\n", i - 1));
        }
    }
    s.push_str(&format!(
        "outputs:\n  last: ${{{{ steps.s{}.outputs.stdout }}}}\n",
        STEPS - 1
    ));
    s
}

/// The sizes of the live workflows: per-step cost at the larger over the
/// smaller is 1× when scheduling is linear in the workflow's size.
const LIVE_SMALL: usize = 1_000;
/// `LEV_BENCH_LIVE_STEPS` (default 10,000; 100,000 for the record in
/// docs/benchmarks.md, a few minutes).
fn live_large() -> usize {
    std::env::var("LEV_BENCH_LIVE_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}
/// Slots of the fan-out (`limits.max_parallel`).
const FAN_SLOTS: usize = 64;

/// A workflow of `n` agent steps answered by the scripted provider in one
/// turn each: the engine's own cost per live step (intent, LLM turn,
/// result, scheduling), no subprocess. With `chain`, each step needs the
/// one before; else all are independent and run `FAN_SLOTS` at a time.
///
/// Loaded from a two-step file and then grown to `n` steps in memory: a
/// file of 100,000 steps is over the loader's limits (4 MiB, 200,000 YAML
/// nodes, the guard against hostile files), and the scheduler, which this
/// measures, sees the same model either way. Every size is built the same
/// way, so the sizes differ in nothing else.
fn agent_workflow(
    dir: &std::path::Path,
    modes: &ModeRegistry,
    n: usize,
    chain: bool,
) -> spec::Workflow {
    let yaml = format!(
        "version: 1\nkind: workflow\nid: live\nname: Live\nlimits:\n  max_parallel: {FAN_SLOTS}\nsteps:\n  s0:\n    type: agent\n    mode: ask\n    prompt: \"step\"\n"
    );
    let path = dir.join("live.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut wf = spec::load_workflow(&path, modes).unwrap();
    let first = wf.steps[0].clone();
    wf.steps = (0..n)
        .map(|i| {
            let mut step = first.clone();
            step.id = format!("s{i}");
            if chain && i > 0 {
                step.needs = vec![format!("s{}", i - 1)];
            }
            step
        })
        .collect();
    wf
}

/// What a live run cost: wall time per step, and the journal's bytes per
/// event once compacted (its pinned definition left out).
struct Live {
    per_step: Duration,
    /// The process's CPU time per step (all threads: the engine's and the
    /// journal writer's).
    cpu_per_step: Duration,
    /// Durable commits (fsyncs) per step.
    commits_per_step: f64,
    bytes_per_event: f64,
}

/// Runs a fresh workflow of `n` agent steps live.
async fn live(dir: &std::path::Path, modes: &ModeRegistry, n: usize, chain: bool) -> Live {
    let name = format!("live{n}{}", if chain { "chain" } else { "fan" });
    // A fresh file each time, so its size is this run's.
    let _ = std::fs::remove_file(dir.join(format!("{name}.redb")));
    let journal = Journal::open(&dir.join(format!("{name}.redb"))).unwrap();
    let cassette = dir.join("live.cassette.yaml");
    std::fs::write(&cassette, "replies:\n  - text: done\n    repeat: true\n").unwrap();
    let wf = agent_workflow(dir, modes, n, chain);
    let config = lev::config::Config {
        provider: lev::config::ProviderSettings {
            cassette: Some(cassette),
            ..lev::config::ProviderSettings::of_kind(lev::config::ProviderKind::Scripted)
        },
        ..lev::config::Config::default()
    };
    let deps = Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: lev::llm::build_provider(&config).map_err(|e| e.to_string()),
        default_model: None,
        profiles: Default::default(),
        modes: modes.clone(),
        workspace: dir.to_path_buf(),
        options: RunOptions::default(),
    });
    let run = workflow::start_run(&journal, &wf, BTreeMap::new(), None)
        .await
        .unwrap();
    let (_ops_tx, ops_rx) = mpsc::unbounded_channel();
    let commits_before = journal.commit_count();
    let (t, cpu_before) = (Instant::now(), cpu::cpu_time());
    let outcome = workflow::drive(deps, run.clone(), Start::Fresh, ops_rx, Vec::new())
        .await
        .unwrap();
    let took = t.elapsed();
    let cpu = cpu::cpu_time().saturating_sub(cpu_before);
    let commits = journal.commit_count() - commits_before;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    let meta = journal.run(&run).await.unwrap().unwrap();
    let definition = journal
        .blob(&meta.definition_blob)
        .await
        .unwrap()
        .map_or(0, |b| b.len());
    journal.compact().await.unwrap();
    let file = std::fs::metadata(dir.join(format!("{name}.redb")))
        .unwrap()
        .len();
    Live {
        per_step: took / n as u32,
        cpu_per_step: cpu / n as u32,
        commits_per_step: commits as f64 / n as f64,
        bytes_per_event: file.saturating_sub(definition as u64) as f64 / meta.last_seq as f64,
    }
}

/// A run whose journal says every step finished (intent + result each), but
/// the run itself did not: what `lev resume` finds after a late crash.
async fn recorded_run(journal: &Journal, wf: &spec::Workflow) -> lev::protocol::RunId {
    let run = workflow::start_run(journal, wf, BTreeMap::new(), None)
        .await
        .unwrap();
    let outputs: BTreeMap<String, Value> = [
        ("stdout".to_string(), Value::String("ok".into())),
        ("stderr".to_string(), Value::String(String::new())),
        ("exit_code".to_string(), Value::from(0)),
    ]
    .into();
    let mut entries = Vec::with_capacity(STEPS * 2);
    for i in 0..STEPS {
        let step = StepKey::new(format!("s{i}"));
        let at = Millis(1_764_000_000_000 + i as u64);
        let started = Event::StepStarted {
            step: step.clone(),
            attempt: Attempt(1),
            fingerprint: "0".repeat(64),
            kind: "shell".into(),
            mode: None,
            idempotent: false,
            hints: Vec::new(),
            at,
        };
        let done = Event::StepSucceeded {
            step,
            attempt: Attempt(1),
            outputs: outputs.clone(),
            usage: Usage::default(),
            at,
        };
        entries.push(workflow::recorder::to_entry(&started).unwrap());
        entries.push(workflow::recorder::to_entry(&done).unwrap());
    }
    for chunk in entries.chunks(2_000) {
        journal.append(&run, chunk.to_vec(), None).await.unwrap();
    }
    run
}

#[tokio::main]
async fn main() {
    let dir = bench_dir();
    let raw = raw_commit_p50(dir.path());
    let journal = Journal::open(&dir.path().join("lev.redb")).unwrap();
    let modes = ModeRegistry::load(&[spec::mode::builtin_dir()]).unwrap();
    let path = dir.path().join("chain.yaml");
    std::fs::write(&path, chain_yaml()).unwrap();
    let t = Instant::now();
    let wf = spec::load_workflow(&path, &modes).unwrap();
    let load = t.elapsed();

    let mut runs = Vec::new();
    for _ in 0..RESUMES {
        runs.push(recorded_run(&journal, &wf).await);
    }
    let deps = Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: Err("not needed".into()),
        default_model: None,
        profiles: Default::default(),
        modes,
        workspace: dir.path().to_path_buf(),
        options: RunOptions::default(),
    });

    // Replay: decode a run's 20,001 entries into events.
    let mut replays = Vec::new();
    for run in &runs {
        let t = Instant::now();
        let events = workflow::read_run(&journal, run).await.unwrap();
        replays.push(t.elapsed());
        assert_eq!(events.len(), STEPS * 2 + 1);
    }
    let replay = median(replays);
    let entries = (STEPS * 2 + 1) as f64;

    // Resume: from `lev resume` to the run's recorded end.
    let mut resumes = Vec::new();
    let rss_before = status_mb("VmRSS");
    reset_peak();
    for run in &runs {
        let (_ops_tx, ops_rx) = mpsc::unbounded_channel();
        let t = Instant::now();
        let outcome = workflow::drive(deps.clone(), run.clone(), Start::Resume, ops_rx, Vec::new())
            .await
            .unwrap();
        resumes.push(t.elapsed());
        assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
        assert_eq!(outcome.outputs["last"], "ok");
    }
    let resume = median(resumes);
    let rss_peak = status_mb("VmHWM");

    // Live workflows, small then large, twice each (the better of two: the
    // machine is shared).
    let live_large = live_large();
    let best = |chain: bool| {
        let (dir, modes) = (dir.path().to_path_buf(), deps.modes.clone());
        async move {
            let mut small = Vec::new();
            let mut large = Vec::new();
            let (mut bytes, mut commits) = (0.0, 0.0);
            for _ in 0..2 {
                let run = live(&dir, &modes, LIVE_SMALL, chain).await;
                small.push((run.per_step, run.cpu_per_step));
                let run = live(&dir, &modes, live_large, chain).await;
                large.push((run.per_step, run.cpu_per_step));
                bytes = run.bytes_per_event;
                commits = run.commits_per_step;
            }
            (
                small.into_iter().min().unwrap_or_default(),
                large.into_iter().min().unwrap_or_default(),
                bytes,
                commits,
            )
        }
    };
    let (small, large, chain_bytes, chain_commits) = best(true).await;
    let (fan_small, fan_large, _, fan_commits) = best(false).await;

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| measurement | result | ratio to a raw commit |");
    println!("| --- | --- | --- |");
    println!(
        "| raw redb durable commit, 1×256 B (p50 of {RAW_SAMPLES}) | {:.3} ms | 1× |",
        ms(raw)
    );
    println!(
        "| load and validate a {STEPS}-step workflow | {:.1} ms | {:.0}× |",
        ms(load),
        ms(load) / ms(raw)
    );
    println!(
        "| engine replay: read + decode {} events (median of {RESUMES}) | {:.1} ms ({:.0} events/s) | {:.0}× |",
        entries as u64,
        ms(replay),
        entries / replay.as_secs_f64(),
        ms(replay) / ms(raw)
    );
    println!(
        "| engine resume of a {STEPS}-step run to its recorded end (median of {RESUMES}) | {:.1} ms | {:.0}× (goal ≤ 100 ms) |",
        ms(resume),
        ms(resume) / ms(raw)
    );
    let pair = |what: &str,
                (small, small_cpu): (Duration, Duration),
                (large, large_cpu): (Duration, Duration)| {
        println!(
            "| live {what} of {LIVE_SMALL} agent steps (scripted provider), per step | {:.3} ms, CPU {:.3} ms | {:.1}× |",
            ms(small),
            ms(small_cpu),
            ms(small) / ms(raw)
        );
        println!(
            "| live {what} of {live_large} agent steps, per step | {:.3} ms, CPU {:.3} ms | {:.1}× ({:.2}× the {LIVE_SMALL}-step {what}'s time, {:.2}× its CPU; 1× is linear) |",
            ms(large),
            ms(large_cpu),
            ms(large) / ms(raw),
            ms(large) / ms(small),
            ms(large_cpu) / ms(small_cpu)
        );
    };
    println!(
        "| peak resident memory while resuming 10000-step runs | {rss_peak:.0} MB ({:.0} MB before) | — |",
        rss_before
    );
    pair("chain", small, large);
    pair(
        &format!("fan-out ({FAN_SLOTS} slots)"),
        fan_small,
        fan_large,
    );
    println!(
        "| durable commits (fsyncs) per step, {live_large}-step chain / fan-out | {chain_commits:.3} / {fan_commits:.3} | goal ≤ 1.5 |"
    );
    println!(
        "| journal of the {live_large}-step chain, compacted, without its pinned definition, per event | {chain_bytes:.0} B | — |"
    );
}
