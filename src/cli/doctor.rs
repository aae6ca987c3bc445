//! `lev doctor` (alias `lev check`): verifies the journal run by run; and
//! `lev export --all`: saves every intact run of a journal, damaged or not.
//! A journal on PostgreSQL is checked the same way; it has no file whose
//! pages `--repair` could rebuild.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::access::Access;
use super::args::ExportFormat;
use super::context::{error, open_journal};
use super::exit;
use super::salvage;
use crate::journal::{Journal, JournalError, RunCheck};
use crate::paths::Paths;
use crate::protocol::{Event, RunId};
use crate::workflow;

/// One run's verdict.
struct Verdict {
    run: RunId,
    entries: usize,
    problems: Vec<String>,
}

pub async fn run(paths: &Paths, json: bool, repair: bool) -> u8 {
    let postgres = paths.journal_url.is_some();
    if postgres && repair {
        // Rebuilding reads a damaged file's pages; a server keeps its own.
        error(
            &JournalError::NotOnPostgres("repairing a journal (lev doctor --repair)").to_string(),
        );
        return exit::FAILED;
    }
    let file = paths.journal();
    if !postgres && !file.exists() {
        println!("no journal at {}: nothing to check", file.display());
        return exit::OK;
    }
    if let Some(why) = salvage::damage(paths) {
        return unreadable(paths, &why, json, repair).await;
    }
    let journal = match open_journal(paths).await {
        Ok(j) => j,
        Err(c) => return c,
    };
    let ids = match journal.run_ids().await {
        Ok(ids) => ids,
        Err(e) if postgres => {
            error(&format!("cannot list the runs: {e}"));
            return exit::FAILED;
        }
        Err(e) => {
            // The tables cannot be walked: what the pages still hold.
            drop(journal);
            return unreadable(paths, &e, json, repair).await;
        }
    };
    let mut verdicts = Vec::with_capacity(ids.len());
    for id in ids {
        verdicts.push(check(&journal, id).await);
    }
    // Entries whose run record is gone cannot be listed as a run of their
    // own; they still mean the file is not intact.
    let orphans = match journal.orphaned_runs().await {
        Ok(o) => o,
        Err(e) => vec![format!("(cannot walk the entries: {e})")],
    };
    let intact = verdicts.iter().filter(|v| v.problems.is_empty()).count();
    if repair {
        eprintln!(
            "the journal reads as a database, so --repair leaves it as it is (it rebuilds one that does not); `lev export --all --output DIR` saves its intact runs"
        );
    }
    if json {
        for v in &verdicts {
            let line = serde_json::json!({
                "run": v.run, "ok": v.problems.is_empty(),
                "entries": v.entries, "problems": v.problems,
            });
            println!("{line}");
        }
        for o in &orphans {
            println!("{}", serde_json::json!({ "orphaned_entries_of": o }));
        }
    } else {
        println!("journal {}", journal.path());
        for v in &verdicts {
            if v.problems.is_empty() {
                println!("{}  ok ({} entries)", v.run, v.entries);
            } else {
                println!("{}  DAMAGED", v.run);
                for p in &v.problems {
                    println!("  - {}", crate::text::one_line(p, 200));
                }
            }
        }
        for o in &orphans {
            println!("entries of run {o} have no run record (its record is damaged or lost)");
        }
        println!(
            "{intact} of {} run(s) intact{}",
            verdicts.len(),
            if orphans.is_empty() {
                String::new()
            } else {
                format!(", {} orphaned", orphans.len())
            }
        );
    }
    if intact == verdicts.len() && orphans.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    }
}

async fn unreadable(paths: &Paths, why: &JournalError, json: bool, repair: bool) -> u8 {
    if repair {
        salvage::repair(paths, why).await
    } else {
        salvage::report(paths, why, json)
    }
}

