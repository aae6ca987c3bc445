//! lev's provider secrets, kept away from everything lev did not write to
//! talk to the provider: child processes (shell steps, `run_shell`, git) get
//! an environment without them, and any known secret value is replaced by
//! `[redacted]` before output is journaled, shown or sent back to a model.
//!
//! The secrets are the variables lev reads keys from — `OPENAI_API_KEY`,
//! `ANTHROPIC_API_KEY`, `PGPASSWORD` and every `api_key_env` in the config —
//! computed once per process ([`install`]) from the config and the
//! environment, and values the process keeps secret whatever its config
//! ([`keep_secret`]: the password in a PostgreSQL journal's URL).
//! `LEV_JOURNAL` is withheld from child processes too (it may hold that
//! password). Pure library: no journal, no engine.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use crate::config::{Config, ProviderSettings};

/// What a secret value becomes in output.
pub const REDACTED: &str = "[redacted]";

/// Shorter values are not redacted: they would match ordinary text.
pub const MIN_SECRET_LEN: usize = 8;

/// The variables lev reads keys from even with no config (`PGPASSWORD`:
/// the journal's password when its URL has none).
const DEFAULT_NAMES: [&str; 3] = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PGPASSWORD"];

/// Variables withheld from child processes whose value is not itself a
/// secret but may hold one (the journal's URL, password included; that
/// password is kept secret by [`keep_secret`]).
const HOLDERS: [&str; 1] = ["LEV_JOURNAL"];

/// The secret variable names and their values in this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    names: BTreeSet<String>,
    /// Longest first, so a value containing another is replaced whole.
    values: Vec<String>,
}

static CURRENT: RwLock<Option<Arc<Secrets>>> = RwLock::new(None);

/// Values secret in this process whatever secrets are installed later.
static KEPT: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Makes `secrets` the process's secrets (after the config is loaded),
/// with the values kept secret ([`keep_secret`]).
pub fn install(mut secrets: Secrets) {
    if let Ok(kept) = KEPT.read() {
        secrets.add_values(kept.iter().cloned());
    }
    if let Ok(mut current) = CURRENT.write() {
        *current = Some(Arc::new(secrets));
    }
}

/// Keeps `value` secret in this process from now on (redacted wherever
/// secrets are), whatever secrets are installed after: the password of the
/// journal's URL, known before any config is loaded.
pub fn keep_secret(value: &str) {
    if let Ok(mut kept) = KEPT.write()
        && !kept.iter().any(|k| k == value)
    {
        kept.push(value.to_owned());
    }
    let mut secrets = (*current()).clone();
    secrets.add_values(std::iter::once(value.to_owned()));
    if let Ok(mut current) = CURRENT.write() {
        *current = Some(Arc::new(secrets));
    }
}

/// Computes and installs the secrets named by `config` and the defaults.
pub fn install_from_config(config: &Config) {
    install(Secrets::from_config(config, &|k| std::env::var(k).ok()));
}

/// The process's secrets: those installed, or (before a config was loaded,
/// e.g. a library user) the default variables from the environment.
pub fn current() -> Arc<Secrets> {
    if let Ok(current) = CURRENT.read()
        && let Some(s) = current.as_ref()
    {
        return s.clone();
    }
    let defaults = Arc::new(Secrets::from_names(
        DEFAULT_NAMES.iter().map(|n| n.to_string()),
        &|k| std::env::var(k).ok(),
    ));
    if let Ok(mut current) = CURRENT.write() {
        return current.get_or_insert(defaults).clone();
    }
    defaults
}

impl Secrets {
    /// The secrets named by `names`, with values looked up in `env`.
    pub fn from_names(
        names: impl IntoIterator<Item = String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Secrets {
        let names: BTreeSet<String> = names.into_iter().filter(|n| !n.trim().is_empty()).collect();
        let values: Vec<String> = names.iter().filter_map(|name| env(name)).collect();
        let mut secrets = Secrets {
            names,
            values: Vec::new(),
        };
        secrets.add_values(values);
        secrets.names.extend(HOLDERS.iter().map(|n| n.to_string()));
        secrets
    }

    /// Adds secret values, longest first; values too short to redact
    /// safely are left out.
    fn add_values(&mut self, values: impl IntoIterator<Item = String>) {
        for value in values {
            // Providers send the trimmed key; surrounding whitespace is
            // not part of the secret (and stays in the output).
            let v = value.trim();
            if v.len() >= MIN_SECRET_LEN && !self.values.iter().any(|x| x == v) {
                self.values.push(v.to_string());
            }
        }
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// The default variables plus every `api_key_env` in `config`.
    pub fn from_config(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Secrets {
        let named = std::iter::once(&config.provider)
            .chain(config.providers.values())
            .chain(config.fallback.as_ref())
            .filter_map(|p: &ProviderSettings| p.api_key_env.clone());
        let names = DEFAULT_NAMES.iter().map(|n| n.to_string()).chain(named);
        Secrets::from_names(names, env)
    }

    /// The names of the variables a child process must not inherit.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Removes the secret variables from what `cmd` inherits. Variables the
    /// caller sets on `cmd` afterwards (a step's own `env:`) still pass.
    pub fn withhold(&self, cmd: &mut std::process::Command) {
        for name in &self.names {
            cmd.env_remove(name);
        }
    }

    /// `text` with every secret value replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.values.iter().any(|v| text.contains(v.as_str())) {
            return Cow::Borrowed(text);
        }
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        Cow::Owned(out)
    }

    /// `bytes` (a captured stream) with every secret value replaced.
    pub fn redact_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out: Cow<'a, [u8]> = Cow::Borrowed(bytes);
        for v in &self.values {
            let needle = v.as_bytes();
            if !out.windows(needle.len()).any(|w| w == needle) {
                continue;
            }
            let mut next = Vec::with_capacity(out.len());
            let mut i = 0;
            while i < out.len() {
                if out[i..].starts_with(needle) {
                    next.extend_from_slice(REDACTED.as_bytes());
                    i += needle.len();
                } else {
                    next.push(out[i]);
                    i += 1;
                }
            }
            out = Cow::Owned(next);
        }
        out
    }

