//! The rules FlowMind acts by: an agent that calls the same tool with the
//! same arguments again and again, or gets the same error again and again,
//! is stuck; so is one its model's progress ledgers (`ledger`) found
//! looping or not progressing `stalls` times in a row, or that only a
//! person can unblock; and one that showed no activity at all (no token,
//! no tool, no reply) for `silence`, while no question or approval of its
//! own waits for you and it is not paused, is handed to you (`silent`,
//! checked on a clock tick). A pure fold of
//! the run's events: the same events give the same decisions, so a resumed
//! controller folds the journal and decides nothing it decided before.

use std::collections::{HashMap, HashSet};

use crate::protocol::{Event, FlowmindLevel, Ledger, Millis, StepKey};
use crate::text::one_line;

/// The rule for an agent whose model's requests keep failing.
const RETRIES: &str = "retries";

/// How eager the rules are (the config's `flowmind:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// The same call (or the same error) this many times in a row is a
    /// stall.
    pub repeats: u32,
    /// Instructions to an agent before a stall goes to the user.
    pub instructions: u32,
    /// Stalled ledgers in a row that make a stall.
    pub stalls: u32,
    /// No activity this long (ms) is a stall (0: never).
    pub silence_ms: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            repeats: 3,
            instructions: 1,
            stalls: 2,
            silence_ms: 300_000,
        }
    }
}

/// What the controller decides about a stuck agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub step: StepKey,
    pub rule: &'static str,
    pub observed: String,
    pub level: FlowmindLevel,
    pub text: String,
}

/// What the rules know of one running agent (its current attempt).
#[derive(Debug, Default)]
struct Agent {
    /// An agent step (not a shell, a question, …): only agents are told
    /// about silence.
    is_agent: bool,
    /// When it last showed activity, and whether its silence since was
    /// handed to the user.
    last_active: u64,
    silence_said: bool,
    /// Its model's failing requests in a row were handed to the user.
    retries_said: bool,
    /// Its own question or approval waits for the user, or it is paused.
    asking_user: bool,
    paused: bool,
    /// The last tool call (name and arguments) and how often in a row.
    last_call: Option<(String, String)>,
    call_repeats: u32,
    /// The last tool error and how often in a row.
    last_error: Option<String>,
    error_repeats: u32,
    /// Questions FlowMind put to it (one per attempt).
    asked: u32,
    /// FlowMind's instruction waits to reach it; once it has, the turn it
    /// joined. What it did before hearing it is no new stall.
    told_pending: bool,
    heard_turn: u32,
    /// Ledgers in a row that found it stalled, and the last of them.
    ledger_stalls: u32,
    last_ledger: Option<Ledger>,
    instructed: u32,
    escalated: bool,
    /// A decision was submitted and its event is not back yet.
    waiting: bool,
}

#[derive(Debug, Default)]
pub struct Rules {
    thresholds: Thresholds,
    agents: HashMap<StepKey, Agent>,
    /// Open questions by id, with the step that asked.
    questions: HashMap<String, StepKey>,
    /// The whole run is paused.
    run_paused: bool,
    /// Swarm tasks (assigned to a slot): a stalled one is re-planned
    /// before it goes to the user.
    tasks: HashSet<StepKey>,
    /// Re-plans decided in the run so far, and whether the last one's
    /// revision is still to come (another task stalling meanwhile goes to
    /// the user).
    replans: u32,
    replanning: bool,
}

impl Rules {
    pub fn new(thresholds: Thresholds) -> Rules {
        Rules {
            thresholds,
            agents: HashMap::new(),
            questions: HashMap::new(),
            run_paused: false,
            tasks: HashSet::new(),
            replans: 0,
            replanning: false,
        }
    }

    /// Streamed tokens of `step` (not journaled) are activity too.
    pub fn touched(&mut self, step: &StepKey, at: Millis) {
        if let Some(agent) = self.agents.get_mut(step) {
            agent.active(at);
        }
    }

