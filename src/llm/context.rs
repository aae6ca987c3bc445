//! Assembling an agent's request from named parts within a token budget.
//!
//! A draft is the request as the agent would send it, in parts: the
//! system prompt's (role, hints, output schema), the first message's (the
//! prompt's text, each upstream value it reads, memory-bank notes), and one
//! per later message (a reply, a tool's output, a message or question).
//! Every part is counted; when the total is over the budget, what goes
//! first, in this order:
//!
//! 1. older tool outputs are cut (head and tail kept, a marker between),
//!    to 4,096 tokens, then 2,048, 1,024, 512, 256 — the newest turn's
//!    outputs are kept whole;
//! 2. the oldest exchanges (a reply, the tool outputs and messages after
//!    it) are elided whole, with a marker in the first message, keeping
//!    the last one;
//! 3. memory-bank notes are dropped.
//!
//! What is still over is sent as it is, and the report says by how much.
//! Within the budget (or with none) the request is exactly the draft.
//! Pure and deterministic: the same draft gives the same request, so a
//! resumed agent rebuilds what it sent.

use std::collections::HashMap;
use std::hash::BuildHasher;

use super::tokens::Counter;
use super::{Message, Role};

/// What a part is, which decides what is trimmed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Part of the system prompt (never trimmed).
    System,
    /// The prompt's own text (never trimmed).
    Prompt,
    /// A value the prompt reads from an upstream step or an input.
    Upstream,
    /// What the mode includes (`context.include`): notes from the memory
    /// bank (`memory://…`), MCP resources and prompts (`mcp://…`). Dropped
    /// first when a request is over its budget.
    Memory,
    /// The agent's reply (its text, or one tool call's arguments).
    Reply,
    /// A tool's output, an answer of the user's included.
    ToolOutput,
    /// A message to the agent: the user's, a system question, a correction.
    Message,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::System => "system",
            Kind::Prompt => "prompt",
            Kind::Upstream => "upstream",
            Kind::Memory => "memory",
            Kind::Reply => "reply",
            Kind::ToolOutput => "tool output",
            Kind::Message => "message",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub name: String,
    pub kind: Kind,
    pub text: String,
}

impl Part {
    pub fn new(name: impl Into<String>, kind: Kind, text: impl Into<String>) -> Part {
        Part {
            name: name.into(),
            kind,
            text: text.into(),
        }
    }
}

/// One message of a draft: its content is its parts joined, except
/// `Reply` parts named `call …`, which stand for its tool calls'
/// arguments (counted, sent as the calls they are).
#[derive(Debug, Clone, PartialEq)]
pub struct DraftMessage {
    pub message: Message,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Draft {
    pub system: Vec<Part>,
    pub messages: Vec<DraftMessage>,
}

/// A part as sent: its tokens, and what was done to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub name: String,
    pub kind: Kind,
    pub tokens: u64,
    /// `cut from N tokens`, `added: …`, or `None` when sent as drafted.
    pub note: Option<String>,
    pub text: String,
}

/// The request to send and the report of how it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct Assembled {
    pub system: Option<String>,
    pub messages: Vec<Message>,
    /// Every part sent, in request order (system first).
    pub parts: Vec<Sent>,
    /// Parts left out (elided or dropped), with why.
    pub left_out: Vec<(String, String)>,
    pub total: u64,
    pub budget: Option<u64>,
    pub counter: Counter,
}

/// Counts texts once: an agent's conversation is re-sent every turn.
/// Texts are known by their length and a fast 64-bit hash (hashing every
/// part each turn with blake3 cost more than the rest of assembling); the
/// estimate costs what hashing does, so its counts are not kept.
#[derive(Debug, Default)]
pub struct Counts {
    known: HashMap<(usize, u64), u64>,
}

impl Counts {
    pub fn count(&mut self, counter: Counter, text: &str) -> u64 {
        if counter == Counter::Estimate {
            return counter.count(text);
        }
        let hash = foldhash::quality::FixedState::default().hash_one(text);
        *self
            .known
            .entry((text.len(), hash))
            .or_insert_with(|| counter.count(text))
    }
}

