//! `lev rm`, `lev prune` and `lev compact` with the real binary: what they
//! delete, what they keep (forks keep the blobs they share), what they
//! refuse, and that compaction gives the space back.

mod support;

use std::process::Output;

use support::lev::{Lev, run_id_from};

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A run whose shell step prints `lines` lines (its streams become blobs)
/// and then exits with `code`.
fn run_printing(lev: &Lev, name: &str, lines: usize, code: i32) -> String {
    let wf = lev.write_workflow(&format!(
        "version: 1\nkind: workflow\nid: {name}\nname: {name}\nsteps:\n  out:\n    type: shell\n    run: \"seq 1 {lines} | sed 's/$/ {name} padding padding padding padding/'; exit {code}\"\n"
    ));
    let out = lev.run_headless(&wf, &[]);
    run_id_from(&text(&out).0).unwrap_or_else(|| panic!("no run id: {:?}", text(&out)))
}

fn run_ids(lev: &Lev) -> Vec<String> {
    let out = lev.run(&["runs", "--json"]);
    text(&out)
        .0
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect()
}

fn journal_size(lev: &Lev) -> u64 {
    std::fs::metadata(lev.data_dir().join("lev.redb"))
        .unwrap()
        .len()
}

#[test]
fn rm_deletes_a_run_and_compacts_while_a_fork_keeps_what_it_shares() {
    let lev = Lev::new();
    let big = run_printing(&lev, "big", 200_000, 0);
    let other = run_printing(&lev, "other", 10, 0);
    let fork = lev.run(&[
        "fork",
        &other,
        "--from",
        "out",
        "--headless",
        "--workspace",
        &lev.workspace().display().to_string(),
    ]);
    assert!(fork.status.success(), "{:?}", text(&fork));
    let fork_id = run_id_from(&text(&fork).0).unwrap();
    let before = journal_size(&lev);

    let out = lev.run(&["rm", &big, &other]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(
        text(&out).0.contains("deleted 2 run(s)"),
        "{:?}",
        text(&out)
    );
    assert_eq!(run_ids(&lev), vec![fork_id.clone()]);
    // The space went back to the disk: the big run's output was most of it.
    let after = journal_size(&lev);
    assert!(after < before / 2, "{before} → {after}");
    // The fork is whole: every record and blob it needs is there.
    let doctor = lev.run(&["doctor"]);
    assert!(doctor.status.success(), "{:?}", text(&doctor));
    let replay = lev.run(&["replay", &fork_id]);
    assert!(replay.status.success(), "{:?}", text(&replay));
    let show = lev.show(&fork_id);
    assert_eq!(show["status"], "succeeded", "{show}");
}

#[test]
fn rm_refuses_unknown_and_unfinished_runs_and_deletes_nothing() {
    let lev = Lev::new();
    let done = run_printing(&lev, "done", 3, 0);
    let out = lev.run(&["rm", &done, "nope"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("no run nope"), "{:?}", text(&out));
    assert_eq!(run_ids(&lev), vec![done.clone()]);

    // A run left running (killed before it ended) could be resumed.
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: slow\nname: Slow\nsteps:\n  wait:\n    type: shell\n    idempotent: true\n    run: sleep 30\n",
    );
    let mut child = lev.spawn_headless(&wf, &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let unfinished = loop {
        let ids = run_ids(&lev);
        if let Some(id) = ids.iter().find(|id| **id != done) {
            break id.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    support::kill::kill9(&mut child);
    let out = lev.run(&["rm", &unfinished]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("--force"), "{:?}", text(&out));
    assert_eq!(run_ids(&lev).len(), 2);
    let out = lev.run(&["rm", "--force", &unfinished]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(run_ids(&lev), vec![done]);
}

#[test]
fn prune_deletes_finished_runs_and_can_keep_the_failed_ones() {
    let lev = Lev::new();
    let ok = run_printing(&lev, "ok", 3, 0);
    let failed = run_printing(&lev, "failed", 3, 1);
    let dry = lev.run(&["prune", "--older-than", "0s", "--dry-run"]);
    assert!(
        text(&dry).0.contains("2 run(s) would be deleted"),
        "{:?}",
        text(&dry)
    );
    assert_eq!(run_ids(&lev).len(), 2, "a dry run deletes nothing");
    let out = lev.run(&["prune", "--older-than", "0s", "--keep-failed"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(run_ids(&lev), vec![failed.clone()]);
    assert!(!run_ids(&lev).contains(&ok));
    let out = lev.run(&["prune", "--older-than", "30d"]);
    assert!(
        text(&out).0.contains("no run to delete"),
        "{:?}",
        text(&out)
    );
    let bad = lev.run(&["prune", "--older-than", "soon"]);
    assert_eq!(bad.status.code(), Some(2), "{:?}", text(&bad));
}
