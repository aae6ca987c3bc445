//! `lev worker`s sharing a PostgreSQL journal, with the real binary: runs
//! submitted with `lev run --detach` (and a swarm with `lev workflow
//! --detach`) are executed by whichever worker claims them; workers
//! killed with `kill -9` again and again have their runs taken over once
//! their leases lapse, and every run finishes with no step completed twice
//! and the outputs of an undisturbed run; a worker stopped (SIGSTOP) past
//! its lease does not act on the run it lost when it wakes. Each test in a
//! database of its own on `LEV_TEST_POSTGRES`'s server (skipped without
//! it, unless `CI` is set). Two workbenches (the real binary under tmux)
//! open a run a worker executes and steer it.

mod support;

use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::kill::{kill9, wait_for};
use support::lev::{Lev, of_type};
use support::llm_server::LlmServer;
use support::pg::PgDb;
use support::swarm_plan::{plan_of, say, task, who};
use support::tmux::{Tmux, skip_without_tmux};
use support::workers::{
    LEASE, Worker, statuses, step_outputs, submit, successes, text, waiting_worker, worker,
};

/// A chain of idempotent shell steps, each taking a moment and passing
/// its output on: what an undisturbed run's outputs are is known.
const RELAY: &str = r#"
version: 1
kind: workflow
id: relay
name: Relay
inputs:
  n: { type: string }
steps:
  a:
    type: shell
    run: "sleep 1; echo a${{ inputs.n }}"
    idempotent: true
  b:
    needs: [a]
    type: shell
    run: "sleep 1; echo b-${{ steps.a.outputs.stdout }}"
    idempotent: true
  c:
    needs: [b]
    type: shell
    run: "sleep 1; echo c-${{ steps.b.outputs.stdout }}"
    idempotent: true
  d:
    needs: [c]
    type: shell
    run: "echo d-${{ steps.c.outputs.stdout }}"
    idempotent: true
"#;

#[test]
fn runs_finish_under_workers_killed_again_and_again() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let wf = lev.write_workflow(RELAY);
    let wf = wf.display().to_string();
    // An undisturbed run, executed by the submitting process itself.
    let ws = lev.workspace().display().to_string();
    let out = lev.run(&["run", &wf, "--headless", "-i", "n=0", "--workspace", &ws]);
    assert!(out.status.success(), "{}", text(&out));
    let calm = statuses(&lev).into_keys().next().unwrap();
    let calm_outputs = step_outputs(&lev.events(&calm));
    assert_eq!(calm_outputs["d"]["stdout"], "d-c-b-a0");

    let runs: Vec<String> = (0..6)
        .map(|_| submit(&lev, &["run", &wf, "--detach", "-i", "n=0"]))
        .collect();
    for run in &runs {
        assert_eq!(statuses(&lev)[run]["status"], "waiting");
    }
    let mut workers: Vec<Worker> = (0..3).map(|_| worker(&lev)).collect();
    // Kill a worker every second, four times, starting another each time.
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let all = statuses(&lev);
        if runs.iter().all(|r| all[r]["status"] == "succeeded") {
            break;
        }
        for r in &runs {
            let s = &all[r]["status"];
            assert!(
                ["waiting", "running", "succeeded"].contains(&s.as_str().unwrap()),
                "run {r}: {}",
                all[r]
            );
        }
        assert!(Instant::now() < deadline, "runs never finished: {all:?}");
        std::thread::sleep(Duration::from_millis(1000));
        if kills < 4 {
            let victim = kills % workers.len();
            kill9(workers[victim].child());
            workers[victim] = worker(&lev);
            kills += 1;
        }
    }
    let mut taken_over = 0;
    for run in &runs {
        let show = lev.show(run);
        assert_eq!(show["status"], "succeeded", "{show}");
        let events = lev.events(run);
        assert_eq!(step_outputs(&events), calm_outputs, "{run}");
        let done = successes(&events);
        assert!(done.values().all(|n| *n == 1), "{run}: {done:?}");
        assert_eq!(done.len(), 4, "{run}: {done:?}");
        taken_over += of_type(&events, "run_resumed").len().saturating_sub(1);
    }
    // The kills landed mid-run: some run was taken over from a dead worker.
    assert!(taken_over > 0, "no run was taken over");
}

