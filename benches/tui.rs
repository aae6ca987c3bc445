//! Workbench benchmarks: frame time (state → buffer) for 16 agents in a grid
//! at 200×60 with 100,000 lines of scrollback each, the cost of applying
//! token deltas, the CPU share 16 agents streaming 200 tokens/s take, and
//! resident memory for that load. The baseline, measured in the same run,
//! is the floor of any frame: filling a 200×60 buffer cell by cell.
//!
//! The CPU share is sampled, not computed: for `LEV_BENCH_CPU_SECS` seconds
//! (default 5) the real `State` takes token deltas at their arrival rate and
//! is drawn 30 times a second, as the app's loop does (ticks every 80 ms,
//! every delta that arrived before a frame folded before it); the process's
//! CPU time (`/proc/self/stat`, user + system) is read before and after.
//! The same paced loop drawing only the baseline frame gives the floor.
//!
//! `cargo bench --bench tui`.
#![allow(clippy::print_stdout)]

#[path = "common/cpu.rs"]
mod cpu;
use cpu::cpu_time;
use std::time::{Duration, Instant};

use lev::protocol::{Delta, Millis, Notice, RunId, StepKey};
use lev::tui::keymap::Action;
use lev::tui::state::sample::{T0, bench_state};
use lev::tui::state::{Input, State};
use lev::tui::theme::Theme;
use lev::tui::view;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;

const PANES: usize = 16;
const LINES: usize = 100_000;
const FRAMES: usize = 200;
const DELTAS: usize = 10_000;
const FPS: u32 = 30;
const TOKENS_PER_AGENT_PER_SEC: u32 = 200;

/// What a sampled run of the paced loop cost.
struct Sampled {
    cpu: Duration,
    wall: Duration,
    frames: u32,
    deltas: u64,
}

impl Sampled {
    fn percent(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64() * 100.0
    }
}

