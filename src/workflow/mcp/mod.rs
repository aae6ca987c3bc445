//! A run's MCP servers — the config's `mcp_servers:` and the workflow's
//! own — in one pool its agents share: a server starts when an agent that
//! may use it first needs it, starts again after it went down, and stops
//! with the run. What the pool reports (a server up, down) is journaled.
//!
//! An attempt is offered each server's tools as they were when it first
//! asked, journaled (`mcp_tools_listed`): a resumed attempt sends exactly
//! the requests it recorded, without starting the server to learn them.

mod elicit;
mod form;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::attempt::{AttemptCtx, StepError};
use super::recorder::Recorder;
use crate::config::mcp_servers::McpServer;
use crate::llm::ToolSpec;
use crate::mcp::{McpTool, Pool, PoolNotice, Progress};
use crate::protocol::{Delta, Event, McpToolRecord, Millis};
use crate::spec::{Mode, Workflow};
use crate::tools::ToolOutput;

/// The run's pool, the task journaling what it reports, and who puts its
/// servers' questions to the user.
pub struct RunMcp {
    pool: Pool,
    journaling: tokio::task::JoinHandle<()>,
    elicitor: Arc<elicit::RunElicitor>,
}

impl RunMcp {
    /// The run's servers (the config's, then the workflow's over them by
    /// name); `None` when there are none. Nothing starts yet.
    pub fn new(
        config: &BTreeMap<String, McpServer>,
        workflow: &Workflow,
        workspace: std::path::PathBuf,
        rec: &Recorder,
    ) -> Option<RunMcp> {
        let mut servers = config.clone();
        servers.extend(workflow.mcp_servers.clone());
        if servers.is_empty() {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let elicitor = Arc::new(elicit::RunElicitor::default());
        let pool = Pool::answering(
            servers.into_values().collect(),
            workspace,
            tx,
            Some(elicitor.clone()),
        );
        let journaling = tokio::spawn(journal_notices(rec.clone(), rx));
        Some(RunMcp {
            pool,
            journaling,
            elicitor,
        })
    }

    /// Lets the servers' questions reach the run (its context holds this).
    pub fn attach(&self, ctx: &Arc<super::context::RunCtx>) {
        self.elicitor.attach(ctx);
    }

    /// Stops every server; called before the run's end is recorded, so
    /// nothing the pool says comes after it.
    pub async fn stop(&self) {
        self.pool.shutdown().await;
        self.journaling.abort();
    }
}

async fn journal_notices(rec: Recorder, mut notices: mpsc::UnboundedReceiver<PoolNotice>) {
    while let Some(notice) = notices.recv().await {
        let at = Millis::now();
        let event = match notice {
            PoolNotice::Started {
                server,
                restart,
                tools,
            } => Event::McpServerStarted {
                server,
                restart,
                tools,
                at,
            },
            PoolNotice::Down { server, error } => Event::McpServerDown { server, error, at },
            PoolNotice::ToolsChanged { server } => {
                tracing::info!(%server, "MCP server's tools changed: later agents are offered the new list");
                continue;
            }
            PoolNotice::Elicitation { server, message } => {
                tracing::info!(%server, "MCP server asked the user something; declined: {message}");
                continue;
            }
        };
        if let Err(e) = rec.record_unsynced(event).await {
            tracing::warn!("journaling an MCP server's state failed: {e}");
            return;
        }
    }
}

/// The MCP tools one attempt is offered, by the name a model calls them.
#[derive(Default)]
pub(super) struct AgentTools {
    routes: BTreeMap<String, Route>,
    /// In offer order (servers by name, each server's tools in its order).
    pub(super) specs: Vec<ToolSpec>,
}

/// Where an offered name goes.
pub(super) struct Route {
    pub(super) server: String,
    pub(super) tool: McpToolRecord,
}

impl AgentTools {
    pub(super) fn route(&self, offered: &str) -> Option<&Route> {
        self.routes.get(offered)
    }
}

/// The tools this attempt of an agent in `mode` is offered: those recorded
/// for it, else each server's current list (the server started if need
/// be), journaled before any request that offers them. A server the mode
/// may use that cannot start fails the attempt (its retry policy decides).
pub(super) async fn agent_tools(actx: &AttemptCtx, mode: &Mode) -> Result<AgentTools, StepError> {
    let mut out = AgentTools::default();
    let Some(mcp) = &actx.ctx.mcp else {
        return Ok(out);
    };
    for server in mcp.pool.servers() {
        if !crate::tools::mcp::may_offer_server(&server, &mode.tools_allow, &mode.tools_deny) {
            continue;
        }
        let place = (actx.key.clone(), actx.attempt, server.clone());
        let tools = match actx.ctx.history.mcp_tools.get(&place) {
            Some(recorded) => recorded.clone(),
            None => {
                let listed = mcp.pool.tools(&server).await.map_err(|e| {
                    StepError::Failed(format!("MCP server `{server}` is not available: {e}"))
                })?;
                let tools: Vec<McpToolRecord> = listed.into_iter().map(record_of).collect();
                actx.record(Event::McpToolsListed {
                    step: actx.key.clone(),
                    attempt: actx.attempt,
                    server: server.clone(),
                    tools: tools.clone(),
                    at: actx.ctx.now(),
                })
                .await?;
                tools
            }
        };
        for tool in tools {
            if !crate::tools::mcp::is_offered(
                &server,
                &tool.name,
                &mode.tools_allow,
                &mode.tools_deny,
            ) {
                continue;
            }
            let Some(name) = crate::tools::mcp::offered_name(&server, &tool.name) else {
                tracing::warn!(%server, tool = %tool.name, "MCP tool not offered: its name is too long for providers");
                continue;
            };
            if out.routes.contains_key(&name) {
                tracing::warn!(%server, tool = %tool.name, "MCP tool not offered: another of its tools has the same offered name {name}");
                continue;
            }
            out.specs.push(ToolSpec {
                name: name.clone(),
                description: tool.description.clone(),
                parameters: object_schema(&tool.input_schema),
            });
            out.routes.insert(
                name,
                Route {
                    server: server.clone(),
                    tool,
                },
            );
        }
    }
    Ok(out)
}

fn record_of(t: McpTool) -> McpToolRecord {
    McpToolRecord {
        name: t.name,
        description: t.description,
        input_schema: t.input_schema,
        read_only: t.read_only,
        idempotent: t.idempotent || t.read_only,
    }
}

/// Providers want an object schema for a tool's arguments; a server that
/// gives none (or another shape) gets one that takes any object.
fn object_schema(schema: &Value) -> Value {
    if schema.get("type").and_then(Value::as_str) == Some("object") {
        schema.clone()
    } else {
        serde_json::json!({"type": "object", "properties": {}})
    }
}

/// Calls the tool behind `route` with a model's JSON arguments. The
/// server's progress shows in the agent's pane as it comes; a server that
/// cannot be reached or stops during the call is an error the model reads
/// (the call is never repeated behind its back: it may have had its effect).
pub(super) async fn call(
    actx: &AttemptCtx,
    route: &Route,
    place: String,
    arguments: &str,
) -> ToolOutput {
    let error = |content: String| ToolOutput {
        content,
        is_error: true,
    };
    let Some(mcp) = &actx.ctx.mcp else {
        return error("this run has no MCP servers".into());
    };
    let text = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    let arguments: Map<String, Value> = match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) | Err(_) => {
            return error(format!(
                "invalid arguments for {}: send one JSON object matching the tool's parameters",
                route.tool.name
            ));
        }
    };
    let (progress_tx, progress_rx) = mpsc::unbounded_channel();
    let shown = tokio::spawn(show_progress(
        actx.ctx.rec.clone(),
        actx.key.clone(),
        format!("{}/{}", route.server, route.tool.name),
        progress_rx,
    ));
    // What the server asks the user during the call goes with this step.
    let _out = mcp.elicitor.out(&route.server, &actx.key, place);
    let result = mcp
        .pool
        .call(
            &route.server,
            &route.tool.name,
            arguments,
            Some(progress_tx),
        )
        .await;
    // The sender went with the call: the progress task ends on its own.
    let _ = shown.await;
    match result {
        Ok(out) => ToolOutput {
            content: out.content,
            is_error: out.is_error,
        },
        Err(e) => error(format!("MCP server `{}`: {e}", route.server)),
    }
}

