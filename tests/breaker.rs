//! Step retries and the circuit breaker, end to end: the real `lev` binary,
//! a `lev.yaml` in the workspace and loopback LLM servers. A retry that
//! finds the endpoint's breaker open waits for the half-open probe (and
//! says so in the journal) instead of failing against it; a fallback takes
//! the retry when there is one; a cancel ends the wait.

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, Reply, openai_error};

const KEY: &str = "sk-test-BREAKER-0123456789";

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn sandbox(config: &str) -> Lev {
    let mut lev = Lev::new();
    std::fs::write(lev.workspace().join("lev.yaml"), config).unwrap();
    lev.env.push(("LEV_TEST_KEY".into(), KEY.into()));
    lev
}

fn args(lev: &Lev, yaml: &str) -> (String, String) {
    let path = lev.dir.path().join("wf.yaml");
    std::fs::write(&path, yaml).unwrap();
    (
        path.to_str().unwrap().to_string(),
        lev.workspace().display().to_string(),
    )
}

fn run_yaml(lev: &Lev, yaml: &str) -> (Output, String) {
    let (path, ws) = args(lev, yaml);
    let out = lev.run(&["run", &path, "--headless", "--workspace", &ws]);
    let run = run_id_from(&String::from_utf8_lossy(&out.stdout)).unwrap_or_default();
    (out, run)
}

fn answer(model: &str, text: &str) -> Reply {
    OpenAiSse::new(model)
        .text(text, 2)
        .usage(10, 3)
        .finish("stop")
        .reply()
}

/// Fails the first `failing` requests with a 500, then answers.
fn failing_first(failing: usize, model: &'static str) -> LlmServer {
    LlmServer::with(move |req| {
        if req.seq < failing {
            openai_error(500, "server_error", "down for now")
        } else {
            answer(model, &format!("answer from {model}"))
        }
    })
}

fn provider(name: &str, server: &LlmServer, model: &str) -> String {
    format!(
        "  {name}: {{ kind: openai, base_url: \"{}/v1\", model: {model}, api_key_env: LEV_TEST_KEY }}\n",
        server.base_url()
    )
}

/// Two tries per call; the breaker opens after two failures in a row.
fn config(providers: &str, fallback: bool, cooldown_ms: u64) -> String {
    format!(
        "provider: main\nproviders:\n{providers}{}\
         retry: {{ max_attempts: 2, initial_delay_ms: 1, max_delay_ms: 2 }}\n\
         breaker: {{ consecutive_failures: 2, cooldown_ms: {cooldown_ms} }}\n",
        if fallback {
            "fallback: { provider: backup }\n"
        } else {
            ""
        }
    )
}

/// One agent step with two attempts.
const ONE_STEP: &str = r#"
version: 1
kind: workflow
id: one
name: One agent
steps:
  ask:
    mode: ask
    prompt: A question.
    retry: { max_attempts: 2, backoff: fixed, initial_delay: 10ms }
outputs:
  text: ${{ steps.ask.outputs.text }}
"#;

fn of_type<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == ty).collect()
}

fn is_wait(e: &Value) -> bool {
    e["type"] == "provider_breaker" && e["reason"].as_str().unwrap_or("").contains("waiting")
}

