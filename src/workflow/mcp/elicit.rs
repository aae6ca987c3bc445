//! A server's elicitation (a request for the user's input made during one
//! of its tool calls) as a question in the run: in the sidebar with the
//! agent whose call it belongs to, journaled and answered like any other
//! (`--answer`, `lev answer`, an MCP client, the workbench). Unanswered,
//! it declines. Its id is the call's place and the elicitation's number
//! within that call, so a call sent again after a crash finds its answer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::super::context::RunCtx;
use super::super::human::{self, Ask};
use super::form::{DECLINE, Form};
use crate::mcp::{Elicitation, Elicited, Elicitor};
use crate::protocol::StepKey;

/// The run's answerer of its servers' elicitations.
#[derive(Default)]
pub(super) struct RunElicitor {
    /// Set once the run's context exists (it holds the pool that holds this).
    ctx: OnceLock<Weak<RunCtx>>,
    /// The calls out to each server: who an elicitation is from.
    calls: Mutex<BTreeMap<String, Vec<Out>>>,
}

/// A call out to a server, and the elicitations it made so far.
struct Out {
    step: StepKey,
    place: String,
    asked: u32,
}

impl RunElicitor {
    pub(super) fn attach(&self, ctx: &Arc<RunCtx>) {
        let _ = self.ctx.set(Arc::downgrade(ctx));
    }

    /// Marks a call to `server` from `step` at `place` as out until the
    /// returned guard is dropped.
    pub(super) fn out(self: &Arc<Self>, server: &str, step: &StepKey, place: String) -> OutGuard {
        if let Ok(mut calls) = self.calls.lock() {
            calls.entry(server.to_string()).or_default().push(Out {
                step: step.clone(),
                place: place.clone(),
                asked: 0,
            });
        }
        OutGuard {
            elicitor: self.clone(),
            server: server.to_string(),
            place,
        }
    }

    /// The step and question id of the next elicitation of `server`: its
    /// call's, when one call is out to it; else the run's.
    fn place_of(&self, server: &str) -> (Option<StepKey>, String) {
        let Ok(mut calls) = self.calls.lock() else {
            return (None, format!("mcp.{server}"));
        };
        match calls.get_mut(server).map(Vec::as_mut_slice) {
            Some([one]) => {
                one.asked += 1;
                (
                    Some(one.step.clone()),
                    format!("{}.elicit{}", one.place, one.asked),
                )
            }
            _ => {
                // None or several out: it cannot be told whose it is.
                let n = calls.values().flatten().map(|o| o.asked).sum::<u32>() + 1;
                (None, format!("mcp.{server}.elicit{n}"))
            }
        }
    }
}

pub(super) struct OutGuard {
    elicitor: Arc<RunElicitor>,
    server: String,
    place: String,
}

impl Drop for OutGuard {
    fn drop(&mut self) {
        if let Ok(mut calls) = self.elicitor.calls.lock()
            && let Some(out) = calls.get_mut(&self.server)
        {
            out.retain(|o| o.place != self.place);
        }
    }
}

impl Elicitor for RunElicitor {
    fn elicit(&self, request: Elicitation) -> futures::future::BoxFuture<'static, Elicited> {
        let ctx = self.ctx.get().and_then(Weak::upgrade);
        let (step, id) = self.place_of(&request.server);
        Box::pin(async move {
            let Some(ctx) = ctx else {
                return Elicited::Cancel;
            };
            let form = Form::of(&request);
            let q = Ask {
                id,
                step,
                header: Some(format!("MCP {}", request.server)),
                ask: form.question(),
                options: form.options(),
                default: Some(DECLINE.to_string()),
                timeout: ctx.answer_timeout,
                from_agent: false,
            };
            match human::ask(&ctx, &q).await {
                Ok(answer) => form.reply(&answer.text),
                Err(e) => {
                    tracing::info!(id = %q.id, "an MCP server's question went unanswered: {e}");
                    Elicited::Cancel
                }
            }
        })
    }
}