/// A call's progress, as lines in its agent's pane (not journaled: the
/// result is).
async fn show_progress(
    rec: Recorder,
    step: crate::protocol::StepKey,
    what: String,
    mut progress: mpsc::UnboundedReceiver<Progress>,
) {
    while let Some(p) = progress.recv().await {
        let done = match p.total {
            Some(total) => format!("{}/{}", p.progress, total),
            None => p.progress.to_string(),
        };
        let message = p.message.map(|m| format!(": {m}")).unwrap_or_default();
        rec.delta(Delta::ShellOutput {
            step: step.clone(),
            stderr: false,
            text: format!("{what} progress {done}{message}\n"),
        });
    }
}

/// Most of an included resource or prompt a request carries.
const INCLUDE_MAX_BYTES: usize = 64 * 1024;

/// What an `mcp://` entry of `context.include` names: a resource
/// (`mcp://<server>/<uri>`, the URI with its own scheme) or a prompt
/// without arguments (`mcp://<server>/prompt/<name>`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Include<'a> {
    Resource { server: &'a str, uri: &'a str },
    Prompt { server: &'a str, name: &'a str },
}

pub(crate) fn include_of(entry: &str) -> Option<Include<'_>> {
    let rest = entry.trim().strip_prefix("mcp://")?;
    let (server, what) = rest.split_once('/')?;
    if server.is_empty() || what.is_empty() {
        return None;
    }
    Some(match what.strip_prefix("prompt/") {
        Some(name) if !name.is_empty() => Include::Prompt { server, name },
        _ => Include::Resource { server, uri: what },
    })
}

