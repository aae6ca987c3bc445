//! Providers by profile. A mode may name a provider (`model.provider: NAME`
//! in the mode file → `providers.NAME` in the config); it is built on first
//! use and kept for the rest of the run. The configured fallback provider
//! takes a request when the primary fails after its retries, or fails fast
//! because its breaker is open; it has its own breaker (one per endpoint,
//! like every provider).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::breaker::endpoint_label;
use super::select::{build_from_settings, build_named_provider};
use super::{ChatFuture, ChatRequest, LlmError, Provider, SharedProvider, StreamDelta};
use crate::config::Config;

/// Reads an environment variable (the process environment, or a test's map).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The provider a step talks to, and the model its profile names.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub provider: SharedProvider,
    /// The named provider's `model`, used when the step and mode name none.
    pub model: Option<String>,
}

/// A primary provider with a fallback for when it cannot answer.
pub struct Fallback {
    primary: SharedProvider,
    fallback: SharedProvider,
    /// Model asked of the fallback; empty lets its client use its default.
    model: String,
}

impl Fallback {
    pub fn new(primary: SharedProvider, fallback: SharedProvider, model: Option<String>) -> Self {
        Fallback {
            primary,
            fallback,
            model: model.unwrap_or_default(),
        }
    }

    /// Whether an error of the primary (after its own retries) sends the
    /// request to the fallback: the endpoint is unwell, its breaker is
    /// open, or its account is out of quota (which retrying there cannot
    /// fix, but another endpoint can). An answer such as a 400 would be the
    /// same at the fallback.
    pub fn falls_back_on(err: &LlmError) -> bool {
        err.is_retryable() || matches!(err, LlmError::CircuitOpen { .. } | LlmError::Quota { .. })
    }

    async fn run(
        &self,
        req: &ChatRequest,
        deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> Result<super::ChatResponse, LlmError> {
        let err = match self.primary.chat(req, deltas.clone()).await {
            Ok(reply) => return Ok(reply),
            Err(err) if Self::falls_back_on(&err) => err,
            Err(err) => return Err(err),
        };
        tracing::warn!(
            primary = %self.primary.name(),
            fallback = %self.fallback.name(),
            error = %err,
            "LLM request goes to the fallback provider"
        );
        let mut req = req.clone();
        req.model = self.model.clone();
        let fallback_err = match self.fallback.chat(&req, deltas).await {
            Ok(reply) => return Ok(reply),
            Err(e) => e,
        };
        match (
            err.refused_before_sending(),
            fallback_err.refused_before_sending(),
        ) {
            // Neither endpoint was tried: the caller may wait for the breaker
            // that lets a request through first, as it would without a fallback.
            (Some(primary_in), Some(fallback_in)) => Err(if fallback_in < primary_in {
                fallback_err
            } else {
                err
            }),
            _ => Err(LlmError::Provider {
                provider: self.name(),
                kind: "fallback_failed".into(),
                message: format!("{err}; then the fallback failed too: {fallback_err}"),
            }),
        }
    }
}

impl Provider for Fallback {
    fn name(&self) -> String {
        format!(
            "{} (fallback {})",
            self.primary.name(),
            self.fallback.name()
        )
    }

    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
        deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> ChatFuture<'a> {
        Box::pin(self.run(req, deltas))
    }

    /// Either endpoint may have answered: priced only when both price it
    /// (a missing price is better said once too often than hidden).
    fn knows_price(&self, model: &str) -> bool {
        self.primary.knows_price(model) && self.fallback.knows_price(model)
    }
}

/// The providers of one engine: named ones built on first use, and the
/// fallback. The default provider stays with the engine's dependencies
/// (`EngineDeps::provider`), so this is empty unless a config says more.
#[derive(Default)]
pub struct Profiles {
    config: Option<Config>,
    env: Option<EnvLookup>,
    /// The fallback and its model, or why it cannot be built.
    fallback: Option<Result<(SharedProvider, Option<String>), String>>,
    named: Mutex<BTreeMap<String, Result<Resolved, String>>>,
}

impl std::fmt::Debug for Profiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let named = self.config.as_ref().map(|c| c.providers.len()).unwrap_or(0);
        f.debug_struct("Profiles")
            .field("named", &named)
            .field(
                "fallback",
                &self
                    .fallback
                    .as_ref()
                    .map(|f| f.as_ref().map(|(p, _)| p.name())),
            )
            .finish()
    }
}

