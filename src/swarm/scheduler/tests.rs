//! The scheduler alone, call by call: placement, stealing, breakers,
//! resume, and the errors of calls that do not fit its state.

use super::*;

fn at(ms: u64) -> Millis {
    Millis(ms)
}

/// Runs `slot`'s next task to completion with outcome `ok` at `now`.
fn run(s: &mut Scheduler, slot: usize, ok: bool, now: u64) -> (Assignment, Option<BreakerChange>) {
    let a = s.next(SlotId(slot), at(now)).unwrap();
    let change = s.finished(SlotId(slot), &a.task, ok, at(now)).unwrap();
    (a, change)
}

#[test]
fn enqueue_balances_load_with_ties_to_the_lowest_id() {
    let mut s = Scheduler::new(3, 3, 1000);
    let placed: Vec<usize> = (0..7)
        .map(|i| s.enqueue(&format!("t{i}"), "code").0)
        .collect();
    // Equal load: the slot that already holds code tasks wins the tie,
    // but never by more than the load difference allows.
    assert_eq!(placed, vec![0, 1, 2, 0, 1, 2, 0]);
    assert_eq!(s.queue(SlotId(0)), vec!["t0", "t3", "t6"]);
    assert_eq!(s.queued_len(), 7);
}

#[test]
fn affinity_keeps_same_mode_tasks_together_when_load_is_equal() {
    let mut s = Scheduler::new(4, 3, 1000);
    let modes = [
        "code", "review", "code", "review", "code", "review", "code", "review",
    ];
    for (i, mode) in modes.iter().enumerate() {
        s.enqueue(&format!("t{i}"), mode);
    }
    assert_eq!(s.queue(SlotId(0)), vec!["t0", "t4"]);
    assert_eq!(s.queue(SlotId(1)), vec!["t1", "t5"]);
    assert_eq!(s.queue(SlotId(2)), vec!["t2", "t6"]);
    assert_eq!(s.queue(SlotId(3)), vec!["t3", "t7"]);

    // A slot that last ran a mode wins an equal-load tie over a lower id.
    let mut s = Scheduler::new(2, 3, 1000);
    s.enqueue("a", "code");
    s.enqueue("b", "review");
    run(&mut s, 0, true, 1);
    run(&mut s, 1, true, 1);
    assert_eq!(s.enqueue("c", "review"), SlotId(1));
    assert_eq!(s.enqueue("d", "code"), SlotId(0));
}

#[test]
fn an_idle_slot_beats_a_busy_slot_with_affinity() {
    let mut s = Scheduler::new(2, 3, 1000);
    s.enqueue("a", "code");
    s.next(SlotId(0), at(0)).unwrap();
    assert_eq!(s.enqueue("b", "code"), SlotId(1));
}

#[test]
fn next_runs_the_own_queue_in_order() {
    let mut s = Scheduler::new(1, 3, 1000);
    for t in ["a", "b", "c"] {
        s.enqueue(t, "code");
    }
    let order: Vec<String> = (0..3).map(|_| run(&mut s, 0, true, 5).0.task).collect();
    assert_eq!(order, ["a", "b", "c"]);
    assert_eq!(s.next(SlotId(0), at(5)), None);
    assert_eq!(s.queued_len(), 0);
}

#[test]
fn a_busy_slot_gets_nothing_more() {
    let mut s = Scheduler::new(1, 3, 1000);
    s.enqueue("a", "code");
    s.enqueue("b", "code");
    assert_eq!(s.next(SlotId(0), at(0)).unwrap().task, "a");
    assert_eq!(s.next(SlotId(0), at(0)), None);
    assert_eq!(s.running(SlotId(0)), Some("a"));
    assert_eq!(s.idle_slots(), Vec::<SlotId>::new());
}