    /// Agents silent for `silence_ms` at `now`, each handed to the user
    /// once per silence.
    pub fn silent(&mut self, now: Millis) -> Vec<Decision> {
        let limit = self.thresholds.silence_ms;
        if limit == 0 || self.run_paused {
            return Vec::new();
        }
        let mut found = Vec::new();
        for (step, agent) in &mut self.agents {
            let quiet = now.0.saturating_sub(agent.last_active);
            if !agent.is_agent
                || agent.silence_said
                || agent.waiting
                || agent.asking_user
                || agent.paused
                || quiet < limit
            {
                continue;
            }
            agent.waiting = true;
            let observed = format!("no token, tool call or reply for {}", fmt_quiet(quiet));
            found.push(Decision {
                step: step.clone(),
                rule: "silence",
                text: "Its model or a command may hang. Send it a message (m), pause it, or cancel the step.".into(),
                observed,
                level: FlowmindLevel::Escalate,
            });
        }
        found.sort_by(|a, b| a.step.cmp(&b.step));
        found
    }

    /// Folds one recorded event; returns a decision when a rule fires.
    pub fn fold(&mut self, event: &Event) -> Option<Decision> {
        if let Some(step) = event.step()
            && let Some(agent) = self.agents.get_mut(step)
            && !matches!(event, Event::FlowmindDecided { .. })
        {
            agent.active(event.at());
        }
        match event {
            Event::StepStarted { step, kind, at, .. } => {
                // A new attempt is a new conversation.
                self.agents.insert(
                    step.clone(),
                    Agent {
                        is_agent: kind == "agent",
                        last_active: at.0,
                        ..Agent::default()
                    },
                );
                None
            }
            Event::QuestionAsked {
                id,
                step: Some(step),
                ..
            } => {
                self.questions.insert(id.clone(), step.clone());
                self.asking(step, true);
                None
            }
            Event::QuestionAnswered { id, at, .. } => {
                if let Some(step) = self.questions.remove(id) {
                    self.asking(&step, false);
                    self.touched(&step, *at);
                }
                None
            }
            Event::ApprovalRequested { step, .. } => {
                self.asking(step, true);
                None
            }
            Event::ApprovalDecided { step, .. } => {
                self.asking(step, false);
                None
            }
            Event::PauseRequested { step, at } | Event::PauseLifted { step, at } => {
                let paused = matches!(event, Event::PauseRequested { .. });
                match step {
                    None => self.run_paused = paused,
                    Some(step) => {
                        if let Some(agent) = self.agents.get_mut(step) {
                            agent.paused = paused;
                        }
                    }
                }
                if !paused {
                    // Silence counts from when the pause was lifted.
                    for agent in self.agents.values_mut() {
                        agent.last_active = agent.last_active.max(at.0);
                    }
                }
                None
            }
            Event::RunResumed { at } => {
                // A lev that was not running saw no activity.
                for agent in self.agents.values_mut() {
                    agent.last_active = agent.last_active.max(at.0);
                }
                None
            }
            Event::StepSucceeded { step, .. }
            | Event::StepFailed { step, .. }
            | Event::StepCancelled { step, .. } => {
                self.agents.remove(step);
                None
            }
            Event::LlmRetrying {
                step,
                failed,
                tries,
                endpoint,
                error,
                ..
            } => {
                let at = self.thresholds.repeats.max(2);
                let agent = self.agents.get_mut(step)?;
                if *failed <= 1 {
                    // A new streak of failures.
                    agent.retries_said = false;
                }
                if agent.retries_said || agent.waiting || *failed < at {
                    return None;
                }
                agent.waiting = true;
                Some(Decision {
                    step: step.clone(),
                    rule: RETRIES,
                    observed: format!(
                        "its model's requests failed {failed} times in a row ({endpoint}): {}",
                        one_line(error, 160)
                    ),
                    level: FlowmindLevel::Escalate,
                    text: format!(
                        "lev tries {tries} times before the step fails. Check the provider (key, quota, network), or pause the step (P) or cancel it (x)."
                    ),
                })
            }
            Event::FlowmindDecided { step, rule, .. } if rule == RETRIES => {
                if let Some(agent) = self.agents.get_mut(step) {
                    agent.waiting = false;
                    agent.retries_said = true;
                }
                None
            }
            Event::FlowmindDecided {
                step, level, rule, ..
            } if rule == "silence" => {
                if let Some(agent) = self.agents.get_mut(step) {
                    agent.waiting = false;
                    agent.silence_said = true;
                }
                let _ = level;
                None
            }
            Event::FlowmindDecided {
                step,
                level: FlowmindLevel::Ask,
                ..
            } => {
                // A question changes no count: the agent is no less stuck.
                let agent = self.agents.entry(step.clone()).or_default();
                agent.waiting = false;
                agent.asked += 1;
                None
            }
            Event::FlowmindDecided { step, level, .. } => {
                let agent = self.agents.entry(step.clone()).or_default();
                agent.waiting = false;
                agent.call_repeats = 0;
                agent.error_repeats = 0;
                agent.ledger_stalls = 0;
                match level {
                    FlowmindLevel::Instruct => {
                        agent.instructed += 1;
                        agent.told_pending = true;
                    }
                    FlowmindLevel::Escalate => agent.escalated = true,
                    // The task is stopped and planned around: nothing more
                    // to say about it.
                    FlowmindLevel::Replan => {
                        agent.escalated = true;
                        self.replans += 1;
                        self.replanning = true;
                    }
                    // Folded by its own arm above.
                    FlowmindLevel::Ask => {}
                }
                None
            }
            Event::PlanRevised { .. } => {
                self.replanning = false;
                None
            }
            Event::TaskAssigned { task, .. } => {
                self.tasks.insert(task.clone());
                None
            }
            Event::AgentMessaged {
                step, turn, text, ..
            } if text.starts_with(crate::workflow::FLOWMIND_PREFIX) => {
                if let Some(agent) = self.agents.get_mut(step) {
                    agent.told_pending = false;
                    agent.heard_turn = *turn;
                }
                None
            }
            Event::FlowmindLedger {
                step, ledger, turn, ..
            } => {
                // A ledger about an agent no longer running changes nothing;
                // nor does one about turns before it heard FlowMind's
                // instruction (asked beside it, it may come back late).
                let agent = self.agents.get_mut(step)?;
                if agent.told_pending || *turn < agent.heard_turn {
                    return None;
                }
                if ledger.stalled() || (ledger.next == "user" && !ledger.satisfied) {
                    agent.ledger_stalls += 1;
                } else {
                    agent.ledger_stalls = 0;
                }
                agent.last_ledger = Some(ledger.clone());
                self.check(step).or_else(|| self.question(step, ledger))
            }
            Event::ToolFinished {
                step,
                name,
                arguments,
                output,
                is_error,
                ..
            } => {
                let agent = self.agents.entry(step.clone()).or_default();
                let call = (name.clone(), normalized(arguments));
                if agent.last_call.as_ref() == Some(&call) {
                    agent.call_repeats += 1;
                } else {
                    agent.last_call = Some(call);
                    agent.call_repeats = 1;
                }
                if *is_error {
                    if agent.last_error.as_deref() == Some(output.as_str()) {
                        agent.error_repeats += 1;
                    } else {
                        agent.last_error = Some(output.clone());
                        agent.error_repeats = 1;
                    }
                } else {
                    agent.last_error = None;
                    agent.error_repeats = 0;
                }
                self.check(step)
            }
            _ => None,
        }
    }

