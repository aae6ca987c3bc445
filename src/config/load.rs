//! Reading configuration: `<config_dir>/config.yaml`, then `./lev.yaml`
//! (values in the later file win; maps merge by key), then the environment.
//!
//! ```yaml
//! provider: local            # openai | anthropic | ollama | scripted, or a name below
//! model: gpt-4o-mini         # default model of the chosen provider
//! cassette: demo.yaml        # for `scripted`; relative to this file
//! providers:                 # named endpoints, for modes that name one
//!   local:
//!     kind: ollama           # openai | anthropic | ollama | scripted
//!     base_url: http://127.0.0.1:11434/v1
//!     model: llama3.2
//!     api_key_env: MY_KEY    # name of the variable holding the key
//!     cassette: other.yaml
//! prices:                    # USD per million tokens, by model name (or prefix
//!                            # before `-`); over the shipped ones (llm/prices.rs)
//!   gpt-4o-mini: { input_per_mtok: 0.15, output_per_mtok: 0.6 }
//! models:                    # what requests to a model take, by name (or prefix);
//!   my-reasoner:             # built in: OpenAI's o1/o3/o4/gpt-5 take
//!     max_tokens_field: max_completion_tokens  # `max_completion_tokens` and
//!     temperature: false     # no temperature, api.openai.com takes
//!                            # `max_completion_tokens`, others `max_tokens`
//! fallback:                  # takes a request when the provider fails after its
//!   provider: local          # retries or its breaker is open: a name above (or a
//!   model: llama3.2          # kind), `model:` optional; or inline settings:
//! # fallback: { kind: openai, base_url: https://..., model: gpt-4o-mini, api_key_env: K }
//! retry: { max_attempts: 4, initial_delay_ms: 500, max_delay_ms: 30000 }
//! breaker: { consecutive_failures: 5, cooldown_ms: 60000 }
//! shell_allow: ["cargo test", "git status"]
//! flowmind:                  # the controller that watches agents
//!   mode: fallback           # fallback (deterministic rules; the default) | model | off
//!   repeats: 3               # the same tool call or error this often in a row is a stall
//!   instructions: 1          # messages to a stuck agent before it goes to you
//!   provider: local          # mode: model — a name of `providers:` (default: the default provider)
//!   model: llama3.2          #   and its model; a progress ledger every `cadence`
//!   cadence: 3               #   working turns of an agent, at most `budget`
//!   budget: 50000            #   tokens of its own per run, then rules only;
//!   stalls: 2                #   this many stalled ledgers in a row and it acts
//!   silence_ms: 300000       # an agent with no activity this long goes to you (0: never)
//!   conductor:               # mode: model — FlowMind sees agents' questions first:
//!     confidence: 0.8        #   it answers at least this sure, in these categories
//!     categories: [naming, style]  # (never security, credentials, destructive),
//!     grace_ms: 15000        #   after this long unless you answer; else it proposes
//! judge:                     # who judges `when_semantic` (default: the step's
//!   provider: local          # own provider and model); a name of `providers:`
//!   model: llama3.2
//! followups:                 # added to every workflow's own `followups:`
//!   propose: false           # offer agents `propose_followup`
//!   auto: [tdd, docs-writer] # spawn proposals in these modes unasked (or `true`)
//! llm:                       # caps on one LLM reply; past one the step fails
//!   max_reply_bytes: 4194304           # reply text (and reasoning), default 4 MiB
//!   max_tool_argument_bytes: 1048576   # one tool call's arguments, default 1 MiB
//! pty:
//!   clis:                    # agent CLIs `pty` steps run (claude, codex, gemini,
//!     mycli:                 #   opencode, aider are built in; this adds or changes one)
//!       new_session: [--session-id, "{session}"]  # start a session of an id lev picks
//!       resume: [--resume, "{session}"]           # relaunch into it after a crash
//!       session_pattern: 'session: (\S+)'        # else: find its id on screen
//!       hooks: [-c, 'notify=["{lev}","hook"]']   # its hooks report to lev ({lev}: lev's binary)
//! mcp_servers:              # MCP servers whose tools agents may use, offered as
//!   everything:              #   `<server>__<tool>` (see config/mcp_servers.rs)
//!     command: npx
//!     args: [-y, "@modelcontextprotocol/server-everything"]
//!   search: { url: "http://127.0.0.1:3001/mcp", headers_env: { Authorization: SEARCH_TOKEN } }
//! journal:                  # the journal in PostgreSQL (early; see README), unless
//!   url: "postgres://lev@db/lev"  # --journal or LEV_JOURNAL says otherwise
//! tui:
//!   scrollback_lines: 100000 # lines each pane keeps (≈ 11 MB of 80-char lines); min 100
//!   attention:               # a question or approval waits, the run ends or pauses (once each)
//!     bell: true             # ring the terminal bell
//!     notify: both           # desktop notification: osc9 | osc777 | both | none
//! ```
//!
//! A mode names its provider with `model: { provider: NAME }`; NAME is a
//! key of `providers:`. The fallback has its own breaker; it stands behind
//! the default provider and every named one except itself.
//!
//! Environment, applied last: `LEV_PROVIDER`, `LEV_MODEL`, `LEV_CASSETTE`,
//! and the base URLs `OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`, `OLLAMA_HOST`
//! (`$OLLAMA_HOST/v1`), which apply to the chosen provider unless it is a
//! named one with its own `base_url`. With no provider chosen anywhere:
//! `scripted` when a cassette is given, else `openai` when `OPENAI_API_KEY`
//! is set, else `anthropic` when `ANTHROPIC_API_KEY` is, else `openai`,
//! whose missing key is reported when the provider is built (so commands
//! that need no provider, like `lev validate`, still work).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Price;
use super::{Config, Notify, ProviderKind, ProviderSettings};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}:{line}:{col}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: u64,
        col: u64,
        message: String,
    },
    /// A value that parses but makes no sense; `origin` is a file or an
    /// environment variable.
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    provider: Option<String>,
    model: Option<String>,
    cassette: Option<PathBuf>,
    #[serde(default)]
    providers: BTreeMap<String, FileProvider>,
    #[serde(default)]
    prices: BTreeMap<String, FilePrice>,
    #[serde(default)]
    models: BTreeMap<String, super::ModelParams>,
    fallback: Option<Spanned<FileFallback>>,
    retry: Option<FileRetry>,
    breaker: Option<FileBreaker>,
    shell_allow: Option<Vec<String>>,
    followups: Option<FileFollowups>,
    judge: Option<FileJudge>,
    flowmind: Option<FileFlowmind>,
    llm: Option<FileLlm>,
    tui: Option<FileTui>,
    pty: Option<FilePty>,
    #[serde(default)]
    mcp_servers: BTreeMap<String, Spanned<super::mcp_servers::Entry>>,
    journal: Option<FileJournal>,
}

