//! Spread runs (`lev run --spread`): one run's agent and shell steps shared
//! by several `lev worker`s (the real binary) on a PostgreSQL journal, each
//! step a step run of its own. The steps of one run execute on several
//! workers; workers killed with `kill -9` mid-step have their step runs
//! (and the spread run's scheduling) taken over, with no step completed
//! twice and the outputs of an undisturbed run; a non-idempotent step in
//! flight at a kill pauses its step run for a decision, and the spread run
//! goes on once it is taken; `--modes` chooses which step runs a worker
//! takes; cancelling the spread run cancels its step runs. Each test in a
//! database of its own on `LEV_TEST_POSTGRES`'s server (skipped without
//! it, unless `CI` is set).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::git::{git, init_repo};
use support::kill::{kill9, wait_for};
use support::lev::{Lev, of_type};
use support::llm_server::LlmServer;
use support::pg::PgDb;
use support::swarm_plan::say;
use support::workers::{
    Worker, statuses, step_outputs, submit, successes, text, worker, worker_with,
};

/// Six steps side by side, each printing the process that executes it
/// (the worker is its shell's parent), and one that joins them.
const FAN: &str = r#"
version: 1
kind: workflow
id: fan
name: Fan
steps:
  s1: { type: shell, run: "sleep 1; echo $PPID", idempotent: true }
  s2: { type: shell, run: "sleep 1; echo $PPID", idempotent: true }
  s3: { type: shell, run: "sleep 1; echo $PPID", idempotent: true }
  s4: { type: shell, run: "sleep 1; echo $PPID", idempotent: true }
  s5: { type: shell, run: "sleep 1; echo $PPID", idempotent: true }
  s6: { type: shell, run: "sleep 1; echo $PPID", idempotent: true }
  join:
    needs: [s1, s2, s3, s4, s5, s6]
    type: shell
    run: "echo ${{ steps.s1.outputs.stdout }} ${{ steps.s6.outputs.stdout }}"
    idempotent: true
"#;

/// Steps whose outputs do not depend on where they ran, taking a while.
const SLOW_FAN: &str = r#"
version: 1
kind: workflow
id: slowfan
name: Slow fan
inputs:
  n: { type: string }
steps:
  a: { type: shell, run: "sleep 2; echo a${{ inputs.n }}", idempotent: true }
  b: { type: shell, run: "sleep 2; echo b${{ inputs.n }}", idempotent: true }
  c: { type: shell, run: "sleep 2; echo c${{ inputs.n }}", idempotent: true }
  d:
    needs: [a, b, c]
    type: shell
    run: "sleep 1; echo d-${{ steps.a.outputs.stdout }}-${{ steps.b.outputs.stdout }}-${{ steps.c.outputs.stdout }}"
    idempotent: true
outputs:
  d: ${{ steps.d.outputs.stdout }}
"#;

/// The runs that are step runs of `run`, by step.
fn step_runs(lev: &Lev, run: &str) -> BTreeMap<String, String> {
    let mut by_step = BTreeMap::new();
    for (id, r) in statuses(lev) {
        if r["parent"] == run && r["step_run"] == true {
            let events = lev.events(&id);
            let step = of_type(&events, "run_started")[0]["step_of"]["step"]
                .as_str()
                .unwrap()
                .to_owned();
            by_step.insert(step, id);
        }
    }
    by_step
}

/// The step run of `step` of `run`, once its command has started.
fn step_run_running(lev: &Lev, run: &str, step: &str) -> String {
    let mut step_run = String::new();
    wait_for(
        "the step run's command",
        Duration::from_secs(30),
        || match step_runs(lev, run).get(step) {
            Some(id) => {
                step_run = id.clone();
                of_type(&lev.events(id), "process_started").len() == 1
            }
            None => false,
        },
    );
    step_run
}

