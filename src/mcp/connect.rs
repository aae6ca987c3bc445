//! Reaching a server: a stdio server is spawned (lev's secrets withheld
//! from its environment, its stderr kept for errors), an HTTP server gets a
//! streamable-HTTP session with its configured headers; then the MCP
//! handshake and the first tool listing. Errors say what a user can fix.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::ServiceExt;
use rmcp::service::{ClientInitializeError, RoleClient, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransportConfig, StreamableHttpError,
};
use rmcp::transport::{
    DynamicTransportError, StreamableHttpClientTransport, TokioChildProcess, Transport,
};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::connection::{Connection, Parts, kill_group};
use super::handler::{Handler, Shared};
use super::stderr::{StderrTail, as_suffix};
use super::tap::Tap;
use super::{McpServer, McpTransport, PoolNotice, content};

/// How long an exited server's stderr may take to say its last words.
const LAST_WORDS: Duration = Duration::from_secs(1);

const HTTP_CONNECT_LIMIT: Duration = Duration::from_secs(10);

pub(crate) struct ConnectError {
    pub(crate) text: String,
    /// Trying again cannot help (a missing program, a missing variable).
    pub(crate) lasting: bool,
}

impl ConnectError {
    fn lasting(text: String) -> ConnectError {
        ConnectError {
            text,
            lasting: true,
        }
    }

    fn passing(text: String) -> ConnectError {
        ConnectError {
            text,
            lasting: false,
        }
    }
}

/// A connection to `server` with its tools listed (and cached), and how
/// many there are.
pub(crate) async fn connect(
    server: &McpServer,
    workspace: &Path,
    notices: &UnboundedSender<PoolNotice>,
    elicitor: Option<std::sync::Arc<dyn super::Elicitor>>,
) -> Result<(Connection, usize), ConnectError> {
    let shared = Shared::new(&server.name, notices.clone(), elicitor);
    // The first use waits for the start: it has the call's time.
    let limit = server.call_timeout;
    let parts = match &server.transport {
        McpTransport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let cwd = cwd.as_deref().unwrap_or(workspace);
            stdio(shared, command, args, env, cwd, limit).await?
        }
        McpTransport::Http {
            url,
            headers,
            headers_env,
        } => http(shared, url, headers, headers_env, limit).await?,
    };
    let connection = Connection::start(parts);
    let count = first_listing(&connection, limit).await?;
    Ok((connection, count))
}

async fn stdio(
    shared: Arc<Shared>,
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    cwd: &Path,
    limit: Duration,
) -> Result<Parts, ConnectError> {
    let server = shared.server.clone();
    let shown = shown_command(command, args);
    let (child, stderr) = spawn(&server, command, args, env, cwd)
        .map_err(|e| spawn_error(&server, &shown, cwd, &e))?;
    let pid = child.id();
    let stderr = stderr.map(|s| StderrTail::start(&server, s));
    let stop = CancellationToken::new();
    let e = match handshake(Tap::stdio(child, shared.clone()), &shared, &stop, limit).await {
        Ok(running) => {
            return Ok(Parts {
                running,
                shared,
                stop,
                pid,
                stderr,
                shown,
            });
        }
        Err(e) => e,
    };
    if let Some(pid) = pid {
        kill_group(pid);
    }
    let (why, last) = match &stderr {
        Some(tail) => {
            let last = as_suffix(&tail.last_lines(LAST_WORDS).await);
            let why = match e {
                // Killed for its slowness: its pipe closes too.
                Handshake::TimedOut(why) => why,
                Handshake::Failed(_) if tail.is_closed() => {
                    "it exited before completing the MCP handshake".to_string()
                }
                Handshake::Failed(why) => why,
            };
            (why, last)
        }
        None => (e.into_text(), String::new()),
    };
    Err(ConnectError::passing(format!(
        "MCP server `{server}` (`{shown}`) did not start: {why}{last}"
    )))
}

