//! The control socket's counterpart for other machines: on a shared
//! (PostgreSQL) journal, a process that executes runs takes the requests
//! other lev processes address to it as the holder of a run's lease
//! (`Journal::take_requests`) and carries each out on its engine handle
//! exactly as the socket does (same wire format, same rules), then
//! replies into the journal. Requests are carried out one at a time, in
//! the order they were sent.

use std::time::Duration;

use super::{Request, Response, answer};
use crate::engine::Engine;
use crate::journal::Journal;

/// How often the inbox is looked at without a wake-up (one lost with a
/// listening connection that dropped).
const LOOK_AGAIN: Duration = Duration::from_secs(2);

/// Serving the inbox while this lives.
pub struct Inbox {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the requests sent to this process on `engine`; `None` on a
/// journal nothing is sent to (redb).
pub async fn serve_inbox(engine: Engine) -> Option<Inbox> {
    let journal: Journal = engine.transport_journal().clone();
    let mut bell = match journal.inbox().await {
        Ok(Some(bell)) => Some(bell),
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "not listening for requests from other machines; looking every {LOOK_AGAIN:?}");
            None
        }
    };
    let task = tokio::spawn(async move {
        loop {
            match journal.take_requests().await {
                Ok(requests) => {
                    for r in requests {
                        let reply = carry_out(&r.text, &engine).await;
                        if let Err(e) = journal.reply(r.id, &reply).await {
                            tracing::warn!(run = %r.run, error = %e, "could not reply to a request");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not take requests"),
            }
            match &mut bell {
                Some(b) => {
                    let rang = tokio::time::timeout(LOOK_AGAIN, b.recv()).await;
                    if matches!(rang, Ok(None)) {
                        // The listening connection is gone: look by the clock.
                        bell = None;
                    }
                }
                None => tokio::time::sleep(LOOK_AGAIN).await,
            }
        }
    });
    Some(Inbox { task })
}

/// One request's reply, as the socket would send it.
async fn carry_out(text: &str, engine: &Engine) -> String {
    let response = match serde_json::from_str::<Request>(text) {
        Ok(req) => match answer(req, engine).await {
            Ok(v) => Response::Ok(v),
            Err(e) => Response::Err(e),
        },
        Err(e) => Response::Err(format!("unreadable request: {e}")),
    };
    serde_json::to_string(&response)
        .unwrap_or_else(|e| format!(r#"{{"err":"unwritable reply: {e}"}}"#))
}