fn wait_status(lev: &Lev, run: &str, status: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let all = statuses(lev);
        if all[run]["status"] == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "run {run} never {status}: {}",
            all[run]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The pid in a lease holder's name (`host:pid:nonce`).
fn pid_of(holder: &Value) -> Option<u32> {
    holder.as_str()?.split(':').nth(1)?.parse().ok()
}

#[test]
fn a_spread_run_s_steps_are_executed_by_several_workers() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let wf = lev.write_workflow(FAN).display().to_string();
    let workers: Vec<Worker> = (0..3).map(|_| worker(&lev)).collect();
    let pids: BTreeSet<String> = workers
        .iter()
        .map(|w| w.0.as_ref().unwrap().id().to_string())
        .collect();
    let run = submit(&lev, &["run", &wf, "--detach", "--spread"]);
    wait_status(&lev, &run, "succeeded", 90);

    let events = lev.events(&run);
    let delegated = of_type(&events, "step_delegated");
    assert_eq!(delegated.len(), 7, "every step a step run: {delegated:?}");
    let done = successes(&events);
    assert_eq!(done.len(), 7, "{done:?}");
    assert!(done.values().all(|n| *n == 1), "{done:?}");
    // Each step run is a run of its own, of this one, that ran its step.
    let runs = step_runs(&lev, &run);
    assert_eq!(runs.len(), 7, "{runs:?}");
    let outputs = step_outputs(&events);
    for (step, id) in &runs {
        let its = lev.events(id);
        assert_eq!(successes(&its)[step], 1, "{step} in {id}");
        assert_eq!(step_outputs(&its)[step], outputs[step], "{step}");
        assert!(delegated.iter().any(|d| d["run"] == id.as_str()));
    }
    // Executed by workers, more than one of them.
    let ran_on: BTreeSet<String> = (1..=6)
        .map(|i| {
            outputs[&format!("s{i}")]["stdout"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(ran_on.is_subset(&pids), "{ran_on:?} not among {pids:?}");
    assert!(ran_on.len() >= 2, "one worker did every step: {ran_on:?}");
    // The join read what the steps printed, wherever they ran.
    assert_eq!(
        outputs["join"]["stdout"],
        format!(
            "{} {}",
            outputs["s1"]["stdout"].as_str().unwrap(),
            outputs["s6"]["stdout"].as_str().unwrap()
        )
    );
    // Its step runs are parts of it: `lev rm` takes them with it.
    let out = lev.run(&["rm", &run]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("deleted 8 run(s)"), "{}", text(&out));
    assert!(statuses(&lev).is_empty());
}

#[test]
fn a_spread_run_finishes_with_the_workers_of_its_steps_killed_again_and_again() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let wf = lev.write_workflow(SLOW_FAN).display().to_string();
    let mut workers: Vec<Worker> = (0..3).map(|_| worker(&lev)).collect();
    let calm = submit(&lev, &["run", &wf, "--detach", "--spread", "-i", "n=1"]);
    wait_status(&lev, &calm, "succeeded", 90);
    let calm_outputs = lev.show(&calm)["outputs"].clone();
    assert_eq!(calm_outputs["d"], "d-a1-b1-c1");

    let run = submit(&lev, &["run", &wf, "--detach", "--spread", "-i", "n=1"]);
    let mut read_before_kills: Vec<Vec<Value>> = Vec::new();
    let mut killed_scheduler = false;
    let mut killed_steps = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while killed_steps < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(700));
        let all = statuses(&lev);
        if all[&run]["status"] == "succeeded" {
            break;
        }
        // First the worker that schedules the run, then those of steps.
        let target = if !killed_scheduler {
            all[&run]["executor"].clone()
        } else {
            all.values()
                .find(|r| r["parent"] == run.as_str() && r["status"] == "running")
                .map(|r| r["executor"].clone())
                .unwrap_or(Value::Null)
        };
        let Some(pid) = pid_of(&target) else {
            continue;
        };
        let Some(victim) = workers
            .iter()
            .position(|w| w.0.as_ref().unwrap().id() == pid)
        else {
            continue;
        };
        read_before_kills.push(lev.events(&run));
        kill9(workers[victim].child());
        workers[victim] = worker(&lev);
        if killed_scheduler {
            killed_steps += 1;
        }
        killed_scheduler = true;
    }
    assert!(killed_steps > 0, "no step's worker was killed");
    wait_status(&lev, &run, "succeeded", 120);
    let events = lev.events(&run);
    for read in &read_before_kills {
        assert_eq!(&events[..read.len()], &read[..], "a fact read was lost");
    }
    assert!(
        of_type(&events, "run_resumed").len() >= 2,
        "the scheduling was taken over"
    );
    let done = successes(&events);
    assert_eq!(done.len(), 4, "{done:?}");
    assert!(done.values().all(|n| *n == 1), "{done:?}");
    // No step run ran its step to success twice either, and one of them
    // at least was taken over from a killed worker.
    let mut taken_over = 0;
    for (step, id) in step_runs(&lev, &run) {
        let its = lev.events(&id);
        assert!(
            successes(&its).get(&step).copied().unwrap_or(0) <= 1,
            "{id}"
        );
        taken_over += of_type(&its, "run_resumed").len().saturating_sub(1);
    }
    assert!(taken_over > 0, "no step run was taken over");
    assert_eq!(lev.show(&run)["outputs"], calm_outputs);
}