#[test]
fn a_step_retry_waits_for_the_half_open_probe_instead_of_failing_against_the_open_breaker() {
    let server = failing_first(2, "m");
    let lev = sandbox(&config(&provider("main", &server, "m"), false, 1_500));
    let (out, run) = run_yaml(&lev, ONE_STEP);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(lev.show(&run)["outputs"]["text"], "answer from m");
    // Attempt 1 sent two requests, which opened the breaker; attempt 2
    // waited for the cooldown and its probe was the third and last request.
    assert_eq!(server.request_count(), 3);

    let events = lev.events(&run);
    let failed = of_type(&events, "step_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["attempt"], 1);
    let replied = of_type(&events, "llm_replied");
    assert_eq!(replied.len(), 1);
    assert_eq!(replied[0]["attempt"], 2);

    let endpoint = format!("openai@{}/v1", server.base_url());
    let breaker: Vec<(&str, bool)> = of_type(&events, "provider_breaker")
        .into_iter()
        .map(|e| {
            assert_eq!(e["endpoint"], endpoint.as_str(), "{e}");
            assert_eq!(e["step"], "ask", "{e}");
            (e["state"].as_str().unwrap(), is_wait(e))
        })
        .collect();
    assert_eq!(
        breaker,
        vec![
            ("open", false),
            ("open", true),
            ("half_open", false),
            ("closed", false)
        ]
    );
    let wait = events.iter().find(|e| is_wait(e)).unwrap();
    let reason = wait["reason"].as_str().unwrap();
    assert!(
        reason.contains("attempt 2") && reason.contains("not used up"),
        "{reason}"
    );
    assert!(wait["until"].as_u64().unwrap() > wait["at"].as_u64().unwrap());
    // The wait is visible live and in replay.
    let line = format!("! provider {endpoint} breaker open (during step ask): attempt 2 waiting");
    assert!(stdout.contains(&line), "{stdout}");
    assert!(lev.replay(&run).contains(&line));
}

#[test]
fn when_both_breakers_are_open_the_retry_waits_for_the_first_to_let_a_probe_through() {
    let primary = failing_first(2, "main-model");
    let backup = failing_first(2, "backup-model");
    let providers = format!(
        "{}{}",
        provider("main", &primary, "main-model"),
        provider("backup", &backup, "backup-model")
    );
    let lev = sandbox(&config(&providers, true, 1_500));
    let (out, run) = run_yaml(&lev, ONE_STEP);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Attempt 1 failed at both endpoints (two requests each, both breakers
    // open); attempt 2 waited, and the primary's probe answered.
    assert_eq!(primary.request_count(), 3);
    assert_eq!(backup.request_count(), 2);
    assert_eq!(lev.show(&run)["outputs"]["text"], "answer from main-model");
    let events = lev.events(&run);
    assert_eq!(of_type(&events, "step_failed").len(), 1);
    let waits: Vec<&Value> = events.iter().filter(|e| is_wait(e)).collect();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert_eq!(
        waits[0]["endpoint"],
        format!("openai@{}/v1", primary.base_url()).as_str()
    );
}

#[test]
fn a_step_retry_goes_to_the_fallback_while_the_primary_breaker_is_open() {
    let primary = LlmServer::with(|_| openai_error(500, "server_error", "the primary is down"));
    // The backup's first answer breaks the step's schema; its second is fine.
    let backup = LlmServer::with(|req| {
        if req.seq == 0 {
            answer("backup-model", r#"{"wrong": true}"#)
        } else {
            answer("backup-model", r#"{"answer": "yes"}"#)
        }
    });
    let providers = format!(
        "{}{}",
        provider("main", &primary, "main-model"),
        provider("backup", &backup, "backup-model")
    );
    // The primary's breaker stays open for the whole test.
    let lev = sandbox(&config(&providers, true, 600_000));
    let yaml = r#"
version: 1
kind: workflow
id: schema
name: Schema
steps:
  ask:
    mode: ask
    prompt: Answer in JSON.
    max_turns: 1
    output_schema: { type: object, required: [answer] }
    retry: { max_attempts: 2, backoff: fixed, initial_delay: 10ms }
    outputs:
      answer: { from: json.answer }
outputs:
  answer: ${{ steps.ask.outputs.answer }}
"#;
    let (out, run) = run_yaml(&lev, yaml);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(lev.show(&run)["outputs"]["answer"], "yes");
    // Attempt 1 opened the primary's breaker; the retry went straight to
    // the fallback, with no wait and no request to the primary.
    assert_eq!(primary.request_count(), 2);
    assert_eq!(backup.request_count(), 2);
    let events = lev.events(&run);
    assert_eq!(of_type(&events, "step_failed").len(), 1);
    assert!(!events.iter().any(is_wait), "{events:?}");
    for r in of_type(&events, "llm_replied") {
        assert_eq!(r["model"], "backup-model", "{r}");
    }
}

#[test]
fn a_cancel_ends_the_wait_for_the_breaker() {
    let server = LlmServer::with(|_| openai_error(500, "server_error", "down"));
    let lev = sandbox(&config(&provider("main", &server, "m"), false, 600_000));
    let (path, ws) = args(&lev, ONE_STEP);
    let mut child = lev.spawn(&["run", &path, "--headless", "--workspace", &ws]);

    // Wait (with a deadline) until attempt 2 journals its wait.
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        let out = lev.run(&["runs", "--json"]);
        let first = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .and_then(|l| serde_json::from_str::<Value>(l).ok());
        if let Some(run) = first.and_then(|v| v["id"].as_str().map(str::to_string))
            && lev.events(&run).iter().any(is_wait)
        {
            break run;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the step never waited for the breaker");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let cancel = lev.run(&["cancel", &run]);
    assert!(cancel.status.success(), "{:?}", text(&cancel));

    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lev did not end after the cancel: it hangs in the breaker wait");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let show = lev.show(&run);
    assert_eq!(show["status"], "cancelled");
    // Nothing was sent while the breaker was open.
    assert_eq!(server.request_count(), 2);
}
