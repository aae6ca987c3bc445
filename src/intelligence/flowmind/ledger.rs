//! FlowMind's model (`flowmind: { mode: model }`): every `cadence` working
//! turns of an agent it answers a progress ledger — is the task done, is
//! the agent looping, is it making progress, who acts next, what to tell it
//! — as one JSON object, checked and asked again once when it is not one.
//! Its tokens are the controller's own, bounded by a budget per run that a
//! call is never started past: a request is counted at its bytes (no
//! tokenizer makes more tokens than bytes) plus the reply's cap.
//!
//! Everything here is what to ask and how to read the answer; when to ask
//! and what follows is the controller's (`super`), and acting on a ledger
//! is the rules' (`super::rules`), from the journal.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::Value;

use crate::llm::SharedProvider;
use crate::protocol::{Attempt, Event, Ledger, StepKey};
use crate::text::one_line;

/// The mode name a ledger request carries (cassettes and servers match on
/// it).
pub const LEDGER_MODE: &str = "flowmind";

/// What an agent did lately, as the ledger is shown it.
const RECENT: usize = 8;

/// Bytes of the agent's task the ledger is shown.
const TASK_BYTES: usize = 2000;

pub const SYSTEM: &str = "You are FlowMind, the controller of lev, a tool that runs AI agents. \
You keep a progress ledger about one agent: read its task and what it did lately, then reply with \
one JSON object and nothing else: {\"satisfied\": is the task done (true/false), \"looping\": is it \
repeating itself without new results (true/false), \"progressing\": is it getting closer to done \
(true/false), \"next\": \"agent\" if it should go on or \"user\" if only a person can unblock it, \
\"instruction\": what to tell the agent now if it is stuck, else \"\", \"question\": one question to \
ask the agent when its actions do not show what you need to know (what it is waiting for, what it \
found), else \"\", \"followup\": {\"title\": \"…\", \"mode\": \"…\", \"why\": \"…\"} for work \
outside this agent's task that its work shows is needed (a mode that does such work), else null, \
\"reason\": one sentence}.";

/// The model the controller asks, and how often and how much.
#[derive(Clone)]
pub struct LedgerModel {
    pub provider: SharedProvider,
    pub model: String,
    /// A ledger every this many working turns of an agent.
    pub cadence: u32,
    /// The controller's own tokens per run.
    pub budget: u64,
}

/// A ledger to ask for: the agent, its turn and the question's text.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub step: StepKey,
    pub attempt: Attempt,
    pub turn: u32,
    pub prompt: String,
}

/// A ledger is also due when an agent has worked this long (ms) without
/// one: a long turn (a slow command, a long answer) is looked at too.
pub const LONG_WORK_MS: u64 = 120_000;

/// What an agent did lately.
#[derive(Debug)]
struct Activity {
    attempt: Attempt,
    mode: String,
    working_turns: u32,
    recent: VecDeque<String>,
    /// Its latest turn, when it began, and when a ledger was last due.
    turn: u32,
    turn_began: u64,
    ledger_at: u64,
    /// It showed activity since that ledger.
    active: bool,
}

/// The ledger side of one run, folded from its events: what each agent
/// did lately, which turns have a ledger, what the model spent, and
/// whether it stopped for this run.
#[derive(Debug, Default)]
pub struct Ledgers {
    agents: HashMap<StepKey, Activity>,
    done: HashSet<(StepKey, Attempt, u32)>,
    /// Tokens of the ledgers journaled.
    pub spent: u64,
    /// The model stopped for this run (`flowmind_fell_back`).
    pub fell_back: bool,
    /// Agents' questions the conductor has said something of.
    pub proposed: HashSet<String>,
    /// Steps FlowMind proposed follow-up work of (one proposal each).
    followups: HashSet<StepKey>,
}

