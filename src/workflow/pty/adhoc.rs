//! Ad-hoc programs in a live run (`Op::Spawn`): steps `adhoc-N` beside
//! the workflow's, stopped when the run ends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::StepKey;
use crate::spec::{DoneWhen, TerminalSize};
use crate::workflow::context::RunCtx;

/// The ad-hoc programs of a live run: their keys and tasks.
#[derive(Default)]
pub struct Adhoc {
    running: Vec<(StepKey, tokio::task::JoinHandle<()>)>,
    /// Keys given in this process.
    given: u32,
}

const ADHOC_PREFIX: &str = "adhoc-";

/// An ad-hoc program's step (`adhoc-N`).
pub fn is_adhoc(key: &StepKey) -> bool {
    key.as_str().starts_with(ADHOC_PREFIX)
}

/// `Op::Spawn`: runs `command` in a pane of the live run, as step
/// `adhoc-N` beside the workflow's steps (it needs nothing and nothing needs
/// it; it does not wait for a slot); its launch, end and transcript are
/// journaled like any `pty` step's. The run's end stops it.
pub fn spawn_adhoc(ctx: &Arc<RunCtx>, command: String, args: Vec<String>) {
    if command.trim().is_empty() {
        ctx.rec.refuse("nothing to spawn: give a command".into());
        return;
    }
    let Ok(mut adhoc) = ctx.adhoc.lock() else {
        return;
    };
    let key = loop {
        adhoc.given += 1;
        let key = StepKey::new(format!("{ADHOC_PREFIX}{}", adhoc.given));
        if !ctx.history.steps.contains_key(&key) {
            break key;
        }
    };
    let kind = crate::spec::StepKind::Pty {
        command,
        args,
        prompt: None,
        cwd: None,
        env: BTreeMap::new(),
        size: TerminalSize::default(),
        cli: None,
        done_when: DoneWhen::Exit,
        input_when: None,
        mode: None,
    };
    let step = crate::spec::Step {
        continue_on_error: true,
        ..crate::spec::Step::made(key.to_string(), Vec::new(), kind)
    };
    let (run_ctx, run_key) = (ctx.clone(), key.clone());
    let task = tokio::spawn(async move {
        let eval = crate::spec::expr::EvalContext::default();
        crate::workflow::step::run_step(run_ctx, run_key, step, eval).await;
    });
    adhoc.running.push((key, task));
}

/// The run ends: its ad-hoc programs are stopped and their ends journaled.
pub async fn stop_adhoc(ctx: &RunCtx) {
    let running = match ctx.adhoc.lock() {
        Ok(mut a) => std::mem::take(&mut a.running),
        Err(_) => return,
    };
    for (key, mut task) in running {
        // Again until it ends: one spawned a moment ago may not have
        // registered its step's token yet.
        loop {
            ctx.cancel_step(&key);
            if tokio::time::timeout(Duration::from_millis(100), &mut task)
                .await
                .is_ok()
            {
                break;
            }
        }
    }
}
