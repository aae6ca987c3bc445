//! `lev whispers`: FlowMind's whisper scores, and `--reset` to forget them.
#![allow(clippy::print_stdout)]

use super::access::Access;
use super::context::error;
use super::exit;
use crate::intelligence::flowmind::whispers::{Raise, raise};
use crate::paths::Paths;
use crate::protocol::Op;

pub async fn run(paths: &Paths, reset: bool, category: Option<String>, json: bool) -> u8 {
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    if reset {
        return match access.submit(Op::ResetWhispers { category }).await {
            Ok(done) => {
                println!("{}", done_text(&done));
                exit::OK
            }
            Err(e) => {
                error(&e);
                exit::FAILED
            }
        };
    }
    if category.is_some() {
        error("a category goes with --reset (lev whispers --reset CATEGORY)");
        return exit::USAGE;
    }
    let scores = match access.whisper_scores().await {
        Ok(s) => s,
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    };
    if json {
        for s in &scores {
            println!("{}", serde_json::to_string(s).unwrap_or_default());
        }
        return exit::OK;
    }
    if scores.is_empty() {
        println!(
            "no whisper scores yet — they grow as you accept, edit or dismiss what FlowMind raises"
        );
        return exit::OK;
    }
    println!(
        "{:<22} {:>8} {:>7} {:>9}  FLOWMIND",
        "CATEGORY", "ACCEPTED", "EDITED", "DISMISSED"
    );
    for s in &scores {
        let how = match raise(s) {
            Raise::Always => "raises it".to_string(),
            Raise::OneIn(n) => format!("raises 1 in {n} (mostly dismissed)"),
        };
        println!(
            "{:<22} {:>8} {:>7} {:>9}  {how}",
            crate::text::one_line(&s.category, 22),
            s.accepted,
            s.edited,
            s.dismissed
        );
    }
    exit::OK
}

fn done_text(done: &crate::engine::Done) -> String {
    match done {
        crate::engine::Done::Recorded { text } => text.clone(),
        other => format!("{other:?}"),
    }
}
