//! Storage of FlowMind's whisper scores: how often the user accepted,
//! edited or dismissed each category of what FlowMind raised, across runs
//! (`whisper_scores`: category → (accepted, edited, dismissed)). Written
//! through the one writer thread, read in a read transaction.

use super::JournalError;
use super::store::storage;
use crate::protocol::{WhisperOutcome, WhisperScore};
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, WriteTransaction};

/// `whisper_scores`: category → (accepted, edited, dismissed).
pub(crate) const WHISPER_SCORES: redb::TableDefinition<&str, (u64, u64, u64)> =
    redb::TableDefinition::new("whisper_scores");

pub(crate) fn record(
    txn: &WriteTransaction,
    category: &str,
    outcome: WhisperOutcome,
) -> Result<WhisperScore, JournalError> {
    let mut t = txn
        .open_table(WHISPER_SCORES)
        .map_err(storage("open whisper scores"))?;
    let (mut a, mut e, mut d) = t
        .get(category)
        .map_err(storage("read whisper score"))?
        .map(|v| v.value())
        .unwrap_or_default();
    match outcome {
        WhisperOutcome::Accepted => a += 1,
        WhisperOutcome::Edited => e += 1,
        WhisperOutcome::Dismissed => d += 1,
    }
    t.insert(category, (a, e, d))
        .map_err(storage("write whisper score"))?;
    Ok(WhisperScore {
        category: category.to_string(),
        accepted: a,
        edited: e,
        dismissed: d,
    })
}

/// Forgets one category's score, or every one; returns how many went.
pub(crate) fn reset(txn: &WriteTransaction, category: Option<&str>) -> Result<u64, JournalError> {
    let mut t = txn
        .open_table(WHISPER_SCORES)
        .map_err(storage("open whisper scores"))?;
    match category {
        Some(c) => Ok(u64::from(
            t.remove(c)
                .map_err(storage("remove whisper score"))?
                .is_some(),
        )),
        None => {
            let n = t.len().map_err(storage("count whisper scores"))?;
            t.retain(|_, _| false)
                .map_err(storage("clear whisper scores"))?;
            Ok(n)
        }
    }
}

pub(crate) fn list(txn: &ReadTransaction) -> Result<Vec<WhisperScore>, JournalError> {
    let t = txn
        .open_table(WHISPER_SCORES)
        .map_err(storage("open whisper scores"))?;
    let mut out = Vec::new();
    for item in t.iter().map_err(storage("iterate whisper scores"))? {
        let (k, v) = item.map_err(storage("read whisper score"))?;
        let (accepted, edited, dismissed) = v.value();
        out.push(WhisperScore {
            category: k.value().to_string(),
            accepted,
            edited,
            dismissed,
        });
    }
    Ok(out)
}
