//! Deleting runs on PostgreSQL (`lev rm`, `lev prune`): the runs, their
//! entries, and every blob no remaining run refers to, as redb's
//! `journal::prune` does it, in one transaction.
//!
//! Which blobs a run refers to is found as redb finds it: its pinned
//! definition (read from each remaining run's record, which must decode,
//! or nothing is deleted; so `lev_runs` needs no column of its own for
//! it), the blobs its entries' payloads spilled to, and every blob hash
//! named inside a payload (spilled ones included: shell outputs keep their
//! whole streams as blobs the event names). That takes every remaining
//! entry, decoded here: the hashes are inside the records' encoding, out
//! of SQL's reach.
//!
//! Other processes may be appending meanwhile, so the transaction first
//! locks the runs, entries and blobs tables against writes (reads go on):
//! what is found referenced is what is still referenced at the commit, and
//! an append waits for it rather than land a reference to a blob being
//! deleted. The locks are taken in the order appends take theirs (runs
//! first), so a deletion and an append wait for each other, never
//! deadlock. As with redb, a blob stored on its own for a fact not written
//! yet (a run's pinned definition just before the run, a shell step's
//! output just before its outcome) counts as unreferenced until that fact
//! is written.

use std::collections::HashSet;

use futures::{TryStreamExt, pin_mut};
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::{PgStore, failed, to_u64};
use crate::journal::JournalError;
use crate::journal::codec;
use crate::journal::prune::{Removed, hashes_in};
use crate::protocol::RunId;

impl PgStore {
    /// Deletes `runs` (their rows and entries) and every blob no remaining
    /// run refers to, in one transaction; says what went. An id with no
    /// run is not counted. Nothing is deleted when a remaining run's
    /// record or entry does not decode (its blobs could not be known).
    pub async fn delete_runs(&self, runs: &[RunId]) -> Result<Removed, JournalError> {
        let server = self.server();
        let during = "delete runs";
        let mut conn = self.conn().await?;
        let tx = conn
            .client_mut()
            .transaction()
            .await
            .map_err(failed(server, during))?;
        tx.batch_execute("LOCK TABLE lev_runs, lev_entries, lev_blobs IN EXCLUSIVE MODE")
            .await
            .map_err(failed(server, "lock the journal's tables to delete runs"))?;
        let ids: Vec<&str> = runs.iter().map(RunId::as_str).collect();
        // Counted before the runs go: their entries go with them.
        let entries = tx
            .query_one(
                "SELECT count(*) FROM lev_entries WHERE run = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(failed(server, during))?;
        let entries: i64 = entries.try_get(0).map_err(failed(server, during))?;
        let deleted = tx
            .execute("DELETE FROM lev_runs WHERE id = ANY($1)", &[&ids])
            .await
            .map_err(failed(server, during))?;
        let referenced = referenced_blobs(&tx, server).await?;
        let dead = unreferenced(&tx, server, &referenced).await?;
        let gone = tx
            .query(
                "DELETE FROM lev_blobs WHERE hash = ANY($1) RETURNING octet_length(bytes)::bigint",
                &[&dead],
            )
            .await
            .map_err(failed(server, "delete blobs"))?;
        let mut removed = Removed {
            runs: usize::try_from(deleted).unwrap_or(usize::MAX),
            entries: to_u64(entries, server, "entry count")?,
            ..Removed::default()
        };
        for row in &gone {
            let len: i64 = row.try_get(0).map_err(failed(server, "delete blobs"))?;
            removed.blobs += 1;
            removed.blob_bytes += to_u64(len, server, "blob length")?;
        }
        tx.commit().await.map_err(failed(server, during))?;
        Ok(removed)
    }
}

/// Every blob hash a remaining run refers to (see the module's doc).
async fn referenced_blobs(
    tx: &Transaction<'_>,
    server: &str,
) -> Result<HashSet<String>, JournalError> {
    let mut out = HashSet::new();
    let during = "read the remaining runs";
    let rows = tx
        .query("SELECT record FROM lev_runs", &[])
        .await
        .map_err(failed(server, during))?;
    for row in &rows {
        let record: &[u8] = row.try_get(0).map_err(failed(server, during))?;
        // A row that does not decode keeps every blob: nothing is removed
        // on a guess.
        let meta = codec::decode_run(record).map_err(|e| {
            JournalError::Storage(format!(
                "{server}: a run record does not decode ({}); no blob was removed",
                e.0
            ))
        })?;
        out.insert(meta.definition_blob);
    }
    let during = "read the remaining entries";
    // Streamed: the journal's entries are never all in memory at once.
    let params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let rows = tx
        .query_raw(
            "SELECT e.record, e.blob, b.bytes
             FROM lev_entries e LEFT JOIN lev_blobs b ON b.hash = e.blob",
            params,
        )
        .await
        .map_err(failed(server, during))?;
    pin_mut!(rows);
    // Spilled payloads whose row names another blob than their record
    // (a damaged row): read by the record's hash once the stream is done.
    let mut misnamed = Vec::new();
    while let Some(row) = rows.try_next().await.map_err(failed(server, during))? {
        let record: &[u8] = row.try_get(0).map_err(failed(server, during))?;
        let named: Option<&str> = row.try_get(1).map_err(failed(server, during))?;
        let bytes: Option<&[u8]> = row.try_get(2).map_err(failed(server, during))?;
        let (entry, spilled) = codec::decode_entry(record).map_err(|e| {
            JournalError::Storage(format!(
                "{server}: an entry does not decode ({}); no blob was removed",
                e.0
            ))
        })?;
        hashes_in(&entry.payload, &mut out);
        if let Some(hash) = spilled {
            let hex = blake3::Hash::from_bytes(hash).to_hex().to_string();
            match (named == Some(hex.as_str()), bytes) {
                (true, Some(bytes)) => hashes_in(bytes, &mut out),
                (true, None) => {}
                (false, _) => misnamed.push(hex.clone()),
            }
            out.insert(hex);
        }
    }
    for hex in misnamed {
        let row = tx
            .query_opt("SELECT bytes FROM lev_blobs WHERE hash = $1", &[&hex])
            .await
            .map_err(failed(server, during))?;
        if let Some(row) = row {
            let bytes: &[u8] = row.try_get(0).map_err(failed(server, during))?;
            hashes_in(bytes, &mut out);
        }
    }
    Ok(out)
}

/// The stored blobs `referenced` does not name.
async fn unreferenced(
    tx: &Transaction<'_>,
    server: &str,
    referenced: &HashSet<String>,
) -> Result<Vec<String>, JournalError> {
    let during = "list blobs";
    let rows = tx
        .query("SELECT hash FROM lev_blobs", &[])
        .await
        .map_err(failed(server, during))?;
    let mut dead = Vec::new();
    for row in &rows {
        let hash: &str = row.try_get(0).map_err(failed(server, during))?;
        if !referenced.contains(hash) {
            dead.push(hash.to_owned());
        }
    }
    Ok(dead)
}
