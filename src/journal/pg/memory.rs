//! The memory bank on PostgreSQL: what `journal::memory` keeps in redb,
//! with the same answers for the same calls.
//!
//! `lev_memory` holds each entry's record as redb stores it (its terms
//! included) with its length in terms; `lev_memory_terms` one row a
//! posting, going with its entry (`ON DELETE CASCADE`). A put or delete is
//! one transaction, so a search never sees half of one. redb's
//! per-namespace counts are summed when asked instead of kept in a row:
//! with several processes storing notes, a counter row would be one more
//! thing for them to wait on. A search reads counts and postings in one
//! snapshot, as redb's read transaction does.

use std::collections::{BTreeMap, HashMap};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};

use super::{PgStore, failed, to_u64};
use crate::journal::JournalError;
use crate::journal::memory::{self, MemoryPosting, MemoryPostings, MemoryRecord, MemoryTerms};

/// A parameter of a statement.
type Param<'a> = &'a (dyn ToSql + Sync);

/// How often a put looks again for an entry another process stored or
/// deleted between its two statements; each time means another process
/// won a race for the key, so a few are plenty.
const PUT_ATTEMPTS: usize = 5;

impl PgStore {
    /// Stores `record` under its (namespace, key), replacing any entry
    /// there and its postings, in one transaction; an existing entry's
    /// `created_ms` is kept. Returns the record as stored and whether the
    /// key is new (as redb's `memory::put`). Two processes storing one key
    /// at once take turns on its row.
    pub async fn memory_put(
        &self,
        mut record: MemoryRecord,
        terms: MemoryTerms,
    ) -> Result<(MemoryRecord, bool), JournalError> {
        let server = self.server();
        let during = format!("store memory {}/{}", record.namespace, record.key);
        let mut conn = self.conn().await?;
        let tx = conn
            .client_mut()
            .transaction()
            .await
            .map_err(failed(server, &during))?;
        let created = upsert(&tx, server, &during, &mut record, &terms).await?;
        write_postings(&tx, server, &during, &record, &terms).await?;
        tx.commit().await.map_err(failed(server, &during))?;
        Ok((record, created))
    }

