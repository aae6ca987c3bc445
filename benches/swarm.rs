//! Swarm scheduler benchmarks: what the pure scheduling core costs per task
//! for 10,000 tasks over 64 slots (enqueue + next + finished), as a ratio
//! to a raw redb durable commit of 256 bytes measured in the same run — the
//! commit the driver pays anyway to journal each decision.
//!
//! `cargo bench --bench swarm`. Temp dirs live under `LEV_BENCH_DIR`
//! (default: the system temp dir, which must be a real disk).
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use lev::protocol::Millis;
use lev::swarm::scheduler::{Scheduler, SlotId};
use lev::swarm::simulate::{SimConfig, SimTask, simulate};
use redb::{Database, TableDefinition};

const TASKS: usize = 10_000;
const SLOTS: usize = 64;
const MODES: [&str; 8] = [
    "code",
    "review",
    "test",
    "docs",
    "architect",
    "debug",
    "security-review",
    "refactor",
];
const ROUNDS: usize = 21;
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

/// All tasks ready at once: enqueue them, then rounds of "every idle slot
/// asks for work, every running task ends", with every 7th end a failure
/// that opens its slot's breaker for 5 ticks, so queues move (about 150
/// tasks each time) and probes run. Returns the steals seen.
fn burst(names: &[String]) -> usize {
    let mut s = Scheduler::new(SLOTS, 1, 5);
    for (i, name) in names.iter().enumerate() {
        s.enqueue(name, MODES[i % MODES.len()]);
    }
    let (mut now, mut ended, mut steals) = (0u64, 0usize, 0usize);
    let mut running = Vec::with_capacity(SLOTS);
    while s.queued_len() > 0 {
        for slot in 0..SLOTS {
            if let Some(a) = s.next(SlotId(slot), Millis(now)) {
                steals += usize::from(a.stolen_from.is_some());
                running.push(a);
            }
        }
        now += 1;
        for a in running.drain(..) {
            ended += 1;
            let ok = ended % 7 != 0;
            black_box(s.finished(a.slot, &a.task, ok, Millis(now)).unwrap());
        }
        if let Some(wake) = s.next_wake(Millis(now)) {
            now = now.max(wake.0);
        }
    }
    assert_eq!(ended, names.len());
    steals
}

/// Tasks ready one at a time, as a chain-heavy DAG releases them: each end
/// enqueues the next task, so queues stay short and most `next` calls find
/// work on the asking slot or steal it.
fn trickle(names: &[String]) -> usize {
    let mut s = Scheduler::new(SLOTS, 3, 5);
    let mut fed = 0;
    for name in names.iter().take(SLOTS * 2) {
        s.enqueue(name, MODES[fed % MODES.len()]);
        fed += 1;
    }
    let (mut now, mut ended, mut steals) = (0u64, 0usize, 0usize);
    let mut running = Vec::with_capacity(SLOTS);
    while ended < names.len() {
        for slot in 0..SLOTS {
            if let Some(a) = s.next(SlotId(slot), Millis(now)) {
                steals += usize::from(a.stolen_from.is_some());
                running.push(a);
            }
        }
        now += 1;
        // Uneven progress: only every other running task ends this tick.
        let mut keep = Vec::with_capacity(SLOTS);
        for (k, a) in running.drain(..).enumerate() {
            if k % 2 == 1 {
                keep.push(a);
                continue;
            }
            ended += 1;
            black_box(s.finished(a.slot, &a.task, true, Millis(now)).unwrap());
            if let Some(name) = names.get(fed) {
                s.enqueue(name, MODES[fed % MODES.len()]);
                fed += 1;
            }
        }
        running = keep;
    }
    steals
}

fn time<T>(f: impl Fn() -> T) -> (Duration, T) {
    let mut samples = Vec::with_capacity(ROUNDS);
    let mut last = None;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let out = black_box(f());
        samples.push(t.elapsed());
        last = Some(out);
    }
    (median(samples), last.unwrap())
}

fn main() {
    let dir = bench_dir();
    let raw = raw_commit_p50(dir.path());
    let names: Vec<String> = (0..TASKS).map(|i| format!("task-{i}")).collect();

    let (burst_t, burst_steals) = time(|| burst(&names));
    let (trickle_t, trickle_steals) = time(|| trickle(&names));
    // One 10× task in every 100, all ready at once, through the simulator
    // (its event heap and bookkeeping are included).
    let tasks: Vec<SimTask> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            SimTask::new(
                n.clone(),
                MODES[i % MODES.len()],
                if i % 100 == 0 { 100 } else { 10 },
            )
        })
        .collect();
    let (sim_t, sim) = time(|| simulate(&tasks, &SimConfig::new(SLOTS), |_, _, _| false).unwrap());
    let sim_steals = sim
        .runs
        .iter()
        .filter(|r| r.assignment.stolen_from.is_some())
        .count();

    let per_task = |d: Duration| d.as_secs_f64() * 1e6 / TASKS as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let raw_us = raw.as_secs_f64() * 1e6;
    println!("| measurement | total (median of {ROUNDS}) | per task | ratio to a raw commit |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| raw redb durable commit, 1×256 B (p50 of {RAW_SAMPLES}) | — | {raw_us:.1} µs | 1× |"
    );
    for (what, d, steals) in [
        (
            "burst: 10,000 ready at once, every 7th end fails",
            burst_t,
            burst_steals,
        ),
        (
            "trickle: each end releases the next task",
            trickle_t,
            trickle_steals,
        ),
        ("simulated swarm, one 10× task in 100", sim_t, sim_steals),
    ] {
        println!(
            "| {what} ({steals} steals) | {:.2} ms | {:.2} µs | {:.4}× (goal ≤ 200 µs per task) |",
            ms(d),
            per_task(d),
            per_task(d) / raw_us
        );
    }
}