impl Ledgers {
    /// Folds one event; returns a ledger now due at `cadence` (the caller
    /// asks only for events it did not fold from the journal).
    pub fn fold(&mut self, event: &Event, cadence: u32) -> Option<Due> {
        match event {
            Event::StepStarted {
                step,
                attempt,
                kind,
                mode,
                ..
            } if kind == "agent" => {
                self.agents.insert(
                    step.clone(),
                    Activity {
                        attempt: *attempt,
                        mode: mode.clone().unwrap_or_default(),
                        working_turns: 0,
                        recent: VecDeque::new(),
                        turn: 0,
                        turn_began: event.at().0,
                        ledger_at: event.at().0,
                        active: false,
                    },
                );
                None
            }
            Event::ContextAssembled { step, turn, at, .. } => {
                let agent = self.agents.get_mut(step)?;
                agent.turn = *turn;
                agent.turn_began = at.0;
                agent.active = true;
                None
            }
            Event::StepSucceeded { step, .. }
            | Event::StepFailed { step, .. }
            | Event::StepCancelled { step, .. } => {
                self.agents.remove(step);
                None
            }
            Event::FlowmindLedger {
                step,
                attempt,
                turn,
                usage,
                ..
            } => {
                self.done.insert((step.clone(), *attempt, *turn));
                self.spent += usage.total_tokens();
                None
            }
            Event::FlowmindFellBack { .. } => {
                self.fell_back = true;
                None
            }
            Event::FlowmindProposed { step, .. } => {
                self.followups.insert(step.clone());
                None
            }
            Event::RunResumed { at } => {
                // A lev that was not running saw no work: time counts anew.
                for agent in self.agents.values_mut() {
                    agent.ledger_at = agent.ledger_at.max(at.0);
                    agent.turn_began = agent.turn_began.max(at.0);
                    agent.active = false;
                }
                None
            }
            Event::AnswerProposed { id, usage, .. } => {
                self.proposed.insert(id.clone());
                self.spent += usage.total_tokens();
                None
            }
            Event::ToolFinished {
                step,
                turn,
                name,
                arguments,
                output,
                is_error,
                ..
            } => {
                let agent = self.agents.get_mut(step)?;
                agent.active = true;
                let outcome = if *is_error { "failed" } else { "gave" };
                agent.remember(format!(
                    "turn {turn}: called `{name}` {} → {outcome}: {}",
                    one_line(arguments, 200),
                    one_line(output, 300)
                ));
                None
            }
            Event::AgentMessaged { step, text, .. } => {
                let agent = self.agents.get_mut(step)?;
                agent.remember(format!("was told: {}", one_line(text, 300)));
                None
            }
            Event::LlmReplied {
                step,
                attempt,
                turn,
                text,
                tool_calls,
                ..
            } => {
                let agent = self.agents.get_mut(step)?;
                if !text.trim().is_empty() {
                    agent.remember(format!("turn {turn}: said: {}", one_line(text, 400)));
                }
                if tool_calls.is_empty() {
                    // A final answer ends the step: nothing to steer.
                    return None;
                }
                for call in tool_calls {
                    agent.remember(format!(
                        "turn {turn}: asks for `{}` {}",
                        call.name,
                        one_line(&call.arguments, 200)
                    ));
                }
                agent.working_turns += 1;
                agent.active = true;
                let key = (step.clone(), *attempt, *turn);
                if self.fell_back
                    || agent.working_turns % cadence.max(1) != 0
                    || self.done.contains(&key)
                {
                    return None;
                }
                agent.ledger_at = event.at().0;
                agent.active = false;
                Some(Due {
                    step: step.clone(),
                    attempt: *attempt,
                    turn: *turn,
                    prompt: agent.prompt(step, Some(*turn)),
                })
            }
            _ => None,
        }
    }
}

impl Ledgers {
    /// The follow-up a journaled ledger proposes, for a running agent that
    /// has had none proposed: once per step.
    pub fn followup(
        &mut self,
        event: &Event,
    ) -> Option<(StepKey, crate::protocol::LedgerFollowup)> {
        let Event::FlowmindLedger { step, ledger, .. } = event else {
            return None;
        };
        let f = *ledger.followup.clone()?;
        if !self.agents.contains_key(step) || !self.followups.insert(step.clone()) {
            return None;
        }
        Some((step.clone(), f))
    }

