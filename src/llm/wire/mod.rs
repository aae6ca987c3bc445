//! HTTP plumbing shared by the streaming providers: the API key wrapper that
//! never prints, the HTTP client, sending a request and turning its body into
//! SSE events (or one whole JSON answer), with caps on what is buffered.
//! What a failed answer means is in `wire/errors.rs`.

use std::fmt;
use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde_json::Value;

use super::LlmError;

mod errors;

use errors::error_chain;
pub use errors::{
    connect_error, excerpt, http_error, is_quota_kind, parse_retry_after, redact_error,
};

/// An API key. Its `Debug` never shows the value, and [`Secret::redact`]
/// scrubs it from any text (servers sometimes echo a key in error bodies).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key (and of a long prefix of it,
    /// since OpenAI echoes keys shortened) replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        let key = self.0.trim();
        if key.len() < 4 {
            return text.to_string();
        }
        let mut out = text.replace(key, "[redacted]");
        // OpenAI's "Incorrect API key provided: sk-abc*****wxyz" shows a
        // prefix; scrub any 8+ char prefix that still appears.
        let chars: Vec<char> = key.chars().collect();
        if chars.len() > 8 {
            for n in (8..chars.len()).rev() {
                let prefix: String = chars[..n].iter().collect();
                if out.contains(&prefix) {
                    out = out.replace(&prefix, "[redacted]");
                }
            }
        }
        out
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Longest silence allowed between two reads of a reply before the call
/// fails as a broken stream. Generous, because a reasoning model may think
/// for minutes before its first token and not every server sends pings.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(600);
/// How long to wait for a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP client the providers use: one connection pool per provider.
pub fn http_client(read_timeout: Duration) -> Result<reqwest::Client, LlmError> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(read_timeout)
        .build()
        .map_err(|e| LlmError::Config(format!("cannot build the HTTP client: {e}")))
}

/// Sends `request`, maps a non-2xx answer to an error and returns the
/// response's SSE events; transport failures mid-body become
/// [`LlmError::Stream`], and an event longer than `max_event_bytes`
/// [`LlmError::TooLarge`]. A JSON answer (the whole reply, from a server
/// that does not stream) is one event named `whole`.
pub async fn send_sse(
    provider: &str,
    request: reqwest::RequestBuilder,
    key: Option<&Secret>,
    max_event_bytes: usize,
) -> Result<impl Stream<Item = Result<Event, LlmError>> + use<>, LlmError> {
    let response = request
        .header("accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| connect_error(provider, &e))?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = error_body(response).await;
        return Err(http_error(
            provider,
            status,
            retry_after.as_deref(),
            &body,
            key,
        ));
    }
    let json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if json {
        // A server (or a proxy) that ignores `stream: true` answers with the
        // whole reply at once; it is read as one event of its own.
        let data = whole_body(provider, response, max_event_bytes).await?;
        let event = Event {
            event: "whole".into(),
            data,
            id: String::new(),
            retry: None,
        };
        return Ok(futures::future::Either::Left(futures::stream::iter([Ok(
            event,
        )])));
    }
    Ok(futures::future::Either::Right(decode_sse(
        provider,
        response.bytes_stream(),
        max_event_bytes,
    )))
}

/// A whole (not streamed) JSON answer, within `max` bytes.
async fn whole_body(
    provider: &str,
    mut response: reqwest::Response,
    max: usize,
) -> Result<String, LlmError> {
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                return Err(LlmError::Stream {
                    provider: provider.to_string(),
                    message: error_chain(&e),
                });
            }
        }
        if bytes.len() > max {
            return Err(LlmError::TooLarge {
                provider: provider.to_string(),
                what: "the reply".into(),
                limit: max,
                setting: super::limits::REPLY_SETTING.into(),
            });
        }
    }
    String::from_utf8(bytes).map_err(|e| LlmError::Malformed {
        provider: provider.to_string(),
        message: format!("the reply is not UTF-8: {e}"),
    })
}

/// Bytes of an error answer's body read at most: only its start is quoted,
/// and a hostile server may send gigabytes.
const ERROR_BODY_MAX_BYTES: usize = 64 * 1024;

/// The start of an error answer's body, as text.
async fn error_body(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_MAX_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(ERROR_BODY_MAX_BYTES);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Why a body chunk was not passed on to the SSE parser.
#[derive(Debug)]
enum BodyError {
    Transport(String),
    EventTooLarge,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Transport(m) => f.write_str(m),
            BodyError::EventTooLarge => f.write_str("event too large"),
        }
    }
}

