//! The real `lev` binary with its journal on PostgreSQL (`--journal URL`,
//! `LEV_JOURNAL`, the config's `journal: { url }`): a workflow with a shell step, a question and an agent
//! step runs to success, `lev runs`, `show`, `replay` and `export` read it
//! back, an export imports into a redb data dir with the same replay, and
//! a run killed mid-way resumes and finishes; the memory bank, `lev doctor`,
//! `lev rm`, `lev prune` and `lev compact` work there; and the same over
//! TLS, verified (`sslmode=verify-full`). Each test in a database of
//! its own on the server `LEV_TEST_POSTGRES` names (skipped without it,
//! unless `CI` is set).

mod support;

use std::time::Duration;

use serde_json::Value;
use support::kill::{kill9, wait_for};
use support::lev::{Lev, run_id_from};
use support::pg::PgDb;

const WORKFLOW: &str = r#"
version: 1
kind: workflow
id: pgflow
name: On PostgreSQL
steps:
  hello:
    type: shell
    run: echo hello from shell
  pick:
    needs: [hello]
    type: question
    ask: "Which color?"
    default: blue
  think:
    needs: [pick]
    type: agent
    mode: ask
    prompt: "Say something about ${{ steps.pick.outputs.answer }}"
outputs:
  color: ${{ steps.pick.outputs.answer }}
  greeting: ${{ steps.hello.outputs.stdout }}
  said: ${{ steps.think.outputs.text }}
"#;

/// The scripted provider's replies, found beside the workflow.
const CASSETTE: &str = "replies:\n  - text: \"Red is a fine color.\"\n    repeat: true\n";

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn step<'a>(show: &'a Value, name: &str) -> &'a Value {
    show["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {show}"))
}