#[test]
fn a_non_idempotent_step_in_flight_at_a_kill_pauses_its_step_run_for_a_decision() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let count = lev.workspace().join("count");
    let wf = lev
        .write_workflow(&format!(
            r#"
version: 1
kind: workflow
id: once
name: Once
steps:
  charge:
    type: shell
    run: "sleep 3; echo charged >> {count}"
  after:
    needs: [charge]
    type: shell
    run: "echo after"
"#,
            count = count.display()
        ))
        .display()
        .to_string();
    let mut workers: Vec<Worker> = (0..2).map(|_| worker(&lev)).collect();
    let run = submit(&lev, &["run", &wf, "--detach", "--spread"]);
    // Its step run running (its command started): kill its worker.
    let step_run = step_run_running(&lev, &run, "charge");
    let pid = pid_of(&statuses(&lev)[&step_run]["executor"]).unwrap();
    let victim = workers
        .iter()
        .position(|w| w.0.as_ref().unwrap().id() == pid)
        .expect("a worker executes the step run");
    kill9(workers[victim].child());
    workers[victim] = worker(&lev);
    // Taken over, the step run pauses: its command may have acted.
    wait_status(&lev, &step_run, "paused", 60);
    assert!(!count.exists(), "the killed command did not finish");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(statuses(&lev)[&run]["status"], "running", "the run waits");
    // The decision, from anywhere: the step runs again, the run goes on.
    let out = lev.run(&["resume", &step_run, "--in-flight", "rerun", "--headless"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_status(&lev, &run, "succeeded", 60);
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "charged\n");
    assert_eq!(successes(&lev.events(&run)).len(), 2);
}

#[test]
fn workers_take_the_step_runs_of_their_modes_only() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let server = LlmServer::with(|_| say("hello from the model", 0));
    let lev = Lev::new()
        .with_openai(&server.base_url())
        .with_env("LEV_JOURNAL", &db.url);
    let mixed = lev
        .write_workflow_as(
            "mixed.yaml",
            r#"
version: 1
kind: workflow
id: mixed
name: Mixed
steps:
  build: { type: shell, run: "echo built", idempotent: true }
  talk: { type: agent, mode: ask, prompt: "say hello" }
"#,
        )
        .display()
        .to_string();
    let whole = lev
        .write_workflow_as(
            "whole.yaml",
            r#"
version: 1
kind: workflow
id: whole
name: Whole
steps:
  only: { type: shell, run: "echo whole", idempotent: true }
"#,
        )
        .display()
        .to_string();
    // A typo is refused, saying what there is.
    let out = lev.run(&["worker", "--modes", "shell,asc"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no mode `asc`"), "{}", text(&out));

    let _shell = worker_with(&lev, &["--modes", "shell"]);
    let run = submit(&lev, &["run", &mixed, "--detach", "--spread"]);
    let plain = submit(&lev, &["run", &whole, "--detach"]);
    wait_for("the shell step", Duration::from_secs(30), || {
        successes(&lev.events(&run)).contains_key("build")
    });
    std::thread::sleep(Duration::from_secs(2));
    let runs = step_runs(&lev, &run);
    let all = statuses(&lev);
    assert_eq!(all[&runs["talk"]]["status"], "waiting", "not a shell step");
    assert_eq!(all[&plain]["status"], "waiting", "not a step run");
    assert!(server.requests().is_empty());

    let _ask = worker_with(&lev, &["--modes", "ask"]);
    wait_status(&lev, &run, "succeeded", 60);
    let outputs = step_outputs(&lev.events(&run));
    assert_eq!(outputs["talk"]["text"], "hello from the model");
    assert_eq!(outputs["build"]["stdout"], "built");
    assert_eq!(statuses(&lev)[&plain]["status"], "waiting");

    let _any = worker(&lev);
    wait_status(&lev, &plain, "succeeded", 60);
}

#[test]
fn cancelling_a_spread_run_cancels_its_step_runs() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let wf = lev
        .write_workflow(
            r#"
version: 1
kind: workflow
id: long
name: Long
steps:
  wait: { type: shell, run: "sleep 60", idempotent: true }
"#,
        )
        .display()
        .to_string();
    let _workers: Vec<Worker> = (0..2).map(|_| worker(&lev)).collect();
    let run = submit(&lev, &["run", &wf, "--detach", "--spread"]);
    let step_run = step_run_running(&lev, &run, "wait");
    let started = Instant::now();
    let out = lev.run(&["cancel", &run]);
    assert!(out.status.success(), "{}", text(&out));
    wait_status(&lev, &run, "cancelled", 40);
    wait_status(&lev, &step_run, "cancelled", 40);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "not waited out"
    );
    let events = lev.events(&run);
    assert_eq!(of_type(&events, "step_cancelled").len(), 1, "{events:?}");
}

