//! Tests with a real second process: this test binary re-executes itself
//! with an env var selecting an `#[ignore]`d child entry point. The child
//! entry points do nothing when the env var is absent, so running ignored
//! tests by hand is harmless.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::tests::{entry, meta};
use super::*;
use crate::protocol::{RunId, Seq};

const DB_ENV: &str = "LEV_JOURNAL_TEST_DB";
const RUN_ENV: &str = "LEV_JOURNAL_TEST_RUN";
const MODE_ENV: &str = "LEV_JOURNAL_TEST_MODE";
/// Generous bound so a broken child fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(120);

fn spawn_child(entry_point: &str, mode: &str, db: &Path, run: &RunId) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            entry_point,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MODE_ENV, mode)
        .env(DB_ENV, db)
        .env(RUN_ENV, run.as_str())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Forwards what follows `marker` on the child's stdout lines to a channel,
/// so the parent can wait on them with a deadline. The marker may sit
/// mid-line: libtest prints "test name ... " before the test's output.
fn lines_with(child: &mut Child, marker: &'static str) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find(marker)
                && tx.send(line[at + marker.len()..].to_owned()).is_err()
            {
                break;
            }
        }
    });
    rx
}

fn say(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// Child side of the crash test: appends from several tasks forever and
/// prints every acknowledged seq.
#[test]
#[ignore = "child process entry point; driven by kill9_keeps_every_acknowledged_entry"]
fn child_writer() {
    if std::env::var(MODE_ENV).as_deref() != Ok("writer") {
        return;
    }
    let db = std::env::var_os(DB_ENV).unwrap();
    let run = RunId(std::env::var(RUN_ENV).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let j = Journal::open(Path::new(&db)).unwrap();
        j.create_run(meta(&run)).await.unwrap();
        let mut tasks = Vec::new();
        for task in 0..4 {
            let j = j.clone();
            let run = run.clone();
            tasks.push(tokio::spawn(async move {
                // Bounded so an orphaned child cannot run forever.
                for i in 0..100_000u32 {
                    let payload = format!(r#"{{"task":{task},"i":{i}}}"#);
                    let seqs = j.append(&run, vec![entry("tick", payload)], None).await;
                    let Ok(seqs) = seqs else { return };
                    if say(&format!("ACK {}", seqs[0].0)).is_err() {
                        return;
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

#[test]
fn kill9_keeps_every_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lev.redb");
    let run = RunId::new();
    let mut child = spawn_child("journal::crash_tests::child_writer", "writer", &db, &run);
    let acks_rx = lines_with(&mut child, "ACK ");
    let start = Instant::now();
    let mut acked: Vec<u64> = Vec::new();
    while acked.len() < 60 {
        let left = DEADLINE.saturating_sub(start.elapsed());
        match acks_rx.recv_timeout(left) {
            Ok(seq) => acked.push(seq.parse().unwrap()),
            Err(e) => {
                let _ = child.kill();
                panic!(
                    "child stopped acknowledging after {} acks: {e}",
                    acked.len()
                );
            }
        }
    }
    // Child::kill is SIGKILL on Unix: no destructor, no clean shutdown.
    child.kill().unwrap();
    child.wait().unwrap();
    // Acks printed before the kill are acknowledged too.
    while let Ok(seq) = acks_rx.recv_timeout(DEADLINE) {
        acked.push(seq.parse().unwrap());
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let j = Journal::open(&db).unwrap();
        let entries = j.read(&run, Seq(1)).await.unwrap();
        let m = j.run(&run).await.unwrap().unwrap();
        assert_eq!(m.last_seq, entries.len() as u64);
        for (i, (seq, _)) in entries.iter().enumerate() {
            assert_eq!(seq.0, i as u64 + 1, "journal is not a gap-free prefix");
        }
        let max_acked = acked.iter().copied().max().unwrap();
        assert!(
            max_acked <= m.last_seq,
            "acknowledged seq {max_acked} lost; journal ends at {}",
            m.last_seq
        );
    });
}

/// Child side of the lock test: reports how opening a held journal went.
#[test]
#[ignore = "child process entry point; driven by other_process_sees_locked"]
fn child_open() {
    if std::env::var(MODE_ENV).as_deref() != Ok("open") {
        return;
    }
    let db = std::env::var_os(DB_ENV).unwrap();
    let outcome = match Journal::open(Path::new(&db)) {
        Err(JournalError::Locked { .. }) => "LOCKED".to_owned(),
        Ok(_) => "OPENED".to_owned(),
        Err(e) => format!("ERROR {e}"),
    };
    say(&format!("OUTCOME {outcome}")).unwrap();
}

#[test]
fn other_process_sees_locked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lev.redb");
    let _held = Journal::open(&db).unwrap();
    let run = RunId::new();
    let mut child = spawn_child("journal::crash_tests::child_open", "open", &db, &run);
    let rx = lines_with(&mut child, "OUTCOME ");
    let outcome = rx.recv_timeout(DEADLINE);
    let _ = child.kill();
    child.wait().unwrap();
    assert_eq!(outcome.unwrap(), "LOCKED");
}
