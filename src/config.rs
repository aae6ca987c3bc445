//! Configuration: `$XDG_CONFIG_HOME/lev/config.yaml`, then `./lev.yaml` over
//! it, then the environment (`LEV_PROVIDER`, `LEV_MODEL`, `OPENAI_BASE_URL`,
//! ...). API keys are read from the environment only and never stored.
//! Loading lives in `config/load.rs`; the file schema is documented there.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

pub mod agent_cli;
mod llm_settings;
mod load;
pub mod mcp_servers;

pub use llm_settings::{
    ARGUMENT_SETTING, DEFAULT_MAX_REPLY_BYTES, DEFAULT_MAX_TOOL_ARGUMENT_BYTES, ModelParams,
    ModelParamsTable, Price, PriceTable, REPLY_SETTING, ReplyLimits, TokenLimitField,
};

pub use load::ConfigError;
pub(crate) use load::yaml_error_text;

/// Which provider family to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// How the workbench's desktop notification is sent (`tui.attention.notify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Notify {
    /// OSC 9 (iTerm2, WezTerm, Windows Terminal, kitty, foot, ghostty).
    Osc9,
    /// OSC 777 (urxvt, VTE terminals such as GNOME Terminal, foot).
    Osc777,
    /// Both, for terminals of either kind (the default).
    #[default]
    Both,
    None,
}

/// How the workbench announces something that waits for the user (a
/// question or approval): once, when it appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionSettings {
    /// Ring the terminal bell.
    pub bell: bool,
    pub notify: Notify,
}

impl Default for AttentionSettings {
    fn default() -> Self {
        AttentionSettings {
            bell: true,
            notify: Notify::Both,
        }
    }
}

/// Workbench settings (`tui:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TuiSettings {
    pub attention: AttentionSettings,
    /// Lines of scrollback each workbench pane keeps (older ones are
    /// dropped): `tui.scrollback_lines`, default 100,000 (≈ 11 MB for a
    /// pane full of 80-character lines).
    pub scrollback_lines: usize,
}

/// Default of `tui.scrollback_lines`.
pub const DEFAULT_SCROLLBACK_LINES: usize = 100_000;
/// Fewer lines would hide a single reply.
pub const MIN_SCROLLBACK_LINES: usize = 100;

impl Default for TuiSettings {
    fn default() -> Self {
        TuiSettings {
            attention: AttentionSettings::default(),
            scrollback_lines: DEFAULT_SCROLLBACK_LINES,
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
    /// Takes a request when the chosen provider fails after its retries or
    /// its breaker is open (`fallback:` in the config file).
    pub fallback: Option<ProviderSettings>,
    pub prices: PriceTable,
    /// What requests to a model may carry (`models:`), by name or prefix.
    pub model_params: ModelParamsTable,
    pub retry: RetrySettings,
    pub breaker: BreakerSettings,
    /// `run_shell` prefixes allowed everywhere.
    pub shell_allow: Vec<String>,
    /// `followups:`: added to every workflow's own.
    pub followups: FollowupSettings,
    /// `judge:`: who judges `when_semantic` statements.
    pub judge: Option<JudgeSettings>,
    /// `flowmind:`: the controller that watches agents.
    pub flowmind: FlowmindSettings,
    /// Caps on the size of LLM replies (`llm:`).
    pub reply_limits: ReplyLimits,
    pub tui: TuiSettings,
    /// `pty.clis:`: the agent CLIs `pty` steps know (built in, then the
    /// config's, which add CLIs or replace a built-in one's settings).
    pub agent_clis: BTreeMap<String, crate::config::agent_cli::AgentCli>,
    /// MCP servers whose tools agents may use (`mcp_servers:`), by name; a
    /// workflow's own `mcp_servers:` add to these and win by name.
    pub mcp_servers: BTreeMap<String, crate::config::mcp_servers::McpServer>,
    /// `journal: { url }`: the journal in a PostgreSQL database (what
    /// `--journal` and `LEV_JOURNAL` say win).
    pub journal_url: Option<String>,
    /// Files the config was read from, for `lev config` and messages.
    pub sources: Vec<PathBuf>,
}

/// `flowmind: { mode, provider, model, cadence, budget, stalls, repeats,
/// instructions }`: the controller that watches agents
/// (`intelligence::flowmind`).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowmindSettings {
    pub mode: FlowmindMode,
    /// The same tool call (or error) this many times in a row is a stall.
    pub repeats: u32,
    /// Instructions to a stuck agent before it goes to the user.
    pub instructions: u32,
    /// `mode: model`: a name of `providers:` (none: the default provider)
    /// and a model (none: that provider's).
    pub provider: Option<String>,
    pub model: Option<String>,
    /// A progress ledger every this many working turns of an agent.
    pub cadence: u32,
    /// The controller's own tokens per run; past them, rules only.
    pub budget_tokens: u64,
    /// Ledgers in a row that say "looping" or "no progress" before the
    /// controller acts.
    pub stalls: u32,
    /// An agent with no activity this long (ms) is handed to the user
    /// (0: never).
    pub silence_ms: u64,
    pub conductor: ConductorSettings,
}

/// The kinds of question the model sorts a question into.
pub const CATEGORIES: [&str; 10] = [
    "naming",
    "style",
    "scope",
    "tooling",
    "testing",
    "data",
    "security",
    "credentials",
    "destructive",
    "other",
];

/// Kinds FlowMind never answers in the user's place, whatever the config.
pub const SAFETY_CRITICAL: [&str; 3] = ["security", "credentials", "destructive"];

/// `flowmind.conductor: { enabled, confidence, categories, grace_ms }`:
/// with `mode: model`, FlowMind looks at each agent's `ask_user` question
/// first; it answers it itself (after `grace_ms`, unless you answer first)
/// when it is at least `confidence` sure and the question's category is in
/// `categories` — never `security`, `credentials` or `destructive` — and
/// otherwise offers you its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ConductorSettings {
    pub enabled: bool,
    pub confidence: f64,
    pub categories: Vec<String>,
    pub grace_ms: u64,
}