/// `journal: { url }`: a PostgreSQL journal instead of the data dir's file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJournal {
    url: Option<String>,
}

/// `pty: { clis: { NAME: { new_session, resume, session_pattern } } }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePty {
    #[serde(default)]
    clis: BTreeMap<String, FileCli>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCli {
    new_session: Option<Vec<String>>,
    resume: Option<Vec<String>>,
    session_pattern: Option<Spanned<String>>,
    hooks: Option<Vec<String>>,
}

/// `flowmind: { mode, repeats, instructions, provider, model, cadence,
/// budget, stalls }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFlowmind {
    mode: Option<FlowmindMode>,
    repeats: Option<u32>,
    instructions: Option<u32>,
    provider: Option<String>,
    model: Option<String>,
    cadence: Option<u32>,
    budget: Option<u64>,
    stalls: Option<u32>,
    silence_ms: Option<u64>,
    conductor: Option<FileConductor>,
}

/// `flowmind.conductor: { enabled, confidence, categories, grace_ms }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConductor {
    enabled: Option<bool>,
    confidence: Option<f64>,
    categories: Option<Vec<String>>,
    grace_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FlowmindMode {
    Fallback,
    Model,
    Off,
}

/// `judge: { provider, model }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJudge {
    provider: Option<String>,
    model: Option<String>,
}

/// `followups: { propose, auto }`, as in a workflow.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFollowups {
    propose: Option<bool>,
    auto: Option<FileAuto>,
}

