//! Adaptive whispers: what the user does with what FlowMind raises is
//! counted per category across runs (`lev whispers`), and categories the
//! user mostly dismisses are raised less — never less than one in four,
//! and never less for a safety-critical one.
//!
//! The outcomes are read from a run's events (`Feedback`): an answer
//! FlowMind offered or gave (category `answer:<kind>`) was accepted when
//! the user answered the same or let FlowMind's answer stand, edited when
//! the user answered otherwise, dismissed when the question's default or
//! timeout answered it; a stuck agent FlowMind handed to the user
//! (category `stuck:<rule>`) was accepted when the user messaged, paused
//! or cancelled it, dismissed when it ended without that.

use std::collections::HashMap;

use crate::protocol::{
    AnswerSource, EscalationEnd, Event, FlowmindLevel, StepKey, WhisperOutcome, WhisperScore,
};

use super::conductor::SAFETY_CRITICAL;

/// Outcomes before a category counts as mostly dismissed.
const SAMPLES: u64 = 5;

/// How often FlowMind raises a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raise {
    Always,
    /// One in this many.
    OneIn(u32),
}

/// How often a category is raised, given its score.
pub fn raise(score: &WhisperScore) -> Raise {
    let kind = score.category.rsplit(':').next().unwrap_or_default();
    if SAFETY_CRITICAL.contains(&kind) || score.total() < SAMPLES {
        return Raise::Always;
    }
    match score.dismissed_share() {
        s if s >= 0.8 => Raise::OneIn(4),
        s if s >= 0.6 => Raise::OneIn(2),
        _ => Raise::Always,
    }
}

/// The category of a stuck-agent escalation by `rule`.
pub fn stuck(rule: &str) -> String {
    format!("stuck:{rule}")
}

/// What was raised and waits for the user's reaction, folded from a run.
#[derive(Debug, Default)]
pub struct Feedback {
    /// Answers FlowMind offered or gave: category and its answer.
    answers: HashMap<String, (String, String)>,
    /// Agents handed to the user: the category.
    escalated: HashMap<StepKey, String>,
}

impl Feedback {
    /// Folds one event; returns an outcome it settles.
    pub fn fold(&mut self, event: &Event) -> Option<(String, WhisperOutcome)> {
        match event {
            Event::AnswerProposed {
                id,
                answer: Some(answer),
                category,
                ..
            } => {
                self.answers
                    .insert(id.clone(), (format!("answer:{category}"), answer.clone()));
                None
            }
            Event::QuestionAnswered {
                id, answer, source, ..
            } => {
                let (category, offered) = self.answers.remove(id)?;
                let outcome = match source {
                    AnswerSource::Flowmind => WhisperOutcome::Accepted,
                    AnswerSource::User if answer.trim() == offered.trim() => {
                        WhisperOutcome::Accepted
                    }
                    AnswerSource::User => WhisperOutcome::Edited,
                    AnswerSource::Default | AnswerSource::Timeout => WhisperOutcome::Dismissed,
                };
                Some((category, outcome))
            }
            Event::FlowmindDecided {
                step,
                rule,
                level: FlowmindLevel::Escalate,
                ..
            } => {
                self.escalated.insert(step.clone(), stuck(rule));
                None
            }
            _ => {
                let (step, end) = EscalationEnd::of(event)?;
                let category = self.escalated.remove(step)?;
                Some((category, end.outcome()))
            }
        }
    }
}

/// The scores as the controller keeps them, and how many whispers of each
/// category it has held back in a row.
#[derive(Debug, Default)]
pub struct Scores {
    scores: HashMap<String, WhisperScore>,
    held: HashMap<String, u32>,
}

impl Scores {
    pub fn new(scores: Vec<WhisperScore>) -> Scores {
        Scores {
            scores: scores
                .into_iter()
                .map(|s| (s.category.clone(), s))
                .collect(),
            held: HashMap::new(),
        }
    }

    /// Counts an outcome (the journal holds the lasting copy).
    pub fn add(&mut self, category: &str, outcome: WhisperOutcome) {
        let s = self
            .scores
            .entry(category.to_string())
            .or_insert_with(|| WhisperScore {
                category: category.to_string(),
                ..WhisperScore::default()
            });
        match outcome {
            WhisperOutcome::Accepted => s.accepted += 1,
            WhisperOutcome::Edited => s.edited += 1,
            WhisperOutcome::Dismissed => s.dismissed += 1,
        }
    }

