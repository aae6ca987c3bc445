//! Retries and a circuit breaker around any [`Provider`].
//!
//! Retries: a retryable error (`LlmError::is_retryable`: 429, 5xx,
//! overloaded, dropped stream, malformed chunk) is tried again up to
//! `RetrySettings::max_attempts` in all, waiting what `Retry-After` asked
//! for, else exponential backoff with jitter; every wait is capped at
//! `max_delay_ms`. Deltas of a failed attempt have already been sent; a
//! listener sees a `StreamDelta::Retry` ([`RetryNotice`]) and then the
//! retried reply streamed again.
//!
//! Breaker, one per endpoint (shared through [`Breakers`], see
//! `llm/breaker.rs`): while open, calls fail fast with
//! `LlmError::CircuitOpen`, which says how many requests the call had sent
//! before it was refused (none: the endpoint was not tried, and a caller
//! may wait for the half-open probe instead of counting a failure). An error that is not retryable (a 400, a bad
//! key) means the endpoint answered, so it counts as healthy. Each change
//! of the breaker's phase during a call goes to the call's listener as a
//! `StreamDelta::Breaker`, for the engine to journal. Time is
//! `tokio::time`, so tests run under a paused clock.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

pub use super::breaker::{
    Breaker, BreakerChange, BreakerPhase, BreakerState, Breakers, Permit, endpoint_label,
};
use super::{
    ChatFuture, ChatRequest, ChatResponse, LlmError, Provider, SharedProvider, StreamDelta, wire,
};
use crate::config::RetrySettings;

/// Sent before each retry, so a UI can say "retrying in 2 s".
#[derive(Debug, Clone, PartialEq)]
pub struct RetryNotice {
    pub provider: String,
    /// The attempt that failed (1-based), of `tries` allowed.
    pub attempt: u32,
    pub tries: u32,
    pub delay: Duration,
    pub error: LlmError,
}

/// A provider with retries and a circuit breaker.
pub struct Resilient {
    inner: SharedProvider,
    retry: RetrySettings,
    breaker: Arc<Breaker>,
}

impl Resilient {
    pub fn new(inner: SharedProvider, retry: RetrySettings, breaker: Arc<Breaker>) -> Self {
        Resilient {
            inner,
            retry,
            breaker,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.breaker.state()
    }

    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }

    /// The wait after failed attempt `attempt` (1-based).
    fn delay_for(&self, attempt: u32, err: &LlmError) -> Duration {
        let max = self.retry.max_delay_ms;
        let asked = match err {
            LlmError::RateLimited { retry_after_ms, .. }
            | LlmError::Overloaded { retry_after_ms, .. }
            | LlmError::Http { retry_after_ms, .. } => *retry_after_ms,
            _ => None,
        };
        let ms = match asked {
            Some(ms) => ms.min(max),
            None => {
                let exp = self
                    .retry
                    .initial_delay_ms
                    .saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
                    .min(max);
                // "Equal jitter": half fixed, half random, so many clients
                // that failed together do not come back together.
                let half = exp / 2;
                half + if exp > half {
                    rand::random_range(0..=exp - half)
                } else {
                    0
                }
            }
        };
        Duration::from_millis(ms)
    }