/// The text an `mcp://` include adds to an agent's first message (`None`
/// for another kind of include). A server that cannot give it fails the
/// attempt: the mode asked for this context.
pub(super) async fn include(actx: &AttemptCtx, entry: &str) -> Result<Option<String>, StepError> {
    let Some(what) = include_of(entry) else {
        return Ok(None);
    };
    let Some(mcp) = &actx.ctx.mcp else {
        return Err(StepError::Failed(format!(
            "context.include `{entry}`: this run has no MCP servers (mcp_servers:)"
        )));
    };
    let read = match what {
        Include::Resource { server, uri } => mcp.pool.read_resource(server, uri).await,
        Include::Prompt { server, name } => mcp.pool.prompt(server, name).await,
    };
    let mut text =
        read.map_err(|e| StepError::Failed(format!("context.include `{entry}`: {e}")))?;
    if text.len() > INCLUDE_MAX_BYTES {
        let mut cut = INCLUDE_MAX_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!("\n[… cut at {} KiB]", INCLUDE_MAX_BYTES / 1024));
    }
    Ok(Some(format!("\n\nFrom {entry}:\n{text}")))
}

/// The run's pool, for the run's context.
pub type Shared = Option<Arc<RunMcp>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_name_a_resource_or_a_prompt_of_a_server() {
        assert_eq!(
            include_of("mcp://everything/demo://resource/static/document/a.md"),
            Some(Include::Resource {
                server: "everything",
                uri: "demo://resource/static/document/a.md"
            })
        );
        assert_eq!(
            include_of("mcp://everything/prompt/simple-prompt"),
            Some(Include::Prompt {
                server: "everything",
                name: "simple-prompt"
            })
        );
        assert_eq!(include_of("memory://run"), None);
        assert_eq!(include_of("mcp://everything"), None);
        assert_eq!(include_of("mcp:///x"), None);
    }
}
