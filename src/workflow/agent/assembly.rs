//! An agent's requests as named parts (`llm::context`): its mode's system
//! prompt in pieces, its prompt with each value it reads, the memory-bank
//! notes its mode includes, then its conversation. Each request is fitted
//! to the mode's `context.token_budget` and journaled
//! (`context_assembled`, the texts in a content-addressed blob) with the
//! reply it gets, so the context inspector and `lev show --context` show
//! any request, live or replayed.

use std::collections::HashMap;

use serde_json::Value;

use super::super::attempt::{AttemptCtx, StepError};
use crate::llm::context::{self, Assembled, Counts, Draft, DraftMessage, Kind, Part};
use crate::llm::tokens::Counter;
use crate::llm::{Message, Role};
use crate::memory::{self, Namespace};
use crate::protocol::{ContextPart, Event, LeftOut};
use crate::spec::Mode;

/// Notes one `memory://` include adds, at most.
const MEMORY_HITS: usize = 5;

pub(super) struct Assembly {
    counter: Counter,
    budget: Option<u64>,
    system: Vec<Part>,
    /// The first message's parts: the prompt, its values, memory notes.
    first: Vec<Part>,
    counts: Counts,
    /// Texts already in a turn's blob of this attempt: (turn, index).
    stored: HashMap<blake3::Hash, (u32, u32)>,
}

/// The system prompt's parts: the role, then what the mode adds.
pub(super) fn system_parts(mode: &Mode, schema: Option<&Value>) -> Vec<Part> {
    let mut parts = vec![Part::new("role", Kind::System, mode.role.trim())];
    let list = |head: &str, items: &[String]| {
        let mut s = format!("\n\n{head}\n");
        for i in items {
            s.push_str(&format!("- {i}\n"));
        }
        s
    };
    if !mode.hints.is_empty() {
        parts.push(Part::new(
            "mode hints",
            Kind::System,
            list("Keep in mind:", &mode.hints),
        ));
    }
    if !mode.ask_user_when.is_empty() {
        parts.push(Part::new(
            "ask_user_when",
            Kind::System,
            list(
                "Ask the user with `ask_user` before you act when:",
                &mode.ask_user_when,
            ),
        ));
    }
    if mode.network == Some(false) {
        let text = if crate::commands::offline::available() {
            "\n\nYour shell commands run without a network: inside them only their own loopback answers (127.0.0.1), nothing outside this machine."
        } else {
            "\n\nDo not use the network in your shell commands."
        };
        parts.push(Part::new("network", Kind::System, text));
    }
    if let Some(schema) = schema {
        parts.push(Part::new(
            "output schema",
            Kind::System,
            format!(
                "\n\nWhen you are done, reply with a single JSON document (no prose around it) matching this JSON Schema:\n{schema}"
            ),
        ));
    }
    parts
}

impl Assembly {
    /// The assembly of one attempt, and the first message's text (the
    /// prompt's pieces and the memory notes, joined).
    pub(super) async fn new(
        actx: &AttemptCtx,
        mode: &Mode,
        schema: Option<&Value>,
        model: &str,
        prompt: &[(Option<String>, String)],
    ) -> Result<(Assembly, String), StepError> {
        let mut first: Vec<Part> = prompt
            .iter()
            .map(|(hole, text)| match hole {
                Some(h) => Part::new(h.clone(), Kind::Upstream, text.clone()),
                None => Part::new("prompt", Kind::Prompt, text.clone()),
            })
            .collect();
        let prompt_text: String = prompt.iter().map(|(_, t)| t.as_str()).collect();
        first.extend(memory_parts(actx, mode, &prompt_text).await?);
        let text = first.iter().map(|p| p.text.as_str()).collect();
        Ok((
            Assembly {
                counter: Counter::for_model(model),
                budget: mode.token_budget.map(u64::from),
                system: system_parts(mode, schema),
                first,
                counts: Counts::default(),
                stored: HashMap::new(),
            },
            text,
        ))
    }

