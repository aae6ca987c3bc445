//! The swarm end to end: 10,000 tasks over 64 agent slots, driven by the
//! real engine with a zero-latency scripted provider, every decision and
//! step journaled (durable commits) — what a swarm costs per task beyond
//! the model's own time. Ratio to a raw redb durable commit of 256 bytes
//! measured in the same run.
//!
//! `cargo bench --bench swarm_run`. Temp dirs live under `LEV_BENCH_DIR`
//! (default: the system temp dir, which must be a real disk).
#![allow(clippy::print_stdout)]

#[path = "common/cpu.rs"]
mod cpu;
use cpu::cpu_time;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lev::journal::Journal;
use lev::llm::scripted::{Cassette, ScriptedProvider};
use lev::protocol::{AnswerSource, Event, Notice, Op, RunStatus};
use lev::spec::ModeRegistry;
use lev::workflow::{self, EngineDeps, RunOptions, Start, SwarmSpec};
use redb::{Database, TableDefinition};
use serde_json::json;
use tokio::sync::mpsc;

const TASKS: usize = 10_000;
const SLOTS: u32 = 64;
const RAW_SAMPLES: usize = 400;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("LEV_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn raw_commit_p50(dir: &std::path::Path) -> Duration {
    const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("raw");
    let db = Database::create(dir.join("raw.redb")).unwrap();
    let value = vec![b'x'; 256];
    let mut samples: Vec<Duration> = (0..RAW_SAMPLES as u64)
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
    samples.sort();
    samples[samples.len() / 2]
}

/// The orchestrator's plan (10,000 independent tasks), then "done" for
/// every task, instantly.
fn cassette() -> Cassette {
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            json!({"id": format!("t{i}"), "title": format!("task {i}"), "mode": "coder",
                   "needs": [], "acceptance": ["done"], "files": []})
        })
        .collect();
    let plan = json!({"summary": "many tasks", "tasks": tasks}).to_string();
    let yaml = format!(
        "replies:\n  - step: plan\n    text: {}\n  - text: done\n    repeat: true\n",
        serde_json::Value::String(plan)
    );
    Cassette::parse(&yaml, "bench").unwrap()
}

#[tokio::main]
async fn main() {
    let dir = bench_dir();
    let raw = raw_commit_p50(dir.path());
    let journal = Journal::open(&dir.path().join("lev.redb")).unwrap();
    let modes = ModeRegistry::builtin().unwrap();
    let mut spec = SwarmSpec::new("run ten thousand tasks", SLOTS);
    spec.max_tasks = TASKS as u32;
    spec.plan_attempts = 1;
    let wf = workflow::swarm_workflow(&spec, &modes, None, None).unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let deps = Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: Ok(Arc::new(ScriptedProvider::new(cassette(), "bench"))),
        default_model: Some("scripted".into()),
        profiles: Default::default(),
        modes,
        workspace: ws.clone(),
        options: RunOptions::default(),
    });
    let run = workflow::start_swarm(&journal, &wf, &spec, Some(&ws))
        .await
        .unwrap();

    // A participant that accepts the plan and notes when it was accepted.
    let (ops_tx, ops_rx) = mpsc::unbounded_channel();
    let (notice_tx, mut notices) = mpsc::unbounded_channel();
    let watcher = tokio::spawn(async move {
        let mut accepted_at = None;
        while let Some(n) = notices.recv().await {
            let Notice::Event(r) = n else { continue };
            match &r.event {
                Event::QuestionAsked { id, .. } => {
                    let _ = ops_tx.send(Op::Answer {
                        run: r.run.clone(),
                        question: id.clone(),
                        answer: "accept".into(),
                        source: AnswerSource::User,
                    });
                }
                Event::PlanAccepted { .. } => accepted_at = Some((Instant::now(), cpu_time())),
                _ => {}
            }
        }
        accepted_at
    });
    let outcome = workflow::drive(deps, run.clone(), Start::Fresh, ops_rx, vec![notice_tx])
        .await
        .unwrap();
    let (ended, cpu_ended) = (Instant::now(), cpu_time());
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    let (accepted, cpu_accepted) = watcher.await.unwrap().expect("plan accepted");
    let cpu_per_task = cpu_ended.saturating_sub(cpu_accepted) / TASKS as u32;
    let per_task = ended.duration_since(accepted) / TASKS as u32;
    let events = workflow::read_run(&journal, &run).await.unwrap();
    let entries = events.len();
    let commits = journal.commit_count();

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("| measurement | result | ratio / goal |");
    println!("| --- | --- | --- |");
    println!(
        "| raw redb durable commit, 1×256 B (p50 of {RAW_SAMPLES}) | {:.0} µs | 1× |",
        us(raw)
    );
    println!(
        "| swarm: {TASKS} tasks over {SLOTS} slots, zero-latency scripted provider, journaled ({entries} entries, {commits} commits) | {:.1} s from plan accepted to run end | — |",
        ended.duration_since(accepted).as_secs_f64()
    );
    println!(
        "| lev overhead per task (assign, step intent, LLM reply, result, scheduling) | {:.0} µs | {:.2}× raw commit (goal ≤ 200 µs: {}) |",
        us(per_task),
        us(per_task) / us(raw),
        if us(per_task) <= 200.0 {
            "met"
        } else {
            "not met"
        }
    );
    println!(
        "| of which CPU (all threads, user + system) per task | {:.0} µs | the rest is waiting for {commits} durable commits |",
        us(cpu_per_task)
    );
}