    /// Whether to raise a whisper of `category` now: always, or one in N
    /// for a mostly dismissed one (the others are held back).
    pub fn should_raise(&mut self, category: &str) -> bool {
        let how = self.scores.get(category).map_or(Raise::Always, raise);
        let Raise::OneIn(n) = how else {
            return true;
        };
        let held = self.held.entry(category.to_string()).or_default();
        if *held + 1 >= n {
            *held = 0;
            true
        } else {
            *held += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Attempt, Millis, Usage};

    fn score(category: &str, accepted: u64, dismissed: u64) -> WhisperScore {
        WhisperScore {
            category: category.into(),
            accepted,
            edited: 0,
            dismissed,
        }
    }

    #[test]
    fn mostly_dismissed_categories_are_raised_less_with_a_floor() {
        assert_eq!(raise(&score("stuck:loop", 1, 3)), Raise::Always, "too few");
        assert_eq!(raise(&score("stuck:loop", 3, 3)), Raise::Always);
        assert_eq!(raise(&score("stuck:loop", 3, 6)), Raise::OneIn(2));
        assert_eq!(raise(&score("stuck:loop", 0, 50)), Raise::OneIn(4));
        // Never less for a safety-critical kind.
        assert_eq!(raise(&score("answer:destructive", 0, 50)), Raise::Always);
        let mut s = Scores::new(vec![score("stuck:loop", 0, 50)]);
        let raised: Vec<bool> = (0..8).map(|_| s.should_raise("stuck:loop")).collect();
        assert_eq!(
            raised,
            [false, false, false, true, false, false, false, true]
        );
        assert!(s.should_raise("stuck:silence"));
    }

    fn proposed(id: &str, answer: &str) -> Event {
        Event::AnswerProposed {
            id: id.into(),
            answer: Some(answer.into()),
            confidence: 0.7,
            category: "naming".into(),
            reason: String::new(),
            auto: false,
            grace_ms: 0,
            model: "m".into(),
            usage: Usage::default(),
            at: Millis(0),
        }
    }

    fn answered(id: &str, answer: &str, source: AnswerSource) -> Event {
        Event::QuestionAnswered {
            id: id.into(),
            answer: answer.into(),
            source,
            at: Millis(0),
        }
    }

    #[test]
    fn what_the_user_did_with_an_answer_or_an_escalation_is_its_outcome() {
        let mut f = Feedback::default();
        let naming = || "answer:naming".to_string();
        assert_eq!(f.fold(&proposed("q1", "snake_case")), None);
        assert_eq!(
            f.fold(&answered("q1", "snake_case", AnswerSource::User)),
            Some((naming(), WhisperOutcome::Accepted))
        );
        f.fold(&proposed("q2", "snake_case"));
        assert_eq!(
            f.fold(&answered("q2", "camelCase", AnswerSource::User)),
            Some((naming(), WhisperOutcome::Edited))
        );
        f.fold(&proposed("q3", "snake_case"));
        assert_eq!(
            f.fold(&answered("q3", "no answer", AnswerSource::Default)),
            Some((naming(), WhisperOutcome::Dismissed))
        );
        // A question FlowMind said nothing of is no whisper of its.
        assert_eq!(f.fold(&answered("q4", "x", AnswerSource::User)), None);
        let step = StepKey::new("coder");
        let escalate = Event::FlowmindDecided {
            step: step.clone(),
            rule: "loop".into(),
            observed: String::new(),
            level: FlowmindLevel::Escalate,
            text: String::new(),
            at: Millis(0),
        };
        f.fold(&escalate);
        let told = Event::AgentMessaged {
            step: step.clone(),
            attempt: Attempt(1),
            turn: 3,
            text: "Try the other API.".into(),
            at: Millis(0),
        };
        assert_eq!(
            f.fold(&told),
            Some(("stuck:loop".to_string(), WhisperOutcome::Accepted))
        );
        f.fold(&escalate);
        let ended = Event::StepSucceeded {
            step,
            attempt: Attempt(1),
            outputs: Default::default(),
            usage: Usage::default(),
            at: Millis(0),
        };
        assert_eq!(
            f.fold(&ended),
            Some(("stuck:loop".to_string(), WhisperOutcome::Dismissed))
        );
    }
}
