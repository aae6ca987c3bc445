//! A step's retries wait for an open circuit breaker's half-open probe
//! instead of failing fast against it: an attempt is spent only by a real
//! request that failed. The real `lev` binary and a loopback server that
//! fails its first requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, openai_error};

/// Fails the first `failures` requests with a 500, then answers.
fn failing_first(failures: usize) -> LlmServer {
    let seen = Arc::new(AtomicUsize::new(0));
    LlmServer::with(move |_| {
        if seen.fetch_add(1, Ordering::SeqCst) < failures {
            openai_error(500, "server_error", "temporarily broken")
        } else {
            OpenAiSse::new("test-model")
                .text("recovered", 2)
                .finish("stop")
                .reply()
        }
    })
}

const WORKFLOW: &str = "version: 1\nkind: workflow\nid: flaky\nsteps:\n  ask:\n    mode: ask\n    prompt: Answer.\n    retry: { max_attempts: 3, initial_delay: 10ms, max_delay: 10ms }\n";

#[test]
fn retries_wait_for_the_breakers_probe_instead_of_burning_attempts() {
    let server = failing_first(2);
    let lev = Lev::new().with_openai(&server.base_url());
    // One request per attempt; two failures in a row open the breaker.
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        "retry: { max_attempts: 1 }\nbreaker: { consecutive_failures: 2, cooldown_ms: 400 }\n",
    )
    .unwrap();
    let wf = lev.dir.path().join("wf.yaml");
    std::fs::write(&wf, WORKFLOW).unwrap();
    let ws = lev.workspace().display().to_string();
    let out = lev.run(&[
        "run",
        wf.to_str().unwrap(),
        "--headless",
        "--workspace",
        &ws,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the third attempt must wait for the probe and succeed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two real failures, then the probe that succeeded: no attempt was
    // spent against the open breaker.
    assert_eq!(server.request_count(), 3);
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);
    let failed = events.iter().filter(|e| e["type"] == "step_failed").count();
    assert_eq!(failed, 2, "{events:#?}");
    let phases: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "provider_breaker")
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["open", "half_open", "closed"]);
}