#[test]
fn an_idle_slot_steals_the_newest_task_of_the_longest_queue() {
    let mut s = Scheduler::new(3, 3, 1000);
    for i in 0..6 {
        s.enqueue(&format!("t{i}"), "code");
    }
    // Queues: 0 [t0 t3], 1 [t1 t4], 2 [t2 t5]; 0 and 1 start, 2 finishes
    // its own two, then steals.
    s.next(SlotId(0), at(0)).unwrap();
    s.next(SlotId(1), at(0)).unwrap();
    s.enqueue("t6", "code"); // onto slot 2 (least load)
    run(&mut s, 2, true, 1);
    run(&mut s, 2, true, 2);
    run(&mut s, 2, true, 3);
    assert_eq!(s.queue(SlotId(2)), Vec::<&str>::new());
    s.enqueue("t7", "code"); // onto slot 2, the only idle one
    s.enqueue("t8", "code"); // load tie 2/2/1 → slot 2
    assert_eq!(s.queue(SlotId(2)), vec!["t7", "t8"]);
    let a = s.next(SlotId(2), at(4)).unwrap();
    assert_eq!((a.task.as_str(), a.stolen_from), ("t7", None));
    s.finished(SlotId(2), "t7", true, at(4)).unwrap();
    // Own t8 first, then a steal: queues 0 [t3] and 1 [t4] tie at one;
    // both victims are busy, the lowest id loses its back task.
    assert_eq!(run(&mut s, 2, true, 5).0.task, "t8");
    let a = s.next(SlotId(2), at(6)).unwrap();
    assert_eq!(a.task, "t3");
    assert_eq!(a.stolen_from, Some(SlotId(0)));
    assert!(!a.probe);
    assert_eq!(s.queue(SlotId(0)), Vec::<&str>::new());
}

#[test]
fn stealing_takes_from_the_back_of_the_longest_queue() {
    let mut s = Scheduler::new(2, 3, 1000);
    s.enqueue("first", "code");
    s.next(SlotId(0), at(0)).unwrap();
    for t in ["a", "b", "c"] {
        // Slot 1 is busy from the first, so slot 0's queue grows too.
        s.enqueue(t, "code");
    }
    assert_eq!(s.queue(SlotId(1)), vec!["a", "c"]);
    assert_eq!(s.queue(SlotId(0)), vec!["b"]);
    s.next(SlotId(1), at(0)).unwrap(); // runs a
    s.finished(SlotId(0), "first", true, at(1)).unwrap();
    assert_eq!(s.next(SlotId(0), at(1)).unwrap().task, "b");
    s.finished(SlotId(0), "b", true, at(2)).unwrap();
    let a = s.next(SlotId(0), at(2)).unwrap();
    assert_eq!((a.task.as_str(), a.stolen_from), ("c", Some(SlotId(1))));
}

#[test]
fn equal_queues_prefer_a_victim_task_of_the_thiefs_mode() {
    let mut s = Scheduler::new(3, 3, 1000);
    s.adopt_running("x", "code", SlotId(0)).unwrap();
    s.adopt_running("y", "review", SlotId(1)).unwrap();
    s.adopt_running("r", "review", SlotId(2)).unwrap();
    assert_eq!(s.enqueue("c1", "code"), SlotId(0));
    // Slots 1 and 2 tie on load and affinity: the lowest id.
    assert_eq!(s.enqueue("r1", "review"), SlotId(1));
    s.finished(SlotId(2), "r", true, at(1)).unwrap();
    // Queues tie at one each; slot 2 last ran review: it steals r1, not
    // the lower id's c1.
    let a = s.next(SlotId(2), at(1)).unwrap();
    assert_eq!((a.task.as_str(), a.stolen_from), ("r1", Some(SlotId(1))));
    assert_eq!(s.queue(SlotId(0)), vec!["c1"]);
}

#[test]
fn an_idle_victim_keeps_its_only_task() {
    let mut s = Scheduler::new(2, 3, 1000);
    s.enqueue("a", "code");
    assert_eq!(s.next(SlotId(1), at(0)), None);
    assert_eq!(s.next(SlotId(0), at(0)).unwrap().task, "a");
}

