//! Simulated swarms: makespans against the ideal schedule, stealing,
//! affinity, breakers in time, determinism, hostile sizes.

use super::*;
use crate::swarm::scheduler::BreakerState;

/// splitmix64: seeded, so every run of a test sees the same task sets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const MODES: [&str; 3] = ["code", "review", "test"];

fn never(_: &str, _: SlotId, _: Millis) -> bool {
    false
}

fn work(tasks: &[SimTask]) -> u64 {
    tasks.iter().map(|t| t.duration).sum()
}

/// The longest chain of durations through the needs.
fn critical_path(tasks: &[SimTask]) -> u64 {
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    // Tasks only need earlier tasks in these sets, so one pass suffices.
    let mut finish = vec![0u64; tasks.len()];
    for (i, t) in tasks.iter().enumerate() {
        let ready = t.needs.iter().map(|n| finish[index[n.as_str()]]).max();
        finish[i] = ready.unwrap_or(0) + t.duration;
    }
    finish.into_iter().max().unwrap_or(0)
}

/// The ideal schedule's length: no schedule beats the work spread evenly,
/// nor the critical path. Rounded up, as a time is whole milliseconds.
fn ideal(tasks: &[SimTask], slots: usize) -> u64 {
    work(tasks).div_ceil(slots as u64).max(critical_path(tasks))
}

/// `units` tasks of 10 ms and one of 100 ms at position `at`.
fn skewed(units: usize, at: usize) -> Vec<SimTask> {
    let mut tasks: Vec<SimTask> = (0..units)
        .map(|i| SimTask::new(format!("u{i}"), MODES[i % 3], 10))
        .collect();
    tasks.insert(at, SimTask::new("slow", "code", 100));
    tasks
}

#[test]
fn a_slow_task_first_costs_no_more_than_one_short_task_over_ideal() {
    for slots in [2, 4, 8] {
        let tasks = skewed(40, 0);
        let out = simulate(&tasks, &SimConfig::new(slots), never).unwrap();
        let bound = ideal(&tasks, slots) + 10;
        assert!(
            out.makespan <= bound,
            "{slots} slots: makespan {} > ideal + one task {bound}",
            out.makespan
        );
        assert_eq!(out.runs.len(), 41);
        assert!(out.failed.is_empty() && out.blocked.is_empty());
    }
}

#[test]
fn stealing_is_what_keeps_the_slow_slot_from_holding_up_its_queue() {
    let tasks = skewed(40, 0);
    let with = simulate(&tasks, &SimConfig::new(4), never).unwrap();
    let without = SimConfig {
        stealing: false,
        ..SimConfig::new(4)
    };
    let without = simulate(&tasks, &without, never).unwrap();
    // The slow task's slot got an even share of the queue at the start;
    // without stealing that share waits behind the slow task.
    assert_eq!(without.makespan, 200);
    assert_eq!(with.makespan, 130);
    assert_eq!(ideal(&tasks, 4), 125);
    let stolen: Vec<&SimRun> = with
        .runs
        .iter()
        .filter(|r| r.assignment.stolen_from.is_some())
        .collect();
    assert!(!stolen.is_empty());
    // Every steal is from the slot that ran the slow task: its queue is
    // the one the slow task held up.
    let slow = with
        .runs
        .iter()
        .find(|r| r.assignment.task == "slow")
        .unwrap();
    for r in stolen {
        assert_eq!(r.assignment.stolen_from, Some(slow.assignment.slot));
        assert!(r.start >= slow.start);
        assert_ne!(r.assignment.slot, slow.assignment.slot);
    }
    assert!(
        without
            .runs
            .iter()
            .all(|r| r.assignment.stolen_from.is_none())
    );
}

#[test]
fn skewed_durations_anywhere_finish_within_ideal_plus_one_task() {
    // List scheduling (no slot idles while a task is queued) ends within
    // the work spread evenly plus the task that ends last; so within the
    // ideal plus the longest task wherever the slow task sits.
    let mut rng = Rng(7);
    for round in 0..200 {
        let slots = 1 + rng.below(8) as usize;
        let units = rng.below(60) as usize;
        let at = rng.below(units as u64 + 1) as usize;
        let mut tasks = skewed(units, at);
        for t in &mut tasks {
            if t.name != "slow" {
                t.duration = 1 + rng.below(10);
            }
        }
        let out = simulate(&tasks, &SimConfig::new(slots), never).unwrap();
        let longest = tasks.iter().map(|t| t.duration).max().unwrap_or(0);
        assert!(
            out.makespan <= ideal(&tasks, slots) + longest,
            "round {round}: {slots} slots, slow at {at} of {units}: makespan {} > {} + {longest}",
            out.makespan,
            ideal(&tasks, slots)
        );
    }
}

