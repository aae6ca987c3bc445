//! The workbench end to end: the real `lev` binary in a real terminal under
//! tmux, driven with `send-keys` and read with `capture-pane`, against the
//! scripted provider of the demo. Waits are screen predicates with a
//! deadline, never fixed sleeps.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::lev::Lev;
use support::tmux::{Tmux, skip_without_tmux};

/// Answers the demo's question and approves its gate from the sidebar.
fn answer_and_approve(t: &Tmux) {
    // The grace period passes before a prompt takes keys: wait for the pick hint.
    t.wait_for("the audience question", 30, |s| {
        s.contains("Who should the script greet?") && s.contains("Enter send")
    });
    t.send("Enter");
    t.wait_for("the answer to be recorded", 30, |s| {
        s.contains("Audience = world")
    });
    t.wait_for("the approval prompt", 60, |s| s.contains("[a] approve"));
    t.send("a");
    t.wait_for("the run to succeed", 60, |s| s.contains("succeeded ·"));
}

#[test]
fn demo_in_the_workbench_answer_approve_finish_quit() {
    if skip_without_tmux() {
        return;
    }
    let lev = Lev::new();
    let t = Tmux::start(&lev, &["demo"]);
    answer_and_approve(&t);
    let screen = t.screen();
    for tab in [
        "architect",
        "coder",
        "tester",
        "approve",
        "checks",
        "reviewer",
    ] {
        assert!(screen.contains(tab), "no pane for {tab}:\n{screen}");
    }
    // Move focus and change layout, then quit.
    t.send("Tab");
    t.send("w");
    t.wait_for("the grid", 10, |s| s.matches('╭').count() >= 4);
    t.send("q");
    assert_eq!(t.wait_exit(20), 0);
    let run = only_run(&lev);
    // Back on the terminal, lev says what it left and how to go on (tmux
    // may draw it a moment after the exit status is written).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = t.screen_and_history();
        if s.contains(&format!("run {run} succeeded")) && s.contains("lev show") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no farewell after quitting:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded");
    assert!(Path::new(&lev.data_dir()).join("lev.redb").exists());
}

