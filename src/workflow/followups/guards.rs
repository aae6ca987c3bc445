//! The limits a follow-up must pass before it is spawned, checked in a
//! stated order; the first that fails names itself, its limit and what
//! was seen. Pure: the spawner gathers what it saw and journals the answer.

use std::time::Duration;

use super::super::attempt::humantime;
use crate::protocol::Usage;
use crate::spec::Limits;

/// What the spawner saw for one follow-up about to be spawned.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Callbacks were stopped (`lev stop-callbacks`, or the chain breaker).
    pub stopped: Option<String>,
    /// The new follow-up's depth (its parent's + 1).
    pub depth: u32,
    /// Follow-ups its parent spawned already, and how many it may.
    pub of_parent: u32,
    pub parent_max: u32,
    /// How the parent's limit is called (`followups.max`, or
    /// `max_followups per step` for an agent's own proposals).
    pub parent_max_name: &'static str,
    /// Candidates the parent has (items of `for_each` and proposals).
    pub candidates: usize,
    /// Follow-ups spawned in the run.
    pub in_run: u32,
    /// Time since the chain's first follow-up (zero for a new chain).
    pub chain_elapsed: Duration,
    pub usage: Usage,
    /// The chain has a follow-up with the same mode and prompt.
    pub duplicate: bool,
}

/// A guard that refused a follow-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub guard: String,
    pub limit: String,
    pub observed: String,
}

/// Whether a refusal by `guard` refuses every later candidate of the same
/// parent too (stopped callbacks, counts, depth, time and budgets only
/// grow): the spawner stops looking. Duplicates, verdicts, approvals and
/// prompts are about one candidate.
pub fn ends_parent(guard: &str) -> bool {
    !matches!(
        guard,
        "duplicate" | "when_semantic" | "approval" | "spawn.prompt"
    )
}

fn refuse(guard: &str, limit: String, observed: String) -> Option<Refusal> {
    Some(Refusal {
        guard: guard.to_string(),
        limit,
        observed,
    })
}

/// The first guard the follow-up fails, in this order: callbacks stopped,
/// `max_callback_depth`, the parent's max, the run's `max_followups`,
/// `chain_timebox`, `max_tokens`, `max_cost_usd`, duplicate.
pub fn check(limits: &Limits, seen: &Seen) -> Option<Refusal> {
    if let Some(why) = &seen.stopped {
        return refuse("callbacks_stopped", "no callbacks".into(), why.clone());
    }
    if seen.depth > limits.max_callback_depth {
        return refuse(
            "max_callback_depth",
            limits.max_callback_depth.to_string(),
            seen.depth.to_string(),
        );
    }
    if seen.of_parent >= seen.parent_max {
        return refuse(
            seen.parent_max_name,
            seen.parent_max.to_string(),
            format!("{} candidates", seen.candidates),
        );
    }
    if seen.in_run >= limits.max_followups {
        return refuse(
            "max_followups",
            limits.max_followups.to_string(),
            format!("{} spawned in the run", seen.in_run),
        );
    }
    if seen.chain_elapsed >= limits.chain_timebox {
        return refuse(
            "chain_timebox",
            humantime(limits.chain_timebox),
            format!(
                "{} since the chain's first follow-up",
                humantime(Duration::from_secs(seen.chain_elapsed.as_secs()))
            ),
        );
    }
    if let Some(max) = limits.max_tokens
        && seen.usage.total_tokens() >= max
    {
        return refuse(
            "max_tokens",
            max.to_string(),
            seen.usage.total_tokens().to_string(),
        );
    }
    if let Some(max) = limits.max_cost_usd
        && seen.usage.cost_usd >= max
    {
        return refuse(
            "max_cost_usd",
            format!("{max:.2}"),
            format!("{:.4}", seen.usage.cost_usd),
        );
    }
    if seen.duplicate {
        return refuse(
            "duplicate",
            "one follow-up per mode and prompt in a chain".into(),
            "the chain has one with this mode and prompt".into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen() -> Seen {
        Seen {
            depth: 1,
            parent_max: 3,
            parent_max_name: "followups.max",
            candidates: 1,
            ..Seen::default()
        }
    }

    #[test]
    fn a_follow_up_within_every_limit_passes() {
        assert_eq!(check(&Limits::default(), &seen()), None);
    }

    #[test]
    fn each_guard_names_itself_its_limit_and_what_was_seen() {
        let limits = Limits {
            max_tokens: Some(1000),
            max_cost_usd: Some(1.0),
            ..Limits::default()
        };
        let cases: Vec<(Seen, &str, &str)> = vec![
            (
                Seen {
                    stopped: Some("by the user".into()),
                    ..seen()
                },
                "callbacks_stopped",
                "by the user",
            ),
            (
                Seen {
                    depth: 11,
                    ..seen()
                },
                "max_callback_depth",
                "11",
            ),
            (
                Seen {
                    of_parent: 3,
                    candidates: 7,
                    ..seen()
                },
                "followups.max",
                "7 candidates",
            ),
            (
                Seen {
                    in_run: 8,
                    ..seen()
                },
                "max_followups",
                "8 spawned in the run",
            ),
            (
                Seen {
                    chain_elapsed: Duration::from_secs(301),
                    ..seen()
                },
                "chain_timebox",
                "5m1s since the chain's first follow-up",
            ),
            (
                Seen {
                    usage: Usage {
                        input_tokens: 900,
                        output_tokens: 100,
                        ..Usage::default()
                    },
                    ..seen()
                },
                "max_tokens",
                "1000",
            ),
            (
                Seen {
                    duplicate: true,
                    ..seen()
                },
                "duplicate",
                "the chain has one with this mode and prompt",
            ),
        ];
        for (seen, guard, observed) in cases {
            let r = check(&limits, &seen).expect(guard);
            assert_eq!(r.guard, guard);
            assert_eq!(r.observed, observed, "{guard}");
            assert_eq!(ends_parent(&r.guard), guard != "duplicate", "{guard}");
        }
    }

    #[test]
    fn depth_ten_is_allowed_and_eleven_is_not() {
        let limits = Limits::default();
        let at = |depth| Seen { depth, ..seen() };
        assert!(check(&limits, &at(10)).is_none());
        assert_eq!(
            check(&limits, &at(11)).map(|r| r.limit),
            Some("10".to_string())
        );
    }
}
