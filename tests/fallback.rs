//! Provider profiles and the fallback provider, end to end: the real `lev`
//! binary, a `lev.yaml` in the workspace, and loopback LLM servers. A
//! primary that fails every time opens its breaker (journaled as
//! `provider_breaker`), gets no more requests while it is open, and the
//! run completes through the fallback; a mode naming a provider talks to
//! that one, and a mode naming an unknown one fails its step clearly.

mod support;

use std::process::Output;

use serde_json::Value;
use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, openai_error};

const KEY: &str = "sk-test-FALLBACK-0123456789";

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A sandbox whose `lev.yaml` is `config`, with the key the providers use.
fn sandbox(config: &str) -> Lev {
    let mut lev = Lev::new();
    std::fs::write(lev.workspace().join("lev.yaml"), config).unwrap();
    lev.env.push(("LEV_TEST_KEY".into(), KEY.into()));
    lev
}

fn run_yaml(lev: &Lev, yaml: &str) -> (Output, String) {
    let path = lev.dir.path().join("wf.yaml");
    std::fs::write(&path, yaml).unwrap();
    let ws = lev.workspace().display().to_string();
    let out = lev.run(&[
        "run",
        path.to_str().unwrap(),
        "--headless",
        "--workspace",
        &ws,
    ]);
    let run = run_id_from(&String::from_utf8_lossy(&out.stdout)).unwrap_or_default();
    (out, run)
}

/// A server that answers every request with `model` and a short text.
fn answering(model: &'static str) -> LlmServer {
    LlmServer::with(move |_| {
        OpenAiSse::new(model)
            .text(&format!("answer from {model}"), 2)
            .usage(12, 4)
            .finish("stop")
            .reply()
    })
}

fn provider(name: &str, server: &LlmServer, model: &str) -> String {
    format!(
        "  {name}: {{ kind: openai, base_url: \"{}/v1\", model: {model}, api_key_env: LEV_TEST_KEY }}\n",
        server.base_url()
    )
}

const THREE_STEPS: &str = r#"
version: 1
kind: workflow
id: three
name: Three agents
steps:
  first:
    mode: ask
    prompt: First question.
  second:
    mode: ask
    needs: [first]
    prompt: Second question.
  third:
    mode: ask
    needs: [second]
    prompt: Third question.
outputs:
  last: ${{ steps.third.outputs.text }}
"#;

fn of_type<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == ty).collect()
}

#[test]
fn a_failing_provider_opens_its_breaker_and_the_run_completes_through_the_fallback() {
    let primary = LlmServer::with(|_| openai_error(500, "server_error", "the primary is down"));
    let backup = answering("fallback-model");
    let config = format!(
        "provider: main\nproviders:\n{}{}fallback: {{ provider: backup }}\n\
         retry: {{ max_attempts: 2, initial_delay_ms: 1, max_delay_ms: 2 }}\n\
         breaker: {{ consecutive_failures: 2, cooldown_ms: 600000 }}\n",
        provider("main", &primary, "main-model"),
        provider("backup", &backup, "fallback-model"),
    );
    let lev = sandbox(&config);
    let (out, run) = run_yaml(&lev, THREE_STEPS);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    // Two attempts (the retry) opened the primary's breaker; while it was
    // open, the primary got nothing more.
    assert_eq!(primary.request_count(), 2);
    assert_eq!(backup.request_count(), 3);
    for r in backup.requests() {
        assert_eq!(r.json.as_ref().unwrap()["model"], "fallback-model");
        assert_eq!(r.header("authorization"), Some(&*format!("Bearer {KEY}")));
    }

    let events = lev.events(&run);
    let breakers = of_type(&events, "provider_breaker");
    assert_eq!(breakers.len(), 1, "{breakers:?}");
    let open = breakers[0];
    let endpoint = format!("openai@{}/v1", primary.base_url());
    assert_eq!(open["endpoint"], endpoint.as_str());
    assert_eq!(open["state"], "open");
    assert_eq!(open["failures"], 2);
    assert_eq!(open["step"], "first");
    assert!(
        open["reason"].as_str().unwrap().contains("HTTP 500"),
        "{open}"
    );
    assert!(open["until"].as_u64().unwrap() > open["at"].as_u64().unwrap());

    let replies = of_type(&events, "llm_replied");
    assert_eq!(replies.len(), 3);
    for r in &replies {
        assert_eq!(r["model"], "fallback-model", "{r}");
        assert!(r["_seq"].as_u64() > open["_seq"].as_u64());
    }
    assert_eq!(
        lev.show(&run)["outputs"]["last"],
        "answer from fallback-model"
    );

    // The transcript says it, live and in replay; no key anywhere.
    let line = format!("! provider {endpoint} breaker open (during step first): 2 failures");
    assert!(stdout.contains(&line), "{stdout}");
    assert!(lev.replay(&run).contains(&line));
    let export = lev.run(&["export", &run]);
    assert!(!String::from_utf8_lossy(&export.stdout).contains(KEY));
}