#[test]
fn spread_needs_a_journal_workers_share() {
    let lev = Lev::new();
    if lev.on_postgres() {
        return;
    }
    let wf = lev.write_workflow(FAN).display().to_string();
    let out = lev.run(&["run", &wf, "--spread", "--headless"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("PostgreSQL"), "{}", text(&out));
    let runs = lev.run(&["runs", "--json"]);
    assert!(runs.stdout.is_empty(), "nothing was made");
}

/// Which worker (its pid) executed each run, from the workers' own lines
/// (`run ID: executing here`); the workers are stopped.
fn executed_by(workers: Vec<Worker>) -> BTreeMap<String, u32> {
    let mut by_run = BTreeMap::new();
    for w in workers {
        let mut child = w.into_child();
        let pid = child.id();
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(run) = line
                .strip_prefix("run ")
                .and_then(|l| l.strip_suffix(" (claim 2)").or(Some(l)))
                .and_then(|l| l.split_once(": executing here"))
                .map(|(run, _)| run.to_owned())
            {
                by_run.insert(run, pid);
            }
        }
    }
    by_run
}

#[test]
fn a_spread_swarm_s_tasks_are_shared_by_the_workers_and_steered_there() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let plan = support::swarm_plan::plan_of(vec![
        support::swarm_plan::task("design", "architect", &[]),
        support::swarm_plan::task("api", "coder", &["design"]),
        support::swarm_plan::task("ui", "coder", &["design"]),
        support::swarm_plan::task("cli", "coder", &["design"]),
        support::swarm_plan::task("docs", "docs-writer", &["design"]),
        support::swarm_plan::task("review", "reviewer", &["api", "ui", "cli", "docs"]),
    ]);
    let server = LlmServer::with(move |req| {
        match support::swarm_plan::who(req).as_str() {
            "plan" => say(&plan, 0),
            // The reply to a message the user sent the API's agent.
            _ if req.body.contains("use the v2 endpoint") => say("api uses v2", 0),
            id => say(&format!("{id} done"), 1500),
        }
    });
    let lev = Lev::new()
        .with_openai(&server.base_url())
        .with_env("LEV_JOURNAL", &db.url);
    let workers: Vec<Worker> = (0..3).map(|_| worker(&lev)).collect();
    let run = submit(
        &lev,
        &[
            "workflow", "share me", "--agents", "4", "--detach", "--spread",
        ],
    );
    // While the API's agent waits for its reply, a message for it goes to
    // the spread run, which sends it on to the step run executing it.
    wait_for("the api task's request", Duration::from_secs(60), || {
        server
            .requests()
            .iter()
            .any(|r| support::swarm_plan::who(r) == "api")
    });
    let out = lev.run(&["message", &run, "api", "use the v2 endpoint"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_status(&lev, &run, "succeeded", 120);

    let runs = step_runs(&lev, &run);
    for task in ["design", "api", "ui", "cli", "docs", "review"] {
        assert!(runs.keys().any(|k| k.ends_with(task)), "{task}: {runs:?}");
    }
    let events = lev.events(&run);
    assert!(successes(&events).values().all(|n| *n == 1));
    let api = runs.iter().find(|(k, _)| k.ends_with("api")).unwrap().1;
    let api_events = lev.events(api);
    let messaged = of_type(&api_events, "agent_messaged");
    assert_eq!(messaged.len(), 1, "{api_events:?}");
    assert_eq!(messaged[0]["text"], "use the v2 endpoint");
    let api_output = step_outputs(&events)
        .into_iter()
        .find(|(k, _)| k.ends_with("api"))
        .unwrap()
        .1;
    assert_eq!(api_output["text"], "api uses v2", "{api_output}");
    // The four tasks that could run side by side ran on several workers.
    let by = executed_by(workers);
    let on: BTreeSet<u32> = runs
        .iter()
        .filter(|(k, _)| ["api", "ui", "cli", "docs"].iter().any(|t| k.ends_with(t)))
        .map(|(_, id)| by[id])
        .collect();
    assert!(on.len() >= 2, "one worker did them all: {by:?}");
}

#[test]
fn a_spread_run_stopped_in_an_emergency_resumes_with_its_step_runs() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let wf = lev
        .write_workflow(
            r#"
version: 1
kind: workflow
id: stoppable
name: Stoppable
steps:
  work: { type: shell, run: "sleep 3; echo worked", idempotent: true }
  after: { needs: [work], type: shell, run: "echo after", idempotent: true }
"#,
        )
        .display()
        .to_string();
    let _workers: Vec<Worker> = (0..2).map(|_| worker(&lev)).collect();
    let run = submit(&lev, &["run", &wf, "--detach", "--spread"]);
    let step_run = step_run_running(&lev, &run, "work");
    let out = lev.run(&["stop", &run]);
    assert!(out.status.success(), "{}", text(&out));
    wait_status(&lev, &run, "paused", 40);
    wait_status(&lev, &step_run, "paused", 40);
    // No worker takes a paused run: resumed here, it takes its step run
    // up again (here), and both finish, the next step on a worker.
    let out = lev.run(&["resume", &run, "--headless"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(statuses(&lev)[&run]["status"], "succeeded");
    assert_eq!(statuses(&lev)[&step_run]["status"], "succeeded");
    let events = lev.events(&run);
    assert_eq!(step_outputs(&events)["work"]["stdout"], "worked");
    assert!(successes(&events).values().all(|n| *n == 1));
}

#[test]
fn a_spread_run_this_process_schedules_has_its_steps_done_by_a_worker() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let wf = lev.write_workflow(SLOW_FAN);
    let _worker = worker(&lev);
    let out = lev.run_headless(&wf, &["--spread", "-i", "n=7"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("note: this process schedules run"), "{said}");
    for step in ["a", "b", "c", "d"] {
        assert!(
            said.contains(&format!("step {step}: executed as step run ")),
            "{said}"
        );
    }
    assert!(said.contains("run succeeded"), "{said}");
    let run = support::lev::run_id_from(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(lev.show(&run)["outputs"]["d"], "d-a7-b7-c7");
    assert_eq!(step_runs(&lev, &run).len(), 4);
}

#[test]
fn a_spread_swarm_survives_the_workers_of_its_tasks_killed_again_and_again() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let plan = support::swarm_plan::plan_of(vec![
        support::swarm_plan::task("design", "architect", &[]),
        support::swarm_plan::task("api", "coder", &["design"]),
        support::swarm_plan::task("ui", "coder", &["design"]),
        support::swarm_plan::task("tests", "tdd", &["api", "ui"]),
        support::swarm_plan::task("docs", "docs-writer", &["api"]),
        support::swarm_plan::task("review", "reviewer", &["tests", "docs"]),
    ]);
    let server = LlmServer::with(move |req| match support::swarm_plan::who(req).as_str() {
        "plan" => say(&plan, 0),
        id => say(&format!("{id} done"), 900),
    });
    let lev = Lev::new()
        .with_openai(&server.base_url())
        .with_env("LEV_JOURNAL", &db.url);
    let mut workers: Vec<Worker> = (0..3).map(|_| worker(&lev)).collect();
    let calm = submit(&lev, &["workflow", "share me", "--detach", "--spread"]);
    wait_status(&lev, &calm, "succeeded", 120);
    let calm_outputs = lev.show(&calm)["outputs"].clone();

    let run = submit(&lev, &["workflow", "share me", "--detach", "--spread"]);
    let mut read_before_kills: Vec<Vec<Value>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while read_before_kills.len() < 3 && Instant::now() < deadline {
        // Mid-task: a task's request is out and its reply not yet in.
        let asked = server.requests().len();
        wait_for("a task's request", Duration::from_secs(60), || {
            server.requests().len() > asked || statuses(&lev)[&run]["status"] == "succeeded"
        });
        std::thread::sleep(Duration::from_millis(300));
        let all = statuses(&lev);
        if all[&run]["status"] == "succeeded" {
            break;
        }
        let executing = all
            .values()
            .filter(|r| r["parent"] == run.as_str() && r["status"] == "running")
            .find_map(|r| pid_of(&r["executor"]));
        let Some(victim) = executing.and_then(|pid| {
            workers
                .iter()
                .position(|w| w.0.as_ref().unwrap().id() == pid)
        }) else {
            continue;
        };
        read_before_kills.push(lev.events(&run));
        kill9(workers[victim].child());
        workers[victim] = worker(&lev);
    }
    assert!(!read_before_kills.is_empty(), "never killed mid-task");
    wait_status(&lev, &run, "succeeded", 180);
    let events = lev.events(&run);
    for read in &read_before_kills {
        assert_eq!(&events[..read.len()], &read[..], "a fact read was lost");
    }
    let done = successes(&events);
    assert!(done.values().all(|n| *n == 1), "{done:?}");
    let mut taken_over = 0;
    for (step, id) in step_runs(&lev, &run) {
        let its = lev.events(&id);
        assert!(
            successes(&its).get(&step).copied().unwrap_or(0) <= 1,
            "{id}"
        );
        taken_over += of_type(&its, "run_resumed").len().saturating_sub(1);
    }
    assert!(taken_over > 0, "no task's step run was taken over");
    assert_eq!(lev.show(&run)["outputs"], calm_outputs);
}

#[test]
fn the_worktrees_of_a_spread_run_s_steps_are_listed_and_merged_from_it() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let ws = lev.workspace();
    support::git::init_repo(&ws);
    let wf = lev
        .write_workflow(
            r#"
version: 1
kind: workflow
id: isolated
name: Isolated
steps:
  write:
    type: shell
    run: "echo made > made.txt"
    workspace: { worktree: true }
"#,
        )
        .display()
        .to_string();
    let _worker = worker(&lev);
    let run = submit(&lev, &["run", &wf, "--detach", "--spread"]);
    wait_status(&lev, &run, "succeeded", 60);
    let out = lev.run(&["worktrees", &run]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("write  "), "{}", text(&out));
    assert!(
        text(&out).contains("(open; +1 -0 in 1 file)"),
        "{}",
        text(&out)
    );
    let out = lev.run(&["worktrees", &run, "--merge", "write"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(ws.join("made.txt")).unwrap(),
        "made\n"
    );
    let out = lev.run(&["worktrees", &run]);
    assert!(text(&out).contains("merged into main"), "{}", text(&out));
    // The merge is a fact of the step run that made the worktree.
    let step_run = &step_runs(&lev, &run)["write"];
    assert_eq!(of_type(&lev.events(step_run), "worktree").len(), 3);
}

/// The user's clone (the workspace) with `origin`, the bare repository
/// every machine shares, and the clones of two worker machines at other
/// paths: nothing is shared but the remote.
fn shared_remote(lev: &Lev) -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
    let ws = lev.workspace();
    init_repo(&ws);
    let remote = support::git::origin_for(&ws, lev.dir.path(), "shared.git");
    let url = remote.display().to_string();
    let machines = ["machine-a", "machine-b"]
        .iter()
        .map(|m| {
            git(lev.dir.path(), &["clone", "--quiet", &url, m]);
            lev.dir.path().join(m).canonicalize().unwrap()
        })
        .collect();
    (remote, machines)
}

/// The repository a step run made its worktree in (its machine's clone).
fn made_in(lev: &Lev, step_run: &str) -> Value {
    of_type(&lev.events(step_run), "worktree")
        .into_iter()
        .find(|e| e["fact"]["kind"] == "ready")
        .expect("a worktree made")["fact"]["repo"]
        .clone()
}

/// A one-slot worker whose machine's clone is `clone`.
fn machine_worker(lev: &Lev, clone: &std::path::Path) -> Worker {
    let clone = clone.display().to_string();
    let args = [
        "worker",
        "--lease",
        support::workers::LEASE,
        "--slots",
        "1",
        "--yes",
        "--workspace",
        &clone,
    ];
    Worker(Some(lev.spawn(&args)))
}

/// Two shell steps side by side, each in its own worktree, each writing
/// where it ran.
const WHERE: &str = r#"
version: 1
kind: workflow
id: where
name: Where
steps:
  a:
    type: shell
    run: "sleep 1; pwd > a.txt"
    idempotent: true
    workspace: { worktree: true }
  b:
    type: shell
    run: "sleep 1; pwd > b.txt"
    idempotent: true
    workspace: { worktree: true }
"#;

#[test]
fn the_branches_of_steps_run_on_other_machines_travel_through_a_remote() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let ws = lev.workspace();
    let (remote, machines) = shared_remote(&lev);
    let _workers: Vec<Worker> = machines.iter().map(|m| machine_worker(&lev, m)).collect();
    let wf = lev.write_workflow(WHERE).display().to_string();
    let run = submit(
        &lev,
        &["run", &wf, "--detach", "--spread", "--push-to", "origin"],
    );
    wait_status(&lev, &run, "succeeded", 90);

    // The steps worked in the workers' clones; the user's never saw them.
    assert!(!ws.join(".lev/worktrees").exists());
    let out = lev.run(&["worktrees", &run]);
    assert!(out.status.success(), "{}", text(&out));
    for step in ["a", "b"] {
        assert!(
            text(&out).contains(&format!(
                "{step}  lev/{run}/{step}  (open; +1 -0 in 1 file; pushed to origin)"
            )),
            "{}",
            text(&out)
        );
    }
    let out = lev.run(&["worktrees", &run, "--diff", "a"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("+++ b/a.txt"), "{}", text(&out));

    for step in ["a", "b"] {
        let out = lev.run(&["worktrees", &run, "--merge", step]);
        assert!(out.status.success(), "{}", text(&out));
        let ran_in = std::fs::read_to_string(ws.join(format!("{step}.txt"))).unwrap();
        assert!(
            machines.iter().any(|m| ran_in.trim()
                == m.join(format!(".lev/worktrees/{run}/{step}"))
                    .display()
                    .to_string()),
            "{step} ran in {ran_in}"
        );
    }
    assert_eq!(git(&ws, &["status", "--porcelain"]), "");

    let out = lev.run(&["worktrees", &run, "--discard", "a"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("here and on origin"), "{}", text(&out));
    let left = git(&remote, &["branch", "--list", "lev/*"]);
    assert_eq!(left, format!("lev/{run}/b"));
}

#[test]
fn a_step_retried_on_another_machine_goes_on_from_its_earlier_attempt() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let ws = lev.workspace();
    let (_remote, machines) = shared_remote(&lev);
    // The first attempt leaves a file and fails; the next finds it.
    let wf = lev
        .write_workflow(
            r#"
version: 1
kind: workflow
id: twice
name: Twice
steps:
  a:
    type: shell
    run: "if [ -f first.txt ]; then echo second > second.txt; else echo first > first.txt; exit 1; fi"
    workspace: { worktree: true }
"#,
        )
        .display()
        .to_string();
    let first = machine_worker(&lev, &machines[0]);
    let run = submit(
        &lev,
        &["run", &wf, "--detach", "--spread", "--push-to", "origin"],
    );
    wait_status(&lev, &run, "failed", 60);
    drop(first);
    let _second = machine_worker(&lev, &machines[1]);
    let out = lev.run(&["retry", &run, "a", "--headless"]);
    assert!(out.status.success(), "{}", text(&out));
    // The retry ran on the second machine, which never had the branch.
    let retried = &step_runs(&lev, &run)["a"];
    assert_eq!(made_in(&lev, retried), machines[1].display().to_string());
    let out = lev.run(&["worktrees", &run, "--merge", "a"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(ws.join("first.txt")).unwrap(),
        "first\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("second.txt")).unwrap(),
        "second\n"
    );
}

#[test]
fn a_step_on_another_machine_starts_from_the_files_of_the_steps_it_needs() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let server = LlmServer::with(|_| say("reviewed", 0));
    let lev = Lev::new()
        .with_openai(&server.base_url())
        .with_env("LEV_JOURNAL", &db.url);
    let ws = lev.workspace();
    let (_remote, machines) = shared_remote(&lev);
    let wf = lev
        .write_workflow(
            r#"
version: 1
kind: workflow
id: stack
name: Stack
steps:
  code:
    type: shell
    run: "echo 'fn main() {}' > main.rs"
    workspace: { worktree: true }
  review:
    needs: [code]
    mode: ask
    prompt: "review main.rs"
    workspace: { worktree: true }
"#,
        )
        .display()
        .to_string();
    // `code` can only run on the first machine, `review` on the second.
    let args = |clone: &std::path::Path, modes: &str| {
        let clone = clone.display().to_string();
        let args = [
            "worker",
            "--lease",
            support::workers::LEASE,
            "--yes",
            "--workspace",
            &clone,
            "--modes",
            modes,
        ];
        Worker(Some(lev.spawn(&args)))
    };
    let _first = args(&machines[0], "shell");
    let _second = args(&machines[1], "ask");
    let run = submit(
        &lev,
        &["run", &wf, "--detach", "--spread", "--push-to", "origin"],
    );
    wait_status(&lev, &run, "succeeded", 90);

    let review = &step_runs(&lev, &run)["review"];
    assert_eq!(made_in(&lev, review), machines[1].display().to_string());
    // Its branch began with `code`'s work, made on the first machine.
    let out = lev.run(&["worktrees", &run, "--merge", "review"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(ws.join("main.rs")).unwrap(),
        "fn main() {}\n"
    );
}

#[test]
fn a_spread_run_s_budget_holds_across_its_step_runs_in_flight() {
    use support::llm_server::{Action, OpenAiSse};
    let Some(db) = PgDb::new() else {
        return;
    };
    // Every turn costs 100 tokens and asks for another look around.
    let server = LlmServer::with(|_| {
        OpenAiSse::new("test-model")
            .tool_call(0, "call_1", "list_dir", r#"{"path": "."}"#, 1)
            .finish("tool_calls")
            .usage(100, 0)
            .reply()
            .insert(0, Action::Delay(400))
    });
    let lev = Lev::new()
        .with_openai(&server.base_url())
        .with_env("LEV_JOURNAL", &db.url);
    let wf = lev
        .write_workflow(
            r#"
version: 1
kind: workflow
id: spend
name: Spend
limits: { max_tokens: 1950 }
steps:
  left: { mode: ask, prompt: "look left", max_turns: 60 }
  right: { mode: ask, prompt: "look right", max_turns: 60 }
"#,
        )
        .display()
        .to_string();
    let _workers: Vec<Worker> = (0..2).map(|_| worker(&lev)).collect();
    let run = submit(&lev, &["run", &wf, "--detach", "--spread"]);
    wait_status(&lev, &run, "failed", 90);

    let events = lev.events(&run);
    let tripped = of_type(&events, "guard_tripped");
    assert!(!tripped.is_empty(), "{events:?}");
    assert_eq!(tripped[0]["guard"], "max_tokens");
    // Each step run alone would have spent up to the budget (40 turns in
    // all); the run counted both while they worked and stopped them, a
    // few turns over while the cancel travelled.
    let turns = server.request_count();
    assert!(
        (20..=28).contains(&turns),
        "{turns} turns of 100 tokens for a budget of 1950"
    );
    assert!(
        lev.show(&run)["error"]
            .as_str()
            .unwrap_or_default()
            .contains("max_tokens"),
        "{}",
        lev.show(&run)
    );
}

#[test]
fn a_worker_told_to_stop_hands_its_scheduling_over_at_once() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let ws = lev.workspace().display().to_string();
    let wf = lev
        .write_workflow(
            r#"
version: 1
kind: workflow
id: handover
name: Handover
steps:
  build: { type: shell, run: "sleep 2; echo built", idempotent: true }
  ship:
    needs: [build]
    type: shell
    run: "echo shipped"
    idempotent: true
"#,
        )
        .display()
        .to_string();
    // A scheduler only, whose lease would take a minute to lapse.
    let scheduler = Worker(Some(lev.spawn(&[
        "worker",
        "--lease",
        "60s",
        "--modes",
        "ask",
        "--workspace",
        &ws,
    ])));
    let pid = scheduler.0.as_ref().unwrap().id();
    let run = submit(&lev, &["run", &wf, "--detach", "--spread"]);
    wait_for(
        "the scheduler to take the run",
        Duration::from_secs(30),
        || pid_of(&statuses(&lev)[&run]["executor"]) == Some(pid),
    );
    let _shell = worker_with(&lev, &["--modes", "shell"]);
    step_run_running(&lev, &run, "build");

    let scheduler = scheduler.into_child();
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let out = scheduler.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("run {run}: its scheduling left to other workers")),
        "{}",
        text(&out)
    );
    let asked = Instant::now();
    wait_status(&lev, &run, "succeeded", 30);
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "the scheduling waited for the lease to lapse"
    );
    let events = lev.events(&run);
    assert_eq!(successes(&events)["ship"], 1);
}
