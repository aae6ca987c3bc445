//! `lev worker` processes for tests on a PostgreSQL journal, and reading
//! what they did: killed when a test ends, passed or not (a worker left
//! behind would go on claiming from a dropped database).

use std::collections::BTreeMap;
use std::process::{Child, Output};

use serde_json::Value;

use super::lev::{Lev, of_type};

/// Short leases: a dead worker's runs are taken over within seconds.
pub const LEASE: &str = "2s";

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A `lev worker` that is killed when the test ends, passed or not (a
/// worker left behind would go on claiming from a dropped database).
pub struct Worker(pub Option<Child>);

impl Worker {
    pub fn child(&mut self) -> &mut Child {
        self.0
            .as_mut()
            .expect("the worker is there until the test ends")
    }

    /// The process itself, no longer killed at the end.
    pub fn into_child(mut self) -> Child {
        self.0
            .take()
            .expect("the worker is there until the test ends")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn worker(lev: &Lev) -> Worker {
    worker_with(lev, &[])
}

/// A worker with two slots and `extra` arguments (`--modes …`).
pub fn worker_with(lev: &Lev, extra: &[&str]) -> Worker {
    let ws = lev.workspace().display().to_string();
    let mut args = vec![
        "worker",
        "--lease",
        LEASE,
        "--slots",
        "2",
        "--yes",
        "--workspace",
        &ws,
    ];
    args.extend_from_slice(extra);
    Worker(Some(lev.spawn(&args)))
}

/// A worker that leaves questions without a default to `lev answer`.
pub fn waiting_worker(lev: &Lev) -> Worker {
    let ws = lev.workspace().display().to_string();
    let args = [
        "worker",
        "--lease",
        LEASE,
        "--wait-for-answers",
        "--workspace",
        &ws,
    ];
    Worker(Some(lev.spawn(&args)))
}

/// `lev run --detach`: the printed id.
pub fn submit(lev: &Lev, args: &[&str]) -> String {
    let out = lev.run(args);
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(id.len(), 26, "a run id: {}", text(&out));
    id
}

/// Statuses of every run, by id (`lev runs --json`).
pub fn statuses(lev: &Lev) -> BTreeMap<String, Value> {
    let out = lev.run(&["runs", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["id"].as_str().unwrap().to_owned(), v))
        .collect()
}

/// Every step's outputs, by step, as its success journaled them.
pub fn step_outputs(events: &[Value]) -> BTreeMap<String, Value> {
    of_type(events, "step_succeeded")
        .into_iter()
        .map(|e| (e["step"].as_str().unwrap().to_owned(), e["outputs"].clone()))
        .collect()
}

/// How many times each step was journaled as succeeded.
pub fn successes(events: &[Value]) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for e in of_type(events, "step_succeeded") {
        *n.entry(e["step"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    n
}