#[test]
fn without_stealing_an_idle_slot_waits() {
    let mut s = Scheduler::new(2, 3, 1000).with_stealing(false);
    s.enqueue("a", "code");
    s.enqueue("b", "code");
    s.enqueue("c", "code");
    s.next(SlotId(0), at(0)).unwrap();
    run(&mut s, 1, true, 0);
    assert_eq!(s.next(SlotId(1), at(1)), None);
    assert_eq!(s.queue(SlotId(0)), vec!["c"]);
}

#[test]
fn failures_in_a_row_open_the_breaker_and_move_the_queue() {
    let mut s = Scheduler::new(3, 2, 500);
    for i in 0..6 {
        s.enqueue(&format!("t{i}"), "code");
    }
    s.next(SlotId(1), at(0)).unwrap();
    s.next(SlotId(2), at(0)).unwrap();
    assert_eq!(run(&mut s, 0, false, 10).1, None);
    s.enqueue("u0", "code");
    s.enqueue("u1", "code");
    assert_eq!(s.queue(SlotId(0)), vec!["t3", "u0", "u1"]);
    // A success between failures resets the count.
    assert_eq!(run(&mut s, 0, true, 20).1, None);
    assert_eq!(run(&mut s, 0, false, 30).1, None);
    assert_eq!(s.breaker(SlotId(0), at(30)), BreakerState::Closed);
    s.enqueue("u2", "code");
    s.enqueue("u3", "code");
    assert_eq!(s.queue(SlotId(0)), vec!["u1", "u2", "u3"]);
    let (a, change) = run(&mut s, 0, false, 40);
    assert_eq!(a.task, "u1");
    let change = change.unwrap();
    assert_eq!(change.slot, SlotId(0));
    assert_eq!(change.from, BreakerState::Closed);
    assert_eq!(change.to, BreakerState::Open { until: at(540) });
    assert_eq!(change.reason, "2 failure(s) in a row, the last `u1`");
    // Each moved task goes where placement would put it (by load).
    let moved = |task: &str, to: usize| Move {
        task: task.into(),
        from: SlotId(0),
        to: SlotId(to),
    };
    assert_eq!(change.moved, vec![moved("u2", 1), moved("u3", 2)]);
    assert_eq!(s.queue(SlotId(0)), Vec::<&str>::new());
    assert_eq!(s.queue(SlotId(1)), vec!["t4", "u2"]);
    // Open: no work, not even stolen, and new work goes elsewhere.
    assert_eq!(
        s.breaker(SlotId(0), at(539)),
        BreakerState::Open { until: at(540) }
    );
    assert_eq!(s.next(SlotId(0), at(539)), None);
    assert_ne!(s.enqueue("late", "code"), SlotId(0));
    assert_eq!(s.next_wake(at(100)), Some(at(540)));
    assert_eq!(s.next_wake(at(540)), None);
}

#[test]
fn a_half_open_probe_closes_the_breaker_on_success() {
    let mut s = Scheduler::new(2, 1, 100);
    s.enqueue("bad", "code");
    let (_, change) = run(&mut s, 0, false, 0);
    assert_eq!(change.unwrap().to, BreakerState::Open { until: at(100) });
    assert_eq!(s.breaker(SlotId(0), at(100)), BreakerState::HalfOpen);
    s.enqueue("p", "code");
    s.enqueue("q", "code");
    // Both went to the closed slot 1; slot 0 probes with a stolen task once
    // slot 1 is busy.
    assert_eq!(s.queue(SlotId(1)), vec!["p", "q"]);
    s.next(SlotId(1), at(100)).unwrap();
    let a = s.next(SlotId(0), at(100)).unwrap();
    assert_eq!(
        (a.task.as_str(), a.stolen_from, a.probe),
        ("q", Some(SlotId(1)), true)
    );
    assert_eq!(s.breaker(SlotId(0), at(100)), BreakerState::HalfOpen);
    let change = s.finished(SlotId(0), "q", true, at(150)).unwrap().unwrap();
    assert_eq!(change.from, BreakerState::HalfOpen);
    assert_eq!(change.to, BreakerState::Closed);
    assert_eq!(change.reason, "probe `q` succeeded");
    assert_eq!(s.breaker(SlotId(0), at(150)), BreakerState::Closed);
}

