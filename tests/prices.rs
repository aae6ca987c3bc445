//! Cost budgets work without a price table in the config: lev ships prices
//! for the common models, so `max_cost_usd` stops a run on a real OpenAI
//! reply's usage; a model with no price is said once per run (journaled,
//! printed, replayed) instead of silently counting as free.

mod support;

use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

fn workflow(budget: &str) -> String {
    format!(
        r#"
version: 1
kind: workflow
id: priced
name: Priced
limits:
  max_cost_usd: {budget}
steps:
  first:
    mode: ask
    prompt: One.
  second:
    needs: [first]
    mode: ask
    prompt: Two.
  third:
    needs: [second]
    mode: ask
    prompt: Three.
"#
    )
}

/// Every reply: `model`, 400,000 input and 100,000 output tokens.
fn server(model: &'static str) -> LlmServer {
    LlmServer::with(move |_req: &RecordedRequest| {
        OpenAiSse::new(model)
            .text("done", 2)
            .usage(400_000, 100_000)
            .finish("stop")
            .reply()
    })
}

fn kinds(lev: &Lev, run: &str, kind: &str) -> Vec<serde_json::Value> {
    lev.events(run)
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

#[test]
fn a_shipped_price_makes_the_cost_budget_stop_the_run() {
    // gpt-4o-mini: $0.15 in, $0.60 out per million: $0.12 a reply.
    let server = server("gpt-4o-mini-2024-07-18");
    let mut lev = Lev::new().with_openai(&server.base_url());
    lev.env.retain(|(k, _)| k != "LEV_MODEL");
    lev.env.push(("LEV_MODEL".into(), "gpt-4o-mini".into()));
    let wf = lev.write_workflow(&workflow("0.2"));
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let tripped = kinds(&lev, &run, "guard_tripped");
    assert_eq!(tripped.len(), 1, "{tripped:?}");
    assert_eq!(tripped[0]["guard"], "max_cost_usd");
    assert_eq!(tripped[0]["step"], "second");
    assert!(kinds(&lev, &run, "price_unknown").is_empty());
    // The third step never asked the model.
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_model_without_a_price_is_said_once_and_counts_as_free() {
    let server = server("my-local-finetune");
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(&workflow("0.01"));
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = run_id_from(&stdout).unwrap();
    let said = kinds(&lev, &run, "price_unknown");
    assert_eq!(said.len(), 1, "three replies, one notice: {said:?}");
    assert_eq!(said[0]["model"], "my-local-finetune");
    assert_eq!(said[0]["step"], "first");
    let line = "no price known for model my-local-finetune";
    assert!(stdout.contains(line), "{stdout}");
    assert!(lev.replay(&run).contains(line));
}

#[test]
fn a_price_in_the_config_wins_over_the_shipped_one() {
    let server = server("gpt-4o-mini");
    let mut lev = Lev::new().with_openai(&server.base_url());
    lev.env.retain(|(k, _)| k != "LEV_MODEL");
    lev.env.push(("LEV_MODEL".into(), "gpt-4o-mini".into()));
    // Ten times the shipped price: the first reply already costs $1.20.
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        "prices:\n  gpt-4o-mini: { input_per_mtok: 1.5, output_per_mtok: 6 }\n",
    )
    .unwrap();
    let wf = lev.write_workflow(&workflow("1"));
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{stdout}");
    let run = run_id_from(&stdout).unwrap();
    let tripped = kinds(&lev, &run, "guard_tripped");
    assert_eq!(tripped.len(), 1, "{tripped:?}");
    assert_eq!(tripped[0]["step"], "first");
    assert_eq!(tripped[0]["observed"], "1.2000");
}