/// The exact optimum of independent tasks on `slots` slots, by trying
/// every assignment (small sets only).
fn optimum(durations: &[u64], slots: usize) -> u64 {
    fn go(d: &[u64], loads: &mut Vec<u64>, best: &mut u64) {
        let Some((&first, rest)) = d.split_first() else {
            *best = (*best).min(loads.iter().copied().max().unwrap_or(0));
            return;
        };
        for s in 0..loads.len() {
            loads[s] += first;
            if loads[s] < *best {
                go(rest, loads, best);
            }
            loads[s] -= first;
        }
    }
    let mut best = durations.iter().sum::<u64>() + 1;
    go(durations, &mut vec![0; slots], &mut best);
    best
}

#[test]
fn small_sets_finish_within_the_exact_optimum_plus_one_task() {
    let mut rng = Rng(11);
    for round in 0..300 {
        let slots = 2 + rng.below(2) as usize;
        let n = 1 + rng.below(7) as usize;
        let durations: Vec<u64> = (0..n)
            .map(|_| {
                if rng.below(4) == 0 {
                    30 + rng.below(70)
                } else {
                    1 + rng.below(10)
                }
            })
            .collect();
        let tasks: Vec<SimTask> = durations
            .iter()
            .enumerate()
            .map(|(i, &d)| SimTask::new(format!("t{i}"), MODES[i % 3], d))
            .collect();
        let out = simulate(&tasks, &SimConfig::new(slots), never).unwrap();
        let opt = optimum(&durations, slots);
        let longest = durations.iter().copied().max().unwrap_or(0);
        // Graham's bound, exact in integers: N·makespan ≤ N·OPT + (N−1)·longest.
        let n_slots = slots as u64;
        assert!(
            n_slots * out.makespan <= n_slots * opt + (n_slots - 1) * longest,
            "round {round}: {durations:?} on {slots}: makespan {} vs optimum {opt}",
            out.makespan
        );
    }
}

#[test]
fn dags_finish_within_the_list_scheduling_bound() {
    let mut rng = Rng(3);
    for round in 0..100 {
        let slots = 1 + rng.below(6) as usize;
        let n = 1 + rng.below(80) as usize;
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let mut t = SimTask::new(format!("t{i}"), MODES[i % 3], 1 + rng.below(20));
            for _ in 0..rng.below(3) {
                if i > 0 {
                    let need = format!("t{}", rng.below(i as u64));
                    if !t.needs.contains(&need) {
                        t.needs.push(need);
                    }
                }
            }
            tasks.push(t);
        }
        let out = simulate(&tasks, &SimConfig::new(slots), never).unwrap();
        assert!(out.blocked.is_empty() && out.failed.is_empty());
        // Every task ran after its needs.
        let end: HashMap<&str, Millis> = out
            .runs
            .iter()
            .map(|r| (r.assignment.task.as_str(), r.end))
            .collect();
        for r in &out.runs {
            let t = tasks.iter().find(|t| t.name == r.assignment.task).unwrap();
            for need in &t.needs {
                assert!(
                    end[need.as_str()] <= r.start,
                    "round {round}: {need} before {}",
                    t.name
                );
            }
        }
        // Graham: the work spread evenly plus the critical path.
        let bound = work(&tasks).div_ceil(slots as u64) + critical_path(&tasks);
        assert!(
            out.makespan <= bound,
            "round {round}: {} > {bound}",
            out.makespan
        );
        assert!(out.makespan >= ideal(&tasks, slots));
    }
}

#[test]
fn the_same_task_set_gives_the_same_decisions() {
    let mut rng = Rng(5);
    let tasks: Vec<SimTask> = (0..200)
        .map(|i| SimTask::new(format!("t{i}"), MODES[i % 3], 1 + rng.below(50)))
        .collect();
    let flaky = |_: &str, slot: SlotId, start: Millis| slot.0 == 2 && start.0 < 300;
    let a = simulate(&tasks, &SimConfig::new(5), flaky).unwrap();
    let b = simulate(&tasks, &SimConfig::new(5), flaky).unwrap();
    assert_eq!(a, b);
    assert!(!a.breaker_changes.is_empty());
}

#[test]
fn mode_affinity_groups_modes_on_slots() {
    // Two modes, equal durations, four slots: each slot runs one mode.
    let tasks: Vec<SimTask> = (0..40)
        .map(|i| SimTask::new(format!("t{i}"), ["code", "review"][i % 2], 10))
        .collect();
    let out = simulate(&tasks, &SimConfig::new(4), never).unwrap();
    let mut modes: Vec<Vec<&str>> = vec![Vec::new(); 4];
    for r in &out.runs {
        let mode = tasks
            .iter()
            .find(|t| t.name == r.assignment.task)
            .unwrap()
            .mode
            .as_str();
        let slot = &mut modes[r.assignment.slot.0];
        if !slot.contains(&mode) {
            slot.push(mode);
        }
    }
    assert_eq!(
        modes,
        vec![vec!["code"], vec!["review"], vec!["code"], vec!["review"]]
    );
    assert_eq!(out.makespan, 100);
}