/// Prepares body chunks for the SSE parser: line endings become `\n`
/// (`\r\n` and a lone `\r` are line endings too, and the parser
/// mishandles a `\r\n` split across two chunks or a stream ending in
/// `\r`), and the bytes of the event being received (since the last blank
/// line) are counted, so one endless event is refused before the parser has
/// buffered more than the cap.
struct EventGuard {
    max: usize,
    event: usize,
    line: usize,
    /// The previous chunk ended in `\r`: a `\n` starting this one belongs
    /// to it.
    prev_cr: bool,
}

impl EventGuard {
    /// The chunk with `\n` line endings, or `None` once the current event
    /// is longer than the cap.
    fn pass(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(bytes.len());
        for &b in bytes {
            match b {
                b'\n' if self.prev_cr => self.prev_cr = false,
                b'\n' | b'\r' => {
                    if self.line == 0 {
                        self.event = 0;
                    }
                    self.line = 0;
                    self.prev_cr = b == b'\r';
                    out.push(b'\n');
                }
                _ => {
                    self.line += 1;
                    self.event += 1;
                    self.prev_cr = false;
                    out.push(b);
                }
            }
        }
        (self.event <= self.max).then_some(out)
    }
}

/// A response body (chunks split anywhere) as SSE events. The decoder both
/// providers read replies through; `max_event_bytes` bounds what it buffers.
/// An event the body ends in is dispatched even without its closing blank
/// line.
pub fn decode_sse<S, B, E>(
    provider: &str,
    body: S,
    max_event_bytes: usize,
) -> impl Stream<Item = Result<Event, LlmError>> + use<S, B, E>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: std::error::Error,
{
    let mut guard = EventGuard {
        max: max_event_bytes,
        event: 0,
        line: 0,
        prev_cr: false,
    };
    let checked = body.map(move |chunk| match chunk {
        Ok(bytes) => guard.pass(bytes.as_ref()).ok_or(BodyError::EventTooLarge),
        Err(e) => Err(BodyError::Transport(error_chain(&e))),
    });
    // The parser drops an event the body ends in when its closing blank
    // line never came; servers do send a last `message_stop` or
    // `data: [DONE]` that way. An event whose data was cut mid-line then
    // fails to parse as JSON, so only complete ones count.
    let checked = checked.chain(futures::stream::once(async { Ok(b"\n\n".to_vec()) }));
    let name = provider.to_string();
    checked.eventsource().map(move |item| {
        item.map_err(|e| match e {
            EventStreamError::Transport(BodyError::EventTooLarge) => LlmError::TooLarge {
                provider: name.clone(),
                what: "one server-sent event".into(),
                limit: max_event_bytes,
                setting: super::limits::REPLY_SETTING.into(),
            },
            EventStreamError::Transport(BodyError::Transport(message)) => LlmError::Stream {
                provider: name.clone(),
                message,
            },
            EventStreamError::Utf8(e) => LlmError::Malformed {
                provider: name.clone(),
                message: format!("the stream is not UTF-8: {e}"),
            },
            EventStreamError::Parser(e) => LlmError::Malformed {
                provider: name.clone(),
                message: format!("not a server-sent event stream: {e}"),
            },
        })
    })
}

/// Parses one SSE `data` payload as JSON, or a [`LlmError::Malformed`] that
/// quotes the start of it.
pub fn parse_chunk(provider: &str, data: &str) -> Result<Value, LlmError> {
    serde_json::from_str(data).map_err(|e| LlmError::Malformed {
        provider: provider.to_string(),
        message: format!(
            "stream chunk is not valid JSON ({e}): `{}`",
            excerpt(data, 80)
        ),
    })
}

/// Sends a delta when someone listens; a closed receiver only means nobody
/// watches anymore, which must not fail the call.
pub fn emit(
    deltas: &Option<tokio::sync::mpsc::UnboundedSender<super::StreamDelta>>,
    delta: super::StreamDelta,
) {
    if let Some(tx) = deltas {
        let _ = tx.send(delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_everywhere() {
        let key = Secret::new("sk-test-1234567890abcdef");
        assert!(!format!("{key:?}").contains("1234567890"));
        let echoed = "Incorrect API key provided: sk-test-123456****cdef.";
        let scrubbed = key.redact(echoed);
        assert!(!scrubbed.contains("sk-test-123456"), "{scrubbed}");
        assert_eq!(key.redact("no key here"), "no key here");
    }
}
