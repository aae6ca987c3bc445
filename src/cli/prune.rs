//! `lev rm RUN…`, `lev prune --older-than D` and `lev compact`: keeping a
//! journal for years. Deleting needs the journal itself (no other lev
//! process may be executing runs), so a run that executes is never deleted
//! under it. After a deletion the file is compacted, and the sizes before
//! and after are said. A journal on PostgreSQL has no file: there the
//! server reclaims the space itself, and that is what is said.
#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;

use super::context::{error, open_journal};
use super::exit;
use crate::journal::{Journal, Removed, RunMeta};
use crate::paths::Paths;
use crate::protocol::{Millis, RunId, RunStatus};
use crate::spec::load::duration::parse_duration;

fn file_size(paths: &Paths) -> u64 {
    std::fs::metadata(paths.journal())
        .map(|m| m.len())
        .unwrap_or(0)
}

fn mib(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        return format!("{} KiB", bytes.div_ceil(1024));
    }
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The journal (this process must hold it) and every run in it.
async fn journal_and_runs(paths: &Paths) -> Result<(Journal, Vec<RunMeta>), u8> {
    let journal = open_journal(paths).await?;
    match journal.runs().await {
        Ok(runs) => Ok((journal, runs)),
        Err(e) => {
            error(&e.to_string());
            Err(exit::FAILED)
        }
    }
}

/// `lev rm`.
pub async fn rm(paths: &Paths, ids: &[String], force: bool) -> u8 {
    let (journal, runs) = match journal_and_runs(paths).await {
        Ok(j) => j,
        Err(c) => return c,
    };
    let mut chosen = Vec::new();
    let mut seen = BTreeSet::new();
    for id in ids {
        let Some(meta) = runs.iter().find(|m| m.id.0 == *id) else {
            error(&format!(
                "no run {id} in {}; nothing was deleted",
                paths.journal_name()
            ));
            return exit::USAGE;
        };
        if !meta.status.is_terminal() && !force {
            error(&format!(
                "run {id} is {} and could be resumed; `lev rm --force {id}` deletes it anyway. Nothing was deleted",
                meta.status.as_str()
            ));
            return exit::USAGE;
        }
        if seen.insert(meta.id.clone()) {
            chosen.push(meta.id.clone());
        }
    }
    // A spread run's step runs are parts of it: they go with it.
    let parts: Vec<_> = runs
        .iter()
        .filter(|m| m.step_run && m.parent.as_ref().is_some_and(|p| seen.contains(p)))
        .filter(|m| !seen.contains(&m.id))
        .map(|m| m.id.clone())
        .collect();
    chosen.extend(parts);
    delete(paths, &journal, chosen).await
}

/// `lev prune`.
pub async fn prune(paths: &Paths, older_than: &str, keep_failed: bool, dry_run: bool) -> u8 {
    let age = match parse_duration(older_than) {
        Ok(d) => d,
        Err(e) => {
            error(&format!("--older-than `{older_than}`: {e}"));
            return exit::USAGE;
        }
    };
    let (journal, runs) = match journal_and_runs(paths).await {
        Ok(j) => j,
        Err(c) => return c,
    };
    let cutoff = Millis::now().0.saturating_sub(age.as_millis() as u64);
    let chosen: Vec<&RunMeta> = runs
        .iter()
        .filter(|m| m.status.is_terminal() && m.updated_ms < cutoff)
        .filter(|m| !(keep_failed && m.status == RunStatus::Failed))
        .collect();
    if dry_run {
        for m in &chosen {
            println!(
                "would delete {}  {}  {}  {}",
                m.id,
                m.status.as_str(),
                crate::text::one_line(&m.name, 60),
                Millis(m.updated_ms).utc()
            );
        }
        println!("{} run(s) would be deleted", chosen.len());
        return exit::OK;
    }
    let ids = chosen.iter().map(|m| m.id.clone()).collect();
    delete(paths, &journal, ids).await
}

/// Deletes `runs`, compacts, says what happened.
async fn delete(paths: &Paths, journal: &Journal, runs: Vec<RunId>) -> u8 {
    if runs.is_empty() {
        println!("no run to delete");
        return exit::OK;
    }
    let before = file_size(paths);
    let removed = match journal.delete_runs(runs).await {
        Ok(r) => r,
        Err(e) => {
            error(&format!("nothing was deleted: {e}"));
            return exit::FAILED;
        }
    };
    let Removed {
        runs,
        entries,
        blobs,
        blob_bytes,
    } = removed;
    println!(
        "deleted {runs} run(s): {entries} entries, {blobs} blob(s) no other run used ({})",
        mib(blob_bytes)
    );
    compacted(paths, journal, before).await
}

/// `lev compact`.
pub async fn compact(paths: &Paths) -> u8 {
    let journal = match open_journal(paths).await {
        Ok(j) => j,
        Err(c) => return c,
    };
    let before = file_size(paths);
    compacted(paths, &journal, before).await
}

async fn compacted(paths: &Paths, journal: &Journal, before: u64) -> u8 {
    match journal.compact().await {
        // Nothing to compact (`Journal::compact`), nor a file to measure.
        Ok(_) if paths.journal_url.is_some() => {
            println!(
                "{}: nothing to compact; PostgreSQL reclaims the space of deleted rows itself (autovacuum makes it reusable; VACUUM FULL gives it back to the disk)",
                journal.path()
            );
            exit::OK
        }
        Ok(_) => {
            println!(
                "journal {}: {} → {}",
                paths.journal_name(),
                mib(before),
                mib(file_size(paths))
            );
            exit::OK
        }
        Err(e) => {
            error(&format!("the deletion stands, but compaction failed: {e}"));
            exit::FAILED
        }
    }
}
