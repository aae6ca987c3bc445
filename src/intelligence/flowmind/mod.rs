//! FlowMind, the controller: a participant that folds the events of every
//! run the engine executes and, when an agent looks stuck (`rules`),
//! submits its decision as `Op::Flowmind` — instruct the agent first, then
//! hand it to the user. The engine journals each decision before it acts,
//! and a run the controller first meets (a resumed one) is folded from its
//! journal before anything new, so no decision is made twice.
//!
//! This build runs the deterministic rules only (`flowmind: { mode:
//! fallback }`, the default); `mode: off` turns the controller off.

pub mod rules;

use std::collections::HashMap;

use tokio::task::JoinHandle;

use crate::engine::Engine;
use crate::protocol::{Notice, Op, RunId, Seq};
use rules::{Rules, Thresholds};

/// The controller while it runs; dropping it stops it.
pub struct Controller {
    task: JoinHandle<()>,
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the controller on `engine`'s runs (from now on).
pub fn start(engine: Engine, thresholds: Thresholds) -> Controller {
    let notices = engine.subscribe();
    Controller {
        task: tokio::spawn(watch(engine, notices, thresholds)),
    }
}

/// One run as the controller knows it.
struct Watched {
    rules: Rules,
    /// Events up to here were folded from the journal.
    folded_to: Seq,
}

async fn watch(
    engine: Engine,
    mut notices: tokio::sync::mpsc::UnboundedReceiver<Notice>,
    thresholds: Thresholds,
) {
    let mut runs: HashMap<RunId, Watched> = HashMap::new();
    while let Some(notice) = notices.recv().await {
        let r = match notice {
            Notice::Event(r) => r,
            Notice::Ended(run) => {
                runs.remove(&run);
                continue;
            }
            _ => continue,
        };
        if !runs.contains_key(&r.run) {
            let watched = first_sight(&engine, &r.run, thresholds).await;
            runs.insert(r.run.clone(), watched);
        }
        let Some(watched) = runs.get_mut(&r.run) else {
            continue;
        };
        if r.seq <= watched.folded_to {
            continue;
        }
        let Some(decision) = watched.rules.fold(&r.event) else {
            continue;
        };
        watched.rules.submitted(&decision.step);
        let op = Op::Flowmind {
            run: r.run.clone(),
            step: decision.step.clone(),
            rule: decision.rule.to_string(),
            observed: decision.observed,
            level: decision.level,
            text: decision.text,
        };
        if let Err(e) = engine.submit(op).await {
            tracing::warn!(run = %r.run, step = %decision.step, error = %e, "FlowMind's decision was not taken");
        }
    }
}

/// A run met for the first time: its journal so far, folded without
/// deciding (what was decided then is in it). Each entry is folded as it is
/// read and dropped: a long run's history is never held in memory here.
async fn first_sight(engine: &Engine, run: &RunId, thresholds: Thresholds) -> Watched {
    let watched = Watched {
        rules: Rules::new(thresholds),
        folded_to: Seq(0),
    };
    let folded = engine
        .fold_events(run, Seq(u64::MAX), watched, |w, r| {
            let _ = w.rules.fold(&r.event);
            w.folded_to = r.seq;
        })
        .await;
    match folded {
        Ok(watched) => watched,
        Err(e) => {
            tracing::warn!(%run, error = %e, "FlowMind cannot read the run; it watches from now on");
            Watched {
                rules: Rules::new(thresholds),
                folded_to: Seq(0),
            }
        }
    }
}