impl Profiles {
    /// The config's named providers and fallback, keys from the process
    /// environment.
    pub fn from_config(config: &Config) -> Profiles {
        Profiles::with_env(config, Arc::new(|k: &str| std::env::var(k).ok()))
    }

    /// [`Profiles::from_config`] with the environment as a lookup function.
    pub fn with_env(config: &Config, env: EnvLookup) -> Profiles {
        let fallback = config.fallback.as_ref().map(|settings| {
            build_from_settings(config, settings, &*env)
                .map(|p| (p, settings.model.clone()))
                .map_err(|e| e.to_string())
        });
        Profiles {
            config: Some(config.clone()),
            env: Some(env),
            fallback,
            named: Mutex::new(BTreeMap::new()),
        }
    }

    /// Why the configured fallback cannot be used (say so at startup: runs
    /// go on without it).
    pub fn fallback_problem(&self) -> Option<&str> {
        match &self.fallback {
            Some(Err(why)) => Some(why),
            _ => None,
        }
    }

    /// The provider for a mode naming `profile` (or none: `default`), with
    /// the fallback behind it when one is configured.
    pub fn resolve(
        &self,
        profile: Option<&str>,
        default: &Result<SharedProvider, String>,
    ) -> Result<Resolved, String> {
        let primary = match profile {
            None => Resolved {
                provider: default.clone()?,
                model: None,
            },
            Some(name) => self.named(name)?,
        };
        Ok(self.behind_fallback(primary))
    }

    /// The config's `judge:`, when it names one.
    pub fn judge(&self) -> Option<&crate::config::JudgeSettings> {
        self.config.as_ref()?.judge.as_ref()
    }

    /// The `model` configured for the provider named `profile`, read from
    /// the config without building anything (a replayed step needs the
    /// model for its request fingerprint, not a client).
    pub fn model_of(&self, profile: &str) -> Option<String> {
        self.config
            .as_ref()?
            .providers
            .get(profile)
            .and_then(|s| s.model.clone())
    }

    fn named(&self, name: &str) -> Result<Resolved, String> {
        let mut built = self.named.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = built.get(name) {
            return r.clone();
        }
        let result = match (&self.config, &self.env) {
            (Some(config), Some(env)) => build_named_provider(config, name, &**env)
                .map(|provider| Resolved {
                    provider,
                    model: config.providers.get(name).and_then(|s| s.model.clone()),
                })
                .map_err(|e| e.to_string()),
            _ => Err(format!(
                "no provider named `{name}`: no providers are configured (add `providers:` to lev.yaml)"
            )),
        };
        built.insert(name.to_string(), result.clone());
        result
    }

