//! What the run says before its steps do anything: the workflow's step
//! outline from `RunStarted` (so the overview and the timeline list every
//! step, not-yet-started ones as pending) and the hints lev gives each agent
//! at its start (`StepStarted.hints`, shown beside the user's messages).
//! Part of the `RunView` fold; journals without these fields fold to none.

use crate::protocol::{Millis, StepKey, StepOutline, StepStatus};

pub use super::run_view::GivenHint;
use super::run_view::{RunView, StepRow};

impl RunView {
    /// Lists every declared step as pending, in declaration order (a step
    /// an event already listed keeps its row and status).
    pub(super) fn apply_outline(&mut self, outline: &[StepOutline]) {
        let first_index = self.events.saturating_sub(1);
        for s in outline {
            let key = StepKey::new(s.id.clone());
            match self.step_rows.get(&key) {
                Some(i) => self.steps[*i].needs = s.needs.clone(),
                None => {
                    self.add_step_row(StepRow {
                        key,
                        status: StepStatus::Pending,
                        segments: Vec::new(),
                        first_index,
                        needs: s.needs.clone(),
                    });
                }
            }
        }
    }

    /// Records the hints an agent got at its start, once per step (a retry
    /// or a resumed attempt is told the same again).
    pub(super) fn apply_hints(&mut self, step: &StepKey, hints: &[String], at: Millis) {
        for text in hints {
            let known = self
                .hints
                .iter()
                .any(|h| &h.step == step && &h.text == text);
            if !known {
                self.hints.push(GivenHint {
                    step: step.clone(),
                    text: text.clone(),
                    at,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::protocol::{Attempt, Event, Millis, Notice, Recorded, RunId, Seq, StepKey};
    use crate::protocol::{StepStatus, Usage};
    use crate::tui::state::run_view::RunView;
    use crate::tui::state::sample::{sample_events, sample_state};

    fn fold(events: Vec<Event>) -> RunView {
        let mut v = RunView::default();
        for (i, event) in events.into_iter().enumerate() {
            v.apply(&Notice::Event(Recorded {
                run: RunId("r".into()),
                seq: Seq(i as u64 + 1),
                event,
            }));
        }
        v
    }

    #[test]
    fn declared_steps_are_listed_in_order_before_they_start() {
        let s = sample_state();
        let rows: Vec<(&str, StepStatus, usize)> = s
            .run
            .steps
            .iter()
            .map(|r| (r.key.as_str(), r.status, r.segments.len()))
            .collect();
        assert_eq!(
            rows,
            [
                ("architect", StepStatus::Succeeded, 1),
                ("coder", StepStatus::Waiting, 1),
                ("tester", StepStatus::Waiting, 1),
                ("security", StepStatus::Running, 1),
                ("checks", StepStatus::Running, 2),
                ("docs", StepStatus::Pending, 0),
                ("release", StepStatus::Pending, 0),
            ]
        );
        assert_eq!(s.run.steps[6].needs, ["docs", "checks"]);
        // Until an event names a declared step, it points at `RunStarted`;
        // then at that event (replay jumps there).
        assert_eq!(s.run.steps[6].first_index, 0);
        assert_eq!(s.run.steps[2].first_index, 7);
    }

    #[test]
    fn old_journals_without_outline_or_hints_still_decode() {
        let started = r#"{"type":"run_started","workflow_id":"w","name":"W","source":"w.yaml",
            "definition_hash":"h","inputs":{},"seed":1,"at":5}"#;
        let Event::RunStarted { steps, .. } = serde_json::from_str(started).unwrap() else {
            panic!("not run_started");
        };
        assert!(steps.is_empty());
        let step = r#"{"type":"step_started","step":"a","attempt":1,"fingerprint":"f",
            "kind":"agent","mode":"coder","idempotent":true,"at":6}"#;
        let Event::StepStarted { hints, .. } = serde_json::from_str(step).unwrap() else {
            panic!("not step_started");
        };
        assert!(hints.is_empty());
        // And new records leave the fields out when empty, as before.
        let e = sample_events()[2].event.clone();
        assert!(!serde_json::to_string(&e).unwrap().contains("hints"));
    }

    #[test]
    fn a_retry_is_told_the_same_hints_and_they_are_listed_once() {
        let started = |attempt: u32, at: u64| Event::StepStarted {
            step: StepKey::new("a"),
            attempt: Attempt(attempt),
            fingerprint: "f".into(),
            kind: "agent".into(),
            mode: Some("coder".into()),
            idempotent: true,
            hints: vec!["one".into(), "two".into()],
            at: Millis(at),
        };
        let v = fold(vec![
            started(1, 1),
            Event::StepFailed {
                step: StepKey::new("a"),
                attempt: Attempt(1),
                error: "x".into(),
                retry_in_ms: Some(1),
                usage: Usage::default(),
                at: Millis(2),
            },
            started(2, 3),
        ]);
        let texts: Vec<&str> = v.hints.iter().map(|h| h.text.as_str()).collect();
        assert_eq!(texts, ["one", "two"]);
        assert_eq!(v.hints[0].at, Millis(1));
        // No outline: the step is listed when its first event names it.
        assert_eq!(v.steps.len(), 1);
        assert!(v.steps[0].needs.is_empty());
    }
}