#[test]
fn kill9_in_the_workbench_then_resume_from_the_runs_browser() {
    if skip_without_tmux() {
        return;
    }
    let lev = Lev::new();
    let t = Tmux::start(&lev, &["demo"]);
    t.wait_for("the audience question", 30, |s| {
        s.contains("Who should the script greet?")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(t.lev_pid()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(t.wait_exit(10), 128 + 9);
    drop(t);
    let run = only_run(&lev);
    assert_ne!(lev.show(&run)["status"], "succeeded");

    // `lev` with no command opens the browser; Enter resumes the unfinished run.
    let t = Tmux::start(&lev, &[]);
    t.wait_for("the run in the browser", 30, |s| {
        s.contains(&run) && s.contains("resumable")
    });
    t.send("Enter");
    answer_and_approve(&t);
    t.send("q");
    assert_eq!(t.wait_exit(20), 0);
    assert_eq!(lev.show(&run)["status"], "succeeded");
}

fn only_run(lev: &Lev) -> String {
    let out = lev.run(&["runs", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let first = text
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no run recorded: {text}"));
    serde_json::from_str::<serde_json::Value>(first).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Canned replies for a two-slot swarm: the orchestrator's plan (a design,
/// then two tasks that need it), then one streamed reply per task.
const SWARM_CASSETTE: &str = r#"replies:
  - step: plan
    text: '{"summary": "a greeter, documented", "tasks": [
      {"id": "design", "title": "Design the greeter", "mode": "architect", "needs": [], "acceptance": ["the design is written"], "files": []},
      {"id": "code", "title": "Write greet.sh", "mode": "coder", "needs": ["design"], "acceptance": ["greet.sh prints hello"], "files": []},
      {"id": "docs", "title": "Document greet.sh", "mode": "docs-writer", "needs": ["design"], "acceptance": ["README says how to run it"], "files": []}]}'
    delay_ms: 300
  - step: design
    text: "design: one script that prints the greeting"
    delay_ms: 400
  - step: code
    text: "code: greet.sh prints hello with printf"
    delay_ms: 600
  - step: docs
    text: "docs: run sh greet.sh"
    delay_ms: 600
"#;

#[test]
fn swarm_in_the_workbench_review_accept_slots_finish() {
    if skip_without_tmux() {
        return;
    }
    let lev = Lev::new();
    let cassette = lev.dir.path().join("swarm.cassette.yaml");
    std::fs::write(&cassette, SWARM_CASSETTE).unwrap();
    // The workspace's lev.yaml picks the scripted provider and its cassette.
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        format!("provider: scripted\ncassette: {}\n", cassette.display()),
    )
    .unwrap();
    let t = Tmux::start(&lev, &["workflow", "build a greeter", "--agents", "2"]);
    // The plan shows readably in the sidebar; its keys appear after the grace period.
    let review = t.wait_for("the plan review", 60, |s| {
        s.contains("Review the plan (3 tasks)") && s.contains("[a] accept")
    });
    assert!(review.contains("2. code · coder"), "{review}");
    t.send("a");
    t.wait_for("the run to succeed", 60, |s| s.contains("succeeded ·"));
    let screen = t.wait_for("both slots' panes", 10, |s| {
        s.contains("── task design") && s.contains("── task docs")
    });
    assert!(screen.contains("code: greet.sh prints hello"), "{screen}");
    t.send("q");
    assert_eq!(t.wait_exit(20), 0);
    assert_eq!(lev.show(&only_run(&lev))["status"], "succeeded");
}

/// FlowMind's model in the workbench: an agent that opens another note
/// every turn is found looping by its progress ledgers (each in its pane),
/// told what the ledger says to tell it (`FlowMind → look (ledger: …)`),
/// and the sidebar says what FlowMind runs on.
/// A loopback model for FlowMind in the workbench: the orchestrator plans
/// one task, every agent opens another note each turn until FlowMind's
/// message reaches it, and FlowMind's ledgers find it looping.
fn wandering_server() -> support::llm_server::LlmServer {
    use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};
    LlmServer::with(|req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        let system = msgs[0]["content"].as_str().unwrap_or("");
        let planning = msgs.iter().any(|m| {
            m["content"]
                .as_str()
                .unwrap_or("")
                .contains("what the plan achieves")
        });
        if planning {
            let plan = serde_json::json!({"summary": "find the date", "tasks": [
                {"id": "look", "title": "Find the release date", "mode": "coder", "needs": [],
                 "acceptance": ["the date is stated"], "files": []}]});
            return OpenAiSse::new("test-model")
                .text(&plan.to_string(), 1)
                .usage(10, 5)
                .finish("stop")
                .reply();
        }
        if system.contains("progress ledger") {
            let ledger = serde_json::json!({
                "satisfied": false, "looping": true, "progressing": false, "next": "agent",
                "instruction": "Stop opening notes; answer with what you have.",
                "reason": "It opens a new note every turn."
            });
            return OpenAiSse::new("fm-model")
                .text(&ledger.to_string(), 1)
                .usage(200, 30)
                .finish("stop")
                .reply();
        }
        let told = msgs.iter().any(|m| {
            m["role"] == "user" && m["content"].as_str().unwrap_or("").contains("FlowMind")
        });
        if told {
            return OpenAiSse::new("test-model")
                .text("The notes give no date.", 1)
                .usage(10, 5)
                .finish("stop")
                .reply();
        }
        let n = msgs.iter().filter(|m| m["role"] == "assistant").count();
        OpenAiSse::new("test-model")
            .tool_call(
                0,
                &format!("call_{n}"),
                "read_file",
                &format!(r#"{{"path":"notes{n}.txt"}}"#),
                1,
            )
            .usage(10, 5)
            .finish("tool_calls")
            .reply()
    })
}

/// A sandbox whose provider is `server` and whose FlowMind runs on it.
fn flowmind_lev(server: &support::llm_server::LlmServer) -> Lev {
    let lev = Lev::new();
    for n in 0..8 {
        std::fs::write(lev.workspace().join(format!("notes{n}.txt")), "nothing\n").unwrap();
    }
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        format!(
            "provider: loop\nproviders:\n  loop: {{ kind: ollama, base_url: {}, model: test-model }}\nflowmind: {{ mode: model, model: fm-model, cadence: 1, stalls: 2 }}\n",
            server.base_url()
        ),
    )
    .unwrap();
    lev
}

#[test]
fn flowmind_s_ledger_and_instruction_in_the_workbench() {
    if skip_without_tmux() {
        return;
    }
    let server = wandering_server();
    let lev = flowmind_lev(&server);
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: wander\nsteps:\n  look:\n    mode: ask\n    max_turns: 8\n    prompt: Find the release date in the notes.\n",
    );
    let t = Tmux::start(&lev, &["run", &wf.display().to_string()]);
    let screen = t.wait_for("the run to succeed", 60, |s| s.contains("succeeded ·"));
    assert!(screen.contains("FlowMind: model fm-model"), "{screen}");
    let all = t.screen_and_history();
    let all = all.replace('\n', " ");
    assert!(all.contains("FlowMind ledger, look turn"), "{all}");
    assert!(all.contains("FlowMind → look (ledger:"), "{all}");
    t.send("q");
    assert_eq!(t.wait_exit(20), 0);
}

