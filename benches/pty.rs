//! Programs in terminal panes (`pty` steps), through the real engine and
//! the real app loop drawing into a crossterm sink (`common/sink.rs`):
//!
//! - throughput: a pane fed 50 MB (`cat` of a file of coloured, partly
//!   wide-character lines) to the run's end — lev's pty reader and emulator,
//!   the broadcast of the bytes, the pane's own emulator and the frames —
//!   against tmux on the same machine in the same run (a detached session
//!   of the same size running the same `cat`, timed until the command
//!   ends), with `cat FILE > /dev/null` as the floor;
//! - idle: eight programs that wait (`sleep`) in eight panes, the share of
//!   a core the process uses over `LEV_BENCH_SECS` seconds (default 5).
//!
//! `cargo bench --bench pty`; `LEV_BENCH_PTY_MB` sets the size (default 50).
#![allow(clippy::print_stdout)]

#[path = "common/cpu.rs"]
mod cpu;
#[path = "common/sink.rs"]
mod sink;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cpu::cpu_time;
use lev::engine::Engine;
use lev::headless::{self, HeadlessOptions};
use lev::journal::Journal;
use lev::protocol::{Notice, Op, RunId, RunStatus};
use lev::spec::{self, ModeRegistry};
use lev::tui::app::{self, Launch, Screen};
use lev::workflow::{self, EngineDeps, RunOptions, Start};

const WIDTH: u16 = 200;
const HEIGHT: u16 = 50;
const IDLE_PANES: usize = 8;

/// A file of `mb` megabytes of lines a terminal has work with: colours,
/// wide characters, a tab.
fn big_file(dir: &Path, mb: usize) -> std::path::PathBuf {
    let path = dir.join("big.txt");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut written = 0;
    let mut i = 0u64;
    while written < mb * 1024 * 1024 {
        let line = format!(
            "{i:>9} \x1b[32mok\x1b[0m\tcompiling crate_{} v0.{}.0 (宽字符 {}) {}\r\n",
            i % 977,
            i % 31,
            i % 7,
            "·".repeat((i % 60) as usize)
        );
        f.write_all(line.as_bytes()).unwrap();
        written += line.len();
        i += 1;
    }
    f.flush().unwrap();
    path
}

fn workflow_file(dir: &Path, name: &str, steps: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "version: 1\nkind: workflow\nid: {name}\nname: {name}\nlimits:\n  max_parallel: {IDLE_PANES}\nsteps:\n{steps}"
        ),
    )
    .unwrap();
    path
}

async fn fresh(dir: &Path, name: &str, path: &Path) -> (Engine, Arc<EngineDeps>, RunId) {
    let journal = Journal::open(&dir.join(format!("{name}.redb"))).unwrap();
    let modes = ModeRegistry::builtin().unwrap();
    let wf = spec::load_workflow(path, &modes).unwrap();
    let run = workflow::start_run(&journal, &wf, BTreeMap::new(), None)
        .await
        .unwrap();
    let deps = Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: Err("no agents here".into()),
        default_model: None,
        profiles: Default::default(),
        modes,
        workspace: dir.to_path_buf(),
        options: RunOptions::default(),
    });
    (Engine::open(journal, Err("not needed".into())), deps, run)
}

struct Measured {
    cpu: Duration,
    wall: Duration,
    frames: u64,
}