async fn http(
    shared: Arc<Shared>,
    url: &str,
    headers: &BTreeMap<String, String>,
    headers_env: &BTreeMap<String, String>,
    limit: Duration,
) -> Result<Parts, ConnectError> {
    let server = shared.server.clone();
    let headers = http_headers(&server, headers, headers_env)?;
    let client = reqwest::Client::builder()
        .connect_timeout(HTTP_CONNECT_LIMIT)
        // Custom headers (tokens) must not follow a redirect elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| {
            ConnectError::lasting(format!(
                "MCP server `{server}`: no HTTP client: {}",
                chain(&e)
            ))
        })?;
    let config = StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers);
    let transport = StreamableHttpClientTransport::with_client(client, config);
    let stop = CancellationToken::new();
    let running = handshake(Tap::http(transport, shared.clone()), &shared, &stop, limit)
        .await
        .map_err(|e| {
            ConnectError::passing(format!(
                "could not connect to MCP server `{server}` at {url}: {}",
                e.into_text()
            ))
        })?;
    Ok(Parts {
        running,
        shared,
        stop,
        pid: None,
        stderr: None,
        shown: url.to_string(),
    })
}

fn spawn(
    server: &str,
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    cwd: &Path,
) -> std::io::Result<(TokioChildProcess, Option<tokio::process::ChildStderr>)> {
    if !cwd.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("its working directory {} does not exist", cwd.display()),
        ));
    }
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(args).current_dir(cwd).kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    for name in crate::secrets::current().names() {
        cmd.env_remove(name);
    }
    cmd.envs(env);
    // It dies with lev like every command lev starts, also when lev is
    // SIGKILLed and the server does not exit on its own when its stdin closes.
    use crate::commands::lifeline;
    cmd.env(lifeline::SUPERVISOR_VAR, lifeline::token());
    tracing::debug!(server, command, ?args, "starting MCP server");
    TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
}

fn spawn_error(server: &str, shown: &str, cwd: &Path, e: &std::io::Error) -> ConnectError {
    let text = match e.kind() {
        std::io::ErrorKind::NotFound if !cwd.is_dir() => {
            format!("could not start MCP server `{server}` (`{shown}`): {e}")
        }
        std::io::ErrorKind::NotFound => format!(
            "could not start MCP server `{server}`: the program of `{shown}` was not found ({e})"
        ),
        _ => format!("could not start MCP server `{server}` (`{shown}`): {e}"),
    };
    let lasting = matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
    );
    ConnectError { text, lasting }
}

fn shown_command(command: &str, args: &[String]) -> String {
    std::iter::once(command)
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The headers as written plus those read from the environment now. A
/// value is never put in a message or a log.
fn http_headers(
    server: &str,
    headers: &BTreeMap<String, String>,
    headers_env: &BTreeMap<String, String>,
) -> Result<HashMap<HeaderName, HeaderValue>, ConnectError> {
    let name = |header: &str| {
        HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
            ConnectError::lasting(format!(
                "MCP server `{server}`: `{header}` cannot be an HTTP header name"
            ))
        })
    };
    let mut out = HashMap::new();
    for (header, value) in headers {
        let value = HeaderValue::from_str(value).map_err(|_| {
            ConnectError::lasting(format!(
                "MCP server `{server}`: the value of header `{header}` cannot be sent in HTTP"
            ))
        })?;
        out.insert(name(header)?, value);
    }
    for (header, var) in headers_env {
        let value = std::env::var(var).map_err(|_| {
            ConnectError::lasting(format!(
                "MCP server `{server}`: header `{header}` takes its value from the environment variable {var}, which is not set"
            ))
        })?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            ConnectError::lasting(format!(
                "MCP server `{server}`: the value of {var} (for header `{header}`) cannot be sent in HTTP"
            ))
        })?;
        value.set_sensitive(true);
        out.insert(name(header)?, value);
    }
    Ok(out)
}

/// Why a handshake failed.
enum Handshake {
    TimedOut(String),
    Failed(String),
}

impl Handshake {
    fn into_text(self) -> String {
        match self {
            Handshake::TimedOut(text) | Handshake::Failed(text) => text,
        }
    }
}

async fn handshake<T>(
    transport: Tap<T>,
    shared: &Arc<Shared>,
    stop: &CancellationToken,
    limit: Duration,
) -> Result<RunningService<RoleClient, Handler>, Handshake>
where
    T: Transport<RoleClient> + 'static,
{
    let handler = Handler {
        shared: shared.clone(),
    };
    // The service gets a child token: rmcp cancels its own token when it is
    // dropped, which must not read as lev stopping it.
    match tokio::time::timeout(limit, handler.serve_with_ct(transport, stop.child_token())).await {
        Err(_) => Err(Handshake::TimedOut(format!(
            "it did not complete the MCP handshake within {} s",
            limit.as_secs()
        ))),
        Ok(Err(e)) => Err(Handshake::Failed(init_error(&e))),
        Ok(Ok(running)) => Ok(running),
    }
}