/// `auto: true` or `auto: [mode, …]`.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "`true`, `false` or a list of mode ids")]
enum FileAuto {
    All(bool),
    Modes(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLlm {
    max_reply_bytes: Option<usize>,
    max_tool_argument_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTui {
    attention: Option<FileAttention>,
    scrollback_lines: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAttention {
    bell: Option<bool>,
    notify: Option<Notify>,
}

/// `fallback:`: a provider by name (`provider:`), or inline settings (`kind:`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFallback {
    provider: Option<String>,
    kind: Option<ProviderKind>,
    base_url: Option<String>,
    model: Option<String>,
    api_key_env: Option<String>,
    cassette: Option<PathBuf>,
}

/// A `fallback:` read from a file, resolved once every file is read (the
/// provider it names may come from a later file).
struct PendingFallback {
    path: PathBuf,
    line: u64,
    col: u64,
    spec: FallbackSpec,
}

enum FallbackSpec {
    Named { name: String, model: Option<String> },
    Inline(ProviderSettings),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProvider {
    kind: ProviderKind,
    base_url: Option<String>,
    model: Option<String>,
    api_key_env: Option<String>,
    cassette: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePrice {
    input_per_mtok: f64,
    output_per_mtok: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRetry {
    max_attempts: Option<u32>,
    initial_delay_ms: Option<u64>,
    max_delay_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBreaker {
    consecutive_failures: Option<u32>,
    cooldown_ms: Option<u64>,
}

/// `origin:line:col: message` for a serde-saphyr error, without the
/// library's own trailing "at line N, column M".
pub(crate) fn yaml_error_text(origin: &str, err: &serde_saphyr::Error) -> String {
    match err.location() {
        Some(l) => format!(
            "{origin}:{}:{}: {}",
            l.line(),
            l.column(),
            yaml_message(err)
        ),
        None => format!("{origin}: {}", yaml_message(err)),
    }
}

fn yaml_message(err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
    match text.rfind(" at line ") {
        Some(i) if text[i..].contains(", column ") => text[..i].to_string(),
        _ => text,
    }
}

/// What the files said, merged; resolved against the environment at the end.
#[derive(Default)]
struct Layers {
    provider: Option<String>,
    model: Option<String>,
    cassette: Option<PathBuf>,
    providers: BTreeMap<String, ProviderSettings>,
    fallback: Option<PendingFallback>,
    config: Config,
}

impl Layers {
    fn read(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                });
            }
        };
        // An empty or comments-only file is an empty config.
        let file: Option<FileConfig> = serde_saphyr::from_str(&text).map_err(|e| {
            let (line, col) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                col,
                message: yaml_message(&e),
            }
        })?;
        self.config.sources.push(path.to_path_buf());
        let Some(file) = file else {
            return Ok(());
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        self.provider = file.provider.or(self.provider.take());
        self.model = file.model.or(self.model.take());
        if let Some(c) = file.cassette {
            self.cassette = Some(dir.join(c));
        }
        for (name, p) in file.providers {
            self.providers.insert(
                name,
                ProviderSettings {
                    kind: p.kind,
                    base_url: p.base_url,
                    model: p.model,
                    api_key_env: p.api_key_env,
                    cassette: p.cassette.map(|c| dir.join(c)),
                },
            );
        }
        for (model, p) in file.prices {
            self.config.prices.insert(
                model,
                Price {
                    input_per_mtok: p.input_per_mtok,
                    output_per_mtok: p.output_per_mtok,
                },
            );
        }
        self.config.model_params.extend(file.models);
        if let Some(f) = file.fallback {
            self.fallback = Some(pending_fallback(path, dir, f)?);
        }
        if let Some(r) = file.retry {
            let retry = &mut self.config.retry;
            retry.max_attempts = r.max_attempts.unwrap_or(retry.max_attempts);
            retry.initial_delay_ms = r.initial_delay_ms.unwrap_or(retry.initial_delay_ms);
            retry.max_delay_ms = r.max_delay_ms.unwrap_or(retry.max_delay_ms);
        }
        if let Some(b) = file.breaker {
            let breaker = &mut self.config.breaker;
            breaker.consecutive_failures = b
                .consecutive_failures
                .unwrap_or(breaker.consecutive_failures);
            breaker.cooldown_ms = b.cooldown_ms.unwrap_or(breaker.cooldown_ms);
        }
        if let Some(allow) = file.shell_allow {
            self.config.shell_allow = allow;
        }
        if let Some(url) = file.journal.and_then(|j| j.url) {
            self.config.journal_url = Some(url);
        }
        if let Some(f) = file.flowmind {
            let flowmind = &mut self.config.flowmind;
            if let Some(mode) = f.mode {
                flowmind.mode = match mode {
                    FlowmindMode::Fallback => crate::config::FlowmindMode::Fallback,
                    FlowmindMode::Model => crate::config::FlowmindMode::Model,
                    FlowmindMode::Off => crate::config::FlowmindMode::Off,
                };
            }
            let invalid = |message: &str| ConfigError::Invalid {
                origin: path.display().to_string(),
                message: message.into(),
            };
            if f.repeats.is_some_and(|r| r < 2) {
                return Err(invalid("`flowmind.repeats` must be at least 2"));
            }
            if f.cadence == Some(0) {
                return Err(invalid("`flowmind.cadence` must be at least 1"));
            }
            if f.stalls == Some(0) {
                return Err(invalid("`flowmind.stalls` must be at least 1"));
            }
            flowmind.repeats = f.repeats.unwrap_or(flowmind.repeats);
            flowmind.instructions = f.instructions.unwrap_or(flowmind.instructions);
            flowmind.provider = f.provider.or(flowmind.provider.take());
            flowmind.model = f.model.or(flowmind.model.take());
            flowmind.cadence = f.cadence.unwrap_or(flowmind.cadence);
            flowmind.budget_tokens = f.budget.unwrap_or(flowmind.budget_tokens);
            flowmind.stalls = f.stalls.unwrap_or(flowmind.stalls);
            flowmind.silence_ms = f.silence_ms.unwrap_or(flowmind.silence_ms);
            if let Some(c) = f.conductor {
                if c.confidence.is_some_and(|x| !(0.0..=1.0).contains(&x)) {
                    return Err(invalid(
                        "`flowmind.conductor.confidence` must be between 0 and 1",
                    ));
                }
                let known = crate::config::CATEGORIES;
                if let Some(bad) = c
                    .categories
                    .iter()
                    .flatten()
                    .find(|k| !known.contains(&k.as_str()))
                {
                    return Err(invalid(&format!(
                        "`flowmind.conductor.categories`: unknown category `{bad}`; expected some of: {}",
                        known.join(", ")
                    )));
                }
                let conductor = &mut flowmind.conductor;
                conductor.enabled = c.enabled.unwrap_or(conductor.enabled);
                conductor.confidence = c.confidence.unwrap_or(conductor.confidence);
                conductor.categories = c.categories.unwrap_or(conductor.categories.clone());
                conductor.grace_ms = c.grace_ms.unwrap_or(conductor.grace_ms);
            }
        }
        if let Some(j) = file.judge {
            let judge = self.config.judge.get_or_insert_with(Default::default);
            judge.provider = j.provider.or(judge.provider.take());
            judge.model = j.model.or(judge.model.take());
        }
        if let Some(f) = file.followups {
            let policy = &mut self.config.followups;
            policy.propose = f.propose.unwrap_or(policy.propose);
            match f.auto {
                Some(FileAuto::All(all)) => {
                    policy.auto = all;
                    policy.auto_modes.clear();
                }
                Some(FileAuto::Modes(modes)) => {
                    policy.auto = false;
                    policy.auto_modes = modes;
                }
                None => {}
            }
        }
        if let Some(l) = file.llm {
            let limits = &mut self.config.reply_limits;
            for (value, setting) in [
                (l.max_reply_bytes, super::REPLY_SETTING),
                (l.max_tool_argument_bytes, super::ARGUMENT_SETTING),
            ] {
                if value == Some(0) {
                    return Err(ConfigError::Invalid {
                        origin: path.display().to_string(),
                        message: format!("`{setting}` must be at least 1"),
                    });
                }
            }
            limits.max_reply_bytes = l.max_reply_bytes.unwrap_or(limits.max_reply_bytes);
            limits.max_tool_argument_bytes = l
                .max_tool_argument_bytes
                .unwrap_or(limits.max_tool_argument_bytes);
        }
        if let Some(pty) = file.pty {
            for (name, c) in pty.clis {
                let cli = self
                    .config
                    .agent_clis
                    .entry(name.clone())
                    .or_insert_with(|| crate::config::agent_cli::AgentCli {
                        name: name.clone(),
                        new_session: Vec::new(),
                        resume: Vec::new(),
                        session_pattern: None,
                        hooks: Vec::new(),
                    });
                if let Some(args) = c.hooks {
                    cli.hooks = args;
                }
                if let Some(args) = c.new_session {
                    cli.new_session = args;
                }
                if let Some(args) = c.resume {
                    cli.resume = args;
                }
                if let Some(p) = c.session_pattern {
                    let groups = regex::Regex::new(&p.value).map(|re| re.captures_len());
                    if !matches!(groups, Ok(n) if n >= 2) {
                        let why = match groups {
                            Err(e) => e.to_string(),
                            Ok(_) => "it has no group `( … )` for the session id".into(),
                        };
                        return Err(ConfigError::Parse {
                            path: path.to_path_buf(),
                            line: p.referenced.line(),
                            col: p.referenced.column(),
                            message: format!(
                                "`pty.clis.{name}.session_pattern` is not a usable pattern: {why}"
                            ),
                        });
                    }
                    cli.session_pattern = Some(p.value);
                }
            }
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for (name, entry) in file.mcp_servers {
            let server =
                super::mcp_servers::build(&name, entry.value, base).map_err(|message| {
                    ConfigError::Parse {
                        path: path.to_path_buf(),
                        line: entry.referenced.line(),
                        col: entry.referenced.column(),
                        message: format!("`mcp_servers.{name}`: {message}"),
                    }
                })?;
            self.config.mcp_servers.insert(name, server);
        }
        let tui = file.tui.unwrap_or(FileTui {
            attention: None,
            scrollback_lines: None,
        });
        if let Some(lines) = tui.scrollback_lines {
            if lines.value < super::MIN_SCROLLBACK_LINES {
                return Err(ConfigError::Parse {
                    path: path.to_path_buf(),
                    line: lines.referenced.line(),
                    col: lines.referenced.column(),
                    message: format!(
                        "`tui.scrollback_lines` must be at least {} (found {})",
                        super::MIN_SCROLLBACK_LINES,
                        lines.value
                    ),
                });
            }
            self.config.tui.scrollback_lines = lines.value;
        }
        if let Some(a) = tui.attention {
            let attention = &mut self.config.tui.attention;
            attention.bell = a.bell.unwrap_or(attention.bell);
            attention.notify = a.notify.unwrap_or(attention.notify);
        }
        Ok(())
    }

    fn resolve(
        mut self,
        cwd: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let (name, origin) = match var("LEV_PROVIDER") {
            Some(p) => (Some(p), "LEV_PROVIDER".to_string()),
            None => (self.provider.take(), self.origin()),
        };
        let cassette = var("LEV_CASSETTE")
            .map(|c| cwd.join(c))
            .or(self.cassette.take());
        let mut named = false;
        let mut provider = match name {
            Some(name) => match self.providers.get(name.trim()) {
                Some(p) => {
                    named = true;
                    p.clone()
                }
                None => match ProviderKind::parse(&name) {
                    Some(kind) => ProviderSettings::of_kind(kind),
                    None => {
                        let mut known: Vec<&str> =
                            ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
                        known.extend(self.providers.keys().map(String::as_str));
                        return Err(ConfigError::Invalid {
                            origin,
                            message: format!(
                                "unknown provider `{name}`; expected one of: {}",
                                known.join(", ")
                            ),
                        });
                    }
                },
            },
            None if cassette.is_some() => ProviderSettings::of_kind(ProviderKind::Scripted),
            None if var("OPENAI_API_KEY").is_some() => {
                ProviderSettings::of_kind(ProviderKind::OpenAi)
            }
            None if var("ANTHROPIC_API_KEY").is_some() => {
                ProviderSettings::of_kind(ProviderKind::Anthropic)
            }
            None => ProviderSettings::of_kind(ProviderKind::OpenAi),
        };
        if let Some(model) = var("LEV_MODEL").or(self.model.take()) {
            provider.model = Some(model);
        }
        if provider.kind == ProviderKind::Scripted
            && (provider.cassette.is_none() || var("LEV_CASSETTE").is_some())
        {
            provider.cassette = cassette;
        }
        if !(named && provider.base_url.is_some()) {
            let from_env = match provider.kind {
                ProviderKind::OpenAi => var("OPENAI_BASE_URL"),
                ProviderKind::Anthropic => var("ANTHROPIC_BASE_URL"),
                ProviderKind::Ollama => var("OLLAMA_HOST").map(|h| ollama_base_url(&h)),
                ProviderKind::Scripted => None,
            };
            if from_env.is_some() {
                provider.base_url = from_env;
            }
        }
        let fallback = match self.fallback.take() {
            None => None,
            Some(f) => Some(self.resolve_fallback(f)?),
        };
        let mut config = self.config;
        config.provider = provider;
        config.providers = self.providers;
        config.fallback = fallback;
        Ok(config)
    }

    fn resolve_fallback(&self, f: PendingFallback) -> Result<ProviderSettings, ConfigError> {
        let (name, model) = match f.spec {
            FallbackSpec::Inline(settings) => return Ok(settings),
            FallbackSpec::Named { name, model } => (name, model),
        };
        let mut settings = match self.providers.get(name.trim()) {
            Some(p) => p.clone(),
            None => match ProviderKind::parse(&name) {
                Some(kind) => ProviderSettings::of_kind(kind),
                None => {
                    let mut known: Vec<&str> = self.providers.keys().map(String::as_str).collect();
                    known.extend(ProviderKind::ALL.iter().map(|k| k.as_str()));
                    return Err(ConfigError::Parse {
                        path: f.path,
                        line: f.line,
                        col: f.col,
                        message: format!(
                            "fallback: no provider named `{name}` under `providers:`; expected one of: {}",
                            known.join(", ")
                        ),
                    });
                }
            },
        };
        if model.is_some() {
            settings.model = model;
        }
        Ok(settings)
    }

    fn origin(&self) -> String {
        self.config
            .sources
            .last()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "configuration".into())
    }
}

/// Checks a `fallback:` block: either `provider:` (and maybe `model:`) or
/// `kind:` with its settings.
fn pending_fallback(
    path: &Path,
    dir: &Path,
    f: Spanned<FileFallback>,
) -> Result<PendingFallback, ConfigError> {
    let (line, col) = (f.referenced.line(), f.referenced.column());
    let problem = |message: &str| ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        col,
        message: format!("fallback: {message}"),
    };
    let f = f.value;
    let spec = match (f.provider, f.kind) {
        (Some(_), Some(_)) => {
            return Err(problem(
                "give either `provider: NAME` (a provider under `providers:`) or `kind:` with its settings, not both",
            ));
        }
        (None, None) => {
            return Err(problem(
                "needs `provider: NAME` (a provider under `providers:`) or `kind:` (openai, anthropic, ollama, scripted) with its settings",
            ));
        }
        (Some(name), None) => {
            if f.base_url.is_some() || f.api_key_env.is_some() || f.cassette.is_some() {
                return Err(problem(&format!(
                    "with `provider: {name}` only `model:` may be set; the other settings come from `providers.{name}`"
                )));
            }
            FallbackSpec::Named {
                name,
                model: f.model,
            }
        }
        (None, Some(kind)) => FallbackSpec::Inline(ProviderSettings {
            kind,
            base_url: f.base_url,
            model: f.model,
            api_key_env: f.api_key_env,
            cassette: f.cassette.map(|c| dir.join(c)),
        }),
    };
    Ok(PendingFallback {
        path: path.to_path_buf(),
        line,
        col,
        spec,
    })
}

/// `$OLLAMA_HOST` may be `host:port` without a scheme (as Ollama accepts);
/// the OpenAI-compatible API lives under `/v1`.
pub fn ollama_base_url(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    let host = if host.contains("://") {
        host.to_string()
    } else {
        format!("http://{host}")
    };
    if host.ends_with("/v1") {
        host
    } else {
        format!("{host}/v1")
    }
}

impl Config {
    /// Reads the config files and the process environment.
    pub fn load(cwd: &Path, config_dir: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_env(cwd, config_dir, &|k| std::env::var(k).ok())
    }

    /// [`Config::load`] with the environment given as a lookup function, so
    /// tests need not touch the process environment.
    pub fn load_with_env(
        cwd: &Path,
        config_dir: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut layers = Layers::default();
        if let Some(dir) = config_dir {
            layers.read(&dir.join("config.yaml"))?;
        }
        layers.read(&cwd.join("lev.yaml"))?;
        layers.resolve(cwd, env)
    }

    /// Defaults plus the environment, reading no files.
    pub fn from_env(
        cwd: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Layers::default().resolve(cwd, env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AttentionSettings;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_follow_the_available_keys() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::from_env(dir.path(), &env(&[])).unwrap();
        assert_eq!(c.provider.kind, ProviderKind::OpenAi);
        let c = Config::from_env(dir.path(), &env(&[("ANTHROPIC_API_KEY", "k")])).unwrap();
        assert_eq!(c.provider.kind, ProviderKind::Anthropic);
        let c = Config::from_env(
            dir.path(),
            &env(&[("ANTHROPIC_API_KEY", "k"), ("OPENAI_API_KEY", "k")]),
        )
        .unwrap();
        assert_eq!(c.provider.kind, ProviderKind::OpenAi);
        let c = Config::from_env(
            dir.path(),
            &env(&[("OPENAI_API_KEY", "k"), ("LEV_CASSETTE", "c.yaml")]),
        )
        .unwrap();
        assert_eq!(c.provider.kind, ProviderKind::Scripted);
        assert_eq!(c.provider.cassette, Some(dir.path().join("c.yaml")));
    }

    #[test]
    fn files_layer_and_env_wins() {
        let cfg_dir = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(
            cfg_dir.path().join("config.yaml"),
            "provider: local\nmodel: base-model\nproviders:\n  local:\n    kind: ollama\n    model: llama3.2\nprices:\n  gpt-4o: { input_per_mtok: 2.5, output_per_mtok: 10 }\nretry: { max_attempts: 2 }\nshell_allow: [ls]\n",
        )
        .unwrap();
        std::fs::write(
            cwd.path().join("lev.yaml"),
            "# project\nprovider: anthropic\nbreaker: { cooldown_ms: 5 }\nshell_allow: [cargo test]\n",
        )
        .unwrap();
        let c = Config::load_with_env(cwd.path(), Some(cfg_dir.path()), &env(&[])).unwrap();
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.provider.kind, ProviderKind::Anthropic);
        assert_eq!(c.provider.model.as_deref(), Some("base-model"));
        assert_eq!(c.providers["local"].kind, ProviderKind::Ollama);
        assert_eq!(c.prices["gpt-4o"].output_per_mtok, 10.0);
        assert_eq!(c.retry.max_attempts, 2);
        assert_eq!(c.retry.initial_delay_ms, 500);
        assert_eq!(c.breaker.cooldown_ms, 5);
        assert_eq!(c.shell_allow, vec!["cargo test".to_string()]);

        let c = Config::load_with_env(
            cwd.path(),
            Some(cfg_dir.path()),
            &env(&[
                ("LEV_PROVIDER", "local"),
                ("LEV_MODEL", "qwen"),
                ("OLLAMA_HOST", "0.0.0.0:1234"),
            ]),
        )
        .unwrap();
        assert_eq!(c.provider.kind, ProviderKind::Ollama);
        assert_eq!(c.provider.model.as_deref(), Some("qwen"));
        assert_eq!(
            c.provider.base_url.as_deref(),
            Some("http://0.0.0.0:1234/v1")
        );

        let c = Config::from_env(
            cwd.path(),
            &env(&[
                ("LEV_PROVIDER", "openai"),
                ("OPENAI_BASE_URL", "http://h/v1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.provider.base_url.as_deref(), Some("http://h/v1"));
    }

    #[test]
    fn unknown_keys_report_line_and_column() {
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(
            cwd.path().join("lev.yaml"),
            "provider: openai\nretry:\n  max_attempts: 3\n  max_atempts: 4\n",
        )
        .unwrap();
        let err = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap_err();
        let ConfigError::Parse {
            line, col, message, ..
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!((*line, *col), (4, 3), "{err}");
        assert!(message.contains("max_atempts"), "{message}");
        assert!(
            err.to_string().contains("lev.yaml:4:3: unknown field"),
            "{err}"
        );

        std::fs::write(
            cwd.path().join("lev.yaml"),
            "providers:\n  x: { kind: gemini }\n",
        )
        .unwrap();
        let err = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap_err();
        assert!(err.to_string().contains("lev.yaml:2:"), "{err}");
    }

    #[test]
    fn empty_file_and_bad_provider_name() {
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(cwd.path().join("lev.yaml"), "# nothing yet\n").unwrap();
        let c = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap();
        assert_eq!(c.sources.len(), 1);
        let err = Config::load_with_env(cwd.path(), None, &env(&[("LEV_PROVIDER", "gemini")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "LEV_PROVIDER: unknown provider `gemini`; expected one of: openai, anthropic, ollama, scripted"
        );
    }

    #[test]
    fn agent_clis_are_added_or_changed_and_a_bad_pattern_points_at_its_line() {
        let cwd = tempfile::tempdir().unwrap();
        let c = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap();
        assert_eq!(c.agent_clis["claude"].resume, vec!["--resume", "{session}"]);
        std::fs::write(
            cwd.path().join("lev.yaml"),
            "pty:\n  clis:\n    mycli:\n      resume: [--continue, \"{session}\"]\n      session_pattern: 'id=(\\w+)'\n    codex:\n      resume: [resume, --last]\n",
        )
        .unwrap();
        let c = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap();
        assert_eq!(
            c.agent_clis["mycli"].resume,
            vec!["--continue", "{session}"]
        );
        assert_eq!(
            c.agent_clis["mycli"].session_pattern.as_deref(),
            Some("id=(\\w+)")
        );
        assert_eq!(c.agent_clis["codex"].resume, vec!["resume", "--last"]);
        // What the file does not say stays built in.
        assert!(c.agent_clis["codex"].session_pattern.is_some());
        std::fs::write(
            cwd.path().join("lev.yaml"),
            "pty:\n  clis:\n    mycli:\n      session_pattern: 'no group'\n",
        )
        .unwrap();
        let err = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap_err();
        assert!(err.to_string().contains("lev.yaml:4:"), "{err}");
        assert!(err.to_string().contains("no group"), "{err}");
    }

    #[test]
    fn mcp_servers_are_read_and_a_bad_one_points_at_its_line() {
        use crate::config::mcp_servers::McpTransport;
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(
            cwd.path().join("lev.yaml"),
            "mcp_servers:\n  everything:\n    command: node\n    args: [index.js, stdio]\n    cwd: tools\n  search:\n    url: http://127.0.0.1:3001/mcp\n    headers_env: { Authorization: TOKEN }\n    timeout_s: 20\n",
        )
        .unwrap();
        let c = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap();
        let McpTransport::Stdio { args, cwd: dir, .. } = &c.mcp_servers["everything"].transport
        else {
            panic!("{:?}", c.mcp_servers);
        };
        assert_eq!(args, &["index.js", "stdio"]);
        assert_eq!(dir.as_deref(), Some(cwd.path().join("tools").as_path()));
        let search = &c.mcp_servers["search"];
        assert_eq!(search.call_timeout, std::time::Duration::from_secs(20));
        assert!(
            matches!(&search.transport, McpTransport::Http { headers_env, .. } if headers_env["Authorization"] == "TOKEN")
        );
        for (yaml, at, says) in [
            (
                "mcp_servers:\n  a__b:\n    command: x\n",
                "lev.yaml:3:",
                "`__`",
            ),
            (
                "mcp_servers:\n  a:\n    command: x\n    url: http://y\n",
                "lev.yaml:3:",
                "not both",
            ),
            (
                "mcp_servers:\n  a:\n    comand: x\n",
                "lev.yaml:3:",
                "comand",
            ),
        ] {
            std::fs::write(cwd.path().join("lev.yaml"), yaml).unwrap();
            let err = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap_err();
            assert!(err.to_string().contains(at), "{yaml}: {err}");
            assert!(err.to_string().contains(says), "{yaml}: {err}");
        }
    }

    #[test]
    fn scrollback_lines_are_read_and_a_too_small_value_points_at_its_line() {
        let cwd = tempfile::tempdir().unwrap();
        let c = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap();
        assert_eq!(
            c.tui.scrollback_lines,
            super::super::DEFAULT_SCROLLBACK_LINES
        );
        std::fs::write(
            cwd.path().join("lev.yaml"),
            "tui:\n  scrollback_lines: 5000\n",
        )
        .unwrap();
        let c = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap();
        assert_eq!(c.tui.scrollback_lines, 5000);
        std::fs::write(cwd.path().join("lev.yaml"), "tui:\n  scrollback_lines: 3\n").unwrap();
        let err = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("lev.yaml:2:"), "{text}");
        assert!(text.contains("at least 100"), "{text}");
    }

    #[test]
    fn attention_settings_layer_and_bad_values_point_at_the_line() {
        let cfg_dir = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        let c = Config::load_with_env(cwd.path(), Some(cfg_dir.path()), &env(&[])).unwrap();
        assert_eq!(c.tui.attention, AttentionSettings::default());
        assert!(c.tui.attention.bell);
        assert_eq!(c.tui.attention.notify, Notify::Both);

        std::fs::write(
            cfg_dir.path().join("config.yaml"),
            "tui:\n  attention:\n    bell: false\n    notify: osc777\n",
        )
        .unwrap();
        std::fs::write(
            cwd.path().join("lev.yaml"),
            "tui: { attention: { notify: none } }\n",
        )
        .unwrap();
        let c = Config::load_with_env(cwd.path(), Some(cfg_dir.path()), &env(&[])).unwrap();
        assert_eq!(
            c.tui.attention,
            AttentionSettings {
                bell: false,
                notify: Notify::None
            }
        );

        std::fs::write(
            cwd.path().join("lev.yaml"),
            "provider: openai\ntui:\n  attention:\n    notify: osc8\n",
        )
        .unwrap();
        let err = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("lev.yaml:4:13:"), "{text}");
        assert!(
            text.contains("osc8") && text.contains("osc9") && text.contains("none"),
            "{text}"
        );

        std::fs::write(
            cwd.path().join("lev.yaml"),
            "tui:\n  attention:\n    bell: loud\n",
        )
        .unwrap();
        let err = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap_err();
        assert!(err.to_string().contains("lev.yaml:3:11:"), "{err}");

        std::fs::write(cwd.path().join("lev.yaml"), "tui:\n  atention: {}\n").unwrap();
        let err = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap_err();
        assert!(
            err.to_string()
                .contains("lev.yaml:2:3: unknown field `atention`"),
            "{err}"
        );
    }

    #[test]
    fn fallback_by_name_or_inline_with_positions_in_errors() {
        let cwd = tempfile::tempdir().unwrap();
        let write = |text: &str| std::fs::write(cwd.path().join("lev.yaml"), text).unwrap();
        write(
            "providers:\n  backup: { kind: ollama, base_url: http://h:1/v1, model: small }\nfallback:\n  provider: backup\n  model: tiny\n",
        );
        let c = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap();
        let f = c.fallback.unwrap();
        assert_eq!(f.kind, ProviderKind::Ollama);
        assert_eq!(f.base_url.as_deref(), Some("http://h:1/v1"));
        assert_eq!(f.model.as_deref(), Some("tiny"));

        write("fallback: { kind: scripted, cassette: c.yaml }\n");
        let c = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap();
        let f = c.fallback.unwrap();
        assert_eq!(f.kind, ProviderKind::Scripted);
        assert_eq!(f.cassette, Some(cwd.path().join("c.yaml")));

        write("model: m\nfallback:\n  provider: nowhere\n");
        let err = Config::load_with_env(cwd.path(), None, &env(&[])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("lev.yaml:3:3: fallback: no provider named `nowhere`"),
            "{text}"
        );

        write("fallback: { provider: x, kind: openai }\n");
        let text = Config::load_with_env(cwd.path(), None, &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("lev.yaml:1:11: fallback: give either"),
            "{text}"
        );

        write("fallback: { provider: openai, base_url: http://h }\n");
        let text = Config::load_with_env(cwd.path(), None, &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(text.contains("only `model:` may be set"), "{text}");

        write("fallback:\n  kind: openai\n  base_ur: http://h\n");
        let text = Config::load_with_env(cwd.path(), None, &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(text.contains("lev.yaml:3:3: unknown field"), "{text}");
    }
}