    /// The system prompt as one text.
    pub(super) fn system_text(&self) -> String {
        self.system.iter().map(|p| p.text.as_str()).collect()
    }

    /// The request for `messages` (the conversation so far), fitted to
    /// the budget.
    pub(super) fn request(&mut self, messages: &[Message]) -> Assembled {
        let draft = self.draft(messages);
        context::assemble(&draft, self.budget, self.counter, &mut self.counts)
    }

    fn draft(&self, messages: &[Message]) -> Draft {
        let mut turn = 0u32;
        let mut calls: HashMap<String, String> = HashMap::new();
        let mut out = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let parts = if i == 0 {
                self.first.clone()
            } else {
                match m.role {
                    Role::Assistant => {
                        turn += 1;
                        let mut parts = vec![Part::new(
                            format!("turn {turn} reply"),
                            Kind::Reply,
                            m.content.clone(),
                        )];
                        for c in &m.tool_calls {
                            calls.insert(c.id.clone(), c.name.clone());
                            parts.push(Part::new(
                                format!("call {} (turn {turn})", c.name),
                                Kind::Reply,
                                c.arguments.clone(),
                            ));
                        }
                        parts
                    }
                    Role::Tool => {
                        let name = m
                            .tool_call_id
                            .as_ref()
                            .and_then(|id| calls.get(id))
                            .map_or("tool", String::as_str);
                        vec![Part::new(
                            format!("turn {turn} {name}"),
                            Kind::ToolOutput,
                            m.content.clone(),
                        )]
                    }
                    Role::User => vec![Part::new(
                        format!("message before turn {}", turn + 1),
                        Kind::Message,
                        m.content.clone(),
                    )],
                }
            };
            out.push(DraftMessage {
                message: m.clone(),
                parts,
            });
        }
        Draft {
            system: self.system.clone(),
            messages: out,
        }
    }

    /// Journals what the request of `turn` is made of, with the next fact
    /// of the attempt (its reply), the texts not stored before in blobs of
    /// the same commit. A turn whose reply is recorded already was
    /// journaled.
    pub(super) fn record(&mut self, actx: &AttemptCtx, turn: u32, sent: &Assembled) {
        let ctx = &actx.ctx;
        if ctx
            .history
            .replies
            .contains_key(&(actx.key.clone(), actx.attempt, turn))
        {
            return;
        }
        // The system prompt's texts are the same for every step of a mode:
        // one blob that all of them share (`text_turn` 0). The other texts
        // go to this turn's blob, each once per attempt.
        let mut shared_texts: Vec<&str> = Vec::new();
        let mut new_texts: Vec<&str> = Vec::new();
        let mut parts = Vec::with_capacity(sent.parts.len());
        for p in &sent.parts {
            let (text_turn, text_index) = if p.kind == Kind::System {
                shared_texts.push(&p.text);
                (0, shared_texts.len() as u32 - 1)
            } else {
                let hash = blake3::hash(p.text.as_bytes());
                match self.stored.get(&hash) {
                    Some(at) => *at,
                    None => {
                        new_texts.push(&p.text);
                        let at = (turn, new_texts.len() as u32 - 1);
                        self.stored.insert(hash, at);
                        at
                    }
                }
            };
            parts.push(ContextPart {
                name: p.name.clone(),
                kind: p.kind.as_str().to_string(),
                tokens: p.tokens,
                note: p.note.clone(),
                text_turn,
                text_index,
            });
        }
        let mut blobs = Vec::new();
        let mut blob_of = |texts: &[&str]| {
            if texts.is_empty() {
                return None;
            }
            let bytes = serde_json::to_vec(texts).unwrap_or_default();
            let hash = crate::journal::blob_hash(&bytes);
            blobs.push(bytes);
            Some(hash)
        };
        let blob = blob_of(&new_texts);
        let shared = blob_of(&shared_texts);
        let event = Event::ContextAssembled {
            step: actx.key.clone(),
            attempt: actx.attempt,
            turn,
            counter: sent.counter.name().to_string(),
            budget: sent.budget,
            total: sent.total,
            parts,
            left_out: sent
                .left_out
                .iter()
                .map(|(name, why)| LeftOut {
                    name: name.clone(),
                    why: why.clone(),
                })
                .collect(),
            blob,
            shared,
            at: ctx.now(),
        };
        actx.defer_with_blobs(event, blobs);
    }
}

