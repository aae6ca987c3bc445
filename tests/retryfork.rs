//! Retrying a failed step and forking a run from a step, end to end with
//! the real `lev` binary. Each shell step appends a line to its own ledger
//! file, so the test sees how many times each one really ran. Steps that
//! must wait wait for a file the test creates, never for time.

mod support;

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::lev::{Lev, run_id_from};

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// How many times `step` ran (lines in its ledger).
fn ran(lev: &Lev, step: &str) -> usize {
    std::fs::read_to_string(lev.workspace().join(format!("{step}.ledger")))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn write_wf(lev: &Lev, yaml: &str) -> String {
    let path = lev.dir.path().join("wf.yaml");
    std::fs::write(&path, yaml).unwrap();
    path.display().to_string()
}

fn drive_args(lev: &Lev) -> Vec<String> {
    vec![
        "--headless".into(),
        "--workspace".into(),
        lev.workspace().display().to_string(),
    ]
}

fn lev_run(lev: &Lev, args: &[&str]) -> Output {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(drive_args(lev));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    lev.run(&refs)
}

fn lev_spawn(lev: &Lev, args: &[&str]) -> Child {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(drive_args(lev));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    lev.spawn(&refs)
}

fn step<'a>(show: &'a Value, key: &str) -> &'a Value {
    show["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == key)
        .unwrap_or_else(|| panic!("no step {key} in {show}"))
}

/// Polls the run's events (through the executing process's socket while
/// one runs) until `pred` holds.
fn wait_events(lev: &Lev, run: &str, what: &str, pred: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if pred(&lev.events(run)) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The id of the newest run (the one a spawned `lev run` just created).
fn wait_first_run(lev: &Lev) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = lev.run(&["runs", "--json"]);
        let id = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
            .and_then(|v| v["id"].as_str().map(str::to_string));
        if let Some(id) = id {
            return id;
        }
        assert!(Instant::now() < deadline, "no run appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn has_step_event(events: &[Value], ty: &str, step: &str) -> bool {
    events.iter().any(|e| e["type"] == ty && e["step"] == step)
}

/// `flaky` fails until the file `fixed` exists; `after` needs it; `side`
/// does not.
const FLAKY: &str = r#"
version: 1
kind: workflow
id: flaky
name: Flaky
steps:
  first:
    type: shell
    run: echo x >> first.ledger; echo one
  flaky:
    type: shell
    needs: [first]
    run: |
      echo x >> flaky.ledger
      test -f fixed || { echo "not fixed yet" >&2; exit 4; }
      echo fixed
  after:
    type: shell
    needs: [flaky]
    run: echo x >> after.ledger; echo "after ${{ steps.flaky.outputs.stdout }}"
  side:
    type: shell
    needs: [first]
    run: echo x >> side.ledger
outputs:
  result: ${{ steps.after.outputs.stdout }}
"#;

#[test]
fn retry_of_an_ended_run_reruns_the_failed_step_and_its_dependents_only() {
    let lev = Lev::new();
    let wf = write_wf(&lev, FLAKY);
    let out = lev_run(&lev, &["run", &wf]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let run = run_id_from(&text(&out).0).unwrap();
    assert_eq!(lev.show(&run)["status"], "failed");
    let counts = |lev: &Lev| ["first", "flaky", "after", "side"].map(|s| ran(lev, s));
    assert_eq!(counts(&lev), [1, 1, 0, 1]);

    // Only a failed step is retried; the refusal says why and changes nothing.
    let before = lev.events(&run);
    let refused = lev_run(&lev, &["retry", &run, "first"]);
    assert_eq!(refused.status.code(), Some(2), "{:?}", text(&refused));
    assert!(
        text(&refused).1.contains("succeeded"),
        "{:?}",
        text(&refused)
    );
    let refused = lev_run(&lev, &["retry", &run, "after"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused).1.contains("skipped, not failed"));
    let refused = lev_run(&lev, &["retry", &run, "nope"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused).1.contains("no step `nope`"));
    assert_eq!(lev.events(&run), before);

    std::fs::write(lev.workspace().join("fixed"), "").unwrap();
    let out = lev_run(&lev, &["retry", &run, "flaky"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("step flaky: retry requested; then again: after\n"),
        "{stdout}"
    );
    // The failed step and its skipped dependent ran again; nothing else did.
    assert_eq!(counts(&lev), [1, 2, 1, 1]);
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded");
    assert_eq!(show["outputs"]["result"], "after fixed");
    assert_eq!(step(&show, "flaky")["attempts"], 2);
    assert_eq!(step(&show, "flaky")["status"], "succeeded");
    let events = lev.events(&run);
    let retry: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "step_retry_requested")
        .collect();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0]["step"], "flaky");
    assert_eq!(retry[0]["also"], serde_json::json!(["after"]));
    // What was recorded before the retry is untouched.
    assert_eq!(events[..before.len()], before[..]);

    // Now it succeeded: a second retry is refused.
    let again = lev_run(&lev, &["retry", &run, "flaky"]);
    assert_eq!(again.status.code(), Some(2));
    // The transcript tells the whole story, the retry included.
    let replay = lev.replay(&run);
    assert!(replay.contains("step flaky: retry requested"), "{replay}");
    assert!(replay.contains("run succeeded"), "{replay}");
}

