//! The circuit breaker of an LLM endpoint, and the registry that shares one
//! breaker among every provider talking to the same endpoint.
//!
//! Closed → open after `consecutive_failures` retryable failures in a row →
//! after `cooldown_ms` half-open, letting exactly one probe through → closed
//! when the probe succeeds, open again when it fails. While open, calls fail
//! fast with `LlmError::CircuitOpen`. Every change of phase is handed back
//! to the caller as a [`BreakerChange`] (this module knows no journal; the
//! engine records the changes it is given). Time is `tokio::time`, so tests
//! run under a paused clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use super::LlmError;
use crate::config::BreakerSettings;

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

/// The phase a breaker moved into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerPhase {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerPhase {
    /// The name stored in the journal (`closed`, `open`, `half_open`), the
    /// same words swarm slot breakers use.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerPhase::Closed => "closed",
            BreakerPhase::Open => "open",
            BreakerPhase::HalfOpen => "half_open",
        }
    }
}

/// A breaker changed phase during a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerChange {
    /// The endpoint (`openai@http://host/v1`), never with credentials.
    pub endpoint: String,
    pub phase: BreakerPhase,
    /// Failures in a row when it changed.
    pub failures: u32,
    /// Why, for people: the failure that opened it, "cooldown over", ...
    pub reason: String,
    /// While open: how long calls fail fast.
    pub retry_in: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant, failures: u32 },
    HalfOpen { failures: u32, probing: bool },
}

impl Inner {
    fn phase(self) -> BreakerPhase {
        match self {
            Inner::Closed { .. } => BreakerPhase::Closed,
            Inner::Open { .. } => BreakerPhase::Open,
            Inner::HalfOpen { .. } => BreakerPhase::HalfOpen,
        }
    }
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
    /// Taking this permit moved the breaker from open to half-open.
    opened_probe: Option<BreakerChange>,
}

