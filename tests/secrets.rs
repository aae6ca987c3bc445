//! lev's provider keys never reach what lev did not write: child processes
//! (a shell step's `printenv; env`, an agent's `run_shell`) do not inherit
//! them, and a key that shows up anyway (a model echoing it, a file) is
//! `[redacted]` before it is journaled, printed, exported, logged or sent
//! back to the model. A step that sets one in its own `env:` still passes it.

mod support;

use serde_json::json;
use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

/// `Lev::with_openai`'s key.
const KEY: &str = "sk-test-not-a-real-key";
/// A second secret: the variable a configured provider's `api_key_env` names.
const PROXY_KEY: &str = "proxy-secret-0123456789";

const WORKFLOW: &str = r#"
version: 1
kind: workflow
id: secrets
name: Secrets
steps:
  dump:
    type: shell
    run: printenv OPENAI_API_KEY; printenv PROXY_KEY; env
  own:
    type: shell
    env: { OPENAI_API_KEY: step-own-value }
    run: printenv OPENAI_API_KEY
  agent:
    needs: [dump, own]
    mode: coder
    prompt: Look around.
outputs:
  dump: ${{ steps.dump.outputs.stdout }}
  own: ${{ steps.own.outputs.stdout }}
  agent: ${{ steps.agent.outputs.text }}
"#;

/// Turn 1: `run_shell` prints the environment and a file holding the key;
/// turn 2: the model "echoes" the key it was never given.
fn server() -> LlmServer {
    LlmServer::with(|req: &RecordedRequest| {
        let msgs = req.json.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone();
        let m = "test-model";
        if msgs.iter().all(|x| x["role"] != "assistant") {
            let args = json!({
                "command": "printenv OPENAI_API_KEY; env; echo \"key=$OPENAI_API_KEY\"; cat .env"
            })
            .to_string();
            return OpenAiSse::new(m)
                .tool_call(0, "call_env", "run_shell", &args, 3)
                .usage(10, 5)
                .finish("tool_calls")
                .reply();
        }
        OpenAiSse::new(m)
            .text(&format!("the key is {KEY}, done"), 4)
            .usage(10, 5)
            .finish("stop")
            .reply()
    })
}

fn assert_no_key(what: &str, bytes: &[u8]) {
    for key in [KEY, PROXY_KEY] {
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "{what} holds {key}:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn provider_keys_reach_no_child_and_no_output() {
    let server = server();
    let mut lev = Lev::new().with_openai(&server.base_url());
    lev.env.push(("PROXY_KEY".into(), PROXY_KEY.into()));
    // A configured provider names its key variable: it is a secret too.
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        "providers:\n  proxy:\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\n    api_key_env: PROXY_KEY\n",
    )
    .unwrap();
    // A file the agent reads that holds the key (a `.env`).
    std::fs::write(
        lev.workspace().join(".env"),
        format!("OPENAI_API_KEY={KEY}\n"),
    )
    .unwrap();
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &["--allow-shell"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_key("the printed output", &out.stdout);
    assert_no_key("the error output", &out.stderr);
    let run = run_id_from(&stdout).unwrap();

    let show = lev.show(&run);
    // The child saw neither variable (printenv prints nothing for them)...
    let dump = show["outputs"]["dump"].as_str().unwrap();
    assert!(
        !dump.contains("OPENAI_API_KEY=") && !dump.contains("PROXY_KEY="),
        "{dump}"
    );
    assert!(dump.contains("PATH="), "{dump}");
    // ...unless the step set it itself.
    assert_eq!(show["outputs"]["own"], "step-own-value");
    // The model's echo of the key is redacted.
    assert_eq!(show["outputs"]["agent"], "the key is [redacted], done");

    // The tool result went to the model and the journal redacted: run_shell
    // saw no key in its environment, and the file's copy is replaced.
    let events = lev.events(&run);
    let tool = events
        .iter()
        .find(|e| e["type"] == "tool_finished")
        .expect("run_shell finished");
    let output = tool["output"].as_str().unwrap();
    assert!(output.contains("key=\n"), "{output}");
    assert!(output.contains("OPENAI_API_KEY=[redacted]"), "{output}");
    let second = &server.requests()[1];
    assert!(second.body.contains("[redacted]"), "{}", second.body);
    for (i, req) in server.requests().iter().enumerate() {
        assert_no_key(&format!("LLM request {i}"), req.body.as_bytes());
    }

    for args in [
        vec!["export", run.as_str()],
        vec!["export", run.as_str(), "--format", "md"],
        vec!["replay", run.as_str()],
        vec!["show", run.as_str()],
    ] {
        let out = lev.run(&args);
        assert!(out.status.success(), "{args:?}");
        assert_no_key(&format!("`lev {}`", args.join(" ")), &out.stdout);
    }
    let journal = std::fs::read(lev.data_dir().join("lev.redb")).unwrap();
    assert_no_key("the journal file", &journal);
    let logs = lev.data_dir().join("logs");
    for entry in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
        assert_no_key("the log", &std::fs::read(entry.path()).unwrap());
    }
}

/// The password of a PostgreSQL journal (in its URL, or `PGPASSWORD`) is a
/// secret like a provider key: a shell step does not inherit it (nor
/// `LEV_JOURNAL`, which holds it), and where it shows up anyway it is
/// `[redacted]` in what lev journals and prints.
#[test]
fn the_journal_password_reaches_no_child_and_no_output() {
    let Some(db) = support::pg::PgDb::new() else {
        return;
    };
    const PASSWORD: &str = "journal-pass-0123456789";
    const PG_PASSWORD: &str = "pg-env-pass-0123456789";
    // The test server trusts its socket: the password is carried, not checked.
    let url = format!("{} password={PASSWORD}", db.url);
    let lev = Lev::new()
        .with_env("LEV_JOURNAL", &url)
        .with_env("PGPASSWORD", PG_PASSWORD);
    let wf = lev.write_workflow(&format!(
        "version: 1\nkind: workflow\nid: pw\nname: Pw\nsteps:\n  dump:\n    type: shell\n    run: \"env; echo said {PASSWORD} and {PG_PASSWORD}\"\n"
    ));
    let out = lev.run_headless(&wf, &[]);
    assert!(out.status.success(), "{out:?}");
    let run = run_id_from(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let exported = lev.run(&["export", &run]);
    let shown = lev.run(&["show", &run, "--json"]);
    for (what, bytes) in [
        ("stdout", &out.stdout),
        ("stderr", &out.stderr),
        ("export", &exported.stdout),
        ("show", &shown.stdout),
    ] {
        let text = String::from_utf8_lossy(bytes);
        for secret in [PASSWORD, PG_PASSWORD] {
            assert!(!text.contains(secret), "{what} holds {secret}:\n{text}");
        }
        assert!(!text.contains("LEV_JOURNAL="), "{what}:\n{text}");
        assert!(!text.contains("PGPASSWORD="), "{what}:\n{text}");
    }
    let journaled = String::from_utf8_lossy(&exported.stdout);
    assert!(
        journaled.contains("said [redacted] and [redacted]"),
        "{journaled}"
    );
}