/// The same in a live swarm: the plan reviewed and accepted, the slot's
/// pane shows the task's ledgers and FlowMind's instruction.
#[test]
fn flowmind_s_ledger_and_instruction_in_a_live_swarm() {
    if skip_without_tmux() {
        return;
    }
    let server = wandering_server();
    let lev = flowmind_lev(&server);
    let t = Tmux::start(
        &lev,
        &["workflow", "find the release date", "--agents", "1"],
    );
    t.wait_for("the plan review", 60, |s| s.contains("[a] accept"));
    t.send("a");
    let screen = t.wait_for("the run to succeed", 60, |s| s.contains("succeeded ·"));
    assert!(screen.contains("FlowMind: model fm-model"), "{screen}");
    let all = t.screen_and_history().replace('\n', " ");
    assert!(all.contains("FlowMind ledger, look turn"), "{all}");
    assert!(all.contains("FlowMind → look (ledger:"), "{all}");
    t.send("q");
    assert_eq!(t.wait_exit(20), 0);
}

/// Suggestions in the runs browser do what they say: a step that timed
/// out in both of its workflow's runs is suggested a longer timeout, and
/// `a` doubles it in the workflow file (nothing else in the file changes)
/// and the suggestion leaves the list.
#[test]
fn a_suggestion_accepted_in_the_runs_browser_raises_the_timeout() {
    if skip_without_tmux() {
        return;
    }
    let lev = Lev::new();
    let yaml = "version: 1\nkind: workflow\nid: nightly\nname: Nightly\nsteps:\n  fetch:\n    type: shell\n    run: sleep 5\n    timeout: 1s   # the mirror is slow\n";
    let wf = lev.workspace().join("nightly.yaml");
    std::fs::write(&wf, yaml).unwrap();
    for _ in 0..2 {
        let out = lev.run(&["run", "nightly.yaml", "--headless"]);
        assert!(!out.status.success());
    }
    let t = Tmux::start(&lev, &[]);
    t.wait_for("the suggestion", 30, |s| {
        s.contains("a: do the marked one") && s.contains("› step `fetch` of nightly timed out")
    });
    t.send("a");
    t.wait_for("the edit reported", 30, |s| {
        s.contains("raised the timeout of `fetch` in nightly.yaml from 1s to 2s")
    });
    assert_eq!(
        std::fs::read_to_string(&wf).unwrap(),
        yaml.replace("timeout: 1s", "timeout: 2s")
    );
    // Done and gone from the list.
    let s = t.screen();
    assert!(!s.contains("step `fetch` of nightly timed out"), "{s}");
    t.send("q");
    assert_eq!(t.wait_exit(20), 0);
}

