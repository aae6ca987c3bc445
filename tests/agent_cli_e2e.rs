//! A real coding-agent CLI through a whole `pty` step, offline: aider, in
//! its interactive terminal UI, against the loopback LLM server. lev types
//! the step's prompt into it, aider sends it to the model and shows the
//! reply, and the step ends when aider's prompt is back (`done_when`).
//!
//! `scripts/test` installs aider once into a cache outside the clone and
//! points `LEV_TEST_AIDER` at it; without it the test is skipped, except
//! in CI, where it is required.

mod support;

use serde_json::json;
use support::lev::{Lev, of_type, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, Reply};

fn aider() -> Option<String> {
    let path = std::env::var("LEV_TEST_AIDER")
        .ok()
        .filter(|p| !p.is_empty());
    if path
        .as_deref()
        .is_some_and(|p| std::path::Path::new(p).exists())
    {
        return path;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "aider is required in CI (scripts/test installs it and sets LEV_TEST_AIDER)"
    );
    None
}

#[test]
fn aider_in_a_terminal_answers_the_typed_prompt_from_the_loopback_model() {
    let Some(aider) = aider() else {
        return;
    };
    const REPLY: &str = "The greeting module needs one function, greet(name).";
    let server = LlmServer::with(|req| {
        if req.path.contains("/chat/completions") {
            OpenAiSse::new("test-model")
                .text(REPLY, 4)
                .usage(120, 20)
                .finish("stop")
                .reply()
        } else {
            Reply::json(404, &json!({"error": {"message": "not here"}}))
        }
    });
    let lev = Lev::new();
    let home = lev.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let wf = lev.write_workflow(&format!(
        r#"version: 1
kind: workflow
id: aider-e2e
name: aider end to end
steps:
  plan:
    type: pty
    command: {aider}
    args: [--openai-api-base, "{base}/v1", --openai-api-key, sk-loopback, --model, openai/test-model,
           --no-git, --no-check-update, --analytics-disable, --no-show-release-notes,
           --no-auto-commits, --no-fancy-input, --no-pretty, --yes-always]
    env:
      HOME: "{home}"
      LITELLM_LOCAL_MODEL_COST_MAP: "True"
    prompt: "How should the greeting module be structured? Answer in one sentence."
    size: 120x40
    done_when: {{ pattern: 'greet\(name\)(.|\n)*\n> *$', idle: 2s }}
    timeout: 3m
"#,
        base = server.base_url(),
        home = home.display(),
    ));
    let out = lev.run_headless(&wf, &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The prompt lev typed reached the model through aider.
    let asked = server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/chat/completions"))
        .any(|r| {
            r.body
                .contains("How should the greeting module be structured?")
        });
    assert!(asked, "the model never got the typed prompt: {text}");
    // And aider showed the model's reply on its screen: the step's output.
    assert!(text.contains("done (its `done_when` rule held)"), "{text}");
    let run = run_id_from(&text).unwrap();
    let events = lev.events(&run);
    let succeeded = of_type(&events, "step_succeeded");
    let shown = succeeded[0]["outputs"]["text"].as_str().unwrap_or_default();
    assert!(shown.contains("greet(name)"), "{shown}");
}
