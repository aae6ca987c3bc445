//! Building the configured provider: the right client for the kind, its key
//! from the environment variable the config names, wrapped in retries, the
//! endpoint's circuit breaker and pricing.

use std::fmt;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::anthropic::{self, AnthropicProvider};
use super::openai::{self, OpenAiProvider};
use super::prices;
use super::resilient::{Breakers, Resilient};
use super::scripted::ScriptedProvider;
use super::wire::Secret;
use super::{
    ChatFuture, ChatRequest, LlmError, ModelParamsTable, PriceTable, Provider, ReplyLimits,
    SharedProvider, StreamDelta,
};
use crate::config::{Config, ProviderKind, ProviderSettings};

pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
pub const DEFAULT_OLLAMA_MODEL: &str = "llama3.2";

/// The configured provider, reading keys from the process environment.
pub fn build_provider(cfg: &Config) -> Result<SharedProvider, LlmError> {
    build_provider_with_env(cfg, &|k| std::env::var(k).ok())
}

/// [`build_provider`] with the environment as a lookup function.
pub fn build_provider_with_env(
    cfg: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SharedProvider, LlmError> {
    build_from_settings(cfg, &cfg.provider, env)
}

/// A provider from the config's `providers:` map (for modes naming one).
pub fn build_named_provider(
    cfg: &Config,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SharedProvider, LlmError> {
    let settings = cfg.providers.get(name).ok_or_else(|| {
        let known: Vec<&str> = cfg.providers.keys().map(String::as_str).collect();
        LlmError::Config(format!(
            "no provider named `{name}` in the configuration (known: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })?;
    build_from_settings(cfg, settings, env)
}

/// `settings` as a client, wrapped in retries, its endpoint's breaker and
/// pricing from `cfg`.
pub fn build_from_settings(
    cfg: &Config,
    settings: &ProviderSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SharedProvider, LlmError> {
    let raw = build_client_with(settings, env, cfg.reply_limits, &cfg.model_params)?;
    let breaker = Breakers::global().get(&raw.name(), &cfg.breaker);
    let resilient: SharedProvider = Arc::new(Resilient::new(raw, cfg.retry.clone(), breaker));
    let free = matches!(settings.kind, ProviderKind::Ollama | ProviderKind::Scripted);
    Ok(Arc::new(Priced::new(
        resilient,
        prices::with_shipped(&cfg.prices),
        free,
    )))
}

/// The bare client for `settings`: no retries, no breaker, no prices, the
/// default reply caps.
pub fn build_client(
    settings: &ProviderSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SharedProvider, LlmError> {
    build_client_with(
        settings,
        env,
        ReplyLimits::default(),
        &ModelParamsTable::new(),
    )
}

/// [`build_client`] with caps on reply size and the config's `models:`.
pub fn build_client_with(
    settings: &ProviderSettings,
    env: &dyn Fn(&str) -> Option<String>,
    limits: ReplyLimits,
    params: &ModelParamsTable,
) -> Result<SharedProvider, LlmError> {
    let model = settings.model.as_deref();
    Ok(match settings.kind {
        ProviderKind::OpenAi => {
            let key = require_key(settings, "OPENAI_API_KEY", env)?;
            let base = settings
                .base_url
                .as_deref()
                .unwrap_or(openai::DEFAULT_BASE_URL);
            Arc::new(
                OpenAiProvider::new(
                    "openai",
                    base,
                    Some(key),
                    model.unwrap_or(DEFAULT_OPENAI_MODEL),
                )?
                .with_limits(limits)
                .with_params(params.clone()),
            )
        }
        ProviderKind::Ollama => {
            // Ollama needs no key; one is sent only when the config names a
            // variable (for proxies in front of it).
            let key = settings
                .api_key_env
                .as_deref()
                .and_then(env)
                .filter(|k| !k.trim().is_empty())
                .map(Secret::new);
            let default_base = format!("{}/v1", openai::DEFAULT_OLLAMA_HOST);
            let base = settings.base_url.as_deref().unwrap_or(&default_base);
            Arc::new(
                OpenAiProvider::new("ollama", base, key, model.unwrap_or(DEFAULT_OLLAMA_MODEL))?
                    .with_limits(limits)
                    .with_params(params.clone()),
            )
        }
        ProviderKind::Anthropic => {
            let key = require_key(settings, "ANTHROPIC_API_KEY", env)?;
            let base = settings
                .base_url
                .as_deref()
                .unwrap_or(anthropic::DEFAULT_BASE_URL);
            Arc::new(
                AnthropicProvider::new(base, key, model.unwrap_or(DEFAULT_ANTHROPIC_MODEL))?
                    .with_limits(limits)
                    .with_params(params.clone()),
            )
        }
        ProviderKind::Scripted => {
            let path = settings.cassette.as_deref().ok_or_else(|| {
                LlmError::Config(
                    "the scripted provider needs a cassette: set LEV_CASSETTE or `cassette:` in lev.yaml"
                        .into(),
                )
            })?;
            Arc::new(ScriptedProvider::from_file(path)?)
        }
    })
}

fn require_key(
    settings: &ProviderSettings,
    default_var: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, LlmError> {
    let var = settings.api_key_env.as_deref().unwrap_or(default_var);
    env(var)
        .filter(|k| !k.trim().is_empty())
        .map(|k| Secret::new(k.trim()))
        .ok_or_else(|| {
            LlmError::Config(format!(
                "{kind} needs an API key in the environment variable {var}, which is not set; \
                 set it, or choose another provider with LEV_PROVIDER (openai, anthropic, ollama, scripted) \
                 or a cassette with LEV_CASSETTE",
                kind = settings.kind.as_str()
            ))
        })
}

/// Fills `usage.cost_usd` of every reply from a price table.
pub struct Priced {
    inner: SharedProvider,
    prices: PriceTable,
    /// A local model (Ollama, the scripted provider): its tokens cost
    /// nothing, so no price is missing.
    free: bool,
}

impl fmt::Debug for Priced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Priced")
            .field("inner", &self.inner.name())
            .field("prices", &self.prices.len())
            .finish()
    }
}

impl Priced {
    /// Prices from `prices`; `free` for a provider whose tokens cost
    /// nothing.
    pub fn new(inner: SharedProvider, prices: PriceTable, free: bool) -> Self {
        Priced {
            inner,
            prices,
            free,
        }
    }
}

impl Provider for Priced {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn knows_price(&self, model: &str) -> bool {
        self.free || prices::lookup(&self.prices, model).is_some()
    }

    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
        deltas: Option<mpsc::UnboundedSender<StreamDelta>>,
    ) -> ChatFuture<'a> {
        Box::pin(async move {
            let mut reply = self.inner.chat(req, deltas).await?;
            let mut cost = prices::cost_usd(&self.prices, &reply.model, &reply.usage);
            if cost == 0.0 && !req.model.is_empty() {
                cost = prices::cost_usd(&self.prices, &req.model, &reply.usage);
            }
            reply.usage.cost_usd = cost;
            Ok(reply)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_key_names_the_variable() {
        let mut s = ProviderSettings::of_kind(ProviderKind::Anthropic);
        let err = build_client(&s, &|_| None).unwrap_err();
        assert!(err.to_string().contains("ANTHROPIC_API_KEY"), "{err}");
        s.api_key_env = Some("MY_KEY".into());
        let err = build_client(&s, &|_| None).unwrap_err();
        assert!(err.to_string().contains("MY_KEY"), "{err}");
        assert!(build_client(&s, &|k| (k == "MY_KEY").then(|| "x".into())).is_ok());
        // Ollama works without a key; scripted needs a cassette.
        assert!(build_client(&ProviderSettings::of_kind(ProviderKind::Ollama), &|_| None).is_ok());
        let err = build_client(&ProviderSettings::of_kind(ProviderKind::Scripted), &|_| {
            None
        })
        .unwrap_err();
        assert!(err.to_string().contains("LEV_CASSETTE"), "{err}");
    }
}