/// Runs `frame` 30 times a second for `secs`, handing it the number of
/// deltas due since the previous frame, and samples the CPU time used.
fn paced(secs: u64, deltas_per_sec: u32, mut frame: impl FnMut(u64, Duration)) -> Sampled {
    let period = Duration::from_secs(1) / FPS;
    let total = FPS * secs as u32;
    let start = Instant::now();
    let cpu0 = cpu_time();
    let mut applied = 0u64;
    for k in 0..total {
        let now = start.elapsed();
        let due = (now.as_secs_f64() * deltas_per_sec as f64) as u64;
        let n = due.saturating_sub(applied);
        frame(n, now);
        applied += n;
        // Sleep to the next frame's deadline (what the redraw pacing does).
        let next = period * (k + 1);
        if let Some(wait) = next.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    Sampled {
        cpu: cpu_time().saturating_sub(cpu0),
        wall: start.elapsed(),
        frames: total,
        deltas: applied,
    }
}

/// `n` streamed tokens round-robin over the panes, a newline every 16th.
fn stream(state: &mut State, run: &RunId, next: &mut u64, n: u64) {
    for _ in 0..n {
        let i = *next;
        *next += 1;
        let text = if i % 16 == 15 {
            format!(" w{i}\n")
        } else {
            format!(" w{i}")
        };
        state.apply(&Notice::Delta(
            run.clone(),
            Delta::Token {
                step: StepKey::new(format!("agent-{}", i % PANES as u64)),
                text,
            },
        ));
    }
}

fn baseline_frame(i: u64) -> Buffer {
    let mut buf = Buffer::empty(Rect::new(0, 0, 200, 60));
    let line = format!("{i:>200}");
    for y in 0..60 {
        buf.set_string(0, y, &line, Style::default());
    }
    buf
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn main() {
    let theme = Theme::fallback();
    let rss_before = rss_mb();

    // Baseline: the cheapest possible full frame.
    let baseline = median(
        (0..FRAMES as u64)
            .map(|i| {
                let t = Instant::now();
                std::hint::black_box(baseline_frame(i));
                t.elapsed()
            })
            .collect(),
    );

    let t = Instant::now();
    let mut state = bench_state(PANES, LINES);
    let build = t.elapsed();
    let _ = state.handle_action(Action::LayoutGrid);
    // The size every frame is drawn at, as the app tells the state.
    let _ = state.handle(Input::Resize(200, 60));
    let rss_loaded = rss_mb();

    let frame = median(
        (0..FRAMES)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(view::render(&state, &theme, 200, 60));
                t.elapsed()
            })
            .collect(),
    );

    // The scrollback jump: `g` on the focused 100,000-line pane, then the
    // frame that shows its first lines; `G` back to the end, then its frame.
    let jumps: Vec<Duration> = (0..FRAMES)
        .map(|i| {
            let key = if i % 2 == 0 {
                Action::Top
            } else {
                Action::Bottom
            };
            let t = Instant::now();
            let _ = state.handle_action(key);
            std::hint::black_box(view::render(&state, &theme, 200, 60));
            t.elapsed()
        })
        .collect();
    let jump = median(jumps);
    let _ = state.handle_action(Action::Bottom);

    // 10,000 token deltas spread over the 16 panes, as streaming produces them.
    let run = RunId("01KAV0A0000000000000000001".into());
    let notices: Vec<Notice> = (0..DELTAS)
        .map(|i| {
            Notice::Delta(
                run.clone(),
                Delta::Token {
                    step: StepKey::new(format!("agent-{}", i % PANES)),
                    text: format!(" tok{i}"),
                },
            )
        })
        .collect();
    let t = Instant::now();
    for n in &notices {
        state.apply(n);
    }
    let deltas = t.elapsed();
    let per_delta = deltas / DELTAS as u32;

    // Sampled: 16 agents × 200 tokens/s, drawn 30 times a second, for real.
    let secs: u64 = std::env::var("LEV_BENCH_CPU_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let rate = PANES as u32 * TOKENS_PER_AGENT_PER_SEC;
    let mut count = 0u64;
    let floor = paced(secs, 0, |_, _| {
        count += 1;
        std::hint::black_box(baseline_frame(count));
    });
    let mut next = 0u64;
    let mut last_tick = Duration::ZERO;
    let live = paced(secs, rate, |due, now| {
        stream(&mut state, &run, &mut next, due);
        if now >= last_tick + Duration::from_millis(80) {
            last_tick = now;
            let _ = state.handle(Input::Tick(Millis(T0 + 60_000 + now.as_millis() as u64)));
        }
        std::hint::black_box(view::render(&state, &theme, 200, 60));
    });
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;

    println!("| measurement | result | ratio / goal |");
    println!("| --- | --- | --- |");
    println!(
        "| baseline: fill a 200×60 buffer (median of {FRAMES}) | {:.3} ms | 1× |",
        ms(baseline)
    );
    println!(
        "| frame: {PANES} agents in a grid, 200×60, {LINES} lines each (median of {FRAMES}) | {:.3} ms | {:.1}× baseline (goal ≤ 2 ms) |",
        ms(frame),
        ms(frame) / ms(baseline)
    );
    println!(
        "| scrollback jump: `g` (or `G`) on a {LINES}-line pane and the frame that shows it (median of {FRAMES}) | {:.3} ms | {:.1}× baseline |",
        ms(jump),
        ms(jump) / ms(baseline)
    );
    println!(
        "| apply {DELTAS} token deltas | {:.2} ms ({:.2} µs each) | {:.2}× baseline per delta |",
        ms(deltas),
        per_delta.as_secs_f64() * 1e6,
        ms(per_delta) / ms(baseline)
    );
    println!(
        "| baseline, sampled: a 30 frames/s loop filling a 200×60 buffer for {secs} s ({} frames) | {:.1}% of one core ({:.0} ms CPU in {:.2} s) | 1× |",
        floor.frames,
        floor.percent(),
        ms(floor.cpu),
        floor.wall.as_secs_f64()
    );
    println!(
        "| CPU, sampled: {PANES} agents × {TOKENS_PER_AGENT_PER_SEC} tokens/s at {FPS} frames/s for {secs} s ({} frames, {} deltas) | {:.1}% of one core ({:.0} ms CPU in {:.2} s) | {:.1}× sampled baseline (goal < 25%) |",
        live.frames,
        live.deltas,
        live.percent(),
        ms(live.cpu),
        live.wall.as_secs_f64(),
        live.percent() / floor.percent().max(0.01)
    );
    println!(
        "| resident memory with {PANES}×{LINES} lines loaded | {rss_loaded:.0} MB (before: {rss_before:.0} MB; building took {:.0} ms) | goal ≤ 200 MB |",
        ms(build)
    );
}
