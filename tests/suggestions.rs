//! Proactive suggestions across runs, as `lev runs` shows them: a timeout
//! hit again and again, a step that keeps failing, and nothing once the
//! step is fixed.

mod support;

use support::lev::{Lev, run_id_from};

const SLOW: &str = "version: 1\nkind: workflow\nid: nightly\nname: Nightly\nsteps:\n  fetch:\n    type: shell\n    run: sleep 30\n    timeout: 1s\n";
const LINT: &str = "version: 1\nkind: workflow\nid: lint\nname: Lint\nsteps:\n  lint:\n    type: shell\n    run: \"echo 'style: 3 problems' >&2; exit 4\"\n";
const LINT_FIXED: &str = "version: 1\nkind: workflow\nid: lint\nname: Lint\nsteps:\n  lint:\n    type: shell\n    run: echo clean\n";

fn runs(lev: &Lev) -> String {
    let out = lev.run(&["runs"]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn lev_runs_suggests_raising_a_timeout_hit_twice_and_looking_at_a_step_failing_again() {
    let lev = Lev::new();
    let slow = lev.write_workflow(SLOW);
    let once = lev.run_headless(&slow, &[]);
    assert!(!once.status.success());
    // Once is not a pattern.
    assert!(!runs(&lev).contains("Suggestions:"), "{}", runs(&lev));
    let twice = lev.run_headless(&slow, &[]);
    assert!(!twice.status.success());
    assert!(run_id_from(&String::from_utf8_lossy(&twice.stdout)).is_some());
    let listed = runs(&lev);
    assert!(listed.contains("\nSuggestions:\n"), "{listed}");
    assert!(
        listed.contains("step `fetch` of nightly timed out in 2 of its last 2 runs"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("raise its `timeout:` in {}", slow.display())),
        "{listed}"
    );

    let lint = lev.dir.path().join("lint.yaml");
    std::fs::write(&lint, LINT).unwrap();
    for _ in 0..2 {
        assert!(!lev.run_headless(&lint, &[]).status.success());
    }
    let listed = runs(&lev);
    assert!(
        listed.contains("step `lint` of lint failed in 2 of its last 2 runs, last with:"),
        "{listed}"
    );
    // The newest lint run is the one to look at.
    let lint_run = listed
        .lines()
        .find(|l| l.contains(" lint ") && l.contains("failed"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(
        listed.contains(&format!("\n      lev show {lint_run}\n")),
        "{listed}"
    );
    assert!(listed.contains("style: 3 problems"), "{listed}");

    // Fixed: its suggestion goes; the timeout's stays.
    std::fs::write(&lint, LINT_FIXED).unwrap();
    assert!(lev.run_headless(&lint, &[]).status.success());
    let listed = runs(&lev);
    assert!(!listed.contains("step `lint`"), "{listed}");
    assert!(listed.contains("step `fetch`"), "{listed}");
}
