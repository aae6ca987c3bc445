//! What a program's screen is made into: the bytes panes get, with lev's
//! keys taken out (`ScreenRedactor`); whether it has stayed the same long
//! enough for a rule (`ScreenWatch`, `Rule`); its last lines in words.

use std::time::{Duration, Instant};

use crate::spec::ScreenRule;

/// How long a program's quiet lets held-back output go to the screen.
pub(super) const REDACT_PAUSE: Duration = Duration::from_millis(30);

/// lev's keys taken out of what a program writes before any pane shows
/// it: the bytes as UTF-8 text (a character cut between two chunks waits
/// for its end; invalid bytes become U+FFFD), through the stream redactor.
pub(super) struct ScreenRedactor {
    text: crate::secrets::StreamRedactor,
    /// The start of a character the next chunk ends.
    cut: Vec<u8>,
}

impl ScreenRedactor {
    pub(super) fn new() -> ScreenRedactor {
        ScreenRedactor::with(&crate::secrets::current())
    }

    fn with(secrets: &std::sync::Arc<crate::secrets::Secrets>) -> ScreenRedactor {
        ScreenRedactor {
            text: secrets.stream(),
            cut: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.cut.extend_from_slice(bytes);
        let whole = match std::str::from_utf8(&self.cut) {
            Ok(_) => self.cut.len(),
            // Incomplete at the end: keep that for the next chunk.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.cut.len(),
        };
        let rest = self.cut.split_off(whole);
        let text = String::from_utf8_lossy(&self.cut).into_owned();
        self.cut = rest;
        self.text.push(&text).into_bytes()
    }

    pub(super) fn flush(&mut self) -> Vec<u8> {
        let mut out = self.text.finish().into_bytes();
        if !self.cut.is_empty() {
            out.extend(String::from_utf8_lossy(&std::mem::take(&mut self.cut)).as_bytes());
        }
        out
    }
}

/// A screen rule with its pattern compiled once.
pub(super) struct Rule {
    pattern: Option<regex::Regex>,
    idle: Duration,
}

impl Rule {
    pub(super) fn of(rule: &ScreenRule) -> Rule {
        Rule {
            // Checked when the workflow was loaded.
            pattern: rule
                .pattern
                .as_deref()
                .and_then(|p| regex::RegexBuilder::new(p).size_limit(1 << 20).build().ok()),
            idle: Duration::from_millis(rule.idle_ms),
        }
    }
}

/// Whether the screen has stayed the same long enough for a rule, with
/// hysteresis: it must be unchanged for the rule's quiet time, counted
/// anew after lev typed into it.
#[derive(Default)]
pub(super) struct ScreenWatch {
    /// The program's output count when the screen was last read.
    pub(super) drawn: u64,
    hash: u64,
    since: Option<Instant>,
    pub(super) text: String,
    /// The state it was last found in held for this screen already.
    fired: bool,
}

impl ScreenWatch {
    pub(super) fn saw(&mut self, text: &str) {
        let hash = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            text.hash(&mut h);
            h.finish()
        };
        if hash != self.hash || self.since.is_none() {
            self.hash = hash;
            self.since = Some(Instant::now());
            self.text = text.to_string();
            self.fired = false;
        }
    }

    /// lev typed: the screen must change (or stay quiet anew) before a rule holds again.
    pub(super) fn acted(&mut self) {
        self.since = Some(Instant::now());
        self.fired = true;
    }

    pub(super) fn holds(&mut self, rule: &Rule) -> bool {
        if self.fired {
            return false;
        }
        let quiet = self.since.is_some_and(|s| s.elapsed() >= rule.idle);
        let matches = rule
            .pattern
            .as_ref()
            .is_none_or(|re| re.is_match(&self.text));
        if quiet && matches {
            self.fired = true;
            return true;
        }
        false
    }
}

/// The last `n` non-blank lines of a screen, joined with ` ⏎ `.
pub(super) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let from = lines.len().saturating_sub(n);
    lines[from..].join(" ⏎ ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_screen_is_redacted_across_chunks_and_cut_characters() {
        let secrets = std::sync::Arc::new(crate::secrets::Secrets::from_names(
            ["OPENAI_API_KEY".to_string()],
            &|_| Some("sk-live-0123456789".to_string()),
        ));
        let mut r = ScreenRedactor::with(&secrets);
        let text = "\x1b[31m宽 sk-live-0123456789 done\x1b[0m";
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        // Every cut: inside the escape, the wide character, the key.
        for chunk in bytes.chunks(3) {
            out.extend(r.push(chunk));
        }
        out.extend(r.flush());
        let shown = String::from_utf8(out).unwrap();
        assert!(!shown.contains("sk-live-0123456789"), "{shown}");
        assert!(shown.starts_with("\x1b[31m宽 "), "{shown}");
        assert!(shown.ends_with(" done\x1b[0m"), "{shown}");
        // Bytes that are not UTF-8 are shown as such, not dropped or held.
        assert_eq!(String::from_utf8(r.push(b"a\xffb")).unwrap(), "a\u{fffd}b");
    }
}
