//! Configuration: `$XDG_CONFIG_HOME/lev/config.yaml`, then `./lev.yaml` over
//! it, then the environment (`LEV_PROVIDER`, `LEV_MODEL`, `OPENAI_BASE_URL`,
//! ...). API keys are read from the environment only and never stored.
//! Interface fixed; loading to be written.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::llm::PriceTable;

/// Which provider family to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    OpenAi,
    Anthropic,
    Ollama,
    Scripted,
}

/// Settings for reaching one LLM endpoint (keys excluded).
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// Name of the environment variable holding the key.
    pub api_key_env: Option<String>,
    /// Cassette file for `scripted`.
    pub cassette: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct RetrySettings {
    pub max_attempts: u32,
    pub initial_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 4,
            initial_delay_ms: 500,
            max_delay_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BreakerSettings {
    pub consecutive_failures: u32,
    pub cooldown_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            consecutive_failures: 5,
            cooldown_ms: 60_000,
        }
    }
}

/// Everything read from config files and the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// The chosen provider (after `LEV_PROVIDER`).
    pub provider: ProviderSettings,
    /// Named providers from the config file, for modes that name one.
    pub providers: BTreeMap<String, ProviderSettings>,
    pub prices: PriceTable,
    pub retry: RetrySettings,
    pub breaker: BreakerSettings,
    /// `run_shell` prefixes allowed everywhere.
    pub shell_allow: Vec<String>,
    /// Files the config was read from, for `lev config` and messages.
    pub sources: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    pub fn load(
        _cwd: &std::path::Path,
        _config_dir: Option<&std::path::Path>,
        _env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Err(ConfigError("not yet".into()))
    }
}