    /// Streamed tokens of `step` (not journaled) are activity too.
    pub fn touched(&mut self, step: &StepKey) {
        if let Some(agent) = self.agents.get_mut(step) {
            agent.active = true;
        }
    }

    /// Ledgers due at `now` for agents that worked `LONG_WORK_MS` since
    /// their last one (a long turn, with activity since), each once per
    /// stretch; in step order.
    pub fn overdue(&mut self, now: u64) -> Vec<Due> {
        if self.fell_back {
            return Vec::new();
        }
        let mut due = Vec::new();
        for (step, agent) in &mut self.agents {
            let key = (step.clone(), agent.attempt, agent.turn);
            if agent.turn == 0
                || !agent.active
                || now.saturating_sub(agent.ledger_at) < LONG_WORK_MS
                || self.done.contains(&key)
            {
                continue;
            }
            agent.ledger_at = now;
            agent.active = false;
            let mut prompt = agent.prompt(step, Some(agent.turn));
            prompt.push_str(&format!(
                "- (now) it has been working on turn {} for {}s\n",
                agent.turn,
                now.saturating_sub(agent.turn_began) / 1000
            ));
            due.push(Due {
                step: step.clone(),
                attempt: agent.attempt,
                turn: agent.turn,
                prompt,
            });
        }
        due.sort_by(|a, b| a.step.cmp(&b.step));
        due
    }

    /// What `step` did lately, as the model is shown it.
    pub fn recent(&self, step: &StepKey) -> String {
        self.agents
            .get(step)
            .map(|a| a.prompt(step, None))
            .unwrap_or_default()
    }
}

