//! The journal on PostgreSQL beside the journal on redb (issue 17), in
//! process: what a durable step's appends cost on each, as ratios to a raw
//! durable commit of each measured in the same run.
//!
//! `LEV_BENCH_POSTGRES=… cargo bench --bench pg` (or `LEV_TEST_POSTGRES`,
//! which scripts/test sets): a conninfo or URL of a server, on which the
//! bench makes a database of its own and drops it at the end. Without
//! either it says so and measures nothing. The redb files live in a temp
//! dir under `LEV_BENCH_DIR` (default: the system temp dir, which must be
//! a real disk for fsync to mean anything). `LEV_BENCH_PG_CARGO=1
//! scripts/bench-pg` runs it on the throwaway server that script starts,
//! after measuring the whole binary on both backends, with workers, and
//! DBOS on the same server.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use lev::journal::{Entry, Journal, RunMeta};
use lev::protocol::{RunId, RunStatus};
use redb::{Database, TableDefinition};
use tokio_postgres::NoTls;

const VALUE_LEN: usize = 256;
/// Time budget of each alternated measurement.
const BUDGET: Duration = Duration::from_secs(6);
const MAX_SAMPLES: usize = 2000;
/// Concurrent appenders, each on a run of its own (as a worker's slots).
const WRITERS: usize = 8;
const WRITERS_SPAN: Duration = Duration::from_secs(3);

fn server() -> Option<String> {
    ["LEV_BENCH_POSTGRES", "LEV_TEST_POSTGRES"]
        .into_iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
}

/// `base` pointed at database `name`, whether a URL or key-value string.
fn with_dbname(base: &str, name: &str) -> String {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = base.strip_prefix(scheme) {
            let (main, query) = match rest.split_once('?') {
                Some((main, query)) => (main, Some(query)),
                None => (rest, None),
            };
            let authority = main.split('/').next().unwrap_or_default();
            let query = query.map(|q| format!("?{q}")).unwrap_or_default();
            return format!("{scheme}{authority}/{name}{query}");
        }
    }
    // A later key wins.
    format!("{base} dbname={name}")
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
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
        source: "benches/pg.rs".into(),
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

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

/// An intent entry, then a result entry, each acknowledged durable.
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

struct Samples {
    raw_redb: Vec<Duration>,
    raw_pg: Vec<Duration>,
    trip_pg: Vec<Duration>,
    step_redb: Vec<Duration>,
    step_pg: Vec<Duration>,
}

/// Every measurement in turn, one sample each per round, so all see the
/// same machine load: a raw redb commit, a raw PostgreSQL commit (one
/// 256-byte row inserted in autocommit, a prepared statement), a round
/// trip (`SELECT 1`), and a durable step on each journal.
async fn alternate(dir: &std::path::Path, url: &str, redb: &Journal, pg: &Journal) -> Samples {
    const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("raw");
    let db = Database::create(dir.join("raw.redb")).unwrap();
    let raw = client(url).await;
    raw.batch_execute("CREATE TABLE bench_raw (i bigint PRIMARY KEY, v bytea)")
        .await
        .unwrap();
    let insert = raw
        .prepare("INSERT INTO bench_raw VALUES ($1, $2)")
        .await
        .unwrap();
    let trip = raw.prepare("SELECT 1").await.unwrap();
    let value = vec![b'x'; VALUE_LEN];
    let (run_redb, run_pg) = (RunId::new(), RunId::new());
    redb.create_run(meta(&run_redb)).await.unwrap();
    pg.create_run(meta(&run_pg)).await.unwrap();
    let mut s = Samples {
        raw_redb: Vec::new(),
        raw_pg: Vec::new(),
        trip_pg: Vec::new(),
        step_redb: Vec::new(),
        step_pg: Vec::new(),
    };
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed() < BUDGET && s.raw_redb.len() < MAX_SAMPLES {
        let t = Instant::now();
        let txn = db.begin_write().unwrap();
        txn.open_table(TABLE)
            .unwrap()
            .insert(i, value.as_slice())
            .unwrap();
        txn.commit().unwrap();
        s.raw_redb.push(t.elapsed());

        let t = Instant::now();
        raw.execute(&insert, &[&(i as i64), &value]).await.unwrap();
        s.raw_pg.push(t.elapsed());

        let t = Instant::now();
        raw.query_one(&trip, &[]).await.unwrap();
        s.trip_pg.push(t.elapsed());

        s.step_redb.push(step_once(redb, &run_redb, i).await);
        s.step_pg.push(step_once(pg, &run_pg, i).await);
        i += 1;
    }
    s
}