/// A swarm that succeeded is suggested as a template; `a` in the runs
/// browser saves it under `workflows/` (what `lev template save` writes),
/// a workflow `lev validate` accepts.
#[test]
fn a_suggestion_accepted_in_the_runs_browser_saves_a_swarm_as_a_workflow() {
    if skip_without_tmux() {
        return;
    }
    let lev = Lev::new();
    let cassette = lev.dir.path().join("swarm.cassette.yaml");
    std::fs::write(&cassette, SWARM_CASSETTE).unwrap();
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        format!("provider: scripted\ncassette: {}\n", cassette.display()),
    )
    .unwrap();
    let out = lev.run(&["workflow", "build a greeter", "--headless", "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let t = Tmux::start(&lev, &[]);
    t.wait_for("the suggestion", 30, |s| {
        s.contains("› the swarm for \"build a greeter\" succeeded")
    });
    t.send("a");
    t.wait_for("the template saved", 30, |s| {
        s.contains("saved workflows/build-a-greeter.yaml (3 steps)")
    });
    let yaml =
        std::fs::read_to_string(lev.workspace().join("workflows/build-a-greeter.yaml")).unwrap();
    assert!(yaml.contains("id: build-a-greeter"), "{yaml}");
    t.send("q");
    assert_eq!(t.wait_exit(20), 0);
    let out = lev.run(&["validate", "workflows/build-a-greeter.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// FlowMind's escalation waits in the workbench's sidebar; `d` on it lets
/// it go: journaled (`flowmind_dismissed`) and counted once as a dismissed
/// `stuck:loop` whisper, not again when the step ends.
#[test]
fn an_escalation_dismissed_in_the_workbench_counts_as_dismissed() {
    use support::llm_server::{Action, LlmServer, OpenAiSse, RecordedRequest};
    if skip_without_tmux() {
        return;
    }
    // Reads the same file on every turn, a little slower once told.
    let server = LlmServer::with(|req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        let n = msgs.iter().filter(|m| m["role"] == "assistant").count();
        let reply = OpenAiSse::new("test-model")
            .tool_call(
                0,
                &format!("call_{n}"),
                "read_file",
                r#"{"path":"notes0.txt"}"#,
                1,
            )
            .usage(10, 5)
            .finish("tool_calls")
            .reply();
        if n >= 6 {
            reply.insert(0, Action::Delay(400))
        } else {
            reply
        }
    });
    let lev = flowmind_lev(&server);
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        format!(
            "provider: loop\nproviders:\n  loop: {{ kind: ollama, base_url: {}, model: test-model }}\n",
            server.base_url()
        ),
    )
    .unwrap();
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: loop\nsteps:\n  look:\n    mode: ask\n    max_turns: 40\n    continue_on_error: true\n    prompt: Find the release date in the notes.\n",
    );
    let t = Tmux::start(&lev, &["run", &wf.display().to_string()]);
    t.wait_for("the escalation", 60, |s| {
        s.contains("◆ FlowMind: look looks stuck")
    });
    t.send("!");
    t.wait_for("its keys", 30, |s| {
        s.contains("[Enter] message it") && s.contains("[d]")
    });
    t.send("d");
    t.wait_for("the dismissal", 30, |s| {
        s.contains("dismissed FlowMind's escalation about look")
    });
    t.wait_for("the run to end", 60, |s| {
        s.contains("succeeded ·") || s.contains("failed ·")
    });
    t.send("q");
    assert_eq!(t.wait_exit(20), 0);
    let run = only_run(&lev);
    let events = lev.events(&run);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "flowmind_dismissed")
            .count(),
        1
    );
    let out = lev.run(&["whispers", "--json"]);
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|s| s["category"] == "stuck:loop")
        .expect("a stuck:loop score");
    assert_eq!(
        (line["accepted"].as_u64(), line["dismissed"].as_u64()),
        (Some(0), Some(1)),
        "{line}"
    );
}

/// FlowMind re-plans a stalled swarm task in the workbench: the revised
/// plan is reviewed in the sidebar like the first (`a` accepts it), and its
/// task runs on a slot.
#[test]
fn a_revised_plan_is_reviewed_and_run_in_the_workbench() {
    use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};
    if skip_without_tmux() {
        return;
    }
    let task = |id: &str, mode: &str, needs: &[&str]| {
        serde_json::json!({"id": id, "title": format!("do {id}"), "mode": mode, "needs": needs,
            "acceptance": [format!("{id} is done")], "files": []})
    };
    let plan = serde_json::json!({"summary": "the plan", "tasks": [
        task("first", "architect", &[]), task("stuck", "coder", &["first"])]})
    .to_string();
    let revised = serde_json::json!({"summary": "around it", "tasks": [
        task("fix", "coder", &["first"])]})
    .to_string();
    let server = LlmServer::with(move |req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        let brief = msgs
            .iter()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string();
        let say = |text: &str| {
            OpenAiSse::new("test-model")
                .text(text, 2)
                .usage(10, 5)
                .finish("stop")
                .reply()
        };
        if brief.contains("Plan this objective") {
            return say(&plan);
        }
        if brief.contains("Plan the unfinished work again") {
            return say(&revised);
        }
        if brief.contains("Your task (`stuck`)") {
            let n = msgs.iter().filter(|m| m["role"] == "assistant").count();
            return OpenAiSse::new("test-model")
                .tool_call(
                    0,
                    &format!("call_{n}"),
                    "read_file",
                    r#"{"path":"notes0.txt"}"#,
                    1,
                )
                .usage(10, 5)
                .finish("tool_calls")
                .reply();
        }
        say("done: the fix is in")
    });
    let lev = flowmind_lev(&server);
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        format!(
            "provider: loop\nproviders:\n  loop: {{ kind: ollama, base_url: {}, model: test-model }}\n",
            server.base_url()
        ),
    )
    .unwrap();
    let t = Tmux::start(&lev, &["workflow", "ship it", "--agents", "1"]);
    t.wait_for("the plan review", 60, |s| {
        s.contains("Review the plan (2 tasks)") && s.contains("[a] accept")
    });
    t.send("a");
    t.wait_for("the revised plan's review", 60, |s| {
        s.contains("Review the revised plan (1 task)") && s.contains("[a] accept")
    });
    t.send("a");
    let screen = t.wait_for("the run to succeed", 60, |s| s.contains("succeeded ·"));
    let all = t.screen_and_history().replace('\n', " ");
    assert!(all.contains("── task fix"), "{screen}\n{all}");
    t.send("q");
    assert_eq!(t.wait_exit(20), 0);
    let run = only_run(&lev);
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    assert_eq!(show["outputs"]["replaced"], serde_json::json!(["stuck"]));
}

