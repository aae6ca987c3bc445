//! Running follow-ups, in a plain graph or a swarm: each within its
//! chain's time box, and the chain breaker counting how they end.

use std::sync::Arc;

use crate::protocol::{Event, StepKey};
use crate::spec::Step;
use crate::spec::expr::EvalContext;
use crate::workflow::context::RunCtx;
use crate::workflow::history::Settled;
use crate::workflow::step::{self, StepEnd};

/// A follow-up settled: the chain breaker counts failures in a row and,
/// at `circuit_breaker.consecutive_failures`, stops callbacks for the run.
pub async fn settled(ctx: &RunCtx, key: &StepKey, settled: &Settled) {
    let failed = match settled {
        Settled::Succeeded { .. } => false,
        Settled::Failed { .. } => true,
        Settled::Skipped | Settled::Cancelled => return,
    };
    let in_a_row = ctx.followups_book(|b| b.settled(key, !failed));
    let limit = ctx.limits.circuit_breaker.consecutive_failures.max(1);
    if failed && in_a_row >= limit {
        let event = Event::GuardTripped {
            guard: "chain_breaker".into(),
            limit: format!(
                "{limit} failed follow-ups in a row (circuit_breaker.consecutive_failures)"
            ),
            observed: format!("{in_a_row} in a row, the last {key}"),
            step: Some(key.clone()),
            at: ctx.now(),
        };
        let _ = ctx.rec.record(event).await;
        let reason = format!("{in_a_row} follow-ups failed in a row (the last: {key})");
        crate::workflow::executor::stop_callbacks(ctx, "chain_breaker", reason).await;
    }
}

/// Runs a follow-up within its chain's time box: when the box ends first,
/// the guard is journaled and the step is cancelled where it stands.
pub async fn run_in_box(
    ctx: Arc<RunCtx>,
    key: StepKey,
    step: Step,
    eval: EvalContext,
    deadline: tokio::time::Instant,
) -> StepEnd {
    let limit = crate::workflow::attempt::humantime(ctx.limits.chain_timebox);
    if tokio::time::Instant::now() >= deadline {
        step::record_skip(
            &ctx,
            key,
            format!("its chain's time box ({limit}) ended before it could start"),
        )
        .await;
        return StepEnd::Settled(Settled::Skipped);
    }
    let run = step::run_step(ctx.clone(), key.clone(), step, eval);
    tokio::pin!(run);
    tokio::select! {
        // Polled first, so the step's own cancel token exists when the box ends.
        biased;
        end = &mut run => end,
        _ = tokio::time::sleep_until(deadline) => {
            let event = Event::GuardTripped {
                guard: "chain_timebox".into(),
                limit,
                observed: "the chain's time box ended while this follow-up ran".into(),
                step: Some(key.clone()),
                at: ctx.now(),
            };
            let _ = ctx.rec.record(event).await;
            ctx.cancel_step(&key);
            run.await
        }
    }
}

/// [`decide`](super::decide), where a panic (a bug in lev) spawns nothing,
/// so the steps that need the parent still go on.
pub async fn decide_guarded(ctx: &Arc<RunCtx>, parent: &super::Parent) -> Vec<super::Child> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(super::decide(ctx, parent))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!(step = %parent.key, "deciding follow-ups panicked; none are spawned");
            Vec::new()
        })
}
