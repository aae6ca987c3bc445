//! Retries and a circuit breaker around any [`Provider`].
//!
//! Retries: a retryable error (`LlmError::is_retryable`: 429, 5xx,
//! overloaded, dropped stream, malformed chunk) is tried again up to
//! `RetrySettings::max_attempts` in all, waiting what `Retry-After` asked
//! for, else exponential backoff with jitter; every wait is capped at
//! `max_delay_ms`. Deltas of a failed attempt have already been sent; a
//! listener sees the retried reply streamed again after a [`RetryNotice`].
//!
//! Breaker, one per endpoint (shared through [`Breakers`]): closed → open
//! after `consecutive_failures` retryable failures in a row → after
//! `cooldown_ms` half-open, letting exactly one probe through → closed when
//! the probe succeeds, open again when it fails. While open, calls fail fast
//! with `LlmError::CircuitOpen`. An error that is not retryable (a 400, a
//! bad key) means the endpoint answered, so it counts as healthy. Time is
//! `tokio::time`, so tests run under a paused clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{
    ChatFuture, ChatRequest, ChatResponse, LlmError, Provider, SharedProvider, StreamDelta,
};
use crate::config::{BreakerSettings, RetrySettings};

/// What a UI shows for an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed {
        consecutive_failures: u32,
    },
    Open {
        retry_in: Duration,
    },
    /// A probe is (or may now be) in flight.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant, failures: u32 },
    HalfOpen { failures: u32, probing: bool },
}

/// The circuit breaker of one endpoint.
#[derive(Debug)]
pub struct Breaker {
    name: String,
    settings: BreakerSettings,
    inner: Mutex<Inner>,
}

/// Leave to make one call. Dropping it without [`Permit::record`] (the
/// call was cancelled) frees the half-open probe slot for someone else.
#[must_use]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    done: bool,
}

impl Permit<'_> {
    /// Reports how the call went.
    pub fn record(mut self, healthy: bool) {
        self.done = true;
        self.breaker.record(healthy);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done && self.probe {
            self.breaker.with(|inner| {
                if let Inner::HalfOpen { failures, .. } = *inner {
                    *inner = Inner::HalfOpen {
                        failures,
                        probing: false,
                    };
                }
            });
        }
    }
}

impl Breaker {
    pub fn new(name: impl Into<String>, settings: BreakerSettings) -> Self {
        Breaker {
            name: name.into(),
            settings,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A poisoned lock only means another thread panicked between two
        // plain assignments; the state is still a valid enum.
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn state(&self) -> BreakerState {
        let now = Instant::now();
        self.with(|inner| match *inner {
            Inner::Closed { failures } => BreakerState::Closed {
                consecutive_failures: failures,
            },
            Inner::Open { until, .. } if until > now => BreakerState::Open {
                retry_in: until - now,
            },
            Inner::Open { .. } | Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        })
    }

    /// Leave to call, or `CircuitOpen` while the breaker is open or its one
    /// half-open probe is still out.
    pub fn acquire(&self) -> Result<Permit<'_>, LlmError> {
        let now = Instant::now();
        let probe = self.with(|inner| match *inner {
            Inner::Closed { .. } => Ok(false),
            Inner::Open { until, failures } if until <= now => {
                *inner = Inner::HalfOpen {
                    failures,
                    probing: true,
                };
                Ok(true)
            }
            Inner::HalfOpen {
                failures,
                probing: false,
            } => {
                *inner = Inner::HalfOpen {
                    failures,
                    probing: true,
                };
                Ok(true)
            }
            Inner::Open { until, failures } => Err((failures, until - now)),
            Inner::HalfOpen { failures, .. } => Err((failures, Duration::ZERO)),
        });
        match probe {
            Ok(probe) => Ok(Permit {
                breaker: self,
                probe,
                done: false,
            }),
            Err((failures, retry_in)) => Err(LlmError::CircuitOpen {
                provider: self.name.clone(),
                failures,
                retry_in_ms: retry_in.as_millis().try_into().unwrap_or(u64::MAX),
            }),
        }
    }

    fn record(&self, healthy: bool) {
        let now = Instant::now();
        let cooldown = Duration::from_millis(self.settings.cooldown_ms);
        let threshold = self.settings.consecutive_failures.max(1);
        self.with(|inner| {
            *inner = match (*inner, healthy) {
                (_, true) => Inner::Closed { failures: 0 },
                (Inner::Closed { failures }, false) if failures + 1 < threshold => Inner::Closed {
                    failures: failures + 1,
                },
                (Inner::Closed { failures }, false)
                | (Inner::HalfOpen { failures, .. }, false)
                | (Inner::Open { failures, .. }, false) => Inner::Open {
                    until: now + cooldown,
                    failures: failures + 1,
                },
            };
        });
        if !healthy && let BreakerState::Open { retry_in } = self.state() {
            tracing::warn!(endpoint = %self.name, ?retry_in, "circuit breaker open");
        }
    }
}

/// Breakers by endpoint name, so every provider talking to one endpoint
/// shares one breaker.
#[derive(Debug, Default)]
pub struct Breakers {
    map: Mutex<HashMap<String, Arc<Breaker>>>,
}

impl Breakers {
    /// The process-wide registry.
    pub fn global() -> &'static Breakers {
        static GLOBAL: OnceLock<Breakers> = OnceLock::new();
        GLOBAL.get_or_init(Breakers::default)
    }

