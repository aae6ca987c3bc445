//! HTTP plumbing shared by the streaming providers: the API key wrapper that
//! never prints, error mapping for non-2xx answers (with `Retry-After`), safe
//! excerpts for messages, and turning a response body into SSE events.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde_json::Value;

use super::LlmError;

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

/// `err` with the key scrubbed from its message, for errors whose text
/// came from a server.
pub fn redact_error(err: LlmError, key: Option<&Secret>) -> LlmError {
    let Some(key) = key else {
        return err;
    };
    match err {
        LlmError::Http {
            provider,
            status,
            message,
            retry_after_ms,
        } => LlmError::Http {
            provider,
            status,
            message: key.redact(&message),
            retry_after_ms,
        },
        LlmError::Connect { provider, message } => LlmError::Connect {
            provider,
            message: key.redact(&message),
        },
        LlmError::Stream { provider, message } => LlmError::Stream {
            provider,
            message: key.redact(&message),
        },
        LlmError::Malformed { provider, message } => LlmError::Malformed {
            provider,
            message: key.redact(&message),
        },
        LlmError::Provider {
            provider,
            kind,
            message,
        } => LlmError::Provider {
            provider,
            kind,
            message: key.redact(&message),
        },
        LlmError::RateLimited {
            provider,
            status,
            message,
            retry_after_ms,
        } => LlmError::RateLimited {
            provider,
            status,
            message: key.redact(&message),
            retry_after_ms,
        },
        LlmError::Overloaded {
            provider,
            status,
            message,
            retry_after_ms,
        } => LlmError::Overloaded {
            provider,
            status,
            message: key.redact(&message),
            retry_after_ms,
        },
        LlmError::Quota {
            provider,
            status,
            message,
        } => LlmError::Quota {
            provider,
            status,
            message: key.redact(&message),
        },
        LlmError::Unsupported { provider, message } => LlmError::Unsupported {
            provider,
            message: key.redact(&message),
        },
        other => other,
    }
}

/// Up to `max` characters of `text` on one line, control characters
/// escaped, so a message can quote what the server sent without flooding a
/// log or a terminal.
pub fn excerpt(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Milliseconds to wait from a `Retry-After` value: delta seconds or an
/// HTTP date (IMF-fixdate, e.g. `Wed, 21 Oct 2015 07:28:00 GMT`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some((secs * 1000.0) as u64);
        }
        return None;
    }
    let at = parse_http_date(value)?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .as_millis()
            .try_into()
            .unwrap_or(u64::MAX),
    )
}

/// IMF-fixdate only (the form RFC 9110 says senders must use). Written here
/// because it is twenty lines and no date crate is otherwise needed.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    // "Wed, 21 Oct 2015 07:28:00 GMT"
    let rest = value.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split_whitespace().collect();
    if parts.len() != 5 || parts[4] != "GMT" {
        return None;
    }
    let day: i64 = parts[0].parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == parts[1])? as i64 + 1;
    let year: i64 = parts[2].parse().ok()?;
    let hms: Vec<i64> = parts[3]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 || !(1..=31).contains(&day) || hms[0] > 23 || hms[1] > 59 || hms[2] > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The error for a non-2xx answer, carrying the body's own message
/// (`{"error": {"message": ..}}` in both OpenAI and Anthropic shapes):
/// 429 as [`LlmError::RateLimited`], unless the body says the quota or
/// credit is used up ([`LlmError::Quota`], permanent); 529 or an
/// `overloaded_error` body as [`LlmError::Overloaded`].
pub fn http_error(
    provider: &str,
    status: u16,
    retry_after: Option<&str>,
    body: &str,
    key: Option<&Secret>,
) -> LlmError {
    let retry_after_ms = retry_after.and_then(|v| parse_retry_after(v, SystemTime::now()));
    let described = error_of(body);
    let kind = described.as_ref().and_then(|d| d.kind.clone());
    let message = described.and_then(|d| d.message).unwrap_or_else(|| {
        if body.trim().is_empty() {
            "(empty body)".to_string()
        } else {
            excerpt(body.trim(), 200)
        }
    });
    let message = match key {
        Some(k) => k.redact(&message),
        None => message,
    };
    let provider = provider.to_string();
    let kind = kind.as_deref().unwrap_or("");
    if is_quota_kind(kind) {
        return LlmError::Quota {
            provider,
            status,
            message,
        };
    }
    if status == 529 || kind.contains("overloaded") {
        return LlmError::Overloaded {
            provider,
            status,
            message,
            retry_after_ms,
        };
    }
    if status == 429 {
        return LlmError::RateLimited {
            provider,
            status,
            message,
            retry_after_ms,
        };
    }
    LlmError::Http {
        provider,
        status,
        message,
        retry_after_ms,
    }
}