/// Tool-output caps tried in turn when over budget.
const CAPS: [u64; 5] = [4096, 2048, 1024, 512, 256];

fn is_call(p: &Part) -> bool {
    p.kind == Kind::Reply && p.name.starts_with("call ")
}

/// Cuts `text` to about `cap` of its `tokens`: its head and tail, with a
/// marker saying what went. Works on bytes (at character boundaries), so
/// cutting a long output costs what copying the kept part does.
fn cut(text: &str, tokens: u64, cap: u64) -> String {
    let keep = ((text.len() as u64).saturating_mul(cap) / tokens.max(1)) as usize;
    let mut head = (keep * 2 / 3).min(text.len());
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len().saturating_sub(keep - keep * 2 / 3).max(head);
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    let mut out = String::with_capacity(head + (text.len() - tail) + 80);
    out.push_str(&text[..head]);
    out.push_str(&format!(
        "\n[… {} of {tokens} tokens cut to fit the context budget …]\n",
        tokens.saturating_sub(cap)
    ));
    out.push_str(&text[tail..]);
    out
}

/// Assembles `draft` within `budget` (see the module's order). Each
/// part is counted once (through `counts`, so a part sent on an earlier
/// turn is not counted again); trimming works on the counts.
pub fn assemble(
    draft: &Draft,
    budget: Option<u64>,
    counter: Counter,
    counts: &mut Counts,
) -> Assembled {
    let system_tokens: Vec<u64> = draft
        .system
        .iter()
        .map(|p| counts.count(counter, &p.text))
        .collect();
    // The messages kept, each with its parts as sent, their tokens and notes.
    let mut kept: Vec<Kept<'_>> = draft
        .messages
        .iter()
        .map(|m| Kept {
            message: &m.message,
            parts: m
                .parts
                .iter()
                .map(|p| KeptPart {
                    tokens: counts.count(counter, &p.text),
                    part: std::borrow::Cow::Borrowed(p),
                    note: None,
                })
                .collect(),
        })
        .collect();
    let mut left_out = Vec::new();
    let mut sum: u64 = system_tokens.iter().sum::<u64>()
        + kept
            .iter()
            .flat_map(|m| &m.parts)
            .map(|p| p.tokens)
            .sum::<u64>();
    if let Some(budget) = budget
        && sum > budget
    {
        // 1. Older tool outputs are cut, ever shorter.
        let newest_reply = kept
            .iter()
            .rposition(|m| m.message.role == Role::Assistant)
            .unwrap_or(0);
        'caps: for cap in CAPS {
            for m in kept.iter_mut().take(newest_reply) {
                for p in m.parts.iter_mut() {
                    if p.part.kind != Kind::ToolOutput || p.tokens <= cap {
                        continue;
                    }
                    let before = p.drafted_tokens();
                    let text = cut(&p.part.text, p.tokens, cap);
                    let after = counts.count(counter, &text);
                    sum = sum - p.tokens + after;
                    p.part.to_mut().text = text;
                    p.tokens = after;
                    p.note = Some(format!("cut from {before} tokens"));
                    if sum <= budget {
                        break 'caps;
                    }
                }
            }
        }
        // 2. The oldest exchanges go whole, the last one stays.
        if sum > budget {
            let last_reply = kept
                .iter()
                .rposition(|m| m.message.role == Role::Assistant)
                .unwrap_or(0);
            let mut gone = 0usize;
            let mut i = 1;
            while sum > budget && i < last_reply - gone.min(last_reply) {
                // An exchange: a reply and what follows it up to the next reply.
                if kept[i].message.role != Role::Assistant {
                    i += 1;
                    continue;
                }
                let mut end = i + 1;
                while end < kept.len() && kept[end].message.role != Role::Assistant {
                    end += 1;
                }
                if end >= kept.len() {
                    break;
                }
                for m in kept.drain(i..end) {
                    for p in m.parts {
                        sum -= p.tokens;
                        left_out
                            .push((p.part.name.clone(), "elided: an older exchange".to_string()));
                    }
                    gone += 1;
                }
            }
            if gone > 0 && !kept.is_empty() {
                let marker = Part::new(
                    "elided",
                    Kind::Message,
                    format!(
                        "\n\n[… {gone} earlier message{} elided to fit the context budget of {budget} tokens …]",
                        if gone == 1 { "" } else { "s" }
                    ),
                );
                let tokens = counts.count(counter, &marker.text);
                sum += tokens;
                kept[0].parts.push(KeptPart {
                    tokens,
                    part: std::borrow::Cow::Owned(marker),
                    note: Some("added: earlier messages elided".into()),
                });
            }
        }
        // 3. Memory-bank notes go.
        if sum > budget {
            for m in &mut kept {
                m.parts.retain(|p| {
                    if p.part.kind == Kind::Memory {
                        sum -= p.tokens;
                        left_out
                            .push((p.part.name.clone(), "dropped: over the budget".to_string()));
                        false
                    } else {
                        true
                    }
                });
            }
        }
    }
    let system = (!draft.system.is_empty()).then(|| {
        draft
            .system
            .iter()
            .map(|p| p.text.as_str())
            .collect::<String>()
    });
    let mut parts: Vec<Sent> = draft
        .system
        .iter()
        .zip(&system_tokens)
        .map(|(p, &tokens)| Sent {
            name: p.name.clone(),
            kind: p.kind,
            tokens,
            note: None,
            text: p.text.clone(),
        })
        .collect();
    let mut messages = Vec::with_capacity(kept.len());
    for m in kept {
        let mut message = m.message.clone();
        message.content = m
            .parts
            .iter()
            .filter(|p| !is_call(&p.part))
            .map(|p| p.part.text.as_str())
            .collect();
        messages.push(message);
        for p in m.parts {
            let part = p.part.into_owned();
            parts.push(Sent {
                name: part.name,
                kind: part.kind,
                tokens: p.tokens,
                note: p.note,
                text: part.text,
            });
        }
    }
    Assembled {
        system,
        messages,
        total: sum,
        parts,
        left_out,
        budget,
        counter,
    }
}

