//! What a mode says it does, lev does. `permissions.ask_before` holds even
//! where the shell policy would let a command run (`--allow-shell`): the
//! built-in `coder` asks before `rm -rf`; a headless run refuses it unless
//! started with `--yes`, an interactive one asks and the user's answer
//! decides. `limits.max_questions` caps the agent's `ask_user` questions per
//! attempt, `limits.timeout` is an agent step's timeout unless the step
//! sets one, and `whisper.ask_user_when` reaches the system prompt.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use lev::config::Config;
use lev::protocol::{AnswerSource, Event, Notice, Op, RunStatus};
use lev::spec::{self, ModeRegistry};
use lev::workflow::{self, EngineDeps, RunOptions, Start};
use serde_json::json;
use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};
use tokio::sync::mpsc;

const WORKFLOW: &str = r#"
version: 1
kind: workflow
id: tidy
name: Tidy
steps:
  tidy:
    mode: coder
    prompt: Remove the build directory.
"#;

/// Turn 1 asks to run `rm -rf build`; turn 2 reports what the tool said.
fn server() -> LlmServer {
    LlmServer::with(|req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        match msgs.iter().rev().find(|m| m["role"] == "tool") {
            None => {
                let args = json!({ "command": "rm -rf build" }).to_string();
                OpenAiSse::new("test-model")
                    .tool_call(0, "call_rm", "run_shell", &args, 2)
                    .usage(10, 5)
                    .finish("tool_calls")
                    .reply()
            }
            Some(tool) => OpenAiSse::new("test-model")
                .text(&format!("tool said: {}", tool["content"]), 2)
                .usage(10, 5)
                .finish("stop")
                .reply(),
        }
    })
}

