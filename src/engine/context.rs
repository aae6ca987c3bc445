//! A journaled agent request, whole: the `context_assembled` entry of a
//! step's turn with each part's text read back from the blobs it points
//! to (`Query::Context`, for `lev show --context` and the workbench's
//! context inspector).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError};
use crate::protocol::{ContextPart, Event, LeftOut, RunId, StepKey};
use crate::workflow;

/// One request of an agent step, with its parts' texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextShown {
    pub step: StepKey,
    pub attempt: u32,
    pub turn: u32,
    /// The turns of that attempt with a journaled request.
    pub turns: Vec<u32>,
    pub counter: String,
    pub budget: Option<u64>,
    pub total: u64,
    pub parts: Vec<PartShown>,
    pub left_out: Vec<LeftOut>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartShown {
    #[serde(flatten)]
    pub part: ContextPart,
    /// `None` when its blob is missing or damaged.
    pub text: Option<String>,
}

impl Engine {
    /// The request `step` sent at `turn` (default: its last) of its latest
    /// attempt that sent one.
    pub(super) async fn context(
        &self,
        run: &RunId,
        step: &StepKey,
        turn: Option<u32>,
    ) -> Result<ContextShown, EngineError> {
        let events = workflow::read_run(self.journal(), run).await?;
        if events.is_empty() {
            return Err(EngineError::RunNotFound(run.clone()));
        }
        // (attempt, turn) → (counter, budget, total, parts, left_out, blob, shared)
        let mut found = BTreeMap::new();
        for r in events {
            if let Event::ContextAssembled {
                step: s,
                attempt,
                turn,
                counter,
                budget,
                total,
                parts,
                left_out,
                blob,
                shared,
                ..
            } = r.event
                && &s == step
            {
                found.insert(
                    (attempt.0, turn),
                    (counter, budget, total, parts, left_out, blob, shared),
                );
            }
        }
        let Some(&(attempt, last)) = found.keys().next_back() else {
            return Err(EngineError::Refused(format!(
                "step `{step}` of run {run} sent no journaled agent request (is it an agent step, and has it started?)"
            )));
        };
        let turns: Vec<u32> = found
            .keys()
            .filter(|(a, _)| *a == attempt)
            .map(|(_, t)| *t)
            .collect();
        let turn = turn.unwrap_or(last);
        let Some((counter, budget, total, parts, left_out, _, shared)) =
            found.get(&(attempt, turn)).cloned()
        else {
            return Err(EngineError::Refused(format!(
                "step `{step}` sent no request at turn {turn}; its turns are {}",
                turns
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let mut texts: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for p in &parts {
            if texts.contains_key(&p.text_turn) {
                continue;
            }
            // Turn 0 is the blob of texts shared by every step of a mode.
            let blob = match p.text_turn {
                0 => shared.clone(),
                t => found.get(&(attempt, t)).and_then(|f| f.5.clone()),
            };
            let list = match blob {
                Some(hash) => self
                    .journal()
                    .blob(&hash)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            texts.insert(p.text_turn, list);
        }
        let parts = parts
            .into_iter()
            .map(|part| {
                let text = texts
                    .get(&part.text_turn)
                    .and_then(|l| l.get(part.text_index as usize))
                    .cloned();
                PartShown { part, text }
            })
            .collect();
        Ok(ContextShown {
            step: step.clone(),
            attempt,
            turn,
            turns,
            counter,
            budget,
            total,
            parts,
            left_out,
        })
    }
}

impl ContextShown {
    /// The request as text for a terminal: a table of parts, then each
    /// part's text (`with_text`).
    pub fn text(&self, with_text: bool) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let budget = self
            .budget
            .map(|b| format!(" of a budget of {b}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "step {} attempt {} turn {} (turns {}): {} tokens{budget}, counted by {}",
            self.step,
            self.attempt,
            self.turn,
            self.turns
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            self.total,
            self.counter
        );
        let _ = writeln!(out, "\n{:>8}  {:<12} PART", "TOKENS", "KIND");
        for p in &self.parts {
            let note = p
                .part
                .note
                .as_ref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{:>8}  {:<12} {}{note}",
                p.part.tokens,
                p.part.kind,
                crate::text::one_line(&p.part.name, 80)
            );
        }
        let _ = writeln!(out, "{:>8}  total", self.total);
        for l in &self.left_out {
            let _ = writeln!(
                out,
                "     -    left out     {}: {}",
                crate::text::one_line(&l.name, 60),
                l.why
            );
        }
        if with_text {
            for p in &self.parts {
                let _ = writeln!(
                    out,
                    "\n── {} · {} tokens ──",
                    crate::text::one_line(&p.part.name, 80),
                    p.part.tokens
                );
                match &p.text {
                    Some(t) => {
                        let _ = writeln!(out, "{}", crate::text::sanitize(t));
                    }
                    None => {
                        let _ = writeln!(out, "(its text is missing from the journal)");
                    }
                }
            }
        }
        out
    }
}