impl Permit<'_> {
    /// The change taking this permit made (open → half-open), once.
    pub fn take_change(&mut self) -> Option<BreakerChange> {
        self.opened_probe.take()
    }

    /// Reports how the call went; returns the change it caused, if any.
    pub fn record(mut self, healthy: bool) -> Option<BreakerChange> {
        self.done = true;
        self.breaker.record(healthy, None)
    }

    /// Reports a failed call: healthy when the error is an answer (a 400,
    /// a bad key), a failure when it is retryable.
    pub fn record_error(mut self, err: &LlmError) -> Option<BreakerChange> {
        self.done = true;
        self.breaker.record(!err.is_retryable(), Some(err))
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
            name: endpoint_label(&name.into()),
            settings,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    /// The endpoint this breaker guards.
    pub fn name(&self) -> &str {
        &self.name
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

    fn change(
        &self,
        phase: BreakerPhase,
        failures: u32,
        reason: String,
        retry_in: Option<Duration>,
    ) -> BreakerChange {
        BreakerChange {
            endpoint: self.name.clone(),
            phase,
            failures,
            reason,
            retry_in,
        }
    }

    /// Leave to call, or `CircuitOpen` while the breaker is open or its one
    /// half-open probe is still out.
    pub fn acquire(&self) -> Result<Permit<'_>, LlmError> {
        let now = Instant::now();
        let taken = self.with(|inner| match *inner {
            Inner::Closed { .. } => Ok((false, None)),
            Inner::Open { until, failures } if until <= now => {
                *inner = Inner::HalfOpen {
                    failures,
                    probing: true,
                };
                Ok((true, Some(failures)))
            }
            Inner::HalfOpen {
                failures,
                probing: false,
            } => {
                *inner = Inner::HalfOpen {
                    failures,
                    probing: true,
                };
                Ok((true, None))
            }
            Inner::Open { until, failures } => Err((failures, until - now)),
            Inner::HalfOpen { failures, .. } => Err((failures, Duration::ZERO)),
        });
        match taken {
            Ok((probe, half_open_after)) => Ok(Permit {
                breaker: self,
                probe,
                done: false,
                opened_probe: half_open_after.map(|failures| {
                    self.change(
                        BreakerPhase::HalfOpen,
                        failures,
                        "cooldown over; one probe request goes through".into(),
                        None,
                    )
                }),
            }),
            Err((failures, retry_in)) => Err(LlmError::CircuitOpen {
                provider: self.name.clone(),
                failures,
                retry_in_ms: retry_in.as_millis().try_into().unwrap_or(u64::MAX),
                sent: 0,
            }),
        }
    }

    fn record(&self, healthy: bool, cause: Option<&LlmError>) -> Option<BreakerChange> {
        let now = Instant::now();
        let cooldown = Duration::from_millis(self.settings.cooldown_ms);
        let threshold = self.settings.consecutive_failures.max(1);
        let (before, after) = self.with(|inner| {
            let before = *inner;
            *inner = match (before, healthy) {
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
            (before, *inner)
        });
        if before.phase() == after.phase() {
            return None;
        }
        let cause = cause.map_or_else(|| "a failed call".to_string(), ToString::to_string);
        let change = match after {
            Inner::Closed { .. } => {
                let why = match before {
                    Inner::HalfOpen { .. } => "the probe request succeeded",
                    _ => "a request succeeded",
                };
                self.change(BreakerPhase::Closed, 0, why.into(), None)
            }
            Inner::Open { failures, .. } => {
                let why = match before {
                    Inner::HalfOpen { .. } => format!("the probe request failed: {cause}"),
                    _ => format!("{failures} failures in a row; last: {cause}"),
                };
                tracing::warn!(endpoint = %self.name, ?cooldown, "circuit breaker open");
                self.change(BreakerPhase::Open, failures, why, Some(cooldown))
            }
            // `record` never moves into half-open; `acquire` does.
            Inner::HalfOpen { .. } => return None,
        };
        Some(change)
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
        let name = endpoint_label(name);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.clone())
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

/// An endpoint name fit to show and journal: a URL in it loses its
/// `user:password@` part and its query (where some proxies take keys).
pub fn endpoint_label(name: &str) -> String {
    let Some(scheme_end) = name.find("://") else {
        return name.to_string();
    };
    let (head, rest) = name.split_at(scheme_end + 3);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{head}{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(b.acquire().unwrap().record(false), None);
        }
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 2
            }
        );
        let opened = b.acquire().unwrap().record(false).unwrap();
        assert_eq!(opened.phase, BreakerPhase::Open);
        assert_eq!(opened.failures, 3);
        assert_eq!(opened.retry_in, Some(Duration::from_secs(10)));
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
        let mut probe = b.acquire().unwrap();
        assert_eq!(
            probe.take_change().map(|c| c.phase),
            Some(BreakerPhase::HalfOpen)
        );
        assert_eq!(probe.take_change(), None);
        // Only one probe at a time.
        assert!(matches!(b.acquire(), Err(LlmError::CircuitOpen { .. })));
        let closed = probe.record(true).unwrap();
        assert_eq!(closed.phase, BreakerPhase::Closed);
        assert!(closed.reason.contains("probe"), "{}", closed.reason);
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
        let err = LlmError::Connect {
            provider: "e".into(),
            message: "refused".into(),
        };
        let opened = b.acquire().unwrap().record_error(&err).unwrap();
        assert!(opened.reason.contains("refused"), "{}", opened.reason);
        tokio::time::advance(Duration::from_millis(1000)).await;
        let reopened = b.acquire().unwrap().record(false).unwrap();
        assert_eq!(reopened.phase, BreakerPhase::Open);
        assert!(reopened.reason.contains("probe"), "{}", reopened.reason);
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        tokio::time::advance(Duration::from_millis(1000)).await;
        drop(b.acquire().unwrap()); // cancelled probe
        let mut probe = b.acquire().unwrap();
        // The second probe does not report half-open again.
        assert_eq!(probe.take_change(), None);
        probe.record(true);
        assert!(matches!(b.state(), BreakerState::Closed { .. }));
    }

    #[test]
    fn a_400_is_an_answer_and_changes_nothing() {
        let b = Breaker::new("e", settings(1, 1000));
        let err = LlmError::Http {
            provider: "e".into(),
            status: 400,
            message: "bad".into(),
            retry_after_ms: None,
        };
        assert_eq!(b.acquire().unwrap().record_error(&err), None);
        assert!(matches!(b.state(), BreakerState::Closed { .. }));
    }

    #[test]
    fn endpoint_labels_drop_credentials_and_queries() {
        assert_eq!(
            endpoint_label("openai@https://user:sk-secret@api.example.com/v1?key=k2"),
            "openai@https://api.example.com/v1"
        );
        assert_eq!(
            endpoint_label("ollama@http://127.0.0.1:11434/v1"),
            "ollama@http://127.0.0.1:11434/v1"
        );
        assert_eq!(endpoint_label("scripted"), "scripted");
        let b = Breakers::default().get("x@http://a:b@h/v1", &settings(1, 1));
        assert_eq!(b.name(), "x@http://h/v1");
    }
}