#[test]
fn a_failed_probe_opens_the_breaker_again() {
    let mut s = Scheduler::new(1, 1, 100);
    s.enqueue("a", "code");
    s.enqueue("b", "code");
    s.enqueue("c", "code");
    let change = run(&mut s, 0, false, 0).1.unwrap();
    // The only slot: nothing to move to, the queue stays.
    assert!(change.moved.is_empty());
    assert_eq!(s.queue(SlotId(0)), vec!["b", "c"]);
    assert_eq!(s.next(SlotId(0), at(99)), None);
    let (a, change) = run(&mut s, 0, false, 100);
    assert!(a.probe);
    let change = change.unwrap();
    assert_eq!(change.from, BreakerState::HalfOpen);
    assert_eq!(change.to, BreakerState::Open { until: at(200) });
    assert_eq!(change.reason, "probe `b` failed");
    assert_eq!(s.next(SlotId(0), at(150)), None);
    assert_eq!(s.next_wake(at(150)), Some(at(200)));
    let (a, change) = run(&mut s, 0, true, 200);
    assert_eq!((a.task.as_str(), a.probe), ("c", true));
    assert_eq!(change.unwrap().to, BreakerState::Closed);
    assert_eq!(s.next_wake(at(200)), None);
}

#[test]
fn all_slots_open_wait_for_the_first_cooldown() {
    let mut s = Scheduler::new(2, 1, 100);
    s.enqueue("a", "code");
    s.enqueue("b", "code");
    run(&mut s, 1, false, 5); // slot 1 open until 105
    run(&mut s, 0, false, 10); // slot 0 open until 110
    // New work goes to the slot that recovers first.
    assert_eq!(s.enqueue("c", "code"), SlotId(1));
    assert_eq!(s.enqueue("d", "code"), SlotId(0));
    assert_eq!(s.next(SlotId(0), at(50)), None);
    assert_eq!(s.next(SlotId(1), at(50)), None);
    assert_eq!(s.next_wake(at(50)), Some(at(105)));
    let a = s.next(SlotId(1), at(105)).unwrap();
    assert_eq!((a.task.as_str(), a.probe), ("c", true));
    assert_eq!(s.next(SlotId(0), at(105)), None);
    assert_eq!(s.next_wake(at(105)), Some(at(110)));
}

#[test]
fn opening_moves_nothing_when_every_other_slot_is_open() {
    let mut s = Scheduler::new(2, 1, 100);
    s.enqueue("a", "code");
    run(&mut s, 0, false, 0);
    s.enqueue("b", "code");
    s.enqueue("c", "code");
    s.enqueue("d", "code");
    assert_eq!(s.queue(SlotId(1)), vec!["b", "c", "d"]);
    let change = run(&mut s, 1, false, 10).1.unwrap();
    assert!(change.moved.is_empty());
    // Slot 0 recovers first and probes with a task stolen from the queue
    // stranded on the open slot 1.
    let a = s.next(SlotId(0), at(100)).unwrap();
    assert_eq!(
        (a.task.as_str(), a.stolen_from, a.probe),
        ("d", Some(SlotId(1)), true)
    );
}

#[test]
fn failures_to_open_zero_reads_as_one() {
    let mut s = Scheduler::new(1, 0, 10);
    s.enqueue("a", "code");
    assert!(run(&mut s, 0, false, 0).1.is_some());
}

