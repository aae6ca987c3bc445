//! Errors from what a server answered: the provider's own message and kind
//! taken from an error body (and classified: rate limit, overload, quota,
//! other), `Retry-After`, transport failures with their causes, and keys
//! scrubbed from any text a server sent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::Secret;
use crate::llm::LlmError;

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
pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
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
