//! Requests on a live connection: a tool call (its progress followed, a
//! lost connection told apart from a refused call), the tool list, a
//! resource read.

use std::time::Duration;

use rmcp::Peer;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotificationParam, ClientRequest,
    GetPromptRequestParams, GetPromptResponse, ReadResourceRequestParams, ReadResourceResponse,
    RequestId, ServerResult,
};
use rmcp::service::{PeerRequestOptions, RoleClient, ServiceError};
use tokio::sync::mpsc::UnboundedSender;

use super::connect::{chain, service_error, unreachable};
use super::connection::Connection;
use super::{CallOutput, McpTool, Progress, content};

/// Why a call has no output.
pub(crate) enum CallError {
    /// The server never took the request (the connection was already
    /// gone, could not be opened, or the server refused the session): safe
    /// to send again on a new connection. Why, in words.
    NotSent(String),
    Failed(String),
}

impl Connection {
    pub(crate) async fn call(
        &self,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
        progress: Option<UnboundedSender<Progress>>,
        limit: Duration,
    ) -> Result<CallOutput, CallError> {
        let server = self.shared.server.clone();
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        // rmcp puts a fresh progress token in each request's `_meta`.
        let handle = match self
            .peer
            .send_request_with_option(request, PeerRequestOptions::with_timeout(limit))
            .await
        {
            Ok(handle) => handle,
            Err(ServiceError::TransportClosed) => {
                let why = self.lost(format!("MCP server `{server}` stopped")).await;
                return Err(CallError::NotSent(why));
            }
            Err(e) => return Err(CallError::Failed(service_error(&e))),
        };
        let _route = progress.map(|to| self.shared.follow(handle.progress_token.clone(), to));
        let mut abandon = Abandon::new(&self.peer, handle.id.clone());
        let answer = handle.await_response().await;
        abandon.disarm();
        match answer {
            Ok(ServerResult::CallToolResult(result)) => Ok(content::call_output(&result)),
            Ok(ServerResult::EmptyResult(_)) => Ok(CallOutput {
                content: String::new(),
                is_error: false,
            }),
            Ok(_) => Ok(CallOutput {
                content: format!(
                    "MCP server `{server}` answered `{tool}` with a kind of result lev does not handle (an input request or a task)"
                ),
                is_error: true,
            }),
            Err(ServiceError::McpError(e)) => Ok(CallOutput {
                content: match &e.data {
                    Some(data) => format!("{} ({data})", e.message),
                    None => e.message.to_string(),
                },
                is_error: true,
            }),
            Err(ServiceError::Timeout { timeout }) => Err(CallError::Failed(format!(
                "MCP server `{server}` did not finish `{tool}` within {} s (the call was cancelled)",
                timeout.as_secs()
            ))),
            Err(e @ (ServiceError::TransportClosed | ServiceError::TransportSend(_))) => {
                if let Some(why) = self.unsent(&e) {
                    return Err(CallError::NotSent(self.lost(why).await));
                }
                let how = match e {
                    ServiceError::TransportClosed => String::new(),
                    other => format!(" ({})", chain(&other)),
                };
                Err(CallError::Failed(
                    self.lost(format!(
                        "MCP server `{server}` stopped during the call to `{tool}`{how}; it was not sent again, as it may have had its effect"
                    ))
                    .await,
                ))
            }
            Err(e) => Err(CallError::Failed(format!(
                "the call to `{tool}` of MCP server `{server}` failed: {}",
                chain(&e)
            ))),
        }
    }

    pub(crate) async fn list_tools(&self, limit: Duration) -> Result<Vec<McpTool>, String> {
        let server = &self.shared.server;
        let generation = self.shared.tools_generation();
        let list = match tokio::time::timeout(limit, self.peer.list_all_tools()).await {
            Ok(Ok(list)) => list,
            Ok(Err(e)) => return Err(self.failed("listing its tools", &e).await),
            Err(_) => {
                return Err(format!(
                    "MCP server `{server}` did not list its tools within {} s",
                    limit.as_secs()
                ));
            }
        };
        let tools: Vec<McpTool> = list.iter().map(|t| content::tool(server, t)).collect();
        self.shared.store_tools(generation, tools.clone());
        Ok(tools)
    }

    pub(crate) async fn read_resource(&self, uri: &str, limit: Duration) -> Result<String, String> {
        let server = &self.shared.server;
        let read = self
            .peer
            .read_resource_once(ReadResourceRequestParams::new(uri));
        match tokio::time::timeout(limit, read).await {
            Ok(Ok(ReadResourceResponse::Complete(result))) => Ok(content::resource(&result)),
            Ok(Ok(_)) => Err(format!(
                "MCP server `{server}` asked for input to read `{uri}`, which lev cannot give"
            )),
            Ok(Err(e)) => Err(self.failed(&format!("reading `{uri}`"), &e).await),
            Err(_) => Err(format!(
                "MCP server `{server}` did not return `{uri}` within {} s",
                limit.as_secs()
            )),
        }
    }

    pub(crate) async fn prompt(&self, name: &str, limit: Duration) -> Result<String, String> {
        let server = &self.shared.server;
        let get = self.peer.get_prompt_once(GetPromptRequestParams::new(name));
        match tokio::time::timeout(limit, get).await {
            Ok(Ok(GetPromptResponse::Complete(result))) => Ok(content::prompt(&result)),
            Ok(Ok(_)) => Err(format!(
                "MCP server `{server}` asked for input to give prompt `{name}`, which lev cannot give"
            )),
            Ok(Err(e)) => Err(self.failed(&format!("giving prompt `{name}`"), &e).await),
            Err(_) => Err(format!(
                "MCP server `{server}` did not give prompt `{name}` within {} s",
                limit.as_secs()
            )),
        }
    }

    /// Why the request that failed with `e` never reached the server, if it
    /// did not.
    fn unsent(&self, e: &ServiceError) -> Option<String> {
        let server = &self.shared.server;
        if let Some(refusal) = self.shared.refusal() {
            return Some(format!(
                "MCP server `{server}` no longer knows lev's session ({refusal})"
            ));
        }
        match e {
            ServiceError::TransportSend(_) if unreachable(e) => Some(format!(
                "MCP server `{server}` could not be reached ({})",
                chain(e)
            )),
            _ => None,
        }
    }

    /// `doing` failed with `e`: a refusal in the server's words, or a lost
    /// connection (then marked so).
    async fn failed(&self, doing: &str, e: &ServiceError) -> String {
        let server = &self.shared.server;
        match e {
            ServiceError::TransportClosed | ServiceError::TransportSend(_) => {
                self.lost(format!(
                    "MCP server `{server}` stopped while {doing} ({})",
                    chain(e)
                ))
                .await
            }
            other => format!(
                "MCP server `{server}` failed {doing}: {}",
                service_error(other)
            ),
        }
    }
}

/// Tells the server a call lev stopped waiting for (its future dropped) is
/// cancelled, so a long tool does not run on for nothing.
struct Abandon {
    peer: Option<Peer<RoleClient>>,
    id: RequestId,
}

impl Abandon {
    fn new(peer: &Peer<RoleClient>, id: RequestId) -> Abandon {
        Abandon {
            peer: Some(peer.clone()),
            id,
        }
    }

    fn disarm(&mut self) {
        self.peer = None;
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        let Some(peer) = self.peer.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let note = CancelledNotificationParam::new(
            Some(self.id.clone()),
            Some("lev stopped waiting for the call".to_string()),
        );
        runtime.spawn(async move {
            let _ = peer.notify_cancelled(note).await;
        });
    }
}