#[test]
fn a_worker_stopped_past_its_lease_does_not_act_on_the_run_it_lost() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    // `slow` is idempotent (taken over, it runs again); `mark` is not: it
    // must run once, by whichever worker holds the run then.
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: fenced\nname: Fenced\nsteps:\n  slow:\n    type: shell\n    run: \"echo started >> slow.log; sleep 3; echo slow\"\n    idempotent: true\n  mark:\n    needs: [slow]\n    type: shell\n    run: \"echo $PPID >> marks; echo marked\"\n",
    );
    let run = submit(&lev, &["run", &wf.display().to_string(), "--detach"]);
    let first = worker(&lev);
    let slow_log = lev.workspace().join("slow.log");
    wait_for("the slow step", Duration::from_secs(30), || {
        slow_log.exists()
    });
    // Stopped mid-step (its command goes on in its own process group).
    let first = first.into_child();
    let pid = first.id().to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };
    signal("-STOP");
    let second = worker(&lev);
    let marks = lev.workspace().join("marks");
    let deadline = Instant::now() + Duration::from_secs(60);
    while statuses(&lev)[&run]["status"] != "succeeded" {
        assert!(Instant::now() < deadline, "{:?}", statuses(&lev)[&run]);
        std::thread::sleep(Duration::from_millis(100));
    }
    // Woken after its run was taken over and finished: it writes nothing
    // more and starts nothing (its slow step's end, then `mark`, would be
    // journaled first, and the journal refuses its old lease).
    let before = lev.events(&run).len();
    signal("-CONT");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(lev.events(&run).len(), before);
    let marked = std::fs::read_to_string(&marks).unwrap();
    assert_eq!(marked.lines().count(), 1, "{marked}");
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    let done = successes(&lev.events(&run));
    assert!(done.values().all(|n| *n == 1), "{done:?}");
    // It says what happened, and goes on working.
    drop(second);
    signal("-INT");
    let out = first.wait_with_output().unwrap();
    let said = text(&out);
    assert!(
        said.contains("after this process's lease on it lapsed"),
        "{said}"
    );
    assert!(out.status.success(), "{said}");
}

