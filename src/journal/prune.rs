//! Keeping a journal for years: deleting runs (`lev rm`, `lev prune`) with
//! the blobs no remaining run refers to, and compacting the file afterwards
//! (`lev compact`) so the space goes back to the disk.
//!
//! Blobs are shared by content (a fork shares its parent's, identical
//! outputs share one), so a blob is removed only when no remaining run
//! names it: the pinned definitions, the spilled payloads of entries, and
//! any blob hash a payload mentions (shell outputs keep their full streams
//! as blobs referenced from the event).

use std::collections::HashSet;

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::JournalError;
use super::codec;
use super::store::{BLOBS, ENTRIES, RUNS, storage};
use crate::protocol::RunId;

/// What a deletion removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    pub runs: usize,
    pub entries: u64,
    pub blobs: usize,
    pub blob_bytes: u64,
}

/// Deletes `runs` (their rows and entries) and every blob no remaining run
/// refers to, in the caller's transaction.
pub(crate) fn delete_runs(txn: &WriteTransaction, runs: &[RunId]) -> Result<Removed, JournalError> {
    let mut removed = Removed::default();
    {
        let mut rows = txn.open_table(RUNS).map_err(storage("open runs"))?;
        let mut entries = txn.open_table(ENTRIES).map_err(storage("open entries"))?;
        for run in runs {
            let id = run.as_str();
            if rows.remove(id).map_err(storage("delete run"))?.is_some() {
                removed.runs += 1;
            }
            let count = entries
                .range((id, 0)..=(id, u64::MAX))
                .map_err(storage("range entries"))?
                .count() as u64;
            entries
                .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
                .map_err(storage("delete entries"))?;
            removed.entries += count;
        }
    }
    let referenced = referenced_blobs(txn)?;
    let mut blobs = txn.open_table(BLOBS).map_err(storage("open blobs"))?;
    let mut dead = Vec::new();
    for item in blobs.iter().map_err(storage("list blobs"))? {
        let (key, value) = item.map_err(storage("read blob"))?;
        if !referenced.contains(key.value()) {
            dead.push((key.value().to_string(), value.value().len() as u64));
        }
    }
    for (hash, len) in dead {
        blobs
            .remove(hash.as_str())
            .map_err(storage("delete blob"))?;
        removed.blobs += 1;
        removed.blob_bytes += len;
    }
    Ok(removed)
}

/// Every blob hash a remaining run refers to.
fn referenced_blobs(txn: &WriteTransaction) -> Result<HashSet<String>, JournalError> {
    let mut out = HashSet::new();
    let rows = txn.open_table(RUNS).map_err(storage("open runs"))?;
    for item in rows.iter().map_err(storage("list runs"))? {
        let (_, value) = item.map_err(storage("read run"))?;
        // A row that does not decode keeps every blob: nothing is removed
        // on a guess.
        match codec::decode_run(value.value()) {
            Ok(meta) => {
                out.insert(meta.definition_blob);
            }
            Err(e) => {
                return Err(JournalError::Storage(format!(
                    "a run record does not decode ({}); no blob was removed",
                    e.0
                )));
            }
        }
    }
    let entries = txn.open_table(ENTRIES).map_err(storage("open entries"))?;
    let blobs = txn.open_table(BLOBS).map_err(storage("open blobs"))?;
    for item in entries.iter().map_err(storage("list entries"))? {
        let (_, value) = item.map_err(storage("read entry"))?;
        let (entry, spilled) = codec::decode_entry(value.value()).map_err(|e| {
            JournalError::Storage(format!(
                "an entry does not decode ({}); no blob was removed",
                e.0
            ))
        })?;
        hashes_in(&entry.payload, &mut out);
        if let Some(hash) = spilled {
            let hex = blake3::Hash::from_bytes(hash).to_hex().to_string();
            if let Some(bytes) = blobs.get(hex.as_str()).map_err(storage("read blob"))? {
                hashes_in(bytes.value(), &mut out);
            }
            out.insert(hex);
        }
    }
    Ok(out)
}

/// Every run of exactly 64 lowercase hex digits in `bytes` (a blob hash);
/// PostgreSQL's prune looks for them the same way (`pg/prune.rs`).
pub(super) fn hashes_in(bytes: &[u8], out: &mut HashSet<String>) {
    let is_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    let mut start = None;
    for (i, &b) in bytes.iter().chain(std::iter::once(&b' ')).enumerate() {
        match (is_hex(b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s == 64 {
                    out.insert(String::from_utf8_lossy(&bytes[s..i]).into_owned());
                }
                start = None;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_64_digit_hex_runs_are_hashes() {
        let h = "ab".repeat(32);
        let text = format!(
            "{{\"stdout_blob\":\"{h}\",\"x\":\"{}\",\"y\":\"{}0\"}}",
            "cd".repeat(31),
            h
        );
        let mut out = HashSet::new();
        hashes_in(text.as_bytes(), &mut out);
        assert_eq!(out, HashSet::from([h]));
    }
}
