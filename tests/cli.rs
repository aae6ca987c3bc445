//! The headless CLI end to end: the real `lev` binary, a real journal in a
//! temp data dir, real shell commands and (for agents) the loopback LLM
//! server. Each test is one behaviour a user relies on.

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::lev::{Lev, repo_file, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Writes `yaml` into the sandbox and runs it headless with `extra` args.
fn run_yaml(lev: &Lev, yaml: &str, extra: &[&str]) -> (Output, String) {
    let path = lev.dir.path().join("wf.yaml");
    std::fs::write(&path, yaml).unwrap();
    let ws = lev.workspace().display().to_string();
    let mut args = vec![
        "run",
        path.to_str().unwrap(),
        "--headless",
        "--workspace",
        &ws,
    ];
    args.extend_from_slice(extra);
    let out = lev.run(&args);
    let run = run_id_from(&String::from_utf8_lossy(&out.stdout)).unwrap_or_default();
    (out, run)
}

fn step<'a>(show: &'a Value, key: &str) -> &'a Value {
    show["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == key)
        .unwrap_or_else(|| panic!("no step {key} in {show}"))
}

#[test]
fn shell_steps_run_in_dependency_order_and_outputs_flow() {
    let lev = Lev::new();
    let (out, run) = run_yaml(
        &lev,
        r#"
version: 1
kind: workflow
id: flow
name: Flow
inputs:
  who: { type: string, default: world }
steps:
  hello:
    type: shell
    run: echo "hello ${{ inputs.who }}"
  shout:
    needs: [hello]
    type: shell
    run: echo "${{ steps.hello.outputs.stdout }}" | tr a-z A-Z
outputs:
  loud: ${{ steps.shout.outputs.stdout }}
"#,
        &["--input", "who=lev"],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded");
    assert_eq!(show["outputs"]["loud"], "HELLO LEV");
    assert_eq!(step(&show, "hello")["status"], "succeeded");
    assert!(stdout.contains("step shout: succeeded"), "{stdout}");
}

#[test]
fn a_failing_step_is_retried_by_policy_then_succeeds() {
    let lev = Lev::new();
    let (out, run) = run_yaml(
        &lev,
        r#"
version: 1
kind: workflow
id: retry
name: Retry
steps:
  flaky:
    type: shell
    idempotent: true
    retry: { max_attempts: 3, backoff: fixed, initial_delay: 10ms }
    run: |
      n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
      [ $n -ge 2 ] || { echo "not yet ($n)" >&2; exit 7; }
      echo "ok on try $n"
"#,
        &[],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let show = lev.show(&run);
    assert_eq!(step(&show, "flaky")["attempts"], 2);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("failed (attempt 1)") && stdout.contains("exited with code 7: not yet (1)"),
        "{stdout}"
    );
    assert!(stdout.contains("retrying in 10ms"), "{stdout}");
}

#[test]
fn a_timeout_kills_the_command_and_fails_the_run() {
    let lev = Lev::new();
    let (out, run) = run_yaml(
        &lev,
        r#"
version: 1
kind: workflow
id: slow
name: Slow
steps:
  slow:
    type: shell
    timeout: 300ms
    run: sleep 30
  after:
    needs: [slow]
    type: shell
    run: echo never
"#,
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let show = lev.show(&run);
    assert_eq!(show["status"], "failed");
    assert!(
        step(&show, "slow")["error"]
            .as_str()
            .unwrap()
            .contains("timed out after"),
        "{show}"
    );
    assert_eq!(step(&show, "after")["status"], "skipped");
}

#[test]
fn continue_on_error_and_conditions_decide_what_runs() {
    let lev = Lev::new();
    let (out, run) = run_yaml(
        &lev,
        r#"
version: 1
kind: workflow
id: cond
name: Conditions
steps:
  broken:
    type: shell
    run: exit 3
    continue_on_error: true
  next:
    needs: [broken]
    type: shell
    run: echo next ran
  only_on_failure:
    needs: [next]
    if: ${{ failure() }}
    type: shell
    run: echo should not run
"#,
        &[],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let show = lev.show(&run);
    assert_eq!(step(&show, "broken")["status"], "failed");
    assert_eq!(step(&show, "next")["status"], "succeeded");
    assert_eq!(step(&show, "only_on_failure")["status"], "skipped");
}

const GATED: &str = r#"
version: 1
kind: workflow
id: gated
name: Gated
whisper:
  questions:
    - id: color
      ask: Which color?
      options: [{ value: red, label: Red }, { value: blue, label: Blue }]
      default: blue
steps:
  pick:
    type: question
    ask: "Size for the ${{ whisper.color }} one?"
    default: large
  gate:
    needs: [pick]
    type: approval
    message: "Ship ${{ steps.pick.outputs.answer }} ${{ whisper.color }}?"
  ship:
    needs: [gate]
    type: shell
    run: echo shipped ${{ steps.pick.outputs.answer }} ${{ whisper.color }}
outputs:
  result: ${{ steps.ship.outputs.stdout }}
"#;

#[test]
fn headless_answers_defaults_and_needs_yes_for_approvals() {
    let lev = Lev::new();
    let (out, run) = run_yaml(&lev, GATED, &[]);
    assert_eq!(out.status.code(), Some(1));
    let show = lev.show(&run);
    assert!(
        step(&show, "gate")["error"]
            .as_str()
            .unwrap()
            .contains("no one can approve in this headless run (--yes approves)"),
        "{show}"
    );

    let (out, run) = run_yaml(&lev, GATED, &["--yes", "--answer", "color=red"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let show = lev.show(&run);
    assert_eq!(show["outputs"]["result"], "shipped large red");
    let (stdout, _) = text(&out);
    assert!(stdout.contains("= color: red"), "{stdout}");
    assert!(stdout.contains("= pick: large (default)"), "{stdout}");
}

#[test]
fn child_workflows_run_inline_and_return_outputs() {
    let lev = Lev::new();
    std::fs::write(
        lev.dir.path().join("child.yaml"),
        r#"
version: 1
kind: workflow
id: child
name: Child
inputs:
  n: { type: number }
steps:
  double:
    type: shell
    run: echo $(( ${{ inputs.n }} * 2 ))
outputs:
  doubled: ${{ steps.double.outputs.stdout }}
"#,
    )
    .unwrap();
    let (out, run) = run_yaml(
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
    with: { n: 21 }
outputs:
  answer: ${{ steps.sub.outputs.doubled }}
"#,
        &[],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let show = lev.show(&run);
    assert_eq!(show["outputs"]["answer"], "42");
    assert_eq!(step(&show, "sub/double")["status"], "succeeded");
}

#[test]
fn bad_input_is_a_usage_error_and_records_nothing() {
    let lev = Lev::new();
    let (out, _) = run_yaml(&lev, GATED, &["--input", "nope=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("unknown input `nope`"),
        "{:?}",
        text(&out)
    );
    let runs = lev.run(&["runs", "--json"]);
    assert!(runs.stdout.is_empty(), "{:?}", text(&runs));
}

#[test]
fn validate_reports_problems_with_locations_and_exit_codes() {
    let lev = Lev::new();
    let bad = lev.dir.path().join("bad.yaml");
    std::fs::write(&bad, "version: 1\nkind: workflow\nid: bad\nname: Bad\nsteps:\n  a:\n    type: shell\n    run: echo\n    needz: [b]\n").unwrap();
    let out = lev.run(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let (_, stderr) = text(&out);
    assert!(stderr.contains("bad.yaml:9:5"), "{stderr}");
    let good = repo_file("workflows/demo.yaml");
    let out = lev.run(&["validate", good.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
}

#[test]
fn export_import_and_replay_round_trip() {
    let lev = Lev::new();
    let (out, run) = run_yaml(&lev, GATED, &["--yes"]);
    assert!(out.status.success());
    let file = lev.dir.path().join("run.jsonl");
    let exported = lev.run(&["export", &run, "-o", file.to_str().unwrap()]);
    assert!(exported.status.success(), "{:?}", text(&exported));
    let other = Lev::new();
    let imported = other.run(&["import", file.to_str().unwrap()]);
    assert!(imported.status.success(), "{:?}", text(&imported));
    assert_eq!(other.replay(&run), lev.replay(&run));
    assert_eq!(other.replay(&run), text(&out).0);
    assert_eq!(other.show(&run)["outputs"], lev.show(&run)["outputs"]);
    // Importing the same run twice is refused, and nothing is lost.
    let again = other.run(&["import", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(other.replay(&run), lev.replay(&run));
}

#[test]
fn cancel_from_another_process_stops_a_running_step() {
    let lev = Lev::new();
    let yaml = "version: 1\nkind: workflow\nid: long\nname: Long\nsteps:\n  wait:\n    type: shell\n    run: sleep 60\n";
    // The running process holds the journal; `lev runs` goes through its socket.
    let (child, run) = spawn_until_started(&lev, yaml, "wait");
    assert_eq!(lev.show(&run)["status"], "running");
    let cancel = lev.run(&["cancel", &run]);
    assert!(cancel.status.success(), "{:?}", text(&cancel));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let show = lev.show(&run);
    assert_eq!(show["status"], "cancelled");
    assert_eq!(step(&show, "wait")["status"], "cancelled");
}

fn agent_server(usage: u64) -> LlmServer {
    LlmServer::with(move |req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        let turns = msgs.iter().filter(|m| m["role"] == "assistant").count();
        let m = "test-model";
        if turns == 0 {
            // First turn: an answer that breaks the schema, to be corrected.
            OpenAiSse::new(m)
                .text(r#"{"wrong": true}"#, 2)
                .usage(usage, 10)
                .finish("stop")
                .reply()
        } else {
            OpenAiSse::new(m)
                .text(r#"{"plan": "two steps"}"#, 3)
                .usage(usage, 10)
                .finish("stop")
                .reply()
        }
    })
}

const AGENT: &str = r#"
version: 1
kind: workflow
id: agent
name: Agent
limits: { max_tokens: 1000 }
steps:
  plan:
    mode: architect
    prompt: Plan it. Return JSON {plan}.
    output_schema: { type: object, required: [plan] }
    outputs:
      plan: { from: json.plan }
outputs:
  plan: ${{ steps.plan.outputs.plan }}
"#;

#[test]
fn an_agent_answer_is_validated_against_its_schema_and_corrected() {
    let server = agent_server(100);
    let lev = Lev::new().with_openai(&server.base_url());
    let (out, run) = run_yaml(&lev, AGENT, &[]);
    assert!(out.status.success(), "{:?}", text(&out));
    let show = lev.show(&run);
    assert_eq!(show["outputs"]["plan"], "two steps");
    assert_eq!(server.request_count(), 2);
    // The correction request told the model what was wrong.
    let second = &server.requests()[1];
    assert!(second.body.contains("plan"), "{}", second.body);
}

#[test]
fn the_token_budget_stops_the_run_and_names_the_limit() {
    let server = agent_server(2000);
    let lev = Lev::new().with_openai(&server.base_url());
    let (out, run) = run_yaml(&lev, AGENT, &[]);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("! limit max_tokens (1000) reached at plan: observed 2010"),
        "{stdout}"
    );
    let show = lev.show(&run);
    assert!(
        show["error"].as_str().unwrap().contains("max_tokens"),
        "{show}"
    );
    assert_eq!(server.request_count(), 1);
}

#[test]
fn api_keys_never_reach_the_journal_or_the_log() {
    let server = agent_server(10);
    let lev = Lev::new().with_openai(&server.base_url());
    let (out, run) = run_yaml(&lev, AGENT, &[]);
    assert!(out.status.success());
    let export = lev.run(&["export", &run]);
    assert!(!String::from_utf8_lossy(&export.stdout).contains("sk-test-not-a-real-key"));
    let log = std::fs::read_to_string(lev.data_dir().join("logs/lev.log")).unwrap_or_default();
    assert!(!log.contains("sk-test-not-a-real-key"));
    let db = std::fs::read(lev.data_dir().join("lev.redb")).unwrap();
    assert!(!db.windows(22).any(|w| w == b"sk-test-not-a-real-key"));
    // The request did carry it, to the server.
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Bearer sk-test-not-a-real-key")
    );
}

#[test]
fn the_demo_runs_with_no_key_and_no_network() {
    let lev = Lev::new();
    let out = lev.run(&["demo", "--headless"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for needle in [
        "? audience",
        "= audience: world (default)",
        "step coder: started",
        "step tester: started",
        "step docs: started",
        "= approve: approved",
        "ok - greet.sh greets the world",
        "Hello, world!",
        "run succeeded",
    ] {
        assert!(stdout.contains(needle), "missing `{needle}` in:\n{stdout}");
    }
    // It says where the agents' files are, and they are there.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("the agents' files"))
        .unwrap_or_else(|| panic!("no workspace line in:\n{stdout}"));
    let dir = std::path::Path::new(line.rsplit(" are in ").next().unwrap());
    let script = std::fs::read_to_string(dir.join("greet.sh")).unwrap();
    assert!(script.contains("Hello, world!"), "{script}");
    assert!(dir.join("README.md").exists() && dir.join("test_greet.sh").exists());
}

/// A demo run goes on with the demo's replies when a provider is
/// configured: another model's answers could not match what it recorded.
#[test]
fn a_demo_run_goes_on_with_its_own_replies_whatever_provider_is_configured() {
    let lev = Lev::new();
    let out = lev.run(&["demo", "--headless"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    // Nothing listens on port 9: a request to this provider fails.
    let lev = Lev {
        env: Vec::new(),
        ..lev
    }
    .with_openai("http://127.0.0.1:9/v1");
    let out = lev.run(&["fork", &run, "--from", "reviewer", "--headless"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("step reviewer: succeeded"), "{stdout}");
}

/// The demo's question changes what the agents build.
#[test]
fn the_demos_answer_changes_what_gets_built() {
    let lev = Lev::new();
    let out = lev.run(&["demo", "--headless", "--answer", "audience=team"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for needle in [
        "= audience: team",
        "ok - greet.sh greets the team",
        "Hello, team!",
    ] {
        assert!(stdout.contains(needle), "missing `{needle}` in:\n{stdout}");
    }
    assert!(!stdout.contains("Hello, world!"), "{stdout}");
}

#[test]
fn the_demo_workflow_runs_from_its_file_with_no_provider_configured() {
    let lev = Lev::new();
    let demo = repo_file("workflows/demo.yaml");
    let ws = lev.workspace().display().to_string();
    let out = lev.run(&[
        "run",
        demo.to_str().unwrap(),
        "--headless",
        "--workspace",
        &ws,
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("replaying") && stderr.contains("demo.cassette.yaml"),
        "{stderr}"
    );
    // Without --yes, the gate's on_timeout policy (approve) decides at once.
    assert!(
        stdout.contains(
            "= approve: approved (on_timeout: approve; no one can approve in this headless run"
        ),
        "{stdout}"
    );
}

#[test]
fn a_question_without_default_fails_at_once_when_no_one_can_answer() {
    let lev = Lev::new();
    let yaml = "version: 1\nkind: workflow\nid: q\nname: Q\nsteps:\n  name:\n    type: question\n    ask: Your name?\n  hi:\n    needs: [name]\n    type: shell\n    run: echo hi ${{ steps.name.outputs.answer }}\noutputs:\n  said: ${{ steps.hi.outputs.stdout }}\n";
    let (out, run) = run_yaml(&lev, yaml, &[]);
    assert_eq!(out.status.code(), Some(1));
    let show = lev.show(&run);
    let error = step(&show, "name")["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("question `name` has no default and no one can answer in this headless run"),
        "{error}"
    );
    // With an answer given up front it runs.
    let (out, run) = run_yaml(&lev, yaml, &["--answer", "name=Ada"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(lev.show(&run)["outputs"]["said"], "hi Ada");
}

#[test]
fn export_as_markdown_is_a_readable_transcript() {
    let lev = Lev::new();
    let (out, run) = run_yaml(&lev, GATED, &["--yes"]);
    assert!(out.status.success());
    let md = lev.run(&["export", &run, "--format", "md"]);
    assert!(md.status.success(), "{:?}", text(&md));
    let md = text(&md).0;
    for needle in [
        "# Gated",
        "## Questions",
        "Which color?",
        "## pick",
        "## gate",
        "**approved** approved by --yes",
        "## ship",
        "shell exit 0",
        "shipped large blue",
        "**succeeded** in",
    ] {
        assert!(md.contains(needle), "missing `{needle}` in:\n{md}");
    }
}

#[test]
fn cancel_one_step_from_another_process_and_the_rest_goes_on() {
    let lev = Lev::new();
    let yaml = "version: 1\nkind: workflow\nid: two\nname: Two\nsteps:\n  slow:\n    type: shell\n    run: sleep 60\n  after_slow:\n    needs: [slow]\n    type: shell\n    run: echo never\n  fast:\n    type: shell\n    run: sleep 0.5; echo fast done\n";
    let (child, run) = spawn_until_started(&lev, yaml, "slow");
    let cancel = lev.run(&["cancel", &run, "--step", "slow"]);
    assert!(cancel.status.success(), "{:?}", text(&cancel));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let show = lev.show(&run);
    assert_eq!(step(&show, "slow")["status"], "cancelled");
    assert_eq!(step(&show, "after_slow")["status"], "skipped");
    assert_eq!(step(&show, "fast")["status"], "succeeded");
    assert!(
        show["error"]
            .as_str()
            .unwrap()
            .contains("step `slow` was cancelled"),
        "{show}"
    );
    // Without a process executing the run, there is nothing to cancel a step in.
    let idle = lev.run(&["cancel", &run, "--step", "slow"]);
    assert_eq!(idle.status.code(), Some(1));
}

#[test]
fn a_run_starts_while_other_commands_read_the_journal() {
    let lev = Lev::new();
    let path = lev.dir.path().join("wf.yaml");
    std::fs::write(&path, "version: 1\nkind: workflow\nid: q\nname: Q\nsteps:\n  a:\n    type: shell\n    run: echo hi\n").unwrap();
    let ws = lev.workspace().display().to_string();
    std::thread::scope(|scope| {
        // Short-lived readers hold the journal for a moment each.
        let readers = scope.spawn(|| {
            for _ in 0..20 {
                let out = lev.run(&["runs", "--json"]);
                assert!(out.status.success(), "{:?}", text(&out));
            }
        });
        for _ in 0..3 {
            let out = lev.run(&[
                "run",
                path.to_str().unwrap(),
                "--headless",
                "--workspace",
                &ws,
            ]);
            assert!(
                out.status.success(),
                "a run failed to start: {:?}",
                text(&out)
            );
        }
        readers.join().unwrap();
    });
}

/// Starts `yaml` headless in a child `lev` and waits (through other `lev`
/// commands, as a user in another terminal would) until `step` has started.
/// The caller waits for the child; on a timeout the child is killed first.
#[allow(clippy::zombie_processes)] // a panic mid-wait ends the test process too
fn spawn_until_started(lev: &Lev, yaml: &str, step: &str) -> (std::process::Child, String) {
    let path = lev.dir.path().join("wf.yaml");
    std::fs::write(&path, yaml).unwrap();
    let ws = lev.workspace().display().to_string();
    let child = lev.spawn(&[
        "run",
        path.to_str().unwrap(),
        "--headless",
        "--workspace",
        &ws,
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = lev.run(&["runs", "--json"]);
        let line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_string);
        if let Some(v) = line.and_then(|l| serde_json::from_str::<Value>(&l).ok()) {
            let run = v["id"].as_str().unwrap().to_string();
            if lev
                .events(&run)
                .iter()
                .any(|e| e["type"] == "step_started" && e["step"] == step)
            {
                return (child, run);
            }
        }
        assert!(
            Instant::now() < deadline,
            "`{step}` never started: {:?}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `lev modes | head -1`: a reader that goes away ends lev quietly, with
/// the exit a shell reports for SIGPIPE, never a panic.
#[test]
fn a_reader_that_goes_away_ends_lev_quietly() {
    let lev = support::lev::Lev::new();
    let mut child = lev
        .cmd(&["modes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Gone before lev writes a byte.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

/// Workers and detached runs need a journal other processes share: on the
/// data dir's file they are a usage error that says what to give, and
/// nothing is recorded.
#[test]
fn workers_and_detached_runs_need_a_postgresql_journal() {
    let lev = Lev::new();
    if lev.on_postgres() {
        return;
    }
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: one\nname: One\nsteps:\n  a:\n    type: shell\n    run: echo a\n",
    );
    let wf = wf.display().to_string();
    for args in [
        vec!["worker"],
        vec!["run", wf.as_str(), "--detach"],
        vec!["workflow", "anything", "--detach"],
    ] {
        let out = lev.run(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains("--journal postgres://"),
            "{args:?}: {stderr}"
        );
    }
    let out = lev.run(&["runs", "--json"]);
    assert!(text(&out).0.trim().is_empty(), "nothing recorded");
    // A lease shorter than a round trip is refused before connecting.
    let out = lev.run(&[
        "--journal",
        "host=/nonexistent dbname=x",
        "worker",
        "--lease",
        "10ms",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("--lease `10ms`: at least 1s"),
        "{:?}",
        text(&out)
    );
}