#[test]
fn a_retry_avoids_the_slot_it_failed_on() {
    let mut s = Scheduler::new(3, 5, 10);
    s.enqueue("a", "code");
    run(&mut s, 0, false, 0);
    assert_eq!(s.enqueue_avoiding("a", "code", SlotId(0)), SlotId(1));
    // With one slot there is nowhere else.
    let mut s = Scheduler::new(1, 5, 10);
    assert_eq!(s.enqueue_avoiding("a", "code", SlotId(0)), SlotId(0));
    // A closed slot to avoid still beats open others.
    let mut s = Scheduler::new(2, 1, 10);
    s.enqueue("x", "code");
    run(&mut s, 0, false, 0);
    assert_eq!(s.enqueue_avoiding("y", "code", SlotId(1)), SlotId(1));
}

#[test]
fn wrong_calls_are_errors_not_panics() {
    let mut s = Scheduler::new(2, 3, 10);
    assert_eq!(
        s.finished(SlotId(0), "ghost", true, at(0)),
        Err(SchedError::NotRunning {
            slot: SlotId(0),
            task: "ghost".into(),
            running: None,
        })
    );
    assert_eq!(
        s.finished(SlotId(7), "ghost", true, at(0)),
        Err(SchedError::NoSuchSlot {
            slot: SlotId(7),
            slots: 2,
        })
    );
    s.adopt_running("a", "code", SlotId(1)).unwrap();
    let err = s.adopt_running("b", "code", SlotId(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "slot 1 already runs `a`, so it cannot adopt `b`"
    );
    let err = s.finished(SlotId(1), "b", true, at(0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "slot 1 is not running task `b` (it runs a)"
    );
    assert_eq!(s.next(SlotId(9), at(0)), None);
    assert_eq!(s.queue(SlotId(9)), Vec::<&str>::new());
    assert_eq!(s.running(SlotId(9)), None);
    assert_eq!(s.breaker(SlotId(9), at(0)), BreakerState::Closed);
    assert_eq!(Scheduler::new(0, 1, 1).slots(), 1);
}

#[test]
fn resume_adopts_running_tasks_and_breakers() {
    let mut s = Scheduler::new(2, 3, 100);
    s.adopt_running("a", "code", SlotId(0)).unwrap();
    s.adopt_breaker(SlotId(0), BreakerState::HalfOpen).unwrap();
    s.adopt_breaker(SlotId(1), BreakerState::Open { until: at(500) })
        .unwrap();
    assert_eq!(s.idle_slots(), vec![SlotId(1)]);
    // Adopted work counts as load and affinity.
    assert_eq!(s.enqueue("b", "code"), SlotId(0));
    assert_eq!(s.next(SlotId(1), at(10)), None);
    let change = s.finished(SlotId(0), "a", true, at(20)).unwrap().unwrap();
    assert_eq!(
        (change.from, change.to),
        (BreakerState::HalfOpen, BreakerState::Closed)
    );
    // Half-open and idle: the next task probes.
    s.adopt_breaker(SlotId(0), BreakerState::HalfOpen).unwrap();
    assert!(s.next(SlotId(0), at(20)).unwrap().probe);
}

#[test]
fn decisions_serialize_for_the_journal() {
    let a = Assignment {
        task: "t".into(),
        slot: SlotId(3),
        stolen_from: Some(SlotId(1)),
        probe: false,
    };
    let json = serde_json::to_string(&a).unwrap();
    assert_eq!(
        json,
        r#"{"task":"t","slot":3,"stolen_from":1,"probe":false}"#
    );
    let state = BreakerState::Open { until: at(7) };
    assert_eq!(
        serde_json::to_string(&state).unwrap(),
        r#"{"state":"open","until":7}"#
    );
    let back: BreakerState = serde_json::from_str(r#"{"state":"half_open"}"#).unwrap();
    assert_eq!(back, BreakerState::HalfOpen);
}