    /// The ledger's question for the agent, put to it once per attempt
    /// (when no rule had more to say).
    fn question(&self, step: &StepKey, ledger: &Ledger) -> Option<Decision> {
        let agent = self.agents.get(step)?;
        let question = ledger.question.trim();
        if question.is_empty() || agent.asked > 0 || agent.waiting || agent.escalated {
            return None;
        }
        Some(Decision {
            step: step.clone(),
            rule: "ledger",
            observed: one_line(&ledger.reason, 200),
            level: FlowmindLevel::Ask,
            text: one_line(question, 600),
        })
    }

    /// A decision about `step` was held back (its category is mostly
    /// dismissed): taken as said, so it is not raised again for this stall.
    pub fn withheld(&mut self, decision: &Decision) {
        if let Some(agent) = self.agents.get_mut(&decision.step) {
            agent.waiting = false;
            if decision.rule == "silence" {
                agent.silence_said = true;
            } else if decision.rule == RETRIES {
                agent.retries_said = true;
            } else {
                agent.escalated = true;
            }
        }
    }

    /// A decision about `step` went to the engine: no other until its
    /// event is folded.
    pub fn submitted(&mut self, step: &StepKey) {
        if let Some(agent) = self.agents.get_mut(step) {
            agent.waiting = true;
        }
    }