impl Activity {
    fn remember(&mut self, line: String) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
    }

    /// The question, without the task (the caller adds it: it is read
    /// from the journal's context record).
    /// What it did lately, headed by which agent it is (and at which turn,
    /// for a ledger).
    fn prompt(&self, step: &StepKey, turn: Option<u32>) -> String {
        let turn = turn.map(|t| format!(", turn {t}")).unwrap_or_default();
        let mut text = format!(
            "Agent: step `{step}` (mode {}), attempt {}{turn}.\n\nWhat it did lately, oldest first:\n",
            if self.mode.is_empty() {
                "-"
            } else {
                &self.mode
            },
            self.attempt.0
        );
        for line in &self.recent {
            text.push_str("- ");
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// The whole question: the agent's task, then what it did.
pub fn question(task: Option<&str>, due: &Due) -> String {
    let task = match task {
        Some(t) if !t.trim().is_empty() => cut(t, TASK_BYTES),
        _ => "(not recorded)".to_string(),
    };
    format!(
        "Its task:\n{task}\n\n{}\nFill in the progress ledger.",
        due.prompt
    )
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[… cut]", &text[..end])
}

/// What asking gave: the ledger and what it cost, or why there is none
/// (with what was spent trying).
pub type Answer = super::model::Answer<Ledger>;

/// Asks `model` for the ledger, once more when the reply is not one;
/// never starts a request that could take the tokens spent past
/// `allowance`.
pub async fn ask(
    model: &LedgerModel,
    run: &str,
    due: &Due,
    question: String,
    allowance: u64,
) -> Answer {
    let asking = super::model::Asking {
        run,
        step: due.step.as_str(),
        mode: LEDGER_MODE,
        system: SYSTEM,
        correction: "That is not a progress ledger. Reply with only {\"satisfied\": true|false, \"looping\": true|false, \"progressing\": true|false, \"next\": \"agent\"|\"user\", \"instruction\": \"…\", \"reason\": \"…\"}.",
        what: "ledger",
    };
    super::model::ask_json(model, &asking, question, allowance, parse).await
}

/// A ledger from a reply: the JSON object with the three booleans; the
/// rest defaults (`next: agent`, no instruction) when missing or odd.
pub fn parse(text: &str) -> Option<Ledger> {
    let json = crate::workflow::extract_json(text)?;
    let flag = |name: &str| json.get(name).and_then(Value::as_bool);
    let text_of = |name: &str| {
        json.get(name)
            .and_then(Value::as_str)
            .map(|s| one_line(s, 600))
            .unwrap_or_default()
    };
    let next = match json.get("next").and_then(Value::as_str) {
        Some("user") => "user",
        _ => "agent",
    };
    Some(Ledger {
        satisfied: flag("satisfied")?,
        looping: flag("looping")?,
        progressing: flag("progressing")?,
        next: next.to_string(),
        instruction: text_of("instruction"),
        reason: text_of("reason"),
        question: text_of("question"),
        followup: json.get("followup").and_then(|f| {
            let field = |name: &str| {
                f.get(name)
                    .and_then(Value::as_str)
                    .map(|s| one_line(s, 600))
                    .filter(|s| !s.trim().is_empty())
            };
            Some(Box::new(crate::protocol::LedgerFollowup {
                title: field("title")?,
                mode: field("mode")?,
                why: field("why").unwrap_or_default(),
            }))
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Millis, ToolCallRecord, Usage};

    fn started(step: &str) -> Event {
        Event::StepStarted {
            step: StepKey::new(step),
            attempt: Attempt(1),
            fingerprint: "f".into(),
            kind: "agent".into(),
            mode: Some("coder".into()),
            idempotent: true,
            hints: Vec::new(),
            at: Millis(0),
        }
    }

    fn working(step: &str, turn: u32) -> Event {
        Event::LlmReplied {
            step: StepKey::new(step),
            attempt: Attempt(1),
            turn,
            fingerprint: "f".into(),
            text: String::new(),
            tool_calls: vec![ToolCallRecord {
                id: format!("c{turn}"),
                name: "read_file".into(),
                arguments: format!("{{\"path\":\"{turn}.txt\"}}"),
            }],
            usage: Usage::default(),
            model: "m".into(),
            stop_reason: None,
            refusal: None,
            at: Millis(0),
        }
    }

    fn requested(step: &str, turn: u32, at: u64) -> Event {
        Event::ContextAssembled {
            step: StepKey::new(step),
            attempt: Attempt(1),
            turn,
            counter: "estimate".into(),
            budget: None,
            total: 10,
            parts: Vec::new(),
            left_out: Vec::new(),
            blob: None,
            shared: None,
            at: Millis(at),
        }
    }

    #[test]
    fn a_ledger_s_follow_up_is_proposed_once_per_step() {
        let text = r#"{"satisfied":false,"looping":false,"progressing":true,
            "followup":{"title":"Fix the flaky test","mode":"coder","why":"It failed twice."}}"#;
        let ledger = parse(text).unwrap();
        let f = ledger.followup.clone().unwrap();
        assert_eq!(
            (f.title.as_str(), f.mode.as_str()),
            ("Fix the flaky test", "coder")
        );
        // A follow-up without a title or mode is none.
        let partial = parse(
            r#"{"satisfied":false,"looping":false,"progressing":true,"followup":{"title":"x"}}"#,
        );
        assert_eq!(partial.unwrap().followup, None);
        let journaled = |step: &str| Event::FlowmindLedger {
            step: StepKey::new(step),
            attempt: Attempt(1),
            turn: 1,
            ledger: ledger.clone(),
            model: "m".into(),
            usage: Usage::default(),
            at: Millis(0),
        };
        let mut l = Ledgers::default();
        // Not for an agent that is not running.
        assert_eq!(l.followup(&journaled("code")), None);
        l.fold(&started("code"), 3);
        assert_eq!(
            l.followup(&journaled("code")).map(|(s, _)| s),
            Some(StepKey::new("code"))
        );
        assert_eq!(l.followup(&journaled("code")), None);
    }

    #[test]
    fn a_long_turn_gets_a_ledger_on_the_clock_once_per_stretch() {
        let mut l = Ledgers::default();
        l.fold(&started("code"), 3);
        // Not started its first request yet: nothing to look at.
        assert!(l.overdue(LONG_WORK_MS * 5).is_empty());
        l.fold(&requested("code", 1, 1_000), 3);
        assert!(l.overdue(LONG_WORK_MS - 1).is_empty());
        let due = l.overdue(LONG_WORK_MS + 1_000);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].turn, 1);
        assert!(
            due[0].prompt.contains("working on turn 1 for 120s"),
            "{}",
            due[0].prompt
        );
        // Nothing new since: not again, however long it takes.
        assert!(l.overdue(LONG_WORK_MS * 10).is_empty());
        // Activity (streamed tokens) starts a new stretch.
        l.touched(&StepKey::new("code"));
        assert_eq!(l.overdue(LONG_WORK_MS * 10 + LONG_WORK_MS + 1_000).len(), 1);
        // A ledger journaled for the turn is never asked again; a stopped
        // model asks none.
        l.touched(&StepKey::new("code"));
        l.done.insert((StepKey::new("code"), Attempt(1), 1));
        assert!(l.overdue(LONG_WORK_MS * 100).is_empty());
        l.fold(&requested("code", 2, LONG_WORK_MS * 100), 3);
        l.fell_back = true;
        assert!(l.overdue(LONG_WORK_MS * 200).is_empty());
    }

    #[test]
    fn a_ledger_is_due_every_cadence_working_turns_and_once_per_turn() {
        let mut l = Ledgers::default();
        l.fold(&started("code"), 2);
        assert!(l.fold(&working("code", 1), 2).is_none());
        let due = l.fold(&working("code", 2), 2).expect("due at turn 2");
        assert_eq!(due.turn, 2);
        assert!(
            due.prompt.contains("asks for `read_file`"),
            "{}",
            due.prompt
        );
        // Journaled: a replay of turn 4 after its ledger asks nothing.
        l.fold(&working("code", 3), 2);
        l.fold(
            &Event::FlowmindLedger {
                step: StepKey::new("code"),
                attempt: Attempt(1),
                turn: 4,
                ledger: parse(r#"{"satisfied":false,"looping":false,"progressing":true}"#).unwrap(),
                model: "m".into(),
                usage: Usage {
                    input_tokens: 100,
                    output_tokens: 20,
                    ..Usage::default()
                },
                at: Millis(0),
            },
            2,
        );
        assert!(l.fold(&working("code", 4), 2).is_none());
        assert_eq!(l.spent, 120);
        // A step that is not an agent, or the model stopped: nothing due.
        assert!(l.fold(&working("other", 2), 1).is_none());
        l.fold(
            &Event::FlowmindFellBack {
                why: "budget".into(),
                at: Millis(0),
            },
            2,
        );
        assert!(l.fold(&working("code", 6), 2).is_none());
    }

    #[test]
    fn ledgers_are_read_from_json_in_a_reply_or_not_at_all() {
        let l = parse("Here it is:\n```json\n{\"satisfied\": false, \"looping\": true, \"progressing\": false, \"next\": \"user\", \"instruction\": \"Stop.\", \"reason\": \"Same call.\"}\n```").unwrap();
        assert!(l.looping && !l.progressing && l.stalled());
        assert_eq!((l.next.as_str(), l.instruction.as_str()), ("user", "Stop."));
        let odd =
            parse(r#"{"satisfied": true, "looping": false, "progressing": false, "next": "me"}"#)
                .unwrap();
        assert_eq!(odd.next, "agent");
        assert!(!odd.stalled(), "a done task is not stalled");
        assert!(parse(r#"{"satisfied": "yes", "looping": false, "progressing": true}"#).is_none());
        assert!(parse("I think it is fine.").is_none());
    }

    #[test]
    fn the_task_is_cut_and_a_missing_one_said() {
        let due = Due {
            step: StepKey::new("s"),
            attempt: Attempt(1),
            turn: 3,
            prompt: "P".into(),
        };
        let long = "é".repeat(3000);
        let q = question(Some(&long), &due);
        assert!(q.contains("[… cut]") && q.len() < 2200, "{}", q.len());
        assert!(question(None, &due).contains("(not recorded)"));
    }
}
