//! `lev mcp --http ADDR`: the same MCP server over streamable HTTP (rmcp's
//! service), for clients that reach servers by URL. Only on a loopback
//! address, and only for requests that carry the token
//! (`Authorization: Bearer <token>`); rmcp checks `Host` too, so a web page
//! cannot reach it through DNS rebinding. Runs until Ctrl-C or SIGTERM.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::context::error;
use super::exit;
use super::mcp::LevMcp;
use crate::paths::Paths;

/// The environment variable a fixed token comes from.
const TOKEN_VAR: &str = "LEV_MCP_TOKEN";
/// A shorter token is too easy to guess.
const MIN_TOKEN_LEN: usize = 16;

type Service = StreamableHttpService<LevMcp, LocalSessionManager>;

pub async fn serve(paths: &Paths, addr: SocketAddr) -> u8 {
    if !addr.ip().is_loopback() {
        error(&format!(
            "lev mcp --http serves only on a loopback address (127.0.0.1, ::1), not {addr}: anyone who reaches it can start and steer runs"
        ));
        return exit::USAGE;
    }
    let token = match token() {
        Ok(t) => t,
        Err(e) => {
            error(&e);
            return exit::USAGE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            error(&format!("lev mcp --http: cannot listen on {addr}: {e}"));
            return exit::FAILED;
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    let stop = CancellationToken::new();
    let paths_for_sessions = paths.clone();
    let service: Service = StreamableHttpService::new(
        move || Ok(LevMcp::new(&paths_for_sessions)),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token()),
    );
    let url = format!("http://{bound}/mcp");
    // What a user needs to connect a client: on standard error, as every
    // message of lev's (nothing else is printed while it serves). Written
    // whole, and a closed standard error does not stop the server.
    let said = format!(
        "lev mcp: MCP over streamable HTTP at {url}\n  every request needs the header  Authorization: Bearer {token}\n  Claude Code:  claude mcp add --transport http lev {url} --header \"Authorization: Bearer {token}\"\n  Ctrl-C stops it.\n"
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), said.as_bytes());
    tracing::info!(%url, "serving MCP over streamable HTTP");
    let token: Arc<str> = token.into();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, service.clone(), token.clone()));
                }
                Err(e) => tracing::warn!("lev mcp --http: accepting a connection failed: {e}"),
            },
            () = shutdown_signal() => break,
        }
    }
    stop.cancel();
    exit::OK
}

/// `LEV_MCP_TOKEN`, or a new random one.
fn token() -> Result<String, String> {
    match std::env::var(TOKEN_VAR) {
        Ok(t) if t.len() >= MIN_TOKEN_LEN && t.chars().all(|c| c.is_ascii_graphic()) => Ok(t),
        Ok(_) => Err(format!(
            "{TOKEN_VAR} must be at least {MIN_TOKEN_LEN} printable characters without spaces"
        )),
        Err(_) => {
            let bytes: [u8; 24] = rand::random();
            Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Serves one connection: each request with the token goes to rmcp's
/// service, any other gets 401.
async fn connection(stream: tokio::net::TcpStream, service: Service, token: Arc<str>) {
    let io = hyper_util::rt::TokioIo::new(stream);
    let handle =
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let service = service.clone();
            let token = token.clone();
            async move {
                if !authorized(request.headers(), &token) {
                    return Ok::<_, Infallible>(unauthorized());
                }
                Ok(service.handle(request).await)
            }
        });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, handle)
        .await
    {
        tracing::debug!("lev mcp --http: a connection ended: {e}");
    }
}

/// Whether `Authorization: Bearer <token>` is there, compared in constant
/// time.
fn authorized(headers: &http::HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn unauthorized() -> http::Response<BoxBody<Bytes, Infallible>> {
    let body = Full::new(Bytes::from_static(
        b"lev mcp: this request needs the header `Authorization: Bearer <token>` (the token lev mcp --http printed, or LEV_MCP_TOKEN)\n",
    ))
    .boxed();
    let mut response = http::Response::new(body);
    *response.status_mut() = http::StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_let_in() {
        let mut h = http::HeaderMap::new();
        assert!(!authorized(&h, "secret-token-0123456789"));
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer secret-token-0123456789"),
        );
        assert!(authorized(&h, "secret-token-0123456789"));
        assert!(!authorized(&h, "secret-token-012345678"));
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Basic secret-token-0123456789"),
        );
        assert!(!authorized(&h, "secret-token-0123456789"));
    }
}