#[test]
fn a_kill_during_a_retry_is_finished_by_resume() {
    let lev = Lev::new();
    let yaml = FLAKY.replace(
        "      echo fixed\n",
        "      while [ ! -f go ]; do sleep 0.05; done\n      echo fixed\n",
    );
    let yaml = yaml.replace(
        "    needs: [first]\n    run: |",
        "    needs: [first]\n    idempotent: true\n    run: |",
    );
    let wf = write_wf(&lev, &yaml);
    let out = lev_run(&lev, &["run", &wf]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let run = run_id_from(&text(&out).0).unwrap();

    std::fs::write(lev.workspace().join("fixed"), "").unwrap();
    let mut child = lev_spawn(&lev, &["retry", &run, "flaky"]);
    wait_events(&lev, &run, "the retried attempt to start", |ev| {
        ev.iter()
            .any(|e| e["type"] == "step_started" && e["step"] == "flaky" && e["attempt"] == 2)
    });
    // Its command runs once its start is on disk (it waits at its gate for
    // the commit of its process group): kill lev while it runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ran(&lev, "flaky") < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the retried command never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(lev.show(&run)["status"], lev.interrupted());

    std::fs::write(lev.workspace().join("go"), "").unwrap();
    let out = lev_run(&lev, &["resume", &run]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded");
    assert_eq!(show["outputs"]["result"], "after fixed");
    // The idempotent attempt interrupted by the kill ran again (attempt 2
    // resumed, not a third attempt); `after` ran once, `first` never again.
    assert_eq!(step(&show, "flaky")["attempts"], 2);
    assert_eq!(
        ["first", "flaky", "after", "side"].map(|s| ran(&lev, s)),
        [1, 3, 1, 1]
    );
}

#[test]
fn a_live_run_retries_a_failed_step_while_others_still_run() {
    let lev = Lev::new();
    let yaml = r#"
version: 1
kind: workflow
id: live
name: Live
steps:
  flaky:
    type: shell
    run: |
      echo x >> flaky.ledger
      test -f fixed || exit 4
      echo fixed
  after:
    type: shell
    needs: [flaky]
    run: echo x >> after.ledger
  gate:
    type: shell
    run: echo x >> gate.ledger; while [ ! -f go ]; do sleep 0.05; done
"#;
    let wf = write_wf(&lev, yaml);
    let child = lev_spawn(&lev, &["run", &wf]);
    let run = wait_first_run(&lev);
    wait_events(&lev, &run, "flaky to fail and after to be skipped", |ev| {
        has_step_event(ev, "step_failed", "flaky")
            && has_step_event(ev, "step_skipped", "after")
            && has_step_event(ev, "step_started", "gate")
    });
    // A running step is not retried.
    let refused = lev.run(&["retry", &run, "gate"]);
    assert_eq!(refused.status.code(), Some(1), "{:?}", text(&refused));
    assert!(
        text(&refused).1.contains("still running"),
        "{:?}",
        text(&refused)
    );

    std::fs::write(lev.workspace().join("fixed"), "").unwrap();
    let sent = lev.run(&["retry", &run, "flaky"]);
    assert!(sent.status.success(), "{:?}", text(&sent));
    wait_events(&lev, &run, "after to run", |ev| {
        has_step_event(ev, "step_succeeded", "after")
    });
    std::fs::write(lev.workspace().join("go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded");
    assert_eq!(step(&show, "flaky")["attempts"], 2);
    assert_eq!(["flaky", "after", "gate"].map(|s| ran(&lev, s)), [2, 1, 1]);
}

#[test]
fn a_fork_from_a_middle_step_adopts_what_came_before_and_leaves_the_parent_alone() {
    let lev = Lev::new();
    let yaml = r#"
version: 1
kind: workflow
id: chain
name: Chain
steps:
  a:
    type: shell
    run: echo x >> a.ledger; echo A
  b:
    type: shell
    needs: [a]
    run: echo x >> b.ledger; echo "${{ steps.a.outputs.stdout }}B"
  c:
    type: shell
    needs: [b]
    run: echo x >> c.ledger; echo "${{ steps.b.outputs.stdout }}C"
outputs:
  result: ${{ steps.c.outputs.stdout }}
"#;
    let wf = write_wf(&lev, yaml);
    let out = lev_run(&lev, &["run", &wf]);
    assert!(out.status.success(), "{:?}", text(&out));
    let parent = run_id_from(&text(&out).0).unwrap();
    let parent_events = lev.events(&parent);

    let refused = lev_run(&lev, &["fork", &parent, "--from", "nope"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused).1.contains("no step `nope`"),
        "{:?}",
        text(&refused)
    );

    let out = lev_run(&lev, &["fork", &parent, "--from", "b"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let fork = run_id_from(&stdout).unwrap();
    assert_ne!(fork, parent);
    assert!(
        stdout.starts_with(&format!("run {fork} forked from run {parent} at step b\n")),
        "{stdout}"
    );
    // `a` was adopted from the copied journal; `b` and `c` ran again.
    assert_eq!(["a", "b", "c"].map(|s| ran(&lev, s)), [1, 2, 2]);
    let show = lev.show(&fork);
    assert_eq!(show["status"], "succeeded");
    assert_eq!(show["outputs"]["result"], "ABC");
    assert_eq!(show["forked_from"]["run"], parent.as_str());
    assert_eq!(show["forked_from"]["step"], "b");
    // The parent is untouched.
    assert_eq!(lev.events(&parent), parent_events);
    let runs = lev.run(&["runs", "--json"]);
    let forks: Vec<Value> = String::from_utf8_lossy(&runs.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["id"] == fork.as_str())
        .collect();
    assert_eq!(forks[0]["parent"], parent.as_str());
    let text_runs = String::from_utf8_lossy(&lev.run(&["runs"]).stdout).into_owned();
    assert!(
        text_runs.contains(&format!("fork of {parent}")),
        "{text_runs}"
    );
    // The fork's journal begins with the parent's copied prefix.
    let fork_events = lev.events(&fork);
    assert_eq!(fork_events[0]["type"], "run_started");
    assert_eq!(fork_events[0]["at"], parent_events[0]["at"]);
    assert!(fork_events.iter().any(|e| e["type"] == "run_forked"));
    assert!(!fork_events[..4].iter().any(|e| e["step"] == "b"));
}

#[test]
fn retry_of_a_child_step_runs_its_workflow_step_again_and_adopts_its_siblings() {
    let lev = Lev::new();
    std::fs::write(
        lev.dir.path().join("child.yaml"),
        r#"
version: 1
kind: workflow
id: child
name: Child
steps:
  ok:
    type: shell
    run: echo x >> ok.ledger; echo fine
  flaky:
    type: shell
    run: echo x >> flaky.ledger; test -f fixed && echo mended
outputs:
  said: ${{ steps.flaky.outputs.stdout }}
"#,
    )
    .unwrap();
    let wf = write_wf(
        &lev,
        r#"
version: 1
kind: workflow
id: parent
name: Parent
steps:
  sub:
    type: workflow
    uses: child.yaml
  report:
    type: shell
    needs: [sub]
    run: echo x >> report.ledger; echo "${{ steps.sub.outputs.said }}"
outputs:
  result: ${{ steps.report.outputs.stdout }}
"#,
    );
    let out = lev_run(&lev, &["run", &wf]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let run = run_id_from(&text(&out).0).unwrap();
    std::fs::write(lev.workspace().join("fixed"), "").unwrap();
    let out = lev_run(&lev, &["retry", &run, "sub/flaky"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("step sub/flaky: retry requested; then again: report, sub\n"),
        "{stdout}"
    );
    let show = lev.show(&run);
    assert_eq!(show["outputs"]["result"], "mended");
    assert_eq!(step(&show, "sub")["attempts"], 2);
    assert_eq!(["ok", "flaky", "report"].map(|s| ran(&lev, s)), [1, 2, 1]);
}