#[test]
fn a_failing_slot_opens_its_queue_moves_and_a_probe_closes_it() {
    let tasks: Vec<SimTask> = (0..30)
        .map(|i| SimTask::new(format!("t{i}"), "code", 10))
        .collect();
    let cfg = SimConfig {
        failures_to_open: 2,
        cooldown_ms: 50,
        ..SimConfig::new(3)
    };
    // Slot 1 fails everything that starts before 60 ms.
    let out = simulate(&tasks, &cfg, |_, slot, start| slot.0 == 1 && start.0 < 60).unwrap();
    assert!(out.failed.is_empty() && out.blocked.is_empty());
    let changes: Vec<(u64, BreakerState, BreakerState)> = out
        .breaker_changes
        .iter()
        .map(|(t, c)| (t.0, c.from, c.to))
        .collect();
    assert_eq!(
        changes,
        vec![
            (
                20,
                BreakerState::Closed,
                BreakerState::Open { until: Millis(70) }
            ),
            (80, BreakerState::HalfOpen, BreakerState::Closed),
        ]
    );
    let (_, opened) = &out.breaker_changes[0];
    assert_eq!(opened.slot, SlotId(1));
    assert!(!opened.moved.is_empty());
    assert!(
        opened
            .moved
            .iter()
            .all(|m| m.from == SlotId(1) && m.to != SlotId(1))
    );
    // Nothing starts on slot 1 while it is open; then one probe.
    let on_1: Vec<&SimRun> = out
        .runs
        .iter()
        .filter(|r| r.assignment.slot == SlotId(1))
        .collect();
    assert!(on_1.iter().all(|r| r.start.0 < 20 || r.start.0 >= 70));
    let probe: Vec<&&SimRun> = on_1.iter().filter(|r| r.assignment.probe).collect();
    assert_eq!(probe.len(), 1);
    assert_eq!(probe[0].start, Millis(70));
}

#[test]
fn a_failed_probe_reopens_and_every_slot_open_waits_for_the_cooldown() {
    let tasks: Vec<SimTask> = (0..6)
        .map(|i| SimTask::new(format!("t{i}"), "code", 10))
        .collect();
    let cfg = SimConfig {
        failures_to_open: 1,
        cooldown_ms: 100,
        max_attempts: 10,
        ..SimConfig::new(2)
    };
    // Everything fails before 150 ms: both slots open, then their probes
    // at 110 fail, and the probes at 220 succeed; the other four tasks
    // follow, two by two.
    let out = simulate(&tasks, &cfg, |_, _, start| start.0 < 150).unwrap();
    assert!(out.failed.is_empty() && out.blocked.is_empty());
    let starts: Vec<u64> = out.runs.iter().map(|r| r.start.0).collect();
    assert_eq!(&starts[..4], &[0, 0, 110, 110]);
    assert!(out.runs[2].assignment.probe && out.runs[3].assignment.probe);
    assert_eq!(out.runs[4].start, Millis(220));
    let reopened = out
        .breaker_changes
        .iter()
        .filter(|(_, c)| {
            c.from == BreakerState::HalfOpen && matches!(c.to, BreakerState::Open { .. })
        })
        .count();
    assert_eq!(reopened, 2);
    assert_eq!(out.makespan, 220 + 10 * 3);
}

#[test]
fn tasks_that_use_up_their_attempts_block_their_dependents() {
    let mut tasks = vec![SimTask::new("a", "code", 5), SimTask::new("b", "code", 5)];
    tasks[1].needs.push("a".into());
    let cfg = SimConfig {
        max_attempts: 2,
        failures_to_open: 100,
        ..SimConfig::new(2)
    };
    let out = simulate(&tasks, &cfg, |t, _, _| t == "a").unwrap();
    assert_eq!(out.failed, vec!["a"]);
    assert_eq!(out.blocked, vec!["b"]);
    // The retry went to the other slot.
    assert_ne!(out.runs[0].assignment.slot, out.runs[1].assignment.slot);
}

#[test]
fn bad_task_sets_are_errors() {
    let mut t = SimTask::new("a", "code", 1);
    t.needs.push("ghost".into());
    assert_eq!(
        simulate(&[t], &SimConfig::new(1), never)
            .unwrap_err()
            .to_string(),
        "task `a` needs `ghost`, which is not in the task set"
    );
    let twice = [SimTask::new("a", "code", 1), SimTask::new("a", "code", 1)];
    assert_eq!(
        simulate(&twice, &SimConfig::new(1), never).unwrap_err(),
        SimError::Duplicate("a".into())
    );
}

#[test]
fn hostile_sizes_stay_linear() {
    let many: Vec<SimTask> = (0..100_000)
        .map(|i| SimTask::new(format!("t{i}"), MODES[i % 3], 1))
        .collect();
    let out = simulate(&many, &SimConfig::new(1), never).unwrap();
    assert_eq!(out.makespan, 100_000);
    assert_eq!(out.runs.len(), 100_000);
    assert!(out.runs.iter().all(|r| r.assignment.stolen_from.is_none()));

    let out = simulate(&[], &SimConfig::new(64), never).unwrap();
    assert_eq!(out.makespan, 0);
    assert!(out.runs.is_empty());

    let out = simulate(&many[..10_000], &SimConfig::new(64), never).unwrap();
    assert_eq!(out.makespan, 10_000u64.div_ceil(64));
}