    fn behind_fallback(&self, primary: Resolved) -> Resolved {
        let Some(Ok((fallback, model))) = &self.fallback else {
            return primary;
        };
        // A fallback to the same endpoint would only hit the same breaker.
        if endpoint_label(&fallback.name()) == endpoint_label(&primary.provider.name()) {
            return primary;
        }
        Resolved {
            provider: Arc::new(Fallback::new(
                primary.provider,
                fallback.clone(),
                model.clone(),
            )),
            model: primary.model,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BreakerSettings, ProviderKind, ProviderSettings, RetrySettings};
    use crate::llm::resilient::{Breaker, Resilient};
    use crate::llm::{BreakerPhase, ChatResponse, RequestMeta};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Answers `reply_model`, or fails with `err` every time.
    struct Endpoint {
        name: &'static str,
        calls: AtomicU32,
        err: Option<LlmError>,
        /// Models it was asked for.
        asked: Mutex<Vec<String>>,
    }

    impl Endpoint {
        fn new(name: &'static str, err: Option<LlmError>) -> Arc<Endpoint> {
            Arc::new(Endpoint {
                name,
                calls: AtomicU32::new(0),
                err,
                asked: Mutex::new(Vec::new()),
            })
        }
    }

    impl Provider for Endpoint {
        fn name(&self) -> String {
            self.name.into()
        }
        fn chat<'a>(
            &'a self,
            req: &'a ChatRequest,
            _deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
        ) -> ChatFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.asked.lock().unwrap().push(req.model.clone());
            let result = match &self.err {
                Some(e) => Err(e.clone()),
                None => Ok(ChatResponse {
                    text: format!("from {}", self.name),
                    tool_calls: vec![],
                    usage: Default::default(),
                    stop_reason: None,
                    refusal: None,
                    model: if req.model.is_empty() {
                        format!("{}-default", self.name)
                    } else {
                        req.model.clone()
                    },
                }),
            };
            Box::pin(async move { result })
        }
    }

    fn http(status: u16) -> LlmError {
        LlmError::Http {
            provider: "p".into(),
            status,
            message: "boom".into(),
            retry_after_ms: None,
        }
    }

    fn req() -> ChatRequest {
        ChatRequest {
            model: "primary-model".into(),
            system: None,
            messages: vec![],
            tools: vec![].into(),
            temperature: None,
            max_tokens: None,
            meta: RequestMeta::default(),
        }
    }

    fn resilient(inner: Arc<Endpoint>, failures: u32) -> SharedProvider {
        let breaker = Arc::new(Breaker::new(
            inner.name,
            BreakerSettings {
                consecutive_failures: failures,
                cooldown_ms: 60_000,
            },
        ));
        let retry = RetrySettings {
            max_attempts: 2,
            initial_delay_ms: 10,
            max_delay_ms: 10,
        };
        Arc::new(Resilient::new(inner, retry, breaker))
    }

    fn breaker_phases(
        rx: &mut mpsc::UnboundedReceiver<StreamDelta>,
    ) -> Vec<(String, BreakerPhase)> {
        let mut out = Vec::new();
        while let Ok(d) = rx.try_recv() {
            if let StreamDelta::Breaker(c) = d {
                out.push((c.endpoint, c.phase));
            }
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn failing_primary_opens_its_breaker_and_the_fallback_answers() {
        let primary = Endpoint::new("primary", Some(http(500)));
        let backup = Endpoint::new("backup", None);
        let f = Fallback::new(
            resilient(primary.clone(), 2),
            resilient(backup.clone(), 2),
            Some("backup-model".into()),
        );
        let (tx, mut rx) = mpsc::unbounded_channel();
        let reply = f.chat(&req(), Some(tx)).await.unwrap();
        assert_eq!(reply.text, "from backup");
        assert_eq!(reply.model, "backup-model");
        // Both attempts of the primary failed, which opened its breaker.
        assert_eq!(primary.calls.load(Ordering::SeqCst), 2);
        assert_eq!(
            breaker_phases(&mut rx),
            vec![("primary".to_string(), BreakerPhase::Open)]
        );
        // Open: the primary is not asked again; the fallback answers.
        for _ in 0..3 {
            let (tx, mut rx) = mpsc::unbounded_channel();
            assert_eq!(
                f.chat(&req(), Some(tx)).await.unwrap().model,
                "backup-model"
            );
            assert_eq!(breaker_phases(&mut rx), vec![]);
        }
        assert_eq!(primary.calls.load(Ordering::SeqCst), 2);
        assert_eq!(backup.calls.load(Ordering::SeqCst), 4);
        assert_eq!(
            *backup.asked.lock().unwrap(),
            vec!["backup-model".to_string(); 4]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_from_the_primary_is_not_retried_elsewhere() {
        let primary = Endpoint::new("primary", Some(http(400)));
        let backup = Endpoint::new("backup", None);
        let f = Fallback::new(resilient(primary.clone(), 2), backup.clone(), None);
        let err = f.chat(&req(), None).await.unwrap_err();
        assert!(matches!(err, LlmError::Http { status: 400, .. }), "{err}");
        assert_eq!(backup.calls.load(Ordering::SeqCst), 0);

        // Both failing: the error names both.
        let down = Endpoint::new("down", Some(http(503)));
        let f = Fallback::new(
            resilient(Endpoint::new("primary2", Some(http(502))), 5),
            down,
            None,
        );
        let err = f.chat(&req(), None).await.unwrap_err().to_string();
        assert!(err.contains("502") && err.contains("503"), "{err}");
        // The fallback's own model default applies when none is configured.
        let f = Fallback::new(
            resilient(Endpoint::new("primary3", Some(http(500))), 5),
            Endpoint::new("b", None),
            None,
        );
        assert_eq!(f.chat(&req(), None).await.unwrap().model, "b-default");
    }

    #[tokio::test(start_paused = true)]
    async fn when_both_breakers_refuse_the_refusal_that_ends_first_is_passed_on() {
        let primary = Endpoint::new("primary", Some(http(500)));
        let backup = Endpoint::new("backup", Some(http(503)));
        let f = Fallback::new(
            resilient(primary.clone(), 2),
            resilient(backup.clone(), 2),
            None,
        );
        // Both tried and failed (each opened its breaker): a real failure.
        let err = f.chat(&req(), None).await.unwrap_err();
        assert!(
            matches!(&err, LlmError::Provider { kind, .. } if kind == "fallback_failed"),
            "{err}"
        );
        assert_eq!(err.refused_before_sending(), None);
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        // Neither is tried now: the primary, opened first, frees first.
        let err = f.chat(&req(), None).await.unwrap_err();
        assert!(
            matches!(&err, LlmError::CircuitOpen { provider, sent: 0, .. } if provider == "primary"),
            "{err}"
        );
        assert!(err.refused_before_sending().is_some());
        assert_eq!(primary.calls.load(Ordering::SeqCst), 2);
        assert_eq!(backup.calls.load(Ordering::SeqCst), 2);
    }

    fn config_with(providers: &[(&str, &str)], fallback: Option<&str>) -> Config {
        let settings = |url: &str| ProviderSettings {
            base_url: Some(url.to_string()),
            model: Some(format!("model-of-{url}")),
            ..ProviderSettings::of_kind(ProviderKind::Ollama)
        };
        let mut config = Config::default();
        for (name, url) in providers {
            config.providers.insert(name.to_string(), settings(url));
        }
        config.fallback = fallback.map(settings);
        config
    }

    #[test]
    fn named_providers_are_built_once_and_unknown_names_are_clear() {
        let config = config_with(&[("local", "http://127.0.0.1:9/v1")], None);
        let profiles = Profiles::with_env(&config, Arc::new(|_: &str| None));
        let default: Result<SharedProvider, String> = Err("no default".into());
        let a = profiles.resolve(Some("local"), &default).unwrap();
        let b = profiles.resolve(Some("local"), &default).unwrap();
        assert!(Arc::ptr_eq(&a.provider, &b.provider));
        assert_eq!(a.model.as_deref(), Some("model-of-http://127.0.0.1:9/v1"));
        assert_eq!(profiles.model_of("local"), a.model);
        assert_eq!(profiles.model_of("cloud"), None);
        assert_eq!(a.provider.name(), "ollama@http://127.0.0.1:9/v1");
        let err = profiles.resolve(Some("cloud"), &default).unwrap_err();
        assert!(
            err.contains("`cloud`") && err.contains("known: local"),
            "{err}"
        );
        assert_eq!(profiles.resolve(None, &default).unwrap_err(), "no default");
        let err = Profiles::default()
            .resolve(Some("local"), &default)
            .unwrap_err();
        assert!(err.contains("no providers are configured"), "{err}");
    }

    #[test]
    fn the_fallback_stands_behind_every_profile_but_itself() {
        let config = config_with(
            &[("local", "http://127.0.0.1:9/v1")],
            Some("http://127.0.0.1:10/v1"),
        );
        let profiles = Profiles::with_env(&config, Arc::new(|_: &str| None));
        assert_eq!(profiles.fallback_problem(), None);
        let default: Result<SharedProvider, String> =
            Ok(Endpoint::new("default", None) as SharedProvider);
        let r = profiles.resolve(None, &default).unwrap();
        assert_eq!(
            r.provider.name(),
            "default (fallback ollama@http://127.0.0.1:10/v1)"
        );
        let r = profiles.resolve(Some("local"), &default).unwrap();
        assert!(
            r.provider.name().contains("(fallback "),
            "{}",
            r.provider.name()
        );
        // The fallback's endpoint as a profile gets no fallback to itself.
        let config = config_with(
            &[("same", "http://127.0.0.1:10/v1")],
            Some("http://127.0.0.1:10/v1"),
        );
        let profiles = Profiles::with_env(&config, Arc::new(|_: &str| None));
        let r = profiles.resolve(Some("same"), &default).unwrap();
        assert_eq!(r.provider.name(), "ollama@http://127.0.0.1:10/v1");
        // A fallback that cannot be built is reported, and runs go on without it.
        let config = Config {
            fallback: Some(ProviderSettings::of_kind(ProviderKind::Anthropic)),
            ..Config::default()
        };
        let profiles = Profiles::with_env(&config, Arc::new(|_: &str| None));
        assert!(
            profiles
                .fallback_problem()
                .is_some_and(|p| p.contains("ANTHROPIC_API_KEY"))
        );
        assert_eq!(
            profiles.resolve(None, &default).unwrap().provider.name(),
            "default"
        );
    }
}
