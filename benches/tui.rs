//! Workbench benchmarks: frame time (state → buffer) for 16 agents in a grid
//! at 200×60 with 100,000 lines of scrollback each, the cost of applying
//! token deltas, the CPU share 16 agents streaming 200 tokens/s would take,
//! and resident memory for that load. The baseline, measured in the same
//! run, is the floor of any frame: filling a 200×60 buffer cell by cell.
//!
//! `cargo bench --bench tui`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use lev::protocol::{Delta, Notice, RunId, StepKey};
use lev::tui::keymap::Action;
use lev::tui::state::sample::bench_state;
use lev::tui::theme::Theme;
use lev::tui::view;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;

const PANES: usize = 16;
const LINES: usize = 100_000;
const FRAMES: usize = 200;
const DELTAS: usize = 10_000;

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
        (0..FRAMES)
            .map(|i| {
                let t = Instant::now();
                let mut buf = Buffer::empty(Rect::new(0, 0, 200, 60));
                let line = format!("{i:>200}");
                for y in 0..60 {
                    buf.set_string(0, y, &line, Style::default());
                }
                std::hint::black_box(&buf);
                t.elapsed()
            })
            .collect(),
    );

    let t = Instant::now();
    let mut state = bench_state(PANES, LINES);
    let build = t.elapsed();
    let _ = state.handle_action(Action::LayoutGrid);
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

    // 16 agents × 200 tokens/s, redrawn at most 30 times a second (coalesced).
    let per_second = per_delta * (PANES as u32 * 200) + frame * 30;
    let cpu_share = per_second.as_secs_f64() * 100.0;
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
        "| apply {DELTAS} token deltas | {:.2} ms ({:.2} µs each) | {:.2}× baseline per delta |",
        ms(deltas),
        per_delta.as_secs_f64() * 1e6,
        ms(per_delta) / ms(baseline)
    );
    println!(
        "| CPU for 16 agents × 200 tokens/s at 30 frames/s | {cpu_share:.1}% of one core | goal < 25% |"
    );
    println!(
        "| resident memory with {PANES}×{LINES} lines loaded | {rss_loaded:.0} MB (before: {rss_before:.0} MB; building took {:.0} ms) | goal ≤ 200 MB |",
        ms(build)
    );
}