    /// Deletes an entry with its postings; returns it, or `None` if absent.
    pub async fn memory_delete(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<MemoryRecord>, JournalError> {
        let server = self.server();
        let during = format!("delete memory {namespace}/{key}");
        let conn = self.conn().await?;
        // One statement: the postings go with it (`ON DELETE CASCADE`).
        let row = conn
            .client()
            .query_opt(
                "DELETE FROM lev_memory WHERE namespace = $1 AND key = $2 RETURNING record",
                &[&namespace, &key],
            )
            .await
            .map_err(failed(server, &during))?;
        row.map(|row| record_at(&row, 0, server, namespace, key))
            .transpose()
    }

    /// One entry, or `None`.
    pub async fn memory_get(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<MemoryRecord>, JournalError> {
        let server = self.server();
        let during = format!("read memory {namespace}/{key}");
        let conn = self.conn().await?;
        let row = conn
            .client()
            .query_opt(
                "SELECT record FROM lev_memory WHERE namespace = $1 AND key = $2",
                &[&namespace, &key],
            )
            .await
            .map_err(failed(server, &during))?;
        row.map(|row| record_at(&row, 0, server, namespace, key))
            .transpose()
    }

    /// The entries at these (namespace, key) pairs, in order, each `None`
    /// when absent; one query (one snapshot) for all.
    pub async fn memory_get_many(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<Option<MemoryRecord>>, JournalError> {
        let server = self.server();
        let namespaces: Vec<&str> = keys.iter().map(|(ns, _)| ns.as_str()).collect();
        let names: Vec<&str> = keys.iter().map(|(_, key)| key.as_str()).collect();
        let conn = self.conn().await?;
        let rows = conn
            .client()
            .query(
                "SELECT namespace, key, record FROM lev_memory
                 WHERE (namespace, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
                &[&namespaces, &names],
            )
            .await
            .map_err(failed(server, "read memory entries"))?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let record = listed(row, server)?;
            found.insert((record.namespace.clone(), record.key.clone()), record);
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    /// Entries of `namespaces` (every namespace when `None`), ordered by
    /// namespace, then key (byte order, as redb's keys).
    pub async fn memory_list(
        &self,
        namespaces: Option<&[String]>,
    ) -> Result<Vec<MemoryRecord>, JournalError> {
        let server = self.server();
        let conn = self.conn().await?;
        let rows = conn
            .client()
            .query(
                "SELECT namespace, key, record FROM lev_memory
                 WHERE $1::text[] IS NULL OR namespace = ANY($1)
                 ORDER BY namespace, key",
                &[&namespaces],
            )
            .await
            .map_err(failed(server, "list memory entries"))?;
        rows.iter().map(|row| listed(row, server)).collect()
    }

    /// Whether `namespace` holds no entry. Asked of the server every time:
    /// other processes store notes too, so nothing this process saw stays
    /// true (redb's journal remembers an empty namespace instead).
    pub async fn memory_is_empty(&self, namespace: &str) -> Result<bool, JournalError> {
        let server = self.server();
        let conn = self.conn().await?;
        let row = conn
            .client()
            .query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM lev_memory WHERE namespace = $1)",
                &[&namespace],
            )
            .await
            .map_err(failed(server, "look for memory entries"))?;
        row.try_get(0)
            .map_err(failed(server, "look for memory entries"))
    }

    /// Namespaces holding entries, with their entry counts, by name.
    pub async fn memory_namespaces(&self) -> Result<Vec<(String, u64)>, JournalError> {
        let server = self.server();
        let during = "count memory entries";
        let conn = self.conn().await?;
        let rows = conn
            .client()
            .query(
                "SELECT namespace, count(*) FROM lev_memory GROUP BY namespace ORDER BY namespace",
                &[],
            )
            .await
            .map_err(failed(server, during))?;
        rows.iter()
            .map(|row| {
                let namespace: String = row.try_get(0).map_err(failed(server, during))?;
                let n: i64 = row.try_get(1).map_err(failed(server, during))?;
                Ok((namespace, to_u64(n, server, "memory entry count")?))
            })
            .collect()
    }

    /// The postings of `terms` (in the order asked, each term's by
    /// namespace and key) and the entry counts ranking needs, over
    /// `namespaces` (every namespace when `None`), from one snapshot.
    pub async fn memory_postings(
        &self,
        terms: &[String],
        namespaces: Option<&[String]>,
    ) -> Result<MemoryPostings, JournalError> {
        let server = self.server();
        let during = "read the memory index";
        let mut conn = self.conn().await?;
        let tx = conn.snapshot(server, during).await?;
        let (in_namespaces, in_terms): (Param, Param) = (&namespaces, &terms);
        // Sent together: one round trip for both.
        let counts = tx.query_one(
            "SELECT count(*), coalesce(sum(len), 0)::bigint FROM lev_memory
             WHERE $1::text[] IS NULL OR namespace = ANY($1)",
            std::slice::from_ref(&in_namespaces),
        );
        let both = [in_terms, in_namespaces];
        let postings = tx.query(
            "SELECT t.term, t.namespace, t.key, t.count, m.len
             FROM lev_memory_terms t JOIN lev_memory m USING (namespace, key)
             WHERE t.term = ANY($1) AND ($2::text[] IS NULL OR t.namespace = ANY($2))
             ORDER BY t.term, t.namespace, t.key",
            &both,
        );
        let (counts, rows) = tokio::try_join!(counts, postings).map_err(failed(server, during))?;
        tx.commit().await.map_err(failed(server, during))?;
        let entries: i64 = counts.try_get(0).map_err(failed(server, during))?;
        let total_len: i64 = counts.try_get(1).map_err(failed(server, during))?;
        let mut by_term: HashMap<String, Vec<MemoryPosting>> = HashMap::new();
        for row in &rows {
            let term: String = row.try_get(0).map_err(failed(server, during))?;
            let count: i64 = row.try_get(3).map_err(failed(server, during))?;
            let len: i64 = row.try_get(4).map_err(failed(server, during))?;
            by_term.entry(term).or_default().push(MemoryPosting {
                namespace: row.try_get(1).map_err(failed(server, during))?,
                key: row.try_get(2).map_err(failed(server, during))?,
                count: to_u32(count, server, "memory term count")?,
                len: to_u32(len, server, "memory entry length")?,
            });
        }
        Ok(MemoryPostings {
            entries: to_u64(entries, server, "memory entry count")?,
            total_len: to_u64(total_len, server, "memory length")?,
            // A term asked for twice is answered twice, as redb does.
            postings: terms
                .iter()
                .map(|t| (t.clone(), by_term.get(t).cloned().unwrap_or_default()))
                .collect(),
        })
    }
}

/// Writes the entry's row: an update of the row that is there (locked
/// first, its `created_ms` kept), else an insert. Returns whether the key
/// is new. When another process stores or deletes the key between the two
/// statements, looks again.
async fn upsert(
    tx: &Transaction<'_>,
    server: &str,
    during: &str,
    record: &mut MemoryRecord,
    terms: &[(String, u32)],
) -> Result<bool, JournalError> {
    let (ns, key) = (record.namespace.clone(), record.key.clone());
    let len = i64::from(memory::doc_len(terms));
    for _ in 0..PUT_ATTEMPTS {
        let old = tx
            .query_opt(
                "SELECT record FROM lev_memory WHERE namespace = $1 AND key = $2 FOR UPDATE",
                &[&ns, &key],
            )
            .await
            .map_err(failed(server, during))?;
        if let Some(old) = old {
            record.created_ms = record_at(&old, 0, server, &ns, &key)?.created_ms;
            let bytes = memory::encode(record, terms)?;
            tx.execute(
                "UPDATE lev_memory SET record = $3, len = $4 WHERE namespace = $1 AND key = $2",
                &[&ns, &key, &bytes, &len],
            )
            .await
            .map_err(failed(server, during))?;
            return Ok(false);
        }
        let bytes = memory::encode(record, terms)?;
        // Waits for another process inserting the key at the same time,
        // and then inserts nothing: that one's row is updated next round.
        let inserted = tx
            .execute(
                "INSERT INTO lev_memory (namespace, key, record, len) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (namespace, key) DO NOTHING",
                &[&ns, &key, &bytes, &len],
            )
            .await
            .map_err(failed(server, during))?;
        if inserted == 1 {
            return Ok(true);
        }
    }
    Err(JournalError::Storage(format!(
        "{server}: {during}: other processes kept storing and deleting the key meanwhile"
    )))
}

/// Replaces the entry's postings with `terms`'. A term given twice is
/// posted once with its last count, as redb's index keeps it (its length
/// counts both, as redb's does).
async fn write_postings(
    tx: &Transaction<'_>,
    server: &str,
    during: &str,
    record: &MemoryRecord,
    terms: &[(String, u32)],
) -> Result<(), JournalError> {
    let (ns, key) = (record.namespace.as_str(), record.key.as_str());
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for (term, count) in terms {
        last.insert(term.as_str(), i64::from(*count));
    }
    let (words, counts): (Vec<&str>, Vec<i64>) = last.into_iter().unzip();
    tx.execute(
        "DELETE FROM lev_memory_terms WHERE namespace = $1 AND key = $2",
        &[&ns, &key],
    )
    .await
    .map_err(failed(server, during))?;
    tx.execute(
        "INSERT INTO lev_memory_terms (term, namespace, key, count)
         SELECT t, $1, $2, c FROM unnest($3::text[], $4::bigint[]) AS u (t, c)",
        &[&ns, &key, &words, &counts],
    )
    .await
    .map_err(failed(server, during))?;
    Ok(())
}

/// A row of (namespace, key, record) as the entry it stores.
fn listed(row: &Row, server: &str) -> Result<MemoryRecord, JournalError> {
    let during = "read a memory entry";
    let ns: &str = row.try_get(0).map_err(failed(server, during))?;
    let key: &str = row.try_get(1).map_err(failed(server, during))?;
    record_at(row, 2, server, ns, key)
}

/// The entry record in column `col` of `row`, decoded.
fn record_at(
    row: &Row,
    col: usize,
    server: &str,
    namespace: &str,
    key: &str,
) -> Result<MemoryRecord, JournalError> {
    let bytes: &[u8] = row
        .try_get(col)
        .map_err(failed(server, "read a memory entry"))?;
    memory::decode(namespace, key, bytes)
        .map(|(record, _)| record)
        .map_err(|e| match e {
            JournalError::Storage(why) => JournalError::Storage(format!("{server}: {why}")),
            other => other,
        })
}

/// A `bigint` read back as a u32 of the memory index.
fn to_u32(v: i64, server: &str, what: &str) -> Result<u32, JournalError> {
    u32::try_from(v)
        .map_err(|_| JournalError::Storage(format!("{server}: {what} {v} is out of range")))
}
