//! `lev doctor` on PostgreSQL: what `journal::doctor` checks of a redb
//! file, run by run, with the same `RunCheck`s: the run's record decodes,
//! its entries decode and run 1, 2, 3… up to the record's last seq, every
//! payload that spilled to a blob is there and hashes to its name, and so
//! does the pinned definition. The server keeps its pages whole itself;
//! what is checked here is what lev wrote (or what was changed behind its
//! back). A run is read in one snapshot, as redb's read transaction reads
//! it. Entries cannot lose their run (a foreign key), so there are no
//! orphans to look for.

use tokio_postgres::Transaction;

use super::{PgStore, failed, to_u64};
use crate::journal::codec;
use crate::journal::store::verified;
use crate::journal::{JournalError, RunCheck};
use crate::protocol::{RunId, Seq};

impl PgStore {
    /// Ids of every run, oldest first, even when their records do not
    /// decode.
    pub async fn run_ids(&self) -> Result<Vec<RunId>, JournalError> {
        let server = self.server();
        let conn = self.conn().await?;
        let rows = conn
            .client()
            .query("SELECT id FROM lev_runs ORDER BY id", &[])
            .await
            .map_err(failed(server, "list run ids"))?;
        rows.iter()
            .map(|row| {
                row.try_get(0)
                    .map(RunId)
                    .map_err(failed(server, "list run ids"))
            })
            .collect()
    }

    /// Runs whose record does not decode, oldest first, with the cause:
    /// the ones `runs` leaves out.
    pub async fn damaged_runs(&self) -> Result<Vec<(RunId, String)>, JournalError> {
        let server = self.server();
        let during = "read run records";
        let conn = self.conn().await?;
        let rows = conn
            .client()
            .query("SELECT id, record FROM lev_runs ORDER BY id", &[])
            .await
            .map_err(failed(server, during))?;
        let mut out = Vec::new();
        for row in &rows {
            let record: &[u8] = row.try_get(1).map_err(failed(server, during))?;
            if let Err(e) = codec::decode_run(record) {
                let id: String = row.try_get(0).map_err(failed(server, during))?;
                out.push((RunId(id), e.0.to_string()));
            }
        }
        Ok(out)
    }

    /// Checks one run (see the module's doc). A failure to read it is a
    /// problem of this run, not an error.
    pub async fn check_run(&self, run: &RunId) -> RunCheck {
        let mut out = RunCheck::default();
        if let Err(e) = self.check_into(run, &mut out).await {
            out.problems.push(e.to_string());
        }
        out
    }

    async fn check_into(&self, run: &RunId, out: &mut RunCheck) -> Result<(), JournalError> {
        let server = self.server();
        let during = format!("check run {run}");
        let mut conn = self.conn().await?;
        let tx = conn.snapshot(server, &during).await?;
        let record = tx
            .query_opt(
                "SELECT record FROM lev_runs WHERE id = $1",
                &[&run.as_str()],
            )
            .await
            .map_err(failed(server, &during))?;
        match record {
            None => out.problems.push("no run record".into()),
            Some(row) => {
                let record: &[u8] = row.try_get(0).map_err(failed(server, &during))?;
                match codec::decode_run(record) {
                    Ok(meta) => out.meta = Some(meta),
                    Err(e) => out.problems.push(
                        JournalError::Storage(format!("run {run} record is corrupt: {}", e.0))
                            .to_string(),
                    ),
                }
            }
        }
        if let Err(e) = check_entries(&tx, server, run, out).await {
            out.problems.push(e.to_string());
        }
        out.check_last_seq();
        if let Some(meta) = &out.meta
            && !meta.definition_blob.is_empty()
        {
            let hash = meta.definition_blob.as_str();
            let row = tx
                .query_opt("SELECT bytes FROM lev_blobs WHERE hash = $1", &[&hash])
                .await
                .map_err(failed(server, &during))?;
            match row {
                None => out
                    .problems
                    .push(format!("pinned definition blob {hash} is missing")),
                Some(row) => {
                    let bytes: &[u8] = row.try_get(0).map_err(failed(server, &during))?;
                    if let Err(why) = verified(bytes, hash) {
                        let e = JournalError::Storage(why);
                        out.problems.push(format!("pinned definition: {e}"));
                    }
                }
            }
        }
        tx.commit().await.map_err(failed(server, &during))?;
        Ok(())
    }
}

/// Decodes every entry of the run, checking seqs run 1, 2, 3… and spilled
/// payloads against their hashes; keeps what decodes (as redb's doctor).
async fn check_entries(
    tx: &Transaction<'_>,
    server: &str,
    run: &RunId,
    out: &mut RunCheck,
) -> Result<(), JournalError> {
    let during = format!("read entries of run {run}");
    let rows = tx
        .query(
            "SELECT e.seq, e.record, e.blob, b.bytes
             FROM lev_entries e LEFT JOIN lev_blobs b ON b.hash = e.blob
             WHERE e.run = $1
             ORDER BY e.seq",
            &[&run.as_str()],
        )
        .await
        .map_err(failed(server, &during))?;
    let mut expected = 1u64;
    for row in &rows {
        let seq: i64 = row.try_get(0).map_err(failed(server, &during))?;
        let seq = to_u64(seq, server, "seq")?;
        let record: &[u8] = row.try_get(1).map_err(failed(server, &during))?;
        let named: Option<&str> = row.try_get(2).map_err(failed(server, &during))?;
        let bytes: Option<&[u8]> = row.try_get(3).map_err(failed(server, &during))?;
        if seq != expected {
            out.problems.push(if seq > expected {
                format!("entries {expected}..{} are missing", seq - 1)
            } else {
                format!("entry {seq} is out of order")
            });
        }
        expected = seq.saturating_add(1);
        let (mut entry, blob) = match codec::decode_entry(record) {
            Ok(d) => d,
            Err(e) => {
                out.problems
                    .push(format!("entry {seq} is corrupt: {}", e.0));
                continue;
            }
        };
        if let Some(hash) = blob {
            let hex = blake3::Hash::from_bytes(hash).to_hex();
            if named != Some(hex.as_str()) {
                out.problems.push(format!(
                    "entry {seq}: its record's payload blob {hex} is not the one its row names ({})",
                    named.unwrap_or("none")
                ));
                continue;
            }
            let Some(bytes) = bytes else {
                out.problems
                    .push(format!("entry {seq}: payload blob {hex} is missing"));
                continue;
            };
            match verified(bytes, hex.as_str()) {
                Ok(b) => entry.payload = b.to_vec(),
                Err(why) => {
                    out.problems.push(format!("entry {seq}: payload {why}"));
                    continue;
                }
            }
        }
        out.entries.push((Seq(seq), entry));
    }
    Ok(())
}