    fn check(&self, step: &StepKey) -> Option<Decision> {
        let agent = self.agents.get(step)?;
        if agent.escalated || agent.waiting {
            return None;
        }
        let at = self.thresholds.repeats.max(2);
        let (rule, observed, what) = if agent.call_repeats >= at {
            let (name, _) = agent.last_call.as_ref()?;
            (
                "loop",
                format!(
                    "`{name}` called with the same arguments {} times in a row",
                    agent.call_repeats
                ),
                format!(
                    "You have called `{name}` with the same arguments {} times in a row",
                    agent.call_repeats
                ),
            )
        } else if agent.error_repeats >= at {
            let error = one_line(agent.last_error.as_deref().unwrap_or_default(), 160);
            (
                "repeated_error",
                format!(
                    "the same tool error {} times in a row: {error}",
                    agent.error_repeats
                ),
                format!(
                    "Your tool calls failed {} times in a row with the same error",
                    agent.error_repeats
                ),
            )
        } else if let Some(ledger) = agent
            .last_ledger
            .as_ref()
            .filter(|l| agent.ledger_stalls >= self.thresholds.stalls.max(1) || l.next == "user")
            .filter(|_| agent.ledger_stalls > 0)
        {
            let verdict = crate::protocol::describe::ledger_verdict(ledger);
            let observed = format!(
                "{verdict} ({} ledgers in a row): {}",
                agent.ledger_stalls,
                one_line(&ledger.reason, 200)
            );
            // Only a person can unblock it, says the ledger: no instruction.
            let level = if ledger.next == "user" {
                FlowmindLevel::Escalate
            } else {
                self.next_level(step, agent)
            };
            let text = match level {
                FlowmindLevel::Instruct if !ledger.instruction.trim().is_empty() => {
                    ledger.instruction.clone()
                }
                FlowmindLevel::Instruct | FlowmindLevel::Ask => format!(
                    "You do not seem to be getting closer to done: {}. Stop, say what you expected and what you saw, then take a different approach — or give your final answer with what you have.",
                    one_line(&ledger.reason, 200)
                ),
                FlowmindLevel::Replan => replan_text(step),
                FlowmindLevel::Escalate => format!(
                    "{observed}, after {} instruction(s) from FlowMind. Send it a message (m), pause it, or cancel the step.",
                    agent.instructed
                ),
            };
            return Some(Decision {
                step: step.clone(),
                rule: "ledger",
                observed,
                level,
                text,
            });
        } else {
            return None;
        };
        let level = self.next_level(step, agent);
        let text = match level {
            FlowmindLevel::Instruct | FlowmindLevel::Ask => format!(
                "{what}. Repeating it will not change the result. Stop, say what you expected and what you saw, then take a different approach — or give your final answer with what you have."
            ),
            FlowmindLevel::Replan => replan_text(step),
            FlowmindLevel::Escalate => format!(
                "{observed}, after {} instruction(s) from FlowMind. Send it a message (m), pause it, or cancel the step.",
                agent.instructed
            ),
        };
        Some(Decision {
            step: step.clone(),
            rule,
            observed,
            level,
            text,
        })
    }
}

impl Rules {
    /// The next step up for a stuck agent: told first (`instructions`
    /// times), then — a swarm task, while the run has re-plans left —
    /// planned around, then handed to the user.
    fn next_level(&self, step: &StepKey, agent: &Agent) -> FlowmindLevel {
        if agent.instructed < self.thresholds.instructions {
            FlowmindLevel::Instruct
        } else if self.tasks.contains(step)
            && !self.replanning
            && self.replans < crate::protocol::MAX_REPLANS
        {
            FlowmindLevel::Replan
        } else {
            FlowmindLevel::Escalate
        }
    }
}