    async fn run(
        &self,
        req: &ChatRequest,
        deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> Result<ChatResponse, LlmError> {
        let attempts = self.retry.max_attempts.max(1);
        let mut attempt: u32 = 1;
        let report = |change: Option<BreakerChange>| {
            if let Some(change) = change {
                wire::emit(&deltas, StreamDelta::Breaker(change));
            }
        };
        loop {
            let mut permit = match self.breaker.acquire() {
                Ok(permit) => permit,
                // Say how many requests this call had sent: a refusal after
                // real failures is a failed call, one before any is not.
                Err(LlmError::CircuitOpen {
                    provider,
                    failures,
                    retry_in_ms,
                    ..
                }) => {
                    return Err(LlmError::CircuitOpen {
                        provider,
                        failures,
                        retry_in_ms,
                        sent: attempt.saturating_sub(1),
                    });
                }
                Err(err) => return Err(err),
            };
            report(permit.take_change());
            let result = self.inner.chat(req, deltas.clone()).await;
            let err = match result {
                Ok(reply) => {
                    report(permit.record(true));
                    return Ok(reply);
                }
                Err(err) => err,
            };
            let retryable = err.is_retryable();
            report(permit.record_error(&err));
            if !retryable || attempt >= attempts {
                return Err(err);
            }
            let delay = self.delay_for(attempt, &err);
            tracing::info!(provider = %self.inner.name(), attempt, ?delay, error = %err, "retrying LLM call");
            wire::emit(
                &deltas,
                StreamDelta::Retry(RetryNotice {
                    provider: self.inner.name(),
                    attempt,
                    tries: attempts,
                    delay,
                    error: err,
                }),
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

impl Provider for Resilient {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
        deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> ChatFuture<'a> {
        Box::pin(self.run(req, deltas))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BreakerSettings;
    use crate::llm::RequestMeta;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::time::Instant;

    fn settings(n: u32, cooldown_ms: u64) -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: n,
            cooldown_ms,
        }
    }

    /// Fails `fail_first` times with `err`, then answers.
    struct Flaky {
        calls: AtomicU32,
        fail_first: u32,
        err: LlmError,
    }

    impl Provider for Flaky {
        fn name(&self) -> String {
            "flaky".into()
        }
        fn chat<'a>(
            &'a self,
            _req: &'a ChatRequest,
            _deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
        ) -> ChatFuture<'a> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let result = if n < self.fail_first {
                Err(self.err.clone())
            } else {
                Ok(ChatResponse {
                    text: "ok".into(),
                    tool_calls: vec![],
                    usage: Default::default(),
                    stop_reason: None,
                    refusal: None,
                    model: "m".into(),
                })
            };
            Box::pin(async move { result })
        }
    }