#[test]
fn a_workflow_runs_on_postgres_and_reads_back_as_on_redb() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let wf = lev.write_workflow(WORKFLOW);
    std::fs::write(lev.dir.path().join("wf.cassette.yaml"), CASSETTE).unwrap();
    let out = lev.run_headless(&wf, &["--answer", "pick=red"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("wf.cassette.yaml"), "{stderr}");
    let run = run_id_from(&stdout).unwrap();
    // Nothing of the run went to the data dir's file.
    assert!(!lev.data_dir().join("lev.redb").exists());

    let out = lev.run(&["runs"]);
    let (runs, _) = text(&out);
    assert!(out.status.success());
    assert!(
        runs.lines()
            .any(|l| l.starts_with(&run) && l.contains("succeeded")),
        "{runs}"
    );
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    assert_eq!(show["outputs"]["color"], "red");
    assert_eq!(show["outputs"]["greeting"], "hello from shell");
    assert_eq!(show["outputs"]["said"], "Red is a fine color.");
    for name in ["hello", "pick", "think"] {
        assert_eq!(step(&show, name)["status"], "succeeded", "{show}");
    }
    let replay = lev.replay(&run);
    assert!(replay.contains("= pick: red"), "{replay}");
    assert!(replay.contains("Red is a fine color."), "{replay}");

    // `--journal` says the same as the variable.
    let by_flag = Lev::new();
    let out = by_flag.run(&["--journal", &db.url, "replay", &run, "--headless"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(text(&out).0, replay);
    // And so does the config's `journal: { url }`.
    let by_config = Lev::new();
    let config = by_config.dir.path().join("config").join("lev");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.yaml"),
        format!(
            "journal:\n  url: {}\n",
            serde_json::to_string(&db.url).unwrap()
        ),
    )
    .unwrap();
    assert_eq!(by_config.replay(&run), replay);
    // A path is no URL: said so, not taken for a server.
    let out = by_flag.run(&["--journal", "/tmp/lev.redb", "runs"]);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("takes a PostgreSQL URL"),
        "{}",
        text(&out).1
    );

    // Exported from PostgreSQL, imported into a redb data dir: the same run.
    let out = lev.run(&["export", &run]);
    assert!(out.status.success(), "{}", text(&out).1);
    let file = lev.dir.path().join("run.jsonl");
    std::fs::write(&file, &out.stdout).unwrap();
    let redb = Lev::new();
    let out = redb.run(&["import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(redb.data_dir().join("lev.redb").exists());
    assert_eq!(redb.replay(&run), replay);
    assert_eq!(redb.show(&run), show);

    // And back: exported from redb, imported into another PostgreSQL
    // database, it is the same run, byte for byte in its export.
    let from_redb = redb.run(&["export", &run]);
    assert!(from_redb.status.success(), "{}", text(&from_redb).1);
    assert_eq!(from_redb.stdout, exported(&lev, &run));
    let Some(other) = PgDb::new() else {
        return;
    };
    let back = Lev::new().with_env("LEV_JOURNAL", &other.url);
    let file = back.dir.path().join("run.jsonl");
    std::fs::write(&file, &from_redb.stdout).unwrap();
    let out = back.run(&["import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(!back.data_dir().join("lev.redb").exists());
    assert_eq!(back.replay(&run), replay);
    assert_eq!(back.show(&run), show);
    assert_eq!(exported(&back, &run), from_redb.stdout);
}

/// `lev export RUN` from `lev`'s journal.
fn exported(lev: &Lev, run: &str) -> Vec<u8> {
    let out = lev.run(&["export", run]);
    assert!(out.status.success(), "{}", text(&out).1);
    out.stdout
}

#[test]
fn a_workflow_runs_on_postgres_over_verified_tls() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let Some(url) = db.tls_url("sslmode=verify-full") else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &url);
    let wf = lev.write_workflow(WORKFLOW);
    std::fs::write(lev.dir.path().join("wf.cassette.yaml"), CASSETTE).unwrap();
    let out = lev.run_headless(&wf, &["--answer", "pick=red"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let run = run_id_from(&stdout).unwrap();

    let by_flag = Lev::new();
    let out = by_flag.run(&["--journal", &url, "runs"]);
    let (runs, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        runs.lines()
            .any(|l| l.starts_with(&run) && l.contains("succeeded")),
        "{runs}"
    );
    // The same server under a name its certificate does not carry, and
    // without TLS: refused, in words.
    let wrong = format!("{url} host=wrong.example hostaddr=127.0.0.1");
    let wrong = wrong.replacen("host=127.0.0.1 ", "", 1);
    let out = by_flag.run(&["--journal", &wrong, "runs"]);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("host name mismatch"),
        "{}",
        text(&out).1
    );
    let out = by_flag.run(&["--journal", &format!("{url} sslmode=disable"), "runs"]);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("pg_hba.conf rejects connection"),
        "{}",
        text(&out).1
    );
}

/// An agent that stores a note, for the memory bank on PostgreSQL; and a
/// shell step, whose whole output (numbered by the run) is a blob of the
/// run's own.
const REMEMBER: &str = r#"
version: 1
kind: workflow
id: remember
name: Remember
steps:
  hello:
    type: shell
    run: |
      n=$(( $(cat runs 2>/dev/null || echo 0) + 1 )); echo $n > runs; echo output of run number $n
  learn:
    needs: [hello]
    mode: architect
    prompt: "Remember where the cache is."
"#;

const REMEMBER_CASSETTE: &str = r#"replies:
  - { step: learn, turn: 1, tool_calls: [{ name: memory_store, arguments: { key: cache, text: "The cache is redis.", tags: [infra], namespace: global } }], repeat: true }
  - { step: learn, turn: 2, text: "Remembered.", repeat: true }
"#;

/// What keeps a journal for years works on PostgreSQL: the memory bank
/// from the command line, `lev doctor` (finding what was damaged behind
/// lev's back), `lev rm`, `lev prune` and `lev compact`, each saying what
/// it did.
#[test]
fn memory_doctor_rm_and_prune_work_on_postgres() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    let wf = lev.write_workflow(REMEMBER);
    std::fs::write(lev.dir.path().join("wf.cassette.yaml"), REMEMBER_CASSETTE).unwrap();
    let ok = |args: &[&str]| -> String {
        let out = lev.run(args);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "lev {args:?}: {stdout}\n{stderr}");
        stdout
    };
    let out = lev.run_headless(&wf, &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let first = run_id_from(&stdout).unwrap();
    let out = lev.run_headless(&wf, &[]);
    assert!(out.status.success(), "{}", text(&out).1);
    let second = run_id_from(&text(&out).0).unwrap();

    // The note the agent stored, listed and found.
    let listed = ok(&["memory", "ls", "--json"]);
    let notes: Vec<Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(notes.len(), 1, "{listed}");
    assert_eq!(notes[0]["namespace"], "global");
    assert_eq!(notes[0]["key"], "cache");
    assert_eq!(notes[0]["text"], "The cache is redis.");
    // Stored by both runs: the second one updated it.
    assert_eq!(notes[0]["author"]["run"], second.as_str(), "{listed}");
    assert!(ok(&["memory", "ls"]).contains("global (1)"));
    let found = ok(&["memory", "search", "where", "is", "the", "redis", "cache"]);
    assert!(found.contains("1. global  cache"), "{found}");

    // Both runs are intact.
    let checked = ok(&["doctor"]);
    assert!(
        checked.starts_with("journal PostgreSQL database lev_test_"),
        "{checked}"
    );
    assert!(checked.contains(&format!("{first}  ok (")), "{checked}");
    assert!(checked.contains(&format!("{second}  ok (")), "{checked}");
    assert!(checked.contains("2 of 2 run(s) intact"), "{checked}");
    // A blob changed behind lev's back is found, in the run that names it.
    db.execute(
        "UPDATE lev_blobs SET bytes = bytes || '\\x00'::bytea
         WHERE encode(bytes, 'escape') LIKE 'output of run number 1%'",
    );
    let out = lev.run(&["doctor"]);
    let (checked, _) = text(&out);
    assert!(!out.status.success(), "{checked}");
    assert!(checked.contains(&format!("{first}  DAMAGED")), "{checked}");
    assert!(checked.contains(&format!("{second}  ok (")), "{checked}");
    assert!(checked.contains("is corrupt: its"), "{checked}");
    assert!(checked.contains("1 of 2 run(s) intact"), "{checked}");
    let out = lev.run(&["doctor", "--repair"]);
    assert!(!out.status.success());
    assert!(
        text(&out)
            .1
            .contains("lev doctor --repair) is not available on a PostgreSQL journal"),
        "{}",
        text(&out).1
    );

    // `lev rm`: the run, its entries, and the blobs only it named.
    let removed = ok(&["rm", &first]);
    assert!(removed.contains("deleted 1 run(s): "), "{removed}");
    assert!(!removed.contains(" 0 blob(s)"), "{removed}");
    assert!(
        removed
            .contains("nothing to compact; PostgreSQL reclaims the space of deleted rows itself"),
        "{removed}"
    );
    assert!(!ok(&["runs"]).contains(&first));
    assert!(ok(&["doctor"]).contains("1 of 1 run(s) intact"));
    // `lev prune`: every finished run older than nothing.
    let pruned = ok(&["prune", "--older-than", "0s"]);
    assert!(pruned.contains("deleted 1 run(s): "), "{pruned}");
    assert!(ok(&["prune", "--older-than", "0s"]).contains("no run to delete"));
    assert!(ok(&["doctor"]).contains("0 of 0 run(s) intact"));
    let compacted = ok(&["compact"]);
    assert!(compacted.contains("nothing to compact"), "{compacted}");

    // The note outlives the runs; `lev memory rm` forgets it.
    let forgot = ok(&["memory", "rm", "cache"]);
    assert!(
        forgot.contains("removed memory `cache` from global"),
        "{forgot}"
    );
    assert!(ok(&["memory", "ls"]).contains("no memories"));
}

#[test]
fn a_run_killed_mid_way_resumes_on_postgres() {
    let Some(db) = PgDb::new() else {
        return;
    };
    let lev = Lev::new().with_env("LEV_JOURNAL", &db.url);
    // The long step waits the first time only, so its rerun is quick.
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: slow\nname: Slow\nsteps:\n  first:\n    type: shell\n    run: echo one\n  wait:\n    needs: [first]\n    type: shell\n    run: |\n      if [ -f waited ]; then echo rerun; else touch waited; sleep 30; fi\n  last:\n    needs: [wait]\n    type: shell\n    run: echo done\n",
    );
    let mut child = lev.spawn_headless(&wf, &[]);
    let waited = lev.workspace().join("waited");
    wait_for("the slow step", Duration::from_secs(60), || waited.exists());
    // Another lev of the data dir asks the executing one: running.
    let listed = || -> Value {
        let out = lev.run(&["runs", "--json"]);
        let (runs, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        serde_json::from_str(runs.lines().next().unwrap()).unwrap()
    };
    assert_eq!(listed()["status"], "running");
    kill9(&mut child);
    // Its lease has not lapsed, but its holder is a process of this
    // machine that is gone: nobody executes the run, and a resume need
    // not wait the lease out.
    let listed = listed();
    assert_eq!(listed["status"], "waiting", "{listed}");
    assert_eq!(listed["executor"], Value::Null, "{listed}");
    let run = listed["id"].as_str().unwrap().to_string();
    let show = lev.show(&run);
    assert_eq!(step(&show, "first")["status"], "succeeded", "{show}");
    assert_ne!(show["status"], "succeeded", "{show}");

    // A resume without a decision pauses, saying what it needs.
    let ws = lev.workspace().display().to_string();
    let out = lev.run(&["resume", &run, "--headless", "--workspace", &ws]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("--in-flight rerun"),
        "{stdout}\n{stderr}"
    );

    let out = lev.run(&[
        "resume",
        &run,
        "--in-flight",
        "rerun",
        "--headless",
        "--workspace",
        &ws,
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    assert_eq!(step(&show, "wait")["attempts"], 2, "{show}");
    assert_eq!(step(&show, "last")["status"], "succeeded", "{show}");
    let replay = lev.replay(&run);
    assert!(replay.contains("rerun"), "{replay}");
}