/// Whether a provider's error kind (`type` or `code`) says the account's
/// quota or credit is used up, which waiting does not fix (OpenAI's
/// `insufficient_quota`, billing limits).
pub fn is_quota_kind(kind: &str) -> bool {
    let kind = kind.to_ascii_lowercase();
    kind.contains("insufficient_quota") || kind.contains("billing") || kind.contains("credit")
}

/// What an error body says about itself.
struct Described {
    kind: Option<String>,
    message: Option<String>,
}

/// The message and kind of a JSON error body: `error.message` with
/// `error.code` or `error.type` (OpenAI, Anthropic, most compatible
/// servers), a bare string `error`, or a top-level `message`/`detail`
/// (gateways, vLLM).
fn error_of(body: &str) -> Option<Described> {
    let v: Value = serde_json::from_str(body).ok()?;
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(v @ Value::Number(_)) => Some(v.to_string()),
        _ => None,
    };
    let (kind, message) = match v.get("error") {
        Some(Value::String(s)) => (None, Some(s.clone())),
        Some(err) => (
            // `code` names a quota more precisely than `type` in OpenAI's
            // bodies; either may say `insufficient_quota`.
            text(err.get("code"))
                .filter(|c| is_quota_kind(c))
                .or_else(|| text(err.get("type")))
                .or_else(|| text(err.get("code"))),
            text(err.get("message")),
        ),
        None => (
            text(v.get("type")).filter(|t| t != "error"),
            text(v.get("message")).or_else(|| text(v.get("detail"))),
        ),
    };
    if kind.is_none() && message.is_none() {
        return None;
    }
    Some(Described {
        kind,
        message: message.map(|m| excerpt(&m, 300)),
    })
}

/// A transport failure before any answer arrived.
pub fn connect_error(provider: &str, err: &reqwest::Error) -> LlmError {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    LlmError::Connect {
        provider: provider.to_string(),
        message: format!("{kind}: {}", error_chain(err)),
    }
}

/// `err` with its sources, since reqwest's top-level text alone ("error
/// sending request") rarely says what went wrong.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
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
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 07:27:50
        assert_eq!(parse_retry_after("3", now), Some(3000));
        assert_eq!(parse_retry_after(" 0 ", now), Some(0));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(10_000)
        );
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn secret_is_redacted_everywhere() {
        let key = Secret::new("sk-test-1234567890abcdef");
        assert!(!format!("{key:?}").contains("1234567890"));
        let echoed = "Incorrect API key provided: sk-test-123456****cdef.";
        let scrubbed = key.redact(echoed);
        assert!(!scrubbed.contains("sk-test-123456"), "{scrubbed}");
        assert_eq!(key.redact("no key here"), "no key here");
    }

    #[test]
    fn http_error_takes_the_body_message() {
        let e = http_error(
            "openai",
            400,
            None,
            r#"{"error":{"message":"bad model","type":"invalid_request_error"}}"#,
            None,
        );
        assert_eq!(e.to_string(), "openai: HTTP 400: bad model");
        let e = http_error(
            "anthropic",
            529,
            Some("2"),
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            None,
        );
        assert!(matches!(
            e,
            LlmError::Overloaded {
                status: 529,
                retry_after_ms: Some(2000),
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "anthropic: overloaded (HTTP 529): Overloaded, retry after 2000 ms"
        );
        let e = http_error(
            "openai",
            429,
            None,
            r#"{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
            None,
        );
        assert!(matches!(e, LlmError::Quota { .. }), "{e:?}");
        assert!(!e.is_retryable());
        assert!(
            e.to_string().contains("You exceeded your current quota"),
            "{e}"
        );
        let e = http_error(
            "openai",
            429,
            None,
            r#"{"error":{"message":"Slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
            None,
        );
        assert_eq!(e.to_string(), "openai: rate limited (HTTP 429): Slow down");
        assert!(e.is_retryable());
        let e = http_error("vllm", 400, None, r#"{"detail":"bad field"}"#, None);
        assert_eq!(e.to_string(), "vllm: HTTP 400: bad field");
        let e = http_error("x", 502, None, "<html>\nbad gateway</html>", None);
        assert!(e.to_string().contains("<html>\\nbad gateway"), "{e}");
    }

    #[test]
    fn excerpt_is_short_and_single_line() {
        assert_eq!(excerpt("a\nb", 10), "a\\nb");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }
}