#[test]
fn a_detached_swarm_is_taken_over_from_a_killed_worker_without_rerunning_finished_tasks() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let plan = plan_of(vec![
        task("first", "architect", &[]),
        task("quick", "coder", &["first"]),
        task("long", "coder", &["first"]),
        task("last", "reviewer", &["quick", "long"]),
    ]);
    let server = LlmServer::with(move |req| match who(req).as_str() {
        "plan" => say(&plan, 0),
        "long" => say("long done", 2500),
        id => say(&format!("{id} done"), 0),
    });
    let lev = Lev::new()
        .with_openai(&server.base_url())
        .with_env("LEV_JOURNAL", &db.url);
    let run = submit(&lev, &["workflow", "share me", "--detach"]);
    let mut first = worker(&lev);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let asked: Vec<String> = server.requests().iter().map(who).collect();
        if asked.contains(&"long".to_string()) && asked.contains(&"quick".to_string()) {
            break;
        }
        if Instant::now() >= deadline {
            let mut first = first.into_child();
            kill9(&mut first);
            let said = text(&first.wait_with_output().unwrap());
            panic!(
                "never got to the long task: {asked:?}\n{said}\n{}",
                lev.replay(&run)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill9(first.child());
    let second = worker(&lev);
    let deadline = Instant::now() + Duration::from_secs(60);
    while statuses(&lev)[&run]["status"] != "succeeded" {
        assert!(Instant::now() < deadline, "{:?}", statuses(&lev)[&run]);
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(second);
    let asked: Vec<String> = server.requests().iter().map(who).collect();
    let count = |id: &str| asked.iter().filter(|a| *a == id).count();
    assert_eq!(count("plan"), 1, "{asked:?}");
    assert_eq!(count("first"), 1, "{asked:?}");
    assert_eq!(count("last"), 1, "{asked:?}");
    // `long` was in flight at the kill; `quick` may have been between its
    // reply and its journal entry: asked again at most once.
    assert!(count("quick") <= 2 && count("long") == 2, "{asked:?}");
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    assert_eq!(show["outputs"]["tasks"]["long"]["result"], "long done");
    let events = lev.events(&run);
    assert_eq!(of_type(&events, "run_resumed").len(), 2, "claimed twice");
    let done = successes(&events);
    assert!(done.values().all(|n| *n == 1), "{done:?}");
}

#[test]
fn steering_from_another_machine_reaches_the_worker_and_the_first_answer_wins() {
    let Some(db) = PgDb::new() else {
        return;
    };
    // Two "machines": data dirs of their own, one database.
    let here = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let there = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let wf = here.write_workflow(
        "version: 1\nkind: workflow\nid: ask\nname: Ask\nsteps:\n  pick:\n    type: question\n    ask: \"Which color?\"\n    timeout: 60s\n  use:\n    needs: [pick]\n    type: shell\n    run: \"echo chosen ${{ steps.pick.outputs.answer }}\"\n",
    );
    let wf = wf.display().to_string();
    let asking = submit(&here, &["run", &wf, "--detach"]);
    let _worker = waiting_worker(&here);
    wait_for("the question", Duration::from_secs(30), || {
        !of_type(&here.events(&asking), "question_asked").is_empty()
    });
    let (red, blue) = (
        there.spawn(&["answer", &asking, "pick", "red"]),
        here.spawn(&["answer", &asking, "pick", "blue"]),
    );
    let (red, blue) = (
        red.wait_with_output().unwrap(),
        blue.wait_with_output().unwrap(),
    );
    let (winner, loser) = match (red.status.success(), blue.status.success()) {
        (true, false) => (("red", &red), &blue),
        (false, true) => (("blue", &blue), &red),
        _ => panic!("one answer wins:\n{}\n{}", text(&red), text(&blue)),
    };
    assert!(text(winner.1).contains("answer sent"), "{}", text(winner.1));
    assert!(
        text(loser).contains("was answered") && text(loser).contains(winner.0),
        "{}",
        text(loser)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while statuses(&here)[&asking]["status"] != "succeeded" {
        assert!(Instant::now() < deadline, "{:?}", statuses(&here)[&asking]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let outputs = step_outputs(&here.events(&asking));
    assert_eq!(outputs["use"]["stdout"], format!("chosen {}", winner.0));

    // A cancel from the other machine stops a run the worker executes.
    let slow = here.write_workflow(
        "version: 1\nkind: workflow\nid: slow\nname: Slow\nsteps:\n  wait:\n    type: shell\n    run: \"sleep 60\"\n",
    );
    let slow = submit(&here, &["run", &slow.display().to_string(), "--detach"]);
    wait_for("the slow step", Duration::from_secs(30), || {
        statuses(&here)[&slow]["status"] == "running"
            && !of_type(&here.events(&slow), "step_started").is_empty()
    });
    let out = there.run(&["cancel", &slow]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    while statuses(&here)[&slow]["status"] != "cancelled" {
        assert!(Instant::now() < deadline, "{:?}", statuses(&here)[&slow]);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the workbench does with a run another machine executes: its engine
/// handle follows it live (`Engine::watch`: each fact once, in order, as it
/// is committed there) and its ops go to the executing worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_follows_a_run_a_worker_executes_and_steers_it() {
    use lev::engine::{Done, Engine, Submitted};
    use lev::journal::Journal;
    use lev::protocol::{AnswerSource, Event, Notice, Op, RunId, RunStatus};

    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: ask\nname: Ask\nsteps:\n  pick:\n    type: question\n    ask: \"Which color?\"\n    timeout: 60s\n  use:\n    needs: [pick]\n    type: shell\n    run: \"sleep 0.3; echo chosen ${{ steps.pick.outputs.answer }}\"\n",
    );
    let run = submit(&lev, &["run", &wf.display().to_string(), "--detach"]);
    let _worker = waiting_worker(&lev);
    let asked = {
        let lev = &lev;
        let run = run.clone();
        move || !of_type(&lev.events(&run), "question_asked").is_empty()
    };
    tokio::task::block_in_place(|| wait_for("the question", Duration::from_secs(30), asked));

    let engine = Engine::open(
        Journal::open_url(&db.url).await.unwrap(),
        Err("this handle only follows and steers".into()),
    );
    let id = RunId(run.clone());
    let mut notices = engine.subscribe();
    let driving = engine.watch(&id).await.unwrap();
    assert!(engine.is_watched(&id) && !engine.is_active(&id));
    let after = driving.resumed_after.unwrap().0;
    let done = engine
        .submit(Op::Answer {
            run: id.clone(),
            question: "pick".into(),
            answer: "teal".into(),
            source: AnswerSource::User,
        })
        .await
        .unwrap();
    assert!(
        matches!(done, Submitted::Elsewhere(Done::Delivered { ref run }) if *run == id),
        "{done:?}"
    );
    let mut seen = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(n) = notices.recv().await {
            match n {
                Notice::Event(r) if r.run == id => seen.push(r),
                Notice::Ended(r) if r == id => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the run's end never came: {seen:?}");
    let outcome = driving.outcome().await.unwrap();
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert!(!engine.is_watched(&id));
    // Every fact after where the history stood, once, in order.
    let seqs: Vec<u64> = seen.iter().map(|r| r.seq.0).collect();
    let journaled = lev.events(&run).len() as u64;
    assert_eq!(seqs, ((after + 1)..=journaled).collect::<Vec<_>>());
    assert!(seen.iter().any(|r| matches!(
        &r.event,
        Event::QuestionAnswered { answer, .. } if answer == "teal"
    )));
    let outputs = step_outputs(&lev.events(&run));
    assert_eq!(outputs["use"]["stdout"], "chosen teal");
    // Nobody executes it now: nothing to follow.
    assert!(engine.watch(&id).await.is_err());
}

#[test]
fn a_worker_told_to_stop_lets_its_runs_end_and_claims_no_more() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: slow\nname: Slow\nsteps:\n  slow:\n    type: shell\n    run: \"echo started >> started.log; sleep 3; echo slow\"\n    idempotent: true\n",
    );
    let wf = wf.display().to_string();
    let ws = lev.workspace().display().to_string();
    let one_slot = |lev: &Lev| {
        let args = [
            "worker",
            "--lease",
            LEASE,
            "--slots",
            "1",
            "--workspace",
            &ws,
        ];
        Worker(Some(lev.spawn(&args)))
    };
    let started = lev.workspace().join("started.log");
    let starts = || {
        std::fs::read_to_string(&started)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let signal = |child: &Child, sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };

    // SIGTERM mid-step: the run ends here, the waiting one is left alone.
    let first = submit(&lev, &["run", &wf, "--detach"]);
    let worker = one_slot(&lev).into_child();
    wait_for("the first run's step", Duration::from_secs(30), || {
        starts() == 1
    });
    let second = submit(&lev, &["run", &wf, "--detach"]);
    signal(&worker, "-TERM");
    let out = worker.wait_with_output().unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("claiming no more runs"), "{said}");
    assert!(said.contains("stopped"), "{said}");
    let all = statuses(&lev);
    assert_eq!(all[&first]["status"], "succeeded", "{said}");
    assert_eq!(all[&second]["status"], "waiting", "{said}");
    assert_eq!(starts(), 1);

    // Told twice, it leaves at once: the step it was executing is not
    // finished by it, and the run waits for another worker.
    let worker = one_slot(&lev).into_child();
    wait_for("the second run's step", Duration::from_secs(30), || {
        starts() == 2
    });
    // The second signal only once the first is taken: two sent at once
    // may reach the process as one.
    let mut worker = worker;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(worker.stdout.take().unwrap()));
    signal(&worker, "-TERM");
    let mut said = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains("claiming no more runs") {
            break;
        }
    }
    signal(&worker, "-TERM");
    said.extend(lines.map_while(Result::ok).map(|l| l + "\n"));
    let out = worker.wait_with_output().unwrap();
    said.push_str(&text(&out));
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("stopping now"), "{said}");
    assert_eq!(successes(&lev.events(&second)).len(), 0, "{said}");
    let _last = one_slot(&lev);
    let deadline = Instant::now() + Duration::from_secs(60);
    while statuses(&lev)[&second]["status"] != "succeeded" {
        assert!(Instant::now() < deadline, "{:?}", statuses(&lev)[&second]);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two workbenches on other machines open a run a worker executes from
/// their runs browsers: both show its question live, the answer given in
/// one reaches the worker, and both show what follows to the run's end.
#[test]
fn two_workbenches_watch_and_steer_a_run_a_worker_executes() {
    if skip_without_tmux() {
        return;
    }
    let Some(db) = PgDb::new() else {
        return;
    };
    let here = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let wf = here.write_workflow(
        "version: 1\nkind: workflow\nid: greet\nname: Greet\nsteps:\n  audience:\n    type: question\n    header: Audience\n    ask: \"Who should the script greet?\"\n    options:\n      - { value: world, label: \"The whole world\" }\n      - { value: team, label: \"Just the team\" }\n    default: world\n    timeout: 10m\n  greet:\n    needs: [audience]\n    type: shell\n    run: \"echo Hello, ${{ steps.audience.outputs.answer }}\"\n",
    );
    let run = submit(&here, &["run", &wf.display().to_string(), "--detach"]);
    let _worker = waiting_worker(&here);
    wait_for("the question", Duration::from_secs(30), || {
        !of_type(&here.events(&run), "question_asked").is_empty()
    });
    let (a, b) = (Lev::new(), Lev::new());
    let benches: Vec<Tmux> = [&a, &b]
        .into_iter()
        .map(|m| Tmux::start(m, &["--journal", &db.url]))
        .collect();
    for t in &benches {
        t.wait_for("the run in the browser", 30, |s| s.contains(&run));
        t.send("Enter");
        t.wait_for("the question", 30, |s| {
            s.contains("Who should the script greet?") && s.contains("Enter send")
        });
    }
    benches[1].send("Down");
    benches[1].send("Enter");
    // The other workbench's prompt is gone with the answer: it shows the
    // answer given elsewhere, as the journal has it.
    for t in &benches {
        t.wait_for("the answer", 30, |s| {
            s.contains("Audience = team") && s.contains("nothing waits for you")
        });
        t.wait_for("the run's end", 60, |s| s.contains("succeeded ·"));
    }
    let outputs = step_outputs(&here.events(&run));
    assert_eq!(outputs["greet"]["stdout"], "Hello, team");
    for t in &benches {
        t.send("q");
        assert_eq!(t.wait_exit(20), 0, "{}", t.screen());
    }
}

/// The server drops every connection of the database mid-run (a restart,
/// a network blip): the worker reconnects, finishes the run with no step
/// done twice, and goes on claiming what is submitted after.
#[test]
fn a_worker_rides_out_its_connections_dropped_by_the_server() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let wf = lev.write_workflow(RELAY);
    let wf = wf.display().to_string();
    let first = submit(&lev, &["run", &wf, "--detach", "-i", "n=1"]);
    let _worker = worker(&lev);
    wait_for("the first step", Duration::from_secs(30), || {
        !of_type(&lev.events(&first), "step_started").is_empty()
    });
    let drop_connections = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()";
    db.execute(drop_connections);
    std::thread::sleep(Duration::from_millis(1500));
    db.execute(drop_connections);
    let deadline = Instant::now() + Duration::from_secs(60);
    while statuses(&lev)[&first]["status"] != "succeeded" {
        assert!(Instant::now() < deadline, "{:?}", statuses(&lev)[&first]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let events = lev.events(&first);
    assert_eq!(step_outputs(&events)["d"]["stdout"], "d-c-b-a1");
    let done = successes(&events);
    assert!(done.values().all(|n| *n == 1), "{done:?}");

    let second = submit(&lev, &["run", &wf, "--detach", "-i", "n=2"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while statuses(&lev)[&second]["status"] != "succeeded" {
        assert!(Instant::now() < deadline, "{:?}", statuses(&lev)[&second]);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        step_outputs(&lev.events(&second))["d"]["stdout"],
        "d-c-b-a2"
    );
}

/// Three workers; the one executing a swarm is killed (kill -9) mid-task
/// again and again and another takes it over each time: the swarm
/// finishes with no task done twice, every fact read before a kill still
/// there after it, and the outputs of an undisturbed swarm.
#[test]
fn a_swarm_survives_its_worker_killed_again_and_again() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let plan = plan_of(vec![
        task("design", "architect", &[]),
        task("api", "coder", &["design"]),
        task("ui", "coder", &["design"]),
        task("tests", "tdd", &["api", "ui"]),
        task("docs", "docs-writer", &["api"]),
        task("review", "reviewer", &["tests", "docs"]),
    ]);
    let server = LlmServer::with(move |req| match who(req).as_str() {
        "plan" => say(&plan, 0),
        id => say(&format!("{id} done"), 700),
    });
    let lev = Lev::new()
        .with_openai(&server.base_url())
        .with_env("LEV_JOURNAL", &db.url);
    let finished = |run: &str, secs: u64| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while statuses(&lev)[run]["status"] != "succeeded" {
            assert!(Instant::now() < deadline, "{:?}", statuses(&lev)[run]);
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Undisturbed.
    let calm = submit(&lev, &["workflow", "share me", "--detach"]);
    let one = worker(&lev);
    finished(&calm, 120);
    drop(one);
    let calm_outputs = lev.show(&calm)["outputs"].clone();

    let run = submit(&lev, &["workflow", "share me", "--detach"]);
    let mut workers: Vec<Worker> = (0..3).map(|_| worker(&lev)).collect();
    let mut read_before_kills: Vec<Vec<Value>> = Vec::new();
    for _ in 0..3 {
        // Mid-task: a task's request is out and its reply not yet in.
        let asked = server.requests().len();
        wait_for("a task's request", Duration::from_secs(60), || {
            server.requests().len() > asked
        });
        std::thread::sleep(Duration::from_millis(300));
        let holder = statuses(&lev)[&run]["executor"].as_str().map(str::to_owned);
        let Some(holder) = holder else {
            break; // finished already
        };
        let pid: u32 = holder.split(':').nth(1).unwrap().parse().unwrap();
        let Some(victim) = workers
            .iter()
            .position(|w| w.0.as_ref().unwrap().id() == pid)
        else {
            panic!("the executor {holder} is none of the workers");
        };
        read_before_kills.push(lev.events(&run));
        kill9(workers[victim].child());
        workers[victim] = worker(&lev);
    }
    assert!(!read_before_kills.is_empty(), "never killed mid-run");
    finished(&run, 180);
    let events = lev.events(&run);
    for read in &read_before_kills {
        assert_eq!(&events[..read.len()], &read[..], "a fact read was lost");
    }
    let done = successes(&events);
    assert!(done.values().all(|n| *n == 1), "{done:?}");
    assert!(
        of_type(&events, "run_resumed").len() > read_before_kills.len(),
        "taken over after each kill"
    );
    assert_eq!(lev.show(&run)["outputs"], calm_outputs);
}