/// A message of the draft while it is fitted.
struct Kept<'a> {
    message: &'a Message,
    parts: Vec<KeptPart<'a>>,
}

struct KeptPart<'a> {
    part: std::borrow::Cow<'a, Part>,
    tokens: u64,
    note: Option<String>,
}

impl KeptPart<'_> {
    /// Its tokens as drafted (before any cut).
    fn drafted_tokens(&self) -> u64 {
        self.note
            .as_deref()
            .and_then(|n| n.strip_prefix("cut from "))
            .and_then(|n| n.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(self.tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(role: Role, content: &str) -> Message {
        Message {
            role,
            content: content.to_string(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            is_error: false,
        }
    }

    fn draft(turns: usize, output_chars: usize) -> Draft {
        let mut d = Draft {
            system: vec![Part::new("role", Kind::System, "You write code.")],
            messages: vec![DraftMessage {
                message: msg(Role::User, ""),
                parts: vec![
                    Part::new("prompt", Kind::Prompt, "Fix the bug in "),
                    Part::new("${{ inputs.file }}", Kind::Upstream, "src/a.rs"),
                    Part::new("memory://project", Kind::Memory, "\n\nNotes: use tabs."),
                ],
            }],
        };
        for t in 0..turns {
            d.messages.push(DraftMessage {
                message: msg(Role::Assistant, ""),
                parts: vec![Part::new(
                    format!("turn {t} reply"),
                    Kind::Reply,
                    "Reading it.",
                )],
            });
            d.messages.push(DraftMessage {
                message: msg(Role::Tool, ""),
                parts: vec![Part::new(
                    format!("turn {t} read_file"),
                    Kind::ToolOutput,
                    "x".repeat(output_chars),
                )],
            });
        }
        d
    }

    #[test]
    fn within_the_budget_the_request_is_the_draft_and_counts_add_up() {
        let d = draft(3, 400);
        let a = assemble(&d, Some(100_000), Counter::Estimate, &mut Counts::default());
        assert_eq!(a.system.as_deref(), Some("You write code."));
        assert_eq!(
            a.messages[0].content,
            "Fix the bug in src/a.rs\n\nNotes: use tabs."
        );
        assert_eq!(a.messages.len(), 7);
        assert!(a.parts.iter().all(|p| p.note.is_none()));
        assert_eq!(a.total, a.parts.iter().map(|p| p.tokens).sum::<u64>());
        let sent: u64 = std::iter::once(a.system.clone().unwrap())
            .chain(a.messages.iter().map(|m| m.content.clone()))
            .map(|t| Counter::Estimate.count(&t))
            .sum();
        // Joined texts may round differently by a token a piece, never more.
        assert!(
            a.total.abs_diff(sent) <= a.parts.len() as u64,
            "{} vs {sent}",
            a.total
        );
    }

    #[test]
    fn older_tool_outputs_are_cut_first_and_the_newest_kept_whole() {
        let d = draft(3, 40_000); // 10,000 tokens each
        let a = assemble(&d, Some(15_000), Counter::Estimate, &mut Counts::default());
        assert!(a.total <= 15_000, "{}", a.total);
        let outputs: Vec<&Sent> = a
            .parts
            .iter()
            .filter(|p| p.kind == Kind::ToolOutput)
            .collect();
        assert_eq!(outputs.len(), 3, "nothing elided: cutting was enough");
        assert_eq!(outputs[2].tokens, 10_000);
        assert_eq!(outputs[2].note, None);
        assert_eq!(outputs[0].note.as_deref(), Some("cut from 10000 tokens"));
        assert!(
            outputs[0]
                .text
                .contains("tokens cut to fit the context budget")
        );
        // The memory notes stay: cutting came first.
        assert!(a.parts.iter().any(|p| p.kind == Kind::Memory));
    }

    #[test]
    fn then_old_exchanges_are_elided_whole_with_a_marker_then_memory_goes() {
        let d = draft(6, 400); // small outputs: cutting cannot help
        let a = assemble(&d, Some(150), Counter::Estimate, &mut Counts::default());
        assert!(
            a.messages[0].content.contains("earlier messages elided"),
            "{:?}",
            a.messages[0]
        );
        // Whole exchanges: every tool message still follows a reply.
        for (i, m) in a.messages.iter().enumerate() {
            if m.role == Role::Tool {
                assert!(matches!(
                    a.messages[i - 1].role,
                    Role::Assistant | Role::Tool
                ));
            }
        }
        assert_eq!(a.messages.last().unwrap().role, Role::Tool);
        assert!(a.left_out.iter().any(|(_, why)| why.starts_with("elided")));
        let tiny = assemble(&d, Some(10), Counter::Estimate, &mut Counts::default());
        assert!(tiny.left_out.iter().any(|(n, _)| n == "memory://project"));
        // Over even then: sent as it is, and the report says so.
        assert!(tiny.total > 10);
    }

    proptest! {
        #[test]
        fn any_draft_assembles_to_counts_that_add_up_and_a_well_formed_request(
            turns in 0usize..12, chars in 0usize..20_000, budget in proptest::option::of(1u64..40_000)
        ) {
            let d = draft(turns, chars);
            let a = assemble(&d, budget, Counter::Estimate, &mut Counts::default());
            prop_assert_eq!(a.total, a.parts.iter().map(|p| p.tokens).sum::<u64>());
            prop_assert_eq!(a.messages[0].role, Role::User);
            for (i, m) in a.messages.iter().enumerate() {
                if m.role == Role::Tool {
                    prop_assert!(i > 0 && matches!(a.messages[i - 1].role, Role::Assistant | Role::Tool));
                }
            }
            if budget.is_none_or(|b| b >= d.system.iter().chain(d.messages.iter().flat_map(|m| &m.parts)).map(|p| Counter::Estimate.count(&p.text)).sum()) {
                prop_assert!(a.parts.iter().all(|p| p.note.is_none()));
                prop_assert!(a.left_out.is_empty());
            }
        }
    }
}
