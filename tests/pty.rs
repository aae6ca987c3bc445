//! `pty` steps through the real `lev` binary: real programs in real
//! pseudo-terminals (bash, a full-screen program, a stand-in agent CLI that
//! reports through `lev hook`), killed with lev and resumed by session id.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::kill;
use support::lev::{Lev, of_type, repo_file, run_id_from};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn workflow(steps: &str) -> String {
    format!("version: 1\nkind: workflow\nid: pty-test\nname: pty test\nsteps:\n{steps}")
}

/// A step's outputs, from its `step_succeeded`.
fn outputs(lev: &Lev, run: &str, step: &str) -> serde_json::Value {
    let events = lev.events(run);
    of_type(&events, "step_succeeded")
        .into_iter()
        .find(|e| e["step"] == step)
        .map(|e| e["outputs"].clone())
        .unwrap_or_else(|| panic!("step {step} did not succeed: {events:#?}"))
}

#[test]
fn a_prompt_is_typed_and_the_exit_code_and_screen_are_the_step_s() {
    let lev = Lev::new();
    let wf = lev.write_workflow(&workflow(
        r#"  greet:
    type: pty
    command: bash
    args: [--norc, --noprofile, -c, 'read -p "Your name? " n; printf "\e[1;31mhello %s\e[0m 你好 wide\n" "$n"; echo "size $(tput cols)x$(tput lines)"; exit 3']
    prompt: Ada Lovelace
    size: 90x20
"#,
    ));
    let out = lev.run_headless(&wf, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let run = run_id_from(&text).unwrap();
    // The screen, line by line, colours gone, wide characters whole.
    assert!(text.contains("  │ Your name? Ada Lovelace\n"), "{text}");
    assert!(
        text.contains("  │ hello Ada Lovelace 你好 wide\n"),
        "{text}"
    );
    assert!(text.contains("  │ size 90x20\n"), "{text}");
    assert!(text.contains("exited with code 3"), "{text}");
    // The live transcript is the replay's.
    assert_eq!(lev.replay(&run).trim_end(), text.trim_end());
    let events = lev.events(&run);
    let launched = &of_type(&events, "pty_launched")[0];
    assert_eq!(launched["program"], "bash");
    assert_eq!(
        (launched["rows"].as_u64(), launched["cols"].as_u64()),
        (Some(20), Some(90))
    );
    let env: Vec<&str> = launched["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        env.contains(&"LEV_RUN") && env.contains(&"LEV_STEP"),
        "{env:?}"
    );
    let finished = &of_type(&events, "pty_finished")[0];
    assert_eq!(finished["exit_code"], 3);
    assert_eq!(finished["ended_by"], "exit");
}

#[test]
fn a_succeeded_step_s_outputs_are_its_text_and_exit_code() {
    let lev = Lev::new();
    let wf = lev.write_workflow(&workflow(
        r#"  list:
    type: pty
    command: sh
    args: [-c, 'echo one; echo two']
  after:
    type: shell
    needs: [list]
    run: 'printf "%s|%s" "${{ steps.list.outputs.exit_code }}" "${{ steps.list.outputs.text }}"'
"#,
    ));
    let out = lev.run_headless(&wf, &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let run = run_id_from(&text).unwrap();
    let list = outputs(&lev, &run, "list");
    assert_eq!(list["exit_code"], 0);
    assert_eq!(list["text"], "one\ntwo");
    assert_eq!(outputs(&lev, &run, "after")["stdout"], "0|one\ntwo");
}

#[test]
fn a_screen_that_waits_for_input_is_answered_or_fails_saying_why() {
    let steps = r#"  deploy:
    type: pty
    command: bash
    args: [--norc, --noprofile, -c, 'read -p "Deploy to which region? " r; echo "deploying to $r"']
    input_when: { pattern: 'region\? *$', idle: 300ms }
"#;
    let lev = Lev::new();
    let wf = lev.write_workflow(&workflow(steps));
    let out = lev.run_headless(&wf, &["--answer", "deploy.input1=eu-west-3"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("  │ deploying to eu-west-3"), "{text}");
    let run = run_id_from(&text).unwrap();
    let asked = of_type(&lev.events(&run), "question_asked");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["id"], "deploy.input1");
    assert!(
        asked[0]["ask"]
            .as_str()
            .unwrap()
            .contains("Deploy to which region?"),
        "{asked:?}"
    );

    // No one to answer: the step fails, saying what the program waits for.
    let lev = Lev::new();
    let wf = lev.write_workflow(&workflow(steps));
    let out = lev.run_headless(&wf, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("waits for input"), "{text}");
    assert!(text.contains("Deploy to which region?"), "{text}");
    assert!(text.contains("--answer"), "{text}");
}

#[test]
fn done_when_ends_a_program_that_never_exits_and_a_full_screen_one_is_restored() {
    let lev = Lev::new();
    let wf = lev.write_workflow(&workflow(
        r#"  serve:
    type: pty
    command: bash
    args: [--norc, --noprofile, -c, 'echo before; tput smcup; echo FULL SCREEN; sleep 0.3; tput rmcup; echo "ready>"; sleep 60']
    done_when: { pattern: 'ready>', idle: 300ms }
"#,
    ));
    let started = Instant::now();
    let out = lev.run_headless(&wf, &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "it waited for the program"
    );
    assert!(text.contains("done (its `done_when` rule held)"), "{text}");
    // The alternate screen came and went: the normal screen is back.
    assert!(text.contains("  │ before\n  │ ready>"), "{text}");
    assert!(!text.contains("  │ FULL SCREEN"), "{text}");
}

/// The stand-in agent CLI, with a marks directory of its own.
fn fake_agent(lev: &Lev) -> (String, std::path::PathBuf) {
    let marks = lev.dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let agent = repo_file("tests/fixtures/fake-agent").display().to_string();
    (agent, marks)
}

/// Waits until the fake agent has written a whole line to `path` (its
/// shell creates the file before it writes the line).
fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let written =
        || std::fs::read_to_string(path).is_ok_and(|s| !s.is_empty() && s.ends_with('\n'));
    while !written() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// An agent CLI that takes its session id from lev (Claude Code's
/// `--session-id`), asks for input through its hook, is killed with lev,
/// and is relaunched with `--resume` and the same id.
#[test]
fn an_agent_cli_killed_with_lev_is_resumed_into_its_own_session() {
    let lev = Lev::new();
    let (agent, marks) = fake_agent(&lev);
    let lev = lev.with_env("FAKE_AGENT_MARKS", &marks.display().to_string());
    let wf = lev.write_workflow(&workflow(&format!(
        r#"  work:
    type: pty
    command: {agent}
    cli: claude
    prompt: fix the failing test
    done_when: stop
"#
    )));
    let child = lev.spawn_headless(&wf, &["--answer", "work.input1=src/lib.rs"]);
    wait_for(&marks.join("answered"), "the agent's question answered");
    let first = kill::finish(child, Some(Duration::ZERO));
    assert_eq!(first.code, None, "lev was to be killed: {}", first.stdout);
    let run = run_id_from(&first.stdout).unwrap();
    let session = lines(&marks.join("started"))[0].clone();
    assert_eq!(lines(&marks.join("answered")), vec!["src/lib.rs"]);

    let out = lev.run(&["resume", &run, "--headless"]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Relaunched once, into the session it had, with no question asked again.
    assert_eq!(lines(&marks.join("resumed")), vec![session.clone()]);
    assert_eq!(lines(&marks.join("started")).len(), 1);
    assert!(
        text.contains(&format!("resuming claude session {session}")),
        "{text}"
    );
    let events = lev.events(&run);
    let launches = of_type(&events, "pty_launched");
    assert_eq!(launches.len(), 2);
    assert_eq!(launches[0]["session"], session.as_str());
    // Its hooks for this session (`--settings`), then the session lev chose.
    assert_eq!(launches[0]["args"][0], "--settings");
    assert!(
        launches[0]["args"][1]
            .as_str()
            .unwrap()
            .contains(r#""Stop""#)
    );
    assert_eq!(launches[0]["args"][2], "--session-id");
    assert_eq!(launches[1]["args"][2], "--resume");
    assert_eq!(launches[1]["args"][3], session.as_str());
    assert_eq!(launches[1]["resumed"], true);
    assert_eq!(of_type(&events, "question_asked").len(), 1);
    let work = outputs(&lev, &run, "work");
    assert_eq!(work["session"], session.as_str());
    assert!(
        work["text"].as_str().unwrap().contains("all done"),
        "{work}"
    );
}

/// An agent CLI that picks its own id (Codex): lev learns it from the hook
/// and from what the screen shows, and resumes it with `resume ID`.
#[test]
fn an_agent_cli_s_own_session_id_is_learned_and_resumed() {
    let lev = Lev::new();
    let (agent, marks) = fake_agent(&lev);
    let lev = lev.with_env("FAKE_AGENT_MARKS", &marks.display().to_string());
    let wf = lev.write_workflow(&workflow(&format!(
        r#"  work:
    type: pty
    command: {agent}
    cli: codex
    prompt: add a test
    done_when: stop
"#
    )));
    let child = lev.spawn_headless(&wf, &["--answer", "work.input1=tests/a.rs"]);
    wait_for(&marks.join("answered"), "the agent's question answered");
    let first = kill::finish(child, Some(Duration::ZERO));
    let run = run_id_from(&first.stdout).unwrap();
    let session = lines(&marks.join("started"))[0].clone();

    let out = lev.run(&["resume", &run, "--headless"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(lines(&marks.join("resumed")), vec![session.clone()]);
    let events = lev.events(&run);
    let learned = of_type(&events, "pty_session");
    assert_eq!(learned.len(), 1, "{learned:?}");
    assert_eq!(learned[0]["session"], session.as_str());
    let launches = of_type(&events, "pty_launched");
    // Its `notify` reports to lev (the stop that ended the resumed step).
    assert_eq!(launches[1]["args"][0], "-c");
    assert!(
        launches[1]["args"][1]
            .as_str()
            .unwrap()
            .starts_with("notify=[")
    );
    assert_eq!(launches[1]["args"][2], "resume");
    assert_eq!(launches[1]["args"][3], session.as_str());
}

/// A program with no session to resume is not rerun behind the user's back.
#[test]
fn a_plain_program_interrupted_by_a_crash_waits_for_a_decision() {
    let lev = Lev::new();
    let marks = lev.dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let wf = lev.write_workflow(&workflow(&format!(
        r#"  once:
    type: pty
    command: bash
    args: [--norc, --noprofile, -c, 'echo ran >> {}/ran; sleep 60']
"#,
        marks.display()
    )));
    let child = lev.spawn_headless(&wf, &[]);
    wait_for(&marks.join("ran"), "the program's start");
    let first = kill::finish(child, Some(Duration::ZERO));
    let run = run_id_from(&first.stdout).unwrap();
    let out = lev.run(&["resume", &run, "--headless"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "paused for a decision: {text}");
    assert_eq!(lines(&marks.join("ran")).len(), 1, "it ran again: {text}");
}

/// A swarm that mixes lev's own agents with an agent CLI: the plan's task
/// in a mode whose `agent:` names a CLI runs that CLI in a terminal, its
/// brief typed in, its report (what its screen showed) handed on to the
/// task that needs it; the model is never asked for that task.
#[test]
fn a_swarm_mixes_api_agents_and_an_agent_cli() {
    use serde_json::json;
    use support::llm_server::{LlmServer, OpenAiSse, Reply};
    let say = |text: &str| {
        OpenAiSse::new("test-model")
            .text(text, 2)
            .usage(30, 10)
            .finish("stop")
            .reply()
    };
    let task = |id: &str, mode: &str, needs: &[&str]| {
        json!({"id": id, "title": format!("do {id}"), "mode": mode, "needs": needs,
               "acceptance": [format!("{id} is done")], "files": []})
    };
    let plan = json!({"summary": "plan", "tasks": [
        task("design", "architect", &[]),
        task("code", "cli-coder", &["design"]),
        task("review", "reviewer", &["code"]),
    ]})
    .to_string();
    let server = LlmServer::with(move |req| {
        let brief = req.brief();
        if brief.contains("Plan this objective") {
            say(&plan)
        } else if brief.contains("Your task (`design`)") {
            say("design: one module")
        } else if brief.contains("Your task (`review`)") {
            say("review: fine")
        } else {
            Reply::json(400, &json!({"error": {"message": "not for the model"}}))
        }
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let agent = lev.dir.path().join("cli-agent.sh");
    std::fs::write(
        &agent,
        "#!/usr/bin/env bash\necho 'cli agent ready'\nn=0; task=''\nwhile IFS= read -r -t 2 line; do n=$((n+1)); case \"$line\" in *'Your task (`'*) task=${line#*Your task (\\`}; task=${task%%\\`*};; esac; done\necho \"cli agent did $task after reading $n lines\"\n\"$LEV_BIN\" hook stop\nsleep 30\n",
    )
    .unwrap();
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let modes = lev.workspace().join(".lev/modes");
    std::fs::create_dir_all(&modes).unwrap();
    std::fs::write(
        modes.join("cli-coder.yaml"),
        format!(
            "version: 1\nkind: mode\nid: cli-coder\nname: CLI coder\nwhen_to_use: code changes, by an agent CLI\nagent:\n  cli: claude\n  command: {}\n  done_when: stop\n",
            agent.display()
        ),
    )
    .unwrap();
    let out = lev.run(&[
        "workflow",
        "build a greeting module",
        "--headless",
        "--yes",
        "--agents",
        "2",
    ]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = run_id_from(&text).unwrap();
    let events = lev.events(&run);
    let started = of_type(&events, "step_started")
        .into_iter()
        .find(|e| e["step"] == "code")
        .unwrap();
    assert_eq!(started["kind"], "pty");
    assert_eq!(started["mode"], "cli-coder");
    let launched = &of_type(&events, "pty_launched")[0];
    assert_eq!(launched["cli"], "claude");
    assert_eq!(launched["args"][2], "--session-id");
    // The model was asked for the plan, the design and the review only.
    let briefs: Vec<String> = server.requests().iter().map(|r| r.brief()).collect();
    assert_eq!(briefs.len(), 3, "{briefs:#?}");
    let review = briefs
        .iter()
        .find(|b| b.contains("Your task (`review`)"))
        .unwrap();
    assert!(review.contains("cli agent did code"), "{review}");
}

/// In a workflow, a step in a mode whose agent is a CLI runs that CLI;
/// what only lev's own agent loop would use is refused where it is written.
#[test]
fn a_workflow_step_in_a_cli_mode_runs_the_cli_and_refuses_what_it_cannot_use() {
    let lev = Lev::new();
    let modes = lev.workspace().join(".lev/modes");
    std::fs::create_dir_all(&modes).unwrap();
    std::fs::write(
        modes.join("sh-agent.yaml"),
        "version: 1\nkind: mode\nid: sh-agent\nname: shell agent\nagent:\n  cli: sh\n  command: sh\n  args: [-c, 'read -r task; echo \"did: $task\"']\n  size: 100x20\n",
    )
    .unwrap();
    // A CLI lev does not know is added in the config (it has no sessions).
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        "pty:\n  clis:\n    sh: {}\n",
    )
    .unwrap();
    let wf = lev.write_workflow(&workflow(
        "  fix:\n    mode: sh-agent\n    prompt: fix the bug\n",
    ));
    let out = lev.run_headless(&wf, &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let run = run_id_from(&text).unwrap();
    assert!(
        outputs(&lev, &run, "fix")["text"]
            .as_str()
            .unwrap()
            .contains("did: fix the bug")
    );
    let launched = &of_type(&lev.events(&run), "pty_launched")[0];
    assert_eq!(
        (launched["rows"].as_u64(), launched["cols"].as_u64()),
        (Some(20), Some(100))
    );

    let wf = lev.write_workflow(&workflow(
        "  fix:\n    mode: sh-agent\n    prompt: fix the bug\n    max_turns: 3\n",
    ));
    let out = lev.run(&["validate", &wf.display().to_string()]);
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("`max_turns` does not apply here: mode `sh-agent` runs the agent CLI `sh`"),
        "{text}"
    );
    assert!(text.contains("wf.yaml:9:16"), "{text}");
}

/// lev's keys never reach the journal from a program's terminal: not in
/// its arguments, its transcript, or what a question about it quotes.
#[test]
fn a_key_a_program_prints_is_not_journaled() {
    const KEY: &str = "sk-test-not-a-real-key";
    let lev = Lev::new().with_openai("http://127.0.0.1:9");
    let wf = lev.write_workflow(&workflow(&format!(
        r#"  leak:
    type: pty
    command: bash
    args: [--norc, --noprofile, -c, 'echo "the key is {KEY}"; read -p "Use key {KEY}? " a; echo "answer $a"']
    input_when: {{ pattern: 'Use key', idle: 300ms }}
"#
    )));
    let out = lev.run_headless(&wf, &["--answer", "leak.input1=yes"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("answer yes"), "{text}");
    let run = run_id_from(&text).unwrap();
    let export = lev.run(&["export", &run]);
    let journal = String::from_utf8_lossy(&export.stdout);
    assert!(!journal.contains(KEY), "the key is in the journal");
    assert!(!text.contains(KEY), "the key was printed: {text}");
    assert!(journal.contains("the key is"), "the transcript is missing");
}

/// An agent's hook that waits for an approval gets the user's decision from
/// lev (the question in the sidebar; `--yes` headless), nothing typed into
/// the program; Claude Code's `PermissionRequest` gets its JSON answer. With
/// no one to decide, the answer is a denial, on record.
#[test]
fn an_approval_a_hook_waits_on_is_decided_in_lev() {
    let script = r#"d=$("$LEV_BIN" hook needs-approval --wait --message "run rm -rf build"); echo "plain: $d ($?)"; j=$(echo '{"hook_event_name":"PermissionRequest","session_id":"s-1","tool_name":"Bash","tool_input":{"command":"git push"}}' | "$LEV_BIN" hook); echo "claude: $j""#;
    let steps = format!(
        "  agent:\n    type: pty\n    command: bash\n    args: [--norc, --noprofile, -c, '{}']\n",
        script.replace('\'', "''")
    );
    let lev = Lev::new();
    let wf = lev.write_workflow(&workflow(&steps));
    let out = lev.run_headless(&wf, &["--yes"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("plain: allow (0)"), "{text}");
    assert!(text.contains(r#""behavior":"allow""#), "{text}");
    let run = run_id_from(&text).unwrap();
    let events = lev.events(&run);
    let asked = of_type(&events, "question_asked");
    assert_eq!(asked.len(), 2, "{asked:#?}");
    assert!(
        asked[0]["id"]
            .as_str()
            .unwrap()
            .starts_with("agent.approval-")
    );
    assert!(
        asked[0]["ask"]
            .as_str()
            .unwrap()
            .contains("wants to run rm -rf build")
    );
    assert!(asked[1]["ask"].as_str().unwrap().contains("git push"));

    let lev = Lev::new();
    let wf = lev.write_workflow(&workflow(&steps));
    let out = lev.run_headless(&wf, &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("plain: deny (2)"), "{text}");
    assert!(text.contains(r#""behavior":"deny""#), "{text}");
}

/// `lev spawn RUN CMD…` from another terminal opens a program in the live
/// run beside its steps (`adhoc-1`), journaled like a `pty` step; the run's
/// end stops it, and its end is on record before the run's.
#[test]
fn a_program_spawned_into_a_live_run_runs_beside_it_and_ends_with_it() {
    let lev = Lev::new();
    let marks = lev.dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let wf = lev.write_workflow(&workflow(&format!(
        "  main:\n    type: pty\n    command: bash\n    args: [--norc, --noprofile, -c, 'while [ ! -e {m}/go ]; do sleep 0.05; done']\n",
        m = marks.display()
    )));
    let child = lev.spawn_headless(&wf, &[]);
    // The run is live once its step's program started.
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        // JSON lines, newest first.
        let out = lev.run(&["runs", "--json"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let first = text
            .lines()
            .next()
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok());
        if let Some(id) = first.as_ref().and_then(|r| r["id"].as_str()) {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "no run");
        std::thread::sleep(Duration::from_millis(50));
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The data dir goes first: after the command, it would be the
        // program's argument (bash takes it as `$0`).
        let data = lev.data_dir().display().to_string();
        let out = lev.run(&[
            "--data-dir",
            &data,
            "spawn",
            &run,
            "bash",
            "--norc",
            "-c",
            &format!("echo adhoc > {}/adhoc; sleep 60", marks.display()),
        ]);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "spawn refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for(&marks.join("adhoc"), "the spawned program");
    std::fs::write(marks.join("go"), "").unwrap();
    let done = kill::finish(child, None);
    assert_eq!(done.code, Some(0), "{}", done.stdout);
    let events = lev.events(&run);
    let seq_of = |kind: &str, step: &str| {
        events
            .iter()
            .find(|e| e["type"] == kind && e["step"] == step)
            .and_then(|e| e["_seq"].as_u64())
            .unwrap_or_else(|| panic!("no {kind} of {step}: {events:#?}"))
    };
    let launched = seq_of("pty_launched", "adhoc-1");
    let cancelled = seq_of("step_cancelled", "adhoc-1");
    let finished = events
        .iter()
        .find(|e| e["type"] == "run_finished")
        .and_then(|e| e["_seq"].as_u64())
        .unwrap();
    assert!(launched < cancelled && cancelled < finished);
    assert_eq!(lev.show(&run)["status"], "succeeded");
}