    /// The breaker for `name`, made with `settings` on first use.
    pub fn get(&self, name: &str, settings: &BreakerSettings) -> Arc<Breaker> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| Arc::new(Breaker::new(name, settings.clone())))
            .clone()
    }

    /// Every endpoint's state, for a status view.
    pub fn states(&self) -> Vec<(String, BreakerState)> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = map.iter().map(|(k, b)| (k.clone(), b.state())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Sent before each retry, so a UI can say "retrying in 2 s".
#[derive(Debug, Clone, PartialEq)]
pub struct RetryNotice {
    pub provider: String,
    /// The attempt that failed (1-based).
    pub attempt: u32,
    pub delay: Duration,
    pub error: LlmError,
}

/// A provider with retries and a circuit breaker.
pub struct Resilient {
    inner: SharedProvider,
    retry: RetrySettings,
    breaker: Arc<Breaker>,
    notices: Option<mpsc::UnboundedSender<RetryNotice>>,
}

impl Resilient {
    pub fn new(inner: SharedProvider, retry: RetrySettings, breaker: Arc<Breaker>) -> Self {
        Resilient {
            inner,
            retry,
            breaker,
            notices: None,
        }
    }

    /// Reports every retry to `tx`.
    pub fn with_notices(mut self, tx: mpsc::UnboundedSender<RetryNotice>) -> Self {
        self.notices = Some(tx);
        self
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
        let mut attempt = 1;
        loop {
            let permit = self.breaker.acquire()?;
            let result = self.inner.chat(req, deltas.clone()).await;
            let err = match result {
                Ok(reply) => {
                    permit.record(true);
                    return Ok(reply);
                }
                Err(err) => err,
            };
            let retryable = err.is_retryable();
            permit.record(!retryable);
            if !retryable || attempt >= attempts {
                return Err(err);
            }
            let delay = self.delay_for(attempt, &err);
            tracing::info!(provider = %self.inner.name(), attempt, ?delay, error = %err, "retrying LLM call");
            if let Some(tx) = &self.notices {
                let _ = tx.send(RetryNotice {
                    provider: self.inner.name(),
                    attempt,
                    delay,
                    error: err,
                });
            }
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::llm::RequestMeta;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn settings(n: u32, cooldown_ms: u64) -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: n,
            cooldown_ms,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_then_half_open_probe_closes_it() {
        let b = Breaker::new("e", settings(3, 10_000));
        for _ in 0..2 {
            b.acquire().unwrap().record(false);
        }
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 2
            }
        );
        b.acquire().unwrap().record(false);
        assert_eq!(
            b.state(),
            BreakerState::Open {
                retry_in: Duration::from_secs(10)
            }
        );
        let err = b.acquire().err().unwrap();
        assert!(matches!(
            err,
            LlmError::CircuitOpen {
                failures: 3,
                retry_in_ms: 10_000,
                ..
            }
        ));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let probe = b.acquire().unwrap();
        // Only one probe at a time.
        assert!(matches!(b.acquire(), Err(LlmError::CircuitOpen { .. })));
        probe.record(true);
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_opens_again_and_dropped_probe_frees_the_slot() {
        let b = Breaker::new("e", settings(1, 1000));
        b.acquire().unwrap().record(false);
        tokio::time::advance(Duration::from_millis(1000)).await;
        b.acquire().unwrap().record(false);
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        tokio::time::advance(Duration::from_millis(1000)).await;
        drop(b.acquire().unwrap()); // cancelled probe
        let probe = b.acquire().unwrap();
        probe.record(true);
        assert!(matches!(b.state(), BreakerState::Closed { .. }));
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
                retry_after_ms: Some(2_000),
            },
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        let r = Resilient::new(
            flaky.clone(),
            retry(3),
            Arc::new(Breaker::new("f", settings(10, 1))),
        )
        .with_notices(tx);
        let start = Instant::now();
        let reply = r.chat(&req(), None).await.unwrap();
        assert_eq!(reply.text, "ok");
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
        // Paused clock: elapsed is exactly the sum of the waits.
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        assert_eq!(rx.recv().await.unwrap().delay, Duration::from_secs(2));
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
}