/// What the mode's `context.include` entries add to the first message —
/// memory-bank notes (`memory://…`), MCP resources and prompts
/// (`mcp://…`): what this attempt sent before a restart (journaled with
/// its first request), else a search of the memory bank for the prompt and
/// the MCP servers' texts read now.
async fn memory_parts(
    actx: &AttemptCtx,
    mode: &Mode,
    prompt: &str,
) -> Result<Vec<Part>, StepError> {
    let ctx = &actx.ctx;
    let journal = ctx.rec.journal();
    if let Some((parts, blob)) = ctx
        .history
        .first_contexts
        .get(&(actx.key.clone(), actx.attempt))
    {
        let texts: Vec<String> = match blob {
            Some(hash) => journal
                .blob(hash)
                .await
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        return Ok(parts
            .iter()
            .filter(|p| p.kind == Kind::Memory.as_str() && p.text_turn == 1)
            .filter_map(|p| {
                let text = texts.get(p.text_index as usize)?;
                Some(Part::new(p.name.clone(), Kind::Memory, text.clone()))
            })
            .collect());
    }
    let mut out = Vec::new();
    for include in &mode.context_include {
        if let Some(text) = super::super::mcp::include(actx, include).await? {
            out.push(Part::new(include.clone(), Kind::Memory, text));
            continue;
        }
        let Some(namespace) = namespace_of(include, ctx.memory_run().as_str(), &ctx.workspace)
        else {
            continue;
        };
        // A namespace without notes (most runs) costs no search; known
        // empty, not even a read.
        if journal
            .memory_is_empty(&namespace.key())
            .await
            .unwrap_or(false)
        {
            continue;
        }
        // The notes that match the prompt best, then the newest others.
        let search = |text: &str| {
            let query = memory::Query {
                text: text.to_string(),
                tags: Vec::new(),
                namespaces: Some(vec![namespace.key()]),
                limit: MEMORY_HITS,
            };
            async move {
                memory::search(journal, &query).await.unwrap_or_else(|e| {
                    tracing::warn!(step = %actx.key, %include, "memory search failed: {e}");
                    Vec::new()
                })
            }
        };
        let newest = search("").await;
        let mut hits: Vec<memory::Hit> = Vec::new();
        for h in search(prompt).await.into_iter().chain(newest) {
            let seen = hits.iter().any(|o| o.entry.key == h.entry.key);
            if !seen && hits.len() < MEMORY_HITS {
                hits.push(h);
            }
        }
        if hits.is_empty() {
            continue;
        }
        let mut text = format!("\n\nNotes from the memory bank ({include}):\n");
        for h in hits {
            text.push_str(&format!(
                "- [{}] {}\n",
                h.entry.key,
                crate::text::one_line(&h.entry.text, 400)
            ));
        }
        out.push(Part::new(include.clone(), Kind::Memory, text));
    }
    Ok(out)
}

/// The namespace a `memory://` include names: `run/current` (this run),
/// `run/<id>`, `project` (this workspace's), `global`. Other schemes are
/// not read (`lev modes show` says so).
pub(crate) fn namespace_of(
    include: &str,
    run: &str,
    workspace: &std::path::Path,
) -> Option<Namespace> {
    let rest = include.trim().strip_prefix("memory://")?;
    match rest.trim_end_matches('/') {
        "run" | "run/current" => Some(Namespace::Run(run.to_string())),
        "project" => Some(Namespace::project(workspace)),
        "global" => Some(Namespace::Global),
        other => other
            .strip_prefix("run/")
            .filter(|id| !id.is_empty())
            .map(|id| Namespace::Run(id.to_string())),
    }
}