fn tool_output(events: &[serde_json::Value]) -> String {
    events
        .iter()
        .find(|e| e["type"] == "tool_finished")
        .map(|e| e["output"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[test]
fn a_headless_run_refuses_what_the_mode_asks_before_unless_given_yes() {
    for yes in [false, true] {
        let server = server();
        let lev = Lev::new().with_openai(&server.base_url());
        std::fs::create_dir_all(lev.workspace().join("build")).unwrap();
        let wf = lev.write_workflow(WORKFLOW);
        let extra: &[&str] = if yes {
            &["--allow-shell", "--yes"]
        } else {
            &["--allow-shell"]
        };
        let out = lev.run_headless(&wf, extra);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{stdout}");
        let run = run_id_from(&stdout).unwrap();
        let output = tool_output(&lev.events(&run));
        let build = lev.workspace().join("build");
        if yes {
            assert!(!build.exists(), "--yes: the command ran ({output})");
        } else {
            assert!(build.exists(), "the command ran without --yes");
            assert!(
                output.contains("mode `coder` asks before `shell:rm -rf`")
                    && output.contains("--yes"),
                "{output}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_run_asks_and_the_answer_decides() {
    for answer in ["no", "yes"] {
        let server = server();
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("build")).unwrap();
        let base = format!("{}/v1", server.base_url());
        let vars: HashMap<&str, String> = [
            ("OPENAI_API_KEY", "sk-test-not-a-real-key".to_string()),
            ("OPENAI_BASE_URL", base),
            ("LEV_MODEL", "test-model".to_string()),
        ]
        .into();
        let env = move |k: &str| vars.get(k).cloned();
        let config = Config::load_with_env(&ws, None, &env).unwrap();
        let modes = ModeRegistry::builtin().unwrap();
        let path = dir.path().join("tidy.yaml");
        std::fs::write(&path, WORKFLOW).unwrap();
        let wf = spec::load_workflow(&path, &modes).unwrap();
        let journal = support::journal::open(dir.path()).await;
        let run = workflow::start_run(&journal, &wf, Default::default(), None)
            .await
            .unwrap();
        let deps = Arc::new(EngineDeps {
            journal: journal.clone(),
            provider: lev::llm::build_provider_with_env(&config, &env).map_err(|e| e.to_string()),
            default_model: config.provider.model.clone(),
            profiles: Default::default(),
            modes,
            workspace: ws.canonicalize().unwrap(),
            options: RunOptions {
                interactive: true,
                allow_shell: true,
                ..RunOptions::default()
            },
        });
        let (ops, ops_rx) = mpsc::unbounded_channel();
        let (notices, mut seen) = mpsc::unbounded_channel();
        let driving = tokio::spawn(workflow::drive(
            deps,
            run.clone(),
            Start::Fresh,
            ops_rx,
            vec![notices],
        ));
        let mut asked = None;
        while let Some(notice) = seen.recv().await {
            let Notice::Event(recorded) = notice else {
                continue;
            };
            match recorded.event {
                Event::QuestionAsked { id, ask, .. } => {
                    asked = Some(ask);
                    ops.send(Op::Answer {
                        run: run.clone(),
                        question: id,
                        answer: answer.into(),
                        source: AnswerSource::User,
                    })
                    .unwrap();
                }
                Event::RunFinished { .. } => break,
                _ => {}
            }
        }
        let outcome = driving.await.unwrap().unwrap();
        assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
        let asked = asked.expect("the run asked before rm -rf");
        assert!(
            asked.contains("asks before `shell:rm -rf`") && asked.contains("run `rm -rf build`"),
            "{asked}"
        );
        assert_eq!(
            ws.join("build").exists(),
            answer == "no",
            "answered {answer}"
        );
    }
}

/// Every turn asks the user again, up to three times; then it is done.
fn asking_server() -> LlmServer {
    LlmServer::with(|req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        let tools = msgs.iter().filter(|m| m["role"] == "tool").count();
        if tools < 3 {
            let args = json!({ "question": format!("question {tools}?") }).to_string();
            OpenAiSse::new("test-model")
                .tool_call(0, &format!("call_{tools}"), "ask_user", &args, 2)
                .usage(10, 5)
                .finish("tool_calls")
                .reply()
        } else {
            OpenAiSse::new("test-model")
                .text("done", 2)
                .usage(10, 5)
                .finish("stop")
                .reply()
        }
    })
}

#[test]
fn a_modes_max_questions_caps_what_its_agent_asks() {
    // `ask` allows one question per step.
    let server = asking_server();
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: q\nname: Q\nsteps:\n  curious:\n    mode: ask\n    prompt: Ask away.\n",
    );
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let asked = events
        .iter()
        .filter(|e| e["type"] == "question_asked")
        .count();
    assert_eq!(asked, 1, "one question reached the user");
    let refused: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "tool_finished" && e["is_error"] == true)
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused[0]["output"]
            .as_str()
            .unwrap()
            .contains("mode `ask` may ask the user at most 1 question per step"),
        "{refused:?}"
    );
    let guards: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "guard_tripped")
        .collect();
    assert_eq!(guards.len(), 2);
    assert_eq!(guards[0]["guard"], "max_questions of mode ask");
    assert_eq!(guards[0]["observed"], "2");
}

#[test]
fn an_agent_step_takes_its_modes_timeout_unless_it_sets_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.yaml");
    std::fs::write(
        &path,
        "version: 1\nkind: workflow\nid: t\nname: T\ndefaults:\n  timeout: 2h\nsteps:\n  \
         quick:\n    mode: ask\n    prompt: Hi.\n  own:\n    mode: ask\n    prompt: Hi.\n    timeout: 3m\n  \
         coder:\n    mode: coder\n    prompt: Hi.\n  sh:\n    type: shell\n    run: \"true\"\n",
    )
    .unwrap();
    let wf = spec::load_workflow(&path, &ModeRegistry::builtin().unwrap()).unwrap();
    let timeout = |id: &str| {
        wf.steps
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.timeout)
            .map(|t| t.as_secs())
    };
    // `ask` says 10m; a step's own wins; `coder` sets none; shell is no agent.
    assert_eq!(timeout("quick"), Some(600));
    assert_eq!(timeout("own"), Some(180));
    assert_eq!(timeout("coder"), Some(7200));
    assert_eq!(timeout("sh"), Some(7200));
}