    /// A redactor for a stream of chunks (live output), where a value may
    /// be cut between two chunks.
    pub fn stream(self: &Arc<Self>) -> StreamRedactor {
        StreamRedactor {
            secrets: self.clone(),
            held: String::new(),
        }
    }

    /// The length of the longest end of `text` that begins some secret
    /// value (and so may be completed by the next chunk).
    fn open_prefix(&self, text: &str) -> usize {
        let longest = self.values.first().map_or(0, String::len);
        let from = text.len().saturating_sub(longest.saturating_sub(1));
        (from..text.len())
            .filter(|i| text.is_char_boundary(*i))
            .find(|i| {
                let end = &text[*i..];
                self.values.iter().any(|v| v.starts_with(end))
            })
            .map_or(0, |i| text.len() - i)
    }
}

/// Redacts a chunked stream: holds back the end of a chunk that may be the
/// start of a secret value until the next chunk shows whether it is.
#[derive(Debug, Clone)]
pub struct StreamRedactor {
    secrets: Arc<Secrets>,
    held: String,
}

impl StreamRedactor {
    /// The text of `chunk` that can be shown now, redacted.
    pub fn push(&mut self, chunk: &str) -> String {
        self.held.push_str(chunk);
        let text = self.secrets.redact(&self.held).into_owned();
        let keep = self.secrets.open_prefix(&text);
        let (now, later) = text.split_at(text.len() - keep);
        let now = now.to_string();
        self.held = later.to_string();
        now
    }

    /// What is still held at the end of the stream, redacted.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.held);
        self.secrets.redact(&rest).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "sk-live-0123456789abcdef";

    fn secrets() -> Arc<Secrets> {
        Arc::new(Secrets::from_names(
            [
                "OPENAI_API_KEY".to_string(),
                "MY_KEY".to_string(),
                "SHORT".to_string(),
            ],
            &|k| match k {
                "OPENAI_API_KEY" => Some(format!("{KEY}\n")),
                "MY_KEY" => Some("other-secret-value".into()),
                "SHORT" => Some("abc".into()),
                _ => None,
            },
        ))
    }

    #[test]
    fn values_are_redacted_in_text_and_bytes_but_short_ones_are_not() {
        let s = secrets();
        let text = format!("OPENAI_API_KEY={KEY}\nMY_KEY=other-secret-value SHORT=abc");
        let want = "OPENAI_API_KEY=[redacted]\nMY_KEY=[redacted] SHORT=abc";
        assert_eq!(s.redact(&text), want);
        assert_eq!(&*s.redact_bytes(text.as_bytes()), want.as_bytes());
        assert!(matches!(s.redact("nothing here"), Cow::Borrowed(_)));
        let names: Vec<&str> = s.names().collect();
        assert_eq!(names, ["LEV_JOURNAL", "MY_KEY", "OPENAI_API_KEY", "SHORT"]);
    }

    #[test]
    fn the_environment_of_a_child_loses_the_secrets_unless_set_again() {
        let s = secrets();
        let mut cmd = std::process::Command::new("true");
        s.withhold(&mut cmd);
        cmd.env("MY_KEY", "passed on purpose");
        let envs: Vec<(String, Option<String>)> = cmd
            .get_envs()
            .map(|(k, v)| {
                let s = |o: &std::ffi::OsStr| o.to_string_lossy().into_owned();
                (s(k), v.map(s))
            })
            .collect();
        assert!(envs.contains(&("OPENAI_API_KEY".into(), None)));
        assert!(envs.contains(&("MY_KEY".into(), Some("passed on purpose".into()))));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn a_value_cut_anywhere_in_a_stream_is_redacted(
            before in "[a-z =\n]{0,20}",
            after in "[a-z =\n]{0,20}",
            cuts in prop::collection::vec(0usize..80, 0..4),
        ) {
            let s = secrets();
            let text = format!("{before}{KEY}{after}sk-live-");
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).collect();
            cuts.sort_unstable();
            let mut r = s.stream();
            let mut out = String::new();
            let mut last = 0;
            for c in cuts {
                out.push_str(&r.push(&text[last..c]));
                last = c;
            }
            out.push_str(&r.push(&text[last..]));
            out.push_str(&r.finish());
            prop_assert_eq!(out, format!("{before}[redacted]{after}sk-live-"));
        }
    }
}
