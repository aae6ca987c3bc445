//! Journal benchmarks: durable step overhead, group commit, replay, resume.
//!
//! A plain `main` with timing loops rather than criterion: the figures are
//! ratios between measurements taken in the same run (a raw redb commit is
//! the yardstick), and fsync-bound loops need wall-clock budgets rather than
//! criterion's sampling. Run with `cargo bench --bench journal`; databases
//! live in temp dirs under `LEV_BENCH_DIR` (default: the system temp dir,
//! which must be a real disk for fsync to mean anything).
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lev::journal::{Entry, Journal, RunMeta};
use lev::protocol::{RunId, RunStatus, Seq};
use redb::{Database, TableDefinition};

const VALUE_LEN: usize = 256;
/// Time budget for each fsync-bound measurement.
const BUDGET: Duration = Duration::from_secs(6);
const MAX_SAMPLES: usize = 3000;
const WRITERS: usize = 8;
const REPLAY_ENTRIES: u64 = 100_000;
const RESUME_STEPS: u64 = 10_000;

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
    n: usize,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    let total: Duration = samples.iter().sum();
    Stats {
        p50: samples[n / 2],
        p99: samples[(n * 99 / 100).min(n - 1)],
        mean: total / n as u32,
        n,
    }
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("LEV_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn meta(id: &RunId) -> RunMeta {
    RunMeta {
        id: id.clone(),
        workflow_id: "bench".into(),
        name: "bench".into(),
        source: "benches/journal.rs".into(),
        definition_blob: String::new(),
        status: RunStatus::Running,
        created_ms: 0,
        updated_ms: 0,
        last_seq: 0,
        parent: None,
        step_run: false,
    }
}

fn entry(kind: &str, step: u64) -> Entry {
    Entry {
        kind: kind.into(),
        step: Some(format!("step-{step}")),
        fingerprint: Some("0123456789abcdef".into()),
        attempt: 1,
        at_ms: 1_764_000_000_000 + step,
        payload: vec![b'x'; VALUE_LEN],
    }
}

/// (a) one 256-byte value per durable redb commit, no lev code.
fn raw_commit_once(db: &Database, i: u64, value: &[u8]) -> Duration {
    const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("raw");
    let t = Instant::now();
    let txn = db.begin_write().unwrap();
    txn.open_table(TABLE).unwrap().insert(i, value).unwrap();
    txn.commit().unwrap();
    t.elapsed()
}

/// (b) an intent entry, then a result entry, for one step.
async fn step_once(j: &Journal, run: &RunId, step: u64) -> Duration {
    let t = Instant::now();
    j.append(run, vec![entry("step_started", step)], None)
        .await
        .unwrap();
    j.append(run, vec![entry("step_completed", step)], None)
        .await
        .unwrap();
    t.elapsed()
}

/// (a) and (b), sampled alternately so both see the same machine load
/// (the bench machine is shared; load drifts over seconds).
async fn raw_and_step(dir: &Path, j: &Journal) -> (Stats, Stats) {
    let db = Database::create(dir.join("raw.redb")).unwrap();
    let value = vec![b'x'; VALUE_LEN];
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    let (mut raw, mut step) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < BUDGET * 2 && raw.len() < MAX_SAMPLES {
        raw.push(raw_commit_once(&db, i, &value));
        step.push(step_once(j, &run, i).await);
        i += 1;
    }
    (stats(raw), stats(step))
}