/// The run in the real app loop, to its end, or (`idle_for`) sampled for
/// that long after it settled; the input then ends and the loop returns.
async fn in_workbench(
    engine: Engine,
    deps: Arc<EngineDeps>,
    run: RunId,
    idle_for: Option<Duration>,
) -> Measured {
    let (mut terminal, frames) = sink::sink_terminal(WIDTH, HEIGHT);
    let mut escapes = std::io::sink();
    let app = sink::bench_app(&engine);
    let mut ended = engine.subscribe();
    let (keys, input) = futures::channel::mpsc::unbounded::<lev::tui::state::Input>();
    let started = Instant::now();
    let driving = engine.start(deps, run.clone(), Start::Fresh).await.unwrap();
    let sampled = Arc::new(std::sync::Mutex::new(None));
    let sample = sampled.clone();
    let stop = async move {
        match idle_for {
            Some(wait) => {
                // Let every program start and the panes settle first.
                tokio::time::sleep(Duration::from_secs(2)).await;
                let (cpu, t, f) = (cpu_time(), Instant::now(), frames.load(Ordering::Relaxed));
                tokio::time::sleep(wait).await;
                *sample.lock().unwrap() = Some(Measured {
                    cpu: cpu_time() - cpu,
                    wall: t.elapsed(),
                    frames: frames.load(Ordering::Relaxed) - f,
                });
            }
            None => {
                while let Some(n) = ended.recv().await {
                    if matches!(n, Notice::Ended(r) if r == run) {
                        break;
                    }
                }
                *sample.lock().unwrap() = Some(Measured {
                    cpu: Duration::ZERO,
                    wall: started.elapsed(),
                    frames: frames.load(Ordering::Relaxed),
                });
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
    sampled.lock().unwrap().take().unwrap()
}

async fn pane_throughput(dir: &Path, file: &Path) -> Measured {
    let path = workflow_file(
        dir,
        "cat-pane",
        &format!(
            "  cat:\n    type: pty\n    command: cat\n    args: ['{}']\n    size: {WIDTH}x{HEIGHT}\n",
            file.display()
        ),
    );
    let (engine, deps, run) = fresh(dir, "cat-pane", &path).await;
    in_workbench(engine, deps, run, None).await
}

async fn headless_throughput(dir: &Path, file: &Path) -> Duration {
    let path = workflow_file(
        dir,
        "cat-headless",
        &format!(
            "  cat:\n    type: pty\n    command: cat\n    args: ['{}']\n    size: {WIDTH}x{HEIGHT}\n",
            file.display()
        ),
    );
    let (engine, deps, run) = fresh(dir, "cat-headless", &path).await;
    let notices = engine.subscribe();
    let t = Instant::now();
    let driving = engine.start(deps, run, Start::Fresh).await.unwrap();
    let outcome = headless::follow(
        &engine,
        notices,
        driving,
        headless::Printer::default(),
        HeadlessOptions::default(),
        &mut std::io::sink(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.status, RunStatus::Succeeded);
    t.elapsed()
}

/// tmux running the same `cat` in a detached session of the same size.
fn tmux_throughput(dir: &Path, file: &Path) -> Option<Duration> {
    let socket = format!("lev-bench-{}", std::process::id());
    let conf = dir.join("tmux.conf");
    std::fs::write(&conf, "").ok()?;
    let t = Instant::now();
    let started = Command::new("tmux")
        .args(["-L", &socket, "-f"])
        .arg(&conf)
        .args([
            "new-session",
            "-d",
            "-x",
            &WIDTH.to_string(),
            "-y",
            &HEIGHT.to_string(),
        ])
        .arg(format!(
            "cat '{}'; tmux -L {socket} wait-for -S done",
            file.display()
        ))
        .status()
        .ok()?;
    if !started.success() {
        return None;
    }
    let waited = Command::new("tmux")
        .args(["-L", &socket, "wait-for", "done"])
        .status()
        .ok()?;
    let took = t.elapsed();
    let _ = Command::new("tmux")
        .args(["-L", &socket, "kill-server"])
        .status();
    waited.success().then_some(took)
}

fn cat_floor(file: &Path) -> Duration {
    let t = Instant::now();
    let out = Command::new("cat")
        .arg(file)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(out.success());
    t.elapsed()
}

fn idle_steps() -> String {
    (0..IDLE_PANES)
        .map(|i| format!("  idle{i}:\n    type: pty\n    command: sleep\n    args: ['600']\n"))
        .collect()
}

/// The same eight programs with no workbench: the engine's own share.
async fn idle_headless(dir: &Path, secs: u64) -> Measured {
    let path = workflow_file(dir, "idle-headless", &idle_steps());
    let (engine, deps, run) = fresh(dir, "idle-headless", &path).await;
    let driving = engine.start(deps, run.clone(), Start::Fresh).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu, t) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let measured = Measured {
        cpu: cpu_time() - cpu,
        wall: t.elapsed(),
        frames: 0,
    };
    let _ = engine.submit(Op::Cancel { run }).await;
    let _ = driving.outcome().await;
    measured
}

async fn idle_panes(dir: &Path, secs: u64) -> Measured {
    let path = workflow_file(dir, "idle", &idle_steps());
    let (engine, deps, run) = fresh(dir, "idle", &path).await;
    let cancel = engine.clone();
    let measured = in_workbench(engine, deps, run.clone(), Some(Duration::from_secs(secs))).await;
    let _ = cancel.submit(Op::Cancel { run }).await;
    measured
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mb: usize = std::env::var("LEV_BENCH_PTY_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let secs: u64 = std::env::var("LEV_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let file = big_file(dir.path(), mb);
    let floor = cat_floor(&file);
    let tmux = tmux_throughput(dir.path(), &file);
    let headless = headless_throughput(dir.path(), &file).await;
    let pane = pane_throughput(dir.path(), &file).await;
    let rate = |d: Duration| mb as f64 / d.as_secs_f64();
    println!("| measurement | result | ratio |");
    println!("| --- | --- | --- |");
    println!(
        "| `cat` of {mb} MB to /dev/null (floor) | {:.2} s, {:.0} MB/s | — |",
        floor.as_secs_f64(),
        rate(floor)
    );
    match tmux {
        Some(t) => println!(
            "| tmux, a detached {WIDTH}×{HEIGHT} session running the same `cat` (baseline) | {:.2} s, {:.0} MB/s | 1× |",
            t.as_secs_f64(),
            rate(t)
        ),
        None => println!("| tmux (baseline) | not installed | — |"),
    }
    let vs = |d: Duration| {
        tmux.map(|t| format!("{:.2}× tmux's time", d.as_secs_f64() / t.as_secs_f64()))
            .unwrap_or_else(|| "—".into())
    };
    println!(
        "| lev, a `pty` step headless (engine emulator, transcript, printer) | {:.2} s, {:.0} MB/s | {} |",
        headless.as_secs_f64(),
        rate(headless),
        vs(headless)
    );
    println!(
        "| lev, the same step in a workbench pane (real app loop, {WIDTH}×{HEIGHT}, frames into a sink) | {:.2} s, {:.0} MB/s, {} frames | {} |",
        pane.wall.as_secs_f64(),
        rate(pane.wall),
        pane.frames,
        vs(pane.wall)
    );
    let engine_only = idle_headless(dir.path(), secs).await;
    println!(
        "| {IDLE_PANES} idle programs (`sleep`), engine only (no screen), over {:.1} s | {:.2} % of a core | — |",
        engine_only.wall.as_secs_f64(),
        engine_only.cpu.as_secs_f64() / engine_only.wall.as_secs_f64() * 100.0,
    );
    let idle = idle_panes(dir.path(), secs).await;
    println!(
        "| {IDLE_PANES} idle programs (`sleep`) in {IDLE_PANES} panes, workbench, over {:.1} s | {:.2} % of a core, {} frames | goal ≤ 1 % |",
        idle.wall.as_secs_f64(),
        idle.cpu.as_secs_f64() / idle.wall.as_secs_f64() * 100.0,
        idle.frames
    );
}
