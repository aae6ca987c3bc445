//! Context assembly: an agent's request of 200 parts (its system prompt's,
//! its prompt's, then 97 exchanges of a reply and a tool output) fitted to
//! a 100,000-token budget it overflows, as every turn of a long agent
//! does. Measured warm (the parts counted on earlier turns, as the agent
//! keeps them) and cold (every part counted now), with the real tokenizer
//! (`o200k_base`) and the estimate. The baseline, in the same run, is what
//! a request cost before assembly: copying the conversation.
//!
//! `cargo bench --bench context`.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use lev::llm::context::{Counts, Draft, DraftMessage, Kind, Part, assemble};
use lev::llm::tokens::Counter;
use lev::llm::{Message, Role};

const EXCHANGES: usize = 97;
const BUDGET: u64 = 100_000;
const RUNS: usize = 200;

fn message(role: Role) -> Message {
    Message {
        role,
        content: String::new(),
        tool_calls: Vec::new(),
        tool_call_id: None,
        is_error: false,
    }
}

/// About 130,000 tokens in 200 parts: tool outputs of 1–6 KB of code-like
/// text, replies of a few sentences.
fn draft() -> Draft {
    let mut d = Draft {
        system: vec![
            Part::new("role", Kind::System, "You are a careful coder. ".repeat(40)),
            Part::new(
                "mode hints",
                Kind::System,
                "\n\nKeep in mind:\n- tests first\n",
            ),
            Part::new(
                "output schema",
                Kind::System,
                "\n\nReply with JSON {files}.",
            ),
        ],
        messages: vec![DraftMessage {
            message: message(Role::User),
            parts: vec![
                Part::new("prompt", Kind::Prompt, "Implement this plan: "),
                Part::new(
                    "${{ steps.architect.outputs.plan }}",
                    Kind::Upstream,
                    "a plan with many steps. ".repeat(200),
                ),
                Part::new(
                    "memory://run/current",
                    Kind::Memory,
                    "- [style] tabs\n".repeat(20),
                ),
            ],
        }],
    };
    for i in 0..EXCHANGES {
        d.messages.push(DraftMessage {
            message: message(Role::Assistant),
            parts: vec![Part::new(
                format!("turn {i} reply"),
                Kind::Reply,
                format!("Reading module {i} to see how it handles errors before I change it."),
            )],
        });
        let lines = 20 + (i * 37) % 100;
        let output: String = (0..lines)
            .map(|l| {
                format!("    let value_{l} = compute_{i}(input, {l}).map_err(Error::from)?;\n")
            })
            .collect();
        d.messages.push(DraftMessage {
            message: message(Role::Tool),
            parts: vec![Part::new(
                format!("turn {i} read_file"),
                Kind::ToolOutput,
                output,
            )],
        });
    }
    d
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let d = draft();
    let parts = d.system.len() + d.messages.iter().map(|m| m.parts.len()).sum::<usize>();
    // The conversation as the agent held it before assembly: each message
    // with its whole text, copied into every request.
    let conversation: Vec<Message> = d
        .messages
        .iter()
        .map(|m| Message {
            content: m.parts.iter().map(|p| p.text.as_str()).collect(),
            ..m.message.clone()
        })
        .collect();
    let baseline = time(RUNS, || {
        std::hint::black_box(conversation.clone());
    });
    println!("context assembly: {parts} parts, budget {BUDGET} tokens, median of {RUNS}");
    println!("  baseline (copy the conversation): {:>10.3?}", baseline);
    for counter in [Counter::O200k, Counter::Estimate] {
        let mut warm = Counts::default();
        let first = assemble(&d, Some(BUDGET), counter, &mut warm);
        let drafted: u64 = d
            .system
            .iter()
            .chain(d.messages.iter().flat_map(|m| &m.parts))
            .map(|p| counter.count(&p.text))
            .sum();
        let warm_t = time(RUNS, || {
            std::hint::black_box(assemble(&d, Some(BUDGET), counter, &mut warm));
        });
        let cold_t = time(RUNS.min(20), || {
            std::hint::black_box(assemble(&d, Some(BUDGET), counter, &mut Counts::default()));
        });
        let ratio = |t: Duration| t.as_secs_f64() / baseline.as_secs_f64().max(1e-9);
        println!(
            "  {:<32} drafted {drafted} tokens → sent {} ({} cut, {} left out)",
            counter.name(),
            first.total,
            first.parts.iter().filter(|p| p.note.is_some()).count(),
            first.left_out.len()
        );
        println!(
            "    warm (parts counted before): {:>10.3?}  {:>8.1}× baseline",
            warm_t,
            ratio(warm_t)
        );
        println!(
            "    cold (every part counted):   {:>10.3?}  {:>8.1}× baseline",
            cold_t,
            ratio(cold_t)
        );
    }
}