#[test]
fn a_mode_talks_to_the_provider_it_names() {
    let main = answering("main-model");
    let local = answering("local-model");
    let config = format!(
        "provider: main\nproviders:\n{}{}",
        provider("main", &main, "main-model"),
        provider("local", &local, "local-model"),
    );
    let lev = sandbox(&config);
    let modes = lev.workspace().join(".lev/modes");
    std::fs::create_dir_all(&modes).unwrap();
    std::fs::write(
        modes.join("local-ask.yaml"),
        "version: 1\nkind: mode\nid: local-ask\nname: Local ask\nrole: Answer briefly.\nmodel: { provider: local }\n",
    )
    .unwrap();
    let (out, run) = run_yaml(
        &lev,
        "version: 1\nkind: workflow\nid: two\nname: Two\nsteps:\n  remote:\n    mode: ask\n    prompt: Hi.\n  nearby:\n    mode: local-ask\n    prompt: Hi.\n",
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(main.request_count(), 1);
    assert_eq!(local.request_count(), 1);
    assert_eq!(
        local.requests()[0].json.as_ref().unwrap()["model"],
        "local-model"
    );
    let events = lev.events(&run);
    let model_of = |step: &str| {
        of_type(&events, "llm_replied")
            .into_iter()
            .find(|e| e["step"] == step)
            .map(|e| e["model"].clone())
    };
    assert_eq!(model_of("remote"), Some("main-model".into()));
    assert_eq!(model_of("nearby"), Some("local-model".into()));
    assert!(of_type(&events, "provider_breaker").is_empty());
}

#[test]
fn a_mode_naming_an_unknown_provider_fails_its_step_clearly() {
    let main = answering("main-model");
    let config = format!(
        "provider: main\nproviders:\n{}",
        provider("main", &main, "m")
    );
    let lev = sandbox(&config);
    let modes = lev.workspace().join(".lev/modes");
    std::fs::create_dir_all(&modes).unwrap();
    std::fs::write(
        modes.join("cloud-ask.yaml"),
        "version: 1\nkind: mode\nid: cloud-ask\nname: Cloud ask\nrole: Answer.\nmodel: { provider: cloud }\n",
    )
    .unwrap();
    let (out, run) = run_yaml(
        &lev,
        "version: 1\nkind: workflow\nid: one\nname: One\nsteps:\n  s:\n    mode: cloud-ask\n    prompt: Hi.\n",
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let error = lev.show(&run)["error"].as_str().unwrap().to_string();
    for needle in [
        "mode `cloud-ask` names the provider `cloud`",
        "no provider named `cloud`",
        "known: main",
    ] {
        assert!(error.contains(needle), "missing `{needle}` in: {error}");
    }
    assert_eq!(main.request_count(), 0);
}

#[test]
fn a_primary_out_of_quota_hands_the_request_to_the_fallback_without_retrying() {
    let primary = LlmServer::with(|_| {
        openai_error(
            429,
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details.",
        )
    });
    let backup = answering("fallback-model");
    let config = format!(
        "provider: main\nproviders:\n{}{}fallback: {{ provider: backup }}\n\
         retry: {{ max_attempts: 3, initial_delay_ms: 1, max_delay_ms: 2 }}\n",
        provider("main", &primary, "main-model"),
        provider("backup", &backup, "fallback-model"),
    );
    let lev = sandbox(&config);
    let one = "version: 1\nkind: workflow\nid: one\nname: One\nsteps:\n  only:\n    mode: ask\n    prompt: A question.\n";
    let (out, _) = run_yaml(&lev, one);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // A quota error is not retried at the primary; the fallback answers.
    assert_eq!(primary.request_count(), 1);
    assert_eq!(backup.request_count(), 1);
}