impl Default for ConductorSettings {
    fn default() -> Self {
        ConductorSettings {
            enabled: true,
            confidence: 0.8,
            categories: Vec::new(),
            grace_ms: 15_000,
        }
    }
}

/// What the controller runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowmindMode {
    Off,
    /// The deterministic rules only (the default).
    Fallback,
    /// A model keeps a progress ledger per agent; the rules still run,
    /// and take over when its budget is spent or it keeps failing.
    Model,
}

impl Default for FlowmindSettings {
    fn default() -> Self {
        FlowmindSettings {
            mode: FlowmindMode::Fallback,
            repeats: 3,
            instructions: 1,
            provider: None,
            model: None,
            cadence: 3,
            budget_tokens: 50_000,
            stalls: 2,
            silence_ms: 300_000,
            conductor: ConductorSettings::default(),
        }
    }
}

/// `judge: { provider, model }`: the model that judges `when_semantic`
/// statements, instead of the step's own provider and model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JudgeSettings {
    /// A name of `providers:`; none is the default provider.
    pub provider: Option<String>,
    pub model: Option<String>,
}

/// The config's `followups: { propose, auto }` (a workflow's top-level
/// `followups:` is read into `spec::FollowupPolicy`; the engine adds the
/// two).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FollowupSettings {
    pub propose: bool,
    /// `auto: true`.
    pub auto: bool,
    /// `auto: [mode, …]`.
    pub auto_modes: Vec<String>,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 4] = [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Ollama,
        ProviderKind::Scripted,
    ];

    /// The name used in config files and `LEV_PROVIDER`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Ollama => "ollama",
            ProviderKind::Scripted => "scripted",
        }
    }

    pub fn parse(name: &str) -> Option<ProviderKind> {
        ProviderKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name.trim().to_ascii_lowercase())
    }
}

impl ProviderSettings {
    /// A provider of `kind` with every setting left to its default.
    pub fn of_kind(kind: ProviderKind) -> Self {
        ProviderSettings {
            kind,
            base_url: None,
            model: None,
            api_key_env: None,
            cassette: None,
        }
    }
}

impl Default for Config {
    /// OpenAI with default settings and no files read; what `load` gives
    /// with nothing configured.
    fn default() -> Self {
        Config {
            provider: ProviderSettings::of_kind(ProviderKind::OpenAi),
            providers: BTreeMap::new(),
            fallback: None,
            prices: PriceTable::new(),
            model_params: ModelParamsTable::new(),
            retry: RetrySettings::default(),
            breaker: BreakerSettings::default(),
            shell_allow: Vec::new(),
            followups: Default::default(),
            judge: None,
            flowmind: FlowmindSettings::default(),
            reply_limits: ReplyLimits::default(),
            tui: TuiSettings::default(),
            agent_clis: crate::config::agent_cli::builtin(),
            mcp_servers: BTreeMap::new(),
            journal_url: None,
            sources: Vec::new(),
        }
    }
}