/// Checks one run: the journal's record-level check, then every entry
/// decoded as an event, and the pinned definition's hash as `run_started`
/// recorded it.
async fn check(journal: &Journal, run: RunId) -> Verdict {
    let RunCheck {
        meta,
        entries,
        mut problems,
    } = journal.check_run(&run).await;
    let mut first = None;
    let mut hashes = BTreeSet::new();
    for (seq, entry) in &entries {
        match workflow::recorder::from_entry(&run, *seq, entry) {
            Ok(r) if seq.0 == 1 => first = Some(r.event),
            Ok(_) => {}
            Err(e) => problems.push(e.to_string()),
        }
        if let Ok(value) = serde_json::from_slice::<Value>(&entry.payload) {
            blob_refs(&value, &mut hashes);
        }
    }
    // Blobs the events point at (shell output, ...): read back, each one
    // is checked against its hash.
    for hash in hashes {
        if let Err(e) = journal.blob(&hash).await {
            problems.push(e.to_string());
        }
    }
    match (&first, &meta) {
        (
            Some(Event::RunStarted {
                definition_hash, ..
            }),
            Some(meta),
        ) if *definition_hash != meta.definition_blob => problems.push(format!(
            "the run record pins definition {} but run_started recorded {definition_hash}",
            meta.definition_blob
        )),
        (Some(Event::RunStarted { .. }), _) => {}
        (Some(other), _) => {
            problems.push(format!("entry 1 is `{}`, not `run_started`", other.kind()))
        }
        // A missing or corrupt entry 1 is already reported.
        (None, _) => {}
    }
    Verdict {
        run,
        entries: entries.len(),
        problems,
    }
}

/// Strings shaped like a blob hash (64 lowercase hex) anywhere in a payload.
fn blob_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s)
            if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            out.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| blob_refs(v, out)),
        Value::Object(map) => map.values().for_each(|v| blob_refs(v, out)),
        _ => {}
    }
}

/// `lev export --all -o DIR`: one file per run; a run that cannot be read
/// whole is reported and skipped, the others are written.
pub async fn export_all(paths: &Paths, dir: &Path, format: ExportFormat) -> u8 {
    if let Err(e) = std::fs::create_dir_all(dir) {
        error(&format!("cannot create {}: {e}", dir.display()));
        return exit::FAILED;
    }
    if let Some(why) = salvage::damage(paths) {
        error(&why.to_string());
        return salvage::export_all(paths, dir, format);
    }
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    // Straight from the file when this process holds it: a damaged run
    // record must not hide the other runs' ids.
    let ids = match access.local() {
        Some(journal) => journal.run_ids().await.map_err(|e| e.to_string()),
        None => access
            .runs()
            .await
            .map(|runs| runs.into_iter().rev().map(|m| m.id).collect()),
    };
    let ids = match ids {
        Ok(ids) => ids,
        Err(e) if access.local().is_some() => {
            // The tables cannot be walked: save what the pages still hold.
            error(&format!("cannot list the runs: {e}"));
            drop(access);
            return salvage::export_all(paths, dir, format);
        }
        Err(e) => {
            error(&format!("cannot list the runs: {e}"));
            return exit::FAILED;
        }
    };
    let ext = match format {
        ExportFormat::Jsonl => "jsonl",
        ExportFormat::Md => "md",
    };
    let mut saved = 0;
    for id in &ids {
        let bytes = match format {
            ExportFormat::Jsonl => access.export(id).await,
            ExportFormat::Md => access
                .events(id)
                .await
                .map(|events| crate::headless::markdown::transcript(&events).into_bytes()),
        };
        let file = dir.join(format!("{id}.{ext}"));
        match bytes.and_then(|b| std::fs::write(&file, b).map_err(|e| e.to_string())) {
            Ok(()) => {
                saved += 1;
                println!("{id}  exported to {}", file.display());
            }
            Err(e) => {
                let _ = std::fs::remove_file(&file);
                eprintln!("{id}  NOT exported: {e}");
            }
        }
    }
    println!(
        "exported {saved} of {} run(s) to {}",
        ids.len(),
        dir.display()
    );
    if saved == ids.len() {
        exit::OK
    } else {
        exit::FAILED
    }
}
