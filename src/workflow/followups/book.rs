//! What a run's journal says about its follow-ups: each one spawned (with
//! what defines it), each refused, every chain's start and the
//! fingerprints it has seen, whether callbacks were stopped, and how many
//! follow-ups failed in a row. Folded from events like the rest of the
//! history; the live run keeps its own copy up to date as it records.

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::{Event, Millis, StepKey};

/// A spawned follow-up, as its `followup_spawned` entry defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct Spawn {
    pub key: StepKey,
    pub parent: StepKey,
    pub root: StepKey,
    pub depth: u32,
    pub mode: String,
    pub prompt: String,
    pub title: String,
    pub why: Option<String>,
    pub by: String,
    pub dedup: String,
    pub chain_started: Millis,
}

/// One callback chain: the follow-ups grown from one declared step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chain {
    /// When its first follow-up was spawned.
    pub started: Option<Millis>,
    /// Mode-and-prompt fingerprints of its follow-ups.
    pub seen: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Book {
    pub spawned: BTreeMap<StepKey, Spawn>,
    /// Refused follow-ups' keys, with the guard that refused each.
    pub refused: BTreeMap<StepKey, String>,
    /// By root step.
    pub chains: BTreeMap<StepKey, Chain>,
    /// Why callbacks are stopped, once they are.
    pub stopped: Option<String>,
    /// Follow-ups that failed one after the other, counted in the order
    /// they settled; a success starts again at 0 (a cancelled one, by the
    /// user or its chain's time box, counts neither way).
    pub failures_in_a_row: u32,
    /// Follow-ups the user asked to run again (`lev retry`), and when: the
    /// time box of such a run counts from the request, not the chain's
    /// start (a retry is the user's decision, not the chain growing).
    pub retried: BTreeMap<StepKey, Millis>,
}

impl Book {
    /// Follow-ups spawned in the run.
    pub fn count(&self) -> u32 {
        self.spawned.len() as u32
    }

    /// Follow-ups `parent` spawned.
    pub fn count_of(&self, parent: &StepKey) -> u32 {
        self.spawned
            .values()
            .filter(|s| &s.parent == parent)
            .count() as u32
    }

    pub fn is_followup(&self, key: &StepKey) -> bool {
        self.spawned.contains_key(key)
    }

    /// Adds a spawn (from the journal or just recorded).
    pub fn add(&mut self, spawn: Spawn) {
        let chain = self.chains.entry(spawn.root.clone()).or_default();
        chain.started.get_or_insert(spawn.chain_started);
        chain.seen.insert(spawn.dedup.clone());
        self.spawned.insert(spawn.key.clone(), spawn);
    }

    /// A follow-up settled: `ok` when it succeeded. Returns the failures in
    /// a row since the last success.
    pub fn settled(&mut self, key: &StepKey, ok: bool) -> u32 {
        if self.is_followup(key) {
            self.failures_in_a_row = if ok { 0 } else { self.failures_in_a_row + 1 };
        }
        self.failures_in_a_row
    }

    /// Folds one recorded event (those about follow-ups; the rest are ignored).
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::FollowupSpawned {
                step,
                parent,
                root,
                depth,
                mode,
                prompt,
                title,
                why,
                by,
                dedup,
                chain_started,
                ..
            } => self.add(Spawn {
                key: step.clone(),
                parent: parent.clone(),
                root: root.clone(),
                depth: *depth,
                mode: mode.clone(),
                prompt: prompt.clone(),
                title: title.clone(),
                why: why.clone(),
                by: by.clone(),
                dedup: dedup.clone(),
                chain_started: *chain_started,
            }),
            Event::FollowupRefused { step, guard, .. } => {
                self.refused.insert(step.clone(), guard.clone());
            }
            Event::StepRetryRequested { step, also, at } => {
                for key in std::iter::once(step).chain(also) {
                    if self.is_followup(key) {
                        self.retried.insert(key.clone(), *at);
                    }
                }
            }
            Event::CallbacksStopped { reason, .. } => {
                self.stopped.get_or_insert_with(|| reason.clone());
            }
            Event::StepSucceeded { step, .. } => {
                self.settled(step, true);
            }
            Event::StepFailed {
                step,
                retry_in_ms: None,
                ..
            } => {
                self.settled(step, false);
            }
            _ => {}
        }
    }
}

/// A follow-up's fingerprint for duplicate detection: its mode and its
/// prompt with case and runs of white space ignored.
pub fn dedup_key(mode: &str, prompt: &str) -> String {
    let words: Vec<String> = prompt.split_whitespace().map(str::to_lowercase).collect();
    let text = format!("{}\n{}", mode.trim(), words.join(" "));
    blake3::hash(text.as_bytes()).to_hex()[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_that_differ_in_case_or_spacing_are_duplicates() {
        assert_eq!(
            dedup_key("coder", "Fix  the\tlogin\n bug"),
            dedup_key("coder", "fix the login bug")
        );
        assert_ne!(
            dedup_key("coder", "fix the login bug"),
            dedup_key("tdd", "fix the login bug")
        );
        assert_ne!(
            dedup_key("coder", "fix the login bug"),
            dedup_key("coder", "fix the logout bug")
        );
    }

    #[test]
    fn failures_in_a_row_count_follow_ups_only_and_reset_on_success() {
        let mut book = Book::default();
        for k in ["a.1", "a.2", "a.3"] {
            book.add(Spawn {
                key: StepKey::new(k),
                parent: StepKey::new("a"),
                root: StepKey::new("a"),
                depth: 1,
                mode: "coder".into(),
                prompt: k.into(),
                title: k.into(),
                why: None,
                by: "workflow".into(),
                dedup: k.into(),
                chain_started: Millis(5),
            });
        }
        assert_eq!(book.settled(&StepKey::new("a.1"), false), 1);
        // A declared step's failure is not a follow-up's.
        assert_eq!(book.settled(&StepKey::new("b"), false), 1);
        assert_eq!(book.settled(&StepKey::new("a.2"), false), 2);
        assert_eq!(book.settled(&StepKey::new("a.3"), true), 0);
        assert_eq!(book.count_of(&StepKey::new("a")), 3);
        assert_eq!(book.chains[&StepKey::new("a")].started, Some(Millis(5)));
    }
}
