//! What a program waits for, put to the user as journaled questions: its
//! input (`STEP.inputN`, the answer typed in) and approvals its hook waits
//! on (`STEP.approval-ID`, the answer read back by the hook).

use futures::future::BoxFuture;

use crate::protocol::{AnswerSource, HookReport, StepKey, TerminalState};
use crate::workflow::attempt::AttemptCtx;
use crate::workflow::context::RunCtx;
use crate::workflow::human::{self, Ask};

/// Questions the step's earlier attempts asked (their ids go on from there).
pub(super) fn asked_before(ctx: &RunCtx, key: &StepKey) -> u32 {
    let prefix = format!("{key}.input");
    ctx.history
        .asked
        .keys()
        .filter(|id| id.starts_with(&prefix))
        .count() as u32
}

/// Asks the user what the program waits for: `{step}.input{n}`.
pub(super) fn ask(
    actx: &AttemptCtx,
    n: u32,
    program: &str,
    what: String,
    state: TerminalState,
) -> BoxFuture<'static, Result<String, String>> {
    let ctx = actx.ctx.clone();
    let header = match state {
        TerminalState::NeedsApproval => "needs approval",
        _ => "needs input",
    };
    // What the screen or the hook said is journaled with the question.
    let what = crate::secrets::current().redact(&what).into_owned();
    let q = Ask {
        id: format!("{}.input{n}", actx.key),
        step: Some(actx.key.clone()),
        header: Some(format!("{program} {header}")),
        ask: format!("`{}` ({program}) waits for you: {what}", actx.key),
        options: Vec::new(),
        default: None,
        timeout: ctx.answer_timeout,
        from_agent: false,
    };
    Box::pin(async move { human::ask(&ctx, &q).await.map(|a| a.text) })
}

/// Asks the user to decide an approval a program's hook waits on
/// (`STEP.approval-REQUEST`, approve or deny); the hook reads the answer.
/// No one to decide (headless without `--yes`) is a denial, on record.
pub(super) fn approve(
    actx: &AttemptCtx,
    request: &str,
    program: &str,
    what: String,
) -> BoxFuture<'static, ()> {
    let ctx = actx.ctx.clone();
    let step = actx.key.clone();
    let id = HookReport::approval_question(&step, request);
    let what = crate::secrets::current().redact(&what).into_owned();
    let q = Ask::yes_no(
        &ctx,
        id.clone(),
        &step,
        &format!("{program} needs approval"),
        format!("`{step}` ({program}) wants to {what}"),
        ["approve", "deny"],
    );
    Box::pin(async move {
        if human::ask(&ctx, &q).await.is_err() {
            let _ = human::record_answer(&ctx, &id, "no", AnswerSource::Timeout).await;
        }
    })
}