/// What a re-plan says it does.
fn replan_text(step: &StepKey) -> String {
    format!(
        "`{step}` is stopped; the orchestrator plans the unfinished work again around it, and you review the revised plan."
    )
}

impl Agent {
    fn active(&mut self, at: Millis) {
        if at.0 > self.last_active {
            self.last_active = at.0;
            self.silence_said = false;
        }
    }
}

impl Rules {
    fn asking(&mut self, step: &StepKey, asking: bool) {
        if let Some(agent) = self.agents.get_mut(step) {
            agent.asking_user = asking;
        }
    }
}

/// `4m 10s`, `45s`.
fn fmt_quiet(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Arguments as JSON written one way, so spacing and key order do not make
/// the same call look new.
fn normalized(arguments: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(v) => v.to_string(),
        Err(_) => arguments.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Attempt, Millis};

    fn tool(step: &str, args: &str, output: &str, is_error: bool) -> Event {
        Event::ToolFinished {
            step: StepKey::new(step),
            attempt: Attempt(1),
            turn: 1,
            position: 1,
            call_id: "c".into(),
            name: "read_file".into(),
            arguments: args.into(),
            output: output.into(),
            is_error,
            at: Millis(0),
        }
    }

    fn decided(d: &Decision) -> Event {
        Event::FlowmindDecided {
            step: d.step.clone(),
            rule: d.rule.into(),
            observed: d.observed.clone(),
            level: d.level,
            text: d.text.clone(),
            at: Millis(0),
        }
    }

    #[test]
    fn the_same_call_three_times_is_instructed_then_escalated() {
        let mut rules = Rules::new(Thresholds::default());
        assert_eq!(
            rules.fold(&tool("coder", r#"{"path":"a"}"#, "x", false)),
            None
        );
        // Spacing and key order do not make a call new.
        assert_eq!(
            rules.fold(&tool("coder", r#"{ "path": "a" }"#, "x", false)),
            None
        );
        let first = rules
            .fold(&tool("coder", r#"{"path":"a"}"#, "x", false))
            .unwrap();
        assert_eq!(first.rule, "loop");
        assert_eq!(first.level, FlowmindLevel::Instruct);
        assert!(first.observed.contains("3 times"), "{first:?}");
        // Nothing more until the decision comes back journaled.
        rules.submitted(&first.step);
        assert_eq!(
            rules.fold(&tool("coder", r#"{"path":"a"}"#, "x", false)),
            None
        );
        rules.fold(&decided(&first));
        // Counting starts again after it.
        assert_eq!(
            rules.fold(&tool("coder", r#"{"path":"a"}"#, "x", false)),
            None
        );
        assert_eq!(
            rules.fold(&tool("coder", r#"{"path":"a"}"#, "x", false)),
            None
        );
        let second = rules
            .fold(&tool("coder", r#"{"path":"a"}"#, "x", false))
            .unwrap();
        assert_eq!(second.level, FlowmindLevel::Escalate);
        rules.fold(&decided(&second));
        for _ in 0..5 {
            assert_eq!(
                rules.fold(&tool("coder", r#"{"path":"a"}"#, "x", false)),
                None
            );
        }
    }

    /// Three identical calls of `step`: the rules' decision, journaled.
    fn stall(rules: &mut Rules, step: &str) -> Decision {
        let mut found = None;
        for _ in 0..3 {
            found = rules.fold(&tool(step, r#"{"path":"a"}"#, "x", false));
        }
        let d = found.expect("a decision");
        rules.fold(&decided(&d));
        d
    }

    fn assigned(task: &str) -> Event {
        Event::TaskAssigned {
            task: StepKey::new(task),
            mode: "coder".into(),
            slot: 0,
            stolen_from: None,
            at: Millis(0),
        }
    }

    fn revised(stalled: &str) -> Event {
        Event::PlanRevised {
            revision: 1,
            stalled: StepKey::new(stalled),
            replaces: vec![stalled.into()],
            plan: serde_json::Value::Null,
            edited: false,
            at: Millis(0),
        }
    }

    #[test]
    fn a_stalled_swarm_task_is_instructed_then_re_planned_within_the_bound() {
        let mut rules = Rules::new(Thresholds::default());
        for task in ["a", "b", "c", "d"] {
            rules.fold(&assigned(task));
        }
        assert_eq!(stall(&mut rules, "a").level, FlowmindLevel::Instruct);
        let replan = stall(&mut rules, "a");
        assert_eq!(replan.level, FlowmindLevel::Replan);
        assert!(replan.text.contains("plans the unfinished work again"));
        // Another task stalling while the revision is under way goes to
        // the user: one re-plan at a time.
        assert_eq!(stall(&mut rules, "b").level, FlowmindLevel::Instruct);
        assert_eq!(stall(&mut rules, "b").level, FlowmindLevel::Escalate);
        rules.fold(&revised("a"));
        assert_eq!(stall(&mut rules, "c").level, FlowmindLevel::Instruct);
        assert_eq!(stall(&mut rules, "c").level, FlowmindLevel::Replan);
        rules.fold(&revised("c"));
        // Past MAX_REPLANS a stalled task goes to the user.
        assert_eq!(stall(&mut rules, "d").level, FlowmindLevel::Instruct);
        assert_eq!(stall(&mut rules, "d").level, FlowmindLevel::Escalate);
        // A plain workflow's agent is never re-planned.
        assert_eq!(stall(&mut rules, "plain").level, FlowmindLevel::Instruct);
        assert_eq!(stall(&mut rules, "plain").level, FlowmindLevel::Escalate);
    }

    fn retrying(step: &str, failed: u32) -> Event {
        Event::LlmRetrying {
            step: StepKey::new(step),
            attempt: Attempt(1),
            turn: 1,
            endpoint: "openai (http://127.0.0.1:9)".into(),
            failed,
            tries: 6,
            error: "HTTP 503: overloaded".into(),
            delay_ms: 100,
            at: Millis(0),
        }
    }

    #[test]
    fn a_model_that_keeps_failing_goes_to_the_user_once_per_streak() {
        let mut rules = Rules::new(Thresholds::default());
        rules.fold(&Event::StepStarted {
            step: StepKey::new("coder"),
            attempt: Attempt(1),
            fingerprint: String::new(),
            kind: "agent".into(),
            mode: Some("coder".into()),
            idempotent: true,
            hints: Vec::new(),
            at: Millis(0),
        });
        assert_eq!(rules.fold(&retrying("coder", 1)), None);
        assert_eq!(rules.fold(&retrying("coder", 2)), None);
        let d = rules.fold(&retrying("coder", 3)).unwrap();
        assert_eq!((d.rule, d.level), ("retries", FlowmindLevel::Escalate));
        assert!(d.observed.contains("failed 3 times in a row"), "{d:?}");
        assert!(d.observed.contains("HTTP 503: overloaded"), "{d:?}");
        assert!(d.text.contains("lev tries 6 times"), "{d:?}");
        rules.fold(&decided(&d));
        assert_eq!(rules.fold(&retrying("coder", 4)), None);
        // A request that failed once more after one went through is a new
        // streak; the loop rules still work (retries are no escalation).
        assert_eq!(rules.fold(&retrying("coder", 1)), None);
        assert_eq!(rules.fold(&retrying("coder", 2)), None);
        let again = rules.fold(&retrying("coder", 3)).unwrap();
        rules.fold(&decided(&again));
        assert_eq!(stall(&mut rules, "coder").level, FlowmindLevel::Instruct);
        // A step FlowMind does not know of (not started) is left alone.
        assert_eq!(rules.fold(&retrying("other", 5)), None);
    }

    #[test]
    fn a_different_call_or_agent_or_attempt_starts_counting_again() {
        let mut rules = Rules::new(Thresholds::default());
        rules.fold(&tool("coder", "{\"path\":\"a\"}", "x", false));
        rules.fold(&tool("coder", "{\"path\":\"a\"}", "x", false));
        assert_eq!(
            rules.fold(&tool("coder", "{\"path\":\"b\"}", "x", false)),
            None
        );
        assert_eq!(
            rules.fold(&tool("tester", "{\"path\":\"b\"}", "x", false)),
            None
        );
        rules.fold(&tool("coder", "{\"path\":\"b\"}", "x", false));
        rules.fold(&Event::StepStarted {
            step: StepKey::new("coder"),
            attempt: Attempt(2),
            fingerprint: String::new(),
            kind: "agent".into(),
            mode: Some("coder".into()),
            idempotent: true,
            hints: Vec::new(),
            at: Millis(0),
        });
        assert_eq!(
            rules.fold(&tool("coder", "{\"path\":\"b\"}", "x", false)),
            None
        );
    }

    #[test]
    fn the_same_error_with_different_calls_is_a_stall_too() {
        let mut rules = Rules::new(Thresholds::default());
        rules.fold(&tool("coder", "{\"path\":\"a\"}", "no such file", true));
        rules.fold(&tool("coder", "{\"path\":\"b\"}", "no such file", true));
        let d = rules
            .fold(&tool("coder", "{\"path\":\"c\"}", "no such file", true))
            .unwrap();
        assert_eq!(d.rule, "repeated_error");
        assert!(d.observed.contains("no such file"), "{d:?}");
    }

    #[test]
    fn a_ledger_s_question_is_put_once_and_never_over_a_stall() {
        let asking = |looping: bool| {
            let mut e = ledger("coder", looping, "agent");
            if let Event::FlowmindLedger { ledger, .. } = &mut e {
                ledger.question = "What are you waiting for?".into();
            }
            e
        };
        let mut rules = Rules::new(Thresholds::default());
        rules.fold(&tool("coder", r#"{"path":"a"}"#, "x", false));
        let d = rules.fold(&asking(false)).unwrap();
        assert_eq!(
            (d.level, d.text.as_str()),
            (FlowmindLevel::Ask, "What are you waiting for?")
        );
        // Nothing more while it is under way, and never a second one.
        rules.submitted(&d.step);
        assert_eq!(rules.fold(&asking(false)), None);
        rules.fold(&decided(&d));
        assert_eq!(rules.fold(&asking(false)), None);
        // A stall is instructed as before (the question asked is no
        // instruction: the ladder starts at the bottom).
        assert_eq!(rules.fold(&asking(true)), None);
        let stalled = rules.fold(&asking(true)).unwrap();
        assert_eq!(stalled.level, FlowmindLevel::Instruct);
    }

    fn ledger(step: &str, looping: bool, next: &str) -> Event {
        Event::FlowmindLedger {
            step: StepKey::new(step),
            attempt: Attempt(1),
            turn: 1,
            ledger: Ledger {
                satisfied: false,
                looping,
                progressing: !looping,
                next: next.into(),
                instruction: "Read the error, then fix the import.".into(),
                reason: "It runs the same failing test.".into(),
                question: String::new(),
                followup: None,
            },
            model: "m".into(),
            usage: Default::default(),
            at: Millis(0),
        }
    }

    #[test]
    fn stalled_ledgers_in_a_row_instruct_with_the_ledgers_words_then_escalate() {
        let mut rules = Rules::new(Thresholds::default());
        // A ledger about an agent that is not running changes nothing.
        assert_eq!(rules.fold(&ledger("coder", true, "agent")), None);
        rules.fold(&tool("coder", "{\"path\":\"a\"}", "x", false));
        assert_eq!(rules.fold(&ledger("coder", true, "agent")), None);
        // A good ledger between two stalled ones starts counting again.
        assert_eq!(rules.fold(&ledger("coder", false, "agent")), None);
        assert_eq!(rules.fold(&ledger("coder", true, "agent")), None);
        let first = rules.fold(&ledger("coder", true, "agent")).unwrap();
        assert_eq!(
            (first.rule, first.level),
            ("ledger", FlowmindLevel::Instruct)
        );
        assert_eq!(first.text, "Read the error, then fix the import.");
        assert!(first.observed.contains("looping"), "{first:?}");
        rules.fold(&decided(&first));
        // Ledgers asked before the instruction reached it are no new
        // stall, however many come back.
        for _ in 0..3 {
            assert_eq!(rules.fold(&ledger("coder", true, "agent")), None);
        }
        let at_turn = |turn: u32| {
            let mut e = ledger("coder", true, "agent");
            if let Event::FlowmindLedger { turn: t, .. } = &mut e {
                *t = turn;
            }
            e
        };
        rules.fold(&Event::AgentMessaged {
            step: StepKey::new("coder"),
            attempt: Attempt(1),
            turn: 6,
            text: format!("{}{}", crate::workflow::FLOWMIND_PREFIX, first.text),
            at: Millis(0),
        });
        assert_eq!(rules.fold(&at_turn(5)), None);
        assert_eq!(rules.fold(&at_turn(6)), None);
        let second = rules.fold(&at_turn(7)).unwrap();
        assert_eq!(second.level, FlowmindLevel::Escalate);
    }

    #[test]
    fn a_ledger_that_says_only_a_person_can_help_escalates_at_once() {
        let mut rules = Rules::new(Thresholds::default());
        rules.fold(&tool("coder", "{\"path\":\"a\"}", "x", false));
        let d = rules.fold(&ledger("coder", false, "user")).unwrap();
        assert_eq!(d.level, FlowmindLevel::Escalate);
    }

    fn started(step: &str, kind: &str, at: u64) -> Event {
        Event::StepStarted {
            step: StepKey::new(step),
            attempt: Attempt(1),
            fingerprint: String::new(),
            kind: kind.into(),
            mode: None,
            idempotent: true,
            hints: Vec::new(),
            at: Millis(at),
        }
    }

    #[test]
    fn an_agent_silent_for_the_limit_goes_to_the_user_once_per_silence() {
        let mut rules = Rules::new(Thresholds {
            silence_ms: 10_000,
            ..Thresholds::default()
        });
        rules.fold(&started("coder", "agent", 1_000));
        rules.fold(&started("build", "shell", 1_000));
        assert!(rules.silent(Millis(10_999)).is_empty());
        let found = rules.silent(Millis(11_000));
        // Only the agent: a quiet shell command is no one's stall.
        assert_eq!(found.len(), 1);
        let d = &found[0];
        assert_eq!(
            (d.step.as_str(), d.rule, d.level),
            ("coder", "silence", FlowmindLevel::Escalate)
        );
        assert!(d.observed.contains("10s"), "{d:?}");
        // Not again while its event is on the way, nor once it is back.
        assert!(rules.silent(Millis(20_000)).is_empty());
        rules.fold(&decided(d));
        assert!(rules.silent(Millis(30_000)).is_empty());
        // Activity (streamed tokens too) starts a new silence.
        rules.touched(&StepKey::new("coder"), Millis(31_000));
        assert!(rules.silent(Millis(40_000)).is_empty());
        assert_eq!(rules.silent(Millis(41_000)).len(), 1);
    }

    #[test]
    fn an_agent_waiting_for_you_or_paused_is_not_silent() {
        let mut rules = Rules::new(Thresholds {
            silence_ms: 10_000,
            ..Thresholds::default()
        });
        rules.fold(&started("coder", "agent", 0));
        rules.fold(&Event::QuestionAsked {
            id: "coder.q1".into(),
            step: Some(StepKey::new("coder")),
            header: None,
            ask: "Which database?".into(),
            options: Vec::new(),
            default: None,
            timeout_ms: None,
            from_agent: false,
            at: Millis(1_000),
        });
        assert!(rules.silent(Millis(60_000)).is_empty());
        rules.fold(&Event::QuestionAnswered {
            id: "coder.q1".into(),
            answer: "sqlite".into(),
            source: crate::protocol::AnswerSource::User,
            at: Millis(60_000),
        });
        assert!(rules.silent(Millis(69_999)).is_empty());
        rules.fold(&Event::PauseRequested {
            step: None,
            at: Millis(65_000),
        });
        assert!(rules.silent(Millis(200_000)).is_empty());
        rules.fold(&Event::PauseLifted {
            step: None,
            at: Millis(200_000),
        });
        assert!(rules.silent(Millis(209_999)).is_empty());
        assert_eq!(rules.silent(Millis(210_000)).len(), 1);
        // Off with 0.
        let mut off = Rules::new(Thresholds {
            silence_ms: 0,
            ..Thresholds::default()
        });
        off.fold(&started("coder", "agent", 0));
        assert!(off.silent(Millis(u64::MAX)).is_empty());
    }
}
