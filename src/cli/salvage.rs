//! When the journal file cannot be opened or its tables cannot be walked:
//! `lev doctor` reports what a scan of its raw pages recovers, and `lev
//! export --all` saves every run the scan recovers whole
//! (`journal::salvage`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;

use super::args::ExportFormat;
use super::context::error;
use super::exit;
use crate::journal::{Journal, JournalError, Salvage, SalvagedRun};
use crate::paths::Paths;

/// Why the journal cannot be used as it is, when damage is the reason
/// (not another lev holding it, not a missing file).
pub fn damage(paths: &Paths) -> Option<JournalError> {
    if paths.journal_url.is_some() {
        return None;
    }
    match Journal::open(&paths.journal()) {
        Ok(_) | Err(JournalError::Locked { .. }) => None,
        Err(e) => paths.journal().exists().then_some(e),
    }
}

fn scan(paths: &Paths) -> Result<Salvage, u8> {
    let file = paths.journal();
    eprintln!(
        "scanning the pages of {} for the runs it still holds…",
        file.display()
    );
    crate::journal::salvage(&file).map_err(|e| {
        error(&format!("cannot scan the journal: {e}"));
        exit::FAILED
    })
}

/// `lev doctor` on a journal that cannot be read as a database.
pub fn report(paths: &Paths, why: &JournalError, json: bool) -> u8 {
    let found = match scan(paths) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let whole = found.runs.iter().filter(|r| r.problems.is_empty()).count();
    if json {
        println!(
            "{}",
            serde_json::json!({ "journal": paths.journal(), "unreadable": why.to_string(), "leaf_pages": found.leaves })
        );
        for r in &found.runs {
            let line = serde_json::json!({
                "run": r.id, "ok": false, "recoverable": r.problems.is_empty(),
                "status": r.meta().map(|m| m.status),
                "entries": r.entries, "problems": r.problems,
            });
            println!("{line}");
        }
        return exit::FAILED;
    }
    println!(
        "journal {} cannot be read as a database:",
        paths.journal().display()
    );
    println!("  {}", crate::text::one_line(&why.to_string(), 300));
    println!(
        "its raw pages were scanned ({} leaf pages); every record found passed its checksum:",
        found.leaves
    );
    for r in &found.runs {
        print_run(r);
    }
    println!("{whole} of {} run(s) recoverable", found.runs.len());
    if whole > 0 {
        println!(
            "save them with `lev export --all --output DIR`, then move {} aside and `lev import DIR/RUN.jsonl` each into a new journal",
            paths.journal().display()
        );
    }
    exit::FAILED
}

fn print_run(r: &SalvagedRun) {
    match r.meta() {
        Some(meta) => println!(
            "{}  recoverable ({} entries, {})",
            r.id,
            r.entries,
            meta.status.as_str()
        ),
        None => {
            println!("{}  NOT recoverable", r.id);
            for p in &r.problems {
                println!("  - {}", crate::text::one_line(p, 200));
            }
        }
    }
}

/// `lev export --all` from a journal that cannot be read as a database:
/// every run the scan recovers whole, one file each.
pub fn export_all(paths: &Paths, dir: &Path, format: ExportFormat) -> u8 {
    let found = match scan(paths) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let mut saved = 0;
    for r in &found.runs {
        let (ext, bytes) = match format {
            ExportFormat::Jsonl => {
                let mut out = Vec::new();
                ("jsonl", r.write_jsonl(&mut out).map(|()| out))
            }
            ExportFormat::Md => ("md", markdown(r)),
        };
        let file = dir.join(format!("{}.{ext}", r.id));
        let written = bytes
            .map_err(|e| e.to_string())
            .and_then(|b| std::fs::write(&file, b).map_err(|e| e.to_string()));
        match written {
            Ok(()) => {
                saved += 1;
                println!("{}  recovered and exported to {}", r.id, file.display());
            }
            Err(e) => eprintln!("{}  NOT exported: {e}", r.id),
        }
    }
    println!(
        "exported {saved} of {} run(s) found in the damaged journal to {}",
        found.runs.len(),
        dir.display()
    );
    if saved == found.runs.len() {
        exit::OK
    } else {
        exit::FAILED
    }
}

fn markdown(r: &SalvagedRun) -> Result<Vec<u8>, JournalError> {
    if r.meta().is_none() {
        return Err(JournalError::Storage(r.problems.join("; ")));
    }
    let events = r
        .history()
        .iter()
        .map(|(seq, entry)| crate::workflow::recorder::from_entry(&r.id, *seq, entry))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::headless::markdown::transcript(&events).into_bytes())
}

/// `lev doctor --repair`: the damaged file is moved aside (kept, never
/// deleted) and a new journal is made of every run the scan recovers
/// whole. The memory bank is not recovered.
pub async fn repair(paths: &Paths, why: &JournalError) -> u8 {
    let found = match scan(paths) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let file = paths.journal();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = file.clone().into_os_string();
    aside.push(format!(".damaged-{stamp}"));
    let aside = std::path::PathBuf::from(aside);
    println!("journal {} cannot be read as a database:", file.display());
    println!("  {}", crate::text::one_line(&why.to_string(), 300));
    if let Err(e) = std::fs::rename(&file, &aside) {
        error(&format!(
            "cannot move {} aside to {}: {e}",
            file.display(),
            aside.display()
        ));
        return exit::FAILED;
    }
    println!("moved it aside to {} (kept as it was)", aside.display());
    let journal = match super::context::open_journal(paths).await {
        Ok(j) => j,
        Err(code) => return code,
    };
    let mut taken = 0;
    for r in &found.runs {
        if !r.problems.is_empty() {
            print_run(r);
            continue;
        }
        match journal.import_salvaged(r).await {
            Ok(_) => {
                taken += 1;
                println!("{}  recovered ({} entries)", r.id, r.entries);
            }
            Err(e) => println!("{}  NOT recovered: {e}", r.id),
        }
    }
    println!(
        "the new journal {} holds {taken} of the {} run(s) found; the memory bank was not recovered",
        file.display(),
        found.runs.len()
    );
    if taken == found.runs.len() {
        exit::OK
    } else {
        exit::FAILED
    }
}