/// (c) entries/s with `WRITERS` concurrent single-entry appenders for `span`.
async fn group_commit(j: &Journal, run: &RunId, span: Duration) -> (u64, u64, Duration) {
    let commits_before = j.commit_count();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let j = j.clone();
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < span {
                j.append(&run, vec![entry("tick", w as u64)], None)
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    (total, j.commit_count() - commits_before, start.elapsed())
}

/// (c) against (a): alternating short phases of raw single commits and of
/// group-committed appends, so both see the same machine load; the ratio is
/// the median of the per-round ratios.
async fn group_vs_raw(dir: &Path, j: &Journal) -> GroupResult {
    const ROUNDS: usize = 8;
    let span = BUDGET / ROUNDS as u32;
    let db = Database::create(dir.join("raw-c.redb")).unwrap();
    let value = vec![b'x'; VALUE_LEN];
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    let mut ratios = Vec::new();
    let (mut entries, mut commits, mut elapsed) = (0, 0, Duration::ZERO);
    let mut i = 0;
    for _ in 0..ROUNDS {
        let mut raw = Vec::new();
        let start = Instant::now();
        while start.elapsed() < span {
            raw.push(raw_commit_once(&db, i, &value));
            i += 1;
        }
        let raw_rate = 1.0 / stats(raw).p50.as_secs_f64();
        let (n, c, e) = group_commit(j, &run, span).await;
        ratios.push((n as f64 / e.as_secs_f64()) / raw_rate);
        entries += n;
        commits += c;
        elapsed += e;
    }
    ratios.sort_by(f64::total_cmp);
    GroupResult {
        rate: entries as f64 / elapsed.as_secs_f64(),
        entries,
        commits,
        ratio: ratios[ROUNDS / 2],
        ratio_min: ratios[0],
    }
}

struct GroupResult {
    rate: f64,
    entries: u64,
    commits: u64,
    ratio: f64,
    ratio_min: f64,
}

/// Fills a run with `steps` steps of `per_step` entries each, in big batches.
async fn fill(j: &Journal, steps: u64, kinds: &[&str]) -> RunId {
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    let mut batch = Vec::new();
    for step in 0..steps {
        for kind in kinds {
            batch.push(entry(kind, step));
        }
        if batch.len() >= 2000 {
            j.append(&run, std::mem::take(&mut batch), None)
                .await
                .unwrap();
        }
    }
    if !batch.is_empty() {
        j.append(&run, batch, None).await.unwrap();
    }
    run
}

/// Median of `reps` timings of `f`; its result is dropped after the clock
/// stops (freeing 100,000 entries is the consumer's cost, not the read's).
async fn median<F, Fut, T>(reps: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let out = f().await;
        times.push(t.elapsed());
        drop(out);
    }
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let dir = bench_dir();
    let base: PathBuf = dir.path().to_path_buf();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let j = Journal::open(&base.join("lev.redb")).unwrap();
    let (raw, step) = rt.block_on(raw_and_step(&base, &j));
    let gc = rt.block_on(group_vs_raw(&base, &j));

    let replay_run = rt.block_on(fill(&j, REPLAY_ENTRIES, &["tick"]));
    let replay = rt.block_on(median(7, || {
        let j = j.clone();
        let run = replay_run.clone();
        async move {
            let got = j.read(&run, Seq(1)).await.unwrap();
            assert_eq!(got.len() as u64, REPLAY_ENTRIES);
            got
        }
    }));
    let replay_rate = REPLAY_ENTRIES as f64 / replay.as_secs_f64();

    let resume_run = rt.block_on(fill(&j, RESUME_STEPS, &["step_started", "step_completed"]));
    let resume = rt.block_on(median(7, || {
        let j = j.clone();
        let run = resume_run.clone();
        async move {
            let got = j.read(&run, Seq(1)).await.unwrap();
            let mut last: HashMap<String, (Seq, Entry)> = HashMap::new();
            for (seq, e) in got {
                if let Some(step) = e.step.clone() {
                    last.insert(step, (seq, e));
                }
            }
            assert_eq!(last.len() as u64, RESUME_STEPS);
            last
        }
    }));

    // Median-based: the tail of a shared machine's fsyncs would otherwise
    // flatter the group-commit ratio.
    let raw_rate = 1.0 / raw.p50.as_secs_f64();
    let step_ratio = step.p50.as_secs_f64() / raw.p50.as_secs_f64();
    println!("| measurement | result | ratio / goal |");
    println!("| --- | --- | --- |");
    println!(
        "| (a) raw redb durable commit, 1×{VALUE_LEN} B ({} samples) | p50 {}, p99 {}, mean {} ({raw_rate:.0} commits/s at p50) | baseline |",
        raw.n,
        ms(raw.p50),
        ms(raw.p99),
        ms(raw.mean)
    );
    println!(
        "| (b) durable step: append intent + append result ({} samples) | p50 {}, p99 {} | p50 {step_ratio:.2}× raw commit, p99 {:.2}× (goal ≤ 2.5×) |",
        step.n,
        ms(step.p50),
        ms(step.p99),
        step.p99.as_secs_f64() / raw.p99.as_secs_f64()
    );
    println!(
        "| (c) group commit, {WRITERS} writers × 1×{VALUE_LEN} B appends | {:.0} entries/s ({} entries in {} commits) | {:.2}× raw commit rate, median of rounds (worst round {:.2}×) (goal ≥ 3×) |",
        gc.rate, gc.entries, gc.commits, gc.ratio, gc.ratio_min
    );
    println!(
        "| (d) replay: read {REPLAY_ENTRIES} entries | {} ({replay_rate:.0} entries/s) | goal ≥ 1,000,000/s |",
        ms(replay)
    );
    println!(
        "| (e) resume: read {} entries + map step → last entry | {} | goal ≤ 100 ms |",
        RESUME_STEPS * 2,
        ms(resume)
    );
    drop(j);
}
