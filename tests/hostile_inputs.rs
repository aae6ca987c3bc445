//! Hostile inputs through the real `lev` binary: expressions too long or
//! too deep for the stack are refused by `validate` with a position, and
//! `run` refuses them before recording anything.

mod support;

use std::process::Output;

use support::lev::Lev;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A workflow whose one shell step runs `${{ <expr> }}` (on line 8).
fn workflow(expr: &str) -> String {
    format!(
        "version: 1\nkind: workflow\nid: hostile\nname: Hostile\nsteps:\n  a:\n    type: shell\n    run: \"echo ${{{{ {expr} }}}}\"\n"
    )
}

fn or_chain(n: usize) -> String {
    vec!["false"; n].join(" || ")
}

fn check_refused(lev: &Lev, expr: &str, message: &str) {
    let path = lev.dir.path().join("wf.yaml");
    std::fs::write(&path, workflow(expr)).unwrap();
    let out = lev.run(&["validate", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("wf.yaml:8:"), "no file:line:col in {err}");
    assert!(err.contains(message), "{message:?} not in {err}");

    let ws = lev.workspace().display().to_string();
    let out = lev.run(&[
        "run",
        path.to_str().unwrap(),
        "--headless",
        "--workspace",
        &ws,
    ]);
    let err = stderr(&out);
    assert!(!out.status.success(), "run accepted it: {err}");
    assert!(err.contains(message), "{message:?} not in {err}");
    let runs = lev.run(&["runs", "--json"]);
    assert!(
        String::from_utf8_lossy(&runs.stdout).trim().is_empty()
            || String::from_utf8_lossy(&runs.stdout).trim() == "[]",
        "a run was recorded: {}",
        String::from_utf8_lossy(&runs.stdout)
    );
}

#[test]
fn long_or_chains_are_refused_by_validate_and_run() {
    let lev = Lev::new();
    for n in [10_000, 50_000] {
        check_refused(&lev, &or_chain(n), "expression is too long");
    }
}

#[test]
fn deeply_nested_parentheses_are_refused_by_validate_and_run() {
    let lev = Lev::new();
    // 100,000 levels hit the token limit first; 1,000 the nesting limit.
    let n = 100_000;
    let expr = format!("{}true{}", "(".repeat(n), ")".repeat(n));
    check_refused(&lev, &expr, "expression is too long");
    let expr = format!("{}true", "!".repeat(n));
    check_refused(&lev, &expr, "expression is too long");
    let n = 1000;
    let expr = format!("{}true{}", "(".repeat(n), ")".repeat(n));
    check_refused(&lev, &expr, "nests too deeply");
    let expr = format!("{}true", "!".repeat(n));
    check_refused(&lev, &expr, "nests too deeply");
}

#[test]
fn a_long_chain_within_the_limits_runs() {
    let lev = Lev::new();
    let path = lev.dir.path().join("wf.yaml");
    std::fs::write(&path, workflow(&format!("{} || 'done'", or_chain(1500)))).unwrap();
    let out = lev.run(&["validate", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ws = lev.workspace().display().to_string();
    let out = lev.run(&[
        "run",
        path.to_str().unwrap(),
        "--headless",
        "--workspace",
        &ws,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_fifo_given_as_the_workflow_is_refused_without_blocking() {
    use std::os::unix::fs::OpenOptionsExt;
    use std::time::{Duration, Instant};

    let lev = Lev::new();
    let fifo = lev.dir.path().join("wf.yaml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut child = lev.spawn(&["validate", fifo.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            // Release a reader stuck in `open` so the failure is reported.
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(&fifo);
            let _ = child.kill();
            panic!("lev validate blocked on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
}
