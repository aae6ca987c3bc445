//! A transport around rmcp's that reads what arrives before rmcp does.
//!
//! Progress: rmcp's notification handlers run as separate tasks, so a
//! call's last progress could reach it after its result; handed on here, in
//! the order the server sent them, every progress of a call comes before
//! the result that follows it.
//!
//! An HTTP error answer without a request id: a server that restarted no
//! longer knows lev's session and many answer that with `400` and an error
//! naming no request (the spec's `404` rmcp would recover from itself).
//! rmcp cannot tie it to the waiting call, which would wait until its
//! timeout; the session is over, so the connection ends here, and the call
//! is sent again on a new one (the server refused it unread).

use std::sync::Arc;

use rmcp::model::{JsonRpcMessage, ServerNotification};
use rmcp::service::{RoleClient, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;

use super::handler::Shared;

pub(crate) struct Tap<T> {
    inner: T,
    shared: Arc<Shared>,
    /// An error naming no request ends the session (HTTP).
    sessions: bool,
}

impl<T> Tap<T> {
    pub(crate) fn stdio(inner: T, shared: Arc<Shared>) -> Tap<T> {
        Tap {
            inner,
            shared,
            sessions: false,
        }
    }

    pub(crate) fn http(inner: T, shared: Arc<Shared>) -> Tap<T> {
        Tap {
            inner,
            shared,
            sessions: true,
        }
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for Tap<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await;
        match &message {
            Some(JsonRpcMessage::Notification(n)) => {
                if let ServerNotification::ProgressNotification(p) = &n.notification {
                    self.shared.progress(&p.params);
                }
            }
            Some(JsonRpcMessage::Error(e)) if e.id.is_none() && self.sessions => {
                tracing::debug!(server = %self.shared.server, error = %e.error.message, "MCP session refused");
                self.shared.refused(e.error.message.to_string());
                return None;
            }
            _ => {}
        }
        message
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