/// Entries/s with `WRITERS` tasks each appending one entry at a time to a
/// run of its own, for `WRITERS_SPAN`; and the commits that took.
async fn writers(j: &Journal) -> (f64, u64, u64) {
    let mut runs = Vec::new();
    for _ in 0..WRITERS {
        let run = RunId::new();
        j.create_run(meta(&run)).await.unwrap();
        runs.push(run);
    }
    let commits = j.commit_count();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, run) in runs.into_iter().enumerate() {
        let j = j.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < WRITERS_SPAN {
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
    let rate = total as f64 / start.elapsed().as_secs_f64();
    (rate, total, j.commit_count() - commits)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let Some(admin) = server() else {
        println!(
            "benches/pg.rs: skipped: set LEV_BENCH_POSTGRES (or LEV_TEST_POSTGRES) to a PostgreSQL server's conninfo or URL (scripts/bench-pg starts one)"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let name = format!("lev_bench_{:016x}", rand::random::<u64>());
    let url = with_dbname(&admin, &name);
    rt.block_on(async {
        client(&admin)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
    });
    let dir = bench_dir();
    let redb = Journal::open(&dir.path().join("lev.redb")).unwrap();
    let pg = rt.block_on(Journal::open_url(&url)).unwrap();

    let s = rt.block_on(alternate(dir.path(), &url, &redb, &pg));
    let (redb_rate, redb_n, redb_commits) = rt.block_on(writers(&redb));
    let (pg_rate, pg_n, pg_commits) = rt.block_on(writers(&pg));

    let n = s.raw_redb.len();
    let raw_redb = p50(s.raw_redb);
    let raw_pg = p50(s.raw_pg);
    let trip = p50(s.trip_pg);
    let (step_redb, step_redb_99) = (p50(s.step_redb.clone()), p99(s.step_redb));
    let (step_pg, step_pg_99) = (p50(s.step_pg.clone()), p99(s.step_pg));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "Alternated, {n} samples each (p50 unless said), {WRITERS} writers for {}s:\n",
        WRITERS_SPAN.as_secs()
    );
    println!("| measurement | result | ratio |");
    println!("| --- | --- | --- |");
    println!(
        "| (a) raw redb durable commit, 1×{VALUE_LEN} B | {} | baseline |",
        ms(raw_redb)
    );
    println!(
        "| (b) raw PostgreSQL commit: one {VALUE_LEN} B row inserted in autocommit | {} | {:.2}× (a) |",
        ms(raw_pg),
        ratio(raw_pg, raw_redb)
    );
    println!(
        "| (c) a round trip to the server (`SELECT 1`) | {} | {:.2}× (b) |",
        ms(trip),
        ratio(trip, raw_pg)
    );
    println!(
        "| (d) durable step on redb: append intent + append result | {} (p99 {}) | {:.2}× (a) |",
        ms(step_redb),
        ms(step_redb_99),
        ratio(step_redb, raw_redb)
    );
    println!(
        "| (e) durable step on PostgreSQL: the same two appends | {} (p99 {}) | {:.2}× (b), {:.2}× (d) |",
        ms(step_pg),
        ms(step_pg_99),
        ratio(step_pg, raw_pg),
        ratio(step_pg, step_redb)
    );
    println!(
        "| (f) {WRITERS} writers, a run each, 1×{VALUE_LEN} B appends, redb | {redb_rate:.0} entries/s ({redb_n} in {redb_commits} commits) | {:.2}× 1/(a) |",
        redb_rate * raw_redb.as_secs_f64()
    );
    println!(
        "| (g) the same on PostgreSQL | {pg_rate:.0} entries/s ({pg_n} in {pg_commits} commits) | {:.2}× 1/(b), {:.2}× (f) |",
        pg_rate * raw_pg.as_secs_f64(),
        pg_rate / redb_rate
    );

    drop(pg);
    drop(redb);
    rt.block_on(async {
        client(&admin)
            .await
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
    });
}