    fn req() -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            system: None,
            messages: vec![],
            tools: vec![].into(),
            temperature: None,
            max_tokens: None,
            meta: RequestMeta::default(),
        }
    }

    fn retry(max_attempts: u32) -> RetrySettings {
        RetrySettings {
            max_attempts,
            initial_delay_ms: 100,
            max_delay_ms: 5_000,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_with_backoff_and_honours_retry_after() {
        let flaky = Arc::new(Flaky {
            calls: AtomicU32::new(0),
            fail_first: 2,
            err: LlmError::RateLimited {
                provider: "flaky".into(),
                status: 429,
                message: "slow down".into(),
                retry_after_ms: Some(2_000),
            },
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        let r = Resilient::new(
            flaky.clone(),
            retry(3),
            Arc::new(Breaker::new("f", settings(10, 1))),
        );
        let start = Instant::now();
        let reply = r.chat(&req(), Some(tx)).await.unwrap();
        assert_eq!(reply.text, "ok");
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
        // Paused clock: elapsed is exactly the sum of the waits.
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        let notices: Vec<RetryNotice> = std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|d| match d {
                StreamDelta::Retry(n) => Some(n),
                _ => None,
            })
            .collect();
        assert_eq!(notices.len(), 2);
        assert_eq!(notices[0].delay, Duration::from_secs(2));
        assert_eq!((notices[1].attempt, notices[1].tries), (2, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts_and_skips_non_retryable() {
        let flaky = Arc::new(Flaky {
            calls: AtomicU32::new(0),
            fail_first: 10,
            err: LlmError::Stream {
                provider: "flaky".into(),
                message: "eof".into(),
            },
        });
        let r = Resilient::new(
            flaky.clone(),
            retry(3),
            Arc::new(Breaker::new("f", settings(10, 1))),
        );
        let start = Instant::now();
        assert!(matches!(
            r.chat(&req(), None).await,
            Err(LlmError::Stream { .. })
        ));
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
        // Backoff 100 then 200 ms, each jittered into its upper half.
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(150) && waited <= Duration::from_millis(300),
            "{waited:?}"
        );

        let bad = Arc::new(Flaky {
            calls: AtomicU32::new(0),
            fail_first: 10,
            err: LlmError::Http {
                provider: "flaky".into(),
                status: 400,
                message: "bad".into(),
                retry_after_ms: None,
            },
        });
        let r = Resilient::new(
            bad.clone(),
            retry(3),
            Arc::new(Breaker::new("g", settings(1, 1))),
        );
        assert!(r.chat(&req(), None).await.is_err());
        assert_eq!(bad.calls.load(Ordering::SeqCst), 1);
        // A 400 is an answer: the endpoint is healthy.
        assert!(matches!(
            r.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn open_breaker_fails_fast_without_calling() {
        let flaky = Arc::new(Flaky {
            calls: AtomicU32::new(0),
            fail_first: 2,
            err: LlmError::Connect {
                provider: "flaky".into(),
                message: "refused".into(),
            },
        });
        let r = Resilient::new(
            flaky.clone(),
            retry(5),
            Arc::new(Breaker::new("h", settings(2, 60_000))),
        );
        let err = r.chat(&req(), None).await.err().unwrap();
        assert!(
            matches!(err, LlmError::CircuitOpen { failures: 2, .. }),
            "{err}"
        );
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(r.chat(&req(), None).await.unwrap().text, "ok");
        assert!(matches!(r.state(), BreakerState::Closed { .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_says_whether_the_call_sent_anything() {
        let flaky = Arc::new(Flaky {
            calls: AtomicU32::new(0),
            fail_first: 3,
            err: LlmError::Connect {
                provider: "flaky".into(),
                message: "refused".into(),
            },
        });
        let r = Resilient::new(
            flaky.clone(),
            retry(5),
            Arc::new(Breaker::new("s", settings(2, 1_000))),
        );
        // Two real failures opened the breaker mid-call: a failed call.
        let err = r.chat(&req(), None).await.err().unwrap();
        assert!(
            matches!(err, LlmError::CircuitOpen { sent: 2, .. }),
            "{err}"
        );
        assert_eq!(err.refused_before_sending(), None);
        // Refused before sending: nothing was tried; the wait is the cooldown.
        let err = r.chat(&req(), None).await.err().unwrap();
        assert!(
            matches!(err, LlmError::CircuitOpen { sent: 0, .. }),
            "{err}"
        );
        let wait = err.refused_before_sending().unwrap();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 2);
        // The failed probe is a real request: the refusal after it counts it.
        tokio::time::advance(wait).await;
        let err = r.chat(&req(), None).await.err().unwrap();
        assert!(
            matches!(err, LlmError::CircuitOpen { sent: 1, .. }),
            "{err}"
        );
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_changes_reach_the_listener_in_order() {
        let flaky = Arc::new(Flaky {
            calls: AtomicU32::new(0),
            fail_first: 2,
            err: LlmError::Http {
                provider: "flaky".into(),
                status: 500,
                message: "boom".into(),
                retry_after_ms: None,
            },
        });
        let r = Resilient::new(
            flaky.clone(),
            retry(2),
            Arc::new(Breaker::new("i", settings(2, 1_000))),
        );
        let (tx, mut rx) = mpsc::unbounded_channel();
        assert!(r.chat(&req(), Some(tx)).await.is_err());
        let phases = |rx: &mut mpsc::UnboundedReceiver<StreamDelta>| {
            let mut out = Vec::new();
            while let Ok(d) = rx.try_recv() {
                if let StreamDelta::Breaker(c) = d {
                    out.push((c.endpoint, c.phase));
                }
            }
            out
        };
        assert_eq!(phases(&mut rx), vec![("i".to_string(), BreakerPhase::Open)]);
        // Open: fails fast and reports nothing new.
        let (tx, mut rx) = mpsc::unbounded_channel();
        assert!(matches!(
            r.chat(&req(), Some(tx)).await,
            Err(LlmError::CircuitOpen { .. })
        ));
        assert_eq!(phases(&mut rx), vec![]);
        tokio::time::advance(Duration::from_secs(1)).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        assert_eq!(r.chat(&req(), Some(tx)).await.unwrap().text, "ok");
        assert_eq!(
            phases(&mut rx),
            vec![
                ("i".to_string(), BreakerPhase::HalfOpen),
                ("i".to_string(), BreakerPhase::Closed)
            ]
        );
    }
}