fn init_error(e: &ClientInitializeError) -> String {
    match e {
        ClientInitializeError::ConnectionClosed(_) => {
            "it closed the connection before completing the MCP handshake".to_string()
        }
        ClientInitializeError::TransportError { error, context } => {
            format!("{} (on: {context})", chain(error))
        }
        other => chain(other),
    }
}

/// Lists the tools of a new connection (a server without tools has none),
/// so `Started` can say how many and the first `tools` needs no request.
async fn first_listing(connection: &Connection, limit: Duration) -> Result<usize, ConnectError> {
    let offers_tools = connection
        .peer
        .peer_info()
        .is_none_or(|info| info.capabilities.tools.is_some());
    if !offers_tools {
        connection
            .shared
            .store_tools(connection.shared.tools_generation(), Vec::new());
        return Ok(0);
    }
    let generation = connection.shared.tools_generation();
    let server = &connection.shared.server;
    let failed = |why: String| {
        connection.stop();
        ConnectError::passing(format!(
            "MCP server `{server}` (`{}`) started, but listing its tools failed: {why}",
            connection.shown
        ))
    };
    match tokio::time::timeout(limit, connection.peer.list_all_tools()).await {
        Ok(Ok(list)) => {
            let tools: Vec<_> = list.iter().map(|t| content::tool(server, t)).collect();
            let count = tools.len();
            connection.shared.store_tools(generation, tools);
            Ok(count)
        }
        Ok(Err(e)) => Err(failed(service_error(&e))),
        Err(_) => Err(failed(format!("no answer within {} s", limit.as_secs()))),
    }
}

/// An rmcp error in words: the server's own message for an MCP error.
pub(crate) fn service_error(e: &ServiceError) -> String {
    match e {
        ServiceError::McpError(data) => data.message.to_string(),
        other => chain(other),
    }
}

/// An error and its causes, which often hold the useful part ("connection
/// refused"). rmcp's wrappers that name Rust types, or hide the HTTP
/// client's causes, are looked through.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(error) = next {
        if let Some(dynamic) = error.downcast_ref::<DynamicTransportError>() {
            next = Some(dynamic.error.as_ref());
            continue;
        }
        if let Some(ServiceError::TransportSend(dynamic)) = error.downcast_ref::<ServiceError>() {
            next = Some(dynamic);
            continue;
        }
        if let Some(StreamableHttpError::Client(client)) =
            error.downcast_ref::<StreamableHttpError<reqwest::Error>>()
        {
            next = Some(client);
            continue;
        }
        let text = error.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}

/// A connection the HTTP client could not open: nothing was sent.
pub(crate) fn unreachable(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(error) = next {
        if let Some(dynamic) = error.downcast_ref::<DynamicTransportError>() {
            next = Some(dynamic.error.as_ref());
            continue;
        }
        if let Some(StreamableHttpError::Client(client)) =
            error.downcast_ref::<StreamableHttpError<reqwest::Error>>()
        {
            return client.is_connect();
        }
        next = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_from_a_missing_variable_names_the_variable() {
        let headers = BTreeMap::from([("X-Team".to_string(), "core".to_string())]);
        let from_env = BTreeMap::from([(
            "Authorization".to_string(),
            "LEV_MCP_TEST_SURELY_UNSET_TOKEN".to_string(),
        )]);
        let Err(e) = http_headers("search", &headers, &from_env) else {
            panic!("a missing variable must fail");
        };
        assert!(e.lasting);
        assert!(
            e.text.contains("LEV_MCP_TEST_SURELY_UNSET_TOKEN"),
            "{}",
            e.text
        );
        assert!(e.text.contains("Authorization") && e.text.contains("search"));
        let ok = http_headers("search", &headers, &BTreeMap::new())
            .ok()
            .unwrap();
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn a_bad_header_name_is_refused() {
        let headers = BTreeMap::from([("bad header".to_string(), "v".to_string())]);
        let Err(e) = http_headers("s", &headers, &BTreeMap::new()) else {
            panic!("a space cannot be in a header name");
        };
        assert!(e.text.contains("`bad header`"), "{}", e.text);
    }
}