#[test]
fn ask_user_when_reaches_the_system_prompt() {
    let server = LlmServer::with(|_req: &RecordedRequest| {
        OpenAiSse::new("test-model")
            .text("done", 1)
            .usage(10, 5)
            .finish("stop")
            .reply()
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: d\nname: D\nsteps:\n  ops:\n    mode: devops\n    prompt: Check.\n",
    );
    let out = lev.run_headless(&wf, &[]);
    assert!(out.status.success());
    let requests = server.requests();
    let system = requests[0].json.as_ref().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        system.contains("Ask the user with `ask_user` before you act when:\n- a command would change a shared or remote environment"),
        "{system}"
    );
}

#[test]
fn ask_before_every_command_spares_the_ones_the_mode_allows_by_name() {
    // security-review: `ask_before: [shell:*]`, and `shell:git log` allowed.
    let server = LlmServer::with(|req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        let tools = msgs.iter().filter(|m| m["role"] == "tool").count();
        let command = ["git log -1", "ls"].get(tools);
        match command {
            Some(command) => {
                let args = json!({ "command": command }).to_string();
                OpenAiSse::new("test-model")
                    .tool_call(0, &format!("call_{tools}"), "run_shell", &args, 2)
                    .usage(10, 5)
                    .finish("tool_calls")
                    .reply()
            }
            None => OpenAiSse::new("test-model")
                .text("done", 2)
                .usage(10, 5)
                .finish("stop")
                .reply(),
        }
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: r\nname: R\nsteps:\n  audit:\n    mode: security-review\n    prompt: Audit.\n",
    );
    // The run's end does not matter here (the mode wants a JSON report).
    let out = lev.run_headless(&wf, &["--allow-shell"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = run_id_from(&stdout).unwrap();
    let outputs: Vec<String> = lev
        .events(&run)
        .iter()
        .filter(|e| e["type"] == "tool_finished")
        .map(|e| e["output"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert!(!outputs[0].contains("asks before"), "{outputs:?}");
    assert!(
        outputs[1].contains("mode `security-review` asks before `shell:*`"),
        "{outputs:?}"
    );
}

/// An agent of `mode` runs one command that tries to reach the loopback
/// LLM server itself on 127.0.0.1; returns what the tool said.
fn reach_the_server_from_a_shell_command(mode: &str) -> String {
    let port = Arc::new(std::sync::OnceLock::<String>::new());
    let server = LlmServer::with({
        let port = port.clone();
        move |req: &RecordedRequest| {
            let msgs = req.json.as_ref().unwrap()["messages"]
                .as_array()
                .unwrap()
                .clone();
            match msgs.iter().rev().find(|m| m["role"] == "tool") {
                None => {
                    let command = format!(
                        "bash -c 'exec 3<>/dev/tcp/127.0.0.1/{}' && echo reached || echo cut off",
                        port.get().unwrap()
                    );
                    let args = json!({ "command": command }).to_string();
                    OpenAiSse::new("test-model")
                        .tool_call(0, "call_probe", "run_shell", &args, 2)
                        .usage(10, 5)
                        .finish("tool_calls")
                        .reply()
                }
                Some(_) => OpenAiSse::new("test-model")
                    .text("done", 2)
                    .usage(10, 5)
                    .finish("stop")
                    .reply(),
            }
        }
    });
    let url = server.base_url();
    port.set(
        url.rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches('/')
            .to_string(),
    )
    .unwrap();
    let lev = Lev::new().with_openai(&url);
    let wf = lev.write_workflow(&format!(
        "version: 1\nkind: workflow\nid: probe\nname: Probe\nsteps:\n  probe:\n    mode: {mode}\n    prompt: Probe the network.\n"
    ));
    let out = lev.run_headless(&wf, &["--allow-shell", "--yes"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    tool_output(&lev.events(&run_id_from(&stdout).unwrap()))
}

#[test]
fn a_mode_without_network_runs_its_shell_commands_cut_off() {
    if !lev::commands::offline::available() {
        // User namespaces are switched off: the setting is advisory, as
        // `lev modes show` says (tests/modes.rs).
        return;
    }
    // `coder` says `network: false`; `devops` says `network: true`.
    let cut = reach_the_server_from_a_shell_command("coder");
    assert!(cut.contains("cut off") && !cut.contains("reached"), "{cut}");
    let open = reach_the_server_from_a_shell_command("devops");
    assert!(open.contains("reached"), "{open}");
}