/// A `pty` step's pane in the workbench: its program's screen drawn in the
/// pane at the pane's size, entered with Enter (keys and wide characters go
/// to the program), left with Ctrl-g (lev's keys again), and the run ends
/// when the program exits.
#[test]
fn a_program_s_pane_is_entered_typed_into_and_left() {
    if skip_without_tmux() {
        return;
    }
    let lev = Lev::new();
    let wf = lev.write_workflow(
        r#"version: 1
kind: workflow
id: echo-pty
name: echo in a terminal
steps:
  echo:
    type: pty
    command: bash
    args: [--norc, --noprofile, -c, 'while IFS= read -r -p "ready($(tput cols)x$(tput lines))> " line; do [ "$line" = quit ] && exit 0; printf "you typed: \e[32m%s\e[0m\n" "$line"; done']
"#,
    );
    let wf = wf.display().to_string();
    let t = Tmux::start(&lev, &["run", &wf]);
    t.wait_for("the program's prompt in its pane", 30, |s| {
        s.contains("ready(")
    });
    t.wait_for("the hint to enter it", 10, |s| {
        s.contains("Enter types into the program")
    });
    t.send("Enter");
    t.wait_for("the keys to go to the program", 10, |s| {
        s.contains("keys go to echo") && s.contains("Ctrl-g leaves")
    });
    t.tmux(&["send-keys", "-t", "main", "-l", "hello 世界"]);
    t.send("Enter");
    t.wait_for("the program's answer", 10, |s| {
        s.contains("you typed: hello 世界")
    });
    // The program's terminal takes the pane's size, not the 120×40 it began
    // in: a prompt drawn after the resize reached it says so (each empty
    // line draws a fresh prompt).
    let last_prompt = |screen: &str| {
        screen
            .lines()
            .rev()
            .find_map(|l| l.split("ready(").nth(1))
            .and_then(|rest| rest.split(')').next())
            .map(str::to_string)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let prompt = loop {
        let screen = t.screen();
        match last_prompt(&screen) {
            Some(p) if p != "120x40" => break p,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "the terminal kept its first size:\n{screen}"
                );
                t.send("Enter");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    let cols: u16 = prompt.split('x').next().unwrap().parse().unwrap();
    assert!(cols < 140, "{prompt}");

    // Ctrl-g leaves: `?` is lev's help again, not a key for the program.
    t.send("C-g");
    t.wait_for("lev's keys again", 10, |s| s.contains("left the program"));
    t.send("?");
    t.wait_for("lev's help", 10, |s| s.contains("Esc closes"));
    t.send("Escape");
    t.wait_for("the help closed", 10, |s| !s.contains("Esc closes"));
    // `:spawn` opens another program in a pane of the run.
    t.send(":");
    t.tmux(&[
        "send-keys",
        "-t",
        "main",
        "-l",
        "spawn bash --norc --noprofile",
    ]);
    t.wait_for("the spawn row", 10, |s| {
        s.contains("spawn bash --norc --noprofile in a new pane")
    });
    t.send("Enter");
    t.wait_for("the spawned program's pane", 20, |s| s.contains("adhoc-1"));
    t.send("1");
    t.wait_for("the first pane focused", 10, |s| {
        s.contains("Enter types into the program")
    });
    t.send("Enter");
    t.wait_for("the keys to go to the program again", 10, |s| {
        s.contains("keys go to echo")
    });
    t.tmux(&["send-keys", "-t", "main", "-l", "quit"]);
    t.send("Enter");
    t.wait_for("the run to succeed", 30, |s| s.contains("succeeded ·"));
    t.send("q");
    assert_eq!(t.wait_exit(20), 0);
}
